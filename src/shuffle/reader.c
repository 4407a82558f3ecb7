/* The shuffle reduce-side reader (em_shuffle_reader_open): an em_iter over the pair records of
 * one reduce partition, gathered from the block of that partition in every map output.
 *
 * Local and remote blocks. A map output whose location is this task's executor (or has no
 * port) is local: open validates its index (magic, size, checksum, offsets against the data
 * file size); a missing or malformed file fails there, naming shuffle, map, reducer and path.
 * Any other output is remote: fetched from its executor's block server through the task's
 * block fetcher (fetch.c), requests sent ahead within ember.shuffle.reducer.maxSizeInFlight
 * bytes, the block streamed from the socket; empty blocks (size 0 in the tracker) are never
 * requested. Either way blocks are read in map order one frame at a time (blockio.c), the
 * block checksum (from the local index, or sent by the server from its index) verified as it is
 * read when ember.shuffle.checksum.enabled (EM_ECORRUPT naming the file, or the block and the
 * host:port it came from). Nothing is requested before the first next().
 *
 * Modes:
 *   AS_STORED  blocks concatenated in map order.
 *   AGGREGATE  hash-combined by key in a hashed sorter (create/merge_value, or merge_combiners
 *              when map_side_combined); past the grant the table is sorted and spilled; at the
 *              end either the table is iterated or runs are merged, folding equal keys.
 *   SORTED     buffered, sorted, spilled past the grant, merged k ways (ascending/descending).
 *   GROUPED    SORTED then adjacent equal keys grouped into (k, [v...]). A group whose values
 *              outgrow the grant goes to a spill file and is handed out as a spilled list:
 *              the record's bytes are 0x08 <key> 0x09 0x00 0x00 (the list empty) and the
 *              em_value's ext points at an em_ext_list streaming the values from disk (record
 *              layer: em_value_val of such a record carries the ext). It stays valid until the
 *              iterator's next call.
 * The input of the last three is read on the first next(); their errors come from next().
 *
 * Thread rule: the iterator belongs to the task thread that opened it.
 */
#include "shuffle/shuffle_int.h"

#include "record/record_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Group records up to this size are held whatever the grant says. */
#define SMALL_GROUP (64 * 1024)

typedef struct map_block {
    char *data_path; /* local: the data file; remote: "block shuffle_S_M_R from host:port" */
    uint64_t start, end, sum;
    bool remote;
    char *host;  /* remote: the block server */
    int exec_id; /* the executor that wrote the map output */
} map_block;

typedef struct reader {
    em_iter base;
    em_shuffle_read_spec spec;
    em_task *t;
    shuf_conf conf;
    shuf_mem mem;
    map_block *blocks;
    shuf_fetch *fetch; /* the remote blocks; NULL when all are local */
    /* block streaming */
    int cur_map;
    int fd;
    bool fr_open;
    shuf_fr fr;
    /* AGGREGATE / SORTED / GROUPED */
    bool input_done;
    bool done;
    shuf_sorter sorter;
    bool have_agg;
    shuf_agg agg;
    shuf_merger *merger;
    shuf_combining comb;
    size_t table_pos; /* AGGREGATE without spill: next table item */
    /* GROUPED */
    em_buf out;   /* the group record handed out (charged to mem) */
    bool have_la; /* a lookahead record from the merger (first of the next group) */
    const uint8_t *la;
    size_t la_len;
    shuf_spilled_list *slist;
} reader;

/* Records in the task which map output could not be read, for the DAG scheduler. */
static void note_fetch_failure(reader *r, int rc, int map)
{
    if (map < 0 || map >= r->spec.num_maps || r->t->fetch_failed.set) return;
    if (rc != EM_EFETCH && rc != EM_ECORRUPT && rc != EM_ENOENT && rc != EM_EIO && rc != EM_EFORMAT)
        return;
    r->t->fetch_failed.set = true;
    r->t->fetch_failed.shuffle_id = r->spec.shuffle_id;
    r->t->fetch_failed.map_id = map;
    r->t->fetch_failed.exec_id = r->blocks ? r->blocks[map].exec_id : 0;
}

