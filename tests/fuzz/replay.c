/* The replay runner linked into fuzz targets when libFuzzer is not (every ordinary build; see
 * fuzz.h). It feeds each file named on the command line (a directory: each of its files, in
 * name order) to LLVMFuzzerTestOneInput, then, with -m N, N mutations of each file: bit flips,
 * byte changes, boundary values of little-endian lengths, truncations, insertions, duplicated
 * spans and splices with the other files. Mutations come from a fixed-seed generator, so a run
 * is reproducible; an input that crashes (a fatal signal, a failed fuzz_assert or a sanitizer
 * report) is written to ./fuzz-<target>-failure, and replaying that file reproduces it.
 *
 *   fuzz_<target> [-m N] PATH...
 *
 * Exit status 0 when every input ran (a crash or sanitizer report ends the process before),
 * 2 for bad arguments or unreadable paths. One thread.
 */
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct input {
    uint8_t *data;
    size_t len;
    char *name;
} input;

static input *inputs;
static size_t num_inputs, cap_inputs;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "fuzz %s: out of memory\n", fuzz_target_name);
        exit(2);
    }
    return p;
}

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz %s: cannot read %s\n", fuzz_target_name, path);
        exit(2);
    }
    input in = {NULL, 0, strdup(path)};
    size_t cap = 0;
    for (;;) {
        if (in.len == cap) in.data = xrealloc(in.data, cap = cap ? 2 * cap : 4096);
        size_t n = fread(in.data + in.len, 1, cap - in.len, f);
        if (n == 0) break;
        in.len += n;
    }
    fclose(f);
    if (num_inputs == cap_inputs)
        inputs = xrealloc(inputs, (cap_inputs = cap_inputs ? 2 * cap_inputs : 64) * sizeof *inputs);
    inputs[num_inputs++] = in;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz %s: no such file or directory: %s\n", fuzz_target_name, path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "fuzz %s: cannot open directory %s\n", fuzz_target_name, path);
        exit(2);
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = xrealloc(NULL, len);
        snprintf(names[n++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) add_file(names[i]);
        free(names[i]);
    }
    free(names);
}

/* xorshift64*: fixed seed, reproducible runs. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static size_t below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

/* One mutation of src into *out (malloc'd), *out_len. */
static void mutate(const input *src, uint8_t **out, size_t *out_len)
{
    size_t len = src->len, cap = 2 * len + 64;
    uint8_t *p = xrealloc(NULL, cap);
    memcpy(p, src->data, len);
    int steps = 1 + (int)below(3);
    for (int s = 0; s < steps; s++) {
        switch (below(8)) {
        case 0: /* flip a bit */
            if (len) p[below(len)] ^= (uint8_t)(1u << below(8));
            break;
        case 1: /* set a byte */
            if (len) p[below(len)] = (uint8_t)rnd();
            break;
        case 2: /* a boundary value where a little-endian u32 could be */
            if (len >= 4) {
                static const uint32_t v[] = {
                    0,    1,    3,      4,          7,           8,           0x7f,
                    0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000u, 0xfffffffeu, 0xffffffffu};
                uint32_t x = v[below(sizeof v / sizeof v[0])];
                size_t at = below(len - 3);
                for (int i = 0; i < 4; i++) p[at + (size_t)i] = (uint8_t)(x >> (8 * i));
            }
            break;
        case 3: /* truncate */
            len = below(len + 1);
            break;
        case 4: /* insert random bytes */
        {
            size_t n = 1 + below(8), at = below(len + 1);
            if (len + n > cap) break;
            memmove(p + at + n, p + at, len - at);
            for (size_t i = 0; i < n; i++) p[at + i] = (uint8_t)rnd();
            len += n;
            break;
        }
        case 5: /* delete a span */
            if (len) {
                size_t at = below(len), n = 1 + below(len - at);
                memmove(p + at, p + at + n, len - at - n);
                len -= n;
            }
            break;
        case 6: /* duplicate a span */
            if (len) {
                size_t at = below(len), n = 1 + below(len - at);
                if (len + n > cap) break;
                memmove(p + at + n, p + at, len - at);
                len += n;
            }
            break;
        default: /* splice: the tail of another input */
        {
            const input *o = &inputs[below(num_inputs)];
            size_t at = below(len + 1), from = below(o->len + 1), n = o->len - from;
            if (at + n > cap) n = cap - at;
            memcpy(p + at, o->data + from, n);
            len = at + n;
            break;
        }
        }
    }
    *out = p;
    *out_len = len;
}

/* The input running now, written out by a crash (signal or sanitizer report) so that it can
 * be replayed. Only async-signal-safe calls in dump_current. */
static const uint8_t *current;
static size_t current_len;
static char failure_path[256];

static void dump_current(void)
{
    if (!current) return;
    int fd = open(failure_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    for (size_t off = 0; off < current_len;) {
        ssize_t n = write(fd, current + off, current_len - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(fd);
    static const char msg[] = "fuzz: the failing input is in ";
    if (write(2, msg, sizeof msg - 1) < 0 || write(2, failure_path, strlen(failure_path)) < 0 ||
        write(2, "\n", 1) < 0)
        return;
}

static void on_fatal_signal(int sig)
{
    dump_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Present when a sanitizer runtime is linked: called before a sanitizer report exits. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void run_one(const uint8_t *p, size_t n)
{
    current = p;
    current_len = n;
    LLVMFuzzerTestOneInput(p, n);
    current = NULL;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    long mutations = 0;
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "-m")) {
        char *end;
        mutations = strtol(argv[2], &end, 10);
        if (*end || mutations < 0) {
            fprintf(stderr, "fuzz %s: bad -m value '%s'\n", fuzz_target_name, argv[2]);
            return 2;
        }
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [-m N] PATH...\n", argv[0]);
        return 2;
    }
    for (int i = first; i < argc; i++) add_path(argv[i]);
    snprintf(failure_path, sizeof failure_path, "fuzz-%s-failure", fuzz_target_name);
    int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_fatal_signal);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(dump_current);
    for (size_t i = 0; i < num_inputs; i++) {
        /* A copy of exactly the input's size, so ASan sees any read past its end. */
        uint8_t *copy = xrealloc(NULL, inputs[i].len);
        memcpy(copy, inputs[i].data, inputs[i].len);
        run_one(copy, inputs[i].len);
        free(copy);
    }
    unsigned long runs = (unsigned long)num_inputs;
    for (long m = 0; m < mutations; m++) {
        for (size_t i = 0; i < num_inputs; i++) {
            uint8_t *p, *exact;
            size_t n;
            mutate(&inputs[i], &p, &n);
            exact = xrealloc(NULL, n);
            memcpy(exact, p, n);
            free(p);
            run_one(exact, n);
            free(exact);
            runs++;
        }
    }
    fprintf(stderr, "fuzz %s: %lu inputs from %zu files ran cleanly\n", fuzz_target_name, runs,
            num_inputs);
    for (size_t i = 0; i < num_inputs; i++) {
        free(inputs[i].data);
        free(inputs[i].name);
    }
    free(inputs);
    return 0;
}
