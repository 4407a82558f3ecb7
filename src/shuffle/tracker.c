/* The map output tracker (see tracker.h): a table shuffle id -> per-map (location, block
 * sizes). Owned by the driver's context (and, filled by the codec, by each executor); any
 * thread; one mutex guards everything. Lookups copy what they return so callers never hold
 * pointers into the table.
 *
 * Encoded table (em_map_outputs_encode / em_map_outputs_decode_into; all integers
 * little-endian; docs/formats.md "Map output table"):
 *
 *   offset  size   field
 *   0       4      magic "EMO1"
 *   4       4      S: number of shuffles (u32)
 *   then S times:
 *           4      shuffle_id (i32, >= 0)
 *           4      num_maps (u32, <= 2^24)
 *           4      P: outputs present (u32, <= num_maps)
 *           then P times:
 *             4    map_id (u32, < num_maps)
 *             4    exec_id (i32)
 *             4    port (u32, <= 65535)
 *             4+n  host: u32 n (<= 1024) + n bytes, no NUL
 *             4+n  dir: u32 n (<= 4096) + n bytes, no NUL
 *             4    R: num_reducers (u32, 1 .. 2^24)
 *             8*R  block sizes (i64, >= 0)
 * Nothing follows the last shuffle. A shuffle listed twice is an error, and so is a table whose
 * shuffles have more than 2^24 maps in all (what it may make the tracker allocate is bounded).
 */
#include "shuffle/tracker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CODEC_MAGIC    "EMO1"
#define MAX_MAPS       (1u << 24)
#define MAX_REDUCERS   (1u << 24)
#define MAX_HOST_LEN   1024u
#define MAX_DIR_LEN    4096u
#define MAX_TABLE_SIZE ((size_t)1 << 31)

typedef struct map_output {
    bool present;
    int exec_id, port;
    char *host, *dir;
    int64_t *block_sizes;
    int num_reducers;
} map_output;

typedef struct shuffle_entry {
    int shuffle_id, num_maps;
    map_output *maps;
    struct shuffle_entry *next;
} shuffle_entry;

struct em_map_output_tracker {
    pthread_mutex_t mu;
    shuffle_entry *shuffles;
};

em_map_output_tracker *em_map_output_tracker_new(void)
{
    em_map_output_tracker *tr = em__calloc(1, sizeof *tr);
    if (tr) pthread_mutex_init(&tr->mu, NULL);
    return tr;
}

static void clear_output(map_output *m)
{
    em__free(m->host);
    em__free(m->dir);
    em__free(m->block_sizes);
    memset(m, 0, sizeof *m);
}

void em_map_output_tracker_free(em_map_output_tracker *tr)
{
    if (!tr) return;
    shuffle_entry *s = tr->shuffles;
    while (s) {
        shuffle_entry *next = s->next;
        for (int i = 0; i < s->num_maps; i++) clear_output(&s->maps[i]);
        em__free(s->maps);
        em__free(s);
        s = next;
    }
    pthread_mutex_destroy(&tr->mu);
    em__free(tr);
}

static shuffle_entry *find(em_map_output_tracker *tr, int shuffle_id)
{
    for (shuffle_entry *s = tr->shuffles; s; s = s->next)
        if (s->shuffle_id == shuffle_id) return s;
    return NULL;
}

/* Declares a shuffle (tr->mu held). NULL on out of memory. */
static shuffle_entry *add_shuffle(em_map_output_tracker *tr, int shuffle_id, int num_maps)
{
    shuffle_entry *s = em__calloc(1, sizeof *s);
    map_output *maps = em__calloc((size_t)(num_maps > 0 ? num_maps : 1), sizeof *maps);
    if (!s || !maps) {
        em__free(s);
        em__free(maps);
        return NULL;
    }
    s->shuffle_id = shuffle_id;
    s->num_maps = num_maps;
    s->maps = maps;
    s->next = tr->shuffles;
    tr->shuffles = s;
    return s;
}

int em_map_outputs_register_shuffle(em_map_output_tracker *tr, int shuffle_id, int num_maps)
{
    pthread_mutex_lock(&tr->mu);
    int rc = 0;
    if (!find(tr, shuffle_id) && !add_shuffle(tr, shuffle_id, num_maps))
        rc = em__set_error(EM_ENOMEM, "map output tracker: out of memory");
    pthread_mutex_unlock(&tr->mu);
    return rc;
}

