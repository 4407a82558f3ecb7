/* The driver's application client for the standalone master (see app_client.h).
 *
 * Owns a private em_endpoint (role EM_ROLE_DRIVER, its own loop thread), the one connection
 * to the master, a copy of the application description, the masters of the URL
 * (em_master_urls_parse) and the registration state:
 *
 *   CONNECTING --connected: REGISTER_APPLICATION--> REGISTERING --registered{ok}--> REGISTERED
 *     | connect failed / closed before the answer: the next master of the URL;   |  ^
 *     | after the last one (one round) or registered{!ok}: FAILED (wait_registered |  |
 *     | says why)                                                                  |  |
 *                                                                                  |  |
 *   REGISTERED --connection closed (master died or moved)--> RECONNECTING          |  |
 *     RECONNECTING --attempt due: the masters in turn, the lost one first-->       |  |
 *       connected: REREGISTER_APPLICATION(app id) --> REREGISTERING --ok----------+--+
 *       connect failed / closed: the next master; after each round a back-off (100 ms
 *       doubling to 5 s, jittered)
 *     REREGISTERING --registered{!ok} (the master does not know the application)--> GONE
 *     RECONNECTING past ember.network.timeout since the loss ----------------------> GONE
 *   REGISTERED --application_removed-------------------------------------------------> GONE
 *   GONE: the disconnected callback, once. any --em_app_client_stop--> (UNREGISTER_APPLICATION
 *   when REGISTERED, close, free)
 *
 * While RECONNECTING the application goes on: its executors talk to the driver, not to the
 * master, and nothing fails; only executor additions and removals are not heard until a master
 * takes the application back.
 *
 * Threads: the loop thread runs the endpoint callbacks and the user's; the connector thread
 * starts the connection attempts when due (name resolution and connect never run on the loop)
 * and gives up a reconnection past its bound (it then runs the disconnected callback); the
 * caller's thread waits on c->cv. c->mu guards the state, the master index, the app id, the
 * message and c->conn; the user's callbacks run without it. Called by the driver's scheduler
 * backend (src/scheduler) and tests.
 */
#include "deploy/app_client.h"

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

enum {
    AC_CONNECTING,
    AC_REGISTERING,
    AC_REGISTERED,
    AC_FAILED,
    AC_GONE,
    AC_RECONNECTING,
    AC_REREGISTERING,
};

struct em_app_client {
    em_endpoint *ep;
    char *master_url;
    em_master_addr *masters;
    int nmasters;
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
    em_conn *conn;  /* retained while open; NULL between connections */
    int cur;        /* index of the master tried last / registered with */
    int tried;      /* masters tried in this round */
    int attempting; /* a connect is under way */
    int64_t next_attempt_ms;
    int64_t lost_ms; /* RECONNECTING / REREGISTERING since */
    int64_t backoff_ms;
    unsigned seed;
    char *app_id;
    char msg[1024];
    char errors[1024]; /* the round's failures, for the message of FAILED */
    pthread_t connector;
    int connector_started;
};

/* "ember://host:port" of masters[i]. */
static const char *master_name(const em_app_client *c, int i, char *buf, size_t cap)
{
    const em_master_addr *a = &c->masters[i];
    int v6 = strchr(a->host, ':') != NULL;
    snprintf(buf, cap, "ember://%s%s%s:%d", v6 ? "[" : "", a->host, v6 ? "]" : "", a->port);
    return buf;
}

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

/* The attempt at masters[cur] failed (why: a sentence naming the master): the next master,
 * now or (after a whole round of a reconnection) after the back-off; after the whole first
 * round, FAILED with every attempt's why. Under c->mu. */
