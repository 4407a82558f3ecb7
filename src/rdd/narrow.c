/* Narrow one-to-one transformations, fused into the pull pipeline of a stage: map, filter,
 * flatMap, mapPartitions(+WithIndex), mapValues, flatMapValues, keyBy, keys, values, glom and
 * sample. Each is one RDD kind with a parent, a user function (em_udf) and an iterator that
 * pulls one parent record, calls the function, and hands out the results from a small buffer
 * that is reused for every record — no per-record allocation, no materialisation (except glom,
 * whose output is the whole partition, and mapPartitions, whose user function writes its whole
 * output before it returns).
 * Iterators run on the task thread; the RDD definitions on driver threads. Each kind ships to
 * executors as its function reference and argument blob (stage_codec.h); the kind itself is the
 * ops table's name.
 */
#include "rdd/rdd.h"
#include "rdd/stage_codec.h"
#include "record/record_int.h"

#include <math.h>
#include <string.h>

enum narrow_kind {
    NK_MAP,
    NK_FILTER,
    NK_FLAT_MAP,
    NK_MAP_PARTITIONS,
    NK_MAP_VALUES,
    NK_FLAT_MAP_VALUES,
    NK_KEY_BY,
    NK_KEYS,
    NK_VALUES,
    NK_GLOM,
    NK_SAMPLE,
};

static const char *const narrow_names[] = {"map",       "filter",        "flatMap", "mapPartitions",
                                           "mapValues", "flatMapValues", "keyBy",   "keys",
                                           "values",    "glom",          "sample"};

typedef struct narrow_priv {
    enum narrow_kind kind;
    em_udf udf;
    bool with_replacement;
    double fraction;
    uint64_t seed;
} narrow_priv;

typedef struct narrow_iter {
    em_iter base;
    em_iter *in;
    const narrow_priv *p;
    em_task *t;
    em_records *out, *tmp;
    size_t cursor;
    bool done;
    uint64_t rng;
    em_value pending_key; /* flatMapValues: key of the record being expanded */
} narrow_iter;

static int fn_failed(narrow_iter *it, int rc)
{
    const char *op = narrow_names[it->p->kind];
    if (it->t->failed) return em__set_error(rc < 0 ? rc : EM_EUSER, "%s", it->t->errmsg);
    return em__task_error(it->t, rc < 0 ? rc : EM_EUSER, "%s function returned %d (%s)", op, rc,
                          em_strerror(rc));
}

