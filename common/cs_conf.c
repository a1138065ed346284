#include "cs_conf.h"
#include "cs_err.h"
#include "cs_log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const cs_opt_t cs_conf_common_opts[] = {
    {"log.level", CS_OPT_STRING, "info", 0, 0, 0, "error, warn, info or debug"},
    {"log.format", CS_OPT_STRING, "text", 0, 0, 0, "text or json (one JSON object per line)"},
    {"http.bind", CS_OPT_STRING, "127.0.0.1", 0, 0, 0,
     "address of the /metrics and /healthz server"},
    {"http.port", CS_OPT_INT, "-1", -1, 65535, 0,
     "port of the /metrics and /healthz server (0 = any free port, -1 = off)"},
    CS_OPT_END,
};

typedef struct kv_s {
    char *key; /* without the "kafka." prefix */
    char *value;
} kv_t;

struct cs_conf_s {
    char *prog;
    char *usage;
    const cs_opt_t **opts; /* every option, common first */
    char **values;         /* parallel to opts; NULL = unset */
    size_t nopts;
    kv_t *kafka;
    size_t nkafka, kafka_cap;
    cs_conf_check_t check;
};

void cs_conf_set_check(cs_conf_t *c, cs_conf_check_t check)
{
    c->check = check;
}

static size_t table_len(const cs_opt_t *t)
{
    size_t n = 0;
    while (t && t[n].name)
        n++;
    return n;
}

cs_conf_t *cs_conf_new(const char *prog, const char *usage, const cs_opt_t *prog_opts)
{
    cs_conf_t *c = calloc(1, sizeof(*c));
    size_t ncommon = table_len(cs_conf_common_opts), nprog = table_len(prog_opts);
    if (!c)
        return NULL;
    c->prog = strdup(prog ? prog : "crmsync");
    c->usage = strdup(usage ? usage : "");
    c->nopts = ncommon + nprog;
    c->opts = calloc(c->nopts, sizeof(*c->opts));
    c->values = calloc(c->nopts, sizeof(*c->values));
    if (!c->prog || !c->usage || !c->opts || !c->values)
        goto fail;
    /* Common options first; a program entry with the same name replaces the common one
     * (e.g. a program-specific default for http.port). */
    size_t pos = 0;
    for (size_t j = 0; j < ncommon; j++) {
        const cs_opt_t *o = &cs_conf_common_opts[j];
        for (size_t i = 0; i < nprog; i++)
            if (!strcmp(prog_opts[i].name, o->name))
                o = &prog_opts[i];
        c->opts[pos++] = o;
    }
    for (size_t i = 0; i < nprog; i++) {
        int overrides = 0;
        for (size_t j = 0; j < ncommon; j++)
            if (!strcmp(cs_conf_common_opts[j].name, prog_opts[i].name))
                overrides = 1;
        if (!overrides)
            c->opts[pos++] = &prog_opts[i];
    }
    c->nopts = pos;
    for (size_t i = 0; i < c->nopts; i++) {
        if (c->opts[i]->def) {
            c->values[i] = strdup(c->opts[i]->def);
            if (!c->values[i])
                goto fail;
        }
    }
    return c;
fail:
    cs_conf_destroy(c);
    return NULL;
}

void cs_conf_destroy(cs_conf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nopts && c->values; i++)
        free(c->values[i]);
    for (size_t i = 0; i < c->nkafka; i++) {
        free(c->kafka[i].key);
        free(c->kafka[i].value);
    }
    free(c->kafka);
    free(c->values);
    free(c->opts);
    free(c->prog);
    free(c->usage);
    free(c);
}

int cs_conf_add_opts(cs_conf_t *c, const cs_opt_t *opts)
{
    size_t add = table_len(opts);
    const cs_opt_t **no = realloc(c->opts, (c->nopts + add) * sizeof(*no));
    if (!no)
        return CS_ERR_NOMEM;
    c->opts = no;
    char **nv = realloc(c->values, (c->nopts + add) * sizeof(*nv));
    if (!nv)
        return CS_ERR_NOMEM;
    c->values = nv;
    for (size_t i = 0; i < add; i++) {
        c->opts[c->nopts] = &opts[i];
        c->values[c->nopts] = opts[i].def ? strdup(opts[i].def) : NULL;
        if (opts[i].def && !c->values[c->nopts])
            return CS_ERR_NOMEM;
        c->nopts++;
    }
    return CS_OK;
}

