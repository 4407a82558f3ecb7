/* The master's cluster-mode drivers (ember submit --deploy-mode cluster): the driver table of
 * em__mstate, in the same pure-table style as master_state.c (the clock passed in, the
 * messages to send queued as actions; unit tests use a fake clock). A driver holds cores and
 * memory (ember.driver.cores / ember.driver.memory) of the worker it runs on, like an executor.
 * Owned by the master daemon (master.c, under its mutex) and the unit tests; one thread at a
 * time. The master keeps the binary in its own store (master.c), so a driver can be launched
 * and relaunched long after ember submit has gone.
 *
 * Driver lifecycle (Spark's DriverState; each arrow names its function):
 *
 *  em__mstate_submit_driver
 *  ------------------------> SUBMITTED (waiting)
 *                                |  em__mstate_schedule_drivers: a worker with room:
 *                                v  LAUNCH_DRIVER to it (placed: its cores and memory held)
 *                            SUBMITTED (placed) ---worker: RUNNING----> RUNNING
 *                                |                                       |
 *       worker reports (em__mstate_driver_state), placed or RUNNING:     |
 *         FINISHED (exit 0) ---------------------------------------------+--> FINISHED
 *         ERROR (could not start: fetch, spawn) -------------------------+--> ERROR
 *         FAILED (exit != 0, signal)  supervised and no kill asked ------+--> RELAUNCHING (a)
 *                                     otherwise -------------------------+--> FAILED
 *         KILLED                      kill asked, or not supervised -----+--> KILLED
 *                                     supervised, no kill asked (its ----+--> RELAUNCHING (b)
 *                                     worker stopped)
 *       its worker declared DEAD (em__mstate_check -> _drivers_worker_died):
 *                                     kill asked ------------------------+--> KILLED
 *                                     supervised ------------------------+--> RELAUNCHING (b)
 *                                     otherwise -------------------------+--> ERROR
 *
 *   RELAUNCHING (waiting until relaunch_at_ms) --em__mstate_schedule_drivers (called by the
 *   timer's em__mstate_check once due)--> RELAUNCHING (placed) --worker: RUNNING--> RUNNING ...
 *   (a) back-off: EM_MASTER_DRIVER_BACKOFF_MIN_MS doubling per failure in a row up to _MAX_MS;
 *       a driver that had run EM_MASTER_DRIVER_STABLE_MS counts as a first failure again.
 *   (b) not the driver's fault: relaunched at once, the failure count unchanged. After a KILLED
 *       nobody asked for (its worker is stopping), not on that worker for the next
 *       EM_MASTER_DRIVER_BACKOFF_MIN_MS: another worker with room, or that one after the wait.
 *
 *   em__mstate_kill_driver: a waiting driver (SUBMITTED or RELAUNCHING, not placed) ends
 *   KILLED at once; a placed one gets KILL_DRIVER (resent when its worker registers again)
 *   and ends when the worker reports KILLED (SIGTERM, then SIGKILL after the grace period).
 *
 * Recovery (em__mstate_recover): a driver the journal had launched comes back `recovered`
 * (state as journaled, holding no resources). The worker that reports it (WORKER_DRIVER, or a
 * state report it queued while the master was away) gets it back: placed there, its state as
 * reported (em__mstate_adopt_driver; KILL_DRIVER again when a kill was asked). One no worker
 * reported when the recovery completes (em__mstate_drivers_recovery_done) is treated like one
 * whose worker died: RELAUNCHING (supervised), KILLED (a kill was asked) or ERROR. Waiting ones
 * (SUBMITTED, RELAUNCHING) wait for the recovery's end to be placed.
 *
 * A worker that comes back from DEAD is sent KILL_DRIVER for the drivers it ran at its death
 * (they were relaunched elsewhere or ended). Ended drivers keep their entry (state, worker,
 * exit code, message) for ember submit --status until EM_MASTER_RETAINED_DRIVERS newer ones
 * have ended. Ids "driver-YYYYMMDDHHMMSS-NNNN", never reused by one master.
 */
