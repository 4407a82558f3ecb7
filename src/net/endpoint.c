/* Framed connections on libuv (see endpoint.h for the handshake and the thread rules).
 *
 * Owns: one uv_loop_t per endpoint, run by the endpoint's own thread from em_endpoint_start
 * to em_endpoint_stop; the listeners; every connection (em_conn) with its frame reader, its
 * outbound queue and its handshake state. Callers: the cluster daemons (master, worker,
 * driver, executor) and the block fetcher.
 *
 * Connection lifecycle (loop thread):
 *
 *   HELLO --peer hello, no auth--------------------------------------------> OPEN
 *     |   --peer hello, auth: initiator sends proof--> AUTH (acceptor: waits for proof)
 *   AUTH  --acceptor: proof ok, sends proof + result{1}----------------------> OPEN
 *         --initiator: proof ok--> RESULT --result{1}-----------------------> OPEN
 *   any   --error / refusal / EOF / em_conn_close / stop / not OPEN when the deadline timer
 *           (handshake_timeout_ms from creation) fires--> conn_close(): closing, then the
 *           tcp handle closes (after a shutdown that flushes a refusal), then the timer, and
 *           the loop drops its reference.
 *
 * Cross-thread sends: em_conn_send encodes into the connection's outq under c->mu, puts the
 * connection on ep->pending (holding a reference) under ep->mu and wakes the loop with a
 * uv_async_t; the loop moves each outq into one uv_write. Bounded: bytes queued or in flight per
 * connection never exceed max_send_queue (one frame may exceed it when the queue is empty);
 * inbound, the frame reader buffers at most one partial frame under max_frame.
 * Guarantees: a bad peer closes only its connection, logged at WARN with its address; every
 * connect callback runs exactly once; stop closes and frees everything the loop owns.
 */
#include "net/endpoint.h"

#include "net/auth.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#define READ_CHUNK (64u << 10)

enum conn_state { CS_HELLO, CS_AUTH, CS_RESULT, CS_OPEN };

struct em_conn {
    uv_tcp_t tcp; /* first: handle->data is not needed to get back */
    uv_shutdown_t shut;
    uv_timer_t timer; /* connect + handshake deadline; closed after tcp */
    em_endpoint *ep;
    atomic_int refs;
    int initiator;
    int state;   /* enum conn_state; loop thread */
    int closing; /* loop thread */
    int opened;  /* on_open ran; loop thread */
    em_connect_fn connect_cb;
    void *connect_arg;
    char peer[64];
    int peer_role;
    char *peer_app_id;
    uint8_t nonce[EM_AUTH_NONCE_SIZE];  /* ours */
    uint8_t pnonce[EM_AUTH_NONCE_SIZE]; /* the peer's */
    em_frame_reader rd;
    uint8_t *rbuf;
    struct em_conn *next, *prev; /* ep->conns; loop thread */
    /* guarded by mu */
    pthread_mutex_t mu;
    int closed;    /* no more sends */
    int close_req; /* em_conn_close asked */
    int ready;     /* handshake done: sends allowed */
    int pending;   /* on ep->pending */
    size_t queued; /* bytes in outq + in uv writes */
    em_buf outq;
    struct em_conn *pnext; /* ep->pending, guarded by ep->mu */
};

struct connect_req {
    struct connect_req *next;
    struct sockaddr_storage addr;
    char peer[64];
    em_connect_fn cb;
    void *arg;
};

struct listener {
    uv_tcp_t tcp;
    struct listener *next;
};

struct em_endpoint {
    em_endpoint_config cfg;
    char *app_id, *secret;
    size_t secret_len;
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    int started, joined;
    struct listener *listeners;
    em_conn *conns; /* loop thread */
    atomic_uint_fast64_t refused;
    /* guarded by mu */
    pthread_mutex_t mu;
    int stopping;
    em_conn *pending;
    struct connect_req *connects;
};

struct wreq {
    uv_write_t req;
    em_conn *c;
    size_t n;
    uint8_t *data;
};

/* ---- small helpers ----------------------------------------------------------------------- */
static void addr_name(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        uv_ip4_name(s4, ip, sizeof ip);
        port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(s6, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
    }
    snprintf(out, n, "%s:%d", ip, port);
}

