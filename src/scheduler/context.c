/* The application context (em_context): parses the master URL, builds the services of this
 * process (configuration, memory manager, block store, map output tracker, scheduler and its
 * backend, the application's scratch directory) and tears them down in em_context_stop.
 *
 * Master URLs handled here: local, local[N], local[*], local[N,F], local[*,F] (the local
 * backend: task threads in this process); local-cluster[W,C,M] (a real master and W worker
 * processes started here, deploy/local_cluster.h) and ember://host:port (a standalone
 * master), both through the cluster backend (executor processes). slurm is refused.
 * Thread rule: create and stop on one driver thread; see context.h.
 */
#include "base/base.h"
#include "deploy/local_cluster.h"
#include "deploy/master.h"
#include "rdd/rdd.h"
#include "scheduler/commit.h"
#include "scheduler/scheduler.h"
#include "shuffle/tracker.h"
#include "storage/block_store.h"
#include "storage/memory.h"
#include "storage/shared.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum master_kind { MASTER_LOCAL, MASTER_LOCAL_CLUSTER, MASTER_STANDALONE } master_kind;

typedef struct master_spec {
    master_kind kind;
    int threads, failures;         /* local */
    int workers, cores, memory_mb; /* local-cluster[W,C,M] */
} master_spec;

/* Parses "N," / "N]" numbers of a bracketed master URL. */
static int bracket_num(const char *url, const char **p, long lo, long hi, char sep, long *out,
                       const char *what)
{
    char *end;
    long n = strtol(*p, &end, 10);
    if (end == *p || *end != sep || n < lo || n > hi)
        return em__set_error(EM_EMASTER, "master '%s': %s must be a number in %ld..%ld", url, what,
                             lo, hi);
    *out = n;
    *p = end + 1;
    return 0;
}

/* Parses a master URL into *m. */
static int parse_master(const char *url, master_spec *m)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    memset(m, 0, sizeof *m);
    if (!strcmp(url, "local")) {
        m->threads = 1;
        return 0;
    }
    if (!strncmp(url, "local-cluster[", 14)) {
        const char *p = url + 14;
        long w = 0, c = 0, mem = 0;
        int rc = bracket_num(url, &p, 1, 64, ',', &w, "the worker count W of local-cluster[W,C,M]");
        if (!rc)
            rc = bracket_num(url, &p, 1, 4096, ',', &c,
                             "the cores per worker C of local-cluster[W,C,M]");
        if (!rc)
            rc = bracket_num(url, &p, 1, 1 << 24, ']', &mem,
                             "the memory per worker M (MiB) of local-cluster[W,C,M]");
        if (rc) return rc;
        if (*p)
            return em__set_error(EM_EMASTER, "master '%s': text after local-cluster[W,C,M]", url);
        m->kind = MASTER_LOCAL_CLUSTER;
        m->workers = (int)w;
        m->cores = (int)c;
        m->memory_mb = (int)mem;
        return 0;
    }
    if (!strncmp(url, "ember://", 8)) {
        char *host = NULL;
        int port;
        int rc = em_master_url_parse(url, &host, &port);
        em__free(host);
        if (rc) return rc;
        m->kind = MASTER_STANDALONE;
        return 0;
    }
    if (!strcmp(url, "slurm"))
        return em__set_error(EM_EMASTER,
                             "master 'slurm': the Slurm cluster manager is not available in "
                             "this build; use local[N], local-cluster[W,C,M] or ember://host:port");
    if (strncmp(url, "local[", 6) != 0)
        return em__set_error(EM_EMASTER,
                             "master '%s' is not a valid master URL (expected local, local[N], "
                             "local[*], local[N,F], local-cluster[W,C,M], ember://host:port or "
                             "slurm)",
                             url);
    const char *p = url + 6;
    char *end;
    if (*p == '*') {
        m->threads = (int)ncpu;
        end = (char *)p + 1;
    } else {
        long n = strtol(p, &end, 10);
        if (end == p || n <= 0 || n > 4096)
            return em__set_error(EM_EMASTER, "master '%s': thread count must be 1..4096 or *", url);
        m->threads = (int)n;
    }
    if (*end == ',') {
        const char *f = end + 1;
        long n = strtol(f, &end, 10);
        if (end == f || n <= 0 || n > 1000000)
            return em__set_error(EM_EMASTER, "master '%s': max failures must be a positive number",
                                 url);
        m->failures = (int)n;
    }
    if (strcmp(end, "]") != 0)
        return em__set_error(EM_EMASTER,
                             "master '%s' is malformed (expected local[N] or "
                             "local[N,F])",
                             url);
    return 0;
}

static void unpersist_everywhere(em_context *ctx, int rdd_id)
{
    em_backend *b = em__scheduler_backend(ctx->sched);
    if (b && b->unpersist) b->unpersist(b, rdd_id);
}

