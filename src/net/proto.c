/* The control-plane message protocol: encoder, decoder, names and the streaming frame splitter
 * for the messages declared in src/net/messages.def (byte tables in proto.h, messages.def and
 * docs/formats.md "Control-plane frames").
 *
 * Who calls it: the RPC endpoints of src/net (master, worker, driver, executor) on their loop
 * threads, and the tests. Every function is any thread; nothing here keeps global state.
 *
 * Guarantees: the decoder treats a frame as untrusted input. Every read is bounds-checked
 * against the bytes that remain, the header is checked (length, limit, version, type) before
 * any field, a failure is EM_EFORMAT with a message naming the type, the field and the reason,
 * and bytes left after the last field are an error. It never allocates: decoded strings and
 * byte arrays are views into the frame. The frame reader refuses an oversize length from the
 * 4-byte length field alone, before buffering the body. The encoder appends whole frames or
 * nothing (out->len is restored on failure).
 */
#include "net/proto.h"

#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(double) == 8, "f64 fields are IEEE-754 doubles");

/* ---- little-endian helpers ------------------------------------------------------------------ */
static inline uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t ld_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint64_t ld_u64(const uint8_t *p)
{
    return (uint64_t)ld_u32(p) | (uint64_t)ld_u32(p + 4) << 32;
}
static inline void st_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void st_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void st_u64(uint8_t *p, uint64_t v)
{
    st_u32(p, (uint32_t)v);
    st_u32(p + 4, (uint32_t)(v >> 32));
}

/* ---- names ---------------------------------------------------------------------------------- */
const char *em_msg_name(int type)
{
    switch (type) {
#define EM_F(kind, field)
#define EM_MSG(ENUM, name, id, fields)                                                             \
    case id:                                                                                       \
        return #name;
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
    default:
        return NULL;
    }
}

int em_strlist_next(const em_strlist *l, size_t *pos, em_str *out)
{
    if (l->items) {
        if (*pos >= l->count) return 0;
        *out = l->items[(*pos)++];
        return 1;
    }
    if (!l->wire || *pos + 4 > l->wire_len) return 0;
    uint32_t n = ld_u32(l->wire + *pos);
    if (n > l->wire_len - *pos - 4) return 0; /* only for a hand-built, invalid list */
    out->p = (const char *)l->wire + *pos + 4;
    out->len = n;
    *pos += 4 + (size_t)n;
    return 1;
}

/* ---- encoder -------------------------------------------------------------------------------- */
static int enc_u8(em_buf *b, const char *f, const uint8_t *v)
{
    (void)f;
    return em_buf_append(b, v, 1);
}
static int enc_u32(em_buf *b, const char *f, const uint32_t *v)
{
    (void)f;
    uint8_t t[4];
    st_u32(t, *v);
    return em_buf_append(b, t, 4);
}
static int enc_i32(em_buf *b, const char *f, const int32_t *v)
{
    uint32_t u = (uint32_t)*v;
    return enc_u32(b, f, &u);
}
static int enc_u64(em_buf *b, const char *f, const uint64_t *v)
{
    (void)f;
    uint8_t t[8];
    st_u64(t, *v);
    return em_buf_append(b, t, 8);
}
static int enc_i64(em_buf *b, const char *f, const int64_t *v)
{
    uint64_t u = (uint64_t)*v;
    return enc_u64(b, f, &u);
}
static int enc_f64(em_buf *b, const char *f, const double *v)
{
    uint64_t u;
    memcpy(&u, v, 8);
    return enc_u64(b, f, &u);
}
static int enc_blob(em_buf *b, const char *f, const void *p, uint32_t len)
{
    if (len > 0 && !p) return em__set_error(EM_EINVAL, "encoding field '%s': NULL data", f);
    int rc = enc_u32(b, f, &len);
    if (rc == 0 && len > 0) rc = em_buf_append(b, p, len);
    return rc;
}
static int enc_str(em_buf *b, const char *f, const em_str *v)
{
    return enc_blob(b, f, v->p, v->len);
}
static int enc_bytes(em_buf *b, const char *f, const em_bytes *v)
{
    return enc_blob(b, f, v->p, v->len);
}
static int enc_strlist(em_buf *b, const char *f, const em_strlist *v)
{
    int rc = enc_u32(b, f, &v->count);
    if (rc != 0) return rc;
    if (!v->items) {
        if (v->count > 0 && !v->wire)
            return em__set_error(EM_EINVAL, "encoding field '%s': list without items", f);
        return v->wire_len ? em_buf_append(b, v->wire, v->wire_len) : 0;
    }
    for (uint32_t i = 0; i < v->count && rc == 0; i++) rc = enc_str(b, f, &v->items[i]);
    return rc;
}

