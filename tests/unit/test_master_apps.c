/* Unit tests of the standalone master's application and executor tables (src/deploy/
 * master_state.c) on a fake clock with fake connection tags: placement applied (spread out and
 * consolidated, one executor per worker), replacement after an executor ends, the retry cap,
 * worker death and return, application end (unregister, driver gone) handing cores to the
 * next application, a worker joining later, and the refusals. Expected placements are worked
 * out by hand in the comments, not taken from the code under test.
 */
#include "test.h"

#include "deploy/master_state.h"
#include "net/proto.h"

#include <ember/ember.h>
#include <regex.h>
#include <string.h>

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int conn_w1, conn_w2, conn_w3, conn_d1, conn_d2; /* addresses used as connection tags */
#define W1 ((void *)&conn_w1)
#define W2 ((void *)&conn_w2)
#define W3 ((void *)&conn_w3)
#define D1 ((void *)&conn_d1)
#define D2 ((void *)&conn_d2)

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

/* Takes and frees whatever is queued. */
static void discard(em__mstate *st)
{
    actions a = take(st);
    drop(&a);
}

/* Actions of type to conn (NULL: any destination). */
static int count(const actions *a, int type, void *conn)
{
    int k = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].type == type && (!conn || a->v[i].conn == conn)) k++;
    return k;
}

/* The i-th action of type (0-based), or NULL. */
static const em__maction *nth(const actions *a, int type, int i)
{
    for (size_t k = 0; k < a->n; k++)
        if (a->v[k].type == type && i-- == 0) return &a->v[k];
    return NULL;
}

static em_mapp *add_app(em__mstate *st, void *conn, int cores_max, int executor_cores, uint64_t mem,
                        int64_t now)
{
    const char *env[] = {"A=1", "B=two"};
    em__app_request req = {.name = "test-app",
                           .cores_max = cores_max,
                           .executor_cores = executor_cores,
                           .executor_memory_mb = mem,
                           .driver_url = "127.0.0.1:4040",
                           .binary_hash = HASH,
                           .env = env,
                           .num_env = 2};
    em_mapp *a = NULL;
    CHECK_OK(em__mstate_register_app(st, &req, conn, now, 1700000000000, &a));
    CHECK(a != NULL);
    return a;
}

TEST(spread_out_places_one_executor_per_worker_in_turn)
{
    em__mstate st;
    em__mstate_init(&st, true);
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "h1", 0, 4, 4096, W1, 0), 0);
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w2", "h2", 0, 4, 4096, W2, 0), 0);
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w3", "h3", 0, 2, 4096, W3, 0), 0);
    actions a = take(&st);
    CHECK_EQ_INT(a.n, 0); /* no application yet */
    drop(&a);
    /* 6 cores in 2-core executors: 3 executors, round-robin w1, w2, w3 (most free first). */
    em_mapp *app = add_app(&st, D1, 6, 2, 1024, 10);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 3);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W1), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W2), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W3), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_EXECUTOR_ADDED, D1), 3);
    for (int i = 0; i < 3; i++) {
        const em__maction *l = nth(&a, EM_MSG_LAUNCH_EXECUTOR, i);
        const em__maction *x = nth(&a, EM_MSG_EXECUTOR_ADDED, i);
        CHECK_EQ_INT(l->exec_id, i); /* ids 0, 1, 2 */
        CHECK_EQ_INT(l->cores, 2);
        CHECK_EQ_INT(l->memory_mb, 1024);
        CHECK_EQ_STR(l->app_id, app->id);
        CHECK_EQ_STR(l->app->binary_hash, HASH);
        CHECK_EQ_STR(l->app->driver_url, "127.0.0.1:4040");
        CHECK_EQ_INT(l->app->num_env, 2);
        CHECK_EQ_STR(l->app->env[1], "B=two");
        CHECK_EQ_INT(x->exec_id, i);
        CHECK_EQ_STR(x->worker_id, i == 0 ? "w1" : i == 1 ? "w2" : "w3");
        CHECK_EQ_STR(x->host, i == 0 ? "h1" : i == 1 ? "h2" : "h3");
    }
    drop(&a);
    CHECK_EQ_INT(app->state, EM_APP_RUNNING);
    CHECK_EQ_INT(app->cores_granted, 6);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 2);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w3")->memory_used_mb, 1024);
    /* Satisfied: another pass adds nothing. */
    em__mstate_schedule(&st, 20);
    a = take(&st);
    CHECK_EQ_INT(a.n, 0);
    drop(&a);
    em__mstate_free(&st);
}

