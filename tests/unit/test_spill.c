/* Bounded memory end to end: reduceByKey, groupByKey (with one key holding most records) and
 * sortByKey over about ten times ember.executor.memory complete on local[2] with the right
 * answer, and the process's peak RSS stays near the budget (checked outside sanitizer builds,
 * whose shadow memory and quarantine inflate RSS). References are computed arithmetically from
 * the generating formula, not by Ember. */
#include "test.h"

#include <ember/ember.h>

#define BUDGET_MB 16
#define RECORDS   1500000 /* ~110 bytes each: ~165 MB, about 10x the budget */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CHECK_RSS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_RSS 0
#endif
#endif
#ifndef CHECK_RSS
#define CHECK_RSS 1
#endif

static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static void check_rss(const char *what)
{
    long kb = peak_rss_kb();
    long limit_kb = (long)(1.5 * BUDGET_MB * 1024) + 16 * 1024;
    printf("%s: peak RSS %ld KiB (budget %d MiB, bound %ld KiB)\n", what, kb, BUDGET_MB, limit_kb);
    if (CHECK_RSS) CHECK_MSG(kb <= limit_kb, "peak RSS %ld KiB above %ld KiB", kb, limit_kb);
}

static em_context *start(void)
{
    em_conf *conf = em_conf_new();
    char mem[32];
    snprintf(mem, sizeof mem, "%dm", BUDGET_MB);
    CHECK_OK(em_conf_set(conf, "ember.executor.memory", mem));
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    em_context *ctx;
    CHECK_OK(em_context_create("local[2]", "spill", conf, &ctx));
    em_conf_free(conf);
    return ctx;
}

/* A 96-byte payload string derived from x. */
static void payload(int64_t x, char out[96])
{
    uint64_t h = (uint64_t)x * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 96; i++) {
        out[i] = (char)('a' + (h % 26));
        h = h * 6364136223846793005ull + 1442695040888963407ull;
    }
}

/* x -> (key(x), payload) with key = x mod keys (arg), or "huge" for 90% of x when keys == 0. */
static int make_pair(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    int64_t keys = *(const int64_t *)arg;
    int64_t x = em_value_int64(in);
    char p[96];
    payload(x, p);
    em_put_tuple_begin(out);
    if (keys > 0)
        em_put_int64(out, x % keys);
    else if (x % 10 != 0)
        em_put_cstr(out, "huge");
    else
        em_put_int64(out, x);
    em_put_str(out, p, sizeof p);
    em_put_end(out);
    return 0;
}

/* Keeps the smaller payload: a deterministic, associative and commutative reduce. */
static int min_payload(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    em_put_value(out, em_value_cmp(a, b) <= 0 ? a : b);
    return 0;
}

TEST(reduce_by_key_ten_times_budget)
{
    em_context *ctx = start();
    int64_t keys = RECORDS / 3;
    em_rdd *pairs = em_rdd_map(em_range(ctx, 0, RECORDS, 1, 8), make_pair, &keys, sizeof keys);
    em_rdd *reduced = em_rdd_reduce_by_key(pairs, min_payload, NULL, 0, 8);
    int64_t n;
    CHECK_OK(em_rdd_count(reduced, &n));
    CHECK_EQ_INT(n, keys);
    /* Spot-check one key against the formula: the smallest payload among its 3 records. */
    em_value k = {(const uint8_t *)"\x04\x80\x00\x00\x00\x00\x00\x00\x07", 9, NULL};
    em_records *vals;
    CHECK_OK(em_rdd_lookup(reduced, k, &vals));
    CHECK_EQ_INT(em_records_count(vals), 1);
    char best[96], p[96];
    payload(7, best);
    for (int64_t x = 7 + keys; x < RECORDS; x += keys) {
        payload(x, p);
        if (memcmp(p, best, 96) < 0) memcpy(best, p, 96);
    }
    size_t len;
    const char *got = em_value_str(em_records_at(vals, 0), &len);
    CHECK(len == 96 && memcmp(got, best, 96) == 0);
    em_records_free(vals);
    check_rss("reduceByKey");
    em_context_stop(ctx);
}

