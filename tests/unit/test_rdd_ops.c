/* Unit tests of the narrow RDD operators and of every action, each run on a real local[N]
 * context and compared against a reference computed in plain C in the test (arrays, qsort,
 * loops), never against the engine's own output.
 *
 * Covered: map, filter, flatMap, mapPartitions(+WithIndex), mapValues, flatMapValues, keyBy,
 * keys, values, union, sample, glom, zipWithIndex, cartesian, coalesce without shuffle,
 * textFile; actions collect, count, first, take, takeOrdered, top, reduce, fold, aggregate,
 * countByKey, countByValue, lookup, foreach, foreachPartition, saveAsTextFile; cache /
 * unpersist (a counting map function); empty RDDs (0 partitions and empty partitions) under
 * every action; 2000 tiny tasks.
 * Each TEST runs in its own forked process (tests/test.h), so the atomic counters are fresh.
 */
#include "test.h"
#include "rdd_helpers.h"

#include <ember/ember.h>

#include <pthread.h>
#include <stdatomic.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static em_context *ctx_new(const char *master)
{
    em_context *ctx = ctx_with(master, NULL, NULL);
    CHECK(ctx);
    return ctx;
}

/* Start index of slice s when n records are cut into k slices (parallelize's contract:
 * near-equal counts; this is the usual i*n/k cut). */
static size_t slice_start(size_t n, int k, int s)
{
    return n * (size_t)s / (size_t)k;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK_EQ_INT(fwrite(data, 1, len, f), len);
    CHECK_EQ_INT(fclose(f), 0);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f, "cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- user functions ------------------------------------------------------------------------ */

static atomic_long calls;

static int square(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    int64_t x = em_value_int64(in);
    em_put_int64(out, x * x);
    return 0;
}

static int counting_square(em_task *t, em_value in, em_records *out, const void *arg)
{
    atomic_fetch_add(&calls, 1);
    return square(t, in, out, arg);
}

static int add_arg(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    int64_t k;
    memcpy(&k, arg, sizeof k);
    em_put_int64(out, em_value_int64(in) + k);
    return 0;
}

static int is_mult3(em_task *t, em_value in, const void *arg)
{
    (void)t, (void)arg;
    return em_value_int64(in) % 3 == 0;
}

/* x -> (x mod 4) copies of x*10 */
static int copies(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    int64_t x = em_value_int64(in);
    for (int64_t i = 0; i < x % 4; i++) em_put_int64(out, x * 10);
    return 0;
}

/* Emits (partition, x) for each x, then (partition, -1). */
static int tag_partition(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    (void)arg;
    em_value v;
    int rc;
    while ((rc = em_iter_next(in, &v)) == EM_ROW) {
        em_put_tuple_begin(out);
        em_put_int64(out, em_task_partition(t));
        em_put_value(out, v);
        em_put_end(out);
    }
    if (rc < 0) return rc;
    em_put_tuple_begin(out);
    em_put_int64(out, em_task_partition(t));
    em_put_int64(out, -1);
    em_put_end(out);
    return 0;
}

/* Sum of the partition as one value. */
static int sum_partition(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_value v;
    int rc;
    int64_t s = 0;
    while ((rc = em_iter_next(in, &v)) == EM_ROW) s += em_value_int64(v);
    if (rc < 0) return rc;
    em_put_int64(out, s);
    return 0;
}

static int plus_minus(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(in));
    em_put_int64(out, -em_value_int64(in));
    return 0;
}

static int mod5(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(in) % 5);
    return 0;
}

static int to_string(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "v%lld", (long long)em_value_int64(in));
    em_put_str(out, buf, (size_t)n);
    return 0;
}

/* x -> a permutation of 0..29999 (7919 is prime to 30000) */
static int scramble(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, (em_value_int64(in) * 7919) % 30000);
    return 0;
}

static atomic_long each_sum, each_count;
static atomic_int part_calls;
static atomic_long part_sizes[64];

static int each_add(em_task *t, em_value in, const void *arg)
{
    (void)t;
    int64_t k;
    memcpy(&k, arg, sizeof k);
    atomic_fetch_add(&each_sum, em_value_int64(in) * k);
    atomic_fetch_add(&each_count, 1);
    return 0;
}

static int each_part(em_task *t, em_iter *in, const void *arg)
{
    (void)arg;
    em_value v;
    int rc;
    long n = 0;
    while ((rc = em_iter_next(in, &v)) == EM_ROW) n++;
    if (rc < 0) return rc;
    atomic_fetch_add(&part_calls, 1);
    int p = em_task_partition(t);
    if (p >= 0 && p < 64) atomic_fetch_add(&part_sizes[p], n + 1); /* +1: called at all */
    return 0;
}

/* ---- narrow transformations ------------------------------------------------------------- */

