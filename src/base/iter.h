/* The pull iterator every stage of a pipelined partition computation implements (struct
 * em_iter of the public API). An iterator is made by its producer (a source, a narrow operator,
 * a shuffle reader), pulled by one thread, and closed exactly once by its consumer; close frees
 * it and everything it holds (including the upstream iterators it owns).
 *
 * next returns EM_ROW with *out valid until the following next/close call, EM_DONE at the end
 * (and from then on), or a negative error whose message is in em_errmsg() or the task.
 */
#ifndef EMBER_BASE_ITER_H
#define EMBER_BASE_ITER_H

#include <ember/function.h>

struct em_iter {
    int (*next)(em_iter *it, em_value *out);
    void (*close)(em_iter *it);
};

static inline void em_iter_close(em_iter *it)
{
    if (it) it->close(it);
}

#endif
