/* join: the inner join of two tab-separated key/value files.
 *
 *   build/examples/join [--master local[4]] [--conf key=value ...] LEFT RIGHT OUTPUT_DIR
 *
 * Each line of LEFT and RIGHT (files, directories or globs) is "key<TAB>value": the key is
 * everything before the first tab and the value everything after it (it may hold more tabs, or
 * be empty). A line without a tab fails the job, naming the line. For every key present on
 * both sides, every pair of a left and a right value gives one output line
 * "key<TAB>left<TAB>right" in OUTPUT_DIR (part-NNNNN files and _SUCCESS; it must not exist).
 * In Spark's terms:
 *
 *   val l = textFile(LEFT).map(split); val r = textFile(RIGHT).map(split)
 *   l.join(r).map { case (k, (v, w)) => s"$k\t$v\t$w" }.saveAsTextFile(OUTPUT_DIR)
 */
#include <ember/ember.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "key<TAB>value" -> (key, value) */
static int split_line(em_task *t, em_value line, em_records *out, const void *arg)
{
    (void)arg;
    size_t len;
    const char *s = em_value_str(line, &len);
    const char *tab = len ? memchr(s, '\t', len) : NULL;
    if (!tab)
        return em_task_fail(t, "line without a tab (expected key<TAB>value): '%.*s'%s",
                            (int)(len < 100 ? len : 100), len ? s : "", len > 100 ? "..." : "");
    em_put_tuple_begin(out);
    em_put_str(out, s, (size_t)(tab - s));
    em_put_str(out, tab + 1, len - (size_t)(tab - s) - 1);
    em_put_end(out);
    return 0;
}

/* (key, (left, right)) -> "key<TAB>left<TAB>right" */
static int format_line(em_task *t, em_value pair, em_records *out, const void *arg)
{
    (void)arg;
    em_value lr = em_value_val(pair);
    em_value parts[3] = {em_value_key(pair), em_value_at(lr, 0), em_value_at(lr, 1)};
    const char *s[3];
    size_t len[3], total = 2;
    for (int i = 0; i < 3; i++) {
        s[i] = em_value_str(parts[i], &len[i]);
        total += len[i];
    }
    char *line = malloc(total), *p = line;
    if (!line) return em_task_fail(t, "out of memory formatting a line of %zu bytes", total);
    for (int i = 0; i < 3; i++) {
        if (i) *p++ = '\t';
        if (len[i]) memcpy(p, s[i], len[i]);
        p += len[i];
    }
    em_put_str(out, line, total);
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) < 0 || em_conf_parse_args(conf, &argc, argv) < 0) {
        fprintf(stderr, "join: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    if (argc != 4 || argv[1][0] == '-' || argv[2][0] == '-') {
        fprintf(stderr,
                "usage: join [--master URL] [--conf key=value ...] LEFT RIGHT OUTPUT_DIR\n");
        em_conf_free(conf);
        return 2;
    }
    const char *left = argv[1], *right = argv[2], *output = argv[3];
    struct stat st;
    if (stat(output, &st) == 0) {
        fprintf(stderr, "join: output directory '%s' already exists\n", output);
        em_conf_free(conf);
        return 1;
    }

    em_context *ctx = NULL;
    if (!em_conf_is_set(conf, "ember.app.name")) em_conf_set(conf, "ember.app.name", "join");
    int rc = em_context_create(NULL, NULL, conf, &ctx);
    em_conf_free(conf);
    if (rc == 0) {
        em_rdd *l = em_rdd_map(em_text_file(ctx, left, 0), split_line, NULL, 0);
        em_rdd *r = l ? em_rdd_map(em_text_file(ctx, right, 0), split_line, NULL, 0) : NULL;
        em_rdd *joined = em_rdd_join(l, r, 0);
        em_rdd *text = em_rdd_map(joined, format_line, NULL, 0);
        rc = text ? em_rdd_save_as_text_file(text, output) : -1;
    }
    if (rc != 0) fprintf(stderr, "join: %s\n", em_errmsg());
    em_context_stop(ctx);
    return rc == 0 ? 0 : 1;
}