static int ctx_error(reader *r, int rc, int map)
{
    /* A pipelined request to another server may be what failed. */
    if (rc == EM_EFETCH && shuf_fetch_failed_map(r->fetch) >= 0)
        map = shuf_fetch_failed_map(r->fetch);
    note_fetch_failure(r, rc, map);
    if (rc == EM_EFETCH) return rc; /* names shuffle, map, reducer and host:port already */
    const map_block *b = r->blocks && map >= 0 && map < r->spec.num_maps ? &r->blocks[map] : NULL;
    if (b && b->remote) /* the cause names the block and its host:port */
        return em__error_context(rc, "reading shuffle %d map %d reducer %d", r->spec.shuffle_id,
                                 map, r->spec.reducer);
    return em__error_context(rc, "reading shuffle %d map %d reducer %d (%s)", r->spec.shuffle_id,
                             map, r->spec.reducer, b && b->data_path ? b->data_path : "?");
}

static void close_block(reader *r)
{
    if (r->fr_open) {
        r->t->metrics.shuffle_bytes_read += (int64_t)r->fr.stored_read;
        shuf_fr_free(&r->fr);
        r->fr_open = false;
    }
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
}

/* The next record of the blocks, in map order: EM_ROW, EM_DONE or an error. */
static int block_next(reader *r, const uint8_t **rec, size_t *len)
{
    while (r->cur_map < r->spec.num_maps) {
        map_block *b = &r->blocks[r->cur_map];
        if (!r->fr_open && b->remote) {
            if (b->start == b->end) {
                r->cur_map++;
                continue;
            }
            uint64_t size = 0, sum = 0;
            int rc = shuf_fetch_begin(r->fetch, r->cur_map, &size, &sum);
            if (rc) return ctx_error(r, rc, r->cur_map);
            shuf_fr_init_stream(&r->fr, shuf_fetch_read, r->fetch, b->data_path, size,
                                r->conf.checksum, sum, &r->mem);
            r->fr_open = true;
        } else if (!r->fr_open) {
            if (b->start == b->end) {
                r->cur_map++;
                continue;
            }
            r->fd = open(b->data_path, O_RDONLY | O_CLOEXEC);
            if (r->fd < 0) {
                int e = errno;
                return ctx_error(r, em__set_error(-e, "cannot open: %s", strerror(e)), r->cur_map);
            }
            shuf_fr_init(&r->fr, r->fd, b->data_path, b->start, b->end, r->conf.checksum, b->sum,
                         &r->mem);
            r->fr_open = true;
        }
        int rc = shuf_fr_fill(&r->fr);
        if (rc < 0) return ctx_error(r, rc, r->cur_map);
        if (rc == EM_DONE) {
            if (b->remote && (rc = shuf_fetch_end(r->fetch)) != 0)
                return ctx_error(r, rc, r->cur_map);
            close_block(r);
            r->cur_map++;
            continue;
        }
        const uint8_t *p = r->fr.raw.data + r->fr.rpos, *end = r->fr.raw.data + r->fr.raw.len;
        size_t n = em__value_skip(p, end);
        if (n < 3 || p[0] != EM_TAG_TUPLE)
            return ctx_error(
                r,
                em__set_error(EM_ECORRUPT, "corrupt shuffle data in %s: bad record", b->data_path),
                r->cur_map);
        r->fr.rpos += n;
        r->t->metrics.shuffle_records_read++;
        *rec = p;
        *len = n;
        return EM_ROW;
    }
    return EM_DONE;
}

/* Reads all input into the sorter and prepares the output side. */
static int consume_input(reader *r)
{
    const uint8_t *rec;
    size_t len;
    int rc;
    bool agg = r->spec.mode == EM_READ_AGGREGATE;
    while ((rc = block_next(r, &rec, &len)) == EM_ROW) {
        rc = agg ? shuf_agg_insert(&r->agg, &r->sorter, 0, rec, len, r->spec.map_side_combined, 0)
                 : shuf_sorter_add(&r->sorter, 0, rec, len);
        if (rc) return ctx_error(r, rc, r->cur_map);
    }
    if (rc < 0) return rc;
    r->input_done = true;
    if (agg && r->sorter.nruns == 0) return 0; /* iterate the table */
    if (r->spec.mode == EM_READ_GROUPED && r->sorter.nruns == 0 && r->sorter.n > 0) {
        /* Grouping copies values: it needs headroom as large as the data. Without it, spill so
         * that the merge holds only run buffers and the grant is free for groups. */
        int64_t need = r->mem.used;
        if (shuf_mem_reserve(&r->mem, need))
            shuf_mem_unuse(&r->mem, need);
        else if ((rc = shuf_sorter_spill(&r->sorter)) != 0)
            return rc;
    }
    rc = shuf_sorter_finish(&r->sorter, &r->merger);
    if (rc)
        return em__error_context(rc, "shuffle %d reducer %d: merging spills", r->spec.shuffle_id,
                                 r->spec.reducer);
    r->comb.m = r->merger;
    r->comb.agg = &r->agg;
    return 0;
}

