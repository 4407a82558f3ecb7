/* The DAG scheduler: turns a job (an RDD, partitions, a result function) into stages cut at
 * shuffle dependencies, runs them parents first as task sets on the backend, retries failed
 * tasks, and aborts the job with a message naming stage, partition, attempts and cause.
 *
 * Shuffle map stages are kept for the life of the context, keyed by shuffle id, so a later
 * job whose lineage reaches a shuffle that still has all its map outputs (map output tracker)
 * skips that stage entirely; a stage with some outputs missing runs only the missing tasks.
 *
 * Stage life within a job:
 *
 *   IDLE --submit_stage--> WAITING --parents available--> RUNNING --all tasks ok--> DONE
 *    |                        ^                            |  ^                     |
 *    +--outputs registered:   |                            |  +--task failed,       |
 *       skipped               |        fetch failure       |     retried            |
 *                             +-- RESUBMIT <---------------+     (< maxFailures)    |
 *                   (ember.stage.resubmitDelay later, batched)                      |
 *    IDLE <--outputs lost since (a waiting child needs them: submit_ready_waiting)--+
 *
 * Task attempt life: LAUNCHED (backend queue) -> RUNNING (task thread) -> SUCCEEDED / FAILED.
 * A FAILED attempt counts unless it was killed, denied its commit, of an older stage attempt or
 * of a partition already done; the partition is relaunched (next attempt number) when no other
 * attempt of it runs, until ember.task.maxFailures counted failures abort the job: queued tasks
 * are cancelled, running ones drained, then run_job returns. With ember.speculation a task
 * running past the stage's threshold gets one copy elsewhere; the first success kills the rest.
 *
 * Thread rule: one job at a time per context (job_mu), run on the calling driver thread; the
 * backend's task threads only post completions (mu/cv guard the completion queue).
 */
#include "scheduler/commit.h"
#include "scheduler/scheduler.h"

#include "scheduler/health.h"
#include "shuffle/tracker.h"
#include "storage/shared.h"
#include <stdio.h>
#include <string.h>

typedef struct stage {
    int id;
    bool is_map;
    struct em_rdd *rdd;  /* map stage: the shuffle's parent; result stage: the final RDD */
    em_shuffle_dep *dep; /* map stages */
    struct stage **parents;
    int num_parents;
    int attempt;               /* attempts started so far */
    int fetch_failed_attempts; /* consecutive attempts ended by a fetch failure */
    /* per-job state, valid when job_stamp == the running job's id */
    int job_stamp;
    enum { ST_IDLE, ST_WAITING, ST_RUNNING, ST_DONE, ST_RESUBMIT } state;
    int pending;
    int *failures;       /* per partition, this job */
    em_buf *causes;      /* per partition, this job: "attempt A: cause; " of each failed attempt */
    int *next_attempt;   /* per partition, this job: the attempt number of its next launch */
    uint8_t *succeeded;  /* per partition, this stage attempt */
    uint8_t *speculated; /* per partition, this stage attempt: a copy was launched */
    int *copies;         /* per partition: attempts running now */
    /* attempts launched and not completed (any attempt of the stage): the descriptions are the
     * backend's until their completion is handled; started_ms / running_exec read atomically */
    em_task_desc **running;
    int num_running, cap_running;
    int num_tasks;      /* this stage attempt */
    int64_t *durations; /* run times of this attempt's successful tasks (ms) */
    int num_durations, cap_durations;
    struct stage *next;
} stage;

struct em_scheduler {
    em_context *ctx;
    em_backend *backend;
    pthread_mutex_t job_mu;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    em_task_desc *done_head, *done_tail;
    stage *map_stages;
    int next_stage_id;
    int64_t next_task_id;
    em__health *health;   /* executors in other processes only: excludeOnFailure */
    em_sched_clock clock; /* em__now_ms unless a test installed a fake one */
    void *clock_arg;
    bool wake; /* em__sched_wake was called */
};

/* The state of the running job (on the job's thread only). */
typedef struct job_run {
    struct em_scheduler *s;
    const em_job_spec *spec;
    int job_id;
    const int *parts;
    int num_parts;
    bool *part_done;
    int remaining;
    int outstanding; /* tasks launched and not yet completed */
    stage *final;
    stage **waiting;
    int num_waiting, cap_waiting;
    int64_t result_bytes, max_result;
    /* Stages whose attempt ended with a fetch failure, resubmitted together at resubmit_at
     * (ember.stage.resubmitDelay after the first failure: later ones join the batch). */
    stage **failed;
    int num_failed, cap_failed;
    int64_t resubmit_at; /* 0: none pending */
    /* speculation (ember.speculation, executors in other processes only) */
    bool speculation;
    int64_t spec_interval, spec_min_runtime, next_spec_check;
    double spec_multiplier, spec_quantile;
    int abort_rc;
    char abort_msg[4096];
} job_run;

/* Walks the stages a job may use, its result stage first, then every map stage:
 * for (stage *st = j->final; st; st = next_stage(j, st)). */
static stage *next_stage(const job_run *j, const stage *st)
{
    return st == j->final ? j->s->map_stages : st->next;
}

/* ---- stages ---------------------------------------------------------------------------------- */

static stage *map_stage_for(struct em_scheduler *s, em_shuffle_dep *dep);

typedef struct rdd_set {
    struct em_rdd **v;
    int n, cap;
} rdd_set;

