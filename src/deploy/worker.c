/* The worker daemon's link to the master: connect, register, heartbeat, and reconnect with
 * jittered exponential backoff (100 ms doubling to 5 s) when the connection cannot be made or
 * drops, e.g. on a master restart; it re-registers with the same id after reconnecting. With
 * several masters in the URL (ember://a:7077,b:7077) each attempt goes to the next one; the
 * back-off applies between rounds over all of them; after a loss the lost master is tried
 * first, then the others. The
 * master's orders (LAUNCH_EXECUTOR, KILL_EXECUTOR, APPLICATION_FINISHED, and for cluster-mode
 * drivers LAUNCH_DRIVER, KILL_DRIVER) go to the executor runner (executor_runner.c), whose
 * state reports go back as EXECUTOR_STATE_CHANGED / DRIVER_STATE_CHANGED. A driver's binary is
 * fetched from the master (the address this worker connects to), which keeps a copy.
 *
 * Connection states (w->state):
 *
 *   IDLE --attempt due--> CONNECTING --connected--> REGISTERING --registered_worker{ok}--> UP
 *    ^                        | failed (WARN line: master, error, next delay)               |
 *    +------------------------+<------------- connection closed (WARN line) ----------------+
 *   registered_worker{ok = 0}: FAILED (fatal; em_worker_failed says so).
 *
 * Executors keep running while the master is away (a master restart does not stop them).
 * The worker keeps a table of what it runs (w->running: executors and drivers launched and not
 * ended, with their cores, memory and state) and, right after every registration, reports it
 * (WORKER_EXECUTOR each, WORKER_DRIVER each, WORKER_STATE_END): a recovering master takes them
 * back (master.c), so they are neither relaunched nor lost.
 * State reports (executors' and drivers') made while not UP are queued (at most MAX_PENDING, oldest
 * dropped) and sent, in order, after that report; the same master frees their resources, a
 * restarted one ignores executors it does not know. em_worker_stop kills the executors first, so
 * their KILLED reports leave before the connection closes.
 *
 * Threads: the endpoint's loop thread runs the connect / message / close callbacks; one
 * worker thread starts connection attempts when due and sends heartbeats every
 * ember.worker.heartbeatInterval while UP; the runner's loop thread calls on_exec_state. All
 * take w->mu (state reports are sent under it, which keeps them in order; em_conn_send never
 * calls back). Called by src/deploy/daemon_run.c (`ember worker`, local-cluster) and tests.
 */
#include "deploy/worker.h"

#include "deploy/executor_runner.h"
#include "deploy/master.h"
#include "net/block_server.h"
#include "net/endpoint.h"
#include "shuffle/fetcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_PENDING    4096 /* state reports queued while not registered */

enum { W_IDLE, W_CONNECTING, W_REGISTERING, W_UP, W_FAILED };

/* An executor or a cluster-mode driver this worker runs (launched and not ended), reported to
 * every master it registers with (WORKER_EXECUTOR / WORKER_DRIVER). */
struct running {
    struct running *next;
    char *id;    /* the application's id, or the driver's */
    int exec_id; /* -1 for a driver */
    int cores;
    uint64_t memory_mb;
    int state; /* EM_EXEC_LAUNCHING / RUNNING, or EM_DRIVER_SUBMITTED / RUNNING */
};

/* An EXECUTOR_STATE_CHANGED or DRIVER_STATE_CHANGED (type) not yet sent. */
struct pending_state {
    struct pending_state *next;
    int type;
    char *app_id, *message; /* app_id: the driver's id for a driver */
    int exec_id, state, exit_code;
};

struct em_worker {
    em_block_server *shuffle_service; /* serves executors' shuffle files (may be NULL) */
    em_endpoint *ep;
    em_executor_runner *runner;
    char *master_url, *id, *hostname, *work_dir;
    em_master_addr *masters;    /* the URL's masters, tried in turn */
    int nmasters, current;      /* current: the one tried last / registered with (guarded by mu) */
    char master_host_port[320]; /* "host:port" of current: drivers' binaries come from there */
    int cores;
    uint64_t memory_mb;
    int64_t heartbeat_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_started, stopping;
    int state;
    em_conn *conn; /* retained while CONNECTING done .. closed */
    int attempt;
    int64_t backoff_ms, next_attempt_ms, next_heartbeat_ms;
    unsigned seed;
    struct pending_state *pending, *pending_tail; /* guarded by mu */
    int npending;
    struct running *running; /* guarded by mu */
};

