/* `ember gen`: deterministic generators of benchmark and test inputs.
 *
 *   ember gen text     --size BYTES [--seed S] [--files N] OUT   HiBench RandomTextWriter text
 *   ember gen text-hc  --size BYTES [--seed S] [--files N] OUT   Zipf text over ~1M words
 *   ember gen terasort --records N  [--seed S] [--files N] OUT   gensort 100-byte records
 *   ember gen graph    --nodes N --edges E [--seed S] OUT        R-MAT power-law edge list
 *
 * Owns only this command: it runs on the main thread of the `ember` process, called by main.c,
 * and depends on libc and the base allocator, never on the engine. Guarantees: the same
 * arguments give the same bytes on every machine (own PRNGs, no libc rand; R-MAT draws compare
 * integers against fixed thresholds; the Zipf table is built by IEEE double arithmetic in a
 * fixed order). OUT is a file, or a directory of part-NNNNN files when --files N > 1.
 *
 * Formats:
 *   text      lines "KEY VALUE": KEY 5-9 words, VALUE 20-99 words (RandomTextWriter's ranges),
 *             words uniform over a fixed vocabulary of exactly 1000 words, separated by one
 *             space; lines are written until the file reaches its share of --size (so a file
 *             ends on a whole line, at most one line past its share).
 *   text-hc   the same line shape; words drawn from a Zipf(1.0) law over 1,000,000 words.
 *   terasort  gensort's binary layout, 100 bytes per record, row ids continuing across files:
 *               0..9    key: 10 random bytes            10..11  0x00 0x11
 *               12..43  row id, 32 upper-case hex chars  44..47  0x88 0x99 0xAA 0xBB
 *               48..95  filler: 12 runs of 4 equal hex chars  96..99  0xCC 0xDD 0xEE 0xFF
 *             A record depends only on (seed, row id), not on --files.
 *   graph     '#' comment lines, then "SRC DST" per edge (decimal node ids below --nodes);
 *             R-MAT (a,b,c,d) = (0.57,0.19,0.19,0.05), node ids shuffled by a seeded
 *             permutation so that hubs are not all small numbers. Duplicates and self-loops
 *             occur, as in real edge lists.
 */
#include "cli.h"

#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- random numbers ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A stateless mix of (seed, n): terasort records depend only on their row id. */
static uint64_t mix64(uint64_t seed, uint64_t n)
{
    uint64_t s = seed * 0xd1342543de82ef95ULL + n;
    return splitmix64(&s);
}

typedef struct rng {
    uint64_t s[4];
} rng;

