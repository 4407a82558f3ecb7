/* Unit tests of shipping stages to another process: function references (base/symbols.h), the
 * wire reader and writer (base/wire.h) and the stage codec (rdd/stage_codec.h).
 *
 * An executor is simulated in-process: a driver context (local[2]) whose run_job is replaced by
 * exec_run_job below, which never runs the driver's graph. For each job it finds the map stages
 * below the final RDD (parents first), encodes each stage, decodes it into a SECOND context
 * (local[1], "the executor"), runs every task there with em__run_task, registers map outputs in
 * the executor's tracker, and hands result bytes to the action's handler. Every decoded graph is
 * also compared field by field with the driver's (ids, kinds, partitions, dependencies,
 * partitioners and range bounds, shared RDDs once, shuffle parents as stubs), and the result
 * function pointer and argument blob must come back identical. Final results are compared with
 * computations in plain C in the test, never with Ember's own output.
 *
 * Covered pipelines: word count (flatMap, reduceByKey), groupByKey, sortByKey both ways (range
 * partitioner sampled through the executor), join and cogroup, a self-join, union of an RDD
 * with itself, coalesce, cartesian, zipWithIndex, textFile over a temp file read after the
 * driver changed directory, range with a negative step, parallelize, a cached RDD (second
 * action served by the executor's block store under the driver's RDD id), foldByKey (zero
 * value), mapPartitionsWithIndex with a static function and an argument blob; the actions
 * collect, count, take, takeOrdered, top, reduce, fold, aggregate (with user argument blobs),
 * lookup, foreach, saveAsTextFile (relative path, after a chdir). Decoding every truncation and
 * thousands of random byte flips of encoded stages never crashes (run under ASan) and fails
 * cleanly; a wrong build id gives the clear error; the wire primitives' edge cases.
 * Each TEST runs in its own forked process (tests/test.h).
 */
#include "test.h"
#include "rdd_helpers.h"

#include "base/symbols.h"
#include "base/wire.h"
#include "executor/executor.h"
#include "rdd/stage_codec.h"
#include "shuffle/tracker.h"
#include "storage/block_store.h"

#include <ember/ember.h>

#include <dlfcn.h>
#include <stdatomic.h>

/* ---- the simulated executor ------------------------------------------------------------------ */

static em_context *drv, *exe;
static int64_t next_task_id = 1;
static int stages_run, map_stages_run;

/* Registers one map output in the executor's tracker. */
static void register_output(int shuffle_id, int map_id, em_map_status *st)
{
    em_block_location loc = {.exec_id = 0, .host = NULL, .port = 0, .dir = exe->local_dir};
    CHECK_OK(em_map_outputs_register(exe->map_outputs, shuffle_id, map_id, &loc, st));
}

/* Every RDD of the driver's graph below r (all dependencies), for comparisons. */
typedef struct rdd_list {
    struct em_rdd *v[512];
    int n;
} rdd_list;

static bool add_unique(rdd_list *l, struct em_rdd *r);

static void collect_graph(struct em_rdd *r, rdd_list *l)
{
    if (!add_unique(l, r)) return;
    for (int i = 0; i < r->num_deps; i++) collect_graph(r->deps[i].rdd, l);
}

/* Adds r unless present; true if added. */
static bool add_unique(rdd_list *l, struct em_rdd *r)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == r) return false;
    CHECK(l->n < 512);
    l->v[l->n++] = r;
    return true;
}

static struct em_rdd *find_id(rdd_list *l, int id)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i]->id == id) return l->v[i];
    return NULL;
}

static void same_partitioner(const em_partitioner *a, const em_partitioner *b)
{
    CHECK((a == NULL) == (b == NULL));
    if (!a) return;
    CHECK_EQ_INT(a->id, b->id);
    CHECK_EQ_INT(a->kind, b->kind);
    CHECK_EQ_INT(a->num_partitions, b->num_partitions);
    CHECK_EQ_INT(a->descending, b->descending);
    CHECK_EQ_INT(a->num_bounds, b->num_bounds);
    for (int i = 0; i < a->num_bounds; i++) {
        CHECK_EQ_INT(a->bounds[i].len, b->bounds[i].len);
        CHECK(!memcmp(a->bounds[i].data, b->bounds[i].data, a->bounds[i].len));
    }
}

