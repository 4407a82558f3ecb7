/* chaos_proxy: a fault-injecting TCP proxy for the chaos suite (tests/chaos/chaos.py).
 *
 * The kernel here has no netem, so network delays come from this proxy. It listens on one
 * address and forwards every accepted connection to a target: a fixed one (--target) or, with
 * --transparent, the connection's original destination before an nft `redirect` / `dnat` rule
 * sent it here (getsockopt SO_ORIGINAL_DST, IPv4). With --mark N every upstream socket carries
 * the firewall mark N (SO_MARK, needs CAP_NET_ADMIN), so the redirecting rule can exempt the
 * proxy's own connections (`meta mark N return`).
 *
 * Faults, changed at run time through a line-based control socket (--control HOST:PORT, or a
 * path for a Unix socket, which also reaches a proxy inside another network namespace). One
 * command per line, answered by one line starting "ok" or "error" (`conns` answers one line
 * per connection, then "ok"):
 *
 *   latency MS [JITTER_MS]   delay every chunk read by MS + uniform [0, JITTER_MS] ms, both
 *                            directions; the order of the bytes is kept (0 = off)
 *   bandwidth BYTES_PER_SEC  pace each direction of each connection to this rate (0 = off)
 *   stall MS [ID]            forward nothing on the open connections (or connection ID) for MS
 *                            ms; what arrives meanwhile is queued (reading stops past 1 MiB)
 *   reset PERCENT            reset (RST) this percentage of new connections when accepted
 *   reset-open [ID]          reset every open connection (or connection ID) now, both sides
 *   blackhole on|off         accept new connections but never read or forward them; they stay
 *                            open until `clear`, `reset-open` or the peer gives up
 *   clear                    every fault off: stalls end, blackholed connections are reset
 *   status                   faults and counters on one line
 *   conns                    the open connections: id, client, target, bytes each way
 *   help                     the command list
 *
 * On start it prints "listen HOST:PORT", "control WHERE" and "ready" on stdout (ports chosen by
 * the kernel when 0 was asked), then logs connections and commands on stderr.
 *
 * Per connection: client (accepted) and upstream sockets, one queue per direction of chunks
 * with the time each may leave (arrival + latency + jitter, never before the previous chunk,
 * paced by the bandwidth, held while stalled), a timer per direction that writes the chunks
 * that are due. End of stream travels in order as an empty chunk and becomes a shutdown of the
 * other side; a read error (reset) resets the other side. The connection is freed when both
 * directions are finished or it is reset, once its four handles have closed.
 *
 * Thread rule: one thread, the libuv loop's; nothing is shared. A test tool outside libember:
 * plain malloc, errors to stderr (it exits 2 on a bad command line, 1 when it cannot listen).
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif

#define READ_CHUNK    (64u << 10)
#define MAX_QUEUED    (1u << 20) /* per direction: reading stops above, resumes below half */
#define MAX_CTL_LINE  512
#define MAX_CTL_REPLY 256

/* ---- state ---------------------------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    uint64_t due_ms; /* loop time at which it may be written */
    size_t len;      /* 0: end of stream */
    char data[];
} chunk;

struct conn;

/* One direction of a connection: bytes read from src, written to dst. */
typedef struct direction {
    struct conn *c;
    uv_tcp_t *src, *dst;
    const char *name; /* "up" (client to target) or "down" */
    chunk *head, *tail;
    size_t queued;       /* bytes queued or being written */
    uint64_t last_due;   /* due time of the last chunk queued (order is kept) */
    uint64_t paced_till; /* bandwidth: when the link is free again */
    uint64_t bytes;      /* forwarded so far */
    int reading, eof_read, shut, done;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
} direction;

typedef struct conn {
    uint64_t id;
    uv_tcp_t client, upstream;
    direction up, down;
    char peer[64], target[64];
    uint64_t stalled_till; /* forward nothing before this loop time */
    int connected, blackholed, closing, open_handles;
    struct conn *prev, *next;
} conn;

static struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_stream_t *control; /* TCP or pipe listener */
    struct sockaddr_in target;
    int transparent;
    int have_mark;
    unsigned mark;
    uint64_t rng;
    /* faults */
    uint64_t latency_ms, jitter_ms, bandwidth; /* bandwidth in bytes per second */
    unsigned reset_pct;
    int blackhole;
    /* counters */
    uint64_t next_id, accepted, resets, blackholed, forwarded;
    conn *conns;
} P;

static char read_buf[READ_CHUNK];

static void plog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void plog(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chaos_proxy: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* xorshift64*: the proxy's own random choices (jitter, resets), seeded by --seed. */
static uint64_t rnd(void)
{
    P.rng ^= P.rng >> 12;
    P.rng ^= P.rng << 25;
    P.rng ^= P.rng >> 27;
    return P.rng * 2685821657736338717ull;
}

static void fmt_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[64] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ss;
        uv_ip4_name(in, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)ss;
        uv_ip6_name(in6, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, cap, "%s:%d", host, port);
}

/* ---- connection teardown -----------------------------------------------------------------------
 */

static void free_queue(direction *d)
{
    while (d->head) {
        chunk *k = d->head;
        d->head = k->next;
        free(k);
    }
    d->tail = NULL;
}

static void conn_release(conn *c)
{
    if (--c->open_handles > 0) return;
    free_queue(&c->up);
    free_queue(&c->down);
    free(c);
}

/* Sockets carry the connection in data, timers their direction. */
static void on_handle_closed(uv_handle_t *h)
{
    conn_release(h->type == UV_TIMER ? ((direction *)h->data)->c : h->data);
}

static void close_handle(uv_handle_t *h, int reset)
{
    if (uv_is_closing(h)) return;
    if (reset && h->type == UV_TCP && uv_tcp_close_reset((uv_tcp_t *)h, on_handle_closed) == 0)
        return;
    uv_close(h, on_handle_closed);
}

/* Closes both sockets (with RST when reset) and the timers; the connection is freed once the
 * four handles have closed. */
static void conn_close(conn *c, int reset, const char *why)
{
    if (c->closing) return;
    c->closing = 1;
    plog("conn %llu %s -> %s closed (%s; %llu bytes up, %llu down)", (unsigned long long)c->id,
         c->peer, c->target, why, (unsigned long long)c->up.bytes,
         (unsigned long long)c->down.bytes);
    if (reset) P.resets++;
    if (c->prev)
        c->prev->next = c->next;
    else
        P.conns = c->next;
    if (c->next) c->next->prev = c->prev;
    close_handle((uv_handle_t *)&c->client, reset);
    close_handle((uv_handle_t *)&c->upstream, reset);
    close_handle((uv_handle_t *)&c->up.timer, 0);
    close_handle((uv_handle_t *)&c->down.timer, 0);
}

