/* The application of tests/e2e/test_master_recovery.sh: word count (as examples/wordcount.c:
 * "word<TAB>count" lines, checked by reference.py) whose map tasks hold at a gate, so that the
 * test can kill and restart the master while the job is under way, for as long as it needs:
 *
 *   recovery_app [--master URL] [--conf k=v]... INPUT OUTPUT_DIR GATE
 *
 * Each executor process, at its first input record, creates GATE.waiting.<pid> and waits until
 * the file GATE exists (at most 300 s; then the task fails), then counts as wordcount does.
 * The driver prints "application APP_ID" once registered (stdout, flushed).
 */
#include <ember/ember.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int gate_open; /* per process: the executor's tasks wait once */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int wait_gate(em_task *t, const char *gate)
{
    if (atomic_load(&gate_open)) return 0;
    char marker[4200];
    snprintf(marker, sizeof marker, "%s.waiting.%d", gate, (int)getpid());
    FILE *f = fopen(marker, "w");
    if (f) fclose(f);
    for (int i = 0; i < 3000 && access(gate, F_OK) != 0; i++) usleep(100 * 1000);
    if (access(gate, F_OK) != 0) return em_task_fail(t, "gate %s never opened", gate);
    atomic_store(&gate_open, 1);
    return 0;
}

/* line -> (word, 1) for each word of the line; arg: the gate's path */
static int split_words(em_task *t, em_value line, em_records *out, const void *arg)
{
    if (wait_gate(t, arg)) return -1;
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

static int format_line(em_task *t, em_value pair, em_records *out, const void *arg)
{
    (void)arg;
    size_t len;
    const char *word = em_value_str(em_value_key(pair), &len);
    char count[32];
    int n = snprintf(count, sizeof count, "\t%lld", (long long)em_value_int64(em_value_val(pair)));
    char *line = malloc(len + (size_t)n);
    if (!line) return em_task_fail(t, "out of memory");
    memcpy(line, word, len);
    memcpy(line + len, count, (size_t)n);
    em_put_str(out, line, len + (size_t)n);
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) < 0 || em_conf_parse_args(conf, &argc, argv) < 0) {
        fprintf(stderr, "recovery_app: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: recovery_app [--master URL] [--conf k=v]... INPUT OUTPUT GATE\n");
        em_conf_free(conf);
        return 2;
    }
    if (!em_conf_is_set(conf, "ember.app.name")) em_conf_set(conf, "ember.app.name", "recovery");
    em_context *ctx = NULL;
    int rc = em_context_create(NULL, NULL, conf, &ctx);
    em_conf_free(conf);
    if (rc == 0) {
        printf("application %s\n", em_context_app_id(ctx));
        em_rdd *lines = em_text_file(ctx, argv[1], 0);
        em_rdd *pairs = em_rdd_flat_map(lines, split_words, argv[3], strlen(argv[3]) + 1);
        em_rdd *counts = em_rdd_reduce_by_key(pairs, add, NULL, 0, 0);
        em_rdd *text = em_rdd_map(counts, format_line, NULL, 0);
        rc = text ? em_rdd_save_as_text_file(text, argv[2]) : -1;
    }
    if (rc != 0) fprintf(stderr, "recovery_app: %s\n", em_errmsg());
    em_context_stop(ctx);
    return rc == 0 ? 0 : 1;
}
