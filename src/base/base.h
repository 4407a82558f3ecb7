/* Base services every subsystem may use: allocation with accounting, the per-thread error
 * message, growable byte buffers, logging, time and small helpers.
 *
 * Allocation: every allocation of libember goes through em__malloc/em__calloc/em__realloc/
 * em__free (one hook for accounting and fault injection). They return NULL on failure; library
 * code turns that into EM_ENOMEM. em__alloc_bytes() is the live total.
 *
 * Errors: em__set_error(code, fmt, ...) stores the message em_errmsg() returns on this thread
 * and returns code, so `return em__set_error(EM_EINVAL, "bad x %d", x);` is the idiom.
 * Thread rule: everything here is any thread.
 */
#ifndef EMBER_BASE_H
#define EMBER_BASE_H

#include <ember/errors.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define EM_LIKELY(x)    __builtin_expect(!!(x), 1)
#define EM_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#define EM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define EM_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define EM_MAX(a, b)    ((a) > (b) ? (a) : (b))
#define EM_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- allocation ---------------------------------------------------------------------------- */
void *em__malloc(size_t n);
void *em__calloc(size_t count, size_t size);
void *em__realloc(void *p, size_t n);
void em__free(void *p);
char *em__strdup(const char *s);
char *em__strndup(const char *s, size_t n);
void *em__memdup(const void *p, size_t n);
/* Bytes currently allocated through these functions (approximate under realloc). */
int64_t em__alloc_bytes(void);

/* ---- errors -------------------------------------------------------------------------------- */
/* Sets this thread's error message (printf-style) and returns code. */
int em__set_error(int code, const char *fmt, ...) EM_PRINTF(2, 3);
int em__set_errorv(int code, const char *fmt, va_list ap);
/* Prefixes the current message: "<prefix>: <old message>". Returns code. */
int em__error_context(int code, const char *fmt, ...) EM_PRINTF(2, 3);
/* Clears the message (start of a public call that may fail). */
void em__clear_error(void);

/* ---- growable byte buffer ------------------------------------------------------------------ */
typedef struct em_buf {
    uint8_t *data;
    size_t len, cap;
} em_buf;
#define EM_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }
/* Makes room for extra more bytes. 0 or EM_ENOMEM. */
int em_buf_reserve(em_buf *b, size_t extra);
int em_buf_append(em_buf *b, const void *p, size_t n);
int em_buf_printf(em_buf *b, const char *fmt, ...) EM_PRINTF(2, 3);
void em_buf_free(em_buf *b);
static inline void em_buf_reset(em_buf *b)
{
    b->len = 0;
}

/* ---- logging ------------------------------------------------------------------------------- */
enum em_log_level { EM_LOG_ERROR = 0, EM_LOG_WARN, EM_LOG_INFO, EM_LOG_DEBUG };
/* The level in force: EMBER_LOG_LEVEL=error|warn|info|debug, default warn. */
extern int em__log_level;
void em__log(int level, const char *subsys, const char *fmt, ...) EM_PRINTF(3, 4);
#define EM_LOG(level, subsys, ...)                                                                 \
    do {                                                                                           \
        if (EM_UNLIKELY((level) <= em__log_level)) em__log((level), (subsys), __VA_ARGS__);        \
    } while (0)

/* ---- time ---------------------------------------------------------------------------------- */
/* Monotonic clock in nanoseconds / milliseconds; wall clock in milliseconds since the epoch. */
int64_t em__now_ns(void);
int64_t em__now_ms(void);
int64_t em__wall_ms(void);
/* The time ms milliseconds from now on clock (CLOCK_REALTIME for a condition variable with the
 * default attributes, CLOCK_MONOTONIC for one set to it): pthread_cond_timedwait's deadline. */
struct timespec em__timespec_in(int clock, int64_t ms);

/* ---- files --------------------------------------------------------------------------------- */
/* mkdir -p. 0 or -errno (message names the path). */
int em__mkdirs(const char *path);
/* rm -rf. 0 or -errno. */
int em__rmtree(const char *path);

#endif
