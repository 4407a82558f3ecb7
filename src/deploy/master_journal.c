/* The master's recovery journal: record files written atomically, read back with every byte
 * checked (format and layout in master_journal.h). Called by the master daemon (master.c)
 * under its mutex: at start (open, load, prune the binaries), then after each event (apply);
 * and by the unit tests. One thread at a time per journal; no state besides the directory.
 */
#include "deploy/master_journal.h"

#include "base/wire.h"
#include "deploy/file_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MAGIC          "EMJR"
#define VERSION        1
#define HEADER_BYTES   12
#define CHECKSUM_BYTES 8
#define MAX_RECORD     (64u << 20) /* a record is a few KiB; anything past this is corrupt */

struct em__mjournal {
    char *dir, *binaries;
};

static const char *prefix_of(int kind)
{
    switch (kind) {
    case EM_MJ_WORKER:
        return "worker_";
    case EM_MJ_APP:
        return "app_";
    case EM_MJ_DRIVER:
        return "driver_";
    default:
        return "ids";
    }
}

void em__mjournal_file_name(int kind, const char *id, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = (size_t)snprintf(out, cap, "%s", prefix_of(kind));
    if (kind == EM_MJ_IDS || !id || n >= cap) return;
    for (const unsigned char *p = (const unsigned char *)id; *p && n + 4 <= cap; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
}

int em__mjournal_open(const char *dir, em__mjournal **out)
{
    *out = NULL;
    if (!dir || !*dir)
        return em__set_error(EM_EINVAL,
                             "ember.deploy.recoveryMode=FILESYSTEM needs a directory: set "
                             "ember.deploy.recoveryDirectory");
    em__mjournal *j = em__calloc(1, sizeof *j);
    em_buf b = EM_BUF_INIT;
    if (!j || em_buf_printf(&b, "%s/binaries%c", dir, '\0') || !(j->dir = em__strdup(dir))) {
        em_buf_free(&b);
        em__mjournal_close(j);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    j->binaries = (char *)b.data;
    int rc = em__mkdirs(j->binaries);
    if (rc) {
        em__mjournal_close(j);
        return em__error_context(rc, "recovery directory (ember.deploy.recoveryDirectory)");
    }
    chmod(dir, 0700);
    *out = j;
    return 0;
}

void em__mjournal_close(em__mjournal *j)
{
    if (!j) return;
    em__free(j->dir);
    em__free(j->binaries);
    em__free(j);
}

const char *em__mjournal_binaries_dir(const em__mjournal *j)
{
    return j->binaries;
}

const char *em__mjournal_dir(const em__mjournal *j)
{
    return j->dir;
}

/* ---- writing ----------------------------------------------------------------------------------
 */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Frames payload as a record of kind into out: header, payload, checksum. */
static int frame(int kind, const em_buf *payload, int err, em_buf *out)
{
    if (err) return em__set_error(EM_ENOMEM, "out of memory encoding a journal record");
    uint8_t head[HEADER_BYTES] = {'E', 'M', 'J', 'R', VERSION, (uint8_t)kind, 0, 0};
    for (int i = 0; i < 4; i++) head[8 + i] = (uint8_t)(payload->len >> (8 * i));
    size_t start = out->len;
    int rc = em_buf_append(out, head, sizeof head);
    if (!rc && payload->len) rc = em_buf_append(out, payload->data, payload->len);
    uint8_t tail[CHECKSUM_BYTES];
    if (!rc) {
        uint64_t sum = XXH3_64bits(out->data + start, out->len - start);
        for (int i = 0; i < 8; i++) tail[i] = (uint8_t)(sum >> (8 * i));
        rc = em_buf_append(out, tail, sizeof tail);
    }
    return rc ? em__set_error(EM_ENOMEM, "out of memory encoding a journal record") : 0;
}

/* Writes the framed record rec as file <name>: .tmp.<name>, synced, renamed over <name>. */
static int write_record(em__mjournal *j, const char *name, const em_buf *rec)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", j->dir, name);
    snprintf(tmp, sizeof tmp, "%s/.tmp.%s", j->dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : write_all(fd, rec->data, rec->len);
    if (!rc && fdatasync(fd) != 0) rc = -errno;
    if (fd >= 0 && close(fd) != 0 && !rc) rc = -errno;
    if (!rc && rename(tmp, path) != 0) rc = -errno;
    if (rc) {
        unlink(tmp);
        return em__set_error(rc, "cannot write journal record %s: %s", path, strerror(-rc));
    }
    return 0;
}

static void put_strv(em_wire_writer *w, char *const *v, int n)
{
    em_wire_put_uvar(w, (uint64_t)(n > 0 ? n : 0));
    for (int i = 0; i < n; i++) em_wire_put_str(w, v[i]);
}

int em__mjournal_encode_worker(const em_mworker *wk, em_buf *out)
{
    em_buf b = EM_BUF_INIT;
    em_wire_writer w = em_wire_writer_on(&b);
    em_wire_put_str(&w, wk->id);
    em_wire_put_str(&w, wk->host);
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(wk->port, 0));
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(wk->cores, 0));
    em_wire_put_uvar(&w, wk->memory_mb);
    int rc = frame(EM_MJ_WORKER, &b, w.err, out);
    em_buf_free(&b);
    return rc;
}

