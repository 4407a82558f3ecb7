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
 * The three readers share a head (struct reader: the file, the record builder, the read buffer,
 * the done/error state) with one open, close and hand-out step.
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

/* What every reader's iterator starts with (its own struct embeds this first). */
typedef struct reader {
    em_iter base;
    const em_input_split *split;
    em_task *t;
    em_records *rec; /* holds the record handed out last */
    int fd;          /* the split's file, -1 when not open */
    int state;       /* 0 reading, 1 done, < 0 the error returned again */
    uint8_t *buf;    /* read buffer, NULL when the reader has none */
} reader;

static void reader_close(em_iter *base)
{
    reader *r = (reader *)base;
    if (r->fd >= 0) close(r->fd);
    em_records_free(r->rec);
    em__free(r->buf);
    em__free(r);
}

/* Makes a reader of size bytes (a struct starting with a reader) for split: its record builder,
 * a read buffer of buf_cap bytes when buf_cap > 0, the split's file open when open_file. On
 * failure closes what it made with close_fn and returns the error. */
static int reader_new(size_t size, const em_input_split *split, em_task *t,
                      int (*next)(em_iter *, em_value *), void (*close_fn)(em_iter *),
                      size_t buf_cap, bool open_file, reader **out)
{
    reader *r = em__calloc(1, size);
    if (!r) return em__set_error(EM_ENOMEM, "out of memory opening '%s'", split->path);
    r->base.next = next;
    r->base.close = close_fn;
    r->split = split;
    r->t = t;
    r->fd = -1;
    if (buf_cap > 0) r->buf = em__malloc(buf_cap);
    r->rec = em_records_new();
    int rc = 0;
    if ((buf_cap > 0 && !r->buf) || !r->rec)
        rc = em__set_error(EM_ENOMEM, "out of memory opening '%s'", split->path);
    if (rc == 0 && open_file) rc = open_input(split->path, &r->fd);
    if (rc) {
        close_fn(&r->base);
        return rc;
    }
    *out = r;
    return 0;
}

/* Hands out the single record of r->rec (just built from `bytes` bytes of the input) as *out
 * and counts it in the task's metrics; an error is kept in r->state to be returned again. */
static int reader_emit(reader *r, int64_t bytes, const char *path, em_value *out)
{
    if (r->t) {
        r->t->metrics.records_read++;
        r->t->metrics.bytes_read += bytes;
    }
    int rc = EM_ROW;
    size_t cursor = 0;
    if (em_records_error(r->rec))
        rc = em__set_error(em_records_error(r->rec), "building a record from '%s' failed", path);
    else if (em_records_next(r->rec, &cursor, out) != EM_ROW)
        rc = em__set_error(EM_EINTERNAL, "record from '%s' was not built", path);
    if (rc < 0) r->state = rc;
    return rc;
}

/* ---- LINES ----------------------------------------------------------------------------------- */

typedef struct line_iter {
    reader in;
    int eof;
    int64_t end;                  /* start + length: lines must start before this offset */
    int64_t buf_off;              /* file offset of in.buf[0] */
    size_t cap, bpos, blen, scan; /* next unread byte, bytes held, scanned for '\n' up to */
} line_iter;

/* Reads more bytes into the buffer, compacting it or (when one line fills it) growing it. */
static int line_fill(line_iter *it)
{
    if (it->blen == it->cap) {
        if (it->bpos > 0) {
            memmove(it->in.buf, it->in.buf + it->bpos, it->blen - it->bpos);
            it->buf_off += (int64_t)it->bpos;
            it->blen -= it->bpos;
            it->scan -= it->bpos;
            it->bpos = 0;
        } else {
            size_t ncap = it->cap * 2;
            uint8_t *nb = em__realloc(it->in.buf, ncap);
            if (!nb)
                return em__set_error(EM_ENOMEM,
                                     "out of memory for a line of over %zu bytes in "
                                     "'%s' at offset %lld",
                                     it->cap, it->in.split->path, (long long)it->buf_off);
            it->in.buf = nb;
            it->cap = ncap;
        }
    }
    ssize_t r = read_at(it->in.fd, it->in.split->path, it->in.buf + it->blen, it->cap - it->blen,
                        it->buf_off + (int64_t)it->blen);
    if (r < 0) return (int)r;
    if ((size_t)r < it->cap - it->blen) it->eof = 1;
    it->blen += (size_t)r;
    return 0;
}

/* Hands out the line of len bytes at bpos, which consumed bytes bytes; the next starts at next. */
static int line_emit(line_iter *it, size_t len, size_t bytes, size_t next, em_value *out)
{
    em_records_clear(it->in.rec);
    em_put_str(it->in.rec, (const char *)it->in.buf + it->bpos, len);
    it->bpos = it->scan = next;
    return reader_emit(&it->in, (int64_t)bytes, it->in.split->path, out);
}

static int line_next(em_iter *base, em_value *out)
{
    line_iter *it = (line_iter *)base;
    if (it->in.state) return it->in.state == 1 ? EM_DONE : it->in.state;
    for (;;) {
        if (it->buf_off + (int64_t)it->bpos >= it->end) break; /* the next line is not ours */
        if (it->bpos < it->blen) {
            uint8_t *nl = memchr(it->in.buf + it->scan, '\n', it->blen - it->scan);
            if (nl) {
                size_t i = (size_t)(nl - it->in.buf);
                size_t len = i - it->bpos;
                if (len > 0 && it->in.buf[i - 1] == '\r') len--;
                return line_emit(it, len, i + 1 - it->bpos, i + 1, out);
            }
            it->scan = it->blen;
            if (it->eof) /* a last line without '\n' */
                return line_emit(it, it->blen - it->bpos, it->blen - it->bpos, it->blen, out);
        } else if (it->eof) {
            break;
        }
        int rc = line_fill(it);
        if (rc) return it->in.state = rc;
    }
    it->in.state = 1;
    return EM_DONE;
}

