/* Unit tests of the master's recovery decisions (src/deploy/master_state.c, master_drivers.c)
 * on a fake clock with fake connection tags, and of master URL lists (master.c):
 *   - RECOVERING schedules nothing; workers that come back report their executors and
 *     drivers, which are taken back (cores, memory, executor id counter) without a launch;
 *     the application's driver re-registers with its id; then ALIVE, and no replacement;
 *   - at the recovery timeout: a worker that did not come back is DEAD, an application whose
 *     driver did not come back FINISHED (workers told), a supervised driver nobody reported
 *     relaunched, an unsupervised one ERROR, one to be killed KILLED;
 *   - orphans: an executor of an unknown application, a driver the master ended: KILL_*;
 *     once ALIVE with a journal, an executor the master does not have there is killed; without
 *     a journal nothing changes (the behaviour before recovery existed);
 *   - a driver that finished while the master was away (the worker's queued report) ends
 *     FINISHED and is not relaunched;
 *   - re-registration refusals; an empty journal starts ALIVE;
 *   - in process: a master stopped and started on its journal takes its worker and its
 *     application back (JSON status), and the master's own stop is not journaled; the
 *     driver's client keeps trying while no master is up and gives up only past
 *     ember.network.timeout, or at once when a master without the journal refuses it.
 * Expected placements are worked out by hand in the comments.
 */
#include "test.h"

#include "deploy/app_client.h"
#include "deploy/master.h"
#include "deploy/master_state.h"
#include "deploy/worker.h"
#include "net/proto.h"

#include <ember/ember.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int conn_w1, conn_w2, conn_d1, conn_d2;
#define W1 ((void *)&conn_w1)
#define W2 ((void *)&conn_w2)
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

static void discard(em__mstate *st)
{
    actions a = take(st);
    drop(&a);
    size_t n = 0;
    em__mjournal_op *ops = em__mstate_take_journal(st, &n);
    em__mjournal_ops_free(ops, n);
}

static int count(const actions *a, int type, void *conn)
{
    int k = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].type == type && (!conn || a->v[i].conn == conn)) k++;
    return k;
}

/* ---- a journal's worth of records, built by hand ----------------------------------------------
 */
static char *sdup(const char *s)
{
    char *d = em__strdup(s);
    CHECK(d != NULL);
    return d;
}

static void add_worker(em__mrecovered *r, const char *id, int cores, uint64_t mem)
{
    r->workers = em__realloc(r->workers, (r->nworkers + 1) * sizeof *r->workers);
    CHECK(r->workers != NULL);
    em_mworker *w = &r->workers[r->nworkers++];
    memset(w, 0, sizeof *w);
    w->id = sdup(id);
    w->host = sdup("127.0.0.1");
    w->cores = cores;
    w->memory_mb = mem;
}

static void add_app(em__mrecovered *r, const char *id, int cores_max, int exec_cores,
                    int next_exec_id)
{
    r->apps = em__realloc(r->apps, (r->napps + 1) * sizeof *r->apps);
    em_mapp *a = em__calloc(1, sizeof *a);
    CHECK(r->apps && a);
    a->id = sdup(id);
    a->name = sdup("app");
    a->driver_url = sdup("127.0.0.1:1");
    a->binary_hash = sdup(HASH);
    a->cores_max = cores_max;
    a->executor_cores = exec_cores;
    a->executor_memory_mb = 100;
    a->next_exec_id = next_exec_id;
    a->executors_launched = next_exec_id;
    r->apps[r->napps++] = a;
}

static void add_driver(em__mrecovered *r, const char *id, const char *worker, bool supervise,
                       bool kill_wanted)
{
    r->drivers = em__realloc(r->drivers, (r->ndrivers + 1) * sizeof *r->drivers);
    em_mdriver *d = em__calloc(1, sizeof *d);
    CHECK(r->drivers && d);
    d->id = sdup(id);
    d->name = sdup("drv");
    d->binary_hash = sdup(HASH);
    d->args = em__calloc(1, sizeof *d->args);
    d->env = em__calloc(1, sizeof *d->env);
    d->message = sdup("");
    d->cores = 1;
    d->memory_mb = 50;
    d->supervise = supervise;
    d->kill_wanted = kill_wanted;
    d->state = worker ? EM_DRIVER_RUNNING : EM_DRIVER_SUBMITTED;
    d->worker_id = worker ? sdup(worker) : NULL;
    d->placed = worker != NULL;
    d->launches = worker ? 1 : 0;
    r->drivers[r->ndrivers++] = d;
}

