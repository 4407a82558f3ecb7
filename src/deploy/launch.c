/* Daemon mode of any program linked with libember (see launch.h): the constructor that turns
 * a process started by local-cluster into its master or one of its workers, and the child
 * side of that start.
 *
 * The constructor runs before main() in every process of a program linked with libember. It
 * does nothing unless EMBER_DAEMON_ROLE is set; then it blocks SIGINT / SIGTERM (before any
 * thread exists), loads the options file, runs em__run_master / em__run_worker until SIGTERM
 * (sent by em__local_cluster_stop, or by the kernel when the driver's thread that started it
 * dies: PR_SET_PDEATHSIG), and _exits with the daemon's status: the user's main() and atexit
 * handlers never run in a daemon. The object is linked into every driver that can start a
 * local cluster: local_cluster.c calls em__launch_child.
 * Thread rule: the constructor runs on the main thread before main(); em__launch_child in a
 * forked child.
 */
#include "deploy/launch.h"

#include "deploy/daemon_run.h"

#include <ember/ember.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <unistd.h>

void em__launch_child(pid_t parent_pid, int ready_fd, int log_fd, int null_fd, char *const argv[],
                      char *const envp[])
{
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 ||
        dup2(ready_fd, EM_DAEMON_READY_FD) < 0)
        _exit(127);
    close_range(EM_DAEMON_READY_FD + 1, ~0U, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent_pid) _exit(1); /* the driver died before prctl */
    execve("/proc/self/exe", argv, envp);
    _exit(127);
}

/* ---- the daemon side ------------------------------------------------------------------------ */
static void ready_report(void *arg, int ok, int port, const char *msg)
{
    int fd = *(int *)arg;
    if (fd < 0) return;
    char buf[2048];
    int n = ok ? snprintf(buf, sizeof buf, "R%d", port)
               : snprintf(buf, sizeof buf, "E%s", msg ? msg : "failed to start");
    if (n >= (int)sizeof buf) n = (int)sizeof buf - 1;
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
    close(fd);
    *(int *)arg = -1;
}

static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

static int run_daemon(const char *role)
{
    int ready_fd = env_int("EMBER_DAEMON_READY_FD", -1);
    const char *level = getenv("EMBER_LOG_LEVEL"); /* util.c's constructor may not have run */
    if (!level || !strcasecmp(level, "info"))
        em__log_level = EM_LOG_INFO;
    else if (!strcasecmp(level, "debug"))
        em__log_level = EM_LOG_DEBUG;
    else if (!strcasecmp(level, "warn"))
        em__log_level = EM_LOG_WARN;
    else if (!strcasecmp(level, "error"))
        em__log_level = EM_LOG_ERROR;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char cmd[64];
    snprintf(cmd, sizeof cmd, "ember %s (local-cluster)", role);
    em_conf *conf = em_conf_new();
    const char *path = getenv("EMBER_DAEMON_CONF");
    if (!conf || (path && *path && em_conf_load_file(conf, path))) {
        fprintf(stderr, "%s: %s\n", cmd, conf ? em_errmsg() : "out of memory");
        ready_report(&ready_fd, 0, 0, conf ? em_errmsg() : "out of memory");
        em_conf_free(conf);
        return 1;
    }
    const char *host = getenv("EMBER_DAEMON_HOST");
    if (!host || !*host) host = "127.0.0.1";
    fprintf(stderr, "==== %s, pid %d\n", cmd, (int)getpid());
    int status;
    if (!strcmp(role, "master")) {
        status = em__run_master(conf, cmd, host, 0, &stop, ready_report, &ready_fd);
    } else if (!strcmp(role, "worker")) {
        em_worker_opts o = {.master_url = getenv("EMBER_DAEMON_MASTER"),
                            .cores = env_int("EMBER_DAEMON_CORES", 1),
                            .memory_mb = (uint64_t)env_int("EMBER_DAEMON_MEMORY_MB", 1024),
                            .host = host,
                            .work_dir = getenv("EMBER_DAEMON_WORK_DIR")};
        if (!o.master_url) o.master_url = "";
        status = em__run_worker(conf, cmd, &o, &stop, 1, ready_report, &ready_fd);
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown %s '%s' (master or worker)", EM_DAEMON_ROLE_ENV, role);
        fprintf(stderr, "%s: %s\n", cmd, msg);
        ready_report(&ready_fd, 0, 0, msg);
        status = 1;
    }
    ready_report(&ready_fd, 0, 0, "the daemon stopped before it was ready");
    em_conf_free(conf);
    return status;
}

__attribute__((constructor)) static void em__launch_daemon_if_asked(void)
{
    const char *role = getenv(EM_DAEMON_ROLE_ENV);
    if (!role) return;
    int status = run_daemon(role);
    fflush(NULL);
    _exit(status);
}

/* Executors and cluster-mode drivers die with the worker that started them (Spark's
 * WorkerWatcher): the worker passes its pid in EMBER_WORKER_PID; before any other constructor
 * (the executor mode's takes over the process) the child asks the kernel for SIGKILL when the
 * worker's thread that spawned it ends, and exits at once if the worker is already gone. The
 * variable is removed so that processes the child starts do not inherit the tie. */
__attribute__((constructor(102))) static void em__die_with_worker(void)
{
    const char *v = getenv(EM_WORKER_PID_ENV);
    if (!v) return;
    pid_t worker = (pid_t)atol(v);
    unsetenv(EM_WORKER_PID_ENV);
    if (worker <= 1) return;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != worker) _exit(1); /* the worker died before prctl */
}
