/* Source RDDs: parallelize (a copy of driver records cut into slices of near-equal counts),
 * range (int64 arithmetic sequences computed per slice), and the file sources textFile,
 * wholeTextFiles and binaryRecords (planned on the driver by rdd/input*.c when the RDD is
 * defined, so a missing input is reported at once; read per split on task threads).
 */
#include "rdd/io.h"
#include "rdd/rdd.h"
#include "record/record_int.h"

#include <string.h>

/* ---- parallelize ---------------------------------------------------------------------------- */

typedef struct parallel_priv {
    uint8_t *data;
    size_t *slice_start; /* num_slices + 1 byte offsets */
} parallel_priv;

static int parallel_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    (void)t;
    parallel_priv *p = r->priv;
    *out = em__bytes_iter(p->data + p->slice_start[part],
                          p->slice_start[part + 1] - p->slice_start[part]);
    return *out ? 0 : EM_ENOMEM;
}

static void parallel_free(struct em_rdd *r)
{
    parallel_priv *p = r->priv;
    em__free(p->data);
    em__free(p->slice_start);
    em__free(p);
}

static const em_rdd_ops parallel_ops = {"parallelize", parallel_compute, parallel_free};

em_rdd *em_parallelize(em_context *ctx, const em_records *data, int num_slices)
{
    if (!ctx || !data) {
        em__set_error(EM_EINVAL, "parallelize: NULL %s", ctx ? "records" : "context");
        return NULL;
    }
    if (num_slices <= 0) num_slices = ctx->default_parallelism;
    size_t len, count = em_records_count(data);
    const uint8_t *bytes = em_records_data(data, &len);
    parallel_priv *p = em__calloc(1, sizeof *p);
    if (p) p->data = len ? em__memdup(bytes, len) : em__calloc(1, 1); /* bytes NULL if empty */
    if (p) p->slice_start = em__calloc((size_t)num_slices + 1, sizeof(size_t));
    if (!p || !p->data || !p->slice_start) goto oom;
    /* Walk the records once, cutting at record index i*count/num_slices. */
    size_t pos = 0, rec = 0;
    for (int s = 0; s <= num_slices; s++) {
        size_t want = (size_t)((unsigned __int128)count * (unsigned)s / (unsigned)num_slices);
        while (rec < want) {
            pos += em__value_skip_trusted(bytes + pos);
            rec++;
        }
        p->slice_start[s] = pos;
    }
    struct em_rdd *r = em__rdd_new(ctx, &parallel_ops, p, num_slices, NULL, 0);
    if (r) return r;
    parallel_free(&(struct em_rdd){.priv = p});
    return NULL;
oom:
    if (p) {
        em__free(p->data);
        em__free(p);
    }
    em__set_error(EM_ENOMEM, "parallelize: out of memory copying %zu bytes", len);
    return NULL;
}

/* ---- range ------------------------------------------------------------------------------- */

typedef struct range_priv {
    int64_t start, step;
    uint64_t count;
} range_priv;

typedef struct range_iter {
    em_iter base;
    int64_t next_value, step;
    uint64_t left;
    uint8_t enc[9];
} range_iter;

static int range_next(em_iter *it, em_value *out)
{
    range_iter *ri = (range_iter *)it;
    if (!ri->left) return EM_DONE;
    uint64_t u = (uint64_t)ri->next_value ^ 0x8000000000000000ull;
    ri->enc[0] = 0x04;
    for (int i = 0; i < 8; i++) ri->enc[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    *out = (em_value){ri->enc, 9, NULL};
    ri->next_value = (int64_t)((uint64_t)ri->next_value + (uint64_t)ri->step);
    ri->left--;
    return EM_ROW;
}

static void range_close(em_iter *it)
{
    em__free(it);
}

static int range_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    (void)t;
    range_priv *p = r->priv;
    uint64_t n = (uint64_t)r->num_partitions;
    uint64_t lo = (uint64_t)((unsigned __int128)p->count * (uint64_t)part / n);
    uint64_t hi = (uint64_t)((unsigned __int128)p->count * (uint64_t)(part + 1) / n);
    range_iter *ri = em__calloc(1, sizeof *ri);
    if (!ri) return EM_ENOMEM;
    ri->base = (em_iter){range_next, range_close};
    ri->next_value = (int64_t)((uint64_t)p->start + lo * (uint64_t)p->step);
    ri->step = p->step;
    ri->left = hi - lo;
    *out = &ri->base;
    return 0;
}