#define APP "app-20240101120000-0004"

/* Journal: workers w1 (4 cores) and w2 (4 cores), application APP (cores max 4, 2 per
 * executor, executors 0..2 used so far), supervised driver d-1 on w2, unsupervised d-2 on w1. */
static void recovered_state(em__mstate *st, bool journaling)
{
    em__mstate_init(st, true);
    st->journaling = journaling;
    em__mrecovered r = {0};
    add_worker(&r, "w1", 4, 1000);
    add_worker(&r, "w2", 4, 1000);
    add_app(&r, APP, 4, 2, 3);
    add_driver(&r, "driver-20240101120000-0001", "w2", true, false);
    add_driver(&r, "driver-20240101120000-0002", "w1", false, false);
    r.next_app_number = 5;
    r.next_driver_number = 3;
    CHECK_EQ_INT(em__mstate_recover(st, &r, 1000, 10000), 5);
    CHECK_EQ_INT(r.nworkers + r.napps + r.ndrivers, 0); /* taken */
    CHECK_EQ_INT(st->state, EM_MASTER_RECOVERING);
    CHECK_EQ_INT(st->workers.v[0].state, EM_WORKER_UNKNOWN);
    CHECK_EQ_INT(em__mstate_find_app(st, APP)->state, EM_APP_UNKNOWN);
}

TEST(workers_and_application_come_back_without_new_executors)
{
    em__mstate st;
    recovered_state(&st, true);
    /* w1 comes back: nothing is scheduled while RECOVERING */
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "127.0.0.1", 0, 4, 1000, W1, 1100), 1);
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 0);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);
    CHECK(st.workers.v[0].reporting);
    /* it runs executor 1 (2 cores) and driver d-2 */
    CHECK_OK(em__mstate_worker_executor(&st, W1, "w1", APP, 1, 2, 100, EM_EXEC_RUNNING, 1101));
    CHECK_OK(em__mstate_worker_driver(&st, W1, "w1", "driver-20240101120000-0002", 1, 50,
                                      EM_DRIVER_RUNNING, 1101));
    CHECK_OK(em__mstate_worker_state_end(&st, W1, "w1", 1102));
    CHECK_EQ_INT(st.state, EM_MASTER_RECOVERING); /* w2 and the driver are awaited */
    /* a report from another connection than the worker's is refused */
    CHECK_EQ_INT(em__mstate_worker_executor(&st, W2, "w1", APP, 7, 2, 100, EM_EXEC_RUNNING, 1103),
                 EM_ENOENT);
    /* w2 comes back with executor 2 and driver d-1 */
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w2", "127.0.0.1", 0, 4, 1000, W2, 1200), 1);
    CHECK_OK(em__mstate_worker_executor(&st, W2, "w2", APP, 2, 2, 100, EM_EXEC_RUNNING, 1201));
    CHECK_OK(em__mstate_worker_driver(&st, W2, "w2", "driver-20240101120000-0001", 1, 50,
                                      EM_DRIVER_RUNNING, 1201));
    CHECK_OK(em__mstate_worker_state_end(&st, W2, "w2", 1202));
    CHECK_EQ_INT(st.state, EM_MASTER_RECOVERING);
    /* the driver re-registers: everything is back, ALIVE */
    CHECK_OK(em__mstate_reregister_app(&st, APP, D1, 1300));
    CHECK_EQ_INT(st.state, EM_MASTER_ALIVE);
    em_mapp *app = em__mstate_find_app(&st, APP);
    CHECK_EQ_INT(app->state, EM_APP_RUNNING);
    CHECK_EQ_INT(app->nexecs, 2);
    CHECK_EQ_INT(app->cores_granted, 4);
    CHECK(app->conn == D1);
    /* cores: w1 = executor 1 (2) + d-2 (1) = 3, w2 = executor 2 (2) + d-1 (1) = 3 */
    em_mworker *w1 = em__mworkers_find(&st.workers, "w1"),
               *w2 = em__mworkers_find(&st.workers, "w2");
    CHECK_EQ_INT(w1->cores_used, 3);
    CHECK_EQ_INT(w2->cores_used, 3);
    CHECK_EQ_INT(w1->memory_used_mb, 150);
    em_mdriver *d1 = em__mstate_find_driver(&st, "driver-20240101120000-0001");
    CHECK_EQ_INT(d1->state, EM_DRIVER_RUNNING);
    CHECK(d1->placed && !d1->recovered);
    CHECK_EQ_STR(d1->worker_id, "w2");
    /* the application has its 4 cores: no launch, no replacement, nothing killed */
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 0);
    CHECK_EQ_INT(count(&a, EM_MSG_KILL_EXECUTOR, NULL), 0);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, NULL), 0);
    drop(&a);
    /* executor 1 ends: the replacement is executor 3 (executor ids 0..2 were used) */
    CHECK_OK(em__mstate_executor_state(&st, W1, APP, 1, EM_EXEC_EXITED, 1, "gone", 2000));
    a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_EXECUTOR_REMOVED, D1), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_EXECUTOR, NULL), 1);
    drop(&a);
    CHECK(em__mapp_find_exec(app, 3) != NULL);
    em__mstate_free(&st);
}

