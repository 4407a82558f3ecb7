/* The driver's application client for the standalone master (see app_client.h).
 *
 * Owns a private em_endpoint (role EM_ROLE_DRIVER, its own loop thread), the one connection
 * to the master, a copy of the application description and the registration state:
 *
 *   CONNECTING --connected: REGISTER_APPLICATION--> REGISTERING --registered{ok}--> REGISTERED
 *       |                                              |  registered{!ok}, closed,       |
 *       +-- connect failed ---------------------------+-> FAILED (wait_registered says  |
 *                                                           why)                          |
 *   REGISTERED --application_removed / connection closed (disconnected callback)--> GONE
 *   any --em_app_client_stop--> (UNREGISTER_APPLICATION when REGISTERED, close, free)
 *
 * Threads: the loop thread runs the endpoint callbacks and the user's; the caller's thread
 * waits on c->cv. c->mu guards the state, the app id, the message and c->conn; the user's
 * callbacks run without it. Called by the driver's scheduler backend (src/scheduler) and
 * tests.
 */
#include "deploy/app_client.h"

#include "deploy/master.h"
#include "net/endpoint.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { AC_CONNECTING, AC_REGISTERING, AC_REGISTERED, AC_FAILED, AC_GONE };

struct em_app_client {
    em_endpoint *ep;
    char *master_url, *master_host;
    int master_port;
    int64_t timeout_ms;
    em_app_client_callbacks cb;
    /* the description, copied */
    char *name, *driver_url, *binary_hash;
    char **env;
    int num_env;
    int cores_max, executor_cores;
    uint64_t executor_memory_mb;
    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
    int refused; /* FAILED because the master said no */
    int stopping;
    em_conn *conn; /* retained from connect to close */
    char *app_id;
    char msg[1024];
};

static void set_failed(em_app_client *c, const char *fmt, ...) EM_PRINTF(2, 3);
/* CONNECTING / REGISTERING -> FAILED with a message. Under c->mu. */
static void set_failed(em_app_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    c->state = AC_FAILED;
    pthread_cond_broadcast(&c->cv);
}

static void on_connect(em_conn *conn, int status, void *arg)
{
    em_app_client *c = arg;
    pthread_mutex_lock(&c->mu);
    if (status < 0) {
        if (c->state == AC_CONNECTING)
            set_failed(c, "cannot connect to master %s: %s", c->master_url,
                       status == EM_EACCES
                           ? "authentication refused (ember.authenticate.secret differs)"
                           : em_strerror(status));
        pthread_mutex_unlock(&c->mu);
        return;
    }
    em_conn_retain(conn);
    c->conn = conn;
    c->state = AC_REGISTERING;
    pthread_mutex_unlock(&c->mu);
    em_str *env = em__calloc((size_t)c->num_env + 1, sizeof *env);
    int rc = env ? 0 : EM_ENOMEM;
    if (env) {
        for (int i = 0; i < c->num_env; i++) env[i] = em_str_c(c->env[i]);
        em_msg_register_application m = {.name = em_str_c(c->name),
                                         .cores_max = (uint32_t)c->cores_max,
                                         .executor_cores = (uint32_t)c->executor_cores,
                                         .executor_memory_mb = c->executor_memory_mb,
                                         .driver_url = em_str_c(c->driver_url),
                                         .binary_hash = em_str_c(c->binary_hash),
                                         .env = {.count = (uint32_t)c->num_env, .items = env}};
        rc = em_conn_send(conn, EM_MSG_REGISTER_APPLICATION, &m);
        em__free(env);
    }
    if (rc) {
        pthread_mutex_lock(&c->mu);
        set_failed(c, "cannot send the registration to master %s: %s", c->master_url,
                   rc == EM_ENOMEM ? "out of memory" : em_errmsg());
        pthread_mutex_unlock(&c->mu);
        em_conn_close(conn);
    }
}

