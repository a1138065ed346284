/* Component test: the sandbox's marketing side (Account Engagement v5 subset) through cs_http:
 * the header errors (181 / 184 / 201), prospects create / read / update / upsertLatestByEmail /
 * delete with their validation, the query (fields, filters, orderBy, limit, nextPageToken
 * paging), visitor activities with their type codes, users (and the integration user's linked
 * marketing user), who changed a prospect (createdById / updatedById), the custom do-not-sync
 * field, the limits (codes 66 and 122) and outages; a second sandbox checks duplicate-email
 * (AMPSEA) and strict read-only modes, seeding and a configured integration marketing user. */
#include "cs_err.h"
#include "cs_test.h"
#include "testutil_sandbox.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
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

static const char *P(const char *fmt, ...)
{
    static char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

static json_t *req(const char *method, const char *path, const char *body, int *status)
{
    return cs_tsandbox_req(&C, method, path, body, status);
}

/* A request with explicit headers and no token provider (for the header errors). */
static json_t *raw(const char *method, const char *path, const char *const *headers, int *status)
{
    static json_t *last;
    json_decref(last);
    last = cs_tsandbox_call(&SB, method, path, headers, NULL, status);
    return last;
}

/* ISO-8601 with a -hh:mm / +hh:mm offset and no fraction, as v5 answers. */
static int iso_offset(const char *s)
{
    int y, mo, d, h, mi, se, oh, om;
    char sign;
    return s && strlen(s) == 25 &&
           sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d", &y, &mo, &d, &h, &mi, &se, &sign, &oh,
                  &om) == 9 &&
           (sign == '+' || sign == '-');
}

static long long create(const char *email, const char *extra)
{
    int st;
    char body[512];
    snprintf(body, sizeof(body), "{\"email\":\"%s\"%s%s}", email, extra ? "," : "",
             extra ? extra : "");
    json_t *r = req("POST", CS_TSANDBOX_V5 "/prospects?fields=id", body, &st);
    if (st != 201) {
        fprintf(stderr, "create %s: %d %s\n", email, st, C.res.body);
        return -1;
    }
    return iget(r, "id");
}

static void test_headers(void)
{
    int st;
    char token[512], auth[600];
    REQUIRE(cs_oauth_get_token(C.oauth, 0, token, sizeof(token)) == 0);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *path = CS_TSANDBOX_V5 "/prospects?fields=id";
    const char *const no_auth[] = {"Pardot-Business-Unit-Id: " CS_TSANDBOX_BU_ID, NULL};
    const char *const no_bu[] = {auth, NULL};
    const char *const bad_token[] = {"Authorization: Bearer nope",
                                     "Pardot-Business-Unit-Id: " CS_TSANDBOX_BU_ID, NULL};
    const char *const bad_bu[] = {auth, "Pardot-Business-Unit-Id: 0Uv000000000000AAA", NULL};
    const char *const ok15[] = {auth, "Pardot-Business-Unit-Id: 0Uv5g000000SBOX", NULL};
    json_t *r = raw("GET", path, no_auth, &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 181);
    CHECK(sget(r, "message") != NULL);
    r = raw("GET", path, no_bu, &st);
    CHECK_INT(iget(r, "code"), 181);
    r = raw("GET", path, bad_token, &st);
    CHECK_INT(st, 401);
    CHECK_INT(iget(r, "code"), 184);
    r = raw("GET", path, bad_bu, &st);
    CHECK_INT(iget(r, "code"), 201);
    r = raw("GET", path, ok15, &st);
    CHECK_INT(st, 200);
}

static long long P1;