/* ---- what runs here ------------------------------------------------------------------------- */
static struct running **find_running(em_worker *w, const char *id, int exec_id)
{
    struct running **p = &w->running;
    while (*p && ((*p)->exec_id != exec_id || strcmp((*p)->id, id))) p = &(*p)->next;
    return p;
}

/* Adds (or refreshes) an entry. Under w->mu. */
static void track(em_worker *w, const char *id, int exec_id, int cores, uint64_t memory_mb,
                  int state)
{
    struct running **p = find_running(w, id, exec_id);
    if (*p) {
        (*p)->state = state;
        return;
    }
    struct running *r = em__calloc(1, sizeof *r);
    if (r) r->id = em__strdup(id);
    if (!r || !r->id) {
        em__free(r);
        EM_LOG(EM_LOG_ERROR, "worker", "out of memory: %s %d of %s not tracked",
               exec_id < 0 ? "driver" : "executor", exec_id, id);
        return;
    }
    *r = (struct running){w->running, r->id, exec_id, cores, memory_mb, state};
    w->running = r;
}

/* A state report: RUNNING updates the entry, an end removes it. Under w->mu. */
static void track_state(em_worker *w, const char *id, int exec_id, int state)
{
    struct running **p = find_running(w, id, exec_id);
    if (!*p) return;
    bool running = exec_id < 0 ? state == EM_DRIVER_RUNNING : state == EM_EXEC_RUNNING;
    if (running) {
        (*p)->state = state;
        return;
    }
    struct running *r = *p;
    *p = r->next;
    em__free(r->id);
    em__free(r);
}

/* Tells the master just registered with what runs here (WORKER_EXECUTOR, WORKER_DRIVER, then
 * WORKER_STATE_END). Under w->mu, on the loop thread. */
static void send_report(em_worker *w)
{
    unsigned nexec = 0, ndrivers = 0;
    int rc = 0;
    for (struct running *r = w->running; r && !rc; r = r->next) {
        if (r->exec_id < 0) {
            em_msg_worker_driver m = {.worker_id = em_str_c(w->id),
                                      .driver_id = em_str_c(r->id),
                                      .cores = (uint32_t)r->cores,
                                      .memory_mb = r->memory_mb,
                                      .state = (uint8_t)r->state};
            rc = em_conn_send(w->conn, EM_MSG_WORKER_DRIVER, &m);
            ndrivers++;
        } else {
            em_msg_worker_executor m = {.worker_id = em_str_c(w->id),
                                        .app_id = em_str_c(r->id),
                                        .exec_id = (uint32_t)r->exec_id,
                                        .cores = (uint32_t)r->cores,
                                        .memory_mb = r->memory_mb,
                                        .state = (uint8_t)r->state};
            rc = em_conn_send(w->conn, EM_MSG_WORKER_EXECUTOR, &m);
            nexec++;
        }
    }
    em_msg_worker_state_end end = {
        .worker_id = em_str_c(w->id), .executors = nexec, .drivers = ndrivers};
    if (!rc) rc = em_conn_send(w->conn, EM_MSG_WORKER_STATE_END, &end);
    if (rc && rc != EM_ESTATE)
        EM_LOG(EM_LOG_WARN, "worker", "cannot report what runs here to master ember://%s: %s",
               w->master_host_port, em_errmsg());
    else if (!rc && (nexec || ndrivers))
        EM_LOG(EM_LOG_INFO, "worker", "reported %u executors and %u drivers to master ember://%s",
               nexec, ndrivers, w->master_host_port);
}

static void free_pending(struct pending_state *p)
{
    em__free(p->app_id);
    em__free(p->message);
    em__free(p);
}

