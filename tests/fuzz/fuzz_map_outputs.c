/* Fuzz target: the map output table decoder (em_map_outputs_decode_into, src/shuffle/tracker.h),
 * what an executor reads from a STAGE_DEF to find the shuffle blocks a stage reads.
 *
 * Each input is decoded into a fresh tracker and into one that already knows shuffle 0 with 3
 * maps (so a table disagreeing with it must be refused as a whole). Properties: the result is
 * 0 or EM_EFORMAT with a message (EM_ENOMEM allowed); a refused table changes nothing (the
 * pre-filled tracker still has exactly its map 1 output); an accepted table re-encodes, that
 * decodes, and encoding again gives the same bytes; the lookups (missing, locations) work on
 * every shuffle it listed.
 *
 * Inputs declaring more than MAX_FUZZ_MAPS maps in all are skipped. The tracker allocates and
 * walks a per-map array for every declared map (48 bytes each), so one 20-byte table entry
 * declaring the allowed 2^24 maps costs 768 MiB and seconds of work: a known amplification,
 * reported, which would otherwise only slow the search down. (The decoder bounds the sum over
 * a table by 2^24, so a table cannot multiply it.)
 *
 * Seeds: tables made by em_map_outputs_encode from trackers with one and several shuffles,
 * missing outputs, long host and directory names, many reducers.
 */
#include "fuzz.h"

#include "shuffle/tracker.h"

#include <string.h>

/* Tables declaring more maps than this in all are not run (see the head comment). */
#define MAX_FUZZ_MAPS 65536

const char fuzz_target_name[] = "map_outputs";

void fuzz_init(void) {}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Walks a table as far as it is well-formed enough to walk (bounds-checked): the shuffle ids
 * into ids (up to cap; returns how many were stored) and the sum of their declared map counts
 * into *maps. */
static int scan_table(const uint8_t *p, size_t len, int *ids, int cap, uint64_t *maps)
{
    *maps = 0;
    if (len < 8) return 0;
    size_t at = 8;
    uint32_t n = le32(p + 4);
    int k = 0;
    for (uint32_t s = 0; s < n && at + 12 <= len; s++) {
        uint32_t sid = le32(p + at), present = le32(p + at + 8);
        *maps += le32(p + at + 4);
        at += 12;
        if (k < cap) ids[k++] = (int)sid;
        for (uint32_t i = 0; i < present && at + 16 <= len; i++) {
            at += 12;                       /* map id, exec id, port */
            at += 4 + (size_t)le32(p + at); /* host */
            if (at + 8 > len) return k;
            at += 4 + (size_t)le32(p + at); /* dir */
            if (at + 4 > len) return k;
            at += 4 + 8 * (size_t)le32(p + at); /* reducers and their sizes */
        }
    }
    return k;
}

