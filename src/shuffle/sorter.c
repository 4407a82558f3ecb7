/* The external sorter of the shuffle: records held in an arena with an item array (and, for
 * combining, an open-addressing hash table on (partition, key)), sorted in memory, spilled
 * as sorted runs past the execution-memory grant, and merged k ways (binary heap) at the end.
 *
 * Orders: SHUF_BY_PART (partition id only: a counting sort, O(n), for the writer without
 * combine) and SHUF_BY_PART_REC (partition, then the record's bytes, which for pair records is
 * the key order, ties broken by value; optionally descending). Equal keys are therefore
 * adjacent in a merged stream, which the combiner and grouping rely on.
 *
 * Spill run layout: frames (blockio.c) whose payload is items back to back:
 *   offset  size  field
 *   0       4     partition  u32 LE
 *   4       4     len        u32 LE
 *   8       len   the encoded pair record
 * Run files are unlinked at creation, so they vanish with their fd on every path.
 *
 * Memory: arena chunks, the item array, the table and every run reader's buffers are charged
 * to the owner's shuf_mem. When runs exist, finish spills the remainder too, so the merge holds
 * only run buffers; more runs than half the grant can buffer are merged in passes.
 *
 * Thread rule: the task thread of the owning writer or reader.
 */
#include "shuffle/shuffle_int.h"

#include <string.h>
#include <unistd.h>

struct shuf_chunk {
    shuf_chunk *next;
    size_t used, cap;
    uint8_t data[];
};

#define RUN_ITEM_HDR 8
#define SWAP_ITEM(a, b)                                                                            \
    do {                                                                                           \
        shuf_item t_ = (a);                                                                        \
        (a) = (b);                                                                                 \
        (b) = t_;                                                                                  \
    } while (0)

void shuf_sorter_init(shuf_sorter *s, em_task *t, shuf_mem *mem, const shuf_conf *c, int order,
                      bool desc, bool hashed)
{
    *s = (shuf_sorter){
        .t = t, .mem = mem, .conf = c, .order = order, .desc = desc, .hashed = hashed};
    s->chunk_size = (size_t)EM_MAX((int64_t)16384, EM_MIN(mem->chunk, (int64_t)1 << 20));
    s->frame_size = shuf_frame_size(mem, c);
}

/* ---- arena -------------------------------------------------------------------------------- */

static uint8_t *arena_alloc(shuf_sorter *s, size_t n)
{
    while (s->cur) {
        if (s->cur->cap - s->cur->used >= n) {
            uint8_t *p = s->cur->data + s->cur->used;
            s->cur->used += n;
            return p;
        }
        if (!s->cur->next) break;
        s->cur = s->cur->next;
    }
    size_t cap = EM_MAX(s->chunk_size, n);
    if (!shuf_mem_reserve(s->mem, (int64_t)(cap + sizeof(shuf_chunk)))) return NULL;
    shuf_chunk *c = em__malloc(sizeof *c + cap);
    if (!c) {
        shuf_mem_unuse(s->mem, (int64_t)(cap + sizeof(shuf_chunk)));
        return NULL;
    }
    c->next = NULL;
    c->cap = cap;
    c->used = n;
    if (s->cur)
        s->cur->next = c;
    else
        s->chunks = c;
    s->cur = c;
    return c->data;
}

/* Forgets the items; keeps normal chunks for reuse, frees oversized ones. */
static void arena_reset(shuf_sorter *s)
{
    shuf_chunk **pp = &s->chunks;
    while (*pp) {
        shuf_chunk *c = *pp;
        if (c->cap > s->chunk_size) {
            *pp = c->next;
            shuf_mem_unuse(s->mem, (int64_t)(c->cap + sizeof *c));
            em__free(c);
            continue;
        }
        c->used = 0;
        pp = &c->next;
    }
    s->cur = s->chunks;
    s->n = 0;
    if (s->slots) memset(s->slots, 0, s->nslots * sizeof *s->slots);
}