TEST(map_filter_flat_map)
{
    em_context *ctx = ctx_new("local[2]");
    enum { N = 1000 };
    int64_t in[N];
    for (int i = 0; i < N; i++) in[i] = (i * 37) % 1001 - 300;
    em_rdd *src = par_ints(ctx, in, N, 7);
    CHECK_EQ_INT(em_rdd_num_partitions(src), 7);

    /* map keeps the order (collect returns partitions in order). */
    size_t n;
    int64_t *got = collect_ints(em_rdd_map(src, square, NULL, 0), &n);
    int64_t want[N * 3];
    for (int i = 0; i < N; i++) want[i] = in[i] * in[i];
    expect_ints(got, n, want, N);
    free(got);

    size_t nw = 0;
    for (int i = 0; i < N; i++)
        if (in[i] % 3 == 0) want[nw++] = in[i];
    got = collect_ints(em_rdd_filter(src, is_mult3, NULL, 0), &n);
    expect_ints(got, n, want, nw);
    free(got);

    nw = 0;
    for (int i = 0; i < N; i++)
        for (int64_t c = 0; c < in[i] % 4; c++) want[nw++] = in[i] * 10;
    got = collect_ints(em_rdd_flat_map(src, copies, NULL, 0), &n);
    expect_ints(got, n, want, nw);
    free(got);

    /* A chain: filter . map . flatMap, fused in one stage. */
    em_rdd *chain = em_rdd_flat_map(
        em_rdd_map(em_rdd_filter(src, is_mult3, NULL, 0), square, NULL, 0), copies, NULL, 0);
    nw = 0;
    for (int i = 0; i < N; i++) {
        if (in[i] % 3) continue;
        int64_t s = in[i] * in[i];
        for (int64_t c = 0; c < s % 4; c++) want[nw++] = s * 10;
    }
    got = collect_ints(chain, &n);
    expect_ints(got, n, want, nw);
    free(got);
    em_context_stop(ctx);
}

TEST(map_argument_is_copied)
{
    em_context *ctx = ctx_new("local[2]");
    int64_t k = 1000;
    em_rdd *r = em_rdd_map(em_range(ctx, 0, 50, 1, 3), add_arg, &k, sizeof k);
    k = -5; /* the blob was copied when the RDD was defined */
    size_t n;
    int64_t *got = collect_ints(r, &n);
    int64_t want[50];
    for (int i = 0; i < 50; i++) want[i] = i + 1000;
    expect_ints(got, n, want, 50);
    free(got);
    /* NULL parent propagates; NULL function is refused. */
    CHECK(em_rdd_map(NULL, square, NULL, 0) == NULL);
    CHECK(em_rdd_map(em_range(ctx, 0, 5, 1, 1), NULL, NULL, 0) == NULL);
    em_context_stop(ctx);
}

TEST(map_partitions_with_index)
{
    em_context *ctx = ctx_new("local[3]");
    enum { N = 103, K = 5 };
    int64_t in[N];
    for (int i = 0; i < N; i++) in[i] = i * 2 + 1;
    em_rdd *src = par_ints(ctx, in, N, K);
    em_rdd *tagged = em_rdd_map_partitions_with_index(src, tag_partition, NULL, 0);
    strlist got = collect_text(tagged), want = {0};
    for (int p = 0; p < K; p++) {
        for (size_t i = slice_start(N, K, p); i < slice_start(N, K, p + 1); i++)
            sl_addf(&want, "(%d,%lld)", p, (long long)in[i]);
        sl_addf(&want, "(%d,-1)", p);
    }
    sl_expect(&got, &want, false);
    sl_free(&got);
    sl_free(&want);

    size_t n;
    int64_t *sums = collect_ints(em_rdd_map_partitions(src, sum_partition, NULL, 0), &n);
    CHECK_EQ_INT(n, K);
    for (int p = 0; p < K; p++) {
        int64_t s = 0;
        for (size_t i = slice_start(N, K, p); i < slice_start(N, K, p + 1); i++) s += in[i];
        CHECK_EQ_INT(sums[p], s);
    }
    free(sums);
    em_context_stop(ctx);
}

TEST(pair_narrow_ops)
{
    em_context *ctx = ctx_new("local[2]");
    enum { N = 200 };
    int64_t k[N], v[N];
    for (int i = 0; i < N; i++) k[i] = i % 13, v[i] = i * 3 - 7;
    em_rdd *pairs = par_pairs(ctx, k, v, N, 4);

    strlist got = collect_text(em_rdd_map_values(pairs, times10, NULL, 0)), want = {0};
    for (int i = 0; i < N; i++)
        sl_addf(&want, "(%lld,%lld)", (long long)k[i], (long long)v[i] * 10);
    sl_expect(&got, &want, false);
    sl_free(&got);
    sl_free(&want);

    got = collect_text(em_rdd_flat_map_values(pairs, plus_minus, NULL, 0));
    for (int i = 0; i < N; i++) {
        sl_addf(&want, "(%lld,%lld)", (long long)k[i], (long long)v[i]);
        sl_addf(&want, "(%lld,%lld)", (long long)k[i], -(long long)v[i]);
    }
    sl_expect(&got, &want, false);
    sl_free(&got);
    sl_free(&want);

    size_t n;
    int64_t *ks = collect_ints(em_rdd_keys(pairs), &n);
    expect_ints(ks, n, k, N);
    free(ks);
    int64_t *vs = collect_ints(em_rdd_values(pairs), &n);
    expect_ints(vs, n, v, N);
    free(vs);

    got = collect_text(em_rdd_key_by(em_range(ctx, 0, 30, 1, 3), mod5, NULL, 0));
    for (int i = 0; i < 30; i++) sl_addf(&want, "(%d,%d)", i % 5, i);
    sl_expect(&got, &want, false);
    sl_free(&got);
    sl_free(&want);
    em_context_stop(ctx);
}

