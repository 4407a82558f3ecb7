/* The master daemon of the standalone cluster manager: the listening endpoint that workers and
 * drivers connect to, the master's tables (master_state.c: workers, applications, executors,
 * their lifecycles and the scheduling pass) behind m->mu, the liveness check, and in
 * FILESYSTEM recovery mode the journal of those tables (master_journal.h).
 *
 * Messages handled (messages.def): from workers REGISTER_WORKER, HEARTBEAT,
 * EXECUTOR_STATE_CHANGED, DRIVER_STATE_CHANGED, GET_FILE (driver binaries), and after each
 * registration their report WORKER_EXECUTOR / WORKER_DRIVER / WORKER_STATE_END; from drivers
 * (app_client.c) REGISTER_APPLICATION, REREGISTER_APPLICATION, UNREGISTER_APPLICATION; from
 * ember submit (submit_client.c) SUBMIT_DRIVER, REQUEST_DRIVER_STATUS, REQUEST_KILL_DRIVER,
 * REQUEST_MASTER_STATE (`ember master --status`: MASTER_STATE, the tables as JSON). Every
 * event runs the matching em__mstate_* call under m->mu, writes the journal ops it produced
 * (write-ahead), then sends the actions it produced (LAUNCH_EXECUTOR, KILL_EXECUTOR,
 * APPLICATION_FINISHED, LAUNCH_DRIVER, KILL_DRIVER to workers; EXECUTOR_ADDED,
 * EXECUTOR_REMOVED, APPLICATION_REMOVED to drivers) still under the lock, so the messages of
 * one event leave in order and a connection named in the tables is valid (on_close removes it
 * under the same lock before the endpoint frees it). A closed connection ends the application
 * it registered (FINISHED) and disconnects the workers on it. An unexpected message closes its
 * connection with a WARN line.
 *
 * The master's states (ember.deploy.recoveryMode=FILESYSTEM; Spark's RecoveryState without
 * STANDBY: one live master at a time, no leader election):
 *
 *   em_master_start, no journal or an empty one
 *   --------------------------------------------> ALIVE (schedules)
 *   em_master_start, journal with records                ^
 *   (em__mstate_recover: workers UNKNOWN, applications   | complete_recovery (master_state.c):
 *   UNKNOWN, launched drivers `recovered`)               |   workers still UNKNOWN -> DEAD,
 *   --------------------------------------------> RECOVERING   applications still UNKNOWN ->
 *        nothing is scheduled; a worker that registers        FINISHED (executors killed),
 *        reports what it runs (taken back as it is, not       drivers nobody reported ->
 *        relaunched); a driver re-registers its application   RELAUNCHING (supervised) / ERROR
 *        by id; new workers, applications and submissions     / KILLED; then a scheduling pass
 *        are accepted and wait                                |
 *        -- every UNKNOWN worker reported and every UNKNOWN --+
 *           application re-registered, or ember.worker.timeout
 *           passed (the timer's em__mstate_check)
 *
 * Without recovery mode the master starts ALIVE and empty, as it always did: workers that
 * reconnect register again, and their report and the drivers' re-registrations (refused:
 * unknown application) change nothing.
 *
 * Cluster-mode submissions: the master keeps its own copy of each driver's binary, so that
 * ember submit may exit once the driver is accepted and a supervised driver can be relaunched
 * any time later. SUBMIT_DRIVER goes to the intake thread, which fetches the binary by hash
 * from the submitting client (file_url, GET_FILE) into the master's store
 * (<ember.local.dir>/ember-master-XXXXXX/<hash>, made at the first submission, removed at
 * stop; in recovery mode <ember.deploy.recoveryDirectory>/binaries/<hash>, kept, so a restarted
 * master can launch it again; a hash already there is not fetched again), offers it from the
 * master's endpoint (em_file_serve: workers fetch drivers' binaries from the master), then adds
 * the driver to the tables and answers SUBMIT_DRIVER_RESPONSE (ok with the driver id, or why
 * not).
 *
 * Threads: the endpoint's loop thread runs the message and close callbacks; one timer thread
 * runs the liveness check (and the supervised drivers' back-off, and the recovery's deadline)
 * every min(timeout / 4, 1 s) (the endpoint does not expose its loop, so the timer is a
 * thread); the intake thread fetches submitted binaries (a blocking em_file_fetch must not run
 * on the loop); all take m->mu for the tables and the journal. em_master_* from any thread.
 * Called by src/deploy/daemon_run.c (`ember master`, local-cluster) and tests. Log lines:
 * subsystem "master", INFO for registrations, launches and recovery steps, WARN for deaths,
 * failures and refusals, ERROR for journal writes that fail (the master carries on).
 */
#include "deploy/master.h"

#include "deploy/file_server.h"
#include "deploy/master_journal.h"
#include "net/endpoint.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- master URLs ------------------------------------------------------------------------------
 */
/* One entry [p, e) of url: "HOST:PORT" or "[v6]:PORT". */
static int parse_entry(const char *url, const char *p, const char *e, em_master_addr *out)
{
    const char *entry = p;
    int len = (int)(e - p);
    const char *hend, *colon;
    if (len == 0) return em__set_error(EM_EINVAL, "master URL '%s' has an empty entry", url);
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)len);
        if (!hend || hend + 1 >= e || hend[1] != ':')
            return em__set_error(EM_EINVAL, "master URL '%s': bad [address]:port '%.*s'", url, len,
                                 entry);
        colon = hend + 1;
        p++;
    } else {
        colon = NULL;
        for (const char *q = p; q < e; q++)
            if (*q == ':') colon = q;
        hend = colon;
    }
    if (!colon || hend == p)
        return em__set_error(EM_EINVAL, "master URL '%s': '%.*s' is not HOST:PORT", url, len,
                             entry);
    long port = 0;
    const char *q = colon + 1;
    for (; q < e && *q >= '0' && *q <= '9' && port <= 65535; q++) port = port * 10 + (*q - '0');
    if (q == colon + 1 || q != e || port < 1 || port > 65535)
        return em__set_error(EM_EINVAL, "master URL '%s': port of '%.*s' must be 1-65535", url, len,
                             entry);
    out->host = em__strndup(p, (size_t)(hend - p));
    out->port = (int)port;
    return out->host ? 0 : em__set_error(EM_ENOMEM, "out of memory");
}

