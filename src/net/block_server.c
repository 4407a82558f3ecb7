/* The block transfer service (see block_server.h for the protocol and guarantees).
 *
 * Design: one acceptor thread and one thread per connection, rather than the libuv loop of
 * endpoint.c. The handshake and requests run with poll(2) deadlines (handshake.h); then the
 * socket is made blocking with SO_SNDTIMEO / SO_RCVTIMEO of ember.network.timeout, and the
 * answer to a request is a frame (corked with MSG_MORE) and one blocking sendfile(2) straight
 * from the page cache to the socket: no user-space copy, no buffering, one syscall for as much
 * as the peer takes. On a loop thread that sendfile would either block the loop or go through
 * libuv's file thread pool plus a hand-off per chunk; a thread per connection keeps the data
 * path this one call, which is what reaches well over 1 GB/s on loopback most simply
 * (bench/fetch_bench.c: 3-5 GB/s raw on a 2-CPU VM). Connections are few — a fetcher holds at
 * most one per server per running reduce task — and capped at MAX_CONNS; thread stacks are
 * small. SIGPIPE is blocked in connection threads (sendfile has no MSG_NOSIGNAL).
 *
 * Threads and ownership:
 *   acceptor     accepts, starts a connection thread per socket, joins finished ones (woken
 *                through wake_fd), exits on stop.
 *   connection   handshake, then request after request; on a bad frame, an error or the end
 *                it logs (bad input at WARN, naming the peer), closes its socket and moves
 *                itself to s->finished.
 *   mu guards    dirs, locate, live, finished, nlive, stopping. A socket is closed only by
 *                its own thread, under mu, so em_block_server_stop can shutdown(2) the live
 *                ones (waking their polls and blocked calls) without racing a close.
 *
 * Connection lifecycle:
 *   ACCEPTED --handshake ok--> SERVING --EOF / error / bad frame / idle timeout--> FINISHED
 *       |                                                                              ^
 *       +--handshake failed / refused (logged, counted in refused)---------------------+
 *   FINISHED --joined by the acceptor or by stop--> freed
 */
#include "net/block_server.h"

#include "base/base.h"
#include "net/handshake.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS          512
#define THREAD_STACK       (256u << 10)
#define HANDSHAKE_MAX_MS   10000
#define SENDFILE_CHUNK     ((size_t)1 << 30)
#define MAX_RANGE_REDUCERS (1 << 20)

typedef struct served_dir {
    char *app_id;
    int exec_id;
    char *dir;
    struct served_dir *next;
} served_dir;

typedef struct srv_conn {
    em_block_server *s;
    int fd;
    pthread_t thread;
    char peer[64];
    struct srv_conn *next;
} srv_conn;

struct em_block_server {
    int listen_fd, wake_fd, port;
    pthread_t acceptor;
    char *secret;
    size_t max_frame;
    int64_t timeout_ms, handshake_ms;
    atomic_uint_fast64_t refused;
    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a connection finished */
    int stopping;
    em_block_locate_fn locate;
    served_dir *dirs;
    srv_conn *live, *finished;
    int nlive;
};

static void wake(em_block_server *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->wake_fd, &one, sizeof one);
    (void)w; /* an eventfd write only fails when the counter would overflow */
}

/* ---- one request ------------------------------------------------------------------------ */

/* sendfile(2) has no MSG_NOSIGNAL: a fetcher that goes away mid-block raises SIGPIPE in the
 * sending thread. Connection threads block SIGPIPE (it stays pending instead of killing the
 * process, whatever the process's disposition) and take the pending one after an EPIPE. */
static void block_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void drain_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) == SIGPIPE) {
    }
}

/* Sends length bytes of fd from offset: sendfile, falling back to read + send where the file
 * system cannot splice. The socket is blocking with SO_SNDTIMEO: one sendfile call moves as
 * much as the peer takes, and only no progress for ember.network.timeout fails (EAGAIN). */
