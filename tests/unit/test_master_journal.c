/* Unit tests of the master's recovery journal (src/deploy/master_journal.c): every record kind
 * written and read back field by field; the byte layout of one record pinned against bytes
 * worked out by hand (header, em_wire payload, XXH3 checksum computed here); a corrupt and a
 * truncated file skipped and named while the others load; leftovers and strange names;
 * ids that cannot leave the directory; the ops of a state applied (written, rewritten,
 * removed); and ids never reused across a restart (application, driver and executor ids).
 */
#include "test.h"

#include "deploy/master_journal.h"
#include "deploy/master_state.h"
#include "net/proto.h"

#include <dirent.h>
#include <ember/ember.h>
#include <fcntl.h>
#include <xxhash.h>

#define HASH  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HASH2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define WALL  1700000000000LL

static int conn_w1, conn_d1;
#define W1 ((void *)&conn_w1)
#define D1 ((void *)&conn_d1)

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][4096];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void write_file(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(buf, 1, n, f) == n);
    fclose(f);
}

static em__mjournal *open_journal(const char *name)
{
    em__mjournal *j = NULL;
    CHECK_OK(em__mjournal_open(path_in(test_tmpdir(), name), &j));
    return j;
}

static void free_skipped(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) em__free(v[i]);
    em__free(v);
}

TEST(worker_record_bytes_are_pinned)
{
    em__mjournal *j = open_journal("j");
    em_mworker w = {.id = "w1", .host = "h", .port = 7, .cores = 2, .memory_mb = 300};
    CHECK_OK(em__mjournal_put_worker(j, &w));
    unsigned char got[256];
    size_t n = read_file(path_in(em__mjournal_dir(j), "worker_w1"), got, sizeof got);
    /* payload: str "w1" (uvar 3, 'w', '1'), str "h" (uvar 2, 'h'), uvar 7, uvar 2, uvar 300
     * (300 = 0b10_0101100: 0xAC 0x02) */
    unsigned char want[12 + 9 + 8] = {'E', 'M', 'J', 'R', 1, 1,   0, 0, 9,    0,   0,
                                      0,   3,   'w', '1', 2, 'h', 7, 2, 0xAC, 0x02};
    uint64_t sum = XXH3_64bits(want, 21);
    for (int i = 0; i < 8; i++) want[21 + i] = (unsigned char)(sum >> (8 * i));
    CHECK_EQ_INT(n, sizeof want);
    CHECK(memcmp(got, want, sizeof want) == 0);
    /* no temporary left behind */
    CHECK_EQ_INT(file_size(path_in(em__mjournal_dir(j), ".tmp.worker_w1")), -1);
    em__mjournal_close(j);
}

