/* Tests of the input formats (src/rdd/input_plan.c, input_read.c) against independent
 * references: a whole-file read split on '\n' written here, hand-computed split layouts, and
 * the file bytes themselves for fixed-length records and whole files. */
#include "test.h"

#include "base/base.h"
#include "base/task.h"
#include "rdd/io.h"

#include <ember/record.h>

/* ---- helpers ----------------------------------------------------------------------------- */

typedef struct line {
    char *p;
    size_t n;
} line;

typedef struct lines {
    line *v;
    size_t n, cap;
} lines;

static void lines_push(lines *l, const void *p, size_t n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        CHECK(l->v);
    }
    l->v[l->n].p = malloc(n + 1);
    CHECK(l->v[l->n].p);
    memcpy(l->v[l->n].p, p, n);
    l->v[l->n].n = n;
    l->n++;
}

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i].p);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f);
    if (n) CHECK(fwrite(data, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

static char *path_in_tmp(const char *name)
{
    static char buf[8][2200];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 2200, "%s/%s", test_tmpdir(), name);
    return p;
}

/* The reference: scan the whole content byte by byte; a line ends at '\n' (a '\r' before it
 * dropped); whatever follows the last '\n' is a line when not empty. */
static void reference_lines(const unsigned char *d, size_t n, lines *out)
{
    size_t begin = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] != '\n') continue;
        size_t e = i;
        if (e > begin && d[e - 1] == '\r') e--;
        lines_push(out, d + begin, e - begin);
        begin = i + 1;
    }
    if (begin < n) lines_push(out, d + begin, n - begin);
}

/* Reads every split of the plan in order, appending lines; sums the task metrics. */
static void read_all_lines(const em_input_plan *plan, lines *out, int64_t *records, int64_t *bytes)
{
    *records = *bytes = 0;
    for (int s = 0; s < plan->num_splits; s++) {
        struct em_task t = {0};
        t.local_dir = test_tmpdir();
        em_iter *it = NULL;
        CHECK_OK(em_input_open(&plan->splits[s], EM_INPUT_LINES, 0, &t, &it));
        em_value v;
        int rc;
        while ((rc = it->next(it, &v)) == EM_ROW) {
            CHECK(em_value_type(v) == EM_TYPE_STRING);
            /* Decoded into our own buffer (the decoded length is at most the encoded one). */
            char *p = malloc(v.len + 1);
            CHECK(p);
            size_t n = em_value_copy_bytes(v, p, v.len + 1);
            CHECK(n <= v.len);
            lines_push(out, p, n);
            free(p);
        }
        CHECK_EQ_INT(rc, EM_DONE);
        CHECK_EQ_INT(it->next(it, &v), EM_DONE); /* stays done */
        em_iter_close(it);
        *records += t.metrics.records_read;
        *bytes += t.metrics.bytes_read;
    }
}

static void check_same_lines(const lines *got, const lines *want, const char *what)
{
    CHECK_MSG(got->n == want->n, "%s: %zu lines read, %zu expected", what, got->n, want->n);
    for (size_t i = 0; i < want->n; i++) {
        CHECK_MSG(got->v[i].n == want->v[i].n &&
                      memcmp(got->v[i].p, want->v[i].p, want->v[i].n) == 0,
                  "%s: line %zu differs (len %zu vs %zu)", what, i, got->v[i].n, want->v[i].n);
    }
}

/* Checks that the splits of one-file plan cover [0, size) in order, contiguously. */
static void check_coverage(const em_input_plan *plan, int64_t size)
{
    int64_t pos = 0;
    for (int s = 0; s < plan->num_splits; s++) {
        CHECK_EQ_INT(plan->splits[s].start, pos);
        CHECK(plan->splits[s].length > 0);
        CHECK_EQ_INT(plan->splits[s].file_size, size);
        pos += plan->splits[s].length;
    }
    CHECK_EQ_INT(pos, size);
}

