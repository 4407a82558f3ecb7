/* The RDD graph, as the engine sees it: struct em_rdd, its dependencies, partitioners, and the
 * context that owns them.
 *
 * An RDD is data, not code: a kind (its ops table), parameters (priv), user functions with
 * their argument blobs (em_udf), and dependencies on parents. A dependency is narrow (each
 * child partition reads a known set of parent partitions in the same task) or a shuffle (the
 * parent's records are written by a shuffle map stage and read back by key). The DAG scheduler
 * cuts stages at shuffle dependencies; inside a stage, em__rdd_iterator() pulls records through
 * the chain of narrow RDDs in one pass (pull iterators, no materialisation).
 *
 * Because every RDD is plain data plus functions, the graph of a stage can be shipped to an
 * executor process running the same binary (rdd/stage_codec.h: each kind encodes and decodes
 * its priv, functions travel as module identity + offset); the local backend runs the driver's
 * graph directly.
 *
 * Thread rule: RDDs are defined on driver threads under ctx->mu; once defined they are
 * read-only and read by task threads concurrently (the cache has its own lock).
 */
#ifndef EMBER_RDD_RDD_H
#define EMBER_RDD_RDD_H

#include "base/base.h"
#include "base/iter.h"
#include "base/task.h"
#include "shuffle/shuffle.h"
#include <ember/rdd.h>
#include <pthread.h>

struct em_block_store;
struct em_map_output_tracker;

/* A user function with its copied argument blob (the closure). */
typedef struct em_udf {
    void (*fn)(void);
    void *arg;
    size_t arg_len;
} em_udf;

typedef enum em_dep_kind { EM_DEP_NARROW = 0, EM_DEP_SHUFFLE } em_dep_kind;

struct em_partitioner {
    int num_partitions;
    enum { EM_PART_HASH, EM_PART_RANGE, EM_PART_MODULO } kind;
    bool descending;     /* range */
    int num_bounds;      /* range: num_partitions - 1 (or fewer with few distinct keys) */
    em_value *bounds;    /* range: upper bounds (encoded keys), ascending */
    uint8_t *bound_data; /* owns the bounds' bytes */
    int id;
    struct em_partitioner *next_owned; /* context's list */
};

/* A shuffle dependency: the parent's pair records partitioned by key. */
typedef struct em_shuffle_dep {
    int shuffle_id;
    struct em_rdd *parent;
    em_partitioner *partitioner;
    bool has_aggregator, map_side_combine;
    em_udf create, merge_value, merge_combiners; /* aggregator (user-level functions) */
    int agg_kind;                                /* see shuffled.c: how the udfs are called */
    em_value zero;                               /* foldByKey / aggregateByKey */
} em_shuffle_dep;

typedef struct em_dep {
    em_dep_kind kind;
    struct em_rdd *rdd;      /* narrow: the parent; shuffle: shuffle->parent */
    em_shuffle_dep *shuffle; /* shuffle only */
} em_dep;

struct em_graph_enc; /* rdd/stage_codec.h */
struct em_graph_dec;

typedef struct em_rdd_ops {
    const char *name; /* "map", "textFile", "ShuffledRDD", ...: also the kind's id on the wire */
    /* Makes the iterator of partition `part` (task thread). */
    int (*compute)(struct em_rdd *r, int part, em_task *t, em_iter **out);
    /* Frees priv (and what it owns: argument blobs, plans, shuffle dependencies). */
    void (*free)(struct em_rdd *r);
    /* Stage codec (rdd/stage_codec.c). encode appends the kind's parameters (priv: functions
     * with their argument blobs, plans, the shuffle dependencies it owns) to the stage
     * encoding. decode reads them back into an RDD whose id, partition count, name, partitioner
     * and dependencies are already set (a shuffle dependency's .shuffle still NULL): it builds
     * r->priv, makes the shuffle dependencies it owns and links them into r->deps, and checks
     * that the structure is one compute can run (dependency kinds, partition counts, functions
     * present). On failure it leaves r->priv and every r->deps[i].shuffle NULL, owns nothing,
     * and returns EM_EFORMAT (or EM_ENOMEM) with the message set. */
    int (*encode)(const struct em_rdd *r, struct em_graph_enc *g);
    int (*decode)(struct em_rdd *r, struct em_graph_dec *g);
} em_rdd_ops;

