/* Ember context: the driver's handle on an application.
 *
 * A driver program creates one context from a master URL, an application name and a
 * configuration, builds RDDs on it, runs actions, and stops it. Master URLs:
 *   local            one task thread
 *   local[N]         N task threads;  local[*]  one per core
 *   local[N,F]       N task threads, a task may fail F times (ember.task.maxFailures)
 *   local-cluster[W,C,M], ember://host:port[,host2:port2], slurm   (cluster issues)
 * Thread rule: RDDs may be defined and actions run from any thread, one action at a time per
 * thread; em_context_stop must not race with other calls.
 */
#ifndef EMBER_CONTEXT_H
#define EMBER_CONTEXT_H

#include "conf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_context em_context;

/* Creates a context. master and app_name override the configuration's ember.master and
 * ember.app.name when not NULL; conf may be NULL (defaults, conf file and environment are then
 * loaded) and is copied. Returns 0 and *out, or a negative code (EM_EMASTER for a bad URL,
 * EM_ECONF, ...) with *out NULL and the reason in em_errmsg(). */
int em_context_create(const char *master, const char *app_name, const em_conf *conf,
                      em_context **out);

/* Stops the application: waits for no running job, releases executors, removes the
 * application's temporary directories, frees every RDD of the context and the context.
 * em_context_stop(NULL) does nothing. */
void em_context_stop(em_context *ctx);

/* The configuration in force (read-only, owned by ctx). */
const em_conf *em_context_conf(const em_context *ctx);

/* ember.default.parallelism, or the total number of task slots. */
int em_context_default_parallelism(const em_context *ctx);

/* The master URL and application id ("local-20261121224310-4242": master kind, start time,
 * driver pid). */
const char *em_context_master(const em_context *ctx);
const char *em_context_app_id(const em_context *ctx);

/* The message of the last failure of an action run on this context by the calling thread
 * (same as em_errmsg()). */
const char *em_context_errmsg(const em_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
