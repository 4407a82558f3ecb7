/* Tests of src/net/endpoint.c over real sockets on 127.0.0.1: message exchange both ways,
 * sends from many threads, the version check, authentication (same / different / one-sided
 * secrets), malformed and oversize frames from raw sockets closing only their connection, and
 * stopping with open connections (leaks checked by the allocation counter and LeakSanitizer).
 * Every wait is a condition variable with a deadline. */
#include "test.h"

#include "net/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#define WAIT_MS 10000
#define NMSG    3000

/* ---- a harness shared by the callbacks of one endpoint ----------------------------------- */
typedef struct harness {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int echo; /* reply to each heartbeat "c<i>" with "s<i>", time 3i+1 */
    int opens, closes, close_code;
    int recv, bad;
    int nthreads;        /* > 0: ids are "t<k>", per-thread time must increase by 1 */
    int64_t last[16];    /* last time per thread */
    unsigned char *seen; /* seen[i] for time i (echo mode / replies) */
    em_conn *conn;       /* the last opened connection, retained */
    int connect_done, connect_status;
} harness;

static void h_init(harness *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->seen = calloc(NMSG * 16, 1);
    for (int i = 0; i < 16; i++) h->last[i] = -1;
}

static void h_free(harness *h)
{
    if (h->conn) em_conn_release(h->conn);
    free(h->seen);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

static void deadline_of(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits (h->mu held inside) until cond holds or WAIT_MS pass; evaluates to cond. */
#define WAIT_FOR(h, cond)                                                                          \
    ({                                                                                             \
        struct timespec dl_;                                                                       \
        deadline_of(&dl_, WAIT_MS);                                                                \
        pthread_mutex_lock(&(h)->mu);                                                              \
        while (!(cond) && pthread_cond_timedwait(&(h)->cv, &(h)->mu, &dl_) == 0) {                 \
        }                                                                                          \
        int ok_ = (cond);                                                                          \
        pthread_mutex_unlock(&(h)->mu);                                                            \
        ok_;                                                                                       \
    })

static void on_open(em_conn *c, void *user)
{
    harness *h = user;
    pthread_mutex_lock(&h->mu);
    h->opens++;
    if (h->conn) em_conn_release(h->conn);
    em_conn_retain(c);
    h->conn = c;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void on_close(em_conn *c, int code, const char *reason, void *user)
{
    (void)c;
    (void)reason;
    harness *h = user;
    pthread_mutex_lock(&h->mu);
    h->closes++;
    h->close_code = code;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Parses "<prefix><number>" of a str view; -1 when it does not match. */
static long long parse_id(em_str s, char prefix)
{
    if (s.len < 2 || s.len > 20 || s.p[0] != prefix) return -1;
    long long v = 0;
    for (uint32_t i = 1; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    return v;
}

static void on_message(em_conn *c, const em_msg *m, void *user)
{
    harness *h = user;
    pthread_mutex_lock(&h->mu);
    if (m->type != EM_MSG_HEARTBEAT) {
        h->bad++;
    } else if (h->nthreads > 0) {
        long long k = parse_id(m->u.heartbeat.id, 't');
        if (k < 0 || k >= h->nthreads || m->u.heartbeat.time_ms != h->last[k] + 1)
            h->bad++;
        else
            h->last[k]++;
    } else if (h->echo) {
        long long i = parse_id(m->u.heartbeat.id, 'c');
        if (i < 0 || i >= NMSG || i != m->u.heartbeat.time_ms || h->seen[i]) {
            h->bad++;
        } else {
            h->seen[i] = 1;
            char id[32];
            snprintf(id, sizeof id, "s%lld", i);
            em_msg_heartbeat r = {.id = em_str_c(id), .time_ms = 3 * i + 1};
            if (em_conn_send(c, EM_MSG_HEARTBEAT, &r) != 0) h->bad++;
        }
    } else {
        long long i = parse_id(m->u.heartbeat.id, 's');
        if (i < 0 || i >= NMSG || m->u.heartbeat.time_ms != 3 * i + 1 || h->seen[i])
            h->bad++;
        else
            h->seen[i] = 1;
    }
    h->recv++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void on_connect(em_conn *c, int status, void *arg)
{
    (void)c;
    harness *h = arg;
    pthread_mutex_lock(&h->mu);
    h->connect_done = 1;
    h->connect_status = status;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static em_endpoint *make_ep(harness *h, int role, const char *secret, size_t max_frame)
{
    em_endpoint_config cfg = {.role = role,
                              .app_id = "app-test",
                              .secret = secret,
                              .max_frame = max_frame,
                              .on_open = on_open,
                              .on_message = on_message,
                              .on_close = on_close,
                              .user = h};
    em_endpoint *ep = NULL;
    CHECK_OK(em_endpoint_new(&cfg, &ep));
    return ep;
}

static em_endpoint *make_server(harness *h, const char *secret, size_t max_frame, int *port)
{
    em_endpoint *ep = make_ep(h, EM_ROLE_MASTER, secret, max_frame);
    CHECK_OK(em_endpoint_listen(ep, "127.0.0.1", 0, port));
    CHECK(*port > 0);
    CHECK_OK(em_endpoint_start(ep));
    return ep;
}

static em_endpoint *make_client(harness *h, const char *secret)
{
    em_endpoint *ep = make_ep(h, EM_ROLE_WORKER, secret, 0);
    CHECK_OK(em_endpoint_start(ep));
    return ep;
}

/* Connects and waits for the outcome; returns the status. */
static int connect_wait(em_endpoint *ep, harness *h, int port)
{
    CHECK_OK(em_endpoint_connect(ep, "127.0.0.1", port, on_connect, h));
    CHECK(WAIT_FOR(h, h->connect_done));
    return h->connect_status;
}

static void send_hb(em_conn *c, char prefix, long long i, int64_t t)
{
    char id[32];
    snprintf(id, sizeof id, "%c%lld", prefix, i);
    em_msg_heartbeat m = {.id = em_str_c(id), .time_ms = t};
    CHECK_OK(em_conn_send(c, EM_MSG_HEARTBEAT, &m));
}

/* Sends n numbered heartbeats client -> server, expects n echoes back, all checked. */
static void exchange(harness *cli, harness *srv, int n)
{
    for (int i = 0; i < n; i++) send_hb(cli->conn, 'c', i, i);
    CHECK(WAIT_FOR(srv, srv->recv >= n));
    CHECK(WAIT_FOR(cli, cli->recv >= n));
    pthread_mutex_lock(&srv->mu);
    CHECK_EQ_INT(srv->bad, 0);
    CHECK_EQ_INT(srv->recv, n);
    for (int i = 0; i < n; i++) CHECK(srv->seen[i]);
    pthread_mutex_unlock(&srv->mu);
    pthread_mutex_lock(&cli->mu);
    CHECK_EQ_INT(cli->bad, 0);
    CHECK_EQ_INT(cli->recv, n);
    for (int i = 0; i < n; i++) CHECK(cli->seen[i]);
    pthread_mutex_unlock(&cli->mu);
}

/* ---- raw sockets ------------------------------------------------------------------------- */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
    CHECK(send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n);
}

/* Reads and discards until the peer closes (1) or WAIT_MS pass (0). */
static int raw_wait_closed(int fd)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= WAIT_MS) return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(WAIT_MS - el)) <= 0) continue;
        char buf[4096];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) return 1;
    }
}

