/* Input planning: finding the files an input path names and cutting them into splits (the
 * driver side of textFile, wholeTextFiles and binaryRecords). Runs on the driver thread that
 * defines the RDD; em_input_plan_make is called by the RDD sources, em_input_plan_free when the
 * RDD is freed. Readers of the splits are in input_read.c.
 *
 * Files: a path naming a regular file is that file; a directory gives its regular files
 * (non-recursive, names starting with '.' or '_' skipped, such as _SUCCESS); a path that does
 * not exist and holds a glob character (* ? [) is expanded with glob(3), keeping regular files
 * whose names do not start with '.' or '_'. The list is sorted by path (strcmp). Finding no file,
 * or a file that cannot be read, is an error naming the path.
 *
 * Splits (Hadoop's old-API FileInputFormat, which Spark's textFile uses):
 *   goal       = total_size / min_partitions            (min_partitions <= 0 means 2)
 *   split_size = max(1, min(goal, max_split_bytes))     (max_split_bytes <= 0 means 128 MiB)
 *   each non-empty file is cut into split_size pieces while remaining / split_size > 1.1
 *   (SPLIT_SLOP), the rest being the last piece (up to 1.1 x split_size). Empty files give no
 *   split, so a directory of empty files gives a plan with 0 splits.
 * FIXED_RECORDS rounds split_size down to a multiple of record_length (at least one record) and
 * rejects a file whose size is not a multiple of record_length (EM_EFORMAT).
 * WHOLE_FILES: one split per file when there are at most 4 x min_partitions files; otherwise
 * consecutive files are packed greedily into groups of about
 * min(ceil(total_weight / min_partitions), max_split_bytes) where a file weighs its size plus
 * 4 KiB (so that empty files are spread too). A split then lists its files (split->files).
 * Guarantees: on error *out is left empty (nothing to free); splits are in file order and,
 * within a file, in offset order, covering every byte of every file exactly once.
 */
#include "rdd/io.h"

#include "base/base.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPLIT_SLOP              1.1
#define DEFAULT_MAX_SPLIT_BYTES (128LL << 20)
#define WHOLE_FILE_OPEN_COST    4096

typedef struct plan_file {
    char *path;
    int64_t size;
} plan_file;

typedef struct file_list {
    plan_file *v;
    size_t n, cap;
} file_list;

static void file_list_free(file_list *l)
{
    for (size_t i = 0; i < l->n; i++) em__free(l->v[i].path);
    em__free(l->v);
    *l = (file_list){0};
}

static int hidden_name(const char *name)
{
    return name[0] == '.' || name[0] == '_';
}

/* Appends path (copied) if it is a readable regular file; skip_other: silently ignore a
 * non-regular entry (directory listings, globs) instead of failing. */
static int file_list_add(file_list *l, const char *path, int skip_other)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        if (skip_other && e == ENOENT) return 0; /* a dangling symlink in a listing */
        return em__set_error(-e, "input file '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        if (skip_other) return 0;
        return em__set_error(EM_EINVAL, "input path '%s' is not a regular file or directory", path);
    }
    if (access(path, R_OK) != 0) {
        int e = errno;
        return em__set_error(-e, "cannot read input file '%s': %s", path, strerror(e));
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        plan_file *nv = em__realloc(l->v, ncap * sizeof *nv);
        if (!nv) return em__set_error(EM_ENOMEM, "out of memory listing input '%s'", path);
        l->v = nv;
        l->cap = ncap;
    }
    char *copy = em__strdup(path);
    if (!copy) return em__set_error(EM_ENOMEM, "out of memory listing input '%s'", path);
    l->v[l->n++] = (plan_file){copy, (int64_t)st.st_size};
    return 0;
}

static int cmp_plan_file(const void *a, const void *b)
{
    return strcmp(((const plan_file *)a)->path, ((const plan_file *)b)->path);
}

