/* The cluster scheduler backend (masters local-cluster[W,C,M] and ember://host:port): the
 * driver side of executors that are processes on workers.
 *
 * It registers the application with the master (deploy/app_client.h), serves the
 * application binary to workers by content hash (deploy/file_server.h), accepts executors'
 * registrations on the driver endpoint, and offers queued tasks to executors' free cores:
 * before the first task of a stage attempt an executor gets that stage's definition once
 * (STAGE_DEF: the serialised graph plus the locations of the map outputs it reads), then each
 * task is one LAUNCH_TASK; its STATUS_UPDATE carries the outcome back, which is handed to the
 * DAG scheduler like a local task's.
 *
 * Executor life as the driver sees it:
 *
 *   ADDED (master placed it) --register_executor--> ALIVE --connection closed /
 *        \____________________register_executor____/        executor_removed /
 *   (an executor may register before the        silent past ember.network.timeout /
 *    master's EXECUTOR_ADDED reaches the driver)  its outputs unfetchable (cb_exclude) --> LOST
 * A LOST executor's running tasks fail with a message naming it; they are retried by the
 * DAG scheduler like any failed task (not against its health). Its map outputs stay registered
 * while its worker's shuffle service may serve them, until a fetch of one fails (dag.c then
 * unregisters them) or the master reports the worker lost; without the service they are
 * unregistered with the executor.
 *
 * Threads: launch / cancel_queued / stop run on the DAG scheduler's thread; the endpoint's
 * loop thread runs the message and close callbacks; the app client's thread runs its
 * callbacks. b->mu guards the executor table, the task queue and the running table; messages
 * are sent under it (em_conn_send only queues).
 */
#include "scheduler/scheduler.h"

#include "base/conf_int.h"
#include "base/symbols.h"
#include "deploy/app_client.h"
#include "deploy/file_server.h"
#include "deploy/master_state.h"
#include "executor/task_outcome.h"
#include "net/endpoint.h"
#include "rdd/stage_codec.h"
#include "scheduler/health.h"
#include "scheduler/commit.h"
#include "shuffle/tracker.h"
#include "storage/shared.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_STAGE_BINS 64

typedef struct cexec {
    int exec_id;
    bool alive, lost;
    em_conn *conn; /* retained while alive */
    char *host, *worker_id, *dir;
    int block_port, cores, free_cores;
    int64_t last_heartbeat_ms;
    uint64_t *sent; /* stage attempts whose definition it has: stage_id << 32 | attempt */
    int num_sent, cap_sent;
    struct cexec *next;
} cexec;

typedef struct stage_bin {
    int stage_id, attempt;
    int rc; /* non-zero: the stage could not be encoded */
    char *error;
    em_buf payload;
    struct stage_bin *next;
} stage_bin;

/* The block map (Spark's BlockManagerMaster): which executor holds a cached partition. */
typedef struct block_entry {
    int rdd_id, partition, exec_id;
} block_entry;

typedef struct running_task {
    em_task_desc *d;
    cexec *e;
} running_task;

typedef struct cluster_backend {
    em_backend base;
    em_context *ctx;
    em_endpoint *ep;
    em_app_client *app;
    em_file_registry *files;
    char binary_hash[EM_FILE_HASH_HEX];
    char *app_id; /* the master's id for this application, once known */
    char driver_host[256];
    int driver_port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    em_task_desc *head, *tail;
    running_task *run;
    int num_run, cap_run;
    cexec *execs;
    int rr; /* round-robin cursor over executors */
    block_entry *blocks;
    int num_blocks, cap_blocks;
    int num_preferring;     /* queued tasks with a preferred executor */
    running_task *fetching; /* tasks whose indirect result is being fetched */
    int num_fetching, cap_fetching;
    int result_job; /* the job whose result bytes are counted (one job at a time) */
    int64_t result_bytes, max_result, result_chunk;
    int64_t locality_wait_ms, network_timeout_ms;
    em__health *health; /* the scheduler's, when ember.excludeOnFailure.enabled */
    bool health_on;
    int alive, alive_cores;
    stage_bin *bins;
    int num_bins;
    bool stopping;
    pthread_t watcher;
    bool watcher_started;
} cluster_backend;

/* ---- executors ------------------------------------------------------------------------------- */

static cexec *exec_find(cluster_backend *b, int id, bool create)
{
    for (cexec *e = b->execs; e; e = e->next)
        if (e->exec_id == id) return e;
    if (!create) return NULL;
    cexec *e = em__calloc(1, sizeof *e);
    if (!e) return NULL;
    e->exec_id = id;
    e->next = b->execs;
    b->execs = e;
    return e;
}

static bool exec_has_stage(const cexec *e, uint64_t key)
{
    for (int i = 0; i < e->num_sent; i++)
        if (e->sent[i] == key) return true;
    return false;
}

static int exec_add_stage(cexec *e, uint64_t key)
{
    if (e->num_sent == e->cap_sent) {
        int cap = e->cap_sent ? e->cap_sent * 2 : 16;
        uint64_t *v = em__realloc(e->sent, (size_t)cap * sizeof *v);
        if (!v) return EM_ENOMEM;
        e->sent = v;
        e->cap_sent = cap;
    }
    e->sent[e->num_sent++] = key;
    return 0;
}

static void exec_drop_stage(cexec *e, uint64_t key)
{
    for (int i = 0; i < e->num_sent; i++)
        if (e->sent[i] == key) {
            e->sent[i] = e->sent[--e->num_sent];
            return;
        }
}

static void blocks_forget(cluster_backend *b, int exec_id, int rdd_id);

/* Posts a task's failure to the DAG scheduler. Under b->mu or not. */
static void fail_task(cluster_backend *b, em_task_desc *d, int code, const char *fmt, ...)
    EM_PRINTF(4, 5);
static void fail_task(cluster_backend *b, em_task_desc *d, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->status = code;
    em__free(d->errmsg);
    d->errmsg = em__strdup(msg);
    em__sched_task_done(b->ctx->sched, d);
}

