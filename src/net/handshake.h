/* Blocking-socket connections of src/net: connect with a deadline, whole reads and writes with
 * a deadline, one frame at a time, and the connection handshake (hello + version check, and
 * with a secret the mutual challenge-response of auth.h) run synchronously on the calling
 * thread. The block transfer service (block_server.c) and the shuffle's block fetcher use
 * these; endpoint.c runs the same handshake as a state machine on its libuv loop, so a
 * blocking peer and an endpoint peer understand each other:
 *
 *   initiator                                    acceptor
 *   hello{version, role, app_id, nonce}  --->    <---  hello{version, role, app_id, nonce}
 *   with a secret on both sides:
 *   auth_response{proof_i}               --->    checks proof_i; wrong: auth_result{0}, refused
 *                                        <---    auth_response{proof_a}, auth_result{1, ""}
 *   checks proof_a, reads auth_result{1}
 *
 * Deadlines are absolute times of em__now_ms(); a negative deadline means none. Errors: 0 or a
 * negative code with a message naming the peer: -ETIMEDOUT (deadline passed), -ECONNRESET (the
 * peer closed the connection inside a frame or a write), other -errno, EM_EFORMAT (malformed
 * or oversize frame, wrong version, unexpected message), EM_EACCES (authentication refused,
 * by either side).
 *
 * Thread rule: any thread; a socket is used by one thread at a time.
 */
#ifndef EMBER_NET_HANDSHAKE_H
#define EMBER_NET_HANDSHAKE_H

#include "net/proto.h"

#include <stddef.h>
#include <stdint.h>

/* A deadline ms milliseconds from now (ms < 0: none). */
int64_t em_sock_deadline(int64_t ms);

/* Waits until fd is ready for events (POLLIN / POLLOUT) or the deadline passes. what and
 * peer name the wait in the -ETIMEDOUT message ("reading from", "127.0.0.1:7337"). */
int em_sock_wait(int fd, short events, int64_t deadline, const char *what, const char *peer);

/* Resolves host (numeric or a name) and connects a TCP socket (close-on-exec, TCP_NODELAY)
 * within the deadline. *fd set on success. */
int em_sock_connect(const char *host, int port, int64_t deadline, int *fd);

/* Writes all n bytes. flags: extra send(2) flags (MSG_MORE). */
int em_sock_write_all(int fd, const void *p, size_t n, int flags, int64_t deadline,
                      const char *peer);
/* Reads exactly n bytes. A connection closed before they are all in is -ECONNRESET. */
int em_sock_read_exact(int fd, void *p, size_t n, int64_t deadline, const char *peer);

/* Reads one frame into buf (replacing its content) and decodes it into *msg (views borrow from
 * buf). EM_ROW with a message; EM_DONE when the peer closed cleanly between frames; or an
 * error. The header is checked (length, max_frame, version) before the body is read. */
int em_sock_read_msg(int fd, em_buf *buf, size_t max_frame, int64_t deadline, const char *peer,
                     em_msg *msg);
/* Encodes and writes one message. */
int em_sock_send_msg(int fd, int type, const void *msg, int flags, int64_t deadline,
                     const char *peer);

typedef struct em_handshake_config {
    int role;           /* EM_ROLE_* announced in hello */
    const char *app_id; /* announced in hello; NULL = "" */
    const char *secret; /* ember.authenticate.secret; NULL or "" = no authentication */
    size_t max_frame;   /* ember.rpc.message.maxSize */
    int initiator;      /* 1: this side connected */
    int64_t deadline;
} em_handshake_config;

/* What the handshake learnt about the peer. */
typedef struct em_handshake_peer {
    int role;
    char app_id[256]; /* NUL-terminated; a longer app id is refused */
} em_handshake_peer;

/* Runs the handshake on a connected socket. 0 when the connection is open; otherwise the
 * connection must be closed (a refusal has been sent to the peer when that is possible). */
int em_sock_handshake(int fd, const em_handshake_config *cfg, const char *peer,
                      em_handshake_peer *out);

/* Makes fd blocking with send and receive timeouts of timeout_ms (no progress for that long:
 * the call fails with EAGAIN). The em_sock_* calls above keep working (they pass
 * MSG_DONTWAIT); bulk transfers can then block in one sendfile(2) or recv(2) per chunk instead
 * of a poll(2) per socket buffer. */
int em_sock_set_blocking(int fd, int64_t timeout_ms);

/* Reads exactly n bytes on a socket made blocking by em_sock_set_blocking (MSG_WAITALL: one
 * syscall for a large n). -ETIMEDOUT when the socket's timeout passes without progress,
 * -ECONNRESET when the peer closes first. */
int em_sock_recv_all(int fd, void *p, size_t n, const char *peer);

/* "ip:port" of the socket's peer into out. */
void em_sock_peer_name(int fd, char *out, size_t n);

#endif
