/* The application context (em_context): parses the master URL, builds the services of this
 * process (configuration, memory manager, block store, map output tracker, scheduler and its
 * backend, the application's scratch directory) and tears them down in em_context_stop.
 *
 * Master URLs handled here: local, local[N], local[*], local[N,F], local[*,F]. The cluster
 * URLs (local-cluster[...], ember://..., slurm) are rejected with a clear message until the
 * cluster backends exist.
 * Thread rule: create and stop on one driver thread; see context.h.
 */
#include "base/base.h"
#include "rdd/rdd.h"
#include "scheduler/scheduler.h"
#include "shuffle/tracker.h"
#include "storage/block_store.h"
#include "storage/memory.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Parses a local master URL: threads and max failures (0: from the configuration). */
static int parse_master(const char *url, int *threads, int *failures)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    *failures = 0;
    if (!strcmp(url, "local")) {
        *threads = 1;
        return 0;
    }
    if (strncmp(url, "local[", 6) != 0) {
        if (!strncmp(url, "local-cluster[", 14) || !strncmp(url, "ember://", 8) ||
            !strcmp(url, "slurm"))
            return em__set_error(EM_EMASTER,
                                 "master '%s': cluster masters are not available in this build "
                                 "yet; use local, local[N], local[*] or local[N,F]",
                                 url);
        return em__set_error(EM_EMASTER,
                             "master '%s' is not a valid master URL (expected local, local[N], "
                             "local[*], local[N,F], local-cluster[W,C,M], ember://host:port or "
                             "slurm)",
                             url);
    }
    const char *p = url + 6;
    char *end;
    if (*p == '*') {
        *threads = (int)ncpu;
        end = (char *)p + 1;
    } else {
        long n = strtol(p, &end, 10);
        if (end == p || n <= 0 || n > 4096)
            return em__set_error(EM_EMASTER, "master '%s': thread count must be 1..4096 or *", url);
        *threads = (int)n;
    }
    if (*end == ',') {
        const char *f = end + 1;
        long n = strtol(f, &end, 10);
        if (end == f || n <= 0 || n > 1000000)
            return em__set_error(EM_EMASTER, "master '%s': max failures must be a positive number",
                                 url);
        *failures = (int)n;
    }
    if (strcmp(end, "]") != 0)
        return em__set_error(EM_EMASTER,
                             "master '%s' is malformed (expected local[N] or "
                             "local[N,F])",
                             url);
    return 0;
}

static void free_rdds(em_context *ctx)
{
    struct em_rdd *r = ctx->rdds;
    while (r) {
        struct em_rdd *next = r->next_owned;
        if (r->ops->free) r->ops->free(r);
        em__free(r->deps);
        em__free(r->name);
        em__free(r);
        r = next;
    }
    em_partitioner *p = ctx->partitioners;
    while (p) {
        em_partitioner *next = p->next_owned;
        em__free(p->bounds);
        em__free(p->bound_data);
        em__free(p);
        p = next;
    }
}

void em_context_stop(em_context *ctx)
{
    if (!ctx) return;
    ctx->stopped = true;
    em__scheduler_free(ctx->sched);
    free_rdds(ctx);
    em_block_store_free(ctx->blocks);
    em_map_output_tracker_free(ctx->map_outputs);
    em_memory_manager_free(ctx->memory);
    if (ctx->local_dir) em__rmtree(ctx->local_dir);
    em__free(ctx->local_dir);
    em__free(ctx->master);
    em__free(ctx->app_name);
    em__free(ctx->app_id);
    em_conf_free(ctx->conf);
    pthread_mutex_destroy(&ctx->mu);
    em__free(ctx);
}