static int resolve(const char *host, int port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (port < 0 || port > 65535) return em__set_error(EM_EINVAL, "port %d out of range", port);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host && *host ? host : "0.0.0.0", ps, &hints, &res);
    if (rc != 0 || !res)
        return em__set_error(EM_EINVAL, "cannot resolve host '%s': %s", host ? host : "",
                             gai_strerror(rc));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void conn_unref(em_conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1) return;
    em_frame_reader_free(&c->rd);
    em_buf_free(&c->outq);
    pthread_mutex_destroy(&c->mu);
    em__free(c->rbuf);
    em__free(c->peer_app_id);
    em__free(c);
}

/* ---- closing ------------------------------------------------------------------------------ */
static void on_timer_closed(uv_handle_t *h)
{
    em_conn *c = h->data;
    em_endpoint *ep = c->ep;
    if (c->prev)
        c->prev->next = c->next;
    else
        ep->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    conn_unref(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    em_conn *c = (em_conn *)h;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    uv_handle_t *h = (uv_handle_t *)req->handle;
    if (!uv_is_closing(h)) uv_close(h, on_handle_closed);
}

/* Closes c once: no more sends, the callback of its state, then the handle (after flushing
 * what is written when flush is set). code 0 = clean; reason in words. Loop thread. */
static void conn_close(em_conn *c, int code, int flush, const char *reason)
{
    if (c->closing) return;
    c->closing = 1;
    pthread_mutex_lock(&c->mu);
    c->closed = 1;
    em_buf_free(&c->outq);
    pthread_mutex_unlock(&c->mu);
    uv_read_stop((uv_stream_t *)&c->tcp);
    em_endpoint *ep = c->ep;
    if (c->opened) {
        if (ep->cfg.on_close) ep->cfg.on_close(c, code, reason, ep->cfg.user);
    } else {
        atomic_fetch_add(&ep->refused, 1);
        if (c->connect_cb) c->connect_cb(NULL, code ? code : EM_ESTATE, c->connect_arg);
    }
    c->connect_cb = NULL;
    if (flush && uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) == 0) return;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Logs at WARN naming the peer, then closes. */
static void conn_fail(em_conn *c, int code, int flush, const char *fmt, ...) EM_PRINTF(4, 5);
static void conn_fail(em_conn *c, int code, int flush, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    EM_LOG(EM_LOG_WARN, "net", "closing connection %s %s: %s", c->initiator ? "to" : "from",
           c->peer, why);
    conn_close(c, code, flush, why);
}

/* ---- writing ------------------------------------------------------------------------------ */
static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    em_conn *c = w->c;
    pthread_mutex_lock(&c->mu);
    c->queued -= w->n;
    pthread_mutex_unlock(&c->mu);
    em__free(w->data);
    em__free(w);
    if (status < 0 && status != UV_ECANCELED && !c->closing)
        conn_fail(c, status, 0, "write failed: %s", uv_strerror(status));
}

/* Hands data (len bytes, ownership taken) to libuv. Loop thread. */
static int write_bytes(em_conn *c, uint8_t *data, size_t len)
{
    struct wreq *w = em__calloc(1, sizeof *w);
    if (!w) {
        em__free(data);
        return EM_ENOMEM;
    }
    w->c = c;
    w->n = len;
    w->data = data;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc < 0) {
        pthread_mutex_lock(&c->mu);
        c->queued -= len;
        pthread_mutex_unlock(&c->mu);
        em__free(data);
        em__free(w);
        return rc;
    }
    return 0;
}

