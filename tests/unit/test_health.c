/* Tests for src/scheduler/health.c (Spark's excludeOnFailure rules) with a fake clock: each
 * rule exactly at and one below its limit, promotion of successful stage attempts only, expiry
 * after the timeout, host exclusion through two executors, the "excluded everywhere" check,
 * disabled mode and lost executors. Every expectation is worked out by hand in the test from
 * the limits it sets, never read back from the module.
 */
#include "test.h"

#include "scheduler/health.h"

#include <ember/ember.h>
#include <pthread.h>

/* Limits with every threshold given; timeout 1000 ms unless a test says otherwise. */
static em__health_limits limits(int task_exec, int task_node, int stage_exec, int stage_node,
                                int app_exec, int app_node)
{
    return (em__health_limits){true,     task_exec, task_node, stage_exec, stage_node,
                               app_exec, app_node,  1000,      false};
}

static em__health *tracker(em__health_limits l)
{
    em__health *h = em__health_new(&l);
    CHECK(h);
    return h;
}

static void fail(em__health *h, int stage, int attempt, int part, int exec, const char *host,
                 int64_t now, em__health_failure_event *ev)
{
    CHECK_OK(em__health_task_failed(h, stage, attempt, part, exec, host, now, ev));
}

static size_t finish(em__health *h, int stage, int attempt, bool ok, int64_t now,
                     em__health_exclusion *out, size_t cap)
{
    size_t n = 99;
    CHECK_OK(em__health_stage_finished(h, stage, attempt, ok, now, out, cap, &n));
    return n;
}

#define ALLOWED EM__HEALTH_ALLOWED

TEST(limits_from_conf_match_spark_defaults)
{
    em_conf *c = em_conf_new();
    CHECK(c);
    em__health_limits l;
    em__health_limits_from_conf(c, &l);
    CHECK(!l.enabled);
    CHECK_EQ_INT(l.task_max_attempts_per_executor, 1);
    CHECK_EQ_INT(l.task_max_attempts_per_node, 2);
    CHECK_EQ_INT(l.stage_max_failed_tasks_per_exec, 2);
    CHECK_EQ_INT(l.stage_max_failed_execs_per_node, 2);
    CHECK_EQ_INT(l.app_max_failed_tasks_per_exec, 2);
    CHECK_EQ_INT(l.app_max_failed_execs_per_node, 2);
    CHECK_EQ_INT(l.timeout_ms, 3600 * 1000);
    CHECK(!l.kill_excluded);
    CHECK_OK(em_conf_set(c, "ember.excludeOnFailure.enabled", "true"));
    CHECK_OK(em_conf_set(c, "ember.excludeOnFailure.task.maxTaskAttemptsPerNode", "3"));
    CHECK_OK(em_conf_set(c, "ember.excludeOnFailure.timeout", "90s"));
    CHECK_OK(em_conf_set(c, "ember.excludeOnFailure.killExcludedExecutors", "true"));
    em__health *h = em__health_new_from_conf(c);
    CHECK(h);
    const em__health_limits *g = em__health_get_limits(h);
    CHECK(g->enabled && g->kill_excluded);
    CHECK_EQ_INT(g->task_max_attempts_per_node, 3);
    CHECK_EQ_INT(g->timeout_ms, 90000);
    em__health_free(h);
    em_conf_free(c);
}

TEST(bad_limits_refused)
{
    em__health_limits l = limits(1, 2, 0, 2, 2, 2);
    CHECK(em__health_new(&l) == NULL);
    CHECK(strstr(em_errmsg(), "excludeOnFailure"));
    l.enabled = false; /* disabled: limits are never used */
    em__health *h = em__health_new(&l);
    CHECK(h);
    em__health_free(h);
    em__health_free(NULL);
}

