/* cs_http: libcurl client, response classification, backoff and the OAuth token provider.
 *
 * One easy handle per client: curl keeps the connection (and TLS session) open between
 * calls, so a worker pays the handshake once. Options that depend on the request (method,
 * body, headers) are all set on every call, because an easy handle remembers them. */
#include "cs_http.h"
#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef CRMSYNC_VERSION
#define DEFAULT_UA "crmsync/" CRMSYNC_VERSION
#else
#define DEFAULT_UA "crmsync/0.1"
#endif
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_MAX_RESPONSE (64u * 1024 * 1024)
#define TOKEN_MAX 4096
/* A 2xx body is only inspected for a marketing error when it is this small. */
#define SMALL_BODY 4096

/* Outcomes counted per client (metrics label result="..."). */
static const int outcome_err[] = {
    CS_OK,       CS_ERR_TRANSPORT, CS_ERR_TIMEOUT,  CS_ERR_HTTP_5XX, CS_ERR_RATE_LIMIT,
    CS_ERR_AUTH, CS_ERR_NOT_FOUND, CS_ERR_HTTP_4XX, CS_ERR_TOO_LARGE};
static const char *const outcome_name[] = {"ok",        "transport",  "timeout",
                                           "http_5xx",  "rate_limit", "auth",
                                           "not_found", "http_4xx",   "too_large"};
#define N_OUTCOMES (sizeof(outcome_err) / sizeof(outcome_err[0]))

struct cs_http_s {
    CURL *curl;
    CURLM *multi; /* with an idle callback: the transfer runs through it */
    cs_http_idle_cb_t idle;
    void *idle_opaque;
    cs_http_opts_t opts; /* strings below are our copies */
    char *name, *user_agent, *ca_file;
    char curl_err[CURL_ERROR_SIZE];

    /* response state, reset by each attempt */
    char *buf;
    size_t len, cap;
    int too_big;
    int retry_after_s;
    long api_used, api_max;
    json_t *json;    /* parsed body (cached); owned */
    int json_parsed; /* the body was parsed (json may still be NULL) */

    char token[TOKEN_MAX];

    cs_counter_t *outcomes[N_OUTCOMES];
    cs_counter_t *other_outcome;
    cs_hist_t *latency;
    cs_gauge_t *api_used_g, *api_max_g;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    /* curl_global_init is not thread-safe in every build: done once, here. */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

static void copy_str(char *dst, size_t size, const char *src)
{
    if (!dst || !size)
        return;
    snprintf(dst, size, "%s", src ? src : "");
}

/* ---- pure helpers ---- */

char *cs_http_escape(const char *s, size_t len, int form_plus)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[o++] = (char)ch;
        } else if (ch == ' ' && form_plus) {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return out;
}

static int parse_usage_pair(const char *v, size_t n, long *used, long *max)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return CS_ERR_PARSE;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    char *end;
    long u = strtol(tmp, &end, 10);
    if (end == tmp || *end != '/' || u < 0)
        return CS_ERR_PARSE;
    char *p = end + 1;
    long m = strtol(p, &end, 10);
    if (end == p || m < 0)
        return CS_ERR_PARSE;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end)
        return CS_ERR_PARSE;
    *used = u;
    *max = m;
    return CS_OK;
}

int cs_http_parse_limit_info(const char *value, long *used, long *max)
{
    long u, m;
    if (!value || !used || !max)
        return CS_ERR_INVAL;
    /* A bare "N/M" (Account Engagement x-api-usage). */
    if (!strchr(value, '=')) {
        while (*value == ' ' || *value == '\t')
            value++;
        if (parse_usage_pair(value, strlen(value), &u, &m) == CS_OK) {
            *used = u;
            *max = m;
            return CS_OK;
        }
        return CS_ERR_PARSE;
    }
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ';' && *p != ',')
            p++;
        const char *eq = memchr(start, '=', (size_t)(p - start));
        if (eq) {
            size_t klen = (size_t)(eq - start);
            while (klen && (start[klen - 1] == ' ' || start[klen - 1] == '\t'))
                klen--;
            const char *v = eq + 1;
            while (v < p && (*v == ' ' || *v == '\t'))
                v++;
            if (klen == 9 && !strncasecmp(start, "api-usage", 9) &&
                parse_usage_pair(v, (size_t)(p - v), &u, &m) == CS_OK) {
                *used = u;
                *max = m;
                return CS_OK;
            }
        }
    }
    return CS_ERR_PARSE;
}

