/* Unit tests of broadcast variables and accumulators (include/ember/shared.h), on local[N] and
 * on local-cluster[2,1,256] (executor processes: the broadcast is fetched from the driver in
 * chunks, updates travel back with task outcomes). Expected values are computed in plain C.
 *
 * Covered: a broadcast table read by a map (several chunks: ember.broadcast.blockSize=1k);
 * int64 / float64 / value (max) accumulators in an action; exactly-once in an action when a
 * task's first attempt fails after adding; a transformation's updates; an unknown broadcast
 * fails the task with a message naming it; bad accumulator arguments.
 */
#include "test.h"
#include "rdd_helpers.h"

#include <ember/ember.h>

#include <string.h>

enum { N = 5000, TABLE = 997 };

typedef struct table_arg {
    uint64_t bcast;
} table_arg;

/* x -> table[x % TABLE] read from the broadcast. */
static int lookup(em_task *t, em_value in, em_records *out, const void *arg)
{
    const table_arg *a = arg;
    const void *p;
    size_t len;
    int rc = em_broadcast_value(t, a->bcast, &p, &len);
    if (rc) return rc;
    if (len != TABLE * sizeof(int64_t)) return em_task_fail(t, "broadcast of %zu bytes", len);
    int64_t x = em_value_int64(in), v;
    memcpy(&v, (const uint8_t *)p + (size_t)(x % TABLE) * sizeof v, sizeof v);
    em_put_int64(out, v);
    return 0;
}

static int64_t table_value(int64_t i)
{
    return i * i * 7 + 3;
}

static void check_broadcast(const char *master)
{
    em_context *ctx = ctx_with(master, "ember.broadcast.blockSize", "1k");
    CHECK(ctx);
    int64_t table[TABLE];
    for (int i = 0; i < TABLE; i++) table[i] = table_value(i);
    em_broadcast *b;
    CHECK_OK(em_broadcast_create(ctx, table, sizeof table, &b));
    table_arg a = {em_broadcast_id(b)};
    em_rdd *m = em_rdd_map(em_range(ctx, 0, N, 1, 4), lookup, &a, sizeof a);
    size_t n;
    int64_t *got = collect_ints(m, &n);
    int64_t *want = malloc(N * sizeof *want);
    for (int i = 0; i < N; i++) want[i] = table_value(i % TABLE);
    expect_ints(got, n, want, N);
    free(got);

    /* A second job reads the value again (executors: from what they fetched the first time). */
    got = collect_ints(m, &n);
    expect_ints(got, n, want, N);
    free(got);
    free(want);

    table_arg bad = {a.bcast + 1000};
    em_records *r = NULL;
    int rc = em_rdd_collect(em_rdd_map(em_range(ctx, 0, 10, 1, 1), lookup, &bad, sizeof bad), &r);
    CHECK_EQ_INT(rc, EM_EJOB);
    CHECK_MSG(strstr(em_errmsg(), "broadcast") && strstr(em_errmsg(), "does not exist"),
              "message: %s", em_errmsg());
    em_records_free(r);
    em_context_stop(ctx);
}

TEST(broadcast_local)
{
    check_broadcast("local[2]");
}

TEST(broadcast_local_cluster)
{
    check_broadcast("local-cluster[2,1,256]");
}

typedef struct acc_ids {
    uint64_t count, sum, max;
    int fail_first; /* fail the first attempt of partition 0 after adding */
} acc_ids;

static int max_merge(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    int64_t x = em_value_int64(a), y = em_value_int64(b);
    em_put_int64(out, x > y ? x : y);
    return 0;
}

static int add_each(em_task *t, em_value in, const void *arg)
{
    const acc_ids *a = arg;
    int64_t x = em_value_int64(in);
    int rc = em_accumulator_add_int64(t, a->count, 1);
    if (!rc) rc = em_accumulator_add_float64(t, a->sum, (double)x * 0.5);
    if (!rc) rc = em_accumulator_add(t, a->max, in);
    if (rc) return rc;
    if (a->fail_first && em_task_partition(t) == 0 && em_task_attempt(t) == 0 && x == 7)
        return em_task_fail(t, "planned failure after adding");
    return 0;
}

static int add_in_map(em_task *t, em_value in, em_records *out, const void *arg)
{
    const acc_ids *a = arg;
    int rc = em_accumulator_add_int64(t, a->count, 1);
    if (rc) return rc;
    em_put_value(out, in);
    return 0;
}

static void check_accumulators(const char *master)
{
    em_context *ctx = ctx_with(master, NULL, NULL);
    CHECK(ctx);
    em_accumulator *count, *sum, *max, *mapped;
    CHECK_OK(em_accumulator_create_int64(ctx, "count", &count));
    CHECK_OK(em_accumulator_create_float64(ctx, "half sum", &sum));
    em_records *zero = em_records_new();
    em_put_int64(zero, INT64_MIN);
    CHECK_OK(em_accumulator_create(ctx, "max", em_records_at(zero, 0), max_merge, NULL, 0, &max));
    CHECK_OK(em_accumulator_create_int64(ctx, "mapped", &mapped));

    acc_ids a = {em_accumulator_id(count), em_accumulator_id(sum), em_accumulator_id(max), 1};
    em_rdd *src = em_range(ctx, 0, N, 1, 4);
    CHECK_OK(em_rdd_foreach(src, add_each, &a, sizeof a));
    CHECK_EQ_INT(em_accumulator_int64(count), N); /* the failed attempt's adds are dropped */
    double want_sum = 0;
    for (int i = 0; i < N; i++) want_sum += (double)i * 0.5;
    CHECK(em_accumulator_float64(sum) == want_sum);
    em_records *v;
    CHECK_OK(em_accumulator_value(max, &v));
    CHECK_EQ_INT(em_records_count(v), 1);
    CHECK_EQ_INT(em_value_int64(em_records_at(v, 0)), N - 1);
    em_records_free(v);

    /* A second action adds again. */
    a.fail_first = 0;
    CHECK_OK(em_rdd_foreach(src, add_each, &a, sizeof a));
    CHECK_EQ_INT(em_accumulator_int64(count), 2 * N);

    /* A transformation's updates count once per successful run of its tasks. */
    acc_ids m = {em_accumulator_id(mapped), 0, 0, 0};
    int64_t c;
    CHECK_OK(em_rdd_count(em_rdd_map(src, add_in_map, &m, sizeof m), &c));
    CHECK_EQ_INT(c, N);
    CHECK_EQ_INT(em_accumulator_int64(mapped), N);

    /* Wrong kind: the task fails with a message naming the accumulator. */
    acc_ids wrong = {em_accumulator_id(sum), em_accumulator_id(sum), em_accumulator_id(max), 0};
    CHECK_EQ_INT(em_rdd_foreach(src, add_each, &wrong, sizeof wrong), EM_EJOB);
    CHECK_MSG(strstr(em_errmsg(), "half sum"), "message: %s", em_errmsg());

    /* Bad arguments. */
    em_accumulator *bad;
    CHECK_EQ_INT(em_accumulator_create(ctx, "x", em_records_at(zero, 0), NULL, NULL, 0, &bad),
                 EM_EINVAL);
    em_records_free(zero);
    em_context_stop(ctx);
}

TEST(accumulators_local)
{
    check_accumulators("local[2,4]");
}

TEST(accumulators_local_cluster)
{
    check_accumulators("local-cluster[2,1,256]");
}
