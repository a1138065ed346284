/* sb_auth: the OAuth 2.0 token endpoint (client-credentials and username-password grants) and
 * the bearer tokens it hands out, shared by the CRM and the marketing side (as one Salesforce
 * login serves both in real life).
 *
 * Tokens are opaque ("<org id>!<random>"), remember the user they act for and their issue time;
 * one older than the TTL in force is expired (a TTL change applies to existing tokens too).
 * Thread-safe (one mutex). */
#ifndef SB_AUTH_H
#define SB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sb_crm.h"

typedef struct sb_auth_s sb_auth_t;

typedef struct sb_auth_opts_s {
    const char *client_id, *client_secret;
    const char *password; /* every seeded user's password (security token appended or not) */
    const char *security_token;
    const char *org_id; /* 18 characters, 00D prefix */
    uint64_t seed;
} sb_auth_opts_t;

/* Strings are copied. Returns NULL on ENOMEM. Caller frees with sb_auth_destroy(). */
sb_auth_t *sb_auth_new(const sb_auth_opts_t *o);
void sb_auth_destroy(sb_auth_t *a); /* accepts NULL */

/* POST /services/oauth2/token. body is the form body; authz the Authorization header (or
 * NULL); base_url the instance URL to advertise. Returns the JSON answer (new reference) with
 * *status 200, or {"error","error_description"} with 400. */
json_t *sb_auth_token(sb_auth_t *a, sb_crm_t *crm, const char *body, size_t len, const char *authz,
                      const char *base_url, int64_t now_ms, int *status);

typedef enum { SB_AUTH_OK = 0, SB_AUTH_MISSING, SB_AUTH_INVALID, SB_AUTH_EXPIRED } sb_auth_rc_t;

/* Checks an "Authorization: Bearer <token>" header value. On SB_AUTH_OK writes the user id
 * (19 bytes). An expired token is forgotten. */
sb_auth_rc_t sb_auth_check(sb_auth_t *a, const char *authz, int64_t ttl_ms, int64_t now_ms,
                           char *user_out);

/* Revokes one token (POST /services/oauth2/revoke); returns 0 when it existed. */
int sb_auth_revoke(sb_auth_t *a, const char *token);
/* Revokes every token (POST /sandbox/tokens/revoke). */
void sb_auth_revoke_all(sb_auth_t *a);

/* Base64(HMAC-SHA256(key, msg)) into a malloc'd string, or NULL. */
char *sb_auth_signature(const char *key, const char *msg);

#endif