/* Positions a split that does not start at 0 on its first line: past the first '\n' at or
 * after start - 1. */
static int line_skip_first(line_iter *it)
{
    for (;;) {
        uint8_t *nl = memchr(it->in.buf + it->scan, '\n', it->blen - it->scan);
        if (nl) {
            it->bpos = it->scan = (size_t)(nl - it->in.buf) + 1;
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

static int open_lines(const em_input_split *split, em_task *t, em_iter **out)
{
    /* A small split starts with a small buffer (it grows if a line needs more). */
    int64_t slen = EM_MAX(split->length, 0);
    size_t cap = slen < READ_BUF_INITIAL - 4096 ? (size_t)slen + 4096 : READ_BUF_INITIAL;
    reader *r = NULL;
    int rc = reader_new(sizeof(line_iter), split, t, line_next, reader_close, cap, true, &r);
    if (rc) return rc;
    line_iter *it = (line_iter *)r;
    it->end = split->start + split->length;
    it->buf_off = split->start > 0 ? split->start - 1 : 0;
    it->cap = cap;
    if (split->length > 0) rc = line_fill(it);
    if (rc == 0 && split->start > 0 && split->length > 0) rc = line_skip_first(it);
    if (rc) {
        reader_close(&it->in.base);
        return rc;
    }
    if (split->length <= 0) it->in.state = 1;
    *out = &it->in.base;
    return 0;
}

/* ---- WHOLE_FILES ----------------------------------------------------------------------------- */

typedef struct whole_iter {
    reader in; /* no file of its own (fd -1) and no buffer: content holds each file */
    em_buf content;
    int next_file;
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
    if (it->in.state) return it->in.state == 1 ? EM_DONE : it->in.state;
    const em_input_split *sp = it->in.split;
    int nfiles = sp->files ? sp->num_files : 1;
    if (it->next_file >= nfiles) {
        it->in.state = 1;
        return EM_DONE;
    }
    const char *path = sp->files ? sp->files[it->next_file] : sp->path;
    it->next_file++;
    int rc = read_whole_file(path, &it->content);
    if (rc) return it->in.state = rc;
    em_records *rec = it->in.rec;
    em_records_clear(rec);
    em_put_tuple_begin(rec);
    em_put_str(rec, path, strlen(path));
    em_put_str(rec, it->content.len ? (const char *)it->content.data : "", it->content.len);
    em_put_end(rec);
    return reader_emit(&it->in, (int64_t)it->content.len, path, out);
}

static void whole_close(em_iter *base)
{
    em_buf_free(&((whole_iter *)base)->content);
    reader_close(base);
}

static int open_whole(const em_input_split *split, em_task *t, em_iter **out)
{
    reader *r = NULL;
    int rc = reader_new(sizeof(whole_iter), split, t, whole_next, whole_close, 0, false, &r);
    if (rc) return rc;
    *out = &r->base;
    return 0;
}

/* ---- FIXED_RECORDS --------------------------------------------------------------------------- */

typedef struct fixed_iter {
    reader in;
    size_t rl;
    int64_t next_off; /* file offset of the next record */
    int64_t buf_off;  /* file offset of in.buf[0] */
    size_t cap, blen;
} fixed_iter;

static int fixed_next(em_iter *base, em_value *out)
{
    fixed_iter *it = (fixed_iter *)base;
    if (it->in.state) return it->in.state == 1 ? EM_DONE : it->in.state;
    const em_input_split *sp = it->in.split;
    int64_t end = sp->start + sp->length;
    if (it->next_off + (int64_t)it->rl > end) {
        it->in.state = 1;
        return EM_DONE;
    }
    if (it->next_off + (int64_t)it->rl > it->buf_off + (int64_t)it->blen) {
        /* Refill with whole records only, never past the end of the split. */
        size_t want = (size_t)EM_MIN((int64_t)it->cap, end - it->next_off);
        ssize_t r = read_at(it->in.fd, sp->path, it->in.buf, want, it->next_off);
        if (r < 0) return it->in.state = (int)r;
        it->buf_off = it->next_off;
        it->blen = (size_t)r;
        if ((size_t)r < it->rl)
            return it->in.state =
                       em__set_error(EM_EFORMAT,
                                     "input file '%s' ended at offset %lld inside a %zu-byte "
                                     "record (the file shrank since the job was planned?)",
                                     sp->path, (long long)(it->next_off + r), it->rl);
    }
    em_records_clear(it->in.rec);
    em_put_bytes(it->in.rec, it->in.buf + (it->next_off - it->buf_off), it->rl);
    it->next_off += (int64_t)it->rl;
    return reader_emit(&it->in, (int64_t)it->rl, sp->path, out);
}

static int open_fixed(const em_input_split *split, int record_length, em_task *t, em_iter **out)
{
    if (record_length <= 0)
        return em__set_error(EM_EINVAL, "record length %d for '%s' must be positive", record_length,
                             split->path);
    size_t rl = (size_t)record_length;
    size_t cap = EM_MAX(1, READ_BUF_INITIAL / rl) * rl;
    reader *r = NULL;
    int rc = reader_new(sizeof(fixed_iter), split, t, fixed_next, reader_close, cap, true, &r);
    if (rc) return rc;
    fixed_iter *it = (fixed_iter *)r;
    it->rl = rl;
    it->next_off = split->start;
    it->buf_off = split->start;
    it->cap = cap;
    *out = &it->in.base;
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
