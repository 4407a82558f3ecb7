/* Spilled lists: list values whose elements live outside the value's bytes.
 *
 * The shuffle layer produces such values for groups too large to hold in memory (groupByKey
 * after a spill). The value's data/len hold the encoding of an empty list (0x09 0x00) and
 * em_value.ext points to an em_ext_list. The record layer dispatches to it: em_elems_next
 * iterates it, em_value_count returns count, em_value_at / em_value_cmp / em_value_hash /
 * em_value_format / em_put_value iterate it (em_put_value writes a real, materialised list).
 *
 * An implementation keeps its iteration state in it->state only: it->pos, it->end and it->ext
 * belong to the record layer (which opens the list lazily on the first em_elems_next).
 *
 * Thread rule: one iteration (one em_elems) is used by one thread; the em_ext_list itself must
 * allow several iterations, one after another, from the thread that owns the value.
 */
#ifndef EMBER_RECORD_EXT_H
#define EMBER_RECORD_EXT_H

#include <ember/record.h>
#include <stdint.h>

/* A list value whose elements are stored outside the value's bytes (a spilled group). The
 * value's data/len hold the encoding of an empty list (0x09 0x00) and ext points to this. */
typedef struct em_ext_list {
    /* Starts an iteration: fills it->state (may allocate; freed when next returns EM_DONE or an
     * error). */
    int (*open)(const struct em_ext_list *self, em_elems *it);
    /* EM_ROW with *out (valid until the next call), EM_DONE, or a negative error. */
    int (*next)(em_elems *it, em_value *out);
    uint64_t count; /* number of elements */
} em_ext_list;

#endif
