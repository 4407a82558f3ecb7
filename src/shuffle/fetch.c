/* Remote shuffle blocks: the per-process block fetcher (fetcher.h: a pool of authenticated
 * connections to block servers) and the fetch of one reader (shuffle_int.h, shuf_fetch_*),
 * which streams the reader's remote blocks into its frame reader.
 *
 * A reader's fetch, like Spark's ShuffleBlockFetcherIterator but streamed:
 *   - plan: the reader's non-empty remote blocks in map order, with the tracker's sizes;
 *   - requests go out in plan order, one fetch_blocks per block, on one connection per server
 *     (checked out of the pool), several servers and several requests per connection in
 *     flight, as long as the bytes requested and not yet consumed stay within max_in_flight
 *     (ember.shuffle.reducer.maxSizeInFlight; a bigger block goes alone) and a connection has
 *     at most MAX_OUTSTANDING requests unanswered (so a request never waits behind a full
 *     socket buffer);
 *   - the reader consumes blocks in plan order: the answer header (block_data), then the
 *     block's bytes from the socket into its frame reader (a frame's payload straight into its
 *     buffer with one blocking recv(MSG_WAITALL), small reads through CONN_BUF bytes per
 *     connection, charged to the reader's memory) — answers not yet consumed wait in the
 *     kernel's socket buffers;
 *   - a connection that fails (refused, reset, closed, timed out, garbled) is retried
 *     ember.shuffle.io.maxRetries times, ember.shuffle.io.retryWait apart: a new connection,
 *     the unanswered requests sent again, and the bytes of the current block already consumed
 *     read again and skipped (the block must come back with the same size and checksum). After
 *     the last retry the reader fails with EM_EFETCH naming shuffle, map, reducer and
 *     host:port. A refusal by the server (unknown output, bad range) is EM_EFETCH at once; an
 *     authentication refusal is EM_EACCES.
 *
 * Block states (one reader):   WAITING --top_up: sent--> SENT --begin: answer read--> OPEN
 *                              OPEN --end: all bytes read--> DONE
 *                              SENT/OPEN --connection failed, fail_over: sent again--> SENT
 *                              (OPEN again for the current block once its header is re-read)
 *
 * Thread rule: a shuf_fetch belongs to its reader's task thread; the fetcher's pool is guarded
 * by f->mu and its counters are atomics, so many task threads share one fetcher.
 */
#include "shuffle/fetcher.h"
#include "shuffle/shuffle_int.h"

#include "net/handshake.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_BUF        (64u << 10) /* receive buffer per connection */
#define MAX_IDLE        64          /* pooled connections kept per process */
#define MAX_OUTSTANDING 64          /* unanswered requests per connection */

/* ---- the fetcher and its pool ------------------------------------------------------------- */

typedef struct fconn {
    int fd;
    char name[300]; /* "host:port": pool key and peer name in messages */
    uint8_t *buf;   /* CONN_BUF bytes; [pos, len) received and not yet consumed */
    size_t pos, len;
    struct fconn *next;
} fconn;

struct em_block_fetcher {
    char *app_id;
    int exec_id;
    char *secret;
    size_t max_frame;
    int64_t timeout_ms, retry_wait_ms;
    int max_retries;
    atomic_uint_fast64_t next_req;
    atomic_uint_fast64_t n_conns, n_reused, n_blocks, n_bytes, n_retries, n_skipped;
    atomic_uint_fast64_t peak_bytes, peak_blocks;
    pthread_mutex_t mu; /* guards idle, nidle */
    fconn *idle;
    int nidle;
};

static void conn_free(fconn *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    em__free(c->buf);
    em__free(c);
}