TEST(union_keeps_partition_order)
{
    em_context *ctx = ctx_new("local[2]");
    em_rdd *a = em_range(ctx, 0, 10, 1, 3), *b = em_range(ctx, 100, 90, -1, 2);
    em_rdd *u = em_rdd_union(a, b);
    CHECK(u);
    CHECK_EQ_INT(em_rdd_num_partitions(u), 5);
    size_t n;
    int64_t *got = collect_ints(u, &n);
    int64_t want[20];
    size_t nw = 0;
    for (int i = 0; i < 10; i++) want[nw++] = i;
    for (int i = 100; i > 90; i--) want[nw++] = i;
    expect_ints(got, n, want, nw);
    free(got);
    /* union with itself doubles every element */
    int64_t c;
    CHECK_OK(em_rdd_count(em_rdd_union(a, a), &c));
    CHECK_EQ_INT(c, 20);
    em_context_stop(ctx);
}

TEST(sample)
{
    em_context *ctx = ctx_new("local[2]");
    enum { N = 20000 };
    em_rdd *src = em_range(ctx, 0, N, 1, 4);
    int64_t c;
    CHECK_OK(em_rdd_count(em_rdd_sample(src, false, 0.0, 1), &c));
    CHECK_EQ_INT(c, 0);
    size_t n;
    int64_t *all = collect_ints(em_rdd_sample(src, false, 1.0, 7), &n);
    CHECK_EQ_INT(n, N);
    for (int i = 0; i < N; i++) CHECK_EQ_INT(all[i], i);
    free(all);

    /* Bernoulli 0.3: a subset, in order, no duplicates, size near 6000 (sd ~65). */
    em_rdd *s1 = em_rdd_sample(src, false, 0.3, 42);
    size_t n1, n2;
    int64_t *a = collect_ints(s1, &n1);
    int64_t *b = collect_ints(em_rdd_sample(src, false, 0.3, 42), &n2);
    expect_ints(a, n1, b, n2); /* same seed: same sample */
    CHECK_MSG(n1 > 5400 && n1 < 6600, "sample size %zu", n1);
    for (size_t i = 1; i < n1; i++) CHECK(a[i] > a[i - 1]);
    for (size_t i = 0; i < n1; i++) CHECK(a[i] >= 0 && a[i] < N);
    free(b);
    b = collect_ints(em_rdd_sample(src, false, 0.3, 43), &n2);
    bool differ = n1 != n2;
    for (size_t i = 0; !differ && i < n1; i++) differ = a[i] != b[i];
    CHECK_MSG(differ, "seeds 42 and 43 gave the same sample");
    free(a);
    free(b);

    /* With replacement, fraction 1.5: mean 30000 (sd ~170). */
    a = collect_ints(em_rdd_sample(src, true, 1.5, 9), &n1);
    CHECK_MSG(n1 > 28000 && n1 < 32000, "sample size %zu", n1);
    for (size_t i = 1; i < n1; i++) CHECK(a[i] >= a[i - 1]);
    free(a);
    a = collect_ints(em_rdd_sample(src, true, 0.2, 9), &n1);
    CHECK_MSG(n1 > 3500 && n1 < 4500, "sample size %zu", n1);
    free(a);

    CHECK(em_rdd_sample(src, false, 1.5, 1) == NULL);
    CHECK(em_rdd_sample(src, false, -0.1, 1) == NULL);
    em_context_stop(ctx);
}

TEST(glom)
{
    em_context *ctx = ctx_new("local[2]");
    enum { N = 17, K = 4 };
    int64_t in[N];
    for (int i = 0; i < N; i++) in[i] = 100 - i;
    em_records *recs = NULL;
    CHECK_OK(em_rdd_collect(em_rdd_glom(par_ints(ctx, in, N, K)), &recs));
    CHECK_EQ_INT(em_records_count(recs), K);
    for (int p = 0; p < K; p++) {
        em_value l = em_records_at(recs, (size_t)p);
        CHECK_EQ_INT(em_value_type(l), EM_TYPE_LIST);
        size_t lo = slice_start(N, K, p), hi = slice_start(N, K, p + 1);
        CHECK_EQ_INT(em_value_count(l), hi - lo);
        for (size_t i = lo; i < hi; i++)
            CHECK_EQ_INT(em_value_int64(em_value_at(l, i - lo)), in[i]);
    }
    em_records_free(recs);
    /* more partitions than records: empty lists */
    CHECK_OK(em_rdd_collect(em_rdd_glom(par_ints(ctx, in, 2, 5)), &recs));
    CHECK_EQ_INT(em_records_count(recs), 5);
    size_t total = 0;
    for (int p = 0; p < 5; p++) total += em_value_count(em_records_at(recs, (size_t)p));
    CHECK_EQ_INT(total, 2);
    em_records_free(recs);
    em_context_stop(ctx);
}

TEST(zip_with_index)
{
    em_context *ctx = ctx_new("local[3]");
    /* Uneven partitions, one of them empty (filter drops 20..39 = partition 1). */
    em_rdd *src = em_rdd_map(em_range(ctx, 0, 100, 1, 5), to_string, NULL, 0);
    strlist got = collect_text(em_rdd_zip_with_index(src)), want = {0};
    for (int i = 0; i < 100; i++) sl_addf(&want, "(v%d,%d)", i, i);
    sl_expect(&got, &want, false);
    sl_free(&got);
    sl_free(&want);

    int64_t in[100];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        if (i < 20 || i >= 40) in[n++] = i;
    em_rdd *holes =
        em_rdd_union(em_range(ctx, 0, 20, 1, 1),
                     em_rdd_union(em_range(ctx, 0, 0, 1, 2), em_range(ctx, 40, 100, 1, 3)));
    got = collect_text(em_rdd_zip_with_index(holes));
    for (size_t i = 0; i < n; i++) sl_addf(&want, "(%lld,%zu)", (long long)in[i], i);
    sl_expect(&got, &want, false);
    sl_free(&got);
    sl_free(&want);

    /* single partition: no counting job needed */
    got = collect_text(em_rdd_zip_with_index(em_range(ctx, 5, 8, 1, 1)));
    sl_addf(&want, "(5,0)");
    sl_addf(&want, "(6,1)");
    sl_addf(&want, "(7,2)");
    sl_expect(&got, &want, false);
    sl_free(&got);
    sl_free(&want);
    em_context_stop(ctx);
}