static void on_message(em_conn *conn, const em_msg *msg, void *user)
{
    em_app_client *c = user;
    (void)conn;
    if (msg->type == EM_MSG_REGISTERED_APPLICATION) {
        const em_msg_registered_application *r = &msg->u.registered_application;
        pthread_mutex_lock(&c->mu);
        if (c->state == AC_REGISTERING && r->ok) {
            c->app_id = em__strndup(r->app_id.p, r->app_id.len);
            if (c->app_id) {
                c->state = AC_REGISTERED;
                EM_LOG(EM_LOG_INFO, "app-client", "master %s registered application %s as %s",
                       c->master_url, c->name, c->app_id);
                pthread_cond_broadcast(&c->cv);
            } else {
                set_failed(c, "out of memory");
            }
        } else if (c->state == AC_REGISTERING) {
            c->refused = 1;
            set_failed(c, "master %s refused application '%s': %.*s", c->master_url, c->name,
                       (int)r->reason.len, r->reason.p);
        }
        pthread_mutex_unlock(&c->mu);
        return;
    }
    pthread_mutex_lock(&c->mu);
    int registered = c->state == AC_REGISTERED && !c->stopping;
    pthread_mutex_unlock(&c->mu);
    if (msg->type == EM_MSG_EXECUTOR_ADDED) {
        const em_msg_executor_added *a = &msg->u.executor_added;
        char *wid = em__strndup(a->worker_id.p, a->worker_id.len);
        char *host = em__strndup(a->host.p, a->host.len);
        if (registered && wid && host && c->cb.executor_added)
            c->cb.executor_added(c->cb.user, (int)a->exec_id, wid, host, (int)a->cores,
                                 a->memory_mb);
        em__free(wid);
        em__free(host);
    } else if (msg->type == EM_MSG_EXECUTOR_REMOVED) {
        const em_msg_executor_removed *x = &msg->u.executor_removed;
        char *text = em__strndup(x->message.p, x->message.len);
        if (registered && text && c->cb.executor_removed)
            c->cb.executor_removed(c->cb.user, (int)x->exec_id, x->state, x->exit_code, text);
        em__free(text);
    } else if (msg->type == EM_MSG_APPLICATION_REMOVED) {
        const em_msg_application_removed *x = &msg->u.application_removed;
        char why[1200];
        snprintf(why, sizeof why, "master %s removed application %.*s: %.*s", c->master_url,
                 (int)x->app_id.len, x->app_id.p, (int)x->reason.len, x->reason.p);
        EM_LOG(EM_LOG_WARN, "app-client", "%s", why);
        pthread_mutex_lock(&c->mu);
        int tell = c->state == AC_REGISTERED && !c->stopping;
        if (c->state == AC_REGISTERED) c->state = AC_GONE;
        pthread_mutex_unlock(&c->mu);
        if (tell && c->cb.disconnected) c->cb.disconnected(c->cb.user, why);
    } else {
        EM_LOG(EM_LOG_WARN, "app-client", "unexpected message %s from master %s",
               em_msg_name(msg->type), c->master_url);
    }
}

static void on_close(em_conn *conn, int code, const char *reason, void *user)
{
    em_app_client *c = user;
    (void)conn;
    char why[1200];
    snprintf(why, sizeof why, "lost the connection to master %s (%s%s%s)", c->master_url,
             reason ? reason : "closed", code ? ": " : "", code ? em_strerror(code) : "");
    pthread_mutex_lock(&c->mu);
    int tell = c->state == AC_REGISTERED && !c->stopping;
    if (c->state == AC_CONNECTING || c->state == AC_REGISTERING)
        set_failed(c, "%s before the application was registered", why);
    else if (c->state == AC_REGISTERED)
        c->state = AC_GONE;
    pthread_mutex_unlock(&c->mu);
    if (tell) {
        EM_LOG(EM_LOG_WARN, "app-client", "%s", why);
        if (c->cb.disconnected) c->cb.disconnected(c->cb.user, why);
    }
}

static void client_free(em_app_client *c)
{
    for (int i = 0; i < c->num_env; i++) em__free(c->env[i]);
    em__free(c->env);
    em__free(c->name);
    em__free(c->driver_url);
    em__free(c->binary_hash);
    em__free(c->master_url);
    em__free(c->master_host);
    em__free(c->app_id);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    em__free(c);
}

