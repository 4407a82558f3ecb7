/* Tests for src/deploy/placement.c: hand-made clusters with exact expected placements, then a
 * seeded randomized test checking every result against (a) invariants checked directly from
 * the inputs and (b) a step-at-a-time simulation of the master's round-robin / fill loop,
 * written independently of the closed-form code under test.
 */
#include "test.h"

#include "deploy/placement.h"

#include <ember/ember.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define BIG_MEM (1ull << 40)

/* Runs the placement and checks cores and executors per worker against expected arrays. */
static void expect(const em__place_worker *w, size_t n, int cpe, uint64_t mem, int wanted,
                   bool spread, const int *cores, const int *execs)
{
    em__place_slot out[16];
    for (size_t i = 0; i < n; i++) out[i] = (em__place_slot){-7, -7};
    int rc = em__place_executors(w, n, cpe, mem, wanted, spread, out);
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(out[i].cores == cores[i], "worker %zu cores %d, expected %d", i, out[i].cores,
                  cores[i]);
        CHECK_MSG(out[i].executors == execs[i], "worker %zu executors %d, expected %d", i,
                  out[i].executors, execs[i]);
        sum += cores[i];
    }
    CHECK_EQ_INT(rc, sum);
}

TEST(spread_vs_consolidate_two_core_executors)
{
    em__place_worker w[3] = {{4, BIG_MEM}, {4, BIG_MEM}, {4, BIG_MEM}};
    expect(w, 3, 2, 512, 6, true, (int[]){2, 2, 2}, (int[]){1, 1, 1});
    expect(w, 3, 2, 512, 6, false, (int[]){4, 2, 0}, (int[]){2, 1, 0});
}

TEST(whole_executors_only)
{
    em__place_worker w[3] = {{4, BIG_MEM}, {4, BIG_MEM}, {4, BIG_MEM}};
    /* 5 cores wanted, 2-core executors: 2 executors, never a 1-core remainder. */
    expect(w, 3, 2, 512, 5, true, (int[]){2, 2, 0}, (int[]){1, 1, 0});
    expect(w, 3, 2, 512, 5, false, (int[]){4, 0, 0}, (int[]){2, 0, 0});
    /* Worker with fewer free cores than one executor. */
    em__place_worker small[2] = {{1, BIG_MEM}, {3, BIG_MEM}};
    expect(small, 2, 2, 512, 100, true, (int[]){0, 2}, (int[]){0, 1});
}

TEST(spread_round_robin_order)
{
    em__place_worker w[3] = {{4, BIG_MEM}, {4, BIG_MEM}, {4, BIG_MEM}};
    expect(w, 3, 1, 0, 2, true, (int[]){1, 1, 0}, (int[]){1, 1, 0});
    expect(w, 3, 1, 0, 7, true, (int[]){3, 2, 2}, (int[]){3, 2, 2});
    /* Unequal workers: the small one fills up, the rest keep taking turns. */
    em__place_worker u[3] = {{1, BIG_MEM}, {6, BIG_MEM}, {4, BIG_MEM}};
    expect(u, 3, 1, 0, 9, true, (int[]){1, 4, 4}, (int[]){1, 4, 4});
    expect(u, 3, 1, 0, 10, true, (int[]){1, 5, 4}, (int[]){1, 5, 4});
    expect(u, 3, 1, 0, 10, false, (int[]){1, 6, 3}, (int[]){1, 6, 3});
}

TEST(memory_bound_worker_skipped)
{
    em__place_worker w[3] = {{4, 1024}, {4, 256}, {4, 1024}};
    expect(w, 3, 2, 512, 12, true, (int[]){4, 0, 4}, (int[]){2, 0, 2});
    expect(w, 3, 2, 512, 12, false, (int[]){4, 0, 4}, (int[]){2, 0, 2});
    /* Memory, not cores, limits the executor count. */
    em__place_worker m[1] = {{8, 1024}};
    expect(m, 1, 1, 512, 8, true, (int[]){2}, (int[]){2});
    expect(m, 1, 1, 1025, 8, true, (int[]){0}, (int[]){0});
    expect(m, 1, 1, 1024, 8, false, (int[]){1}, (int[]){1});
}

TEST(worker_with_cores_but_no_memory)
{
    em__place_worker w[2] = {{8, 0}, {2, 600}};
    expect(w, 2, 1, 512, 8, true, (int[]){0, 1}, (int[]){0, 1});
    expect(w, 2, 0, 512, 8, true, (int[]){0, 2}, (int[]){0, 1});
    /* Memory per executor 0: memory never limits. */
    expect(w, 2, 1, 0, 8, false, (int[]){8, 0}, (int[]){8, 0});
}

