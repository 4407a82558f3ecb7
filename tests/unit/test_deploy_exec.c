/* In-process tests of the worker's side of applications, with real sockets on 127.0.0.1 and
 * real child processes (shell scripts standing in for application binaries):
 *   - file transfer: a multi-chunk file fetched byte-exact (compared with the bytes written),
 *     an unknown hash, a file changed after registration (hash mismatch), a bad host:port;
 *   - the executor runner: the environment contract (worker variables, application entries
 *     overriding them, nothing else of the worker's), the binary fetched once then taken from
 *     the cache, kill -> KILLED, a crash -> FAILED with the signal and the stderr tail, a file
 *     that is not executable and a hash nobody serves -> FAILED with a clear message;
 *   - master + worker + app client: registration, EXECUTOR_ADDED, the executor running in
 *     <work>/<app>/<id>, a kill -9 reported to the driver and replaced, the application's end
 *     killing its executors.
 * Waits are bounded polls for events, never timing assertions.
 */
#include "test.h"

#include "deploy/app_client.h"
#include "deploy/executor_runner.h"
#include "deploy/file_server.h"
#include "deploy/master.h"
#include "deploy/worker.h"
#include "net/endpoint.h"

#include <ember/ember.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>

/* ---- a file server on an endpoint ------------------------------------------------------------ */
typedef struct server {
    em_endpoint *ep;
    em_file_registry *reg;
    int port;
    atomic_int requests; /* GET_FILE seen */
    char url[64];
} server;

static void server_msg(em_conn *c, const em_msg *m, void *user)
{
    server *s = user;
    if (m->type != EM_MSG_GET_FILE) return;
    atomic_fetch_add(&s->requests, 1);
    em_file_serve(s->reg, c, &m->u.get_file);
}

static void server_start(server *s, const char *secret)
{
    memset(s, 0, sizeof *s);
    CHECK_OK(em_file_registry_new(&s->reg));
    em_endpoint_config cfg = {
        .role = EM_ROLE_DRIVER, .secret = secret, .on_message = server_msg, .user = s};
    CHECK_OK(em_endpoint_new(&cfg, &s->ep));
    CHECK_OK(em_endpoint_listen(s->ep, "127.0.0.1", 0, &s->port));
    CHECK_OK(em_endpoint_start(s->ep));
    snprintf(s->url, sizeof s->url, "127.0.0.1:%d", s->port);
}

static void server_stop(server *s)
{
    em_endpoint_free(s->ep);
    em_file_registry_free(s->reg);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK_EQ_INT(fwrite(data, 1, n, f), n);
    CHECK_EQ_INT(fclose(f), 0);
    CHECK_EQ_INT(chmod(path, mode), 0);
}

/* The whole file in a malloc'd buffer (NULL if missing); *n its size. */
static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    CHECK(b);
    CHECK_EQ_INT(fread(b, 1, (size_t)len, f), len);
    b[len] = 0;
    fclose(f);
    if (n) *n = (size_t)len;
    return b;
}

static int wait_until(int (*pred)(void *), void *arg, int seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        if (pred(arg)) return 1;
        usleep(10000);
    }
    return pred(arg);
}

static int file_exists(void *path)
{
    return access(path, F_OK) == 0;
}

