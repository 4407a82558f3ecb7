/* The local scheduler backend (master local[N]): N task threads in the driver process that
 * take task descriptions from one FIFO queue, run them with em__run_task and post the
 * completion to the DAG scheduler. This process is the executor: the context's memory manager,
 * block store and local directory serve the tasks.
 *
 * Tasks ask to commit their output (em_task.can_commit) straight to the context's commit
 * coordinator (ctx->commits). kill_task sets the kill request of a running task (a queued one
 * is left alone: the DAG scheduler cancels it).
 *
 * Thread rule: launch / cancel_queued from the scheduler's thread, kill_task from any thread;
 * the queue and the running table are guarded by lb->mu; stop joins the threads (no task may
 * be queued or running then).
 */
#include "scheduler/commit.h"
#include "scheduler/scheduler.h"

#include <pthread.h>

typedef struct local_backend {
    em_backend base;
    em_context *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    em_task_desc *head, *tail;
    bool stopping;
    int num_threads;
    pthread_t *threads;
    em_task_desc **running; /* per task thread: the task it runs, or NULL (under mu) */
    int next_slot;          /* the next starting thread's index in running */
} local_backend;

/* em_task.can_commit in local mode: the driver's coordinator, called directly. */
static int local_can_commit(em_task *t)
{
    if (em__commit_can_commit(t->commit_arg, t->stage_id, t->stage_attempt, t->partition,
                              t->task_id))
        return 0;
    return em__set_error(EM_ECOMMITDENIED,
                         "commit denied: partition %d of stage %d was committed by another "
                         "attempt (TID %lld, attempt %d, stage attempt %d)",
                         t->partition, t->stage_id, (long long)t->task_id, t->attempt,
                         t->stage_attempt);
}

static void *task_thread(void *arg)
{
    local_backend *lb = arg;
    pthread_mutex_lock(&lb->mu);
    int slot = lb->next_slot++; /* its entry in lb->running */
    pthread_mutex_unlock(&lb->mu);
    for (;;) {
        pthread_mutex_lock(&lb->mu);
        while (!lb->head && !lb->stopping) pthread_cond_wait(&lb->cv, &lb->mu);
        if (!lb->head) {
            pthread_mutex_unlock(&lb->mu);
            return NULL;
        }
        em_task_desc *d = lb->head;
        lb->head = d->next;
        if (!lb->head) lb->tail = NULL;
        lb->running[slot] = d;
        pthread_mutex_unlock(&lb->mu);
        d->next = NULL;
        if (lb->ctx->commits && !d->can_commit) {
            d->can_commit = local_can_commit;
            d->commit_arg = lb->ctx->commits;
        }
        em__run_task(lb->ctx, d);
        pthread_mutex_lock(&lb->mu);
        lb->running[slot] = NULL; /* before the scheduler may free d */
        pthread_mutex_unlock(&lb->mu);
        em__sched_task_done(lb->ctx->sched, d);
    }
}

static void local_launch(em_backend *b, em_task_desc *d)
{
    local_backend *lb = (local_backend *)b;
    d->next = NULL;
    pthread_mutex_lock(&lb->mu);
    if (lb->tail)
        lb->tail->next = d;
    else
        lb->head = d;
    lb->tail = d;
    pthread_cond_signal(&lb->cv);
    pthread_mutex_unlock(&lb->mu);
}

static int local_cancel_queued(em_backend *b, int job_id)
{
    local_backend *lb = (local_backend *)b;
    pthread_mutex_lock(&lb->mu);
    em_task_desc *drop = em__task_queue_take(&lb->head, &lb->tail, job_id, -1, 0);
    pthread_mutex_unlock(&lb->mu);
    int n = 0;
    for (em_task_desc *next; drop; drop = next, n++) {
        next = drop->next;
        em__task_desc_free(drop);
    }
    return n;
}

/* Queued tasks of a stage attempt a fetch failure ended: posted as killed, not run. */
static void local_cancel_stage(em_backend *b, int stage_id, int stage_attempt)
{
    local_backend *lb = (local_backend *)b;
    pthread_mutex_lock(&lb->mu);
    em_task_desc *drop = em__task_queue_take(&lb->head, &lb->tail, -1, stage_id, stage_attempt);
    pthread_mutex_unlock(&lb->mu);
    for (em_task_desc *next; drop; drop = next) {
        next = drop->next;
        drop->next = NULL;
        drop->status = EM_EKILLED;
        drop->errmsg = em__strdup("not launched: its stage attempt was cancelled");
        em__sched_task_done(lb->ctx->sched, drop);
    }
}

static void local_kill_task(em_backend *b, int64_t task_id, const char *reason)
{
    local_backend *lb = (local_backend *)b;
    pthread_mutex_lock(&lb->mu);
    for (int i = 0; i < lb->num_threads; i++)
        if (lb->running[i] && lb->running[i]->task_id == task_id) {
            EM_LOG(EM_LOG_INFO, "local", "killing task %lld: %s", (long long)task_id, reason);
            em__task_kill(&lb->running[i]->kill, reason);
        }
    pthread_mutex_unlock(&lb->mu);
}

static void local_stop(em_backend *b)
{
    local_backend *lb = (local_backend *)b;
    pthread_mutex_lock(&lb->mu);
    lb->stopping = true;
    pthread_cond_broadcast(&lb->cv);
    pthread_mutex_unlock(&lb->mu);
    for (int i = 0; i < lb->num_threads; i++) pthread_join(lb->threads[i], NULL);
    em__free(lb->threads);
    em__free(lb->running);
    pthread_cond_destroy(&lb->cv);
    pthread_mutex_destroy(&lb->mu);
    em__free(lb);
}

em_backend *em__local_backend_new(em_context *ctx, int num_threads)
{
    local_backend *lb = em__calloc(1, sizeof *lb);
    if (!lb) return NULL;
    lb->base = (em_backend){.launch = local_launch,
                            .cancel_queued = local_cancel_queued,
                            .cancel_stage = local_cancel_stage,
                            .stop = local_stop,
                            .total_slots = num_threads,
                            .kill_task = local_kill_task};
    lb->ctx = ctx;
    lb->num_threads = num_threads;
    pthread_mutex_init(&lb->mu, NULL);
    pthread_cond_init(&lb->cv, NULL);
    lb->threads = em__calloc((size_t)num_threads, sizeof *lb->threads);
    lb->running = em__calloc((size_t)num_threads, sizeof *lb->running);
    if (!lb->threads || !lb->running) {
        em__free(lb->threads);
        em__free(lb->running);
        pthread_cond_destroy(&lb->cv);
        pthread_mutex_destroy(&lb->mu);
        em__free(lb);
        return NULL;
    }
    for (int i = 0; i < num_threads; i++) {
        if (pthread_create(&lb->threads[i], NULL, task_thread, lb) != 0) {
            lb->num_threads = i;
            local_stop(&lb->base);
            em__set_error(EM_ENOMEM, "cannot start task thread %d", i);
            return NULL;
        }
    }
    return &lb->base;
}