int em_app_client_start(const em_conf *conf, const char *master_url, const em_app_desc *d,
                        const em_app_client_callbacks *cb, em_app_client **out)
{
    *out = NULL;
    if (!d || !d->driver_url || !*d->driver_url || !d->binary_hash || d->cores_max < 0 ||
        d->executor_cores < 0 || d->num_env < 0 || (d->num_env > 0 && !d->env))
        return em__set_error(EM_EINVAL,
                             "application description for master %s is incomplete "
                             "(driver URL, binary hash, non-negative cores)",
                             master_url ? master_url : "?");
    em_app_client *c = em__calloc(1, sizeof *c);
    if (!c) return em__set_error(EM_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = em_master_url_parse(master_url, &c->master_host, &c->master_port);
    if (rc) {
        client_free(c);
        return rc;
    }
    if (cb) c->cb = *cb;
    c->timeout_ms = em_conf_get_ms(conf, "ember.network.timeout");
    c->cores_max = d->cores_max;
    c->executor_cores = d->executor_cores;
    c->executor_memory_mb = d->executor_memory_mb;
    c->master_url = em__strdup(master_url);
    c->name = em__strdup(d->name && *d->name ? d->name : "ember-app");
    c->driver_url = em__strdup(d->driver_url);
    c->binary_hash = em__strdup(d->binary_hash);
    c->env = em__calloc((size_t)d->num_env + 1, sizeof *c->env);
    int ok = c->master_url && c->name && c->driver_url && c->binary_hash && c->env;
    for (int i = 0; ok && i < d->num_env; i++) {
        c->env[i] = em__strdup(d->env[i] ? d->env[i] : "");
        ok = c->env[i] != NULL;
        c->num_env = i + 1;
    }
    if (!ok) {
        client_free(c);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    em_endpoint_config cfg = {
        .role = EM_ROLE_DRIVER,
        .secret = em_conf_get_str(conf, "ember.authenticate.secret"),
        .max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize"),
        .on_message = on_message,
        .on_close = on_close,
        .user = c,
    };
    c->state = AC_CONNECTING;
    rc = em_endpoint_new(&cfg, &c->ep);
    if (!rc) rc = em_endpoint_start(c->ep);
    if (!rc) rc = em_endpoint_connect(c->ep, c->master_host, c->master_port, on_connect, c);
    if (rc) {
        em__error_context(rc, "master %s", master_url);
        em_endpoint_free(c->ep);
        client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int em_app_client_wait_registered(em_app_client *c, char **app_id)
{
    if (app_id) *app_id = NULL;
    int64_t deadline = em__now_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 120000);
    pthread_mutex_lock(&c->mu);
    while (c->state == AC_CONNECTING || c->state == AC_REGISTERING) {
        int64_t left = deadline - em__now_ms();
        if (left <= 0) {
            set_failed(c,
                       "master %s did not answer the registration within %lld ms "
                       "(ember.network.timeout)",
                       c->master_url, (long long)c->timeout_ms);
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (left % 1000) * 1000000;
        ts.tv_sec += (time_t)(left / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    int rc = 0;
    if (c->state == AC_FAILED) {
        rc = em__set_error(c->refused ? EM_EMASTER : EM_ESTATE, "%s", c->msg);
    } else if (app_id) {
        *app_id = c->app_id ? em__strdup(c->app_id) : NULL;
        if (!*app_id) rc = em__set_error(EM_ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void em_app_client_stop(em_app_client *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    em_conn *conn = c->conn;
    if (conn && c->state == AC_REGISTERED) {
        em_msg_unregister_application u = {.app_id = em_str_c(c->app_id),
                                           .final_state = EM_APP_FINISHED};
        if (em_conn_send(conn, EM_MSG_UNREGISTER_APPLICATION, &u) == 0)
            EM_LOG(EM_LOG_INFO, "app-client", "unregistered application %s from master %s",
                   c->app_id, c->master_url);
    }
    pthread_mutex_unlock(&c->mu);
    if (conn) em_conn_close(conn); /* after what is queued: the unregistration */
    em_endpoint_free(c->ep);       /* joins the loop: no callback after this */
    if (conn) em_conn_release(conn);
    client_free(c);
}
