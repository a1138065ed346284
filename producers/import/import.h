/* crmsync-import: CSV rows -> ProspectChange records with cause IMPORT.
 *
 * import_map.c maps the header row to prospect fields and turns each data row into an Avro
 * record (pure: no Kafka, no I/O), import_main.c reads the file, publishes, shows progress
 * and prints the summary. */
#ifndef IMPORT_H
#define IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cs_avro.h"
#include "cs_csv.h"

/* The prospect fields a column can map to, in ProspectChange order. */
typedef enum {
    IM_EMAIL = 0,
    IM_FIRST_NAME,
    IM_LAST_NAME,
    IM_COMPANY,
    IM_PHONE,
    IM_JOB_TITLE,
    IM_SCORE,
    IM_GRADE,
    IM_OPTED_OUT,
    IM_ASSIGNED_USER_ID,
    IM_DO_NOT_SYNC,
    IM_PROSPECT_ID,
    IM_FIELD_COUNT_,
    IM_CUSTOM = 100, /* a column kept in custom_fields under its header name */
    IM_IGNORED = 101 /* a column dropped (import.unknown_columns=ignore, or no name) */
} im_field_t;

/* What happens to a column whose header is not a prospect field. */
typedef enum { IM_UNKNOWN_CUSTOM = 0, IM_UNKNOWN_IGNORE, IM_UNKNOWN_ERROR } im_unknown_t;

typedef enum { IM_KEY_EMAIL = 0, IM_KEY_ID } im_key_mode_t;

#define IM_MAX_COLUMNS 4096

typedef struct im_map_s {
    size_t ncols;
    int kind[IM_MAX_COLUMNS];                 /* im_field_t of each column */
    char *name[IM_MAX_COLUMNS];               /* header text (trimmed) of each column; owned */
    int col[IM_FIELD_COUNT_];                 /* column of each prospect field, -1 when absent */
    const char *changed[IM_FIELD_COUNT_ + 1]; /* crmsync names of the mapped fields */
    size_t nchanged, ncustom, nignored;
} im_map_t;

/* The crmsync name of a field ("first_name"). Static. */
const char *im_field_name(int f);

/* Which field a header names, comparing case-insensitively and ignoring ' ', '_' and '-':
 * crmsync names (first_name) and Account Engagement v5 names (firstName, assignedToId, id)
 * both match. Returns the im_field_t, or -1. */
int im_field_lookup(const char *header);

/* Maps a header record. Unknown columns follow `unknown`; a header without an email column,
 * or two columns naming one field, is an error (errstr says which columns). In key mode ID
 * the prospect id column is required too. Returns CS_OK or CS_ERR_PARSE. Warnings (ignored
 * columns) go to the log. Free the names with im_map_free(). */
int im_map_header(im_map_t *m, const cs_csv_record_t *hdr, im_unknown_t unknown,
                  im_key_mode_t key_mode, char *errstr, size_t errstr_size);

void im_map_free(im_map_t *m);

typedef struct im_row_ctx_s {
    const im_map_t *map;
    im_key_mode_t key_mode;
    const char *import_id; /* event ids are "import:<import_id>:<line>" */
    int64_t updated_at;    /* the import's start: the same for every row */
    int64_t event_time;    /* now */
} im_row_ctx_t;

/* Fills v (an encoder's ProspectChange value, already reset) from a data row and writes the
 * prospect key into key. Returns CS_OK, or CS_ERR_PARSE with the reason for the rejection in
 * reason (wrong column count, invalid email, bad number or boolean, ...). */
int im_row_fill(const im_row_ctx_t *ctx, const cs_csv_record_t *row, avro_value_t *v, char *key,
                size_t keysize, char *reason, size_t reason_size);

#endif
