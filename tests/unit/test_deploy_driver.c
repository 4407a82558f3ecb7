/* In-process tests of the worker's cluster-mode drivers (src/deploy/executor_runner.c, driver
 * records), with a real file server on 127.0.0.1 standing in for the master and a shell script
 * standing in for the application binary:
 *   - a driver that exits 0: RUNNING then FINISHED; its cwd <work>/<driver-id>, its arguments,
 *     its environment (the submitted entries, EMBER_DRIVER_ID / _HOST / EMBER_WORKER_ID and
 *     the worker's secret winning over submitted ones, nothing else of the worker's, no executor
 *     mode); the binary fetched from the fallback address (the master) when file_url is empty;
 *   - the same id launched again exiting 3: FAILED 3 with the stderr tail, both runs' output
 *     kept (appended);
 *   - a running driver survives APPLICATION_FINISHED and KILL_EXECUTOR of the same name, and
 *     kill_driver makes it KILLED;
 *   - a hash nobody serves and an unsafe id: ERROR (never started);
 *   - freeing the runner kills a running driver: KILLED.
 * Waits are bounded polls for events, never timing assertions.
 */
#include "test.h"

#include "deploy/executor_runner.h"
#include "deploy/file_server.h"
#include "deploy/master_state.h"
#include "net/endpoint.h"

#include <ember/ember.h>
#include <pthread.h>
#include <sys/stat.h>

typedef struct server {
    em_endpoint *ep;
    em_file_registry *reg;
    int port;
    char url[64];
} server;

static void server_msg(em_conn *c, const em_msg *m, void *user)
{
    server *s = user;
    if (m->type == EM_MSG_GET_FILE) em_file_serve(s->reg, c, &m->u.get_file);
}

static void server_start(server *s, const char *secret)
{
    memset(s, 0, sizeof *s);
    CHECK_OK(em_file_registry_new(&s->reg));
    em_endpoint_config cfg = {
        .role = EM_ROLE_MASTER, .secret = secret, .on_message = server_msg, .user = s};
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

static char *read_all(const char *path)
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
    return b;
}

/* 1 when the text has line as one of its lines. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == n && !strncmp(p, line, n)) return 1;
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

typedef struct event {
    char id[64];
    int state, exit_code;
    char msg[1600];
} event;

typedef struct recorder {
    pthread_mutex_t mu;
    event ev[64];
    int n, executor_reports;
} recorder;

static void on_driver(void *user, const char *id, int state, int exit_code, const char *message)
{
    recorder *r = user;
    pthread_mutex_lock(&r->mu);
    if (r->n < 64) {
        event *e = &r->ev[r->n++];
        snprintf(e->id, sizeof e->id, "%s", id);
        e->state = state;
        e->exit_code = exit_code;
        snprintf(e->msg, sizeof e->msg, "%s", message);
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_exec(void *user, const char *app, int id, int state, int code, const char *msg)
{
    (void)app, (void)id, (void)state, (void)code, (void)msg;
    recorder *r = user;
    pthread_mutex_lock(&r->mu);
    r->executor_reports++;
    pthread_mutex_unlock(&r->mu);
}

/* Waits for the k-th event of driver id (0 = first); copies it. */
static int wait_event(recorder *r, const char *id, int k, event *out)
{
    for (int i = 0; i < 3000; i++) {
        pthread_mutex_lock(&r->mu);
        int seen = 0;
        for (int j = 0; j < r->n; j++)
            if (!strcmp(r->ev[j].id, id) && seen++ == k) {
                *out = r->ev[j];
                pthread_mutex_unlock(&r->mu);
                return 1;
            }
        pthread_mutex_unlock(&r->mu);
        usleep(10000);
    }
    return 0;
}

static int events_of(recorder *r, const char *id)
{
    pthread_mutex_lock(&r->mu);
    int k = 0;
    for (int j = 0; j < r->n; j++) k += !strcmp(r->ev[j].id, id);
    pthread_mutex_unlock(&r->mu);
    return k;
}

