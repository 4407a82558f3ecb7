/* Shared-secret mutual authentication of a connection (ember.authenticate.secret), as pure
 * functions: the endpoints of src/net move the bytes in Hello / AuthResponse / AuthResult
 * frames; this computes and checks the proofs. HMAC-SHA256 from libsodium.
 *
 * Handshake (both sides, after the version check of Hello):
 *
 *   initiator (connects)                         acceptor (listens)
 *   Hello{role_i, nonce_i}        ------->
 *                                 <-------       Hello{role_a, nonce_a}
 *   AuthResponse{proof_i}         ------->       checks proof_i, refuses and logs if wrong
 *                                 <-------       AuthResponse{proof_a}
 *   checks proof_a                               then AuthResult{ok}
 *
 *   proof = HMAC-SHA256(secret, "ember-auth-v1" || u8 direction || u8 sender role
 *                               || 32-byte receiver nonce || 32-byte sender nonce)
 *   direction: 1 when the sender is the initiator, 2 when it is the acceptor.
 *
 * Each side proves the secret over the other's fresh nonce (no replay), and the direction and
 * role bytes keep a proof from being reflected back to its author on another connection.
 * Verification is constant-time. Thread rule: any thread; no state.
 */
#ifndef EMBER_NET_AUTH_H
#define EMBER_NET_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define EM_AUTH_NONCE_SIZE 32
#define EM_AUTH_MAC_SIZE   32

enum em_auth_dir { EM_AUTH_INITIATOR = 1, EM_AUTH_ACCEPTOR = 2 };

/* Initialises libsodium once (idempotent, any thread). 0 or EM_EINTERNAL. */
int em_auth_init(void);
/* Fills out with EM_AUTH_NONCE_SIZE random bytes. 0 or EM_EINTERNAL. */
int em_auth_nonce(uint8_t out[EM_AUTH_NONCE_SIZE]);
/* Plain HMAC-SHA256(key, data) into out (32 bytes). 0 or EM_EINTERNAL. */
int em_auth_hmac(const void *key, size_t key_len, const void *data, size_t data_len,
                 uint8_t out[EM_AUTH_MAC_SIZE]);
/* The sender's proof: dir and role are the sender's, peer_nonce the receiver's Hello nonce,
 * own_nonce the sender's. EM_EINVAL for an empty secret. */
int em_auth_proof(const void *secret, size_t secret_len, int dir, int role,
                  const uint8_t peer_nonce[EM_AUTH_NONCE_SIZE],
                  const uint8_t own_nonce[EM_AUTH_NONCE_SIZE], uint8_t out[EM_AUTH_MAC_SIZE]);
/* Checks a proof received from the peer (peer_dir, peer_role: the sender's; own_nonce: the one
 * this side sent; peer_nonce: the sender's). 0 when valid, EM_EACCES (message names the peer
 * role and the reason: wrong length or wrong secret) otherwise. Constant-time comparison. */
int em_auth_check(const void *secret, size_t secret_len, int peer_dir, int peer_role,
                  const uint8_t own_nonce[EM_AUTH_NONCE_SIZE], const uint8_t *peer_nonce,
                  size_t peer_nonce_len, const uint8_t *mac, size_t mac_len);

#endif
