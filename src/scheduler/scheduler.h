/* The driver's schedulers: the DAG scheduler (jobs -> stages -> task sets, stage reuse across
 * jobs, retries, job abort) above a scheduler backend that runs tasks (local: a pool of task
 * threads in this process; later: executor processes). See dag.c for the stage and task
 * lifecycles.
 *
 * Thread rule: em__sched_run_job is called by driver threads; jobs run one at a time per
 * context (sched->job_mu). The backend's threads only run tasks and post completions.
 */
#ifndef EMBER_SCHEDULER_H
#define EMBER_SCHEDULER_H

#include "executor/executor.h"
#include "rdd/rdd.h"

typedef struct em_backend em_backend;

/* The interface a scheduler backend implements. */
struct em_backend {
    /* Queues a task for execution; its completion is posted with em__sched_task_done. */
    void (*launch)(em_backend *b, em_task_desc *d);
    /* Removes queued (not yet running) tasks of job_id; returns how many were removed (their
     * descriptions are freed). */
    int (*cancel_queued)(em_backend *b, int job_id);
    void (*stop)(em_backend *b);
    int total_slots;
    /* Drops the cached partitions of rdd_id wherever tasks ran (NULL: this process only). */
    void (*unpersist)(em_backend *b, int rdd_id);
    /* Tasks run in executor processes (map outputs carry executor ids that can be lost). */
    bool remote_executors;
    /* Stops using executor exec_id (its shuffle output cannot be fetched); NULL: no-op. */
    void (*exclude_executor)(em_backend *b, int exec_id, const char *why);
};

struct em_scheduler *em__scheduler_new(em_context *ctx, em_backend *backend);
/* Installs the backend (made after the scheduler, since its threads post to it). */
void em__scheduler_set_backend(struct em_scheduler *s, em_backend *backend);
/* The installed backend. */
em_backend *em__scheduler_backend(struct em_scheduler *s);
/* Stops the backend (joining its threads) and frees the scheduler. */
void em__scheduler_free(struct em_scheduler *s);

/* ctx->run_job: runs a job to completion. 0, or the job's error (EM_EJOB with the failing
 * stage, partition, attempts and cause in em_errmsg()). */
int em__sched_run_job(em_context *ctx, const em_job_spec *job);

/* Called by backend threads when a task finished (successfully or not). Any thread. */
void em__sched_task_done(struct em_scheduler *s, em_task_desc *d);

/* The local backend: n task threads in this process. */
em_backend *em__local_backend_new(em_context *ctx, int num_threads);

/* What the cluster backend asks the master for. */
typedef struct em__cluster_request {
    const char *driver_host; /* address executors reach the driver at; NULL: ember.driver.host */
    int cores_max;           /* 0: all the cluster has */
    int executor_cores;      /* 0: one executor per worker with all its free cores */
    uint64_t executor_memory_mb;
} em__cluster_request;

/* The cluster backend (cluster_backend.c): registers the application with the master at
 * master_url ("ember://host:port") and runs tasks on the executors it gets. On success
 * ctx->app_id is the master's id for the application. */
int em__cluster_backend_new(em_context *ctx, const char *master_url, const em__cluster_request *req,
                            em_backend **out);
/* Waits until at least min_executors executors are registered or timeout_ms passed; returns
 * how many are; *cores (may be NULL) gets their total cores. */
int em__cluster_backend_wait(em_backend *b, int min_executors, int64_t timeout_ms, int *cores);

#endif
