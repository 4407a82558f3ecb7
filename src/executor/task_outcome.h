/* The outcome of a task attempt run in an executor process, as carried back to the driver in
 * a STATUS_UPDATE message: status and failure message, run time, metrics, and either the
 * result task's bytes or the map task's status (block sizes) with the directory holding the
 * map output. Layout (integers little-endian) in docs/formats.md, "Task outcome".
 *
 * Thread rule: any thread; pure functions over buffers.
 */
#ifndef EMBER_EXECUTOR_TASK_OUTCOME_H
#define EMBER_EXECUTOR_TASK_OUTCOME_H

#include "executor/executor.h"

/* Appends the outcome of d (status, errmsg, run_ns, metrics, result or map_status) and dir
 * (the executor's shuffle directory; used for map tasks) to out. 0 or EM_ENOMEM. */
int em__task_outcome_encode(const em_task_desc *d, const char *dir, em_buf *out);

/* Fills d's status, errmsg, run_ns, metrics, result / map_status from an encoded outcome;
 * *dir gets an em__malloc'd copy of the directory (NULL for a result task). 0 or EM_EFORMAT
 * (truncated, oversized or inconsistent input; message says which field), EM_ENOMEM. On
 * failure d's runner fields are left cleared. */
int em__task_outcome_decode(const uint8_t *p, size_t len, em_task_desc *d, char **dir);

#endif
