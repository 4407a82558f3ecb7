/* The standalone cluster manager's master daemon (`ember master`): workers register, heartbeat
 * and are declared DEAD when silent past ember.worker.timeout. This slice tracks workers only;
 * applications and executors come next (issue 3).
 *
 * Two layers:
 *   - em__mworkers: the worker table as a pure state machine with the clock passed in (no
 *     sockets, no threads), so tests drive it with a fake clock;
 *   - em_master: the daemon: an em_endpoint listening for workers, the table behind a mutex,
 *     and one timer thread running the liveness check.
 * Thread rule: em_master_* any thread except where noted; em__mworkers_* one thread at a time.
 */
#ifndef EMBER_DEPLOY_MASTER_H
#define EMBER_DEPLOY_MASTER_H

#include "base/base.h"

#include <ember/conf.h>
#include <stdint.h>

/* Parses a master URL "ember://HOST:PORT" (HOST may be "[v6addr]"). *host gets a copy (free
 * with em__free). 0 or EM_EINVAL with a message naming the URL. */
int em_master_url_parse(const char *url, char **host, int *port);

/* ---- the worker table (pure; one thread at a time) ------------------------------------------ */
enum em_worker_state { EM_WORKER_ALIVE = 1, EM_WORKER_DEAD = 2 };

typedef struct em_mworker {
    char *id, *host;
    int port, cores;
    uint64_t memory_mb;
    int state;
    int connected;        /* a connection from the worker is open */
    void *conn;           /* opaque tag of that connection (em_conn *), NULL when none */
    int64_t last_seen_ms; /* registration or last heartbeat, on the caller's clock */
    int registrations;    /* times registered (re-registrations after death or restart) */
} em_mworker;

typedef struct em__mworkers {
    em_mworker *v;
    size_t n, cap;
} em__mworkers;

/* Registers (or re-registers) a worker. Returns 0 for a new worker, 1 for a known worker
 * accepted again (it was DEAD or its previous connection is gone), EM_EEXIST when a worker of
 * that id is ALIVE on another open connection (message says so), EM_ENOMEM. */
int em__mworkers_register(em__mworkers *t, const char *id, const char *host, int port, int cores,
                          uint64_t memory_mb, void *conn, int64_t now_ms);
/* A heartbeat: 0 (last_seen updated), or EM_ENOENT for an unknown or DEAD worker (the caller
 * makes it re-register). */
int em__mworkers_heartbeat(em__mworkers *t, const char *id, int64_t now_ms);
/* The connection conn closed: the worker(s) on it keep their state until the timeout (or a
 * re-registration). Returns the number of workers that were on it. */
int em__mworkers_disconnected(em__mworkers *t, void *conn);
/* The liveness check: every ALIVE worker with now - last_seen > timeout becomes DEAD and
 * gets a WARN log line naming it and how long it was silent. Returns how many died. */
int em__mworkers_check(em__mworkers *t, int64_t now_ms, int64_t timeout_ms);
em_mworker *em__mworkers_find(em__mworkers *t, const char *id);
void em__mworkers_free(em__mworkers *t);

/* ---- the daemon ------------------------------------------------------------------------------ */
typedef struct em_master em_master;

/* Creates a master listening on host:port (port 0 = ephemeral) with the options of conf
 * (ember.worker.timeout, ember.authenticate.secret, ember.rpc.message.maxSize), and starts its
 * loop and timer threads. conf is read here only. 0 or an error with a message naming the
 * address. */
int em_master_start(const em_conf *conf, const char *host, int port, em_master **out);
/* The port actually bound. */
int em_master_port(const em_master *m);
/* Workers in state (EM_WORKER_ALIVE / EM_WORKER_DEAD), or all for state 0. */
int em_master_worker_count(em_master *m, int state);
/* A snapshot of one worker: 0 with *out filled (id and host set to NULL: not copied), or
 * EM_ENOENT. */
int em_master_worker_info(em_master *m, const char *id, em_mworker *out);
/* Stops the threads and frees everything. NULL is a no-op. Not from a callback. */
void em_master_stop(em_master *m);

#endif
