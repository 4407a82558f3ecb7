/* Ember user functions: plain C functions plus an argument blob.
 *
 * A transformation takes a function pointer and an optional argument blob (arg, arg_len). The
 * blob is copied by value when the RDD is defined (it is the closure) and handed to every call
 * as `arg`; it must not hold pointers that need to be valid in another process. Actions
 * (foreach, reduce, fold, aggregate) copy their arg the same way when they start. Any C
 * function works, static ones too: executors run the same binary as the driver, so a function
 * is shipped as its offset from its module's load base plus the module's build id; an
 * executor running another binary refuses the task with a clear error.
 *
 * Every user function receives the running task (em_task) first. It returns 0 (or, for a
 * predicate, 1 / 0) on success and a negative value on failure; em_task_fail() records a
 * message and returns EM_EUSER, so `return em_task_fail(t, "bad record at %zu", i);` is the
 * idiom. A failed call fails the task attempt; the task is retried up to
 * ember.task.maxFailures times and then the job fails with that message.
 *
 * Output is appended to `out` with the em_put_* builders of record.h.
 * Thread rule: a function may run on any task thread, concurrently with itself.
 */
#ifndef EMBER_FUNCTION_H
#define EMBER_FUNCTION_H

#include "record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The running task attempt, as seen by user functions. */
typedef struct em_task em_task;

/* An iterator over the records of a partition (mapPartitions, foreachPartition). */
typedef struct em_iter em_iter;

/* EM_ROW with *out set (valid until the next call), EM_DONE at the end, or a negative error
 * (the task then fails; return it). */
int em_iter_next(em_iter *it, em_value *out);

/* map, flatMap, mapValues, flatMapValues, keyBy, sortBy keys, createCombiner: called once per
 * input value; appends its output records to out (map-like operators require exactly one). */
typedef int (*em_map_fn)(em_task *t, em_value in, em_records *out, const void *arg);

/* filter: returns 1 to keep, 0 to drop, negative on failure. */
typedef int (*em_pred_fn)(em_task *t, em_value in, const void *arg);

/* reduce, fold, reduceByKey, mergeValue, mergeCombiners: combines a and b into exactly one
 * output value appended to out. Must be associative (and commutative for the *ByKey forms). */
typedef int (*em_reduce_fn)(em_task *t, em_value a, em_value b, em_records *out, const void *arg);

/* mapPartitions, mapPartitionsWithIndex (em_task_partition gives the index). */
typedef int (*em_partition_fn)(em_task *t, em_iter *in, em_records *out, const void *arg);

/* foreach: called once per value. */
typedef int (*em_each_fn)(em_task *t, em_value in, const void *arg);

/* foreachPartition. */
typedef int (*em_each_partition_fn)(em_task *t, em_iter *in, const void *arg);

/* The index of the partition this task computes. */
int em_task_partition(const em_task *t);
/* The stage id, and the attempt number of this task (0 for the first attempt). */
int em_task_stage(const em_task *t);
int em_task_attempt(const em_task *t);

/* Records a failure message for this task attempt (printf-style) and returns EM_EUSER. */
int em_task_fail(em_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