static conn *conn_by_id(uint64_t id)
{
    for (conn *c = P.conns; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

/* ---- forwarding
 * ---------------------------------------------------------------------------------- */

static void start_reading(direction *d);
static void pump(direction *d);

static void maybe_finish(conn *c)
{
    if (c->up.done && c->down.done) conn_close(c, 0, "both directions ended");
}

typedef struct write_req {
    uv_write_t req;
    direction *d;
    chunk *k;
} write_req;

static void on_written(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    direction *d = w->d;
    conn *c = d->c;
    d->queued -= w->k->len;
    d->bytes += w->k->len;
    P.forwarded += w->k->len;
    free(w->k);
    free(w);
    if (c->closing) return;
    if (status < 0) {
        conn_close(c, 1, uv_strerror(status));
        return;
    }
    if (!d->reading && !d->eof_read && d->queued < MAX_QUEUED / 2) start_reading(d);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    direction *d = req->data;
    (void)status;
    d->done = 1;
    if (!d->c->closing) maybe_finish(d->c);
}

/* Writes every chunk that is due; re-arms the timer for the next one. */
static void pump(direction *d)
{
    conn *c = d->c;
    if (c->closing) return;
    uint64_t now = uv_now(P.loop);
    while (d->head) {
        chunk *k = d->head;
        uint64_t due = k->due_ms > c->stalled_till ? k->due_ms : c->stalled_till;
        if (due > now) break; /* on_timer re-arms for it */
        d->head = k->next;
        if (!d->head) d->tail = NULL;
        if (k->len == 0) { /* end of stream, in order */
            free(k);
            d->shut = 1;
            d->shutdown_req.data = d;
            if (uv_shutdown(&d->shutdown_req, (uv_stream_t *)d->dst, on_shutdown) < 0) {
                d->done = 1;
                maybe_finish(c);
            }
            return;
        }
        write_req *w = malloc(sizeof *w);
        if (!w) {
            free(k);
            conn_close(c, 1, "out of memory");
            return;
        }
        w->d = d;
        w->k = k;
        uv_buf_t b = uv_buf_init(k->data, (unsigned)k->len);
        int rc = uv_write(&w->req, (uv_stream_t *)d->dst, &b, 1, on_written);
        if (rc < 0) {
            d->queued -= k->len;
            free(k);
            free(w);
            conn_close(c, 1, uv_strerror(rc));
            return;
        }
    }
}

static void on_timer(uv_timer_t *t)
{
    direction *d = t->data;
    pump(d);
    if (d->c->closing || !d->head) return;
    uint64_t now = uv_now(P.loop);
    uint64_t due = d->head->due_ms > d->c->stalled_till ? d->head->due_ms : d->c->stalled_till;
    uv_timer_start(&d->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Schedules the direction: writes what is due now, arms the timer for the rest. */
static void schedule(direction *d)
{
    on_timer(&d->timer);
}

static void enqueue(direction *d, const char *data, size_t len)
{
    conn *c = d->c;
    chunk *k = malloc(sizeof *k + len);
    if (!k) {
        conn_close(c, 1, "out of memory");
        return;
    }
    k->next = NULL;
    k->len = len;
    if (len) memcpy(k->data, data, len);
    uint64_t now = uv_now(P.loop);
    uint64_t due = now + P.latency_ms + (P.jitter_ms ? rnd() % (P.jitter_ms + 1) : 0);
    if (due < d->last_due) due = d->last_due;
    if (P.bandwidth && len) {
        uint64_t start = due > d->paced_till ? due : d->paced_till;
        d->paced_till = start + (len * 1000 + P.bandwidth - 1) / P.bandwidth;
        due = d->paced_till;
    }
    d->last_due = due;
    k->due_ms = due;
    if (d->tail)
        d->tail->next = k;
    else
        d->head = k;
    d->tail = k;
    d->queued += len;
    if (d->queued >= MAX_QUEUED && d->reading) {
        uv_read_stop((uv_stream_t *)d->src);
        d->reading = 0;
    }
    schedule(d);
}

static void alloc_read(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn *c = s->data;
    direction *d = s == (uv_stream_t *)&c->client ? &c->up : &c->down;
    if (c->closing || n == 0) return;
    if (n == UV_EOF) {
        uv_read_stop(s);
        d->reading = 0;
        d->eof_read = 1;
        enqueue(d, NULL, 0);
        return;
    }
    if (n < 0) {
        conn_close(c, 1, uv_strerror((int)n));
        return;
    }
    enqueue(d, read_buf, (size_t)n);
}

static void start_reading(direction *d)
{
    if (d->reading || d->eof_read || d->c->closing) return;
    if (uv_read_start((uv_stream_t *)d->src, alloc_read, on_read) == 0) d->reading = 1;
}

/* ---- accepting
 * ------------------------------------------------------------------------------------ */

static void on_upstream_connected(uv_connect_t *req, int status)
{
    conn *c = req->data;
    free(req);
    if (c->closing) return;
    if (status < 0) {
        plog("conn %llu: cannot connect to %s: %s", (unsigned long long)c->id, c->target,
             uv_strerror(status));
        conn_close(c, 1, "upstream connect failed");
        return;
    }
    c->connected = 1;
    uv_tcp_nodelay(&c->client, 1);
    uv_tcp_nodelay(&c->upstream, 1);
    start_reading(&c->up);
    start_reading(&c->down);
}

static void direction_init(conn *c, direction *d, uv_tcp_t *src, uv_tcp_t *dst, const char *name)
{
    d->c = c;
    d->src = src;
    d->dst = dst;
    d->name = name;
    uv_timer_init(P.loop, &d->timer);
    d->timer.data = d;
    c->open_handles++;
}

static void on_accept(uv_stream_t *server, int status)
{
    if (status < 0) {
        plog("accept: %s", uv_strerror(status));
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        plog("accept: out of memory");
        return;
    }
    c->id = ++P.next_id;
    uv_tcp_init(P.loop, &c->client);
    c->client.data = c;
    c->open_handles = 1;
    if (uv_accept(server, (uv_stream_t *)&c->client) < 0) {
        uv_close((uv_handle_t *)&c->client, on_handle_closed);
        return;
    }
    P.accepted++;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->client, (struct sockaddr *)&ss, &len) == 0)
        fmt_addr(&ss, c->peer, sizeof c->peer);
    struct sockaddr_in dst = P.target;
    if (P.transparent) {
        uv_os_fd_t fd;
        socklen_t dl = sizeof dst;
        if (uv_fileno((uv_handle_t *)&c->client, &fd) < 0 ||
            getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dl) < 0) {
            plog("conn %llu from %s: no original destination (%s): reset",
                 (unsigned long long)c->id, c->peer, strerror(errno));
            P.resets++;
            close_handle((uv_handle_t *)&c->client, 1);
            return;
        }
    }
    struct sockaddr_storage dss = {0};
    memcpy(&dss, &dst, sizeof dst);
    fmt_addr(&dss, c->target, sizeof c->target);
    /* The connection joins the list only with all four handles, so conn_close can close them. */
    uv_tcp_init_ex(P.loop, &c->upstream, AF_INET);
    c->upstream.data = c;
    c->open_handles++;
    direction_init(c, &c->up, &c->client, &c->upstream, "up");
    direction_init(c, &c->down, &c->upstream, &c->client, "down");
    c->next = P.conns;
    if (P.conns) P.conns->prev = c;
    P.conns = c;
    if (P.reset_pct && rnd() % 100 < P.reset_pct) {
        conn_close(c, 1, "reset at accept (reset fault)");
        return;
    }
    if (P.blackhole) {
        c->blackholed = 1;
        P.blackholed++;
        plog("conn %llu %s -> %s blackholed", (unsigned long long)c->id, c->peer, c->target);
        return;
    }
    if (P.have_mark) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->upstream, &fd) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_MARK, &P.mark, sizeof P.mark) < 0) {
            plog("conn %llu: cannot set the mark %#x: %s", (unsigned long long)c->id, P.mark,
                 strerror(errno));
            conn_close(c, 1, "SO_MARK failed");
            return;
        }
    }
    uv_connect_t *req = malloc(sizeof *req);
    if (!req) {
        conn_close(c, 1, "out of memory");
        return;
    }
    req->data = c;
    int rc = uv_tcp_connect(req, &c->upstream, (struct sockaddr *)&dst, on_upstream_connected);
    if (rc < 0) {
        free(req);
        plog("conn %llu: cannot connect to %s: %s", (unsigned long long)c->id, c->target,
             uv_strerror(rc));
        conn_close(c, 1, "upstream connect failed");
        return;
    }
    plog("conn %llu %s -> %s opened", (unsigned long long)c->id, c->peer, c->target);
}