/* Sends a handshake frame directly. Loop thread. */
static int write_msg(em_conn *c, int type, const void *msg)
{
    em_buf b = EM_BUF_INIT;
    int rc = em_msg_encode(&b, type, msg);
    if (rc < 0) {
        em_buf_free(&b);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    c->queued += b.len;
    pthread_mutex_unlock(&c->mu);
    return write_bytes(c, b.data, b.len);
}

/* ---- handshake ---------------------------------------------------------------------------- */
static void conn_open(em_conn *c)
{
    c->state = CS_OPEN;
    c->opened = 1;
    uv_timer_stop(&c->timer);
    pthread_mutex_lock(&c->mu);
    c->ready = 1;
    pthread_mutex_unlock(&c->mu);
    em_endpoint *ep = c->ep;
    EM_LOG(EM_LOG_DEBUG, "net", "connection %s %s open (peer role %d)",
           c->initiator ? "to" : "from", c->peer, c->peer_role);
    if (ep->cfg.on_open) ep->cfg.on_open(c, ep->cfg.user);
    if (c->closing) return;
    if (c->connect_cb) {
        em_connect_fn cb = c->connect_cb;
        c->connect_cb = NULL;
        cb(c, 0, c->connect_arg);
    }
}

static void refuse(em_conn *c, const char *why)
{
    em_msg_auth_result r = {.ok = 0, .reason = em_str_c(why)};
    int flush = write_msg(c, EM_MSG_AUTH_RESULT, &r) == 0;
    conn_fail(c, EM_EACCES, flush, "authentication refused: %s", why);
}

static int send_proof(em_conn *c)
{
    em_endpoint *ep = c->ep;
    uint8_t mac[EM_AUTH_MAC_SIZE];
    int rc = em_auth_proof(ep->secret, ep->secret_len,
                           c->initiator ? EM_AUTH_INITIATOR : EM_AUTH_ACCEPTOR, ep->cfg.role,
                           c->pnonce, c->nonce, mac);
    if (rc < 0) return rc;
    em_msg_auth_response r = {.mac = {mac, sizeof mac}};
    return write_msg(c, EM_MSG_AUTH_RESPONSE, &r);
}

static void on_hello(em_conn *c, const em_msg_hello *h)
{
    em_endpoint *ep = c->ep;
    if (h->version != EM_PROTO_VERSION) {
        conn_fail(c, EM_EFORMAT, 0, "protocol version mismatch: peer speaks %u, we speak %u",
                  h->version, EM_PROTO_VERSION);
        return;
    }
    c->peer_role = h->role;
    c->peer_app_id = em__strndup(h->app_id.p, h->app_id.len);
    if (!c->peer_app_id) {
        conn_fail(c, EM_ENOMEM, 0, "out of memory");
        return;
    }
    int have = ep->secret != NULL, peer_has = h->nonce.len > 0;
    if (!have && !peer_has) {
        conn_open(c);
        return;
    }
    if (!have) {
        refuse(c, "peer requires authentication and no secret is configured here");
        return;
    }
    if (!peer_has || h->nonce.len != EM_AUTH_NONCE_SIZE) {
        refuse(c, peer_has ? "peer nonce has a wrong length" : "peer sent no authentication");
        return;
    }
    memcpy(c->pnonce, h->nonce.p, EM_AUTH_NONCE_SIZE);
    c->state = CS_AUTH;
    if (c->initiator) {
        int rc = send_proof(c);
        if (rc < 0) conn_fail(c, rc, 0, "cannot send proof: %s", em_strerror(rc));
    }
}

static void on_auth_response(em_conn *c, const em_msg_auth_response *r)
{
    em_endpoint *ep = c->ep;
    int rc = em_auth_check(ep->secret, ep->secret_len,
                           c->initiator ? EM_AUTH_ACCEPTOR : EM_AUTH_INITIATOR, c->peer_role,
                           c->nonce, c->pnonce, EM_AUTH_NONCE_SIZE, r->mac.p, r->mac.len);
    if (rc < 0) {
        refuse(c, "wrong proof of the secret");
        return;
    }
    if (c->initiator) {
        c->state = CS_RESULT;
        return;
    }
    em_msg_auth_result ok = {.ok = 1, .reason = em_str_c("")};
    if ((rc = send_proof(c)) < 0 || (rc = write_msg(c, EM_MSG_AUTH_RESULT, &ok)) < 0) {
        conn_fail(c, rc, 0, "cannot answer the handshake: %s", em_strerror(rc));
        return;
    }
    conn_open(c);
}

/* One decoded frame. Loop thread. */
static void dispatch(em_conn *c, const em_msg *m)
{
    if (c->state == CS_OPEN) {
        em_endpoint *ep = c->ep;
        if (ep->cfg.on_message) ep->cfg.on_message(c, m, ep->cfg.user);
        return;
    }
    if (m->type == EM_MSG_AUTH_RESULT && !m->u.auth_result.ok) {
        conn_fail(c, EM_EACCES, 0, "refused by the peer: %.*s", (int)m->u.auth_result.reason.len,
                  m->u.auth_result.reason.p);
        return;
    }
    if (c->state == CS_HELLO && m->type == EM_MSG_HELLO)
        on_hello(c, &m->u.hello);
    else if (c->state == CS_AUTH && m->type == EM_MSG_AUTH_RESPONSE)
        on_auth_response(c, &m->u.auth_response);
    else if (c->state == CS_RESULT && m->type == EM_MSG_AUTH_RESULT)
        conn_open(c);
    else {
        const char *n = em_msg_name(m->type);
        conn_fail(c, EM_EFORMAT, 0, "unexpected %s message during the handshake",
                  n ? n : "unknown");
    }
}

/* ---- reading ------------------------------------------------------------------------------ */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    em_conn *c = (em_conn *)h;
    *buf = uv_buf_init((char *)c->rbuf, READ_CHUNK);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    em_conn *c = (em_conn *)s;
    if (c->closing || n == 0) return;
    if (n < 0) {
        if (n == UV_EOF) {
            if (em_frame_reader_pending(&c->rd) || c->state != CS_OPEN)
                conn_fail(c, EM_EFORMAT, 0, "peer closed the connection %s",
                          c->state != CS_OPEN ? "during the handshake" : "inside a frame");
            else
                conn_close(c, 0, 0, "peer closed the connection");
        } else
            conn_fail(c, (int)n, 0, "read failed: %s", uv_strerror((int)n));
        return;
    }
    int rc = em_frame_reader_feed(&c->rd, c->rbuf, (size_t)n);
    while (rc == 0 && !c->closing) {
        const uint8_t *f = NULL;
        size_t len = 0;
        rc = em_frame_reader_next(&c->rd, &f, &len);
        if (rc != EM_ROW) break;
        em_msg m;
        rc = em_msg_decode(f, len, c->rd.max_frame, &m);
        if (rc < 0) break;
        dispatch(c, &m);
    }
    if (rc < 0 && !c->closing) conn_fail(c, rc, 0, "malformed frame: %s", em_errmsg());
}