TEST(what_does_not_come_back_is_removed_at_the_timeout)
{
    em__mstate st;
    recovered_state(&st, true);
    /* only w1 comes back, with executor 1 and nothing else; the driver never re-registers */
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "127.0.0.1", 0, 4, 1000, W1, 1100), 1);
    CHECK_OK(em__mstate_worker_executor(&st, W1, "w1", APP, 1, 2, 100, EM_EXEC_RUNNING, 1101));
    CHECK_OK(em__mstate_worker_state_end(&st, W1, "w1", 1102));
    discard(&st);
    /* before the deadline (1000 + 10000) nothing changes */
    em__mstate_check(&st, 10999, 60000);
    CHECK_EQ_INT(st.state, EM_MASTER_RECOVERING);
    em__mstate_check(&st, 11000, 60000);
    CHECK_EQ_INT(st.state, EM_MASTER_ALIVE);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w2")->state, EM_WORKER_DEAD);
    em_mapp *app = em__mstate_find_app(&st, APP);
    CHECK_EQ_INT(app->state, EM_APP_FINISHED);
    CHECK(strstr(app->end_reason, "did not come back") != NULL);
    CHECK_EQ_INT(app->nexecs, 0);
    actions a = take(&st);
    /* w1 (the connected worker) is told: its executor 1 dies */
    CHECK_EQ_INT(count(&a, EM_MSG_APPLICATION_FINISHED, W1), 1);
    /* d-1 (supervised, on lost w2): relaunched at once on w1, the one worker with room;
     * d-2 (unsupervised, not reported by w1): ERROR */
    CHECK_EQ_INT(count(&a, EM_MSG_LAUNCH_DRIVER, W1), 1);
    drop(&a);
    em_mdriver *d1 = em__mstate_find_driver(&st, "driver-20240101120000-0001");
    em_mdriver *d2 = em__mstate_find_driver(&st, "driver-20240101120000-0002");
    CHECK(d1->placed);
    CHECK_EQ_STR(d1->worker_id, "w1");
    CHECK_EQ_INT(d1->launches, 2);
    CHECK_EQ_INT(d2->state, EM_DRIVER_ERROR);
    CHECK(strstr(d2->message, "after the master's recovery") != NULL);
    /* the late driver is refused: its application ended */
    CHECK_EQ_INT(em__mstate_reregister_app(&st, APP, D1, 12000), EM_ESTATE);
    CHECK(strstr(em_errmsg(), "FINISHED") != NULL);
    em__mstate_free(&st);
}

TEST(orphans_are_killed_and_drivers_that_ended_meanwhile_end)
{
    em__mstate st;
    recovered_state(&st, true);
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "127.0.0.1", 0, 4, 1000, W1, 1100), 1);
    /* an executor of an application the journal does not have, a driver it does not have */
    CHECK_OK(em__mstate_worker_executor(&st, W1, "w1", "app-x", 0, 1, 10, EM_EXEC_RUNNING, 1101));
    CHECK_OK(em__mstate_worker_driver(&st, W1, "w1", "driver-x", 1, 10, EM_DRIVER_RUNNING, 1101));
    actions a = take(&st);
    CHECK_EQ_INT(count(&a, EM_MSG_KILL_EXECUTOR, W1), 1);
    CHECK_EQ_INT(count(&a, EM_MSG_KILL_DRIVER, W1), 1);
    CHECK_EQ_STR(a.v[0].app_id, "app-x");
    drop(&a);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 0);
    CHECK_OK(em__mstate_worker_state_end(&st, W1, "w1", 1102));
    /* d-2 finished while the master was away: w1 did not report it running, then sends its
     * queued FINISHED: it ends FINISHED (not ERROR, not relaunched) */
    CHECK_OK(em__mstate_driver_state(&st, W1, "driver-20240101120000-0002", EM_DRIVER_FINISHED, 0,
                                     "done", 1103));
    em_mdriver *d2 = em__mstate_find_driver(&st, "driver-20240101120000-0002");
    CHECK_EQ_INT(d2->state, EM_DRIVER_FINISHED);
    CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 0); /* given back */
    em__mstate_free(&st);
}

