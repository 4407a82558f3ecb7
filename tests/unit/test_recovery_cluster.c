/* Recovery features on local-cluster (real master, workers and executor processes):
 * speculation (a straggling attempt gets a copy on another executor, whose result is the one
 * used; saveAsTextFile with a straggler commits exactly one file per partition), and
 * excludeOnFailure (an executor that fails every task it gets is excluded: the stage's
 * partitions avoid it, and after the stage succeeds the application does; with one executor
 * the job aborts naming the exclusion instead of retrying on it). Expectations are computed in
 * the test.
 */
#include "test.h"
#include "rdd_helpers.h"

#include <ember/ember.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PARTS = 6, PER = 1000, SLOW = 5 };

/* x -> (x, partition, attempt); attempt 0 of partition SLOW sleeps 3 ms per record (3 s). */
static int slow_tag(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)arg;
    if (em_task_partition(t) == SLOW && em_task_attempt(t) == 0) usleep(3000);
    em_put_tuple_begin(out);
    em_put_value(out, in);
    em_put_int64(out, em_task_partition(t));
    em_put_int64(out, em_task_attempt(t));
    em_put_end(out);
    return 0;
}

static em_context *speculating_context(void)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    CHECK_OK(em_conf_set(conf, "ember.speculation", "true"));
    CHECK_OK(em_conf_set(conf, "ember.speculation.quantile", "0.5"));
    CHECK_OK(em_conf_set(conf, "ember.speculation.multiplier", "2"));
    CHECK_OK(em_conf_set(conf, "ember.speculation.minTaskRuntime", "200ms"));
    CHECK_OK(em_conf_set(conf, "ember.speculation.interval", "50ms"));
    em_context *ctx = NULL;
    CHECK_OK(em_context_create("local-cluster[3,1,512]", "test", conf, &ctx));
    em_conf_free(conf);
    return ctx;
}

/* The straggler's copy (attempt 1, on another executor) finishes first: its records are the
 * ones collected; every other partition's come from attempt 0; nothing is doubled. */
TEST(straggler_is_speculated)
{
    em_context *ctx = speculating_context();
    em_records *r;
    CHECK_OK(
        em_rdd_collect(em_rdd_map(em_range(ctx, 0, PARTS * PER, 1, PARTS), slow_tag, NULL, 0), &r));
    CHECK_EQ_INT(em_records_count(r), PARTS * PER);
    for (size_t i = 0; i < em_records_count(r); i++) {
        em_value v = em_records_at(r, i);
        int64_t x = em_value_int64(em_value_at(v, 0));
        int64_t part = em_value_int64(em_value_at(v, 1));
        int64_t attempt = em_value_int64(em_value_at(v, 2));
        CHECK_EQ_INT(x, (int64_t)i); /* in order, each once */
        CHECK_EQ_INT(part, x / PER);
        CHECK_MSG(attempt == (part == SLOW ? 1 : 0), "record %lld of partition %lld: attempt %lld",
                  (long long)x, (long long)part, (long long)attempt);
    }
    em_records_free(r);
    em_context_stop(ctx);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* saveAsTextFile with a straggler: one part file per partition with its records (each line
 * "(x, partition, attempt)" from a single attempt), _SUCCESS, and nothing else. */
TEST(speculated_output_committed_once)
{
    em_context *ctx = speculating_context();
    char out[1100];
    snprintf(out, sizeof out, "%s/out", test_tmpdir());
    CHECK_OK(em_rdd_save_as_text_file(
        em_rdd_map(em_range(ctx, 0, PARTS * PER, 1, PARTS), slow_tag, NULL, 0), out));
    em_context_stop(ctx); /* the losing attempt has ended or was killed by now */
    strlist names = {0};
    list_dir(out, &names);
    CHECK_EQ_INT(names.n, PARTS + 1);
    for (int p = 0; p < PARTS; p++) {
        char name[64], path[1200];
        snprintf(name, sizeof name, "part-%05d", p);
        CHECK_EQ_STR(names.v[p + 1], name); /* sorted: _SUCCESS first */
        snprintf(path, sizeof path, "%s/%s", out, name);
        char *text = read_file(path);
        CHECK(text);
        int lines = 0, first_attempt = -1;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
            long long x, part, attempt;
            CHECK_MSG(sscanf(line, "(%lld, %lld, %lld)", &x, &part, &attempt) == 3, "line %s",
                      line);
            CHECK_EQ_INT(x, (long long)p * PER + lines);
            CHECK_EQ_INT(part, p);
            if (first_attempt < 0) first_attempt = (int)attempt;
            CHECK_EQ_INT(attempt, first_attempt);
        }
        CHECK_EQ_INT(lines, PER);
        if (p == SLOW) CHECK_EQ_INT(first_attempt, 1);
    }
    CHECK_EQ_STR(names.v[0], "_SUCCESS");
    sl_free(&names);
    char parent[1024];
    snprintf(parent, sizeof parent, "%s", test_tmpdir());
    strlist all = {0};
    list_dir(parent, &all);
    for (size_t i = 0; i < all.n; i++)
        CHECK_MSG(!strstr(all.v[i], "_ember_staging_"), "left behind: %s", all.v[i]);
    sl_free(&all);
}