TEST(cartesian)
{
    em_context *ctx = ctx_new("local[2]");
    em_rdd *a = em_range(ctx, 0, 7, 1, 3);
    em_rdd *b = em_rdd_map(em_range(ctx, 0, 5, 1, 2), to_string, NULL, 0);
    em_rdd *c = em_rdd_cartesian(a, b);
    CHECK(c);
    CHECK_EQ_INT(em_rdd_num_partitions(c), 6);
    strlist got = collect_text(c), want = {0};
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 5; j++) sl_addf(&want, "(%d,v%d)", i, j);
    sl_expect(&got, &want, true);
    sl_free(&got);
    sl_free(&want);
    int64_t cnt;
    CHECK_OK(em_rdd_count(em_rdd_cartesian(a, em_range(ctx, 0, 0, 1, 2)), &cnt));
    CHECK_EQ_INT(cnt, 0);
    em_context_stop(ctx);
}

TEST(coalesce_without_shuffle)
{
    em_context *ctx = ctx_new("local[2]");
    em_rdd *src = em_range(ctx, 0, 1000, 1, 10);
    em_rdd *c = em_rdd_coalesce(src, 3, false);
    CHECK(c);
    CHECK_EQ_INT(em_rdd_num_partitions(c), 3);
    size_t n;
    int64_t *got = collect_ints(c, &n); /* adjacent partitions merged: order kept */
    CHECK_EQ_INT(n, 1000);
    for (int i = 0; i < 1000; i++) CHECK_EQ_INT(got[i], i);
    free(got);
    /* glom: 3 lists covering everything */
    em_records *recs;
    CHECK_OK(em_rdd_collect(em_rdd_glom(c), &recs));
    CHECK_EQ_INT(em_records_count(recs), 3);
    size_t total = 0;
    for (size_t i = 0; i < 3; i++) {
        size_t m = em_value_count(em_records_at(recs, i));
        CHECK(m > 0);
        total += m;
    }
    CHECK_EQ_INT(total, 1000);
    em_records_free(recs);
    /* Asking for more partitions without shuffle keeps the parent's count. */
    CHECK_EQ_INT(em_rdd_num_partitions(em_rdd_coalesce(src, 50, false)), 10);
    CHECK(em_rdd_coalesce(src, 0, false) == NULL);
    em_context_stop(ctx);
}

TEST(text_file_lines)
{
    em_context *ctx = ctx_new("local[2]");
    char path[1100];
    snprintf(path, sizeof path, "%s/in.txt", test_tmpdir());
    strlist want = {0};
    char *data = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&data, &len);
    for (int i = 0; i < 3000; i++) {
        sl_addf(&want, "line %d %.*s", i, i % 50,
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        fprintf(m, "%s%s", want.v[i], i % 7 == 0 ? "\r\n" : "\n");
    }
    fclose(m);
    write_file(path, data, len);
    free(data);
    em_rdd *lines = em_text_file(ctx, path, 4);
    CHECK(lines);
    CHECK(em_rdd_num_partitions(lines) >= 4);
    strlist got = collect_text(lines);
    sl_expect(&got, &want, false);
    sl_free(&got);
    sl_free(&want);
    char missing[1100];
    snprintf(missing, sizeof missing, "%s/nope.txt", test_tmpdir());
    CHECK(em_text_file(ctx, missing, 0) == NULL);
    CHECK(strstr(em_errmsg(), "nope.txt"));
    em_context_stop(ctx);
}

/* ---- actions ----------------------------------------------------------------------------- */

TEST(count_first_take)
{
    em_context *ctx = ctx_new("local[2]");
    enum { N = 500 };
    int64_t in[N];
    for (int i = 0; i < N; i++) in[i] = (i * 7919) % 1000;
    em_rdd *src = par_ints(ctx, in, N, 8);
    int64_t c;
    CHECK_OK(em_rdd_count(src, &c));
    CHECK_EQ_INT(c, N);
    CHECK_OK(em_rdd_count(em_rdd_filter(src, is_mult3, NULL, 0), &c));
    int64_t want = 0;
    for (int i = 0; i < N; i++) want += in[i] % 3 == 0;
    CHECK_EQ_INT(c, want);

    em_records *r;
    CHECK_OK(em_rdd_first(src, &r));
    CHECK_EQ_INT(em_records_count(r), 1);
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), in[0]);
    em_records_free(r);

    size_t sizes[] = {0, 1, 10, 62, 63, 64, 200, 499, 500, 501, 10000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        CHECK_OK(em_rdd_take(src, sizes[s], &r));
        size_t n;
        int64_t *got = ints_of(r, &n);
        expect_ints(got, n, in, sizes[s] < N ? sizes[s] : N);
        free(got);
        em_records_free(r);
    }
    /* take over leading empty partitions */
    em_rdd *late = em_rdd_filter(em_range(ctx, 0, 1000, 1, 10), is_mult3, NULL, 0);
    em_rdd *tail = em_rdd_union(em_range(ctx, 0, 0, 1, 6), late);
    CHECK_OK(em_rdd_take(tail, 5, &r));
    size_t n;
    int64_t *got = ints_of(r, &n);
    int64_t w5[] = {0, 3, 6, 9, 12};
    expect_ints(got, n, w5, 5);
    free(got);
    em_records_free(r);
    CHECK_OK(em_rdd_first(tail, &r));
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), 0);
    em_records_free(r);
    em_context_stop(ctx);
}