static long find_opt(const cs_conf_t *c, const char *name)
{
    for (size_t i = 0; i < c->nopts; i++)
        if (!strcmp(c->opts[i]->name, name))
            return (long)i;
    return -1;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int parse_int(const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

/* Validates and stores one value. where is "file:line", "environment CRMSYNC_X" or
 * "command line" for the message. */
static int set_value(cs_conf_t *c, const char *name, const char *value, const char *where,
                     char *errstr, size_t n)
{
    char *copy;
    if (!name || !*name)
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: empty key", where);
    if (!strncmp(name, "kafka.", 6)) {
        const char *k = name + 6;
        if (!*k)
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: empty kafka.* key", where);
        for (size_t i = 0; i < c->nkafka; i++) {
            if (!strcmp(c->kafka[i].key, k)) {
                if (!(copy = strdup(value)))
                    return CS_ERR_NOMEM;
                free(c->kafka[i].value);
                c->kafka[i].value = copy;
                return CS_OK;
            }
        }
        if (c->nkafka == c->kafka_cap) {
            size_t cap = c->kafka_cap ? c->kafka_cap * 2 : 8;
            kv_t *nk = realloc(c->kafka, cap * sizeof(*nk));
            if (!nk)
                return CS_ERR_NOMEM;
            c->kafka = nk;
            c->kafka_cap = cap;
        }
        c->kafka[c->nkafka].key = strdup(k);
        c->kafka[c->nkafka].value = strdup(value);
        if (!c->kafka[c->nkafka].key || !c->kafka[c->nkafka].value) {
            free(c->kafka[c->nkafka].key);
            free(c->kafka[c->nkafka].value);
            return CS_ERR_NOMEM;
        }
        c->nkafka++;
        return CS_OK;
    }

    long i = find_opt(c, name);
    if (i < 0)
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: unknown key '%s' (see --help)", where,
                          name);
    const cs_opt_t *o = c->opts[i];
    switch (o->type) {
    case CS_OPT_INT: {
        long long v;
        if (parse_int(value, &v))
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: %s: '%s' is not an integer", where,
                              name, o->flags & CS_OPT_SENSITIVE ? "********" : value);
        if ((o->min || o->max) && (v < o->min || v > o->max))
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: %s: %lld is out of range [%lld, %lld]",
                              where, name, v, o->min, o->max);
        break;
    }
    case CS_OPT_BOOL: {
        int b;
        if (parse_bool(value, &b))
            return cs_err_set(errstr, n, CS_ERR_CONFIG,
                              "%s: %s: '%s' is not a boolean (true/false)", where, name,
                              o->flags & CS_OPT_SENSITIVE ? "********" : value);
        break;
    }
    case CS_OPT_STRING:
        break;
    }
    if (!strcmp(name, "log.level") && cs_log_level_parse(value) < 0)
        return cs_err_set(errstr, n, CS_ERR_CONFIG,
                          "%s: log.level: '%s' is not one of error, warn, info, debug", where,
                          value);
    if (!strcmp(name, "log.format") && strcmp(value, "text") && strcmp(value, "json"))
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: log.format: '%s' is not text or json",
                          where, value);
    if (!(copy = strdup(value)))
        return CS_ERR_NOMEM;
    free(c->values[i]);
    c->values[i] = copy;
    return CS_OK;
}

