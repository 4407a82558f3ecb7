/* Tests of shuffle across processes: the block transfer service (src/net/block_server.c), the
 * block fetcher and remote reads of the shuffle reader (src/shuffle/fetch.c, reader.c), and the
 * map output tracker's locations and codec (src/shuffle/tracker.c).
 *
 * Real sockets on 127.0.0.1 and real second processes: each block server runs in a forked
 * child (its stderr, where it logs, goes to a file the test reads). Map outputs are written with
 * the shuffle writer; every reducer is read through the reader with remote locations (whose
 * directory does not exist on this side, so nothing can be read locally by mistake) and checked
 * against an expectation computed from the generator alone: record i has key key_of(i) and
 * value i, and goes to reducer key % R. Waits are bounded by the fetcher's timeouts and the
 * runner's alarm; there are no timing assertions. */
#include "test.h"

#include "base/task.h"
#include "net/block_server.h"
#include "net/handshake.h"
#include "record/record_ext.h"
#include "shuffle/fetcher.h"
#include "shuffle/shuffle.h"
#include "shuffle/tracker.h"
#include "storage/memory.h"

#include <ember/conf.h>
#include <ember/errors.h>
#include <ember/record.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#define APP "app-test"

/* ---- block servers in child processes ----------------------------------------------------- */

typedef struct server_proc {
    pid_t pid;
    int port;
    int ctl; /* write end of the control pipe: closing it stops the server */
    char log[1100];
} server_proc;

static server_proc *servers[8];
static int nservers;

/* Forks a block server on 127.0.0.1:port (0: any) serving dir for executor exec_id of APP
 * (and of "other-app" as executor 1, with the same dir). secret: NULL for none. */
static server_proc *start_server(const char *dir, int exec_id, const char *secret, int port)
{
    server_proc *sp = calloc(1, sizeof *sp);
    snprintf(sp->log, sizeof sp->log, "%s/server-%d-%d.log", test_tmpdir(), exec_id, nservers);
    int portp[2], ctl[2];
    CHECK(pipe(portp) == 0 && pipe(ctl) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < nservers; i++) close(servers[i]->ctl);
        close(portp[0]);
        close(ctl[1]);
        int lf = open(sp->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (lf >= 0) dup2(lf, 2);
        em_conf *conf = em_conf_new();
        if (secret) em_conf_set(conf, "ember.authenticate.secret", secret);
        em_conf_set(conf, "ember.network.timeout", "20s");
        em_block_server *s;
        int p = -1;
        if (em_block_server_start(conf, "127.0.0.1", port, &s) == 0) {
            em_block_server_set_locator(s, em_shuffle_locate_blocks);
            em_block_server_add_dir(s, APP, exec_id, dir);
            em_block_server_add_dir(s, "other-app", 1, dir);
            p = em_block_server_port(s);
        } else {
            fprintf(stderr, "server start failed: %s\n", em_errmsg());
        }
        if (write(portp[1], &p, sizeof p) != sizeof p) _exit(3);
        if (p < 0) _exit(2);
        char c;
        while (read(ctl[0], &c, 1) > 0) {
        }
        em_block_server_stop(s);
        em_conf_free(conf);
        _exit(0);
    }
    close(portp[1]);
    close(ctl[0]);
    CHECK(read(portp[0], &sp->port, sizeof sp->port) == sizeof sp->port);
    close(portp[0]);
    CHECK_MSG(sp->port > 0, "block server did not start (see %s)", sp->log);
    sp->pid = pid;
    sp->ctl = ctl[1];
    servers[nservers++] = sp;
    return sp;
}

static void stop_server(server_proc *sp)
{
    if (sp->ctl >= 0) close(sp->ctl);
    sp->ctl = -1;
    int st;
    CHECK(waitpid(sp->pid, &st, 0) == sp->pid);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "block server exited badly (status %d)", st);
}

static void kill_server(server_proc *sp)
{
    kill(sp->pid, SIGKILL);
    int st;
    waitpid(sp->pid, &st, 0);
    if (sp->ctl >= 0) close(sp->ctl);
    sp->ctl = -1;
}

/* The server's log contains s. */
static int log_has(const server_proc *sp, const char *s)
{
    FILE *f = fopen(sp->log, "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, s) != NULL;
    fclose(f);
    return found;
}

/* ---- tasks, partitioner, aggregator -------------------------------------------------------- */

static em_task *make_task(int64_t budget, int exec_id, em_block_fetcher *f, em_conf *conf)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* reader threads make tasks too */
    static int n;
    pthread_mutex_lock(&mu);
    em_task *t = calloc(1, sizeof *t);
    t->task_id = 100 + n;
    t->exec_id = exec_id;
    t->conf = conf;
    t->fetcher = f;
    t->memory = em_memory_manager_new(budget, 0.6, 0.5);
    static char dirs[16][1100];
    snprintf(dirs[n % 16], sizeof dirs[0], "%s/local%d", test_tmpdir(), n);
    mkdir(dirs[n % 16], 0777);
    t->local_dir = dirs[n % 16];
    n++;
    pthread_mutex_unlock(&mu);
    CHECK(t->memory);
    return t;
}

static void free_task(em_task *t)
{
    CHECK_EQ_INT(em_memory_execution_used(t->memory), 0);
    em_memory_manager_free(t->memory);
    free(t);
}

static int part_fn(const void *ctx, em_value key)
{
    int r = *(const int *)ctx;
    return (int)(em_value_int64(key) % r);
}

static int sum_create(void *ctx, em_task *t, em_value v, em_records *out)
{
    (void)ctx, (void)t;
    em_put_int64(out, em_value_int64(v));
    return 0;
}
static int sum_merge(void *ctx, em_task *t, em_value a, em_value b, em_records *out)
{
    (void)ctx, (void)t;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}
static const em_aggregator sum_agg = {sum_create, sum_merge, sum_merge, NULL};

/* ---- the data set ------------------------------------------------------------------------- *
 * M maps, R reducers. Record i (0 <= i < N) goes to map map_of(i) with key key_of(i):
 *   - maps 0, 1, 2: keys uniform in [0, NKEYS)            (every reducer's block non-empty)
 *   - map 3: only keys = 2 (mod R)                         (four empty blocks of five)
 *   - map 4: no records                                    (all blocks empty)
 *   - map 5: a quarter of all records, keys = 1 (mod R)    (one block far above the window)
 */
#define M     6
#define R     5
#define N     40000
#define NKEYS 400

static int map_of(int64_t i)
{
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    int sel = (int)((h >> 33) % 8);
    if (sel < 2) return 5;       /* a quarter */
    if (sel == 2) return 3;      /* an eighth */
    return (int)((h >> 40) % 3); /* maps 0..2 */
}