int cs_http_parse_retry_after(const char *value, int64_t now_s)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (!*value)
        return -1;
    if (isdigit((unsigned char)*value)) {
        char *end;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end || s < 0)
            return -1;
        return s > 86400 ? 86400 : (int)s;
    }
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t d = (int64_t)t - now_s;
    if (d < 0)
        d = 0;
    return d > 86400 ? 86400 : (int)d;
}

/* Which API error a parsed body names. */
typedef struct {
    const char *sf_code;   /* Salesforce errorCode */
    long mk_code;          /* Account Engagement code, -1 when none */
    const char *oauth_err; /* OAuth "error" */
    const char *message;
} api_err_t;

static void api_err_extract(const json_t *j, int strict_marketing, api_err_t *e)
{
    memset(e, 0, sizeof(*e));
    e->mk_code = -1;
    if (json_is_array(j))
        j = json_array_get(j, 0);
    if (!json_is_object(j))
        return;
    const json_t *ec = json_object_get(j, "errorCode");
    const json_t *code = json_object_get(j, "code");
    const json_t *msg = json_object_get(j, "message");
    const json_t *oe = json_object_get(j, "error");
    if (json_is_string(ec)) {
        e->sf_code = json_string_value(ec);
        e->message = json_string_value(msg);
    } else if (json_is_integer(code) && (!strict_marketing || json_is_string(msg))) {
        e->mk_code = (long)json_integer_value(code);
        e->message = json_string_value(msg);
    } else if (json_is_string(oe)) {
        e->oauth_err = json_string_value(oe);
        e->message = json_string_value(json_object_get(j, "error_description"));
        if (!e->message)
            e->message = json_string_value(msg);
    }
}

static int classify_parsed(int status, const json_t *j, char *api_error, size_t aes,
                           char *api_message, size_t ams)
{
    api_err_t e;
    int is_2xx = status >= 200 && status < 300;
    /* A 2xx body is a marketing error only when it really looks like one {code:int,
     * message:string}; a record that happens to have a "code" field is not an error. */
    api_err_extract(j, is_2xx, &e);
    copy_str(api_error, aes, "");
    copy_str(api_message, ams, e.message);
    if (e.sf_code) {
        copy_str(api_error, aes, e.sf_code);
    } else if (e.mk_code >= 0) {
        if (api_error && aes)
            snprintf(api_error, aes, "%ld", e.mk_code);
    } else if (e.oauth_err) {
        copy_str(api_error, aes, e.oauth_err);
    }

    if (e.mk_code == 66 || e.mk_code == 122 || e.mk_code == 202)
        return CS_ERR_RATE_LIMIT;
    if (e.mk_code == 184)
        return CS_ERR_AUTH;
    if (e.sf_code && !strcmp(e.sf_code, "REQUEST_LIMIT_EXCEEDED"))
        return CS_ERR_RATE_LIMIT;
    if (e.sf_code && !strcmp(e.sf_code, "INVALID_SESSION_ID"))
        return CS_ERR_AUTH;
    if (is_2xx) {
        if (e.mk_code >= 0) { /* another marketing code on a 2xx: not ours to judge */
            copy_str(api_error, aes, "");
            copy_str(api_message, ams, "");
        }
        return CS_OK;
    }
    if (status == 429)
        return CS_ERR_RATE_LIMIT;
    if (status >= 500 && status < 600)
        return CS_ERR_HTTP_5XX;
    if (status == 401 && !e.sf_code && e.mk_code < 0)
        return CS_ERR_AUTH;
    if (status == 404)
        return CS_ERR_NOT_FOUND;
    return CS_ERR_HTTP_4XX;
}

/* Whether a body is worth parsing for classification (cheap checks first). */
static int body_may_carry_error(int status, const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i >= len || (body[i] != '{' && body[i] != '['))
        return 0;
    if (status < 200 || status >= 300)
        return 1;
    return body[i] == '{' && len <= SMALL_BODY && memmem(body, len, "\"code\"", 6) != NULL;
}

int cs_http_classify(int status, const char *body, size_t len, char *api_error,
                     size_t api_error_size, char *api_message, size_t api_message_size)
{
    json_t *j = NULL;
    if (body && len && body_may_carry_error(status, body, len))
        j = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    int rc = classify_parsed(status, j, api_error, api_error_size, api_message, api_message_size);
    json_decref(j);
    return rc;
}

