/* Shuffle fetch throughput between two processes on loopback (issue 3's target: >= 1 GB/s).
 *
 *   fetch_bench [--size MiB] [--maps N] [--reducers R] [--codec none|lz4|zstd]
 *               [--in-flight SIZE] [--repeat K] [--dir DIR]
 *
 * A child process writes N map outputs of about SIZE MiB in all with the shuffle writer
 * (100-byte records: an int64 key and 90 pseudo-random bytes), starts a block server on
 * 127.0.0.1 serving them, and tells the parent the port and block sizes. The parent (which has
 * written nothing, so its peak RSS is the fetch's) reads every reducer remotely, K times each
 * way, and prints the best:
 *   fetch_raw_gb_per_s X    block bytes/s through the fetcher alone (requests pipelined within
 *                           the in-flight window, bytes streamed from the socket, no decoding)
 *   read_gb_per_s Y         block bytes/s through the shuffle reader (AS_STORED: frames checked,
 *                           decompressed, records parsed) — what a reduce task sees
 *   records_per_s Z         records/s of the same read
 *   peak_rss_mib W          the fetching process's peak resident set (VmHWM)
 * GB are 10^9 bytes. Benchmarks print numbers; they are not tests.
 */
#include "base/task.h"
#include "shuffle/fetcher.h"
#include "shuffle/shuffle.h"
#include "shuffle/shuffle_int.h"
#include "storage/memory.h"

#include <ember/conf.h>
#include <ember/record.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHUFFLE_ID 1
#define APP        "fetch-bench"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long vm_hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static int part_fn(const void *ctx, em_value key)
{
    return (int)(em_value_int64(key) % *(const int *)ctx);
}

static void die(const char *what)
{
    fprintf(stderr, "fetch_bench: %s: %s\n", what, em_errmsg());
    exit(1);
}

static em_task *make_task(em_conf *conf, int exec_id, const char *local_dir)
{
    em_task *t = calloc(1, sizeof *t);
    t->task_id = exec_id;
    t->exec_id = exec_id;
    t->conf = conf;
    t->memory = em_memory_manager_new((int64_t)1 << 30, 0.6, 0.5);
    t->local_dir = local_dir;
    return t;
}

/* The child: writes the outputs, serves them, reports port and sizes on fd, serves until its
 * control pipe closes. */
static void serve(em_conf *conf, const char *dir, int maps, int reducers, int64_t bytes, int out,
                  int ctl)
{
    static int R;
    R = reducers;
    em_task *t = make_task(conf, 1, dir);
    em_records *rec = em_records_new();
    int64_t per_map = bytes / maps / 100 + 1;
    uint64_t rnd = 0x9E3779B97F4A7C15ull;
    char pad[90];
    for (int m = 0; m < maps; m++) {
        em_shuffle_write_spec spec = {.shuffle_id = SHUFFLE_ID,
                                      .map_id = m,
                                      .partitioner = {reducers, part_fn, &R},
                                      .dir = dir};
        em_shuffle_writer *w;
        if (em_shuffle_writer_open(&spec, t, &w)) die("writer");
        for (int64_t i = 0; i < per_map; i++) {
            for (size_t j = 0; j < sizeof pad; j++) {
                rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
                pad[j] = (char)rnd;
            }
            em_records_clear(rec);
            em_put_tuple_begin(rec);
            em_put_int64(rec, m * per_map + i);
            em_put_bytes(rec, pad, sizeof pad);
            em_put_end(rec);
            if (em_shuffle_writer_add(w, em_records_at(rec, 0))) die("write");
        }
        em_map_status st;
        if (em_shuffle_writer_commit(w, &st)) die("commit");
        if (write(out, st.block_sizes, (size_t)reducers * 8) != (ssize_t)reducers * 8) exit(1);
        em_map_status_clear(&st);
    }
    em_records_free(rec);
    em_block_server *s;
    if (em_block_server_start(conf, "127.0.0.1", 0, &s)) die("block server");
    em_block_server_set_locator(s, em_shuffle_locate_blocks);
    em_block_server_add_dir(s, APP, 1, dir);
    int port = em_block_server_port(s);
    if (write(out, &port, sizeof port) != sizeof port) exit(1);
    char c;
    while (read(ctl, &c, 1) > 0) {
    }
    em_block_server_stop(s);
    _exit(0);
}

