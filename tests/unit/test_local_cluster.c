/* local-cluster[W,C,M] (src/deploy/local_cluster.c, launch.c): this test binary itself becomes
 * the master and the workers (EMBER_DAEMON_ROLE, taken by libember's constructor before the
 * test runner's main). Checked: the master URL, an application placed one executor per worker
 * (each in its worker's directory, spread out), stop reaping every daemon (no child left) and
 * killing the executors, the temporary directory removed; bad sizes refused; and daemons that
 * die with their driver (PR_SET_PDEATHSIG) when it exits without stopping them.
 */
#include "test.h"

#include "deploy/app_client.h"
#include "deploy/file_server.h"
#include "deploy/local_cluster.h"
#include "deploy/master.h"
#include "net/endpoint.h"

#include <arpa/inet.h>
#include <ember/ember.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

static void serve(em_conn *c, const em_msg *m, void *user)
{
    if (m->type == EM_MSG_GET_FILE) em_file_serve(user, c, &m->u.get_file);
}

typedef struct added {
    pthread_mutex_t mu;
    int n;
    char hosts[8][64];
} added;

static void on_added(void *u, int id, const char *wid, const char *host, int cores, uint64_t mem)
{
    added *a = u;
    (void)id;
    (void)wid;
    (void)cores;
    (void)mem;
    pthread_mutex_lock(&a->mu);
    if (a->n < 8) snprintf(a->hosts[a->n++], 64, "%s", host);
    pthread_mutex_unlock(&a->mu);
}

static int count_added(added *a)
{
    pthread_mutex_lock(&a->mu);
    int n = a->n;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static int read_int(const char *path)
{
    FILE *f = fopen(path, "r");
    int v = 0;
    if (f) {
        if (fscanf(f, "%d", &v) != 1) v = 0;
        fclose(f);
    }
    return v;
}

TEST(start_place_executors_and_stop)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.local.dir", test_tmpdir()));
    CHECK_OK(em_conf_set(conf, "ember.worker.heartbeatInterval", "200ms"));
    em_local_cluster *lc = NULL;
    CHECK_OK(em__local_cluster_start(conf, 2, 1, 256, &lc));
    const char *url = em__local_cluster_master_url(lc);
    CHECK_MSG(!strncmp(url, "ember://127.0.0.1:", 18) && atoi(url + 18) > 0, "%s", url);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", em__local_cluster_dir(lc));
    CHECK(!strncmp(dir, test_tmpdir(), strlen(test_tmpdir())));

    /* An application whose "binary" writes its pid and sleeps. */
    char bin[1300];
    snprintf(bin, sizeof bin, "%s/app.sh", test_tmpdir());
    FILE *f = fopen(bin, "w");
    CHECK(f);
    fputs("#!/bin/sh\necho $$ > pid.txt\nexec sleep 1000\n", f);
    fclose(f);
    em_file_registry *reg = NULL;
    CHECK_OK(em_file_registry_new(&reg));
    char hash[EM_FILE_HASH_HEX];
    CHECK_OK(em_file_registry_add(reg, bin, hash));
    em_endpoint *ep = NULL;
    em_endpoint_config cfg = {.role = EM_ROLE_DRIVER, .on_message = serve, .user = reg};
    int port = 0;
    CHECK_OK(em_endpoint_new(&cfg, &ep));
    CHECK_OK(em_endpoint_listen(ep, "127.0.0.1", 0, &port));
    CHECK_OK(em_endpoint_start(ep));
    char driver_url[64];
    snprintf(driver_url, sizeof driver_url, "127.0.0.1:%d", port);
    added a = {.mu = PTHREAD_MUTEX_INITIALIZER};
    em_app_client_callbacks cb = {.executor_added = on_added, .user = &a};
    em_app_desc d = {.name = "lc-test",
                     .executor_cores = 1,
                     .executor_memory_mb = 128,
                     .driver_url = driver_url,
                     .binary_hash = hash};
    em_app_client *c = NULL;
    CHECK_OK(em_app_client_start(conf, url, &d, &cb, &c));
    char *app = NULL;
    CHECK_OK(em_app_client_wait_registered(c, &app));
    for (int i = 0; i < 2000 && count_added(&a) < 2; i++) usleep(10000);
    CHECK_EQ_INT(count_added(&a), 2);
    CHECK_EQ_STR(a.hosts[0], "127.0.0.1");
    /* Spread out: executor 0 on one worker, 1 on the other (1 core each). */
    int pids[2] = {0, 0};
    for (int id = 0; id < 2; id++) {
        char p1[1600], p2[1600];
        snprintf(p1, sizeof p1, "%s/worker-1/%s/%d/pid.txt", dir, app, id);
        snprintf(p2, sizeof p2, "%s/worker-2/%s/%d/pid.txt", dir, app, id);
        for (int i = 0; i < 2000 && !(pids[id] = read_int(p1)) && !(pids[id] = read_int(p2)); i++)
            usleep(10000);
        CHECK_MSG(pids[id] > 0, "executor %d never wrote %s or %s", id, p1, p2);
    }
    char both[4000];
    snprintf(both, sizeof both, "test -d %s/worker-1/%s && test -d %s/worker-2/%s", dir, app, dir,
             app);
    CHECK_EQ_INT(system(both), 0);

    em__local_cluster_stop(lc);
    int status;
    CHECK_EQ_INT(waitpid(-1, &status, WNOHANG), -1); /* every daemon reaped */
    CHECK_EQ_INT(errno, ECHILD);
    for (int id = 0; id < 2; id++) {
        for (int i = 0; i < 500 && kill(pids[id], 0) == 0; i++) usleep(10000);
        CHECK_MSG(kill(pids[id], 0) != 0, "executor %d (pid %d) outlived its worker", id, pids[id]);
    }
    CHECK(access(dir, F_OK) != 0);
    em_app_client_stop(c);
    em_endpoint_free(ep);
    em_file_registry_free(reg);
    em__free(app);
    em_conf_free(conf);
}

