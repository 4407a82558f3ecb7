/* Two-input wide transformations: cogroup, join, leftOuterJoin, rightOuterJoin, fullOuterJoin,
 * subtract, subtractByKey and intersection. Both inputs are shuffled with the same hash
 * partitioner; a reducer reads each side GROUPED (one (k, [v...]) record per key, ordered by
 * key) and merges the two ordered streams key by key, so memory stays bounded: a group too large
 * for memory comes back as a list on disk (em_value.ext) and is iterated with em_elems, and a
 * join of two huge groups streams its m x n pairs one at a time.
 * Definitions on driver threads; the merge iterator on the task thread.
 */
#include "rdd/rdd.h"
#include "rdd/stage_codec.h"

#include <string.h>

enum co_kind {
    CO_GROUP,
    CO_JOIN,
    CO_LEFT,
    CO_RIGHT,
    CO_FULL,
    CO_SUBTRACT,
    CO_SUBTRACT_BY_KEY,
    CO_INTERSECTION
};
static const char *const co_names[] = {"cogroup",        "join",          "leftOuterJoin",
                                       "rightOuterJoin", "fullOuterJoin", "subtract",
                                       "subtractByKey",  "intersection"};

typedef struct co_priv {
    enum co_kind kind;
    em_shuffle_dep *dep[2];
} co_priv;

typedef struct side {
    em_iter *reader;
    em_value rec; /* current group (k, [v...]) */
    bool have, done;
} side;

typedef struct co_iter {
    em_iter base;
    const co_priv *p;
    em_task *t;
    side s[2];
    em_records *out;
    /* The key being expanded: which sides hold it, and the pair loops of joins. */
    bool active, in_a, in_b;
    em_value key, list_a, list_b;
    em_elems outer, inner;
    em_value outer_v;
    bool outer_open, inner_open;
    int phase; /* joins: 0 before the pair loop of this key, 1 in it */
} co_iter;

static int advance(side *s)
{
    int rc = s->reader->next(s->reader, &s->rec);
    if (rc == EM_ROW)
        s->have = true;
    else {
        s->have = false;
        s->done = true;
    }
    return rc < 0 ? rc : 0;
}

/* The list of a group record, carrying a spilled list's ext. */
static em_value group_list(em_value rec)
{
    em_value l = em_value_val(rec);
    if (rec.ext) l.ext = rec.ext;
    return l;
}

static int emit(co_iter *c, em_value *out)
{
    if (em_records_error(c->out)) return EM_ENOMEM;
    *out = em_records_at(c->out, 0);
    return EM_ROW;
}

/* Starts the next key: picks the smaller current key of the two sides. EM_DONE at the end. */
static int next_key(co_iter *c)
{
    side *a = &c->s[0], *b = &c->s[1];
    if (!a->have && !b->have) return EM_DONE;
    int cmp;
    if (!a->have)
        cmp = 1;
    else if (!b->have)
        cmp = -1;
    else
        cmp = em_value_cmp(em_value_key(a->rec), em_value_key(b->rec));
    c->in_a = cmp <= 0;
    c->in_b = cmp >= 0;
    c->key = em_value_key(c->in_a ? a->rec : b->rec);
    /* A missing side is [] — or [null] where an outer join keeps the other side's values. */
    static const em_value empty = {(const uint8_t *)"\x09\x00", 2, NULL};
    static const em_value one_null = {(const uint8_t *)"\x09\x01\x00", 3, NULL};
    enum co_kind k = c->p->kind;
    bool null_a = k == CO_RIGHT || k == CO_FULL, null_b = k == CO_LEFT || k == CO_FULL;
    c->list_a = c->in_a ? group_list(a->rec) : null_a ? one_null : empty;
    c->list_b = c->in_b ? group_list(b->rec) : null_b ? one_null : empty;
    c->active = true;
    c->outer_open = c->inner_open = false;
    c->phase = 0;
    return EM_ROW;
}

/* Finishes the current key: moves the sides that held it. */
static int finish_key(co_iter *c)
{
    c->active = false;
    int rc = 0;
    if (c->in_a) rc = advance(&c->s[0]);
    if (!rc && c->in_b) rc = advance(&c->s[1]);
    return rc;
}

/* Pairs (k, (v, w)) of the current key for the join kinds: a nested loop over the two
 * lists (next_key put [null] in place of a missing side where the outer join keeps it, and []
 * where it drops the key). EM_ROW with one record, or EM_DONE when the key is exhausted. */
