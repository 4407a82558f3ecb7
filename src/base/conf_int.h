/* Internals of the configuration table for the engine (context, submit, executors): walking
 * the options that were set so that a configuration can be shipped to another process.
 * Thread rule: as for em_conf (one thread builds it; reads from any thread once built).
 */
#ifndef EMBER_CONF_INT_H
#define EMBER_CONF_INT_H

#include <ember/conf.h>

/* Flag of conf_options.def: the value is a secret, printed "(redacted)". */
#define EM_CONF_SECRET 1

/* Calls fn(arg, key, value) for every option set explicitly (file, environment, em_conf_set),
 * in table order, value as text (secrets included). Stops at and returns the first non-zero
 * return of fn; 0 otherwise. */
int em__conf_foreach_set(const em_conf *conf,
                         int (*fn)(void *arg, const char *key, const char *value), void *arg);

/* The number of declared options and the name of the i-th (NULL when out of range). */
size_t em__conf_option_count(void);
const char *em__conf_option_name(size_t i);

#endif
