/* The executor's unified memory manager (src/storage/memory.h): one pool of
 * total * fraction bytes shared by execution (shuffle buffers, hash tables, sort buffers) and
 * storage (cached blocks), in the manner of Spark's UnifiedMemoryManager.
 *
 * Rules:
 *   - Execution: a task may hold up to max_exec / N bytes, where N is the number of tasks that
 *     hold execution memory or are requesting it right now, and max_exec = pool minus the
 *     storage memory execution may not reclaim (min(storage_used, storage_region)). A request
 *     beyond the share or beyond free memory is granted in part (possibly 0): the caller
 *     spills. Nobody blocks.
 *   - When execution needs memory that storage has borrowed (storage above storage_region =
 *     pool * storage_fraction), the evict callback is asked to drop cached blocks; it runs
 *     with mm->mu released (it calls em_memory_release_storage).
 *   - Storage may use any free memory of the pool (borrowing from execution); to make room it
 *     may evict other cached blocks through the same callback. It never takes memory that
 *     execution holds.
 *
 * Thread rule: any thread; all state guarded by mm->mu. Called by the shuffle writer/reader,
 * the RDD operators' spillable structures (execution) and the block manager (storage).
 */
#include "storage/memory.h"

#include "base/base.h"

#include <pthread.h>
#include <string.h>

typedef struct mm_task {
    int64_t task_id;
    int64_t held;
    int requesting; /* acquire calls in flight for this task */
} mm_task;

struct em_memory_manager {
    pthread_mutex_t mu;
    int64_t pool;           /* total * fraction */
    int64_t storage_region; /* pool * storage_fraction: immune to eviction by execution */
    int64_t exec_used, storage_used;
    mm_task *tasks; /* tasks with held > 0 or requesting > 0 */
    size_t ntasks, cap;
    int64_t (*evict)(void *ctx, int64_t need);
    void *evict_ctx;
};

em_memory_manager *em_memory_manager_new(int64_t total, double fraction, double storage_fraction)
{
    em_memory_manager *mm = em__calloc(1, sizeof *mm);
    if (!mm) return NULL;
    if (fraction <= 0 || fraction > 1) fraction = 1;
    if (storage_fraction < 0 || storage_fraction > 1) storage_fraction = 0.5;
    if (total < 0) total = 0;
    pthread_mutex_init(&mm->mu, NULL);
    mm->pool = (int64_t)((double)total * fraction);
    mm->storage_region = (int64_t)((double)mm->pool * storage_fraction);
    return mm;
}

void em_memory_manager_free(em_memory_manager *mm)
{
    if (!mm) return;
    pthread_mutex_destroy(&mm->mu);
    em__free(mm->tasks);
    em__free(mm);
}

/* mm->mu held. NULL when absent (and create is false) or out of memory. */
static mm_task *find_task(em_memory_manager *mm, int64_t task_id, bool create)
{
    for (size_t i = 0; i < mm->ntasks; i++)
        if (mm->tasks[i].task_id == task_id) return &mm->tasks[i];
    if (!create) return NULL;
    if (mm->ntasks == mm->cap) {
        size_t cap = mm->cap ? mm->cap * 2 : 8;
        mm_task *t = em__realloc(mm->tasks, cap * sizeof *t);
        if (!t) return NULL;
        mm->tasks = t;
        mm->cap = cap;
    }
    mm_task *t = &mm->tasks[mm->ntasks++];
    *t = (mm_task){.task_id = task_id};
    return t;
}

/* mm->mu held: drops the entry of a task that neither holds nor requests memory. */
static void forget_if_idle(em_memory_manager *mm, int64_t task_id)
{
    for (size_t i = 0; i < mm->ntasks; i++) {
        mm_task *t = &mm->tasks[i];
        if (t->task_id != task_id) continue;
        if (t->held <= 0 && t->requesting <= 0) mm->tasks[i] = mm->tasks[--mm->ntasks];
        return;
    }
}

