/* em_records: growable sequences of encoded records, and the em_put_* builders.
 *
 * User functions append their output through the builders; the engine reads records back by
 * cursor (em_records_next) or by index (em_records_at, index built lazily and extended as
 * records are appended). A record is complete when the nesting depth returns to zero; only
 * complete records are counted, iterated and returned by em_records_data. Builders never
 * return errors: the first failure (EM_ENOMEM, or EM_EINVAL for em_put_end with nothing open
 * or nesting deeper than 64) is kept in r->err, reported by em_records_error(), and every later
 * builder call does nothing. The struct is in record_int.h so the engine can append encoded
 * records directly (em__put_raw, em__records_append_pair_raw).
 *
 * Thread rule: one thread at a time per em_records.
 */
#include "record/record_ext.h"
#include "record/record_int.h"

/* ---- lifecycle ----------------------------------------------------------------------------- */

em_records *em_records_new(void)
{
    return em__calloc(1, sizeof(em_records));
}

void em_records_free(em_records *r)
{
    if (!r) return;
    em_buf_free(&r->buf);
    em__free(r->index);
    em__free(r);
}

void em_records_clear(em_records *r)
{
    r->buf.len = 0;
    r->done = r->count = 0;
    r->depth = 0;
    r->err = 0;
    r->index_len = 0;
}

int em_records_error(const em_records *r)
{
    return r->err;
}

/* ---- builders ------------------------------------------------------------------------------ */

/* em_put_value / em_put_pair / em__put_raw accept values that point into out itself (appending
 * a record of out to out): the source is re-derived after the buffer grows. */

static void fail(em_records *r, int code)
{
    if (r->err) return;
    r->err = code;
    if (code == EM_ENOMEM)
        em__set_error(code, "out of memory while building records (%zu bytes)", r->buf.len);
    else
        em__set_error(code,
                      "unbalanced record builder calls (em_put_end with nothing open, or "
                      "nesting deeper than %d)",
                      EM_RECORD_MAX_DEPTH);
}

/* Room for n more bytes, or NULL (sticky error set / already failed). */
static inline uint8_t *put_reserve(em_records *r, size_t n)
{
    if (EM_UNLIKELY(r->err)) return NULL;
    if (EM_UNLIKELY(r->buf.cap - r->buf.len < n) && em_buf_reserve(&r->buf, n)) {
        fail(r, EM_ENOMEM);
        return NULL;
    }
    return r->buf.data + r->buf.len;
}

static inline void put_tag(em_records *out, uint8_t tag)
{
    uint8_t *p = put_reserve(out, 1);
    if (!p) return;
    *p = tag;
    out->buf.len++;
    em__records_value_done(out);
}

void em_put_null(em_records *out)
{
    put_tag(out, EM_TAG_NULL);
}
void em_put_bool(em_records *out, bool b)
{
    put_tag(out, b ? EM_TAG_TRUE : EM_TAG_FALSE);
}

void em_put_int64(em_records *out, int64_t x)
{
    uint8_t *p = put_reserve(out, 9);
    if (!p) return;
    em__enc_int64(p, x);
    out->buf.len += 9;
    em__records_value_done(out);
}

void em_put_double(em_records *out, double x)
{
    uint8_t *p = put_reserve(out, 9);
    if (!p) return;
    em__enc_double(p, x);
    out->buf.len += 9;
    em__records_value_done(out);
}

static inline void put_blob(em_records *out, uint8_t tag, const uint8_t *s, size_t len)
{
    if (EM_UNLIKELY(len > SIZE_MAX / 2 - 8)) {
        fail(out, EM_ENOMEM);
        return;
    }
    const uint8_t *z = len ? memchr(s, 0, len) : NULL;
    if (EM_LIKELY(!z)) {
        uint8_t *p = put_reserve(out, len + 3);
        if (!p) return;
        p[0] = tag;
        if (len) memcpy(p + 1, s, len);
        p[len + 1] = 0;
        p[len + 2] = 0;
        out->buf.len += len + 3;
    } else {
        /* Room for the worst case (every byte a zero), then copy the runs between zeros. */
        uint8_t *p = put_reserve(out, 2 * len + 3), *q = p;
        if (!p) return;
        *q++ = tag;
        const uint8_t *end = s + len;
        while (z) {
            size_t run = (size_t)(z - s);
            memcpy(q, s, run);
            q += run;
            *q++ = 0;
            *q++ = 0xFF;
            s = z + 1;
            z = s < end ? memchr(s, 0, (size_t)(end - s)) : NULL;
        }
        memcpy(q, s, (size_t)(end - s));
        q += end - s;
        *q++ = 0;
        *q++ = 0;
        out->buf.len += (size_t)(q - p);
    }
    em__records_value_done(out);
}

void em_put_str(em_records *out, const char *s, size_t len)
{
    put_blob(out, EM_TAG_STRING, (const uint8_t *)s, len);
}

void em_put_cstr(em_records *out, const char *s)
{
    put_blob(out, EM_TAG_STRING, (const uint8_t *)s, s ? strlen(s) : 0);
}

void em_put_bytes(em_records *out, const void *p, size_t len)
{
    put_blob(out, EM_TAG_BYTES, p, len);
}

static void put_open(em_records *out, uint8_t tag)
{
    if (out->err) return;
    if (out->depth >= EM_RECORD_MAX_DEPTH) {
        fail(out, EM_EINVAL);
        return;
    }
    uint8_t *p = put_reserve(out, 1);
    if (!p) return;
    *p = tag;
    out->buf.len++;
    out->depth++;
}

void em_put_tuple_begin(em_records *out)
{
    put_open(out, EM_TAG_TUPLE);
}
void em_put_list_begin(em_records *out)
{
    put_open(out, EM_TAG_LIST);
}

void em_put_end(em_records *out)
{
    if (out->err) return;
    if (out->depth == 0) {
        fail(out, EM_EINVAL);
        return;
    }
    uint8_t *p = put_reserve(out, 1);
    if (!p) return;
    *p = EM_TAG_END;
    out->buf.len++;
    out->depth--;
    em__records_value_done(out);
}

void em_put_value(em_records *out, em_value v)
{
    if (out->err) return;
    if (EM_UNLIKELY(v.len == 0)) { /* the "no value" of an out-of-range em_value_at */
        em_put_null(out);
        return;
    }
    if (EM_UNLIKELY(v.ext)) {
        int rc = em__value_encode_to(&out->buf, v);
        if (rc) {
            fail(out, rc == EM_ENOMEM ? EM_ENOMEM : rc);
            return;
        }
        em__records_value_done(out);
        return;
    }
    em__put_raw(out, v.data, v.len);
}

void em_put_pair(em_records *out, em_value key, em_value val)
{
    if (EM_LIKELY(!key.ext && !val.ext && key.len && val.len && out->depth == 0)) {
        em__records_append_pair_raw(out, key.data, key.len, val.data, val.len);
        return;
    }
    em_put_tuple_begin(out);
    em_put_value(out, key);
    em_put_value(out, val);
    em_put_end(out);
}

/* Offset of src inside out's own buffer (a value of out appended to out), or SIZE_MAX. */
static inline size_t self_offset(const em_records *out, const void *src)
{
    const uint8_t *s = src, *b = out->buf.data;
    return b && s >= b && s < b + out->buf.len ? (size_t)(s - b) : SIZE_MAX;
}

void em__put_raw(em_records *out, const void *enc, size_t len)
{
    size_t off = self_offset(out, enc); /* growing the buffer may move enc */
    uint8_t *p = put_reserve(out, len);
    if (!p) return;
    if (EM_UNLIKELY(off != SIZE_MAX)) enc = out->buf.data + off;
    memcpy(p, enc, len);
    out->buf.len += len;
    em__records_value_done(out);
}