/* An executor is gone: its running tasks fail. Under b->mu. */
static void exec_lost(cluster_backend *b, cexec *e, const char *why)
{
    if (e->lost) return;
    e->lost = true;
    if (e->alive) {
        e->alive = false;
        b->alive--;
        b->alive_cores -= e->cores;
    }
    EM_LOG(EM_LOG_WARN, "cluster", "lost executor %d on %s: %s", e->exec_id,
           e->host ? e->host : "?", why);
    blocks_forget(b, e->exec_id, -1); /* its cached partitions are recomputed when needed */
    if (b->health) em__health_executor_removed(b->health, e->exec_id);
    /* Without the workers' shuffle service the executor served its own map outputs: they are
     * gone with it (with the service they stay until the worker is lost or a fetch fails). */
    if (!em_conf_get_bool(b->ctx->conf, "ember.shuffle.service.enabled")) {
        int n = em_map_outputs_unregister_executor(b->ctx->map_outputs, e->exec_id);
        if (n)
            EM_LOG(EM_LOG_WARN, "cluster", "executor %d lost: %d map output%s unregistered",
                   e->exec_id, n, n == 1 ? "" : "s");
    }
    for (int i = 0; i < b->num_fetching;) {
        if (b->fetching[i].e != e) {
            i++;
            continue;
        }
        em_task_desc *d = b->fetching[i].d;
        b->fetching[i] = b->fetching[--b->num_fetching];
        em_buf_free(&d->result);
        fail_task(b, d, EM_EIO,
                  "executor %d (%s) lost while the driver fetched the result of "
                  "task %lld: %s",
                  e->exec_id, e->host ? e->host : "?", (long long)d->task_id, why);
    }
    for (int i = 0; i < b->num_run;) {
        if (b->run[i].e != e) {
            i++;
            continue;
        }
        em_task_desc *d = b->run[i].d;
        b->run[i] = b->run[--b->num_run];
        d->executor_lost = true;
        fail_task(b, d, EM_EIO, "executor %d (%s) lost while running task %lld: %s", e->exec_id,
                  e->host ? e->host : "?", (long long)d->task_id, why);
    }
    if (e->conn) {
        em_conn_close(e->conn);
        em_conn_release(e->conn);
        e->conn = NULL;
    }
    pthread_cond_broadcast(&b->cv);
}

/* ---- stage definitions ----------------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void bin_free(stage_bin *s)
{
    em_buf_free(&s->payload);
    em__free(s->error);
    em__free(s);
}

/* u32 length + the map output table of the shuffles ids. */
static int append_framed_maps(cluster_backend *b, const int *ids, int n, em_buf *out)
{
    size_t at = out->len;
    uint8_t len[4] = {0};
    int rc = em_buf_append(out, len, 4);
    if (!rc) rc = em_map_outputs_encode(b->ctx->map_outputs, ids, n, out);
    if (!rc) put_u32(out->data + at, (uint32_t)(out->len - at - 4));
    return rc;
}

/* The definition of d's stage attempt, encoded on first use:
 *   u32 n + graph (stage_codec.h) | u32 n + map output table (tracker.h) |
 *   accumulator definitions (storage/shared.h). Under b->mu. */
static stage_bin *stage_bin_for(cluster_backend *b, const em_task_desc *d)
{
    for (stage_bin *s = b->bins; s; s = s->next)
        if (s->stage_id == d->stage_id && s->attempt == d->stage_attempt) return s;
    stage_bin *s = em__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->stage_id = d->stage_id;
    s->attempt = d->stage_attempt;
    uint8_t len[4] = {0};
    int rc = em_buf_append(&s->payload, len, 4);
    if (!rc) rc = em__stage_encode(d->rdd, d->dep, d->fn, d->fn_arg, d->fn_arg_len, &s->payload);
    if (!rc) {
        put_u32(s->payload.data, (uint32_t)(s->payload.len - 4));
        int ids[256];
        int n = em__stage_read_shuffles(d->rdd, ids, (int)EM_ARRAY_LEN(ids));
        if (n > (int)EM_ARRAY_LEN(ids))
            rc = em__set_error(EM_ETOOBIG, "stage %d reads %d shuffles (at most %d)", d->stage_id,
                               n, (int)EM_ARRAY_LEN(ids));
        else if (n < 0)
            rc = n;
        else
            rc = append_framed_maps(b, ids, n, &s->payload);
    }
    if (!rc) rc = em__shared_acc_encode_defs(b->ctx->shared, &s->payload);
    if (rc) {
        s->rc = rc;
        s->error = em__strdup(em_errmsg()[0] ? em_errmsg() : em_strerror(rc));
        EM_LOG(EM_LOG_ERROR, "cluster", "cannot serialise stage %d: %s", d->stage_id, s->error);
    }
    s->next = b->bins;
    b->bins = s;
    if (++b->num_bins > MAX_STAGE_BINS) {
        /* Forget the oldest definition; executors free theirs. */
        stage_bin **pp = &b->bins;
        while ((*pp)->next) pp = &(*pp)->next;
        stage_bin *old = *pp;
        *pp = NULL;
        b->num_bins--;
        uint64_t key = (uint64_t)old->stage_id << 32 | (uint32_t)old->attempt;
        em_msg_stage_done done = {(uint32_t)old->stage_id, (uint32_t)old->attempt};
        for (cexec *e = b->execs; e; e = e->next) {
            if (!exec_has_stage(e, key)) continue;
            exec_drop_stage(e, key);
            if (e->alive) em_conn_send(e->conn, EM_MSG_STAGE_DONE, &done);
        }
        bin_free(old);
    }
    return s;
}

/* ---- offering tasks -------------------------------------------------------------------------- */

/* ---- the block map and locality ------------------------------------------------------------- */

/* Which executor holds cached partition (rdd_id, part), or NULL. Under b->mu. */
static cexec *block_holder(cluster_backend *b, int rdd_id, int part)
{
    for (int i = 0; i < b->num_blocks; i++)
        if (b->blocks[i].rdd_id == rdd_id && b->blocks[i].partition == part)
            return exec_find(b, b->blocks[i].exec_id, false);
    return NULL;
}