int em_block_fetcher_new(const em_conf *conf, const char *app_id, int exec_id,
                         em_block_fetcher **out)
{
    *out = NULL;
    em_block_fetcher *f = em__calloc(1, sizeof *f);
    if (!f) return em__set_error(EM_ENOMEM, "block fetcher: out of memory");
    const char *secret = conf ? em_conf_get_str(conf, "ember.authenticate.secret") : NULL;
    int64_t max = conf ? em_conf_get_bytes(conf, "ember.rpc.message.maxSize") : 0;
    int64_t timeout = conf ? em_conf_get_ms(conf, "ember.network.timeout") : 0;
    f->max_frame = max > 0 ? (size_t)max : EM_FRAME_DEFAULT_MAX;
    f->timeout_ms = timeout > 0 ? timeout : 120000;
    f->max_retries =
        conf ? (int)EM_MIN(em_conf_get_int(conf, "ember.shuffle.io.maxRetries"), (int64_t)1000) : 3;
    f->retry_wait_ms = conf ? em_conf_get_ms(conf, "ember.shuffle.io.retryWait") : 500;
    if (f->max_retries < 0) f->max_retries = 0;
    if (f->retry_wait_ms < 0) f->retry_wait_ms = 0;
    f->exec_id = exec_id;
    f->app_id = em__strdup(app_id ? app_id : "");
    if (secret && *secret) f->secret = em__strdup(secret);
    if (!f->app_id || (secret && *secret && !f->secret)) {
        em__free(f->app_id);
        em__free(f->secret);
        em__free(f);
        return em__set_error(EM_ENOMEM, "block fetcher: out of memory");
    }
    pthread_mutex_init(&f->mu, NULL);
    *out = f;
    return 0;
}

void em_block_fetcher_free(em_block_fetcher *f)
{
    if (!f) return;
    while (f->idle) {
        fconn *c = f->idle;
        f->idle = c->next;
        conn_free(c);
    }
    pthread_mutex_destroy(&f->mu);
    em__free(f->app_id);
    em__free(f->secret);
    em__free(f);
}

static void stat_max(atomic_uint_fast64_t *a, uint64_t v)
{
    uint_fast64_t cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v)) {
    }
}

void em_block_fetcher_stats_get(const em_block_fetcher *cf, em_block_fetcher_stats *out)
{
    em_block_fetcher *f = (em_block_fetcher *)cf;
    *out = (em_block_fetcher_stats){.connections = atomic_load(&f->n_conns),
                                    .reused = atomic_load(&f->n_reused),
                                    .blocks = atomic_load(&f->n_blocks),
                                    .bytes = atomic_load(&f->n_bytes),
                                    .retries = atomic_load(&f->n_retries),
                                    .skipped = atomic_load(&f->n_skipped),
                                    .peak_bytes_in_flight = atomic_load(&f->peak_bytes),
                                    .peak_blocks_in_flight = atomic_load(&f->peak_blocks)};
}

/* A pooled connection to name that still looks healthy (an idle connection has nothing to
 * read: readable means closed by the server or garbage), or NULL. */
static fconn *pool_take(em_block_fetcher *f, const char *name)
{
    for (;;) {
        pthread_mutex_lock(&f->mu);
        fconn **pp = &f->idle;
        while (*pp && strcmp((*pp)->name, name) != 0) pp = &(*pp)->next;
        fconn *c = *pp;
        if (c) {
            *pp = c->next;
            f->nidle--;
        }
        pthread_mutex_unlock(&f->mu);
        if (!c) return NULL;
        struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 0) == 0) {
            c->next = NULL;
            atomic_fetch_add(&f->n_reused, 1);
            return c;
        }
        conn_free(c); /* stale: try the next one */
    }
}