static void rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0x632be59bd9b4e019ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), n < 2^32 (Lemire's multiply-shift, bias below 2^-32). */
static inline uint32_t rng_below(rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- buffered output ----------------------------------------------------------------------- */

typedef struct out {
    int fd;
    char *path;
    char *buf;
    size_t len, cap;
    uint64_t written; /* bytes handed to out_* so far */
    int err;          /* first errno */
} out;

static int out_open(out *o, const char *path)
{
    memset(o, 0, sizeof *o);
    o->cap = 1 << 20;
    o->buf = em__malloc(o->cap);
    o->path = em__strdup(path);
    if (!o->buf || !o->path) {
        em__free(o->buf);
        em__free(o->path);
        fprintf(stderr, "ember gen: out of memory\n");
        return -1;
    }
    o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o->fd < 0) {
        fprintf(stderr, "ember gen: cannot create '%s': %s\n", path, strerror(errno));
        em__free(o->buf);
        em__free(o->path);
        return -1;
    }
    return 0;
}

static void out_flush(out *o)
{
    size_t off = 0;
    while (off < o->len && !o->err) {
        ssize_t n = write(o->fd, o->buf + off, o->len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            o->err = errno;
        } else {
            off += (size_t)n;
        }
    }
    o->len = 0;
}

/* Makes room for n more bytes (n <= cap) and returns where to write them. */
static inline char *out_reserve(out *o, size_t n)
{
    if (o->cap - o->len < n) out_flush(o);
    return o->buf + o->len;
}

static inline void out_commit(out *o, size_t n)
{
    o->len += n;
    o->written += n;
}

static int out_close(out *o)
{
    out_flush(o);
    if (!o->err && fsync(o->fd) < 0 && errno != EINVAL && errno != EROFS) o->err = errno;
    if (close(o->fd) < 0 && !o->err) o->err = errno;
    int rc = 0;
    if (o->err) {
        fprintf(stderr, "ember gen: cannot write '%s': %s\n", o->path, strerror(o->err));
        rc = -1;
    }
    em__free(o->buf);
    em__free(o->path);
    return rc;
}

/* ---- argument parsing ---------------------------------------------------------------------- */

typedef struct gen_args {
    const char *kind;
    const char *out;
    uint64_t size, records, nodes, edges, seed;
    int files;
    bool have_size, have_records, have_nodes, have_edges;
} gen_args;

static void gen_usage(FILE *f)
{
    fprintf(f, "usage: ember gen text     --size BYTES [--seed S] [--files N] OUT\n"
               "       ember gen text-hc  --size BYTES [--seed S] [--files N] OUT\n"
               "       ember gen terasort --records N [--seed S] [--files N] OUT\n"
               "       ember gen graph    --nodes N --edges E [--seed S] OUT\n"
               "BYTES takes a k, m or g suffix (powers of 1024). OUT is a file, or a directory of\n"
               "part-NNNNN files when --files N > 1. The same seed gives the same bytes.\n");
}

/* A decimal number; sizes may end in k, m, g or t (powers of 1024, optionally followed by 'b'),
 * counts take no suffix. Returns 0 or -1. */
static int parse_u64(const char *s, bool allow_suffix, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    uint64_t mult = 1;
    if (allow_suffix && *end) {
        switch (*end | 0x20) {
        case 'k':
            mult = 1ULL << 10;
            break;
        case 'm':
            mult = 1ULL << 20;
            break;
        case 'g':
            mult = 1ULL << 30;
            break;
        case 't':
            mult = 1ULL << 40;
            break;
        default:
            return -1;
        }
        end++;
        if ((*end | 0x20) == 'b') end++;
    }
    if (*end) return -1;
    if (v > UINT64_MAX / mult) return -1;
    *out = (uint64_t)v * mult;
    return 0;
}

/* Returns 0, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv, gen_args *a)
{
    memset(a, 0, sizeof *a);
    a->seed = 1;
    a->files = 1;
    a->kind = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (a->out) {
                fprintf(stderr, "ember gen: unexpected argument '%s'\n", arg);
                return 2;
            }
            a->out = arg;
            continue;
        }
        static const char *names[] = {"--size",  "--records", "--nodes",
                                      "--edges", "--seed",    "--files"};
        int which = -1;
        const char *val = NULL;
        for (int k = 0; k < (int)EM_ARRAY_LEN(names); k++) {
            size_t n = strlen(names[k]);
            if (!strncmp(arg, names[k], n) && (arg[n] == '\0' || arg[n] == '=')) {
                which = k;
                val = arg[n] == '=' ? arg + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
                break;
            }
        }
        if (which < 0) {
            fprintf(stderr, "ember gen: unknown option '%s'\n", arg);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "ember gen: option %s needs a value\n", names[which]);
            return 2;
        }
        uint64_t v;
        if (parse_u64(val, which == 0, &v) < 0) {
            fprintf(stderr, "ember gen: bad value '%s' for %s (expected a non-negative %s)\n", val,
                    names[which], which == 0 ? "size such as 64k, 10m, 1g" : "integer");
            return 2;
        }
        switch (which) {
        case 0:
            a->size = v, a->have_size = true;
            break;
        case 1:
            a->records = v, a->have_records = true;
            break;
        case 2:
            a->nodes = v, a->have_nodes = true;
            break;
        case 3:
            a->edges = v, a->have_edges = true;
            break;
        case 4:
            a->seed = v;
            break;
        case 5:
            if (v < 1 || v > 100000) {
                fprintf(stderr, "ember gen: --files must be between 1 and 100000\n");
                return 2;
            }
            a->files = (int)v;
            break;
        }
    }
    if (!a->out) {
        fprintf(stderr, "ember gen %s: missing OUT\n", a->kind);
        return 2;
    }
    return 0;
}

/* The path of file i: OUT itself, or OUT/part-NNNNN (creating OUT) when there are several. */
static int file_path(const gen_args *a, int i, char *buf, size_t cap)
{
    if (a->files == 1) {
        snprintf(buf, cap, "%s", a->out);
        return 0;
    }
    if (i == 0 && mkdir(a->out, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "ember gen: cannot create directory '%s': %s\n", a->out, strerror(errno));
        return -1;
    }
    if ((size_t)snprintf(buf, cap, "%s/part-%05d", a->out, i) >= cap) {
        fprintf(stderr, "ember gen: path too long: '%s'\n", a->out);
        return -1;
    }
    return 0;
}

/* ---- text: RandomTextWriter --------------------------------------------------------------- */

/* The 1000-word vocabulary: word i = A[i / 100] B[i / 10 % 10] C[i % 10]. A and B are all
 * two letters and the C are distinct, so the 1000 words are distinct by construction. */
static const char *const voc_a[10] = {"ba", "ce", "di", "fo", "gu", "ha", "ki", "lo", "mu", "ne"};
static const char *const voc_b[10] = {"ra", "le", "mi", "no", "pu", "sa", "te", "vi", "do", "ru"};
static const char *const voc_c[10] = {"",   "n",   "ra",   "lis",  "tor",
                                      "ic", "ful", "ness", "sian", "mund"};

typedef struct vocab {
    uint32_t n, nslots, bw; /* words; alias slots and bucket width (text-hc) */
    uint32_t *off;          /* word i is pool[off[i] .. off[i+1]) */
    char *pool;
    /* Zipf sampling by the alias method (text-hc only): slot i keeps i with probability
     * (thresh + 1) / 2^32, else gives alias; one array so that a draw costs one cache miss. */
    struct alias_slot {
        uint32_t thresh, alias;
    } * slots;
} vocab;

static void vocab_free(vocab *v)
{
    em__free(v->off);
    em__free(v->pool);
    em__free(v->slots);
}

static int vocab_text(vocab *v)
{
    memset(v, 0, sizeof *v);
    v->n = 1000;
    v->off = em__malloc((v->n + 1) * sizeof *v->off);
    v->pool = em__malloc(v->n * 10);
    if (!v->off || !v->pool) return -1;
    uint32_t pos = 0;
    for (uint32_t i = 0; i < v->n; i++) {
        v->off[i] = pos;
        pos += (uint32_t)sprintf(v->pool + pos, "%s%s%s", voc_a[i / 100], voc_b[i / 10 % 10],
                                 voc_c[i % 10]);
    }
    v->off[v->n] = pos;
    return 0;
}

/* text-hc: 1,000,000 words; word of rank r spells r in base 20 with two-letter syllables
 * (distinct numbers, distinct spellings), so frequent words are short as in real text.
 * Ranks follow Zipf(1.0): P(r) proportional to 1/(r+1). To keep a draw in cache, the alias
 * table holds the HC_HEAD most frequent ranks one by one (about 81% of the mass) and the rest
 * in buckets of hc_bw consecutive ranks, uniform inside a bucket (the law varies by under
 * 0.4% across a bucket). */
#define HC_WORDS   1000000u
#define HC_HEAD    65536u
#define HC_BUCKETS 4096u

static int vocab_zipf(vocab *v)
{
    static const char syl[20][3] = {"ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "we",
                                    "ba", "de", "fi", "go", "hu", "ja", "ze", "xo", "yi", "qu"};
    memset(v, 0, sizeof *v);
    v->n = HC_WORDS;
    v->bw = (HC_WORDS - HC_HEAD + HC_BUCKETS - 1) / HC_BUCKETS;
    v->nslots = HC_HEAD + (HC_WORDS - HC_HEAD + v->bw - 1) / v->bw;
    v->off = em__malloc((v->n + 1) * sizeof *v->off);
    v->pool = em__malloc((size_t)v->n * 10);
    v->slots = em__malloc(v->nslots * sizeof *v->slots);
    double *p = em__malloc(v->nslots * sizeof *p);
    uint32_t *small = em__malloc(v->nslots * sizeof *small);
    uint32_t *large = em__malloc(v->nslots * sizeof *large);
    if (!v->off || !v->pool || !v->slots || !p || !small || !large) {
        em__free(p), em__free(small), em__free(large);
        return -1;
    }
    uint32_t pos = 0;
    for (uint32_t i = 0; i < v->n; i++) {
        v->off[i] = pos;
        char digits[8];
        int nd = 0;
        uint32_t x = i;
        do {
            digits[nd++] = (char)(x % 20);
            x /= 20;
        } while (x);
        while (nd--) {
            memcpy(v->pool + pos, syl[(int)digits[nd]], 2);
            pos += 2;
        }
    }
    v->off[v->n] = pos;
    /* Slot weights: single ranks, then buckets; then Vose's alias method. */
    double sum = 0;
    for (uint32_t i = 0; i < v->nslots; i++) p[i] = 0;
    for (uint32_t i = 0; i < v->n; i++) {
        uint32_t slot = i < HC_HEAD ? i : HC_HEAD + (i - HC_HEAD) / v->bw;
        p[slot] += 1.0 / (i + 1);
        sum += 1.0 / (i + 1);
    }
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < v->nslots; i++) {
        p[i] = p[i] / sum * v->nslots;
        if (p[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[nl - 1];
        v->slots[s].thresh = (uint32_t)(p[s] * 4294967295.0);
        v->slots[s].alias = l;
        p[l] -= 1.0 - p[s];
        if (p[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl) {
        uint32_t l = large[--nl];
        v->slots[l] = (struct alias_slot){UINT32_MAX, l};
    }
    while (ns) {
        uint32_t s = small[--ns];
        v->slots[s] = (struct alias_slot){UINT32_MAX, s};
    }
    em__free(p), em__free(small), em__free(large);
    return 0;
}

static inline uint32_t vocab_pick(const vocab *v, rng *r)
{
    if (!v->slots) return rng_below(r, v->n);
    uint64_t x = rng_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)v->nslots) >> 32);
    struct alias_slot sl = v->slots[i];
    uint32_t slot = (uint32_t)x <= sl.thresh ? i : sl.alias;
    if (slot < HC_HEAD) return slot;
    uint32_t first = HC_HEAD + (slot - HC_HEAD) * v->bw;
    return first + rng_below(r, EM_MIN(v->bw, v->n - first));
}

static int gen_text(const gen_args *a, bool zipf)
{
    if (!a->have_size) {
        fprintf(stderr, "ember gen %s: --size is required\n", a->kind);
        return 2;
    }
    vocab v;
    if ((zipf ? vocab_zipf(&v) : vocab_text(&v)) < 0) {
        vocab_free(&v);
        fprintf(stderr, "ember gen: out of memory\n");
        return 1;
    }
    int rc = 0;
    for (int f = 0; f < a->files && rc == 0; f++) {
        uint64_t share = a->size / (uint64_t)a->files + ((uint64_t)f < a->size % a->files);
        char path[4096];
        out o;
        if (file_path(a, f, path, sizeof path) < 0 || out_open(&o, path) < 0) {
            rc = 1;
            break;
        }
        rng r;
        rng_seed(&r, a->seed, (uint64_t)f + (zipf ? 0x1000000 : 0));
        while (o.written < share) {
            /* At most 109 words of at most 10 bytes plus separators. */
            char *p = out_reserve(&o, 109 * 12), *start = p;
            int nkey = 5 + (int)rng_below(&r, 5), nval = 20 + (int)rng_below(&r, 80);
            for (int w = 0; w < nkey + nval; w++) {
                uint32_t i = vocab_pick(&v, &r);
                uint32_t len = v.off[i + 1] - v.off[i];
                memcpy(p, v.pool + v.off[i], len);
                p += len;
                *p++ = ' ';
            }
            p[-1] = '\n';
            out_commit(&o, (size_t)(p - start));
        }
        if (out_close(&o) < 0) rc = 1;
    }
    vocab_free(&v);
    return rc;
}

/* ---- terasort: gensort records ------------------------------------------------------------ */

static void gensort_record(uint64_t seed, uint64_t row, uint8_t rec[100])
{
    static const char hex[] = "0123456789ABCDEF";
    uint64_t k0 = mix64(seed, row * 2), k1 = mix64(seed, row * 2 + 1);
    for (int i = 0; i < 8; i++) rec[i] = (uint8_t)(k0 >> (56 - 8 * i));
    rec[8] = (uint8_t)(k1 >> 56);
    rec[9] = (uint8_t)(k1 >> 48);
    rec[10] = 0x00;
    rec[11] = 0x11;
    for (int i = 0; i < 32; i++) {
        int shift = 4 * (31 - i);
        rec[12 + i] = (uint8_t)(shift >= 64 ? '0' : hex[(row >> shift) & 15]);
    }
    rec[44] = 0x88, rec[45] = 0x99, rec[46] = 0xAA, rec[47] = 0xBB;
    for (int i = 0; i < 12; i++) {
        uint8_t c = (uint8_t)hex[(k1 >> (4 * i)) & 15];
        memset(rec + 48 + 4 * i, c, 4);
    }
    rec[96] = 0xCC, rec[97] = 0xDD, rec[98] = 0xEE, rec[99] = 0xFF;
}

static int gen_terasort(const gen_args *a)
{
    if (!a->have_records) {
        fprintf(stderr, "ember gen terasort: --records is required\n");
        return 2;
    }
    for (int f = 0; f < a->files; f++) {
        uint64_t first = a->records / (uint64_t)a->files * (uint64_t)f +
                         EM_MIN((uint64_t)f, a->records % (uint64_t)a->files);
        uint64_t count = a->records / (uint64_t)a->files + ((uint64_t)f < a->records % a->files);
        char path[4096];
        out o;
        if (file_path(a, f, path, sizeof path) < 0 || out_open(&o, path) < 0) return 1;
        for (uint64_t row = first; row < first + count; row++) {
            gensort_record(a->seed, row, (uint8_t *)out_reserve(&o, 100));
            out_commit(&o, 100);
        }
        if (out_close(&o) < 0) return 1;
    }
    return 0;
}

/* ---- graph: R-MAT ------------------------------------------------------------------------- */

static char *put_u64(char *p, uint64_t x)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    while (n) *p++ = tmp[--n];
    return p;
}

