/* pagerank: PageRank of the nodes of a directed graph, as in Spark's SparkPageRank example.
 *
 *   build/bin/ember gen graph --nodes 10000 --edges 100000 /tmp/graph.txt
 *   build/examples/pagerank [--master local[4]] [--iterations 10] /tmp/graph.txt /tmp/ranks
 *
 * EDGES (a file, directory or glob) holds one edge "src dst" per line, separated by spaces or
 * tabs (further fields are ignored); blank lines and lines starting with '#' are skipped, a
 * line with a single field fails the job. Node ids are the tokens as text; an edge listed
 * twice counts once. Each iteration every node sends rank / out-degree to each node it links
 * to, and a node's new rank is 0.15 + 0.85 * (sum of what it received); every node starts at
 * 1.0. As in Spark's example, a node that receives nothing (no in-links) drops out of the
 * ranks, and a node without out-links (dangling) keeps its rank but passes nothing on.
 * OUTPUT_DIR (which must not exist) receives "node<TAB>rank" lines, rank printed with %.15g.
 * In Spark's terms:
 *
 *   val links = textFile(EDGES).map(parse).distinct().groupByKey().cache()
 *   var ranks = links.mapValues(v => 1.0)
 *   for (i <- 1 to iterations) {
 *     val contribs = links.join(ranks).values.flatMap { case (urls, rank) =>
 *       urls.map(url => (url, rank / urls.size)) }
 *     ranks = contribs.reduceByKey(_ + _).mapValues(0.15 + 0.85 * _)
 *   }
 *   ranks.map { case (n, r) => f"$n\t$r%.15g" }.saveAsTextFile(OUTPUT_DIR)
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

/* "src dst" -> (src, dst); blank and comment lines -> nothing. */
static int parse_edge(em_task *t, em_value line, em_records *out, const void *arg)
{
    (void)arg;
    size_t len, i = 0, tok[2][2], n = 0;
    const char *s = em_value_str(line, &len);
    if (len > 0 && s[0] == '#') return 0;
    while (n < 2) {
        while (i < len && is_space((unsigned char)s[i])) i++;
        if (i == len) break;
        tok[n][0] = i;
        while (i < len && !is_space((unsigned char)s[i])) i++;
        tok[n++][1] = i;
    }
    if (n == 0) return 0;
    if (n == 1)
        return em_task_fail(t, "edge line with one field (expected 'src dst'): '%.*s'%s",
                            (int)(len < 100 ? len : 100), s, len > 100 ? "..." : "");
    em_put_tuple_begin(out);
    em_put_str(out, s + tok[0][0], tok[0][1] - tok[0][0]);
    em_put_str(out, s + tok[1][0], tok[1][1] - tok[1][0]);
    em_put_end(out);
    return 0;
}

static int one(em_task *t, em_value v, em_records *out, const void *arg)
{
    (void)t, (void)v, (void)arg;
    em_put_double(out, 1.0);
    return 0;
}

/* (url, ([dst...], rank)) -> (dst, rank / #dsts) for each dst. */
static int spread(em_task *t, em_value pair, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_value links_rank = em_value_val(pair), urls = em_value_at(links_rank, 0), dst;
    double rank = em_value_double(em_value_at(links_rank, 1));
    em_elems it;
    size_t n = 0;
    int rc;
    em_elems_init(&it, urls);
    while ((rc = em_elems_next(&it, &dst)) == EM_ROW) n++;
    if (rc < 0) return rc;
    em_elems_init(&it, urls);
    while ((rc = em_elems_next(&it, &dst)) == EM_ROW) {
        em_put_tuple_begin(out);
        em_put_value(out, dst);
        em_put_double(out, rank / (double)n);
        em_put_end(out);
    }
    return rc;
}

static int add(em_task *t, em_value a, em_value b, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_double(out, em_value_double(a) + em_value_double(b));
    return 0;
}

static int damp(em_task *t, em_value sum, em_records *out, const void *arg)
{
    (void)t, (void)arg;
    em_put_double(out, 0.15 + 0.85 * em_value_double(sum));
    return 0;
}

/* (node, rank) -> "node<TAB>rank" */
static int format_line(em_task *t, em_value pair, em_records *out, const void *arg)
{
    (void)arg;
    size_t len;
    const char *node = em_value_str(em_value_key(pair), &len);
    char rank[64];
    int n = snprintf(rank, sizeof rank, "\t%.15g", em_value_double(em_value_val(pair)));
    char *line = malloc(len + (size_t)n);
    if (!line) return em_task_fail(t, "out of memory formatting node of %zu bytes", len);
    memcpy(line, node, len);
    memcpy(line + len, rank, (size_t)n);
    em_put_str(out, line, len + (size_t)n);
    free(line);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: pagerank [--master URL] [--conf key=value ...] [--iterations N] "
                    "EDGES OUTPUT_DIR\n");
    return 2;
}

int main(int argc, char **argv)
{
    em_conf *conf = em_conf_new();
    if (!conf || em_conf_load_defaults(conf) < 0 || em_conf_parse_args(conf, &argc, argv) < 0) {
        fprintf(stderr, "pagerank: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    /* Our own option, then the two paths. */
    long iterations = 10;
    const char *paths[2];
    int npaths = 0;
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        if (!strcmp(argv[i], "--iterations")) {
            if (i + 1 == argc) return em_conf_free(conf), usage();
            val = argv[++i];
        } else if (!strncmp(argv[i], "--iterations=", 13)) {
            val = argv[i] + 13;
        } else if (argv[i][0] == '-' || npaths == 2) {
            return em_conf_free(conf), usage();
        } else {
            paths[npaths++] = argv[i];
            continue;
        }
        char *end;
        iterations = strtol(val, &end, 10);
        if (*val == '\0' || *end || iterations < 0 || iterations > 1000000) {
            fprintf(stderr, "pagerank: bad --iterations '%s' (expected 0..1000000)\n", val);
            em_conf_free(conf);
            return 2;
        }
    }
    if (npaths != 2) return em_conf_free(conf), usage();
    const char *input = paths[0], *output = paths[1];
    struct stat st;
    if (stat(output, &st) == 0) {
        fprintf(stderr, "pagerank: output directory '%s' already exists\n", output);
        em_conf_free(conf);
        return 1;
    }

    em_context *ctx = NULL;
    if (!em_conf_is_set(conf, "ember.app.name")) em_conf_set(conf, "ember.app.name", "pagerank");
    int rc = em_context_create(NULL, NULL, conf, &ctx);
    em_conf_free(conf);
    if (rc == 0) {
        em_rdd *edges = em_rdd_flat_map(em_text_file(ctx, input, 0), parse_edge, NULL, 0);
        em_rdd *grouped = em_rdd_group_by_key(em_rdd_distinct(edges, 0), 0);
        em_rdd *links = grouped ? em_rdd_cache(grouped) : NULL;
        em_rdd *ranks = em_rdd_map_values(links, one, NULL, 0);
        for (long i = 0; i < iterations && ranks; i++) {
            em_rdd *contribs = em_rdd_flat_map(em_rdd_join(links, ranks, 0), spread, NULL, 0);
            ranks =
                em_rdd_map_values(em_rdd_reduce_by_key(contribs, add, NULL, 0, 0), damp, NULL, 0);
        }
        em_rdd *text = em_rdd_map(ranks, format_line, NULL, 0);
        rc = text ? em_rdd_save_as_text_file(text, output) : -1;
    }
    if (rc != 0) fprintf(stderr, "pagerank: %s\n", em_errmsg());
    em_context_stop(ctx);
    return rc == 0 ? 0 : 1;
}