int em__mjournal_encode_app(const em_mapp *a, em_buf *out)
{
    em_buf b = EM_BUF_INIT;
    em_wire_writer w = em_wire_writer_on(&b);
    em_wire_put_str(&w, a->id);
    em_wire_put_str(&w, a->name);
    em_wire_put_str(&w, a->driver_url);
    em_wire_put_str(&w, a->binary_hash);
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(a->cores_max, 0));
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(a->executor_cores, 0));
    em_wire_put_uvar(&w, a->executor_memory_mb);
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(a->next_exec_id, 0));
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(a->executors_launched, 0));
    put_strv(&w, a->env, a->num_env);
    int rc = frame(EM_MJ_APP, &b, w.err, out);
    em_buf_free(&b);
    return rc;
}

int em__mjournal_encode_driver(const em_mdriver *d, em_buf *out)
{
    em_buf b = EM_BUF_INIT;
    em_wire_writer w = em_wire_writer_on(&b);
    em_wire_put_str(&w, d->id);
    em_wire_put_str(&w, d->name);
    em_wire_put_str(&w, d->binary_hash);
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(d->cores, 0));
    em_wire_put_uvar(&w, d->memory_mb);
    em_wire_put_bool(&w, d->supervise);
    em_wire_put_u8(&w, (uint8_t)d->state);
    em_wire_put_str(&w, d->worker_id);
    em_wire_put_bool(&w, d->placed || d->recovered); /* launched on worker_id */
    em_wire_put_bool(&w, d->kill_wanted);
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(d->launches, 0));
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(d->failures, 0));
    em_wire_put_ivar(&w, d->exit_code);
    em_wire_put_str(&w, d->message);
    put_strv(&w, d->args, d->num_args);
    put_strv(&w, d->env, d->num_env);
    int rc = frame(EM_MJ_DRIVER, &b, w.err, out);
    em_buf_free(&b);
    return rc;
}

int em__mjournal_encode_ids(int next_app_number, int next_driver_number, em_buf *out)
{
    em_buf b = EM_BUF_INIT;
    em_wire_writer w = em_wire_writer_on(&b);
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(next_app_number, 0));
    em_wire_put_uvar(&w, (uint64_t)EM_MAX(next_driver_number, 0));
    int rc = frame(EM_MJ_IDS, &b, w.err, out);
    em_buf_free(&b);
    return rc;
}

/* Writes the record encoded into rec (encode's result rc) under the name of (kind, id). */
static int put_record(em__mjournal *j, int kind, const char *id, em_buf *rec, int rc)
{
    char name[1024];
    em__mjournal_file_name(kind, id, name, sizeof name);
    if (!rc)
        rc = write_record(j, name, rec);
    else
        rc = em__error_context(rc, "journal record %s/%s", j->dir, name);
    em_buf_free(rec);
    return rc;
}

int em__mjournal_put_worker(em__mjournal *j, const em_mworker *w)
{
    em_buf b = EM_BUF_INIT;
    return put_record(j, EM_MJ_WORKER, w->id, &b, em__mjournal_encode_worker(w, &b));
}