/* Drops every pooled connection to name (after a failure they are likely dead too). */
static void pool_forget(em_block_fetcher *f, const char *name)
{
    pthread_mutex_lock(&f->mu);
    fconn *dead = NULL;
    for (fconn **pp = &f->idle; *pp;) {
        fconn *c = *pp;
        if (strcmp(c->name, name) == 0) {
            *pp = c->next;
            f->nidle--;
            c->next = dead;
            dead = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&f->mu);
    while (dead) {
        fconn *c = dead;
        dead = c->next;
        conn_free(c);
    }
}

/* Returns c to the pool when clean (nothing unread), else closes it. */
static void pool_put(em_block_fetcher *f, fconn *c, bool clean)
{
    if (!c) return;
    if (clean && c->pos == c->len) {
        pthread_mutex_lock(&f->mu);
        if (f->nidle < MAX_IDLE) {
            c->next = f->idle;
            f->idle = c;
            f->nidle++;
            c = NULL;
        }
        pthread_mutex_unlock(&f->mu);
    }
    conn_free(c);
}

/* A new authenticated connection to host:port. */
static int conn_open(em_block_fetcher *f, const char *host, int port, const char *name, fconn **out)
{
    *out = NULL;
    fconn *c = em__calloc(1, sizeof *c);
    if (!c || !(c->buf = em__malloc(CONN_BUF))) {
        em__free(c);
        return em__set_error(EM_ENOMEM, "block fetcher: out of memory");
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    int64_t deadline = em_sock_deadline(f->timeout_ms);
    int rc = em_sock_connect(host, port, deadline, &c->fd);
    if (rc == 0) {
        em_handshake_config hc = {.role = EM_ROLE_FETCHER,
                                  .app_id = f->app_id,
                                  .secret = f->secret,
                                  .max_frame = f->max_frame,
                                  .initiator = 1,
                                  .deadline = deadline};
        em_handshake_peer peer;
        rc = em_sock_handshake(c->fd, &hc, c->name, &peer);
        if (rc == 0) rc = em_sock_set_blocking(c->fd, f->timeout_ms);
    } else {
        c->fd = -1;
    }
    if (rc) {
        conn_free(c);
        return rc;
    }
    atomic_fetch_add(&f->n_conns, 1);
    *out = c;
    return 0;
}

/* Reads exactly n bytes through c's buffer (large reads go straight to dst). */
static int conn_read(em_block_fetcher *f, fconn *c, void *dst, size_t n)
{
    uint8_t *d = dst;
    while (n > 0) {
        if (c->pos < c->len) {
            size_t k = EM_MIN(n, c->len - c->pos);
            memcpy(d, c->buf + c->pos, k);
            c->pos += k;
            d += k;
            n -= k;
            continue;
        }
        if (n >= CONN_BUF / 2) return em_sock_recv_all(c->fd, d, n, c->name);
        c->pos = c->len = 0;
        ssize_t r = recv(c->fd, c->buf, CONN_BUF, 0); /* blocking, SO_RCVTIMEO */
        if (r > 0) {
            c->len = (size_t)r;
        } else if (r == 0) {
            return em__set_error(-ECONNRESET, "%s closed the connection", c->name);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return em__set_error(-ETIMEDOUT, "reading from %s: no data for %lld ms", c->name,
                                 (long long)f->timeout_ms);
        } else if (errno != EINTR) {
            int e = errno;
            return em__set_error(-e, "reading from %s: %s", c->name, strerror(e));
        }
    }
    return 0;
}

/* ---- one reader's fetch ------------------------------------------------------------------ */

enum { FB_WAITING, FB_SENT, FB_OPEN, FB_DONE };

typedef struct fblock {
    int map, server, exec_id;
    uint64_t expect; /* bytes: the tracker's size, then the server's */
    uint64_t req_id;
    int state;
} fblock;

typedef struct fserver {
    const char *host;
    int port;
    char name[300];
    fconn *conn;
    int outstanding; /* requests on conn not yet read to their end */
    int attempts;    /* retries spent since the last block completed */
    int last_block;  /* index of this server's last block in the plan */
} fserver;

struct shuf_fetch {
    em_block_fetcher *f;
    int shuffle_id, reducer;
    fblock *b;
    int nb;
    fserver *sv;
    int nsv;
    int next_send; /* the next block to request */
    int cur;       /* the block being read (or the next one to read) */
    bool cur_open;
    uint64_t cur_size, cur_read, cur_sum;
    int64_t in_flight; /* bytes requested and not consumed */
    int blocks_in_flight;
    uint64_t max_in_flight;
    em_buf frame;
    uint8_t *skip;  /* scratch for bytes read again after a retry */
    shuf_mem *mem;  /* charged CONN_BUF per connection held (may be NULL) */
    int failed_map; /* the map whose block could not be fetched (the last EM_EFETCH), or -1 */
};

int shuf_fetch_open(struct em_block_fetcher *f, int shuffle_id, int reducer,
                    const shuf_fetch_block *blocks, int n, uint64_t max_in_flight, shuf_mem *mem,
                    shuf_fetch **out)
{
    *out = NULL;
    shuf_fetch *fs = em__calloc(1, sizeof *fs);
    if (!fs) return em__set_error(EM_ENOMEM, "shuffle fetch: out of memory");
    fs->failed_map = -1;
    *fs = (shuf_fetch){.f = f,
                       .shuffle_id = shuffle_id,
                       .reducer = reducer,
                       .mem = mem,
                       .nb = n,
                       .max_in_flight = max_in_flight ? max_in_flight : 1};
    fs->b = em__calloc((size_t)(n ? n : 1), sizeof *fs->b);
    fs->sv = em__calloc((size_t)(n ? n : 1), sizeof *fs->sv);
    if (!fs->b || !fs->sv) {
        shuf_fetch_close(fs);
        return em__set_error(EM_ENOMEM, "shuffle fetch: out of memory");
    }
    for (int i = 0; i < n; i++) {
        const shuf_fetch_block *in = &blocks[i];
        char name[300];
        snprintf(name, sizeof name, "%s:%d", in->host ? in->host : "", in->port);
        int s = 0;
        while (s < fs->nsv && strcmp(fs->sv[s].name, name) != 0) s++;
        if (s == fs->nsv) {
            fserver *sv = &fs->sv[fs->nsv++];
            sv->host = in->host ? in->host : "";
            sv->port = in->port;
            memcpy(sv->name, name, sizeof name);
        }
        fs->sv[s].last_block = i;
        fs->b[i] =
            (fblock){.map = in->map, .server = s, .exec_id = in->exec_id, .expect = in->size};
    }
    *out = fs;
    return 0;
}

/* Gives up server s's connection: back to the pool when clean, else closed. */
static void drop_conn(shuf_fetch *fs, fserver *s, bool clean)
{
    if (!s->conn) return;
    pool_put(fs->f, s->conn, clean);
    s->conn = NULL;
    if (fs->mem) shuf_mem_unuse(fs->mem, CONN_BUF);
}

void shuf_fetch_close(shuf_fetch *fs)
{
    if (!fs) return;
    for (int s = 0; s < fs->nsv; s++) drop_conn(fs, &fs->sv[s], fs->sv[s].outstanding == 0);
    em_buf_free(&fs->frame);
    em__free(fs->skip);
    em__free(fs->b);
    em__free(fs->sv);
    em__free(fs);
}

/* Connection-level failures are worth a new connection; refusals and corruption are not. */
static bool retryable(int rc)
{
    return rc != EM_EACCES && rc != EM_ENOMEM && rc != EM_EFETCH && rc != EM_ECORRUPT &&
           rc != EM_EINVAL;
}

/* Sends the request of block i on its server's connection (connecting first if needed). */
static int send_request(shuf_fetch *fs, int i)
{
    fblock *b = &fs->b[i];
    fserver *s = &fs->sv[b->server];
    em_block_fetcher *f = fs->f;
    if (!s->conn) {
        s->outstanding = 0;
        s->conn = pool_take(f, s->name);
        if (!s->conn) {
            int rc = conn_open(f, s->host, s->port, s->name, &s->conn);
            if (rc) return rc;
        }
        if (fs->mem) shuf_mem_force(fs->mem, CONN_BUF); /* its receive buffer */
    }
    b->req_id = atomic_fetch_add(&f->next_req, 1) + 1;
    em_msg_fetch_blocks q = {.req_id = b->req_id,
                             .app_id = em_str_c(f->app_id),
                             .exec_id = (uint32_t)b->exec_id,
                             .shuffle_id = (uint32_t)fs->shuffle_id,
                             .map_id = (uint32_t)b->map,
                             .start_reducer = (uint32_t)fs->reducer,
                             .end_reducer = (uint32_t)fs->reducer + 1};
    int rc = em_sock_send_msg(s->conn->fd, EM_MSG_FETCH_BLOCKS, &q, 0,
                              em_sock_deadline(f->timeout_ms), s->name);
    if (rc) return rc;
    b->state = FB_SENT;
    s->outstanding++;
    return 0;
}

/* Reads the answer header of block i (the oldest unanswered request of its connection). */
static int read_answer(shuf_fetch *fs, int i, uint64_t *size, uint64_t *sum)
{
    fblock *b = &fs->b[i];
    fserver *s = &fs->sv[b->server];
    em_block_fetcher *f = fs->f;
    uint8_t hdr[EM_FRAME_HEADER_SIZE];
    int rc = conn_read(f, s->conn, hdr, sizeof hdr);
    if (rc) return rc;
    uint32_t length =
        (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (length < 4 || (uint64_t)length + 4 > f->max_frame)
        return em__set_error(EM_EFORMAT, "answer from %s: frame length %u out of range", s->name,
                             length);
    fs->frame.len = 0;
    if (em_buf_reserve(&fs->frame, (size_t)length + 4))
        return em__set_error(EM_ENOMEM, "shuffle fetch: out of memory");
    memcpy(fs->frame.data, hdr, sizeof hdr);
    if ((rc = conn_read(f, s->conn, fs->frame.data + sizeof hdr, (size_t)length + 4 - sizeof hdr)))
        return rc;
    fs->frame.len = (size_t)length + 4;
    em_msg m;
    if ((rc = em_msg_decode(fs->frame.data, fs->frame.len, f->max_frame, &m)) != 0)
        return em__error_context(rc, "answer from %s", s->name);
    if (m.type != EM_MSG_BLOCK_DATA || m.u.block_data.req_id != b->req_id) {
        const char *n = em_msg_name(m.type);
        return em__set_error(
            EM_EFORMAT, "answer from %s: %s %llu where block_data %llu was due", s->name,
            n ? n : "unknown",
            (unsigned long long)(m.type == EM_MSG_BLOCK_DATA ? m.u.block_data.req_id : 0),
            (unsigned long long)b->req_id);
    }
    const em_msg_block_data *a = &m.u.block_data;
    if (a->status != 0) /* the answer is complete: the connection stays usable */
        return em__set_error(EM_EFETCH,
                             "fetch failure: shuffle %d map %d reducer %d from %s: the server "
                             "answered %s: %.*s",
                             fs->shuffle_id, b->map, fs->reducer, s->name, em_err_name(a->status),
                             (int)EM_MIN(a->message.len, 900u), a->message.p);
    if (a->checksums.len != 8)
        return em__set_error(EM_EFORMAT, "answer from %s: %u checksum bytes for one block", s->name,
                             a->checksums.len);
    memcpy(sum, a->checksums.p, 8); /* little-endian hosts (blockio.c checks) */
    *size = a->size;
    return 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The current block was open: its answer is read again on the new connection and the bytes
 * already consumed are skipped. */
static int reopen_current(shuf_fetch *fs)
{
    uint64_t size = 0, sum = 0;
    int rc = read_answer(fs, fs->cur, &size, &sum);
    if (rc) return rc;
    fblock *b = &fs->b[fs->cur];
    fserver *s = &fs->sv[b->server];
    if (size != fs->cur_size || sum != fs->cur_sum)
        return em__set_error(EM_EFETCH,
                             "fetch failure: shuffle %d map %d reducer %d from %s: the block "
                             "changed while it was being fetched (%llu bytes, now %llu)",
                             fs->shuffle_id, b->map, fs->reducer, s->name,
                             (unsigned long long)fs->cur_size, (unsigned long long)size);
    if (!fs->skip && !(fs->skip = em__malloc(CONN_BUF)))
        return em__set_error(EM_ENOMEM, "shuffle fetch: out of memory");
    for (uint64_t left = fs->cur_read; left > 0;) {
        size_t k = (size_t)EM_MIN(left, (uint64_t)CONN_BUF);
        if ((rc = conn_read(fs->f, s->conn, fs->skip, k)) != 0) return rc;
        left -= k;
    }
    atomic_fetch_add(&fs->f->n_skipped, fs->cur_read);
    b->state = FB_OPEN;
    return 0;
}

/* After a failure rc on server si: a new connection, every unanswered request of si sent
 * again in order, and the current block re-opened when it is si's and was open. Retried
 * f->max_retries times per block; then EM_EFETCH (or rc itself when not worth retrying). */
static int fail_over(shuf_fetch *fs, int si, int rc)
{
    fserver *s = &fs->sv[si];
    em_block_fetcher *f = fs->f;
    /* The block the failure is about: the oldest of si not yet consumed. */
    int blk = fs->cur;
    while (blk < fs->nb - 1 && fs->b[blk].server != si) blk++;
    char name[400], cause[1024];
    snprintf(name, sizeof name, "block shuffle_%d_%d_%d from %s", fs->shuffle_id, fs->b[blk].map,
             fs->reducer, s->name);
    for (;;) {
        snprintf(cause, sizeof cause, "%s", em_errmsg());
        drop_conn(fs, s, false);
        s->outstanding = 0;
        if (!retryable(rc)) return rc; /* its message names the host already */
        if (s->attempts >= f->max_retries) {
            fs->failed_map = fs->b[blk].map;
            return em__set_error(EM_EFETCH,
                                 "fetch failure: shuffle %d map %d reducer %d from %s: %s "
                                 "(gave up after %d retries, ember.shuffle.io.maxRetries)",
                                 fs->shuffle_id, fs->b[blk].map, fs->reducer, s->name, cause,
                                 s->attempts);
        }
        s->attempts++;
        atomic_fetch_add(&f->n_retries, 1);
        EM_LOG(EM_LOG_WARN, "shuffle", "fetching %s failed (%s); retry %d of %d in %lld ms", name,
               cause, s->attempts, f->max_retries, (long long)f->retry_wait_ms);
        pool_forget(f, s->name);
        sleep_ms(f->retry_wait_ms);
        rc = 0;
        for (int i = fs->cur; rc == 0 && i < fs->next_send; i++) {
            fblock *b = &fs->b[i];
            if (b->server != si || b->state == FB_DONE) continue;
            b->state = FB_WAITING;
            rc = send_request(fs, i);
        }
        if (rc == 0 && fs->cur_open && fs->b[fs->cur].server == si) rc = reopen_current(fs);
        if (rc == 0) return 0;
    }
}

/* Sends requests while the window allows. */
static int top_up(shuf_fetch *fs)
{
    while (fs->next_send < fs->nb) {
        fblock *b = &fs->b[fs->next_send];
        fserver *s = &fs->sv[b->server];
        if (fs->blocks_in_flight > 0 && (uint64_t)fs->in_flight + b->expect > fs->max_in_flight)
            break;
        if (s->outstanding >= MAX_OUTSTANDING) break;
        int rc = send_request(fs, fs->next_send);
        if (rc) {
            b->state = FB_WAITING;
            /* The requests before it on that server are re-sent by fail_over; this one is
             * sent on the next turn of the loop. */
            if ((rc = fail_over(fs, b->server, rc)) != 0) return rc;
            continue;
        }
        fs->in_flight += (int64_t)b->expect;
        fs->blocks_in_flight++;
        fs->next_send++;
        if (fs->blocks_in_flight > 1) stat_max(&fs->f->peak_bytes, (uint64_t)fs->in_flight);
        stat_max(&fs->f->peak_blocks, (uint64_t)fs->blocks_in_flight);
    }
    return 0;
}

int shuf_fetch_begin(shuf_fetch *fs, int map, uint64_t *size, uint64_t *checksum)
{
    if (fs->cur >= fs->nb || fs->b[fs->cur].map != map || fs->cur_open)
        return em__set_error(EM_EINTERNAL, "shuffle fetch: block of map %d read out of order", map);
    int rc = top_up(fs);
    if (rc) return rc;
    fblock *b = &fs->b[fs->cur];
    if (b->state != FB_SENT)
        return em__set_error(EM_EINTERNAL, "shuffle fetch: block of map %d was not requested", map);
    for (;;) {
        rc = read_answer(fs, fs->cur, &fs->cur_size, &fs->cur_sum);
        if (rc == 0) break;
        if (rc == EM_EFETCH) return rc; /* the server refused: no retry */
        if ((rc = fail_over(fs, b->server, rc)) != 0) return rc;
    }
    fs->in_flight += (int64_t)fs->cur_size - (int64_t)b->expect;
    b->expect = fs->cur_size;
    b->state = FB_OPEN;
    fs->cur_open = true;
    fs->cur_read = 0;
    *size = fs->cur_size;
    *checksum = fs->cur_sum;
    return 0;
}

int shuf_fetch_read(void *src, void *buf, size_t n)
{
    shuf_fetch *fs = src;
    if (!fs->cur_open || n > fs->cur_size - fs->cur_read)
        return em__set_error(EM_EINTERNAL, "shuffle fetch: read beyond the block");
    fblock *b = &fs->b[fs->cur];
    for (;;) {
        int rc = conn_read(fs->f, fs->sv[b->server].conn, buf, n);
        if (rc == 0) break;
        if ((rc = fail_over(fs, b->server, rc)) != 0) return rc;
    }
    fs->cur_read += n;
    fs->in_flight -= (int64_t)n;
    return fs->next_send < fs->nb ? top_up(fs) : 0;
}

int shuf_fetch_end(shuf_fetch *fs)
{
    if (!fs->cur_open || fs->cur_read != fs->cur_size)
        return em__set_error(EM_EINTERNAL, "shuffle fetch: block ended early");
    fblock *b = &fs->b[fs->cur];
    fserver *s = &fs->sv[b->server];
    b->state = FB_DONE;
    s->outstanding--;
    s->attempts = 0;
    fs->blocks_in_flight--;
    fs->cur_open = false;
    atomic_fetch_add(&fs->f->n_blocks, 1);
    atomic_fetch_add(&fs->f->n_bytes, fs->cur_size);
    if (s->last_block == fs->cur && s->outstanding == 0)
        drop_conn(fs, s, true); /* nothing more for this server: back to the pool */
    fs->cur++;
    return top_up(fs);
}

int shuf_fetch_failed_map(const shuf_fetch *fs)
{
    return fs ? fs->failed_map : -1;
}