int em_master_urls_parse(const char *url, em_master_addr **addrs, int *n)
{
    *addrs = NULL;
    *n = 0;
    const char *pfx = "ember://";
    size_t pl = strlen(pfx);
    if (!url || strncmp(url, pfx, pl))
        return em__set_error(EM_EINVAL, "master URL '%s' does not start with ember://",
                             url ? url : "(null)");
    int count = 1;
    for (const char *q = url; *q; q++) count += *q == ',';
    em_master_addr *v = em__calloc((size_t)count, sizeof *v);
    if (!v) return em__set_error(EM_ENOMEM, "out of memory");
    const char *p = url + pl;
    int rc = 0, k = 0;
    while (!rc && k < count) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        if (k > 0 && (size_t)(e - p) >= pl && !strncmp(p, pfx, pl)) p += pl; /* a:1,ember://b:2 */
        rc = parse_entry(url, p, e, &v[k]);
        if (!rc) k++;
        p = *e ? e + 1 : e;
    }
    if (rc) {
        em_master_addrs_free(v, k);
        return rc;
    }
    *addrs = v;
    *n = k;
    return 0;
}

void em_master_addrs_free(em_master_addr *addrs, int n)
{
    for (int i = 0; addrs && i < n; i++) em__free(addrs[i].host);
    em__free(addrs);
}

int em_master_url_parse(const char *url, char **host, int *port)
{
    *host = NULL;
    *port = 0;
    em_master_addr *v = NULL;
    int n = 0;
    int rc = em_master_urls_parse(url, &v, &n);
    if (rc) return rc;
    *host = v[0].host;
    *port = v[0].port;
    v[0].host = NULL;
    em_master_addrs_free(v, n);
    return 0;
}

/* ---- the daemon --------------------------------------------------------------------------------
 */
/* A SUBMIT_DRIVER waiting for the intake thread (everything copied; conn retained). */
struct submission {
    struct submission *next;
    em_conn *conn;
    em__driver_request req; /* args / env point into the arrays below */
    char *hash, *file_url;
    char **args, **env;
};

struct em_master {
    em_endpoint *ep;
    int port;
    char *url;
    int64_t timeout_ms, check_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    int timer_started;
    pthread_t timer;
    em__mstate st; /* guarded by mu */
    /* cluster-mode submissions */
    em_file_registry *files; /* the store's binaries, served to workers (its own mutex) */
    char *secret, *local_dir;
    size_t max_frame;
    int64_t fetch_timeout_ms;
    pthread_cond_t intake_cv;
    pthread_t intake;
    int intake_started;
    struct submission *subs, *subs_tail; /* guarded by mu */
    char *store_dir; /* intake thread; NULL until the first submission (journal: <dir>/binaries) */
    em__mjournal *journal; /* FILESYSTEM recovery mode; NULL otherwise (guarded by mu) */
};

