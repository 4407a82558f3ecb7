/* Fuzz target: the control-plane frame decoder and the streaming frame reader (src/net/proto.h).
 *
 * Each input is used twice:
 *   1. as one complete frame for em_msg_decode (limit 1 MiB);
 *   2. as a byte stream fed to an em_frame_reader (limit 64 KiB) in chunks whose sizes come
 *      from the input's own bytes, every complete frame decoded as it comes out.
 * Properties checked for every frame that decodes: it re-encodes (em_msg_encode) to exactly the
 * same bytes (the encoding is canonical and every field is carried); every string list walks
 * to its count; decoded strings hold no NUL. The reader never returns a frame longer than its
 * limit, and once failed stays failed.
 *
 * Seeds: every message of messages.def encoded with empty fields and with filled ones (made
 * from the X-macro table, so a new message gets seeds without touching this file), and a
 * stream of several frames.
 */
#include "fuzz.h"

#include "net/proto.h"

#include <string.h>

const char fuzz_target_name[] = "proto";

void fuzz_init(void) {}

static void check_str(em_str s)
{
    fuzz_assert(!s.len || s.p, "string view without bytes");
    fuzz_assert(!memchr(s.p ? s.p : "", '\0', s.len), "decoded string holds a NUL");
}

static void check_strlist(const em_strlist *l)
{
    size_t pos = 0;
    uint32_t n = 0;
    em_str s;
    while (em_strlist_next(l, &pos, &s)) {
        check_str(s);
        n++;
    }
    fuzz_assert(n == l->count, "string list walked %u entries of %u", n, l->count);
}

/* Field checks, one per field kind, called through the table. */
static inline void check_f_u8(const uint8_t *v)
{
    (void)v;
}
static inline void check_f_u32(const uint32_t *v)
{
    (void)v;
}
static inline void check_f_i32(const int32_t *v)
{
    (void)v;
}
static inline void check_f_i64(const int64_t *v)
{
    (void)v;
}
static inline void check_f_u64(const uint64_t *v)
{
    (void)v;
}
static inline void check_f_f64(const double *v)
{
    (void)v;
}
static inline void check_f_str(const em_str *v)
{
    check_str(*v);
}
static inline void check_f_bytes(const em_bytes *v)
{
    fuzz_assert(!v->len || v->p, "byte view without bytes");
}
static inline void check_f_strlist(const em_strlist *v)
{
    check_strlist(v);
}

static void check_fields(const em_msg *m)
{
    switch (m->type) {
#define EM_F(kind, field) check_f_##kind(&x->field);
#define EM_MSG(ENUM, name, id, fields)                                                             \
    case id: {                                                                                     \
        const em_msg_##name *x = &m->u.name;                                                       \
        fields break;                                                                              \
    }
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
    default:
        fuzz_assert(0, "decoded a message of unknown type %d", m->type);
    }
}

