/* Blocking-socket connections (see handshake.h): non-blocking sockets driven with poll(2) so
 * that every read, write and connect honours a deadline, frames read one at a time (header
 * first, so an oversize length is refused before anything is allocated), and the connection
 * handshake of endpoint.c written as straight-line code for threads that own their socket.
 *
 * Factored out for the block transfer service and the block fetcher: endpoint.c's handshake is
 * a state machine of its libuv loop and cannot run on a plain thread; its behaviour is
 * unchanged, and the two speak the same bytes (the order of frames is the one in
 * endpoint.h).
 *
 * Thread rule: any thread; no state. The secret is never logged or put in a message.
 */
#include "net/handshake.h"

#include "net/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int64_t em_sock_deadline(int64_t ms)
{
    return ms < 0 ? -1 : em__now_ms() + ms;
}

int em_sock_wait(int fd, short events, int64_t deadline, const char *what, const char *peer)
{
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - em__now_ms();
            if (left <= 0)
                return em__set_error(-ETIMEDOUT, "%s %s: timed out", what, peer ? peer : "?");
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) {
            int e = errno;
            return em__set_error(-e, "%s %s: poll: %s", what, peer ? peer : "?", strerror(e));
        }
    }
}

void em_sock_peer_name(int fd, char *out, size_t n)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
            port = ntohs(s4->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&sa;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
            port = ntohs(s6->sin6_port);
        }
    }
    snprintf(out, n, "%s:%d", ip, port);
}

int em_sock_connect(const char *host, int port, int64_t deadline, int *fd_out)
{
    *fd_out = -1;
    if (port <= 0 || port > 65535)
        return em__set_error(EM_EINVAL, "connect to %s:%d: port out of range", host ? host : "",
                             port);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(host && *host ? host : "127.0.0.1", ps, &hints, &res);
    if (g != 0 || !res)
        return em__set_error(EM_EINVAL, "cannot resolve host '%s': %s", host ? host : "",
                             gai_strerror(g));
    int rc = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            int e = errno;
            rc = em__set_error(-e, "connect to %s:%d: socket: %s", host, port, strerror(e));
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            *fd_out = fd;
            rc = 0;
            break;
        }
        if (errno == EINPROGRESS) {
            char name[300];
            snprintf(name, sizeof name, "%s:%d", host, port);
            rc = em_sock_wait(fd, POLLOUT, deadline, "connect to", name);
            if (rc == 0) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err == 0) {
                    *fd_out = fd;
                    break;
                }
                rc = em__set_error(-err, "connect to %s:%d: %s", host, port, strerror(err));
            }
        } else {
            int e = errno;
            rc = em__set_error(-e, "connect to %s:%d: %s", host, port, strerror(e));
        }
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

int em_sock_write_all(int fd, const void *p, size_t n, int flags, int64_t deadline,
                      const char *peer)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = send(fd, q, n, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            q += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = em_sock_wait(fd, POLLOUT, deadline, "writing to", peer);
            if (rc) return rc;
            continue;
        }
        int e = w < 0 ? errno : EPIPE;
        return em__set_error(-e, "writing to %s: %s", peer ? peer : "?", strerror(e));
    }
    return 0;
}

/* Reads exactly n bytes: 0, 1 when eof_ok and the peer closed before the first byte, or an
 * error. */
static int read_exact(int fd, void *p, size_t n, int eof_ok, int64_t deadline, const char *peer)
{
    uint8_t *q = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, q + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0) {
            if (got == 0 && eof_ok) return 1;
            return em__set_error(-ECONNRESET, "%s closed the connection", peer ? peer : "?");
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = em_sock_wait(fd, POLLIN, deadline, "reading from", peer);
            if (rc) return rc;
            continue;
        }
        int e = errno;
        return em__set_error(-e, "reading from %s: %s", peer ? peer : "?", strerror(e));
    }
    return 0;
}

int em_sock_read_exact(int fd, void *p, size_t n, int64_t deadline, const char *peer)
{
    return read_exact(fd, p, n, 0, deadline, peer);
}

