/* The output commit coordinator (Spark's OutputCommitCoordinator): decides, on the driver, which
 * task attempt of a partition may commit its output (rename its temporary file into the job's
 * staging directory, rdd/output.c), so that retries and speculative attempts never duplicate or
 * lose a partition. Pure state, no networking: local tasks call it directly (task_runner.c),
 * executors' tasks through ASK_COMMIT / COMMIT_DECISION answered by the cluster backend.
 *
 * Rules, per (stage id, partition), across all attempts of the stage:
 *   - the first attempt to ask is authorised; every other attempt is denied;
 *   - an attempt that ended in failure is never authorised (it may still run: a lost executor);
 *   - if the authorised attempt fails, the authorisation is released: the next asker gets it;
 *   - once the authorised attempt succeeded the partition is committed: final, also for later
 *     attempts of the stage (a stage attempt resubmitted after fetch failures);
 *   - after em__commit_stage_ended every ask for the stage is denied.
 *
 * Thread rule: any thread; the coordinator has its own mutex.
 */
#ifndef EMBER_SCHEDULER_COMMIT_H
#define EMBER_SCHEDULER_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct em_commit_coordinator em_commit_coordinator;

/* NULL when out of memory. */
em_commit_coordinator *em__commit_new(void);
/* NULL is a no-op. */
void em__commit_free(em_commit_coordinator *c);

/* May task task_id (of stage_id, stage attempt stage_attempt) commit partition `partition`?
 * true: it is now the partition's authorised committer (asking again says true again). Denials
 * are logged at INFO. Out of memory: false. */
bool em__commit_can_commit(em_commit_coordinator *c, int stage_id, int stage_attempt, int partition,
                           int64_t task_id);

/* The DAG scheduler saw task task_id of stage_id, partition `partition`, end (c NULL: no-op). A
 * success of the authorised attempt makes the commit final; a failure of it releases the
 * authorisation; a failure of any attempt bars it from committing later. Other ends change nothing.
 */
void em__commit_task_ended(em_commit_coordinator *c, int stage_id, int partition, int64_t task_id,
                           bool succeeded);

/* The stage finished (or was abandoned): its state is dropped and later asks are denied. */
void em__commit_stage_ended(em_commit_coordinator *c, int stage_id);

#endif