/* Copies the strings of a location into a fresh output (not yet in the table). */
static int copy_location(map_output *m, int exec_id, const char *host, size_t host_len, int port,
                         const char *dir, size_t dir_len)
{
    *m = (map_output){.present = true, .exec_id = exec_id, .port = port};
    m->host = em__strndup(host ? host : "", host ? host_len : 0);
    m->dir = em__strndup(dir ? dir : "", dir ? dir_len : 0);
    if (!m->host || !m->dir) {
        clear_output(m);
        return em__set_error(EM_ENOMEM, "map output tracker: out of memory");
    }
    return 0;
}

int em_map_outputs_register(em_map_output_tracker *tr, int shuffle_id, int map_id,
                            const em_block_location *loc, em_map_status *st)
{
    if (!loc || !st) return em__set_error(EM_EINVAL, "em_map_outputs_register: no location");
    map_output fresh;
    int rc = copy_location(&fresh, loc->exec_id, loc->host, loc->host ? strlen(loc->host) : 0,
                           loc->port, loc->dir, loc->dir ? strlen(loc->dir) : 0);
    if (rc) return rc;
    pthread_mutex_lock(&tr->mu);
    shuffle_entry *s = find(tr, shuffle_id);
    if (!s || map_id < 0 || map_id >= s->num_maps) {
        pthread_mutex_unlock(&tr->mu);
        clear_output(&fresh);
        return em__set_error(EM_ESTATE, "map output %d of unknown shuffle %d", map_id, shuffle_id);
    }
    map_output *m = &s->maps[map_id];
    clear_output(m);
    *m = fresh;
    m->block_sizes = st->block_sizes;
    m->num_reducers = st->num_reducers;
    st->block_sizes = NULL;
    pthread_mutex_unlock(&tr->mu);
    return 0;
}

void em_map_outputs_unregister(em_map_output_tracker *tr, int shuffle_id, int map_id)
{
    pthread_mutex_lock(&tr->mu);
    shuffle_entry *s = find(tr, shuffle_id);
    if (s && map_id >= 0 && map_id < s->num_maps) clear_output(&s->maps[map_id]);
    pthread_mutex_unlock(&tr->mu);
}

int em_map_outputs_unregister_executor(em_map_output_tracker *tr, int exec_id)
{
    pthread_mutex_lock(&tr->mu);
    int n = 0;
    for (shuffle_entry *s = tr->shuffles; s; s = s->next)
        for (int i = 0; i < s->num_maps; i++)
            if (s->maps[i].present && s->maps[i].exec_id == exec_id) {
                clear_output(&s->maps[i]);
                n++;
            }
    pthread_mutex_unlock(&tr->mu);
    return n;
}

int em_map_outputs_missing(em_map_output_tracker *tr, int shuffle_id, int *out, int cap)
{
    pthread_mutex_lock(&tr->mu);
    shuffle_entry *s = find(tr, shuffle_id);
    int n = -1;
    if (s) {
        n = 0;
        for (int i = 0; i < s->num_maps; i++) {
            if (s->maps[i].present) continue;
            if (n < cap) out[n] = i;
            n++;
        }
    }
    pthread_mutex_unlock(&tr->mu);
    return n;
}

void em_map_locations_free(em_map_locations *l)
{
    if (!l) return;
    for (int i = 0; l->locs && i < l->num_maps; i++) {
        em__free((char *)l->locs[i].host);
        em__free((char *)l->locs[i].dir);
    }
    em__free(l->locs);
    em__free(l->sizes);
    memset(l, 0, sizeof *l);
}