TEST(consolidate_fills_one_worker_first)
{
    em__mstate st;
    em__mstate_init(&st, false);
    em__mstate_register_worker(&st, "w1", "h1", 0, 4, 4096, W1, 0);
    em__mstate_register_worker(&st, "w2", "h2", 0, 4, 4096, W2, 0);
    discard(&st);
    /* 6 cores, 2 per executor: w1 takes two (4 cores), w2 one. */
    add_app(&st, D1, 6, 2, 1024, 0);
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W1), 2);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W2), 1);
    drop(&a);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 4);
    em__mstate_free(&st);
}

TEST(memory_limits_executors_per_worker)
{
    em__mstate st;
    em__mstate_init(&st, false);
    /* 8 cores but 2500 MiB: only two 1024 MiB executors fit. */
    em__mstate_register_worker(&st, "w1", "h1", 0, 8, 2500, W1, 0);
    em_mapp *app = add_app(&st, D1, 0, 1, 1024, 0);
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W1), 2);
    drop(&a);
    CHECK_EQ_INT(app->cores_granted, 2);
    em__mstate_free(&st);
}

TEST(one_executor_per_worker_mode_takes_all_free_cores_once)
{
    em__mstate st;
    em__mstate_init(&st, true);
    em__mstate_register_worker(&st, "w1", "h1", 0, 3, 4096, W1, 0);
    em__mstate_register_worker(&st, "w2", "h2", 0, 5, 4096, W2, 0);
    em_mapp *app = add_app(&st, D1, 0, 0, 512, 0);
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 2);
    const em__maction *first = nth(&a, EM_MSG_LAUNCH_EXECUTOR, 0); /* w2: most free cores */
    const em__maction *second = nth(&a, EM_MSG_LAUNCH_EXECUTOR, 1);
    CHECK(first->conn == W2 && first->cores == 5);
    CHECK(second->conn == W1 && second->cores == 3);
    drop(&a);
    CHECK_EQ_INT(app->cores_granted, 8);
    /* A worker that gains cores (re-registers bigger) does not get a second executor of it. */
    em__mworkers_disconnected(&st.workers, W1);
    em__mstate_register_worker(&st, "w1", "h1", 0, 6, 4096, W1, 1);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 0);
    drop(&a);
    em__mstate_free(&st);
}