static int send_range(em_block_server *s, srv_conn *c, int fd, uint64_t offset, uint64_t length)
{
    off_t off = (off_t)offset;
    uint64_t left = length;
    int64_t deadline = em_sock_deadline(s->timeout_ms);
    bool copy = false;
    uint8_t *buf = NULL;
    int rc = 0;
    while (left > 0 && rc == 0) {
        size_t want = (size_t)EM_MIN(left, (uint64_t)SENDFILE_CHUNK);
        ssize_t n;
        if (!copy) {
            n = sendfile(c->fd, fd, &off, want);
            if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
                copy = true;
                continue;
            }
        } else {
            if (!buf && !(buf = em__malloc(1 << 16))) return EM_ENOMEM;
            ssize_t r = pread(fd, buf, EM_MIN(want, (size_t)1 << 16), off);
            if (r <= 0) {
                n = r < 0 ? -1 : 0;
            } else {
                rc = em_sock_write_all(c->fd, buf, (size_t)r, 0, deadline, c->peer);
                n = r;
                off += r;
            }
        }
        if (n > 0) {
            left -= (uint64_t)n;
            deadline = em_sock_deadline(s->timeout_ms);
        } else if (n == 0) {
            rc = em__set_error(EM_EIO, "data file shrank while sending it to %s", c->peer);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = em__set_error(-ETIMEDOUT, "sending blocks to %s: no progress for %lld ms", c->peer,
                               (long long)s->timeout_ms);
        } else if (errno != EINTR) {
            int e = errno;
            if (e == EPIPE) drain_sigpipe();
            rc = em__set_error(-e, "sending blocks to %s: %s", c->peer, strerror(e));
        }
    }
    em__free(buf);
    return rc;
}

/* Answers one fetch_blocks. A refused request gets an error answer and the connection goes
 * on; only an I/O failure (the answer cannot be delivered) is returned. */