static bool rdd_set_add(rdd_set *set, struct em_rdd *r)
{
    for (int i = 0; i < set->n; i++)
        if (set->v[i] == r) return false;
    if (set->n == set->cap) {
        int cap = set->cap ? set->cap * 2 : 16;
        struct em_rdd **v = em__realloc(set->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        set->v = v;
        set->cap = cap;
    }
    set->v[set->n++] = r;
    return true;
}

/* The map stages directly below r (through narrow dependencies). */
static int parent_stages(struct em_scheduler *s, struct em_rdd *r, stage ***out, int *n_out)
{
    rdd_set seen = {0}, stack = {0};
    stage **parents = NULL;
    int n = 0, rc = 0;
    rdd_set_add(&stack, r);
    rdd_set_add(&seen, r);
    while (stack.n > 0 && !rc) {
        struct em_rdd *x = stack.v[--stack.n];
        for (int i = 0; i < x->num_deps && !rc; i++) {
            em_dep *d = &x->deps[i];
            if (d->kind == EM_DEP_SHUFFLE) {
                stage *p = map_stage_for(s, d->shuffle);
                if (!p) {
                    rc = EM_ENOMEM;
                    break;
                }
                bool dup = false;
                for (int j = 0; j < n; j++) dup |= parents[j] == p;
                if (dup) continue;
                stage **np = em__realloc(parents, (size_t)(n + 1) * sizeof *np);
                if (!np) {
                    rc = EM_ENOMEM;
                    break;
                }
                parents = np;
                parents[n++] = p;
            } else if (rdd_set_add(&seen, d->rdd)) {
                /* Re-push: rdd_set_add on the stack may refuse a duplicate, so push directly. */
                if (stack.n == stack.cap) {
                    int cap = stack.cap ? stack.cap * 2 : 16;
                    struct em_rdd **v = em__realloc(stack.v, (size_t)cap * sizeof *v);
                    if (!v) {
                        rc = EM_ENOMEM;
                        break;
                    }
                    stack.v = v;
                    stack.cap = cap;
                }
                stack.v[stack.n++] = d->rdd;
            }
        }
    }
    em__free(seen.v);
    em__free(stack.v);
    if (rc) {
        em__free(parents);
        return rc;
    }
    *out = parents;
    *n_out = n;
    return 0;
}

static int stage_slots(const stage *st)
{
    return st->rdd->num_partitions ? st->rdd->num_partitions : 1;
}

static void free_job_state(stage *st)
{
    if (st->causes)
        for (int i = 0; i < stage_slots(st); i++) em_buf_free(&st->causes[i]);
    em__free(st->causes);
    em__free(st->failures);
    em__free(st->next_attempt);
    em__free(st->succeeded);
    em__free(st->speculated);
    em__free(st->copies);
    em__free(st->running);
    em__free(st->durations);
    st->causes = NULL;
    st->failures = st->next_attempt = st->copies = NULL;
    st->succeeded = st->speculated = NULL;
    st->running = NULL;
    st->durations = NULL;
    st->num_running = st->cap_running = 0;
    st->num_durations = st->cap_durations = 0;
}

static stage *stage_new(struct em_scheduler *s, bool is_map, struct em_rdd *rdd,
                        em_shuffle_dep *dep)
{
    stage *st = em__calloc(1, sizeof *st);
    if (!st) return NULL;
    st->is_map = is_map;
    st->rdd = rdd;
    st->dep = dep;
    st->id = s->next_stage_id++;
    st->job_stamp = -1;
    if (parent_stages(s, rdd, &st->parents, &st->num_parents)) {
        em__free(st);
        return NULL;
    }
    return st;
}

static void stage_free(stage *st)
{
    if (!st) return;
    em__free(st->parents);
    free_job_state(st);
    em__free(st);
}

static stage *map_stage_for(struct em_scheduler *s, em_shuffle_dep *dep)
{
    for (stage *st = s->map_stages; st; st = st->next)
        if (st->dep->shuffle_id == dep->shuffle_id) return st;
    if (em_map_outputs_register_shuffle(s->ctx->map_outputs, dep->shuffle_id,
                                        dep->parent->num_partitions))
        return NULL;
    stage *st = stage_new(s, true, dep->parent, dep);
    if (!st) return NULL;
    st->next = s->map_stages;
    s->map_stages = st;
    return st;
}

static bool stage_available(struct em_scheduler *s, stage *st)
{
    int dummy;
    return em_map_outputs_missing(s->ctx->map_outputs, st->dep->shuffle_id, &dummy, 0) == 0;
}

/* Stamps st as part of this job, resetting its per-job state the first time. */
static int touch(job_run *j, stage *st)
{
    if (st->job_stamp == j->job_id) return 0;
    st->job_stamp = j->job_id;
    st->state = ST_IDLE;
    st->pending = 0;
    free_job_state(st);
    size_t n = (size_t)stage_slots(st);
    st->failures = em__calloc(n, sizeof *st->failures);
    st->causes = em__calloc(n, sizeof *st->causes);
    st->next_attempt = em__calloc(n, sizeof *st->next_attempt);
    st->succeeded = em__calloc(n, 1);
    st->speculated = em__calloc(n, 1);
    st->copies = em__calloc(n, sizeof *st->copies);
    return st->failures && st->causes && st->next_attempt && st->succeeded && st->speculated &&
                   st->copies
               ? 0
               : EM_ENOMEM;
}

static int64_t now_ms(const struct em_scheduler *s)
{
    return s->clock(s->clock_arg);
}

static int64_t real_clock(void *arg)
{
    (void)arg;
    return em__now_ms();
}

/* ---- launching ------------------------------------------------------------------------------- */

static void abort_job(job_run *j, int rc, const char *fmt, ...) EM_PRINTF(3, 4);
static void abort_job(job_run *j, int rc, const char *fmt, ...)
{
    if (j->abort_rc) return;
    j->abort_rc = rc ? rc : EM_EJOB;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->abort_msg, sizeof j->abort_msg, fmt, ap);
    va_end(ap);
}