static int join_step(co_iter *c, em_value *out)
{
    int rc;
    if (!c->outer_open) {
        if (c->phase) return EM_DONE;
        c->phase = 1;
        em_elems_init(&c->outer, c->list_a);
        c->outer_open = true;
        c->inner_open = false;
        rc = em_elems_next(&c->outer, &c->outer_v);
        if (rc != EM_ROW) return rc < 0 ? rc : EM_DONE;
    }
    for (;;) {
        if (!c->inner_open) {
            em_elems_init(&c->inner, c->list_b);
            c->inner_open = true;
        }
        em_value w;
        rc = em_elems_next(&c->inner, &w);
        if (rc < 0) return rc;
        if (rc == EM_ROW) {
            em_records_clear(c->out);
            em_put_tuple_begin(c->out);
            em_put_value(c->out, c->key);
            em_put_tuple_begin(c->out);
            em_put_value(c->out, c->outer_v);
            em_put_value(c->out, w);
            em_put_end(c->out);
            em_put_end(c->out);
            return emit(c, out);
        }
        rc = em_elems_next(&c->outer, &c->outer_v);
        if (rc != EM_ROW) return rc < 0 ? rc : EM_DONE;
        c->inner_open = false;
    }
}

static int co_next(em_iter *base, em_value *out)
{
    co_iter *c = (co_iter *)base;
    enum co_kind k = c->p->kind;
    for (;;) {
        if (!c->active) {
            int rc = next_key(c);
            if (rc != EM_ROW) return rc;
        }
        int rc;
        switch (k) {
        case CO_GROUP:
            em_records_clear(c->out);
            em_put_tuple_begin(c->out);
            em_put_value(c->out, c->key);
            em_put_tuple_begin(c->out);
            em_put_value(c->out, c->list_a);
            em_put_value(c->out, c->list_b);
            em_put_end(c->out);
            em_put_end(c->out);
            if ((rc = finish_key(c))) return rc;
            return emit(c, out);
        case CO_INTERSECTION:
            if (c->in_a && c->in_b) {
                em_records_clear(c->out);
                em_put_value(c->out, c->key);
                if ((rc = finish_key(c))) return rc;
                return emit(c, out);
            }
            if ((rc = finish_key(c))) return rc;
            continue;
        case CO_SUBTRACT:
        case CO_SUBTRACT_BY_KEY:
            if (c->in_a && !c->in_b) {
                if (!c->outer_open) {
                    em_elems_init(&c->outer, c->list_a);
                    c->outer_open = true;
                }
                em_value v;
                rc = em_elems_next(&c->outer, &v);
                if (rc < 0) return rc;
                if (rc == EM_ROW) {
                    em_records_clear(c->out);
                    if (k == CO_SUBTRACT)
                        em_put_value(c->out, c->key);
                    else
                        em_put_pair(c->out, c->key, v);
                    return emit(c, out);
                }
            }
            if ((rc = finish_key(c))) return rc;
            continue;
        default:
            rc = join_step(c, out);
            if (rc == EM_ROW || rc < 0) return rc;
            if ((rc = finish_key(c))) return rc;
            continue;
        }
    }
}

static void co_close(em_iter *base)
{
    co_iter *c = (co_iter *)base;
    em_iter_close(c->s[0].reader);
    em_iter_close(c->s[1].reader);
    em_records_free(c->out);
    em__free(c);
}

static int co_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    const co_priv *p = r->priv;
    co_iter *c = em__calloc(1, sizeof *c);
    if (!c) return EM_ENOMEM;
    c->base = (em_iter){co_next, co_close};
    c->p = p;
    c->t = t;
    c->out = em_records_new();
    int rc = c->out ? 0 : EM_ENOMEM;
    for (int i = 0; i < 2 && !rc; i++) {
        rc =
            em__open_shuffle_reader(r, p->dep[i], part, EM_READ_GROUPED, false, t, &c->s[i].reader);
        if (!rc) rc = advance(&c->s[i]);
    }
    if (rc) {
        co_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static void co_free(struct em_rdd *r)
{
    co_priv *p = r->priv;
    em__free(p->dep[0]);
    em__free(p->dep[1]);
    em__free(p);
}

/* For executors (stage_codec.h): the kind of merge and the two shuffle dependencies. */
static int co_encode(const struct em_rdd *r, struct em_graph_enc *g)
{
    const co_priv *p = r->priv;
    em_wire_put_u8(&g->w, (uint8_t)p->kind);
    for (int i = 0; i < 2; i++)
        if (em__shuffle_dep_encode(p->dep[i], g)) break;
    return g->w.err;
}

static int co_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    em_wire_reader *rd = &g->r;
    if (r->num_deps != 2 || r->deps[0].kind != EM_DEP_SHUFFLE || r->deps[1].kind != EM_DEP_SHUFFLE)
        return em_wire_fail(rd, "CoGroupedRDD needs two shuffle dependencies");
    uint8_t kind = em_wire_get_u8(rd);
    if (!rd->err && kind > CO_INTERSECTION) em_wire_fail(rd, "unknown cogroup kind %u", kind);
    co_priv *p = rd->err ? NULL : em__calloc(1, sizeof *p);
    if (!p) return rd->err ? rd->err : (rd->err = em__set_error(EM_ENOMEM, "out of memory"));
    p->kind = (enum co_kind)kind;
    for (int i = 0; i < 2 && !rd->err; i++) {
        uint8_t *zero = NULL;
        if (em__shuffle_dep_decode(g, r->deps[i].rdd, &p->dep[i], &zero)) break;
        em__free(zero); /* cogroup shuffles have no aggregator */
        if (p->dep[i]->partitioner->num_partitions != r->num_partitions)
            em_wire_fail(rd, "%d partitions reading a shuffle of %d", r->num_partitions,
                         p->dep[i]->partitioner->num_partitions);
    }
    if (rd->err) {
        em__shuffle_dep_free(p->dep[0]);
        em__shuffle_dep_free(p->dep[1]);
        em__free(p);
        return rd->err;
    }
    r->deps[0].shuffle = p->dep[0];
    r->deps[1].shuffle = p->dep[1];
    r->priv = p;
    return 0;
}

