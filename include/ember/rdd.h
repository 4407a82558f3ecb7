/* Ember RDDs: sources, transformations and actions.
 *
 * An RDD is an immutable, partitioned collection of values, defined lazily by its lineage
 * (sources and transformations). Transformations return a new RDD and run nothing; actions run
 * a job and return a result. RDDs are owned by their context and freed by em_context_stop; the
 * user never frees one.
 *
 * Pair RDDs are RDDs of 2-tuples (key, value); the *ByKey operators, joins and sortByKey take
 * them. An element that is not a 2-tuple fails its task with a message naming the record; after
 * ember.task.maxFailures attempts the action returns EM_EJOB with that message.
 *
 * Transformations return NULL only on bad arguments or out of memory (see em_errmsg()).
 * Passing NULL as the parent RDD returns NULL, so a chain may be checked once at its end.
 * Actions return 0 or a negative code (EM_EJOB when a task failed past ember.task.maxFailures:
 * the message names the stage, partition, attempts and cause).
 *
 * num_partitions arguments: 0 means the default (the parent's partition count for narrow
 * operators, ember.default.parallelism for shuffles).
 *
 * Results that are sequences (collect, take, ...) are returned as a new em_records the caller
 * frees with em_records_free().
 */
#ifndef EMBER_RDD_H
#define EMBER_RDD_H

#include "context.h"
#include "function.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_rdd em_rdd;

/* A partitioner: which reduce partition a key goes to. Owned by the context. */
typedef struct em_partitioner em_partitioner;

/* ---- sources ------------------------------------------------------------------------------ */

/* The records of data (copied), cut into num_slices partitions of near-equal counts. */
em_rdd *em_parallelize(em_context *ctx, const em_records *data, int num_slices);

/* int64 values start, start+step, ... below end (above end for a negative step). */
em_rdd *em_range(em_context *ctx, int64_t start, int64_t end, int64_t step, int num_slices);

/* The lines of a text file, of every file of a directory, or of every file matching a glob,
 * as string values without their line ending ("\n" or "\r\n"). Files are split by size into at
 * least min_partitions partitions (0: 2, as in Spark); a line that crosses a split boundary is
 * read once, by the split where it starts. Paths are checked when the RDD is defined: a missing
 * or unreadable input returns NULL naming the path. */
em_rdd *em_text_file(em_context *ctx, const char *path, int min_partitions);

/* One (path, content) pair of strings per file of a file, directory or glob. */
em_rdd *em_whole_text_files(em_context *ctx, const char *path, int min_partitions);

/* Fixed-length binary records (bytes values of record_length bytes) of a file, directory or
 * glob. A file whose size is not a multiple of record_length is an error when the RDD is
 * defined (NULL, EM_EFORMAT naming the file and its size). */
em_rdd *em_binary_records(em_context *ctx, const char *path, int record_length);

/* ---- narrow transformations -------------------------------------------------------------- */

em_rdd *em_rdd_map(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len);
em_rdd *em_rdd_filter(em_rdd *r, em_pred_fn fn, const void *arg, size_t arg_len);
em_rdd *em_rdd_flat_map(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len);
em_rdd *em_rdd_map_partitions(em_rdd *r, em_partition_fn fn, const void *arg, size_t arg_len);
/* Same as map_partitions; the index is em_task_partition(t). Kept for Spark's vocabulary. */
em_rdd *em_rdd_map_partitions_with_index(em_rdd *r, em_partition_fn fn, const void *arg,
                                         size_t arg_len);
/* Pair RDDs: fn sees the value and emits one new value (mapValues) or any number
 * (flatMapValues); the key is kept, and so is the parent's partitioner. */