TEST(take_ordered_top)
{
    em_context *ctx = ctx_new("local[3]");
    enum { N = 5000 };
    int64_t *in = malloc(N * sizeof *in), *sorted = malloc(N * sizeof *sorted);
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        in[i] = (int64_t)(s >> 33) % 3000 - 1500;
        sorted[i] = in[i];
    }
    qsort(sorted, N, sizeof *sorted, cmp_i64);
    em_rdd *src = par_ints(ctx, in, N, 6);
    size_t ns[] = {0, 1, 5, 100, 2000, 4999, 5000, 6000};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        size_t want = ns[k] < N ? ns[k] : N;
        em_records *r;
        CHECK_OK(em_rdd_take_ordered(src, ns[k], &r));
        size_t n;
        int64_t *got = ints_of(r, &n);
        expect_ints(got, n, sorted, want);
        free(got);
        em_records_free(r);
        CHECK_OK(em_rdd_top(src, ns[k], &r));
        got = ints_of(r, &n);
        CHECK_EQ_INT(n, want);
        for (size_t i = 0; i < n; i++) CHECK_EQ_INT(got[i], sorted[N - 1 - i]);
        free(got);
        em_records_free(r);
    }
    free(in);
    free(sorted);
    em_context_stop(ctx);
}

TEST(reduce_fold_aggregate)
{
    em_context *ctx = ctx_new("local[2]");
    enum { N = 1001 };
    em_rdd *src = em_range(ctx, -300, N - 300, 1, 5);
    int64_t sum = 0, mx = INT64_MIN;
    for (int64_t i = -300; i < N - 300; i++) sum += i, mx = i > mx ? i : mx;
    em_records *r;
    CHECK_OK(em_rdd_reduce(src, add, NULL, 0, &r));
    CHECK_EQ_INT(em_records_count(r), 1);
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), sum);
    em_records_free(r);
    CHECK_OK(em_rdd_reduce(src, max2, NULL, 0, &r));
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), mx);
    em_records_free(r);

    em_records *z = em_records_new();
    em_put_int64(z, 0);
    CHECK_OK(em_rdd_fold(src, em_records_at(z, 0), add, NULL, 0, &r));
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), sum);
    em_records_free(r);
    em_records_clear(z);
    em_put_int64(z, 5000); /* a zero bigger than every element: max is the zero */
    CHECK_OK(em_rdd_fold(src, em_records_at(z, 0), max2, NULL, 0, &r));
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), 5000);
    em_records_free(r);

    em_records_clear(z);
    em_put_tuple_begin(z);
    em_put_int64(z, 0);
    em_put_int64(z, 0);
    em_put_end(z);
    CHECK_OK(
        em_rdd_aggregate(src, em_records_at(z, 0), seq_sum_count, comb_sum_count, NULL, 0, &r));
    em_value acc = em_records_at(r, 0);
    CHECK_EQ_INT(em_value_count(acc), 2);
    CHECK_EQ_INT(em_value_int64(em_value_at(acc, 0)), sum);
    CHECK_EQ_INT(em_value_int64(em_value_at(acc, 1)), N);
    em_records_free(r);
    em_records_free(z);
    em_context_stop(ctx);
}

TEST(count_by_key_value_lookup)
{
    em_context *ctx = ctx_new("local[2]");
    enum { N = 700 };
    int64_t k[N], v[N];
    for (int i = 0; i < N; i++) k[i] = (i * i) % 17, v[i] = i % 9;
    em_rdd *pairs = par_pairs(ctx, k, v, N, 5);
    em_records *r;
    CHECK_OK(em_rdd_count_by_key(pairs, &r));
    /* reference: counts per key, sorted by key */
    int64_t cnt[17] = {0};
    for (int i = 0; i < N; i++) cnt[k[i]]++;
    size_t idx = 0;
    for (int key = 0; key < 17; key++) {
        if (!cnt[key]) continue;
        CHECK(idx < em_records_count(r));
        em_value p = em_records_at(r, idx++);
        CHECK_EQ_INT(em_value_int64(em_value_key(p)), key);
        CHECK_EQ_INT(em_value_int64(em_value_val(p)), cnt[key]);
    }
    CHECK_EQ_INT(em_records_count(r), idx);
    em_records_free(r);

    CHECK_OK(em_rdd_count_by_value(em_rdd_values(pairs), &r));
    CHECK_EQ_INT(em_records_count(r), 9);
    for (int x = 0; x < 9; x++) {
        int64_t c = 0;
        for (int i = 0; i < N; i++) c += v[i] == x;
        em_value p = em_records_at(r, (size_t)x);
        CHECK_EQ_INT(em_value_int64(em_value_key(p)), x);
        CHECK_EQ_INT(em_value_int64(em_value_val(p)), c);
    }
    em_records_free(r);

    em_records *key = em_records_new();
    for (int64_t want_key = 0; want_key < 18; want_key++) {
        em_records_clear(key);
        em_put_int64(key, want_key);
        CHECK_OK(em_rdd_lookup(pairs, em_records_at(key, 0), &r));
        size_t n;
        int64_t *got = ints_of(r, &n);
        int64_t want[N];
        size_t nw = 0;
        for (int i = 0; i < N; i++)
            if (k[i] == want_key) want[nw++] = v[i];
        expect_ints(got, n, want, nw); /* one pass in partition order: order kept */
        free(got);
        em_records_free(r);
    }
    /* lookup on a hash-partitioned RDD reads one partition; same answer. */
    em_rdd *parted = em_rdd_partition_by(pairs, em_hash_partitioner(ctx, 4));
    em_records_clear(key);
    em_put_int64(key, 4);
    CHECK_OK(em_rdd_lookup(parted, em_records_at(key, 0), &r));
    size_t n;
    int64_t *got = ints_of(r, &n);
    int64_t want[N];
    size_t nw = 0;
    for (int i = 0; i < N; i++)
        if (k[i] == 4) want[nw++] = v[i];
    expect_ints_multiset(got, n, want, nw);
    free(got);
    em_records_free(r);
    em_records_free(key);
    em_context_stop(ctx);
}