int em__mjournal_put_app(em__mjournal *j, const em_mapp *a)
{
    em_buf b = EM_BUF_INIT;
    return put_record(j, EM_MJ_APP, a->id, &b, em__mjournal_encode_app(a, &b));
}

int em__mjournal_put_driver(em__mjournal *j, const em_mdriver *d)
{
    em_buf b = EM_BUF_INIT;
    return put_record(j, EM_MJ_DRIVER, d->id, &b, em__mjournal_encode_driver(d, &b));
}

int em__mjournal_put_ids(em__mjournal *j, int next_app_number, int next_driver_number)
{
    em_buf b = EM_BUF_INIT;
    return put_record(j, EM_MJ_IDS, NULL, &b,
                      em__mjournal_encode_ids(next_app_number, next_driver_number, &b));
}

int em__mjournal_remove(em__mjournal *j, int kind, const char *id)
{
    char name[1024], path[PATH_MAX];
    em__mjournal_file_name(kind, id, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", j->dir, name);
    if (unlink(path) != 0 && errno != ENOENT)
        return em__set_error(-errno, "cannot remove journal record %s: %s", path, strerror(errno));
    return 0;
}

static bool same_record(const em__mjournal_op *a, const em__mjournal_op *b)
{
    if (a->kind != b->kind) return false;
    if (!a->id || !b->id) return a->id == b->id;
    return !strcmp(a->id, b->id);
}

int em__mjournal_apply(em__mjournal *j, em__mstate *st, const em__mjournal_op *ops, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        const em__mjournal_op *op = &ops[i];
        bool later = false;
        for (size_t k = i + 1; k < n && !later; k++) later = same_record(op, &ops[k]);
        if (later) continue; /* the last op of a record decides */
        int rc = 0;
        switch (op->kind) {
        case EM_MJ_WORKER: {
            em_mworker *w = op->remove ? NULL : em__mworkers_find(&st->workers, op->id);
            rc = w && w->state != EM_WORKER_DEAD ? em__mjournal_put_worker(j, w)
                                                 : em__mjournal_remove(j, op->kind, op->id);
            break;
        }
        case EM_MJ_APP: {
            em_mapp *a = op->remove ? NULL : em__mstate_find_app(st, op->id);
            bool live = a && (a->state == EM_APP_WAITING || a->state == EM_APP_RUNNING ||
                              a->state == EM_APP_UNKNOWN);
            rc = live ? em__mjournal_put_app(j, a) : em__mjournal_remove(j, op->kind, op->id);
            break;
        }
        case EM_MJ_DRIVER: {
            em_mdriver *d = op->remove ? NULL : em__mstate_find_driver(st, op->id);
            rc = d && !em__driver_state_final(d->state) ? em__mjournal_put_driver(j, d)
                                                        : em__mjournal_remove(j, op->kind, op->id);
            break;
        }
        case EM_MJ_IDS:
            rc = em__mjournal_put_ids(j, st->next_app_number, st->next_driver_number);
            break;
        default:
            break;
        }
        if (rc) {
            failures++;
            EM_LOG(EM_LOG_ERROR, "master", "journal: %s", em_errmsg());
        }
    }
    return failures;
}

/* ---- reading ----------------------------------------------------------------------------------
 */
static int get_small(em_wire_reader *r, int64_t max, const char *field)
{
    uint64_t v = em_wire_get_uvar(r);
    if (!r->err && v > (uint64_t)max)
        em_wire_fail(r, "%s %llu is out of range", field, (unsigned long long)v);
    return r->err ? 0 : (int)v;
}

/* A non-NULL string (NULL on error, r->err set). */
static char *get_str(em_wire_reader *r, const char *field)
{
    char *s = NULL;
    if (em_wire_get_str(r, &s) || r->err) return NULL;
    if (!s) em_wire_fail(r, "%s is missing", field);
    return s;
}

static char **get_strv(em_wire_reader *r, int *n, const char *field)
{
    size_t count = em_wire_get_count(r, 1, field);
    *n = 0;
    if (r->err) return NULL;
    char **v = em__calloc(count + 1, sizeof *v);
    if (!v) {
        r->err = em__set_error(EM_ENOMEM, "out of memory reading %s", field);
        return NULL;
    }
    for (size_t i = 0; i < count && !r->err; i++) {
        v[i] = get_str(r, field);
        if (v[i]) (*n)++;
    }
    return v;
}