/* ---- control
 * ------------------------------------------------------------------------------------- */

typedef struct ctl {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    char line[MAX_CTL_LINE];
    size_t len;
    int overflow;
} ctl;

typedef struct ctl_write {
    uv_write_t req;
    char text[];
} ctl_write;

static void on_ctl_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void ctl_send(ctl *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctl_send(ctl *k, const char *fmt, ...)
{
    char text[MAX_CTL_REPLY];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof text - 2) n = (int)sizeof text - 2;
    text[n++] = '\n';
    ctl_write *w = malloc(sizeof *w + (size_t)n);
    if (!w) return;
    memcpy(w->text, text, (size_t)n);
    uv_buf_t b = uv_buf_init(w->text, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&k->h, &b, 1, on_ctl_written) < 0) free(w);
}

/* Parses a non-negative decimal number; -1 when it is not one. */
static int64_t parse_num(const char *s)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0) return -1;
    return v;
}

static void stall(conn *c, uint64_t ms)
{
    c->stalled_till = uv_now(P.loop) + ms;
    /* Chunks already due wait until the stall ends; the timers are re-armed. */
    if (!c->closing) {
        if (c->up.head) schedule(&c->up);
        if (c->down.head) schedule(&c->down);
    }
}

static void reset_all(void)
{
    while (P.conns) conn_close(P.conns, 1, "reset by control");
}

