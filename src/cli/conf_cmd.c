/* `ember conf`: prints the configuration table — every option with its type, default and
 * description, and its current value where the defaults file, the environment or --conf
 * change it.
 *
 *   ember conf [--conf key=value]... [--properties-file F] [--master URL] [--name NAME]
 *
 * Runs on the main thread of the `ember` command; exit status 0, 1 on a configuration error
 * (the message names the option), 2 on a usage error.
 */
#include "cli.h"

#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

static void conf_usage(FILE *f)
{
    fprintf(f, "usage: ember conf [--conf key=value]... [--properties-file FILE] [--master URL] "
               "[--name NAME]\n"
               "Prints every configuration option: name, type, default and description, with\n"
               "the current value when $EMBER_CONF_DIR/ember-defaults.conf (or\n"
               "conf/ember-defaults.conf), EMBER_* environment variables or --conf change it.\n");
}

int em_cli_conf(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            conf_usage(stdout);
            return 0;
        }
    int rc;
    em_conf *conf = em__cli_conf("conf", &argc, argv, &rc);
    if (!conf) return rc;
    if (argc > 1) {
        fprintf(stderr, "ember conf: unexpected argument '%s'\n", argv[1]);
        conf_usage(stderr);
        em_conf_free(conf);
        return 2;
    }
    em_conf_print_table(conf, stdout);
    em_conf_free(conf);
    return 0;
}