/* ---- client ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    cs_http_t *c = ud;
    size_t n = size * nmemb;
    if (c->len + n > c->opts.max_response) {
        c->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 16384;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (!nb)
            return 0;
        c->buf = nb;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, ptr, n);
    c->len += n;
    c->buf[c->len] = '\0';
    return n;
}

/* Header lines arrive one by one, "Name: value\r\n"; a status line starts a new block (after
 * a 100 Continue or a redirect) and resets what an earlier block said. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    cs_http_t *c = ud;
    size_t n = size * nmemb;
    char line[512];
    if (n >= 5 && !strncmp(ptr, "HTTP/", 5)) {
        c->retry_after_s = -1;
        c->api_used = c->api_max = -1;
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon)
        return n;
    size_t klen = (size_t)(colon - ptr);
    size_t vlen = n - klen - 1;
    if (vlen >= sizeof(line))
        return n; /* none of ours is that long */
    memcpy(line, colon + 1, vlen);
    line[vlen] = '\0';
    while (vlen && (line[vlen - 1] == '\r' || line[vlen - 1] == '\n' || line[vlen - 1] == ' '))
        line[--vlen] = '\0';
    const char *v = line;
    while (*v == ' ' || *v == '\t')
        v++;
    if (klen == 11 && !strncasecmp(ptr, "Retry-After", 11)) {
        c->retry_after_s = cs_http_parse_retry_after(v, cs_wall_ms() / 1000);
    } else if ((klen == 17 && !strncasecmp(ptr, "Sforce-Limit-Info", 17)) ||
               (klen == 11 && !strncasecmp(ptr, "x-api-usage", 11))) {
        long u, m;
        if (cs_http_parse_limit_info(v, &u, &m) == CS_OK) {
            c->api_used = u;
            c->api_max = m;
        }
    }
    return n;
}

static void register_metrics(cs_http_t *c)
{
    cs_metrics_t *m = c->opts.metrics;
    char labels[192];
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    for (size_t i = 0; i < N_OUTCOMES; i++) {
        snprintf(labels, sizeof(labels), "api=\"%s\",result=\"%s\"", c->name, outcome_name[i]);
        c->outcomes[i] = cs_metrics_counter(m, "crmsync_http_requests_total",
                                            "HTTP client requests by API and outcome", labels);
    }
    snprintf(labels, sizeof(labels), "api=\"%s\",result=\"other\"", c->name);
    c->other_outcome = cs_metrics_counter(m, "crmsync_http_requests_total",
                                          "HTTP client requests by API and outcome", labels);
    snprintf(labels, sizeof(labels), "api=\"%s\"", c->name);
    c->latency = cs_metrics_histogram(m, "crmsync_http_request_duration_seconds",
                                      "HTTP client request latency (one attempt)", labels, bounds,
                                      sizeof(bounds) / sizeof(bounds[0]));
    c->api_used_g =
        cs_metrics_gauge(m, "crmsync_api_usage_used",
                         "API calls used in the provider's window (limits header)", labels);
    c->api_max_g =
        cs_metrics_gauge(m, "crmsync_api_usage_limit",
                         "API call limit of the provider's window (limits header)", labels);
}

