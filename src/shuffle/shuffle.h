/* Sort-based shuffle: the map-side writer and the reduce-side reader.
 *
 * A shuffle map task pushes the pair records (key, value) of its partition into a writer,
 * which assigns each to a reduce partition, combines values of equal keys when an aggregator is
 * given (map-side combine), spills sorted runs to disk past its execution-memory grant, and at
 * commit writes ONE data file and ONE index file for the map task (docs/formats.md):
 *     <dir>/shuffle_<shuffle>_<map>.data   reducer 0's block, reducer 1's block, ...
 *     <dir>/shuffle_<shuffle>_<map>.index  offsets and checksums per reducer
 * Each block is a sequence of compressed frames (lz4 default, zstd or none by
 * ember.io.compression.codec) of encoded records, with an XXH3 checksum per block in the index.
 * Files are written under temporary names and renamed at commit, so a retried or concurrent
 * attempt never leaves a torn output.
 *
 * A reducer opens a reader over the blocks of its partition from every map output and gets an
 * iterator of pair records: as stored (no aggregator, no order), aggregated per key, sorted by
 * key, or grouped per key ((k, [v...]) sorted by key). Aggregation, sorting and grouping spill
 * past the task's execution-memory grant, so any input size completes in bounded memory; the
 * value list of a group too large for memory is returned as a spilled list (em_value.ext) that
 * em_elems iterates from disk.
 *
 * Thread rule: a writer or reader belongs to the task thread that opened it.
 */
#ifndef EMBER_SHUFFLE_H
#define EMBER_SHUFFLE_H

#include "base/iter.h"
#include "base/task.h"
#include <ember/record.h>
#include <stdbool.h>
#include <stdint.h>

/* How values of one key are combined. Each function appends exactly one value to out. */
typedef struct em_aggregator {
    int (*create)(void *ctx, em_task *t, em_value v, em_records *out);
    int (*merge_value)(void *ctx, em_task *t, em_value c, em_value v, em_records *out);
    int (*merge_combiners)(void *ctx, em_task *t, em_value a, em_value b, em_records *out);
    void *ctx;
} em_aggregator;

/* Which reduce partition a key goes to (0..num_partitions-1). */
typedef struct em_key_partitioner {
    int num_partitions;
    int (*partition)(const void *ctx, em_value key);
    const void *ctx;
    bool
        hash_mod; /* partition is em_hash_partition(XXH3_64bits(key)): the writer reuses the hash */
} em_key_partitioner;

/* The hash partitioner's rule: a 64-bit key hash scaled to [0, n) by multiply-shift (uniform
 * like a modulo, without the division). */
static inline int em_hash_partition(uint64_t hash, int n)
{
    return (int)(((unsigned __int128)hash * (uint64_t)n) >> 64);
}

typedef struct em_shuffle_writer em_shuffle_writer;

typedef struct em_shuffle_write_spec {
    int shuffle_id, map_id;
    em_key_partitioner partitioner;
    const em_aggregator *map_side_combine; /* NULL: values are written as they come */
    const char *dir;                       /* where the data and index files go */
} em_shuffle_write_spec;

/* What a committed map output holds: its file base path and per-reducer compressed sizes. */
typedef struct em_map_status {
    int shuffle_id, map_id;
    int num_reducers;
    int64_t *block_sizes; /* em__malloc'd, num_reducers entries */
    int64_t records_written, bytes_written;
} em_map_status;

int em_shuffle_writer_open(const em_shuffle_write_spec *spec, em_task *t, em_shuffle_writer **out);
/* rec must be a 2-tuple (key, value); EM_EFORMAT otherwise. */
int em_shuffle_writer_add(em_shuffle_writer *w, em_value rec);
/* Writes the data and index files (atomically) and fills *status; frees w either way. */
int em_shuffle_writer_commit(em_shuffle_writer *w, em_map_status *status);
/* Drops everything written; frees w. */
void em_shuffle_writer_abort(em_shuffle_writer *w);
void em_map_status_clear(em_map_status *s);

/* The path of a map output's file: <dir>/shuffle_<s>_<m>.data or .index. */
void em_shuffle_file_path(char *buf, size_t cap, const char *dir, int shuffle_id, int map_id,
                          const char *ext);

typedef enum em_shuffle_read_mode {
    EM_READ_AS_STORED = 0, /* records in map order, as written */
    EM_READ_AGGREGATE,     /* one (k, combined) per key, any order */
    EM_READ_SORTED,        /* all records ordered by key (ties in any order) */
    EM_READ_GROUPED,       /* one (k, [v...]) per key, ordered by key */
} em_shuffle_read_mode;

/* Where one map output lives. A reader reads it straight from dir when exec_id is the task's
 * own executor (em_task.exec_id) or port is 0, and fetches it from the block server at
 * host:port otherwise (the server finds it by the application and exec_id). */
typedef struct em_block_location {
    int exec_id;      /* executor that wrote the output (0 in local mode) */
    const char *host; /* its block server (NULL/"" and port 0: read dir directly) */
    int port;
    const char *dir; /* directory holding shuffle_<s>_<m>.data/.index on that host */
} em_block_location;

typedef struct em_shuffle_read_spec {
    int shuffle_id, reducer, num_maps;
    const em_block_location *locs; /* num_maps entries: where each map's output is */
    const int64_t *block_sizes;    /* num_maps entries: this reducer's block size in each map
                                      output (the tracker's); required when a location is remote */
    em_shuffle_read_mode mode;
    bool descending;          /* for SORTED and GROUPED */
    const em_aggregator *agg; /* for AGGREGATE */
    bool map_side_combined;   /* AGGREGATE: the values are combiners (use merge_combiners) */
} em_shuffle_read_spec;

/* An iterator of pair records of reduce partition spec->reducer. Local blocks are read from
 * disk; remote ones are fetched through t->fetcher (fetcher.h), streamed with at most
 * ember.shuffle.reducer.maxSizeInFlight bytes requested and not yet consumed. A missing or
 * corrupt block is an error naming the shuffle, map, reducer and file or host:port; a block
 * that cannot be fetched after ember.shuffle.io.maxRetries retries is EM_EFETCH. The spec's
 * arrays are copied: the caller may free them once this returns. */
int em_shuffle_reader_open(const em_shuffle_read_spec *spec, em_task *t, em_iter **out);

/* Removes all files of shuffle_id in dir (unregistering a shuffle). */
void em_shuffle_remove_files(const char *dir, int shuffle_id);

#endif
