/* The worker's executor processes and cluster-mode driver processes (see executor_runner.h
 * for the directory layouts, the environment contracts and the states reported). A driver is a
 * record like an executor's (is_driver set; its id in app_id, exec_id -1): the same
 * preparation, cache, spawn, watch and kill, with its own directory, arguments, environment
 * and states (report() translates).
 *
 * Owns: one libuv loop on its own thread (uv_spawn needs a loop: its exit callback gives the
 * status or signal; the endpoints do not expose theirs), the executors it knows, and the
 * binaries cache. Called by src/deploy/worker.c (LAUNCH_EXECUTOR, KILL_EXECUTOR,
 * APPLICATION_FINISHED from the master) and tests.
 *
 * Executor lifecycle here (loop thread; each arrow names its function):
 *
 *   launch cmd --handle_launch--> PREPARING --prep_done: spawned--> RUNNING --on_exit_cb--> DONE
 *                                  | (uv_queue_work: prep_work makes          |  kill: SIGTERM,
 *                                  |  the directory, takes the binary from    |  kill_timer:
 *                                  |  the cache or fetches it, checks it)     |  SIGKILL after
 *                                  +--prep_done: failed / killed meanwhile--> DONE  the grace
 *   DONE: exactly one final state reported; the process and timer handles close; then the
 *   record is freed (release_exec). A kill during PREPARING cancels the work if it has not
 *   started, else takes effect when it ends.
 *
 * Threads: commands from any thread go on r->cmds under r->mu and wake the loop (uv_async);
 * everything else runs on the loop thread, except prep_work on libuv's thread pool, which
 * touches only its own record and the cache (r->fetch_mu serialises cache fills, so two
 * executors of one application on one worker fetch the binary once). on_state runs on the loop.
 * Stop: a STOP command kills every executor; the loop ends when the last record is freed.
 */
#include "deploy/executor_runner.h"

#include "deploy/launch.h"

#include "deploy/file_server.h"
#include "deploy/master_state.h"
#include "net/block_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

enum { RX_PREPARING, RX_RUNNING, RX_DONE };
enum { CMD_LAUNCH, CMD_KILL, CMD_KILL_DRIVER, CMD_APP_FINISHED, CMD_STOP };

struct rexec {
    struct rexec *next;
    em_executor_runner *r;
    int is_driver;                    /* a cluster-mode driver: app_id is its id, exec_id -1 */
    char *app_id, *hash, *driver_url; /* driver_url: where the binary is fetched from */
    char **env, **args;               /* args: a driver's arguments (argv[1..]) */
    int num_env, num_args;
    int exec_id, cores;
    uint64_t memory_mb;
    char dir[PATH_MAX], binary[PATH_MAX];
    int phase;
    int kill_requested;
    int spawned;      /* proc handle initialised (must be closed) */
    int open_handles; /* handles not yet closed */
    uv_work_t work;
    uv_process_t proc;
    uv_timer_t kill_timer;
    /* prep_work's results */
    int prep_rc;
    int cache_hit;
    uint64_t fetched_bytes;
    int64_t fetch_ms;
    char prep_msg[1024];
};

struct cmd {
    struct cmd *next;
    int type;
    struct rexec *rx; /* CMD_LAUNCH */
    char *app_id;
    int exec_id;
};

struct finished_app {
    struct finished_app *next;
    char *app_id;
};

struct em_executor_runner {
    char *work_dir, *worker_id, *host, *secret;
    em_block_server *shuffle_service;
    size_t max_frame;
    int64_t fetch_timeout_ms, kill_grace_ms;
    em_exec_state_fn on_state;
    em_driver_state_fn on_driver_state;
    void *user;
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t fetch_mu;
    /* guarded by mu */
    pthread_mutex_t mu;
    struct cmd *cmds, *cmds_tail;
    int stopping;
    int count;
    /* loop thread */
    struct rexec *execs;
    struct finished_app *finished;
    int stop_seen;
};