static int64_t key_of(int64_t i)
{
    uint64_t h = (uint64_t)(i + 7) * 0xC2B2AE3D27D4EB4Full;
    int64_t k = (int64_t)((h >> 20) % NKEYS);
    int m = map_of(i);
    if (m == 3) return k - k % R + 2;
    if (m == 5) return k - k % R + 1;
    return k;
}

static int R_ctx = R;

/* Writes the outputs of shuffle sid into dir; fills sizes[m][r] from the map statuses. */
static void write_outputs(em_task *t, const char *dir, int sid, int64_t sizes[M][R])
{
    em_records *rec = em_records_new();
    for (int m = 0; m < M; m++) {
        em_shuffle_write_spec spec = {
            .shuffle_id = sid, .map_id = m, .partitioner = {R, part_fn, &R_ctx}, .dir = dir};
        em_shuffle_writer *w;
        CHECK_OK(em_shuffle_writer_open(&spec, t, &w));
        for (int64_t i = 0; i < N; i++) {
            if (map_of(i) != m) continue;
            em_records_clear(rec);
            em_put_tuple_begin(rec);
            em_put_int64(rec, key_of(i));
            em_put_int64(rec, i);
            em_put_end(rec);
            CHECK_OK(em_shuffle_writer_add(w, em_records_at(rec, 0)));
        }
        em_map_status st;
        CHECK_OK(em_shuffle_writer_commit(w, &st));
        for (int r = 0; r < R; r++) sizes[m][r] = st.block_sizes[r];
        em_map_status_clear(&st);
    }
    em_records_free(rec);
}

/* The expectation, from the generator alone. */
typedef struct expect {
    int64_t sum[NKEYS], cnt[NKEYS];
    int64_t records[R];
} expect;

static void make_expect(expect *e)
{
    memset(e, 0, sizeof *e);
    for (int64_t i = 0; i < N; i++) {
        int64_t k = key_of(i);
        e->sum[k] += i;
        e->cnt[k]++;
        e->records[k % R]++;
    }
}

/* Reads reducer r of the shuffle whose locations tr holds, in mode, and checks it. */
static void check_reducer(em_map_output_tracker *tr, int sid, int r, em_shuffle_read_mode mode,
                          em_task *t, const expect *e)
{
    em_map_locations locs;
    CHECK_OK(em_map_outputs_locations(tr, sid, r, &locs));
    em_shuffle_read_spec spec = {.shuffle_id = sid,
                                 .reducer = r,
                                 .num_maps = locs.num_maps,
                                 .locs = locs.locs,
                                 .block_sizes = locs.sizes,
                                 .mode = mode,
                                 .agg = &sum_agg};
    em_iter *it;
    CHECK_OK(em_shuffle_reader_open(&spec, t, &it));
    em_map_locations_free(&locs);
    uint8_t *seen = calloc(N, 1), *kseen = calloc(NKEYS, 1); /* per call: threads share this */
    em_value rec;
    int rc;
    int64_t n = 0, prev = -1;
    while ((rc = em_iter_next(it, &rec)) == EM_ROW) {
        int64_t k = em_value_int64(em_value_key(rec));
        CHECK(k >= 0 && k < NKEYS);
        CHECK_EQ_INT(k % R, r);
        if (mode == EM_READ_AS_STORED || mode == EM_READ_SORTED) {
            int64_t id = em_value_int64(em_value_val(rec));
            CHECK(id >= 0 && id < N && !seen[id]);
            seen[id] = 1;
            CHECK_EQ_INT(key_of(id), k);
            if (mode == EM_READ_SORTED) CHECK(k >= prev);
            prev = k;
            n++;
        } else if (mode == EM_READ_AGGREGATE) {
            CHECK(!kseen[k]);
            kseen[k] = 1;
            CHECK_EQ_INT(em_value_int64(em_value_val(rec)), e->sum[k]);
            n += e->cnt[k];
        } else {
            CHECK(!kseen[k] && k > prev);
            kseen[k] = 1;
            prev = k;
            em_value list = em_value_val(rec);
            em_elems el;
            em_elems_init(&el, list);
            em_value v;
            int64_t c = 0, sum = 0;
            while ((rc = em_elems_next(&el, &v)) == EM_ROW) {
                int64_t id = em_value_int64(v);
                CHECK(id >= 0 && id < N && !seen[id]);
                seen[id] = 1;
                CHECK_EQ_INT(key_of(id), k);
                c++;
                sum += id;
            }
            CHECK_OK(rc);
            CHECK_EQ_INT(c, e->cnt[k]);
            CHECK_EQ_INT(sum, e->sum[k]);
            n += c;
        }
    }
    CHECK_OK(rc);
    em_iter_close(it);
    CHECK_EQ_INT(n, e->records[r]);
    free(seen);
    free(kseen);
}

static em_conf *fetch_conf(const char *in_flight, const char *secret)
{
    em_conf *c = em_conf_new();
    CHECK(c);
    if (in_flight) CHECK_OK(em_conf_set(c, "ember.shuffle.reducer.maxSizeInFlight", in_flight));
    if (secret) CHECK_OK(em_conf_set(c, "ember.authenticate.secret", secret));
    CHECK_OK(em_conf_set(c, "ember.network.timeout", "10s"));
    CHECK_OK(em_conf_set(c, "ember.shuffle.io.maxRetries", "2"));
    CHECK_OK(em_conf_set(c, "ember.shuffle.io.retryWait", "20ms"));
    return c;
}

/* Registers the M outputs of sid at locs[m]. */
static void register_outputs(em_map_output_tracker *tr, int sid, int64_t sizes[M][R],
                             const em_block_location *locs)
{
    CHECK_OK(em_map_outputs_register_shuffle(tr, sid, M));
    for (int m = 0; m < M; m++) {
        /* The tracker takes the sizes and frees them with em__free. */
        em_map_status st = {.shuffle_id = sid, .map_id = m, .num_reducers = R};
        st.block_sizes = em__malloc(R * sizeof *st.block_sizes);
        for (int r = 0; r < R; r++) st.block_sizes[r] = sizes[m][r];
        CHECK_OK(em_map_outputs_register(tr, sid, m, &locs[m], &st));
        CHECK(st.block_sizes == NULL);
    }
}

/* ---- tests -------------------------------------------------------------------------------- */

/* Two servers (executors 1 and 3) and local outputs (executor 2, the task's own, with a port
 * that leads nowhere), every reducer in every read mode, with a roomy and a tiny memory budget;
 * the window is 16 KiB, far below map 5's blocks. */
