/* cs_fields: the field mapping between the marketing system and the CRM.
 *
 * Every mapped field has an id (its index), a marketing API name (Account Engagement v5),
 * a CRM API name (Salesforce), and a sync behaviour deciding which side wins a conflict:
 *   most_recent    (default) the value with the newer source time wins;
 *   crm_wins       CRM changes are applied to the marketing side; marketing changes are
 *                  sent to the CRM only when creating a record;
 *   marketing_wins the mirror image.
 * The default fields come first in a fixed order (CS_F_*); configured custom fields follow.
 * A field is one-way when one side has no name for it (score, grade and last activity
 * live in the marketing system and are copied into CRM custom fields). */
#ifndef CS_FIELDS_H
#define CS_FIELDS_H

#include <stddef.h>

#include "cs_conf.h"

typedef enum {
    CS_F_EMAIL = 0,
    CS_F_FIRST_NAME,
    CS_F_LAST_NAME,
    CS_F_COMPANY,
    CS_F_PHONE,
    CS_F_TITLE,
    CS_F_OPTED_OUT,
    CS_F_OWNER, /* marketing assignedToId <-> CRM OwnerId, through the user mapping */
    CS_F_SCORE,
    CS_F_GRADE,
    CS_F_LAST_ACTIVITY,
    CS_F_DEFAULT_COUNT_
} cs_field_id_t;

#define CS_FIELDS_MAX 32 /* default + custom fields (bit masks are 32 bits wide) */

typedef enum {
    CS_WINS_MOST_RECENT = 0,
    CS_WINS_CRM,
    CS_WINS_MARKETING,
} cs_wins_t;

typedef struct cs_field_s {
    const char *name;     /* crmsync's own name, also used in SyncState ("first_name") */
    const char *mkt_name; /* Account Engagement v5 name ("firstName"); NULL = not synced */
    const char *crm_name; /* Salesforce field ("FirstName"); NULL = not synced */
    cs_wins_t wins;
    int is_bool;     /* value is "true"/"false" */
    int is_number;   /* value is a decimal integer */
    int is_datetime; /* value is ISO-8601 */
} cs_field_t;

typedef struct cs_fieldmap_s {
    cs_field_t f[CS_FIELDS_MAX];
    int n;
} cs_fieldmap_t;

/* Options: fields.<name>.wins, fields.custom (comma list of mkt_name:CRM_Name__c),
 * crm.field.score / crm.field.grade / crm.field.last_activity. Add with cs_conf_add_opts. */
extern const cs_opt_t cs_fields_opts[];

/* Fills fm from conf (which includes cs_fields_opts). Returns CS_OK or CS_ERR_CONFIG with
 * errstr naming the bad option. Strings borrow from conf. */
int cs_fieldmap_init(cs_fieldmap_t *fm, const cs_conf_t *conf, char *errstr, size_t n);

/* Defaults only (tests and tools without a config). */
void cs_fieldmap_defaults(cs_fieldmap_t *fm);

/* Index of a field by crmsync name, marketing name or CRM name; -1 if none. */
int cs_fieldmap_find(const cs_fieldmap_t *fm, const char *name);

const char *cs_wins_name(cs_wins_t w);

#endif