#include "deploy/file_server.h"
#include "deploy/master_state.h"
#include "deploy/master_state_int.h"
#include "net/proto.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

bool em__driver_state_final(int state)
{
    return state == EM_DRIVER_FINISHED || state == EM_DRIVER_KILLED || state == EM_DRIVER_FAILED ||
           state == EM_DRIVER_ERROR;
}

static void free_strv(char **v, int n)
{
    for (int i = 0; i < n; i++) em__free(v[i]);
    em__free(v);
}

void em__mdriver_free(em_mdriver *d)
{
    if (!d) return;
    free_strv(d->args, d->num_args);
    free_strv(d->env, d->num_env);
    em__free(d->id);
    em__free(d->name);
    em__free(d->binary_hash);
    em__free(d->worker_id);
    em__free(d->avoid_worker);
    em__free(d->message);
    em__free(d);
}

static void driver_free(em_mdriver *d)
{
    em__mdriver_free(d);
}

void em__mstate_drivers_free(em__mstate *st)
{
    for (size_t i = 0; i < st->ndrivers; i++) driver_free(st->drivers[i]);
    em__free(st->drivers);
    st->drivers = NULL;
    st->ndrivers = st->capdrivers = 0;
}

em_mdriver *em__mstate_find_driver(em__mstate *st, const char *driver_id)
{
    for (size_t i = 0; i < st->ndrivers; i++)
        if (!strcmp(st->drivers[i]->id, driver_id)) return st->drivers[i];
    return NULL;
}

/* Drops the oldest ended drivers beyond EM_MASTER_RETAINED_DRIVERS. */
static void trim_ended(em__mstate *st)
{
    size_t ended = 0;
    for (size_t i = 0; i < st->ndrivers; i++)
        ended += em__driver_state_final(st->drivers[i]->state);
    for (size_t i = 0; i < st->ndrivers && ended > EM_MASTER_RETAINED_DRIVERS;) {
        if (!em__driver_state_final(st->drivers[i]->state)) {
            i++;
            continue;
        }
        driver_free(st->drivers[i]);
        memmove(&st->drivers[i], &st->drivers[i + 1], (st->ndrivers - i - 1) * sizeof *st->drivers);
        st->ndrivers--;
        ended--;
    }
}

/* A copy of n strings (NULL entries refused by the caller). NULL on out of memory. */
static char **copy_strv(const char *const *v, int n)
{
    char **out = em__calloc((size_t)(n > 0 ? n : 1), sizeof *out);
    for (int i = 0; out && i < n; i++)
        if (!(out[i] = em__strdup(v[i]))) {
            free_strv(out, i);
            return NULL;
        }
    return out;
}

static void set_message(em_mdriver *d, const char *message)
{
    char *m = em__strdup(message ? message : "");
    if (!m) return; /* keeps the previous words */
    em__free(d->message);
    d->message = m;
}