TEST(task_avoids_executor_at_limit)
{
    em__health *h = tracker(limits(2, 99, 99, 99, 99, 99));
    em__health_failure_event ev;
    fail(h, 0, 0, 5, 1, "h1", 10, &ev);
    /* One failure, limit 2: still allowed there. */
    CHECK_EQ_INT(ev.newly, 0);
    CHECK_EQ_INT(ev.task_failures_on_executor, 1);
    CHECK_EQ_INT(em__health_check(h, 0, 0, 5, 1, "h1", 11), ALLOWED);
    fail(h, 0, 0, 5, 1, "h1", 12, &ev);
    CHECK_EQ_INT(ev.newly, EM__HEALTH_BIT(EM__HEALTH_TASK_EXECUTOR));
    CHECK_EQ_INT(ev.task_failures_on_executor, 2);
    CHECK_EQ_INT(ev.task_failures_on_host, 2);
    CHECK_EQ_INT(ev.stage_failed_tasks_on_exec, 1);
    CHECK_EQ_INT(em__health_check(h, 0, 0, 5, 1, "h1", 13), EM__HEALTH_TASK_EXECUTOR);
    /* Only that partition, that executor, that stage attempt. */
    CHECK_EQ_INT(em__health_check(h, 0, 0, 6, 1, "h1", 13), ALLOWED);
    CHECK_EQ_INT(em__health_check(h, 0, 0, 5, 2, "h1", 13), ALLOWED);
    CHECK_EQ_INT(em__health_check(h, 0, 1, 5, 1, "h1", 13), ALLOWED);
    CHECK_EQ_INT(em__health_check(h, 1, 0, 5, 1, "h1", 13), ALLOWED);
    CHECK_EQ_INT(em__health_check(h, -1, 0, -1, 1, "h1", 13), ALLOWED);
    /* A third failure is not new. */
    fail(h, 0, 0, 5, 1, "h1", 14, &ev);
    CHECK_EQ_INT(ev.newly, 0);
    em__health_free(h);
}

TEST(task_avoids_host_at_limit)
{
    /* Spark's defaults for the task level: 1 per executor, 2 per host. */
    em__health *h = tracker(limits(1, 2, 99, 99, 99, 99));
    em__health_failure_event ev;
    fail(h, 3, 0, 7, 1, "h1", 0, &ev);
    CHECK_EQ_INT(ev.newly, EM__HEALTH_BIT(EM__HEALTH_TASK_EXECUTOR));
    CHECK_EQ_INT(em__health_check(h, 3, 0, 7, 1, "h1", 1), EM__HEALTH_TASK_EXECUTOR);
    CHECK_EQ_INT(em__health_check(h, 3, 0, 7, 2, "h1", 1), ALLOWED); /* 1 of 2 on h1 */
    fail(h, 3, 0, 7, 2, "h1", 2, &ev);
    CHECK_EQ_INT(ev.newly,
                 EM__HEALTH_BIT(EM__HEALTH_TASK_EXECUTOR) | EM__HEALTH_BIT(EM__HEALTH_TASK_HOST));
    CHECK_EQ_INT(ev.task_failures_on_host, 2);
    CHECK_EQ_INT(em__health_check(h, 3, 0, 7, 3, "h1", 3), EM__HEALTH_TASK_HOST);
    CHECK_EQ_INT(em__health_check(h, 3, 0, 7, 4, "h2", 3), ALLOWED);
    CHECK_EQ_INT(em__health_check(h, 3, 0, 8, 3, "h1", 3), ALLOWED);
    /* A failure on another host does not add to h1. */
    fail(h, 3, 0, 9, 4, "h2", 4, &ev);
    CHECK_EQ_INT(ev.task_failures_on_host, 1);
    CHECK_EQ_INT(em__health_check(h, 3, 0, 9, 5, "h2", 5), ALLOWED);
    em__health_free(h);
}

TEST(stage_avoids_executor_after_distinct_tasks)
{
    em__health *h = tracker(limits(99, 99, 2, 99, 99, 99));
    em__health_failure_event ev;
    /* The same partition failing twice is one failed task, not two. */
    fail(h, 2, 0, 0, 1, "h1", 0, &ev);
    fail(h, 2, 0, 0, 1, "h1", 1, &ev);
    CHECK_EQ_INT(ev.stage_failed_tasks_on_exec, 1);
    CHECK_EQ_INT(ev.newly, 0);
    CHECK_EQ_INT(em__health_check(h, 2, 0, 5, 1, "h1", 2), ALLOWED);
    fail(h, 2, 0, 1, 1, "h1", 3, &ev);
    CHECK_EQ_INT(ev.stage_failed_tasks_on_exec, 2);
    CHECK_EQ_INT(ev.newly, EM__HEALTH_BIT(EM__HEALTH_STAGE_EXECUTOR));
    CHECK_EQ_INT(ev.stage_excluded_execs_on_host, 1);
    CHECK_EQ_INT(em__health_check(h, 2, 0, 5, 1, "h1", 4), EM__HEALTH_STAGE_EXECUTOR);
    CHECK_EQ_INT(em__health_check(h, 2, 0, -1, 1, "h1", 4), EM__HEALTH_STAGE_EXECUTOR);
    CHECK_EQ_INT(em__health_check(h, 2, 0, 5, 2, "h1", 4), ALLOWED);
    CHECK_EQ_INT(em__health_check(h, 2, 1, 5, 1, "h1", 4), ALLOWED); /* next attempt */
    /* A third failed task there: already excluded, nothing new. */
    fail(h, 2, 0, 2, 1, "h1", 5, &ev);
    CHECK_EQ_INT(ev.newly, 0);
    em__health_free(h);
}