static int serve(em_block_server *s, srv_conn *c, const char *peer_app,
                 const em_msg_fetch_blocks *q)
{
    int status = 0;
    char msg[512] = "";
    char *dir = NULL;
    uint64_t *sums = NULL;
    em_block_range range = {.fd = -1};
    uint32_t nred = q->end_reducer - q->start_reducer;
    if (q->app_id.len != strlen(peer_app) || memcmp(q->app_id.p, peer_app, q->app_id.len) != 0) {
        status = EM_EACCES;
        snprintf(msg, sizeof msg, "this connection was opened for application '%s', not '%.*s'",
                 peer_app, (int)EM_MIN(q->app_id.len, 200u), q->app_id.p);
    } else if (q->shuffle_id > INT32_MAX || q->map_id > INT32_MAX || q->exec_id > INT32_MAX) {
        status = EM_EINVAL;
        snprintf(msg, sizeof msg, "shuffle %u map %u of executor %u: ids out of range",
                 q->shuffle_id, q->map_id, q->exec_id);
    } else if (q->start_reducer >= q->end_reducer || q->end_reducer > INT32_MAX ||
               nred > MAX_RANGE_REDUCERS || (size_t)nred * 8 + 256 > s->max_frame) {
        status = EM_EINVAL;
        snprintf(msg, sizeof msg, "shuffle %u map %u: bad reducer range [%u, %u)", q->shuffle_id,
                 q->map_id, q->start_reducer, q->end_reducer);
    }
    em_block_locate_fn locate = NULL;
    if (status == 0) {
        pthread_mutex_lock(&s->mu);
        locate = s->locate;
        for (served_dir *d = s->dirs; d; d = d->next)
            if (d->exec_id == (int)q->exec_id && strlen(d->app_id) == q->app_id.len &&
                memcmp(d->app_id, q->app_id.p, q->app_id.len) == 0) {
                dir = em__strdup(d->dir);
                if (!dir) status = EM_ENOMEM;
                break;
            }
        pthread_mutex_unlock(&s->mu);
        if (status) {
            snprintf(msg, sizeof msg, "out of memory");
        } else if (!dir) {
            status = EM_ESTATE;
            snprintf(msg, sizeof msg, "executor %u of application '%s' has no outputs here",
                     q->exec_id, peer_app);
        } else if (!locate) {
            status = EM_ESTATE;
            snprintf(msg, sizeof msg, "this block server has no block locator installed");
        }
    }
    if (status == 0 && !(sums = em__calloc(nred, sizeof *sums))) {
        status = EM_ENOMEM;
        snprintf(msg, sizeof msg, "out of memory");
    }
    if (status == 0) {
        range.checksums = sums;
        status = locate(dir, (int)q->shuffle_id, (int)q->map_id, (int)q->start_reducer,
                        (int)q->end_reducer, &range);
        if (status) snprintf(msg, sizeof msg, "%s", em_errmsg());
    }
    if (status)
        EM_LOG(EM_LOG_INFO, "blocks", "request %llu from %s refused: %s",
               (unsigned long long)q->req_id, c->peer, msg);
    em_msg_block_data a = {.req_id = q->req_id,
                           .status = status,
                           .size = status ? 0 : range.length,
                           .checksums = {(const uint8_t *)sums, status ? 0 : nred * 8},
                           .message = em_str_c(msg)};
    int64_t deadline = em_sock_deadline(s->timeout_ms);
    int rc =
        em_sock_send_msg(c->fd, EM_MSG_BLOCK_DATA, &a, status ? 0 : MSG_MORE, deadline, c->peer);
    if (rc == 0 && status == 0 && range.length > 0)
        rc = send_range(s, c, range.fd, range.offset, range.length);
    if (range.fd >= 0) close(range.fd);
    em__free(sums);
    em__free(dir);
    return rc;
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_finish(srv_conn *c)
{
    em_block_server *s = c->s;
    pthread_mutex_lock(&s->mu);
    srv_conn **pp = &s->live;
    while (*pp && *pp != c) pp = &(*pp)->next;
    if (*pp) *pp = c->next;
    s->nlive--;
    close(c->fd);
    c->fd = -1;
    c->next = s->finished;
    s->finished = c;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

static void *conn_main(void *arg)
{
    srv_conn *c = arg;
    em_block_server *s = c->s;
    block_sigpipe();
    em_handshake_config hc = {.role = EM_ROLE_EXECUTOR,
                              .app_id = "",
                              .secret = s->secret,
                              .max_frame = s->max_frame,
                              .initiator = 0,
                              .deadline = em_sock_deadline(s->handshake_ms)};
    em_handshake_peer peer;
    int rc = em_sock_handshake(c->fd, &hc, c->peer, &peer);
    if (rc == 0) rc = em_sock_set_blocking(c->fd, s->timeout_ms);
    if (rc) {
        atomic_fetch_add(&s->refused, 1);
        EM_LOG(EM_LOG_WARN, "blocks", "refused connection from %s: %s", c->peer, em_errmsg());
        conn_finish(c);
        return NULL;
    }
    EM_LOG(EM_LOG_DEBUG, "blocks", "fetcher %s of application '%s' connected", c->peer,
           peer.app_id);
    em_buf frame = EM_BUF_INIT;
    for (;;) {
        em_msg m;
        rc = em_sock_read_msg(c->fd, &frame, s->max_frame, em_sock_deadline(s->timeout_ms), c->peer,
                              &m);
        if (rc == EM_DONE) break;
        if (rc < 0) {
            if (rc == EM_EFORMAT) {
                atomic_fetch_add(&s->refused, 1);
                EM_LOG(EM_LOG_WARN, "blocks", "closing connection from %s: malformed frame: %s",
                       c->peer, em_errmsg());
            } else {
                EM_LOG(EM_LOG_INFO, "blocks", "closing connection from %s: %s", c->peer,
                       em_errmsg());
            }
            break;
        }
        if (m.type != EM_MSG_FETCH_BLOCKS) {
            atomic_fetch_add(&s->refused, 1);
            const char *n = em_msg_name(m.type);
            EM_LOG(EM_LOG_WARN, "blocks", "closing connection from %s: unexpected %s message",
                   c->peer, n ? n : "unknown");
            break;
        }
        if ((rc = serve(s, c, peer.app_id, &m.u.fetch_blocks)) != 0) {
            EM_LOG(EM_LOG_INFO, "blocks", "closing connection from %s: %s", c->peer, em_errmsg());
            break;
        }
        if (frame.cap > 64 * 1024) em_buf_free(&frame); /* do not keep a large frame's buffer */
    }
    em_buf_free(&frame);
    conn_finish(c);
    return NULL;
}

/* Joins and frees the finished connections (not under mu). */
static void reap(em_block_server *s)
{
    pthread_mutex_lock(&s->mu);
    srv_conn *f = s->finished;
    s->finished = NULL;
    pthread_mutex_unlock(&s->mu);
    while (f) {
        srv_conn *next = f->next;
        pthread_join(f->thread, NULL);
        em__free(f);
        f = next;
    }
}

static void accept_one(em_block_server *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            EM_LOG(EM_LOG_WARN, "blocks", "cannot accept a connection: %s", strerror(errno));
            poll(NULL, 0, 50); /* let descriptors free up rather than spin */
        }
        return;
    }
    srv_conn *c = em__calloc(1, sizeof *c);
    char peer[64];
    em_sock_peer_name(fd, peer, sizeof peer);
    pthread_mutex_lock(&s->mu);
    if (!c || s->stopping || s->nlive >= MAX_CONNS) {
        pthread_mutex_unlock(&s->mu);
        if (c)
            EM_LOG(EM_LOG_WARN, "blocks", "refusing connection from %s: %d connections open", peer,
                   MAX_CONNS);
        atomic_fetch_add(&s->refused, 1);
        close(fd);
        em__free(c);
        return;
    }
    c->s = s;
    c->fd = fd;
    memcpy(c->peer, peer, sizeof peer);
    int one = 1; /* answers are corked with MSG_MORE; what ends one must leave at once */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    int rc = pthread_create(&c->thread, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_unlock(&s->mu);
        EM_LOG(EM_LOG_WARN, "blocks", "cannot start a thread for %s: %s", peer, strerror(rc));
        close(fd);
        em__free(c);
        return;
    }
    c->next = s->live;
    s->live = c;
    s->nlive++;
    pthread_mutex_unlock(&s->mu);
}

