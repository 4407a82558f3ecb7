/* The per-process registry of shared variables (include/ember/shared.h): broadcast values
 * and accumulator definitions, plus a task's private accumulator updates.
 *
 * The driver's registry holds every broadcast value it created and every accumulator with
 * its merged value. An executor's registry holds the broadcast values its tasks fetched
 * (through a fetch hook the executor installs: chunks from the driver) and the accumulator
 * definitions that came with stage definitions. A task adds into its own em_acc_updates;
 * the task runner encodes them into the task's outcome, and the driver merges them into the
 * registry when the task succeeds (dag.c decides when that counts).
 *
 * Thread rule: any thread; the registry has its own mutex. An em_acc_updates belongs to its
 * task's thread.
 */
#ifndef EMBER_STORAGE_SHARED_H
#define EMBER_STORAGE_SHARED_H

#include "base/base.h"
#include "base/task.h"

#include <ember/function.h>
#include <ember/record.h>

typedef struct em_shared em_shared;

enum em_acc_kind { EM_ACC_INT64 = 1, EM_ACC_FLOAT64 = 2, EM_ACC_VALUE = 3 };

em_shared *em__shared_new(void);
void em__shared_free(em_shared *s);

/* ---- broadcast values ---- */
/* Stores a copy of len bytes as broadcast id. 0 or EM_ENOMEM. */
int em__shared_broadcast_put(em_shared *s, uint64_t id, const void *data, size_t len);
void em__shared_broadcast_remove(em_shared *s, uint64_t id);
/* The value of id (stable until the registry is freed or the value removed), fetched with the
 * fetch hook when absent and a hook is installed (one fetch per id at a time: concurrent
 * callers wait for it). 0, EM_ENOENT, or the hook's error. */
int em__shared_broadcast_get(em_shared *s, uint64_t id, const void **data, size_t *len);
/* Executor: fetch(arg, id, out) appends the whole value of id to out. */
void em__shared_set_fetch(em_shared *s, int (*fetch)(void *arg, uint64_t id, em_buf *out),
                          void *arg);
/* Driver: appends chunk `chunk` (chunk_size bytes each, the last one shorter) of id's value to
 * out and sets *num_chunks (at least 1, even for an empty value). 0, EM_ENOENT, EM_ERANGE. */
int em__shared_broadcast_chunk(em_shared *s, uint64_t id, uint32_t chunk, size_t chunk_size,
                               em_buf *out, uint32_t *num_chunks);

/* ---- accumulators ---- */
/* Defines accumulator id (merge and zero only for EM_ACC_VALUE; copied). A known id is left
 * as it is. 0 or EM_ENOMEM. */
int em__shared_acc_define(em_shared *s, uint64_t id, int kind, const char *name,
                          void (*merge)(void), const void *merge_arg, size_t merge_arg_len,
                          const void *zero, size_t zero_len);
/* Appends every definition (for a stage definition) / defines those of an encoded list.
 * decode: 0 or EM_EFORMAT / EM_ENOMEM. */
int em__shared_acc_encode_defs(em_shared *s, em_buf *out);
int em__shared_acc_decode_defs(em_shared *s, const uint8_t *p, size_t len);
/* Merges a task's encoded updates into the registry's values (driver). 0, EM_EFORMAT, EM_ENOENT
 * (an update of an unknown accumulator), or a merge function's error. */
int em__shared_acc_merge(em_shared *s, const uint8_t *p, size_t len);
/* The merged value of id: int64, float64, or a copy of the value record appended to out. */
int64_t em__shared_acc_int64(em_shared *s, uint64_t id);
double em__shared_acc_float64(em_shared *s, uint64_t id);
int em__shared_acc_value(em_shared *s, uint64_t id, em_records *out);

/* ---- a task's updates ---- */
typedef struct em_acc_updates em_acc_updates;
/* Appends t->acc's updates (nothing when there are none) and frees them, leaving t->acc NULL.
 * 0 or EM_ENOMEM. */
int em__acc_updates_take(em_task *t, em_buf *out);

#endif
