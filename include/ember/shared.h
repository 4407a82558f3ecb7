/* Shared variables: broadcast variables and accumulators, as in Spark.
 *
 * A broadcast variable is a read-only blob the driver ships once to each executor (not once
 * per task): create it on the driver, put its id (a plain integer, so the closure stays
 * pointer-free) in a function's argument blob, and read it in the task with
 * em_broadcast_value. Executors fetch it in chunks the first time a task asks and keep it for
 * the application's life.
 *
 *     em_broadcast *table;
 *     em_broadcast_create(ctx, bytes, len, &table);
 *     uint64_t id = em_broadcast_id(table);
 *     em_rdd *m = em_rdd_map(words, lookup, &id, sizeof id);   // lookup reads it:
 *     //   const void *p; size_t n; em_broadcast_value(t, *(const uint64_t *)arg, &p, &n);
 *
 * An accumulator is a value tasks add to and only the driver reads: int64 and float64 sums,
 * or any value with a user merge function (associative and commutative, zero its identity).
 * Each task adds into a private copy that travels back with the task's result; the driver
 * merges it when the task succeeds. Updates made in an action's tasks (foreach, reduce, ...)
 * count exactly once per partition, even when a task is retried or runs twice; updates made
 * in transformations count once per successful run of the task that made them (a recomputed
 * partition adds again), as in Spark.
 *
 * Thread rule: create / destroy / read values on driver threads; em_broadcast_value and the
 * em_accumulator_add* functions from task threads (user functions).
 */
#ifndef EMBER_SHARED_H
#define EMBER_SHARED_H

#include "context.h"
#include "function.h"
#include "record.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- broadcast variables ------------------------------------------------------------------- */
typedef struct em_broadcast em_broadcast;

/* Copies len bytes into a new broadcast variable owned by ctx (freed at em_context_stop, or
 * earlier by em_broadcast_destroy). 0, EM_ENOMEM, EM_ESTATE (context stopped). */
int em_broadcast_create(em_context *ctx, const void *data, size_t len, em_broadcast **out);
/* The id tasks name the variable by. */
uint64_t em_broadcast_id(const em_broadcast *b);
/* In a task: the variable's bytes (valid for the rest of the task, read-only). 0, or
 * EM_ENOENT (no such broadcast: destroyed, or an id that was never created), EM_EFETCH (the
 * executor could not get it from the driver). */
int em_broadcast_value(em_task *t, uint64_t id, const void **data, size_t *len);
/* Forgets the variable on the driver (tasks started later cannot read it). NULL: no-op. */
void em_broadcast_destroy(em_broadcast *b);

/* ---- accumulators -------------------------------------------------------------------------- */
typedef struct em_accumulator em_accumulator;

/* An int64 (wrapping) or float64 sum starting at 0, named for logs and the UI (copied; may be
 * NULL). Owned by ctx. 0, EM_ENOMEM, EM_ESTATE. */
int em_accumulator_create_int64(em_context *ctx, const char *name, em_accumulator **out);
int em_accumulator_create_float64(em_context *ctx, const char *name, em_accumulator **out);
/* A value accumulator: starts at zero (copied); merge(t, a, b, out, arg) combines two values
 * into exactly one; arg is copied like a transformation's closure. */
int em_accumulator_create(em_context *ctx, const char *name, em_value zero, em_reduce_fn merge,
                          const void *arg, size_t arg_len, em_accumulator **out);
uint64_t em_accumulator_id(const em_accumulator *a);

/* In a task: adds to the task's copy. 0, EM_ENOENT (unknown id), ETYPE (the accumulator has
 * another kind), or the merge function's error. */
int em_accumulator_add_int64(em_task *t, uint64_t id, int64_t v);
int em_accumulator_add_float64(em_task *t, uint64_t id, double v);
int em_accumulator_add(em_task *t, uint64_t id, em_value v);

/* On the driver: the value merged so far (after the actions that updated it returned). */
int64_t em_accumulator_int64(const em_accumulator *a);
double em_accumulator_float64(const em_accumulator *a);
/* A value accumulator's value as one record in *out (em_records_free it). 0 or EM_ENOMEM. */
int em_accumulator_value(const em_accumulator *a, em_records **out);

#ifdef __cplusplus
}
#endif
#endif
