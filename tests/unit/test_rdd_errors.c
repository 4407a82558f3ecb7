/* Unit tests of failures: user functions that fail (always, or only on their first attempt),
 * in result stages, map stages, reduce-side aggregators and on the driver's final merge; the
 * job's error (EM_EJOB and a message naming the stage, the partition, how many times it failed
 * and the user's own message), retries up to ember.task.maxFailures (and local[N,F]), atomic
 * output (a failed saveAsTextFile leaves no directory), records that are not pairs fed to
 * pair operators (the message names the record), functions that break their contract (wrong
 * number of outputs, unbalanced builders, positive/negative return codes), bad master URLs,
 * ember.driver.maxResultSize, and that a context keeps working after a failed job.
 * Each TEST runs in its own forked process (tests/test.h), so the atomic counters are fresh.
 */
#include "test.h"
#include "rdd_helpers.h"

#include <ember/ember.h>

#include <stdatomic.h>

/* ---- helpers ---------------------------------------------------------------------------- */

#define CHECK_MSG_HAS(needle)                                                                      \
    CHECK_MSG(strstr(em_errmsg(), (needle)) != NULL, "message lacks \"%s\": %s", (needle),         \
              em_errmsg())

/* ---- user functions ------------------------------------------------------------------------ */

static atomic_long bad_calls, first_attempts;

/* Fails on x == *arg, every attempt. */
static int fail_on(em_task *t, em_value in, em_records *out, const void *arg)
{
    int64_t bad, x = em_value_int64(in);
    memcpy(&bad, arg, sizeof bad);
    if (x == bad) {
        atomic_fetch_add(&bad_calls, 1);
        return em_task_fail(t, "record %lld is cursed (attempt %d)", (long long)x,
                            em_task_attempt(t));
    }
    em_put_int64(out, x * 2);
    return 0;
}

/* Fails on x == *arg on the first attempt only. */
static int fail_first(em_task *t, em_value in, em_records *out, const void *arg)
{
    int64_t bad, x = em_value_int64(in);
    memcpy(&bad, arg, sizeof bad);
    if (x == bad && em_task_attempt(t) == 0) {
        atomic_fetch_add(&first_attempts, 1);
        return em_task_fail(t, "transient trouble with %lld", (long long)x);
    }
    em_put_int64(out, x * 2);
    return 0;
}

/* x -> (x mod 10, x), failing on the first attempt of partition *arg. */
static int pair_fail_first(em_task *t, em_value in, em_records *out, const void *arg)
{
    int part;
    memcpy(&part, arg, sizeof part);
    if (em_task_partition(t) == part && em_task_attempt(t) == 0) {
        atomic_fetch_add(&first_attempts, 1);
        return em_task_fail(t, "map side hiccup");
    }
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(in) % 10);
    em_put_value(out, in);
    em_put_end(out);
    return 0;
}

static int mod10_pair(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(in) % 10);
    em_put_value(out, in);
    em_put_end(out);
    return 0;
}

/* Adds, but fails when the sum passes *arg. */
static int add_capped(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    int64_t cap;
    memcpy(&cap, arg, sizeof cap);
    int64_t s = em_value_int64(a) + em_value_int64(b);
    if (s > cap) return em_task_fail(t, "sum %lld passes the cap", (long long)s);
    em_put_int64(out, s);
    return 0;
}

/* reduceByKey function failing on its first attempt in reduce partition 0. */
static int add_fail_first_reduce(em_task *t, em_value a, em_value b, em_records *out,
                                 const void *arg)
{
    (void)arg;
    if (em_task_attempt(t) == 0 && em_task_stage(t) >= 0 && em_task_partition(t) == 0) {
        atomic_fetch_add(&first_attempts, 1);
        return em_task_fail(t, "reduce hiccup");
    }
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

static int returns_einval(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg, (void)out, (void)in;
    return EM_EINVAL;
}

static int emits_two(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(in));
    em_put_int64(out, em_value_int64(in));
    return 0;
}

static int identity(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_value(out, in);
    return 0;
}

static int reduce_emits_two(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_value(out, a);
    em_put_value(out, b);
    return 0;
}

