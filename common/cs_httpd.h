/* cs_httpd: the HTTP server helper over libmicrohttpd, used by every long-running process
 * (for /metrics and /healthz), the activity ingest endpoint and the sandbox.
 *
 * The server runs its own threads (MHD internal polling thread pool); the handler is called
 * from those threads, once per request, with the whole body read (bounded by max_body: a
 * larger body is answered 413 without calling the handler). */
#ifndef CS_HTTPD_H
#define CS_HTTPD_H

#include <stddef.h>

#include <jansson.h>

#include "cs_metrics.h"

typedef struct cs_httpd_s cs_httpd_t;

typedef struct cs_httpd_req_s {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* URL path without the query string, e.g. "/api/v5/objects/prospects" */
    const char *body;   /* NUL-terminated copy of the body ("" when none) */
    size_t body_len;
    void *impl_; /* private */
} cs_httpd_req_t;

typedef struct cs_httpd_resp_s cs_httpd_resp_t;

/* Returns the value of a request header (case-insensitive name) or NULL. Borrowed until the
 * handler returns. */
const char *cs_httpd_req_header(const cs_httpd_req_t *req, const char *name);

/* Returns a decoded query-string argument (or, for application/x-www-form-urlencoded
 * bodies, use cs_httpd_form_parse) or NULL. Borrowed until the handler returns. */
const char *cs_httpd_req_arg(const cs_httpd_req_t *req, const char *name);

/* Calls cb for each query-string argument; stops when cb returns non-zero. */
void cs_httpd_req_foreach_arg(const cs_httpd_req_t *req,
                              int (*cb)(void *opaque, const char *key, const char *value),
                              void *opaque);

/* Parses an application/x-www-form-urlencoded body ("a=1&b=x%20y+z"): calls cb with each
 * percent-decoded key and value ('+' decodes to a space; a pair without '=' has value "";
 * empty pairs are skipped). The strings passed to cb live only during the call. Stops early
 * and returns cb's value when cb returns non-zero. Returns CS_OK, CS_ERR_PARSE on a bad
 * escape (nothing after the bad pair is reported), CS_ERR_NOMEM. Pure function, any thread. */
int cs_httpd_form_parse(const char *body, size_t len,
                        int (*cb)(void *opaque, const char *key, const char *value), void *opaque);

/* Response building (each may be called once per request; the last status wins).
 * cs_httpd_resp_json steals the reference to body. */
void cs_httpd_resp_status(cs_httpd_resp_t *resp, int status);
void cs_httpd_resp_header(cs_httpd_resp_t *resp, const char *name, const char *value);
void cs_httpd_resp_json(cs_httpd_resp_t *resp, int status, json_t *body);
void cs_httpd_resp_text(cs_httpd_resp_t *resp, int status, const char *content_type,
                        const char *body, size_t len);

/* The handler fills resp. Returning without setting anything answers 404. */
typedef void (*cs_httpd_handler_t)(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp);

/* Health callback for /healthz: returns 0 when healthy, and may write a short reason. */
typedef int (*cs_httpd_health_cb_t)(void *opaque, char *reason, size_t reason_size);

typedef struct cs_httpd_opts_s {
    const char *bind;           /* address to bind, default "127.0.0.1" */
    int port;                   /* 0 = pick a free port (see cs_httpd_port()) */
    size_t max_body;            /* default 1 MiB */
    unsigned int threads;       /* MHD thread pool size, default 2 */
    cs_httpd_handler_t handler; /* may be NULL when only /metrics and /healthz are served */
    void *opaque;
    cs_metrics_t *metrics;       /* when set, GET /metrics renders it */
    cs_httpd_health_cb_t health; /* when set, GET /healthz calls it (200 or 503); unset: 200 */
    void *health_opaque;
} cs_httpd_opts_t;

/* Starts the server. Returns NULL and fills errstr on failure (port in use, ...).
 * /metrics and /healthz are answered before the handler is consulted.
 * Caller frees with cs_httpd_destroy(), which stops it (waits for in-flight requests). */
cs_httpd_t *cs_httpd_new(const cs_httpd_opts_t *opts, char *errstr, size_t errstr_size);
void cs_httpd_destroy(cs_httpd_t *h); /* accepts NULL */

/* The bound port (useful with port 0). */
int cs_httpd_port(const cs_httpd_t *h);

#endif
