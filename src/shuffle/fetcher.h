/* The shuffle's network face: the per-process block fetcher (the client of the block transfer
 * service, net/block_server.h) that reduce tasks fetch remote map outputs through, and the
 * locator a block server uses to find the bytes of a request in this layer's files.
 *
 * One em_block_fetcher per executor process, reached from each task as em_task.fetcher (NULL
 * in local mode). It keeps a pool of authenticated connections keyed by host:port; each
 * reader checks out at most one connection per server for its lifetime, pipelines its
 * requests on it, and returns it when done (a connection with unread bytes is closed
 * instead). The reader itself (reader.c, through fetch.c) decides what to request when:
 * blocks in map order, at most ember.shuffle.reducer.maxSizeInFlight bytes requested and not
 * yet consumed, a failed connection retried ember.shuffle.io.maxRetries times
 * ember.shuffle.io.retryWait apart before the task fails with EM_EFETCH.
 *
 * Thread rule: em_block_fetcher_* are any thread (the pool has its own mutex); create and free
 * on the executor's own thread, after every task using it has ended.
 */
#ifndef EMBER_SHUFFLE_FETCHER_H
#define EMBER_SHUFFLE_FETCHER_H

#include "net/block_server.h"
#include "shuffle/shuffle.h"

#include <ember/conf.h>
#include <stdint.h>

typedef struct em_block_fetcher em_block_fetcher;

/* A fetcher for executor exec_id of application app_id (announced in every hello; a block
 * server only serves a fetcher the outputs of its own application). Reads
 * ember.authenticate.secret, ember.rpc.message.maxSize, ember.network.timeout,
 * ember.shuffle.io.maxRetries and ember.shuffle.io.retryWait (conf NULL: defaults).
 * 0 or EM_ENOMEM. */
int em_block_fetcher_new(const em_conf *conf, const char *app_id, int exec_id,
                         em_block_fetcher **out);
/* Closes the pooled connections and frees f. NULL: no-op. */
void em_block_fetcher_free(em_block_fetcher *f);

/* Counters since creation (for tests, benchmarks and metrics). */
typedef struct em_block_fetcher_stats {
    uint64_t connections; /* connections opened (handshake done) */
    uint64_t reused;      /* check-outs served by a pooled connection */
    uint64_t blocks;      /* blocks received completely */
    uint64_t bytes;       /* block bytes received */
    uint64_t retries;     /* reconnections after a failure */
    uint64_t skipped;     /* bytes fetched again after a retry and skipped (already consumed) */
    /* The largest number of bytes one reader had requested and not consumed while it had more
     * than one block in flight (a single block larger than maxSizeInFlight is requested alone,
     * as in Spark, and not counted here), and the most blocks one reader had in flight. */
    uint64_t peak_bytes_in_flight;
    uint64_t peak_blocks_in_flight;
} em_block_fetcher_stats;
void em_block_fetcher_stats_get(const em_block_fetcher *f, em_block_fetcher_stats *out);

/* The block server's locator for this layer's files (em_block_locate_fn): opens
 * <dir>/shuffle_<s>_<m>.data and reads the byte range and checksums of reducers [start, end)
 * from the index, validated against the data file's size. Install it with
 * em_block_server_set_locator(server, em_shuffle_locate_blocks). */
int em_shuffle_locate_blocks(const char *dir, int shuffle_id, int map_id, int start, int end,
                             em_block_range *out);

#endif
