/* Partitioners: hash (XXH3 of the encoded key scaled to n, em_hash_partition), range (sorted upper
 * bounds found by sampling, binary search; descending mirrors the index), and modulo (int64 keys,
 * used by repartition's round robin). A partitioner is owned by its context.
 *
 * em_range_partitioner runs a sampling job over the RDD (Spark's RangePartitioner sketch):
 * each partition returns its record count and a reservoir sample of up to
 * ceil(3 * 20 * n / partitions) keys; the driver weights each sampled key by count/sample size
 * and cuts the weighted, sorted candidates into n ranges of equal weight. Driver thread; the
 * sampling tasks run on task threads (of this process or of an executor: their argument is a
 * job argument blob, see stage_codec.h).
 */
#include "rdd/rdd.h"
#include "rdd/stage_codec.h"

#include <stdlib.h>
#include <string.h>

em_partitioner *em__partitioner_new(em_context *ctx)
{
    em_partitioner *p = em__calloc(1, sizeof *p);
    if (!p) {
        em__set_error(EM_ENOMEM, "out of memory making a partitioner");
        return NULL;
    }
    pthread_mutex_lock(&ctx->mu);
    p->id = ctx->next_partitioner_id++;
    p->next_owned = ctx->partitioners;
    ctx->partitioners = p;
    pthread_mutex_unlock(&ctx->mu);
    return p;
}

em_partitioner *em_hash_partitioner(em_context *ctx, int num_partitions)
{
    if (!ctx) return NULL;
    if (num_partitions <= 0) {
        em__set_error(EM_EINVAL, "hash partitioner: number of partitions must be > 0, not %d",
                      num_partitions);
        return NULL;
    }
    em_partitioner *p = em__partitioner_new(ctx);
    if (!p) return NULL;
    p->kind = EM_PART_HASH;
    p->num_partitions = num_partitions;
    return p;
}

bool em__partitioner_equal(const em_partitioner *a, const em_partitioner *b)
{
    if (!a || !b) return false;
    if (a == b) return true;
    /* Two hash partitioners with the same count place keys identically. */
    return a->kind == EM_PART_HASH && b->kind == EM_PART_HASH &&
           a->num_partitions == b->num_partitions;
}

