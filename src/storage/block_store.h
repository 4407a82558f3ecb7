/* The block store: cached RDD partitions (block id rdd_<rdd>_<partition>) held in memory as
 * encoded record bytes, accounted as storage memory by the memory manager and evicted least
 * recently used when execution or other blocks need the room. A reader holds a reference, so
 * eviction never frees bytes being read. Evicted partitions are recomputed from lineage.
 *
 * Thread rule: any thread; guarded by an internal mutex.
 */
#ifndef EMBER_STORAGE_BLOCK_STORE_H
#define EMBER_STORAGE_BLOCK_STORE_H

#include "storage/memory.h"
#include <stddef.h>
#include <stdint.h>

typedef struct em_block_store em_block_store;
typedef struct em_block em_block;

em_block_store *em_block_store_new(em_memory_manager *mm);
void em_block_store_free(em_block_store *bs);

/* The cached block of (rdd_id, partition) with a reference taken, or NULL. */
em_block *em_block_store_get(em_block_store *bs, int rdd_id, int partition);
const uint8_t *em_block_data(const em_block *b, size_t *len);
void em_block_release(em_block *b);

/* Stores data (em__malloc'd; ownership taken on success) as (rdd_id, partition). Returns 0, or
 * EM_ENOMEM when storage memory cannot be had (data is then still the caller's). */
int em_block_store_put(em_block_store *bs, int rdd_id, int partition, uint8_t *data, size_t len);

/* Drops every block of rdd_id. */
void em_block_store_remove_rdd(em_block_store *bs, int rdd_id);
/* Number of cached partitions and bytes of rdd_id. */
int em_block_store_rdd_info(em_block_store *bs, int rdd_id, int64_t *bytes);

#endif
