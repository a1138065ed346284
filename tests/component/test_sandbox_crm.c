/* Component test: the sandbox's CRM side (Salesforce REST v60.0 subset) through cs_http:
 * versions, describe, sObject Collections create / update / upsert / retrieve with their
 * per-record validation and allOrNone, single-record CRUD, user edits, Get Updated / Deleted,
 * limits header and the request-level errors. */
#include "cs_test.h"
#include "testutil_sandbox.h"

#include <stdarg.h>
#include <time.h>
#include <unistd.h>

static cs_tsandbox_t SB;
static cs_tsandbox_client_t C;
static char INTEGRATION[19], EDITOR[19], SAM[19];

/* Authenticated request; body is JSON text or NULL. Borrowed result. */
static json_t *req(const char *method, const char *path, const char *body, int *status)
{
    return cs_tsandbox_req(&C, method, path, body, status);
}

/* Same with a body built by json_pack (stolen). */
static json_t *reqj(const char *method, const char *path, json_t *body, int *status)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    json_t *r = req(method, path, text, status);
    free(text);
    return r;
}

static const char *path(const char *fmt, ...)
{
    static char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

static const char *sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The first error's code of a top-level error array. */
static const char *top_code(json_t *arr)
{
    return sget(json_array_get(arr, 0), "errorCode");
}

/* The first error's statusCode of result i. */
static const char *rec_code(json_t *results, size_t i)
{
    return sget(json_array_get(json_object_get(json_array_get(results, i), "errors"), 0),
                "statusCode");
}

static int rec_ok(json_t *results, size_t i)
{
    return json_is_true(json_object_get(json_array_get(results, i), "success"));
}

/* An 18-character id with the given prefix and a correct case-safe suffix. */
static int id_ok(const char *id, const char *prefix)
{
    static const char map[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    if (!id || strlen(id) != 18 || strncmp(id, prefix, 3) != 0)
        return 0;
    for (int i = 0; i < 3; i++) {
        int flags = 0;
        for (int j = 0; j < 5; j++)
            if (id[i * 5 + j] >= 'A' && id[i * 5 + j] <= 'Z')
                flags |= 1 << j;
        if (id[15 + i] != map[flags])
            return 0;
    }
    return 1;
}

static int sf_datetime(const char *s)
{
    int y, mo, d, h, mi, se, ms;
    char tz[8];
    return s && strlen(s) == 28 &&
           sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%5s", &y, &mo, &d, &h, &mi, &se, &ms, tz) == 8 &&
           !strcmp(tz, "+0000");
}

static json_t *lead(const char *last, const char *company, const char *email, const char *key)
{
    json_t *r = json_pack("{s:{s:s}}", "attributes", "type", "Lead");
    if (last)
        json_object_set_new(r, "LastName", json_string(last));
    if (company)
        json_object_set_new(r, "Company", json_string(company));
    if (email)
        json_object_set_new(r, "Email", json_string(email));
    if (key)
        json_object_set_new(r, "Crmsync_Prospect_Id__c", json_string(key));
    return r;
}

static json_t *collection(int all_or_none, json_t *records)
{
    return json_pack("{s:b, s:o}", "allOrNone", all_or_none, "records", records);
}

static long long count_of(const char *type)
{
    int st;
    json_t *r =
        req("GET", path(CS_TSANDBOX_DATA "/query?q=SELECT+COUNT()+FROM+%s", type), NULL, &st);
    return st == 200 ? json_integer_value(json_object_get(r, "totalSize")) : -1;
}

static void test_versions_and_describe(void)
{
    int st;
    json_t *r = req("GET", "/services/data/", NULL, &st);
    CHECK_INT(st, 200);
    int found = 0;
    size_t i;
    json_t *v;
    json_array_foreach(r, i, v)
    {
        if (!strcmp(sget(v, "version"), "60.0")) {
            found = 1;
            CHECK_STR(sget(v, "url"), "/services/data/v60.0");
        }
    }
    CHECK(found);
    CHECK_INT(C.res.api_used, -1); /* the versions root carries no limit header */

    r = req("GET", CS_TSANDBOX_DATA "/sobjects/Lead/describe", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "keyPrefix"), "00Q");
    CHECK(C.res.api_used >= 1);
    CHECK_INT(C.res.api_max, 100000);
    int formula = 0, ext = 0, last = 0;
    json_array_foreach(json_object_get(r, "fields"), i, v)
    {
        const char *n = sget(v, "name");
        if (!strcmp(n, "Email_Domain__c")) {
            formula = json_is_true(json_object_get(v, "calculated")) &&
                      !json_is_true(json_object_get(v, "createable")) &&
                      !json_is_true(json_object_get(v, "updateable")) &&
                      json_is_string(json_object_get(v, "calculatedFormula"));
        }
        if (!strcmp(n, "Crmsync_Prospect_Id__c"))
            ext = json_is_true(json_object_get(v, "externalId")) &&
                  json_is_true(json_object_get(v, "custom"));
        if (!strcmp(n, "LastName"))
            last = !json_is_true(json_object_get(v, "nillable")) &&
                   json_is_true(json_object_get(v, "createable"));
    }
    CHECK(formula);
    CHECK(ext);
    CHECK(last);
    r = req("GET", CS_TSANDBOX_DATA "/sobjects/Contact/describe", NULL, &st);
    CHECK_STR(sget(r, "keyPrefix"), "003");
    r = req("GET", CS_TSANDBOX_DATA "/sobjects/User/describe", NULL, &st);
    CHECK_STR(sget(r, "keyPrefix"), "005");
    r = req("GET", CS_TSANDBOX_DATA "/sobjects/Account/describe", NULL, &st);
    CHECK_INT(st, 404);
    CHECK_STR(top_code(r), "NOT_FOUND");
    r = req("GET", CS_TSANDBOX_DATA "/sobjects", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_array_size(json_object_get(r, "sobjects")), 3);
    r = req("GET", "/services/data/v20.0/sobjects", NULL, &st);
    CHECK_INT(st, 404);
    r = req("GET", CS_TSANDBOX_DATA "/nothing/here", NULL, &st);
    CHECK_INT(st, 404);
    CHECK_STR(top_code(r), "NOT_FOUND");
    r = req("GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "DailyApiRequests"), "Max")),
              100000);
}

static char L1[19], L2[19], L3[19], C1[19];

static void test_create(void)
{
    int st;
    json_t *c = json_pack("{s:{s:s}, s:s, s:s}", "attributes", "type", "Contact", "LastName",
                          "Smith", "Email", "j.smith@example.com");
    json_t *r =
        reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[o,o,o,o]", lead("Doe", "Acme", "JDoe@Acme.example", "P-1"),
                                     lead("Roe", "Initech", "roe@initech.example", "P-2"),
                                     lead("Poe", "Umbrella", NULL, NULL), c)),
             &st);
    CHECK_INT(st, 200);
    REQUIRE(json_array_size(r) == 4);
    for (size_t i = 0; i < 4; i++) {
        CHECK(rec_ok(r, i));
        CHECK_INT(json_array_size(json_object_get(json_array_get(r, i), "errors")), 0);
        CHECK(!json_object_get(json_array_get(r, i), "created"));
    }
    snprintf(L1, sizeof(L1), "%s", sget(json_array_get(r, 0), "id"));
    snprintf(L2, sizeof(L2), "%s", sget(json_array_get(r, 1), "id"));
    snprintf(L3, sizeof(L3), "%s", sget(json_array_get(r, 2), "id"));
    snprintf(C1, sizeof(C1), "%s", sget(json_array_get(r, 3), "id"));
    CHECK(id_ok(L1, "00Q"));
    CHECK(id_ok(L2, "00Q"));
    CHECK(id_ok(C1, "003"));
    CHECK(strcmp(L1, L2) != 0);

    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", L1), NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "Id"), L1);
    CHECK_STR(sget(r, "Name"), "Doe");
    CHECK_STR(sget(r, "Email_Domain__c"), "Acme.example");
    CHECK_STR(sget(r, "Status"), "Open - Not Contacted");
    CHECK_STR(sget(r, "OwnerId"), INTEGRATION);
    CHECK_STR(sget(r, "CreatedById"), INTEGRATION);
    CHECK_STR(sget(r, "LastModifiedById"), INTEGRATION);
    CHECK(sf_datetime(sget(r, "LastModifiedDate")));
    CHECK(sf_datetime(sget(r, "SystemModstamp")));
    CHECK(json_is_false(json_object_get(r, "HasOptedOutOfEmail")));
    CHECK_STR(sget(json_object_get(r, "attributes"), "type"), "Lead");
    CHECK_STR(sget(json_object_get(r, "attributes"), "url"),
              path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", L1));
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s?fields=Email,Company", L1), NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "Company"), "Acme");
    CHECK(!json_object_get(r, "LastName"));
    /* a 15-character id works too */
    char id15[16];
    snprintf(id15, sizeof(id15), "%.15s", L1);
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", id15), NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "Id"), L1);
}