TEST(remote_read_every_mode)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    em_conf *conf = fetch_conf("16k", NULL);
    int64_t sizes[M][R];
    {
        em_task *w = make_task(256 << 20, 1, NULL, conf);
        write_outputs(w, dir, 4, sizes);
        free_task(w);
    }
    int empty = 0, big = 0;
    for (int m = 0; m < M; m++)
        for (int r = 0; r < R; r++) {
            empty += sizes[m][r] == 0;
            big += sizes[m][r] > 16 * 1024;
        }
    CHECK_MSG(empty >= R + R - 1, "only %d empty blocks", empty);
    CHECK_MSG(big >= 1, "no block above the window");
    server_proc *a = start_server(dir, 1, NULL, 0), *b = start_server(dir, 3, NULL, 0);
    em_block_location locs[M] = {
        {1, "127.0.0.1", a->port, "/nonexistent/remote"},
        {2, "127.0.0.1", 1, dir}, /* the task's own executor: read from disk */
        {3, "127.0.0.1", b->port, "/nonexistent/remote"},
        {2, "127.0.0.1", 1, dir},
        {1, "127.0.0.1", a->port, "/nonexistent/remote"},
        {3, "127.0.0.1", b->port, "/nonexistent/remote"},
    };
    em_map_output_tracker *tr = em_map_output_tracker_new();
    register_outputs(tr, 4, sizes, locs);
    em_block_fetcher *f;
    CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f));
    static expect e;
    make_expect(&e);
    for (int tiny = 0; tiny < 2; tiny++) {
        em_task *t = make_task(tiny ? 64 << 10 : 256 << 20, 2, f, conf);
        for (int mode = EM_READ_AS_STORED; mode <= EM_READ_GROUPED; mode++)
            for (int r = 0; r < R; r++) check_reducer(tr, 4, r, (em_shuffle_read_mode)mode, t, &e);
        if (tiny) CHECK_MSG(t->metrics.spill_count > 0, "the tiny budget never spilled");
        CHECK(t->metrics.shuffle_bytes_read > 0);
        free_task(t);
    }
    em_block_fetcher_stats st;
    em_block_fetcher_stats_get(f, &st);
    int remote_blocks = 0;
    for (int m = 0; m < M; m++)
        for (int r = 0; r < R; r++) remote_blocks += locs[m].exec_id != 2 && sizes[m][r] > 0;
    CHECK_EQ_INT(st.blocks, (uint64_t)remote_blocks * 4 * 2); /* 4 modes, 2 budgets */
    CHECK_EQ_INT(st.retries, 0);
    CHECK_MSG(st.peak_bytes_in_flight <= 16 * 1024, "%llu bytes in flight",
              (unsigned long long)st.peak_bytes_in_flight);
    CHECK_MSG(st.peak_blocks_in_flight >= 2, "never more than one block in flight");
    CHECK_MSG(st.reused > 0 && st.connections <= 4, "%llu connections, %llu reuses",
              (unsigned long long)st.connections, (unsigned long long)st.reused);
    em_block_fetcher_free(f);
    em_map_output_tracker_free(tr);
    stop_server(a);
    stop_server(b);
    /* Fetchers closing their pooled connections is not an incident. */
    CHECK_MSG(!log_has(a, "WARN") && !log_has(b, "WARN"), "warnings in %s or %s", a->log, b->log);
    em_conf_free(conf);
}

/* Several task threads share one fetcher (and its pool). */
typedef struct thread_arg {
    em_map_output_tracker *tr;
    em_block_fetcher *f;
    em_conf *conf;
    const expect *e;
    int which;
} thread_arg;

static void *reader_thread(void *p)
{
    thread_arg *a = p;
    em_task *t = make_task(32 << 20, 9, a->f, a->conf);
    for (int round = 0; round < 3; round++)
        for (int r = 0; r < R; r++)
            check_reducer(a->tr, 4, (r + a->which) % R,
                          (a->which + round) % 2 ? EM_READ_AGGREGATE : EM_READ_AS_STORED, t, a->e);
    free_task(t);
    return NULL;
}

TEST(concurrent_readers_share_a_fetcher)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    em_conf *conf = fetch_conf("64k", NULL);
    int64_t sizes[M][R];
    em_task *w = make_task(256 << 20, 1, NULL, conf);
    write_outputs(w, dir, 4, sizes);
    free_task(w);
    server_proc *a = start_server(dir, 1, NULL, 0);
    em_block_location locs[M];
    for (int m = 0; m < M; m++) locs[m] = (em_block_location){1, "127.0.0.1", a->port, "/none"};
    em_map_output_tracker *tr = em_map_output_tracker_new();
    register_outputs(tr, 4, sizes, locs);
    em_block_fetcher *f;
    CHECK_OK(em_block_fetcher_new(conf, APP, 9, &f));
    static expect e;
    make_expect(&e);
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){tr, f, conf, &e, i};
        CHECK(pthread_create(&th[i], NULL, reader_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    em_block_fetcher_stats st;
    em_block_fetcher_stats_get(f, &st);
    CHECK(st.connections >= 1 && st.connections <= 8 && st.reused > 0);
    em_block_fetcher_free(f);
    em_map_output_tracker_free(tr);
    stop_server(a);
    em_conf_free(conf);
}

/* Reads reducer r (AS_STORED) to its end; returns the final code. */
static int drain(em_map_output_tracker *tr, int sid, int r, em_task *t)
{
    em_map_locations locs;
    CHECK_OK(em_map_outputs_locations(tr, sid, r, &locs));
    em_shuffle_read_spec spec = {.shuffle_id = sid,
                                 .reducer = r,
                                 .num_maps = locs.num_maps,
                                 .locs = locs.locs,
                                 .block_sizes = locs.sizes};
    em_iter *it;
    int rc = em_shuffle_reader_open(&spec, t, &it);
    em_map_locations_free(&locs);
    if (rc) return rc;
    em_value v;
    while ((rc = em_iter_next(it, &v)) == EM_ROW) {
    }
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", em_errmsg());
    em_iter_close(it);
    em__set_error(rc, "%s", msg); /* keep the message past close */
    return rc;
}

TEST(corrupt_block_names_block_and_host)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    for (int ci = 0; ci < 2; ci++) {
        em_conf *conf = fetch_conf(NULL, NULL);
        if (ci) CHECK_OK(em_conf_set(conf, "ember.io.compression.codec", "none"));
        int64_t sizes[M][R];
        em_task *w = make_task(256 << 20, 1, NULL, conf);
        write_outputs(w, dir, 6 + ci, sizes);
        free_task(w);
        /* Flip one bit in the middle of map 0's block of reducer 3. */
        char data[1300];
        em_shuffle_file_path(data, sizeof data, dir, 6 + ci, 0, "data");
        int64_t off = sizes[0][0] + sizes[0][1] + sizes[0][2] + sizes[0][3] / 2;
        FILE *fp = fopen(data, "r+b");
        CHECK(fp);
        fseek(fp, off, SEEK_SET);
        int c = fgetc(fp);
        fseek(fp, off, SEEK_SET);
        fputc(c ^ 0x10, fp);
        fclose(fp);
        server_proc *a = start_server(dir, 1, NULL, 0);
        em_block_location locs[M];
        for (int m = 0; m < M; m++) locs[m] = (em_block_location){1, "127.0.0.1", a->port, "/x"};
        em_map_output_tracker *tr = em_map_output_tracker_new();
        register_outputs(tr, 6 + ci, sizes, locs);
        em_block_fetcher *f;
        CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f));
        em_task *t = make_task(64 << 20, 2, f, conf);
        CHECK_OK(drain(tr, 6 + ci, 2, t)); /* other reducers are fine */
        int rc = drain(tr, 6 + ci, 3, t);
        CHECK_EQ_INT(rc, EM_ECORRUPT);
        char want[200];
        snprintf(want, sizeof want, "block shuffle_%d_0_3 from 127.0.0.1:%d", 6 + ci, a->port);
        CHECK_MSG(strstr(em_errmsg(), want) != NULL, "message: %s", em_errmsg());
        printf("corrupt block: %s\n", em_errmsg());
        free_task(t);
        em_block_fetcher_free(f);
        em_map_output_tracker_free(tr);
        stop_server(a);
        em_conf_free(conf);
    }
}