int em_map_outputs_locations(em_map_output_tracker *tr, int shuffle_id, int reducer,
                             em_map_locations *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&tr->mu);
    shuffle_entry *s = find(tr, shuffle_id);
    int rc = 0;
    if (!s) {
        rc = em__set_error(EM_ESTATE, "shuffle %d has no registered outputs", shuffle_id);
        goto out;
    }
    size_t n = (size_t)(s->num_maps ? s->num_maps : 1);
    out->num_maps = s->num_maps;
    out->locs = em__calloc(n, sizeof *out->locs);
    if (reducer >= 0) out->sizes = em__calloc(n, sizeof *out->sizes);
    if (!out->locs || (reducer >= 0 && !out->sizes)) {
        rc = em__set_error(EM_ENOMEM, "map output tracker: out of memory");
        goto out;
    }
    for (int i = 0; i < s->num_maps; i++) {
        const map_output *m = &s->maps[i];
        if (!m->present) {
            rc = em__set_error(EM_ESTATE, "shuffle %d: output of map %d is missing", shuffle_id, i);
            break;
        }
        if (reducer >= m->num_reducers) {
            rc = em__set_error(EM_ESTATE, "shuffle %d: output of map %d has %d reducers, not %d",
                               shuffle_id, i, m->num_reducers, reducer + 1);
            break;
        }
        em_block_location *l = &out->locs[i];
        l->exec_id = m->exec_id;
        l->port = m->port;
        l->host = em__strdup(m->host);
        l->dir = em__strdup(m->dir);
        if (!l->host || !l->dir) {
            rc = em__set_error(EM_ENOMEM, "map output tracker: out of memory");
            break;
        }
        if (reducer >= 0) out->sizes[i] = m->block_sizes[reducer];
    }
out:
    pthread_mutex_unlock(&tr->mu);
    if (rc) em_map_locations_free(out);
    return rc;
}

int64_t em_map_outputs_reducer_bytes(em_map_output_tracker *tr, int shuffle_id, int reducer)
{
    pthread_mutex_lock(&tr->mu);
    int64_t total = 0;
    shuffle_entry *s = find(tr, shuffle_id);
    for (int i = 0; s && i < s->num_maps; i++)
        if (s->maps[i].present && reducer >= 0 && reducer < s->maps[i].num_reducers) {
            int64_t b = s->maps[i].block_sizes[reducer]; /* >= 0; saturate, never overflow */
            total = b > INT64_MAX - total ? INT64_MAX : total + b;
        }
    pthread_mutex_unlock(&tr->mu);
    return total;
}

/* ---- codec ------------------------------------------------------------------------------- */

static int put_u32(em_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return em_buf_append(b, x, 4);
}

static int put_u64(em_buf *b, uint64_t v)
{
    int rc = put_u32(b, (uint32_t)v);
    return rc ? rc : put_u32(b, (uint32_t)(v >> 32));
}

static int put_str(em_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    int rc = put_u32(b, (uint32_t)n);
    return rc ? rc : em_buf_append(b, s, n);
}

int em_map_outputs_encode(em_map_output_tracker *tr, const int *shuffle_ids, int n, em_buf *out)
{
    size_t before = out->len;
    pthread_mutex_lock(&tr->mu);
    int rc = em_buf_append(out, CODEC_MAGIC, 4);
    if (rc == 0) rc = put_u32(out, (uint32_t)(n > 0 ? n : 0));
    for (int k = 0; rc == 0 && k < n; k++) {
        for (int j = 0; j < k && rc == 0; j++)
            if (shuffle_ids[j] == shuffle_ids[k])
                rc = em__set_error(EM_EINVAL, "encoding map outputs: shuffle %d asked twice",
                                   shuffle_ids[k]);
        shuffle_entry *s = find(tr, shuffle_ids[k]);
        if (rc) break;
        if (!s) {
            rc = em__set_error(EM_ESTATE, "encoding map outputs: shuffle %d is unknown",
                               shuffle_ids[k]);
            break;
        }
        uint32_t present = 0;
        for (int i = 0; i < s->num_maps; i++) present += s->maps[i].present;
        rc = put_u32(out, (uint32_t)s->shuffle_id);
        if (rc == 0) rc = put_u32(out, (uint32_t)s->num_maps);
        if (rc == 0) rc = put_u32(out, present);
        for (int i = 0; rc == 0 && i < s->num_maps; i++) {
            const map_output *m = &s->maps[i];
            if (!m->present) continue;
            rc = put_u32(out, (uint32_t)i);
            if (rc == 0) rc = put_u32(out, (uint32_t)m->exec_id);
            if (rc == 0) rc = put_u32(out, (uint32_t)m->port);
            if (rc == 0) rc = put_str(out, m->host);
            if (rc == 0) rc = put_str(out, m->dir);
            if (rc == 0) rc = put_u32(out, (uint32_t)m->num_reducers);
            for (int r = 0; rc == 0 && r < m->num_reducers; r++)
                rc = put_u64(out, (uint64_t)m->block_sizes[r]);
        }
    }
    pthread_mutex_unlock(&tr->mu);
    if (rc) {
        out->len = before;
        if (rc == EM_ENOMEM) em__set_error(rc, "encoding map outputs: out of memory");
    }
    return rc;
}