static void block_add(cluster_backend *b, int exec_id, const em_cached_block *c)
{
    for (int i = 0; i < b->num_blocks; i++)
        if (b->blocks[i].rdd_id == c->rdd_id && b->blocks[i].partition == c->partition) {
            b->blocks[i].exec_id = exec_id;
            return;
        }
    if (b->num_blocks == b->cap_blocks) {
        int cap = b->cap_blocks ? b->cap_blocks * 2 : 64;
        block_entry *v = em__realloc(b->blocks, (size_t)cap * sizeof *v);
        if (!v) return; /* only a placement hint is lost */
        b->blocks = v;
        b->cap_blocks = cap;
    }
    b->blocks[b->num_blocks++] = (block_entry){c->rdd_id, c->partition, exec_id};
}

/* Forgets the blocks of an executor (exec_id >= 0) or of an RDD (rdd_id >= 0). */
static void blocks_forget(cluster_backend *b, int exec_id, int rdd_id)
{
    for (int i = 0; i < b->num_blocks;) {
        if ((exec_id >= 0 && b->blocks[i].exec_id == exec_id) ||
            (rdd_id >= 0 && b->blocks[i].rdd_id == rdd_id))
            b->blocks[i] = b->blocks[--b->num_blocks];
        else
            i++;
    }
}

/* The executor caching an input partition of d: the first cached RDD down d's chain of
 * one-to-one narrow dependencies that has partition d->partition in some executor. */
static int preferred_exec(cluster_backend *b, const em_task_desc *d)
{
    if (b->num_blocks == 0) return -1;
    const struct em_rdd *r = d->rdd;
    for (int depth = 0; r && depth < 64; depth++) {
        if (r->cached) {
            cexec *e = block_holder(b, r->id, d->partition);
            if (e && e->alive) return e->exec_id;
        }
        if (r->num_deps != 1 || r->deps[0].kind != EM_DEP_NARROW ||
            r->deps[0].rdd->num_partitions != r->num_partitions)
            break;
        r = r->deps[0].rdd;
    }
    return -1;
}

/* Whether d may run on e now (delay scheduling: its preferred executor first, after
 * ember.locality.wait any executor on that host, after twice that anywhere). */
static bool may_run(cluster_backend *b, const em_task_desc *d, const cexec *e, int64_t now)
{
    /* A speculative copy never runs beside its original. */
    if (d->never_exec == e->exec_id) return false;
    /* Executors and hosts that keep failing (ember.excludeOnFailure.*). */
    if (b->health_on && em__health_check(b->health, d->stage_id, d->stage_attempt, d->partition,
                                         e->exec_id, e->host, now) != EM__HEALTH_ALLOWED)
        return false;
    /* A retry avoids the executor its last attempt failed on while others exist, for up to
     * ember.locality.wait (then anywhere: the others may stay busy). */
    if (d->avoid_exec == e->exec_id && b->alive > 1 && now - d->queued_ms < b->locality_wait_ms)
        return false;
    if (d->preferred_exec < 0 || d->preferred_exec == e->exec_id) return true;
    cexec *p = exec_find(b, d->preferred_exec, false);
    if (!p || !p->alive) return true;
    int64_t waited = now - d->queued_ms;
    if (waited >= 2 * b->locality_wait_ms) return true;
    return waited >= b->locality_wait_ms && p->host && e->host && !strcmp(p->host, e->host);
}

/* Takes the best queued task for e, or NULL. Under b->mu. */
static em_task_desc *take_task(cluster_backend *b, const cexec *e, int64_t now)
{
    em_task_desc *prev = NULL, *pick = NULL, *pick_prev = NULL;
    if (b->num_preferring == 0 && !b->health_on &&
        (!b->head || (b->head->avoid_exec < 0 && b->head->never_exec != e->exec_id))) {
        pick = b->head;
    } else {
        for (em_task_desc *d = b->head; d; prev = d, d = d->next) {
            if (d->preferred_exec == e->exec_id && d->avoid_exec != e->exec_id) {
                pick = d;
                pick_prev = prev;
                break;
            }
            if (!pick && may_run(b, d, e, now)) {
                pick = d;
                pick_prev = prev;
            }
        }
    }
    if (!pick) return NULL;
    if (pick_prev)
        pick_prev->next = pick->next;
    else
        b->head = pick->next;
    if (b->tail == pick) b->tail = pick_prev;
    pick->next = NULL;
    if (pick->preferred_exec >= 0) b->num_preferring--;
    return pick;
}

static int run_add(cluster_backend *b, em_task_desc *d, cexec *e)
{
    if (b->num_run == b->cap_run) {
        int cap = b->cap_run ? b->cap_run * 2 : 64;
        running_task *v = em__realloc(b->run, (size_t)cap * sizeof *v);
        if (!v) return EM_ENOMEM;
        b->run = v;
        b->cap_run = cap;
    }
    b->run[b->num_run++] = (running_task){d, e};
    return 0;
}

/* Launches queued tasks on free cores, executors taken round-robin. Under b->mu. */
static void offer(cluster_backend *b)
{
    int64_t now = em__now_ms();
    int n = 0;
    for (cexec *e = b->execs; e; e = e->next) n++;
    int idle_rounds = 0; /* executors in a row that took nothing */
    while (b->head && !b->stopping && n > 0 && idle_rounds < n) {
        cexec *e = b->execs;
        for (int i = 0, k = b->rr % n; i < k; i++) e = e->next;
        b->rr = (b->rr + 1) % n;
        em_task_desc *d = e->alive && e->free_cores > 0 ? take_task(b, e, now) : NULL;
        if (!d) {
            idle_rounds++;
            continue;
        }
        idle_rounds = 0;
        stage_bin *s = stage_bin_for(b, d);
        if (!s) {
            fail_task(b, d, EM_ENOMEM, "out of memory serialising stage %d", d->stage_id);
            continue;
        }
        if (s->rc) {
            fail_task(b, d, s->rc, "cannot serialise stage %d: %s", d->stage_id, s->error);
            continue;
        }
        uint64_t key = (uint64_t)d->stage_id << 32 | (uint32_t)d->stage_attempt;
        int rc = 0;
        if (!exec_has_stage(e, key)) {
            em_msg_stage_def def = {(uint32_t)d->stage_id,
                                    (uint32_t)d->stage_attempt,
                                    (uint32_t)d->job_id,
                                    {s->payload.data, (uint32_t)s->payload.len}};
            rc = em_conn_send(e->conn, EM_MSG_STAGE_DEF, &def);
            if (rc == EM_ETOOBIG) {
                fail_task(b, d, rc,
                          "the definition of stage %d is %zu bytes, over "
                          "ember.rpc.message.maxSize (large parallelize data? use a file "
                          "source or raise the limit)",
                          d->stage_id, s->payload.len);
                continue;
            }
            if (!rc) rc = exec_add_stage(e, key);
        }
        em_msg_launch_task lt = {(uint64_t)d->task_id, (uint32_t)d->stage_id,
                                 (uint32_t)d->stage_attempt, (uint32_t)d->partition,
                                 (uint32_t)d->attempt};
        if (!rc) rc = em_conn_send(e->conn, EM_MSG_LAUNCH_TASK, &lt);
        if (!rc) rc = run_add(b, d, e);
        d->ran_on_exec = e->exec_id;
        em__task_desc_set_started(d, now, e->exec_id);
        if (rc) {
            fail_task(b, d, rc, "cannot send task %lld to executor %d: %s", (long long)d->task_id,
                      e->exec_id, em_strerror(rc));
            exec_lost(b, e, "its connection failed");
            continue;
        }
        e->free_cores--;
    }
}

