/* Fuzz target: the master's recovery journal decoder (em__mjournal_decode,
 * src/deploy/master_journal.h), what a restarted master reads from its recovery directory.
 *
 * Input: byte 0 selects the mode. Even: the rest is a whole record file, decoded as it is (the
 * frame checks: length, magic, version, kind, checksum). Odd: byte 1 is the kind (1-4) and the
 * rest a payload, framed here with a valid header and checksum, so that the payload decoder is
 * reached by every input.
 * Properties: the result is 0, EM_ECORRUPT (with a message) or EM_ENOMEM, and a failure adds
 * nothing; a decoded record re-encodes, that encoding decodes, and encoding it again gives the
 * same bytes (encode . decode is idempotent).
 *
 * Seeds: records made by the encoders (a worker, an application with an environment, a driver
 * launched and one waiting, the id counters), in both modes.
 */
#include "fuzz.h"

#include "deploy/master_journal.h"

#include <string.h>
#include <xxhash.h>

const char fuzz_target_name[] = "journal";

void fuzz_init(void) {}

/* Records in r; the counters count once set (they start at -1 here). */
static int count(const em__mrecovered *r)
{
    return (int)(r->nworkers + r->napps + r->ndrivers) + (r->next_app_number >= 0);
}

static void empty(em__mrecovered *r)
{
    memset(r, 0, sizeof *r);
    r->next_app_number = r->next_driver_number = -1;
}

/* The encoding of the one record in r. */
static void encode(const em__mrecovered *r, em_buf *out)
{
    int rc;
    if (r->nworkers)
        rc = em__mjournal_encode_worker(&r->workers[0], out);
    else if (r->napps)
        rc = em__mjournal_encode_app(r->apps[0], out);
    else if (r->ndrivers)
        rc = em__mjournal_encode_driver(r->drivers[0], out);
    else
        rc = em__mjournal_encode_ids(r->next_app_number, r->next_driver_number, out);
    fuzz_assert(rc == 0, "encoding a decoded record failed: %s", em_errmsg());
}

static void frame(int kind, const uint8_t *p, size_t n, em_buf *out)
{
    uint8_t head[12] = {'E', 'M', 'J', 'R', 1, (uint8_t)kind, 0, 0};
    for (int i = 0; i < 4; i++) head[8 + i] = (uint8_t)(n >> (8 * i));
    em_buf_append(out, head, sizeof head);
    if (n) em_buf_append(out, p, n);
    uint64_t sum = XXH3_64bits(out->data, out->len);
    uint8_t tail[8];
    for (int i = 0; i < 8; i++) tail[i] = (uint8_t)(sum >> (8 * i));
    em_buf_append(out, tail, sizeof tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    em_buf framed = EM_BUF_INIT;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        if (size < 2) return 0;
        frame(1 + data[1] % 4, data + 2, size - 2, &framed);
        in = framed.data;
        n = framed.len;
    }
    em__mrecovered r;
    empty(&r);
    int rc = em__mjournal_decode(in, n, NULL, &r);
    if (rc != 0) {
        fuzz_assert(rc == EM_ECORRUPT || rc == EM_ENOMEM, "decode returned %d", rc);
        fuzz_assert(em_errmsg()[0] != '\0', "refused without a message");
        fuzz_assert(count(&r) == 0, "a failed decode added a record");
        em_buf_free(&framed);
        return 0;
    }
    fuzz_assert(count(&r) == 1, "one record decoded into %d", count(&r));
    em_buf once = EM_BUF_INIT, twice = EM_BUF_INIT;
    encode(&r, &once);
    em__mrecovered r2;
    empty(&r2);
    rc = em__mjournal_decode(once.data, once.len, NULL, &r2);
    fuzz_assert(rc == 0, "a re-encoded record does not decode: %s", em_errmsg());
    encode(&r2, &twice);
    fuzz_assert(once.len == twice.len && !memcmp(once.data, twice.data, once.len),
                "encode(decode(x)) is not stable (%zu then %zu bytes)", once.len, twice.len);
    em_buf_free(&once);
    em_buf_free(&twice);
    em_buf_free(&framed);
    em__mrecovered_free(&r);
    em__mrecovered_free(&r2);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------------------------
 */
static void seed(const em_buf *rec)
{
    em_buf b = EM_BUF_INIT;
    em_buf_append(&b, "\0", 1); /* whole record */
    em_buf_append(&b, rec->data, rec->len);
    fuzz_seed(b.data, b.len);
    em_buf_reset(&b);
    uint8_t mode[2] = {1, rec->data[5]}; /* payload only */
    em_buf_append(&b, mode, 2);
    em_buf_append(&b, rec->data + 12, rec->len - 20);
    fuzz_seed(b.data, b.len);
    em_buf_free(&b);
}

void fuzz_make_seeds(void)
{
    static const char hash[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    em_buf b = EM_BUF_INIT;
    em_mworker w = {
        .id = "worker-20240101-node-1-42", .host = "10.0.0.5", .cores = 16, .memory_mb = 65536};
    em__mjournal_encode_worker(&w, &b);
    seed(&b);
    em_buf_reset(&b);
    char *env[] = {"EMBER_LOG_LEVEL=info", "A=b"};
    em_mapp a = {.id = "app-20240101120000-0007",
                 .name = "wordcount",
                 .driver_url = "10.0.0.1:40000",
                 .binary_hash = (char *)hash,
                 .env = env,
                 .num_env = 2,
                 .cores_max = 12,
                 .executor_cores = 3,
                 .executor_memory_mb = 2048,
                 .next_exec_id = 5,
                 .executors_launched = 5};
    em__mjournal_encode_app(&a, &b);
    seed(&b);
    em_buf_reset(&b);
    char *args[] = {"in", "out"};
    em_mdriver d = {.id = "driver-20240101120000-0003",
                    .name = "wc",
                    .binary_hash = (char *)hash,
                    .args = args,
                    .num_args = 2,
                    .cores = 2,
                    .memory_mb = 512,
                    .supervise = true,
                    .state = 2,
                    .worker_id = "worker-x",
                    .placed = true,
                    .launches = 3,
                    .exit_code = -9,
                    .message = "relaunched"};
    em__mjournal_encode_driver(&d, &b);
    seed(&b);
    em_buf_reset(&b);
    d.placed = false;
    d.worker_id = NULL;
    d.state = 1;
    em__mjournal_encode_driver(&d, &b);
    seed(&b);
    em_buf_reset(&b);
    em__mjournal_encode_ids(8, 5, &b);
    seed(&b);
    em_buf_free(&b);
}
