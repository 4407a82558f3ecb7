/* Narrow transformations that change the partition structure: union (partitions of a, then of
 * b), coalesce without shuffle (adjacent parent partitions chained), cartesian (partition
 * (i, j) pairs every record of a_i with every record of b_j; b_j is held in memory while a_i
 * streams) and zipWithIndex (a counting job over all partitions but the last gives each
 * partition its first index).
 * Definitions run on driver threads; iterators on task threads. For executors (stage_codec.h)
 * union, coalesce and cartesian carry no parameters (their decode checks the dependencies and
 * partition counts compute relies on); zipWithIndex carries its start indices.
 */
#include "rdd/rdd.h"
#include "rdd/stage_codec.h"

#include <limits.h>
#include <string.h>

/* Shared by the kinds without parameters. */
static int no_encode(const struct em_rdd *r, struct em_graph_enc *g)
{
    (void)r;
    return g->w.err;
}

/* Checks that r has n narrow dependencies. */
static int check_narrow_deps(struct em_rdd *r, struct em_graph_dec *g, int n)
{
    bool ok = r->num_deps == n;
    for (int i = 0; ok && i < n; i++) ok = r->deps[i].kind == EM_DEP_NARROW;
    return ok ? 0 : em_wire_fail(&g->r, "%s needs %d narrow dependencies", r->ops->name, n);
}

/* ---- union ------------------------------------------------------------------------------- */

static int union_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    struct em_rdd *a = r->deps[0].rdd, *b = r->deps[1].rdd;
    if (part < a->num_partitions) return em__rdd_iterator(a, part, t, out);
    return em__rdd_iterator(b, part - a->num_partitions, t, out);
}

static void no_free(struct em_rdd *r)
{
    (void)r;
}

static int union_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    if (check_narrow_deps(r, g, 2)) return g->r.err;
    int64_t n = (int64_t)r->deps[0].rdd->num_partitions + r->deps[1].rdd->num_partitions;
    if (n != r->num_partitions)
        return em_wire_fail(&g->r, "union of %d and %d partitions has %d",
                            r->deps[0].rdd->num_partitions, r->deps[1].rdd->num_partitions,
                            r->num_partitions);
    return 0;
}

static const em_rdd_ops union_ops = {"union", union_compute, no_free, no_encode, union_decode};

em_rdd *em_rdd_union(em_rdd *a, em_rdd *b)
{
    if (!a || !b) return NULL;
    if (a->ctx != b->ctx) {
        em__set_error(EM_EINVAL, "union: RDDs of different contexts");
        return NULL;
    }
    em_dep deps[2] = {{EM_DEP_NARROW, a, NULL}, {EM_DEP_NARROW, b, NULL}};
    return em__rdd_new(a->ctx, &union_ops, NULL, a->num_partitions + b->num_partitions, deps, 2);
}

/* ---- coalesce without shuffle ------------------------------------------------------------- */

typedef struct chain_iter {
    em_iter base;
    struct em_rdd *parent;
    em_task *t;
    int next_part, end_part;
    em_iter *cur;
} chain_iter;

static int chain_next(em_iter *base, em_value *out)
{
    chain_iter *c = (chain_iter *)base;
    for (;;) {
        if (c->cur) {
            int rc = c->cur->next(c->cur, out);
            if (rc != EM_DONE) return rc;
            em_iter_close(c->cur);
            c->cur = NULL;
        }
        if (c->next_part >= c->end_part) return EM_DONE;
        int rc = em__rdd_iterator(c->parent, c->next_part++, c->t, &c->cur);
        if (rc) return rc;
    }
}

static void chain_close(em_iter *base)
{
    chain_iter *c = (chain_iter *)base;
    em_iter_close(c->cur);
    em__free(c);
}

static int coalesce_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    struct em_rdd *p = r->deps[0].rdd;
    chain_iter *c = em__calloc(1, sizeof *c);
    if (!c) return EM_ENOMEM;
    c->base = (em_iter){chain_next, chain_close};
    c->parent = p;
    c->t = t;
    c->next_part = (int)((int64_t)part * p->num_partitions / r->num_partitions);
    c->end_part = (int)((int64_t)(part + 1) * p->num_partitions / r->num_partitions);
    *out = &c->base;
    return 0;
}

static int coalesce_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    if (check_narrow_deps(r, g, 1)) return g->r.err;
    if (r->num_partitions > r->deps[0].rdd->num_partitions)
        return em_wire_fail(&g->r, "coalesce of %d partitions into %d",
                            r->deps[0].rdd->num_partitions, r->num_partitions);
    return 0;
}

static const em_rdd_ops coalesce_ops = {"coalesce", coalesce_compute, no_free, no_encode,
                                        coalesce_decode};

em_rdd *em__coalesce_narrow(em_rdd *r, int num_partitions)
{
    if (num_partitions > r->num_partitions) num_partitions = r->num_partitions;
    em_dep dep = {EM_DEP_NARROW, r, NULL};
    return em__rdd_new(r->ctx, &coalesce_ops, NULL, num_partitions, &dep, 1);
}

