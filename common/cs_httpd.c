/* cs_httpd: the server helper over libmicrohttpd (0.9.7x API).
 *
 * Request flow (MHD calls the access handler several times per request):
 *   1st call  headers are in: allocate the per-request context. A Content-Length above
 *             max_body is answered 413 right away; MHD then reads no body and closes the
 *             connection after the response (it cannot skip the body otherwise).
 *   Nth call  a piece of the body: appended to the context's buffer while it fits in
 *             max_body. A body without Content-Length (chunked) that grows past max_body is
 *             dropped as it arrives (never stored) and answered 413 once complete; past
 *             DISCARD_FACTOR * max_body the connection is closed instead, so a client cannot
 *             make us read without end.
 *   last call *upload_data_size == 0: built-in routes, else the handler, then the response.
 * The context is freed in the completion callback, which MHD calls for every request that
 * got a context, whatever the outcome (client gone, timeout, shutdown). */
#include "cs_httpd.h"
#include "cs_err.h"
#include "cs_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LOG_COMP "httpd"
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DISCARD_FACTOR 4

typedef struct resp_hdr_s {
    struct resp_hdr_s *next;
    char *name, *value;
} resp_hdr_t;

struct cs_httpd_resp_s {
    int status; /* 0 = nothing set */
    char *content_type;
    char *body;
    size_t len;
    resp_hdr_t *headers;
};

typedef struct req_ctx_s {
    cs_httpd_req_t req;
    struct MHD_Connection *conn;
    char *buf;
    size_t len, cap;
    size_t dropped; /* body bytes seen beyond max_body (not stored) */
    int too_large;
    int answered;
} req_ctx_t;

struct cs_httpd_s {
    struct MHD_Daemon *daemon;
    cs_httpd_opts_t opts;
    int port;
    cs_counter_t *req_by_class[6]; /* index status / 100; NULL without metrics */
};

/* ---- request accessors ---- */

const char *cs_httpd_req_header(const cs_httpd_req_t *req, const char *name)
{
    if (!req || !req->impl_ || !name)
        return NULL;
    const req_ctx_t *ctx = req->impl_;
    return MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, name);
}

