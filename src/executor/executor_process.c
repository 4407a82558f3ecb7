/* The executor process: the application's own binary started by a worker in executor mode.
 *
 * A constructor (executor_mode_hook) runs before main(): when EMBER_EXECUTOR_MODE is exactly
 * "1" it runs the executor and _exits, so the user's main() (and whatever it does before
 * creating its context) never runs in an executor. The environment it reads is set by the
 * worker (src/deploy/executor_runner.c; the list is in docs/architecture.md).
 *
 * What it hosts: an executor context (configuration, memory manager, block store, map output
 * tracker, shuffle directory), a block server for its shuffle output, a block fetcher for
 * remote shuffle reads, a pool of `cores` task threads, and one control connection to the
 * driver's scheduler backend.
 *
 * Life of the process:
 *
 *   CONNECTING --open--> REGISTERING --registered_executor{ok}--> RUNNING --stop_executor--> exit 0
 *       |                     |                                      |
 *       +--fail: exit 1       +--refused / timeout: exit 1           +--driver connection lost:
 * exit 1
 *
 * Per stage attempt the driver sends one STAGE_DEF (the serialised graph and the map output
 * locations it reads); LAUNCH_TASK names a stage attempt and a partition; each finished task
 * is reported by STATUS_UPDATE with its encoded outcome (task_outcome.h). Heartbeats
 * (EXECUTOR_METRICS) go every ember.executor.heartbeatInterval. A task writing output asks the
 * driver before committing it (ASK_COMMIT, answered by COMMIT_DECISION; no answer within
 * ember.network.timeout or a lost driver is a denial). KILL_TASK sets the kill request of the
 * queued or running task with that id (task_runner.c checks it between records).
 *
 * Threads: the endpoint's loop thread decodes stage definitions and queues tasks; the task
 * threads run them and send their outcomes; the main thread registers, heartbeats and tears
 * down. x->mu guards the queue, the running table, the stage table, the requests waiting for an
 * answer and the state.
 */
#include "executor/executor.h"

#include "base/conf_int.h"
#include "base/symbols.h"
#include "executor/task_outcome.h"
#include "net/block_server.h"
#include "net/endpoint.h"
#include "rdd/stage_codec.h"
#include "shuffle/fetcher.h"
#include "shuffle/tracker.h"
#include "storage/block_store.h"
#include "storage/memory.h"
#include "storage/shared.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { X_CONNECTING, X_REGISTERING, X_RUNNING, X_STOPPING };

/* One decoded stage attempt; tasks hold references. */
typedef struct xstage {
    uint32_t stage_id, attempt;
    em_stage_graph *graph; /* NULL when the definition failed to decode */
    char *error;           /* why, for the tasks of this stage */
    int refs;              /* the table's (until STAGE_DONE) + one per queued/running task */
    struct xstage *next;
} xstage;

typedef struct executor {
    em_context *ctx;
    em_endpoint *ep;
    em_conn *driver; /* retained while open */
    em_block_server *blocks_server;
    char *driver_host, *host, *app_id, *worker_id, *dir;
    int driver_port, exec_id, cores;
    int64_t memory_mb;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* state changes (main thread) */
    pthread_cond_t task_cv;  /* the task queue (task threads) */
    pthread_cond_t chunk_cv; /* broadcast chunk answers (task threads) */
    struct chunk_wait *chunk_waits;
    pthread_cond_t commit_cv; /* commit decisions (task threads) */
    struct commit_wait *commit_waits;
    em_task_desc **running_tasks; /* per task thread: the task it runs, or NULL */
    struct held_result *held;     /* large results waiting for the driver */
    int64_t max_direct_result;    /* ember.task.maxDirectResultSize, read once registered */
    uint64_t next_req_id;
    int state;
    int exit_code;
    char reason[512];
    em_task_desc *head, *tail;
    xstage *stages;
    int running;
    pthread_t *threads;
    int num_threads;
} executor;

/* ---- environment ----------------------------------------------------------------------------- */

static const char *env_req(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "ember executor: environment variable %s is not set\n", name);
        return NULL;
    }
    return v;
}

