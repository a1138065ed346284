/* cs_http: the HTTP client (libcurl) the producers and the sync consumer use to talk to the
 * CRM (Salesforce REST) and marketing (Account Engagement v5) APIs.
 *
 * Built for the hot path: a client owns one curl easy handle (its connections stay open
 * between calls), one response buffer reused by every call, and takes the request body as
 * (pointer, length) so a batch body is built once and never copied. Every call answers a
 * cs_err code classified for both API flavours (see cs_http_classify() and docs/HTTP.md).
 *
 * Threads: a cs_http_t is used by one thread at a time (one client per worker). The token
 * provider it calls may be shared by several clients and must be thread-safe (cs_oauth is).
 *
 * Secrets: tokens, client secrets and passwords are never written to a log line or an error
 * string by this module; request and response bodies are never logged. */
#ifndef CS_HTTP_H
#define CS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cs_metrics.h"

typedef struct cs_http_s cs_http_t;

/* Token provider: writes a NUL-terminated access token into buf and returns CS_OK, or returns
 * a negative CS_ERR_* (the request then fails with that code). force_refresh = 1 after the
 * server refused the previous token: mint a new one. Called before every request (cache!). */
typedef int (*cs_http_token_cb_t)(void *opaque, int force_refresh, char *buf, size_t bufsize);

typedef struct cs_http_opts_s {
    long timeout_ms;              /* whole request, default 30000 */
    long connect_timeout_ms;      /* TCP + TLS connect, default 5000 */
    int tls_insecure;             /* 1 = do not verify the peer certificate and host name (warned
                                     once at creation); default 0 = verify */
    const char *ca_file;          /* CA bundle; NULL = the system's */
    const char *user_agent;       /* default "crmsync/<version>" */
    size_t max_response;          /* response body cap, default 64 MiB (beyond: CS_ERR_TOO_LARGE) */
    cs_http_token_cb_t get_token; /* NULL = no Authorization header */
    void *token_opaque;
    const char *name;      /* log component and metrics label api="<name>", default "http" */
    cs_metrics_t *metrics; /* optional: request counts by outcome, latency, API usage */
} cs_http_opts_t;

typedef struct cs_http_result_s {
    int err;          /* CS_OK or the CS_ERR_* cs_http_request() returned */
    int status;       /* HTTP status of the final response; 0 when none was received */
    const char *body; /* response body, NUL-terminated ("" when none); borrowed until the
                         next request on this client or cs_http_destroy() */
    size_t body_len;
    int retry_after_s; /* Retry-After (seconds or HTTP date), -1 when absent */
    long api_used;     /* Sforce-Limit-Info api-usage=N/M (or x-api-usage: N/M), -1 absent */
    long api_max;
    char api_error[64];    /* first Salesforce errorCode, marketing "code" (as text) or OAuth
                              "error"; "" when the body carried none */
    char api_message[256]; /* the matching message / error_description */
    char errstr[512];      /* one-line summary for logs: method, URL, status or curl error */
    int auth_retried;      /* 1 when the token was refreshed and the request sent again */
    int connects;          /* connections this call had to open (0 = kept-alive one reused) */
    int64_t elapsed_us;    /* wall time of the call, retry included */
    void *impl_;           /* private */
} cs_http_result_t;

/* Creates a client (opts may be NULL for defaults; strings are copied). Returns NULL and
 * fills errstr on failure. Caller frees with cs_http_destroy(). */
cs_http_t *cs_http_new(const cs_http_opts_t *opts, char *errstr, size_t errstr_size);
void cs_http_destroy(cs_http_t *c); /* accepts NULL */

