/* Component test: the sandbox's OAuth token endpoint and sessions through cs_http / cs_oauth:
 * both grants (body and Basic credentials), the real error shapes for bad credentials, the
 * user behind a token (LastModifiedById), token expiry (401 INVALID_SESSION_ID / code 184, and
 * cs_http's refresh-and-retry), revocation. */
#include "cs_err.h"
#include "cs_test.h"
#include "testutil_sandbox.h"

#include <unistd.h>

static cs_tsandbox_t SB;

static const char *sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *token_call(const char *form, const char *const *headers, int *status)
{
    static const char *const form_hdr[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    return cs_tsandbox_call(&SB, "POST", "/services/oauth2/token", headers ? headers : form_hdr,
                            form, status);
}

static void test_grants(void)
{
    int st;
    json_t *r = token_call("grant_type=client_credentials&client_id=" CS_TSANDBOX_CLIENT_ID
                           "&client_secret=" CS_TSANDBOX_CLIENT_SECRET,
                           NULL, &st);
    CHECK_INT(st, 200);
    CHECK(sget(r, "access_token") && !strncmp(sget(r, "access_token"), "00D", 3));
    CHECK_STR(sget(r, "instance_url"), SB.url);
    CHECK_STR(sget(r, "token_type"), "Bearer");
    const char *id = sget(r, "id");
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s/id/00D", SB.url);
    CHECK(id && !strncmp(id, prefix, strlen(prefix)));
    const char *issued = sget(r, "issued_at");
    CHECK(issued && strlen(issued) == 13 && strspn(issued, "0123456789") == 13);
    const char *sig = sget(r, "signature");
    CHECK(sig && strlen(sig) == 44 && sig[43] == '='); /* base64 of a 32-byte HMAC-SHA256 */
    CHECK(!json_object_get(r, "expires_in"));
    CHECK(!json_object_get(r, "refresh_token"));
    json_decref(r);

    /* credentials in a Basic header (base64 of id:secret) */
    char *b64 = NULL;
    {
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *in = CS_TSANDBOX_CLIENT_ID ":" CS_TSANDBOX_CLIENT_SECRET;
        size_t n = strlen(in), o = 0;
        b64 = malloc(4 * ((n + 2) / 3) + 1);
        for (size_t i = 0; i < n; i += 3) {
            unsigned v = (unsigned char)in[i] << 16 |
                         (i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0) |
                         (i + 2 < n ? (unsigned char)in[i + 2] : 0);
            b64[o++] = tbl[v >> 18];
            b64[o++] = tbl[(v >> 12) & 63];
            b64[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
            b64[o++] = i + 2 < n ? tbl[v & 63] : '=';
        }
        b64[o] = '\0';
    }
    char basic[256];
    snprintf(basic, sizeof(basic), "Authorization: Basic %s", b64);
    free(b64);
    const char *const hb[] = {basic, "Content-Type: application/x-www-form-urlencoded", NULL};
    r = token_call("grant_type=client_credentials", hb, &st);
    CHECK_INT(st, 200);
    json_decref(r);

    r = token_call("grant_type=client_credentials&client_id=nope&client_secret=x", NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(sget(r, "error"), "invalid_client_id");
    CHECK_STR(sget(r, "error_description"), "client identifier invalid");
    json_decref(r);
    r = token_call("grant_type=client_credentials&client_id=" CS_TSANDBOX_CLIENT_ID
                   "&client_secret=wrong",
                   NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(sget(r, "error"), "invalid_client");
    CHECK_STR(sget(r, "error_description"), "invalid client credentials");
    json_decref(r);
    r = token_call("grant_type=password&client_id=" CS_TSANDBOX_CLIENT_ID
                   "&client_secret=" CS_TSANDBOX_CLIENT_SECRET
                   "&username=sam%40acme.example&password=wrong",
                   NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(sget(r, "error"), "invalid_grant");
    CHECK_STR(sget(r, "error_description"), "authentication failure");
    json_decref(r);
    r = token_call("grant_type=password&client_id=" CS_TSANDBOX_CLIENT_ID
                   "&client_secret=" CS_TSANDBOX_CLIENT_SECRET
                   "&username=nobody%40acme.example&password=" CS_TSANDBOX_PASSWORD,
                   NULL, &st);
    CHECK_STR(sget(r, "error"), "invalid_grant");
    json_decref(r);
    r = token_call("grant_type=authorization_code&code=x", NULL, &st);
    CHECK_INT(st, 400);
    CHECK_STR(sget(r, "error"), "unsupported_grant_type");
    json_decref(r);
    r = token_call("", NULL, &st);
    CHECK_INT(st, 400);
    json_decref(r);
    r = cs_tsandbox_call(&SB, "GET", "/services/oauth2/token", NULL, NULL, &st);
    CHECK_INT(st, 405);
    json_decref(r);

    /* the password grant acts as that user: its writes carry the user's id */
    r = token_call("grant_type=password&client_id=" CS_TSANDBOX_CLIENT_ID
                   "&client_secret=" CS_TSANDBOX_CLIENT_SECRET
                   "&username=SAM%40acme.example&password=" CS_TSANDBOX_PASSWORD,
                   NULL, &st);
    CHECK_INT(st, 200);
    const char *tok = sget(r, "access_token");
    REQUIRE(tok);
    const char *uid = strrchr(sget(r, "id"), '/') + 1;
    char auth[600], user[19];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    snprintf(user, sizeof(user), "%s", uid);
    json_decref(r);
    const char *const ah[] = {auth, NULL};
    r = cs_tsandbox_call(&SB, "POST", CS_TSANDBOX_DATA "/sobjects/Lead", ah,
                         "{\"LastName\":\"ByToken\",\"Company\":\"T\"}", &st);
    CHECK_INT(st, 201);
    char path[128];
    snprintf(path, sizeof(path), CS_TSANDBOX_DATA "/sobjects/Lead/%s", sget(r, "id"));
    json_decref(r);
    r = cs_tsandbox_call(&SB, "GET", path, ah, NULL, &st);
    CHECK_STR(sget(r, "LastModifiedById"), user);
    CHECK_STR(sget(r, "OwnerId"), user);
    json_decref(r);
}

static void test_sessions(void)
{
    int st;
    /* no token, a bad token */
    json_t *r = cs_tsandbox_call(&SB, "GET", CS_TSANDBOX_DATA "/limits", NULL, NULL, &st);
    CHECK_INT(st, 401);
    CHECK_STR(sget(json_array_get(r, 0), "errorCode"), "INVALID_SESSION_ID");
    CHECK_STR(sget(json_array_get(r, 0), "message"), "Session expired or invalid");
    json_decref(r);
    const char *const bad[] = {"Authorization: Bearer 00Dnope!nope", NULL};
    r = cs_tsandbox_call(&SB, "GET", CS_TSANDBOX_DATA "/limits", bad, NULL, &st);
    CHECK_INT(st, 401);
    json_decref(r);

    /* expiry: a 1-second TTL */
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"auth.token_ttl_s\": 1}") == 0);
    cs_tsandbox_client_t c;
    REQUIRE(cs_tsandbox_client_init(&c, &SB) == 0);
    r = cs_tsandbox_req(&c, "GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 200);
    char token[512], auth[600];
    REQUIRE(cs_oauth_get_token(c.oauth, 0, token, sizeof(token)) == 0);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    usleep(1200000);
    const char *const old[] = {auth, NULL};
    r = cs_tsandbox_call(&SB, "GET", CS_TSANDBOX_DATA "/limits", old, NULL, &st);
    CHECK_INT(st, 401);
    CHECK_STR(sget(json_array_get(r, 0), "errorCode"), "INVALID_SESSION_ID");
    json_decref(r);
    const char *const old_v5[] = {auth, "Pardot-Business-Unit-Id: " CS_TSANDBOX_BU_ID, NULL};
    r = cs_tsandbox_call(&SB, "GET", CS_TSANDBOX_V5 "/prospects?fields=id", old_v5, NULL, &st);
    CHECK_INT(st, 401);
    CHECK_INT(json_integer_value(json_object_get(r, "code")), 184);
    json_decref(r);
    /* the client refreshes once and the call goes through */
    unsigned fetches = cs_oauth_fetch_count(c.oauth);
    r = cs_tsandbox_req(&c, "GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(c.res.auth_retried, 1);
    CHECK_INT(cs_oauth_fetch_count(c.oauth), fetches + 1);
    REQUIRE(cs_tsandbox_knobs(&SB, "{\"auth.token_ttl_s\": 7200}") == 0);

    /* revocation: one token, then all */
    REQUIRE(cs_oauth_get_token(c.oauth, 0, token, sizeof(token)) == 0);
    char form[600];
    snprintf(form, sizeof(form), "token=%s", token);
    static const char *const fh[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    r = cs_tsandbox_call(&SB, "POST", "/services/oauth2/revoke", fh, form, &st);
    CHECK_INT(st, 200);
    json_decref(r);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    r = cs_tsandbox_call(&SB, "GET", CS_TSANDBOX_DATA "/limits", old, NULL, &st);
    CHECK_INT(st, 401);
    json_decref(r);
    usleep(1100000); /* cs_oauth refreshes at most once a second */
    r = cs_tsandbox_req(&c, "GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 200); /* refreshed */
    r = cs_tsandbox_admin(&SB, "POST", "tokens/revoke", NULL, &st);
    CHECK_INT(st, 200);
    json_decref(r);
    usleep(1100000);
    r = cs_tsandbox_req(&c, "GET", CS_TSANDBOX_DATA "/limits", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(c.res.auth_retried, 1);
    cs_tsandbox_client_close(&c);
}

int main(void)
{
    char err[512];
    REQUIRE(cs_tsandbox_start(&SB, NULL, err, sizeof(err)) == 0);
    test_grants();
    test_sessions();
    CHECK_INT(cs_tsandbox_stop(&SB), 0);
    return cs_test_report();
}