TEST(after_the_recovery_unknown_executors_are_killed_only_with_a_journal)
{
    for (int journaling = 0; journaling < 2; journaling++) {
        em__mstate st;
        em__mstate_init(&st, true);
        st.journaling = journaling;
        CHECK_EQ_INT(st.state, EM_MASTER_ALIVE);
        CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "h", 0, 4, 1000, W1, 0), 0);
        em__app_request req = {.name = "a",
                               .cores_max = 2,
                               .executor_cores = 2,
                               .executor_memory_mb = 100,
                               .driver_url = "d:1",
                               .binary_hash = HASH};
        em_mapp *app = NULL;
        CHECK_OK(em__mstate_register_app(&st, &req, D1, 0, 1700000000000LL, &app));
        discard(&st);
        /* the worker re-registers (a dropped connection) and reports executor 0 (known) and
         * executor 9 (unknown) */
        CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "h", 0, 4, 1000, W1, 10), 1);
        CHECK_OK(
            em__mstate_worker_executor(&st, W1, "w1", app->id, 0, 2, 100, EM_EXEC_RUNNING, 11));
        CHECK_OK(
            em__mstate_worker_executor(&st, W1, "w1", app->id, 9, 2, 100, EM_EXEC_RUNNING, 11));
        CHECK_OK(em__mstate_worker_state_end(&st, W1, "w1", 12));
        actions a = take(&st);
        CHECK_EQ_INT(count(&a, EM_MSG_KILL_EXECUTOR, W1), journaling ? 1 : 0);
        drop(&a);
        CHECK_EQ_INT(app->nexecs, 1); /* never taken in when ALIVE */
        CHECK_EQ_INT(em__mworkers_find(&st.workers, "w1")->cores_used, 2);
        em__mstate_free(&st);
    }
}

TEST(reregistration_refusals_and_an_empty_journal)
{
    em__mstate st;
    recovered_state(&st, true);
    CHECK_EQ_INT(em__mstate_reregister_app(&st, "app-nope", D1, 1100), EM_ENOENT);
    CHECK(strstr(em_errmsg(), "app-nope") != NULL);
    CHECK_OK(em__mstate_reregister_app(&st, APP, D1, 1100));
    CHECK_EQ_INT(em__mstate_reregister_app(&st, APP, D2, 1101), EM_EEXIST);
    /* RECOVERING: a brand-new application registers but gets nothing until ALIVE */
    em__app_request req = {.name = "new",
                           .cores_max = 1,
                           .executor_cores = 1,
                           .executor_memory_mb = 10,
                           .driver_url = "d:2",
                           .binary_hash = HASH};
    em_mapp *fresh = NULL;
    CHECK_OK(em__mstate_register_app(&st, &req, D2, 1102, 1700000000000LL, &fresh));
    CHECK_MSG(strstr(fresh->id, "-0005") != NULL, "id %s continues the journal's counter",
              fresh->id);
    CHECK_EQ_INT(fresh->nexecs, 0);
    em__mstate_free(&st);

    em__mstate_init(&st, true);
    em__mrecovered none = {0};
    CHECK_EQ_INT(em__mstate_recover(&st, &none, 0, 1000), 0);
    CHECK_EQ_INT(st.state, EM_MASTER_ALIVE);
    em__mstate_free(&st);
}

/* ---- master URLs ------------------------------------------------------------------------------
 */
