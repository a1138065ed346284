/* Component test: cs_http (client) against cs_httpd (server) on a loopback port.
 *
 * The server plays scripted answers in the real API shapes (crm-api-contract.md sections 1,
 * 5 and 7.5); the client must classify each one, refresh a refused token exactly once, give
 * up on a slow server at its timeout, and never write a secret to the log, which goes to a
 * temporary file read back at the end. Needs no broker and no sandbox. */
#include "cs_err.h"
#include "cs_http.h"
#include "cs_httpd.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_test.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* Everything a secret could look like; none may reach the log. */
#define TOKEN_1 "tok-1-SECRET-a1b2c3"
#define TOKEN_2 "tok-2-SECRET-d4e5f6"
#define CLIENT_SECRET "client-SECRET-9z8y7x"
#define OAUTH_TOKEN_A "00Dxx!ACCESS-SECRET-AAAA"
#define OAUTH_TOKEN_B "00Dxx!ACCESS-SECRET-BBBB"
#define PASSWORD "pass-SECRET-w0rd"

static char base[64];
static atomic_int healthy = 1;
static atomic_int auth_hits, auth_ok_hits, big_handler_calls, oauth_hits, sfdata_hits;
static atomic_int oauth_current = 0; /* 0: token A valid, 1: token B valid */

static void reply_json(cs_httpd_resp_t *resp, int status, const char *text)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    REQUIRE(j);
    cs_httpd_resp_json(resp, status, j);
}

static int collect_form(void *opaque, const char *key, const char *value)
{
    json_object_set_new(opaque, key, json_string(value));
    return 0;
}

static int collect_arg(void *opaque, const char *key, const char *value)
{
    json_object_set_new(opaque, key, json_string(value));
    return 0;
}

static void oauth_endpoint(const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    json_t *form = json_object();
    int rc = cs_httpd_form_parse(req->body, req->body_len, collect_form, form);
    const char *grant = json_string_value(json_object_get(form, "grant_type"));
    const char *id = json_string_value(json_object_get(form, "client_id"));
    const char *secret = json_string_value(json_object_get(form, "client_secret"));
    const char *pw = json_string_value(json_object_get(form, "password"));
    const char *ctype = cs_httpd_req_header(req, "content-type");
    atomic_fetch_add(&oauth_hits, 1);
    if (rc != CS_OK || !ctype || strcmp(ctype, "application/x-www-form-urlencoded") || !grant ||
        !id || !secret) {
        reply_json(resp, 400, "{\"error\":\"invalid_request\",\"error_description\":\"bad form\"}");
    } else if (strcmp(secret, CLIENT_SECRET) || strcmp(id, "my client id")) {
        reply_json(resp, 400,
                   "{\"error\":\"invalid_client\",\"error_description\":\"invalid client "
                   "credentials\"}");
    } else if (!strcmp(grant, "password") && (!pw || strcmp(pw, PASSWORD))) {
        reply_json(resp, 400,
                   "{\"error\":\"invalid_grant\",\"error_description\":\"authentication "
                   "failure\"}");
    } else {
        json_t *ok =
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "access_token",
                      atomic_load(&oauth_current) ? OAUTH_TOKEN_B : OAUTH_TOKEN_A, "instance_url",
                      base, "id", "https://login.salesforce.com/id/00Dx/005x", "token_type",
                      "Bearer", "issued_at", "1700000000000");
        cs_httpd_resp_json(resp, 200, ok);
    }
    json_decref(form);
}

