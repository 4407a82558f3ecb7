/* Source RDDs: parallelize (a copy of driver records cut into slices of near-equal counts),
 * range (int64 arithmetic sequences computed per slice), and the file sources textFile,
 * wholeTextFiles and binaryRecords (planned on the driver by rdd/input*.c when the RDD is
 * defined, so a missing input is reported at once; read per split on task threads). A relative
 * input path is resolved against the driver's working directory at definition time, so the
 * plan's paths stay valid in executors running elsewhere.
 * Each kind encodes its parameters for executors (stage_codec.h): parallelize its data and
 * slice offsets (checked on decode to fall on record boundaries of well-formed records), range
 * its arithmetic, the file sources their plan.
 */
#include "rdd/io.h"
#include "rdd/rdd.h"
#include "rdd/stage_codec.h"
#include "record/record_int.h"

#include <limits.h>
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

static int parallel_encode(const struct em_rdd *r, struct em_graph_enc *g)
{
    const parallel_priv *p = r->priv;
    size_t n = (size_t)r->num_partitions;
    em_wire_put_bytes(&g->w, p->data, p->slice_start[n]);
    for (size_t i = 0; i <= n; i++) em_wire_put_uvar(&g->w, p->slice_start[i]);
    return g->w.err;
}

static int parallel_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    em_wire_reader *rd = &g->r;
    if (r->num_deps) return em_wire_fail(rd, "a source has no dependencies");
    size_t len, n = (size_t)r->num_partitions;
    const uint8_t *data = em_wire_get_bytes(rd, &len);
    if (rd->err) return rd->err;
    if (n + 1 > em_wire_left(rd))
        return em_wire_fail(rd, "%zu slice offsets cannot fit in %zu bytes", n + 1,
                            em_wire_left(rd));
    parallel_priv *p = em__calloc(1, sizeof *p);
    if (p) p->data = em__malloc(len ? len : 1);
    if (p) p->slice_start = em__calloc(n + 1, sizeof *p->slice_start);
    if (!p || !p->data || !p->slice_start) {
        rd->err = em__set_error(EM_ENOMEM, "out of memory decoding %zu parallelized bytes", len);
        goto fail;
    }
    if (len) memcpy(p->data, data, len);
    /* Every offset on a record boundary, every record well-formed (compute trusts them). */
    size_t pos = 0;
    for (size_t i = 0; i <= n; i++) {
        uint64_t off = em_wire_get_uvar(rd);
        if (rd->err) goto fail;
        if (off > len || off < pos || (i == 0 && off != 0) || (i == n && off != len)) {
            em_wire_fail(rd, "slice %zu offset %llu is out of order or range (%zu bytes)", i,
                         (unsigned long long)off, len);
            goto fail;
        }
        while (pos < off) {
            size_t k = em__value_skip(p->data + pos, p->data + len);
            if (!k) {
                em_wire_fail(rd, "parallelized data holds a malformed record at byte %zu", pos);
                goto fail;
            }
            pos += k;
        }
        if (pos != off) {
            em_wire_fail(rd, "slice %zu starts inside a record (byte %llu)", i,
                         (unsigned long long)off);
            goto fail;
        }
        p->slice_start[i] = pos;
    }
    r->priv = p;
    return 0;
fail:
    if (p) {
        em__free(p->data);
        em__free(p->slice_start);
        em__free(p);
    }
    return rd->err;
}

static const em_rdd_ops parallel_ops = {"parallelize", parallel_compute, parallel_free,
                                        parallel_encode, parallel_decode};

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

static int range_encode(const struct em_rdd *r, struct em_graph_enc *g)
{
    const range_priv *p = r->priv;
    em_wire_put_ivar(&g->w, p->start);
    em_wire_put_ivar(&g->w, p->step);
    em_wire_put_uvar(&g->w, p->count);
    return g->w.err;
}

static int range_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    em_wire_reader *rd = &g->r;
    if (r->num_deps) return em_wire_fail(rd, "a source has no dependencies");
    range_priv v = {0};
    v.start = em_wire_get_ivar(rd);
    v.step = em_wire_get_ivar(rd);
    v.count = em_wire_get_uvar(rd);
    if (!rd->err && v.step == 0) em_wire_fail(rd, "range step is 0");
    if (rd->err) return rd->err;
    range_priv *p = em__memdup(&v, sizeof v);
    if (!p) return rd->err = em__set_error(EM_ENOMEM, "out of memory");
    r->priv = p;
    return 0;
}

static const em_rdd_ops range_ops = {"range", range_compute, plain_free, range_encode,
                                     range_decode};

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

