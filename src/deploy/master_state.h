/* The standalone master's state as pure tables: workers, applications and their executors, and
 * the scheduling pass that places executors (src/deploy/placement.h). No sockets, no threads,
 * no clock reads: every call takes the time, and what is to be sent comes out as a list of
 * actions (em__maction) that the daemon (master.c) turns into messages. Tests drive the
 * tables with a fake clock and fake connection tags.
 *
 * Connections are opaque tags (void *, an em_conn * in the daemon): a worker's tag receives
 * LAUNCH_EXECUTOR / KILL_EXECUTOR / APPLICATION_FINISHED, an application's (its driver's)
 * EXECUTOR_ADDED / EXECUTOR_REMOVED / APPLICATION_REMOVED.
 *
 * Thread rule: one thread at a time per table (the daemon holds its mutex). Actions BORROW
 * from the table (an action's app pointer): take and execute them before the next call.
 */
#ifndef EMBER_DEPLOY_MASTER_STATE_H
#define EMBER_DEPLOY_MASTER_STATE_H

#include "base/base.h"

#include <stdbool.h>
#include <stdint.h>

/* Executor states, on the wire in EXECUTOR_STATE_CHANGED and EXECUTOR_REMOVED (u8). Spark's
 * ExecutorState. A worker reports RUNNING, EXITED, FAILED or KILLED; LOST is the master's. */
enum em_exec_state {
    EM_EXEC_LAUNCHING = 1, /* placed, LAUNCH_EXECUTOR sent, not yet started */
    EM_EXEC_RUNNING = 2,   /* the process runs */
    EM_EXEC_KILLED = 3,    /* the worker killed it (application end, KILL_EXECUTOR, worker stop) */
    EM_EXEC_FAILED = 4,    /* could not start (fetch, spawn) or died on a signal: exit_code -sig */
    EM_EXEC_LOST = 5,      /* its worker was declared DEAD */
    EM_EXEC_EXITED = 6,    /* the process exited by itself: exit_code its status */
};
/* Application states (Spark's ApplicationState). */
enum em_app_state {
    EM_APP_WAITING = 1,  /* registered, no executor yet */
    EM_APP_RUNNING = 2,  /* has had executors */
    EM_APP_FINISHED = 3, /* unregistered by its driver, or the driver's connection closed */
    EM_APP_FAILED = 4,   /* removed by the master: executors failed too often */
    EM_APP_KILLED = 5,   /* removed by an operator (reserved) */
    EM_APP_UNKNOWN = 6,  /* recovered from the journal; its driver has not re-registered yet */
};
/* Cluster-mode driver states (Spark's DriverState), on the wire in DRIVER_STATE_CHANGED (a
 * worker reports RUNNING, FINISHED, FAILED, KILLED or ERROR) and DRIVER_STATUS. The lifecycle
 * is drawn in master_drivers.c. */
enum em_driver_state {
    EM_DRIVER_SUBMITTED = 1,   /* accepted; waiting for a worker, or launched and not yet up */
    EM_DRIVER_RUNNING = 2,     /* the process runs */
    EM_DRIVER_FINISHED = 3,    /* exited with status 0 */
    EM_DRIVER_RELAUNCHING = 4, /* supervised: failed or lost its worker; launched again soon */
    EM_DRIVER_KILLED = 5,      /* killed on request (ember submit --kill) */
    EM_DRIVER_FAILED = 6,      /* exited non-zero or died on a signal: exit_code status / -sig */
    EM_DRIVER_ERROR = 7,       /* could not start (fetch, spawn), or its worker was lost */
};
/* "RUNNING", "EXITED", ... ("?" for another value). */
const char *em_exec_state_name(int state);
const char *em_app_state_name(int state);
const char *em_driver_state_name(int state);
const char *em_worker_state_name(int state);
const char *em_master_state_name(int state);

/* The master's own state (Spark's RecoveryState without STANDBY: there is one master at a
 * time, no leader election). Drawn in master.c. */
enum em_master_state {
    EM_MASTER_ALIVE = 1,      /* schedules */
    EM_MASTER_RECOVERING = 2, /* loaded a journal; waits for workers and drivers to come back */
};

/* Spark's spark.deploy.maxExecutorRetries: abnormal executor ends an application may have in a
 * row before it gets no more executors (and fails once none of its executors runs). */
#define EM_MASTER_MAX_EXECUTOR_RETRIES 10
/* An executor that ran at least this long before ending abnormally was a healthy executor
 * lost later, not part of a crash loop: its end resets the count instead of adding to it. */
