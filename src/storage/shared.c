/* The shared-variable registry and a task's accumulator updates (see shared.h).
 *
 * Encodings (src/base/wire.h primitives):
 *   definitions: uvar count, then per accumulator: u64 id, u8 kind, str name, and for
 *                EM_ACC_VALUE: fn merge, bytes merge_arg, bytes zero (an encoded value)
 *   updates:     uvar count, then per update: u64 id, u8 kind, then ivar (int64) | f64 |
 *                bytes (one encoded value)
 * Broadcast values are plain bytes; the driver serves them in chunks.
 */
#include "storage/shared.h"

#include "base/wire.h"
#include "record/record_int.h"

#include <pthread.h>
#include <string.h>

typedef struct bcast {
    uint64_t id;
    uint8_t *data;
    size_t len;
    bool fetching;
    struct bcast *next;
} bcast;

typedef struct accdef {
    uint64_t id;
    int kind;
    char *name;
    em_reduce_fn merge;
    void *merge_arg;
    size_t merge_arg_len;
    em_buf zero;
    /* the merged value (driver) */
    int64_t ival;
    double fval;
    em_buf value; /* EM_ACC_VALUE: one encoded value (starts as zero) */
    struct accdef *next;
} accdef;

struct em_shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bcast *bcasts;
    accdef *accs;
    int (*fetch)(void *arg, uint64_t id, em_buf *out);
    void *fetch_arg;
};

typedef struct acc_update {
    uint64_t id;
    int kind;
    int64_t ival;
    double fval;
    em_buf value;
} acc_update;

struct em_acc_updates {
    acc_update *v;
    int n, cap;
};

em_shared *em__shared_new(void)
{
    em_shared *s = em__calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return s;
}

static void accdef_free(accdef *a)
{
    em__free(a->name);
    em__free(a->merge_arg);
    em_buf_free(&a->zero);
    em_buf_free(&a->value);
    em__free(a);
}

