/* Unit tests of the wide (shuffle) RDD operators, each run on a real local[N] context and
 * compared against a reference computed in plain C in the test (counting arrays, nested loops
 * for joins, qsort), never against the engine's own output.
 *
 * Covered: groupByKey, reduceByKey, foldByKey, aggregateByKey, combineByKey (per-key average),
 * distinct, sortByKey ascending / descending (global order across partitions), sortBy,
 * partitionBy (a key never in two partitions), repartition and coalesce with shuffle (counts,
 * multiset, evenness), join, leftOuterJoin, rightOuterJoin, fullOuterJoin (null where a side
 * is missing), cogroup, subtract (duplicates of a kept), subtractByKey, intersection
 * (distinct); keys of mixed types (null, bools, int64, doubles, strings with 0x00, bytes, nested
 * tuples, lists) through reduce, group, sort and join; stage reuse (a second action over a
 * shuffled RDD does not rerun its map stage); multi-stage chains; a shuffle under a small
 * memory budget.
 * Each TEST runs in its own forked process (tests/test.h), so the atomic counters are fresh.
 */
#include "test.h"
#include "rdd_helpers.h"

#include <ember/ember.h>

#include <stdatomic.h>

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct kv {
    int64_t k, v;
} kv;

static int cmp_kv(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    return x->v < y->v ? -1 : x->v > y->v;
}

/* Collects an RDD of (int64, int64) pairs in partition order. */
static kv *collect_kv(em_rdd *r, size_t *n)
{
    CHECK_MSG(r, "RDD definition failed: %s", em_errmsg());
    em_records *recs = NULL;
    CHECK_OK(em_rdd_collect(r, &recs));
    *n = em_records_count(recs);
    kv *out = calloc(*n + 1, sizeof *out);
    for (size_t i = 0; i < *n; i++) {
        em_value p = em_records_at(recs, i);
        CHECK_MSG(em_value_type(p) == EM_TYPE_TUPLE && em_value_count(p) == 2, "record %zu", i);
        CHECK(em_value_type(em_value_key(p)) == EM_TYPE_INT64);
        CHECK(em_value_type(em_value_val(p)) == EM_TYPE_INT64);
        out[i] = (kv){em_value_int64(em_value_key(p)), em_value_int64(em_value_val(p))};
    }
    em_records_free(recs);
    return out;
}

static void expect_kv_multiset(kv *got, size_t ng, kv *want, size_t nw)
{
    qsort(got, ng, sizeof *got, cmp_kv);
    qsort(want, nw, sizeof *want, cmp_kv);
    CHECK_EQ_INT(ng, nw);
    for (size_t i = 0; i < nw; i++)
        CHECK_MSG(got[i].k == want[i].k && got[i].v == want[i].v,
                  "pair %zu: got (%lld,%lld), want (%lld,%lld)", i, (long long)got[i].k,
                  (long long)got[i].v, (long long)want[i].k, (long long)want[i].v);
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* The ints of a list value (materialised; em_elems also reads a spilled group). */
static int64_t *list_ints(em_value l, size_t *n)
{
    CHECK_EQ_INT(em_value_type(l), EM_TYPE_LIST);
    size_t cap = 16;
    int64_t *v = malloc(cap * sizeof *v);
    *n = 0;
    em_elems it;
    em_elems_init(&it, l);
    em_value x;
    int rc;
    while ((rc = em_elems_next(&it, &x)) == EM_ROW) {
        if (*n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        CHECK_EQ_INT(em_value_type(x), EM_TYPE_INT64);
        v[(*n)++] = em_value_int64(x);
    }
    CHECK_EQ_INT(rc, EM_DONE);
    return v;
}

/* "[a,b,c]" of sorted ints. */
static char *ints_text(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i64);
    char *s = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&s, &len);
    fputc('[', m);
    for (size_t i = 0; i < n; i++) fprintf(m, "%s%lld", i ? "," : "", (long long)v[i]);
    fputc(']', m);
    fclose(m);
    return s;
}

/* Appends "key:[a,b,c]" (sorts vals in place). */
static void add_group_text(strlist *l, int64_t key, int64_t *vals, size_t n)
{
    char *t = ints_text(vals, n);
    sl_addf(l, "%lld:%s", (long long)key, t);
    free(t);
}

/* Collects an RDD of (int64, list of int64) as "key:[sorted values]" lines. */
static strlist collect_groups(em_rdd *g)
{
    em_records *recs;
    CHECK_OK(em_rdd_collect(g, &recs));
    strlist got = {0};
    for (size_t i = 0; i < em_records_count(recs); i++) {
        em_value rec = em_records_at(recs, i);
        size_t n;
        int64_t *vals = list_ints(em_value_val(rec), &n);
        add_group_text(&got, em_value_int64(em_value_key(rec)), vals, n);
        free(vals);
    }
    em_records_free(recs);
    return got;
}

/* ---- user functions ------------------------------------------------------------------------ */

static atomic_long calls;

static int create_sum_count(em_task *t, em_value v, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(v));
    em_put_int64(out, 1);
    em_put_end(out);
    return 0;
}

static int average(em_task *t, em_value c, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_double(out, (double)em_value_int64(em_value_at(c, 0)) /
                           (double)em_value_int64(em_value_at(c, 1)));
    return 0;
}

