/* Task outcome codec (see task_outcome.h): what an executor reports for one task attempt.
 *
 *   i32 status | u32 n + n bytes errmsg | i64 run_ns | 10 x i64 metrics |
 *   u32 n + n bytes accumulator updates (storage/shared.h) |
 *   u32 c + c x (i32 rdd, i32 partition, i64 bytes) partitions cached |
 *   u8 fetch failed [+ i32 shuffle, i32 map, i32 executor] | u8 kind
 *   kind 1 (result): u32 n + n bytes
 *   kind 2 (map):    i32 shuffle, i32 map, i32 reducers, i64 records, i64 bytes,
 *                    reducers x i64 block size, u32 n + n bytes dir
 *   kind 3 (indirect result): i64 size (the executor keeps the bytes; GET_RESULT)
 *   kind 0: nothing (a failed task)
 * Nothing may follow. Every length is checked against the bytes that remain before use.
 */
#include "executor/task_outcome.h"

#include <string.h>

enum { KIND_NONE = 0, KIND_RESULT = 1, KIND_MAP = 2, KIND_INDIRECT = 3 };

#define NUM_METRICS ((int)(sizeof(em_task_metrics) / sizeof(int64_t)))

static int put_u32(em_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return em_buf_append(b, x, 4);
}

static int put_i64(em_buf *b, int64_t s)
{
    uint64_t v = (uint64_t)s;
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    return em_buf_append(b, x, 8);
}

static int put_bytes(em_buf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX) return em__set_error(EM_ETOOBIG, "task outcome field of %zu bytes", n);
    int rc = put_u32(b, (uint32_t)n);
    return rc ? rc : em_buf_append(b, p, n);
}

int em__task_outcome_encode(const em_task_desc *d, const char *dir, em_buf *out)
{
    size_t start = out->len;
    const char *msg = d->errmsg ? d->errmsg : "";
    int64_t m[NUM_METRICS];
    memcpy(m, &d->metrics, sizeof m);
    int rc = put_u32(out, (uint32_t)d->status);
    if (!rc) rc = put_bytes(out, msg, strlen(msg));
    if (!rc) rc = put_i64(out, d->run_ns);
    for (int i = 0; i < NUM_METRICS && !rc; i++) rc = put_i64(out, m[i]);
    if (!rc) rc = put_bytes(out, d->acc_updates.data, d->acc_updates.len);
    if (!rc) rc = put_u32(out, (uint32_t)d->num_cached);
    for (int i = 0; i < d->num_cached && !rc; i++) {
        rc = put_u32(out, (uint32_t)d->cached[i].rdd_id);
        if (!rc) rc = put_u32(out, (uint32_t)d->cached[i].partition);
        if (!rc) rc = put_i64(out, d->cached[i].bytes);
    }
    if (!rc) {
        uint8_t ff = d->fetch_failed ? 1 : 0;
        rc = em_buf_append(out, &ff, 1);
        if (!rc && ff) rc = put_u32(out, (uint32_t)d->ff_shuffle);
        if (!rc && ff) rc = put_u32(out, (uint32_t)d->ff_map);
        if (!rc && ff) rc = put_u32(out, (uint32_t)d->ff_exec);
    }
    if (!rc && d->status != 0) {
        uint8_t k = KIND_NONE;
        rc = em_buf_append(out, &k, 1);
    } else if (!rc && d->dep) {
        const em_map_status *s = &d->map_status;
        uint8_t k = KIND_MAP;
        rc = em_buf_append(out, &k, 1);
        if (!rc) rc = put_u32(out, (uint32_t)s->shuffle_id);
        if (!rc) rc = put_u32(out, (uint32_t)s->map_id);
        if (!rc) rc = put_u32(out, (uint32_t)s->num_reducers);
        if (!rc) rc = put_i64(out, s->records_written);
        if (!rc) rc = put_i64(out, s->bytes_written);
        for (int i = 0; i < s->num_reducers && !rc; i++) rc = put_i64(out, s->block_sizes[i]);
        if (!rc) rc = put_bytes(out, dir ? dir : "", dir ? strlen(dir) : 0);
    } else if (!rc && d->result_indirect) {
        uint8_t k = KIND_INDIRECT;
        rc = em_buf_append(out, &k, 1);
        if (!rc) rc = put_i64(out, d->result_size);
    } else if (!rc) {
        uint8_t k = KIND_RESULT;
        rc = em_buf_append(out, &k, 1);
        if (!rc) rc = put_bytes(out, d->result.data, d->result.len);
    }
    if (rc) {
        out->len = start;
        return rc == EM_ETOOBIG ? rc
                                : em__set_error(EM_ENOMEM, "out of memory encoding a task outcome");
    }
    return 0;
}

typedef struct reader {
    const uint8_t *p, *end;
    const char *field;
} reader;

static int need(reader *r, size_t n, const char *field)
{
    r->field = field;
    if ((size_t)(r->end - r->p) < n)
        return em__set_error(EM_EFORMAT, "task outcome truncated in field '%s'", field);
    return 0;
}

static int get_u32(reader *r, const char *field, uint32_t *v)
{
    if (need(r, 4, field)) return EM_EFORMAT;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    return 0;
}

static int get_i64(reader *r, const char *field, int64_t *v)
{
    if (need(r, 8, field)) return EM_EFORMAT;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x |= (uint64_t)r->p[i] << (8 * i);
    *v = (int64_t)x;
    r->p += 8;
    return 0;
}

