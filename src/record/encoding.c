/* The order-preserving record encoding: validation, accessors, iteration, comparison, hashing.
 *
 * Every value is a tag byte followed by its payload:
 *
 *   tag   type      payload
 *   0x01  null      (none)
 *   0x02  false     (none)
 *   0x03  true      (none)
 *   0x04  int64     8 bytes big-endian of ((uint64_t)x ^ 0x8000000000000000)
 *   0x05  float64   8 bytes big-endian of u, where u = bits(x) after -0.0 -> +0.0 and every NaN
 *                   -> 0x7ff8000000000000; then u = ~u if the sign bit is set, else
 *                   u |= 0x8000000000000000 (-inf < ... < -0 = +0 < ... < +inf < NaN)
 *   0x06  string    the bytes, each 0x00 written as 0x00 0xFF, then the terminator 0x00 0x00
 *   0x07  bytes     as string
 *   0x08  tuple     the encoded elements back to back, then a 0x00 terminator
 *   0x09  list      as tuple
 *
 * memcmp() of two encodings (a shorter encoding that is a prefix of the other first — which
 * cannot happen between two whole values, the code is prefix-free) is the logical order, and
 * equal values have equal bytes. Type order is the tag order. A well-formed value nests at most
 * EM_RECORD_MAX_DEPTH (64) tuples/lists, has only 0x00 0xFF / 0x00 0x00 after a 0x00 in a
 * string, and holds only canonical floats (no -0.0, one NaN). docs/formats.md has this table.
 *
 * Values handed to user code are trusted and read with cheap checks; em_value_parse and
 * em__value_skip fully validate untrusted bytes and never read past their end. Spilled lists
 * (em_value.ext, record_ext.h) are handled by iterating them. Any thread; the decode scratch
 * ring of em_value_str/em_value_bytes is per thread (freed at thread exit).
 */
#define XXH_STATIC_LINKING_ONLY
#include "record/record_ext.h"
#include "record/record_int.h"

#include <pthread.h>
#include <xxhash.h>

/* ---- validation ---------------------------------------------------------------------------- */

size_t em__value_skip(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *start = p;
    int depth = 0;
    for (;;) {
        if (p >= end) return 0;
        uint8_t tag = *p++;
        switch (tag) {
        case EM_TAG_END:
            if (depth == 0) return 0;
            depth--;
            break;
        case EM_TAG_NULL:
        case EM_TAG_FALSE:
        case EM_TAG_TRUE:
            break;
        case EM_TAG_INT64:
            if (end - p < 8) return 0;
            p += 8;
            break;
        case EM_TAG_FLOAT64: {
            if (end - p < 8) return 0;
            uint64_t key;
            memcpy(&key, p, 8);
            if (em__double_key(em__dec_double(p)) != em__bswap_be(key)) return 0;
            p += 8;
            break;
        }
        case EM_TAG_STRING:
        case EM_TAG_BYTES:
            for (;;) {
                const uint8_t *z = memchr(p, 0, (size_t)(end - p));
                if (!z || end - z < 2) return 0;
                if (z[1] == 0x00) {
                    p = z + 2;
                    break;
                }
                if (z[1] != 0xFF) return 0;
                p = z + 2;
            }
            break;
        case EM_TAG_TUPLE:
        case EM_TAG_LIST:
            if (++depth > EM_RECORD_MAX_DEPTH) return 0;
            continue;
        default:
            return 0;
        }
        if (depth == 0) return (size_t)(p - start);
    }
}

int em_value_parse(const void *data, size_t len, size_t *vlen)
{
    const uint8_t *p = data;
    size_t n = len ? em__value_skip(p, p + len) : 0;
    if (vlen) *vlen = n;
    if (n == 0)
        return em__set_error(EM_EFORMAT, "malformed record: %zu bytes do not start with a value",
                             len);
    return 0;
}

/* Skips one trusted value quickly (scalars inline), falling back to the full check. */
static inline size_t skip_fast(const uint8_t *p, const uint8_t *end)
{
    if (EM_LIKELY(p < end)) {
        switch (*p) {
        case EM_TAG_NULL:
        case EM_TAG_FALSE:
        case EM_TAG_TRUE:
            return 1;
        case EM_TAG_INT64:
            return end - p >= 9 ? 9 : 0;
        default:
            break;
        }
    }
    return em__value_skip(p, end);
}

size_t em__value_skip_trusted(const uint8_t *p)
{
    const uint8_t *start = p;
    int depth = 0;
    do {
        switch (*p) {
        case EM_TAG_INT64:
        case EM_TAG_FLOAT64:
            p += 9;
            break;
        case EM_TAG_STRING:
        case EM_TAG_BYTES:
            p++;
            for (;;) { /* 0x00 0x00 ends the payload; 0x00 0xFF is an escaped zero byte */
                p = rawmemchr(p, 0);
                p += 2;
                if (p[-1] == 0) break;
            }
            break;
        case EM_TAG_TUPLE:
        case EM_TAG_LIST:
            p++;
            depth++;
            continue;
        case EM_TAG_END:
            p++;
            depth--;
            break;
        default:
            p++;
            break; /* null, false, true */
        }
    } while (depth > 0);
    return (size_t)(p - start);
}

