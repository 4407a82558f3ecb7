/* Content-addressed file transfer over the control-plane protocol (GET_FILE / FILE_CHUNK of
 * messages.def): the registry and server side used by drivers, and the blocking client used
 * by workers to fetch application binaries (executor_runner.c).
 *
 * Exchange, one chunk at a time (the client asks for the next chunk when one arrives):
 *
 *   client (worker)                                         server (driver's endpoint)
 *   GET_FILE{req_id, hash, offset 0, max_len}      --->
 *                                                  <---   FILE_CHUNK{req_id, 0, total, "", data}
 *   GET_FILE{req_id + 1, hash, offset += len, ...} --->   ... until offset == total
 *   a chunk with status != 0 ends the fetch with that code and the server's message.
 *
 * The registry: a mutex-guarded array of (hash, absolute path, size). em_file_serve opens the
 * file per request and refuses when its size changed since registration (the client would
 * fail the hash check anyway). The client runs a private em_endpoint (its own loop thread);
 * the loop thread writes each chunk to the temporary file and feeds the SHA-256 state; the
 * calling thread waits on a condition variable with a deadline that each chunk renews.
 * Thread rule: see file_server.h.
 */
#include "deploy/file_server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- hashing ------------------------------------------------------------------------------ */
static void to_hex(const uint8_t *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

int em_file_hash_valid(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
    return n == 64;
}

int em_file_sha256(const char *path, char hex[EM_FILE_HASH_HEX], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return em__set_error(-errno, "cannot open '%s': %s", path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    uint8_t *buf = em__malloc(1 << 16);
    if (!buf) {
        close(fd);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = em__set_error(-errno, "cannot read '%s': %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        total += (uint64_t)n;
    }
    em__free(buf);
    close(fd);
    if (rc) return rc;
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, d);
    to_hex(d, sizeof d, hex);
    if (size) *size = total;
    return 0;
}

int em_host_port_parse(const char *hp, char **host, int *port)
{
    *host = NULL;
    *port = 0;
    const char *h = hp, *hend, *colon;
    if (!hp || !*hp) return em__set_error(EM_EINVAL, "empty host:port");
    if (*h == '[') {
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':')
            return em__set_error(EM_EINVAL, "'%s' is not [address]:port", hp);
        colon = hend + 1;
        h++;
    } else {
        colon = strrchr(h, ':');
        hend = colon;
    }
    if (!colon || hend == h) return em__set_error(EM_EINVAL, "'%s' is not host:port", hp);
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || errno || p < 1 || p > 65535)
        return em__set_error(EM_EINVAL, "'%s': port must be 1-65535", hp);
    *host = em__strndup(h, (size_t)(hend - h));
    if (!*host) return em__set_error(EM_ENOMEM, "out of memory");
    *port = (int)p;
    return 0;
}

/* ---- the registry ------------------------------------------------------------------------- */
struct file_entry {
    char hash[EM_FILE_HASH_HEX];
    char *path;
    uint64_t size;
};

struct em_file_registry {
    pthread_mutex_t mu;
    struct file_entry *v; /* guarded by mu */
    size_t n, cap;
};

int em_file_registry_new(em_file_registry **out)
{
    *out = em__calloc(1, sizeof **out);
    if (!*out) return em__set_error(EM_ENOMEM, "out of memory");
    pthread_mutex_init(&(*out)->mu, NULL);
    return 0;
}

void em_file_registry_free(em_file_registry *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) em__free(r->v[i].path);
    em__free(r->v);
    pthread_mutex_destroy(&r->mu);
    em__free(r);
}

