/* `ember submit`: runs an application in the style of spark-submit.
 *
 *   ember submit --master URL [--deploy-mode client|cluster] [--name N] [--executor-memory M]
 *                [--executor-cores C] [--total-executor-cores T] [--driver-memory M]
 *                [--driver-cores C] [--conf k=v]... [--properties-file F] [--supervise]
 *                BINARY [ARGS...]
 *   ember submit --master ember://H:P --status DRIVER_ID
 *   ember submit --master ember://H:P --kill DRIVER_ID
 * (an ember:// URL may list several masters, ember://H1:P1,H2:P2: each is tried in turn, and
 * --status / --kill reconnect to them when a master is lost; submit_client.h)
 *
 * Options come before BINARY; everything after it belongs to the application. They map to
 * options of the table (--executor-memory -> ember.executor.memory, --executor-cores ->
 * ember.executor.cores, --total-executor-cores -> ember.cores.max, --driver-* ->
 * ember.driver.*, --deploy-mode -> ember.submit.deployMode, --supervise ->
 * ember.driver.supervise, --master -> ember.master, --name -> ember.app.name); precedence,
 * lowest first: defaults file and environment, --properties-file, --conf, the named options.
 * Every option that ends up set reaches the application as its environment variable
 * EMBER_<NAME> (the conf loader's naming: src/base/conf.c env_name), EMBER_MASTER among them.
 *
 * BINARY must exist, be a regular executable file and be ELF or a #! script (exit 1
 * otherwise, naming the file). Client mode (the default): the driver runs here, execve
 * replacing this process, with any master URL. Cluster mode (ember:// only): the binary is
 * served to the master (submit_client.h), which keeps a copy and runs the driver on a worker;
 * the driver id is printed on stdout once the master accepted it, and the command returns.
 * The secret (ember.authenticate.secret) authenticates this command to the master; it is not
 * sent to the driver, which gets its worker's.
 *
 * Exit status: 0 success (--status: driver found; --kill: driver KILLED); 1 failure (bad
 * binary, master unreachable or refusing, unknown driver, kill not done); 2 usage error (bad
 * or missing option, cluster mode with a master that is not ember://). Main thread.
 */
#include "cli.h"

#include "base/conf_int.h"
#include "deploy/executor_runner.h"
#include "deploy/master.h"
#include "deploy/master_state.h"
#include "deploy/submit_client.h"

#include <ctype.h>
#include <ember/ember.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define KILL_WAIT_MS (EM_EXECUTOR_KILL_GRACE_MS + 15000) /* SIGTERM, SIGKILL, reports */

