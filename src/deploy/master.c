/* The master daemon of the standalone cluster manager: the worker table and its lifecycle,
 * the listening endpoint, and the liveness check. First slice of issue 3 (workers only).
 *
 * Worker lifecycle, as the master sees it:
 *
 *        register_worker (new id)            heartbeat (updates last_seen)
 *   (none) ------------------------> ALIVE <------------------------------+
 *                                     |  ^ |                               |
 *        silent > ember.worker.timeout|  | +-------------------------------+
 *        (liveness check, WARN line)  v  | register_worker, same id (after the worker
 *                                     DEAD   reconnects; also any id after a master restart,
 *                                            when the table starts empty)
 *   A heartbeat from a DEAD or unknown worker closes its connection: the worker reconnects and
 *   registers again. A closed connection does not kill a worker by itself; silence does.
 *   A register_worker for an id that is ALIVE on another open connection is refused.
 *
 * Threads: the endpoint's loop thread runs the message and close callbacks; one timer thread
 * runs the liveness check every min(timeout / 4, 1 s) (the endpoint does not expose its loop,
 * so the timer is a thread); both take m->mu around the table. em_master_* from any thread.
 * Called by src/cli/master_cmd.c and tests. Log lines: subsystem "master", INFO for
 * registrations, WARN for deaths and refusals.
 */
#include "deploy/master.h"

#include "net/endpoint.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- master URLs ------------------------------------------------------------------------------
 */
int em_master_url_parse(const char *url, char **host, int *port)
{
    *host = NULL;
    *port = 0;
    const char *pfx = "ember://";
    if (!url || strncmp(url, pfx, strlen(pfx)))
        return em__set_error(EM_EINVAL, "master URL '%s' does not start with ember://",
                             url ? url : "(null)");
    const char *h = url + strlen(pfx), *hend, *colon;
    if (*h == '[') {
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':')
            return em__set_error(EM_EINVAL, "master URL '%s': bad [address]:port", url);
        colon = hend + 1;
        h++;
    } else {
        colon = strrchr(h, ':');
        hend = colon;
    }
    if (!colon || hend == h)
        return em__set_error(EM_EINVAL, "master URL '%s' is not ember://HOST:PORT", url);
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || errno || p < 1 || p > 65535)
        return em__set_error(EM_EINVAL, "master URL '%s': port must be 1-65535", url);
    *host = em__strndup(h, (size_t)(hend - h));
    if (!*host) return em__set_error(EM_ENOMEM, "out of memory");
    *port = (int)p;
    return 0;
}

/* ---- the worker table --------------------------------------------------------------------------
 */
em_mworker *em__mworkers_find(em__mworkers *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].id, id)) return &t->v[i];
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

void em__mworkers_free(em__mworkers *t)
{
    for (size_t i = 0; i < t->n; i++) {
        em__free(t->v[i].id);
        em__free(t->v[i].host);
    }
    em__free(t->v);
    memset(t, 0, sizeof *t);
}

/* ---- the daemon --------------------------------------------------------------------------------
 */
struct em_master {
    em_endpoint *ep;
    int port;
    char *url;
    int64_t timeout_ms, check_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    int timer_started;
    pthread_t timer;
    em__mworkers workers;
};

static void on_message(em_conn *c, const em_msg *msg, void *user)
{
    em_master *m = user;
    if (msg->type == EM_MSG_REGISTER_WORKER) {
        const em_msg_register_worker *r = &msg->u.register_worker;
        char *id = em__strndup(r->worker_id.p, r->worker_id.len);
        char *host = em__strndup(r->host.p, r->host.len);
        int rc = EM_ENOMEM;
        if (id && host && id[0]) {
            pthread_mutex_lock(&m->mu);
            rc = em__mworkers_register(&m->workers, id, host, (int)r->port, (int)r->cores,
                                       r->memory_mb, c, em__now_ms());
            pthread_mutex_unlock(&m->mu);
        } else if (id && host) {
            rc = em__set_error(EM_EINVAL, "empty worker id");
        }
        em_msg_registered_worker reply = {.ok = rc >= 0, .master_url = em_str_c(m->url)};
        if (rc >= 0) {
            EM_LOG(EM_LOG_INFO, "master",
                   "%s worker %s from %s: host %s port %u, %u cores, %llu MiB",
                   rc ? "re-registered" : "registered", id, em_conn_peer(c), host, r->port,
                   r->cores, (unsigned long long)r->memory_mb);
        } else {
            EM_LOG(EM_LOG_WARN, "master", "refused registration of worker from %s: %s",
                   em_conn_peer(c), em_errmsg());
            reply.reason = em_str_c(em_errmsg());
        }
        em_conn_send(c, EM_MSG_REGISTERED_WORKER, &reply);
        em__free(id);
        em__free(host);
    } else if (msg->type == EM_MSG_HEARTBEAT) {
        char *id = em__strndup(msg->u.heartbeat.id.p, msg->u.heartbeat.id.len);
        if (!id) return;
        pthread_mutex_lock(&m->mu);
        int rc = em__mworkers_heartbeat(&m->workers, id, em__now_ms());
        pthread_mutex_unlock(&m->mu);
        if (rc) {
            EM_LOG(EM_LOG_WARN, "master", "%s from %s; closing it so the worker re-registers",
                   em_errmsg(), em_conn_peer(c));
            em_conn_close(c);
        }
        em__free(id);
    } else {
        EM_LOG(EM_LOG_WARN, "master", "unexpected message %s from %s; closing the connection",
               em_msg_name(msg->type), em_conn_peer(c));
        em_conn_close(c);
    }
}

