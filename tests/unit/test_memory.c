/* Unit tests of the executor memory manager (src/storage/memory.c): pool size, fair share of
 * execution among active tasks, storage borrowing, eviction through the callback. Expected
 * numbers are worked out by hand from the rules in memory.h. */
#include "storage/memory.h"
#include "test.h"

#define MB (1024 * 1024)

TEST(pool_size_and_single_task)
{
    em_memory_manager *mm = em_memory_manager_new(100 * MB, 0.6, 0.5);
    CHECK(mm);
    CHECK_EQ_INT(em_memory_execution_pool(mm), 60 * MB);
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, 10 * MB), 10 * MB);
    CHECK_EQ_INT(em_memory_execution_used(mm), 10 * MB);
    /* More than the pool: only the rest. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, 100 * MB), 50 * MB);
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, 1), 0);
    em_memory_release_execution(mm, 1, 20 * MB);
    CHECK_EQ_INT(em_memory_execution_used(mm), 40 * MB);
    em_memory_release_all_execution(mm, 1);
    CHECK_EQ_INT(em_memory_execution_used(mm), 0);
    /* Releasing more than held is harmless. */
    em_memory_release_execution(mm, 1, 5 * MB);
    CHECK_EQ_INT(em_memory_execution_used(mm), 0);
    em_memory_manager_free(mm);
}

TEST(fair_share_among_tasks)
{
    em_memory_manager *mm = em_memory_manager_new(90 * MB, 1.0, 0.5);
    /* Task 1 alone may take up to the whole pool; it takes 30. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, 30 * MB), 30 * MB);
    /* Task 2: two active tasks, share 45 each. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 2, 60 * MB), 45 * MB);
    /* Task 1 may grow to 45: 15 more, though it asks for 40. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, 40 * MB), 15 * MB);
    /* Task 3: three tasks, share 30 each, but nothing is free. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 3, 10 * MB), 0);
    em_memory_release_execution(mm, 2, 25 * MB); /* task 2 holds 20 */
    /* Task 3 now: share 30 (three tasks), free 25. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 3, 40 * MB), 25 * MB);
    /* Task 1 holds 45 > 30: refused. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, MB), 0);
    em_memory_release_all_execution(mm, 1);
    em_memory_release_all_execution(mm, 2);
    /* Task 3 alone again: may take the rest of the pool. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 3, 90 * MB), 65 * MB);
    CHECK_EQ_INT(em_memory_execution_used(mm), 90 * MB);
    em_memory_manager_free(mm);
}

static int64_t g_evicted;
static em_memory_manager *g_mm;
static int64_t g_cached; /* bytes of "cached blocks" the fake storage layer holds */
static int64_t evict_cb(void *ctx, int64_t need)
{
    CHECK(ctx == (void *)&g_evicted);
    int64_t n = need < g_cached ? need : g_cached;
    g_cached -= n;
    g_evicted += n;
    em_memory_release_storage(g_mm, n); /* the manager's lock is not held here */
    return n;
}

TEST(storage_borrows_and_execution_evicts)
{
    em_memory_manager *mm = g_mm = em_memory_manager_new(100 * MB, 1.0, 0.4);
    em_memory_set_evictor(mm, evict_cb, &g_evicted);
    /* Storage borrows 70 (above its 40 region). */
    CHECK(em_memory_acquire_storage(mm, 70 * MB));
    g_cached = 70 * MB;
    CHECK_EQ_INT(em_memory_storage_used(mm), 70 * MB);
    /* Execution wants 50: 30 free, 20 evicted from the borrowed part. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 7, 50 * MB), 50 * MB);
    CHECK_EQ_INT(g_evicted, 20 * MB);
    CHECK_EQ_INT(em_memory_storage_used(mm), 50 * MB);
    /* More: only storage above 40 can be reclaimed (10), so 10 granted. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 7, 30 * MB), 10 * MB);
    CHECK_EQ_INT(em_memory_storage_used(mm), 40 * MB);
    CHECK_EQ_INT(g_evicted, 30 * MB);
    /* Storage cannot take execution's memory: the pool is full, so a new block needs evicting
     * other blocks (its own), which works up to what is cached. */
    CHECK(em_memory_acquire_storage(mm, 5 * MB));
    CHECK_EQ_INT(g_evicted, 35 * MB);
    CHECK_EQ_INT(em_memory_storage_used(mm), 40 * MB);
    /* A block larger than everything storage could ever get is refused. */
    CHECK(!em_memory_acquire_storage(mm, 41 * MB));
    em_memory_release_all_execution(mm, 7);
    CHECK(em_memory_acquire_storage(mm, 41 * MB));
    em_memory_manager_free(mm);
}

TEST(storage_without_evictor)
{
    em_memory_manager *mm = em_memory_manager_new(10 * MB, 1.0, 0.5);
    CHECK(em_memory_acquire_storage(mm, 8 * MB));
    CHECK(!em_memory_acquire_storage(mm, 3 * MB));
    /* Execution gets only the free part when nothing can be evicted. */
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, 5 * MB), 2 * MB);
    em_memory_release_storage(mm, 8 * MB);
    CHECK_EQ_INT(em_memory_storage_used(mm), 0);
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, 5 * MB), 5 * MB);
    em_memory_manager_free(mm);
}

TEST(null_and_zero_requests)
{
    CHECK_EQ_INT(em_memory_acquire_execution(NULL, 1, 10), 0);
    em_memory_manager *mm = em_memory_manager_new(MB, 0.5, 0.5);
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, 0), 0);
    CHECK_EQ_INT(em_memory_acquire_execution(mm, 1, -5), 0);
    CHECK_EQ_INT(em_memory_execution_pool(mm), MB / 2);
    em_memory_manager_free(mm);
    em_memory_manager_free(NULL);
}