static em_map_output_tracker *prefilled(void)
{
    em_map_output_tracker *tr = em_map_output_tracker_new();
    fuzz_assert(tr, "out of memory");
    fuzz_assert(em_map_outputs_register_shuffle(tr, 0, 3) == 0, "register");
    int64_t *sizes = em__malloc(2 * sizeof *sizes);
    fuzz_assert(sizes, "out of memory");
    sizes[0] = 5, sizes[1] = 6;
    em_map_status st = {.shuffle_id = 0, .map_id = 1, .num_reducers = 2, .block_sizes = sizes};
    em_block_location loc = {.exec_id = 4, .host = "10.0.0.4", .port = 7337, .dir = "/d"};
    fuzz_assert(em_map_outputs_register(tr, 0, 1, &loc, &st) == 0, "register output");
    return tr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int ids[64];
    uint64_t declared;
    int n = scan_table(data, size, ids, 64, &declared);
    if (declared > MAX_FUZZ_MAPS) return 0; /* see the head comment */
    em_map_output_tracker *fresh = em_map_output_tracker_new();
    fuzz_assert(fresh, "out of memory");
    int rc = em_map_outputs_decode_into(fresh, data, size);
    fuzz_assert(rc == 0 || rc == EM_EFORMAT || rc == EM_ENOMEM, "decode returned %d", rc);
    if (rc) fuzz_assert(em_errmsg()[0] != '\0', "refused without a message");

    if (rc == 0) {
        for (int i = 0; i < n; i++) {
            int missing[4];
            fuzz_assert(em_map_outputs_missing(fresh, ids[i], missing, 4) >= 0,
                        "listed shuffle %d unknown after decoding", ids[i]);
            em_map_locations l;
            if (em_map_outputs_locations(fresh, ids[i], 0, &l) == 0) em_map_locations_free(&l);
            (void)em_map_outputs_reducer_bytes(fresh, ids[i], 0);
        }
        em_buf once = EM_BUF_INIT, twice = EM_BUF_INIT;
        fuzz_assert(em_map_outputs_encode(fresh, ids, n, &once) == 0, "re-encode: %s", em_errmsg());
        em_map_output_tracker *again = em_map_output_tracker_new();
        fuzz_assert(again, "out of memory");
        fuzz_assert(em_map_outputs_decode_into(again, once.data, once.len) == 0,
                    "a re-encoded table does not decode: %s", em_errmsg());
        fuzz_assert(em_map_outputs_encode(again, ids, n, &twice) == 0, "encode: %s", em_errmsg());
        fuzz_assert(once.len == twice.len && !memcmp(once.data, twice.data, once.len),
                    "encode(decode(x)) is not stable");
        em_buf_free(&once);
        em_buf_free(&twice);
        em_map_output_tracker_free(again);
    }
    em_map_output_tracker_free(fresh);

    em_map_output_tracker *pre = prefilled();
    if (em_map_outputs_decode_into(pre, data, size) != 0) {
        int missing[3];
        int m = em_map_outputs_missing(pre, 0, missing, 3);
        fuzz_assert(m == 2 && missing[0] == 0 && missing[1] == 2,
                    "a refused table changed the tracker (%d missing)", m);
    }
    em_map_output_tracker_free(pre);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------------------------
 */

static void put(em_map_output_tracker *tr, int shuffle, int map, int reducers, const char *host,
                const char *dir)
{
    int64_t *sizes = em__malloc((size_t)reducers * sizeof *sizes);
    fuzz_assert(sizes, "out of memory");
    for (int r = 0; r < reducers; r++) sizes[r] = (int64_t)r * 37 + map;
    em_map_status st = {
        .shuffle_id = shuffle, .map_id = map, .num_reducers = reducers, .block_sizes = sizes};
    em_block_location loc = {.exec_id = map % 3, .host = host, .port = 40000 + map, .dir = dir};
    fuzz_assert(em_map_outputs_register(tr, shuffle, map, &loc, &st) == 0, "register: %s",
                em_errmsg());
}

static void seed(em_map_output_tracker *tr, const int *ids, int n)
{
    em_buf b = EM_BUF_INIT;
    fuzz_assert(em_map_outputs_encode(tr, ids, n, &b) == 0, "encode: %s", em_errmsg());
    fuzz_seed(b.data, b.len);
    em_buf_free(&b);
}

void fuzz_make_seeds(void)
{
    em_map_output_tracker *tr = em_map_output_tracker_new();
    fuzz_assert(tr, "out of memory");
    em_map_outputs_register_shuffle(tr, 0, 2);
    put(tr, 0, 0, 2, "127.0.0.1", "/tmp/w1/app/0/blockmgr");
    put(tr, 0, 1, 2, "127.0.0.1", "/tmp/w2/app/1/blockmgr");
    em_map_outputs_register_shuffle(tr, 1, 4); /* two of four present */
    put(tr, 1, 1, 3, "host-a", "/a");
    put(tr, 1, 3, 3, "", "");
    em_map_outputs_register_shuffle(tr, 7, 1);
    char host[300], dir[600];
    memset(host, 'h', sizeof host - 1), host[sizeof host - 1] = '\0';
    memset(dir, 'd', sizeof dir - 1), dir[sizeof dir - 1] = '\0';
    put(tr, 7, 0, 200, host, dir);
    em_map_outputs_register_shuffle(tr, 9, 0);
    seed(tr, (int[]){0}, 1);
    seed(tr, (int[]){1}, 1);
    seed(tr, (int[]){0, 1, 7, 9}, 4);
    seed(tr, (int[]){9}, 1);
    seed(tr, NULL, 0);
    em_map_output_tracker_free(tr);
}