TEST(exited_executor_is_replaced_and_driver_told)
{
    em__mstate st;
    em__mstate_init(&st, true);
    em__mstate_register_worker(&st, "w1", "h1", 0, 2, 4096, W1, 0);
    em_mapp *app = add_app(&st, D1, 2, 2, 1024, 0);
    discard(&st);
    CHECK_OK(em__mstate_executor_state(&st, W1, app->id, 0, EM_EXEC_RUNNING, 0, "pid 1", 100));
    CHECK_EQ_INT(em__mapp_find_exec(app, 0)->state, EM_EXEC_RUNNING);
    actions a = take(&st);
    CHECK_EQ_INT(a.n, 0); /* RUNNING is not passed on */
    drop(&a);
    /* kill -9: FAILED, -9; the driver hears it with the message; a replacement (id 1) starts. */
    CHECK_OK(em__mstate_executor_state(&st, W1, app->id, 0, EM_EXEC_FAILED, -9,
                                       "killed by signal 9 (Killed)", 200));
    a = take(&st);
    const em__maction *rm = nth(&a, EM_MSG_EXECUTOR_REMOVED, 0);
    CHECK(rm && rm->conn == D1);
    CHECK_EQ_INT(rm->exec_id, 0);
    CHECK_EQ_INT(rm->state, EM_EXEC_FAILED);
    CHECK_EQ_INT(rm->exit_code, -9);
    CHECK_EQ_STR(rm->message, "killed by signal 9 (Killed)");
    const em__maction *l = nth(&a, EM_MSG_LAUNCH_EXECUTOR, 0);
    CHECK(l && l->conn == W1);
    CHECK_EQ_INT(l->exec_id, 1);
    CHECK(rm < l); /* removal before the replacement */
    drop(&a);
    CHECK_EQ_INT(app->retries, 1);
    CHECK_EQ_INT(app->executors_launched, 2);
    /* A normal exit (status 0) does not count against the cap. */
    CHECK_OK(em__mstate_executor_state(&st, W1, app->id, 1, EM_EXEC_EXITED, 0, "exited", 300));
    CHECK_EQ_INT(app->retries, 1);
    a = take(&st);
    CHECK_EQ_INT(nth(&a, EM_MSG_LAUNCH_EXECUTOR, 0)->exec_id, 2);
    drop(&a);
    /* Late or duplicate reports are ignored. */
    CHECK_EQ_INT(em__mstate_executor_state(&st, W1, app->id, 0, EM_EXEC_EXITED, 0, "", 400),
                 EM_ENOENT);
    CHECK_EQ_INT(em__mstate_executor_state(&st, W1, "app-nope", 0, EM_EXEC_EXITED, 0, "", 400),
                 EM_ENOENT);
    /* Only the executor's worker may report it; LOST / LAUNCHING are not a worker's to say. */
    CHECK_EQ_INT(em__mstate_executor_state(&st, W2, app->id, 2, EM_EXEC_EXITED, 0, "", 400),
                 EM_EACCES);
    CHECK_EQ_INT(em__mstate_executor_state(&st, W1, app->id, 2, EM_EXEC_LOST, 0, "", 400),
                 EM_EINVAL);
    CHECK_EQ_INT(em__mapp_find_exec(app, 2)->state, EM_EXEC_LAUNCHING);
    em__mstate_free(&st);
}

TEST(retry_cap_ends_a_crash_loop)
{
    em__mstate st;
    em__mstate_init(&st, true);
    em__mstate_register_worker(&st, "w1", "h1", 0, 1, 4096, W1, 0);
    em_mapp *app = add_app(&st, D1, 0, 1, 256, 0);
    discard(&st);
    /* Every executor fails at once: launches 0..9, the 10th failure ends the application. */
    int64_t now = 1000;
    for (int i = 0; i < EM_MASTER_MAX_EXECUTOR_RETRIES; i++) {
        CHECK(em__mapp_find_exec(app, i) != NULL);
        CHECK_OK(em__mstate_executor_state(&st, W1, app->id, i, EM_EXEC_FAILED, 0,
                                           "cannot fetch the binary", now += 10));
        actions a = take(&st);
        int last = i == EM_MASTER_MAX_EXECUTOR_RETRIES - 1;
        CHECK_EQ_INT(count(&a, EM_MSG_EXECUTOR_REMOVED, D1), 1);
        CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W1), last ? 0 : 1);
        CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_REMOVED, D1), last);
        CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_FINISHED, W1), last);
        if (last) {
            const em__maction *r = nth(&a, EM_MSG_APPLICATION_REMOVED, 0);
            CHECK(strstr(r->message, "failed 10 times") != NULL);
            CHECK(strstr(r->message, "cannot fetch the binary") != NULL);
        }
        drop(&a);
    }
    CHECK_EQ_INT(app->state, EM_APP_FAILED);
    CHECK_EQ_INT(app->executors_launched, EM_MASTER_MAX_EXECUTOR_RETRIES);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 0);
    /* A new worker does not revive it. */
    em__mstate_register_worker(&st, "w2", "h2", 0, 4, 4096, W2, now);
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 0);
    drop(&a);
    em__mstate_free(&st);
}