/* ---- small helpers ------------------------------------------------------------------------ */
/* snprintf that truncates silently (paths are bounded by PATH_MAX, messages by their buffer). */
static void fmt_into(char *buf, size_t cap, const char *fmt, ...) EM_PRINTF(3, 4);
static void fmt_into(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static bool safe_name(const char *s)
{
    if (!s || !*s || !strcmp(s, ".") || !strcmp(s, "..")) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static void free_exec(struct rexec *rx)
{
    for (int i = 0; i < rx->num_env; i++) em__free(rx->env[i]);
    em__free(rx->env);
    for (int i = 0; i < rx->num_args; i++) em__free(rx->args[i]);
    em__free(rx->args);
    em__free(rx->app_id);
    em__free(rx->hash);
    em__free(rx->driver_url);
    em__free(rx);
}

/* The last lines (at most max_lines, about 1.5 KiB) of file path, lines joined by " | ", into
 * out; "" when it is empty or unreadable. */
static void tail_of(const char *path, char *out, size_t cap, int max_lines)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[1536];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, start);
    close(fd);
    if (n <= 0) return;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = '\0';
    int lines = 0;
    ssize_t from = n;
    while (from > 0) {
        if (buf[from - 1] == '\n' && ++lines == max_lines) break;
        from--;
    }
    if (start > 0 && from == 0) { /* cut mid-line: skip to the first whole one */
        char *nl = strchr(buf, '\n');
        from = nl ? nl - buf + 1 : 0;
    }
    size_t o = 0;
    for (ssize_t i = from; i < n && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n') {
            if (o + 4 >= cap) break;
            memcpy(out + o, " | ", 3);
            o += 3;
        } else {
            out[o++] = (ch < 32 || ch == 127) ? ' ' : (char)ch;
        }
    }
    out[o] = '\0';
}

/* A driver's state for an executor state of the record (see executor_runner.h). */
static int driver_state_of(int state, int exit_code)
{
    switch (state) {
    case EM_EXEC_RUNNING:
        return EM_DRIVER_RUNNING;
    case EM_EXEC_KILLED:
        return EM_DRIVER_KILLED;
    case EM_EXEC_EXITED:
        return exit_code == 0 ? EM_DRIVER_FINISHED : EM_DRIVER_FAILED;
    default: /* FAILED: by a signal (exit_code < 0), or never started (0) */
        return exit_code < 0 ? EM_DRIVER_FAILED : EM_DRIVER_ERROR;
    }
}

static void report(em_executor_runner *r, struct rexec *rx, int state, int exit_code,
                   const char *message)
{
    if (rx->is_driver) {
        int ds = driver_state_of(state, exit_code);
        EM_LOG(ds == EM_DRIVER_RUNNING || ds == EM_DRIVER_FINISHED || ds == EM_DRIVER_KILLED
                   ? EM_LOG_INFO
                   : EM_LOG_WARN,
               "worker", "driver %s %s (exit code %d): %s", rx->app_id, em_driver_state_name(ds),
               exit_code, message);
        if (r->on_driver_state) r->on_driver_state(r->user, rx->app_id, ds, exit_code, message);
        return;
    }
    EM_LOG(state == EM_EXEC_RUNNING || state == EM_EXEC_KILLED ||
                   (state == EM_EXEC_EXITED && exit_code == 0)
               ? EM_LOG_INFO
               : EM_LOG_WARN,
           "worker", "executor %d of %s %s (exit code %d): %s", rx->exec_id, rx->app_id,
           em_exec_state_name(state), exit_code, message);
    if (r->on_state) r->on_state(r->user, rx->app_id, rx->exec_id, state, exit_code, message);
}

/* ---- ending and freeing ------------------------------------------------------------------- */
static void cleanup_app_dirs(em_executor_runner *r, const char *app_id)
{
    char app_dir[PATH_MAX];
    fmt_into(app_dir, sizeof app_dir, "%s/%s", r->work_dir, app_id);
    DIR *d = opendir(app_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char xdir[PATH_MAX];
        fmt_into(xdir, sizeof xdir, "%s/%s", app_dir, e->d_name);
        DIR *x = opendir(xdir);
        if (!x) continue;
        struct dirent *f;
        while ((f = readdir(x))) {
            if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, "..") ||
                !strcmp(f->d_name, "stdout") || !strcmp(f->d_name, "stderr"))
                continue;
            char p[PATH_MAX];
            fmt_into(p, sizeof p, "%s/%s", xdir, f->d_name);
            int rc = em__rmtree(p);
            if (rc) EM_LOG(EM_LOG_WARN, "worker", "cannot clean %s: %s", p, em_strerror(rc));
        }
        closedir(x);
    }
    closedir(d);
    EM_LOG(EM_LOG_INFO, "worker", "application %s finished: cleaned %s (stdout and stderr kept)",
           app_id, app_dir);
}

/* Cleans the directories of finished applications that have no executor left. */
static void cleanup_finished(em_executor_runner *r)
{
    for (struct finished_app **pp = &r->finished; *pp;) {
        struct finished_app *f = *pp;
        bool busy = false;
        for (struct rexec *rx = r->execs; rx && !busy; rx = rx->next)
            busy = !rx->is_driver && !strcmp(rx->app_id, f->app_id);
        if (busy) {
            pp = &f->next;
            continue;
        }
        cleanup_app_dirs(r, f->app_id);
        *pp = f->next;
        em__free(f->app_id);
        em__free(f);
    }
}

