/* Configuration table tests: defaults, size and duration parsing against literal values, bad
 * values and unknown keys, properties files, the environment, command-line parsing, precedence
 * and the printed table. */
#include "base/conf_int.h"
#include "test.h"

#include <ember/ember.h>

static const struct {
    const char *name, *def;
} table[] = {
#define EM_CONF_OPTION(name, type, def, min, max, allowed, flags, doc) {name, def},
#include "base/conf_options.def"
#undef EM_CONF_OPTION
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(text, f);
    fclose(f);
}

TEST(defaults)
{
    em_conf *c = em_conf_new();
    CHECK(c);
    CHECK_EQ_STR(em_conf_get_str(c, "ember.master"), "local[*]");
    CHECK_EQ_STR(em_conf_get_str(c, "ember.app.name"), "ember-app");
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.executor.memory"), 1073741824);
    CHECK_EQ_INT(em_conf_get_int(c, "ember.executor.cores"), 1);
    CHECK(em_conf_get_double(c, "ember.memory.fraction") == 0.6);
    CHECK(em_conf_get_double(c, "ember.memory.storageFraction") == 0.5);
    CHECK_EQ_INT(em_conf_get_int(c, "ember.task.maxFailures"), 4);
    CHECK_EQ_INT(em_conf_get_int(c, "ember.default.parallelism"), 0);
    CHECK_EQ_STR(em_conf_get_str(c, "ember.io.compression.codec"), "lz4");
    CHECK(em_conf_get_bool(c, "ember.shuffle.compress"));
    CHECK(!em_conf_get_bool(c, "ember.speculation"));
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.shuffle.file.buffer"), 32768);
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.shuffle.reducer.maxSizeInFlight"), 48 << 20);
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.files.maxPartitionBytes"), 128 << 20);
    CHECK_EQ_INT(em_conf_get_ms(c, "ember.locality.wait"), 3000);
    CHECK_EQ_INT(em_conf_get_ms(c, "ember.network.timeout"), 120000);
    CHECK_EQ_INT(em_conf_get_int(c, "ember.ui.port"), 4040);
    CHECK_EQ_STR(em_conf_get_str(c, "ember.authenticate.secret"), "");
    CHECK_EQ_STR(em_conf_get_str(c, "ember.scheduler.mode"), "FIFO");
    CHECK(!em_conf_is_set(c, "ember.master"));
    /* Wrong-type reads give the zero value. */
    CHECK_EQ_INT(em_conf_get_int(c, "ember.executor.memory"), 0);
    CHECK_EQ_INT(em_conf_get_int(c, "ember.nope"), 0);
    /* Every default of the table is valid for its own option (type and bounds). */
    CHECK_EQ_INT(em__conf_option_count(), sizeof table / sizeof table[0]);
    CHECK(sizeof table / sizeof table[0] >= 37);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        CHECK_EQ_STR(em__conf_option_name(i), table[i].name);
        int rc = em_conf_set(c, table[i].name, table[i].def);
        CHECK_MSG(rc == 0, "default of %s: %s", table[i].name, em_errmsg());
    }
    em_conf_free(c);
    em_conf_free(NULL);
}