static int check_builder(narrow_iter *it, em_records *r)
{
    int e = em_records_error(r);
    if (!e && r->depth > 0) e = EM_EINVAL; /* a tuple or list left open */
    if (!e) return 0;
    return em__task_error(it->t, e, "%s function built a malformed value (%s)",
                          narrow_names[it->p->kind],
                          e == EM_ENOMEM ? "out of memory" : "unbalanced tuple or list");
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double next_unit(uint64_t *s)
{
    return (double)(next_rand(s) >> 11) * 0x1.0p-53;
}

/* Poisson(lambda) copies (Knuth for small lambda, normal approximation above 30). */
static int poisson(uint64_t *s, double lambda)
{
    if (lambda > 30) {
        double u1 = next_unit(s), u2 = next_unit(s);
        double z = sqrt(-2 * log(u1 > 0 ? u1 : 1e-300)) * cos(2 * M_PI * u2);
        double k = floor(lambda + sqrt(lambda) * z + 0.5);
        return k < 0 ? 0 : (int)k;
    }
    double l = exp(-lambda), p = 1;
    int k = 0;
    do {
        k++;
        p *= next_unit(s);
    } while (p > l);
    return k - 1;
}

/* Refills it->out from the next input record(s). EM_ROW when out has records, EM_DONE, or an
 * error. */
static int refill(narrow_iter *it)
{
    const narrow_priv *p = it->p;
    em_task *t = it->t;
    for (;;) {
        em_value in;
        int rc = it->in->next(it->in, &in);
        if (rc != EM_ROW) return rc;
        em_records_clear(it->out);
        it->cursor = 0;
        switch (p->kind) {
        case NK_MAP:
        case NK_FLAT_MAP:
            rc = ((em_map_fn)p->udf.fn)(t, in, it->out, p->udf.arg);
            if (rc) return fn_failed(it, rc);
            if ((rc = check_builder(it, it->out))) return rc;
            if (p->kind == NK_MAP && em_records_count(it->out) != 1)
                return em__task_error(t, EM_EUSER,
                                      "map function must emit exactly one value, emitted %zu",
                                      em_records_count(it->out));
            break;
        case NK_MAP_VALUES:
            if ((rc = em__require_pair(t, in, "mapValues"))) return rc;
            em_put_tuple_begin(it->out);
            em_put_value(it->out, em_value_key(in));
            rc = ((em_map_fn)p->udf.fn)(t, em_value_val(in), it->out, p->udf.arg);
            if (rc) return fn_failed(it, rc);
            em_put_end(it->out);
            if ((rc = check_builder(it, it->out))) return rc;
            if (em_records_count(it->out) != 1 || em_value_count(em_records_at(it->out, 0)) != 2)
                return em__task_error(t, EM_EUSER,
                                      "mapValues function must emit exactly one value");
            break;
        case NK_FLAT_MAP_VALUES:
        case NK_KEY_BY: {
            bool fmv = p->kind == NK_FLAT_MAP_VALUES;
            if (fmv && (rc = em__require_pair(t, in, "flatMapValues"))) return rc;
            em_records_clear(it->tmp);
            rc = ((em_map_fn)p->udf.fn)(t, fmv ? em_value_val(in) : in, it->tmp, p->udf.arg);
            if (rc) return fn_failed(it, rc);
            if ((rc = check_builder(it, it->tmp))) return rc;
            if (!fmv && em_records_count(it->tmp) != 1)
                return em__task_error(t, EM_EUSER, "keyBy function must emit exactly one key");
            size_t cur = 0;
            em_value v;
            while (em_records_next(it->tmp, &cur, &v) == EM_ROW) {
                if (fmv)
                    em_put_pair(it->out, em_value_key(in), v);
                else
                    em_put_pair(it->out, v, in);
            }
            if ((rc = check_builder(it, it->out))) return rc;
            break;
        }
        case NK_FILTER:
            rc = ((em_pred_fn)p->udf.fn)(t, in, p->udf.arg);
            if (rc < 0) return fn_failed(it, rc);
            if (rc) em_put_value(it->out, in);
            break;
        case NK_KEYS:
        case NK_VALUES:
            if ((rc = em__require_pair(t, in, narrow_names[p->kind]))) return rc;
            em_put_value(it->out, p->kind == NK_KEYS ? em_value_key(in) : em_value_val(in));
            break;
        case NK_SAMPLE: {
            int copies = p->with_replacement ? poisson(&it->rng, p->fraction)
                                             : next_unit(&it->rng) < p->fraction;
            for (int i = 0; i < copies; i++) em_put_value(it->out, in);
            break;
        }
        default:
            return EM_EINTERNAL;
        }
        if ((rc = check_builder(it, it->out))) return rc;
        if (em_records_count(it->out) > 0) return EM_ROW;
    }
}

static int narrow_next(em_iter *base, em_value *out)
{
    narrow_iter *it = (narrow_iter *)base;
    if (em_records_next(it->out, &it->cursor, out) == EM_ROW) return EM_ROW;
    if (it->done) return EM_DONE;
    int rc = refill(it);
    if (rc != EM_ROW) {
        it->done = true;
        return rc;
    }
    return em_records_next(it->out, &it->cursor, out) == EM_ROW ? EM_ROW : EM_DONE;
}

static void narrow_close(em_iter *base)
{
    narrow_iter *it = (narrow_iter *)base;
    em_iter_close(it->in);
    em_records_free(it->out);
    em_records_free(it->tmp);
    em__free(it);
}

/* mapPartitions and glom: the whole output is produced on the first pull. */
static int whole_partition(narrow_iter *it)
{
    const narrow_priv *p = it->p;
    int rc;
    if (p->kind == NK_GLOM) {
        em_put_list_begin(it->out);
        em_value v;
        while ((rc = it->in->next(it->in, &v)) == EM_ROW) em_put_value(it->out, v);
        if (rc < 0) return rc;
        em_put_end(it->out);
    } else {
        rc = ((em_partition_fn)p->udf.fn)(it->t, it->in, it->out, p->udf.arg);
        if (rc) return fn_failed(it, rc);
    }
    return check_builder(it, it->out);
}

static int partition_next(em_iter *base, em_value *out)
{
    narrow_iter *it = (narrow_iter *)base;
    if (!it->done) {
        it->done = true;
        int rc = whole_partition(it);
        if (rc) {
            em_records_clear(it->out);
            return rc;
        }
    }
    return em_records_next(it->out, &it->cursor, out);
}

static int narrow_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    const narrow_priv *p = r->priv;
    em_iter *in;
    int rc = em__rdd_iterator(r->deps[0].rdd, part, t, &in);
    if (rc) return rc;
    narrow_iter *it = em__calloc(1, sizeof *it);
    if (it) it->out = em_records_new();
    if (it) it->tmp = em_records_new();
    if (!it || !it->out || !it->tmp) {
        if (it) {
            em_records_free(it->out);
            em_records_free(it->tmp);
        }
        em__free(it);
        em_iter_close(in);
        return EM_ENOMEM;
    }
    bool whole = p->kind == NK_MAP_PARTITIONS || p->kind == NK_GLOM;
    it->base = (em_iter){whole ? partition_next : narrow_next, narrow_close};
    it->in = in;
    it->p = p;
    it->t = t;
    it->rng = p->seed ^ ((uint64_t)(part + 1) * 0xD1B54A32D192ED03ull);
    *out = &it->base;
    return 0;
}

