/* Tests of the control-plane message protocol (src/net/proto.c): known frame bytes, random
 * round trips of every message type, the streaming frame reader under every chunking, and a
 * mutation fuzz of the decoder (run it under the ASan build); and the shared-secret
 * challenge-response helpers of src/net/auth.c (RFC 4231 HMAC vectors, a mutual handshake,
 * refusals of a wrong secret, a replayed or reflected proof, bad lengths). */
#include "test.h"

#include "base/base.h"
#include "net/auth.h"
#include "net/proto.h"

#include <ember/errors.h>

/* ---- a seeded PRNG (splitmix64) ------------------------------------------------------------- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint32_t rnd_below(uint32_t n)
{
    return n ? (uint32_t)(rnd() % n) : 0;
}

/* Every message type, from the table (the list of what to test, not the code under test). */
static const int all_types[] = {
#define EM_F(kind, field)
#define EM_MSG(ENUM, name, id, fields) EM_MSG_##ENUM,
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
};

/* ---- random field values, owned by a pool freed at the end ---------------------------------- */
static void *pool[100000];
static int npool;
static void *keep(void *p)
{
    CHECK(npool < (int)EM_ARRAY_LEN(pool));
    return pool[npool++] = p;
}
static void pool_free(void)
{
    while (npool > 0) free(pool[--npool]);
}
static void gen_u8(uint8_t *v)
{
    *v = (uint8_t)rnd();
}
static void gen_u32(uint32_t *v)
{
    *v = (uint32_t)rnd();
}
static void gen_i32(int32_t *v)
{
    *v = (int32_t)(uint32_t)rnd();
}
static void gen_i64(int64_t *v)
{
    *v = (int64_t)rnd();
}
static void gen_u64(uint64_t *v)
{
    *v = rnd();
}
static void gen_f64(double *v)
{
    uint64_t u = rnd();
    memcpy(v, &u, 8); /* any bit pattern, NaNs included: compared bitwise */
}
static void gen_str(em_str *v)
{
    uint32_t n = rnd_below(4) == 0 ? 0 : rnd_below(60);
    char *s = keep(malloc(n + 1));
    for (uint32_t i = 0; i < n; i++) s[i] = (char)(1 + rnd_below(255)); /* no NUL */
    s[n] = 0;
    *v = (em_str){s, n};
}
static void gen_bytes(em_bytes *v)
{
    uint32_t n = rnd_below(4) == 0 ? 0 : rnd_below(300);
    uint8_t *p = keep(malloc(n + 1));
    for (uint32_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
    *v = (em_bytes){n ? p : NULL, n};
}
static void gen_strlist(em_strlist *v)
{
    uint32_t n = rnd_below(6);
    em_str *items = keep(malloc(sizeof(em_str) * (n + 1)));
    for (uint32_t i = 0; i < n; i++) gen_str(&items[i]);
    *v = (em_strlist){n, items, NULL, 0};
}

/* Expected encoded size of each field, computed from the spec of messages.def. */
static size_t sz_u8(const uint8_t *v)
{
    (void)v;
    return 1;
}
static size_t sz_u32(const uint32_t *v)
{
    (void)v;
    return 4;
}
static size_t sz_i32(const int32_t *v)
{
    (void)v;
    return 4;
}
static size_t sz_i64(const int64_t *v)
{
    (void)v;
    return 8;
}
static size_t sz_u64(const uint64_t *v)
{
    (void)v;
    return 8;
}
static size_t sz_f64(const double *v)
{
    (void)v;
    return 8;
}
static size_t sz_str(const em_str *v)
{
    return 4 + v->len;
}
static size_t sz_bytes(const em_bytes *v)
{
    return 4 + v->len;
}
static size_t sz_strlist(const em_strlist *v)
{
    size_t n = 4;
    for (uint32_t i = 0; i < v->count; i++) n += 4 + v->items[i].len;
    return n;
}

/* Field comparisons: a is what was encoded, b what was decoded. */
static void cmp_u8(const char *f, const uint8_t *a, const uint8_t *b)
{
    CHECK_MSG(*a == *b, "field %s", f);
}
static void cmp_u32(const char *f, const uint32_t *a, const uint32_t *b)
{
    CHECK_MSG(*a == *b, "field %s", f);
}
static void cmp_i32(const char *f, const int32_t *a, const int32_t *b)
{
    CHECK_MSG(*a == *b, "field %s", f);
}
static void cmp_i64(const char *f, const int64_t *a, const int64_t *b)
{
    CHECK_MSG(*a == *b, "field %s", f);
}
static void cmp_u64(const char *f, const uint64_t *a, const uint64_t *b)
{
    CHECK_MSG(*a == *b, "field %s", f);
}
static void cmp_f64(const char *f, const double *a, const double *b)
{
    CHECK_MSG(memcmp(a, b, 8) == 0, "field %s", f);
}
static void cmp_str(const char *f, const em_str *a, const em_str *b)
{
    CHECK_MSG(a->len == b->len, "field %s: length %u vs %u", f, a->len, b->len);
    CHECK_MSG(b->p != NULL, "field %s: decoded NULL", f);
    CHECK_MSG(memcmp(a->p, b->p, a->len) == 0, "field %s", f);
}
static void cmp_bytes(const char *f, const em_bytes *a, const em_bytes *b)
{
    CHECK_MSG(a->len == b->len, "field %s: length %u vs %u", f, a->len, b->len);
    if (a->len) CHECK_MSG(memcmp(a->p, b->p, a->len) == 0, "field %s", f);
}
static void cmp_strlist(const char *f, const em_strlist *a, const em_strlist *b)
{
    CHECK_MSG(a->count == b->count, "field %s: count %u vs %u", f, a->count, b->count);
    size_t pos = 0;
    em_str s;
    for (uint32_t i = 0; i < a->count; i++) {
        CHECK_MSG(em_strlist_next(b, &pos, &s) == 1, "field %s entry %u missing", f, i);
        cmp_str(f, &a->items[i], &s);
    }
    CHECK_MSG(em_strlist_next(b, &pos, &s) == 0, "field %s: extra entries", f);
}

/* Fills a random message of type; returns the expected body size. */
static size_t gen_msg(int type, em_msg *m)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    size_t body = 0;
    switch (type) {
#define EM_F(kind, field) gen_##kind(&x->field), body += sz_##kind(&x->field);
#define EM_MSG(ENUM, name, id, fields)                                                             \
    case id: {                                                                                     \
        em_msg_##name *x = &m->u.name;                                                             \
        fields break;                                                                              \
    }
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
    default:
        CHECK(0);
    }
    return body;
}
static void cmp_msg(const em_msg *a, const em_msg *b)
{
    CHECK_EQ_INT(a->type, b->type);
    switch (a->type) {
#define EM_F(kind, field) cmp_##kind(#field, &x->field, &y->field);
#define EM_MSG(ENUM, name, id, fields)                                                             \
    case id: {                                                                                     \
        const em_msg_##name *x = &a->u.name, *y = &b->u.name;                                      \
        fields break;                                                                              \
    }
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
    default:
        CHECK(0);
    }
}

