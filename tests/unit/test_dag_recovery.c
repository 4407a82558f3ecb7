/* Unit tests of the DAG scheduler's recovery decisions (dag.c) with a scripted backend and a
 * fake clock: the test plays the executors. It sees every task the scheduler launches, ends
 * each as it likes (success with a map output on a chosen executor, failure, fetch failure,
 * killed, commit denied), moves the clock, and checks what the scheduler launches, kills and
 * decides next: fetch failures batched into one resubmission after ember.stage.resubmitDelay
 * of only the lost map tasks, fetch failures of older stage attempts ignored, the
 * maxConsecutiveAttempts abort, retries avoiding the failed executor and the maxFailures abort
 * listing each attempt, speculation's threshold (quantile, multiplier, minTaskRuntime), the
 * copy placed away from the original, the loser killed and its end not counted.
 * Expected launches are worked out by hand in each test.
 */
#include "test.h"
#include "rdd_helpers.h"

#include "executor/executor.h"
#include "scheduler/scheduler.h"
#include "shuffle/tracker.h"

#include <ember/ember.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

/* ---- the scripted backend -------------------------------------------------------------------- */

#define MAX_TASKS 256

typedef struct script {
    em_backend base;
    em_context *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    em_task_desc *launched[MAX_TASKS]; /* in launch order; NULL once ended by the test */
    int num_launched;
    int64_t killed[MAX_TASKS];
    int num_killed;
    int cancelled;
    int stage_cancels, last_cancel_stage, last_cancel_attempt;
} script;