int cs_conf_set(cs_conf_t *c, const char *name, const char *value, char *errstr, size_t n)
{
    return set_value(c, name, value, "command line", errstr, n);
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int cs_conf_load_string(cs_conf_t *c, const char *text, const char *origin, char *errstr, size_t n)
{
    int err = CS_OK, lineno = 0;
    char *buf = strdup(text), *line, where[512];
    if (!buf)
        return CS_ERR_NOMEM;
    /* strtok_r would skip empty lines and so miscount line numbers: walk by hand. */
    line = buf;
    while (line) {
        char *next = strchr(line, '\n'), *eq, *key, *val;
        if (next)
            *next++ = '\0';
        lineno++;
        snprintf(where, sizeof(where), "%s:%d", origin, lineno);
        key = trim(line);
        if (*key == '\0' || *key == '#') {
            line = next;
            continue;
        }
        eq = strchr(key, '=');
        if (!eq) {
            err = cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: expected key=value", where);
            goto out;
        }
        *eq = '\0';
        val = trim(eq + 1);
        key = trim(key);
        if ((err = set_value(c, key, val, where, errstr, n)))
            goto out;
        line = next;
    }
out:
    free(buf);
    return err;
}

int cs_conf_load_file(cs_conf_t *c, const char *path, char *errstr, size_t n)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    long len;
    int err;
    if (!f)
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: cannot read", path);
    }
    if (len > 16 * 1024 * 1024) {
        fclose(f);
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: larger than 16 MiB", path);
    }
    text = malloc((size_t)len + 1);
    if (!text) {
        fclose(f);
        return CS_ERR_NOMEM;
    }
    if (fread(text, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(text);
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: cannot read", path);
    }
    text[len] = '\0';
    fclose(f);
    if (strlen(text) != (size_t)len) {
        free(text);
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "%s: contains a NUL byte", path);
    }
    err = cs_conf_load_string(c, text, path, errstr, n);
    free(text);
    return err;
}

/* Environment name for an option: CRMSYNC_ + upper-case, '.' and '-' -> '_'. */
static void env_name(const char *opt, char *out, size_t n)
{
    size_t j = snprintf(out, n, "CRMSYNC_");
    for (const char *p = opt; *p && j + 1 < n; p++)
        out[j++] = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
    out[j < n ? j : n - 1] = '\0';
}