static int unbalanced(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_tuple_begin(out);
    em_put_value(out, in);
    return 0; /* tuple never closed */
}

static int each_fail(em_task *t, em_value in, const void *arg)
{
    (void)arg;
    if (em_value_int64(in) == 77) return em_task_fail(t, "foreach saw 77");
    return 0;
}

static int pred_fail(em_task *t, em_value in, const void *arg)
{
    (void)arg;
    if (em_value_int64(in) == 5) return em_task_fail(t, "predicate choked on 5");
    return 1;
}

/* ---- tests --------------------------------------------------------------------------------- */

TEST(failing_record_aborts_after_max_failures)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    int64_t bad = 42; /* range(0,100) in 4 slices: 42 is in partition 1 */
    em_rdd *r = em_rdd_map(em_range(ctx, 0, 100, 1, 4), fail_on, &bad, sizeof bad);
    em_records *out = (em_records *)1;
    int rc = em_rdd_collect(r, &out);
    CHECK_EQ_INT(rc, EM_EJOB);
    CHECK(out == NULL);
    CHECK_MSG_HAS("stage ");
    CHECK_MSG_HAS("partition 1 ");
    CHECK_MSG_HAS("failed 4 times");
    CHECK_MSG_HAS("record 42 is cursed (attempt 3)");
    /* every attempt's cause is named */
    CHECK_MSG_HAS("attempt 0 (TID");
    CHECK_MSG_HAS("record 42 is cursed (attempt 0)");
    CHECK_MSG_HAS("record 42 is cursed (attempt 2)");
    CHECK_EQ_INT(atomic_load(&bad_calls), 4);
    CHECK(strcmp(em_context_errmsg(ctx), em_errmsg()) == 0);
    /* count and other actions fail the same way */
    int64_t c;
    CHECK_EQ_INT(em_rdd_count(r, &c), EM_EJOB);
    CHECK_MSG_HAS("record 42 is cursed");
    /* the context still works after failed jobs */
    CHECK_OK(em_rdd_count(em_range(ctx, 0, 100, 1, 4), &c));
    CHECK_EQ_INT(c, 100);
    em_context_stop(ctx);
}

TEST(max_failures_from_master_and_conf)
{
    em_context *ctx = ctx_with("local[2,2]", NULL, NULL);
    int64_t bad = 80; /* partition 3 */
    em_records *out;
    CHECK_EQ_INT(
        em_rdd_collect(em_rdd_map(em_range(ctx, 0, 100, 1, 4), fail_on, &bad, sizeof bad), &out),
        EM_EJOB);
    CHECK_MSG_HAS("partition 3 ");
    CHECK_MSG_HAS("failed 2 times");
    CHECK_MSG_HAS("record 80 is cursed");
    CHECK_EQ_INT(atomic_load(&bad_calls), 2);
    em_context_stop(ctx);

    atomic_store(&bad_calls, 0);
    ctx = ctx_with("local[3]", "ember.task.maxFailures", "1");
    int64_t c;
    CHECK(em_rdd_count(em_rdd_map(em_range(ctx, 0, 100, 1, 4), fail_on, &bad, sizeof bad), &c) !=
          0);
    CHECK_MSG_HAS("failed 1 time");
    CHECK_EQ_INT(atomic_load(&bad_calls), 1);
    em_context_stop(ctx);
}