/* ---- connections -------------------------------------------------------------------------- */
static void on_deadline(uv_timer_t *t)
{
    em_conn *c = t->data;
    if (!c->closing && c->state != CS_OPEN)
        conn_fail(c, EM_ESTATE, 0, "connection not set up within %u ms (%s)",
                  c->ep->cfg.handshake_timeout_ms,
                  c->state == CS_HELLO ? "no hello" : "authentication unfinished");
}

static em_conn *conn_new(em_endpoint *ep, int initiator)
{
    em_conn *c = em__calloc(1, sizeof *c);
    if (!c) return NULL;
    c->rbuf = em__malloc(READ_CHUNK);
    if (!c->rbuf || uv_tcp_init(&ep->loop, &c->tcp) < 0) {
        em__free(c->rbuf);
        em__free(c);
        return NULL;
    }
    uv_timer_init(&ep->loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_deadline, ep->cfg.handshake_timeout_ms, 0);
    c->ep = ep;
    atomic_init(&c->refs, 1); /* the loop's */
    c->initiator = initiator;
    pthread_mutex_init(&c->mu, NULL);
    em_frame_reader_init(&c->rd, ep->cfg.max_frame);
    c->next = ep->conns;
    if (ep->conns) ep->conns->prev = c;
    ep->conns = c;
    snprintf(c->peer, sizeof c->peer, "?");
    return c;
}

