/* The health tracker (rules in health.h): per stage attempt failure tallies and exclusions,
 * application-level failure records and exclusions with expiry.
 *
 * Owns: a host table (names interned once and kept until the tracker is freed, so everything
 * else names a host by its index), one stage_state per stage attempt that had a failure, and
 * one app_exec per executor with promoted failures or an application exclusion. Arrays, not
 * maps: failures are rare, and a linear scan of a few entries beats hashing here.
 *
 * Stage attempt:  (none) --task_failed--> TRACKED --stage_finished(ok)--> promoted, freed
 *                                                 --stage_finished(not ok)--> freed
 * App executor:   (none) --stage_finished(ok) with its failures--> FAILING
 *                 FAILING --records >= limit (records cleared)--> EXCLUDED
 *                 EXCLUDED --until_ms reached (expire)--> FAILING, or freed without records
 *                 FAILING --all records expired (expire)--> freed
 *                 EXCLUDED --executor_removed--> EXCLUDED+lost (counts for its host only)
 *                 FAILING --executor_removed--> freed
 *
 * Thread rule: any thread; h->mu guards everything. Queries allocate nothing.
 */
#include "scheduler/health.h"

#include "base/base.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct exec_fail { /* one (executor, partition) of a stage attempt */
    int exec_id, host, partition, count;
    bool lost; /* the executor is gone: still counts for its host, never promoted */
    int64_t last_ms;
} exec_fail;

typedef struct stage_state {
    int stage, attempt;
    exec_fail *ef;
    int n_ef, cap_ef;
    int *execs_ex, *hosts_ex; /* executors / hosts excluded for the stage attempt */
    int *execs_ex_host;       /* host of execs_ex[i] */
    int n_xe, cap_xe, cap_xe_host, n_xh, cap_xh;
} stage_state;

typedef struct app_exec {
    int exec_id, host;
    bool lost;
    int64_t until_ms; /* 0: not excluded */
    int excl_count;   /* records that excluded it */
    int64_t *expires; /* one per failed task promoted (Spark's ExecutorFailureList) */
    int n_f, cap_f;
} app_exec;

typedef struct host_entry {
    char *name;
    int64_t until_ms; /* application exclusion; 0: none */
} host_entry;

struct em__health {
    pthread_mutex_t mu;
    em__health_limits lim;
    host_entry *hosts;
    int n_hosts, cap_hosts;
    stage_state *stages;
    int n_stages, cap_stages;
    app_exec *execs;
    int n_execs, cap_execs;
};

/* Makes room for one more element in *arr (n used, *cap allocated). 0 or EM_ENOMEM. */
static int grow(void **arr, int n, int *cap, size_t elem)
{
    if (n < *cap) return 0;
    int ncap = *cap ? *cap * 2 : 4;
    void *p = em__realloc(*arr, (size_t)ncap * elem);
    if (!p) return em__set_error(EM_ENOMEM, "out of memory in the health tracker");
    *arr = p;
    *cap = ncap;
    return 0;
}
#define GROW(arr, n, cap) grow((void **)&(arr), (n), &(cap), sizeof *(arr))

void em__health_limits_from_conf(const em_conf *conf, em__health_limits *out)
{
    *out = (em__health_limits){
        .enabled = em_conf_get_bool(conf, "ember.excludeOnFailure.enabled"),
        .task_max_attempts_per_executor =
            (int)em_conf_get_int(conf, "ember.excludeOnFailure.task.maxTaskAttemptsPerExecutor"),
        .task_max_attempts_per_node =
            (int)em_conf_get_int(conf, "ember.excludeOnFailure.task.maxTaskAttemptsPerNode"),
        .stage_max_failed_tasks_per_exec =
            (int)em_conf_get_int(conf, "ember.excludeOnFailure.stage.maxFailedTasksPerExecutor"),
        .stage_max_failed_execs_per_node =
            (int)em_conf_get_int(conf, "ember.excludeOnFailure.stage.maxFailedExecutorsPerNode"),
        .app_max_failed_tasks_per_exec = (int)em_conf_get_int(
            conf, "ember.excludeOnFailure.application.maxFailedTasksPerExecutor"),
        .app_max_failed_execs_per_node = (int)em_conf_get_int(
            conf, "ember.excludeOnFailure.application.maxFailedExecutorsPerNode"),
        .timeout_ms = em_conf_get_ms(conf, "ember.excludeOnFailure.timeout"),
        .kill_excluded = em_conf_get_bool(conf, "ember.excludeOnFailure.killExcludedExecutors"),
    };
}