/* A hello frame with the given header and body versions (and a nonce when with_nonce). */
static void raw_hello_n(int fd, uint16_t header_version, uint32_t body_version, int with_nonce)
{
    em_buf b = EM_BUF_INIT;
    static const uint8_t nonce[32] = {1, 2, 3};
    em_msg_hello h = {.version = body_version,
                      .role = EM_ROLE_WORKER,
                      .app_id = em_str_c("raw"),
                      .nonce = {with_nonce ? nonce : NULL, with_nonce ? 32 : 0}};
    CHECK_OK(em_msg_encode(&b, EM_MSG_HELLO, &h));
    b.data[4] = (uint8_t)(header_version & 0xff);
    b.data[5] = (uint8_t)(header_version >> 8);
    raw_send(fd, b.data, b.len);
    em_buf_free(&b);
}

static void raw_hello(int fd, uint16_t header_version, uint32_t body_version)
{
    raw_hello_n(fd, header_version, body_version, 0);
}

/* ---- tests ------------------------------------------------------------------------------- */
TEST(exchange_both_directions)
{
    int64_t base = em__alloc_bytes();
    harness srv, cli;
    h_init(&srv);
    h_init(&cli);
    srv.echo = 1;
    int port = 0;
    em_endpoint *s = make_server(&srv, NULL, 0, &port);
    em_endpoint *c = make_client(&cli, NULL);
    CHECK_EQ_INT(connect_wait(c, &cli, port), 0);
    CHECK(WAIT_FOR(&srv, srv.opens == 1));
    CHECK_EQ_INT(em_conn_is_initiator(cli.conn), 1);
    CHECK_EQ_INT(em_conn_is_initiator(srv.conn), 0);
    CHECK_EQ_INT(em_conn_peer_role(cli.conn), EM_ROLE_MASTER);
    CHECK_EQ_INT(em_conn_peer_role(srv.conn), EM_ROLE_WORKER);
    CHECK_EQ_STR(em_conn_peer_app_id(srv.conn), "app-test");
    CHECK(strncmp(em_conn_peer(srv.conn), "127.0.0.1:", 10) == 0);
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    CHECK_EQ_STR(em_conn_peer(cli.conn), want);
    exchange(&cli, &srv, NMSG);
    CHECK_EQ_INT(em_endpoint_refused(s), 0);
    CHECK_EQ_INT(em_endpoint_refused(c), 0);
    em_endpoint_free(c);
    em_endpoint_free(s);
    h_free(&cli);
    h_free(&srv);
    CHECK_EQ_INT(em__alloc_bytes(), base);
}

