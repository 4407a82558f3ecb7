/* Spilled lists: the value list of a GROUPED shuffle group too large for the memory grant,
 * kept in an (unlinked) spill file and iterated from disk through em_elems (record_ext.h).
 *
 * The file holds frames (blockio.c) whose payloads are the encoded values back to back. Each
 * iteration (em_elems_init + em_elems_next) opens its own frame reader (a buffer of one frame)
 * over the shared fd with pread, so several iterations may run one after another or
 * interleaved. The reader that made the list frees it when its iterator moves on (next call
 * or close); iterations still open then are freed with it.
 *
 * Thread rule: the task thread owning the shuffle reader.
 */
#include "shuffle/shuffle_int.h"

#include "record/record_int.h"

#include <stdint.h>
#include <unistd.h>

typedef struct lstate {
    shuf_fr fr;
    struct lstate *prev, *next;
    shuf_spilled_list *owner;
} lstate;

struct shuf_spilled_list {
    em_ext_list ext; /* first: the em_value.ext handed out points here */
    int fd;
    uint64_t size;
    lstate *open_states; /* iterations in progress */
};

static void state_free(lstate *st)
{
    shuf_spilled_list *l = st->owner;
    if (st->prev)
        st->prev->next = st->next;
    else
        l->open_states = st->next;
    if (st->next) st->next->prev = st->prev;
    shuf_fr_free(&st->fr);
    em__free(st);
}

static int list_open(const em_ext_list *self, em_elems *it)
{
    shuf_spilled_list *l = (shuf_spilled_list *)(uintptr_t)self;
    lstate *st = em__calloc(1, sizeof *st);
    if (!st) return em__set_error(EM_ENOMEM, "opening a spilled group");
    shuf_fr_init(&st->fr, l->fd, "spilled group file", 0, l->size, false, 0, NULL);
    st->owner = l;
    st->next = l->open_states;
    if (st->next) st->next->prev = st;
    l->open_states = st;
    it->state = st;
    return 0;
}

static int list_next(em_elems *it, em_value *out)
{
    lstate *st = it->state;
    if (!st) return EM_DONE;
    int rc = shuf_fr_fill(&st->fr);
    if (rc == EM_ROW) {
        const uint8_t *p = st->fr.raw.data + st->fr.rpos, *end = st->fr.raw.data + st->fr.raw.len;
        size_t n = em__value_skip(p, end);
        if (n) {
            st->fr.rpos += n;
            *out = (em_value){p, n, NULL};
            return EM_ROW;
        }
        rc = em__set_error(EM_ECORRUPT, "spilled group file: malformed value");
    }
    state_free(st);
    it->state = NULL;
    return rc;
}

shuf_spilled_list *shuf_spilled_list_new(int fd, uint64_t size, uint64_t count)
{
    shuf_spilled_list *l = em__calloc(1, sizeof *l);
    if (!l) return NULL;
    l->ext = (em_ext_list){.open = list_open, .next = list_next, .count = count};
    l->fd = fd;
    l->size = size;
    return l;
}

const em_ext_list *shuf_spilled_list_ext(shuf_spilled_list *l)
{
    return &l->ext;
}

void shuf_spilled_list_free(shuf_spilled_list *l)
{
    if (!l) return;
    while (l->open_states) state_free(l->open_states);
    close(l->fd);
    em__free(l);
}
