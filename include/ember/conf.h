/* Ember configuration: one table of options, filled from several sources.
 *
 * Every option (ember.executor.memory, ember.task.maxFailures, ...) is declared once in the
 * option table with a type, default, bounds and a one-line description; `ember conf` prints
 * the table. Values come, lowest precedence first, from: the defaults; the file
 * $EMBER_CONF_DIR/ember-defaults.conf (or conf/ember-defaults.conf); the environment
 * (EMBER_<NAME> where NAME is the option without "ember.", upper-cased, '.' as '_', e.g.
 * EMBER_EXECUTOR_MEMORY); and explicit em_conf_set() / --conf key=value. An unknown option or
 * a malformed value is an error that names the option and says what is wrong.
 *
 * Thread rule: a conf is built by one thread; once handed to em_context_create() it is copied
 * and the caller may free it.
 */
#ifndef EMBER_CONF_H
#define EMBER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_conf em_conf;

/* A new configuration holding only defaults. NULL on out of memory. */
em_conf *em_conf_new(void);

/* A deep copy of conf. NULL on out of memory. */
em_conf *em_conf_clone(const em_conf *conf);

/* Frees conf; em_conf_free(NULL) does nothing. */
void em_conf_free(em_conf *conf);

/* Sets option key to value (text, parsed and checked against the option's type and bounds).
 * Returns 0, or EM_ECONF for an unknown key or a bad value (see em_errmsg()). */
int em_conf_set(em_conf *conf, const char *key, const char *value);

/* Parses "key=value" and sets it. EM_ECONF if there is no '=' or em_conf_set fails. */
int em_conf_set_pair(em_conf *conf, const char *key_equals_value);

/* Loads a properties file: lines "key value" or "key=value", '#' comments, blank lines.
 * Returns 0, -errno if it cannot be read, or EM_ECONF naming the file, line and option. */
int em_conf_load_file(em_conf *conf, const char *path);

/* Loads the defaults file ($EMBER_CONF_DIR/ember-defaults.conf, else conf/ember-defaults.conf,
 * when present) and then the EMBER_* environment variables. Returns 0 or EM_ECONF. */
int em_conf_load_defaults(em_conf *conf);

/* Parses the command-line options every Ember program understands and removes them from
 * argv, leaving the rest (argv[0] first) in order and updating *argc:
 *   --master URL          same as --conf ember.master=URL
 *   --name NAME           same as --conf ember.app.name=NAME
 *   --conf key=value      any option of the table (repeatable)
 *   --properties-file F   a properties file, loaded in place
 * Options may also be written --opt=value. Returns 0 or EM_ECONF. */
int em_conf_parse_args(em_conf *conf, int *argc, char **argv);

/* Typed reads. The key must be a declared option of the matching type (programming error
 * otherwise: returns the type's zero value). Sizes ("512m", "1g", "64k", plain bytes) are
 * returned in bytes; durations ("3s", "200ms", "1min") in milliseconds. */
const char *em_conf_get_str(const em_conf *conf, const char *key);
int64_t em_conf_get_int(const em_conf *conf, const char *key);
double em_conf_get_double(const em_conf *conf, const char *key);
bool em_conf_get_bool(const em_conf *conf, const char *key);
int64_t em_conf_get_bytes(const em_conf *conf, const char *key);
int64_t em_conf_get_ms(const em_conf *conf, const char *key);

/* True if key was set explicitly (file, environment or em_conf_set), not left at default. */
bool em_conf_is_set(const em_conf *conf, const char *key);

/* Writes the option table (name, type, default, description; and the current value when it
 * differs) to out, one option per line. Used by `ember conf`. */
void em_conf_print_table(const em_conf *conf, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