static void cb_launch(em_backend *base, em_task_desc *d)
{
    cluster_backend *b = (cluster_backend *)base;
    d->next = NULL;
    pthread_mutex_lock(&b->mu);
    if (!b->health) { /* made by the scheduler when this backend was installed */
        b->health = em__scheduler_health(b->ctx->sched);
        b->health_on = b->health && em__health_get_limits(b->health)->enabled;
    }
    d->preferred_exec = preferred_exec(b, d);
    d->queued_ms = em__now_ms();
    if (d->preferred_exec >= 0) b->num_preferring++;
    if (b->tail)
        b->tail->next = d;
    else
        b->head = d;
    b->tail = d;
    offer(b);
    pthread_mutex_unlock(&b->mu);
}

static void cb_unpersist(em_backend *base, int rdd_id)
{
    cluster_backend *b = (cluster_backend *)base;
    em_msg_remove_rdd m = {(uint32_t)rdd_id};
    pthread_mutex_lock(&b->mu);
    blocks_forget(b, -1, rdd_id);
    for (cexec *e = b->execs; e; e = e->next)
        if (e->alive) em_conn_send(e->conn, EM_MSG_REMOVE_RDD, &m);
    pthread_mutex_unlock(&b->mu);
}

static void cb_executor_host(em_backend *base, int exec_id, char *buf, size_t cap)
{
    cluster_backend *b = (cluster_backend *)base;
    pthread_mutex_lock(&b->mu);
    cexec *e = exec_find(b, exec_id, false);
    snprintf(buf, cap, "%s", e && e->host ? e->host : "");
    pthread_mutex_unlock(&b->mu);
}

static int cb_check_schedulable(em_backend *base, int stage, int attempt, int partition,
                                int *num_app_excluded)
{
    cluster_backend *b = (cluster_backend *)base;
    em__health *h = em__scheduler_health(b->ctx->sched);
    if (num_app_excluded) *num_app_excluded = 0;
    if (!h) return 0;
    pthread_mutex_lock(&b->mu);
    int n = 0;
    for (cexec *e = b->execs; e; e = e->next) n += e->alive;
    em__health_executor *live = em__calloc((size_t)(n ? n : 1), sizeof *live);
    int k = 0;
    for (cexec *e = b->execs; live && e; e = e->next)
        if (e->alive) live[k++] = (em__health_executor){e->exec_id, e->host ? e->host : ""};
    int rc = live ? em__health_check_schedulable(h, stage, attempt, partition, live, (size_t)k,
                                                 em__now_ms(), num_app_excluded)
                  : 0;
    pthread_mutex_unlock(&b->mu);
    em__free(live);
    return rc;
}

/* Its map outputs cannot be fetched (its worker's shuffle service is gone, or the link), or
 * the health tracker excluded it with killExcludedExecutors: the executor is asked to stop and
 * dropped like a lost one, so no more tasks run where they fail or write where nobody can
 * read; the master gives the application a replacement. */
static void cb_exclude(em_backend *base, int exec_id, const char *why)
{
    cluster_backend *b = (cluster_backend *)base;
    pthread_mutex_lock(&b->mu);
    cexec *e = exec_find(b, exec_id, false);
    if (e && e->alive && !b->stopping) {
        em_msg_stop_executor m = {em_str_c(why)};
        em_conn_send(e->conn, EM_MSG_STOP_EXECUTOR, &m);
        exec_lost(b, e, why);
    }
    pthread_mutex_unlock(&b->mu);
}

/* Asks the executor running task_id to stop it (KILL_TASK; it ends with EM_EKILLED). A queued
 * task is left alone: the DAG scheduler cancels it. */
static void cb_kill_task(em_backend *base, int64_t task_id, const char *reason)
{
    cluster_backend *b = (cluster_backend *)base;
    em_msg_kill_task m = {(uint64_t)task_id, em_str_c(reason ? reason : "")};
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->num_run; i++) {
        cexec *e = b->run[i].e;
        if (b->run[i].d->task_id != task_id || !e->alive) continue;
        int rc = em_conn_send(e->conn, EM_MSG_KILL_TASK, &m);
        EM_LOG(rc ? EM_LOG_WARN : EM_LOG_INFO, "cluster",
               "killing task %lld on executor %d: %s%s%s", (long long)task_id, e->exec_id,
               reason ? reason : "", rc ? ": cannot send: " : "", rc ? em_strerror(rc) : "");
    }
    pthread_mutex_unlock(&b->mu);
}

/* ASK_COMMIT: the driver's commit coordinator decides whether an executor's task may commit
 * its output (rdd/output.c). */
static void answer_commit(cluster_backend *b, em_conn *c, const em_msg_ask_commit *m)
{
    bool ok = b->ctx->commits &&
              em__commit_can_commit(b->ctx->commits, (int)m->stage_id, (int)m->stage_attempt,
                                    (int)m->partition, (int64_t)m->task_id);
    em_msg_commit_decision r = {m->req_id, ok ? 1 : 0};
    int rc = em_conn_send(c, EM_MSG_COMMIT_DECISION, &r);
    if (rc)
        EM_LOG(EM_LOG_WARN, "cluster", "cannot answer the commit question of task %llu to %s: %s",
               (unsigned long long)m->task_id, em_conn_peer(c), em_strerror(rc));
}

