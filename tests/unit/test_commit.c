/* Unit tests of the output commit coordinator (src/scheduler/commit.h), driven directly with
 * made-up stage, partition and task ids: the first asker is authorised and the others denied,
 * a failure of the authorised attempt releases the partition, a success makes it final (also
 * for later stage attempts), a failed attempt never commits afterwards, partitions and stages
 * are independent, an ended stage denies everything, and concurrent askers get exactly one
 * authorisation per partition.
 */
#include "test.h"

#include "scheduler/commit.h"

#include <pthread.h>

TEST(first_asker_wins_others_denied)
{
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);
    CHECK(em__commit_can_commit(c, 3, 0, 5, 100));
    CHECK(!em__commit_can_commit(c, 3, 0, 5, 101));
    CHECK(!em__commit_can_commit(c, 3, 0, 5, 102));
    /* the authorised attempt asking again (a re-sent question) is still authorised */
    CHECK(em__commit_can_commit(c, 3, 0, 5, 100));
    /* other partitions and other stages are independent */
    CHECK(em__commit_can_commit(c, 3, 0, 4, 101));
    CHECK(em__commit_can_commit(c, 3, 0, 1000, 102)); /* a table grown far past its size */
    CHECK(em__commit_can_commit(c, 4, 0, 5, 101));
    CHECK(!em__commit_can_commit(c, 3, 0, -1, 103)); /* no such partition */
    em__commit_free(c);
    em__commit_free(NULL);
}

TEST(failure_of_authorised_attempt_releases)
{
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);
    CHECK(em__commit_can_commit(c, 1, 0, 0, 10));
    CHECK(!em__commit_can_commit(c, 1, 0, 0, 11));
    /* a failure of a denied attempt changes nothing for the authorised one */
    em__commit_task_ended(c, 1, 0, 11, false);
    CHECK(!em__commit_can_commit(c, 1, 0, 0, 12));
    /* the authorised attempt fails: the next asker gets the partition */
    em__commit_task_ended(c, 1, 0, 10, false);
    CHECK(em__commit_can_commit(c, 1, 0, 0, 12));
    CHECK(!em__commit_can_commit(c, 1, 0, 0, 13));
    /* attempts that failed never commit, even when the partition is free again */
    em__commit_task_ended(c, 1, 0, 12, false);
    CHECK(!em__commit_can_commit(c, 1, 0, 0, 10));
    CHECK(!em__commit_can_commit(c, 1, 0, 0, 11));
    CHECK(!em__commit_can_commit(c, 1, 0, 0, 12));
    CHECK(em__commit_can_commit(c, 1, 0, 0, 13));
    em__commit_free(c);
}

TEST(success_is_final)
{
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);
    CHECK(em__commit_can_commit(c, 2, 0, 7, 20));
    em__commit_task_ended(c, 2, 7, 20, true);
    CHECK(!em__commit_can_commit(c, 2, 0, 7, 21));
    /* a later failure report of another attempt does not reopen it */
    em__commit_task_ended(c, 2, 7, 21, false);
    CHECK(!em__commit_can_commit(c, 2, 0, 7, 22));
    /* the committer itself still hears yes (idempotent) */
    CHECK(em__commit_can_commit(c, 2, 0, 7, 20));
    /* a success of an attempt that was never authorised (a task that writes no output) is no
     * commit: the partition stays free */
    em__commit_task_ended(c, 2, 8, 30, true);
    CHECK(em__commit_can_commit(c, 2, 0, 8, 31));
    em__commit_free(c);
}

TEST(stage_attempts)
{
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);
    /* stage 5 attempt 0: partition 0 committed, partition 1 authorised and still running */
    CHECK(em__commit_can_commit(c, 5, 0, 0, 50));
    em__commit_task_ended(c, 5, 0, 50, true);
    CHECK(em__commit_can_commit(c, 5, 0, 1, 51));
    /* attempt 1 of the stage (after a fetch failure) runs every partition again */
    CHECK(!em__commit_can_commit(c, 5, 1, 0, 60)); /* final across stage attempts */
    CHECK(!em__commit_can_commit(c, 5, 1, 1, 61)); /* the old attempt still holds it */
    CHECK(em__commit_can_commit(c, 5, 1, 2, 62));  /* nobody had asked for partition 2 */
    /* the old attempt's task of partition 1 fails: the new attempt's may commit */
    em__commit_task_ended(c, 5, 1, 51, false);
    CHECK(em__commit_can_commit(c, 5, 1, 1, 61));
    em__commit_free(c);
}

TEST(failed_before_asking_is_barred)
{
    /* An attempt reported failed (say its executor was declared lost) that wakes up and asks
     * is denied even though nobody holds the partition. */
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);
    em__commit_task_ended(c, 9, 3, 90, false);
    CHECK(!em__commit_can_commit(c, 9, 0, 3, 90));
    CHECK(em__commit_can_commit(c, 9, 0, 3, 91));
    em__commit_free(c);
}

TEST(ended_stage_denies)
{
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);
    CHECK(em__commit_can_commit(c, 6, 0, 0, 1));
    em__commit_stage_ended(c, 6);
    CHECK(!em__commit_can_commit(c, 6, 0, 0, 1));
    CHECK(!em__commit_can_commit(c, 6, 0, 1, 2));
    em__commit_task_ended(c, 6, 1, 2, false); /* no effect, no crash */
    em__commit_stage_ended(c, 7);             /* a stage that never asked */
    CHECK(!em__commit_can_commit(c, 7, 0, 0, 3));
    CHECK(em__commit_can_commit(c, 8, 0, 0, 3));
    em__commit_task_ended(NULL, 1, 1, 1, true); /* no coordinator: no-op */
    em__commit_free(c);
}

enum { ASKERS = 8, PARTS = 64 };

typedef struct asker {
    em_commit_coordinator *c;
    pthread_barrier_t *go;
    int64_t task_base;
    int won[PARTS];
} asker;

static void *ask_all(void *arg)
{
    asker *a = arg;
    pthread_barrier_wait(a->go);
    for (int p = 0; p < PARTS; p++)
        a->won[p] = em__commit_can_commit(a->c, 1, 0, p, a->task_base + p);
    return NULL;
}

TEST(concurrent_askers_one_winner_per_partition)
{
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, ASKERS);
    asker a[ASKERS];
    pthread_t th[ASKERS];
    for (int i = 0; i < ASKERS; i++) {
        a[i] = (asker){.c = c, .go = &go, .task_base = (int64_t)i * 1000};
        CHECK(pthread_create(&th[i], NULL, ask_all, &a[i]) == 0);
    }
    for (int i = 0; i < ASKERS; i++) pthread_join(th[i], NULL);
    for (int p = 0; p < PARTS; p++) {
        int winners = 0;
        for (int i = 0; i < ASKERS; i++) winners += a[i].won[p];
        CHECK_MSG(winners == 1, "partition %d: %d attempts authorised", p, winners);
    }
    pthread_barrier_destroy(&go);
    em__commit_free(c);
}