/* Many maps of ~100 KiB blocks, a 1 KiB window (each block requested alone); the server is
 * killed after the first records: the read fails with EM_EFETCH after the retries. */
TEST(server_killed_mid_read_is_a_fetch_failure)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    em_conf *conf = fetch_conf("1k", NULL);
    CHECK_OK(em_conf_set(conf, "ember.io.compression.codec", "none"));
    const int maps = 20;
    em_task *w = make_task(256 << 20, 1, NULL, conf);
    em_map_output_tracker *tr = em_map_output_tracker_new();
    CHECK_OK(em_map_outputs_register_shuffle(tr, 7, maps));
    em_records *rec = em_records_new();
    static int one = 1;
    for (int m = 0; m < maps; m++) {
        em_shuffle_write_spec spec = {
            .shuffle_id = 7, .map_id = m, .partitioner = {1, part_fn, &one}, .dir = dir};
        em_shuffle_writer *wr;
        CHECK_OK(em_shuffle_writer_open(&spec, w, &wr));
        for (int64_t i = 0; i < 6000; i++) {
            em_records_clear(rec);
            em_put_tuple_begin(rec);
            em_put_int64(rec, i);
            em_put_int64(rec, i * m);
            em_put_end(rec);
            CHECK_OK(em_shuffle_writer_add(wr, em_records_at(rec, 0)));
        }
        em_map_status st;
        CHECK_OK(em_shuffle_writer_commit(wr, &st));
        em_map_status_clear(&st);
    }
    em_records_free(rec);
    free_task(w);
    server_proc *a = start_server(dir, 1, NULL, 0);
    for (int m = 0; m < maps; m++) {
        /* sizes from the index files, through the locator itself */
        uint64_t sum;
        em_block_range range = {.checksums = &sum};
        CHECK_OK(em_shuffle_locate_blocks(dir, 7, m, 0, 1, &range));
        close(range.fd);
        em_map_status st = {.num_reducers = 1};
        st.block_sizes = em__malloc(sizeof(int64_t));
        st.block_sizes[0] = (int64_t)range.length;
        em_block_location loc = {1, "127.0.0.1", a->port, "/x"};
        CHECK_OK(em_map_outputs_register(tr, 7, m, &loc, &st));
    }
    em_block_fetcher *f;
    CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f));
    em_task *t = make_task(64 << 20, 2, f, conf);
    em_map_locations locs;
    CHECK_OK(em_map_outputs_locations(tr, 7, 0, &locs));
    em_shuffle_read_spec spec = {
        .shuffle_id = 7, .num_maps = maps, .locs = locs.locs, .block_sizes = locs.sizes};
    em_iter *it;
    CHECK_OK(em_shuffle_reader_open(&spec, t, &it));
    em_map_locations_free(&locs);
    em_value v;
    int rc, n = 0;
    while ((rc = em_iter_next(it, &v)) == EM_ROW && ++n < 100) {
    }
    CHECK_EQ_INT(rc, EM_ROW);
    kill_server(a);
    while ((rc = em_iter_next(it, &v)) == EM_ROW) n++;
    CHECK_EQ_INT(rc, EM_EFETCH);
    CHECK(n < maps * 6000);
    printf("server killed: %s\n", em_errmsg());
    char want[100];
    snprintf(want, sizeof want, "127.0.0.1:%d", a->port);
    const char *msg = em_errmsg();
    CHECK_MSG(strstr(msg, "shuffle 7 map ") && strstr(msg, "reducer 0") && strstr(msg, want) &&
                  strstr(msg, "2 retries"),
              "message: %s", msg);
    em_iter_close(it);
    em_block_fetcher_stats st;
    em_block_fetcher_stats_get(f, &st);
    CHECK_EQ_INT(st.retries, 2);
    free_task(t);
    em_block_fetcher_free(f);
    em_map_output_tracker_free(tr);
    em_conf_free(conf);
}

/* A block of ~32 MiB (more than the socket buffers hold); the server is killed after the first
 * records and restarted on the same port: the fetch resumes (the block is fetched again and the
 * bytes already read are skipped) and every record arrives exactly once. */
TEST(retry_resumes_a_block_midway)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    em_conf *conf = fetch_conf(NULL, NULL);
    CHECK_OK(em_conf_set(conf, "ember.io.compression.codec", "none"));
    CHECK_OK(em_conf_set(conf, "ember.shuffle.io.maxRetries", "20"));
    CHECK_OK(em_conf_set(conf, "ember.shuffle.io.retryWait", "100ms"));
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const int64_t n = 60000;
#else
    const int64_t n = 200000;