/* Room for n more bytes in r->out, charged to the grant; false when refused. */
static bool out_room(reader *r, size_t n)
{
    if (r->out.cap - r->out.len >= n) return true;
    size_t cap = r->out.cap ? r->out.cap * 2 : 256;
    while (cap < r->out.len + n) cap *= 2;
    int64_t grow = (int64_t)(cap - r->out.cap);
    if (!shuf_mem_reserve(&r->mem, grow)) {
        /* Small groups stay in memory even when the grant is exhausted (by merge buffers):
         * a spill file per small group would be absurd. */
        if (cap > SMALL_GROUP) return false;
        shuf_mem_force(&r->mem, grow);
    }
    uint8_t *d = em__realloc(r->out.data, cap);
    if (!d) {
        shuf_mem_unuse(&r->mem, grow);
        return false;
    }
    r->out.data = d;
    r->out.cap = cap;
    return true;
}

static int oom(void)
{
    return em__set_error(EM_ENOMEM, "shuffle reader: out of memory");
}

/* Builds the next group: EM_ROW with *out, EM_DONE or an error. */
static int group_next(reader *r, em_value *out)
{
    const uint8_t *rec;
    size_t len;
    uint32_t part;
    int rc;
    if (r->have_la) {
        rec = r->la;
        len = r->la_len;
        r->have_la = false;
    } else {
        rc = shuf_merger_next(r->merger, &part, &rec, &len);
        if (rc != EM_ROW) return rc;
    }
    const uint8_t *k, *v;
    size_t klen, vlen;
    if ((rc = shuf_split_pair(rec, len, &k, &klen, &v, &vlen)) != 0) return rc;
    r->out.len = 0;
    if (!out_room(r, klen + 2 + 2) && em_buf_reserve(&r->out, klen + 4)) return oom();
    r->out.data[r->out.len++] = EM_TAG_TUPLE;
    memcpy(r->out.data + r->out.len, k, klen);
    r->out.len += klen;
    r->out.data[r->out.len++] = EM_TAG_LIST;
    size_t hdr = r->out.len; /* values start here; the key is out.data[1 .. hdr-1) */
    int sfd = -1;
    shuf_fw fw;
    bool spilled = false;
    uint64_t count = 0;
    for (;;) {
        if (spilled) {
            uint8_t *p;
            if ((rc = shuf_fw_space(&fw, vlen, &p)) != 0) goto fail;
            memcpy(p, v, vlen);
        } else if (out_room(r, vlen + 2)) {
            memcpy(r->out.data + r->out.len, v, vlen);
            r->out.len += vlen;
        } else {
            /* The group outgrows the grant: move its values to a spill file. */
            sfd = shuf_spill_file(r->t->local_dir);
            if (sfd < 0) return sfd;
            rc = shuf_fw_init(&fw, sfd, "spilled group file", r->conf.spill_codec, &r->conf,
                              r->sorter.frame_size, &r->mem);
            spilled = true;
            const uint8_t *p = r->out.data + hdr, *end = r->out.data + r->out.len;
            while (rc == 0 && p < end) {
                size_t n = em__value_skip(p, end);
                uint8_t *dst;
                if ((rc = shuf_fw_space(&fw, n, &dst)) == 0) memcpy(dst, p, n);
                p += n;
            }
            if (rc) goto fail;
            r->out.len = hdr;
            continue; /* writes v through the spill path */
        }
        count++;
        rc = shuf_merger_next(r->merger, &part, &rec, &len);
        if (rc < 0) goto fail;
        if (rc == EM_DONE) break;
        const uint8_t *k2;
        size_t k2len;
        if ((rc = shuf_split_pair(rec, len, &k2, &k2len, &v, &vlen)) != 0) goto fail;
        if (k2len != hdr - 2 || memcmp(k2, r->out.data + 1, k2len) != 0) {
            r->have_la = true;
            r->la = rec;
            r->la_len = len;
            break;
        }
    }
    if (em_buf_reserve(&r->out, 2)) {
        rc = oom();
        goto fail;
    }
    r->out.data[r->out.len++] = 0; /* ends the list */
    r->out.data[r->out.len++] = 0; /* ends the pair */
    *out = (em_value){r->out.data, r->out.len, NULL};
    if (spilled) {
        uint64_t size;
        rc = shuf_fw_end_block(&fw, &size, NULL);
        shuf_fw_free(&fw);
        spilled = false;
        if (rc) goto fail;
        r->slist = shuf_spilled_list_new(sfd, size, count);
        if (!r->slist) {
            rc = oom();
            goto fail;
        }
        r->t->metrics.spill_count++;
        r->t->metrics.spill_bytes += (int64_t)size;
        out->ext = shuf_spilled_list_ext(r->slist);
    }
    return EM_ROW;
fail:
    if (spilled) shuf_fw_free(&fw);
    if (sfd >= 0) close(sfd);
    return rc;
}