static void test_prospect_crud(void)
{
    int st;
    json_t *r = req("POST",
                    CS_TSANDBOX_V5 "/prospects?fields=id,email,firstName,score,updatedAt,createdAt,"
                                   "crmsyncDoNotSync__c,assignedToId,lastActivityAt",
                    "{\"email\":\"Ann@Example.com\",\"firstName\":\"Ann\",\"lastName\":\"Lee\","
                    "\"company\":\"Acme\",\"assignedToId\":101}",
                    &st);
    CHECK_INT(st, 201);
    P1 = iget(r, "id");
    CHECK(P1 > 0);
    CHECK_STR(sget(r, "email"), "Ann@Example.com");
    CHECK_INT(iget(r, "score"), 0);
    CHECK(iso_offset(sget(r, "updatedAt")));
    CHECK(iso_offset(sget(r, "createdAt")));
    CHECK(json_is_false(json_object_get(r, "crmsyncDoNotSync__c")));
    CHECK(json_is_null(json_object_get(r, "lastActivityAt")));
    CHECK_INT(iget(r, "assignedToId"), 101);
    CHECK_INT(json_object_size(r), 9);
    CHECK(strstr(sget(r, "updatedAt"), "-04:00") != NULL); /* the configured API user zone */

    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{\"email\":\"not-an-email\"}", &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 4);
    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{\"firstName\":\"NoEmail\"}", &st);
    CHECK_INT(iget(r, "code"), 4);
    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{\"email\":\"x@y.example\",\"shoeSize\":4}", &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 154);
    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{\"email\":\"x@y.example\",\"updatedAt\":\"x\"}",
            &st);
    CHECK_INT(iget(r, "code"), 154);
    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{\"email\":\"x@y.example\",\"score\":\"high\"}",
            &st);
    CHECK_INT(iget(r, "code"), 154);
    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{\"email\":\"ann@example.com\"}", &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 9); /* unique e-mails (AMPSEA off) */
    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{\"email\":\"x@y.example\",\"assignedToId\":9}",
            &st);
    CHECK_INT(iget(r, "code"), 10);
    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{broken", &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 71);

    r = req("GET", P(CS_TSANDBOX_V5 "/prospects/%lld?fields=id,email,company", P1), NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "company"), "Acme");
    CHECK_INT(json_object_size(r), 3);
    r = req("GET", P(CS_TSANDBOX_V5 "/prospects/%lld", P1), NULL, &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 13);
    r = req("GET", P(CS_TSANDBOX_V5 "/prospects/%lld?fields=id,nope", P1), NULL, &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 51);
    r = req("GET", CS_TSANDBOX_V5 "/prospects/999999?fields=id", NULL, &st);
    CHECK_INT(st, 404);
    CHECK_INT(iget(r, "code"), 3);
    r = req("GET", CS_TSANDBOX_V5 "/prospects/abc?fields=id", NULL, &st);
    CHECK_INT(st, 400);

    r = req("GET", P(CS_TSANDBOX_V5 "/prospects/%lld?fields=updatedAt", P1), NULL, &st);
    char before[40];
    snprintf(before, sizeof(before), "%s", sget(r, "updatedAt"));
    sleep(1);
    usleep(100000);
    /* a write that changes nothing leaves updatedAt alone */
    r = req("PATCH", P(CS_TSANDBOX_V5 "/prospects/%lld?fields=updatedAt", P1),
            "{\"firstName\":\"Ann\"}", &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "updatedAt"), before);
    r = req("PATCH",
            P(CS_TSANDBOX_V5 "/prospects/%lld?fields=jobTitle,updatedAt,crmsyncDoNotSync__c,"
                             "salesforceId,salesforceLeadId,salesforceUrl,salesforceLastSync,"
                             "optedOut",
              P1),
            "{\"jobTitle\":\"CTO\",\"crmsyncDoNotSync__c\":true,\"salesforceId\":"
            "\"00Q5g000000AAAAEA4\",\"salesforceLeadId\":\"00Q5g000000AAAAEA4\","
            "\"salesforceLastSync\":\"2024-05-01T10:11:12+02:00\",\"optedOut\":true}",
            &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "jobTitle"), "CTO");
    CHECK(strcmp(sget(r, "updatedAt"), before) != 0);
    CHECK(json_is_true(json_object_get(r, "crmsyncDoNotSync__c")));
    CHECK_STR(sget(r, "salesforceId"), "00Q5g000000AAAAEA4");
    CHECK(strstr(sget(r, "salesforceUrl"), "/00Q5g000000AAAAEA4") != NULL);
    CHECK_STR(sget(r, "salesforceLastSync"), "2024-05-01T04:11:12-04:00");
    r = req("PATCH", P(CS_TSANDBOX_V5 "/prospects/%lld", P1), "{\"id\":5}", &st);
    CHECK_INT(iget(r, "code"), 154);
    r = req("PATCH", CS_TSANDBOX_V5 "/prospects/999999", "{\"jobTitle\":\"x\"}", &st);
    CHECK_INT(st, 404);
    r = req("PUT", P(CS_TSANDBOX_V5 "/prospects/%lld", P1), "{}", &st);
    CHECK_INT(st, 405);
    CHECK_INT(iget(r, "code"), 60);
    r = req("GET", CS_TSANDBOX_V5 "/campaigns?fields=id", NULL, &st);
    CHECK_INT(st, 404);
}

static void test_upsert_latest(void)
{
    int st;
    json_t *r = req("POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
                    "{\"matchEmail\":\"ANN@example.com\",\"prospect\":{\"phone\":\"555\"},"
                    "\"fields\":[\"id\",\"email\",\"phone\",\"updatedAt\"],"
                    "\"secondaryDeletedSearch\":true}",
                    &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "id"), P1);
    CHECK_STR(sget(r, "phone"), "555");
    CHECK_INT(json_object_size(r), 4);
    r = req("POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
            "{\"matchEmail\":\"new@example.com\",\"prospect\":{\"firstName\":\"Nu\"},"
            "\"fields\":[\"id\",\"email\",\"firstName\"]}",
            &st);
    CHECK_INT(st, 201);
    CHECK(iget(r, "id") > P1);
    CHECK_STR(sget(r, "email"), "new@example.com");
    r = req("POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
            "{\"matchEmail\":\"bad\",\"prospect\":{}}", &st);
    CHECK_INT(iget(r, "code"), 4);
    r = req("POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
            "{\"matchEmail\":\"a@b.example\"}", &st);
    CHECK_INT(iget(r, "code"), 13);
    r = req("POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
            "{\"matchEmail\":\"a@b.example\",\"prospect\":{},\"fields\":[\"bogus\"]}", &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 51);
}