static void handler(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    const char *p = req->path;
    const char *auth = cs_httpd_req_header(req, "Authorization");

    if (!strcmp(p, "/ok")) {
        cs_httpd_resp_header(resp, "Sforce-Limit-Info",
                             "api-usage=18/5000; per-app-api-usage=17/250(appName=x)");
        reply_json(resp, 200, "{\"ok\":true,\"n\":42}");
    } else if (!strcmp(p, "/echo")) {
        const char *ct = cs_httpd_req_header(req, "Content-Type");
        json_t *j = json_pack("{s:s, s:I, s:s, s:b, s:s}", "method", req->method, "len",
                              (json_int_t)req->body_len, "ctype", ct ? ct : "", "auth",
                              auth != NULL, "body", req->body);
        cs_httpd_resp_json(resp, 200, j);
    } else if (!strcmp(p, "/503")) {
        cs_httpd_resp_text(resp, 503, "text/html", "<h1>Service Unavailable</h1>", 28);
    } else if (!strcmp(p, "/sf-limit")) {
        cs_httpd_resp_header(resp, "Sforce-Limit-Info", "api-usage=5001/5000");
        reply_json(resp, 403,
                   "[{\"message\":\"TotalRequests Limit "
                   "exceeded.\",\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\"}]");
    } else if (!strcmp(p, "/mk-66")) {
        reply_json(resp, 400,
                   "{\"code\":66,\"message\":\"You have exceeded your concurrent request limit. "
                   "Please wait, before trying again\"}");
    } else if (!strcmp(p, "/mk-184")) {
        reply_json(resp, 401,
                   "{\"code\":184,\"message\":\"access_token is invalid, unknown, or "
                   "malformed\"}");
    } else if (!strcmp(p, "/auth")) {
        atomic_fetch_add(&auth_hits, 1);
        if (auth && !strcmp(auth, "Bearer " TOKEN_2)) {
            atomic_fetch_add(&auth_ok_hits, 1);
            reply_json(resp, 200, "{\"done\":true}");
        } else {
            cs_httpd_resp_header(resp, "WWW-Authenticate", "Token");
            reply_json(resp, 401,
                       "[{\"message\":\"Session expired or "
                       "invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]");
        }
    } else if (!strcmp(p, "/retry-after")) {
        cs_httpd_resp_header(resp, "Retry-After", "3");
        cs_httpd_resp_text(resp, 429, "text/plain", "slow down", 9);
    } else if (!strcmp(p, "/slow")) {
        usleep(1500 * 1000);
        reply_json(resp, 200, "{\"late\":true}");
    } else if (!strcmp(p, "/missing")) {
        reply_json(resp, 404,
                   "[{\"message\":\"The requested resource does not "
                   "exist\",\"errorCode\":\"NOT_FOUND\"}]");
    } else if (!strcmp(p, "/malformed")) {
        reply_json(resp, 400,
                   "[{\"message\":\"unexpected token: FROM\",\"errorCode\":\"MALFORMED_QUERY\"}]");
    } else if (!strcmp(p, "/big")) {
        atomic_fetch_add(&big_handler_calls, 1);
        reply_json(resp, 200, "{}");
    } else if (!strcmp(p, "/huge")) {
        static char blob[100000];
        memset(blob, 'x', sizeof(blob));
        cs_httpd_resp_text(resp, 200, "text/plain", blob, sizeof(blob));
    } else if (!strcmp(p, "/form")) {
        json_t *form = json_object();
        int rc = cs_httpd_form_parse(req->body, req->body_len, collect_form, form);
        if (rc == CS_OK)
            cs_httpd_resp_json(resp, 200, form);
        else {
            json_decref(form);
            reply_json(resp, 400, "{\"error\":\"bad_form\"}");
        }
    } else if (!strcmp(p, "/args")) {
        json_t *args = json_object();
        cs_httpd_req_foreach_arg(req, collect_arg, args);
        const char *x = cs_httpd_req_arg(req, "x");
        json_object_set_new(args, "_x", json_string(x ? x : "(null)"));
        cs_httpd_resp_json(resp, 200, args);
    } else if (!strcmp(p, "/services/oauth2/token") && !strcmp(req->method, "POST")) {
        oauth_endpoint(req, resp);
    } else if (!strcmp(p, "/services/data/v60.0/limits")) {
        atomic_fetch_add(&sfdata_hits, 1);
        const char *want =
            atomic_load(&oauth_current) ? "Bearer " OAUTH_TOKEN_B : "Bearer " OAUTH_TOKEN_A;
        if (auth && !strcmp(auth, want))
            reply_json(resp, 200, "{\"DailyApiRequests\":{\"Max\":15000,\"Remaining\":14998}}");
        else
            reply_json(resp, 401,
                       "[{\"message\":\"Session expired or "
                       "invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]");
    }
    /* anything else: left unset, the server answers 404 */
}

static int health(void *opaque, char *reason, size_t size)
{
    if (atomic_load(&healthy))
        return 0;
    snprintf(reason, size, "kafka: all brokers down");
    return 1;
}

/* Token provider for the scripted 401 test: TOKEN_1 until a refresh is forced. */
static atomic_int tok_calls, tok_forced;
static int script_token(void *opaque, int force_refresh, char *buf, size_t size)
{
    atomic_fetch_add(&tok_calls, 1);
    if (force_refresh)
        atomic_fetch_add(&tok_forced, 1);
    snprintf(buf, size, "%s", atomic_load(&tok_forced) ? TOKEN_2 : TOKEN_1);
    return CS_OK;
}

static char url_buf[256];
static const char *url(const char *path)
{
    snprintf(url_buf, sizeof(url_buf), "%s%s", base, path);
    return url_buf;
}

