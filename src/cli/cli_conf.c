/* The configuration every `ember` sub-command starts from: a new option table, the defaults
 * file and the environment, then the command line's --conf / --master / --name /
 * --properties-file (removed from argv). Main thread of the command. */
#include "cli.h"

#include <ember/ember.h>
#include <stdio.h>

em_conf *em__cli_conf(const char *cmd, int *argc, char **argv, int *exit_code)
{
    em_conf *conf = em_conf_new();
    if (!conf) {
        fprintf(stderr, "ember %s: out of memory\n", cmd);
        *exit_code = 1;
        return NULL;
    }
    int rc = em_conf_load_defaults(conf);
    if (!rc) rc = em_conf_parse_args(conf, argc, argv);
    if (rc) {
        fprintf(stderr, "ember %s: %s\n", cmd, em_errmsg());
        em_conf_free(conf);
        *exit_code = 2;
        return NULL;
    }
    *exit_code = 0;
    return conf;
}
