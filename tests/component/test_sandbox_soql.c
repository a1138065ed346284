/* Component test: SOQL against the sandbox through cs_http: the WHERE forms the connector uses
 * (Email IN, Id IN, date-time ranges, case-insensitive =), ORDER BY, LIMIT, COUNT(), query
 * locator paging with Sforce-Query-Options, the 400 errors, and a mutation fuzz: thousands of
 * broken queries must each get a 200 or a 400 (never a crash or a 5xx). */
#include "cs_test.h"
#include "testutil_sandbox.h"

#include <stdarg.h>

static cs_tsandbox_t SB;
static cs_tsandbox_client_t C;
static char IDS[250][19];

static const char *sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* GET /query?q=<escaped soql> with optional extra header lines; borrowed result. */
static json_t *query_h(const char *soql, const char *const *headers, int *status)
{
    char *q = cs_http_escape(soql, strlen(soql), 0);
    size_t n = strlen(q) + strlen(SB.url) + 64;
    char *url = malloc(n);
    REQUIRE(q && url);
    snprintf(url, n, "%s" CS_TSANDBOX_DATA "/query?q=%s", SB.url, q);
    cs_http_request(C.http, "GET", url, headers, NULL, 0, &C.res);
    free(q);
    free(url);
    *status = C.res.status;
    return cs_http_result_json(&C.res);
}

static json_t *query(const char *soql, int *status)
{
    return query_h(soql, NULL, status);
}

static long long total(const char *soql)
{
    int st;
    json_t *r = query(soql, &st);
    if (st != 200) {
        fprintf(stderr, "query failed (%d): %s\n", st, C.res.body);
        return -1;
    }
    return json_integer_value(json_object_get(r, "totalSize"));
}

static const char *code(json_t *r)
{
    return sget(json_array_get(r, 0), "errorCode");
}

static void seed(void)
{
    int st;
    for (int base = 0; base < 250; base += 125) {
        json_t *recs = json_array();
        for (int i = base; i < base + 125; i++) {
            char email[64], company[16];
            snprintf(email, sizeof(email), "lead%d@q.example", i);
            snprintf(company, sizeof(company), "Co%d", i % 5);
            json_t *r = json_pack("{s:{s:s}, s:s, s:s, s:s}", "attributes", "type", "Lead",
                                  "LastName", "L", "Company", company, "Email", email);
            if (i % 2)
                json_object_set_new(r, "FirstName", json_string("Odd"));
            json_array_append_new(recs, r);
        }
        json_t *body = json_pack("{s:b, s:o}", "allOrNone", 1, "records", recs);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        json_t *res =
            cs_tsandbox_req(&C, "POST", CS_TSANDBOX_DATA "/composite/sobjects", text, &st);
        free(text);
        REQUIRE(st == 200 && json_array_size(res) == 125);
        for (int i = 0; i < 125; i++)
            snprintf(IDS[base + i], 19, "%s", sget(json_array_get(res, (size_t)i), "id"));
    }
    json_t *res =
        cs_tsandbox_req(&C, "POST", CS_TSANDBOX_DATA "/composite/sobjects",
                        "{\"records\":[{\"attributes\":{\"type\":\"Contact\"},\"LastName\":\"C\","
                        "\"Email\":\"lead1@q.example\"}]}",
                        &st);
    REQUIRE(st == 200 && json_is_true(json_object_get(json_array_get(res, 0), "success")));
}