void shuf_sorter_drop_memory(shuf_sorter *s)
{
    while (s->chunks) {
        shuf_chunk *c = s->chunks;
        s->chunks = c->next;
        shuf_mem_unuse(s->mem, (int64_t)(c->cap + sizeof *c));
        em__free(c);
    }
    s->cur = NULL;
    shuf_mem_unuse(s->mem, (int64_t)(s->cap * sizeof *s->items));
    shuf_mem_unuse(s->mem, (int64_t)(s->nslots * sizeof *s->slots));
    em__free(s->items);
    em__free(s->slots);
    s->items = NULL;
    s->slots = NULL;
    s->n = s->cap = s->nslots = 0;
}

void shuf_sorter_free(shuf_sorter *s)
{
    shuf_sorter_drop_memory(s);
    for (size_t i = 0; i < s->nruns; i++) close(s->runs[i].fd);
    em__free(s->runs);
    s->runs = NULL;
    s->nruns = s->runs_cap = 0;
}

/* Room for one more item (and its table slot). false when memory is refused. */
static bool item_room(shuf_sorter *s)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        if (!shuf_mem_reserve(s->mem, (int64_t)((cap - s->cap) * sizeof *s->items))) return false;
        shuf_item *it = em__realloc(s->items, cap * sizeof *it);
        if (!it) {
            shuf_mem_unuse(s->mem, (int64_t)((cap - s->cap) * sizeof *s->items));
            return false;
        }
        s->items = it;
        s->cap = cap;
    }
    if (s->hashed && (s->n + 1) * 2 > s->nslots) {
        size_t ns = s->nslots ? s->nslots * 2 : 128;
        if (!shuf_mem_reserve(s->mem, (int64_t)(ns * sizeof(uint32_t)))) return false;
        uint32_t *sl = em__calloc(ns, sizeof *sl);
        if (!sl) {
            shuf_mem_unuse(s->mem, (int64_t)(ns * sizeof(uint32_t)));
            return false;
        }
        for (size_t i = 0; i < s->n; i++) {
            size_t h = (size_t)s->items[i].aux & (ns - 1);
            while (sl[h]) h = (h + 1) & (ns - 1);
            sl[h] = (uint32_t)(i + 1);
        }
        shuf_mem_unuse(s->mem, (int64_t)(s->nslots * sizeof(uint32_t)));
        em__free(s->slots);
        s->slots = sl;
        s->nslots = ns;
    }
    return true;
}

/* Copies rec into the arena as a new item (spilling first if memory is refused). */
static int add_item(shuf_sorter *s, uint32_t part, uint64_t aux, const uint8_t *rec, size_t len)
{
    if (len > UINT32_MAX / 2) return em__set_error(EM_ETOOBIG, "shuffle: record of %zu bytes", len);
    uint8_t *p = NULL;
    for (int attempt = 0;; attempt++) {
        if (item_room(s) && (p = arena_alloc(s, len))) break;
        if (attempt == 0 && s->n > 0) {
            int rc = shuf_sorter_spill(s);
            if (rc) return rc;
            continue;
        }
        /* Nothing left to spill (other tasks hold the pool): hold this one record anyway,
         * beyond the grant; the next add spills it. */
        s->mem->forcing = true;
        bool ok = item_room(s) && (p = arena_alloc(s, len));
        s->mem->forcing = false;
        if (!ok)
            return em__set_error(EM_ENOMEM, "shuffle: out of memory for a %zu-byte record", len);
        break;
    }
    memcpy(p, rec, len);
    s->items[s->n] = (shuf_item){.rec = p, .len = (uint32_t)len, .part = part, .aux = aux};
    if (s->hashed) {
        size_t h = (size_t)aux & (s->nslots - 1);
        while (s->slots[h]) h = (h + 1) & (s->nslots - 1);
        s->slots[h] = (uint32_t)(s->n + 1);
    }
    s->n++;
    return 0;
}

int shuf_sorter_add(shuf_sorter *s, uint32_t part, const uint8_t *rec, size_t len)
{
    return add_item(s, part, 0, rec, len);
}