em__health *em__health_new(const em__health_limits *l)
{
    if (l->enabled &&
        (l->task_max_attempts_per_executor < 1 || l->task_max_attempts_per_node < 1 ||
         l->stage_max_failed_tasks_per_exec < 1 || l->stage_max_failed_execs_per_node < 1 ||
         l->app_max_failed_tasks_per_exec < 1 || l->app_max_failed_execs_per_node < 1 ||
         l->timeout_ms < 1)) {
        em__set_error(EM_EINVAL, "ember.excludeOnFailure.*: each limit and the timeout must be "
                                 "at least 1");
        return NULL;
    }
    em__health *h = em__calloc(1, sizeof *h);
    if (!h) {
        em__set_error(EM_ENOMEM, "out of memory creating the health tracker");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->lim = *l;
    return h;
}

em__health *em__health_new_from_conf(const em_conf *conf)
{
    em__health_limits l;
    em__health_limits_from_conf(conf, &l);
    return em__health_new(&l);
}

static void stage_clear(stage_state *s)
{
    em__free(s->ef);
    em__free(s->execs_ex);
    em__free(s->execs_ex_host);
    em__free(s->hosts_ex);
}

void em__health_free(em__health *h)
{
    if (!h) return;
    for (int i = 0; i < h->n_hosts; i++) em__free(h->hosts[i].name);
    for (int i = 0; i < h->n_stages; i++) stage_clear(&h->stages[i]);
    for (int i = 0; i < h->n_execs; i++) em__free(h->execs[i].expires);
    em__free(h->hosts);
    em__free(h->stages);
    em__free(h->execs);
    pthread_mutex_destroy(&h->mu);
    em__free(h);
}

const em__health_limits *em__health_get_limits(const em__health *h)
{
    return &h->lim;
}

const char *em__health_verdict_str(em__health_verdict v)
{
    static const char *const names[] = {"allowed",
                                        "executor excluded for the application",
                                        "host excluded for the application",
                                        "executor excluded for the stage",
                                        "host excluded for the stage",
                                        "the partition failed on this executor",
                                        "the partition failed on this host"};
    return (unsigned)v < EM_ARRAY_LEN(names) ? names[v] : "unknown";
}

/* ---- lookups (h->mu held; none allocates) ------------------------------------------------ */

static int host_find(const em__health *h, const char *name)
{
    for (int i = 0; i < h->n_hosts; i++)
        if (strcmp(h->hosts[i].name, name ? name : "") == 0) return i;
    return -1;
}

/* The index of host name, added if new: >= 0, or EM_ENOMEM. */
static int host_intern(em__health *h, const char *name)
{
    int i = host_find(h, name);
    if (i >= 0) return i;
    if (GROW(h->hosts, h->n_hosts, h->cap_hosts) < 0) return EM_ENOMEM;
    char *copy = em__strdup(name ? name : "");
    if (!copy) return em__set_error(EM_ENOMEM, "out of memory in the health tracker");
    h->hosts[h->n_hosts] = (host_entry){copy, 0};
    return h->n_hosts++;
}

static stage_state *stage_find(em__health *h, int stage, int attempt)
{
    for (int i = 0; i < h->n_stages; i++)
        if (h->stages[i].stage == stage && h->stages[i].attempt == attempt) return &h->stages[i];
    return NULL;
}

static app_exec *app_find(em__health *h, int exec_id)
{
    for (int i = 0; i < h->n_execs; i++)
        if (h->execs[i].exec_id == exec_id) return &h->execs[i];
    return NULL;
}

static exec_fail *ef_find(stage_state *s, int exec_id, int partition)
{
    for (int i = 0; i < s->n_ef; i++)
        if (s->ef[i].exec_id == exec_id && s->ef[i].partition == partition) return &s->ef[i];
    return NULL;
}

/* Failures of partition on executors of host (lost ones included). */
static int host_task_failures(const stage_state *s, int host, int partition)
{
    int n = 0;
    for (int i = 0; i < s->n_ef; i++)
        if (s->ef[i].host == host && s->ef[i].partition == partition) n += s->ef[i].count;
    return n;
}

static int find_int(const int *a, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (a[i] == x) return i;
    return -1;
}

static int count_int(const int *a, int n, int x)
{
    int c = 0;
    for (int i = 0; i < n; i++) c += a[i] == x;
    return c;
}

static int app_excluded_on_host(const em__health *h, int host, int64_t now_ms)
{
    int n = 0;
    for (int i = 0; i < h->n_execs; i++)
        n += h->execs[i].host == host && h->execs[i].until_ms > now_ms;
    return n;
}

/* The stage- and task-level verdict; host < 0: a host without failures. */
static em__health_verdict stage_verdict(em__health *h, int stage, int attempt, int partition,
                                        int exec_id, int host)
{
    stage_state *s = stage < 0 ? NULL : stage_find(h, stage, attempt);
    if (!s) return EM__HEALTH_ALLOWED;
    if (find_int(s->execs_ex, s->n_xe, exec_id) >= 0) return EM__HEALTH_STAGE_EXECUTOR;
    if (host >= 0 && find_int(s->hosts_ex, s->n_xh, host) >= 0) return EM__HEALTH_STAGE_HOST;
    if (partition < 0) return EM__HEALTH_ALLOWED;
    exec_fail *e = ef_find(s, exec_id, partition);
    if (e && e->count >= h->lim.task_max_attempts_per_executor) return EM__HEALTH_TASK_EXECUTOR;
    if (host >= 0 && host_task_failures(s, host, partition) >= h->lim.task_max_attempts_per_node)
        return EM__HEALTH_TASK_HOST;
    return EM__HEALTH_ALLOWED;
}

static em__health_verdict app_verdict(em__health *h, int exec_id, int host, int64_t now_ms)
{
    app_exec *a = app_find(h, exec_id);
    if (a && a->until_ms > now_ms) return EM__HEALTH_APP_EXECUTOR;
    if (host >= 0 && h->hosts[host].until_ms > now_ms) return EM__HEALTH_APP_HOST;
    return EM__HEALTH_ALLOWED;
}

em__health_verdict em__health_check(em__health *h, int stage, int attempt, int partition,
                                    int exec_id, const char *host, int64_t now_ms)
{
    if (!h->lim.enabled) return EM__HEALTH_ALLOWED;
    pthread_mutex_lock(&h->mu);
    int hi = host_find(h, host);
    em__health_verdict v = app_verdict(h, exec_id, hi, now_ms);
    if (v == EM__HEALTH_ALLOWED) v = stage_verdict(h, stage, attempt, partition, exec_id, hi);
    pthread_mutex_unlock(&h->mu);
    return v;
}

/* ---- recording --------------------------------------------------------------------------- */

static int task_failed_locked(em__health *h, int stage, int attempt, int partition, int exec_id,
                              const char *host, int64_t now_ms, em__health_failure_event *ev)
{
    int hi = host_intern(h, host);
    if (hi < 0) return hi;
    stage_state *s = stage_find(h, stage, attempt);
    if (!s) {
        if (GROW(h->stages, h->n_stages, h->cap_stages) < 0) return EM_ENOMEM;
        s = &h->stages[h->n_stages++];
        *s = (stage_state){.stage = stage, .attempt = attempt};
    }
    /* Reserve first, so that running out of memory leaves the tallies unchanged. */
    if (GROW(s->ef, s->n_ef, s->cap_ef) < 0 || GROW(s->execs_ex, s->n_xe, s->cap_xe) < 0 ||
        GROW(s->execs_ex_host, s->n_xe, s->cap_xe_host) < 0 ||
        GROW(s->hosts_ex, s->n_xh, s->cap_xh) < 0)
        return EM_ENOMEM;
    exec_fail *e = ef_find(s, exec_id, partition);
    if (!e) {
        e = &s->ef[s->n_ef++];
        *e = (exec_fail){.exec_id = exec_id, .host = hi, .partition = partition};
    }
    const em__health_limits *l = &h->lim;
    unsigned newly = 0;
    e->last_ms = now_ms;
    if (++e->count == l->task_max_attempts_per_executor)
        newly |= EM__HEALTH_BIT(EM__HEALTH_TASK_EXECUTOR);
    int on_host = host_task_failures(s, hi, partition);
    if (on_host == l->task_max_attempts_per_node) newly |= EM__HEALTH_BIT(EM__HEALTH_TASK_HOST);
    int failed_tasks = 0; /* distinct partitions failed on the executor */
    for (int i = 0; i < s->n_ef; i++) failed_tasks += s->ef[i].exec_id == exec_id;
    if (failed_tasks >= l->stage_max_failed_tasks_per_exec &&
        find_int(s->execs_ex, s->n_xe, exec_id) < 0) {
        s->execs_ex_host[s->n_xe] = hi;
        s->execs_ex[s->n_xe++] = exec_id;
        newly |= EM__HEALTH_BIT(EM__HEALTH_STAGE_EXECUTOR);
        if (count_int(s->execs_ex_host, s->n_xe, hi) >= l->stage_max_failed_execs_per_node &&
            find_int(s->hosts_ex, s->n_xh, hi) < 0) {
            s->hosts_ex[s->n_xh++] = hi;
            newly |= EM__HEALTH_BIT(EM__HEALTH_STAGE_HOST);
        }
    }
    if (ev)
        *ev = (em__health_failure_event){newly, e->count, on_host, failed_tasks,
                                         count_int(s->execs_ex_host, s->n_xe, hi)};
    return 0;
}

int em__health_task_failed(em__health *h, int stage, int attempt, int partition, int exec_id,
                           const char *host, int64_t now_ms, em__health_failure_event *ev)
{
    if (ev) *ev = (em__health_failure_event){0};
    if (!h->lim.enabled) return 0;
    pthread_mutex_lock(&h->mu);
    int rc = task_failed_locked(h, stage, attempt, partition, exec_id, host, now_ms, ev);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static void report(const em__health *h, em__health_exclusion *out, size_t cap, size_t *n,
                   int exec_id, int host, int64_t until_ms, int count)
{
    if (*n < cap) {
        em__health_exclusion *x = &out[*n];
        x->exec_id = exec_id;
        snprintf(x->host, sizeof x->host, "%s", h->hosts[host].name);
        x->until_ms = until_ms;
        x->count = count;
    }
    ++*n;
}

/* Spark's dropFailuresWithTimeoutBefore: a record counts while now_ms < its expiry. */
static void drop_expired_failures(app_exec *a, int64_t now_ms)
{
    int k = 0;
    for (int j = 0; j < a->n_f; j++)
        if (a->expires[j] > now_ms) a->expires[k++] = a->expires[j];
    a->n_f = k;
}

static void app_exec_drop(em__health *h, app_exec *a)
{
    em__free(a->expires);
    *a = h->execs[--h->n_execs];
}

/* Ends the exclusions whose time came and drops expired records; returns how many ended. */
static int expire_locked(em__health *h, int64_t now_ms)
{
    int ended = 0;
    for (int i = 0; i < h->n_hosts; i++)
        if (h->hosts[i].until_ms && h->hosts[i].until_ms <= now_ms) {
            h->hosts[i].until_ms = 0;
            ended++;
        }
    for (int i = h->n_execs - 1; i >= 0; i--) { /* backwards: app_exec_drop moves the last */
        app_exec *a = &h->execs[i];
        if (a->until_ms && a->until_ms <= now_ms) {
            a->until_ms = 0;
            ended++;
        }
        drop_expired_failures(a, now_ms);
        if (!a->until_ms && (a->lost || a->n_f == 0)) app_exec_drop(h, a);
    }
    return ended;
}

/* Adds the failures of the successful stage attempt s to the application level. */
static int promote(em__health *h, stage_state *s, int64_t now_ms, em__health_exclusion *newly,
                   size_t cap, size_t *num)
{
    const em__health_limits *l = &h->lim;
    for (int i = 0; i < s->n_ef; i++) {
        exec_fail *e = &s->ef[i];
        if (e->lost) continue;
        app_exec *a = app_find(h, e->exec_id);
        if (!a) {
            if (GROW(h->execs, h->n_execs, h->cap_execs) < 0) return EM_ENOMEM;
            a = &h->execs[h->n_execs++];
            *a = (app_exec){.exec_id = e->exec_id, .host = e->host};
        }
        if (GROW(a->expires, a->n_f, a->cap_f) < 0) return EM_ENOMEM;
        a->expires[a->n_f++] = e->last_ms + l->timeout_ms;
        drop_expired_failures(a, now_ms);
        if (a->n_f < l->app_max_failed_tasks_per_exec || a->until_ms > now_ms) continue;
        a->until_ms = now_ms + l->timeout_ms;
        a->excl_count = a->n_f;
        a->n_f = 0;
        report(h, newly, cap, num, a->exec_id, a->host, a->until_ms, a->excl_count);
        host_entry *he = &h->hosts[a->host];
        int on_host = app_excluded_on_host(h, a->host, now_ms);
        if (on_host >= l->app_max_failed_execs_per_node && he->until_ms <= now_ms) {
            he->until_ms = now_ms + l->timeout_ms;
            report(h, newly, cap, num, -1, a->host, he->until_ms, on_host);
        }
    }
    return 0;
}

int em__health_stage_finished(em__health *h, int stage, int attempt, bool succeeded, int64_t now_ms,
                              em__health_exclusion *newly, size_t cap, size_t *num_newly)
{
    size_t num = 0;
    int rc = 0;
    if (h->lim.enabled) {
        pthread_mutex_lock(&h->mu);
        stage_state *s = stage_find(h, stage, attempt);
        if (s) {
            expire_locked(h, now_ms);
            if (succeeded) rc = promote(h, s, now_ms, newly, cap, &num);
            stage_clear(s);
            *s = h->stages[--h->n_stages];
        }
        pthread_mutex_unlock(&h->mu);
    }
    if (num_newly) *num_newly = num;
    return rc;
}

/* ---- listing, expiry, removal ------------------------------------------------------------ */

size_t em__health_list_excluded(em__health *h, int64_t now_ms, em__health_exclusion *out,
                                size_t cap)
{
    size_t n = 0;
    if (!h->lim.enabled) return 0;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n_execs; i++) {
        app_exec *a = &h->execs[i];
        if (!a->lost && a->until_ms > now_ms)
            report(h, out, cap, &n, a->exec_id, a->host, a->until_ms, a->excl_count);
    }
    for (int i = 0; i < h->n_hosts; i++)
        if (h->hosts[i].until_ms > now_ms)
            report(h, out, cap, &n, -1, i, h->hosts[i].until_ms,
                   app_excluded_on_host(h, i, now_ms));
    pthread_mutex_unlock(&h->mu);
    return n;
}

int em__health_expire(em__health *h, int64_t now_ms)
{
    if (!h->lim.enabled) return 0;
    pthread_mutex_lock(&h->mu);
    int ended = expire_locked(h, now_ms);
    pthread_mutex_unlock(&h->mu);
    return ended;
}

void em__health_executor_removed(em__health *h, int exec_id)
{
    if (!h->lim.enabled) return;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n_stages; i++) /* host tallies and stage exclusions stay */
        for (int j = 0; j < h->stages[i].n_ef; j++)
            if (h->stages[i].ef[j].exec_id == exec_id) h->stages[i].ef[j].lost = true;
    app_exec *a = app_find(h, exec_id);
    if (a) {
        a->n_f = 0;
        a->lost = true;
        if (!a->until_ms) app_exec_drop(h, a);
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- the unschedulable check ------------------------------------------------------------- */

int em__health_check_schedulable(em__health *h, int stage, int attempt, int partition,
                                 const em__health_executor *live, size_t n, int64_t now_ms,
                                 int *num_app_excluded)
{
    if (num_app_excluded) *num_app_excluded = 0;
    if (!h->lim.enabled || n == 0) return 0;
    char why[1024];
    size_t len = 0;
    int app_only = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        int hi = host_find(h, live[i].host);
        em__health_verdict sv = stage_verdict(h, stage, attempt, partition, live[i].exec_id, hi);
        em__health_verdict av = app_verdict(h, live[i].exec_id, hi, now_ms);
        if (sv == EM__HEALTH_ALLOWED && av == EM__HEALTH_ALLOWED) {
            pthread_mutex_unlock(&h->mu);
            return 0;
        }
        app_only += sv == EM__HEALTH_ALLOWED;
        if (len < sizeof why)
            len +=
                (size_t)snprintf(why + len, sizeof why - len, "%sexecutor %d (%s): %s",
                                 i ? "; " : "", live[i].exec_id, live[i].host ? live[i].host : "?",
                                 em__health_verdict_str(av ? av : sv));
    }
    pthread_mutex_unlock(&h->mu);
    if (num_app_excluded) *num_app_excluded = app_only;
    return em__set_error(EM_EJOB,
                         "stage %d (attempt %d) partition %d cannot run on any of the %zu live "
                         "executors (ember.excludeOnFailure): %s%s",
                         stage, attempt, partition, n, why, len >= sizeof why ? "..." : "");
}
