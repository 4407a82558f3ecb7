/* The application's own binary as a cluster daemon: local-cluster[W,C,M] (local_cluster.c)
 * starts its master and workers by executing /proc/self/exe with EMBER_DAEMON_ROLE set; a
 * constructor in launch.c sees it before main() runs, runs the daemon in the foreground
 * (daemon_run.c) and _exits, so the user's main never runs in a daemon.
 *
 * Environment of a daemon process (set by local_cluster.c):
 *   EMBER_DAEMON_ROLE=master|worker   the marker
 *   EMBER_DAEMON_READY_FD=3           readiness: "R<port>" (master: once listening; worker:
 *                                     once registered) or "E<message>", then closed
 *   EMBER_DAEMON_CONF=PATH            a properties file with the driver's options (0600)
 *   EMBER_DAEMON_HOST=127.0.0.1       the master's listen address / the worker's host
 *   worker only: EMBER_DAEMON_MASTER=ember://HOST:PORT, EMBER_DAEMON_CORES=C,
 *                EMBER_DAEMON_MEMORY_MB=M, EMBER_DAEMON_WORK_DIR=DIR
 * Thread rule: em__launch_child only in a child just forked (async-signal-safe calls only).
 */
#ifndef EMBER_DEPLOY_LAUNCH_H
#define EMBER_DEPLOY_LAUNCH_H

#include <sys/types.h>

#define EM_DAEMON_ROLE_ENV "EMBER_DAEMON_ROLE"
#define EM_DAEMON_READY_FD 3

/* In a freshly forked child: makes ready_fd descriptor 3, log_fd stdout and stderr, null_fd
 * stdin (all >= 10 and close-on-exec in the parent), closes every other descriptor, asks for
 * SIGTERM when the parent thread dies (prctl PR_SET_PDEATHSIG; exits at once if the parent
 * parent_pid is already gone), and executes /proc/self/exe with argv and envp. Never returns
 * (_exit(127) when the exec fails). */
void em__launch_child(pid_t parent_pid, int ready_fd, int log_fd, int null_fd, char *const argv[],
                      char *const envp[]) __attribute__((noreturn));

/* Set by a worker in the environment of the executors and drivers it starts: its pid. They
 * die with it (launch.c). */
#define EM_WORKER_PID_ENV "EMBER_WORKER_PID"

#endif