static int reader_next(em_iter *it, em_value *out)
{
    reader *r = (reader *)it;
    if (r->done) return EM_DONE;
    int rc;
    const uint8_t *rec;
    size_t len;
    uint32_t part;
    if (r->spec.mode == EM_READ_AS_STORED) {
        rc = block_next(r, &rec, &len);
        goto row;
    }
    if (!r->input_done && (rc = consume_input(r)) != 0) return rc;
    shuf_spilled_list_free(r->slist);
    r->slist = NULL;
    switch (r->spec.mode) {
    case EM_READ_AGGREGATE:
        if (!r->merger) {
            if (r->table_pos >= r->sorter.n) {
                rc = EM_DONE;
                break;
            }
            shuf_item *item = &r->sorter.items[r->table_pos++];
            rec = item->rec;
            len = item->len;
            rc = EM_ROW;
        } else
            rc = shuf_combining_next(&r->comb, &part, &rec, &len);
        break;
    case EM_READ_SORTED:
        rc = shuf_merger_next(r->merger, &part, &rec, &len);
        break;
    default:
        rc = group_next(r, out);
        if (rc == EM_DONE) r->done = true;
        if (rc < 0)
            rc =
                em__error_context(rc, "shuffle %d reducer %d", r->spec.shuffle_id, r->spec.reducer);
        return rc;
    }
    if (rc < 0)
        rc = em__error_context(rc, "shuffle %d reducer %d", r->spec.shuffle_id, r->spec.reducer);
row:
    if (rc == EM_ROW)
        *out = (em_value){rec, len, NULL};
    else if (rc == EM_DONE)
        r->done = true;
    return rc;
}

static void reader_close(em_iter *it)
{
    reader *r = (reader *)it;
    close_block(r);
    shuf_fetch_close(r->fetch);
    shuf_spilled_list_free(r->slist);
    shuf_combining_free(&r->comb);
    shuf_merger_free(r->merger);
    shuf_sorter_free(&r->sorter);
    if (r->have_agg) shuf_agg_free(&r->agg);
    em_buf_free(&r->out);
    shuf_mem_release(&r->mem);
    for (int m = 0; r->blocks && m < r->spec.num_maps; m++) {
        em__free(r->blocks[m].data_path);
        em__free(r->blocks[m].host);
    }
    em__free(r->blocks);
    em__free(r);
}

/* Plans the remote blocks (non-empty, in map order) with the task's fetcher. */
static int plan_fetch(reader *r, const em_shuffle_read_spec *spec)
{
    int n = 0;
    for (int m = 0; m < spec->num_maps; m++) n += r->blocks[m].remote && r->blocks[m].end > 0;
    if (n == 0) return 0;
    if (!r->t->fetcher) {
        int m = 0;
        while (!r->blocks[m].remote || r->blocks[m].end == 0) m++;
        return em__set_error(EM_ESTATE,
                             "shuffle %d map %d is on executor %d (%s:%d) and this process has "
                             "no block fetcher",
                             spec->shuffle_id, m, spec->locs[m].exec_id, r->blocks[m].host,
                             spec->locs[m].port);
    }
    shuf_fetch_block *plan = em__calloc((size_t)n, sizeof *plan);
    if (!plan) return oom();
    n = 0;
    for (int m = 0; m < spec->num_maps; m++) {
        const map_block *b = &r->blocks[m];
        if (!b->remote || b->end == 0) continue;
        plan[n++] = (shuf_fetch_block){.map = m,
                                       .exec_id = spec->locs[m].exec_id,
                                       .host = b->host,
                                       .port = spec->locs[m].port,
                                       .size = b->end};
    }
    int64_t in_flight =
        r->t->conf ? em_conf_get_bytes(r->t->conf, "ember.shuffle.reducer.maxSizeInFlight") : 0;
    if (in_flight <= 0) in_flight = (int64_t)48 << 20;
    int rc = shuf_fetch_open(r->t->fetcher, spec->shuffle_id, spec->reducer, plan, n,
                             (uint64_t)in_flight, &r->mem, &r->fetch);
    em__free(plan);
    return rc;
}

