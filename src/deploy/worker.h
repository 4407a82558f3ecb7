/* The worker daemon of the standalone cluster manager (`ember worker`): connects to the
 * master (the masters of the URL in turn), registers, heartbeats, reconnects with exponential
 * backoff when the connection drops (re-registering with the same id and reporting what it
 * runs, so a recovering master takes it back), and runs the executors and the cluster-mode
 * drivers the master places on it (executor_runner.h: binary cache, processes, states reported
 * back to the master); they keep running while no master is reachable.
 * Thread rule: em_worker_* from the owner's thread (never from a callback).
 */
#ifndef EMBER_DEPLOY_WORKER_H
#define EMBER_DEPLOY_WORKER_H

#include "base/base.h"

#include <ember/conf.h>
#include <stdint.h>

typedef struct em_worker em_worker;

typedef struct em_worker_opts {
    const char *master_url; /* "ember://HOST:PORT[,HOST2:PORT2]..." */
    int cores;              /* offered to applications */
    uint64_t memory_mb;
    const char *host;     /* address registered with the master and handed to executors as
                             EMBER_EXECUTOR_HOST (they bind there); NULL = gethostname() */
    const char *work_dir; /* NULL = ember.worker.dir, else ./work; created, made absolute */
} em_worker_opts;

/* Starts a worker with ember.worker.heartbeatInterval (0 = ember.worker.timeout / 4),
 * ember.authenticate.secret, ember.rpc.message.maxSize, ember.network.timeout (binary
 * fetches) and ember.worker.dir from conf (read here only). Connection attempts run in the
 * background. 0, EM_EINVAL (the URL does not parse; the message names it), -errno (the work
 * directory cannot be created; the message names it), or another error. */
int em_worker_start(const em_conf *conf, const em_worker_opts *o, em_worker **out);
/* The worker's id (stable for the life of the process). */
const char *em_worker_id(const em_worker *w);
/* The absolute work directory. */
const char *em_worker_work_dir(const em_worker *w);
/* 1 while registered with the master, 0 otherwise. */
int em_worker_registered(em_worker *w);
/* 0 while running; EM_EMASTER once the master refused the registration (fatal). */
int em_worker_failed(em_worker *w);
/* Executors being prepared, running or being killed. */
int em_worker_executor_count(em_worker *w);
/* Kills its executors (reported KILLED to the master while the connection is up), stops and
 * frees. NULL is a no-op. */
void em_worker_stop(em_worker *w);

#endif