static void test_create_validation(void)
{
    int st;
    long long before = count_of("Lead");
    json_t *formula = lead("F", "Co", NULL, NULL);
    json_object_set_new(formula, "Email_Domain__c", json_string("x.example"));
    json_t *owner_bad = lead("O", "Co", NULL, NULL);
    json_object_set_new(owner_bad, "OwnerId", json_string("not-an-id"));
    json_t *owner_missing = lead("O2", "Co", NULL, NULL);
    json_object_set_new(owner_missing, "OwnerId", json_string("005000000000000AAA"));
    json_t *owner_ok = lead("O3", "Co", NULL, NULL);
    json_object_set_new(owner_ok, "OwnerId", json_string(SAM));
    json_t *with_id = lead("I", "Co", NULL, NULL);
    json_object_set_new(with_id, "Id", json_string(L1));
    json_t *too_long = lead("T", "Co", NULL, NULL);
    char longname[100];
    memset(longname, 'x', 90);
    longname[90] = '\0';
    json_object_set_new(too_long, "LastName", json_string(longname));
    json_t *r = reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects",
                     collection(0, json_pack("[o,o,o,o,o,o,o,o,o,o,o]",
                                             lead(NULL, NULL, "a@x.example", NULL),   /* 0 */
                                             lead("Bad", "Co", "not-an-email", NULL), /* 1 */
                                             formula,                                 /* 2 */
                                             lead("Dup", "Co", NULL, "p-1"),          /* 3 */
                                             lead("New", "Co", NULL, "P-50"),         /* 4 */
                                             lead("New2", "Co", NULL, "P-50"),        /* 5 */
                                             owner_bad,                               /* 6 */
                                             owner_missing,                           /* 7 */
                                             owner_ok,                                /* 8 */
                                             with_id,                                 /* 9 */
                                             too_long)),                              /* 10 */
                     &st);
    CHECK_INT(st, 200);
    REQUIRE(json_array_size(r) == 11);
    CHECK_STR(rec_code(r, 0), "REQUIRED_FIELD_MISSING");
    json_t *e0 = json_array_get(json_object_get(json_array_get(r, 0), "errors"), 0);
    CHECK_STR(sget(e0, "message"), "Required fields are missing: [LastName, Company]");
    CHECK_INT(json_array_size(json_object_get(e0, "fields")), 2);
    CHECK(!json_object_get(json_array_get(r, 0), "id")); /* failed creates carry no id */
    CHECK_STR(rec_code(r, 1), "INVALID_EMAIL_ADDRESS");
    CHECK_STR(json_string_value(json_array_get(
                  json_object_get(
                      json_array_get(json_object_get(json_array_get(r, 1), "errors"), 0), "fields"),
                  0)),
              "Email");
    CHECK_STR(rec_code(r, 2), "INVALID_FIELD_FOR_INSERT_UPDATE");
    CHECK_STR(rec_code(r, 3), "DUPLICATE_VALUE"); /* external ids are case-insensitive */
    CHECK(rec_ok(r, 4));
    CHECK_STR(rec_code(r, 5), "DUPLICATE_VALUE"); /* taken earlier in the same request */
    CHECK_STR(rec_code(r, 6), "MALFORMED_ID");
    CHECK_STR(rec_code(r, 7), "INVALID_CROSS_REFERENCE_KEY");
    CHECK(rec_ok(r, 8));
    CHECK_STR(rec_code(r, 9), "INVALID_FIELD");
    CHECK_STR(rec_code(r, 10), "STRING_TOO_LONG");
    char owned[19];
    snprintf(owned, sizeof(owned), "%s", sget(json_array_get(r, 8), "id"));
    CHECK_INT(count_of("Lead"), before + 2);
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s?fields=OwnerId", owned), NULL, &st);
    CHECK_STR(sget(r, "OwnerId"), SAM);
}

