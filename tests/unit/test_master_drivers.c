/* Unit tests of the master's cluster-mode driver table (src/deploy/master_drivers.c, part of
 * em__mstate) on a fake clock with fake connection tags: submission and placement (the worker
 * with the most free cores that has room; drivers before executors), the reports of a worker
 * (RUNNING, FINISHED, FAILED, KILLED, ERROR) and who may make them, relaunch with back-off
 * under --supervise (1 s doubling to 60 s, reset after a stable run), no relaunch without it,
 * kill (waiting, launched, worker away), worker death and return, refusals and retention.
 * Expected placements and delays are worked out by hand in the comments.
 */
#include "test.h"

#include "deploy/master_state.h"
#include "net/proto.h"

#include <ember/ember.h>
#include <regex.h>
#include <string.h>

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define WALL 1700000000000LL

static int conn_w1, conn_w2, conn_d1; /* addresses used as connection tags */
#define W1 ((void *)&conn_w1)
#define W2 ((void *)&conn_w2)
#define D1 ((void *)&conn_d1)

typedef struct {
    em__maction *v;
    size_t n;
} actions;

static actions take(em__mstate *st)
{
    actions a;
    a.v = em__mstate_take_actions(st, &a.n);
    return a;
}

static void drop(actions *a)
{
    em__mactions_free(a->v, a->n);
    a->v = NULL;
    a->n = 0;
}

static void discard(em__mstate *st)
{
    actions a = take(st);
    drop(&a);
}

static int count(const actions *a, int type, void *conn)
{
    int k = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].type == type && (!conn || a->v[i].conn == conn)) k++;
    return k;
}

static const em__maction *nth(const actions *a, int type, int i)
{
    for (size_t k = 0; k < a->n; k++)
        if (a->v[k].type == type && i-- == 0) return &a->v[k];
    return NULL;
}

/* Submits a driver (args "in", "out"; env with a name) at now. */
static em_mdriver *submit(em__mstate *st, int cores, uint64_t mem, bool supervise, int64_t now)
{
    const char *args[] = {"in", "out dir"};
    const char *env[] = {"EMBER_MASTER=ember://m:7077", "EMBER_APP_NAME=wc"};
    em__driver_request req = {.cores = cores,
                              .memory_mb = mem,
                              .supervise = supervise,
                              .binary_hash = HASH,
                              .args = args,
                              .num_args = 2,
                              .env = env,
                              .num_env = 2};
    em_mdriver *d = NULL;
    CHECK_OK(em__mstate_submit_driver(st, &req, now, WALL, &d));
    CHECK(d != NULL);
    return d;
}

static void two_workers(em__mstate *st)
{
    /* w1: 4 cores, 4096 MiB; w2: 2 cores, 1024 MiB */
    CHECK_EQ_INT(em__mstate_register_worker(st, "w1", "h1", 0, 4, 4096, W1, 0), 0);
    CHECK_EQ_INT(em__mstate_register_worker(st, "w2", "h2", 0, 2, 1024, W2, 0), 0);
    discard(st);
}