/* Sends one request and waits for the answer.
 *   method  "GET", "POST", "PATCH", "PUT", "DELETE" or "HEAD"
 *   headers NULL-terminated array of "Name: value" lines, or NULL. When body is set and no
 *           Content-Type is given, "Content-Type: application/json" is added. When a token
 *           provider is set, "Authorization: Bearer <token>" is added.
 *   body    may be NULL (len 0); not copied, must stay valid during the call.
 * Returns res->err: CS_OK for 2xx, else the classification (cs_http_classify()) or, without
 * a response, CS_ERR_TIMEOUT (the request may or may not have been applied),
 * CS_ERR_TRANSPORT (connect, TLS, reset...), CS_ERR_TOO_LARGE (body over max_response),
 * CS_ERR_INVAL (bad URL or arguments). On CS_ERR_AUTH with a token provider, the token is
 * refreshed (force_refresh = 1) and the request sent once more. res is always filled. */
int cs_http_request(cs_http_t *c, const char *method, const char *url, const char *const *headers,
                    const char *body, size_t len, cs_http_result_t *res);

/* Work to do while a request waits for its answer: called between transfers on the
 * calling thread, it returns how much it did (> 0 = call again at once, 0 = nothing ready:
 * the client then waits up to 2 ms for the network). Each call should be short (well under
 * a millisecond): the answer waits until it returns. It must not use this client. NULL =
 * none (the default; requests then block in curl_easy_perform). The request's latency
 * metric includes the idle work done after the answer arrived (at most one call). */
typedef int (*cs_http_idle_cb_t)(void *opaque);
void cs_http_set_idle(cs_http_t *c, cs_http_idle_cb_t idle, void *opaque);

/* The response body parsed as JSON, parsed on the first call; NULL when it is not JSON.
 * Borrowed (do not decref) until the next request on the client. */
json_t *cs_http_result_json(cs_http_result_t *res);

/* Classifies a response from either API (pure function, any thread):
 *   marketing body {"code":66|122|202,...} (any status)        CS_ERR_RATE_LIMIT
 *   marketing body {"code":184,...}                             CS_ERR_AUTH
 *   Salesforce errorCode REQUEST_LIMIT_EXCEEDED (403)           CS_ERR_RATE_LIMIT
 *   Salesforce errorCode INVALID_SESSION_ID (401)               CS_ERR_AUTH
 *   2xx                                                         CS_OK
 *   429                                                         CS_ERR_RATE_LIMIT
 *   5xx                                                         CS_ERR_HTTP_5XX
 *   401 whose body names no other API error                     CS_ERR_AUTH
 *   404                                                         CS_ERR_NOT_FOUND
 *   any other status                                            CS_ERR_HTTP_4XX
 * Salesforce error bodies are a JSON array of {message, errorCode} (a single object is also
 * accepted); the first errorCode / marketing code / OAuth error goes into api_error and its
 * message into api_message (either buffer may be NULL). */
int cs_http_classify(int status, const char *body, size_t len, char *api_error,
                     size_t api_error_size, char *api_message, size_t api_message_size);

/* Parses a Sforce-Limit-Info value ("api-usage=18/5000; per-app-api-usage=17/250(appName=x)")
 * or a bare "18/5000" (x-api-usage). Separators "; " and ", ", unknown keys ignored.
 * Returns CS_OK or CS_ERR_PARSE (no api-usage found; outputs untouched). */
int cs_http_parse_limit_info(const char *value, long *used, long *max);

/* Parses a Retry-After value: delta-seconds or an HTTP date (relative to now_s, the epoch
 * seconds). Returns seconds >= 0, or -1 when unparsable. */
int cs_http_parse_retry_after(const char *value, int64_t now_s);

/* Percent-encodes s[0..len) for a URL query or a form body (RFC 3986 unreserved characters
 * kept, everything else %XX; form_plus = 1 writes ' ' as '+'). Returns a malloc'd string
 * (caller frees with free()), NULL on ENOMEM. */
char *cs_http_escape(const char *s, size_t len, int form_plus);

/* ---- retry / backoff ---- */

/* Exponential backoff with "equal jitter": the n-th retry (n from 0) waits a random time in
 * [cap/2, cap] with cap = min(max, base * 2^n). CS_ERR_RATE_LIMIT uses its own, longer base
 * and cap. A server's Retry-After wins: the wait is Retry-After plus up to 10% (at most 1 s)
 * of jitter, capped at 1 hour. Plain struct: init, then one per retrying loop; not shared
 * between threads. */