int64_t em_memory_acquire_execution(em_memory_manager *mm, int64_t task_id, int64_t want)
{
    if (!mm || want <= 0) return 0;
    pthread_mutex_lock(&mm->mu);
    mm_task *t = find_task(mm, task_id, true);
    if (!t) {
        pthread_mutex_unlock(&mm->mu);
        return 0;
    }
    t->requesting++;
    int64_t free_now = mm->pool - mm->exec_used - mm->storage_used;
    int64_t reclaimable = mm->storage_used - mm->storage_region;
    if (want > free_now && reclaimable > 0 && mm->evict) {
        int64_t need = EM_MIN(want - free_now, reclaimable);
        int64_t (*evict)(void *, int64_t) = mm->evict;
        void *ctx = mm->evict_ctx;
        pthread_mutex_unlock(&mm->mu);
        evict(ctx, need); /* calls em_memory_release_storage */
        pthread_mutex_lock(&mm->mu);
        t = find_task(mm, task_id, false); /* the array may have moved */
    }
    int64_t n = (int64_t)mm->ntasks;
    int64_t max_exec = mm->pool - EM_MIN(mm->storage_used, mm->storage_region);
    int64_t share = max_exec / (n > 0 ? n : 1) - t->held;
    int64_t free_mem = mm->pool - mm->exec_used - mm->storage_used;
    int64_t grant = EM_MIN(want, EM_MIN(share, free_mem));
    if (grant < 0) grant = 0;
    t->held += grant;
    mm->exec_used += grant;
    t->requesting--;
    forget_if_idle(mm, task_id);
    pthread_mutex_unlock(&mm->mu);
    return grant;
}

void em_memory_release_execution(em_memory_manager *mm, int64_t task_id, int64_t bytes)
{
    if (!mm || bytes <= 0) return;
    pthread_mutex_lock(&mm->mu);
    mm_task *t = find_task(mm, task_id, false);
    if (t) {
        int64_t n = EM_MIN(bytes, t->held);
        t->held -= n;
        mm->exec_used -= n;
        forget_if_idle(mm, task_id);
    }
    pthread_mutex_unlock(&mm->mu);
}

void em_memory_release_all_execution(em_memory_manager *mm, int64_t task_id)
{
    if (!mm) return;
    pthread_mutex_lock(&mm->mu);
    mm_task *t = find_task(mm, task_id, false);
    if (t) {
        mm->exec_used -= t->held;
        t->held = 0;
        forget_if_idle(mm, task_id);
    }
    pthread_mutex_unlock(&mm->mu);
}

int em_memory_acquire_storage(em_memory_manager *mm, int64_t bytes)
{
    if (!mm || bytes < 0) return 0;
    pthread_mutex_lock(&mm->mu);
    if (bytes > mm->pool - mm->exec_used) { /* could never fit, even after evicting all */
        pthread_mutex_unlock(&mm->mu);
        return 0;
    }
    int64_t free_mem = mm->pool - mm->exec_used - mm->storage_used;
    if (bytes > free_mem && mm->evict) {
        int64_t (*evict)(void *, int64_t) = mm->evict;
        void *ctx = mm->evict_ctx;
        pthread_mutex_unlock(&mm->mu);
        evict(ctx, bytes - free_mem);
        pthread_mutex_lock(&mm->mu);
        free_mem = mm->pool - mm->exec_used - mm->storage_used;
    }
    int ok = bytes <= free_mem;
    if (ok) mm->storage_used += bytes;
    pthread_mutex_unlock(&mm->mu);
    return ok;
}

void em_memory_release_storage(em_memory_manager *mm, int64_t bytes)
{
    if (!mm || bytes <= 0) return;
    pthread_mutex_lock(&mm->mu);
    mm->storage_used -= EM_MIN(bytes, mm->storage_used);
    pthread_mutex_unlock(&mm->mu);
}

void em_memory_set_evictor(em_memory_manager *mm, int64_t (*evict)(void *ctx, int64_t need),
                           void *ctx)
{
    if (!mm) return;
    pthread_mutex_lock(&mm->mu);
    mm->evict = evict;
    mm->evict_ctx = ctx;
    pthread_mutex_unlock(&mm->mu);
}

int64_t em_memory_execution_pool(const em_memory_manager *mm)
{
    return mm ? mm->pool : 0;
}

int64_t em_memory_execution_used(em_memory_manager *mm)
{
    if (!mm) return 0;
    pthread_mutex_lock(&mm->mu);
    int64_t n = mm->exec_used;
    pthread_mutex_unlock(&mm->mu);
    return n;
}

int64_t em_memory_storage_used(em_memory_manager *mm)
{
    if (!mm) return 0;
    pthread_mutex_lock(&mm->mu);
    int64_t n = mm->storage_used;
    pthread_mutex_unlock(&mm->mu);
    return n;
}