static void launch(em_executor_runner *r, const char *id, const char *hash, const char *file_url,
                   const char *fallback, const char *const *env, int nenv, const char *const *args,
                   int nargs)
{
    em_str e[8], a[8];
    for (int i = 0; i < nenv; i++) e[i] = em_str_c(env[i]);
    for (int i = 0; i < nargs; i++) a[i] = em_str_c(args[i]);
    em_msg_launch_driver m = {.driver_id = em_str_c(id),
                              .cores = 1,
                              .memory_mb = 256,
                              .binary_hash = em_str_c(hash),
                              .file_url = em_str_c(file_url),
                              .args = {.count = (uint32_t)nargs, .items = a},
                              .env = {.count = (uint32_t)nenv, .items = e}};
    CHECK_OK(em_executor_runner_launch_driver(r, &m, fallback));
}

static const char SCRIPT[] = "#!/bin/sh\n"
                             "env > env.txt\n"
                             "pwd > pwd.txt\n"
                             "echo \"args: $# [$1] [$2]\"\n"
                             "echo \"run $MODE\" >&2\n"
                             "case \"$MODE\" in\n"
                             "exit3) echo 'oops, exit 3' >&2; exit 3 ;;\n"
                             "sleep) exec sleep 1000 ;;\n"
                             "esac\n"
                             "exit 0\n";