TEST(master_url_lists)
{
    em_master_addr *v = NULL;
    int n = 0;
    CHECK_OK(em_master_urls_parse("ember://a:7077,b.example:7078,[::1]:17,ember://c:1", &v, &n));
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_STR(v[0].host, "a");
    CHECK_EQ_INT(v[0].port, 7077);
    CHECK_EQ_STR(v[1].host, "b.example");
    CHECK_EQ_INT(v[1].port, 7078);
    CHECK_EQ_STR(v[2].host, "::1");
    CHECK_EQ_INT(v[2].port, 17);
    CHECK_EQ_STR(v[3].host, "c");
    CHECK_EQ_INT(v[3].port, 1);
    em_master_addrs_free(v, n);
    char *h = NULL;
    int p = 0;
    CHECK_OK(em_master_url_parse("ember://x:1,y:2", &h, &p)); /* the first */
    CHECK_EQ_STR(h, "x");
    CHECK_EQ_INT(p, 1);
    em__free(h);
    const char *bad[] = {"ember://a:1,",       "ember://a:1,,b:2",   "ember://a:1,b",
                         "ember://a:1,b:0",    "ember://a:1,:2",     "spark://a:1,b:2",
                         "ember://a:1,[::1]2", "ember://a:1,b:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(em_master_urls_parse(bad[i], &v, &n) == EM_EINVAL, "%s accepted", bad[i]);
        CHECK_MSG(strstr(em_errmsg(), bad[i]) != NULL, "message '%s' does not name %s", em_errmsg(),
                  bad[i]);
        CHECK(v == NULL && n == 0);
    }
}

/* ---- in-process daemons: a master stopped and started again on its journal ------------------ */
static atomic_int disconnects;
static void on_disconnected(void *user, const char *reason)
{
    (void)user, (void)reason;
    atomic_fetch_add(&disconnects, 1);
}

static bool wait_alive(em_master *m, int seconds)
{
    for (int i = 0; i < seconds * 100 && em_master_state(m) != EM_MASTER_ALIVE; i++) usleep(10000);
    return em_master_state(m) == EM_MASTER_ALIVE;
}

/* A master on the journal's directory, stopped (SIGTERM-like) and started again on the same
 * port: its worker and the application come back (the application keeps its id), the JSON
 * status says so, and the application's end then removes its record. */
TEST(a_restarted_master_takes_its_worker_and_application_back)
{
    char rec[1100], work[1100];
    snprintf(rec, sizeof rec, "%s/rec", test_tmpdir());
    snprintf(work, sizeof work, "%s/work", test_tmpdir());
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.deploy.recoveryMode", "FILESYSTEM"));
    CHECK_OK(em_conf_set(conf, "ember.deploy.recoveryDirectory", rec));
    CHECK_OK(em_conf_set(conf, "ember.worker.timeout", "10s"));
    CHECK_OK(em_conf_set(conf, "ember.worker.heartbeatInterval", "100ms"));
    CHECK_OK(em_conf_set(conf, "ember.network.timeout", "20s"));
    em_master *m = NULL;
    CHECK_OK(em_master_start(conf, "127.0.0.1", 0, &m));
    CHECK_EQ_INT(em_master_state(m), EM_MASTER_ALIVE);
    int port = em_master_port(m);
    char url[64];
    snprintf(url, sizeof url, "ember://127.0.0.1:%d", port);
    em_worker *w = NULL;
    em_worker_opts wo = {
        .master_url = url, .cores = 2, .memory_mb = 512, .host = "127.0.0.1", .work_dir = work};
    CHECK_OK(em_worker_start(conf, &wo, &w));
    for (int i = 0; i < 1000 && !em_worker_registered(w); i++) usleep(10000);
    CHECK(em_worker_registered(w));
    /* executors of 100000 MiB: never placed, the application stays WAITING */
    em_app_desc desc = {.name = "held",
                        .cores_max = 1,
                        .executor_cores = 1,
                        .executor_memory_mb = 100000,
                        .driver_url = "127.0.0.1:1",
                        .binary_hash = HASH};
    em_app_client_callbacks cb = {.disconnected = on_disconnected};
    em_app_client *c = NULL;
    CHECK_OK(em_app_client_start(conf, url, &desc, &cb, &c));
    char *app_id = NULL;
    CHECK_OK(em_app_client_wait_registered(c, &app_id));
    char app_file[1400];
    snprintf(app_file, sizeof app_file, "%s/app_%s", rec, app_id);
    struct stat sb;
    CHECK(stat(app_file, &sb) == 0);

    em_master_stop(m); /* its connections close: not recorded */
    CHECK(stat(app_file, &sb) == 0);
    CHECK_OK(em_master_start(conf, "127.0.0.1", port, &m));
    CHECK(wait_alive(m, 10));
    char *json = NULL;
    CHECK_OK(em_master_status_json(m, &json));
    char want[256];
    snprintf(want, sizeof want, "\"id\": \"%s\", \"name\": \"held\", \"state\": \"WAITING\"",
             app_id);
    CHECK_MSG(strstr(json, want) != NULL, "%s not in %s", want, json);
    snprintf(want, sizeof want, "\"id\": \"%s\", \"host\": \"127.0.0.1\", \"state\": \"ALIVE\"",
             em_worker_id(w));
    CHECK_MSG(strstr(json, want) != NULL, "%s not in %s", want, json);
    CHECK(strstr(json, "\"recoverymode\": \"FILESYSTEM\"") != NULL);
    em__free(json);
    CHECK_EQ_INT(em_master_app_count(m, EM_APP_WAITING), 1);
    CHECK_EQ_INT(atomic_load(&disconnects), 0);
    char *again = NULL;
    CHECK_OK(em_app_client_wait_registered(c, &again));
    CHECK_EQ_STR(again, app_id);
    em__free(again);

    /* the application ends: FINISHED, its record removed */
    em_app_client_stop(c);
    for (int i = 0; i < 500 && em_master_app_count(m, EM_APP_FINISHED) != 1; i++) usleep(10000);
    CHECK_EQ_INT(em_master_app_count(m, EM_APP_FINISHED), 1);
    CHECK(stat(app_file, &sb) != 0);
    em__free(app_id);
    em_worker_stop(w);
    em_master_stop(m);
    em_conf_free(conf);
}

