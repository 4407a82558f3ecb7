/* --daemon for `ember master` and `ember worker`: the launching process checks the pid file
 * (refusing a live daemon, removing a stale file), creates the log and pid directories, opens
 * the log file (append) and a readiness pipe, then double-forks. The middle child calls setsid
 * and exits; the grandchild (the daemon) writes the pid file with O_EXCL, takes stdin from
 * /dev/null and sends stdout/stderr to the log, and returns to the command, which starts its
 * threads and reports readiness or its error through the pipe. The launcher exits 0 after a
 * "ready" report, 1 after an error report or when the daemon died without reporting.
 *
 * File names follow Spark's sbin scripts: <log-dir>/ember-<user>-<role>[-<instance>]-<host>.log
 * and <pid-dir>/ember-<user>-<role>[-<instance>]-<host>.pid, with <user> from getpwuid(getuid())
 * and <host> from gethostname(). The daemon keeps the launcher's working directory.
 *
 * Called from the main thread of em_cli_master / em_cli_worker before any thread exists.
 */
#include "daemon.h"

#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int em__daemon_opt(em__daemon_opts *o, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--daemon")) {
        o->daemon = 1;
        return 1;
    }
    if (strcmp(a, "--log-dir") && strcmp(a, "--pid-dir") && strcmp(a, "--instance")) return 0;
    if (*i + 1 >= argc || !*argv[*i + 1]) {
        fprintf(stderr, "%s: missing value after '%s'\n", cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    if (!strcmp(a, "--log-dir")) {
        o->log_dir = v;
    } else if (!strcmp(a, "--pid-dir")) {
        o->pid_dir = v;
    } else {
        char *end = NULL;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (*end || errno || n < 1 || n > 9999) {
            fprintf(stderr, "%s: --instance '%s' is not a number from 1 to 9999\n", cmd, v);
            return -1;
        }
        o->instance = (int)n;
    }
    return 1;
}

static int mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return -errno;
    return 0;
}

/* The pid in path, or 0 when the file is missing or does not hold a pid. */
static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long v = 0;
    if (fscanf(f, "%ld", &v) != 1 || v <= 0 || v > INT_MAX) v = 0;
    fclose(f);
    return (pid_t)v;
}

/* 1 when pid is a live process that looks like ember (its /proc cmdline mentions "ember", or
 * /proc cannot tell us). */
static int live_ember(pid_t pid)
{
    if (kill(pid, 0) && errno != EPERM) return 0;
    char path[64], cmd[4096];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 1;
    ssize_t n = read(fd, cmd, sizeof cmd - 1);
    close(fd);
    if (n <= 0) return 1;
    for (ssize_t k = 0; k < n; k++)
        if (!cmd[k]) cmd[k] = ' ';
    cmd[n] = 0;
    return strstr(cmd, "ember") != NULL;
}

static char *path_of(const char *dir, const char *base, const char *ext)
{
    size_t len = strlen(dir) + strlen(base) + strlen(ext) + 2;
    char *p = em__malloc(len);
    if (p) snprintf(p, len, "%s/%s%s", dir, base, ext);
    return p;
}

/* The launcher: waits for the report on fd, prints it, exits. */
static void launcher_wait(int fd, pid_t middle, const char *cmd, const char *log_path)
{
    char buf[4096];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == sizeof buf - 1) break;
    }
    buf[n] = 0;
    close(fd);
    waitpid(middle, NULL, 0);
    if (n > 0 && buf[0] == 'R') {
        printf("%s: daemon started, %s\n", cmd, buf + 1);
        fflush(stdout);
        exit(0);
    }
    if (n > 0 && buf[0] == 'E')
        fprintf(stderr, "%s: %s\n", cmd, buf + 1);
    else
        fprintf(stderr, "%s: the daemon exited before it was ready (see %s)\n", cmd, log_path);
    exit(1);
}