struct sender {
    em_conn *c;
    int k, n;
};

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    for (int i = 0; i < s->n; i++) send_hb(s->c, 't', s->k, i);
    return NULL;
}

TEST(send_from_many_threads)
{
    harness srv, cli;
    h_init(&srv);
    h_init(&cli);
    enum { T = 6, N = 2000 };
    srv.nthreads = T;
    int port = 0;
    em_endpoint *s = make_server(&srv, NULL, 0, &port);
    em_endpoint *c = make_client(&cli, NULL);
    CHECK_EQ_INT(connect_wait(c, &cli, port), 0);
    pthread_t th[T];
    struct sender sd[T];
    for (int k = 0; k < T; k++) {
        sd[k] = (struct sender){cli.conn, k, N};
        CHECK(pthread_create(&th[k], NULL, sender_main, &sd[k]) == 0);
    }
    for (int k = 0; k < T; k++) pthread_join(th[k], NULL);
    CHECK(WAIT_FOR(&srv, srv.recv >= T * N));
    pthread_mutex_lock(&srv.mu);
    CHECK_EQ_INT(srv.bad, 0);
    CHECK_EQ_INT(srv.recv, T * N);
    for (int k = 0; k < T; k++) CHECK_EQ_INT(srv.last[k], N - 1);
    pthread_mutex_unlock(&srv.mu);
    em_endpoint_free(c);
    em_endpoint_free(s);
    h_free(&cli);
    h_free(&srv);
}

TEST(version_mismatch_refused)
{
    harness srv;
    h_init(&srv);
    int port = 0;
    em_endpoint *s = make_server(&srv, NULL, 0, &port);
    int fd = raw_connect(port); /* another version in the frame header */
    raw_hello(fd, EM_PROTO_VERSION + 1, EM_PROTO_VERSION + 1);
    CHECK(raw_wait_closed(fd));
    close(fd);
    fd = raw_connect(port); /* the current frame version, another one in hello */
    raw_hello(fd, EM_PROTO_VERSION, EM_PROTO_VERSION + 7);
    CHECK(raw_wait_closed(fd));
    close(fd);
    CHECK(WAIT_FOR(&srv, em_endpoint_refused(s) == 2));
    fd = raw_connect(port); /* control: the right versions keep the connection open */
    raw_hello(fd, EM_PROTO_VERSION, EM_PROTO_VERSION);
    CHECK(WAIT_FOR(&srv, srv.opens == 1));
    shutdown(fd, SHUT_WR); /* a clean end: the server sees EOF between frames */
    CHECK(raw_wait_closed(fd));
    close(fd);
    CHECK(WAIT_FOR(&srv, srv.closes == 1));
    CHECK_EQ_INT(srv.close_code, 0);
    em_endpoint_free(s);
    h_free(&srv);
}