#endif
    em_task *w = make_task(256 << 20, 1, NULL, conf);
    static int one = 1;
    em_shuffle_write_spec ws = {
        .shuffle_id = 8, .map_id = 0, .partitioner = {1, part_fn, &one}, .dir = dir};
    em_shuffle_writer *wr;
    CHECK_OK(em_shuffle_writer_open(&ws, w, &wr));
    em_records *rec = em_records_new();
    char pad[160];
    for (int64_t i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof pad; j++) pad[j] = (char)('a' + (i + (int64_t)j) % 26);
        em_records_clear(rec);
        em_put_tuple_begin(rec);
        em_put_int64(rec, i);
        em_put_str(rec, pad, sizeof pad);
        em_put_end(rec);
        CHECK_OK(em_shuffle_writer_add(wr, em_records_at(rec, 0)));
    }
    em_records_free(rec);
    em_map_status st;
    CHECK_OK(em_shuffle_writer_commit(wr, &st));
    free_task(w);
    server_proc *a = start_server(dir, 1, NULL, 0);
    int port = a->port;
    em_block_location loc = {1, "127.0.0.1", port, "/x"};
    int64_t size = st.block_sizes[0];
    em_map_status_clear(&st);
    em_shuffle_read_spec spec = {
        .shuffle_id = 8, .num_maps = 1, .locs = &loc, .block_sizes = &size};
    em_block_fetcher *f;
    CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f));
    em_task *t = make_task(64 << 20, 2, f, conf);
    em_iter *it;
    CHECK_OK(em_shuffle_reader_open(&spec, t, &it));
    uint8_t *seen = calloc((size_t)n, 1);
    em_value v;
    int rc;
    int64_t got = 0;
    while ((rc = em_iter_next(it, &v)) == EM_ROW) {
        int64_t k = em_value_int64(em_value_key(v));
        CHECK(k >= 0 && k < n && !seen[k]);
        seen[k] = 1;
        size_t len;
        const char *s = em_value_str(em_value_val(v), &len);
        CHECK(len == sizeof pad && s[0] == (char)('a' + k % 26));
        if (++got == 1000) {
            kill_server(a);
            start_server(dir, 1, NULL, port);
        }
    }
    CHECK_OK(rc);
    CHECK_EQ_INT(got, n);
    em_iter_close(it);
    em_block_fetcher_stats fst;
    em_block_fetcher_stats_get(f, &fst);
    CHECK_MSG(fst.retries >= 1, "no retry happened");
    CHECK_MSG(fst.skipped > 0, "the failure did not happen inside the block");
    CHECK_EQ_INT(fst.blocks, 1);
    printf("retry_resumes_a_block_midway: %lld-byte block, %llu retries, %llu bytes skipped\n",
           (long long)size, (unsigned long long)fst.retries, (unsigned long long)fst.skipped);
    free(seen);
    free_task(t);
    em_block_fetcher_free(f);
    stop_server(servers[nservers - 1]);
    em_conf_free(conf);
}

/* A fetcher that abandons a large block mid-way (its connection closes with the server still
 * sending) costs the server that connection only: the process survives (sendfile's SIGPIPE),
 * serves the next fetch, and stops cleanly. */
TEST(abandoned_block_leaves_the_server_serving)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    em_conf *conf = fetch_conf(NULL, NULL);
    CHECK_OK(em_conf_set(conf, "ember.io.compression.codec", "none"));
    em_task *w = make_task(256 << 20, 1, NULL, conf);
    static int one = 1;
    em_shuffle_write_spec ws = {
        .shuffle_id = 9, .map_id = 0, .partitioner = {1, part_fn, &one}, .dir = dir};
    em_shuffle_writer *wr;
    CHECK_OK(em_shuffle_writer_open(&ws, w, &wr));
    em_records *rec = em_records_new();
    char pad[200];
    memset(pad, 'p', sizeof pad);
    const int64_t n = 100000; /* ~21 MB: more than the socket buffers hold */
    for (int64_t i = 0; i < n; i++) {
        em_records_clear(rec);
        em_put_tuple_begin(rec);
        em_put_int64(rec, i);
        em_put_str(rec, pad, sizeof pad);
        em_put_end(rec);
        CHECK_OK(em_shuffle_writer_add(wr, em_records_at(rec, 0)));
    }
    em_records_free(rec);
    em_map_status st;
    CHECK_OK(em_shuffle_writer_commit(wr, &st));
    int64_t size = st.block_sizes[0];
    em_map_status_clear(&st);
    free_task(w);
    server_proc *a = start_server(dir, 1, NULL, 0);
    em_block_location loc = {1, "127.0.0.1", a->port, "/x"};
    em_shuffle_read_spec spec = {
        .shuffle_id = 9, .num_maps = 1, .locs = &loc, .block_sizes = &size};
    em_block_fetcher *f;
    CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f));
    em_task *t = make_task(64 << 20, 2, f, conf);
    for (int round = 0; round < 3; round++) {
        em_iter *it;
        CHECK_OK(em_shuffle_reader_open(&spec, t, &it));
        em_value v;
        int rc = 0;
        int64_t got = 0;
        while ((round == 2 || got < 10) && (rc = em_iter_next(it, &v)) == EM_ROW) got++;
        em_iter_close(it); /* rounds 0 and 1: abandoned after 10 records */
        if (round == 2) {
            CHECK_OK(rc);
            CHECK_EQ_INT(got, n);
        }
    }
    em_block_fetcher_stats fst;
    em_block_fetcher_stats_get(f, &fst);
    CHECK_EQ_INT(fst.connections, 3); /* an abandoned connection is never pooled */
    CHECK_EQ_INT(fst.blocks, 1);
    free_task(t);
    em_block_fetcher_free(f);
    stop_server(a); /* exits 0: not killed by SIGPIPE */
    em_conf_free(conf);
}

TEST(authentication_refuses_wrong_or_missing_secret)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    int64_t sizes[M][R];
    em_conf *wconf = fetch_conf(NULL, NULL);
    em_task *w = make_task(256 << 20, 1, NULL, wconf);
    write_outputs(w, dir, 4, sizes);
    free_task(w);
    server_proc *a = start_server(dir, 1, "s3cret", 0);
    em_block_location locs[M];
    for (int m = 0; m < M; m++) locs[m] = (em_block_location){1, "127.0.0.1", a->port, "/x"};
    em_map_output_tracker *tr = em_map_output_tracker_new();
    register_outputs(tr, 4, sizes, locs);
    static expect e;
    make_expect(&e);
    const char *secrets[3] = {NULL, "wrong", "s3cret"};
    for (int i = 0; i < 3; i++) {
        em_conf *conf = fetch_conf(NULL, secrets[i]);
        em_block_fetcher *f;
        CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f));
        em_task *t = make_task(64 << 20, 2, f, conf);
        if (i < 2) {
            int rc = drain(tr, 4, 0, t);
            CHECK_MSG(rc == EM_EACCES, "rc %d: %s", rc, em_errmsg());
            CHECK_MSG(strstr(em_errmsg(), "refused"), "message: %s", em_errmsg());
            printf("secret %s: %s\n", secrets[i] ? secrets[i] : "(none)", em_errmsg());
            em_block_fetcher_stats st;
            em_block_fetcher_stats_get(f, &st);
            CHECK_EQ_INT(st.retries, 0);
            CHECK_EQ_INT(st.connections, 0);
        } else {
            for (int r = 0; r < R; r++) check_reducer(tr, 4, r, EM_READ_AGGREGATE, t, &e);
        }
        free_task(t);
        em_block_fetcher_free(f);
        em_conf_free(conf);
    }
    stop_server(a);
    CHECK_MSG(log_has(a, "refused connection from 127.0.0.1:"), "no refusal logged in %s", a->log);
    CHECK(log_has(a, "wrong proof"));
    em_map_output_tracker_free(tr);
    em_conf_free(wconf);
}