static void test_query_paging(void)
{
    int st;
    for (int i = 0; i < 25; i++)
        REQUIRE(create(P("q%d@page.example", i), i % 2 ? "\"assignedToId\":102" : NULL) > 0);
    json_t *r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id", NULL, &st);
    CHECK_INT(st, 200);
    long long all = (long long)json_array_size(json_object_get(r, "values"));
    CHECK(all >= 27);
    CHECK(json_is_null(json_object_get(r, "nextPageToken")));

    r = req("GET",
            CS_TSANDBOX_V5 "/prospects?fields=id,email,updatedAt&limit=10&orderBy=updatedAt,id",
            NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 10);
    CHECK(iso_offset(sget(json_array_get(json_object_get(r, "values"), 0), "updatedAt")));
    long long seen = 10, pages = 1;
    int alt = 0;
    while (sget(r, "nextPageToken") && pages < 20) {
        char next[4096];
        /* alternately follow nextPageUrl as is, or send the token with fields only */
        if (alt++ % 2 == 0) {
            const char *url = sget(r, "nextPageUrl");
            CHECK(url && !strncmp(url, SB.url, strlen(SB.url)));
            snprintf(next, sizeof(next), "%s", url + strlen(SB.url));
        } else {
            snprintf(next, sizeof(next), CS_TSANDBOX_V5 "/prospects?nextPageToken=%s&fields=id",
                     sget(r, "nextPageToken"));
        }
        r = req("GET", next, NULL, &st);
        CHECK_INT(st, 200);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(r, "values"), i, v) seen += json_is_object(v);
        pages++;
    }
    CHECK_INT(seen, all);
    CHECK_INT(pages, (all + 9) / 10);

    char tok[4096];
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&limit=5", NULL, &st);
    snprintf(tok, sizeof(tok), "%s", sget(r, "nextPageToken"));
    r = req("GET", P(CS_TSANDBOX_V5 "/prospects?fields=id&limit=5&nextPageToken=%s", tok), NULL,
            &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 51);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&nextPageToken=garbage!", NULL, &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 211);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&limit=1001", NULL, &st);
    CHECK_INT(iget(r, "code"), 51);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&limit=0", NULL, &st);
    CHECK_INT(st, 400);
    r = req("GET", CS_TSANDBOX_V5 "/prospects", NULL, &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 13);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&colour=red", NULL, &st);
    CHECK_INT(iget(r, "code"), 51);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&orderBy=email", NULL, &st);
    CHECK_INT(iget(r, "code"), 51);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&updatedAtAfter=yesterday", NULL, &st);
    CHECK_INT(iget(r, "code"), 51);
    r = req("GET",
            CS_TSANDBOX_V5
            "/prospects?fields=id&idGreaterThan=1&updatedAtAfter=2000-01-01T00:00:00Z"
            "&createdAtAfter=2000-01-01T00:00:00Z&assignedToId=102",
            NULL, &st);
    CHECK_INT(iget(r, "code"), 209);

    /* filters */
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&assignedToId=102&limit=1000", NULL, &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 12);
    r = req("GET",
            P(CS_TSANDBOX_V5 "/prospects?fields=id&idGreaterThan=%lld&idLessThanOrEqualTo=%lld", P1,
              P1 + 3),
            NULL, &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 3);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id,email&email=Q3@PAGE.example", NULL, &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 1);
    r = req("GET",
            CS_TSANDBOX_V5
            "/prospects?fields=id&updatedAtAfterOrEqualTo=2000-01-01T00:00:00%2B05:00"
            "&updatedAtBefore=2999-01-01T00:00:00-04:00&limit=1000",
            NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT((long long)json_array_size(json_object_get(r, "values")), all);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&updatedAtAfter=2999-01-01T00:00:00Z", NULL,
            &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 0);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&orderBy=id%20DESC&limit=2", NULL, &st);
    json_t *vals = json_object_get(r, "values");
    CHECK(iget(json_array_get(vals, 0), "id") > iget(json_array_get(vals, 1), "id"));

    /* deleted prospects leave the default query */
    long long gone = create("gone@page.example", NULL);
    r = req("DELETE", P(CS_TSANDBOX_V5 "/prospects/%lld", gone), NULL, &st);
    CHECK_INT(st, 204);
    r = req("DELETE", P(CS_TSANDBOX_V5 "/prospects/%lld", gone), NULL, &st);
    CHECK_INT(st, 404);
    r = req("PATCH", P(CS_TSANDBOX_V5 "/prospects/%lld", gone), "{\"jobTitle\":\"x\"}", &st);
    CHECK_INT(iget(r, "code"), 219);
    r = req("GET", P(CS_TSANDBOX_V5 "/prospects?fields=id&id=%lld", gone), NULL, &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 0);
    r = req("GET", P(CS_TSANDBOX_V5 "/prospects?fields=id,isDeleted&id=%lld&deleted=true", gone),
            NULL, &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 1);
    CHECK(json_is_true(
        json_object_get(json_array_get(json_object_get(r, "values"), 0), "isDeleted")));
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&deleted=all&limit=1000", NULL, &st);
    CHECK_INT((long long)json_array_size(json_object_get(r, "values")), all + 1);
    r = req("GET", CS_TSANDBOX_V5 "/prospects?fields=id&deleted=maybe", NULL, &st);
    CHECK_INT(iget(r, "code"), 51);
}

