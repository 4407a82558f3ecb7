/* The configuration table: options declared once in conf_options.def, parsed and checked here,
 * filled from defaults < properties file < environment (EMBER_*) < em_conf_set / --conf.
 *
 * Each em_conf holds one entry per declared option: the text of the value when set (NULL =
 * the default), the source that set it, and the parsed number (int64 for INT, BYTES in bytes
 * and DURATION in milliseconds; double for DOUBLE; bool for BOOL). Precedence does not depend
 * on call order: a value from a lower source never replaces one from a higher source (but is
 * still checked, so a bad line in a file is an error even when overridden). Errors are
 * EM_ECONF with a message naming the option (and the file:line or environment variable).
 *
 * Thread rule: one thread builds a conf; getters are any thread once it is no longer changed.
 * Called by: em_context_create (through its caller), `ember conf`, `ember submit`, executors.
 */
#include "base/conf_int.h"
#include "base.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { CT_STRING, CT_INT, CT_DOUBLE, CT_BOOL, CT_BYTES, CT_DURATION } conf_type;
static const char *const type_names[] = {"string", "int", "double", "bool", "bytes", "duration"};

typedef struct conf_opt {
    const char *name;
    conf_type type;
    const char *def, *min, *max, *allowed;
    int flags;
    const char *doc;
} conf_opt;

static const conf_opt options[] = {
#define EM_CONF_OPTION(name, type, def, min, max, allowed, flags, doc)                             \
    {name, CT_##type, def, min, max, allowed, flags, doc},
#include "conf_options.def"
#undef EM_CONF_OPTION
};
#define NOPT EM_ARRAY_LEN(options)

enum { SRC_DEFAULT = 0, SRC_FILE, SRC_ENV, SRC_SET };

typedef union conf_num {
    int64_t i;
    double d;
    bool b;
} conf_num;

typedef struct conf_entry {
    char *text; /* NULL: the default */
    int source;
    conf_num num;
} conf_entry;

struct em_conf {
    conf_entry e[NOPT];
};

size_t em__conf_option_count(void)
{
    return NOPT;
}
const char *em__conf_option_name(size_t i)
{
    return i < NOPT ? options[i].name : NULL;
}

static const conf_opt *find(const char *key, size_t *idx)
{
    for (size_t i = 0; i < NOPT; i++)
        if (!strcmp(options[i].name, key)) {
            if (idx) *idx = i;
            return &options[i];
        }
    return NULL;
}

/* ---- value parsing ------------------------------------------------------------------------- */

/* s without leading and trailing white space, copied into buf (cap bytes). */
static const char *trim(const char *s, char *buf, size_t cap)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= cap) n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* A decimal integer followed by an optional unit (returned in *unit, lower-case). */
static bool number_unit(const char *s, int64_t *num, char *unit, size_t unit_cap)
{
    if (!isdigit((unsigned char)*s) && !(*s == '-' && isdigit((unsigned char)s[1]))) return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno) return false;
    size_t n = 0;
    for (; *end; end++) {
        if (!isalpha((unsigned char)*end) || n + 1 >= unit_cap) return false;
        unit[n++] = (char)tolower((unsigned char)*end);
    }
    unit[n] = '\0';
    *num = v;
    return true;
}

static bool mul_ok(int64_t v, int64_t m, int64_t *out)
{
    if (v < 0 || (m && v > INT64_MAX / m)) return false;
    *out = v * m;
    return true;
}

static bool parse_bytes(const char *s, int64_t *out)
{
    int64_t v;
    char u[8];
    if (!number_unit(s, &v, u, sizeof u)) return false;
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"", 1},          {"b", 1},          {"k", 1ll << 10}, {"kb", 1ll << 10},
                 {"m", 1ll << 20}, {"mb", 1ll << 20}, {"g", 1ll << 30}, {"gb", 1ll << 30},
                 {"t", 1ll << 40}, {"tb", 1ll << 40}};
    for (size_t i = 0; i < EM_ARRAY_LEN(units); i++)
        if (!strcmp(u, units[i].unit)) return mul_ok(v, units[i].mult, out);
    return false;
}

