/* Files by content hash: how a worker gets an application's binary from its driver.
 *
 * Server side: an em_file_registry maps hex SHA-256 -> path of the files a process offers (the
 * driver registers its own binary); em_file_serve answers one GET_FILE (messages.def) with one
 * FILE_CHUNK of at most EM_FILE_CHUNK_MAX bytes, from any endpoint's on_message.
 * Client side: em_file_fetch connects to host:port (role EM_ROLE_WORKER, with the secret when
 * set), asks for the chunks one after the other into a temporary file next to the destination,
 * checks the SHA-256, makes it 0755 and renames it into place, so the destination either does
 * not exist or is complete and verified.
 *
 * Thread rule: the registry is any thread (its own mutex); em_file_serve runs on the caller's
 * endpoint loop thread (it reads up to one chunk from disk there); em_file_fetch blocks and must
 * not run on an endpoint loop thread.
 */
#ifndef EMBER_DEPLOY_FILE_SERVER_H
#define EMBER_DEPLOY_FILE_SERVER_H

#include "base/base.h"
#include "net/endpoint.h"

#include <stdint.h>

#define EM_FILE_CHUNK_MAX (1u << 20) /* bytes of file data per FILE_CHUNK */
#define EM_FILE_HASH_HEX  65         /* 64 hex digits of a SHA-256 and a NUL */

/* The hex SHA-256 of the file at path (lower case) and its size (size may be NULL). 0, -errno
 * with a message naming the path. */
int em_file_sha256(const char *path, char hex[EM_FILE_HASH_HEX], uint64_t *size);
/* 1 when s is 64 lower-case hex digits. */
int em_file_hash_valid(const char *s);

typedef struct em_file_registry em_file_registry;

/* An empty registry. 0 or EM_ENOMEM. */
int em_file_registry_new(em_file_registry **out);
/* Frees it. NULL is a no-op. No em_file_serve may be running on it. */
void em_file_registry_free(em_file_registry *r);
/* Offers the file at path (made absolute) under its hash, written to hex (may be NULL). Adding
 * the same content again is a no-op. 0, -errno (unreadable; message names the path), EM_ENOMEM. */
int em_file_registry_add(em_file_registry *r, const char *path, char hex[EM_FILE_HASH_HEX]);
/* The path (copy: em__free it) and size registered under hash: 0, or EM_ENOENT. */
int em_file_registry_lookup(em_file_registry *r, const char *hash, char **path, uint64_t *size);

/* Answers GET_FILE m on connection c with one FILE_CHUNK: status 0, the file's total size and
 * min(max_len or EM_FILE_CHUNK_MAX, EM_FILE_CHUNK_MAX, size - offset) bytes from offset (empty
 * at the end); or status EM_ENOENT (no file of that hash here), EM_ERANGE (offset beyond the
 * end), -errno (cannot read it) with a message. Loop thread of c's endpoint. */
void em_file_serve(em_file_registry *r, em_conn *c, const em_msg_get_file *m);

typedef struct em_file_fetch_opts {
    const char *secret; /* ember.authenticate.secret; NULL or "" = none */
    size_t max_frame;   /* ember.rpc.message.maxSize; 0 = default */
    int64_t timeout_ms; /* longest wait for the connection or one chunk (ember.network.timeout) */
    const char *app_id; /* announced in hello; NULL = "" */
} em_file_fetch_opts;

/* Fetches the file of hex SHA-256 hash from host_port ("host:port" or "[v6]:port") into dest
 * (0755, atomically renamed; dest's directory must exist). *size (may be NULL) gets its size.
 * 0, or: EM_EINVAL (bad host:port or hash), EM_ENOENT (the server has no such file),
 * EM_ECORRUPT (the bytes do not hash to hash), EM_ESTATE (timeout, connection lost or
 * refused), -errno (local file); the message names the hash and host:port. Blocks; not on an
 * endpoint loop thread. */
int em_file_fetch(const em_file_fetch_opts *o, const char *host_port, const char *hash,
                  const char *dest, uint64_t *size);

/* Splits "host:port" / "[v6]:port": *host gets a copy (em__free). 0 or EM_EINVAL naming it. */
int em_host_port_parse(const char *host_port, char **host, int *port);

#endif