static void test_activities(void)
{
    int st;
    static const char *kinds[] = {"form", "form_handler", "landing_page", "open",       "click",
                                  "view", "sent",         "visit",        "unsubscribe"};
    static const int types[] = {4, 4, 4, 11, 1, 2, 6, 20, 12};
    long long p = create("active@example.com", NULL);
    REQUIRE(p > 0);
    for (size_t i = 0; i < 9; i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"prospectId\":%lld,\"kind\":\"%s\"%s}", p, kinds[i],
                 i == 0 ? ",\"scoreDelta\":10,\"formId\":77" : "");
        json_t *r = cs_tsandbox_admin(&SB, "POST", "marketing/activity", body, &st);
        CHECK_INT(st, 201);
        CHECK_INT(iget(r, "type"), types[i]);
        json_decref(r);
    }
    json_t *r = cs_tsandbox_admin(&SB, "POST", "marketing/activity",
                                  "{\"prospectId\":1,\"kind\":\"form\"}", &st);
    CHECK_INT(st, 404);
    json_decref(r);
    r = cs_tsandbox_admin(&SB, "POST", "marketing/activity",
                          P("{\"prospectId\":%lld,\"type\":21,\"customRedirectId\":5}", p), &st);
    CHECK_INT(st, 201);
    json_decref(r);

    r = req("GET",
            P(CS_TSANDBOX_V5 "/visitor-activities?fields=id,type,typeName,formId,formHandlerId,"
                             "landingPageId,emailId,prospectId,createdAt,updatedAt&prospectId=%lld"
                             "&limit=1000",
              p),
            NULL, &st);
    CHECK_INT(st, 200);
    json_t *vals = json_object_get(r, "values");
    CHECK_INT(json_array_size(vals), 10);
    json_t *form = json_array_get(vals, 0), *fh = json_array_get(vals, 1),
           *lp = json_array_get(vals, 2);
    CHECK_INT(iget(form, "formId"), 77);
    CHECK(json_is_null(json_object_get(form, "formHandlerId")));
    CHECK(json_is_integer(json_object_get(fh, "formHandlerId")));
    CHECK(json_is_null(json_object_get(fh, "formId")));
    CHECK(json_is_integer(json_object_get(lp, "landingPageId")));
    CHECK(iso_offset(sget(form, "createdAt")));
    CHECK(sget(form, "typeName") != NULL);
    r = req("GET", P(CS_TSANDBOX_V5 "/visitor-activities?fields=id&prospectId=%lld&type=4", p),
            NULL, &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 3);
    r = req("GET", P(CS_TSANDBOX_V5 "/visitor-activities?fields=id&prospectId=%lld&limit=4", p),
            NULL, &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 4);
    CHECK(sget(r, "nextPageToken") != NULL);
    r = req("GET",
            CS_TSANDBOX_V5 "/visitor-activities?fields=id&createdAtAfter=2000-01-01T00:00:00Z"
                           "&updatedAtBeforeOrEqualTo=2999-01-01T00:00:00Z&idGreaterThan=0",
            NULL, &st);
    CHECK_INT(st, 200);
    long long act = iget(json_array_get(json_object_get(r, "values"), 0), "id");
    r = req("GET", P(CS_TSANDBOX_V5 "/visitor-activities/%lld?fields=id,type", act), NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "type"), 4);
    r = req("GET", CS_TSANDBOX_V5 "/visitor-activities?fields=id&deleted=true", NULL, &st);
    CHECK_INT(st, 400);
    /* the prospect: score from the form, opted out by the unsubscribe, last activity set */
    r = req("GET", P(CS_TSANDBOX_V5 "/prospects/%lld?fields=score,optedOut,lastActivityAt", p),
            NULL, &st);
    CHECK_INT(iget(r, "score"), 10);
    CHECK(json_is_true(json_object_get(r, "optedOut")));
    CHECK(iso_offset(sget(r, "lastActivityAt")));
}

