/* The block transfer service: serves byte ranges of shuffle map outputs to block fetchers of
 * other processes over TCP. One per executor (and, later, per worker, serving the outputs of
 * several executors). Protocol (docs/formats.md "Block transfer"):
 *
 *   fetcher (initiator)                         block server (acceptor)
 *   handshake of handshake.h (hello, version check, with a secret the mutual proof)
 *   fetch_blocks{req_id, app_id, exec_id,  --->
 *                shuffle_id, map_id,
 *                start_reducer, end_reducer}
 *                                          <---  block_data{req_id, status 0, size,
 *                                                           checksums, ""}
 *                                          <---  size raw bytes: reducers [start, end) of
 *                                                shuffle_<s>_<m>.data (sendfile, zero-copy)
 *                                    or    <---  block_data{req_id, status < 0, 0, "", message}
 *   ... more requests; they may be pipelined and are answered in order.
 *
 * The server only serves the data files of the directories added with em_block_server_add_dir
 * (a request names an application, an executor and numbers, never a path), and only to a
 * fetcher whose hello announced that application. Unknown app/exec/shuffle/map or a bad range
 * gets an error status and a message; a malformed, unexpected or oversize frame, a failed
 * handshake or a silent peer (ember.network.timeout) closes that connection only, with a
 * WARN log line naming the peer.
 *
 * Where the bytes are is the shuffle's knowledge (file names, index format): the shuffle layer
 * installs its locator (em_shuffle_locate_blocks of shuffle/fetcher.h) with
 * em_block_server_set_locator, so src/net never includes src/shuffle.
 *
 * Thread rule: every function is any thread, except that em_block_server_stop must not race
 * with other calls on the same server.
 */
#ifndef EMBER_NET_BLOCK_SERVER_H
#define EMBER_NET_BLOCK_SERVER_H

#include <ember/conf.h>
#include <stdint.h>

typedef struct em_block_server em_block_server;

/* What the server sends for one request. */
typedef struct em_block_range {
    int fd;                  /* the data file, opened by the locator; the server closes it */
    uint64_t offset, length; /* bytes [offset, offset + length) of it */
    uint64_t *checksums;     /* end - start entries, filled by the locator (server's array) */
} em_block_range;

/* Finds reducers [start, end) of map output (shuffle_id, map_id) under dir. 0, or a negative
 * code with a message (sent to the fetcher as the answer's status and message). Any thread. */
typedef int (*em_block_locate_fn)(const char *dir, int shuffle_id, int map_id, int start, int end,
                                  em_block_range *out);

/* Listens on host:port (port 0: an ephemeral port) and starts serving. Reads
 * ember.authenticate.secret, ember.rpc.message.maxSize and ember.network.timeout from conf
 * (NULL: defaults). 0, -errno (cannot listen) or EM_ENOMEM. */
int em_block_server_start(const em_conf *conf, const char *host, int port, em_block_server **out);
/* The port it listens on. */
int em_block_server_port(const em_block_server *s);
/* Installs how requests are resolved to file ranges (see above). */
void em_block_server_set_locator(em_block_server *s, em_block_locate_fn fn);
/* Serves the outputs of executor exec_id of app_id from dir (replacing an earlier dir of the
 * same executor). 0, EM_EINVAL or EM_ENOMEM. */
int em_block_server_add_dir(em_block_server *s, const char *app_id, int exec_id, const char *dir);
/* Connections refused or closed for bad input so far (handshake failures, malformed frames). */
uint64_t em_block_server_refused(const em_block_server *s);
/* Stops serving every directory of app_id (the application ended); returns how many. */
int em_block_server_remove_app(em_block_server *s, const char *app_id);
/* Stops listening, closes every connection, joins every thread and frees s. NULL: no-op. */
void em_block_server_stop(em_block_server *s);

#endif
