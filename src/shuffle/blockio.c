/* Framed, compressed streams of the shuffle (data blocks, spill runs, spilled lists), the
 * memory accounting of one writer/reader, and small file helpers.
 *
 * Frame layout (all integers little-endian), the unit of compression:
 *   offset  size        field
 *   0       4           raw_len    payload length after decompression (> 0)
 *   4       4           stored_len payload length as stored
 *   8       1           codec      0 none, 1 lz4, 2 zstd (a frame that does not shrink is
 *                                  stored with codec 0)
 *   9       stored_len  payload
 * A block (one reducer's part of a data file) is frames back to back; its XXH3-64 checksum,
 * over the stored bytes (headers included), is kept in the index. The raw payload of a data
 * block is encoded pair records back to back; no record spans two frames, so a reader holds
 * one frame (about ember.shuffle.file.buffer bytes) at a time.
 *
 * A frame reader reads a region of a file with pread, or a stream (a block being fetched from
 * another process, fetch.c) front to back: the frame checks and the checksum are the same.
 *
 * Thread rule: a shuf_fw / shuf_fr belongs to the task thread of its writer or reader.
 */
#include "shuffle/shuffle_int.h"

#include "record/record_int.h"
#include "storage/memory.h"

#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

/* ---- configuration ---------------------------------------------------------------------- */

int shuf_conf_load(shuf_conf *c, const em_task *t)
{
    *c = (shuf_conf){.codec = SHUF_CODEC_LZ4,
                     .spill_codec = SHUF_CODEC_LZ4,
                     .zstd_level = 1,
                     .file_buffer = 32768,
                     .checksum = true};
    if (!t || !t->conf) return 0;
    const char *codec = em_conf_get_str(t->conf, "ember.io.compression.codec");
    if (codec && *codec) {
        if (strcmp(codec, "lz4") == 0)
            c->codec = SHUF_CODEC_LZ4;
        else if (strcmp(codec, "zstd") == 0)
            c->codec = SHUF_CODEC_ZSTD;
        else if (strcmp(codec, "none") == 0)
            c->codec = SHUF_CODEC_NONE;
        else
            return em__set_error(EM_ECONF,
                                 "ember.io.compression.codec: unknown codec '%s' "
                                 "(lz4, zstd or none)",
                                 codec);
    }
    int64_t level = em_conf_get_int(t->conf, "ember.io.compression.zstd.level");
    if (level != 0) c->zstd_level = (int)level;
    int64_t buf = em_conf_get_bytes(t->conf, "ember.shuffle.file.buffer");
    if (buf > 0) c->file_buffer = (size_t)EM_MIN(buf, (int64_t)64 << 20);
    c->checksum = em_conf_get_bool(t->conf, "ember.shuffle.checksum.enabled");
    c->spill_codec = c->codec;
    if (!em_conf_get_bool(t->conf, "ember.shuffle.compress")) c->codec = SHUF_CODEC_NONE;
    if (!em_conf_get_bool(t->conf, "ember.shuffle.spill.compress"))
        c->spill_codec = SHUF_CODEC_NONE;
    return 0;
}

/* ---- memory accounting -------------------------------------------------------------------- */

void shuf_mem_init(shuf_mem *m, em_task *t)
{
    *m = (shuf_mem){.t = t};
    int64_t pool = t->memory ? em_memory_execution_pool(t->memory) : 0;
    m->chunk = EM_MAX((int64_t)4096, EM_MIN(pool / 16, (int64_t)1 << 20));
}

static void note_peak(shuf_mem *m)
{
    int64_t p = EM_MAX(m->used, m->granted);
    if (p > m->t->metrics.peak_execution_memory) m->t->metrics.peak_execution_memory = p;
}

bool shuf_mem_reserve(shuf_mem *m, int64_t bytes)
{
    if (m->used + bytes > m->granted && m->t->memory) {
        int64_t ask = EM_MAX(m->used + bytes - m->granted, m->chunk);
        m->granted += em_memory_acquire_execution(m->t->memory, m->t->task_id, ask);
    }
    if (m->used + bytes > m->granted && !m->forcing) return false;
    m->used += bytes;
    note_peak(m);
    return true;
}

void shuf_mem_force(shuf_mem *m, int64_t bytes)
{
    if (!shuf_mem_reserve(m, bytes)) {
        m->used += bytes;
        note_peak(m);
    }
}