const char *cs_httpd_req_arg(const cs_httpd_req_t *req, const char *name)
{
    if (!req || !req->impl_ || !name)
        return NULL;
    const req_ctx_t *ctx = req->impl_;
    return MHD_lookup_connection_value(ctx->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct {
    int (*cb)(void *, const char *, const char *);
    void *opaque;
} arg_iter_t;

static enum MHD_Result arg_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    arg_iter_t *it = cls;
    return it->cb(it->opaque, key, value ? value : "") ? MHD_NO : MHD_YES;
}

void cs_httpd_req_foreach_arg(const cs_httpd_req_t *req,
                              int (*cb)(void *opaque, const char *key, const char *value),
                              void *opaque)
{
    if (!req || !req->impl_ || !cb)
        return;
    const req_ctx_t *ctx = req->impl_;
    arg_iter_t it = {cb, opaque};
    MHD_get_connection_values(ctx->conn, MHD_GET_ARGUMENT_KIND, arg_iter, &it);
}

/* ---- form bodies ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes src[0..n) into dst (NUL-terminated). Returns CS_ERR_PARSE on a bad or truncated
 * escape and on %00 (a C string cannot carry it). */
static int form_decode(const char *src, size_t n, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '+') {
            dst[o++] = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return CS_ERR_PARSE;
            int h = hexval(src[i + 1]), l = hexval(src[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return CS_ERR_PARSE;
            dst[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            dst[o++] = c;
        }
    }
    dst[o] = '\0';
    return CS_OK;
}

int cs_httpd_form_parse(const char *body, size_t len,
                        int (*cb)(void *opaque, const char *key, const char *value), void *opaque)
{
    if (!cb || (!body && len))
        return CS_ERR_INVAL;
    char *tmp = malloc(len + 2); /* key and value decoded back to back, each NUL-terminated */
    if (!tmp)
        return CS_ERR_NOMEM;
    int rc = CS_OK;
    size_t pos = 0;
    while (pos < len) {
        const char *pair = body + pos;
        const char *amp = memchr(pair, '&', len - pos);
        size_t plen = amp ? (size_t)(amp - pair) : len - pos;
        pos += plen + 1;
        if (plen == 0)
            continue;
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq ? (size_t)(eq - pair) : plen;
        char *key = tmp, *val = tmp + klen + 1;
        rc = form_decode(pair, klen, key);
        if (rc == CS_OK)
            rc = eq ? form_decode(eq + 1, plen - klen - 1, val) : (val[0] = '\0', CS_OK);
        if (rc != CS_OK)
            break;
        rc = cb(opaque, key, val);
        if (rc != 0)
            break;
    }
    free(tmp);
    return rc;
}

/* ---- response building ---- */

void cs_httpd_resp_status(cs_httpd_resp_t *resp, int status)
{
    if (resp)
        resp->status = status;
}

void cs_httpd_resp_header(cs_httpd_resp_t *resp, const char *name, const char *value)
{
    if (!resp || !name || !value)
        return;
    resp_hdr_t *h = calloc(1, sizeof(*h));
    if (!h)
        return;
    h->name = strdup(name);
    h->value = strdup(value);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        free(h);
        return;
    }
    h->next = resp->headers;
    resp->headers = h;
}

static void resp_set_body(cs_httpd_resp_t *resp, int status, const char *ctype, char *body,
                          size_t len)
{
    free(resp->body);
    free(resp->content_type);
    resp->status = status;
    resp->body = body;
    resp->len = body ? len : 0;
    resp->content_type = ctype ? strdup(ctype) : NULL;
}

void cs_httpd_resp_json(cs_httpd_resp_t *resp, int status, json_t *body)
{
    if (!resp) {
        json_decref(body);
        return;
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (body && !text) {
        resp_set_body(resp, 500, "text/plain", strdup("out of memory\n"), 14);
        return;
    }
    resp_set_body(resp, status, "application/json", text, text ? strlen(text) : 0);
}

void cs_httpd_resp_text(cs_httpd_resp_t *resp, int status, const char *content_type,
                        const char *body, size_t len)
{
    if (!resp)
        return;
    char *copy = NULL;
    if (body && len) {
        copy = malloc(len);
        if (!copy) {
            resp_set_body(resp, 500, NULL, NULL, 0);
            return;
        }
        memcpy(copy, body, len);
    }
    resp_set_body(resp, status, content_type ? content_type : "text/plain", copy, len);
}

static void resp_clear(cs_httpd_resp_t *resp)
{
    free(resp->body);
    free(resp->content_type);
    while (resp->headers) {
        resp_hdr_t *n = resp->headers->next;
        free(resp->headers->name);
        free(resp->headers->value);
        free(resp->headers);
        resp->headers = n;
    }
    memset(resp, 0, sizeof(*resp));
}

static void resp_error(cs_httpd_resp_t *resp, int status, const char *code, const char *message)
{
    cs_httpd_resp_json(resp, status, json_pack("{s:s, s:s}", "error", code, "message", message));
}

/* Hands resp to MHD (body ownership moves to the MHD response) and clears it. */
static enum MHD_Result send_resp(cs_httpd_t *h, req_ctx_t *ctx, cs_httpd_resp_t *resp)
{
    struct MHD_Response *r;
    if (resp->body && resp->len) {
        r = MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_FREE);
        if (r)
            resp->body = NULL; /* now owned by r */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        resp_clear(resp);
        return MHD_NO;
    }
    if (resp->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (resp_hdr_t *hd = resp->headers; hd; hd = hd->next)
        MHD_add_response_header(r, hd->name, hd->value);
    int status = resp->status ? resp->status : 200;
    enum MHD_Result ret = MHD_queue_response(ctx->conn, (unsigned int)status, r);
    MHD_destroy_response(r);
    resp_clear(resp);
    ctx->answered = 1;
    if (status >= 100 && status < 600 && h->req_by_class[status / 100])
        cs_counter_add(h->req_by_class[status / 100], 1);
    return ret;
}

/* ---- built-in routes ---- */

static int is_get(const char *method)
{
    return !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
}

/* Returns 1 when path is a built-in route and resp was filled. */
static int builtin(cs_httpd_t *h, const char *method, const char *path, cs_httpd_resp_t *resp)
{
    if (!is_get(method))
        return 0;
    if (!strcmp(path, "/metrics") && h->opts.metrics) {
        size_t len = 0;
        char *text = cs_metrics_render(h->opts.metrics, &len);
        if (!text) {
            resp_error(resp, 500, "internal", "out of memory");
            return 1;
        }
        resp_set_body(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        return 1;
    }
    if (!strcmp(path, "/healthz")) {
        char reason[256] = "";
        int rc = h->opts.health ? h->opts.health(h->opts.health_opaque, reason, sizeof(reason)) : 0;
        if (rc == 0) {
            cs_httpd_resp_text(resp, 200, "text/plain; charset=utf-8", "ok\n", 3);
        } else {
            char text[300];
            int n = snprintf(text, sizeof(text), "%s\n", reason[0] ? reason : "unhealthy");
            if (n < 0 || (size_t)n >= sizeof(text))
                n = (int)strlen(text);
            cs_httpd_resp_text(resp, 503, "text/plain; charset=utf-8", text, (size_t)n);
        }
        return 1;
    }
    return 0;
}

static enum MHD_Result answer_too_large(cs_httpd_t *h, req_ctx_t *ctx)
{
    cs_httpd_resp_t resp = {0};
    char msg[96];
    snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", h->opts.max_body);
    resp_error(&resp, 413, "too_large", msg);
    return send_resp(h, ctx, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    cs_httpd_t *h = cls;
    req_ctx_t *ctx = *con_cls;

    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return MHD_NO;
        ctx->conn = conn;
        ctx->req.impl_ = ctx;
        *con_cls = ctx;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && n > h->opts.max_body) {
                ctx->too_large = 1;
                return answer_too_large(h, ctx);
            }
            if (end != cl && n > 0) { /* the whole body in one allocation */
                ctx->buf = malloc((size_t)n + 1);
                if (!ctx->buf)
                    return MHD_NO;
                ctx->cap = (size_t)n + 1;
            }
        }
        return MHD_YES;
    }
    if (ctx->answered) { /* answered early; MHD is only draining */
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!ctx->too_large && ctx->len + n > h->opts.max_body) {
            ctx->too_large = 1;
            free(ctx->buf);
            ctx->buf = NULL;
            ctx->dropped = ctx->len;
            ctx->len = ctx->cap = 0;
        }
        if (ctx->too_large) {
            ctx->dropped += n;
            if (ctx->dropped > DISCARD_FACTOR * h->opts.max_body) {
                CS_WARN(LOG_COMP, "%s %s: body beyond %zu bytes, closing the connection", method,
                        url, ctx->dropped);
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (ctx->len + n + 1 > ctx->cap) {
            size_t cap = ctx->cap ? ctx->cap : 4096;
            while (cap < ctx->len + n + 1)
                cap *= 2;
            char *nb = realloc(ctx->buf, cap);
            if (!nb)
                return MHD_NO;
            ctx->buf = nb;
            ctx->cap = cap;
        }
        memcpy(ctx->buf + ctx->len, upload_data, n);
        ctx->len += n;
        ctx->buf[ctx->len] = '\0';
        return MHD_YES;
    }

    if (ctx->too_large)
        return answer_too_large(h, ctx);

    cs_httpd_resp_t resp = {0};
    ctx->req.method = method;
    ctx->req.path = url;
    ctx->req.body = ctx->buf ? ctx->buf : "";
    ctx->req.body_len = ctx->len;
    if (!builtin(h, method, url, &resp) && h->opts.handler)
        h->opts.handler(h->opts.opaque, &ctx->req, &resp);
    if (!resp.status) {
        resp_clear(&resp); /* headers without a status do not make a response */
        char msg[300];
        snprintf(msg, sizeof(msg), "no route for %s %.256s", method, url);
        resp_error(&resp, 404, "not_found", msg);
    }
    return send_resp(h, ctx, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_ctx_t *ctx = *con_cls;
    if (!ctx)
        return;
    free(ctx->buf);
    free(ctx);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    CS_WARN(LOG_COMP, "libmicrohttpd: %s", msg);
}

/* ---- lifecycle ---- */

cs_httpd_t *cs_httpd_new(const cs_httpd_opts_t *opts, char *errstr, size_t errstr_size)
{
    cs_httpd_t *h = NULL;
    struct addrinfo hints, *ai = NULL;
    char portstr[16];

    if (!opts || opts->port < 0 || opts->port > 65535) {
        cs_err_set(errstr, errstr_size, CS_ERR_INVAL, "invalid httpd options (port %d)",
                   opts ? opts->port : -1);
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    h->opts = *opts;
    if (!h->opts.bind || !*h->opts.bind)
        h->opts.bind = "127.0.0.1";
    if (!h->opts.max_body)
        h->opts.max_body = DEFAULT_MAX_BODY;
    if (!h->opts.threads)
        h->opts.threads = 2;
    const char *bind = h->opts.bind;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", opts->port);
    int gai = getaddrinfo(bind, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "cannot resolve bind address %s: %s", bind,
                   gai_strerror(gai));
        goto fail;
    }

    if (h->opts.metrics) {
        static const char *classes[] = {NULL, "1xx", "2xx", "3xx", "4xx", "5xx"};
        for (int i = 1; i < 6; i++) {
            char labels[32];
            snprintf(labels, sizeof(labels), "class=\"%s\"", classes[i]);
            h->req_by_class[i] = cs_metrics_counter(
                h->opts.metrics, "crmsync_httpd_requests_total",
                "HTTP requests answered by this process, by status class", labels);
        }
    }

    unsigned int flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* A pool of one is no pool (MHD warns about it): one internal thread then. */
    struct MHD_OptionItem pool[] = {
        {h->opts.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)h->opts.threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    /* The logger goes first so that MHD's own start-up complaints reach cs_log too. */
    h->daemon = MHD_start_daemon(flags, (uint16_t)opts->port, NULL, NULL, on_request, h,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_SOCK_ADDR,
                                 ai->ai_addr, MHD_OPTION_ARRAY, pool, MHD_OPTION_NOTIFY_COMPLETED,
                                 on_completed, h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
                                 MHD_OPTION_END);
    if (!h->daemon) {
        cs_err_set(errstr, errstr_size, CS_ERR_IO, "cannot start HTTP server on %s:%d (in use?)",
                   bind, opts->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info && info->port ? info->port : opts->port;
    h->opts.bind = NULL; /* borrowed from the caller; not needed any more */
    freeaddrinfo(ai);
    CS_INFO(LOG_COMP, "listening on %s:%d (%u threads, max body %zu)", bind, h->port,
            h->opts.threads, h->opts.max_body);
    return h;

fail:
    if (ai)
        freeaddrinfo(ai);
    free(h);
    return NULL;
}

void cs_httpd_destroy(cs_httpd_t *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    free(h);
}

int cs_httpd_port(const cs_httpd_t *h)
{
    return h ? h->port : -1;
}
