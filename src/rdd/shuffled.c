/* Wide transformations over one shuffle: partitionBy, repartition / coalesce with shuffle,
 * distinct, groupByKey, reduceByKey, foldByKey, aggregateByKey, combineByKey, sortByKey and
 * sortBy. Each is a ShuffledRDD — a shuffle dependency on its parent (pair records) plus how
 * the reducer reads it (as stored, aggregated, sorted or grouped; shuffle/shuffle.h) — with
 * narrow steps before (making pairs) or after (dropping keys) where the operator needs them.
 *
 * The user's functions become the shuffle's aggregator here (agg_kind says how), so the map
 * side combines with the same code as the reduce side. Definitions on driver threads; compute
 * and the aggregator callbacks on task threads.
 */
#include "rdd/rdd.h"
#include "rdd/stage_codec.h"
#include "shuffle/tracker.h"

#include <limits.h>

#include <string.h>

enum agg_kind { AGG_REDUCE = 1, AGG_FOLD, AGG_AGGREGATE, AGG_COMBINE, AGG_FIRST };

typedef struct shuffled_priv {
    em_shuffle_dep *dep;
    em_shuffle_read_mode mode;
    bool descending;
    uint8_t *zero_data; /* owns dep->zero's bytes */
} shuffled_priv;

/* ---- aggregator callbacks ---------------------------------------------------------------------
 */

static int call_reduce(em_task *t, const em_udf *u, em_value a, em_value b, em_records *out)
{
    size_t before = em_records_count(out);
    int rc = ((em_reduce_fn)u->fn)(t, a, b, out, u->arg);
    if (rc) {
        if (t->failed) return em__set_error(rc < 0 ? rc : EM_EUSER, "%s", t->errmsg);
        return em__task_error(t, rc < 0 ? rc : EM_EUSER, "reduce function returned %d", rc);
    }
    if (em_records_error(out))
        return em__task_error(t, em_records_error(out), "reduce function built a bad value");
    if (em_records_count(out) != before + 1)
        return em__task_error(t, EM_EUSER, "reduce function must emit exactly one value");
    return 0;
}

static int agg_create(void *ctx, em_task *t, em_value v, em_records *out)
{
    const em_shuffle_dep *d = ctx;
    switch (d->agg_kind) {
    case AGG_REDUCE:
    case AGG_FIRST:
        em_put_value(out, v);
        return em_records_error(out);
    case AGG_FOLD:
    case AGG_AGGREGATE:
        return call_reduce(t, &d->merge_value, d->zero, v, out);
    case AGG_COMBINE: {
        size_t before = em_records_count(out);
        int rc = ((em_map_fn)d->create.fn)(t, v, out, d->create.arg);
        if (rc) {
            if (t->failed) return em__set_error(rc < 0 ? rc : EM_EUSER, "%s", t->errmsg);
            return em__task_error(t, rc < 0 ? rc : EM_EUSER, "createCombiner returned %d", rc);
        }
        if (em_records_count(out) != before + 1)
            return em__task_error(t, EM_EUSER, "createCombiner must emit exactly one value");
        return em_records_error(out);
    }
    }
    return EM_EINTERNAL;
}

static int agg_merge_value(void *ctx, em_task *t, em_value c, em_value v, em_records *out)
{
    const em_shuffle_dep *d = ctx;
    if (d->agg_kind == AGG_FIRST) {
        em_put_value(out, c);
        return em_records_error(out);
    }
    return call_reduce(t, &d->merge_value, c, v, out);
}

static int agg_merge_combiners(void *ctx, em_task *t, em_value a, em_value b, em_records *out)
{
    const em_shuffle_dep *d = ctx;
    if (d->agg_kind == AGG_FIRST) {
        em_put_value(out, a);
        return em_records_error(out);
    }
    return call_reduce(t, &d->merge_combiners, a, b, out);
}

bool em__shuffle_dep_aggregator(const em_shuffle_dep *dep, em_aggregator *out)
{
    if (!dep->has_aggregator) return false;
    *out = (em_aggregator){agg_create, agg_merge_value, agg_merge_combiners, (void *)dep};
    return true;
}