TEST(stage_avoids_host_via_two_executors)
{
    em__health *h = tracker(limits(99, 99, 2, 2, 99, 99));
    em__health_failure_event ev;
    fail(h, 4, 1, 0, 1, "h1", 0, &ev);
    fail(h, 4, 1, 1, 1, "h1", 1, &ev); /* executor 1 excluded for the stage: 1 of 2 on h1 */
    CHECK_EQ_INT(ev.newly, EM__HEALTH_BIT(EM__HEALTH_STAGE_EXECUTOR));
    CHECK_EQ_INT(em__health_check(h, 4, 1, 9, 3, "h1", 2), ALLOWED);
    fail(h, 4, 1, 2, 2, "h1", 3, &ev);
    CHECK_EQ_INT(em__health_check(h, 4, 1, 9, 3, "h1", 4), ALLOWED);
    fail(h, 4, 1, 3, 2, "h1", 5, &ev);
    CHECK_EQ_INT(ev.newly,
                 EM__HEALTH_BIT(EM__HEALTH_STAGE_EXECUTOR) | EM__HEALTH_BIT(EM__HEALTH_STAGE_HOST));
    CHECK_EQ_INT(ev.stage_excluded_execs_on_host, 2);
    CHECK_EQ_INT(em__health_check(h, 4, 1, 9, 3, "h1", 6), EM__HEALTH_STAGE_HOST);
    CHECK_EQ_INT(em__health_check(h, 4, 1, 9, 4, "h2", 6), ALLOWED);
    CHECK_EQ_INT(em__health_check(h, 5, 0, 9, 3, "h1", 6), ALLOWED);
    /* No application exclusion from stage-level ones. */
    CHECK_EQ_INT(em__health_list_excluded(h, 6, NULL, 0), 0);
    em__health_free(h);
}

TEST(only_successful_stages_promote)
{
    em__health *h = tracker(limits(99, 99, 99, 99, 2, 99));
    em__health_exclusion x[4];
    /* Two failed tasks on executor 1 in an attempt that fails: nothing at the app level. */
    fail(h, 0, 0, 0, 1, "h1", 100, NULL);
    fail(h, 0, 0, 1, 1, "h1", 101, NULL);
    CHECK_EQ_INT(finish(h, 0, 0, false, 200, x, 4), 0);
    CHECK_EQ_INT(em__health_check(h, -1, 0, -1, 1, "h1", 201), ALLOWED);
    CHECK_EQ_INT(em__health_list_excluded(h, 201, x, 4), 0);
    /* Its stage state is gone with it. */
    CHECK_EQ_INT(em__health_check(h, 0, 0, 0, 1, "h1", 201), ALLOWED);
    /* One failed task in a successful attempt: 1 of 2. */
    fail(h, 0, 1, 0, 1, "h1", 300, NULL);
    CHECK_EQ_INT(finish(h, 0, 1, true, 400, x, 4), 0);
    CHECK_EQ_INT(em__health_check(h, 1, 0, 0, 1, "h1", 401), ALLOWED);
    /* A second one in another successful stage: excluded until 500 + 1000. */
    fail(h, 1, 0, 3, 1, "h1", 450, NULL);
    CHECK_EQ_INT(finish(h, 1, 0, true, 500, x, 4), 1);
    CHECK_EQ_INT(x[0].exec_id, 1);
    CHECK_EQ_STR(x[0].host, "h1");
    CHECK_EQ_INT(x[0].until_ms, 1500);
    CHECK_EQ_INT(x[0].count, 2);
    CHECK_EQ_INT(em__health_check(h, 7, 0, 0, 1, "h1", 501), EM__HEALTH_APP_EXECUTOR);
    CHECK_EQ_INT(em__health_check(h, -1, 0, -1, 1, "h1", 501), EM__HEALTH_APP_EXECUTOR);
    CHECK_EQ_INT(em__health_check(h, 7, 0, 0, 2, "h1", 501), ALLOWED); /* host limit 99 */
    memset(x, 0, sizeof x);
    CHECK_EQ_INT(em__health_list_excluded(h, 501, x, 4), 1);
    CHECK_EQ_INT(x[0].exec_id, 1);
    CHECK_EQ_INT(x[0].until_ms, 1500);
    /* Unknown stage attempts finish quietly. */
    CHECK_EQ_INT(finish(h, 42, 0, true, 600, x, 4), 0);
    em__health_free(h);
}

