/* The map output tracker: for every shuffle, where each map task's committed output is (the
 * directory holding its data and index files) and its per-reducer block sizes. The driver's
 * DAG scheduler registers outputs as map tasks succeed and asks which are missing; reduce tasks
 * ask for the locations of all maps of a shuffle.
 *
 * Thread rule: any thread; guarded by an internal mutex.
 */
#ifndef EMBER_SHUFFLE_TRACKER_H
#define EMBER_SHUFFLE_TRACKER_H

#include "shuffle/shuffle.h"
#include <stdbool.h>

typedef struct em_map_output_tracker em_map_output_tracker;

em_map_output_tracker *em_map_output_tracker_new(void);
void em_map_output_tracker_free(em_map_output_tracker *tr);

/* Declares shuffle_id with num_maps map outputs (idempotent). 0 or EM_ENOMEM. */
int em_map_outputs_register_shuffle(em_map_output_tracker *tr, int shuffle_id, int num_maps);
/* Records map_id's output at dir; takes st->block_sizes. */
int em_map_outputs_register(em_map_output_tracker *tr, int shuffle_id, int map_id, const char *dir,
                            em_map_status *st);
/* Forgets one output (lost), or all outputs in dir (an executor's directory lost). */
void em_map_outputs_unregister(em_map_output_tracker *tr, int shuffle_id, int map_id);
/* The map ids without an output, into out (capacity cap); returns how many (may exceed cap).
 * -1 if the shuffle is unknown. */
int em_map_outputs_missing(em_map_output_tracker *tr, int shuffle_id, int *out, int cap);
/* A copy of the output directories of every map (all must be present): *dirs is an
 * em__malloc'd array of num_maps em__malloc'd strings, freed with em_map_outputs_dirs_free.
 * EM_ESTATE naming the shuffle and map if one is missing. */
int em_map_outputs_dirs(em_map_output_tracker *tr, int shuffle_id, char ***dirs, int *num_maps);
void em_map_outputs_dirs_free(char **dirs, int num_maps);
/* Total bytes of shuffle_id's blocks for reducer (for statistics). */
int64_t em_map_outputs_reducer_bytes(em_map_output_tracker *tr, int shuffle_id, int reducer);

#endif