TEST(handshake_deadline)
{
    harness srv;
    h_init(&srv);
    em_endpoint_config cfg = {.role = EM_ROLE_MASTER,
                              .secret = "k",
                              .handshake_timeout_ms = 200,
                              .on_open = on_open,
                              .user = &srv};
    em_endpoint *s = NULL;
    CHECK_OK(em_endpoint_new(&cfg, &s));
    int port = 0;
    CHECK_OK(em_endpoint_listen(s, "127.0.0.1", 0, &port));
    CHECK_OK(em_endpoint_start(s));
    int fd = raw_connect(port); /* says nothing */
    CHECK(raw_wait_closed(fd));
    close(fd);
    fd = raw_connect(port); /* says hello with a nonce, then never proves the secret */
    raw_hello_n(fd, EM_PROTO_VERSION, EM_PROTO_VERSION, 1);
    CHECK(raw_wait_closed(fd));
    close(fd);
    CHECK(WAIT_FOR(&srv, em_endpoint_refused(s) == 2));
    CHECK_EQ_INT(srv.opens, 0);
    em_endpoint_free(s);
    h_free(&srv);
}

TEST(same_secret_works)
{
    harness srv, cli;
    h_init(&srv);
    h_init(&cli);
    srv.echo = 1;
    int port = 0;
    em_endpoint *s = make_server(&srv, "s3cret-shared", 0, &port);
    em_endpoint *c = make_client(&cli, "s3cret-shared");
    CHECK_EQ_INT(connect_wait(c, &cli, port), 0);
    CHECK(WAIT_FOR(&srv, srv.opens == 1));
    exchange(&cli, &srv, 200);
    CHECK_EQ_INT(em_endpoint_refused(s), 0);
    em_endpoint_free(c);
    em_endpoint_free(s);
    h_free(&cli);
    h_free(&srv);
}

/* A client with client_secret against a server with server_secret: refused on both sides. */
static void refused_case(const char *server_secret, const char *client_secret)
{
    harness srv, cli;
    h_init(&srv);
    h_init(&cli);
    int port = 0;
    em_endpoint *s = make_server(&srv, server_secret, 0, &port);
    em_endpoint *c = make_client(&cli, client_secret);
    int st = connect_wait(c, &cli, port);
    CHECK_MSG(st == EM_EACCES, "status %d", st);
    CHECK(WAIT_FOR(&srv, em_endpoint_refused(s) == 1));
    CHECK_EQ_INT(em_endpoint_refused(c), 1);
    CHECK_EQ_INT(srv.opens, 0);
    CHECK_EQ_INT(cli.opens, 0);
    em_endpoint_free(c);
    em_endpoint_free(s);
    h_free(&cli);
    h_free(&srv);
}

TEST(different_secrets_refused)
{
    refused_case("server-secret", "client-secret");
}

TEST(secret_on_server_only_refused)
{
    refused_case("server-secret", NULL);
}

TEST(secret_on_client_only_refused)
{
    refused_case(NULL, "client-secret");
}