/* Sends the queued state reports while UP. Under w->mu. */
static void flush_pending(em_worker *w)
{
    while (w->pending && w->state == W_UP && w->conn) {
        struct pending_state *p = w->pending;
        int rc;
        if (p->type == EM_MSG_DRIVER_STATE_CHANGED) {
            em_msg_driver_state_changed m = {.driver_id = em_str_c(p->app_id),
                                             .state = (uint8_t)p->state,
                                             .exit_code = p->exit_code,
                                             .message = em_str_c(p->message)};
            rc = em_conn_send(w->conn, p->type, &m);
        } else {
            em_msg_executor_state_changed m = {.app_id = em_str_c(p->app_id),
                                               .exec_id = (uint32_t)p->exec_id,
                                               .state = (uint8_t)p->state,
                                               .exit_code = p->exit_code,
                                               .message = em_str_c(p->message)};
            rc = em_conn_send(w->conn, p->type, &m);
        }
        if (rc == -EAGAIN || rc == EM_ESTATE) return; /* retried after the next registration */
        if (rc)
            EM_LOG(EM_LOG_WARN, "worker", "state of %s %d of %s not sent to master %s: %s",
                   p->type == EM_MSG_DRIVER_STATE_CHANGED ? "driver" : "executor", p->exec_id,
                   p->app_id, w->master_url, em_errmsg());
        w->pending = p->next;
        if (!w->pending) w->pending_tail = NULL;
        w->npending--;
        free_pending(p);
    }
}