static bool in_list(const int *ids, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static void same_dep(const em_shuffle_dep *a, const em_shuffle_dep *b)
{
    CHECK_EQ_INT(a->shuffle_id, b->shuffle_id);
    CHECK_EQ_INT(a->parent->id, b->parent->id);
    same_partitioner(a->partitioner, b->partitioner);
    CHECK_EQ_INT(a->has_aggregator, b->has_aggregator);
    CHECK_EQ_INT(a->map_side_combine, b->map_side_combine);
    CHECK_EQ_INT(a->agg_kind, b->agg_kind);
    CHECK(a->create.fn == b->create.fn && a->merge_value.fn == b->merge_value.fn &&
          a->merge_combiners.fn == b->merge_combiners.fn);
    CHECK_EQ_INT(a->merge_value.arg_len, b->merge_value.arg_len);
    CHECK(!a->merge_value.arg_len ||
          !memcmp(a->merge_value.arg, b->merge_value.arg, a->merge_value.arg_len));
    CHECK_EQ_INT(a->zero.len, b->zero.len);
    CHECK(!a->zero.len || !memcmp(a->zero.data, b->zero.data, a->zero.len));
}

/* The decoded graph g of the stage rooted at root matches the driver's graph: every RDD once,
 * the ones reached through narrow dependencies in full, shuffle parents as stubs. */
static void compare_graph(struct em_rdd *root, em_stage_graph *g)
{
    rdd_list all = {0};
    collect_graph(root, &all);
    CHECK_EQ_INT(g->rdd->id, root->id);
    CHECK(g->rdd->ctx == exe);
    int ids[512], n = 0;
    for (int i = 0; i < g->num_rdds; i++) {
        struct em_rdd *d = g->rdds[i], *o = find_id(&all, d->id);
        CHECK_MSG(o, "decoded RDD %d is not in the driver's graph", d->id);
        CHECK_MSG(!in_list(ids, n, d->id), "RDD %d decoded twice", d->id);
        ids[n++] = d->id;
        CHECK(d->ctx == exe);
        CHECK_EQ_INT(d->num_partitions, o->num_partitions);
        CHECK((d->name == NULL) == (o->name == NULL));
        if (d->name) CHECK_EQ_STR(d->name, o->name);
        if (!strcmp(d->ops->name, "shuffle parent (stub)")) {
            CHECK_EQ_INT(d->num_deps, 0);
            continue;
        }
        CHECK(d->ops == o->ops); /* the same kind, found by name */
        CHECK_EQ_INT(d->cached, o->cached);
        same_partitioner(d->partitioner, o->partitioner);
        CHECK_EQ_INT(d->num_deps, o->num_deps);
        for (int k = 0; k < d->num_deps; k++) {
            CHECK_EQ_INT(d->deps[k].kind, o->deps[k].kind);
            CHECK_EQ_INT(d->deps[k].rdd->id, o->deps[k].rdd->id);
            if (d->deps[k].kind == EM_DEP_SHUFFLE)
                same_dep(d->deps[k].shuffle, o->deps[k].shuffle);
            else
                CHECK(strcmp(d->deps[k].rdd->ops->name, "shuffle parent (stub)"));
        }
    }
    /* Exactly the RDDs of the stage: the narrow closure plus the parents of its shuffles. */
    rdd_list stage = {0}, stack = {0};
    stack.v[stack.n++] = root;
    while (stack.n) {
        struct em_rdd *x = stack.v[--stack.n];
        if (!add_unique(&stage, x)) continue;
        for (int k = 0; k < x->num_deps; k++)
            if (x->deps[k].kind == EM_DEP_NARROW) stack.v[stack.n++] = x->deps[k].rdd;
    }
    int closure = stage.n;
    for (int i = 0; i < closure; i++)
        for (int k = 0; k < stage.v[i]->num_deps; k++)
            if (stage.v[i]->deps[k].kind == EM_DEP_SHUFFLE)
                add_unique(&stage, stage.v[i]->deps[k].rdd);
    CHECK_EQ_INT(g->num_rdds, stage.n);
}

static void run_map_stage(em_shuffle_dep *dep);

/* Runs the map stages the stage of r reads that have no outputs in the executor yet. */
static void run_parent_stages(struct em_rdd *r)
{
    rdd_list seen = {0}, stack = {0};
    stack.v[stack.n++] = r;
    while (stack.n) {
        struct em_rdd *x = stack.v[--stack.n];
        if (!add_unique(&seen, x)) continue;
        for (int k = 0; k < x->num_deps; k++) {
            if (x->deps[k].kind == EM_DEP_SHUFFLE)
                run_map_stage(x->deps[k].shuffle);
            else
                stack.v[stack.n++] = x->deps[k].rdd;
        }
    }
}

static void run_map_stage(em_shuffle_dep *dep)
{
    int dummy;
    if (em_map_outputs_missing(exe->map_outputs, dep->shuffle_id, &dummy, 0) == 0) return;
    run_parent_stages(dep->parent);
    em_buf enc = EM_BUF_INIT;
    CHECK_OK(em__stage_encode(dep->parent, dep, NULL, NULL, 0, &enc));
    em_stage_graph *g = NULL;
    CHECK_OK(em__stage_decode(exe, enc.data, enc.len, &g));
    compare_graph(dep->parent, g);
    CHECK(g->dep && !g->fn);
    same_dep(g->dep, dep);
    CHECK(g->dep->parent == g->rdd);
    int n = g->rdd->num_partitions;
    CHECK_OK(em_map_outputs_register_shuffle(exe->map_outputs, dep->shuffle_id, n));
    for (int m = 0; m < n; m++) {
        em_task_desc *d = calloc(1, sizeof *d);
        d->task_id = next_task_id++;
        d->stage_id = 100 + dep->shuffle_id;
        d->partition = m;
        d->rdd = g->rdd;
        d->dep = g->dep;
        em__run_task(exe, d);
        CHECK_MSG(d->status == 0, "map task %d of shuffle %d: %s", m, dep->shuffle_id,
                  d->errmsg ? d->errmsg : "?");
        register_output(dep->shuffle_id, m, &d->map_status);
        em_map_status_clear(&d->map_status);
        em_buf_free(&d->result);
        free(d->errmsg);
        free(d);
    }
    em__stage_graph_free(g);
    em_buf_free(&enc);
    map_stages_run++;
}

/* The driver's ctx->run_job: the whole job through the codec, in the executor context. */
static int exec_run_job(em_context *ctx, const em_job_spec *job)
{
    CHECK(ctx == drv);
    run_parent_stages(job->rdd);
    em_buf enc = EM_BUF_INIT;
    CHECK_OK(em__stage_encode(job->rdd, NULL, job->fn, job->fn_arg, job->fn_arg_len, &enc));
    em_stage_graph *g = NULL;
    CHECK_OK(em__stage_decode(exe, enc.data, enc.len, &g));
    compare_graph(job->rdd, g);
    CHECK(!g->dep);
    CHECK(g->fn == job->fn); /* resolved back to the same function */
    CHECK_EQ_INT(g->fn_arg_len, job->fn_arg_len);
    CHECK(!job->fn_arg_len || !memcmp(g->fn_arg, job->fn_arg, job->fn_arg_len));
    CHECK(!job->fn_arg_len || g->fn_arg != job->fn_arg); /* a copy */
    int n = job->partitions ? job->num_partitions : job->rdd->num_partitions;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        em_task_desc *d = calloc(1, sizeof *d);
        d->task_id = next_task_id++;
        d->partition = job->partitions ? job->partitions[i] : i;
        d->rdd = g->rdd;
        d->fn = g->fn;
        d->fn_arg = g->fn_arg;
        d->fn_arg_len = g->fn_arg_len;
        em__run_task(exe, d);
        if (d->status)
            rc = em__set_error(d->status, "task %d: %s", d->partition, d->errmsg ? d->errmsg : "");
        else if (job->handler)
            rc = job->handler(job->handler_arg, d->partition, d->result.data, d->result.len);
        em_map_status_clear(&d->map_status);
        em_buf_free(&d->result);
        free(d->errmsg);
        free(d);
    }
    em__stage_graph_free(g);
    em_buf_free(&enc);
    stages_run++;
    return rc;
}

static void setup(void)
{
    drv = ctx_with("local[2]", NULL, NULL);
    exe = ctx_with("local[1]", NULL, NULL);
    drv->run_job = exec_run_job;
}

static void teardown(void)
{
    em_context_stop(drv);
    em_context_stop(exe);
}

/* ---- user functions ------------------------------------------------------------------------ */