cs_http_t *cs_http_new(const cs_http_opts_t *opts, char *errstr, size_t errstr_size)
{
    cs_http_opts_t def = {0};
    cs_http_t *c = NULL;
    if (!opts)
        opts = &def;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        cs_err_set(errstr, errstr_size, CS_ERR_IO, "curl_global_init: %s",
                   curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        goto nomem;
    c->opts = *opts;
    if (c->opts.timeout_ms <= 0)
        c->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (!c->opts.max_response)
        c->opts.max_response = DEFAULT_MAX_RESPONSE;
    c->name = strdup(opts->name && *opts->name ? opts->name : "http");
    c->user_agent = strdup(opts->user_agent ? opts->user_agent : DEFAULT_UA);
    c->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
    if (!c->name || !c->user_agent || (opts->ca_file && !c->ca_file))
        goto nomem;
    c->opts.name = c->name;
    c->opts.user_agent = c->user_agent;
    c->opts.ca_file = c->ca_file;
    c->cap = 16384;
    c->buf = malloc(c->cap);
    if (!c->buf)
        goto nomem;
    c->buf[0] = '\0';
    c->curl = curl_easy_init();
    if (!c->curl)
        goto nomem;

    CURL *e = c->curl;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip/deflate when the server offers */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->opts.tls_insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        CS_WARN(c->name, "TLS verification is OFF for this client (tls_insecure): use only "
                         "against a local sandbox");
    } else {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (c->opts.metrics)
        register_metrics(c);
    return c;

nomem:
    cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory creating the HTTP client");
    cs_http_destroy(c);
    return NULL;
}

void cs_http_destroy(cs_http_t *c)
{
    if (!c)
        return;
    if (c->multi)
        curl_multi_cleanup(c->multi); /* the easy handle is never left attached */
    if (c->curl)
        curl_easy_cleanup(c->curl);
    json_decref(c->json);
    wipe(c->buf, c->cap); /* may hold a token endpoint answer */
    free(c->buf);
    wipe(c->token, sizeof(c->token));
    free(c->name);
    free(c->user_agent);
    free(c->ca_file);
    free(c);
}

static int curl_to_err(CURLcode cc, int too_big)
{
    switch (cc) {
    case CURLE_OK:
        return CS_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return CS_ERR_TIMEOUT;
    case CURLE_WRITE_ERROR:
        return too_big ? CS_ERR_TOO_LARGE : CS_ERR_NOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return CS_ERR_INVAL;
    case CURLE_OUT_OF_MEMORY:
        return CS_ERR_NOMEM;
    default:
        return CS_ERR_TRANSPORT;
    }
}

static int has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (; headers && *headers; headers++) {
        if (!strncasecmp(*headers, name, n) && (*headers)[n] == ':')
            return 1;
    }
    return 0;
}

/* The URL as it may appear in logs: no query string (it can be long), at most 160 chars. */
static void url_for_log(const char *url, char *out, size_t size)
{
    size_t n = strcspn(url, "?#");
    if (n > 160)
        n = 160;
    snprintf(out, size, "%.*s%s", (int)n, url, url[n] ? "?..." : "");
}

static void count_outcome(cs_http_t *c, int err)
{
    if (!c->opts.metrics)
        return;
    for (size_t i = 0; i < N_OUTCOMES; i++) {
        if (outcome_err[i] == err) {
            cs_counter_add(c->outcomes[i], 1);
            return;
        }
    }
    cs_counter_add(c->other_outcome, 1);
}

/* Forgets the previous response: body, headers seen, parsed JSON. */
static void reset_response(cs_http_t *c)
{
    c->len = 0;
    c->buf[0] = '\0';
    c->too_big = 0;
    c->retry_after_s = -1;
    c->api_used = c->api_max = -1;
    c->curl_err[0] = '\0';
    json_decref(c->json);
    c->json = NULL;
    c->json_parsed = 0;
}

void cs_http_set_idle(cs_http_t *c, cs_http_idle_cb_t idle, void *opaque)
{
    c->idle = idle;
    c->idle_opaque = opaque;
}

/* curl_easy_perform(), but through a multi handle, calling the idle callback between
 * transfers: the caller's thread does its other work while the server answers. */
static CURLcode perform_idle(cs_http_t *c)
{
    CURLcode cc = CURLE_OK;
    CURLMsg *msg;
    int running = 1, left;
    if (!c->multi && !(c->multi = curl_multi_init()))
        return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(c->multi, c->curl) != CURLM_OK)
        return CURLE_FAILED_INIT;
    for (;;) {
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) {
            snprintf(c->curl_err, sizeof(c->curl_err), "curl_multi_perform: %s",
                     curl_multi_strerror(mc));
            cc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
            break;
        }
        if (!running)
            break;
        if (c->idle(c->idle_opaque) > 0)
            continue;
        mc = curl_multi_poll(c->multi, NULL, 0, 2, NULL);
        if (mc != CURLM_OK) {
            snprintf(c->curl_err, sizeof(c->curl_err), "curl_multi_poll: %s",
                     curl_multi_strerror(mc));
            cc = CURLE_FAILED_INIT;
            break;
        }
    }
    while ((msg = curl_multi_info_read(c->multi, &left)))
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->curl && cc == CURLE_OK)
            cc = msg->data.result;
    curl_multi_remove_handle(c->multi, c->curl);
    return cc;
}