static int running_add(stage *st, em_task_desc *d)
{
    if (st->num_running == st->cap_running) {
        int cap = st->cap_running ? st->cap_running * 2 : 16;
        em_task_desc **v = em__realloc(st->running, (size_t)cap * sizeof *v);
        if (!v) return EM_ENOMEM;
        st->running = v;
        st->cap_running = cap;
    }
    d->sched_slot = st->num_running;
    st->running[st->num_running++] = d;
    st->copies[d->partition]++;
    return 0;
}

static void running_remove(stage *st, em_task_desc *d)
{
    int i = d->sched_slot;
    if (i < 0 || i >= st->num_running || st->running[i] != d) return;
    st->running[i] = st->running[--st->num_running];
    if (i < st->num_running) st->running[i]->sched_slot = i;
    st->copies[d->partition]--;
}

/* Launches an attempt of partition (the next attempt number). avoid_exec: where the previous
 * attempt failed (a preference); never_exec: where it must not run (a speculative copy). */
static void launch(job_run *j, stage *st, int partition, intptr_t result_index, int avoid_exec,
                   int never_exec, bool speculative)
{
    em_task_desc *d = em__calloc(1, sizeof *d);
    if (!d) {
        abort_job(j, EM_ENOMEM, "job %d aborted: out of memory launching a task", j->job_id);
        return;
    }
    d->task_id = j->s->next_task_id++;
    d->job_id = j->job_id;
    d->stage_id = st->id;
    d->stage_attempt = st->attempt - 1;
    d->partition = partition;
    d->attempt = st->next_attempt[partition]++;
    d->rdd = st->rdd;
    d->dep = st->is_map ? st->dep : NULL;
    d->fn = st->is_map ? NULL : j->spec->fn;
    d->fn_arg = j->spec->fn_arg;
    d->fn_arg_len = j->spec->fn_arg_len;
    d->sched_data = (void *)result_index;
    d->avoid_exec = avoid_exec;
    d->never_exec = never_exec;
    d->speculative = speculative;
    d->ran_on_exec = -1;
    d->running_exec = -1;
    if (running_add(st, d)) {
        em__free(d);
        abort_job(j, EM_ENOMEM, "job %d aborted: out of memory launching a task", j->job_id);
        return;
    }
    st->pending++;
    j->outstanding++;
    j->s->backend->launch(j->s->backend, d);
}

static void submit_ready_waiting(job_run *j);

static void submit_tasks(job_run *j, stage *st)
{
    st->state = ST_RUNNING;
    st->attempt++;
    size_t slots = (size_t)stage_slots(st);
    memset(st->succeeded, 0, slots);
    memset(st->speculated, 0, slots);
    st->num_durations = 0;
    if (st->is_map) {
        int n = st->rdd->num_partitions;
        int *missing = em__calloc((size_t)(n ? n : 1), sizeof *missing);
        if (!missing) {
            abort_job(j, EM_ENOMEM, "job %d aborted: out of memory", j->job_id);
            return;
        }
        int m = em_map_outputs_missing(j->s->ctx->map_outputs, st->dep->shuffle_id, missing, n);
        EM_LOG(EM_LOG_INFO, "dag", "job %d: submitting stage %d (shuffle %d, %d of %d tasks)",
               j->job_id, st->id, st->dep->shuffle_id, m, n);
        st->num_tasks = m;
        for (int i = 0; i < m && !j->abort_rc; i++) launch(j, st, missing[i], -1, -1, -1, false);
        em__free(missing);
        if (m == 0) { /* its outputs came back meanwhile */
            st->state = ST_DONE;
            submit_ready_waiting(j);
        }
    } else {
        EM_LOG(EM_LOG_INFO, "dag", "job %d: submitting result stage %d (%d tasks)", j->job_id,
               st->id, j->remaining);
        st->num_tasks = j->remaining;
        for (int i = 0; i < j->num_parts && !j->abort_rc; i++)
            if (!j->part_done[i]) launch(j, st, j->parts[i], i, -1, -1, false);
    }
}

static void submit_stage(job_run *j, stage *st);

static void add_waiting(job_run *j, stage *st)
{
    if (j->num_waiting == j->cap_waiting) {
        int cap = j->cap_waiting ? j->cap_waiting * 2 : 8;
        stage **w = em__realloc(j->waiting, (size_t)cap * sizeof *w);
        if (!w) {
            abort_job(j, EM_ENOMEM, "job %d aborted: out of memory", j->job_id);
            return;
        }
        j->waiting = w;
        j->cap_waiting = cap;
    }
    j->waiting[j->num_waiting++] = st;
    st->state = ST_WAITING;
}

/* Runs st once its parents' outputs are all registered: parents missing outputs are
 * submitted first (a DONE map stage that lost outputs since runs again). */
static void submit_stage(job_run *j, stage *st)
{
    if (touch(j, st)) {
        abort_job(j, EM_ENOMEM, "job %d aborted: out of memory", j->job_id);
        return;
    }
    if (st->state == ST_DONE && st->is_map && !stage_available(j->s, st)) st->state = ST_IDLE;
    if (st->state != ST_IDLE) return;
    bool all_ready = true;
    for (int i = 0; i < st->num_parents; i++) {
        stage *p = st->parents[i];
        if (stage_available(j->s, p)) continue;
        all_ready = false;
        submit_stage(j, p);
    }
    if (all_ready)
        submit_tasks(j, st);
    else
        add_waiting(j, st);
}