static void test_where(void)
{
    int st;
    json_t *r = query("SELECT Id, Email FROM Lead WHERE Email IN ('LEAD1@q.example', "
                      "'lead2@q.example', 'nobody@x.example', 'lead2@Q.example')",
                      &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_integer_value(json_object_get(r, "totalSize")), 2);
    CHECK(json_is_true(json_object_get(r, "done")));
    CHECK(!json_object_get(r, "nextRecordsUrl"));
    json_t *rec = json_array_get(json_object_get(r, "records"), 0);
    CHECK_STR(sget(json_object_get(rec, "attributes"), "type"), "Lead");
    CHECK(sget(json_object_get(rec, "attributes"), "url") != NULL);
    CHECK_STR(sget(rec, "Email"), "lead1@q.example");
    CHECK_INT(json_object_size(rec), 3); /* attributes, Id, Email */

    CHECK_INT(total("SELECT Id FROM Lead WHERE Email = 'LEAD3@Q.EXAMPLE'"), 1);
    CHECK_INT(total("SELECT Id FROM Contact WHERE Email = 'lead1@q.example'"), 1);
    char q[512], id15[16];
    snprintf(id15, sizeof(id15), "%.15s", IDS[7]);
    snprintf(q, sizeof(q), "SELECT Id FROM Lead WHERE Id IN ('%s', '%s', '%s')", IDS[5], id15,
             IDS[5]);
    CHECK_INT(total(q), 2);
    snprintf(q, sizeof(q), "SELECT Id FROM Lead WHERE Id = '%s'", IDS[9]);
    CHECK_INT(total(q), 1);
    CHECK_INT(total("SELECT Id FROM Lead WHERE Company = 'co1'"), 50);
    CHECK_INT(total("SELECT Id FROM Lead WHERE Company != 'CO1'"), 200);
    CHECK_INT(total("SELECT Id FROM Lead WHERE SystemModstamp > 2000-01-01T00:00:00Z"), 250);
    CHECK_INT(total("SELECT Id FROM Lead WHERE LastModifiedDate >= 2000-01-01T00:00:00+00:00"),
              250);
    CHECK_INT(total("SELECT Id FROM Lead WHERE SystemModstamp > 2000-01-01T00:00:00.000-0500 AND "
                    "Company = 'Co2'"),
              50);
    CHECK_INT(total("SELECT Id FROM Lead WHERE SystemModstamp >= 2999-01-01T00:00:00Z"), 0);
    CHECK_INT(total("SELECT Id FROM Lead WHERE CreatedDate < 2000-01-01T00:00:00Z"), 0);
    CHECK_INT(total("SELECT Id FROM Lead WHERE (Email = 'lead1@q.example' OR Email = "
                    "'lead2@q.example') AND NOT Company = 'Co1'"),
              1);
    CHECK_INT(total("SELECT Id FROM Lead WHERE Email LIKE 'LEAD1%'"), 111);
    CHECK_INT(total("SELECT Id FROM Lead WHERE Email LIKE '%@q.example' AND FirstName = null"),
              125);
    CHECK_INT(total("SELECT Id FROM Lead WHERE FirstName != null"), 125);
    CHECK_INT(total("SELECT Id FROM Lead WHERE HasOptedOutOfEmail = false"), 250);
    CHECK_INT(total("SELECT Id FROM Lead WHERE Email NOT IN ('lead1@q.example')"), 249);
    CHECK_INT(total("select id from lead where email in ('lead4@q.example')"), 1);
    CHECK_INT(total("SELECT Id, Email_Domain__c FROM Lead WHERE Email_Domain__c = 'q.example'"),
              250);
}

static void test_order_limit_count(void)
{
    int st;
    json_t *r = query("SELECT Email FROM Lead ORDER BY Email DESC LIMIT 3", &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_integer_value(json_object_get(r, "totalSize")), 3);
    CHECK_STR(sget(json_array_get(json_object_get(r, "records"), 0), "Email"), "lead9@q.example");
    r = query("SELECT Email, Company FROM Lead ORDER BY Company ASC, Email LIMIT 2", &st);
    CHECK_STR(sget(json_array_get(json_object_get(r, "records"), 0), "Email"), "lead0@q.example");
    CHECK_STR(sget(json_array_get(json_object_get(r, "records"), 1), "Email"), "lead100@q.example");
    r = query("SELECT Id FROM Lead ORDER BY SystemModstamp, Id LIMIT 5 OFFSET 2", &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_array_size(json_object_get(r, "records")), 5);
    r = query("SELECT FirstName FROM Lead ORDER BY FirstName NULLS LAST LIMIT 1", &st);
    CHECK_STR(sget(json_array_get(json_object_get(r, "records"), 0), "FirstName"), "Odd");
    CHECK_INT(total("SELECT Id FROM Lead LIMIT 0"), 0);
    r = query("SELECT COUNT() FROM Lead WHERE Company = 'Co3'", &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_integer_value(json_object_get(r, "totalSize")), 50);
    CHECK_INT(json_array_size(json_object_get(r, "records")), 0);
}