/* One attempt. Fills res (except the auth retry bookkeeping) and returns res->err. */
static int perform(cs_http_t *c, const char *method, const char *url, const char *const *headers,
                   const char *body, size_t len, const char *token, cs_http_result_t *res)
{
    CURL *e = c->curl;
    struct curl_slist *hl = NULL, *tmp;
    char logurl[192];
    int rc = CS_OK;

    url_for_log(url, logurl, sizeof(logurl));
    reset_response(c);

    for (const char *const *h = headers; h && *h; h++) {
        if (!(tmp = curl_slist_append(hl, *h)))
            goto nomem;
        hl = tmp;
    }
    if (body && !has_header(headers, "Content-Type")) {
        if (!(tmp = curl_slist_append(hl, "Content-Type: application/json")))
            goto nomem;
        hl = tmp;
    }
    if (token) {
        char auth[TOKEN_MAX + 32];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        tmp = curl_slist_append(hl, auth);
        wipe(auth, sizeof(auth));
        if (!tmp)
            goto nomem;
        hl = tmp;
    }

    /* Reset everything an earlier call may have set, then set this call's method. */
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (!strcmp(method, "GET")) {
        /* HTTPGET above */
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(method, "POST") || body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        if (strcmp(method, "POST"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method); /* DELETE etc. without a body */
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);

    int64_t t0 = cs_now_us();
    CURLcode cc = c->idle ? perform_idle(c) : curl_easy_perform(e);
    int64_t dt = cs_now_us() - t0;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl); /* frees the Authorization line too */
    hl = NULL;
    if (c->latency)
        cs_hist_observe(c->latency, (double)dt / 1e6);

    long status = 0, connects = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    res->connects += (int)connects;
    res->body = c->buf;
    res->body_len = c->len;
    res->retry_after_s = c->retry_after_s;
    res->api_used = c->api_used;
    res->api_max = c->api_max;
    res->api_error[0] = res->api_message[0] = '\0';

    if (cc != CURLE_OK) {
        res->status = 0;
        rc = curl_to_err(cc, c->too_big);
        snprintf(res->errstr, sizeof(res->errstr), "%.10s %.170s: %.250s", method, logurl,
                 c->too_big       ? "response body over max_response"
                 : c->curl_err[0] ? c->curl_err
                                  : curl_easy_strerror(cc));
    } else {
        res->status = (int)status;
        if (c->len && body_may_carry_error(res->status, c->buf, c->len)) {
            c->json = json_loadb(c->buf, c->len, JSON_DECODE_ANY, NULL);
            c->json_parsed = 1;
        }
        rc = classify_parsed(res->status, c->json, res->api_error, sizeof(res->api_error),
                             res->api_message, sizeof(res->api_message));
        if (rc == CS_OK)
            snprintf(res->errstr, sizeof(res->errstr), "%.10s %.170s: HTTP %d", method, logurl,
                     res->status);
        else
            snprintf(res->errstr, sizeof(res->errstr), "%.10s %.170s: HTTP %d%s%.63s%s%.200s",
                     method, logurl, res->status, res->api_error[0] ? " " : "", res->api_error,
                     res->api_message[0] ? ": " : "", res->api_message);
    }
    if (c->api_used >= 0 && c->api_used_g) {
        cs_gauge_set(c->api_used_g, c->api_used);
        cs_gauge_set(c->api_max_g, c->api_max);
    }
    count_outcome(c, rc);
    CS_DEBUG(c->name, "%s -> %s in %.1f ms", res->errstr, rc ? cs_err_name(rc) : "OK",
             (double)dt / 1000.0);
    res->err = rc;
    return rc;

nomem:
    curl_slist_free_all(hl);
    snprintf(res->errstr, sizeof(res->errstr), "%.10s %.170s: out of memory", method, logurl);
    res->err = CS_ERR_NOMEM;
    return CS_ERR_NOMEM;
}

