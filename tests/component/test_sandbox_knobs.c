/* Component test: the sandbox's knobs and helpers through cs_http: latency, 503s, burst and
 * daily request limits (403 REQUEST_LIMIT_EXCEEDED with Sforce-Limit-Info), per-record
 * UNABLE_TO_LOCK_ROW, reproducible random faults from a seed, /sandbox/stats, snapshot and
 * reset; then a second sandbox started from a --config file with a seed file, a small
 * max_body and a clean SIGTERM exit. */
#include "cs_err.h"
#include "cs_run.h"
#include "cs_test.h"
#include "testutil_sandbox.h"

#include <stdarg.h>
#include <unistd.h>

static cs_tsandbox_t SB;
static cs_tsandbox_client_t C;

static const char *sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long long iget(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static json_t *req(const char *method, const char *path, const char *body, int *status)
{
    return cs_tsandbox_req(&C, method, path, body, status);
}

static const char *leads_body(int n, const char *tag)
{
    static char buf[65536];
    size_t k = (size_t)snprintf(buf, sizeof(buf), "{\"allOrNone\":false,\"records\":[");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k,
                              "%s{\"attributes\":{\"type\":\"Lead\"},\"LastName\":\"%s%d\","
                              "\"Company\":\"K\"}",
                              i ? "," : "", tag, i);
    snprintf(buf + k, sizeof(buf) - k, "]}");
    return buf;
}

static void test_knob_endpoint(void)
{
    int st;
    json_t *r = cs_tsandbox_admin(&SB, "GET", "knobs", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "crm.latency_ms"), 0);
    CHECK_INT(iget(r, "crm.daily_limit"), 100000);
    CHECK_INT(iget(r, "marketing.concurrency_limit"), 5);
    CHECK_INT(iget(r, "auth.token_ttl_s"), 7200);
    CHECK(json_is_number(json_object_get(r, "crm.error_rate")));
    json_decref(r);
    r = cs_tsandbox_admin(&SB, "POST", "knobs", "{\"crm.nope\": 1}", &st);
    CHECK_INT(st, 400);
    json_decref(r);
    r = cs_tsandbox_admin(&SB, "POST", "knobs", "{\"crm.error_rate\": 2}", &st);
    CHECK_INT(st, 400);
    json_decref(r);
    r = cs_tsandbox_admin(&SB, "POST", "knobs", "{\"crm.latency_ms\": \"fast\"}", &st);
    CHECK_INT(st, 400);
    json_decref(r);
    r = cs_tsandbox_admin(&SB, "POST", "knobs", "not json", &st);
    CHECK_INT(st, 400);
    json_decref(r);
    /* a rejected change changes nothing, even the valid part */
    r = cs_tsandbox_admin(&SB, "POST", "knobs", "{\"crm.latency_ms\": 5, \"bogus\": 1}", &st);
    json_decref(r);
    r = cs_tsandbox_admin(&SB, "GET", "knobs", NULL, &st);
    CHECK_INT(iget(r, "crm.latency_ms"), 0);
    json_decref(r);
}

static void test_latency_and_outage(void)
{
    int st;
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.latency_ms\": 200}") == 0);
    int64_t t0 = cs_now_ms();
    req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    int64_t dt = cs_now_ms() - t0;
    CHECK_INT(st, 200);
    CHECK(dt >= 190);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.latency_ms\": 0, \"crm.error_rate\": 1.0}") == 0);
    json_t *r = req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 503);
    CHECK(r == NULL); /* an HTML page from the "edge" */
    CHECK(strstr(C.res.body, "503") != NULL);
    CHECK_INT(C.res.err, CS_ERR_HTTP_5XX);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.error_rate\": 0}") == 0);
    req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 200);
}