/* The RDD kinds, NULL-terminated lists, each file listing its own (the stage decoder looks a
 * kind up by name among them). */
extern const em_rdd_ops *const em__source_kinds[];     /* sources.c */
extern const em_rdd_ops *const em__narrow_kinds[];     /* narrow.c */
extern const em_rdd_ops *const em__structural_kinds[]; /* structural.c */
extern const em_rdd_ops *const em__shuffled_kinds[];   /* shuffled.c */
extern const em_rdd_ops *const em__cogroup_kinds[];    /* cogroup.c */

struct em_rdd {
    em_context *ctx;
    int id;
    int num_partitions;
    char *name;
    const em_rdd_ops *ops;
    void *priv;
    em_dep *deps;
    int num_deps;
    em_partitioner *partitioner; /* how the output is partitioned by key, if known */
    bool cached;
    struct em_rdd *next_owned; /* context's list */
};

/* The job runner the scheduler installs: runs fn over partitions of r.
 *
 * A result function runs on a task thread, in this process (local mode) or in an executor
 * process running the same binary; arg is the job's argument blob (em_job_spec.fn_arg), which
 * therefore holds no pointers: function pointers inside it are function references
 * (em_wire_put_fn), data is copied in. The engine's blobs are built with em__job_arg_begin /
 * em__job_arg_end (rdd/stage_codec.h): they start with their total length, so a result function
 * that only gets the pointer reads them with em__job_arg_reader, bounds-checked. */
typedef int (*em_result_fn)(em_task *t, em_iter *in, em_buf *result, const void *arg);
typedef int (*em_result_handler)(void *arg, int partition, const uint8_t *data, size_t len);

typedef struct em_job_spec {
    struct em_rdd *rdd;
    const int *partitions; /* NULL: all */
    int num_partitions;
    em_result_fn fn;
    const void *fn_arg; /* the argument blob (see em_result_fn), NULL if none; borrowed */
    size_t fn_arg_len;  /* its length in bytes (0 when fn_arg is NULL) */
    em_result_handler handler;
    void *handler_arg;
    const char *call_site; /* "collect", "saveAsTextFile", ... */
} em_job_spec;

struct em_scheduler;

struct em_context {
    pthread_mutex_t mu; /* guards the id counters and owned lists */
    em_conf *conf;
    char *master, *app_name, *app_id;
    char *local_dir; /* this application's scratch directory */
    int num_threads, max_failures;
    int default_parallelism;
    int next_rdd_id, next_shuffle_id, next_partitioner_id, next_job_id, next_output_id;
    struct em_rdd *rdds;
    em_partitioner *partitioners;
    struct em_block_store *blocks;
    struct em_map_output_tracker *map_outputs;
    struct em_memory_manager *memory;
    struct em_scheduler *sched;
    struct em_commit_coordinator *commits; /* driver: output commit (scheduler/commit.h) */
    int (*run_job)(em_context *ctx, const em_job_spec *job);
    void (*unpersist)(em_context *ctx, int rdd_id); /* executors' copies; NULL in local mode */
    bool stopped;
    /* cluster masters */
    struct em_local_cluster *local_cluster; /* local-cluster[W,C,M]: the daemons started here */
    /* in an executor process (executor_process.c) */
    int exec_id;                      /* 0 in the driver */
    struct em_block_fetcher *fetcher; /* remote shuffle reads; NULL in local mode */
    /* shared variables (storage/shared.h, scheduler/shared_vars.c) */
    struct em_shared *shared;
    struct em_broadcast *broadcasts;     /* owned, driver */
    struct em_accumulator *accumulators; /* owned, driver */
    int64_t next_broadcast_id, next_accumulator_id;
};

