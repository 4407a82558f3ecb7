/* Logging, clocks and file-system helpers (mkdir -p, rm -rf). Any thread. Log lines go to
 * stderr as "<time> <LEVEL> <subsystem>: message"; the level comes from EMBER_LOG_LEVEL. */
#include "base.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int em__log_level = EM_LOG_WARN;

/* Priority 101: before the constructors without one, among them executor mode's, which runs the
 * executor and never returns (src/executor/executor_process.c). */
__attribute__((constructor(101))) static void log_level_from_env(void)
{
    const char *s = getenv("EMBER_LOG_LEVEL");
    if (!s) return;
    if (!strcasecmp(s, "error"))
        em__log_level = EM_LOG_ERROR;
    else if (!strcasecmp(s, "warn"))
        em__log_level = EM_LOG_WARN;
    else if (!strcasecmp(s, "info"))
        em__log_level = EM_LOG_INFO;
    else if (!strcasecmp(s, "debug"))
        em__log_level = EM_LOG_DEBUG;
}

void em__log(int level, const char *subsys, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char line[2048];
    int64_t ms = em__wall_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    int n = (int)strftime(line, sizeof line, "%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03d %s %s: ", (int)(ms % 1000),
                  names[level < 0   ? 0
                        : level > 3 ? 3
                                    : level],
                  subsys);
    va_list ap;
    va_start(ap, fmt);
    if (n < (int)sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

int64_t em__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct timespec em__timespec_in(int clock, int64_t ms)
{
    struct timespec ts;
    clock_gettime((clockid_t)clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int64_t em__now_ms(void)
{
    return em__now_ns() / 1000000;
}

int64_t em__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int em__mkdirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return em__set_error(EM_EINVAL, "bad directory path '%s'", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            return em__set_error(-e, "cannot create directory '%s': %s", tmp, strerror(e));
        }
        tmp[i] = c;
    }
    return 0;
}

int em__rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 ? 0 : -errno;
    DIR *d = opendir(path);
    if (!d) return -errno;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        int r = em__rmtree(child);
        if (r && !rc) rc = r;
    }
    closedir(d);
    if (rmdir(path) != 0 && !rc) rc = -errno;
    return rc;
}