TEST(retry_after_first_attempt_failure)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    int64_t bad = 10;
    size_t n;
    em_records *out;
    CHECK_OK(em_rdd_collect(em_rdd_map(em_range(ctx, 0, 100, 1, 4), fail_first, &bad, sizeof bad),
                            &out));
    n = em_records_count(out);
    CHECK_EQ_INT(n, 100);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(em_value_int64(em_records_at(out, i)), 2 * (int64_t)i);
    em_records_free(out);
    CHECK_EQ_INT(atomic_load(&first_attempts), 1);

    /* a map-stage task failing once: the shuffle still gets every record exactly once */
    atomic_store(&first_attempts, 0);
    int part = 2;
    em_rdd *pairs = em_rdd_map(em_range(ctx, 0, 1000, 1, 4), pair_fail_first, &part, sizeof part);
    CHECK_OK(em_rdd_collect(em_rdd_reduce_by_key(pairs, add, NULL, 0, 3), &out));
    CHECK_EQ_INT(atomic_load(&first_attempts), 1);
    CHECK_EQ_INT(em_records_count(out), 10);
    for (size_t i = 0; i < 10; i++) {
        em_value p = em_records_at(out, i);
        int64_t k = em_value_int64(em_value_key(p)), want = 0;
        for (int x = 0; x < 1000; x++)
            if (x % 10 == k) want += x;
        CHECK_EQ_INT(em_value_int64(em_value_val(p)), want);
    }
    em_records_free(out);

    /* a reduce-side function failing once in reduce partition 0 (map side runs it too) */
    atomic_store(&first_attempts, 0);
    em_rdd *red =
        em_rdd_reduce_by_key(em_rdd_map(em_range(ctx, 0, 1000, 1, 4), mod10_pair, NULL, 0),
                             add_fail_first_reduce, NULL, 0, 2);
    CHECK_OK(em_rdd_collect(red, &out));
    CHECK(atomic_load(&first_attempts) >= 1);
    CHECK_EQ_INT(em_records_count(out), 10);
    int64_t total = 0;
    for (size_t i = 0; i < 10; i++) total += em_value_int64(em_value_val(em_records_at(out, i)));
    CHECK_EQ_INT(total, 999 * 1000 / 2);
    em_records_free(out);
    em_context_stop(ctx);
}

TEST(map_stage_failure_names_stage)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    int64_t bad = 33;
    em_rdd *pairs = em_rdd_key_by(em_range(ctx, 0, 100, 1, 3), fail_on, &bad, sizeof bad);
    em_records *out;
    CHECK_EQ_INT(em_rdd_collect(em_rdd_group_by_key(pairs, 2), &out), EM_EJOB);
    CHECK_MSG_HAS("keyBy");        /* the map stage is named after its RDD */
    CHECK_MSG_HAS("partition 1 "); /* 33 of 0..99 in 3 slices */
    CHECK_MSG_HAS("failed 4 times");
    CHECK_MSG_HAS("record 33 is cursed");
    int64_t c;
    CHECK_OK(em_rdd_count(
        em_rdd_group_by_key(em_rdd_map(em_range(ctx, 0, 100, 1, 3), mod10_pair, NULL, 0), 2), &c));
    CHECK_EQ_INT(c, 10);
    em_context_stop(ctx);
}

TEST(abort_with_many_queued_tasks)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    int64_t bad = 0; /* partition 0 of 200 fails; the others are queued or running */
    em_rdd *r = em_rdd_map(em_range(ctx, 0, 2000, 1, 200), fail_on, &bad, sizeof bad);
    int64_t c;
    CHECK_EQ_INT(em_rdd_count(r, &c), EM_EJOB);
    CHECK_MSG_HAS("partition 0 ");
    CHECK_OK(em_rdd_count(em_range(ctx, 0, 2000, 1, 200), &c));
    CHECK_EQ_INT(c, 2000);
    int64_t never = -1;
    CHECK_OK(em_rdd_count(em_rdd_map(em_range(ctx, 0, 2000, 1, 200), fail_on, &never, sizeof never),
                          &c));
    CHECK_EQ_INT(c, 2000);
    em_context_stop(ctx);
}

TEST(failed_save_leaves_no_directory)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    char out[1100];
    snprintf(out, sizeof out, "%s/out", test_tmpdir());
    int64_t bad = 90;
    em_rdd *r = em_rdd_map(em_range(ctx, 0, 100, 1, 4), fail_on, &bad, sizeof bad);
    CHECK_EQ_INT(em_rdd_save_as_text_file(r, out), EM_EJOB);
    CHECK_MSG_HAS("record 90 is cursed");
    struct stat st;
    CHECK(stat(out, &st) != 0 && errno == ENOENT);
    strlist left = {0};
    CHECK_OK(list_dir(test_tmpdir(), &left));
    for (size_t i = 0; i < left.n; i++)
        CHECK_MSG(strncmp(left.v[i], "out", 3) != 0, "left behind: %s", left.v[i]);
    sl_free(&left);
    /* and the same path can be written afterwards */
    int64_t never = -1;
    CHECK_OK(em_rdd_save_as_text_file(
        em_rdd_map(em_range(ctx, 0, 100, 1, 4), fail_on, &never, sizeof never), out));
    CHECK(stat(out, &st) == 0);
    em_context_stop(ctx);
}