static int split_words(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    size_t len;
    const char *s = em_value_str(in, &len);
    size_t i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ') i++;
        size_t j = i;
        while (j < len && s[j] != ' ') j++;
        if (j > i) em_put_str(out, s + i, j - i);
        i = j;
    }
    return 0;
}

static int with_one(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_tuple_begin(out);
    em_put_value(out, in);
    em_put_int64(out, 1);
    em_put_end(out);
    return 0;
}

static int64_t key_of(int64_t i)
{
    return (i * 7919) % 23;
}

/* ---- reference helpers ------------------------------------------------------------------------
 */

static strlist text_of(em_records *recs)
{
    strlist l = {0};
    for (size_t i = 0; i < em_records_count(recs); i++)
        sl_push(&l, format_value(em_records_at(recs, i)));
    return l;
}

static const char *const lines[] = {
    "the quick brown fox", "jumps over the lazy dog", "  the dog  sleeps ", "a fox a dog a cat", "",
    "quick quick quick",
};

/* "word:count" of every word of lines, counted in plain C. */
static strlist reference_word_counts(void)
{
    char words[64][32];
    int counts[64], n = 0;
    for (size_t l = 0; l < EM_ARRAY_LEN(lines); l++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", lines[l]);
        for (char *w = strtok(buf, " "); w; w = strtok(NULL, " ")) {
            int i = 0;
            while (i < n && strcmp(words[i], w)) i++;
            if (i == n) {
                snprintf(words[n], sizeof words[n], "%s", w);
                counts[n++] = 0;
            }
            counts[i]++;
        }
    }
    strlist want = {0};
    for (int i = 0; i < n; i++) sl_addf(&want, "(%s,%d)", words[i], counts[i]);
    return want;
}

static em_rdd *par_lines(void)
{
    em_records *r = em_records_new();
    for (size_t i = 0; i < EM_ARRAY_LEN(lines); i++) em_put_cstr(r, lines[i]);
    em_rdd *rdd = em_parallelize(drv, r, 3);
    em_records_free(r);
    CHECK(rdd);
    return rdd;
}

/* ---- pipelines ----------------------------------------------------------------------------- */

TEST(word_count)
{
    setup();
    em_rdd *counts = em_rdd_reduce_by_key(
        em_rdd_map(em_rdd_flat_map(par_lines(), split_words, NULL, 0), with_one, NULL, 0), add,
        NULL, 0, 3);
    strlist got = collect_text(counts), want = reference_word_counts();
    sl_expect(&got, &want, true);
    CHECK_EQ_INT(map_stages_run, 1);
    CHECK_EQ_INT(stages_run, 1);
    /* A second action reuses the executor's map outputs (ids kept). */
    int64_t n;
    CHECK_OK(em_rdd_count(counts, &n));
    CHECK_EQ_INT(n, (int64_t)want.n);
    CHECK_EQ_INT(map_stages_run, 1);
    sl_free(&got);
    sl_free(&want);
    teardown();
}

TEST(group_by_key)
{
    setup();
    int64_t k[300], v[300];
    for (int i = 0; i < 300; i++) k[i] = key_of(i), v[i] = i;
    em_rdd *g = em_rdd_group_by_key(par_pairs(drv, k, v, 300, 4), 5);
    em_records *recs;
    CHECK_OK(em_rdd_collect(g, &recs));
    CHECK_EQ_INT(em_records_count(recs), 23);
    int64_t sums[23] = {0}, seen[23] = {0};
    for (size_t i = 0; i < em_records_count(recs); i++) {
        em_value p = em_records_at(recs, i);
        int64_t key = em_value_int64(em_value_key(p));
        CHECK(key >= 0 && key < 23 && !seen[key]);
        seen[key] = 1;
        em_value l = em_value_val(p);
        for (size_t j = 0; j < em_value_count(l); j++)
            sums[key] += em_value_int64(em_value_at(l, j));
    }
    int64_t want[23] = {0};
    for (int i = 0; i < 300; i++) want[key_of(i)] += i;
    for (int i = 0; i < 23; i++) CHECK_EQ_INT(sums[i], want[i]);
    em_records_free(recs);
    teardown();
}

static void sort_by_key_both_ways(bool ascending)
{
    setup();
    int64_t k[500], v[500];
    uint64_t s = 42;
    for (int i = 0; i < 500; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        k[i] = (int64_t)(s >> 40) % 1000;
        v[i] = i;
    }
    em_rdd *sorted = em_rdd_sort_by_key(par_pairs(drv, k, v, 500, 5), ascending, 4);
    CHECK(sorted);
    CHECK(sorted->partitioner && sorted->partitioner->kind == EM_PART_RANGE);
    CHECK(sorted->partitioner->num_bounds > 0); /* sampled through the executor */
    CHECK_EQ_INT(stages_run, 1);
    em_records *recs;
    CHECK_OK(em_rdd_collect(sorted, &recs));
    CHECK_EQ_INT(em_records_count(recs), 500);
    int64_t keys[500];
    for (int i = 0; i < 500; i++) keys[i] = em_value_int64(em_value_key(em_records_at(recs, i)));
    qsort(k, 500, sizeof *k, cmp_i64);
    for (int i = 0; i < 500; i++) CHECK_EQ_INT(keys[i], ascending ? k[i] : k[499 - i]);
    em_records_free(recs);
    teardown();
}

TEST(sort_by_key_ascending)
{
    sort_by_key_both_ways(true);
}

TEST(sort_by_key_descending)
{
    sort_by_key_both_ways(false);
}

