/* Sub-commands of the `ember` command. Each takes argv with argv[0] = the sub-command name and
 * returns the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

int em_cli_conf(int argc, char **argv);
int em_cli_gen(int argc, char **argv);
int em_cli_master(int argc, char **argv);
int em_cli_worker(int argc, char **argv);

#endif
