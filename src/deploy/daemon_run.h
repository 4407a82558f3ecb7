/* Running a master or a worker in the foreground until a stop signal: shared by the `ember
 * master` / `ember worker` commands (src/cli) and by local-cluster daemons (launch.c), so both
 * behave the same. The caller blocks the stop signals in every thread before any thread exists
 * (the loops wait for them with sigwait / sigtimedwait) and says how readiness is reported.
 * Thread rule: the process's main thread, once.
 */
#ifndef EMBER_DEPLOY_DAEMON_RUN_H
#define EMBER_DEPLOY_DAEMON_RUN_H

#include "deploy/worker.h"

#include <ember/conf.h>
#include <signal.h>

/* Readiness, called once: ok = 1 with port (the master's bound port; 0 for a worker) and a
 * line saying what started, or ok = 0 with the error message. */
typedef void (*em__ready_fn)(void *arg, int ok, int port, const char *msg);

/* Starts a master on host:port, reports readiness, waits for a signal of stop, stops. Prints
 * "master listening on HOST:PORT" / "master stopping (SIGTERM)" to stderr. Returns the exit
 * status: 0 after a clean stop, 1 when it could not start (message printed, prefixed by cmd). */
int em__run_master(const em_conf *conf, const char *cmd, const char *host, int port,
                   const sigset_t *stop, em__ready_fn ready, void *arg);

/* Starts a worker, reports readiness (at start, or once registered with the master when
 * ready_when_registered), waits for a signal of stop or a refusal by the master, stops (which
 * kills its executors). Returns 0 after a clean stop, 1 when it could not start or the master
 * refused it. */
int em__run_worker(const em_conf *conf, const char *cmd, const em_worker_opts *o,
                   const sigset_t *stop, int ready_when_registered, em__ready_fn ready, void *arg);

#endif