static int scramble_key(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, (em_value_int64(in) * 7919) % 1000);
    return 0;
}

static int mod_arg(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    int64_t m;
    memcpy(&m, arg, sizeof m);
    em_put_int64(out, em_value_int64(in) % m);
    return 0;
}

/* x -> (x mod 50, x), counting calls */
static int counting_pair(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    atomic_fetch_add(&calls, 1);
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(in) % 50);
    em_put_value(out, in);
    em_put_end(out);
    return 0;
}

/* (k, v) -> (v mod 10, k) */
static int swap_mod10(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(em_value_val(in)) % 10);
    em_put_value(out, em_value_key(in));
    em_put_end(out);
    return 0;
}

/* ---- test data ------------------------------------------------------------------------ */

/* n pseudo-random pairs, keys in [0, nkeys), values in [0, 1000). */
static void make_pairs(uint64_t seed, size_t n, int nkeys, int64_t *k, int64_t *v)
{
    for (size_t i = 0; i < n; i++) {
        k[i] = (int64_t)(lcg(&seed) % (uint64_t)nkeys);
        v[i] = (int64_t)(lcg(&seed) % 1000);
    }
}

/* ---- aggregations -------------------------------------------------------------------------- */

TEST(group_by_key)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    enum { N = 3000, K = 60 };
    static int64_t k[N], v[N];
    make_pairs(1, N, K, k, v);
    em_rdd *pairs = par_pairs(ctx, k, v, N, 5);
    em_rdd *g = em_rdd_group_by_key(pairs, 4);
    CHECK(g);
    CHECK_EQ_INT(em_rdd_num_partitions(g), 4);
    CHECK_EQ_INT(em_rdd_num_partitions(em_rdd_group_by_key(pairs, 0)),
                 em_context_default_parallelism(ctx));
    strlist got = collect_groups(g), want = {0};
    for (int key = 0; key < K; key++) {
        int64_t vals[N];
        size_t n = 0;
        for (int i = 0; i < N; i++)
            if (k[i] == key) vals[n++] = v[i];
        if (n) add_group_text(&want, key, vals, n);
    }
    sl_expect(&got, &want, true);
    sl_free(&got);
    sl_free(&want);
    em_context_stop(ctx);
}

TEST(reduce_fold_aggregate_combine_by_key)
{
    em_context *ctx = ctx_with("local[3]", NULL, NULL);
    enum { N = 4000, K = 97 };
    static int64_t k[N], v[N];
    make_pairs(2, N, K, k, v);
    int64_t sum[K] = {0}, cnt[K] = {0}, mx[K];
    for (int i = 0; i < K; i++) mx[i] = INT64_MIN;
    for (int i = 0; i < N; i++) {
        sum[k[i]] += v[i];
        cnt[k[i]]++;
        if (v[i] > mx[k[i]]) mx[k[i]] = v[i];
    }
    em_rdd *pairs = par_pairs(ctx, k, v, N, 6);

    kv want[K];
    size_t nw = 0;
    for (int i = 0; i < K; i++)
        if (cnt[i]) want[nw++] = (kv){i, sum[i]};
    size_t n;
    kv *got = collect_kv(em_rdd_reduce_by_key(pairs, add, NULL, 0, 5), &n);
    expect_kv_multiset(got, n, want, nw);
    free(got);
    /* one reduce partition, and more reducers than keys */
    got = collect_kv(em_rdd_reduce_by_key(pairs, add, NULL, 0, 1), &n);
    expect_kv_multiset(got, n, want, nw);
    free(got);
    got = collect_kv(em_rdd_reduce_by_key(pairs, add, NULL, 0, 300), &n);
    expect_kv_multiset(got, n, want, nw);
    free(got);

    /* foldByKey(500, max): max(500, max of the key's values), whatever the partitioning */
    em_records *z = em_records_new();
    em_put_int64(z, 500);
    nw = 0;
    for (int i = 0; i < K; i++)
        if (cnt[i]) want[nw++] = (kv){i, mx[i] > 500 ? mx[i] : 500};
    got = collect_kv(em_rdd_fold_by_key(pairs, em_records_at(z, 0), max2, NULL, 0, 4), &n);
    expect_kv_multiset(got, n, want, nw);
    free(got);

    /* aggregateByKey((0,0)) -> (sum, count) */
    em_records_clear(z);
    em_put_tuple_begin(z);
    em_put_int64(z, 0);
    em_put_int64(z, 0);
    em_put_end(z);
    em_records *recs;
    CHECK_OK(em_rdd_collect(em_rdd_aggregate_by_key(pairs, em_records_at(z, 0), seq_sum_count,
                                                    comb_sum_count, NULL, 0, 3),
                            &recs));
    strlist gs = {0}, ws = {0};
    for (size_t i = 0; i < em_records_count(recs); i++)
        sl_push(&gs, format_value(em_records_at(recs, i)));
    em_records_free(recs);
    for (int i = 0; i < K; i++)
        if (cnt[i]) sl_addf(&ws, "(%d,(%lld,%lld))", i, (long long)sum[i], (long long)cnt[i]);
    sl_expect(&gs, &ws, true);
    sl_free(&gs);
    sl_free(&ws);
    em_records_free(z);

    /* combineByKey: per-key average */
    em_rdd *avg = em_rdd_map_values(
        em_rdd_combine_by_key(pairs, create_sum_count, seq_sum_count, comb_sum_count, NULL, 0, 4),
        average, NULL, 0);
    CHECK_OK(em_rdd_collect(avg, &recs));
    bool seen[K] = {false};
    size_t keys = 0;
    for (size_t i = 0; i < em_records_count(recs); i++) {
        em_value p = em_records_at(recs, i);
        int64_t key = em_value_int64(em_value_key(p));
        CHECK(key >= 0 && key < K && !seen[key] && cnt[key]);
        seen[key] = true;
        keys++;
        CHECK_EQ_INT(em_value_type(em_value_val(p)), EM_TYPE_FLOAT64);
        CHECK(em_value_double(em_value_val(p)) == (double)sum[key] / (double)cnt[key]);
    }
    size_t want_keys = 0;
    for (int i = 0; i < K; i++) want_keys += cnt[i] > 0;
    CHECK_EQ_INT(keys, want_keys);
    em_records_free(recs);
    em_context_stop(ctx);
}