/* Plans and reads `path` with the given parameters; compares with the reference lines. */
static void check_file(const char *path, const unsigned char *data, size_t n, int min_parts,
                       int64_t max_split)
{
    lines want = {0}, got = {0};
    reference_lines(data, n, &want);
    em_input_plan plan;
    CHECK_OK(em_input_plan_make(path, EM_INPUT_LINES, min_parts, max_split, 0, &plan));
    CHECK_EQ_INT(plan.num_files, 1);
    check_coverage(&plan, (int64_t)n);
    int64_t recs, bytes;
    read_all_lines(&plan, &got, &recs, &bytes);
    char what[200];
    snprintf(what, sizeof what, "size %zu min_parts %d max_split %lld (%d splits)", n, min_parts,
             (long long)max_split, plan.num_splits);
    check_same_lines(&got, &want, what);
    CHECK_EQ_INT(recs, (int64_t)want.n);
    CHECK_EQ_INT(bytes, (int64_t)n);
    em_input_plan_free(&plan);
    lines_free(&want);
    lines_free(&got);
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random content: lines of random lengths (many empty), random bytes including 0x00, 0xFF,
 * stray '\r' and invalid UTF-8, "\n" or "\r\n" endings, sometimes no final newline. */
static unsigned char *random_content(size_t target, size_t *len)
{
    unsigned char *d = malloc(target + 64);
    CHECK(d);
    size_t n = 0;
    while (n < target) {
        size_t ll;
        switch (rnd() % 6) {
        case 0:
            ll = 0;
            break;
        case 1:
            ll = rnd() % 3;
            break;
        case 2:
            ll = rnd() % 300;
            break;
        default:
            ll = rnd() % 40;
            break;
        }
        if (ll > target - n) ll = target - n;
        for (size_t i = 0; i < ll; i++) {
            uint64_t r = rnd() % 16;
            unsigned char c = r == 0   ? 0x00
                              : r == 1 ? 0xFF
                              : r == 2 ? '\r'
                              : r == 3 ? 0xC3
                                       : (unsigned char)('a' + rnd() % 26);
            d[n++] = c;
        }
        if (n >= target) break;
        if (rnd() % 4 == 0) d[n++] = '\r';
        d[n++] = '\n';
    }
    if (rnd() % 2 && n > 0 && d[n - 1] == '\n') n--; /* sometimes no trailing newline */
    *len = n;
    return d;
}

/* ---- LINES --------------------------------------------------------------------------------- */

TEST(lines_random_files_many_split_sizes)
{
    static const size_t sizes[] = {1, 2, 5, 17, 100, 1000, 4096, 20000};
    for (int round = 0; round < 24; round++) {
        size_t target = sizes[round % EM_ARRAY_LEN(sizes)], n;
        unsigned char *data = random_content(target, &n);
        const char *path = path_in_tmp("random.txt");
        write_file(path, data, n);
        int64_t max_splits[] = {
            1, 2, 3, 7, 64, 1000, (int64_t)n / 3, (int64_t)n - 1, (int64_t)n, (int64_t)n + 100};
        for (size_t k = 0; k < EM_ARRAY_LEN(max_splits); k++) {
            if (max_splits[k] <= 0) continue;
            if (n > 5000 && max_splits[k] < 3) continue; /* keep the split count sane */
            check_file(path, data, n, 1, max_splits[k]);
        }
        int mins[] = {1, 2, 3, 7, 50, 1000};
        for (size_t k = 0; k < EM_ARRAY_LEN(mins); k++) check_file(path, data, n, mins[k], 0);
        free(data);
    }
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(lines_handmade_cases)
{
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        {"", 0},
        {"\n", 1},
        {"\n\n\n", 3},
        {"a", 1},
        {"a\n", 2},
        {"a\r\n", 3},
        {"a\r", 2},
        {"\r\n\r\n", 4},
        {"abc\ndef", 7},
        {"abc\r\ndef\r\n\r\nxyz", 15},
        {"x\0y\n\xff\xfe\n\0\n", 9},
    };
    for (size_t c = 0; c < EM_ARRAY_LEN(cases); c++) {
        const char *path = path_in_tmp("hand.txt");
        write_file(path, cases[c].s, cases[c].n);
        if (cases[c].n == 0) {
            em_input_plan plan;
            CHECK_OK(em_input_plan_make(path, EM_INPUT_LINES, 2, 0, 0, &plan));
            CHECK_EQ_INT(plan.num_splits, 0);
            CHECK_EQ_INT(plan.num_files, 1);
            em_input_plan_free(&plan);
            continue;
        }
        for (int64_t ms = 1; ms <= (int64_t)cases[c].n + 1; ms++)
            check_file(path, (const unsigned char *)cases[c].s, cases[c].n, 1, ms);
    }
}

TEST(lines_known_values)
{
    /* "ab\ncd\r\n\nef": lines ab, cd, "", ef. */
    const char *path = path_in_tmp("k.txt");
    write_file(path, "ab\ncd\r\n\nef", 10);
    em_input_plan plan;
    CHECK_OK(em_input_plan_make(path, EM_INPUT_LINES, 1, 4, 0, &plan));
    /* split size 4: [0,4) [4,8) then 2 bytes left: 2/4 <= 1.1 -> [8,10). */
    CHECK_EQ_INT(plan.num_splits, 3);
    lines got = {0};
    int64_t r, b;
    read_all_lines(&plan, &got, &r, &b);
    CHECK_EQ_INT(got.n, 4);
    CHECK(got.v[0].n == 2 && memcmp(got.v[0].p, "ab", 2) == 0);
    CHECK(got.v[1].n == 2 && memcmp(got.v[1].p, "cd", 2) == 0);
    CHECK(got.v[2].n == 0);
    CHECK(got.v[3].n == 2 && memcmp(got.v[3].p, "ef", 2) == 0);
    lines_free(&got);

    /* The split holding "cd\r\n" starts at 4 = 'd'... no: offsets a0 b1 \n2 c3 d4: the line
     * "cd" starts at 3, inside split 0, so split 1 ([4,8)) yields only the "" line at 7. */
    em_iter *it;
    CHECK_OK(em_input_open(&plan.splits[1], EM_INPUT_LINES, 0, NULL, &it));
    em_value v;
    CHECK_EQ_INT(it->next(it, &v), EM_ROW);
    size_t n = 99;
    em_value_str(v, &n);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(it->next(it, &v), EM_DONE);
    em_iter_close(it);
    em_input_plan_free(&plan);
}

TEST(lines_split_layout_known_values)
{
    static unsigned char buf[1000];
    memset(buf, 'x', sizeof buf);
    struct {
        size_t size;
        int min_parts;
        int64_t max;
        int nsplits;
        int64_t last_len;
    } cases[] = {
        {100, 1, 10, 10, 10},   {105, 1, 10, 11, 5},      {111, 1, 10, 11, 11},
        {112, 1, 10, 12, 2},    {1000, 3, 0, 3, 334},     {1000, 1, 0, 1, 1000},
        {1000, 2, 300, 4, 100}, {1000, 1000, 0, 1000, 1}, {1, 5, 0, 1, 1},
        {21, 1, 20, 1, 21},     {23, 1, 20, 2, 3},        {110, 1, 10, 11, 10},
    };
    for (size_t c = 0; c < EM_ARRAY_LEN(cases); c++) {
        const char *path = path_in_tmp("layout.txt");
        write_file(path, buf, cases[c].size);
        em_input_plan plan;
        CHECK_OK(
            em_input_plan_make(path, EM_INPUT_LINES, cases[c].min_parts, cases[c].max, 0, &plan));
        CHECK_MSG(plan.num_splits == cases[c].nsplits, "case %zu: %d splits", c, plan.num_splits);
        CHECK_EQ_INT(plan.splits[plan.num_splits - 1].length, cases[c].last_len);
        check_coverage(&plan, (int64_t)cases[c].size);
        em_input_plan_free(&plan);
    }
}

TEST(lines_one_huge_line)
{
    size_t n = 3 * 1024 * 1024 + 17 + 5 + 9;
    unsigned char *d = malloc(n);
    CHECK(d);
    memcpy(d, "first\r\nsecond\n", 14);
    for (size_t i = 14; i < n - 9; i++) d[i] = (unsigned char)('A' + i % 23);
    d[1000] = 0;
    d[200000] = 0xFF;
    memcpy(d + n - 9, "\nlast\r\nz\n", 9);
    /* lines: first, second, <huge>, last, z */
    const char *path = path_in_tmp("huge.txt");
    write_file(path, d, n);
    int64_t maxs[] = {0, 100000, 500000, 1 << 20, 2900000, 4 << 20};
    for (size_t k = 0; k < EM_ARRAY_LEN(maxs); k++) check_file(path, d, n, 1, maxs[k]);
    check_file(path, d, n, 7, 0);
    check_file(path, d, n, 2, 0);
    free(d);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(lines_many_files_directory)
{
    const char *dir = path_in_tmp("dir");
    CHECK(mkdir(dir, 0777) == 0);
    /* Created out of order; hidden and underscore files and a sub-directory are skipped. */
    const char *names[] = {"c.txt", "a.txt", "b.txt", "empty.txt"};
    const char *contents[] = {"c1\nc2\n", "a1\na2", "b1\r\n", ""};
    char p[1200];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        write_file(p, contents[i], strlen(contents[i]));
    }
    snprintf(p, sizeof p, "%s/.hidden", dir);
    write_file(p, "h\n", 2);
    snprintf(p, sizeof p, "%s/_SUCCESS", dir);
    write_file(p, "s\n", 2);
    snprintf(p, sizeof p, "%s/sub", dir);
    CHECK(mkdir(p, 0777) == 0);
    snprintf(p, sizeof p, "%s/sub/x.txt", dir);
    write_file(p, "x\n", 2);

    em_input_plan plan;
    CHECK_OK(em_input_plan_make(dir, EM_INPUT_LINES, 2, 0, 0, &plan));
    CHECK_EQ_INT(plan.num_files, 4);
    lines got = {0};
    int64_t r, b;
    read_all_lines(&plan, &got, &r, &b);
    const char *want[] = {"a1", "a2", "b1", "c1", "c2"};
    CHECK_EQ_INT(got.n, 5);
    for (int i = 0; i < 5; i++)
        CHECK(got.v[i].n == strlen(want[i]) && memcmp(got.v[i].p, want[i], got.v[i].n) == 0);
    CHECK_EQ_INT(b, 5 + 4 + 6);
    lines_free(&got);
    em_input_plan_free(&plan);

    /* A trailing slash works the same. */
    snprintf(p, sizeof p, "%s/", dir);
    CHECK_OK(em_input_plan_make(p, EM_INPUT_LINES, 2, 0, 0, &plan));
    CHECK_EQ_INT(plan.num_files, 4);
    CHECK(strstr(plan.splits[0].path, "//") == NULL);
    em_input_plan_free(&plan);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(directory_of_empty_files_gives_no_splits)
{
    const char *dir = path_in_tmp("emptydir");
    CHECK(mkdir(dir, 0777) == 0);
    char p[1200];
    snprintf(p, sizeof p, "%s/a", dir);
    write_file(p, "", 0);
    snprintf(p, sizeof p, "%s/b", dir);
    write_file(p, "", 0);
    em_input_plan plan;
    CHECK_OK(em_input_plan_make(dir, EM_INPUT_LINES, 2, 0, 0, &plan));
    CHECK_EQ_INT(plan.num_splits, 0);
    CHECK_EQ_INT(plan.num_files, 2);
    em_input_plan_free(&plan);
}

TEST(glob_and_missing_paths)
{
    const char *dir = path_in_tmp("g");
    CHECK(mkdir(dir, 0777) == 0);
    char p[1200];
    const char *names[] = {"a2.log", "a1.log", "b1.log", "a3.txt", "_a0.log"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        write_file(p, names[i], strlen(names[i]));
    }
    snprintf(p, sizeof p, "%s/a9.log", dir); /* a directory matching the glob: skipped */
    CHECK(mkdir(p, 0777) == 0);

    em_input_plan plan;
    snprintf(p, sizeof p, "%s/a*.log", dir);
    CHECK_OK(em_input_plan_make(p, EM_INPUT_LINES, 1, 0, 0, &plan));
    CHECK_EQ_INT(plan.num_files, 2);
    CHECK_EQ_INT(plan.num_splits, 2);
    CHECK(strstr(plan.splits[0].path, "/a1.log") != NULL);
    CHECK(strstr(plan.splits[1].path, "/a2.log") != NULL);
    em_input_plan_free(&plan);

    snprintf(p, sizeof p, "%s/zz*.log", dir);
    int rc = em_input_plan_make(p, EM_INPUT_LINES, 1, 0, 0, &plan);
    CHECK_EQ_INT(rc, EM_ENOENT);
    CHECK(strstr(em_errmsg(), p) != NULL);
    CHECK_EQ_INT(plan.num_splits, 0);

    snprintf(p, sizeof p, "%s/no-such-file.txt", dir);
    rc = em_input_plan_make(p, EM_INPUT_LINES, 1, 0, 0, &plan);
    CHECK_EQ_INT(rc, EM_ENOENT);
    CHECK(strstr(em_errmsg(), p) != NULL);

    snprintf(p, sizeof p, "%s/a9.log", dir); /* an existing directory with no files */
    rc = em_input_plan_make(p, EM_INPUT_LINES, 1, 0, 0, &plan);
    CHECK_EQ_INT(rc, EM_ENOENT);
    CHECK(strstr(em_errmsg(), p) != NULL);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(read_error_names_file_and_offset)
{
    /* A split naming a directory: open works, read fails with EISDIR. */
    const char *dir = path_in_tmp("isdir");
    CHECK(mkdir(dir, 0777) == 0);
    em_input_split sp = {(char *)dir, 0, 10, 10, NULL, 0};
    em_iter *it = NULL;
    int rc = em_input_open(&sp, EM_INPUT_LINES, 0, NULL, &it);
    CHECK(rc < 0);
    CHECK(it == NULL);
    CHECK(strstr(em_errmsg(), dir) != NULL);
    CHECK(strstr(em_errmsg(), "offset 0") != NULL);

    em_input_split missing = {path_in_tmp("gone.txt"), 0, 10, 10, NULL, 0};
    rc = em_input_open(&missing, EM_INPUT_LINES, 0, NULL, &it);
    CHECK_EQ_INT(rc, EM_ENOENT);
    CHECK(strstr(em_errmsg(), "gone.txt") != NULL);
}

/* ---- FIXED_RECORDS ---------------------------------------------------------------------- */

TEST(fixed_records)
{
    const int rl = 7;
    size_t n = 7 * 1000;
    unsigned char *d = malloc(n);
    CHECK(d);
    for (size_t i = 0; i < n; i++) d[i] = (unsigned char)(rnd() & 0xFF);
    const char *path = path_in_tmp("fixed.bin");
    write_file(path, d, n);
    int64_t maxs[] = {1, 7, 10, 100, 3000, 7000, 0};
    int mins[] = {1, 1, 1, 3, 1, 1, 9};
    for (size_t k = 0; k < EM_ARRAY_LEN(maxs); k++) {
        em_input_plan plan;
        CHECK_OK(em_input_plan_make(path, EM_INPUT_FIXED_RECORDS, mins[k], maxs[k], rl, &plan));
        check_coverage(&plan, (int64_t)n);
        size_t pos = 0;
        int64_t recs = 0;
        for (int s = 0; s < plan.num_splits; s++) {
            CHECK_EQ_INT(plan.splits[s].start % rl, 0);
            CHECK_EQ_INT(plan.splits[s].length % rl, 0);
            struct em_task t = {0};
            em_iter *it;
            CHECK_OK(em_input_open(&plan.splits[s], EM_INPUT_FIXED_RECORDS, rl, &t, &it));
            em_value v;
            int rc;
            while ((rc = it->next(it, &v)) == EM_ROW) {
                CHECK(em_value_type(v) == EM_TYPE_BYTES);
                unsigned char got[16];
                CHECK_EQ_INT(em_value_copy_bytes(v, got, sizeof got), rl);
                CHECK(memcmp(got, d + pos, (size_t)rl) == 0);
                pos += (size_t)rl;
            }
            CHECK_EQ_INT(rc, EM_DONE);
            em_iter_close(it);
            recs += t.metrics.records_read;
        }
        CHECK_EQ_INT(pos, n);
        CHECK_EQ_INT(recs, 1000);
        em_input_plan_free(&plan);
    }
    free(d);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}

TEST(fixed_records_bad_size)
{
    const char *path = path_in_tmp("bad.bin");
    write_file(path, "0123456789", 10);
    em_input_plan plan;
    int rc = em_input_plan_make(path, EM_INPUT_FIXED_RECORDS, 2, 0, 4, &plan);
    CHECK_EQ_INT(rc, EM_EFORMAT);
    CHECK(strstr(em_errmsg(), "bad.bin") != NULL);
    CHECK(strstr(em_errmsg(), "10") != NULL);
    CHECK_EQ_INT(plan.num_splits, 0);
    rc = em_input_plan_make(path, EM_INPUT_FIXED_RECORDS, 2, 0, 0, &plan);
    CHECK_EQ_INT(rc, EM_EINVAL);
    CHECK_OK(em_input_plan_make(path, EM_INPUT_FIXED_RECORDS, 2, 0, 5, &plan));
    CHECK_EQ_INT(plan.num_splits, 2);
    em_input_plan_free(&plan);
}

/* ---- WHOLE_FILES ------------------------------------------------------------------------ */

/* The content of file i of the whole-files tests: text, a 0x00 byte for most, file 5 empty. */
static int whole_content(int i, char *c)
{
    if (i == 5) return 0;
    int n = snprintf(c, 64, "content of %d\n", i);
    if (i % 3 != 0) {
        memcpy(c + n, "x\0y", 3);
        n += 3;
    }
    return n;
}

static void check_whole_files(const char *dir, int nfiles, int min_parts)
{
    em_input_plan plan;
    CHECK_OK(em_input_plan_make(dir, EM_INPUT_WHOLE_FILES, min_parts, 0, 0, &plan));
    CHECK_EQ_INT(plan.num_files, nfiles);
    if (nfiles <= min_parts * 4)
        CHECK_EQ_INT(plan.num_splits, nfiles);
    else
        CHECK(plan.num_splits >= 1 && plan.num_splits <= min_parts + 1);
    int seen = 0;
    for (int s = 0; s < plan.num_splits; s++) {
        struct em_task t = {0};
        em_iter *it;
        CHECK_OK(em_input_open(&plan.splits[s], EM_INPUT_WHOLE_FILES, 0, &t, &it));
        em_value v;
        int rc;
        int64_t bytes = 0;
        while ((rc = it->next(it, &v)) == EM_ROW) {
            CHECK(em_value_type(v) == EM_TYPE_TUPLE);
            CHECK_EQ_INT(em_value_count(v), 2);
            char want_path[1200], want[64];
            snprintf(want_path, sizeof want_path, "%s/f%03d", dir, seen);
            int wn = whole_content(seen, want);
            size_t pn, cn;
            const char *pp = em_value_str(em_value_key(v), &pn);
            CHECK(pn == strlen(want_path) && memcmp(pp, want_path, pn) == 0);
            char content[64];
            cn = em_value_copy_bytes(em_value_val(v), content, sizeof content);
            CHECK(em_value_type(em_value_val(v)) == EM_TYPE_STRING);
            CHECK_EQ_INT(cn, wn);
            CHECK(memcmp(content, want, cn) == 0);
            bytes += (int64_t)cn;
            seen++;
        }
        CHECK_EQ_INT(rc, EM_DONE);
        CHECK_EQ_INT(bytes, t.metrics.bytes_read);
        CHECK_EQ_INT(bytes, plan.splits[s].length);
        em_iter_close(it);
    }
    CHECK_EQ_INT(seen, nfiles);
    em_input_plan_free(&plan);
}

TEST(whole_files)
{
    const char *dir = path_in_tmp("whole");
    CHECK(mkdir(dir, 0777) == 0);
    for (int i = 0; i < 40; i++) {
        char p[1200], c[64];
        snprintf(p, sizeof p, "%s/f%03d", dir, i);
        int n = whole_content(i, c);
        write_file(p, c, (size_t)n);
        if (i == 2) check_whole_files(dir, 3, 2); /* 3 files, min 2: one split per file */
    }
    check_whole_files(dir, 40, 2);  /* packed into about 2 groups */
    check_whole_files(dir, 40, 10); /* 40 <= 40: one per file */
    check_whole_files(dir, 40, 3);
    CHECK_EQ_INT(em__alloc_bytes(), 0); /* everything freed */
}