/* After a map stage finished: start waiting stages whose parents are all available. A parent
 * that is not available and not being computed (it finished, in this job or an earlier one,
 * and has lost outputs since: an executor or worker was lost, a fetch failure elsewhere
 * unregistered them) is submitted again, as Spark's submitStage of the waiting children does.
 * The scan starts over after every action, since submitting changes the waiting list. */
static void submit_ready_waiting(job_run *j)
{
restart:
    for (int i = 0; i < j->num_waiting && !j->abort_rc; i++) {
        stage *w = j->waiting[i];
        bool ready = true;
        for (int k = 0; k < w->num_parents; k++) {
            stage *p = w->parents[k];
            if (stage_available(j->s, p)) continue;
            ready = false;
            if (p->job_stamp != j->job_id || p->state == ST_DONE || p->state == ST_IDLE) {
                EM_LOG(EM_LOG_INFO, "dag",
                       "job %d: stage %d waits for stage %d, whose outputs were lost: resubmitting "
                       "it",
                       j->job_id, w->id, p->id);
                submit_stage(j, p); /* a finished map stage missing outputs runs again */
                goto restart;
            }
        }
        if (!ready) continue;
        j->waiting[i] = j->waiting[--j->num_waiting];
        submit_tasks(j, w);
        goto restart;
    }
}

/* ---- completions ----------------------------------------------------------------------------- */

