/* Internals of the sort-based shuffle, shared by its .c files only (writer.c, reader.c,
 * sorter.c, combiner.c, blockio.c, index.c, spilled_list.c).
 *
 * Pieces:
 *   shuf_mem     the bytes one writer/reader holds against its execution-memory grant
 *   shuf_fw/fr   framed, compressed stream writer / reader over a file region (blockio.c)
 *   shuf_sorter  in-memory items (arena + item array + optional hash table), sort, spill runs,
 *                k-way merge (sorter.c)
 *   shuf_agg     calls of the user's aggregator and pair building (combiner.c)
 *   index        the index file encode/decode (index.c)
 *
 * Thread rule: everything belongs to the task thread owning the writer or reader.
 */
#ifndef EMBER_SHUFFLE_INT_H
#define EMBER_SHUFFLE_INT_H

#include "base/base.h"
#include "record/record_ext.h"
#include "shuffle/shuffle.h"

#include <stdbool.h>
#include <stdint.h>
#include <xxhash.h>

/* ---- configuration ---------------------------------------------------------------------- */
enum { SHUF_CODEC_NONE = 0, SHUF_CODEC_LZ4 = 1, SHUF_CODEC_ZSTD = 2 };

typedef struct shuf_conf {
    int codec;          /* data blocks: ember.io.compression.codec (lz4, zstd, none), or none
                           when ember.shuffle.compress is false */
    int spill_codec;    /* spill files: the same unless ember.shuffle.spill.compress is false */
    int zstd_level;     /* ember.io.compression.zstd.level */
    size_t file_buffer; /* ember.shuffle.file.buffer (32k) */
    bool checksum;      /* ember.shuffle.checksum.enabled */
} shuf_conf;
/* Reads the options of t->conf (defaults when t->conf is NULL). EM_ECONF for an unknown codec. */
int shuf_conf_load(shuf_conf *c, const em_task *t);

/* ---- memory accounting -------------------------------------------------------------------- */
typedef struct shuf_mem {
    em_task *t;
    int64_t granted; /* acquired from t->memory and not yet released */
    int64_t used;    /* bytes our buffers really hold */
    int64_t chunk;   /* request granularity */
    bool forcing;    /* while set, reserve never refuses (holding one record after a spill) */
} shuf_mem;
void shuf_mem_init(shuf_mem *m, em_task *t);
/* Accounts bytes more if they fit the grant (asking the manager for more first); false if
 * refused (the caller spills). */
bool shuf_mem_reserve(shuf_mem *m, int64_t bytes);
/* Accounts bytes that must be held anyway (I/O buffers); asks for them but never refuses. */
void shuf_mem_force(shuf_mem *m, int64_t bytes);
void shuf_mem_unuse(shuf_mem *m, int64_t bytes);
/* Returns the whole grant to the manager. */
void shuf_mem_release(shuf_mem *m);
/* A frame size suited to the pool: clamp(pool / 16, 4 KiB, file_buffer). */
size_t shuf_frame_size(const shuf_mem *m, const shuf_conf *c);

/* ---- framed block streams (blockio.c) ---------------------------------------------------
 * A block is a sequence of frames:
 *   offset  size        field
 *   0       4           raw_len    u32 LE: payload length after decompression
 *   4       4           stored_len u32 LE: payload length as stored
 *   8       1           codec      0 none, 1 lz4, 2 zstd
 *   9       stored_len  payload
 * The writer never splits a unit (one record, or one spill item) across frames. */
#define SHUF_FRAME_HDR 9

typedef struct shuf_fw {
    int fd;
    const char *path; /* for messages */
    int codec, level;
    size_t frame_size;
    em_buf raw, comp;
    void *zctx; /* ZSTD_CCtx */
    XXH3_state_t *xs;
    uint64_t off;         /* bytes written to fd */
    uint64_t block_start; /* offset of the current block */
    shuf_mem *mem;
    int64_t charged;
} shuf_fw;
int shuf_fw_init(shuf_fw *w, int fd, const char *path, int codec, const shuf_conf *c,
                 size_t frame_size, shuf_mem *mem);
/* Space for one unit of n bytes in the current frame (flushing the frame first if it would
 * overflow); the caller fills *p. */
int shuf_fw_space(shuf_fw *w, size_t n, uint8_t **p);
/* Flushes the current frame and ends the block: its stored length and XXH3 checksum. */
int shuf_fw_end_block(shuf_fw *w, uint64_t *len, uint64_t *checksum);
void shuf_fw_free(shuf_fw *w);

/* Where a frame reader's bytes come from when not a file: read exactly n bytes of the stream
 * (0 or an error). */
typedef int (*shuf_read_fn)(void *src, void *buf, size_t n);