TEST(every_record_kind_round_trips)
{
    em__mjournal *j = open_journal("j");
    em_mworker w = {.id = "worker-20240101-node-1-42",
                    .host = "10.0.0.5",
                    .port = 0,
                    .cores = 16,
                    .memory_mb = 65536};
    char *env[] = {"EMBER_LOG_LEVEL=info", "A=b=c"};
    em_mapp a = {.id = "app-20240101120000-0007",
                 .name = "word count",
                 .driver_url = "10.0.0.1:40000",
                 .binary_hash = HASH,
                 .env = env,
                 .num_env = 2,
                 .cores_max = 12,
                 .executor_cores = 3,
                 .executor_memory_mb = 2048,
                 .next_exec_id = 5,
                 .executors_launched = 5};
    char *args[] = {"in", "out dir", ""};
    char *denv[] = {"EMBER_MASTER=ember://a:1,b:2"};
    em_mdriver d = {.id = "driver-20240101120000-0003",
                    .name = "wc",
                    .binary_hash = HASH2,
                    .args = args,
                    .num_args = 3,
                    .env = denv,
                    .num_env = 1,
                    .cores = 2,
                    .memory_mb = 512,
                    .supervise = true,
                    .state = EM_DRIVER_RUNNING,
                    .worker_id = "worker-x",
                    .placed = true,
                    .kill_wanted = true,
                    .launches = 3,
                    .failures = 2,
                    .exit_code = -9,
                    .message = "relaunched: \"quoted\""};
    em_mdriver waiting = {.id = "driver-20240101120000-0004",
                          .name = "w",
                          .binary_hash = HASH,
                          .cores = 1,
                          .memory_mb = 1,
                          .state = EM_DRIVER_SUBMITTED,
                          .message = ""};
    CHECK_OK(em__mjournal_put_worker(j, &w));
    CHECK_OK(em__mjournal_put_app(j, &a));
    CHECK_OK(em__mjournal_put_driver(j, &d));
    CHECK_OK(em__mjournal_put_driver(j, &waiting));
    CHECK_OK(em__mjournal_put_ids(j, 8, 5));

    em__mrecovered r;
    char **skipped = NULL;
    size_t nskipped = 9;
    CHECK_OK(em__mjournal_load(j, &r, &skipped, &nskipped));
    CHECK_EQ_INT(nskipped, 0);
    CHECK_EQ_INT(r.nworkers, 1);
    CHECK_EQ_STR(r.workers[0].id, w.id);
    CHECK_EQ_STR(r.workers[0].host, "10.0.0.5");
    CHECK_EQ_INT(r.workers[0].port, 0);
    CHECK_EQ_INT(r.workers[0].cores, 16);
    CHECK_EQ_INT(r.workers[0].memory_mb, 65536);

    CHECK_EQ_INT(r.napps, 1);
    em_mapp *ra = r.apps[0];
    CHECK_EQ_STR(ra->id, a.id);
    CHECK_EQ_STR(ra->name, "word count");
    CHECK_EQ_STR(ra->driver_url, "10.0.0.1:40000");
    CHECK_EQ_STR(ra->binary_hash, HASH);
    CHECK_EQ_INT(ra->num_env, 2);
    CHECK_EQ_STR(ra->env[0], "EMBER_LOG_LEVEL=info");
    CHECK_EQ_STR(ra->env[1], "A=b=c");
    CHECK_EQ_INT(ra->cores_max, 12);
    CHECK_EQ_INT(ra->executor_cores, 3);
    CHECK_EQ_INT(ra->executor_memory_mb, 2048);
    CHECK_EQ_INT(ra->next_exec_id, 5);
    CHECK_EQ_INT(ra->executors_launched, 5);

    CHECK_EQ_INT(r.ndrivers, 2);
    em_mdriver *rd = strcmp(r.drivers[0]->id, d.id) ? r.drivers[1] : r.drivers[0];
    em_mdriver *rw = rd == r.drivers[0] ? r.drivers[1] : r.drivers[0];
    CHECK_EQ_STR(rd->id, d.id);
    CHECK_EQ_STR(rd->name, "wc");
    CHECK_EQ_STR(rd->binary_hash, HASH2);
    CHECK_EQ_INT(rd->num_args, 3);
    CHECK_EQ_STR(rd->args[0], "in");
    CHECK_EQ_STR(rd->args[1], "out dir");
    CHECK_EQ_STR(rd->args[2], "");
    CHECK_EQ_INT(rd->num_env, 1);
    CHECK_EQ_STR(rd->env[0], "EMBER_MASTER=ember://a:1,b:2");
    CHECK_EQ_INT(rd->cores, 2);
    CHECK_EQ_INT(rd->memory_mb, 512);
    CHECK(rd->supervise && rd->placed && rd->kill_wanted);
    CHECK_EQ_INT(rd->state, EM_DRIVER_RUNNING);
    CHECK_EQ_STR(rd->worker_id, "worker-x");
    CHECK_EQ_INT(rd->launches, 3);
    CHECK_EQ_INT(rd->failures, 2);
    CHECK_EQ_INT(rd->exit_code, -9);
    CHECK_EQ_STR(rd->message, "relaunched: \"quoted\"");
    CHECK_EQ_STR(rw->id, waiting.id);
    CHECK(rw->worker_id == NULL && !rw->placed && !rw->supervise);
    CHECK_EQ_INT(rw->num_args, 0);
    CHECK_EQ_INT(r.next_app_number, 8);
    CHECK_EQ_INT(r.next_driver_number, 5);
    em__mrecovered_free(&r);

    /* removal: the file goes, a second removal is fine */
    CHECK_OK(em__mjournal_remove(j, EM_MJ_APP, a.id));
    CHECK_OK(em__mjournal_remove(j, EM_MJ_APP, a.id));
    CHECK_EQ_INT(file_size(path_in(em__mjournal_dir(j), "app_app-20240101120000-0007")), -1);
    CHECK_OK(em__mjournal_load(j, &r, NULL, NULL));
    CHECK_EQ_INT(r.napps, 0);
    CHECK_EQ_INT(r.nworkers, 1);
    em__mrecovered_free(&r);
    em__mjournal_close(j);
}

/* A corrupt record (one payload byte changed) and a truncated one (its last 5 bytes cut) are
 * skipped and named; so is a record under another record's name; the rest loads. */