em_rdd *em_rdd_map_values(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len);
em_rdd *em_rdd_flat_map_values(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len);
/* (fn(x), x) for each x; fn emits exactly one value. */
em_rdd *em_rdd_key_by(em_rdd *r, em_map_fn fn, const void *arg, size_t arg_len);
em_rdd *em_rdd_keys(em_rdd *r);
em_rdd *em_rdd_values(em_rdd *r);
/* All partitions of a, then all of b. */
em_rdd *em_rdd_union(em_rdd *a, em_rdd *b);
/* A sample: Bernoulli with probability fraction, or Poisson(fraction) copies with
 * replacement; deterministic for a given seed. */
em_rdd *em_rdd_sample(em_rdd *r, bool with_replacement, double fraction, uint64_t seed);
/* Each partition as one list value. */
em_rdd *em_rdd_glom(em_rdd *r);
/* Pairs (x, index) with indexes 0..n-1 in partition order (runs a job to count partitions
 * when the RDD has more than one). */
em_rdd *em_rdd_zip_with_index(em_rdd *r);
/* Every pair (x, y), x of a and y of b, as 2-tuples. */
em_rdd *em_rdd_cartesian(em_rdd *a, em_rdd *b);
/* Fewer partitions: without shuffle, adjacent parent partitions are merged; with shuffle, the
 * records are redistributed evenly (repartition is coalesce with shuffle). */
em_rdd *em_rdd_coalesce(em_rdd *r, int num_partitions, bool shuffle);
em_rdd *em_rdd_repartition(em_rdd *r, int num_partitions);

/* ---- wide (shuffle) transformations ------------------------------------------------------ */

em_partitioner *em_hash_partitioner(em_context *ctx, int num_partitions);
/* Range partitioner over the keys of pair RDD r, boundaries by sampling (runs a job). */
em_partitioner *em_range_partitioner(em_rdd *r, int num_partitions, bool ascending);

em_rdd *em_rdd_partition_by(em_rdd *r, em_partitioner *p);
em_rdd *em_rdd_distinct(em_rdd *r, int num_partitions);
/* (k, [v...]) per key. The group of a huge key may be held on disk: read it with em_elems. */
em_rdd *em_rdd_group_by_key(em_rdd *r, int num_partitions);
em_rdd *em_rdd_reduce_by_key(em_rdd *r, em_reduce_fn fn, const void *arg, size_t arg_len,
                             int num_partitions);
em_rdd *em_rdd_fold_by_key(em_rdd *r, em_value zero, em_reduce_fn fn, const void *arg,
                           size_t arg_len, int num_partitions);
/* seq_op(acc, v) folds values into an accumulator started at zero; comb_op(acc, acc) merges. */
em_rdd *em_rdd_aggregate_by_key(em_rdd *r, em_value zero, em_reduce_fn seq_op, em_reduce_fn comb_op,
                                const void *arg, size_t arg_len, int num_partitions);
/* create(v) -> c, merge_value(c, v) -> c, merge_combiners(c, c) -> c. */
em_rdd *em_rdd_combine_by_key(em_rdd *r, em_map_fn create, em_reduce_fn merge_value,
                              em_reduce_fn merge_combiners, const void *arg, size_t arg_len,
                              int num_partitions);
/* Sorted by key (the encoded order) with a range partitioner: partition i holds keys before
 * those of partition i+1. */
em_rdd *em_rdd_sort_by_key(em_rdd *r, bool ascending, int num_partitions);
/* Sorted by fn(x) (fn emits one key); the values are the original elements. */
em_rdd *em_rdd_sort_by(em_rdd *r, em_map_fn key_fn, const void *arg, size_t arg_len, bool ascending,
                       int num_partitions);