/* Where map m's block is: a local file (index read and validated now) or a remote block. */
static int locate_block(reader *r, const em_shuffle_read_spec *spec, int m)
{
    const em_block_location *loc = &spec->locs[m];
    map_block *b = &r->blocks[m];
    b->exec_id = loc->exec_id;
    if (loc->port != 0 && loc->exec_id != r->t->exec_id) {
        int64_t size = spec->block_sizes ? spec->block_sizes[m] : -1;
        if (size < 0)
            return em__set_error(EM_EINVAL,
                                 "shuffle %d map %d is remote (%s:%d) and the read spec has no "
                                 "block size for it",
                                 spec->shuffle_id, m, loc->host ? loc->host : "", loc->port);
        char name[512];
        snprintf(name, sizeof name, "block shuffle_%d_%d_%d from %s:%d", spec->shuffle_id, m,
                 spec->reducer, loc->host ? loc->host : "", loc->port);
        b->remote = true;
        b->start = 0;
        b->end = (uint64_t)size;
        if (!(b->data_path = em__strdup(name)) ||
            !(b->host = em__strdup(loc->host ? loc->host : "")))
            return oom();
        return 0;
    }
    char path[4096], index[4096];
    const char *dir = loc->dir ? loc->dir : ".";
    em_shuffle_file_path(path, sizeof path, dir, spec->shuffle_id, m, "data");
    em_shuffle_file_path(index, sizeof index, dir, spec->shuffle_id, m, "index");
    if (!(b->data_path = em__strdup(path))) return oom();
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        return ctx_error(r, em__set_error(-e, "missing shuffle data file: %s", strerror(e)), m);
    }
    int rc =
        shuf_index_read(index, spec->reducer, (uint64_t)st.st_size, &b->start, &b->end, &b->sum);
    return rc ? ctx_error(r, rc, m) : 0;
}

int em_shuffle_reader_open(const em_shuffle_read_spec *spec, em_task *t, em_iter **out)
{
    *out = NULL;
    if (!spec || !t || spec->num_maps < 0 || (spec->num_maps > 0 && !spec->locs))
        return em__set_error(EM_EINVAL, "shuffle reader: bad spec");
    if (spec->mode == EM_READ_AGGREGATE &&
        (!spec->agg || !spec->agg->merge_combiners ||
         (!spec->map_side_combined && (!spec->agg->create || !spec->agg->merge_value))))
        return em__set_error(EM_EINVAL, "shuffle %d: AGGREGATE needs an aggregator",
                             spec->shuffle_id);
    reader *r = em__calloc(1, sizeof *r);
    if (!r) return oom();
    r->base.next = reader_next;
    r->base.close = reader_close;
    r->spec = *spec;
    r->spec.locs = NULL; /* not kept: what is needed is copied below */
    r->spec.block_sizes = NULL;
    r->t = t;
    r->fd = -1;
    shuf_mem_init(&r->mem, t);
    int rc = shuf_conf_load(&r->conf, t);
    bool agg = spec->mode == EM_READ_AGGREGATE;
    shuf_sorter_init(&r->sorter, t, &r->mem, &r->conf, SHUF_BY_PART_REC,
                     spec->descending && spec->mode != EM_READ_AGGREGATE, agg);
    if (rc == 0 && agg) {
        rc = shuf_agg_init(&r->agg, spec->agg, t);
        r->have_agg = rc == 0;
    }
    if (rc == 0) {
        r->blocks = em__calloc((size_t)(spec->num_maps ? spec->num_maps : 1), sizeof *r->blocks);
        if (!r->blocks) rc = oom();
    }
    for (int m = 0; rc == 0 && m < spec->num_maps; m++) rc = locate_block(r, spec, m);
    if (rc == 0) rc = plan_fetch(r, spec);
    if (rc) {
        reader_close(&r->base);
        return rc;
    }
    *out = &r->base;
    return 0;
}