/* ---- types and scalars --------------------------------------------------------------------- */

em_type em_value_type(em_value v)
{
    if (!v.data || v.len == 0) return EM_TYPE_INVALID;
    const uint8_t *d = v.data;
    size_t n = v.len;
    switch (d[0]) {
    case EM_TAG_NULL:
        return n == 1 ? EM_TYPE_NULL : EM_TYPE_INVALID;
    case EM_TAG_FALSE:
    case EM_TAG_TRUE:
        return n == 1 ? EM_TYPE_BOOL : EM_TYPE_INVALID;
    case EM_TAG_INT64:
        return n == 9 ? EM_TYPE_INT64 : EM_TYPE_INVALID;
    case EM_TAG_FLOAT64:
        return n == 9 ? EM_TYPE_FLOAT64 : EM_TYPE_INVALID;
    case EM_TAG_STRING:
    case EM_TAG_BYTES:
        if (n < 3 || d[n - 1] != 0 || d[n - 2] != 0) return EM_TYPE_INVALID;
        return d[0] == EM_TAG_STRING ? EM_TYPE_STRING : EM_TYPE_BYTES;
    case EM_TAG_TUPLE:
        return n >= 2 && d[n - 1] == 0 ? EM_TYPE_TUPLE : EM_TYPE_INVALID;
    case EM_TAG_LIST:
        return n >= 2 && d[n - 1] == 0 ? EM_TYPE_LIST : EM_TYPE_INVALID;
    default:
        return EM_TYPE_INVALID;
    }
}

const char *em_type_name(em_type t)
{
    switch (t) {
    case EM_TYPE_NULL:
        return "null";
    case EM_TYPE_BOOL:
        return "bool";
    case EM_TYPE_INT64:
        return "int64";
    case EM_TYPE_FLOAT64:
        return "float64";
    case EM_TYPE_STRING:
        return "string";
    case EM_TYPE_BYTES:
        return "bytes";
    case EM_TYPE_TUPLE:
        return "tuple";
    case EM_TYPE_LIST:
        return "list";
    default:
        return "invalid";
    }
}

bool em_value_bool(em_value v)
{
    return v.len == 1 && v.data[0] == EM_TAG_TRUE;
}

int64_t em_value_int64(em_value v)
{
    return v.len == 9 && v.data[0] == EM_TAG_INT64 ? em__dec_int64(v.data + 1) : 0;
}

double em_value_double(em_value v)
{
    return v.len == 9 && v.data[0] == EM_TAG_FLOAT64 ? em__dec_double(v.data + 1) : 0.0;
}

/* ---- strings and bytes --------------------------------------------------------------------- */

#define SCRATCH_RING 16
struct scratch {
    uint8_t *buf[SCRATCH_RING];
    size_t cap[SCRATCH_RING];
    unsigned next;
};
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local struct scratch *tls_scratch;

static void scratch_free(void *p)
{
    struct scratch *s = p;
    for (int i = 0; i < SCRATCH_RING; i++) em__free(s->buf[i]);
    em__free(s);
    tls_scratch = NULL;
}

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

/* A per-thread buffer of at least n bytes, valid for the next SCRATCH_RING - 1 calls. */
static uint8_t *scratch_get(size_t n)
{
    struct scratch *s = tls_scratch;
    if (EM_UNLIKELY(!s)) {
        pthread_once(&scratch_once, scratch_key_init);
        s = em__calloc(1, sizeof *s);
        if (!s) return NULL;
        pthread_setspecific(scratch_key, s);
        tls_scratch = s;
    }
    unsigned i = s->next;
    s->next = (i + 1) % SCRATCH_RING;
    if (s->cap[i] < n || !s->buf[i]) {
        size_t cap = n < 64 ? 64 : n;
        uint8_t *b = em__realloc(s->buf[i], cap);
        if (!b) return NULL;
        s->buf[i] = b;
        s->cap[i] = cap;
    }
    return s->buf[i];
}

/* The escaped payload of a string/bytes value of the given tag (between tag and terminator). */
static inline const uint8_t *blob_payload(em_value v, uint8_t tag, size_t *plen)
{
    if (v.len < 3 || v.data[0] != tag) return NULL;
    *plen = v.len - 3;
    return v.data + 1;
}