static void attempt_failed(em_app_client *c, const char *why)
{
    c->attempting = 0;
    c->cur = (c->cur + 1) % c->nmasters;
    c->tried++;
    int64_t now = em__now_ms();
    if (c->state == AC_CONNECTING || c->state == AC_REGISTERING) {
        size_t len = strlen(c->errors);
        snprintf(c->errors + len, sizeof c->errors - len, "%s%s", len ? "; " : "", why);
        if (c->tried < c->nmasters) {
            c->state = AC_CONNECTING;
            c->next_attempt_ms = now;
        } else if (c->nmasters == 1) {
            set_failed(c, "%s", c->errors);
        } else {
            set_failed(c, "no master of %s took the application: %s", c->master_url, c->errors);
        }
    } else if (c->state == AC_RECONNECTING || c->state == AC_REREGISTERING) {
        c->state = AC_RECONNECTING;
        int64_t d = 0;
        if (c->tried >= c->nmasters) { /* a whole round: back off */
            c->tried = 0;
            d = c->backoff_ms / 2 + (int64_t)(rand_r(&c->seed) % (unsigned)(c->backoff_ms / 2 + 1));
            c->backoff_ms = EM_MIN(c->backoff_ms * 2, BACKOFF_MAX_MS);
        }
        c->next_attempt_ms = now + d;
        EM_LOG(EM_LOG_DEBUG, "app-client", "application %s: %s; next attempt in %lld ms", c->app_id,
               why, (long long)d);
    }
    pthread_cond_broadcast(&c->cv);
}

/* REGISTERED / RECONNECTING -> GONE; returns whether to call disconnected. Under c->mu. */
static int set_gone(em_app_client *c)
{
    int tell = !c->stopping && c->state != AC_GONE;
    c->state = AC_GONE;
    pthread_cond_broadcast(&c->cv);
    return tell;
}