static void *acceptor_main(void *arg)
{
    em_block_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->wake_fd, .events = POLLIN}};
        int n = poll(p, 2, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            EM_LOG(EM_LOG_ERROR, "blocks", "block server poll failed: %s", strerror(errno));
            break;
        }
        if (p[1].revents) {
            uint64_t v;
            ssize_t r = read(s->wake_fd, &v, sizeof v);
            (void)r;
            reap(s);
            pthread_mutex_lock(&s->mu);
            int stop = s->stopping;
            pthread_mutex_unlock(&s->mu);
            if (stop) break;
        }
        if (p[0].revents) accept_one(s);
    }
    return NULL;
}

/* ---- public API --------------------------------------------------------------------------- */

static int listen_on(em_block_server *s, const char *host, int port)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    int g = getaddrinfo(host && *host ? host : NULL, ps, &hints, &res);
    if (g != 0 || !res)
        return em__set_error(EM_EINVAL, "block server: cannot resolve '%s': %s", host ? host : "",
                             gai_strerror(g));
    int rc = 0, fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
        int e = errno;
        rc = em__set_error(-e, "block server: cannot listen on %s:%d: %s", host ? host : "*", port,
                           strerror(e));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return rc ? rc : em__set_error(EM_EINVAL, "block server: no address to listen on");
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    s->listen_fd = fd;
    return 0;
}

