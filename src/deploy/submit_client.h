/* ember submit's link to the standalone master (Spark's deploy Client): submits a cluster-mode
 * driver (SUBMIT_DRIVER), asks for a driver's state (REQUEST_DRIVER_STATUS) and asks for its
 * end (REQUEST_KILL_DRIVER), each a blocking request and its answer on one connection.
 *
 * For a submission the client also serves the application binary by content hash
 * (em_file_registry + em_file_serve) on its own listening endpoint, at the local address of
 * the route to the master (so the master can reach it whatever the interfaces are; no packet
 * is sent to find it) and an ephemeral port. The master fetches the binary into its own store
 * before it answers, so the client may exit as soon as the submission is accepted.
 *
 * Thread rule: em_submit_client_* from one thread (the command's), never from a callback; the
 * endpoint's loop thread answers GET_FILE and hands the master's answers over.
 */
#ifndef EMBER_DEPLOY_SUBMIT_CLIENT_H
#define EMBER_DEPLOY_SUBMIT_CLIENT_H

#include "base/base.h"

#include <ember/conf.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct em_submit_client em_submit_client;

/* Connects to a master of master_url ("ember://HOST:PORT[,HOST2:PORT2]...": each in turn, once,
 * until one takes the connection) with ember.authenticate.secret, ember.rpc.message.maxSize
 * and ember.network.timeout of conf (read here only). serve_path: a file to offer by hash for
 * a submission (at the local address of the route to the URL's first master), or NULL. Blocks
 * until connected. 0, EM_EINVAL (bad URL), -errno (serve_path unreadable; the message names
 * it), EM_ESTATE (no master can be reached or each refused the connection, e.g. another
 * secret; the message names each), EM_ENOMEM.
 * A status, kill or state request whose connection is lost (a master restart, or a move to
 * another master of the URL) reconnects, the masters in turn with a back-off (100 ms doubling
 * to 5 s) for up to ember.network.timeout, and is sent again; a submission is not (it fails). */
int em_submit_client_connect(const em_conf *conf, const char *master_url, const char *serve_path,
                             em_submit_client **out);
/* The served file's hex SHA-256 and the "host:port" it is served at ("" without one). */
const char *em_submit_client_hash(const em_submit_client *c);
const char *em_submit_client_file_url(const em_submit_client *c);

/* A cluster-mode driver to run: the served binary with these arguments and environment. */
typedef struct em_submit_request {
    int cores;               /* ember.driver.cores */
    uint64_t memory_mb;      /* ember.driver.memory */
    bool supervise;          /* ember.driver.supervise */
    const char *const *args; /* argv[1..] of the driver */
    int num_args;
    const char *const *env; /* "NAME=value" (the EMBER_* options) */
    int num_env;
} em_submit_request;

/* Submits the served binary as a driver and waits for the master's answer (it comes once the
 * master holds the binary). 0 with *driver_id (em__free it), EM_EMASTER (refused: the message
 * has the master's reason), EM_ESTATE (connection lost or no answer in time), EM_EINVAL
 * (nothing served), EM_ENOMEM. */
int em_submit_client_submit(em_submit_client *c, const em_submit_request *req, char **driver_id);

typedef struct em_submit_status {
    int found;       /* 0: the master knows no such driver (message says so) */
    int state;       /* enum em_driver_state (master_state.h) */
    int exit_code;   /* of its last run: status, or minus the signal */
    char *worker_id; /* the worker it runs or ran on ("" before its first launch) */
    char *message;   /* the last report or reason */
} em_submit_status;

/* Asks for driver_id's state. 0 with *out filled (free with em_submit_status_free), EM_ESTATE
 * (connection lost, no answer in time), EM_ENOMEM. */
int em_submit_client_status(em_submit_client *c, const char *driver_id, em_submit_status *out);
void em_submit_status_free(em_submit_status *s);

/* Asks the master to kill driver_id. 0 when the master accepted (the driver is KILLED, or its
 * worker was told to kill it: poll the status), with *message (em__free; may be NULL) in the
 * master's words; EM_EMASTER when it refused (unknown or ended driver: the message says),
 * EM_ESTATE, EM_ENOMEM. */
int em_submit_client_kill(em_submit_client *c, const char *driver_id, char **message);

/* The master's state as JSON (em_master_status_json's text): 0 with *json (em__free it),
 * EM_ESTATE, EM_ENOMEM. */
int em_submit_client_master_state(em_submit_client *c, char **json);
/* "ember://host:port" of the master connected to (valid until the next call). */
const char *em_submit_client_master(em_submit_client *c);

/* Closes the connections and frees. NULL is a no-op. */
void em_submit_client_free(em_submit_client *c);

#endif
