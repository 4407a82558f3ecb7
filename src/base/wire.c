/* The wire writer and reader (see wire.h for the encodings and the error rule). One thread per
 * writer or reader. Reader functions check every length against `end` before touching a byte.
 */
#include "base/wire.h"

#include "base/symbols.h"

#include <stdio.h>
#include <string.h>

/* ---- writer ------------------------------------------------------------------------------ */

static void put(em_wire_writer *w, const void *p, size_t n)
{
    if (w->err) return;
    if (em_buf_append(w->out, p, n))
        w->err = em__set_error(EM_ENOMEM, "out of memory encoding %zu bytes", n);
}

void em_wire_put_u8(em_wire_writer *w, uint8_t v)
{
    put(w, &v, 1);
}

void em_wire_put_bool(em_wire_writer *w, bool v)
{
    em_wire_put_u8(w, v ? 1 : 0);
}

void em_wire_put_u32(em_wire_writer *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 4);
}

void em_wire_put_u64(em_wire_writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 8);
}

void em_wire_put_f64(em_wire_writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    em_wire_put_u64(w, bits);
}

void em_wire_put_uvar(em_wire_writer *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(w, b, n);
}

void em_wire_put_ivar(em_wire_writer *w, int64_t v)
{
    em_wire_put_uvar(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void em_wire_put_bytes(em_wire_writer *w, const void *p, size_t n)
{
    em_wire_put_uvar(w, n);
    if (n) put(w, p, n);
}

void em_wire_put_str(em_wire_writer *w, const char *s)
{
    if (!s) {
        em_wire_put_uvar(w, 0);
        return;
    }
    size_t n = strlen(s);
    em_wire_put_uvar(w, (uint64_t)n + 1);
    put(w, s, n);
}

void em_wire_put_fn(em_wire_writer *w, void (*fn)(void))
{
    if (w->err) return;
    int rc = em__fn_encode(fn, w->out);
    if (rc) w->err = rc;
}

/* ---- reader ------------------------------------------------------------------------------ */

void em_wire_reader_init(em_wire_reader *r, const void *data, size_t len, const char *what)
{
    r->start = r->p = data;
    r->end = r->p + (data ? len : 0);
    r->err = 0;
    r->what = what ? what : "input";
    r->where[0] = '\0';
}

int em_wire_fail(em_wire_reader *r, const char *fmt, ...)
{
    if (r->err) return r->err;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->err = EM_EFORMAT;
    em__set_error(EM_EFORMAT, "%s: %s%s%s (byte %zu of %zu)", r->what, r->where,
                  r->where[0] ? ": " : "", msg, (size_t)(r->p - r->start),
                  (size_t)(r->end - r->start));
    return r->err;
}

/* Claims n bytes; NULL (and the reader failed) if fewer remain. */
static const uint8_t *take(em_wire_reader *r, size_t n, const char *what)
{
    if (r->err) return NULL;
    if (em_wire_left(r) < n) {
        em_wire_fail(r, "truncated: %s needs %zu bytes, %zu left", what, n, em_wire_left(r));
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

uint8_t em_wire_get_u8(em_wire_reader *r)
{
    const uint8_t *q = take(r, 1, "a byte");
    return q ? *q : 0;
}

bool em_wire_get_bool(em_wire_reader *r)
{
    uint8_t v = em_wire_get_u8(r);
    if (v > 1) em_wire_fail(r, "a flag must be 0 or 1, not %u", v);
    return v == 1;
}

uint32_t em_wire_get_u32(em_wire_reader *r)
{
    const uint8_t *q = take(r, 4, "a 32-bit integer");
    uint32_t v = 0;
    for (int i = 0; q && i < 4; i++) v |= (uint32_t)q[i] << (8 * i);
    return v;
}

uint64_t em_wire_get_u64(em_wire_reader *r)
{
    const uint8_t *q = take(r, 8, "a 64-bit integer");
    uint64_t v = 0;
    for (int i = 0; q && i < 8; i++) v |= (uint64_t)q[i] << (8 * i);
    return v;
}

double em_wire_get_f64(em_wire_reader *r)
{
    uint64_t bits = em_wire_get_u64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

uint64_t em_wire_get_uvar(em_wire_reader *r)
{
    if (r->err) return 0;
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        if (r->p >= r->end) {
            em_wire_fail(r, "truncated: a varint runs past the end");
            return 0;
        }
        uint8_t b = *r->p;
        if (shift == 63 && b > 1) {
            em_wire_fail(r, "a varint overflows 64 bits");
            return 0;
        }
        r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
}

int64_t em_wire_get_ivar(em_wire_reader *r)
{
    uint64_t u = em_wire_get_uvar(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

int64_t em_wire_get_int(em_wire_reader *r, int64_t min, int64_t max, const char *field)
{
    int64_t v = em_wire_get_ivar(r);
    if (r->err) return 0;
    if (v < min || v > max) {
        em_wire_fail(r, "%s %lld is out of range [%lld, %lld]", field, (long long)v, (long long)min,
                     (long long)max);
        return 0;
    }
    return v;
}

size_t em_wire_get_count(em_wire_reader *r, size_t min_bytes_each, const char *field)
{
    uint64_t n = em_wire_get_uvar(r);
    if (r->err) return 0;
    if (min_bytes_each < 1) min_bytes_each = 1;
    if (n > em_wire_left(r) / min_bytes_each) {
        em_wire_fail(r, "%s %llu cannot fit in the %zu bytes left", field, (unsigned long long)n,
                     em_wire_left(r));
        return 0;
    }
    return (size_t)n;
}

const uint8_t *em_wire_get_bytes(em_wire_reader *r, size_t *len)
{
    *len = 0;
    uint64_t n = em_wire_get_uvar(r);
    if (r->err) return NULL;
    if (n > em_wire_left(r)) {
        em_wire_fail(r, "truncated: a %llu-byte string, %zu bytes left", (unsigned long long)n,
                     em_wire_left(r));
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    *len = (size_t)n;
    return q;
}

int em_wire_get_str(em_wire_reader *r, char **out)
{
    *out = NULL;
    uint64_t n1 = em_wire_get_uvar(r);
    if (r->err) return r->err;
    if (n1 == 0) return 0;
    const uint8_t *q = take(r, (size_t)(n1 - 1), "a string");
    if (!q) return r->err;
    size_t n = (size_t)(n1 - 1);
    if (memchr(q, 0, n)) return em_wire_fail(r, "a string holds a 0x00 byte");
    char *s = em__malloc(n + 1);
    if (!s) {
        r->err =
            em__set_error(EM_ENOMEM, "%s: out of memory reading a %zu-byte string", r->what, n);
        return r->err;
    }
    memcpy(s, q, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

int em_wire_get_fn(em_wire_reader *r, void (**fn)(void))
{
    *fn = NULL;
    if (r->err) return r->err;
    size_t at = (size_t)(r->p - r->start);
    int rc = em__fn_decode(&r->p, r->end, fn);
    if (rc) {
        r->err = rc;
        em__error_context(rc, "%s: %s%sbyte %zu", r->what, r->where, r->where[0] ? ": " : "", at);
    }
    return rc;
}

int em_wire_expect_end(em_wire_reader *r)
{
    if (!r->err && r->p != r->end)
        em_wire_fail(r, "%zu unexpected bytes at the end", em_wire_left(r));
    return r->err;
}