TEST(exclusion_expires_at_timeout)
{
    em__health *h = tracker(limits(99, 99, 99, 99, 1, 99));
    em__health_exclusion x[2];
    fail(h, 0, 0, 0, 1, "h1", 4900, NULL);
    CHECK_EQ_INT(finish(h, 0, 0, true, 5000, x, 2), 1);
    CHECK_EQ_INT(x[0].until_ms, 6000);
    CHECK_EQ_INT(em__health_check(h, 1, 0, 0, 1, "h1", 5999), EM__HEALTH_APP_EXECUTOR);
    CHECK_EQ_INT(em__health_list_excluded(h, 5999, x, 2), 1);
    /* Lazily ended at 6000, before any expire call. */
    CHECK_EQ_INT(em__health_check(h, 1, 0, 0, 1, "h1", 6000), ALLOWED);
    CHECK_EQ_INT(em__health_list_excluded(h, 6000, x, 2), 0);
    CHECK_EQ_INT(em__health_expire(h, 5999), 0);
    CHECK_EQ_INT(em__health_expire(h, 6000), 1);
    CHECK_EQ_INT(em__health_expire(h, 6001), 0);
    /* Its records were cleared when it was excluded: a new failure starts from 1 again and,
     * with limit 1, excludes it again from the new time. */
    fail(h, 1, 0, 0, 1, "h1", 7000, NULL);
    CHECK_EQ_INT(finish(h, 1, 0, true, 7100, x, 2), 1);
    CHECK_EQ_INT(x[0].until_ms, 8100);
    em__health_free(h);
}

TEST(failure_records_expire)
{
    /* Limit 2, timeout 1000. A failure at t=0 counts while now < 1000. */
    for (int late = 0; late <= 1; late++) {
        em__health *h = tracker(limits(99, 99, 99, 99, 2, 99));
        em__health_exclusion x[2];
        fail(h, 0, 0, 0, 1, "h1", 0, NULL);
        CHECK_EQ_INT(finish(h, 0, 0, true, 10, x, 2), 0);
        int64_t t = late ? 1000 : 999;
        fail(h, 1, 0, 0, 1, "h1", t - 5, NULL);
        size_t n = finish(h, 1, 0, true, t, x, 2);
        CHECK_EQ_INT(n, late ? 0 : 1);
        CHECK_EQ_INT(em__health_check(h, 2, 0, 0, 1, "h1", t),
                     late ? ALLOWED : EM__HEALTH_APP_EXECUTOR);
        em__health_free(h);
    }
}

