/* The shuffle map-side writer (em_shuffle_writer_*): assigns each pair record to a reducer,
 * combines values of equal keys when a map-side aggregator is given, spills sorted runs past
 * the task's execution-memory grant (sorter.c), and at commit writes one data file (the
 * reducers' blocks back to back, compressed frames, blockio.c) and one index file (index.c).
 *
 *   open ──add*──▶ commit ──▶ (data and index renamed into place; status filled; freed)
 *             └──▶ abort  ──▶ (nothing left on disk; freed)
 *
 * Without an aggregator the records are buffered with their partition id and counting-sorted
 * by partition at each spill; with one they live in a hash table keyed by (partition, key)
 * holding the current combiner, sorted by (partition, key) when spilled. Commit merges the
 * runs (combining equal keys with merge_combiners) straight into the data file.
 *
 * Files are written as "<name>.tmp.<task_id>" and renamed: data first, index last (the index
 * is the commit point), so readers never see a torn output. The two renames happen under one
 * process-wide lock, so two attempts of one map task committing at once in this executor (a
 * task of an older stage attempt still running beside its rerun) leave a matching pair, the
 * last one's. A reader that read the index of the first and the data of the second fails its
 * checksum check and reports a fetch failure (the output is recomputed). Spill files are unlinked
 * at birth; temporary files are removed on every failure. All execution memory acquired is released
 * at commit or abort.
 *
 * Thread rule: a writer belongs to the task thread that opened it.
 */
#include "shuffle/shuffle_int.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct em_shuffle_writer {
    em_shuffle_write_spec spec;
    char *dir;
    em_task *t;
    shuf_conf conf;
    shuf_mem mem;
    shuf_sorter sorter;
    shuf_agg agg;
    bool combine;
};

void em_shuffle_file_path(char *buf, size_t cap, const char *dir, int shuffle_id, int map_id,
                          const char *ext)
{
    snprintf(buf, cap, "%s/shuffle_%d_%d.%s", dir, shuffle_id, map_id, ext);
}

static void writer_free(em_shuffle_writer *w)
{
    shuf_sorter_free(&w->sorter);
    if (w->combine) shuf_agg_free(&w->agg);
    shuf_mem_release(&w->mem);
    em__free(w->dir);
    em__free(w);
}