TEST(distinct)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    enum { N = 2500 };
    static int64_t in[N];
    uint64_t s = 3;
    for (int i = 0; i < N; i++) in[i] = (int64_t)(lcg(&s) % 400) - 200;
    int64_t want[400];
    size_t nw = 0;
    for (int64_t x = -200; x < 200; x++)
        for (int i = 0; i < N; i++)
            if (in[i] == x) {
                want[nw++] = x;
                break;
            }
    size_t n;
    int64_t *got = collect_ints(em_rdd_distinct(par_ints(ctx, in, N, 7), 3), &n);
    expect_ints_multiset(got, n, want, nw);
    free(got);
    got = collect_ints(em_rdd_distinct(par_ints(ctx, in, N, 7), 0), &n);
    expect_ints_multiset(got, n, want, nw);
    free(got);
    em_context_stop(ctx);
}

/* ---- sorting and partitioning --------------------------------------------------------------- */

static void check_sorted_by_key(em_rdd *sorted, kv *ref, size_t n_ref, bool ascending, int parts)
{
    CHECK_MSG(sorted, "%s", em_errmsg());
    CHECK_EQ_INT(em_rdd_num_partitions(sorted), parts);
    size_t n;
    kv *got = collect_kv(sorted, &n);
    CHECK_EQ_INT(n, n_ref);
    for (size_t i = 1; i < n; i++)
        CHECK_MSG(ascending ? got[i - 1].k <= got[i].k : got[i - 1].k >= got[i].k,
                  "keys out of order at %zu: %lld then %lld", i, (long long)got[i - 1].k,
                  (long long)got[i].k);
    kv *want = malloc(n_ref * sizeof *want);
    memcpy(want, ref, n_ref * sizeof *want);
    expect_kv_multiset(got, n, want, n_ref);
    free(want);
    free(got);
    /* the range partitioner spread the keys over more than one partition */
    em_records *recs;
    CHECK_OK(em_rdd_collect(em_rdd_glom(sorted), &recs));
    int nonempty = 0;
    for (size_t i = 0; i < em_records_count(recs); i++)
        nonempty += em_value_count(em_records_at(recs, i)) > 0;
    CHECK_MSG(parts == 1 || nonempty >= 2, "%d non-empty partitions of %d", nonempty, parts);
    em_records_free(recs);
}

TEST(sort_by_key_and_sort_by)
{
    em_context *ctx = ctx_with("local[3]", NULL, NULL);
    enum { N = 5000 };
    static int64_t k[N], v[N];
    static kv ref[N];
    make_pairs(4, N, 100000, k, v);
    for (int i = 0; i < N; i++) {
        k[i] -= 50000; /* negative keys too */
        v[i] = i;
        ref[i] = (kv){k[i], v[i]};
    }
    em_rdd *pairs = par_pairs(ctx, k, v, N, 6);
    check_sorted_by_key(em_rdd_sort_by_key(pairs, true, 4), ref, N, true, 4);
    check_sorted_by_key(em_rdd_sort_by_key(pairs, false, 5), ref, N, false, 5);
    check_sorted_by_key(em_rdd_sort_by_key(pairs, true, 1), ref, N, true, 1);
    check_sorted_by_key(em_rdd_sort_by_key(pairs, true, 0), ref, N, true, 6);
    /* many duplicates: 7 distinct keys over 8 partitions */
    int64_t m = 7;
    em_rdd *dup = em_rdd_key_by(em_range(ctx, 0, 2000, 1, 4), mod_arg, &m, sizeof m);
    static kv dref[2000];
    for (int i = 0; i < 2000; i++) dref[i] = (kv){i % 7, i};
    check_sorted_by_key(em_rdd_sort_by_key(dup, false, 8), dref, 2000, false, 8);

    /* sortBy: the values are the elements, ordered by the key function */
    em_rdd *src = em_range(ctx, 0, 3000, 1, 5);
    for (int asc = 0; asc < 2; asc++) {
        size_t n;
        int64_t *got = collect_ints(em_rdd_sort_by(src, scramble_key, NULL, 0, asc, 3), &n);
        CHECK_EQ_INT(n, 3000);
        for (size_t i = 1; i < n; i++) {
            int64_t a = (got[i - 1] * 7919) % 1000, b = (got[i] * 7919) % 1000;
            CHECK(asc ? a <= b : a >= b);
        }
        int64_t want[3000];
        for (int i = 0; i < 3000; i++) want[i] = i;
        expect_ints_multiset(got, n, want, 3000);
        free(got);
    }
    em_context_stop(ctx);
}