int em__partition_of(const em_partitioner *p, em_value key)
{
    switch (p->kind) {
    case EM_PART_HASH:
        return em_hash_partition(em_value_hash(key), p->num_partitions);
    case EM_PART_MODULO: {
        int64_t k = em_value_int64(key) % p->num_partitions;
        return (int)(k < 0 ? k + p->num_partitions : k);
    }
    case EM_PART_RANGE: {
        int lo = 0, hi = p->num_bounds; /* first bound >= key */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (em_value_cmp(p->bounds[mid], key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return p->descending ? p->num_bounds - lo : lo;
    }
    }
    return 0;
}

static int partition_cb(const void *ctx, em_value key)
{
    return em__partition_of(ctx, key);
}

em_key_partitioner em__key_partitioner(const em_partitioner *p)
{
    return (em_key_partitioner){p->num_partitions, partition_cb, p, p->kind == EM_PART_HASH};
}

/* ---- range partitioner sampling ------------------------------------------------------------ */

/* The most keys one partition samples (a bound on what a corrupt argument could ask for). */
#define MAX_SAMPLE_PER_PARTITION (1u << 24)

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Argument blob: per_partition uvar, seed u64. Result: int64 count, then the sampled keys (each
 * an encoded value). */
static int sample_partition(em_task *t, em_iter *in, em_buf *result, const void *arg)
{
    em_wire_reader rd;
    em__job_arg_reader(arg, &rd, "sortByKey sampling argument");
    uint64_t per_partition = em_wire_get_uvar(&rd);
    uint64_t seed = em_wire_get_u64(&rd);
    if (!rd.err && per_partition > MAX_SAMPLE_PER_PARTITION)
        em_wire_fail(&rd, "%llu samples per partition", (unsigned long long)per_partition);
    if (em_wire_expect_end(&rd)) return rd.err;
    size_t k = per_partition ? (size_t)per_partition : 1;
    /* Each kept key is copied into its slot's buffer, so later records can replace it. */
    em_records **slots = em__calloc(k, sizeof *slots);
    if (!slots) return EM_ENOMEM;
    uint64_t rng = seed ^ (uint64_t)t->partition * 0x2545F4914F6CDD1Dull;
    int64_t count = 0;
    int rc;
    em_value rec;
    while ((rc = in->next(in, &rec)) == EM_ROW) {
        if ((rc = em__require_pair(t, rec, "sortByKey"))) break;
        uint64_t slot = (uint64_t)count;
        if ((size_t)count >= k) slot = splitmix(&rng) % (uint64_t)(count + 1);
        count++;
        if (slot >= k) continue;
        if (!slots[slot] && !(slots[slot] = em_records_new())) {
            rc = EM_ENOMEM;
            break;
        }
        em_records_clear(slots[slot]);
        em_put_value(slots[slot], em_value_key(rec));
        if ((rc = em_records_error(slots[slot]))) break;
    }
    if (rc == EM_DONE) rc = em_buf_append(result, &count, sizeof count);
    for (size_t i = 0; !rc && i < k && i < (size_t)count; i++) {
        size_t len;
        const uint8_t *d = em_records_data(slots[i], &len);
        rc = em_buf_append(result, d, len);
    }
    for (size_t i = 0; i < k; i++) em_records_free(slots[i]);
    em__free(slots);
    return rc;
}

typedef struct candidate {
    em_value key;
    double weight;
} candidate;

typedef struct sample_state {
    em_buf keys; /* all sampled keys back to back */
    size_t *offsets;
    double *weights;
    size_t n, cap;
} sample_state;

static int sample_handler(void *arg, int partition, const uint8_t *data, size_t len)
{
    (void)partition;
    sample_state *s = arg;
    if (len < 8) return em__set_error(EM_EINTERNAL, "short sample result");
    int64_t count;
    memcpy(&count, data, 8);
    size_t pos = 8, k = 0;
    size_t first = s->n;
    while (pos < len) {
        size_t vlen;
        if (em_value_parse(data + pos, len - pos, &vlen)) return EM_EFORMAT;
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            size_t *o = em__realloc(s->offsets, cap * sizeof *o);
            if (!o) return EM_ENOMEM;
            s->offsets = o;
            double *w = em__realloc(s->weights, cap * sizeof *w);
            if (!w) return EM_ENOMEM;
            s->weights = w;
            s->cap = cap;
        }
        s->offsets[s->n++] = s->keys.len;
        if (em_buf_append(&s->keys, data + pos, vlen)) return EM_ENOMEM;
        pos += vlen;
        k++;
    }
    for (size_t i = first; i < s->n; i++) s->weights[i] = k ? (double)count / (double)k : 0;
    return 0;
}

static int cmp_candidate(const void *a, const void *b)
{
    return em_value_cmp(((const candidate *)a)->key, ((const candidate *)b)->key);
}

em_partitioner *em_range_partitioner(em_rdd *r, int num_partitions, bool ascending)
{
    if (!r) return NULL;
    if (num_partitions <= 0) {
        em__set_error(EM_EINVAL, "range partitioner: number of partitions must be > 0, not %d",
                      num_partitions);
        return NULL;
    }
    em_context *ctx = r->ctx;
    em_partitioner *p = em__partitioner_new(ctx);
    if (!p) return NULL;
    p->kind = EM_PART_RANGE;
    p->num_partitions = num_partitions;
    p->descending = !ascending;
    if (num_partitions == 1 || r->num_partitions == 0) return p;

    size_t total_sample = (size_t)EM_MIN(20.0 * num_partitions, 1e6);
    size_t per_partition =
        (total_sample * 3 + (size_t)r->num_partitions - 1) / (size_t)r->num_partitions;
    em_buf blob = EM_BUF_INIT;
    em_wire_writer w = em__job_arg_begin(&blob);
    em_wire_put_uvar(&w, per_partition);
    em_wire_put_u64(&w, 0x5eed5eedull);
    sample_state st = {0};
    candidate *cands = NULL;
    if (em__job_arg_end(&blob, &w)) goto fail;
    em_job_spec job = {.rdd = r,
                       .fn = sample_partition,
                       .fn_arg = blob.data,
                       .fn_arg_len = blob.len,
                       .handler = sample_handler,
                       .handler_arg = &st,
                       .call_site = "sortByKey (sampling)"};
    int rc = ctx->run_job(ctx, &job);
    em_buf_free(&blob);
    if (rc) goto fail;
    cands = em__calloc(st.n ? st.n : 1, sizeof *cands);
    if (!cands) {
        em__set_error(EM_ENOMEM, "out of memory sorting range bounds");
        goto fail;
    }
    double total = 0;
    for (size_t i = 0; i < st.n; i++) {
        size_t end = i + 1 < st.n ? st.offsets[i + 1] : st.keys.len;
        cands[i].key = (em_value){st.keys.data + st.offsets[i], end - st.offsets[i], NULL};
        cands[i].weight = st.weights[i];
        total += st.weights[i];
    }
    qsort(cands, st.n, sizeof *cands, cmp_candidate);
    /* Choose up to n-1 strictly increasing bounds at equal steps of cumulative weight. */
    p->bounds = em__calloc((size_t)num_partitions, sizeof *p->bounds);
    if (!p->bounds) goto fail;
    double step = total / num_partitions, cum = 0, target = step;
    int nb = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < st.n && nb < num_partitions - 1; i++) {
        cum += cands[i].weight;
        if (cum < target) continue;
        if (nb > 0 && em_value_cmp(cands[i].key, p->bounds[nb - 1]) <= 0) continue;
        p->bounds[nb++] = cands[i].key;
        bytes += cands[i].key.len;
        target += step;
    }
    p->bound_data = em__malloc(bytes ? bytes : 1);
    if (!p->bound_data) goto fail;
    size_t off = 0;
    for (int i = 0; i < nb; i++) {
        memcpy(p->bound_data + off, p->bounds[i].data, p->bounds[i].len);
        p->bounds[i].data = p->bound_data + off;
        off += p->bounds[i].len;
    }
    p->num_bounds = nb;
    em__free(cands);
    em_buf_free(&st.keys);
    em__free(st.offsets);
    em__free(st.weights);
    return p;
fail:
    em_buf_free(&blob);
    em__free(cands);
    em_buf_free(&st.keys);
    em__free(st.offsets);
    em__free(st.weights);
    return NULL;
}
