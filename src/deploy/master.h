/* The standalone cluster manager's master daemon (`ember master`): workers register, heartbeat
 * and are declared DEAD when silent past ember.worker.timeout; applications register from
 * their drivers (src/deploy/app_client.h) and get executors placed on the workers.
 *
 * Two layers:
 *   - em__mstate (master_state.h): workers, applications and executors as pure tables with the
 *     clock passed in and the messages to send returned as actions, so tests drive them with a
 *     fake clock;
 *   - em_master: the daemon: an em_endpoint listening for workers and drivers, the tables
 *     behind a mutex, and one timer thread running the liveness check.
 * Thread rule: em_master_* any thread except where noted.
 */
#ifndef EMBER_DEPLOY_MASTER_H
#define EMBER_DEPLOY_MASTER_H

#include "base/base.h"
#include "deploy/master_state.h"

#include <ember/conf.h>
#include <stdint.h>

/* Parses a master URL "ember://HOST:PORT" (HOST may be "[v6addr]"). *host gets a copy (free
 * with em__free). 0 or EM_EINVAL with a message naming the URL. */
int em_master_url_parse(const char *url, char **host, int *port);

/* ---- the daemon ------------------------------------------------------------------------------ */
typedef struct em_master em_master;

/* Creates a master listening on host:port (port 0 = ephemeral) with the options of conf
 * (ember.worker.timeout, ember.deploy.spreadOut, ember.authenticate.secret,
 * ember.rpc.message.maxSize; ember.local.dir for the store of drivers' binaries and
 * ember.network.timeout for fetching them), and starts its loop, timer and intake threads.
 * conf is read here only.
 * 0 or an error with a message naming the address. */
int em_master_start(const em_conf *conf, const char *host, int port, em_master **out);
/* The port actually bound. */
int em_master_port(const em_master *m);
/* Workers in state (EM_WORKER_ALIVE / EM_WORKER_DEAD), or all for state 0. */
int em_master_worker_count(em_master *m, int state);
/* A snapshot of one worker: 0 with *out filled (id, host and lost set to NULL: not copied),
 * or EM_ENOENT. */
int em_master_worker_info(em_master *m, const char *id, em_mworker *out);
/* Applications in state (EM_APP_*), or all (live and retained ended ones) for state 0. */
int em_master_app_count(em_master *m, int state);
/* Cluster-mode drivers in state (EM_DRIVER_*), or all (live and retained ended) for state 0. */
int em_master_driver_count(em_master *m, int state);
/* Stops the threads (waiting for a binary fetch under way, at most ember.network.timeout),
 * removes the store of drivers' binaries and frees everything. NULL is a no-op. Not from a
 * callback. */
void em_master_stop(em_master *m);

#endif