TEST(file_fetch_multi_chunk_exact_and_errors)
{
    server s;
    server_start(&s, NULL);
    char path[1200], dest[1200];
    snprintf(path, sizeof path, "%s/blob", test_tmpdir());
    size_t n = 2 * EM_FILE_CHUNK_MAX + 12345; /* three chunks */
    unsigned char *data = malloc(n);
    CHECK(data);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) data[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
    write_file(path, data, n, 0644);
    char hash[EM_FILE_HASH_HEX];
    CHECK_OK(em_file_registry_add(s.reg, path, hash));
    CHECK(em_file_hash_valid(hash));
    em_file_fetch_opts o = {.timeout_ms = 10000};
    snprintf(dest, sizeof dest, "%s/copy", test_tmpdir());
    uint64_t got = 0;
    CHECK_OK(em_file_fetch(&o, s.url, hash, dest, &got));
    CHECK_EQ_INT(got, n);
    CHECK_EQ_INT(atomic_load(&s.requests), 3);
    size_t m = 0;
    char *copy = read_all(dest, &m);
    CHECK(copy && m == n && memcmp(copy, data, n) == 0);
    free(copy);
    struct stat sb;
    CHECK_EQ_INT(stat(dest, &sb), 0);
    CHECK_EQ_INT(sb.st_mode & 0777, 0755);

    /* Unknown hash: EM_ENOENT naming it; no destination left behind. */
    char other[EM_FILE_HASH_HEX];
    memset(other, 'e', 64);
    other[64] = 0;
    snprintf(dest, sizeof dest, "%s/none", test_tmpdir());
    CHECK_EQ_INT(em_file_fetch(&o, s.url, other, dest, NULL), EM_ENOENT);
    CHECK_MSG(strstr(em_errmsg(), other) && strstr(em_errmsg(), s.url), "%s", em_errmsg());
    CHECK(!file_exists(dest));

    /* Same size, other bytes after registration: the hash check refuses it. */
    data[100] ^= 0xff;
    write_file(path, data, n, 0644);
    CHECK_EQ_INT(em_file_fetch(&o, s.url, hash, dest, NULL), EM_ECORRUPT);
    CHECK_MSG(strstr(em_errmsg(), "SHA-256") && strstr(em_errmsg(), hash), "%s", em_errmsg());
    CHECK(!file_exists(dest));
    char list[1300];
    snprintf(list, sizeof list, "ls %s | grep -q tmp", test_tmpdir());
    CHECK(system(list) != 0); /* no temporary file left (grep finds nothing) */

    /* Bad address, bad hash, nothing listening. */
    CHECK_EQ_INT(em_file_fetch(&o, "nohostport", hash, dest, NULL), EM_EINVAL);
    CHECK_EQ_INT(em_file_fetch(&o, s.url, "xyz", dest, NULL), EM_EINVAL);
    server_stop(&s);
    CHECK_EQ_INT(em_file_fetch(&o, s.url, hash, dest, NULL), EM_ESTATE);
    CHECK_MSG(strstr(em_errmsg(), s.url) != NULL, "%s", em_errmsg());
    free(data);
}

/* A raw client: sends GET_FILE requests and keeps the last FILE_CHUNK's status and message. */
typedef struct raw_client {
    pthread_mutex_t mu;
    em_conn *conn; /* retained once connected */
    int got, status;
    uint64_t total;
    uint32_t len;
    char msg[512];
} raw_client;

static void raw_msg(em_conn *c, const em_msg *m, void *user)
{
    (void)c;
    raw_client *r = user;
    if (m->type != EM_MSG_FILE_CHUNK) return;
    pthread_mutex_lock(&r->mu);
    r->got++;
    r->status = m->u.file_chunk.status;
    r->total = m->u.file_chunk.total_size;
    r->len = m->u.file_chunk.data.len;
    snprintf(r->msg, sizeof r->msg, "%.*s", (int)m->u.file_chunk.message.len,
             m->u.file_chunk.message.p);
    pthread_mutex_unlock(&r->mu);
}

static void raw_connected(em_conn *c, int status, void *arg)
{
    raw_client *r = arg;
    if (status != 0) return;
    em_conn_retain(c);
    pthread_mutex_lock(&r->mu);
    r->conn = c;
    pthread_mutex_unlock(&r->mu);
}

static em_conn *raw_conn_of(raw_client *r)
{
    pthread_mutex_lock(&r->mu);
    em_conn *c = r->conn;
    pthread_mutex_unlock(&r->mu);
    return c;
}

static int raw_got(void *u)
{
    raw_client *r = u;
    pthread_mutex_lock(&r->mu);
    int g = r->got;
    pthread_mutex_unlock(&r->mu);
    return g;
}

