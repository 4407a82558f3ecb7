/* `ember master`: runs the standalone cluster manager's master in the foreground until SIGINT
 * or SIGTERM, logging worker registrations and deaths to stderr (INFO level unless
 * EMBER_LOG_LEVEL says otherwise). With --daemon it runs in the background instead (daemon.c):
 * the command returns once the master listens (0) or failed to (1), and the daemon logs to
 * <log-dir>/ember-<user>-master-<host>.log and removes its pid file when it stops.
 * With --conf ember.deploy.recoveryMode=FILESYSTEM --conf ember.deploy.recoveryDirectory=D it
 * journals its state in D and, restarted on D, recovers it (docs/cluster-howto.md).
 *
 *   ember master [--host H] [--port P] [--daemon [--log-dir D] [--pid-dir D]] [--conf k=v]...
 *   ember master --status ember://HOST:PORT[,HOST2:PORT2]   the state of a running master as
 *                                  JSON on stdout (the first master of the list that answers)
 *
 * Main thread of the `ember` command: blocks the two signals before any thread starts, then
 * runs the foreground loop of src/deploy/daemon_run.c (em__run_master: sigwait). Exit status 0 on a
 * clean stop, 1 when the master cannot start (the message names the address), 2 on a usage error.
 * --status: 0 with the JSON printed, 1 when no master answers.
 */
#include "cli.h"
#include "daemon.h"

#include "deploy/daemon_run.h"
#include "deploy/master.h"
#include "deploy/submit_client.h"

#include <ember/ember.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void master_usage(FILE *f)
{
    fprintf(f, "usage: ember master [--host HOST] [--port PORT] [--daemon] [--conf key=value]...\n"
               "Runs the standalone master in the foreground (stop with Ctrl-C or SIGTERM).\n"
               "  --host HOST   address to listen on (default 0.0.0.0)\n"
               "  --port PORT   port to listen on (default ember.master.port = 7077; 0 = any)\n"
               "  --status URL  print the state of the running master(s) of URL as JSON\n"
               "  --daemon      run in the background; returns once the master listens\n"
               "  --log-dir D   daemon log directory (default $EMBER_LOG_DIR, else ./logs)\n"
               "  --pid-dir D   daemon pid file directory (default $EMBER_PID_DIR, else /tmp)\n");
}

/* ember master --status URL */
static int print_status(const em_conf *conf, const char *url)
{
    em_submit_client *c = NULL;
    char *json = NULL;
    int rc = em_submit_client_connect(conf, url, NULL, &c);
    if (!rc) rc = em_submit_client_master_state(c, &json);
    if (rc)
        fprintf(stderr, "ember master: --status %s: %s\n", url, em_errmsg());
    else
        printf("%s\n", json);
    em__free(json);
    em_submit_client_free(c);
    return rc ? 1 : 0;
}

static void ready_cb(void *arg, int ok, int port, const char *msg)
{
    (void)port;
    em__daemon_ready(arg, ok, msg);
}

int em_cli_master(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            master_usage(stdout);
            return 0;
        }
    int rc;
    em_conf *conf = em__cli_conf("master", &argc, argv, &rc);
    if (!conf) return rc;
    const char *host = "0.0.0.0", *status_url = NULL;
    int port = (int)em_conf_get_int(conf, "ember.master.port");
    em__daemon_opts dopt = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int dr = em__daemon_opt(&dopt, "ember master", argc, argv, &i);
        if (dr < 0) {
            em_conf_free(conf);
            return 2;
        }
        if (dr > 0) continue;
        if (!strcmp(a, "--status") && i + 1 < argc) {
            status_url = argv[++i];
            continue;
        }
        if ((!strcmp(a, "--host") || !strcmp(a, "--port")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "--host")) {
                host = v;
                continue;
            }
            char *end = NULL;
            errno = 0;
            long p = strtol(v, &end, 10);
            if (!*v || *end || errno || p < 0 || p > 65535) {
                fprintf(stderr, "ember master: --port '%s' is not a port number (0-65535)\n", v);
                em_conf_free(conf);
                return 2;
            }
            port = (int)p;
        } else {
            fprintf(stderr, "ember master: %s '%s'\n",
                    !strcmp(a, "--host") || !strcmp(a, "--port") || !strcmp(a, "--status")
                        ? "missing value after"
                        : "unexpected argument",
                    a);
            master_usage(stderr);
            em_conf_free(conf);
            return 2;
        }
    }
    if (status_url) {
        char *h = NULL;
        int p = 0;
        if (em_master_url_parse(status_url, &h, &p)) {
            fprintf(stderr, "ember master: --status: %s\n", em_errmsg());
            em_conf_free(conf);
            return 2;
        }
        em__free(h);
        rc = print_status(conf, status_url);
        em_conf_free(conf);
        return rc;
    }
    em__daemon dm = {.ready_fd = -1};
    sigset_t set;
    em__daemon_begin(&dopt, "ember master", "master", &dm, &set);

    rc = em__run_master(conf, "ember master", host, port, &set, ready_cb, &dm);
    em_conf_free(conf);
    em__daemon_finish(&dm);
    return rc;
}