static void test_limits(void)
{
    int st;
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.burst_limit_errors\": 3}") == 0);
    for (int i = 0; i < 3; i++) {
        json_t *r = req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
        CHECK_INT(st, 403);
        CHECK_STR(sget(json_array_get(r, 0), "errorCode"), "REQUEST_LIMIT_EXCEEDED");
        CHECK_INT(C.res.err, CS_ERR_RATE_LIMIT);
        CHECK(C.res.api_used >= 0); /* Sforce-Limit-Info on refusals too */
    }
    req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 200);

    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.daily_limit\": 50, \"crm.daily_used\": 49}") == 0);
    req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(C.res.api_used, 50);
    CHECK_INT(C.res.api_max, 50);
    json_t *r = req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 403);
    CHECK_STR(sget(json_array_get(r, 0), "errorCode"), "REQUEST_LIMIT_EXCEEDED");
    CHECK_STR(sget(json_array_get(r, 0), "message"), "TotalRequests Limit exceeded.");
    CHECK_INT(C.res.api_used, 50);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.daily_limit\": 100000, \"crm.daily_used\": 0}") == 0);
}

/* Outcome pattern of 40 collection records with lock_row_rate 0.5 and the given seed. */
static void lock_pattern(long long seed, char *out)
{
    char knobs[128];
    snprintf(knobs, sizeof(knobs), "{\"crm.lock_row_rate\": 0.5, \"seed\": %lld}", seed);
    REQUIRE(cs_tsandbox_knobs(&SB, knobs) == 0);
    int st;
    json_t *r = req("POST", CS_TSANDBOX_DATA "/composite/sobjects", leads_body(40, "Lock"), &st);
    REQUIRE(st == 200 && json_array_size(r) == 40);
    for (size_t i = 0; i < 40; i++) {
        json_t *res = json_array_get(r, i);
        json_t *e = json_array_get(json_object_get(res, "errors"), 0);
        out[i] = json_is_true(json_object_get(res, "success"))                 ? 'o'
                 : (e && !strcmp(sget(e, "statusCode"), "UNABLE_TO_LOCK_ROW")) ? 'L'
                                                                               : '?';
    }
    out[40] = '\0';
}

static void test_lock_rows_and_seed(void)
{
    int st;
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.lock_row_rate\": 1}") == 0);
    json_t *r = req("POST", CS_TSANDBOX_DATA "/composite/sobjects", leads_body(3, "L"), &st);
    CHECK_INT(st, 200);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(json_object_get(json_array_get(r, i), "errors"), 0);
        CHECK_STR(sget(e, "statusCode"), "UNABLE_TO_LOCK_ROW");
        CHECK_STR(sget(e, "message"), "unable to obtain exclusive access to this record");
    }
    char a[41], b[41], c[41];
    lock_pattern(7, a);
    lock_pattern(7, b);
    lock_pattern(8, c);
    CHECK_STR(a, b);
    CHECK(strcmp(a, c) != 0);
    CHECK(strchr(a, 'o') && strchr(a, 'L') && !strchr(a, '?'));
    /* the 503 dice are reproducible too */
    char p1[31], p2[31];
    for (int round = 0; round < 2; round++) {
        char *p = round ? p2 : p1;
        REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.error_rate\": 0.5, \"seed\": 11}") == 0);
        for (int i = 0; i < 30; i++) {
            req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
            p[i] = st == 503 ? 'x' : 'o';
        }
        p[30] = '\0';
    }
    CHECK_STR(p1, p2);
    CHECK(strchr(p1, 'x') && strchr(p1, 'o'));
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.error_rate\": 0, \"crm.lock_row_rate\": 0}") == 0);
}

