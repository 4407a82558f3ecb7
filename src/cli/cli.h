/* Sub-commands of the `ember` command. Each takes argv with argv[0] = the sub-command name and
 * returns the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

int em_cli_conf(int argc, char **argv);

typedef struct em_conf em_conf;
/* Defaults file + environment + the command line's configuration options (removed from argv).
 * NULL on failure, after printing "ember <cmd>: <message>"; *exit_code is then 1 (out of
 * memory) or 2 (a bad option), else 0. */
em_conf *em__cli_conf(const char *cmd, int *argc, char **argv, int *exit_code);
int em_cli_gen(int argc, char **argv);
int em_cli_master(int argc, char **argv);
int em_cli_worker(int argc, char **argv);
int em_cli_submit(int argc, char **argv);

#endif
