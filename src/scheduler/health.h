/* The health tracker: which executors and hosts keep failing tasks, and where tasks may
 * therefore not run (Spark's excludeOnFailure: HealthTracker + TaskSetExcludelist). A pure
 * bookkeeping module: no networking, no clock of its own (every call that needs time takes
 * now_ms, any monotonic milliseconds), no logging; the DAG scheduler records failures and
 * stage ends, the cluster backend asks before each placement.
 *
 * Rules (limits from ember.excludeOnFailure.*, Spark's defaults in brackets):
 *   Per stage attempt, from task failures recorded with em__health_task_failed:
 *     task-executor  partition p avoids executor E once p failed there
 *                    task.maxTaskAttemptsPerExecutor [1] times;
 *     task-host      p avoids host H once p failed task.maxTaskAttemptsPerNode [2] times on
 *                    executors of H;
 *     stage-executor the stage attempt avoids E once stage.maxFailedTasksPerExecutor [2]
 *                    different partitions failed on E;
 *     stage-host     the stage attempt avoids H once stage.maxFailedExecutorsPerNode [2]
 *                    executors of H are excluded for it.
 *   Per application, at em__health_stage_finished(succeeded = true) only (failures of stage
 *   attempts that do not succeed never count): each failed partition of the attempt becomes
 *   one failure record of its executor, expiring at its last failure time + timeout [1h];
 *     app-executor   E is excluded until now + timeout once it has
 *                    application.maxFailedTasksPerExecutor [2] unexpired records (they are
 *                    then cleared, as Spark);
 *     app-host       H is excluded until now + timeout once
 *                    application.maxFailedExecutorsPerNode [2] executors of H are.
 *   An exclusion holds while now_ms < until_ms; queries compare lazily, em__health_expire
 *   drops what ended. Only real task failures are recorded: the caller leaves out fetch
 *   failures, kills, commit denials and failures caused by losing the executor.
 *   Disabled (enabled = false): every query allows, recording does nothing.
 *
 * Executor ids are never reused by an application (the master counts them up), so an
 * exclusion of a lost executor keeps counting for its host until it ends.
 *
 * Thread rule: any thread; one internal mutex guards everything. Queries (em__health_check,
 * em__health_check_schedulable) never allocate and cost O(failures recorded), which is small.
 */
#ifndef EMBER_SCHEDULER_HEALTH_H
#define EMBER_SCHEDULER_HEALTH_H

#include <ember/conf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct em__health em__health;

typedef struct em__health_limits {
    bool enabled;
    int task_max_attempts_per_executor;  /* task.maxTaskAttemptsPerExecutor */
    int task_max_attempts_per_node;      /* task.maxTaskAttemptsPerNode */
    int stage_max_failed_tasks_per_exec; /* stage.maxFailedTasksPerExecutor */
    int stage_max_failed_execs_per_node; /* stage.maxFailedExecutorsPerNode */
    int app_max_failed_tasks_per_exec;   /* application.maxFailedTasksPerExecutor */
    int app_max_failed_execs_per_node;   /* application.maxFailedExecutorsPerNode */
    int64_t timeout_ms;                  /* timeout */
    bool kill_excluded;                  /* killExcludedExecutors (for the caller to act on) */
} em__health_limits;

/* Reads the ember.excludeOnFailure.* options of conf into *out. */
void em__health_limits_from_conf(const em_conf *conf, em__health_limits *out);

/* A tracker with these limits (copied). NULL, with a message, on out of memory or when
 * enabled with a limit or the timeout below 1 (EM_EINVAL). */
em__health *em__health_new(const em__health_limits *limits);
/* em__health_new(limits from conf). */
em__health *em__health_new_from_conf(const em_conf *conf);
/* Frees h; NULL is a no-op. */
void em__health_free(em__health *h);
/* The limits in force. */
const em__health_limits *em__health_get_limits(const em__health *h);

