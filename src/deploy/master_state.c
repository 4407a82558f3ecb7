/* The standalone master's tables (workers, applications, executors) and its scheduling pass,
 * as pure state machines: the caller passes the clock and gets back the messages to send
 * (em__mstate_take_actions). Owned by the master daemon (master.c, under its mutex) and the
 * unit tests (fake clock, fake connection tags). One thread at a time.
 *
 * Worker lifecycle, as the master sees it:
 *
 *        register_worker (new id)            heartbeat (updates last_seen)
 *   (none) ------------------------> ALIVE <------------------------------+
 *                                     |  ^ |                               |
 *        silent > ember.worker.timeout|  | +-------------------------------+
 *        (em__mstate_check, WARN line)v  | em__mstate_register_worker, same id (after the
 *                                     DEAD   worker reconnects; also any id after a master
 *                                            restart, when the table starts empty)
 *   A heartbeat from a DEAD or unknown worker closes its connection: the worker reconnects and
 *   registers again. A closed connection does not kill a worker by itself; silence does.
 *   A register_worker for an id that is ALIVE on another open connection is refused.
 *   At death its executors become LOST (below) and are remembered on the worker; if it comes
 *   back, it is sent KILL_EXECUTOR for each (the processes may have outlived the silence).
 *
 *   Recovery (em__mstate_recover, journal records):
 *   (journal) --> UNKNOWN --register_worker--> ALIVE, `reporting` --WORKER_STATE_END--> ALIVE
 *                    |                          (em__mstate_worker_executor / _driver take
 *                    |                           back what it runs)
 *                    +-- not back when the recovery completes (complete_recovery) --> DEAD
 *
 * Application lifecycle:
 *
 *   em__mstate_register_app        schedule places its first executor
 *   -----------------------> WAITING ----------------------------------> RUNNING
 *                               |                                           |
 *                               +--- em__mstate_unregister_app, or the -----+--> FINISHED
 *                               |    driver's connection closes                 (APPLICATION_
 *                               |    (em__mstate_conn_closed)                    FINISHED to
 *                               +--- retry cap reached and no executor ----+--> FAILED  workers)
 *                                    RUNNING (executor_state)                   (+ APPLICATION_
 *                                                                                REMOVED to the
 *                                                                                driver)
 *   Ended applications keep their entry (state, end_reason) until EM_MASTER_RETAINED_APPS
 *   newer ones have ended; their executors are gone from the table.
 *
 *   Recovery: (journal) --> UNKNOWN (not scheduled; its workers' reports add its executors)
 *     --em__mstate_reregister_app--> RUNNING (had executors) or WAITING
 *     --not back when the recovery completes--> FINISHED (APPLICATION_FINISHED to workers)
 *
 * Executor lifecycle (ids 0, 1, 2, ... per application, never reused):
 *
 *   em__mstate_schedule       worker: RUNNING
 *   ------------------> LAUNCHING ---------------> RUNNING
 *   (LAUNCH_EXECUTOR to     |                         |
 *    the worker,            +-- worker: EXITED / -----+--> removed (resources freed,
 *    EXECUTOR_ADDED to      |   FAILED / KILLED            EXECUTOR_REMOVED to the driver,
 *    the driver)            |   (executor_state)           schedule again: a replacement)
 *                           +-- worker DEAD (check) ---+--> LOST, removed (same)
 *                           +-- application ends ------+--> removed (APPLICATION_FINISHED)
 *   RECOVERING: a worker's report (WORKER_EXECUTOR) of an executor of a known application
 *   puts it back as reported (LAUNCHING / RUNNING), holding its cores; next_exec_id, journaled
 *   at every launch, stays past every id used, so no id comes back after a restart.
 *
 * Retry cap (Spark's spark.deploy.maxExecutorRetries = 10): an abnormal end (FAILED, or EXITED
 * with a non-zero status; not KILLED, not LOST) adds one to the application's count, unless the
 * executor had been RUNNING for EM_MASTER_EXECUTOR_STABLE_MS, which resets it (a healthy
 * executor lost later is not a crash loop). At the cap the application gets no new executors;
 * if none of its executors is RUNNING it ends FAILED. So a binary that always crashes (or a
 * hash nobody serves) costs 10 attempts, not an endless loop.
 *
 * Scheduling (em__mstate_schedule): applications in registration order (FIFO, as Spark);
 * usable workers are ALIVE, connected, with room for one executor (and, in the one-executor-
 * per-worker mode of executor_cores = 0, no live executor of that application), sorted by
 * free cores, most first; em__place_executors decides (ember.deploy.spreadOut).
 *
 * Cluster-mode drivers (ember submit --deploy-mode cluster) live in the same state, in
 * master_drivers.c (their lifecycle is drawn there): they hold cores and memory of the worker
 * they run on, are placed before executors in each scheduling pass, and share the worker
 * events above (death: relaunch or ERROR; return: KILL_DRIVER for the ones it may still run).
 */
#include "deploy/master_state.h"

#include "deploy/master_state_int.h"
#include "deploy/placement.h"
#include "net/proto.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *em_exec_state_name(int state)
{
    static const char *const names[] = {"?",      "LAUNCHING", "RUNNING", "KILLED",
                                        "FAILED", "LOST",      "EXITED"};
    return state >= 1 && state <= 6 ? names[state] : "?";
}

const char *em_app_state_name(int state)
{
    static const char *const names[] = {"?",      "WAITING", "RUNNING", "FINISHED",
                                        "FAILED", "KILLED",  "UNKNOWN"};
    return state >= 1 && state <= 6 ? names[state] : "?";
}

const char *em_worker_state_name(int state)
{
    static const char *const names[] = {"?", "ALIVE", "DEAD", "UNKNOWN"};
    return state >= 1 && state <= 3 ? names[state] : "?";
}

const char *em_master_state_name(int state)
{
    return state == EM_MASTER_ALIVE ? "ALIVE" : state == EM_MASTER_RECOVERING ? "RECOVERING" : "?";
}

const char *em_driver_state_name(int state)
{
    static const char *const names[] = {"?",           "SUBMITTED", "RUNNING", "FINISHED",
                                        "RELAUNCHING", "KILLED",    "FAILED",  "ERROR"};
    return state >= 1 && state <= 7 ? names[state] : "?";
}

