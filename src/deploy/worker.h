/* The worker daemon of the standalone cluster manager (`ember worker`): connects to the
 * master, registers, heartbeats, and reconnects with exponential backoff when the connection
 * drops (re-registering with the same id). First slice of issue 3: no executors yet.
 * Thread rule: em_worker_* from the owner's thread (never from a callback).
 */
#ifndef EMBER_DEPLOY_WORKER_H
#define EMBER_DEPLOY_WORKER_H

#include "base/base.h"

#include <ember/conf.h>

typedef struct em_worker em_worker;

/* Starts a worker for master_url ("ember://HOST:PORT") offering cores and memory_mb, with
 * ember.worker.heartbeatInterval (0 = ember.worker.timeout / 4), ember.authenticate.secret and
 * ember.rpc.message.maxSize from conf (read here only). Connection attempts run in the
 * background. 0, EM_EINVAL (the URL does not parse; the message names it), or another error. */
int em_worker_start(const em_conf *conf, const char *master_url, int cores, uint64_t memory_mb,
                    em_worker **out);
/* The worker's id (stable for the life of the process). */
const char *em_worker_id(const em_worker *w);
/* 1 while registered with the master, 0 otherwise. */
int em_worker_registered(em_worker *w);
/* 0 while running; EM_EMASTER once the master refused the registration (fatal). */
int em_worker_failed(em_worker *w);
/* Stops and frees. NULL is a no-op. */
void em_worker_stop(em_worker *w);

#endif