TEST(non_pair_records_are_named)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    em_records *data = em_records_new();
    for (int i = 0; i < 20; i++) {
        em_put_tuple_begin(data);
        em_put_int64(data, i % 3);
        em_put_int64(data, i);
        em_put_end(data);
    }
    em_put_cstr(data, "not-a-pair-xyz");
    em_put_tuple_begin(data); /* a 3-tuple is not a pair either */
    em_put_int64(data, 1);
    em_put_int64(data, 2);
    em_put_int64(data, 3);
    em_put_end(data);
    CHECK_OK(em_records_error(data));
    em_rdd *bad = em_parallelize(ctx, data, 1);
    em_records_clear(data);
    em_put_tuple_begin(data);
    em_put_int64(data, 1);
    em_put_int64(data, 2);
    em_put_int64(data, 3);
    em_put_end(data);
    em_rdd *triple = em_parallelize(ctx, data, 2);
    em_records_free(data);

    em_records *out;
    CHECK(em_rdd_collect(em_rdd_reduce_by_key(bad, add, NULL, 0, 2), &out) != 0);
    CHECK_MSG_HAS("not-a-pair-xyz");
    CHECK(em_rdd_collect(em_rdd_reduce_by_key(triple, add, NULL, 0, 2), &out) != 0);
    CHECK_MSG_HAS("(1,2,3)");
    CHECK(em_rdd_collect(em_rdd_group_by_key(bad, 2), &out) != 0);
    CHECK_MSG_HAS("not-a-pair-xyz");
    CHECK(em_rdd_collect(em_rdd_join(bad, bad, 2), &out) != 0);
    CHECK_MSG_HAS("not-a-pair-xyz");
    CHECK(em_rdd_collect(em_rdd_keys(bad), &out) != 0);
    CHECK_MSG_HAS("not-a-pair-xyz");
    CHECK(em_rdd_collect(em_rdd_map_values(bad, identity, NULL, 0), &out) != 0);
    CHECK_MSG_HAS("not-a-pair-xyz");
    CHECK(em_rdd_count_by_key(bad, &out) != 0);
    CHECK_MSG_HAS("not-a-pair-xyz");
    em_rdd *sorted = em_rdd_sort_by_key(bad, true, 2); /* the sampling job already fails */
    if (sorted) CHECK(em_rdd_collect(sorted, &out) != 0);
    CHECK_MSG_HAS("not-a-pair-xyz");
    em_context_stop(ctx);
}

TEST(contract_violations)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    em_rdd *src = em_range(ctx, 0, 10, 1, 2);
    em_records *out;
    CHECK(em_rdd_collect(em_rdd_map(src, returns_einval, NULL, 0), &out) != 0);
    CHECK_MSG_HAS("map");
    CHECK(em_rdd_collect(em_rdd_map(src, emits_two, NULL, 0), &out) != 0);
    CHECK_MSG_HAS("exactly one");
    CHECK_OK(em_rdd_collect(em_rdd_flat_map(src, emits_two, NULL, 0), &out)); /* fine there */
    CHECK_EQ_INT(em_records_count(out), 20);
    em_records_free(out);
    CHECK(em_rdd_collect(em_rdd_filter(src, pred_fail, NULL, 0), &out) != 0);
    CHECK_MSG_HAS("predicate choked on 5");
    CHECK_EQ_INT(em_rdd_foreach(src, each_fail, NULL, 0), 0); /* 77 is not in 0..9 */
    CHECK(em_rdd_foreach(em_range(ctx, 0, 100, 1, 3), each_fail, NULL, 0) != 0);
    CHECK_MSG_HAS("foreach saw 77");
    CHECK(em_rdd_reduce(src, reduce_emits_two, NULL, 0, &out) != 0);
    CHECK_MSG_HAS("exactly one");
    em_rdd *keyed = em_rdd_map(em_range(ctx, 0, 100, 1, 2), mod10_pair, NULL, 0);
    CHECK(em_rdd_collect(em_rdd_reduce_by_key(keyed, reduce_emits_two, NULL, 0, 2), &out) != 0);
    CHECK_MSG_HAS("exactly one");
    em_context_stop(ctx);
}