int em_context_create(const char *master, const char *app_name, const em_conf *conf,
                      em_context **out)
{
    em__clear_error();
    *out = NULL;
    em_context *ctx = em__calloc(1, sizeof *ctx);
    if (!ctx) return em__set_error(EM_ENOMEM, "out of memory creating the context");
    pthread_mutex_init(&ctx->mu, NULL);
    int rc = 0;
    if (conf) {
        ctx->conf = em_conf_clone(conf);
    } else {
        ctx->conf = em_conf_new();
        if (ctx->conf && (rc = em_conf_load_defaults(ctx->conf))) goto fail;
    }
    if (!ctx->conf) {
        rc = em__set_error(EM_ENOMEM, "out of memory copying the configuration");
        goto fail;
    }
    if (master && (rc = em_conf_set(ctx->conf, "ember.master", master))) goto fail;
    if (app_name && (rc = em_conf_set(ctx->conf, "ember.app.name", app_name))) goto fail;
    ctx->master = em__strdup(em_conf_get_str(ctx->conf, "ember.master"));
    ctx->app_name = em__strdup(em_conf_get_str(ctx->conf, "ember.app.name"));
    int failures = 0;
    if ((rc = parse_master(ctx->master, &ctx->num_threads, &failures))) goto fail;
    ctx->max_failures =
        failures ? failures : (int)em_conf_get_int(ctx->conf, "ember.task.maxFailures");
    int64_t par = em_conf_get_int(ctx->conf, "ember.default.parallelism");
    ctx->default_parallelism = par > 0 ? (int)par : ctx->num_threads;

    char id[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(id, sizeof id, "local-%Y%m%d%H%M%S", &tm);
    snprintf(id + n, sizeof id - n, "-%d", (int)getpid());
    ctx->app_id = em__strdup(id);

    const char *base = em_conf_get_str(ctx->conf, "ember.local.dir");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ember-%s-XXXXXX", base, id);
    if ((rc = em__mkdirs(base))) goto fail;
    if (!mkdtemp(dir)) {
        rc = em__set_error(EM_EIO, "cannot create a scratch directory in ember.local.dir '%s'",
                           base);
        goto fail;
    }
    ctx->local_dir = em__strdup(dir);

    int64_t budget = em_conf_get_bytes(ctx->conf, "ember.executor.memory");
    ctx->memory =
        em_memory_manager_new(budget, em_conf_get_double(ctx->conf, "ember.memory.fraction"),
                              em_conf_get_double(ctx->conf, "ember.memory.storageFraction"));
    ctx->map_outputs = em_map_output_tracker_new();
    ctx->blocks = ctx->memory ? em_block_store_new(ctx->memory) : NULL;
    if (!ctx->app_id || !ctx->local_dir || !ctx->memory || !ctx->map_outputs || !ctx->blocks) {
        rc = em__set_error(EM_ENOMEM, "out of memory creating the context");
        goto fail;
    }
    ctx->run_job = em__sched_run_job;
    ctx->sched = em__scheduler_new(ctx, NULL);
    em_backend *b = ctx->sched ? em__local_backend_new(ctx, ctx->num_threads) : NULL;
    if (!b) {
        rc = em__set_error(EM_ENOMEM, "cannot start the local scheduler backend");
        goto fail;
    }
    em__scheduler_set_backend(ctx->sched, b);
    *out = ctx;
    EM_LOG(EM_LOG_INFO, "context", "started %s (%s) on %s with %d task threads", ctx->app_id,
           ctx->app_name, ctx->master, ctx->num_threads);
    return 0;
fail:
    em_context_stop(ctx);
    return rc;
}

const em_conf *em_context_conf(const em_context *ctx)
{
    return ctx->conf;
}
int em_context_default_parallelism(const em_context *ctx)
{
    return ctx->default_parallelism;
}
const char *em_context_master(const em_context *ctx)
{
    return ctx->master;
}
const char *em_context_app_id(const em_context *ctx)
{
    return ctx->app_id;
}
const char *em_context_errmsg(const em_context *ctx)
{
    (void)ctx;
    return em_errmsg();
}
