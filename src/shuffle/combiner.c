/* Combining values of equal keys for the shuffle: calls of the user's aggregator
 * (create / merge_value / merge_combiners), hash-combining records into a hashed sorter (map
 * side combine in the writer, AGGREGATE in the reader), and folding adjacent equal keys of a
 * sorted merge (after spills) with merge_combiners.
 *
 * An aggregator function appends exactly one value to an em_records; anything else fails the
 * task with a message naming the function.
 *
 * Thread rule: the task thread of the owning writer or reader.
 */
#include "shuffle/shuffle_int.h"

#include "record/record_int.h"

#include <string.h>
#include <xxhash.h>

int shuf_agg_init(shuf_agg *a, const em_aggregator *agg, em_task *t)
{
    *a = (shuf_agg){.agg = agg, .t = t};
    a->scratch = em_records_new();
    if (!a->scratch) return em__set_error(EM_ENOMEM, "shuffle: aggregator buffer");
    return 0;
}

void shuf_agg_free(shuf_agg *a)
{
    em_records_free(a->scratch);
    em_buf_free(&a->pair);
    a->scratch = NULL;
}

static const char *const fn_names[] = {"createCombiner", "mergeValue", "mergeCombiners"};

/* Calls one aggregator function; *v / *vlen: its single output value (in a->scratch). */
static int agg_value(shuf_agg *a, int fn, em_value x, em_value y, const uint8_t **v, size_t *vlen)
{
    em_records_clear(a->scratch);
    int rc;
    if (fn == SHUF_AGG_CREATE)
        rc = a->agg->create(a->agg->ctx, a->t, x, a->scratch);
    else if (fn == SHUF_AGG_MERGE_VALUE)
        rc = a->agg->merge_value(a->agg->ctx, a->t, x, y, a->scratch);
    else
        rc = a->agg->merge_combiners(a->agg->ctx, a->t, x, y, a->scratch);
    if (rc < 0) {
        if (a->t->failed) return em__set_error(rc, "%s failed: %s", fn_names[fn], a->t->errmsg);
        return em__error_context(rc, "%s failed", fn_names[fn]);
    }
    int err = em_records_error(a->scratch);
    if (err) return em__set_error(err, "%s: building its output failed", fn_names[fn]);
    if (em_records_count(a->scratch) != 1)
        return em__set_error(EM_EUSER, "%s must append exactly one value, appended %zu",
                             fn_names[fn], em_records_count(a->scratch));
    *v = em_records_data(a->scratch, vlen);
    return 0;
}

int shuf_agg_pair(shuf_agg *a, int fn, const uint8_t *k, size_t klen, em_value x, em_value y)
{
    const uint8_t *v = NULL;
    size_t vlen;
    int rc = agg_value(a, fn, x, y, &v, &vlen);
    if (rc) return rc;
    a->pair.len = 0;
    return shuf_build_pair(&a->pair, k, klen, v, vlen);
}

int shuf_agg_insert(shuf_agg *a, shuf_sorter *s, uint32_t part, const uint8_t *rec, size_t len,
                    bool combiners, uint64_t hash)
{
    const uint8_t *k, *v;
    size_t klen, vlen;
    int rc = shuf_split_pair(rec, len, &k, &klen, &v, &vlen);
    if (rc) return rc;
    return shuf_agg_insert_split(a, s, part, rec, len, k, klen, v, vlen, combiners, hash);
}

int shuf_agg_insert_split(shuf_agg *a, shuf_sorter *s, uint32_t part, const uint8_t *rec,
                          size_t len, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                          bool combiners, uint64_t hash)
{
    int rc;
    if (!hash) hash = XXH3_64bits(k, klen);
    shuf_item *it = shuf_sorter_find(s, part, k, klen, hash);
    em_value val = {v, vlen, NULL};
    if (!it) {
        if (combiners) return shuf_sorter_put(s, NULL, part, hash, rec, len);
        rc = shuf_agg_pair(a, SHUF_AGG_CREATE, k, klen, val, val);
        if (rc) return rc;
        return shuf_sorter_put(s, NULL, part, hash, a->pair.data, a->pair.len);
    }
    /* The table's record has the same key (1 + klen bytes of tag and key), then the value. */
    const uint8_t *cv = it->rec + 1 + klen;
    size_t cvlen = it->len - 2 - klen;
    em_value c = {cv, cvlen, NULL};
    const uint8_t *nv = NULL;
    size_t nvlen = 0;
    rc = agg_value(a, combiners ? SHUF_AGG_MERGE_COMBINERS : SHUF_AGG_MERGE_VALUE, c, val, &nv,
                   &nvlen);
    if (rc) return rc;
    if (nvlen == cvlen) { /* the usual case (fixed-size combiners): overwrite the value */
        memcpy((uint8_t *)cv, nv, nvlen);
        return 0;
    }
    a->pair.len = 0;
    if ((rc = shuf_build_pair(&a->pair, k, klen, nv, nvlen))) return rc;
    return shuf_sorter_put(s, it, part, hash, a->pair.data, a->pair.len);
}

/* ---- folding a sorted stream ---------------------------------------------------------------- */

int shuf_combining_next(shuf_combining *c, uint32_t *part, const uint8_t **rec, size_t *len)
{
    if (c->done) return EM_DONE;
    for (;;) {
        uint32_t p;
        const uint8_t *r;
        size_t n;
        int rc = shuf_merger_next(c->m, &p, &r, &n);
        if (rc < 0) return rc;
        if (rc == EM_DONE) {
            c->done = true;
            if (!c->have_cur) return EM_DONE;
            break;
        }
        const uint8_t *k, *v;
        size_t klen, vlen;
        rc = shuf_split_pair(r, n, &k, &klen, &v, &vlen);
        if (rc) return rc;
        if (c->have_cur) {
            const uint8_t *ck, *cv;
            size_t cklen, cvlen;
            rc = shuf_split_pair(c->cur.data, c->cur.len, &ck, &cklen, &cv, &cvlen);
            if (rc) return rc;
            if (p == c->cur_part && cklen == klen && memcmp(ck, k, klen) == 0) {
                rc = shuf_agg_pair(c->agg, SHUF_AGG_MERGE_COMBINERS, k, klen,
                                   (em_value){cv, cvlen, NULL}, (em_value){v, vlen, NULL});
                if (rc) return rc;
                c->cur.len = 0;
                if (em_buf_append(&c->cur, c->agg->pair.data, c->agg->pair.len))
                    return em__set_error(EM_ENOMEM, "shuffle: combiner buffer");
                continue;
            }
            /* A new key: hand out the pending one, keep this one pending. */
            em_buf t = c->out;
            c->out = c->cur;
            c->cur = t;
            c->out_part = c->cur_part;
            c->cur.len = 0;
            if (em_buf_append(&c->cur, r, n))
                return em__set_error(EM_ENOMEM, "shuffle: combiner buffer");
            c->cur_part = p;
            *part = c->out_part;
            *rec = c->out.data;
            *len = c->out.len;
            return EM_ROW;
        }
        c->cur.len = 0;
        if (em_buf_append(&c->cur, r, n))
            return em__set_error(EM_ENOMEM, "shuffle: combiner buffer");
        c->cur_part = p;
        c->have_cur = true;
    }
    /* End of input: the pending record is the last one. */
    c->have_cur = false;
    em_buf t = c->out;
    c->out = c->cur;
    c->cur = t;
    *part = c->cur_part;
    *rec = c->out.data;
    *len = c->out.len;
    return EM_ROW;
}

void shuf_combining_free(shuf_combining *c)
{
    em_buf_free(&c->cur);
    em_buf_free(&c->out);
}
