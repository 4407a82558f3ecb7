/* Tests of output commit coordination and task kill (issue 4, items 5 and 8), on local[2] and
 * on local-cluster[2,1,512] (real master, worker and executor processes):
 *   - saveAsTextFile whose partition-0 task fails its first attempt after more than 1 MiB of it
 *     reached the temporary file: exactly one part file per partition with the right lines,
 *     nothing else in the output (no temporary file) and no staging directory left;
 *   - two attempts of one partition through em_output_write_partition with a coordinator hook:
 *     the first commits, the second is denied and leaves nothing, a failed authorised attempt
 *     releases the partition, and a copy denied after the job committed leaves nothing in the
 *     output (its temporary file lived in the attempts directory, removed by the commit);
 *   - a task killed through backend->kill_task ends, is not counted and runs again
 *     (kill_through_backend), and em__run_task with a kill request,
 *     before and while it runs, ends with EM_EKILLED "task killed: <reason>".
 * Expected contents are derived here from the values the job was given, not from its output.
 */
#include "test.h"
#include "rdd_helpers.h"

#include "base/base.h"
#include "base/iter.h"
#include "base/task.h"
#include "rdd/io.h"
#include "scheduler/commit.h"
#include "scheduler/scheduler.h"

#include <glob.h>
#include <pthread.h>

/* ---- helpers --------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, r;
    char *d = malloc(cap + 1);
    while ((r = fread(d + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) d = realloc(d, (cap *= 2) + 1);
    }
    fclose(f);
    d[len] = '\0';
    *n = len;
    return d;
}

/* Writes text to path atomically (a reader never sees half of it). */
static void put_file(const char *path, const char *text)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

/* Waits (no time limit: the runner's alarm ends a stuck test) until path holds a number. */
static long long wait_number(const char *path)
{
    for (;;) {
        size_t n = 0;
        char *d = slurp(path, &n);
        if (d && n > 0) {
            long long v = atoll(d);
            free(d);
            return v;
        }
        free(d);
        usleep(10000);
    }
}

/* No entry of dir has a name containing part. */
static void check_no_entry_containing(const char *dir, const char *part)
{
    strlist l = {0};
    CHECK_OK(list_dir(dir, &l));
    for (size_t i = 0; i < l.n; i++)
        CHECK_MSG(!strstr(l.v[i], part), "'%s' left in %s", l.v[i], dir);
    sl_free(&l);
}

/* ---- saveAsTextFile with a failed first attempt ---------------------------------------------- */

enum { SAVE_PARTS = 4, SAVE_PER = 20000, FAIL_AT = 15000 };

typedef struct save_arg {
    char out[1100];    /* the output path */
    char marker[1100]; /* where attempt 0 of partition 0 records its temporary file's size */
} save_arg;

/* v -> "p<partition>-<v>-<100 zeros>"; attempt 0 of partition 0 fails at its FAIL_AT-th
 * record, after noting how many bytes of its temporary output file exist. */
static int tag_line(em_task *t, em_value in, em_records *out, const void *arg)
{
    const save_arg *a = arg;
    static _Thread_local int64_t task = -1, seen = 0;
    if (t->task_id != task) {
        task = t->task_id;
        seen = 0;
    }
    if (++seen == FAIL_AT && em_task_partition(t) == 0 && em_task_attempt(t) == 0) {
        char pattern[1300], size[32] = "0";
        snprintf(pattern, sizeof pattern, "%s._ember_staging_*.attempts/.part-00000.attempt-0.tmp",
                 a->out);
        glob_t g;
        struct stat st;
        if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc == 1 && stat(g.gl_pathv[0], &st) == 0)
            snprintf(size, sizeof size, "%lld", (long long)st.st_size);
        globfree(&g);
        put_file(a->marker, size);
        return em_task_fail(t, "attempt 0 of partition 0 fails after writing");
    }
    char line[160];
    snprintf(line, sizeof line, "p%d-%lld-%0100d", em_task_partition(t),
             (long long)em_value_int64(in), 0);
    em_put_cstr(out, line);
    return 0;
}

