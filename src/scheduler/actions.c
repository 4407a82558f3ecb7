/* Actions: each runs a job whose result function reduces one partition to bytes on a task
 * thread, and whose handler combines the partitions' bytes on the driver. Results are encoded
 * records (values taken from the partition are copied with em_put_value, so spilled lists are
 * materialised), int64 counts, or nothing (foreach, save).
 *
 * A result function may run in an executor process: what it needs travels in the job's
 * argument blob (stage_codec.h), never by pointer. Each blob's fields are listed above its
 * result function; user functions inside are function references and the user's argument is
 * copied in (and copied out again, aligned, by the task that uses it).
 *
 * Driver threads call these; the result functions run on task threads.
 */
#include "rdd/io.h"
#include "rdd/rdd.h"
#include "rdd/stage_codec.h"
#include "record/record_int.h"
#include "scheduler/scheduler.h"

#include <stdlib.h>
#include <string.h>

/* ---- per-partition byte results collected in partition order -------------------------------- */

typedef struct part_results {
    em_buf *bufs; /* indexed by partition */
    int n;
} part_results;

static int store_handler(void *arg, int partition, const uint8_t *data, size_t len)
{
    part_results *pr = arg;
    em_buf_free(&pr->bufs[partition]);
    return em_buf_append(&pr->bufs[partition], data, len);
}

static void part_results_free(part_results *pr)
{
    for (int i = 0; i < pr->n; i++) em_buf_free(&pr->bufs[i]);
    em__free(pr->bufs);
}

/* Runs fn over the given partitions (NULL: all) with the argument blob arg (NULL: none) and
 * keeps each partition's bytes. */
static int run_collecting(em_rdd *r, const int *parts, int nparts, em_result_fn fn,
                          const em_buf *arg, const char *site, part_results *pr)
{
    pr->n = r->num_partitions;
    pr->bufs = em__calloc((size_t)(pr->n ? pr->n : 1), sizeof *pr->bufs);
    if (!pr->bufs) return em__set_error(EM_ENOMEM, "out of memory for results");
    em_job_spec job = {.rdd = r,
                       .partitions = parts,
                       .num_partitions = nparts,
                       .fn = fn,
                       .fn_arg = arg ? arg->data : NULL,
                       .fn_arg_len = arg ? arg->len : 0,
                       .handler = store_handler,
                       .handler_arg = pr,
                       .call_site = site};
    int rc = r->ctx->run_job(r->ctx, &job);
    if (rc) part_results_free(pr);
    return rc;
}

/* Concatenates the partitions' encoded records into a new em_records. */
static int concat_records(part_results *pr, em_records **out)
{
    em_buf all = EM_BUF_INIT;
    int rc = 0;
    for (int i = 0; i < pr->n && !rc; i++)
        rc = em_buf_append(&all, pr->bufs[i].data, pr->bufs[i].len);
    if (!rc) rc = em_records_from_data(all.data ? (const void *)all.data : "", all.len, out);
    em_buf_free(&all);
    part_results_free(pr);
    return rc;
}

/* A NULL RDD means its definition failed: keep that message (the chain is checked once, at
 * the action), or say so when there is none. */
static int start_action(em_rdd *r, const char *name)
{
    if (!r) {
        if (!em_errmsg()[0]) em__set_error(EM_EINVAL, "%s: NULL RDD", name);
        return EM_EINVAL;
    }
    em__clear_error();
    return 0;
}

/* Finishes an argument blob begun with em__job_arg_begin; on failure frees it. */
static int end_arg(em_buf *b, em_wire_writer *w)
{
    int rc = em__job_arg_end(b, w);
    if (rc) em_buf_free(b);
    return rc;
}

/* Copies a user argument out of a blob into its own (aligned) allocation; *copy NULL if empty. */
static int copy_user_arg(em_wire_reader *rd, void **copy)
{
    size_t len;
    const uint8_t *p = em_wire_get_bytes(rd, &len);
    *copy = NULL;
    if (rd->err || !len) return rd->err;
    *copy = em__memdup(p, len);
    return *copy ? 0 : em__set_error(EM_ENOMEM, "out of memory copying a %zu-byte argument", len);
}