static int list_directory(const char *dir, file_list *l)
{
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        return em__set_error(-e, "cannot list input directory '%s': %s", dir, strerror(e));
    }
    size_t dlen = strlen(dir);
    const char *sep = dlen > 0 && dir[dlen - 1] == '/' ? "" : "/";
    int rc = 0;
    struct dirent *ent;
    while (rc == 0 && (ent = readdir(d))) {
        if (hidden_name(ent->d_name)) continue; /* also skips "." and ".." */
        char *child = em__malloc(dlen + strlen(ent->d_name) + 2);
        if (!child) {
            rc = em__set_error(EM_ENOMEM, "out of memory listing '%s'", dir);
            break;
        }
        strcpy(child, dir);
        strcat(child, sep);
        strcat(child, ent->d_name);
        rc = file_list_add(l, child, 1);
        em__free(child);
    }
    closedir(d);
    if (rc == 0 && l->n == 0)
        rc = em__set_error(EM_ENOENT, "input directory '%s' has no files", dir);
    return rc;
}

static int list_glob(const char *pattern, file_list *l)
{
    glob_t g;
    int grc = glob(pattern, GLOB_NOSORT, NULL, &g);
    if (grc == GLOB_NOMATCH)
        return em__set_error(EM_ENOENT, "input path '%s' matches no files", pattern);
    if (grc == GLOB_NOSPACE) {
        globfree(&g);
        return em__set_error(EM_ENOMEM, "out of memory expanding input path '%s'", pattern);
    }
    if (grc != 0) {
        globfree(&g);
        return em__set_error(EM_EIO, "cannot expand input path '%s' (read error)", pattern);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
        const char *p = g.gl_pathv[i];
        const char *base = strrchr(p, '/');
        base = base ? base + 1 : p;
        if (hidden_name(base)) continue;
        rc = file_list_add(l, p, 1);
    }
    globfree(&g);
    if (rc == 0 && l->n == 0)
        rc = em__set_error(EM_ENOENT, "input path '%s' matches no files", pattern);
    return rc;
}

static int list_input(const char *path, file_list *l)
{
    if (!path || !*path) return em__set_error(EM_EINVAL, "empty input path");
    struct stat st;
    int rc;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            rc = list_directory(path, l);
        else
            rc = file_list_add(l, path, 0);
    } else {
        int e = errno;
        if (e == ENOENT && strpbrk(path, "*?["))
            rc = list_glob(path, l);
        else if (e == ENOENT)
            rc = em__set_error(EM_ENOENT, "input path '%s' does not exist", path);
        else
            rc = em__set_error(-e, "input path '%s': %s", path, strerror(e));
    }
    if (rc == 0) qsort(l->v, l->n, sizeof *l->v, cmp_plan_file);
    return rc;
}

/* ---- building the plan ----------------------------------------------------------------- */

typedef struct split_list {
    em_input_split *v;
    size_t n, cap;
} split_list;

static int split_push(split_list *s, em_input_split sp)
{
    if (s->n >= (size_t)INT_MAX)
        return em__set_error(EM_ETOOBIG, "input has more than %d splits", INT_MAX);
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        em_input_split *nv = em__realloc(s->v, ncap * sizeof *nv);
        if (!nv) return em__set_error(EM_ENOMEM, "out of memory planning input splits");
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = sp;
    return 0;
}

static void split_free_fields(em_input_split *sp)
{
    em__free(sp->path);
    for (int j = 0; j < sp->num_files; j++) em__free(sp->files[j]);
    em__free(sp->files);
}

void em_input_plan_free(em_input_plan *plan)
{
    if (!plan) return;
    for (int i = 0; i < plan->num_splits; i++) split_free_fields(&plan->splits[i]);
    em__free(plan->splits);
    *plan = (em_input_plan){0};
}

static int add_byte_splits(split_list *s, const plan_file *f, int64_t split_size)
{
    int64_t remaining = f->size;
    while ((double)remaining / (double)split_size > SPLIT_SLOP) {
        char *p = em__strdup(f->path);
        if (!p) return em__set_error(EM_ENOMEM, "out of memory planning input splits");
        int rc =
            split_push(s, (em_input_split){p, f->size - remaining, split_size, f->size, NULL, 0});
        if (rc) {
            em__free(p);
            return rc;
        }
        remaining -= split_size;
    }
    if (remaining > 0) {
        char *p = em__strdup(f->path);
        if (!p) return em__set_error(EM_ENOMEM, "out of memory planning input splits");
        int rc =
            split_push(s, (em_input_split){p, f->size - remaining, remaining, f->size, NULL, 0});
        if (rc) {
            em__free(p);
            return rc;
        }
    }
    return 0;
}