static void test_all_or_none_create(void)
{
    int st;
    long long before = count_of("Lead");
    json_t *r = reqj(
        "POST", CS_TSANDBOX_DATA "/composite/sobjects",
        collection(1, json_pack("[o,o,o]", lead("A", "Co", NULL, "AON-1"),
                                lead("B", NULL, NULL, "AON-2"), lead("C", "Co", NULL, "AON-3"))),
        &st);
    CHECK_INT(st, 200);
    REQUIRE(json_array_size(r) == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK(!rec_ok(r, i));
        CHECK(!json_object_get(json_array_get(r, i), "id"));
    }
    CHECK_STR(rec_code(r, 0), "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    CHECK_STR(rec_code(r, 1), "REQUIRED_FIELD_MISSING");
    CHECK_STR(rec_code(r, 2), "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    CHECK_INT(count_of("Lead"), before);
    r = req("GET", CS_TSANDBOX_DATA "/sobjects/Lead/Crmsync_Prospect_Id__c/AON-1", NULL, &st);
    CHECK_INT(st, 404);
}

static void test_request_errors(void)
{
    int st;
    long long before = count_of("Lead");
    json_t *recs = json_array();
    for (int i = 0; i < 201; i++)
        json_array_append_new(recs, lead("Many", "Co", NULL, NULL));
    json_t *r = reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects", collection(0, recs), &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "EXCEEDED_ID_LIMIT");
    CHECK_INT(count_of("Lead"), before);

    r = req("POST", CS_TSANDBOX_DATA "/composite/sobjects", "{\"records\": [", &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "JSON_PARSER_ERROR");
    r = req("POST", CS_TSANDBOX_DATA "/composite/sobjects", "{\"allOrNone\": false}", &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "JSON_PARSER_ERROR");
    r = req("POST", CS_TSANDBOX_DATA "/composite/sobjects", "[1,2]", &st);
    CHECK_INT(st, 400);

    /* an unknown field or type rejects the whole request: nothing written */
    json_t *unknown = lead("U", "Co", NULL, NULL);
    json_object_set_new(unknown, "Shoe_Size__c", json_integer(42));
    r = reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[o,o]", lead("Fine", "Co", NULL, NULL), unknown)), &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "INVALID_FIELD");
    r = reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[o,{s:{s:s},s:s}]", lead("Fine", "Co", NULL, NULL),
                                     "attributes", "type", "Opportunity", "Name", "x")),
             &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "INVALID_TYPE");
    r = reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[{s:s}]", "LastName", "NoType")), &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "INVALID_TYPE");
    r = reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[{s:{s:s}, s:s, s:{}}]", "attributes", "type", "Lead",
                                     "LastName", "x", "Company")),
             &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "JSON_PARSER_ERROR");
    CHECK_INT(count_of("Lead"), before);

    r = reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[{s:{s:s}, s:s, s:s}]", "attributes", "type", "User",
                                     "LastName", "x", "Email", "u@x.example")),
             &st);
    CHECK_INT(st, 200);
    CHECK_STR(rec_code(r, 0), "INVALID_TYPE_FOR_OPERATION");

    r = req("PUT", CS_TSANDBOX_DATA "/composite/sobjects", "{}", &st);
    CHECK_INT(st, 405);
    CHECK_STR(top_code(r), "METHOD_NOT_ALLOWED");
}