/* Joins of pair RDDs: (k, (v, w)). Outer joins put null where a side has no match. */
em_rdd *em_rdd_join(em_rdd *a, em_rdd *b, int num_partitions);
em_rdd *em_rdd_left_outer_join(em_rdd *a, em_rdd *b, int num_partitions);
em_rdd *em_rdd_right_outer_join(em_rdd *a, em_rdd *b, int num_partitions);
em_rdd *em_rdd_full_outer_join(em_rdd *a, em_rdd *b, int num_partitions);
/* (k, ([v...], [w...])) for every key of a or b. */
em_rdd *em_rdd_cogroup(em_rdd *a, em_rdd *b, int num_partitions);
/* Elements of a not in b (with duplicates of a kept); pairs of a whose key is not in b. */
em_rdd *em_rdd_subtract(em_rdd *a, em_rdd *b, int num_partitions);
em_rdd *em_rdd_subtract_by_key(em_rdd *a, em_rdd *b, int num_partitions);
/* Distinct elements found in both. */
em_rdd *em_rdd_intersection(em_rdd *a, em_rdd *b, int num_partitions);

/* ---- persistence and information --------------------------------------------------------- */

/* Keeps computed partitions in the executors' memory (evicted LRU past the storage budget and
 * recomputed from lineage when needed again). Returns r. */
em_rdd *em_rdd_cache(em_rdd *r);
em_rdd *em_rdd_persist(em_rdd *r);
/* Drops the cached partitions. */
void em_rdd_unpersist(em_rdd *r);
int em_rdd_num_partitions(const em_rdd *r);
int em_rdd_id(const em_rdd *r);
/* A name shown by the UI and in messages; copied. Returns r. */
em_rdd *em_rdd_set_name(em_rdd *r, const char *name);

/* ---- actions ----------------------------------------------------------------------------- */

int em_rdd_collect(em_rdd *r, em_records **out);
int em_rdd_count(em_rdd *r, int64_t *out);
/* The first element; EM_EEMPTY if there is none. *out holds one record. */
int em_rdd_first(em_rdd *r, em_records **out);
/* The first n elements, scanning as few partitions as it can. */
int em_rdd_take(em_rdd *r, size_t n, em_records **out);
/* The n smallest (takeOrdered) or largest (top) elements, in that order. */
int em_rdd_take_ordered(em_rdd *r, size_t n, em_records **out);
int em_rdd_top(em_rdd *r, size_t n, em_records **out);
/* Reduces all elements with fn; EM_EEMPTY on an empty RDD. *out holds one record. */
int em_rdd_reduce(em_rdd *r, em_reduce_fn fn, const void *arg, size_t arg_len, em_records **out);
int em_rdd_fold(em_rdd *r, em_value zero, em_reduce_fn fn, const void *arg, size_t arg_len,
                em_records **out);
int em_rdd_aggregate(em_rdd *r, em_value zero, em_reduce_fn seq_op, em_reduce_fn comb_op,
                     const void *arg, size_t arg_len, em_records **out);
/* (key, count) pairs, sorted by key; (value, count) pairs for countByValue. */
int em_rdd_count_by_key(em_rdd *r, em_records **out);
int em_rdd_count_by_value(em_rdd *r, em_records **out);
/* The values of key in a pair RDD. */
int em_rdd_lookup(em_rdd *r, em_value key, em_records **out);
int em_rdd_foreach(em_rdd *r, em_each_fn fn, const void *arg, size_t arg_len);
int em_rdd_foreach_partition(em_rdd *r, em_each_partition_fn fn, const void *arg, size_t arg_len);
/* Writes one part-NNNNN file per partition into directory path, each element as a line
 * (em_value_format's text), then _SUCCESS. The directory must not exist (EM_EEXIST). Output is
 * committed atomically: tasks write to a temporary directory that is renamed into place only
 * when the job succeeds, so a failed job leaves no directory at path. */
int em_rdd_save_as_text_file(em_rdd *r, const char *path);
/* Like em_rdd_save_as_text_file, but each element must be a bytes or string value and is
 * written raw, with no separator (fixed-length binary output such as terasort's). */
int em_rdd_save_as_binary_file(em_rdd *r, const char *path);

#ifdef __cplusplus
}
#endif
#endif