TEST(file_serve_answers_bad_requests_with_an_error_status)
{
    server s;
    server_start(&s, NULL);
    char path[1200];
    snprintf(path, sizeof path, "%s/small", test_tmpdir());
    write_file(path, "0123456789", 10, 0644);
    char hash[EM_FILE_HASH_HEX];
    CHECK_OK(em_file_registry_add(s.reg, path, hash));
    raw_client r = {.mu = PTHREAD_MUTEX_INITIALIZER};
    em_endpoint_config cfg = {.role = EM_ROLE_WORKER, .on_message = raw_msg, .user = &r};
    em_endpoint *ep = NULL;
    CHECK_OK(em_endpoint_new(&cfg, &ep));
    CHECK_OK(em_endpoint_start(ep));
    CHECK_OK(em_endpoint_connect(ep, "127.0.0.1", s.port, raw_connected, &r));
    em_conn *conn = NULL;
    for (int i = 0; i < 1000 && !(conn = raw_conn_of(&r)); i++) usleep(10000);
    CHECK(conn != NULL);
    struct {
        const char *hash;
        uint64_t offset;
        uint32_t max_len;
        int status;
        uint32_t len;
        const char *says;
    } cases[] = {
        {hash, 4, 3, 0, 3, ""},                /* bytes 4..6 */
        {hash, 10, 0, 0, 0, ""},               /* the end: empty */
        {hash, 11, 0, EM_ERANGE, 0, "beyond"}, /* past the end */
        {"beef", 0, 0, EM_ENOENT, 0, "beef"},  /* unknown hash, named */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        em_msg_get_file g = {.req_id = k,
                             .hash = em_str_c(cases[k].hash),
                             .offset = cases[k].offset,
                             .max_len = cases[k].max_len};
        CHECK_OK(em_conn_send(conn, EM_MSG_GET_FILE, &g));
        for (int i = 0; i < 1000 && raw_got(&r) < (int)k + 1; i++) usleep(10000);
        CHECK_EQ_INT(raw_got(&r), k + 1); /* takes r.mu: the fields below are settled */
        CHECK_EQ_INT(r.status, cases[k].status);
        CHECK_EQ_INT(r.len, cases[k].len);
        if (!cases[k].status) CHECK_EQ_INT(r.total, 10);
        CHECK_MSG(strstr(r.msg, cases[k].says) != NULL, "case %zu: %s", k, r.msg);
    }
    em_conn_release(conn);
    em_endpoint_free(ep);
    server_stop(&s);
}

/* ---- the executor runner --------------------------------------------------------------------- */
typedef struct event {
    char app[64];
    int exec_id, state, exit_code;
    char msg[1600];
} event;

typedef struct recorder {
    pthread_mutex_t mu;
    event ev[64];
    int n;
} recorder;

static void record(void *user, const char *app_id, int exec_id, int state, int exit_code,
                   const char *message)
{
    recorder *r = user;
    pthread_mutex_lock(&r->mu);
    if (r->n < 64) {
        event *e = &r->ev[r->n++];
        snprintf(e->app, sizeof e->app, "%s", app_id);
        e->exec_id = exec_id;
        e->state = state;
        e->exit_code = exit_code;
        snprintf(e->msg, sizeof e->msg, "%s", message);
    }
    pthread_mutex_unlock(&r->mu);
}

/* Waits for the k-th event of executor exec_id (0 = first); copies it. */
static int wait_event(recorder *r, int exec_id, int k, event *out)
{
    for (int i = 0; i < 3000; i++) {
        pthread_mutex_lock(&r->mu);
        int seen = 0;
        for (int j = 0; j < r->n; j++)
            if (r->ev[j].exec_id == exec_id && seen++ == k) {
                *out = r->ev[j];
                pthread_mutex_unlock(&r->mu);
                return 1;
            }
        pthread_mutex_unlock(&r->mu);
        usleep(10000);
    }
    return 0;
}

static void launch(em_executor_runner *r, const char *app, int id, const char *hash,
                   const char *url, const char *const *env, int nenv)
{
    em_str items[8];
    for (int i = 0; i < nenv; i++) items[i] = em_str_c(env[i]);
    em_msg_launch_executor m = {.app_id = em_str_c(app),
                                .exec_id = (uint32_t)id,
                                .cores = 2,
                                .memory_mb = 300,
                                .binary_hash = em_str_c(hash),
                                .driver_url = em_str_c(url),
                                .env = {.count = (uint32_t)nenv, .items = items}};
    CHECK_OK(em_executor_runner_launch(r, &m));
}

