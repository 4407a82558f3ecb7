/* Executor placement for the standalone master: which workers get how many of one application's
 * executors. A pure function over plain arrays (no I/O, no threads, no allocation), so the
 * master calls it under its own lock and tests drive it with hand-made clusters.
 * Thread rule: any thread; pure. The algorithm is described in src/deploy/placement.c.
 */
#ifndef EMBER_DEPLOY_PLACEMENT_H
#define EMBER_DEPLOY_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One usable worker as the master sees it: resources not yet given to executors. The caller
 * passes only ALIVE workers. Negative free_cores counts as 0. */
typedef struct em__place_worker {
    int free_cores;
    uint64_t free_memory_mb;
} em__place_worker;

/* The placement on one worker: cores granted and executors to launch there. The memory to
 * reserve is executors * memory_per_executor_mb. */
typedef struct em__place_slot {
    int cores;
    int executors;
} em__place_slot;

/* Places one application's executors on workers[0..n). cores_per_executor > 0: executors of
 * exactly that many cores; 0: at most one executor per worker, taking as many of the worker's
 * free cores as the application still wants (Spark with spark.executor.cores unset).
 * memory_per_executor_mb may be 0 (memory never limits). cores_wanted: the application's
 * total-cores cap minus cores already granted. spread_out: ember.deploy.spreadOut.
 * Fills out[0..n) (every slot written) and returns the total cores assigned (>= 0), or
 * EM_EINVAL (with a message) for negative cores_per_executor or cores_wanted, or NULL arrays
 * with n > 0. Guarantees: per worker, cores <= free_cores and executors * memory <= free
 * memory; the total <= cores_wanted; only whole executors. Any thread; pure. */
int em__place_executors(const em__place_worker *workers, size_t n, int cores_per_executor,
                        uint64_t memory_per_executor_mb, int cores_wanted, bool spread_out,
                        em__place_slot *out);

#endif