TEST(submit_places_on_the_worker_with_most_free_cores_and_room)
{
    em__mstate st;
    em__mstate_init(&st, true);
    two_workers(&st);
    em_mdriver *d0 = submit(&st, 1, 1024, false, 10);
    regex_t re;
    CHECK(regcomp(&re, "^driver-[0-9]{14}-0000$", REG_EXTENDED) == 0);
    CHECK(regexec(&re, d0->id, 0, NULL, 0) == 0);
    regfree(&re);
    CHECK_EQ_STR(d0->name, "wc");
    CHECK_EQ_INT(d0->state, EM_DRIVER_SUBMITTED);
    /* w1 has the most free cores (4 against 2) and room: LAUNCH_DRIVER to w1. */
    actions a = take(&st);
    CHECK_EQ_INT(a.n, 1);
    const em__maction *l = nth(&a, EM_MSG_LAUNCH_DRIVER, 0);
    CHECK(l && l->conn == W1);
    CHECK_EQ_STR(l->driver_id, d0->id);
    CHECK_EQ_INT(l->cores, 1);
    CHECK_EQ_INT(l->memory_mb, 1024);
    CHECK(l->driver == d0);
    CHECK_EQ_STR(l->driver->binary_hash, HASH);
    CHECK_EQ_INT(l->driver->num_args, 2);
    CHECK_EQ_STR(l->driver->args[1], "out dir");
    CHECK_EQ_INT(l->driver->num_env, 2);
    CHECK_EQ_STR(l->driver->env[0], "EMBER_MASTER=ember://m:7077");
    drop(&a);
    CHECK(d0->placed);
    CHECK_EQ_STR(d0->worker_id, "w1");
    CHECK_EQ_INT(d0->launches, 1);
    em_mworker *w1 = em__mworkers_find(&st.workers, "w1");
    CHECK_EQ_INT(w1->cores_used, 1);
    CHECK_EQ_INT(w1->memory_used_mb, 1024);

    /* 2 cores, 1024 MiB: w1 has 3 free cores (3072 MiB), w2 2 (1024): w1. */
    em_mdriver *d1 = submit(&st, 2, 1024, false, 20);
    CHECK(strcmp(d1->id, d0->id) != 0);
    CHECK_EQ_STR(d1->worker_id, "w1");
    discard(&st);
    /* Now w1: 1 free core, 2048 MiB; w2: 2 cores, 1024 MiB. 2 cores and 2048 MiB: nobody. */
    em_mdriver *d2 = submit(&st, 2, 2048, false, 30);
    a = take(&st);
    CHECK_EQ_INT(a.n, 0);
    drop(&a);
    CHECK(!d2->placed);
    CHECK_EQ_INT(d2->state, EM_DRIVER_SUBMITTED);
    /* d1 ends: w1 has 3 free cores and 3072 MiB: d2 goes there. */
    CHECK_OK(em__mstate_driver_state(&st, W1, d1->id, EM_DRIVER_FINISHED, 0, "ok", 40));
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, W1), 1);
    CHECK_EQ_STR(nth(&a, EM_MSG_LAUNCH_DRIVER, 0)->driver_id, d2->id);
    drop(&a);
    CHECK_EQ_INT(w1->cores_used, 3); /* d0 1 + d2 2 */
    CHECK_EQ_INT(w1->memory_used_mb, 3072);
    em__mstate_free(&st);
}

TEST(drivers_hold_cores_that_applications_then_do_not_get)
{
    em__mstate st;
    em__mstate_init(&st, true);
    two_workers(&st);
    submit(&st, 3, 512, false, 10); /* on w1 (4 free): leaves w1 1 core */
    discard(&st);
    const char *env[] = {"A=1"};
    em__app_request req = {.name = "app",
                           .executor_cores = 1,
                           .executor_memory_mb = 256,
                           .driver_url = "h1:1",
                           .binary_hash = HASH,
                           .env = env,
                           .num_env = 1};
    em_mapp *app = NULL;
    CHECK_OK(em__mstate_register_app(&st, &req, D1, 20, WALL, &app));
    /* Free: w1 1 core, w2 2 cores: 3 one-core executors (w2 twice, w1 once), not 6. */
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 3);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W1), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W2), 2);
    drop(&a);
    CHECK_EQ_INT(app->cores_granted, 3);
    em__mstate_free(&st);
}

TEST(worker_reports_running_finished_and_who_may_report)
{
    em__mstate st;
    em__mstate_init(&st, true);
    two_workers(&st);
    em_mdriver *d = submit(&st, 1, 512, false, 10);
    discard(&st);
    CHECK_EQ_INT(em__mstate_driver_state(&st, W2, d->id, EM_DRIVER_RUNNING, 0, "x", 11), EM_EACCES);
    CHECK_EQ_INT(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_SUBMITTED, 0, "x", 11),
                 EM_EINVAL);
    CHECK_EQ_INT(em__mstate_driver_state(&st, W1, "driver-nope", EM_DRIVER_RUNNING, 0, "", 11),
                 EM_ENOENT);
    CHECK_OK(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_RUNNING, 0, "pid 42", 12));
    CHECK_EQ_INT(d->state, EM_DRIVER_RUNNING);
    CHECK_EQ_STR(d->message, "pid 42");
    CHECK_OK(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_FINISHED, 0, "exited normally", 50));
    CHECK_EQ_INT(d->state, EM_DRIVER_FINISHED);
    CHECK(!d->placed);
    CHECK_EQ_STR(d->worker_id, "w1"); /* kept for --status */
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 0);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->memory_used_mb, 0);
    /* An ended driver: later reports are ignored, a kill is refused. */
    CHECK_EQ_INT(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_FAILED, 1, "", 60), EM_ENOENT);
    CHECK_EQ_INT(em__mstate_kill_driver(&st, d->id, 60), EM_ESTATE);
    CHECK(strstr(em_errmsg(), "FINISHED") != NULL);
    CHECK(em__mstate_find_driver(&st, d->id) == d);
    actions a = take(&st);
    CHECK_EQ_INT(a.n, 0);
    drop(&a);
    /* ERROR from the worker is final even when supervised (it could not start). */
    em_mdriver *e = submit(&st, 1, 512, true, 70);
    discard(&st);
    CHECK_OK(em__mstate_driver_state(&st, W1, e->id, EM_DRIVER_ERROR, 0, "fetch failed", 71));
    CHECK_EQ_INT(e->state, EM_DRIVER_ERROR);
    em__mstate_check(&st, 100000, 1000000);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);
    em__mstate_free(&st);
}

/* Fails placed driver d (exit 1) at now; checks it is RELAUNCHING and not launched again
 * before now + delay, and launched exactly then. */
static void fail_and_expect_delay(em__mstate *st, em_mdriver *d, int64_t now, int64_t delay)
{
    void *conn = !strcmp(d->worker_id, "w1") ? W1 : W2;
    CHECK_OK(em__mstate_driver_state(st, conn, d->id, EM_DRIVER_FAILED, 1, "exit 1", now));
    CHECK_EQ_INT(d->state, EM_DRIVER_RELAUNCHING);
    CHECK(!d->placed);
    actions a = take(st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);
    int launches = d->launches;
    em__mstate_check(st, now + delay - 1, 1000000);
    a = take(st);
    CHECK_MSG(count(&a, EM_MSG_LAUNCH_DRIVER, NULL) == 0, "launched before %lld ms",
              (long long)delay);
    drop(&a);
    em__mstate_check(st, now + delay, 1000000);
    a = take(st);
    CHECK_MSG(count(&a, EM_MSG_LAUNCH_DRIVER, NULL) == 1, "not launched at %lld ms",
              (long long)delay);
    CHECK_EQ_STR(nth(&a, EM_MSG_LAUNCH_DRIVER, 0)->driver_id, d->id);
    drop(&a);
    CHECK_EQ_INT(d->launches, launches + 1);
    CHECK(d->placed);
    CHECK_EQ_INT(d->state, EM_DRIVER_RELAUNCHING); /* until the worker says RUNNING */
}

TEST(supervised_driver_relaunched_with_doubling_backoff_capped_and_reset)
{
    em__mstate st;
    em__mstate_init(&st, true);
    two_workers(&st);
    em_mdriver *d = submit(&st, 1, 512, true, 0);
    discard(&st);
    /* Failures in a row: 1 s, 2 s, 4 s, 8 s, 16 s, 32 s, then 60 s (not 64), 60 s. */
    const int64_t delays[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    int64_t now = 100;
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        fail_and_expect_delay(&st, d, now, delays[i]);
        now += delays[i] + 5;
    }
    CHECK_EQ_INT(d->launches, 9);
    /* A run of EM_MASTER_DRIVER_STABLE_MS (10 s) before failing: back to 1 s. */
    void *conn = !strcmp(d->worker_id, "w1") ? W1 : W2;
    CHECK_OK(em__mstate_driver_state(&st, conn, d->id, EM_DRIVER_RUNNING, 0, "", now));
    CHECK_EQ_INT(d->state, EM_DRIVER_RUNNING);
    now += 10000;
    fail_and_expect_delay(&st, d, now, 1000);
    now += 1005;
    /* ... and a short run counts as a failure in a row again: 2 s. */
    conn = !strcmp(d->worker_id, "w1") ? W1 : W2;
    CHECK_OK(em__mstate_driver_state(&st, conn, d->id, EM_DRIVER_RUNNING, 0, "", now));
    fail_and_expect_delay(&st, d, now + 500, 2000);
    /* Then it succeeds: FINISHED, no more launches. */
    conn = !strcmp(d->worker_id, "w1") ? W1 : W2;
    CHECK_OK(em__mstate_driver_state(&st, conn, d->id, EM_DRIVER_FINISHED, 0, "", now + 9000));
    CHECK_EQ_INT(d->state, EM_DRIVER_FINISHED);
    em__mstate_check(&st, now + 500000, 1000000);
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);
    em__mstate_free(&st);
}