TEST(corrupt_and_truncated_files_are_skipped_and_named)
{
    em__mjournal *j = open_journal("j");
    const char *dir = em__mjournal_dir(j);
    em_mworker w1 = {.id = "w1", .host = "h1", .port = 1, .cores = 1, .memory_mb = 1};
    em_mworker w2 = {.id = "w2", .host = "h2", .port = 2, .cores = 2, .memory_mb = 2};
    em_mworker w3 = {.id = "w3", .host = "h3", .port = 3, .cores = 3, .memory_mb = 3};
    em_mapp a = {.id = "app-1", .name = "n", .driver_url = "h:1", .binary_hash = HASH};
    CHECK_OK(em__mjournal_put_worker(j, &w1));
    CHECK_OK(em__mjournal_put_worker(j, &w2));
    CHECK_OK(em__mjournal_put_worker(j, &w3));
    CHECK_OK(em__mjournal_put_app(j, &a));
    CHECK_OK(em__mjournal_put_ids(j, 3, 4));

    unsigned char buf[256];
    size_t n = read_file(path_in(dir, "worker_w1"), buf, sizeof buf);
    buf[14] ^= 0x20; /* 'w' of "w1" becomes 'W': the checksum no longer matches */
    write_file(path_in(dir, "worker_w1"), buf, n);
    n = read_file(path_in(dir, "app_app-1"), buf, sizeof buf);
    write_file(path_in(dir, "app_app-1"), buf, n - 5);
    /* w3's record copied under w2's name: consistent bytes, wrong place */
    n = read_file(path_in(dir, "worker_w3"), buf, sizeof buf);
    write_file(path_in(dir, "worker_w9"), buf, n);
    write_file(path_in(dir, "notes.txt"), (const unsigned char *)"hello", 5);
    write_file(path_in(dir, ".tmp.worker_w4"), (const unsigned char *)"half", 4);

    em__mrecovered r;
    char **skipped = NULL;
    size_t ns = 0;
    CHECK_OK(em__mjournal_load(j, &r, &skipped, &ns));
    CHECK_EQ_INT(r.nworkers, 2);
    for (size_t i = 0; i < r.nworkers; i++)
        CHECK(!strcmp(r.workers[i].id, "w2") || !strcmp(r.workers[i].id, "w3"));
    CHECK_EQ_INT(r.napps, 0);
    CHECK_EQ_INT(r.next_app_number, 3);
    CHECK_EQ_INT(ns, 4);
    int corrupt = 0, truncated = 0, misplaced = 0, strange = 0;
    for (size_t i = 0; i < ns; i++) {
        /* (the test's directory name holds "corrupt" and "truncated": match after the name) */
        if (strstr(skipped[i], "/worker_w1: checksum mismatch")) corrupt++;
        if (strstr(skipped[i], "/app_app-1: truncated: ")) truncated++;
        if (strstr(skipped[i], "/worker_w9: ") && strstr(skipped[i], "worker_w3")) misplaced++;
        if (strstr(skipped[i], "/notes.txt: ")) strange++;
    }
    CHECK_MSG(corrupt == 1 && truncated == 1 && misplaced == 1 && strange == 1,
              "skipped: %s | %s | %s | %s", skipped[0], skipped[1], skipped[2], skipped[3]);
    CHECK_EQ_INT(file_size(path_in(dir, ".tmp.worker_w4")), -1); /* leftover removed */
    free_skipped(skipped, ns);
    em__mrecovered_free(&r);

    /* Shorter than a header, and a header whose length says more than there is. */
    write_file(path_in(dir, "worker_w2"), (const unsigned char *)"EMJR", 4);
    n = read_file(path_in(dir, "worker_w3"), buf, sizeof buf);
    buf[8] = 200;
    write_file(path_in(dir, "worker_w3"), buf, n);
    CHECK_OK(em__mjournal_load(j, &r, &skipped, &ns));
    CHECK_EQ_INT(r.nworkers, 0);
    int short_ones = 0;
    for (size_t i = 0; i < ns; i++)
        short_ones += strstr(skipped[i], "/worker_w2: truncated: 4 bytes") != NULL ||
                      strstr(skipped[i], "/worker_w3: truncated") != NULL;
    CHECK_EQ_INT(short_ones, 2);
    free_skipped(skipped, ns);
    em__mrecovered_free(&r);
    em__mjournal_close(j);
}