static void submit_usage(FILE *f)
{
    fprintf(
        f,
        "usage: ember submit --master URL [options] BINARY [ARGS...]\n"
        "       ember submit --master ember://HOST:PORT --status DRIVER_ID\n"
        "       ember submit --master ember://HOST:PORT --kill DRIVER_ID\n"
        "Runs an application (a program linked with libember). Options come before BINARY;\n"
        "what follows BINARY is the application's.\n"
        "  --master URL              local[N], local-cluster[W,C,M] or ember://HOST:PORT\n"
        "                            (several masters: ember://HOST:PORT,HOST2:PORT2)\n"
        "                            (ember.master; default local[*])\n"
        "  --deploy-mode MODE        client: the driver runs here (default); cluster: the\n"
        "                            master runs it on a worker (ember:// masters only) and\n"
        "                            this command prints its id and returns\n"
        "  --name NAME               ember.app.name\n"
        "  --executor-memory M       ember.executor.memory (e.g. 512m, 2g)\n"
        "  --executor-cores C        ember.executor.cores\n"
        "  --total-executor-cores T  ember.cores.max\n"
        "  --driver-memory M         ember.driver.memory (cluster mode: reserved on the worker)\n"
        "  --driver-cores C          ember.driver.cores (cluster mode: reserved on the worker)\n"
        "  --supervise               cluster mode: relaunch the driver when it exits non-zero\n"
        "                            or its worker is lost (back-off 1 s doubling to 60 s)\n"
        "  --conf KEY=VALUE          any option of `ember conf` (repeatable)\n"
        "  --properties-file F       options from a file (lower precedence than --conf)\n"
        "  --status DRIVER_ID        print a cluster-mode driver's state, worker, exit code\n"
        "  --kill DRIVER_ID          kill a cluster-mode driver; returns once it is KILLED\n"
        "Every option set reaches the application as EMBER_<NAME> in its environment\n"
        "(ember.executor.memory -> EMBER_EXECUTOR_MEMORY; the master URL is EMBER_MASTER).\n"
        "In cluster mode the driver runs in <work-dir>/<driver-id>/ of its worker (relative\n"
        "paths in ARGS are relative to that), with stdout and stderr files there.\n"
        "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

/* Named options with a value, and the option each sets. */
static const char *const NAMED[][2] = {
    {"--master", "ember.master"},
    {"--deploy-mode", "ember.submit.deployMode"},
    {"--name", "ember.app.name"},
    {"--executor-memory", "ember.executor.memory"},
    {"--executor-cores", "ember.executor.cores"},
    {"--total-executor-cores", "ember.cores.max"},
    {"--driver-memory", "ember.driver.memory"},
    {"--driver-cores", "ember.driver.cores"},
};
#define NNAMED ((int)(sizeof NAMED / sizeof NAMED[0]))

/* The command line, before BINARY. */
typedef struct submit_args {
    const char *named[NNAMED][2]; /* (option, value) of the named options set, as in NAMED */
    const char **confs;           /* --conf values, in order */
    int nconfs;
    const char *props, *status_id, *kill_id;
    bool supervise, help;
    int binary; /* index of BINARY in argv, or argc when absent */
} submit_args;

/* Matches argv[*i] against option name (as "--name V" or "--name=V"); *val gets the value.
 * 1 matched, 0 not this option, -1 missing value (message printed). */
static int match(const char *name, int argc, char **argv, int *i, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) || (a[n] != '\0' && a[n] != '=')) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "ember submit: %s needs a value\n", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

/* Parses the options before BINARY. 0, or 2 (usage error, printed). */
static int parse_args(int argc, char **argv, submit_args *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->confs = em__calloc((size_t)argc + 1, sizeof *sa->confs);
    if (!sa->confs) {
        fprintf(stderr, "ember submit: out of memory\n");
        return 1;
    }
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-' || !a[1]) break; /* BINARY */
        if (!strcmp(a, "--supervise")) {
            sa->supervise = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            sa->help = true;
            continue;
        }
        int m = 0;
        for (int k = 0; k < NNAMED && !m; k++)
            if ((m = match(NAMED[k][0], argc, argv, &i, &v)) > 0) {
                sa->named[k][0] = NAMED[k][1];
                sa->named[k][1] = v;
            }
        if (!m && (m = match("--conf", argc, argv, &i, &v)) > 0) sa->confs[sa->nconfs++] = v;
        if (!m && (m = match("--properties-file", argc, argv, &i, &v)) > 0) sa->props = v;
        if (!m && (m = match("--status", argc, argv, &i, &v)) > 0) sa->status_id = v;
        if (!m && (m = match("--kill", argc, argv, &i, &v)) > 0) sa->kill_id = v;
        if (m < 0) return 2;
        if (!m) {
            fprintf(stderr, "ember submit: unknown option '%s' (options come before BINARY)\n", a);
            return 2;
        }
    }
    sa->binary = i;
    return 0;
}

/* The configuration: defaults file + environment, --properties-file, --conf, named options.
 * NULL after printing the error (usage: *exit_code 2). */
