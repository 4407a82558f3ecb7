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
 *     (not needed) --submit_stage--> WAITING --parents available--> RUNNING --all tasks ok--> DONE
 *          |                                                           |  ^
 *          +--all outputs already registered: skipped                  +--task failed, retried
 *                                                                       (attempts < maxFailures)
 * Task attempt life: LAUNCHED (backend queue) -> RUNNING (task thread) -> SUCCEEDED / FAILED,
 * a FAILED task relaunched as attempt+1 until ember.task.maxFailures attempts have failed,
 * which aborts the job: queued tasks are cancelled, running ones drained, then run_job returns.
 *
 * Thread rule: one job at a time per context (job_mu), run on the calling driver thread; the
 * backend's task threads only post completions (mu/cv guard the completion queue).
 */
#include "scheduler/scheduler.h"

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
    enum { ST_IDLE, ST_WAITING, ST_RUNNING, ST_DONE } state;
    int pending;
    int *failures;  /* per partition, this job */
    em_buf *causes; /* per partition, this job: "attempt A: cause; " of each failed attempt */
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
    int abort_rc;
    char abort_msg[4096];
} job_run;

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

static void free_causes(stage *st)
{
    if (!st->causes) return;
    for (int i = 0; i < (st->rdd->num_partitions ? st->rdd->num_partitions : 1); i++)
        em_buf_free(&st->causes[i]);
    em__free(st->causes);
    st->causes = NULL;
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
    free_causes(st);
    em__free(st->failures);
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
    em__free(st->failures);
    free_causes(st);
    size_t n = (size_t)(st->rdd->num_partitions ? st->rdd->num_partitions : 1);
    st->failures = em__calloc(n, sizeof *st->failures);
    st->causes = em__calloc(n, sizeof *st->causes);
    return st->failures && st->causes ? 0 : EM_ENOMEM;
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

static void launch(job_run *j, stage *st, int partition, int attempt, intptr_t result_index,
                   int avoid_exec)
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
    d->attempt = attempt;
    d->rdd = st->rdd;
    d->dep = st->is_map ? st->dep : NULL;
    d->fn = st->is_map ? NULL : j->spec->fn;
    d->fn_arg = j->spec->fn_arg;
    d->fn_arg_len = j->spec->fn_arg_len;
    d->sched_data = (void *)result_index;
    d->avoid_exec = avoid_exec;
    d->ran_on_exec = -1;
    st->pending++;
    j->outstanding++;
    j->s->backend->launch(j->s->backend, d);
}