/* An id with '/', '..' and spaces stays a single file inside the directory. */
TEST(ids_cannot_leave_the_directory)
{
    em__mjournal *j = open_journal("j");
    em_mworker w = {.id = "../../evil id/x", .host = "h", .port = 1, .cores = 1, .memory_mb = 1};
    CHECK_OK(em__mjournal_put_worker(j, &w));
    char name[256];
    em__mjournal_file_name(EM_MJ_WORKER, w.id, name, sizeof name);
    CHECK_EQ_STR(name, "worker_..%2F..%2Fevil%20id%2Fx");
    CHECK(file_size(path_in(em__mjournal_dir(j), name)) > 0);
    em__mrecovered r;
    CHECK_OK(em__mjournal_load(j, &r, NULL, NULL));
    CHECK_EQ_INT(r.nworkers, 1);
    CHECK_EQ_STR(r.workers[0].id, "../../evil id/x");
    em__mrecovered_free(&r);
    /* the binaries directory exists and an empty directory name is refused */
    CHECK(file_size(em__mjournal_binaries_dir(j)) >= 0);
    em__mjournal *bad = NULL;
    CHECK_EQ_INT(em__mjournal_open("", &bad), EM_EINVAL);
    CHECK(strstr(em_errmsg(), "ember.deploy.recoveryDirectory") != NULL);
    em__mjournal_close(j);
}

/* ---- a state's ops applied ------------------------------------------------------------------ */
static void apply(em__mjournal *j, em__mstate *st)
{
    size_t n = 0;
    em__mjournal_op *ops = em__mstate_take_journal(st, &n);
    CHECK_EQ_INT(em__mjournal_apply(j, st, ops, n), 0);
    em__mjournal_ops_free(ops, n);
    size_t na = 0;
    em__maction *a = em__mstate_take_actions(st, &na);
    em__mactions_free(a, na);
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

static em_mapp *register_app(em__mstate *st, void *conn, int64_t now)
{
    em__app_request req = {.name = "a",
                           .cores_max = 2,
                           .executor_cores = 1,
                           .executor_memory_mb = 100,
                           .driver_url = "d:1",
                           .binary_hash = HASH};
    em_mapp *a = NULL;
    CHECK_OK(em__mstate_register_app(st, &req, conn, now, WALL, &a));
    return a;
}

static em_mdriver *submit_driver(em__mstate *st, bool supervise, int64_t now)
{
    const char *args[] = {"x"};
    em__driver_request req = {.cores = 1,
                              .memory_mb = 64,
                              .supervise = supervise,
                              .binary_hash = HASH,
                              .args = args,
                              .num_args = 1};
    em_mdriver *d = NULL;
    CHECK_OK(em__mstate_submit_driver(st, &req, now, WALL, &d));
    return d;
}

TEST(state_changes_reach_the_files)
{
    em__mjournal *j = open_journal("j");
    const char *dir = em__mjournal_dir(j);
    em__mstate st;
    em__mstate_init(&st, true);
    st.journaling = true;
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "h1", 0, 4, 1000, W1, 0), 0);
    apply(j, &st);
    CHECK_EQ_INT(count_files(dir, "worker_"), 1);
    em_mapp *a = register_app(&st, D1, 10); /* 2 executors of 1 core placed on w1 */
    char app_id[64];
    snprintf(app_id, sizeof app_id, "%s", a->id);
    CHECK_EQ_INT(a->nexecs, 2);
    em_mdriver *d = submit_driver(&st, false, 10);
    char driver_id[64];
    snprintf(driver_id, sizeof driver_id, "%s", d->id);
    apply(j, &st);
    CHECK_EQ_INT(count_files(dir, "app_"), 1);
    CHECK_EQ_INT(count_files(dir, "driver_"), 1);
    CHECK_EQ_INT(count_files(dir, "ids"), 1);
    em__mrecovered r;
    CHECK_OK(em__mjournal_load(j, &r, NULL, NULL));
    CHECK_EQ_INT(r.napps, 1);
    CHECK_EQ_INT(r.apps[0]->next_exec_id, 2); /* rewritten at each launch */
    CHECK_EQ_INT(r.ndrivers, 1);
    CHECK(r.drivers[0]->placed); /* launched on w1 (the only worker, with room) */
    CHECK_EQ_STR(r.drivers[0]->worker_id, "w1");
    CHECK_EQ_INT(r.next_app_number, 1);
    CHECK_EQ_INT(r.next_driver_number, 1);
    em__mrecovered_free(&r);

    /* the application and the driver end: their files go */
    CHECK_OK(em__mstate_unregister_app(&st, app_id, D1, 20));
    CHECK_OK(em__mstate_driver_state(&st, W1, driver_id, EM_DRIVER_FINISHED, 0, "", 20));
    apply(j, &st);
    CHECK_EQ_INT(count_files(dir, "app_"), 0);
    CHECK_EQ_INT(count_files(dir, "driver_"), 0);
    /* the worker dies of silence: its file goes */
    CHECK_EQ_INT(em__mstate_check(&st, 100000, 60000), 1);
    apply(j, &st);
    CHECK_EQ_INT(count_files(dir, "worker_"), 0);
    em__mstate_free(&st);
    em__mjournal_close(j);
}