int em_sock_set_blocking(int fd, int64_t timeout_ms)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        return em__set_error(-e, "fcntl: %s", strerror(e));
    }
    struct timeval tv = {.tv_sec = (time_t)(timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return 0;
}

int em_sock_recv_all(int fd, void *p, size_t n, const char *peer)
{
    uint8_t *q = p;
    while (n > 0) {
        ssize_t r = recv(fd, q, n, MSG_WAITALL);
        if (r > 0) {
            q += r;
            n -= (size_t)r;
        } else if (r == 0) {
            return em__set_error(-ECONNRESET, "%s closed the connection", peer ? peer : "?");
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return em__set_error(-ETIMEDOUT, "reading from %s: timed out", peer ? peer : "?");
        } else if (errno != EINTR) {
            int e = errno;
            return em__set_error(-e, "reading from %s: %s", peer ? peer : "?", strerror(e));
        }
    }
    return 0;
}

int em_sock_read_msg(int fd, em_buf *buf, size_t max_frame, int64_t deadline, const char *peer,
                     em_msg *msg)
{
    uint8_t hdr[EM_FRAME_HEADER_SIZE];
    int rc = read_exact(fd, hdr, sizeof hdr, 1, deadline, peer);
    if (rc == 1) return EM_DONE; /* closed cleanly between frames */
    if (rc < 0) return rc;
    uint32_t length =
        (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    uint16_t version = (uint16_t)(hdr[4] | hdr[5] << 8);
    if (length < 4 || (uint64_t)length + 4 > max_frame)
        return em__set_error(EM_EFORMAT,
                             "frame from %s: length %u is outside [4, %zu] "
                             "(ember.rpc.message.maxSize)",
                             peer ? peer : "?", length, max_frame - 4);
    if (version != EM_PROTO_VERSION)
        return em__set_error(EM_EFORMAT,
                             "frame from %s: protocol version %u, this process speaks "
                             "version %u",
                             peer ? peer : "?", version, EM_PROTO_VERSION);
    buf->len = 0;
    if (em_buf_reserve(buf, (size_t)length + 4))
        return em__set_error(EM_ENOMEM, "frame of %u bytes from %s", length, peer ? peer : "?");
    memcpy(buf->data, hdr, sizeof hdr);
    rc = read_exact(fd, buf->data + sizeof hdr, (size_t)length + 4 - sizeof hdr, 0, deadline, peer);
    if (rc) return rc;
    buf->len = (size_t)length + 4;
    rc = em_msg_decode(buf->data, buf->len, max_frame, msg);
    if (rc) return em__error_context(rc, "frame from %s", peer ? peer : "?");
    return EM_ROW;
}

int em_sock_send_msg(int fd, int type, const void *msg, int flags, int64_t deadline,
                     const char *peer)
{
    em_buf b = EM_BUF_INIT;
    int rc = em_msg_encode(&b, type, msg);
    if (rc == 0) rc = em_sock_write_all(fd, b.data, b.len, flags, deadline, peer);
    em_buf_free(&b);
    return rc;
}

/* ---- the handshake ------------------------------------------------------------------------ */

static int refuse(int fd, const char *peer, int64_t deadline, const char *why)
{
    em_msg_auth_result r = {.ok = 0, .reason = em_str_c(why)};
    /* Best effort: the peer may already be gone. */
    int64_t soon = em_sock_deadline(1000);
    em_sock_send_msg(fd, EM_MSG_AUTH_RESULT, &r, 0,
                     deadline >= 0 && deadline < soon ? deadline : soon, peer);
    return em__set_error(EM_EACCES, "authentication with %s refused: %s", peer, why);
}

/* Reads the next handshake message, which must be of type want; an auth_result{0} from the
 * peer is a refusal. */
static int expect(int fd, em_buf *buf, const em_handshake_config *cfg, const char *peer, int want,
                  em_msg *m)
{
    int rc = em_sock_read_msg(fd, buf, cfg->max_frame, cfg->deadline, peer, m);
    if (rc == EM_DONE)
        return em__set_error(-ECONNRESET, "%s closed the connection during the handshake", peer);
    if (rc < 0) return rc;
    if (m->type == EM_MSG_AUTH_RESULT && !m->u.auth_result.ok)
        return em__set_error(EM_EACCES, "refused by %s: %.*s", peer,
                             (int)m->u.auth_result.reason.len, m->u.auth_result.reason.p);
    if (m->type != want) {
        const char *n = em_msg_name(m->type);
        return em__set_error(EM_EFORMAT, "unexpected %s message from %s during the handshake",
                             n ? n : "unknown", peer);
    }
    return 0;
}

static int send_proof(int fd, const em_handshake_config *cfg, const char *peer,
                      const uint8_t *own_nonce, const uint8_t *peer_nonce)
{
    uint8_t mac[EM_AUTH_MAC_SIZE];
    int rc = em_auth_proof(cfg->secret, strlen(cfg->secret),
                           cfg->initiator ? EM_AUTH_INITIATOR : EM_AUTH_ACCEPTOR, cfg->role,
                           peer_nonce, own_nonce, mac);
    if (rc < 0) return rc;
    em_msg_auth_response r = {.mac = {mac, sizeof mac}};
    return em_sock_send_msg(fd, EM_MSG_AUTH_RESPONSE, &r, 0, cfg->deadline, peer);
}

int em_sock_handshake(int fd, const em_handshake_config *cfg, const char *peer,
                      em_handshake_peer *out)
{
    memset(out, 0, sizeof *out);
    const char *secret = cfg->secret && *cfg->secret ? cfg->secret : NULL;
    em_handshake_config c = *cfg;
    c.secret = secret;
    if (!c.max_frame) c.max_frame = EM_FRAME_DEFAULT_MAX;
    uint8_t nonce[EM_AUTH_NONCE_SIZE], pnonce[EM_AUTH_NONCE_SIZE];
    int rc = 0;
    if (secret && ((rc = em_auth_init()) < 0 || (rc = em_auth_nonce(nonce)) < 0)) return rc;
    em_msg_hello h = {.version = EM_PROTO_VERSION,
                      .role = (uint8_t)c.role,
                      .app_id = em_str_c(c.app_id),
                      .nonce = {secret ? nonce : NULL, secret ? EM_AUTH_NONCE_SIZE : 0}};
    if ((rc = em_sock_send_msg(fd, EM_MSG_HELLO, &h, 0, c.deadline, peer)) < 0) return rc;
    em_buf buf = EM_BUF_INIT;
    em_msg m;
    if ((rc = expect(fd, &buf, &c, peer, EM_MSG_HELLO, &m)) < 0) goto out;
    const em_msg_hello *ph = &m.u.hello;
    if (ph->version != EM_PROTO_VERSION) {
        rc = em__set_error(EM_EFORMAT,
                           "protocol version mismatch with %s: it speaks %u, we speak %u", peer,
                           ph->version, EM_PROTO_VERSION);
        goto out;
    }
    if (ph->app_id.len >= sizeof out->app_id) {
        rc = em__set_error(EM_EFORMAT, "%s announced an app id of %u bytes", peer, ph->app_id.len);
        goto out;
    }
    out->role = ph->role;
    memcpy(out->app_id, ph->app_id.p, ph->app_id.len);
    int peer_has = ph->nonce.len > 0;
    if (!secret && !peer_has) goto out; /* open, no authentication */
    if (!secret) {
        rc = refuse(fd, peer, c.deadline,
                    "peer requires authentication and no secret is configured here");
        goto out;
    }
    if (!peer_has || ph->nonce.len != EM_AUTH_NONCE_SIZE) {
        rc = refuse(fd, peer, c.deadline,
                    peer_has ? "peer nonce has a wrong length" : "peer sent no authentication");
        goto out;
    }
    memcpy(pnonce, ph->nonce.p, EM_AUTH_NONCE_SIZE);
    if (c.initiator && (rc = send_proof(fd, &c, peer, nonce, pnonce)) < 0) goto out;
    if ((rc = expect(fd, &buf, &c, peer, EM_MSG_AUTH_RESPONSE, &m)) < 0) goto out;
    rc = em_auth_check(secret, strlen(secret), c.initiator ? EM_AUTH_ACCEPTOR : EM_AUTH_INITIATOR,
                       out->role, nonce, pnonce, EM_AUTH_NONCE_SIZE, m.u.auth_response.mac.p,
                       m.u.auth_response.mac.len);
    if (rc < 0) {
        rc = refuse(fd, peer, c.deadline, "wrong proof of the secret");
        goto out;
    }
    if (c.initiator) {
        rc = expect(fd, &buf, &c, peer, EM_MSG_AUTH_RESULT, &m);
    } else {
        em_msg_auth_result ok = {.ok = 1, .reason = em_str_c("")};
        if ((rc = send_proof(fd, &c, peer, nonce, pnonce)) == 0)
            rc = em_sock_send_msg(fd, EM_MSG_AUTH_RESULT, &ok, 0, c.deadline, peer);
    }
out:
    em_buf_free(&buf);
    return rc;
}
