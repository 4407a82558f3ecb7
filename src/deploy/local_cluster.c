/* local-cluster[W,C,M] (see local_cluster.h): the driver's side of starting and stopping a
 * master and W workers as child processes of its own binary in daemon mode (launch.c).
 *
 * Start: a temporary directory; the driver's options written to <dir>/daemon.conf (0600: it
 * may hold the secret; never on a command line); the master forked and executed with
 * EMBER_DAEMON_ROLE=master, its readiness pipe giving its port; then the workers with the
 * master's URL, each reporting once registered. Everything the child needs (argv, envp,
 * descriptors) is prepared before fork, since the driver may have threads: the child calls
 * only em__launch_child (async-signal-safe). The wait polls every readiness pipe with one
 * deadline (EM_LOCAL_CLUSTER_START_TIMEOUT_MS); a pipe closed without a report is a daemon
 * that died; errors quote the end of its log.
 * Stop: SIGTERM to the workers, then the master; each is reaped with waitpid (SIGKILL after the
 * grace); the directory is removed.
 * Thread rule: one thread (the driver's), start then stop. Called by the scheduler's context
 * for local-cluster master URLs, and tests.
 */
#include "deploy/local_cluster.h"

#include "base/base.h"
#include "base/conf_int.h"
#include "deploy/executor_runner.h"
#include "deploy/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct daemon_proc {
    pid_t pid;     /* 0 when not started or reaped */
    int ready_fd;  /* read end of the readiness pipe; -1 once read */
    int reported;  /* 1 ready, -1 failed */
    int port;      /* the master's */
    char name[32]; /* "master", "worker 1" */
    char log[PATH_MAX];
    char msg[1024];
};

struct em_local_cluster {
    char *dir;
    char *master_url;
    struct daemon_proc master;
    struct daemon_proc *workers;
    int nworkers;
};

/* ---- helpers ------------------------------------------------------------------------------ */
static void fmt_into(char *buf, size_t cap, const char *fmt, ...) EM_PRINTF(3, 4);
static void fmt_into(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* The last lines of a log (about 800 bytes), lines joined by " | ". */
static void log_tail(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[800];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, start);
    close(fd);
    if (n <= 0) return;
    while (n > 0 && buf[n - 1] == '\n') n--;
    size_t o = 0;
    for (ssize_t i = 0; i < n && o + 4 < cap; i++) {
        if (buf[i] == '\n') {
            memcpy(out + o, " | ", 3);
            o += 3;
        } else {
            out[o++] = (unsigned char)buf[i] < 32 ? ' ' : buf[i];
        }
    }
    out[o] = '\0';
}

/* A descriptor >= 10, close-on-exec, replacing fd (closed). -1 on failure. */
static int high_fd(int fd)
{
    if (fd < 0) return -1;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return h;
}

struct conf_file {
    FILE *f;
};

static int write_option(void *arg, const char *key, const char *value)
{
    struct conf_file *cf = arg;
    if (!strcmp(key, "ember.master") || !strcmp(key, "ember.worker.dir")) return 0;
    if (strchr(value, '\n')) return 0; /* not representable in a properties line */
    return fprintf(cf->f, "%s=%s\n", key, value) < 0 ? -EIO : 0;
}

