/* The worker's executor processes, and its cluster-mode driver processes (ember submit
 * --deploy-mode cluster): get the application binary (per-worker cache by content hash,
 * fetched from the driver, or for a driver from the master, when absent), start it (an
 * executor in executor mode) in its own directory, watch it, kill it on request, and report
 * every state change.
 *
 * Layout under the work directory (absolute):
 *   binaries/<hash>                 the cache: verified binaries, 0755, named by hex SHA-256
 *   <app-id>/<exec-id>/             the executor's working directory (EMBER_EXECUTOR_DIR)
 *   <app-id>/<exec-id>/stdout, stderr   its output
 *   <driver-id>/                    a driver's working directory (its cwd), kept
 *   <driver-id>/stdout, stderr      its output; a relaunch on the same worker appends
 * When an application finishes and its executors are gone, everything in its executor
 * directories but stdout and stderr is removed (shuffle files, scratch); the logs stay.
 *
 * Executor environment (the contract the executor runtime reads; docs/architecture.md):
 *   PATH, HOME, LANG              copied from the worker when set (nothing else of its own)
 *   EMBER_EXECUTOR_MODE=1         libember takes over before main() (executor mode)
 *   EMBER_DRIVER_URL=host:port    the driver's endpoint
 *   EMBER_APP_ID, EMBER_EXECUTOR_ID, EMBER_EXECUTOR_CORES, EMBER_EXECUTOR_MEMORY_MB,
 *   EMBER_WORKER_ID, EMBER_EXECUTOR_HOST (the worker's registered host: bind there),
 *   EMBER_EXECUTOR_DIR (the working directory), EMBER_AUTH_SECRET (when the worker has
 *   ember.authenticate.secret)
 *   then the application's "NAME=value" entries (LAUNCH_EXECUTOR.env), in order; an entry
 *   whose NAME is already set REPLACES it (the later wins), so an application may override
 *   any of the above.
 *
 * States reported (enum em_exec_state, master_state.h), once each, in order:
 *   RUNNING after the spawn; then exactly one of
 *   EXITED  exit_code = status (the message has the last lines of stderr when non-zero),
 *   FAILED  exit_code = -signal for a death by a signal the worker did not send (stderr tail),
 *           or 0 when it never started (fetch or spawn failure; the message says why, with the
 *           errno text), and no RUNNING before it,
 *   KILLED  the worker killed it (kill, application finished, runner freed).
 * Kill: SIGTERM, then SIGKILL after kill_grace_ms.
 *
 * Driver environment (built fresh, like an executor's):
 *   PATH, HOME, LANG              copied from the worker when set
 *   the submitted "NAME=value" entries (LAUNCH_DRIVER.env: ember submit's EMBER_* options,
 *   EMBER_MASTER among them), in order; then, replacing any submitted entry of the same NAME:
 *   EMBER_DRIVER_ID, EMBER_DRIVER_HOST (the worker's registered host: executors reach the driver
 *   there), EMBER_WORKER_ID, EMBER_AUTHENTICATE_SECRET (the worker's ember.authenticate.secret,
 *   when set: the driver authenticates to the master and its executors with it).
 * argv: the cached binary's path, then LAUNCH_DRIVER.args.
 * Driver states reported (enum em_driver_state) through on_driver_state, once each, in order:
 *   RUNNING after the spawn; then exactly one of FINISHED (exit 0), FAILED (exit_code = status
 *   != 0, or -signal for a death the worker did not cause; the message has the stderr tail),
 *   ERROR (never started: fetch or spawn failure; exit_code 0), KILLED (the worker killed it:
 *   kill_driver, runner freed).
 *
 * Thread rule: every em_executor_runner_* function is any thread (commands go to the runner's
 * loop thread), except _free (the owner's thread, never the on_state callback). on_state runs
 * on the runner's loop thread and must not block.
 */
#ifndef EMBER_DEPLOY_EXECUTOR_RUNNER_H
#define EMBER_DEPLOY_EXECUTOR_RUNNER_H

#include "base/base.h"
#include "net/proto.h"

#include <stdint.h>

#define EM_EXECUTOR_KILL_GRACE_MS 5000 /* SIGTERM -> SIGKILL (Spark waits 10 s) */

typedef struct em_executor_runner em_executor_runner;

typedef void (*em_exec_state_fn)(void *user, const char *app_id, int exec_id, int state,
                                 int exit_code, const char *message);
typedef void (*em_driver_state_fn)(void *user, const char *driver_id, int state, int exit_code,
                                   const char *message);

typedef struct em_executor_runner_config {
    const char *work_dir;  /* absolute, existing */
    const char *worker_id; /* EMBER_WORKER_ID */
    const char *host;      /* EMBER_EXECUTOR_HOST */
    const char *secret;    /* ember.authenticate.secret: fetches, EMBER_AUTH_SECRET; NULL/"" none */
    size_t max_frame;      /* ember.rpc.message.maxSize for fetches; 0 = default */
    int64_t fetch_timeout_ms; /* ember.network.timeout */
    int64_t kill_grace_ms;    /* 0 = EM_EXECUTOR_KILL_GRACE_MS */
    em_exec_state_fn on_state;
    em_driver_state_fn on_driver_state; /* may be NULL */
    void *user;
    /* The worker's shuffle service (may be NULL): each executor's <dir>/blockmgr is served by
     * it (added at launch, removed when the application finishes) and the executor gets
     * EMBER_SHUFFLE_SERVICE_PORT, the port it announces for its map outputs. */
    struct em_block_server *shuffle_service;
} em_executor_runner_config;

/* Starts the runner's loop thread. Strings are copied. 0 or an error. */
int em_executor_runner_new(const em_executor_runner_config *cfg, em_executor_runner **out);
/* Starts executor m->exec_id of m->app_id (everything copied). A duplicate (same app and id,
 * still known) or an invalid request (app id with '/' or "..", hash not hex SHA-256) is
 * reported FAILED. 0, or EM_ENOMEM / EM_ESTATE (runner stopping): nothing reported then. */
int em_executor_runner_launch(em_executor_runner *r, const em_msg_launch_executor *m);
/* Kills one executor (unknown: ignored). */
void em_executor_runner_kill(em_executor_runner *r, const char *app_id, int exec_id);
/* Starts cluster-mode driver m->driver_id (everything copied), its binary fetched from
 * m->file_url, or from file_url ("host:port", the master) when that is empty. A duplicate or an
 * invalid request (id not a safe name, hash not hex SHA-256) is reported ERROR. 0, or
 * EM_ENOMEM / EM_ESTATE (runner stopping): nothing reported then. */
int em_executor_runner_launch_driver(em_executor_runner *r, const em_msg_launch_driver *m,
                                     const char *file_url);
/* Kills a driver (unknown: ignored); it is reported KILLED. */
void em_executor_runner_kill_driver(em_executor_runner *r, const char *driver_id);
/* Kills every executor of app_id and cleans its directories once they are gone. */
void em_executor_runner_app_finished(em_executor_runner *r, const char *app_id);
/* Executors and drivers known (being prepared, running or being killed). */
int em_executor_runner_count(em_executor_runner *r);
/* Kills every executor and driver (reported KILLED), waits for them (at most the grace period, then
 * SIGKILL), stops the thread and frees. NULL is a no-op. */
void em_executor_runner_free(em_executor_runner *r);

#endif
