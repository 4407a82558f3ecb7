/* Fuzz target: the record decoder (src/record): em_value_parse and em_records_from_data over
 * untrusted bytes, then every reader of a value on what was accepted (type, scalars, strings
 * and bytes, count / at / key / val, element iteration, compare, hash, text form).
 *
 * Properties: the values of a sequence tile it exactly; a value compares equal to itself and
 * hashes the same twice; em_value_format's prefix extends to its full text, whose length
 * em_value_fprint prints; em_value_copy_bytes agrees with em_value_str / em_value_bytes;
 * em_value_at(i) is the i-th element of the iteration (key and val the first two of a
 * tuple); comparison of neighbours is
 * antisymmetric; a value re-appended with em_put_value gives the same bytes.
 *
 * Seeds: records built with the em_put_* builders (every type, escapes, special doubles,
 * nesting, a deep list).
 */
#include "fuzz.h"

#include <ember/ember.h>
#include <string.h>

const char fuzz_target_name[] = "records";

static FILE *devnull;

void fuzz_init(void)
{
    devnull = fopen("/dev/null", "w");
    if (!devnull) {
        perror("fuzz records: /dev/null");
        exit(2);
    }
}

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static void check_value(em_value v, int depth)
{
    em_type t = em_value_type(v);
    fuzz_assert(t != EM_TYPE_INVALID, "a parsed value has an invalid type");
    fuzz_assert(em_type_name(t) != NULL, "type %d has no name", (int)t);
    fuzz_assert(em_value_cmp(v, v) == 0 && em_value_eq(v, v), "a value differs from itself");
    fuzz_assert(em_value_hash(v) == em_value_hash(v), "hash is not stable");
    (void)em_value_bool(v);
    (void)em_value_int64(v);
    (void)em_value_double(v);

    char small[16];
    size_t full = em_value_format(v, small, sizeof small);
    size_t cut = full < sizeof small ? full : sizeof small - 1;
    fuzz_assert(small[cut] == '\0', "em_value_format did not terminate its prefix");
    if (full < (1u << 20)) {
        char *buf = malloc(full + 1);
        fuzz_assert(buf, "out of memory");
        fuzz_assert(em_value_format(v, buf, full + 1) == full, "format length changed");
        fuzz_assert(buf[full] == '\0' && !memcmp(buf, small, cut),
                    "the full text does not extend the prefix");
        fuzz_assert(em_value_fprint(v, devnull) == (int)full,
                    "em_value_fprint and em_value_format disagree");
        free(buf);
    }

    if (t == EM_TYPE_STRING || t == EM_TYPE_BYTES) {
        size_t len = 0;
        const void *p = t == EM_TYPE_STRING ? (const void *)em_value_str(v, &len)
                                            : (const void *)em_value_bytes(v, &len);
        fuzz_assert(p != NULL || len == 0, "string or bytes without data");
        uint8_t *copy = malloc(len + 1);
        fuzz_assert(copy, "out of memory");
        fuzz_assert(em_value_copy_bytes(v, copy, len) == len, "copy_bytes length differs");
        fuzz_assert(!len || !memcmp(copy, p, len), "copy_bytes content differs");
        free(copy);
    }

    if (t == EM_TYPE_TUPLE || t == EM_TYPE_LIST) {
        size_t n = em_value_count(v), i = 0;
        em_elems it;
        em_elems_init(&it, v);
        em_value e, prev = {0};
        int rc;
        while ((rc = em_elems_next(&it, &e)) == EM_ROW) {
            fuzz_assert(i < n, "iteration gives more elements than em_value_count (%zu)", n);
            em_value at = em_value_at(v, i);
            fuzz_assert(at.len == e.len && !memcmp(at.data, e.data, e.len),
                        "em_value_at(%zu) differs from the iteration", i);
            if (i == 0 && t == EM_TYPE_TUPLE) {
                em_value k = em_value_key(v);
                fuzz_assert(k.len == e.len && !memcmp(k.data, e.data, e.len), "key differs");
            }
            if (i > 0) {
                fuzz_assert(sign(em_value_cmp(prev, e)) == -sign(em_value_cmp(e, prev)),
                            "comparison is not antisymmetric");
                if (i == 1 && t == EM_TYPE_TUPLE) {
                    em_value val = em_value_val(v);
                    fuzz_assert(val.len == e.len && !memcmp(val.data, e.data, e.len),
                                "val differs");
                }
            }
            if (depth < 64) check_value(e, depth + 1);
            prev = e;
            i++;
        }
        fuzz_assert(rc == EM_DONE, "element iteration failed: %d", rc);
        fuzz_assert(i == n, "iteration gave %zu elements, em_value_count %zu", i, n);
        em_value out_of_range = em_value_at(v, n);
        fuzz_assert(out_of_range.len == 0, "at(count) is not the empty value");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One value at the start. */
    size_t vlen = 0;
    if (em_value_parse(data, size, &vlen) == 0)
        fuzz_assert(vlen > 0 && vlen <= size, "parse gave length %zu of %zu", vlen, size);

    /* The whole input as a sequence of records. */
    em_records *recs = NULL;
    if (em_records_from_data(data, size, &recs) != 0) return 0;
    size_t n = em_records_count(recs), cursor = 0, total = 0, i = 0;
    em_value v, prev = {0};
    em_records *again = em_records_new();
    fuzz_assert(again, "out of memory");
    while (em_records_next(recs, &cursor, &v) == EM_ROW) {
        size_t one = 0;
        fuzz_assert(em_value_parse(v.data, v.len, &one) == 0 && one == v.len,
                    "record %zu does not parse as exactly itself", i);
        em_value at = em_records_at(recs, i);
        fuzz_assert(at.len == v.len && !memcmp(at.data, v.data, v.len),
                    "em_records_at(%zu) differs from the iteration", i);
        check_value(v, 0);
        if (i > 0)
            fuzz_assert(sign(em_value_cmp(prev, v)) == -sign(em_value_cmp(v, prev)),
                        "record comparison is not antisymmetric");
        em_put_value(again, v);
        total += v.len;
        prev = v;
        i++;
    }
    fuzz_assert(i == n, "iterated %zu records of %zu", i, n);
    fuzz_assert(total == size, "records cover %zu of %zu bytes", total, size);
    size_t alen = 0;
    const uint8_t *a = em_records_data(again, &alen);
    fuzz_assert(em_records_error(again) == 0 && alen == size && (!size || !memcmp(a, data, size)),
                "re-appended records differ from the input");
    em_records_free(again);
    em_records_free(recs);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------------------------
 */

static void seed_records(em_records *r)
{
    size_t len = 0;
    const uint8_t *p = em_records_data(r, &len);
    fuzz_seed(p, len);
    em_records_clear(r);
}

void fuzz_make_seeds(void)
{
    em_records *r = em_records_new();
    fuzz_assert(r, "out of memory");
    em_put_null(r);
    em_put_bool(r, true);
    em_put_bool(r, false);
    em_put_int64(r, 0);
    em_put_int64(r, -1);
    em_put_int64(r, INT64_MIN);
    em_put_int64(r, INT64_MAX);
    seed_records(r);
    const double ds[] = {0.0, -0.0, 1.0, -2.5, 1e300, -1e-300, 1.0 / 0.0, -1.0 / 0.0, 0.0 / 0.0};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) em_put_double(r, ds[i]);
    seed_records(r);
    em_put_cstr(r, "hello");
    em_put_str(r, "a\0b\0\0c", 6);
    em_put_str(r, "", 0);
    em_put_bytes(r, "\xff\x00\x01\x00\xfe", 5);
    em_put_str(r, "\xff\xfe", 2);
    seed_records(r);
    em_put_tuple_begin(r); /* (word, 1) */
    em_put_cstr(r, "word");
    em_put_int64(r, 1);
    em_put_end(r);
    em_put_tuple_begin(r); /* (k, [v1, v2, (x, null)]) */
    em_put_int64(r, 42);
    em_put_list_begin(r);
    em_put_cstr(r, "v1");
    em_put_double(r, 0.5);
    em_put_tuple_begin(r);
    em_put_bytes(r, "x\0", 2);
    em_put_null(r);
    em_put_end(r);
    em_put_end(r);
    em_put_end(r);
    em_put_list_begin(r); /* [] */
    em_put_end(r);
    em_put_tuple_begin(r); /* () */
    em_put_end(r);
    seed_records(r);
    for (int i = 0; i < 40; i++) em_put_list_begin(r); /* deep nesting */
    em_put_int64(r, 7);
    for (int i = 0; i < 40; i++) em_put_end(r);
    seed_records(r);
    em_records_free(r);
}
