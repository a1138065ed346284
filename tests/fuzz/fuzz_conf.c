/* fuzz_conf: the config loader (cs_conf_load_string: the --config file format), the
 * environment (cs_conf_load_env) and --set (cs_conf_set) paths, over a table with every
 * option type plus the real crm.* / mkt.* and topic tables.
 *
 * Input: up to three parts separated by NUL bytes:
 *   part 0  config file text                       cs_conf_load_string
 *   part 1  environment, one NAME=value per line   cs_conf_load_env
 *   part 2  --set arguments, one key=value a line  cs_conf_set
 * Invariants: errors come with a message; getters work after any load; --dump-config
 * redacts every secret, whatever case or path set it; help and the Markdown reference
 * render. */
#include "fuzz.h"

#include "cs_api.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_topics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const cs_opt_t opts[] = {
    {"batch.max", CS_OPT_INT, "200", 1, 200, 0, "records per batch"},
    {"batch.linger.ms", CS_OPT_INT, "250", 0, 60000, 0, "linger"},
    {"offset", CS_OPT_INT, "0", 0, 0, 0, "unbounded int"},
    {"sync.email_changes", CS_OPT_BOOL, "false", 0, 0, 0, "apply CRM email changes"},
    {"name", CS_OPT_STRING, NULL, 0, 0, 0, "no default"},
    {"ingest.token", CS_OPT_STRING, "", 0, 0, CS_OPT_SENSITIVE, "bearer token"},
    {"ingest.hmac_secret", CS_OPT_STRING, NULL, 0, 0, CS_OPT_SENSITIVE, "HMAC secret"},
    CS_OPT_END,
};

/* Sensitive options of the tables above (crm.* from cs_api_opts). */
static const char *const secrets[] = {"ingest.token", "ingest.hmac_secret", "crm.client_secret",
                                      "crm.password"};

typedef struct {
    char *buf;
    size_t len;
} membuf_t;

static membuf_t render(void (*fn)(const cs_conf_t *, FILE *), const cs_conf_t *c)
{
    membuf_t m = {NULL, 0};
    FILE *f = open_memstream(&m.buf, &m.len);
    if (!f)
        cs_fuzz_fail("conf", "open_memstream");
    fn(c, f);
    fclose(f);
    return m;
}

/* Finds "\n<key>=" in the dump and returns the value's start, or NULL. */
static const char *dump_value(const char *dump, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = dump; (p = strstr(p, key)); p += kl) {
        if ((p == dump || p[-1] == '\n') && p[kl] == '=')
            return p + kl + 1;
    }
    return NULL;
}

typedef struct {
    const cs_conf_t *c;
    const char *dump;
} kcheck_t;

static int kafka_check(void *opaque, const char *key, const char *value)
{
    const kcheck_t *k = opaque;
    (void)value; /* only the key decides; the dump must show the mask */
    const char *dump = k->dump;
    char full[1024];
    if (snprintf(full, sizeof full, "kafka.%s", key) >= (int)sizeof full)
        return 0;
    /* A password/secret key is redacted however it is spelled: librdkafka rejects a
     * mis-cased name, but only when the program starts Kafka, after --dump-config ran. */
    int secret_name = strcasestr(key, "password") || strcasestr(key, "secret");
    if (secret_name || cs_conf_is_sensitive(k->c, full)) {
        const char *v = dump_value(dump, full);
        if (!v || strncmp(v, "********\n", 9))
            cs_fuzz_fail("conf", "--dump-config does not redact %s", full);
    }
    return 0;
}