static int read_worker(em_wire_reader *r, em_mworker *w)
{
    memset(w, 0, sizeof *w);
    w->id = get_str(r, "worker id");
    w->host = get_str(r, "host");
    w->port = get_small(r, 65535, "port");
    w->cores = get_small(r, INT_MAX, "cores");
    w->memory_mb = em_wire_get_uvar(r);
    if (!r->err && !*w->id) em_wire_fail(r, "empty worker id");
    return r->err;
}

static int read_app(em_wire_reader *r, em_mapp **out)
{
    em_mapp *a = em__calloc(1, sizeof *a);
    if (!a) return r->err = em__set_error(EM_ENOMEM, "out of memory");
    a->id = get_str(r, "application id");
    a->name = get_str(r, "name");
    a->driver_url = get_str(r, "driver URL");
    a->binary_hash = get_str(r, "binary hash");
    a->cores_max = get_small(r, INT_MAX, "cores max");
    a->executor_cores = get_small(r, INT_MAX, "executor cores");
    a->executor_memory_mb = em_wire_get_uvar(r);
    a->next_exec_id = get_small(r, INT_MAX - 1, "next executor id");
    a->executors_launched = get_small(r, INT_MAX, "executors launched");
    a->env = get_strv(r, &a->num_env, "environment entry");
    if (!r->err && !em_file_hash_valid(a->binary_hash)) em_wire_fail(r, "bad binary hash");
    if (!r->err && !*a->id) em_wire_fail(r, "empty application id");
    if (r->err) {
        em__mapp_free(a);
        return r->err;
    }
    *out = a;
    return 0;
}

static int read_driver(em_wire_reader *r, em_mdriver **out)
{
    em_mdriver *d = em__calloc(1, sizeof *d);
    if (!d) return r->err = em__set_error(EM_ENOMEM, "out of memory");
    d->id = get_str(r, "driver id");
    d->name = get_str(r, "name");
    d->binary_hash = get_str(r, "binary hash");
    d->cores = get_small(r, INT_MAX, "cores");
    d->memory_mb = em_wire_get_uvar(r);
    d->supervise = em_wire_get_bool(r);
    d->state = em_wire_get_u8(r);
    if (!r->err) em_wire_get_str(r, &d->worker_id); /* NULL: never launched */
    d->placed = em_wire_get_bool(r);
    d->kill_wanted = em_wire_get_bool(r);
    d->launches = get_small(r, INT_MAX, "launches");
    d->failures = get_small(r, INT_MAX, "failures");
    d->exit_code = (int)em_wire_get_int(r, INT_MIN, INT_MAX, "exit code");
    d->message = get_str(r, "message");
    d->args = get_strv(r, &d->num_args, "argument");
    d->env = get_strv(r, &d->num_env, "environment entry");
    if (!r->err && (d->state < EM_DRIVER_SUBMITTED || d->state > EM_DRIVER_ERROR))
        em_wire_fail(r, "driver state %d is not one of 1-7", d->state);
    if (!r->err && !em_file_hash_valid(d->binary_hash)) em_wire_fail(r, "bad binary hash");
    if (!r->err && d->placed && !d->worker_id) em_wire_fail(r, "launched on no worker");
    if (!r->err && !*d->id) em_wire_fail(r, "empty driver id");
    if (r->err) {
        em__mdriver_free(d);
        return r->err;
    }
    *out = d;
    return 0;
}