/* <dir>/daemon.conf with the driver's options. */
static int write_conf(const em_conf *conf, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return em__set_error(-errno, "cannot create '%s': %s", path, strerror(errno));
    struct conf_file cf = {fdopen(fd, "w")};
    if (!cf.f) {
        close(fd);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    int rc = em__conf_foreach_set(conf, write_option, &cf);
    if (fclose(cf.f) || rc) return em__set_error(EM_EIO, "cannot write '%s'", path);
    return 0;
}

/* Starts one daemon: role "master" or "worker", extra environment entries. */
static int spawn_daemon(struct daemon_proc *p, const char *role, const char *const *extra,
                        int nextra)
{
    p->ready_fd = -1;
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **envp = em__calloc(n + (size_t)nextra + 2, sizeof *envp);
    char role_env[64];
    fmt_into(role_env, sizeof role_env, "%s=%s", EM_DAEMON_ROLE_ENV, role);
    if (!envp) return em__set_error(EM_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "EMBER_DAEMON_", 13) &&
            strncmp(environ[i], "EMBER_EXECUTOR_MODE=", 20))
            envp[k++] = environ[i];
    envp[k++] = role_env;
    for (int i = 0; i < nextra; i++) envp[k++] = (char *)extra[i];
    char argv0[64];
    fmt_into(argv0, sizeof argv0, "ember-local-%s", p->name);
    for (char *c = argv0; *c; c++)
        if (*c == ' ') *c = '-';
    char *argv[] = {argv0, NULL};

    int pipefd[2] = {-1, -1};
    int log_fd = high_fd(open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    int null_fd = high_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    int rc = 0;
    if (log_fd < 0 || null_fd < 0 || pipe2(pipefd, O_CLOEXEC))
        rc = em__set_error(-errno, "cannot prepare the local-cluster %s (log %s): %s", p->name,
                           p->log, strerror(errno));
    int wfd = rc ? -1 : high_fd(pipefd[1]);
    if (!rc && wfd < 0) rc = em__set_error(-errno, "cannot prepare a pipe: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = rc ? -1 : fork();
    if (pid == 0) em__launch_child(parent, wfd, log_fd, null_fd, argv, envp);
    if (!rc && pid < 0)
        rc =
            em__set_error(-errno, "cannot fork the local-cluster %s: %s", p->name, strerror(errno));
    if (log_fd >= 0) close(log_fd);
    if (null_fd >= 0) close(null_fd);
    if (wfd >= 0) close(wfd);
    em__free(envp);
    if (rc) {
        if (pipefd[0] >= 0) close(pipefd[0]);
        return rc;
    }
    p->pid = pid;
    p->ready_fd = pipefd[0];
    return 0;
}

/* Waits until every process of procs[0..n) reported, or deadline_ms. 0 when all are ready;
 * else an error naming the first that failed. */
static int wait_ready(struct daemon_proc **procs, int n, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd pfd[n > 0 ? n : 1];
        int idx[n > 0 ? n : 1], m = 0;
        for (int i = 0; i < n; i++) {
            if (procs[i]->reported < 0) {
                char tail[900];
                log_tail(procs[i]->log, tail, sizeof tail);
                return em__set_error(EM_ESTATE, "local-cluster %s failed to start: %s%s%s",
                                     procs[i]->name, procs[i]->msg, *tail ? "; its log ends: " : "",
                                     tail);
            }
            if (!procs[i]->reported) {
                pfd[m] = (struct pollfd){.fd = procs[i]->ready_fd, .events = POLLIN};
                idx[m++] = i;
            }
        }
        if (!m) return 0;
        int64_t left = deadline_ms - em__now_ms();
        if (left <= 0) {
            struct daemon_proc *p = procs[idx[0]];
            char tail[900];
            log_tail(p->log, tail, sizeof tail);
            return em__set_error(EM_ESTATE, "local-cluster %s not ready within %d ms (%s)%s%s",
                                 p->name, EM_LOCAL_CLUSTER_START_TIMEOUT_MS,
                                 strcmp(p->name, "master") ? "not registered with the master"
                                                           : "not listening",
                                 *tail ? "; its log ends: " : "", tail);
        }
        int r = poll(pfd, (nfds_t)m, (int)EM_MIN(left, 1000));
        if (r < 0 && errno != EINTR) return em__set_error(-errno, "poll: %s", strerror(errno));
        for (int j = 0; r > 0 && j < m; j++) {
            if (!pfd[j].revents) continue;
            struct daemon_proc *p = procs[idx[j]];
            char buf[2048];
            ssize_t got = read(p->ready_fd, buf, sizeof buf - 1);
            if (got < 0 && errno == EINTR) continue;
            close(p->ready_fd);
            p->ready_fd = -1;
            buf[got > 0 ? got : 0] = '\0';
            if (got > 0 && buf[0] == 'R') {
                p->reported = 1;
                p->port = atoi(buf + 1);
            } else {
                p->reported = -1;
                fmt_into(p->msg, sizeof p->msg, "%s",
                         got > 0 ? buf + 1 : "it exited before it was ready");
            }
        }
    }
}

/* SIGTERM already sent: reaps p, with SIGKILL at deadline_ms. */
static void reap(struct daemon_proc *p, int64_t deadline_ms)
{
    if (p->pid <= 0) return;
    for (;;) {
        int status;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) break;
        if (em__now_ms() >= deadline_ms) {
            EM_LOG(EM_LOG_WARN, "local-cluster", "%s (pid %d) ignores SIGTERM: SIGKILL", p->name,
                   (int)p->pid);
            kill(p->pid, SIGKILL);
            while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        usleep(10000);
    }
    p->pid = 0;
}

/* ---- public API --------------------------------------------------------------------------- */
int em__local_cluster_start(const em_conf *conf, int workers, int cores, int memory_mb,
                            em_local_cluster **out)
{
    *out = NULL;
    if (workers < 1 || cores < 1 || memory_mb < 1)
        return em__set_error(EM_EINVAL,
                             "local-cluster[%d,%d,%d]: workers, cores and memory (MiB) must be "
                             ">= 1",
                             workers, cores, memory_mb);
    em_local_cluster *lc = em__calloc(1, sizeof *lc);
    if (!lc) return em__set_error(EM_ENOMEM, "out of memory");
    lc->master.ready_fd = -1;
    lc->workers = em__calloc((size_t)workers, sizeof *lc->workers);
    const char *base = em_conf_get_str(conf, "ember.local.dir");
    char tmpl[PATH_MAX];
    fmt_into(tmpl, sizeof tmpl, "%s/ember-local-cluster-XXXXXX", base && *base ? base : "/tmp");
    int rc = lc->workers ? 0 : em__set_error(EM_ENOMEM, "out of memory");
    if (!rc && !mkdtemp(tmpl))
        rc = em__set_error(-errno, "local-cluster: cannot create a directory like '%s': %s", tmpl,
                           strerror(errno));
    if (!rc && !(lc->dir = em__strdup(tmpl))) rc = em__set_error(EM_ENOMEM, "out of memory");
    for (int i = 0; lc->workers && i < workers; i++) lc->workers[i].ready_fd = -1;
    char conf_path[PATH_MAX + 16], conf_env[PATH_MAX + 32];
    if (!rc) {
        fmt_into(conf_path, sizeof conf_path, "%s/daemon.conf", lc->dir);
        fmt_into(conf_env, sizeof conf_env, "EMBER_DAEMON_CONF=%s", conf_path);
        rc = write_conf(conf, conf_path);
    }
    int64_t deadline = em__now_ms() + EM_LOCAL_CLUSTER_START_TIMEOUT_MS;
    if (!rc) {
        fmt_into(lc->master.name, sizeof lc->master.name, "master");
        fmt_into(lc->master.log, sizeof lc->master.log, "%s/master.log", lc->dir);
        const char *env[] = {conf_env, "EMBER_DAEMON_HOST=127.0.0.1", "EMBER_DAEMON_READY_FD=3"};
        rc = spawn_daemon(&lc->master, "master", env, 3);
    }
    if (!rc) {
        struct daemon_proc *m = &lc->master;
        rc = wait_ready(&m, 1, deadline);
    }
    char url_env[96], cores_env[48], mem_env[48];
    if (!rc) {
        char url[64];
        fmt_into(url, sizeof url, "ember://127.0.0.1:%d", lc->master.port);
        lc->master_url = em__strdup(url);
        if (!lc->master_url) rc = em__set_error(EM_ENOMEM, "out of memory");
        fmt_into(url_env, sizeof url_env, "EMBER_DAEMON_MASTER=%s", url);
        fmt_into(cores_env, sizeof cores_env, "EMBER_DAEMON_CORES=%d", cores);
        fmt_into(mem_env, sizeof mem_env, "EMBER_DAEMON_MEMORY_MB=%d", memory_mb);
    }
    for (int i = 0; !rc && i < workers; i++) {
        struct daemon_proc *w = &lc->workers[i];
        char dir_env[PATH_MAX + 32];
        fmt_into(w->name, sizeof w->name, "worker %d", i + 1);
        fmt_into(w->log, sizeof w->log, "%s/worker-%d.log", lc->dir, i + 1);
        fmt_into(dir_env, sizeof dir_env, "EMBER_DAEMON_WORK_DIR=%s/worker-%d", lc->dir, i + 1);
        const char *env[] = {conf_env,
                             "EMBER_DAEMON_HOST=127.0.0.1",
                             "EMBER_DAEMON_READY_FD=3",
                             url_env,
                             cores_env,
                             mem_env,
                             dir_env};
        rc = spawn_daemon(w, "worker", env, 7);
        lc->nworkers = i + 1;
    }
    if (!rc) {
        struct daemon_proc **all = em__calloc((size_t)workers, sizeof *all);
        if (!all) rc = em__set_error(EM_ENOMEM, "out of memory");
        for (int i = 0; all && i < workers; i++) all[i] = &lc->workers[i];
        if (all) rc = wait_ready(all, workers, deadline);
        em__free(all);
    }
    if (rc) {
        char msg[2048];
        fmt_into(msg, sizeof msg, "%s", em_errmsg());
        em__local_cluster_stop(lc);
        return em__set_error(rc, "local-cluster[%d,%d,%d]: %s", workers, cores, memory_mb, msg);
    }
    EM_LOG(EM_LOG_INFO, "local-cluster",
           "master %s and %d workers (%d cores, %d MiB each) up in %s", lc->master_url, workers,
           cores, memory_mb, lc->dir);
    *out = lc;
    return 0;
}

const char *em__local_cluster_master_url(const em_local_cluster *lc)
{
    return lc->master_url;
}

const char *em__local_cluster_dir(const em_local_cluster *lc)
{
    return lc->dir;
}

void em__local_cluster_stop(em_local_cluster *lc)
{
    if (!lc) return;
    int64_t deadline = em__now_ms() + EM_EXECUTOR_KILL_GRACE_MS + 3000;
    for (int i = 0; i < lc->nworkers; i++)
        if (lc->workers[i].pid > 0) kill(lc->workers[i].pid, SIGTERM);
    for (int i = 0; i < lc->nworkers; i++) reap(&lc->workers[i], deadline);
    if (lc->master.pid > 0) kill(lc->master.pid, SIGTERM);
    reap(&lc->master, em__now_ms() + 3000);
    for (int i = 0; lc->workers && i < lc->nworkers; i++)
        if (lc->workers[i].ready_fd >= 0) close(lc->workers[i].ready_fd);
    if (lc->master.ready_fd >= 0) close(lc->master.ready_fd);
    if (lc->dir) {
        int rc = em__rmtree(lc->dir);
        if (rc)
            EM_LOG(EM_LOG_WARN, "local-cluster", "cannot remove %s: %s", lc->dir, em_strerror(rc));
    }
    em__free(lc->workers);
    em__free(lc->dir);
    em__free(lc->master_url);
    em__free(lc);
}