int em_shuffle_writer_open(const em_shuffle_write_spec *spec, em_task *t, em_shuffle_writer **out)
{
    *out = NULL;
    if (!spec || !t || !spec->dir || spec->partitioner.num_partitions < 1 ||
        !spec->partitioner.partition)
        return em__set_error(EM_EINVAL, "shuffle writer: bad spec (dir, partitioner)");
    const em_aggregator *agg = spec->map_side_combine;
    if (agg && (!agg->create || !agg->merge_value || !agg->merge_combiners))
        return em__set_error(EM_EINVAL, "shuffle %d: map-side aggregator lacks a function",
                             spec->shuffle_id);
    em_shuffle_writer *w = em__calloc(1, sizeof *w);
    if (!w) return em__set_error(EM_ENOMEM, "shuffle writer");
    w->spec = *spec;
    w->t = t;
    w->dir = em__strdup(spec->dir);
    w->spec.dir = w->dir;
    shuf_mem_init(&w->mem, t);
    int rc = w->dir ? shuf_conf_load(&w->conf, t) : em__set_error(EM_ENOMEM, "shuffle writer");
    w->combine = agg != NULL;
    shuf_sorter_init(&w->sorter, t, &w->mem, &w->conf, w->combine ? SHUF_BY_PART_REC : SHUF_BY_PART,
                     false, w->combine);
    if (rc == 0 && w->combine)
        rc = shuf_agg_init(&w->agg, agg, t);
    else if (rc)
        w->combine = false;
    if (rc) {
        writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int em_shuffle_writer_add(em_shuffle_writer *w, em_value rec)
{
    const uint8_t *k, *v;
    size_t klen, vlen;
    int rc = shuf_split_pair(rec.data, rec.len, &k, &klen, &v, &vlen);
    if (rc) return em__error_context(rc, "shuffle %d map %d", w->spec.shuffle_id, w->spec.map_id);
    const em_key_partitioner *p = &w->spec.partitioner;
    uint64_t hash = 0;
    int part;
    if (p->hash_mod) {
        hash = XXH3_64bits(k, klen);
        part = em_hash_partition(hash, p->num_partitions);
    } else {
        part = p->partition(p->ctx, (em_value){k, klen, NULL});
    }
    if (part < 0 || part >= p->num_partitions)
        return em__set_error(EM_EINVAL, "shuffle %d map %d: partitioner returned %d (of %d)",
                             w->spec.shuffle_id, w->spec.map_id, part, p->num_partitions);
    if (w->combine)
        rc = shuf_agg_insert_split(&w->agg, &w->sorter, (uint32_t)part, rec.data, rec.len, k, klen,
                                   v, vlen, false, hash);
    else
        rc = shuf_sorter_add(&w->sorter, (uint32_t)part, rec.data, rec.len);
    if (rc) return em__error_context(rc, "shuffle %d map %d", w->spec.shuffle_id, w->spec.map_id);
    return 0;
}

void em_map_status_clear(em_map_status *s)
{
    if (!s) return;
    em__free(s->block_sizes);
    s->block_sizes = NULL;
    s->num_reducers = 0;
}

/* The commit's work: writes the temporary data and index files. */
static int write_output(em_shuffle_writer *w, const char *data_tmp, const char *index_tmp,
                        uint64_t *offsets, uint64_t *sums, int64_t *records)
{
    int R = w->spec.partitioner.num_partitions;
    shuf_merger *m = NULL;
    shuf_combining comb = {0};
    int rc = shuf_sorter_finish(&w->sorter, &m);
    if (rc) return rc;
    comb.m = m;
    comb.agg = &w->agg;
    int fd = open(data_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        shuf_merger_free(m);
        return em__set_error(-e, "cannot create %s: %s", data_tmp, strerror(e));
    }
    shuf_fw fw;
    rc = shuf_fw_init(&fw, fd, data_tmp, w->conf.codec, &w->conf,
                      shuf_frame_size(&w->mem, &w->conf), &w->mem);
    int cur = 0; /* the block being written */
    offsets[0] = 0;
    while (rc == 0) {
        uint32_t part;
        const uint8_t *rec;
        size_t len;
        rc = w->combine ? shuf_combining_next(&comb, &part, &rec, &len)
                        : shuf_merger_next(m, &part, &rec, &len);
        if (rc != EM_ROW) break;
        rc = 0;
        while (rc == 0 && cur < (int)part) {
            uint64_t blen = 0;
            rc = shuf_fw_end_block(&fw, &blen, &sums[cur]);
            offsets[cur + 1] = offsets[cur] + blen;
            cur++;
        }
        uint8_t *p;
        if (rc == 0 && (rc = shuf_fw_space(&fw, len, &p)) == 0) {
            memcpy(p, rec, len);
            (*records)++;
        }
    }
    while (rc == 0 && cur < R) {
        uint64_t blen = 0;
        rc = shuf_fw_end_block(&fw, &blen, &sums[cur]);
        offsets[cur + 1] = offsets[cur] + blen;
        cur++;
    }
    shuf_fw_free(&fw);
    shuf_combining_free(&comb);
    shuf_merger_free(m);
    if (close(fd) != 0 && rc == 0) {
        int e = errno;
        rc = em__set_error(-e, "writing %s: %s", data_tmp, strerror(e));
    }
    if (rc) return rc;
    shuf_sorter_free(&w->sorter); /* spill files go now */
    fd = open(index_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        return em__set_error(-e, "cannot create %s: %s", index_tmp, strerror(e));
    }
    rc = shuf_index_write(fd, index_tmp, R, offsets, sums);
    if (close(fd) != 0 && rc == 0) {
        int e = errno;
        rc = em__set_error(-e, "writing %s: %s", index_tmp, strerror(e));
    }
    return rc;
}

int em_shuffle_writer_commit(em_shuffle_writer *w, em_map_status *status)
{
    int R = w->spec.partitioner.num_partitions;
    char data[4096], index[4096], data_tmp[4200], index_tmp[4200];
    em_shuffle_file_path(data, sizeof data, w->dir, w->spec.shuffle_id, w->spec.map_id, "data");
    em_shuffle_file_path(index, sizeof index, w->dir, w->spec.shuffle_id, w->spec.map_id, "index");
    snprintf(data_tmp, sizeof data_tmp, "%s.tmp.%lld", data, (long long)w->t->task_id);
    snprintf(index_tmp, sizeof index_tmp, "%s.tmp.%lld", index, (long long)w->t->task_id);
    uint64_t *offsets = em__calloc((size_t)R + 1, sizeof *offsets);
    uint64_t *sums = em__calloc((size_t)R, sizeof *sums);
    int64_t *sizes = em__calloc((size_t)R, sizeof *sizes);
    int64_t records = 0;
    int rc = 0;
    if (!offsets || !sums || !sizes) rc = em__set_error(EM_ENOMEM, "shuffle commit");
    if (rc == 0) rc = write_output(w, data_tmp, index_tmp, offsets, sums, &records);
    static pthread_mutex_t commit_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&commit_mu);
    if (rc == 0 && rename(data_tmp, data) != 0) {
        int e = errno;
        rc = em__set_error(-e, "cannot rename %s to %s: %s", data_tmp, data, strerror(e));
    }
    if (rc == 0 && rename(index_tmp, index) != 0) {
        int e = errno;
        rc = em__set_error(-e, "cannot rename %s to %s: %s", index_tmp, index, strerror(e));
        unlink(data);
    }
    pthread_mutex_unlock(&commit_mu);
    if (rc) {
        unlink(data_tmp);
        unlink(index_tmp);
        rc = em__error_context(rc, "committing shuffle %d map %d", w->spec.shuffle_id,
                               w->spec.map_id);
        em__free(sizes);
    } else {
        for (int r = 0; r < R; r++) sizes[r] = (int64_t)(offsets[r + 1] - offsets[r]);
        w->t->metrics.shuffle_records_written += records;
        w->t->metrics.shuffle_bytes_written += (int64_t)offsets[R];
        if (status)
            *status = (em_map_status){.shuffle_id = w->spec.shuffle_id,
                                      .map_id = w->spec.map_id,
                                      .num_reducers = R,
                                      .block_sizes = sizes,
                                      .records_written = records,
                                      .bytes_written = (int64_t)offsets[R]};
        else
            em__free(sizes);
    }
    em__free(offsets);
    em__free(sums);
    writer_free(w);
    return rc;
}

void em_shuffle_writer_abort(em_shuffle_writer *w)
{
    if (w) writer_free(w); /* only unlinked spill files exist before commit */
}

void em_shuffle_remove_files(const char *dir, int shuffle_id)
{
    char prefix[64];
    int n = snprintf(prefix, sizeof prefix, "shuffle_%d_", shuffle_id);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)n) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}
