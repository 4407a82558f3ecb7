/* Text and binary output with an atomic commit (saveAsTextFile, saveAsBinaryFile). The driver calls
 * em_output_job_setup before the job and em_output_job_commit or em_output_job_abort after it; each
 * result task calls em_output_write_partition on its own thread.
 *
 * Protocol (names for output path "out", job tag "7", partition 3, attempt 1):
 *   setup   out missing and its parent a writable directory, else an error; creates the
 *           staging directory "out._ember_staging_7" next to it and the attempts directory
 *           "out._ember_staging_7.attempts" beside that (stale ones are replaced), and names
 *           staging by its absolute path, which tasks in other processes use as is.
 *   task    opens both directories, writes ".part-00003.attempt-1.tmp" in the attempts
 *           directory and closes it, then asks whether it may commit (em_task.can_commit: the
 *           driver's output commit coordinator, scheduler/commit.h, directly in local mode
 *           and through ASK_COMMIT / COMMIT_DECISION from an executor). Authorised: renames
 *           it to "out._ember_staging_7/part-00003". Denied (another attempt of the partition
 *           was authorised, or the driver cannot be asked within ember.network.timeout):
 *           removes it and fails with EM_ECOMMITDENIED, which is not a task failure. The
 *           first attempt to ask wins; if it then fails, its authorisation is released and a
 *           later attempt may commit (renaming over whatever the failed one left, so a
 *           partition file is always whole). Any error removes the temporary file.
 *   commit  creates the empty "_SUCCESS" in staging, then renames staging to "out" with
 *           RENAME_NOREPLACE: if "out" appeared meanwhile the commit fails with EM_EEXIST,
 *           "out" is untouched and staging is as before (no _SUCCESS) for the caller to abort.
 *           Then removes the attempts directory.
 *   abort   removes the staging and attempts directories and everything in them.
 * Temporary files never live in the directory that becomes "out": an attempt still running
 * when the job commits (a speculative copy that lost, an executor about to be killed) writes
 * into the attempts directory, which the commit removes, and can create nothing there once it
 * is gone; a file it created earlier is removed with the directory or by the attempt itself
 * when its commit is denied. Only an authorised attempt renames into staging, and none is
 * authorised once every partition committed.
 * A reader therefore sees either no "out" or a complete one with _SUCCESS. Files are not
 * fsync'd (as Hadoop's committers do not): atomicity is against concurrent readers and failed
 * tasks, not against a machine crash.
 *
 * Record text: em_value_format of each record (strings and bytes raw, including 0x00 bytes)
 * followed by '\n', through a 1 MiB write buffer. Binary output: the raw bytes of each bytes
 * or string record back to back (any other type: EM_EFORMAT). The iterator is borrowed.
 *
 * Threads: setup, commit and abort on the driver's job thread; em_output_write_partition on
 * the task's thread (the commit hook may block it for up to ember.network.timeout).
 */
#include "rdd/io.h"

#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BUF_FLUSH   (1 << 20)
#define STAGING_SUFFIX  "._ember_staging_"
#define ATTEMPTS_SUFFIX ".attempts"

/* The attempts directory of a staging directory (em__malloc'd; NULL when out of memory). */
static char *attempts_dir(const char *staging)
{
    size_t n = strlen(staging) + sizeof ATTEMPTS_SUFFIX;
    char *d = em__malloc(n);
    if (d) snprintf(d, n, "%s%s", staging, ATTEMPTS_SUFFIX);
    return d;
}

/* Removes a directory tree, again while it keeps existing (an attempt may create a file in it
 * between the listing and the rmdir). Logs what stays. */
static void remove_tree(const char *dir)
{
    struct stat st;
    for (int i = 0; i < 3 && lstat(dir, &st) == 0; i++) em__rmtree(dir);
    if (lstat(dir, &st) == 0)
        EM_LOG(EM_LOG_WARN, "output", "cannot remove '%s': attempts keep writing into it", dir);
}

