/* terasort: sorts 100-byte records by their first 10 bytes (the TeraSort benchmark).
 *
 *   build/bin/ember gen terasort --records 1000000 /tmp/tera.in
 *   build/examples/terasort [--master local[4]] [--conf key=value ...] /tmp/tera.in /tmp/tera.out
 *
 * INPUT is a file, directory or glob of gensort records (100 bytes each: a 10-byte key and a
 * 90-byte value). OUTPUT_DIR (which must not exist) receives part-NNNNN files and _SUCCESS;
 * the part files concatenated in name order hold every record, sorted by key in unsigned byte
 * order (sortByKey uses a range partitioner, so partition i holds keys before partition i+1).
 * Records are written raw, without separators. In Spark's terms:
 *
 *   binaryRecords(INPUT, 100).map(r => (r.take(10), r.drop(10))).sortByKey()
 *                            .map { case (k, v) => k ++ v }.saveAsBinaryFile(OUTPUT_DIR)
 */
#include <ember/ember.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

enum { RECORD = 100, KEY = 10 };

/* record -> (key, value) as two bytes values. */
static int split_record(em_task *t, em_value rec, em_records *out, const void *arg)
{
    (void)arg;
    uint8_t buf[RECORD];
    if (em_value_copy_bytes(rec, buf, sizeof buf) != RECORD)
        return em_task_fail(t, "record of partition %d is not %d bytes", em_task_partition(t),
                            RECORD);
    em_put_tuple_begin(out);
    em_put_bytes(out, buf, KEY);
    em_put_bytes(out, buf + KEY, RECORD - KEY);
    em_put_end(out);
    return 0;
}

/* (key, value) -> the 100 raw bytes again. */
static int join_record(em_task *t, em_value pair, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    uint8_t buf[RECORD];
    size_t k = em_value_copy_bytes(em_value_key(pair), buf, KEY);
    size_t v = em_value_copy_bytes(em_value_val(pair), buf + KEY, RECORD - KEY);
    em_put_bytes(out, buf, k + v);
    return 0;
}

int main(int argc, char **argv)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) < 0 || em_conf_parse_args(conf, &argc, argv) < 0) {
        fprintf(stderr, "terasort: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    if (argc != 3 || argv[1][0] == '-') {
        fprintf(stderr, "usage: terasort [--master URL] [--conf key=value ...] INPUT OUTPUT_DIR\n");
        em_conf_free(conf);
        return 2;
    }
    const char *input = argv[1], *output = argv[2];
    struct stat st;
    if (stat(output, &st) == 0) {
        fprintf(stderr, "terasort: output directory '%s' already exists\n", output);
        em_conf_free(conf);
        return 1;
    }

    em_context *ctx = NULL;
    if (!em_conf_is_set(conf, "ember.app.name")) em_conf_set(conf, "ember.app.name", "terasort");
    int rc = em_context_create(NULL, NULL, conf, &ctx);
    em_conf_free(conf);
    if (rc == 0) {
        em_rdd *records = em_binary_records(ctx, input, RECORD);
        em_rdd *pairs = em_rdd_map(records, split_record, NULL, 0);
        em_rdd *sorted = em_rdd_sort_by_key(pairs, true, 0);
        em_rdd *raw = em_rdd_map(sorted, join_record, NULL, 0);
        rc = raw ? em_rdd_save_as_binary_file(raw, output) : -1;
    }
    if (rc != 0) fprintf(stderr, "terasort: %s\n", em_errmsg());
    em_context_stop(ctx);
    return rc == 0 ? 0 : 1;
}