/* Reads the file at path into *data (em__free it). 0, -errno, EM_ECORRUPT (too big). */
static int slurp(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return em__set_error(-errno, "cannot open it: %s", strerror(errno));
    struct stat sb;
    int rc = fstat(fd, &sb) != 0 ? em__set_error(-errno, "cannot stat it: %s", strerror(errno)) : 0;
    if (!rc && (!S_ISREG(sb.st_mode) || sb.st_size > (off_t)MAX_RECORD))
        rc = em__set_error(EM_ECORRUPT, "not a regular file of at most %u bytes", MAX_RECORD);
    uint8_t *buf = rc ? NULL : em__malloc((size_t)sb.st_size + 1);
    if (!rc && !buf) rc = em__set_error(EM_ENOMEM, "out of memory");
    size_t got = 0;
    while (!rc && got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = em__set_error(-errno, "cannot read it: %s", strerror(errno));
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (rc) {
        em__free(buf);
        return rc;
    }
    *data = buf;
    *len = got;
    return 0;
}

/* Checks the frame of a record (of kind, or any kind for 0): 0 with the payload's place and
 * its kind, or EM_ECORRUPT with a message saying what is wrong. */
static int check_frame(const uint8_t *p, size_t len, int *kind, const uint8_t **payload, size_t *n)
{
    if (len < HEADER_BYTES + CHECKSUM_BYTES)
        return em__set_error(EM_ECORRUPT, "truncated: %zu bytes, a record has at least %d", len,
                             HEADER_BYTES + CHECKSUM_BYTES);
    if (memcmp(p, MAGIC, 4)) return em__set_error(EM_ECORRUPT, "not a journal record (bad magic)");
    if (p[4] != VERSION)
        return em__set_error(EM_ECORRUPT, "format version %u (this master reads %d)", p[4],
                             VERSION);
    if (p[5] < EM_MJ_WORKER || p[5] > EM_MJ_IDS || (*kind && p[5] != *kind))
        return em__set_error(EM_ECORRUPT, "a record of kind %u under a name of kind %d", p[5],
                             *kind);
    if (p[6] || p[7]) return em__set_error(EM_ECORRUPT, "reserved header bytes are not zero");
    size_t want = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
    if (want > len || want + HEADER_BYTES + CHECKSUM_BYTES != len)
        return em__set_error(EM_ECORRUPT, "%s: %zu bytes where the header says %zu",
                             len < want + HEADER_BYTES + CHECKSUM_BYTES ? "truncated" : "too long",
                             len, want + HEADER_BYTES + CHECKSUM_BYTES);
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++) sum |= (uint64_t)p[HEADER_BYTES + want + i] << (8 * i);
    if (XXH3_64bits(p, HEADER_BYTES + want) != sum)
        return em__set_error(EM_ECORRUPT, "checksum mismatch (corrupt)");
    *kind = p[5];
    *payload = p + HEADER_BYTES;
    *n = want;
    return 0;
}

static int kind_of_name(const char *name)
{
    if (!strcmp(name, "ids")) return EM_MJ_IDS;
    if (!strncmp(name, "worker_", 7)) return EM_MJ_WORKER;
    if (!strncmp(name, "app_", 4)) return EM_MJ_APP;
    if (!strncmp(name, "driver_", 7)) return EM_MJ_DRIVER;
    return 0;
}

int em__mjournal_decode(const uint8_t *data, size_t len, const char *name, em__mrecovered *out)
{
    int kind = 0;
    if (name && !(kind = kind_of_name(name)))
        return em__set_error(EM_ECORRUPT, "not a journal record name");
    const uint8_t *payload = NULL;
    size_t n = 0;
    int rc = check_frame(data, len, &kind, &payload, &n);
    if (rc) return rc;
    em_wire_reader r;
    em_wire_reader_init(&r, payload, n, "record");
    const char *id = NULL;
    em_mworker w = {0};
    em_mapp *a = NULL;
    em_mdriver *d = NULL;
    int next_app = 0, next_driver = 0;
    switch (kind) {
    case EM_MJ_WORKER:
        rc = read_worker(&r, &w);
        id = w.id;
        break;
    case EM_MJ_APP:
        rc = read_app(&r, &a);
        id = a ? a->id : NULL;
        break;
    case EM_MJ_DRIVER:
        rc = read_driver(&r, &d);
        id = d ? d->id : NULL;
        break;
    default:
        next_app = get_small(&r, INT_MAX, "next application number");
        next_driver = get_small(&r, INT_MAX, "next driver number");
        rc = r.err;
        break;
    }
    if (!rc) rc = em_wire_expect_end(&r);
    if (rc == EM_EFORMAT) rc = em__error_context(EM_ECORRUPT, "undecodable");
    char expect[1024];
    if (!rc && name && kind != EM_MJ_IDS) {
        em__mjournal_file_name(kind, id, expect, sizeof expect);
        if (strcmp(expect, name))
            rc = em__set_error(EM_ECORRUPT, "holds the record of %s (file %s)", id, expect);
    }
    if (!rc) {
        switch (kind) {
        case EM_MJ_WORKER: {
            em_mworker *v = em__realloc(out->workers, (out->nworkers + 1) * sizeof *v);
            if (!v) break;
            out->workers = v;
            v[out->nworkers++] = w;
            return 0;
        }
        case EM_MJ_APP: {
            em_mapp **v = em__realloc(out->apps, (out->napps + 1) * sizeof *v);
            if (!v) break;
            out->apps = v;
            v[out->napps++] = a;
            return 0;
        }
        case EM_MJ_DRIVER: {
            em_mdriver **v = em__realloc(out->drivers, (out->ndrivers + 1) * sizeof *v);
            if (!v) break;
            out->drivers = v;
            v[out->ndrivers++] = d;
            return 0;
        }
        default:
            out->next_app_number = next_app;
            out->next_driver_number = next_driver;
            return 0;
        }
        rc = em__set_error(EM_ENOMEM, "out of memory");
    }
    em__free(w.id);
    em__free(w.host);
    em__mapp_free(a);
    em__mdriver_free(d);
    return rc;
}