#define EM_MASTER_EXECUTOR_STABLE_MS 10000
/* Finished applications kept in the table for inspection (oldest dropped first). */
#define EM_MASTER_RETAINED_APPS 200
/* Ended cluster-mode drivers kept for ember submit --status (oldest dropped first). */
#define EM_MASTER_RETAINED_DRIVERS 200
/* Supervised drivers (ember submit --supervise) are launched again after a failure with a
 * back-off doubling from MIN to MAX; a driver that had run STABLE ms starts again at MIN. */
#define EM_MASTER_DRIVER_BACKOFF_MIN_MS 1000
#define EM_MASTER_DRIVER_BACKOFF_MAX_MS 60000
#define EM_MASTER_DRIVER_STABLE_MS      10000

/* ---- the worker table ------------------------------------------------------------------------ */
enum em_worker_state {
    EM_WORKER_ALIVE = 1,
    EM_WORKER_DEAD = 2,
    EM_WORKER_UNKNOWN = 3, /* recovered from the journal, not registered with this master yet */
};

/* An executor (or a cluster-mode driver) the master removed when its worker was declared DEAD:
 * if that worker comes back, the process may still run and is told to die. */
typedef struct em_mlost_exec {
    char *app_id; /* the application's id, or the driver's id when driver is set */
    int exec_id;  /* -1 for a driver */
    bool driver;
} em_mlost_exec;