int cs_conf_load_env(cs_conf_t *c, char *const *envp, char *errstr, size_t n)
{
    char name[256], where[300];
    int err;
    for (size_t i = 0; i < c->nopts; i++) {
        env_name(c->opts[i]->name, name, sizeof(name));
        for (char *const *e = envp; e && *e; e++) {
            size_t l = strlen(name);
            if (!strncmp(*e, name, l) && (*e)[l] == '=') {
                snprintf(where, sizeof(where), "environment %s", name);
                if ((err = set_value(c, c->opts[i]->name, *e + l + 1, where, errstr, n)))
                    return err;
            }
        }
    }
    /* CRMSYNC_KAFKA_BOOTSTRAP_SERVERS -> kafka.bootstrap.servers */
    for (char *const *e = envp; e && *e; e++) {
        const char *eq;
        char key[256];
        size_t j = 6;
        if (strncmp(*e, "CRMSYNC_KAFKA_", 14) || !(eq = strchr(*e, '=')))
            continue;
        memcpy(key, "kafka.", 6);
        for (const char *p = *e + 14; p < eq && j + 1 < sizeof(key); p++)
            key[j++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        key[j] = '\0';
        snprintf(where, sizeof(where), "environment %.*s", (int)(eq - *e), *e);
        if ((err = set_value(c, key, eq + 1, where, errstr, n)))
            return err;
    }
    return CS_OK;
}

extern char **environ;

int cs_conf_from_args(cs_conf_t *c, int argc, char **argv, int *first_positional, char *errstr,
                      size_t n)
{
    const char *config = NULL;
    int help = 0, dump = 0, check = 0, markdown = 0, err = CS_OK, i, pos = argc, nsets = 0;
    int nowned = 0;
    /* Command-line settings are collected first and applied last: the file and the
     * environment must come before them, and the file name is itself an argument. */
    const char **sets = calloc((size_t)argc * 2 + 2, sizeof(*sets));
    char **owned = calloc((size_t)argc + 1, sizeof(*owned));
    if (!sets || !owned) {
        err = CS_ERR_NOMEM;
        goto out;
    }

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            pos = i + 1;
            break;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help = 1;
        } else if (!strcmp(a, "--dump-config")) {
            dump = 1;
        } else if (!strcmp(a, "--check-config")) {
            check = 1;
        } else if (!strcmp(a, "--config-reference")) {
            markdown = 1;
        } else if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
            if (i + 1 >= argc) {
                err = cs_err_set(errstr, n, CS_ERR_CONFIG, "%s needs a file name", a);
                goto out;
            }
            config = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            config = a + 9;
        } else if (!strcmp(a, "--set") || !strcmp(a, "-o")) {
            const char *eq;
            if (i + 1 >= argc || !(eq = strchr(argv[i + 1], '='))) {
                err = cs_err_set(errstr, n, CS_ERR_CONFIG, "%s needs KEY=VALUE", a);
                goto out;
            }
            i++;
            if (!(owned[nowned] = strndup(argv[i], (size_t)(eq - argv[i])))) {
                err = CS_ERR_NOMEM;
                goto out;
            }
            sets[nsets++] = owned[nowned++];
            sets[nsets++] = eq + 1;
        } else if (!strncmp(a, "--", 2) && a[2]) {
            const char *eq = strchr(a, '='), *val;
            char *key = eq ? strndup(a + 2, (size_t)(eq - a - 2)) : strdup(a + 2);
            long oi;
            if (!key) {
                err = CS_ERR_NOMEM;
                goto out;
            }
            owned[nowned++] = key;
            oi = find_opt(c, key);
            if (strncmp(key, "kafka.", 6) && oi < 0) {
                err = cs_err_set(errstr, n, CS_ERR_CONFIG, "unknown option --%s (see --help)", key);
                goto out;
            }
            if (eq) {
                val = eq + 1;
            } else if (oi >= 0 && c->opts[oi]->type == CS_OPT_BOOL &&
                       (i + 1 >= argc || parse_bool(argv[i + 1], &(int){0}))) {
                val = "true"; /* a bare --flag (not followed by a boolean) turns it on */
            } else if (i + 1 >= argc) {
                err = cs_err_set(errstr, n, CS_ERR_CONFIG, "--%s needs a value", key);
                goto out;
            } else {
                val = argv[++i];
            }
            sets[nsets++] = key;
            sets[nsets++] = val;
        } else {
            pos = i; /* the first positional argument: the rest is the program's */
            break;
        }
    }
    if (first_positional)
        *first_positional = pos;
    if (help) {
        cs_conf_print_help(c, stdout);
        err = 1;
        goto out;
    }
    if (markdown) {
        cs_conf_print_markdown(c, stdout);
        err = 1;
        goto out;
    }
    if (config && (err = cs_conf_load_file(c, config, errstr, n)))
        goto out;
    if ((err = cs_conf_load_env(c, environ, errstr, n)))
        goto out;
    for (i = 0; i < nsets; i += 2)
        if ((err = set_value(c, sets[i], sets[i + 1], "command line", errstr, n)))
            goto out;
    if ((err = cs_log_setup(cs_conf_str(c, "log.level"), cs_conf_str(c, "log.format")))) {
        err = cs_err_set(errstr, n, err, "bad log.level or log.format");
        goto out;
    }
    if (dump) {
        cs_conf_dump(c, stdout);
        err = 1;
    } else if (check) {
        if (c->check && (err = c->check(c, errstr, n)))
            goto out;
        printf("%s: configuration OK\n", c->prog);
        err = 1;
    }
out:
    for (i = 0; owned && i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(sets);
    return err;
}

static long must_find(const cs_conf_t *c, const char *name)
{
    long i = find_opt(c, name);
    if (i < 0) {
        fprintf(stderr, "BUG: configuration option '%s' is not in the table\n", name);
        abort();
    }
    return i;
}

const char *cs_conf_str(const cs_conf_t *c, const char *name)
{
    return c->values[must_find(c, name)];
}

long long cs_conf_int(const cs_conf_t *c, const char *name)
{
    const char *v = c->values[must_find(c, name)];
    long long n = 0;
    if (v)
        parse_int(v, &n); /* validated when set */
    return n;
}

int cs_conf_bool(const cs_conf_t *c, const char *name)
{
    const char *v = c->values[must_find(c, name)];
    int b = 0;
    if (v)
        parse_bool(v, &b);
    return b;
}

int cs_conf_foreach_kafka(const cs_conf_t *c,
                          int (*cb)(void *opaque, const char *key, const char *value), void *opaque)
{
    for (size_t i = 0; i < c->nkafka; i++) {
        int r = cb(opaque, c->kafka[i].key, c->kafka[i].value);
        if (r)
            return r;
    }
    return 0;
}

