/* Fuzz target: the stage decoder (em__stage_decode, src/rdd/stage_codec.h), what an executor
 * reads from a STAGE_DEF: the RDD graph of a stage with its kinds' parameters, partitioners,
 * shuffle dependencies, function references and argument blobs.
 *
 * One local[1] context is created at start-up; every input is decoded into it (decoding has no
 * effect on the context: the graph owns what it decodes). Properties: the result is 0,
 * EM_EFORMAT (with a message) or EM_ENOMEM; an accepted graph is consistent (a root, a result
 * function or a written dependency whose parent is the root, the shuffles it reads listable),
 * re-encodes, that decodes, and encoding again gives the same bytes. Decoded functions are
 * never called: they are code of this binary chosen by the input.
 *
 * Seeds: the stages of real jobs. At seed time the context's job runner is wrapped: each job's
 * result stage and every map stage below it are encoded (em__stage_encode) and written, then
 * the job runs for real, so definition-time jobs (range partitioner sampling, zipWithIndex)
 * work and later actions see their results. The jobs cover every RDD kind and action the codec
 * ships. Seeds are only valid in the binary that wrote them (function references carry its
 * build id), which is why each target writes its own.
 */
#include "fuzz.h"

#include "rdd/stage_codec.h"

#include <ember/ember.h>
#include <string.h>

const char fuzz_target_name[] = "stage";

static em_context *ctx;

void fuzz_init(void)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_set(conf, "ember.local.dir", fuzz_tmpdir()) ||
        em_context_create("local[1]", "fuzz-stage", conf, &ctx)) {
        fprintf(stderr, "fuzz stage: cannot create a context: %s\n", em_errmsg());
        exit(2);
    }
    em_conf_free(conf);
}

static void encode(const em_stage_graph *g, em_buf *out)
{
    int rc = em__stage_encode(g->rdd, g->dep, g->fn, g->fn_arg, g->fn_arg_len, out);
    fuzz_assert(rc == 0, "re-encoding a decoded stage failed: %s", em_errmsg());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    em_stage_graph *g = NULL;
    int rc = em__stage_decode(ctx, data, size, &g);
    if (rc != 0) {
        fuzz_assert(rc == EM_EFORMAT || rc == EM_ENOMEM, "decode returned %d", rc);
        fuzz_assert(em_errmsg()[0] != '\0', "refused without a message");
        fuzz_assert(g == NULL, "a refused stage came back");
        return 0;
    }
    fuzz_assert(g && g->rdd && g->num_rdds > 0, "an accepted stage has no root");
    fuzz_assert((g->dep != NULL) != (g->fn != NULL), "a stage is either map or result");
    if (g->dep)
        fuzz_assert(g->dep->parent == g->rdd, "the written shuffle's parent is not the root");
    int ids[64];
    fuzz_assert(em__stage_read_shuffles(g->rdd, ids, 64) >= 0, "cannot list the shuffles read");

    em_buf once = EM_BUF_INIT, twice = EM_BUF_INIT;
    encode(g, &once);
    em_stage_graph *g2 = NULL;
    rc = em__stage_decode(ctx, once.data, once.len, &g2);
    fuzz_assert(rc == 0, "a re-encoded stage does not decode: %s", em_errmsg());
    encode(g2, &twice);
    fuzz_assert(once.len == twice.len && !memcmp(once.data, twice.data, once.len),
                "encode(decode(x)) is not stable (%zu then %zu bytes)", once.len, twice.len);
    em_buf_free(&once);
    em_buf_free(&twice);
    em__stage_graph_free(g2);
    em__stage_graph_free(g);
    return 0;
}

/* ---- seeds: the stages of real jobs ------------------------------------------------------------
 */

static int (*real_run_job)(em_context *c, const em_job_spec *job);
static int seen_shuffles[256], num_seen;

static void seed_stage(const struct em_rdd *r, const em_shuffle_dep *dep, em_result_fn fn,
                       const void *arg, size_t arg_len)
{
    em_buf b = EM_BUF_INIT;
    int rc = em__stage_encode(r, dep, fn, arg, arg_len, &b);
    fuzz_assert(rc == 0, "encoding a seed stage: %s", em_errmsg());
    fuzz_seed(b.data, b.len);
    em_buf_free(&b);
}

static void seed_map_stages(const struct em_rdd *r)
{
    for (int i = 0; i < r->num_deps; i++) {
        const em_dep *d = &r->deps[i];
        if (d->kind == EM_DEP_SHUFFLE) {
            int seen = 0;
            for (int k = 0; k < num_seen; k++) seen |= seen_shuffles[k] == d->shuffle->shuffle_id;
            if (seen || num_seen == 256) continue;
            seen_shuffles[num_seen++] = d->shuffle->shuffle_id;
            seed_stage(d->shuffle->parent, d->shuffle, NULL, NULL, 0);
        }
        seed_map_stages(d->rdd);
    }
}

static int capture_job(em_context *c, const em_job_spec *job)
{
    seed_stage(job->rdd, NULL, job->fn, job->fn_arg, job->fn_arg_len);
    seed_map_stages(job->rdd);
    return real_run_job(c, job);
}

static int split_words(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    size_t len;
    const char *s = em_value_str(in, &len);
    for (size_t i = 0; i < len;) {
        while (i < len && s[i] == ' ') i++;
        size_t j = i;
        while (j < len && s[j] != ' ') j++;
        if (j > i) {
            em_put_tuple_begin(out);
            em_put_str(out, s + i, j - i);
            em_put_int64(out, 1);
            em_put_end(out);
        }
        i = j;
    }
    return 0;
}

