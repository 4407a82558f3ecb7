/* Error codes, their names and descriptions, and the per-thread error message (em_errmsg).
 * Any thread: the message lives in thread-local storage. */
#include "base.h"

#include <stdio.h>
#include <string.h>

#define EM_ERRMSG_CAP 4096
static _Thread_local char errmsg[EM_ERRMSG_CAP];

const char *em_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define EM__STRERROR_CASE(name, value, desc)                                                       \
    case value:                                                                                    \
        return desc;
        EM_ERRNO_MAP(EM__STRERROR_CASE)
#undef EM__STRERROR_CASE
    default:
        break;
    }
    if (code < 0 && code > -4096) return strerror(-code);
    return "unknown error";
}

const char *em_err_name(int code)
{
    switch (code) {
    case 0:
        return "EM_OK";
#define EM__NAME_CASE(name, value, desc)                                                           \
    case value:                                                                                    \
        return "EM_" #name;
        EM_ERRNO_MAP(EM__NAME_CASE)
#undef EM__NAME_CASE
    default:
        return "EM_UNKNOWN";
    }
}

const char *em_errmsg(void)
{
    return errmsg;
}

void em__clear_error(void)
{
    errmsg[0] = '\0';
}

int em__set_errorv(int code, const char *fmt, va_list ap)
{
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    return code;
}

int em__set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em__set_errorv(code, fmt, ap);
    va_end(ap);
    return code;
}

int em__error_context(int code, const char *fmt, ...)
{
    char prefix[1024], old[EM_ERRMSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errmsg, sizeof old);
    const char *rest = old[0] ? old : em_strerror(code);
    snprintf(errmsg, sizeof errmsg, "%.1000s: %.3000s", prefix, rest);
    return code;
}