int em__records_append_pair_raw(em_records *out, const uint8_t *k, size_t klen, const uint8_t *v,
                                size_t vlen)
{
    size_t koff = self_offset(out, k), voff = self_offset(out, v);
    uint8_t *p = put_reserve(out, klen + vlen + 2);
    if (!p) return out->err;
    if (EM_UNLIKELY(koff != SIZE_MAX)) k = out->buf.data + koff;
    if (EM_UNLIKELY(voff != SIZE_MAX)) v = out->buf.data + voff;
    p[0] = EM_TAG_TUPLE;
    memcpy(p + 1, k, klen);
    memcpy(p + 1 + klen, v, vlen);
    p[1 + klen + vlen] = EM_TAG_END;
    out->buf.len += klen + vlen + 2;
    em__records_value_done(out);
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

size_t em_records_count(const em_records *r)
{
    return r->count;
}

const uint8_t *em_records_data(const em_records *r, size_t *len)
{
    if (len) *len = r->done;
    return r->buf.data;
}

int em_records_next(const em_records *r, size_t *cursor, em_value *out)
{
    size_t pos = *cursor;
    if (pos >= r->done) return EM_DONE;
    const uint8_t *p = r->buf.data + pos;
    size_t n = em__value_skip_trusted(p); /* complete records are well-formed */
    *out = (em_value){p, n, NULL};
    *cursor = pos + n;
    return EM_ROW;
}

/* Extends the offset index to cover every complete record. false on out of memory. */
static bool index_extend(em_records *r)
{
    if (r->index_cap < r->count) {
        size_t cap = r->index_cap ? r->index_cap : 16;
        while (cap < r->count) cap *= 2;
        size_t *ix = em__realloc(r->index, cap * sizeof *ix);
        if (!ix) return false;
        r->index = ix;
        r->index_cap = cap;
    }
    size_t pos = 0;
    if (r->index_len) {
        size_t last = r->index[r->index_len - 1];
        pos = last + em__value_skip_trusted(r->buf.data + last);
    }
    while (r->index_len < r->count && pos < r->done) {
        size_t n = em__value_skip_trusted(r->buf.data + pos);
        r->index[r->index_len++] = pos;
        pos += n;
    }
    return true;
}

em_value em_records_at(em_records *r, size_t i)
{
    if (i >= r->count) return (em_value){NULL, 0, NULL};
    if (i >= r->index_len && !index_extend(r)) {
        /* No memory for an index: walk from the start. */
        size_t cursor = 0;
        em_value v = {NULL, 0, NULL};
        for (size_t k = 0; k <= i; k++)
            if (em_records_next(r, &cursor, &v) != EM_ROW) return (em_value){NULL, 0, NULL};
        return v;
    }
    if (i >= r->index_len) return (em_value){NULL, 0, NULL};
    size_t start = r->index[i];
    size_t end = i + 1 < r->index_len ? r->index[i + 1]
                                      : start + em__value_skip_trusted(r->buf.data + start);
    return (em_value){r->buf.data + start, end - start, NULL};
}

int em_records_from_data(const void *data, size_t len, em_records **out)
{
    *out = NULL;
    const uint8_t *p = data, *end = p + len;
    size_t count = 0;
    while (p < end) {
        size_t n = em__value_skip(p, end);
        if (!n)
            return em__set_error(EM_EFORMAT, "malformed record at byte offset %zu of %zu",
                                 (size_t)(p - (const uint8_t *)data), len);
        p += n;
        count++;
    }
    em_records *r = em_records_new();
    if (!r || em_buf_append(&r->buf, data, len)) {
        em_records_free(r);
        return em__set_error(EM_ENOMEM, "out of memory copying %zu bytes of records", len);
    }
    r->done = len;
    r->count = count;
    *out = r;
    return 0;
}
