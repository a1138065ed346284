/* fuzz_api_responses: everything that reads what the CRM (Salesforce REST) and marketing
 * (Account Engagement v5) APIs answer.
 *
 * Pure functions, called directly (fast):
 *   mode 0  cs_http_classify(status, body): error bodies of both APIs and OAuth
 *   mode 1  cs_http_parse_limit_info (Sforce-Limit-Info, x-api-usage)
 *   mode 2  cs_http_parse_retry_after (delta-seconds, HTTP dates)
 * Whole responses, through the public API over loopback: an in-process server (cs_httpd)
 * answers with the fuzzed status, Retry-After / Sforce-Limit-Info / x-api-usage headers and
 * body, so the client's header callback, its JSON handling and cs_api's result parsing
 * (collection results, the /composite match, query paging, upsert ids, the OAuth token
 * answer) all see hostile input exactly as they would from the network:
 *   mode 3  byte 1 picks the call: 0 crm_update, 1 crm_upsert (collection results),
 *           2 crm_match (/composite), 3 crm_query (records, done, nextRecordsUrl),
 *           4 mkt_upsert_by_email (id), 5 mkt_get, 6 a fresh OAuth token fetch,
 *           7 a bare cs_http_request + cs_http_result_json
 *           byte 2 the status, byte 3 which headers; the payload is
 *           "<Retry-After>\n<limit info>\n<body>".
 * Every request the client makes goes to that server, whatever URL a fuzzed
 * nextRecordsUrl names: http_proxy/https_proxy point at it, so no fuzzed URL ever reaches
 * the network or DNS.
 * Invariants: documented return codes only; every string of the result NUL-terminated in
 * its buffer; Retry-After within [-1, 86400] (seconds) and usage counters >= -1; the
 * every failed collection record has an error code; match answers are 18-character ids or
 * nothing. */
#include "fuzz.h"

#include "cs_api.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_http.h"
#include "cs_httpd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- pure functions ---- */

static void check_str(const char *s, size_t cap, const char *what)
{
    if (strnlen(s, cap) >= cap)
        cs_fuzz_fail("api_responses", "%s is not NUL-terminated in its buffer", what);
}

static int documented_http_err(int rc)
{
    return rc == CS_OK || rc == CS_ERR_RATE_LIMIT || rc == CS_ERR_AUTH || rc == CS_ERR_HTTP_5XX ||
           rc == CS_ERR_NOT_FOUND || rc == CS_ERR_HTTP_4XX;
}

static void pure_classify(const uint8_t *p, size_t n)
{
    char ae[64], am[256];
    if (n < 2)
        return;
    int status = 100 + (p[0] | (p[1] << 8)) % 500;
    memset(ae, 'x', sizeof ae);
    memset(am, 'x', sizeof am);
    int rc = cs_http_classify(status, (const char *)p + 2, n - 2, ae, sizeof ae, am, sizeof am);
    if (!documented_http_err(rc))
        cs_fuzz_fail("api_responses", "classify: undocumented %s", cs_err_name(rc));
    check_str(ae, sizeof ae, "classify api_error");
    check_str(am, sizeof am, "classify api_message");
    if (status >= 200 && status < 300 && rc != CS_OK && rc != CS_ERR_RATE_LIMIT &&
        rc != CS_ERR_AUTH)
        cs_fuzz_fail("api_responses", "classify: a 2xx is %s", cs_err_name(rc));
    /* NULL buffers are allowed, and tiny ones truncate. */
    int rc2 = cs_http_classify(status, (const char *)p + 2, n - 2, NULL, 0, NULL, 0);
    char t1[1], t2[2];
    int rc3 = cs_http_classify(status, (const char *)p + 2, n - 2, t1, sizeof t1, t2, sizeof t2);
    if (rc2 != rc || rc3 != rc)
        cs_fuzz_fail("api_responses", "classify depends on the output buffers");
    check_str(t1, sizeof t1, "classify tiny api_error");
    check_str(t2, sizeof t2, "classify tiny api_message");
}