TEST(sizes_and_durations)
{
    em_conf *c = em_conf_new();
    static const struct {
        const char *text;
        long long bytes;
    } sizes[] = {{"512m", 536870912LL}, {"1g", 1073741824LL},    {"64k", 65536},
                 {"10b", 10},           {"2G", 2147483648LL},    {"3MB", 3145728},
                 {"4096", 4096},        {"1t", 1099511627776LL}, {" 7k ", 7168}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK_OK(em_conf_set(c, "ember.driver.maxResultSize", sizes[i].text));
        CHECK_EQ_INT(em_conf_get_bytes(c, "ember.driver.maxResultSize"), sizes[i].bytes);
    }
    static const struct {
        const char *text;
        long long ms;
    } durs[] = {{"200ms", 200}, {"3s", 3000},   {"1min", 60000},  {"2h", 7200000},
                {"1500", 1500}, {"5m", 300000}, {"1d", 86400000}, {"2000us", 2}};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        CHECK_OK(em_conf_set(c, "ember.locality.wait", durs[i].text));
        CHECK_EQ_INT(em_conf_get_ms(c, "ember.locality.wait"), durs[i].ms);
    }
    CHECK_OK(em_conf_set(c, "ember.speculation", "TRUE"));
    CHECK(em_conf_get_bool(c, "ember.speculation"));
    CHECK_OK(em_conf_set(c, "ember.speculation", "no"));
    CHECK(!em_conf_get_bool(c, "ember.speculation"));
    CHECK_OK(em_conf_set(c, "ember.io.compression.codec", "ZSTD"));
    CHECK_EQ_STR(em_conf_get_str(c, "ember.io.compression.codec"), "zstd");
    CHECK_OK(em_conf_set(c, "ember.memory.fraction", "1"));
    CHECK(em_conf_get_double(c, "ember.memory.fraction") == 1.0);
    em_conf_free(c);
}

#define CHECK_BAD(c, key, val, ...)                                                                \
    do {                                                                                           \
        CHECK_EQ_INT(em_conf_set(c, key, val), EM_ECONF);                                          \
        const char *want_[] = {__VA_ARGS__};                                                       \
        for (size_t w_ = 0; w_ < sizeof want_ / sizeof want_[0]; w_++)                             \
            CHECK_MSG(strstr(em_errmsg(), want_[w_]), "message '%s' lacks '%s'", em_errmsg(),      \
                      want_[w_]);                                                                  \
    } while (0)

TEST(bad_values_rejected)
{
    em_conf *c = em_conf_new();
    CHECK_BAD(c, "ember.foo", "1", "unknown option 'ember.foo' (see `ember conf`)");
    CHECK_BAD(c, "ember.executor.memory", "12q",
              "option ember.executor.memory: '12q' is not a size (e.g. 512m, 2g)");
    CHECK_BAD(c, "ember.executor.memory", "-5m", "ember.executor.memory", "not a size");
    CHECK_BAD(c, "ember.executor.memory", "512k", "ember.executor.memory", "out of bounds",
              ">= 1m");
    CHECK_BAD(c, "ember.task.maxFailures", "0", "ember.task.maxFailures", ">= 1");
    CHECK_BAD(c, "ember.task.maxFailures", "three", "ember.task.maxFailures", "not an integer");
    CHECK_BAD(c, "ember.memory.fraction", "0", "ember.memory.fraction", "(0, 1]");
    CHECK_BAD(c, "ember.memory.fraction", "1.5", "ember.memory.fraction", "(0, 1]");
    CHECK_BAD(c, "ember.memory.fraction", "abc", "not a number");
    CHECK_BAD(c, "ember.io.compression.zstd.level", "20", "[1, 19]");
    CHECK_BAD(c, "ember.io.compression.codec", "gzip", "ember.io.compression.codec",
              "not one of lz4|zstd|none");
    CHECK_BAD(c, "ember.shuffle.compress", "maybe", "ember.shuffle.compress", "boolean");
    CHECK_BAD(c, "ember.network.timeout", "soon", "ember.network.timeout", "not a duration");
    CHECK_BAD(c, "ember.network.timeout", "0", "ember.network.timeout", "out of bounds");
    CHECK_BAD(c, "ember.driver.maxResultSize", "99999999999t", "not a size"); /* overflow */
    /* Rejected values leave the old one. */
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.executor.memory"), 1 << 30);
    CHECK(!em_conf_is_set(c, "ember.executor.memory"));
    CHECK_EQ_INT(em_conf_set_pair(c, "ember.executor.memory"), EM_ECONF);
    CHECK_OK(em_conf_set_pair(c, "ember.executor.memory=2g"));
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.executor.memory"), 2LL << 30);
    CHECK(em_conf_is_set(c, "ember.executor.memory"));
    em_conf_free(c);
}

