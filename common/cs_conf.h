/* cs_conf: one table of options per program, filled in the order
 *   defaults -> config file -> environment -> command line.
 *
 * File format: key=value lines, '#' starts a comment line, blank lines ignored, whitespace
 * around key and value trimmed. Unknown keys are errors reported as file:line. Keys under
 * "kafka." are not in any table: they are kept verbatim (prefix stripped) and handed to
 * rd_kafka_conf_set() unchanged by cs_kafka.
 *
 * Environment: CRMSYNC_<NAME> where NAME is the option name upper-cased with '.' -> '_'
 * (log.level -> CRMSYNC_LOG_LEVEL). CRMSYNC_KAFKA_<PROP> sets kafka.<prop> with '_' -> '.'
 * and lower-cased (CRMSYNC_KAFKA_BOOTSTRAP_SERVERS -> kafka.bootstrap.servers).
 *
 * Command line: --config FILE, --help, --dump-config (effective config, secrets redacted),
 * --check-config (validate and exit), --set KEY=VALUE (any key, kafka.* included), and
 * --NAME VALUE / --NAME=VALUE for any option in the tables. Remaining arguments are
 * positional and left to the program.
 *
 * Not thread-safe while loading; read-only getters may be called from any thread after. */
#ifndef CS_CONF_H
#define CS_CONF_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    CS_OPT_STRING,
    CS_OPT_INT,
    CS_OPT_BOOL,
} cs_opt_type_t;

/* flags */
#define CS_OPT_SENSITIVE 0x1 /* never printed: redacted in --dump-config and logs */

typedef struct cs_opt_s {
    const char *name;
    cs_opt_type_t type;
    const char *def;    /* default, as text; NULL = unset */
    long long min, max; /* bounds for CS_OPT_INT (ignored when min == max == 0) */
    int flags;
    const char *help;
} cs_opt_t;

/* Terminates an option table. */
#define CS_OPT_END                                                                                 \
    {                                                                                              \
        NULL, CS_OPT_STRING, NULL, 0, 0, 0, NULL                                                   \
    }

/* Options every program has: log.level, log.format, http.bind, http.port (the /metrics and
 * /healthz server; 0 = pick a free port, -1 = disabled). */
extern const cs_opt_t cs_conf_common_opts[];

typedef struct cs_conf_s cs_conf_t;

/* Creates a config holding the defaults of cs_conf_common_opts and prog_opts (may be NULL).
 * prog is the program name for --help ("crmsync-sandbox"); usage is the one-line synopsis
 * and description printed by --help. Returns NULL on allocation failure.
 * Caller frees with cs_conf_destroy(). */
cs_conf_t *cs_conf_new(const char *prog, const char *usage, const cs_opt_t *prog_opts);

/* Accepts NULL. */
void cs_conf_destroy(cs_conf_t *c);

/* Appends another table (e.g. cs_topics_opts) after cs_conf_new() and before loading; its
 * defaults apply at once. The table must outlive c. Returns CS_OK or CS_ERR_NOMEM. */
int cs_conf_add_opts(cs_conf_t *c, const cs_opt_t *opts);

/* Loads everything in order (defaults were set by cs_conf_new): --config file, environment,
 * then the command line. Returns:
 *   CS_OK  - run the program; *first_positional (may be NULL) is argv's index of the first
 *            positional argument (argc when none);
 *   1      - an informational flag (--help, --dump-config, --check-config, --version) was
 *            served on stdout: exit 0;
 *   < 0    - an error, described in errstr (file:line for file errors): exit 2. */
int cs_conf_from_args(cs_conf_t *c, int argc, char **argv, int *first_positional, char *errstr,
                      size_t errstr_size);

/* A program-specific validation run by --check-config after everything is loaded (e.g.
 * cs_kafka_check_conf, which hands every kafka.* key to librdkafka). Returns CS_OK or an
 * error with errstr. */
typedef int (*cs_conf_check_t)(const cs_conf_t *c, char *errstr, size_t errstr_size);
void cs_conf_set_check(cs_conf_t *c, cs_conf_check_t check);

/* Individual steps, for tests and tools. Each returns CS_OK or CS_ERR_CONFIG with errstr. */
int cs_conf_load_file(cs_conf_t *c, const char *path, char *errstr, size_t errstr_size);
int cs_conf_load_string(cs_conf_t *c, const char *text, const char *origin, char *errstr,
                        size_t errstr_size);
int cs_conf_load_env(cs_conf_t *c, char *const *envp, char *errstr, size_t errstr_size);
int cs_conf_set(cs_conf_t *c, const char *name, const char *value, char *errstr,
                size_t errstr_size);

/* Getters. The name must be in a table (a programming error otherwise: aborts).
 * cs_conf_str returns NULL when unset; the string is borrowed until cs_conf_destroy(). */
const char *cs_conf_str(const cs_conf_t *c, const char *name);
long long cs_conf_int(const cs_conf_t *c, const char *name);
int cs_conf_bool(const cs_conf_t *c, const char *name);

/* Calls cb for each kafka.* key (prefix stripped) in the order set; stops and returns the
 * first non-zero cb result. */
int cs_conf_foreach_kafka(const cs_conf_t *c,
                          int (*cb)(void *opaque, const char *key, const char *value),
                          void *opaque);

/* Value of kafka.<key>, or NULL. */
const char *cs_conf_kafka(const cs_conf_t *c, const char *key);

/* True for a key whose value must never be shown (table flag, or a kafka.* key naming a
 * password, secret or private key). */
int cs_conf_is_sensitive(const cs_conf_t *c, const char *name);

/* Prints the effective configuration as key=value lines, secrets as "********". */
void cs_conf_dump(const cs_conf_t *c, FILE *out);

/* Prints --help: usage, generic flags and every option with type, default and help. */
void cs_conf_print_help(const cs_conf_t *c, FILE *out);

/* Prints the option table as a Markdown table (for docs/CONFIG.md). */
void cs_conf_print_markdown(const cs_conf_t *c, FILE *out);

#endif