static script *the_script;
static int64_t fake_now = 1000;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static void s_launch(em_backend *b, em_task_desc *d)
{
    script *s = (script *)b;
    pthread_mutex_lock(&s->mu);
    CHECK(s->num_launched < MAX_TASKS);
    s->launched[s->num_launched++] = d;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static int s_cancel(em_backend *b, int job_id)
{
    script *s = (script *)b;
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->num_launched; i++) {
        em_task_desc *d = s->launched[i];
        if (d && d->job_id == job_id && em__task_desc_started(d, NULL) == 0) {
            s->launched[i] = NULL;
            em__task_desc_free(d);
            n++;
        }
    }
    s->cancelled += n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void s_cancel_stage(em_backend *b, int stage_id, int stage_attempt)
{
    script *s = (script *)b;
    pthread_mutex_lock(&s->mu);
    s->stage_cancels++;
    s->last_cancel_stage = stage_id;
    s->last_cancel_attempt = stage_attempt;
    pthread_mutex_unlock(&s->mu);
}

static void s_kill(em_backend *b, int64_t task_id, const char *reason)
{
    (void)reason;
    script *s = (script *)b;
    pthread_mutex_lock(&s->mu);
    s->killed[s->num_killed++] = task_id;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void s_stop(em_backend *b)
{
    script *s = (script *)b;
    for (int i = 0; i < s->num_launched; i++) em__task_desc_free(s->launched[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    em__free(s);
    the_script = NULL;
}

/* A context whose scheduler runs on the scripted backend and the fake clock. */
static em_context *scripted_context(const char *const *conf_kv)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    for (int i = 0; conf_kv && conf_kv[i]; i += 2)
        CHECK_OK(em_conf_set(conf, conf_kv[i], conf_kv[i + 1]));
    em_context *ctx = NULL;
    CHECK_OK(em_context_create("local[1]", "test", conf, &ctx));
    em_conf_free(conf);
    em_backend *local = em__scheduler_backend(ctx->sched);
    local->stop(local);
    script *s = em__calloc(1, sizeof *s);
    CHECK(s);
    s->base.launch = s_launch;
    s->base.cancel_queued = s_cancel;
    s->base.stop = s_stop;
    s->base.kill_task = s_kill;
    s->base.cancel_stage = s_cancel_stage;
    s->base.total_slots = 4;
    s->base.remote_executors = true;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    em__scheduler_set_backend(ctx->sched, &s->base);
    em__scheduler_set_clock(ctx->sched, fake_clock, NULL);
    the_script = s;
    ctx->max_failures = (int)em_conf_get_int(ctx->conf, "ember.task.maxFailures");
    return ctx;
}

static void advance(int64_t ms)
{
    __atomic_add_fetch(&fake_now, ms, __ATOMIC_SEQ_CST);
    em__sched_wake(the_script->ctx->sched);
}

/* Waits (real time, bounded) until n tasks were launched in all; returns the n-th (1-based). */
static em_task_desc *wait_launched(int n)
{
    script *s = the_script;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&s->mu);
    while (s->num_launched < n)
        CHECK_MSG(pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0,
                  "only %d of %d tasks launched", s->num_launched, n);
    em_task_desc *d = s->launched[n - 1];
    pthread_mutex_unlock(&s->mu);
    return d;
}

static int launched_count(void)
{
    pthread_mutex_lock(&the_script->mu);
    int n = the_script->num_launched;
    pthread_mutex_unlock(&the_script->mu);
    return n;
}

/* Gives the scheduler's thread time to act on what it was told (real time); used before
 * checking that it did NOT launch anything. */
static void settle(void)
{
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
}

static em_task_desc *take(int n) /* the n-th launched task (1-based), handed back to the test */
{
    em_task_desc *d = wait_launched(n);
    pthread_mutex_lock(&the_script->mu);
    CHECK_MSG(the_script->launched[n - 1] == d, "task %d already ended", n);
    the_script->launched[n - 1] = NULL;
    pthread_mutex_unlock(&the_script->mu);
    return d;
}

static void start(em_task_desc *d, int exec_id)
{
    em__task_desc_set_started(d, fake_clock(NULL), exec_id);
}

static void end_ok(em_task_desc *d, int exec_id, int num_reducers)
{
    d->ran_on_exec = exec_id;
    if (d->dep) {
        d->map_status.shuffle_id = d->dep->shuffle_id;
        d->map_status.map_id = d->partition;
        d->map_status.num_reducers = num_reducers;
        d->map_status.block_sizes = em__calloc((size_t)num_reducers, sizeof(int64_t));
        CHECK(d->map_status.block_sizes);
        d->location = (em_block_location){.exec_id = exec_id, .host = "h", .port = 1, .dir = "/x"};
    }
    em__sched_task_done(the_script->ctx->sched, d);
}

static void end_failed(em_task_desc *d, int exec_id, int status, const char *msg)
{
    d->ran_on_exec = exec_id;
    d->status = status;
    d->errmsg = em__strdup(msg);
    em__sched_task_done(the_script->ctx->sched, d);
}

static void end_fetch_failed(em_task_desc *d, int exec_id, int shuffle, int map, int map_exec)
{
    d->fetch_failed = true;
    d->ff_shuffle = shuffle;
    d->ff_map = map;
    d->ff_exec = map_exec;
    end_failed(d, exec_id, EM_EFETCH, "cannot fetch");
}

static bool was_killed(int64_t task_id)
{
    bool yes = false;
    pthread_mutex_lock(&the_script->mu);
    for (int i = 0; i < the_script->num_killed; i++) yes |= the_script->killed[i] == task_id;
    pthread_mutex_unlock(&the_script->mu);
    return yes;
}

/* ---- the job, on its own thread -------------------------------------------------------------- */

typedef struct job {
    em_context *ctx;
    em_job_spec spec;
    int rc;
    char msg[4096];
    pthread_t thread;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    j->rc = j->ctx->run_job(j->ctx, &j->spec);
    snprintf(j->msg, sizeof j->msg, "%s", j->rc ? em_errmsg() : "");
    return NULL;
}

/* A job over `maps` map tasks shuffled into `reducers` result tasks; *shuffle gets its id. */
static job *start_shuffle_job(em_context *ctx, int maps, int reducers, int *shuffle)
{
    int64_t v[64];
    for (int i = 0; i < 64; i++) v[i] = i;
    em_rdd *pairs = par_pairs(ctx, v, v, 64, maps);
    struct em_rdd *grouped = (struct em_rdd *)em_rdd_group_by_key(pairs, reducers);
    CHECK(grouped && grouped->num_deps == 1 && grouped->deps[0].kind == EM_DEP_SHUFFLE);
    *shuffle = grouped->deps[0].shuffle->shuffle_id;
    job *j = em__calloc(1, sizeof *j);
    CHECK(j);
    j->ctx = ctx;
    j->spec = (em_job_spec){.rdd = grouped, .call_site = "test"};
    CHECK(pthread_create(&j->thread, NULL, job_main, j) == 0);
    return j;
}

static job *start_plain_job(em_context *ctx, int parts)
{
    int64_t v[64];
    for (int i = 0; i < 64; i++) v[i] = i;
    job *j = em__calloc(1, sizeof *j);
    CHECK(j);
    j->ctx = ctx;
    j->spec =
        (em_job_spec){.rdd = (struct em_rdd *)par_ints(ctx, v, 64, parts), .call_site = "test"};
    CHECK(pthread_create(&j->thread, NULL, job_main, j) == 0);
    return j;
}

static int finish(job *j)
{
    pthread_join(j->thread, NULL);
    return j->rc;
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* 4 map tasks (maps 0,1 on executor 1; 2,3 on executor 2), 2 reducers. Both reducers fail to
 * fetch, one from each executor, 50 ms apart: nothing reruns until resubmitDelay (200 ms)
 * after the first; then the 4 lost map tasks run once (one batch, stage attempt 1), then the
 * 2 reducers (attempt 1). */
TEST(fetch_failures_batched_into_one_resubmission)
{
    const char *kv[] = {"ember.stage.resubmitDelay", "200ms", NULL};
    em_context *ctx = scripted_context(kv);
    int shuffle;
    job *j = start_shuffle_job(ctx, 4, 2, &shuffle);
    for (int i = 1; i <= 4; i++) end_ok(take(i), i <= 2 ? 1 : 2, 2);
    em_task_desc *r0 = take(5), *r1 = take(6);
    CHECK(!r0->dep && !r1->dep);
    int reduce_stage = r0->stage_id;
    end_fetch_failed(r0, 3, shuffle, 0, 1);
    settle();
    /* The cut-short attempt's queued tasks are cancelled, once. */
    pthread_mutex_lock(&the_script->mu);
    CHECK_EQ_INT(the_script->stage_cancels, 1);
    CHECK_EQ_INT(the_script->last_cancel_stage, reduce_stage);
    CHECK_EQ_INT(the_script->last_cancel_attempt, 0);
    pthread_mutex_unlock(&the_script->mu);
    advance(50);
    end_fetch_failed(r1, 3, shuffle, 2, 2);
    settle();
    advance(100); /* 150 ms after the first failure: not yet */
    settle();
    CHECK_EQ_INT(launched_count(), 6);
    advance(60); /* 210 ms */
    int maps_seen[4] = {0};
    for (int i = 7; i <= 10; i++) {
        em_task_desc *d = take(i);
        CHECK(d->dep && d->dep->shuffle_id == shuffle);
        CHECK_EQ_INT(d->stage_attempt, 1);
        maps_seen[d->partition]++;
        end_ok(d, 4, 2);
    }
    for (int m = 0; m < 4; m++) CHECK_EQ_INT(maps_seen[m], 1);
    for (int i = 11; i <= 12; i++) {
        em_task_desc *d = take(i);
        CHECK(!d->dep);
        CHECK_EQ_INT(d->stage_attempt, 1);
        end_ok(d, 4, 0);
    }
    CHECK_OK(finish(j));
    CHECK_EQ_INT(launched_count(), 12);
    em__free(j);
    em_context_stop(ctx);
}

/* Only the lost executor's outputs rerun: maps 0,1 on executor 1 stay; 2,3 on executor 2 are
 * lost; a fetch failure of an older attempt arriving later changes nothing. */
TEST(only_lost_outputs_rerun_and_old_attempts_ignored)
{
    const char *kv[] = {"ember.stage.resubmitDelay", "10ms", NULL};
    em_context *ctx = scripted_context(kv);
    int shuffle;
    job *j = start_shuffle_job(ctx, 4, 2, &shuffle);
    for (int i = 1; i <= 4; i++) end_ok(take(i), i <= 2 ? 1 : 2, 2);
    em_task_desc *r0 = take(5), *r1 = take(6);
    end_fetch_failed(r0, 3, shuffle, 3, 2);
    settle();
    advance(20);
    em_task_desc *m2 = take(7), *m3 = take(8);
    CHECK(m2->dep && m3->dep);
    CHECK_EQ_INT(m2->partition + m3->partition, 2 + 3);
    end_ok(m2, 3, 2);
    end_ok(m3, 3, 2);
    em_task_desc *n0 = take(9), *n1 = take(10);
    CHECK_EQ_INT(n0->stage_attempt, 1);
    /* The old attempt's other reducer fails to fetch now: ignored (no new map tasks). */
    end_fetch_failed(r1, 3, shuffle, 0, 1);
    settle();
    advance(20);
    settle();
    CHECK_EQ_INT(launched_count(), 10);
    end_ok(n0, 3, 0);
    end_ok(n1, 3, 0);
    CHECK_OK(finish(j));
    em__free(j);
    em_context_stop(ctx);
}

/* Two consecutive stage attempts ended by fetch failures with maxConsecutiveAttempts=2: abort. */
TEST(consecutive_fetch_failures_abort)
{
    const char *kv[] = {"ember.stage.resubmitDelay", "10ms", "ember.stage.maxConsecutiveAttempts",
                        "2", NULL};
    em_context *ctx = scripted_context(kv);
    int shuffle;
    job *j = start_shuffle_job(ctx, 1, 1, &shuffle);
    end_ok(take(1), 1, 1);
    end_fetch_failed(take(2), 2, shuffle, 0, 1);
    settle();
    advance(20);
    end_ok(take(3), 3, 1);
    end_fetch_failed(take(4), 2, shuffle, 0, 3);
    CHECK(finish(j) == EM_EJOB);
    CHECK_MSG(strstr(j->msg, "ember.stage.maxConsecutiveAttempts=2"), "%s", j->msg);
    em__free(j);
    em_context_stop(ctx);
}

/* A failing task is retried with the next attempt number, preferring another executor; the
 * 4th failure aborts the job with every attempt's cause. */
TEST(retries_then_abort_with_each_cause)
{
    em_context *ctx = scripted_context(NULL);
    job *j = start_plain_job(ctx, 2);
    end_ok(take(2), 1, 0);
    em_task_desc *d = take(1);
    for (int attempt = 0; attempt < 4; attempt++) {
        CHECK_EQ_INT(d->attempt, attempt);
        CHECK_EQ_INT(d->avoid_exec, attempt == 0 ? -1 : attempt);
        char msg[64];
        snprintf(msg, sizeof msg, "boom %d", attempt);
        end_failed(d, attempt + 1, EM_EIO, msg);
        if (attempt < 3) d = take(3 + attempt);
    }
    CHECK(finish(j) == EM_EJOB);
    CHECK_MSG(strstr(j->msg, "partition 0 failed 4 times") && strstr(j->msg, "boom 3") &&
                  strstr(j->msg, "attempt 0 (TID") && strstr(j->msg, "boom 0") &&
                  strstr(j->msg, "boom 2"),
              "%s", j->msg);
    em__free(j);
    em_context_stop(ctx);
}

/* Speculation with quantile 0.5, multiplier 2, minTaskRuntime 10 ms over 4 tasks: after 2
 * succeed in 100 ms the threshold is 200 ms; at 150 ms nothing is speculated, at 250 ms the 2
 * others get a copy each, away from their executors. Partition 2's copy wins (the original is
 * killed and its end not counted); partition 3's original wins (the copy is killed and is then
 * denied its commit: not counted). */
TEST(speculation_copies_stragglers_and_kills_losers)
{
    const char *kv[] = {"ember.speculation",
                        "true",
                        "ember.speculation.quantile",
                        "0.5",
                        "ember.speculation.multiplier",
                        "2",
                        "ember.speculation.minTaskRuntime",
                        "10ms",
                        "ember.speculation.interval",
                        "50ms",
                        "ember.task.maxFailures",
                        "1",
                        NULL};
    em_context *ctx = scripted_context(kv);
    job *j = start_plain_job(ctx, 4);
    em_task_desc *t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = take(i + 1);
        start(t[i], 10 + i);
    }
    __atomic_add_fetch(&fake_now, 100, __ATOMIC_SEQ_CST);
    end_ok(t[0], 10, 0);
    end_ok(t[1], 11, 0);
    settle();
    advance(50); /* 150 ms: under the threshold */
    settle();
    CHECK_EQ_INT(launched_count(), 4);
    advance(100); /* 250 ms */
    em_task_desc *c1 = take(5), *c2 = take(6);
    if (c1->partition == 3) {
        em_task_desc *x = c1;
        c1 = c2;
        c2 = x;
    }
    CHECK_EQ_INT(c1->partition, 2);
    CHECK_EQ_INT(c2->partition, 3);
    CHECK(c1->speculative && c2->speculative);
    CHECK_EQ_INT(c1->never_exec, 12);
    CHECK_EQ_INT(c2->never_exec, 13);
    CHECK_EQ_INT(c1->attempt, 1);
    start(c1, 20);
    start(c2, 21);
    end_ok(c1, 20, 0);
    settle();
    CHECK(was_killed(t[2]->task_id));
    CHECK(!was_killed(t[3]->task_id) && !was_killed(c2->task_id));
    /* With maxFailures=1 a counted failure would abort the job. */
    end_failed(t[2], 12, EM_EKILLED, "task killed");
    end_ok(t[3], 13, 0);
    CHECK_OK(finish(j)); /* without waiting for the losing copy */
    CHECK(was_killed(c2->task_id));
    CHECK_EQ_INT(launched_count(), 6);
    end_failed(c2, 21, EM_EKILLED, "task killed"); /* after its job: ignored */
    em__free(j);
    em_context_stop(ctx);
}

/* A copy's failure while the original still runs is counted but not retried; a copy denied
 * its commit is not counted; when the original then fails, a new attempt runs. */
TEST(failed_copy_not_retried_while_original_runs)
{
    const char *kv[] = {"ember.speculation",
                        "true",
                        "ember.speculation.quantile",
                        "0.5",
                        "ember.speculation.multiplier",
                        "1",
                        "ember.speculation.minTaskRuntime",
                        "1ms",
                        "ember.speculation.interval",
                        "10ms",
                        "ember.task.maxFailures",
                        "3",
                        NULL};
    em_context *ctx = scripted_context(kv);
    job *j = start_plain_job(ctx, 2);
    em_task_desc *a = take(1), *b = take(2);
    int pb = b->partition; /* b is freed once ended */
    start(a, 1);
    start(b, 2);
    __atomic_add_fetch(&fake_now, 10, __ATOMIC_SEQ_CST);
    end_ok(a, 1, 0);
    settle();
    advance(30);
    em_task_desc *copy = take(3);
    CHECK_EQ_INT(copy->partition, pb);
    CHECK_EQ_INT(copy->never_exec, 2);
    end_failed(copy, 3, EM_EIO, "disk full");
    settle();
    advance(30);
    settle();
    CHECK_EQ_INT(launched_count(), 3); /* no retry, and no second copy of the same partition */
    end_failed(b, 2, EM_ECOMMITDENIED, "commit denied");
    em_task_desc *retry = take(4); /* no copy runs any more: a new attempt, not counted */
    CHECK_EQ_INT(retry->partition, pb);
    CHECK_EQ_INT(retry->attempt, 2);
    CHECK(!retry->speculative);
    end_failed(retry, 2, EM_EIO, "disk full again"); /* the 2nd counted failure */
    em_task_desc *last = take(5);
    end_ok(last, 4, 0);
    CHECK_OK(finish(j));
    em__free(j);
    em_context_stop(ctx);
}

/* A waiting stage whose other parent finished and then lost its outputs (a fetch failure in
 * a sibling branch unregistered every output of their executor): when the sibling is done,
 * that parent is submitted again instead of the job stalling. result = union(X, Y) with
 * X = groupByKey(a) (shuffle sx, 4 maps) and Y = groupByKey(groupByKey(b)) (shuffle sy reading
 * sz, 2 maps each); every first output is on executor 1. */
TEST(lost_outputs_of_a_finished_parent_are_recomputed)
{
    const char *kv[] = {"ember.stage.resubmitDelay", "10ms", NULL};
    em_context *ctx = scripted_context(kv);
    int64_t v[16];
    for (int i = 0; i < 16; i++) v[i] = i;
    struct em_rdd *x = (struct em_rdd *)em_rdd_group_by_key(par_pairs(ctx, v, v, 16, 4), 2);
    struct em_rdd *z = (struct em_rdd *)em_rdd_group_by_key(par_pairs(ctx, v, v, 16, 2), 2);
    struct em_rdd *y = (struct em_rdd *)em_rdd_group_by_key((em_rdd *)z, 2);
    int sx = x->deps[0].shuffle->shuffle_id, sz = z->deps[0].shuffle->shuffle_id;
    int sy = y->deps[0].shuffle->shuffle_id;
    job *j = em__calloc(1, sizeof *j);
    CHECK(j);
    j->ctx = ctx;
    j->spec = (em_job_spec){.rdd = (struct em_rdd *)em_rdd_union((em_rdd *)x, (em_rdd *)y),
                            .call_site = "test"};
    CHECK(pthread_create(&j->thread, NULL, job_main, j) == 0);
    int n = 0, of[64] = {0};
    /* sx's 4 maps and sz's 2, all on executor 1. */
    for (int i = 0; i < 6; i++) {
        em_task_desc *d = take(++n);
        CHECK(d->dep && (d->dep->shuffle_id == sx || d->dep->shuffle_id == sz));
        of[d->dep->shuffle_id]++;
        end_ok(d, 1, 2);
    }
    CHECK_EQ_INT(of[sx], 4);
    CHECK_EQ_INT(of[sz], 2);
    /* sy's 2 maps: one cannot fetch sz's output from executor 1 -> all of executor 1's
     * outputs (sx's too) are unregistered; the other ends killed. */
    em_task_desc *y0 = take(++n), *y1 = take(++n);
    CHECK(y0->dep->shuffle_id == sy && y1->dep->shuffle_id == sy);
    end_fetch_failed(y0, 2, sz, 0, 1);
    end_failed(y1, 2, EM_EKILLED, "not launched");
    settle();
    advance(20);
    for (int i = 0; i < 2; i++) { /* sz again, on executor 3 */
        em_task_desc *d = take(++n);
        CHECK(d->dep && d->dep->shuffle_id == sz);
        end_ok(d, 3, 2);
    }
    /* sy again, and sx: lost although its stage had finished (in either order). */
    memset(of, 0, sizeof of);
    for (int i = 0; i < 6; i++) {
        em_task_desc *d = take(++n);
        CHECK_MSG(d->dep && (d->dep->shuffle_id == sy || d->dep->shuffle_id == sx),
                  "task %d: shuffle %d", n, d->dep ? d->dep->shuffle_id : -1);
        of[d->dep->shuffle_id]++;
        end_ok(d, 3, 2);
    }
    CHECK_EQ_INT(of[sy], 2);
    CHECK_EQ_INT(of[sx], 4);
    for (int i = 0; i < 4; i++) { /* the result: 2 + 2 partitions */
        em_task_desc *d = take(++n);
        CHECK(!d->dep);
        end_ok(d, 3, 0);
    }
    CHECK_OK(finish(j));
    CHECK_EQ_INT(launched_count(), n);
    em__free(j);
    em_context_stop(ctx);
}

/* The threshold rule alone. */
TEST(speculation_rule)
{
    int64_t d[5] = {50, 10, 40, 20, 30};
    int64_t t = -1;
    CHECK(!em__speculation_threshold(d, 2, 5, 0.75, 1.5, 100, &t)); /* 2 < floor(3.75) */
    CHECK(em__speculation_threshold(d, 4, 5, 0.75, 1.5, 0, &t));
    CHECK_EQ_INT(t, 60); /* sorted 10 20 40 50: middle (upper) 40 x 1.5 */
    CHECK(em__speculation_threshold(d, 5, 5, 0.75, 1.5, 100, &t));
    CHECK_EQ_INT(t, 100); /* 30 x 1.5 = 45 < minTaskRuntime */
    int64_t one = 7;
    CHECK(em__speculation_threshold(&one, 1, 2, 0.1, 2, 0, &t)); /* at least 1 must finish */
    CHECK_EQ_INT(t, 14);
}