typedef struct em_mworker {
    char *id, *host;
    int port, cores;
    uint64_t memory_mb;
    int state;
    int connected;        /* a connection from the worker is open */
    void *conn;           /* opaque tag of that connection (em_conn *), NULL when none */
    int64_t last_seen_ms; /* registration or last heartbeat, on the caller's clock */
    int registrations;    /* times registered (re-registrations after death or restart) */
    int cores_used;       /* by live executors */
    uint64_t memory_used_mb;
    em_mlost_exec *lost; /* executors removed at its death, to kill if it comes back */
    size_t nlost;
    bool reporting; /* came back from UNKNOWN; its report (WORKER_STATE_END) not finished */
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

/* ---- applications and executors ---------------------------------------------------------------
 */
typedef struct em_mexec {
    int exec_id;
    char *worker_id;
    int cores;
    uint64_t memory_mb;
    int state;           /* EM_EXEC_LAUNCHING or EM_EXEC_RUNNING (ended ones are removed) */
    int64_t launched_ms; /* placed */
    int64_t running_ms;  /* reported RUNNING; 0 before */
} em_mexec;

/* What a driver asks for (REGISTER_APPLICATION). Strings are copied. */
typedef struct em__app_request {
    const char *name;
    int cores_max;      /* 0 = every core there is */
    int executor_cores; /* 0 = one executor per worker taking the cores it has free */
    uint64_t executor_memory_mb;
    const char *driver_url; /* host:port serving the binary (GET_FILE) */
    const char *binary_hash;
    const char *const *env; /* "NAME=value" entries for the executors */
    int num_env;
} em__app_request;

typedef struct em_mapp {
    char *id, *name, *driver_url, *binary_hash;
    char **env;
    int num_env;
    int cores_max, executor_cores;
    uint64_t executor_memory_mb;
    int state;  /* enum em_app_state */
    void *conn; /* the driver's connection; NULL once ended */
    int64_t submit_ms, end_ms;
    int next_exec_id;  /* executor ids 0, 1, 2, ... */
    int cores_granted; /* cores of live executors */
    int retries;       /* abnormal executor ends in a row (see EM_MASTER_MAX_EXECUTOR_RETRIES) */
    int executors_launched; /* in all, for tests and logs */
    em_mexec *execs;        /* live executors (LAUNCHING / RUNNING) */
    size_t nexecs, capexecs;
    char *end_reason; /* why it ended, NULL while live */
} em_mapp;

/* ---- cluster-mode drivers ------------------------------------------------------------------ */
/* What ember submit --deploy-mode cluster asks for (SUBMIT_DRIVER). Strings are copied. */
typedef struct em__driver_request {
    int cores;               /* >= 1 (ember.driver.cores) */
    uint64_t memory_mb;      /* >= 1 (ember.driver.memory) */
    bool supervise;          /* ember.driver.supervise */
    const char *binary_hash; /* hex SHA-256 of the binary, in the master's store */
    const char *const *args; /* the program's arguments (argv[1..]) */
    int num_args;
    const char *const *env; /* "NAME=value" entries of its environment (EMBER_* options) */
    int num_env;
} em__driver_request;

typedef struct em_mdriver {
    char *id, *name, *binary_hash; /* name: EMBER_APP_NAME of env, else "ember-app" (logs) */
    char **args, **env;
    int num_args, num_env;
    int cores;
    uint64_t memory_mb;
    bool supervise;
    int state;        /* enum em_driver_state */
    char *worker_id;  /* the worker it runs on or last ran on; NULL before its first launch */
    bool placed;      /* launched on worker_id and not ended: holds its cores and memory */
    bool kill_wanted; /* ember submit --kill asked; KILL_DRIVER sent (again at re-registration) */
    int launches;     /* LAUNCH_DRIVER sent, in all */
    int failures;     /* failed launches in a row (the back-off's exponent) */
    int exit_code;    /* of the last run: status, or minus the signal */
    char *message;    /* the last report (worker's words) or the master's reason */
    int64_t submit_ms, launch_ms, running_ms, end_ms;
    int64_t relaunch_at_ms; /* RELAUNCHING: not launched before this time */
    char *avoid_worker;     /* not relaunched there before avoid_until_ms (it was stopping) */
    int64_t avoid_until_ms;
    bool recovered; /* loaded from the journal as launched on worker_id, not yet reported by a
                       worker since (placed is false meanwhile: it holds no resources) */
} em_mdriver;

/* Something the daemon must send, in order. conn NULL: nobody to tell (skip). */
typedef struct em__maction {
    int type;                 /* EM_MSG_LAUNCH_EXECUTOR, _EXECUTOR_ADDED, _EXECUTOR_REMOVED,
                                 _KILL_EXECUTOR, _APPLICATION_FINISHED, _APPLICATION_REMOVED,
                                 _LAUNCH_DRIVER or _KILL_DRIVER */
    void *conn;               /* destination */
    const em_mapp *app;       /* LAUNCH_EXECUTOR: the application (borrowed) */
    const em_mdriver *driver; /* LAUNCH_DRIVER: the driver (borrowed) */
    char *app_id;
    char *driver_id; /* LAUNCH_DRIVER, KILL_DRIVER */
    int exec_id, cores, state, exit_code;
    uint64_t memory_mb;
    char *worker_id, *host; /* EXECUTOR_ADDED */
    char *message;          /* EXECUTOR_REMOVED, APPLICATION_REMOVED */
} em__maction;

/* A change the recovery journal must record (master_journal.h): kind EM_MJ_*, the record's id
 * (NULL for EM_MJ_IDS), remove: the record is gone, else (re)write it from the tables. */
enum em_mjournal_kind { EM_MJ_WORKER = 1, EM_MJ_APP = 2, EM_MJ_DRIVER = 3, EM_MJ_IDS = 4 };
typedef struct em__mjournal_op {
    int kind;
    bool remove;
    char *id;
} em__mjournal_op;

typedef struct em__mstate {
    em__mworkers workers;
    em_mapp **apps; /* live and retained finished ones, in registration order */
    size_t napps, capapps;
    int next_app_number;
    bool spread_out;          /* ember.deploy.spreadOut */
    int max_executor_retries; /* EM_MASTER_MAX_EXECUTOR_RETRIES unless a test sets it */
    em__maction *out;         /* the outbox */
    size_t nout, capout;
    int oom;              /* an action could not be queued for lack of memory (logged) */
    em_mdriver **drivers; /* cluster-mode drivers, live and retained ended ones, by submission */
    size_t ndrivers, capdrivers;
    int next_driver_number;
    /* recovery (ember.deploy.recoveryMode=FILESYSTEM) */
    int state;       /* enum em_master_state; ALIVE unless em__mstate_recover found records */
    bool journaling; /* record changes as journal ops (em__mstate_take_journal) */
    int64_t recovery_deadline_ms;
    em__mjournal_op *jops; /* the journal's outbox, like out */
    size_t njops, capjops;
} em__mstate;

/* An empty state. */
void em__mstate_init(em__mstate *st, bool spread_out);
void em__mstate_free(em__mstate *st);

/* A worker registers (see em__mworkers_register for the return values). A worker coming back
 * from DEAD is told to kill the executors removed at its death; one coming back from UNKNOWN
 * (recovery) is `reporting` until its WORKER_STATE_END; then executors are scheduled.*/
int em__mstate_register_worker(em__mstate *st, const char *id, const char *host, int port,
                               int cores, uint64_t memory_mb, void *conn, int64_t now_ms);
/* The liveness check (em__mworkers_check); the executors of workers that died are removed as
 * LOST (drivers told), their cluster-mode drivers relaunched (supervised) or ended ERROR, then
 * the freed demand is scheduled elsewhere. Also the timer of supervised drivers' back-off: a
 * RELAUNCHING driver whose time has come is placed here. And the end of a recovery: once
 * now_ms passes its deadline, what did not come back is removed (em__mstate_recover). Returns
 * how many died. */
int em__mstate_check(em__mstate *st, int64_t now_ms, int64_t timeout_ms);
/* A connection closed: workers on it are disconnected (they live until the timeout), and an
 * application whose driver it was ends as FINISHED. */
void em__mstate_conn_closed(em__mstate *st, void *conn, int64_t now_ms);

/* Registers an application from conn, with the id "app-YYYYMMDDHHMMSS-NNNN" (wall_ms is the
 * time of the id, in ms since the epoch, local time), and schedules. 0 with *out set, or
 * EM_EINVAL (bad request, message says what), EM_EEXIST (conn already has a live application),
 * EM_ENOMEM. */
int em__mstate_register_app(em__mstate *st, const em__app_request *req, void *conn, int64_t now_ms,
                            int64_t wall_ms, em_mapp **out);
/* The driver ended its application (UNREGISTER_APPLICATION): FINISHED; executors killed via
 * APPLICATION_FINISHED to the workers. from: the connection asking (must be the driver's, or
 * NULL to skip the check). 0, EM_ENOENT (unknown or ended) or EM_EACCES (another connection). */
int em__mstate_unregister_app(em__mstate *st, const char *app_id, void *from, int64_t now_ms);
/* A worker reports an executor's state (EXECUTOR_STATE_CHANGED) from connection from. RUNNING
 * marks it running; EXITED / FAILED / KILLED remove it (resources freed, driver told
 * EXECUTOR_REMOVED), count abnormal ends against the retry cap, and schedule again.
 * 0, EM_ENOENT (unknown application or executor: ignored), EM_EACCES (not from its worker's
 * connection), EM_EINVAL (a state a worker cannot report). */
int em__mstate_executor_state(em__mstate *st, void *from, const char *app_id, int exec_id,
                              int state, int exit_code, const char *message, int64_t now_ms);
/* One scheduling pass (none while RECOVERING): first every driver waiting for a worker (SUBMITTED,
 * or RELAUNCHING past its back-off), in submission order, on the ALIVE connected worker with room
 * that has the most free cores (then memory; then registration order); then every live application
 * short of cores, in registration order, gets executors on ALIVE connected workers with room
 * (placement.h; workers with the most free cores first). Called by the functions above;
 * exposed for tests. */
void em__mstate_schedule(em__mstate *st, int64_t now_ms);

em_mapp *em__mstate_find_app(em__mstate *st, const char *app_id);
em_mexec *em__mapp_find_exec(em_mapp *a, int exec_id);

/* ---- cluster-mode drivers (master_drivers.c, lifecycle drawn there) ----------------------- */
/* Accepts a driver with the id "driver-YYYYMMDDHHMMSS-NNNN" (wall_ms as for applications) in
 * state SUBMITTED, and schedules (drivers are placed before executors). 0 with *out set, or
 * EM_EINVAL (bad request; message says what), EM_ENOMEM. */
int em__mstate_submit_driver(em__mstate *st, const em__driver_request *req, int64_t now_ms,
                             int64_t wall_ms, em_mdriver **out);
/* A worker reports a driver's state (DRIVER_STATE_CHANGED) from connection from: RUNNING, or an
 * end (FINISHED, FAILED, KILLED, ERROR) that frees its resources and ends it, or relaunches it
 * when supervised (FAILED; KILLED that nobody asked for, e.g. its worker stopping). 0,
 * EM_ENOENT (unknown, ended or not launched driver: ignored), EM_EACCES (not from the
 * connection of the worker it runs on), EM_EINVAL (a state a worker cannot report). */
int em__mstate_driver_state(em__mstate *st, void *from, const char *driver_id, int state,
                            int exit_code, const char *message, int64_t now_ms);
/* ember submit --kill: a driver waiting for a worker (SUBMITTED, RELAUNCHING) ends KILLED at
 * once (returns 1); a launched one is sent KILL_DRIVER and ends when its worker reports KILLED
 * (returns 0; again at once when already asked). EM_ENOENT (unknown) or EM_ESTATE (already
 * ended; the message names its state), with a message. */
int em__mstate_kill_driver(em__mstate *st, const char *driver_id, int64_t now_ms);
em_mdriver *em__mstate_find_driver(em__mstate *st, const char *driver_id);
/* 1 for FINISHED, KILLED, FAILED, ERROR. */
bool em__driver_state_final(int state);

/* Moves the outbox out: *n actions, to be freed with em__mactions_free. */
em__maction *em__mstate_take_actions(em__mstate *st, size_t *n);
void em__mactions_free(em__maction *v, size_t n);

/* ---- recovery (lifecycle drawn in master.c) --------------------------------------------------
 * With st->journaling set, every change of a worker (registered, DEAD), an application
 * (registered, executor id used, ended), a driver (submitted, placed, running, relaunching,
 * ended, kill asked) and of the id counters queues a journal op, applied by the daemon before
 * it sends the event's messages (write-ahead). */
em__mjournal_op *em__mstate_take_journal(em__mstate *st, size_t *n);
void em__mjournal_ops_free(em__mjournal_op *v, size_t n);

/* What a journal held (master_journal.c fills it). Workers: id, host, port, cores and
 * memory_mb set; applications: the description, next_exec_id and executors_launched; drivers:
 * everything of em_mdriver but the times. Owned; em__mrecovered_free frees what is left. */
typedef struct em__mrecovered {
    em_mworker *workers;
    size_t nworkers;
    em_mapp **apps;
    size_t napps;
    em_mdriver **drivers;
    size_t ndrivers;
    int next_app_number, next_driver_number; /* 0 when unknown */
} em__mrecovered;
void em__mrecovered_free(em__mrecovered *r);
/* Frees one application / driver record (NULL is a no-op). */
void em__mapp_free(em_mapp *a);
void em__mdriver_free(em_mdriver *d);

/* Takes over the records of r (r is emptied) into an empty state: workers UNKNOWN,
 * applications UNKNOWN (no executors: the workers report them), drivers as they were, the
 * launched ones `recovered` (holding nothing until their worker reports them); id counters
 * past every id seen. With any record the master is RECOVERING until every worker and
 * application is back or timeout_ms has passed (em__mstate_check); with none, ALIVE. Returns
 * the number of records taken. */
size_t em__mstate_recover(em__mstate *st, em__mrecovered *r, int64_t now_ms, int64_t timeout_ms);
/* A worker's report after its registration (WORKER_EXECUTOR, from its connection `from`): it
 * runs executor exec_id of app_id (state LAUNCHING or RUNNING). RECOVERING: an executor of a
 * known live or UNKNOWN application that the tables do not have is taken back (resources,
 * executor id counter); one of an unknown or ended application is told to die
 * (KILL_EXECUTOR). ALIVE with journaling: one the tables do not have on that worker is told to
 * die. ALIVE without journaling: ignored (as before recovery existed). 0, EM_ENOENT (unknown
 * worker or not its connection), EM_EINVAL (bad state). */
int em__mstate_worker_executor(em__mstate *st, void *from, const char *worker_id,
                               const char *app_id, int exec_id, int cores, uint64_t memory_mb,
                               int state, int64_t now_ms);
/* The same for a cluster-mode driver (WORKER_DRIVER; state SUBMITTED or RUNNING): a live
 * driver not placed elsewhere is taken back on that worker, any other is told to die
 * (KILL_DRIVER) unless the master neither recovers nor journals. */
int em__mstate_worker_driver(em__mstate *st, void *from, const char *worker_id,
                             const char *driver_id, int cores, uint64_t memory_mb, int state,
                             int64_t now_ms);
/* The worker's report is complete (WORKER_STATE_END). May complete the recovery. */
int em__mstate_worker_state_end(em__mstate *st, void *from, const char *worker_id, int64_t now_ms);
/* The driver of application app_id reconnected on conn (REREGISTER_APPLICATION): an UNKNOWN
 * application is live again (RUNNING when it has or had executors, else WAITING). May complete
 * the recovery. 0, EM_ENOENT (unknown here), EM_ESTATE (ended: the message says how),
 * EM_EEXIST (live on another connection). */
int em__mstate_reregister_app(em__mstate *st, const char *app_id, void *conn, int64_t now_ms);

#endif