int em_block_server_start(const em_conf *conf, const char *host, int port, em_block_server **out)
{
    *out = NULL;
    if (port < 0 || port > 65535)
        return em__set_error(EM_EINVAL, "block server: port %d out of range", port);
    em_block_server *s = em__calloc(1, sizeof *s);
    if (!s) return em__set_error(EM_ENOMEM, "block server: out of memory");
    s->listen_fd = s->wake_fd = -1;
    const char *secret = conf ? em_conf_get_str(conf, "ember.authenticate.secret") : NULL;
    int64_t max = conf ? em_conf_get_bytes(conf, "ember.rpc.message.maxSize") : 0;
    int64_t timeout = conf ? em_conf_get_ms(conf, "ember.network.timeout") : 0;
    s->max_frame = max > 0 ? (size_t)max : EM_FRAME_DEFAULT_MAX;
    s->timeout_ms = timeout > 0 ? timeout : 120000;
    s->handshake_ms = EM_MIN(s->timeout_ms, (int64_t)HANDSHAKE_MAX_MS);
    atomic_init(&s->refused, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = 0;
    if (secret && *secret && !(s->secret = em__strdup(secret)))
        rc = em__set_error(EM_ENOMEM, "block server: out of memory");
    if (rc == 0) rc = listen_on(s, host, port);
    if (rc == 0 && (s->wake_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        int e = errno;
        rc = em__set_error(-e, "block server: eventfd: %s", strerror(e));
    }
    if (rc == 0) {
        int e = pthread_create(&s->acceptor, NULL, acceptor_main, s);
        if (e) rc = em__set_error(-e, "block server: cannot start a thread: %s", strerror(e));
    }
    if (rc) {
        if (s->listen_fd >= 0) close(s->listen_fd);
        if (s->wake_fd >= 0) close(s->wake_fd);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        em__free(s->secret);
        em__free(s);
        return rc;
    }
    EM_LOG(EM_LOG_INFO, "blocks", "block server listening on %s:%d%s", host ? host : "*", s->port,
           s->secret ? " (authentication on)" : "");
    *out = s;
    return 0;
}

int em_block_server_port(const em_block_server *s)
{
    return s->port;
}

void em_block_server_set_locator(em_block_server *s, em_block_locate_fn fn)
{
    pthread_mutex_lock(&s->mu);
    s->locate = fn;
    pthread_mutex_unlock(&s->mu);
}

int em_block_server_add_dir(em_block_server *s, const char *app_id, int exec_id, const char *dir)
{
    if (!app_id || !dir || !*dir)
        return em__set_error(EM_EINVAL, "block server: add_dir needs an app id and a directory");
    char *d = em__strdup(dir);
    if (!d) return em__set_error(EM_ENOMEM, "block server: out of memory");
    pthread_mutex_lock(&s->mu);
    for (served_dir *e = s->dirs; e; e = e->next)
        if (e->exec_id == exec_id && strcmp(e->app_id, app_id) == 0) {
            em__free(e->dir);
            e->dir = d;
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
    served_dir *e = em__calloc(1, sizeof *e);
    char *a = em__strdup(app_id);
    if (!e || !a) {
        pthread_mutex_unlock(&s->mu);
        em__free(e);
        em__free(a);
        em__free(d);
        return em__set_error(EM_ENOMEM, "block server: out of memory");
    }
    *e = (served_dir){.app_id = a, .exec_id = exec_id, .dir = d, .next = s->dirs};
    s->dirs = e;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int em_block_server_remove_app(em_block_server *s, const char *app_id)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (served_dir **pp = &s->dirs; *pp;) {
        served_dir *e = *pp;
        if (strcmp(e->app_id, app_id) == 0) {
            *pp = e->next;
            em__free(e->app_id);
            em__free(e->dir);
            em__free(e);
            n++;
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint64_t em_block_server_refused(const em_block_server *s)
{
    return atomic_load(&((em_block_server *)s)->refused);
}

void em_block_server_stop(em_block_server *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (srv_conn *c = s->live; c; c = c->next) shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    wake(s);
    pthread_join(s->acceptor, NULL);
    pthread_mutex_lock(&s->mu);
    while (s->live) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    reap(s);
    close(s->listen_fd);
    close(s->wake_fd);
    while (s->dirs) {
        served_dir *d = s->dirs;
        s->dirs = d->next;
        em__free(d->app_id);
        em__free(d->dir);
        em__free(d);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    em__free(s->secret);
    em__free(s);
}