TEST(app_host_excluded_via_two_executors)
{
    em__health *h = tracker(limits(99, 99, 99, 99, 1, 2));
    em__health_exclusion x[4];
    fail(h, 0, 0, 0, 1, "h1", 0, NULL);
    fail(h, 0, 0, 1, 3, "h2", 0, NULL);
    CHECK_EQ_INT(finish(h, 0, 0, true, 100, x, 4), 2); /* executors 1 and 3; no host yet */
    CHECK(x[0].exec_id >= 0 && x[1].exec_id >= 0);
    CHECK_EQ_INT(em__health_check(h, 1, 0, 0, 2, "h1", 150), ALLOWED);
    fail(h, 1, 0, 0, 2, "h1", 200, NULL);
    CHECK_EQ_INT(finish(h, 1, 0, true, 300, x, 4), 2);
    CHECK_EQ_INT(x[0].exec_id, 2);
    CHECK_EQ_INT(x[0].until_ms, 1300);
    CHECK_EQ_INT(x[1].exec_id, -1);
    CHECK_EQ_STR(x[1].host, "h1");
    CHECK_EQ_INT(x[1].until_ms, 1300);
    CHECK_EQ_INT(x[1].count, 2);
    CHECK_EQ_INT(em__health_check(h, 2, 0, 0, 9, "h1", 301), EM__HEALTH_APP_HOST);
    CHECK_EQ_INT(em__health_check(h, 2, 0, 0, 9, "h3", 301), ALLOWED);
    /* Listed: three executors, then the host. A short array still gets the total. */
    CHECK_EQ_INT(em__health_list_excluded(h, 301, x, 4), 4);
    CHECK_EQ_INT(x[3].exec_id, -1);
    CHECK_EQ_STR(x[3].host, "h1");
    CHECK_EQ_INT(em__health_list_excluded(h, 301, x, 1), 4);
    /* Executor 1 (until 1100) ends first; the host (until 1300) stays until its own time. */
    CHECK_EQ_INT(em__health_check(h, 2, 0, 0, 9, "h1", 1299), EM__HEALTH_APP_HOST);
    CHECK_EQ_INT(em__health_expire(h, 1100), 2); /* executors 1 and 3 */
    CHECK_EQ_INT(em__health_check(h, 2, 0, 0, 9, "h1", 1300), ALLOWED);
    CHECK_EQ_INT(em__health_expire(h, 1300), 2); /* executor 2 and h1 */
    CHECK_EQ_INT(em__health_list_excluded(h, 1300, x, 4), 0);
    em__health_free(h);
}

TEST(unschedulable_when_excluded_everywhere)
{
    em__health *h = tracker(limits(1, 2, 99, 99, 1, 99));
    em__health_executor live[2] = {{1, "h1"}, {2, "h2"}};
    int app = -1;
    CHECK_OK(em__health_check_schedulable(h, 3, 0, 7, live, 2, 0, &app));
    fail(h, 3, 0, 7, 1, "h1", 1, NULL);
    CHECK_OK(em__health_check_schedulable(h, 3, 0, 7, live, 2, 2, &app)); /* executor 2 left */
    fail(h, 3, 0, 7, 2, "h2", 3, NULL);
    CHECK_EQ_INT(em__health_check_schedulable(h, 3, 0, 7, live, 2, 4, &app), EM_EJOB);
    CHECK_EQ_INT(app, 0);
    const char *m = em_errmsg();
    CHECK(strstr(m, "stage 3"));
    CHECK(strstr(m, "partition 7"));
    CHECK(strstr(m, "executor 1 (h1): the partition failed on this executor"));
    CHECK(strstr(m, "executor 2 (h2): the partition failed on this executor"));
    /* Other partitions, a new executor, or no executors yet: not unschedulable. */
    CHECK_OK(em__health_check_schedulable(h, 3, 0, 8, live, 2, 4, NULL));
    em__health_executor three[3] = {{1, "h1"}, {2, "h2"}, {5, "h3"}};
    CHECK_OK(em__health_check_schedulable(h, 3, 0, 7, three, 3, 4, NULL));
    CHECK_OK(em__health_check_schedulable(h, 3, 0, 7, NULL, 0, 4, NULL));
    /* Executor 5 excluded by the application only: counted as such. */
    fail(h, 9, 0, 0, 5, "h3", 5, NULL);
    CHECK_EQ_INT(finish(h, 9, 0, true, 6, NULL, 0), 1);
    CHECK_EQ_INT(em__health_check_schedulable(h, 3, 0, 7, three, 3, 7, &app), EM_EJOB);
    CHECK_EQ_INT(app, 1);
    CHECK(strstr(em_errmsg(), "executor 5 (h3): executor excluded for the application"));
    /* ... and schedulable again once that exclusion ends (6 + 1000). */
    CHECK_OK(em__health_check_schedulable(h, 3, 0, 7, three, 3, 1006, &app));
    em__health_free(h);
}

TEST(disabled_allows_everything)
{
    em__health_limits l = limits(1, 1, 1, 1, 1, 1);
    l.enabled = false;
    em__health *h = tracker(l);
    em__health_failure_event ev = {.newly = 77};
    for (int p = 0; p < 5; p++) fail(h, 0, 0, p, 1, "h1", p, &ev);
    CHECK_EQ_INT(ev.newly, 0);
    CHECK_EQ_INT(ev.task_failures_on_executor, 0);
    CHECK_EQ_INT(em__health_check(h, 0, 0, 0, 1, "h1", 10), ALLOWED);
    em__health_executor live[1] = {{1, "h1"}};
    CHECK_OK(em__health_check_schedulable(h, 0, 0, 0, live, 1, 10, NULL));
    CHECK_EQ_INT(finish(h, 0, 0, true, 20, NULL, 0), 0);
    CHECK_EQ_INT(em__health_check(h, -1, 0, -1, 1, "h1", 21), ALLOWED);
    CHECK_EQ_INT(em__health_list_excluded(h, 21, NULL, 0), 0);
    CHECK_EQ_INT(em__health_expire(h, 5000), 0);
    em__health_executor_removed(h, 1);
    em__health_free(h);
}

