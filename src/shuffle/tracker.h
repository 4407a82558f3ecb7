/* The map output tracker: for every shuffle, where each map task's committed output is (its
 * em_block_location: the executor that wrote it, that executor's block server and directory)
 * and its per-reducer block sizes. The driver's DAG scheduler registers outputs as map tasks
 * succeed and asks which are missing; reduce tasks ask for the locations of all maps of a
 * shuffle. The driver ships the outputs a stage reads to executors with the codec below
 * (em_map_outputs_encode on the driver, em_map_outputs_decode_into on the executor).
 *
 * Thread rule: any thread; guarded by an internal mutex.
 */
#ifndef EMBER_SHUFFLE_TRACKER_H
#define EMBER_SHUFFLE_TRACKER_H

#include "base/base.h"
#include "shuffle/shuffle.h"

#include <stdbool.h>

typedef struct em_map_output_tracker em_map_output_tracker;

em_map_output_tracker *em_map_output_tracker_new(void);
void em_map_output_tracker_free(em_map_output_tracker *tr);

/* Declares shuffle_id with num_maps map outputs (idempotent). 0 or EM_ENOMEM. */
int em_map_outputs_register_shuffle(em_map_output_tracker *tr, int shuffle_id, int num_maps);
/* Records map_id's output at *loc (copied), replacing any earlier entry of that map; takes
 * st->block_sizes (st->block_sizes is NULL afterwards, on success). */
int em_map_outputs_register(em_map_output_tracker *tr, int shuffle_id, int map_id,
                            const em_block_location *loc, em_map_status *st);
/* Forgets one output (lost). */
void em_map_outputs_unregister(em_map_output_tracker *tr, int shuffle_id, int map_id);
/* Forgets every output written by executor exec_id (lost with its executor); returns how
 * many outputs were forgotten. */
int em_map_outputs_unregister_executor(em_map_output_tracker *tr, int exec_id);
/* The map ids without an output, into out (capacity cap); returns how many (may exceed cap).
 * -1 if the shuffle is unknown. */
int em_map_outputs_missing(em_map_output_tracker *tr, int shuffle_id, int *out, int cap);

/* A copy of where every map output of a shuffle is. */
typedef struct em_map_locations {
    int num_maps;
    em_block_location *locs; /* num_maps entries; host and dir are owned copies */
    int64_t *sizes;          /* num_maps entries: the reducer's block size in each output */
} em_map_locations;
/* Fills *out with the locations of every map of shuffle_id (all must be present) and, for
 * reducer, each output's block size (reducer < 0: sizes is NULL). EM_ESTATE naming the shuffle
 * and map if one is missing (or the reducer is beyond a map's reducers); *out is then empty.
 * Free with em_map_locations_free. */
int em_map_outputs_locations(em_map_output_tracker *tr, int shuffle_id, int reducer,
                             em_map_locations *out);
void em_map_locations_free(em_map_locations *l);
/* Total bytes of shuffle_id's blocks for reducer (for statistics; saturates at INT64_MAX). */
int64_t em_map_outputs_reducer_bytes(em_map_output_tracker *tr, int shuffle_id, int reducer);

/* Appends the present outputs of the n shuffles (locations and all block sizes) to out, in the
 * byte layout of tracker.c. 0, EM_ESTATE (an unknown shuffle id), EM_EINVAL (an id given
 * twice) or EM_ENOMEM; out->len is unchanged on failure. */
int em_map_outputs_encode(em_map_output_tracker *tr, const int *shuffle_ids, int n, em_buf *out);
/* Registers everything of an encoded table: each shuffle listed is declared if unknown and its
 * outputs are replaced by the listed ones (maps not listed become missing). The input is
 * untrusted: it is validated completely (bounds, limits, a shuffle already declared with
 * another number of maps) before anything changes; EM_EFORMAT naming the cause otherwise. */
int em_map_outputs_decode_into(em_map_output_tracker *tr, const uint8_t *p, size_t len);

#endif