TEST(partition_by)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    enum { N = 3000 };
    static int64_t k[N], v[N];
    static kv ref[N];
    make_pairs(5, N, 200, k, v);
    for (int i = 0; i < N; i++) ref[i] = (kv){k[i], v[i]};
    em_rdd *pairs = par_pairs(ctx, k, v, N, 3);
    em_partitioner *hp = em_hash_partitioner(ctx, 5);
    em_rdd *parted = em_rdd_partition_by(pairs, hp);
    CHECK(parted);
    CHECK_EQ_INT(em_rdd_num_partitions(parted), 5);
    /* partitioning an RDD again by an equal partitioner is a no-op */
    CHECK_EQ_INT(em_rdd_id(em_rdd_partition_by(parted, em_hash_partitioner(ctx, 5))),
                 em_rdd_id(parted));
    em_records *recs;
    CHECK_OK(em_rdd_collect(em_rdd_glom(parted), &recs));
    CHECK_EQ_INT(em_records_count(recs), 5);
    int where[200];
    for (int i = 0; i < 200; i++) where[i] = -1;
    kv *got = malloc(N * sizeof *got);
    size_t n = 0;
    for (int p = 0; p < 5; p++) {
        em_value l = em_records_at(recs, (size_t)p);
        em_elems it;
        em_elems_init(&it, l);
        em_value x;
        while (em_elems_next(&it, &x) == EM_ROW) {
            int64_t key = em_value_int64(em_value_key(x));
            CHECK(key >= 0 && key < 200);
            CHECK_MSG(where[key] == -1 || where[key] == p, "key %lld in partitions %d and %d",
                      (long long)key, where[key], p);
            where[key] = p;
            CHECK(n < N);
            got[n++] = (kv){key, em_value_int64(em_value_val(x))};
        }
    }
    em_records_free(recs);
    expect_kv_multiset(got, n, ref, N);
    free(got);
    /* a reduceByKey with the same partitioning keeps it: the same key placement */
    em_rdd *red = em_rdd_reduce_by_key(parted, add, NULL, 0, 5);
    CHECK_OK(em_rdd_collect(em_rdd_glom(red), &recs));
    for (int p = 0; p < 5; p++) {
        em_elems it;
        em_elems_init(&it, em_records_at(recs, (size_t)p));
        em_value x;
        while (em_elems_next(&it, &x) == EM_ROW)
            CHECK_EQ_INT(where[em_value_int64(em_value_key(x))], p);
    }
    em_records_free(recs);
    em_context_stop(ctx);
}

TEST(repartition_and_coalesce_with_shuffle)
{
    em_context *ctx = ctx_with("local[3]", NULL, NULL);
    em_rdd *src = em_range(ctx, 0, 1000, 1, 4);
    int64_t want[1000];
    for (int i = 0; i < 1000; i++) want[i] = i;
    int targets[] = {7, 3, 1, 12};
    for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
        int np = targets[t];
        em_rdd *r = t % 2 ? em_rdd_coalesce(src, np, true) : em_rdd_repartition(src, np);
        CHECK(r);
        CHECK_EQ_INT(em_rdd_num_partitions(r), np);
        size_t n;
        int64_t *got = collect_ints(r, &n);
        int64_t w[1000];
        memcpy(w, want, sizeof w);
        expect_ints_multiset(got, n, w, 1000);
        free(got);
        /* evenly spread: each of the 4 parents deals its 250 records round robin */
        em_records *recs;
        CHECK_OK(em_rdd_collect(em_rdd_glom(r), &recs));
        CHECK_EQ_INT(em_records_count(recs), np);
        for (int p = 0; p < np; p++) {
            size_t m = em_value_count(em_records_at(recs, (size_t)p));
            CHECK_MSG(m + 4 >= 1000 / (size_t)np && m <= 1000 / (size_t)np + 4,
                      "partition %d of %d holds %zu", p, np, m);
        }
        em_records_free(recs);
        int64_t c;
        CHECK_OK(em_rdd_count(r, &c));
        CHECK_EQ_INT(c, 1000);
    }
    em_context_stop(ctx);
}

/* ---- joins and set operations ------------------------------------------------------------- */

enum { JA = 150, JB = 120 };
static int64_t ak[JA], av[JA], bk[JB], bv[JB];

static void join_data(void)
{
    for (int i = 0; i < JA; i++) ak[i] = (i * 7) % 40, av[i] = i;
    for (int i = 0; i < JB; i++) bk[i] = 20 + (i * 11) % 40, bv[i] = 1000 + i;
}