/* ---- the worker table ------------------------------------------------------------------------ */
em_mworker *em__mworkers_find(em__mworkers *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].id, id)) return &t->v[i];
    return NULL;
}

em_mworker *em__mworkers_by_conn(em__mworkers *t, void *conn)
{
    for (size_t i = 0; conn && i < t->n; i++)
        if (t->v[i].conn == conn && t->v[i].connected && t->v[i].state == EM_WORKER_ALIVE)
            return &t->v[i];
    return NULL;
}

int em__mworkers_register(em__mworkers *t, const char *id, const char *host, int port, int cores,
                          uint64_t memory_mb, void *conn, int64_t now_ms)
{
    em_mworker *w = em__mworkers_find(t, id);
    int again = w != NULL;
    if (w && w->state == EM_WORKER_ALIVE && w->connected && w->conn != conn)
        return em__set_error(EM_EEXIST, "worker %s is already registered and connected", id);
    char *h = em__strdup(host);
    if (!h) return em__set_error(EM_ENOMEM, "out of memory");
    if (!w) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? 2 * t->cap : 8;
            em_mworker *v = em__realloc(t->v, cap * sizeof *v);
            if (!v) {
                em__free(h);
                return em__set_error(EM_ENOMEM, "out of memory");
            }
            t->v = v;
            t->cap = cap;
        }
        w = &t->v[t->n];
        memset(w, 0, sizeof *w);
        w->id = em__strdup(id);
        if (!w->id) {
            em__free(h);
            return em__set_error(EM_ENOMEM, "out of memory");
        }
        t->n++;
    }
    em__free(w->host);
    w->host = h;
    w->port = port;
    w->cores = cores;
    w->memory_mb = memory_mb;
    w->state = EM_WORKER_ALIVE;
    w->connected = conn != NULL;
    w->conn = conn;
    w->last_seen_ms = now_ms;
    w->registrations++;
    return again;
}

int em__mworkers_heartbeat(em__mworkers *t, const char *id, int64_t now_ms)
{
    em_mworker *w = em__mworkers_find(t, id);
    if (!w || w->state != EM_WORKER_ALIVE)
        return em__set_error(EM_ENOENT, "heartbeat from %s worker %s", w ? "dead" : "unknown", id);
    w->last_seen_ms = now_ms;
    return 0;
}

int em__mworkers_disconnected(em__mworkers *t, void *conn)
{
    int n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].connected && t->v[i].conn == conn) {
            t->v[i].connected = 0;
            t->v[i].conn = NULL;
            n++;
        }
    return n;
}

int em__mworkers_check(em__mworkers *t, int64_t now_ms, int64_t timeout_ms)
{
    int died = 0;
    for (size_t i = 0; i < t->n; i++) {
        em_mworker *w = &t->v[i];
        int64_t silent = now_ms - w->last_seen_ms;
        if (w->state != EM_WORKER_ALIVE || silent <= timeout_ms) continue;
        w->state = EM_WORKER_DEAD;
        died++;
        EM_LOG(EM_LOG_WARN, "master",
               "worker %s (%s:%d) is DEAD: no heartbeat for %lld ms (ember.worker.timeout %lld ms)",
               w->id, w->host, w->port, (long long)silent, (long long)timeout_ms);
    }
    return died;
}

static void free_lost(em_mworker *w)
{
    for (size_t k = 0; k < w->nlost; k++) em__free(w->lost[k].app_id);
    em__free(w->lost);
    w->lost = NULL;
    w->nlost = 0;
}

void em__mworkers_free(em__mworkers *t)
{
    for (size_t i = 0; i < t->n; i++) {
        em__free(t->v[i].id);
        em__free(t->v[i].host);
        free_lost(&t->v[i]);
    }
    em__free(t->v);
    memset(t, 0, sizeof *t);
}

/* ---- the outbox -------------------------------------------------------------------------------
 */
static void action_clear(em__maction *a)
{
    em__free(a->app_id);
    em__free(a->driver_id);
    em__free(a->worker_id);
    em__free(a->host);
    em__free(a->message);
}

void em__mactions_free(em__maction *v, size_t n)
{
    for (size_t i = 0; i < n; i++) action_clear(&v[i]);
    em__free(v);
}

em__maction *em__mstate_take_actions(em__mstate *st, size_t *n)
{
    em__maction *v = st->out;
    *n = st->nout;
    st->out = NULL;
    st->nout = st->capout = 0;
    return v;
}

void em__mstate_make_id(char *out, size_t cap, const char *prefix, int64_t wall_ms, int number)
{
    char stamp[32] = "00000000000000";
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    if (localtime_r(&secs, &tm)) strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    snprintf(out, cap, "%s-%s-%04d", prefix, stamp, number);
}

void em__mstate_journal(em__mstate *st, int kind, const char *id, bool remove)
{
    if (!st->journaling) return;
    if (st->njops == st->capjops) {
        size_t cap = st->capjops ? 2 * st->capjops : 16;
        em__mjournal_op *v = em__realloc(st->jops, cap * sizeof *v);
        if (!v) goto oom;
        st->jops = v;
        st->capjops = cap;
    }
    char *copy = id ? em__strdup(id) : NULL;
    if (id && !copy) goto oom;
    st->jops[st->njops++] = (em__mjournal_op){kind, remove, copy};
    return;
oom:
    st->oom = 1;
    EM_LOG(EM_LOG_ERROR, "master", "out of memory: the journal misses a change of %s",
           id ? id : "the id counters");
}

em__mjournal_op *em__mstate_take_journal(em__mstate *st, size_t *n)
{
    em__mjournal_op *v = st->jops;
    *n = st->njops;
    st->jops = NULL;
    st->njops = st->capjops = 0;
    return v;
}

void em__mjournal_ops_free(em__mjournal_op *v, size_t n)
{
    for (size_t i = 0; i < n; i++) em__free(v[i].id);
    em__free(v);
}