/* "NAME=value" line of an env dump, or NULL. */
static const char *env_line(const char *dump, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name);
    for (const char *p = dump; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > k && !strncmp(p, name, k) && p[k] == '=') {
            snprintf(out, cap, "%.*s", (int)(len - k - 1), p + k + 1);
            return out;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

static const char SCRIPT[] =
    "#!/bin/sh\n"
    "env > \"$EMBER_EXECUTOR_DIR/env.txt\"\n"
    "pwd > pwd.txt\n"
    "echo \"executor $EMBER_EXECUTOR_ID starting\" >&2\n"
    "if [ \"$MODE\" = crash ]; then echo 'about to crash' >&2; kill -SEGV $$; fi\n"
    "if [ \"$MODE\" = exit ]; then exit 0; fi\n"
    "exec sleep 1000\n";

TEST(runner_environment_cache_kill_and_failures)
{
    server s;
    server_start(&s, "s3cret");
    char bin[1200], work[1200], data[1200];
    snprintf(bin, sizeof bin, "%s/app.sh", test_tmpdir());
    snprintf(data, sizeof data, "%s/data.txt", test_tmpdir());
    snprintf(work, sizeof work, "%s/work", test_tmpdir());
    CHECK_OK(em__mkdirs(work));
    write_file(bin, SCRIPT, sizeof SCRIPT - 1, 0755);
    write_file(data, "just some text\n", 15, 0644);
    char hash[EM_FILE_HASH_HEX], dhash[EM_FILE_HASH_HEX];
    CHECK_OK(em_file_registry_add(s.reg, bin, hash));
    CHECK_OK(em_file_registry_add(s.reg, data, dhash));
    setenv("LEAKED_FROM_WORKER", "1", 1);
    recorder rec = {.mu = PTHREAD_MUTEX_INITIALIZER};
    em_executor_runner_config cfg = {.work_dir = work,
                                     .worker_id = "worker-test-1",
                                     .host = "127.0.0.1",
                                     .secret = "s3cret",
                                     .fetch_timeout_ms = 10000,
                                     .kill_grace_ms = 2000,
                                     .on_state = record,
                                     .user = &rec};
    em_executor_runner *r = NULL;
    CHECK_OK(em_executor_runner_new(&cfg, &r));

    /* Executor 0: exits normally; environment checked. */
    const char *env0[] = {"MODE=exit", "EMBER_EXECUTOR_MODE=fake", "EXTRA=a=b"};
    launch(r, "app-1", 0, hash, s.url, env0, 3);
    event e;
    CHECK(wait_event(&rec, 0, 0, &e));
    CHECK_MSG(e.state == EM_EXEC_RUNNING, "%d: %s", e.state, e.msg);
    CHECK(wait_event(&rec, 0, 1, &e));
    CHECK_MSG(e.state == EM_EXEC_EXITED && e.exit_code == 0, "%d %d: %s", e.state, e.exit_code,
              e.msg);
    char path[1400], v[1200];
    snprintf(path, sizeof path, "%s/app-1/0/env.txt", work);
    char *dump = read_all(path, NULL);
    CHECK(dump);
    CHECK_EQ_STR(env_line(dump, "EMBER_EXECUTOR_MODE", v, sizeof v), "fake"); /* overridden */
    CHECK_EQ_STR(env_line(dump, "EMBER_DRIVER_URL", v, sizeof v), s.url);
    CHECK_EQ_STR(env_line(dump, "EMBER_APP_ID", v, sizeof v), "app-1");
    CHECK_EQ_STR(env_line(dump, "EMBER_EXECUTOR_ID", v, sizeof v), "0");
    CHECK_EQ_STR(env_line(dump, "EMBER_EXECUTOR_CORES", v, sizeof v), "2");
    CHECK_EQ_STR(env_line(dump, "EMBER_EXECUTOR_MEMORY_MB", v, sizeof v), "300");
    CHECK_EQ_STR(env_line(dump, "EMBER_WORKER_ID", v, sizeof v), "worker-test-1");
    CHECK_EQ_STR(env_line(dump, "EMBER_EXECUTOR_HOST", v, sizeof v), "127.0.0.1");
    CHECK_EQ_STR(env_line(dump, "EMBER_AUTH_SECRET", v, sizeof v), "s3cret");
    CHECK_EQ_STR(env_line(dump, "EXTRA", v, sizeof v), "a=b");
    snprintf(path, sizeof path, "%s/app-1/0", work);
    CHECK_EQ_STR(env_line(dump, "EMBER_EXECUTOR_DIR", v, sizeof v), path);
    CHECK(env_line(dump, "PATH", v, sizeof v) != NULL);
    CHECK(env_line(dump, "LEAKED_FROM_WORKER", v, sizeof v) == NULL);
    free(dump);
    snprintf(path, sizeof path, "%s/app-1/0/pwd.txt", work);
    dump = read_all(path, NULL);
    snprintf(path, sizeof path, "%s/app-1/0\n", work);
    CHECK(dump && !strcmp(dump, path)); /* cwd is the executor directory */
    free(dump);
    snprintf(path, sizeof path, "%s/binaries/%s", work, hash);
    CHECK(file_exists(path));
    int fetches = atomic_load(&s.requests);
    CHECK_EQ_INT(fetches, 1);

    /* Executor 1: from the cache (no request), runs until killed. */
    const char *env1[] = {"MODE=sleep"};
    launch(r, "app-1", 1, hash, s.url, env1, 1);
    CHECK(wait_event(&rec, 1, 0, &e));
    CHECK_MSG(e.state == EM_EXEC_RUNNING, "%s", e.msg);
    CHECK_EQ_INT(atomic_load(&s.requests), fetches);
    CHECK_EQ_INT(em_executor_runner_count(r), 1);
    /* A duplicate id is refused, the running one untouched. */
    launch(r, "app-1", 1, hash, s.url, env1, 1);
    CHECK(wait_event(&rec, 1, 1, &e));
    CHECK(e.state == EM_EXEC_FAILED && strstr(e.msg, "already"));
    em_executor_runner_kill(r, "app-1", 1);
    CHECK(wait_event(&rec, 1, 2, &e));
    CHECK_MSG(e.state == EM_EXEC_KILLED, "%d %s", e.state, e.msg);

    /* Executor 2: crashes on SIGSEGV: FAILED, -11, stderr tail in the message. */
    const char *env2[] = {"MODE=crash"};
    launch(r, "app-1", 2, hash, s.url, env2, 1);
    CHECK(wait_event(&rec, 2, 1, &e));
    CHECK_MSG(e.state == EM_EXEC_FAILED && e.exit_code == -SIGSEGV, "%d %d %s", e.state,
              e.exit_code, e.msg);
    CHECK_MSG(strstr(e.msg, "about to crash") && strstr(e.msg, "signal 11"), "%s", e.msg);

    /* Executor 3: a text file is no executable. Executor 4: nobody serves its hash. */
    launch(r, "app-1", 3, dhash, s.url, NULL, 0);
    CHECK(wait_event(&rec, 3, 0, &e));
    CHECK_MSG(e.state == EM_EXEC_FAILED && strstr(e.msg, "Exec format error"), "%s", e.msg);
    char nobody[EM_FILE_HASH_HEX];
    memset(nobody, 'a', 64);
    nobody[64] = 0;
    launch(r, "app-1", 4, nobody, s.url, NULL, 0);
    CHECK(wait_event(&rec, 4, 0, &e));
    CHECK_MSG(e.state == EM_EXEC_FAILED && strstr(e.msg, nobody) && strstr(e.msg, "no file"), "%s",
              e.msg);
    /* An unsafe application id never becomes a path. */
    launch(r, "../evil", 5, hash, s.url, NULL, 0);
    CHECK(wait_event(&rec, 5, 0, &e));
    CHECK(e.state == EM_EXEC_FAILED && strstr(e.msg, "safe"));

    /* Application end: executor 6 killed, directories cleaned but stdout/stderr kept. */
    launch(r, "app-1", 6, hash, s.url, env1, 1);
    CHECK(wait_event(&rec, 6, 0, &e));
    CHECK_EQ_INT(e.state, EM_EXEC_RUNNING);
    em_executor_runner_app_finished(r, "app-1");
    CHECK(wait_event(&rec, 6, 1, &e));
    CHECK_EQ_INT(e.state, EM_EXEC_KILLED);
    snprintf(path, sizeof path, "%s/app-1/6/env.txt", work);
    for (int i = 0; i < 500 && file_exists(path); i++) usleep(10000);
    CHECK(!file_exists(path));
    snprintf(path, sizeof path, "%s/app-1/6/stderr", work);
    CHECK(file_exists(path));
    /* Freeing kills what still runs (executor 7), reported KILLED. */
    launch(r, "app-2", 7, hash, s.url, env1, 1);
    CHECK(wait_event(&rec, 7, 0, &e));
    em_executor_runner_free(r);
    CHECK(wait_event(&rec, 7, 1, &e));
    CHECK_EQ_INT(e.state, EM_EXEC_KILLED);
    server_stop(&s);
}

/* ---- master + worker + app client -------------------------------------------------------------
 */
typedef struct driver_events {
    pthread_mutex_t mu;
    int added[16], nadded;
    int removed[16], removed_state[16], removed_code[16], nremoved;
    char removed_msg[1600];
    int disconnected;
} driver_events;

static void on_added(void *u, int id, const char *wid, const char *host, int cores, uint64_t mem)
{
    driver_events *d = u;
    (void)wid;
    CHECK_EQ_STR(host, "127.0.0.1");
    CHECK_EQ_INT(cores, 1);
    CHECK_EQ_INT(mem, 128);
    pthread_mutex_lock(&d->mu);
    if (d->nadded < 16) d->added[d->nadded++] = id;
    pthread_mutex_unlock(&d->mu);
}

static void on_removed(void *u, int id, int state, int code, const char *msg)
{
    driver_events *d = u;
    pthread_mutex_lock(&d->mu);
    if (d->nremoved < 16) {
        d->removed[d->nremoved] = id;
        d->removed_state[d->nremoved] = state;
        d->removed_code[d->nremoved++] = code;
        snprintf(d->removed_msg, sizeof d->removed_msg, "%s", msg);
    }
    pthread_mutex_unlock(&d->mu);
}

static void on_disconnected(void *u, const char *reason)
{
    driver_events *d = u;
    (void)reason;
    pthread_mutex_lock(&d->mu);
    d->disconnected++;
    pthread_mutex_unlock(&d->mu);
}

static int n_added(void *u)
{
    driver_events *d = u;
    pthread_mutex_lock(&d->mu);
    int n = d->nadded;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static int n_removed(void *u)
{
    driver_events *d = u;
    pthread_mutex_lock(&d->mu);
    int n = d->nremoved;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* The pid in <work>/<app>/<id>/pid.txt once written (0 before). */
static int read_pid_file(const char *path)
{
    char *s = read_all(path, NULL);
    int pid = s ? atoi(s) : 0;
    free(s);
    return pid;
}

TEST(master_worker_app_client_round_trip)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.worker.heartbeatInterval", "100ms"));
    CHECK_OK(em_conf_set(conf, "ember.network.timeout", "20s"));
    server s;
    server_start(&s, NULL);
    char bin[1200], work[1200];
    static const char script[] = "#!/bin/sh\necho $$ > pid.txt\nexec sleep 1000\n";
    snprintf(bin, sizeof bin, "%s/app.sh", test_tmpdir());
    snprintf(work, sizeof work, "%s/work", test_tmpdir());
    write_file(bin, script, sizeof script - 1, 0755);
    char hash[EM_FILE_HASH_HEX];
    CHECK_OK(em_file_registry_add(s.reg, bin, hash));

    em_master *m = NULL;
    CHECK_OK(em_master_start(conf, "127.0.0.1", 0, &m));
    char url[64];
    snprintf(url, sizeof url, "ember://127.0.0.1:%d", em_master_port(m));
    em_worker *w = NULL;
    em_worker_opts wo = {
        .master_url = url, .cores = 1, .memory_mb = 512, .host = "127.0.0.1", .work_dir = work};
    CHECK_OK(em_worker_start(conf, &wo, &w));
    for (int i = 0; i < 1000 && !em_worker_registered(w); i++) usleep(10000);
    CHECK(em_worker_registered(w));

    driver_events d = {.mu = PTHREAD_MUTEX_INITIALIZER};
    em_app_client_callbacks cb = {on_added, on_removed, on_disconnected, &d};
    em_app_desc desc = {.name = "roundtrip",
                        .cores_max = 1,
                        .executor_cores = 1,
                        .executor_memory_mb = 128,
                        .driver_url = s.url,
                        .binary_hash = hash};
    em_app_client *c = NULL;
    CHECK_OK(em_app_client_start(conf, url, &desc, &cb, &c));
    char *app_id = NULL;
    CHECK_OK(em_app_client_wait_registered(c, &app_id));
    CHECK(app_id && !strncmp(app_id, "app-", 4));
    CHECK(wait_until(n_added, &d, 20));
    CHECK_EQ_INT(d.added[0], 0);
    char pid_path[1400];
    snprintf(pid_path, sizeof pid_path, "%s/%s/0/pid.txt", work, app_id);
    CHECK(wait_until(file_exists, pid_path, 20));
    int pid = 0;
    for (int i = 0; i < 500 && !(pid = read_pid_file(pid_path)); i++) usleep(10000);
    CHECK(pid > 0);
    CHECK_EQ_INT(em_worker_executor_count(w), 1);

    /* kill -9: the driver hears FAILED / -9, a replacement (id 1) is added. */
    CHECK_EQ_INT(kill(pid, SIGKILL), 0);
    CHECK(wait_until(n_removed, &d, 20));
    CHECK_EQ_INT(d.removed[0], 0);
    CHECK_EQ_INT(d.removed_state[0], EM_EXEC_FAILED);
    CHECK_EQ_INT(d.removed_code[0], -9);
    CHECK_MSG(strstr(d.removed_msg, "signal 9") != NULL, "%s", d.removed_msg);
    for (int i = 0; i < 2000 && n_added(&d) < 2; i++) usleep(10000);
    CHECK_EQ_INT(n_added(&d), 2);
    CHECK_EQ_INT(d.added[1], 1);
    snprintf(pid_path, sizeof pid_path, "%s/%s/1/pid.txt", work, app_id);
    CHECK(wait_until(file_exists, pid_path, 20));
    for (int i = 0; i < 500 && !(pid = read_pid_file(pid_path)); i++) usleep(10000);
    CHECK(pid > 0);

    /* The application ends: its executor dies; the master records it FINISHED. */
    em_app_client_stop(c);
    for (int i = 0; i < 1000 && kill(pid, 0) == 0; i++) usleep(10000);
    CHECK(kill(pid, 0) != 0);
    for (int i = 0; i < 500 && em_master_app_count(m, EM_APP_FINISHED) != 1; i++) usleep(10000);
    CHECK_EQ_INT(em_master_app_count(m, EM_APP_FINISHED), 1);
    CHECK_EQ_INT(d.disconnected, 0);
    for (int i = 0; i < 500 && em_worker_executor_count(w); i++) usleep(10000);
    CHECK_EQ_INT(em_worker_executor_count(w), 0);

    /* A refused application: a bad hash is named in the error. */
    desc.binary_hash = "not-a-hash";
    CHECK_OK(em_app_client_start(conf, url, &desc, &cb, &c));
    CHECK_EQ_INT(em_app_client_wait_registered(c, NULL), EM_EMASTER);
    CHECK_MSG(strstr(em_errmsg(), "not-a-hash") != NULL, "%s", em_errmsg());
    em_app_client_stop(c);
    /* Nothing listening: a clear error naming the master. */
    em_master_stop(m);
    desc.binary_hash = hash;
    CHECK_OK(em_app_client_start(conf, url, &desc, &cb, &c));
    CHECK_EQ_INT(em_app_client_wait_registered(c, NULL), EM_ESTATE);
    CHECK_MSG(strstr(em_errmsg(), url) != NULL, "%s", em_errmsg());
    em_app_client_stop(c);

    em__free(app_id);
    em_worker_stop(w);
    server_stop(&s);
    em_conf_free(conf);
}