static void ref_join(strlist *want, bool left_outer, bool right_outer)
{
    for (int i = 0; i < JA; i++) {
        bool matched = false;
        for (int j = 0; j < JB; j++)
            if (ak[i] == bk[j]) {
                sl_addf(want, "(%lld,(%lld,%lld))", (long long)ak[i], (long long)av[i],
                        (long long)bv[j]);
                matched = true;
            }
        if (!matched && left_outer)
            sl_addf(want, "(%lld,(%lld,null))", (long long)ak[i], (long long)av[i]);
    }
    if (!right_outer) return;
    for (int j = 0; j < JB; j++) {
        bool matched = false;
        for (int i = 0; i < JA; i++) matched |= ak[i] == bk[j];
        if (!matched) sl_addf(want, "(%lld,(null,%lld))", (long long)bk[j], (long long)bv[j]);
    }
}

TEST(joins)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    join_data();
    em_rdd *a = par_pairs(ctx, ak, av, JA, 3), *b = par_pairs(ctx, bk, bv, JB, 4);
    struct {
        em_rdd *r;
        bool l, rt;
    } cases[] = {
        {em_rdd_join(a, b, 0), false, false},
        {em_rdd_left_outer_join(a, b, 3), true, false},
        {em_rdd_right_outer_join(a, b, 5), false, true},
        {em_rdd_full_outer_join(a, b, 1), true, true},
    };
    for (size_t c = 0; c < 4; c++) {
        strlist got = collect_text(cases[c].r), want = {0};
        ref_join(&want, cases[c].l, cases[c].rt);
        CHECK(want.n > 0);
        sl_expect(&got, &want, true);
        sl_free(&got);
        sl_free(&want);
    }
    /* a join of co-partitioned inputs, and of an RDD with itself */
    em_partitioner *hp = em_hash_partitioner(ctx, 4);
    strlist got =
        collect_text(em_rdd_join(em_rdd_partition_by(a, hp), em_rdd_partition_by(b, hp), 4));
    strlist want = {0};
    ref_join(&want, false, false);
    sl_expect(&got, &want, true);
    sl_free(&got);
    sl_free(&want);
    got = collect_text(em_rdd_join(a, a, 2));
    for (int i = 0; i < JA; i++)
        for (int j = 0; j < JA; j++)
            if (ak[i] == ak[j])
                sl_addf(&want, "(%lld,(%lld,%lld))", (long long)ak[i], (long long)av[i],
                        (long long)av[j]);
    sl_expect(&got, &want, true);
    sl_free(&got);
    sl_free(&want);
    em_context_stop(ctx);
}

TEST(cogroup)
{
    em_context *ctx = ctx_with("local[3]", NULL, NULL);
    join_data();
    em_rdd *a = par_pairs(ctx, ak, av, JA, 3), *b = par_pairs(ctx, bk, bv, JB, 2);
    em_records *recs;
    CHECK_OK(em_rdd_collect(em_rdd_cogroup(a, b, 4), &recs));
    strlist got = {0}, want = {0};
    for (size_t i = 0; i < em_records_count(recs); i++) {
        em_value rec = em_records_at(recs, i);
        em_value lists = em_value_val(rec);
        CHECK_EQ_INT(em_value_count(lists), 2);
        size_t na, nb;
        int64_t *va = list_ints(em_value_at(lists, 0), &na),
                *vb = list_ints(em_value_at(lists, 1), &nb);
        char *ta = ints_text(va, na), *tb = ints_text(vb, nb);
        sl_addf(&got, "%lld:%s:%s", (long long)em_value_int64(em_value_key(rec)), ta, tb);
        free(ta), free(tb), free(va), free(vb);
    }
    em_records_free(recs);
    for (int64_t key = 0; key < 60; key++) {
        int64_t va[JA], vb[JB];
        size_t na = 0, nb = 0;
        for (int i = 0; i < JA; i++)
            if (ak[i] == key) va[na++] = av[i];
        for (int j = 0; j < JB; j++)
            if (bk[j] == key) vb[nb++] = bv[j];
        if (!na && !nb) continue;
        char *ta = ints_text(va, na), *tb = ints_text(vb, nb);
        sl_addf(&want, "%lld:%s:%s", (long long)key, ta, tb);
        free(ta), free(tb);
    }
    sl_expect(&got, &want, true);
    sl_free(&got);
    sl_free(&want);
    em_context_stop(ctx);
}

