/* The part of every fuzz target that is not about its decoder (see fuzz.h): start-up (quiet
 * logging, seed-writing mode, the target's fuzz_init), seed files and a temporary directory.
 * LLVMFuzzerInitialize is called once, before any input, by libFuzzer's main or by
 * replay.c. One thread.
 */
#include "fuzz.h"

#include "base/base.h"

#include <string.h>

static const char *seed_dir;
static int seed_count;
static char tmpdir[4096];

static void remove_tmpdir(void)
{
    if (tmpdir[0]) em__rmtree(tmpdir);
}

const char *fuzz_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/ember-fuzz-%s-XXXXXX", base && *base ? base : "/tmp",
                 fuzz_target_name);
        if (!mkdtemp(tmpdir)) {
            perror("fuzz: mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

void fuzz_seed(const void *data, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/seed-%03d", seed_dir, seed_count++);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "fuzz %s: cannot write %s\n", fuzz_target_name, path);
        exit(2);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* Decoders log what they refuse; thousands of refusals a second would drown the report. */
    if (!getenv("EMBER_LOG_LEVEL")) em__log_level = EM_LOG_ERROR - 1;
    fuzz_init();
    const char *dir = getenv("EMBER_FUZZ_SEEDS");
    if (dir && *dir) {
        if (em__mkdirs(dir) != 0) {
            fprintf(stderr, "fuzz %s: cannot create %s: %s\n", fuzz_target_name, dir, em_errmsg());
            exit(2);
        }
        seed_dir = dir;
        fuzz_make_seeds();
        fprintf(stderr, "fuzz %s: %d seeds in %s\n", fuzz_target_name, seed_count, dir);
        exit(0);
    }
    return 0;
}
