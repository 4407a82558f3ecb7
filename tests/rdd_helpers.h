/* Shared helpers of the RDD unit tests (test_rdd_ops.c, test_rdd_shuffle.c, test_rdd_errors.c):
 * a context on a fresh local dir, int64 / (int64, int64) record builders and parallelize,
 * collect-as-ints and collect-as-text, comparators, multiset comparisons, a growable string
 * list, a sorted directory listing, and the small user functions several files pass to the
 * engine (add, max2, times10, the (sum, count) aggregators).
 * Header-only: every function is static inline, so each test executable gets its own copy and
 * a file that does not use one gets no -Wunused-function. Runs on the test's (forked) main
 * thread, except the user functions, which the engine calls from its task threads; failures
 * go through tests/test.h's CHECK macros. Include after "test.h".
 */
#ifndef EMBER_TESTS_RDD_HELPERS_H
#define EMBER_TESTS_RDD_HELPERS_H

#include <ember/ember.h>

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>

static inline em_context *ctx_with(const char *master, const char *key, const char *value)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    if (key) CHECK_OK(em_conf_set(conf, key, value));
    em_context *ctx = NULL;
    CHECK_OK(em_context_create(master, "test", conf, &ctx));
    em_conf_free(conf);
    return ctx;
}

static inline em_records *int_records(const int64_t *v, size_t n)
{
    em_records *r = em_records_new();
    CHECK(r);
    for (size_t i = 0; i < n; i++) em_put_int64(r, v[i]);
    CHECK_OK(em_records_error(r));
    return r;
}

static inline em_rdd *par_ints(em_context *ctx, const int64_t *v, size_t n, int slices)
{
    em_records *r = int_records(v, n);
    em_rdd *rdd = em_parallelize(ctx, r, slices);
    em_records_free(r);
    CHECK_MSG(rdd, "parallelize: %s", em_errmsg());
    return rdd;
}

/* (k, v) int64 pairs. */
static inline em_rdd *par_pairs(em_context *ctx, const int64_t *k, const int64_t *v, size_t n,
                                int slices)
{
    em_records *r = em_records_new();
    for (size_t i = 0; i < n; i++) {
        em_put_tuple_begin(r);
        em_put_int64(r, k[i]);
        em_put_int64(r, v[i]);
        em_put_end(r);
    }
    CHECK_OK(em_records_error(r));
    em_rdd *rdd = em_parallelize(ctx, r, slices);
    em_records_free(r);
    CHECK(rdd);
    return rdd;
}

static inline int64_t *ints_of(em_records *recs, size_t *n)
{
    *n = em_records_count(recs);
    int64_t *v = calloc(*n + 1, sizeof *v);
    for (size_t i = 0; i < *n; i++) {
        em_value x = em_records_at(recs, i);
        CHECK_MSG(em_value_type(x) == EM_TYPE_INT64, "record %zu is a %s", i,
                  em_type_name(em_value_type(x)));
        v[i] = em_value_int64(x);
    }
    return v;
}

static inline int64_t *collect_ints(em_rdd *r, size_t *n)
{
    CHECK_MSG(r, "RDD definition failed: %s", em_errmsg());
    em_records *recs = NULL;
    CHECK_OK(em_rdd_collect(r, &recs));
    int64_t *v = ints_of(recs, n);
    em_records_free(recs);
    return v;
}

static inline int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static inline void expect_ints(const int64_t *got, size_t ng, const int64_t *want, size_t nw)
{
    CHECK_EQ_INT(ng, nw);
    for (size_t i = 0; i < nw; i++)
        CHECK_MSG(got[i] == want[i], "element %zu: got %lld, want %lld", i, (long long)got[i],
                  (long long)want[i]);
}

/* Compares as multisets (sorts both arrays in place). */
static inline void expect_ints_multiset(int64_t *got, size_t ng, int64_t *want, size_t nw)
{
    qsort(got, ng, sizeof *got, cmp_i64);
    qsort(want, nw, sizeof *want, cmp_i64);
    expect_ints(got, ng, want, nw);
}

/* A list of strings (formatted values or reference text). */
typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static inline void sl_push(strlist *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        CHECK(l->v);
    }
    l->v[l->n++] = s;
}

static inline void sl_addf(strlist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void sl_addf(strlist *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    CHECK(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    sl_push(l, s);
}

static inline char *format_value(em_value v)
{
    size_t n = em_value_format(v, NULL, 0);
    char *s = malloc(n + 1);
    em_value_format(v, s, n + 1);
    return s;
}

static inline strlist collect_text(em_rdd *r)
{
    CHECK_MSG(r, "RDD definition failed: %s", em_errmsg());
    em_records *recs = NULL;
    CHECK_OK(em_rdd_collect(r, &recs));
    strlist l = {0};
    for (size_t i = 0; i < em_records_count(recs); i++)
        sl_push(&l, format_value(em_records_at(recs, i)));
    em_records_free(recs);
    return l;
}

static inline int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline void sl_expect(strlist *got, strlist *want, bool sort)
{
    if (sort) {
        qsort(got->v, got->n, sizeof *got->v, cmp_str);
        qsort(want->v, want->n, sizeof *want->v, cmp_str);
    }
    CHECK_EQ_INT(got->n, want->n);
    for (size_t i = 0; i < want->n; i++)
        CHECK_MSG(strcmp(got->v[i], want->v[i]) == 0, "element %zu: got '%s', want '%s'", i,
                  got->v[i], want->v[i]);
}

static inline void sl_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    *l = (strlist){0};
}

static inline int list_dir(const char *dir, strlist *out)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) sl_addf(out, "%s", e->d_name);
    closedir(d);
    qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return 0;
}

/* ---- user functions ------------------------------------------------------------------------ */

static inline int add(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

static inline int max2(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    int64_t x = em_value_int64(a), y = em_value_int64(b);
    em_put_int64(out, x > y ? x : y);
    return 0;
}

static inline int times10(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(in) * 10);
    return 0;
}

static inline int seq_sum_count(em_task *t, em_value acc, em_value v, em_records *out,
                                const void *arg)
{
    (void)t, (void)arg;
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(em_value_at(acc, 0)) + em_value_int64(v));
    em_put_int64(out, em_value_int64(em_value_at(acc, 1)) + 1);
    em_put_end(out);
    return 0;
}

static inline int comb_sum_count(em_task *t, em_value a, em_value b, em_records *out,
                                 const void *arg)
{
    (void)t, (void)arg;
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(em_value_at(a, 0)) + em_value_int64(em_value_at(b, 0)));
    em_put_int64(out, em_value_int64(em_value_at(a, 1)) + em_value_int64(em_value_at(b, 1)));
    em_put_end(out);
    return 0;
}

#endif
