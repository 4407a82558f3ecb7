/* The driver's link to the standalone master (Spark's StandaloneAppClient): registers the
 * application (REGISTER_APPLICATION), learns its id, hears about its executors
 * (EXECUTOR_ADDED / EXECUTOR_REMOVED) and about the master going away or removing the
 * application, and unregisters it at the end. The executors themselves register with the
 * driver's scheduler backend, not through here.
 *
 * Thread rule: em_app_client_* from any thread but not from a callback; the callbacks run on
 * the client's own loop thread (one at a time, in the order the master sent them) and must
 * not block or call em_app_client_stop.
 */
#ifndef EMBER_DEPLOY_APP_CLIENT_H
#define EMBER_DEPLOY_APP_CLIENT_H

#include "base/base.h"

#include <ember/conf.h>
#include <stdint.h>

typedef struct em_app_client em_app_client;

/* What the application asks for. Everything is copied by em_app_client_start. */
typedef struct em_app_desc {
    const char *name;
    int cores_max;      /* total cores wanted; 0 = every core the cluster has */
    int executor_cores; /* cores per executor; 0 = one executor per worker, all its free cores */
    uint64_t executor_memory_mb;
    const char *driver_url;  /* "host:port" where the driver serves the binary (GET_FILE) and
                                executors register */
    const char *binary_hash; /* hex SHA-256 of the binary (em_file_registry_add) */
    const char *const *env;  /* "NAME=value" entries added to the executors' environment (they
                                override the worker's EMBER_* variables of the same name) */
    int num_env;
} em_app_desc;

typedef struct em_app_client_callbacks {
    /* An executor was placed on a worker (it is starting; it registers with the driver). */
    void (*executor_added)(void *user, int exec_id, const char *worker_id, const char *host,
                           int cores, uint64_t memory_mb);
    /* An executor is gone: state EM_EXEC_EXITED / FAILED / KILLED / LOST (master_state.h),
     * exit_code its status or minus the signal, message the worker's or master's words (the
     * last lines of its stderr for a failure). */
    void (*executor_removed)(void *user, int exec_id, int state, int exit_code,
                             const char *message);
    /* After registration: the master removed the application or the connection to it was
     * lost (reason says which). At most once; not during em_app_client_stop. */
    void (*disconnected)(void *user, const char *reason);
    void *user;
} em_app_client_callbacks;

/* Connects to master_url ("ember://HOST:PORT") with ember.authenticate.secret and
 * ember.rpc.message.maxSize of conf (read here only) and sends the registration in the
 * background. cb may be NULL or have NULL members. 0, EM_EINVAL (bad URL or description; the
 * message says what), or another error; on error nothing runs. */
int em_app_client_start(const em_conf *conf, const char *master_url, const em_app_desc *d,
                        const em_app_client_callbacks *cb, em_app_client **out);
/* Blocks until the master accepted the application (0, *app_id gets a copy: em__free it; may be
 * NULL) or refused it / could not be reached / did not answer within ember.network.timeout
 * (EM_EMASTER, EM_ESTATE; the message names the master and the reason). Callable again. */
int em_app_client_wait_registered(em_app_client *c, char **app_id);
/* Unregisters the application (UNREGISTER_APPLICATION, which ends its executors), closes the
 * connection and frees. NULL is a no-op. No callback runs after it returns. */
void em_app_client_stop(em_app_client *c);

#endif