static void test_paging(void)
{
    int st;
    static const char *const hdr[] = {"Sforce-Query-Options: batchSize=100", NULL};
    json_t *r = query_h("SELECT Id FROM Lead ORDER BY Id", hdr, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_integer_value(json_object_get(r, "totalSize")), 250);
    CHECK(json_is_false(json_object_get(r, "done")));
    CHECK_INT(json_array_size(json_object_get(r, "records")), 100);
    char seen[250] = {0};
    int distinct = 0, pages = 0;
    for (;;) {
        pages++;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(r, "records"), i, v)
        {
            for (int k = 0; k < 250; k++) {
                if (!strcmp(IDS[k], sget(v, "Id")) && !seen[k]) {
                    seen[k] = 1;
                    distinct++;
                }
            }
        }
        const char *next = sget(r, "nextRecordsUrl");
        if (!next)
            break;
        CHECK(!strncmp(next, CS_TSANDBOX_DATA "/query/01g", strlen(CS_TSANDBOX_DATA) + 10));
        char path[256];
        snprintf(path, sizeof(path), "%s", next);
        r = cs_tsandbox_req(&C, "GET", path, NULL, &st);
        CHECK_INT(st, 200);
        CHECK_INT(json_integer_value(json_object_get(r, "totalSize")), 250);
        if (pages > 5)
            break;
    }
    CHECK_INT(pages, 3);
    CHECK_INT(distinct, 250);
    CHECK(json_is_true(json_object_get(r, "done")));
    /* the default batch is 2000: one page */
    r = query("SELECT Id FROM Lead", &st);
    CHECK(json_is_true(json_object_get(r, "done")));
    CHECK_INT(json_array_size(json_object_get(r, "records")), 250);
    r = cs_tsandbox_req(&C, "GET", CS_TSANDBOX_DATA "/query/01gNOPE-100", NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(code(r), "INVALID_QUERY_LOCATOR");
    r = cs_tsandbox_req(&C, "GET", CS_TSANDBOX_DATA "/query/garbage", NULL, &st);
    CHECK_INT(st, 400);
}

static void test_errors(void)
{
    static const char *malformed[] = {
        "SELECT FROM Lead",
        "SELECT Id FROM",
        "SELECT Id FROM Lead WHERE",
        "SELECT Id FROM Lead WHERE Email IN ()",
        "SELECT Id FROM Lead LIMIT -1",
        "SELECT Id, FROM Lead",
        "DELETE FROM Lead",
        "SELECT Id FROM Lead WHERE Email = 'unterminated",
        "SELECT Id FROM Lead WHERE Email = ",
        "SELECT Id FROM Lead ORDER BY",
        "SELECT Id FROM Lead WHERE SystemModstamp > 2024-13-45T99:00:00Z",
        "SELECT Id FROM Lead WHERE (Email = 'a@b.c'",
        "SELECT Id FROM Lead garbage",
        "SELECT Id, Id FROM Lead",
        "SELECT Id FROM Lead WHERE Email = 'a\\qb'",
        "SELECT Id FROM Lead OFFSET 5000",
    };
    int st;
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        json_t *r = query(malformed[i], &st);
        CHECK_INT(st, 400);
        if (!r || !code(r) || strcmp(code(r), "MALFORMED_QUERY") != 0)
            fprintf(stderr, "not MALFORMED_QUERY: %s -> %s\n", malformed[i], C.res.body);
        CHECK_STR(code(r), "MALFORMED_QUERY");
    }
    json_t *r = query("SELECT Id FROM Leads", &st);
    CHECK_INT(st, 400);
    CHECK_STR(code(r), "INVALID_TYPE");
    r = query("SELECT Id, Bogus__c FROM Lead", &st);
    CHECK_INT(st, 400);
    CHECK_STR(code(r), "INVALID_FIELD");
    CHECK(strstr(sget(json_array_get(r, 0), "message"), "No such column 'Bogus__c'") != NULL);
    r = query("SELECT Id FROM Lead WHERE Bogus = 'x'", &st);
    CHECK_STR(code(r), "INVALID_FIELD");
    r = query("SELECT Id FROM Lead ORDER BY Bogus", &st);
    CHECK_STR(code(r), "INVALID_FIELD");
    r = query("SELECT Id FROM Lead WHERE SystemModstamp > '2024-01-01T00:00:00Z'", &st);
    CHECK_INT(st, 400);
    CHECK_STR(code(r), "INVALID_FIELD");
    r = query("SELECT Id FROM Lead WHERE Email = 5", &st);
    CHECK_STR(code(r), "INVALID_FIELD");
    r = query("SELECT Id FROM Lead WHERE Id IN ('not-an-id')", &st);
    CHECK_STR(code(r), "INVALID_QUERY_FILTER_OPERATOR");
    r = query("SELECT Id FROM Lead WHERE HasOptedOutOfEmail > true", &st);
    CHECK_STR(code(r), "INVALID_QUERY_FILTER_OPERATOR");
    r = cs_tsandbox_req(&C, "GET", CS_TSANDBOX_DATA "/query", NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(code(r), "MALFORMED_QUERY");
}

