/* A two-job driver for tests/e2e/test_cluster_security.sh: word count of INPUT into OUT1, then
 * "job 1 done" on stdout (flushed), then a wait for the file GO to appear (at most 300 s) while
 * the test attacks this driver's endpoint and its executors' block servers, then the same
 * count again into OUT2 on the same executors, then "job 2 done". Public API only; built by
 * the test script against libember.a, and shipped to the workers like any application.
 *
 *   security_app [--master URL] [--conf key=value ...] INPUT OUT1 GO OUT2
 *
 * Exit status 0; 1 with the error on stderr when a job fails; 2 for bad arguments; 3 when GO
 * never appears.
 */
#include <ember/ember.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static int word_count(em_context *ctx, const char *input, const char *output)
{
    em_rdd *lines = em_text_file(ctx, input, 0);
    em_rdd *pairs = em_rdd_flat_map(lines, split_words, NULL, 0);
    em_rdd *counts = em_rdd_reduce_by_key(pairs, add, NULL, 0, 0);
    em_rdd *text = em_rdd_map(counts, format_line, NULL, 0);
    return text ? em_rdd_save_as_text_file(text, output) : -1;
}

/* Polls for path every 100 ms, at most 300 s. 0 once it exists, -1 otherwise. */
static int wait_for_file(const char *path)
{
    for (int i = 0; i < 3000; i++) {
        if (access(path, F_OK) == 0) return 0;
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    }
    return -1;
}

int main(int argc, char **argv)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) < 0 || em_conf_parse_args(conf, &argc, argv) < 0) {
        fprintf(stderr, "security_app: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: security_app [--master URL] [--conf k=v ...] INPUT OUT1 GO OUT2\n");
        em_conf_free(conf);
        return 2;
    }
    em_context *ctx = NULL;
    int rc = em_context_create(NULL, "security-app", conf, &ctx);
    em_conf_free(conf);
    if (rc == 0 && (rc = word_count(ctx, argv[1], argv[2])) == 0) {
        printf("job 1 done\n");
        fflush(stdout);
        if (wait_for_file(argv[3])) {
            fprintf(stderr, "security_app: %s never appeared\n", argv[3]);
            em_context_stop(ctx);
            return 3;
        }
        if ((rc = word_count(ctx, argv[1], argv[4])) == 0) {
            printf("job 2 done\n");
            fflush(stdout);
        }
    }
    if (rc != 0) fprintf(stderr, "security_app: %s\n", em_errmsg());
    em_context_stop(ctx);
    return rc == 0 ? 0 : 1;
}
