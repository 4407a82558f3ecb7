/* The executor's side of a task: the task description the scheduler hands over, and the
 * task runner that computes it — a shuffle map task (pull the partition through the stage's
 * pipeline into the shuffle writer, commit one data + index file) or a result task (pull it
 * into the action's result function).
 *
 * Thread rule: a description is filled by the scheduler, run by exactly one task thread, then
 * read back by the scheduler (hand-over through the backend's queues).
 */
#ifndef EMBER_EXECUTOR_H
#define EMBER_EXECUTOR_H

#include "rdd/rdd.h"

typedef struct em_task_desc {
    /* set by the scheduler */
    int64_t task_id;
    int job_id, stage_id, stage_attempt, partition, attempt;
    struct em_rdd *rdd;  /* result task: the final RDD; map task: the shuffle's parent */
    em_shuffle_dep *dep; /* map task only */
    em_result_fn fn;     /* result task only */
    const void *fn_arg;  /* result task: the job's argument blob (rdd.h, em_result_fn) */
    size_t fn_arg_len;
    void *sched_data; /* scheduler's bookkeeping */
    /* set by the runner */
    int status;           /* 0 or a negative error */
    char *errmsg;         /* em__malloc'd failure message, or NULL */
    em_buf result;        /* result task's bytes */
    int64_t result_size;  /* an indirect result's size (the bytes stay in the executor) */
    bool result_indirect; /* result not in this message: fetched with GET_RESULT */
    em_map_status map_status;
    em_block_location location; /* map task: where its output is (strings owned by the backend;
                                   dir NULL: the driver's own local_dir, local mode) */
    em_task_metrics metrics;
    em_buf acc_updates;        /* the attempt's accumulator updates (storage/shared.h encoding) */
    em_cached_block cached[4]; /* partitions the attempt cached (em_task.cached) */
    int num_cached;
    /* a fetch failure (em_task.fetch_failed): shuffle and map whose output could not be read,
     * and the executor that wrote it */
    bool fetch_failed;
    int ff_shuffle, ff_map, ff_exec;
    /* the cluster backend's placement */
    int avoid_exec;     /* the executor where the previous attempt failed, or -1 */
    int ran_on_exec;    /* the executor it was launched on (-1: local) */
    int preferred_exec; /* executor holding a cached input partition, or -1 */
    int64_t queued_ms;  /* when it was queued (delay scheduling) */
    int never_exec;     /* an executor it must not run on (a speculative copy: where the
                           original runs), or -1 */
    bool speculative;   /* a speculative copy of a running attempt */
    int sched_slot;     /* the DAG scheduler's index of it among its stage's running tasks */
    /* Written by the backend when the task starts on an executor, read by the DAG scheduler's
     * speculation check while the task runs: use em__task_desc_started / _set_started. */
    int64_t started_ms; /* 0 until started (em__now_ms clock) */
    int running_exec;   /* executor it runs on; -1 before it starts and in local mode */
    bool executor_lost; /* it failed because its executor was lost (not the task's fault) */
    int64_t run_ns;
    /* The attempt's kill request (base/task.h): set by the backend's kill_task (any thread)
     * while the runner checks it. */
    em_task_kill kill;
    /* How the attempt asks to commit its output (em_task.can_commit), set by an executor
     * process; NULL: the context's own commit coordinator (local mode), or none. */
    int (*can_commit)(struct em_task *t);
    void *commit_arg;
    struct em_task_desc *next; /* queue link */
} em_task_desc;

/* Runs d on the calling thread with the context's memory manager and local directory; fills
 * status, errmsg, result / map_status, metrics. A kill asked through d->kill (before or while
 * it runs) ends it with EM_EKILLED ("task killed: <reason>"): the runner checks before
 * computing and at every record the pipeline hands to the shuffle writer or result function. */
void em__run_task(em_context *ctx, em_task_desc *d);
/* 1 when this process was started as an executor (EMBER_EXECUTOR_MODE=1; executor_process.c,
 * whose constructor then runs the executor instead of main()). Referenced by the context so
 * that the constructor is linked into every application, static libember included. */
int em__executor_mode(void);

/* The start of a task on an executor (any thread; the DAG scheduler reads it concurrently). */
static inline void em__task_desc_set_started(em_task_desc *d, int64_t now_ms, int exec_id)
{
    __atomic_store_n(&d->running_exec, exec_id, __ATOMIC_RELAXED);
    __atomic_store_n(&d->started_ms, now_ms, __ATOMIC_RELEASE);
}
/* When d started (0: still queued) and where (*exec_id, -1: local or unknown). */
static inline int64_t em__task_desc_started(const em_task_desc *d, int *exec_id)
{
    int64_t t = __atomic_load_n(&d->started_ms, __ATOMIC_ACQUIRE);
    if (exec_id) *exec_id = __atomic_load_n(&d->running_exec, __ATOMIC_RELAXED);
    return t;
}

/* Frees what the runner filled (result, errmsg, map_status) and d itself. */
void em__task_desc_free(em_task_desc *d);

#endif
