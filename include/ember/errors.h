/* Ember error codes and messages.
 *
 * Every function of the API that can fail returns an int: 0 on success or a negative EM_E*
 * code. System errors are passed through as -errno (EM_ENOENT is -ENOENT, and so on), so
 * em_strerror() understands both. EM_ROW and EM_DONE are not errors: iterators return them.
 *
 * The human detail of the last failure on the calling thread (which stage, partition, file,
 * option or record, and why) is kept by em_errmsg(); a failed call always sets it.
 */
#ifndef EMBER_ERRORS_H
#define EMBER_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, value, description). System codes use the Linux errno values. */
#define EM_ERRNO_MAP(X)                                                                            \
    X(ENOENT, -2, "no such file or directory")                                                     \
    X(EIO, -5, "input/output error")                                                               \
    X(ENOMEM, -12, "out of memory")                                                                \
    X(EACCES, -13, "permission denied")                                                            \
    X(EEXIST, -17, "already exists")                                                               \
    X(ENOTDIR, -20, "not a directory")                                                             \
    X(EINVAL, -22, "invalid argument")                                                             \
    X(ENOSPC, -28, "no space left on device")                                                      \
    X(ERANGE, -34, "value out of range")                                                           \
    X(ECONF, -1001, "invalid configuration")                                                       \
    X(EFORMAT, -1002, "malformed record or data")                                                  \
    X(EUSER, -1003, "user function failed")                                                        \
    X(EJOB, -1004, "job aborted")                                                                  \
    X(ESTATE, -1005, "invalid state")                                                              \
    X(ECORRUPT, -1006, "data corrupted (checksum mismatch)")                                       \
    X(EEMPTY, -1007, "empty collection")                                                           \
    X(ETOOBIG, -1008, "result too large")                                                          \
    X(EMASTER, -1009, "invalid master URL")                                                        \
    X(ETYPE, -1010, "value has another type")                                                      \
    X(EINTERNAL, -1011, "internal error")                                                          \
    X(EFETCH, -1012, "shuffle block fetch failed")                                                 \
    X(ECOMMITDENIED, -1013, "output commit denied: another attempt committed the partition")       \
    X(EKILLED, -1014, "task killed")

typedef enum em_errno {
#define EM__ERRNO_ENUM(name, value, desc) EM_##name = value,
    EM_ERRNO_MAP(EM__ERRNO_ENUM)
#undef EM__ERRNO_ENUM
        EM_OK = 0,
    EM_DONE = 0, /* an iterator is exhausted */
    EM_ROW = 1,  /* an iterator produced a value */
} em_errno;

/* A one-line description of code (an EM_E* code or -errno). Never NULL. Any thread. */
const char *em_strerror(int code);

/* The symbolic name of code ("EM_ENOENT"), or "EM_UNKNOWN". Any thread. */
const char *em_err_name(int code);

/* The message of the last failed Ember call on this thread, e.g.
 * "job 3 aborted: stage 2 partition 7 failed 4 times; last cause: ...". Empty string when
 * nothing has failed. The pointer is valid until the next Ember call on this thread. */
const char *em_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif
