/* The master daemon of the standalone cluster manager: the listening endpoint that workers and
 * drivers connect to, the master's tables (master_state.c: workers, applications, executors,
 * their lifecycles and the scheduling pass) behind m->mu, and the liveness check.
 *
 * Messages handled (messages.def): from workers REGISTER_WORKER, HEARTBEAT,
 * EXECUTOR_STATE_CHANGED; from drivers (app_client.c) REGISTER_APPLICATION,
 * UNREGISTER_APPLICATION. Every event runs the matching em__mstate_* call under m->mu, then
 * sends the actions it produced (LAUNCH_EXECUTOR, KILL_EXECUTOR, APPLICATION_FINISHED to
 * workers; EXECUTOR_ADDED, EXECUTOR_REMOVED, APPLICATION_REMOVED to drivers) still under the
 * lock, so the messages of one event leave in order and a connection named in the tables is
 * valid (on_close removes it under the same lock before the endpoint frees it). A closed
 * connection ends the application it registered (FINISHED) and disconnects the workers on it.
 * An unexpected message closes its connection with a WARN line.
 *
 * Threads: the endpoint's loop thread runs the message and close callbacks; one timer thread
 * runs the liveness check every min(timeout / 4, 1 s) (the endpoint does not expose its loop,
 * so the timer is a thread); both take m->mu. em_master_* from any thread. Called by
 * src/deploy/daemon_run.c (`ember master`, local-cluster) and tests. Log lines: subsystem
 * "master", INFO for registrations and launches, WARN for deaths, failures and refusals.
 */
#include "deploy/master.h"

#include "net/endpoint.h"

#include <errno.h>
#include <limits.h>
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
    em__mstate st; /* guarded by mu */
};

