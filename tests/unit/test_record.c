/* Record encoding tests: order preservation against an independent reference comparator over a
 * decoded tree, round trips, the validating parser under truncation and mutation, the text
 * form against literal strings, builder errors, record sequences and spilled (ext) lists. */
#include "record/record_ext.h"
#include "record/record_int.h"
#include "test.h"

#include <ember/ember.h>
#include <float.h>
#include <math.h>

/* ---- a reference tree, independent of the encoder ------------------------------------------ */

enum { T_NULL, T_BOOL, T_INT, T_DBL, T_STR, T_BYTES, T_TUPLE, T_LIST, T_NKINDS };

typedef struct tv {
    int kind;
    bool b;
    int64_t i;
    double d;
    uint8_t s[8];
    size_t slen;
    struct tv *el;
    size_t n;
} tv;

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static unsigned rndn(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static const int64_t some_ints[] = {
    INT64_MIN, INT64_MIN + 1, -1000000, -256,  -255,          -1,       0,
    1,         255,           256,      65536, INT64_MAX - 1, INT64_MAX};

static double some_double(void)
{
    static const double ds[] = {
        -INFINITY, -DBL_MAX, -1e300, -2.5, -1.0, -DBL_MIN, -4.9e-324, -0.0,    0.0,     4.9e-324,
        1e-310,    DBL_MIN,  0.1,    1.0,  1.5,  2.5,      1e300,     DBL_MAX, INFINITY};
    unsigned k = rndn(EM_ARRAY_LEN(ds) + 3);
    if (k < EM_ARRAY_LEN(ds)) return ds[k];
    if (k == EM_ARRAY_LEN(ds)) return rndn(2) ? NAN : -NAN;
    double d;
    uint64_t u = rnd();
    memcpy(&d, &u, 8); /* any bit pattern: includes subnormals and NaN payloads */
    return d;
}

static void gen(tv *t, int depth)
{
    memset(t, 0, sizeof *t);
    t->kind = (int)rndn(depth >= 3 ? T_TUPLE : T_NKINDS);
    switch (t->kind) {
    case T_BOOL:
        t->b = rndn(2);
        break;
    case T_INT:
        t->i = rndn(3) ? some_ints[rndn(EM_ARRAY_LEN(some_ints))] : (int64_t)rnd();
        break;
    case T_DBL:
        t->d = some_double();
        break;
    case T_STR:
    case T_BYTES: {
        static const uint8_t alpha[] = {0x00, 0x01, 'a', 'b', 0xFE, 0xFF};
        t->slen = rndn(5);
        for (size_t k = 0; k < t->slen; k++) t->s[k] = alpha[rndn(sizeof alpha)];
        break;
    }
    case T_TUPLE:
    case T_LIST:
        t->n = rndn(4);
        t->el = t->n ? calloc(t->n, sizeof(tv)) : NULL;
        for (size_t k = 0; k < t->n; k++) gen(&t->el[k], depth + 1);
        break;
    default:
        break;
    }
}

static void tv_free(tv *t)
{
    for (size_t k = 0; k < t->n; k++) tv_free(&t->el[k]);
    free(t->el);
}

static int sgn(long long x)
{
    return (x > 0) - (x < 0);
}

static int ref_cmp(const tv *a, const tv *b)
{
    if (a->kind != b->kind) return sgn(a->kind - b->kind);
    switch (a->kind) {
    case T_NULL:
        return 0;
    case T_BOOL:
        return sgn((int)a->b - (int)b->b);
    case T_INT:
        return a->i < b->i ? -1 : a->i > b->i;
    case T_DBL: {
        bool na = isnan(a->d), nb = isnan(b->d);
        if (na || nb) return (int)na - (int)nb;
        return a->d < b->d ? -1 : a->d > b->d; /* -0.0 == 0.0 */
    }
    case T_STR:
    case T_BYTES:
        for (size_t k = 0; k < a->slen && k < b->slen; k++)
            if (a->s[k] != b->s[k]) return a->s[k] < b->s[k] ? -1 : 1;
        return sgn((long long)a->slen - (long long)b->slen);
    default:
        for (size_t k = 0; k < a->n && k < b->n; k++) {
            int c = ref_cmp(&a->el[k], &b->el[k]);
            if (c) return c;
        }
        return sgn((long long)a->n - (long long)b->n);
    }
}

static void put_tv(em_records *r, const tv *t)
{
    switch (t->kind) {
    case T_NULL:
        em_put_null(r);
        break;
    case T_BOOL:
        em_put_bool(r, t->b);
        break;
    case T_INT:
        em_put_int64(r, t->i);
        break;
    case T_DBL:
        em_put_double(r, t->d);
        break;
    case T_STR:
        em_put_str(r, (const char *)t->s, t->slen);
        break;
    case T_BYTES:
        em_put_bytes(r, t->s, t->slen);
        break;
    default:
        if (t->kind == T_TUPLE)
            em_put_tuple_begin(r);
        else
            em_put_list_begin(r);
        for (size_t k = 0; k < t->n; k++) put_tv(r, &t->el[k]);
        em_put_end(r);
    }
}

/* Decodes through the public accessors. */
static void get_tv(em_value v, tv *t)
{
    memset(t, 0, sizeof *t);
    switch (em_value_type(v)) {
    case EM_TYPE_NULL:
        t->kind = T_NULL;
        break;
    case EM_TYPE_BOOL:
        t->kind = T_BOOL, t->b = em_value_bool(v);
        break;
    case EM_TYPE_INT64:
        t->kind = T_INT, t->i = em_value_int64(v);
        break;
    case EM_TYPE_FLOAT64:
        t->kind = T_DBL, t->d = em_value_double(v);
        break;
    case EM_TYPE_STRING: {
        t->kind = T_STR;
        const char *s = em_value_str(v, &t->slen);
        CHECK(s && t->slen <= sizeof t->s);
        memcpy(t->s, s, t->slen);
        break;
    }
    case EM_TYPE_BYTES: {
        t->kind = T_BYTES;
        const uint8_t *s = em_value_bytes(v, &t->slen);
        CHECK(s && t->slen <= sizeof t->s);
        memcpy(t->s, s, t->slen);
        break;
    }
    case EM_TYPE_TUPLE:
    case EM_TYPE_LIST: {
        t->kind = em_value_type(v) == EM_TYPE_TUPLE ? T_TUPLE : T_LIST;
        t->n = em_value_count(v);
        t->el = t->n ? calloc(t->n, sizeof(tv)) : NULL;
        em_elems it;
        em_value e;
        em_elems_init(&it, v);
        size_t k = 0;
        while (em_elems_next(&it, &e) == EM_ROW) {
            CHECK(k < t->n);
            get_tv(e, &t->el[k++]);
        }
        CHECK_EQ_INT(k, t->n);
        break;
    }
    default:
        CHECK(!"invalid value decoded");
    }
}

/* Structural identity, distinguishing what ref_cmp identifies only where the encoding does. */
static bool same(const tv *a, const tv *b)
{
    if (a->kind != b->kind) return false;
    if (a->kind == T_DBL) {
        if (isnan(a->d)) return isnan(b->d);
        return a->d == b->d; /* -0 normalises to +0 */
    }
    if (a->kind == T_TUPLE || a->kind == T_LIST) {
        if (a->n != b->n) return false;
        for (size_t k = 0; k < a->n; k++)
            if (!same(&a->el[k], &b->el[k])) return false;
        return true;
    }
    return ref_cmp(a, b) == 0;
}

#define NVALS 600

TEST(order_matches_reference)
{
    rng_state = 42;
    static tv vals[NVALS];
    em_records *r = em_records_new();
    for (int k = 0; k < NVALS; k++) {
        gen(&vals[k], 0);
        put_tv(r, &vals[k]);
    }
    CHECK_OK(em_records_error(r));
    CHECK_EQ_INT(em_records_count(r), NVALS);
    long pairs = 0, equal = 0;
    for (int a = 0; a < NVALS; a++) {
        em_value va = em_records_at(r, (size_t)a);
        CHECK(em_value_type(va) != EM_TYPE_INVALID);
        size_t vlen;
        CHECK_OK(em_value_parse(va.data, va.len, &vlen));
        CHECK_EQ_INT(vlen, va.len);
        for (int b = 0; b < NVALS; b++) {
            em_value vb = em_records_at(r, (size_t)b);
            int want = ref_cmp(&vals[a], &vals[b]);
            size_t n = va.len < vb.len ? va.len : vb.len;
            int m = memcmp(va.data, vb.data, n);
            int got = m ? sgn(m) : sgn((long long)va.len - (long long)vb.len);
            CHECK_MSG(got == want, "values %d and %d: memcmp says %d, reference %d", a, b, got,
                      want);
            CHECK_EQ_INT(sgn(em_value_cmp(va, vb)), want);
            bool bytes_eq = va.len == vb.len && memcmp(va.data, vb.data, va.len) == 0;
            CHECK_EQ_INT(bytes_eq, want == 0);
            CHECK_EQ_INT(em_value_eq(va, vb), want == 0);
            if (want == 0) CHECK(em_value_hash(va) == em_value_hash(vb));
            pairs++;
            equal += want == 0;
        }
    }
    CHECK(equal > NVALS); /* the generator makes real ties, not only the diagonal */
    for (int k = 0; k < NVALS; k++) tv_free(&vals[k]);
    em_records_free(r);
}

TEST(round_trip)
{
    rng_state = 7;
    em_records *r = em_records_new();
    for (int k = 0; k < 3000; k++) {
        tv t, back;
        gen(&t, 0);
        em_records_clear(r);
        put_tv(r, &t);
        CHECK_EQ_INT(em_records_count(r), 1);
        get_tv(em_records_at(r, 0), &back);
        CHECK(same(&t, &back));
        tv_free(&t);
        tv_free(&back);
    }
    em_records_free(r);
}

TEST(scalars_literal_bytes)
{
    em_records *r = em_records_new();
    em_put_int64(r, 1);
    em_put_int64(r, -1);
    em_put_double(r, -0.0);
    em_put_double(r, -NAN);
    em_put_str(r, "a\0b", 3);
    em_put_bool(r, true);
    size_t len;
    const uint8_t *d = em_records_data(r, &len);
    static const uint8_t want[] = {
        0x04, 0x80, 0,    0,    0,    0,    0,    0,    1,    /* 1 */
        0x04, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* -1 */
        0x05, 0x80, 0,    0,    0,    0,    0,    0,    0,    /* +0.0 */
        0x05, 0xff, 0xf8, 0,    0,    0,    0,    0,    0,    /* canonical NaN */
        0x06, 'a',  0x00, 0xff, 'b',  0x00, 0x00,             /* "a\0b" */
        0x03};
    CHECK_EQ_INT(len, sizeof want);
    CHECK(memcmp(d, want, len) == 0);
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 1)), -1);
    CHECK(isnan(em_value_double(em_records_at(r, 3))));
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 2)), 0); /* wrong type reads as 0 */
    CHECK(!em_value_bool(em_records_at(r, 0)));
    CHECK(em_value_bool(em_records_at(r, 5)));
    em_records_free(r);
}