TEST(retry_count_reset_by_a_long_lived_executor_and_no_failure_while_one_runs)
{
    em__mstate st;
    em__mstate_init(&st, true);
    st.max_executor_retries = 3;
    em__mstate_register_worker(&st, "w1", "h1", 0, 1, 4096, W1, 0);
    em__mstate_register_worker(&st, "w2", "h2", 0, 1, 4096, W2, 0);
    em_mapp *app = add_app(&st, D1, 0, 1, 256, 0);
    discard(&st); /* executor 0 on w1, 1 on w2 */
    CHECK_EQ_STR(em__mapp_find_exec(app, 0)->worker_id, "w1");
    /* Executor 1 runs for a long time, executor 0 fails twice quickly (ids 0, 2). */
    CHECK_OK(em__mstate_executor_state(&st, W2, app->id, 1, EM_EXEC_RUNNING, 0, "", 0));
    CHECK_OK(em__mstate_executor_state(&st, W1, app->id, 0, EM_EXEC_EXITED, 1, "boom", 10));
    CHECK_OK(em__mstate_executor_state(&st, W1, app->id, 2, EM_EXEC_EXITED, 1, "boom", 20));
    CHECK_EQ_INT(app->retries, 2);
    discard(&st);
    /* The long-lived one fails after 20 s: that resets the count instead of adding. */
    CHECK_OK(em__mstate_executor_state(&st, W2, app->id, 1, EM_EXEC_FAILED, -9, "oom", 20000));
    CHECK_EQ_INT(app->retries, 0);
    actions a = take(&st);
    const em__maction *l = nth(&a, EM_MSG_LAUNCH_EXECUTOR, 0);
    CHECK(l && l->conn == W2 && l->exec_id == 4); /* 3 is w1's replacement of 2 */
    drop(&a);
    /* Now 4 runs on w2 while w1's executors keep failing: at the cap the application keeps
     * running on executor 4 but w1 gets no more attempts. */
    CHECK_OK(em__mstate_executor_state(&st, W2, app->id, 4, EM_EXEC_RUNNING, 0, "", 20001));
    int id = 3;
    for (int k = 0; k < 3; k++) {
        CHECK_OK(
            em__mstate_executor_state(&st, W1, app->id, id, EM_EXEC_EXITED, 2, "x", 20002 + k));
        a = take(&st);
        CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_REMOVED, NULL), 0);
        const em__maction *n = nth(&a, EM_MSG_LAUNCH_EXECUTOR, 0);
        CHECK_EQ_INT(n != NULL, k < 2);
        if (n) id = n->exec_id;
        drop(&a);
    }
    CHECK_EQ_INT(app->retries, 3);
    CHECK_EQ_INT(app->state, EM_APP_RUNNING);
    CHECK_EQ_INT(app->nexecs, 1);
    /* Its last executor failing quickly ends it. */
    CHECK_OK(em__mstate_executor_state(&st, W2, app->id, 4, EM_EXEC_FAILED, -11, "segv", 20100));
    CHECK_EQ_INT(app->state, EM_APP_FAILED);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_REMOVED, D1), 1);
    drop(&a);
    em__mstate_free(&st);
}