static int get_bytes(reader *r, const char *field, const uint8_t **p, uint32_t *n)
{
    if (get_u32(r, field, n) || need(r, *n, field)) return EM_EFORMAT;
    *p = r->p;
    r->p += *n;
    return 0;
}

static int decode(reader *r, em_task_desc *d, char **dir)
{
    uint32_t status, n;
    const uint8_t *s;
    if (get_u32(r, "status", &status) || get_bytes(r, "errmsg", &s, &n) ||
        get_i64(r, "run_ns", &d->run_ns))
        return EM_EFORMAT;
    d->status = (int32_t)status;
    if (d->status > 0)
        return em__set_error(EM_EFORMAT, "task outcome status %d is positive", d->status);
    if (n > 0 && !(d->errmsg = em__strndup((const char *)s, n))) return EM_ENOMEM;
    int64_t m[NUM_METRICS];
    for (int i = 0; i < NUM_METRICS; i++)
        if (get_i64(r, "metrics", &m[i])) return EM_EFORMAT;
    memcpy(&d->metrics, m, sizeof m);
    if (get_bytes(r, "accumulator updates", &s, &n)) return EM_EFORMAT;
    if (em_buf_append(&d->acc_updates, s, n)) return EM_ENOMEM;
    uint32_t nc;
    if (get_u32(r, "cached count", &nc)) return EM_EFORMAT;
    if (nc > EM_ARRAY_LEN(d->cached))
        return em__set_error(EM_EFORMAT, "task outcome lists %u cached partitions (at most %zu)",
                             nc, EM_ARRAY_LEN(d->cached));
    for (uint32_t i = 0; i < nc; i++) {
        uint32_t rdd, part;
        if (get_u32(r, "cached rdd", &rdd) || get_u32(r, "cached partition", &part) ||
            get_i64(r, "cached bytes", &d->cached[i].bytes))
            return EM_EFORMAT;
        d->cached[i].rdd_id = (int)rdd;
        d->cached[i].partition = (int)part;
    }
    d->num_cached = (int)nc;
    if (need(r, 1, "fetch failed")) return EM_EFORMAT;
    uint8_t ff = *r->p++;
    if (ff > 1) return em__set_error(EM_EFORMAT, "task outcome: fetch-failed flag %u", ff);
    if (ff) {
        uint32_t sh, map, ex;
        if (get_u32(r, "fetch failed shuffle", &sh) || get_u32(r, "fetch failed map", &map) ||
            get_u32(r, "fetch failed executor", &ex))
            return EM_EFORMAT;
        d->fetch_failed = true;
        d->ff_shuffle = (int)sh;
        d->ff_map = (int)map;
        d->ff_exec = (int)ex;
    }
    if (need(r, 1, "kind")) return EM_EFORMAT;
    uint8_t kind = *r->p++;
    if (kind == KIND_RESULT) {
        if (get_bytes(r, "result", &s, &n)) return EM_EFORMAT;
        if (em_buf_append(&d->result, s, n)) return EM_ENOMEM;
    } else if (kind == KIND_INDIRECT) {
        if (get_i64(r, "result size", &d->result_size)) return EM_EFORMAT;
        if (d->result_size < 0)
            return em__set_error(EM_EFORMAT, "task outcome: negative result size");
        d->result_indirect = true;
    } else if (kind == KIND_MAP) {
        em_map_status *ms = &d->map_status;
        uint32_t sh, map, red;
        if (get_u32(r, "shuffle_id", &sh) || get_u32(r, "map_id", &map) ||
            get_u32(r, "num_reducers", &red) ||
            get_i64(r, "records_written", &ms->records_written) ||
            get_i64(r, "bytes_written", &ms->bytes_written))
            return EM_EFORMAT;
        if (red > (uint32_t)((r->end - r->p) / 8) || red > INT32_MAX)
            return em__set_error(EM_EFORMAT, "task outcome: %u reducers do not fit the message",
                                 red);
        ms->shuffle_id = (int)sh;
        ms->map_id = (int)map;
        ms->num_reducers = (int)red;
        ms->block_sizes = em__calloc(red ? red : 1, sizeof *ms->block_sizes);
        if (!ms->block_sizes) return EM_ENOMEM;
        for (uint32_t i = 0; i < red; i++)
            if (get_i64(r, "block_sizes", &ms->block_sizes[i])) return EM_EFORMAT;
        if (get_bytes(r, "dir", &s, &n)) return EM_EFORMAT;
        if (!(*dir = em__strndup((const char *)s, n))) return EM_ENOMEM;
    } else if (kind != KIND_NONE) {
        return em__set_error(EM_EFORMAT, "task outcome kind %u is unknown", kind);
    }
    if (r->p != r->end)
        return em__set_error(EM_EFORMAT, "task outcome has %zu bytes after its last field",
                             (size_t)(r->end - r->p));
    return 0;
}

int em__task_outcome_decode(const uint8_t *p, size_t len, em_task_desc *d, char **dir)
{
    reader r = {p, p + len, ""};
    *dir = NULL;
    int rc = decode(&r, d, dir);
    if (rc) {
        em__free(d->errmsg);
        d->errmsg = NULL;
        em_buf_free(&d->result);
        em_buf_free(&d->acc_updates);
        em_map_status_clear(&d->map_status);
        em__free(*dir);
        *dir = NULL;
        if (rc == EM_ENOMEM) em__set_error(rc, "out of memory decoding a task outcome");
    }
    return rc;
}