/* ---- the ShuffledRDD ---------------------------------------------------------------------- */

/* Wraps the reader to own the aggregator it reads with. */
typedef struct reader_iter {
    em_iter base;
    em_iter *reader;
    em_aggregator agg;
} reader_iter;

static int reader_next(em_iter *base, em_value *out)
{
    reader_iter *r = (reader_iter *)base;
    return r->reader->next(r->reader, out);
}

static void reader_close(em_iter *base)
{
    reader_iter *r = (reader_iter *)base;
    em_iter_close(r->reader);
    em__free(r);
}

int em__open_shuffle_reader(struct em_rdd *r, const em_shuffle_dep *dep, int part,
                            em_shuffle_read_mode mode, bool descending, em_task *t, em_iter **out)
{
    reader_iter *ri = em__calloc(1, sizeof *ri);
    if (!ri) return EM_ENOMEM;
    ri->base = (em_iter){reader_next, reader_close};
    em_map_locations locs;
    int rc = em_map_outputs_locations(r->ctx->map_outputs, dep->shuffle_id, part, &locs);
    if (rc) {
        em__free(ri);
        return rc;
    }
    bool has_agg = em__shuffle_dep_aggregator(dep, &ri->agg);
    em_shuffle_read_spec spec = {
        .shuffle_id = dep->shuffle_id,
        .reducer = part,
        .num_maps = locs.num_maps,
        .locs = locs.locs,
        .block_sizes = locs.sizes,
        .mode = mode,
        .descending = descending,
        .agg = has_agg ? &ri->agg : NULL,
        .map_side_combined = has_agg && dep->map_side_combine,
    };
    rc = em_shuffle_reader_open(&spec, t, &ri->reader);
    em_map_locations_free(&locs); /* the reader copies what it needs */
    if (rc) {
        em__free(ri);
        return rc;
    }
    *out = &ri->base;
    return 0;
}

static int shuffled_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    shuffled_priv *p = r->priv;
    return em__open_shuffle_reader(r, p->dep, part, p->mode, p->descending, t, out);
}

static void shuffled_free(struct em_rdd *r)
{
    shuffled_priv *p = r->priv;
    em__free(p->dep->create.arg);
    em__free(p->dep->merge_value.arg);
    em__free(p->dep->merge_combiners.arg);
    em__free(p->dep);
    em__free(p->zero_data);
    em__free(p);
}

/* ---- shipping to executors (stage_codec.h) ---------------------------------------------------
 * A shuffle dependency travels as its shuffle id, partitioner, aggregator (flags, agg_kind, the
 * three udfs) and zero value; a ShuffledRDD as its read mode, order and dependency. */

int em__shuffle_dep_encode(const em_shuffle_dep *dep, struct em_graph_enc *g)
{
    em_wire_writer *w = &g->w;
    em_wire_put_ivar(w, dep->shuffle_id);
    em__graph_put_partitioner(g, dep->partitioner);
    em_wire_put_bool(w, dep->has_aggregator);
    em_wire_put_bool(w, dep->map_side_combine);
    em_wire_put_ivar(w, dep->agg_kind);
    em__graph_put_udf(g, &dep->create);
    em__graph_put_udf(g, &dep->merge_value);
    em__graph_put_udf(g, &dep->merge_combiners);
    em_wire_put_bool(w, dep->zero.data != NULL);
    if (dep->zero.data) em__graph_put_value(g, dep->zero);
    return w->err;
}

void em__shuffle_dep_free(em_shuffle_dep *dep)
{
    if (!dep) return;
    em__free(dep->create.arg);
    em__free(dep->merge_value.arg);
    em__free(dep->merge_combiners.arg);
    em__free(dep);
}