/* ---- fuzz ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void mutate(char *q, size_t cap)
{
    static const char alphabet[] = "'()\\,=<>!%_ .-+:TZ0123456789abcAND OR NOT IN LIKE SELECT "
                                   "FROM WHERE ORDER BY LIMIT\"\t\n\x01\xff\xc3";
    int rounds = 1 + (int)(rnd() % 4);
    for (int k = 0; k < rounds; k++) {
        size_t n = strlen(q);
        size_t pos = n ? rnd() % n : 0;
        switch (rnd() % 5) {
        case 0: /* delete a run */
            if (n) {
                size_t len = 1 + rnd() % 8;
                if (pos + len > n)
                    len = n - pos;
                memmove(q + pos, q + pos + len, n - pos - len + 1);
            }
            break;
        case 1: /* insert a character */
            if (n + 2 < cap) {
                memmove(q + pos + 1, q + pos, n - pos + 1);
                q[pos] = alphabet[rnd() % (sizeof(alphabet) - 1)];
            }
            break;
        case 2: /* replace */
            if (n)
                q[pos] = alphabet[rnd() % (sizeof(alphabet) - 1)];
            break;
        case 3: /* truncate */
            q[pos] = '\0';
            break;
        default: /* duplicate a chunk */
            if (n && n * 2 + 1 < cap) {
                size_t len = 1 + rnd() % (n - pos);
                memmove(q + pos + len, q + pos, n - pos + 1);
            }
            break;
        }
    }
}

static void test_fuzz(void)
{
    static const char *seeds[] = {
        "SELECT Id, Email, LastName, Company, OwnerId, HasOptedOutOfEmail, LastModifiedDate, "
        "SystemModstamp FROM Lead WHERE Email IN ('a@x.com','b@y.com')",
        "SELECT Id, Email, LastName, OwnerId, SystemModstamp FROM Contact WHERE SystemModstamp > "
        "2024-05-01T00:00:00Z ORDER BY SystemModstamp, Id",
        "SELECT Id FROM Lead WHERE (Email LIKE 'lead1%' OR NOT Company = 'Co1') AND FirstName != "
        "null ORDER BY Email DESC NULLS LAST LIMIT 10 OFFSET 3",
        "SELECT COUNT() FROM Lead WHERE Id IN ('00Q5g000000AAAAEA4') AND CreatedDate >= "
        "2024-01-01T00:00:00.000+0000",
    };
    int st, bad = 0, n = 0;
    char q[4096];
    for (int i = 0; i < 3000; i++) {
        snprintf(q, sizeof(q), "%s", seeds[rnd() % 4]);
        mutate(q, sizeof(q));
        json_t *r = query(q, &st);
        n++;
        if (st != 200 && st != 400) {
            bad++;
            fprintf(stderr, "fuzz: status %d for [%s]\n", st, q);
        } else if (st == 400 && !code(r)) {
            bad++;
            fprintf(stderr, "fuzz: 400 without an errorCode for [%s]\n", q);
        }
    }
    /* deep nesting and a very long query */
    size_t k = 0;
    k += (size_t)snprintf(q + k, sizeof(q) - k, "SELECT Id FROM Lead WHERE ");
    for (int d = 0; d < 1000 && k + 2 < sizeof(q); d++)
        q[k++] = '(';
    q[k] = '\0';
    query(q, &st);
    CHECK_INT(st, 400);
    k = (size_t)snprintf(q, sizeof(q), "SELECT Id FROM Lead WHERE ");
    for (int d = 0; d < 300 && k + 20 < sizeof(q); d++)
        k += (size_t)snprintf(q + k, sizeof(q) - k, "NOT ");
    snprintf(q + k, sizeof(q) - k, "Email = 'x'");
    query(q, &st);
    CHECK_INT(st, 400);
    char *big = malloc(120000);
    REQUIRE(big);
    k = (size_t)snprintf(big, 120000, "SELECT Id FROM Lead WHERE Email IN (");
    while (k + 40 < 120000)
        k += (size_t)snprintf(big + k, 120000 - k, "'x%zu@y.example',", k);
    snprintf(big + k - 1, 120000 - k + 1, ")");
    query(big, &st);
    CHECK(st == 400 || st == 414 || st == 431 || st == 200);
    free(big);
    CHECK_INT(bad, 0);
    CHECK_INT(n, 3000);
    CHECK_INT(total("SELECT Id FROM Lead WHERE Email = 'lead1@q.example'"), 1); /* still alive */
}

int main(void)
{
    char err[512];
    REQUIRE(cs_tsandbox_start(&SB, NULL, err, sizeof(err)) == 0);
    REQUIRE(cs_tsandbox_client_init(&C, &SB) == 0);
    seed();
    test_where();
    test_order_limit_count();
    test_paging();
    test_errors();
    test_fuzz();
    cs_tsandbox_client_close(&C);
    CHECK_INT(cs_tsandbox_stop(&SB), 0);
    return cs_test_report();
}