static void test_classifications(cs_http_t *c)
{
    cs_http_result_t r;
    int rc;

    rc = cs_http_request(c, "GET", url("/ok"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_OK);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "{\"ok\":true,\"n\":42}");
    CHECK_INT(r.body_len, strlen("{\"ok\":true,\"n\":42}"));
    CHECK_INT(r.api_used, 18);
    CHECK_INT(r.api_max, 5000);
    CHECK_INT(r.retry_after_s, -1);
    json_t *j = cs_http_result_json(&r);
    CHECK(j && json_integer_value(json_object_get(j, "n")) == 42);
    CHECK(cs_http_result_json(&r) == j); /* parsed once */
    /* keep-alive: the next call reuses the connection */
    CHECK_INT(cs_http_request(c, "GET", url("/ok"), NULL, NULL, 0, &r), CS_OK);
    CHECK_INT(r.connects, 0);

    rc = cs_http_request(c, "GET", url("/503"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_HTTP_5XX);
    CHECK_INT(r.status, 503);
    CHECK(cs_http_result_json(&r) == NULL); /* not JSON */
    CHECK_INT(r.api_used, -1);              /* not carried over from the previous call */

    rc = cs_http_request(c, "POST", url("/sf-limit"), NULL, "[]", 2, &r);
    CHECK_INT(rc, CS_ERR_RATE_LIMIT);
    CHECK_INT(r.status, 403);
    CHECK_STR(r.api_error, "REQUEST_LIMIT_EXCEEDED");
    CHECK_STR(r.api_message, "TotalRequests Limit exceeded.");
    CHECK_INT(r.api_used, 5001);
    CHECK(strstr(r.errstr, "403") && strstr(r.errstr, "REQUEST_LIMIT_EXCEEDED"));

    rc = cs_http_request(c, "GET", url("/mk-66"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_RATE_LIMIT);
    CHECK_INT(r.status, 400);
    CHECK_STR(r.api_error, "66");

    rc = cs_http_request(c, "GET", url("/retry-after"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_RATE_LIMIT);
    CHECK_INT(r.status, 429);
    CHECK_INT(r.retry_after_s, 3);
    cs_backoff_t b;
    cs_backoff_init(&b);
    int64_t d = cs_backoff_next(&b, rc, r.retry_after_s);
    CHECK(d >= 3000 && d <= 3300);

    rc = cs_http_request(c, "GET", url("/missing"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_NOT_FOUND);
    CHECK_STR(r.api_error, "NOT_FOUND");

    rc = cs_http_request(c, "GET", url("/no/such/route"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_NOT_FOUND);
    CHECK_INT(r.status, 404);
    CHECK(strstr(r.body, "not_found") != NULL);

    rc = cs_http_request(c, "GET", url("/malformed"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_HTTP_4XX);
    CHECK_STR(r.api_error, "MALFORMED_QUERY");
    CHECK(cs_err_class(rc) == CS_CLASS_FATAL);

    /* without a token provider, a marketing 184 is still classified AUTH (no retry) */
    rc = cs_http_request(c, "GET", url("/mk-184"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_AUTH);
    CHECK_INT(r.auth_retried, 0);
    CHECK_STR(r.api_error, "184");

    /* bad URL: a programming error, not retried */
    rc = cs_http_request(c, "GET", "nope://x", NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_INVAL);
    CHECK_INT(r.status, 0);
}

static void test_methods(cs_http_t *c)
{
    cs_http_result_t r;
    const char *hdrs[] = {"X-Test: 1", NULL};
    const char *body = "{\"records\":[1,2,3]}";

    CHECK_INT(cs_http_request(c, "PATCH", url("/echo"), hdrs, body, strlen(body), &r), CS_OK);
    json_t *j = cs_http_result_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "method")), "PATCH");
    CHECK_INT(json_integer_value(json_object_get(j, "len")), strlen(body));
    CHECK_STR(json_string_value(json_object_get(j, "ctype")), "application/json");
    CHECK_STR(json_string_value(json_object_get(j, "body")), body);
    CHECK(json_is_false(json_object_get(j, "auth")));

    /* a GET after a PATCH on the same handle is a plain GET without a body */
    CHECK_INT(cs_http_request(c, "GET", url("/echo"), NULL, NULL, 0, &r), CS_OK);
    j = cs_http_result_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "method")), "GET");
    CHECK_INT(json_integer_value(json_object_get(j, "len")), 0);

    /* only the given length is sent, and the caller's Content-Type wins */
    const char *form_hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    CHECK_INT(cs_http_request(c, "POST", url("/echo"), form_hdrs, "a=1&b=2XXXX", 7, &r), CS_OK);
    j = cs_http_result_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "method")), "POST");
    CHECK_STR(json_string_value(json_object_get(j, "body")), "a=1&b=2");
    CHECK_STR(json_string_value(json_object_get(j, "ctype")), "application/x-www-form-urlencoded");

    CHECK_INT(cs_http_request(c, "DELETE", url("/echo"), NULL, NULL, 0, &r), CS_OK);
    j = cs_http_result_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "method")), "DELETE");

    CHECK_INT(cs_http_request(c, "PUT", url("/echo"), NULL, "x", 1, &r), CS_OK);
    j = cs_http_result_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "method")), "PUT");
    CHECK_INT(json_integer_value(json_object_get(j, "len")), 1);

    /* query arguments, decoded by the server */
    CHECK_INT(cs_http_request(c, "GET", url("/args?x=a+b&y=%41%2F&z"), NULL, NULL, 0, &r), CS_OK);
    j = cs_http_result_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "x")), "a b");
    CHECK_STR(json_string_value(json_object_get(j, "y")), "A/");
    CHECK_STR(json_string_value(json_object_get(j, "z")), "");
    CHECK_STR(json_string_value(json_object_get(j, "_x")), "a b");

    /* form bodies */
    const char *fb = "grant_type=client_credentials&name=J%C3%BCrgen+M%C3%BCller&empty=&flag&&"
                     "plus=%2B1";
    CHECK_INT(cs_http_request(c, "POST", url("/form"), form_hdrs, fb, strlen(fb), &r), CS_OK);
    j = cs_http_result_json(&r);
    CHECK_STR(json_string_value(json_object_get(j, "grant_type")), "client_credentials");
    CHECK_STR(json_string_value(json_object_get(j, "name")), "J\xc3\xbcrgen M\xc3\xbcller");
    CHECK_STR(json_string_value(json_object_get(j, "empty")), "");
    CHECK_STR(json_string_value(json_object_get(j, "flag")), "");
    CHECK_STR(json_string_value(json_object_get(j, "plus")), "+1");
    CHECK_INT(json_object_size(j), 5);
    CHECK_INT(cs_http_request(c, "POST", url("/form"), form_hdrs, "a=%zz", 5, &r), CS_ERR_HTTP_4XX);
    CHECK_INT(cs_http_request(c, "POST", url("/form"), form_hdrs, "a=%4", 4, &r), CS_ERR_HTTP_4XX);
}

