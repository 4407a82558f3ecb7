/* The driver's link to the standalone master (Spark's StandaloneAppClient): registers the
 * application (REGISTER_APPLICATION) with the first master of the URL that takes it, learns
 * its id, hears about its executors (EXECUTOR_ADDED / EXECUTOR_REMOVED) and about the master
 * removing the application, and unregisters it at the end. The executors themselves register
 * with the driver's scheduler backend, not through here.
 *
 * When the connection to the master drops (a master killed and restarted, or replaced by
 * another master of the URL), the application goes on with its executors and the client
 * reconnects, the masters of the URL in turn with a back-off (100 ms doubling to 5 s between
 * rounds), and re-registers the application under its id (REREGISTER_APPLICATION), which a
 * master recovering from its journal accepts. It gives up (the disconnected callback) only when
 * a master refuses the re-registration (it does not know the application: no recovery mode) or
 * when no master took it back within ember.network.timeout of the loss.
 *
 * Thread rule: em_app_client_* from any thread but not from a callback; the callbacks run on
 * the client's own loop thread (one at a time, in the order the master sent them; disconnected
 * may instead run on the client's connector thread, when it gives a reconnection up) and must
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
    /* After registration: the master removed the application, or the client gave up
     * reconnecting (reason says which; see above). At most once; not during
     * em_app_client_stop. The application's executors are not affected by it. */
    void (*disconnected)(void *user, const char *reason);
    void *user;
} em_app_client_callbacks;

/* Connects to master_url ("ember://HOST:PORT[,HOST2:PORT2]...": each master in turn, once,
 * until one takes the registration) with ember.authenticate.secret, ember.rpc.message.maxSize
 * and ember.network.timeout (the reconnection bound) of conf (read here only) and sends the
 * registration in the background. cb may be NULL or have NULL members. 0, EM_EINVAL (bad URL
 * or description; the message says what), or another error; on error nothing runs. */
int em_app_client_start(const em_conf *conf, const char *master_url, const em_app_desc *d,
                        const em_app_client_callbacks *cb, em_app_client **out);
/* Blocks until a master accepted the application (0, *app_id gets a copy: em__free it; may be
 * NULL) or refused it / none could be reached / none answered within ember.network.timeout
 * (EM_EMASTER, EM_ESTATE; the message names each master tried and why). Callable again. */
int em_app_client_wait_registered(em_app_client *c, char **app_id);
/* Unregisters the application (UNREGISTER_APPLICATION, which ends its executors), closes the
 * connection and frees. NULL is a no-op. No callback runs after it returns. */
void em_app_client_stop(em_app_client *c);

#endif
