/* Unit tests of the standalone master's worker table (src/deploy/master.c) driven by a fake
 * clock, of master URL parsing, and one in-process round trip: a master and a worker on
 * 127.0.0.1 (ephemeral port), the worker registered as seen through em_master_worker_info. */
#include "test.h"

#include "deploy/master.h"
#include "deploy/worker.h"

#include <ember/ember.h>
#include <string.h>
#include <unistd.h>

TEST(register_heartbeat_and_death_on_a_fake_clock)
{
    em__mworkers t = {0};
    int a = 1, b = 2; /* stand-ins for connections */
    CHECK_EQ_INT(em__mworkers_register(&t, "w1", "h1", 0, 4, 1024, &a, 1000), 0);
    CHECK_EQ_INT(em__mworkers_register(&t, "w2", "h2", 0, 2, 512, &b, 1000), 0);
    CHECK_EQ_INT(t.n, 2);
    CHECK_OK(em__mworkers_heartbeat(&t, "w1", 50000));
    CHECK_EQ_INT(em__mworkers_heartbeat(&t, "nobody", 50000), EM_ENOENT);
    /* timeout 60 s: at 61000 w2 (last seen 1000) is exactly at the limit, not past it */
    CHECK_EQ_INT(em__mworkers_check(&t, 61000, 60000), 0);
    CHECK_EQ_INT(em__mworkers_check(&t, 61001, 60000), 1);
    CHECK_EQ_INT(em__mworkers_find(&t, "w2")->state, EM_WORKER_DEAD);
    CHECK_EQ_INT(em__mworkers_find(&t, "w1")->state, EM_WORKER_ALIVE);
    /* a dead worker's heartbeat is refused; it comes back by registering again */
    CHECK_EQ_INT(em__mworkers_heartbeat(&t, "w2", 62000), EM_ENOENT);
    CHECK_EQ_INT(em__mworkers_register(&t, "w2", "h2b", 0, 2, 512, &b, 62000), 1);
    em_mworker *w2 = em__mworkers_find(&t, "w2");
    CHECK_EQ_INT(w2->state, EM_WORKER_ALIVE);
    CHECK_EQ_INT(w2->registrations, 2);
    CHECK_EQ_STR(w2->host, "h2b");
    CHECK_EQ_INT(em__mworkers_check(&t, 110001, 60000), 1); /* w1: last seen 50000 */
    CHECK_EQ_INT(em__mworkers_check(&t, 110001, 60000), 0); /* already dead: no second line */
    em__mworkers_free(&t);
}

TEST(duplicate_id_refused_while_connected_accepted_after_disconnect)
{
    em__mworkers t = {0};
    int a = 1, b = 2;
    CHECK_EQ_INT(em__mworkers_register(&t, "w", "h", 0, 1, 1, &a, 0), 0);
    CHECK_EQ_INT(em__mworkers_register(&t, "w", "h", 0, 1, 1, &b, 10), EM_EEXIST);
    CHECK(strstr(em_errmsg(), "w") != NULL);
    CHECK_EQ_INT(em__mworkers_disconnected(&t, &a), 1);
    CHECK_EQ_INT(em__mworkers_find(&t, "w")->state, EM_WORKER_ALIVE); /* silence kills, not this */
    CHECK_EQ_INT(em__mworkers_register(&t, "w", "h", 0, 1, 1, &b, 20), 1);
    CHECK_EQ_INT(em__mworkers_disconnected(&t, &a), 0);
    CHECK_EQ_INT(t.n, 1);
    em__mworkers_free(&t);
}

TEST(master_url_parsing)
{
    char *h = NULL;
    int p = 0;
    CHECK_OK(em_master_url_parse("ember://node-1.example:7077", &h, &p));
    CHECK_EQ_STR(h, "node-1.example");
    CHECK_EQ_INT(p, 7077);
    em__free(h);
    CHECK_OK(em_master_url_parse("ember://[::1]:17", &h, &p));
    CHECK_EQ_STR(h, "::1");
    CHECK_EQ_INT(p, 17);
    em__free(h);
    const char *bad[] = {"spark://h:1",     "ember://h",     "ember://:7077", "ember://h:0",
                         "ember://h:65536", "ember://h:12x", "ember://h:",    "ember://[::1]7077"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(em_master_url_parse(bad[i], &h, &p), EM_EINVAL);
        CHECK(h == NULL);
        CHECK_MSG(strstr(em_errmsg(), bad[i]) != NULL, "%s: %s", bad[i], em_errmsg());
    }
}

TEST(worker_registers_with_an_in_process_master)
{
    em_conf *conf = em_conf_new();
    CHECK(conf);
    CHECK_OK(em_conf_set(conf, "ember.worker.heartbeatInterval", "50ms"));
    em_master *m = NULL;
    CHECK_OK(em_master_start(conf, "127.0.0.1", 0, &m));
    CHECK(em_master_port(m) > 0);
    char url[64];
    snprintf(url, sizeof url, "ember://127.0.0.1:%d", em_master_port(m));
    em_worker *w = NULL;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/work", test_tmpdir());
    em_worker_opts wo = {.master_url = url, .cores = 3, .memory_mb = 768, .work_dir = dir};
    CHECK_OK(em_worker_start(conf, &wo, &w));
    for (int i = 0; i < 1000 && !em_worker_registered(w); i++) usleep(10000);
    CHECK(em_worker_registered(w));
    em_mworker info;
    CHECK_OK(em_master_worker_info(m, em_worker_id(w), &info));
    CHECK_EQ_INT(info.state, EM_WORKER_ALIVE);
    CHECK_EQ_INT(info.cores, 3);
    CHECK_EQ_INT(info.memory_mb, 768);
    CHECK_EQ_INT(em_master_worker_count(m, EM_WORKER_ALIVE), 1);
    CHECK_EQ_INT(em_master_worker_info(m, "no-such-worker", &info), EM_ENOENT);
    em_worker_stop(w);
    em_master_stop(m);
    em_conf_free(conf);
}