typedef struct cs_backoff_s {
    int64_t base_ms;      /* default 200 */
    int64_t max_ms;       /* default 30000 */
    int64_t rate_base_ms; /* default 5000 */
    int64_t rate_max_ms;  /* default 300000 */
    int max_attempts;     /* 0 = unlimited */
    int attempt;          /* retries handed out since the last reset */
    uint64_t rng;         /* jitter state (xorshift); seeded by init */
} cs_backoff_t;

/* Fills the defaults and seeds the jitter. Change fields after, before the first next(). */
void cs_backoff_init(cs_backoff_t *b);

/* Returns how long to wait (ms) before retrying after err, or -1 when not to retry: err is
 * CS_OK or FATAL class (cs_err_class()), or max_attempts retries were already handed out.
 * retry_after_s: the result's Retry-After, or -1. */
int64_t cs_backoff_next(cs_backoff_t *b, int err, int retry_after_s);

/* After a success: the next failure starts from the base again. */
void cs_backoff_reset(cs_backoff_t *b);

/* ---- Salesforce OAuth 2.0 token provider ---- */

typedef struct cs_oauth_s cs_oauth_t;

typedef struct cs_oauth_opts_s {
    const char *login_url;      /* "https://acme.my.salesforce.com" (My Domain for
                                   client_credentials; login/test.salesforce.com for password) */
    const char *grant_type;     /* "client_credentials" (default) or "password" */
    const char *client_id;      /* consumer key */
    const char *client_secret;  /* consumer secret */
    const char *username;       /* password grant only */
    const char *password;       /* password grant only: password + security token */
    const cs_http_opts_t *http; /* transport options for the token endpoint (get_token and
                                   metrics ignored); NULL = defaults */
    int64_t min_refresh_ms;     /* a forced refresh within this long of the last fetch returns
                                   the token just fetched (clients sharing the provider refresh
                                   once, not once each); default 1000 */
} cs_oauth_opts_t;

/* Copies the options (secrets included; wiped on destroy). Does not contact the server: the
 * first cs_oauth_get_token() or cs_oauth_fetch() does. Returns NULL and fills errstr on bad
 * options. Caller frees with cs_oauth_destroy(). */
cs_oauth_t *cs_oauth_new(const cs_oauth_opts_t *opts, char *errstr, size_t errstr_size);
void cs_oauth_destroy(cs_oauth_t *o); /* accepts NULL */

/* POSTs {login_url}/services/oauth2/token (form-encoded) now and stores access_token and
 * instance_url. Returns CS_OK; CS_ERR_AUTH when the endpoint refused (errstr holds its
 * "error: error_description"); CS_ERR_TRANSPORT / CS_ERR_TIMEOUT / CS_ERR_HTTP_5XX (retry);
 * CS_ERR_PARSE for a 200 without access_token. Any thread. */
int cs_oauth_fetch(cs_oauth_t *o, char *errstr, size_t errstr_size);

/* A cs_http_token_cb_t (opaque = the cs_oauth_t): returns the cached token, fetching one when
 * there is none or when force_refresh is set (see min_refresh_ms). Failures are logged
 * (without secrets). Any thread. */
int cs_oauth_get_token(void *opaque, int force_refresh, char *buf, size_t bufsize);

/* Copies the instance_url of the last token ("https://acme.my.salesforce.com").
 * Returns CS_OK, CS_ERR_STATE before the first successful fetch, CS_ERR_TOO_LARGE. */
int cs_oauth_instance_url(cs_oauth_t *o, char *buf, size_t bufsize);

/* Copies the id of the user behind the token (the last segment of the token response's "id"
 * URL, e.g. "005..."). Returns CS_OK, CS_ERR_STATE when unknown (no fetch yet, or no id
 * answered), CS_ERR_INVAL (bufsize < 19). Any thread. */
int cs_oauth_user_id(cs_oauth_t *o, char *buf, size_t bufsize);

/* Number of successful token fetches so far (tests, metrics). */
unsigned cs_oauth_fetch_count(cs_oauth_t *o);

#endif