void em__shared_free(em_shared *s)
{
    if (!s) return;
    while (s->bcasts) {
        bcast *b = s->bcasts;
        s->bcasts = b->next;
        em__free(b->data);
        em__free(b);
    }
    while (s->accs) {
        accdef *a = s->accs;
        s->accs = a->next;
        accdef_free(a);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    em__free(s);
}

/* ---- broadcast ------------------------------------------------------------------------------- */

static bcast *bcast_find(em_shared *s, uint64_t id)
{
    for (bcast *b = s->bcasts; b; b = b->next)
        if (b->id == id) return b;
    return NULL;
}

int em__shared_broadcast_put(em_shared *s, uint64_t id, const void *data, size_t len)
{
    bcast *b = em__calloc(1, sizeof *b);
    uint8_t *copy = em__malloc(len ? len : 1);
    if (!b || !copy) {
        em__free(b);
        em__free(copy);
        return em__set_error(EM_ENOMEM, "out of memory storing broadcast %llu (%zu bytes)",
                             (unsigned long long)id, len);
    }
    if (len) memcpy(copy, data, len);
    b->id = id;
    b->data = copy;
    b->len = len;
    pthread_mutex_lock(&s->mu);
    b->next = s->bcasts;
    s->bcasts = b;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void em__shared_broadcast_remove(em_shared *s, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    for (bcast **pp = &s->bcasts; *pp; pp = &(*pp)->next) {
        bcast *b = *pp;
        if (b->id == id && !b->fetching) {
            *pp = b->next;
            em__free(b->data);
            em__free(b);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

void em__shared_set_fetch(em_shared *s, int (*fetch)(void *arg, uint64_t id, em_buf *out),
                          void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->fetch = fetch;
    s->fetch_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

int em__shared_broadcast_get(em_shared *s, uint64_t id, const void **data, size_t *len)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        bcast *b = bcast_find(s, id);
        if (b && !b->fetching) {
            *data = b->data;
            *len = b->len;
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        if (!b) break;
        pthread_cond_wait(&s->cv, &s->mu); /* another task is fetching it */
    }
    if (!s->fetch) {
        pthread_mutex_unlock(&s->mu);
        return em__set_error(EM_ENOENT,
                             "broadcast %llu does not exist (destroyed, or never "
                             "created by this application)",
                             (unsigned long long)id);
    }
    bcast *b = em__calloc(1, sizeof *b);
    if (!b) {
        pthread_mutex_unlock(&s->mu);
        return em__set_error(EM_ENOMEM, "out of memory fetching broadcast %llu",
                             (unsigned long long)id);
    }
    b->id = id;
    b->fetching = true;
    b->next = s->bcasts;
    s->bcasts = b;
    int (*fetch)(void *, uint64_t, em_buf *) = s->fetch;
    void *arg = s->fetch_arg;
    pthread_mutex_unlock(&s->mu);

    em_buf got = EM_BUF_INIT;
    int rc = fetch(arg, id, &got);

    pthread_mutex_lock(&s->mu);
    if (rc) {
        for (bcast **pp = &s->bcasts; *pp; pp = &(*pp)->next)
            if (*pp == b) {
                *pp = b->next;
                break;
            }
        em__free(b);
        em_buf_free(&got);
    } else {
        b->data = got.data ? got.data : em__malloc(1);
        b->len = got.len;
        b->fetching = false;
        *data = b->data;
        *len = b->len;
        if (!b->data) rc = em__set_error(EM_ENOMEM, "out of memory");
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int em__shared_broadcast_chunk(em_shared *s, uint64_t id, uint32_t chunk, size_t chunk_size,
                               em_buf *out, uint32_t *num_chunks)
{
    pthread_mutex_lock(&s->mu);
    bcast *b = bcast_find(s, id);
    int rc = 0;
    if (!b || b->fetching) {
        rc = em__set_error(EM_ENOENT, "broadcast %llu does not exist on the driver",
                           (unsigned long long)id);
    } else {
        size_t n = b->len ? (b->len + chunk_size - 1) / chunk_size : 1;
        *num_chunks = (uint32_t)n;
        if (chunk >= n) {
            rc = em__set_error(EM_ERANGE, "broadcast %llu has %zu chunks, not %u",
                               (unsigned long long)id, n, chunk + 1);
        } else {
            size_t off = (size_t)chunk * chunk_size;
            size_t take = EM_MIN(chunk_size, b->len - off);
            rc = em_buf_append(out, b->data + off, take);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- accumulator definitions ----------------------------------------------------------------- */

static accdef *acc_find(em_shared *s, uint64_t id)
{
    for (accdef *a = s->accs; a; a = a->next)
        if (a->id == id) return a;
    return NULL;
}

int em__shared_acc_define(em_shared *s, uint64_t id, int kind, const char *name,
                          void (*merge)(void), const void *merge_arg, size_t merge_arg_len,
                          const void *zero, size_t zero_len)
{
    accdef *a = em__calloc(1, sizeof *a);
    if (!a) return em__set_error(EM_ENOMEM, "out of memory defining an accumulator");
    a->id = id;
    a->kind = kind;
    a->name = em__strdup(name ? name : "");
    a->merge = (em_reduce_fn)merge;
    int rc = a->name ? 0 : EM_ENOMEM;
    if (!rc && merge_arg_len) {
        a->merge_arg = em__memdup(merge_arg, merge_arg_len);
        a->merge_arg_len = merge_arg_len;
        if (!a->merge_arg) rc = EM_ENOMEM;
    }
    if (!rc && kind == EM_ACC_VALUE) {
        rc = em_buf_append(&a->zero, zero, zero_len);
        if (!rc) rc = em_buf_append(&a->value, zero, zero_len);
    }
    if (rc) {
        accdef_free(a);
        return em__set_error(EM_ENOMEM, "out of memory defining an accumulator");
    }
    pthread_mutex_lock(&s->mu);
    if (acc_find(s, id)) {
        pthread_mutex_unlock(&s->mu);
        accdef_free(a);
        return 0;
    }
    a->next = s->accs;
    s->accs = a;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int em__shared_acc_encode_defs(em_shared *s, em_buf *out)
{
    size_t start = out->len;
    em_wire_writer w = em_wire_writer_on(out);
    pthread_mutex_lock(&s->mu);
    uint64_t n = 0;
    for (accdef *a = s->accs; a; a = a->next) n++;
    em_wire_put_uvar(&w, n);
    for (accdef *a = s->accs; a; a = a->next) {
        em_wire_put_u64(&w, a->id);
        em_wire_put_u8(&w, (uint8_t)a->kind);
        em_wire_put_str(&w, a->name);
        if (a->kind == EM_ACC_VALUE) {
            em_wire_put_fn(&w, (void (*)(void))a->merge);
            em_wire_put_bytes(&w, a->merge_arg, a->merge_arg_len);
            em_wire_put_bytes(&w, a->zero.data, a->zero.len);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (w.err) {
        out->len = start;
        return w.err;
    }
    return 0;
}

int em__shared_acc_decode_defs(em_shared *s, const uint8_t *p, size_t len)
{
    em_wire_reader r;
    em_wire_reader_init(&r, p, len, "accumulator definitions");
    size_t n = em_wire_get_count(&r, 10, "accumulators");
    int rc = 0;
    for (size_t i = 0; i < n && !rc && !r.err; i++) {
        uint64_t id = em_wire_get_u64(&r);
        int kind = em_wire_get_u8(&r);
        char *name = NULL;
        if (em_wire_get_str(&r, &name)) break;
        void (*merge)(void) = NULL;
        const uint8_t *arg = NULL, *zero = NULL;
        size_t arg_len = 0, zero_len = 0;
        if (kind == EM_ACC_VALUE) {
            if (em_wire_get_fn(&r, &merge) == 0) {
                arg = em_wire_get_bytes(&r, &arg_len);
                zero = em_wire_get_bytes(&r, &zero_len);
            }
            if (!r.err && (!merge || em__value_skip(zero, zero + zero_len) != zero_len))
                em_wire_fail(&r, "accumulator %llu: no merge function or a malformed zero",
                             (unsigned long long)id);
        } else if (kind != EM_ACC_INT64 && kind != EM_ACC_FLOAT64) {
            em_wire_fail(&r, "accumulator %llu: unknown kind %d", (unsigned long long)id, kind);
        }
        if (!r.err)
            rc = em__shared_acc_define(s, id, kind, name, merge, arg, arg_len, zero, zero_len);
        em__free(name);
    }
    if (r.err) return r.err;
    if (rc) return rc;
    return em_wire_expect_end(&r);
}

/* ---- merging ----------------------------------------------------------------------------- */

/* a := merge(a, b) for a value accumulator. t may be a scratch task (driver). */
static int merge_value(const accdef *d, em_task *t, em_buf *a, const uint8_t *b, size_t blen)
{
    em_records *out = em_records_new();
    if (!out) return em__set_error(EM_ENOMEM, "out of memory merging accumulator values");
    em_value va = {a->data, a->len, NULL}, vb = {b, blen, NULL};
    int rc = d->merge(t, va, vb, out, d->merge_arg);
    if (!rc) rc = em_records_error(out);
    if (!rc && em_records_count(out) != 1)
        rc = em__set_error(EM_EUSER,
                           "the merge function of accumulator '%s' appended %zu values (it "
                           "must append exactly one)",
                           d->name, em_records_count(out));
    if (!rc) {
        em_value v = em_records_at(out, 0);
        em_buf_reset(a);
        rc = em_buf_append(a, v.data, v.len);
    } else if (t->failed) {
        rc = em__set_error(rc, "accumulator '%s': %s", d->name, t->errmsg);
    }
    em_records_free(out);
    return rc;
}

int em__shared_acc_merge(em_shared *s, const uint8_t *p, size_t len)
{
    em_wire_reader r;
    em_wire_reader_init(&r, p, len, "accumulator updates");
    size_t n = em_wire_get_count(&r, 9, "updates");
    int rc = 0;
    em_task scratch = {0};
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n && !rc && !r.err; i++) {
        uint64_t id = em_wire_get_u64(&r);
        int kind = em_wire_get_u8(&r);
        accdef *d = r.err ? NULL : acc_find(s, id);
        if (!r.err && (!d || d->kind != kind)) {
            rc = em__set_error(EM_ENOENT, "update of unknown accumulator %llu",
                               (unsigned long long)id);
            break;
        }
        if (kind == EM_ACC_INT64) {
            int64_t v = em_wire_get_ivar(&r);
            if (!r.err) d->ival = (int64_t)((uint64_t)d->ival + (uint64_t)v);
        } else if (kind == EM_ACC_FLOAT64) {
            double v = em_wire_get_f64(&r);
            if (!r.err) d->fval += v;
        } else {
            size_t vlen = 0;
            const uint8_t *v = em_wire_get_bytes(&r, &vlen);
            if (!r.err && em__value_skip(v, v + vlen) != vlen)
                em_wire_fail(&r, "accumulator %llu: malformed value", (unsigned long long)id);
            if (!r.err) rc = merge_value(d, &scratch, &d->value, v, vlen);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (r.err) return r.err;
    if (rc) return rc;
    return em_wire_expect_end(&r);
}

int64_t em__shared_acc_int64(em_shared *s, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    accdef *d = acc_find(s, id);
    int64_t v = d ? d->ival : 0;
    pthread_mutex_unlock(&s->mu);
    return v;
}

double em__shared_acc_float64(em_shared *s, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    accdef *d = acc_find(s, id);
    double v = d ? d->fval : 0.0;
    pthread_mutex_unlock(&s->mu);
    return v;
}

int em__shared_acc_value(em_shared *s, uint64_t id, em_records *out)
{
    pthread_mutex_lock(&s->mu);
    accdef *d = acc_find(s, id);
    int rc = EM_ENOENT;
    if (d && d->kind == EM_ACC_VALUE) {
        em__put_raw(out, d->value.data, d->value.len);
        rc = em_records_error(out);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- a task's updates -------------------------------------------------------------------- */

/* The task's entry for id, created from its definition. Sets *def. */
static int task_entry(em_task *t, uint64_t id, int kind, acc_update **out, accdef **def)
{
    if (!t->shared) return em_task_fail(t, "accumulators are not available in this task");
    em_shared *s = t->shared;
    pthread_mutex_lock(&s->mu);
    accdef *d = acc_find(s, id);
    pthread_mutex_unlock(&s->mu);
    if (!d) return em_task_fail(t, "accumulator %llu does not exist", (unsigned long long)id);
    if (d->kind != kind)
        return em_task_fail(t, "accumulator '%s' (%llu) is of another kind", d->name,
                            (unsigned long long)id);
    *def = d; /* definitions are never removed while tasks run */
    em_acc_updates *u = t->acc;
    if (!u && !(u = t->acc = em__calloc(1, sizeof *u))) return EM_ENOMEM;
    for (int i = 0; i < u->n; i++)
        if (u->v[i].id == id) {
            *out = &u->v[i];
            return 0;
        }
    if (u->n == u->cap) {
        int cap = u->cap ? u->cap * 2 : 4;
        acc_update *v = em__realloc(u->v, (size_t)cap * sizeof *v);
        if (!v) return EM_ENOMEM;
        u->v = v;
        u->cap = cap;
    }
    acc_update *e = &u->v[u->n];
    memset(e, 0, sizeof *e);
    e->id = id;
    e->kind = kind;
    if (kind == EM_ACC_VALUE && em_buf_append(&e->value, d->zero.data, d->zero.len))
        return EM_ENOMEM;
    u->n++;
    *out = e;
    return 0;
}

int em_accumulator_add_int64(em_task *t, uint64_t id, int64_t v)
{
    acc_update *e;
    accdef *d;
    int rc = task_entry(t, id, EM_ACC_INT64, &e, &d);
    if (rc) return rc;
    e->ival = (int64_t)((uint64_t)e->ival + (uint64_t)v);
    return 0;
}

int em_accumulator_add_float64(em_task *t, uint64_t id, double v)
{
    acc_update *e;
    accdef *d;
    int rc = task_entry(t, id, EM_ACC_FLOAT64, &e, &d);
    if (rc) return rc;
    e->fval += v;
    return 0;
}

int em_accumulator_add(em_task *t, uint64_t id, em_value v)
{
    acc_update *e;
    accdef *d;
    int rc = task_entry(t, id, EM_ACC_VALUE, &e, &d);
    if (rc) return rc;
    return merge_value(d, t, &e->value, v.data, v.len);
}

int em__acc_updates_take(em_task *t, em_buf *out)
{
    em_acc_updates *u = t->acc;
    if (!u) return 0;
    t->acc = NULL;
    size_t start = out->len;
    em_wire_writer w = em_wire_writer_on(out);
    em_wire_put_uvar(&w, (uint64_t)u->n);
    for (int i = 0; i < u->n; i++) {
        acc_update *e = &u->v[i];
        em_wire_put_u64(&w, e->id);
        em_wire_put_u8(&w, (uint8_t)e->kind);
        if (e->kind == EM_ACC_INT64)
            em_wire_put_ivar(&w, e->ival);
        else if (e->kind == EM_ACC_FLOAT64)
            em_wire_put_f64(&w, e->fval);
        else
            em_wire_put_bytes(&w, e->value.data, e->value.len);
        em_buf_free(&e->value);
    }
    em__free(u->v);
    em__free(u);
    if (w.err) out->len = start;
    return w.err;
}