void em__mstate_push(em__mstate *st, const em__maction *a)
{
    if (!a->conn) return;
    if (st->nout == st->capout) {
        size_t cap = st->capout ? 2 * st->capout : 16;
        em__maction *v = em__realloc(st->out, cap * sizeof *v);
        if (!v) goto oom;
        st->out = v;
        st->capout = cap;
    }
    em__maction *d = &st->out[st->nout];
    *d = *a;
    d->app_id = a->app_id ? em__strdup(a->app_id) : NULL;
    d->driver_id = a->driver_id ? em__strdup(a->driver_id) : NULL;
    d->worker_id = a->worker_id ? em__strdup(a->worker_id) : NULL;
    d->host = a->host ? em__strdup(a->host) : NULL;
    d->message = a->message ? em__strdup(a->message) : NULL;
    if ((a->app_id && !d->app_id) || (a->driver_id && !d->driver_id) ||
        (a->worker_id && !d->worker_id) || (a->host && !d->host) || (a->message && !d->message)) {
        action_clear(d);
        goto oom;
    }
    st->nout++;
    return;
oom:
    st->oom = 1;
    EM_LOG(EM_LOG_ERROR, "master", "out of memory: message %s dropped", em_msg_name(a->type));
}

/* ---- applications -----------------------------------------------------------------------------
 */
void em__mstate_init(em__mstate *st, bool spread_out)
{
    memset(st, 0, sizeof *st);
    st->spread_out = spread_out;
    st->max_executor_retries = EM_MASTER_MAX_EXECUTOR_RETRIES;
    st->state = EM_MASTER_ALIVE;
}

void em__mapp_free(em_mapp *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->nexecs; i++) em__free(a->execs[i].worker_id);
    em__free(a->execs);
    for (int i = 0; i < a->num_env; i++) em__free(a->env[i]);
    em__free(a->env);
    em__free(a->id);
    em__free(a->name);
    em__free(a->driver_url);
    em__free(a->binary_hash);
    em__free(a->end_reason);
    em__free(a);
}

static void app_free(em_mapp *a)
{
    em__mapp_free(a);
}

void em__mstate_free(em__mstate *st)
{
    em__mworkers_free(&st->workers);
    for (size_t i = 0; i < st->napps; i++) app_free(st->apps[i]);
    em__free(st->apps);
    em__mstate_drivers_free(st);
    em__mactions_free(st->out, st->nout);
    em__mjournal_ops_free(st->jops, st->njops);
    memset(st, 0, sizeof *st);
}

/* Not ended: WAITING, RUNNING, or UNKNOWN (recovered, waiting for its driver). */
static bool app_live(const em_mapp *a)
{
    return a->state == EM_APP_WAITING || a->state == EM_APP_RUNNING || a->state == EM_APP_UNKNOWN;
}

em_mapp *em__mstate_find_app(em__mstate *st, const char *app_id)
{
    for (size_t i = 0; i < st->napps; i++)
        if (!strcmp(st->apps[i]->id, app_id)) return st->apps[i];
    return NULL;
}

em_mexec *em__mapp_find_exec(em_mapp *a, int exec_id)
{
    for (size_t i = 0; i < a->nexecs; i++)
        if (a->execs[i].exec_id == exec_id) return &a->execs[i];
    return NULL;
}

/* Gives executor a->execs[i]'s resources back to its worker and drops it from the table. When
 * tell is set, its driver gets EXECUTOR_REMOVED(state, exit_code, message). */
static void remove_exec(em__mstate *st, em_mapp *a, size_t i, int state, int exit_code,
                        const char *message, bool tell)
{
    em_mexec *e = &a->execs[i];
    em_mworker *w = em__mworkers_find(&st->workers, e->worker_id);
    if (w) {
        w->cores_used -= e->cores;
        w->memory_used_mb -= e->memory_mb;
        if (w->cores_used < 0) w->cores_used = 0;
    }
    a->cores_granted -= e->cores;
    if (tell)
        em__mstate_push(st, &(em__maction){.type = EM_MSG_EXECUTOR_REMOVED,
                                           .conn = a->conn,
                                           .app_id = a->id,
                                           .exec_id = e->exec_id,
                                           .state = state,
                                           .exit_code = exit_code,
                                           .message = (char *)message});
    em__free(e->worker_id);
    memmove(e, e + 1, (a->nexecs - i - 1) * sizeof *e);
    a->nexecs--;
}

/* Ends a live application: its executors are dropped (the workers kill them on
 * APPLICATION_FINISHED, sent to every connected worker), its driver told APPLICATION_REMOVED
 * when tell_driver. */
static void end_app(em__mstate *st, em_mapp *a, int state, const char *reason, bool tell_driver,
                    int64_t now_ms)
{
    while (a->nexecs > 0) remove_exec(st, a, a->nexecs - 1, EM_EXEC_KILLED, 0, NULL, false);
    for (size_t i = 0; i < st->workers.n; i++) {
        em_mworker *w = &st->workers.v[i];
        if (w->state == EM_WORKER_ALIVE && w->connected)
            em__mstate_push(st, &(em__maction){.type = EM_MSG_APPLICATION_FINISHED,
                                               .conn = w->conn,
                                               .app_id = a->id});
    }
    if (tell_driver)
        em__mstate_push(st, &(em__maction){.type = EM_MSG_APPLICATION_REMOVED,
                                           .conn = a->conn,
                                           .app_id = a->id,
                                           .message = (char *)reason});
    EM_LOG(state == EM_APP_FINISHED ? EM_LOG_INFO : EM_LOG_WARN, "master",
           "application %s (%s) %s: %s", a->id, a->name, em_app_state_name(state), reason);
    a->state = state;
    a->conn = NULL;
    a->end_ms = now_ms;
    em__free(a->end_reason);
    a->end_reason = em__strdup(reason);
    em__mstate_journal(st, EM_MJ_APP, a->id, true);
}

/* Drops the oldest ended applications beyond EM_MASTER_RETAINED_APPS. */
static void trim_ended(em__mstate *st)
{
    size_t ended = 0;
    for (size_t i = 0; i < st->napps; i++) ended += !app_live(st->apps[i]);
    for (size_t i = 0; i < st->napps && ended > EM_MASTER_RETAINED_APPS;) {
        if (app_live(st->apps[i])) {
            i++;
            continue;
        }
        app_free(st->apps[i]);
        memmove(&st->apps[i], &st->apps[i + 1], (st->napps - i - 1) * sizeof *st->apps);
        st->napps--;
        ended--;
    }
}

static bool is_hex_sha256(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == 64;
}