TEST(unsupervised_driver_is_not_relaunched)
{
    em__mstate st;
    em__mstate_init(&st, true);
    two_workers(&st);
    em_mdriver *d = submit(&st, 1, 512, false, 0);
    discard(&st);
    CHECK_OK(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_RUNNING, 0, "", 1));
    CHECK_OK(
        em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_FAILED, -9, "killed by signal 9", 2));
    CHECK_EQ_INT(d->state, EM_DRIVER_FAILED);
    CHECK_EQ_INT(d->exit_code, -9);
    CHECK_EQ_STR(d->message, "killed by signal 9");
    for (int64_t t = 1000; t <= 120000; t += 1000) em__mstate_check(&st, t, 1000000);
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);
    CHECK_EQ_INT(d->launches, 1);
    /* A KILLED nobody asked for (its worker stopping) ends it too when not supervised. */
    em_mdriver *k = submit(&st, 1, 512, false, 200000);
    discard(&st);
    CHECK_OK(
        em__mstate_driver_state(&st, W1, k->id, EM_DRIVER_KILLED, -15, "worker stopping", 200001));
    CHECK_EQ_INT(k->state, EM_DRIVER_KILLED);
    em__mstate_free(&st);
}

TEST(supervised_driver_killed_by_its_worker_stopping_runs_again_elsewhere_at_once)
{
    em__mstate st;
    em__mstate_init(&st, true);
    two_workers(&st);
    em_mdriver *d = submit(&st, 1, 512, true, 0);
    discard(&st);
    CHECK_EQ_STR(d->worker_id, "w1");
    CHECK_OK(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_RUNNING, 0, "", 1));
    CHECK_OK(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_KILLED, -15, "worker stopping", 2));
    /* Not the driver's fault: launched again in the same pass, and not on w1 (it is stopping,
     * though it still has the most free cores): on w2. */
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, W2), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 1);
    drop(&a);
    CHECK_EQ_INT(d->launches, 2);
    CHECK_EQ_INT(d->failures, 0);
    CHECK_EQ_INT(d->state, EM_DRIVER_RELAUNCHING);

    /* With w1 the only worker with room, it waits EM_MASTER_DRIVER_BACKOFF_MIN_MS for it. */
    em__mstate one;
    em__mstate_init(&one, true);
    CHECK_EQ_INT(em__mstate_register_worker(&one, "w1", "h1", 0, 4, 4096, W1, 0), 0);
    em_mdriver *e = submit(&one, 1, 512, true, 0);
    discard(&one);
    CHECK_OK(em__mstate_driver_state(&one, W1, e->id, EM_DRIVER_KILLED, -15, "stopping", 100));
    a = take(&one);
    CHECK_EQ_INT(a.n, 0);
    drop(&a);
    em__mstate_check(&one, 100 + EM_MASTER_DRIVER_BACKOFF_MIN_MS - 1, 1000000);
    a = take(&one);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);
    em__mstate_check(&one, 100 + EM_MASTER_DRIVER_BACKOFF_MIN_MS, 1000000);
    a = take(&one);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, W1), 1);
    drop(&a);
    em__mstate_free(&one);
    em__mstate_free(&st);
}