static void narrow_free(struct em_rdd *r)
{
    narrow_priv *p = r->priv;
    em__free(p->udf.arg);
    em__free(p);
}

static int narrow_encode(const struct em_rdd *r, struct em_graph_enc *g)
{
    const narrow_priv *p = r->priv;
    em__graph_put_udf(g, &p->udf);
    em_wire_put_bool(&g->w, p->with_replacement);
    em_wire_put_f64(&g->w, p->fraction);
    em_wire_put_u64(&g->w, p->seed);
    return g->w.err;
}

static const em_rdd_ops narrow_ops[NK_SAMPLE + 1];

static int narrow_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    em_wire_reader *rd = &g->r;
    enum narrow_kind kind = (enum narrow_kind)(r->ops - narrow_ops);
    if (r->num_deps != 1 || r->deps[0].kind != EM_DEP_NARROW ||
        r->deps[0].rdd->num_partitions != r->num_partitions)
        return em_wire_fail(rd, "%s needs one narrow dependency with as many partitions",
                            narrow_names[kind]);
    bool needs_fn = kind != NK_KEYS && kind != NK_VALUES && kind != NK_GLOM && kind != NK_SAMPLE;
    narrow_priv v = {.kind = kind};
    if (em__graph_get_udf(g, &v.udf, needs_fn, narrow_names[kind])) return rd->err;
    v.with_replacement = em_wire_get_bool(rd);
    v.fraction = em_wire_get_f64(rd);
    v.seed = em_wire_get_u64(rd);
    if (!rd->err && !(v.fraction >= 0) && kind == NK_SAMPLE)
        em_wire_fail(rd, "sample fraction %g", v.fraction);
    narrow_priv *p = rd->err ? NULL : em__memdup(&v, sizeof v);
    if (!p) {
        em__free(v.udf.arg);
        return rd->err ? rd->err : (rd->err = em__set_error(EM_ENOMEM, "out of memory"));
    }
    r->priv = p;
    return 0;
}

static const em_rdd_ops narrow_ops[NK_SAMPLE + 1] = {
#define NARROW_OPS(name)                                                                           \
    {                                                                                              \
        name, narrow_compute, narrow_free, narrow_encode, narrow_decode                            \
    }
    NARROW_OPS("map"),           NARROW_OPS("filter"),    NARROW_OPS("flatMap"),
    NARROW_OPS("mapPartitions"), NARROW_OPS("mapValues"), NARROW_OPS("flatMapValues"),
    NARROW_OPS("keyBy"),         NARROW_OPS("keys"),      NARROW_OPS("values"),
    NARROW_OPS("glom"),          NARROW_OPS("sample"),
#undef NARROW_OPS
};

