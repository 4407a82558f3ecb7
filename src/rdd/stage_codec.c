/* The stage codec (see stage_codec.h for the format): the walk that orders a stage's RDDs
 * (dependencies first, shuffle parents as stubs, shared RDDs once), the generic part of each
 * RDD's record, the partitioner / udf / value helpers the kinds use for their parameters, the
 * stub kind, the lookup of kinds by name, the read-shuffles walk, and job argument blobs.
 *
 * Encode runs on a driver thread over a graph no longer changing; decode on any thread. Both
 * are pure functions of their inputs apart from function references (symbols.c).
 */
#include "rdd/stage_codec.h"

#include "record/record_int.h"

#include <limits.h>
#include <string.h>

#define STAGE_MAGIC   "EMSG"
#define STAGE_VERSION 1

enum { FLAG_CACHED = 1, FLAG_STUB = 2 };
enum { PART_NONE = 0, PART_DEFINED = 1, PART_SEEN = 2 };
enum { STAGE_RESULT = 0, STAGE_MAP = 1 };

/* ---- a small int -> int hash map (RDD ids) -------------------------------------------------- */

typedef struct id_map {
    int *keys, *vals;
    size_t cap, n; /* cap a power of two, or 0 */
} id_map;

static size_t slot_of(const id_map *m, int key)
{
    uint64_t h = (uint64_t)(uint32_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (m->cap - 1);
}

/* The value of key, or -1. */
static int id_map_get(const id_map *m, int key)
{
    if (!m->cap) return -1;
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->vals[i] < 0) return -1;
        if (m->keys[i] == key) return m->vals[i];
    }
}

/* Sets key -> val (val >= 0). 0 or EM_ENOMEM. */
static int id_map_put(id_map *m, int key, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 32;
        id_map bigger = {em__malloc(cap * sizeof(int)), em__malloc(cap * sizeof(int)), cap, 0};
        if (!bigger.keys || !bigger.vals) {
            em__free(bigger.keys);
            em__free(bigger.vals);
            return em__set_error(EM_ENOMEM, "out of memory indexing RDD ids");
        }
        for (size_t i = 0; i < cap; i++) bigger.vals[i] = -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->vals[i] >= 0) id_map_put(&bigger, m->keys[i], m->vals[i]);
        em__free(m->keys);
        em__free(m->vals);
        *m = bigger;
    }
    size_t i = slot_of(m, key);
    while (m->vals[i] >= 0 && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (m->vals[i] < 0) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 0;
}

static void id_map_free(id_map *m)
{
    em__free(m->keys);
    em__free(m->vals);
    *m = (id_map){0};
}

/* A growable stack of RDD pointers with a per-entry cursor. */
typedef struct walk {
    const struct em_rdd **rdd;
    int *next_dep;
    int n, cap;
} walk;

static int walk_push(walk *w, const struct em_rdd *r)
{
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 32;
        const struct em_rdd **v = em__realloc(w->rdd, (size_t)cap * sizeof *v);
        if (v) w->rdd = v;
        int *c = v ? em__realloc(w->next_dep, (size_t)cap * sizeof *c) : NULL;
        if (!c) return em__set_error(EM_ENOMEM, "out of memory walking an RDD graph");
        w->next_dep = c;
        w->cap = cap;
    }
    w->rdd[w->n] = r;
    w->next_dep[w->n++] = 0;
    return 0;
}

static void walk_free(walk *w)
{
    em__free(w->rdd);
    em__free(w->next_dep);
    *w = (walk){0};
}

/* Marks in `full` every RDD reachable from root through narrow dependencies (root included). */
static int narrow_closure(const struct em_rdd *root, id_map *full)
{
    walk w = {0};
    int rc = id_map_put(full, root->id, 1);
    if (!rc) rc = walk_push(&w, root);
    while (!rc && w.n > 0) {
        const struct em_rdd *x = w.rdd[--w.n];
        for (int i = 0; i < x->num_deps && !rc; i++) {
            const struct em_rdd *p = x->deps[i].rdd;
            if (x->deps[i].kind != EM_DEP_NARROW || id_map_get(full, p->id) >= 0) continue;
            rc = id_map_put(full, p->id, 1);
            if (!rc) rc = walk_push(&w, p);
        }
    }
    walk_free(&w);
    return rc;
}