static void plain_free(struct em_rdd *r)
{
    em__free(r->priv);
}

static const em_rdd_ops range_ops = {"range", range_compute, plain_free};

em_rdd *em_range(em_context *ctx, int64_t start, int64_t end, int64_t step, int num_slices)
{
    if (!ctx) return NULL;
    if (step == 0) {
        em__set_error(EM_EINVAL, "range: step must not be 0");
        return NULL;
    }
    if (num_slices <= 0) num_slices = ctx->default_parallelism;
    range_priv *p = em__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->start = start;
    p->step = step;
    if (step > 0 && end > start)
        p->count = (uint64_t)(((__int128)end - start + step - 1) / step);
    else if (step < 0 && end < start)
        p->count = (uint64_t)(((__int128)start - end + (-(__int128)step) - 1) / (-(__int128)step));
    struct em_rdd *r = em__rdd_new(ctx, &range_ops, p, num_slices, NULL, 0);
    if (!r) em__free(p);
    return r;
}

/* ---- files ------------------------------------------------------------------------------- */

typedef struct file_priv {
    em_input_plan plan;
    enum em_input_kind kind;
    int record_length;
} file_priv;

static int file_compute(struct em_rdd *r, int part, em_task *t, em_iter **out)
{
    file_priv *p = r->priv;
    return em_input_open(&p->plan.splits[part], p->kind, p->record_length, t, out);
}

static void file_free(struct em_rdd *r)
{
    file_priv *p = r->priv;
    em_input_plan_free(&p->plan);
    em__free(p);
}

static const em_rdd_ops text_ops = {"textFile", file_compute, file_free};
static const em_rdd_ops whole_ops = {"wholeTextFiles", file_compute, file_free};
static const em_rdd_ops binary_ops = {"binaryRecords", file_compute, file_free};

static em_rdd *file_source(em_context *ctx, const em_rdd_ops *ops, const char *path,
                           enum em_input_kind kind, int min_partitions, int record_length)
{
    if (!ctx) return NULL;
    if (!path) {
        em__set_error(EM_EINVAL, "%s: NULL path", ops->name);
        return NULL;
    }
    file_priv *p = em__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->kind = kind;
    p->record_length = record_length;
    int64_t max_split = em_conf_get_bytes(ctx->conf, "ember.files.maxPartitionBytes");
    int rc = em_input_plan_make(path, kind, min_partitions, max_split, record_length, &p->plan);
    if (rc) {
        em__free(p);
        return NULL;
    }
    struct em_rdd *r = em__rdd_new(ctx, ops, p, p->plan.num_splits, NULL, 0);
    if (!r)
        file_free(&(struct em_rdd){.priv = p});
    else
        em_rdd_set_name(r, path);
    return r;
}

em_rdd *em_text_file(em_context *ctx, const char *path, int min_partitions)
{
    return file_source(ctx, &text_ops, path, EM_INPUT_LINES, min_partitions, 0);
}

em_rdd *em_whole_text_files(em_context *ctx, const char *path, int min_partitions)
{
    return file_source(ctx, &whole_ops, path, EM_INPUT_WHOLE_FILES, min_partitions, 0);
}

em_rdd *em_binary_records(em_context *ctx, const char *path, int record_length)
{
    if (record_length <= 0) {
        em__set_error(EM_EINVAL, "binaryRecords: record length must be > 0, not %d", record_length);
        return NULL;
    }
    return file_source(ctx, &binary_ops, path, EM_INPUT_FIXED_RECORDS, 0, record_length);
}