TEST(file_loading)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/a.conf", test_tmpdir());
    write_file(path, "# a comment\n"
                     "\n"
                     "ember.executor.memory   4g\n"
                     "  ember.app.name=my app  \n"
                     "ember.task.maxFailures = 8\n"
                     "   # indented comment\n"
                     "ember.ui.enabled\tfalse\n");
    em_conf *c = em_conf_new();
    CHECK_OK(em_conf_load_file(c, path));
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.executor.memory"), 4LL << 30);
    CHECK_EQ_STR(em_conf_get_str(c, "ember.app.name"), "my app");
    CHECK_EQ_INT(em_conf_get_int(c, "ember.task.maxFailures"), 8);
    CHECK(!em_conf_get_bool(c, "ember.ui.enabled"));
    CHECK(em_conf_is_set(c, "ember.app.name"));
    /* Errors name the file and line, and the option. */
    write_file(path, "ember.app.name x\n# c\nember.executor.memory 12q\n");
    CHECK_EQ_INT(em_conf_load_file(c, path), EM_ECONF);
    char want[1300];
    snprintf(want, sizeof want, "%s:3: option ember.executor.memory: '12q' is not a size", path);
    CHECK_MSG(strstr(em_errmsg(), want), "got '%s'", em_errmsg());
    write_file(path, "\n\nember.bogus 1\n");
    CHECK_EQ_INT(em_conf_load_file(c, path), EM_ECONF);
    snprintf(want, sizeof want, "%s:3: unknown option 'ember.bogus'", path);
    CHECK_MSG(strstr(em_errmsg(), want), "got '%s'", em_errmsg());
    snprintf(path, sizeof path, "%s/missing.conf", test_tmpdir());
    CHECK_EQ_INT(em_conf_load_file(c, path), EM_ENOENT);
    CHECK(strstr(em_errmsg(), "missing.conf"));
    em_conf_free(c);
}

TEST(environment_and_defaults_file)
{
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(path, sizeof path, "%s/ember-defaults.conf", dir);
    write_file(path, "ember.executor.memory 2g\nember.task.maxFailures 6\nember.app.name file\n");
    setenv("EMBER_CONF_DIR", dir, 1);
    setenv("EMBER_EXECUTOR_MEMORY", "3g", 1);
    setenv("EMBER_TASK_MAXFAILURES", "7", 1);
    setenv("EMBER_SHUFFLE_SORT_BYPASSMERGETHRESHOLD", "50", 1);
    em_conf *c = em_conf_new();
    /* Set before loading: an explicit set still wins over file and environment. */
    CHECK_OK(em_conf_set(c, "ember.task.maxFailures", "9"));
    CHECK_OK(em_conf_load_defaults(c));
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.executor.memory"), 3LL << 30); /* env > file */
    CHECK_EQ_INT(em_conf_get_int(c, "ember.task.maxFailures"), 9);          /* set > env */
    CHECK_EQ_STR(em_conf_get_str(c, "ember.app.name"), "file");             /* file > default */
    CHECK_EQ_INT(em_conf_get_int(c, "ember.shuffle.sort.bypassMergeThreshold"), 50);
    CHECK(!em_conf_is_set(c, "ember.ui.port"));
    /* Set after loading also wins; a later file does not undo env or set values. */
    CHECK_OK(em_conf_set(c, "ember.executor.memory", "5g"));
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.executor.memory"), 5LL << 30);
    CHECK_OK(em_conf_load_file(c, path));
    CHECK_EQ_INT(em_conf_get_bytes(c, "ember.executor.memory"), 5LL << 30);
    CHECK_EQ_INT(em_conf_get_int(c, "ember.task.maxFailures"), 9);
    /* A clone is deep and independent. */
    em_conf *d = em_conf_clone(c);
    em_conf_free(c);
    CHECK_EQ_STR(em_conf_get_str(d, "ember.app.name"), "file");
    CHECK_EQ_INT(em_conf_get_bytes(d, "ember.executor.memory"), 5LL << 30);
    CHECK(em_conf_is_set(d, "ember.app.name"));
    em_conf_free(d);
    /* A bad environment value names the variable and the option. */
    setenv("EMBER_EXECUTOR_MEMORY", "lots", 1);
    c = em_conf_new();
    CHECK_EQ_INT(em_conf_load_defaults(c), EM_ECONF);
    CHECK(strstr(em_errmsg(), "EMBER_EXECUTOR_MEMORY"));
    CHECK(strstr(em_errmsg(), "ember.executor.memory"));
    em_conf_free(c);
}