/* ---- kinds ----------------------------------------------------------------------------------- */

static int stub_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    (void)t;
    (void)out;
    return em__set_error(EM_ESTATE,
                         "RDD %d (%s) partition %d is the parent of a shuffle: this stage reads "
                         "its records from the shuffle's map outputs and cannot compute it",
                         r->id, r->name ? r->name : "unnamed", part);
}

static void stub_free(struct em_rdd *r)
{
    (void)r;
}

static const em_rdd_ops stub_ops = {"shuffle parent (stub)", stub_compute, stub_free, NULL, NULL};

static const em_rdd_ops *const *const kind_lists[] = {
    em__source_kinds, em__narrow_kinds, em__structural_kinds, em__shuffled_kinds, em__cogroup_kinds,
};

static const em_rdd_ops *kind_named(const char *name)
{
    for (size_t l = 0; l < EM_ARRAY_LEN(kind_lists); l++)
        for (const em_rdd_ops *const *k = kind_lists[l]; *k; k++)
            if (!strcmp((*k)->name, name)) return *k;
    return NULL;
}

/* ---- helpers for the kinds ------------------------------------------------------------------- */

void em__graph_put_udf(struct em_graph_enc *g, const em_udf *u)
{
    em_wire_put_fn(&g->w, u->fn);
    em_wire_put_bytes(&g->w, u->arg, u->arg ? u->arg_len : 0);
}

int em__graph_get_udf(struct em_graph_dec *g, em_udf *u, bool required, const char *what)
{
    *u = (em_udf){NULL, NULL, 0};
    void (*fn)(void);
    if (em_wire_get_fn(&g->r, &fn)) return g->r.err;
    size_t len;
    const uint8_t *arg = em_wire_get_bytes(&g->r, &len);
    if (g->r.err) return g->r.err;
    if (required && !fn) return em_wire_fail(&g->r, "%s has no function", what);
    if (len) {
        u->arg = em__memdup(arg, len);
        if (!u->arg)
            return g->r.err = em__set_error(EM_ENOMEM,
                                            "out of memory copying a %zu-byte %s "
                                            "argument",
                                            len, what);
        u->arg_len = len;
    }
    u->fn = fn;
    return 0;
}

void em__graph_put_value(struct em_graph_enc *g, em_value v)
{
    em_wire_put_bytes(&g->w, v.data, v.len);
}

int em__graph_get_value(struct em_graph_dec *g, em_value *v, uint8_t **owned, const char *what)
{
    *owned = NULL;
    *v = (em_value){NULL, 0, NULL};
    size_t len;
    const uint8_t *p = em_wire_get_bytes(&g->r, &len);
    if (g->r.err) return g->r.err;
    if (!len || em__value_skip(p, p + len) != len)
        return em_wire_fail(&g->r, "%s is not one well-formed value (%zu bytes)", what, len);
    *owned = em__memdup(p, len);
    if (!*owned) return g->r.err = em__set_error(EM_ENOMEM, "out of memory reading %s", what);
    *v = (em_value){*owned, len, NULL};
    return 0;
}

void em__graph_put_partitioner(struct em_graph_enc *g, const em_partitioner *p)
{
    if (!p) {
        em_wire_put_u8(&g->w, PART_NONE);
        return;
    }
    for (int i = 0; i < g->num_sent; i++)
        if (g->partitioners_sent[i] == p->id) {
            em_wire_put_u8(&g->w, PART_SEEN);
            em_wire_put_ivar(&g->w, p->id);
            return;
        }
    if (g->num_sent == g->cap_sent) {
        int cap = g->cap_sent ? 2 * g->cap_sent : 8;
        int *v = em__realloc(g->partitioners_sent, (size_t)cap * sizeof *v);
        if (!v) {
            if (!g->w.err) g->w.err = em__set_error(EM_ENOMEM, "out of memory encoding a stage");
            return;
        }
        g->partitioners_sent = v;
        g->cap_sent = cap;
    }
    g->partitioners_sent[g->num_sent++] = p->id;
    em_wire_put_u8(&g->w, PART_DEFINED);
    em_wire_put_ivar(&g->w, p->id);
    em_wire_put_u8(&g->w, (uint8_t)p->kind);
    em_wire_put_uvar(&g->w, (uint64_t)p->num_partitions);
    em_wire_put_bool(&g->w, p->descending);
    int nb = p->kind == EM_PART_RANGE ? p->num_bounds : 0;
    em_wire_put_uvar(&g->w, (uint64_t)nb);
    for (int i = 0; i < nb; i++) em__graph_put_value(g, p->bounds[i]);
}