static int cb_cancel_queued(em_backend *base, int job_id)
{
    cluster_backend *b = (cluster_backend *)base;
    pthread_mutex_lock(&b->mu);
    em_task_desc *drop = em__task_queue_take(&b->head, &b->tail, job_id, -1, 0);
    for (em_task_desc *d = drop; d; d = d->next)
        if (d->preferred_exec >= 0) b->num_preferring--;
    pthread_mutex_unlock(&b->mu);
    int n = 0;
    for (em_task_desc *next; drop; drop = next, n++) {
        next = drop->next;
        em__task_desc_free(drop);
    }
    return n;
}

/* Queued tasks of a stage attempt a fetch failure ended: they end as killed, unlaunched (they
 * would read the outputs being recomputed). */
static void cb_cancel_stage(em_backend *base, int stage_id, int stage_attempt)
{
    cluster_backend *b = (cluster_backend *)base;
    pthread_mutex_lock(&b->mu);
    em_task_desc *drop = em__task_queue_take(&b->head, &b->tail, -1, stage_id, stage_attempt);
    for (em_task_desc *next; drop; drop = next) {
        next = drop->next;
        drop->next = NULL;
        if (drop->preferred_exec >= 0) b->num_preferring--;
        fail_task(b, drop, EM_EKILLED, "not launched: stage %d attempt %d was cancelled", stage_id,
                  stage_attempt);
    }
    pthread_mutex_unlock(&b->mu);
}

/* ---- messages from executors ----------------------------------------------------------------- */

typedef struct conf_list {
    em_str *items;
    char **owned;
    int n, cap;
} conf_list;

static int add_conf(void *arg, const char *key, const char *value)
{
    conf_list *l = arg;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        em_str *items = em__realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return EM_ENOMEM;
        l->items = items;
        char **owned = em__realloc(l->owned, (size_t)cap * sizeof *owned);
        if (!owned) return EM_ENOMEM;
        l->owned = owned;
        l->cap = cap;
    }
    size_t n = strlen(key) + strlen(value) + 2;
    char *s = em__malloc(n);
    if (!s) return EM_ENOMEM;
    snprintf(s, n, "%s=%s", key, value);
    l->owned[l->n] = s;
    l->items[l->n++] = em_str_c(s);
    return 0;
}

static void refuse(em_conn *c, const char *fmt, ...) EM_PRINTF(2, 3);
static void refuse(em_conn *c, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    EM_LOG(EM_LOG_WARN, "cluster", "refusing executor at %s: %s", em_conn_peer(c), reason);
    em_msg_registered_executor r = {0, em_str_c(reason), {0, NULL, NULL, 0}};
    em_conn_send(c, EM_MSG_REGISTERED_EXECUTOR, &r);
    em_conn_close(c);
}