TEST(kill_waiting_launched_and_while_its_worker_is_away)
{
    em__mstate st;
    em__mstate_init(&st, true);
    CHECK_EQ_INT(em__mstate_kill_driver(&st, "driver-unknown", 0), EM_ENOENT);
    CHECK(strstr(em_errmsg(), "driver-unknown") != NULL);
    /* No worker yet: a waiting driver is KILLED at once, nothing sent. */
    em_mdriver *w = submit(&st, 1, 512, true, 0);
    CHECK_EQ_INT(em__mstate_kill_driver(&st, w->id, 1), 1);
    CHECK_EQ_INT(w->state, EM_DRIVER_KILLED);
    actions a = take(&st);
    CHECK_EQ_INT(a.n, 0);
    drop(&a);
    two_workers(&st); /* the killed driver is not launched now */
    CHECK_EQ_INT(w->launches, 0);

    /* A launched supervised driver: KILL_DRIVER to its worker, KILLED when reported, and no
     * relaunch although supervised. */
    em_mdriver *d = submit(&st, 1, 512, true, 10);
    discard(&st);
    CHECK_OK(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_RUNNING, 0, "", 11));
    CHECK_EQ_INT(em__mstate_kill_driver(&st, d->id, 12), 0);
    a = take(&st);
    CHECK_EQ_INT(a.n, 1);
    CHECK_EQ_INT(count(&a, EM_MSG_KILL_DRIVER, W1), 1);
    CHECK_EQ_STR(nth(&a, EM_MSG_KILL_DRIVER, 0)->driver_id, d->id);
    drop(&a);
    CHECK_EQ_INT(d->state, EM_DRIVER_RUNNING);
    CHECK_EQ_INT(em__mstate_kill_driver(&st, d->id, 13), 0); /* asked again: sent again */
    discard(&st);
    CHECK_OK(em__mstate_driver_state(&st, W1, d->id, EM_DRIVER_KILLED, -15, "killed", 14));
    CHECK_EQ_INT(d->state, EM_DRIVER_KILLED);
    em__mstate_check(&st, 100000, 1000000);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);

    /* Its worker's connection is gone: the order waits for the re-registration. */
    em_mdriver *e = submit(&st, 1, 512, false, 200000);
    discard(&st);
    CHECK_EQ_STR(e->worker_id, "w1");
    em__mstate_conn_closed(&st, W1, 200001);
    CHECK_EQ_INT(em__mstate_kill_driver(&st, e->id, 200002), 0);
    a = take(&st);
    CHECK_EQ_INT(a.n, 0);
    drop(&a);
    static int conn_w1b;
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "h1", 0, 4, 4096, &conn_w1b, 200003), 1);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_KILL_DRIVER, &conn_w1b), 1);
    CHECK_EQ_STR(nth(&a, EM_MSG_KILL_DRIVER, 0)->driver_id, e->id);
    drop(&a);
    CHECK_OK(em__mstate_driver_state(&st, &conn_w1b, e->id, EM_DRIVER_KILLED, -15, "", 200004));
    CHECK_EQ_INT(e->state, EM_DRIVER_KILLED);
    em__mstate_free(&st);
}