static void submit_tasks(job_run *j, stage *st)
{
    st->state = ST_RUNNING;
    st->attempt++;
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
        for (int i = 0; i < m && !j->abort_rc; i++) launch(j, st, missing[i], 0, -1, -1);
        em__free(missing);
    } else {
        EM_LOG(EM_LOG_INFO, "dag", "job %d: submitting result stage %d (%d tasks)", j->job_id,
               st->id, j->remaining);
        for (int i = 0; i < j->num_parts && !j->abort_rc; i++)
            if (!j->part_done[i]) launch(j, st, j->parts[i], 0, i, -1);
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

static void submit_stage(job_run *j, stage *st)
{
    if (touch(j, st)) {
        abort_job(j, EM_ENOMEM, "job %d aborted: out of memory", j->job_id);
        return;
    }
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

/* After a map stage finished: start waiting stages whose parents are all available. */
static void submit_ready_waiting(job_run *j)
{
    for (int i = 0; i < j->num_waiting && !j->abort_rc;) {
        stage *w = j->waiting[i];
        bool ready = true;
        for (int k = 0; k < w->num_parents; k++) ready &= stage_available(j->s, w->parents[k]);
        if (!ready) {
            i++;
            continue;
        }
        j->waiting[i] = j->waiting[--j->num_waiting];
        submit_tasks(j, w);
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

static em_task_desc *wait_done(struct em_scheduler *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->done_head) pthread_cond_wait(&s->cv, &s->mu);
    em_task_desc *d = s->done_head;
    s->done_head = d->next;
    if (!s->done_head) s->done_tail = NULL;
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

static void handle_success(job_run *j, stage *st, em_task_desc *d)
{
    em_context *ctx = j->s->ctx;
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
    j->remaining--;
}

/* A task could not read a map output: forget it (in a cluster every output of the executor
 * that wrote it: the executor or its host is likely gone), put the stage back to wait, and run
 * the parent map stage's missing tasks; the stage is resubmitted when they are done. Fetch
 * failures do not count as task failures; ember.stage.maxConsecutiveAttempts stage attempts
 * ended by fetch failures abort the job. */
static void handle_fetch_failure(job_run *j, stage *st, em_task_desc *d)
{
    em_context *ctx = j->s->ctx;
    const char *msg = d->errmsg ? d->errmsg : em_strerror(d->status);
    stage *parent = NULL;
    for (stage *p = j->s->map_stages; p; p = p->next)
        if (p->dep->shuffle_id == d->ff_shuffle) parent = p;
    int lost = 1;
    if (j->s->backend->remote_executors) {
        lost = em_map_outputs_unregister_executor(ctx->map_outputs, d->ff_exec);
        if (j->s->backend->exclude_executor)
            j->s->backend->exclude_executor(j->s->backend, d->ff_exec,
                                            "its map outputs cannot be fetched");
    } else
        em_map_outputs_unregister(ctx->map_outputs, d->ff_shuffle, d->ff_map);
    EM_LOG(EM_LOG_WARN, "dag",
           "fetch failure in stage %d (TID %lld): shuffle %d map %d (executor %d): %s; %d map "
           "output%s unregistered, stage %d resubmitted",
           st->id, (long long)d->task_id, d->ff_shuffle, d->ff_map, d->ff_exec, msg, lost,
           lost == 1 ? "" : "s", parent ? parent->id : -1);
    if (!parent) {
        abort_job(j, EM_EJOB, "job %d aborted: stage %d read shuffle %d that no stage writes: %s",
                  j->job_id, st->id, d->ff_shuffle, msg);
        return;
    }
    if (st->state == ST_WAITING) return; /* this stage attempt already counted */
    int max_attempts = (int)em_conf_get_int(ctx->conf, "ember.stage.maxConsecutiveAttempts");
    if (++st->fetch_failed_attempts >= max_attempts) {
        abort_job(j, EM_EJOB,
                  "job %d aborted: stage %d (%s) failed %d consecutive attempts on fetch failures "
                  "(ember.stage.maxConsecutiveAttempts=%d); last: %s",
                  j->job_id, st->id, st->is_map ? st->rdd->ops->name : j->spec->call_site,
                  st->fetch_failed_attempts, max_attempts, msg);
        return;
    }
    add_waiting(j, st);
    if (parent->state != ST_RUNNING && parent->state != ST_WAITING) {
        parent->state = ST_IDLE;
        submit_stage(j, parent);
    }
}

static void handle_failure(job_run *j, stage *st, em_task_desc *d)
{
    if (d->fetch_failed) {
        handle_fetch_failure(j, st, d);
        return;
    }
    if (st->state == ST_WAITING) {
        /* A task of an attempt cut short by a fetch failure (its inputs are being recomputed):
         * the stage's resubmission runs the partition again; this does not count. */
        EM_LOG(EM_LOG_INFO, "dag", "task %d.%d of waiting stage %d (TID %lld) ended: %s",
               d->partition, d->attempt, st->id, (long long)d->task_id,
               d->errmsg ? d->errmsg : em_strerror(d->status));
        return;
    }
    int max_failures = j->s->ctx->max_failures;
    int fails = ++st->failures[d->partition];
    const char *msg = d->errmsg ? d->errmsg : em_strerror(d->status);
    EM_LOG(EM_LOG_WARN, "dag", "lost task %d.%d in stage %d (TID %lld): %s", d->partition,
           d->attempt, st->id, (long long)d->task_id, msg);
    em_buf *causes = st->causes ? &st->causes[d->partition] : NULL;
    if (fails >= max_failures) {
        abort_job(j, EM_EJOB,
                  "job %d aborted: stage %d (%s) partition %d failed %d time%s "
                  "(ember.task.maxFailures=%d); last cause: %s%s%.*s",
                  j->job_id, st->id, st->is_map ? st->rdd->ops->name : j->spec->call_site,
                  d->partition, fails, fails == 1 ? "" : "s", max_failures, msg,
                  causes && causes->len ? "; earlier attempts: " : "",
                  causes ? (int)EM_MIN(causes->len, 2000) : 0,
                  causes && causes->data ? (const char *)causes->data : "");
        return;
    }
    /* Each attempt's cause, for the abort message (bounded). */
    if (causes && causes->len < 2000)
        em_buf_printf(causes, "%sattempt %d (TID %lld): %.300s", causes->len ? "; " : "",
                      d->attempt, (long long)d->task_id, msg);
    /* The retry goes to another executor where possible (cluster backend). */
    launch(j, st, d->partition, d->attempt + 1, (intptr_t)d->sched_data, d->ran_on_exec);
}

static void handle(job_run *j, em_task_desc *d)
{
    j->outstanding--;
    stage *st = stage_of(j, d->stage_id);
    if (!st || d->job_id != j->job_id || j->abort_rc) return;
    st->pending--;
    if (d->status == 0)
        handle_success(j, st, d);
    else
        handle_failure(j, st, d);
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
    j.part_done = em__calloc((size_t)(j.num_parts ? j.num_parts : 1), sizeof *j.part_done);
    j.final = j.part_done ? stage_new(s, false, spec->rdd, NULL) : NULL;
    if (!j.final) {
        rc = em__set_error(EM_ENOMEM, "out of memory starting a job");
        goto out;
    }
    EM_LOG(EM_LOG_INFO, "dag", "job %d (%s): %d partitions", j.job_id,
           spec->call_site ? spec->call_site : "job", j.num_parts);
    if (j.num_parts > 0) submit_stage(&j, j.final);
    while (j.remaining > 0 && !j.abort_rc) {
        if (j.outstanding == 0) {
            abort_job(&j, EM_EINTERNAL, "job %d: no task running and %d partitions missing",
                      j.job_id, j.remaining);
            break;
        }
        em_task_desc *d = wait_done(s);
        handle(&j, d);
        em__task_desc_free(d);
    }
    if (j.abort_rc) {
        j.outstanding -= s->backend->cancel_queued(s->backend, j.job_id);
        while (j.outstanding > 0) {
            em_task_desc *d = wait_done(s);
            j.outstanding--;
            em__task_desc_free(d);
        }
        rc = em__set_error(j.abort_rc, "%s", j.abort_msg);
        EM_LOG(EM_LOG_ERROR, "dag", "%s", j.abort_msg);
    }
out:
    stage_free(j.final);
    em__free(j.part_done);
    em__free(j.waiting);
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
    pthread_mutex_init(&s->job_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return s;
}

void em__scheduler_set_backend(struct em_scheduler *s, em_backend *backend)
{
    s->backend = backend;
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
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->job_mu);
    em__free(s);
}