/* One encoded value of a blob. */
static int get_value(em_wire_reader *rd, em_value *v, const char *what)
{
    size_t len, vlen;
    const uint8_t *p = em_wire_get_bytes(rd, &len);
    if (rd->err) return rd->err;
    if (!len || em_value_parse(p, len, &vlen) || vlen != len)
        return em_wire_fail(rd, "%s is not one well-formed value", what);
    *v = (em_value){p, len, NULL};
    return 0;
}

/* ---- collect, take ------------------------------------------------------------------------ */

/* Argument: limit uvar (UINT64_MAX: all). */
static int take_arg(size_t limit, em_buf *b)
{
    em_wire_writer w = em__job_arg_begin(b);
    em_wire_put_uvar(&w, limit == SIZE_MAX ? UINT64_MAX : (uint64_t)limit);
    return end_arg(b, &w);
}

static int take_partition(em_task *t, em_iter *in, em_buf *result, const void *arg)
{
    (void)t;
    em_wire_reader rd;
    em__job_arg_reader(arg, &rd, "take argument");
    uint64_t limit = em_wire_get_uvar(&rd);
    if (em_wire_expect_end(&rd)) return rd.err;
    em_records *recs = em_records_new();
    if (!recs) return EM_ENOMEM;
    em_value v;
    int rc = 0;
    size_t n = 0;
    while (n < limit && (rc = in->next(in, &v)) == EM_ROW) {
        em_put_value(recs, v);
        n++;
        if ((rc = em_records_error(recs))) break;
        rc = 0;
    }
    if (rc >= 0) {
        size_t len;
        const uint8_t *d = em_records_data(recs, &len);
        rc = em_buf_append(result, d, len);
    }
    em_records_free(recs);
    return rc;
}

int em_rdd_collect(em_rdd *r, em_records **out)
{
    *out = NULL;
    int rc = start_action(r, "collect");
    if (rc) return rc;
    em_buf arg = EM_BUF_INIT;
    if ((rc = take_arg(SIZE_MAX, &arg))) return rc;
    part_results pr;
    rc = run_collecting(r, NULL, 0, take_partition, &arg, "collect", &pr);
    em_buf_free(&arg);
    if (rc) return rc;
    return concat_records(&pr, out);
}

int em_rdd_take(em_rdd *r, size_t n, em_records **out)
{
    *out = NULL;
    int rc = start_action(r, "take");
    if (rc) return rc;
    em_records *acc = em_records_new();
    int *parts = em__calloc((size_t)(r->num_partitions ? r->num_partitions : 1), sizeof *parts);
    if (!acc || !parts) {
        em_records_free(acc);
        em__free(parts);
        return em__set_error(EM_ENOMEM, "take: out of memory");
    }
    /* Scan 1 partition, then 4x more each round (Spark's limitScaleUpFactor), until n found. */
    int scanned = 0, batch = 1;
    while (em_records_count(acc) < n && scanned < r->num_partitions) {
        int k = EM_MIN(batch, r->num_partitions - scanned);
        for (int i = 0; i < k; i++) parts[i] = scanned + i;
        em_buf arg = EM_BUF_INIT;
        if ((rc = take_arg(n - em_records_count(acc), &arg))) break;
        part_results pr;
        rc = run_collecting(r, parts, k, take_partition, &arg, "take", &pr);
        em_buf_free(&arg);
        if (rc) break;
        for (int i = 0; i < k; i++) {
            em_buf *b = &pr.bufs[scanned + i];
            size_t pos = 0;
            while (pos < b->len && em_records_count(acc) < n) {
                size_t vlen;
                if (em_value_parse(b->data + pos, b->len - pos, &vlen)) break;
                em_put_value(acc, (em_value){b->data + pos, vlen, NULL});
                pos += vlen;
            }
        }
        part_results_free(&pr);
        scanned += k;
        batch *= 4;
    }
    em__free(parts);
    if (!rc) rc = em_records_error(acc);
    if (rc) {
        em_records_free(acc);
        return rc;
    }
    *out = acc;
    return 0;
}