/* Decodes an escaped payload into dst (room for cap bytes); returns the decoded length. */
static size_t unescape(const uint8_t *p, size_t n, uint8_t *dst, size_t cap)
{
    size_t out = 0;
    const uint8_t *end = p + n;
    while (p < end) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        size_t run = (size_t)((z ? z : end) - p);
        if (out < cap) memcpy(dst + out, p, EM_MIN(run, cap - out));
        out += run;
        if (!z) break;
        if (out < cap) dst[out] = 0;
        out++;
        p = z + 2;
    }
    return out;
}

static const uint8_t *blob(em_value v, uint8_t tag, size_t *len)
{
    size_t plen;
    const uint8_t *p = blob_payload(v, tag, &plen);
    *len = 0;
    if (!p) return NULL;
    if (EM_LIKELY(!memchr(p, 0, plen))) {
        *len = plen;
        return p;
    }
    uint8_t *dst = scratch_get(plen);
    if (!dst) return NULL;
    *len = unescape(p, plen, dst, plen);
    return dst;
}

const char *em_value_str(em_value v, size_t *len)
{
    size_t n;
    const char *s = (const char *)blob(v, EM_TAG_STRING, &n);
    if (len) *len = n;
    return s;
}

const uint8_t *em_value_bytes(em_value v, size_t *len)
{
    size_t n;
    const uint8_t *s = blob(v, EM_TAG_BYTES, &n);
    if (len) *len = n;
    return s;
}

size_t em_value_copy_bytes(em_value v, void *dst, size_t cap)
{
    size_t plen;
    const uint8_t *p = blob_payload(v, EM_TAG_STRING, &plen);
    if (!p) p = blob_payload(v, EM_TAG_BYTES, &plen);
    if (!p) return 0;
    return unescape(p, plen, dst, dst ? cap : 0);
}

/* ---- tuples and lists ---------------------------------------------------------------------- */

static const em_value no_value = {NULL, 0, NULL};

static inline bool is_container(em_value v)
{
    return v.len >= 2 && (v.data[0] == EM_TAG_TUPLE || v.data[0] == EM_TAG_LIST);
}

/* A tuple with ext set: its last element is a spilled list (encoded in the tuple's bytes as the
 * empty-list placeholder 0x09 0x00) whose elements are in ext — how the shuffle hands out the
 * (key, [values...]) record of a group too large for memory. */
static inline bool tuple_with_ext(em_value v)
{
    return v.ext && v.len >= 2 && v.data[0] == EM_TAG_TUPLE;
}

void em_elems_init(em_elems *it, em_value container)
{
    it->state = NULL;
    it->ext = NULL;
    it->pos = it->end = NULL;
    if (container.ext && !tuple_with_ext(container)) {
        it->ext = container.ext;
    } else if (is_container(container)) {
        it->pos = container.data + 1;
        it->end = container.data + container.len - 1;
        it->state = (void *)container.ext; /* the last element's spilled list, if any */
    }
}

int em_elems_next(em_elems *it, em_value *out)
{
    if (EM_UNLIKELY(it->ext != NULL)) {
        const em_ext_list *x = it->ext;
        int rc = 0;
        if (!it->end) { /* not opened yet; end becomes a non-NULL marker once open */
            rc = x->open(x, it);
            it->end = (const uint8_t *)it;
        }
        if (rc == 0) rc = x->next(it, out);
        if (rc != EM_ROW) { /* finished: later calls return EM_DONE */
            it->ext = NULL;
            it->pos = it->end = NULL;
            it->state = NULL;
        }
        return rc;
    }
    if (it->pos >= it->end) return EM_DONE;
    size_t n = skip_fast(it->pos, it->end);
    if (EM_UNLIKELY(n == 0)) {
        it->pos = it->end;
        return em__set_error(EM_EFORMAT, "malformed element in a tuple or list");
    }
    *out = (em_value){it->pos, n, NULL};
    it->pos += n;
    if (EM_UNLIKELY(it->state != NULL) && it->pos == it->end) out->ext = it->state;
    return EM_ROW;
}

/* Runs an iteration to its end so that a spilled list frees its state. */
static void elems_drain(em_elems *it)
{
    em_value v;
    while (em_elems_next(it, &v) == EM_ROW) {
    }
}

size_t em_value_count(em_value v)
{
    if (v.ext && !tuple_with_ext(v)) return (size_t)((const em_ext_list *)v.ext)->count;
    if (!is_container(v)) return 0;
    size_t count = 0;
    const uint8_t *p = v.data + 1, *end = v.data + v.len - 1;
    while (p < end) {
        size_t n = skip_fast(p, end);
        if (!n) break;
        p += n;
        count++;
    }
    return count;
}

