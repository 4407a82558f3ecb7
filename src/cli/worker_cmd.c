/* `ember worker`: runs a standalone worker in the foreground: registers with the master,
 * heartbeats, reconnects with backoff when the master goes away, runs the executors the master
 * places on it in its work directory; stops on SIGINT / SIGTERM (killing its executors).
 * With --daemon it runs in the background instead (daemon.c): the command returns once the
 * worker has started (registration continues in the background), and the daemon logs to
 * <log-dir>/ember-<user>-worker-<instance>-<host>.log and removes its pid file when it stops.
 *
 *   ember worker --master ember://HOST:PORT[,HOST2:PORT2]... [--cores C] [--memory M] [--host H]
 *                [--work-dir D]
 *                [--conf key=value]... [--daemon [--log-dir D] [--pid-dir D] [--instance N]]
 *
 * Main thread of the `ember` command: blocks the two signals before any thread starts, then
 * runs the foreground loop of src/deploy/daemon_run.c (em__run_worker: polls for a signal
 * while watching for a fatal refusal by the master). Exit status 0
 * on a clean stop, 1 when the master refused the registration or the worker cannot start, 2 on
 * a usage error (including a master URL that does not parse).
 */
#include "cli.h"
#include "daemon.h"

#include "deploy/daemon_run.h"
#include "deploy/master.h"

#include <ember/ember.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void worker_usage(FILE *f)
{
    fprintf(f, "usage: ember worker --master ember://HOST:PORT[,HOST2:PORT2]... [--cores C] "
               "[--memory M] [--host H] [--work-dir D] [--conf key=value]...\n"
               "Runs a standalone worker in the foreground (stop with Ctrl-C or SIGTERM; its\n"
               "executors are killed with it). With several masters it registers with the one\n"
               "that answers, and moves to another when its master is lost; its executors keep\n"
               "running meanwhile.\n"
               "  --cores C    cores offered to applications (default: all of this machine's)\n"
               "  --memory M   memory offered, e.g. 512m or 2g (default 1g)\n"
               "  --host H     address announced to the master; executors bind there\n"
               "               (default: this machine's host name)\n"
               "  --work-dir D binaries cache and executor directories (default\n"
               "               ember.worker.dir, else ./work)\n"
               "  --daemon     run in the background; returns once the worker has started\n"
               "  --log-dir D  daemon log directory (default $EMBER_LOG_DIR, else ./logs)\n"
               "  --pid-dir D  daemon pid file directory (default $EMBER_PID_DIR, else /tmp)\n"
               "  --instance N daemon instance number in the file names (default 1)\n");
}

/* "512m", "2g", "1024" (MiB) -> MiB; 0 on a bad value. */
static uint64_t parse_mib(const char *s)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || errno || end == s || v == 0) return 0;
    if (!*end || !strcasecmp(end, "m") || !strcasecmp(end, "mb")) return v;
    if (!strcasecmp(end, "g") || !strcasecmp(end, "gb")) return v * 1024;
    if (!strcasecmp(end, "t") || !strcasecmp(end, "tb")) return v * 1024 * 1024;
    return 0;
}

static void ready_cb(void *arg, int ok, int port, const char *msg)
{
    (void)port;
    em__daemon_ready(arg, ok, msg);
}

int em_cli_worker(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            worker_usage(stdout);
            return 0;
        }
    int rc;
    em_conf *conf = em__cli_conf("worker", &argc, argv, &rc);
    if (!conf) return rc;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int cores = ncpu > 0 ? (int)ncpu : 1;
    uint64_t memory_mb = 1024;
    const char *whost = NULL, *work_dir = NULL;
    em__daemon_opts dopt = {.instance = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int dr = em__daemon_opt(&dopt, "ember worker", argc, argv, &i);
        if (dr > 0) continue;
        if (dr < 0) {
            em_conf_free(conf);
            return 2;
        }
        int takes_value = !strcmp(a, "--cores") || !strcmp(a, "--memory") || !strcmp(a, "--host") ||
                          !strcmp(a, "--work-dir");
        if (takes_value && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "--host") || !strcmp(a, "--work-dir")) {
                if (*v && !strcmp(a, "--host")) whost = v;
                if (*v && !strcmp(a, "--work-dir")) work_dir = v;
                if (*v) continue;
                fprintf(stderr, "ember worker: %s needs a non-empty value\n", a);
            } else if (!strcmp(a, "--memory")) {
                memory_mb = parse_mib(v);
                if (memory_mb) continue;
                fprintf(stderr, "ember worker: --memory '%s' is not a size like 512m or 2g\n", v);
            } else {
                char *end = NULL;
                errno = 0;
                long c = strtol(v, &end, 10);
                if (*v && !*end && !errno && c >= 1 && c <= 65536) {
                    cores = (int)c;
                    continue;
                }
                fprintf(stderr, "ember worker: --cores '%s' is not a number of cores >= 1\n", v);
            }
        } else {
            fprintf(stderr, "ember worker: %s '%s'\n",
                    takes_value ? "missing value after" : "unexpected argument", a);
            worker_usage(stderr);
        }
        em_conf_free(conf);
        return 2;
    }
    if (!em_conf_is_set(conf, "ember.master")) {
        fprintf(stderr, "ember worker: --master ember://HOST:PORT is required\n");
        worker_usage(stderr);
        em_conf_free(conf);
        return 2;
    }
    char *mhost = NULL;
    int mport = 0;
    const char *url = em_conf_get_str(conf, "ember.master");
    if (em_master_url_parse(url, &mhost, &mport)) {
        fprintf(stderr, "ember worker: %s\n", em_errmsg());
        em_conf_free(conf);
        return 2;
    }
    em__free(mhost);
    em__daemon dm = {.ready_fd = -1};
    sigset_t set;
    em__daemon_begin(&dopt, "ember worker", "worker", &dm, &set);

    em_worker_opts wo = {.master_url = url,
                         .cores = cores,
                         .memory_mb = memory_mb,
                         .host = whost,
                         .work_dir = work_dir};
    rc = em__run_worker(conf, "ember worker", &wo, &set, 0, ready_cb, &dm);
    em__daemon_finish(&dm);
    em_conf_free(conf);
    return rc;
}
