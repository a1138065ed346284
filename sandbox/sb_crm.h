/* sb_crm: the CRM side's in-memory store (Salesforce Lead, Contact, User) and the operations
 * the REST handlers need: sObject Collections create / update / upsert / retrieve, single-record
 * CRUD, SOQL queries with query locators, describe, Get Updated / Get Deleted, snapshots.
 *
 * Records live in per-object arrays (creation order) and are indexed by id, by lower-cased
 * e-mail and by lower-cased external id (hash tables). One rwlock guards the store: queries and
 * reads share it, every write operation (a whole collection call) holds it exclusively, which
 * makes allOrNone a plain validate-then-apply. Thread-safe: any function, any thread. */
#ifndef SB_CRM_H
#define SB_CRM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct sb_crm_s sb_crm_t;

/* ---- schema ---- */

typedef enum {
    SB_FT_ID,
    SB_FT_STRING,
    SB_FT_EMAIL,
    SB_FT_PHONE,
    SB_FT_PICKLIST,
    SB_FT_BOOL,
    SB_FT_DATETIME,
    SB_FT_REFERENCE,
} sb_ftype_t;

#define SB_F_CREATE 0x01   /* createable */
#define SB_F_UPDATE 0x02   /* updateable */
#define SB_F_NILLABLE 0x04 /* may be null */
#define SB_F_REQUIRED 0x08 /* must be non-empty after create/update (not nillable, no default) */
#define SB_F_EXTID 0x10    /* external id, unique, case-insensitive */
#define SB_F_FORMULA 0x20  /* calculated (formula) field: read-only */
#define SB_F_COMPUTED 0x40 /* value computed when read (formula fields, Name) */
#define SB_F_DEFAULTED 0x80

typedef struct sb_field_s {
    const char *name;
    const char *label;
    sb_ftype_t type;
    int length;
    unsigned flags;
    const char *formula;  /* calculatedFormula, for SB_F_FORMULA */
    const char *ref_to;   /* "User" for references */
    const char *rel_name; /* relationshipName ("Owner") */
    const char *def_str;  /* default for picklists */
    /* SB_F_COMPUTED: returns a new reference (json null when empty) */
    json_t *(*compute)(const json_t *stored);
} sb_field_t;

typedef struct sb_sobj_s {
    const char *name, *label, *label_plural, *prefix;
    const sb_field_t *fields;
    size_t nfields;
    int writable; /* 0: the API may read but not write (User) */
    int idx;
} sb_sobj_t;

#define SB_CRM_NOBJ 3

/* Case-insensitive lookups; NULL when unknown. */
const sb_sobj_t *sb_crm_sobj(const char *name);
const sb_field_t *sb_crm_field(const sb_sobj_t *o, const char *name);
const sb_sobj_t *sb_crm_sobj_at(int idx);

/* ---- lifecycle ---- */

typedef struct sb_person_s {
    char *first, *last, *email;
} sb_person_t;

/* Creates the store with its users: integration first, then users[0..n). Returns NULL on
 * allocation failure. Caller frees with sb_crm_destroy(). */
sb_crm_t *sb_crm_new(const sb_person_t *integration, const sb_person_t *users, size_t n);
void sb_crm_destroy(sb_crm_t *c); /* accepts NULL */

/* Drops every Lead and Contact, deleted records and query locators; users stay. */
void sb_crm_reset(sb_crm_t *c);

/* The integration user's id (borrowed, static for the store's life). */
const char *sb_crm_integration_user(const sb_crm_t *c);

/* Looks up an active user by username or e-mail (case-insensitive); writes its id (19 bytes).
 * Returns 0 or -1. */
int sb_crm_user_by_email(sb_crm_t *c, const char *email, char *id_out);

/* Earliest date for Get Deleted (the store's creation or last reset). */
int64_t sb_crm_epoch_ms(const sb_crm_t *c);

/* ---- writes ---- */