static void maybe_end_loop(em_executor_runner *r)
{
    if (r->stop_seen && !r->execs && !uv_is_closing((uv_handle_t *)&r->wake))
        uv_close((uv_handle_t *)&r->wake, NULL);
}

/* Unlinks rx, frees it, updates the count, and cleans up after it. */
static void release_exec(struct rexec *rx)
{
    em_executor_runner *r = rx->r;
    for (struct rexec **pp = &r->execs; *pp; pp = &(*pp)->next)
        if (*pp == rx) {
            *pp = rx->next;
            break;
        }
    free_exec(rx);
    pthread_mutex_lock(&r->mu);
    r->count--;
    pthread_mutex_unlock(&r->mu);
    cleanup_finished(r);
    maybe_end_loop(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct rexec *rx = h->data;
    if (--rx->open_handles == 0) release_exec(rx);
}

/* Reports the final state (once) and closes the handles. */
static void finish_exec(struct rexec *rx, int state, int exit_code, const char *message)
{
    if (rx->phase == RX_DONE) return;
    rx->phase = RX_DONE;
    report(rx->r, rx, state, exit_code, message);
    uv_timer_stop(&rx->kill_timer);
    uv_close((uv_handle_t *)&rx->kill_timer, on_handle_closed);
    if (rx->spawned) uv_close((uv_handle_t *)&rx->proc, on_handle_closed);
}

/* ---- preparing: directory and binary (thread pool) ---------------------------------------- */
static void prep_work(uv_work_t *w)
{
    struct rexec *rx = w->data;
    em_executor_runner *r = rx->r;
    int rc = em__mkdirs(rx->dir);
    if (rc) {
        rx->prep_rc = rc;
        fmt_into(rx->prep_msg, sizeof rx->prep_msg, "cannot create the %s directory: %s",
                 rx->is_driver ? "driver" : "executor", em_errmsg());
        return;
    }
    struct stat sb;
    if (stat(rx->binary, &sb) == 0) {
        rx->cache_hit = 1;
    } else {
        pthread_mutex_lock(&r->fetch_mu);
        if (stat(rx->binary, &sb) == 0) {
            rx->cache_hit = 1; /* another executor fetched it meanwhile */
        } else {
            char cache[PATH_MAX];
            fmt_into(cache, sizeof cache, "%s/binaries", r->work_dir);
            em_file_fetch_opts o = {.secret = r->secret,
                                    .max_frame = r->max_frame,
                                    .timeout_ms = r->fetch_timeout_ms,
                                    .app_id = rx->app_id};
            int64_t t0 = em__now_ms();
            rc = em__mkdirs(cache);
            if (!rc)
                rc = em_file_fetch(&o, rx->driver_url, rx->hash, rx->binary, &rx->fetched_bytes);
            rx->fetch_ms = em__now_ms() - t0;
            if (rc) {
                rx->prep_rc = rc;
                fmt_into(rx->prep_msg, sizeof rx->prep_msg, "cannot get the application binary: %s",
                         em_errmsg());
            }
        }
        pthread_mutex_unlock(&r->fetch_mu);
        if (rx->prep_rc) return;
    }
    /* execvp would hand a file without a known header to /bin/sh: refuse it here instead. */
    char head[4] = {0};
    int fd = open(rx->binary, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, head, sizeof head) : -1;
    int err = errno;
    if (fd >= 0) close(fd);
    if (fd < 0) {
        rx->prep_rc = -err;
        fmt_into(rx->prep_msg, sizeof rx->prep_msg, "cannot open the application binary %s: %s",
                 rx->binary, strerror(err));
    } else if (!(n == 4 && !memcmp(head,
                                   "\x7f"
                                   "ELF",
                                   4)) &&
               !(n >= 2 && !memcmp(head, "#!", 2))) {
        rx->prep_rc = -ENOEXEC;
        fmt_into(rx->prep_msg, sizeof rx->prep_msg,
                 "cannot start the application binary %s: %s (neither an ELF executable nor a "
                 "#! script)",
                 rx->binary, strerror(ENOEXEC));
    }
}

/* Sets NAME=value in env[0..*n): replaces an entry of the same NAME, else appends. */
static int env_set(char **env, int *n, const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t klen = eq ? (size_t)(eq - entry) : strlen(entry);
    char *copy = em__strdup(entry);
    if (!copy) return EM_ENOMEM;
    for (int i = 0; i < *n; i++)
        if (!strncmp(env[i], entry, klen) && env[i][klen] == '=') {
            em__free(env[i]);
            env[i] = copy;
            return 0;
        }
    env[(*n)++] = copy;
    return 0;
}

static int env_setf(char **env, int *n, const char *fmt, ...) EM_PRINTF(3, 4);
static int env_setf(char **env, int *n, const char *fmt, ...)
{
    char buf[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return env_set(env, n, buf);
}

/* The executor's or driver's environment (see executor_runner.h); NULL-terminated, free with
 * free_env. */
static char **build_env(em_executor_runner *r, struct rexec *rx)
{
    int cap = 16 + rx->num_env, n = 0, rc = 0;
    char **env = em__calloc((size_t)cap + 1, sizeof *env);
    if (!env) return NULL;
    static const char *const inherit[] = {"PATH", "HOME", "LANG"};
    for (size_t i = 0; i < EM_ARRAY_LEN(inherit) && !rc; i++) {
        const char *v = getenv(inherit[i]);
        if (v) rc = env_setf(env, &n, "%s=%s", inherit[i], v);
    }
    /* Executors and drivers die with this worker (launch.c). */
    if (!rc) rc = env_setf(env, &n, "%s=%ld", EM_WORKER_PID_ENV, (long)getpid());
    if (rx->is_driver) { /* the submitted entries, then what the worker knows: it wins */
        for (int i = 0; i < rx->num_env && !rc; i++) rc = env_set(env, &n, rx->env[i]);
        if (!rc) rc = env_setf(env, &n, "EMBER_DRIVER_ID=%s", rx->app_id);
        if (!rc) rc = env_setf(env, &n, "EMBER_DRIVER_HOST=%s", r->host);
        if (!rc) rc = env_setf(env, &n, "EMBER_WORKER_ID=%s", r->worker_id);
        if (!rc && r->secret) rc = env_setf(env, &n, "EMBER_AUTHENTICATE_SECRET=%s", r->secret);
        goto done;
    }
    if (!rc) rc = env_setf(env, &n, "EMBER_EXECUTOR_MODE=1");
    if (!rc) rc = env_setf(env, &n, "EMBER_DRIVER_URL=%s", rx->driver_url);
    if (!rc) rc = env_setf(env, &n, "EMBER_APP_ID=%s", rx->app_id);
    if (!rc) rc = env_setf(env, &n, "EMBER_EXECUTOR_ID=%d", rx->exec_id);
    if (!rc) rc = env_setf(env, &n, "EMBER_EXECUTOR_CORES=%d", rx->cores);
    if (!rc)
        rc = env_setf(env, &n, "EMBER_EXECUTOR_MEMORY_MB=%llu", (unsigned long long)rx->memory_mb);
    if (!rc) rc = env_setf(env, &n, "EMBER_WORKER_ID=%s", r->worker_id);
    if (!rc) rc = env_setf(env, &n, "EMBER_EXECUTOR_HOST=%s", r->host);
    if (!rc) rc = env_setf(env, &n, "EMBER_EXECUTOR_DIR=%s", rx->dir);
    if (!rc && r->secret) rc = env_setf(env, &n, "EMBER_AUTH_SECRET=%s", r->secret);
    if (!rc && r->shuffle_service) {
        /* The worker serves the executor's shuffle files, so they outlive the executor. */
        char blockmgr[PATH_MAX + 16];
        snprintf(blockmgr, sizeof blockmgr, "%s/blockmgr", rx->dir);
        rc = em_block_server_add_dir(r->shuffle_service, rx->app_id, rx->exec_id, blockmgr);
        if (!rc)
            rc = env_setf(env, &n, "EMBER_SHUFFLE_SERVICE_PORT=%d",
                          em_block_server_port(r->shuffle_service));
    }
    for (int i = 0; i < rx->num_env && !rc; i++) rc = env_set(env, &n, rx->env[i]);
done:
    if (rc) {
        for (int i = 0; i < n; i++) em__free(env[i]);
        em__free(env);
        return NULL;
    }
    return env;
}

static void free_env(char **env)
{
    for (int i = 0; env && env[i]; i++) em__free(env[i]);
    em__free(env);
}

/* ---- running ------------------------------------------------------------------------------ */
static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct rexec *rx = p->data;
    char err_path[PATH_MAX + 8], tail[1200], msg[1600];
    fmt_into(err_path, sizeof err_path, "%s/stderr", rx->dir);
    if (rx->kill_requested) {
        fmt_into(msg, sizeof msg, "killed by the worker (%s)",
                 sig ? strsignal(sig) : "exited after SIGTERM");
        finish_exec(rx, EM_EXEC_KILLED, sig ? -sig : (int)status, msg);
        return;
    }
    tail_of(err_path, tail, sizeof tail, 5);
    if (sig) {
        fmt_into(msg, sizeof msg, "killed by signal %d (%s)%s%s", sig, strsignal(sig),
                 *tail ? "; stderr: " : "; stderr is empty", tail);
        finish_exec(rx, EM_EXEC_FAILED, -sig, msg);
    } else if (status) {
        fmt_into(msg, sizeof msg, "exited with status %d%s%s", (int)status,
                 *tail ? "; stderr: " : "; stderr is empty", tail);
        finish_exec(rx, EM_EXEC_EXITED, (int)status, msg);
    } else {
        finish_exec(rx, EM_EXEC_EXITED, 0, "exited normally");
    }
}

/* "executor 3 of app-..." or "driver driver-..." into buf. */
static const char *label(const struct rexec *rx, char *buf, size_t cap)
{
    if (rx->is_driver)
        fmt_into(buf, cap, "driver %s", rx->app_id);
    else
        fmt_into(buf, cap, "executor %d of %s", rx->exec_id, rx->app_id);
    return buf;
}

static void on_kill_timer(uv_timer_t *t)
{
    struct rexec *rx = t->data;
    if (rx->phase != RX_RUNNING) return;
    char what[256];
    EM_LOG(EM_LOG_WARN, "worker", "%s still runs %lld ms after SIGTERM: SIGKILL",
           label(rx, what, sizeof what), (long long)rx->r->kill_grace_ms);
    uv_process_kill(&rx->proc, SIGKILL);
}

static void spawn(struct rexec *rx)
{
    em_executor_runner *r = rx->r;
    char out_path[PATH_MAX + 8], err_path[PATH_MAX + 8], msg[1400];
    fmt_into(out_path, sizeof out_path, "%s/stdout", rx->dir);
    fmt_into(err_path, sizeof err_path, "%s/stderr", rx->dir);
    /* A driver's relaunches on this worker append to its files: every run's output is kept. */
    int mode = O_WRONLY | O_CREAT | O_CLOEXEC | (rx->is_driver ? O_APPEND : O_TRUNC);
    int out = open(out_path, mode, 0644);
    int err = out >= 0 ? open(err_path, mode, 0644) : -1;
    char **env = err >= 0 ? build_env(r, rx) : NULL;
    if (out < 0 || err < 0 || !env) {
        fmt_into(msg, sizeof msg, "cannot start: %s",
                 !env && err >= 0 ? "out of memory" : strerror(errno));
        if (out >= 0) close(out);
        if (err >= 0) close(err);
        finish_exec(rx, EM_EXEC_FAILED, 0, msg);
        return;
    }
    char **args = em__calloc((size_t)rx->num_args + 2, sizeof *args);
    if (!args) {
        close(out);
        close(err);
        free_env(env);
        finish_exec(rx, EM_EXEC_FAILED, 0, "cannot start: out of memory");
        return;
    }
    args[0] = rx->binary;
    for (int i = 0; i < rx->num_args; i++) args[i + 1] = rx->args[i];
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = out},
        {.flags = UV_INHERIT_FD, .data.fd = err},
    };
    uv_process_options_t opt = {.exit_cb = on_exit_cb,
                                .file = rx->binary,
                                .args = args,
                                .env = env,
                                .cwd = rx->dir,
                                .stdio_count = 3,
                                .stdio = stdio};
    rx->proc.data = rx;
    int rc = uv_spawn(&r->loop, &rx->proc, &opt);
    rx->spawned = 1;
    rx->open_handles++;
    close(out);
    close(err);
    free_env(env);
    em__free(args);
    if (rc < 0) {
        fmt_into(msg, sizeof msg, "cannot start the application binary %s: %s", rx->binary,
                 uv_strerror(rc));
        finish_exec(rx, EM_EXEC_FAILED, 0, msg);
        return;
    }
    rx->phase = RX_RUNNING;
    fmt_into(msg, sizeof msg, "pid %d in %s", rx->proc.pid, rx->dir);
    report(r, rx, EM_EXEC_RUNNING, 0, msg);
}