static bool parse_duration(const char *s, int64_t *out)
{
    int64_t v;
    char u[8];
    if (!number_unit(s, &v, u, sizeof u) || v < 0) return false;
    if (!strcmp(u, "us")) {
        *out = v / 1000;
        return true;
    }
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"", 1},        {"ms", 1},      {"s", 1000},    {"m", 60000},
                 {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
    for (size_t i = 0; i < EM_ARRAY_LEN(units); i++)
        if (!strcmp(u, units[i].unit)) return mul_ok(v, units[i].mult, out);
    return false;
}

static bool parse_int(const char *s, int64_t *out)
{
    if (!*s) return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    if (!*s) return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) return *out = true, true;
        if (!strcasecmp(s, no[i])) return *out = false, true;
    }
    return false;
}

/* Parses a number of the option's type (INT, DOUBLE, BYTES, DURATION). */
static bool parse_num(conf_type t, const char *s, conf_num *out)
{
    switch (t) {
    case CT_INT:
        return parse_int(s, &out->i);
    case CT_DOUBLE:
        return parse_double(s, &out->d);
    case CT_BYTES:
        return parse_bytes(s, &out->i);
    case CT_DURATION:
        return parse_duration(s, &out->i);
    default:
        return false;
    }
}

/* -1, 0, 1 comparing two numbers of type t. */
static int num_cmp(conf_type t, conf_num a, conf_num b)
{
    if (t == CT_DOUBLE) return (a.d > b.d) - (a.d < b.d);
    return (a.i > b.i) - (a.i < b.i);
}

/* Checks value against the option: sets *num and, for enumerated strings, *canon (the spelling
 * of the table). 0 or EM_ECONF with a message naming the option. */
static int check_value(const conf_opt *o, const char *raw, conf_num *num, const char **canon,
                       size_t *canon_len)
{
    char buf[1024];
    const char *s = trim(raw, buf, sizeof buf);
    *canon = NULL;
    memset(num, 0, sizeof *num);
    switch (o->type) {
    case CT_STRING:
        if (o->allowed[0]) {
            const char *p = o->allowed;
            while (*p) {
                const char *bar = strchr(p, '|');
                size_t n = bar ? (size_t)(bar - p) : strlen(p);
                if (strlen(s) == n && !strncasecmp(s, p, n)) {
                    *canon = p;
                    *canon_len = n;
                    return 0;
                }
                p += n + (bar ? 1 : 0);
            }
            return em__set_error(EM_ECONF, "option %s: '%s' is not one of %s", o->name, s,
                                 o->allowed);
        }
        return 0;
    case CT_BOOL:
        if (!parse_bool(s, &num->b))
            return em__set_error(EM_ECONF, "option %s: '%s' is not a boolean (true or false)",
                                 o->name, s);
        return 0;
    default:
        break;
    }
    if (!parse_num(o->type, s, num)) {
        static const char *const what[] = {
            [CT_INT] = "an integer",
            [CT_DOUBLE] = "a number",
            [CT_BYTES] = "a size (e.g. 512m, 2g)",
            [CT_DURATION] = "a duration (e.g. 200ms, 3s, 1min)",
        };
        return em__set_error(EM_ECONF, "option %s: '%s' is not %s", o->name, s, what[o->type]);
    }
    conf_num lo, hi;
    bool excl = o->min[0] == '>';
    bool has_lo = o->min[0] && parse_num(o->type, o->min + excl, &lo);
    bool has_hi = o->max[0] && parse_num(o->type, o->max, &hi);
    int c = has_lo ? num_cmp(o->type, *num, lo) : 1;
    if ((has_lo && (c < 0 || (excl && c == 0))) || (has_hi && num_cmp(o->type, *num, hi) > 0)) {
        char range[128];
        if (has_lo && has_hi)
            snprintf(range, sizeof range, "must be in %c%s, %s]", excl ? '(' : '[', o->min + excl,
                     o->max);
        else if (has_lo)
            snprintf(range, sizeof range, "must be %s %s", excl ? ">" : ">=", o->min + excl);
        else
            snprintf(range, sizeof range, "must be <= %s", o->max);
        return em__set_error(EM_ECONF, "option %s: '%s' is out of bounds (%s)", o->name, s, range);
    }
    return 0;
}