TEST(worker_death_relaunches_supervised_errors_others_and_kills_on_return)
{
    em__mstate st;
    em__mstate_init(&st, true);
    two_workers(&st);
    /* Both on w1 (4 free cores against w2's 2, then 3 against 2). */
    em_mdriver *sup = submit(&st, 1, 512, true, 0);
    em_mdriver *plain = submit(&st, 1, 512, false, 0);
    em_mdriver *killing = submit(&st, 1, 512, true, 0);
    discard(&st);
    CHECK_EQ_STR(sup->worker_id, "w1");
    CHECK_EQ_STR(plain->worker_id, "w1");
    CHECK_EQ_STR(killing->worker_id, "w1");
    CHECK_OK(em__mstate_driver_state(&st, W1, sup->id, EM_DRIVER_RUNNING, 0, "", 1));
    CHECK_EQ_INT(em__mstate_kill_driver(&st, killing->id, 2), 0);
    discard(&st);
    /* w2 keeps heartbeating; w1 goes silent past the 1000 ms timeout. */
    CHECK_OK(em__mworkers_heartbeat(&st.workers, "w2", 1500));
    CHECK_EQ_INT(em__mstate_check(&st, 1600, 1000), 1);
    actions a = take(&st);
    /* The supervised driver runs again at once on w2 (the only worker alive; room for 1). */
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, W2), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 1);
    CHECK_EQ_STR(nth(&a, EM_MSG_LAUNCH_DRIVER, 0)->driver_id, sup->id);
    drop(&a);
    CHECK_EQ_STR(sup->worker_id, "w2");
    CHECK_EQ_INT(sup->state, EM_DRIVER_RELAUNCHING);
    CHECK_EQ_INT(sup->failures, 0); /* not counted against its back-off */
    CHECK_EQ_INT(plain->state, EM_DRIVER_ERROR);
    CHECK(strstr(plain->message, "w1") != NULL && strstr(plain->message, "lost") != NULL);
    CHECK_EQ_INT(killing->state, EM_DRIVER_KILLED);
    /* w1 comes back: told to kill the three drivers it ran at its death. */
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "h1", 0, 4, 4096, W1, 2000), 1);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_KILL_DRIVER, W1), 3);
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        const char *id = nth(&a, EM_MSG_KILL_DRIVER, i)->driver_id;
        seen |= (!strcmp(id, sup->id) ? 1 : 0) | (!strcmp(id, plain->id) ? 2 : 0) |
                (!strcmp(id, killing->id) ? 4 : 0);
    }
    CHECK_EQ_INT(seen, 7);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 0);
    /* A late report from w1 about the relaunched driver is not its worker's: refused. */
    CHECK_EQ_INT(em__mstate_driver_state(&st, W1, sup->id, EM_DRIVER_FAILED, 1, "", 2001),
                 EM_EACCES);
    em__mstate_free(&st);
}

TEST(refusals_and_retention)
{
    em__mstate st;
    em__mstate_init(&st, true);
    em__driver_request req = {.cores = 0, .memory_mb = 512, .binary_hash = HASH};
    em_mdriver *d = NULL;
    CHECK_EQ_INT(em__mstate_submit_driver(&st, &req, 0, WALL, &d), EM_EINVAL);
    req.cores = 1;
    req.memory_mb = 0;
    CHECK_EQ_INT(em__mstate_submit_driver(&st, &req, 0, WALL, &d), EM_EINVAL);
    req.memory_mb = 1;
    req.binary_hash = "ABC";
    CHECK_EQ_INT(em__mstate_submit_driver(&st, &req, 0, WALL, &d), EM_EINVAL);
    CHECK(strstr(em_errmsg(), "ABC") != NULL);
    req.binary_hash = HASH;
    const char *bad_env[] = {"NOEQUALS"};
    req.env = bad_env;
    req.num_env = 1;
    CHECK_EQ_INT(em__mstate_submit_driver(&st, &req, 0, WALL, &d), EM_EINVAL);
    CHECK(strstr(em_errmsg(), "NOEQUALS") != NULL);
    CHECK(d == NULL);
    CHECK_EQ_INT(st.ndrivers, 0);
    /* No worker: every driver waits; killing each ends it. Beyond the retention the oldest
     * ended ones are dropped (at the next submission). */
    req.num_env = 0;
    char first[64] = "";
    for (int i = 0; i < EM_MASTER_RETAINED_DRIVERS + 5; i++) {
        CHECK_OK(em__mstate_submit_driver(&st, &req, i, WALL, &d));
        if (i == 0) snprintf(first, sizeof first, "%s", d->id);
        CHECK_EQ_INT(em__mstate_kill_driver(&st, d->id, i), 1);
    }
    CHECK_OK(em__mstate_submit_driver(&st, &req, 1000, WALL, &d));
    CHECK_EQ_INT(st.ndrivers, EM_MASTER_RETAINED_DRIVERS + 1);
    CHECK(em__mstate_find_driver(&st, first) == NULL);
    CHECK(em__mstate_find_driver(&st, d->id) == d);
    CHECK_EQ_INT(d->state, EM_DRIVER_SUBMITTED);
    em__mstate_free(&st);
}
