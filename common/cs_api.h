/* cs_api: crmsync's two outside systems, as the calls the pipeline makes.
 *
 *   CRM (Salesforce REST)          matching by email (one /composite call holding the
 *                                  Contact and the Lead query), sObject Collections update
 *                                  and upsert-by-external-id (<= 200 records, one call each),
 *                                  SOQL query with nextRecordsUrl paging (the CRM producer).
 *   Marketing (Account Engagement  prospect update by id, upsertLatestByEmail, read, and the
 *   API v5)                        updatedAt query with nextPageUrl paging (the producer).
 *
 * Both authenticate with one Salesforce OAuth token (client credentials or password grant),
 * fetched on first use and refreshed once on 401 / code 184 by cs_http. Request bodies are
 * built by the caller once per batch (jansson) and sent as one call. Errors: a batch-level
 * failure returns the cs_http code (RETRY class: transport, 5xx, rate limit, auth); per-record
 * outcomes of collection calls are reported in cs_api_rec_result_t.
 * An api object belongs to one thread (it reuses one connection per system). */
#ifndef CS_API_H
#define CS_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cs_conf.h"
#include "cs_http.h"
#include "cs_metrics.h"
#include "cs_state.h"

/* crm.* and mkt.* options: add with cs_conf_add_opts(c, cs_api_opts). */
extern const cs_opt_t cs_api_opts[];

typedef struct cs_api_s cs_api_t;

/* Reads the crm.* / mkt.* options. Contacts nothing yet. metrics may be NULL.
 * Returns NULL and fills errstr on bad options. Caller frees with cs_api_destroy(). */
cs_api_t *cs_api_new(const cs_conf_t *conf, cs_metrics_t *metrics, char *errstr, size_t n);
void cs_api_destroy(cs_api_t *a); /* accepts NULL */

/* Work the caller's thread does while a call to either API waits for its answer
 * (cs_http_set_idle() on both clients; not on the token endpoint). It must not call the
 * API. NULL = none. */
void cs_api_set_idle(cs_api_t *a, cs_http_idle_cb_t idle, void *opaque);

/* The API version path prefix, e.g. "/services/data/v60.0". */
const char *cs_api_crm_prefix(const cs_api_t *a);

/* The external-id field holding the prospect id on CRM leads ("Crmsync_Prospect_Id__c"). */
const char *cs_api_external_id_field(const cs_api_t *a);

/* The CRM user that owns leads whose marketing assignee is not mapped (crm.connector_user_id,
 * or the user behind the token). "" when unknown. */
const char *cs_api_connector_user(const cs_api_t *a);

/* The CRM user crmsync writes as (the user behind the token; fetches a token when none is
 * held yet). Its changes coming back through the CRM stream are echoes. Returns CS_OK with
 * the 18-character id in buf (>= 19 bytes), or an error (token endpoint unreachable, no id
 * in its answer). */
int cs_api_self_user(cs_api_t *a, char *buf, size_t n);

/* The marketing user crmsync writes as: the Account Engagement user linked to the CRM user
 * behind the token (the user whose salesforceId is cs_api_self_user()), found in
 * GET /api/v5/objects/users (all pages). Its prospect versions coming back through the
 * prospect stream are echoes. Returns CS_OK with *id, CS_ERR_NOT_FOUND when no marketing
 * user is linked, or the call's error. */
int cs_api_mkt_self_user(cs_api_t *a, int64_t *id);

/* Calls made so far per system (each HTTP request counts once, retries included). */
uint64_t cs_api_crm_calls(const cs_api_t *a);
uint64_t cs_api_mkt_calls(const cs_api_t *a);

/* The last call's result (status, API error code and message), for logs and errors. */
const cs_http_result_t *cs_api_last(const cs_api_t *a);

/* ---------------------------------------------------------------- CRM */

typedef struct cs_api_match_s {
    cs_link_t object; /* CS_LINK_NONE: no record with this email */
    char id[19];
} cs_api_match_t;

/* Finds, for each email, the first contact with that email, else the first lead (ordered
 * by Id: stable), in ONE API call (/composite with two SOQL subrequests; email comparison
 * is case-insensitive as in SOQL). out[i] answers emails[i]. Returns CS_OK or the
 * batch-level error. n <= 200. */
int cs_api_crm_match(cs_api_t *a, const char *const *emails, size_t n, cs_api_match_t *out);

typedef struct cs_api_rec_result_s {
    int success;
    int created;       /* upsert only */
    char id[19];       /* record id when known */
    char code[48];     /* statusCode of the first error ("" on success) */
    char message[160]; /* its message */
} cs_api_rec_result_t;

/* PATCH composite/sobjects with records (a JSON array of objects each holding
 * "attributes":{"type":...} and "id"), allOrNone false. results[i] answers records[i].
 * Steals the reference to records. Returns CS_OK (per-record outcomes in results) or the
 * batch-level error. */
int cs_api_crm_update(cs_api_t *a, json_t *records, cs_api_rec_result_t *results);

/* PATCH composite/sobjects/<type>/<external id field>: upsert, idempotent on the external
 * id (a retry after a crash can never create a second record). Same contract. */
int cs_api_crm_upsert(cs_api_t *a, const char *type, json_t *records, cs_api_rec_result_t *results);

/* Runs a SOQL query and calls cb for each record (borrowed), following nextRecordsUrl.
 * cb returning non-zero stops early. Returns CS_OK or the error of the failing call. */
int cs_api_crm_query(cs_api_t *a, const char *soql, int (*cb)(void *opaque, json_t *record),
                     void *opaque);

/* ---------------------------------------------------------------- marketing */

/* PATCH /api/v5/objects/prospects/{id} with fields (a JSON object of v5 names; stolen).
 * Returns CS_OK, CS_ERR_NOT_FOUND, a RETRY-class error, or CS_ERR_HTTP_4XX (rejected: see
 * cs_api_last()). */
int cs_api_mkt_update(cs_api_t *a, int64_t prospect_id, json_t *fields);

/* POST /api/v5/objects/prospects/do/upsertLatestByEmail (creates when no prospect has the
 * email). *id_out receives the prospect id. Same errors. */
int cs_api_mkt_upsert_by_email(cs_api_t *a, const char *email, json_t *fields, int64_t *id_out);

/* GET /api/v5/objects/prospects/{id}?fields=...: *out (caller decrefs) or an error. */
int cs_api_mkt_get(cs_api_t *a, int64_t prospect_id, const char *fields, json_t **out);

/* GET an arbitrary v5 path with query (e.g. "objects/prospects?fields=...&orderBy=..."), or a
 * full nextPageUrl; *out is the parsed body (caller decrefs). */
int cs_api_mkt_get_path(cs_api_t *a, const char *path_or_url, json_t **out);

/* GET an arbitrary CRM path under the version prefix (or a full /services/... path). */
int cs_api_crm_get_path(cs_api_t *a, const char *path, json_t **out);

#endif