static uint32_t le32(const uint8_t *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decodes a copy of the bytes in a buffer of exactly that size, so ASan sees any over-read. */
static int decode_copy(const uint8_t *p, size_t n, size_t max, em_msg *out, uint8_t **copy)
{
    *copy = malloc(n ? n : 1);
    if (n) memcpy(*copy, p, n);
    return em_msg_decode(*copy, n, max, out);
}

/* ---- tests ---------------------------------------------------------------------------------- */
TEST(known_bytes)
{
    /* heartbeat{id="w1", time_ms=0x0102030405060708}, written out by hand from the spec. */
    static const uint8_t want[] = {
        18, 0, 0, 0,                 /* length: 2 + 2 + (4 + 2) + 8 = 18 */
        1,  0,                       /* version 1 */
        18, 0,                       /* type 18 */
        2,  0, 0, 0, 'w', '1',       /* str */
        8,  7, 6, 5, 4,   3,   2, 1, /* i64 */
    };
    em_msg_heartbeat hb = {em_str_c("w1"), 0x0102030405060708};
    em_buf b = EM_BUF_INIT;
    CHECK_OK(em_msg_encode(&b, EM_MSG_HEARTBEAT, &hb));
    CHECK_EQ_INT(b.len, sizeof want);
    CHECK(memcmp(b.data, want, sizeof want) == 0);
    em_msg m;
    CHECK_OK(em_msg_decode(want, sizeof want, 1024, &m));
    CHECK_EQ_INT(m.type, EM_MSG_HEARTBEAT);
    CHECK_EQ_INT(m.u.heartbeat.id.len, 2);
    CHECK(memcmp(m.u.heartbeat.id.p, "w1", 2) == 0);
    CHECK(m.u.heartbeat.time_ms == 0x0102030405060708);
    /* Points into the frame: borrowed, not copied. */
    CHECK(m.u.heartbeat.id.p == (const char *)want + 12);
    em_buf_free(&b);
}

TEST(names)
{
    CHECK_EQ_STR(em_msg_name(EM_MSG_HELLO), "hello");
    CHECK_EQ_STR(em_msg_name(EM_MSG_REGISTER_WORKER), "register_worker");
    CHECK_EQ_STR(em_msg_name(EM_MSG_LAUNCH_TASK), "launch_task");
    CHECK(em_msg_name(0) == NULL);
    CHECK(em_msg_name(9) == NULL);
    CHECK(em_msg_name(70000) == NULL);
    /* Ids are unique: each name maps back to one id. */
    for (size_t i = 0; i < EM_ARRAY_LEN(all_types); i++)
        for (size_t j = i + 1; j < EM_ARRAY_LEN(all_types); j++)
            CHECK(all_types[i] != all_types[j]);
}

TEST(round_trip_every_type)
{
    em_buf b = EM_BUF_INIT;
    for (int iter = 0; iter < 300; iter++) {
        for (size_t t = 0; t < EM_ARRAY_LEN(all_types); t++) {
            em_msg in, out;
            size_t body = gen_msg(all_types[t], &in);
            em_buf_reset(&b);
            CHECK_OK(em_msg_encode(&b, in.type, &in.u));
            CHECK_EQ_INT(b.len, 8 + body);
            CHECK_EQ_INT(le32(b.data), 4 + body);
            CHECK_EQ_INT(b.data[4] | b.data[5] << 8, 1);
            CHECK_EQ_INT(b.data[6] | b.data[7] << 8, all_types[t]);
            uint8_t *copy;
            CHECK_OK(decode_copy(b.data, b.len, EM_FRAME_DEFAULT_MAX, &out, &copy));
            cmp_msg(&in, &out);
            /* A decoded message (wire-form lists) re-encodes to the same bytes. */
            em_buf b2 = EM_BUF_INIT;
            CHECK_OK(em_msg_encode(&b2, out.type, &out.u));
            CHECK_EQ_INT(b2.len, b.len);
            CHECK(memcmp(b2.data, b.data, b.len) == 0);
            em_buf_free(&b2);
            free(copy);
        }
        pool_free();
    }
    em_buf_free(&b);
}

TEST(encode_errors)
{
    em_buf b = EM_BUF_INIT;
    em_msg_heartbeat hb = {em_str_c("x"), 1};
    CHECK_OK(em_msg_encode(&b, EM_MSG_HEARTBEAT, &hb));
    size_t len = b.len;
    CHECK_EQ_INT(em_msg_encode(&b, 9, &hb), EM_EINVAL);
    CHECK_EQ_INT(b.len, len);
    em_msg_heartbeat bad = {{NULL, 5}, 1};
    CHECK_EQ_INT(em_msg_encode(&b, EM_MSG_HEARTBEAT, &bad), EM_EINVAL);
    CHECK_EQ_INT(b.len, len);
    CHECK(strstr(em_errmsg(), "'id'") != NULL);
    em_buf_free(&b);
}

/* Builds a stream of n random frames; ends[i] is the offset just past frame i. */
static void make_stream(em_buf *s, size_t *ends, int n)
{
    for (int i = 0; i < n; i++) {
        em_msg m;
        gen_msg(all_types[rnd_below(EM_ARRAY_LEN(all_types))], &m);
        CHECK_OK(em_msg_encode(s, m.type, &m.u));
        ends[i] = s->len;
    }
    pool_free();
}

static void check_reader(const em_buf *s, const size_t *ends, int n, int mode)
{
    em_frame_reader r;
    em_frame_reader_init(&r, EM_FRAME_DEFAULT_MAX);
    int got = 0;
    size_t off = 0;
    while (off < s->len) {
        size_t chunk = mode == 0 ? 1 : 1 + rnd_below(mode == 1 ? 300 : 5000);
        chunk = EM_MIN(chunk, s->len - off);
        CHECK_OK(em_frame_reader_feed(&r, s->data + off, chunk));
        off += chunk;
        const uint8_t *f;
        size_t flen;
        int rc;
        while ((rc = em_frame_reader_next(&r, &f, &flen)) == EM_ROW) {
            CHECK(got < n);
            size_t begin = got ? ends[got - 1] : 0;
            CHECK_EQ_INT(flen, ends[got] - begin);
            CHECK(memcmp(f, s->data + begin, flen) == 0);
            em_msg m;
            CHECK_OK(em_msg_decode(f, flen, EM_FRAME_DEFAULT_MAX, &m));
            got++;
        }
        CHECK_EQ_INT(rc, EM_DONE);
    }
    CHECK_EQ_INT(got, n);
    CHECK_EQ_INT(em_frame_reader_pending(&r), 0);
    em_frame_reader_free(&r);
}

TEST(reader_chunkings)
{
    enum { N = 300 };
    size_t ends[N];
    em_buf s = EM_BUF_INIT;
    make_stream(&s, ends, N);
    check_reader(&s, ends, N, 0);
    for (int k = 0; k < 20; k++) check_reader(&s, ends, N, 1 + k % 2);
    /* One feed of the whole stream. */
    em_frame_reader r;
    em_frame_reader_init(&r, EM_FRAME_DEFAULT_MAX);
    CHECK_OK(em_frame_reader_feed(&r, s.data, s.len));
    const uint8_t *f;
    size_t flen;
    int got = 0;
    while (em_frame_reader_next(&r, &f, &flen) == EM_ROW) got++;
    CHECK_EQ_INT(got, N);
    em_frame_reader_free(&r);
    /* A truncated stream leaves the partial frame pending. */
    em_frame_reader_init(&r, EM_FRAME_DEFAULT_MAX);
    CHECK_OK(em_frame_reader_feed(&r, s.data, ends[0] + 3));
    CHECK_EQ_INT(em_frame_reader_next(&r, &f, &flen), EM_ROW);
    CHECK_EQ_INT(em_frame_reader_next(&r, &f, &flen), EM_DONE);
    CHECK_EQ_INT(em_frame_reader_pending(&r), 3);
    em_frame_reader_free(&r);
    em_buf_free(&s);
}

TEST(oversize_rejected_before_allocation)
{
    uint8_t hdr[8] = {0xff, 0xff, 0xff, 0x7f, 1, 0, 18, 0}; /* length 2 GiB - 1 */
    em_msg m;
    int64_t before = em__alloc_bytes();
    CHECK_EQ_INT(em_msg_decode(hdr, sizeof hdr, EM_FRAME_DEFAULT_MAX, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "exceeds the limit") != NULL);
    /* Exactly at the limit passes the size check; one byte over does not. */
    uint8_t small[8 + 6] = {10, 0, 0, 0, 1, 0, 18, 0}; /* heartbeat, truncated fields */
    CHECK_EQ_INT(em_msg_decode(small, sizeof small, 14, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "exceeds the limit") == NULL);
    CHECK_EQ_INT(em_msg_decode(small, sizeof small, 13, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "exceeds the limit") != NULL);

    em_frame_reader r;
    em_frame_reader_init(&r, 1 << 20);
    uint8_t big[64 * 1024];
    memset(big, 'x', sizeof big);
    memcpy(big, hdr, 8);
    CHECK_EQ_INT(em_frame_reader_feed(&r, big, sizeof big), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "ember.rpc.message.maxSize") != NULL);
    /* Only the header was buffered. */
    CHECK(em__alloc_bytes() - before < 1024);
    /* Sticky. */
    CHECK_EQ_INT(em_frame_reader_feed(&r, big, 1), EM_EFORMAT);
    const uint8_t *f;
    size_t flen;
    CHECK_EQ_INT(em_frame_reader_next(&r, &f, &flen), EM_EFORMAT);
    em_frame_reader_free(&r);

    /* Split header: the length alone (4 bytes) is enough to refuse. */
    em_frame_reader_init(&r, 1 << 20);
    CHECK_EQ_INT(em_frame_reader_feed(&r, hdr, 4), EM_EFORMAT);
    em_frame_reader_free(&r);
    /* A length under 4 is refused too. */
    uint8_t tiny[8] = {3, 0, 0, 0, 1, 0, 18, 0};
    em_frame_reader_init(&r, 1 << 20);
    CHECK_EQ_INT(em_frame_reader_feed(&r, tiny, 8), EM_EFORMAT);
    em_frame_reader_free(&r);
}