/* A raw connection to the server: returns the socket. handshake: run the fetcher's side. */
static int raw_connect(int port, int handshake, const char *app)
{
    int fd;
    CHECK_OK(em_sock_connect("127.0.0.1", port, em_sock_deadline(5000), &fd));
    if (handshake) {
        em_handshake_config hc = {.role = EM_ROLE_FETCHER,
                                  .app_id = app,
                                  .max_frame = EM_FRAME_DEFAULT_MAX,
                                  .initiator = 1,
                                  .deadline = em_sock_deadline(5000)};
        em_handshake_peer peer;
        CHECK_OK(em_sock_handshake(fd, &hc, "server", &peer));
    }
    return fd;
}

/* The server closed fd: reading gives EOF or a reset within 5 s (skipping what it sent). */
static int closed_by_server(int fd)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1) return 0;
        char buf[4096];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) return 1;
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

TEST(bad_frames_close_only_their_connection)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    int64_t sizes[M][R];
    em_conf *conf = fetch_conf(NULL, NULL);
    em_task *w = make_task(256 << 20, 1, NULL, conf);
    write_outputs(w, dir, 4, sizes);
    free_task(w);
    server_proc *a = start_server(dir, 1, NULL, 0);
    em_block_location locs[M];
    for (int m = 0; m < M; m++) locs[m] = (em_block_location){1, "127.0.0.1", a->port, "/x"};
    em_map_output_tracker *tr = em_map_output_tracker_new();
    register_outputs(tr, 4, sizes, locs);
    static expect e;
    make_expect(&e);
    em_block_fetcher *f;
    CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f));
    em_task *t = make_task(64 << 20, 2, f, conf);
    check_reducer(tr, 4, 0, EM_READ_AS_STORED, t, &e); /* leaves a pooled connection */

    /* Garbage instead of a hello. */
    int g = raw_connect(a->port, 0, NULL);
    const char junk[] = "GET / HTTP/1.0\r\n\r\n";
    CHECK(send(g, junk, sizeof junk - 1, 0) > 0);
    CHECK(closed_by_server(g));
    close(g);
    /* An oversize frame instead of a hello. */
    g = raw_connect(a->port, 0, NULL);
    uint8_t big[8];
    put32(big, 0x7ffffff0u);
    big[4] = EM_PROTO_VERSION, big[5] = 0, big[6] = 1, big[7] = 0;
    CHECK(send(g, big, sizeof big, 0) == sizeof big);
    CHECK(closed_by_server(g));
    close(g);
    /* After a good handshake: a frame of an unknown type, then an oversize one, then a frame
     * whose fields do not parse. */
    for (int k = 0; k < 3; k++) {
        g = raw_connect(a->port, 1, APP);
        uint8_t fr[16];
        put32(fr, k == 1 ? 0x7ffffff0u : 12);
        fr[4] = EM_PROTO_VERSION, fr[5] = 0;
        fr[6] = k == 0 ? 0xE7 : 80, fr[7] = k == 0 ? 0x03 : 0; /* 999, or fetch_blocks */
        memset(fr + 8, 0xFF, 8);
        CHECK(send(g, fr, sizeof fr, 0) == sizeof fr);
        CHECK(closed_by_server(g));
        close(g);
    }
    /* The pooled connection still serves, and so do new ones. */
    check_reducer(tr, 4, 1, EM_READ_AS_STORED, t, &e);
    em_block_fetcher_stats st;
    em_block_fetcher_stats_get(f, &st);
    CHECK_EQ_INT(st.connections, 1);
    CHECK(st.reused >= 1);
    em_block_fetcher *f2;
    CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f2));
    t->fetcher = f2;
    check_reducer(tr, 4, 2, EM_READ_AGGREGATE, t, &e);
    free_task(t);
    em_block_fetcher_free(f);
    em_block_fetcher_free(f2);
    stop_server(a);
    CHECK_MSG(log_has(a, "malformed frame") && log_has(a, "127.0.0.1:"), "see %s", a->log);
    CHECK(log_has(a, "unexpected") || log_has(a, "unknown"));
    em_map_output_tracker_free(tr);
    em_conf_free(conf);
}