static void test_stats_snapshot_reset(void)
{
    int st;
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.latency_ms\": 3}") == 0);
    REQUIRE(cs_tsandbox_reset(&SB) == 0);
    json_t *r = cs_tsandbox_admin(&SB, "GET", "knobs", NULL, &st);
    CHECK_INT(iget(r, "crm.latency_ms"), 0); /* back to the configured value */
    json_decref(r);
    r = req("POST", CS_TSANDBOX_DATA "/composite/sobjects", leads_body(3, "S"), &st);
    CHECK_INT(st, 200); /* the token survived the reset */
    char id[19];
    snprintf(id, sizeof(id), "%s", sget(json_array_get(r, 0), "id"));
    req("POST", CS_TSANDBOX_DATA "/composite/sobjects", leads_body(3, "T"), &st);
    char body[256];
    snprintf(body, sizeof(body),
             "{\"records\":[{\"attributes\":{\"type\":\"Lead\"},\"Id\":\"%s\",\"Title\":\"X\"}]}",
             id);
    req("PATCH", CS_TSANDBOX_DATA "/composite/sobjects", body, &st);
    req("GET", CS_TSANDBOX_DATA "/query?q=SELECT+Id+FROM+Lead", NULL, &st);
    req("POST", CS_TSANDBOX_V5 "/prospects", "{\"email\":\"s@stats.example\"}", &st);
    CHECK_INT(st, 201);

    r = cs_tsandbox_admin(&SB, "GET", "stats", NULL, &st);
    CHECK_INT(st, 200);
    json_t *crm = json_object_get(r, "crm"), *mkt = json_object_get(r, "marketing");
    json_t *ep = json_object_get(crm, "endpoints");
    CHECK_INT(iget(json_object_get(ep, "POST /composite/sobjects"), "calls"), 2);
    CHECK_INT(iget(json_object_get(ep, "PATCH /composite/sobjects"), "calls"), 1);
    CHECK_INT(iget(json_object_get(ep, "GET /query"), "calls"), 1);
    json_t *lead = json_object_get(json_object_get(crm, "objects"), "Lead");
    CHECK_INT(iget(lead, "created"), 6);
    CHECK_INT(iget(lead, "updated"), 1);
    CHECK_INT(iget(lead, "calls"), 4);
    CHECK_INT(iget(crm, "records_created"), 6);
    CHECK_INT(iget(json_object_get(crm, "api_usage"), "used"), 4);
    CHECK_INT(iget(json_object_get(crm, "live_records"), "Lead"), 6);
    CHECK_INT(iget(mkt, "records_created"), 1);
    CHECK_INT(iget(json_object_get(json_object_get(mkt, "endpoints"), "POST /prospects"), "calls"),
              1);
    json_decref(r);

    r = cs_tsandbox_admin(&SB, "GET", "snapshot", NULL, &st);
    CHECK_INT(st, 200);
    json_t *leads = json_object_get(json_object_get(r, "crm"), "Lead");
    CHECK_INT(json_array_size(leads), 6);
    CHECK_INT(json_array_size(json_object_get(json_object_get(r, "crm"), "User")), 4);
    CHECK_STR(sget(json_array_get(leads, 0), "Title"), "X");
    CHECK_INT(json_array_size(json_object_get(json_object_get(r, "marketing"), "prospects")), 1);
    CHECK_INT(json_array_size(json_object_get(json_object_get(r, "marketing"), "users")),
              4); /* 3 configured + the integration user */
    json_decref(r);

    REQUIRE(cs_tsandbox_reset(&SB) == 0);
    r = cs_tsandbox_admin(&SB, "GET", "snapshot", NULL, &st);
    CHECK_INT(json_array_size(json_object_get(json_object_get(r, "crm"), "Lead")), 0);
    CHECK_INT(json_array_size(json_object_get(json_object_get(r, "marketing"), "prospects")), 0);
    json_decref(r);
    r = cs_tsandbox_admin(&SB, "GET", "stats", NULL, &st);
    CHECK_INT(iget(json_object_get(r, "crm"), "records_created"), 0);
    json_decref(r);
    r = cs_tsandbox_admin(&SB, "GET", "nothing", NULL, &st);
    CHECK_INT(st, 404);
    json_decref(r);
}