static em_conf *build_conf(const submit_args *sa, int *exit_code)
{
    *exit_code = 2;
    em_conf *conf = em_conf_new();
    if (!conf) {
        fprintf(stderr, "ember submit: out of memory\n");
        *exit_code = 1;
        return NULL;
    }
    int rc = em_conf_load_defaults(conf);
    if (!rc && sa->props) {
        rc = em_conf_load_file(conf, sa->props);
        if (rc && rc != EM_ECONF) rc = em__error_context(rc, "--properties-file");
    }
    for (int k = 0; !rc && k < sa->nconfs; k++) {
        if (!strchr(sa->confs[k], '='))
            rc = em__set_error(EM_ECONF, "--conf expects key=value, got '%s'", sa->confs[k]);
        else
            rc = em_conf_set_pair(conf, sa->confs[k]);
    }
    for (int k = 0; !rc && k < NNAMED; k++)
        if (sa->named[k][0]) {
            rc = em_conf_set(conf, sa->named[k][0], sa->named[k][1]);
            if (rc) rc = em__error_context(rc, "%s", NAMED[k][0]);
        }
    if (!rc && sa->supervise) rc = em_conf_set(conf, "ember.driver.supervise", "true");
    if (rc) {
        fprintf(stderr, "ember submit: %s\n", em_errmsg());
        em_conf_free(conf);
        return NULL;
    }
    *exit_code = 0;
    return conf;
}

/* The checks before anything runs. 0, or 1 after printing what is wrong with path. */
static int check_binary(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "ember submit: application binary '%s': %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "ember submit: application binary '%s' is not a regular file\n", path);
        return 1;
    }
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "ember submit: application binary '%s' is not executable (%s)\n", path,
                strerror(errno));
        return 1;
    }
    unsigned char head[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, head, sizeof head) : -1;
    int err = errno;
    if (fd >= 0) close(fd);
    if (n < 0) {
        fprintf(stderr, "ember submit: cannot read application binary '%s': %s\n", path,
                strerror(err));
        return 1;
    }
    if (!(n == 4 && !memcmp(head,
                            "\x7f"
                            "ELF",
                            4)) &&
        !(n >= 2 && head[0] == '#' && head[1] == '!')) {
        fprintf(stderr,
                "ember submit: application binary '%s' is neither an ELF executable nor a #! "
                "script\n",
                path);
        return 1;
    }
    return 0;
}

/* ---- the application's environment -------------------------------------------------------- */
typedef struct env_list {
    char **v;
    int n, cap;
    bool skip_secret; /* cluster mode: the secret stays here */
    int oom;
} env_list;

/* EMBER_<NAME> of an option, as the conf loader reads it (src/base/conf.c env_name): the name
 * without "ember.", upper-cased, '.' as '_'. */
static int add_option(void *arg, const char *key, const char *value)
{
    env_list *l = arg;
    if (l->skip_secret && !strcmp(key, "ember.authenticate.secret")) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = em__realloc(l->v, sizeof *v * (size_t)(cap + 1));
        if (!v) return l->oom = 1;
        l->v = v;
        l->cap = cap;
    }
    const char *rest = strncmp(key, "ember.", 6) ? key : key + 6;
    em_buf b = EM_BUF_INIT;
    int rc = em_buf_printf(&b, "EMBER_");
    for (const char *p = rest; !rc && *p; p++) {
        char ch = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        rc = em_buf_append(&b, &ch, 1);
    }
    if (!rc) rc = em_buf_printf(&b, "=%s%c", value ? value : "", '\0');
    if (rc) {
        em_buf_free(&b);
        return l->oom = 1;
    }
    l->v[l->n++] = (char *)b.data;
    l->v[l->n] = NULL;
    return 0;
}

static void env_list_free(env_list *l)
{
    for (int i = 0; i < l->n; i++) em__free(l->v[i]);
    em__free(l->v);
}