TEST(runner_runs_drivers_env_states_kill_and_errors)
{
    server s;
    server_start(&s, "s3cret");
    char bin[1200], work[1200], path[1400];
    snprintf(bin, sizeof bin, "%s/driver.sh", test_tmpdir());
    snprintf(work, sizeof work, "%s/work", test_tmpdir());
    CHECK_OK(em__mkdirs(work));
    FILE *f = fopen(bin, "w");
    CHECK(f && fputs(SCRIPT, f) >= 0 && fclose(f) == 0);
    CHECK_EQ_INT(chmod(bin, 0755), 0);
    char hash[EM_FILE_HASH_HEX];
    CHECK_OK(em_file_registry_add(s.reg, bin, hash));
    setenv("LEAKED_FROM_WORKER", "1", 1);
    recorder rec = {.mu = PTHREAD_MUTEX_INITIALIZER};
    em_executor_runner_config cfg = {.work_dir = work,
                                     .worker_id = "worker-test-7",
                                     .host = "127.0.0.1",
                                     .secret = "s3cret",
                                     .fetch_timeout_ms = 10000,
                                     .kill_grace_ms = 2000,
                                     .on_state = on_exec,
                                     .on_driver_state = on_driver,
                                     .user = &rec};
    em_executor_runner *r = NULL;
    CHECK_OK(em_executor_runner_new(&cfg, &r));

    /* driver-1 exits 0; its binary from the fallback address (file_url empty). */
    const char *env1[] = {"EMBER_MASTER=ember://127.0.0.1:7077", "MODE=exit0",
                          "EMBER_DRIVER_HOST=submitter.example", "EMBER_APP_NAME=t"};
    const char *args1[] = {"a", "b c"};
    launch(r, "driver-1", hash, "", s.url, env1, 4, args1, 2);
    event e;
    CHECK(wait_event(&rec, "driver-1", 0, &e));
    CHECK_MSG(e.state == EM_DRIVER_RUNNING, "%d: %s", e.state, e.msg);
    CHECK(wait_event(&rec, "driver-1", 1, &e));
    CHECK_MSG(e.state == EM_DRIVER_FINISHED && e.exit_code == 0, "%d %d: %s", e.state, e.exit_code,
              e.msg);
    snprintf(path, sizeof path, "%s/driver-1/env.txt", work);
    char *env = read_all(path);
    CHECK(env);
    CHECK(has_line(env, "EMBER_DRIVER_ID=driver-1"));
    CHECK(has_line(env, "EMBER_DRIVER_HOST=127.0.0.1")); /* the worker's host wins */
    CHECK(!strstr(env, "submitter.example"));
    CHECK(has_line(env, "EMBER_WORKER_ID=worker-test-7"));
    CHECK(has_line(env, "EMBER_AUTHENTICATE_SECRET=s3cret"));
    CHECK(has_line(env, "EMBER_MASTER=ember://127.0.0.1:7077"));
    CHECK(has_line(env, "EMBER_APP_NAME=t"));
    CHECK(!strstr(env, "EMBER_EXECUTOR_MODE"));
    CHECK(!strstr(env, "EMBER_AUTH_SECRET="));
    CHECK(!strstr(env, "LEAKED_FROM_WORKER"));
    free(env);
    snprintf(path, sizeof path, "%s/driver-1/pwd.txt", work);
    char *pwd = read_all(path);
    snprintf(path, sizeof path, "%s/driver-1\n", work);
    CHECK(pwd && !strcmp(pwd, path));
    free(pwd);
    snprintf(path, sizeof path, "%s/driver-1/stdout", work);
    char *out = read_all(path);
    CHECK_MSG(out && has_line(out, "args: 2 [a] [b c]"), "%s", out ? out : "(none)");
    free(out);
    snprintf(path, sizeof path, "%s/binaries/%s", work, hash);
    CHECK(access(path, X_OK) == 0);

    /* The same id again (a relaunch), exiting 3: FAILED 3 with the stderr tail; output appended. */
    const char *env2[] = {"MODE=exit3"};
    launch(r, "driver-1", hash, "", s.url, env2, 1, NULL, 0);
    CHECK(wait_event(&rec, "driver-1", 3, &e));
    CHECK_MSG(e.state == EM_DRIVER_FAILED && e.exit_code == 3 && strstr(e.msg, "oops, exit 3"),
              "%d %d: %s", e.state, e.exit_code, e.msg);
    snprintf(path, sizeof path, "%s/driver-1/stderr", work);
    char *err = read_all(path);
    CHECK_MSG(err && has_line(err, "run exit0") && has_line(err, "run exit3"), "%s",
              err ? err : "(none)");
    free(err);

    /* driver-2 runs until killed; orders about executors and applications do not touch it. */
    const char *env3[] = {"MODE=sleep"};
    launch(r, "driver-2", hash, s.url, "", env3, 1, NULL, 0);
    CHECK(wait_event(&rec, "driver-2", 0, &e));
    CHECK_EQ_INT(e.state, EM_DRIVER_RUNNING);
    em_executor_runner_app_finished(r, "driver-2");
    em_executor_runner_kill(r, "driver-2", -1);
    em_executor_runner_kill(r, "driver-2", 0);
    /* A barrier: commands run in order on the runner's loop, so once the refusal of this
     * launch is reported the orders above have been handled (a wrong kill would have sent its
     * SIGTERM already); then a short grace for the exit it would cause. */
    launch(r, "bad/id", hash, "", s.url, NULL, 0, NULL, 0);
    CHECK(wait_event(&rec, "bad/id", 0, &e));
    usleep(200 * 1000);
    CHECK_EQ_INT(events_of(&rec, "driver-2"), 1);
    CHECK_EQ_INT(em_executor_runner_count(r), 1);
    em_executor_runner_kill_driver(r, "driver-2");
    CHECK(wait_event(&rec, "driver-2", 1, &e));
    CHECK_MSG(e.state == EM_DRIVER_KILLED, "%d %s", e.state, e.msg);

    /* Never started: a hash nobody serves, an unsafe id. */
    char nobody[EM_FILE_HASH_HEX];
    memset(nobody, 'b', 64);
    nobody[64] = 0;
    launch(r, "driver-3", nobody, "", s.url, NULL, 0, NULL, 0);
    CHECK(wait_event(&rec, "driver-3", 0, &e));
    CHECK_MSG(e.state == EM_DRIVER_ERROR && e.exit_code == 0 && strstr(e.msg, nobody), "%d %s",
              e.state, e.msg);
    launch(r, "../evil", hash, "", s.url, NULL, 0, NULL, 0);
    CHECK(wait_event(&rec, "../evil", 0, &e));
    CHECK(e.state == EM_DRIVER_ERROR && strstr(e.msg, "safe"));
    launch(r, "binaries", hash, "", s.url, NULL, 0, NULL, 0);
    CHECK(wait_event(&rec, "binaries", 0, &e));
    CHECK(e.state == EM_DRIVER_ERROR && strstr(e.msg, "safe"));

    /* Freeing the runner kills a running driver. */
    launch(r, "driver-4", hash, "", s.url, env3, 1, NULL, 0);
    CHECK(wait_event(&rec, "driver-4", 0, &e));
    CHECK_EQ_INT(e.state, EM_DRIVER_RUNNING);
    em_executor_runner_free(r);
    CHECK(wait_event(&rec, "driver-4", 1, &e));
    CHECK_EQ_INT(e.state, EM_DRIVER_KILLED);
    CHECK_EQ_INT(rec.executor_reports, 0); /* drivers never report as executors */
    server_stop(&s);
}