static void test_config_file(void)
{
    char cfg[] = "/tmp/crmsync-sandbox-test-XXXXXX", seed[] = "/tmp/crmsync-sandbox-seed-XXXXXX";
    int fd = mkstemp(seed);
    REQUIRE(fd >= 0);
    const char *seed_json =
        "{\"leads\": [{\"LastName\": \"Seeded\", \"Company\": \"S\", \"Email\": "
        "\"seed@x.example\"}], \"contacts\": [{\"LastName\": \"C\"}], \"prospects\": "
        "[{\"email\": \"seedp@x.example\", \"assignedToId\": 101}]}";
    REQUIRE(write(fd, seed_json, strlen(seed_json)) == (ssize_t)strlen(seed_json));
    close(fd);
    fd = mkstemp(cfg);
    REQUIRE(fd >= 0);
    char text[512];
    snprintf(text, sizeof(text),
             "# sandbox test configuration\ncrm.daily_limit = 7\nmarketing.utc_offset = "
             "+05:30\nauth.client_secret = other-secret\nmax_body = 4096\nseed.file = %s\n",
             seed);
    REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);

    cs_tsandbox_t sb;
    char err[256];
    const char *args[] = {"--config", cfg, NULL};
    REQUIRE(cs_tsandbox_start(&sb, args, err, sizeof(err)) == 0);
    int st;
    json_t *r = cs_tsandbox_admin(&sb, "GET", "knobs", NULL, &st);
    CHECK_INT(iget(r, "crm.daily_limit"), 7);
    json_decref(r);
    r = cs_tsandbox_call(&sb, "POST", "/services/oauth2/token", NULL,
                         "grant_type=client_credentials&client_id=" CS_TSANDBOX_CLIENT_ID
                         "&client_secret=" CS_TSANDBOX_CLIENT_SECRET,
                         &st);
    CHECK_INT(st, 400);
    CHECK_STR(sget(r, "error"), "invalid_client");
    json_decref(r);
    r = cs_tsandbox_admin(&sb, "GET", "snapshot", NULL, &st);
    json_t *l = json_array_get(json_object_get(json_object_get(r, "crm"), "Lead"), 0);
    CHECK_STR(sget(l, "Email"), "seed@x.example");
    CHECK_INT(json_array_size(json_object_get(json_object_get(r, "crm"), "Contact")), 1);
    json_t *p = json_array_get(json_object_get(json_object_get(r, "marketing"), "prospects"), 0);
    CHECK_STR(sget(p, "email"), "seedp@x.example");
    CHECK(strstr(sget(p, "updatedAt"), "+05:30") != NULL);
    json_decref(r);
    /* reset re-applies the seed */
    REQUIRE(cs_tsandbox_reset(&sb) == 0);
    r = cs_tsandbox_admin(&sb, "GET", "snapshot", NULL, &st);
    CHECK_INT(json_array_size(json_object_get(json_object_get(r, "crm"), "Lead")), 1);
    json_decref(r);
    /* bodies over max_body: the API's error shape, nothing crashes */
    char *big = malloc(6000);
    REQUIRE(big);
    memset(big, ' ', 5999);
    big[0] = '{';
    big[5998] = '}';
    big[5999] = '\0';
    r = cs_tsandbox_call(&sb, "POST", CS_TSANDBOX_DATA "/composite/sobjects", NULL, big, &st);
    CHECK_INT(st, 413);
    CHECK(json_is_array(r));
    json_decref(r);
    r = cs_tsandbox_call(&sb, "POST", CS_TSANDBOX_V5 "/prospects", NULL, big, &st);
    CHECK_INT(st, 413);
    CHECK(json_is_object(r));
    json_decref(r);
    free(big);
    big = malloc(20000);
    REQUIRE(big);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    r = cs_tsandbox_call(&sb, "POST", CS_TSANDBOX_DATA "/composite/sobjects", NULL, big, &st);
    CHECK_INT(st, 413);
    json_decref(r);
    free(big);
    r = cs_tsandbox_admin(&sb, "GET", "info", NULL, &st);
    CHECK_INT(st, 200);
    json_decref(r);
    CHECK_INT(cs_tsandbox_stop(&sb), 0);

    /* a bad configuration is refused at start */
    const char *bad[] = {"--marketing.utc_offset", "sometime", NULL};
    CHECK(cs_tsandbox_start(&sb, bad, err, sizeof(err)) != 0);
    unlink(cfg);
    unlink(seed);
}

int main(void)
{
    char err[512];
    REQUIRE(cs_tsandbox_start(&SB, NULL, err, sizeof(err)) == 0);
    REQUIRE(cs_tsandbox_client_init(&C, &SB) == 0);
    test_knob_endpoint();
    test_latency_and_outage();
    test_limits();
    test_lock_rows_and_seed();
    test_stats_snapshot_reset();
    cs_tsandbox_client_close(&C);
    CHECK_INT(cs_tsandbox_stop(&SB), 0);
    test_config_file();
    return cs_test_report();
}