typedef enum { SB_WR_CREATE, SB_WR_UPDATE, SB_WR_UPSERT } sb_wr_op_t;

/* Context of one write: who, when, and the per-record fault injection. */
typedef struct sb_wctx_s {
    const char *user_id; /* LastModifiedById / CreatedById / default OwnerId */
    int system;          /* an automated change: bumps SystemModstamp only */
    int64_t now_ms;      /* wall clock of the change (truncated to seconds by the store) */
    /* returns 1 when this record should fail with UNABLE_TO_LOCK_ROW; may be NULL */
    int (*lock_row)(void *opaque);
    void *lock_opaque;
} sb_wctx_t;

typedef struct sb_wstats_s {
    unsigned created[SB_CRM_NOBJ], updated[SB_CRM_NOBJ];
    unsigned touched[SB_CRM_NOBJ]; /* records of each type in the request */
} sb_wstats_t;

/* A collection write. records is the "records" array of the request (borrowed). For UPSERT,
 * type/ext_field name the URI's object and key field. Returns the response body (new reference)
 * and sets *status: 200 with one result per record, or a 400 error array (nothing written).
 * Bodies that the real API rejects as a whole (unknown type or field, a value of the wrong
 * JSON type, more than 200 records) get the 400. */
json_t *sb_crm_write(sb_crm_t *c, sb_wr_op_t op, json_t *records, int all_or_none, const char *type,
                     const char *ext_field, const sb_wctx_t *ctx, int *status, sb_wstats_t *st);

/* Marks a record deleted. Returns 0, or -1 when not found / malformed (*status 404/400) with
 * the error body in *err (new reference). */
int sb_crm_delete(sb_crm_t *c, const char *type, const char *id, const sb_wctx_t *ctx, int *status,
                  json_t **err);

/* ---- reads ---- */

/* GET sobjects/{type}/{id}?fields= (fields may be NULL: every field). key_field NULL means id is
 * a record id, else an external-id value of that field. Returns the record (new reference) with
 * *status 200, or an error array with *status 400/404. */
json_t *sb_crm_get(sb_crm_t *c, const char *version, const char *type, const char *key_field,
                   const char *id, const char *fields, int *status);

/* GET composite/sobjects/{type}?ids=&fields=: array in id order, null for unknown ids. */
json_t *sb_crm_retrieve(sb_crm_t *c, const char *version, const char *type, const char *ids,
                        const char *fields, int *status);

/* SOQL query. batch is the page size (1..2000). Returns {totalSize, done, records[,
 * nextRecordsUrl]} or a 400 error array. *object (may be NULL) gets the queried object's name
 * (static storage) when it is known. */
json_t *sb_crm_query(sb_crm_t *c, const char *version, const char *soql, int batch, int *status,
                     const char **object);

/* Query More: locator is "<locator>-<offset>"; batch 0 = the page size of the query. */
json_t *sb_crm_query_more(sb_crm_t *c, const char *version, const char *locator, int batch,
                          int *status);

json_t *sb_crm_describe(sb_crm_t *c, const char *version, const char *type, int *status);
json_t *sb_crm_describe_global(const char *version);

/* Get Updated / Get Deleted. start/end are the raw parameters. */
json_t *sb_crm_updated(sb_crm_t *c, const char *type, const char *start, const char *end,
                       int64_t now_ms, int *status);
json_t *sb_crm_deleted(sb_crm_t *c, const char *type, const char *start, const char *end,
                       int64_t now_ms, int *status);

/* Every record of every object (deleted ones flagged), for /sandbox/snapshot. */
json_t *sb_crm_snapshot(sb_crm_t *c);

/* Number of live records per object, for stats. */
void sb_crm_counts(sb_crm_t *c, size_t out[SB_CRM_NOBJ]);

/* Top-level Salesforce error array [{"message":..., "errorCode":..., "fields"?}]. fields may be
 * NULL (omitted). */
json_t *sb_sf_error(const char *code, const char *message, const char *field);

#endif
