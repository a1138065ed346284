/* sb_crm_int: what sb_crm.c, sb_crm_query.c and sb_crm_schema.c share. Not for other modules. */
#ifndef SB_CRM_INT_H
#define SB_CRM_INT_H

#include "sb_crm.h"
#include "sb_util.h"

#include <pthread.h>

typedef struct sb_rec_s {
    const sb_sobj_t *obj;
    char id[19];
    json_t *v; /* stored fields by API name; date-times as integer epoch ms */
    int deleted;
    int64_t deleted_ms;
    char *email_key; /* lower-cased e-mail in by_email, or NULL */
    char *ext_key;   /* lower-cased external id in by_ext, or NULL */
    uint64_t seq;    /* creation order */
} sb_rec_t;

typedef struct sb_cursor_s {
    char locator[19];
    json_t *records; /* the whole rendered result */
    int batch;       /* page size of the query, for Query More without the header */
    int64_t last_used_ms;
} sb_cursor_t;

struct sb_crm_s {
    pthread_rwlock_t lock;
    sb_map_t *by_id; /* every record, deleted too */
    sb_map_t *by_email[SB_CRM_NOBJ];
    sb_map_t *by_ext[SB_CRM_NOBJ];
    sb_rec_t **recs[SB_CRM_NOBJ];
    size_t nrecs[SB_CRM_NOBJ], caprecs[SB_CRM_NOBJ];
    uint64_t next_seq;
    uint64_t next_id; /* never reset, so ids are never reused */
    char integration_id[19];
    int64_t epoch_ms;

    pthread_mutex_t cur_lock; /* query locators */
    sb_map_t *cursors;
    sb_cursor_t **curlist;
    size_t ncur, capcur;
    uint64_t next_locator;
};

/* The object's external-id field (at most one per object here), or NULL. */
const sb_field_t *sb_crm_ext_field(const sb_sobj_t *o);

/* Value of f on r as a new reference (json null when unset). */
json_t *sb_rec_value(const sb_rec_t *r, const sb_field_t *f);

/* Value in wire form (date-times as strings). Steals v. */
json_t *sb_wire_value(const sb_field_t *f, json_t *v);

/* Renders r as {"attributes":{type,url}, field: value ...} with the given fields (every field
 * of the object when fields == NULL). */
json_t *sb_rec_render(const sb_rec_t *r, const sb_field_t *const *fields, size_t n,
                      const char *version);

/* Parses a comma-separated field list for o into a malloc'd array (*n entries). On an unknown
 * field returns NULL with *bad pointing into a malloc'd copy of the name (caller frees). */
const sb_field_t **sb_crm_parse_fields(const sb_sobj_t *o, const char *list, size_t *n, char **bad);

/* Live record by 18-char id (and of type o when o != NULL); caller holds the lock. */
sb_rec_t *sb_crm_find(sb_crm_t *c, const char *id18, const sb_sobj_t *o);

void sb_crm_cursors_clear(sb_crm_t *c);

/* "No such column 'X' on entity 'Lead'. ..." */
json_t *sb_err_no_column(const char *field, const char *entity);

#endif