int em__mstate_register_app(em__mstate *st, const em__app_request *req, void *conn, int64_t now_ms,
                            int64_t wall_ms, em_mapp **out)
{
    *out = NULL;
    const char *name = req->name && *req->name ? req->name : "ember-app";
    if (req->cores_max < 0 || req->executor_cores < 0)
        return em__set_error(EM_EINVAL, "application '%s': negative cores (max %d, executor %d)",
                             name, req->cores_max, req->executor_cores);
    if (!req->binary_hash || !is_hex_sha256(req->binary_hash))
        return em__set_error(EM_EINVAL,
                             "application '%s': binary hash '%s' is not a hex SHA-256 (64 "
                             "lower-case hex digits)",
                             name, req->binary_hash ? req->binary_hash : "");
    if (!req->driver_url || !strchr(req->driver_url, ':'))
        return em__set_error(EM_EINVAL, "application '%s': driver URL '%s' is not host:port", name,
                             req->driver_url ? req->driver_url : "");
    for (int i = 0; i < req->num_env; i++)
        if (!req->env[i] || !strchr(req->env[i], '=') || req->env[i][0] == '=')
            return em__set_error(EM_EINVAL,
                                 "application '%s': environment entry '%s' is not NAME=value", name,
                                 req->env[i] ? req->env[i] : "");
    for (size_t i = 0; conn && i < st->napps; i++)
        if (st->apps[i]->conn == conn && app_live(st->apps[i]))
            return em__set_error(EM_EEXIST,
                                 "this connection already registered application %s; one "
                                 "application per connection",
                                 st->apps[i]->id);
    trim_ended(st);
    if (st->napps == st->capapps) {
        size_t cap = st->capapps ? 2 * st->capapps : 8;
        em_mapp **v = em__realloc(st->apps, cap * sizeof *v);
        if (!v) return em__set_error(EM_ENOMEM, "out of memory");
        st->apps = v;
        st->capapps = cap;
    }
    em_mapp *a = em__calloc(1, sizeof *a);
    if (!a) return em__set_error(EM_ENOMEM, "out of memory");
    char id[64];
    em__mstate_make_id(id, sizeof id, "app", wall_ms, st->next_app_number);
    a->id = em__strdup(id);
    a->name = em__strdup(name);
    a->driver_url = em__strdup(req->driver_url);
    a->binary_hash = em__strdup(req->binary_hash);
    a->env = req->num_env ? em__calloc((size_t)req->num_env, sizeof *a->env) : NULL;
    bool ok = a->id && a->name && a->driver_url && a->binary_hash && (a->env || !req->num_env);
    for (int i = 0; ok && i < req->num_env; i++) {
        a->env[i] = em__strdup(req->env[i]);
        ok = a->env[i] != NULL;
        a->num_env = i + 1;
    }
    if (!ok) {
        app_free(a);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    a->cores_max = req->cores_max;
    a->executor_cores = req->executor_cores;
    a->executor_memory_mb = req->executor_memory_mb;
    a->state = EM_APP_WAITING;
    a->conn = conn;
    a->submit_ms = now_ms;
    st->apps[st->napps++] = a;
    st->next_app_number++;
    em__mstate_journal(st, EM_MJ_IDS, NULL, false);
    em__mstate_journal(st, EM_MJ_APP, a->id, false);
    EM_LOG(EM_LOG_INFO, "master",
           "registered application %s (%s): cores max %d, %d cores and %llu MiB per executor, "
           "driver %s",
           a->id, a->name, a->cores_max, a->executor_cores,
           (unsigned long long)a->executor_memory_mb, a->driver_url);
    *out = a;
    em__mstate_schedule(st, now_ms);
    return 0;
}

int em__mstate_unregister_app(em__mstate *st, const char *app_id, void *from, int64_t now_ms)
{
    em_mapp *a = em__mstate_find_app(st, app_id);
    if (!a || !app_live(a))
        return em__set_error(EM_ENOENT, "unregister of %s application %s", a ? "ended" : "unknown",
                             app_id);
    if (from && a->conn != from)
        return em__set_error(EM_EACCES, "application %s was not registered on this connection",
                             app_id);
    end_app(st, a, EM_APP_FINISHED, "unregistered by its driver", false, now_ms);
    em__mstate_schedule(st, now_ms);
    return 0;
}

void em__mstate_conn_closed(em__mstate *st, void *conn, int64_t now_ms)
{
    em__mworkers_disconnected(&st->workers, conn);
    bool ended = false;
    for (size_t i = 0; i < st->napps; i++) {
        em_mapp *a = st->apps[i];
        if (a->conn != conn || !app_live(a)) continue;
        a->conn = NULL; /* gone: nothing to tell */
        end_app(st, a, EM_APP_FINISHED, "its driver disconnected", false, now_ms);
        ended = true;
    }
    if (ended) em__mstate_schedule(st, now_ms);
}

int em__mstate_executor_state(em__mstate *st, void *from, const char *app_id, int exec_id,
                              int state, int exit_code, const char *message, int64_t now_ms)
{
    if (state != EM_EXEC_RUNNING && state != EM_EXEC_EXITED && state != EM_EXEC_FAILED &&
        state != EM_EXEC_KILLED)
        return em__set_error(EM_EINVAL, "executor %d of %s: a worker cannot report state %d",
                             exec_id, app_id, state);
    em_mapp *a = em__mstate_find_app(st, app_id);
    em_mexec *e = a && app_live(a) ? em__mapp_find_exec(a, exec_id) : NULL;
    if (!e)
        return em__set_error(EM_ENOENT, "state %s of unknown executor %d of %s application %s",
                             em_exec_state_name(state), exec_id,
                             !a            ? "unknown"
                             : app_live(a) ? "live"
                                           : "ended",
                             app_id);
    em_mworker *w = em__mworkers_find(&st->workers, e->worker_id);
    if (from && (!w || w->conn != from))
        return em__set_error(EM_EACCES,
                             "state of executor %d of %s from a connection that is not its "
                             "worker %s's",
                             exec_id, app_id, e->worker_id);
    if (state == EM_EXEC_RUNNING) {
        e->state = EM_EXEC_RUNNING;
        e->running_ms = now_ms;
        return 0;
    }
    int64_t ran = e->state == EM_EXEC_RUNNING ? now_ms - e->running_ms : 0;
    bool normal = state == EM_EXEC_EXITED && exit_code == 0;
    EM_LOG(normal || state == EM_EXEC_KILLED ? EM_LOG_INFO : EM_LOG_WARN, "master",
           "executor %d of %s on worker %s %s (exit code %d): %s", exec_id, app_id, e->worker_id,
           em_exec_state_name(state), exit_code, message && *message ? message : "-");
    remove_exec(st, a, (size_t)(e - a->execs), state, exit_code, message, true);
    if (!normal && state != EM_EXEC_KILLED) {
        if (ran >= EM_MASTER_EXECUTOR_STABLE_MS)
            a->retries = 0;
        else
            a->retries++;
        if (a->retries >= st->max_executor_retries) {
            bool running = false;
            for (size_t i = 0; i < a->nexecs; i++) running |= a->execs[i].state == EM_EXEC_RUNNING;
            char reason[1024];
            snprintf(reason, sizeof reason,
                     "executors failed %d times in a row (the cap is %d, as Spark's "
                     "spark.deploy.maxExecutorRetries); last: executor %d %s (exit code %d): %s",
                     a->retries, st->max_executor_retries, exec_id, em_exec_state_name(state),
                     exit_code, message && *message ? message : "-");
            if (!running)
                end_app(st, a, EM_APP_FAILED, reason, true, now_ms);
            else
                EM_LOG(EM_LOG_WARN, "master", "application %s gets no new executors: %s", a->id,
                       reason);
        }
    }
    em__mstate_schedule(st, now_ms);
    return 0;
}

/* ---- workers through the state ------------------------------------------------------------------
 */
int em__mstate_register_worker(em__mstate *st, const char *id, const char *host, int port,
                               int cores, uint64_t memory_mb, void *conn, int64_t now_ms)
{
    em_mworker *known = em__mworkers_find(&st->workers, id);
    bool from_journal = known && known->state == EM_WORKER_UNKNOWN;
    int rc = em__mworkers_register(&st->workers, id, host, port, cores, memory_mb, conn, now_ms);
    if (rc < 0) return rc;
    em_mworker *w = em__mworkers_find(&st->workers, id);
    w->reporting = from_journal;
    if (from_journal)
        EM_LOG(EM_LOG_INFO, "master", "worker %s is back after the master's recovery", id);
    em__mstate_journal(st, EM_MJ_WORKER, id, false);
    for (size_t k = 0; k < w->nlost; k++) {
        if (w->lost[k].driver) {
            EM_LOG(EM_LOG_INFO, "master",
                   "worker %s is back: telling it to kill driver %s, lost at its death", id,
                   w->lost[k].app_id);
            em__mstate_push(st, &(em__maction){.type = EM_MSG_KILL_DRIVER,
                                               .conn = conn,
                                               .driver_id = w->lost[k].app_id});
            continue;
        }
        EM_LOG(EM_LOG_INFO, "master",
               "worker %s is back: telling it to kill executor %d of %s, lost at its death", id,
               w->lost[k].exec_id, w->lost[k].app_id);
        em__mstate_push(st, &(em__maction){.type = EM_MSG_KILL_EXECUTOR,
                                           .conn = conn,
                                           .app_id = w->lost[k].app_id,
                                           .exec_id = w->lost[k].exec_id});
    }
    free_lost(w);
    em__mstate_drivers_worker_back(st, w);
    em__mstate_schedule(st, now_ms);
    return rc;
}

void em__mworker_remember_lost(em_mworker *w, const char *app_id, int exec_id, bool driver)
{
    em_mlost_exec *v = em__realloc(w->lost, (w->nlost + 1) * sizeof *v);
    char *id = em__strdup(app_id);
    if (!v || !id) {
        if (v) w->lost = v;
        em__free(id);
        EM_LOG(EM_LOG_ERROR, "master", "out of memory remembering lost %s %d of %s",
               driver ? "driver" : "executor", exec_id, app_id);
        return;
    }
    w->lost = v;
    w->lost[w->nlost++] = (em_mlost_exec){id, exec_id, driver};
}

static void complete_recovery(em__mstate *st, int64_t now_ms);

int em__mstate_check(em__mstate *st, int64_t now_ms, int64_t timeout_ms)
{
    if (st->state == EM_MASTER_RECOVERING && now_ms >= st->recovery_deadline_ms)
        complete_recovery(st, now_ms);
    int died = em__mworkers_check(&st->workers, now_ms, timeout_ms);
    for (size_t i = 0; died && i < st->workers.n; i++)
        if (st->workers.v[i].state == EM_WORKER_DEAD)
            em__mstate_journal(st, EM_MJ_WORKER, st->workers.v[i].id, true);
    if (!died) {
        if (em__mstate_drivers_due(st, now_ms)) em__mstate_schedule(st, now_ms);
        return 0;
    }
    em__mstate_drivers_worker_died(st, now_ms);
    for (size_t i = 0; i < st->napps; i++) {
        em_mapp *a = st->apps[i];
        for (size_t k = 0; k < a->nexecs;) {
            em_mworker *w = em__mworkers_find(&st->workers, a->execs[k].worker_id);
            if (!w || w->state != EM_WORKER_DEAD) {
                k++;
                continue;
            }
            char msg[512];
            snprintf(msg, sizeof msg, "worker %s (%s) lost: no heartbeat for %lld ms", w->id,
                     w->host, (long long)(now_ms - w->last_seen_ms));
            EM_LOG(EM_LOG_WARN, "master", "executor %d of %s LOST: %s", a->execs[k].exec_id, a->id,
                   msg);
            em__mworker_remember_lost(w, a->id, a->execs[k].exec_id, false);
            remove_exec(st, a, k, EM_EXEC_LOST, 0, msg, true);
        }
    }
    em__mstate_schedule(st, now_ms);
    return died;
}

/* ---- scheduling ---------------------------------------------------------------------------------
 */
/* Places a new executor of a on worker w with cores. */
static void launch(em__mstate *st, em_mapp *a, em_mworker *w, int cores, int64_t now_ms)
{
    if (a->nexecs == a->capexecs) {
        size_t cap = a->capexecs ? 2 * a->capexecs : 4;
        em_mexec *v = em__realloc(a->execs, cap * sizeof *v);
        if (!v) goto oom;
        a->execs = v;
        a->capexecs = cap;
    }
    em_mexec *e = &a->execs[a->nexecs];
    memset(e, 0, sizeof *e);
    e->worker_id = em__strdup(w->id);
    if (!e->worker_id) goto oom;
    e->exec_id = a->next_exec_id++;
    e->cores = cores;
    e->memory_mb = a->executor_memory_mb;
    e->state = EM_EXEC_LAUNCHING;
    e->launched_ms = now_ms;
    a->nexecs++;
    a->executors_launched++;
    em__mstate_journal(st, EM_MJ_APP, a->id, false); /* next_exec_id */
    a->cores_granted += cores;
    a->state = EM_APP_RUNNING;
    w->cores_used += cores;
    w->memory_used_mb += e->memory_mb;
    EM_LOG(EM_LOG_INFO, "master",
           "launching executor %d of %s on worker %s (%s): %d cores, %llu MiB", e->exec_id, a->id,
           w->id, w->host, cores, (unsigned long long)e->memory_mb);
    em__mstate_push(st, &(em__maction){.type = EM_MSG_LAUNCH_EXECUTOR,
                                       .conn = w->conn,
                                       .app = a,
                                       .app_id = a->id,
                                       .exec_id = e->exec_id,
                                       .cores = cores,
                                       .memory_mb = e->memory_mb});
    em__mstate_push(st, &(em__maction){.type = EM_MSG_EXECUTOR_ADDED,
                                       .conn = a->conn,
                                       .app_id = a->id,
                                       .exec_id = e->exec_id,
                                       .cores = cores,
                                       .memory_mb = e->memory_mb,
                                       .worker_id = w->id,
                                       .host = w->host});
    return;
oom:
    EM_LOG(EM_LOG_ERROR, "master", "out of memory launching an executor of %s", a->id);
}

static bool hosts_exec_of(const em_mapp *a, const em_mworker *w)
{
    for (size_t i = 0; i < a->nexecs; i++)
        if (!strcmp(a->execs[i].worker_id, w->id)) return true;
    return false;
}

static void schedule_app(em__mstate *st, em_mapp *a, size_t *idx, em__place_worker *pw,
                         em__place_slot *slots, int64_t now_ms)
{
    int wanted = a->cores_max > 0 ? a->cores_max - a->cores_granted : INT_MAX;
    if (wanted <= 0 || a->retries >= st->max_executor_retries) return;
    int min_cores = a->executor_cores > 0 ? a->executor_cores : 1;
    size_t n = 0;
    for (size_t i = 0; i < st->workers.n; i++) {
        em_mworker *w = &st->workers.v[i];
        int free_cores = w->cores - w->cores_used;
        uint64_t free_mem = w->memory_mb > w->memory_used_mb ? w->memory_mb - w->memory_used_mb : 0;
        if (w->state != EM_WORKER_ALIVE || !w->connected || free_cores < min_cores ||
            free_mem < a->executor_memory_mb)
            continue;
        if (a->executor_cores == 0 && hosts_exec_of(a, w)) continue;
        /* insertion by free cores, most first; ties keep registration order */
        size_t k = n++;
        while (k > 0 && pw[k - 1].free_cores < free_cores) {
            pw[k] = pw[k - 1];
            idx[k] = idx[k - 1];
            k--;
        }
        pw[k] = (em__place_worker){free_cores, free_mem};
        idx[k] = i;
    }
    if (!n) return;
    int got = em__place_executors(pw, n, a->executor_cores, a->executor_memory_mb, wanted,
                                  st->spread_out, slots);
    if (got <= 0) return;
    for (size_t k = 0; k < n; k++) {
        em_mworker *w = &st->workers.v[idx[k]];
        for (int x = 0; x < slots[k].executors; x++)
            launch(st, a, w, a->executor_cores > 0 ? a->executor_cores : slots[k].cores, now_ms);
    }
}

void em__mstate_schedule(em__mstate *st, int64_t now_ms)
{
    if (!st->workers.n || st->state != EM_MASTER_ALIVE) return;
    em__mstate_schedule_drivers(st, now_ms); /* drivers first, as Spark's master */
    size_t n = st->workers.n;
    size_t *idx = em__malloc(n * sizeof *idx);
    em__place_worker *pw = em__malloc(n * sizeof *pw);
    em__place_slot *slots = em__malloc(n * sizeof *slots);
    if (idx && pw && slots) {
        for (size_t i = 0; i < st->napps; i++)
            if (app_live(st->apps[i]) && st->apps[i]->state != EM_APP_UNKNOWN)
                schedule_app(st, st->apps[i], idx, pw, slots, now_ms);
    } else {
        EM_LOG(EM_LOG_ERROR, "master", "out of memory in the scheduling pass");
    }
    em__free(idx);
    em__free(pw);
    em__free(slots);
}

/* ---- recovery -----------------------------------------------------------------------------------
 */
void em__mrecovered_free(em__mrecovered *r)
{
    for (size_t i = 0; i < r->nworkers; i++) {
        em__free(r->workers[i].id);
        em__free(r->workers[i].host);
        free_lost(&r->workers[i]);
    }
    em__free(r->workers);
    for (size_t i = 0; i < r->napps; i++) em__mapp_free(r->apps[i]);
    em__free(r->apps);
    for (size_t i = 0; i < r->ndrivers; i++) em__mdriver_free(r->drivers[i]);
    em__free(r->drivers);
    memset(r, 0, sizeof *r);
}

/* The number after the last '-' of an id ("app-20240101120000-0007" -> 7), or -1. */
static int id_number(const char *id)
{
    const char *d = strrchr(id, '-');
    if (!d || !d[1]) return -1;
    char *end = NULL;
    long v = strtol(d + 1, &end, 10);
    return *end || v < 0 || v >= INT_MAX ? -1 : (int)v;
}

static bool grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *n = em__realloc(*v, c * size);
    if (!n) return false;
    *v = n;
    *cap = c;
    return true;
}

