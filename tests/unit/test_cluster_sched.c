/* Unit tests of the cluster scheduler backend on local-cluster (real master, worker and
 * executor processes): locality (a task reading a cached partition runs on the executor that
 * holds it), unpersist dropping executors' copies, large results fetched from executors in
 * chunks and ember.driver.maxResultSize, and a function that runs in executors only (getpid differs
 * from the driver's). Expectations are computed in the test.
 */
#include "test.h"
#include "rdd_helpers.h"

#include <ember/ember.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

enum { PARTS = 7, PER = 50 }; /* odd: plain round-robin would move partitions between jobs */

/* x -> (partition, pid): which process computed it; counts its calls in an accumulator. */
static int tag_pid(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)in;
    int rc = em_accumulator_add_int64(t, *(const uint64_t *)arg, 1);
    if (rc) return rc;
    em_put_tuple_begin(out);
    em_put_int64(out, em_task_partition(t));
    em_put_int64(out, (int64_t)getpid());
    em_put_end(out);
    return 0;
}

/* (partition, pid) -> (partition, pid, pid now). */
static int add_pid(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    em_put_tuple_begin(out);
    em_put_value(out, em_value_at(in, 0));
    em_put_value(out, em_value_at(in, 1));
    em_put_int64(out, (int64_t)getpid());
    em_put_end(out);
    return 0;
}

TEST(cached_partitions_run_where_they_are)
{
    em_context *ctx = ctx_with("local-cluster[2,1,256]", "ember.locality.wait", "30s");
    CHECK(ctx);
    em_accumulator *computed;
    CHECK_OK(em_accumulator_create_int64(ctx, "computed", &computed));
    uint64_t acc = em_accumulator_id(computed);
    em_rdd *tagged = em_rdd_cache(
        em_rdd_map(em_range(ctx, 0, PARTS * PER, 1, PARTS), tag_pid, &acc, sizeof acc));
    int64_t n;
    CHECK_OK(em_rdd_count(tagged, &n));
    CHECK_EQ_INT(n, PARTS * PER);
    CHECK_EQ_INT(em_accumulator_int64(computed), PARTS * PER);
    for (int round = 0; round < 3; round++) {
        em_records *r;
        CHECK_OK(em_rdd_collect(em_rdd_map(tagged, add_pid, NULL, 0), &r));
        CHECK_EQ_INT(em_records_count(r), PARTS * PER);
        int64_t pid_of[PARTS] = {0};
        for (size_t i = 0; i < em_records_count(r); i++) {
            em_value v = em_records_at(r, i);
            int64_t part = em_value_int64(em_value_at(v, 0));
            int64_t cached = em_value_int64(em_value_at(v, 1));
            int64_t now = em_value_int64(em_value_at(v, 2));
            CHECK(part >= 0 && part < PARTS);
            CHECK(cached != (int64_t)getpid()); /* computed in an executor */
            /* the cache served the values (same pid as when cached) and the task ran there */
            CHECK_MSG(now == cached, "partition %lld cached in pid %lld read in pid %lld",
                      (long long)part, (long long)cached, (long long)now);
            if (!pid_of[part]) pid_of[part] = cached;
            CHECK_EQ_INT(pid_of[part], cached);
        }
        em_records_free(r);
        /* served from the executors' caches: nothing computed again */
        CHECK_EQ_INT(em_accumulator_int64(computed), PARTS * PER);
    }

    /* After unpersist, the partitions are computed again (new tags are still in executors). */
    em_rdd_unpersist(tagged);
    em_records *r;
    CHECK_OK(em_rdd_collect(tagged, &r));
    CHECK_EQ_INT(em_records_count(r), PARTS * PER);
    em_records_free(r);
    CHECK_EQ_INT(em_accumulator_int64(computed), 2 * PARTS * PER);
    em_context_stop(ctx);
}

/* One big string per partition. */
static int big_string(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    (void)t;
    size_t len = *(const size_t *)arg;
    em_value v;
    while (em_iter_next(in, &v) == EM_ROW) {
    }
    char *s = malloc(len);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)('a' + (i * 7 + (size_t)em_task_partition(t)) % 26);
    em_put_str(out, s, len);
    free(s);
    return 0;
}