static void on_connect(em_conn *conn, int status, void *arg)
{
    em_app_client *c = arg;
    pthread_mutex_lock(&c->mu);
    if (status < 0) {
        char why[600], name[320];
        snprintf(why, sizeof why, "cannot connect to master %s: %s",
                 master_name(c, c->cur, name, sizeof name),
                 status == EM_EACCES ? "authentication refused (ember.authenticate.secret differs)"
                                     : em_strerror(status));
        attempt_failed(c, why);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (c->stopping || (c->state != AC_CONNECTING && c->state != AC_RECONNECTING)) {
        c->attempting = 0;
        pthread_mutex_unlock(&c->mu);
        em_conn_close(conn); /* gave up meanwhile */
        return;
    }
    em_conn_retain(conn);
    c->conn = conn;
    c->attempting = 0;
    int again = c->state == AC_RECONNECTING;
    c->state = again ? AC_REREGISTERING : AC_REGISTERING;
    char *app_id = again ? em__strdup(c->app_id) : NULL;
    pthread_mutex_unlock(&c->mu);
    int rc;
    if (again) {
        em_msg_reregister_application m = {.app_id = em_str_c(app_id ? app_id : "")};
        rc = app_id ? em_conn_send(conn, EM_MSG_REREGISTER_APPLICATION, &m) : EM_ENOMEM;
        em__free(app_id);
    } else {
        em_str *env = em__calloc((size_t)c->num_env + 1, sizeof *env);
        rc = env ? 0 : EM_ENOMEM;
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
    }
    if (rc) {
        EM_LOG(EM_LOG_WARN, "app-client", "cannot send the registration to %s: %s",
               em_conn_peer(conn), rc == EM_ENOMEM ? "out of memory" : em_errmsg());
        em_conn_close(conn); /* on_close tries the next master */
    }
}

static void on_registered(em_app_client *c, const em_msg_registered_application *r)
{
    char name[320];
    pthread_mutex_lock(&c->mu);
    master_name(c, c->cur, name, sizeof name);
    int tell = 0;
    char why[1200] = "";
    if (c->state == AC_REGISTERING && r->ok) {
        c->app_id = em__strndup(r->app_id.p, r->app_id.len);
        if (c->app_id) {
            c->state = AC_REGISTERED;
            EM_LOG(EM_LOG_INFO, "app-client", "master %s registered application %s as %s", name,
                   c->name, c->app_id);
            pthread_cond_broadcast(&c->cv);
        } else {
            set_failed(c, "out of memory");
        }
    } else if (c->state == AC_REGISTERING) {
        c->refused = 1;
        set_failed(c, "master %s refused application '%s': %.*s", name, c->name, (int)r->reason.len,
                   r->reason.p);
    } else if (c->state == AC_REREGISTERING && r->ok) {
        c->state = AC_REGISTERED;
        c->backoff_ms = BACKOFF_MIN_MS;
        EM_LOG(EM_LOG_WARN, "app-client",
               "application %s re-registered with master %s after %lld ms without a master",
               c->app_id, name, (long long)(em__now_ms() - c->lost_ms));
    } else if (c->state == AC_REREGISTERING) {
        snprintf(why, sizeof why, "master %s does not take application %s back: %.*s", name,
                 c->app_id, (int)r->reason.len, r->reason.p);
        tell = set_gone(c);
    }
    pthread_mutex_unlock(&c->mu);
    if (*why) EM_LOG(EM_LOG_WARN, "app-client", "%s", why);
    if (tell && c->cb.disconnected) c->cb.disconnected(c->cb.user, why);
}

static void on_message(em_conn *conn, const em_msg *msg, void *user)
{
    em_app_client *c = user;
    pthread_mutex_lock(&c->mu);
    int ours = conn == c->conn;
    int registered = ours && c->state == AC_REGISTERED && !c->stopping;
    pthread_mutex_unlock(&c->mu);
    if (!ours) return;
    if (msg->type == EM_MSG_REGISTERED_APPLICATION) {
        on_registered(c, &msg->u.registered_application);
    } else if (msg->type == EM_MSG_EXECUTOR_ADDED) {
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
        int tell = c->state == AC_REGISTERED && set_gone(c);
        pthread_mutex_unlock(&c->mu);
        if (tell && c->cb.disconnected) c->cb.disconnected(c->cb.user, why);
    } else {
        EM_LOG(EM_LOG_WARN, "app-client", "unexpected message %s from master %s",
               em_msg_name(msg->type), em_conn_peer(conn));
    }
}

static void on_close(em_conn *conn, int code, const char *reason, void *user)
{
    em_app_client *c = user;
    char why[600];
    snprintf(why, sizeof why, "%s%s%s", reason ? reason : "closed", code ? ": " : "",
             code ? em_strerror(code) : "");
    pthread_mutex_lock(&c->mu);
    if (conn != c->conn) { /* not ours any more (stop took it) */
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->conn = NULL;
    char name[320];
    master_name(c, c->cur, name, sizeof name);
    if (c->state == AC_REGISTERING || c->state == AC_REREGISTERING) {
        char what[1000];
        snprintf(what, sizeof what,
                 "lost the connection to master %s (%s) before the application was registered",
                 name, why);
        attempt_failed(c, what);
    } else if (c->state == AC_REGISTERED && !c->stopping) {
        c->state = AC_RECONNECTING;
        c->lost_ms = em__now_ms();
        c->tried = 0;
        c->backoff_ms = BACKOFF_MIN_MS;
        c->next_attempt_ms = c->lost_ms + BACKOFF_MIN_MS / 2; /* the same master first */
        EM_LOG(EM_LOG_WARN, "app-client",
               "lost the connection to master %s (%s): application %s keeps running; "
               "reconnecting to %s for up to %lld ms (ember.network.timeout)",
               name, why, c->app_id, c->master_url, (long long)c->timeout_ms);
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    em_conn_release(conn);
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t ns = ts->tv_nsec + (ms % 1000) * 1000000;
    ts->tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

/* The connector thread: starts attempts when due, gives a reconnection up past its bound. */
static void *connector_main(void *arg)
{
    em_app_client *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        int64_t now = em__now_ms(), wait_ms = 60000;
        int reconnecting = c->state == AC_RECONNECTING || c->state == AC_REREGISTERING;
        if (reconnecting && now - c->lost_ms >= c->timeout_ms) {
            char why[1200], name[320];
            snprintf(why, sizeof why,
                     "no master of %s took application %s back within %lld ms "
                     "(ember.network.timeout) since master %s was lost",
                     c->master_url, c->app_id, (long long)c->timeout_ms,
                     master_name(c, c->cur, name, sizeof name));
            int tell = set_gone(c);
            em_conn *late = c->conn; /* a re-registration still unanswered: dropped */
            c->conn = NULL;
            pthread_mutex_unlock(&c->mu);
            if (late) {
                em_conn_close(late);
                em_conn_release(late);
            }
            EM_LOG(EM_LOG_WARN, "app-client", "%s", why);
            if (tell && c->cb.disconnected) c->cb.disconnected(c->cb.user, why);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        int due = (c->state == AC_CONNECTING || c->state == AC_RECONNECTING) && !c->attempting;
        if (due && now >= c->next_attempt_ms) {
            c->attempting = 1;
            const em_master_addr *a = &c->masters[c->cur]; /* the list never changes */
            pthread_mutex_unlock(&c->mu);
            int rc = em_endpoint_connect(c->ep, a->host, a->port, on_connect, c);
            pthread_mutex_lock(&c->mu);
            if (rc) {
                char why[1200], name[320];
                snprintf(why, sizeof why, "cannot connect to master %s: %s",
                         master_name(c, c->cur, name, sizeof name), em_errmsg());
                attempt_failed(c, why);
            }
            continue;
        }
        if (due) wait_ms = c->next_attempt_ms - now;
        if (reconnecting) wait_ms = EM_MIN(wait_ms, c->lost_ms + c->timeout_ms - now);
        struct timespec ts;
        deadline_in(&ts, EM_MAX(wait_ms, 1));
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void client_free(em_app_client *c)
{
    for (int i = 0; i < c->num_env; i++) em__free(c->env[i]);
    em__free(c->env);
    em__free(c->name);
    em__free(c->driver_url);
    em__free(c->binary_hash);
    em__free(c->master_url);
    em_master_addrs_free(c->masters, c->nmasters);
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
    int rc = em_master_urls_parse(master_url, &c->masters, &c->nmasters);
    if (rc) {
        client_free(c);
        return rc;
    }
    if (cb) c->cb = *cb;
    c->timeout_ms = em_conf_get_ms(conf, "ember.network.timeout");
    if (c->timeout_ms <= 0) c->timeout_ms = 120000;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->seed = (unsigned)(em__now_ns() ^ getpid());
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
    c->next_attempt_ms = em__now_ms();
    rc = em_endpoint_new(&cfg, &c->ep);
    if (!rc) rc = em_endpoint_start(c->ep);
    if (!rc) {
        rc = -pthread_create(&c->connector, NULL, connector_main, c);
        c->connector_started = rc == 0;
        if (rc) em__set_error(rc, "cannot start the application client's thread");
    }
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
    int64_t deadline = em__now_ms() + c->timeout_ms;
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
        deadline_in(&ts, left);
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
    em_conn *conn = c->conn; /* ours now: on_close leaves it alone */
    c->conn = NULL;
    if (conn && c->state == AC_REGISTERED) {
        em_msg_unregister_application u = {.app_id = em_str_c(c->app_id),
                                           .final_state = EM_APP_FINISHED};
        char name[320];
        if (em_conn_send(conn, EM_MSG_UNREGISTER_APPLICATION, &u) == 0)
            EM_LOG(EM_LOG_INFO, "app-client", "unregistered application %s from master %s",
                   c->app_id, master_name(c, c->cur, name, sizeof name));
    } else if (c->state == AC_RECONNECTING || c->state == AC_REREGISTERING) {
        EM_LOG(EM_LOG_WARN, "app-client",
               "application %s ends while no master has it: a recovering master ends it when "
               "its recovery completes",
               c->app_id);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->connector_started) pthread_join(c->connector, NULL);
    if (conn) em_conn_close(conn); /* after what is queued: the unregistration */
    em_endpoint_free(c->ep);       /* joins the loop: no callback after this */
    if (conn) em_conn_release(conn);
    client_free(c);
}