static int gen_graph(const gen_args *a)
{
    if (!a->have_nodes || !a->have_edges) {
        fprintf(stderr, "ember gen graph: --nodes and --edges are required\n");
        return 2;
    }
    if (a->nodes < 1 || a->nodes > (1ULL << 32)) {
        fprintf(stderr, "ember gen graph: --nodes must be between 1 and 4294967296\n");
        return 2;
    }
    if (a->files != 1) {
        fprintf(stderr, "ember gen graph: --files is not supported for graphs\n");
        return 2;
    }
    int scale = 0;
    while ((1ULL << scale) < a->nodes) scale++;
    /* The quadrant thresholds of (a, b, c, d) = (0.57, 0.19, 0.19, 0.05) on 32-bit integers. */
    const uint32_t ta = (uint32_t)(0.57 * 4294967296.0), tb = ta + (uint32_t)(0.19 * 4294967296.0),
                   tc = tb + (uint32_t)(0.19 * 4294967296.0);
    rng r;
    rng_seed(&r, a->seed, 0x6a09e667);
    uint32_t *perm = em__malloc((size_t)a->nodes * sizeof *perm);
    if (!perm) {
        fprintf(stderr, "ember gen graph: out of memory for %" PRIu64 " nodes\n", a->nodes);
        return 1;
    }
    for (uint64_t i = 0; i < a->nodes; i++) perm[i] = (uint32_t)i;
    for (uint64_t i = a->nodes - 1; i > 0; i--) {
        uint64_t j = (uint64_t)(((__uint128_t)rng_next(&r) * (i + 1)) >> 64);
        uint32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    out o;
    if (out_open(&o, a->out) < 0) {
        em__free(perm);
        return 1;
    }
    char *p = out_reserve(&o, 512);
    int n = snprintf(p, 512,
                     "# ember gen graph: R-MAT power-law graph, nodes %" PRIu64 " edges %" PRIu64
                     " seed %" PRIu64 "\n# a=0.57 b=0.19 c=0.19 d=0.05; duplicates and "
                     "self-loops possible\n# src dst\n",
                     a->nodes, a->edges, a->seed);
    out_commit(&o, (size_t)n);
    for (uint64_t e = 0; e < a->edges; e++) {
        uint64_t src, dst;
        do {
            src = dst = 0;
            for (int level = 0; level < scale; level++) {
                uint32_t x = (uint32_t)rng_next(&r);
                int q = x < ta ? 0 : x < tb ? 1 : x < tc ? 2 : 3;
                src = (src << 1) | (uint64_t)(q >> 1);
                dst = (dst << 1) | (uint64_t)(q & 1);
            }
        } while (src >= a->nodes || dst >= a->nodes);
        char *s = out_reserve(&o, 48), *q = s;
        q = put_u64(q, perm[src]);
        *q++ = ' ';
        q = put_u64(q, perm[dst]);
        *q++ = '\n';
        out_commit(&o, (size_t)(q - s));
    }
    em__free(perm);
    return out_close(&o) < 0 ? 1 : 0;
}

/* ---- entry --------------------------------------------------------------------------------- */

int em_cli_gen(int argc, char **argv)
{
    if (argc < 2) {
        gen_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        gen_usage(stdout);
        return 0;
    }
    gen_args a;
    bool text = !strcmp(argv[1], "text"), hc = !strcmp(argv[1], "text-hc");
    bool tera = !strcmp(argv[1], "terasort"), graph = !strcmp(argv[1], "graph");
    if (!text && !hc && !tera && !graph) {
        fprintf(stderr, "ember gen: unknown kind '%s' (text, text-hc, terasort, graph)\n", argv[1]);
        gen_usage(stderr);
        return 2;
    }
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        gen_usage(stderr);
        return rc;
    }
    if (text || hc)
        rc = gen_text(&a, hc);
    else if (tera)
        rc = gen_terasort(&a);
    else
        rc = gen_graph(&a);
    if (rc == 2) gen_usage(stderr);
    return rc;
}
