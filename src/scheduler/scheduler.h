/* The driver's schedulers: the DAG scheduler (jobs -> stages -> task sets, stage reuse across
 * jobs, retries, fetch-failure resubmission, speculation, job abort) above a scheduler backend
 * that runs tasks (local_backend.c: a pool of task threads in this process; cluster_backend.c:
 * executor processes on workers). See dag.c for the stage and task lifecycles.
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
    /* Ends the queued (not yet running) tasks of a stage attempt: each is posted as a
     * completion with EM_EKILLED. NULL: they run. */
    void (*cancel_stage)(em_backend *b, int stage_id, int stage_attempt);
    void (*stop)(em_backend *b);
    int total_slots;
    /* Drops the cached partitions of rdd_id wherever tasks ran (NULL: this process only). */
    void (*unpersist)(em_backend *b, int rdd_id);
    /* Tasks run in executor processes (map outputs carry executor ids that can be lost). */
    bool remote_executors;
    /* Stops using executor exec_id (its shuffle output cannot be fetched); NULL: no-op. */
    void (*exclude_executor)(em_backend *b, int exec_id, const char *why);
    /* Asks running task task_id to stop (cooperatively: it ends with EM_EKILLED and its
     * completion is posted as usual). A task still queued, or unknown: nothing. Any thread. */
    void (*kill_task)(em_backend *b, int64_t task_id, const char *reason);
    /* The host of executor exec_id into buf ("" when unknown); NULL: no hosts (local). */
    void (*executor_host)(em_backend *b, int exec_id, char *buf, size_t cap);
    /* 0 when some live executor may run partition of the stage attempt under the health
     * tracker's exclusions; else EM_EJOB with a message naming them, *num_app_excluded the
     * executors only application-level exclusions rule out. NULL: always 0. */
    int (*check_schedulable)(em_backend *b, int stage, int attempt, int partition,
                             int *num_app_excluded);
};

/* The DAG scheduler's clock (milliseconds, monotonic): em__now_ms unless a test installs a
 * fake one. Backends stamp em_task_desc.started_ms with em__now_ms. */
typedef int64_t (*em_sched_clock)(void *arg);

struct em_scheduler *em__scheduler_new(em_context *ctx, em_backend *backend);
/* The health tracker (executors in other processes; NULL in local mode): the cluster backend
 * asks it before placing a task (scheduler/health.h). */
struct em__health *em__scheduler_health(struct em_scheduler *s);
/* Tests: the clock the scheduler's timers (speculation, fetch-failure resubmission) read. */
void em__scheduler_set_clock(struct em_scheduler *s, em_sched_clock clock, void *arg);
/* Wakes the scheduler's thread to look at its timers now (after a fake clock moved). */
void em__sched_wake(struct em_scheduler *s);
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

/* Speculation's rule (speculation.c; Spark's TaskSetManager.checkSpeculatableTasks): once
 * floor(quantile * num_tasks) (at least 1) tasks of a stage attempt succeeded, a task running
 * longer than max(multiplier * median of their run times, min_runtime_ms) is a straggler.
 * Returns false while too few succeeded; else true with *threshold_ms. Sorts durations. */
bool em__speculation_threshold(int64_t *durations, int num_succeeded, int num_tasks,
                               double quantile, double multiplier, int64_t min_runtime_ms,
                               int64_t *threshold_ms);

/* Unlinks from a backend's queue (head, tail; the caller holds its lock) the tasks of job_id
 * (stage_id < 0) or of stage attempt (stage_id, stage_attempt) and returns them as a list in
 * queue order (task_queue.c). */
em_task_desc *em__task_queue_take(em_task_desc **head, em_task_desc **tail, int job_id,
                                  int stage_id, int stage_attempt);

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