TEST(driver_side_merge_failure)
{
    /* Per partition sums of 0..99 in 4 slices are 300, 925, 1550, 2175: each partition stays
     * under the cap, and the driver's merge of the partition results passes it. */
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    int64_t cap = 3000;
    em_records *out = NULL;
    int rc = em_rdd_reduce(em_range(ctx, 0, 100, 1, 4), add_capped, &cap, sizeof cap, &out);
    CHECK(rc != 0);
    CHECK(out == NULL);
    CHECK_MSG_HAS("passes the cap");
    em_records *z = em_records_new();
    em_put_int64(z, 0);
    CHECK(em_rdd_fold(em_range(ctx, 0, 100, 1, 4), em_records_at(z, 0), add_capped, &cap,
                      sizeof cap, &out) != 0);
    CHECK_MSG_HAS("passes the cap");
    cap = 10000;
    CHECK_OK(em_rdd_reduce(em_range(ctx, 0, 100, 1, 4), add_capped, &cap, sizeof cap, &out));
    CHECK_EQ_INT(em_value_int64(em_records_at(out, 0)), 4950);
    em_records_free(out);
    em_records_free(z);
    em_context_stop(ctx);
}

TEST(bad_master_urls)
{
    em_conf *conf = em_conf_new();
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    const char *bad[] = {"local[0]",  "local[x]",   "foo",        "local[", "local[2", "local[2]x",
                         "local[-1]", "local[2,0]", "local[2,x]", "",       "local[]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        em_context *ctx = (em_context *)1;
        int rc = em_context_create(bad[i], "test", conf, &ctx);
        CHECK_MSG(rc == EM_EMASTER, "master '%s': rc %d (%s)", bad[i], rc, em_errmsg());
        CHECK(ctx == NULL);
        CHECK_MSG(em_errmsg()[0], "no message for '%s'", bad[i]);
    }
    CHECK_MSG_HAS("local[]");
    const char *good[] = {"local", "local[1]", "local[*]", "local[3,2]", "local[*,5]"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        em_context *ctx = NULL;
        CHECK_OK(em_context_create(good[i], "test", conf, &ctx));
        int64_t c;
        CHECK_OK(em_rdd_count(em_range(ctx, 0, 10, 1, 3), &c));
        CHECK_EQ_INT(c, 10);
        em_context_stop(ctx);
    }
    em_conf_free(conf);
}

TEST(max_result_size)
{
    em_context *ctx = ctx_with("local[2]", "ember.driver.maxResultSize", "10k");
    em_records *out = (em_records *)1;
    CHECK_EQ_INT(em_rdd_collect(em_range(ctx, 0, 100000, 1, 4), &out), EM_ETOOBIG);
    CHECK(out == NULL);
    CHECK_MSG_HAS("maxResultSize");
    int64_t c;
    CHECK_OK(em_rdd_count(em_range(ctx, 0, 100000, 1, 4), &c)); /* small results are fine */
    CHECK_EQ_INT(c, 100000);
    em_context_stop(ctx);
}

/* A function that returns with a tuple still open built no complete record: that is a broken
 * value and must fail the task, not silently vanish (record.h: misuse is reported). */
TEST(unclosed_tuple_is_an_error)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    em_records *out = NULL;
    int rc = em_rdd_collect(em_rdd_flat_map(em_range(ctx, 0, 10, 1, 2), unbalanced, NULL, 0), &out);
    CHECK_MSG(rc != 0, "collect succeeded with %zu records", out ? em_records_count(out) : 0);
    CHECK(em_errmsg()[0]);
    em_context_stop(ctx);
}