int em__shuffle_dep_decode(struct em_graph_dec *g, struct em_rdd *parent, em_shuffle_dep **out,
                           uint8_t **zero_data)
{
    *out = NULL;
    *zero_data = NULL;
    em_wire_reader *rd = &g->r;
    em_shuffle_dep *dep = em__calloc(1, sizeof *dep);
    if (!dep) return rd->err = em__set_error(EM_ENOMEM, "out of memory decoding a shuffle");
    dep->parent = parent;
    dep->shuffle_id = (int)em_wire_get_int(rd, 0, INT_MAX, "shuffle id");
    em__graph_get_partitioner(g, &dep->partitioner);
    dep->has_aggregator = em_wire_get_bool(rd);
    dep->map_side_combine = em_wire_get_bool(rd);
    dep->agg_kind = (int)em_wire_get_int(rd, 0, AGG_FIRST, "aggregator kind");
    em__graph_get_udf(g, &dep->create, false, "createCombiner");
    em__graph_get_udf(g, &dep->merge_value, false, "mergeValue");
    em__graph_get_udf(g, &dep->merge_combiners, false, "mergeCombiners");
    if (em_wire_get_bool(rd)) em__graph_get_value(g, &dep->zero, zero_data, "zero value");
    if (!rd->err) {
        int k = dep->agg_kind;
        bool needs_merge = k && k != AGG_FIRST, needs_zero = k == AGG_FOLD || k == AGG_AGGREGATE;
        if (!dep->partitioner)
            em_wire_fail(rd, "shuffle %d has no partitioner", dep->shuffle_id);
        else if (dep->has_aggregator != (k != 0))
            em_wire_fail(rd, "shuffle %d: aggregator flag and kind %d disagree", dep->shuffle_id,
                         k);
        else if (!k && (dep->create.fn || dep->merge_value.fn || dep->merge_combiners.fn ||
                        dep->create.arg || dep->merge_value.arg || dep->merge_combiners.arg ||
                        *zero_data))
            em_wire_fail(rd, "shuffle %d has aggregator functions but no aggregator",
                         dep->shuffle_id);
        else if ((needs_merge && (!dep->merge_value.fn || !dep->merge_combiners.fn)) ||
                 (k == AGG_COMBINE && !dep->create.fn) || (needs_zero && !*zero_data))
            em_wire_fail(rd, "shuffle %d: aggregator kind %d lacks a function or zero value",
                         dep->shuffle_id, k);
    }
    if (rd->err) {
        em__shuffle_dep_free(dep);
        em__free(*zero_data);
        *zero_data = NULL;
        return rd->err;
    }
    *out = dep;
    return 0;
}

static int shuffled_encode(const struct em_rdd *r, struct em_graph_enc *g)
{
    const shuffled_priv *p = r->priv;
    em_wire_put_u8(&g->w, (uint8_t)p->mode);
    em_wire_put_bool(&g->w, p->descending);
    return em__shuffle_dep_encode(p->dep, g);
}

static int shuffled_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    em_wire_reader *rd = &g->r;
    if (r->num_deps != 1 || r->deps[0].kind != EM_DEP_SHUFFLE)
        return em_wire_fail(rd, "ShuffledRDD needs one shuffle dependency");
    uint8_t mode = em_wire_get_u8(rd);
    bool descending = em_wire_get_bool(rd);
    if (!rd->err && mode > EM_READ_GROUPED) em_wire_fail(rd, "unknown read mode %u", mode);
    if (rd->err) return rd->err;
    shuffled_priv *p = em__calloc(1, sizeof *p);
    if (!p) return rd->err = em__set_error(EM_ENOMEM, "out of memory");
    if (em__shuffle_dep_decode(g, r->deps[0].rdd, &p->dep, &p->zero_data)) {
        em__free(p);
        return rd->err;
    }
    if (p->dep->partitioner->num_partitions != r->num_partitions) {
        em_wire_fail(rd, "%d partitions reading a shuffle of %d", r->num_partitions,
                     p->dep->partitioner->num_partitions);
        shuffled_free(&(struct em_rdd){.priv = p});
        return rd->err;
    }
    p->mode = (em_shuffle_read_mode)mode;
    p->descending = descending;
    r->deps[0].shuffle = p->dep;
    r->priv = p;
    return 0;
}

static const em_rdd_ops shuffled_ops = {"ShuffledRDD", shuffled_compute, shuffled_free,
                                        shuffled_encode, shuffled_decode};

const em_rdd_ops *const em__shuffled_kinds[] = {&shuffled_ops, NULL};