static void on_register(cluster_backend *b, em_conn *c, const em_msg_register_executor *m)
{
    const char *mine = em__main_build_id();
    if (m->build_id.len != strlen(mine) || memcmp(m->build_id.p, mine, m->build_id.len) != 0) {
        refuse(c,
               "executor %u runs a binary of build id %.*s, the driver's is %s: the worker "
               "started a different program",
               m->exec_id, (int)m->build_id.len, m->build_id.p, mine);
        return;
    }
    pthread_mutex_lock(&b->mu);
    if (b->app_id && strcmp(em_conn_peer_app_id(c), b->app_id) != 0) {
        pthread_mutex_unlock(&b->mu);
        refuse(c, "executor %u belongs to application '%s', this is '%s'", m->exec_id,
               em_conn_peer_app_id(c), b->app_id);
        return;
    }
    cexec *e = exec_find(b, (int)m->exec_id, true);
    if (!e || e->alive || e->lost) {
        pthread_mutex_unlock(&b->mu);
        refuse(c, e ? "executor %u is already registered or was lost" : "out of memory (%u)",
               m->exec_id);
        return;
    }
    em__free(e->host);
    e->host = em__strndup(m->host.p, m->host.len);
    e->block_port = (int)m->block_port;
    e->cores = e->free_cores = (int)m->cores;
    e->conn = c;
    em_conn_retain(c);
    e->alive = true;
    e->last_heartbeat_ms = em__now_ms();
    b->alive++;
    b->alive_cores += e->cores;
    conf_list l = {0};
    int rc = em__conf_foreach_set(b->ctx->conf, add_conf, &l);
    em_msg_registered_executor r = {1, em_str_c(""), {(uint32_t)l.n, l.items, NULL, 0}};
    if (!rc) rc = em_conn_send(c, EM_MSG_REGISTERED_EXECUTOR, &r);
    for (int i = 0; i < l.n; i++) em__free(l.owned[i]);
    em__free(l.owned);
    em__free(l.items);
    EM_LOG(EM_LOG_INFO, "cluster", "executor %d registered from %s (%d cores, blocks on %s:%d)",
           e->exec_id, em_conn_peer(c), e->cores, e->host ? e->host : "?", e->block_port);
    if (rc)
        exec_lost(b, e, "cannot answer its registration");
    else
        offer(b);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void deliver(cluster_backend *b, cexec *e, em_task_desc *d);

static void on_status(cluster_backend *b, em_conn *c, const em_msg_status_update *m)
{
    pthread_mutex_lock(&b->mu);
    int i = 0;
    while (i < b->num_run && b->run[i].d->task_id != (int64_t)m->task_id) i++;
    if (i == b->num_run || b->run[i].e->conn != c) {
        pthread_mutex_unlock(&b->mu);
        EM_LOG(EM_LOG_WARN, "cluster", "status of unknown task %llu from %s ignored",
               (unsigned long long)m->task_id, em_conn_peer(c));
        return;
    }
    em_task_desc *d = b->run[i].d;
    cexec *e = b->run[i].e;
    b->run[i] = b->run[--b->num_run];
    e->free_cores++;
    e->last_heartbeat_ms = em__now_ms(); /* any message shows it is alive */
    char *dir = NULL;
    int rc = em__task_outcome_decode(m->payload.p, m->payload.len, d, &dir);
    if (rc) {
        fail_task(b, d, rc, "malformed outcome of task %lld from executor %d: %s",
                  (long long)d->task_id, e->exec_id, em_errmsg());
    } else {
        if (dir) {
            if (!e->dir || strcmp(e->dir, dir) != 0) {
                em__free(e->dir);
                e->dir = dir;
                dir = NULL;
            }
            d->location = (em_block_location){e->exec_id, e->host, e->block_port, e->dir};
        }
        for (int k = 0; k < d->num_cached; k++) block_add(b, e->exec_id, &d->cached[k]);
        deliver(b, e, d);
    }
    em__free(dir);
    offer(b);
    pthread_mutex_unlock(&b->mu);
}

/* The next chunk of an indirect result. Under b->mu. */
static int request_chunk(cluster_backend *b, running_task *f)
{
    em_msg_get_result g = {
        (uint64_t)f->d->task_id, f->d->result.len,
        (uint32_t)EM_MIN(b->result_chunk, f->d->result_size - (int64_t)f->d->result.len)};
    return em_conn_send(f->e->conn, EM_MSG_GET_RESULT, &g);
}

/* Hands a finished task to the DAG scheduler, fetching an indirect result first unless it
 * would take the job past ember.driver.maxResultSize (the DAG scheduler then aborts the job
 * with that message, and nothing is fetched). Under b->mu. */
static void deliver(cluster_backend *b, cexec *e, em_task_desc *d)
{
    if (d->status || d->dep) {
        em__sched_task_done(b->ctx->sched, d);
        return;
    }
    if (d->job_id != b->result_job) {
        b->result_job = d->job_id;
        b->result_bytes = 0;
    }
    int64_t size = d->result_indirect ? d->result_size : (int64_t)d->result.len;
    b->result_bytes += size;
    if (!d->result_indirect || (b->max_result > 0 && b->result_bytes > b->max_result)) {
        em__sched_task_done(b->ctx->sched, d);
        return;
    }
    if (b->num_fetching == b->cap_fetching) {
        int cap = b->cap_fetching ? b->cap_fetching * 2 : 8;
        running_task *v = em__realloc(b->fetching, (size_t)cap * sizeof *v);
        if (!v) {
            fail_task(b, d, EM_ENOMEM, "out of memory fetching the result of task %lld",
                      (long long)d->task_id);
            return;
        }
        b->fetching = v;
        b->cap_fetching = cap;
    }
    if (em_buf_reserve(&d->result, (size_t)d->result_size)) {
        fail_task(b, d, EM_ENOMEM, "out of memory for the %lld-byte result of task %lld",
                  (long long)d->result_size, (long long)d->task_id);
        return;
    }
    running_task *f = &b->fetching[b->num_fetching++];
    *f = (running_task){d, e};
    if (request_chunk(b, f)) {
        *f = b->fetching[--b->num_fetching];
        fail_task(b, d, EM_EFETCH, "cannot ask executor %d for the result of task %lld", e->exec_id,
                  (long long)d->task_id);
    }
}

static void on_result_data(cluster_backend *b, em_conn *c, const em_msg_result_data *m)
{
    pthread_mutex_lock(&b->mu);
    int i = 0;
    while (i < b->num_fetching && b->fetching[i].d->task_id != (int64_t)m->task_id) i++;
    if (i == b->num_fetching || b->fetching[i].e->conn != c) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    running_task *f = &b->fetching[i];
    em_task_desc *d = f->d;
    int rc = m->status;
    if (!rc && (m->offset != d->result.len || m->total != (uint64_t)d->result_size ||
                d->result.len + m->data.len > (uint64_t)d->result_size ||
                (m->data.len == 0 && d->result.len < (uint64_t)d->result_size)))
        rc = EM_EFORMAT;
    if (!rc) rc = em_buf_append(&d->result, m->data.p, m->data.len);
    bool done = !rc && d->result.len == (uint64_t)d->result_size;
    if (!rc && !done) rc = request_chunk(b, f);
    if (rc || done) {
        cexec *e = f->e;
        *f = b->fetching[--b->num_fetching];
        if (rc) {
            em_buf_free(&d->result);
            fail_task(b, d, rc > 0 ? EM_EFORMAT : rc,
                      "cannot fetch the %lld-byte result of task %lld from executor %d: %s",
                      (long long)d->result_size, (long long)d->task_id, e->exec_id,
                      em_strerror(rc > 0 ? EM_EFORMAT : rc));
        } else {
            em__sched_task_done(b->ctx->sched, d);
        }
    }
    pthread_mutex_unlock(&b->mu);
}

static void serve_broadcast(cluster_backend *b, em_conn *c, const em_msg_get_broadcast_chunk *m)
{
    em_buf data = EM_BUF_INIT;
    uint32_t num_chunks = 0;
    size_t chunk_size = (size_t)em_conf_get_bytes(b->ctx->conf, "ember.broadcast.blockSize");
    int rc = em__shared_broadcast_chunk(b->ctx->shared, m->broadcast_id, m->chunk, chunk_size,
                                        &data, &num_chunks);
    em_msg_broadcast_chunk r = {
        m->req_id, m->broadcast_id, m->chunk, num_chunks, rc, {data.data, (uint32_t)data.len}};
    int src = em_conn_send(c, EM_MSG_BROADCAST_CHUNK, &r);
    if (src)
        EM_LOG(EM_LOG_WARN, "cluster", "cannot send broadcast %llu chunk %u to %s: %s",
               (unsigned long long)m->broadcast_id, m->chunk, em_conn_peer(c), em_strerror(src));
    em_buf_free(&data);
}

static void on_message(em_conn *c, const em_msg *m, void *user)
{
    cluster_backend *b = user;
    switch (m->type) {
    case EM_MSG_REGISTER_EXECUTOR:
        on_register(b, c, &m->u.register_executor);
        break;
    case EM_MSG_STATUS_UPDATE:
        on_status(b, c, &m->u.status_update);
        break;
    case EM_MSG_EXECUTOR_METRICS: {
        pthread_mutex_lock(&b->mu);
        cexec *e = exec_find(b, (int)m->u.executor_metrics.exec_id, false);
        if (e && e->conn == c) e->last_heartbeat_ms = em__now_ms();
        pthread_mutex_unlock(&b->mu);
        break;
    }
    case EM_MSG_GET_FILE:
        em_file_serve(b->files, c, &m->u.get_file);
        break;
    case EM_MSG_RESULT_DATA:
        on_result_data(b, c, &m->u.result_data);
        break;
    case EM_MSG_GET_BROADCAST_CHUNK:
        serve_broadcast(b, c, &m->u.get_broadcast_chunk);
        break;
    case EM_MSG_ASK_COMMIT:
        answer_commit(b, c, &m->u.ask_commit);
        break;
    default:
        EM_LOG(EM_LOG_WARN, "cluster", "unexpected %s from %s; closing it", em_msg_name(m->type),
               em_conn_peer(c));
        em_conn_close(c);
    }
}

static void on_close(em_conn *c, int code, const char *reason, void *user)
{
    cluster_backend *b = user;
    pthread_mutex_lock(&b->mu);
    for (cexec *e = b->execs; e; e = e->next)
        if (e->conn == c && !b->stopping) {
            char why[512];
            snprintf(why, sizeof why, "connection closed (%s%s%s)", reason, code ? ": " : "",
                     code ? em_strerror(code) : "");
            exec_lost(b, e, why);
        }
    pthread_mutex_unlock(&b->mu);
}

/* ---- the master's news ----------------------------------------------------------------------- */

static void on_executor_added(void *user, int exec_id, const char *worker_id, const char *host,
                              int cores, uint64_t memory_mb)
{
    cluster_backend *b = user;
    pthread_mutex_lock(&b->mu);
    cexec *e = exec_find(b, exec_id, true);
    if (e && !e->worker_id) e->worker_id = em__strdup(worker_id);
    pthread_mutex_unlock(&b->mu);
    EM_LOG(EM_LOG_INFO, "cluster", "executor %d granted on worker %s (%s): %d cores, %llu MiB",
           exec_id, worker_id, host, cores, (unsigned long long)memory_mb);
}

static void on_executor_removed(void *user, int exec_id, int state, int exit_code,
                                const char *message)
{
    cluster_backend *b = user;
    char why[768];
    if (exit_code < 0)
        snprintf(why, sizeof why, "killed by signal %d: %s", -exit_code, message);
    else
        snprintf(why, sizeof why, "exited with status %d: %s", exit_code, message);
    pthread_mutex_lock(&b->mu);
    cexec *e = exec_find(b, exec_id, true);
    if (e) exec_lost(b, e, why);
    /* Its worker is gone, and with it the shuffle service serving the map outputs of every
     * executor that ran there: forget them now (as Spark on a lost worker), so stages that
     * need them rerun the lost map tasks instead of discovering them by failed fetches. */
    if (e && state == EM_EXEC_LOST && e->worker_id) {
        int lost = 0;
        for (cexec *x = b->execs; x; x = x->next)
            if (x->worker_id && !strcmp(x->worker_id, e->worker_id))
                lost += em_map_outputs_unregister_executor(b->ctx->map_outputs, x->exec_id);
        if (lost)
            EM_LOG(EM_LOG_WARN, "cluster", "worker %s lost: %d map output%s unregistered",
                   e->worker_id, lost, lost == 1 ? "" : "s");
    }
    pthread_mutex_unlock(&b->mu);
}

static void on_master_lost(void *user, const char *reason)
{
    (void)user;
    EM_LOG(EM_LOG_WARN, "cluster", "lost the master: %s (running executors carry on)", reason);
}

/* Warns while tasks wait and no executor can take them (Spark's "Initial job has not accepted
 * any resources"). */
static void *watch(void *arg)
{
    cluster_backend *b = arg;
    int64_t waiting_since = 0;
    pthread_mutex_lock(&b->mu);
    while (!b->stopping) {
        /* Tasks held back for locality are offered again as their waits run out. */
        long step_ms =
            b->num_preferring > 0 ? EM_MAX(10, EM_MIN(1000, b->locality_wait_ms / 4)) : 1000;
        step_ms = EM_MIN(step_ms, EM_MAX(10, b->network_timeout_ms / 4));
        struct timespec ts = em__timespec_in(CLOCK_REALTIME, step_ms);
        pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        if (b->num_preferring > 0) offer(b);
        /* An executor silent past ember.network.timeout (no heartbeat, no status) is lost,
         * even though its connection is open (a stopped process, a cut link). */
        int64_t now_ms = em__now_ms();
        for (cexec *e = b->execs; e; e = e->next)
            if (e->alive && !b->stopping && now_ms - e->last_heartbeat_ms > b->network_timeout_ms) {
                char why[160];
                snprintf(
                    why, sizeof why, "no heartbeat for %lld ms (ember.network.timeout is %lld ms)",
                    (long long)(now_ms - e->last_heartbeat_ms), (long long)b->network_timeout_ms);
                exec_lost(b, e, why);
            }
        if (b->head && b->alive == 0) {
            int64_t now = em__now_ms();
            if (!waiting_since) waiting_since = now;
            if (now - waiting_since >= 15000) {
                EM_LOG(EM_LOG_WARN, "cluster",
                       "tasks are waiting and no executor is registered: check the master's "
                       "workers have enough free cores and memory (ember.executor.memory)");
                waiting_since = now;
            }
        } else {
            waiting_since = 0;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- life ------------------------------------------------------------------------------------ */

static void cb_stop(em_backend *base)
{
    cluster_backend *b = (cluster_backend *)base;
    /* The master first (so an executor ending now is not replaced), then the executors;
     * from now on their connections closing is no loss. */
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    pthread_mutex_unlock(&b->mu);
    em_app_client_stop(b->app);
    b->app = NULL;
    pthread_mutex_lock(&b->mu);
    em_msg_stop_executor stop = {em_str_c("the application ended")};
    for (cexec *e = b->execs; e; e = e->next)
        if (e->alive) em_conn_send(e->conn, EM_MSG_STOP_EXECUTOR, &stop);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (b->watcher_started) pthread_join(b->watcher, NULL);
    /* Give executors a moment to read their stop message before the connections close. */
    em_endpoint_stop(b->ep);
    for (cexec *e = b->execs; e;) {
        cexec *next = e->next;
        if (e->conn) em_conn_release(e->conn);
        em__free(e->host);
        em__free(e->worker_id);
        em__free(e->dir);
        em__free(e->sent);
        em__free(e);
        e = next;
    }
    em_endpoint_free(b->ep);
    for (int i = 0; i < b->num_run; i++) em__task_desc_free(b->run[i].d);
    em__free(b->run);
    em__free(b->blocks);
    for (int i = 0; i < b->num_fetching; i++) em__task_desc_free(b->fetching[i].d);
    em__free(b->fetching);
    while (b->head) {
        em_task_desc *d = b->head;
        b->head = d->next;
        em__task_desc_free(d);
    }
    while (b->bins) {
        stage_bin *s = b->bins;
        b->bins = s->next;
        bin_free(s);
    }
    em_file_registry_free(b->files);
    em__free(b->app_id);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    em__free(b);
}

static int env_add(const char ***env, int *n, const char *s)
{
    const char **v = em__realloc(*env, (size_t)(*n + 1) * sizeof *v);
    if (!v) return EM_ENOMEM;
    v[(*n)++] = s;
    *env = v;
    return 0;
}

int em__cluster_backend_new(em_context *ctx, const char *master_url, const em__cluster_request *req,
                            em_backend **out)
{
    *out = NULL;
    cluster_backend *b = em__calloc(1, sizeof *b);
    if (!b) return em__set_error(EM_ENOMEM, "out of memory starting the cluster backend");
    b->base = (em_backend){.launch = cb_launch,
                           .cancel_queued = cb_cancel_queued,
                           .cancel_stage = cb_cancel_stage,
                           .stop = cb_stop,
                           .unpersist = cb_unpersist,
                           .remote_executors = true,
                           .exclude_executor = cb_exclude,
                           .kill_task = cb_kill_task,
                           .executor_host = cb_executor_host,
                           .check_schedulable = cb_check_schedulable};
    b->ctx = ctx;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    const em_conf *conf = ctx->conf;
    int rc = 0;
    b->locality_wait_ms = em_conf_get_ms(conf, "ember.locality.wait");
    b->network_timeout_ms = em_conf_get_ms(conf, "ember.network.timeout");
    b->max_result = em_conf_get_bytes(conf, "ember.driver.maxResultSize");
    b->result_chunk = 4 << 20;
    b->result_job = -1;
    const char *host = req->driver_host && *req->driver_host
                           ? req->driver_host
                           : em_conf_get_str(conf, "ember.driver.host");
    if (host && *host) {
        snprintf(b->driver_host, sizeof b->driver_host, "%s", host);
    } else if (gethostname(b->driver_host, sizeof b->driver_host - 1) != 0) {
        snprintf(b->driver_host, sizeof b->driver_host, "127.0.0.1");
    }
    em_endpoint_config cfg = {
        .role = EM_ROLE_DRIVER,
        .app_id = ctx->app_id,
        .secret = em_conf_get_str(conf, "ember.authenticate.secret"),
        .max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize"),
        .on_message = on_message,
        .on_close = on_close,
        .user = b,
    };
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        rc = em__set_error(EM_EIO, "cannot find this program's binary (/proc/self/exe): %s",
                           strerror(errno));
        goto fail;
    }
    self[n] = '\0';
    if ((rc = em_file_registry_new(&b->files))) goto fail;
    if ((rc = em_file_registry_add(b->files, self, b->binary_hash))) goto fail;
    if ((rc = em_endpoint_new(&cfg, &b->ep))) goto fail;
    rc = em_endpoint_listen(b->ep, host && *host ? host : "0.0.0.0",
                            (int)em_conf_get_int(conf, "ember.driver.port"), &b->driver_port);
    if (rc) {
        rc = em__error_context(rc, "driver endpoint on %s", host && *host ? host : "0.0.0.0");
        goto fail;
    }
    if ((rc = em_endpoint_start(b->ep))) goto fail;
    if (pthread_create(&b->watcher, NULL, watch, b) == 0) b->watcher_started = true;

    char driver_url[300];
    snprintf(driver_url, sizeof driver_url, "%s:%d", b->driver_host, b->driver_port);
    const char **env = NULL;
    int num_env = 0;
    char level[64];
    const char *lv = getenv("EMBER_LOG_LEVEL");
    if (lv && *lv) {
        snprintf(level, sizeof level, "EMBER_LOG_LEVEL=%s", lv);
        if ((rc = env_add(&env, &num_env, level))) goto fail;
    }
    em_app_desc desc = {
        .name = ctx->app_name,
        .cores_max = req->cores_max,
        .executor_cores = req->executor_cores,
        .executor_memory_mb = req->executor_memory_mb,
        .driver_url = driver_url,
        .binary_hash = b->binary_hash,
        .env = env,
        .num_env = num_env,
    };
    em_app_client_callbacks cbs = {on_executor_added, on_executor_removed, on_master_lost, b};
    rc = em_app_client_start(conf, master_url, &desc, &cbs, &b->app);
    em__free(env);
    if (rc) goto fail;
    char *app_id = NULL;
    if ((rc = em_app_client_wait_registered(b->app, &app_id))) goto fail;
    em__free(ctx->app_id);
    ctx->app_id = app_id;
    pthread_mutex_lock(&b->mu);
    b->app_id = em__strdup(app_id);
    pthread_mutex_unlock(&b->mu);
    *out = &b->base;
    EM_LOG(EM_LOG_INFO, "cluster", "application %s registered with %s; driver at %s", ctx->app_id,
           master_url, driver_url);
    return 0;
fail:
    cb_stop(&b->base);
    return rc;
}

int em__cluster_backend_wait(em_backend *base, int min_executors, int64_t timeout_ms, int *cores)
{
    cluster_backend *b = (cluster_backend *)base;
    int64_t deadline = em__now_ms() + timeout_ms;
    pthread_mutex_lock(&b->mu);
    while (b->alive < min_executors && em__now_ms() < deadline) {
        struct timespec ts = em__timespec_in(CLOCK_REALTIME, 20);
        pthread_cond_timedwait(&b->cv, &b->mu, &ts);
    }
    int alive = b->alive;
    if (cores) *cores = b->alive_cores;
    pthread_mutex_unlock(&b->mu);
    return alive;
}