static void check(cs_conf_t *c)
{
    /* Getters of every type, after any load. */
    (void)cs_conf_int(c, "batch.max");
    (void)cs_conf_int(c, "offset");
    (void)cs_conf_bool(c, "sync.email_changes");
    (void)cs_conf_str(c, "name");
    (void)cs_conf_str(c, "log.level");
    (void)cs_conf_kafka(c, "bootstrap.servers");
    long long bm = cs_conf_int(c, "batch.max");
    if (bm < 1 || bm > 200)
        cs_fuzz_fail("conf", "batch.max=%lld outside its bounds", bm);
    int b = cs_conf_bool(c, "sync.email_changes");
    if (b != 0 && b != 1)
        cs_fuzz_fail("conf", "bool is %d", b);

    membuf_t d = render(cs_conf_dump, c);
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        const char *v = cs_conf_str(c, secrets[i]);
        if (!cs_conf_is_sensitive(c, secrets[i]))
            cs_fuzz_fail("conf", "%s is not sensitive", secrets[i]);
        if (v && *v) {
            const char *dv = dump_value(d.buf, secrets[i]);
            if (!dv || strncmp(dv, "********\n", 9))
                cs_fuzz_fail("conf", "--dump-config does not redact %s", secrets[i]);
        }
    }
    kcheck_t kc = {c, d.buf};
    cs_conf_foreach_kafka(c, kafka_check, &kc);
    free(d.buf);
}

/* Splits s (NUL-terminated, modified) into lines; NULL-terminated array, caller frees. */
static char **lines(char *s, size_t *n)
{
    size_t cap = 8, k = 0;
    char **v = malloc(cap * sizeof(*v));
    if (!v)
        cs_fuzz_fail("conf", "out of memory");
    for (char *p = s; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl++ = '\0';
        if (k + 2 > cap) {
            cap *= 2;
            char **nv = realloc(v, cap * sizeof(*v));
            if (!nv)
                cs_fuzz_fail("conf", "out of memory");
            v = nv;
        }
        v[k++] = p;
        p = nl;
    }
    v[k] = NULL;
    *n = k;
    return v;
}

int cs_fuzz_conf(const uint8_t *data, size_t size)
{
    char err[512];
    static int rendered;
    cs_fuzz_quiet();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* The parts: text, then after the first NUL the environment, after the second --set. */
    char *env = NULL, *sets = NULL, *nul = memchr(text, '\0', size);
    if (nul) {
        env = nul + 1;
        nul = memchr(env, '\0', (size_t)(text + size - env));
        if (nul)
            sets = nul + 1;
    }

    cs_conf_t *c = cs_conf_new("crmsync-fuzz", "fuzz", opts);
    if (!c || cs_conf_add_opts(c, cs_api_opts) || cs_conf_add_opts(c, cs_topics_opts))
        cs_fuzz_fail("conf", "cs_conf_new");
    if (!rendered) { /* static output: once is enough */
        rendered = 1;
        membuf_t h = render(cs_conf_print_help, c), m = render(cs_conf_print_markdown, c);
        free(h.buf);
        free(m.buf);
    }

    err[0] = '\0';
    int rc = cs_conf_load_string(c, text, "fuzz.conf", err, sizeof err);
    if (rc && rc != CS_ERR_NOMEM && !err[0])
        cs_fuzz_fail("conf", "load_string failed (%s) without a message", cs_err_name(rc));
    if (rc == CS_OK && env) {
        size_t n;
        char **envp = lines(env, &n);
        err[0] = '\0';
        rc = cs_conf_load_env(c, envp, err, sizeof err);
        if (rc && !err[0])
            cs_fuzz_fail("conf", "load_env failed without a message");
        free(envp);
    }
    if (rc == CS_OK && sets) {
        size_t n;
        char **sv = lines(sets, &n);
        for (size_t i = 0; i < n && rc == CS_OK; i++) {
            char *eq = strchr(sv[i], '=');
            if (!eq)
                continue;
            *eq = '\0';
            err[0] = '\0';
            rc = cs_conf_set(c, sv[i], eq + 1, err, sizeof err);
            if (rc && !err[0])
                cs_fuzz_fail("conf", "cs_conf_set failed without a message");
        }
        free(sv);
    }
    check(c);
    cs_conf_destroy(c);
    free(text);
    return 0;
}

CS_FUZZ_ENTRY(conf)
