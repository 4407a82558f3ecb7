/* Tests of the atomic text output (src/rdd/output.c): part file contents against text written
 * here by hand, _SUCCESS, the staging protocol, errors, abort and failing iterators. */
#include "test.h"

#include "base/base.h"
#include "base/iter.h"
#include "base/task.h"
#include "rdd/io.h"

#include <dirent.h>
#include <ember/record.h>

/* An iterator over an em_records; fails with EM_EUSER after fail_after records if >= 0. */
typedef struct rec_iter {
    em_iter base;
    em_records *r;
    size_t cursor;
    long produced, fail_after;
} rec_iter;

static int rec_next(em_iter *base, em_value *out)
{
    rec_iter *it = (rec_iter *)base;
    if (it->fail_after >= 0 && it->produced >= it->fail_after)
        return em__set_error(EM_EUSER, "boom at record %ld", it->produced);
    int rc = em_records_next(it->r, &it->cursor, out);
    if (rc == EM_ROW) it->produced++;
    return rc;
}

static void rec_close(em_iter *base)
{
    (void)base;
}

static rec_iter make_iter(em_records *r, long fail_after)
{
    rec_iter it = {{rec_next, rec_close}, r, 0, 0, fail_after};
    return it;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *d = malloc(cap);
    size_t r;
    while ((r = fread(d + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) d = realloc(d, cap *= 2);
    }
    fclose(f);
    *n = len;
    return d;
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Number of entries of a directory, "." and ".." excluded; -1 if it cannot be opened. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void check_file_is(const char *path, const char *want, size_t wn)
{
    size_t n = 0;
    char *d = slurp(path, &n);
    CHECK_MSG(d != NULL, "%s missing", path);
    CHECK_MSG(n == wn && memcmp(d, want, wn) == 0, "%s: %zu bytes, %zu expected", path, n, wn);
    free(d);
}

/* Checks the contents of dir/name. */
static void check_file_in(const char *dir, const char *name, const char *want, size_t wn)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    check_file_is(p, want, wn);
}

/* Sets out (cap bytes) to <tmpdir>/name, sets up a job writing there with job_tag and returns
 * its staging directory. */
static char *job_setup(char *out, size_t cap, const char *name, const char *job_tag)
{
    snprintf(out, cap, "%s/%s", test_tmpdir(), name);
    char *staging = NULL;
    CHECK_OK(em_output_job_setup(out, job_tag, &staging));
    return staging;
}

/* Writes all of r as text: partition part, attempt attempt, no task. */
static void write_all(const char *staging, int part, int attempt, em_records *r)
{
    rec_iter it = make_iter(r, -1);
    CHECK_OK(em_output_write_partition(staging, part, attempt, &it.base, NULL, false));
}

TEST(write_commit_contents)
{
    char out[1200], staging_want[1300];
    char *staging = job_setup(out, sizeof out, "out", "job7");
    snprintf(staging_want, sizeof staging_want, "%s._ember_staging_job7", out);
    CHECK_EQ_STR(staging, staging_want);
    CHECK(exists(staging));
    CHECK(!exists(out));

    em_records *r = em_records_new();
    em_put_cstr(r, "hello");
    em_put_cstr(r, "");
    em_put_str(r, "a\0b\xff", 4);
    em_put_int64(r, 42);
    em_put_int64(r, -7);
    em_put_tuple_begin(r);
    em_put_cstr(r, "k");
    em_put_int64(r, 3);
    em_put_end(r);
    CHECK_OK(em_records_error(r));
    rec_iter it = make_iter(r, -1);
    struct em_task t = {0};
    CHECK_OK(em_output_write_partition(staging, 0, 0, &it.base, &t, false));
    em_records *empty = em_records_new();
    rec_iter it2 = make_iter(empty, -1);
    CHECK_OK(em_output_write_partition(staging, 12, 0, &it2.base, &t, false));
    CHECK_EQ_INT(count_entries(staging), 2); /* no temporary files left */

    CHECK_OK(em_output_job_commit(staging, out));
    CHECK(!exists(staging));
    static const char want0[] = "hello\n\na\0b\xff\n42\n-7\n(k,3)\n";
    check_file_in(out, "part-00000", want0, sizeof want0 - 1);
    check_file_in(out, "part-00012", "", 0);
    check_file_in(out, "_SUCCESS", "", 0);
    CHECK_EQ_INT(count_entries(out), 3);
    em__free(staging);
    em_records_free(r);
    em_records_free(empty);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(large_output_crosses_buffer)
{
    char out[1200];
    char *staging = job_setup(out, sizeof out, "big", "t");
    em_records *r = em_records_new();
    size_t cap = 8 << 20, wn = 0;
    char *want = malloc(cap);
    char *longline = malloc(3 << 20);
    memset(longline, 'L', 3 << 20);
    for (int i = 0; i < 200000; i++) {
        if (i == 100000) {
            em_put_str(r, longline, 3 << 20); /* one record bigger than the write buffer */
            memcpy(want + wn, longline, 3 << 20);
            wn += 3 << 20;
            want[wn++] = '\n';
        }
        char s[32];
        int n = snprintf(s, sizeof s, "line %d", i);
        em_put_str(r, s, (size_t)n);
        memcpy(want + wn, s, (size_t)n);
        wn += (size_t)n;
        want[wn++] = '\n';
    }
    write_all(staging, 3, 1, r);
    CHECK_OK(em_output_job_commit(staging, out));
    check_file_in(out, "part-00003", want, wn);
    free(want);
    free(longline);
    em_records_free(r);
    em__free(staging);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(existing_output_and_bad_parent)
{
    char out[1200];
    snprintf(out, sizeof out, "%s/exists", test_tmpdir());
    CHECK(mkdir(out, 0777) == 0);
    char *staging = NULL;
    int rc = em_output_job_setup(out, "1", &staging);
    CHECK_EQ_INT(rc, EM_EEXIST);
    CHECK(staging == NULL);
    CHECK(strstr(em_errmsg(), "already exists") != NULL);
    CHECK(strstr(em_errmsg(), out) != NULL);
    CHECK_EQ_INT(count_entries(test_tmpdir()), 1); /* no staging made */

    char bad[1300];
    snprintf(bad, sizeof bad, "%s/no/such/out", test_tmpdir());
    rc = em_output_job_setup(bad, "1", &staging);
    CHECK_EQ_INT(rc, EM_ENOENT);
    CHECK(strstr(em_errmsg(), "/no/such") != NULL);

    /* Parent is a file. */
    char file[1300], under[1400];
    snprintf(file, sizeof file, "%s/plain", test_tmpdir());
    FILE *f = fopen(file, "w");
    CHECK(f);
    fclose(f);
    snprintf(under, sizeof under, "%s/out", file);
    rc = em_output_job_setup(under, "1", &staging);
    CHECK(rc == EM_ENOTDIR);
}

TEST(trailing_slash_staging_is_a_sibling)
{
    char out[1200], want[1300];
    char *staging = job_setup(out, sizeof out, "o/", "x");
    snprintf(want, sizeof want, "%s/o._ember_staging_x", test_tmpdir());
    CHECK_EQ_STR(staging, want);
    CHECK_OK(em_output_job_commit(staging, out));
    snprintf(want, sizeof want, "%s/o/_SUCCESS", test_tmpdir());
    CHECK(exists(want));
    em__free(staging);
}

TEST(abort_leaves_nothing)
{
    char out[1200];
    char *staging = job_setup(out, sizeof out, "ab", "9");
    em_records *r = em_records_new();
    em_put_cstr(r, "x");
    write_all(staging, 0, 0, r);
    em_output_job_abort(staging);
    CHECK(!exists(staging));
    CHECK(!exists(out));
    CHECK_EQ_INT(count_entries(test_tmpdir()), 0);
    em_records_free(r);
    em__free(staging);
}

TEST(failing_iterator_leaves_no_part_file)
{
    char out[1200];
    char *staging = job_setup(out, sizeof out, "fail", "2");
    em_records *r = em_records_new();
    for (int i = 0; i < 10; i++) em_put_int64(r, i);
    rec_iter it = make_iter(r, 3);
    int rc = em_output_write_partition(staging, 4, 0, &it.base, NULL, false);
    CHECK_EQ_INT(rc, EM_EUSER);
    CHECK(strstr(em_errmsg(), "boom at record 3") != NULL);
    CHECK_EQ_INT(count_entries(staging), 0);

    /* A previous good attempt stays when a later attempt fails; a later good one replaces. */
    write_all(staging, 4, 1, r);
    rec_iter bad = make_iter(r, 5);
    CHECK(em_output_write_partition(staging, 4, 2, &bad.base, NULL, false) == EM_EUSER);
    check_file_in(staging, "part-00004", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n", 20);
    em_records *r2 = em_records_new();
    em_put_cstr(r2, "second");
    write_all(staging, 4, 3, r2);
    check_file_in(staging, "part-00004", "second\n", 7);
    CHECK_EQ_INT(count_entries(staging), 1);
    em_output_job_abort(staging);
    CHECK(!exists(staging));
    em_records_free(r);
    em_records_free(r2);
    em__free(staging);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(commit_when_output_appeared)
{
    char out[1200], p[1400];
    snprintf(out, sizeof out, "%s/late", test_tmpdir());
    for (int variant = 0; variant < 3; variant++) {
        char *staging = NULL;
        CHECK_OK(em_output_job_setup(out, "5", &staging));
        em_records *r = em_records_new();
        em_put_cstr(r, "mine");
        write_all(staging, 0, 0, r);
        /* Someone else creates the output: an empty dir, a dir with a file, a plain file. */
        if (variant < 2) {
            CHECK(mkdir(out, 0777) == 0);
            if (variant == 1) {
                snprintf(p, sizeof p, "%s/theirs", out);
                FILE *f = fopen(p, "w");
                CHECK(f);
                fclose(f);
            }
        } else {
            FILE *f = fopen(out, "w");
            CHECK(f);
            fclose(f);
        }
        int rc = em_output_job_commit(staging, out);
        CHECK_EQ_INT(rc, EM_EEXIST);
        CHECK(strstr(em_errmsg(), out) != NULL);
        /* Their output untouched; ours still in staging, without _SUCCESS. */
        if (variant < 2) CHECK_EQ_INT(count_entries(out), variant == 1 ? 1 : 0);
        CHECK_EQ_INT(count_entries(staging), 1);
        snprintf(p, sizeof p, "%s/_SUCCESS", staging);
        CHECK(!exists(p));
        em_output_job_abort(staging);
        CHECK(!exists(staging));
        CHECK_EQ_INT(em__rmtree(out), 0);
        em_records_free(r);
        em__free(staging);
    }
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(binary_output)
{
    char out[1200];
    char *staging = job_setup(out, sizeof out, "bin", "b");
    em_records *r = em_records_new();
    em_put_bytes(r, "\x00\x01\xff", 3);
    em_put_str(r, "ab\0", 3);
    em_put_bytes(r, "", 0);
    em_put_cstr(r, "\n");
    rec_iter it = make_iter(r, -1);
    CHECK_OK(em_output_write_partition(staging, 1, 0, &it.base, NULL, true));

    /* A record that is neither bytes nor string: EM_EFORMAT and no part file. */
    em_records *bad = em_records_new();
    em_put_bytes(bad, "ok", 2);
    em_put_int64(bad, 5);
    rec_iter it2 = make_iter(bad, -1);
    CHECK_EQ_INT(em_output_write_partition(staging, 2, 0, &it2.base, NULL, true), EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "int64") != NULL);
    CHECK_EQ_INT(count_entries(staging), 1);

    CHECK_OK(em_output_job_commit(staging, out));
    check_file_in(out, "part-00001",
                  "\x00\x01\xff"
                  "ab\0"
                  "\n",
                  7);
    em_records_free(r);
    em_records_free(bad);
    em__free(staging);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}