TEST(bad_sizes_are_refused)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    em_local_cluster *lc = NULL;
    CHECK_EQ_INT(em__local_cluster_start(conf, 0, 1, 1024, &lc), EM_EINVAL);
    CHECK(strstr(em_errmsg(), "local-cluster[0,1,1024]") != NULL);
    CHECK_EQ_INT(em__local_cluster_start(conf, 2, 0, 1024, &lc), EM_EINVAL);
    CHECK_EQ_INT(em__local_cluster_start(conf, 2, 1, 0, &lc), EM_EINVAL);
    CHECK(lc == NULL);
    em_conf_free(conf);
}

static int port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(s);
    return ok;
}

TEST(daemons_die_with_their_driver)
{
    char url_file[1200];
    snprintf(url_file, sizeof url_file, "%s/url", test_tmpdir());
    pid_t driver = fork();
    CHECK(driver >= 0);
    if (driver == 0) { /* a driver that exits without stopping its cluster */
        em_conf *conf = em_conf_new();
        if (!conf || em_conf_set(conf, "ember.local.dir", test_tmpdir())) _exit(2);
        em_local_cluster *lc = NULL;
        if (em__local_cluster_start(conf, 1, 1, 128, &lc)) {
            fprintf(stderr, "%s\n", em_errmsg());
            _exit(3);
        }
        FILE *f = fopen(url_file, "w");
        fprintf(f, "%s\n", em__local_cluster_master_url(lc));
        fclose(f);
        _exit(0);
    }
    int status = 0;
    CHECK_EQ_INT(waitpid(driver, &status, 0), driver);
    CHECK_EQ_INT(WEXITSTATUS(status), 0);
    FILE *f = fopen(url_file, "r");
    CHECK(f);
    char url[128] = "";
    CHECK(fgets(url, sizeof url, f) != NULL);
    fclose(f);
    int port = atoi(url + 18);
    CHECK(port > 0);
    for (int i = 0; i < 2000 && port_open(port); i++) usleep(10000);
    CHECK_MSG(!port_open(port), "the master on port %d outlived its driver", port);
}