/* The CRM integration user's id (client-credentials tokens act as it). */
static void integration_user(char id[19])
{
    int st;
    json_t *info = cs_tsandbox_admin(&SB, "GET", "info", NULL, &st);
    const char *v = sget(info, "integration_user_id");
    snprintf(id, 19, "%s", v ? v : "");
    json_decref(info);
    REQUIRE(strlen(id) == 18);
}

static void test_users(void)
{
    int st;
    char integ[19];
    integration_user(integ);
    json_t *r =
        req("GET", CS_TSANDBOX_V5 "/users?fields=id,email,role,salesforceId,firstName", NULL, &st);
    CHECK_INT(st, 200);
    json_t *vals = json_object_get(r, "values");
    /* marketing.users keep their ids; the integration user's marketing user comes after them */
    CHECK_INT(json_array_size(vals), 4);
    static const char *emails[] = {"sam@acme.example", "rita@acme.example", "mo@acme.example",
                                   "integration@crmsync.example"};
    int mapped = 0, unmapped = 0;
    size_t i;
    json_t *v;
    json_array_foreach(vals, i, v)
    {
        const char *sf = sget(v, "salesforceId");
        CHECK_INT(iget(v, "id"), 101 + (long long)i);
        CHECK_STR(sget(v, "email"), emails[i < 4 ? i : 0]);
        CHECK_STR(sget(v, "role"), i == 3 ? "Administrator" : "Sales");
        if (sf && !strncmp(sf, "005", 3) && strlen(sf) == 18)
            mapped++;
        else if (!sf)
            unmapped++;
    }
    CHECK_INT(mapped, 3);
    CHECK_INT(unmapped, 1);
    json_t *integ_user = json_array_get(vals, 3);
    CHECK_STR(sget(integ_user, "salesforceId"), integ);
    CHECK_STR(sget(integ_user, "firstName"), "Integration");
    r = req("GET", CS_TSANDBOX_V5 "/users/104?fields=id,email", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "email"), "integration@crmsync.example");
}

/* ---- authorship: createdById / updatedById ---- */

/* A password-grant token for username (URL-encoded): fills auth with "Authorization: Bearer
 * ..." and user with the CRM user id. */