static char *cstr(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        cs_fuzz_fail("api_responses", "out of memory");
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void pure_limit_info(const uint8_t *p, size_t n)
{
    char *s = cstr(p, n);
    long used = -7, max = -7;
    int rc = cs_http_parse_limit_info(s, &used, &max);
    if (rc == CS_OK && (used < 0 || max < 0))
        cs_fuzz_fail("api_responses", "limit info %ld/%ld", used, max);
    if (rc != CS_OK && (rc != CS_ERR_PARSE || used != -7 || max != -7))
        cs_fuzz_fail("api_responses", "limit info: failure touched the outputs");
    free(s);
}

static void pure_retry_after(const uint8_t *p, size_t n)
{
    char *s = cstr(p, n);
    int r = cs_http_parse_retry_after(s, 1714557072);
    if (r < -1 || r > 86400)
        cs_fuzz_fail("api_responses", "Retry-After %d", r);
    r = cs_http_parse_retry_after(s, 0);
    if (r < -1 || r > 86400)
        cs_fuzz_fail("api_responses", "Retry-After %d (now 0)", r);
    free(s);
}

/* ---- the loopback server ---- */

static struct {
    pthread_mutex_t mu;
    cs_httpd_t *srv;
    int port;
    char base[64];
    cs_conf_t *conf;
    cs_api_t *api;
    cs_http_t *http;
    /* the answer to the requests of this input */
    int status;
    char retry_after[256], limit_info[256];
    int hdr_flags;
    const char *body;
    size_t body_len;
    int fuzz_token; /* the token endpoint answers with the fuzzed response too */
    int served;     /* data requests answered with the fuzzed response */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define FUZZED_ANSWERS 2 /* then queries see {"done":true}: paging always ends */

static void handler(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    (void)opaque;
    pthread_mutex_lock(&S.mu);
    int token = strstr(req->path, "/services/oauth2/token") != NULL;
    if (token && !S.fuzz_token) {
        char tok[256];
        int n = snprintf(tok, sizeof tok,
                         "{\"access_token\":\"00Dfuzz!token\",\"instance_url\":\"%s\","
                         "\"token_type\":\"Bearer\"}",
                         S.base);
        cs_httpd_resp_text(resp, 200, "application/json", tok, (size_t)n);
    } else if (S.served >= FUZZED_ANSWERS) {
        static const char done[] = "{\"totalSize\":0,\"done\":true,\"records\":[]}";
        cs_httpd_resp_text(resp, 200, "application/json", done, sizeof done - 1);
    } else {
        S.served++;
        if (S.hdr_flags & 1)
            cs_httpd_resp_header(resp, "Retry-After", S.retry_after);
        if (S.hdr_flags & 2)
            cs_httpd_resp_header(resp, "Sforce-Limit-Info", S.limit_info);
        if (S.hdr_flags & 4)
            cs_httpd_resp_header(resp, "x-api-usage", S.limit_info);
        cs_httpd_resp_text(resp, S.status, "application/json;charset=UTF-8", S.body, S.body_len);
    }
    pthread_mutex_unlock(&S.mu);
}

static void server_setup(void)
{
    char err[512];
    if (S.srv)
        return;
    cs_httpd_opts_t so = {
        .bind = "127.0.0.1", .port = 0, .max_body = 1 << 20, .threads = 1, .handler = handler};
    if (!(S.srv = cs_httpd_new(&so, err, sizeof err)))
        cs_fuzz_fail("api_responses", "server: %s", err);
    S.port = cs_httpd_port(S.srv);
    snprintf(S.base, sizeof S.base, "http://127.0.0.1:%d", S.port);
    /* Every request, whatever host a fuzzed URL names, comes here. */
    setenv("http_proxy", S.base, 1);
    setenv("https_proxy", S.base, 1);
    setenv("all_proxy", S.base, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");

    S.conf = cs_conf_new("crmsync-fuzz", "fuzz", NULL);
    if (!S.conf || cs_conf_add_opts(S.conf, cs_api_opts))
        cs_fuzz_fail("api_responses", "config");
    char text[1024];
    snprintf(text, sizeof text,
             "crm.login_url=%s\ncrm.instance_url=%s\ncrm.client_id=fuzz-client\n"
             "crm.client_secret=fuzz-secret\nmkt.base_url=%s\nmkt.business_unit_id="
             "0Uv5g000000SBOXCA4\ncrm.timeout.ms=3000\nmkt.timeout.ms=3000\n",
             S.base, S.base, S.base);
    if (cs_conf_load_string(S.conf, text, "fuzz", err, sizeof err))
        cs_fuzz_fail("api_responses", "config: %s", err);
    if (!(S.api = cs_api_new(S.conf, NULL, err, sizeof err)))
        cs_fuzz_fail("api_responses", "cs_api_new: %s", err);
    cs_http_opts_t ho = {.timeout_ms = 3000, .name = "fuzz"};
    if (!(S.http = cs_http_new(&ho, err, sizeof err)))
        cs_fuzz_fail("api_responses", "cs_http_new: %s", err);
}

static void copy_line(char *dst, size_t cap, const uint8_t *p, size_t n)
{
    size_t k = 0;
    /* MHD refuses header values with control characters: keep the rest. */
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        if (p[i] >= 0x20 && p[i] != 0x7f)
            dst[k++] = (char)p[i];
    dst[k] = '\0';
}

static void check_result(const cs_http_result_t *r, int rc)
{
    if (!r)
        return;
    check_str(r->api_error, sizeof r->api_error, "api_error");
    check_str(r->api_message, sizeof r->api_message, "api_message");
    check_str(r->errstr, sizeof r->errstr, "errstr");
    if (r->retry_after_s < -1 || r->retry_after_s > 86400)
        cs_fuzz_fail("api_responses", "retry_after_s %d", r->retry_after_s);
    if (r->api_used < -1 || r->api_max < -1)
        cs_fuzz_fail("api_responses", "api usage %ld/%ld", r->api_used, r->api_max);
    if (r->body && strlen(r->body) > r->body_len)
        cs_fuzz_fail("api_responses", "body longer than body_len");
    /* CS_ERR_INVAL: a URL the server named (nextRecordsUrl) that curl refuses. */
    if (rc != CS_OK && rc != CS_ERR_PARSE && rc != CS_ERR_NOMEM && !documented_http_err(rc) &&
        rc != CS_ERR_TIMEOUT && rc != CS_ERR_TRANSPORT && rc != CS_ERR_TOO_LARGE &&
        rc != CS_ERR_INVAL)
        cs_fuzz_fail("api_responses", "undocumented %s", cs_err_name(rc));
}

static int query_cb(void *opaque, json_t *record)
{
    size_t *n = opaque;
    const char *id = json_string_value(json_object_get(record, "Id"));
    *n += id != NULL;
    return *n > 5000; /* the fuzzed pages hold at most a few thousand records */
}

static void via_http(const uint8_t *p, size_t n)
{
    static const int statuses[] = {200, 201, 204, 300, 400, 401, 403, 404,
                                   405, 409, 415, 429, 500, 502, 503, 504};
    char err[512];
    if (n < 3)
        return;
    server_setup();
    int call = p[0] & 7;
    int status = p[1] < 240 ? statuses[p[1] % 16] : 200 + p[1];
    int flags = p[2];
    p += 3;
    n -= 3;
    /* "<Retry-After>\n<limit info>\n<body>": header lines only when their flag is set. */
    const uint8_t *body = p;
    size_t blen = n;
    for (int h = 0; h < 2; h++) {
        const uint8_t *nl = memchr(body, '\n', blen);
        size_t ll = nl ? (size_t)(nl - body) : blen;
        if (h == 0)
            copy_line(S.retry_after, sizeof S.retry_after, body, ll);
        else
            copy_line(S.limit_info, sizeof S.limit_info, body, ll);
        if (!nl)
            break;
        blen -= ll + 1;
        body = nl + 1;
    }
    pthread_mutex_lock(&S.mu);
    S.status = status;
    S.hdr_flags = flags;
    S.body = (const char *)body;
    S.body_len = blen;
    S.fuzz_token = call == 6;
    S.served = 0;
    pthread_mutex_unlock(&S.mu);

    int rc = CS_OK;
    switch (call) {
    case 0:
    case 1: {
        cs_api_rec_result_t res[3];
        size_t k = 1 + flags % 3;
        json_t *recs = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append_new(recs, json_pack("{s:{s:s}, s:s, s:s}", "attributes", "type",
                                                  "Lead", "id", "00Q5g00000AbCdEFGH", "Email",
                                                  "ada@example.com"));
        memset(res, 0x5A, sizeof res);
        rc = call == 0 ? cs_api_crm_update(S.api, recs, res)
                       : cs_api_crm_upsert(S.api, "Lead", recs, res);
        if (rc == CS_OK)
            for (size_t i = 0; i < k; i++) {
                check_str(res[i].id, sizeof res[i].id, "result id");
                check_str(res[i].code, sizeof res[i].code, "result code");
                check_str(res[i].message, sizeof res[i].message, "result message");
                if (!res[i].success && !res[i].code[0])
                    cs_fuzz_fail("api_responses", "a failed record without a code");
            }
        break;
    }
    case 2: {
        static const char *const emails[] = {"ada@example.com", "grace@example.org",
                                             "o'brien@example.net"};
        cs_api_match_t out[3];
        memset(out, 0x5A, sizeof out);
        rc = cs_api_crm_match(S.api, emails, 3, out);
        for (int i = 0; rc == CS_OK && i < 3; i++) {
            if (out[i].object == CS_LINK_NONE)
                continue;
            if (out[i].object != CS_LINK_LEAD && out[i].object != CS_LINK_CONTACT)
                cs_fuzz_fail("api_responses", "match object %d", (int)out[i].object);
            if (strnlen(out[i].id, sizeof out[i].id) != 18)
                cs_fuzz_fail("api_responses", "matched id is not 18 characters");
        }
        break;
    }
    case 3: {
        size_t count = 0;
        rc = cs_api_crm_query(S.api, "SELECT Id, Email FROM Lead WHERE IsDeleted = false", query_cb,
                              &count);
        break;
    }
    case 4: {
        int64_t id = 0;
        rc = cs_api_mkt_upsert_by_email(S.api, "ada@example.com",
                                        json_pack("{s:s}", "firstName", "Ada"), &id);
        break;
    }
    case 5: {
        json_t *out = NULL;
        rc = cs_api_mkt_get(S.api, 1234, "id,email,updatedAt", &out);
        if ((rc == CS_OK) != (out != NULL))
            cs_fuzz_fail("api_responses", "mkt_get: %s with%s a body", cs_err_name(rc),
                         out ? "" : "out");
        json_decref(out);
        break;
    }
    case 6: {
        cs_http_opts_t ho = {.timeout_ms = 3000};
        cs_oauth_opts_t oo = {.login_url = S.base,
                              .client_id = "fuzz-client",
                              .client_secret = "fuzz-secret-3f9a",
                              .http = &ho};
        cs_oauth_t *o = cs_oauth_new(&oo, err, sizeof err);
        if (!o)
            cs_fuzz_fail("api_responses", "cs_oauth_new: %s", err);
        err[0] = '\0';
        rc = cs_oauth_fetch(o, err, sizeof err);
        if (rc == CS_OK) {
            char tok[4096], inst[512];
            if (cs_oauth_get_token(o, 0, tok, sizeof tok) != CS_OK || !tok[0])
                cs_fuzz_fail("api_responses", "fetched, but no token");
            (void)cs_oauth_instance_url(o, inst, sizeof inst);
        } else if (!err[0]) {
            cs_fuzz_fail("api_responses", "token fetch failed without a message");
        }
        check_str(err, sizeof err, "oauth errstr");
        cs_oauth_destroy(o);
        check_result(NULL, rc);
        return;
    }
    default: {
        cs_http_result_t r;
        char url[128];
        snprintf(url, sizeof url, "%s/services/data/v60.0/sobjects/Lead/describe", S.base);
        rc = cs_http_request(S.http, "GET", url, NULL, NULL, 0, &r);
        json_t *j = cs_http_result_json(&r);
        (void)j;
        check_result(&r, rc);
        if (r.err != rc)
            cs_fuzz_fail("api_responses", "result err %d != return %d", r.err, rc);
        return;
    }
    }
    check_result(cs_api_last(S.api), rc);
}

int cs_fuzz_api_responses(const uint8_t *data, size_t size)
{
    cs_fuzz_quiet();
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0:
        pure_classify(data + 1, size - 1);
        break;
    case 1:
        pure_limit_info(data + 1, size - 1);
        break;
    case 2:
        pure_retry_after(data + 1, size - 1);
        break;
    default:
        via_http(data + 1, size - 1);
        break;
    }
    return 0;
}

CS_FUZZ_ENTRY(api_responses)