int cs_http_request(cs_http_t *c, const char *method, const char *url, const char *const *headers,
                    const char *body, size_t len, cs_http_result_t *res)
{
    int rc;
    if (!res)
        return CS_ERR_INVAL;
    memset(res, 0, sizeof(*res));
    res->retry_after_s = -1;
    res->api_used = res->api_max = -1;
    res->body = "";
    if (!c || !method || !url || (!body && len)) {
        snprintf(res->errstr, sizeof(res->errstr), "cs_http_request: invalid arguments");
        return res->err = CS_ERR_INVAL;
    }
    res->impl_ = c;
    reset_response(c); /* res must not show the previous call's body, even on early failure */
    int64_t t0 = cs_now_us();
    for (int attempt = 0;; attempt++) {
        const char *token = NULL;
        if (c->opts.get_token) {
            c->token[0] = '\0';
            rc = c->opts.get_token(c->opts.token_opaque, attempt > 0, c->token, sizeof(c->token));
            if (rc == CS_OK && !c->token[0])
                rc = CS_ERR_AUTH;
            if (rc != CS_OK) {
                char logurl[192];
                url_for_log(url, logurl, sizeof(logurl));
                snprintf(res->errstr, sizeof(res->errstr), "%.10s %.170s: no access token (%s)",
                         method, logurl, cs_err_str(rc));
                res->err = rc < 0 ? rc : CS_ERR_AUTH;
                break;
            }
            token = c->token;
        }
        rc = perform(c, method, url, headers, body, len, token, res);
        if (rc != CS_ERR_AUTH || !c->opts.get_token || attempt > 0)
            break;
        CS_INFO(c->name, "%s: token refused, fetching a new one and retrying once", res->errstr);
        res->auth_retried = 1;
    }
    res->elapsed_us = cs_now_us() - t0;
    return res->err;
}

json_t *cs_http_result_json(cs_http_result_t *res)
{
    if (!res || !res->impl_)
        return NULL;
    cs_http_t *c = res->impl_;
    if (!c->json_parsed) {
        c->json_parsed = 1;
        if (c->len)
            c->json = json_loadb(c->buf, c->len, JSON_DECODE_ANY, NULL);
    }
    return c->json;
}

/* ---- backoff ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: plenty for jitter, no shared state, no locks. */
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n]. */
static int64_t rng_upto(uint64_t *s, int64_t n)
{
    return n <= 0 ? 0 : (int64_t)(rng_next(s) % (uint64_t)(n + 1));
}

void cs_backoff_init(cs_backoff_t *b)
{
    if (!b)
        return;
    memset(b, 0, sizeof(*b));
    b->base_ms = 200;
    b->max_ms = 30000;
    b->rate_base_ms = 5000;
    b->rate_max_ms = 300000;
    b->rng = (uint64_t)cs_now_us() ^ ((uint64_t)(uintptr_t)b << 16) ^ 0x9E3779B97F4A7C15ull;
}

void cs_backoff_reset(cs_backoff_t *b)
{
    if (b)
        b->attempt = 0;
}

#define RETRY_AFTER_CAP_MS (3600 * 1000LL)

int64_t cs_backoff_next(cs_backoff_t *b, int err, int retry_after_s)
{
    if (!b || err == CS_OK || cs_err_class(err) != CS_CLASS_RETRY)
        return -1;
    if (b->max_attempts > 0 && b->attempt >= b->max_attempts)
        return -1;
    int n = b->attempt++;
    if (retry_after_s > 0) {
        int64_t ra = (int64_t)retry_after_s * 1000;
        if (ra > RETRY_AFTER_CAP_MS)
            ra = RETRY_AFTER_CAP_MS;
        int64_t j = ra / 10 < 1000 ? ra / 10 : 1000;
        return ra + rng_upto(&b->rng, j);
    }
    int rate = err == CS_ERR_RATE_LIMIT;
    int64_t base = rate ? b->rate_base_ms : b->base_ms;
    int64_t max = rate ? b->rate_max_ms : b->max_ms;
    if (base < 1)
        base = 1;
    if (max < base)
        max = base;
    int64_t cap = base;
    for (int i = 0; i < n && cap < max; i++)
        cap *= 2;
    if (cap > max)
        cap = max;
    return cap - cap / 2 + rng_upto(&b->rng, cap / 2);
}

/* ---- OAuth ---- */

struct cs_oauth_s {
    pthread_mutex_t lock;
    cs_http_t *http;
    char *token_url;
    char *form; /* the request body: holds the secrets; wiped on destroy */
    size_t form_len;
    char token[TOKEN_MAX];
    char instance_url[512];
    char user_id[19];   /* the user behind the token (last segment of its "id" URL), "" unknown */
    int64_t fetched_ms; /* monotonic time of the last successful fetch, 0 = none */
    unsigned fetches;
    int64_t min_refresh_ms;
};