static int stop_after_b(void *opaque, const char *k, const char *v)
{
    int *n = opaque;
    (*n)++;
    return !strcmp(k, "b") ? 7 : 0;
}

static void test_form_parse_direct(void)
{
    int n = 0;
    CHECK_INT(cs_httpd_form_parse("a=1&b=2&c=3", 11, stop_after_b, &n), 7);
    CHECK_INT(n, 2);
    n = 0;
    CHECK_INT(cs_httpd_form_parse("", 0, stop_after_b, &n), CS_OK);
    CHECK_INT(n, 0);
    n = 0;
    CHECK_INT(cs_httpd_form_parse("a=1&b%=2", 8, stop_after_b, &n), CS_ERR_PARSE);
    CHECK_INT(n, 1);
    CHECK_INT(cs_httpd_form_parse("a=%00", 5, stop_after_b, &n), CS_ERR_PARSE);
}

static int failing_token(void *opaque, int force_refresh, char *buf, size_t size)
{
    return CS_ERR_TRANSPORT; /* e.g. the token endpoint is unreachable */
}

static void test_token_refresh(void)
{
    /* a provider that fails: the request is not sent, and the error comes back as is */
    cs_http_opts_t fo = {.get_token = failing_token};
    cs_http_t *fc = cs_http_new(&fo, NULL, 0);
    REQUIRE(fc);
    cs_http_result_t fr;
    int before = atomic_load(&auth_hits);
    CHECK_INT(cs_http_request(fc, "GET", url("/auth"), NULL, NULL, 0, &fr), CS_ERR_TRANSPORT);
    CHECK_INT(fr.status, 0);
    CHECK_STR(fr.body, "");
    CHECK(cs_http_result_json(&fr) == NULL);
    CHECK(strstr(fr.errstr, "no access token") != NULL);
    CHECK_INT(atomic_load(&auth_hits), before);
    cs_http_destroy(fc);

    cs_http_opts_t o = {.get_token = script_token, .name = "crm"};
    cs_http_t *c = cs_http_new(&o, NULL, 0);
    REQUIRE(c);
    cs_http_result_t r;
    int rc = cs_http_request(c, "POST", url("/auth"), NULL, "{}", 2, &r);
    CHECK_INT(rc, CS_OK);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.auth_retried, 1);
    CHECK_INT(atomic_load(&auth_hits), 2);    /* refused once, then accepted */
    CHECK_INT(atomic_load(&auth_ok_hits), 1); /* the retry carried the new token */
    CHECK_INT(atomic_load(&tok_forced), 1);   /* exactly one forced refresh */
    CHECK_INT(atomic_load(&tok_calls), 2);

    /* the new token keeps working without another refresh */
    rc = cs_http_request(c, "POST", url("/auth"), NULL, "{}", 2, &r);
    CHECK_INT(rc, CS_OK);
    CHECK_INT(r.auth_retried, 0);
    CHECK_INT(atomic_load(&tok_forced), 1);

    /* a server that refuses every token: one retry, then CS_ERR_AUTH */
    rc = cs_http_request(c, "GET", url("/mk-184"), NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_AUTH);
    CHECK_INT(r.auth_retried, 1);
    CHECK_INT(atomic_load(&tok_forced), 2);
    CHECK(strstr(r.errstr, "SECRET") == NULL);
    cs_http_destroy(c);
}

