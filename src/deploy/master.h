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
 * With ember.deploy.recoveryMode=FILESYSTEM the daemon journals workers, applications and
 * drivers (master_journal.h) and a master restarted on the journal recovers them (states drawn
 * in master.c).
 * Thread rule: em_master_* any thread except where noted.
 */
#ifndef EMBER_DEPLOY_MASTER_H
#define EMBER_DEPLOY_MASTER_H

#include "base/base.h"
#include "deploy/master_state.h"

#include <ember/conf.h>
#include <stdint.h>

/* One master of a master URL. */
typedef struct em_master_addr {
    char *host; /* without brackets for an IPv6 address */
    int port;
} em_master_addr;

/* Parses a master URL "ember://HOST:PORT[,HOST2:PORT2]..." (as Spark's spark://a:7077,b:7077;
 * a HOST may be "[v6addr]"; a later entry may repeat "ember://"). The one place master URLs are
 * checked: every client (worker, app client, submit client) takes its list of masters from
 * here and tries them in turn. 0 with *addrs holding *n >= 1 entries in URL order (free with
 * em_master_addrs_free), or EM_EINVAL with a message naming the URL and the bad entry,
 * EM_ENOMEM. */
int em_master_urls_parse(const char *url, em_master_addr **addrs, int *n);
void em_master_addrs_free(em_master_addr *addrs, int n);
/* Checks a master URL as em_master_urls_parse and gives its first master: *host gets a copy
 * (free with em__free). 0 or EM_EINVAL with a message naming the URL. */
int em_master_url_parse(const char *url, char **host, int *port);

/* ---- the daemon ------------------------------------------------------------------------------ */
typedef struct em_master em_master;

/* Creates a master listening on host:port (port 0 = ephemeral) with the options of conf
 * (ember.worker.timeout, ember.deploy.spreadOut, ember.authenticate.secret,
 * ember.rpc.message.maxSize; ember.local.dir for the store of drivers' binaries and
 * ember.network.timeout for fetching them; ember.deploy.recoveryMode and
 * ember.deploy.recoveryDirectory: with FILESYSTEM the master journals its tables and binaries
 * there and, when the journal holds records, starts RECOVERING them), and starts its loop,
 * timer and intake threads. conf is read here only.
 * 0 or an error with a message naming the address (or the recovery directory). */
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
/* EM_MASTER_ALIVE or EM_MASTER_RECOVERING. */
int em_master_state(em_master *m);
/* The master's state as one JSON object (what `ember master --status` prints): url, status
 * (ALIVE / RECOVERING), recoverymode, totals, workers, activeapps (with their executors),
 * completedapps, activedrivers, completeddrivers. 0 with *json (em__free it), or EM_ENOMEM. */
int em_master_status_json(em_master *m, char **json);
/* Stops the threads (waiting for a binary fetch under way, at most ember.network.timeout),
 * removes the store of drivers' binaries and frees everything. NULL is a no-op. Not from a
 * callback. */
void em_master_stop(em_master *m);

#endif