/* A bounds-checked cursor over untrusted bytes. */
typedef struct cursor {
    const uint8_t *p;
    size_t left;
} cursor;

static int bad(const char *what)
{
    return em__set_error(EM_EFORMAT, "map output table: %s", what);
}

static int get_u32(cursor *c, uint32_t *v, const char *what)
{
    *v = 0;
    if (c->left < 4) return em__set_error(EM_EFORMAT, "map output table: truncated at %s", what);
    *v = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 |
         (uint32_t)c->p[3] << 24;
    c->p += 4;
    c->left -= 4;
    return 0;
}

static int get_str(cursor *c, const char **s, uint32_t *n, uint32_t max, const char *what)
{
    *s = NULL;
    int rc = get_u32(c, n, what);
    if (rc) return rc;
    if (*n > max)
        return em__set_error(EM_EFORMAT, "map output table: %s of %u bytes (limit %u)", what, *n,
                             max);
    if (*n > c->left) return em__set_error(EM_EFORMAT, "map output table: truncated %s", what);
    if (memchr(c->p, 0, *n)) return em__set_error(EM_EFORMAT, "map output table: NUL in %s", what);
    *s = (const char *)c->p;
    c->p += *n;
    c->left -= *n;
    return 0;
}

/* One map output record, parsed (views into the input). */
typedef struct parsed_output {
    uint32_t map_id, num_reducers, host_len, dir_len;
    int exec_id, port;
    const char *host, *dir;
    const uint8_t *sizes; /* 8 * num_reducers bytes */
} parsed_output;

static int parse_output(cursor *c, uint32_t num_maps, parsed_output *o)
{
    uint32_t v;
    int rc;
    if ((rc = get_u32(c, &o->map_id, "map id")) != 0) return rc;
    if (o->map_id >= num_maps) return bad("map id beyond the shuffle's maps");
    if ((rc = get_u32(c, &v, "executor id")) != 0) return rc;
    o->exec_id = (int32_t)v;
    if ((rc = get_u32(c, &v, "port")) != 0) return rc;
    if (v > 65535) return bad("port out of range");
    o->port = (int)v;
    if ((rc = get_str(c, &o->host, &o->host_len, MAX_HOST_LEN, "host")) != 0) return rc;
    if ((rc = get_str(c, &o->dir, &o->dir_len, MAX_DIR_LEN, "directory")) != 0) return rc;
    if ((rc = get_u32(c, &o->num_reducers, "reducer count")) != 0) return rc;
    if (o->num_reducers == 0 || o->num_reducers > MAX_REDUCERS)
        return bad("reducer count out of range");
    if ((size_t)o->num_reducers * 8 > c->left) return bad("truncated block sizes");
    o->sizes = c->p;
    for (uint32_t r = 0; r < o->num_reducers; r++)
        if (o->sizes[8 * (size_t)r + 7] & 0x80) return bad("negative block size");
    c->p += (size_t)o->num_reducers * 8;
    c->left -= (size_t)o->num_reducers * 8;
    return 0;
}

/* Walks the table; with apply, registers it (tr->mu held). Validation (apply false) finds
 * every error, so applying can only fail for memory. ids (validation only): room for the
 * shuffle ids, to check they are distinct; NULL when applying. */
