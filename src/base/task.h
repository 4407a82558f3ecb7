/* The running task attempt (struct em_task): what the engine's layers and user functions know
 * about the task they run in. Created by the executor's task runner for one attempt and used
 * only by the thread running that attempt.
 *
 * Layers below the scheduler (shuffle, storage, rdd) read it for the memory manager, the local
 * directory for spill and shuffle files, the configuration and the metrics they update.
 */
#ifndef EMBER_BASE_TASK_H
#define EMBER_BASE_TASK_H

#include <ember/conf.h>
#include <ember/function.h>
#include <stdint.h>

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
};

#endif
