/* A driver program for tests/e2e/test_multihost.sh ("a worker joining mid-application gets
 * executors"): one job whose tasks wait for a gate file before they compute, so the test can
 * start a worker while the job is running and open the gate once that worker's executor has
 * registered. Built by the test script against libember.a (public API only).
 *
 *   multihost_app [--master URL] [--conf key=value]... GATE PARTITIONS N OUT
 *
 * The job, in Spark's terms:
 *
 *   range(0, N, PARTITIONS).mapPartitions { wait for GATE; x => (x % 101, x * x) for each x,
 *                                            plus ("host=" + executor host, 1) once }
 *                          .reduceByKey(_ + _).collect()
 *
 * The executor host is EMBER_EXECUTOR_HOST (the address the worker registered; "driver" when
 * the task runs in the driver). A task that waits for the gate longer than 120 s fails.
 * OUT receives one line per key, in the collected order: "K<TAB>SUM" for the 101 integer keys
 * and "host=ADDR<TAB>TASKS" for each host that ran tasks. Exit status 0, 1 on a failed job
 * (message on stderr), 2 on a usage or configuration error.
 */
#include <ember/ember.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GATE_WAIT_S 120

static int wait_gate_then_square(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    const char *gate = arg;
    time_t deadline = time(NULL) + GATE_WAIT_S;
    while (access(gate, F_OK) != 0) {
        if (time(NULL) > deadline)
            return em_task_fail(t, "gate file %s did not appear within %d s", gate, GATE_WAIT_S);
        usleep(10 * 1000);
    }
    em_value v;
    int rc;
    while ((rc = em_iter_next(in, &v)) == EM_ROW) {
        int64_t x = em_value_int64(v);
        em_put_tuple_begin(out);
        em_put_int64(out, x % 101);
        em_put_int64(out, x * x);
        em_put_end(out);
    }
    if (rc != EM_DONE) return rc;
    const char *host = getenv("EMBER_EXECUTOR_HOST");
    char key[300];
    snprintf(key, sizeof key, "host=%s", host ? host : "driver");
    em_put_tuple_begin(out);
    em_put_cstr(out, key);
    em_put_int64(out, 1);
    em_put_end(out);
    return 0;
}

static int add(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

static int write_pairs(em_records *res, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (size_t i = 0; i < em_records_count(res); i++) {
        em_value p = em_records_at(res, i);
        em_value_fprint(em_value_key(p), f);
        fprintf(f, "\t%lld\n", (long long)em_value_int64(em_value_val(p)));
    }
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) < 0 || em_conf_parse_args(conf, &argc, argv) < 0) {
        fprintf(stderr, "multihost_app: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    if (argc != 5 || atoi(argv[2]) < 1 || atoll(argv[3]) < 1) {
        fprintf(stderr, "usage: multihost_app [--master URL] [--conf key=value]... GATE "
                        "PARTITIONS N OUT\n");
        em_conf_free(conf);
        return 2;
    }
    const char *gate = argv[1], *out = argv[4];
    int parts = atoi(argv[2]);
    int64_t n = atoll(argv[3]);
    if (!em_conf_is_set(conf, "ember.app.name"))
        em_conf_set(conf, "ember.app.name", "multihost-late-worker");
    em_context *ctx = NULL;
    int rc = em_context_create(NULL, NULL, conf, &ctx);
    em_conf_free(conf);
    em_records *res = NULL;
    if (rc == 0) {
        em_rdd *nums = em_range(ctx, 0, n, 1, parts);
        em_rdd *pairs = em_rdd_map_partitions(nums, wait_gate_then_square, gate, strlen(gate) + 1);
        em_rdd *sums = em_rdd_reduce_by_key(pairs, add, NULL, 0, 0);
        rc = sums ? em_rdd_collect(sums, &res) : -1;
    }
    if (rc == 0 && write_pairs(res, out) != 0) {
        fprintf(stderr, "multihost_app: cannot write %s\n", out);
        rc = -1;
    } else if (rc != 0) {
        fprintf(stderr, "multihost_app: %s\n", em_errmsg());
    }
    em_records_free(res);
    em_context_stop(ctx);
    return rc == 0 ? 0 : 1;
}
