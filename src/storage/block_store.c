/* The in-memory block store for cached RDD partitions (see block_store.h). Blocks live in a
 * doubly linked LRU list (most recent at the head) and are found by a linear scan keyed by
 * (rdd, partition) — the number of cached partitions per executor is small (thousands), and a
 * lookup happens once per task. Eviction runs from the memory manager's evict callback, which
 * is called without the manager's lock held, and skips blocks that are being read.
 * Any thread; bs->mu guards the list and reference counts. */
#include "storage/block_store.h"

#include "base/base.h"
#include <pthread.h>

struct em_block {
    int rdd_id, partition;
    uint8_t *data;
    size_t len;
    int refs;      /* readers + 1 while in the store */
    bool in_store; /* false once removed/evicted (freed when refs reach 0) */
    em_block_store *bs;
    struct em_block *prev, *next;
};

struct em_block_store {
    pthread_mutex_t mu;
    em_memory_manager *mm;
    em_block *head, *tail;
};

static void unlink_block(em_block_store *bs, em_block *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        bs->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        bs->tail = b->prev;
    b->prev = b->next = NULL;
}

static void push_front(em_block_store *bs, em_block *b)
{
    b->prev = NULL;
    b->next = bs->head;
    if (bs->head) bs->head->prev = b;
    bs->head = b;
    if (!bs->tail) bs->tail = b;
}

/* Called with bs->mu held: drops the store's reference; returns the block if it must be freed. */
static em_block *drop_from_store(em_block_store *bs, em_block *b)
{
    unlink_block(bs, b);
    b->in_store = false;
    return --b->refs == 0 ? b : NULL;
}

static void free_block(em_block *b)
{
    em_memory_release_storage(b->bs->mm, (int64_t)b->len);
    em__free(b->data);
    em__free(b);
}

static int64_t evict(void *ctx, int64_t need)
{
    em_block_store *bs = ctx;
    int64_t freed = 0;
    em_block *to_free = NULL;
    pthread_mutex_lock(&bs->mu);
    for (em_block *b = bs->tail; b && freed < need;) {
        em_block *prev = b->prev;
        if (b->refs == 1) {
            freed += (int64_t)b->len;
            em_block *f = drop_from_store(bs, b);
            if (f) {
                f->next = to_free;
                to_free = f;
            }
        }
        b = prev;
    }
    pthread_mutex_unlock(&bs->mu);
    while (to_free) {
        em_block *next = to_free->next;
        EM_LOG(EM_LOG_INFO, "storage", "evicted rdd_%d_%d (%zu bytes)", to_free->rdd_id,
               to_free->partition, to_free->len);
        free_block(to_free);
        to_free = next;
    }
    return freed;
}

em_block_store *em_block_store_new(em_memory_manager *mm)
{
    em_block_store *bs = em__calloc(1, sizeof *bs);
    if (!bs) return NULL;
    pthread_mutex_init(&bs->mu, NULL);
    bs->mm = mm;
    em_memory_set_evictor(mm, evict, bs);
    return bs;
}

void em_block_store_free(em_block_store *bs)
{
    if (!bs) return;
    em_memory_set_evictor(bs->mm, NULL, NULL);
    em_block *b = bs->head;
    while (b) {
        em_block *next = b->next;
        free_block(b);
        b = next;
    }
    pthread_mutex_destroy(&bs->mu);
    em__free(bs);
}

em_block *em_block_store_get(em_block_store *bs, int rdd_id, int partition)
{
    pthread_mutex_lock(&bs->mu);
    em_block *b = bs->head;
    while (b && !(b->rdd_id == rdd_id && b->partition == partition)) b = b->next;
    if (b) {
        b->refs++;
        unlink_block(bs, b);
        push_front(bs, b);
    }
    pthread_mutex_unlock(&bs->mu);
    return b;
}

const uint8_t *em_block_data(const em_block *b, size_t *len)
{
    *len = b->len;
    return b->data;
}

void em_block_release(em_block *b)
{
    if (!b) return;
    em_block_store *bs = b->bs;
    pthread_mutex_lock(&bs->mu);
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&bs->mu);
    if (last) free_block(b);
}

int em_block_store_put(em_block_store *bs, int rdd_id, int partition, uint8_t *data, size_t len)
{
    em_block *b = em__calloc(1, sizeof *b);
    if (!b) return EM_ENOMEM;
    if (!em_memory_acquire_storage(bs->mm, (int64_t)len)) {
        em__free(b);
        return EM_ENOMEM;
    }
    *b = (em_block){.rdd_id = rdd_id,
                    .partition = partition,
                    .data = data,
                    .len = len,
                    .refs = 1,
                    .in_store = true,
                    .bs = bs};
    em_block *old = NULL;
    pthread_mutex_lock(&bs->mu);
    for (em_block *o = bs->head; o; o = o->next)
        if (o->rdd_id == rdd_id && o->partition == partition) {
            old = drop_from_store(bs, o);
            break;
        }
    push_front(bs, b);
    pthread_mutex_unlock(&bs->mu);
    if (old) free_block(old);
    return 0;
}

void em_block_store_remove_rdd(em_block_store *bs, int rdd_id)
{
    em_block *to_free = NULL;
    pthread_mutex_lock(&bs->mu);
    for (em_block *b = bs->head; b;) {
        em_block *next = b->next;
        if (b->rdd_id == rdd_id) {
            em_block *f = drop_from_store(bs, b);
            if (f) {
                f->next = to_free;
                to_free = f;
            }
        }
        b = next;
    }
    pthread_mutex_unlock(&bs->mu);
    while (to_free) {
        em_block *next = to_free->next;
        free_block(to_free);
        to_free = next;
    }
}

int em_block_store_rdd_info(em_block_store *bs, int rdd_id, int64_t *bytes)
{
    int n = 0;
    int64_t total = 0;
    pthread_mutex_lock(&bs->mu);
    for (em_block *b = bs->head; b; b = b->next)
        if (b->rdd_id == rdd_id) {
            n++;
            total += (int64_t)b->len;
        }
    pthread_mutex_unlock(&bs->mu);
    if (bytes) *bytes = total;
    return n;
}