/* Starts the cluster backend (and for local-cluster the daemons) and waits for executors. */
static int start_cluster(em_context *ctx, const master_spec *m, em_backend **out)
{
    const em_conf *conf = ctx->conf;
    em__cluster_request req = {0};
    const char *master_url = ctx->master;
    int64_t wait_ms = em_conf_get_ms(conf, "ember.network.timeout");
    int want = 1;
    if (m->kind == MASTER_LOCAL_CLUSTER) {
        int rc =
            em__local_cluster_start(conf, m->workers, m->cores, m->memory_mb, &ctx->local_cluster);
        if (rc) return em__error_context(rc, "master '%s'", ctx->master);
        master_url = em__local_cluster_master_url(ctx->local_cluster);
        req.driver_host = "127.0.0.1";
        req.executor_cores = m->cores;
        /* Executors get ember.executor.memory when set (it must fit a worker), else all of M. */
        req.executor_memory_mb =
            em_conf_is_set(conf, "ember.executor.memory")
                ? (uint64_t)EM_MAX(1, em_conf_get_bytes(conf, "ember.executor.memory") >> 20)
                : (uint64_t)m->memory_mb;
        want = m->workers;
        wait_ms = EM_MIN(wait_ms, 60000);
    } else {
        int64_t cores_max = em_conf_get_int(conf, "ember.cores.max");
        req.cores_max = (int)cores_max;
        req.executor_cores = em_conf_is_set(conf, "ember.executor.cores")
                                 ? (int)em_conf_get_int(conf, "ember.executor.cores")
                                 : 0;
        req.executor_memory_mb = (uint64_t)(em_conf_get_bytes(conf, "ember.executor.memory") >> 20);
        wait_ms = EM_MIN(wait_ms, 30000);
    }
    int rc = em__cluster_backend_new(ctx, master_url, &req, out);
    if (rc) return rc;
    int cores = 0;
    int got = em__cluster_backend_wait(*out, want, wait_ms, &cores);
    if (m->kind == MASTER_LOCAL_CLUSTER && got < want) {
        (*out)->stop(*out);
        *out = NULL;
        return em__set_error(EM_EMASTER,
                             "master '%s': only %d of %d executors registered within %lld ms "
                             "(see the workers' executor logs)",
                             ctx->master, got, want, (long long)wait_ms);
    }
    if (m->kind == MASTER_STANDALONE) {
        if (got == 0)
            EM_LOG(EM_LOG_WARN, "context",
                   "no executor registered within %lld ms; tasks will wait for executors",
                   (long long)wait_ms);
        /* Let the executors of the first placement round register too. */
        int prev;
        do {
            prev = got;
            got = em__cluster_backend_wait(*out, got + 1, 200, &cores);
        } while (got > prev);
    }
    ctx->num_threads = cores;
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
    em__commit_free(ctx->commits); /* after the backend: its threads ask it */
    em__local_cluster_stop(ctx->local_cluster);
    em__shared_vars_free(ctx);
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
    if (em__executor_mode()) /* never true: the executor constructor runs before main() */
        return em__set_error(EM_ESTATE, "em_context_create called in an executor process");
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
    master_spec ms;
    if ((rc = parse_master(ctx->master, &ms))) goto fail;
    ctx->num_threads = ms.threads;
    ctx->max_failures =
        ms.failures ? ms.failures : (int)em_conf_get_int(ctx->conf, "ember.task.maxFailures");

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
    ctx->shared = em__shared_new();
    ctx->blocks = ctx->memory ? em_block_store_new(ctx->memory) : NULL;
    ctx->commits = em__commit_new();
    if (!ctx->app_id || !ctx->local_dir || !ctx->memory || !ctx->map_outputs || !ctx->blocks ||
        !ctx->shared || !ctx->commits) {
        rc = em__set_error(EM_ENOMEM, "out of memory creating the context");
        goto fail;
    }
    ctx->run_job = em__sched_run_job;
    ctx->sched = em__scheduler_new(ctx, NULL);
    if (!ctx->sched) {
        rc = em__set_error(EM_ENOMEM, "out of memory creating the scheduler");
        goto fail;
    }
    em_backend *b = NULL;
    if (ms.kind == MASTER_LOCAL) {
        b = em__local_backend_new(ctx, ctx->num_threads);
        if (!b) {
            rc = em__set_error(EM_ENOMEM, "cannot start the local scheduler backend");
            goto fail;
        }
    } else if ((rc = start_cluster(ctx, &ms, &b))) {
        goto fail;
    }
    em__scheduler_set_backend(ctx->sched, b);
    if (b->unpersist) ctx->unpersist = unpersist_everywhere;
    int64_t par = em_conf_get_int(ctx->conf, "ember.default.parallelism");
    ctx->default_parallelism = par > 0                   ? (int)par
                               : ms.kind == MASTER_LOCAL ? ctx->num_threads
                                                         : EM_MAX(2, ctx->num_threads);
    *out = ctx;
    EM_LOG(EM_LOG_INFO, "context", "started %s (%s) on %s with %d task slots", ctx->app_id,
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
