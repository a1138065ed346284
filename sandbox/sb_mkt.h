/* sb_mkt: the marketing side's in-memory store (Account Engagement v5 prospects, visitor
 * activities and users) and the v5 operations over it: the generic query (fields, filters,
 * orderBy, limit, nextPageToken paging), read, create, update, upsertLatestByEmail, delete.
 *
 * Authorship: every prospect write takes the marketing user it acts as (by = a marketing user
 * id, or SB_MKT_NO_USER). A write that changes a value (exactly when updatedAt moves) sets
 * updatedById to it, a create also createdById; SB_MKT_NO_USER stores null (a marketer's edit in
 * the UI, a form, seeding). The API resolves "the user the token acts as" with
 * sb_mkt_user_by_crm_id(), as Account Engagement acts as the user linked to the Salesforce user.
 *
 * Every answer is a JSON body plus an HTTP status; errors use the v5 shape
 * {"code": N, "message": "..."}. Prospects are indexed by id (ids only grow, binary search) and
 * by lower-cased e-mail. One rwlock guards the store. Thread-safe. */
#ifndef SB_MKT_H
#define SB_MKT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sb_crm.h"

typedef struct sb_mkt_s sb_mkt_t;

/* "no marketing user": the write's updatedById / createdById are null */
#define SB_MKT_NO_USER 0

typedef struct sb_mkt_opts_s {
    const sb_person_t *users; /* the marketing users (assignedToId values), ids from 101 */
    size_t nusers;
    /* the CRM integration user (may be NULL): gets a marketing user of its own ("Administrator",
     * salesforceId = its CRM user id) after users, unless one of users has its e-mail */
    const sb_person_t *integration;
    sb_crm_t *crm;        /* to map users to CRM users by e-mail (salesforceId) */
    int utc_offset_min;   /* offset of the timestamps answered ("API user's time zone") */
    int allow_dup_emails; /* AMPSEA: several prospects may share an e-mail */
    int strict_readonly;  /* reject writes to connector-owned fields as the real API does */
    const char *base_url; /* for nextPageUrl, Location and salesforceUrl */
    const char *crm_url;  /* instance URL for salesforceUrl */
} sb_mkt_opts_t;

/* Returns NULL on ENOMEM. Caller frees with sb_mkt_destroy(). */
sb_mkt_t *sb_mkt_new(const sb_mkt_opts_t *o);
void sb_mkt_destroy(sb_mkt_t *m); /* accepts NULL */

/* Sets the URLs answered in nextPageUrl / Location (base) and salesforceUrl (crm). */
void sb_mkt_set_urls(sb_mkt_t *m, const char *base_url, const char *crm_url);

/* Drops prospects and activities (ids keep growing); users stay. */
void sb_mkt_reset(sb_mkt_t *m);

/* The id of the live marketing user whose salesforceId is crm_user_id (the first one when
 * several are), or SB_MKT_NO_USER when none is linked or crm_user_id is NULL. Any thread. */
int64_t sb_mkt_user_by_crm_id(sb_mkt_t *m, const char *crm_user_id);

/* 1 for "prospects", "visitor-activities" and "users". */
int sb_mkt_known_object(const char *object);

/* Write counts for stats. */
typedef struct sb_mstats_s {
    unsigned created, updated, deleted;
} sb_mstats_t;

/* GET /api/v5/objects/{object}: params holds the query arguments ({"name": "value"}).
 * warning (may be NULL) receives a Pardot-Warning header value, or "" when none. */
json_t *sb_mkt_query(sb_mkt_t *m, const char *object, json_t *params, int64_t now_ms, int *status,
                     char *warning, size_t warning_size);

/* GET /api/v5/objects/{object}/{id}?fields= */
json_t *sb_mkt_read(sb_mkt_t *m, const char *object, const char *id, const char *fields,
                    int *status);

/* POST /api/v5/objects/prospects: *location gets the new record's URL (caller frees).
 * createdById and updatedById = by (null for SB_MKT_NO_USER). */
json_t *sb_mkt_create(sb_mkt_t *m, json_t *body, const char *fields, int64_t now_ms, int64_t by,
                      int *status, char **location, sb_mstats_t *st);

/* PATCH /api/v5/objects/prospects/{id}: updatedById = by when a value changed. */
json_t *sb_mkt_update(sb_mkt_t *m, const char *id, json_t *body, const char *fields, int64_t now_ms,
                      int64_t by, int *status, sb_mstats_t *st);

/* POST /api/v5/objects/prospects/do/upsertLatestByEmail: updatedById = by when a value changed
 * or a deleted prospect was restored; a create also sets createdById. */
json_t *sb_mkt_upsert_latest(sb_mkt_t *m, json_t *body, int64_t now_ms, int64_t by, int *status,
                             sb_mstats_t *st);

/* DELETE /api/v5/objects/prospects/{id}: NULL body with *status 204, or an error. */
json_t *sb_mkt_delete(sb_mkt_t *m, const char *id, int64_t now_ms, int *status, sb_mstats_t *st);

/* POST /sandbox/marketing/activity: appends a visitor activity (see docs/SANDBOX.md). A score
 * or opt-out change it makes to the prospect is a visitor's, not a user's: updatedById null. */
json_t *sb_mkt_add_activity(sb_mkt_t *m, json_t *body, int64_t now_ms, int *status);

/* Every record, for /sandbox/snapshot. */
json_t *sb_mkt_snapshot(sb_mkt_t *m);

/* Live prospect count. */
size_t sb_mkt_count(sb_mkt_t *m);

/* {"code": code, "message": msg} */
json_t *sb_v5_error(int code, const char *msg);

#endif
