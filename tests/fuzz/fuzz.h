/* Shared by the fuzz targets of tests/fuzz (one fuzz_<name>.c per decoder). Each target is
 * built two ways from the same source:
 *
 *   - with libFuzzer (`make fuzz`: clang -fsanitize=fuzzer,address,undefined, everything
 *     instrumented; libFuzzer's main explores from the seed corpus for FUZZ_SECONDS);
 *   - with replay.c (every ordinary build, gcc or clang, ASan or not): a replay runner that
 *     feeds files and deterministic mutations of them to the target, registered with ctest as
 *     the fuzz regression run (tests/fuzz/regress.sh).
 *
 * A target defines LLVMFuzzerTestOneInput and the two hooks below. Seeds are made by the
 * target binary itself (EMBER_FUZZ_SEEDS=DIR ./fuzz_x writes them and exits) because some
 * inputs are only valid in the binary that made them: a stage's function references carry the
 * build id of the executable (base/symbols.h).
 *
 * A finding is a crash or a sanitizer report; a target also abort()s (fuzz_assert) when a
 * property that must hold for any input fails, e.g. a decoded message re-encodes to the same
 * bytes. Thread rule: one thread (libFuzzer's and fuzz_main's).
 */
#ifndef EMBER_TESTS_FUZZ_H
#define EMBER_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- defined by each target ------------------------------------------------------------------ */
/* The target's name ("proto"), for messages. */
extern const char fuzz_target_name[];
/* One-time set-up before the first input (a context, a temporary file). May be empty. */
void fuzz_init(void);
/* Writes the target's seed inputs with fuzz_seed. */
void fuzz_make_seeds(void);

/* ---- provided by common.c --------------------------------------------------------------- */
/* Writes one seed file (numbered) into the seed directory. */
void fuzz_seed(const void *data, size_t len);
/* A temporary directory for the target's files (created once, removed at exit). */
const char *fuzz_tmpdir(void);

/* A property that must hold for every input: prints and aborts, so libFuzzer keeps the input. */
#define fuzz_assert(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz %s: property failed at %s:%d: %s: ", fuzz_target_name, __FILE__, \
                    __LINE__, #cond);                                                              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