const char *cs_conf_kafka(const cs_conf_t *c, const char *key)
{
    for (size_t i = 0; i < c->nkafka; i++)
        if (!strcmp(c->kafka[i].key, key))
            return c->kafka[i].value;
    return NULL;
}

static int kafka_key_sensitive(const char *k)
{
    return strcasestr(k, "password") || strcasestr(k, "secret") || strcasestr(k, "ssl.key.pem") ||
           strcasestr(k, "sasl.oauthbearer.config") || strcasestr(k, "sasl.jaas");
}

int cs_conf_is_sensitive(const cs_conf_t *c, const char *name)
{
    if (!strncmp(name, "kafka.", 6))
        return kafka_key_sensitive(name + 6);
    long i = find_opt(c, name);
    return i >= 0 && (c->opts[i]->flags & CS_OPT_SENSITIVE);
}

void cs_conf_dump(const cs_conf_t *c, FILE *out)
{
    fprintf(out, "# effective configuration of %s (secrets redacted)\n", c->prog);
    for (size_t i = 0; i < c->nopts; i++) {
        const char *v = c->values[i];
        if (!v)
            fprintf(out, "# %s is unset\n", c->opts[i]->name);
        else
            fprintf(out, "%s=%s\n", c->opts[i]->name,
                    (c->opts[i]->flags & CS_OPT_SENSITIVE) && *v ? "********" : v);
    }
    for (size_t i = 0; i < c->nkafka; i++)
        fprintf(out, "kafka.%s=%s\n", c->kafka[i].key,
                kafka_key_sensitive(c->kafka[i].key) ? "********" : c->kafka[i].value);
}

static const char *type_name(cs_opt_type_t t)
{
    switch (t) {
    case CS_OPT_INT:
        return "int";
    case CS_OPT_BOOL:
        return "bool";
    case CS_OPT_STRING:
        break;
    }
    return "string";
}

void cs_conf_print_help(const cs_conf_t *c, FILE *out)
{
    fprintf(out, "Usage: %s\n\n", c->usage);
    fprintf(out, "Generic flags:\n"
                 "  --config FILE        read key=value settings from FILE\n"
                 "  --set KEY=VALUE      set any key (also kafka.* librdkafka properties)\n"
                 "  --KEY VALUE          set an option from the table below\n"
                 "  --dump-config        print the effective configuration (secrets redacted)\n"
                 "  --check-config       validate the configuration and exit\n"
                 "  --config-reference   print the option table as Markdown\n"
                 "  --help               this text\n\n");
    fprintf(out, "Options (environment: CRMSYNC_<KEY> with '.' as '_'; precedence: defaults <\n"
                 "file < environment < command line):\n");
    for (size_t i = 0; i < c->nopts; i++) {
        const cs_opt_t *o = c->opts[i];
        fprintf(out, "  %-28s %-6s default: %s%s\n      %s\n", o->name, type_name(o->type),
                o->def ? (*o->def ? o->def : "\"\"") : "(unset)",
                o->flags & CS_OPT_SENSITIVE ? " (secret)" : "", o->help ? o->help : "");
    }
    fprintf(out, "  %-28s %-6s passed to librdkafka unchanged (CRMSYNC_KAFKA_<PROP>)\n", "kafka.*",
            "string");
}

void cs_conf_print_markdown(const cs_conf_t *c, FILE *out)
{
    fprintf(out, "| key | type | default | description |\n|---|---|---|---|\n");
    for (size_t i = 0; i < c->nopts; i++) {
        const cs_opt_t *o = c->opts[i];
        int quoted = o->def && *o->def;
        fprintf(out, "| `%s` | %s | %s%s%s | %s%s |\n", o->name, type_name(o->type),
                quoted ? "`" : "",
                !o->def   ? "(unset)"
                : *o->def ? o->def
                          : "(empty)",
                quoted ? "`" : "", o->help ? o->help : "",
                o->flags & CS_OPT_SENSITIVE ? " (secret)" : "");
    }
    fprintf(out, "| `kafka.*` | string | | passed to librdkafka unchanged |\n");
}