/* Why a task may not run somewhere (the first rule that applies, in this order). */
typedef enum em__health_verdict {
    EM__HEALTH_ALLOWED = 0,
    EM__HEALTH_APP_EXECUTOR,
    EM__HEALTH_APP_HOST,
    EM__HEALTH_STAGE_EXECUTOR,
    EM__HEALTH_STAGE_HOST,
    EM__HEALTH_TASK_EXECUTOR,
    EM__HEALTH_TASK_HOST,
} em__health_verdict;
#define EM__HEALTH_BIT(verdict) (1u << (verdict))

/* "executor excluded for the application", ... Never NULL. */
const char *em__health_verdict_str(em__health_verdict v);

/* May partition `partition` of stage attempt (stage, attempt) run on executor exec_id at host
 * now? stage < 0 checks the application level only; partition < 0 skips the task level.
 * Never allocates. */
em__health_verdict em__health_check(em__health *h, int stage, int attempt, int partition,
                                    int exec_id, const char *host, int64_t now_ms);

/* What one recorded failure changed, for the caller's log line. */
typedef struct em__health_failure_event {
    unsigned newly;                   /* EM__HEALTH_BIT(TASK_EXECUTOR | TASK_HOST | STAGE_*) */
    int task_failures_on_executor;    /* this partition, this stage attempt, this executor */
    int task_failures_on_host;        /* this partition, this stage attempt, this host */
    int stage_failed_tasks_on_exec;   /* distinct partitions failed on the executor */
    int stage_excluded_execs_on_host; /* executors of the host excluded for the stage attempt */
} em__health_failure_event;

/* Records that partition failed on exec_id at host (a real task failure). ev may be NULL.
 * 0 or EM_ENOMEM (nothing recorded). */
int em__health_task_failed(em__health *h, int stage, int attempt, int partition, int exec_id,
                           const char *host, int64_t now_ms, em__health_failure_event *ev);

#define EM__HEALTH_HOST_MAX 256
/* One application-level exclusion. */
typedef struct em__health_exclusion {
    int exec_id;                    /* -1: the whole host */
    char host[EM__HEALTH_HOST_MAX]; /* truncated if longer */
    int64_t until_ms;
    int count; /* executor: task failures that excluded it; host: its excluded executors */
} em__health_exclusion;

/* A stage attempt ended (succeeded: all its tasks done; otherwise failed or aborted). On
 * success its per-executor failures are promoted to the application level. Its stage state is
 * forgotten either way (call it for every attempt; unknown attempts are a no-op). New
 * application exclusions go to newly[0..cap) (may be NULL with cap 0); *num_newly (may be
 * NULL) gets how many there were (may exceed cap). 0 or EM_ENOMEM (promotion incomplete). */
int em__health_stage_finished(em__health *h, int stage, int attempt, bool succeeded, int64_t now_ms,
                              em__health_exclusion *newly, size_t cap, size_t *num_newly);

/* The application-level exclusions in force: live executors first, then hosts, into
 * out[0..cap); returns how many there are (may exceed cap). */
size_t em__health_list_excluded(em__health *h, int64_t now_ms, em__health_exclusion *out,
                                size_t cap);

/* Drops exclusions that ended and failure records that expired by now_ms; returns how many
 * exclusions ended. */
int em__health_expire(em__health *h, int64_t now_ms);

/* Executor exec_id is lost: forgets its failure records (stage and application) and drops it
 * from the excluded list; what it already made its host count for stays. */
void em__health_executor_removed(em__health *h, int exec_id);

/* A live executor, for em__health_check_schedulable. */
typedef struct em__health_executor {
    int exec_id;
    const char *host;
} em__health_executor;

/* Spark's "abort if unschedulable": 0 when some executor of live[0..n) may run partition of
 * the stage attempt now (or n == 0: no executor yet, nothing to decide); otherwise EM_EJOB
 * with a message naming the stage, the partition and each executor's exclusion.
 * *num_app_excluded (may be NULL) gets how many of them only application-level exclusions
 * rule out (those end at their timeout, or are replaced when killExcludedExecutors is on: a
 * caller may wait instead of aborting when it is > 0). */
int em__health_check_schedulable(em__health *h, int stage, int attempt, int partition,
                                 const em__health_executor *live, size_t n, int64_t now_ms,
                                 int *num_app_excluded);

#endif
