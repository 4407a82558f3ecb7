/* Shared-secret mutual challenge-response (ember.authenticate.secret): the proofs exchanged in
 * AuthResponse frames and their check. The protocol and its byte layout are described in
 * src/net/auth.h and docs/formats.md "Control-plane frames".
 *
 * Who calls it: the connection handshake of src/net on its loop thread (every pair: worker ->
 * master, driver -> master, executor -> driver, block fetches), and the tests. Any thread; no
 * state besides libsodium's one-time initialisation.
 *
 * Guarantees: a proof binds the secret, both fresh nonces, the sender's direction and role;
 * verification compares in constant time and never reveals which byte differed. The secret is
 * never logged or put in an error message.
 */
#include "net/auth.h"

#include "base/base.h"

#include <sodium.h>
#include <string.h>

#define AUTH_LABEL     "ember-auth-v1"
#define AUTH_LABEL_LEN (sizeof(AUTH_LABEL) - 1)

int em_auth_init(void)
{
    if (sodium_init() < 0) return em__set_error(EM_EINTERNAL, "libsodium failed to initialise");
    return 0;
}

int em_auth_nonce(uint8_t out[EM_AUTH_NONCE_SIZE])
{
    int rc = em_auth_init();
    if (rc) return rc;
    randombytes_buf(out, EM_AUTH_NONCE_SIZE);
    return 0;
}

int em_auth_hmac(const void *key, size_t key_len, const void *data, size_t data_len,
                 uint8_t out[EM_AUTH_MAC_SIZE])
{
    int rc = em_auth_init();
    if (rc) return rc;
    crypto_auth_hmacsha256_state st;
    if (crypto_auth_hmacsha256_init(&st, key, key_len) != 0 ||
        crypto_auth_hmacsha256_update(&st, data, data_len) != 0 ||
        crypto_auth_hmacsha256_final(&st, out) != 0)
        return em__set_error(EM_EINTERNAL, "HMAC-SHA256 failed");
    sodium_memzero(&st, sizeof st);
    return 0;
}

int em_auth_proof(const void *secret, size_t secret_len, int dir, int role,
                  const uint8_t peer_nonce[EM_AUTH_NONCE_SIZE],
                  const uint8_t own_nonce[EM_AUTH_NONCE_SIZE], uint8_t out[EM_AUTH_MAC_SIZE])
{
    if (!secret || secret_len == 0)
        return em__set_error(EM_EINVAL, "authentication proof: ember.authenticate.secret is empty");
    if (dir != EM_AUTH_INITIATOR && dir != EM_AUTH_ACCEPTOR)
        return em__set_error(EM_EINVAL, "authentication proof: bad direction %d", dir);
    uint8_t msg[AUTH_LABEL_LEN + 2 + 2 * EM_AUTH_NONCE_SIZE];
    memcpy(msg, AUTH_LABEL, AUTH_LABEL_LEN);
    msg[AUTH_LABEL_LEN] = (uint8_t)dir;
    msg[AUTH_LABEL_LEN + 1] = (uint8_t)role;
    memcpy(msg + AUTH_LABEL_LEN + 2, peer_nonce, EM_AUTH_NONCE_SIZE);
    memcpy(msg + AUTH_LABEL_LEN + 2 + EM_AUTH_NONCE_SIZE, own_nonce, EM_AUTH_NONCE_SIZE);
    return em_auth_hmac(secret, secret_len, msg, sizeof msg, out);
}

int em_auth_check(const void *secret, size_t secret_len, int peer_dir, int peer_role,
                  const uint8_t own_nonce[EM_AUTH_NONCE_SIZE], const uint8_t *peer_nonce,
                  size_t peer_nonce_len, const uint8_t *mac, size_t mac_len)
{
    if (peer_nonce_len != EM_AUTH_NONCE_SIZE)
        return em__set_error(EM_EACCES,
                             "authentication of a peer with role %d refused: its nonce "
                             "has %zu bytes, expected %d",
                             peer_role, peer_nonce_len, EM_AUTH_NONCE_SIZE);
    if (mac_len != EM_AUTH_MAC_SIZE)
        return em__set_error(EM_EACCES,
                             "authentication of a peer with role %d refused: its proof "
                             "has %zu bytes, expected %d",
                             peer_role, mac_len, EM_AUTH_MAC_SIZE);
    uint8_t want[EM_AUTH_MAC_SIZE];
    int rc = em_auth_proof(secret, secret_len, peer_dir, peer_role, own_nonce, peer_nonce, want);
    if (rc) return rc;
    int ok = crypto_verify_32(want, mac) == 0;
    sodium_memzero(want, sizeof want);
    if (!ok)
        return em__set_error(EM_EACCES,
                             "authentication of a peer with role %d refused: wrong "
                             "proof (its secret differs from ember.authenticate.secret)",
                             peer_role);
    return 0;
}