/* ---- the table ----------------------------------------------------------------------------- */

em_conf *em_conf_new(void)
{
    em_conf *c = em__calloc(1, sizeof *c);
    if (!c) return NULL;
    for (size_t i = 0; i < NOPT; i++) {
        const char *canon;
        size_t n;
        /* Defaults are checked by the unit tests; a bad one reads as zero. */
        if (check_value(&options[i], options[i].def, &c->e[i].num, &canon, &n))
            memset(&c->e[i].num, 0, sizeof c->e[i].num);
    }
    em__clear_error();
    return c;
}

void em_conf_free(em_conf *conf)
{
    if (!conf) return;
    for (size_t i = 0; i < NOPT; i++) em__free(conf->e[i].text);
    em__free(conf);
}

em_conf *em_conf_clone(const em_conf *conf)
{
    em_conf *c = em__calloc(1, sizeof *c);
    if (!c) return NULL;
    for (size_t i = 0; i < NOPT; i++) {
        c->e[i] = conf->e[i];
        if (conf->e[i].text && !(c->e[i].text = em__strdup(conf->e[i].text))) {
            em_conf_free(c);
            return NULL;
        }
    }
    return c;
}

/* Sets key from source src (ignored, after checking, if a higher source already set it). */
static int set_from(em_conf *conf, const char *key, const char *value, int src)
{
    size_t i;
    const conf_opt *o = find(key, &i);
    if (!o) return em__set_error(EM_ECONF, "unknown option '%s' (see `ember conf`)", key);
    conf_num num;
    const char *canon;
    size_t canon_len = 0;
    int rc = check_value(o, value, &num, &canon, &canon_len);
    if (rc) return rc;
    conf_entry *e = &conf->e[i];
    if (src < e->source) return 0;
    char buf[1024];
    char *text = canon ? em__strndup(canon, canon_len)
                       : em__strdup(o->type == CT_STRING ? value : trim(value, buf, sizeof buf));
    if (!text) return em__set_error(EM_ENOMEM, "out of memory setting option %s", key);
    em__free(e->text);
    e->text = text;
    e->source = src;
    e->num = num;
    return 0;
}

int em_conf_set(em_conf *conf, const char *key, const char *value)
{
    return set_from(conf, key, value ? value : "", SRC_SET);
}

static int set_pair_from(em_conf *conf, const char *kv, int src)
{
    const char *eq = strchr(kv, '=');
    if (!eq) return em__set_error(EM_ECONF, "expected key=value, got '%s'", kv);
    char key[256];
    size_t n = (size_t)(eq - kv);
    if (n >= sizeof key) return em__set_error(EM_ECONF, "unknown option '%.*s'", (int)n, kv);
    memcpy(key, kv, n);
    key[n] = '\0';
    char tkey[256];
    return set_from(conf, trim(key, tkey, sizeof tkey), eq + 1, src);
}

int em_conf_set_pair(em_conf *conf, const char *key_equals_value)
{
    return set_pair_from(conf, key_equals_value, SRC_SET);
}

static int load_file_from(em_conf *conf, const char *path, int src)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        return em__set_error(-e, "cannot read configuration file '%s': %s", path, strerror(e));
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p || *p == '#') continue;
        char *k = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p)) p++;
        char sep = *p;
        if (*p) *p++ = '\0';
        while (isspace((unsigned char)*p)) p++;
        if (sep != '=' && *p == '=') {
            p++;
            while (isspace((unsigned char)*p)) p++;
        }
        size_t n = strlen(p);
        while (n && isspace((unsigned char)p[n - 1])) p[--n] = '\0';
        rc = set_from(conf, k, p, src);
        if (rc) {
            rc = em__error_context(rc, "%s:%d", path, lineno);
            break;
        }
    }
    if (!rc && ferror(f)) rc = em__set_error(EM_EIO, "error reading '%s'", path);
    free(line); /* allocated by getline */
    fclose(f);
    return rc;
}