static char last_reason[1200];
static pthread_mutex_t reason_mu = PTHREAD_MUTEX_INITIALIZER;
static void keep_reason(void *user, const char *reason)
{
    (void)user;
    pthread_mutex_lock(&reason_mu);
    snprintf(last_reason, sizeof last_reason, "%s", reason);
    pthread_mutex_unlock(&reason_mu);
    atomic_fetch_add(&disconnects, 1);
}

/* The driver's client keeps reconnecting while no master is up, and gives up (disconnected,
 * once) only past ember.network.timeout, saying so; a master without recovery that comes up on
 * the URL refuses the application, and the client gives up at once. */
TEST(the_application_client_gives_up_only_past_its_bound)
{
    for (int restart = 0; restart < 2; restart++) {
        em_conf *conf = em_conf_new();
        CHECK(conf);
        CHECK_OK(em_conf_set(conf, "ember.network.timeout", restart ? "30s" : "1500ms"));
        em_master *m = NULL;
        CHECK_OK(em_master_start(conf, "127.0.0.1", 0, &m));
        int port = em_master_port(m);
        char url[64];
        snprintf(url, sizeof url, "ember://127.0.0.1:%d", port);
        em_app_desc desc = {.name = "bound",
                            .executor_memory_mb = 100000,
                            .driver_url = "127.0.0.1:1",
                            .binary_hash = HASH};
        em_app_client_callbacks cb = {.disconnected = keep_reason};
        em_app_client *c = NULL;
        atomic_store(&disconnects, 0);
        CHECK_OK(em_app_client_start(conf, url, &desc, &cb, &c));
        char *app_id = NULL;
        CHECK_OK(em_app_client_wait_registered(c, &app_id));
        int64_t t0 = em__now_ms();
        em_master_stop(m);
        m = NULL;
        if (!restart) {
            for (int i = 0; i < 1000 && atomic_load(&disconnects) == 0; i++) usleep(10000);
            CHECK_EQ_INT(atomic_load(&disconnects), 1);
            CHECK(em__now_ms() - t0 >= 1500); /* not before the bound (t0: before the loss) */
            pthread_mutex_lock(&reason_mu);
            CHECK_MSG(strstr(last_reason, "within 1500 ms (ember.network.timeout)") != NULL, "%s",
                      last_reason);
            pthread_mutex_unlock(&reason_mu);
        } else {
            CHECK_OK(em_master_start(conf, "127.0.0.1", port, &m)); /* no recovery mode */
            for (int i = 0; i < 1000 && atomic_load(&disconnects) == 0; i++) usleep(10000);
            CHECK_EQ_INT(atomic_load(&disconnects), 1);
            pthread_mutex_lock(&reason_mu);
            CHECK_MSG(strstr(last_reason, "does not take application") != NULL &&
                          strstr(last_reason, "unknown to this master") != NULL,
                      "%s", last_reason);
            pthread_mutex_unlock(&reason_mu);
        }
        char *still = NULL;
        CHECK_OK(em_app_client_wait_registered(c, &still)); /* it had registered */
        CHECK_EQ_STR(still, app_id);
        em__free(still);
        em__free(app_id);
        em_app_client_stop(c);
        em_master_stop(m);
        em_conf_free(conf);
    }
}