static int form_add(char **buf, size_t *len, const char *key, const char *value)
{
    char *k = cs_http_escape(key, strlen(key), 1);
    char *v = cs_http_escape(value, strlen(value), 1);
    int rc = CS_ERR_NOMEM;
    if (k && v) {
        size_t add = strlen(k) + strlen(v) + 2;
        char *nb = malloc(*len + add + 1);
        if (nb) {
            if (*buf)
                memcpy(nb, *buf, *len);
            snprintf(nb + *len, add + 1, "%s%s=%s", *len ? "&" : "", k, v);
            wipe(*buf, *len);
            free(*buf);
            *buf = nb;
            *len = strlen(nb);
            rc = CS_OK;
        }
    }
    if (v)
        wipe(v, strlen(v));
    free(k);
    free(v);
    return rc;
}

void cs_oauth_destroy(cs_oauth_t *o)
{
    if (!o)
        return;
    cs_http_destroy(o->http);
    free(o->token_url);
    wipe(o->form, o->form_len);
    free(o->form);
    wipe(o->token, sizeof(o->token));
    pthread_mutex_destroy(&o->lock);
    free(o);
}

cs_oauth_t *cs_oauth_new(const cs_oauth_opts_t *opts, char *errstr, size_t errstr_size)
{
    cs_oauth_t *o = NULL;
    if (!opts || !opts->login_url || !*opts->login_url || !opts->client_id ||
        !opts->client_secret) {
        cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                   "oauth: login_url, client_id and client_secret are required");
        return NULL;
    }
    const char *grant =
        opts->grant_type && *opts->grant_type ? opts->grant_type : "client_credentials";
    int password = !strcmp(grant, "password");
    if (!password && strcmp(grant, "client_credentials")) {
        cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                   "oauth: grant_type must be client_credentials or password, not %s", grant);
        return NULL;
    }
    if (password && (!opts->username || !opts->password)) {
        cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                   "oauth: the password grant needs username and password");
        return NULL;
    }
    o = calloc(1, sizeof(*o));
    if (!o)
        goto nomem;
    pthread_mutex_init(&o->lock, NULL);
    o->min_refresh_ms = opts->min_refresh_ms > 0 ? opts->min_refresh_ms : 1000;

    size_t ul = strlen(opts->login_url);
    while (ul && opts->login_url[ul - 1] == '/')
        ul--;
    o->token_url = malloc(ul + sizeof("/services/oauth2/token"));
    if (!o->token_url)
        goto nomem;
    memcpy(o->token_url, opts->login_url, ul);
    strcpy(o->token_url + ul, "/services/oauth2/token");

    if (form_add(&o->form, &o->form_len, "grant_type", grant) ||
        form_add(&o->form, &o->form_len, "client_id", opts->client_id) ||
        form_add(&o->form, &o->form_len, "client_secret", opts->client_secret))
        goto nomem;
    if (password && (form_add(&o->form, &o->form_len, "username", opts->username) ||
                     form_add(&o->form, &o->form_len, "password", opts->password)))
        goto nomem;

    cs_http_opts_t hopts = {0};
    if (opts->http)
        hopts = *opts->http;
    hopts.get_token = NULL;
    hopts.token_opaque = NULL;
    hopts.metrics = NULL;
    if (!hopts.name)
        hopts.name = "oauth";
    o->http = cs_http_new(&hopts, errstr, errstr_size);
    if (!o->http) {
        cs_oauth_destroy(o);
        return NULL;
    }
    return o;

nomem:
    cs_oauth_destroy(o);
    cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
    return NULL;
}