/* The socket is connected: send hello and read. Loop thread. */
static void conn_begin(em_conn *c)
{
    em_endpoint *ep = c->ep;
    uv_tcp_nodelay(&c->tcp, 1);
    em_msg_hello h = {.version = EM_PROTO_VERSION,
                      .role = (uint8_t)ep->cfg.role,
                      .app_id = em_str_c(ep->app_id),
                      .nonce = {NULL, 0}};
    if (ep->secret) {
        int rc = em_auth_nonce(c->nonce);
        if (rc < 0) {
            conn_fail(c, rc, 0, "no random nonce: %s", em_errmsg());
            return;
        }
        h.nonce = (em_bytes){c->nonce, EM_AUTH_NONCE_SIZE};
    }
    int rc = write_msg(c, EM_MSG_HELLO, &h);
    if (rc == 0) rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) conn_fail(c, rc, 0, "cannot start the handshake: %s", em_strerror(rc));
}

static void on_connection(uv_stream_t *server, int status)
{
    em_endpoint *ep = server->data;
    if (status < 0) {
        EM_LOG(EM_LOG_WARN, "net", "accept failed: %s", uv_strerror(status));
        return;
    }
    em_conn *c = conn_new(ep, 0);
    if (!c) {
        EM_LOG(EM_LOG_ERROR, "net", "out of memory accepting a connection");
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return;
    }
    struct sockaddr_storage sa;
    int len = sizeof sa;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0)
        addr_name((struct sockaddr *)&sa, c->peer, sizeof c->peer);
    conn_begin(c);
}

static void on_connected(uv_connect_t *req, int status)
{
    em_conn *c = (em_conn *)req->handle;
    em__free(req);
    if (c->closing) return;
    if (status < 0)
        conn_fail(c, status, 0, "connect failed: %s", uv_strerror(status));
    else
        conn_begin(c);
}

static void start_connect(em_endpoint *ep, struct connect_req *r)
{
    em_conn *c = conn_new(ep, 1);
    uv_connect_t *req = c ? em__calloc(1, sizeof *req) : NULL;
    if (!req) {
        if (c) {
            c->closing = 1;
            uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        }
        if (r->cb) r->cb(NULL, EM_ENOMEM, r->arg);
        return;
    }
    c->connect_cb = r->cb;
    c->connect_arg = r->arg;
    memcpy(c->peer, r->peer, sizeof c->peer);
    int rc = uv_tcp_connect(req, &c->tcp, (struct sockaddr *)&r->addr, on_connected);
    if (rc < 0) {
        em__free(req);
        conn_fail(c, rc, 0, "connect failed: %s", uv_strerror(rc));
    }
}

/* ---- the loop's wake-up: sends, closes, connects, stop ------------------------------------ */
static void flush_conn(em_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->pending = 0;
    int close_req = c->close_req;
    em_buf q = c->outq;
    c->outq = (em_buf)EM_BUF_INIT;
    pthread_mutex_unlock(&c->mu);
    if (q.len && !c->closing) {
        int rc = write_bytes(c, q.data, q.len);
        if (rc < 0) conn_fail(c, rc, 0, "write failed: %s", em_strerror(rc));
    } else {
        em_buf_free(&q);
    }
    if (close_req && !c->closing) conn_close(c, 0, 1, "closed locally");
}