static int add(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

static int is_even(em_task *t, em_value in, const void *arg)
{
    (void)t, (void)arg;
    return em_value_int64(in) % 2 == 0;
}

static int key_mod(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t;
    int64_t m = arg ? *(const int64_t *)arg : 7;
    em_put_tuple_begin(out);
    em_put_int64(out, em_value_int64(in) % m);
    em_put_int64(out, em_value_int64(in));
    em_put_end(out);
    return 0;
}

static int first_of(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_value(out, in);
    return 0;
}

static int count_partition(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    int64_t n = 0;
    em_value v;
    while (in->next(in, &v) == EM_ROW) n++;
    em_put_int64(out, n);
    return 0;
}

static int nothing(em_task *t, em_value in, const void *arg)
{
    (void)t, (void)in, (void)arg;
    return 0;
}

static void drop(em_records *r)
{
    em_records_free(r);
}

void fuzz_make_seeds(void)
{
    real_run_job = ctx->run_job;
    ctx->run_job = capture_job;
    em_records *lines = em_records_new(), *out = NULL;
    em_put_cstr(lines, "the quick brown fox");
    em_put_cstr(lines, "jumps over the lazy dog");
    em_put_cstr(lines, "a fox a dog");
    em_rdd *text = em_parallelize(ctx, lines, 2);
    em_records_free(lines);
    em_rdd *words = em_rdd_flat_map(text, split_words, NULL, 0);
    em_rdd *counts = em_rdd_reduce_by_key(words, add, NULL, 0, 2);
    em_rdd_collect(counts, &out), drop(out);
    em_rdd_collect(em_rdd_group_by_key(words, 3), &out), drop(out);
    em_rdd_collect(em_rdd_sort_by_key(counts, false, 2), &out), drop(out);

    int64_t m = 5;
    em_rdd *nums = em_range(ctx, 0, 100, 3, 3);
    em_rdd *pairs = em_rdd_map(em_rdd_filter(nums, is_even, NULL, 0), key_mod, &m, sizeof m);
    em_rdd *other = em_rdd_key_by(em_range(ctx, 100, 0, -7, 2), first_of, NULL, 0);
    em_rdd_collect(em_rdd_join(pairs, other, 2), &out), drop(out);
    em_rdd_collect(em_rdd_left_outer_join(pairs, other, 2), &out), drop(out);
    em_rdd_collect(em_rdd_cogroup(pairs, pairs, 2), &out), drop(out); /* a self-cogroup */
    em_rdd_collect(em_rdd_union(pairs, pairs), &out), drop(out);
    em_rdd_collect(em_rdd_coalesce(nums, 1, false), &out), drop(out);
    em_rdd_collect(em_rdd_repartition(nums, 4), &out), drop(out);
    em_rdd_collect(em_rdd_cartesian(em_range(ctx, 0, 3, 1, 1), em_range(ctx, 0, 2, 1, 2)), &out),
        drop(out);
    em_rdd_collect(em_rdd_zip_with_index(nums), &out), drop(out);
    em_rdd_collect(em_rdd_glom(em_rdd_sample(nums, true, 0.5, 42)), &out), drop(out);
    em_rdd_collect(em_rdd_distinct(em_rdd_values(pairs), 2), &out), drop(out);
    em_rdd_collect(em_rdd_subtract(nums, em_range(ctx, 0, 50, 1, 2), 2), &out), drop(out);
    em_rdd_collect(em_rdd_intersection(nums, em_range(ctx, 0, 50, 1, 2), 2), &out), drop(out);
    em_rdd_collect(em_rdd_map_partitions_with_index(nums, count_partition, &m, sizeof m), &out),
        drop(out);
    em_records *zero = em_records_new();
    em_put_int64(zero, 0);
    em_value z = em_records_at(zero, 0);
    em_rdd_collect(em_rdd_fold_by_key(pairs, z, add, NULL, 0, 2), &out), drop(out);
    em_rdd_collect(em_rdd_aggregate_by_key(pairs, z, add, add, NULL, 0, 2), &out), drop(out);
    em_rdd_collect(em_rdd_combine_by_key(pairs, first_of, add, add, NULL, 0, 2), &out), drop(out);

    int64_t n;
    em_rdd *cached = em_rdd_cache(em_rdd_map_values(pairs, first_of, NULL, 0));
    em_rdd_count(cached, &n);
    em_rdd_count(cached, &n);
    em_rdd_take(nums, 3, &out), drop(out);
    em_rdd_top(nums, 2, &out), drop(out);
    em_rdd_take_ordered(nums, 2, &out), drop(out);
    em_rdd_reduce(nums, add, NULL, 0, &out), drop(out);
    em_rdd_fold(nums, z, add, NULL, 0, &out), drop(out);
    em_rdd_aggregate(nums, z, add, add, NULL, 0, &out), drop(out);
    em_rdd_count_by_key(pairs, &out), drop(out);
    em_rdd_lookup(pairs, em_records_at(zero, 0), &out), drop(out);
    em_rdd_foreach(nums, nothing, NULL, 0);
    em_records_free(zero);

    char path[4200];
    snprintf(path, sizeof path, "%s/input.txt", fuzz_tmpdir());
    FILE *f = fopen(path, "w");
    fuzz_assert(f, "cannot write %s", path);
    fputs("one line\nanother line\n", f);
    fclose(f);
    em_rdd *file = em_text_file(ctx, path, 2);
    snprintf(path, sizeof path, "%s/output", fuzz_tmpdir());
    em_rdd_save_as_text_file(
        em_rdd_reduce_by_key(em_rdd_flat_map(file, split_words, NULL, 0), add, NULL, 0, 1), path);
    ctx->run_job = real_run_job;
}