int em_file_registry_add(em_file_registry *r, const char *path, char hex[EM_FILE_HASH_HEX])
{
    char h[EM_FILE_HASH_HEX];
    uint64_t size = 0;
    int rc = em_file_sha256(path, h, &size);
    if (rc) return rc;
    char *abs = realpath(path, NULL);
    if (!abs) return em__set_error(-errno, "cannot resolve '%s': %s", path, strerror(errno));
    char *copy = em__strdup(abs);
    free(abs);
    if (!copy) return em__set_error(EM_ENOMEM, "out of memory");
    if (hex) memcpy(hex, h, EM_FILE_HASH_HEX);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].hash, h)) {
            pthread_mutex_unlock(&r->mu);
            em__free(copy);
            return 0;
        }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 4;
        struct file_entry *v = em__realloc(r->v, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&r->mu);
            em__free(copy);
            return em__set_error(EM_ENOMEM, "out of memory");
        }
        r->v = v;
        r->cap = cap;
    }
    struct file_entry *e = &r->v[r->n++];
    memcpy(e->hash, h, EM_FILE_HASH_HEX);
    e->path = copy;
    e->size = size;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int em_file_registry_lookup(em_file_registry *r, const char *hash, char **path, uint64_t *size)
{
    *path = NULL;
    pthread_mutex_lock(&r->mu);
    int rc = EM_ENOENT;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].hash, hash)) {
            *path = em__strdup(r->v[i].path);
            if (size) *size = r->v[i].size;
            rc = *path ? 0 : EM_ENOMEM;
            break;
        }
    pthread_mutex_unlock(&r->mu);
    if (rc == EM_ENOENT) return em__set_error(rc, "no file with hash %s is served here", hash);
    if (rc) return em__set_error(rc, "out of memory");
    return 0;
}

static void send_chunk_error(em_conn *c, uint64_t req_id, int status, const char *msg)
{
    em_msg_file_chunk reply = {.req_id = req_id, .status = status, .message = em_str_c(msg)};
    em_conn_send(c, EM_MSG_FILE_CHUNK, &reply);
}

void em_file_serve(em_file_registry *r, em_conn *c, const em_msg_get_file *m)
{
    char hash[EM_FILE_HASH_HEX] = "";
    if (m->hash.len < sizeof hash) {
        memcpy(hash, m->hash.p, m->hash.len);
        hash[m->hash.len] = '\0';
    }
    char *path = NULL;
    uint64_t size = 0;
    char msg[512];
    int rc = r ? em_file_registry_lookup(r, hash, &path, &size) : EM_ENOENT;
    if (rc) {
        snprintf(msg, sizeof msg, "no file with hash %.*s is served by this process",
                 (int)EM_MIN(m->hash.len, 80u), m->hash.p);
        EM_LOG(EM_LOG_WARN, "files", "GET_FILE from %s: %s", em_conn_peer(c), msg);
        send_chunk_error(c, m->req_id, rc == EM_ENOMEM ? rc : EM_ENOENT, msg);
        return;
    }
    if (m->offset > size) {
        snprintf(msg, sizeof msg, "offset %llu is beyond the end of file %s (%llu bytes)",
                 (unsigned long long)m->offset, hash, (unsigned long long)size);
        send_chunk_error(c, m->req_id, EM_ERANGE, msg);
        em__free(path);
        return;
    }
    size_t want = m->max_len ? EM_MIN(m->max_len, EM_FILE_CHUNK_MAX) : EM_FILE_CHUNK_MAX;
    if (want > size - m->offset) want = (size_t)(size - m->offset);
    uint8_t *buf = em__malloc(want ? want : 1);
    int fd = buf ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat sb;
    rc = 0;
    if (!buf) {
        rc = EM_ENOMEM;
        snprintf(msg, sizeof msg, "out of memory");
    } else if (fd < 0 || fstat(fd, &sb) < 0) {
        rc = -errno;
        snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror(errno));
    } else if ((uint64_t)sb.st_size != size) {
        rc = EM_ECORRUPT;
        snprintf(msg, sizeof msg, "%s changed since it was registered under hash %s", path, hash);
    }
    size_t got = 0;
    while (!rc && got < want) {
        ssize_t n = pread(fd, buf + got, want - got, (off_t)(m->offset + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : EM_EIO;
            snprintf(msg, sizeof msg, "cannot read %s: %s", path,
                     n < 0 ? strerror(errno) : "unexpected end of file");
            break;
        }
        got += (size_t)n;
    }
    if (fd >= 0) close(fd);
    if (rc) {
        EM_LOG(EM_LOG_WARN, "files", "GET_FILE %s from %s: %s", hash, em_conn_peer(c), msg);
        send_chunk_error(c, m->req_id, rc, msg);
    } else {
        em_msg_file_chunk reply = {.req_id = m->req_id,
                                   .status = 0,
                                   .total_size = size,
                                   .message = em_str_c(""),
                                   .data = {buf, (uint32_t)got}};
        rc = em_conn_send(c, EM_MSG_FILE_CHUNK, &reply);
        if (rc && rc != EM_ESTATE) {
            snprintf(msg, sizeof msg, "cannot send a chunk of %s: %s", hash, em_errmsg());
            send_chunk_error(c, m->req_id, rc, msg);
        }
    }
    em__free(buf);
    em__free(path);
}