static void prep_done(uv_work_t *w, int status)
{
    struct rexec *rx = w->data;
    em_executor_runner *r = rx->r;
    if (status == UV_ECANCELED || rx->kill_requested) {
        finish_exec(rx, EM_EXEC_KILLED, 0, "killed before it started");
        return;
    }
    if (rx->prep_rc) {
        finish_exec(rx, EM_EXEC_FAILED, 0, rx->prep_msg);
        return;
    }
    if (rx->cache_hit)
        EM_LOG(EM_LOG_INFO, "worker", "binary %s found in the cache (%s/binaries)", rx->hash,
               r->work_dir);
    else
        EM_LOG(EM_LOG_INFO, "worker", "fetched binary %s (%llu bytes) from %s in %lld ms", rx->hash,
               (unsigned long long)rx->fetched_bytes, rx->driver_url, (long long)rx->fetch_ms);
    spawn(rx);
}

/* ---- commands (loop thread) --------------------------------------------------------------- */
static void kill_exec(struct rexec *rx)
{
    if (rx->phase == RX_DONE || rx->kill_requested) return;
    rx->kill_requested = 1;
    if (rx->phase == RX_PREPARING) {
        uv_cancel((uv_req_t *)&rx->work); /* prep_done sees UV_ECANCELED or kill_requested */
        return;
    }
    char what[256];
    EM_LOG(EM_LOG_INFO, "worker", "killing %s (pid %d): SIGTERM", label(rx, what, sizeof what),
           rx->proc.pid);
    uv_process_kill(&rx->proc, SIGTERM);
    uv_timer_start(&rx->kill_timer, on_kill_timer, (uint64_t)rx->r->kill_grace_ms, 0);
}

