/* Unit tests for the pure parts of cs_http: backoff, response classification (every case of
 * both API flavours, with canned bodies from the API contract), limit and Retry-After
 * header parsing, escaping. No network. */
#include "cs_err.h"
#include "cs_http.h"
#include "cs_test.h"

static void test_backoff_growth(void)
{
    cs_backoff_t b;
    cs_backoff_init(&b);
    CHECK_INT(b.base_ms, 200);
    CHECK_INT(b.max_ms, 30000);
    CHECK_INT(b.rate_base_ms, 5000);
    CHECK_INT(b.rate_max_ms, 300000);
    for (int n = 0; n < 20; n++) {
        int64_t cap = 200;
        for (int i = 0; i < n && cap < 30000; i++)
            cap *= 2;
        if (cap > 30000)
            cap = 30000;
        int64_t d = cs_backoff_next(&b, CS_ERR_TRANSPORT, -1);
        if (d < cap - cap / 2 || d > cap) {
            fprintf(stderr, "attempt %d: %lld not in [%lld, %lld]\n", n, (long long)d,
                    (long long)(cap - cap / 2), (long long)cap);
            CHECK(0);
        } else {
            CHECK(1);
        }
    }
    CHECK_INT(b.attempt, 20);
    /* growth: the 5th retry always waits longer than the 1st can */
    cs_backoff_reset(&b);
    int64_t first = cs_backoff_next(&b, CS_ERR_HTTP_5XX, -1);
    for (int i = 0; i < 4; i++)
        cs_backoff_next(&b, CS_ERR_HTTP_5XX, -1);
    int64_t fifth = cs_backoff_next(&b, CS_ERR_HTTP_5XX, -1);
    CHECK(first >= 100 && first <= 200);
    CHECK(fifth >= 3200 && fifth <= 6400);

    /* rate limits start from the longer base and stop at their own cap */
    cs_backoff_reset(&b);
    int64_t r0 = cs_backoff_next(&b, CS_ERR_RATE_LIMIT, -1);
    CHECK(r0 >= 2500 && r0 <= 5000);
    for (int i = 0; i < 30; i++) {
        int64_t r = cs_backoff_next(&b, CS_ERR_RATE_LIMIT, -1);
        CHECK(r >= 2500 && r <= 300000);
    }
    int64_t rlast = cs_backoff_next(&b, CS_ERR_RATE_LIMIT, -1);
    CHECK(rlast >= 150000 && rlast <= 300000);

    /* jitter: 200 first delays are not all the same */
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 200; i++) {
        cs_backoff_reset(&b);
        int64_t d = cs_backoff_next(&b, CS_ERR_TIMEOUT, -1);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    CHECK(hi > lo);
    CHECK(lo >= 100 && hi <= 200);
}

static void test_backoff_retry_after_and_limits(void)
{
    cs_backoff_t b;
    cs_backoff_init(&b);
    int64_t d = cs_backoff_next(&b, CS_ERR_RATE_LIMIT, 7);
    CHECK(d >= 7000 && d <= 7700);
    d = cs_backoff_next(&b, CS_ERR_HTTP_5XX, 30); /* jitter at most 1 s */
    CHECK(d >= 30000 && d <= 31000);
    d = cs_backoff_next(&b, CS_ERR_HTTP_5XX, 1); /* shorter than the computed backoff: wins */
    CHECK(d >= 1000 && d <= 1100);
    d = cs_backoff_next(&b, CS_ERR_RATE_LIMIT, 86400); /* capped at one hour */
    CHECK(d >= 3600000 && d <= 3601000);
    cs_backoff_reset(&b);
    d = cs_backoff_next(&b, CS_ERR_HTTP_5XX, 0); /* "0" / absent: normal backoff */
    CHECK(d >= 100 && d <= 200);

    /* not retryable */
    CHECK_INT(cs_backoff_next(&b, CS_OK, -1), -1);
    CHECK_INT(cs_backoff_next(&b, CS_ERR_HTTP_4XX, -1), -1);
    CHECK_INT(cs_backoff_next(&b, CS_ERR_NOT_FOUND, 5), -1);
    CHECK_INT(cs_backoff_next(&b, CS_ERR_INVAL, -1), -1);
    CHECK_INT(cs_backoff_next(NULL, CS_ERR_TRANSPORT, -1), -1);

    /* bounded attempts */
    cs_backoff_init(&b);
    b.max_attempts = 3;
    CHECK(cs_backoff_next(&b, CS_ERR_AUTH, -1) > 0);
    CHECK(cs_backoff_next(&b, CS_ERR_TRANSPORT, -1) > 0);
    CHECK(cs_backoff_next(&b, CS_ERR_TRANSPORT, -1) > 0);
    CHECK_INT(cs_backoff_next(&b, CS_ERR_TRANSPORT, -1), -1);
    cs_backoff_reset(&b);
    CHECK(cs_backoff_next(&b, CS_ERR_TRANSPORT, -1) > 0);
}