/* ---- cartesian ------------------------------------------------------------------------------ */

typedef struct cart_iter {
    em_iter base;
    em_iter *outer;
    em_records *inner, *out;
    em_value x;
    bool have_x;
    size_t inner_cursor;
} cart_iter;

static int cart_next(em_iter *base, em_value *out)
{
    cart_iter *c = (cart_iter *)base;
    for (;;) {
        if (c->have_x) {
            em_value y;
            if (em_records_next(c->inner, &c->inner_cursor, &y) == EM_ROW) {
                em_records_clear(c->out);
                em_put_pair(c->out, c->x, y);
                if (em_records_error(c->out)) return EM_ENOMEM;
                *out = em_records_at(c->out, 0);
                return EM_ROW;
            }
            c->have_x = false;
        }
        int rc = c->outer->next(c->outer, &c->x);
        if (rc != EM_ROW) return rc;
        c->have_x = true;
        c->inner_cursor = 0;
    }
}

static void cart_close(em_iter *base)
{
    cart_iter *c = (cart_iter *)base;
    em_iter_close(c->outer);
    em_records_free(c->inner);
    em_records_free(c->out);
    em__free(c);
}

static int cart_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    struct em_rdd *a = r->deps[0].rdd, *b = r->deps[1].rdd;
    int i = part / b->num_partitions, j = part % b->num_partitions;
    cart_iter *c = em__calloc(1, sizeof *c);
    if (!c) return EM_ENOMEM;
    c->base = (em_iter){cart_next, cart_close};
    c->inner = em_records_new();
    c->out = em_records_new();
    em_iter *bi = NULL;
    int rc = (c->inner && c->out) ? em__rdd_iterator(b, j, t, &bi) : EM_ENOMEM;
    em_value v;
    while (!rc && (rc = bi->next(bi, &v)) == EM_ROW) {
        em_put_value(c->inner, v);
        rc = em_records_error(c->inner);
    }
    em_iter_close(bi);
    if (rc == EM_DONE) rc = em__rdd_iterator(a, i, t, &c->outer);
    if (rc) {
        cart_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static int cart_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    if (check_narrow_deps(r, g, 2)) return g->r.err;
    int64_t n = (int64_t)r->deps[0].rdd->num_partitions * r->deps[1].rdd->num_partitions;
    if (n != r->num_partitions)
        return em_wire_fail(&g->r, "cartesian of %d and %d partitions has %d",
                            r->deps[0].rdd->num_partitions, r->deps[1].rdd->num_partitions,
                            r->num_partitions);
    return 0;
}

static const em_rdd_ops cart_ops = {"cartesian", cart_compute, no_free, no_encode, cart_decode};

em_rdd *em_rdd_cartesian(em_rdd *a, em_rdd *b)
{
    if (!a || !b) return NULL;
    em_dep deps[2] = {{EM_DEP_NARROW, a, NULL}, {EM_DEP_NARROW, b, NULL}};
    return em__rdd_new(a->ctx, &cart_ops, NULL, a->num_partitions * b->num_partitions, deps, 2);
}

/* ---- zipWithIndex -------------------------------------------------------------------------- */

typedef struct zip_priv {
    int64_t *start;  /* first index of each partition (zipWithIndex) */
    int round_robin; /* > 0: repartition's keying into this many partitions */
} zip_priv;

typedef struct zip_iter {
    em_iter base;
    em_iter *in;
    int64_t next_index;
    bool index_first;
    em_records *out;
} zip_iter;

static int zip_next(em_iter *base, em_value *out)
{
    zip_iter *z = (zip_iter *)base;
    em_value v;
    int rc = z->in->next(z->in, &v);
    if (rc != EM_ROW) return rc;
    em_records_clear(z->out);
    em_put_tuple_begin(z->out);
    if (z->index_first) em_put_int64(z->out, z->next_index++);
    em_put_value(z->out, v);
    if (!z->index_first) em_put_int64(z->out, z->next_index++);
    em_put_end(z->out);
    if (em_records_error(z->out)) return EM_ENOMEM;
    *out = em_records_at(z->out, 0);
    return EM_ROW;
}

static void zip_close(em_iter *base)
{
    zip_iter *z = (zip_iter *)base;
    em_iter_close(z->in);
    em_records_free(z->out);
    em__free(z);
}

static int zip_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    zip_priv *p = r->priv;
    zip_iter *z = em__calloc(1, sizeof *z);
    if (!z) return EM_ENOMEM;
    z->base = (em_iter){zip_next, zip_close};
    if (p->round_robin > 0) {
        /* Record i of the partition goes to (start + i) mod n, start spread by the index. */
        uint64_t h = (uint64_t)(part + 1) * 0x9E3779B97F4A7C15ull;
        z->next_index = (int64_t)((h ^ (h >> 29)) % (uint64_t)p->round_robin);
        z->index_first = true;
    } else {
        z->next_index = p->start[part];
    }
    z->out = em_records_new();
    int rc = z->out ? em__rdd_iterator(r->deps[0].rdd, part, t, &z->in) : EM_ENOMEM;
    if (rc) {
        em_records_free(z->out);
        em__free(z);
        return rc;
    }
    *out = &z->base;
    return 0;
}