size_t em__mstate_recover(em__mstate *st, em__mrecovered *r, int64_t now_ms, int64_t timeout_ms)
{
    size_t nw = 0, na = 0, nd = 0;
    if (!grow((void **)&st->workers.v, &st->workers.cap, st->workers.n + r->nworkers,
              sizeof *st->workers.v) ||
        !grow((void **)&st->apps, &st->capapps, st->napps + r->napps, sizeof *st->apps) ||
        !grow((void **)&st->drivers, &st->capdrivers, st->ndrivers + r->ndrivers,
              sizeof *st->drivers)) {
        EM_LOG(EM_LOG_ERROR, "master", "out of memory recovering the journal: starting empty");
        em__mrecovered_free(r);
        return 0;
    }
    for (size_t i = 0; i < r->nworkers; i++) {
        em_mworker *src = &r->workers[i];
        if (em__mworkers_find(&st->workers, src->id)) continue; /* freed with r */
        em_mworker *w = &st->workers.v[st->workers.n++];
        memset(w, 0, sizeof *w);
        w->id = src->id;
        w->host = src->host;
        src->id = src->host = NULL;
        w->port = src->port;
        w->cores = src->cores;
        w->memory_mb = src->memory_mb;
        w->state = EM_WORKER_UNKNOWN;
        w->last_seen_ms = now_ms;
        nw++;
    }
    for (size_t i = 0; i < r->napps; i++) {
        em_mapp *a = r->apps[i];
        if (em__mstate_find_app(st, a->id)) continue;
        r->apps[i] = NULL;
        a->state = EM_APP_UNKNOWN;
        a->conn = NULL;
        a->submit_ms = now_ms;
        a->nexecs = a->cores_granted = 0;
        st->apps[st->napps++] = a;
        st->next_app_number = EM_MAX(st->next_app_number, id_number(a->id) + 1);
        na++;
    }
    for (size_t i = 0; i < r->ndrivers; i++) {
        em_mdriver *d = r->drivers[i];
        if (em__mstate_find_driver(st, d->id)) continue;
        r->drivers[i] = NULL;
        d->recovered = d->placed && !em__driver_state_final(d->state);
        d->placed = false;
        d->submit_ms = d->launch_ms = now_ms;
        d->running_ms = 0;
        d->relaunch_at_ms = now_ms; /* a pending back-off restarts at the recovery's end */
        st->drivers[st->ndrivers++] = d;
        st->next_driver_number = EM_MAX(st->next_driver_number, id_number(d->id) + 1);
        nd++;
    }
    st->next_app_number = EM_MAX(st->next_app_number, r->next_app_number);
    st->next_driver_number = EM_MAX(st->next_driver_number, r->next_driver_number);
    em__mrecovered_free(r);
    size_t taken = nw + na + nd;
    if (!taken) return 0;
    st->state = EM_MASTER_RECOVERING;
    st->recovery_deadline_ms = now_ms + timeout_ms;
    EM_LOG(EM_LOG_INFO, "master",
           "RECOVERING from the journal: %zu workers, %zu applications, %zu drivers; waiting up to "
           "%lld ms (ember.worker.timeout) for them to come back",
           nw, na, nd, (long long)timeout_ms);
    if (!nw && !na) complete_recovery(st, now_ms); /* only drivers: nobody to wait for */
    return taken;
}