/* Loads one record file into out. 0, or an error with the reason as message. */
static int load_one(em__mjournal *j, const char *name, em__mrecovered *out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", j->dir, name);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = slurp(path, &data, &len);
    if (!rc) rc = em__mjournal_decode(data, len, name, out);
    em__free(data);
    return rc;
}

static int note_skipped(char ***skipped, size_t *n, const char *name, const char *why)
{
    if (!skipped) return 0;
    em_buf b = EM_BUF_INIT;
    char **v = em__realloc(*skipped, (*n + 1) * sizeof *v);
    if (!v || em_buf_printf(&b, "%s: %s%c", name, why, '\0')) {
        if (v) *skipped = v;
        em_buf_free(&b);
        return EM_ENOMEM;
    }
    *skipped = v;
    v[(*n)++] = (char *)b.data;
    return 0;
}

int em__mjournal_load(em__mjournal *j, em__mrecovered *out, char ***skipped, size_t *n_skipped)
{
    memset(out, 0, sizeof *out);
    if (skipped) *skipped = NULL;
    if (n_skipped) *n_skipped = 0;
    size_t nskip = 0;
    DIR *dir = opendir(j->dir);
    if (!dir)
        return em__set_error(-errno, "cannot read the recovery directory %s: %s", j->dir,
                             strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(dir))) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "binaries")) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", j->dir, name);
        if (!strncmp(name, ".tmp.", 5)) {
            EM_LOG(EM_LOG_INFO, "master", "journal: removing %s, a record never completed", path);
            unlink(path);
            continue;
        }
        int lrc = load_one(j, name, out);
        if (!lrc) continue;
        if (lrc == EM_ENOMEM) {
            rc = lrc;
            break;
        }
        char why[1024];
        snprintf(why, sizeof why, "%s", em_errmsg());
        EM_LOG(EM_LOG_WARN, "master", "journal: skipping %s: %s", path, why);
        if (note_skipped(skipped, &nskip, path, why))
            rc = em__set_error(EM_ENOMEM, "out of memory");
    }
    closedir(dir);
    if (n_skipped) *n_skipped = nskip;
    if (rc) {
        em__mrecovered_free(out);
        for (size_t i = 0; skipped && i < nskip; i++) em__free((*skipped)[i]);
        if (skipped) {
            em__free(*skipped);
            *skipped = NULL;
        }
        if (n_skipped) *n_skipped = 0;
    }
    return rc;
}

int em__mjournal_prune_binaries(em__mjournal *j, const em__mstate *st)
{
    DIR *dir = opendir(j->binaries);
    if (!dir) return em__set_error(-errno, "cannot read %s: %s", j->binaries, strerror(errno));
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        bool used = false;
        for (size_t i = 0; i < st->ndrivers && !used; i++)
            used = !em__driver_state_final(st->drivers[i]->state) &&
                   !strcmp(st->drivers[i]->binary_hash, e->d_name);
        if (used) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", j->binaries, e->d_name);
        if (unlink(path) == 0) {
            removed++;
            EM_LOG(EM_LOG_INFO, "master", "journal: removed %s, the binary of no live driver",
                   path);
        }
    }
    closedir(dir);
    return removed;
}