/* A ShuffledRDD over parent with partitioner part. agg_kind 0: no aggregator. */
static struct em_rdd *shuffled_new(struct em_rdd *parent, em_partitioner *part,
                                   em_shuffle_read_mode mode, bool descending, int agg_kind,
                                   em_udf create, em_udf merge_value, em_udf merge_combiners,
                                   const em_value *zero)
{
    shuffled_priv *p = em__calloc(1, sizeof *p);
    em_shuffle_dep *dep = p ? em__shuffle_dep_new(parent, part) : NULL;
    if (!dep) {
        em__free(p);
        return NULL;
    }
    p->dep = dep;
    p->mode = mode;
    p->descending = descending;
    dep->has_aggregator = agg_kind != 0;
    dep->map_side_combine = agg_kind != 0;
    dep->agg_kind = agg_kind;
    dep->create = create;
    dep->merge_value = merge_value;
    dep->merge_combiners = merge_combiners;
    if (zero) {
        p->zero_data = em__memdup(zero->data, zero->len ? zero->len : 1);
        dep->zero = (em_value){p->zero_data, zero->len, NULL};
    }
    em_dep d = {EM_DEP_SHUFFLE, parent, dep};
    struct em_rdd *r = em__rdd_new(parent->ctx, &shuffled_ops, p, part->num_partitions, &d, 1);
    if (!r) {
        shuffled_free(&(struct em_rdd){.priv = p});
        return NULL;
    }
    if (mode != EM_READ_AS_STORED || part->kind != EM_PART_MODULO) r->partitioner = part;
    return r;
}

static const em_udf no_udf = {NULL, NULL, 0};

static em_partitioner *hash_for(em_rdd *r, int num_partitions)
{
    return em_hash_partitioner(r->ctx, em__default_shuffle_partitions(r, num_partitions));
}

em_rdd *em_rdd_partition_by(em_rdd *r, em_partitioner *p)
{
    if (!r) return NULL;
    if (!p) {
        em__set_error(EM_EINVAL, "partitionBy: NULL partitioner");
        return NULL;
    }
    if (em__partitioner_equal(r->partitioner, p)) return r;
    return shuffled_new(r, p, EM_READ_AS_STORED, false, 0, no_udf, no_udf, no_udf, NULL);
}

em_rdd *em_rdd_group_by_key(em_rdd *r, int num_partitions)
{
    if (!r) return NULL;
    em_partitioner *p = hash_for(r, num_partitions);
    if (!p) return NULL;
    return shuffled_new(r, p, EM_READ_GROUPED, false, 0, no_udf, no_udf, no_udf, NULL);
}

#define FN(f) ((void (*)(void))(f))

static em_rdd *aggregated(em_rdd *r, int kind, em_udf c, em_udf mv, em_udf mc, const em_value *z,
                          int num_partitions, const char *op)
{
    if (!r) return NULL;
    if ((kind == AGG_COMBINE && !c.fn) || (kind != AGG_FIRST && (!mv.fn || !mc.fn))) {
        em__set_error(EM_EINVAL, "%s: NULL function", op);
        goto fail;
    }
    if (z && em_value_type(*z) == EM_TYPE_INVALID) {
        em__set_error(EM_EINVAL, "%s: the zero value is not a well-formed value", op);
        goto fail;
    }
    em_partitioner *p = hash_for(r, num_partitions);
    if (!p) goto fail;
    struct em_rdd *s = shuffled_new(r, p, EM_READ_AGGREGATE, false, kind, c, mv, mc, z);
    if (s) return s;
fail:
    em__free(c.arg);
    em__free(mv.arg);
    em__free(mc.arg);
    return NULL;
}

em_rdd *em_rdd_reduce_by_key(em_rdd *r, em_reduce_fn fn, const void *arg, size_t arg_len,
                             int num_partitions)
{
    em_udf u = em__udf(FN(fn), arg, arg_len);
    em_udf u2 = em__udf(FN(fn), arg, arg_len);
    return aggregated(r, AGG_REDUCE, no_udf, u, u2, NULL, num_partitions, "reduceByKey");
}

