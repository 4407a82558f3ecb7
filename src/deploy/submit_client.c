/* ember submit's client of the standalone master (see submit_client.h).
 *
 * Owns a private em_endpoint (role EM_ROLE_CLIENT, its own loop thread): the one connection to
 * a master of the URL, and for a submission a listener serving the binary (GET_FILE, from the
 * master's fetch) out of a one-file em_file_registry. Requests are one at a time: the caller's
 * thread sends one and waits on c->cv for the answer of the expected type (or the connection's
 * end, or ember.network.timeout); the loop thread copies the answer into c->ans.
 *
 *   connect: the masters of the URL in turn, once each, until one takes the connection
 *   CONNECTING --on_connect ok--> OPEN --request: send, wait--> OPEN (answer copied)
 *       | every master failed       | on_close
 *       v                          v
 *     error (EM_ESTATE)          CLOSED --a status, kill or state request--> reconnect: the
 *                                  masters in turn again, with a back-off between rounds (100 ms
 *                                  doubling to 5 s), until one takes it or ember.network.timeout
 *                                  has passed since the loss; then the request is sent again
 *   A submission (SUBMIT_DRIVER) is never sent twice: when its connection is lost before the
 *   answer it fails, saying the driver may or may not have been accepted.
 *
 * Threads: c->mu guards the connection, the closed flag and the answer slot; the caller's
 * thread waits on c->cv. Called by src/cli/submit_cmd.c and tests.
 */
#include "deploy/submit_client.h"

#include "deploy/file_server.h"
#include "deploy/master.h"
#include "net/endpoint.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct em_submit_client {
    em_endpoint *ep;
    em_file_registry *files; /* NULL without a served file */
    char *master_url;
    em_master_addr *masters;
    int nmasters, cur; /* cur: the master connected to (or tried last) */
    int64_t timeout_ms;
    char hash[EM_FILE_HASH_HEX];
    char file_url[320];
    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int connect_done, connect_status;
    em_conn *conn; /* the master's, retained from on_connect to free */
    int closed;
    char close_reason[256];
    int want; /* message type of the awaited answer; 0 none */
    int got;
    struct {
        int ok, found, state, exit_code;
        char *id, *worker_id, *message;
    } ans;
    unsigned seed;
    char current[320]; /* em_submit_client_master's answer */
};

/* "ember://host:port" of masters[i]. */
static const char *master_name(const em_submit_client *c, int i, char *buf, size_t cap)
{
    const em_master_addr *a = &c->masters[i];
    int v6 = strchr(a->host, ':') != NULL;
    snprintf(buf, cap, "ember://%s%s%s:%d", v6 ? "[" : "", a->host, v6 ? "]" : "", a->port);
    return buf;
}

static void clear_answer(em_submit_client *c)
{
    em__free(c->ans.id);
    em__free(c->ans.worker_id);
    em__free(c->ans.message);
    memset(&c->ans, 0, sizeof c->ans);
    c->got = 0;
}