TEST(large_results_and_max_result_size)
{
    em_context *ctx = ctx_with("local-cluster[2,1,256]", "ember.driver.maxResultSize", "12m");
    CHECK(ctx);
    /* 5 MiB per partition: over ember.task.maxDirectResultSize (1m), so each result stays in
     * its executor and is fetched in chunks (4 MiB); 2 partitions are under the limit. */
    size_t len = 5 << 20;
    em_rdd *two = em_rdd_map_partitions(em_range(ctx, 0, 2, 1, 2), big_string, &len, sizeof len);
    em_records *r;
    CHECK_OK(em_rdd_collect(two, &r));
    CHECK_EQ_INT(em_records_count(r), 2);
    for (size_t p = 0; p < 2; p++) {
        size_t got;
        const char *s = em_value_str(em_records_at(r, p), &got);
        CHECK_EQ_INT(got, len);
        for (size_t i = 0; i < len; i += 4093) CHECK(s[i] == (char)('a' + (i * 7 + p) % 26));
    }
    em_records_free(r);
    /* 4 partitions of 5 MiB: over 12m -> a clear error naming the option, before fetching. */
    em_rdd *four = em_rdd_map_partitions(em_range(ctx, 0, 4, 1, 4), big_string, &len, sizeof len);
    CHECK_EQ_INT(em_rdd_collect(four, &r), EM_ETOOBIG);
    CHECK_MSG(strstr(em_errmsg(), "ember.driver.maxResultSize"), "message: %s", em_errmsg());
    em_context_stop(ctx);
}

/* An executor that stops answering (SIGSTOP) is declared lost after ember.network.timeout
 * although its connection stays open; its tasks run again elsewhere and the answer is right. */
TEST(silent_executor_is_lost_and_its_tasks_rerun)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    CHECK_OK(em_conf_set(conf, "ember.network.timeout", "1500ms"));
    CHECK_OK(em_conf_set(conf, "ember.executor.heartbeatInterval", "100ms"));
    em_context *ctx = NULL;
    CHECK_OK(em_context_create("local-cluster[2,1,256]", "test", conf, &ctx));
    em_conf_free(conf);
    em_accumulator *computed;
    CHECK_OK(em_accumulator_create_int64(ctx, "computed", &computed));
    uint64_t acc = em_accumulator_id(computed);
    em_records *r;
    /* Which processes are the executors? */
    CHECK_OK(
        em_rdd_collect(em_rdd_map(em_range(ctx, 0, 64, 1, 16), tag_pid, &acc, sizeof acc), &r));
    int64_t victim = em_value_int64(em_value_at(em_records_at(r, 0), 1));
    em_records_free(r);
    CHECK(victim > 0 && victim != (int64_t)getpid());
    CHECK_EQ_INT(kill((pid_t)victim, SIGSTOP), 0);
    int64_t n = 0;
    CHECK_OK(em_rdd_count(em_rdd_map(em_range(ctx, 0, 1000, 1, 8), tag_pid, &acc, sizeof acc), &n));
    CHECK_EQ_INT(n, 1000);
    kill((pid_t)victim, SIGCONT);
    em_context_stop(ctx);
}

/* Attempt 0 of each partition writes its pid to a file and fails; the retry outputs
 * (pid of the failed attempt, its own pid). */
static int fail_first_attempt(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)in;
    (void)arg;
    char path[1200];
    snprintf(path, sizeof path, "%s/attempt0-%d", test_tmpdir(), em_task_partition(t));
    if (em_task_attempt(t) == 0) {
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
        return em_task_fail(t, "first attempt fails on purpose");
    }
    FILE *f = fopen(path, "r");
    int first = 0;
    if (!f || fscanf(f, "%d", &first) != 1) first = -1;
    if (f) fclose(f);
    em_put_tuple_begin(out);
    em_put_int64(out, first);
    em_put_int64(out, (int64_t)getpid());
    em_put_end(out);
    return 0;
}

TEST(retries_go_to_another_executor)
{
    em_context *ctx = ctx_with("local-cluster[2,1,256]", "ember.locality.wait", "10s");
    CHECK(ctx);
    em_records *r;
    CHECK_OK(
        em_rdd_collect(em_rdd_map(em_range(ctx, 0, 2, 1, 2), fail_first_attempt, NULL, 0), &r));
    CHECK_EQ_INT(em_records_count(r), 2);
    for (size_t i = 0; i < 2; i++) {
        em_value v = em_records_at(r, i);
        int64_t first = em_value_int64(em_value_at(v, 0)),
                retry = em_value_int64(em_value_at(v, 1));
        CHECK(first > 0);
        CHECK_MSG(first != retry, "the retry ran in the executor that failed (pid %lld)",
                  (long long)first);
    }
    em_records_free(r);
    em_context_stop(ctx);
}