/* Requests the server refuses get an error answer, and the connection goes on. */
TEST(refused_requests_get_error_answers)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    mkdir(dir, 0777);
    int64_t sizes[M][R];
    em_conf *conf = fetch_conf(NULL, NULL);
    em_task *w = make_task(256 << 20, 1, NULL, conf);
    write_outputs(w, dir, 4, sizes);
    free_task(w);
    server_proc *a = start_server(dir, 1, NULL, 0);
    int fd = raw_connect(a->port, 1, APP);
    struct {
        const char *app;
        uint32_t exec, shuffle, map, start, end;
        int status;
    } cases[] = {
        {APP, 5, 4, 0, 0, 1, EM_ESTATE},         /* unknown executor */
        {APP, 1, 4, 9, 0, 1, EM_ENOENT},         /* unknown map */
        {APP, 1, 77, 0, 0, 1, EM_ENOENT},        /* unknown shuffle */
        {APP, 1, 4, 0, 3, 3, EM_EINVAL},         /* empty range */
        {APP, 1, 4, 0, 4, 9, EM_EINVAL},         /* beyond the reducers */
        {"other-app", 1, 4, 0, 0, 1, EM_EACCES}, /* not the application of the hello */
        {APP, 1, 4, 0, 1, 4, 0},                 /* reducers 1..3 of map 0 */
    };
    em_buf buf = EM_BUF_INIT;
    for (size_t i = 0; i < EM_ARRAY_LEN(cases); i++) {
        em_msg_fetch_blocks q = {.req_id = 1000 + i,
                                 .app_id = em_str_c(cases[i].app),
                                 .exec_id = cases[i].exec,
                                 .shuffle_id = cases[i].shuffle,
                                 .map_id = cases[i].map,
                                 .start_reducer = cases[i].start,
                                 .end_reducer = cases[i].end};
        CHECK_OK(em_sock_send_msg(fd, EM_MSG_FETCH_BLOCKS, &q, 0, em_sock_deadline(5000), "s"));
        em_msg m;
        CHECK_EQ_INT(
            em_sock_read_msg(fd, &buf, EM_FRAME_DEFAULT_MAX, em_sock_deadline(5000), "s", &m),
            EM_ROW);
        CHECK_EQ_INT(m.type, EM_MSG_BLOCK_DATA);
        CHECK_EQ_INT(m.u.block_data.req_id, 1000 + i);
        CHECK_MSG(m.u.block_data.status == cases[i].status, "case %zu: status %d (%.*s)", i,
                  m.u.block_data.status, (int)m.u.block_data.message.len, m.u.block_data.message.p);
        if (cases[i].status) {
            CHECK(m.u.block_data.size == 0 && m.u.block_data.message.len > 0);
            continue;
        }
        CHECK_EQ_INT(m.u.block_data.size, sizes[0][1] + sizes[0][2] + sizes[0][3]);
        CHECK_EQ_INT(m.u.block_data.checksums.len, 3 * 8);
        /* The bytes are those of the data file, and each block matches its checksum. */
        uint64_t sums[3];
        memcpy(sums, m.u.block_data.checksums.p, sizeof sums);
        size_t size = (size_t)m.u.block_data.size;
        uint8_t *got = malloc(size), *want = malloc(size);
        CHECK_OK(em_sock_read_exact(fd, got, size, em_sock_deadline(5000), "s"));
        char data[1300];
        em_shuffle_file_path(data, sizeof data, dir, 4, 0, "data");
        FILE *fp = fopen(data, "rb");
        fseek(fp, sizes[0][0], SEEK_SET);
        CHECK(fread(want, 1, size, fp) == size);
        fclose(fp);
        CHECK(memcmp(got, want, size) == 0);
        uint64_t sum;
        em_block_range rr = {.checksums = &sum};
        CHECK_OK(em_shuffle_locate_blocks(dir, 4, 0, 2, 3, &rr));
        close(rr.fd);
        CHECK(sum == sums[1] && rr.length == (uint64_t)sizes[0][2]);
        free(got);
        free(want);
    }
    em_buf_free(&buf);
    close(fd);
    /* A fetch through the reader of an output the server does not have: EM_EFETCH at once. */
    em_map_output_tracker *tr = em_map_output_tracker_new();
    em_block_location locs[M];
    for (int m = 0; m < M; m++) locs[m] = (em_block_location){1, "127.0.0.1", a->port, "/x"};
    register_outputs(tr, 4, sizes, locs);
    em_shuffle_remove_files(dir, 4);
    em_block_fetcher *f;
    CHECK_OK(em_block_fetcher_new(conf, APP, 2, &f));
    em_task *t = make_task(64 << 20, 2, f, conf);
    int rc = drain(tr, 4, 0, t);
    CHECK_EQ_INT(rc, EM_EFETCH);
    char want[100];
    snprintf(want, sizeof want, "127.0.0.1:%d", a->port);
    CHECK_MSG(strstr(em_errmsg(), "shuffle 4 map 0 reducer 0") && strstr(em_errmsg(), want),
              "message: %s", em_errmsg());
    printf("missing output: %s\n", em_errmsg());
    em_block_fetcher_stats st;
    em_block_fetcher_stats_get(f, &st);
    CHECK_EQ_INT(st.retries, 0);
    /* Without a fetcher, a remote location is an error naming it. */
    t->fetcher = NULL;
    rc = drain(tr, 4, 0, t);
    CHECK_EQ_INT(rc, EM_ESTATE);
    CHECK_MSG(strstr(em_errmsg(), "no block fetcher") && strstr(em_errmsg(), want), "message: %s",
              em_errmsg());
    free_task(t);
    em_block_fetcher_free(f);
    em_map_output_tracker_free(tr);
    stop_server(a);
    em_conf_free(conf);
}

/* ---- the tracker ------------------------------------------------------------------------- */

static void reg(em_map_output_tracker *tr, int sid, int map, int exec, const char *host, int port,
                const char *dir, int nred, int64_t base)
{
    em_map_status st = {.num_reducers = nred};
    st.block_sizes = em__malloc((size_t)nred * sizeof(int64_t));
    for (int r = 0; r < nred; r++) st.block_sizes[r] = base + r;
    em_block_location loc = {exec, host, port, dir};
    CHECK_OK(em_map_outputs_register(tr, sid, map, &loc, &st));
}

TEST(tracker_locations_replace_and_unregister_executor)
{
    em_map_output_tracker *tr = em_map_output_tracker_new();
    CHECK_OK(em_map_outputs_register_shuffle(tr, 1, 3));
    reg(tr, 1, 0, 1, "h1", 7001, "/d1", 4, 10);
    reg(tr, 1, 1, 2, "h2", 7002, "/d2", 4, 20);
    em_map_locations l;
    CHECK_EQ_INT(em_map_outputs_locations(tr, 1, 0, &l), EM_ESTATE);
    CHECK_MSG(strstr(em_errmsg(), "shuffle 1: output of map 2 is missing"), "%s", em_errmsg());
    CHECK(l.locs == NULL);
    reg(tr, 1, 2, 1, NULL, 0, "/d1", 4, 30);
    CHECK_OK(em_map_outputs_locations(tr, 1, 3, &l));
    CHECK_EQ_INT(l.num_maps, 3);
    CHECK_EQ_STR(l.locs[1].host, "h2");
    CHECK_EQ_INT(l.locs[1].port, 7002);
    CHECK_EQ_STR(l.locs[2].host, "");
    CHECK_EQ_INT(l.sizes[0], 13);
    CHECK_EQ_INT(l.sizes[2], 33);
    em_map_locations_free(&l);
    /* Registering again replaces. */
    reg(tr, 1, 1, 3, "h3", 7003, "/d3", 4, 40);
    CHECK_OK(em_map_outputs_locations(tr, 1, -1, &l));
    CHECK(l.sizes == NULL);
    CHECK_EQ_INT(l.locs[1].exec_id, 3);
    CHECK_EQ_STR(l.locs[1].dir, "/d3");
    em_map_locations_free(&l);
    CHECK_EQ_INT(em_map_outputs_reducer_bytes(tr, 1, 0), 10 + 40 + 30);
    CHECK_EQ_INT(em_map_outputs_locations(tr, 1, 4, &l), EM_ESTATE); /* no reducer 4 */
    /* Executor 1 wrote maps 0 and 2. */
    CHECK_EQ_INT(em_map_outputs_unregister_executor(tr, 1), 2);
    int missing[3];
    CHECK_EQ_INT(em_map_outputs_missing(tr, 1, missing, 3), 2);
    CHECK(missing[0] == 0 && missing[1] == 2);
    CHECK_EQ_INT(em_map_outputs_unregister_executor(tr, 1), 0);
    em_map_output_tracker_free(tr);
}

static void build_tracker(em_map_output_tracker *tr)
{
    CHECK_OK(em_map_outputs_register_shuffle(tr, 3, 4));
    CHECK_OK(em_map_outputs_register_shuffle(tr, 5, 2));
    CHECK_OK(em_map_outputs_register_shuffle(tr, 6, 1));
    reg(tr, 3, 0, 1, "10.0.0.1", 7337, "/work/app/exec-1", 3, 100);
    reg(tr, 3, 2, 2, "host-two.example", 40001, "/w2", 3, 0);
    reg(tr, 3, 3, 0, NULL, 0, "/tmp/local", 3, 5);
    reg(tr, 5, 1, 7, "::1", 1, "", 1, 9);
    reg(tr, 6, 0, 2, "h", 2, "/d", 2, 1);
}