int em_conf_load_file(em_conf *conf, const char *path)
{
    return load_file_from(conf, path, SRC_FILE);
}

/* EMBER_<NAME>: the option without "ember.", upper-cased, '.' as '_'. */
static void env_name(const char *opt, char *out, size_t cap)
{
    const char *rest = strncmp(opt, "ember.", 6) ? opt : opt + 6;
    int n = snprintf(out, cap, "EMBER_");
    for (const char *p = rest; *p && (size_t)n + 1 < cap; p++)
        out[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

int em_conf_load_defaults(em_conf *conf)
{
    const char *dir = getenv("EMBER_CONF_DIR");
    char path[4096];
    if (dir && *dir)
        snprintf(path, sizeof path, "%s/ember-defaults.conf", dir);
    else
        snprintf(path, sizeof path, "conf/ember-defaults.conf");
    if (access(path, F_OK) == 0) {
        int rc = load_file_from(conf, path, SRC_FILE);
        if (rc) return rc == EM_ECONF ? rc : em__error_context(EM_ECONF, "defaults file");
    }
    for (size_t i = 0; i < NOPT; i++) {
        char name[256];
        env_name(options[i].name, name, sizeof name);
        const char *v = getenv(name);
        if (!v) continue;
        int rc = set_from(conf, options[i].name, v, SRC_ENV);
        if (rc) return em__error_context(rc, "environment variable %s", name);
    }
    return 0;
}

int em_conf_parse_args(em_conf *conf, int *argc, char **argv)
{
    static const char *const names[] = {"--master", "--name", "--conf", "--properties-file"};
    int n = *argc;
    char **keep = em__malloc(sizeof(char *) * (size_t)(n > 0 ? n : 1));
    if (!keep) return em__set_error(EM_ENOMEM, "out of memory parsing arguments");
    int nkeep = 0, rc = 0;
    if (n > 0) keep[nkeep++] = argv[0];
    for (int i = 1; i < n && !rc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--")) { /* the rest belongs to the program, "--" included */
            while (i < n) keep[nkeep++] = argv[i++];
            break;
        }
        int which = -1;
        const char *val = NULL;
        for (int k = 0; k < 4 && which < 0; k++) {
            size_t len = strlen(names[k]);
            if (!strncmp(a, names[k], len) && (a[len] == '\0' || a[len] == '=')) {
                which = k;
                val = a[len] == '=' ? a + len + 1 : NULL;
            }
        }
        if (which < 0) {
            keep[nkeep++] = a;
            continue;
        }
        if (!val) {
            if (i + 1 >= n) {
                rc = em__set_error(EM_ECONF, "option %s needs a value", names[which]);
                break;
            }
            val = argv[++i];
        }
        switch (which) {
        case 0:
            rc = set_from(conf, "ember.master", val, SRC_SET);
            break;
        case 1:
            rc = set_from(conf, "ember.app.name", val, SRC_SET);
            break;
        case 2:
            if (!strchr(val, '='))
                rc = em__set_error(EM_ECONF, "--conf expects key=value, got '%s'", val);
            else
                rc = set_pair_from(conf, val, SRC_SET);
            break;
        default:
            rc = load_file_from(conf, val, SRC_FILE);
            if (rc && rc != EM_ECONF) rc = em__error_context(EM_ECONF, "--properties-file");
            break;
        }
    }
    if (!rc) {
        memcpy(argv, keep, sizeof(char *) * (size_t)nkeep);
        if (nkeep < n) argv[nkeep] = NULL;
        *argc = nkeep;
    }
    em__free(keep);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------- */

static const conf_entry *typed(const em_conf *conf, const char *key, conf_type t, int t2)
{
    size_t i;
    const conf_opt *o = find(key, &i);
    if (!o || (o->type != t && (int)o->type != t2)) {
        EM_LOG(EM_LOG_WARN, "conf", "option %s read as %s: %s", key, type_names[t],
               o ? "declared with another type" : "not declared");
        return NULL;
    }
    return &conf->e[i];
}

const char *em_conf_get_str(const em_conf *conf, const char *key)
{
    size_t i;
    if (!find(key, &i)) {
        EM_LOG(EM_LOG_WARN, "conf", "option %s read but not declared", key);
        return NULL;
    }
    return conf->e[i].text ? conf->e[i].text : options[i].def;
}

int64_t em_conf_get_int(const em_conf *conf, const char *key)
{
    const conf_entry *e = typed(conf, key, CT_INT, -1);
    return e ? e->num.i : 0;
}

double em_conf_get_double(const em_conf *conf, const char *key)
{
    const conf_entry *e = typed(conf, key, CT_DOUBLE, -1);
    return e ? e->num.d : 0.0;
}

bool em_conf_get_bool(const em_conf *conf, const char *key)
{
    const conf_entry *e = typed(conf, key, CT_BOOL, -1);
    return e ? e->num.b : false;
}

int64_t em_conf_get_bytes(const em_conf *conf, const char *key)
{
    const conf_entry *e = typed(conf, key, CT_BYTES, -1);
    return e ? e->num.i : 0;
}

int64_t em_conf_get_ms(const em_conf *conf, const char *key)
{
    const conf_entry *e = typed(conf, key, CT_DURATION, -1);
    return e ? e->num.i : 0;
}

bool em_conf_is_set(const em_conf *conf, const char *key)
{
    size_t i;
    return find(key, &i) && conf->e[i].source > SRC_DEFAULT;
}

int em__conf_foreach_set(const em_conf *conf,
                         int (*fn)(void *arg, const char *key, const char *value), void *arg)
{
    for (size_t i = 0; i < NOPT; i++) {
        if (conf->e[i].source == SRC_DEFAULT) continue;
        int rc = fn(arg, options[i].name, conf->e[i].text);
        if (rc) return rc;
    }
    return 0;
}

void em_conf_print_table(const em_conf *conf, FILE *out)
{
    int wname = 4, wtype = 4, wdef = 7;
    for (size_t i = 0; i < NOPT; i++) {
        wname = EM_MAX(wname, (int)strlen(options[i].name));
        wtype = EM_MAX(wtype, (int)strlen(type_names[options[i].type]));
        wdef = EM_MAX(wdef, options[i].def[0] ? (int)strlen(options[i].def) : 2);
    }
    fprintf(out, "%-*s  %-*s  %-*s  %s\n", wname, "NAME", wtype, "TYPE", wdef, "DEFAULT",
            "DESCRIPTION");
    for (size_t i = 0; i < NOPT; i++) {
        const conf_opt *o = &options[i];
        fprintf(out, "%-*s  %-*s  %-*s  %s", wname, o->name, wtype, type_names[o->type], wdef,
                o->def[0] ? o->def : "\"\"", o->doc);
        if (o->allowed[0]) fprintf(out, " {%s}", o->allowed);
        bool excl = o->min[0] == '>';
        if (o->min[0] && o->max[0])
            fprintf(out, " (range %c%s, %s])", excl ? '(' : '[', o->min + excl, o->max);
        else if (o->min[0])
            fprintf(out, " (min %s%s)", excl ? "> " : "", o->min + excl);
        else if (o->max[0])
            fprintf(out, " (max %s)", o->max);
        const conf_entry *e = conf ? &conf->e[i] : NULL;
        if (e && e->source > SRC_DEFAULT && strcmp(e->text, o->def) != 0) {
            if (o->flags & EM_CONF_SECRET)
                fprintf(out, " (current: (redacted))");
            else
                fprintf(out, " (current: %s)", e->text);
        }
        fputc('\n', out);
    }
}
