/* The output commit coordinator (see commit.h for the rules). One record per stage that asked
 * or saw a failure, newest first (a job's stages are the most recent), each with a table of
 * partitions grown on demand:
 *
 *   partition state:  FREE --can_commit(T)--> AUTHORISED(T) --task_ended(T, ok)--> COMMITTED
 *                      ^                           |
 *                      +--task_ended(T, failed)----+    (T is then barred: never authorised)
 *
 * An ended stage keeps a bare record (no partitions) so that late asks are denied rather than
 * starting afresh.
 *
 * Thread rule: any thread; every entry point takes c->mu.
 */
#include "scheduler/commit.h"

#include "base/base.h"

#include <pthread.h>

typedef struct commit_part {
    int64_t committer; /* the authorised task id, or -1 */
    bool committed;    /* the committer succeeded: final */
    int64_t *failed;   /* task ids that ended in failure: never authorised */
    int num_failed, cap_failed;
} commit_part;

typedef struct commit_stage {
    int stage_id;
    bool ended;
    commit_part *parts;
    int num_parts;
    struct commit_stage *next;
} commit_stage;

struct em_commit_coordinator {
    pthread_mutex_t mu;
    commit_stage *stages;
};

em_commit_coordinator *em__commit_new(void)
{
    em_commit_coordinator *c = em__calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void stage_free_parts(commit_stage *s)
{
    for (int i = 0; i < s->num_parts; i++) em__free(s->parts[i].failed);
    em__free(s->parts);
    s->parts = NULL;
    s->num_parts = 0;
}

void em__commit_free(em_commit_coordinator *c)
{
    if (!c) return;
    while (c->stages) {
        commit_stage *s = c->stages;
        c->stages = s->next;
        stage_free_parts(s);
        em__free(s);
    }
    pthread_mutex_destroy(&c->mu);
    em__free(c);
}

/* The record of stage_id, created when `create`; NULL when absent or out of memory. Under mu. */
static commit_stage *stage_get(em_commit_coordinator *c, int stage_id, bool create)
{
    for (commit_stage *s = c->stages; s; s = s->next)
        if (s->stage_id == stage_id) return s;
    if (!create) return NULL;
    commit_stage *s = em__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->stage_id = stage_id;
    s->next = c->stages;
    c->stages = s;
    return s;
}

/* The state of partition p of s, the table grown to hold it; NULL when out of memory or when
 * p is not in the table and !create. Under mu. */
static commit_part *part_get(commit_stage *s, int partition, bool create)
{
    if (partition < 0) return NULL;
    if (partition >= s->num_parts) {
        if (!create) return NULL;
        int n = EM_MAX(partition + 1, s->num_parts * 2);
        commit_part *v = em__realloc(s->parts, (size_t)n * sizeof *v);
        if (!v) return NULL;
        for (int i = s->num_parts; i < n; i++) v[i] = (commit_part){.committer = -1};
        s->parts = v;
        s->num_parts = n;
    }
    return &s->parts[partition];
}

static bool part_barred(const commit_part *p, int64_t task_id)
{
    for (int i = 0; i < p->num_failed; i++)
        if (p->failed[i] == task_id) return true;
    return false;
}

bool em__commit_can_commit(em_commit_coordinator *c, int stage_id, int stage_attempt, int partition,
                           int64_t task_id)
{
    pthread_mutex_lock(&c->mu);
    commit_stage *s = stage_get(c, stage_id, true);
    commit_part *p = s && !s->ended ? part_get(s, partition, true) : NULL;
    bool ok = false;
    const char *why;
    if (!s || (!s->ended && !p && partition >= 0))
        why = "out of memory in the commit coordinator";
    else if (s->ended)
        why = "the stage has ended";
    else if (!p)
        why = "no such partition";
    else if (p->committer == task_id)
        ok = true; /* asked again (a re-sent question) */
    else if (p->committer >= 0)
        why = p->committed ? "already committed" : "another attempt is authorised";
    else if (part_barred(p, task_id))
        why = "this attempt was already reported failed";
    else {
        p->committer = task_id;
        ok = true;
    }
    int64_t holder = p ? p->committer : -1;
    pthread_mutex_unlock(&c->mu);
    if (!ok)
        EM_LOG(EM_LOG_INFO, "commit",
               "denied commit of stage %d.%d partition %d to TID %lld: %s (committer: TID %lld)",
               stage_id, stage_attempt, partition, (long long)task_id, why, (long long)holder);
    return ok;
}

void em__commit_task_ended(em_commit_coordinator *c, int stage_id, int partition, int64_t task_id,
                           bool succeeded)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    /* Only a failure creates state: an attempt that failed must not commit later. */
    commit_stage *s = stage_get(c, stage_id, !succeeded);
    commit_part *p = s && !s->ended ? part_get(s, partition, !succeeded) : NULL;
    if (p && p->committer == task_id) {
        if (succeeded)
            p->committed = true;
        else if (!p->committed)
            p->committer = -1; /* released: a later attempt may commit */
    }
    if (p && !succeeded && !part_barred(p, task_id)) {
        if (p->num_failed == p->cap_failed) {
            int cap = p->cap_failed ? p->cap_failed * 2 : 4;
            int64_t *v = em__realloc(p->failed, (size_t)cap * sizeof *v);
            if (v) {
                p->failed = v;
                p->cap_failed = cap;
            }
        }
        if (p->num_failed < p->cap_failed) p->failed[p->num_failed++] = task_id;
    }
    pthread_mutex_unlock(&c->mu);
}

void em__commit_stage_ended(em_commit_coordinator *c, int stage_id)
{
    pthread_mutex_lock(&c->mu);
    commit_stage *s = stage_get(c, stage_id, true);
    if (s) {
        s->ended = true;
        stage_free_parts(s);
    }
    pthread_mutex_unlock(&c->mu);
}