void em__sched_task_done(struct em_scheduler *s, em_task_desc *d)
{
    pthread_mutex_lock(&s->mu);
    d->next = NULL;
    if (s->done_tail)
        s->done_tail->next = d;
    else
        s->done_head = d;
    s->done_tail = d;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void em__sched_wake(struct em_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    s->wake = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* The next completion; NULL when wait_ms (>= 0) passed or em__sched_wake was called first.
 * wait_ms < 0: wait as long as it takes. */
static em_task_desc *wait_done(struct em_scheduler *s, int64_t wait_ms)
{
    struct timespec until = em__timespec_in(CLOCK_MONOTONIC, wait_ms >= 0 ? wait_ms : 0);
    pthread_mutex_lock(&s->mu);
    while (!s->done_head && !s->wake) {
        if (wait_ms < 0)
            pthread_cond_wait(&s->cv, &s->mu);
        else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0)
            break;
    }
    s->wake = false;
    em_task_desc *d = s->done_head;
    if (d) {
        s->done_head = d->next;
        if (!s->done_head) s->done_tail = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return d;
}

static stage *stage_of(job_run *j, int stage_id)
{
    if (j->final->id == stage_id) return j->final;
    for (stage *st = j->s->map_stages; st; st = st->next)
        if (st->id == stage_id) return st;
    return NULL;
}

static void merge_accumulators(job_run *j, em_task_desc *d)
{
    if (d->acc_updates.len == 0) return;
    int rc = em__shared_acc_merge(j->s->ctx->shared, d->acc_updates.data, d->acc_updates.len);
    if (rc)
        EM_LOG(EM_LOG_WARN, "dag", "accumulator updates of task %lld dropped: %s",
               (long long)d->task_id, em_errmsg());
}

/* The other attempts of d's partition still running lost the race: kill them. */
static void kill_other_copies(job_run *j, stage *st, const em_task_desc *d)
{
    if (st->copies[d->partition] == 0) return;
    em_backend *b = j->s->backend;
    for (int i = 0; i < st->num_running; i++) {
        em_task_desc *o = st->running[i];
        if (o->partition != d->partition) continue;
        EM_LOG(EM_LOG_INFO, "dag",
               "task %d.%d of stage %d (TID %lld) killed: attempt %d (TID %lld) finished first",
               o->partition, o->attempt, st->id, (long long)o->task_id, d->attempt,
               (long long)d->task_id);
        if (b->kill_task) b->kill_task(b, o->task_id, "another attempt of the task finished first");
    }
}

/* Counts a successful attempt of this stage attempt towards speculation's median. */
static void note_success(job_run *j, stage *st, em_task_desc *d)
{
    if (d->stage_attempt != st->attempt - 1 || st->succeeded[d->partition]) return;
    st->succeeded[d->partition] = 1;
    int64_t started = em__task_desc_started(d, NULL);
    if (!j->speculation || started <= 0) return;
    if (st->num_durations == st->cap_durations) {
        int cap = st->cap_durations ? st->cap_durations * 2 : 64;
        int64_t *v = em__realloc(st->durations, (size_t)cap * sizeof *v);
        if (!v) return; /* only speculation's estimate suffers */
        st->durations = v;
        st->cap_durations = cap;
    }
    int64_t ran = now_ms(j->s) - started;
    st->durations[st->num_durations++] = ran > 0 ? ran : 0;
}

/* Tells the health tracker a stage attempt ended: a successful one's task failures count
 * against their executors for the application; logs new application exclusions. */
static void stage_attempt_ended(job_run *j, stage *st, bool succeeded)
{
    em__health *h = j->s->health;
    if (!h || st->attempt < 1) return;
    em__health_exclusion newly[8];
    size_t n = 0;
    em__health_stage_finished(h, st->id, st->attempt - 1, succeeded, now_ms(j->s), newly, 8, &n);
    for (size_t i = 0; i < n && i < 8; i++) {
        em__health_exclusion *x = &newly[i];
        if (x->exec_id >= 0)
            EM_LOG(EM_LOG_WARN, "dag",
                   "executor %d (%s) excluded for the application for %lld ms: %d tasks failed "
                   "there (ember.excludeOnFailure.application.maxFailedTasksPerExecutor)",
                   x->exec_id, x->host, (long long)(x->until_ms - now_ms(j->s)), x->count);
        else
            EM_LOG(EM_LOG_WARN, "dag",
                   "host %s excluded for the application: %d of its executors are excluded "
                   "(ember.excludeOnFailure.application.maxFailedExecutorsPerNode)",
                   x->host, x->count);
        if (x->exec_id >= 0 && em__health_get_limits(h)->kill_excluded &&
            j->s->backend->exclude_executor)
            j->s->backend->exclude_executor(j->s->backend, x->exec_id,
                                            "excluded for failing tasks "
                                            "(ember.excludeOnFailure.killExcludedExecutors)");
    }
}

/* Records a counted task failure with the health tracker; returns non-zero (job aborted) when
 * no live executor may run the partition any more. */
static int note_failure_health(job_run *j, stage *st, em_task_desc *d, const char *msg)
{
    em__health *h = j->s->health;
    em_backend *b = j->s->backend;
    if (!h || d->ran_on_exec < 0 || d->executor_lost || !b->executor_host) return 0;
    char host[256];
    b->executor_host(b, d->ran_on_exec, host, sizeof host);
    em__health_failure_event ev = {0};
    if (em__health_task_failed(h, st->id, d->stage_attempt, d->partition, d->ran_on_exec, host,
                               now_ms(j->s), &ev))
        return 0;
    if (ev.newly & EM__HEALTH_BIT(EM__HEALTH_STAGE_EXECUTOR))
        EM_LOG(EM_LOG_WARN, "dag", "executor %d (%s) excluded for stage %d: %d tasks failed there",
               d->ran_on_exec, host, st->id, ev.stage_failed_tasks_on_exec);
    if (ev.newly & EM__HEALTH_BIT(EM__HEALTH_STAGE_HOST))
        EM_LOG(EM_LOG_WARN, "dag", "host %s excluded for stage %d: %d of its executors are", host,
               st->id, ev.stage_excluded_execs_on_host);
    if (!b->check_schedulable) return 0;
    int app_excluded = 0;
    if (b->check_schedulable(b, st->id, d->stage_attempt, d->partition, &app_excluded) == 0 ||
        app_excluded > 0)
        return 0;
    abort_job(j, EM_EJOB,
              "job %d aborted: stage %d partition %d cannot run anywhere: %s (after: %s)",
              j->job_id, st->id, d->partition, em_errmsg(), msg);
    return 1;
}

static void handle_success(job_run *j, stage *st, em_task_desc *d)
{
    em_context *ctx = j->s->ctx;
    note_success(j, st, d);
    kill_other_copies(j, st, d);
    if (st->is_map) {
        /* Where the output is: the executor that ran the task, its block server and its
         * directory (set by the cluster backend); in local mode the driver's own directory,
         * read from disk. */
        em_block_location loc = d->location;
        if (!loc.dir) loc = (em_block_location){.exec_id = 0, .dir = ctx->local_dir};
        /* Accumulator updates of a transformation count once per successful run. */
        merge_accumulators(j, d);
        if (em_map_outputs_register(ctx->map_outputs, st->dep->shuffle_id, d->partition, &loc,
                                    &d->map_status)) {
            abort_job(j, EM_ENOMEM, "job %d aborted: cannot register map output", j->job_id);
            return;
        }
        if (st->pending == 0 && st->state == ST_RUNNING) {
            st->state = ST_DONE;
            st->fetch_failed_attempts = 0;
            stage_attempt_ended(j, st, true);
            if (!stage_available(j->s, st))
                submit_tasks(j, st); /* lost meanwhile */
            else
                submit_ready_waiting(j);
        }
        return;
    }
    intptr_t idx = (intptr_t)d->sched_data;
    if (j->part_done[idx]) return;
    /* In an action, only the first successful attempt of each partition counts. */
    merge_accumulators(j, d);
    /* An indirect result the backend did not fetch (it would pass the limit) counts its size. */
    j->result_bytes +=
        d->result_indirect && d->result.len == 0 ? d->result_size : (int64_t)d->result.len;
    if (j->max_result > 0 && j->result_bytes > j->max_result) {
        abort_job(j, EM_ETOOBIG,
                  "job %d aborted: total size of results (%lld bytes) is bigger than "
                  "ember.driver.maxResultSize (%lld bytes)",
                  j->job_id, (long long)j->result_bytes, (long long)j->max_result);
        return;
    }
    if (j->spec->handler) {
        int rc =
            j->spec->handler(j->spec->handler_arg, d->partition, d->result.data, d->result.len);
        if (rc) {
            abort_job(j, rc, "job %d aborted: %s", j->job_id,
                      em_errmsg()[0] ? em_errmsg() : em_strerror(rc));
            return;
        }
    }
    j->part_done[idx] = true;
    if (--j->remaining == 0) stage_attempt_ended(j, st, true);
}

static void add_failed(job_run *j, stage *st)
{
    for (int i = 0; i < j->num_failed; i++)
        if (j->failed[i] == st) return;
    if (j->num_failed == j->cap_failed) {
        int cap = j->cap_failed ? j->cap_failed * 2 : 8;
        stage **v = em__realloc(j->failed, (size_t)cap * sizeof *v);
        if (!v) {
            abort_job(j, EM_ENOMEM, "job %d aborted: out of memory", j->job_id);
            return;
        }
        j->failed = v;
        j->cap_failed = cap;
    }
    j->failed[j->num_failed++] = st;
}

/* A task could not read a map output: forget it (when its server was unreachable in a
 * cluster, every output of the executor that wrote it, which is dropped) and mark the stage for
 * resubmission; ember.stage.resubmitDelay later (fetch failures arriving meanwhile join the
 * batch) the failed stages are submitted again, which reruns the missing map tasks of their
 * parents first. Fetch failures do not count as task failures; those of an older stage attempt
 * are ignored; ember.stage.maxConsecutiveAttempts stage attempts ended by fetch failures abort
 * the job. */
static void handle_fetch_failure(job_run *j, stage *st, em_task_desc *d)
{
    em_context *ctx = j->s->ctx;
    const char *msg = d->errmsg ? d->errmsg : em_strerror(d->status);
    stage *parent = NULL;
    for (stage *p = j->s->map_stages; p; p = p->next)
        if (p->dep->shuffle_id == d->ff_shuffle) parent = p;
    if (!parent) {
        abort_job(j, EM_EJOB, "job %d aborted: stage %d read shuffle %d that no stage writes: %s",
                  j->job_id, st->id, d->ff_shuffle, msg);
        return;
    }
    if (d->stage_attempt != st->attempt - 1) {
        EM_LOG(EM_LOG_INFO, "dag",
               "fetch failure of stage %d attempt %d (TID %lld) ignored: attempt %d is newer",
               st->id, d->stage_attempt, (long long)d->task_id, st->attempt - 1);
        return;
    }
    int lost = 1;
    if (j->s->backend->remote_executors && d->status == EM_EFETCH) {
        /* Unreachable after retries: the executor's server (or its worker's shuffle service,
         * or the link to its host) is gone, and with it every output it wrote. A corrupt or
         * missing block loses only its own map output. */
        lost = em_map_outputs_unregister_executor(ctx->map_outputs, d->ff_exec);
        if (j->s->backend->exclude_executor)
            j->s->backend->exclude_executor(j->s->backend, d->ff_exec,
                                            "its map outputs cannot be fetched");
    } else
        em_map_outputs_unregister(ctx->map_outputs, d->ff_shuffle, d->ff_map);
    EM_LOG(EM_LOG_WARN, "dag",
           "fetch failure in stage %d (TID %lld): shuffle %d map %d (executor %d): %s; %d map "
           "output%s unregistered, stage %d to rerun",
           st->id, (long long)d->task_id, d->ff_shuffle, d->ff_map, d->ff_exec, msg, lost,
           lost == 1 ? "" : "s", parent->id);
    if (st->state != ST_RUNNING) return; /* this stage attempt already counted */
    int max_attempts = (int)em_conf_get_int(ctx->conf, "ember.stage.maxConsecutiveAttempts");
    if (++st->fetch_failed_attempts >= max_attempts) {
        abort_job(j, EM_EJOB,
                  "job %d aborted: stage %d (%s) failed %d consecutive attempts on fetch failures "
                  "(ember.stage.maxConsecutiveAttempts=%d); last: %s",
                  j->job_id, st->id, st->is_map ? st->rdd->ops->name : j->spec->call_site,
                  st->fetch_failed_attempts, max_attempts, msg);
        return;
    }
    st->state = ST_RESUBMIT;
    stage_attempt_ended(j, st, false);
    /* Its tasks not yet started would read the outputs being recomputed (Spark's zombie task
     * set): they end unlaunched. */
    if (j->s->backend->cancel_stage)
        j->s->backend->cancel_stage(j->s->backend, st->id, d->stage_attempt);
    add_failed(j, st);
    if (j->resubmit_at == 0)
        j->resubmit_at = now_ms(j->s) + em_conf_get_ms(ctx->conf, "ember.stage.resubmitDelay");
}

/* The failed stages' batch is due: submit each again (parents missing outputs first). */
static void resubmit_failed(job_run *j)
{
    int n = j->num_failed;
    j->num_failed = 0;
    j->resubmit_at = 0;
    EM_LOG(EM_LOG_INFO, "dag", "job %d: resubmitting %d failed stage%s", j->job_id, n,
           n == 1 ? "" : "s");
    for (int i = 0; i < n && !j->abort_rc; i++) {
        stage *st = j->failed[i];
        if (st->state != ST_RESUBMIT) continue;
        st->state = ST_IDLE;
        submit_stage(j, st);
    }
}

/* A failure that is not the task's fault and must not count: the attempt was killed (another
 * copy won) or denied its output commit (another copy committed). */
static bool failure_is_benign(const em_task_desc *d)
{
    return d->status == EM_EKILLED || d->status == EM_ECOMMITDENIED;
}

static void handle_failure(job_run *j, stage *st, em_task_desc *d)
{
    if (d->fetch_failed) {
        handle_fetch_failure(j, st, d);
        return;
    }
    const char *msg = d->errmsg ? d->errmsg : em_strerror(d->status);
    bool done =
        st->is_map ? st->succeeded[d->partition] != 0 : j->part_done[(intptr_t)d->sched_data];
    if (st->state == ST_WAITING || st->state == ST_RESUBMIT || done ||
        d->stage_attempt != st->attempt - 1) {
        /* A task of an attempt cut short by a fetch failure (its inputs are being recomputed:
         * the stage's resubmission runs the partition again), of an older stage attempt, or a
         * copy of a partition another attempt finished: this does not count. */
        EM_LOG(EM_LOG_INFO, "dag", "task %d.%d of stage %d (TID %lld) ended, not counted: %s",
               d->partition, d->attempt, st->id, (long long)d->task_id, msg);
        return;
    }
    if (failure_is_benign(d)) {
        EM_LOG(EM_LOG_INFO, "dag", "task %d.%d of stage %d (TID %lld) not counted: %s",
               d->partition, d->attempt, st->id, (long long)d->task_id, msg);
        if (st->copies[d->partition] == 0)
            launch(j, st, d->partition, (intptr_t)d->sched_data, d->ran_on_exec, -1, false);
        return;
    }
    int max_failures = j->s->ctx->max_failures;
    int fails = ++st->failures[d->partition];
    EM_LOG(EM_LOG_WARN, "dag", "lost task %d.%d in stage %d (TID %lld): %s", d->partition,
           d->attempt, st->id, (long long)d->task_id, msg);
    em_buf *causes = &st->causes[d->partition];
    if (fails >= max_failures) {
        abort_job(j, EM_EJOB,
                  "job %d aborted: stage %d (%s) partition %d failed %d time%s "
                  "(ember.task.maxFailures=%d); last cause: %s%s%.*s",
                  j->job_id, st->id, st->is_map ? st->rdd->ops->name : j->spec->call_site,
                  d->partition, fails, fails == 1 ? "" : "s", max_failures, msg,
                  causes->len ? "; earlier attempts: " : "", (int)EM_MIN(causes->len, 2000),
                  causes->data ? (const char *)causes->data : "");
        return;
    }
    if (note_failure_health(j, st, d, msg)) return;
    /* Each attempt's cause, for the abort message (bounded). */
    if (causes->len < 2000)
        em_buf_printf(causes, "%sattempt %d (TID %lld): %.300s", causes->len ? "; " : "",
                      d->attempt, (long long)d->task_id, msg);
    /* Another copy still running may yet succeed; otherwise retry, on another executor where
     * possible (cluster backend). */
    if (st->copies[d->partition] == 0)
        launch(j, st, d->partition, (intptr_t)d->sched_data, d->ran_on_exec, -1, false);
}

static void handle(job_run *j, em_task_desc *d)
{
    /* Output commit (scheduler/commit.h): a failed authorised attempt releases its partition. */
    em__commit_task_ended(j->s->ctx->commits, d->stage_id, d->partition, d->task_id, !d->status);
    if (d->job_id != j->job_id) return; /* a straggler of an earlier job, killed or abandoned */
    j->outstanding--;
    stage *st = stage_of(j, d->stage_id);
    if (!st) return;
    if (st->job_stamp == j->job_id) {
        running_remove(st, d);
        st->pending--;
    }
    if (j->abort_rc) return;
    if (d->status == 0)
        handle_success(j, st, d);
    else
        handle_failure(j, st, d);
}

/* ---- speculation ----------------------------------------------------------------------------- */

/* Every ember.speculation.interval: in each running stage attempt with enough tasks finished,
 * launch one copy of each straggler (a task running past the threshold, with no copy yet) on
 * another executor. */
static void check_speculation(job_run *j, int64_t now)
{
    for (stage *st = j->final; st; st = next_stage(j, st)) {
        if (st->job_stamp != j->job_id || st->state != ST_RUNNING || st->num_tasks < 2) continue;
        int64_t threshold;
        if (!em__speculation_threshold(st->durations, st->num_durations, st->num_tasks,
                                       j->spec_quantile, j->spec_multiplier, j->spec_min_runtime,
                                       &threshold))
            continue;
        int n = st->num_running;
        for (int i = 0; i < n && !j->abort_rc; i++) {
            em_task_desc *d = st->running[i];
            int p = d->partition;
            int exec_id;
            int64_t started = em__task_desc_started(d, &exec_id);
            if (started <= 0 || st->speculated[p] || st->copies[p] != 1 || st->succeeded[p] ||
                d->stage_attempt != st->attempt - 1 || now - started <= threshold)
                continue;
            st->speculated[p] = 1;
            EM_LOG(EM_LOG_INFO, "dag",
                   "speculating task %d.%d of stage %d (TID %lld): running %lld ms on executor "
                   "%d, threshold %lld ms",
                   p, d->attempt, st->id, (long long)d->task_id, (long long)(now - started),
                   exec_id, (long long)threshold);
            launch(j, st, p, (intptr_t)d->sched_data, -1, exec_id, true);
        }
    }
}

/* Runs what is due; returns how long until the next timer (ms), or -1: none. */
static int64_t run_timers(job_run *j)
{
    int64_t now = now_ms(j->s);
    if (j->resubmit_at && now >= j->resubmit_at) resubmit_failed(j);
    if (j->speculation && now >= j->next_spec_check) {
        check_speculation(j, now);
        j->next_spec_check = now + j->spec_interval;
    }
    int64_t next = -1;
    if (j->resubmit_at) next = j->resubmit_at - now;
    if (j->speculation && (next < 0 || j->next_spec_check - now < next))
        next = j->next_spec_check - now;
    return next < 0 ? -1 : next;
}

/* ---- jobs --------------------------------------------------------------------------------- */

int em__sched_run_job(em_context *ctx, const em_job_spec *spec)
{
    struct em_scheduler *s = ctx->sched;
    pthread_mutex_lock(&s->job_mu);
    job_run j = {.s = s, .spec = spec};
    pthread_mutex_lock(&ctx->mu);
    j.job_id = ctx->next_job_id++;
    pthread_mutex_unlock(&ctx->mu);
    int *all = NULL;
    int rc = 0;
    if (spec->partitions) {
        j.parts = spec->partitions;
        j.num_parts = spec->num_partitions;
    } else {
        j.num_parts = spec->rdd->num_partitions;
        all = em__calloc((size_t)(j.num_parts ? j.num_parts : 1), sizeof *all);
        if (!all) {
            rc = em__set_error(EM_ENOMEM, "out of memory starting a job");
            goto out;
        }
        for (int i = 0; i < j.num_parts; i++) all[i] = i;
        j.parts = all;
    }
    j.remaining = j.num_parts;
    j.max_result = em_conf_get_bytes(ctx->conf, "ember.driver.maxResultSize");
    /* Speculation needs executors of their own (as Spark, never in local mode). */
    j.speculation = em_conf_get_bool(ctx->conf, "ember.speculation") &&
                    s->backend->remote_executors && s->backend->kill_task;
    j.spec_interval = em_conf_get_ms(ctx->conf, "ember.speculation.interval");
    j.spec_min_runtime = em_conf_get_ms(ctx->conf, "ember.speculation.minTaskRuntime");
    j.spec_multiplier = em_conf_get_double(ctx->conf, "ember.speculation.multiplier");
    j.spec_quantile = em_conf_get_double(ctx->conf, "ember.speculation.quantile");
    j.part_done = em__calloc((size_t)(j.num_parts ? j.num_parts : 1), sizeof *j.part_done);
    j.final = j.part_done ? stage_new(s, false, spec->rdd, NULL) : NULL;
    if (!j.final) {
        rc = em__set_error(EM_ENOMEM, "out of memory starting a job");
        goto out;
    }
    EM_LOG(EM_LOG_INFO, "dag", "job %d (%s): %d partitions", j.job_id,
           spec->call_site ? spec->call_site : "job", j.num_parts);
    if (j.num_parts > 0) submit_stage(&j, j.final);
    j.next_spec_check = now_ms(s) + j.spec_interval;
    while (j.remaining > 0 && !j.abort_rc) {
        int64_t wait = run_timers(&j);
        if (j.abort_rc || j.remaining == 0) break;
        if (j.outstanding == 0 && j.resubmit_at == 0) {
            abort_job(&j, EM_EINTERNAL, "job %d: no task running and %d partitions missing",
                      j.job_id, j.remaining);
            break;
        }
        em_task_desc *d = wait_done(s, wait);
        if (!d) continue;
        handle(&j, d);
        em__task_desc_free(d);
    }
    /* Attempts still running after the last partition finished (losing speculative copies,
     * tasks of a stage attempt a fetch failure cut short): queued ones are dropped, running
     * ones killed; their completions are ignored by later jobs (not waited for: one may be on
     * an executor that stopped answering). */
    if (!j.abort_rc && j.outstanding > 0) {
        for (stage *st = j.final; st; st = next_stage(&j, st))
            if (st->job_stamp == j.job_id && s->backend->kill_task)
                for (int i = 0; i < st->num_running; i++)
                    s->backend->kill_task(s->backend, st->running[i]->task_id, "its job finished");
        s->backend->cancel_queued(s->backend, j.job_id);
    }
    if (j.abort_rc) {
        for (stage *st = j.final; st; st = next_stage(&j, st))
            if (st->job_stamp == j.job_id && st->state == ST_RUNNING)
                stage_attempt_ended(&j, st, false);
        j.outstanding -= s->backend->cancel_queued(s->backend, j.job_id);
        while (j.outstanding > 0) {
            em_task_desc *d = wait_done(s, -1);
            if (!d) continue;
            j.outstanding--;
            em__task_desc_free(d);
        }
        rc = em__set_error(j.abort_rc, "%s", j.abort_msg);
        EM_LOG(EM_LOG_ERROR, "dag", "%s", j.abort_msg);
    }
out:
    /* The result stage is over: a late attempt asking to commit its output is denied. */
    if (j.final) em__commit_stage_ended(ctx->commits, j.final->id);
    /* No task of this job is outstanding: the stages' running tables refer to nothing. */
    for (stage *st = s->map_stages; st; st = st->next)
        if (st->job_stamp == j.job_id) st->num_running = 0;
    stage_free(j.final);
    em__free(j.part_done);
    em__free(j.waiting);
    em__free(j.failed);
    em__free(all);
    pthread_mutex_unlock(&s->job_mu);
    return rc;
}

struct em_scheduler *em__scheduler_new(em_context *ctx, em_backend *backend)
{
    struct em_scheduler *s = em__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->ctx = ctx;
    s->backend = backend;
    s->clock = real_clock;
    if (backend && backend->remote_executors) {
        s->health = em__health_new_from_conf(ctx->conf);
        if (!s->health) {
            em__free(s);
            return NULL;
        }
    }
    pthread_mutex_init(&s->job_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    return s;
}

void em__scheduler_set_clock(struct em_scheduler *s, em_sched_clock clock, void *arg)
{
    s->clock = clock ? clock : real_clock;
    s->clock_arg = arg;
}

void em__scheduler_set_backend(struct em_scheduler *s, em_backend *backend)
{
    s->backend = backend;
    if (backend && backend->remote_executors && !s->health)
        s->health = em__health_new_from_conf(s->ctx->conf); /* NULL: no exclusion */
}

struct em__health *em__scheduler_health(struct em_scheduler *s)
{
    return s->health;
}

em_backend *em__scheduler_backend(struct em_scheduler *s)
{
    return s->backend;
}

void em__scheduler_free(struct em_scheduler *s)
{
    if (!s) return;
    if (s->backend) s->backend->stop(s->backend);
    while (s->done_head) {
        em_task_desc *d = s->done_head;
        s->done_head = d->next;
        em__task_desc_free(d);
    }
    stage *st = s->map_stages;
    while (st) {
        stage *next = st->next;
        stage_free(st);
        st = next;
    }
    em__health_free(s->health);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->job_mu);
    em__free(s);
}