int em__mstate_submit_driver(em__mstate *st, const em__driver_request *req, int64_t now_ms,
                             int64_t wall_ms, em_mdriver **out)
{
    *out = NULL;
    if (req->cores < 1 || req->memory_mb < 1)
        return em__set_error(EM_EINVAL,
                             "driver request: %d cores and %llu MiB (both must be at least 1)",
                             req->cores, (unsigned long long)req->memory_mb);
    if (!req->binary_hash || !em_file_hash_valid(req->binary_hash))
        return em__set_error(EM_EINVAL,
                             "driver request: binary hash '%s' is not a hex SHA-256 (64 lower-case "
                             "hex digits)",
                             req->binary_hash ? req->binary_hash : "");
    if (req->num_args < 0 || req->num_env < 0 || (req->num_args && !req->args) ||
        (req->num_env && !req->env))
        return em__set_error(EM_EINVAL, "driver request: bad argument or environment list");
    for (int i = 0; i < req->num_args; i++)
        if (!req->args[i])
            return em__set_error(EM_EINVAL, "driver request: argument %d is NULL", i);
    const char *name = "ember-app";
    for (int i = 0; i < req->num_env; i++) {
        const char *e = req->env[i];
        if (!e || !strchr(e, '=') || e[0] == '=')
            return em__set_error(
                EM_EINVAL, "driver request: environment entry '%s' is not NAME=value", e ? e : "");
        if (!strncmp(e, "EMBER_APP_NAME=", 15) && e[15]) name = e + 15;
    }
    trim_ended(st);
    if (st->ndrivers == st->capdrivers) {
        size_t cap = st->capdrivers ? 2 * st->capdrivers : 8;
        em_mdriver **v = em__realloc(st->drivers, cap * sizeof *v);
        if (!v) return em__set_error(EM_ENOMEM, "out of memory");
        st->drivers = v;
        st->capdrivers = cap;
    }
    em_mdriver *d = em__calloc(1, sizeof *d);
    if (!d) return em__set_error(EM_ENOMEM, "out of memory");
    char id[64];
    em__mstate_make_id(id, sizeof id, "driver", wall_ms, st->next_driver_number);
    d->id = em__strdup(id);
    d->name = em__strdup(name);
    d->binary_hash = em__strdup(req->binary_hash);
    d->args = copy_strv(req->args, req->num_args);
    d->num_args = d->args ? req->num_args : 0;
    d->env = copy_strv(req->env, req->num_env);
    d->num_env = d->env ? req->num_env : 0;
    d->message = em__strdup("waiting for a worker");
    if (!d->id || !d->name || !d->binary_hash || !d->args || !d->env || !d->message) {
        driver_free(d);
        return em__set_error(EM_ENOMEM, "out of memory");
    }
    d->cores = req->cores;
    d->memory_mb = req->memory_mb;
    d->supervise = req->supervise;
    d->state = EM_DRIVER_SUBMITTED;
    d->submit_ms = now_ms;
    st->drivers[st->ndrivers++] = d;
    st->next_driver_number++;
    em__mstate_journal(st, EM_MJ_IDS, NULL, false);
    em__mstate_journal(st, EM_MJ_DRIVER, d->id, false);
    EM_LOG(EM_LOG_INFO, "master",
           "submitted driver %s (%s): %d cores, %llu MiB, binary %s, %d arguments%s", d->id,
           d->name, d->cores, (unsigned long long)d->memory_mb, d->binary_hash, d->num_args,
           d->supervise ? ", supervised" : "");
    *out = d;
    em__mstate_schedule(st, now_ms);
    return 0;
}

/* Gives placed driver d's cores and memory back to its worker. */
static void unplace(em__mstate *st, em_mdriver *d)
{
    if (!d->placed) return;
    em_mworker *w = em__mworkers_find(&st->workers, d->worker_id);
    if (w) {
        w->cores_used = EM_MAX(w->cores_used - d->cores, 0);
        w->memory_used_mb = w->memory_used_mb > d->memory_mb ? w->memory_used_mb - d->memory_mb : 0;
    }
    d->placed = false;
}

static void end_driver(em__mstate *st, em_mdriver *d, int state, int exit_code, const char *message,
                       int64_t now_ms)
{
    unplace(st, d);
    d->state = state;
    d->exit_code = exit_code;
    d->end_ms = now_ms;
    set_message(d, message);
    em__mstate_journal(st, EM_MJ_DRIVER, d->id, true);
    EM_LOG(state == EM_DRIVER_FINISHED || state == EM_DRIVER_KILLED ? EM_LOG_INFO : EM_LOG_WARN,
           "master", "driver %s (%s) %s (exit code %d) on worker %s: %s", d->id, d->name,
           em_driver_state_name(state), exit_code, d->worker_id ? d->worker_id : "-",
           message && *message ? message : "-");
}

/* Supervised driver d is to run again: RELAUNCHING, placed again by the scheduling pass once
 * relaunch_at_ms has come. at_once: not the driver's fault (its worker was lost or stopped);
 * avoid_worker: its worker is stopping, so not there for a while. */