static void handle_launch(em_executor_runner *r, struct rexec *rx)
{
    rx->phase = RX_PREPARING;
    uv_timer_init(&r->loop, &rx->kill_timer);
    rx->kill_timer.data = rx;
    rx->open_handles = 1;
    rx->next = r->execs;
    r->execs = rx;
    char msg[512] = "", what[256];
    label(rx, what, sizeof what);
    if (!safe_name(rx->app_id) || (rx->is_driver && !strcmp(rx->app_id, "binaries")))
        fmt_into(msg, sizeof msg, "refused: %s id '%s' is not a safe directory name",
                 rx->is_driver ? "driver" : "application", rx->app_id);
    else if (!em_file_hash_valid(rx->hash))
        fmt_into(msg, sizeof msg, "refused: binary hash '%s' is not a hex SHA-256", rx->hash);
    for (struct rexec *o = rx->next; o && !*msg; o = o->next)
        if (o->is_driver == rx->is_driver && o->exec_id == rx->exec_id &&
            !strcmp(o->app_id, rx->app_id))
            fmt_into(msg, sizeof msg, "refused: %s is already here", what);
    if (r->stop_seen) fmt_into(msg, sizeof msg, "refused: the worker is stopping");
    if (*msg) {
        finish_exec(rx, EM_EXEC_FAILED, 0, msg);
        return;
    }
    if (rx->is_driver)
        fmt_into(rx->dir, sizeof rx->dir, "%s/%s", r->work_dir, rx->app_id);
    else
        fmt_into(rx->dir, sizeof rx->dir, "%s/%s/%d", r->work_dir, rx->app_id, rx->exec_id);
    fmt_into(rx->binary, sizeof rx->binary, "%s/binaries/%s", r->work_dir, rx->hash);
    EM_LOG(EM_LOG_INFO, "worker", "launching %s: %d cores, %llu MiB, binary %s", what, rx->cores,
           (unsigned long long)rx->memory_mb, rx->hash);
    rx->work.data = rx;
    int rc = uv_queue_work(&r->loop, &rx->work, prep_work, prep_done);
    if (rc < 0) {
        fmt_into(msg, sizeof msg, "cannot queue the preparation: %s", uv_strerror(rc));
        finish_exec(rx, EM_EXEC_FAILED, 0, msg);
    }
}