/* Completes the recovery once nobody is awaited any more. */
static void recovery_progress(em__mstate *st, int64_t now_ms)
{
    if (st->state != EM_MASTER_RECOVERING) return;
    for (size_t i = 0; i < st->workers.n; i++)
        if (st->workers.v[i].state == EM_WORKER_UNKNOWN || st->workers.v[i].reporting) return;
    for (size_t i = 0; i < st->napps; i++)
        if (st->apps[i]->state == EM_APP_UNKNOWN) return;
    complete_recovery(st, now_ms);
}

/* RECOVERING -> ALIVE: workers that did not come back are DEAD, applications whose driver did
 * not come back FINISHED (their executors killed), drivers no worker reported relaunched or
 * ended; then the scheduling pass. */
static void complete_recovery(em__mstate *st, int64_t now_ms)
{
    size_t workers_back = 0, workers_lost = 0, apps_back = 0, apps_lost = 0;
    st->state = EM_MASTER_ALIVE;
    for (size_t i = 0; i < st->workers.n; i++) {
        em_mworker *w = &st->workers.v[i];
        w->reporting = false;
        if (w->state != EM_WORKER_UNKNOWN) {
            workers_back += w->state == EM_WORKER_ALIVE;
            continue;
        }
        w->state = EM_WORKER_DEAD;
        workers_lost++;
        em__mstate_journal(st, EM_MJ_WORKER, w->id, true);
        EM_LOG(EM_LOG_WARN, "master",
               "worker %s (%s:%d) did not come back after the recovery: DEAD", w->id, w->host,
               w->port);
    }
    for (size_t i = 0; i < st->napps; i++) {
        em_mapp *a = st->apps[i];
        if (a->state == EM_APP_UNKNOWN) {
            end_app(st, a, EM_APP_FINISHED, "its driver did not come back after the recovery",
                    false, now_ms);
            apps_lost++;
        } else if (app_live(a)) {
            apps_back++;
        }
    }
    em__mstate_drivers_recovery_done(st, now_ms);
    EM_LOG(EM_LOG_INFO, "master",
           "recovery complete: %zu workers and %zu applications back, %zu workers and %zu "
           "applications removed; the master is ALIVE",
           workers_back, apps_back, workers_lost, apps_lost);
    em__mstate_schedule(st, now_ms);
}