TEST(parse_args)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/p.conf", test_tmpdir());
    write_file(path, "ember.ui.port 5050\nember.app.name from-file\n");
    char propsopt[1300];
    snprintf(propsopt, sizeof propsopt, "--properties-file=%s", path);
    char *argv[] = {"prog",     "input.txt",
                    "--master", "local[4]",
                    "--conf",   "ember.executor.cores=3",
                    "-v",       "--name=myjob",
                    propsopt,   "--conf=ember.speculation=true",
                    "out",      "--",
                    "--conf",   "ember.ui.port=1",
                    NULL};
    int argc = 14;
    em_conf *c = em_conf_new();
    CHECK_OK(em_conf_parse_args(c, &argc, argv));
    CHECK_EQ_INT(argc, 7);
    const char *rest[] = {"prog", "input.txt", "-v", "out", "--", "--conf", "ember.ui.port=1"};
    for (int i = 0; i < 7; i++) CHECK_EQ_STR(argv[i], rest[i]);
    CHECK(argv[7] == NULL);
    CHECK_EQ_STR(em_conf_get_str(c, "ember.master"), "local[4]");
    CHECK_EQ_STR(em_conf_get_str(c, "ember.app.name"), "myjob"); /* --name beats the file */
    CHECK_EQ_INT(em_conf_get_int(c, "ember.executor.cores"), 3);
    CHECK_EQ_INT(em_conf_get_int(c, "ember.ui.port"), 5050);
    CHECK(em_conf_get_bool(c, "ember.speculation"));

    char *bad1[] = {"prog", "--conf", "ember.executor.cores", "x", NULL};
    argc = 4;
    CHECK_EQ_INT(em_conf_parse_args(c, &argc, bad1), EM_ECONF);
    CHECK_EQ_INT(argc, 4); /* untouched on error */
    CHECK(strstr(em_errmsg(), "key=value"));
    char *bad2[] = {"prog", "--conf", "ember.nosuch=1", NULL};
    argc = 3;
    CHECK_EQ_INT(em_conf_parse_args(c, &argc, bad2), EM_ECONF);
    CHECK(strstr(em_errmsg(), "ember.nosuch"));
    char *bad3[] = {"prog", "--master", NULL};
    argc = 2;
    CHECK_EQ_INT(em_conf_parse_args(c, &argc, bad3), EM_ECONF);
    CHECK(strstr(em_errmsg(), "--master"));
    em_conf_free(c);
}

TEST(print_table)
{
    em_conf *c = em_conf_new();
    CHECK_OK(em_conf_set(c, "ember.executor.memory", "2g"));
    CHECK_OK(em_conf_set(c, "ember.authenticate.secret", "hunter2"));
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    em_conf_print_table(c, f);
    fclose(f);
    CHECK(strstr(text, "hunter2") == NULL);
    CHECK(strstr(text, "(redacted)"));
    /* One line per option plus a header; every option named; columns aligned. */
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    CHECK_EQ_INT(lines, (int)(sizeof table / sizeof table[0]) + 1);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) CHECK(strstr(text, table[i].name));
    char *mem = strstr(text, "\nember.executor.memory ");
    CHECK(mem);
    char *eol = strchr(mem + 1, '\n');
    *eol = '\0';
    CHECK(strstr(mem, "bytes"));
    CHECK(strstr(mem, " 1g "));
    CHECK(strstr(mem, "(current: 2g)"));
    const char *hdr_type = strstr(text, "TYPE");
    const char *m_type = strstr(mem, "bytes");
    CHECK_EQ_INT(hdr_type - text, m_type - (mem + 1));
    free(text);
    em_conf_free(c);
}