static void relaunch(em__mstate *st, em_mdriver *d, bool at_once, bool avoid_worker, int exit_code,
                     const char *message, int64_t now_ms)
{
    unplace(st, d);
    em__free(d->avoid_worker);
    d->avoid_worker = avoid_worker && d->worker_id ? em__strdup(d->worker_id) : NULL;
    d->avoid_until_ms = now_ms + EM_MASTER_DRIVER_BACKOFF_MIN_MS;
    int64_t delay = 0;
    if (!at_once) {
        bool stable = d->running_ms > 0 && now_ms - d->running_ms >= EM_MASTER_DRIVER_STABLE_MS;
        d->failures = stable ? 1 : d->failures + 1;
        delay = EM_MASTER_DRIVER_BACKOFF_MIN_MS;
        for (int i = 1; i < d->failures && delay < EM_MASTER_DRIVER_BACKOFF_MAX_MS; i++) delay *= 2;
        delay = EM_MIN(delay, (int64_t)EM_MASTER_DRIVER_BACKOFF_MAX_MS);
    }
    d->state = EM_DRIVER_RELAUNCHING;
    d->exit_code = exit_code;
    d->relaunch_at_ms = now_ms + delay;
    set_message(d, message);
    em__mstate_journal(st, EM_MJ_DRIVER, d->id, false);
    EM_LOG(EM_LOG_WARN, "master",
           "driver %s (%s) is supervised: relaunching it in %lld ms (exit code %d on worker %s: "
           "%s)",
           d->id, d->name, (long long)delay, exit_code, d->worker_id ? d->worker_id : "-",
           message && *message ? message : "-");
}

int em__mstate_driver_state(em__mstate *st, void *from, const char *driver_id, int state,
                            int exit_code, const char *message, int64_t now_ms)
{
    if (state != EM_DRIVER_RUNNING && state != EM_DRIVER_FINISHED && state != EM_DRIVER_FAILED &&
        state != EM_DRIVER_KILLED && state != EM_DRIVER_ERROR)
        return em__set_error(EM_EINVAL, "driver %s: a worker cannot report state %d", driver_id,
                             state);
    em_mdriver *d = em__mstate_find_driver(st, driver_id);
    if (d && d->recovered && !d->placed) {
        /* A report its worker queued while the master was away (e.g. it FINISHED then). */
        em_mworker *rw = from ? em__mworkers_by_conn(&st->workers, from) : NULL;
        if (rw) em__mstate_adopt_driver(st, d, rw, EM_DRIVER_RUNNING, now_ms);
    }
    if (!d || !d->placed)
        return em__set_error(EM_ENOENT, "state %s of %s driver %s", em_driver_state_name(state),
                             !d                                 ? "unknown"
                             : em__driver_state_final(d->state) ? "ended"
                                                                : "unlaunched",
                             driver_id);
    em_mworker *w = em__mworkers_find(&st->workers, d->worker_id);
    if (from && (!w || w->conn != from))
        return em__set_error(EM_EACCES,
                             "state of driver %s from a connection that is not its worker %s's",
                             driver_id, d->worker_id);
    const char *msg = message && *message ? message : "-";
    switch (state) {
    case EM_DRIVER_RUNNING:
        d->state = EM_DRIVER_RUNNING;
        d->running_ms = now_ms;
        set_message(d, message);
        em__mstate_journal(st, EM_MJ_DRIVER, d->id, false);
        EM_LOG(EM_LOG_INFO, "master", "driver %s (%s) RUNNING on worker %s: %s", d->id, d->name,
               d->worker_id, msg);
        return 0;
    case EM_DRIVER_FAILED:
        if (d->supervise && !d->kill_wanted)
            relaunch(st, d, false, false, exit_code, message, now_ms);
        else
            end_driver(st, d, EM_DRIVER_FAILED, exit_code, message, now_ms);
        break;
    case EM_DRIVER_KILLED:
        if (d->supervise && !d->kill_wanted)
            relaunch(st, d, true, true, exit_code, message, now_ms);
        else
            end_driver(st, d, EM_DRIVER_KILLED, exit_code, message, now_ms);
        break;
    default: /* FINISHED, ERROR */
        end_driver(st, d, state, exit_code, message, now_ms);
        break;
    }
    em__mstate_schedule(st, now_ms);
    return 0;
}