/* Sends one action. Under m->mu (the connection is valid while the tables name it). */
static void send_action(const em__maction *a)
{
    em_conn *c = a->conn;
    int rc = 0;
    switch (a->type) {
    case EM_MSG_LAUNCH_EXECUTOR: {
        const em_mapp *app = a->app;
        int n = app->num_env;
        em_str *env = em__malloc(sizeof *env * (size_t)(n ? n : 1));
        if (!env) {
            EM_LOG(EM_LOG_ERROR, "master", "out of memory sending launch_executor");
            return;
        }
        for (int i = 0; i < n; i++) env[i] = em_str_c(app->env[i]);
        em_msg_launch_executor m = {.app_id = em_str_c(a->app_id),
                                    .exec_id = (uint32_t)a->exec_id,
                                    .cores = (uint32_t)a->cores,
                                    .memory_mb = a->memory_mb,
                                    .binary_hash = em_str_c(app->binary_hash),
                                    .driver_url = em_str_c(app->driver_url),
                                    .env = {.count = (uint32_t)n, .items = env}};
        rc = em_conn_send(c, a->type, &m);
        em__free(env);
        break;
    }
    case EM_MSG_EXECUTOR_ADDED: {
        em_msg_executor_added m = {.exec_id = (uint32_t)a->exec_id,
                                   .worker_id = em_str_c(a->worker_id),
                                   .host = em_str_c(a->host),
                                   .cores = (uint32_t)a->cores,
                                   .memory_mb = a->memory_mb};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_EXECUTOR_REMOVED: {
        em_msg_executor_removed m = {.exec_id = (uint32_t)a->exec_id,
                                     .state = (uint8_t)a->state,
                                     .exit_code = a->exit_code,
                                     .message = em_str_c(a->message)};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_KILL_EXECUTOR: {
        em_msg_kill_executor m = {.app_id = em_str_c(a->app_id), .exec_id = (uint32_t)a->exec_id};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_APPLICATION_FINISHED: {
        em_msg_application_finished m = {.app_id = em_str_c(a->app_id)};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_APPLICATION_REMOVED: {
        em_msg_application_removed m = {.app_id = em_str_c(a->app_id),
                                        .reason = em_str_c(a->message)};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    default:
        return;
    }
    if (rc && rc != EM_ESTATE)
        EM_LOG(EM_LOG_WARN, "master", "cannot send %s to %s: %s", em_msg_name(a->type),
               em_conn_peer(c), em_errmsg());
}

/* Sends what the last event produced. Under m->mu. */
static void flush_actions(em_master *m)
{
    size_t n = 0;
    em__maction *v = em__mstate_take_actions(&m->st, &n);
    for (size_t i = 0; i < n; i++) send_action(&v[i]);
    em__mactions_free(v, n);
}

static void on_register_worker(em_master *m, em_conn *c, const em_msg_register_worker *r)
{
    char *id = em__strndup(r->worker_id.p, r->worker_id.len);
    char *host = em__strndup(r->host.p, r->host.len);
    int rc = EM_ENOMEM;
    pthread_mutex_lock(&m->mu);
    if (id && host && id[0])
        rc = em__mstate_register_worker(&m->st, id, host, (int)r->port, (int)r->cores, r->memory_mb,
                                        c, em__now_ms());
    else if (id && host)
        rc = em__set_error(EM_EINVAL, "empty worker id");
    else
        em__set_error(rc, "out of memory");
    em_msg_registered_worker reply = {.ok = rc >= 0, .master_url = em_str_c(m->url)};
    if (rc >= 0) {
        EM_LOG(EM_LOG_INFO, "master", "%s worker %s from %s: host %s port %u, %u cores, %llu MiB",
               rc ? "re-registered" : "registered", id, em_conn_peer(c), host, r->port, r->cores,
               (unsigned long long)r->memory_mb);
    } else {
        EM_LOG(EM_LOG_WARN, "master", "refused registration of worker from %s: %s", em_conn_peer(c),
               em_errmsg());
        reply.reason = em_str_c(em_errmsg());
    }
    em_conn_send(c, EM_MSG_REGISTERED_WORKER, &reply); /* before any LAUNCH_EXECUTOR */
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
    em__free(id);
    em__free(host);
}

static void on_register_application(em_master *m, em_conn *c, const em_msg_register_application *r)
{
    em__app_request req = {.cores_max = (int)EM_MIN(r->cores_max, (uint32_t)INT32_MAX),
                           .executor_cores = (int)EM_MIN(r->executor_cores, (uint32_t)INT32_MAX),
                           .executor_memory_mb = r->executor_memory_mb};
    char *name = em__strndup(r->name.p, r->name.len);
    char *url = em__strndup(r->driver_url.p, r->driver_url.len);
    char *hash = em__strndup(r->binary_hash.p, r->binary_hash.len);
    char **env = em__calloc(r->env.count + 1, sizeof *env);
    int rc = name && url && hash && env ? 0 : em__set_error(EM_ENOMEM, "out of memory");
    size_t pos = 0;
    em_str s;
    int n = 0;
    while (!rc && em_strlist_next(&r->env, &pos, &s)) {
        env[n] = em__strndup(s.p, s.len);
        if (!env[n++]) rc = em__set_error(EM_ENOMEM, "out of memory");
    }
    req.name = name;
    req.driver_url = url;
    req.binary_hash = hash;
    req.env = (const char *const *)env;
    req.num_env = n;
    pthread_mutex_lock(&m->mu);
    em_mapp *app = NULL;
    if (!rc) {
        if (em_conn_peer_role(c) != EM_ROLE_DRIVER && em_conn_peer_role(c) != EM_ROLE_CLIENT)
            rc = em__set_error(EM_EACCES, "only a driver may register an application");
        else
            rc = em__mstate_register_app(&m->st, &req, c, em__now_ms(), em__wall_ms(), &app);
    }
    em_msg_registered_application reply = {.ok = rc == 0};
    if (rc == 0) {
        reply.app_id = em_str_c(app->id);
    } else {
        EM_LOG(EM_LOG_WARN, "master", "refused application '%s' from %s: %s", name ? name : "?",
               em_conn_peer(c), em_errmsg());
        reply.reason = em_str_c(em_errmsg());
    }
    em_conn_send(c, EM_MSG_REGISTERED_APPLICATION, &reply); /* before any EXECUTOR_ADDED */
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; env && i < n; i++) em__free(env[i]);
    em__free(env);
    em__free(name);
    em__free(url);
    em__free(hash);
}

static void on_message(em_conn *c, const em_msg *msg, void *user)
{
    em_master *m = user;
    switch (msg->type) {
    case EM_MSG_REGISTER_WORKER:
        on_register_worker(m, c, &msg->u.register_worker);
        return;
    case EM_MSG_REGISTER_APPLICATION:
        on_register_application(m, c, &msg->u.register_application);
        return;
    case EM_MSG_HEARTBEAT: {
        char *id = em__strndup(msg->u.heartbeat.id.p, msg->u.heartbeat.id.len);
        if (!id) return;
        pthread_mutex_lock(&m->mu);
        int rc = em__mworkers_heartbeat(&m->st.workers, id, em__now_ms());
        pthread_mutex_unlock(&m->mu);
        if (rc) {
            EM_LOG(EM_LOG_WARN, "master", "%s from %s; closing it so the worker re-registers",
                   em_errmsg(), em_conn_peer(c));
            em_conn_close(c);
        }
        em__free(id);
        return;
    }
    case EM_MSG_EXECUTOR_STATE_CHANGED: {
        const em_msg_executor_state_changed *e = &msg->u.executor_state_changed;
        char *app = em__strndup(e->app_id.p, e->app_id.len);
        char *text = em__strndup(e->message.p, e->message.len);
        if (!app || !text) {
            em__free(app);
            em__free(text);
            return;
        }
        pthread_mutex_lock(&m->mu);
        int rc = em__mstate_executor_state(&m->st, c, app, (int)e->exec_id, e->state, e->exit_code,
                                           text, em__now_ms());
        if (rc == EM_ENOENT)
            EM_LOG(EM_LOG_DEBUG, "master", "ignored: %s", em_errmsg());
        else if (rc)
            EM_LOG(EM_LOG_WARN, "master", "ignored executor state from %s: %s", em_conn_peer(c),
                   em_errmsg());
        flush_actions(m);
        pthread_mutex_unlock(&m->mu);
        em__free(app);
        em__free(text);
        return;
    }
    case EM_MSG_UNREGISTER_APPLICATION: {
        const em_msg_unregister_application *u = &msg->u.unregister_application;
        char *app = em__strndup(u->app_id.p, u->app_id.len);
        if (!app) return;
        pthread_mutex_lock(&m->mu);
        if (em__mstate_unregister_app(&m->st, app, c, em__now_ms()))
            EM_LOG(EM_LOG_WARN, "master", "ignored from %s: %s", em_conn_peer(c), em_errmsg());
        flush_actions(m);
        pthread_mutex_unlock(&m->mu);
        em__free(app);
        return;
    }
    default:
        EM_LOG(EM_LOG_WARN, "master", "unexpected message %s from %s; closing the connection",
               em_msg_name(msg->type), em_conn_peer(c));
        em_conn_close(c);
    }
}

static void on_close(em_conn *c, int code, const char *reason, void *user)
{
    em_master *m = user;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->st.workers.n; i++)
        if (m->st.workers.v[i].connected && m->st.workers.v[i].conn == (void *)c)
            EM_LOG(EM_LOG_INFO, "master", "worker %s disconnected (%s%s%s)", m->st.workers.v[i].id,
                   reason ? reason : "", code ? ": " : "", code ? em_strerror(code) : "");
    em__mstate_conn_closed(&m->st, c, em__now_ms());
    flush_actions(m);
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
        em__mstate_check(&m->st, em__now_ms(), m->timeout_ms);
        flush_actions(m);
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
    em__mstate_init(&m->st, em_conf_get_bool(conf, "ember.deploy.spreadOut"));
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
    for (size_t i = 0; i < m->st.workers.n; i++)
        if (!state || m->st.workers.v[i].state == state) n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int em_master_worker_info(em_master *m, const char *id, em_mworker *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->mu);
    em_mworker *w = em__mworkers_find(&m->st.workers, id);
    if (w) {
        *out = *w;
        out->id = out->host = NULL;
        out->lost = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    return w ? 0 : em__set_error(EM_ENOENT, "no worker %s", id);
}

int em_master_app_count(em_master *m, int state)
{
    int n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->st.napps; i++)
        if (!state || m->st.apps[i]->state == state) n++;
    pthread_mutex_unlock(&m->mu);
    return n;
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
    em_endpoint_free(m->ep); /* on_close runs for every connection, under m->mu */
    em__mstate_free(&m->st);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    em__free(m->url);
    em__free(m);
}
