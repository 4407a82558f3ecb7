/* The RDD graph core: creating RDDs and dependencies, the per-partition iterator with the
 * cache in front of compute (em__rdd_iterator), small reusable iterators, the task-facing
 * functions of the public API (em_iter_next, em_task_*), and RDD information and persistence.
 *
 * Definition functions run on driver threads and take ctx->mu to allocate ids and link the new
 * RDD into the context's list (the context frees every RDD at stop). Iterators run on task
 * threads.
 */
#include "rdd/rdd.h"

#include "record/record_int.h"
#include "storage/block_store.h"
#include <stdio.h>
#include <string.h>

/* ---- definition ---------------------------------------------------------------------------- */

struct em_rdd *em__rdd_new(em_context *ctx, const em_rdd_ops *ops, void *priv, int num_partitions,
                           const em_dep *deps, int num_deps)
{
    if (ctx->stopped) {
        em__set_error(EM_ESTATE, "the context is stopped");
        return NULL;
    }
    struct em_rdd *r = em__calloc(1, sizeof *r);
    em_dep *d = num_deps ? em__calloc((size_t)num_deps, sizeof *d) : NULL;
    if (!r || (num_deps && !d)) {
        em__free(r);
        em__free(d);
        em__set_error(EM_ENOMEM, "out of memory defining an RDD");
        return NULL;
    }
    if (num_deps) memcpy(d, deps, (size_t)num_deps * sizeof *d);
    r->ctx = ctx;
    r->ops = ops;
    r->priv = priv;
    r->num_partitions = num_partitions;
    r->deps = d;
    r->num_deps = num_deps;
    pthread_mutex_lock(&ctx->mu);
    r->id = ctx->next_rdd_id++;
    r->next_owned = ctx->rdds;
    ctx->rdds = r;
    pthread_mutex_unlock(&ctx->mu);
    return r;
}

em_shuffle_dep *em__shuffle_dep_new(struct em_rdd *parent, em_partitioner *p)
{
    em_shuffle_dep *dep = em__calloc(1, sizeof *dep);
    if (!dep) {
        em__set_error(EM_ENOMEM, "out of memory defining a shuffle");
        return NULL;
    }
    em_context *ctx = parent->ctx;
    pthread_mutex_lock(&ctx->mu);
    dep->shuffle_id = ctx->next_shuffle_id++;
    pthread_mutex_unlock(&ctx->mu);
    dep->parent = parent;
    dep->partitioner = p;
    return dep;
}

em_udf em__udf(void (*fn)(void), const void *arg, size_t arg_len)
{
    em_udf u = {fn, NULL, 0};
    if (arg && arg_len) {
        u.arg = em__memdup(arg, arg_len);
        if (u.arg) u.arg_len = arg_len;
    }
    return u;
}

int em__default_shuffle_partitions(const struct em_rdd *r, int asked)
{
    if (asked > 0) return asked;
    int n = r->ctx->default_parallelism;
    return n > 0 ? n : 1;
}

/* ---- small iterators ------------------------------------------------------------------------ */

typedef struct bytes_iter {
    em_iter base;
    const uint8_t *pos, *end;
    em_records *owned;
} bytes_iter;

static int bytes_next(em_iter *it, em_value *out)
{
    bytes_iter *b = (bytes_iter *)it;
    if (b->pos >= b->end) return EM_DONE;
    size_t n = em__value_skip_trusted(b->pos); /* the engine's own buffers */
    *out = (em_value){b->pos, n, NULL};
    b->pos += n;
    return EM_ROW;
}

static void bytes_close(em_iter *it)
{
    bytes_iter *b = (bytes_iter *)it;
    em_records_free(b->owned);
    em__free(b);
}

em_iter *em__bytes_iter(const uint8_t *data, size_t len)
{
    bytes_iter *b = em__calloc(1, sizeof *b);
    if (!b) return NULL;
    b->base = (em_iter){bytes_next, bytes_close};
    b->pos = data;
    b->end = data + len;
    return &b->base;
}

em_iter *em__records_iter(em_records *recs, bool own)
{
    size_t len;
    const uint8_t *data = em_records_data(recs, &len);
    em_iter *it = em__bytes_iter(data, len);
    if (it && own) ((bytes_iter *)it)->owned = recs;
    if (!it && own) em_records_free(recs);
    return it;
}

em_iter *em__empty_iter(void)
{
    return em__bytes_iter(NULL, 0);
}

int em_iter_next(em_iter *it, em_value *out)
{
    return it->next(it, out);
}

/* ---- tasks -------------------------------------------------------------------------------- */

int em_task_partition(const em_task *t)
{
    return t->partition;
}
int em_task_stage(const em_task *t)
{
    return t->stage_id;
}
int em_task_attempt(const em_task *t)
{
    return t->attempt;
}

int em_task_fail(em_task *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->errmsg, sizeof t->errmsg, fmt, ap);
    va_end(ap);
    t->failed = 1;
    return EM_EUSER;
}

int em__task_error(em_task *t, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->errmsg, sizeof t->errmsg, fmt, ap);
    va_end(ap);
    t->failed = 1;
    em__set_error(code, "%s", t->errmsg);
    return code;
}

