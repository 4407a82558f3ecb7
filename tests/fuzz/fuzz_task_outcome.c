/* Fuzz target: the task outcome decoder (em__task_outcome_decode, src/executor/task_outcome.h),
 * what a driver reads from an executor's STATUS_UPDATE.
 *
 * Properties: the result is 0, EM_EFORMAT (with a message) or EM_ENOMEM; a failed decode leaves
 * the description's runner fields cleared; a decoded outcome re-encodes, that encoding decodes,
 * and encoding it again gives the same bytes (encode . decode is idempotent).
 *
 * Seeds: outcomes made by em__task_outcome_encode — a failed task with a message, a result task
 * with and without bytes, map tasks with a few and with many reducers, accumulator updates.
 */
#include "fuzz.h"

#include "executor/task_outcome.h"

#include <string.h>

const char fuzz_target_name[] = "task_outcome";

void fuzz_init(void) {}

/* Any non-NULL dependency marks a map task for the encoder. */
static em_shuffle_dep some_dep;

static void encode(const em_task_desc *d, const char *dir, em_buf *out)
{
    em_task_desc copy = *d;
    copy.dep = d->map_status.block_sizes ? &some_dep : NULL;
    int rc = em__task_outcome_encode(&copy, dir, out);
    fuzz_assert(rc == 0, "encoding a decoded outcome failed: %s", em_errmsg());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    em_task_desc *d = em__calloc(1, sizeof *d);
    fuzz_assert(d, "out of memory");
    char *dir = NULL;
    int rc = em__task_outcome_decode(data, size, d, &dir);
    if (rc != 0) {
        fuzz_assert(rc == EM_EFORMAT || rc == EM_ENOMEM, "decode returned %d", rc);
        fuzz_assert(em_errmsg()[0] != '\0', "refused without a message");
        fuzz_assert(!d->errmsg && !d->result.len && !d->acc_updates.len &&
                        !d->map_status.block_sizes && !dir,
                    "a failed decode left fields set");
        em__task_desc_free(d);
        return 0;
    }
    fuzz_assert(d->status <= 0, "decoded a positive status %d", d->status);
    em_buf once = EM_BUF_INIT, twice = EM_BUF_INIT;
    encode(d, dir, &once);
    em_task_desc *d2 = em__calloc(1, sizeof *d2);
    fuzz_assert(d2, "out of memory");
    char *dir2 = NULL;
    rc = em__task_outcome_decode(once.data, once.len, d2, &dir2);
    fuzz_assert(rc == 0, "a re-encoded outcome does not decode: %s", em_errmsg());
    encode(d2, dir2, &twice);
    fuzz_assert(once.len == twice.len && !memcmp(once.data, twice.data, once.len),
                "encode(decode(x)) is not stable (%zu then %zu bytes)", once.len, twice.len);
    em_buf_free(&once);
    em_buf_free(&twice);
    em__free(dir);
    em__free(dir2);
    em__task_desc_free(d);
    em__task_desc_free(d2);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------------------------
 */

static void seed(const em_task_desc *d, const char *dir)
{
    em_buf b = EM_BUF_INIT;
    fuzz_assert(em__task_outcome_encode(d, dir, &b) == 0, "encode: %s", em_errmsg());
    fuzz_seed(b.data, b.len);
    em_buf_free(&b);
}

void fuzz_make_seeds(void)
{
    em_task_desc d;
    memset(&d, 0, sizeof d);
    d.run_ns = 123456789;
    d.metrics.records_read = 10;
    d.metrics.bytes_read = 4096;
    d.metrics.peak_execution_memory = 1 << 20;

    d.status = EM_EIO; /* failed */
    d.errmsg = "cannot read input file 'in.txt': No such file or directory";
    seed(&d, NULL);
    d.status = 0;
    d.errmsg = NULL;

    seed(&d, NULL); /* result task, empty result */
    em_buf_append(&d.result, "\x04\x02hello\x00", 8);
    em_buf_append(&d.acc_updates, "\x01\x00\x00\x00\x07", 5);
    seed(&d, NULL);
    em_buf_free(&d.result);
    em_buf_free(&d.acc_updates);

    int64_t sizes[3] = {0, 17, 4096};
    d.dep = &some_dep; /* map task */
    d.map_status = (em_map_status){.shuffle_id = 2,
                                   .map_id = 5,
                                   .num_reducers = 3,
                                   .block_sizes = sizes,
                                   .records_written = 99,
                                   .bytes_written = 4113};
    seed(&d, "/tmp/work/app-1/0/blockmgr");
    int64_t many[64];
    for (int i = 0; i < 64; i++) many[i] = i * 1000;
    d.map_status.num_reducers = 64;
    d.map_status.block_sizes = many;
    seed(&d, "");
}
