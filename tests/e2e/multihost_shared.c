/* A driver program for tests/e2e/test_multihost.sh: broadcast variables and accumulators
 * across hosts. Built by the test script against libember.a (public API only) when the
 * library has them (include/ember/shared.h).
 *
 *   multihost_shared [--master URL] [--conf key=value]... N OUT
 *
 * The driver broadcasts a table of TABLE_N int64 values, table[i] = (i * 7919 + 13) % 1000003
 * (~800 KB, so it travels in several chunks), then runs, over range(0, N) in 12 partitions:
 *   1. map x -> table[x % TABLE_N] (read from the broadcast in the task), reduce (+): "sum";
 *   2. foreach over the same mapped values, adding to three accumulators: an int64 count of
 *      the even values ("even"), a float64 sum of value / 2 ("half"; exact: halves of
 *      integers, sums far below 2^52) and a user-defined one keeping the maximum ("max",
 *      merge = max, zero = INT64_MIN);
 *   3. per partition, the executor host (EMBER_EXECUTOR_HOST, "driver" in the driver) and the
 *      sum of the whole broadcast table as that task read it, distinct, collected.
 * OUT lines: "sum S", "even E", "half H" (one decimal), "max M", then "host ADDR TABLESUM" for
 * each distinct pair. Exit status 0, 1 on a failure (message on stderr), 2 on a usage error.
 */
#include <ember/ember.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_N 100003

typedef struct ids {
    uint64_t table, even, half, max;
} ids;

static int table_of(em_task *t, uint64_t id, const int64_t **table)
{
    const void *p;
    size_t len;
    int rc = em_broadcast_value(t, id, &p, &len);
    if (rc) return em_task_fail(t, "broadcast %llu: %s", (unsigned long long)id, em_errmsg());
    if (len != TABLE_N * sizeof(int64_t))
        return em_task_fail(t, "broadcast %llu has %zu bytes, not %zu", (unsigned long long)id, len,
                            TABLE_N * sizeof(int64_t));
    *table = p;
    return 0;
}

static int64_t table_at(const int64_t *table, size_t i)
{
    int64_t v;
    memcpy(&v, &table[i], sizeof v); /* the broadcast's bytes need not be aligned */
    return v;
}

static int lookup(em_task *t, em_value x, em_records *out, const void *arg)
{
    const ids *id = arg;
    const int64_t *table;
    int rc = table_of(t, id->table, &table);
    if (rc) return rc;
    em_put_int64(out, table_at(table, (size_t)(em_value_int64(x) % TABLE_N)));
    return 0;
}

static int add(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

static int max_of(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    int64_t x = em_value_int64(a), y = em_value_int64(b);
    em_put_int64(out, x > y ? x : y);
    return 0;
}

static int tally(em_task *t, em_value v, const void *arg)
{
    const ids *id = arg;
    int64_t x = em_value_int64(v);
    int rc = em_accumulator_add_int64(t, id->even, x % 2 == 0);
    if (!rc) rc = em_accumulator_add_float64(t, id->half, (double)x / 2);
    if (!rc) rc = em_accumulator_add(t, id->max, v);
    return rc ? em_task_fail(t, "accumulator add: %s", em_errmsg()) : 0;
}

static int host_and_table_sum(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    (void)in;
    const ids *id = arg;
    const int64_t *table;
    int rc = table_of(t, id->table, &table);
    if (rc) return rc;
    int64_t sum = 0;
    for (size_t i = 0; i < TABLE_N; i++) sum += table_at(table, i);
    const char *host = getenv("EMBER_EXECUTOR_HOST");
    em_put_tuple_begin(out);
    em_put_cstr(out, host ? host : "driver");
    em_put_int64(out, sum);
    em_put_end(out);
    return 0;
}

static int run(em_context *ctx, int64_t n, FILE *f)
{
    int64_t *table = malloc(TABLE_N * sizeof *table);
    em_records *zero = em_records_new(), *res = NULL;
    em_broadcast *b = NULL;
    em_accumulator *even = NULL, *half = NULL, *max = NULL;
    int rc = EM_ENOMEM;
    if (!table || !zero) goto out;
    for (int64_t i = 0; i < TABLE_N; i++) table[i] = (i * 7919 + 13) % 1000003;
    em_put_int64(zero, INT64_MIN);
    if ((rc = em_broadcast_create(ctx, table, TABLE_N * sizeof *table, &b)) ||
        (rc = em_accumulator_create_int64(ctx, "even", &even)) ||
        (rc = em_accumulator_create_float64(ctx, "half", &half)) ||
        (rc = em_accumulator_create(ctx, "max", em_records_at(zero, 0), max_of, NULL, 0, &max)))
        goto out;
    ids id = {em_broadcast_id(b), em_accumulator_id(even), em_accumulator_id(half),
              em_accumulator_id(max)};
    em_rdd *nums = em_range(ctx, 0, n, 1, 12);
    em_rdd *vals = em_rdd_map(nums, lookup, &id, sizeof id);
    em_rdd *hosts =
        em_rdd_distinct(em_rdd_map_partitions(nums, host_and_table_sum, &id, sizeof id), 0);
    rc = EM_EINVAL;
    if (!vals || !hosts) goto out;
    if ((rc = em_rdd_reduce(vals, add, NULL, 0, &res))) goto out;
    fprintf(f, "sum %" PRId64 "\n", em_value_int64(em_records_at(res, 0)));
    em_records_free(res);
    res = NULL;
    if ((rc = em_rdd_foreach(vals, tally, &id, sizeof id))) goto out;
    if ((rc = em_accumulator_value(max, &res))) goto out;
    fprintf(f, "even %" PRId64 "\nhalf %.1f\nmax %" PRId64 "\n", em_accumulator_int64(even),
            em_accumulator_float64(half), em_value_int64(em_records_at(res, 0)));
    em_records_free(res);
    res = NULL;
    if ((rc = em_rdd_collect(hosts, &res))) goto out;
    for (size_t i = 0; i < em_records_count(res); i++) {
        em_value p = em_records_at(res, i);
        size_t len;
        const char *h = em_value_str(em_value_key(p), &len);
        fprintf(f, "host %.*s %" PRId64 "\n", (int)len, h, em_value_int64(em_value_val(p)));
    }
out:
    em_records_free(res);
    em_records_free(zero);
    free(table);
    return rc;
}

int main(int argc, char **argv)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) < 0 || em_conf_parse_args(conf, &argc, argv) < 0) {
        fprintf(stderr, "multihost_shared: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    if (argc != 3 || atoll(argv[1]) < 1) {
        fprintf(stderr, "usage: multihost_shared [--master URL] [--conf key=value]... N OUT\n");
        em_conf_free(conf);
        return 2;
    }
    int64_t n = atoll(argv[1]);
    if (!em_conf_is_set(conf, "ember.app.name"))
        em_conf_set(conf, "ember.app.name", "multihost-shared");
    em_context *ctx = NULL;
    int rc = em_context_create(NULL, NULL, conf, &ctx);
    em_conf_free(conf);
    FILE *f = NULL;
    if (rc == 0 && !(f = fopen(argv[2], "w"))) {
        fprintf(stderr, "multihost_shared: cannot write %s\n", argv[2]);
        em_context_stop(ctx);
        return 1;
    }
    if (rc == 0) rc = run(ctx, n, f);
    if (f && fclose(f) != 0 && rc == 0) rc = -1;
    if (rc != 0) fprintf(stderr, "multihost_shared: %s\n", em_errmsg());
    em_context_stop(ctx);
    return rc == 0 ? 0 : 1;
}