TEST(cores_per_executor_zero_one_executor_per_worker)
{
    em__place_worker w[3] = {{4, 1024}, {2, 1024}, {8, 1024}};
    /* Spread one core at a time: 1,1,1 / 2,2,2 / 3,-,3 / 4,-,4. */
    expect(w, 3, 0, 512, 10, true, (int[]){4, 2, 4}, (int[]){1, 1, 1});
    expect(w, 3, 0, 512, 7, true, (int[]){3, 2, 2}, (int[]){1, 1, 1});
    expect(w, 3, 0, 512, 7, false, (int[]){4, 2, 1}, (int[]){1, 1, 1});
    expect(w, 3, 0, 512, INT_MAX, true, (int[]){4, 2, 8}, (int[]){1, 1, 1});
    expect(w, 3, 0, 512, INT_MAX, false, (int[]){4, 2, 8}, (int[]){1, 1, 1});
    /* Memory for one executor only is enough: it grows in cores, not memory. */
    expect(w, 3, 0, 1024, INT_MAX, true, (int[]){4, 2, 8}, (int[]){1, 1, 1});
    em__place_worker lowmem[2] = {{4, 100}, {4, 1024}};
    expect(lowmem, 2, 0, 512, INT_MAX, true, (int[]){0, 4}, (int[]){0, 1});
}

TEST(wanted_zero_and_no_workers)
{
    em__place_worker w[2] = {{4, BIG_MEM}, {4, BIG_MEM}};
    expect(w, 2, 1, 512, 0, true, (int[]){0, 0}, (int[]){0, 0});
    expect(w, 2, 0, 512, 0, false, (int[]){0, 0}, (int[]){0, 0});
    CHECK_EQ_INT(em__place_executors(NULL, 0, 2, 512, 10, true, NULL), 0);
    CHECK_EQ_INT(em__place_executors(NULL, 0, 0, 512, 10, false, NULL), 0);
    /* Negative free cores (a caller's bookkeeping slip) counts as none. */
    em__place_worker neg[2] = {{-3, BIG_MEM}, {2, BIG_MEM}};
    expect(neg, 2, 1, 512, 10, true, (int[]){0, 2}, (int[]){0, 2});
}

TEST(invalid_arguments)
{
    em__place_worker w[1] = {{4, BIG_MEM}};
    em__place_slot out[1];
    CHECK_EQ_INT(em__place_executors(w, 1, -1, 512, 4, true, out), EM_EINVAL);
    CHECK(strstr(em_errmsg(), "cores per executor") != NULL);
    CHECK_EQ_INT(em__place_executors(w, 1, 1, 512, -4, true, out), EM_EINVAL);
    CHECK_EQ_INT(em__place_executors(NULL, 1, 1, 512, 4, true, out), EM_EINVAL);
    CHECK_EQ_INT(em__place_executors(w, 1, 1, 512, 4, true, NULL), EM_EINVAL);
}

TEST(huge_values_no_overflow)
{
    /* Memory near UINT64_MAX, cores near INT_MAX: closed form, no per-core loop. */
    em__place_worker w[2] = {{INT_MAX, UINT64_MAX}, {INT_MAX, UINT64_MAX}};
    expect(w, 2, 1, UINT64_MAX / 2, INT_MAX, true, (int[]){2, 2}, (int[]){2, 2});
    expect(w, 2, 0, UINT64_MAX, INT_MAX, true, (int[]){INT_MAX / 2 + 1, INT_MAX / 2},
           (int[]){1, 1});
    expect(w, 2, 0, 1, INT_MAX, false, (int[]){INT_MAX, 0}, (int[]){1, 0});
    /* 7-core executors: INT_MAX / 7 of them in all, split as evenly as round-robin does. */
    int units = INT_MAX / 7;
    expect(w, 2, 7, 1, INT_MAX, true, (int[]){(units + 1) / 2 * 7, units / 2 * 7},
           (int[]){(units + 1) / 2, units / 2});
}

/* ---- randomized ------------------------------------------------------------------------------ */
static uint64_t rng_state;
static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rng_int(int lo, int hi)
{
    return lo + (int)(rng() % (uint64_t)(hi - lo + 1));
}

