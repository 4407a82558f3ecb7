/* Framed control-plane connections on libuv: an em_endpoint owns one event loop on its own
 * thread, listens and connects over TCP, runs the handshake (version check and, with a secret,
 * the mutual challenge-response of auth.h) on every connection, then delivers decoded
 * messages to callbacks and sends messages queued from any thread.
 *
 * Handshake on every connection (frames of proto.h, messages of messages.def):
 *
 *   initiator (connect)                          acceptor (listen)
 *   hello{version, role, app_id, nonce}  --->    <---  hello{version, role, app_id, nonce}
 *   with a secret on both sides (nonce = 32 random bytes; empty without a secret):
 *   auth_response{proof_i}               --->    checks proof_i; wrong: auth_result{0}, close
 *                                        <---    auth_response{proof_a}, auth_result{1, ""}
 *   checks proof_a, waits for auth_result{1}
 *
 * A hello of another version, a frame of another version, a peer that carries a nonce when
 * this side has no secret (or none when it has one), a wrong proof, an unexpected message or a
 * malformed / oversize frame closes THAT connection with an EM_LOG WARN line naming the peer
 * address; the endpoint and its other connections carry on.
 *
 * Threads: callbacks (on_open, on_message, on_close, connect callbacks) run on the loop thread
 * and must not block. em_conn_send, em_conn_close, em_conn_retain / em_conn_release,
 * em_endpoint_connect, em_endpoint_refused: any thread. em_endpoint_new / listen / start /
 * stop / free: the owner's thread, never the loop thread.
 *
 * Lifetimes: a connection is valid inside its callbacks; to use it elsewhere (another thread,
 * after on_close) take a reference with em_conn_retain (from a callback) and drop it with
 * em_conn_release. A closed connection stays valid while referenced; em_conn_send on it
 * returns EM_ESTATE. Release every reference before em_endpoint_free.
 */
#ifndef EMBER_NET_ENDPOINT_H
#define EMBER_NET_ENDPOINT_H

#include "net/proto.h"

#include <stddef.h>
#include <stdint.h>

typedef struct em_endpoint em_endpoint;
typedef struct em_conn em_conn;

/* Handshake done (both directions): the connection can send and receive. Loop thread. */
typedef void (*em_conn_open_fn)(em_conn *c, void *user);
/* One decoded message; its views borrow from the frame and die when this returns. */
typedef void (*em_conn_msg_fn)(em_conn *c, const em_msg *msg, void *user);
/* An open connection closed: code 0 for a clean end (peer closed, em_conn_close, endpoint
 * stopped), or the EM_E* / -errno of the failure; reason in words. Called once per on_open. */
typedef void (*em_conn_close_fn)(em_conn *c, int code, const char *reason, void *user);
/* Outcome of em_endpoint_connect, exactly once: status 0 with c open (on_open has run), or a
 * negative code with c NULL (connect failed, refused, handshake failed, endpoint stopped). */
typedef void (*em_connect_fn)(em_conn *c, int status, void *arg);

typedef struct em_endpoint_config {
    int role;                      /* EM_ROLE_* announced in hello */
    const char *app_id;            /* announced in hello; NULL = "" (copied) */
    const char *secret;            /* ember.authenticate.secret; NULL or "" = no authentication */
    size_t max_frame;              /* ember.rpc.message.maxSize; 0 = EM_FRAME_DEFAULT_MAX */
    size_t max_send_queue;         /* bytes queued + in flight per connection; 0 = 2 * max_frame */
    unsigned handshake_timeout_ms; /* connect + handshake deadline; 0 = 10000 */
    em_conn_open_fn on_open;       /* each may be NULL */
    em_conn_msg_fn on_message;
    em_conn_close_fn on_close;
    void *user;
} em_endpoint_config;

/* Creates an endpoint (loop not running yet). 0, EM_EINVAL or EM_ENOMEM. */
int em_endpoint_new(const em_endpoint_config *cfg, em_endpoint **out);
/* Listens on host:port (numeric or resolvable; port 0 = ephemeral, *bound_port gets the real
 * one; bound_port may be NULL). Before em_endpoint_start only. 0 or -errno / EM_EINVAL. */
int em_endpoint_listen(em_endpoint *ep, const char *host, int port, int *bound_port);
/* Starts the loop thread. 0, EM_ESTATE (already started) or -errno. */
int em_endpoint_start(em_endpoint *ep);
/* Connects to host:port after start; cb (may be NULL) reports the outcome on the loop thread.
 * Any thread (the name is resolved on the calling thread). On a non-zero return cb is never
 * called: EM_EINVAL (unresolvable host), EM_ESTATE (not running), EM_ENOMEM. */
int em_endpoint_connect(em_endpoint *ep, const char *host, int port, em_connect_fn cb, void *arg);
/* Closes every listener and connection (on_close with code 0, "endpoint stopped"; pending
 * connects get EM_ESTATE), joins the loop thread. Idempotent. */
void em_endpoint_stop(em_endpoint *ep);
/* Stops if needed and frees the endpoint. NULL is a no-op. */
void em_endpoint_free(em_endpoint *ep);
/* Connections refused or failed during the handshake so far (both directions). Any thread. */
uint64_t em_endpoint_refused(const em_endpoint *ep);

/* Queues one message (type of messages.def, msg the em_msg_<name> struct, copied) on an open
 * connection. Any thread; messages from one thread arrive in order. 0, EM_ESTATE (closed or
 * not yet open), EM_ETOOBIG (frame over max_frame), -EAGAIN (send queue full: max_send_queue
 * bytes not yet written), EM_EINVAL, EM_ENOMEM. */
int em_conn_send(em_conn *c, int type, const void *msg);
/* Closes the connection after what is queued (on_close with code 0). Any thread. */
void em_conn_close(em_conn *c);
/* "ip:port" of the peer. Any thread while referenced. */
const char *em_conn_peer(const em_conn *c);
/* The peer's hello: role (EM_ROLE_*) and app id (NUL-terminated). Valid once open. */
int em_conn_peer_role(const em_conn *c);
const char *em_conn_peer_app_id(const em_conn *c);
/* 1 for a connection this side initiated, 0 for an accepted one. */
int em_conn_is_initiator(const em_conn *c);
/* References: retain from a callback (or while holding another reference); release anywhere. */
void em_conn_retain(em_conn *c);
void em_conn_release(em_conn *c);

#endif