char *em_path_absolute(const char *path)
{
    if (path[0] == '/') return em__strdup(path);
    if (path[0] == '.' && path[1] == '/') path += 2;
    for (size_t cap = 256; cap <= (1u << 20); cap *= 2) {
        char *abs = em__malloc(cap + strlen(path) + 2);
        if (!abs) return NULL;
        if (getcwd(abs, cap)) {
            size_t n = strlen(abs);
            if (n > 1) abs[n++] = '/';
            strcpy(abs + n, path);
            return abs;
        }
        em__free(abs);
        if (errno != ERANGE) return NULL;
    }
    return NULL;
}

/* A copy of path without trailing slashes ("/" stays "/"). NULL on out of memory. */
static char *strip_slashes(const char *path)
{
    char *p = em__strdup(path);
    if (!p) return NULL;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
    return p;
}

int em_output_job_setup(const char *path, const char *job_tag, char **staging_out)
{
    *staging_out = NULL;
    if (!path || !*path) return em__set_error(EM_EINVAL, "empty output path");
    if (!job_tag || !*job_tag || strchr(job_tag, '/'))
        return em__set_error(EM_EINVAL, "bad output job tag '%s'", job_tag ? job_tag : "");
    char *out = strip_slashes(path);
    if (!out) return em__set_error(EM_ENOMEM, "out of memory");
    int rc = 0;
    char *parent = NULL, *staging = NULL, *abs = NULL, *attempts = NULL;
    struct stat st;
    if (lstat(out, &st) == 0) {
        rc = em__set_error(EM_EEXIST, "output directory '%s' already exists", out);
        goto done;
    }
    if (errno != ENOENT) {
        int e = errno;
        rc = em__set_error(-e, "output path '%s': %s", out, strerror(e));
        goto done;
    }
    const char *slash = strrchr(out, '/');
    parent = slash ? em__strndup(out, slash == out ? 1 : (size_t)(slash - out)) : em__strdup(".");
    abs = em_path_absolute(out); /* tasks may run in other working directories */
    if (!abs) {
        rc = em__set_error(EM_EINVAL,
                           "output path '%s': cannot resolve it against the working "
                           "directory",
                           out);
        goto done;
    }
    staging = em__malloc(strlen(abs) + strlen(STAGING_SUFFIX) + strlen(job_tag) + 1);
    if (!parent || !staging) {
        rc = em__set_error(EM_ENOMEM, "out of memory");
        goto done;
    }
    if (stat(parent, &st) != 0) {
        int e = errno;
        rc =
            em__set_error(-e, "parent directory '%s' of output '%s': %s", parent, out, strerror(e));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc =
            em__set_error(EM_ENOTDIR, "parent '%s' of output '%s' is not a directory", parent, out);
        goto done;
    }
    if (access(parent, W_OK | X_OK) != 0) {
        int e = errno;
        rc = em__set_error(-e, "parent directory '%s' of output '%s' is not writable: %s", parent,
                           out, strerror(e));
        goto done;
    }
    sprintf(staging, "%s%s%s", abs, STAGING_SUFFIX, job_tag);
    attempts = attempts_dir(staging);
    if (!attempts) {
        rc = em__set_error(EM_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < 2 && rc == 0; k++) {
        const char *dir = k == 0 ? staging : attempts;
        int mk = mkdir(dir, 0777);
        if (mk != 0 && errno == EEXIST) {
            em__rmtree(dir); /* left over by an earlier run with the same tag */
            mk = mkdir(dir, 0777);
        }
        if (mk != 0) {
            int e = errno;
            rc = em__set_error(-e, "cannot create output staging directory '%s': %s", dir,
                               strerror(e));
            if (k == 1) rmdir(staging);
        }
    }
    if (rc) goto done;
    *staging_out = staging;
    staging = NULL;
done:
    em__free(attempts);
    em__free(out);
    em__free(abs);
    em__free(parent);
    em__free(staging);
    return rc;
}

/* ---- task side ------------------------------------------------------------------------------- */

typedef struct part_writer {
    int fd;
    const char *path;
    int64_t written; /* bytes written to the file so far */
    em_buf buf;
} part_writer;

static int writer_flush(part_writer *w)
{
    size_t off = 0;
    while (off < w->buf.len) {
        ssize_t r = write(w->fd, w->buf.data + off, w->buf.len - off);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            return em__set_error(-e, "writing '%s' at offset %lld: %s", w->path,
                                 (long long)(w->written + (int64_t)off), strerror(e));
        }
        off += (size_t)r;
    }
    w->written += (int64_t)w->buf.len;
    w->buf.len = 0;
    return 0;
}