static void on_connect(em_conn *conn, int status, void *arg)
{
    em_submit_client *c = arg;
    pthread_mutex_lock(&c->mu);
    c->connect_done = 1;
    c->connect_status = status;
    if (status == 0) {
        em_conn_retain(conn);
        c->conn = conn;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Copies the answer of type t into c->ans. Under c->mu. */
static void take_answer(em_submit_client *c, const em_msg *m)
{
    const em_str *id = NULL, *worker = NULL, *message = NULL;
    switch (m->type) {
    case EM_MSG_SUBMIT_DRIVER_RESPONSE:
        c->ans.ok = m->u.submit_driver_response.ok;
        id = &m->u.submit_driver_response.driver_id;
        message = &m->u.submit_driver_response.message;
        break;
    case EM_MSG_MASTER_STATE:
        c->ans.ok = 1;
        message = &m->u.master_state.json;
        break;
    case EM_MSG_DRIVER_STATUS:
        c->ans.found = m->u.driver_status.found;
        c->ans.state = m->u.driver_status.state;
        c->ans.exit_code = m->u.driver_status.exit_code;
        id = &m->u.driver_status.driver_id;
        worker = &m->u.driver_status.worker_id;
        message = &m->u.driver_status.message;
        break;
    default: /* KILL_DRIVER_RESPONSE */
        c->ans.ok = m->u.kill_driver_response.ok;
        id = &m->u.kill_driver_response.driver_id;
        message = &m->u.kill_driver_response.message;
        break;
    }
    c->ans.id = id ? em__strndup(id->p, id->len) : em__strdup("");
    c->ans.worker_id = worker ? em__strndup(worker->p, worker->len) : em__strdup("");
    c->ans.message = em__strndup(message->p, message->len);
    c->got = 1;
    pthread_cond_broadcast(&c->cv);
}

static void on_message(em_conn *conn, const em_msg *m, void *user)
{
    em_submit_client *c = user;
    if (m->type == EM_MSG_GET_FILE && c->files) {
        em_file_serve(c->files, conn, &m->u.get_file);
        return;
    }
    pthread_mutex_lock(&c->mu);
    bool expected = conn == c->conn && c->want == m->type && !c->got;
    if (expected) take_answer(c, m);
    pthread_mutex_unlock(&c->mu);
    if (!expected) {
        EM_LOG(EM_LOG_WARN, "submit", "unexpected message %s from %s; closing that connection",
               em_msg_name(m->type), em_conn_peer(conn));
        em_conn_close(conn);
    }
}

static void on_close(em_conn *conn, int code, const char *reason, void *user)
{
    em_submit_client *c = user;
    pthread_mutex_lock(&c->mu);
    if (conn == c->conn && !c->closed) {
        c->closed = 1;
        snprintf(c->close_reason, sizeof c->close_reason, "%s%s%s", reason ? reason : "closed",
                 code ? ": " : "", code ? em_strerror(code) : "");
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t ns = ts->tv_nsec + (ms % 1000) * 1000000;
    ts->tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

/* The local address of the route to host:port (connecting a UDP socket sends nothing), as a
 * numeric string into out. 0 or EM_EINVAL / -errno with a message naming the master. */
static int route_address(const char *host, int port, char *out, size_t cap)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g)
        return em__set_error(EM_EINVAL, "cannot resolve the master's host '%s': %s", host,
                             gai_strerror(g));
    int rc = 0;
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        rc = em__set_error(-errno, "cannot find the local address towards the master %s:%d: %s",
                           host, port, strerror(errno));
    else if ((g = getnameinfo((struct sockaddr *)&ss, len, out, (socklen_t)cap, NULL, 0,
                              NI_NUMERICHOST)))
        rc = em__set_error(EM_EINVAL, "cannot print the local address towards %s:%d: %s", host,
                           port, gai_strerror(g));
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return rc;
}

/* The listener serving path, at the local address towards the master. Before the loop runs. */
static int serve(em_submit_client *c, const char *path)
{
    int rc = em_file_registry_new(&c->files);
    if (!rc) rc = em_file_registry_add(c->files, path, c->hash);
    if (rc) return rc;
    char addr[256];
    rc = route_address(c->masters[0].host, c->masters[0].port, addr, sizeof addr);
    int port = 0;
    if (!rc) rc = em_endpoint_listen(c->ep, addr, 0, &port);
    if (rc) return em__error_context(rc, "cannot serve the binary to the master");
    int v6 = strchr(addr, ':') != NULL;
    snprintf(c->file_url, sizeof c->file_url, "%s%s%s:%d", v6 ? "[" : "", addr, v6 ? "]" : "",
             port);
    return 0;
}

/* Connects to masters[i]: 0 with c->conn set, or the failure with a message naming it.
 * Caller's thread; waits for the endpoint's verdict (bounded by its handshake timeout). */
static int connect_one(em_submit_client *c, int i)
{
    char name[320];
    master_name(c, i, name, sizeof name);
    pthread_mutex_lock(&c->mu);
    c->connect_done = 0;
    c->connect_status = 0;
    pthread_mutex_unlock(&c->mu);
    int rc = em_endpoint_connect(c->ep, c->masters[i].host, c->masters[i].port, on_connect, c);
    if (rc) return em__set_error(EM_ESTATE, "cannot connect to master %s: %s", name, em_errmsg());
    pthread_mutex_lock(&c->mu);
    while (!c->connect_done) pthread_cond_wait(&c->cv, &c->mu);
    int status = c->connect_status;
    if (!status) {
        c->cur = i;
        c->closed = 0;
        c->close_reason[0] = '\0';
    }
    pthread_mutex_unlock(&c->mu);
    if (!status) return 0;
    return em__set_error(EM_ESTATE, "cannot connect to master %s: %s", name,
                         status == EM_EACCES
                             ? "authentication refused (ember.authenticate.secret differs)"
                             : em_strerror(status));
}

/* One round: every master of the URL once, from cur on. 0, or EM_ESTATE naming each failure. */
static int connect_round(em_submit_client *c)
{
    char errors[1024] = "";
    for (int k = 0; k < c->nmasters; k++) {
        int i = (c->cur + k) % c->nmasters;
        if (!connect_one(c, i)) return 0;
        size_t len = strlen(errors);
        snprintf(errors + len, sizeof errors - len, "%s%s", len ? "; " : "", em_errmsg());
    }
    if (c->nmasters == 1) return em__set_error(EM_ESTATE, "%s", errors);
    return em__set_error(EM_ESTATE, "no master of %s answers: %s", c->master_url, errors);
}

int em_submit_client_connect(const em_conf *conf, const char *master_url, const char *serve_path,
                             em_submit_client **out)
{
    *out = NULL;
    em_submit_client *c = em__calloc(1, sizeof *c);
    if (!c) return em__set_error(EM_ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->timeout_ms = em_conf_get_ms(conf, "ember.network.timeout");
    c->seed = (unsigned)(em__now_ns() ^ getpid());
    c->master_url = em__strdup(master_url);
    int rc = c->master_url ? em_master_urls_parse(master_url, &c->masters, &c->nmasters)
                           : em__set_error(EM_ENOMEM, "out of memory");
    em_endpoint_config cfg = {
        .role = EM_ROLE_CLIENT,
        .secret = em_conf_get_str(conf, "ember.authenticate.secret"),
        .max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize"),
        .handshake_timeout_ms = (unsigned)EM_MAX(1, EM_MIN(c->timeout_ms, 10000)),
        .on_message = on_message,
        .on_close = on_close,
        .user = c,
    };
    if (!rc) rc = em_endpoint_new(&cfg, &c->ep);
    if (!rc && serve_path) rc = serve(c, serve_path);
    if (!rc) rc = em_endpoint_start(c->ep);
    if (!rc) rc = connect_round(c);
    if (rc) {
        em_submit_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

const char *em_submit_client_hash(const em_submit_client *c)
{
    return c->hash;
}

const char *em_submit_client_file_url(const em_submit_client *c)
{
    return c->file_url;
}

/* Sends msg of type and waits for an answer of type want (copied into c->ans). 0, or
 * EM_ESTATE / a send error with a message; *lost (may be NULL) tells whether it failed
 * because the connection was lost (closed before or while waiting). */
static int request_once(em_submit_client *c, int type, const void *msg, int want, int64_t wait_ms,
                        bool *lost)
{
    char name[320];
    master_name(c, c->cur, name, sizeof name);
    *lost = false;
    pthread_mutex_lock(&c->mu);
    clear_answer(c);
    c->want = want;
    em_conn *conn = c->closed ? NULL : c->conn;
    if (conn) em_conn_retain(conn);
    pthread_mutex_unlock(&c->mu);
    int rc = conn ? em_conn_send(conn, type, msg) : EM_ESTATE;
    if (conn) em_conn_release(conn);
    if (rc) {
        char why[256];
        pthread_mutex_lock(&c->mu);
        c->want = 0;
        *lost = rc == EM_ESTATE;
        snprintf(why, sizeof why, "%s", c->closed ? c->close_reason : em_strerror(rc));
        pthread_mutex_unlock(&c->mu);
        return em__set_error(rc == EM_ENOMEM ? rc : EM_ESTATE, "cannot send %s to master %s: %s",
                             em_msg_name(type), name, why);
    }
    struct timespec ts;
    deadline_in(&ts, wait_ms);
    pthread_mutex_lock(&c->mu);
    while (!c->got && !c->closed)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) break;
    c->want = 0;
    if (c->got && (!c->ans.id || !c->ans.worker_id || !c->ans.message)) {
        rc = em__set_error(EM_ENOMEM, "out of memory");
    } else if (!c->got && c->closed) {
        *lost = true;
        rc = em__set_error(EM_ESTATE, "master %s closed the connection before answering (%s)", name,
                           c->close_reason);
    } else if (!c->got) {
        rc = em__set_error(EM_ESTATE, "master %s did not answer within %lld ms", name,
                           (long long)wait_ms);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* request_once, and for a request that may be sent again (retry) a lost connection is made
 * again (the masters in turn, a back-off between rounds) and the request resent, until
 * ember.network.timeout has passed since the loss. */
static int request(em_submit_client *c, int type, const void *msg, int want, int64_t wait_ms,
                   bool retry)
{
    bool lost = false;
    int rc = request_once(c, type, msg, want, wait_ms, &lost);
    if (!rc || !lost || !retry) {
        if (rc && lost && !retry)
            em__error_context(rc,
                              "the %s may or may not have been taken (ember submit --status "
                              "tells)",
                              em_msg_name(type));
        return rc;
    }
    int64_t since = em__now_ms(), backoff = 100;
    char first[1024];
    snprintf(first, sizeof first, "%s", em_errmsg());
    EM_LOG(EM_LOG_WARN, "submit", "%s; reconnecting to %s for up to %lld ms", first, c->master_url,
           (long long)c->timeout_ms);
    while (em__now_ms() - since < c->timeout_ms) {
        pthread_mutex_lock(&c->mu);
        em_conn *old = c->conn;
        c->conn = NULL;
        c->closed = 1;
        pthread_mutex_unlock(&c->mu);
        if (old) {
            em_conn_close(old);
            em_conn_release(old);
        }
        rc = connect_round(c); /* from the lost master on */
        if (!rc) {
            rc = request_once(c, type, msg, want, wait_ms, &lost);
            if (!rc || !lost) return rc;
        }
        int64_t d = backoff / 2 + (int64_t)(rand_r(&c->seed) % (unsigned)(backoff / 2 + 1));
        backoff = EM_MIN(backoff * 2, 5000);
        d = EM_MIN(d, c->timeout_ms - (em__now_ms() - since));
        if (d > 0) usleep((useconds_t)d * 1000);
    }
    return em__set_error(EM_ESTATE,
                         "%s; no master of %s answered within %lld ms "
                         "(ember.network.timeout): %s",
                         first, c->master_url, (long long)c->timeout_ms, em_errmsg());
}

int em_submit_client_submit(em_submit_client *c, const em_submit_request *req, char **driver_id)
{
    *driver_id = NULL;
    if (!c->files) return em__set_error(EM_EINVAL, "no binary is served for the submission");
    int n = req->num_args + req->num_env;
    em_str *v = em__malloc(sizeof *v * (size_t)(n ? n : 1));
    if (!v) return em__set_error(EM_ENOMEM, "out of memory");
    for (int i = 0; i < req->num_args; i++) v[i] = em_str_c(req->args[i]);
    for (int i = 0; i < req->num_env; i++) v[req->num_args + i] = em_str_c(req->env[i]);
    em_msg_submit_driver m = {
        .cores = (uint32_t)req->cores,
        .memory_mb = req->memory_mb,
        .supervise = req->supervise,
        .binary_hash = em_str_c(c->hash),
        .file_url = em_str_c(c->file_url),
        .args = {.count = (uint32_t)req->num_args, .items = v},
        .env = {.count = (uint32_t)req->num_env, .items = v + req->num_args},
    };
    /* The master answers once it has fetched the binary, within its own network timeout. */
    int rc = request(c, EM_MSG_SUBMIT_DRIVER, &m, EM_MSG_SUBMIT_DRIVER_RESPONSE,
                     c->timeout_ms + 10000, false);
    em__free(v);
    if (rc) return rc;
    pthread_mutex_lock(&c->mu);
    char name[320];
    if (!c->ans.ok)
        rc = em__set_error(EM_EMASTER, "master %s refused the driver: %s",
                           master_name(c, c->cur, name, sizeof name), c->ans.message);
    else
        *driver_id = c->ans.id, c->ans.id = NULL;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int em_submit_client_status(em_submit_client *c, const char *driver_id, em_submit_status *out)
{
    memset(out, 0, sizeof *out);
    em_msg_request_driver_status m = {.driver_id = em_str_c(driver_id)};
    int rc =
        request(c, EM_MSG_REQUEST_DRIVER_STATUS, &m, EM_MSG_DRIVER_STATUS, c->timeout_ms, true);
    if (rc) return rc;
    pthread_mutex_lock(&c->mu);
    out->found = c->ans.found;
    out->state = c->ans.state;
    out->exit_code = c->ans.exit_code;
    out->worker_id = c->ans.worker_id;
    out->message = c->ans.message;
    c->ans.worker_id = c->ans.message = NULL;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void em_submit_status_free(em_submit_status *s)
{
    em__free(s->worker_id);
    em__free(s->message);
    memset(s, 0, sizeof *s);
}

int em_submit_client_kill(em_submit_client *c, const char *driver_id, char **message)
{
    *message = NULL;
    em_msg_request_kill_driver m = {.driver_id = em_str_c(driver_id)};
    int rc = request(c, EM_MSG_REQUEST_KILL_DRIVER, &m, EM_MSG_KILL_DRIVER_RESPONSE, c->timeout_ms,
                     true);
    if (rc) return rc;
    pthread_mutex_lock(&c->mu);
    if (!c->ans.ok)
        rc = em__set_error(EM_EMASTER, "%s", c->ans.message);
    else
        *message = c->ans.message, c->ans.message = NULL;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int em_submit_client_master_state(em_submit_client *c, char **json)
{
    *json = NULL;
    em_msg_request_master_state m = {.flags = 0};
    int rc = request(c, EM_MSG_REQUEST_MASTER_STATE, &m, EM_MSG_MASTER_STATE, c->timeout_ms, true);
    if (rc) return rc;
    pthread_mutex_lock(&c->mu);
    *json = c->ans.message;
    c->ans.message = NULL;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

const char *em_submit_client_master(em_submit_client *c)
{
    return master_name(c, c->cur, c->current, sizeof c->current);
}

void em_submit_client_free(em_submit_client *c)
{
    if (!c) return;
    if (c->ep) em_endpoint_stop(c->ep);
    pthread_mutex_lock(&c->mu);
    if (c->conn) em_conn_release(c->conn);
    c->conn = NULL;
    clear_answer(c);
    pthread_mutex_unlock(&c->mu);
    em_endpoint_free(c->ep);
    em_file_registry_free(c->files);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    em__free(c->master_url);
    em_master_addrs_free(c->masters, c->nmasters);
    em__free(c);
}