static void test_update(void)
{
    int st;
    json_t *r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", L1), NULL, &st);
    char before_mod[40];
    snprintf(before_mod, sizeof(before_mod), "%s", sget(r, "LastModifiedDate"));
    sleep(1); /* timestamps have second precision, as in Salesforce */
    usleep(100000);
    r = reqj("PATCH", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[{s:{s:s},s:s,s:s},{s:{s:s},s:s,s:b},{s:{s:s},s:s,s:s},"
                                     "{s:{s:s},s:s,s:s},{s:{s:s},s:s,s:s},{s:{s:s},s:s}]",
                                     "attributes", "type", "Lead", "id", L1, "Title", "CTO",
                                     "attributes", "type", "Lead", "Id", L2, "HasOptedOutOfEmail",
                                     1, "attributes", "type", "Lead", "Id", "001xx000003DGb2999",
                                     "Title", "x", "attributes", "type", "Lead", "Id", C1, "Title",
                                     "x", "attributes", "type", "Lead", "Id", "00Q5g000000AAAAEA4",
                                     "Title", "x", "attributes", "type", "Lead", "Title", "no id")),
             &st);
    CHECK_INT(st, 200);
    REQUIRE(json_array_size(r) == 6);
    CHECK(rec_ok(r, 0));
    CHECK_STR(sget(json_array_get(r, 0), "id"), L1);
    CHECK(rec_ok(r, 1));
    CHECK_STR(rec_code(r, 2), "MALFORMED_ID");
    CHECK_STR(rec_code(r, 3), "MALFORMED_ID"); /* a Contact id in a Lead record */
    CHECK_STR(rec_code(r, 4), "INVALID_CROSS_REFERENCE_KEY");
    CHECK_STR(rec_code(r, 5), "MISSING_ARGUMENT");
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", L1), NULL, &st);
    CHECK_STR(sget(r, "Title"), "CTO");
    CHECK(strcmp(sget(r, "LastModifiedDate"), before_mod) > 0);
    CHECK(strcmp(sget(r, "SystemModstamp"), before_mod) > 0);
    CHECK_STR(sget(r, "LastModifiedById"), INTEGRATION);
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", L2), NULL, &st);
    CHECK(json_is_true(json_object_get(r, "HasOptedOutOfEmail")));

    /* clearing a required field, writing a read-only one */
    r = reqj("PATCH", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[{s:{s:s},s:s,s:n},{s:{s:s},s:s,s:s},{s:{s:s},s:s,s:s}]",
                                     "attributes", "type", "Lead", "Id", L1, "Company",
                                     "attributes", "type", "Lead", "Id", L1, "CreatedById", SAM,
                                     "attributes", "type", "Lead", "Id", L2, "Email", "still@bad")),
             &st);
    CHECK_STR(rec_code(r, 0), "REQUIRED_FIELD_MISSING");
    CHECK_STR(sget(json_array_get(r, 0), "id"), L1);
    CHECK_STR(rec_code(r, 1), "INVALID_FIELD_FOR_INSERT_UPDATE");
    CHECK_STR(rec_code(r, 2), "INVALID_EMAIL_ADDRESS");

    /* the same record twice */
    r = reqj("PATCH", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(0, json_pack("[{s:{s:s},s:s,s:s},{s:{s:s},s:s,s:s}]", "attributes", "type",
                                     "Lead", "Id", L3, "Title", "a", "attributes", "type", "Lead",
                                     "Id", L3, "Title", "b")),
             &st);
    CHECK(rec_ok(r, 0));
    CHECK_STR(rec_code(r, 1), "DUPLICATE_VALUE");

    /* allOrNone: the good record keeps its id, is rolled back */
    r = reqj("PATCH", CS_TSANDBOX_DATA "/composite/sobjects",
             collection(1, json_pack("[{s:{s:s},s:s,s:s},{s:{s:s},s:s,s:s}]", "attributes", "type",
                                     "Lead", "Id", L1, "Title", "Rolled back", "attributes", "type",
                                     "Lead", "Id", L2, "Email", "bad")),
             &st);
    CHECK_INT(st, 200);
    CHECK(!rec_ok(r, 0));
    CHECK_STR(sget(json_array_get(r, 0), "id"), L1);
    CHECK_STR(rec_code(r, 0), "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    CHECK_STR(rec_code(r, 1), "INVALID_EMAIL_ADDRESS");
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s?fields=Title", L1), NULL, &st);
    CHECK_STR(sget(r, "Title"), "CTO");
}