TEST(join_and_cogroup)
{
    setup();
    int64_t ak[40], av[40], bk[30], bv[30];
    for (int i = 0; i < 40; i++) ak[i] = i % 10, av[i] = i;
    for (int i = 0; i < 30; i++) bk[i] = 5 + i % 12, bv[i] = 100 + i;
    em_rdd *a = par_pairs(drv, ak, av, 40, 3), *b = par_pairs(drv, bk, bv, 30, 2);
    em_records *recs;
    CHECK_OK(em_rdd_collect(em_rdd_join(a, b, 4), &recs));
    strlist got = text_of(recs), want = {0};
    em_records_free(recs);
    for (int i = 0; i < 40; i++)
        for (int j = 0; j < 30; j++)
            if (ak[i] == bk[j])
                sl_addf(&want, "(%lld,(%lld,%lld))", (long long)ak[i], (long long)av[i],
                        (long long)bv[j]);
    sl_expect(&got, &want, true);
    sl_free(&got);
    sl_free(&want);

    /* cogroup: per key, the sums and counts of each side. */
    CHECK_OK(em_rdd_collect(em_rdd_cogroup(a, b, 3), &recs));
    for (size_t i = 0; i < em_records_count(recs); i++) {
        em_value p = em_records_at(recs, i);
        int64_t key = em_value_int64(em_value_key(p));
        em_value sides = em_value_val(p);
        int64_t got_sum[2] = {0}, want_sum[2] = {0}, got_n[2], want_n[2] = {0};
        for (int side = 0; side < 2; side++) {
            em_value l = em_value_at(sides, (size_t)side);
            got_n[side] = (int64_t)em_value_count(l);
            for (size_t j = 0; j < em_value_count(l); j++)
                got_sum[side] += em_value_int64(em_value_at(l, j));
        }
        for (int j = 0; j < 40; j++)
            if (ak[j] == key) want_sum[0] += av[j], want_n[0]++;
        for (int j = 0; j < 30; j++)
            if (bk[j] == key) want_sum[1] += bv[j], want_n[1]++;
        for (int side = 0; side < 2; side++) {
            CHECK_EQ_INT(got_sum[side], want_sum[side]);
            CHECK_EQ_INT(got_n[side], want_n[side]);
        }
    }
    CHECK_EQ_INT(em_records_count(recs), 17); /* keys 0..16 */
    em_records_free(recs);
    teardown();
}

TEST(self_join_and_self_union)
{
    setup();
    int64_t k[20], v[20];
    for (int i = 0; i < 20; i++) k[i] = i % 4, v[i] = i;
    em_rdd *a = par_pairs(drv, k, v, 20, 3);
    em_rdd *j = em_rdd_join(a, a, 2);
    /* The result stage holds the CoGroupedRDD and a's stub once. */
    em_buf enc = EM_BUF_INIT;
    CHECK_OK(em__stage_encode(j, NULL, em__count_partition, NULL, 0, &enc));
    em_stage_graph *g;
    CHECK_OK(em__stage_decode(exe, enc.data, enc.len, &g));
    CHECK_EQ_INT(g->num_rdds, 2);
    /* ... and the executor never computes the stub. */
    struct em_rdd *stub = g->rdds[0] == g->rdd ? g->rdds[1] : g->rdds[0];
    CHECK_EQ_INT(stub->id, a->id);
    em_task t = {.conf = exe->conf, .memory = exe->memory, .local_dir = exe->local_dir};
    em_iter *it = NULL;
    CHECK_EQ_INT(em__rdd_iterator(stub, 0, &t, &it), EM_ESTATE);
    CHECK(strstr(em_errmsg(), "parent of a shuffle"));
    em__stage_graph_free(g);
    em_buf_free(&enc);

    int64_t n;
    CHECK_OK(em_rdd_count(j, &n));
    int64_t want = 0;
    for (int x = 0; x < 20; x++)
        for (int y = 0; y < 20; y++) want += k[x] == k[y];
    CHECK_EQ_INT(n, want);
    CHECK_EQ_INT(map_stages_run, 2); /* two shuffles of the same parent */

    /* a reached both narrowly and as a shuffle's parent: encoded in full, once. */
    em_rdd *mixed = em_rdd_union(a, em_rdd_reduce_by_key(a, add, NULL, 0, 2));
    CHECK_OK(em_rdd_count(mixed, &n));
    CHECK_EQ_INT(n, 20 + 4);

    em_rdd *r = par_ints(drv, (int64_t[]){5, 6, 7, 8, 9}, 5, 2);
    em_rdd *u = em_rdd_union(r, r);
    size_t nu;
    int64_t *vals = collect_ints(u, &nu);
    expect_ints(vals, nu, (int64_t[]){5, 6, 7, 8, 9, 5, 6, 7, 8, 9}, 10);
    free(vals);
    CHECK_OK(em__stage_encode(u, NULL, em__count_partition, NULL, 0, &enc));
    CHECK_OK(em__stage_decode(exe, enc.data, enc.len, &g));
    CHECK_EQ_INT(g->num_rdds, 2); /* union and r, once */
    CHECK(g->rdd->deps[0].rdd == g->rdd->deps[1].rdd);
    em__stage_graph_free(g);
    em_buf_free(&enc);
    teardown();
}

TEST(coalesce_cartesian_zip)
{
    setup();
    size_t n;
    int64_t *v = collect_ints(em_rdd_coalesce(em_range(drv, 0, 100, 1, 8), 3, false), &n);
    int64_t want[100];
    for (int i = 0; i < 100; i++) want[i] = i;
    expect_ints(v, n, want, 100);
    free(v);

    em_rdd *a = par_ints(drv, (int64_t[]){1, 2, 3, 4, 5}, 5, 3);
    em_rdd *b = par_ints(drv, (int64_t[]){10, 20, 30}, 3, 2);
    em_records *recs;
    CHECK_OK(em_rdd_collect(em_rdd_cartesian(a, b), &recs));
    int64_t got[15], ref[15];
    CHECK_EQ_INT(em_records_count(recs), 15);
    for (int i = 0; i < 15; i++) {
        em_value p = em_records_at(recs, (size_t)i);
        got[i] = em_value_int64(em_value_key(p)) * 1000 + em_value_int64(em_value_val(p));
    }
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++) ref[i * 3 + j] = (i + 1) * 1000 + (j + 1) * 10;
    expect_ints_multiset(got, 15, ref, 15);
    em_records_free(recs);

    int before = stages_run;
    em_rdd *z = em_rdd_zip_with_index(em_range(drv, 100, 0, -3, 4)); /* runs a counting job */
    CHECK_EQ_INT(stages_run, before + 1);
    CHECK_OK(em_rdd_collect(z, &recs));
    int64_t x = 100;
    CHECK_EQ_INT(em_records_count(recs), 34);
    for (size_t i = 0; i < em_records_count(recs); i++, x -= 3) {
        em_value p = em_records_at(recs, i);
        CHECK_EQ_INT(em_value_int64(em_value_key(p)), x);
        CHECK_EQ_INT(em_value_int64(em_value_val(p)), (int64_t)i);
    }
    em_records_free(recs);
    teardown();
}

