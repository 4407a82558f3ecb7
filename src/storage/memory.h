/* The executor's memory manager: one budget (ember.executor.memory) split between execution
 * (shuffle buffers, hash tables, sort buffers — they spill when refused) and storage (cached
 * blocks — evicted LRU), in the manner of Spark's unified memory manager.
 *
 * Execution memory is shared fairly among the tasks that hold some: with N active tasks a task
 * may hold up to 1/N of the execution pool; a request beyond its share is partly or wholly
 * refused and the caller spills. Storage may borrow free execution memory; execution may take
 * back memory borrowed by storage down to the storage fraction (by evicting cached blocks
 * through the evict callback).
 *
 * Thread rule: any thread; guarded by mm->mu.
 */
#ifndef EMBER_STORAGE_MEMORY_H
#define EMBER_STORAGE_MEMORY_H

#include <stdint.h>

typedef struct em_memory_manager em_memory_manager;

/* total: the memory budget in bytes; fraction: part usable for execution + storage
 * (ember.memory.fraction); storage_fraction: part of that immune to eviction by execution. */
em_memory_manager *em_memory_manager_new(int64_t total, double fraction, double storage_fraction);
void em_memory_manager_free(em_memory_manager *mm);

/* Asks for up to want bytes of execution memory for task task_id; returns the bytes granted
 * (0..want). Never blocks for long. */
int64_t em_memory_acquire_execution(em_memory_manager *mm, int64_t task_id, int64_t want);
void em_memory_release_execution(em_memory_manager *mm, int64_t task_id, int64_t bytes);
/* Releases everything task_id still holds (end of the attempt). */
void em_memory_release_all_execution(em_memory_manager *mm, int64_t task_id);

/* Storage: true if bytes could be reserved for a cached block (may evict other blocks through
 * the callback set below). */
int em_memory_acquire_storage(em_memory_manager *mm, int64_t bytes);
void em_memory_release_storage(em_memory_manager *mm, int64_t bytes);
/* The storage layer's eviction hook: frees at least `need` bytes of cached blocks if it can,
 * returns bytes freed. Called with mm->mu not held. */
void em_memory_set_evictor(em_memory_manager *mm, int64_t (*evict)(void *ctx, int64_t need),
                           void *ctx);

/* The execution pool size, and the bytes in use. */
int64_t em_memory_execution_pool(const em_memory_manager *mm);
int64_t em_memory_execution_used(em_memory_manager *mm);
int64_t em_memory_storage_used(em_memory_manager *mm);

#endif