/* ---- the client --------------------------------------------------------------------------- */
struct fetch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *hash, *where;
    int fd;
    uint32_t chunk;
    crypto_hash_sha256_state sha; /* loop thread */
    em_conn *conn;                /* retained once connected; guarded by mu */
    uint64_t req_id, offset, total;
    int have_total;
    int done, rc;        /* guarded by mu */
    int64_t progress_ms; /* last event, guarded by mu */
    char msg[768];
};

/* Ends the fetch with rc (0 = complete). Loop thread; takes f->mu. */
static void finish(struct fetch *f, int rc, const char *fmt, ...) EM_PRINTF(3, 4);
static void finish(struct fetch *f, int rc, const char *fmt, ...)
{
    pthread_mutex_lock(&f->mu);
    if (!f->done) {
        f->done = 1;
        f->rc = rc;
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(f->msg, sizeof f->msg, fmt, ap);
            va_end(ap);
        }
        pthread_cond_signal(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
}

static int ask(struct fetch *f, em_conn *c)
{
    em_msg_get_file g = {
        .req_id = ++f->req_id, .hash = em_str_c(f->hash), .offset = f->offset, .max_len = f->chunk};
    return em_conn_send(c, EM_MSG_GET_FILE, &g);
}

static void fetch_connected(em_conn *c, int status, void *arg)
{
    struct fetch *f = arg;
    if (status < 0) {
        finish(f, EM_ESTATE, "cannot connect to %s: %s", f->where,
               status == EM_EACCES ? "authentication refused (ember.authenticate.secret differs)"
                                   : em_strerror(status));
        return;
    }
    em_conn_retain(c);
    pthread_mutex_lock(&f->mu);
    f->conn = c;
    f->progress_ms = em__now_ms();
    pthread_mutex_unlock(&f->mu);
    int rc = ask(f, c);
    if (rc) finish(f, rc, "cannot ask %s for the file: %s", f->where, em_errmsg());
}

static void fetch_message(em_conn *c, const em_msg *msg, void *user)
{
    struct fetch *f = user;
    if (msg->type != EM_MSG_FILE_CHUNK) {
        finish(f, EM_EFORMAT, "unexpected message %s from %s", em_msg_name(msg->type), f->where);
        return;
    }
    const em_msg_file_chunk *k = &msg->u.file_chunk;
    if (k->req_id != f->req_id) return; /* an answer to an abandoned request */
    if (k->status) {
        finish(f,
               k->status == EM_ENOENT ? EM_ENOENT
               : k->status < 0        ? k->status
                                      : EM_EIO,
               "the server answered: %.*s", (int)k->message.len, k->message.p);
        return;
    }
    if (f->have_total && k->total_size != f->total) {
        finish(f, EM_ECORRUPT, "%s changed the file size from %llu to %llu bytes during the fetch",
               f->where, (unsigned long long)f->total, (unsigned long long)k->total_size);
        return;
    }
    f->total = k->total_size;
    f->have_total = 1;
    if (k->data.len > f->total - f->offset) {
        finish(f, EM_EFORMAT, "%s sent more bytes than the file has", f->where);
        return;
    }
    size_t off = 0;
    while (off < k->data.len) {
        ssize_t n = pwrite(f->fd, k->data.p + off, k->data.len - off, (off_t)(f->offset + off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            finish(f, -errno, "cannot write the fetched file: %s", strerror(errno));
            return;
        }
        off += (size_t)n;
    }
    crypto_hash_sha256_update(&f->sha, k->data.p, k->data.len);
    f->offset += k->data.len;
    pthread_mutex_lock(&f->mu);
    f->progress_ms = em__now_ms();
    pthread_mutex_unlock(&f->mu);
    if (f->offset == f->total) {
        finish(f, 0, NULL);
        return;
    }
    if (k->data.len == 0) {
        finish(f, EM_EFORMAT, "%s ended the file at %llu of %llu bytes", f->where,
               (unsigned long long)f->offset, (unsigned long long)f->total);
        return;
    }
    int rc = ask(f, c);
    if (rc) finish(f, rc, "cannot ask %s for the next chunk: %s", f->where, em_errmsg());
}

static void fetch_closed(em_conn *c, int code, const char *reason, void *user)
{
    (void)c;
    struct fetch *f = user;
    finish(f, EM_ESTATE, "connection to %s closed before the file was complete (%s%s%s)", f->where,
           reason ? reason : "", code ? ": " : "", code ? em_strerror(code) : "");
}

int em_file_fetch(const em_file_fetch_opts *o, const char *host_port, const char *hash,
                  const char *dest, uint64_t *size)
{
    if (size) *size = 0;
    if (!em_file_hash_valid(hash))
        return em__set_error(EM_EINVAL, "fetch of '%s' from %s: not a hex SHA-256", hash,
                             host_port ? host_port : "?");
    char *host = NULL;
    int port = 0;
    int rc = em_host_port_parse(host_port, &host, &port);
    if (rc) return em__error_context(rc, "fetch of %s", hash);
    if (sodium_init() < 0) {
        em__free(host);
        return em__set_error(EM_EINTERNAL, "libsodium cannot initialise");
    }
    static atomic_uint counter;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", dest, (int)getpid(), atomic_fetch_add(&counter, 1));
    struct fetch f = {.hash = hash, .where = host_port, .fd = -1};
    size_t max_frame = o->max_frame ? o->max_frame : EM_FRAME_DEFAULT_MAX;
    f.chunk = (uint32_t)EM_MIN((size_t)EM_FILE_CHUNK_MAX,
                               max_frame > 4096 ? max_frame - 1024 : max_frame / 2);
    crypto_hash_sha256_init(&f.sha);
    pthread_mutex_init(&f.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f.cv, &ca);
    pthread_condattr_destroy(&ca);
    f.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (f.fd < 0) rc = em__set_error(-errno, "cannot create '%s': %s", tmp, strerror(errno));
    em_endpoint *ep = NULL;
    em_endpoint_config cfg = {.role = EM_ROLE_WORKER,
                              .app_id = o->app_id,
                              .secret = o->secret,
                              .max_frame = max_frame,
                              .handshake_timeout_ms =
                                  (unsigned)EM_MIN(EM_MAX(o->timeout_ms, 1), 600000),
                              .on_message = fetch_message,
                              .on_close = fetch_closed,
                              .user = &f};
    int64_t timeout = o->timeout_ms > 0 ? o->timeout_ms : 120000;
    if (!rc) rc = em_endpoint_new(&cfg, &ep);
    if (!rc) rc = em_endpoint_start(ep);
    f.progress_ms = em__now_ms();
    if (!rc) rc = em_endpoint_connect(ep, host, port, fetch_connected, &f);
    if (!rc) {
        pthread_mutex_lock(&f.mu);
        while (!f.done) {
            int64_t left = f.progress_ms + timeout - em__now_ms();
            if (left <= 0) {
                f.done = 1;
                f.rc = EM_ESTATE;
                snprintf(f.msg, sizeof f.msg,
                         "no answer from %s for %lld ms (ember.network.timeout)", host_port,
                         (long long)timeout);
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + (left % 1000) * 1000000;
            ts.tv_sec += (time_t)(left / 1000 + ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&f.cv, &f.mu, &ts);
        }
        rc = f.rc;
        pthread_mutex_unlock(&f.mu);
        if (rc) em__set_error(rc, "%s", f.msg);
    } else {
        em__error_context(rc, "cannot reach %s", host_port);
    }
    if (ep) em_endpoint_free(ep); /* joins the loop: no callback runs after this */
    if (f.conn) em_conn_release(f.conn);
    if (!rc) {
        uint8_t d[crypto_hash_sha256_BYTES];
        char got[EM_FILE_HASH_HEX];
        crypto_hash_sha256_final(&f.sha, d);
        to_hex(d, sizeof d, got);
        if (strcmp(got, hash))
            rc = em__set_error(
                EM_ECORRUPT, "the %llu bytes fetched from %s have SHA-256 %s, not the %s asked for",
                (unsigned long long)f.offset, host_port, got, hash);
    }
    if (!rc && (fchmod(f.fd, 0755) || fsync(f.fd)))
        rc = em__set_error(-errno, "cannot finish '%s': %s", tmp, strerror(errno));
    if (f.fd >= 0) close(f.fd);
    if (!rc && rename(tmp, dest))
        rc = em__set_error(-errno, "cannot rename '%s' to '%s': %s", tmp, dest, strerror(errno));
    if (rc && f.fd >= 0) unlink(tmp);
    if (!rc && size) *size = f.offset;
    if (rc) em__error_context(rc, "fetch of file %s from %s", hash, host_port);
    pthread_cond_destroy(&f.cv);
    pthread_mutex_destroy(&f.mu);
    em__free(host);
    return rc;
}