/* Can worker i take one more unit given what it already has (ignoring the wanted count)? */
static bool can_take(const em__place_worker *w, const em__place_slot *s, int cpe, uint64_t mem)
{
    int step = cpe > 0 ? cpe : 1;
    if (w->free_cores - s->cores < step) return false;
    bool new_executor = cpe > 0 || s->executors == 0;
    if (!new_executor) return true;
    return w->free_memory_mb - (uint64_t)s->executors * mem >= mem;
}

/* The master's loop, one unit at a time (small inputs only). */
static void simulate(const em__place_worker *w, size_t n, int cpe, uint64_t mem, int wanted,
                     bool spread, em__place_slot *out)
{
    int step = cpe > 0 ? cpe : 1;
    int left = wanted;
    for (size_t i = 0; i < n; i++) out[i] = (em__place_slot){0, 0};
    bool moved = true;
    while (moved) {
        moved = false;
        for (size_t i = 0; i < n; i++) {
            while (left >= step && can_take(&w[i], &out[i], cpe, mem)) {
                out[i].cores += step;
                out[i].executors = cpe > 0 ? out[i].executors + 1 : 1;
                left -= step;
                moved = true;
                if (spread) break;
            }
        }
    }
}

TEST(randomized_properties)
{
    rng_state = 20261122;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)rng_int(0, 10);
        em__place_worker w[16];
        for (size_t i = 0; i < n; i++) {
            w[i].free_cores = rng_int(0, 16);
            w[i].free_memory_mb = (uint64_t)rng_int(0, 16) * 256 + (uint64_t)rng_int(0, 1) * 100;
        }
        int cpe = rng_int(0, 5);
        uint64_t mem = rng_int(0, 4) == 0 ? 0 : (uint64_t)rng_int(1, 8) * 256;
        int wanted = rng_int(0, 9) == 0 ? INT_MAX : rng_int(0, 80);
        bool spread = rng_int(0, 1);
        em__place_slot out[16];
        int rc = em__place_executors(n ? w : NULL, n, cpe, mem, wanted, spread, n ? out : NULL);
        CHECK_MSG(rc >= 0, "iter %d rc %d", iter, rc);

        int total = 0, max_units = 0, last = -1;
        for (size_t i = 0; i < n; i++) {
            const em__place_slot *s = &out[i];
            CHECK_MSG(s->cores >= 0 && s->cores <= w[i].free_cores, "iter %d worker %zu", iter, i);
            CHECK_MSG((uint64_t)s->executors * mem <= w[i].free_memory_mb, "iter %d worker %zu",
                      iter, i);
            if (cpe > 0)
                CHECK_EQ_INT(s->executors * cpe, s->cores);
            else
                CHECK_EQ_INT(s->executors, s->cores > 0 ? 1 : 0);
            total += s->cores;
            int units = cpe > 0 ? s->executors : s->cores;
            if (units > max_units) max_units = units;
            if (s->cores > 0) last = (int)i;
        }
        CHECK_EQ_INT(rc, total);
        CHECK(total <= wanted);
        /* Maximality: if another unit is still wanted, no worker can take one. */
        int step = cpe > 0 ? cpe : 1;
        if (wanted - total >= step)
            for (size_t i = 0; i < n; i++)
                CHECK_MSG(!can_take(&w[i], &out[i], cpe, mem), "iter %d worker %zu not full", iter,
                          i);
        if (spread) {
            /* Workers not limited by resources differ from the busiest by at most one unit. */
            for (size_t i = 0; i < n; i++) {
                int units = cpe > 0 ? out[i].executors : out[i].cores;
                if (can_take(&w[i], &out[i], cpe, mem))
                    CHECK_MSG(units >= max_units - 1, "iter %d worker %zu has %d, max %d", iter, i,
                              units, max_units);
            }
        } else {
            /* Fill in order: workers before the last used one are full, after it empty. */
            for (int i = 0; i < last; i++)
                CHECK_MSG(!can_take(&w[i], &out[i], cpe, mem), "iter %d worker %d not full", iter,
                          i);
        }
        em__place_slot ref[16];
        simulate(w, n, cpe, mem, wanted, spread, ref);
        for (size_t i = 0; i < n; i++) {
            CHECK_MSG(out[i].cores == ref[i].cores && out[i].executors == ref[i].executors,
                      "iter %d worker %zu: got %d/%d, simulation %d/%d", iter, i, out[i].cores,
                      out[i].executors, ref[i].cores, ref[i].executors);
        }
    }
}