int em__daemonize(const em__daemon_opts *o, const char *cmd, const char *role, em__daemon *d)
{
    memset(d, 0, sizeof *d);
    d->ready_fd = -1;
    const char *log_dir = o->log_dir ? o->log_dir : getenv("EMBER_LOG_DIR");
    const char *pid_dir = o->pid_dir ? o->pid_dir : getenv("EMBER_PID_DIR");
    if (!log_dir || !*log_dir) log_dir = "logs";
    if (!pid_dir || !*pid_dir) pid_dir = "/tmp";

    char host[256] = "localhost", base[512], user[128];
    if (gethostname(host, sizeof host - 1)) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    struct passwd *pw = getpwuid(getuid());
    const char *u = pw && pw->pw_name ? pw->pw_name : getenv("USER");
    snprintf(user, sizeof user, "%s", u && *u ? u : "unknown");
    if (o->instance > 0)
        snprintf(base, sizeof base, "ember-%s-%s-%d-%s", user, role, o->instance, host);
    else
        snprintf(base, sizeof base, "ember-%s-%s-%s", user, role, host);

    const char *dirs[2] = {log_dir, pid_dir};
    for (int k = 0; k < 2; k++) {
        int rc = mkdir_p(dirs[k]);
        if (rc) {
            fprintf(stderr, "%s: cannot create directory '%s': %s\n", cmd, dirs[k], strerror(-rc));
            exit(1);
        }
    }
    d->log_path = path_of(log_dir, base, ".log");
    d->pid_path = path_of(pid_dir, base, ".pid");
    if (!d->log_path || !d->pid_path) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        exit(1);
    }
    pid_t old = read_pid(d->pid_path);
    if (old > 0 && live_ember(old)) {
        fprintf(stderr, "%s: already running as process %ld (pid file %s); stop it first\n", cmd,
                (long)old, d->pid_path);
        exit(1);
    }
    if (unlink(d->pid_path) == 0)
        fprintf(stderr, "%s: removed stale pid file %s\n", cmd, d->pid_path);
    int logfd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        fprintf(stderr, "%s: cannot open log file %s: %s\n", cmd, d->log_path, strerror(errno));
        exit(1);
    }
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int p[2];
    if (nullfd < 0 || pipe2(p, O_CLOEXEC)) {
        fprintf(stderr, "%s: cannot set up the daemon: %s\n", cmd, strerror(errno));
        exit(1);
    }
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid_t middle = fork();
    if (middle < 0) {
        fprintf(stderr, "%s: fork: %s\n", cmd, strerror(errno));
        exit(1);
    }
    if (middle > 0) {
        close(p[1]);
        launcher_wait(p[0], middle, cmd, d->log_path);
    }
    close(p[0]);
    d->ready_fd = p[1];
    setsid();
    pid_t dpid = fork();
    if (dpid != 0) {
        if (dpid < 0) em__daemon_ready(d, 0, "fork of the daemon failed");
        _exit(0);
    }
    umask(022);
    int pfd = open(d->pid_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (pfd < 0) {
        char msg[PATH_MAX + 128];
        snprintf(msg, sizeof msg, "cannot create pid file %s: %s", d->pid_path, strerror(errno));
        em__daemon_ready(d, 0, msg);
        _exit(1);
    }
    char num[32];
    int len = snprintf(num, sizeof num, "%ld\n", (long)getpid());
    if (write(pfd, num, (size_t)len) != len) {
        close(pfd);
        unlink(d->pid_path);
        em__daemon_ready(d, 0, "cannot write the pid file");
        _exit(1);
    }
    close(pfd);
    dup2(nullfd, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    close(nullfd);
    close(logfd);
    fprintf(stderr, "==== %s daemon, pid %ld, pid file %s\n", cmd, (long)getpid(), d->pid_path);
    return 0;
}

void em__daemon_ready(em__daemon *d, int ok, const char *msg)
{
    if (!d || d->ready_fd < 0) return;
    char buf[4096];
    int n;
    if (ok)
        n = snprintf(buf, sizeof buf, "Rpid %ld%s%s; log %s", (long)getpid(), msg ? ", " : "",
                     msg ? msg : "", d->log_path);
    else
        n = snprintf(buf, sizeof buf, "E%s", msg ? msg : "failed to start");
    if (n >= (int)sizeof buf) n = (int)sizeof buf - 1;
    ssize_t w = write(d->ready_fd, buf, (size_t)n);
    (void)w;
    close(d->ready_fd);
    d->ready_fd = -1;
}

void em__daemon_finish(em__daemon *d)
{
    if (!d) return;
    em__daemon_ready(d, 0, NULL);
    if (d->pid_path && read_pid(d->pid_path) == getpid()) unlink(d->pid_path);
    em__free(d->log_path);
    em__free(d->pid_path);
    d->log_path = d->pid_path = NULL;
}

void em__daemon_begin(const em__daemon_opts *o, const char *cmd, const char *role, em__daemon *d,
                      sigset_t *stop_signals)
{
    if (!getenv("EMBER_LOG_LEVEL") && em__log_level < EM_LOG_INFO) em__log_level = EM_LOG_INFO;
    if (o->daemon) em__daemonize(o, cmd, role, d); /* returns in the daemon only */
    sigemptyset(stop_signals);
    sigaddset(stop_signals, SIGINT);
    sigaddset(stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
}