static void test_upsert(void)
{
    int st;
    json_t *r = reqj("PATCH", CS_TSANDBOX_DATA "/composite/sobjects/Lead/Crmsync_Prospect_Id__c",
                     collection(0, json_pack("[o,o,o,o]", lead("Doe", "Acme", NULL, "P-1"),
                                             lead("New", "NewCo", NULL, "P-100"),
                                             lead("Nokey", "Co", NULL, NULL),
                                             lead("Again", "Co", NULL, "P-100"))),
                     &st);
    CHECK_INT(st, 200);
    REQUIRE(json_array_size(r) == 4);
    CHECK(rec_ok(r, 0));
    CHECK_STR(sget(json_array_get(r, 0), "id"), L1);
    CHECK(json_is_false(json_object_get(json_array_get(r, 0), "created")));
    CHECK(rec_ok(r, 1));
    CHECK(json_is_true(json_object_get(json_array_get(r, 1), "created")));
    CHECK(id_ok(sget(json_array_get(r, 1), "id"), "00Q"));
    CHECK_STR(rec_code(r, 2), "MISSING_ARGUMENT");
    CHECK_STR(rec_code(r, 3), "DUPLICATE_EXTERNAL_ID");
    r = req("GET", CS_TSANDBOX_DATA "/sobjects/Lead/Crmsync_Prospect_Id__c/p-100", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(r, "Company"), "NewCo");

    r = reqj("PATCH", CS_TSANDBOX_DATA "/composite/sobjects/Lead/Email",
             collection(0, json_pack("[o]", lead("X", "Co", "x@x.example", NULL))), &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "INVALID_FIELD");
    r = reqj("PATCH", CS_TSANDBOX_DATA "/composite/sobjects/Lead/Crmsync_Prospect_Id__c",
             collection(0, json_pack("[{s:{s:s},s:s,s:s}]", "attributes", "type", "Contact",
                                     "LastName", "x", "Crmsync_Prospect_Id__c", "C-1")),
             &st);
    CHECK_INT(st, 400);

    /* single-record upsert by external id: 201 created, then 200 */
    r = req("PATCH", CS_TSANDBOX_DATA "/sobjects/Contact/Crmsync_Prospect_Id__c/P-7",
            "{\"LastName\":\"Seven\",\"Email\":\"seven@example.com\"}", &st);
    CHECK_INT(st, 201);
    CHECK(json_is_true(json_object_get(r, "created")));
    CHECK(id_ok(sget(r, "id"), "003"));
    r = req("PATCH", CS_TSANDBOX_DATA "/sobjects/Contact/Crmsync_Prospect_Id__c/P-7",
            "{\"Title\":\"Boss\"}", &st);
    CHECK_INT(st, 200);
    CHECK(json_is_false(json_object_get(r, "created")));
    r = req("PATCH", CS_TSANDBOX_DATA "/sobjects/Contact/NoSuchField__c/P-7", "{}", &st);
    CHECK_INT(st, 404);
}

