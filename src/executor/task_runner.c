/* The task runner: computes one task attempt on the calling task thread (see executor.h).
 * It builds the em_task the user functions and the lower layers see, opens the partition's
 * pipeline with em__rdd_iterator, and either feeds a shuffle writer (map task) or the action's
 * result function (result task). Whatever happens, the attempt's execution memory is released
 * and a failure leaves a message naming the task.
 *
 * Kill (cooperative, as Spark's InterruptibleIterator): the iterator of the partition's final
 * RDD is wrapped by kill_iter, which checks the description's kill request (d->kill, set by a
 * backend's kill_task from another thread) before every record, and the request is checked
 * once before the pipeline opens. A killed attempt fails with EM_EKILLED "task killed:
 * <reason>", whatever error the kill caused on its way out. A user function that never returns
 * cannot be killed this way. The check is one atomic load per record.
 *
 * Output commit: the attempt's em_task.can_commit is the description's (an executor process
 * asks the driver; the local backend asks the context's coordinator); see rdd/output.c.
 */
#include "executor/executor.h"

#include "storage/memory.h"
#include "storage/shared.h"
#include <stdio.h>
#include <string.h>

/* ---- kill checks ----------------------------------------------------------------------------- */

typedef struct kill_iter {
    em_iter base;
    em_iter *in; /* owned */
    em_task *t;
} kill_iter;

static int killed_error(em_task *t)
{
    return em__set_error(EM_EKILLED, "task killed: %s",
                         t->kill->reason[0] ? t->kill->reason : "no reason given");
}

static int kill_iter_next(em_iter *it, em_value *out)
{
    kill_iter *k = (kill_iter *)it;
    if (em__task_kill_requested(k->t->kill)) return killed_error(k->t);
    return k->in->next(k->in, out);
}

static void kill_iter_close(em_iter *it)
{
    kill_iter *k = (kill_iter *)it;
    em_iter_close(k->in);
    em__free(k);
}

/* Opens the records of d's partition behind a kill check. */
static int open_partition(em_task *t, em_task_desc *d, em_iter **out)
{
    *out = NULL;
    if (em__task_kill_requested(t->kill)) return killed_error(t);
    em_iter *in = NULL;
    int rc = em__rdd_iterator(d->rdd, d->partition, t, &in);
    if (rc) return rc;
    kill_iter *k = em__malloc(sizeof *k);
    if (!k) {
        em_iter_close(in);
        return em__set_error(EM_ENOMEM, "out of memory opening partition %d", d->partition);
    }
    *k = (kill_iter){{kill_iter_next, kill_iter_close}, in, t};
    *out = &k->base;
    return 0;
}

/* ---- tasks ----------------------------------------------------------------------------------- */

static int run_map_task(em_task *t, em_task_desc *d, const char *local_dir)
{
    em_shuffle_dep *dep = d->dep;
    em_aggregator agg;
    bool has_agg = em__shuffle_dep_aggregator(dep, &agg) && dep->map_side_combine;
    em_shuffle_write_spec spec = {
        .shuffle_id = dep->shuffle_id,
        .map_id = d->partition,
        .partitioner = em__key_partitioner(dep->partitioner),
        .map_side_combine = has_agg ? &agg : NULL,
        .dir = local_dir,
    };
    em_iter *in = NULL;
    int rc = open_partition(t, d, &in);
    if (rc) return rc;
    em_shuffle_writer *w = NULL;
    rc = em_shuffle_writer_open(&spec, t, &w);
    em_value rec;
    while (!rc && (rc = in->next(in, &rec)) == EM_ROW) {
        rc = em_shuffle_writer_add(w, rec);
        /* The writer checks the pair shape; say which record was wrong. */
        if (rc == EM_EFORMAT) em__require_pair(t, rec, "a shuffle");
    }
    em_iter_close(in);
    if (rc == EM_DONE) return em_shuffle_writer_commit(w, &d->map_status);
    if (w) em_shuffle_writer_abort(w);
    return rc;
}

void em__run_task(em_context *ctx, em_task_desc *d)
{
    int64_t start = em__now_ns();
    em_task t = {0};
    t.task_id = d->task_id;
    t.stage_id = d->stage_id;
    t.stage_attempt = d->stage_attempt;
    t.partition = d->partition;
    t.attempt = d->attempt;
    t.conf = ctx->conf;
    t.memory = ctx->memory;
    t.local_dir = ctx->local_dir;
    t.exec_id = ctx->exec_id;
    t.fetcher = ctx->fetcher;
    t.shared = ctx->shared;
    t.can_commit = d->can_commit;
    t.commit_arg = d->commit_arg;
    t.kill = &d->kill;
    em__clear_error();
    int rc;
    if (d->dep) {
        rc = run_map_task(&t, d, ctx->local_dir);
    } else {
        em_iter *in = NULL;
        rc = open_partition(&t, d, &in);
        if (!rc) {
            rc = d->fn(&t, in, &d->result, d->fn_arg);
            em_iter_close(in);
        }
    }
    /* Whatever the kill made fail on the way out (a wrapped error, a user function's own), the
     * attempt was killed. */
    if (rc && em__task_kill_requested(t.kill)) {
        t.failed = 0;
        t.fetch_failed.set = false; /* not a reason to recompute map outputs */
        rc = killed_error(&t);
    }
    em_memory_release_all_execution(ctx->memory, d->task_id);
    /* Accumulator updates travel only with a success; a failed attempt's are dropped. */
    em_buf *updates = &d->acc_updates, dropped = EM_BUF_INIT;
    if (em__acc_updates_take(&t, rc ? &dropped : updates) && !rc)
        rc = em__set_error(EM_ENOMEM, "out of memory encoding accumulator updates");
    em_buf_free(&dropped);
    d->status = rc;
    if (rc) {
        const char *msg = t.failed ? t.errmsg : em_errmsg();
        if (!msg[0]) msg = em_strerror(rc);
        d->errmsg = em__strdup(msg);
    }
    d->metrics = t.metrics;
    d->num_cached = t.num_cached;
    if (rc && t.fetch_failed.set) {
        d->fetch_failed = true;
        d->ff_shuffle = t.fetch_failed.shuffle_id;
        d->ff_map = t.fetch_failed.map_id;
        d->ff_exec = t.fetch_failed.exec_id;
    }
    memcpy(d->cached, t.cached, sizeof d->cached);
    d->run_ns = em__now_ns() - start;
}

void em__task_desc_free(em_task_desc *d)
{
    if (!d) return;
    em_buf_free(&d->result);
    em_buf_free(&d->acc_updates);
    em__free(d->errmsg);
    em_map_status_clear(&d->map_status);
    em__free(d);
}
