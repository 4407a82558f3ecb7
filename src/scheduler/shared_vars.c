/* The driver's side of shared variables (include/ember/shared.h): broadcast variables and
 * accumulators created on a context, stored in its registry (storage/shared.h), and the
 * task-side em_broadcast_value. Accumulator merging happens in the DAG scheduler when tasks
 * succeed; the values are read from the registry.
 *
 * Thread rule: create / destroy / value reads on driver threads (ctx->mu guards the ids and
 * the owned lists); em_broadcast_value on task threads.
 */
#include "rdd/rdd.h"
#include "storage/shared.h"

#include <ember/shared.h>

struct em_broadcast {
    em_context *ctx;
    uint64_t id;
    bool destroyed;
    struct em_broadcast *next_owned;
};

struct em_accumulator {
    em_context *ctx;
    uint64_t id;
    int kind;
    struct em_accumulator *next_owned;
};

int em_broadcast_create(em_context *ctx, const void *data, size_t len, em_broadcast **out)
{
    em__clear_error();
    *out = NULL;
    if (ctx->stopped) return em__set_error(EM_ESTATE, "em_broadcast_create: context stopped");
    em_broadcast *b = em__calloc(1, sizeof *b);
    if (!b) return em__set_error(EM_ENOMEM, "out of memory creating a broadcast variable");
    pthread_mutex_lock(&ctx->mu);
    b->id = (uint64_t)++ctx->next_broadcast_id;
    pthread_mutex_unlock(&ctx->mu);
    b->ctx = ctx;
    int rc = em__shared_broadcast_put(ctx->shared, b->id, data, len);
    if (rc) {
        em__free(b);
        return rc;
    }
    pthread_mutex_lock(&ctx->mu);
    b->next_owned = ctx->broadcasts;
    ctx->broadcasts = b;
    pthread_mutex_unlock(&ctx->mu);
    EM_LOG(EM_LOG_INFO, "shared", "broadcast %llu created (%zu bytes)", (unsigned long long)b->id,
           len);
    *out = b;
    return 0;
}

uint64_t em_broadcast_id(const em_broadcast *b)
{
    return b->id;
}

int em_broadcast_value(em_task *t, uint64_t id, const void **data, size_t *len)
{
    if (!t->shared) return em_task_fail(t, "broadcast variables are not available here");
    int rc = em__shared_broadcast_get(t->shared, id, data, len);
    if (rc) em_task_fail(t, "%s", em_errmsg()); /* the message, should the task fail */
    return rc;
}

void em_broadcast_destroy(em_broadcast *b)
{
    if (!b || b->destroyed) return;
    b->destroyed = true;
    em__shared_broadcast_remove(b->ctx->shared, b->id); /* the object stays owned by ctx */
}

void em__shared_vars_free(em_context *ctx)
{
    while (ctx->broadcasts) {
        em_broadcast *b = ctx->broadcasts;
        ctx->broadcasts = b->next_owned;
        em__free(b);
    }
    while (ctx->accumulators) {
        em_accumulator *a = ctx->accumulators;
        ctx->accumulators = a->next_owned;
        em__free(a);
    }
    em__shared_free(ctx->shared);
    ctx->shared = NULL;
}

static int acc_create(em_context *ctx, const char *name, int kind, em_value zero,
                      em_reduce_fn merge, const void *arg, size_t arg_len, em_accumulator **out)
{
    em__clear_error();
    *out = NULL;
    if (ctx->stopped) return em__set_error(EM_ESTATE, "em_accumulator_create: context stopped");
    if (kind == EM_ACC_VALUE) {
        if (!merge)
            return em__set_error(EM_EINVAL, "accumulator '%s': no merge function",
                                 name ? name : "");
        size_t vlen;
        if (!zero.data || em_value_parse(zero.data, zero.len, &vlen) || vlen != zero.len)
            return em__set_error(EM_EINVAL, "accumulator '%s': the zero value is malformed",
                                 name ? name : "");
    }
    em_accumulator *a = em__calloc(1, sizeof *a);
    if (!a) return em__set_error(EM_ENOMEM, "out of memory creating an accumulator");
    pthread_mutex_lock(&ctx->mu);
    a->id = (uint64_t)++ctx->next_accumulator_id;
    pthread_mutex_unlock(&ctx->mu);
    a->ctx = ctx;
    a->kind = kind;
    int rc = em__shared_acc_define(ctx->shared, a->id, kind, name, (void (*)(void))merge, arg,
                                   arg_len, zero.data, zero.len);
    if (rc) {
        em__free(a);
        return rc;
    }
    pthread_mutex_lock(&ctx->mu);
    a->next_owned = ctx->accumulators;
    ctx->accumulators = a;
    pthread_mutex_unlock(&ctx->mu);
    *out = a;
    return 0;
}

int em_accumulator_create_int64(em_context *ctx, const char *name, em_accumulator **out)
{
    return acc_create(ctx, name, EM_ACC_INT64, (em_value){0}, NULL, NULL, 0, out);
}

int em_accumulator_create_float64(em_context *ctx, const char *name, em_accumulator **out)
{
    return acc_create(ctx, name, EM_ACC_FLOAT64, (em_value){0}, NULL, NULL, 0, out);
}

int em_accumulator_create(em_context *ctx, const char *name, em_value zero, em_reduce_fn merge,
                          const void *arg, size_t arg_len, em_accumulator **out)
{
    return acc_create(ctx, name, EM_ACC_VALUE, zero, merge, arg, arg_len, out);
}

uint64_t em_accumulator_id(const em_accumulator *a)
{
    return a->id;
}

int64_t em_accumulator_int64(const em_accumulator *a)
{
    return em__shared_acc_int64(a->ctx->shared, a->id);
}

double em_accumulator_float64(const em_accumulator *a)
{
    return em__shared_acc_float64(a->ctx->shared, a->id);
}

int em_accumulator_value(const em_accumulator *a, em_records **out)
{
    em__clear_error();
    *out = em_records_new();
    if (!*out) return em__set_error(EM_ENOMEM, "out of memory");
    int rc = em__shared_acc_value(a->ctx->shared, a->id, *out);
    if (rc) {
        em_records_free(*out);
        *out = NULL;
        return em__set_error(rc, "accumulator %llu has no value record", (unsigned long long)a->id);
    }
    return 0;
}