static void save_with_failed_first_attempt(const char *master)
{
    em_context *ctx = ctx_with(master, NULL, NULL);
    CHECK(ctx);
    save_arg a = {0};
    snprintf(a.out, sizeof a.out, "%s/out", test_tmpdir());
    snprintf(a.marker, sizeof a.marker, "%s/tmp-size", test_tmpdir());
    const int64_t n = (int64_t)SAVE_PARTS * SAVE_PER;
    em_rdd *r = em_rdd_map(em_range(ctx, 0, n, 1, SAVE_PARTS), tag_line, &a, sizeof a);
    CHECK_OK(em_rdd_save_as_text_file(r, a.out));

    /* The failure came after the attempt had written to its temporary file. */
    size_t len = 0;
    char *size = slurp(a.marker, &len);
    CHECK_MSG(size, "attempt 0 of partition 0 never failed");
    CHECK_MSG(atoll(size) >= (1 << 20), "temporary file had %s bytes when attempt 0 failed", size);
    free(size);

    /* Exactly _SUCCESS and one file per partition; no staging directory next to it. */
    strlist names = {0}, want = {0};
    CHECK_OK(list_dir(a.out, &names));
    sl_addf(&want, "_SUCCESS");
    for (int p = 0; p < SAVE_PARTS; p++) sl_addf(&want, "part-%05d", p);
    sl_expect(&names, &want, true);
    sl_free(&names);
    sl_free(&want);
    check_no_entry_containing(test_tmpdir(), "_ember_staging_");

    /* Each value once, in the file of the partition that computed it, in order. */
    char *seen = calloc((size_t)n, 1);
    int64_t total = 0;
    for (int p = 0; p < SAVE_PARTS; p++) {
        char path[1300];
        snprintf(path, sizeof path, "%s/part-%05d", a.out, p);
        char *d = slurp(path, &len);
        CHECK_MSG(d, "%s missing", path);
        long long prev = -1;
        for (char *line = d, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            CHECK_MSG(nl, "%s: last line without newline", path);
            *nl = '\0';
            int tag = -1;
            long long v = -1;
            int used = 0;
            CHECK_MSG(sscanf(line, "p%d-%lld-%n", &tag, &v, &used) == 2, "%s: bad line '%.40s'",
                      path, line);
            CHECK_EQ_INT(tag, p);
            CHECK_MSG(v > prev && v < n, "%s: value %lld after %lld", path, v, prev);
            CHECK_EQ_INT(strlen(line + used), 100);
            CHECK(!seen[v]);
            seen[v] = 1;
            prev = v;
            total++;
        }
        free(d);
    }
    CHECK_EQ_INT(total, n);
    free(seen);
    em_context_stop(ctx);
}

TEST(save_retry_after_write_local)
{
    save_with_failed_first_attempt("local[2]");
}

TEST(save_retry_after_write_cluster)
{
    save_with_failed_first_attempt("local-cluster[2,1,512]");
}

/* ---- two attempts of one partition ----------------------------------------------------------- */

/* An iterator over a list of C strings. */
typedef struct str_iter {
    em_iter base;
    em_records *r;
    size_t cursor;
} str_iter;

static int str_next(em_iter *base, em_value *out)
{
    str_iter *it = (str_iter *)base;
    return em_records_next(it->r, &it->cursor, out);
}

static void str_close(em_iter *base)
{
    em_records_free(((str_iter *)base)->r);
}

static str_iter strings(const char *a, const char *b)
{
    str_iter it = {{str_next, str_close}, em_records_new(), 0};
    em_put_cstr(it.r, a);
    if (b) em_put_cstr(it.r, b);
    CHECK_OK(em_records_error(it.r));
    return it;
}

/* The hook local mode installs, with the same coordinator calls. */
static int coordinator_hook(em_task *t)
{
    if (em__commit_can_commit(t->commit_arg, t->stage_id, t->stage_attempt, t->partition,
                              t->task_id))
        return 0;
    return em__set_error(EM_ECOMMITDENIED, "commit denied: partition %d of stage %d", t->partition,
                         t->stage_id);
}

static em_task fake_task(em_commit_coordinator *c, int64_t task_id, int partition, int attempt)
{
    em_task t = {0};
    t.task_id = task_id;
    t.stage_id = 3;
    t.partition = partition;
    t.attempt = attempt;
    t.can_commit = coordinator_hook;
    t.commit_arg = c;
    return t;
}

static int write_strings(const char *staging, em_task *t, const char *a, const char *b)
{
    str_iter it = strings(a, b);
    int rc = em_output_write_partition(staging, t->partition, t->attempt, &it.base, t, false);
    it.base.close(&it.base);
    return rc;
}

static void check_file(const char *dir, const char *name, const char *want)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n = 0;
    char *d = slurp(path, &n);
    CHECK_MSG(d, "%s missing", path);
    CHECK_MSG(n == strlen(want) && !memcmp(d, want, n), "%s holds '%s', want '%s'", path, d, want);
    free(d);
}

