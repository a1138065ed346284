#include "sb_auth.h"
#include "sb_util.h"

#include "cs_err.h"
#include "cs_httpd.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TOKENS 100000

typedef struct tok_s {
    char *token;
    char user[19];
    int64_t issued_ms;
} tok_t;

struct sb_auth_s {
    pthread_mutex_t mu;
    sb_auth_opts_t o;
    sb_map_t *by_token;
    tok_t **list; /* issue order, for purging */
    size_t n, cap;
    sb_rng_t rng;
};

sb_auth_t *sb_auth_new(const sb_auth_opts_t *o)
{
    sb_auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    a->o.client_id = strdup(o->client_id ? o->client_id : "");
    a->o.client_secret = strdup(o->client_secret ? o->client_secret : "");
    a->o.password = strdup(o->password ? o->password : "");
    a->o.security_token = strdup(o->security_token ? o->security_token : "");
    a->o.org_id = strdup(o->org_id ? o->org_id : "");
    a->by_token = sb_map_new();
    sb_rng_seed(&a->rng, o->seed ^ 0x5eed0a7UL);
    if (!a->o.client_id || !a->o.client_secret || !a->o.password || !a->o.security_token ||
        !a->o.org_id || !a->by_token) {
        sb_auth_destroy(a);
        return NULL;
    }
    return a;
}

static void tok_free(tok_t *t)
{
    if (t) {
        free(t->token);
        free(t);
    }
}

void sb_auth_revoke_all(sb_auth_t *a)
{
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->n; i++)
        tok_free(a->list[i]);
    a->n = 0;
    sb_map_clear(a->by_token);
    pthread_mutex_unlock(&a->mu);
}

void sb_auth_destroy(sb_auth_t *a)
{
    if (!a)
        return;
    if (a->by_token)
        sb_auth_revoke_all(a);
    sb_map_destroy(a->by_token);
    free(a->list);
    free((char *)a->o.client_id);
    free((char *)a->o.client_secret);
    free((char *)a->o.password);
    free((char *)a->o.security_token);
    free((char *)a->o.org_id);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

char *sb_auth_signature(const char *key, const char *msg)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, strlen(msg), mac,
              &len))
        return NULL;
    return sb_b64_encode(mac, len);
}

/* ---- the token endpoint ---- */

typedef struct form_s {
    char *grant_type, *client_id, *client_secret, *username, *password;
} form_t;

static int form_cb(void *opaque, const char *key, const char *value)
{
    form_t *f = opaque;
    char **slot = !strcmp(key, "grant_type")      ? &f->grant_type
                  : !strcmp(key, "client_id")     ? &f->client_id
                  : !strcmp(key, "client_secret") ? &f->client_secret
                  : !strcmp(key, "username")      ? &f->username
                  : !strcmp(key, "password")      ? &f->password
                                                  : NULL;
    if (slot) {
        free(*slot);
        *slot = strdup(value);
    }
    return 0;
}

static void form_free(form_t *f)
{
    free(f->grant_type);
    free(f->client_id);
    free(f->client_secret);
    free(f->username);
    free(f->password);
}

static json_t *oauth_error(int *status, const char *code, const char *desc)
{
    *status = 400;
    return json_pack("{s:s, s:s}", "error", code, "error_description", desc);
}

/* "Basic base64(id:secret)" -> id / secret (malloc'd). Returns 0 or -1. */
static int parse_basic(const char *authz, char **id, char **secret)
{
    if (!authz || strncasecmp(authz, "Basic ", 6) != 0)
        return -1;
    const char *b = authz + 6;
    while (*b == ' ')
        b++;
    /* standard base64 -> URL-safe alphabet for the shared decoder */
    char *tmp = strdup(b);
    if (!tmp)
        return -1;
    for (char *p = tmp; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    size_t n = 0;
    unsigned char *raw = sb_b64url_decode(tmp, &n);
    free(tmp);
    if (!raw)
        return -1;
    char *colon = strchr((char *)raw, ':');
    if (!colon) {
        free(raw);
        return -1;
    }
    *colon = '\0';
    *id = strdup((char *)raw);
    *secret = strdup(colon + 1);
    free(raw);
    return *id && *secret ? 0 : -1;
}

static char *new_token(sb_auth_t *a)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    char buf[160];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "%.15s!AR8AQ", a->o.org_id);
    while (n < 15 + 1 + 96) {
        uint64_t r = sb_rng_next(&a->rng);
        for (int i = 0; i < 8 && n < 15 + 1 + 96; i++, r >>= 8)
            buf[n++] = alpha[r % 64];
    }
    buf[n] = '\0';
    return strdup(buf);
}

/* Purges expired tokens (never-used ones included) and caps the count; caller holds mu. */
static void purge_locked(sb_auth_t *a, int64_t now_ms, int64_t ttl_ms)
{
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++) {
        tok_t *t = a->list[i];
        int drop = (ttl_ms > 0 && now_ms - t->issued_ms >= ttl_ms) || a->n - i > MAX_TOKENS;
        if (drop) {
            sb_map_del(a->by_token, t->token, t);
            tok_free(t);
        } else {
            a->list[w++] = t;
        }
    }
    a->n = w;
}