em_rdd *em_rdd_fold_by_key(em_rdd *r, em_value zero, em_reduce_fn fn, const void *arg,
                           size_t arg_len, int num_partitions)
{
    em_udf u = em__udf(FN(fn), arg, arg_len);
    em_udf u2 = em__udf(FN(fn), arg, arg_len);
    return aggregated(r, AGG_FOLD, no_udf, u, u2, &zero, num_partitions, "foldByKey");
}

em_rdd *em_rdd_aggregate_by_key(em_rdd *r, em_value zero, em_reduce_fn seq_op, em_reduce_fn comb_op,
                                const void *arg, size_t arg_len, int num_partitions)
{
    em_udf s = em__udf(FN(seq_op), arg, arg_len);
    em_udf c = em__udf(FN(comb_op), arg, arg_len);
    return aggregated(r, AGG_AGGREGATE, no_udf, s, c, &zero, num_partitions, "aggregateByKey");
}

em_rdd *em_rdd_combine_by_key(em_rdd *r, em_map_fn create, em_reduce_fn merge_value,
                              em_reduce_fn merge_combiners, const void *arg, size_t arg_len,
                              int num_partitions)
{
    em_udf c = em__udf(FN(create), arg, arg_len);
    em_udf mv = em__udf(FN(merge_value), arg, arg_len);
    em_udf mc = em__udf(FN(merge_combiners), arg, arg_len);
    return aggregated(r, AGG_COMBINE, c, mv, mc, NULL, num_partitions, "combineByKey");
}

/* x -> (x, null) */
static int to_key_null(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    em_put_tuple_begin(out);
    em_put_value(out, in);
    em_put_null(out);
    em_put_end(out);
    return 0;
}

em_rdd *em__keyed_with_null(em_rdd *r)
{
    return em_rdd_map(r, to_key_null, NULL, 0);
}

em_rdd *em_rdd_distinct(em_rdd *r, int num_partitions)
{
    em_rdd *pairs = em__keyed_with_null(r);
    if (!pairs) return NULL;
    em_rdd *red = aggregated(pairs, AGG_FIRST, no_udf, no_udf, no_udf, NULL,
                             num_partitions > 0 ? num_partitions : r->num_partitions, "distinct");
    return em_rdd_keys(red);
}

em_rdd *em_rdd_sort_by_key(em_rdd *r, bool ascending, int num_partitions)
{
    if (!r) return NULL;
    int n = num_partitions > 0 ? num_partitions : r->num_partitions;
    if (n <= 0) n = 1;
    em_partitioner *p = em_range_partitioner(r, n, ascending);
    if (!p) return NULL;
    return shuffled_new(r, p, EM_READ_SORTED, !ascending, 0, no_udf, no_udf, no_udf, NULL);
}

em_rdd *em_rdd_sort_by(em_rdd *r, em_map_fn key_fn, const void *arg, size_t arg_len, bool ascending,
                       int num_partitions)
{
    em_rdd *keyed = em_rdd_key_by(r, key_fn, arg, arg_len);
    return em_rdd_values(em_rdd_sort_by_key(keyed, ascending, num_partitions));
}

em_rdd *em_rdd_coalesce(em_rdd *r, int num_partitions, bool shuffle)
{
    if (!r) return NULL;
    if (num_partitions <= 0) {
        em__set_error(EM_EINVAL, "coalesce: number of partitions must be > 0, not %d",
                      num_partitions);
        return NULL;
    }
    if (!shuffle) return em__coalesce_narrow(r, num_partitions);
    em_rdd *keyed = em__round_robin_keyed(r, num_partitions);
    if (!keyed) return NULL;
    em_partitioner *p = em__partitioner_new(r->ctx);
    if (!p) return NULL;
    p->kind = EM_PART_MODULO;
    p->num_partitions = num_partitions;
    em_rdd *s = shuffled_new(keyed, p, EM_READ_AS_STORED, false, 0, no_udf, no_udf, no_udf, NULL);
    return em_rdd_values(s);
}

em_rdd *em_rdd_repartition(em_rdd *r, int num_partitions)
{
    return em_rdd_coalesce(r, num_partitions, true);
}