/* Sends one action. Under m->mu (the connection is valid while the tables name it). */
static void send_action(const em__maction *a)
{
    em_conn *c = a->conn;
    int rc = 0;
    switch (a->type) {
    case EM_MSG_LAUNCH_EXECUTOR: {
        const em_mapp *app = a->app;
        int n = app->num_env;
        em_str *env = em__malloc(sizeof *env * (size_t)(n ? n : 1));
        if (!env) {
            EM_LOG(EM_LOG_ERROR, "master", "out of memory sending launch_executor");
            return;
        }
        for (int i = 0; i < n; i++) env[i] = em_str_c(app->env[i]);
        em_msg_launch_executor m = {.app_id = em_str_c(a->app_id),
                                    .exec_id = (uint32_t)a->exec_id,
                                    .cores = (uint32_t)a->cores,
                                    .memory_mb = a->memory_mb,
                                    .binary_hash = em_str_c(app->binary_hash),
                                    .driver_url = em_str_c(app->driver_url),
                                    .env = {.count = (uint32_t)n, .items = env}};
        rc = em_conn_send(c, a->type, &m);
        em__free(env);
        break;
    }
    case EM_MSG_EXECUTOR_ADDED: {
        em_msg_executor_added m = {.exec_id = (uint32_t)a->exec_id,
                                   .worker_id = em_str_c(a->worker_id),
                                   .host = em_str_c(a->host),
                                   .cores = (uint32_t)a->cores,
                                   .memory_mb = a->memory_mb};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_EXECUTOR_REMOVED: {
        em_msg_executor_removed m = {.exec_id = (uint32_t)a->exec_id,
                                     .state = (uint8_t)a->state,
                                     .exit_code = a->exit_code,
                                     .message = em_str_c(a->message)};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_KILL_EXECUTOR: {
        em_msg_kill_executor m = {.app_id = em_str_c(a->app_id), .exec_id = (uint32_t)a->exec_id};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_APPLICATION_FINISHED: {
        em_msg_application_finished m = {.app_id = em_str_c(a->app_id)};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_APPLICATION_REMOVED: {
        em_msg_application_removed m = {.app_id = em_str_c(a->app_id),
                                        .reason = em_str_c(a->message)};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    case EM_MSG_LAUNCH_DRIVER: {
        const em_mdriver *d = a->driver;
        em_str *v = em__malloc(sizeof *v * (size_t)(d->num_args + d->num_env + 1));
        if (!v) {
            EM_LOG(EM_LOG_ERROR, "master", "out of memory sending launch_driver");
            return;
        }
        for (int i = 0; i < d->num_args; i++) v[i] = em_str_c(d->args[i]);
        for (int i = 0; i < d->num_env; i++) v[d->num_args + i] = em_str_c(d->env[i]);
        /* file_url empty: the worker fetches the binary from this master (its own address). */
        em_msg_launch_driver m = {.driver_id = em_str_c(d->id),
                                  .cores = (uint32_t)d->cores,
                                  .memory_mb = d->memory_mb,
                                  .binary_hash = em_str_c(d->binary_hash),
                                  .file_url = em_str_c(""),
                                  .args = {.count = (uint32_t)d->num_args, .items = v},
                                  .env = {.count = (uint32_t)d->num_env, .items = v + d->num_args}};
        rc = em_conn_send(c, a->type, &m);
        em__free(v);
        break;
    }
    case EM_MSG_KILL_DRIVER: {
        em_msg_kill_driver m = {.driver_id = em_str_c(a->driver_id)};
        rc = em_conn_send(c, a->type, &m);
        break;
    }
    default:
        return;
    }
    if (rc && rc != EM_ESTATE)
        EM_LOG(EM_LOG_WARN, "master", "cannot send %s to %s: %s", em_msg_name(a->type),
               em_conn_peer(c), em_errmsg());
}

/* Sends what the last event produced. Under m->mu. */
static void flush_actions(em_master *m)
{
    size_t n = 0;
    em__mjournal_op *ops = em__mstate_take_journal(&m->st, &n);
    /* write-ahead; but what the master's own stop does (its connections closing end their
     * applications) is not recorded: a master restarted on the journal takes them back */
    if (m->journal && n && !m->stopping) em__mjournal_apply(m->journal, &m->st, ops, n);
    em__mjournal_ops_free(ops, n);
    em__maction *v = em__mstate_take_actions(&m->st, &n);
    for (size_t i = 0; i < n; i++) send_action(&v[i]);
    em__mactions_free(v, n);
}

static void on_register_worker(em_master *m, em_conn *c, const em_msg_register_worker *r)
{
    char *id = em__strndup(r->worker_id.p, r->worker_id.len);
    char *host = em__strndup(r->host.p, r->host.len);
    int rc = EM_ENOMEM;
    pthread_mutex_lock(&m->mu);
    if (id && host && id[0])
        rc = em__mstate_register_worker(&m->st, id, host, (int)r->port, (int)r->cores, r->memory_mb,
                                        c, em__now_ms());
    else if (id && host)
        rc = em__set_error(EM_EINVAL, "empty worker id");
    else
        em__set_error(rc, "out of memory");
    em_msg_registered_worker reply = {.ok = rc >= 0, .master_url = em_str_c(m->url)};
    if (rc >= 0) {
        EM_LOG(EM_LOG_INFO, "master", "%s worker %s from %s: host %s port %u, %u cores, %llu MiB",
               rc ? "re-registered" : "registered", id, em_conn_peer(c), host, r->port, r->cores,
               (unsigned long long)r->memory_mb);
    } else {
        EM_LOG(EM_LOG_WARN, "master", "refused registration of worker from %s: %s", em_conn_peer(c),
               em_errmsg());
        reply.reason = em_str_c(em_errmsg());
    }
    em_conn_send(c, EM_MSG_REGISTERED_WORKER, &reply); /* before any LAUNCH_EXECUTOR */
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
    em__free(id);
    em__free(host);
}

static void on_register_application(em_master *m, em_conn *c, const em_msg_register_application *r)
{
    em__app_request req = {.cores_max = (int)EM_MIN(r->cores_max, (uint32_t)INT32_MAX),
                           .executor_cores = (int)EM_MIN(r->executor_cores, (uint32_t)INT32_MAX),
                           .executor_memory_mb = r->executor_memory_mb};
    char *name = em__strndup(r->name.p, r->name.len);
    char *url = em__strndup(r->driver_url.p, r->driver_url.len);
    char *hash = em__strndup(r->binary_hash.p, r->binary_hash.len);
    char **env = em__calloc(r->env.count + 1, sizeof *env);
    int rc = name && url && hash && env ? 0 : em__set_error(EM_ENOMEM, "out of memory");
    size_t pos = 0;
    em_str s;
    int n = 0;
    while (!rc && em_strlist_next(&r->env, &pos, &s)) {
        env[n] = em__strndup(s.p, s.len);
        if (!env[n++]) rc = em__set_error(EM_ENOMEM, "out of memory");
    }
    req.name = name;
    req.driver_url = url;
    req.binary_hash = hash;
    req.env = (const char *const *)env;
    req.num_env = n;
    pthread_mutex_lock(&m->mu);
    em_mapp *app = NULL;
    if (!rc) {
        if (em_conn_peer_role(c) != EM_ROLE_DRIVER && em_conn_peer_role(c) != EM_ROLE_CLIENT)
            rc = em__set_error(EM_EACCES, "only a driver may register an application");
        else
            rc = em__mstate_register_app(&m->st, &req, c, em__now_ms(), em__wall_ms(), &app);
    }
    em_msg_registered_application reply = {.ok = rc == 0};
    if (rc == 0) {
        reply.app_id = em_str_c(app->id);
    } else {
        EM_LOG(EM_LOG_WARN, "master", "refused application '%s' from %s: %s", name ? name : "?",
               em_conn_peer(c), em_errmsg());
        reply.reason = em_str_c(em_errmsg());
    }
    em_conn_send(c, EM_MSG_REGISTERED_APPLICATION, &reply); /* before any EXECUTOR_ADDED */
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; env && i < n; i++) em__free(env[i]);
    em__free(env);
    em__free(name);
    em__free(url);
    em__free(hash);
}

static bool may_submit(em_conn *c);

/* REREGISTER_APPLICATION: a driver back after a master restart or move (loop thread). */
static void on_reregister_application(em_master *m, em_conn *c, const em_str *id_view)
{
    char *id = em__strndup(id_view->p, id_view->len);
    pthread_mutex_lock(&m->mu);
    int rc;
    if (!id)
        rc = em__set_error(EM_ENOMEM, "out of memory");
    else if (em_conn_peer_role(c) != EM_ROLE_DRIVER && em_conn_peer_role(c) != EM_ROLE_CLIENT)
        rc = em__set_error(EM_EACCES, "only a driver may re-register an application");
    else
        rc = em__mstate_reregister_app(&m->st, id, c, em__now_ms());
    em_msg_registered_application reply = {.ok = rc == 0, .app_id = em_str_c(id ? id : "")};
    if (rc) {
        EM_LOG(EM_LOG_WARN, "master", "refused the re-registration of %s from %s: %s",
               id ? id : "?", em_conn_peer(c), em_errmsg());
        reply.reason = em_str_c(em_errmsg());
    }
    em_conn_send(c, EM_MSG_REGISTERED_APPLICATION, &reply);
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
    em__free(id);
}

/* WORKER_EXECUTOR, WORKER_DRIVER, WORKER_STATE_END: a worker's report after registering. */
static void on_worker_report(em_master *m, em_conn *c, const em_msg *msg)
{
    const em_str *wv, *iv = NULL;
    if (msg->type == EM_MSG_WORKER_EXECUTOR) {
        wv = &msg->u.worker_executor.worker_id;
        iv = &msg->u.worker_executor.app_id;
    } else if (msg->type == EM_MSG_WORKER_DRIVER) {
        wv = &msg->u.worker_driver.worker_id;
        iv = &msg->u.worker_driver.driver_id;
    } else {
        wv = &msg->u.worker_state_end.worker_id;
    }
    char *wid = em__strndup(wv->p, wv->len);
    char *id = iv ? em__strndup(iv->p, iv->len) : NULL;
    if (!wid || (iv && !id)) {
        em__free(wid);
        em__free(id);
        return;
    }
    pthread_mutex_lock(&m->mu);
    int64_t now = em__now_ms();
    int rc;
    if (msg->type == EM_MSG_WORKER_EXECUTOR) {
        const em_msg_worker_executor *e = &msg->u.worker_executor;
        rc = em__mstate_worker_executor(
            &m->st, c, wid, id, (int)EM_MIN(e->exec_id, (uint32_t)INT32_MAX),
            (int)EM_MIN(e->cores, (uint32_t)INT32_MAX), e->memory_mb, e->state, now);
    } else if (msg->type == EM_MSG_WORKER_DRIVER) {
        const em_msg_worker_driver *d = &msg->u.worker_driver;
        rc =
            em__mstate_worker_driver(&m->st, c, wid, id, (int)EM_MIN(d->cores, (uint32_t)INT32_MAX),
                                     d->memory_mb, d->state, now);
    } else {
        rc = em__mstate_worker_state_end(&m->st, c, wid, now);
        if (!rc)
            EM_LOG(EM_LOG_INFO, "master", "worker %s reports %u executors and %u drivers running",
                   wid, msg->u.worker_state_end.executors, msg->u.worker_state_end.drivers);
    }
    if (rc)
        EM_LOG(EM_LOG_WARN, "master", "ignored %s from %s: %s", em_msg_name(msg->type),
               em_conn_peer(c), em_errmsg());
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
    em__free(wid);
    em__free(id);
}

/* ---- the master's state as JSON (ember master --status) -------------------------------------- */
static void json_str(em_buf *b, const char *s)
{
    em_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            em_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            em_buf_printf(b, "\\u%04x", *p);
        else
            em_buf_append(b, p, 1);
    }
    em_buf_append(b, "\"", 1);
}

/* "key": "value", (a string member and a comma) */
static void json_kv(em_buf *b, const char *key, const char *value, bool comma)
{
    em_buf_printf(b, "\"%s\": ", key);
    json_str(b, value);
    if (comma) em_buf_append(b, ", ", 2);
}

/* The tables as one JSON object, in the shape of Spark's master /json page. Under m->mu. */
static int state_json(em_master *m, em_buf *b)
{
    const em__mstate *st = &m->st;
    int cores = 0, cores_used = 0, alive = 0;
    uint64_t mem = 0, mem_used = 0;
    for (size_t i = 0; i < st->workers.n; i++) {
        const em_mworker *w = &st->workers.v[i];
        if (w->state != EM_WORKER_ALIVE) continue;
        alive++;
        cores += w->cores;
        cores_used += w->cores_used;
        mem += w->memory_mb;
        mem_used += w->memory_used_mb;
    }
    em_buf_append(b, "{", 1);
    json_kv(b, "url", m->url, true);
    json_kv(b, "status", em_master_state_name(st->state), true);
    json_kv(b, "recoverymode", m->journal ? "FILESYSTEM" : "NONE", true);
    em_buf_printf(b,
                  "\"aliveworkers\": %d, \"cores\": %d, \"coresused\": %d, \"memory\": %llu, "
                  "\"memoryused\": %llu, \"workers\": [",
                  alive, cores, cores_used, (unsigned long long)mem, (unsigned long long)mem_used);
    for (size_t i = 0; i < st->workers.n; i++) {
        const em_mworker *w = &st->workers.v[i];
        em_buf_append(b, i ? ", {" : "{", i ? 3 : 1);
        json_kv(b, "id", w->id, true);
        json_kv(b, "host", w->host, true);
        json_kv(b, "state", em_worker_state_name(w->state), true);
        em_buf_printf(b,
                      "\"port\": %d, \"cores\": %d, \"coresused\": %d, \"memory\": %llu, "
                      "\"memoryused\": %llu, \"connected\": %s}",
                      w->port, w->cores, w->cores_used, (unsigned long long)w->memory_mb,
                      (unsigned long long)w->memory_used_mb, w->connected ? "true" : "false");
    }
    for (int pass = 0; pass < 2; pass++) { /* live applications, then ended ones */
        em_buf_printf(b, "], \"%s\": [", pass ? "completedapps" : "activeapps");
        bool first = true;
        for (size_t i = 0; i < st->napps; i++) {
            const em_mapp *a = st->apps[i];
            bool live = a->state == EM_APP_WAITING || a->state == EM_APP_RUNNING ||
                        a->state == EM_APP_UNKNOWN;
            if (live == (pass == 1)) continue;
            em_buf_append(b, first ? "{" : ", {", first ? 1 : 3);
            first = false;
            json_kv(b, "id", a->id, true);
            json_kv(b, "name", a->name, true);
            json_kv(b, "state", em_app_state_name(a->state), true);
            if (pass) json_kv(b, "reason", a->end_reason, true);
            em_buf_printf(b,
                          "\"coresmax\": %d, \"cores\": %d, \"executorcores\": %d, "
                          "\"memoryperexecutor\": %llu, \"executors\": [",
                          a->cores_max, a->cores_granted, a->executor_cores,
                          (unsigned long long)a->executor_memory_mb);
            for (size_t k = 0; k < a->nexecs; k++) {
                const em_mexec *e = &a->execs[k];
                em_buf_printf(b, "%s{\"id\": %d, ", k ? ", " : "", e->exec_id);
                json_kv(b, "worker", e->worker_id, true);
                json_kv(b, "state", em_exec_state_name(e->state), true);
                em_buf_printf(b, "\"cores\": %d, \"memory\": %llu}", e->cores,
                              (unsigned long long)e->memory_mb);
            }
            em_buf_append(b, "]}", 2);
        }
    }
    for (int pass = 0; pass < 2; pass++) { /* live drivers, then ended ones */
        em_buf_printf(b, "], \"%s\": [", pass ? "completeddrivers" : "activedrivers");
        bool first = true;
        for (size_t i = 0; i < st->ndrivers; i++) {
            const em_mdriver *d = st->drivers[i];
            if (em__driver_state_final(d->state) != (pass == 1)) continue;
            em_buf_append(b, first ? "{" : ", {", first ? 1 : 3);
            first = false;
            json_kv(b, "id", d->id, true);
            json_kv(b, "name", d->name, true);
            json_kv(b, "state", em_driver_state_name(d->state), true);
            json_kv(b, "worker", d->worker_id, true);
            em_buf_printf(b,
                          "\"cores\": %d, \"memory\": %llu, \"supervise\": %s, \"launches\": %d, "
                          "\"exitcode\": %d}",
                          d->cores, (unsigned long long)d->memory_mb,
                          d->supervise ? "true" : "false", d->launches, d->exit_code);
        }
    }
    em_buf_append(b, "]}", 2);
    return em_buf_append(b, "", 1) ? em__set_error(EM_ENOMEM, "out of memory") : 0;
}

static void on_master_state(em_master *m, em_conn *c)
{
    em_buf b = EM_BUF_INIT;
    pthread_mutex_lock(&m->mu);
    int rc = may_submit(c) ? state_json(m, &b) : EM_EACCES;
    pthread_mutex_unlock(&m->mu);
    if (rc) {
        em_buf_free(&b);
        em_buf_printf(&b, "{\"error\": \"%s\"}%c",
                      rc == EM_EACCES ? "only a client may ask" : "out of memory", '\0');
    }
    em_msg_master_state r = {.json = em_str_c(b.data ? (const char *)b.data : "{}")};
    int src = em_conn_send(c, EM_MSG_MASTER_STATE, &r);
    if (src && src != EM_ESTATE)
        EM_LOG(EM_LOG_WARN, "master", "cannot send its state to %s: %s", em_conn_peer(c),
               em_errmsg());
    em_buf_free(&b);
}

int em_master_status_json(em_master *m, char **json)
{
    em_buf b = EM_BUF_INIT;
    pthread_mutex_lock(&m->mu);
    int rc = state_json(m, &b);
    pthread_mutex_unlock(&m->mu);
    if (rc) {
        em_buf_free(&b);
        *json = NULL;
        return rc;
    }
    *json = (char *)b.data;
    return 0;
}

int em_master_state(em_master *m)
{
    pthread_mutex_lock(&m->mu);
    int s = m->st.state;
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* ---- cluster-mode drivers ---------------------------------------------------------------------
 */
static bool may_submit(em_conn *c)
{
    return em_conn_peer_role(c) == EM_ROLE_CLIENT || em_conn_peer_role(c) == EM_ROLE_DRIVER;
}

static void submission_free(struct submission *s)
{
    if (!s) return;
    for (int i = 0; s->args && i < s->req.num_args; i++) em__free(s->args[i]);
    for (int i = 0; s->env && i < s->req.num_env; i++) em__free(s->env[i]);
    em__free(s->args);
    em__free(s->env);
    em__free(s->hash);
    em__free(s->file_url);
    em__free(s);
}

/* Copies a decoded string list into a NULL-padded array of n entries. NULL on out of memory. */
static char **copy_strlist(const em_strlist *l, int *n)
{
    char **v = em__calloc((size_t)l->count + 1, sizeof *v);
    size_t pos = 0;
    em_str s;
    *n = 0;
    while (v && em_strlist_next(l, &pos, &s)) {
        if (!(v[*n] = em__strndup(s.p, s.len))) return v; /* caller sees the NULL: ENOMEM */
        (*n)++;
    }
    return v;
}

static void reply_submit(em_conn *c, int ok, const char *driver_id, const char *message)
{
    em_msg_submit_driver_response r = {
        .ok = (uint8_t)ok, .driver_id = em_str_c(driver_id), .message = em_str_c(message)};
    int rc = em_conn_send(c, EM_MSG_SUBMIT_DRIVER_RESPONSE, &r);
    if (rc && rc != EM_ESTATE)
        EM_LOG(EM_LOG_WARN, "master", "cannot answer the submission of %s: %s", em_conn_peer(c),
               em_errmsg());
}

/* SUBMIT_DRIVER (loop thread): queued for the intake thread. */
static void on_submit_driver(em_master *m, em_conn *c, const em_msg_submit_driver *r)
{
    if (!may_submit(c)) {
        EM_LOG(EM_LOG_WARN, "master", "refused a driver submission from %s: not a submit client",
               em_conn_peer(c));
        reply_submit(c, 0, "", "only ember submit may submit a driver");
        return;
    }
    struct submission *s = em__calloc(1, sizeof *s);
    bool ok = s != NULL;
    if (ok) {
        s->hash = em__strndup(r->binary_hash.p, r->binary_hash.len);
        s->file_url = em__strndup(r->file_url.p, r->file_url.len);
        s->args = copy_strlist(&r->args, &s->req.num_args);
        s->env = copy_strlist(&r->env, &s->req.num_env);
        ok = s->hash && s->file_url && s->args && s->env && s->req.num_args == (int)r->args.count &&
             s->req.num_env == (int)r->env.count;
    }
    if (!ok) {
        submission_free(s);
        reply_submit(c, 0, "", "the master is out of memory");
        return;
    }
    s->req.cores = (int)EM_MIN(r->cores, (uint32_t)INT32_MAX);
    s->req.memory_mb = r->memory_mb;
    s->req.supervise = r->supervise != 0;
    s->req.binary_hash = s->hash;
    s->req.args = (const char *const *)s->args;
    s->req.env = (const char *const *)s->env;
    em_conn_retain(c);
    s->conn = c;
    EM_LOG(EM_LOG_INFO, "master", "driver submission from %s: binary %s served at %s",
           em_conn_peer(c), s->hash, s->file_url);
    pthread_mutex_lock(&m->mu);
    if (m->stopping) {
        pthread_mutex_unlock(&m->mu);
        reply_submit(c, 0, "", "the master is stopping");
        em_conn_release(c);
        s->conn = NULL;
        submission_free(s);
        return;
    }
    if (m->subs_tail)
        m->subs_tail->next = s;
    else
        m->subs = s;
    m->subs_tail = s;
    pthread_cond_signal(&m->intake_cv);
    pthread_mutex_unlock(&m->mu);
}

/* The store directory, made at the first submission. Intake thread. */
static int ensure_store(em_master *m)
{
    if (m->store_dir) return 0;
    const char *base = m->local_dir && *m->local_dir ? m->local_dir : "/tmp";
    int rc = em__mkdirs(base);
    if (rc) return em__error_context(rc, "master's binary store under ember.local.dir");
    em_buf b = EM_BUF_INIT;
    rc = em_buf_printf(&b, "%s/ember-master-XXXXXX%c", base, '\0');
    if (rc) return rc;
    if (!mkdtemp((char *)b.data)) {
        int e = errno;
        em_buf_free(&b);
        return em__set_error(-e, "cannot create the master's binary store in %s: %s", base,
                             strerror(e));
    }
    m->store_dir = (char *)b.data;
    EM_LOG(EM_LOG_INFO, "master", "drivers' binaries are kept in %s", m->store_dir);
    return 0;
}

/* The binary of s in the store and the registry: 0, or an error with a message. Intake
 * thread, without m->mu (the fetch blocks). */
static int take_binary(em_master *m, struct submission *s)
{
    if (!em_file_hash_valid(s->hash))
        return em__set_error(EM_EINVAL, "binary hash '%s' is not a hex SHA-256", s->hash);
    char *path = NULL;
    if (em_file_registry_lookup(m->files, s->hash, &path, NULL) == 0) {
        em__free(path);
        return 0;
    }
    int rc = ensure_store(m);
    if (rc) return rc;
    em_buf dest = EM_BUF_INIT;
    rc = em_buf_printf(&dest, "%s/%s%c", m->store_dir, s->hash, '\0');
    if (rc) return rc;
    em_file_fetch_opts o = {.secret = m->secret,
                            .max_frame = m->max_frame,
                            .timeout_ms = m->fetch_timeout_ms,
                            .app_id = ""};
    uint64_t size = 0;
    int64_t t0 = em__now_ms();
    rc = em_file_fetch(&o, s->file_url, s->hash, (const char *)dest.data, &size);
    if (rc) {
        rc = em__error_context(rc, "cannot get the binary from ember submit at %s", s->file_url);
    } else {
        char hex[EM_FILE_HASH_HEX];
        rc = em_file_registry_add(m->files, (const char *)dest.data, hex);
        if (!rc && strcmp(hex, s->hash))
            rc =
                em__set_error(EM_ECORRUPT, "binary %s changed in the store (now %s)", s->hash, hex);
        if (!rc)
            EM_LOG(EM_LOG_INFO, "master", "fetched binary %s (%llu bytes) from %s in %lld ms",
                   s->hash, (unsigned long long)size, s->file_url, (long long)(em__now_ms() - t0));
    }
    em_buf_free(&dest);
    return rc;
}

static void *intake_main(void *arg)
{
    em_master *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        struct submission *s = m->subs;
        if (!s) {
            pthread_cond_wait(&m->intake_cv, &m->mu);
            continue;
        }
        m->subs = s->next;
        if (!m->subs) m->subs_tail = NULL;
        pthread_mutex_unlock(&m->mu);
        int rc = take_binary(m, s);
        char why[1024];
        snprintf(why, sizeof why, "%s", rc ? em_errmsg() : "");
        pthread_mutex_lock(&m->mu);
        em_mdriver *d = NULL;
        if (!rc) {
            rc = em__mstate_submit_driver(&m->st, &s->req, em__now_ms(), em__wall_ms(), &d);
            if (rc) snprintf(why, sizeof why, "%s", em_errmsg());
        }
        if (rc) {
            EM_LOG(EM_LOG_WARN, "master", "refused the driver submitted by %s: %s",
                   em_conn_peer(s->conn), why);
            reply_submit(s->conn, 0, "", why);
        } else {
            char msg[256];
            snprintf(msg, sizeof msg, "driver %s accepted: %d cores, %llu MiB%s", d->id, d->cores,
                     (unsigned long long)d->memory_mb, d->supervise ? ", supervised" : "");
            reply_submit(s->conn, 1, d->id, msg);
        }
        flush_actions(m);
        em_conn_release(s->conn);
        s->conn = NULL;
        submission_free(s);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void on_driver_status(em_master *m, em_conn *c, const em_str *id_view)
{
    char *id = em__strndup(id_view->p, id_view->len);
    if (!id) return;
    em_msg_driver_status r = {.driver_id = em_str_c(id)};
    pthread_mutex_lock(&m->mu);
    em_mdriver *d = may_submit(c) ? em__mstate_find_driver(&m->st, id) : NULL;
    char msg[1024] = "";
    if (d) {
        r.found = 1;
        r.state = (uint8_t)d->state;
        r.worker_id = em_str_c(d->worker_id);
        r.exit_code = d->exit_code;
        snprintf(msg, sizeof msg, "%s", d->message ? d->message : "");
    } else {
        snprintf(msg, sizeof msg, "no driver %s on this master", id);
    }
    r.message = em_str_c(msg);
    em_conn_send(c, EM_MSG_DRIVER_STATUS, &r);
    pthread_mutex_unlock(&m->mu);
    em__free(id);
}

static void on_kill_driver(em_master *m, em_conn *c, const em_str *id_view)
{
    char *id = em__strndup(id_view->p, id_view->len);
    if (!id) return;
    pthread_mutex_lock(&m->mu);
    int rc = may_submit(c) ? em__mstate_kill_driver(&m->st, id, em__now_ms())
                           : em__set_error(EM_EACCES, "only ember submit may kill a driver");
    char msg[1024];
    if (rc < 0) {
        snprintf(msg, sizeof msg, "%s", em_errmsg());
        EM_LOG(EM_LOG_WARN, "master", "kill of driver %s asked by %s refused: %s", id,
               em_conn_peer(c), msg);
    } else {
        snprintf(msg, sizeof msg, rc ? "driver %s killed" : "kill of driver %s requested", id);
    }
    em_msg_kill_driver_response r = {
        .ok = rc >= 0, .driver_id = em_str_c(id), .message = em_str_c(msg)};
    em_conn_send(c, EM_MSG_KILL_DRIVER_RESPONSE, &r);
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
    em__free(id);
}

static void on_driver_state(em_master *m, em_conn *c, const em_msg_driver_state_changed *e)
{
    char *id = em__strndup(e->driver_id.p, e->driver_id.len);
    char *text = em__strndup(e->message.p, e->message.len);
    if (id && text) {
        pthread_mutex_lock(&m->mu);
        int rc = em__mstate_driver_state(&m->st, c, id, e->state, e->exit_code, text, em__now_ms());
        if (rc == EM_ENOENT)
            EM_LOG(EM_LOG_DEBUG, "master", "ignored: %s", em_errmsg());
        else if (rc)
            EM_LOG(EM_LOG_WARN, "master", "ignored driver state from %s: %s", em_conn_peer(c),
                   em_errmsg());
        flush_actions(m);
        pthread_mutex_unlock(&m->mu);
    }
    em__free(id);
    em__free(text);
}

static void on_message(em_conn *c, const em_msg *msg, void *user)
{
    em_master *m = user;
    switch (msg->type) {
    case EM_MSG_SUBMIT_DRIVER:
        on_submit_driver(m, c, &msg->u.submit_driver);
        return;
    case EM_MSG_REQUEST_DRIVER_STATUS:
        on_driver_status(m, c, &msg->u.request_driver_status.driver_id);
        return;
    case EM_MSG_REQUEST_KILL_DRIVER:
        on_kill_driver(m, c, &msg->u.request_kill_driver.driver_id);
        return;
    case EM_MSG_DRIVER_STATE_CHANGED:
        on_driver_state(m, c, &msg->u.driver_state_changed);
        return;
    case EM_MSG_GET_FILE:
        em_file_serve(m->files, c, &msg->u.get_file);
        return;
    case EM_MSG_REGISTER_WORKER:
        on_register_worker(m, c, &msg->u.register_worker);
        return;
    case EM_MSG_REGISTER_APPLICATION:
        on_register_application(m, c, &msg->u.register_application);
        return;
    case EM_MSG_REREGISTER_APPLICATION:
        on_reregister_application(m, c, &msg->u.reregister_application.app_id);
        return;
    case EM_MSG_WORKER_EXECUTOR:
    case EM_MSG_WORKER_DRIVER:
    case EM_MSG_WORKER_STATE_END:
        on_worker_report(m, c, msg);
        return;
    case EM_MSG_REQUEST_MASTER_STATE:
        on_master_state(m, c);
        return;
    case EM_MSG_HEARTBEAT: {
        char *id = em__strndup(msg->u.heartbeat.id.p, msg->u.heartbeat.id.len);
        if (!id) return;
        pthread_mutex_lock(&m->mu);
        int rc = em__mworkers_heartbeat(&m->st.workers, id, em__now_ms());
        pthread_mutex_unlock(&m->mu);
        if (rc) {
            EM_LOG(EM_LOG_WARN, "master", "%s from %s; closing it so the worker re-registers",
                   em_errmsg(), em_conn_peer(c));
            em_conn_close(c);
        }
        em__free(id);
        return;
    }
    case EM_MSG_EXECUTOR_STATE_CHANGED: {
        const em_msg_executor_state_changed *e = &msg->u.executor_state_changed;
        char *app = em__strndup(e->app_id.p, e->app_id.len);
        char *text = em__strndup(e->message.p, e->message.len);
        if (!app || !text) {
            em__free(app);
            em__free(text);
            return;
        }
        pthread_mutex_lock(&m->mu);
        int rc = em__mstate_executor_state(&m->st, c, app, (int)e->exec_id, e->state, e->exit_code,
                                           text, em__now_ms());
        if (rc == EM_ENOENT)
            EM_LOG(EM_LOG_DEBUG, "master", "ignored: %s", em_errmsg());
        else if (rc)
            EM_LOG(EM_LOG_WARN, "master", "ignored executor state from %s: %s", em_conn_peer(c),
                   em_errmsg());
        flush_actions(m);
        pthread_mutex_unlock(&m->mu);
        em__free(app);
        em__free(text);
        return;
    }
    case EM_MSG_UNREGISTER_APPLICATION: {
        const em_msg_unregister_application *u = &msg->u.unregister_application;
        char *app = em__strndup(u->app_id.p, u->app_id.len);
        if (!app) return;
        pthread_mutex_lock(&m->mu);
        if (em__mstate_unregister_app(&m->st, app, c, em__now_ms()))
            EM_LOG(EM_LOG_WARN, "master", "ignored from %s: %s", em_conn_peer(c), em_errmsg());
        flush_actions(m);
        pthread_mutex_unlock(&m->mu);
        em__free(app);
        return;
    }
    default:
        EM_LOG(EM_LOG_WARN, "master", "unexpected message %s from %s; closing the connection",
               em_msg_name(msg->type), em_conn_peer(c));
        em_conn_close(c);
    }
}

static void on_close(em_conn *c, int code, const char *reason, void *user)
{
    em_master *m = user;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->st.workers.n; i++)
        if (m->st.workers.v[i].connected && m->st.workers.v[i].conn == (void *)c)
            EM_LOG(EM_LOG_INFO, "master", "worker %s disconnected (%s%s%s)", m->st.workers.v[i].id,
                   reason ? reason : "", code ? ": " : "", code ? em_strerror(code) : "");
    em__mstate_conn_closed(&m->st, c, em__now_ms());
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
}

static void *timer_main(void *arg)
{
    em_master *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (m->check_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(m->check_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!m->stopping && pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT) {
        }
        if (m->stopping) break;
        em__mstate_check(&m->st, em__now_ms(), m->timeout_ms);
        flush_actions(m);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* FILESYSTEM recovery mode: opens the journal, takes its records back (RECOVERING when it
 * held any), keeps the store of drivers' binaries in it and offers the binaries of the drivers
 * taken back. Before the threads start. 0 or an error naming the directory. */
static int start_recovery(em_master *m, const em_conf *conf)
{
    const char *mode = em_conf_get_str(conf, "ember.deploy.recoveryMode");
    if (!mode || !*mode || !strcasecmp(mode, "NONE")) return 0;
    if (strcasecmp(mode, "FILESYSTEM"))
        return em__set_error(EM_EINVAL, "ember.deploy.recoveryMode '%s' is not NONE or FILESYSTEM",
                             mode);
    const char *dir = em_conf_get_str(conf, "ember.deploy.recoveryDirectory");
    int rc = em__mjournal_open(dir, &m->journal);
    if (rc) return rc;
    m->store_dir = em__strdup(em__mjournal_binaries_dir(m->journal));
    if (!m->store_dir) return em__set_error(EM_ENOMEM, "out of memory");
    em__mrecovered rec;
    size_t skipped = 0;
    rc = em__mjournal_load(m->journal, &rec, NULL, &skipped);
    if (rc) return em__error_context(rc, "recovery journal (ember.deploy.recoveryDirectory)");
    pthread_mutex_lock(&m->mu);
    m->st.journaling = true;
    size_t taken = em__mstate_recover(&m->st, &rec, em__now_ms(), m->timeout_ms);
    em__mjournal_prune_binaries(m->journal, &m->st);
    for (size_t i = 0; i < m->st.ndrivers; i++) {
        const em_mdriver *d = m->st.drivers[i];
        if (em__driver_state_final(d->state)) continue;
        char path[4096], hex[EM_FILE_HASH_HEX] = "";
        snprintf(path, sizeof path, "%s/%s", m->store_dir, d->binary_hash);
        if (em_file_registry_add(m->files, path, hex) || strcmp(hex, d->binary_hash))
            EM_LOG(EM_LOG_WARN, "master",
                   "the binary %s of driver %s is missing or damaged in the journal's store: the "
                   "driver cannot be launched again",
                   d->binary_hash, d->id);
    }
    flush_actions(m);
    pthread_mutex_unlock(&m->mu);
    EM_LOG(EM_LOG_INFO, "master",
           "recovery mode FILESYSTEM: journal in %s, %zu records taken back, %zu files skipped; "
           "the master is %s",
           dir, taken, skipped, em_master_state_name(m->st.state));
    return 0;
}

int em_master_start(const em_conf *conf, const char *host, int port, em_master **out)
{
    *out = NULL;
    em_master *m = em__calloc(1, sizeof *m);
    if (!m) return em__set_error(EM_ENOMEM, "out of memory");
    m->timeout_ms = em_conf_get_ms(conf, "ember.worker.timeout");
    m->check_ms = EM_MAX(EM_MIN(m->timeout_ms / 4, 1000), 1);
    em__mstate_init(&m->st, em_conf_get_bool(conf, "ember.deploy.spreadOut"));
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&m->intake_cv, NULL);
    const char *secret = em_conf_get_str(conf, "ember.authenticate.secret");
    m->secret = em__strdup(secret ? secret : "");
    m->local_dir = em__strdup(em_conf_get_str(conf, "ember.local.dir"));
    m->max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize");
    m->fetch_timeout_ms = em_conf_get_ms(conf, "ember.network.timeout");
    em_endpoint_config cfg = {
        .role = EM_ROLE_MASTER,
        .secret = em_conf_get_str(conf, "ember.authenticate.secret"),
        .max_frame = (size_t)em_conf_get_bytes(conf, "ember.rpc.message.maxSize"),
        .on_message = on_message,
        .on_close = on_close,
        .user = m,
    };
    int rc = m->secret && m->local_dir ? em_file_registry_new(&m->files)
                                       : em__set_error(EM_ENOMEM, "out of memory");
    if (!rc) rc = start_recovery(m, conf);
    if (!rc) rc = em_endpoint_new(&cfg, &m->ep);
    if (!rc) {
        rc = em_endpoint_listen(m->ep, host, port, &m->port);
        if (rc) rc = em__error_context(rc, "master cannot listen on %s:%d", host, port);
    }
    if (!rc) {
        em_buf b = EM_BUF_INIT;
        int v6 = strchr(host, ':') != NULL;
        rc = em_buf_printf(&b, "ember://%s%s%s:%d%c", v6 ? "[" : "", host, v6 ? "]" : "", m->port,
                           '\0');
        m->url = (char *)b.data;
    }
    if (!rc) rc = em_endpoint_start(m->ep);
    if (!rc) {
        rc = -pthread_create(&m->timer, NULL, timer_main, m);
        m->timer_started = rc == 0;
        if (rc) em__set_error(rc, "cannot start the master's timer thread");
    }
    if (!rc) {
        rc = -pthread_create(&m->intake, NULL, intake_main, m);
        m->intake_started = rc == 0;
        if (rc) em__set_error(rc, "cannot start the master's intake thread");
    }
    if (rc) {
        em_master_stop(m);
        return rc;
    }
    *out = m;
    return 0;
}

int em_master_port(const em_master *m)
{
    return m->port;
}

int em_master_worker_count(em_master *m, int state)
{
    int n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->st.workers.n; i++)
        if (!state || m->st.workers.v[i].state == state) n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int em_master_worker_info(em_master *m, const char *id, em_mworker *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->mu);
    em_mworker *w = em__mworkers_find(&m->st.workers, id);
    if (w) {
        *out = *w;
        out->id = out->host = NULL;
        out->lost = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    return w ? 0 : em__set_error(EM_ENOENT, "no worker %s", id);
}

int em_master_driver_count(em_master *m, int state)
{
    int n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->st.ndrivers; i++)
        if (!state || m->st.drivers[i]->state == state) n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int em_master_app_count(em_master *m, int state)
{
    int n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->st.napps; i++)
        if (!state || m->st.apps[i]->state == state) n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void em_master_stop(em_master *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->stopping = 1;
    pthread_cond_signal(&m->cv);
    pthread_cond_signal(&m->intake_cv);
    pthread_mutex_unlock(&m->mu);
    if (m->timer_started) pthread_join(m->timer, NULL);
    if (m->intake_started) pthread_join(m->intake, NULL); /* waits for a fetch under way */
    while (m->subs) {                                     /* never answered: the master stops */
        struct submission *s = m->subs;
        m->subs = s->next;
        em_conn_release(s->conn);
        submission_free(s);
    }
    em_endpoint_free(m->ep); /* on_close runs for every connection, under m->mu */
    em__mstate_free(&m->st);
    em_file_registry_free(m->files);
    if (m->store_dir && !m->journal) { /* the journal's store outlives the master */
        int rc = em__rmtree(m->store_dir);
        if (rc) EM_LOG(EM_LOG_WARN, "master", "cannot remove %s: %s", m->store_dir, em_errmsg());
    }
    pthread_cond_destroy(&m->cv);
    pthread_cond_destroy(&m->intake_cv);
    pthread_mutex_destroy(&m->mu);
    em__mjournal_close(m->journal);
    em__free(m->store_dir);
    em__free(m->secret);
    em__free(m->local_dir);
    em__free(m->url);
    em__free(m);
}