int em_msg_encode(em_buf *out, int type, const void *msg)
{
    size_t start = out->len;
    uint8_t hdr[EM_FRAME_HEADER_SIZE] = {0};
    if (type <= 0 || type > UINT16_MAX || !em_msg_name(type))
        return em__set_error(EM_EINVAL, "encoding a frame: unknown message type %d", type);
    st_u16(hdr + 4, EM_PROTO_VERSION);
    st_u16(hdr + 6, (uint16_t)type);
    int rc = em_buf_append(out, hdr, sizeof hdr);
    switch (type) {
#define EM_F(kind, field)                                                                          \
    if (rc == 0) rc = enc_##kind(out, #field, &m->field);
#define EM_MSG(ENUM, name, id, fields)                                                             \
    case id: {                                                                                     \
        const em_msg_##name *m = msg;                                                              \
        fields break;                                                                              \
    }
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
    }
    if (rc == 0 && out->len - start - 4 > UINT32_MAX)
        rc = em__set_error(EM_ETOOBIG, "encoding a %s frame: %zu bytes exceed the 4 GiB limit",
                           em_msg_name(type), out->len - start);
    if (rc != 0) {
        out->len = start;
        if (rc == EM_ENOMEM)
            em__set_error(rc, "encoding a %s frame: out of memory", em_msg_name(type));
        return rc;
    }
    st_u32(out->data + start, (uint32_t)(out->len - start - 4));
    return 0;
}

/* ---- decoder -------------------------------------------------------------------------------- */
typedef struct rd {
    const uint8_t *p; /* next byte */
    size_t left;      /* bytes from p to the end of the frame */
    int type;
} rd;