em_value em_value_at(em_value v, size_t i)
{
    if (v.ext && !tuple_with_ext(v)) {
        em_elems it;
        em_value e, res = no_value;
        em_elems_init(&it, v);
        for (size_t k = 0; em_elems_next(&it, &e) == EM_ROW; k++) {
            if (k != i) continue;
            /* The element lives in the iteration's buffer: keep a copy that outlives it. */
            em_buf b = EM_BUF_INIT;
            if (em__value_encode_to(&b, e) == 0) {
                uint8_t *s = scratch_get(b.len);
                if (s) {
                    memcpy(s, b.data, b.len);
                    res = (em_value){s, b.len, NULL};
                }
            }
            em_buf_free(&b);
            elems_drain(&it);
            break;
        }
        return res;
    }
    if (!is_container(v)) return no_value;
    const uint8_t *p = v.data + 1, *end = v.data + v.len - 1;
    while (p < end) {
        size_t n = skip_fast(p, end);
        if (!n) break;
        if (i-- == 0) return (em_value){p, n, p + n == end ? v.ext : NULL};
        p += n;
    }
    return no_value;
}

em_value em_value_key(em_value pair)
{
    if (EM_UNLIKELY(pair.len < 3 || pair.data[0] != EM_TAG_TUPLE)) return no_value;
    const uint8_t *p = pair.data + 1, *end = pair.data + pair.len - 1;
    size_t n = skip_fast(p, end);
    return n ? (em_value){p, n, NULL} : no_value;
}

em_value em_value_val(em_value pair)
{
    if (EM_UNLIKELY(pair.len < 3 || pair.data[0] != EM_TAG_TUPLE)) return no_value;
    const uint8_t *p = pair.data + 1, *end = pair.data + pair.len - 1;
    size_t n = skip_fast(p, end);
    if (!n) return no_value;
    p += n;
    n = p < end ? skip_fast(p, end) : 0;
    return n ? (em_value){p, n, p + n == end ? pair.ext : NULL} : no_value;
}

/* ---- comparison and hashing ---------------------------------------------------------------- */

/* Element-wise comparison when at least one side is a spilled list; equal to comparing the
 * materialised encodings (the element code is prefix-free and 0x00 ends a container). */
static int cmp_ext(em_value a, em_value b)
{
    uint8_t ta = a.len ? a.data[0] : 0, tb = b.len ? b.data[0] : 0;
    if (ta != tb || (ta != EM_TAG_LIST && ta != EM_TAG_TUPLE)) return (ta > tb) - (ta < tb);
    em_elems ia, ib;
    em_elems_init(&ia, a);
    em_elems_init(&ib, b);
    int res = 0;
    for (;;) {
        em_value ea, eb;
        int ra = em_elems_next(&ia, &ea);
        int rb = em_elems_next(&ib, &eb);
        if (ra != EM_ROW || rb != EM_ROW) {
            res = (ra == EM_ROW) - (rb == EM_ROW);
            break;
        }
        res = em_value_cmp(ea, eb);
        if (res) break;
    }
    elems_drain(&ia);
    elems_drain(&ib);
    return res;
}

int em_value_cmp(em_value a, em_value b)
{
    if (EM_UNLIKELY(a.ext || b.ext)) return cmp_ext(a, b);
    size_t n = EM_MIN(a.len, b.len);
    int c = n ? memcmp(a.data, b.data, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return (a.len > b.len) - (a.len < b.len);
}

bool em_value_eq(em_value a, em_value b)
{
    if (EM_UNLIKELY(a.ext || b.ext)) return cmp_ext(a, b) == 0;
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static void hash_update(XXH3_state_t *st, em_value v)
{
    if (!v.ext) {
        XXH3_64bits_update(st, v.data, v.len);
        return;
    }
    static const uint8_t close = EM_TAG_END;
    XXH3_64bits_update(st, v.data, 1); /* the tuple or list tag */
    em_elems it;
    em_value e;
    em_elems_init(&it, v);
    while (em_elems_next(&it, &e) == EM_ROW) hash_update(st, e);
    XXH3_64bits_update(st, &close, 1);
}

uint64_t em_value_hash(em_value v)
{
    if (EM_LIKELY(!v.ext)) return XXH3_64bits(v.data, v.len);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    hash_update(&st, v);
    return XXH3_64bits_digest(&st);
}

int em__value_encode_to(em_buf *b, em_value v)
{
    if (!v.ext) return em_buf_append(b, v.data, v.len);
    uint8_t tag = v.data[0]; /* a spilled list, or a tuple ending with one */
    if (em_buf_append(b, &tag, 1)) return EM_ENOMEM;
    em_elems it;
    em_value e;
    int rc;
    em_elems_init(&it, v);
    while ((rc = em_elems_next(&it, &e)) == EM_ROW) {
        int wrc = em__value_encode_to(b, e);
        if (wrc) {
            elems_drain(&it);
            return wrc;
        }
    }
    if (rc < 0) return rc;
    tag = EM_TAG_END;
    return em_buf_append(b, &tag, 1);
}
