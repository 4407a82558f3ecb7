/* wc_ceiling: the hand-written, single-threaded C word count that Ember's word count is
 * measured against (the "ceiling" rows of bench/run.sh). It is what one core can do with no
 * framework at all: large read()s, a tokenizer on the six ASCII whitespace bytes
 * (space \t \n \v \f \r), XXH3-64 of each word, and an open-addressing (linear probing) table
 * (words of up to 12 bytes kept in the slot, longer ones in one arena).
 *
 *   wc_ceiling INPUT... OUTFILE
 *
 * INPUT is a file or a directory (its visible regular files, see ceiling_io.h); each file is
 * tokenized on its own (end of file ends a word). OUTFILE gets one line per distinct word,
 * "word<TAB>count\n", in no particular order. On stdout it prints one line
 * "bytes B words W distinct D" for bench/run.sh. Any error exits 1 with a message.
 *
 * Standalone program (not linked with libember), run once per benchmark by bench/run.sh. */
#include "ceiling_io.h"

#include <stdint.h>
#include <xxhash.h>

enum { CHUNK = 8 << 20 };

enum { INLINE = 12 };

/* 32 bytes. A word of up to INLINE bytes lives in the slot itself, so finding it costs one
 * cache miss; a longer one is in the arena, its offset stored in data[0..8). */
typedef struct {
    uint64_t hash;
    uint64_t count; /* 0 = empty slot */
    uint32_t len;
    char data[INLINE];
} slot;

typedef struct {
    slot *slots;
    size_t cap, used; /* cap is a power of two */
    char *arena;
    size_t arena_len, arena_cap;
} table;

static uint8_t is_ws[256];

static void table_init(table *t)
{
    t->cap = 1 << 16;
    t->used = 0;
    t->slots = calloc(t->cap, sizeof(slot));
    if (!t->slots) ceil_die("out of memory for the hash table");
    t->arena_cap = 1 << 20;
    t->arena_len = 0;
    t->arena = ceil_xmalloc(t->arena_cap);
}

static void table_grow(table *t)
{
    size_t ncap = t->cap * 2;
    slot *ns = calloc(ncap, sizeof(slot));
    if (!ns) ceil_die("out of memory growing the hash table to %zu slots", ncap);
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].count) continue;
        size_t j = t->slots[i].hash & (ncap - 1);
        while (ns[j].count) j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
}

static inline const char *slot_word(const table *t, const slot *s)
{
    if (s->len <= INLINE) return s->data;
    uint64_t off;
    memcpy(&off, s->data, sizeof off);
    return t->arena + off;
}

static inline void table_add(table *t, const char *w, size_t len)
{
    uint64_t h = XXH3_64bits(w, len);
    size_t mask = t->cap - 1, i = h & mask;
    for (;;) {
        slot *s = &t->slots[i];
        if (!s->count) break;
        if (s->hash == h && s->len == len && memcmp(slot_word(t, s), w, len) == 0) {
            s->count++;
            return;
        }
        i = (i + 1) & mask;
    }
    slot *s = &t->slots[i];
    *s = (slot){.hash = h, .count = 1, .len = (uint32_t)len};
    if (len <= INLINE) {
        memcpy(s->data, w, len);
    } else {
        if (t->arena_len + len > t->arena_cap) {
            while (t->arena_len + len > t->arena_cap) t->arena_cap *= 2;
            t->arena = ceil_xrealloc(t->arena, t->arena_cap);
        }
        memcpy(t->arena + t->arena_len, w, len);
        uint64_t off = t->arena_len;
        memcpy(s->data, &off, sizeof off);
        t->arena_len += len;
    }
    if (++t->used * 2 > t->cap) table_grow(t);
}

/* Tokenizes one file into t; returns the bytes read, adds the word count to *words. */
static uint64_t count_file(table *t, const char *path, char **bufp, size_t *capp, uint64_t *words)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) ceil_die("cannot open input '%s': %s", path, strerror(errno));
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint64_t total = 0, nw = 0;
    size_t carry = 0; /* bytes of an unfinished word kept at the start of the buffer */
    for (;;) {
        if (*capp < carry + CHUNK + 1) { /* a word longer than the buffer: grow it */
            *capp = carry + CHUNK + 1;
            *bufp = ceil_xrealloc(*bufp, *capp);
        }
        char *buf = *bufp;
        size_t got = ceil_read(fd, buf + carry, CHUNK, path);
        total += got;
        int eof = got < CHUNK;
        size_t len = carry + got;
        buf[len] = ' '; /* sentinel: every scan below stops at or before it */
        const unsigned char *p = (const unsigned char *)buf, *end = p + len;
        carry = 0;
        for (;;) {
            while (p < end && is_ws[*p]) p++;
            if (p >= end) break;
            const unsigned char *start = p;
            while (!is_ws[*p]) p++;
            if (p == end && !eof) { /* the word may continue in the next read */
                carry = (size_t)(end - start);
                memmove(buf, start, carry);
                break;
            }
            table_add(t, (const char *)start, (size_t)(p - start));
            nw++;
        }
        if (eof) break;
    }
    close(fd);
    *words += nw;
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: wc_ceiling INPUT... OUTFILE\n");
        return 2;
    }
    const char *out = argv[argc - 1];
    ceil_files files = {0};
    for (int i = 1; i < argc - 1; i++) ceil_files_add(&files, argv[i]);
    if (files.n == 0) ceil_die("no input files in '%s'", argv[1]);

    const char *ws = " \t\n\v\f\r";
    for (const char *c = ws; *c; c++) is_ws[(unsigned char)*c] = 1;

    table t;
    table_init(&t);
    size_t cap = CHUNK + 1;
    char *buf = ceil_xmalloc(cap);
    uint64_t bytes = 0, words = 0;
    for (size_t i = 0; i < files.n; i++)
        bytes += count_file(&t, files.paths[i], &buf, &cap, &words);
    free(buf);

    int fd = ceil_open_out(out);
    size_t ocap = 1 << 20, olen = 0;
    char *obuf = ceil_xmalloc(ocap);
    for (size_t i = 0; i < t.cap; i++) {
        const slot *s = &t.slots[i];
        if (!s->count) continue;
        if (olen + s->len + 32 > ocap) {
            ceil_write(fd, obuf, olen, out);
            olen = 0;
            if (s->len + 32 > ocap) {
                ocap = s->len + 32;
                obuf = ceil_xrealloc(obuf, ocap);
            }
        }
        memcpy(obuf + olen, slot_word(&t, s), s->len);
        olen += s->len;
        olen += (size_t)sprintf(obuf + olen, "\t%llu\n", (unsigned long long)s->count);
    }
    ceil_write(fd, obuf, olen, out);
    ceil_close_out(fd, out);
    printf("bytes %llu words %llu distinct %zu\n", (unsigned long long)bytes,
           (unsigned long long)words, t.used);

    free(obuf);
    free(t.slots);
    free(t.arena);
    ceil_files_free(&files);
    return 0;
}