static void password_token(const char *username, char *auth, size_t auth_size, char user[19])
{
    static const char *const form_hdr[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    char form[512];
    int st;
    snprintf(form, sizeof(form),
             "grant_type=password&client_id=" CS_TSANDBOX_CLIENT_ID
             "&client_secret=" CS_TSANDBOX_CLIENT_SECRET
             "&username=%s&password=" CS_TSANDBOX_PASSWORD,
             username);
    json_t *r = cs_tsandbox_call(&SB, "POST", "/services/oauth2/token", form_hdr, form, &st);
    REQUIRE(st == 200 && sget(r, "access_token") && sget(r, "id"));
    snprintf(auth, auth_size, "Authorization: Bearer %s", sget(r, "access_token"));
    snprintf(user, 19, "%s", strrchr(sget(r, "id"), '/') + 1);
    json_decref(r);
}

/* A v5 call with another user's token; the answer is borrowed until the next call. */
static json_t *as_user(const char *auth, const char *method, const char *path, const char *body,
                       int *status)
{
    static json_t *last;
    const char *const h[] = {auth, "Pardot-Business-Unit-Id: " CS_TSANDBOX_BU_ID,
                             "Content-Type: application/json", NULL};
    json_decref(last);
    last = cs_tsandbox_call(&SB, method, path, h, body, status);
    return last;
}

static void wait_next_second(void)
{
    sleep(1);
    usleep(100000);
}

static void test_authorship(void)
{
    int st;
    char integ[19];
    integration_user(integ);

    /* crmsync's own marketing user, found as the consumer finds it */
    json_t *r = req("GET", CS_TSANDBOX_V5 "/users?fields=id,salesforceId", NULL, &st);
    CHECK_INT(st, 200);
    long long me = 0;
    int n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "values"), i, v)
    {
        if (sget(v, "salesforceId") && !strcmp(sget(v, "salesforceId"), integ)) {
            me = iget(v, "id");
            n++;
        }
    }
    CHECK_INT(n, 1);
    CHECK_INT(me, 104);

    /* a create through the API with the client-credentials token sets both */
    r = req("POST", CS_TSANDBOX_V5 "/prospects?fields=id,createdById,updatedById",
            "{\"email\":\"author@example.com\",\"firstName\":\"Al\"}", &st);
    CHECK_INT(st, 201);
    long long p = iget(r, "id");
    CHECK_INT(iget(r, "createdById"), me);
    CHECK_INT(iget(r, "updatedById"), me);
    CHECK_INT(json_object_size(r), 3);
    /* filterable like assignedToId */
    r = req("GET",
            P(CS_TSANDBOX_V5 "/prospects?fields=id&id=%lld&createdById=%lld&updatedById=%lld", p,
              me, me),
            NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 1);
    r = req("GET", P(CS_TSANDBOX_V5 "/prospects?fields=id&id=%lld&updatedByIdLessThan=%lld", p, me),
            NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 0);
    /* read-only to writers */
    r = req("PATCH", P(CS_TSANDBOX_V5 "/prospects/%lld", p), "{\"updatedById\":101}", &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 154);
    r = req("POST", CS_TSANDBOX_V5 "/prospects", "{\"email\":\"ro@example.com\",\"createdById\":1}",
            &st);
    CHECK_INT(iget(r, "code"), 154);

    /* a marketer's edit through /sandbox names no user: updatedById null */
    wait_next_second();
    r = cs_tsandbox_admin(&SB, "POST", "marketing/edit",
                          P("{\"id\":%lld,\"fields\":{\"jobTitle\":\"VP\"}}", p), &st);
    CHECK_INT(st, 200);
    CHECK(json_is_null(json_object_get(r, "updatedById")));
    CHECK_INT(iget(r, "createdById"), me);
    CHECK_STR(sget(r, "jobTitle"), "VP");
    char t1[40];
    snprintf(t1, sizeof(t1), "%s", sget(r, "updatedAt") ? sget(r, "updatedAt") : "");
    json_decref(r);

    /* a PATCH that changes nothing leaves updatedById and updatedAt alone */
    wait_next_second();
    char path[256];
    snprintf(path, sizeof(path),
             CS_TSANDBOX_V5 "/prospects/%lld?fields=updatedById,updatedAt,createdById", p);
    r = req("PATCH", path, "{\"jobTitle\":\"VP\",\"firstName\":\"Al\"}", &st);
    CHECK_INT(st, 200);
    CHECK(json_is_null(json_object_get(r, "updatedById")));
    CHECK_STR(sget(r, "updatedAt"), t1);
    /* one that changes a value sets updatedById with updatedAt */
    r = req("PATCH", path, "{\"jobTitle\":\"CEO\"}", &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "updatedById"), me);
    CHECK(strcmp(sget(r, "updatedAt"), t1) != 0);
    CHECK_INT(iget(r, "createdById"), me);

    /* another CRM user's token acts as the marketing user linked to it (Sam: 101) */
    char sam_auth[600], sam[19];
    password_token("sam%40acme.example", sam_auth, sizeof(sam_auth), sam);
    r = req("GET", CS_TSANDBOX_V5 "/users/101?fields=salesforceId", NULL, &st);
    CHECK_STR(sget(r, "salesforceId"), sam);
    r = as_user(sam_auth, "POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
                "{\"matchEmail\":\"AUTHOR@example.com\",\"prospect\":{\"jobTitle\":\"CEO\"},"
                "\"fields\":[\"id\",\"updatedById\"]}",
                &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "id"), p);
    CHECK_INT(iget(r, "updatedById"), me); /* nothing changed */
    r = as_user(sam_auth, "POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
                "{\"matchEmail\":\"author@example.com\",\"prospect\":{\"phone\":\"1\"},"
                "\"fields\":[\"id\",\"updatedById\",\"createdById\"]}",
                &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "updatedById"), 101);
    CHECK_INT(iget(r, "createdById"), me);
    r = as_user(sam_auth, "POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
                "{\"matchEmail\":\"author2@example.com\",\"prospect\":{\"phone\":\"1\"},"
                "\"fields\":[\"id\",\"updatedById\",\"createdById\"]}",
                &st);
    CHECK_INT(st, 201);
    CHECK_INT(iget(r, "updatedById"), 101);
    CHECK_INT(iget(r, "createdById"), 101);
    /* upsertLatestByEmail with the integration token */
    r = req("POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
            "{\"matchEmail\":\"author2@example.com\",\"prospect\":{\"phone\":\"2\"},"
            "\"fields\":[\"updatedById\",\"createdById\"]}",
            &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "updatedById"), me);
    CHECK_INT(iget(r, "createdById"), 101);

    /* a CRM user with no marketing user (Ada): null */
    char ada_auth[600], ada[19];
    password_token("ada%40acme.example", ada_auth, sizeof(ada_auth), ada);
    r = as_user(ada_auth, "PATCH", path, "{\"phone\":\"2\"}", &st);
    CHECK_INT(st, 200);
    CHECK(json_is_null(json_object_get(r, "updatedById")));
    CHECK_INT(iget(r, "createdById"), me);
    r = as_user(ada_auth, "POST", CS_TSANDBOX_V5 "/prospects?fields=createdById,updatedById",
                "{\"email\":\"author3@example.com\"}", &st);
    CHECK_INT(st, 201);
    CHECK(json_is_null(json_object_get(r, "createdById")));
    CHECK(json_is_null(json_object_get(r, "updatedById")));

    /* a visitor's activity that changes the score is no user's change */
    r = req("PATCH", path, "{\"phone\":\"3\"}", &st);
    CHECK_INT(iget(r, "updatedById"), me);
    json_t *a =
        cs_tsandbox_admin(&SB, "POST", "marketing/activity",
                          P("{\"prospectId\":%lld,\"kind\":\"form\",\"scoreDelta\":5}", p), &st);
    CHECK_INT(st, 201);
    json_decref(a);
    r = req("GET", path, NULL, &st);
    CHECK(json_is_null(json_object_get(r, "updatedById")));

    /* a delete does not move updatedAt, so it leaves the author alone */
    r = req("PATCH", path, "{\"phone\":\"4\"}", &st);
    CHECK_INT(iget(r, "updatedById"), me);
    r = as_user(ada_auth, "DELETE", P(CS_TSANDBOX_V5 "/prospects/%lld", p), NULL, &st);
    CHECK_INT(st, 204);
    r = req("GET",
            P(CS_TSANDBOX_V5 "/prospects?fields=updatedById,isDeleted&deleted=true&id=%lld", p),
            NULL, &st);
    json_t *gone = json_array_get(json_object_get(r, "values"), 0);
    CHECK(json_is_true(json_object_get(gone, "isDeleted")));
    CHECK_INT(iget(gone, "updatedById"), me);
    /* restoring it through upsertLatestByEmail is a change by the caller */
    r = as_user(
        sam_auth, "POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
        "{\"matchEmail\":\"author@example.com\",\"prospect\":{},"
        "\"fields\":[\"id\",\"updatedById\",\"isDeleted\"],\"secondaryDeletedSearch\":true}",
        &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "id"), p);
    CHECK(json_is_false(json_object_get(r, "isDeleted")));
    CHECK_INT(iget(r, "updatedById"), 101);
}