static const em_rdd_ops co_ops = {"CoGroupedRDD", co_compute, co_free, co_encode, co_decode};

const em_rdd_ops *const em__cogroup_kinds[] = {&co_ops, NULL};

static em_rdd *co_new(em_rdd *a, em_rdd *b, enum co_kind kind, int num_partitions, bool keyed)
{
    if (!a || !b) return NULL;
    if (a->ctx != b->ctx) {
        em__set_error(EM_EINVAL, "%s: RDDs of different contexts", co_names[kind]);
        return NULL;
    }
    if (!keyed) {
        a = em__keyed_with_null(a);
        b = em__keyed_with_null(b);
        if (!a || !b) return NULL;
    }
    int n = num_partitions > 0
                ? num_partitions
                : (a->ctx->default_parallelism > 0 ? a->ctx->default_parallelism
                                                   : EM_MAX(a->num_partitions, b->num_partitions));
    if (kind == CO_SUBTRACT || kind == CO_SUBTRACT_BY_KEY)
        n = num_partitions > 0 ? num_partitions : a->num_partitions;
    if (n <= 0) n = 1;
    em_partitioner *part = em_hash_partitioner(a->ctx, n);
    co_priv *p = part ? em__calloc(1, sizeof *p) : NULL;
    if (!p) return NULL;
    p->kind = kind;
    p->dep[0] = em__shuffle_dep_new(a, part);
    p->dep[1] = em__shuffle_dep_new(b, part);
    if (!p->dep[0] || !p->dep[1]) {
        co_free(&(struct em_rdd){.priv = p});
        return NULL;
    }
    em_dep deps[2] = {{EM_DEP_SHUFFLE, a, p->dep[0]}, {EM_DEP_SHUFFLE, b, p->dep[1]}};
    struct em_rdd *r = em__rdd_new(a->ctx, &co_ops, p, n, deps, 2);
    if (!r) {
        co_free(&(struct em_rdd){.priv = p});
        return NULL;
    }
    if (kind != CO_SUBTRACT && kind != CO_INTERSECTION) r->partitioner = part;
    return r;
}

em_rdd *em_rdd_cogroup(em_rdd *a, em_rdd *b, int n)
{
    return co_new(a, b, CO_GROUP, n, true);
}
em_rdd *em_rdd_join(em_rdd *a, em_rdd *b, int n)
{
    return co_new(a, b, CO_JOIN, n, true);
}
em_rdd *em_rdd_left_outer_join(em_rdd *a, em_rdd *b, int n)
{
    return co_new(a, b, CO_LEFT, n, true);
}
em_rdd *em_rdd_right_outer_join(em_rdd *a, em_rdd *b, int n)
{
    return co_new(a, b, CO_RIGHT, n, true);
}
em_rdd *em_rdd_full_outer_join(em_rdd *a, em_rdd *b, int n)
{
    return co_new(a, b, CO_FULL, n, true);
}
em_rdd *em_rdd_subtract(em_rdd *a, em_rdd *b, int n)
{
    return co_new(a, b, CO_SUBTRACT, n, false);
}
em_rdd *em_rdd_subtract_by_key(em_rdd *a, em_rdd *b, int n)
{
    return co_new(a, b, CO_SUBTRACT_BY_KEY, n, true);
}
em_rdd *em_rdd_intersection(em_rdd *a, em_rdd *b, int n)
{
    return co_new(a, b, CO_INTERSECTION, n, false);
}
