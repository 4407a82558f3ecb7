/* The task binary of a stage: what the driver sends an executor process once per stage so that
 * the executor can run that stage's tasks (DESIGN.md section 4, "Executor mode").
 *
 * A stage is its RDD graph cut at shuffle dependencies: the final RDD (result stage) or the
 * parent of the shuffle it writes (map stage), and every RDD reached from it through narrow
 * dependencies. At a shuffle dependency the encoding carries the dependency itself (shuffle id,
 * partitioner with its range bounds, aggregator functions and kind, zero value, map-side
 * combine) and its parent only as a stub (id, partition count, name): the executor reads that
 * shuffle's map outputs and never computes the parent. An RDD reached twice (a self-join, a
 * union of an RDD with itself) is encoded once. Ids (RDD, shuffle, partitioner) are the
 * driver's, since cache blocks (rdd_<id>_<part>) and shuffle files are named by them.
 *
 * Then either the shuffle dependency the stage writes (map stage) or the action's result
 * function and its argument blob (result stage). The executor's decoded RDDs use its own
 * context: its block store serves cached partitions, its map output tracker the shuffle reads.
 *
 * Encoding (wire.h types):
 *
 *   magic      4 bytes   "EMSG"
 *   version    u8        1
 *   rdd count  uvar
 *   rdds       each RDD after the RDDs it depends on:
 *                id            ivar
 *                partitions    uvar
 *                name          str (NULL if none)
 *                flags         u8: 1 cached, 2 stub (a shuffle's parent: nothing more follows)
 *                kind          str: em_rdd_ops.name ("map", "ShuffledRDD", ...)
 *                partitioner   partitioner reference (below)
 *                dep count     uvar, then each: kind u8 (0 narrow, 1 shuffle), parent id ivar
 *                params        bytes: what the kind's encode wrote (its decode must read all)
 *   root id    ivar      the stage's RDD
 *   stage      u8        0 result: fn (function reference), fn_arg (bytes)
 *                        1 map: the shuffle dependency written (em__shuffle_dep_encode), whose
 *                          parent is the root
 *   end of input (anything after is an error)
 *
 *   partitioner reference: u8 0 none | 1 defined here: ivar id, u8 kind (0 hash, 1 range,
 *   2 modulo), uvar partitions, bool descending, uvar bound count, the bounds (bytes, each one
 *   encoded value, ascending) | 2 defined earlier: ivar id
 *
 *   udf: fn reference, arg (bytes)
 *
 * Decoding is safe on arbitrary input: bounds-checked, no allocation larger than the input
 * justifies, every structural fact compute relies on checked (dependency kinds and partition
 * counts per kind, functions present where called, values well-formed, slice offsets on record
 * boundaries). Failures are EM_EFORMAT naming the part ("stage graph: RDD 4 (map): ...").
 *
 * Thread rule: encode on a driver thread over a graph that is no longer changing; decode on any
 * thread. A decoded graph is read-only afterwards and may be used by many task threads at once;
 * free it when the stage is done.
 */
#ifndef EMBER_RDD_STAGE_CODEC_H
#define EMBER_RDD_STAGE_CODEC_H

#include "base/wire.h"
#include "rdd/rdd.h"

/* What an executor runs the tasks of one stage with. */
typedef struct em_stage_graph {
    struct em_rdd *rdd;  /* result stage: the final RDD; map stage: the shuffle's parent */
    em_shuffle_dep *dep; /* map stage: the dependency written; NULL otherwise */
    em_result_fn fn;     /* result stage */
    const void *fn_arg;  /* result stage: the argument blob (NULL if none) */
    size_t fn_arg_len;
    /* owned */
    struct em_rdd **rdds; /* every decoded RDD, dependencies first */
    int num_rdds;
    em_partitioner **partitioners;
    int num_partitioners, cap_partitioners;
    uint8_t *dep_zero; /* map stage: the zero value's bytes of dep */
} em_stage_graph;

/* Appends the stage of rdd to out: a map stage when dep is given (dep->parent must be rdd; fn
 * and fn_arg ignored), else a result stage running fn with the blob fn_arg (fn_arg_len bytes,
 * made with em__job_arg_begin/end, or NULL and 0). 0; EM_ENOMEM; EM_EINVAL naming an RDD kind
 * or a function that cannot be shipped. */
int em__stage_encode(const struct em_rdd *rdd, const em_shuffle_dep *dep, em_result_fn fn,
                     const void *fn_arg, size_t fn_arg_len, em_buf *out);
/* Decodes a stage into a new graph whose RDDs run in ctx (the executor's context) and are owned
 * by the graph, not by ctx. 0 or EM_EFORMAT / EM_ENOMEM with the message set (*out NULL). */
int em__stage_decode(em_context *ctx, const uint8_t *p, size_t len, em_stage_graph **out);
void em__stage_graph_free(em_stage_graph *g);

/* The ids of the shuffles the stage of rdd reads (ShuffledRDD and CoGroupedRDD dependencies
 * reachable through narrow dependencies), each once, into ids (capacity cap). Returns how many
 * there are (may exceed cap), or EM_ENOMEM. */
int em__stage_read_shuffles(const struct em_rdd *rdd, int *ids, int cap);

/* ---- for the RDD kinds' encode and decode ---------------------------------------------------- */

struct em_graph_enc {
    em_wire_writer w;
    int *partitioners_sent; /* ids defined so far */
    int num_sent, cap_sent;
};

struct em_graph_dec {
    em_wire_reader r;
    em_context *ctx;
    em_stage_graph *g; /* owns the partitioners decoded */
};

/* A user function with its argument blob. */
void em__graph_put_udf(struct em_graph_enc *g, const em_udf *u);
/* Reads one; u->arg is em__malloc'd (NULL if empty). required: a NULL function is an error
 * naming what. */
int em__graph_get_udf(struct em_graph_dec *g, em_udf *u, bool required, const char *what);
/* One encoded value (bytes of exactly one well-formed value). */
void em__graph_put_value(struct em_graph_enc *g, em_value v);
/* Reads one into *owned (em__malloc'd) and points *v at it. */
int em__graph_get_value(struct em_graph_dec *g, em_value *v, uint8_t **owned, const char *what);
/* A partitioner reference (NULL allowed). */
void em__graph_put_partitioner(struct em_graph_enc *g, const em_partitioner *p);
/* Reads one: *p is owned by the graph (NULL for none). */
int em__graph_get_partitioner(struct em_graph_dec *g, em_partitioner **p);

/* ---- job argument blobs (see em_result_fn in rdd.h) -------------------------------------------
 *
 *   length   u32 LE   the blob's total length, these 4 bytes included
 *   fields   what the action writes with the em_wire_put_* functions
 */

/* Starts a blob in b (empty) and returns a writer appending to it. */
em_wire_writer em__job_arg_begin(em_buf *b);
/* Completes it: writes the length. 0 or the writer's error (the blob is then unusable). */
int em__job_arg_end(em_buf *b, em_wire_writer *w);
/* A reader over the fields of the blob at arg (NULL: an empty reader); `what` names the blob in
 * messages ("collect argument"). */
void em__job_arg_reader(const void *arg, em_wire_reader *r, const char *what);

#endif