TEST(version_type_and_field_errors)
{
    em_buf b = EM_BUF_INIT;
    em_msg_register_worker rw = {em_str_c("worker-1"), em_str_c("10.0.0.4"), 7078, 8, 16384,
                                 em_str_c("/tmp/w")};
    CHECK_OK(em_msg_encode(&b, EM_MSG_REGISTER_WORKER, &rw));
    em_msg m;
    uint8_t *f = malloc(b.len + 1);

    memcpy(f, b.data, b.len);
    f[4] = 2; /* version 2 */
    CHECK_EQ_INT(em_msg_decode(f, b.len, 1 << 20, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "version 2") != NULL);
    em_frame_reader r;
    em_frame_reader_init(&r, 1 << 20);
    CHECK_EQ_INT(em_frame_reader_feed(&r, f, b.len), EM_EFORMAT);
    em_frame_reader_free(&r);

    memcpy(f, b.data, b.len);
    f[6] = 9; /* unknown type 9 */
    CHECK_EQ_INT(em_msg_decode(f, b.len, 1 << 20, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "type 9") != NULL);
    CHECK(strstr(em_errmsg(), "unknown") != NULL);

    /* host length 4000000: the message names type, field, length and what remains. */
    memcpy(f, b.data, b.len);
    size_t host_off = 8 + 4 + 8;
    CHECK_EQ_INT(le32(f + host_off), 8);
    f[host_off] = 0x00, f[host_off + 1] = 0x09, f[host_off + 2] = 0x3d, f[host_off + 3] = 0;
    CHECK_EQ_INT(em_msg_decode(f, b.len, 1 << 20, &m), EM_EFORMAT);
    char want[200];
    snprintf(want, sizeof want,
             "frame type 16 (register_worker) field 'host': length 4000000 exceeds remaining "
             "%zu bytes",
             b.len - host_off - 4);
    CHECK_EQ_STR(em_errmsg(), want);

    /* NUL inside a string. */
    memcpy(f, b.data, b.len);
    f[host_off + 4 + 2] = 0;
    CHECK_EQ_INT(em_msg_decode(f, b.len, 1 << 20, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "'host'") && strstr(em_errmsg(), "NUL"));

    /* Trailing garbage (length field agrees, one extra byte). */
    memcpy(f, b.data, b.len);
    f[b.len] = 0xaa;
    f[0] = (uint8_t)(f[0] + 1);
    CHECK_EQ_INT(em_msg_decode(f, b.len + 1, 1 << 20, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "trailing") != NULL);

    /* Length field disagreeing with the bytes given. */
    memcpy(f, b.data, b.len);
    CHECK_EQ_INT(em_msg_decode(f, b.len - 1, 1 << 20, &m), EM_EFORMAT);
    CHECK_OK(em_msg_decode(f, b.len, 1 << 20, &m));
    CHECK_EQ_INT(m.u.register_worker.port, 7078);
    CHECK(m.u.register_worker.memory_mb == 16384);

    /* A strlist count too large for the bytes left. */
    em_buf c = EM_BUF_INIT;
    em_str args[2] = {em_str_c("--a"), em_str_c("b")};
    em_msg_launch_executor le = {em_str_c("app-1"), 3, 2, 1024, em_str_c("ab12"), em_str_c("h:1"),
                                 {2, args, 0, 0}};
    CHECK_OK(em_msg_encode(&c, EM_MSG_LAUNCH_EXECUTOR, &le));
    size_t cnt_off = c.len - (4 + 4 + 3 + 4 + 1);
    CHECK_EQ_INT(le32(c.data + cnt_off), 2);
    c.data[cnt_off + 3] = 0x40;
    CHECK_EQ_INT(em_msg_decode(c.data, c.len, 1 << 20, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "'env'") != NULL);
    c.data[cnt_off + 3] = 0;
    c.data[cnt_off] = 3; /* one entry more than present */
    CHECK_EQ_INT(em_msg_decode(c.data, c.len, 1 << 20, &m), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "list entry 2 of 3") != NULL);
    em_buf_free(&c);

    free(f);
    em_buf_free(&b);
}