static void test_retrieve(void)
{
    int st;
    json_t *r = req("GET",
                    path(CS_TSANDBOX_DATA "/composite/sobjects/Lead?ids=%s,%s,bogus,%s"
                                          "&fields=Id,Email,Name",
                         L1, L2, C1),
                    NULL, &st);
    CHECK_INT(st, 200);
    REQUIRE(json_array_size(r) == 4);
    CHECK_STR(sget(json_array_get(r, 0), "Id"), L1);
    CHECK_STR(sget(json_array_get(r, 1), "Email"), "roe@initech.example");
    CHECK(json_is_null(json_array_get(r, 2)));
    CHECK(json_is_null(json_array_get(r, 3))); /* a Contact id asked as a Lead */
    CHECK(!json_object_get(json_array_get(r, 0), "Company"));
    r = req("GET", path(CS_TSANDBOX_DATA "/composite/sobjects/Lead?ids=%s", L1), NULL, &st);
    CHECK_INT(st, 400);
    r = req("GET", path(CS_TSANDBOX_DATA "/composite/sobjects/Lead?ids=%s&fields=Id,Nope", L1),
            NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "INVALID_FIELD");
    r = reqj("POST", CS_TSANDBOX_DATA "/composite/sobjects/Lead",
             json_pack("{s:[s,s], s:[s]}", "ids", L1, L2, "fields", "Company"), &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(json_array_get(r, 1), "Company"), "Initech");
}