/* (k, [v...]) -> (k, number of values), iterating the group (possibly on disk). */
static int group_size(em_task *t, em_value group, em_records *out, const void *arg)
{
    (void)arg;
    em_elems it;
    em_elems_init(&it, group);
    em_value v;
    int64_t n = 0;
    int rc;
    while ((rc = em_elems_next(&it, &v)) == EM_ROW) {
        size_t len;
        if (!em_value_str(v, &len) || len != 96) return em_task_fail(t, "bad grouped value");
        n++;
    }
    if (rc < 0) return rc;
    em_put_int64(out, n);
    return 0;
}

static int is_huge(em_task *t, em_value kv, const void *arg)
{
    (void)t;
    (void)arg;
    return em_value_type(em_value_key(kv)) == EM_TYPE_STRING;
}

TEST(group_by_key_one_huge_key)
{
    em_context *ctx = start();
    int64_t keys = 0;
    em_rdd *pairs = em_rdd_map(em_range(ctx, 0, RECORDS, 1, 8), make_pair, &keys, sizeof keys);
    em_rdd *sizes = em_rdd_map_values(em_rdd_group_by_key(pairs, 4), group_size, NULL, 0);
    int64_t groups;
    CHECK_OK(em_rdd_count(sizes, &groups));
    CHECK_EQ_INT(groups, RECORDS / 10 + 1);
    em_records *huge;
    CHECK_OK(em_rdd_collect(em_rdd_filter(sizes, is_huge, NULL, 0), &huge));
    CHECK_EQ_INT(em_records_count(huge), 1);
    CHECK_EQ_INT(em_value_int64(em_value_val(em_records_at(huge, 0))), RECORDS - RECORDS / 10);
    em_records_free(huge);
    check_rss("groupByKey");
    em_context_stop(ctx);
}

/* Per partition: (count, first key, last key, sorted?) — to check the global order. */
static int summarize(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    em_records *first = em_records_new(), *prev = em_records_new();
    int64_t n = 0, sorted = 1;
    em_value v;
    int rc;
    while ((rc = em_iter_next(in, &v)) == EM_ROW) {
        em_value k = em_value_key(v);
        if (n == 0)
            em_put_value(first, k);
        else if (em_value_cmp(em_records_at(prev, 0), k) > 0)
            sorted = 0;
        em_records_clear(prev);
        em_put_value(prev, k);
        n++;
    }
    if (rc < 0) return rc;
    em_put_tuple_begin(out);
    em_put_int64(out, n);
    em_put_int64(out, sorted);
    if (n) {
        em_put_value(out, em_records_at(first, 0));
        em_put_value(out, em_records_at(prev, 0));
    }
    em_put_end(out);
    em_records_free(first);
    em_records_free(prev);
    return 0;
}

static int payload_key(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    char p[96];
    payload(em_value_int64(in), p);
    em_put_tuple_begin(out);
    em_put_str(out, p, 16);
    em_put_str(out, p + 16, 80);
    em_put_end(out);
    return 0;
}

TEST(sort_by_key_ten_times_budget)
{
    em_context *ctx = start();
    em_rdd *pairs = em_rdd_map(em_range(ctx, 0, RECORDS, 1, 8), payload_key, NULL, 0);
    em_records *parts;
    CHECK_OK(em_rdd_collect(
        em_rdd_map_partitions(em_rdd_sort_by_key(pairs, true, 6), summarize, NULL, 0), &parts));
    CHECK_EQ_INT(em_records_count(parts), 6);
    int64_t total = 0;
    em_value last = {0};
    for (size_t i = 0; i < 6; i++) {
        em_value s = em_records_at(parts, i);
        int64_t n = em_value_int64(em_value_at(s, 0));
        total += n;
        CHECK_MSG(em_value_int64(em_value_at(s, 1)) == 1, "partition %zu not sorted", i);
        if (!n) continue;
        if (last.data) CHECK(em_value_cmp(last, em_value_at(s, 2)) <= 0);
        last = em_value_at(s, 3);
    }
    CHECK_EQ_INT(total, RECORDS);
    em_records_free(parts);
    check_rss("sortByKey");
    em_context_stop(ctx);
}