TEST(lost_executor_is_forgotten)
{
    em__health *h = tracker(limits(1, 2, 99, 99, 2, 99));
    em__health_exclusion x[4];
    /* Executor 1 fails two tasks, is lost before the stage succeeds: no app exclusion. */
    fail(h, 0, 0, 0, 1, "h1", 0, NULL);
    fail(h, 0, 0, 1, 1, "h1", 1, NULL);
    em__health_executor_removed(h, 1);
    /* Its failure of partition 0 still counts for host h1: one more there excludes h1. */
    CHECK_EQ_INT(em__health_check(h, 0, 0, 0, 2, "h1", 2), ALLOWED);
    fail(h, 0, 0, 0, 2, "h1", 3, NULL);
    CHECK_EQ_INT(em__health_check(h, 0, 0, 0, 3, "h1", 4), EM__HEALTH_TASK_HOST);
    CHECK_EQ_INT(finish(h, 0, 0, true, 10, x, 4), 0); /* executor 2: 1 of 2 */
    CHECK_EQ_INT(em__health_list_excluded(h, 11, x, 4), 0);
    /* Removal also forgets promoted records: executor 2's one failure is gone. */
    em__health_executor_removed(h, 2);
    fail(h, 1, 0, 0, 2, "h1", 12, NULL);
    CHECK_EQ_INT(finish(h, 1, 0, true, 13, x, 4), 0);
    em__health_free(h);
}

TEST(lost_excluded_executor_still_counts_for_host)
{
    em__health *h = tracker(limits(99, 99, 99, 99, 1, 2));
    em__health_exclusion x[4];
    fail(h, 0, 0, 0, 1, "h1", 0, NULL);
    CHECK_EQ_INT(finish(h, 0, 0, true, 10, x, 4), 1);
    em__health_executor_removed(h, 1);
    CHECK_EQ_INT(em__health_list_excluded(h, 11, x, 4), 0); /* a lost one is not listed */
    fail(h, 1, 0, 0, 2, "h1", 20, NULL);
    CHECK_EQ_INT(finish(h, 1, 0, true, 30, x, 4), 2); /* executor 2, then host h1 */
    CHECK_EQ_INT(x[1].exec_id, -1);
    CHECK_EQ_INT(x[1].count, 2);
    CHECK_EQ_INT(em__health_list_excluded(h, 31, x, 4), 2);
    CHECK_EQ_INT(x[0].exec_id, 2);
    CHECK_EQ_INT(x[1].exec_id, -1);
    em__health_free(h);
}

/* Threads record failures and query at once (run under TSan too). Each thread t fails
 * partitions 0..9 of stage t on executor t: with stage limit 2 every executor ends up
 * excluded for its own stage and no other. */
static em__health *shared_h;
static void *hammer(void *arg)
{
    int t = (int)(intptr_t)arg;
    char host[16];
    snprintf(host, sizeof host, "h%d", t);
    for (int p = 0; p < 10; p++) {
        if (em__health_task_failed(shared_h, t, 0, p, t, host, p, NULL) != 0) return arg;
        (void)em__health_check(shared_h, (t + 1) % 4, 0, p, t, host, p);
    }
    return NULL;
}

TEST(concurrent_use)
{
    shared_h = tracker(limits(1, 99, 2, 99, 99, 99));
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        CHECK(pthread_create(&th[t], NULL, hammer, (void *)(intptr_t)t) == 0);
    for (int t = 0; t < 4; t++) {
        void *r;
        pthread_join(th[t], &r);
        CHECK(r == NULL);
    }
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < 4; s++) {
            char host[16];
            snprintf(host, sizeof host, "h%d", t);
            CHECK_EQ_INT(em__health_check(shared_h, s, 0, 50, t, host, 100),
                         s == t ? EM__HEALTH_STAGE_EXECUTOR : ALLOWED);
        }
    em__health_free(shared_h);
}