static void test_single_record(void)
{
    int st;
    json_t *r = req("POST", CS_TSANDBOX_DATA "/sobjects/Lead/",
                    "{\"LastName\":\"Single\",\"Company\":\"One\"}", &st);
    CHECK_INT(st, 201);
    CHECK(json_is_true(json_object_get(r, "success")));
    char id[19];
    snprintf(id, sizeof(id), "%s", sget(r, "id"));
    CHECK(id_ok(id, "00Q"));
    r = req("POST", CS_TSANDBOX_DATA "/sobjects/Lead", "{\"LastName\":\"NoCompany\"}", &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "REQUIRED_FIELD_MISSING");
    CHECK_STR(json_string_value(json_array_get(json_object_get(json_array_get(r, 0), "fields"), 0)),
              "Company");
    r = req("PATCH", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", id), "{\"Phone\":\"555\"}", &st);
    CHECK_INT(st, 204);
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", id), NULL, &st);
    CHECK_STR(sget(r, "Phone"), "555");
    r = req("PATCH", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", id), "{\"Email\":\"nope\"}", &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "INVALID_EMAIL_ADDRESS");
    r = req("PATCH", CS_TSANDBOX_DATA "/sobjects/Lead/00Q5g000000AAAAEA4", "{\"Phone\":\"1\"}",
            &st);
    CHECK_INT(st, 404);
    r = req("GET", CS_TSANDBOX_DATA "/sobjects/Lead/garbage", NULL, &st);
    CHECK_INT(st, 404);
    CHECK_STR(top_code(r), "NOT_FOUND");
    r = req("DELETE", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", id), NULL, &st);
    CHECK_INT(st, 204);
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", id), NULL, &st);
    CHECK_INT(st, 404);
    CHECK_STR(top_code(r), "ENTITY_IS_DELETED");
    r = req("DELETE", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", id), NULL, &st);
    CHECK_INT(st, 404);
    r = req("PATCH", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", id), "{\"Phone\":\"1\"}", &st);
    CHECK_INT(st, 404);
    r = req("POST", CS_TSANDBOX_DATA "/sobjects/Lead", "not json", &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "JSON_PARSER_ERROR");
    r = req("GET", CS_TSANDBOX_DATA "/sobjects/Lead", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(sget(json_object_get(r, "objectDescribe"), "name"), "Lead");
}

static void test_user_edits(void)
{
    int st;
    json_t *r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", L3), NULL, &st);
    char mod[40], stamp[40];
    snprintf(mod, sizeof(mod), "%s", sget(r, "LastModifiedDate"));
    snprintf(stamp, sizeof(stamp), "%s", sget(r, "SystemModstamp"));
    sleep(1);
    usleep(100000);
    char body[256];
    snprintf(body, sizeof(body), "{\"type\":\"Lead\",\"id\":\"%s\",\"fields\":{\"Title\":\"VP\"}}",
             L3);
    r = cs_tsandbox_admin(&SB, "POST", "crm/edit", body, &st);
    CHECK_INT(st, 200);
    CHECK(json_is_true(json_object_get(r, "success")));
    json_decref(r);
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", L3), NULL, &st);
    CHECK_STR(sget(r, "Title"), "VP");
    CHECK_STR(sget(r, "LastModifiedById"), EDITOR);
    CHECK(strcmp(EDITOR, INTEGRATION) != 0);
    CHECK(strcmp(sget(r, "LastModifiedDate"), mod) > 0);
    snprintf(mod, sizeof(mod), "%s", sget(r, "LastModifiedDate"));
    sleep(1);
    usleep(100000);
    /* an automated change moves SystemModstamp only */
    snprintf(body, sizeof(body),
             "{\"type\":\"Lead\",\"id\":\"%s\",\"fields\":{\"Title\":\"SVP\"},\"system\":true}",
             L3);
    r = cs_tsandbox_admin(&SB, "POST", "crm/edit", body, &st);
    CHECK_INT(st, 200);
    json_decref(r);
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/%s", L3), NULL, &st);
    CHECK_STR(sget(r, "LastModifiedDate"), mod);
    CHECK(strcmp(sget(r, "SystemModstamp"), mod) > 0);
    CHECK_STR(sget(r, "LastModifiedById"), EDITOR);
    /* a user edit as someone else, creating a record */
    r = cs_tsandbox_admin(&SB, "POST", "crm/edit",
                          "{\"type\":\"Contact\",\"user\":\"sam@acme.example\",\"fields\":"
                          "{\"LastName\":\"ByHand\"}}",
                          &st);
    CHECK_INT(st, 200);
    char cid[19];
    snprintf(cid, sizeof(cid), "%s", sget(r, "id"));
    json_decref(r);
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Contact/%s", cid), NULL, &st);
    CHECK_STR(sget(r, "CreatedById"), SAM);
    CHECK_STR(sget(r, "OwnerId"), SAM);
}

static void test_replication(void)
{
    int st;
    /* delete one contact, then look from "two minutes later" so the current minute is covered */
    json_t *r = req("DELETE", path(CS_TSANDBOX_DATA "/sobjects/Contact/%s", C1), NULL, &st);
    CHECK_INT(st, 204);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.clock_skew_ms\": 120000}") == 0);
    r = req("GET",
            CS_TSANDBOX_DATA "/sobjects/Lead/updated/?start=2000-01-01T00:00:00Z&end="
                             "2100-01-01T00:00:00Z",
            NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "INVALID_REPLICATION_DATE");
    /* a window around now: [now - 10 min, now + 10 min] in the CRM clock */
    time_t now = time(NULL);
    char start[32], end[32];
    time_t s = now - 600, e = now + 600;
    strftime(start, sizeof(start), "%Y-%m-%dT%H:%M:%S%%2B00:00", gmtime(&s));
    strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", gmtime(&e));
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/updated/?start=%s&end=%s", start, end),
            NULL, &st);
    CHECK_INT(st, 200);
    int has1 = 0, has2 = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "ids"), i, v)
    {
        has1 |= !strcmp(json_string_value(v), L1);
        has2 |= !strcmp(json_string_value(v), L2);
    }
    CHECK(has1 && has2);
    CHECK(sf_datetime(sget(r, "latestDateCovered")));
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Contact/deleted/?start=%s&end=%s", start, end),
            NULL, &st);
    CHECK_INT(st, 200);
    json_t *d = json_array_get(json_object_get(r, "deletedRecords"), 0);
    CHECK_STR(sget(d, "id"), C1);
    CHECK(sf_datetime(sget(d, "deletedDate")));
    CHECK(sf_datetime(sget(r, "earliestDateAvailable")));
    CHECK(sf_datetime(sget(r, "latestDateCovered")));
    r = req("GET", path(CS_TSANDBOX_DATA "/sobjects/Lead/updated/?start=%s&end=%s", end, start),
            NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(top_code(r), "INVALID_REPLICATION_DATE");
    r = req("GET", CS_TSANDBOX_DATA "/sobjects/Lead/updated/?start=yesterday&end=today", NULL, &st);
    CHECK_INT(st, 400);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"crm.clock_skew_ms\": 0}") == 0);
}