static void test_timeout_and_transport(void)
{
    cs_http_opts_t o = {.timeout_ms = 500, .connect_timeout_ms = 500, .name = "slow"};
    cs_http_t *c = cs_http_new(&o, NULL, 0);
    REQUIRE(c);
    cs_http_result_t r;
    int64_t t0 = cs_now_ms();
    int rc = cs_http_request(c, "GET", url("/slow"), NULL, NULL, 0, &r);
    int64_t dt = cs_now_ms() - t0;
    CHECK_INT(rc, CS_ERR_TIMEOUT);
    CHECK(cs_err_class(rc) == CS_CLASS_RETRY);
    CHECK_INT(r.status, 0);
    CHECK(dt >= 400 && dt < 1400);
    CHECK_INT(r.connects, 1);
    /* the same client works again afterwards */
    CHECK_INT(cs_http_request(c, "GET", url("/ok"), NULL, NULL, 0, &r), CS_OK);

    /* nobody listening: a port we bound and released */
    cs_httpd_opts_t so = {.port = 0};
    cs_httpd_t *tmp = cs_httpd_new(&so, NULL, 0);
    REQUIRE(tmp);
    int dead_port = cs_httpd_port(tmp);
    cs_httpd_destroy(tmp);
    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/x", dead_port);
    rc = cs_http_request(c, "GET", dead, NULL, NULL, 0, &r);
    CHECK_INT(rc, CS_ERR_TRANSPORT);
    CHECK(cs_err_class(rc) == CS_CLASS_RETRY);
    CHECK(r.errstr[0] != '\0');
    cs_http_destroy(c);

    /* a response over max_response */
    cs_http_opts_t small = {.max_response = 10000};
    c = cs_http_new(&small, NULL, 0);
    REQUIRE(c);
    CHECK_INT(cs_http_request(c, "GET", url("/huge"), NULL, NULL, 0, &r), CS_ERR_TOO_LARGE);
    CHECK_INT(cs_http_request(c, "GET", url("/ok"), NULL, NULL, 0, &r), CS_OK);
    cs_http_destroy(c);
}

typedef struct {
    const char *p;
    size_t left;
} reader_t;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    reader_t *rd = ud;
    size_t n = size * nitems < rd->left ? size * nitems : rd->left;
    memcpy(buf, rd->p, n);
    rd->p += n;
    rd->left -= n;
    return n;
}

/* POSTs len bytes with Transfer-Encoding: chunked through plain libcurl. Returns the status,
 * or -1 when the transfer failed. */
static long raw_chunked_post(const char *u, const char *body, size_t len)
{
    reader_t rd = {body, len};
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    FILE *sink = fopen("/dev/null", "w");
    long status = -1;
    curl_easy_setopt(e, CURLOPT_URL, u);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(e, CURLOPT_READDATA, &rd);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    fclose(sink);
    return status;
}

/* The idle callback: called while a request waits, the answer unchanged. */
static int idle_calls, idle_busy;
static int count_idle(void *opaque)
{
    (void)opaque;
    idle_calls++;
    return idle_busy-- > 0; /* "did work" a few times: the client polls curl again at once */
}

static void test_idle(void)
{
    cs_http_opts_t o = {.timeout_ms = 3000, .name = "idle"};
    cs_http_t *c = cs_http_new(&o, NULL, 0);
    REQUIRE(c);
    cs_http_set_idle(c, count_idle, NULL);
    cs_http_result_t r;
    /* a slow answer (1.5 s): the caller's thread did its work meanwhile, many times */
    idle_calls = 0;
    idle_busy = 5;
    CHECK_INT(cs_http_request(c, "GET", url("/slow"), NULL, NULL, 0, &r), CS_OK);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "late") != NULL);
    CHECK(idle_calls > 100); /* at most 2 ms between calls while nothing else happens */
    /* kept-alive connection, POST with a body, through the same path */
    CHECK_INT(cs_http_request(c, "POST", url("/echo"), NULL, "{\"a\":1}", 7, &r), CS_OK);
    CHECK_INT(r.connects, 0);
    /* errors are the same as without the callback */
    cs_http_opts_t fast = {.timeout_ms = 300, .name = "idle-timeout"};
    cs_http_t *t = cs_http_new(&fast, NULL, 0);
    REQUIRE(t);
    cs_http_set_idle(t, count_idle, NULL);
    CHECK_INT(cs_http_request(t, "GET", url("/slow"), NULL, NULL, 0, &r), CS_ERR_TIMEOUT);
    CHECK_INT(cs_http_request(t, "GET", url("/missing"), NULL, NULL, 0, &r), CS_ERR_NOT_FOUND);
    cs_http_set_idle(t, NULL, NULL); /* and back to blocking */
    CHECK_INT(cs_http_request(t, "GET", url("/ok"), NULL, NULL, 0, &r), CS_OK);
    cs_http_destroy(t);
    cs_http_destroy(c);
}