static int walk_table(em_map_output_tracker *tr, const uint8_t *p, size_t len, bool apply,
                      uint32_t **ids_out, uint32_t *n_out)
{
    uint32_t *ids = NULL;
    cursor c = {p, len};
    if (len > MAX_TABLE_SIZE) return bad("larger than 2 GiB");
    if (len < 4 || memcmp(p, CODEC_MAGIC, 4) != 0) return bad("bad magic");
    c.p += 4;
    c.left -= 4;
    uint32_t nshuffles;
    int rc = get_u32(&c, &nshuffles, "shuffle count");
    if (rc) return rc;
    if (nshuffles > c.left / 12) return bad("shuffle count beyond the bytes that remain");
    if (ids_out) {
        ids = *ids_out = em__malloc((size_t)(nshuffles ? nshuffles : 1) * sizeof *ids);
        if (!ids) return em__set_error(EM_ENOMEM, "map output tracker: out of memory");
        *n_out = nshuffles;
    }
    uint64_t total_maps = 0; /* bounds what a table can make the tracker allocate */
    for (uint32_t k = 0; k < nshuffles; k++) {
        uint32_t sid, num_maps, present;
        if ((rc = get_u32(&c, &sid, "shuffle id")) != 0) return rc;
        if ((rc = get_u32(&c, &num_maps, "map count")) != 0) return rc;
        if ((rc = get_u32(&c, &present, "present count")) != 0) return rc;
        if (sid > INT32_MAX) return bad("negative shuffle id");
        if (num_maps > MAX_MAPS) return bad("map count out of range");
        if ((total_maps += num_maps) > MAX_MAPS)
            return bad("more maps in all than one shuffle may have");
        if (present > num_maps) return bad("more outputs present than maps");
        if (ids) ids[k] = sid;
        shuffle_entry *s = find(tr, (int)sid);
        if (s && s->num_maps != (int)num_maps)
            return em__set_error(EM_EFORMAT,
                                 "map output table: shuffle %u has %u maps here, %d registered",
                                 sid, num_maps, s->num_maps);
        if (apply && !s) {
            if (!(s = add_shuffle(tr, (int)sid, (int)num_maps))) /* zeroed: nothing to clear */
                return em__set_error(EM_ENOMEM, "map output tracker: out of memory");
        } else if (apply) {
            for (int i = 0; i < s->num_maps; i++) clear_output(&s->maps[i]);
        }
        for (uint32_t i = 0; i < present; i++) {
            parsed_output o;
            if ((rc = parse_output(&c, num_maps, &o)) != 0) return rc;
            if (!apply) continue;
            map_output *m = &s->maps[o.map_id];
            clear_output(m);
            int64_t *sizes = em__malloc((size_t)o.num_reducers * sizeof *sizes);
            if (!sizes ||
                copy_location(m, o.exec_id, o.host, o.host_len, o.port, o.dir, o.dir_len) != 0) {
                em__free(sizes);
                return em__set_error(EM_ENOMEM, "map output tracker: out of memory");
            }
            for (uint32_t r = 0; r < o.num_reducers; r++) {
                uint64_t v = 0;
                for (int b = 7; b >= 0; b--) v = v << 8 | o.sizes[8 * (size_t)r + (size_t)b];
                sizes[r] = (int64_t)v;
            }
            m->block_sizes = sizes;
            m->num_reducers = (int)o.num_reducers;
        }
    }
    if (c.left != 0)
        return em__set_error(EM_EFORMAT, "map output table: %zu bytes after the last shuffle",
                             c.left);
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int em_map_outputs_decode_into(em_map_output_tracker *tr, const uint8_t *p, size_t len)
{
    if (!p) return bad("no bytes");
    uint32_t *ids = NULL, n = 0;
    pthread_mutex_lock(&tr->mu);
    int rc = walk_table(tr, p, len, false, &ids, &n);
    if (rc == 0 && n > 1) {
        qsort(ids, n, sizeof *ids, cmp_u32);
        for (uint32_t i = 1; i < n && rc == 0; i++)
            if (ids[i] == ids[i - 1])
                rc = em__set_error(EM_EFORMAT, "map output table: shuffle %u is listed twice",
                                   ids[i]);
    }
    if (rc == 0) rc = walk_table(tr, p, len, true, NULL, NULL);
    pthread_mutex_unlock(&tr->mu);
    em__free(ids);
    return rc;
}
