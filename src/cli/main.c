/* The `ember` command: a dispatcher over sub-commands in the way of git.
 *   ember conf            print every configuration option with its default and description
 *   ember gen KIND ...    generate benchmark and test inputs (text, terasort records, graphs)
 *   ember master ...      run the standalone cluster manager's master (foreground)
 *   ember worker ...      run a standalone worker connected to a master (foreground)
 *   ember submit ...      run an application: driver here (client) or on a worker (cluster)
 *   ember version         print the version
 * Each sub-command lives in its own file (conf_cmd.c, gen.c, submit_cmd.c, ...) and returns the
 * exit status. */
#include "cli.h"

#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"conf", em_cli_conf, "print every configuration option, its default and description"},
    {"gen", em_cli_gen, "generate inputs: text, text-hc, terasort, graph (ember gen --help)"},
    {"master", em_cli_master, "run the standalone master (ember master --help)"},
    {"worker", em_cli_worker, "run a standalone worker (ember worker --help)"},
    {"submit", em_cli_submit, "run an application, client or cluster mode (ember submit --help)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ember COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("ember %s\n", EMBER_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ember: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