void shuf_mem_unuse(shuf_mem *m, int64_t bytes)
{
    m->used -= EM_MIN(bytes, m->used);
}

void shuf_mem_release(shuf_mem *m)
{
    if (m->granted > 0 && m->t->memory)
        em_memory_release_execution(m->t->memory, m->t->task_id, m->granted);
    m->granted = 0;
    m->used = 0;
}

size_t shuf_frame_size(const shuf_mem *m, const shuf_conf *c)
{
    int64_t pool = m->t->memory ? em_memory_execution_pool(m->t->memory) : (int64_t)1 << 30;
    int64_t f = EM_MAX((int64_t)4096, EM_MIN(pool / 16, (int64_t)c->file_buffer));
    return (size_t)f;
}

/* Grows b to hold need bytes, charging the growth to mem (when given). */
static int buf_fit(em_buf *b, size_t need, shuf_mem *mem, int64_t *charged)
{
    if (b->cap >= need) return 0;
    size_t old = b->cap;
    if (em_buf_reserve(b, need - b->len)) return em__set_error(EM_ENOMEM, "shuffle buffer");
    if (mem) shuf_mem_force(mem, (int64_t)(b->cap - old));
    *charged += (int64_t)(b->cap - old);
    return 0;
}

/* ---- files ---------------------------------------------------------------------------------- */

