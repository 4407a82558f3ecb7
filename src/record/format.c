/* The text form of values: what saveAsTextFile writes, what examples print.
 *
 *   null -> null          bool -> true / false         int64 -> decimal
 *   float64 -> shortest round-trip digits in Python's repr() style: "1.0", "0.1", "1e+16",
 *              "1.5e-07", "inf", "-inf", "nan"
 *   string, bytes -> the raw bytes (decoded, no quoting)
 *   tuple -> "(a,b)"       list -> "[a,b]" (spilled lists are iterated)
 *
 * em_value_format writes into a caller buffer with snprintf semantics; em_value_fprint writes
 * to a FILE. Any thread (the FILE's own locking applies).
 */
#include "record/record_ext.h"
#include "record/record_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct writer {
    char *buf; /* snprintf-style target (when f is NULL) */
    size_t cap;
    size_t n; /* bytes produced so far */
    FILE *f;
    int err;
} writer;

static void w_put(writer *w, const void *p, size_t len)
{
    if (!len) return;
    if (w->f) {
        if (!w->err && fwrite(p, 1, len, w->f) != len) w->err = errno ? -errno : EM_EIO;
    } else if (w->cap && w->n < w->cap - 1) {
        memcpy(w->buf + w->n, p, EM_MIN(len, w->cap - 1 - w->n));
    }
    w->n += len;
}

static void w_str(writer *w, const char *s)
{
    w_put(w, s, strlen(s));
}

size_t em__format_double(double x, char out[32])
{
    if (x != x) return (size_t)snprintf(out, 32, "nan");
    if (x == 1.0 / 0.0) return (size_t)snprintf(out, 32, "inf");
    if (x == -1.0 / 0.0) return (size_t)snprintf(out, 32, "-inf");
    if (x == 0) return (size_t)snprintf(out, 32, "0.0");
    /* Shortest precision that round-trips, as d.ddde±X. */
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    /* Split into sign, digits and decimal exponent: value = 0.d1d2... * 10^(exp+1). */
    const char *p = e;
    bool neg = *p == '-';
    if (neg) p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 23) digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--; /* %.*e may pad with zeros */
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    char *o = out;
    if (neg) *o++ = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++) *o++ = digits[i];
            else
                *o++ = '0';
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -exp - 1; i++) *o++ = '0';
            for (int i = 0; i < nd; i++) *o++ = digits[i];
        }
        *o = '\0';
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++) *o++ = digits[i];
        }
        o += sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    return (size_t)(o - out);
}

static void w_value(writer *w, em_value v)
{
    char num[40];
    switch (em_value_type(v)) {
    case EM_TYPE_NULL:
        w_str(w, "null");
        break;
    case EM_TYPE_BOOL:
        w_str(w, em_value_bool(v) ? "true" : "false");
        break;
    case EM_TYPE_INT64:
        snprintf(num, sizeof num, "%lld", (long long)em_value_int64(v));
        w_str(w, num);
        break;
    case EM_TYPE_FLOAT64:
        w_put(w, num, em__format_double(em_value_double(v), num));
        break;
    case EM_TYPE_STRING:
    case EM_TYPE_BYTES: {
        /* Payload runs between escapes; each 0x00 0xFF stands for one 0x00. */
        const uint8_t *p = v.data + 1, *end = v.data + v.len - 2;
        while (p < end) {
            const uint8_t *z = memchr(p, 0, (size_t)(end - p));
            w_put(w, p, (size_t)((z ? z : end) - p));
            if (!z) break;
            w_put(w, "", 1);
            p = z + 2;
        }
        break;
    }
    case EM_TYPE_TUPLE:
    case EM_TYPE_LIST: {
        bool tuple = v.data[0] == EM_TAG_TUPLE;
        w_put(w, tuple ? "(" : "[", 1);
        em_elems it;
        em_value e;
        em_elems_init(&it, v);
        for (int k = 0; em_elems_next(&it, &e) == EM_ROW; k++) {
            if (k) w_put(w, ",", 1);
            w_value(w, e);
        }
        w_put(w, tuple ? ")" : "]", 1);
        break;
    }
    default:
        w_str(w, "<invalid>");
        break;
    }
}

size_t em_value_format(em_value v, char *buf, size_t cap)
{
    writer w = {buf, cap, 0, NULL, 0};
    w_value(&w, v);
    if (cap) buf[EM_MIN(w.n, cap - 1)] = '\0';
    return w.n;
}

int em_value_fprint(em_value v, FILE *f)
{
    writer w = {NULL, 0, 0, f, 0};
    errno = 0;
    w_value(&w, v);
    if (w.err) return em__set_error(w.err, "cannot write a record: %s", em_strerror(w.err));
    return w.n > INT_MAX ? INT_MAX : (int)w.n;
}