TEST(two_attempts_one_file)
{
    char out[1100];
    snprintf(out, sizeof out, "%s/out", test_tmpdir());
    char *staging = NULL;
    CHECK_OK(em_output_job_setup(out, "j1", &staging));
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);

    /* partition 0: attempt 0 asks first and commits; attempt 1 is denied */
    em_task a0 = fake_task(c, 10, 0, 0), a1 = fake_task(c, 11, 0, 1);
    CHECK_OK(write_strings(staging, &a0, "first", "attempt"));
    CHECK_EQ_INT(write_strings(staging, &a1, "second", NULL), EM_ECOMMITDENIED);
    CHECK(strstr(em_errmsg(), "commit denied"));
    em__commit_task_ended(c, 3, 0, 10, true);
    em__commit_task_ended(c, 3, 0, 11, false);

    /* partition 1: the authorised attempt fails after asking; the next one commits, a third
     * is denied */
    CHECK(em__commit_can_commit(c, 3, 0, 1, 20));
    em__commit_task_ended(c, 3, 1, 20, false);
    em_task b1 = fake_task(c, 21, 1, 1), b2 = fake_task(c, 22, 1, 2);
    CHECK_OK(write_strings(staging, &b1, "retry", NULL));
    CHECK_EQ_INT(write_strings(staging, &b2, "late", "copy"), EM_ECOMMITDENIED);
    /* the failed attempt may not commit afterwards either */
    em_task b0 = fake_task(c, 20, 1, 0);
    CHECK_EQ_INT(write_strings(staging, &b0, "zombie", NULL), EM_ECOMMITDENIED);

    CHECK_OK(em_output_job_commit(staging, out));
    strlist names = {0}, want = {0};
    CHECK_OK(list_dir(out, &names));
    sl_addf(&want, "_SUCCESS");
    sl_addf(&want, "part-00000");
    sl_addf(&want, "part-00001");
    sl_expect(&names, &want, false);
    check_file(out, "part-00000", "first\nattempt\n");
    check_file(out, "part-00001", "retry\n");
    sl_free(&names);
    sl_free(&want);
    em__commit_free(c);
    free(staging);
}

/* A copy still running when the job commits (staging renamed to the output): the job commits
 * inside its commit question, then it is denied. */
static char *late_staging, *late_out;

static int commit_job_then_ask(em_task *t)
{
    CHECK_OK(em_output_job_commit(late_staging, late_out));
    return coordinator_hook(t);
}

TEST(copy_denied_after_job_commit_leaves_nothing)
{
    char out[1100];
    snprintf(out, sizeof out, "%s/out", test_tmpdir());
    char *staging = NULL;
    CHECK_OK(em_output_job_setup(out, "j2", &staging));
    em_commit_coordinator *c = em__commit_new();
    CHECK(c);
    em_task winner = fake_task(c, 30, 0, 0), copy = fake_task(c, 31, 0, 1);
    CHECK_OK(write_strings(staging, &winner, "winner", NULL));
    em__commit_task_ended(c, 3, 0, 30, true);
    late_staging = staging;
    late_out = out;
    copy.can_commit = commit_job_then_ask;
    CHECK_EQ_INT(write_strings(staging, &copy, "loser", NULL), EM_ECOMMITDENIED);
    strlist names = {0}, want = {0};
    CHECK_OK(list_dir(out, &names));
    sl_addf(&want, "_SUCCESS");
    sl_addf(&want, "part-00000");
    sl_expect(&names, &want, false);
    check_file(out, "part-00000", "winner\n");
    check_no_entry_containing(test_tmpdir(), "_ember_staging_");
    sl_free(&names);
    sl_free(&want);
    em__commit_free(c);
    free(staging);
}

/* ---- kill --------------------------------------------------------------------------------------
 */

typedef struct kill_arg {
    char marker[1100]; /* the first task to run writes its id here */
} kill_arg;

enum { SLOW_RECORDS = 1000000 };

/* v -> (v % 10, 1). The first task to run (the one the test kills) takes 1 ms per record, so
 * that its partition of SLOW_RECORDS runs "forever"; any later task runs at full speed. */
static int slow_pair(em_task *t, em_value in, em_records *out, const void *arg)
{
    const kill_arg *a = arg;
    static _Thread_local int64_t task = -1;
    static _Thread_local bool slow;
    if (t->task_id != task) {
        task = t->task_id;
        slow = access(a->marker, F_OK) != 0;
        if (slow) {
            char id[32];
            snprintf(id, sizeof id, "%lld\n", (long long)t->task_id);
            put_file(a->marker, id);
        }
    }
    if (slow) usleep(1000);
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(in) % 10);
    em_put_int64(out, 1);
    em_put_end(out);
    return 0;
}