/* A frame that decoded: its fields are sane and it re-encodes to the same bytes. */
static void check_round_trip(const uint8_t *frame, size_t len, const em_msg *m)
{
    fuzz_assert(em_msg_name(m->type) != NULL, "decoded type %d has no name", m->type);
    check_fields(m);
    em_buf b = EM_BUF_INIT;
    int rc = em_msg_encode(&b, m->type, &m->u);
    fuzz_assert(rc == 0, "re-encoding a decoded %s failed: %s", em_msg_name(m->type), em_errmsg());
    fuzz_assert(b.len == len && !memcmp(b.data, frame, len),
                "%s re-encodes to %zu bytes that differ from the %zu decoded", em_msg_name(m->type),
                b.len, len);
    em_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    em_msg m;
    if (em_msg_decode(data, size, 1u << 20, &m) == 0) check_round_trip(data, size, &m);

    /* The stream: chunk sizes 1..64 taken from the input itself, cycling. */
    const size_t max_frame = 64u << 10;
    em_frame_reader r;
    em_frame_reader_init(&r, max_frame);
    size_t pos = 0, k = 0;
    int failed = 0;
    while (pos < size) {
        size_t chunk = 1 + data[k++ % size] % 64;
        if (chunk > size - pos) chunk = size - pos;
        int rc = em_frame_reader_feed(&r, data + pos, chunk);
        pos += chunk;
        if (rc < 0) {
            fuzz_assert(rc == EM_EFORMAT || rc == EM_ENOMEM, "feed returned %d", rc);
            failed = 1;
            break;
        }
        const uint8_t *f;
        size_t flen;
        while ((rc = em_frame_reader_next(&r, &f, &flen)) == EM_ROW) {
            fuzz_assert(flen >= EM_FRAME_HEADER_SIZE && flen <= max_frame,
                        "reader returned a frame of %zu bytes", flen);
            if (em_msg_decode(f, flen, max_frame, &m) == 0) check_round_trip(f, flen, &m);
        }
        if (rc != EM_DONE) {
            fuzz_assert(rc == EM_EFORMAT, "next returned %d", rc);
            failed = 1;
            break;
        }
    }
    if (failed) {
        const uint8_t *f;
        size_t flen;
        fuzz_assert(em_frame_reader_next(&r, &f, &flen) == EM_EFORMAT, "a failed reader recovered");
        fuzz_assert(em_frame_reader_feed(&r, "x", 1) == EM_EFORMAT, "a failed reader took bytes");
    }
    em_frame_reader_free(&r);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------------------------
 */

static const em_str sample_items[3] = {{"a", 1}, {"NAME=value", 10}, {"", 0}};
static const uint8_t sample_bytes[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                         12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                         23, 24, 25, 26, 27, 28, 29, 30, 31};

static inline void fill_u8(uint8_t *v)
{
    *v = 1;
}
static inline void fill_u32(uint32_t *v)
{
    *v = 7077;
}
static inline void fill_i32(int32_t *v)
{
    *v = -9;
}
static inline void fill_i64(int64_t *v)
{
    *v = 1234567890123;
}
static inline void fill_u64(uint64_t *v)
{
    *v = 1024;
}
static inline void fill_f64(double *v)
{
    *v = 0.5;
}
static inline void fill_str(em_str *v)
{
    *v = em_str_c("app-20240101000000-0001");
}
static inline void fill_bytes(em_bytes *v)
{
    *v = (em_bytes){sample_bytes, sizeof sample_bytes};
}
static inline void fill_strlist(em_strlist *v)
{
    *v = (em_strlist){3, sample_items, NULL, 0};
}

/* Appends one frame of type (filled or all-empty fields) to out. */
static void encode_sample(em_buf *out, int type, int filled)
{
    em_msg m;
    memset(&m, 0, sizeof m);
    if (filled) {
        switch (type) {
#define EM_F(kind, field) fill_##kind(&x->field);
#define EM_MSG(ENUM, name, id, fields)                                                             \
    case id: {                                                                                     \
        em_msg_##name *x = &m.u.name;                                                              \
        fields break;                                                                              \
    }
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
        }
    }
    if (em_msg_encode(out, type, &m.u) != 0) {
        fprintf(stderr, "fuzz proto: cannot encode a sample %s: %s\n", em_msg_name(type),
                em_errmsg());
        exit(2);
    }
}

void fuzz_make_seeds(void)
{
    em_buf stream = EM_BUF_INIT;
    for (int type = 1; type < 65536; type++) {
        if (!em_msg_name(type)) continue;
        for (int filled = 0; filled < 2; filled++) {
            em_buf b = EM_BUF_INIT;
            encode_sample(&b, type, filled);
            fuzz_seed(b.data, b.len);
            if (filled && stream.len < 4096) em_buf_append(&stream, b.data, b.len);
            em_buf_free(&b);
        }
    }
    fuzz_seed(stream.data, stream.len);
    em_buf_free(&stream);
}