TEST(worker_death_removes_its_executors_and_its_return_kills_them)
{
    em__mstate st;
    em__mstate_init(&st, true);
    em__mstate_register_worker(&st, "w1", "h1", 0, 1, 4096, W1, 0);
    em__mstate_register_worker(&st, "w2", "h2", 0, 1, 4096, W2, 0);
    em_mapp *app = add_app(&st, D1, 0, 1, 256, 0);
    discard(&st);
    CHECK_EQ_INT(app->nexecs, 2);
    /* w1 heartbeats, w2 is silent: at 60 001 ms (timeout 60 s) w2 is DEAD. */
    CHECK_OK(em__mworkers_heartbeat(&st.workers, "w1", 50000));
    CHECK_EQ_INT(em__mstate_check(&st, 60001, 60000), 1);
    actions a = take(&st);
    const em__maction *rm = nth(&a, EM_MSG_EXECUTOR_REMOVED, 0);
    CHECK(rm && rm->conn == D1);
    CHECK_EQ_INT(rm->exec_id, 1);
    CHECK_EQ_INT(rm->state, EM_EXEC_LOST);
    CHECK(strstr(rm->message, "w2") != NULL);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 0); /* w1 is full */
    drop(&a);
    CHECK_EQ_INT(app->nexecs, 1);
    CHECK_EQ_INT(app->retries, 0); /* a lost worker is not the application's fault */
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w2")->cores_used, 0);
    /* w2 comes back: it is told to kill the executor lost with it, then gets a new one. */
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w2", "h2", 0, 1, 4096, W3, 61000), 1);
    a = take(&st);
    const em__maction *k = nth(&a, EM_MSG_KILL_EXECUTOR, 0);
    CHECK(k && k->conn == W3);
    CHECK_EQ_STR(k->app_id, app->id);
    CHECK_EQ_INT(k->exec_id, 1);
    const em__maction *l = nth(&a, EM_MSG_LAUNCH_EXECUTOR, 0);
    CHECK(l && l->conn == W3 && l->exec_id == 2);
    CHECK(k < l);
    drop(&a);
    /* A second return does not repeat the kill. */
    em__mworkers_disconnected(&st.workers, W3);
    em__mstate_register_worker(&st, "w2", "h2", 0, 1, 4096, W2, 62000);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_KILL_EXECUTOR, NULL), 0);
    drop(&a);
    em__mstate_free(&st);
}

TEST(application_end_frees_cores_for_the_next_application)
{
    em__mstate st;
    em__mstate_init(&st, true);
    em__mstate_register_worker(&st, "w1", "h1", 0, 2, 4096, W1, 0);
    em__mstate_register_worker(&st, "w2", "h2", 0, 2, 4096, W2, 0);
    em_mapp *first = add_app(&st, D1, 0, 1, 256, 0);
    em_mapp *second = add_app(&st, D2, 0, 1, 256, 1);
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_EXECUTOR_ADDED, D1), 4); /* FIFO: the first takes all */
    CHECK_EQ_INT(count(&a, EM_MSG_EXECUTOR_ADDED, D2), 0);
    drop(&a);
    CHECK_EQ_INT(second->state, EM_APP_WAITING);
    /* Only the registering connection may unregister. */
    CHECK_EQ_INT(em__mstate_unregister_app(&st, first->id, D2, 5), EM_EACCES);
    CHECK_OK(em__mstate_unregister_app(&st, first->id, D1, 5));
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_FINISHED, W1), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_FINISHED, W2), 1);
    CHECK_EQ_STR(nth(&a, EM_MSG_APPLICATION_FINISHED, 0)->app_id, first->id);
    CHECK_EQ_INT(count(&a, EM_MSG_EXECUTOR_REMOVED, NULL), 0); /* its driver is leaving */
    CHECK_EQ_INT(count(&a, EM_MSG_EXECUTOR_ADDED, D2), 4);
    CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_REMOVED, NULL), 0);
    drop(&a);
    CHECK_EQ_INT(first->state, EM_APP_FINISHED);
    CHECK_EQ_INT(first->nexecs, 0);
    CHECK_EQ_INT(second->state, EM_APP_RUNNING);
    CHECK_EQ_INT(em__mstate_unregister_app(&st, first->id, D1, 6), EM_ENOENT);
    /* The second driver's connection closes: FINISHED as well, workers told. */
    em__mstate_conn_closed(&st, D2, 7);
    CHECK_EQ_INT(second->state, EM_APP_FINISHED);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_FINISHED, NULL), 2);
    CHECK_EQ_INT(count(&a, EM_MSG_EXECUTOR_REMOVED, NULL), 0);
    drop(&a);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 0);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w2")->memory_used_mb, 0);
    em__mstate_free(&st);
}