/* ---- the three ways ----------------------------------------------------------------------- */
static int run_client_mode(const em_conf *conf, char **app_argv)
{
    env_list env = {0};
    if (em__conf_foreach_set(conf, add_option, &env) || env.oom) {
        fprintf(stderr, "ember submit: out of memory\n");
        env_list_free(&env);
        return 1;
    }
    for (int i = 0; i < env.n; i++) {
        char *eq = strchr(env.v[i], '=');
        *eq = '\0';
        int rc = setenv(env.v[i], eq + 1, 1);
        *eq = '=';
        if (rc) {
            fprintf(stderr, "ember submit: cannot set %s: %s\n", env.v[i], strerror(errno));
            env_list_free(&env);
            return 1;
        }
    }
    env_list_free(&env);
    fflush(NULL);
    execve(app_argv[0], app_argv, environ);
    fprintf(stderr, "ember submit: cannot run application binary '%s': %s\n", app_argv[0],
            strerror(errno));
    return 1;
}

static int run_cluster_mode(const em_conf *conf, const char *url, char **app_argv, int nargs)
{
    env_list env = {.skip_secret = true};
    if (em__conf_foreach_set(conf, add_option, &env) || env.oom) {
        fprintf(stderr, "ember submit: out of memory\n");
        env_list_free(&env);
        return 1;
    }
    em_submit_client *c = NULL;
    int rc = em_submit_client_connect(conf, url, app_argv[0], &c);
    char *id = NULL;
    if (!rc) {
        em_submit_request req = {
            .cores = (int)em_conf_get_int(conf, "ember.driver.cores"),
            .memory_mb = (uint64_t)EM_MAX(1, em_conf_get_bytes(conf, "ember.driver.memory") >> 20),
            .supervise = em_conf_get_bool(conf, "ember.driver.supervise"),
            .args = (const char *const *)app_argv + 1,
            .num_args = nargs,
            .env = (const char *const *)env.v,
            .num_env = env.n,
        };
        rc = em_submit_client_submit(c, &req, &id);
        if (!rc)
            fprintf(stderr,
                    "ember submit: driver %s submitted to %s (%d cores, %llu MiB%s; binary %s)\n",
                    id, url, req.cores, (unsigned long long)req.memory_mb,
                    req.supervise ? ", supervised" : "", em_submit_client_hash(c));
    }
    if (rc)
        fprintf(stderr, "ember submit: %s\n", em_errmsg());
    else
        printf("%s\n", id);
    em__free(id);
    em_submit_client_free(c);
    env_list_free(&env);
    return rc ? 1 : 0;
}

static void print_status(const char *id, const em_submit_status *s)
{
    /* The state last: scripts that take the last state word of the output get it even when
     * the message (a stderr tail) holds such words. */
    printf("driver: %s\n"
           "worker: %s\n"
           "exit_code: %d\n"
           "message: %s\n"
           "state: %s\n",
           id, s->worker_id && *s->worker_id ? s->worker_id : "-", s->exit_code,
           s->message ? s->message : "", em_driver_state_name(s->state));
}

static int run_status(const em_conf *conf, const char *url, const char *id)
{
    em_submit_client *c = NULL;
    em_submit_status s = {0};
    int rc = em_submit_client_connect(conf, url, NULL, &c);
    if (!rc) rc = em_submit_client_status(c, id, &s);
    int status = 1;
    if (rc) {
        fprintf(stderr, "ember submit: %s\n", em_errmsg());
    } else if (!s.found) {
        fprintf(stderr, "ember submit: master %s: %s\n", url, s.message);
    } else {
        print_status(id, &s);
        status = 0;
    }
    em_submit_status_free(&s);
    em_submit_client_free(c);
    return status;
}