/* Both trackers agree on shuffles 3 and 5: the same maps missing, the same bytes per reducer
 * (locations are compared in full once every map is present). */
static void same_outputs(em_map_output_tracker *a, em_map_output_tracker *b)
{
    int sids[2] = {3, 5}, nmaps[2] = {4, 2}, nred[2] = {3, 1};
    for (int k = 0; k < 2; k++) {
        int ma[8], mb[8];
        int na = em_map_outputs_missing(a, sids[k], ma, 8);
        CHECK(na >= 0 && na <= nmaps[k]);
        CHECK_EQ_INT(em_map_outputs_missing(b, sids[k], mb, 8), na);
        CHECK(memcmp(ma, mb, (size_t)na * sizeof *ma) == 0);
        for (int r = 0; r < nred[k]; r++)
            CHECK_EQ_INT(em_map_outputs_reducer_bytes(a, sids[k], r),
                         em_map_outputs_reducer_bytes(b, sids[k], r));
    }
}

TEST(tracker_codec_round_trip)
{
    em_map_output_tracker *a = em_map_output_tracker_new(), *b = em_map_output_tracker_new();
    build_tracker(a);
    em_buf enc = EM_BUF_INIT;
    int sids[2] = {3, 5};
    CHECK_OK(em_map_outputs_encode(a, sids, 2, &enc));
    CHECK_OK(em_map_outputs_decode_into(b, enc.data, enc.len));
    same_outputs(a, b);
    CHECK_EQ_INT(em_map_outputs_missing(b, 6, NULL, 0), -1); /* not shipped */
    /* Fill the gaps of shuffle 3 in a, and compare every location in full. */
    reg(a, 3, 1, 4, "h4", 4, "/d4", 3, 7);
    enc.len = 0;
    CHECK_OK(em_map_outputs_encode(a, sids, 2, &enc));
    /* Decoding replaces: b had map 1 missing and gets it now. */
    CHECK_OK(em_map_outputs_decode_into(b, enc.data, enc.len));
    for (int r = 0; r < 3; r++) {
        em_map_locations la, lb;
        CHECK_OK(em_map_outputs_locations(a, 3, r, &la));
        CHECK_OK(em_map_outputs_locations(b, 3, r, &lb));
        CHECK_EQ_INT(la.num_maps, lb.num_maps);
        for (int m = 0; m < la.num_maps; m++) {
            CHECK_EQ_INT(la.locs[m].exec_id, lb.locs[m].exec_id);
            CHECK_EQ_INT(la.locs[m].port, lb.locs[m].port);
            CHECK_EQ_STR(la.locs[m].host, lb.locs[m].host);
            CHECK_EQ_STR(la.locs[m].dir, lb.locs[m].dir);
            CHECK_EQ_INT(la.sizes[m], lb.sizes[m]);
        }
        em_map_locations_free(&la);
        em_map_locations_free(&lb);
    }
    /* Maps not listed become missing: ship shuffle 5 after losing its map 1. */
    em_map_outputs_unregister(a, 5, 1);
    enc.len = 0;
    CHECK_OK(em_map_outputs_encode(a, &sids[1], 1, &enc));
    CHECK_OK(em_map_outputs_decode_into(b, enc.data, enc.len));
    CHECK_EQ_INT(em_map_outputs_missing(b, 5, NULL, 0), 2);
    /* Refusals: an unknown shuffle or one asked twice to encode; a conflicting map count. */
    int bad_ids[2] = {3, 3}, unknown = 99;
    size_t keep = enc.len;
    CHECK_EQ_INT(em_map_outputs_encode(a, &unknown, 1, &enc), EM_ESTATE);
    CHECK_EQ_INT(em_map_outputs_encode(a, bad_ids, 2, &enc), EM_EINVAL);
    CHECK_EQ_INT(enc.len, keep);
    em_map_output_tracker *c = em_map_output_tracker_new();
    CHECK_OK(em_map_outputs_register_shuffle(c, 5, 3));
    CHECK_EQ_INT(em_map_outputs_decode_into(c, enc.data, enc.len), EM_EFORMAT);
    CHECK_MSG(strstr(em_errmsg(), "shuffle 5"), "%s", em_errmsg());
    em_buf_free(&enc);
    em_map_output_tracker_free(a);
    em_map_output_tracker_free(b);
    em_map_output_tracker_free(c);
}

TEST(tracker_codec_rejects_truncation_and_survives_flips)
{
    em_map_output_tracker *a = em_map_output_tracker_new();
    build_tracker(a);
    em_buf enc = EM_BUF_INIT;
    int sids[3] = {3, 5, 6};
    CHECK_OK(em_map_outputs_encode(a, sids, 3, &enc));
    /* Every truncation is refused and changes nothing. */
    for (size_t n = 0; n < enc.len; n++) {
        em_map_output_tracker *b = em_map_output_tracker_new();
        uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any over-read */
        memcpy(copy, enc.data, n);
        int rc = em_map_outputs_decode_into(b, copy, n);
        CHECK_MSG(rc == EM_EFORMAT, "truncation to %zu bytes: rc %d", n, rc);
        CHECK_EQ_INT(em_map_outputs_missing(b, 3, NULL, 0), -1);
        free(copy);
        em_map_output_tracker_free(b);
    }
    /* Trailing bytes are refused too. */
    em_buf_append(&enc, "x", 1);
    em_map_output_tracker *b = em_map_output_tracker_new();
    CHECK_EQ_INT(em_map_outputs_decode_into(b, enc.data, enc.len), EM_EFORMAT);
    em_map_output_tracker_free(b);
    enc.len--;
    /* Random flips: never a crash or an over-read; whatever decodes is usable. */
    uint64_t rnd = 0x243F6A8885A308D3ull;
    int accepted = 0;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *copy = malloc(enc.len);
        memcpy(copy, enc.data, enc.len);
        int flips = 1 + iter % 3;
        for (int k = 0; k < flips; k++) {
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            copy[rnd % enc.len] ^= (uint8_t)(1u << ((rnd >> 32) % 8));
        }
        b = em_map_output_tracker_new();
        int rc = em_map_outputs_decode_into(b, copy, enc.len);
        CHECK(rc == 0 || rc == EM_EFORMAT);
        if (rc == 0) {
            accepted++;
            for (int s = 0; s < 8; s++) {
                em_map_locations l;
                if (em_map_outputs_locations(b, s, 0, &l) == 0) em_map_locations_free(&l);
            }
            em_buf again = EM_BUF_INIT;
            int ids[1] = {3};
            em_map_outputs_encode(b, ids, 1, &again);
            em_buf_free(&again);
        }
        em_map_output_tracker_free(b);
        free(copy);
    }
    printf("tracker codec: %d of 3000 flipped tables still decode\n", accepted);
    em_buf_free(&enc);
    em_map_output_tracker_free(a);
}
