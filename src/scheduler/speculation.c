/* Which running tasks are stragglers worth a speculative copy (ember.speculation): the pure
 * rule the DAG scheduler applies every ember.speculation.interval to each running stage
 * attempt, after Spark's TaskSetManager.checkSpeculatableTasks. No state, no clock. */
#include "scheduler/scheduler.h"

#include <math.h>
#include <stdlib.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

bool em__speculation_threshold(int64_t *durations, int num_succeeded, int num_tasks,
                               double quantile, double multiplier, int64_t min_runtime_ms,
                               int64_t *threshold_ms)
{
    if (num_tasks <= 0 || num_succeeded <= 0) return false;
    int min_finished = (int)floor(quantile * num_tasks);
    if (min_finished < 1) min_finished = 1;
    if (num_succeeded < min_finished) return false;
    qsort(durations, (size_t)num_succeeded, sizeof *durations, cmp_i64);
    /* The median as Spark takes it: the middle element of the sorted run times (the upper
     * one of the two middles for an even count). */
    double median = (double)durations[num_succeeded / 2];
    double t = multiplier * median;
    int64_t threshold = t > (double)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)t;
    *threshold_ms = threshold > min_runtime_ms ? threshold : min_runtime_ms;
    return true;
}