TEST(parse_rejects_truncations_and_mutations)
{
    rng_state = 99;
    em_records *r = em_records_new();
    long accepted = 0, rejected = 0;
    for (int k = 0; k < 4000; k++) {
        tv t;
        gen(&t, 0);
        em_records_clear(r);
        put_tv(r, &t);
        tv_free(&t);
        size_t len;
        const uint8_t *d = em_records_data(r, &len);
        /* Every proper prefix is rejected (the code is prefix-free); exact-size copies let ASan
         * catch any read past the end. */
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *c = malloc(cut ? cut : 1);
            memcpy(c, d, cut);
            size_t vlen = 99;
            CHECK(em_value_parse(c, cut, &vlen) == EM_EFORMAT);
            free(c);
        }
        /* Random mutations: never crash; an accepted value is internally consistent. */
        uint8_t *c = malloc(len);
        memcpy(c, d, len);
        int flips = 1 + (int)rndn(3);
        for (int f = 0; f < flips; f++) c[rndn((unsigned)len)] = (uint8_t)rnd();
        size_t vlen = 0;
        if (em_value_parse(c, len, &vlen) == 0) {
            accepted++;
            CHECK(vlen >= 1 && vlen <= len);
            em_value v = {c, vlen, NULL};
            CHECK(em_value_type(v) != EM_TYPE_INVALID);
            char buf[256];
            em_value_format(v, buf, sizeof buf);
            tv back;
            get_tv(v, &back);
            tv_free(&back);
            em_records *one;
            CHECK_OK(em_records_from_data(c, vlen, &one));
            CHECK_EQ_INT(em_records_count(one), 1);
            em_records_free(one);
        } else {
            rejected++;
        }
        free(c);
    }
    CHECK(accepted > 0 && rejected > 0);
    em_records_free(r);
}