TEST(foreach_and_foreach_partition)
{
    em_context *ctx = ctx_new("local[3]");
    int64_t mult = 3;
    CHECK_OK(em_rdd_foreach(em_range(ctx, 1, 1001, 1, 7), each_add, &mult, sizeof mult));
    CHECK_EQ_INT(atomic_load(&each_sum), 3 * 500500);
    CHECK_EQ_INT(atomic_load(&each_count), 1000);
    CHECK_OK(em_rdd_foreach_partition(em_range(ctx, 0, 100, 1, 6), each_part, NULL, 0));
    CHECK_EQ_INT(atomic_load(&part_calls), 6);
    for (int p = 0; p < 6; p++)
        CHECK_EQ_INT(atomic_load(&part_sizes[p]),
                     (int64_t)(slice_start(100, 6, p + 1) - slice_start(100, 6, p)) + 1);
    em_context_stop(ctx);
}

TEST(save_as_text_file)
{
    em_context *ctx = ctx_new("local[2]");
    char out[1100], path[1200];
    snprintf(out, sizeof out, "%s/out", test_tmpdir());
    em_rdd *src = em_rdd_map(em_range(ctx, 0, 300, 1, 4), to_string, NULL, 0);
    CHECK_OK(em_rdd_save_as_text_file(src, out));
    strlist files = {0};
    CHECK_OK(list_dir(out, &files));
    CHECK_EQ_INT(files.n, 5);
    CHECK_EQ_STR(files.v[0], "_SUCCESS");
    char *all = NULL;
    size_t all_len = 0;
    FILE *m = open_memstream(&all, &all_len);
    for (int p = 0; p < 4; p++) {
        char name[32];
        snprintf(name, sizeof name, "part-%05d", p);
        CHECK_EQ_STR(files.v[p + 1], name);
        snprintf(path, sizeof path, "%s/%s", out, name);
        size_t len;
        char *c = read_file(path, &len);
        fwrite(c, 1, len, m);
        free(c);
    }
    fclose(m);
    char *want = NULL;
    size_t want_len = 0;
    m = open_memstream(&want, &want_len);
    for (int i = 0; i < 300; i++) fprintf(m, "v%d\n", i);
    fclose(m);
    CHECK_EQ_INT(all_len, want_len);
    CHECK(memcmp(all, want, want_len) == 0);
    free(all);
    free(want);

    /* The directory exists now: EM_EEXIST and nothing changes. */
    snprintf(path, sizeof path, "%s/part-00000", out);
    size_t before_len;
    char *before = read_file(path, &before_len);
    em_rdd *other = em_rdd_map(em_range(ctx, 1000, 1100, 1, 2), to_string, NULL, 0);
    CHECK_EQ_INT(em_rdd_save_as_text_file(other, out), EM_EEXIST);
    CHECK(strstr(em_errmsg(), "out"));
    strlist again = {0};
    CHECK_OK(list_dir(out, &again));
    sl_expect(&again, &files, false);
    size_t after_len;
    char *after = read_file(path, &after_len);
    CHECK_EQ_INT(after_len, before_len);
    CHECK(memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
    sl_free(&files);
    sl_free(&again);
    strlist top = {0};
    CHECK_OK(list_dir(test_tmpdir(), &top)); /* no staging left behind */
    for (size_t i = 0; i < top.n; i++) CHECK_MSG(!strstr(top.v[i], "staging"), "%s", top.v[i]);
    sl_free(&top);

    /* Strings with 0x00 and tuples are written as text. */
    em_records *recs = em_records_new();
    em_put_str(recs, "a\0b", 3);
    em_put_tuple_begin(recs);
    em_put_int64(recs, -4);
    em_put_cstr(recs, "x");
    em_put_end(recs);
    snprintf(out, sizeof out, "%s/out2", test_tmpdir());
    CHECK_OK(em_rdd_save_as_text_file(em_parallelize(ctx, recs, 1), out));
    em_records_free(recs);
    snprintf(path, sizeof path, "%s/part-00000", out);
    size_t len;
    char *c = read_file(path, &len);
    CHECK_EQ_INT(len, 11);
    CHECK(memcmp(c, "a\0b\n(-4,x)\n", 11) == 0);
    free(c);
    em_context_stop(ctx);
}

TEST(cache_and_unpersist)
{
    em_context *ctx = ctx_new("local[2]");
    em_rdd *sq = em_rdd_cache(em_rdd_map(em_range(ctx, 0, 400, 1, 4), counting_square, NULL, 0));
    CHECK(sq);
    int64_t c;
    CHECK_OK(em_rdd_count(sq, &c));
    CHECK_EQ_INT(c, 400);
    CHECK_EQ_INT(atomic_load(&calls), 400);
    size_t n;
    int64_t *got = collect_ints(sq, &n);
    CHECK_EQ_INT(atomic_load(&calls), 400); /* served from the cache */
    CHECK_EQ_INT(n, 400);
    for (int i = 0; i < 400; i++) CHECK_EQ_INT(got[i], (int64_t)i * i);
    free(got);
    /* A child of a cached RDD reads the cache too. */
    CHECK_OK(em_rdd_count(em_rdd_filter(sq, is_mult3, NULL, 0), &c));
    CHECK_EQ_INT(atomic_load(&calls), 400);
    em_rdd_unpersist(sq);
    CHECK_OK(em_rdd_count(sq, &c));
    CHECK_EQ_INT(c, 400);
    CHECK_EQ_INT(atomic_load(&calls), 800);
    CHECK_OK(em_rdd_count(sq, &c));
    CHECK_EQ_INT(atomic_load(&calls), 1200); /* not cached any more */
    /* A partial read (take) must not cache a truncated partition. */
    em_rdd *sq2 = em_rdd_cache(em_rdd_map(em_range(ctx, 0, 100, 1, 1), counting_square, NULL, 0));
    em_records *r;
    CHECK_OK(em_rdd_take(sq2, 3, &r));
    em_records_free(r);
    got = collect_ints(sq2, &n);
    CHECK_EQ_INT(n, 100);
    free(got);
    em_context_stop(ctx);
}

/* Every action on an RDD with no partitions and on one with only empty partitions. */
static void all_actions_empty(em_context *ctx, em_rdd *e, int parts)
{
    CHECK(e);
    CHECK_EQ_INT(em_rdd_num_partitions(e), parts);
    em_records *r = (em_records *)1;
    CHECK_OK(em_rdd_collect(e, &r));
    CHECK_EQ_INT(em_records_count(r), 0);
    em_records_free(r);
    int64_t c = -1;
    CHECK_OK(em_rdd_count(e, &c));
    CHECK_EQ_INT(c, 0);
    CHECK_EQ_INT(em_rdd_first(e, &r), EM_EEMPTY);
    CHECK(r == NULL);
    CHECK_OK(em_rdd_take(e, 5, &r));
    CHECK_EQ_INT(em_records_count(r), 0);
    em_records_free(r);
    CHECK_OK(em_rdd_take_ordered(e, 5, &r));
    CHECK_EQ_INT(em_records_count(r), 0);
    em_records_free(r);
    CHECK_OK(em_rdd_top(e, 5, &r));
    CHECK_EQ_INT(em_records_count(r), 0);
    em_records_free(r);
    CHECK_EQ_INT(em_rdd_reduce(e, add, NULL, 0, &r), EM_EEMPTY);
    em_records *z = em_records_new();
    em_put_int64(z, 42);
    CHECK_OK(em_rdd_fold(e, em_records_at(z, 0), max2, NULL, 0, &r));
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), 42);
    em_records_free(r);
    CHECK_OK(em_rdd_aggregate(e, em_records_at(z, 0), add, add, NULL, 0, &r));
    CHECK_EQ_INT(em_records_count(r), 1);
    /* the zero is folded into every partition and once more on the driver (as in Spark) */
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), 42 * (parts + 1));
    em_records_free(r);
    CHECK_OK(em_rdd_count_by_key(e, &r));
    CHECK_EQ_INT(em_records_count(r), 0);
    em_records_free(r);
    CHECK_OK(em_rdd_count_by_value(e, &r));
    CHECK_EQ_INT(em_records_count(r), 0);
    em_records_free(r);
    CHECK_OK(em_rdd_lookup(e, em_records_at(z, 0), &r));
    CHECK_EQ_INT(em_records_count(r), 0);
    em_records_free(r);
    em_records_free(z);
    int64_t one = 1;
    atomic_store(&each_count, 0);
    CHECK_OK(em_rdd_foreach(e, each_add, &one, sizeof one));
    CHECK_EQ_INT(atomic_load(&each_count), 0);
    atomic_store(&part_calls, 0);
    CHECK_OK(em_rdd_foreach_partition(e, each_part, NULL, 0));
    CHECK_EQ_INT(atomic_load(&part_calls), parts);
    char out[1100];
    snprintf(out, sizeof out, "%s/empty-%d", test_tmpdir(), parts);
    CHECK_OK(em_rdd_save_as_text_file(e, out));
    strlist files = {0};
    CHECK_OK(list_dir(out, &files));
    CHECK_EQ_INT(files.n, (size_t)parts + 1);
    CHECK_EQ_STR(files.v[0], "_SUCCESS");
    sl_free(&files);
    /* transformations over it are empty too */
    CHECK_OK(
        em_rdd_count(em_rdd_reduce_by_key(em_rdd_key_by(e, mod5, NULL, 0), add, NULL, 0, 2), &c));
    CHECK_EQ_INT(c, 0);
    CHECK_OK(em_rdd_count(em_rdd_sort_by_key(em_rdd_key_by(e, mod5, NULL, 0), true, 3), &c));
    CHECK_EQ_INT(c, 0);
    CHECK_OK(em_rdd_count(em_rdd_distinct(e, 0), &c));
    CHECK_EQ_INT(c, 0);
    CHECK_OK(em_rdd_count(em_rdd_zip_with_index(e), &c));
    CHECK_EQ_INT(c, 0);
    CHECK_OK(em_rdd_count(em_rdd_repartition(e, 3), &c));
    CHECK_EQ_INT(c, 0);
    em_rdd *k = em_rdd_key_by(e, mod5, NULL, 0);
    em_rdd *other = em_rdd_key_by(em_range(ctx, 0, 10, 1, 2), mod5, NULL, 0);
    CHECK_OK(em_rdd_count(em_rdd_join(k, other, 0), &c));
    CHECK_EQ_INT(c, 0);
    CHECK_OK(em_rdd_count(em_rdd_right_outer_join(k, other, 0), &c));
    CHECK_EQ_INT(c, 10);
    CHECK_OK(em_rdd_collect(em_rdd_glom(e), &r));
    CHECK_EQ_INT(em_records_count(r), parts);
    for (int i = 0; i < parts; i++) CHECK_EQ_INT(em_value_count(em_records_at(r, (size_t)i)), 0);
    em_records_free(r);
}

