/* Ember records: typed values in one order-preserving binary encoding.
 *
 * Every element of an RDD is a value: null, bool, int64, float64, string, bytes, tuple or
 * list (tuples and lists nest). A pair RDD is an RDD of 2-tuples (key, value). Values are
 * always held encoded; the encoding is order-preserving: memcmp() of two encoded values gives
 * their logical order (types order null < bool < int64 < float64 < string < bytes < tuple <
 * list; within a type the natural order, strings and bytes by unsigned bytes, tuples and lists
 * element by element with a prefix first), and two values are equal exactly when their
 * encodings are equal. docs/formats.md has the byte table.
 *
 * em_value is a borrowed view of one encoded value: cheap to copy, never owns memory. Its
 * lifetime is that of the buffer it points into (for a value given to a user function: until
 * that function returns; for a value of an em_records: until the em_records is freed or
 * appended to).
 *
 * em_records is a growable sequence of encoded records. User functions append their output to
 * one (the em_put_* builders); actions such as collect return one; parallelize takes one.
 * A record is complete each time the nesting depth returns to zero, so em_put_int64(out, 1)
 * appends one record and em_put_tuple_begin / ... / em_put_end appends one tuple record.
 * Builders never fail loudly: an out-of-memory or misuse (em_put_end with nothing open) is
 * remembered and reported by the engine (or em_records_error()) after the function returns.
 *
 * Thread rule: an em_records is used by one thread at a time. Accessors are any thread.
 */
#ifndef EMBER_RECORD_H
#define EMBER_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum em_type {
    EM_TYPE_NULL = 0,
    EM_TYPE_BOOL,
    EM_TYPE_INT64,
    EM_TYPE_FLOAT64,
    EM_TYPE_STRING,
    EM_TYPE_BYTES,
    EM_TYPE_TUPLE,
    EM_TYPE_LIST,
    EM_TYPE_INVALID, /* not a well-formed encoding */
} em_type;

/* A borrowed view of one encoded value. ext is reserved for the engine (values stored
 * outside memory, such as a spilled group of groupByKey); leave it NULL in values you make. */
typedef struct em_value {
    const uint8_t *data;
    size_t len;
    const void *ext;
} em_value;

typedef struct em_records em_records;

/* ---- reading values ---------------------------------------------------------------------- */

/* The type of v (EM_TYPE_INVALID if v is not a well-formed encoding). */
em_type em_value_type(em_value v);
const char *em_type_name(em_type t);

/* Scalars. Reading a value as the wrong type returns 0 / false / 0.0; use em_value_type first
 * when the type is not known. */
bool em_value_bool(em_value v);
int64_t em_value_int64(em_value v);
double em_value_double(em_value v);

/* The bytes of a string or bytes value and their length (*len). The result is not
 * NUL-terminated. It points into v when the value holds no 0x00 byte (the usual case, no
 * copy); otherwise the decoded bytes are placed in a per-thread scratch buffer that stays valid
 * until the 16th later call of em_value_str/em_value_bytes on this thread. NULL (and *len 0)
 * if v is not a string (resp. bytes). */
const char *em_value_str(em_value v, size_t *len);
const uint8_t *em_value_bytes(em_value v, size_t *len);

/* Decodes a string or bytes value into dst (capacity cap) and returns its decoded length,
 * copying min(len, cap) bytes. Never needs scratch memory. */
size_t em_value_copy_bytes(em_value v, void *dst, size_t cap);

/* Tuples and lists. em_value_count is the number of elements (O(size)); em_value_at the
 * i-th element (O(size)), a null value with len 0 when out of range. */
size_t em_value_count(em_value v);
em_value em_value_at(em_value v, size_t i);

/* Pairs: the first and second element of a 2-tuple (fast path of em_value_at). */
em_value em_value_key(em_value pair);
em_value em_value_val(em_value pair);

/* Iterating the elements of a tuple or list (also works for the engine's spilled lists). */
typedef struct em_elems {
    const uint8_t *pos, *end;
    const void *ext;
    void *state;
} em_elems;
void em_elems_init(em_elems *it, em_value container);
/* EM_ROW with *out set, EM_DONE at the end, or a negative error (spilled list unreadable). */
int em_elems_next(em_elems *it, em_value *out);

/* Compare: negative, zero or positive, in the order described above (memcmp of encodings). */
int em_value_cmp(em_value a, em_value b);
bool em_value_eq(em_value a, em_value b);
/* A 64-bit hash of the encoding (XXH3), the one the hash partitioner uses. */
uint64_t em_value_hash(em_value v);

/* Writes v as text: strings and bytes raw, int64 in decimal, float64 in the shortest form that
 * reads back to the same double (Python's repr: "0.1", "1.0", "1e+300", "inf", "nan"), bool
 * true/false, null "null", tuples "(a,b)", lists
 * "[a,b]" (this is the form saveAsTextFile writes). Returns the number of bytes written or
 * -errno. */
int em_value_fprint(em_value v, FILE *f);
/* The same text written into buf (capacity cap); returns its full length, like snprintf (not
 * counting the terminator; buf is NUL-terminated when cap > 0). */
size_t em_value_format(em_value v, char *buf, size_t cap);

/* ---- building records ------------------------------------------------------------------ */

/* A new empty sequence. NULL on out of memory. */
em_records *em_records_new(void);
/* Frees it; em_records_free(NULL) does nothing. */
void em_records_free(em_records *r);
/* Removes all records, keeping the memory. */
void em_records_clear(em_records *r);

/* Builders: each appends one value at the current nesting level; at depth 0 that value is a
 * whole record. */
void em_put_null(em_records *out);
void em_put_bool(em_records *out, bool b);
void em_put_int64(em_records *out, int64_t x);
void em_put_double(em_records *out, double x);
void em_put_str(em_records *out, const char *s, size_t len);
void em_put_cstr(em_records *out, const char *s); /* strlen(s) */
void em_put_bytes(em_records *out, const void *p, size_t len);
void em_put_value(em_records *out, em_value v); /* copies an existing value */
void em_put_tuple_begin(em_records *out);
void em_put_list_begin(em_records *out);
void em_put_end(em_records *out); /* closes the innermost open tuple or list */
/* Shorthand: one 2-tuple record (key, value) from two existing values. */
void em_put_pair(em_records *out, em_value key, em_value val);

/* 0, or the first error a builder met (EM_ENOMEM, or EM_EINVAL for unbalanced nesting). */
int em_records_error(const em_records *r);

/* ---- reading records ------------------------------------------------------------------- */

/* The number of complete records. */
size_t em_records_count(const em_records *r);
/* The i-th record (O(1) after the first call builds an index). i < count. */
em_value em_records_at(em_records *r, size_t i);
/* Iterate without an index: *cursor starts at 0; EM_ROW with *out, or EM_DONE. */
int em_records_next(const em_records *r, size_t *cursor, em_value *out);
/* The encoded bytes of all records, back to back, and their total size. */
const uint8_t *em_records_data(const em_records *r, size_t *len);

/* Makes a record sequence from the concatenated encodings in data (copied). Returns EM_EFORMAT
 * if data is not a sequence of whole, well-formed values. */
int em_records_from_data(const void *data, size_t len, em_records **out);

/* Checks that data[0..len) starts with one well-formed value and returns its encoded length
 * in *vlen. EM_EFORMAT otherwise. Any thread. */
int em_value_parse(const void *data, size_t len, size_t *vlen);

#ifdef __cplusplus
}
#endif
#endif