/* The worker of id worker_id, ALIVE and registered on connection from, or NULL. */
static em_mworker *reporter(em__mstate *st, void *from, const char *worker_id)
{
    em_mworker *w = em__mworkers_find(&st->workers, worker_id);
    if (!w || w->state != EM_WORKER_ALIVE || !w->connected || w->conn != from) return NULL;
    return w;
}

/* Takes back executor exec_id of a that worker w reports. */
static void adopt_exec(em__mstate *st, em_mapp *a, em_mworker *w, int exec_id, int cores,
                       uint64_t memory_mb, int state, int64_t now_ms)
{
    char *wid = em__strdup(w->id);
    if (!wid || !grow((void **)&a->execs, &a->capexecs, a->nexecs + 1, sizeof *a->execs)) {
        em__free(wid);
        EM_LOG(EM_LOG_ERROR, "master", "out of memory recovering executor %d of %s", exec_id,
               a->id);
        return;
    }
    em_mexec *e = &a->execs[a->nexecs++];
    *e = (em_mexec){.exec_id = exec_id,
                    .worker_id = wid,
                    .cores = cores,
                    .memory_mb = memory_mb,
                    .state = state,
                    .launched_ms = now_ms,
                    .running_ms = state == EM_EXEC_RUNNING ? now_ms : 0};
    a->cores_granted += cores;
    w->cores_used += cores;
    w->memory_used_mb += memory_mb;
    if (a->state == EM_APP_WAITING) a->state = EM_APP_RUNNING;
    if (exec_id >= a->next_exec_id) {
        a->next_exec_id = exec_id + 1;
        em__mstate_journal(st, EM_MJ_APP, a->id, false);
    }
    EM_LOG(EM_LOG_INFO, "master",
           "recovered executor %d of %s on worker %s: %s, %d cores, %llu MiB", exec_id, a->id,
           w->id, em_exec_state_name(state), cores, (unsigned long long)memory_mb);
}