shuf_item *shuf_sorter_find(shuf_sorter *s, uint32_t part, const uint8_t *k, size_t klen,
                            uint64_t hash)
{
    if (!s->nslots) return NULL;
    size_t h = (size_t)hash & (s->nslots - 1);
    while (s->slots[h]) {
        shuf_item *it = &s->items[s->slots[h] - 1];
        if (it->aux == hash && it->part == part && it->len > klen + 2 &&
            memcmp(it->rec + 1, k, klen) == 0)
            return it; /* encodings are prefix-free: equal leading bytes, equal key */
        h = (h + 1) & (s->nslots - 1);
    }
    return NULL;
}

int shuf_sorter_put(shuf_sorter *s, shuf_item *existing, uint32_t part, uint64_t hash,
                    const uint8_t *rec, size_t len)
{
    if (!existing) return add_item(s, part, hash, rec, len);
    if (len <= existing->len) { /* in place: the usual case for fixed-size combiners */
        memmove((uint8_t *)existing->rec, rec, len);
        existing->len = (uint32_t)len;
        return 0;
    }
    uint8_t *p = arena_alloc(s, len);
    if (!p) {
        /* Drop the old combiner (rec, the caller's copy, supersedes it), spill the rest and
         * start afresh. */
        *existing = s->items[--s->n];
        int rc = s->n ? shuf_sorter_spill(s) : 0;
        if (rc) return rc;
        arena_reset(s);
        return add_item(s, part, hash, rec, len);
    }
    memcpy(p, rec, len);
    existing->rec = p;
    existing->len = (uint32_t)len;
    return 0;
}

/* ---- sorting ------------------------------------------------------------------------------ */

static inline uint64_t rec_prefix(const uint8_t *p, size_t len)
{
    uint8_t b[8] = {0};
    memcpy(b, p, len < 8 ? len : 8);
    uint64_t x;
    memcpy(&x, b, 8);
    return __builtin_bswap64(x);
}

static inline int item_cmp(const shuf_item *a, const shuf_item *b, int order, bool desc)
{
    if (a->part != b->part) return a->part < b->part ? -1 : 1;
    if (order == SHUF_BY_PART) return 0;
    int c;
    if (a->aux != b->aux) {
        c = a->aux < b->aux ? -1 : 1;
    } else {
        size_t n = a->len < b->len ? a->len : b->len;
        c = memcmp(a->rec, b->rec, n);
        if (c == 0) c = (a->len > b->len) - (a->len < b->len);
    }
    return desc ? -c : c;
}