int em_rdd_first(em_rdd *r, em_records **out)
{
    int rc = em_rdd_take(r, 1, out);
    if (rc) return rc;
    if (em_records_count(*out) == 0) {
        em_records_free(*out);
        *out = NULL;
        return em__set_error(EM_EEMPTY, "first: the RDD is empty");
    }
    return 0;
}

/* ---- count ------------------------------------------------------------------------------- */

static int sum_handler(void *arg, int partition, const uint8_t *data, size_t len)
{
    (void)partition;
    int64_t n;
    if (len != sizeof n) return em__set_error(EM_EINTERNAL, "bad count result");
    memcpy(&n, data, sizeof n);
    *(int64_t *)arg += n;
    return 0;
}

int em_rdd_count(em_rdd *r, int64_t *out)
{
    *out = 0;
    int rc = start_action(r, "count");
    if (rc) return rc;
    int64_t total = 0;
    em_job_spec job = {.rdd = r,
                       .fn = em__count_partition,
                       .handler = sum_handler,
                       .handler_arg = &total,
                       .call_site = "count"};
    rc = r->ctx->run_job(r->ctx, &job);
    if (!rc) *out = total;
    return rc;
}

/* ---- takeOrdered, top -------------------------------------------------------------------- */

static _Thread_local bool tl_descending;

static int cmp_values(const void *a, const void *b)
{
    int c = em_value_cmp(*(const em_value *)a, *(const em_value *)b);
    return tl_descending ? -c : c;
}