/* Queues a state report and sends what can be sent. Any thread. */
static void queue_state(em_worker *w, int type, const char *app_id, int exec_id, int state,
                        int exit_code, const char *message)
{
    struct pending_state *p = em__calloc(1, sizeof *p);
    if (p) {
        p->type = type;
        p->app_id = em__strdup(app_id);
        p->message = em__strdup(message ? message : "");
        p->exec_id = exec_id;
        p->state = state;
        p->exit_code = exit_code;
    }
    if (!p || !p->app_id || !p->message) {
        if (p) free_pending(p);
        EM_LOG(EM_LOG_ERROR, "worker", "out of memory: state of executor %d of %s lost", exec_id,
               app_id);
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (w->npending >= MAX_PENDING) {
        struct pending_state *old = w->pending;
        w->pending = old->next;
        w->npending--;
        EM_LOG(EM_LOG_WARN, "worker", "dropped the unsent state of executor %d of %s (queue full)",
               old->exec_id, old->app_id);
        free_pending(old);
        if (!w->pending) w->pending_tail = NULL;
    }
    if (w->pending_tail)
        w->pending_tail->next = p;
    else
        w->pending = p;
    w->pending_tail = p;
    w->npending++;
    flush_pending(w);
    pthread_mutex_unlock(&w->mu);
}

/* The runner's reports (its loop thread). */
static void on_exec_state(void *user, const char *app_id, int exec_id, int state, int exit_code,
                          const char *message)
{
    em_worker *w = user;
    pthread_mutex_lock(&w->mu);
    track_state(w, app_id, exec_id, state);
    pthread_mutex_unlock(&w->mu);
    queue_state(w, EM_MSG_EXECUTOR_STATE_CHANGED, app_id, exec_id, state, exit_code, message);
}

static void on_driver_state(void *user, const char *driver_id, int state, int exit_code,
                            const char *message)
{
    em_worker *w = user;
    pthread_mutex_lock(&w->mu);
    track_state(w, driver_id, -1, state);
    pthread_mutex_unlock(&w->mu);
    queue_state(w, EM_MSG_DRIVER_STATE_CHANGED, driver_id, -1, state, exit_code, message);
}

/* Schedules the next attempt, at the next master of the URL: at once while some master of
 * this round is untried, after the back-off once every one was. Returns the delay. Under
 * w->mu. */
static int64_t schedule_retry(em_worker *w)
{
    int64_t d = 0;
    w->current = (w->current + 1) % w->nmasters;
    if (w->current == 0) {
        d = w->backoff_ms;
        d = d / 2 + (int64_t)(rand_r(&w->seed) % (unsigned)(d / 2 + 1)); /* jitter: [d/2, d] */
        w->backoff_ms = EM_MIN(w->backoff_ms * 2, BACKOFF_MAX_MS);
    }
    w->next_attempt_ms = em__now_ms() + d;
    w->state = W_IDLE;
    pthread_cond_signal(&w->cv);
    return d;
}

/* "host:port" of masters[current] into w->master_host_port. Under w->mu. */
static void set_current(em_worker *w)
{
    const em_master_addr *a = &w->masters[w->current];
    int v6 = strchr(a->host, ':') != NULL;
    snprintf(w->master_host_port, sizeof w->master_host_port, "%s%s%s:%d", v6 ? "[" : "", a->host,
             v6 ? "]" : "", a->port);
}

static void on_connect(em_conn *c, int status, void *arg)
{
    em_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    if (status < 0 || w->stopping) {
        if (!w->stopping) {
            char tried[sizeof w->master_host_port];
            snprintf(tried, sizeof tried, "%s", w->master_host_port);
            int64_t d = schedule_retry(w);
            EM_LOG(EM_LOG_WARN, "worker",
                   "cannot connect to master ember://%s (attempt %d): %s; retrying in %lld ms",
                   tried, w->attempt, em_strerror(status), (long long)d);
        }
        pthread_mutex_unlock(&w->mu);
        return;
    }
    em_conn_retain(c);
    w->conn = c;
    w->state = W_REGISTERING;
    pthread_mutex_unlock(&w->mu);
    em_msg_register_worker r = {
        .worker_id = em_str_c(w->id),
        .host = em_str_c(w->hostname),
        .port = 0,
        .cores = (uint32_t)w->cores,
        .memory_mb = w->memory_mb,
        .work_dir = em_str_c(w->work_dir),
    };
    if (em_conn_send(c, EM_MSG_REGISTER_WORKER, &r)) em_conn_close(c);
}

/* Hands an order to the runner, under w->mu so that it never meets a runner being freed: once
 * em_worker_stop has set stopping (under w->mu, before freeing the runner) orders are refused
 * (EM_ESTATE) and kills ignored (the stop kills everything). 0 or the runner's error. Loop
 * thread; the runner's functions only queue a command (they never call back here). */
static int to_runner(em_worker *w, const em_msg *msg, const char *id)
{
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        rc = em__set_error(EM_ESTATE, "the worker is stopping");
    } else if (msg->type == EM_MSG_LAUNCH_EXECUTOR) {
        /* tracked first: the runner's RUNNING report waits for w->mu */
        const em_msg_launch_executor *l = &msg->u.launch_executor;
        track(w, id, (int)l->exec_id, (int)l->cores, l->memory_mb, EM_EXEC_LAUNCHING);
        rc = em_executor_runner_launch(w->runner, l);
        if (rc) track_state(w, id, (int)l->exec_id, EM_EXEC_FAILED);
    } else if (msg->type == EM_MSG_LAUNCH_DRIVER) {
        const em_msg_launch_driver *l = &msg->u.launch_driver;
        track(w, id, -1, (int)l->cores, l->memory_mb, EM_DRIVER_SUBMITTED);
        rc = em_executor_runner_launch_driver(w->runner, l, w->master_host_port);
        if (rc) track_state(w, id, -1, EM_DRIVER_ERROR);
    } else if (msg->type == EM_MSG_KILL_EXECUTOR) {
        em_executor_runner_kill(w->runner, id, (int)msg->u.kill_executor.exec_id);
    } else if (msg->type == EM_MSG_KILL_DRIVER) {
        em_executor_runner_kill_driver(w->runner, id);
    } else {
        em_executor_runner_app_finished(w->runner, id);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* An order from the master (loop thread). */
static void on_order(em_worker *w, const em_msg *msg)
{
    const em_str *idv;
    switch (msg->type) {
    case EM_MSG_LAUNCH_EXECUTOR:
        idv = &msg->u.launch_executor.app_id;
        break;
    case EM_MSG_LAUNCH_DRIVER:
        idv = &msg->u.launch_driver.driver_id;
        break;
    case EM_MSG_KILL_EXECUTOR:
        idv = &msg->u.kill_executor.app_id;
        break;
    case EM_MSG_KILL_DRIVER:
        idv = &msg->u.kill_driver.driver_id;
        break;
    default:
        idv = &msg->u.application_finished.app_id;
        break;
    }
    char *id = em__strndup(idv->p, idv->len);
    if (!id) {
        EM_LOG(EM_LOG_ERROR, "worker", "out of memory: order %s lost", em_msg_name(msg->type));
        return;
    }
    if (msg->type == EM_MSG_KILL_EXECUTOR)
        EM_LOG(EM_LOG_INFO, "worker", "master asks to kill executor %u of %s",
               msg->u.kill_executor.exec_id, id);
    else if (msg->type == EM_MSG_KILL_DRIVER)
        EM_LOG(EM_LOG_INFO, "worker", "master asks to kill driver %s", id);
    else if (msg->type == EM_MSG_APPLICATION_FINISHED)
        EM_LOG(EM_LOG_INFO, "worker", "application %s finished: killing its executors", id);
    int rc = to_runner(w, msg, id);
    if (rc && msg->type == EM_MSG_LAUNCH_EXECUTOR) {
        char why[512];
        snprintf(why, sizeof why, "the worker cannot launch it: %s", em_errmsg());
        on_exec_state(w, id, (int)msg->u.launch_executor.exec_id, EM_EXEC_FAILED, 0, why);
    } else if (rc && msg->type == EM_MSG_LAUNCH_DRIVER) {
        /* A stopping worker did not run it: KILLED, which a supervised driver survives. */
        char why[512];
        snprintf(why, sizeof why, "the worker cannot launch it: %s", em_errmsg());
        on_driver_state(w, id, rc == EM_ESTATE ? EM_DRIVER_KILLED : EM_DRIVER_ERROR, 0, why);
    }
    em__free(id);
}

static void on_message(em_conn *c, const em_msg *msg, void *user)
{
    em_worker *w = user;
    if (msg->type == EM_MSG_LAUNCH_EXECUTOR || msg->type == EM_MSG_KILL_EXECUTOR ||
        msg->type == EM_MSG_APPLICATION_FINISHED || msg->type == EM_MSG_LAUNCH_DRIVER ||
        msg->type == EM_MSG_KILL_DRIVER) {
        on_order(w, msg);
        return;
    }
    if (msg->type != EM_MSG_REGISTERED_WORKER) {
        EM_LOG(EM_LOG_WARN, "worker", "unexpected message %s from master %s",
               em_msg_name(msg->type), em_conn_peer(c));
        return;
    }
    const em_msg_registered_worker *r = &msg->u.registered_worker;
    pthread_mutex_lock(&w->mu);
    if (c == w->conn && r->ok) {
        w->state = W_UP;
        w->backoff_ms = BACKOFF_MIN_MS;
        w->next_heartbeat_ms = em__now_ms() + w->heartbeat_ms;
        EM_LOG(EM_LOG_INFO, "worker",
               "registered with master ember://%s as %s (%d cores, %llu MiB)", w->master_host_port,
               w->id, w->cores, (unsigned long long)w->memory_mb);
        send_report(w); /* what runs here, before the reports queued meanwhile */
        flush_pending(w);
    } else if (c == w->conn) {
        w->state = W_FAILED;
        EM_LOG(EM_LOG_ERROR, "worker", "master ember://%s refused the registration of %s: %.*s",
               w->master_host_port, w->id, (int)r->reason.len, r->reason.p);
        em_conn_close(c);
    }
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_close(em_conn *c, int code, const char *reason, void *user)
{
    em_worker *w = user;
    pthread_mutex_lock(&w->mu);
    if (c == w->conn) {
        w->conn = NULL;
        em_conn_release(c);
        if (!w->stopping && w->state != W_FAILED) {
            char lost[sizeof w->master_host_port];
            snprintf(lost, sizeof lost, "%s", w->master_host_port);
            /* that master again first (a restart on the same port), then the others in turn */
            int64_t d =
                w->backoff_ms / 2 + (int64_t)(rand_r(&w->seed) % (unsigned)(w->backoff_ms / 2 + 1));
            w->next_attempt_ms = em__now_ms() + d;
            w->state = W_IDLE;
            pthread_cond_signal(&w->cv);
            EM_LOG(EM_LOG_WARN, "worker",
                   "lost connection to master ember://%s (%s%s%s); executors and drivers keep "
                   "running; reconnecting (%s) in %lld ms",
                   lost, reason ? reason : "closed", code ? ": " : "",
                   code ? em_strerror(code) : "", w->master_url, (long long)d);
        }
    }
    pthread_mutex_unlock(&w->mu);
}

static void deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t ns = ts->tv_nsec + (ms % 1000) * 1000000;
    ts->tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

static void *worker_main(void *arg)
{
    em_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        int64_t now = em__now_ms(), wait_ms = 1000;
        if (w->state == W_IDLE && now >= w->next_attempt_ms) {
            w->state = W_CONNECTING;
            w->attempt++;
            set_current(w);
            const em_master_addr *a = &w->masters[w->current]; /* the list never changes */
            pthread_mutex_unlock(&w->mu);
            int rc = em_endpoint_connect(w->ep, a->host, a->port, on_connect, w);
            pthread_mutex_lock(&w->mu);
            if (rc && !w->stopping) {
                char tried[sizeof w->master_host_port];
                snprintf(tried, sizeof tried, "%s", w->master_host_port);
                int64_t d = schedule_retry(w);
                EM_LOG(EM_LOG_WARN, "worker",
                       "cannot connect to master ember://%s (attempt %d): %s; retrying in %lld ms",
                       tried, w->attempt, em_errmsg(), (long long)d);
            }
            continue;
        }
        if (w->state == W_UP && now >= w->next_heartbeat_ms) {
            em_conn *c = w->conn;
            w->next_heartbeat_ms = now + w->heartbeat_ms;
            if (c) {
                em_conn_retain(c);
                pthread_mutex_unlock(&w->mu);
                em_msg_heartbeat hb = {.id = em_str_c(w->id), .time_ms = em__wall_ms()};
                int rc = em_conn_send(c, EM_MSG_HEARTBEAT, &hb);
                if (rc && rc != EM_ESTATE)
                    EM_LOG(EM_LOG_WARN, "worker", "heartbeat to master %s failed: %s",
                           em_conn_peer(c), em_strerror(rc));
                em_conn_release(c);
                pthread_mutex_lock(&w->mu);
            }
            continue;
        }
        if (w->state == W_IDLE) wait_ms = w->next_attempt_ms - now;
        if (w->state == W_UP) wait_ms = w->next_heartbeat_ms - now;
        struct timespec ts;
        deadline(&ts, EM_MAX(wait_ms, 1));
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* The work directory: made, then made absolute (executors run elsewhere). */
static int make_work_dir(const em_conf *conf, const char *asked, char **out)
{
    const char *dir = asked && *asked ? asked : em_conf_get_str(conf, "ember.worker.dir");
    if (!dir || !*dir) dir = "work";
    int rc = em__mkdirs(dir);
    if (rc) return em__error_context(rc, "worker directory (--work-dir / ember.worker.dir)");
    char *abs = realpath(dir, NULL);
    if (!abs) return em__set_error(-errno, "worker directory '%s': %s", dir, strerror(errno));
    *out = em__strdup(abs);
    free(abs);
    return *out ? 0 : em__set_error(EM_ENOMEM, "out of memory");
}

int em_worker_start(const em_conf *conf, const em_worker_opts *o, em_worker **out)
{
    *out = NULL;
    em_master_addr *masters = NULL;
    int nmasters = 0;
    int rc = em_master_urls_parse(o->master_url, &masters, &nmasters);
    if (rc) return rc;
    em_worker *w = em__calloc(1, sizeof *w);
    if (!w) {
        em_master_addrs_free(masters, nmasters);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    w->masters = masters;
    w->nmasters = nmasters;
    set_current(w);
    w->cores = o->cores;
    w->memory_mb = o->memory_mb;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->seed = (unsigned)(em__now_ns() ^ getpid());
    w->heartbeat_ms = em_conf_get_ms(conf, "ember.worker.heartbeatInterval");
    if (w->heartbeat_ms <= 0)
        w->heartbeat_ms = EM_MAX(em_conf_get_ms(conf, "ember.worker.timeout") / 4, 1);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);

    char hn[256] = "localhost";
    gethostname(hn, sizeof hn - 1);
    hn[sizeof hn - 1] = '\0';
    char stamp[32] = "0";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    em_buf id = EM_BUF_INIT, url = EM_BUF_INIT;
    rc = em_buf_printf(&id, "worker-%s-%s-%d%c", stamp, hn, (int)getpid(), '\0');
    if (!rc) rc = em_buf_printf(&url, "%s%c", o->master_url, '\0');
    w->id = (char *)id.data;
    w->master_url = (char *)url.data;
    w->hostname = em__strdup(o->host && *o->host ? o->host : hn);
    if (!rc && !w->hostname) rc = em__set_error(EM_ENOMEM, "out of memory");
    if (!rc) rc = make_work_dir(conf, o->work_dir, &w->work_dir);

    const char *secret = em_conf_get_str(conf, "ember.authenticate.secret");
    size_t max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize");
    if (!rc && em_conf_get_bool(conf, "ember.shuffle.service.enabled")) {
        rc = em_block_server_start(conf, w->hostname,
                                   (int)em_conf_get_int(conf, "ember.shuffle.service.port"),
                                   &w->shuffle_service);
        if (rc)
            rc = em__error_context(rc, "worker shuffle service on %s", w->hostname);
        else
            em_block_server_set_locator(w->shuffle_service, em_shuffle_locate_blocks);
    }
    em_executor_runner_config rcfg = {
        .work_dir = w->work_dir,
        .worker_id = w->id,
        .host = w->hostname,
        .secret = secret,
        .max_frame = max_frame,
        .fetch_timeout_ms = em_conf_get_ms(conf, "ember.network.timeout"),
        .on_state = on_exec_state,
        .on_driver_state = on_driver_state,
        .user = w,
        .shuffle_service = w->shuffle_service,
    };
    if (!rc) rc = em_executor_runner_new(&rcfg, &w->runner);
    em_endpoint_config cfg = {
        .role = EM_ROLE_WORKER,
        .secret = secret,
        .max_frame = max_frame,
        .on_message = on_message,
        .on_close = on_close,
        .user = w,
    };
    if (!rc) rc = em_endpoint_new(&cfg, &w->ep);
    if (!rc) rc = em_endpoint_start(w->ep);
    if (!rc) {
        rc = -pthread_create(&w->thread, NULL, worker_main, w);
        w->thread_started = rc == 0;
        if (rc) em__set_error(rc, "cannot start the worker thread");
    }
    if (rc) {
        em_worker_stop(w);
        return rc;
    }
    EM_LOG(EM_LOG_INFO, "worker", "worker %s: host %s, work directory %s", w->id, w->hostname,
           w->work_dir);
    *out = w;
    return 0;
}

const char *em_worker_id(const em_worker *w)
{
    return w->id;
}

int em_worker_registered(em_worker *w)
{
    pthread_mutex_lock(&w->mu);
    int up = w->state == W_UP;
    pthread_mutex_unlock(&w->mu);
    return up;
}

int em_worker_failed(em_worker *w)
{
    pthread_mutex_lock(&w->mu);
    int failed = w->state == W_FAILED;
    pthread_mutex_unlock(&w->mu);
    return failed ? EM_EMASTER : 0;
}

const char *em_worker_work_dir(const em_worker *w)
{
    return w->work_dir;
}

int em_worker_executor_count(em_worker *w)
{
    return w->runner ? em_executor_runner_count(w->runner) : 0;
}

void em_worker_stop(em_worker *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->thread_started) pthread_join(w->thread, NULL);
    em_executor_runner_free(w->runner); /* KILLED reports go out while connected */
    em_block_server_stop(w->shuffle_service);
    w->shuffle_service = NULL;
    w->runner = NULL;
    em_endpoint_stop(w->ep); /* on_close releases w->conn */
    pthread_mutex_lock(&w->mu);
    if (w->conn) em_conn_release(w->conn);
    w->conn = NULL;
    pthread_mutex_unlock(&w->mu);
    em_endpoint_free(w->ep);
    while (w->pending) {
        struct pending_state *p = w->pending;
        w->pending = p->next;
        free_pending(p);
    }
    while (w->running) {
        struct running *r = w->running;
        w->running = r->next;
        em__free(r->id);
        em__free(r);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    em_master_addrs_free(w->masters, w->nmasters);
    em__free(w->master_url);
    em__free(w->id);
    em__free(w->hostname);
    em__free(w->work_dir);
    em__free(w);
}