TEST(parse_rejects_bad_encodings)
{
    size_t n;
    static const uint8_t bad_tag[] = {0x0a};
    static const uint8_t end_at_top[] = {0x00};
    static const uint8_t bad_escape[] = {0x06, 'a', 0x00, 0x01, 0x00, 0x00};
    static const uint8_t unterminated[] = {0x06, 'a', 'b'};
    static const uint8_t open_list[] = {0x09, 0x01};
    static const uint8_t neg_zero[] = {0x05, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t other_nan[] = {0x05, 0xff, 0xf8, 0, 0, 0, 0, 0, 1};
    static const uint8_t short_int[] = {0x04, 0x80, 0};
    CHECK_EQ_INT(em_value_parse(bad_tag, 1, &n), EM_EFORMAT);
    CHECK_EQ_INT(em_value_parse(end_at_top, 1, &n), EM_EFORMAT);
    CHECK_EQ_INT(em_value_parse(bad_escape, sizeof bad_escape, &n), EM_EFORMAT);
    CHECK_EQ_INT(em_value_parse(unterminated, sizeof unterminated, &n), EM_EFORMAT);
    CHECK_EQ_INT(em_value_parse(open_list, sizeof open_list, &n), EM_EFORMAT);
    CHECK_EQ_INT(em_value_parse(neg_zero, sizeof neg_zero, &n), EM_EFORMAT);
    CHECK_EQ_INT(em_value_parse(other_nan, sizeof other_nan, &n), EM_EFORMAT);
    CHECK_EQ_INT(em_value_parse(short_int, sizeof short_int, &n), EM_EFORMAT);
    CHECK_EQ_INT(em_value_parse(bad_tag, 0, &n), EM_EFORMAT);
    /* Nesting: 64 levels are fine, 65 are not. */
    uint8_t deep[200];
    for (int depth = 64; depth <= 65; depth++) {
        size_t k = 0;
        for (int i = 0; i < depth; i++) deep[k++] = 0x09;
        deep[k++] = 0x01;
        for (int i = 0; i < depth; i++) deep[k++] = 0x00;
        CHECK_EQ_INT(em_value_parse(deep, k, &n), depth == 64 ? 0 : EM_EFORMAT);
        if (depth == 64) CHECK_EQ_INT(n, k);
    }
    /* A value followed by more bytes: the first value's length. */
    static const uint8_t two[] = {0x01, 0x03};
    CHECK_OK(em_value_parse(two, 2, &n));
    CHECK_EQ_INT(n, 1);
    em_records *r;
    CHECK_OK(em_records_from_data(two, 2, &r));
    CHECK_EQ_INT(em_records_count(r), 2);
    em_records_free(r);
    CHECK_EQ_INT(em_records_from_data(bad_escape, sizeof bad_escape, &r), EM_EFORMAT);
    CHECK(r == NULL);
    CHECK(strstr(em_errmsg(), "offset 0") != NULL);
}

static void check_format(em_records *r, const char *want, size_t want_len)
{
    em_value v = em_records_at(r, em_records_count(r) - 1);
    char buf[512];
    size_t n = em_value_format(v, buf, sizeof buf);
    CHECK_MSG(n == want_len && memcmp(buf, want, n) == 0, "got \"%s\", want \"%s\"", buf, want);
}

#define FMT_DOUBLE(x, s)                                                                           \
    do {                                                                                           \
        em_put_double(r, (x));                                                                     \
        check_format(r, s, strlen(s));                                                             \
    } while (0)

TEST(format_literals)
{
    em_records *r = em_records_new();
    FMT_DOUBLE(1.0, "1.0");
    FMT_DOUBLE(100.0, "100.0");
    FMT_DOUBLE(0.1, "0.1");
    FMT_DOUBLE(-2.5, "-2.5");
    FMT_DOUBLE(123.456, "123.456");
    FMT_DOUBLE(1.0 / 3, "0.3333333333333333");
    FMT_DOUBLE(1e15, "1000000000000000.0");
    FMT_DOUBLE(1e16, "1e+16");
    FMT_DOUBLE(0.0001, "0.0001");
    FMT_DOUBLE(0.00001, "1e-05");
    FMT_DOUBLE(1.5e-7, "1.5e-07");
    FMT_DOUBLE(9223372036854775808.0, "9.223372036854776e+18");
    FMT_DOUBLE(DBL_MAX, "1.7976931348623157e+308");
    FMT_DOUBLE(4.9e-324, "5e-324");
    FMT_DOUBLE(-0.0, "0.0");
    FMT_DOUBLE(NAN, "nan");
    FMT_DOUBLE(INFINITY, "inf");
    FMT_DOUBLE(-INFINITY, "-inf");
    em_put_int64(r, INT64_MIN);
    check_format(r, "-9223372036854775808", 20);
    em_put_null(r);
    check_format(r, "null", 4);
    em_put_tuple_begin(r);
    em_put_cstr(r, "a");
    em_put_int64(r, 1);
    em_put_double(r, -2.5);
    em_put_bool(r, true);
    em_put_null(r);
    em_put_list_begin(r);
    em_put_double(r, 1.0);
    em_put_double(r, 1e16);
    em_put_list_begin(r);
    em_put_end(r);
    em_put_end(r);
    em_put_bytes(r, "x\0y", 3);
    em_put_bool(r, false);
    em_put_tuple_begin(r);
    em_put_end(r);
    em_put_end(r);
    check_format(r, "(a,1,-2.5,true,null,[1.0,1e+16,[]],x\0y,false,())", 48);
    /* snprintf semantics */
    em_put_cstr(r, "hello world");
    em_value v = em_records_at(r, em_records_count(r) - 1);
    char small[5];
    CHECK_EQ_INT(em_value_format(v, small, sizeof small), 11);
    CHECK_EQ_STR(small, "hell");
    CHECK_EQ_INT(em_value_format(v, NULL, 0), 11);
    /* fprint */
    char path[1100];
    snprintf(path, sizeof path, "%s/out.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f);
    CHECK_EQ_INT(em_value_fprint(em_records_at(r, em_records_count(r) - 2), f), 48);
    fclose(f);
    f = fopen(path, "r");
    char back[100];
    CHECK_EQ_INT(fread(back, 1, sizeof back, f), 48);
    fclose(f);
    CHECK(memcmp(back, "(a,1,-2.5,true,null,[1.0,1e+16,[]],x\0y,false,())", 48) == 0);
    em_records_free(r);
}

TEST(strings_zero_copy_and_scratch)
{
    em_records *r = em_records_new();
    em_put_cstr(r, "plain");
    for (int k = 0; k < 16; k++) {
        char s[8] = {'s', (char)('a' + k), 0, (char)('A' + k)};
        em_put_str(r, s, 4);
    }
    em_value plain = em_records_at(r, 0);
    size_t n;
    const char *p = em_value_str(plain, &n);
    CHECK(p == (const char *)plain.data + 1 && n == 5 && memcmp(p, "plain", 5) == 0);
    CHECK(em_value_bytes(plain, &n) == NULL && n == 0); /* a string is not bytes */
    const char *ptrs[16];
    for (int k = 0; k < 16; k++) {
        ptrs[k] = em_value_str(em_records_at(r, (size_t)k + 1), &n);
        CHECK_EQ_INT(n, 4);
    }
    for (int k = 0; k < 16; k++) { /* all 16 still valid */
        char want[4] = {'s', (char)('a' + k), 0, (char)('A' + k)};
        CHECK(memcmp(ptrs[k], want, 4) == 0);
    }
    char dst[3];
    CHECK_EQ_INT(em_value_copy_bytes(em_records_at(r, 1), dst, sizeof dst), 4);
    CHECK(memcmp(dst, "sa\0", 3) == 0);
    CHECK_EQ_INT(em_value_copy_bytes(em_records_at(r, 1), NULL, 0), 4);
    CHECK_EQ_INT(em_value_copy_bytes(em_records_at(r, 0), dst, 3), 5);
    CHECK(memcmp(dst, "pla", 3) == 0);
    em_records_free(r);
}

TEST(builder_errors_and_sequences)
{
    em_records *r = em_records_new();
    em_put_end(r);
    CHECK_EQ_INT(em_records_error(r), EM_EINVAL);
    em_put_int64(r, 5); /* ignored after the sticky error */
    CHECK_EQ_INT(em_records_count(r), 0);
    em_records_clear(r);
    CHECK_OK(em_records_error(r));
    for (int k = 0; k < 65; k++) em_put_list_begin(r);
    CHECK_EQ_INT(em_records_error(r), EM_EINVAL);
    em_records_clear(r);
    /* Incomplete records are not counted or exposed. */
    em_put_int64(r, 1);
    em_put_tuple_begin(r);
    em_put_int64(r, 2);
    CHECK_EQ_INT(em_records_count(r), 1);
    size_t len;
    em_records_data(r, &len);
    CHECK_EQ_INT(len, 9);
    size_t cursor = 0;
    em_value v;
    CHECK_EQ_INT(em_records_next(r, &cursor, &v), EM_ROW);
    CHECK_EQ_INT(em_records_next(r, &cursor, &v), EM_DONE);
    em_put_cstr(r, "two");
    em_put_end(r);
    CHECK_EQ_INT(em_records_count(r), 2);
    v = em_records_at(r, 1);
    CHECK_EQ_INT(em_value_count(v), 2);
    CHECK_EQ_INT(em_value_int64(em_value_key(v)), 2);
    CHECK_EQ_INT(em_value_copy_bytes(em_value_val(v), NULL, 0), 3);
    CHECK_EQ_INT(em_value_int64(em_value_at(v, 0)), 2);
    CHECK(em_value_at(v, 2).len == 0);
    /* Index extends after more appends; the index agrees with a cursor walk. */
    for (int k = 0; k < 1000; k++) {
        if (k % 3 == 0)
            em_put_pair(r, em_records_at(r, 0), em_records_at(r, 1));
        else
            em_put_int64(r, k);
        if (k % 97 == 0) CHECK(em_records_at(r, em_records_count(r) - 1).len > 0);
    }
    CHECK_EQ_INT(em_records_count(r), 1002);
    cursor = 0;
    for (size_t i = 0; i < 1002; i++) {
        CHECK_EQ_INT(em_records_next(r, &cursor, &v), EM_ROW);
        em_value w = em_records_at(r, i);
        CHECK(w.data == v.data && w.len == v.len);
    }
    CHECK_EQ_INT(em_records_next(r, &cursor, &v), EM_DONE);
    CHECK(em_records_at(r, 1002).len == 0);
    /* A pair built from values: (1, (2,"two")). */
    v = em_records_at(r, 2);
    CHECK_EQ_INT(em_value_type(v), EM_TYPE_TUPLE);
    char buf[64];
    em_value_format(v, buf, sizeof buf);
    CHECK_EQ_STR(buf, "(1,(2,two))");
    /* em__put_raw / em__records_append_pair_raw */
    em_records *raw = em_records_new();
    em_value k1 = em_records_at(r, 0), t2 = em_records_at(r, 1);
    CHECK_OK(em__records_append_pair_raw(raw, k1.data, k1.len, t2.data, t2.len));
    em__put_raw(raw, k1.data, k1.len);
    CHECK_EQ_INT(em_records_count(raw), 2);
    CHECK(em_value_eq(em_records_at(raw, 0), em_records_at(r, 2)));
    CHECK_EQ_INT(em__value_skip(t2.data, t2.data + t2.len), t2.len);
    CHECK_EQ_INT(em__value_skip(t2.data, t2.data + t2.len - 1), 0);
    em_records_free(raw);
    em_records_free(r);
    CHECK_EQ_STR(em_type_name(EM_TYPE_FLOAT64), "float64");
    CHECK_EQ_STR(em_type_name(EM_TYPE_INVALID), "invalid");
}

/* ---- a tiny spilled list: the integers 0..count-1 ------------------------------------------ */

static int ext_live; /* iterations whose state is allocated */

struct fake_state {
    uint64_t i;
    uint8_t enc[9];
};

static int fake_open(const em_ext_list *self, em_elems *it)
{
    (void)self;
    struct fake_state *s = calloc(1, sizeof *s);
    if (!s) return EM_ENOMEM;
    it->state = s;
    ext_live++;
    return 0;
}

static int fake_next(em_elems *it, em_value *out)
{
    struct fake_state *s = it->state;
    const em_ext_list *self = it->ext;
    if (s->i == self->count) {
        free(s);
        ext_live--;
        return EM_DONE;
    }
    em__enc_int64(s->enc, (int64_t)s->i++);
    *out = (em_value){s->enc, 9, NULL};
    return EM_ROW;
}

TEST(ext_lists)
{
    static const uint8_t empty_list[] = {0x09, 0x00};
    em_ext_list fake = {fake_open, fake_next, 5};
    em_value x = {empty_list, 2, &fake};
    CHECK_EQ_INT(em_value_type(x), EM_TYPE_LIST);
    CHECK_EQ_INT(em_value_count(x), 5);
    em_elems it;
    em_value e;
    em_elems_init(&it, x);
    int64_t want = 0;
    while (em_elems_next(&it, &e) == EM_ROW) CHECK_EQ_INT(em_value_int64(e), want++);
    CHECK_EQ_INT(want, 5);
    CHECK_EQ_INT(em_elems_next(&it, &e), EM_DONE); /* stays done */
    CHECK_EQ_INT(ext_live, 0);
    CHECK_EQ_INT(em_value_int64(em_value_at(x, 3)), 3);
    CHECK_EQ_INT(ext_live, 0);
    char buf[64];
    CHECK_EQ_INT(em_value_format(x, buf, sizeof buf), 11);
    CHECK_EQ_STR(buf, "[0,1,2,3,4]");
    /* The same list built for real. */
    em_records *r = em_records_new();
    em_put_list_begin(r);
    for (int k = 0; k < 5; k++) em_put_int64(r, k);
    em_put_end(r);
    em_put_value(r, x); /* materialised */
    em_put_list_begin(r);
    for (int k = 0; k < 4; k++) em_put_int64(r, k);
    em_put_end(r);
    em_put_list_begin(r);
    em_put_int64(r, 0);
    em_put_int64(r, 2);
    em_put_end(r);
    em_value real = em_records_at(r, 0), mat = em_records_at(r, 1);
    CHECK(mat.ext == NULL && mat.len == real.len && memcmp(mat.data, real.data, real.len) == 0);
    CHECK_EQ_INT(em_value_cmp(x, real), 0);
    CHECK(em_value_eq(real, x));
    CHECK(em_value_hash(x) == em_value_hash(real));
    CHECK(em_value_cmp(x, em_records_at(r, 2)) > 0); /* [0..3] is a prefix */
    CHECK(em_value_cmp(em_records_at(r, 3), x) > 0); /* [0,2] > [0,1,...] */
    CHECK(em_value_cmp(x, em_records_at(r, 3)) < 0);
    em_records_clear(r);
    em_put_int64(r, 7);
    CHECK(em_value_cmp(x, em_records_at(r, 0)) > 0); /* list > int64 */
    em_put_pair(r, em_records_at(r, 0), x);
    CHECK_EQ_INT(em_records_count(r), 2);
    em_value_format(em_records_at(r, 1), buf, sizeof buf);
    CHECK_EQ_STR(buf, "(7,[0,1,2,3,4])");
    CHECK_EQ_INT(ext_live, 0);
    em_records_free(r);
}
