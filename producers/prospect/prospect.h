/* crmsync-prospect-producer: polls the marketing API (Account Engagement v5) for prospects
 * changed since its cursor and publishes one ProspectChange per changed prospect.
 * See docs/PRODUCERS.md. */
#ifndef PROSPECT_H
#define PROSPECT_H

#include "pr_runtime.h"

#include "cs_fields.h"

typedef struct pp_s {
    pr_t pr;
    pr_cursor_t *cursor;
    char *fields;          /* the v5 fields= list, malloc'd */
    long page_size;        /* limit= */
    const char *dns_field; /* do-not-sync field (v5 name) or NULL */
    cs_fieldmap_t fm;      /* custom fields: fm.f[CS_F_DEFAULT_COUNT_..n).mkt_name */
} pp_t;

/* Options of the program (add to pr_init as prog_opts). */
extern const cs_opt_t pp_opts[];

/* Builds the fields list and the cursor from pp->pr.conf. Returns CS_OK or CS_ERR_CONFIG /
 * CS_ERR_NOMEM with errstr. */
int pp_setup(pp_t *pp, char *errstr, size_t errstr_size);

/* One poll (a pr_poll_fn; opaque = the pp_t). */
int pp_poll(pr_t *pr, void *opaque);

/* Maps one v5 prospect (a JSON object) to a ProspectChange in the encoder's value and
 * publishes it, skips it (already handled) or rejects it (no usable key or updatedAt).
 * Returns CS_OK or the batch error. */
int pp_handle(pp_t *pp, json_t *rec);

void pp_free(pp_t *pp);

#endif
