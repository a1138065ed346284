/* crmsync-crm-producer: polls the CRM (Salesforce REST) for leads and contacts changed since
 * its cursors (SOQL on SystemModstamp) and for deleted ones (Get Deleted), and publishes
 * CrmChange records. See docs/PRODUCERS.md. */
#ifndef CRM_H
#define CRM_H

#include "pr_runtime.h"

#include "cs_fields.h"

typedef struct cp_obj_s {
    char name[16];    /* "Lead" / "Contact" */
    int object;       /* CS_OBJECT_LEAD / CS_OBJECT_CONTACT */
    pr_cursor_t *mod; /* "<cursor.name>:<name>": SystemModstamp of changed records */
    pr_cursor_t *del; /* "<cursor.name>:<name>:deleted": Get Deleted's latestDateCovered */
    char *select;     /* "SELECT ... FROM <name>", malloc'd */
} cp_obj_t;

typedef struct cp_s {
    pr_t pr;
    cp_obj_t objs[2];
    int nobjs;
    int deletions;         /* poll Get Deleted too */
    const char *ext_field; /* external id field holding the prospect id */
    cs_fieldmap_t fm;      /* custom fields: fm.f[CS_F_DEFAULT_COUNT_..n).crm_name */
} cp_t;

/* Options of the program (add to pr_init as prog_opts). */
extern const cs_opt_t cp_opts[];

/* Reads crm.objects etc., builds the queries and the cursors. Returns CS_OK or
 * CS_ERR_CONFIG / CS_ERR_NOMEM with errstr. */
int cp_setup(cp_t *cp, char *errstr, size_t errstr_size);

/* One poll (a pr_poll_fn; opaque = the cp_t). */
int cp_poll(pr_t *pr, void *opaque);

/* Maps one SOQL record of obj to a CrmChange and publishes, skips or rejects it.
 * Returns CS_OK or the batch error. */
int cp_handle(cp_t *cp, cp_obj_t *obj, json_t *rec);

void cp_free(cp_t *cp);

#endif
