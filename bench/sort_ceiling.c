/* sort_ceiling: the hand-written, single-threaded C TeraSort that Ember's terasort is measured
 * against (the "ceiling" rows of bench/run.sh), and the checker bench/run.sh uses to verify
 * every system's sorted output.
 *
 *   sort_ceiling INPUT... OUTFILE     sort 100-byte gensort records by their 10-byte key
 *   sort_ceiling --check INPUT...     print "records N bytes B checksum X sorted yes|no"
 *
 * Sorting: map the input file (several files: read them whole into one buffer); build one 16-byte
 * entry per record that holds the whole key and the record's index (hi = key bytes 0..7 big-endian;
 * lo = key bytes 8..9 in the top 16 bits and the index in the low 32), so comparing entries as
 * 128-bit integers orders by key and then by input position (a stable sort with no tie-break pass);
 * one MSD radix pass on the top 16 key bits, then a quicksort/insertion sort per bucket (cache
 * resident for uniform keys, still O(n log n) for skewed ones); then gather the records in
 * order into 4 MiB blocks and write them. Prints "records N bytes B" on stdout.
 *
 * Checking streams the concatenation of INPUT files (directories as in ceiling_io.h): the
 * record count, an order-independent checksum (sum mod 2^64 of XXH3-64 of every record, in
 * the spirit of valsort's CRC sum) and whether keys never decrease. A byte count that is not
 * a multiple of 100 is reported as an error (exit 1).
 *
 * Standalone program (not linked with libember), single-threaded, run by bench/run.sh. */
#include "ceiling_io.h"

#include <stdint.h>
#include <sys/mman.h>
#include <xxhash.h>

enum { REC = 100, KEY = 10, BLOCK = 4 << 20 };

typedef struct {
    uint64_t hi, lo;
} entry;

static inline int entry_lt(const entry *a, const entry *b)
{
    return a->hi < b->hi || (a->hi == b->hi && a->lo < b->lo);
}

