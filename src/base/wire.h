/* A small writer and a bounds-checked reader of the engine's binary encodings (the stage graph
 * of rdd/stage_codec.c, job argument blobs): unsigned LEB128 varints, zigzag signed varints,
 * fixed little-endian integers and doubles, length-prefixed byte strings, nullable strings and
 * function references (base/symbols.h).
 *
 *   put / get              bytes on the wire
 *   u8, bool               1 byte (a bool must be 0 or 1)
 *   u32, u64, f64          4 / 8 / 8 bytes little-endian (f64: the IEEE-754 bit pattern)
 *   uvar                   LEB128: 7 bits a byte, low first, high bit = more; at most 10 bytes
 *   ivar                   uvar of the zigzag mapping (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...)
 *   bytes                  uvar length, then the bytes
 *   str                    uvar length + 1, then the bytes (no NUL); uvar 0 = NULL
 *   fn                     a function reference (symbols.h)
 *
 * Both sides keep a sticky error: after the first failure, puts append nothing and gets return
 * zeros / NULL, so a codec can write or read a run of fields and check `err` once; it must check
 * before using a value to index or allocate. Reader failures are EM_EFORMAT with a message
 * "<what>: <where>: <problem> (byte N of M)"; a count read with em_wire_get_count is checked
 * against the bytes left, so no input makes a reader allocate more than its own size allows.
 * Every reader function is safe on arbitrary bytes: it never reads at or past `end`.
 *
 * Thread rule: a writer or reader belongs to one thread.
 */
#ifndef EMBER_BASE_WIRE_H
#define EMBER_BASE_WIRE_H

#include "base/base.h"

typedef struct em_wire_writer {
    em_buf *out; /* appended to (not owned) */
    int err;     /* first error (EM_ENOMEM, or a function that cannot be referenced) */
} em_wire_writer;

static inline em_wire_writer em_wire_writer_on(em_buf *out)
{
    return (em_wire_writer){out, 0};
}

void em_wire_put_u8(em_wire_writer *w, uint8_t v);
void em_wire_put_bool(em_wire_writer *w, bool v);
void em_wire_put_u32(em_wire_writer *w, uint32_t v);
void em_wire_put_u64(em_wire_writer *w, uint64_t v);
void em_wire_put_f64(em_wire_writer *w, double v);
void em_wire_put_uvar(em_wire_writer *w, uint64_t v);
void em_wire_put_ivar(em_wire_writer *w, int64_t v);
void em_wire_put_bytes(em_wire_writer *w, const void *p, size_t n);
void em_wire_put_str(em_wire_writer *w, const char *s); /* NULL allowed */
void em_wire_put_fn(em_wire_writer *w, void (*fn)(void));

typedef struct em_wire_reader {
    const uint8_t *start, *p, *end;
    int err;          /* 0 or the first error (EM_EFORMAT) */
    const char *what; /* what is being decoded, for messages ("stage graph") */
    char where[96];   /* the part being read, set by the codec ("RDD 4 (map)"), may be "" */
} em_wire_reader;

void em_wire_reader_init(em_wire_reader *r, const void *data, size_t len, const char *what);
/* Fails the reader: sets err = EM_EFORMAT and the message (first failure only). Returns err. */
int em_wire_fail(em_wire_reader *r, const char *fmt, ...) EM_PRINTF(2, 3);

static inline size_t em_wire_left(const em_wire_reader *r)
{
    return (size_t)(r->end - r->p);
}

uint8_t em_wire_get_u8(em_wire_reader *r);
bool em_wire_get_bool(em_wire_reader *r);
uint32_t em_wire_get_u32(em_wire_reader *r);
uint64_t em_wire_get_u64(em_wire_reader *r);
double em_wire_get_f64(em_wire_reader *r);
uint64_t em_wire_get_uvar(em_wire_reader *r);
int64_t em_wire_get_ivar(em_wire_reader *r);
/* A signed varint that must lie in [min, max]; `field` names it in the message. */
int64_t em_wire_get_int(em_wire_reader *r, int64_t min, int64_t max, const char *field);
/* A count of items each taking at least min_bytes_each (>= 1) bytes of what remains: fails
 * when the rest of the input cannot hold that many, so callers may allocate count items. */
size_t em_wire_get_count(em_wire_reader *r, size_t min_bytes_each, const char *field);
/* Byte string: *len bytes at the returned pointer (borrowed from the input). NULL on error. */
const uint8_t *em_wire_get_bytes(em_wire_reader *r, size_t *len);
/* Nullable string: *out = an em__malloc'd NUL-terminated copy, or NULL for a NULL string. A
 * string holding a 0x00 byte is refused. 0 or the error. */
int em_wire_get_str(em_wire_reader *r, char **out);
/* A function reference resolved in this process (see em__fn_decode for its errors). */
int em_wire_get_fn(em_wire_reader *r, void (**fn)(void));
/* Fails unless the whole input was consumed. */
int em_wire_expect_end(em_wire_reader *r);

#endif