/* A master restarted on the journal never hands out an application, driver or executor id it
 * used before, even for ids whose records were removed (ended) in the meantime. */
TEST(ids_are_not_reused_after_a_restart)
{
    em__mjournal *j = open_journal("j");
    em__mstate st;
    em__mstate_init(&st, true);
    st.journaling = true;
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "h1", 0, 4, 1000, W1, 0), 0);
    char ended[64], live[64];
    em_mapp *a0 = register_app(&st, D1, 1); /* app ...-0000, ends */
    snprintf(ended, sizeof ended, "%s", a0->id);
    CHECK_OK(em__mstate_unregister_app(&st, ended, D1, 2));
    static int conn_d2;
    em_mapp *a1 = register_app(&st, &conn_d2, 3); /* app ...-0001, executors 0 and 1 */
    snprintf(live, sizeof live, "%s", a1->id);
    /* executor 1 exits and is replaced by executor 2 */
    CHECK_OK(em__mstate_executor_state(&st, W1, live, 1, EM_EXEC_EXITED, 1, "x", 4));
    CHECK_EQ_INT(a1->next_exec_id, 3);
    em_mdriver *d0 = submit_driver(&st, false, 5); /* driver ...-0000, ends */
    CHECK_OK(em__mstate_driver_state(&st, W1, d0->id, EM_DRIVER_FINISHED, 0, "", 6));
    submit_driver(&st, false, 7); /* driver ...-0001 */
    apply(j, &st);
    em__mstate_free(&st);

    /* restart */
    em__mrecovered r;
    CHECK_OK(em__mjournal_load(j, &r, NULL, NULL));
    em__mstate_init(&st, true);
    st.journaling = true;
    CHECK(em__mstate_recover(&st, &r, 1000, 5000) > 0);
    CHECK_EQ_INT(st.state, EM_MASTER_RECOVERING);
    CHECK_EQ_INT(em__mstate_register_worker(&st, "w1", "h1", 0, 4, 1000, W1, 1001), 1);
    /* the worker still runs executors 0 and 2 */
    CHECK_OK(em__mstate_worker_executor(&st, W1, "w1", live, 0, 1, 100, EM_EXEC_RUNNING, 1002));
    CHECK_OK(em__mstate_worker_executor(&st, W1, "w1", live, 2, 1, 100, EM_EXEC_RUNNING, 1002));
    CHECK_OK(em__mstate_worker_state_end(&st, W1, "w1", 1003));
    CHECK_OK(em__mstate_reregister_app(&st, live, D1, 1004));
    CHECK_EQ_INT(st.state, EM_MASTER_ALIVE);
    em_mapp *back = em__mstate_find_app(&st, live);
    CHECK(back != NULL && back->nexecs == 2 && back->cores_granted == 2);
    /* executor 2 exits: its replacement is executor 3, not 1 or 2 */
    CHECK_OK(em__mstate_executor_state(&st, W1, live, 2, EM_EXEC_EXITED, 1, "x", 1005));
    CHECK_EQ_INT(back->nexecs, 2);
    CHECK(em__mapp_find_exec(back, 3) != NULL);
    CHECK(em__mapp_find_exec(back, 1) == NULL);
    /* new ids continue after the highest used: application 2, driver 2 */
    static int conn_d3;
    em_mapp *a2 = register_app(&st, &conn_d3, 1006);
    CHECK_MSG(strstr(a2->id, "-0002") != NULL, "new application id %s", a2->id);
    CHECK(strcmp(a2->id, ended) && strcmp(a2->id, live));
    em_mdriver *d2 = submit_driver(&st, false, 1007);
    CHECK_MSG(strstr(d2->id, "-0002") != NULL, "new driver id %s", d2->id);
    apply(j, &st);
    em__mstate_free(&st);
    em__mjournal_close(j);
}
