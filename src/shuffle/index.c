/* The shuffle index file (<dir>/shuffle_<s>_<m>.index): where each reducer's block lies in the
 * data file and its checksum. Written last at commit (it is the commit point) by writer.c;
 * read and validated by reader.c before any block is read. docs/formats.md, "Shuffle files".
 *
 * Layout (R = num_reducers; all integers little-endian):
 *   offset        size      field
 *   0             8         magic "EMBRIDX1"
 *   8             4         num_reducers R (u32, >= 1)
 *   12            4         flags (u32, 0)
 *   16            8*(R+1)   offsets (u64): block r is data[offsets[r], offsets[r+1]);
 *                           offsets[0] = 0, non-decreasing, offsets[R] = data file size
 *   16+8(R+1)     8*R       checksums (u64): XXH3-64 of each block's bytes as stored
 *   32+16R-8      8         XXH3-64 of all the preceding bytes of the index
 * Total size: 32 + 16*R bytes.
 *
 * em_shuffle_locate_blocks is the block server's view of these files (net/block_server.h
 * installs it as its locator): the byte range and checksums of reducers [start, end).
 *
 * Thread rule: any thread (pure file I/O).
 */
#include "shuffle/fetcher.h"
#include "shuffle/shuffle_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define INDEX_HDR 16

_Static_assert(sizeof(SHUF_INDEX_MAGIC) - 1 == 8, "index magic is 8 bytes");

static size_t index_size(uint32_t r)
{
    return 32 + 16 * (size_t)r;
}

int shuf_index_write(int fd, const char *path, int num_reducers, const uint64_t *offsets,
                     const uint64_t *checksums)
{
    uint32_t r = (uint32_t)num_reducers;
    size_t n = index_size(r);
    uint8_t *b = em__calloc(1, n);
    if (!b) return em__set_error(EM_ENOMEM, "shuffle index of %d reducers", num_reducers);
    memcpy(b, SHUF_INDEX_MAGIC, 8);
    memcpy(b + 8, &r, 4);
    memcpy(b + INDEX_HDR, offsets, 8 * ((size_t)r + 1));
    memcpy(b + INDEX_HDR + 8 * ((size_t)r + 1), checksums, 8 * (size_t)r);
    uint64_t h = XXH3_64bits(b, n - 8);
    memcpy(b + n - 8, &h, 8);
    int rc = shuf_write_all(fd, b, n, path);
    em__free(b);
    return rc;
}

int shuf_index_read_range(const char *path, int start, int end, uint64_t data_size,
                          uint64_t *off_start, uint64_t *off_end, uint64_t *checksums)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return em__set_error(-e, "cannot open shuffle index %s: %s", path, strerror(e));
    }
    struct stat st;
    uint8_t *b = NULL;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        rc = em__set_error(-e, "cannot stat shuffle index %s: %s", path, strerror(e));
        goto out;
    }
    uint8_t hdr[INDEX_HDR];
    if (st.st_size < 48 || (rc = shuf_pread_all(fd, hdr, sizeof hdr, 0, path)) != 0) {
        if (!rc)
            rc = em__set_error(EM_ECORRUPT, "shuffle index %s is truncated (%lld bytes)", path,
                               (long long)st.st_size);
        goto out;
    }
    uint32_t r, flags;
    memcpy(&r, hdr + 8, 4);
    memcpy(&flags, hdr + 12, 4);
    if (memcmp(hdr, SHUF_INDEX_MAGIC, 8) != 0 || r == 0 || r > (1u << 24) || flags != 0) {
        rc = em__set_error(EM_ECORRUPT, "shuffle index %s: bad header", path);
        goto out;
    }
    size_t n = index_size(r);
    if ((uint64_t)st.st_size != n) {
        rc = em__set_error(EM_ECORRUPT, "shuffle index %s: size %lld, expected %zu for %u reducers",
                           path, (long long)st.st_size, n, r);
        goto out;
    }
    if (start < 0 || end <= start || (uint32_t)end > r) {
        if (end == start + 1)
            rc = em__set_error(EM_EINVAL, "shuffle index %s has %u reducers, asked for reducer %d",
                               path, r, start);
        else
            rc = em__set_error(EM_EINVAL, "shuffle index %s has %u reducers, asked for [%d, %d)",
                               path, r, start, end);
        goto out;
    }
    b = em__malloc(n);
    if (!b) {
        rc = em__set_error(EM_ENOMEM, "reading shuffle index %s", path);
        goto out;
    }
    if ((rc = shuf_pread_all(fd, b, n, 0, path)) != 0) goto out;
    uint64_t h, want = XXH3_64bits(b, n - 8);
    memcpy(&h, b + n - 8, 8);
    if (h != want) {
        rc = em__set_error(EM_ECORRUPT, "shuffle index %s: checksum mismatch", path);
        goto out;
    }
    uint64_t prev = 0;
    for (uint32_t i = 0; i <= r; i++) {
        uint64_t o;
        memcpy(&o, b + INDEX_HDR + 8 * (size_t)i, 8);
        if ((i == 0 && o != 0) || o < prev || o > data_size || (i == r && o != data_size)) {
            rc = em__set_error(EM_ECORRUPT,
                               "shuffle index %s: offset %u (%llu) is out of order or does not "
                               "match the data file size %llu",
                               path, i, (unsigned long long)o, (unsigned long long)data_size);
            goto out;
        }
        prev = o;
    }
    memcpy(off_start, b + INDEX_HDR + 8 * (size_t)start, 8);
    memcpy(off_end, b + INDEX_HDR + 8 * (size_t)end, 8);
    memcpy(checksums, b + INDEX_HDR + 8 * ((size_t)r + 1) + 8 * (size_t)start,
           8 * (size_t)(end - start));
out:
    em__free(b);
    close(fd);
    return rc;
}

int shuf_index_read(const char *path, int reducer, uint64_t data_size, uint64_t *start,
                    uint64_t *end, uint64_t *checksum)
{
    if (reducer < 0 || reducer == INT32_MAX)
        return em__set_error(EM_EINVAL, "shuffle index %s: no reducer %d", path, reducer);
    return shuf_index_read_range(path, reducer, reducer + 1, data_size, start, end, checksum);
}

int em_shuffle_locate_blocks(const char *dir, int shuffle_id, int map_id, int start, int end,
                             em_block_range *out)
{
    char data[4096], index[4096];
    em_shuffle_file_path(data, sizeof data, dir, shuffle_id, map_id, "data");
    em_shuffle_file_path(index, sizeof index, dir, shuffle_id, map_id, "index");
    out->fd = -1;
    /* The data file is opened first and the index checked against its size: an output
     * replaced by a later attempt between the two reads is caught by the size check (the
     * index is renamed into place last). */
    int fd = open(data, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return em__set_error(-e, "shuffle %d map %d: cannot open %s: %s", shuffle_id, map_id, data,
                             strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return em__set_error(-e, "cannot stat %s: %s", data, strerror(e));
    }
    int rc = shuf_index_read_range(index, start, end, (uint64_t)st.st_size, &out->offset,
                                   &out->length, out->checksums);
    if (rc) {
        close(fd);
        return rc;
    }
    out->length -= out->offset;
    out->fd = fd;
    return 0;
}