/* Sorts the records of recs and keeps the first n, into a new em_records. */
static int keep_first_sorted(em_records *recs, size_t n, bool descending, em_records **out)
{
    size_t count = em_records_count(recs);
    em_value *v = em__calloc(count ? count : 1, sizeof *v);
    em_records *res = em_records_new();
    if (!v || !res) {
        em__free(v);
        em_records_free(res);
        return EM_ENOMEM;
    }
    for (size_t i = 0; i < count; i++) v[i] = em_records_at(recs, i);
    tl_descending = descending;
    qsort(v, count, sizeof *v, cmp_values);
    for (size_t i = 0; i < count && i < n; i++) em_put_value(res, v[i]);
    em__free(v);
    int rc = em_records_error(res);
    if (rc) {
        em_records_free(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* Argument: n uvar (UINT64_MAX: all), descending bool. */
static int ordered_partition(em_task *t, em_iter *in, em_buf *result, const void *arg)
{
    (void)t;
    em_wire_reader rd;
    em__job_arg_reader(arg, &rd, "takeOrdered argument");
    uint64_t n64 = em_wire_get_uvar(&rd);
    bool descending = em_wire_get_bool(&rd);
    if (em_wire_expect_end(&rd)) return rd.err;
    size_t n = n64 >= SIZE_MAX ? SIZE_MAX : (size_t)n64;
    em_records *recs = em_records_new();
    if (!recs) return EM_ENOMEM;
    em_value v;
    int rc;
    /* Bound memory: past 2n + 1024 records keep the best n (no bound when n is so large that
     * 2n + 1024 would overflow: takeOrdered(SIZE_MAX) means all, sorted). */
    size_t bound = n <= (SIZE_MAX - 1024) / 2 ? 2 * n + 1024 : SIZE_MAX;
    while ((rc = in->next(in, &v)) == EM_ROW) {
        em_put_value(recs, v);
        if (em_records_count(recs) >= bound) {
            em_records *kept;
            if ((rc = keep_first_sorted(recs, n, descending, &kept))) break;
            em_records_free(recs);
            recs = kept;
        }
    }
    if (rc >= 0) {
        em_records *kept;
        rc = keep_first_sorted(recs, n, descending, &kept);
        if (!rc) {
            size_t len;
            const uint8_t *d = em_records_data(kept, &len);
            rc = em_buf_append(result, d, len);
            em_records_free(kept);
        }
    }
    em_records_free(recs);
    return rc;
}

static int ordered_action(em_rdd *r, size_t n, bool descending, const char *name, em_records **out)
{
    *out = NULL;
    int rc = start_action(r, name);
    if (rc) return rc;
    em_buf arg = EM_BUF_INIT;
    em_wire_writer w = em__job_arg_begin(&arg);
    em_wire_put_uvar(&w, n == SIZE_MAX ? UINT64_MAX : (uint64_t)n);
    em_wire_put_bool(&w, descending);
    if ((rc = end_arg(&arg, &w))) return rc;
    part_results pr;
    rc = run_collecting(r, NULL, 0, ordered_partition, &arg, name, &pr);
    em_buf_free(&arg);
    if (rc) return rc;
    em_records *all = NULL;
    if ((rc = concat_records(&pr, &all))) return rc;
    rc = keep_first_sorted(all, n, descending, out);
    em_records_free(all);
    return rc;
}

int em_rdd_take_ordered(em_rdd *r, size_t n, em_records **out)
{
    return ordered_action(r, n, false, "takeOrdered", out);
}

int em_rdd_top(em_rdd *r, size_t n, em_records **out)
{
    return ordered_action(r, n, true, "top", out);
}

/* ---- reduce, fold, aggregate --------------------------------------------------------------- */

static int call_fn(em_task *t, em_reduce_fn fn, const void *arg, em_value a, em_value b,
                   em_records *out, const char *what)
{
    em_records_clear(out);
    int rc = fn(t, a, b, out, arg);
    if (rc) {
        if (t && t->failed) return em__set_error(rc < 0 ? rc : EM_EUSER, "%s", t->errmsg);
        return em__set_error(rc < 0 ? rc : EM_EUSER, "%s function returned %d", what, rc);
    }
    if (em_records_error(out)) return em_records_error(out);
    if (em_records_count(out) != 1)
        return em__set_error(EM_EUSER, "%s function must emit exactly one value", what);
    return 0;
}

/* Folds values into acc (one record or none) with fn, swapping two buffers. */
typedef struct folder {
    em_records *acc, *tmp;
    bool has;
} folder;

static int fold_in(em_task *t, folder *f, em_reduce_fn fn, const void *arg, em_value v,
                   const char *what)
{
    if (!f->has) {
        em_records_clear(f->acc);
        em_put_value(f->acc, v);
        f->has = true;
        return em_records_error(f->acc);
    }
    int rc = call_fn(t, fn, arg, em_records_at(f->acc, 0), v, f->tmp, what);
    if (rc) return rc;
    em_records *x = f->acc;
    f->acc = f->tmp;
    f->tmp = x;
    return 0;
}

/* Argument: seq fn, has_zero bool, [zero value bytes], user arg bytes. (comb runs on the
 * driver only.) */
static int fold_partition(em_task *t, em_iter *in, em_buf *result, const void *arg)
{
    em_wire_reader rd;
    em__job_arg_reader(arg, &rd, "reduce argument");
    void (*fn)(void) = NULL;
    em_value zero = {NULL, 0, NULL};
    void *user = NULL;
    em_wire_get_fn(&rd, &fn);
    bool has_zero = em_wire_get_bool(&rd);
    if (has_zero) get_value(&rd, &zero, "the zero value");
    copy_user_arg(&rd, &user);
    em_wire_expect_end(&rd);
    if (!rd.err && !fn) em_wire_fail(&rd, "no function");
    if (rd.err) {
        em__free(user);
        return rd.err;
    }
    em_reduce_fn seq = (em_reduce_fn)fn;
    folder f = {em_records_new(), em_records_new(), false};
    int rc = (f.acc && f.tmp) ? 0 : EM_ENOMEM;
    if (!rc && has_zero) rc = fold_in(t, &f, seq, user, zero, "fold");
    em_value v;
    while (!rc && (rc = in->next(in, &v)) == EM_ROW) rc = fold_in(t, &f, seq, user, v, "reduce");
    if (rc == EM_DONE && f.has) {
        size_t len;
        const uint8_t *d = em_records_data(f.acc, &len);
        rc = em_buf_append(result, d, len);
    }
    em_records_free(f.acc);
    em_records_free(f.tmp);
    em__free(user);
    return rc;
}

static int fold_action(em_rdd *r, const em_value *zero, em_reduce_fn seq, em_reduce_fn comb,
                       const void *arg, size_t arg_len, const char *name, em_records **out)
{
    *out = NULL;
    int rc = start_action(r, name);
    if (rc) return rc;
    if (!seq || !comb) return em__set_error(EM_EINVAL, "%s: NULL function", name);
    if (zero && em_value_type(*zero) == EM_TYPE_INVALID)
        return em__set_error(EM_EINVAL, "%s: the zero value is not a well-formed value", name);
    if (!arg) arg_len = 0;
    em_buf blob = EM_BUF_INIT, zero_bytes = EM_BUF_INIT;
    if (zero && (rc = em__value_encode_to(&zero_bytes, *zero))) return rc;
    em_wire_writer w = em__job_arg_begin(&blob);
    em_wire_put_fn(&w, (void (*)(void))seq);
    em_wire_put_bool(&w, zero != NULL);
    if (zero) em_wire_put_bytes(&w, zero_bytes.data, zero_bytes.len);
    em_wire_put_bytes(&w, arg, arg_len);
    em_buf_free(&zero_bytes);
    if ((rc = end_arg(&blob, &w))) return rc;
    part_results pr;
    rc = run_collecting(r, NULL, 0, fold_partition, &blob, name, &pr);
    em_buf_free(&blob);
    if (rc) return rc;
    /* Merge the partitions' results on the driver, in partition order. The user's function
     * gets a driver-side task (partition -1) so em_task_fail and friends work there too. */
    em_task drv = {.task_id = -1,
                   .stage_id = -1,
                   .partition = -1,
                   .conf = r->ctx->conf,
                   .memory = r->ctx->memory,
                   .local_dir = r->ctx->local_dir};
    folder f = {em_records_new(), em_records_new(), false};
    rc = (f.acc && f.tmp) ? 0 : EM_ENOMEM;
    if (!rc && zero) rc = fold_in(&drv, &f, comb, arg, *zero, name);
    for (int i = 0; i < pr.n && !rc; i++) {
        if (!pr.bufs[i].len) continue;
        em_value v = {pr.bufs[i].data, pr.bufs[i].len, NULL};
        rc = fold_in(&drv, &f, comb, arg, v, name);
    }
    part_results_free(&pr);
    em_records_free(f.tmp);
    if (!rc && !f.has) rc = em__set_error(EM_EEMPTY, "%s: the RDD is empty", name);
    if (rc) {
        em_records_free(f.acc);
        return rc;
    }
    *out = f.acc;
    return 0;
}

int em_rdd_reduce(em_rdd *r, em_reduce_fn fn, const void *arg, size_t arg_len, em_records **out)
{
    return fold_action(r, NULL, fn, fn, arg, arg_len, "reduce", out);
}

int em_rdd_fold(em_rdd *r, em_value zero, em_reduce_fn fn, const void *arg, size_t arg_len,
                em_records **out)
{
    return fold_action(r, &zero, fn, fn, arg, arg_len, "fold", out);
}

int em_rdd_aggregate(em_rdd *r, em_value zero, em_reduce_fn seq_op, em_reduce_fn comb_op,
                     const void *arg, size_t arg_len, em_records **out)
{
    return fold_action(r, &zero, seq_op, comb_op, arg, arg_len, "aggregate", out);
}

/* ---- countByKey, countByValue, lookup -------------------------------------------------------- */

static int key_one(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)arg;
    int rc = em__require_pair(t, in, "countByKey");
    if (rc) return rc;
    em_put_tuple_begin(out);
    em_put_value(out, em_value_key(in));
    em_put_int64(out, 1);
    em_put_end(out);
    return 0;
}

static int value_one(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    em_put_tuple_begin(out);
    em_put_value(out, in);
    em_put_int64(out, 1);
    em_put_end(out);
    return 0;
}

static int add_counts(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t;
    (void)arg;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

static int count_by(em_rdd *r, em_map_fn to_pair, const char *name, em_records **out)
{
    *out = NULL;
    int rc = start_action(r, name);
    if (rc) return rc;
    em_rdd *counts = em_rdd_reduce_by_key(em_rdd_map(r, to_pair, NULL, 0), add_counts, NULL, 0, 0);
    if (!counts) return EM_ENOMEM;
    em_records *all = NULL;
    if ((rc = em_rdd_collect(counts, &all))) return rc;
    rc = keep_first_sorted(all, SIZE_MAX, false, out);
    em_records_free(all);
    return rc;
}

int em_rdd_count_by_key(em_rdd *r, em_records **out)
{
    return count_by(r, key_one, "countByKey", out);
}

int em_rdd_count_by_value(em_rdd *r, em_records **out)
{
    return count_by(r, value_one, "countByValue", out);
}

/* Argument: the key (value bytes). */
static int lookup_partition(em_task *t, em_iter *in, em_buf *result, const void *arg)
{
    em_wire_reader rd;
    em__job_arg_reader(arg, &rd, "lookup argument");
    em_value key;
    get_value(&rd, &key, "the key");
    if (em_wire_expect_end(&rd)) return rd.err;
    em_records *recs = em_records_new();
    if (!recs) return EM_ENOMEM;
    em_value v;
    int rc;
    while ((rc = in->next(in, &v)) == EM_ROW) {
        if ((rc = em__require_pair(t, v, "lookup"))) break;
        if (em_value_eq(em_value_key(v), key)) em_put_value(recs, em_value_val(v));
    }
    if (rc >= 0) {
        size_t len;
        const uint8_t *d = em_records_data(recs, &len);
        rc = em_records_error(recs);
        if (!rc) rc = em_buf_append(result, d, len);
    }
    em_records_free(recs);
    return rc;
}

int em_rdd_lookup(em_rdd *r, em_value key, em_records **out)
{
    *out = NULL;
    int rc = start_action(r, "lookup");
    if (rc) return rc;
    if (em_value_type(key) == EM_TYPE_INVALID)
        return em__set_error(EM_EINVAL, "lookup: the key is not a well-formed value");
    em_buf arg = EM_BUF_INIT;
    em_buf keybuf = EM_BUF_INIT;
    rc = em__value_encode_to(&keybuf, key); /* a key read from a spilled list: materialised */
    em_wire_writer w = em__job_arg_begin(&arg);
    em_wire_put_bytes(&w, keybuf.data, keybuf.len);
    em_buf_free(&keybuf);
    if (rc || (rc = end_arg(&arg, &w))) {
        em_buf_free(&arg);
        return rc;
    }
    int part = 0;
    bool one = r->partitioner && r->partitioner->num_partitions == r->num_partitions;
    if (one) part = em__partition_of(r->partitioner, key);
    part_results pr;
    rc = run_collecting(r, one ? &part : NULL, one ? 1 : 0, lookup_partition, &arg, "lookup", &pr);
    em_buf_free(&arg);
    if (rc) return rc;
    return concat_records(&pr, out);
}

/* ---- foreach, foreachPartition -------------------------------------------------------------- */

/* Argument: partition bool (foreachPartition), fn, user arg bytes. */
static int each_partition(em_task *t, em_iter *in, em_buf *result, const void *arg)
{
    (void)result;
    em_wire_reader rd;
    em__job_arg_reader(arg, &rd, "foreach argument");
    bool whole = em_wire_get_bool(&rd);
    void (*fn)(void) = NULL;
    void *user = NULL;
    em_wire_get_fn(&rd, &fn);
    copy_user_arg(&rd, &user);
    em_wire_expect_end(&rd);
    if (!rd.err && !fn) em_wire_fail(&rd, "no function");
    if (rd.err) {
        em__free(user);
        return rd.err;
    }
    int rc;
    if (whole) {
        rc = ((em_each_partition_fn)fn)(t, in, user);
    } else {
        em_value v;
        while ((rc = in->next(in, &v)) == EM_ROW)
            if ((rc = ((em_each_fn)fn)(t, v, user))) break;
        if (rc == EM_DONE) rc = 0;
    }
    em__free(user);
    if (rc && t->failed) return em__set_error(rc < 0 ? rc : EM_EUSER, "%s", t->errmsg);
    if (rc > 0) rc = em__task_error(t, EM_EUSER, "foreach function returned %d", rc);
    return rc;
}

static int run_each(em_rdd *r, bool whole, void (*fn)(void), const void *arg, size_t arg_len,
                    const char *name)
{
    int rc = start_action(r, name);
    if (rc) return rc;
    if (!fn) return em__set_error(EM_EINVAL, "%s: NULL function", name);
    em_buf blob = EM_BUF_INIT;
    em_wire_writer w = em__job_arg_begin(&blob);
    em_wire_put_bool(&w, whole);
    em_wire_put_fn(&w, fn);
    em_wire_put_bytes(&w, arg, arg ? arg_len : 0);
    if ((rc = end_arg(&blob, &w))) return rc;
    em_job_spec job = {.rdd = r,
                       .fn = each_partition,
                       .fn_arg = blob.data,
                       .fn_arg_len = blob.len,
                       .call_site = name};
    rc = r->ctx->run_job(r->ctx, &job);
    em_buf_free(&blob);
    return rc;
}

int em_rdd_foreach(em_rdd *r, em_each_fn fn, const void *arg, size_t arg_len)
{
    return run_each(r, false, (void (*)(void))fn, arg, arg_len, "foreach");
}

int em_rdd_foreach_partition(em_rdd *r, em_each_partition_fn fn, const void *arg, size_t arg_len)
{
    return run_each(r, true, (void (*)(void))fn, arg, arg_len, "foreachPartition");
}

/* ---- saveAsTextFile, saveAsBinaryFile ------------------------------------------------------ */

/* Argument: staging directory (absolute path) str, binary bool. */
static int save_partition(em_task *t, em_iter *in, em_buf *result, const void *arg)
{
    (void)result;
    em_wire_reader rd;
    em__job_arg_reader(arg, &rd, "save argument");
    char *staging = NULL;
    em_wire_get_str(&rd, &staging);
    bool binary = em_wire_get_bool(&rd);
    em_wire_expect_end(&rd);
    if (!rd.err && !staging) em_wire_fail(&rd, "no staging directory");
    if (rd.err) {
        em__free(staging);
        return rd.err;
    }
    int rc = em_output_write_partition(staging, t->partition, t->attempt, in, t, binary);
    em__free(staging);
    return rc;
}

static int save_as(em_rdd *r, const char *path, bool binary, const char *name)
{
    int rc = start_action(r, name);
    if (rc) return rc;
    if (!path) return em__set_error(EM_EINVAL, "%s: NULL path", name);
    char tag[64];
    pthread_mutex_lock(&r->ctx->mu);
    int output_id = r->ctx->next_output_id++;
    pthread_mutex_unlock(&r->ctx->mu);
    snprintf(tag, sizeof tag, "%s-%d", r->ctx->app_id, output_id);
    char *staging = NULL;
    if ((rc = em_output_job_setup(path, tag, &staging))) return rc;
    em_buf blob = EM_BUF_INIT;
    em_wire_writer w = em__job_arg_begin(&blob);
    em_wire_put_str(&w, staging);
    em_wire_put_bool(&w, binary);
    rc = end_arg(&blob, &w);
    em_job_spec job = {.rdd = r,
                       .fn = save_partition,
                       .fn_arg = blob.data,
                       .fn_arg_len = blob.len,
                       .call_site = name};
    if (!rc) rc = r->ctx->run_job(r->ctx, &job);
    em_buf_free(&blob);
    if (!rc)
        rc = em_output_job_commit(staging, path);
    else
        em_output_job_abort(staging);
    em__free(staging);
    return rc;
}

int em_rdd_save_as_text_file(em_rdd *r, const char *path)
{
    return save_as(r, path, false, "saveAsTextFile");
}

int em_rdd_save_as_binary_file(em_rdd *r, const char *path)
{
    return save_as(r, path, true, "saveAsBinaryFile");
}
