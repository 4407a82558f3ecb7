/* Executor placement: decides, for one application, how many cores and executors each usable
 * worker gets. Owns no state. Thread rule: any thread; pure (no I/O, no allocation, no locks).
 * Called by the master's scheduling pass (src/deploy/master.c, once wired) and by tests.
 *
 * The result is the one Spark's Master.scheduleExecutorsOnWorkers reaches, computed in closed
 * form instead of one step at a time:
 *   - A "unit" is one executor (cores_per_executor = cpe > 0) or one core (cpe = 0, where a
 *     worker hosts at most one executor that grows a core at a time).
 *   - Capacity of a worker, in units: cpe > 0: min(free_cores / cpe, free_memory / memory)
 *     (memory 0: cores only); cpe = 0: free_cores if it has a core and the memory for one
 *     executor, else 0. A worker with capacity 0 gets nothing.
 *   - Units to hand out: T = min(cores_wanted / step, sum of capacities), step = max(cpe, 1),
 *     so the total never exceeds cores_wanted and only whole executors are launched.
 *   - spread_out (default, ember.deploy.spreadOut=true): round-robin one unit per pass over the
 *     workers in array order, skipping full ones, until T is given out. Equivalently, with L
 *     the largest level such that sum min(cap_i, L) <= T, every worker gets min(cap_i, L) and
 *     the leftover goes one unit each to the first workers (in array order) with cap_i > L.
 *     L is found by binary search: O(n log max_cap), whatever the core counts.
 *   - consolidate (spread_out false): fill worker 0 to its capacity, then worker 1, ..., until
 *     T is given out.
 * Not handled here: an executor-count limit (dynamic allocation) and worker ordering; the
 * caller orders workers (Spark sorts by free cores, most first) and caps cores_wanted.
 */
#include "deploy/placement.h"

#include "base/base.h"

/* Units worker w can take; see the head comment. */
static int64_t place_capacity(const em__place_worker *w, int cpe, uint64_t mem)
{
    int64_t cores = w->free_cores > 0 ? w->free_cores : 0;
    if (cpe == 0) return (cores >= 1 && w->free_memory_mb >= mem) ? cores : 0;
    int64_t cap = cores / cpe;
    if (mem > 0) {
        uint64_t by_mem = w->free_memory_mb / mem;
        if (by_mem < (uint64_t)cap) cap = (int64_t)by_mem;
    }
    return cap;
}

/* sum over workers of min(cap_i, level). */
static int64_t place_filled(const em__place_worker *workers, size_t n, int cpe, uint64_t mem,
                            int64_t level)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t cap = place_capacity(&workers[i], cpe, mem);
        sum += cap < level ? cap : level;
    }
    return sum;
}

int em__place_executors(const em__place_worker *workers, size_t n, int cores_per_executor,
                        uint64_t memory_per_executor_mb, int cores_wanted, bool spread_out,
                        em__place_slot *out)
{
    if (cores_per_executor < 0)
        return em__set_error(EM_EINVAL, "executor placement: cores per executor %d is negative",
                             cores_per_executor);
    if (cores_wanted < 0)
        return em__set_error(EM_EINVAL, "executor placement: cores wanted %d is negative",
                             cores_wanted);
    if (n > 0 && (!workers || !out))
        return em__set_error(EM_EINVAL, "executor placement: no worker or result array");

    int cpe = cores_per_executor;
    uint64_t mem = memory_per_executor_mb;
    int64_t step = cpe > 0 ? cpe : 1;
    int64_t total_cap = 0, max_cap = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t cap = place_capacity(&workers[i], cpe, mem);
        total_cap += cap;
        if (cap > max_cap) max_cap = cap;
    }
    int64_t units = cores_wanted / step;
    if (units > total_cap) units = total_cap;

    /* Units per worker: level L for everyone (spread) or a greedy fill (consolidate). */
    int64_t level = 0, leftover = units;
    if (spread_out) {
        int64_t lo = 0, hi = max_cap; /* invariant: filled(lo) <= units */
        while (lo < hi) {
            int64_t mid = lo + (hi - lo + 1) / 2;
            if (place_filled(workers, n, cpe, mem, mid) <= units)
                lo = mid;
            else
                hi = mid - 1;
        }
        level = lo;
        leftover = units - place_filled(workers, n, cpe, mem, level);
    }
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t cap = place_capacity(&workers[i], cpe, mem), got;
        if (spread_out) {
            got = cap < level ? cap : level;
            if (cap > level && leftover > 0) {
                got++;
                leftover--;
            }
        } else {
            got = cap < leftover ? cap : leftover;
            leftover -= got;
        }
        /* got <= cap <= free_cores / step and total <= cores_wanted: both fit in an int. */
        out[i].cores = (int)(got * step);
        out[i].executors = cpe > 0 ? (int)got : (got > 0);
        total += got * step;
    }
    return (int)total;
}