TEST(subtract_and_intersection)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    int64_t a[300], b[40], c[100];
    for (int i = 0; i < 300; i++) a[i] = i % 50;
    for (int i = 0; i < 20; i++) b[i] = 10 + i;
    for (int i = 20; i < 40; i++) b[i] = 100 + i; /* not in a */
    for (int i = 0; i < 100; i++) c[i] = (i * 3) % 70;
    em_rdd *ra = par_ints(ctx, a, 300, 4), *rb = par_ints(ctx, b, 40, 3),
           *rc = par_ints(ctx, c, 100, 2);

    int64_t want[300];
    size_t nw = 0;
    for (int i = 0; i < 300; i++) {
        bool in_b = false;
        for (int j = 0; j < 40; j++) in_b |= a[i] == b[j];
        if (!in_b) want[nw++] = a[i];
    }
    size_t n;
    int64_t *got = collect_ints(em_rdd_subtract(ra, rb, 0), &n);
    CHECK_EQ_INT(nw, 180); /* 30 values, 6 copies each */
    expect_ints_multiset(got, n, want, nw);
    free(got);
    CHECK_EQ_INT(em_rdd_num_partitions(em_rdd_subtract(ra, rb, 0)), 4);

    nw = 0;
    for (int i = 0; i < 300; i++) {
        bool in_c = false, dup = false;
        for (int j = 0; j < 100; j++) in_c |= a[i] == c[j];
        for (size_t j = 0; j < nw; j++) dup |= want[j] == a[i];
        if (in_c && !dup) want[nw++] = a[i];
    }
    got = collect_ints(em_rdd_intersection(ra, rc, 3), &n);
    expect_ints_multiset(got, n, want, nw);
    free(got);
    got = collect_ints(em_rdd_intersection(ra, ra, 0), &n); /* distinct */
    nw = 0;
    for (int i = 0; i < 50; i++) want[nw++] = i;
    expect_ints_multiset(got, n, want, nw);
    free(got);

    /* subtractByKey */
    static int64_t pk[300], pv[300], qk[10], qv[10];
    for (int i = 0; i < 300; i++) pk[i] = i % 30, pv[i] = i;
    for (int i = 0; i < 10; i++) qk[i] = i * 3, qv[i] = -1;
    kv kwant[300];
    nw = 0;
    for (int i = 0; i < 300; i++) {
        bool in_q = false;
        for (int j = 0; j < 10; j++) in_q |= pk[i] == qk[j];
        if (!in_q) kwant[nw++] = (kv){pk[i], pv[i]};
    }
    kv *kgot = collect_kv(
        em_rdd_subtract_by_key(par_pairs(ctx, pk, pv, 300, 3), par_pairs(ctx, qk, qv, 10, 2), 2),
        &n);
    expect_kv_multiset(kgot, n, kwant, nw);
    free(kgot);
    em_context_stop(ctx);
}

/* ---- mixed key types --------------------------------------------------------------------------
 */

enum { NKEYS = 16 };

/* Keys in their ascending encoded order (record.h: null < bool < int64 < float64 < string <
 * bytes < tuple < list; strings by bytes with a prefix first). */
static em_records *mixed_keys(void)
{
    em_records *r = em_records_new();
    em_put_null(r);
    em_put_bool(r, false);
    em_put_bool(r, true);
    em_put_int64(r, INT64_MIN);
    em_put_int64(r, -7);
    em_put_int64(r, 7);
    em_put_double(r, -3.0);
    em_put_double(r, 1.5);
    em_put_double(r, 2.25);
    em_put_str(r, "a", 1);
    em_put_str(r, "a\0b", 3);
    em_put_str(r, "a\0c", 3);
    em_put_bytes(r, "\x00\xff", 2);
    em_put_tuple_begin(r);
    em_put_int64(r, 1);
    em_put_str(r, "x\0", 2);
    em_put_end(r);
    em_put_tuple_begin(r);
    em_put_int64(r, 1);
    em_put_str(r, "y", 1);
    em_put_end(r);
    em_put_list_begin(r);
    em_put_int64(r, 1);
    em_put_list_begin(r);
    em_put_end(r);
    em_put_end(r);
    CHECK_OK(em_records_error(r));
    CHECK_EQ_INT(em_records_count(r), NKEYS);
    return r;
}

static int key_index(em_records *keys, em_value k)
{
    for (int i = 0; i < NKEYS; i++)
        if (em_value_eq(em_records_at(keys, (size_t)i), k)) return i;
    char buf[100];
    em_value_format(k, buf, sizeof buf);
    CHECK_MSG(0, "unexpected key %s", buf);
    return -1;
}