const em_rdd_ops *const em__narrow_kinds[] = {
    &narrow_ops[NK_MAP],        &narrow_ops[NK_FILTER],
    &narrow_ops[NK_FLAT_MAP],   &narrow_ops[NK_MAP_PARTITIONS],
    &narrow_ops[NK_MAP_VALUES], &narrow_ops[NK_FLAT_MAP_VALUES],
    &narrow_ops[NK_KEY_BY],     &narrow_ops[NK_KEYS],
    &narrow_ops[NK_VALUES],     &narrow_ops[NK_GLOM],
    &narrow_ops[NK_SAMPLE],     NULL,
};

static em_rdd *narrow_new(em_rdd *parent, enum narrow_kind kind, void (*fn)(void), const void *arg,
                          size_t arg_len, bool needs_fn)
{
    if (!parent) return NULL;
    if (needs_fn && !fn) {
        em__set_error(EM_EINVAL, "%s: NULL function", narrow_names[kind]);
        return NULL;
    }
    narrow_priv *p = em__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->kind = kind;
    p->udf = em__udf(fn, arg, arg_len);
    if (arg && arg_len && !p->udf.arg) {
        em__free(p);
        em__set_error(EM_ENOMEM, "out of memory copying a function argument");
        return NULL;
    }
    em_dep dep = {EM_DEP_NARROW, parent, NULL};
    struct em_rdd *r =
        em__rdd_new(parent->ctx, &narrow_ops[kind], p, parent->num_partitions, &dep, 1);
    if (!r) {
        em__free(p->udf.arg);
        em__free(p);
        return NULL;
    }
    /* Operators that keep keys where they are keep the parent's partitioning. */
    if (kind == NK_FILTER || kind == NK_MAP_VALUES || kind == NK_FLAT_MAP_VALUES ||
        kind == NK_SAMPLE)
        r->partitioner = parent->partitioner;
    return r;
}

#define FN(f) ((void (*)(void))(f))

em_rdd *em_rdd_map(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len)
{
    return narrow_new(r, NK_MAP, FN(fn), arg, arg_len, true);
}
em_rdd *em_rdd_filter(em_rdd *r, em_pred_fn fn, const void *arg, size_t arg_len)
{
    return narrow_new(r, NK_FILTER, FN(fn), arg, arg_len, true);
}
em_rdd *em_rdd_flat_map(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len)
{
    return narrow_new(r, NK_FLAT_MAP, FN(fn), arg, arg_len, true);
}
em_rdd *em_rdd_map_partitions(em_rdd *r, em_partition_fn fn, const void *arg, size_t arg_len)
{
    return narrow_new(r, NK_MAP_PARTITIONS, FN(fn), arg, arg_len, true);
}
em_rdd *em_rdd_map_partitions_with_index(em_rdd *r, em_partition_fn fn, const void *arg,
                                         size_t arg_len)
{
    return narrow_new(r, NK_MAP_PARTITIONS, FN(fn), arg, arg_len, true);
}
em_rdd *em_rdd_map_values(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len)
{
    return narrow_new(r, NK_MAP_VALUES, FN(fn), arg, arg_len, true);
}
em_rdd *em_rdd_flat_map_values(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len)
{
    return narrow_new(r, NK_FLAT_MAP_VALUES, FN(fn), arg, arg_len, true);
}
em_rdd *em_rdd_key_by(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len)
{
    return narrow_new(r, NK_KEY_BY, FN(fn), arg, arg_len, true);
}
em_rdd *em_rdd_keys(em_rdd *r)
{
    return narrow_new(r, NK_KEYS, NULL, NULL, 0, false);
}
em_rdd *em_rdd_values(em_rdd *r)
{
    return narrow_new(r, NK_VALUES, NULL, NULL, 0, false);
}
em_rdd *em_rdd_glom(em_rdd *r)
{
    return narrow_new(r, NK_GLOM, NULL, NULL, 0, false);
}

em_rdd *em_rdd_sample(em_rdd *r, bool with_replacement, double fraction, uint64_t seed)
{
    if (!r) return NULL;
    if (!(fraction >= 0) || (!with_replacement && fraction > 1)) {
        em__set_error(EM_EINVAL, "sample: fraction must be in [0, %s], not %g",
                      with_replacement ? "inf" : "1", fraction);
        return NULL;
    }
    em_rdd *s = narrow_new(r, NK_SAMPLE, NULL, NULL, 0, false);
    if (s) {
        narrow_priv *p = s->priv;
        p->with_replacement = with_replacement;
        p->fraction = fraction;
        p->seed = seed;
    }
    return s;
}