static int rd_fail(const rd *r, const char *field, const char *fmt, ...) EM_PRINTF(3, 4);
static int rd_fail(const rd *r, const char *field, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return em__set_error(EM_EFORMAT, "frame type %d (%s) field '%s': %s", r->type,
                         em_msg_name(r->type), field, why);
}
static int rd_need(rd *r, const char *field, const char *what, size_t n)
{
    if (n > r->left) return rd_fail(r, field, "%s needs %zu bytes, %zu remain", what, n, r->left);
    return 0;
}
static int dec_u8(rd *r, const char *f, uint8_t *v)
{
    int rc = rd_need(r, f, "u8", 1);
    if (rc) return rc;
    *v = r->p[0];
    r->p++, r->left--;
    return 0;
}
static int dec_u32(rd *r, const char *f, uint32_t *v)
{
    int rc = rd_need(r, f, "u32", 4);
    if (rc) return rc;
    *v = ld_u32(r->p);
    r->p += 4, r->left -= 4;
    return 0;
}
static int dec_i32(rd *r, const char *f, int32_t *v)
{
    uint32_t u;
    int rc = dec_u32(r, f, &u);
    if (rc == 0) *v = (int32_t)u;
    return rc;
}
static int dec_u64(rd *r, const char *f, uint64_t *v)
{
    int rc = rd_need(r, f, "u64", 8);
    if (rc) return rc;
    *v = ld_u64(r->p);
    r->p += 8, r->left -= 8;
    return 0;
}
static int dec_i64(rd *r, const char *f, int64_t *v)
{
    uint64_t u;
    int rc = dec_u64(r, f, &u);
    if (rc == 0) *v = (int64_t)u;
    return rc;
}
static int dec_f64(rd *r, const char *f, double *v)
{
    uint64_t u;
    int rc = dec_u64(r, f, &u);
    if (rc == 0) memcpy(v, &u, 8);
    return rc;
}
/* u32 length + bytes; the view is returned in *p / *len. */
static int dec_blob(rd *r, const char *f, const uint8_t **p, uint32_t *len)
{
    *p = NULL;
    *len = 0;
    int rc = rd_need(r, f, "length", 4);
    if (rc) return rc;
    uint32_t n = ld_u32(r->p);
    if (n > r->left - 4)
        return rd_fail(r, f, "length %u exceeds remaining %zu bytes", n, r->left - 4);
    *p = r->p + 4;
    *len = n;
    r->p += 4 + (size_t)n, r->left -= 4 + (size_t)n;
    return 0;
}
static int dec_str(rd *r, const char *f, em_str *v)
{
    const uint8_t *p = NULL;
    int rc = dec_blob(r, f, &p, &v->len);
    if (rc) return rc;
    const uint8_t *nul = v->len ? memchr(p, 0, v->len) : NULL;
    if (nul)
        return rd_fail(r, f, "NUL byte at offset %zu of a %u-byte string", (size_t)(nul - p),
                       v->len);
    v->p = v->len ? (const char *)p : "";
    return 0;
}
static int dec_bytes(rd *r, const char *f, em_bytes *v)
{
    int rc = dec_blob(r, f, &v->p, &v->len);
    if (rc == 0 && v->len == 0) v->p = NULL;
    return rc;
}
static int dec_strlist(rd *r, const char *f, em_strlist *v)
{
    int rc = dec_u32(r, f, &v->count);
    if (rc) return rc;
    /* Each entry takes at least its 4-byte length: refuse absurd counts before walking. */
    if (v->count > r->left / 4)
        return rd_fail(r, f, "list count %u cannot fit in remaining %zu bytes", v->count, r->left);
    v->items = NULL;
    v->wire = v->count ? r->p : NULL;
    const uint8_t *start = r->p;
    for (uint32_t i = 0; i < v->count; i++) {
        em_str s = {0};
        if ((rc = dec_str(r, f, &s)) != 0)
            return em__error_context(rc, "list entry %u of %u", i, v->count);
    }
    v->wire_len = (size_t)(r->p - start);
    return 0;
}

/* Checks a frame header against the bytes available (avail >= 4). 0 or EM_EFORMAT. */
static int check_header(const uint8_t *frame, size_t avail, size_t max_frame)
{
    uint32_t length = ld_u32(frame);
    if (length < 4)
        return em__set_error(EM_EFORMAT, "frame length %u is shorter than the 4-byte header rest",
                             length);
    if ((uint64_t)length + 4 > max_frame)
        return em__set_error(EM_EFORMAT,
                             "frame length %u exceeds the limit of %zu bytes "
                             "(ember.rpc.message.maxSize)",
                             length, max_frame);
    if (avail >= EM_FRAME_HEADER_SIZE && ld_u16(frame + 4) != EM_PROTO_VERSION)
        return em__set_error(EM_EFORMAT,
                             "frame protocol version %u, this process speaks version %u",
                             ld_u16(frame + 4), EM_PROTO_VERSION);
    return 0;
}