typedef struct shuf_fr {
    int fd;
    shuf_read_fn read; /* non-NULL: a stream (a fetched block); fd unused */
    void *src;
    const char *path;
    uint64_t pos, end;
    em_buf raw, comp;
    size_t rpos; /* next unread byte of raw */
    void *zctx;  /* ZSTD_DCtx */
    XXH3_state_t *xs;
    bool verify;
    uint64_t expect;
    shuf_mem *mem; /* may be NULL: not accounted */
    int64_t charged;
    uint64_t stored_read; /* bytes read from the file */
} shuf_fr;
void shuf_fr_init(shuf_fr *r, int fd, const char *path, uint64_t start, uint64_t end, bool verify,
                  uint64_t expect, shuf_mem *mem);
/* The same over a stream of size bytes (a fetched block); path names it in messages. */
void shuf_fr_init_stream(shuf_fr *r, shuf_read_fn read, void *src, const char *path, uint64_t size,
                         bool verify, uint64_t expect, shuf_mem *mem);
/* Makes sure raw has unread bytes: EM_ROW, EM_DONE at the end of the region (after checking
 * the checksum when verifying), or EM_ECORRUPT / -errno. */
int shuf_fr_fill(shuf_fr *r);
void shuf_fr_free(shuf_fr *r);

/* I/O helpers: whole writes and reads. 0 or -errno (message names path). */
int shuf_write_all(int fd, const void *p, size_t n, const char *path);
int shuf_pread_all(int fd, void *p, size_t n, uint64_t off, const char *path);
/* A spill file in dir, already unlinked (it vanishes with its fd). fd or -errno. */
int shuf_spill_file(const char *dir);

/* ---- pairs --------------------------------------------------------------------------------- */
/* Splits an encoded 2-tuple record into key and value bytes. 0 or EM_EFORMAT. */
int shuf_split_pair(const uint8_t *rec, size_t len, const uint8_t **k, size_t *klen,
                    const uint8_t **v, size_t *vlen);
/* Appends the pair 0x08 key val 0x00 to b. 0 or EM_ENOMEM. */
int shuf_build_pair(em_buf *b, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);

/* ---- the sorter (sorter.c) --------------------------------------------------------------- */
typedef struct shuf_item {
    const uint8_t *rec;
    uint32_t len;
    uint32_t part;
    uint64_t aux; /* key hash while hashed; sort prefix while sorting */
} shuf_item;

enum { SHUF_BY_PART = 0, SHUF_BY_PART_REC = 1 };

typedef struct shuf_chunk shuf_chunk;

typedef struct shuf_run {
    int fd;
    uint64_t size;
} shuf_run;

typedef struct shuf_sorter {
    em_task *t;
    shuf_mem *mem;
    const shuf_conf *conf;
    int order;
    bool desc;
    bool hashed; /* items indexed by a hash table on (part, key) */
    shuf_chunk *chunks, *cur;
    size_t chunk_size;
    shuf_item *items;
    size_t n, cap;
    uint32_t *slots; /* item index + 1, 0 empty; nslots a power of two */
    size_t nslots;
    shuf_run *runs;
    size_t nruns, runs_cap;
    size_t frame_size;
} shuf_sorter;

void shuf_sorter_init(shuf_sorter *s, em_task *t, shuf_mem *mem, const shuf_conf *c, int order,
                      bool desc, bool hashed);
/* Adds a copy of the record; spills when memory is refused. */
int shuf_sorter_add(shuf_sorter *s, uint32_t part, const uint8_t *rec, size_t len);
/* Hashed mode: the item of (part, key) or NULL. */
shuf_item *shuf_sorter_find(shuf_sorter *s, uint32_t part, const uint8_t *k, size_t klen,
                            uint64_t hash);
/* Hashed mode: stores rec for (part, key hash); replaces *existing when given (in place when
 * it fits). May spill (then inserts fresh). */
int shuf_sorter_put(shuf_sorter *s, shuf_item *existing, uint32_t part, uint64_t hash,
                    const uint8_t *rec, size_t len);
/* Sorts the in-memory items and writes them as a run; frees their memory for reuse. */
int shuf_sorter_spill(shuf_sorter *s);
/* Frees arena, item array and table (uncharging them). */
void shuf_sorter_drop_memory(shuf_sorter *s);
void shuf_sorter_free(shuf_sorter *s);

/* A k-way merge over sorted runs, or the in-memory items sorted. */
typedef struct shuf_merger shuf_merger;
/* Ends the input: when runs exist, spills the remainder too and merges runs (in passes when
 * there are more than memory allows to open at once); else sorts the items in memory. */
int shuf_sorter_finish(shuf_sorter *s, shuf_merger **out);
/* EM_ROW with the next item (valid until the next call), EM_DONE, or an error. */
int shuf_merger_next(shuf_merger *m, uint32_t *part, const uint8_t **rec, size_t *len);
void shuf_merger_free(shuf_merger *m);

/* ---- aggregation (combiner.c) ------------------------------------------------------------ */
typedef struct shuf_agg {
    const em_aggregator *agg;
    em_task *t;
    em_records *scratch;
    em_buf pair;
} shuf_agg;
enum { SHUF_AGG_CREATE, SHUF_AGG_MERGE_VALUE, SHUF_AGG_MERGE_COMBINERS };
int shuf_agg_init(shuf_agg *a, const em_aggregator *agg, em_task *t);
void shuf_agg_free(shuf_agg *a);
/* Calls one aggregator function (b unused for CREATE) and builds the pair (key, result) in
 * a->pair. */