int shuf_write_all(int fd, const void *p, size_t n, const char *path)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = write(fd, q, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            return em__set_error(-e, "writing %s: %s", path, strerror(e));
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

int shuf_pread_all(int fd, void *p, size_t n, uint64_t off, const char *path)
{
    uint8_t *q = p;
    while (n > 0) {
        ssize_t r = pread(fd, q, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            return em__set_error(-e, "reading %s: %s", path, strerror(e));
        }
        if (r == 0)
            return em__set_error(EM_ECORRUPT, "reading %s: unexpected end of file at offset %llu",
                                 path, (unsigned long long)off);
        q += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int shuf_spill_file(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/ember-spill-XXXXXX", dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        int e = errno;
        return em__set_error(-e, "creating spill file %s: %s", path, strerror(e));
    }
    unlink(path); /* the file lives as long as fd: nothing is left behind, even on a crash */
    return fd;
}

/* ---- pairs --------------------------------------------------------------------------------- */

int shuf_split_pair(const uint8_t *rec, size_t len, const uint8_t **k, size_t *klen,
                    const uint8_t **v, size_t *vlen)
{
    *k = *v = NULL;
    *klen = *vlen = 0;
    const uint8_t *end = rec + len;
    if (len < 4 || rec[0] != EM_TAG_TUPLE || end[-1] != 0) goto bad;
    const uint8_t *p = rec + 1;
    size_t a = em__value_skip(p, end);
    if (a == 0 || p + a >= end - 1) goto bad;
    size_t b = em__value_skip(p + a, end);
    if (b == 0 || p + a + b != end - 1) goto bad;
    *k = p;
    *klen = a;
    *v = p + a;
    *vlen = b;
    return 0;
bad:
    return em__set_error(EM_EFORMAT, "shuffle: record of %zu bytes is not a (key, value) pair",
                         len);
}

int shuf_build_pair(em_buf *b, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    if (em_buf_reserve(b, klen + vlen + 2)) return em__set_error(EM_ENOMEM, "shuffle pair");
    b->data[b->len++] = EM_TAG_TUPLE;
    memcpy(b->data + b->len, k, klen);
    b->len += klen;
    memcpy(b->data + b->len, v, vlen);
    b->len += vlen;
    b->data[b->len++] = 0;
    return 0;
}

/* ---- frame writer -------------------------------------------------------------------------- */

int shuf_fw_init(shuf_fw *w, int fd, const char *path, int codec, const shuf_conf *c,
                 size_t frame_size, shuf_mem *mem)
{
    *w = (shuf_fw){.fd = fd,
                   .path = path,
                   .codec = codec,
                   .level = c->zstd_level,
                   .frame_size = frame_size,
                   .mem = mem};
    w->xs = XXH3_createState();
    if (!w->xs) return em__set_error(EM_ENOMEM, "shuffle: checksum state");
    XXH3_64bits_reset(w->xs);
    if (w->codec == SHUF_CODEC_ZSTD) {
        w->zctx = ZSTD_createCCtx();
        if (!w->zctx) return em__set_error(EM_ENOMEM, "shuffle: zstd context");
    }
    return buf_fit(&w->raw, frame_size, mem, &w->charged);
}

static int fw_flush(shuf_fw *w)
{
    if (w->raw.len == 0) return 0;
    size_t raw = w->raw.len;
    int codec = w->codec;
    size_t bound = codec == SHUF_CODEC_LZ4    ? (size_t)LZ4_compressBound((int)raw)
                   : codec == SHUF_CODEC_ZSTD ? ZSTD_compressBound(raw)
                                              : 0;
    int rc = buf_fit(&w->comp, SHUF_FRAME_HDR + EM_MAX(bound, raw), w->mem, &w->charged);
    if (rc) return rc;
    uint8_t *out = w->comp.data + SHUF_FRAME_HDR;
    size_t stored = 0;
    if (codec == SHUF_CODEC_LZ4) {
        int n = LZ4_compress_default((const char *)w->raw.data, (char *)out, (int)raw, (int)bound);
        stored = n > 0 ? (size_t)n : 0;
    } else if (codec == SHUF_CODEC_ZSTD) {
        size_t n = ZSTD_compressCCtx(w->zctx, out, bound, w->raw.data, raw, w->level);
        stored = ZSTD_isError(n) ? 0 : n;
    }
    if (stored == 0 || stored >= raw) {
        codec = SHUF_CODEC_NONE;
        memcpy(out, w->raw.data, raw);
        stored = raw;
    }
    uint32_t h[2] = {(uint32_t)raw, (uint32_t)stored};
    memcpy(w->comp.data, h, 8); /* little-endian hosts only (checked at build) */
    w->comp.data[8] = (uint8_t)codec;
    size_t total = SHUF_FRAME_HDR + stored;
    XXH3_64bits_update(w->xs, w->comp.data, total);
    rc = shuf_write_all(w->fd, w->comp.data, total, w->path);
    if (rc) return rc;
    w->off += total;
    w->raw.len = 0;
    return 0;
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "frame headers assume little-endian");

int shuf_fw_space(shuf_fw *w, size_t n, uint8_t **p)
{
    *p = NULL;
    if (n > UINT32_MAX / 2) return em__set_error(EM_ETOOBIG, "shuffle: record of %zu bytes", n);
    if (w->raw.len > 0 && w->raw.len + n > w->frame_size) {
        int rc = fw_flush(w);
        if (rc) return rc;
    }
    int rc = buf_fit(&w->raw, w->raw.len + n, w->mem, &w->charged);
    if (rc) return rc;
    *p = w->raw.data + w->raw.len;
    w->raw.len += n;
    return 0;
}

int shuf_fw_end_block(shuf_fw *w, uint64_t *len, uint64_t *checksum)
{
    int rc = fw_flush(w);
    if (rc) return rc;
    if (len) *len = w->off - w->block_start;
    if (checksum) *checksum = XXH3_64bits_digest(w->xs);
    XXH3_64bits_reset(w->xs);
    w->block_start = w->off;
    return 0;
}

void shuf_fw_free(shuf_fw *w)
{
    em_buf_free(&w->raw);
    em_buf_free(&w->comp);
    if (w->xs) XXH3_freeState(w->xs);
    if (w->zctx) ZSTD_freeCCtx(w->zctx);
    if (w->mem) shuf_mem_unuse(w->mem, w->charged);
    *w = (shuf_fw){.fd = -1};
}

/* ---- frame reader -------------------------------------------------------------------------- */

void shuf_fr_init(shuf_fr *r, int fd, const char *path, uint64_t start, uint64_t end, bool verify,
                  uint64_t expect, shuf_mem *mem)
{
    *r = (shuf_fr){.fd = fd,
                   .path = path,
                   .pos = start,
                   .end = end,
                   .verify = verify,
                   .expect = expect,
                   .mem = mem};
}

void shuf_fr_init_stream(shuf_fr *r, shuf_read_fn read, void *src, const char *path, uint64_t size,
                         bool verify, uint64_t expect, shuf_mem *mem)
{
    shuf_fr_init(r, -1, path, 0, size, verify, expect, mem);
    r->read = read;
    r->src = src;
}

/* n bytes at offset off of the region: from the file, or the next n of the stream. */
static int fr_read(shuf_fr *r, void *p, size_t n, uint64_t off)
{
    return r->read ? r->read(r->src, p, n) : shuf_pread_all(r->fd, p, n, off, r->path);
}

static int corrupt(shuf_fr *r, uint64_t off, const char *what)
{
    return em__set_error(EM_ECORRUPT, "corrupt shuffle data in %s at offset %llu: %s", r->path,
                         (unsigned long long)off, what);
}

int shuf_fr_fill(shuf_fr *r)
{
    if (r->rpos < r->raw.len) return EM_ROW;
    r->raw.len = r->rpos = 0;
    if (r->pos >= r->end) {
        if (r->verify) {
            uint64_t got = r->xs ? XXH3_64bits_digest(r->xs) : XXH3_64bits(NULL, 0);
            if (got != r->expect)
                return em__set_error(EM_ECORRUPT,
                                     "checksum mismatch in %s (block ending at offset %llu): "
                                     "stored %016llx, computed %016llx",
                                     r->path, (unsigned long long)r->end,
                                     (unsigned long long)r->expect, (unsigned long long)got);
            r->verify = false; /* once */
        }
        return EM_DONE;
    }
    if (r->verify && !r->xs) {
        r->xs = XXH3_createState();
        if (!r->xs) return em__set_error(EM_ENOMEM, "shuffle: checksum state");
        XXH3_64bits_reset(r->xs);
    }
    uint64_t at = r->pos;
    if (r->end - r->pos < SHUF_FRAME_HDR) return corrupt(r, at, "truncated frame header");
    uint8_t hdr[SHUF_FRAME_HDR];
    int rc = fr_read(r, hdr, sizeof hdr, r->pos);
    if (rc) return rc;
    uint32_t raw, stored;
    memcpy(&raw, hdr, 4);
    memcpy(&stored, hdr + 4, 4);
    int codec = hdr[8];
    if (raw == 0 || raw > UINT32_MAX / 2 || codec > SHUF_CODEC_ZSTD ||
        (codec == SHUF_CODEC_NONE && stored != raw) || stored > r->end - r->pos - SHUF_FRAME_HDR)
        return corrupt(r, at, "bad frame header");
    if (r->verify) XXH3_64bits_update(r->xs, hdr, sizeof hdr);
    rc = buf_fit(&r->raw, raw, r->mem, &r->charged);
    if (rc) return rc;
    uint8_t *src = r->raw.data;
    if (codec != SHUF_CODEC_NONE) {
        rc = buf_fit(&r->comp, stored, r->mem, &r->charged);
        if (rc) return rc;
        src = r->comp.data;
    }
    rc = fr_read(r, src, stored, r->pos + SHUF_FRAME_HDR);
    if (rc) return rc;
    if (r->verify) XXH3_64bits_update(r->xs, src, stored);
    r->pos += SHUF_FRAME_HDR + (uint64_t)stored;
    r->stored_read += SHUF_FRAME_HDR + (uint64_t)stored;
    if (codec == SHUF_CODEC_LZ4) {
        int n = LZ4_decompress_safe((const char *)src, (char *)r->raw.data, (int)stored, (int)raw);
        if (n != (int)raw) return corrupt(r, at, "lz4 frame does not decompress");
    } else if (codec == SHUF_CODEC_ZSTD) {
        if (!r->zctx && !(r->zctx = ZSTD_createDCtx()))
            return em__set_error(EM_ENOMEM, "shuffle: zstd context");
        size_t n = ZSTD_decompressDCtx(r->zctx, r->raw.data, raw, src, stored);
        if (ZSTD_isError(n) || n != raw) return corrupt(r, at, "zstd frame does not decompress");
    }
    r->raw.len = raw;
    return EM_ROW;
}

void shuf_fr_free(shuf_fr *r)
{
    em_buf_free(&r->raw);
    em_buf_free(&r->comp);
    if (r->xs) XXH3_freeState(r->xs);
    if (r->zctx) ZSTD_freeDCtx(r->zctx);
    if (r->mem) shuf_mem_unuse(r->mem, r->charged);
    r->xs = NULL;
    r->zctx = NULL;
    r->charged = 0;
}