static int read_all(int fd, void *p, size_t n)
{
    uint8_t *q = p;
    while (n > 0) {
        ssize_t r = read(fd, q, n);
        if (r <= 0) return -1;
        q += r;
        n -= (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int64_t size_mib = 1024;
    int maps = 16, reducers = 4, repeat = 3;
    const char *codec = "none", *in_flight = "48m", *base = getenv("TMPDIR");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size"))
            size_mib = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--maps"))
            maps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reducers"))
            reducers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--codec"))
            codec = argv[i + 1];
        else if (!strcmp(argv[i], "--in-flight"))
            in_flight = argv[i + 1];
        else if (!strcmp(argv[i], "--repeat"))
            repeat = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            base = argv[i + 1];
        else {
            fprintf(stderr, "fetch_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (size_mib < 1 || maps < 1 || reducers < 1 || repeat < 1) {
        fprintf(stderr, "fetch_bench: bad arguments\n");
        return 2;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fetch-bench-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fetch_bench: mkdtemp");
        return 1;
    }
    em_conf *conf = em_conf_new();
    if (em_conf_set(conf, "ember.io.compression.codec", codec) ||
        em_conf_set(conf, "ember.shuffle.reducer.maxSizeInFlight", in_flight))
        die("options");
    if (!strcmp(codec, "none")) em_conf_set(conf, "ember.shuffle.compress", "false");
    int pipe_out[2], pipe_ctl[2];
    if (pipe(pipe_out) || pipe(pipe_ctl)) return 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipe_out[0]);
        close(pipe_ctl[1]);
        serve(conf, dir, maps, reducers, size_mib << 20, pipe_out[1], pipe_ctl[0]);
    }
    close(pipe_out[1]);
    close(pipe_ctl[0]);
    int64_t *sizes = calloc((size_t)maps * (size_t)reducers, sizeof *sizes);
    int port = 0;
    double t0 = now_s();
    if (read_all(pipe_out[0], sizes, (size_t)maps * (size_t)reducers * 8) ||
        read_all(pipe_out[0], &port, sizeof port)) {
        fprintf(stderr, "fetch_bench: the serving process failed\n");
        return 1;
    }
    int64_t total = 0;
    for (int i = 0; i < maps * reducers; i++) total += sizes[i];
    printf("fetch_bench: %.0f MiB of blocks (%d maps x %d reducers, codec %s) written in %.1f s; "
           "maxSizeInFlight %s\n",
           (double)total / 1048576.0, maps, reducers, codec, now_s() - t0, in_flight);

    em_block_fetcher *f;
    if (em_block_fetcher_new(conf, APP, 2, &f)) die("fetcher");
    char local[4200];
    snprintf(local, sizeof local, "%s/reader", dir);
    mkdir(local, 0777);
    em_task *t = make_task(conf, 2, local);
    t->fetcher = f;
    em_block_location *locs = calloc((size_t)maps, sizeof *locs);
    for (int m = 0; m < maps; m++) locs[m] = (em_block_location){1, "127.0.0.1", port, "/none"};
    int64_t *rsizes = calloc((size_t)maps, sizeof *rsizes);
    shuf_fetch_block *plan = calloc((size_t)maps, sizeof *plan);
    uint8_t *buf = malloc(1 << 20);
    double best_raw = 1e30, best_read = 1e30;
    int64_t records = 0;
    for (int k = 0; k < repeat; k++) {
        /* Raw: the fetcher alone. */
        double s0 = now_s();
        for (int r = 0; r < reducers; r++) {
            int n = 0;
            for (int m = 0; m < maps; m++)
                if (sizes[m * reducers + r] > 0)
                    plan[n++] = (shuf_fetch_block){m, 1, "127.0.0.1", port,
                                                   (uint64_t)sizes[m * reducers + r]};
            shuf_fetch *fs;
            if (shuf_fetch_open(f, SHUFFLE_ID, r, plan, n,
                                (uint64_t)em_conf_get_bytes(conf, "ember.shuffle.reducer."
                                                                  "maxSizeInFlight"),
                                NULL, &fs))
                die("fetch");
            for (int i = 0; i < n; i++) {
                uint64_t size = 0, sum = 0;
                if (shuf_fetch_begin(fs, plan[i].map, &size, &sum)) die("fetch");
                for (uint64_t left = size; left > 0;) {
                    size_t c = left < (1u << 20) ? (size_t)left : (1u << 20);
                    if (shuf_fetch_read(fs, buf, c)) die("fetch");
                    left -= c;
                }
                if (shuf_fetch_end(fs)) die("fetch");
            }
            shuf_fetch_close(fs);
        }
        double raw = now_s() - s0;
        if (raw < best_raw) best_raw = raw;
        /* Through the reader. */
        s0 = now_s();
        records = 0;
        for (int r = 0; r < reducers; r++) {
            for (int m = 0; m < maps; m++) rsizes[m] = sizes[m * reducers + r];
            em_shuffle_read_spec spec = {.shuffle_id = SHUFFLE_ID,
                                         .reducer = r,
                                         .num_maps = maps,
                                         .locs = locs,
                                         .block_sizes = rsizes};
            em_iter *it;
            if (em_shuffle_reader_open(&spec, t, &it)) die("reader");
            em_value v;
            int rc;
            while ((rc = em_iter_next(it, &v)) == EM_ROW) records++;
            if (rc) die("read");
            em_iter_close(it);
        }
        double rd = now_s() - s0;
        if (rd < best_read) best_read = rd;
    }
    em_block_fetcher_stats st;
    em_block_fetcher_stats_get(f, &st);
    printf("fetch_raw_gb_per_s %.2f\n", (double)total / best_raw / 1e9);
    printf("read_gb_per_s %.2f\n", (double)total / best_read / 1e9);
    printf("records_per_s %.0f\n", (double)records / best_read);
    printf("peak_rss_mib %.1f\n", (double)vm_hwm_kib() / 1024.0);
    printf("fetch_bench: %llu connections, %llu reused, peak %llu bytes / %llu blocks in flight\n",
           (unsigned long long)st.connections, (unsigned long long)st.reused,
           (unsigned long long)st.peak_bytes_in_flight,
           (unsigned long long)st.peak_blocks_in_flight);
    em_block_fetcher_free(f);
    close(pipe_ctl[1]);
    int status;
    waitpid(pid, &status, 0);
    em_shuffle_remove_files(dir, SHUFFLE_ID);
    rmdir(local);
    rmdir(dir);
    return 0;
}