int em_msg_decode(const uint8_t *frame, size_t len, size_t max_frame, em_msg *out)
{
    if (len < EM_FRAME_HEADER_SIZE)
        return em__set_error(EM_EFORMAT, "frame of %zu bytes is shorter than its %d-byte header",
                             len, EM_FRAME_HEADER_SIZE);
    int rc = check_header(frame, len, max_frame);
    if (rc) return rc;
    uint32_t length = ld_u32(frame);
    if ((uint64_t)length + 4 != len)
        return em__set_error(EM_EFORMAT, "frame length field says %u bytes, %zu follow it", length,
                             len - 4);
    rd r = {frame + EM_FRAME_HEADER_SIZE, len - EM_FRAME_HEADER_SIZE, ld_u16(frame + 6)};
    memset(out, 0, sizeof *out);
    out->type = r.type;
    switch (r.type) {
#define EM_F(kind, field)                                                                          \
    if ((rc = dec_##kind(&r, #field, &m->field)) != 0) return rc;
#define EM_MSG(ENUM, name, id, fields)                                                             \
    case id: {                                                                                     \
        em_msg_##name *m = &out->u.name;                                                           \
        fields break;                                                                              \
    }
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
    default:
        return em__set_error(EM_EFORMAT, "frame type %d: unknown message type (%zu-byte frame)",
                             r.type, len);
    }
    if (r.left != 0)
        return em__set_error(EM_EFORMAT,
                             "frame type %d (%s): %zu bytes of trailing garbage after "
                             "the last field",
                             r.type, em_msg_name(r.type), r.left);
    return 0;
}

/* ---- streaming frame splitter --------------------------------------------------------------- */
void em_frame_reader_init(em_frame_reader *r, size_t max_frame)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame < EM_FRAME_HEADER_SIZE ? EM_FRAME_HEADER_SIZE : max_frame;
}

void em_frame_reader_free(em_frame_reader *r)
{
    em_buf_free(&r->buf);
    r->start = 0;
}

/* Checks the header of the first pending frame once enough of it is in. Sets the sticky error. */
static int reader_check(em_frame_reader *r)
{
    size_t avail = r->buf.len - r->start;
    if (avail < 4) return 0;
    int rc = check_header(r->buf.data + r->start, avail, r->max_frame);
    if (rc)
        r->failed = em__error_context(rc, "after %llu good frames", (unsigned long long)r->frames);
    return rc;
}

int em_frame_reader_feed(em_frame_reader *r, const void *data, size_t n)
{
    if (r->failed) return r->failed;
    if (r->start > 0) { /* drop the frames already returned */
        size_t keep = r->buf.len - r->start;
        if (keep) memmove(r->buf.data, r->buf.data + r->start, keep);
        r->buf.len = keep;
        r->start = 0;
    }
    if (r->buf.len == 0 && r->buf.cap > (1u << 20)) em_buf_free(&r->buf); /* after a big frame */
    const uint8_t *p = data;
    /* Complete the header of a partial frame first, so that its length is judged before the
     * body is buffered. */
    if (r->buf.len < EM_FRAME_HEADER_SIZE && n > 0) {
        size_t take = EM_MIN(n, EM_FRAME_HEADER_SIZE - r->buf.len);
        if (em_buf_append(&r->buf, p, take) != 0)
            return em__set_error(EM_ENOMEM, "buffering a frame header: out of memory");
        p += take, n -= take;
        int rc = reader_check(r);
        if (rc) return rc;
    }
    if (n > 0 && em_buf_append(&r->buf, p, n) != 0)
        return em__set_error(EM_ENOMEM, "buffering %zu bytes of frames: out of memory", n);
    return 0;
}

int em_frame_reader_next(em_frame_reader *r, const uint8_t **frame, size_t *len)
{
    if (r->failed) return r->failed;
    size_t avail = r->buf.len - r->start;
    if (avail < 4) return EM_DONE;
    int rc = reader_check(r);
    if (rc) return rc;
    if (avail < EM_FRAME_HEADER_SIZE) return EM_DONE;
    size_t flen = (size_t)ld_u32(r->buf.data + r->start) + 4;
    if (avail < flen) return EM_DONE;
    *frame = r->buf.data + r->start;
    *len = flen;
    r->start += flen;
    r->frames++;
    return EM_ROW;
}