/* One WHOLE_FILES split holding files [from, to) of the list. */
static int add_file_group(split_list *s, const file_list *l, size_t from, size_t to)
{
    int n = (int)(to - from);
    em_input_split sp = {0};
    sp.files = em__calloc((size_t)n, sizeof *sp.files);
    sp.path = em__strdup(l->v[from].path);
    if (!sp.files || !sp.path) goto oom;
    for (int i = 0; i < n; i++) {
        sp.files[i] = em__strdup(l->v[from + (size_t)i].path);
        if (!sp.files[i]) goto oom;
        sp.num_files = i + 1;
        sp.length += l->v[from + (size_t)i].size;
    }
    sp.file_size = sp.length;
    int rc = split_push(s, sp);
    if (rc) split_free_fields(&sp);
    return rc;
oom:
    split_free_fields(&sp);
    return em__set_error(EM_ENOMEM, "out of memory planning input splits");
}

int em_input_plan_make(const char *path, enum em_input_kind kind, int min_partitions,
                       int64_t max_split_bytes, int record_length, em_input_plan *out)
{
    *out = (em_input_plan){0};
    if (kind != EM_INPUT_LINES && kind != EM_INPUT_WHOLE_FILES && kind != EM_INPUT_FIXED_RECORDS)
        return em__set_error(EM_EINVAL, "unknown input kind %d for '%s'", (int)kind,
                             path ? path : "");
    if (kind == EM_INPUT_FIXED_RECORDS && record_length <= 0)
        return em__set_error(EM_EINVAL, "record length %d for '%s' must be positive", record_length,
                             path ? path : "");
    if (min_partitions <= 0) min_partitions = 2;
    if (max_split_bytes <= 0) max_split_bytes = DEFAULT_MAX_SPLIT_BYTES;

    file_list files = {0};
    split_list splits = {0};
    int rc = list_input(path, &files);
    if (rc) goto fail;

    int64_t total = 0;
    for (size_t i = 0; i < files.n; i++) {
        const plan_file *f = &files.v[i];
        if (kind == EM_INPUT_FIXED_RECORDS && f->size % record_length != 0) {
            rc = em__set_error(EM_EFORMAT,
                               "input file '%s' has %lld bytes, not a multiple of the record "
                               "length %d",
                               f->path, (long long)f->size, record_length);
            goto fail;
        }
        total += f->size;
    }

    if (kind == EM_INPUT_WHOLE_FILES) {
        if (files.n <= (size_t)min_partitions * 4) {
            for (size_t i = 0; i < files.n && rc == 0; i++)
                rc = add_file_group(&splits, &files, i, i + 1);
        } else {
            int64_t weight = total + (int64_t)files.n * WHOLE_FILE_OPEN_COST;
            int64_t goal = (weight + min_partitions - 1) / min_partitions;
            goal = EM_MAX(1, EM_MIN(goal, max_split_bytes));
            size_t from = 0;
            int64_t acc = 0;
            for (size_t i = 0; i < files.n && rc == 0; i++) {
                acc += files.v[i].size + WHOLE_FILE_OPEN_COST;
                if (acc >= goal || i + 1 == files.n) {
                    rc = add_file_group(&splits, &files, from, i + 1);
                    from = i + 1;
                    acc = 0;
                }
            }
        }
    } else {
        int64_t goal = total / min_partitions;
        int64_t split_size = EM_MAX(1, EM_MIN(goal, max_split_bytes));
        if (kind == EM_INPUT_FIXED_RECORDS)
            split_size = EM_MAX((int64_t)record_length, split_size / record_length * record_length);
        for (size_t i = 0; i < files.n && rc == 0; i++)
            if (files.v[i].size > 0) rc = add_byte_splits(&splits, &files.v[i], split_size);
    }
    if (rc) goto fail;

    out->splits = splits.v;
    out->num_splits = (int)splits.n;
    out->num_files = (int)files.n;
    file_list_free(&files);
    return 0;

fail:
    em_input_plan_free(&(em_input_plan){splits.v, (int)splits.n, 0});
    file_list_free(&files);
    return rc;
}
