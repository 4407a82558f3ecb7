/* Scheduler overhead micro-benchmark: the latency of an empty job (count of an RDD with no
 * partitions... and of one empty partition) and the throughput of a job of many empty tasks.
 *   ember_tasks [--master M] [--tasks N] [--repeat R]
 * Prints `start_ms S` (em_context_create: for a cluster master this includes starting the
 * daemons and executors and their registration), `first_task_ms F` (the first job after it:
 * the time until the application's first task has run and reported), `empty_job_ms X`
 * (median over R jobs of count() over one empty partition) and `tasks_per_s Y` (count() over
 * an empty range with N partitions, best of 3). */
#include <ember/ember.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) || em_conf_parse_args(conf, &argc, argv)) {
        fprintf(stderr, "ember_tasks: %s\n", em_errmsg());
        return 2;
    }
    int tasks = 10000, repeat = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tasks"))
            tasks = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat"))
            repeat = atoi(argv[i + 1]);
    }
    if (!em_conf_is_set(conf, "ember.master")) em_conf_set(conf, "ember.master", "local[2]");
    em_context *ctx;
    double t_start = now_s();
    if (em_context_create(NULL, "ember_tasks", conf, &ctx)) {
        fprintf(stderr, "ember_tasks: %s\n", em_errmsg());
        return 1;
    }
    double t_ready = now_s();
    em_conf_free(conf);
    int64_t n;
    em_rdd *one = em_range(ctx, 0, 0, 1, 1);
    if (em_rdd_count(one, &n)) goto fail;
    printf("start_ms %.2f\nfirst_task_ms %.2f\n", (t_ready - t_start) * 1e3,
           (now_s() - t_ready) * 1e3);
    double *lat = calloc((size_t)repeat, sizeof *lat);
    for (int i = 0; i < repeat; i++) {
        double t0 = now_s();
        if (em_rdd_count(one, &n)) goto fail;
        lat[i] = now_s() - t0;
    }
    qsort(lat, (size_t)repeat, sizeof *lat, cmp_double);
    printf("empty_job_ms %.4f\n", lat[repeat / 2] * 1e3);
    em_rdd *many = em_range(ctx, 0, 0, 1, tasks);
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();
        if (em_rdd_count(many, &n)) goto fail;
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    printf("tasks_per_s %.0f\n", tasks / best);
    free(lat);
    em_context_stop(ctx);
    return 0;
fail:
    fprintf(stderr, "ember_tasks: %s\n", em_errmsg());
    em_context_stop(ctx);
    return 1;
}