TEST(text_file_after_chdir)
{
    setup();
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd));
    CHECK_EQ_INT(chdir(test_tmpdir()), 0);
    FILE *f = fopen("input.txt", "w");
    CHECK(f);
    for (size_t i = 0; i < EM_ARRAY_LEN(lines); i++) fprintf(f, "%s\n", lines[i]);
    fclose(f);
    em_rdd *text = em_text_file(drv, "input.txt", 3); /* relative: resolved at definition */
    CHECK(text);
    CHECK_EQ_INT(chdir("/"), 0); /* the "executor" runs elsewhere */
    em_rdd *counts = em_rdd_reduce_by_key(
        em_rdd_map(em_rdd_flat_map(text, split_words, NULL, 0), with_one, NULL, 0), add, NULL, 0,
        2);
    strlist got = collect_text(counts), want = reference_word_counts();
    sl_expect(&got, &want, true);
    sl_free(&got);
    sl_free(&want);
    CHECK_EQ_INT(chdir(cwd), 0);
    teardown();
}

static atomic_int calls;

static int counted_times10(em_task *t, em_value in, em_records *out, const void *arg)
{
    atomic_fetch_add(&calls, 1);
    return times10(t, in, out, arg);
}

TEST(cached_rdd)
{
    setup();
    em_rdd *r = em_rdd_cache(em_rdd_map(em_range(drv, 0, 50, 1, 3), counted_times10, NULL, 0));
    int64_t n;
    CHECK_OK(em_rdd_count(r, &n));
    CHECK_EQ_INT(n, 50);
    CHECK_EQ_INT(atomic_load(&calls), 50);
    for (int p = 0; p < 3; p++) {
        em_block *b = em_block_store_get(exe->blocks, r->id, p); /* the driver's id */
        CHECK_MSG(b, "partition %d not cached in the executor", p);
        em_block_release(b);
        CHECK(!em_block_store_get(drv->blocks, r->id, p));
    }
    size_t nv;
    int64_t *v = collect_ints(r, &nv), want[50];
    for (int i = 0; i < 50; i++) want[i] = 10 * i;
    expect_ints(v, nv, want, 50);
    free(v);
    CHECK_EQ_INT(atomic_load(&calls), 50); /* served from the cache */
    teardown();
}

typedef struct scale_arg {
    int64_t mult;
    char tag[8];
} scale_arg;

/* (partition, sum of the partition's values * mult): a static function with an argument blob. */
static int partition_sum(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    const scale_arg *a = arg;
    if (!a || strcmp(a->tag, "scale")) return em_task_fail(t, "bad argument blob");
    int64_t sum = 0;
    em_value v;
    int rc;
    while ((rc = em_iter_next(in, &v)) == EM_ROW) sum += em_value_int64(v);
    if (rc < 0) return rc;
    em_put_tuple_begin(out);
    em_put_int64(out, em_task_partition(t));
    em_put_int64(out, sum * a->mult);
    em_put_end(out);
    return 0;
}

TEST(map_partitions_with_index_and_fold_by_key)
{
    setup();
    scale_arg sa = {3, "scale"};
    em_rdd *r =
        em_rdd_map_partitions_with_index(em_range(drv, 0, 40, 1, 4), partition_sum, &sa, sizeof sa);
    em_records *recs;
    CHECK_OK(em_rdd_collect(r, &recs));
    CHECK_EQ_INT(em_records_count(recs), 4);
    for (int p = 0; p < 4; p++) {
        em_value x = em_records_at(recs, (size_t)p);
        int64_t want = 0;
        for (int i = p * 10; i < p * 10 + 10; i++) want += i;
        CHECK_EQ_INT(em_value_int64(em_value_key(x)), p);
        CHECK_EQ_INT(em_value_int64(em_value_val(x)), want * 3);
    }
    em_records_free(recs);

    em_records *z = int_records((int64_t[]){1000}, 1);
    int64_t k[60], v[60];
    for (int i = 0; i < 60; i++) k[i] = i % 6, v[i] = i;
    em_rdd *f =
        em_rdd_fold_by_key(par_pairs(drv, k, v, 60, 3), em_records_at(z, 0), max2, NULL, 0, 2);
    CHECK_OK(em_rdd_collect(f, &recs));
    CHECK_EQ_INT(em_records_count(recs), 6);
    for (size_t i = 0; i < 6; i++) {
        em_value p = em_records_at(recs, i);
        CHECK_EQ_INT(em_value_int64(em_value_val(p)), 1000); /* the zero value wins */
    }
    em_records_free(recs);
    em_records_free(z);
    teardown();
}

/* ---- actions ------------------------------------------------------------------------------- */