int em__mstate_kill_driver(em__mstate *st, const char *driver_id, int64_t now_ms)
{
    em_mdriver *d = em__mstate_find_driver(st, driver_id);
    if (!d) return em__set_error(EM_ENOENT, "no driver %s on this master", driver_id);
    if (em__driver_state_final(d->state))
        return em__set_error(EM_ESTATE, "driver %s already ended: %s (exit code %d)", driver_id,
                             em_driver_state_name(d->state), d->exit_code);
    if (!d->placed) {
        end_driver(st, d, EM_DRIVER_KILLED, 0,
                   "killed on request before it was launched (ember submit --kill)", now_ms);
        return 1;
    }
    d->kill_wanted = true;
    em__mstate_journal(st, EM_MJ_DRIVER, d->id, false);
    em_mworker *w = em__mworkers_find(&st->workers, d->worker_id);
    EM_LOG(EM_LOG_INFO, "master", "killing driver %s (%s) on worker %s on request", d->id, d->name,
           d->worker_id);
    em__mstate_push(st, &(em__maction){.type = EM_MSG_KILL_DRIVER,
                                       .conn = w && w->connected ? w->conn : NULL,
                                       .driver_id = d->id});
    return 0;
}

void em__mstate_drivers_worker_back(em__mstate *st, const em_mworker *w)
{
    for (size_t i = 0; i < st->ndrivers; i++) {
        em_mdriver *d = st->drivers[i];
        if (d->placed && d->kill_wanted && !strcmp(d->worker_id, w->id))
            em__mstate_push(
                st,
                &(em__maction){.type = EM_MSG_KILL_DRIVER, .conn = w->conn, .driver_id = d->id});
    }
}

void em__mstate_drivers_worker_died(em__mstate *st, int64_t now_ms)
{
    for (size_t i = 0; i < st->ndrivers; i++) {
        em_mdriver *d = st->drivers[i];
        if (!d->placed) continue;
        em_mworker *w = em__mworkers_find(&st->workers, d->worker_id);
        if (w && w->state != EM_WORKER_DEAD) continue;
        char msg[512];
        snprintf(msg, sizeof msg, "its worker %s (%s) was lost: no heartbeat for %lld ms",
                 d->worker_id, w ? w->host : "?", w ? (long long)(now_ms - w->last_seen_ms) : 0LL);
        if (w) em__mworker_remember_lost(w, d->id, -1, true);
        if (d->kill_wanted)
            end_driver(st, d, EM_DRIVER_KILLED, 0, msg, now_ms);
        else if (d->supervise)
            relaunch(st, d, true, false, 0, msg, now_ms);
        else
            end_driver(st, d, EM_DRIVER_ERROR, 0, msg, now_ms);
    }
}

static bool waiting(const em_mdriver *d, int64_t now_ms)
{
    return !d->placed && !d->recovered &&
           (d->state == EM_DRIVER_SUBMITTED ||
            (d->state == EM_DRIVER_RELAUNCHING && d->relaunch_at_ms <= now_ms));
}

bool em__mstate_drivers_due(const em__mstate *st, int64_t now_ms)
{
    for (size_t i = 0; i < st->ndrivers; i++) {
        const em_mdriver *d = st->drivers[i];
        if (d->state == EM_DRIVER_RELAUNCHING && waiting(d, now_ms)) return true;
    }
    return false;
}

/* The worker for d: ALIVE, connected, with d's cores and memory free, not the one d avoids for
 * now; the most free cores, then the most free memory, then the first registered. NULL when
 * none has room. */
static em_mworker *pick_worker(em__mstate *st, const em_mdriver *d, int64_t now_ms)
{
    em_mworker *best = NULL;
    int best_cores = 0;
    uint64_t best_mem = 0;
    for (size_t i = 0; i < st->workers.n; i++) {
        em_mworker *w = &st->workers.v[i];
        int free_cores = w->cores - w->cores_used;
        uint64_t free_mem = w->memory_mb > w->memory_used_mb ? w->memory_mb - w->memory_used_mb : 0;
        if (w->state != EM_WORKER_ALIVE || !w->connected || free_cores < d->cores ||
            free_mem < d->memory_mb)
            continue;
        if (d->avoid_worker && now_ms < d->avoid_until_ms && !strcmp(w->id, d->avoid_worker))
            continue;
        if (!best || free_cores > best_cores || (free_cores == best_cores && free_mem > best_mem)) {
            best = w;
            best_cores = free_cores;
            best_mem = free_mem;
        }
    }
    return best;
}