/* ---- limits ---- */

typedef struct worker_s {
    int status, code;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    cs_tsandbox_client_t c;
    if (cs_tsandbox_client_init(&c, &SB) != 0)
        return NULL;
    json_t *r =
        cs_tsandbox_req(&c, "GET", CS_TSANDBOX_V5 "/prospects?fields=id&limit=1", NULL, &w->status);
    w->code = (int)iget(r, "code");
    cs_tsandbox_client_close(&c);
    return NULL;
}

static void test_limits(void)
{
    int st;
    const char *q = CS_TSANDBOX_V5 "/prospects?fields=id&limit=1";
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"marketing.burst_limit_errors\": 2}") == 0);
    json_t *r = req("GET", q, NULL, &st);
    CHECK_INT(iget(r, "code"), 66);
    CHECK_INT(C.res.err, CS_ERR_RATE_LIMIT);
    r = req("GET", q, NULL, &st);
    CHECK_INT(iget(r, "code"), 66);
    r = req("GET", q, NULL, &st);
    CHECK_INT(st, 200);

    REQUIRE(cs_tsandbox_knobs(&SB, "{\"marketing.daily_limit\": 1000, \"marketing.daily_used\": "
                                   "999}") == 0);
    r = req("GET", q, NULL, &st);
    CHECK_INT(st, 200);
    r = req("GET", q, NULL, &st);
    CHECK_INT(iget(r, "code"), 122);
    CHECK_INT(C.res.err, CS_ERR_RATE_LIMIT);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"marketing.daily_limit\": 100000}") == 0);

    /* x-api-usage on request */
    char token[512], auth[600];
    REQUIRE(cs_oauth_get_token(C.oauth, 0, token, sizeof(token)) == 0);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *const usage[] = {auth, "Pardot-Business-Unit-Id: " CS_TSANDBOX_BU_ID,
                                 "X-Return-Api-Usage: 1", NULL};
    char url[256], herr[256];
    cs_http_t *h = cs_http_new(NULL, herr, sizeof(herr));
    REQUIRE(h);
    snprintf(url, sizeof(url), "%s%s", SB.url, q);
    cs_http_result_t res;
    cs_http_request(h, "GET", url, usage, NULL, 0, &res);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.api_max, 100000);
    CHECK(res.api_used >= 1000);
    cs_http_destroy(h);

    /* more concurrent calls than allowed: code 66 for the excess */
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"marketing.latency_ms\": 400, "
                                   "\"marketing.concurrency_limit\": 1}") == 0);
    pthread_t th[6];
    worker_t w[6];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 6; i++)
        pthread_create(&th[i], NULL, worker, &w[i]);
    int ok = 0, limited = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].status == 200;
        limited += w[i].code == 66;
    }
    CHECK(ok >= 1);
    CHECK(limited >= 1);
    CHECK_INT(ok + limited, 6);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"marketing.latency_ms\": 0, \"marketing.concurrency_limit\": "
                                   "5, \"marketing.error_rate\": 1}") == 0);
    r = req("GET", q, NULL, &st);
    CHECK_INT(st, 503);
    CHECK_INT(C.res.err, CS_ERR_HTTP_5XX);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"marketing.error_rate\": 0}") == 0);
    r = req("GET", q, NULL, &st);
    CHECK_INT(st, 200);
}