typedef struct {
    int status;
    const char *body;
    int want;
    const char *want_code;
    const char *want_msg;
} case_t;

static const case_t cases[] = {
    /* success */
    {200, "{\"records\":[],\"done\":true}", CS_OK, "", ""},
    {201, "[{\"id\":\"00Q1\",\"success\":true,\"errors\":[]}]", CS_OK, "", ""},
    {204, "", CS_OK, "", ""},
    /* per-record errors inside a 200 collection result are not a request error */
    {200,
     "[{\"success\":false,\"errors\":[{\"statusCode\":\"UNABLE_TO_LOCK_ROW\",\"message\":\"x\"}]}]",
     CS_OK, "", ""},
    /* a record with a "code" field is not a marketing error */
    {200, "{\"id\":5,\"code\":\"ABC\",\"email\":\"a@b.c\"}", CS_OK, "", ""},
    {200, "{\"code\":3,\"message\":\"something\"}", CS_OK, "", ""},
    /* 5xx */
    {503, "Service Unavailable", CS_ERR_HTTP_5XX, "", ""},
    {500, "[{\"message\":\"An unexpected error occurred.\",\"errorCode\":\"UNKNOWN_EXCEPTION\"}]",
     CS_ERR_HTTP_5XX, "UNKNOWN_EXCEPTION", "An unexpected error occurred."},
    {502, "", CS_ERR_HTTP_5XX, "", ""},
    /* Salesforce rate limit */
    {403,
     "[{\"message\":\"TotalRequests Limit exceeded.\",\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\"}]",
     CS_ERR_RATE_LIMIT, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."},
    {403,
     "[{\"message\":\"ConcurrentPerOrgLongTxn Limit "
     "exceeded.\",\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\"}]",
     CS_ERR_RATE_LIMIT, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."},
    /* other 403s are refusals */
    {403, "[{\"message\":\"no access\",\"errorCode\":\"INSUFFICIENT_ACCESS\"}]", CS_ERR_HTTP_4XX,
     "INSUFFICIENT_ACCESS", "no access"},
    /* marketing rate limits, whatever the status */
    {400,
     "{\"code\":66,\"message\":\"You have exceeded your concurrent request limit. Please wait, "
     "before trying again\"}",
     CS_ERR_RATE_LIMIT, "66",
     "You have exceeded your concurrent request limit. Please wait, before trying again"},
    {429, "{\"code\":122,\"message\":\"Daily API rate limit met\"}", CS_ERR_RATE_LIMIT, "122",
     "Daily API rate limit met"},
    {200, "{\"code\":66,\"message\":\"concurrent limit\"}", CS_ERR_RATE_LIMIT, "66",
     "concurrent limit"},
    {503, "{\"code\":122,\"message\":\"Daily API rate limit met\"}", CS_ERR_RATE_LIMIT, "122",
     "Daily API rate limit met"},
    /* plain 429 */
    {429, "", CS_ERR_RATE_LIMIT, "", ""},
    {429, "Too Many Requests", CS_ERR_RATE_LIMIT, "", ""},
    /* auth */
    {401, "[{\"message\":\"Session expired or invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]",
     CS_ERR_AUTH, "INVALID_SESSION_ID", "Session expired or invalid"},
    {401, "{\"code\":184,\"message\":\"access_token is invalid, unknown, or malformed\"}",
     CS_ERR_AUTH, "184", "access_token is invalid, unknown, or malformed"},
    {400, "{\"code\":184,\"message\":\"access_token is invalid\"}", CS_ERR_AUTH, "184",
     "access_token is invalid"},
    {401, "", CS_ERR_AUTH, "", ""},
    /* a 401 naming another marketing error is not a token problem */
    {401, "{\"code\":181,\"message\":\"A required header is missing\"}", CS_ERR_HTTP_4XX, "181",
     "A required header is missing"},
    /* not found */
    {404, "[{\"message\":\"The requested resource does not exist\",\"errorCode\":\"NOT_FOUND\"}]",
     CS_ERR_NOT_FOUND, "NOT_FOUND", "The requested resource does not exist"},
    {404, "{\"code\":192,\"message\":\"Object does not exist\"}", CS_ERR_NOT_FOUND, "192",
     "Object does not exist"},
    {404, "", CS_ERR_NOT_FOUND, "", ""},
    /* other 4xx */
    {400, "[{\"message\":\"unexpected token: FROM\",\"errorCode\":\"MALFORMED_QUERY\"}]",
     CS_ERR_HTTP_4XX, "MALFORMED_QUERY", "unexpected token: FROM"},
    {400,
     "[{\"message\":\"record limit reached. cannot submit more than 200 records into this "
     "call\",\"errorCode\":\"EXCEEDED_ID_LIMIT\"}]",
     CS_ERR_HTTP_4XX, "EXCEEDED_ID_LIMIT",
     "record limit reached. cannot submit more than 200 records into this call"},
    {400, "{\"error\":\"invalid_grant\",\"error_description\":\"authentication failure\"}",
     CS_ERR_HTTP_4XX, "invalid_grant", "authentication failure"},
    {413, "{\"error\":\"too_large\",\"message\":\"request body exceeds 1048576 bytes\"}",
     CS_ERR_HTTP_4XX, "too_large", "request body exceeds 1048576 bytes"},
    {405, "", CS_ERR_HTTP_4XX, "", ""},
    {300, "[\"/services/data/v60.0/sobjects/Lead/00Q1\"]", CS_ERR_HTTP_4XX, "", ""},
    /* broken JSON does not crash or mislead */
    {400, "[{\"errorCode\":", CS_ERR_HTTP_4XX, "", ""},
    {503, "{\"code\":", CS_ERR_HTTP_5XX, "", ""},
};

static void test_classify(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const case_t *c = &cases[i];
        char code[64] = "junk", msg[256] = "junk";
        int rc = cs_http_classify(c->status, c->body, strlen(c->body), code, sizeof(code), msg,
                                  sizeof(msg));
        if (rc != c->want || strcmp(code, c->want_code) || strcmp(msg, c->want_msg)) {
            fprintf(stderr, "case %zu (HTTP %d %s): got %s \"%s\" \"%s\", want %s \"%s\" \"%s\"\n",
                    i, c->status, c->body, cs_err_name(rc), code, msg, cs_err_name(c->want),
                    c->want_code, c->want_msg);
            CHECK(0);
        } else {
            CHECK(1);
        }
        /* classes as the callers see them */
        if (c->want == CS_ERR_RATE_LIMIT || c->want == CS_ERR_HTTP_5XX || c->want == CS_ERR_AUTH)
            CHECK(cs_err_class(rc) == CS_CLASS_RETRY);
        if (c->want == CS_ERR_HTTP_4XX || c->want == CS_ERR_NOT_FOUND)
            CHECK(cs_err_class(rc) == CS_CLASS_FATAL);
    }
    /* NULL buffers and NULL body are fine */
    CHECK_INT(cs_http_classify(429, NULL, 0, NULL, 0, NULL, 0), CS_ERR_RATE_LIMIT);
    CHECK_INT(cs_http_classify(200, NULL, 0, NULL, 0, NULL, 0), CS_OK);
    /* truncation into small buffers */
    char small[8];
    cs_http_classify(403, cases[9].body, strlen(cases[9].body), small, sizeof(small), NULL, 0);
    CHECK_STR(small, "REQUEST");
}

static void test_limit_info(void)
{
    long u = -1, m = -1;
    CHECK_INT(cs_http_parse_limit_info("api-usage=18/5000", &u, &m), CS_OK);
    CHECK_INT(u, 18);
    CHECK_INT(m, 5000);
    CHECK_INT(
        cs_http_parse_limit_info(
            "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)", &u, &m),
        CS_OK);
    CHECK_INT(u, 25);
    CHECK_INT(m, 5000);
    /* the per-app key first, comma separators, spaces, unknown keys */
    CHECK_INT(cs_http_parse_limit_info("per-app-api-usage=17/250(appName=x), api-bursts=1/750, "
                                       "api-usage = 4999/5000",
                                       &u, &m),
              CS_OK);
    CHECK_INT(u, 4999);
    CHECK_INT(m, 5000);
    CHECK_INT(cs_http_parse_limit_info("foo=bar;api-usage=1/15000;x", &u, &m), CS_OK);
    CHECK_INT(u, 1);
    CHECK_INT(m, 15000);
    /* the bare form (Account Engagement x-api-usage) */
    CHECK_INT(cs_http_parse_limit_info(" 120/25000", &u, &m), CS_OK);
    CHECK_INT(u, 120);
    CHECK_INT(m, 25000);
    /* failures leave the outputs alone */
    u = m = 7;
    CHECK_INT(cs_http_parse_limit_info("per-app-api-usage=17/250(appName=x)", &u, &m),
              CS_ERR_PARSE);
    CHECK_INT(cs_http_parse_limit_info("api-usage=abc", &u, &m), CS_ERR_PARSE);
    CHECK_INT(cs_http_parse_limit_info("api-usage=5/", &u, &m), CS_ERR_PARSE);
    CHECK_INT(cs_http_parse_limit_info("", &u, &m), CS_ERR_PARSE);
    CHECK_INT(u, 7);
    CHECK_INT(m, 7);
}

static void test_retry_after(void)
{
    CHECK_INT(cs_http_parse_retry_after("120", 0), 120);
    CHECK_INT(cs_http_parse_retry_after(" 0 ", 0), 0);
    CHECK_INT(cs_http_parse_retry_after("-5", 0), -1);
    CHECK_INT(cs_http_parse_retry_after("soon", 0), -1);
    CHECK_INT(cs_http_parse_retry_after("", 0), -1);
    CHECK_INT(cs_http_parse_retry_after(NULL, 0), -1);
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
    CHECK_INT(cs_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 30), 30);
    CHECK_INT(cs_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 30), 0);
}

static void test_escape(void)
{
    const char *s = "a b&c=d/\xc3\xa9~_.-Z9";
    char *f = cs_http_escape(s, strlen(s), 1);
    char *u = cs_http_escape(s, strlen(s), 0);
    CHECK_STR(f, "a+b%26c%3Dd%2F%C3%A9~_.-Z9");
    CHECK_STR(u, "a%20b%26c%3Dd%2F%C3%A9~_.-Z9");
    free(f);
    free(u);
    char *e = cs_http_escape("", 0, 1);
    CHECK_STR(e, "");
    free(e);
}

int main(void)
{
    test_backoff_growth();
    test_backoff_retry_after_and_limits();
    test_classify();
    test_limit_info();
    test_retry_after();
    test_escape();
    return cs_test_report();
}
