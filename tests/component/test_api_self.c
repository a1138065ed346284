/* The users crmsync writes as, found by its own API client against the sandbox (echo
 * suppression by author on both sides): cs_api_self_user (the CRM user behind the token) and
 * cs_api_mkt_self_user (the marketing user whose salesforceId is that CRM user). Checked for
 * the integration user (client credentials), a salesperson who is also a marketing user, and
 * one who is not (password grant). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cs_api.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_test.h"
#include "testutil_sandbox.h"

static cs_tsandbox_t sb;

/* A client as the integration user (username NULL) or as that user (password grant). */
static cs_api_t *api_as(const char *username, cs_conf_t **confp)
{
    char err[512], text[2048];
    cs_conf_t *conf = cs_conf_new("test-api-self", "test", NULL);
    REQUIRE(conf && cs_conf_add_opts(conf, cs_api_opts) == CS_OK);
    int n = snprintf(text, sizeof text,
                     "crm.login_url=%s\nmkt.base_url=%s\ncrm.client_id=%s\ncrm.client_secret=%s\n"
                     "mkt.business_unit_id=%s\n",
                     sb.url, sb.url, CS_TSANDBOX_CLIENT_ID, CS_TSANDBOX_CLIENT_SECRET,
                     CS_TSANDBOX_BU_ID);
    if (username)
        snprintf(text + n, sizeof text - (size_t)n,
                 "crm.grant_type=password\ncrm.username=%s\ncrm.password=%s\n", username,
                 CS_TSANDBOX_PASSWORD);
    REQUIRE(cs_conf_load_string(conf, text, "test", err, sizeof err) == CS_OK);
    cs_api_t *a = cs_api_new(conf, NULL, err, sizeof err);
    REQUIRE(a);
    *confp = conf; /* cs_api borrows some of its strings: destroy after the api */
    return a;
}

/* The marketing user id whose salesforceId is crm_id, read from the sandbox directly; -1. */
static int64_t linked_mkt_user(const char *crm_id)
{
    int st = 0;
    int64_t id = -1;
    json_t *snap = cs_tsandbox_admin(&sb, "GET", "snapshot", NULL, &st), *u;
    size_t i;
    REQUIRE(st == 200 && snap);
    json_array_foreach(json_object_get(json_object_get(snap, "marketing"), "users"), i, u)
    {
        const char *sf = json_string_value(json_object_get(u, "salesforceId"));
        if (sf && !strcmp(sf, crm_id))
            id = json_integer_value(json_object_get(u, "id"));
    }
    json_decref(snap);
    return id;
}

static void test_integration_user(void)
{
    cs_conf_t *conf;
    cs_api_t *a = api_as(NULL, &conf);
    char crm[19] = "";
    int64_t mkt = 0;
    int st = 0;
    json_t *info = cs_tsandbox_admin(&sb, "GET", "info", NULL, &st);
    REQUIRE(st == 200 && info);
    const char *integ = json_string_value(json_object_get(info, "integration_user_id"));
    REQUIRE(integ);
    CHECK_INT(cs_api_self_user(a, crm, sizeof crm), CS_OK);
    CHECK_STR(crm, integ);
    CHECK_INT(cs_api_mkt_self_user(a, &mkt), CS_OK);
    CHECK(mkt > 0);
    CHECK(mkt == linked_mkt_user(integ));
    CHECK(mkt == 104); /* after the three configured marketing users (docs/SANDBOX.md) */
    json_decref(info);
    cs_api_destroy(a);
    cs_conf_destroy(conf);
}

static void test_password_users(void)
{
    cs_conf_t *conf;
    char crm[19] = "";
    int64_t mkt = 0;
    /* sam is a CRM user and marketing user 101 (linked by e-mail) */
    cs_api_t *a = api_as("sam@acme.example", &conf);
    CHECK_INT(cs_api_self_user(a, crm, sizeof crm), CS_OK);
    CHECK_INT(cs_api_mkt_self_user(a, &mkt), CS_OK);
    CHECK(mkt == 101);
    CHECK(mkt == linked_mkt_user(crm));
    cs_api_destroy(a);
    cs_conf_destroy(conf);
    /* ada is a CRM user with no marketing user: none linked */
    a = api_as("ada@acme.example", &conf);
    mkt = 0;
    CHECK_INT(cs_api_self_user(a, crm, sizeof crm), CS_OK);
    CHECK_INT(cs_api_mkt_self_user(a, &mkt), CS_ERR_NOT_FOUND);
    CHECK(mkt == 0);
    CHECK(linked_mkt_user(crm) == -1);
    cs_api_destroy(a);
    cs_conf_destroy(conf);
}

int main(void)
{
    char err[512];
    REQUIRE(cs_tsandbox_start(&sb, NULL, err, sizeof err) == 0);
    test_integration_user();
    test_password_users();
    CHECK_INT(cs_tsandbox_stop(&sb), 0);
    return cs_test_report();
}
