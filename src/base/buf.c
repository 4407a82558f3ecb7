/* Growable byte buffers (em_buf): append, printf, reserve. Used by one thread at a time. */
#include "base.h"

#include <stdio.h>
#include <string.h>

int em_buf_reserve(em_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) return 0;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want) cap = cap * 2;
    uint8_t *d = em__realloc(b->data, cap);
    if (!d) return EM_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int em_buf_append(em_buf *b, const void *p, size_t n)
{
    if (em_buf_reserve(b, n)) return EM_ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int em_buf_printf(em_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return EM_EINVAL;
    if (em_buf_reserve(b, (size_t)n + 1)) return EM_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void em_buf_free(em_buf *b)
{
    em__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