static void test_too_large(cs_http_t *c)
{
    size_t n = 2 * 1024 * 1024;
    char *body = malloc(n);
    REQUIRE(body);
    memset(body, 'a', n);
    cs_http_result_t r;
    int rc = cs_http_request(c, "POST", url("/big"), NULL, body, n, &r);
    CHECK_INT(rc, CS_ERR_HTTP_4XX);
    CHECK_INT(r.status, 413);
    CHECK_STR(r.api_error, "too_large");
    CHECK_INT(atomic_load(&big_handler_calls), 0);
    /* 8 MiB: refused from its Content-Length before any of it is read (reading it would
     * pass the server's discard bound and close the connection instead of answering 413) */
    size_t huge_n = 8 * 1024 * 1024;
    char *huge = calloc(1, huge_n);
    REQUIRE(huge);
    rc = cs_http_request(c, "POST", url("/big"), NULL, huge, huge_n, &r);
    CHECK_INT(rc, CS_ERR_HTTP_4XX);
    CHECK_INT(r.status, 413);
    /* chunked bodies have no length up front: a bit over the limit is read, dropped and
     * answered 413; far over it, the server hangs up */
    CHECK_INT(raw_chunked_post(url("/big"), huge, 1024 * 1024 + 4096), 413);
    CHECK_INT(raw_chunked_post(url("/big"), huge, huge_n), -1);
    CHECK_INT(atomic_load(&big_handler_calls), 0);
    free(huge);
    /* just under the limit is accepted */
    rc = cs_http_request(c, "POST", url("/big"), NULL, body, 1024 * 1024, &r);
    CHECK_INT(rc, CS_OK);
    CHECK_INT(atomic_load(&big_handler_calls), 1);
    /* and the client still works */
    CHECK_INT(cs_http_request(c, "GET", url("/ok"), NULL, NULL, 0, &r), CS_OK);
    free(body);
}

static void test_metrics_and_health(cs_http_t *c, cs_metrics_t *m)
{
    cs_counter_add(cs_metrics_counter(m, "crmsync_test_total", "A test counter", NULL), 42);
    cs_http_result_t r;
    CHECK_INT(cs_http_request(c, "GET", url("/metrics"), NULL, NULL, 0, &r), CS_OK);
    CHECK(strstr(r.body, "# TYPE crmsync_test_total counter\ncrmsync_test_total 42\n") != NULL);
    /* the client's own metrics, one HELP/TYPE per name */
    CHECK(strstr(r.body, "crmsync_http_requests_total{api=\"main\",result=\"rate_limit\"} 3\n"));
    const char *t = strstr(r.body, "# TYPE crmsync_http_requests_total counter");
    CHECK(t && !strstr(t + 1, "# TYPE crmsync_http_requests_total"));
    CHECK(strstr(r.body, "crmsync_api_usage_limit{api=\"main\"} 5000\n"));

    /* content type, through plain libcurl */
    CURL *e = curl_easy_init();
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(e, CURLOPT_URL, url("/metrics"));
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sink);
    CHECK_INT(curl_easy_perform(e), CURLE_OK);
    char *ct = NULL;
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
    CHECK(ct && !strncmp(ct, "text/plain; version=0.0.4", 25));
    curl_easy_cleanup(e);
    fclose(sink);

    CHECK_INT(cs_http_request(c, "GET", url("/healthz"), NULL, NULL, 0, &r), CS_OK);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "ok\n");
    atomic_store(&healthy, 0);
    CHECK_INT(cs_http_request(c, "GET", url("/healthz"), NULL, NULL, 0, &r), CS_ERR_HTTP_5XX);
    CHECK_INT(r.status, 503);
    CHECK_STR(r.body, "kafka: all brokers down\n");
    atomic_store(&healthy, 1);
    CHECK_INT(cs_http_request(c, "GET", url("/healthz"), NULL, NULL, 0, &r), CS_OK);
}