static void insertion_sort(shuf_item *v, size_t n, int order, bool desc)
{
    for (size_t i = 1; i < n; i++) {
        shuf_item x = v[i];
        size_t j = i;
        while (j > 0 && item_cmp(&x, &v[j - 1], order, desc) < 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Quicksort with Hoare partitioning (robust to many equal keys), recursing on the smaller
 * side. */
static void quick_sort(shuf_item *v, size_t n, int order, bool desc)
{
    while (n > 16) {
        size_t m = n / 2;
        if (item_cmp(&v[m], &v[0], order, desc) < 0) SWAP_ITEM(v[m], v[0]);
        if (item_cmp(&v[n - 1], &v[m], order, desc) < 0) {
            SWAP_ITEM(v[n - 1], v[m]);
            if (item_cmp(&v[m], &v[0], order, desc) < 0) SWAP_ITEM(v[m], v[0]);
        }
        shuf_item pivot = v[m];
        size_t i = 0, j = n - 1;
        for (;;) {
            while (item_cmp(&v[i], &pivot, order, desc) < 0) i++;
            while (item_cmp(&pivot, &v[j], order, desc) < 0) j--;
            if (i >= j) break;
            SWAP_ITEM(v[i], v[j]);
            i++;
            j--;
        }
        size_t left = j + 1; /* [0, j] and [j+1, n) */
        if (left < n - left) {
            quick_sort(v, left, order, desc);
            v += left;
            n -= left;
        } else {
            quick_sort(v + left, n - left, order, desc);
            n = left;
        }
    }
    insertion_sort(v, n, order, desc);
}

/* Sorts the in-memory items. BY_PART: counting sort by partition (stable, O(n)). */
static int sort_items(shuf_sorter *s)
{
    if (s->n < 2) return 0;
    if (s->order == SHUF_BY_PART) {
        uint32_t maxp = 0;
        for (size_t i = 0; i < s->n; i++) maxp = EM_MAX(maxp, s->items[i].part);
        size_t np = (size_t)maxp + 1;
        size_t extra = s->n * sizeof(shuf_item) + (np + 1) * sizeof(size_t);
        shuf_mem_force(s->mem, (int64_t)extra);
        size_t *start = em__calloc(np + 1, sizeof *start);
        shuf_item *tmp = em__malloc(s->n * sizeof *tmp);
        if (!start || !tmp) {
            em__free(start);
            em__free(tmp);
            shuf_mem_unuse(s->mem, (int64_t)extra);
            return em__set_error(EM_ENOMEM, "shuffle: sort buffer");
        }
        for (size_t i = 0; i < s->n; i++) start[s->items[i].part + 1]++;
        for (size_t p = 0; p < np; p++) start[p + 1] += start[p];
        for (size_t i = 0; i < s->n; i++) tmp[start[s->items[i].part]++] = s->items[i];
        memcpy(s->items, tmp, s->n * sizeof *tmp);
        em__free(tmp);
        em__free(start);
        shuf_mem_unuse(s->mem, (int64_t)extra);
        return 0;
    }
    for (size_t i = 0; i < s->n; i++)
        s->items[i].aux = rec_prefix(s->items[i].rec, s->items[i].len);
    quick_sort(s->items, s->n, s->order, s->desc);
    return 0;
}

/* ---- runs --------------------------------------------------------------------------------- */

static int runs_push(shuf_sorter *s, int fd, uint64_t size)
{
    if (s->nruns == s->runs_cap) {
        size_t cap = s->runs_cap ? s->runs_cap * 2 : 16;
        shuf_run *r = em__realloc(s->runs, cap * sizeof *r);
        if (!r) return em__set_error(EM_ENOMEM, "shuffle: run list");
        s->runs = r;
        s->runs_cap = cap;
    }
    s->runs[s->nruns++] = (shuf_run){.fd = fd, .size = size};
    s->t->metrics.spill_count++;
    s->t->metrics.spill_bytes += (int64_t)size;
    return 0;
}

static int write_item(shuf_fw *w, uint32_t part, const uint8_t *rec, size_t len)
{
    uint8_t *p = NULL;
    int rc = shuf_fw_space(w, RUN_ITEM_HDR + len, &p);
    if (rc) return rc;
    uint32_t h[2] = {part, (uint32_t)len};
    memcpy(p, h, RUN_ITEM_HDR);
    memcpy(p + RUN_ITEM_HDR, rec, len);
    return 0;
}

static int max_fanin(shuf_sorter *s)
{
    int64_t per = (int64_t)(2 * s->frame_size + 1024);
    int64_t budget = EM_MAX(s->mem->granted, s->mem->chunk) / 2;
    return (int)EM_MAX((int64_t)2, EM_MIN(budget / per, (int64_t)64));
}

static int merge_pass(shuf_sorter *s);

int shuf_sorter_spill(shuf_sorter *s)
{
    if (s->n == 0) return 0;
    int rc = sort_items(s);
    if (rc) return rc;
    int fd = shuf_spill_file(s->t->local_dir);
    if (fd < 0) return fd;
    shuf_fw w;
    rc = shuf_fw_init(&w, fd, "shuffle spill file", s->conf->spill_codec, s->conf, s->frame_size,
                      s->mem);
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        rc = write_item(&w, s->items[i].part, s->items[i].rec, s->items[i].len);
    uint64_t size = 0;
    if (rc == 0) rc = shuf_fw_end_block(&w, &size, NULL);
    shuf_fw_free(&w);
    if (rc == 0) rc = runs_push(s, fd, size);
    if (rc) {
        close(fd);
        return em__error_context(rc, "spilling shuffle data to %s", s->t->local_dir);
    }
    arena_reset(s);
    /* Bound the number of open run files. */
    if (s->nruns >= 256) return merge_pass(s);
    return 0;
}

/* ---- merging ------------------------------------------------------------------------------ */

typedef struct msrc {
    shuf_fr fr; /* run sources */
    bool is_mem;
    size_t mpos; /* memory source: next item index */
    uint32_t part;
    const uint8_t *rec;
    uint32_t len;
} msrc;

struct shuf_merger {
    shuf_sorter *s;
    msrc *src;
    size_t nsrc;
    size_t *heap; /* source indexes, a min-heap on the current items */
    size_t nheap;
    bool started;
    size_t top_src; /* source of the item handed out last (advanced on the next call) */
};

/* Loads the next item of source i: EM_ROW, EM_DONE or an error. */
static int src_advance(shuf_merger *m, msrc *c)
{
    if (c->is_mem) {
        if (c->mpos >= m->s->n) return EM_DONE;
        shuf_item *it = &m->s->items[c->mpos++];
        c->part = it->part;
        c->rec = it->rec;
        c->len = it->len;
        return EM_ROW;
    }
    int rc = shuf_fr_fill(&c->fr);
    if (rc != EM_ROW) return rc;
    size_t avail = c->fr.raw.len - c->fr.rpos;
    const uint8_t *p = c->fr.raw.data + c->fr.rpos;
    uint32_t h[2];
    if (avail < RUN_ITEM_HDR) goto bad;
    memcpy(h, p, RUN_ITEM_HDR);
    if (h[1] > avail - RUN_ITEM_HDR) goto bad;
    c->part = h[0];
    c->len = h[1];
    c->rec = p + RUN_ITEM_HDR;
    c->fr.rpos += RUN_ITEM_HDR + h[1];
    return EM_ROW;
bad:
    return em__set_error(EM_ECORRUPT, "shuffle spill file: malformed item");
}

static inline bool src_less(shuf_merger *m, size_t a, size_t b)
{
    msrc *x = &m->src[a], *y = &m->src[b];
    shuf_item ia = {.rec = x->rec, .len = x->len, .part = x->part};
    shuf_item ib = {.rec = y->rec, .len = y->len, .part = y->part};
    int c = item_cmp(&ia, &ib, m->s->order, m->s->desc);
    return c < 0 || (c == 0 && a < b); /* ties: lower source first (keeps run order) */
}

static void sift_down(shuf_merger *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < m->nheap && src_less(m, m->heap[l], m->heap[best])) best = l;
        if (r < m->nheap && src_less(m, m->heap[r], m->heap[best])) best = r;
        if (best == i) return;
        size_t t = m->heap[i];
        m->heap[i] = m->heap[best];
        m->heap[best] = t;
        i = best;
    }
}

int shuf_merger_next(shuf_merger *m, uint32_t *part, const uint8_t **rec, size_t *len)
{
    if (!m->started) {
        m->started = true;
        for (size_t i = 0; i < m->nsrc; i++) {
            int rc = src_advance(m, &m->src[i]);
            if (rc < 0) return rc;
            if (rc == EM_ROW) m->heap[m->nheap++] = i;
        }
        for (size_t i = m->nheap / 2; i-- > 0;) sift_down(m, i);
    } else if (m->nheap > 0) {
        int rc = src_advance(m, &m->src[m->top_src]);
        if (rc < 0) return rc;
        if (rc == EM_DONE) m->heap[0] = m->heap[--m->nheap];
        if (m->nheap > 0) sift_down(m, 0);
    }
    if (m->nheap == 0) return EM_DONE;
    msrc *c = &m->src[m->heap[0]];
    m->top_src = m->heap[0];
    *part = c->part;
    *rec = c->rec;
    *len = c->len;
    return EM_ROW;
}

void shuf_merger_free(shuf_merger *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nsrc; i++)
        if (!m->src[i].is_mem) shuf_fr_free(&m->src[i].fr);
    em__free(m->src);
    em__free(m->heap);
    em__free(m);
}

