/* Input readers: the iterators over the records of one input split (see input_plan.c for how
 * splits are made). em_input_open is called by the RDD sources inside a task; the iterator
 * belongs to that task's thread and is closed by its consumer.
 *
 * LINES (Hadoop's LineRecordReader rule, stated exactly): a line starts at offset 0 or right
 * after a '\n' (but not at end of file); it belongs to the split whose byte range
 * [start, start + length) holds its first byte, so every line is read exactly once. A split
 * with start > 0 looks at byte start - 1 and skips forward past the first '\n' found at or
 * after it; it then returns lines while their first byte lies before start + length, reading
 * past the end of the split to finish the last one. The '\n' and a '\r' just before it are
 * removed; a last line without '\n' is still a line. Bytes are passed through untouched (0x00
 * and invalid UTF-8 included): values are strings holding those bytes. The read buffer is
 * 256 KiB (less for a smaller split) and grows (doubling) only while a single line does not fit.
 * WHOLE_FILES: one (path, content) 2-tuple of strings per file of the split.
 * FIXED_RECORDS: bytes values of record_length bytes covering [start, start + length).
 *
 * Metrics (when a task is given): records_read += 1 per record; bytes_read += the bytes the
 * record consumed (a line with its terminator, a file's size, a record's length), so the sums
 * over all splits of a file are its line count and its size.
 * Errors name the file and the offset: "reading 'f' at offset N: <strerror>".
 */
#include "rdd/io.h"

#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BUF_INITIAL (256 * 1024)

/* Reads up to n bytes at off, retrying EINTR and short reads; returns bytes read (< n only at
 * end of file) or -errno with the message set. */