int em__require_pair(em_task *t, em_value rec, const char *op)
{
    if (EM_LIKELY(em_value_type(rec) == EM_TYPE_TUPLE && em_value_count(rec) == 2)) return 0;
    char text[120];
    em_value_format(rec, text, sizeof text);
    return em__task_error(t, EM_EFORMAT, "%s needs (key, value) pairs, got %s record '%s'", op,
                          em_type_name(em_value_type(rec)), text);
}

/* ---- the cache in front of compute ------------------------------------------------------- */

typedef struct block_iter {
    em_iter base;
    em_block *block;
    const uint8_t *pos, *end;
} block_iter;

static int block_next(em_iter *it, em_value *out)
{
    block_iter *b = (block_iter *)it;
    if (b->pos >= b->end) return EM_DONE;
    size_t n = em__value_skip_trusted(b->pos); /* written by the caching iterator */
    *out = (em_value){b->pos, n, NULL};
    b->pos += n;
    return EM_ROW;
}

static void block_close(em_iter *it)
{
    block_iter *b = (block_iter *)it;
    em_block_release(b->block);
    em__free(b);
}

/* Passes records through while copying them into a buffer; at the end, offers the buffer to
 * the block store. Gives up copying (and keeps streaming) when the copy outgrows the storage
 * memory that is free. */
typedef struct caching_iter {
    em_iter base;
    em_iter *in;
    em_records *copy;
    struct em_rdd *rdd;
    int part;
    int64_t limit;
    em_task *t;
} caching_iter;

static int caching_next(em_iter *it, em_value *out)
{
    caching_iter *c = (caching_iter *)it;
    int rc = c->in->next(c->in, out);
    if (rc == EM_ROW && c->copy) {
        em_put_value(c->copy, *out);
        size_t len;
        em_records_data(c->copy, &len);
        if (em_records_error(c->copy) || (int64_t)len > c->limit) {
            EM_LOG(EM_LOG_INFO, "storage", "rdd_%d_%d does not fit in storage memory; not cached",
                   c->rdd->id, c->part);
            em_records_free(c->copy);
            c->copy = NULL;
        }
    } else if (rc == EM_DONE && c->copy) {
        size_t len;
        const uint8_t *data = em_records_data(c->copy, &len);
        uint8_t *owned = len ? em__memdup(data, len) : em__calloc(1, 1); /* empty: data NULL */
        em_records_free(c->copy);
        c->copy = NULL;
        if (owned && em_block_store_put(c->rdd->ctx->blocks, c->rdd->id, c->part, owned, len) != 0)
            em__free(owned);
        else if (owned && c->t->num_cached < (int)EM_ARRAY_LEN(c->t->cached))
            c->t->cached[c->t->num_cached++] = (em_cached_block){c->rdd->id, c->part, (int64_t)len};
    }
    return rc;
}

static void caching_close(em_iter *it)
{
    caching_iter *c = (caching_iter *)it;
    em_iter_close(c->in);
    em_records_free(c->copy);
    em__free(c);
}

int em__rdd_iterator(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    if (!r->cached) return r->ops->compute(r, part, t, out);
    em_block *blk = em_block_store_get(r->ctx->blocks, r->id, part);
    if (blk) {
        block_iter *b = em__calloc(1, sizeof *b);
        if (!b) {
            em_block_release(blk);
            return EM_ENOMEM;
        }
        size_t len;
        const uint8_t *data = em_block_data(blk, &len);
        *b = (block_iter){{block_next, block_close}, blk, data, data + len};
        *out = &b->base;
        return 0;
    }
    em_iter *in;
    int rc = r->ops->compute(r, part, t, &in);
    if (rc) return rc;
    caching_iter *c = em__calloc(1, sizeof *c);
    if (!c) {
        em_iter_close(in);
        return EM_ENOMEM;
    }
    *c = (caching_iter){{caching_next, caching_close}, in, em_records_new(), r, part, 0, t};
    c->limit = em_memory_execution_pool(r->ctx->memory) * 2; /* storage can borrow execution */
    *out = &c->base;
    return 0;
}

/* ---- information and persistence --------------------------------------------------------- */

em_rdd *em_rdd_cache(em_rdd *r)
{
    return em_rdd_persist(r);
}

em_rdd *em_rdd_persist(em_rdd *r)
{
    if (r) r->cached = true;
    return r;
}

void em_rdd_unpersist(em_rdd *r)
{
    if (!r) return;
    r->cached = false;
    em_block_store_remove_rdd(r->ctx->blocks, r->id);
    if (r->ctx->unpersist) r->ctx->unpersist(r->ctx, r->id);
}

int em_rdd_num_partitions(const em_rdd *r)
{
    return r ? r->num_partitions : 0;
}
int em_rdd_id(const em_rdd *r)
{
    return r ? r->id : -1;
}

em_rdd *em_rdd_set_name(em_rdd *r, const char *name)
{
    if (!r) return NULL;
    char *n = em__strdup(name);
    if (n) {
        em__free(r->name);
        r->name = n;
    }
    return r;
}
