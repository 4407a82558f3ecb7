/* local-cluster[W,C,M]: a real standalone master and W real worker processes (C cores and
 * M MiB each) on 127.0.0.1, started by the driver and stopped with it: the cluster path of
 * Ember without any set-up (DESIGN.md §5), and the tests' workhorse.
 *
 * The processes are the driver's own binary (/proc/self/exe) in daemon mode (launch.h), on
 * ephemeral ports, with the driver's options, logging to files in a temporary directory
 * (<ember.local.dir>/ember-local-cluster-XXXXXX: master.log, worker-<i>.log, worker-<i>/ as the
 * work directory) that em__local_cluster_stop removes. They get SIGTERM when the driver's
 * thread that started them dies (PR_SET_PDEATHSIG), so they never outlive a crashed driver:
 * start the cluster from a thread that lives as long as the application (the context's).
 * Thread rule: start and stop from one thread, once each.
 */
#ifndef EMBER_DEPLOY_LOCAL_CLUSTER_H
#define EMBER_DEPLOY_LOCAL_CLUSTER_H

#include <ember/conf.h>

/* Time allowed for the master to listen and every worker to register. */
#define EM_LOCAL_CLUSTER_START_TIMEOUT_MS 30000

typedef struct em_local_cluster em_local_cluster;

/* Starts the master, then the workers, and returns once every worker has registered with the
 * master. 0, EM_EINVAL (W, C or M < 1), or an error whose message names the process that
 * failed and quotes the end of its log (EM_ESTATE for a daemon that died or timed out). */
int em__local_cluster_start(const em_conf *conf, int workers, int cores, int memory_mb,
                            em_local_cluster **out);
/* "ember://127.0.0.1:PORT". Valid until stop. */
const char *em__local_cluster_master_url(const em_local_cluster *lc);
/* The temporary directory holding the logs and the workers' directories. Valid until stop. */
const char *em__local_cluster_dir(const em_local_cluster *lc);
/* SIGTERM to the workers (they kill their executors) and the master, waits (SIGKILL after
 * EM_EXECUTOR_KILL_GRACE_MS + 3 s), removes the temporary directory, frees. NULL is a no-op. */
void em__local_cluster_stop(em_local_cluster *lc);

#endif