static void on_close(em_conn *c, int code, const char *reason, void *user)
{
    em_master *m = user;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->workers.n; i++)
        if (m->workers.v[i].connected && m->workers.v[i].conn == (void *)c)
            EM_LOG(EM_LOG_INFO, "master", "worker %s disconnected (%s%s%s)", m->workers.v[i].id,
                   reason ? reason : "", code ? ": " : "", code ? em_strerror(code) : "");
    em__mworkers_disconnected(&m->workers, c);
    pthread_mutex_unlock(&m->mu);
}

static void *timer_main(void *arg)
{
    em_master *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (m->check_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(m->check_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!m->stopping && pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT) {
        }
        if (m->stopping) break;
        em__mworkers_check(&m->workers, em__now_ms(), m->timeout_ms);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int em_master_start(const em_conf *conf, const char *host, int port, em_master **out)
{
    *out = NULL;
    em_master *m = em__calloc(1, sizeof *m);
    if (!m) return em__set_error(EM_ENOMEM, "out of memory");
    m->timeout_ms = em_conf_get_ms(conf, "ember.worker.timeout");
    m->check_ms = EM_MAX(EM_MIN(m->timeout_ms / 4, 1000), 1);
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    em_endpoint_config cfg = {
        .role = EM_ROLE_MASTER,
        .secret = em_conf_get_str(conf, "ember.authenticate.secret"),
        .max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize"),
        .on_message = on_message,
        .on_close = on_close,
        .user = m,
    };
    int rc = em_endpoint_new(&cfg, &m->ep);
    if (!rc) {
        rc = em_endpoint_listen(m->ep, host, port, &m->port);
        if (rc) rc = em__error_context(rc, "master cannot listen on %s:%d", host, port);
    }
    if (!rc) {
        em_buf b = EM_BUF_INIT;
        int v6 = strchr(host, ':') != NULL;
        rc = em_buf_printf(&b, "ember://%s%s%s:%d%c", v6 ? "[" : "", host, v6 ? "]" : "", m->port,
                           '\0');
        m->url = (char *)b.data;
    }
    if (!rc) rc = em_endpoint_start(m->ep);
    if (!rc) {
        rc = -pthread_create(&m->timer, NULL, timer_main, m);
        m->timer_started = rc == 0;
        if (rc) em__set_error(rc, "cannot start the master's timer thread");
    }
    if (rc) {
        em_master_stop(m);
        return rc;
    }
    *out = m;
    return 0;
}

int em_master_port(const em_master *m)
{
    return m->port;
}

int em_master_worker_count(em_master *m, int state)
{
    int n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->workers.n; i++)
        if (!state || m->workers.v[i].state == state) n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int em_master_worker_info(em_master *m, const char *id, em_mworker *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->mu);
    em_mworker *w = em__mworkers_find(&m->workers, id);
    if (w) {
        *out = *w;
        out->id = out->host = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    return w ? 0 : em__set_error(EM_ENOENT, "no worker %s", id);
}

void em_master_stop(em_master *m)
{
    if (!m) return;
    if (m->timer_started) {
        pthread_mutex_lock(&m->mu);
        m->stopping = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->timer, NULL);
    }
    em_endpoint_free(m->ep);
    em__mworkers_free(&m->workers);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    em__free(m->url);
    em__free(m);
}
