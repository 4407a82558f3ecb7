/* Internals of the record layer that the engine (rdd, shuffle, storage) may use directly:
 * the em_records structure, the encoding constants and fast append / skip helpers.
 *
 * Everything here works on the encoding documented in encoding.c and docs/formats.md.
 * Thread rule: as for em_records — one thread at a time per em_records; the pure functions on
 * bytes are any thread.
 */
#ifndef EMBER_RECORD_INT_H
#define EMBER_RECORD_INT_H

#include "base/base.h"

#include <ember/record.h>
#include <string.h>

/* Type tags (the first byte of every encoded value). 0x00 is the container terminator and the
 * string escape byte, never a tag. */
enum {
    EM_TAG_END = 0x00,
    EM_TAG_NULL = 0x01,
    EM_TAG_FALSE = 0x02,
    EM_TAG_TRUE = 0x03,
    EM_TAG_INT64 = 0x04,
    EM_TAG_FLOAT64 = 0x05,
    EM_TAG_STRING = 0x06,
    EM_TAG_BYTES = 0x07,
    EM_TAG_TUPLE = 0x08,
    EM_TAG_LIST = 0x09,
};

/* Deepest nesting of tuples/lists a well-formed value may have. */
#define EM_RECORD_MAX_DEPTH 64

/* A growable sequence of encoded records. Bytes [0, done) of buf are complete records (count
 * of them); bytes [done, buf.len) belong to a record still being built (depth > 0). index[i]
 * is the offset of record i for i < index_len (built lazily by em_records_at). err is sticky:
 * once set, builders append nothing more. The engine may append whole encoded records to buf
 * itself provided it then updates done, count (and leaves depth 0) — or use em__put_raw. */
struct em_records {
    em_buf buf;
    size_t done;
    size_t count;
    int depth;
    int err;
    size_t *index;
    size_t index_len, index_cap;
};

/* The encoded length of the well-formed value starting at p (p < end), 0 if the bytes [p, end)
 * do not start with one (bad tag, truncation, bad escape, non-canonical float, nesting deeper
 * than EM_RECORD_MAX_DEPTH). Never reads at or past end. Any thread. */
size_t em__value_skip(const uint8_t *p, const uint8_t *end);

/* The encoded length of the value starting at p, which must be well-formed (built by the
 * em_put_* builders or already checked by em__value_skip / em_value_parse): no checks, no
 * bounds, fast. Used on the engine's own buffers. Any thread. */
size_t em__value_skip_trusted(const uint8_t *p);

/* Appends an already-encoded whole value (at the current nesting level; at depth 0 it is one
 * record). enc must be well-formed (not checked). */
void em__put_raw(em_records *out, const void *enc, size_t len);

/* Appends one 2-tuple record (key, value) from two already-encoded values. 0 or EM_ENOMEM (also
 * remembered as the sticky error). Must be called at depth 0. */
int em__records_append_pair_raw(em_records *out, const uint8_t *k, size_t klen, const uint8_t *v,
                                size_t vlen);

/* Appends the encoding of v to b, materialising spilled lists (v.ext). 0, EM_ENOMEM, or the
 * error of a spilled list's iteration. */
int em__value_encode_to(em_buf *b, em_value v);

/* Writes x in the text form of em_value_format (shortest round-trip, Python repr style: "1.0",
 * "1e+16", "nan") into out, NUL-terminated; returns its length (< 32). Any thread. */
size_t em__format_double(double x, char out[32]);

/* Scalar encodings: writes 9 bytes (tag + 8 big-endian bytes). */
static inline uint64_t em__bswap_be(uint64_t x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return __builtin_bswap64(x);
#else
    return x;
#endif
}

static inline void em__enc_int64(uint8_t out[9], int64_t x)
{
    uint64_t u = em__bswap_be((uint64_t)x ^ 0x8000000000000000ull);
    out[0] = EM_TAG_INT64;
    memcpy(out + 1, &u, 8);
}

static inline uint64_t em__double_key(double x)
{
    uint64_t u;
    if (x == 0) x = 0.0; /* -0.0 -> +0.0 */
    memcpy(&u, &x, 8);
    if (x != x) u = 0x7ff8000000000000ull;
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

static inline void em__enc_double(uint8_t out[9], double x)
{
    uint64_t u = em__bswap_be(em__double_key(x));
    out[0] = EM_TAG_FLOAT64;
    memcpy(out + 1, &u, 8);
}

static inline int64_t em__dec_int64(const uint8_t *p8)
{
    uint64_t u;
    memcpy(&u, p8, 8);
    return (int64_t)(em__bswap_be(u) ^ 0x8000000000000000ull);
}

static inline double em__dec_double(const uint8_t *p8)
{
    uint64_t u;
    memcpy(&u, p8, 8);
    u = em__bswap_be(u);
    u = (u & 0x8000000000000000ull) ? (u & ~0x8000000000000000ull) : ~u;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Marks the end of one value appended at the current level: at depth 0 it completes a record. */
static inline void em__records_value_done(em_records *r)
{
    if (r->depth == 0) {
        r->done = r->buf.len;
        r->count++;
    }
}

#endif
