/* Fuzz target: the configuration file parser (em_conf_load_file, include/ember/conf.h) and,
 * through it, every option's value parser (sizes, durations, integers, doubles, booleans,
 * strings, with their bounds). The input is the file's content; it is written to a memfd and
 * loaded through /proc/self/fd/N, so the real file path runs.
 *
 * Properties: the result is 0, EM_ECONF or EM_EIO; a refusal has a message (it names the file,
 * line and option); an accepted file leaves a configuration whose every typed read works and
 * whose table prints; loading the same file twice gives the same result.
 *
 * Seeds: realistic defaults files (both "key value" and "key=value" forms, comments, blank
 * lines, spaces around '='), each option family with good and bad values, an unknown option.
 */
#include "fuzz.h"

#include <ember/ember.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const char fuzz_target_name[] = "conf";

static int memfd = -1;
static char path[64];
static FILE *devnull;

void fuzz_init(void)
{
    memfd = memfd_create("ember-fuzz-conf", 0);
    devnull = fopen("/dev/null", "w");
    if (memfd < 0 || !devnull) {
        perror("fuzz conf: memfd_create or /dev/null");
        exit(2);
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
}

static int load(em_conf **out)
{
    em_conf *conf = em_conf_new();
    fuzz_assert(conf, "out of memory");
    int rc = em_conf_load_file(conf, path);
    fuzz_assert(rc == 0 || rc == EM_ECONF || rc == EM_EIO, "load returned %d (%s)", rc,
                em_errmsg());
    if (rc) fuzz_assert(em_errmsg()[0] != '\0', "refused without a message");
    *out = conf;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size) {
        perror("fuzz conf: writing the memfd");
        exit(2);
    }
    em_conf *conf;
    int rc = load(&conf);
    if (rc == 0) {
        /* Every read of the options the engine uses at start-up. */
        (void)em_conf_get_str(conf, "ember.master");
        (void)em_conf_get_str(conf, "ember.authenticate.secret");
        (void)em_conf_get_bytes(conf, "ember.executor.memory");
        (void)em_conf_get_bytes(conf, "ember.rpc.message.maxSize");
        (void)em_conf_get_ms(conf, "ember.network.timeout");
        (void)em_conf_get_int(conf, "ember.task.maxFailures");
        (void)em_conf_get_double(conf, "ember.memory.fraction");
        (void)em_conf_get_bool(conf, "ember.deploy.spreadOut");
        em_conf_print_table(conf, devnull);
        em_conf *copy = em_conf_clone(conf);
        fuzz_assert(copy, "clone failed");
        em_conf_free(copy);
    }
    em_conf *again;
    int rc2 = load(&again);
    fuzz_assert(rc == rc2, "loading the same file twice gave %d then %d", rc, rc2);
    em_conf_free(again);
    em_conf_free(conf);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------------------------
 */

static const char *const seeds[] = {
    "# Ember defaults\n"
    "ember.master                 local[4]\n"
    "ember.executor.memory        2g\n"
    "ember.task.maxFailures       8\n"
    "\n"
    "ember.network.timeout=30s\n"
    "ember.memory.fraction = 0.5\n"
    "ember.deploy.spreadOut\tfalse\n",
    "ember.authenticate.secret s3cr3t with spaces  \n"
    "ember.rpc.message.maxSize 1k\n"
    "ember.executor.heartbeatInterval 250ms\n"
    "ember.worker.timeout 1min\n",
    "ember.executor.memory 0\n",
    "ember.executor.memory 99999999999999999999g\n",
    "ember.task.maxFailures -1\n",
    "ember.memory.fraction 1.5\n",
    "ember.deploy.spreadOut maybe\n",
    "ember.network.timeout 10 parsecs\n",
    "ember.no.such.option 1\n",
    "   \t# only a comment\n\n\n",
    "=value without a key\n",
    "ember.master\n",
    "ember.master=local[2]\r\nember.app.name=crlf\r\n",
    "ember.local.dir /tmp/x\nember.local.dir /tmp/y\nember.default.parallelism 3\n",
};

void fuzz_make_seeds(void)
{
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        fuzz_seed(seeds[i], strlen(seeds[i]));
}