static int add_checked(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    if (!arg || *(const int64_t *)arg != 77) return em_task_fail(t, "argument blob lost");
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

static atomic_llong each_sum;

static int each_add(em_task *t, em_value in, const void *arg)
{
    (void)t;
    atomic_fetch_add(&each_sum, em_value_int64(in) * *(const int64_t *)arg);
    return 0;
}

TEST(actions)
{
    setup();
    em_rdd *r = em_range(drv, 1, 101, 1, 5);
    int64_t n;
    CHECK_OK(em_rdd_count(r, &n));
    CHECK_EQ_INT(n, 100);

    em_records *recs;
    CHECK_OK(em_rdd_take(r, 27, &recs)); /* scans 1, then 4 partitions */
    CHECK_EQ_INT(em_records_count(recs), 27);
    for (int i = 0; i < 27; i++)
        CHECK_EQ_INT(em_value_int64(em_records_at(recs, (size_t)i)), i + 1);
    em_records_free(recs);

    CHECK_OK(em_rdd_take_ordered(em_rdd_map(r, times10, NULL, 0), 3, &recs));
    CHECK_EQ_INT(em_records_count(recs), 3);
    CHECK_EQ_INT(em_value_int64(em_records_at(recs, 2)), 30);
    em_records_free(recs);
    CHECK_OK(em_rdd_top(r, 2, &recs));
    CHECK_EQ_INT(em_value_int64(em_records_at(recs, 0)), 100);
    CHECK_EQ_INT(em_value_int64(em_records_at(recs, 1)), 99);
    em_records_free(recs);

    int64_t magic = 77;
    CHECK_OK(em_rdd_reduce(r, add_checked, &magic, sizeof magic, &recs));
    CHECK_EQ_INT(em_value_int64(em_records_at(recs, 0)), 5050);
    em_records_free(recs);

    em_records *z = int_records((int64_t[]){1}, 1);
    CHECK_OK(em_rdd_fold(r, em_records_at(z, 0), add_checked, &magic, sizeof magic, &recs));
    CHECK_EQ_INT(em_value_int64(em_records_at(recs, 0)), 5050 + 6); /* 5 partitions + merge */
    em_records_free(recs);
    em_records_free(z);

    em_records *z2 = em_records_new();
    em_put_tuple_begin(z2);
    em_put_int64(z2, 0);
    em_put_int64(z2, 0);
    em_put_end(z2);
    CHECK_OK(
        em_rdd_aggregate(r, em_records_at(z2, 0), seq_sum_count, comb_sum_count, NULL, 0, &recs));
    em_value acc = em_records_at(recs, 0);
    CHECK_EQ_INT(em_value_int64(em_value_at(acc, 0)), 5050);
    CHECK_EQ_INT(em_value_int64(em_value_at(acc, 1)), 100);
    em_records_free(recs);
    em_records_free(z2);

    int64_t mult = 2;
    atomic_store(&each_sum, 0);
    CHECK_OK(em_rdd_foreach(r, each_add, &mult, sizeof mult));
    CHECK_EQ_INT(atomic_load(&each_sum), 2 * 5050);

    int64_t k[30], v[30];
    for (int i = 0; i < 30; i++) k[i] = i % 5, v[i] = i;
    em_rdd *grouped = em_rdd_reduce_by_key(par_pairs(drv, k, v, 30, 3), add, NULL, 0, 3);
    em_records *key = int_records((int64_t[]){3}, 1);
    CHECK_OK(em_rdd_lookup(grouped, em_records_at(key, 0), &recs));
    CHECK_EQ_INT(em_records_count(recs), 1);
    CHECK_EQ_INT(em_value_int64(em_records_at(recs, 0)), 3 + 8 + 13 + 18 + 23 + 28);
    em_records_free(recs);
    em_records_free(key);
    teardown();
}

TEST(save_as_text_file_relative_path)
{
    setup();
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd));
    CHECK_EQ_INT(chdir(test_tmpdir()), 0);
    em_rdd *r = em_rdd_map(em_range(drv, 0, 30, 1, 3), times10, NULL, 0);
    /* The staging directory is absolute: the tasks would write it from any directory. */
    CHECK_OK(em_rdd_save_as_text_file(r, "out"));
    CHECK_EQ_INT(chdir(cwd), 0);
    strlist files = {0};
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/out", test_tmpdir());
    CHECK_OK(list_dir(dir, &files));
    CHECK_EQ_INT(files.n, 4); /* part-00000..2, _SUCCESS */
    int64_t got[30], ref[30];
    size_t ng = 0;
    for (int p = 0; p < 3; p++) {
        char path[2100];
        snprintf(path, sizeof path, "%s/part-%05d", dir, p);
        FILE *f = fopen(path, "r");
        CHECK_MSG(f, "missing %s", path);
        long long x;
        while (fscanf(f, "%lld", &x) == 1) got[ng++] = x;
        fclose(f);
    }
    for (int i = 0; i < 30; i++) ref[i] = 10 * i;
    expect_ints(got, ng, ref, 30);
    sl_free(&files);
    teardown();
}

/* ---- robustness ---------------------------------------------------------------------------- */

static int is_even(em_task *t, em_value in, const void *arg)
{
    (void)t, (void)arg;
    return em_value_int64(in) % 2 == 0;
}

static int twice(em_task *t, em_value in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_value(out, in);
    em_put_value(out, in);
    return 0;
}

static int pass_through(em_task *t, em_iter *in, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_value v;
    int rc;
    while ((rc = em_iter_next(in, &v)) == EM_ROW) em_put_value(out, v);
    return rc;
}

/* A graph of every kind: parallelize, range, textFile, wholeTextFiles, binaryRecords, every
 * narrow kind, union, coalesce, cartesian, zipWithIndex, sortByKey (range bounds), foldByKey
 * (zero value, argument blob), combineByKey, cogroup, a cached RDD. */
static em_rdd *everything(void)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/in.bin", test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs("abcdefgh\nijklmnop\n", f);
    fclose(f);
    em_rdd *text = em_rdd_map(em_text_file(drv, path, 2), with_one, NULL, 0);
    em_rdd *whole = em_whole_text_files(drv, test_tmpdir(), 1);
    em_rdd *bin = em_rdd_map(em_binary_records(drv, path, 3), with_one, NULL, 0);
    int64_t k[10], v[10];
    for (int i = 0; i < 10; i++) k[i] = i % 3, v[i] = i;
    em_rdd *pairs = par_pairs(drv, k, v, 10, 2);
    em_rdd *sorted = em_rdd_sort_by_key(em_rdd_union(pairs, pairs), true, 3);
    em_records *z = int_records((int64_t[]){5}, 1);
    em_rdd *folded = em_rdd_fold_by_key(sorted, em_records_at(z, 0), add, "arg", 4, 2);
    em_records_free(z);
    em_rdd *combined = em_rdd_combine_by_key(pairs, times10, add, add, NULL, 0, 2);
    em_rdd *co = em_rdd_cogroup(folded, combined, 2);
    em_rdd *ints = em_rdd_flat_map(em_rdd_filter(em_range(drv, 0, 20, 1, 2), is_even, NULL, 0),
                                   twice, NULL, 0);
    em_rdd *kv = em_rdd_flat_map_values(
        em_rdd_map_values(em_rdd_key_by(ints, times10, NULL, 0), times10, NULL, 0), twice, NULL, 0);
    em_rdd *narrow = em_rdd_glom(
        em_rdd_sample(em_rdd_map_partitions(em_rdd_union(em_rdd_values(kv), em_rdd_keys(kv)),
                                            pass_through, NULL, 0),
                      false, 0.5, 7));
    em_rdd *zipped = em_rdd_zip_with_index(em_rdd_coalesce(em_range(drv, 0, 20, 2, 4), 2, false));
    em_rdd *cart = em_rdd_cartesian(zipped, em_rdd_keys(text));
    em_rdd *all =
        em_rdd_union(em_rdd_map(cart, with_one, NULL, 0),
                     em_rdd_union(em_rdd_map(co, with_one, NULL, 0),
                                  em_rdd_union(em_rdd_map(narrow, with_one, NULL, 0),
                                               em_rdd_union(whole, em_rdd_union(bin, text)))));
    CHECK_MSG(all, "%s", em_errmsg());
    return em_rdd_cache(all);
}