TEST(bad_frames_close_only_their_connection)
{
    harness srv, cli;
    h_init(&srv);
    h_init(&cli);
    srv.echo = 1;
    int port = 0;
    em_endpoint *s = make_server(&srv, NULL, 4096, &port);
    em_endpoint *c = make_client(&cli, NULL);
    CHECK_EQ_INT(connect_wait(c, &cli, port), 0);
    CHECK(WAIT_FOR(&srv, srv.opens == 1));

    int fd = raw_connect(port); /* garbage */
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_send(fd, junk, sizeof junk - 1);
    CHECK(raw_wait_closed(fd));
    close(fd);

    fd = raw_connect(port); /* an oversize length with a valid version */
    uint8_t hdr[8] = {0, 0, 1, 0, EM_PROTO_VERSION, 0, 18, 0}; /* 65536 > 4096 */
    raw_send(fd, hdr, sizeof hdr);
    CHECK(raw_wait_closed(fd));
    close(fd);

    fd = raw_connect(port); /* a good handshake, then a frame of an unknown type */
    raw_hello(fd, EM_PROTO_VERSION, EM_PROTO_VERSION);
    CHECK(WAIT_FOR(&srv, srv.opens == 2));
    uint8_t unk[12] = {8, 0, 0, 0, EM_PROTO_VERSION, 0, 0xee, 0xee, 1, 2, 3, 4};
    raw_send(fd, unk, sizeof unk);
    CHECK(raw_wait_closed(fd));
    close(fd);
    CHECK(WAIT_FOR(&srv, srv.closes == 1));
    CHECK_EQ_INT(srv.close_code, EM_EFORMAT);
    CHECK_EQ_INT(em_endpoint_refused(s), 2);

    /* The first connection still works. */
    em_conn *first = cli.conn;
    pthread_mutex_lock(&srv.mu);
    em_conn_release(srv.conn); /* the raw one */
    srv.conn = NULL;
    pthread_mutex_unlock(&srv.mu);
    cli.conn = first;
    exchange(&cli, &srv, 100);
    em_endpoint_free(c);
    em_endpoint_free(s);
    h_free(&cli);
    h_free(&srv);
}

TEST(oversize_send_refused)
{
    harness srv, cli;
    h_init(&srv);
    h_init(&cli);
    int port = 0;
    em_endpoint *s = make_server(&srv, NULL, 0, &port);
    em_endpoint_config cfg = {
        .role = EM_ROLE_WORKER, .max_frame = 256, .user = &cli, .on_open = on_open};
    em_endpoint *c = NULL;
    CHECK_OK(em_endpoint_new(&cfg, &c));
    CHECK_OK(em_endpoint_start(c));
    CHECK_EQ_INT(connect_wait(c, &cli, port), 0);
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    em_msg_heartbeat m = {.id = em_str_c(big), .time_ms = 1};
    CHECK_EQ_INT(em_conn_send(cli.conn, EM_MSG_HEARTBEAT, &m), EM_ETOOBIG);
    send_hb(cli.conn, 's', 5, 16); /* a small one still goes */
    CHECK(WAIT_FOR(&srv, srv.recv == 1));
    em_endpoint_free(c);
    em_endpoint_free(s);
    h_free(&cli);
    h_free(&srv);
}

TEST(stop_with_open_connections)
{
    int64_t base = em__alloc_bytes();
    harness srv, cli;
    h_init(&srv);
    h_init(&cli);
    srv.echo = 1;
    int port = 0;
    em_endpoint *s = make_server(&srv, "k", 0, &port);
    em_endpoint *c = make_client(&cli, "k");
    CHECK_EQ_INT(connect_wait(c, &cli, port), 0);
    for (int i = 0; i < 50; i++) send_hb(cli.conn, 'c', i, i);
    int fd = raw_connect(port); /* a connection stuck in the handshake */
    em_endpoint_stop(s);
    CHECK_EQ_INT(srv.closes, 1);
    CHECK_EQ_INT(srv.close_code, 0);
    CHECK(WAIT_FOR(&cli, cli.closes == 1));
    CHECK_EQ_INT(em_conn_send(srv.conn, EM_MSG_HEARTBEAT,
                              &(em_msg_heartbeat){.id = em_str_c("x"), .time_ms = 0}),
                 EM_ESTATE);
    CHECK(raw_wait_closed(fd));
    close(fd);
    em_endpoint_stop(c);
    CHECK_EQ_INT(em_endpoint_connect(c, "127.0.0.1", port, NULL, NULL), EM_ESTATE);
    em_endpoint_free(c);
    em_endpoint_free(s);
    h_free(&cli);
    h_free(&srv);
    CHECK_EQ_INT(em__alloc_bytes(), base);
}