static void on_wake(uv_async_t *a)
{
    em_executor_runner *r = a->data;
    pthread_mutex_lock(&r->mu);
    struct cmd *c = r->cmds;
    r->cmds = r->cmds_tail = NULL;
    pthread_mutex_unlock(&r->mu);
    while (c) {
        struct cmd *next = c->next;
        if (c->type == CMD_LAUNCH) {
            handle_launch(r, c->rx);
        } else if (c->type == CMD_KILL || c->type == CMD_KILL_DRIVER) {
            int driver = c->type == CMD_KILL_DRIVER;
            for (struct rexec *rx = r->execs; rx; rx = rx->next)
                if (rx->is_driver == driver && (driver || rx->exec_id == c->exec_id) &&
                    !strcmp(rx->app_id, c->app_id))
                    kill_exec(rx);
        } else if (c->type == CMD_APP_FINISHED) {
            bool known = false;
            for (struct finished_app *f = r->finished; f && !known; f = f->next)
                known = !strcmp(f->app_id, c->app_id);
            struct finished_app *f = known ? NULL : em__calloc(1, sizeof *f);
            if (f) {
                f->app_id = c->app_id;
                c->app_id = NULL;
                f->next = r->finished;
                r->finished = f;
            }
            const char *app = f ? f->app_id : c->app_id;
            for (struct rexec *rx = r->execs; rx; rx = rx->next)
                if (app && !rx->is_driver && !strcmp(rx->app_id, app)) kill_exec(rx);
            cleanup_finished(r);
        } else {
            r->stop_seen = 1;
            for (struct rexec *rx = r->execs; rx; rx = rx->next) kill_exec(rx);
            maybe_end_loop(r);
        }
        em__free(c->app_id);
        em__free(c);
        c = next;
    }
}

