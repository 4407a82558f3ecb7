/* The backends' task queues (FIFOs of em_task_desc linked by next, head and tail): taking out
 * the tasks of a job or of a stage attempt, for cancel_queued and cancel_stage. No locking:
 * the caller holds its queue's lock. */
#include "scheduler/scheduler.h"

em_task_desc *em__task_queue_take(em_task_desc **head, em_task_desc **tail, int job_id,
                                  int stage_id, int stage_attempt)
{
    em_task_desc *taken = NULL, **taken_tail = &taken;
    em_task_desc **pp = head;
    *tail = NULL;
    while (*pp) {
        em_task_desc *d = *pp;
        bool match = stage_id < 0 ? d->job_id == job_id
                                  : d->stage_id == stage_id && d->stage_attempt == stage_attempt;
        if (match) {
            *pp = d->next;
            d->next = NULL;
            *taken_tail = d;
            taken_tail = &d->next;
        } else {
            *tail = d;
            pp = &d->next;
        }
    }
    return taken;
}
