/* wordcount: counts the words of a text input, the "hello world" of Ember (and of Spark).
 *
 *   build/examples/wordcount [--master local[4]] [--conf key=value ...] INPUT OUTPUT_DIR
 *
 * INPUT is a file, a directory or a glob. A word is a maximal run of bytes other than ASCII
 * whitespace (space, \t, \n, \v, \f, \r); any other bytes, UTF-8 or not, belong to words.
 * OUTPUT_DIR (which must not exist) receives part-NNNNN files of "word<TAB>count" lines and a
 * _SUCCESS marker. The job is, in Spark's terms:
 *
 *   textFile(INPUT).flatMap(split).map(w => (w, 1)).reduceByKey(_ + _)
 *                  .map { case (w, n) => s"$w\t$n" }.saveAsTextFile(OUTPUT_DIR)
 */
#include <ember/ember.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* line -> (word, 1) for each word of the line. */
static int split_words(em_task *t, em_value line, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    size_t len;
    const char *s = em_value_str(line, &len);
    for (size_t i = 0; i < len;) {
        while (i < len && is_space((unsigned char)s[i])) i++;
        size_t start = i;
        while (i < len && !is_space((unsigned char)s[i])) i++;
        if (i > start) {
            em_put_tuple_begin(out);
            em_put_str(out, s + start, i - start);
            em_put_int64(out, 1);
            em_put_end(out);
        }
    }
    return 0;
}

static int add(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_int64(out, em_value_int64(a) + em_value_int64(b));
    return 0;
}

/* (word, n) -> "word<TAB>n" */
static int format_line(em_task *t, em_value pair, em_records *out, const void *arg)
{
    (void)arg;
    size_t len;
    const char *word = em_value_str(em_value_key(pair), &len);
    char count[32];
    int n = snprintf(count, sizeof count, "\t%lld", (long long)em_value_int64(em_value_val(pair)));
    char *line = malloc(len + (size_t)n);
    if (!line) return em_task_fail(t, "out of memory formatting a word of %zu bytes", len);
    memcpy(line, word, len);
    memcpy(line + len, count, (size_t)n);
    em_put_str(out, line, len + (size_t)n);
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) < 0 || em_conf_parse_args(conf, &argc, argv) < 0) {
        fprintf(stderr, "wordcount: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    if (argc != 3 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: wordcount [--master URL] [--conf key=value ...] INPUT OUTPUT_DIR\n");
        em_conf_free(conf);
        return 2;
    }
    const char *input = argv[1], *output = argv[2];
    struct stat st;
    if (stat(output, &st) == 0) {
        fprintf(stderr, "wordcount: output directory '%s' already exists\n", output);
        em_conf_free(conf);
        return 1;
    }

    em_context *ctx = NULL;
    if (!em_conf_is_set(conf, "ember.app.name")) em_conf_set(conf, "ember.app.name", "wordcount");
    int rc = em_context_create(NULL, NULL, conf, &ctx);
    em_conf_free(conf);
    if (rc == 0) {
        em_rdd *lines = em_text_file(ctx, input, 0);
        em_rdd *pairs = em_rdd_flat_map(lines, split_words, NULL, 0);
        em_rdd *counts = em_rdd_reduce_by_key(pairs, add, NULL, 0, 0);
        em_rdd *text = em_rdd_map(counts, format_line, NULL, 0);
        rc = text ? em_rdd_save_as_text_file(text, output) : -1;
    }
    if (rc != 0) fprintf(stderr, "wordcount: %s\n", em_errmsg());
    em_context_stop(ctx);
    return rc == 0 ? 0 : 1;
}