static int post(em_executor_runner *r, int type, struct rexec *rx, const char *app_id, int exec_id)
{
    struct cmd *c = em__calloc(1, sizeof *c);
    if (!c || (app_id && !(c->app_id = em__strdup(app_id)))) {
        em__free(c);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    c->type = type;
    c->rx = rx;
    c->exec_id = exec_id;
    pthread_mutex_lock(&r->mu);
    if (r->stopping && type != CMD_STOP) {
        pthread_mutex_unlock(&r->mu);
        em__free(c->app_id);
        em__free(c);
        return em__set_error(EM_ESTATE, "the executor runner is stopping");
    }
    if (type == CMD_STOP) r->stopping = 1;
    if (type == CMD_LAUNCH) r->count++;
    if (r->cmds_tail)
        r->cmds_tail->next = c;
    else
        r->cmds = c;
    r->cmds_tail = c;
    uv_async_send(&r->wake);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* ---- public API --------------------------------------------------------------------------- */
#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer builds only. libuv (not instrumented) closes descriptors with
 * syscall(SYS_close), which ThreadSanitizer does not see; when another thread then gets the
 * same descriptor number (this runner opens files and directories on its own thread, the
 * local-cluster code removes directories, while the endpoints' loops accept, read and close
 * sockets), the reuse looks like a race with libuv's last call on the old descriptor. The
 * suppressions match only reports where one access is such a libc descriptor call itself (its
 * top frame is the interceptor), never a race between two of Ember's own functions. Linked
 * wherever a worker or a local cluster is. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race_top:interceptor_epoll_wait$\n"
           "race_top:interceptor_epoll_pwait$\n"
           "race_top:interceptor_epoll_ctl$\n"
           "race_top:interceptor_accept4$\n"
           "race_top:interceptor_accept$\n"
           "race_top:interceptor_socket$\n"
           "race_top:interceptor_connect$\n"
           "race_top:interceptor_read$\n"
           "race_top:interceptor_readv$\n"
           "race_top:interceptor_write$\n"
           "race_top:interceptor_writev$\n"
           "race_top:interceptor_setsockopt$\n"
           "race_top:interceptor_getsockopt$\n"
           "race_top:interceptor_getsockname$\n"
           "race_top:interceptor_getpeername$\n"
           "race_top:interceptor_shutdown$\n"
           "race_top:interceptor_ioctl$\n"
           "race_top:interceptor_eventfd$\n"
           "race_top:interceptor_pipe2$\n"
           "race_top:interceptor_socketpair$\n";
}
#endif

static void *loop_main(void *arg)
{
    em_executor_runner *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

int em_executor_runner_new(const em_executor_runner_config *cfg, em_executor_runner **out)
{
    *out = NULL;
    em_executor_runner *r = em__calloc(1, sizeof *r);
    if (!r) return em__set_error(EM_ENOMEM, "out of memory");
    r->work_dir = em__strdup(cfg->work_dir);
    r->worker_id = em__strdup(cfg->worker_id ? cfg->worker_id : "");
    r->host = em__strdup(cfg->host ? cfg->host : "");
    r->shuffle_service = cfg->shuffle_service;
    r->secret = cfg->secret && *cfg->secret ? em__strdup(cfg->secret) : NULL;
    r->max_frame = cfg->max_frame;
    r->fetch_timeout_ms = cfg->fetch_timeout_ms > 0 ? cfg->fetch_timeout_ms : 120000;
    r->kill_grace_ms = cfg->kill_grace_ms > 0 ? cfg->kill_grace_ms : EM_EXECUTOR_KILL_GRACE_MS;
    r->on_state = cfg->on_state;
    r->on_driver_state = cfg->on_driver_state;
    r->user = cfg->user;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->fetch_mu, NULL);
    if (!r->work_dir || !r->worker_id || !r->host || (cfg->secret && *cfg->secret && !r->secret)) {
        em_executor_runner_free(r);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    int rc = uv_loop_init(&r->loop);
    if (rc < 0) {
        em_executor_runner_free(r);
        return em__set_error(rc, "cannot create an event loop: %s", uv_strerror(rc));
    }
    uv_async_init(&r->loop, &r->wake, on_wake);
    r->wake.data = r;
    rc = pthread_create(&r->thread, NULL, loop_main, r);
    if (rc) {
        uv_close((uv_handle_t *)&r->wake, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        em_executor_runner_free(r);
        return em__set_error(-rc, "cannot start the executor runner thread: %s", strerror(rc));
    }
    r->thread_started = 1;
    *out = r;
    return 0;
}

int em_executor_runner_launch(em_executor_runner *r, const em_msg_launch_executor *m)
{
    struct rexec *rx = em__calloc(1, sizeof *rx);
    if (!rx) return em__set_error(EM_ENOMEM, "out of memory");
    rx->r = r;
    rx->app_id = em__strndup(m->app_id.p, m->app_id.len);
    rx->hash = em__strndup(m->binary_hash.p, m->binary_hash.len);
    rx->driver_url = em__strndup(m->driver_url.p, m->driver_url.len);
    rx->exec_id = (int)EM_MIN(m->exec_id, (uint32_t)INT_MAX);
    rx->cores = (int)EM_MIN(m->cores, (uint32_t)INT_MAX);
    rx->memory_mb = m->memory_mb;
    rx->env = em__calloc(m->env.count + 1, sizeof *rx->env);
    bool ok = rx->app_id && rx->hash && rx->driver_url && rx->env;
    size_t pos = 0;
    em_str s;
    while (ok && em_strlist_next(&m->env, &pos, &s)) {
        rx->env[rx->num_env] = em__strndup(s.p, s.len);
        ok = rx->env[rx->num_env++] != NULL;
    }
    int rc = ok ? post(r, CMD_LAUNCH, rx, NULL, 0) : em__set_error(EM_ENOMEM, "out of memory");
    if (rc) free_exec(rx);
    return rc;
}

void em_executor_runner_kill(em_executor_runner *r, const char *app_id, int exec_id)
{
    post(r, CMD_KILL, NULL, app_id, exec_id);
}

int em_executor_runner_launch_driver(em_executor_runner *r, const em_msg_launch_driver *m,
                                     const char *file_url)
{
    struct rexec *rx = em__calloc(1, sizeof *rx);
    if (!rx) return em__set_error(EM_ENOMEM, "out of memory");
    rx->r = r;
    rx->is_driver = 1;
    rx->exec_id = -1;
    rx->app_id = em__strndup(m->driver_id.p, m->driver_id.len);
    rx->hash = em__strndup(m->binary_hash.p, m->binary_hash.len);
    rx->driver_url = m->file_url.len ? em__strndup(m->file_url.p, m->file_url.len)
                                     : em__strdup(file_url ? file_url : "");
    rx->cores = (int)EM_MIN(m->cores, (uint32_t)INT_MAX);
    rx->memory_mb = m->memory_mb;
    rx->env = em__calloc(m->env.count + 1, sizeof *rx->env);
    rx->args = em__calloc(m->args.count + 1, sizeof *rx->args);
    bool ok = rx->app_id && rx->hash && rx->driver_url && rx->env && rx->args;
    size_t pos = 0;
    em_str s;
    while (ok && em_strlist_next(&m->env, &pos, &s)) {
        rx->env[rx->num_env] = em__strndup(s.p, s.len);
        ok = rx->env[rx->num_env++] != NULL;
    }
    pos = 0;
    while (ok && em_strlist_next(&m->args, &pos, &s)) {
        rx->args[rx->num_args] = em__strndup(s.p, s.len);
        ok = rx->args[rx->num_args++] != NULL;
    }
    int rc = ok ? post(r, CMD_LAUNCH, rx, NULL, 0) : em__set_error(EM_ENOMEM, "out of memory");
    if (rc) free_exec(rx);
    return rc;
}

void em_executor_runner_kill_driver(em_executor_runner *r, const char *driver_id)
{
    post(r, CMD_KILL_DRIVER, NULL, driver_id, -1);
}

void em_executor_runner_app_finished(em_executor_runner *r, const char *app_id)
{
    if (r->shuffle_service) em_block_server_remove_app(r->shuffle_service, app_id);
    post(r, CMD_APP_FINISHED, NULL, app_id, 0);
}

int em_executor_runner_count(em_executor_runner *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void em_executor_runner_free(em_executor_runner *r)
{
    if (!r) return;
    if (r->thread_started) {
        while (post(r, CMD_STOP, NULL, NULL, 0) == EM_ENOMEM) usleep(1000);
        pthread_join(r->thread, NULL);
        uv_loop_close(&r->loop);
    }
    while (r->cmds) { /* commands that raced with the stop */
        struct cmd *c = r->cmds;
        r->cmds = c->next;
        if (c->rx) free_exec(c->rx);
        em__free(c->app_id);
        em__free(c);
    }
    while (r->finished) {
        struct finished_app *f = r->finished;
        r->finished = f->next;
        em__free(f->app_id);
        em__free(f);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->fetch_mu);
    em__free(r->work_dir);
    em__free(r->worker_id);
    em__free(r->host);
    em__free(r->secret);
    em__free(r);
}