static void zip_free(struct em_rdd *r)
{
    zip_priv *p = r->priv;
    em__free(p->start);
    em__free(p);
}

static int zip_encode(const struct em_rdd *r, struct em_graph_enc *g)
{
    const zip_priv *p = r->priv;
    em_wire_put_ivar(&g->w, p->round_robin);
    if (p->round_robin > 0) return g->w.err;
    em_wire_put_uvar(&g->w, (uint64_t)r->num_partitions + 1);
    for (int i = 0; i <= r->num_partitions; i++) em_wire_put_ivar(&g->w, p->start[i]);
    return g->w.err;
}

static int zip_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    em_wire_reader *rd = &g->r;
    if (check_narrow_deps(r, g, 1)) return rd->err;
    if (r->deps[0].rdd->num_partitions != r->num_partitions)
        return em_wire_fail(rd, "zipWithIndex of %d partitions has %d",
                            r->deps[0].rdd->num_partitions, r->num_partitions);
    int round_robin = (int)em_wire_get_int(rd, 0, INT_MAX, "round-robin width");
    size_t n = round_robin ? 0 : em_wire_get_count(rd, 1, "start index count");
    if (!rd->err && !round_robin && n != (size_t)r->num_partitions + 1)
        em_wire_fail(rd, "%zu start indices for %d partitions", n, r->num_partitions);
    if (rd->err) return rd->err;
    zip_priv *p = em__calloc(1, sizeof *p);
    if (p && n) p->start = em__calloc(n, sizeof *p->start);
    if (!p || (n && !p->start)) {
        em__free(p);
        return rd->err = em__set_error(EM_ENOMEM, "out of memory");
    }
    p->round_robin = round_robin;
    for (size_t i = 0; i < n; i++) p->start[i] = em_wire_get_ivar(rd);
    if (rd->err) {
        zip_free(&(struct em_rdd){.priv = p});
        return rd->err;
    }
    r->priv = p;
    return 0;
}

static const em_rdd_ops zip_ops = {"zipWithIndex", zip_compute, zip_free, zip_encode, zip_decode};

const em_rdd_ops *const em__structural_kinds[] = {&union_ops, &coalesce_ops, &cart_ops, &zip_ops,
                                                  NULL};

int em__count_partition(em_task *t, em_iter *in, em_buf *result, const void *arg)
{
    (void)t;
    (void)arg;
    int64_t n = 0;
    em_value v;
    int rc;
    while ((rc = in->next(in, &v)) == EM_ROW) n++;
    if (rc < 0) return rc;
    return em_buf_append(result, &n, sizeof n);
}

static int count_handler(void *arg, int partition, const uint8_t *data, size_t len)
{
    if (len != sizeof(int64_t)) return em__set_error(EM_EINTERNAL, "bad count result");
    memcpy(&((int64_t *)arg)[partition], data, sizeof(int64_t));
    return 0;
}

em_rdd *em_rdd_zip_with_index(em_rdd *r)
{
    if (!r) return NULL;
    int n = r->num_partitions;
    zip_priv *p = em__calloc(1, sizeof *p);
    int64_t *counts = em__calloc((size_t)n + 1, sizeof *counts);
    if (p) p->start = em__calloc((size_t)n + 1, sizeof *p->start);
    if (!p || !counts || !p->start) goto fail;
    if (n > 1) {
        int *parts = em__calloc((size_t)n, sizeof *parts);
        if (!parts) goto fail;
        for (int i = 0; i < n - 1; i++) parts[i] = i;
        em_job_spec job = {.rdd = r,
                           .partitions = parts,
                           .num_partitions = n - 1,
                           .fn = em__count_partition,
                           .handler = count_handler,
                           .handler_arg = counts,
                           .call_site = "zipWithIndex"};
        int rc = r->ctx->run_job(r->ctx, &job);
        em__free(parts);
        if (rc) goto fail;
    }
    for (int i = 1; i < n; i++) p->start[i] = p->start[i - 1] + counts[i - 1];
    em__free(counts);
    em_dep dep = {EM_DEP_NARROW, r, NULL};
    struct em_rdd *z = em__rdd_new(r->ctx, &zip_ops, p, n, &dep, 1);
    if (!z) zip_free(&(struct em_rdd){.priv = p});
    return z;
fail:
    em__free(counts);
    if (p) em__free(p->start);
    em__free(p);
    return NULL;
}

/* (k, x) pairs with k = a per-partition round-robin counter, for repartition's shuffle. */
struct em_rdd *em__round_robin_keyed(struct em_rdd *r, int num_partitions)
{
    zip_priv *p = em__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->round_robin = num_partitions;
    em_dep dep = {EM_DEP_NARROW, r, NULL};
    struct em_rdd *z = em__rdd_new(r->ctx, &zip_ops, p, r->num_partitions, &dep, 1);
    if (!z) em__free(p);
    return z;
}