static void fuzz_one(const em_buf *enc)
{
    /* A warm-up decode: function references fill the module table once. */
    em_stage_graph *g = NULL;
    CHECK_OK(em__stage_decode(exe, enc->data, enc->len, &g));
    em__stage_graph_free(g);
    int64_t live = em__alloc_bytes();
    for (size_t len = 0; len < enc->len; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, enc->data, len);
        em__clear_error();
        int rc = em__stage_decode(exe, copy, len, &g);
        CHECK_MSG(rc == EM_EFORMAT, "truncated to %zu of %zu bytes: rc %d", len, enc->len, rc);
        CHECK(g == NULL && em_errmsg()[0]);
        free(copy);
    }
    uint64_t s = 12345;
    int decoded = 0;
    for (int iter = 0; iter < 4000; iter++) {
        uint8_t *copy = malloc(enc->len);
        memcpy(copy, enc->data, enc->len);
        int flips = 1 + iter % 3;
        for (int i = 0; i < flips; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(s >> 33) % enc->len;
            copy[at] ^= (uint8_t)(1u << ((s >> 20) % 8));
        }
        em__clear_error();
        int rc = em__stage_decode(exe, copy, enc->len, &g);
        if (rc == 0) {
            decoded++;
            em__stage_graph_free(g);
        } else {
            CHECK(rc == EM_EFORMAT || rc == EM_ENOMEM);
            CHECK(g == NULL && em_errmsg()[0]);
        }
        free(copy);
    }
    CHECK_EQ_INT(em__alloc_bytes(), live); /* nothing leaked by failed decodes */
    CHECK(decoded < 4000);
}

TEST(decode_truncations_and_flips)
{
    setup();
    em_rdd *all = everything();
    em_buf enc = EM_BUF_INIT;
    /* The result stage, with an argument blob. */
    em_buf arg = EM_BUF_INIT;
    em_wire_writer w = em__job_arg_begin(&arg);
    em_wire_put_str(&w, "an argument");
    CHECK_OK(em__job_arg_end(&arg, &w));
    CHECK_OK(em__stage_encode(all, NULL, em__count_partition, arg.data, arg.len, &enc));
    fuzz_one(&enc);
    /* A map stage (the fold's shuffle: aggregator functions, zero value, range partitioner). */
    em_buf_reset(&enc);
    struct em_rdd *co = NULL;
    rdd_list l = {0};
    collect_graph(all, &l);
    for (int i = 0; i < l.n; i++)
        if (!strcmp(l.v[i]->ops->name, "CoGroupedRDD")) co = l.v[i];
    CHECK(co);
    em_shuffle_dep *dep = co->deps[0].shuffle;
    CHECK_OK(em__stage_encode(dep->parent, dep, NULL, NULL, 0, &enc));
    fuzz_one(&enc);
    /* And the whole thing runs through the executor. */
    int64_t n;
    CHECK_OK(em_rdd_count(all, &n));
    CHECK(n > 0);
    em_buf_free(&enc);
    em_buf_free(&arg);
    teardown();
}

TEST(wrong_build_id)
{
    setup();
    em_buf enc = EM_BUF_INIT;
    CHECK_OK(em__fn_encode((void (*)(void))split_words, &enc));
    CHECK_EQ_INT(enc.data[0], 1); /* by build id: this binary has one */
    enc.data[2] ^= 0x55;          /* first byte of the id */
    const uint8_t *p = enc.data;
    void (*fn)(void) = (void (*)(void))1;
    CHECK_EQ_INT(em__fn_decode(&p, enc.data + enc.len, &fn), EM_EFORMAT);
    CHECK(fn == NULL && p == enc.data);
    CHECK_MSG(strstr(em_errmsg(), "is not loaded in this process: the executor runs a different "
                                  "binary than the driver"),
              "%s", em_errmsg());
    CHECK(strstr(em_errmsg(), "build id"));

    /* The same through a whole stage: the message names the stage graph. */
    em_buf_reset(&enc);
    em_rdd *r = em_rdd_flat_map(par_lines(), split_words, NULL, 0);
    CHECK_OK(em__stage_encode(r, NULL, em__count_partition, NULL, 0, &enc));
    em_buf id = EM_BUF_INIT;
    CHECK_OK(em__fn_encode((void (*)(void))split_words, &id));
    uint8_t *at = memmem(enc.data, enc.len, id.data, 2 + id.data[1]);
    CHECK(at);
    at[5] ^= 0x01;
    em_stage_graph *g = NULL;
    CHECK_EQ_INT(em__stage_decode(exe, enc.data, enc.len, &g), EM_EFORMAT);
    CHECK(!g);
    CHECK_MSG(strstr(em_errmsg(), "stage graph") && strstr(em_errmsg(), "different binary"), "%s",
              em_errmsg());
    em_buf_free(&id);
    em_buf_free(&enc);
    teardown();
}

static int static_helper(void)
{
    return 42;
}