/* A merger over runs [first, first+count) (their fds stay owned by the sorter), plus the
 * in-memory items when with_mem. */
static int merger_new(shuf_sorter *s, size_t first, size_t count, bool with_mem, shuf_merger **out)
{
    shuf_merger *m = em__calloc(1, sizeof *m);
    size_t n = count + (with_mem ? 1 : 0);
    if (m) {
        m->src = em__calloc(n ? n : 1, sizeof *m->src);
        m->heap = em__calloc(n ? n : 1, sizeof *m->heap);
    }
    if (!m || !m->src || !m->heap) {
        shuf_merger_free(m);
        return em__set_error(EM_ENOMEM, "shuffle: merger");
    }
    m->s = s;
    for (size_t i = 0; i < count; i++)
        shuf_fr_init(&m->src[i].fr, s->runs[first + i].fd, "shuffle spill file", 0,
                     s->runs[first + i].size, false, 0, s->mem);
    if (with_mem) m->src[count].is_mem = true;
    m->nsrc = n;
    *out = m;
    return 0;
}

/* Merges runs [first, first+count) into one new run that replaces them. */
static int merge_runs(shuf_sorter *s, size_t first, size_t count)
{
    shuf_merger *m;
    int rc = merger_new(s, first, count, false, &m);
    if (rc) return rc;
    int fd = shuf_spill_file(s->t->local_dir);
    if (fd < 0) {
        shuf_merger_free(m);
        return fd;
    }
    shuf_fw w;
    rc = shuf_fw_init(&w, fd, "shuffle spill file", s->conf->spill_codec, s->conf, s->frame_size,
                      s->mem);
    uint32_t part;
    const uint8_t *rec;
    size_t len;
    while (rc == 0 && (rc = shuf_merger_next(m, &part, &rec, &len)) == EM_ROW)
        rc = write_item(&w, part, rec, len);
    uint64_t size = 0;
    if (rc == 0) rc = shuf_fw_end_block(&w, &size, NULL);
    shuf_fw_free(&w);
    shuf_merger_free(m);
    if (rc) {
        close(fd);
        return rc;
    }
    for (size_t i = first; i < first + count; i++) close(s->runs[i].fd);
    memmove(&s->runs[first + 1], &s->runs[first + count],
            (s->nruns - first - count) * sizeof *s->runs);
    s->nruns -= count - 1;
    s->runs[first] = (shuf_run){.fd = fd, .size = size};
    s->t->metrics.spill_bytes += (int64_t)size;
    return 0;
}

/* One pass: every group of max_fanin consecutive runs becomes one run. */
static int merge_pass(shuf_sorter *s)
{
    size_t f = (size_t)max_fanin(s);
    for (size_t i = 0; i < s->nruns; i++) {
        size_t c = EM_MIN(f, s->nruns - i);
        if (c < 2) break;
        int rc = merge_runs(s, i, c);
        if (rc) return rc;
    }
    return 0;
}

int shuf_sorter_finish(shuf_sorter *s, shuf_merger **out)
{
    int rc;
    if (s->nruns == 0) {
        rc = sort_items(s);
        if (rc) return rc;
        if (s->slots) { /* the table is useless once sorted */
            shuf_mem_unuse(s->mem, (int64_t)(s->nslots * sizeof *s->slots));
            em__free(s->slots);
            s->slots = NULL;
            s->nslots = 0;
        }
        return merger_new(s, 0, 0, true, out);
    }
    rc = shuf_sorter_spill(s);
    if (rc) return rc;
    shuf_sorter_drop_memory(s);
    while (s->nruns > (size_t)max_fanin(s)) {
        rc = merge_pass(s);
        if (rc) return rc;
    }
    return merger_new(s, 0, s->nruns, false, out);
}