static void ctl_command(ctl *k, char *line)
{
    char *argv[4] = {0};
    int argc = 0;
    for (char *tok = strtok(line, " \t\r"); tok && argc < 4; tok = strtok(NULL, " \t\r"))
        argv[argc++] = tok;
    if (argc == 0) return;
    const char *cmd = argv[0];
    int64_t a = argc > 1 ? parse_num(argv[1]) : -1, b = argc > 2 ? parse_num(argv[2]) : 0;
    if (!strcmp(cmd, "latency") && a >= 0 && b >= 0 && argc <= 3) {
        P.latency_ms = (uint64_t)a;
        P.jitter_ms = (uint64_t)b;
        ctl_send(k, "ok latency %lld ms, jitter %lld ms", (long long)a, (long long)b);
    } else if (!strcmp(cmd, "bandwidth") && a >= 0 && argc == 2) {
        P.bandwidth = (uint64_t)a;
        for (conn *c = P.conns; c; c = c->next) c->up.paced_till = c->down.paced_till = 0;
        ctl_send(k, "ok bandwidth %lld bytes/s", (long long)a);
    } else if (!strcmp(cmd, "stall") && a >= 0 && argc <= 3) {
        int n = 0;
        if (argc == 3) {
            conn *c = b > 0 ? conn_by_id((uint64_t)b) : NULL;
            if (!c) {
                ctl_send(k, "error no open connection %s", argv[2]);
                return;
            }
            stall(c, (uint64_t)a);
            n = 1;
        } else {
            for (conn *c = P.conns; c; c = c->next, n++) stall(c, (uint64_t)a);
        }
        plog("stalled %d connections for %lld ms", n, (long long)a);
        ctl_send(k, "ok stalled %d connections for %lld ms", n, (long long)a);
    } else if (!strcmp(cmd, "reset") && a >= 0 && a <= 100 && argc == 2) {
        P.reset_pct = (unsigned)a;
        ctl_send(k, "ok resetting %lld%% of new connections", (long long)a);
    } else if (!strcmp(cmd, "reset-open") && argc <= 2) {
        int n = 0;
        if (argc == 2) {
            conn *c = a > 0 ? conn_by_id((uint64_t)a) : NULL;
            if (!c) {
                ctl_send(k, "error no open connection %s", argv[1]);
                return;
            }
            conn_close(c, 1, "reset by control");
            n = 1;
        } else {
            for (conn *c = P.conns; c; c = c->next) n++;
            reset_all();
        }
        ctl_send(k, "ok reset %d connections", n);
    } else if (!strcmp(cmd, "blackhole") && argc == 2 &&
               (!strcmp(argv[1], "on") || !strcmp(argv[1], "off"))) {
        P.blackhole = !strcmp(argv[1], "on");
        ctl_send(k, "ok blackhole %s", argv[1]);
    } else if (!strcmp(cmd, "clear") && argc == 1) {
        P.latency_ms = P.jitter_ms = P.bandwidth = 0;
        P.reset_pct = 0;
        P.blackhole = 0;
        conn *c = P.conns;
        while (c) {
            conn *next = c->next;
            if (c->blackholed)
                conn_close(c, 1, "blackhole cleared");
            else
                stall(c, 0);
            c = next;
        }
        ctl_send(k, "ok cleared");
    } else if (!strcmp(cmd, "status") && argc == 1) {
        int open = 0;
        for (conn *c = P.conns; c; c = c->next) open++;
        ctl_send(k,
                 "ok latency %llu jitter %llu bandwidth %llu reset %u blackhole %s; open %d "
                 "accepted %llu resets %llu blackholed %llu forwarded %llu",
                 (unsigned long long)P.latency_ms, (unsigned long long)P.jitter_ms,
                 (unsigned long long)P.bandwidth, P.reset_pct, P.blackhole ? "on" : "off", open,
                 (unsigned long long)P.accepted, (unsigned long long)P.resets,
                 (unsigned long long)P.blackholed, (unsigned long long)P.forwarded);
    } else if (!strcmp(cmd, "conns") && argc == 1) {
        for (conn *c = P.conns; c; c = c->next)
            ctl_send(k, "conn %llu %s -> %s up %llu down %llu%s", (unsigned long long)c->id,
                     c->peer, c->target, (unsigned long long)c->up.bytes,
                     (unsigned long long)c->down.bytes, c->blackholed ? " blackholed" : "");
        ctl_send(k, "ok");
    } else if (!strcmp(cmd, "help")) {
        ctl_send(k, "ok commands: latency MS [JITTER_MS] | bandwidth BYTES_PER_SEC | stall MS "
                    "[ID] | reset PERCENT | reset-open [ID] | blackhole on|off | clear | status "
                    "| conns");
    } else {
        ctl_send(k, "error bad command '%s' (try help)", cmd);
        return;
    }
    plog("control: %s%s%s%s%s", cmd, argc > 1 ? " " : "", argc > 1 ? argv[1] : "",
         argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
}

static void on_ctl_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    static char cbuf[1024];
    *buf = uv_buf_init(cbuf, sizeof cbuf);
}