static void test_oauth(void)
{
    char err[256];
    /* wrong secret: 400 invalid_client -> CS_ERR_AUTH with the server's words */
    cs_oauth_opts_t bad = {
        .login_url = base, .client_id = "my client id", .client_secret = "wrong-SECRET-0000"};
    cs_oauth_t *o = cs_oauth_new(&bad, err, sizeof(err));
    REQUIRE(o);
    err[0] = '\0';
    CHECK_INT(cs_oauth_fetch(o, err, sizeof(err)), CS_ERR_AUTH);
    CHECK(strstr(err, "invalid_client: invalid client credentials") != NULL);
    CHECK(strstr(err, "SECRET") == NULL);
    char tok[256];
    CHECK_INT(cs_oauth_get_token(o, 0, tok, sizeof(tok)), CS_ERR_AUTH);
    CHECK_INT(cs_oauth_instance_url(o, tok, sizeof(tok)), CS_ERR_STATE);
    cs_oauth_destroy(o);

    /* bad options */
    cs_oauth_opts_t none = {.login_url = base};
    CHECK(cs_oauth_new(&none, err, sizeof(err)) == NULL);
    cs_oauth_opts_t pw_missing = {
        .login_url = base, .client_id = "a", .client_secret = "b", .grant_type = "password"};
    CHECK(cs_oauth_new(&pw_missing, err, sizeof(err)) == NULL);

    /* password grant with a wrong password */
    cs_oauth_opts_t pw = {.login_url = base,
                          .grant_type = "password",
                          .client_id = "my client id",
                          .client_secret = CLIENT_SECRET,
                          .username = "user@example.com",
                          .password = "nope-SECRET"};
    o = cs_oauth_new(&pw, err, sizeof(err));
    REQUIRE(o);
    CHECK_INT(cs_oauth_fetch(o, err, sizeof(err)), CS_ERR_AUTH);
    CHECK(strstr(err, "invalid_grant: authentication failure") != NULL);
    cs_oauth_destroy(o);
    pw.password = PASSWORD;
    o = cs_oauth_new(&pw, err, sizeof(err));
    REQUIRE(o);
    CHECK_INT(cs_oauth_fetch(o, err, sizeof(err)), CS_OK);
    cs_oauth_destroy(o);

    /* client credentials feeding a data client, with a server-side session expiry */
    cs_oauth_opts_t good = {.login_url = base,
                            .client_id = "my client id",
                            .client_secret = CLIENT_SECRET,
                            .min_refresh_ms = 1};
    o = cs_oauth_new(&good, err, sizeof(err));
    REQUIRE(o);
    cs_http_opts_t ho = {.get_token = cs_oauth_get_token, .token_opaque = o, .name = "sfdc"};
    cs_http_t *c = cs_http_new(&ho, NULL, 0);
    REQUIRE(c);
    cs_http_result_t r;
    int before = atomic_load(&oauth_hits);
    CHECK_INT(cs_http_request(c, "GET", url("/services/data/v60.0/limits"), NULL, NULL, 0, &r),
              CS_OK);
    CHECK_INT(atomic_load(&oauth_hits) - before, 1);
    CHECK_INT(cs_oauth_fetch_count(o), 1);
    char inst[128];
    CHECK_INT(cs_oauth_instance_url(o, inst, sizeof(inst)), CS_OK);
    CHECK_STR(inst, base);
    /* cached: no new token request */
    CHECK_INT(cs_http_request(c, "GET", url("/services/data/v60.0/limits"), NULL, NULL, 0, &r),
              CS_OK);
    CHECK_INT(cs_oauth_fetch_count(o), 1);
    /* the session expires on the server: 401 INVALID_SESSION_ID, one refresh, one retry */
    usleep(5000);
    atomic_store(&oauth_current, 1);
    int data_before = atomic_load(&sfdata_hits);
    CHECK_INT(cs_http_request(c, "GET", url("/services/data/v60.0/limits"), NULL, NULL, 0, &r),
              CS_OK);
    CHECK_INT(r.auth_retried, 1);
    CHECK_INT(cs_oauth_fetch_count(o), 2);
    CHECK_INT(atomic_load(&sfdata_hits) - data_before, 2);
    CHECK_INT(cs_oauth_get_token(o, 0, tok, sizeof(tok)), CS_OK);
    CHECK_STR(tok, OAUTH_TOKEN_B);
    CHECK_INT(cs_oauth_get_token(o, 0, tok, 5), CS_ERR_TOO_LARGE);
    cs_http_destroy(c);
    cs_oauth_destroy(o);
}