static inline uint64_t load_be64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static void insertion_sort(entry *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        entry x = a[i];
        size_t j = i;
        while (j > 0 && entry_lt(&x, &a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void swap_entry(entry *a, entry *b)
{
    entry t = *a;
    *a = *b;
    *b = t;
}

/* Quicksort with median-of-three; entries are all distinct (the index is part of them). */
static void quick_sort(entry *a, size_t n)
{
    while (n > 24) {
        size_t m = n / 2;
        if (entry_lt(&a[m], &a[0])) swap_entry(&a[m], &a[0]);
        if (entry_lt(&a[n - 1], &a[0])) swap_entry(&a[n - 1], &a[0]);
        if (entry_lt(&a[n - 1], &a[m])) swap_entry(&a[n - 1], &a[m]);
        entry pivot = a[m];
        size_t i = 0, j = n - 1;
        for (;;) {
            while (entry_lt(&a[i], &pivot)) i++;
            while (entry_lt(&pivot, &a[j])) j--;
            if (i >= j) break;
            swap_entry(&a[i], &a[j]);
            i++;
            j--;
        }
        /* a[0..j] <= pivot <= a[j+1..n); recurse into the smaller side. */
        size_t left = j + 1, right = n - left;
        if (left < right) {
            quick_sort(a, left);
            a += left;
            n = right;
        } else {
            quick_sort(a + left, right);
            n = left;
        }
    }
    insertion_sort(a, n);
}

static int do_sort(int nin, char **inputs, const char *out)
{
    ceil_files files = {0};
    for (int i = 0; i < nin; i++) ceil_files_add(&files, inputs[i]);
    if (files.n == 0) ceil_die("no input files in '%s'", inputs[0]);
    uint64_t total = 0;
    for (size_t i = 0; i < files.n; i++) {
        struct stat st;
        if (stat(files.paths[i], &st) != 0)
            ceil_die("cannot stat '%s': %s", files.paths[i], strerror(errno));
        total += (uint64_t)st.st_size;
    }
    if (total % REC)
        ceil_die("input is %llu bytes, not a multiple of %d", (unsigned long long)total, REC);
    size_t n = (size_t)(total / REC);
    if (n > UINT32_MAX) ceil_die("%zu records is more than this ceiling indexes", n);

    /* One input file is mapped (no copy, no faults on fresh anonymous memory); several are
     * read into one buffer so that a record's index gives its address. */
    unsigned char *in = NULL, *mapped = NULL;
    uint64_t off = 0;
    if (files.n == 1 && total > 0) {
        int fd = open(files.paths[0], O_RDONLY);
        if (fd < 0) ceil_die("cannot open input '%s': %s", files.paths[0], strerror(errno));
        void *m = mmap(NULL, total, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        close(fd);
        if (m != MAP_FAILED) in = mapped = m, off = total;
    }
    if (!in) in = ceil_xmalloc(total);
    for (size_t i = 0; i < files.n && !mapped; i++) {
        int fd = open(files.paths[i], O_RDONLY);
        if (fd < 0) ceil_die("cannot open input '%s': %s", files.paths[i], strerror(errno));
        off += ceil_read(fd, in + off, total - off, files.paths[i]);
        close(fd);
    }
    if (off != total)
        ceil_die("inputs shrank while being read (%llu of %llu bytes)", (unsigned long long)off,
                 (unsigned long long)total);

    /* Build entries and scatter them by the top 16 key bits in one MSD pass. */
    entry *tmp = ceil_xmalloc(n * sizeof(entry) + 1);
    entry *ent = ceil_xmalloc(n * sizeof(entry) + 1);
    size_t *bucket = calloc(65536 + 1, sizeof(size_t));
    if (!bucket) ceil_die("out of memory for radix buckets");
    for (size_t i = 0; i < n; i++) {
        const unsigned char *k = in + (size_t)i * REC;
        tmp[i].hi = load_be64(k);
        tmp[i].lo = ((uint64_t)k[8] << 56) | ((uint64_t)k[9] << 48) | (uint64_t)i;
        bucket[(tmp[i].hi >> 48) + 1]++;
    }
    for (size_t b = 1; b <= 65536; b++) bucket[b] += bucket[b - 1];
    size_t *pos = ceil_xmalloc(65536 * sizeof(size_t));
    memcpy(pos, bucket, 65536 * sizeof(size_t));
    for (size_t i = 0; i < n; i++) ent[pos[tmp[i].hi >> 48]++] = tmp[i];
    free(pos);
    free(tmp);
    for (size_t b = 0; b < 65536; b++) quick_sort(ent + bucket[b], bucket[b + 1] - bucket[b]);
    free(bucket);

    /* Gather in key order, prefetching records a few entries ahead. */
    int fd = ceil_open_out(out);
    unsigned char *ob = ceil_xmalloc(BLOCK);
    size_t olen = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 16 < n) {
            const unsigned char *f = in + (size_t)(uint32_t)ent[i + 16].lo * REC;
            __builtin_prefetch(f);
            __builtin_prefetch(f + 64);
        }
        memcpy(ob + olen, in + (size_t)(uint32_t)ent[i].lo * REC, REC);
        olen += REC;
        if (olen + REC > BLOCK) {
            ceil_write(fd, ob, olen, out);
            olen = 0;
        }
    }
    ceil_write(fd, ob, olen, out);
    ceil_close_out(fd, out);
    printf("records %zu bytes %llu\n", n, (unsigned long long)total);
    free(ob);
    free(ent);
    if (mapped)
        munmap(mapped, total);
    else
        free(in);
    ceil_files_free(&files);
    return 0;
}

static int do_check(int nin, char **inputs)
{
    ceil_files files = {0};
    for (int i = 0; i < nin; i++) ceil_files_add(&files, inputs[i]);
    unsigned char *buf = ceil_xmalloc(BLOCK + REC);
    unsigned char prev[KEY];
    int have_prev = 0, sorted = 1;
    uint64_t records = 0, bytes = 0, sum = 0;
    size_t carry = 0; /* bytes of a record split across reads or files */
    for (size_t f = 0; f < files.n; f++) {
        int fd = open(files.paths[f], O_RDONLY);
        if (fd < 0) ceil_die("cannot open '%s': %s", files.paths[f], strerror(errno));
        for (;;) {
            size_t got = ceil_read(fd, buf + carry, BLOCK, files.paths[f]);
            bytes += got;
            size_t len = carry + got, i = 0;
            for (; i + REC <= len; i += REC) {
                const unsigned char *r = buf + i;
                if (have_prev && memcmp(prev, r, KEY) > 0) sorted = 0;
                memcpy(prev, r, KEY);
                have_prev = 1;
                sum += XXH3_64bits(r, REC);
                records++;
            }
            carry = len - i;
            memmove(buf, buf + i, carry);
            if (got < BLOCK) break;
        }
        close(fd);
    }
    printf("records %llu bytes %llu checksum %016llx sorted %s\n", (unsigned long long)records,
           (unsigned long long)bytes, (unsigned long long)sum, sorted ? "yes" : "no");
    free(buf);
    ceil_files_free(&files);
    if (carry)
        ceil_die("%llu bytes is not a whole number of %d-byte records", (unsigned long long)bytes,
                 REC);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--check")) return do_check(argc - 2, argv + 2);
    if (argc < 3 || argv[1][0] == '-') {
        fprintf(stderr, "usage: sort_ceiling INPUT... OUTFILE\n"
                        "       sort_ceiling --check INPUT...\n");
        return 2;
    }
    return do_sort(argc - 2, argv + 1, argv[argc - 1]);
}