TEST(worker_joining_later_gets_executors_while_cores_are_wanted)
{
    em__mstate st;
    em__mstate_init(&st, true);
    em_mapp *app = add_app(&st, D1, 3, 1, 256, 0);
    actions a = take(&st);
    CHECK_EQ_INT(a.n, 0);
    drop(&a);
    CHECK_EQ_INT(app->state, EM_APP_WAITING);
    em__mstate_register_worker(&st, "w1", "h1", 0, 2, 4096, W1, 10);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W1), 2);
    drop(&a);
    /* One more core wanted (cores max 3): the next worker gets exactly one executor. */
    em__mstate_register_worker(&st, "w2", "h2", 0, 4, 4096, W2, 20);
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, W2), 1);
    drop(&a);
    CHECK_EQ_INT(app->cores_granted, 3);
    /* A disconnected worker gets nothing until it registers again. */
    em__mstate_register_worker(&st, "w3", "h3", 0, 4, 4096, W3, 30);
    discard(&st);
    em__mstate_conn_closed(&st, W2, 40);
    CHECK_OK(em__mstate_executor_state(&st, NULL, app->id, 2, EM_EXEC_EXITED, 3, "bye", 50));
    a = take(&st);
    const em__maction *l = nth(&a, EM_MSG_LAUNCH_EXECUTOR, 0);
    CHECK(l && l->conn == W3); /* not W2 */
    drop(&a);
    em__mstate_free(&st);
}

TEST(application_ids_and_refusals)
{
    em__mstate st;
    em__mstate_init(&st, true);
    em_mapp *a0 = add_app(&st, D1, 0, 1, 256, 0);
    em_mapp *a1 = add_app(&st, D2, 0, 1, 256, 0);
    regex_t re;
    CHECK_OK(regcomp(&re, "^app-[0-9]{14}-[0-9]{4}$", REG_EXTENDED | REG_NOSUB));
    CHECK_EQ_INT(regexec(&re, a0->id, 0, NULL, 0), 0);
    regfree(&re);
    CHECK(strcmp(a0->id + strlen(a0->id) - 5, "-0000") == 0);
    CHECK(strcmp(a1->id + strlen(a1->id) - 5, "-0001") == 0);
    em_mapp *x = NULL;
    em__app_request bad = {.name = "bad", .driver_url = "h:1", .binary_hash = "abc"};
    CHECK_EQ_INT(em__mstate_register_app(&st, &bad, D1, 0, 0, &x), EM_EINVAL);
    CHECK(strstr(em_errmsg(), "abc") != NULL);
    bad.binary_hash = HASH;
    bad.driver_url = "nohostport";
    CHECK_EQ_INT(em__mstate_register_app(&st, &bad, D1, 0, 0, &x), EM_EINVAL);
    const char *env[] = {"NOEQUALS"};
    bad.driver_url = "h:1";
    bad.env = env;
    bad.num_env = 1;
    CHECK_EQ_INT(em__mstate_register_app(&st, &bad, D1, 0, 0, &x), EM_EINVAL);
    CHECK(strstr(em_errmsg(), "NOEQUALS") != NULL);
    bad.num_env = 0;
    CHECK_EQ_INT(em__mstate_register_app(&st, &bad, D1, 0, 0, &x), EM_EEXIST); /* D1 has a0 */
    CHECK(x == NULL);
    em__mstate_free(&st);
}
