/* The one allocation hook of libember: malloc wrappers that keep a live byte count (for memory
 * accounting and, later, fault injection). Any thread; the counter is atomic. The size of a
 * block is read with malloc_usable_size, so no header is added to allocations. */
#include "base.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int64_t live_bytes;

void *em__malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p)
        atomic_fetch_add_explicit(&live_bytes, (int64_t)malloc_usable_size(p),
                                  memory_order_relaxed);
    return p;
}

void *em__calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&live_bytes, (int64_t)malloc_usable_size(p),
                                  memory_order_relaxed);
    return p;
}

void *em__realloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n ? n : 1);
    if (!q) return NULL;
    atomic_fetch_add_explicit(&live_bytes, (int64_t)malloc_usable_size(q) - (int64_t)old,
                              memory_order_relaxed);
    return q;
}

void em__free(void *p)
{
    if (!p) return;
    atomic_fetch_sub_explicit(&live_bytes, (int64_t)malloc_usable_size(p), memory_order_relaxed);
    free(p);
}

char *em__strdup(const char *s)
{
    return s ? em__memdup(s, strlen(s) + 1) : NULL;
}

char *em__strndup(const char *s, size_t n)
{
    char *d = em__malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void *em__memdup(const void *p, size_t n)
{
    void *d = em__malloc(n);
    if (d && n) memcpy(d, p, n);
    return d;
}

int64_t em__alloc_bytes(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}
