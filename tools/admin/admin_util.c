/* crmsync-admin helpers: subcommand arguments, text tables, JSON output, times, and the
 * sync-consumer replicas' admin endpoints. */
#include "admin.h"

#include "cs_err.h"
#include "cs_http.h"
#include "cs_time.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const cs_opt_t adm_opts[] = {
    {"group.id", CS_OPT_STRING, "crmsync-sync", 0, 0, 0,
     "consumer group of the sync consumers (status, replay)"},
    {"admin.consumers", CS_OPT_STRING, "", 0, 0, 0,
     "comma list of the sync-consumer replicas' HTTP base URLs (http://host:port), for "
     "status, queue and prospect"},
    {"admin.timeout.ms", CS_OPT_INT, "10000", 100, 600000, 0,
     "how long one Kafka request or replica call may take before the command fails"},
    CS_OPT_END,
};

int adm_fail(const adm_t *a, int status, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "crmsync-admin%s%s: ", a && a->cmd ? " " : "", a && a->cmd ? a->cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

/* ---------------------------------------------------------------- arguments */

static int parse_count(const char *s, long long *out)
{
    char *end;
    long long v;
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int adm_parse_args(adm_t *a, const char *help, const adm_arg_t *args, int argc, char **argv,
                   char **pos, int *npos)
{
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq;
        const adm_arg_t *o = NULL;
        size_t nlen;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(help, stdout);
            return -1;
        }
        if (!strcmp(arg, "--")) {
            while (++i < argc)
                pos[(*npos)++] = argv[i];
            break;
        }
        if (strncmp(arg, "--", 2) || !arg[2]) {
            pos[(*npos)++] = argv[i];
            continue;
        }
        eq = strchr(arg, '=');
        nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        for (const adm_arg_t *t = args; t && t->name; t++)
            if (strlen(t->name) == nlen && !strncmp(t->name, arg, nlen))
                o = t;
        if (!o)
            return adm_fail(a, ADM_USAGE, "unknown option %.*s (see %s --help)", (int)nlen, arg,
                            a->cmd);
        if (o->kind == ADM_ARG_FLAG) {
            if (eq)
                return adm_fail(a, ADM_USAGE, "%s takes no value", o->name);
            *(int *)o->out = 1;
            continue;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return adm_fail(a, ADM_USAGE, "%s needs a value", o->name);
        switch (o->kind) {
        case ADM_ARG_STR:
            *(const char **)o->out = val;
            break;
        case ADM_ARG_INT:
            if (parse_count(val, (long long *)o->out))
                return adm_fail(a, ADM_USAGE, "%s: '%s' is not a non-negative integer", o->name,
                                val);
            break;
        case ADM_ARG_LIST: {
            adm_list_t *l = o->out;
            const char **v = realloc(l->v, (size_t)(l->n + 1) * sizeof(*v));
            if (!v)
                return adm_fail(a, ADM_FAIL, "out of memory");
            l->v = v;
            l->v[l->n++] = val;
            break;
        }
        default:
            break;
        }
    }
    return ADM_OK;
}

void adm_list_free(adm_list_t *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* ---------------------------------------------------------------- tables */

struct adm_table_s {
    int ncols;
    char **cells; /* headers first, row after row */
    size_t n, cap;
};

adm_table_t *adm_table_new(int ncols, const char *const *headers)
{
    adm_table_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ncols = ncols;
    for (int c = 0; c < ncols; c++)
        adm_table_cell(t, "%s", headers[c]);
    return t;
}

void adm_table_cell(adm_table_t *t, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    if (!t)
        return;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **c = realloc(t->cells, cap * sizeof(*c));
        if (!c)
            return;
        t->cells = c;
        t->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    /* Keep the grid intact even when out of memory: an empty cell. */
    t->cells[t->n++] = s ? s : strdup("");
}

int adm_table_rows(const adm_table_t *t)
{
    return t ? (int)(t->n / (size_t)t->ncols) - 1 : 0;
}

void adm_table_print(const adm_table_t *t, FILE *out)
{
    size_t *w;
    if (!t || !(w = calloc((size_t)t->ncols, sizeof(*w))))
        return;
    for (size_t i = 0; i < t->n; i++) {
        const char *s = t->cells[i] ? t->cells[i] : "";
        size_t len = strlen(s) - (i < (size_t)t->ncols && s[0] == '>');
        if (len > w[i % (size_t)t->ncols])
            w[i % (size_t)t->ncols] = len;
    }
    for (size_t r = 0; r + (size_t)t->ncols <= t->n; r += (size_t)t->ncols) {
        for (int c = 0; c < t->ncols; c++) {
            const char *h = t->cells[c] ? t->cells[c] : "";
            const char *s = t->cells[r + (size_t)c] ? t->cells[r + (size_t)c] : "";
            int right = h[0] == '>', last = c == t->ncols - 1;
            if (r == 0 && right)
                s++;
            if (c)
                fputs("  ", out);
            if (right)
                fprintf(out, "%*s", (int)w[c], s);
            else if (last)
                fputs(s, out);
            else
                fprintf(out, "%-*s", (int)w[c], s);
        }
        fputc('\n', out);
    }
    free(w);
}

void adm_table_destroy(adm_table_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

/* ---------------------------------------------------------------- output */

int adm_print_json(json_t *doc)
{
    int rc;
    if (!doc)
        return adm_fail(NULL, ADM_FAIL, "out of memory");
    rc = json_dumpf(doc, stdout, JSON_INDENT(2));
    json_decref(doc);
    fputc('\n', stdout);
    return rc ? ADM_FAIL : ADM_OK;
}

const char *adm_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0 || cs_time_format_iso8601(ms, CS_TIME_FMT_MS, buf, size) != CS_OK)
        snprintf(buf, size, "-");
    return buf;
}

int adm_key_normalize(const char *in, char *out, size_t size)
{
    size_t len;
    while (isspace((unsigned char)*in))
        in++;
    len = strlen(in);
    while (len && isspace((unsigned char)in[len - 1]))
        len--;
    if (!len || len >= size)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- replicas */

int adm_replicas(const adm_t *a, char ***urls)
{
    const char *s = cs_conf_str(a->conf, "admin.consumers");
    int n = 0;
    *urls = NULL;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        while (len && isspace((unsigned char)*s))
            s++, len--;
        while (len && (isspace((unsigned char)s[len - 1]) || s[len - 1] == '/'))
            len--;
        if (len) {
            char **u = realloc(*urls, (size_t)(n + 1) * sizeof(*u));
            if (!u || !(u[n] = strndup(s, len))) {
                if (u)
                    *urls = u;
                adm_replicas_free(*urls, n);
                *urls = NULL;
                return 0;
            }
            *urls = u;
            n++;
        }
        s = end ? end + 1 : NULL;
    }
    return n;
}

void adm_replicas_free(char **urls, int n)
{
    for (int i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
}

json_t *adm_replica_get(const adm_t *a, const char *base, const char *path, int *status,
                        char *errstr, size_t errstr_size)
{
    cs_http_opts_t o;
    cs_http_result_t res;
    cs_http_t *h;
    json_t *j = NULL;
    char *url = NULL;
    *status = 0;
    memset(&o, 0, sizeof(o));
    o.timeout_ms = a->timeout_ms;
    o.connect_timeout_ms = a->timeout_ms < 3000 ? a->timeout_ms : 3000;
    o.name = "admin";
    if (!(h = cs_http_new(&o, errstr, errstr_size)))
        return NULL;
    if (asprintf(&url, "%s%s", base, path) < 0) {
        cs_http_destroy(h);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    cs_http_request(h, "GET", url, NULL, NULL, 0, &res);
    *status = res.status;
    if (res.status)
        j = json_incref(cs_http_result_json(&res));
    if (!res.status)
        snprintf(errstr, errstr_size, "%s", res.errstr);
    else if (!j)
        snprintf(errstr, errstr_size, "GET %s: HTTP %d without a JSON body", url, res.status);
    free(url);
    cs_http_destroy(h);
    return j;
}