static int file_encode(const struct em_rdd *r, struct em_graph_enc *g)
{
    const file_priv *p = r->priv;
    em_wire_writer *w = &g->w;
    em_wire_put_u8(w, (uint8_t)p->kind);
    em_wire_put_ivar(w, p->record_length);
    em_wire_put_uvar(w, (uint64_t)p->plan.num_files);
    em_wire_put_uvar(w, (uint64_t)p->plan.num_splits);
    for (int i = 0; i < p->plan.num_splits; i++) {
        const em_input_split *sp = &p->plan.splits[i];
        em_wire_put_str(w, sp->path);
        em_wire_put_ivar(w, sp->start);
        em_wire_put_ivar(w, sp->length);
        em_wire_put_ivar(w, sp->file_size);
        em_wire_put_uvar(w, (uint64_t)(sp->files ? sp->num_files : 0));
        for (int j = 0; sp->files && j < sp->num_files; j++) em_wire_put_str(w, sp->files[j]);
    }
    return w->err;
}

static enum em_input_kind kind_of_ops(const em_rdd_ops *ops);

static int get_split(em_wire_reader *rd, em_input_split *sp, bool whole)
{
    if (em_wire_get_str(rd, &sp->path)) return rd->err;
    sp->start = em_wire_get_int(rd, 0, INT64_MAX, "split start");
    sp->length = em_wire_get_int(rd, 0, INT64_MAX - sp->start, "split length");
    sp->file_size = em_wire_get_int(rd, 0, INT64_MAX, "file size");
    size_t nf = em_wire_get_count(rd, 2, "split file count");
    if (!rd->err && (!sp->path || !sp->path[0]))
        return em_wire_fail(rd, "a split has no file path");
    if (!rd->err && (nf > INT_MAX || (nf != 0) != whole))
        return em_wire_fail(rd, "a split lists %zu files", nf);
    if (rd->err || !nf) return rd->err;
    sp->files = em__calloc(nf, sizeof *sp->files);
    if (!sp->files) return rd->err = em__set_error(EM_ENOMEM, "out of memory");
    for (size_t j = 0; j < nf; j++) {
        if (em_wire_get_str(rd, &sp->files[j])) return rd->err;
        sp->num_files = (int)j + 1;
        if (!sp->files[j] || !sp->files[j][0])
            return em_wire_fail(rd, "a split lists a file with no path");
    }
    return 0;
}

static int file_decode(struct em_rdd *r, struct em_graph_dec *g)
{
    em_wire_reader *rd = &g->r;
    if (r->num_deps) return em_wire_fail(rd, "a source has no dependencies");
    uint8_t kind = em_wire_get_u8(rd);
    int64_t record_length = em_wire_get_int(rd, 0, INT_MAX, "record length");
    uint64_t num_files = em_wire_get_uvar(rd);
    size_t n = em_wire_get_count(rd, 5, "split count");
    if (rd->err) return rd->err;
    if (kind != kind_of_ops(r->ops))
        return em_wire_fail(rd, "input kind %u does not match the RDD kind", kind);
    if ((kind == EM_INPUT_FIXED_RECORDS) != (record_length > 0))
        return em_wire_fail(rd, "record length %lld for input kind %u", (long long)record_length,
                            kind);
    if (n != (size_t)r->num_partitions || num_files > INT_MAX)
        return em_wire_fail(rd, "%zu splits (%llu files) for %d partitions", n,
                            (unsigned long long)num_files, r->num_partitions);
    file_priv *p = em__calloc(1, sizeof *p);
    if (p && n) p->plan.splits = em__calloc(n, sizeof *p->plan.splits);
    if (!p || (n && !p->plan.splits)) {
        em__free(p);
        return rd->err = em__set_error(EM_ENOMEM, "out of memory decoding an input plan");
    }
    p->kind = kind;
    p->record_length = (int)record_length;
    p->plan.num_files = (int)num_files;
    for (size_t i = 0; i < n; i++) {
        p->plan.num_splits = (int)i + 1; /* so that the plan frees what was read */
        if (get_split(rd, &p->plan.splits[i], kind == EM_INPUT_WHOLE_FILES)) {
            file_free(&(struct em_rdd){.priv = p});
            return rd->err;
        }
    }
    r->priv = p;
    return 0;
}

static const em_rdd_ops text_ops = {"textFile", file_compute, file_free, file_encode, file_decode};
static const em_rdd_ops whole_ops = {"wholeTextFiles", file_compute, file_free, file_encode,
                                     file_decode};
static const em_rdd_ops binary_ops = {"binaryRecords", file_compute, file_free, file_encode,
                                      file_decode};

static enum em_input_kind kind_of_ops(const em_rdd_ops *ops)
{
    return ops == &text_ops    ? EM_INPUT_LINES
           : ops == &whole_ops ? EM_INPUT_WHOLE_FILES
                               : EM_INPUT_FIXED_RECORDS;
}

const em_rdd_ops *const em__source_kinds[] = {&parallel_ops, &range_ops,  &text_ops,
                                              &whole_ops,    &binary_ops, NULL};

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
    char *abs = path[0] ? em_path_absolute(path) : em__strdup(path); /* "": an error below */
    if (!abs) {
        em__free(p);
        em__set_error(EM_ENOMEM, "%s: cannot resolve '%s' against the working directory", ops->name,
                      path);
        return NULL;
    }
    int rc = em_input_plan_make(abs, kind, min_partitions, max_split, record_length, &p->plan);
    em__free(abs);
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