TEST(empty_rdds_every_action)
{
    em_context *ctx = ctx_new("local[2]");
    char path[1100];
    snprintf(path, sizeof path, "%s/empty.txt", test_tmpdir());
    write_file(path, "", 0);
    em_rdd *none = em_text_file(ctx, path, 0); /* an empty file: no splits */
    CHECK_MSG(none, "%s", em_errmsg());
    all_actions_empty(ctx, none, 0);
    em_records *nothing = em_records_new();
    em_rdd *empties = em_parallelize(ctx, nothing, 3);
    em_records_free(nothing);
    all_actions_empty(ctx, empties, 3);
    all_actions_empty(ctx, em_range(ctx, 10, 10, 1, 4), 4);
    all_actions_empty(ctx, em_rdd_filter(em_range(ctx, 1, 100, 3, 2), is_mult3, NULL, 0), 2);
    em_context_stop(ctx);
}

TEST(many_tiny_tasks)
{
    em_context *ctx = ctx_new("local[3]");
    int64_t c;
    CHECK_OK(em_rdd_count(em_range(ctx, 0, 6000, 1, 2000), &c));
    CHECK_EQ_INT(c, 6000);
    em_records *r;
    CHECK_OK(em_rdd_reduce(em_range(ctx, 0, 6000, 1, 2000), add, NULL, 0, &r));
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), 6000LL * 5999 / 2);
    em_records_free(r);
    em_context_stop(ctx);
}