TEST(mixed_type_keys)
{
    em_context *ctx = ctx_with("local[3]", NULL, NULL);
    em_records *keys = mixed_keys();
    /* key j appears j%3+2 times, with values j*10+r, in a scrambled order */
    em_records *data = em_records_new();
    int64_t sum[NKEYS] = {0}, cnt[NKEYS] = {0};
    int order[NKEYS];
    for (int i = 0; i < NKEYS; i++) order[i] = (i * 7) % NKEYS;
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < NKEYS; i++) {
            int j = order[i];
            if (r >= j % 3 + 2) continue;
            em_put_tuple_begin(data);
            em_put_value(data, em_records_at(keys, (size_t)j));
            em_put_int64(data, j * 10 + r);
            em_put_end(data);
            sum[j] += j * 10 + r;
            cnt[j]++;
        }
    CHECK_OK(em_records_error(data));
    em_rdd *pairs = em_parallelize(ctx, data, 4);
    em_records_free(data);
    int64_t total = 0;
    for (int j = 0; j < NKEYS; j++) total += cnt[j];

    em_records *out;
    CHECK_OK(em_rdd_collect(em_rdd_reduce_by_key(pairs, add, NULL, 0, 3), &out));
    CHECK_EQ_INT(em_records_count(out), NKEYS);
    bool seen[NKEYS] = {false};
    for (size_t i = 0; i < NKEYS; i++) {
        em_value p = em_records_at(out, i);
        int j = key_index(keys, em_value_key(p));
        CHECK(!seen[j]);
        seen[j] = true;
        CHECK_EQ_INT(em_value_int64(em_value_val(p)), sum[j]);
    }
    em_records_free(out);

    CHECK_OK(em_rdd_collect(em_rdd_group_by_key(pairs, 2), &out));
    CHECK_EQ_INT(em_records_count(out), NKEYS);
    for (size_t i = 0; i < NKEYS; i++) {
        em_value p = em_records_at(out, i);
        int j = key_index(keys, em_value_key(p));
        CHECK_EQ_INT(em_value_count(em_value_val(p)), cnt[j]);
    }
    em_records_free(out);

    for (int asc = 0; asc < 2; asc++) {
        CHECK_OK(em_rdd_collect(em_rdd_sort_by_key(pairs, asc, 3), &out));
        CHECK_EQ_INT(em_records_count(out), total);
        /* expected key sequence: every key cnt times, in order */
        size_t pos = 0;
        for (int s = 0; s < NKEYS; s++) {
            int j = asc ? s : NKEYS - 1 - s;
            for (int64_t c = 0; c < cnt[j]; c++, pos++) {
                int got = key_index(keys, em_value_key(em_records_at(out, pos)));
                CHECK_MSG(got == j, "sorted position %zu: key #%d, want #%d", pos, got, j);
            }
        }
        em_records_free(out);
    }

    /* a self join: cnt^2 pairs per key */
    CHECK_OK(em_rdd_collect(em_rdd_join(pairs, pairs, 2), &out));
    int64_t per[NKEYS] = {0}, want_total = 0;
    for (size_t i = 0; i < em_records_count(out); i++)
        per[key_index(keys, em_value_key(em_records_at(out, i)))]++;
    for (int j = 0; j < NKEYS; j++) {
        CHECK_EQ_INT(per[j], cnt[j] * cnt[j]);
        want_total += cnt[j] * cnt[j];
    }
    CHECK_EQ_INT(em_records_count(out), want_total);
    em_records_free(out);

    /* distinct over the keys themselves (each listed twice) */
    em_records *twice = em_records_new();
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < NKEYS; j++) em_put_value(twice, em_records_at(keys, (size_t)j));
    CHECK_OK(em_rdd_collect(em_rdd_distinct(em_parallelize(ctx, twice, 3), 2), &out));
    em_records_free(twice);
    CHECK_EQ_INT(em_records_count(out), NKEYS);
    bool seen2[NKEYS] = {false};
    for (size_t i = 0; i < NKEYS; i++) {
        int j = key_index(keys, em_records_at(out, i));
        CHECK(!seen2[j]);
        seen2[j] = true;
    }
    em_records_free(out);
    em_records_free(keys);
    em_context_stop(ctx);
}

/* ---- stages ---------------------------------------------------------------------------------- */

TEST(stage_reuse)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    em_rdd *pairs = em_rdd_map(em_range(ctx, 0, 1000, 1, 4), counting_pair, NULL, 0);
    em_rdd *red = em_rdd_reduce_by_key(pairs, add, NULL, 0, 3);
    kv want[50];
    for (int k = 0; k < 50; k++) {
        want[k] = (kv){k, 0};
        for (int i = k; i < 1000; i += 50) want[k].v += i;
    }
    size_t n;
    kv *got = collect_kv(red, &n);
    CHECK_EQ_INT(atomic_load(&calls), 1000);
    expect_kv_multiset(got, n, want, 50);
    free(got);
    int64_t c;
    CHECK_OK(em_rdd_count(red, &c));
    CHECK_EQ_INT(c, 50);
    CHECK_EQ_INT(atomic_load(&calls), 1000); /* the map stage was not run again */
    got = collect_kv(em_rdd_map_values(red, times10, NULL, 0), &n);
    CHECK_EQ_INT(n, 50);
    free(got);
    CHECK_OK(em_rdd_count(em_rdd_sort_by_key(red, false, 2), &c));
    CHECK_EQ_INT(c, 50);
    CHECK_OK(em_rdd_count(em_rdd_join(red, red, 2), &c));
    CHECK_EQ_INT(c, 50);
    CHECK_EQ_INT(atomic_load(&calls), 1000);
    /* a new shuffle over the same pairs does run them again */
    CHECK_OK(em_rdd_count(em_rdd_group_by_key(pairs, 2), &c));
    CHECK_EQ_INT(c, 50);
    CHECK_EQ_INT(atomic_load(&calls), 2000);
    em_context_stop(ctx);
}

TEST(multi_stage_chain)
{
    em_context *ctx = ctx_with("local[3]", NULL, NULL);
    /* x in 0..4999 -> (x%97, x) -> sum per key -> (sum%10, key) -> group */
    int64_t m = 97;
    em_rdd *keyed = em_rdd_key_by(em_range(ctx, 0, 5000, 1, 5), mod_arg, &m, sizeof m);
    em_rdd *sums = em_rdd_reduce_by_key(keyed, add, NULL, 0, 4);
    em_rdd *g = em_rdd_group_by_key(em_rdd_map(sums, swap_mod10, NULL, 0), 3);
    /* keyBy gives (x%97, x): reduceByKey sums the x of each key */
    int64_t s[97] = {0};
    for (int x = 0; x < 5000; x++) s[x % 97] += x;
    strlist got = collect_groups(g), want = {0};
    for (int d = 0; d < 10; d++) {
        int64_t ks[97];
        size_t n = 0;
        for (int k = 0; k < 97; k++)
            if (s[k] % 10 == d) ks[n++] = k;
        if (n) add_group_text(&want, d, ks, n);
    }
    sl_expect(&got, &want, true);
    sl_free(&got);
    sl_free(&want);
    em_context_stop(ctx);
}