static int env_int(const char *name, long lo, long hi, long *out)
{
    const char *v = env_req(name);
    if (!v) return -1;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < lo || n > hi) {
        fprintf(stderr, "ember executor: %s='%s' is not a number in %ld..%ld\n", name, v, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

static int split_host_port(const char *url, char **host, int *port)
{
    const char *colon = strrchr(url, ':');
    if (!colon || colon == url) return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535) return -1;
    const char *h = url;
    size_t n = (size_t)(colon - url);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    *host = em__strndup(h, n);
    *port = (int)p;
    return *host ? 0 : -1;
}

/* ---- stages ---------------------------------------------------------------------------------- */

static xstage *stage_find(executor *x, uint32_t id, uint32_t attempt)
{
    for (xstage *s = x->stages; s; s = s->next)
        if (s->stage_id == id && s->attempt == attempt) return s;
    return NULL;
}

/* Drops one reference; frees the stage at zero. Under x->mu. */
static void stage_unref(executor *x, xstage *s)
{
    if (--s->refs > 0) return;
    for (xstage **pp = &x->stages; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    em__stage_graph_free(s->graph);
    em__free(s->error);
    em__free(s);
}

/* The next "u32 length + bytes" section of a stage definition. */
static int take_section(const uint8_t **p, size_t *len, const uint8_t **sec, size_t *sec_len,
                        const char *what)
{
    uint32_t n = 0;
    if (*len < 4 || (n = (uint32_t)(*p)[0] | (uint32_t)(*p)[1] << 8 | (uint32_t)(*p)[2] << 16 |
                         (uint32_t)(*p)[3] << 24) > *len - 4)
        return em__set_error(EM_EFORMAT, "stage definition truncated in its %s", what);
    *sec = *p + 4;
    *sec_len = n;
    *p += 4 + n;
    *len -= 4 + (size_t)n;
    return 0;
}

static void on_stage_def(executor *x, const em_msg_stage_def *m)
{
    xstage *s = em__calloc(1, sizeof *s);
    if (!s) return;
    s->stage_id = m->stage_id;
    s->attempt = m->stage_attempt;
    s->refs = 1;
    const uint8_t *p = m->payload.p, *graph = NULL, *maps = NULL;
    size_t len = m->payload.len, glen = 0, mlen = 0;
    int rc = take_section(&p, &len, &graph, &glen, "graph");
    if (!rc) rc = take_section(&p, &len, &maps, &mlen, "map output table");
    if (!rc) rc = em__stage_decode(x->ctx, graph, glen, &s->graph);
    if (!rc) rc = em_map_outputs_decode_into(x->ctx->map_outputs, maps, mlen);
    if (!rc) rc = em__shared_acc_decode_defs(x->ctx->shared, p, len);
    if (rc) {
        char buf[1024];
        snprintf(buf, sizeof buf, "executor %d cannot use the definition of stage %u.%u: %s",
                 x->exec_id, m->stage_id, m->stage_attempt, em_errmsg());
        EM_LOG(EM_LOG_ERROR, "executor", "%s", buf);
        s->error = em__strdup(buf);
        em__stage_graph_free(s->graph);
        s->graph = NULL;
    }
    pthread_mutex_lock(&x->mu);
    xstage *old = stage_find(x, s->stage_id, s->attempt);
    if (old) stage_unref(x, old); /* a re-sent definition replaces the old one */
    s->next = x->stages;
    x->stages = s;
    pthread_mutex_unlock(&x->mu);
}

static void on_stage_done(executor *x, const em_msg_stage_done *m)
{
    pthread_mutex_lock(&x->mu);
    xstage *s = stage_find(x, m->stage_id, m->stage_attempt);
    if (s) stage_unref(x, s);
    pthread_mutex_unlock(&x->mu);
}

/* ---- tasks ----------------------------------------------------------------------------------- */

/* A large result kept for the driver to fetch (GET_RESULT). */
typedef struct held_result {
    uint64_t task_id;
    em_buf data;
    struct held_result *next;
} held_result;

/* Keeps d's result here when it is over ember.task.maxDirectResultSize; the outcome then says
 * only its size. */
static void hold_large_result(executor *x, em_task_desc *d)
{
    if (d->status || d->dep) return;
    if ((int64_t)d->result.len <= x->max_direct_result) return;
    held_result *h = em__calloc(1, sizeof *h);
    if (!h) return; /* sent inline then (or refused as too large) */
    h->task_id = (uint64_t)d->task_id;
    h->data = d->result;
    d->result = (em_buf)EM_BUF_INIT;
    d->result_size = (int64_t)h->data.len;
    d->result_indirect = true;
    pthread_mutex_lock(&x->mu);
    h->next = x->held;
    x->held = h;
    pthread_mutex_unlock(&x->mu);
}

static void on_get_result(executor *x, em_conn *c, const em_msg_get_result *m)
{
    pthread_mutex_lock(&x->mu);
    held_result **pp = &x->held;
    while (*pp && (*pp)->task_id != m->task_id) pp = &(*pp)->next;
    held_result *h = *pp;
    em_msg_result_data r = {m->task_id, 0, m->offset, 0, {NULL, 0}};
    if (!h) {
        r.status = EM_ENOENT;
    } else if (m->offset > h->data.len) {
        r.status = EM_ERANGE;
    } else {
        size_t n = EM_MIN((size_t)m->max_len, h->data.len - (size_t)m->offset);
        r.total = h->data.len;
        r.data = (em_bytes){h->data.data + m->offset, (uint32_t)n};
    }
    int rc = em_conn_send(c, EM_MSG_RESULT_DATA, &r);
    if (h && (rc || m->offset + r.data.len >= h->data.len)) { /* sent in full, or cannot */
        *pp = h->next;
        em_buf_free(&h->data);
        em__free(h);
    }
    pthread_mutex_unlock(&x->mu);
}

static void send_outcome(executor *x, em_task_desc *d)
{
    hold_large_result(x, d);
    em_buf out = EM_BUF_INIT;
    int rc = em__task_outcome_encode(d, x->ctx->local_dir, &out);
    if (rc) {
        /* Report the failure to encode (a result too large, say) as the task's failure. */
        em_buf_free(&d->result);
        em_map_status_clear(&d->map_status);
        em__free(d->errmsg);
        d->errmsg = em__strdup(em_errmsg());
        d->status = rc;
        d->dep = NULL;
        em_buf_reset(&out);
        if (em__task_outcome_encode(d, NULL, &out)) {
            em_buf_free(&out);
            return;
        }
    }
    em_msg_status_update su = {
        (uint64_t)d->task_id, d->status ? 2 : 1, {out.data, (uint32_t)out.len}};
    for (int tries = 0;; tries++) {
        rc = em_conn_send(x->driver, EM_MSG_STATUS_UPDATE, &su);
        if (rc != -EAGAIN || tries > 10000) break;
        struct timespec ts = {0, 1000000}; /* the send queue is full: wait for it to drain */
        nanosleep(&ts, NULL);
    }
    if (rc == EM_ETOOBIG) {
        /* The result does not fit one frame: say so instead. */
        char msg[512];
        snprintf(msg, sizeof msg,
                 "the result of task %lld (%zu bytes) is larger than ember.rpc.message.maxSize; "
                 "raise it, or write large outputs with saveAsTextFile",
                 (long long)d->task_id, d->result.len);
        em_task_desc f = {.task_id = d->task_id, .status = EM_ETOOBIG, .errmsg = msg};
        em_buf_reset(&out);
        if (!em__task_outcome_encode(&f, NULL, &out)) {
            em_msg_status_update fu = {(uint64_t)d->task_id, 2, {out.data, (uint32_t)out.len}};
            rc = em_conn_send(x->driver, EM_MSG_STATUS_UPDATE, &fu);
        }
    }
    if (rc)
        EM_LOG(EM_LOG_WARN, "executor", "cannot report task %lld: %s", (long long)d->task_id,
               em_strerror(rc));
    em_buf_free(&out);
}

/* Marks d running in a free slot of the running table. Under x->mu. */
static int running_add(executor *x, em_task_desc *d)
{
    for (int i = 0; i < x->cores; i++)
        if (!x->running_tasks[i]) {
            x->running_tasks[i] = d;
            return i;
        }
    return -1; /* cannot happen: at most `cores` task threads */
}

static void *task_thread(void *arg)
{
    executor *x = arg;
    for (;;) {
        pthread_mutex_lock(&x->mu);
        while (!x->head && x->state != X_STOPPING) pthread_cond_wait(&x->task_cv, &x->mu);
        if (!x->head) {
            pthread_mutex_unlock(&x->mu);
            return NULL;
        }
        em_task_desc *d = x->head;
        x->head = d->next;
        if (!x->head) x->tail = NULL;
        x->running++;
        int slot = running_add(x, d);
        pthread_mutex_unlock(&x->mu);
        d->next = NULL;
        xstage *s = d->sched_data;
        if (s->graph) {
            em__run_task(x->ctx, d);
        } else {
            d->status = EM_EFORMAT;
            d->errmsg = em__strdup(s->error ? s->error : "stage definition missing");
        }
        pthread_mutex_lock(&x->mu);
        if (slot >= 0) x->running_tasks[slot] = NULL;
        pthread_mutex_unlock(&x->mu);
        send_outcome(x, d);
        pthread_mutex_lock(&x->mu);
        x->running--;
        stage_unref(x, s);
        pthread_mutex_unlock(&x->mu);
        d->rdd = NULL;
        d->dep = NULL;
        em__task_desc_free(d);
    }
}

/* ---- output commit and kill ------------------------------------------------------------------ */

/* One outstanding ASK_COMMIT; the loop thread fills it. */
/* Under x->mu: waits on cv until *done (the answer came), the executor stops or deadline
 * (em__now_ms) passes, waking every 100 ms to look. */
static void wait_answer(executor *x, pthread_cond_t *cv, const bool *done, int64_t deadline)
{
    while (!*done && x->state != X_STOPPING && em__now_ms() < deadline) {
        struct timespec ts = em__timespec_in(CLOCK_REALTIME, 100);
        pthread_cond_timedwait(cv, &x->mu, &ts);
    }
}

typedef struct commit_wait {
    uint64_t req_id;
    bool done, ok;
    struct commit_wait *next;
} commit_wait;

static void on_commit_decision(executor *x, const em_msg_commit_decision *m)
{
    pthread_mutex_lock(&x->mu);
    for (commit_wait *w = x->commit_waits; w; w = w->next)
        if (w->req_id == m->req_id && !w->done) {
            w->done = true;
            w->ok = m->ok == 1;
            break;
        }
    pthread_cond_broadcast(&x->commit_cv);
    pthread_mutex_unlock(&x->mu);
}

/* em_task.can_commit of this executor's tasks: asks the driver's commit coordinator and waits
 * for its answer (task thread). No answer within ember.network.timeout, or the driver lost:
 * denied. */
static int ask_commit(em_task *t)
{
    executor *x = t->commit_arg;
    int64_t timeout = em_conf_get_ms(x->ctx->conf, "ember.network.timeout");
    commit_wait w = {0};
    pthread_mutex_lock(&x->mu);
    w.req_id = ++x->next_req_id;
    w.next = x->commit_waits;
    x->commit_waits = &w;
    pthread_mutex_unlock(&x->mu);
    em_msg_ask_commit m = {w.req_id, (uint64_t)t->task_id, (uint32_t)t->stage_id,
                           (uint32_t)t->stage_attempt, (uint32_t)t->partition};
    int rc = em_conn_send(x->driver, EM_MSG_ASK_COMMIT, &m);
    int64_t deadline = em__now_ms() + timeout;
    pthread_mutex_lock(&x->mu);
    if (!rc) wait_answer(x, &x->commit_cv, &w.done, deadline);
    for (commit_wait **pp = &x->commit_waits; *pp; pp = &(*pp)->next)
        if (*pp == &w) {
            *pp = w.next;
            break;
        }
    bool stopping = x->state == X_STOPPING;
    pthread_mutex_unlock(&x->mu);
    if (w.done && w.ok) return 0;
    if (w.done)
        return em__set_error(EM_ECOMMITDENIED,
                             "commit denied: partition %d of stage %d was committed by another "
                             "attempt (TID %lld, attempt %d, stage attempt %d, executor %d)",
                             t->partition, t->stage_id, (long long)t->task_id, t->attempt,
                             t->stage_attempt, x->exec_id);
    return em__set_error(EM_ECOMMITDENIED,
                         "commit denied: executor %d cannot ask the driver at %s:%d whether "
                         "TID %lld may commit partition %d of stage %d: %s",
                         x->exec_id, x->driver_host, x->driver_port, (long long)t->task_id,
                         t->partition, t->stage_id,
                         rc         ? em_strerror(rc)
                         : stopping ? "the driver connection is lost"
                                    : "no answer within ember.network.timeout");
}

/* KILL_TASK: the queued or running task with that id is asked to stop (no effect otherwise). */
static void on_kill_task(executor *x, const em_msg_kill_task *m)
{
    char reason[256];
    snprintf(reason, sizeof reason, "%.*s", (int)m->reason.len, m->reason.p);
    bool found = false;
    pthread_mutex_lock(&x->mu);
    for (int i = 0; i < x->cores; i++) {
        em_task_desc *d = x->running_tasks[i];
        if (d && d->task_id == (int64_t)m->task_id) {
            em__task_kill(&d->kill, reason);
            found = true;
        }
    }
    for (em_task_desc *d = x->head; d; d = d->next)
        if (d->task_id == (int64_t)m->task_id) {
            em__task_kill(&d->kill, reason);
            found = true;
        }
    pthread_mutex_unlock(&x->mu);
    EM_LOG(EM_LOG_INFO, "executor", "kill of task %llu asked (%s)%s",
           (unsigned long long)m->task_id, reason, found ? "" : ": not running here");
}

static void on_launch_task(executor *x, const em_msg_launch_task *m)
{
    em_task_desc *d = em__calloc(1, sizeof *d);
    if (!d) return;
    d->task_id = (int64_t)m->task_id;
    d->stage_id = (int)m->stage_id;
    d->stage_attempt = (int)m->stage_attempt;
    d->partition = (int)m->partition;
    d->attempt = (int)m->attempt;
    d->can_commit = ask_commit;
    d->commit_arg = x;
    pthread_mutex_lock(&x->mu);
    xstage *s = stage_find(x, m->stage_id, m->stage_attempt);
    if (!s) {
        pthread_mutex_unlock(&x->mu);
        d->status = EM_ESTATE;
        char msg[128];
        snprintf(msg, sizeof msg, "executor %d has no definition of stage %u.%u", x->exec_id,
                 m->stage_id, m->stage_attempt);
        d->errmsg = em__strdup(msg);
        send_outcome(x, d);
        em__task_desc_free(d);
        return;
    }
    s->refs++;
    d->sched_data = s;
    if (s->graph) {
        d->rdd = s->graph->rdd;
        d->dep = s->graph->dep;
        d->fn = s->graph->fn;
        d->fn_arg = (void *)s->graph->fn_arg;
        d->fn_arg_len = s->graph->fn_arg_len;
    }
    if (x->tail)
        x->tail->next = d;
    else
        x->head = d;
    x->tail = d;
    pthread_cond_signal(&x->task_cv);
    pthread_mutex_unlock(&x->mu);
}

/* ---- broadcast values ------------------------------------------------------------------------ */

/* One outstanding chunk request; the loop thread fills it. */
typedef struct chunk_wait {
    uint64_t req_id;
    bool done;
    int status;
    uint32_t num_chunks;
    em_buf data;
    struct chunk_wait *next;
} chunk_wait;

static void on_broadcast_chunk(executor *x, const em_msg_broadcast_chunk *m)
{
    pthread_mutex_lock(&x->mu);
    for (chunk_wait *w = x->chunk_waits; w; w = w->next)
        if (w->req_id == m->req_id && !w->done) {
            w->done = true;
            w->status = m->status > 0 ? EM_EFORMAT : m->status;
            w->num_chunks = m->num_chunks;
            if (!w->status && em_buf_append(&w->data, m->data.p, m->data.len))
                w->status = EM_ENOMEM;
            break;
        }
    pthread_cond_broadcast(&x->chunk_cv);
    pthread_mutex_unlock(&x->mu);
}

/* The registry's fetch hook: every chunk of broadcast id from the driver, in order. */
static int fetch_broadcast(void *arg, uint64_t id, em_buf *out)
{
    executor *x = arg;
    int64_t timeout = em_conf_get_ms(x->ctx->conf, "ember.network.timeout");
    uint32_t num_chunks = 1;
    for (uint32_t chunk = 0; chunk < num_chunks; chunk++) {
        chunk_wait w = {0};
        pthread_mutex_lock(&x->mu);
        w.req_id = ++x->next_req_id;
        w.next = x->chunk_waits;
        x->chunk_waits = &w;
        pthread_mutex_unlock(&x->mu);
        em_msg_get_broadcast_chunk req = {w.req_id, id, chunk};
        int rc = em_conn_send(x->driver, EM_MSG_GET_BROADCAST_CHUNK, &req);
        int64_t deadline = em__now_ms() + timeout;
        pthread_mutex_lock(&x->mu);
        if (!rc) wait_answer(x, &x->chunk_cv, &w.done, deadline);
        for (chunk_wait **pp = &x->chunk_waits; *pp; pp = &(*pp)->next)
            if (*pp == &w) {
                *pp = w.next;
                break;
            }
        pthread_mutex_unlock(&x->mu);
        if (!rc && !w.done) rc = EM_EFETCH;
        if (!rc) rc = w.status;
        if (!rc) {
            num_chunks = w.num_chunks;
            rc = em_buf_append(out, w.data.data, w.data.len);
        }
        em_buf_free(&w.data);
        if (rc == EM_ENOENT)
            return em__set_error(EM_ENOENT,
                                 "broadcast %llu does not exist on the driver (destroyed, or "
                                 "never created by this application)",
                                 (unsigned long long)id);
        if (rc)
            return em__set_error(
                EM_EFETCH,
                "executor %d cannot fetch broadcast %llu (chunk %u) from the "
                "driver at %s:%d: %s",
                x->exec_id, (unsigned long long)id, chunk, x->driver_host, x->driver_port,
                rc == EM_EFETCH ? "no answer within ember.network.timeout" : em_strerror(rc));
    }
    return 0;
}

/* ---- the driver connection ------------------------------------------------------------------- */

static void stop_with(executor *x, int code, const char *fmt, ...) EM_PRINTF(3, 4);
static void stop_with(executor *x, int code, const char *fmt, ...)
{
    pthread_mutex_lock(&x->mu);
    if (x->state != X_STOPPING) {
        x->state = X_STOPPING;
        x->exit_code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->reason, sizeof x->reason, fmt, ap);
        va_end(ap);
    }
    pthread_cond_broadcast(&x->cv);
    pthread_cond_broadcast(&x->task_cv);
    pthread_cond_broadcast(&x->chunk_cv);
    pthread_cond_broadcast(&x->commit_cv);
    pthread_mutex_unlock(&x->mu);
}

static void on_connected(em_conn *c, int status, void *arg)
{
    executor *x = arg;
    if (status) {
        stop_with(x, 1, "cannot connect to the driver at %s:%d: %s", x->driver_host, x->driver_port,
                  em_strerror(status));
        return;
    }
    em_conn_retain(c);
    pthread_mutex_lock(&x->mu);
    x->driver = c;
    x->state = X_REGISTERING;
    pthread_mutex_unlock(&x->mu);
    /* Map outputs are announced at the worker's shuffle service when there is one. */
    long service_port = 0;
    const char *sp = getenv("EMBER_SHUFFLE_SERVICE_PORT");
    if (sp) service_port = strtol(sp, NULL, 10);
    if (service_port <= 0 || service_port > 65535)
        service_port = em_block_server_port(x->blocks_server);
    em_msg_register_executor m = {(uint32_t)x->exec_id,          em_str_c(x->host),
                                  (uint32_t)service_port,        (uint32_t)x->cores,
                                  em_str_c(em__main_build_id()), (uint32_t)getpid()};
    int rc = em_conn_send(c, EM_MSG_REGISTER_EXECUTOR, &m);
    if (rc) stop_with(x, 1, "cannot register with the driver: %s", em_strerror(rc));
}

static void on_registered(executor *x, const em_msg_registered_executor *m)
{
    if (!m->ok) {
        stop_with(x, 1, "the driver refused executor %d: %.*s", x->exec_id, (int)m->reason.len,
                  m->reason.p);
        return;
    }
    size_t pos = 0;
    em_str kv;
    while (em_strlist_next(&m->conf, &pos, &kv)) {
        char *s = em__strndup(kv.p, kv.len);
        if (s && em_conf_set_pair(x->ctx->conf, s))
            EM_LOG(EM_LOG_WARN, "executor", "ignoring the driver's option '%s': %s", s,
                   em_errmsg());
        em__free(s);
    }
    pthread_mutex_lock(&x->mu);
    if (x->state == X_REGISTERING) x->state = X_RUNNING;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static void on_message(em_conn *c, const em_msg *m, void *user)
{
    executor *x = user;
    (void)c;
    switch (m->type) {
    case EM_MSG_REGISTERED_EXECUTOR:
        on_registered(x, &m->u.registered_executor);
        break;
    case EM_MSG_STAGE_DEF:
        on_stage_def(x, &m->u.stage_def);
        break;
    case EM_MSG_LAUNCH_TASK:
        on_launch_task(x, &m->u.launch_task);
        break;
    case EM_MSG_STAGE_DONE:
        on_stage_done(x, &m->u.stage_done);
        break;
    case EM_MSG_BROADCAST_CHUNK:
        on_broadcast_chunk(x, &m->u.broadcast_chunk);
        break;
    case EM_MSG_GET_RESULT:
        on_get_result(x, c, &m->u.get_result);
        break;
    case EM_MSG_REMOVE_RDD:
        em_block_store_remove_rdd(x->ctx->blocks, (int)m->u.remove_rdd.rdd_id);
        break;
    case EM_MSG_KILL_TASK:
        on_kill_task(x, &m->u.kill_task);
        break;
    case EM_MSG_COMMIT_DECISION:
        on_commit_decision(x, &m->u.commit_decision);
        break;
    case EM_MSG_STOP_EXECUTOR:
        stop_with(x, 0, "stopped by the driver: %.*s", (int)m->u.stop_executor.reason.len,
                  m->u.stop_executor.reason.p);
        break;
    default:
        EM_LOG(EM_LOG_WARN, "executor", "unexpected %s from the driver", em_msg_name(m->type));
    }
}

static void on_close(em_conn *c, int code, const char *reason, void *user)
{
    executor *x = user;
    (void)c;
    stop_with(x, 1, "lost the driver at %s:%d (%s%s%s)", x->driver_host, x->driver_port, reason,
              code ? ": " : "", code ? em_strerror(code) : "");
}

/* ---- heartbeat ------------------------------------------------------------------------------- */

static double cpu_load(void)
{
    double l[1];
    return getloadavg(l, 1) == 1 ? l[0] : 0.0;
}

static void heartbeat(executor *x)
{
    em_memory_manager *mm = x->ctx->memory;
    pthread_mutex_lock(&x->mu);
    uint32_t running = (uint32_t)x->running;
    pthread_mutex_unlock(&x->mu);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint8_t rss[8];
    uint64_t peak = (uint64_t)ru.ru_maxrss * 1024;
    for (int i = 0; i < 8; i++) rss[i] = (uint8_t)(peak >> (8 * i));
    em_msg_executor_metrics m = {
        (uint32_t)x->exec_id,
        em__wall_ms(),
        cpu_load(),
        (uint64_t)(em_memory_execution_used(mm) + em_memory_storage_used(mm)),
        (uint64_t)(x->memory_mb << 20),
        running,
        {rss, sizeof rss},
    };
    em_conn_send(x->driver, EM_MSG_EXECUTOR_METRICS, &m);
}

/* ---- set-up and tear-down -------------------------------------------------------------------- */

static int context_new(executor *x)
{
    em_context *ctx = em__calloc(1, sizeof *ctx);
    if (!ctx) return EM_ENOMEM;
    x->ctx = ctx;
    pthread_mutex_init(&ctx->mu, NULL);
    ctx->conf = em_conf_new();
    if (!ctx->conf) return EM_ENOMEM;
    int rc = em_conf_load_defaults(ctx->conf);
    if (rc) return rc;
    const char *secret = getenv("EMBER_AUTH_SECRET");
    if (secret && *secret && (rc = em_conf_set(ctx->conf, "ember.authenticate.secret", secret)))
        return rc;
    ctx->app_id = em__strdup(x->app_id);
    ctx->master = em__strdup("executor");
    ctx->app_name = em__strdup("executor");
    ctx->exec_id = x->exec_id;
    ctx->num_threads = x->cores;
    ctx->max_failures = 1;
    ctx->default_parallelism = x->cores;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/blockmgr", x->dir);
    if ((rc = em__mkdirs(dir))) return rc;
    ctx->local_dir = em__strdup(dir);
    ctx->memory = em_memory_manager_new(
        x->memory_mb << 20, em_conf_get_double(ctx->conf, "ember.memory.fraction"),
        em_conf_get_double(ctx->conf, "ember.memory.storageFraction"));
    ctx->map_outputs = em_map_output_tracker_new();
    ctx->shared = em__shared_new();
    if (ctx->shared) em__shared_set_fetch(ctx->shared, fetch_broadcast, x);
    ctx->blocks = ctx->memory ? em_block_store_new(ctx->memory) : NULL;
    if (!ctx->app_id || !ctx->master || !ctx->app_name || !ctx->local_dir || !ctx->memory ||
        !ctx->map_outputs || !ctx->blocks || !ctx->shared)
        return em__set_error(EM_ENOMEM, "out of memory creating the executor");
    return 0;
}

static void context_free(em_context *ctx)
{
    if (!ctx) return;
    em_block_fetcher_free(ctx->fetcher);
    em__shared_free(ctx->shared);
    em_block_store_free(ctx->blocks);
    em_map_output_tracker_free(ctx->map_outputs);
    em_memory_manager_free(ctx->memory);
    em__free(ctx->local_dir);
    em__free(ctx->master);
    em__free(ctx->app_name);
    em__free(ctx->app_id);
    em_conf_free(ctx->conf);
    pthread_mutex_destroy(&ctx->mu);
    em__free(ctx);
}

static int start(executor *x)
{
    int rc = context_new(x);
    if (rc) return rc;
    /* Before the loop thread starts: on_kill_task reads it. */
    x->running_tasks = em__calloc((size_t)x->cores, sizeof *x->running_tasks);
    if (!x->running_tasks) return em__set_error(EM_ENOMEM, "out of memory creating the executor");
    const em_conf *conf = x->ctx->conf;
    if ((rc = em_block_server_start(conf, x->host,
                                    (int)em_conf_get_int(conf, "ember.blockManager.port"),
                                    &x->blocks_server)))
        return rc;
    em_block_server_set_locator(x->blocks_server, em_shuffle_locate_blocks);
    if ((rc = em_block_server_add_dir(x->blocks_server, x->app_id, x->exec_id, x->ctx->local_dir)))
        return rc;
    em_endpoint_config cfg = {
        .role = EM_ROLE_EXECUTOR,
        .app_id = x->app_id,
        .secret = em_conf_get_str(conf, "ember.authenticate.secret"),
        .max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize"),
        .handshake_timeout_ms =
            (unsigned)EM_MIN(em_conf_get_ms(conf, "ember.network.timeout"), 600000),
        .on_message = on_message,
        .on_close = on_close,
        .user = x,
    };
    if ((rc = em_endpoint_new(&cfg, &x->ep)) || (rc = em_endpoint_start(x->ep))) return rc;
    return em_endpoint_connect(x->ep, x->driver_host, x->driver_port, on_connected, x);
}

static int start_task_threads(executor *x)
{
    x->threads = em__calloc((size_t)x->cores, sizeof *x->threads);
    if (!x->threads) return EM_ENOMEM;
    for (int i = 0; i < x->cores; i++) {
        if (pthread_create(&x->threads[i], NULL, task_thread, x) != 0)
            return em__set_error(EM_ENOMEM, "cannot start task thread %d", i);
        x->num_threads++;
    }
    return 0;
}

static void teardown(executor *x)
{
    stop_with(x, x->exit_code, "stopping");
    for (int i = 0; i < x->num_threads; i++) pthread_join(x->threads[i], NULL);
    em__free(x->threads);
    em__free(x->running_tasks);
    em_endpoint_free(x->ep); /* on_close may still run: it only sets the state */
    if (x->driver) em_conn_release(x->driver);
    em_block_server_stop(x->blocks_server);
    while (x->head) {
        em_task_desc *d = x->head;
        x->head = d->next;
        em__task_desc_free(d);
    }
    while (x->held) {
        held_result *h = x->held;
        x->held = h->next;
        em_buf_free(&h->data);
        em__free(h);
    }
    while (x->stages) {
        xstage *s = x->stages;
        x->stages = s->next;
        em__stage_graph_free(s->graph);
        em__free(s->error);
        em__free(s);
    }
    context_free(x->ctx);
    em__free(x->driver_host);
    pthread_cond_destroy(&x->cv);
    pthread_cond_destroy(&x->task_cv);
    pthread_cond_destroy(&x->chunk_cv);
    pthread_cond_destroy(&x->commit_cv);
    pthread_mutex_destroy(&x->mu);
}

/* Runs the executor to its end; returns the process's exit status. */
static int executor_main(void)
{
    executor x = {0};
    pthread_mutex_init(&x.mu, NULL);
    pthread_cond_init(&x.cv, NULL);
    pthread_cond_init(&x.task_cv, NULL);
    pthread_cond_init(&x.chunk_cv, NULL);
    pthread_cond_init(&x.commit_cv, NULL);
    long exec_id, cores, memory_mb;
    const char *driver_url = env_req("EMBER_DRIVER_URL");
    x.app_id = (char *)env_req("EMBER_APP_ID");
    x.host = (char *)env_req("EMBER_EXECUTOR_HOST");
    x.dir = (char *)env_req("EMBER_EXECUTOR_DIR");
    x.worker_id = getenv("EMBER_WORKER_ID");
    if (!driver_url || !x.app_id || !x.host || !x.dir ||
        env_int("EMBER_EXECUTOR_ID", 0, INT32_MAX, &exec_id) ||
        env_int("EMBER_EXECUTOR_CORES", 1, 4096, &cores) ||
        env_int("EMBER_EXECUTOR_MEMORY_MB", 1, INT32_MAX, &memory_mb))
        return 2;
    if (split_host_port(driver_url, &x.driver_host, &x.driver_port)) {
        fprintf(stderr, "ember executor: EMBER_DRIVER_URL='%s' is not host:port\n", driver_url);
        return 2;
    }
    x.exec_id = (int)exec_id;
    x.cores = (int)cores;
    x.memory_mb = memory_mb;
    int rc = start(&x);
    if (rc) {
        fprintf(stderr, "ember executor %d: cannot start: %s\n", x.exec_id,
                em_errmsg()[0] ? em_errmsg() : em_strerror(rc));
        x.exit_code = 1;
        teardown(&x);
        return 1;
    }
    EM_LOG(EM_LOG_INFO, "executor", "executor %d of %s: %d cores, %ld MiB, block server %s:%d",
           x.exec_id, x.app_id, x.cores, memory_mb, x.host, em_block_server_port(x.blocks_server));
    int64_t timeout_ms = em_conf_get_ms(x.ctx->conf, "ember.network.timeout");
    int64_t deadline = em__now_ms() + timeout_ms;
    pthread_mutex_lock(&x.mu);
    while (x.state < X_RUNNING && em__now_ms() < deadline) {
        struct timespec ts = em__timespec_in(CLOCK_REALTIME, 50);
        pthread_cond_timedwait(&x.cv, &x.mu, &ts);
    }
    int state = x.state;
    pthread_mutex_unlock(&x.mu);
    if (state < X_RUNNING)
        stop_with(&x, 1, "no answer from the driver at %s within ember.network.timeout",
                  driver_url);
    x.max_direct_result = em_conf_get_bytes(x.ctx->conf, "ember.task.maxDirectResultSize");
    /* The fetcher reads the driver's options (retries, timeouts), known since registration. */
    if (state == X_RUNNING &&
        (rc = em_block_fetcher_new(x.ctx->conf, x.app_id, x.exec_id, &x.ctx->fetcher)))
        stop_with(&x, 1, "cannot start the block fetcher: %s", em_errmsg());
    else if (state == X_RUNNING && (rc = start_task_threads(&x)))
        stop_with(&x, 1, "cannot start task threads: %s", em_errmsg());
    int64_t interval = em_conf_get_ms(x.ctx->conf, "ember.executor.heartbeatInterval");
    pthread_mutex_lock(&x.mu);
    while (x.state != X_STOPPING) {
        struct timespec ts = em__timespec_in(CLOCK_REALTIME, interval);
        if (pthread_cond_timedwait(&x.cv, &x.mu, &ts) == ETIMEDOUT && x.state == X_RUNNING) {
            pthread_mutex_unlock(&x.mu);
            heartbeat(&x);
            pthread_mutex_lock(&x.mu);
        }
    }
    pthread_mutex_unlock(&x.mu);
    int code = x.exit_code;
    if (code)
        EM_LOG(EM_LOG_ERROR, "executor", "executor %d exits: %s", x.exec_id, x.reason);
    else
        EM_LOG(EM_LOG_INFO, "executor", "executor %d exits: %s", x.exec_id, x.reason);
    if (code) {
        fprintf(stderr, "ember executor %d: %s\n", x.exec_id, x.reason);
        return code; /* the driver is gone: no orderly tear-down of running tasks */
    }
    teardown(&x);
    return 0;
}

/* Linked into every program that creates a context (context.c calls it), so the constructor
 * below is always part of an application binary, static libember included. */
int em__executor_mode(void)
{
    const char *m = getenv("EMBER_EXECUTOR_MODE");
    return m && !strcmp(m, "1");
}

__attribute__((constructor)) static void executor_mode_hook(void)
{
    if (!em__executor_mode()) return;
    unsetenv("EMBER_EXECUTOR_MODE"); /* not inherited by anything a task starts */
    int code = executor_main();
    fflush(stdout);
    fflush(stderr);
    _exit(code);
}