/* Appends the text of v and '\n'. */
static int writer_put(part_writer *w, em_value v)
{
    size_t room = w->buf.cap - w->buf.len;
    size_t n = em_value_format(v, (char *)w->buf.data + w->buf.len, room);
    if (n + 1 >= room) { /* did not fit with its '\n' (format also wants a terminator) */
        if (em_buf_reserve(&w->buf, n + 2) != 0)
            return em__set_error(EM_ENOMEM,
                                 "out of memory formatting a %zu-byte record for "
                                 "'%s'",
                                 n, w->path);
        n = em_value_format(v, (char *)w->buf.data + w->buf.len, w->buf.cap - w->buf.len);
    }
    w->buf.len += n;
    w->buf.data[w->buf.len++] = '\n';
    return w->buf.len >= OUT_BUF_FLUSH ? writer_flush(w) : 0;
}

/* Appends the raw bytes of a bytes or string value (binary output). */
static int writer_put_raw(part_writer *w, em_value v)
{
    em_type type = em_value_type(v);
    if (type != EM_TYPE_BYTES && type != EM_TYPE_STRING)
        return em__set_error(EM_EFORMAT,
                             "binary output of '%s' needs bytes or string records, got %s", w->path,
                             em_type_name(type));
    size_t n = em_value_copy_bytes(v, NULL, 0);
    if (em_buf_reserve(&w->buf, n) != 0)
        return em__set_error(EM_ENOMEM, "out of memory writing '%s'", w->path);
    em_value_copy_bytes(v, w->buf.data + w->buf.len, n);
    w->buf.len += n;
    return w->buf.len >= OUT_BUF_FLUSH ? writer_flush(w) : 0;
}