static ssize_t read_at(int fd, const char *path, void *dst, size_t n, int64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)dst + got, n - got, (off_t)(off + (int64_t)got));
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            return em__set_error(-e, "reading '%s' at offset %lld: %s", path,
                                 (long long)(off + (int64_t)got), strerror(e));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int open_input(const char *path, int *fd)
{
    do {
        *fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (*fd < 0 && errno == EINTR);
    if (*fd < 0) {
        int e = errno;
        return em__set_error(-e, "cannot open input file '%s': %s", path, strerror(e));
    }
    return 0;
}

static void count_record(em_task *t, int64_t bytes)
{
    if (!t) return;
    t->metrics.records_read++;
    t->metrics.bytes_read += bytes;
}

/* Hands out the single record of r (just built) as *out. */
static int emit_record(em_records *r, const char *path, em_value *out)
{
    if (em_records_error(r))
        return em__set_error(em_records_error(r), "building a record from '%s' failed", path);
    size_t cursor = 0;
    if (em_records_next(r, &cursor, out) != EM_ROW)
        return em__set_error(EM_EINTERNAL, "record from '%s' was not built", path);
    return EM_ROW;
}

/* ---- LINES ----------------------------------------------------------------------------------- */

typedef struct line_iter {
    em_iter base;
    const em_input_split *split;
    em_task *t;
    em_records *rec;
    int fd;
    int state; /* 0 reading, 1 done, < 0 the error returned again */
    int eof;
    int64_t end;     /* start + length: lines must start before this offset */
    int64_t buf_off; /* file offset of buf[0] */
    uint8_t *buf;
    size_t cap, bpos, blen, scan; /* next unread byte, bytes held, scanned for '\n' up to */
} line_iter;

/* Reads more bytes into the buffer, compacting it or (when one line fills it) growing it. */
static int line_fill(line_iter *it)
{
    if (it->blen == it->cap) {
        if (it->bpos > 0) {
            memmove(it->buf, it->buf + it->bpos, it->blen - it->bpos);
            it->buf_off += (int64_t)it->bpos;
            it->blen -= it->bpos;
            it->scan -= it->bpos;
            it->bpos = 0;
        } else {
            size_t ncap = it->cap * 2;
            uint8_t *nb = em__realloc(it->buf, ncap);
            if (!nb)
                return em__set_error(EM_ENOMEM,
                                     "out of memory for a line of over %zu bytes in "
                                     "'%s' at offset %lld",
                                     it->cap, it->split->path, (long long)it->buf_off);
            it->buf = nb;
            it->cap = ncap;
        }
    }
    ssize_t r = read_at(it->fd, it->split->path, it->buf + it->blen, it->cap - it->blen,
                        it->buf_off + (int64_t)it->blen);
    if (r < 0) return (int)r;
    if ((size_t)r < it->cap - it->blen) it->eof = 1;
    it->blen += (size_t)r;
    return 0;
}

static int line_next(em_iter *base, em_value *out)
{
    line_iter *it = (line_iter *)base;
    if (it->state) return it->state == 1 ? EM_DONE : it->state;
    for (;;) {
        if (it->buf_off + (int64_t)it->bpos >= it->end) break; /* the next line is not ours */
        if (it->bpos < it->blen) {
            uint8_t *nl = memchr(it->buf + it->scan, '\n', it->blen - it->scan);
            if (nl) {
                size_t i = (size_t)(nl - it->buf);
                size_t len = i - it->bpos;
                if (len > 0 && it->buf[i - 1] == '\r') len--;
                em_records_clear(it->rec);
                em_put_str(it->rec, (const char *)it->buf + it->bpos, len);
                count_record(it->t, (int64_t)(i + 1 - it->bpos));
                it->bpos = it->scan = i + 1;
                int rc = emit_record(it->rec, it->split->path, out);
                if (rc < 0) it->state = rc;
                return rc;
            }
            it->scan = it->blen;
            if (it->eof) { /* a last line without '\n' */
                size_t len = it->blen - it->bpos;
                em_records_clear(it->rec);
                em_put_str(it->rec, (const char *)it->buf + it->bpos, len);
                count_record(it->t, (int64_t)len);
                it->bpos = it->scan = it->blen;
                int rc = emit_record(it->rec, it->split->path, out);
                if (rc < 0) it->state = rc;
                return rc;
            }
        } else if (it->eof) {
            break;
        }
        int rc = line_fill(it);
        if (rc) return it->state = rc;
    }
    it->state = 1;
    return EM_DONE;
}

/* Positions a split that does not start at 0 on its first line: past the first '\n' at or
 * after start - 1. */
static int line_skip_first(line_iter *it)
{
    for (;;) {
        uint8_t *nl = memchr(it->buf + it->scan, '\n', it->blen - it->scan);
        if (nl) {
            it->bpos = it->scan = (size_t)(nl - it->buf) + 1;
            return 0;
        }
        /* Nothing of the partial line is needed: drop it instead of growing the buffer. */
        it->buf_off += (int64_t)it->blen;
        it->bpos = it->blen = it->scan = 0;
        if (it->eof) return 0;
        int rc = line_fill(it);
        if (rc) return rc;
    }
}

static void line_close(em_iter *base)
{
    line_iter *it = (line_iter *)base;
    if (it->fd >= 0) close(it->fd);
    em_records_free(it->rec);
    em__free(it->buf);
    em__free(it);
}

static int open_lines(const em_input_split *split, em_task *t, em_iter **out)
{
    line_iter *it = em__calloc(1, sizeof *it);
    if (!it) return em__set_error(EM_ENOMEM, "out of memory opening '%s'", split->path);
    it->base.next = line_next;
    it->base.close = line_close;
    it->split = split;
    it->t = t;
    it->fd = -1;
    it->end = split->start + split->length;
    it->buf_off = split->start > 0 ? split->start - 1 : 0;
    /* A small split starts with a small buffer (it grows if a line needs more). */
    int64_t slen = EM_MAX(split->length, 0);
    it->cap = slen < READ_BUF_INITIAL - 4096 ? (size_t)slen + 4096 : READ_BUF_INITIAL;
    it->buf = em__malloc(it->cap);
    it->rec = em_records_new();
    int rc = 0;
    if (!it->buf || !it->rec)
        rc = em__set_error(EM_ENOMEM, "out of memory opening '%s'", split->path);
    if (rc == 0) rc = open_input(split->path, &it->fd);
    if (rc == 0 && split->length > 0) rc = line_fill(it);
    if (rc == 0 && split->start > 0 && split->length > 0) rc = line_skip_first(it);
    if (rc) {
        line_close(&it->base);
        return rc;
    }
    if (split->length <= 0) it->state = 1;
    *out = &it->base;
    return 0;
}

/* ---- WHOLE_FILES ----------------------------------------------------------------------------- */

typedef struct whole_iter {
    em_iter base;
    const em_input_split *split;
    em_task *t;
    em_records *rec;
    em_buf content;
    int next_file;
    int state;
} whole_iter;

static int read_whole_file(const char *path, em_buf *b)
{
    int fd;
    int rc = open_input(path, &fd);
    if (rc) return rc;
    struct stat st;
    em_buf_reset(b);
    /* The size plus one byte, so that one read normally sees the end of the file. */
    size_t want = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536;
    for (;;) {
        if (b->cap < want && b->len == 0) { /* exactly the size: files can be large */
            uint8_t *d = em__realloc(b->data, want);
            if (!d) {
                rc = em__set_error(EM_ENOMEM, "out of memory reading '%s' (%zu bytes)", path,
                                   want - 1);
                break;
            }
            b->data = d;
            b->cap = want;
        }
        if (b->cap == b->len) { /* the file grew since fstat */
            if (em_buf_reserve(b, b->cap) != 0) {
                rc = em__set_error(EM_ENOMEM, "out of memory reading '%s' (%zu bytes so far)", path,
                                   b->len);
                break;
            }
        }
        size_t room = b->cap - b->len;
        ssize_t r = read_at(fd, path, b->data + b->len, room, (int64_t)b->len);
        if (r < 0) {
            rc = (int)r;
            break;
        }
        b->len += (size_t)r;
        if ((size_t)r < room) break; /* end of file */
    }
    close(fd);
    return rc;
}

static int whole_next(em_iter *base, em_value *out)
{
    whole_iter *it = (whole_iter *)base;
    if (it->state) return it->state == 1 ? EM_DONE : it->state;
    const em_input_split *sp = it->split;
    int nfiles = sp->files ? sp->num_files : 1;
    if (it->next_file >= nfiles) {
        it->state = 1;
        return EM_DONE;
    }
    const char *path = sp->files ? sp->files[it->next_file] : sp->path;
    it->next_file++;
    int rc = read_whole_file(path, &it->content);
    if (rc) return it->state = rc;
    em_records_clear(it->rec);
    em_put_tuple_begin(it->rec);
    em_put_str(it->rec, path, strlen(path));
    em_put_str(it->rec, it->content.len ? (const char *)it->content.data : "", it->content.len);
    em_put_end(it->rec);
    count_record(it->t, (int64_t)it->content.len);
    rc = emit_record(it->rec, path, out);
    if (rc < 0) it->state = rc;
    return rc;
}

static void whole_close(em_iter *base)
{
    whole_iter *it = (whole_iter *)base;
    em_records_free(it->rec);
    em_buf_free(&it->content);
    em__free(it);
}

static int open_whole(const em_input_split *split, em_task *t, em_iter **out)
{
    whole_iter *it = em__calloc(1, sizeof *it);
    if (!it) return em__set_error(EM_ENOMEM, "out of memory opening '%s'", split->path);
    it->base.next = whole_next;
    it->base.close = whole_close;
    it->split = split;
    it->t = t;
    it->rec = em_records_new();
    if (!it->rec) {
        whole_close(&it->base);
        return em__set_error(EM_ENOMEM, "out of memory opening '%s'", split->path);
    }
    *out = &it->base;
    return 0;
}

/* ---- FIXED_RECORDS --------------------------------------------------------------------------- */

typedef struct fixed_iter {
    em_iter base;
    const em_input_split *split;
    em_task *t;
    em_records *rec;
    int fd;
    int state;
    size_t rl;
    int64_t next_off; /* file offset of the next record */
    int64_t buf_off;  /* file offset of buf[0] */
    uint8_t *buf;
    size_t cap, blen;
} fixed_iter;

static int fixed_next(em_iter *base, em_value *out)
{
    fixed_iter *it = (fixed_iter *)base;
    if (it->state) return it->state == 1 ? EM_DONE : it->state;
    const em_input_split *sp = it->split;
    int64_t end = sp->start + sp->length;
    if (it->next_off + (int64_t)it->rl > end) {
        it->state = 1;
        return EM_DONE;
    }
    if (it->next_off + (int64_t)it->rl > it->buf_off + (int64_t)it->blen) {
        /* Refill with whole records only, never past the end of the split. */
        size_t want = (size_t)EM_MIN((int64_t)it->cap, end - it->next_off);
        ssize_t r = read_at(it->fd, sp->path, it->buf, want, it->next_off);
        if (r < 0) return it->state = (int)r;
        it->buf_off = it->next_off;
        it->blen = (size_t)r;
        if ((size_t)r < it->rl)
            return it->state =
                       em__set_error(EM_EFORMAT,
                                     "input file '%s' ended at offset %lld inside a %zu-byte "
                                     "record (the file shrank since the job was planned?)",
                                     sp->path, (long long)(it->next_off + r), it->rl);
    }
    em_records_clear(it->rec);
    em_put_bytes(it->rec, it->buf + (it->next_off - it->buf_off), it->rl);
    it->next_off += (int64_t)it->rl;
    count_record(it->t, (int64_t)it->rl);
    int rc = emit_record(it->rec, sp->path, out);
    if (rc < 0) it->state = rc;
    return rc;
}

static void fixed_close(em_iter *base)
{
    fixed_iter *it = (fixed_iter *)base;
    if (it->fd >= 0) close(it->fd);
    em_records_free(it->rec);
    em__free(it->buf);
    em__free(it);
}

static int open_fixed(const em_input_split *split, int record_length, em_task *t, em_iter **out)
{
    if (record_length <= 0)
        return em__set_error(EM_EINVAL, "record length %d for '%s' must be positive", record_length,
                             split->path);
    fixed_iter *it = em__calloc(1, sizeof *it);
    if (!it) return em__set_error(EM_ENOMEM, "out of memory opening '%s'", split->path);
    it->base.next = fixed_next;
    it->base.close = fixed_close;
    it->split = split;
    it->t = t;
    it->fd = -1;
    it->rl = (size_t)record_length;
    it->next_off = split->start;
    it->buf_off = split->start;
    it->cap = EM_MAX(1, READ_BUF_INITIAL / it->rl) * it->rl;
    it->buf = em__malloc(it->cap);
    it->rec = em_records_new();
    int rc = 0;
    if (!it->buf || !it->rec)
        rc = em__set_error(EM_ENOMEM, "out of memory opening '%s'", split->path);
    if (rc == 0) rc = open_input(split->path, &it->fd);
    if (rc) {
        fixed_close(&it->base);
        return rc;
    }
    *out = &it->base;
    return 0;
}

int em_input_open(const em_input_split *split, enum em_input_kind kind, int record_length,
                  em_task *t, em_iter **out)
{
    *out = NULL;
    switch (kind) {
    case EM_INPUT_LINES:
        return open_lines(split, t, out);
    case EM_INPUT_WHOLE_FILES:
        return open_whole(split, t, out);
    case EM_INPUT_FIXED_RECORDS:
        return open_fixed(split, record_length, t, out);
    }
    return em__set_error(EM_EINVAL, "unknown input kind %d for '%s'", (int)kind, split->path);
}
