/* Small file helpers shared by the hand-written benchmark ceilings (wc_ceiling.c,
 * sort_ceiling.c). The ceilings are deliberately standalone programs that do not link libember
 * (CMake links each bench/NAME.c with libxxhash only), so they use the C library directly: plain
 * malloc, and on any error they print what failed, naming the file, and exit(1).
 *
 * An INPUT argument is a regular file or a directory; a directory stands for its regular files
 * whose names do not start with '.' or '_' (Hadoop's hidden-file rule: _SUCCESS, .crc), in
 * byte order of their names. Single-threaded; everything here is static inline. */
#ifndef EMBER_BENCH_CEILING_IO_H
#define EMBER_BENCH_CEILING_IO_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((format(printf, 1, 2), noreturn)) static inline void ceil_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ceiling: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static inline void *ceil_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) ceil_die("out of memory allocating %zu bytes", n);
    return p;
}

static inline void *ceil_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) ceil_die("out of memory growing to %zu bytes", n);
    return q;
}

typedef struct {
    char **paths;
    size_t n, cap;
} ceil_files;

static inline void ceil_files_push(ceil_files *f, const char *path)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->paths = ceil_xrealloc(f->paths, f->cap * sizeof *f->paths);
    }
    size_t len = strlen(path) + 1;
    f->paths[f->n] = ceil_xmalloc(len);
    memcpy(f->paths[f->n++], path, len);
}

static inline int ceil_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends INPUT (a file, or a directory's visible regular files in name order) to f. */
static inline void ceil_files_add(ceil_files *f, const char *input)
{
    struct stat st;
    if (stat(input, &st) != 0) ceil_die("cannot stat input '%s': %s", input, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        ceil_files_push(f, input);
        return;
    }
    DIR *d = opendir(input);
    if (!d) ceil_die("cannot open directory '%s': %s", input, strerror(errno));
    size_t first = f->n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_') continue;
        size_t len = strlen(input) + strlen(e->d_name) + 2;
        char *p = ceil_xmalloc(len);
        snprintf(p, len, "%s/%s", input, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) ceil_files_push(f, p);
        free(p);
    }
    closedir(d);
    qsort(f->paths + first, f->n - first, sizeof *f->paths, ceil_cmp_str);
}

static inline void ceil_files_free(ceil_files *f)
{
    for (size_t i = 0; i < f->n; i++) free(f->paths[i]);
    free(f->paths);
}

/* Reads up to n bytes; returns the count read (less than n only at end of file). */
static inline size_t ceil_read(int fd, void *buf, size_t n, const char *path)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            ceil_die("read of '%s' failed: %s", path, strerror(errno));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

static inline void ceil_write(int fd, const void *buf, size_t n, const char *path)
{
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, (const char *)buf + put, n - put);
        if (w < 0) {
            if (errno == EINTR) continue;
            ceil_die("write of '%s' failed: %s", path, strerror(errno));
        }
        put += (size_t)w;
    }
}

static inline int ceil_open_out(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) ceil_die("cannot create output '%s': %s", path, strerror(errno));
    return fd;
}

static inline void ceil_close_out(int fd, const char *path)
{
    if (close(fd) != 0) ceil_die("close of '%s' failed: %s", path, strerror(errno));
}

#endif