TEST(fuzz_mutations)
{
    enum { N = 64 };
    size_t ends[N];
    em_buf s = EM_BUF_INIT;
    make_stream(&s, ends, N);
    uint8_t *work = malloc(1 << 16);
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 40000; iter++) {
        int i = (int)rnd_below(N);
        size_t begin = i ? ends[i - 1] : 0, len = ends[i] - begin;
        memcpy(work, s.data + begin, len);
        int muts = 1 + (int)rnd_below(4);
        for (int k = 0; k < muts; k++) {
            switch (rnd_below(6)) {
            case 0: /* flip bits */
                if (len) work[rnd_below((uint32_t)len)] ^= (uint8_t)(1u << rnd_below(8));
                break;
            case 1: /* random byte */
                if (len) work[rnd_below((uint32_t)len)] = (uint8_t)rnd();
                break;
            case 2: /* truncate */
                len = rnd_below((uint32_t)len + 1);
                break;
            case 3: { /* extend with random bytes */
                size_t add = rnd_below(64);
                for (size_t j = 0; j < add && len < (1 << 16); j++) work[len++] = (uint8_t)rnd();
                break;
            }
            case 4: /* a random u32 somewhere (lengths, counts) */
                if (len >= 4) {
                    size_t at = rnd_below((uint32_t)(len - 3));
                    uint32_t v = rnd_below(3) == 0 ? (uint32_t)rnd() : rnd_below(400);
                    memcpy(work + at, &v, 4);
                }
                break;
            case 5: /* keep the length field consistent so the fields get parsed */
                if (len >= 4) {
                    uint32_t v = (uint32_t)(len - 4);
                    memcpy(work, &v, 4);
                }
                break;
            }
        }
        em_msg m;
        uint8_t *copy;
        int rc = decode_copy(work, len, 1 << 16, &m, &copy);
        CHECK_MSG(rc == 0 || rc == EM_EFORMAT, "rc %d", rc);
        if (rc == 0) {
            accepted++;
            /* Whatever was accepted re-encodes to the same bytes. */
            em_buf b2 = EM_BUF_INIT;
            CHECK_OK(em_msg_encode(&b2, m.type, &m.u));
            CHECK_EQ_INT(b2.len, len);
            CHECK(memcmp(b2.data, copy, len) == 0);
            em_buf_free(&b2);
        } else {
            rejected++;
            CHECK(em_errmsg()[0] != 0);
        }
        free(copy);
        /* The same bytes through a frame reader: frames or errors, never a crash. */
        em_frame_reader r;
        em_frame_reader_init(&r, 1 << 16);
        size_t off = 0;
        while (off < len) {
            size_t chunk = EM_MIN(len - off, 1 + rnd_below(40));
            if (em_frame_reader_feed(&r, work + off, chunk) != 0) break;
            off += chunk;
            const uint8_t *f;
            size_t flen;
            while (em_frame_reader_next(&r, &f, &flen) == EM_ROW) {
                int rc2 = em_msg_decode(f, flen, 1 << 16, &m);
                CHECK(rc2 == 0 || rc2 == EM_EFORMAT);
            }
        }
        em_frame_reader_free(&r);
    }
    /* The mutations exercise both outcomes. */
    CHECK(accepted > 100);
    CHECK(rejected > 1000);
    free(work);
    em_buf_free(&s);
}