static void partitioner_free(em_partitioner *p)
{
    if (!p) return;
    em__free(p->bounds);
    em__free(p->bound_data);
    em__free(p);
}

static int add_partitioner(struct em_graph_dec *d, em_partitioner *p)
{
    em_stage_graph *g = d->g;
    if (g->num_partitioners == g->cap_partitioners) {
        int cap = g->cap_partitioners ? 2 * g->cap_partitioners : 8;
        em_partitioner **v = em__realloc(g->partitioners, (size_t)cap * sizeof *v);
        if (!v) return d->r.err = em__set_error(EM_ENOMEM, "out of memory decoding a stage");
        g->partitioners = v;
        g->cap_partitioners = cap;
    }
    g->partitioners[g->num_partitioners++] = p;
    return 0;
}

int em__graph_get_partitioner(struct em_graph_dec *d, em_partitioner **out)
{
    *out = NULL;
    em_wire_reader *r = &d->r;
    uint8_t tag = em_wire_get_u8(r);
    if (r->err || tag == PART_NONE) return r->err;
    int id = (int)em_wire_get_int(r, 0, INT_MAX, "partitioner id");
    if (r->err) return r->err;
    em_partitioner *known = NULL;
    for (int i = 0; i < d->g->num_partitioners && !known; i++)
        if (d->g->partitioners[i]->id == id) known = d->g->partitioners[i];
    if (tag == PART_SEEN) {
        if (!known) return em_wire_fail(r, "partitioner %d is used before it is defined", id);
        *out = known;
        return 0;
    }
    if (tag != PART_DEFINED) return em_wire_fail(r, "bad partitioner tag %u", tag);
    if (known) return em_wire_fail(r, "partitioner %d is defined twice", id);
    em_partitioner *p = em__calloc(1, sizeof *p);
    if (!p) return r->err = em__set_error(EM_ENOMEM, "out of memory decoding a partitioner");
    p->id = id;
    uint8_t kind = em_wire_get_u8(r);
    uint64_t parts = em_wire_get_uvar(r);
    if (!r->err && (parts < 1 || parts > INT_MAX))
        em_wire_fail(r, "a partitioner of %llu partitions", (unsigned long long)parts);
    p->num_partitions = (int)parts;
    p->descending = em_wire_get_bool(r);
    size_t nb = em_wire_get_count(r, 2, "range bound count");
    if (!r->err && kind > EM_PART_MODULO) em_wire_fail(r, "unknown partitioner kind %u", kind);
    if (!r->err && nb && (kind != EM_PART_RANGE || nb >= (size_t)p->num_partitions))
        em_wire_fail(r, "%zu range bounds for a %s partitioner of %d partitions", nb,
                     kind == EM_PART_RANGE ? "range" : "non-range", p->num_partitions);
    if (r->err) {
        partitioner_free(p);
        return r->err;
    }
    p->kind = kind;
    /* The bounds' bytes in one buffer, as em_range_partitioner keeps them. */
    em_buf data = EM_BUF_INIT;
    size_t *off = nb ? em__calloc(nb, sizeof *off) : NULL;
    p->bounds = nb ? em__calloc(nb, sizeof *p->bounds) : NULL;
    if (nb && (!off || !p->bounds)) r->err = em__set_error(EM_ENOMEM, "out of memory");
    for (size_t i = 0; i < nb && !r->err; i++) {
        size_t len;
        const uint8_t *b = em_wire_get_bytes(r, &len);
        if (r->err) break;
        if (!len || em__value_skip(b, b + len) != len) {
            em_wire_fail(r, "range bound %zu is not one well-formed value", i);
            break;
        }
        off[i] = data.len;
        if (em_buf_append(&data, b, len))
            r->err = em__set_error(EM_ENOMEM, "out of memory reading range bounds");
        p->bounds[i].len = len;
    }
    if (!r->err) {
        p->bound_data = data.data ? data.data : em__malloc(1);
        data.data = NULL;
        if (!p->bound_data) r->err = em__set_error(EM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nb && !r->err; i++) {
        p->bounds[i].data = p->bound_data + off[i];
        if (i > 0 && em_value_cmp(p->bounds[i - 1], p->bounds[i]) >= 0)
            em_wire_fail(r, "range bounds are not in ascending order (bound %zu)", i);
    }
    p->num_bounds = (int)nb;
    em__free(off);
    em_buf_free(&data);
    if (!r->err) add_partitioner(d, p);
    if (r->err) {
        partitioner_free(p);
        return r->err;
    }
    *out = p;
    return 0;
}

/* ---- encode ---------------------------------------------------------------------------------- */

static void put_rdd(struct em_graph_enc *g, const struct em_rdd *r, bool stub)
{
    em_wire_writer *w = &g->w;
    em_wire_put_ivar(w, r->id);
    em_wire_put_uvar(w, (uint64_t)r->num_partitions);
    em_wire_put_str(w, r->name);
    em_wire_put_u8(w, (uint8_t)((r->cached ? FLAG_CACHED : 0) | (stub ? FLAG_STUB : 0)));
    if (stub || w->err) return;
    if (!r->ops->encode) {
        w->err = em__set_error(EM_EINVAL,
                               "RDD %d (%s) cannot be shipped to an executor: its kind has no "
                               "encoder",
                               r->id, r->ops->name);
        return;
    }
    em_wire_put_str(w, r->ops->name);
    em__graph_put_partitioner(g, r->partitioner);
    em_wire_put_uvar(w, (uint64_t)r->num_deps);
    for (int i = 0; i < r->num_deps; i++) {
        em_wire_put_u8(w, r->deps[i].kind == EM_DEP_SHUFFLE ? 1 : 0);
        em_wire_put_ivar(w, r->deps[i].rdd->id);
    }
    /* The parameters, length-prefixed: encoded into a scratch buffer first. */
    em_buf params = EM_BUF_INIT;
    em_buf *outer = w->out;
    w->out = &params;
    int rc = r->ops->encode(r, g);
    w->out = outer;
    if (rc && !w->err) w->err = rc;
    if (!w->err) em_wire_put_bytes(w, params.data, params.len);
    em_buf_free(&params);
    if (w->err == EM_EINVAL) em__error_context(w->err, "RDD %d (%s)", r->id, r->ops->name);
}

/* Checks an argument blob's length prefix. */
static bool blob_ok(const void *arg, size_t len)
{
    if (!arg || !len) return !len;
    if (len < 4) return false;
    const uint8_t *b = arg;
    uint32_t n = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return n == len;
}

int em__stage_encode(const struct em_rdd *rdd, const em_shuffle_dep *dep, em_result_fn fn,
                     const void *fn_arg, size_t fn_arg_len, em_buf *out)
{
    if (dep && dep->parent != rdd)
        return em__set_error(EM_EINVAL, "map stage of shuffle %d: RDD %d is not its parent",
                             dep->shuffle_id, rdd->id);
    if (!dep && !fn)
        return em__set_error(EM_EINVAL, "result stage of RDD %d: no result function", rdd->id);
    if (!dep && !blob_ok(fn_arg, fn_arg_len))
        return em__set_error(EM_EINVAL,
                             "result stage of RDD %d: the %zu-byte function argument is not a "
                             "job argument blob",
                             rdd->id, fn_arg_len);
    struct em_graph_enc g = {.w = em_wire_writer_on(out)};
    id_map full = {0}, emitted = {0};
    walk w = {0};
    size_t start = out->len;
    int rc = narrow_closure(rdd, &full);
    int count = 0;
    em_buf body = EM_BUF_INIT; /* the RDDs, written after their count */
    g.w.out = &body;
    if (!rc) rc = walk_push(&w, rdd);
    /* Post-order: an RDD is written once all its dependencies are. */
    while (!rc && !g.w.err && w.n > 0) {
        const struct em_rdd *x = w.rdd[w.n - 1];
        bool stub = id_map_get(&full, x->id) < 0;
        int *next = &w.next_dep[w.n - 1];
        if (!stub && *next < x->num_deps) {
            const struct em_rdd *p = x->deps[(*next)++].rdd;
            if (id_map_get(&emitted, p->id) < 0) rc = walk_push(&w, p);
            continue;
        }
        w.n--;
        if (id_map_get(&emitted, x->id) >= 0) continue;
        put_rdd(&g, x, stub);
        rc = id_map_put(&emitted, x->id, 1);
        count++;
    }
    g.w.out = out;
    if (!rc && !g.w.err) {
        em_wire_put_u8(&g.w, STAGE_MAGIC[0]);
        em_wire_put_u8(&g.w, STAGE_MAGIC[1]);
        em_wire_put_u8(&g.w, STAGE_MAGIC[2]);
        em_wire_put_u8(&g.w, STAGE_MAGIC[3]);
        em_wire_put_u8(&g.w, STAGE_VERSION);
        em_wire_put_uvar(&g.w, (uint64_t)count);
        if (!g.w.err && em_buf_append(out, body.data, body.len))
            g.w.err = em__set_error(EM_ENOMEM, "out of memory encoding a stage");
        em_wire_put_ivar(&g.w, rdd->id);
        if (dep) {
            em_wire_put_u8(&g.w, STAGE_MAP);
            int drc = em__shuffle_dep_encode(dep, &g);
            if (drc && !g.w.err) g.w.err = drc;
        } else {
            em_wire_put_u8(&g.w, STAGE_RESULT);
            em_wire_put_fn(&g.w, (void (*)(void))fn);
            em_wire_put_bytes(&g.w, fn_arg, fn_arg_len);
        }
    }
    if (!rc) rc = g.w.err;
    if (rc) out->len = start;
    em_buf_free(&body);
    id_map_free(&full);
    id_map_free(&emitted);
    walk_free(&w);
    em__free(g.partitioners_sent);
    return rc;
}

/* ---- decode ---------------------------------------------------------------------------------- */

static void rdd_free(struct em_rdd *r)
{
    if (!r) return;
    if (r->priv && r->ops && r->ops->free) r->ops->free(r);
    em__free(r->deps);
    em__free(r->name);
    em__free(r);
}

void em__stage_graph_free(em_stage_graph *g)
{
    if (!g) return;
    for (int i = g->num_rdds - 1; i >= 0; i--) rdd_free(g->rdds[i]);
    em__free(g->rdds);
    for (int i = 0; i < g->num_partitioners; i++) partitioner_free(g->partitioners[i]);
    em__free(g->partitioners);
    em__shuffle_dep_free(g->dep);
    em__free(g->dep_zero);
    em__free((void *)g->fn_arg);
    em__free(g);
}

/* Decodes one RDD record into g->rdds[g->num_rdds++]. */
static int get_rdd(struct em_graph_dec *d, id_map *ids)
{
    em_wire_reader *r = &d->r;
    em_stage_graph *g = d->g;
    snprintf(r->where, sizeof r->where, "RDD #%d", g->num_rdds);
    int id = (int)em_wire_get_int(r, 0, INT_MAX, "RDD id");
    uint64_t parts = em_wire_get_uvar(r);
    char *name = NULL;
    em_wire_get_str(r, &name);
    uint8_t flags = em_wire_get_u8(r);
    if (!r->err && parts > INT_MAX)
        em_wire_fail(r, "RDD %d has %llu partitions", id, (unsigned long long)parts);
    if (!r->err && (flags & ~(FLAG_CACHED | FLAG_STUB)))
        em_wire_fail(r, "RDD %d has unknown flags 0x%x", id, flags);
    if (!r->err && id_map_get(ids, id) >= 0) em_wire_fail(r, "RDD %d is defined twice", id);
    struct em_rdd *x = r->err ? NULL : em__calloc(1, sizeof *x);
    if (!x) {
        em__free(name);
        return r->err ? r->err : (r->err = em__set_error(EM_ENOMEM, "out of memory"));
    }
    x->ctx = d->ctx;
    x->id = id;
    x->num_partitions = (int)parts;
    x->name = name;
    x->cached = flags & FLAG_CACHED;
    x->ops = &stub_ops;
    g->rdds[g->num_rdds++] = x; /* owned by the graph from here on */
    if (id_map_put(ids, id, g->num_rdds - 1)) return r->err = EM_ENOMEM;
    if (flags & FLAG_STUB) return 0;

    char *kind = NULL;
    if (em_wire_get_str(r, &kind)) return r->err;
    const em_rdd_ops *ops = kind ? kind_named(kind) : NULL;
    snprintf(r->where, sizeof r->where, "RDD %d (%.40s)", id, kind ? kind : "no kind");
    if (!ops) {
        em_wire_fail(r, "unknown RDD kind");
        em__free(kind);
        return r->err;
    }
    em__free(kind);
    x->ops = ops;
    if (em__graph_get_partitioner(d, &x->partitioner)) return r->err;
    size_t nd = em_wire_get_count(r, 2, "dependency count");
    if (r->err) return r->err;
    x->deps = nd ? em__calloc(nd, sizeof *x->deps) : NULL;
    if (nd && !x->deps) return r->err = em__set_error(EM_ENOMEM, "out of memory");
    for (size_t i = 0; i < nd; i++) {
        uint8_t k = em_wire_get_u8(r);
        int pid = (int)em_wire_get_int(r, 0, INT_MAX, "parent id");
        if (r->err) return r->err;
        if (k > 1) return em_wire_fail(r, "dependency %zu has unknown kind %u", i, k);
        int at = id_map_get(ids, pid);
        if (at < 0 || at == g->num_rdds - 1)
            return em_wire_fail(r, "dependency %zu names RDD %d, which is not defined before it", i,
                                pid);
        if (k == 0 && g->rdds[at]->ops == &stub_ops)
            return em_wire_fail(r, "narrow dependency %zu on RDD %d, which is only a stub", i, pid);
        x->deps[i] = (em_dep){k ? EM_DEP_SHUFFLE : EM_DEP_NARROW, g->rdds[at], NULL};
        x->num_deps = (int)i + 1;
    }
    /* The kind's parameters: its decode reads exactly the length-prefixed block. */
    size_t len = em_wire_get_count(r, 1, "parameter length");
    if (r->err) return r->err;
    const uint8_t *outer_end = r->end;
    r->end = r->p + len;
    int rc = ops->decode ? ops->decode(x, d) : em_wire_fail(r, "kind cannot be decoded");
    if (!rc) rc = em_wire_expect_end(r);
    r->end = outer_end;
    if (rc) {
        if (!r->err) r->err = rc;
        return rc;
    }
    for (int i = 0; i < x->num_deps; i++) {
        const em_dep *dep = &x->deps[i];
        bool ok = dep->kind == EM_DEP_SHUFFLE ? dep->shuffle && dep->shuffle->parent == dep->rdd &&
                                                    dep->shuffle->partitioner
                                              : !dep->shuffle;
        if (!ok) return em_wire_fail(r, "dependency %d does not match the kind's parameters", i);
    }
    return 0;
}

int em__stage_decode(em_context *ctx, const uint8_t *p, size_t len, em_stage_graph **out)
{
    *out = NULL;
    em_stage_graph *g = em__calloc(1, sizeof *g);
    if (!g) return em__set_error(EM_ENOMEM, "out of memory decoding a stage");
    struct em_graph_dec d = {.ctx = ctx, .g = g};
    em_wire_reader *r = &d.r;
    em_wire_reader_init(r, p, len, "stage graph");
    id_map ids = {0};
    uint8_t magic[4];
    for (int i = 0; i < 4; i++) magic[i] = em_wire_get_u8(r);
    if (!r->err && memcmp(magic, STAGE_MAGIC, 4)) em_wire_fail(r, "bad magic (not a stage)");
    uint8_t version = em_wire_get_u8(r);
    if (!r->err && version != STAGE_VERSION)
        em_wire_fail(r, "version %u, this binary reads %d", version, STAGE_VERSION);
    size_t n = em_wire_get_count(r, 4, "RDD count");
    if (!r->err && n) {
        g->rdds = em__calloc(n, sizeof *g->rdds);
        if (!g->rdds) r->err = em__set_error(EM_ENOMEM, "out of memory decoding a stage");
    }
    for (size_t i = 0; i < n && !r->err; i++) get_rdd(&d, &ids);
    snprintf(r->where, sizeof r->where, "stage");
    int root_id = (int)em_wire_get_int(r, 0, INT_MAX, "root RDD id");
    int at = r->err ? -1 : id_map_get(&ids, root_id);
    if (!r->err && (at < 0 || g->rdds[at]->ops == &stub_ops))
        em_wire_fail(r, "the stage's RDD %d is not defined in it", root_id);
    if (!r->err) g->rdd = g->rdds[at];
    uint8_t kind = em_wire_get_u8(r);
    if (!r->err && kind == STAGE_MAP) {
        snprintf(r->where, sizeof r->where, "shuffle dependency written");
        em__shuffle_dep_decode(&d, g->rdd, &g->dep, &g->dep_zero);
    } else if (!r->err && kind == STAGE_RESULT) {
        snprintf(r->where, sizeof r->where, "result function");
        void (*fn)(void) = NULL;
        em_wire_get_fn(r, &fn);
        size_t alen;
        const uint8_t *arg = em_wire_get_bytes(r, &alen);
        if (!r->err && !fn) em_wire_fail(r, "no result function");
        if (!r->err && !blob_ok(arg, alen))
            em_wire_fail(r, "the %zu-byte function argument's length prefix is wrong", alen);
        if (!r->err && alen) {
            void *copy = em__memdup(arg, alen);
            if (!copy) r->err = em__set_error(EM_ENOMEM, "out of memory decoding a stage");
            g->fn_arg = copy;
            g->fn_arg_len = copy ? alen : 0;
        }
        g->fn = (em_result_fn)fn;
    } else if (!r->err) {
        em_wire_fail(r, "unknown stage kind %u", kind);
    }
    em_wire_expect_end(r);
    id_map_free(&ids);
    if (r->err) {
        int rc = r->err;
        em__stage_graph_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* ---- shuffles read -------------------------------------------------------------------------- */

int em__stage_read_shuffles(const struct em_rdd *rdd, int *ids, int cap)
{
    walk w = {0};
    id_map seen = {0}, shuffles = {0};
    int n = 0;
    int rc = walk_push(&w, rdd);
    if (!rc) rc = id_map_put(&seen, rdd->id, 1);
    while (!rc && w.n > 0) {
        const struct em_rdd *x = w.rdd[--w.n];
        for (int i = 0; i < x->num_deps && !rc; i++) {
            const em_dep *d = &x->deps[i];
            if (d->kind == EM_DEP_SHUFFLE) {
                int sid = d->shuffle->shuffle_id;
                if (id_map_get(&shuffles, sid) >= 0) continue;
                rc = id_map_put(&shuffles, sid, n);
                if (n < cap) ids[n] = sid;
                n++;
            } else if (id_map_get(&seen, d->rdd->id) < 0) {
                rc = id_map_put(&seen, d->rdd->id, 1);
                if (!rc) rc = walk_push(&w, d->rdd);
            }
        }
    }
    walk_free(&w);
    id_map_free(&seen);
    id_map_free(&shuffles);
    return rc ? rc : n;
}

/* ---- job argument blobs ---------------------------------------------------------------------- */

em_wire_writer em__job_arg_begin(em_buf *b)
{
    em_wire_writer w = em_wire_writer_on(b);
    b->len = 0;
    em_wire_put_u32(&w, 0);
    return w;
}

int em__job_arg_end(em_buf *b, em_wire_writer *w)
{
    if (w->err) return w->err;
    if (b->len > UINT32_MAX)
        return em__set_error(EM_ETOOBIG, "job argument of %zu bytes is too large", b->len);
    for (int i = 0; i < 4; i++) b->data[i] = (uint8_t)(b->len >> (8 * i));
    return 0;
}

void em__job_arg_reader(const void *arg, em_wire_reader *r, const char *what)
{
    if (!arg) {
        em_wire_reader_init(r, NULL, 0, what);
        return;
    }
    const uint8_t *b = arg;
    uint32_t n = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    em_wire_reader_init(r, b + 4, n >= 4 ? n - 4 : 0, what);
}
