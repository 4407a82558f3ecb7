/* Running `ember master` / `ember worker` as a daemon (--daemon): double fork + setsid, stdin
 * from /dev/null, stdout/stderr appended to a log file, a pid file, and a readiness pipe so the
 * launching process exits only once the daemon has started (status 0) or failed (status 1,
 * with the daemon's message on its stderr).
 * Thread rule: em__daemonize before any thread exists; the rest from the daemon's main thread.
 */
#ifndef EMBER_CLI_DAEMON_H
#define EMBER_CLI_DAEMON_H

#include <signal.h>

typedef struct em__daemon {
    char *log_path, *pid_path;
    int ready_fd; /* write end of the readiness pipe; -1 once reported */
} em__daemon;

/* Options shared by both commands: recognises "--daemon", "--log-dir D", "--pid-dir D" and
 * "--instance N" at argv[*i] (advancing *i past a value). Returns 1 when consumed, 0 when
 * argv[*i] is not one of them, -1 on a missing or bad value (message printed, prefixed by
 * cmd). */
typedef struct em__daemon_opts {
    int daemon;
    const char *log_dir; /* NULL: $EMBER_LOG_DIR, else ./logs */
    const char *pid_dir; /* NULL: $EMBER_PID_DIR, else /tmp */
    int instance;        /* 0: none in the file names (the master); workers default to 1 */
} em__daemon_opts;
int em__daemon_opt(em__daemon_opts *o, const char *cmd, int argc, char **argv, int *i);

/* Becomes a daemon of role ("master" / "worker"): files ember-<user>-<role>[-<instance>]-<host>
 * .log/.pid. Refuses (message on stderr, exit 1 from the launching process) when the pid file
 * names a live ember process; removes a stale one. In the launching process this never returns:
 * it waits for the daemon's report and exits. In the daemon it returns 0 with *d filled (the
 * pid file written, stdio redirected). */
int em__daemonize(const em__daemon_opts *o, const char *cmd, const char *role, em__daemon *d);

/* The common start of a cluster daemon command (master, worker): logs at INFO unless
 * EMBER_LOG_LEVEL says otherwise, becomes a daemon when o->daemon (em__daemonize), then blocks
 * SIGINT and SIGTERM in every thread to come (the caller waits for them with sigwait on
 * *stop_signals) and ignores SIGPIPE. Must run before any thread exists. */
void em__daemon_begin(const em__daemon_opts *o, const char *cmd, const char *role, em__daemon *d,
                      sigset_t *stop_signals);

/* The daemon reports readiness (ok = 1, msg may be NULL) or failure (ok = 0, msg printed by the
 * launcher). Once only; later calls do nothing. */
void em__daemon_ready(em__daemon *d, int ok, const char *msg);

/* Removes the pid file if it still names this process, and frees d. */
void em__daemon_finish(em__daemon *d);

#endif