void em__mstate_schedule_drivers(em__mstate *st, int64_t now_ms)
{
    for (size_t i = 0; i < st->ndrivers; i++) {
        em_mdriver *d = st->drivers[i];
        if (!waiting(d, now_ms)) continue;
        em_mworker *w = pick_worker(st, d, now_ms);
        if (!w) continue;
        char *wid = em__strdup(w->id);
        if (!wid) {
            EM_LOG(EM_LOG_ERROR, "master", "out of memory launching driver %s", d->id);
            continue;
        }
        em__free(d->worker_id);
        d->worker_id = wid;
        d->placed = true;
        d->launches++;
        d->launch_ms = now_ms;
        d->running_ms = 0;
        w->cores_used += d->cores;
        w->memory_used_mb += d->memory_mb;
        set_message(d, "launched, not yet running");
        em__mstate_journal(st, EM_MJ_DRIVER, d->id, false);
        EM_LOG(EM_LOG_INFO, "master",
               "launching driver %s (%s) on worker %s (%s): %d cores, %llu MiB%s", d->id, d->name,
               w->id, w->host, d->cores, (unsigned long long)d->memory_mb,
               d->launches > 1 ? " (relaunch)" : "");
        em__mstate_push(st, &(em__maction){.type = EM_MSG_LAUNCH_DRIVER,
                                           .conn = w->conn,
                                           .driver = d,
                                           .driver_id = d->id,
                                           .cores = d->cores,
                                           .memory_mb = d->memory_mb});
    }
}

void em__mstate_adopt_driver(em__mstate *st, em_mdriver *d, em_mworker *w, int state,
                             int64_t now_ms)
{
    char *wid = em__strdup(w->id);
    if (!wid) {
        EM_LOG(EM_LOG_ERROR, "master", "out of memory recovering driver %s", d->id);
        return;
    }
    em__free(d->worker_id);
    d->worker_id = wid;
    d->placed = true;
    d->recovered = false;
    d->launch_ms = now_ms;
    w->cores_used += d->cores;
    w->memory_used_mb += d->memory_mb;
    if (state == EM_DRIVER_RUNNING) {
        d->state = EM_DRIVER_RUNNING;
        d->running_ms = now_ms;
    } else if (d->state == EM_DRIVER_RUNNING) {
        d->state = EM_DRIVER_SUBMITTED; /* launched, not running yet */
    }
    em__mstate_journal(st, EM_MJ_DRIVER, d->id, false);
    EM_LOG(EM_LOG_INFO, "master", "recovered driver %s (%s): %s on worker %s (%d cores, %llu MiB)",
           d->id, d->name, em_driver_state_name(d->state), w->id, d->cores,
           (unsigned long long)d->memory_mb);
    if (d->kill_wanted)
        em__mstate_push(
            st, &(em__maction){.type = EM_MSG_KILL_DRIVER, .conn = w->conn, .driver_id = d->id});
}

void em__mstate_drivers_recovery_done(em__mstate *st, int64_t now_ms)
{
    for (size_t i = 0; i < st->ndrivers; i++) {
        em_mdriver *d = st->drivers[i];
        if (!d->recovered) continue;
        d->recovered = false;
        char msg[512];
        snprintf(msg, sizeof msg,
                 "no worker reported it after the master's recovery (it ran on worker %s)",
                 d->worker_id ? d->worker_id : "-");
        if (d->kill_wanted)
            end_driver(st, d, EM_DRIVER_KILLED, 0, msg, now_ms);
        else if (d->supervise)
            relaunch(st, d, true, false, 0, msg, now_ms);
        else
            end_driver(st, d, EM_DRIVER_ERROR, 0, msg, now_ms);
    }
}
