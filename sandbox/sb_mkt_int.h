/* sb_mkt_int: what sb_mkt.c and sb_mkt_query.c share. Not for other modules. */
#ifndef SB_MKT_INT_H
#define SB_MKT_INT_H

#include "sb_mkt.h"
#include "sb_util.h"

#include <pthread.h>

typedef enum { MT_INT, MT_STR, MT_EMAIL, MT_BOOL, MT_DT } mtype_t;

#define MF_W 0x01    /* writable through the API */
#define MF_CONN 0x02 /* connector-owned: writable unless strict_readonly */
#define MF_FILT 0x04 /* query filters (ranges for ints and date-times, equality for text) */
#define MF_SORT 0x08 /* orderBy */
#define MF_NULL 0x10 /* may be written as null */
#define MF_COMP 0x20 /* computed when read */

typedef struct mfield_s {
    const char *name;
    mtype_t type;
    unsigned flags;
} mfield_t;

typedef struct mobj_s {
    const char *name; /* URL segment */
    const mfield_t *fields;
    size_t nfields;
    int idx;
} mobj_t;

#define MO_PROSPECTS 0
#define MO_ACTIVITIES 1
#define MO_USERS 2
#define MO_N 3

typedef struct mrec_s {
    int64_t id;
    json_t *v; /* field -> value; date-times as integer epoch ms */
    int deleted;
    char *email_key;
} mrec_t;

struct sb_mkt_s {
    pthread_rwlock_t lock;
    sb_mkt_opts_t o; /* strings copied */
    mrec_t **recs[MO_N];
    size_t n[MO_N], cap[MO_N];
    int64_t next_id[MO_N];
    sb_map_t *by_email; /* prospects */
};

const mobj_t *sb_mobj(const char *name);
const mobj_t *sb_mobj_at(int idx);
const mfield_t *sb_mfield(const mobj_t *o, const char *name);

/* Record with this id (deleted ones too) or NULL; caller holds the lock. */
mrec_t *sb_mkt_find(sb_mkt_t *m, int idx, int64_t id);

/* The record's value of f, in wire form (new reference). */
json_t *sb_mkt_wire(sb_mkt_t *m, const mobj_t *o, const mrec_t *r, const mfield_t *f);

/* Renders the chosen fields (all when fields == NULL). */
json_t *sb_mkt_render(sb_mkt_t *m, const mobj_t *o, const mrec_t *r, const mfield_t *const *fields,
                      size_t n);

/* Parses a comma-separated field list; on error returns NULL with the v5 error in *err. */
const mfield_t **sb_mkt_parse_fields(const mobj_t *o, const char *list, size_t *n, json_t **err);

#endif