/* Frees the context's broadcast variables, accumulators and registry (shared_vars.c). */
void em__shared_vars_free(em_context *ctx);

/* ---- graph construction (rdd.c) ---------------------------------------------------------- */

/* A new RDD owned by ctx; deps copied. NULL (with em_errmsg) on failure. */
struct em_rdd *em__rdd_new(em_context *ctx, const em_rdd_ops *ops, void *priv, int num_partitions,
                           const em_dep *deps, int num_deps);
/* A new shuffle dependency with a fresh shuffle id (owned by the child RDD). */
em_shuffle_dep *em__shuffle_dep_new(struct em_rdd *parent, em_partitioner *p);
em_udf em__udf(void (*fn)(void), const void *arg, size_t arg_len);
em_partitioner *em__partitioner_new(em_context *ctx);
bool em__partitioner_equal(const em_partitioner *a, const em_partitioner *b);
int em__partition_of(const em_partitioner *p, em_value key);
int em__default_shuffle_partitions(const struct em_rdd *r, int asked);

/* The records of partition part of r, through the cache when r is cached (task thread). */
int em__rdd_iterator(struct em_rdd *r, int part, em_task *t, em_iter **out);

/* An iterator over the records of an em_records buffer; takes ownership when own is true. */
em_iter *em__records_iter(em_records *recs, bool own);
/* An iterator over encoded records in [data, data+len) (borrowed). */
em_iter *em__bytes_iter(const uint8_t *data, size_t len);
/* A job's result function: the partition's record count as one int64 (count, zipWithIndex). */
int em__count_partition(em_task *t, em_iter *in, em_buf *result, const void *arg);
/* An iterator that yields nothing. */
em_iter *em__empty_iter(void);

/* Checks that rec is a 2-tuple; fails the task with a message naming the operator and the
 * record otherwise. */
int em__require_pair(em_task *t, em_value rec, const char *op);
/* Records a task failure message (like em_task_fail) and returns code. */
int em__task_error(em_task *t, int code, const char *fmt, ...) EM_PRINTF(3, 4);

/* The aggregator of a shuffle dependency (for the map-side writer and the reader); false if
 * the shuffle has none. */
bool em__shuffle_dep_aggregator(const em_shuffle_dep *dep, em_aggregator *out);
/* (k, x) with k a round-robin counter per partition (repartition's keying). */
struct em_rdd *em__round_robin_keyed(struct em_rdd *r, int num_partitions);
/* x -> (x, null), for set operations built on keyed shuffles. */
struct em_rdd *em__keyed_with_null(struct em_rdd *r);
/* Opens the reader of reduce partition part of dep's shuffle (through the map output tracker). */
int em__open_shuffle_reader(struct em_rdd *r, const em_shuffle_dep *dep, int part,
                            em_shuffle_read_mode mode, bool descending, em_task *t, em_iter **out);
/* coalesce without shuffle. */
struct em_rdd *em__coalesce_narrow(struct em_rdd *r, int num_partitions);

/* Partitioner closure for the shuffle writer. */
em_key_partitioner em__key_partitioner(const em_partitioner *p);

/* ---- shipping shuffle dependencies (shuffled.c; see rdd/stage_codec.h) ------------------- */

/* Appends dep (shuffle id, partitioner, aggregator functions and kind, zero value,
 * map-side-combine flag; not its parent, which the stage encoding names) to g. */
int em__shuffle_dep_encode(const em_shuffle_dep *dep, struct em_graph_enc *g);
/* Reads a dependency written by em__shuffle_dep_encode, with parent as its parent. *dep is
 * new (free with em__shuffle_dep_free); *zero_data owns the zero value's bytes (NULL if none;
 * em__free it). */
int em__shuffle_dep_decode(struct em_graph_dec *g, struct em_rdd *parent, em_shuffle_dep **dep,
                           uint8_t **zero_data);
/* Frees a dependency and its aggregator's argument blobs (not the zero value's bytes). */
void em__shuffle_dep_free(em_shuffle_dep *dep);

#endif