/* duplicate e-mails allowed (AMPSEA) and connector fields read-only, in a second sandbox; it
 * also has the integration user among marketing.users (no second marketing user for it) and a
 * seed file (seeded prospects have no author) */
static void test_modes(void)
{
    cs_tsandbox_t sb2;
    cs_tsandbox_client_t c2;
    char err[256];
    int st;
    char seed[] = "/tmp/test_sandbox_marketing_seed_XXXXXX";
    int fd = mkstemp(seed);
    REQUIRE(fd >= 0);
    static const char seed_json[] = "{\"prospects\": [{\"email\": \"seeded@example.com\"}]}";
    REQUIRE(write(fd, seed_json, sizeof(seed_json) - 1) == (ssize_t)(sizeof(seed_json) - 1));
    close(fd);
    const char *args[] = {
        "--marketing.allow_duplicate_emails",
        "true",
        "--marketing.strict_readonly",
        "true",
        "--marketing.users",
        "Sam Sales <sam@acme.example>, Ian Integration <INTEGRATION@crmsync.example>",
        "--seed.file",
        seed,
        NULL};
    int started = cs_tsandbox_start(&sb2, args, err, sizeof(err));
    unlink(seed);
    REQUIRE(started == 0);
    REQUIRE(cs_tsandbox_client_init(&c2, &sb2) == 0);
    json_t *r = cs_tsandbox_req(&c2, "GET", CS_TSANDBOX_V5 "/users?fields=id,email,salesforceId",
                                NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 2);
    json_t *ian = json_array_get(json_object_get(r, "values"), 1);
    CHECK_INT(iget(ian, "id"), 102);
    CHECK(sget(ian, "salesforceId") && strlen(sget(ian, "salesforceId")) == 18);
    r = cs_tsandbox_req(
        &c2, "GET", CS_TSANDBOX_V5 "/prospects?fields=email,createdById,updatedById", NULL, &st);
    CHECK_INT(json_array_size(json_object_get(r, "values")), 1);
    json_t *seeded = json_array_get(json_object_get(r, "values"), 0);
    CHECK_STR(sget(seeded, "email"), "seeded@example.com");
    CHECK(json_is_null(json_object_get(seeded, "createdById")));
    CHECK(json_is_null(json_object_get(seeded, "updatedById")));
    r = cs_tsandbox_req(&c2, "POST", CS_TSANDBOX_V5 "/prospects?fields=id,createdById",
                        "{\"email\":\"twin@example.com\"}", &st);
    CHECK_INT(st, 201);
    CHECK_INT(iget(r, "createdById"), 102); /* the configured user linked to the token's user */
    long long a = iget(r, "id");
    r = cs_tsandbox_req(&c2, "POST", CS_TSANDBOX_V5 "/prospects?fields=id",
                        "{\"email\":\"TWIN@example.com\"}", &st);
    CHECK_INT(st, 201);
    long long b = iget(r, "id");
    CHECK(a != b);
    sleep(1);
    usleep(100000);
    r = cs_tsandbox_req(&c2, "PATCH", P(CS_TSANDBOX_V5 "/prospects/%lld", a),
                        "{\"firstName\":\"Newest\"}", &st);
    CHECK_INT(st, 200);
    /* upsertLatestByEmail picks the most recently updated twin */
    r = cs_tsandbox_req(&c2, "POST", CS_TSANDBOX_V5 "/prospects/do/upsertLatestByEmail",
                        "{\"matchEmail\":\"twin@example.com\",\"prospect\":{\"company\":\"X\"},"
                        "\"fields\":[\"id\"]}",
                        &st);
    CHECK_INT(st, 200);
    CHECK_INT(iget(r, "id"), a);
    r = cs_tsandbox_req(&c2, "PATCH", P(CS_TSANDBOX_V5 "/prospects/%lld", b),
                        "{\"salesforceId\":\"00Q5g000000AAAAEA4\"}", &st);
    CHECK_INT(st, 400);
    CHECK_INT(iget(r, "code"), 154);
    cs_tsandbox_client_close(&c2);
    CHECK_INT(cs_tsandbox_stop(&sb2), 0);
}

int main(void)
{
    char err[512];
    REQUIRE(cs_tsandbox_start(&SB, NULL, err, sizeof(err)) == 0);
    REQUIRE(cs_tsandbox_client_init(&C, &SB) == 0);
    test_headers();
    test_prospect_crud();
    test_upsert_latest();
    test_query_paging();
    test_activities();
    test_users();
    test_authorship();
    test_limits();
    test_modes();
    raw("GET", "/", NULL, &(int){0});
    cs_tsandbox_client_close(&C);
    CHECK_INT(cs_tsandbox_stop(&SB), 0);
    return cs_test_report();
}
