/* Private to the master's state (master_state.c, master_drivers.c): the outbox, the lost list
 * of dead workers, and the hooks by which the worker events and the scheduling pass of
 * master_state.c reach the driver table of master_drivers.c. Nothing else includes this.
 * Thread rule: as em__mstate (one thread at a time per state).
 */
#ifndef EMBER_DEPLOY_MASTER_STATE_INT_H
#define EMBER_DEPLOY_MASTER_STATE_INT_H

#include "deploy/master_state.h"

/* Queues action a (fields copied; strings may be NULL). conn NULL: nobody to tell, dropped. */
void em__mstate_push(em__mstate *st, const em__maction *a);
/* "<prefix>-YYYYMMDDHHMMSS-NNNN" (local time of wall_ms) into out (at least 64 bytes). */
void em__mstate_make_id(char *out, size_t cap, const char *prefix, int64_t wall_ms, int number);
/* Remembers on dead worker w an executor (app_id, exec_id) or a driver (driver: app_id is the
 * driver's id, exec_id -1) that it may still run if it comes back. */
void em__mworker_remember_lost(em_mworker *w, const char *app_id, int exec_id, bool driver);

/* Queues a journal op when st->journaling (id copied; NULL for EM_MJ_IDS). */
void em__mstate_journal(em__mstate *st, int kind, const char *id, bool remove);
/* The ALIVE worker registered on connection conn, or NULL. */
em_mworker *em__mworkers_by_conn(em__mworkers *t, void *conn);

/* master_drivers.c */
/* Places the drivers waiting for a worker (the first step of em__mstate_schedule). */
void em__mstate_schedule_drivers(em__mstate *st, int64_t now_ms);
/* 1 when a RELAUNCHING driver's back-off is over and it waits for a placement. */
bool em__mstate_drivers_due(const em__mstate *st, int64_t now_ms);
/* After workers were declared DEAD: their drivers are relaunched (supervised), KILLED (a kill
 * was asked) or end in ERROR, and are remembered as lost on the worker. */
void em__mstate_drivers_worker_died(em__mstate *st, int64_t now_ms);
/* Worker w registered again: KILL_DRIVER again for the drivers on it that are to be killed. */
void em__mstate_drivers_worker_back(em__mstate *st, const em_mworker *w);
/* Driver d, recovered from the journal, is reported by worker w (state SUBMITTED or RUNNING):
 * placed there again, holding its cores and memory. */
void em__mstate_adopt_driver(em__mstate *st, em_mdriver *d, em_mworker *w, int state,
                             int64_t now_ms);
/* The end of a recovery: every driver still `recovered` (no worker reported it) is relaunched
 * (supervised), KILLED (a kill was asked) or ends in ERROR. */
void em__mstate_drivers_recovery_done(em__mstate *st, int64_t now_ms);
/* Frees the driver table. */
void em__mstate_drivers_free(em__mstate *st);

#endif