static void lookup_users(void)
{
    int st;
    json_t *r = cs_tsandbox_admin(&SB, "GET", "info", NULL, &st);
    REQUIRE(st == 200);
    snprintf(INTEGRATION, sizeof(INTEGRATION), "%s", sget(r, "integration_user_id"));
    snprintf(EDITOR, sizeof(EDITOR), "%s", sget(r, "editor_user_id"));
    json_decref(r);
    r = req("GET",
            CS_TSANDBOX_DATA "/query?q=SELECT+Id,Email+FROM+User+WHERE+Email='SAM@acme.example'",
            NULL, &st);
    REQUIRE(st == 200 && json_array_size(json_object_get(r, "records")) == 1);
    snprintf(SAM, sizeof(SAM), "%s", sget(json_array_get(json_object_get(r, "records"), 0), "Id"));
    CHECK(id_ok(INTEGRATION, "005"));
    CHECK(id_ok(SAM, "005"));
}

int main(void)
{
    char err[512];
    REQUIRE(cs_tsandbox_start(&SB, NULL, err, sizeof(err)) == 0);
    REQUIRE(cs_tsandbox_client_init(&C, &SB) == 0);
    lookup_users();
    test_versions_and_describe();
    test_create();
    test_create_validation();
    test_all_or_none_create();
    test_request_errors();
    test_update();
    test_upsert();
    test_retrieve();
    test_single_record();
    test_user_edits();
    test_replication();
    cs_tsandbox_client_close(&C);
    CHECK_INT(cs_tsandbox_stop(&SB), 0);
    return cs_test_report();
}