static int run_kill(const em_conf *conf, const char *url, const char *id)
{
    em_submit_client *c = NULL;
    char *said = NULL;
    int rc = em_submit_client_connect(conf, url, NULL, &c);
    if (!rc) rc = em_submit_client_kill(c, id, &said);
    if (rc) {
        fprintf(stderr, "ember submit: cannot kill driver %s on %s: %s\n", id, url, em_errmsg());
        em_submit_client_free(c);
        return 1;
    }
    em__free(said);
    /* The worker kills it (SIGTERM, then SIGKILL after the grace period) and reports. */
    em_submit_status s = {0};
    int64_t deadline = em__now_ms() + KILL_WAIT_MS;
    int status = 1;
    for (;;) {
        em_submit_status_free(&s);
        rc = em_submit_client_status(c, id, &s);
        if (rc) {
            fprintf(stderr, "ember submit: after asking to kill driver %s: %s\n", id, em_errmsg());
            break;
        }
        if (s.found && s.state == EM_DRIVER_KILLED) {
            printf("driver %s killed\n", id);
            status = 0;
            break;
        }
        if (!s.found || em__driver_state_final(s.state)) {
            fprintf(stderr,
                    "ember submit: driver %s was not killed: it ended %s (exit code %d): %s\n", id,
                    s.found ? em_driver_state_name(s.state) : "unknown", s.exit_code,
                    s.message ? s.message : "");
            break;
        }
        if (em__now_ms() >= deadline) {
            fprintf(stderr,
                    "ember submit: driver %s is still %s %d ms after the kill request (its "
                    "worker may be unreachable)\n",
                    id, em_driver_state_name(s.state), KILL_WAIT_MS);
            break;
        }
        usleep(100 * 1000);
    }
    em_submit_status_free(&s);
    em_submit_client_free(c);
    return status;
}

int em_cli_submit(int argc, char **argv)
{
    submit_args sa;
    int rc = parse_args(argc, argv, &sa);
    if (!rc && sa.help) {
        submit_usage(stdout);
        em__free(sa.confs);
        return 0;
    }
    if (rc) {
        submit_usage(stderr);
        em__free(sa.confs);
        return rc;
    }
    const char *query = sa.status_id ? sa.status_id : sa.kill_id;
    const char *usage_err = NULL;
    if (sa.status_id && sa.kill_id)
        usage_err = "--status and --kill exclude each other";
    else if (query && sa.binary < argc)
        usage_err = "--status / --kill take no BINARY";
    else if (!query && sa.binary >= argc)
        usage_err = "BINARY is missing";
    else if (query && !*query)
        usage_err = "--status / --kill need a driver id";
    if (usage_err) {
        fprintf(stderr, "ember submit: %s\n", usage_err);
        submit_usage(stderr);
        em__free(sa.confs);
        return 2;
    }
    em_conf *conf = build_conf(&sa, &rc);
    em__free(sa.confs);
    if (!conf) return rc;
    const char *url = em_conf_get_str(conf, "ember.master");
    bool cluster = !strcasecmp(em_conf_get_str(conf, "ember.submit.deployMode"), "cluster");
    if (query || cluster) {
        char *host = NULL;
        int port = 0;
        if (em_master_url_parse(url, &host, &port)) {
            if (!strncmp(url, "ember://", 8))
                fprintf(stderr, "ember submit: %s\n", em_errmsg()); /* names the bad entry */
            else if (query)
                fprintf(stderr,
                        "ember submit: --status / --kill ask a standalone master: --master "
                        "ember://HOST:PORT (not '%s')\n",
                        url);
            else
                fprintf(stderr,
                        "ember submit: cluster deploy mode needs a standalone master "
                        "ember://HOST:PORT; master '%s' runs drivers in this process (use "
                        "--deploy-mode client)\n",
                        url);
            em_conf_free(conf);
            return 2;
        }
        em__free(host);
    }
    if (query) {
        rc = sa.status_id ? run_status(conf, url, query) : run_kill(conf, url, query);
    } else if ((rc = check_binary(argv[sa.binary])) == 0) {
        if (cluster)
            rc = run_cluster_mode(conf, url, argv + sa.binary, argc - sa.binary - 1);
        else
            rc = run_client_mode(conf, argv + sa.binary);
    }
    em_conf_free(conf);
    return rc;
}