static void on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    ctl *k = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_ctl_closed);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            k->line[k->len] = '\0';
            if (k->overflow)
                ctl_send(k, "error line longer than %d bytes", MAX_CTL_LINE - 1);
            else
                ctl_command(k, k->line);
            k->len = 0;
            k->overflow = 0;
        } else if (k->len + 1 < sizeof k->line) {
            k->line[k->len++] = ch;
        } else {
            k->overflow = 1;
        }
    }
}

static void on_ctl_accept(uv_stream_t *server, int status)
{
    if (status < 0) return;
    ctl *k = calloc(1, sizeof *k);
    if (!k) return;
    if (server->type == UV_NAMED_PIPE)
        uv_pipe_init(P.loop, &k->h.pipe, 0);
    else
        uv_tcp_init(P.loop, &k->h.tcp);
    k->h.tcp.data = k;
    if (uv_accept(server, (uv_stream_t *)&k->h) < 0 ||
        uv_read_start((uv_stream_t *)&k->h, ctl_alloc, on_ctl_read) < 0)
        uv_close((uv_handle_t *)&k->h, on_ctl_closed);
}

/* ---- main
 * ---------------------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: chaos_proxy --listen HOST:PORT (--target HOST:PORT | --transparent)\n"
            "                   [--control HOST:PORT | --control PATH] [--mark N] [--seed N]\n"
            "Forwards TCP connections and injects faults (latency, bandwidth, stalls, resets,\n"
            "blackholes) set at run time through the control socket: see the head comment of\n"
            "tests/chaos/chaos_proxy.c or send 'help'.\n");
    return 2;
}

static int parse_hostport(const char *s, struct sockaddr_in *out)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return -1;
    char host[64];
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof host) return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    int64_t port = parse_num(colon + 1);
    if (port < 0 || port > 65535) return -1;
    return uv_ip4_addr(host, (int)port, out) == 0 ? 0 : -1;
}

static void local_name(uv_tcp_t *t, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len) == 0)
        fmt_addr(&ss, out, cap);
    else
        snprintf(out, cap, "?");
}

int main(int argc, char **argv)
{
    const char *listen_at = NULL, *target = NULL, *control = NULL;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(opt, "--transparent")) {
            P.transparent = 1;
            continue;
        }
        if (!val) return usage();
        i++;
        if (!strcmp(opt, "--listen"))
            listen_at = val;
        else if (!strcmp(opt, "--target"))
            target = val;
        else if (!strcmp(opt, "--control"))
            control = val;
        else if (!strcmp(opt, "--mark")) {
            char *end;
            unsigned long m = strtoul(val, &end, 0);
            if (*end || m == 0 || m > UINT32_MAX) return usage();
            P.mark = (unsigned)m;
            P.have_mark = 1;
        } else if (!strcmp(opt, "--seed")) {
            int64_t s = parse_num(val);
            if (s < 0) return usage();
            seed = (uint64_t)s;
        } else
            return usage();
    }
    if (!listen_at || !!target == P.transparent) return usage();
    struct sockaddr_in la;
    if (parse_hostport(listen_at, &la) < 0) {
        fprintf(stderr, "chaos_proxy: bad --listen '%s' (expected IPv4:PORT)\n", listen_at);
        return 2;
    }
    if (target && parse_hostport(target, &P.target) < 0) {
        fprintf(stderr, "chaos_proxy: bad --target '%s' (expected IPv4:PORT)\n", target);
        return 2;
    }
    P.rng = seed * 0x9E3779B97F4A7C15ull + 1;
    P.loop = uv_default_loop();
    uv_tcp_init(P.loop, &P.listener);
    int rc = uv_tcp_bind(&P.listener, (struct sockaddr *)&la, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&P.listener, 128, on_accept);
    if (rc < 0) {
        fprintf(stderr, "chaos_proxy: cannot listen on %s: %s\n", listen_at, uv_strerror(rc));
        return 1;
    }
    char where[PATH_MAX + 16] = "none";
    if (control && strchr(control, '/')) {
        static uv_pipe_t pipe;
        uv_pipe_init(P.loop, &pipe, 0);
        remove(control);
        rc = uv_pipe_bind(&pipe, control);
        if (rc == 0) rc = uv_listen((uv_stream_t *)&pipe, 8, on_ctl_accept);
        P.control = (uv_stream_t *)&pipe;
        snprintf(where, sizeof where, "%s", control);
    } else if (control) {
        static uv_tcp_t tcp;
        struct sockaddr_in ca;
        if (parse_hostport(control, &ca) < 0) {
            fprintf(stderr, "chaos_proxy: bad --control '%s'\n", control);
            return 2;
        }
        uv_tcp_init(P.loop, &tcp);
        rc = uv_tcp_bind(&tcp, (struct sockaddr *)&ca, 0);
        if (rc == 0) rc = uv_listen((uv_stream_t *)&tcp, 8, on_ctl_accept);
        P.control = (uv_stream_t *)&tcp;
        if (rc == 0) local_name(&tcp, where, sizeof where);
    }
    if (rc < 0) {
        fprintf(stderr, "chaos_proxy: cannot listen for control on %s: %s\n", control,
                uv_strerror(rc));
        return 1;
    }
    char lname[64];
    local_name(&P.listener, lname, sizeof lname);
    printf("listen %s\ncontrol %s\nready\n", lname, where);
    fflush(stdout);
    plog("listening on %s, forwarding to %s; control on %s", lname,
         P.transparent ? "the original destination" : target, where);
    uv_run(P.loop, UV_RUN_DEFAULT);
    return 0;
}