TEST(function_references)
{
    void (*fns[])(void) = {(void (*)(void))static_helper, (void (*)(void))split_words,
                           (void (*)(void))em_rdd_map, /* libember (static: main executable) */
                           (void (*)(void))strlen,     /* libc: a shared module */
                           (void (*)(void))qsort,         NULL};
    em_buf enc = EM_BUF_INIT;
    for (size_t i = 0; i < EM_ARRAY_LEN(fns); i++) CHECK_OK(em__fn_encode(fns[i], &enc));
    const uint8_t *p = enc.data;
    for (size_t i = 0; i < EM_ARRAY_LEN(fns); i++) {
        void (*fn)(void);
        CHECK_OK(em__fn_decode(&p, enc.data + enc.len, &fn));
        CHECK_MSG(fn == fns[i], "function %zu", i);
    }
    CHECK(p == enc.data + enc.len);
    CHECK_EQ_INT(((int (*)(void))fns[0])(), 42);
    /* Every truncation of a reference fails cleanly. */
    em_buf_reset(&enc);
    CHECK_OK(em__fn_encode((void (*)(void))static_helper, &enc));
    for (size_t len = 0; len < enc.len; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, enc.data, len);
        const uint8_t *q = copy;
        void (*fn)(void);
        CHECK_EQ_INT(em__fn_decode(&q, copy + len, &fn), EM_EFORMAT);
        CHECK(q == copy);
        free(copy);
    }
    /* An offset outside the module's code. */
    size_t idlen = enc.data[1];
    enc.len = 2 + idlen;
    em_wire_writer w = em_wire_writer_on(&enc);
    em_wire_put_uvar(&w, 0x7fffffffffffull);
    p = enc.data;
    void (*fn)(void);
    CHECK_EQ_INT(em__fn_decode(&p, enc.data + enc.len, &fn), EM_EFORMAT);
    CHECK_MSG(strstr(em_errmsg(), "outside the code"), "%s", em_errmsg());
    /* A function that is no function: data is not code. */
    static int data_item;
    CHECK_EQ_INT(em__fn_encode((void (*)(void))(void *)&data_item, &enc), EM_EINVAL);

    /* A module loaded after the table was built: libember.so of this build, when it exists
     * (EMBER_TEST_TMP is <build>/testtmp under ctest). Its functions resolve by its own id. */
    const char *tmp = getenv("EMBER_TEST_TMP");
    char so[4096];
    snprintf(so, sizeof so, "%s/../libember.so", tmp ? tmp : "/nonexistent");
    void *h = tmp ? dlopen(so, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (h) {
        void (*shared_fn)(void) = (void (*)(void))dlsym(h, "em_rdd_map");
        CHECK(shared_fn && shared_fn != (void (*)(void))em_rdd_map);
        em_buf_reset(&enc);
        CHECK_OK(em__fn_encode(shared_fn, &enc));
        p = enc.data;
        CHECK_OK(em__fn_decode(&p, enc.data + enc.len, &fn));
        CHECK(fn == shared_fn);
        em_buf main_ref = EM_BUF_INIT;
        CHECK_OK(em__fn_encode((void (*)(void))em_rdd_map, &main_ref));
        CHECK(main_ref.len != enc.len || memcmp(main_ref.data, enc.data, enc.len)); /* other id */
        em_buf_free(&main_ref);
        dlclose(h);
    } else {
        fprintf(stderr, "note: %s not loaded (%s); shared-library case not checked\n", so,
                tmp ? dlerror() : "EMBER_TEST_TMP unset");
    }
    em_buf_free(&enc);

    /* The main executable's identity, checked against readelf when it is installed. */
    const char *id = em__main_build_id();
    CHECK(strlen(id) >= 16);
    FILE *f = popen("readelf -n /proc/$PPID/exe 2>/dev/null | sed -n 's/.*Build ID: //p'", "r");
    char line[256] = "";
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = '\0';
        pclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    if (line[0]) CHECK_EQ_STR(id, line);
}

TEST(wire_primitives)
{
    em_buf b = EM_BUF_INIT;
    em_wire_writer w = em_wire_writer_on(&b);
    const uint64_t u[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX};
    const int64_t s[] = {0, -1, 1, -64, 64, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < EM_ARRAY_LEN(u); i++) em_wire_put_uvar(&w, u[i]);
    for (size_t i = 0; i < EM_ARRAY_LEN(s); i++) em_wire_put_ivar(&w, s[i]);
    em_wire_put_f64(&w, -2.5);
    em_wire_put_str(&w, NULL);
    em_wire_put_str(&w, "hello");
    em_wire_put_bytes(&w, "\0\1\2", 3);
    em_wire_put_u32(&w, 0xdeadbeef);
    CHECK_OK(w.err);
    em_wire_reader r;
    em_wire_reader_init(&r, b.data, b.len, "test");
    for (size_t i = 0; i < EM_ARRAY_LEN(u); i++) CHECK(em_wire_get_uvar(&r) == u[i]);
    for (size_t i = 0; i < EM_ARRAY_LEN(s); i++) CHECK(em_wire_get_ivar(&r) == s[i]);
    CHECK(em_wire_get_f64(&r) == -2.5);
    char *str = (char *)1;
    CHECK_OK(em_wire_get_str(&r, &str));
    CHECK(str == NULL);
    CHECK_OK(em_wire_get_str(&r, &str));
    CHECK_EQ_STR(str, "hello");
    em__free(str);
    size_t len;
    const uint8_t *bytes = em_wire_get_bytes(&r, &len);
    CHECK(len == 3 && bytes[2] == 2);
    CHECK(em_wire_get_u32(&r) == 0xdeadbeef);
    CHECK_OK(em_wire_expect_end(&r));
    CHECK_EQ_INT(em_wire_get_u8(&r), 0); /* past the end */
    CHECK_EQ_INT(r.err, EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "test: truncated"));

    /* An overlong varint, a count larger than the input, a string holding 0x00. */
    const uint8_t overlong[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02};
    em_wire_reader_init(&r, overlong, sizeof overlong, "test");
    em_wire_get_uvar(&r);
    CHECK_EQ_INT(r.err, EM_EFORMAT);
    const uint8_t count[] = {0x10, 1, 2, 3};
    em_wire_reader_init(&r, count, sizeof count, "test");
    CHECK_EQ_INT(em_wire_get_count(&r, 1, "items"), 0);
    CHECK_EQ_INT(r.err, EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "items 16 cannot fit"));
    const uint8_t nul[] = {3, 'a', 0};
    em_wire_reader_init(&r, nul, sizeof nul, "test");
    CHECK_EQ_INT(em_wire_get_str(&r, &str), EM_EFORMAT);
    CHECK(str == NULL);
    em_wire_reader_init(&r, (const uint8_t[]){5}, 1, "test");
    CHECK_EQ_INT(em_wire_get_int(&r, 0, 2, "level"), 0);
    CHECK(strstr(em_errmsg(), "level -3 is out of range"));
    em_buf_free(&b);
}

TEST(read_shuffles)
{
    setup();
    int64_t k[10], v[10];
    for (int i = 0; i < 10; i++) k[i] = i, v[i] = i;
    em_rdd *a = par_pairs(drv, k, v, 10, 2);
    int ids[8];
    CHECK_EQ_INT(em__stage_read_shuffles(a, ids, 8), 0);
    em_rdd *red = em_rdd_reduce_by_key(a, add, NULL, 0, 2);
    em_rdd *j = em_rdd_map_values(em_rdd_join(red, em_rdd_union(a, a), 2), times10, NULL, 0);
    em_rdd *u = em_rdd_union(j, em_rdd_map(red, with_one, NULL, 0));
    int n = em__stage_read_shuffles(u, ids, 8);
    CHECK_EQ_INT(n, 3); /* the join's two and reduceByKey's (read twice, listed once) */
    int want[3] = {red->deps[0].shuffle->shuffle_id};
    struct em_rdd *co = j->deps[0].rdd;
    want[1] = co->deps[0].shuffle->shuffle_id;
    want[2] = co->deps[1].shuffle->shuffle_id;
    for (int i = 0; i < 3; i++) CHECK(in_list(ids, 3, want[i]));
    CHECK_EQ_INT(em__stage_read_shuffles(u, ids, 1), 3); /* count beyond the capacity */
    teardown();
}