json_t *sb_auth_token(sb_auth_t *a, sb_crm_t *crm, const char *body, size_t len, const char *authz,
                      const char *base_url, int64_t now_ms, int *status)
{
    form_t f = {0};
    json_t *out = NULL;
    char user[19];
    char *basic_id = NULL, *basic_secret = NULL;

    if (cs_httpd_form_parse(body ? body : "", body ? len : 0, form_cb, &f) != CS_OK) {
        out = oauth_error(status, "invalid_request", "invalid form body");
        goto out;
    }
    if (!f.grant_type) {
        out = oauth_error(status, "unsupported_grant_type", "grant type not supported");
        goto out;
    }
    if (!f.client_id && parse_basic(authz, &basic_id, &basic_secret) == 0) {
        f.client_id = basic_id;
        f.client_secret = basic_secret;
        basic_id = basic_secret = NULL;
    }
    if (!strcmp(f.grant_type, "client_credentials") || !strcmp(f.grant_type, "password")) {
        if (!f.client_id || strcmp(f.client_id, a->o.client_id) != 0) {
            out = oauth_error(status, "invalid_client_id", "client identifier invalid");
            goto out;
        }
        if (!f.client_secret || strcmp(f.client_secret, a->o.client_secret) != 0) {
            out = oauth_error(status, "invalid_client", "invalid client credentials");
            goto out;
        }
    } else {
        out = oauth_error(status, "unsupported_grant_type", "grant type not supported");
        goto out;
    }
    if (!strcmp(f.grant_type, "password")) {
        char with_token[512];
        snprintf(with_token, sizeof(with_token), "%s%s", a->o.password, a->o.security_token);
        int pw_ok =
            f.password && (!strcmp(f.password, a->o.password) || !strcmp(f.password, with_token));
        if (!f.username || !pw_ok || sb_crm_user_by_email(crm, f.username, user) != 0) {
            out = oauth_error(status, "invalid_grant", "authentication failure");
            goto out;
        }
    } else {
        memcpy(user, sb_crm_integration_user(crm), 19);
    }

    tok_t *t = calloc(1, sizeof(*t));
    pthread_mutex_lock(&a->mu);
    char *token = t ? new_token(a) : NULL;
    int ok = t && token;
    if (ok && a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        tok_t **nl = realloc(a->list, cap * sizeof(*nl));
        if (nl) {
            a->list = nl;
            a->cap = cap;
        }
        ok = nl != NULL;
    }
    if (!ok || sb_map_add(a->by_token, token, t) != 0) {
        pthread_mutex_unlock(&a->mu);
        free(token);
        free(t);
        *status = 500;
        out =
            json_pack("{s:s, s:s}", "error", "server_error", "error_description", "out of memory");
        goto out;
    }
    t->token = token;
    memcpy(t->user, user, 19);
    t->issued_ms = now_ms;
    a->list[a->n++] = t;
    if (a->n > 1024 && a->n % 1024 == 0)
        purge_locked(a, now_ms, 0);
    pthread_mutex_unlock(&a->mu);

    char id[256], issued[32];
    snprintf(id, sizeof(id), "%s/id/%s/%s", base_url, a->o.org_id, user);
    snprintf(issued, sizeof(issued), "%lld", (long long)now_ms);
    char msg[300];
    snprintf(msg, sizeof(msg), "%s%s", id, issued);
    char *sig = sb_auth_signature(a->o.client_secret, msg);
    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "access_token", token, "instance_url",
                    base_url, "id", id, "token_type", "Bearer", "issued_at", issued, "signature",
                    sig ? sig : "", "scope", "api pardot_api");
    free(sig);
    *status = 200;
out:
    free(basic_id);
    free(basic_secret);
    form_free(&f);
    return out;
}

sb_auth_rc_t sb_auth_check(sb_auth_t *a, const char *authz, int64_t ttl_ms, int64_t now_ms,
                           char *user_out)
{
    if (!authz)
        return SB_AUTH_MISSING;
    const char *tok = NULL;
    if (!strncasecmp(authz, "Bearer ", 7))
        tok = authz + 7;
    else if (!strncasecmp(authz, "OAuth ", 6)) /* the older scheme name Salesforce accepts */
        tok = authz + 6;
    if (!tok)
        return SB_AUTH_INVALID;
    while (*tok == ' ')
        tok++;
    sb_auth_rc_t rc = SB_AUTH_INVALID;
    pthread_mutex_lock(&a->mu);
    tok_t *t = sb_map_get(a->by_token, tok);
    if (t) {
        if (now_ms - t->issued_ms >= ttl_ms) {
            rc = SB_AUTH_EXPIRED;
            purge_locked(a, now_ms, ttl_ms);
        } else {
            memcpy(user_out, t->user, 19);
            rc = SB_AUTH_OK;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int sb_auth_revoke(sb_auth_t *a, const char *token)
{
    int rc = -1;
    pthread_mutex_lock(&a->mu);
    tok_t *t = token ? sb_map_get(a->by_token, token) : NULL;
    if (t) {
        for (size_t i = 0; i < a->n; i++) {
            if (a->list[i] == t) {
                memmove(&a->list[i], &a->list[i + 1], (a->n - i - 1) * sizeof(*a->list));
                a->n--;
                break;
            }
        }
        sb_map_del(a->by_token, t->token, t);
        tok_free(t);
        rc = 0;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}