/* ---- authentication (src/net/auth.c) ----------------------------------------------------------
 */
static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

TEST(hmac_rfc4231)
{
    uint8_t mac[32];
    char h[65];
    /* RFC 4231 test case 2. */
    CHECK_OK(em_auth_hmac("Jefe", 4, "what do ya want for nothing?", 28, mac));
    hex(mac, 32, h);
    CHECK_EQ_STR(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Test case 1: key 20 x 0x0b, "Hi There". */
    uint8_t key[20];
    memset(key, 0x0b, sizeof key);
    CHECK_OK(em_auth_hmac(key, sizeof key, "Hi There", 8, mac));
    hex(mac, 32, h);
    CHECK_EQ_STR(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(proof_layout)
{
    /* The proof is HMAC over label || dir || role || peer nonce || own nonce, built here by
     * hand. */
    uint8_t a[32], b[32], msg[13 + 2 + 64], want[32], got[32];
    for (int i = 0; i < 32; i++) a[i] = (uint8_t)i, b[i] = (uint8_t)(100 + i);
    memcpy(msg, "ember-auth-v1", 13);
    msg[13] = EM_AUTH_INITIATOR;
    msg[14] = EM_ROLE_WORKER;
    memcpy(msg + 15, b, 32);
    memcpy(msg + 47, a, 32);
    CHECK_OK(em_auth_hmac("s3cret", 6, msg, sizeof msg, want));
    CHECK_OK(em_auth_proof("s3cret", 6, EM_AUTH_INITIATOR, EM_ROLE_WORKER, b, a, got));
    CHECK(memcmp(want, got, 32) == 0);
}

TEST(mutual_handshake)
{
    const char *secret = "correct horse battery staple";
    size_t sl = strlen(secret);
    uint8_t ni[32], na[32], pi[32], pa[32];
    CHECK_OK(em_auth_nonce(ni));
    CHECK_OK(em_auth_nonce(na));
    CHECK(memcmp(ni, na, 32) != 0);
    /* Worker (initiator) proves to the master, and the master back. */
    CHECK_OK(em_auth_proof(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na, ni, pi));
    CHECK_OK(em_auth_check(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na, ni, 32, pi, 32));
    CHECK_OK(em_auth_proof(secret, sl, EM_AUTH_ACCEPTOR, EM_ROLE_MASTER, ni, na, pa));
    CHECK_OK(em_auth_check(secret, sl, EM_AUTH_ACCEPTOR, EM_ROLE_MASTER, ni, na, 32, pa, 32));
    CHECK(memcmp(pi, pa, 32) != 0);

    /* Wrong secret on the worker: refused, message does not contain the secret. */
    uint8_t bad[32];
    CHECK_OK(em_auth_proof("wrong", 5, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na, ni, bad));
    CHECK_EQ_INT(em_auth_check(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na, ni, 32, bad, 32),
                 EM_EACCES);
    CHECK(strstr(em_errmsg(), "wrong proof") != NULL);
    CHECK(strstr(em_errmsg(), secret) == NULL);
    /* A proof replayed on a new connection (fresh acceptor nonce) fails. */
    uint8_t na2[32];
    CHECK_OK(em_auth_nonce(na2));
    CHECK_EQ_INT(em_auth_check(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na2, ni, 32, pi, 32),
                 EM_EACCES);
    /* Reflection: the master's own proof sent back as if from an initiator fails. */
    CHECK_EQ_INT(em_auth_check(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_MASTER, ni, na, 32, pa, 32),
                 EM_EACCES);
    /* Claiming another role fails. */
    CHECK_EQ_INT(em_auth_check(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_DRIVER, na, ni, 32, pi, 32),
                 EM_EACCES);
    /* Every single flipped bit of the proof fails. */
    for (int bit = 0; bit < 256; bit++) {
        uint8_t m[32];
        memcpy(m, pi, 32);
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK_EQ_INT(
            em_auth_check(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na, ni, 32, m, 32),
            EM_EACCES);
    }
    /* Bad lengths. */
    CHECK_EQ_INT(em_auth_check(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na, ni, 31, pi, 32),
                 EM_EACCES);
    CHECK_EQ_INT(em_auth_check(secret, sl, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na, ni, 32, pi, 0),
                 EM_EACCES);
    CHECK(strstr(em_errmsg(), "0 bytes") != NULL);
    /* Empty secret is a usage error. */
    CHECK_EQ_INT(em_auth_proof("", 0, EM_AUTH_INITIATOR, EM_ROLE_WORKER, na, ni, bad), EM_EINVAL);
}

TEST(through_frames)
{
    /* A proof travels in an AuthResponse frame and is checked from the decoded view. */
    const char *secret = "k";
    uint8_t ni[32], na[32], p[32];
    CHECK_OK(em_auth_nonce(ni));
    CHECK_OK(em_auth_nonce(na));
    CHECK_OK(em_auth_proof(secret, 1, EM_AUTH_INITIATOR, EM_ROLE_EXECUTOR, na, ni, p));
    em_buf b = EM_BUF_INIT;
    em_msg_hello h = {EM_PROTO_VERSION, EM_ROLE_EXECUTOR, em_str_c("app-1"), {ni, 32}};
    em_msg_auth_response r = {{p, 32}};
    CHECK_OK(em_msg_encode(&b, EM_MSG_HELLO, &h));
    size_t first = b.len;
    CHECK_OK(em_msg_encode(&b, EM_MSG_AUTH_RESPONSE, &r));
    em_msg mh, mr;
    CHECK_OK(em_msg_decode(b.data, first, 1024, &mh));
    CHECK_OK(em_msg_decode(b.data + first, b.len - first, 1024, &mr));
    CHECK_OK(em_auth_check(secret, 1, EM_AUTH_INITIATOR, mh.u.hello.role, na, mh.u.hello.nonce.p,
                           mh.u.hello.nonce.len, mr.u.auth_response.mac.p,
                           mr.u.auth_response.mac.len));
    em_buf_free(&b);
}