/* Called with the lock held. */
static int oauth_fetch_locked(cs_oauth_t *o, char *errstr, size_t errstr_size)
{
    static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                                       "Accept: application/json", NULL};
    cs_http_result_t res;
    cs_http_t *c = o->http;
    int rc = cs_http_request(c, "POST", o->token_url, hdrs, o->form, o->form_len, &res);
    if (rc == CS_ERR_HTTP_4XX || rc == CS_ERR_AUTH) {
        /* 400/401 {"error","error_description"}: the endpoint refused the credentials or the
         * grant; retrying the same request gives the same answer until someone fixes it. */
        rc =
            cs_err_set(errstr, errstr_size, CS_ERR_AUTH, "token endpoint refused (HTTP %d): %s%s%s",
                       res.status, res.api_error[0] ? res.api_error : "no error code",
                       res.api_message[0] ? ": " : "", res.api_message);
        goto out;
    }
    if (rc != CS_OK) {
        cs_err_set(errstr, errstr_size, rc, "token request failed: %s", res.errstr);
        goto out;
    }
    json_t *j = cs_http_result_json(&res);
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    const char *inst = json_string_value(json_object_get(j, "instance_url"));
    if (!tok || !*tok) {
        rc = cs_err_set(errstr, errstr_size, CS_ERR_PARSE,
                        "token endpoint answered HTTP %d without an access_token", res.status);
        goto out;
    }
    if (strlen(tok) >= sizeof(o->token)) {
        rc = cs_err_set(errstr, errstr_size, CS_ERR_TOO_LARGE, "access_token longer than %zu",
                        sizeof(o->token) - 1);
        goto out;
    }
    wipe(o->token, sizeof(o->token));
    strcpy(o->token, tok);
    if (inst)
        snprintf(o->instance_url, sizeof(o->instance_url), "%s", inst);
    {
        /* "id": "https://login.salesforce.com/id/00D.../005...": the user's id is last */
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *slash = id ? strrchr(id, '/') : NULL;
        if (slash && (strlen(slash + 1) == 18 || strlen(slash + 1) == 15))
            snprintf(o->user_id, sizeof(o->user_id), "%s", slash + 1);
    }
    o->fetched_ms = cs_now_ms();
    if (o->fetched_ms == 0)
        o->fetched_ms = 1;
    o->fetches++;
    CS_INFO("oauth", "access token obtained (instance %s)",
            o->instance_url[0] ? o->instance_url : "unknown");
    rc = CS_OK;
out:
    /* The parsed JSON and the raw body hold the token: drop both now. */
    json_decref(c->json);
    c->json = NULL;
    c->json_parsed = 1;
    wipe(c->buf, c->len);
    c->len = 0;
    return rc;
}

int cs_oauth_fetch(cs_oauth_t *o, char *errstr, size_t errstr_size)
{
    if (!o)
        return CS_ERR_INVAL;
    pthread_mutex_lock(&o->lock);
    int rc = oauth_fetch_locked(o, errstr, errstr_size);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int cs_oauth_get_token(void *opaque, int force_refresh, char *buf, size_t bufsize)
{
    cs_oauth_t *o = opaque;
    char err[256];
    int rc = CS_OK;
    if (!o || !buf || !bufsize)
        return CS_ERR_INVAL;
    pthread_mutex_lock(&o->lock);
    int have = o->fetched_ms != 0;
    int recent = have && cs_now_ms() - o->fetched_ms < o->min_refresh_ms;
    if (!have || (force_refresh && !recent)) {
        rc = oauth_fetch_locked(o, err, sizeof(err));
        if (rc != CS_OK)
            CS_WARN("oauth", "%s", err);
    }
    if (rc == CS_OK) {
        if (strlen(o->token) >= bufsize)
            rc = CS_ERR_TOO_LARGE;
        else
            strcpy(buf, o->token);
    }
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int cs_oauth_instance_url(cs_oauth_t *o, char *buf, size_t bufsize)
{
    int rc = CS_OK;
    if (!o || !buf || !bufsize)
        return CS_ERR_INVAL;
    pthread_mutex_lock(&o->lock);
    if (!o->fetched_ms || !o->instance_url[0])
        rc = CS_ERR_STATE;
    else if (strlen(o->instance_url) >= bufsize)
        rc = CS_ERR_TOO_LARGE;
    else
        strcpy(buf, o->instance_url);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int cs_oauth_user_id(cs_oauth_t *o, char *buf, size_t bufsize)
{
    int rc = CS_OK;
    if (!o || !buf || bufsize < 19)
        return CS_ERR_INVAL;
    pthread_mutex_lock(&o->lock);
    if (!o->user_id[0])
        rc = CS_ERR_STATE;
    else
        snprintf(buf, bufsize, "%s", o->user_id);
    pthread_mutex_unlock(&o->lock);
    return rc;
}

unsigned cs_oauth_fetch_count(cs_oauth_t *o)
{
    if (!o)
        return 0;
    pthread_mutex_lock(&o->lock);
    unsigned n = o->fetches;
    pthread_mutex_unlock(&o->lock);
    return n;
}
