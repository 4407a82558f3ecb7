/* A stand-in application for tests/e2e/test_cluster_apps.sh: a driver that registers with a
 * standalone master through the app client (src/deploy/app_client.h), serves its own binary
 * by hash, and prints what the master tells it; and, started by a worker, a fake executor that
 * records its environment and sleeps until killed. Built by the test script against
 * libember.a (it uses internal headers of src/).
 *
 *   fake_app MASTER_URL OUT_DIR [--cores-max N] [--executor-cores N] [--memory MIB]
 *            [--hash HEX] [--serve FILE] [--secret S] [--env NAME=VALUE]...
 *
 * Driver output on stdout, one line per event, flushed:
 *   serving HASH at 127.0.0.1:PORT
 *   registered APP_ID
 *   added EXEC_ID WORKER_ID HOST CORES MEMORY_MB
 *   removed EXEC_ID STATE EXIT_CODE MESSAGE
 *   disconnected REASON            (then exit status 3)
 *   stopped                        (after SIGTERM / SIGINT: unregisters, exit status 0)
 * A registration error is printed on stderr (exit status 1).
 *
 * Executor mode: the application puts EMBER_EXECUTOR_MODE=fake in its executors' environment
 * (it overrides the worker's EMBER_EXECUTOR_MODE=1, so libember's executor runtime, which takes
 * over only on "1", leaves this process alone); main() sees "fake", writes
 * OUT_DIR/exec-<app>-<id>.env (the environment, then cwd= and pid=) and sleeps until killed.
 */
#include "deploy/app_client.h"
#include "deploy/file_server.h"
#include "deploy/master_state.h"
#include "net/endpoint.h"

#include <ember/ember.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int executor_main(void)
{
    const char *out = getenv("FAKE_OUT"), *app = getenv("EMBER_APP_ID"),
               *id = getenv("EMBER_EXECUTOR_ID");
    if (!out || !app || !id) return 2;
    char path[4096], tmp[4200], cwd[4096];
    snprintf(path, sizeof path, "%s/exec-%s-%s.env", out, app, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return 2;
    for (char **e = environ; *e; e++) fprintf(f, "%s\n", *e);
    fprintf(f, "cwd=%s\npid=%d\n", getcwd(cwd, sizeof cwd) ? cwd : "?", (int)getpid());
    fclose(f);
    rename(tmp, path);
    fprintf(stderr, "fake executor %s of %s running\n", id, app);
    for (;;) pause();
}

static void serve(em_conn *c, const em_msg *m, void *user)
{
    if (m->type == EM_MSG_GET_FILE) em_file_serve(user, c, &m->u.get_file);
}

static void on_added(void *u, int id, const char *wid, const char *host, int cores, uint64_t mem)
{
    (void)u;
    printf("added %d %s %s %d %llu\n", id, wid, host, cores, (unsigned long long)mem);
}

static void on_removed(void *u, int id, int state, int code, const char *msg)
{
    (void)u;
    printf("removed %d %s %d %s\n", id, em_exec_state_name(state), code, msg);
}

static atomic_int gone; /* set on the client's loop thread */
static void on_disconnected(void *u, const char *reason)
{
    (void)u;
    printf("disconnected %s\n", reason);
    atomic_store(&gone, 1);
}

int main(int argc, char **argv)
{
    const char *mode = getenv("EMBER_EXECUTOR_MODE");
    if (mode && !strcmp(mode, "fake")) return executor_main();
    if (argc < 3) {
        fprintf(stderr, "usage: fake_app MASTER_URL OUT_DIR [options]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *master = argv[1], *out = argv[2], *hash_override = NULL, *serve_path = NULL,
               *secret = NULL;
    int cores_max = 0, executor_cores = 1, memory = 256;
    const char *env[32];
    int nenv = 0;
    char out_env[4200];
    snprintf(out_env, sizeof out_env, "FAKE_OUT=%s", out);
    env[nenv++] = "EMBER_EXECUTOR_MODE=fake";
    env[nenv++] = out_env;
    for (int i = 3; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--cores-max"))
            cores_max = atoi(v);
        else if (!strcmp(a, "--executor-cores"))
            executor_cores = atoi(v);
        else if (!strcmp(a, "--memory"))
            memory = atoi(v);
        else if (!strcmp(a, "--hash"))
            hash_override = v;
        else if (!strcmp(a, "--serve"))
            serve_path = v;
        else if (!strcmp(a, "--secret"))
            secret = v;
        else if (!strcmp(a, "--env") && nenv < 32)
            env[nenv++] = v;
        else {
            fprintf(stderr, "fake_app: unknown option %s\n", a);
            return 2;
        }
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    em_conf *conf = em_conf_new();
    if (!conf || (secret && em_conf_set(conf, "ember.authenticate.secret", secret)) ||
        em_conf_set(conf, "ember.network.timeout", "20s"))
        return 1;
    em_file_registry *reg = NULL;
    char hash[EM_FILE_HASH_HEX];
    if (em_file_registry_new(&reg) ||
        em_file_registry_add(reg, serve_path ? serve_path : "/proc/self/exe", hash)) {
        fprintf(stderr, "fake_app: %s\n", em_errmsg());
        return 1;
    }
    em_endpoint *ep = NULL;
    em_endpoint_config cfg = {
        .role = EM_ROLE_DRIVER, .secret = secret, .on_message = serve, .user = reg};
    int port = 0;
    if (em_endpoint_new(&cfg, &ep) || em_endpoint_listen(ep, "127.0.0.1", 0, &port) ||
        em_endpoint_start(ep)) {
        fprintf(stderr, "fake_app: %s\n", em_errmsg());
        return 1;
    }
    char driver_url[64];
    snprintf(driver_url, sizeof driver_url, "127.0.0.1:%d", port);
    printf("serving %s at %s\n", hash, driver_url);
    em_app_desc d = {.name = "fake-app",
                     .cores_max = cores_max,
                     .executor_cores = executor_cores,
                     .executor_memory_mb = (uint64_t)memory,
                     .driver_url = driver_url,
                     .binary_hash = hash_override ? hash_override : hash,
                     .env = env,
                     .num_env = nenv};
    em_app_client_callbacks cb = {on_added, on_removed, on_disconnected, NULL};
    em_app_client *c = NULL;
    char *app_id = NULL;
    int rc = em_app_client_start(conf, master, &d, &cb, &c);
    if (!rc) rc = em_app_client_wait_registered(c, &app_id);
    if (rc) {
        fprintf(stderr, "fake_app: %s\n", em_errmsg());
        em_app_client_stop(c);
        em_endpoint_free(ep);
        em_file_registry_free(reg);
        em_conf_free(conf);
        return 1;
    }
    printf("registered %s\n", app_id);
    int status = 0;
    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        int sig = sigtimedwait(&stop, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) break;
        if (atomic_load(&gone)) {
            status = 3;
            break;
        }
    }
    em_app_client_stop(c);
    if (!status) printf("stopped\n");
    em__free(app_id);
    em_endpoint_free(ep);
    em_file_registry_free(reg);
    em_conf_free(conf);
    return status;
}