TEST(cached_partition_read_twice_concurrently)
{
    em_context *ctx = ctx_new("local[3]");
    em_rdd *a = em_rdd_cache(em_rdd_map(em_range(ctx, 0, 3000, 1, 3), counting_square, NULL, 0));
    int64_t c;
    CHECK_OK(em_rdd_count(em_rdd_union(a, a), &c)); /* the same partitions, twice in one job */
    CHECK_EQ_INT(c, 6000);
    long first = atomic_load(&calls);
    CHECK(first >= 3000 && first <= 6000);
    size_t n;
    int64_t *got = collect_ints(a, &n);
    CHECK_EQ_INT(atomic_load(&calls), first); /* cached by then */
    CHECK_EQ_INT(n, 3000);
    for (int i = 0; i < 3000; i++) CHECK_EQ_INT(got[i], (int64_t)i * i);
    free(got);
    em_context_stop(ctx);
}

typedef struct job_thread {
    em_context *ctx;
    int which;
    int64_t result;
    int rc;
} job_thread;

static void *run_job_thread(void *arg)
{
    job_thread *j = arg;
    em_rdd *r = em_rdd_map(em_range(j->ctx, 0, 1000 + j->which, 1, 4 + j->which), square, NULL, 0);
    em_records *out = NULL;
    j->rc = em_rdd_reduce(r, add, NULL, 0, &out);
    if (!j->rc) j->result = em_value_int64(em_records_at(out, 0));
    em_records_free(out);
    return NULL;
}

TEST(actions_from_several_threads)
{
    em_context *ctx = ctx_new("local[2]");
    enum { T = 6 };
    pthread_t th[T];
    job_thread jobs[T];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < T; i++) {
            jobs[i] = (job_thread){ctx, i, 0, -1};
            CHECK_EQ_INT(pthread_create(&th[i], NULL, run_job_thread, &jobs[i]), 0);
        }
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            CHECK_EQ_INT(jobs[i].rc, 0);
            int64_t want = 0;
            for (int64_t x = 0; x < 1000 + i; x++) want += x * x;
            CHECK_EQ_INT(jobs[i].result, want);
        }
    }
    em_context_stop(ctx);
}

/* takeOrdered / top with n = SIZE_MAX ("everything, sorted") must not degrade or overflow. */
TEST(take_ordered_everything)
{
    em_context *ctx = ctx_new("local[2]");
    enum { N = 30000 };
    em_records *r;
    em_rdd *src = em_rdd_map(em_range(ctx, 0, N, 1, 2), scramble, NULL, 0);
    CHECK_OK(em_rdd_take_ordered(src, SIZE_MAX, &r));
    CHECK_EQ_INT(em_records_count(r), N);
    for (size_t i = 0; i < N; i++) CHECK_EQ_INT(em_value_int64(em_records_at(r, i)), (int64_t)i);
    em_records_free(r);
    CHECK_OK(em_rdd_top(src, SIZE_MAX - 1, &r));
    CHECK_EQ_INT(em_records_count(r), N);
    for (size_t i = 0; i < N; i++)
        CHECK_EQ_INT(em_value_int64(em_records_at(r, i)), (int64_t)(N - 1 - i));
    em_records_free(r);
    em_context_stop(ctx);
}