static void on_wake(uv_async_t *a)
{
    em_endpoint *ep = a->data;
    pthread_mutex_lock(&ep->mu);
    em_conn *pend = ep->pending;
    ep->pending = NULL;
    struct connect_req *cr = ep->connects;
    ep->connects = NULL;
    int stopping = ep->stopping;
    pthread_mutex_unlock(&ep->mu);

    while (pend) {
        em_conn *c = pend;
        pend = c->pnext;
        flush_conn(c);
        conn_unref(c);
    }
    while (cr) {
        struct connect_req *r = cr;
        cr = r->next;
        if (stopping) {
            if (r->cb) r->cb(NULL, EM_ESTATE, r->arg);
        } else {
            start_connect(ep, r);
        }
        em__free(r);
    }
    if (!stopping) return;
    for (struct listener *l = ep->listeners; l; l = l->next)
        if (!uv_is_closing((uv_handle_t *)&l->tcp)) uv_close((uv_handle_t *)&l->tcp, NULL);
    for (em_conn *c = ep->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing)
            conn_close(c, 0, 0, "endpoint stopped");
        else if (!uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
    uv_close((uv_handle_t *)&ep->wake, NULL);
}

static void *loop_main(void *arg)
{
    em_endpoint *ep = arg;
    uv_run(&ep->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- public API --------------------------------------------------------------------------- */
int em_endpoint_new(const em_endpoint_config *cfg, em_endpoint **out)
{
    *out = NULL;
    if (!cfg) return em__set_error(EM_EINVAL, "em_endpoint_new: no configuration");
    em_endpoint *ep = em__calloc(1, sizeof *ep);
    if (!ep) return em__set_error(EM_ENOMEM, "em_endpoint_new: out of memory");
    ep->cfg = *cfg;
    if (!ep->cfg.max_frame) ep->cfg.max_frame = EM_FRAME_DEFAULT_MAX;
    if (ep->cfg.max_frame < EM_FRAME_HEADER_SIZE) ep->cfg.max_frame = EM_FRAME_HEADER_SIZE;
    if (!ep->cfg.handshake_timeout_ms) ep->cfg.handshake_timeout_ms = 10000;
    if (!ep->cfg.max_send_queue) ep->cfg.max_send_queue = 2 * ep->cfg.max_frame;
    ep->app_id = em__strdup(cfg->app_id ? cfg->app_id : "");
    if (cfg->secret && *cfg->secret) {
        ep->secret = em__strdup(cfg->secret);
        ep->secret_len = strlen(cfg->secret);
    }
    int rc = 0;
    if (!ep->app_id || (cfg->secret && *cfg->secret && !ep->secret))
        rc = EM_ENOMEM;
    else if (ep->secret && (rc = em_auth_init()) < 0) {
    } else if ((rc = uv_loop_init(&ep->loop)) < 0) {
        rc = em__set_error(rc, "cannot create an event loop: %s", uv_strerror(rc));
    } else if ((rc = uv_async_init(&ep->loop, &ep->wake, on_wake)) < 0) {
        uv_loop_close(&ep->loop);
        rc = em__set_error(rc, "cannot create the loop wake-up: %s", uv_strerror(rc));
    }
    if (rc < 0) {
        if (rc == EM_ENOMEM) em__set_error(rc, "em_endpoint_new: out of memory");
        em__free(ep->app_id);
        em__free(ep->secret);
        em__free(ep);
        return rc;
    }
    ep->wake.data = ep;
    atomic_init(&ep->refused, 0);
    pthread_mutex_init(&ep->mu, NULL);
    *out = ep;
    return 0;
}

int em_endpoint_listen(em_endpoint *ep, const char *host, int port, int *bound_port)
{
    if (bound_port) *bound_port = 0;
    if (ep->started) return em__set_error(EM_ESTATE, "em_endpoint_listen after start");
    struct sockaddr_storage sa;
    int rc = resolve(host, port, &sa);
    if (rc < 0) return rc;
    struct listener *l = em__calloc(1, sizeof *l);
    if (!l) return em__set_error(EM_ENOMEM, "out of memory");
    uv_tcp_init(&ep->loop, &l->tcp);
    l->tcp.data = ep;
    l->next = ep->listeners;
    ep->listeners = l; /* closed by stop / free from now on */
    rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&sa, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection);
    if (rc < 0)
        return em__set_error(rc, "cannot listen on %s:%d: %s", host ? host : "*", port,
                             uv_strerror(rc));
    struct sockaddr_storage got;
    int len = sizeof got;
    if (bound_port && uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&got, &len) == 0)
        *bound_port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                      : ((struct sockaddr_in *)&got)->sin_port);
    return 0;
}

int em_endpoint_start(em_endpoint *ep)
{
    if (ep->started) return em__set_error(EM_ESTATE, "endpoint already started");
    int rc = pthread_create(&ep->thread, NULL, loop_main, ep);
    if (rc != 0) return em__set_error(-rc, "cannot start the loop thread: %s", strerror(rc));
    ep->started = 1;
    return 0;
}

