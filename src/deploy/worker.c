/* The worker daemon's link to the master: connect, register, heartbeat, and reconnect with
 * jittered exponential backoff (100 ms doubling to 5 s) when the connection cannot be made or
 * drops, e.g. on a master restart; it re-registers with the same id after reconnecting.
 *
 * Connection states (w->state):
 *
 *   IDLE --attempt due--> CONNECTING --connected--> REGISTERING --registered_worker{ok}--> UP
 *    ^                        | failed (WARN line: master, error, next delay)               |
 *    +------------------------+<------------- connection closed (WARN line) ----------------+
 *   registered_worker{ok = 0}: FAILED (fatal; em_worker_failed says so).
 *
 * Threads: the endpoint's loop thread runs the connect / message / close callbacks; one
 * worker thread starts connection attempts when due and sends heartbeats every
 * ember.worker.heartbeatInterval while UP. Both take w->mu. Called by src/cli/worker_cmd.c.
 */
#include "deploy/worker.h"

#include "deploy/master.h"
#include "net/endpoint.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum { W_IDLE, W_CONNECTING, W_REGISTERING, W_UP, W_FAILED };

struct em_worker {
    em_endpoint *ep;
    char *master_host, *master_url, *id, *hostname;
    int master_port, cores;
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
};

/* Schedules the next attempt; returns its delay. Under w->mu. */
static int64_t schedule_retry(em_worker *w)
{
    int64_t d = w->backoff_ms;
    d = d / 2 + (int64_t)(rand_r(&w->seed) % (unsigned)(d / 2 + 1)); /* jitter: [d/2, d] */
    w->next_attempt_ms = em__now_ms() + d;
    w->backoff_ms = EM_MIN(w->backoff_ms * 2, BACKOFF_MAX_MS);
    w->state = W_IDLE;
    pthread_cond_signal(&w->cv);
    return d;
}

static void on_connect(em_conn *c, int status, void *arg)
{
    em_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    if (status < 0 || w->stopping) {
        if (!w->stopping) {
            int64_t d = schedule_retry(w);
            EM_LOG(EM_LOG_WARN, "worker",
                   "cannot connect to master %s (attempt %d): %s; retrying in %lld ms",
                   w->master_url, w->attempt, em_strerror(status), (long long)d);
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
        .work_dir = em_str_c(""),
    };
    if (em_conn_send(c, EM_MSG_REGISTER_WORKER, &r)) em_conn_close(c);
}

static void on_message(em_conn *c, const em_msg *msg, void *user)
{
    em_worker *w = user;
    if (msg->type != EM_MSG_REGISTERED_WORKER) {
        EM_LOG(EM_LOG_WARN, "worker", "unexpected message %s from master %s",
               em_msg_name(msg->type), w->master_url);
        return;
    }
    const em_msg_registered_worker *r = &msg->u.registered_worker;
    pthread_mutex_lock(&w->mu);
    if (c == w->conn && r->ok) {
        w->state = W_UP;
        w->backoff_ms = BACKOFF_MIN_MS;
        w->next_heartbeat_ms = em__now_ms() + w->heartbeat_ms;
        EM_LOG(EM_LOG_INFO, "worker", "registered with master %s as %s (%d cores, %llu MiB)",
               w->master_url, w->id, w->cores, (unsigned long long)w->memory_mb);
    } else if (c == w->conn) {
        w->state = W_FAILED;
        EM_LOG(EM_LOG_ERROR, "worker", "master %s refused the registration of %s: %.*s",
               w->master_url, w->id, (int)r->reason.len, r->reason.p);
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
            int64_t d = schedule_retry(w);
            EM_LOG(EM_LOG_WARN, "worker",
                   "lost connection to master %s (%s%s%s); reconnecting in %lld ms", w->master_url,
                   reason ? reason : "closed", code ? ": " : "", code ? em_strerror(code) : "",
                   (long long)d);
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
            pthread_mutex_unlock(&w->mu);
            int rc = em_endpoint_connect(w->ep, w->master_host, w->master_port, on_connect, w);
            pthread_mutex_lock(&w->mu);
            if (rc && !w->stopping) {
                int64_t d = schedule_retry(w);
                EM_LOG(EM_LOG_WARN, "worker",
                       "cannot connect to master %s (attempt %d): %s; retrying in %lld ms",
                       w->master_url, w->attempt, em_errmsg(), (long long)d);
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
                           w->master_url, em_strerror(rc));
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

int em_worker_start(const em_conf *conf, const char *master_url, int cores, uint64_t memory_mb,
                    em_worker **out)
{
    *out = NULL;
    char *host = NULL;
    int port = 0;
    int rc = em_master_url_parse(master_url, &host, &port);
    if (rc) return rc;
    em_worker *w = em__calloc(1, sizeof *w);
    if (!w) {
        em__free(host);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    w->master_host = host;
    w->master_port = port;
    w->cores = cores;
    w->memory_mb = memory_mb;
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
    if (!rc) rc = em_buf_printf(&url, "%s%c", master_url, '\0');
    w->id = (char *)id.data;
    w->master_url = (char *)url.data;
    w->hostname = em__strdup(hn);
    if (!rc && !w->hostname) rc = em__set_error(EM_ENOMEM, "out of memory");

    em_endpoint_config cfg = {
        .role = EM_ROLE_WORKER,
        .secret = em_conf_get_str(conf, "ember.authenticate.secret"),
        .max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize"),
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

void em_worker_stop(em_worker *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->thread_started) pthread_join(w->thread, NULL);
    em_endpoint_stop(w->ep); /* on_close releases w->conn */
    pthread_mutex_lock(&w->mu);
    if (w->conn) em_conn_release(w->conn);
    w->conn = NULL;
    pthread_mutex_unlock(&w->mu);
    em_endpoint_free(w->ep);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    em__free(w->master_host);
    em__free(w->master_url);
    em__free(w->id);
    em__free(w->hostname);
    em__free(w);
}