static int sum(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

typedef struct job {
    em_rdd *r;
    int rc;
    int64_t count;
    char msg[4096];
} job;

static void *run_count(void *arg)
{
    job *j = arg;
    j->rc = em_rdd_count(j->r, &j->count);
    snprintf(j->msg, sizeof j->msg, "%s", em_errmsg());
    return NULL;
}

/* Runs count() of a slow RDD on a thread, kills its task through the backend once it is
 * running, and checks that the killed attempt ended with EM_EKILLED. shuffle: the killed task
 * is a shuffle map task (reduceByKey) instead of a result task.
 *
 * The killed attempt would run for 1000 s: the job can only end because it was killed. With
 * ember.task.maxFailures=1 a counted failure would abort the job; the DAG scheduler does not
 * count a killed attempt (Spark's TaskKilled), runs the partition again (at full speed), and
 * the job succeeds with the right count. */
static void kill_through_backend(const char *master, bool shuffle)
{
    em_context *ctx = ctx_with(master, "ember.task.maxFailures", "1");
    CHECK(ctx);
    kill_arg a = {0};
    snprintf(a.marker, sizeof a.marker, "%s/running", test_tmpdir());
    em_rdd *r = em_rdd_map(em_range(ctx, 0, SLOW_RECORDS, 1, 1), slow_pair, &a, sizeof a);
    if (shuffle) r = em_rdd_reduce_by_key(r, sum, NULL, 0, 2);
    CHECK(r);
    job j = {.r = r};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_count, &j) == 0);
    long long task_id = wait_number(a.marker);
    em_backend *b = em__scheduler_backend(ctx->sched);
    CHECK(b->kill_task);
    b->kill_task(b, task_id, "killed by the test");
    pthread_join(th, NULL);
    CHECK_MSG(j.rc == 0, "job ended with: %s", j.msg);
    CHECK_EQ_INT(j.count, shuffle ? 10 : SLOW_RECORDS);
    em_context_stop(ctx);
}

TEST(kill_result_task_local)
{
    kill_through_backend("local[2]", false);
}

TEST(kill_map_task_local)
{
    kill_through_backend("local[2]", true);
}

TEST(kill_result_task_cluster)
{
    kill_through_backend("local-cluster[2,1,512]", false);
}

TEST(kill_map_task_cluster)
{
    kill_through_backend("local-cluster[2,1,512]", true);
}

static em_task_desc *count_desc(em_rdd *r, int64_t task_id)
{
    em_task_desc *d = em__calloc(1, sizeof *d);
    CHECK(d);
    d->task_id = task_id;
    d->rdd = r;
    d->partition = 0;
    d->fn = em__count_partition;
    return d;
}

static void *run_desc(void *arg)
{
    em_task_desc *d = arg;
    em__run_task(d->sched_data, d);
    return NULL;
}

TEST(run_task_status_is_killed)
{
    em_context *ctx = ctx_with("local[1]", NULL, NULL);
    CHECK(ctx);
    kill_arg a = {0};
    snprintf(a.marker, sizeof a.marker, "%s/running", test_tmpdir());

    /* not killed: the count of the partition */
    em_task_desc *d = count_desc(em_range(ctx, 0, 100, 1, 1), 900);
    em__run_task(ctx, d);
    CHECK_EQ_INT(d->status, 0);
    CHECK(d->result.len > 0);
    em__task_desc_free(d);

    /* killed before it starts: nothing is computed */
    d = count_desc(em_rdd_map(em_range(ctx, 0, SLOW_RECORDS, 1, 1), slow_pair, &a, sizeof a), 901);
    em__task_kill(&d->kill, "before it started");
    em__task_kill(&d->kill, "a second reason is ignored");
    em__run_task(ctx, d);
    CHECK_EQ_INT(d->status, EM_EKILLED);
    CHECK_EQ_STR(d->errmsg, "task killed: before it started");
    em__task_desc_free(d);
    CHECK(access(a.marker, F_OK) != 0); /* the user function never ran */

    /* killed while it runs */
    d = count_desc(em_rdd_map(em_range(ctx, 0, SLOW_RECORDS, 1, 1), slow_pair, &a, sizeof a), 902);
    d->sched_data = ctx;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_desc, d) == 0);
    CHECK_EQ_INT(wait_number(a.marker), 902);
    em__task_kill(&d->kill, "while it runs");
    pthread_join(th, NULL);
    CHECK_EQ_INT(d->status, EM_EKILLED);
    CHECK_EQ_STR(d->errmsg, "task killed: while it runs");
    em__task_desc_free(d);
    em_context_stop(ctx);
}