int em_endpoint_connect(em_endpoint *ep, const char *host, int port, em_connect_fn cb, void *arg)
{
    struct connect_req *r = em__calloc(1, sizeof *r);
    if (!r) return em__set_error(EM_ENOMEM, "out of memory");
    int rc = resolve(host, port, &r->addr);
    if (rc < 0) {
        em__free(r);
        return rc;
    }
    addr_name((struct sockaddr *)&r->addr, r->peer, sizeof r->peer);
    r->cb = cb;
    r->arg = arg;
    pthread_mutex_lock(&ep->mu);
    if (!ep->started || ep->stopping) {
        pthread_mutex_unlock(&ep->mu);
        em__free(r);
        return em__set_error(EM_ESTATE, "connect to %s:%d: endpoint not running", host, port);
    }
    r->next = ep->connects;
    ep->connects = r;
    uv_async_send(&ep->wake);
    pthread_mutex_unlock(&ep->mu);
    return 0;
}

void em_endpoint_stop(em_endpoint *ep)
{
    if (!ep || ep->joined) return;
    pthread_mutex_lock(&ep->mu);
    ep->stopping = 1;
    if (ep->started) uv_async_send(&ep->wake);
    pthread_mutex_unlock(&ep->mu);
    if (!ep->started) {
        /* Never ran: run the loop here once to close what listen created. */
        on_wake(&ep->wake);
        uv_run(&ep->loop, UV_RUN_DEFAULT);
    } else {
        pthread_join(ep->thread, NULL);
    }
    ep->joined = 1;
    uv_loop_close(&ep->loop);
}

void em_endpoint_free(em_endpoint *ep)
{
    if (!ep) return;
    em_endpoint_stop(ep);
    while (ep->listeners) {
        struct listener *l = ep->listeners;
        ep->listeners = l->next;
        em__free(l);
    }
    pthread_mutex_destroy(&ep->mu);
    em__free(ep->app_id);
    em__free(ep->secret);
    em__free(ep);
}

uint64_t em_endpoint_refused(const em_endpoint *ep)
{
    return atomic_load(&((em_endpoint *)ep)->refused);
}

/* Puts c on the loop's to-do list (c->mu held by the caller, who saw it not closed). */
static void schedule(em_conn *c)
{
    if (c->pending) return;
    em_endpoint *ep = c->ep;
    pthread_mutex_lock(&ep->mu);
    if (!ep->stopping) {
        c->pending = 1;
        atomic_fetch_add(&c->refs, 1);
        c->pnext = ep->pending;
        ep->pending = c;
        uv_async_send(&ep->wake);
    }
    pthread_mutex_unlock(&ep->mu);
}

int em_conn_send(em_conn *c, int type, const void *msg)
{
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    size_t before = c->outq.len;
    const char *name = em_msg_name(type) ? em_msg_name(type) : "?";
    if (c->closed || c->close_req || !c->ready) {
        rc = em__set_error(EM_ESTATE, "send %s to %s: connection %s", name, c->peer,
                           !c->ready && !c->closed ? "not open" : "closed");
    } else if ((rc = em_msg_encode(&c->outq, type, msg)) < 0) {
    } else if (c->outq.len - before > c->ep->cfg.max_frame) {
        c->outq.len = before;
        rc = em__set_error(EM_ETOOBIG, "%s to %s: frame over ember.rpc.message.maxSize (%zu)", name,
                           c->peer, c->ep->cfg.max_frame);
    } else if (c->queued > 0 && c->queued + (c->outq.len - before) > c->ep->cfg.max_send_queue) {
        c->outq.len = before;
        rc = em__set_error(-EAGAIN, "send queue to %s full (%zu bytes)", c->peer, c->queued);
    } else {
        c->queued += c->outq.len - before;
        schedule(c);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void em_conn_close(em_conn *c)
{
    pthread_mutex_lock(&c->mu);
    if (!c->closed && !c->close_req) {
        c->close_req = 1;
        schedule(c);
    }
    pthread_mutex_unlock(&c->mu);
}

const char *em_conn_peer(const em_conn *c)
{
    return c->peer;
}

int em_conn_peer_role(const em_conn *c)
{
    return c->peer_role;
}

const char *em_conn_peer_app_id(const em_conn *c)
{
    return c->peer_app_id ? c->peer_app_id : "";
}

int em_conn_is_initiator(const em_conn *c)
{
    return c->initiator;
}

void em_conn_retain(em_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void em_conn_release(em_conn *c)
{
    if (c) conn_unref(c);
}
