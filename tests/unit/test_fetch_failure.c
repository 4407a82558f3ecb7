/* Unit tests of fetch-failure recovery: a reduce task that cannot read a map output (file
 * deleted, block corrupted, executor gone) makes the DAG scheduler unregister that output, run
 * the missing map tasks again and then the reducers; the answer equals the fault-free one
 * (computed in plain C), and only the lost map task runs again (counted).
 */
#include "test.h"
#include "rdd_helpers.h"

#include <ember/ember.h>

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { N = 20000, KEYS = 97, MAPS = 4, REDUCERS = 3 };

/* x -> (x % KEYS, 1), counting calls. */
static atomic_long mapped;
static int key_one(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    atomic_fetch_add(&mapped, 1);
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(in) % KEYS);
    em_put_int64(out, 1);
    em_put_end(out);
    return 0;
}

static int add_counts(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

/* The counts per key must be those of 0..N-1 modulo KEYS. */
static void check_counts(em_rdd *counts)
{
    em_records *r;
    CHECK_OK(em_rdd_collect(counts, &r));
    CHECK_EQ_INT(em_records_count(r), KEYS);
    int64_t want[KEYS] = {0};
    for (int i = 0; i < N; i++) want[i % KEYS]++;
    for (size_t i = 0; i < em_records_count(r); i++) {
        em_value v = em_records_at(r, i);
        int64_t k = em_value_int64(em_value_key(v)), c = em_value_int64(em_value_val(v));
        CHECK(k >= 0 && k < KEYS);
        CHECK_EQ_INT(c, want[k]);
    }
    em_records_free(r);
}

/* The first file named shuffle_0_<map>.data under dir (recursively), into out. */
static bool find_data_file(const char *dir, int map, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    char want[64];
    snprintf(want, sizeof want, "shuffle_0_%d.data", map);
    bool found = false;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode))
            found = find_data_file(path, map, out, cap);
        else if (!strcmp(e->d_name, want)) {
            snprintf(out, cap, "%s", path);
            found = true;
        }
    }
    closedir(d);
    return found;
}

static em_rdd *counts_of(em_context *ctx)
{
    em_rdd *pairs = em_rdd_map(em_range(ctx, 0, N, 1, MAPS), key_one, NULL, 0);
    return em_rdd_reduce_by_key(pairs, add_counts, NULL, 0, REDUCERS);
}

TEST(deleted_map_output_is_recomputed)
{
    em_context *ctx = ctx_with("local[2]", NULL, NULL);
    CHECK(ctx);
    em_rdd *counts = counts_of(ctx);
    check_counts(counts);
    CHECK_EQ_INT(atomic_load(&mapped), N);
    char path[4096];
    CHECK(find_data_file(test_tmpdir(), 1, path, sizeof path));
    CHECK_EQ_INT(unlink(path), 0);
    /* The second job reuses the map stage, finds map 1 unreadable, reruns only it. */
    check_counts(counts);
    CHECK_EQ_INT(atomic_load(&mapped), N + N / MAPS);
    em_context_stop(ctx);
}

TEST(corrupt_block_is_a_fetch_failure)
{
    em_context *ctx = ctx_with("local[2]", "ember.shuffle.compress", "false");
    CHECK(ctx);
    em_rdd *counts = counts_of(ctx);
    check_counts(counts);
    char path[4096];
    CHECK(find_data_file(test_tmpdir(), 2, path, sizeof path));
    FILE *f = fopen(path, "r+b");
    CHECK(f);
    CHECK_EQ_INT(fseek(f, 5, SEEK_SET), 0);
    int c = fgetc(f);
    CHECK_EQ_INT(fseek(f, 5, SEEK_SET), 0);
    fputc(c ^ 0x5a, f);
    CHECK_EQ_INT(fclose(f), 0);
    check_counts(counts);
    CHECK_EQ_INT(atomic_load(&mapped), N + N / MAPS);
    em_context_stop(ctx);
}

/* The pid of this process's child whose command line is name (a local-cluster daemon). */
static pid_t child_named(const char *name)
{
    DIR *d = opendir("/proc");
    CHECK(d);
    struct dirent *e;
    pid_t found = 0;
    while (!found && (e = readdir(d))) {
        char path[300], cmd[256] = "";
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        cmd[n] = '\0';
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        int ppid = 0;
        if (f) {
            if (fscanf(f, "%*d %*s %*c %d", &ppid) != 1) ppid = 0;
            fclose(f);
        }
        if (ppid == getpid() && !strcmp(cmd, name)) found = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return found;
}

/* A worker killed with -9 between two jobs: its shuffle service and executor are gone, the
 * second job's reducers fail to fetch, the lost map outputs are computed again on the other
 * worker's executor, and the answer is right. */
TEST(killed_worker_map_outputs_recomputed)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    CHECK_OK(em_conf_set(conf, "ember.worker.timeout", "1s"));
    CHECK_OK(em_conf_set(conf, "ember.shuffle.io.maxRetries", "1"));
    CHECK_OK(em_conf_set(conf, "ember.shuffle.io.retryWait", "50ms"));
    CHECK_OK(em_conf_set(conf, "ember.network.timeout", "2s"));
    CHECK_OK(em_conf_set(conf, "ember.executor.heartbeatInterval", "200ms"));
    em_context *ctx = NULL;
    CHECK_OK(em_context_create("local-cluster[2,1,256]", "test", conf, &ctx));
    em_conf_free(conf);
    em_rdd *counts = counts_of(ctx);
    check_counts(counts);
    pid_t w = child_named("ember-local-worker-1");
    CHECK_MSG(w > 0, "no ember-local-worker-1 child");
    CHECK_EQ_INT(kill(w, SIGKILL), 0);
    check_counts(counts);
    em_context_stop(ctx);
}