/* The first executor process to run a task claims to be "bad" (an O_EXCL file holding its pid);
 * tasks fail there. Returns x -> (x, pid). */
static int fail_on_bad(em_task *t, em_value in, em_records *out, const void *arg)
{
    const char *claim = arg;
    int fd = open(claim, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) {
        dprintf(fd, "%d\n", (int)getpid());
        close(fd);
    }
    char *text = read_file(claim);
    if (text && atoi(text) == (int)getpid())
        return em_task_fail(t, "executor pid %d is bad", (int)getpid());
    em_put_tuple_begin(out);
    em_put_value(out, in);
    em_put_int64(out, (int64_t)getpid());
    em_put_end(out);
    return 0;
}

static int tag_pid(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    em_put_tuple_begin(out);
    em_put_value(out, in);
    em_put_int64(out, (int64_t)getpid());
    em_put_end(out);
    return 0;
}

static em_context *excluding_context(const char *master)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    CHECK_OK(em_conf_set(conf, "ember.excludeOnFailure.enabled", "true"));
    CHECK_OK(em_conf_set(conf, "ember.locality.wait", "0"));
    em_context *ctx = NULL;
    CHECK_OK(em_context_create(master, "test", conf, &ctx));
    em_conf_free(conf);
    return ctx;
}

/* With 3 executors, one failing everything: the job succeeds (no record from the bad one);
 * the stage's failures there exclude it for the application, so a second job runs nothing on
 * it although round-robin would give it a third of the tasks. */
TEST(failing_executor_is_excluded)
{
    em_context *ctx = excluding_context("local-cluster[3,1,512]");
    char claim[1100];
    snprintf(claim, sizeof claim, "%s/bad-executor", test_tmpdir());
    em_records *r;
    CHECK_OK(em_rdd_collect(
        em_rdd_map(em_range(ctx, 0, 12 * 10, 1, 12), fail_on_bad, claim, strlen(claim) + 1), &r));
    CHECK_EQ_INT(em_records_count(r), 120);
    char *text = read_file(claim);
    CHECK(text);
    int64_t bad = atoi(text);
    for (size_t i = 0; i < em_records_count(r); i++)
        CHECK(em_value_int64(em_value_at(em_records_at(r, i), 1)) != bad);
    em_records_free(r);
    CHECK_OK(em_rdd_collect(em_rdd_map(em_range(ctx, 0, 30 * 10, 1, 30), tag_pid, NULL, 0), &r));
    CHECK_EQ_INT(em_records_count(r), 300);
    int64_t pids[2] = {0};
    for (size_t i = 0; i < em_records_count(r); i++) {
        int64_t pid = em_value_int64(em_value_at(em_records_at(r, i), 1));
        CHECK_MSG(pid != bad, "record %zu computed on the excluded executor (pid %lld)", i,
                  (long long)bad);
        if (!pids[0] || pids[0] == pid)
            pids[0] = pid;
        else
            pids[1] = pid;
    }
    CHECK(pids[0] && pids[1]); /* the two good executors share the work */
    em_records_free(r);
    em_context_stop(ctx);
}

/* One executor, failing: after the first failure the partition may not run on it again
 * (maxTaskAttemptsPerExecutor = 1) and there is no other: the job aborts at once with a
 * message naming the exclusion, not after ember.task.maxFailures attempts. */
TEST(unschedulable_task_aborts)
{
    em_context *ctx = excluding_context("local-cluster[1,1,512]");
    char claim[1100];
    snprintf(claim, sizeof claim, "%s/bad-executor", test_tmpdir());
    em_records *r = NULL;
    int rc = em_rdd_collect(
        em_rdd_map(em_range(ctx, 0, 10, 1, 1), fail_on_bad, claim, strlen(claim) + 1), &r);
    CHECK_EQ_INT(rc, EM_EJOB);
    CHECK_MSG(strstr(em_errmsg(), "cannot run") && strstr(em_errmsg(), "ember.excludeOnFailure") &&
                  strstr(em_errmsg(), "is bad"),
              "%s", em_errmsg());
    CHECK_MSG(!strstr(em_errmsg(), "maxFailures"), "%s", em_errmsg());
    em_context_stop(ctx);
}