static void shuffle_with_memory(const char *mem)
{
    em_context *ctx = ctx_with("local[2]", "ember.executor.memory", mem);
    enum { N = 200000, K = 50 };
    int64_t m = K;
    em_rdd *pairs = em_rdd_key_by(em_range(ctx, 0, N, 1, 4), mod_arg, &m, sizeof m);
    em_records *recs;
    CHECK_OK(em_rdd_collect(em_rdd_group_by_key(pairs, 3), &recs));
    CHECK_EQ_INT(em_records_count(recs), K);
    for (size_t i = 0; i < K; i++) {
        em_value rec = em_records_at(recs, i);
        int64_t key = em_value_int64(em_value_key(rec));
        size_t n;
        int64_t *vals = list_ints(em_value_val(rec), &n);
        CHECK_EQ_INT(n, N / K);
        qsort(vals, n, sizeof *vals, cmp_i64);
        for (size_t j = 0; j < n; j++) CHECK_EQ_INT(vals[j], key + (int64_t)j * K);
        free(vals);
    }
    em_records_free(recs);
    size_t n;
    kv *got = collect_kv(em_rdd_sort_by_key(em_rdd_map(pairs, swap_mod10, NULL, 0), true, 4), &n);
    CHECK_EQ_INT(n, N);
    for (size_t i = 1; i < n; i++) CHECK(got[i - 1].k <= got[i].k);
    int64_t per[10] = {0};
    for (size_t i = 0; i < n; i++) per[got[i].k]++;
    for (int d = 0; d < 10; d++) CHECK_EQ_INT(per[d], N / 10);
    free(got);
    em_context_stop(ctx);
}

/* A few MiB of executor memory: the sorter and the grouping reader must spill. */
TEST(shuffle_under_small_memory)
{
    shuffle_with_memory("8m");
}

/* The smallest budgets the configuration accepts must still work (by spilling). */
TEST(shuffle_under_tiny_memory)
{
    shuffle_with_memory("2m");
}

TEST(take_and_zip_over_sorted_shuffle)
{
    em_context *ctx = ctx_with("local[3]", NULL, NULL);
    enum { N = 2000 };
    static int64_t k[N], v[N], sk[N];
    make_pairs(8, N, 100000, k, v);
    memcpy(sk, k, sizeof sk);
    qsort(sk, N, sizeof *sk, cmp_i64);
    em_rdd *pairs = par_pairs(ctx, k, v, N, 5);
    em_rdd *sorted = em_rdd_keys(em_rdd_sort_by_key(pairs, true, 6));
    /* lookup on range-partitioned output reads only the key's partition: same answers */
    em_rdd *desc = em_rdd_sort_by_key(pairs, false, 8);
    em_records *key = em_records_new();
    for (int i = 0; i < N; i += 97) {
        em_records_clear(key);
        em_put_int64(key, k[i]);
        em_records *vals;
        CHECK_OK(em_rdd_lookup(desc, em_records_at(key, 0), &vals));
        size_t nv;
        int64_t *gv = ints_of(vals, &nv), wv[N];
        size_t nw = 0;
        for (int j = 0; j < N; j++)
            if (k[j] == k[i]) wv[nw++] = v[j];
        expect_ints_multiset(gv, nv, wv, nw);
        free(gv);
        em_records_free(vals);
    }
    em_records_free(key);
    em_records *r;
    CHECK_OK(em_rdd_take(sorted, 25, &r));
    size_t n;
    int64_t *got = ints_of(r, &n);
    expect_ints(got, n, sk, 25);
    free(got);
    em_records_free(r);
    CHECK_OK(em_rdd_first(sorted, &r));
    CHECK_EQ_INT(em_value_int64(em_records_at(r, 0)), sk[0]);
    em_records_free(r);
    CHECK_OK(em_rdd_collect(em_rdd_zip_with_index(sorted), &r));
    CHECK_EQ_INT(em_records_count(r), N);
    for (size_t i = 0; i < N; i++) {
        em_value p = em_records_at(r, i);
        CHECK_EQ_INT(em_value_int64(em_value_key(p)), sk[i]);
        CHECK_EQ_INT(em_value_int64(em_value_val(p)), (int64_t)i);
    }
    em_records_free(r);
    em_context_stop(ctx);
}

TEST(cached_shuffled_rdd)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    em_rdd *pairs = em_rdd_map(em_range(ctx, 0, 1000, 1, 4), counting_pair, NULL, 0);
    em_rdd *red = em_rdd_cache(em_rdd_reduce_by_key(pairs, add, NULL, 0, 3));
    size_t n;
    kv *a = collect_kv(red, &n), *b;
    CHECK_EQ_INT(n, 50);
    size_t m;
    b = collect_kv(red, &m);
    expect_kv_multiset(a, n, b, m);
    for (size_t i = 0; i < n; i++) {
        int64_t want = 0;
        for (int x = (int)a[i].k; x < 1000; x += 50) want += x;
        CHECK_EQ_INT(a[i].v, want);
    }
    free(a);
    free(b);
    CHECK_EQ_INT(atomic_load(&calls), 1000);
    em_rdd_unpersist(red);
    int64_t c;
    CHECK_OK(em_rdd_count(red, &c));
    CHECK_EQ_INT(c, 50);
    em_context_stop(ctx);
}