int em__mstate_worker_executor(em__mstate *st, void *from, const char *worker_id,
                               const char *app_id, int exec_id, int cores, uint64_t memory_mb,
                               int state, int64_t now_ms)
{
    if (state != EM_EXEC_LAUNCHING && state != EM_EXEC_RUNNING)
        return em__set_error(EM_EINVAL, "worker %s reports executor %d of %s in state %d",
                             worker_id, exec_id, app_id, state);
    em_mworker *w = reporter(st, from, worker_id);
    if (!w)
        return em__set_error(EM_ENOENT,
                             "report of executor %d of %s from worker %s, not registered on "
                             "that connection",
                             exec_id, app_id, worker_id);
    bool recovering = st->state == EM_MASTER_RECOVERING;
    if (!recovering && !st->journaling) return 0; /* as before recovery existed */
    em_mapp *a = em__mstate_find_app(st, app_id);
    bool live = a && app_live(a);
    em_mexec *e = live ? em__mapp_find_exec(a, exec_id) : NULL;
    if (e && !strcmp(e->worker_id, w->id)) return 0;
    if (recovering && live && !e && exec_id >= 0) {
        adopt_exec(st, a, w, exec_id, EM_MAX(cores, 0), memory_mb, state, now_ms);
        return 0;
    }
    EM_LOG(EM_LOG_WARN, "master",
           "worker %s runs executor %d of %s application %s: telling it to kill it", w->id, exec_id,
           !a      ? "unknown"
           : !live ? "ended"
           : e     ? "(placed elsewhere)"
                   : "(replaced)",
           app_id);
    em__mstate_push(st, &(em__maction){.type = EM_MSG_KILL_EXECUTOR,
                                       .conn = w->conn,
                                       .app_id = (char *)app_id,
                                       .exec_id = exec_id});
    return 0;
}

int em__mstate_worker_driver(em__mstate *st, void *from, const char *worker_id,
                             const char *driver_id, int cores, uint64_t memory_mb, int state,
                             int64_t now_ms)
{
    (void)cores, (void)memory_mb; /* the driver's own record says what it holds */
    if (state != EM_DRIVER_SUBMITTED && state != EM_DRIVER_RUNNING)
        return em__set_error(EM_EINVAL, "worker %s reports driver %s in state %d", worker_id,
                             driver_id, state);
    em_mworker *w = reporter(st, from, worker_id);
    if (!w)
        return em__set_error(EM_ENOENT,
                             "report of driver %s from worker %s, not registered on that "
                             "connection",
                             driver_id, worker_id);
    bool recovering = st->state == EM_MASTER_RECOVERING;
    if (!recovering && !st->journaling) return 0;
    em_mdriver *d = em__mstate_find_driver(st, driver_id);
    if (d && d->placed && !strcmp(d->worker_id, w->id)) return 0;
    if (recovering && d && !d->placed && !em__driver_state_final(d->state)) {
        em__mstate_adopt_driver(st, d, w, state, now_ms);
        return 0;
    }
    EM_LOG(EM_LOG_WARN, "master", "worker %s runs %s driver %s: telling it to kill it", w->id,
           !d                                 ? "unknown"
           : em__driver_state_final(d->state) ? "ended"
                                              : "the replaced",
           driver_id);
    em__mstate_push(st, &(em__maction){.type = EM_MSG_KILL_DRIVER,
                                       .conn = w->conn,
                                       .driver_id = (char *)driver_id});
    return 0;
}

int em__mstate_worker_state_end(em__mstate *st, void *from, const char *worker_id, int64_t now_ms)
{
    em_mworker *w = reporter(st, from, worker_id);
    if (!w)
        return em__set_error(EM_ENOENT,
                             "end of report from worker %s, not registered on that "
                             "connection",
                             worker_id);
    w->reporting = false;
    recovery_progress(st, now_ms);
    return 0;
}

int em__mstate_reregister_app(em__mstate *st, const char *app_id, void *conn, int64_t now_ms)
{
    em_mapp *a = em__mstate_find_app(st, app_id);
    if (!a)
        return em__set_error(EM_ENOENT, "application %s is unknown to this master (not recovered)",
                             app_id);
    if (!app_live(a))
        return em__set_error(EM_ESTATE, "application %s already ended: %s (%s)", app_id,
                             em_app_state_name(a->state), a->end_reason ? a->end_reason : "-");
    if (a->state != EM_APP_UNKNOWN && a->conn && a->conn != conn)
        return em__set_error(EM_EEXIST, "application %s is registered on another connection",
                             app_id);
    for (size_t i = 0; conn && i < st->napps; i++)
        if (st->apps[i] != a && st->apps[i]->conn == conn && app_live(st->apps[i]))
            return em__set_error(EM_EEXIST,
                                 "this connection already registered application %s; one "
                                 "application per connection",
                                 st->apps[i]->id);
    if (a->state == EM_APP_UNKNOWN)
        a->state = a->nexecs > 0 || a->executors_launched > 0 || a->next_exec_id > 0
                       ? EM_APP_RUNNING
                       : EM_APP_WAITING;
    a->conn = conn;
    EM_LOG(EM_LOG_INFO, "master",
           "application %s (%s) re-registered by its driver: %s, %zu executors", a->id, a->name,
           em_app_state_name(a->state), a->nexecs);
    recovery_progress(st, now_ms);
    em__mstate_schedule(st, now_ms);
    return 0;
}