static void test_server_errors(void)
{
    char err[256];
    cs_httpd_opts_t o = {.bind = "256.1.1.1", .port = 0};
    CHECK(cs_httpd_new(&o, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "256.1.1.1") != NULL);
    cs_httpd_opts_t neg = {.port = 70000};
    CHECK(cs_httpd_new(&neg, err, sizeof(err)) == NULL);
    /* the port is taken */
    cs_httpd_opts_t a = {.port = 0};
    cs_httpd_t *h1 = cs_httpd_new(&a, NULL, 0);
    REQUIRE(h1);
    cs_httpd_opts_t b = {.port = cs_httpd_port(h1)};
    CHECK(cs_httpd_new(&b, err, sizeof(err)) == NULL);
    cs_httpd_destroy(h1);
    cs_httpd_destroy(NULL);

    /* IPv6 loopback, one thread, no handler: built-ins still answer, the rest is 404 */
    cs_httpd_opts_t v6 = {.bind = "::1", .threads = 1};
    cs_httpd_t *h6 = cs_httpd_new(&v6, err, sizeof(err));
    if (!h6) {
        fprintf(stderr, "note: no IPv6 loopback here (%s), skipped\n", err);
        return;
    }
    cs_http_t *c = cs_http_new(NULL, NULL, 0);
    REQUIRE(c);
    cs_http_result_t r;
    char u[80];
    snprintf(u, sizeof(u), "http://[::1]:%d/healthz", cs_httpd_port(h6));
    CHECK_INT(cs_http_request(c, "GET", u, NULL, NULL, 0, &r), CS_OK);
    CHECK_STR(r.body, "ok\n");
    snprintf(u, sizeof(u), "http://[::1]:%d/metrics", cs_httpd_port(h6));
    CHECK_INT(cs_http_request(c, "GET", u, NULL, NULL, 0, &r), CS_ERR_NOT_FOUND);
    cs_http_destroy(c);
    cs_httpd_destroy(h6);
}

static int file_contains(const char *text, const char *needle)
{
    return strstr(text, needle) != NULL;
}

int main(void)
{
    char logpath[] = "/tmp/cs_test_http_log_XXXXXX";
    int fd = mkstemp(logpath);
    REQUIRE(fd >= 0);
    FILE *log = fdopen(fd, "w+");
    REQUIRE(log);
    cs_log_set_output(log);
    REQUIRE(cs_log_setup("debug", "text") == CS_OK);

    cs_metrics_t *m = cs_metrics_new();
    REQUIRE(m);
    cs_httpd_opts_t so = {
        .port = 0, .threads = 4, .handler = handler, .metrics = m, .health = health};
    char err[256];
    cs_httpd_t *srv = cs_httpd_new(&so, err, sizeof(err));
    if (!srv)
        fprintf(stderr, "cs_httpd_new: %s\n", err);
    REQUIRE(srv);
    CHECK(cs_httpd_port(srv) > 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", cs_httpd_port(srv));

    cs_http_opts_t co = {.name = "main", .metrics = m, .user_agent = "crmsync-test"};
    cs_http_t *c = cs_http_new(&co, err, sizeof(err));
    REQUIRE(c);
    /* an insecure client warns once at creation */
    cs_http_opts_t insecure = {.tls_insecure = 1, .name = "insecure"};
    cs_http_t *ci = cs_http_new(&insecure, NULL, 0);
    REQUIRE(ci);
    cs_http_destroy(ci);

    test_classifications(c);
    test_methods(c);
    test_form_parse_direct();
    test_token_refresh();
    test_timeout_and_transport();
    test_idle();
    test_too_large(c);
    test_oauth();
    test_metrics_and_health(c, m);
    test_server_errors();

    cs_http_destroy(c);
    cs_httpd_destroy(srv);
    cs_metrics_destroy(m);

    /* The log: proof that it was written to, and that no secret is in it. */
    cs_log_set_output(NULL);
    fflush(log);
    long size = ftell(log);
    REQUIRE(size > 0);
    char *text = calloc(1, (size_t)size + 1);
    REQUIRE(text);
    rewind(log);
    REQUIRE(fread(text, 1, (size_t)size, log) == (size_t)size);
    fclose(log);
    unlink(logpath);
    CHECK(file_contains(text, "TLS verification is OFF"));
    CHECK(file_contains(text, "token refused, fetching a new one and retrying once"));
    CHECK(file_contains(text, "access token obtained"));
    CHECK(file_contains(text, "/services/oauth2/token")); /* requests are logged at debug */
    CHECK(file_contains(text, "invalid_client"));
    const char *secrets[] = {TOKEN_1,       TOKEN_2,  CLIENT_SECRET,       OAUTH_TOKEN_A,
                             OAUTH_TOKEN_B, PASSWORD, "wrong-SECRET-0000", "SECRET"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        if (file_contains(text, secrets[i])) {
            fprintf(stderr, "secret %s found in the log\n", secrets[i]);
            CHECK(0);
        } else {
            CHECK(1);
        }
    }
    free(text);
    return cs_test_report();
}
