/* The foreground loops of the cluster daemons (see daemon_run.h): start, report readiness,
 * wait for SIGINT / SIGTERM (blocked by the caller, so sigwait takes them), stop.
 * Called by src/cli/master_cmd.c, src/cli/worker_cmd.c and src/deploy/launch.c, on the
 * process's main thread. The master waits in sigwait; the worker polls sigtimedwait every
 * 100 ms so that it also notices a registration (to report it) and a refusal by the master.
 */
#include "deploy/daemon_run.h"

#include "deploy/master.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int em__run_master(const em_conf *conf, const char *cmd, const char *host, int port,
                   const sigset_t *stop, em__ready_fn ready, void *arg)
{
    em_master *m = NULL;
    int rc = em_master_start(conf, host, port, &m);
    if (rc) {
        fprintf(stderr, "%s: %s\n", cmd, em_errmsg());
        if (ready) ready(arg, 0, 0, em_errmsg());
        return 1;
    }
    char where[320];
    snprintf(where, sizeof where, "listening on %s:%d", host, em_master_port(m));
    fprintf(stderr, "master %s\n", where);
    if (ready) ready(arg, 1, em_master_port(m), where);
    int sig = 0;
    sigwait(stop, &sig);
    fprintf(stderr, "master stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    em_master_stop(m);
    return 0;
}

int em__run_worker(const em_conf *conf, const char *cmd, const em_worker_opts *o,
                   const sigset_t *stop, int ready_when_registered, em__ready_fn ready, void *arg)
{
    em_worker *w = NULL;
    int rc = em_worker_start(conf, o, &w);
    if (rc) {
        fprintf(stderr, "%s: %s\n", cmd, em_errmsg());
        if (ready) ready(arg, 0, 0, em_errmsg());
        return 1;
    }
    char what[1024];
    snprintf(what, sizeof what, "worker %s starting: master %s, %d cores, %llu MiB, work dir %s",
             em_worker_id(w), o->master_url, o->cores, (unsigned long long)o->memory_mb,
             em_worker_work_dir(w));
    fprintf(stderr, "%s\n", what);
    int reported = 0;
    if (ready && !ready_when_registered) {
        ready(arg, 1, 0, what);
        reported = 1;
    }
    int status = 0;
    for (;;) {
        /* Short waits until the registration is reported (local-cluster start-up waits for
         * it), then 100 ms. */
        struct timespec ts = {0, (ready && !reported ? 2 : 100) * 1000 * 1000};
        int sig = sigtimedwait(stop, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            fprintf(stderr, "worker stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (em_worker_failed(w)) {
            if (ready && !reported) ready(arg, 0, 0, "the master refused the registration");
            status = 1;
            break;
        }
        if (ready && !reported && em_worker_registered(w)) {
            ready(arg, 1, 0, what);
            reported = 1;
        }
    }
    em_worker_stop(w);
    return status;
}
