/* The running task attempt (struct em_task): what the engine's layers and user functions know
 * about the task they run in. Created by the executor's task runner for one attempt and used
 * only by the thread running that attempt.
 *
 * Layers below the scheduler (shuffle, storage, rdd) read it for the memory manager, the local
 * directory for spill and shuffle files, the configuration and the metrics they update.
 *
 * Two hooks reach beyond the task thread: can_commit (rdd/output.c asks the driver's commit
 * coordinator whether this attempt may commit its output) and kill (another thread asks the
 * attempt to stop; the task runner checks it between records and fails with EM_EKILLED).
 */
#ifndef EMBER_BASE_TASK_H
#define EMBER_BASE_TASK_H

#include <ember/conf.h>
#include <ember/function.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct em_memory_manager;
struct em_block_fetcher;
struct em_shared;
struct em_acc_updates;

/* Counters one task attempt accumulates; handed back to the scheduler with the task's
 * completion (em_task_desc.metrics), for the listener bus and UI of a later issue. */
typedef struct em_task_metrics {
    int64_t records_read, bytes_read; /* input sources */
    int64_t shuffle_records_written, shuffle_bytes_written;
    int64_t shuffle_records_read, shuffle_bytes_read;
    int64_t spill_count, spill_bytes; /* bytes written to spill files */
    int64_t peak_execution_memory;
    int64_t records_out;
} em_task_metrics;

/* A partition a task put in its executor's block store. */
typedef struct em_cached_block {
    int rdd_id, partition;
    int64_t bytes;
} em_cached_block;

/* A request to kill a running task attempt (cooperative, like Spark's InterruptibleIterator):
 * owned by whoever owns the attempt's description (executor.h: em_task_desc.kill), so that a
 * backend thread may set it while the task thread runs. state: 0 running, 1 reason being
 * written, 2 killed (reason complete). Any thread. */
typedef struct em_task_kill {
    atomic_int state;
    char reason[256];
} em_task_kill;

/* Asks the attempt to stop; the first reason wins. Any thread. */
static inline void em__task_kill(em_task_kill *k, const char *reason)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&k->state, &expected, 1)) return;
    size_t n = strlen(reason ? reason : "");
    if (n >= sizeof k->reason) n = sizeof k->reason - 1;
    memcpy(k->reason, reason ? reason : "", n);
    k->reason[n] = '\0';
    atomic_store_explicit(&k->state, 2, memory_order_release);
}

/* Whether a kill was asked (and its reason is readable). Any thread; cheap enough per record. */
static inline bool em__task_kill_requested(em_task_kill *k)
{
    return k && atomic_load_explicit(&k->state, memory_order_acquire) == 2;
}

struct em_task {
    int64_t task_id; /* unique in the application */
    int stage_id, stage_attempt, partition, attempt;
    const em_conf *conf;
    struct em_memory_manager *memory; /* the executor's memory manager */
    const char *local_dir;            /* executor's local directory: shuffle and spill files */
    int exec_id; /* the executor running the task (0: the driver's own, local mode) */
    struct em_block_fetcher *fetcher; /* the process's shuffle block client; NULL in local mode */
    struct em_shared *shared;         /* broadcast values, accumulator definitions */
    struct em_acc_updates *acc;       /* this attempt's accumulator updates (created on use) */
    em_task_metrics metrics;
    /* partitions this attempt put in the block store (reported to the driver's block map) */
    em_cached_block cached[4];
    int num_cached;
    /* A map output this attempt could not read (missing, corrupt, unreachable): the DAG
     * scheduler unregisters it and runs its map task again (a fetch failure). */
    struct {
        bool set;
        int shuffle_id, map_id, exec_id;
    } fetch_failed;
    char errmsg[1024]; /* set by em_task_fail */
    int failed;        /* em_task_fail was called */
    /* Output commit: 0 when this attempt may commit its partition's output, EM_ECOMMITDENIED
     * (em_errmsg set) when another attempt did or the driver cannot be asked. NULL: always
     * allowed (tests, no coordinator). commit_arg is the hook's own. Task thread only. */
    int (*can_commit)(struct em_task *t);
    void *commit_arg;
    em_task_kill *kill; /* the attempt's kill request, or NULL (never killed) */
};

#endif