int em_output_write_partition(const char *staging, int partition, int attempt, em_iter *in,
                              em_task *t, bool binary)
{
    if (partition < 0 || attempt < 0)
        return em__set_error(EM_EINVAL, "bad output partition %d attempt %d", partition, attempt);
    size_t n = strlen(staging) + sizeof ATTEMPTS_SUFFIX + 64;
    char *tmp = em__malloc(n), *final = em__malloc(n);
    part_writer w = {.fd = -1, .path = tmp};
    int rc = 0, dir = -1, tmp_dir = -1;
    bool created = false;
    if (!tmp || !final || em_buf_reserve(&w.buf, OUT_BUF_FLUSH + 4096) != 0) {
        rc = em__set_error(EM_ENOMEM, "out of memory writing partition %d", partition);
        goto done;
    }
    /* Names relative to the two directories, whole paths for messages. */
    int tmp_at = snprintf(tmp, n, "%s%s/", staging, ATTEMPTS_SUFFIX);
    snprintf(tmp + tmp_at, n - (size_t)tmp_at, ".part-%05d.attempt-%d.tmp", partition, attempt);
    int final_at = snprintf(final, n, "%s/", staging);
    snprintf(final + final_at, n - (size_t)final_at, "part-%05d", partition);
    const char *tmp_name = tmp + tmp_at, *final_name = final + final_at;
    for (int k = 0; k < 2; k++) {
        int *fd = k == 0 ? &dir : &tmp_dir;
        char *path = k == 0 ? final : tmp;
        char *slash = path + (k == 0 ? final_at : tmp_at) - 1;
        *slash = '\0';
        do {
            *fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } while (*fd < 0 && errno == EINTR);
        int e = errno;
        if (*fd < 0)
            rc = em__set_error(-e, "cannot open output staging directory '%s': %s", path,
                               strerror(e));
        *slash = '/';
        if (rc) goto done;
    }
    do {
        w.fd = openat(tmp_dir, tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    } while (w.fd < 0 && errno == EINTR);
    if (w.fd < 0) {
        int e = errno;
        rc = em__set_error(-e, "cannot create output file '%s': %s", tmp, strerror(e));
        goto done;
    }
    created = true;
    em_value v;
    int r;
    while ((r = in->next(in, &v)) == EM_ROW) {
        rc = binary ? writer_put_raw(&w, v) : writer_put(&w, v);
        if (rc) break;
    }
    if (rc == 0 && r < 0)
        rc = em__error_context(r, "while writing partition %d to '%s'", partition, staging);
    if (rc == 0) rc = writer_flush(&w);
    int fd = w.fd;
    w.fd = -1;
    if (close(fd) != 0 && rc == 0) {
        int e = errno;
        rc = em__set_error(-e, "closing '%s': %s", tmp, strerror(e));
    }
    /* Only the authorised attempt of the partition renames (the hook sets the message). */
    if (rc == 0 && t && t->can_commit) rc = t->can_commit(t);
    if (rc == 0 && renameat(tmp_dir, tmp_name, dir, final_name) != 0) {
        int e = errno;
        rc = em__set_error(-e, "cannot rename '%s' to '%s': %s", tmp, final, strerror(e));
    }
done:
    if (w.fd >= 0) close(w.fd);
    if (rc && created) unlinkat(tmp_dir, tmp + tmp_at, 0); /* gone already: fine */
    if (dir >= 0) close(dir);
    if (tmp_dir >= 0) close(tmp_dir);
    em_buf_free(&w.buf);
    em__free(tmp);
    em__free(final);
    return rc;
}

/* ---- driver side: commit and abort ----------------------------------------------------------- */

/* rename(from, to) failing with EEXIST when `to` exists (any kind of file). */
static int rename_noreplace(const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
#endif
    /* No RENAME_NOREPLACE here: check first (a narrow race remains). */
    struct stat st;
    if (lstat(to, &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(from, to);
}

int em_output_job_commit(const char *staging, const char *path)
{
    char *out = strip_slashes(path);
    size_t n = strlen(staging) + 16;
    char *success = em__malloc(n), *attempts = attempts_dir(staging);
    int rc = 0;
    if (!out || !success || !attempts) {
        rc = em__set_error(EM_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(success, n, "%s/_SUCCESS", staging);
    int fd;
    do {
        fd = open(success, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int e = errno;
        rc = em__set_error(-e, "cannot create '%s': %s", success, strerror(e));
        goto done;
    }
    close(fd);
    if (rename_noreplace(staging, out) != 0) {
        int e = errno;
        unlink(success); /* staging back as it was, for the caller to abort */
        if (e == EEXIST || e == ENOTEMPTY || e == ENOTDIR)
            rc = em__set_error(EM_EEXIST,
                               "output directory '%s' already exists (created while "
                               "the job ran)",
                               out);
        else
            rc = em__set_error(-e, "cannot rename '%s' to '%s': %s", staging, out, strerror(e));
    }
    /* Committed: what attempts still running wrote goes with their directory. */
    if (rc == 0) remove_tree(attempts);
done:
    em__free(out);
    em__free(success);
    em__free(attempts);
    return rc;
}

void em_output_job_abort(const char *staging)
{
    if (!staging) return;
    em__rmtree(staging);
    char *attempts = attempts_dir(staging);
    if (attempts) remove_tree(attempts);
    em__free(attempts);
}