int shuf_agg_pair(shuf_agg *a, int fn, const uint8_t *k, size_t klen, em_value x, em_value y);
/* Hash-combines one pair record into s (hashed sorter). combiners: values are combiners.
 * hash: XXH3_64bits of the key when the caller has it, else 0 (computed here). */
int shuf_agg_insert(shuf_agg *a, shuf_sorter *s, uint32_t part, const uint8_t *rec, size_t len,
                    bool combiners, uint64_t hash);
/* The same, for a record the caller has already split into key k and value v. */
int shuf_agg_insert_split(shuf_agg *a, shuf_sorter *s, uint32_t part, const uint8_t *rec,
                          size_t len, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                          bool combiners, uint64_t hash);

/* Folds consecutive records of equal (part, key) of a sorted stream with merge_combiners. */
typedef struct shuf_combining {
    shuf_merger *m;
    shuf_agg *agg;
    em_buf cur; /* the pending combined pair */
    uint32_t cur_part;
    bool have_cur;
    em_buf out;
    uint32_t out_part;
    bool done;
} shuf_combining;
int shuf_combining_next(shuf_combining *c, uint32_t *part, const uint8_t **rec, size_t *len);
void shuf_combining_free(shuf_combining *c);

/* ---- index file (index.c) ---------------------------------------------------------------- */
#define SHUF_INDEX_MAGIC "EMBRIDX1"
/* Writes the index bytes for num_reducers blocks to fd. */
int shuf_index_write(int fd, const char *path, int num_reducers, const uint64_t *offsets,
                     const uint64_t *checksums);
/* Reads and validates an index; gives reducer r's block [*start, *end) and checksum. */
int shuf_index_read(const char *path, int reducer, uint64_t data_size, uint64_t *start,
                    uint64_t *end, uint64_t *checksum);
/* The same for reducers [start, end): their bytes [*off_start, *off_end) and end - start
 * checksums. EM_EINVAL for a range outside the index's reducers. */
int shuf_index_read_range(const char *path, int start, int end, uint64_t data_size,
                          uint64_t *off_start, uint64_t *off_end, uint64_t *checksums);

/* ---- remote blocks (fetch.c) --------------------------------------------------------------
 * The fetch of one reader: the remote blocks it will read, in the order it reads them. The
 * first shuf_fetch_begin sends the first requests; every block consumed lets more be
 * requested, keeping at most max_in_flight bytes requested and not yet consumed (a block
 * larger than that is requested alone). Responses on one connection come in request order,
 * and blocks are consumed in plan order, so each connection is read front to back. */
typedef struct shuf_fetch shuf_fetch;
struct em_block_fetcher;
typedef struct shuf_fetch_block {
    int map;
    int exec_id;      /* whose output (the server finds its directory by it) */
    const char *host; /* borrowed: must outlive the fetch */
    int port;
    uint64_t size; /* the tracker's size of the block (> 0) */
} shuf_fetch_block;
/* Copies the plan; no I/O yet. mem (may be NULL) is charged the receive buffer of each
 * connection the fetch holds. 0 or EM_ENOMEM. */
int shuf_fetch_open(struct em_block_fetcher *f, int shuffle_id, int reducer,
                    const shuf_fetch_block *blocks, int n, uint64_t max_in_flight, shuf_mem *mem,
                    shuf_fetch **out);
/* Starts the next block of the plan, which must be map's: waits for its answer. *size bytes
 * follow; *checksum is the server's index checksum of them. EM_EFETCH (unreachable after the
 * retries, or the server refused: missing output...), EM_EACCES (authentication refused). */
int shuf_fetch_begin(shuf_fetch *fs, int map, uint64_t *size, uint64_t *checksum);
/* A shuf_read_fn over the current block (src is the shuf_fetch): n must not exceed what
 * remains. A connection failure is retried transparently (the block is fetched again and
 * the bytes already read are skipped). */
int shuf_fetch_read(void *fs, void *buf, size_t n);
/* The current block has been read to its end. */
int shuf_fetch_end(shuf_fetch *fs);
/* Returns clean connections to the pool, closes the others, frees fs. NULL: no-op. */
void shuf_fetch_close(shuf_fetch *fs);
/* After an EM_EFETCH: the map whose block could not be fetched (requests are pipelined, so it
 * may not be the block being read); -1 when none failed. */
int shuf_fetch_failed_map(const shuf_fetch *fs);

/* ---- spilled lists (spilled_list.c) ----------------------------------------------------- */
typedef struct shuf_spilled_list shuf_spilled_list;
/* Takes fd (a spill file holding count values written as frames of size bytes). */
shuf_spilled_list *shuf_spilled_list_new(int fd, uint64_t size, uint64_t count);
const em_ext_list *shuf_spilled_list_ext(shuf_spilled_list *l);
void shuf_spilled_list_free(shuf_spilled_list *l);

#endif
