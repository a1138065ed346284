/* cs_state: the sync consumer's in-memory state, one record per prospect of the
 * partitions this replica owns.
 *
 * Layout is chosen for the hot path and for memory (the target is <= 300 bytes per tracked
 * prospect): records are fixed-stride (header + one cs_fstate_t per mapped field) in one
 * growable array addressed by index; keys live in one growable byte arena; an open-addressed
 * table of (index, hash tag) pairs finds a key with one probe sequence. Field values are
 * NOT kept: a field is remembered by a 32-bit hash of its value, the source time of that
 * value and the side it came from; that is enough to tell whether an event changes
 * anything. Values travel in the events and, while a prospect waits to be pushed, in its
 * sync-queue entry.
 *
 * Indices are stable until cs_store_drop_partitions(), which compacts; pointers returned by
 * cs_store_at() are valid only until the next insert. Single-threaded (the consumer loop). */
#ifndef CS_STATE_H
#define CS_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "cs_fields.h"

#define CS_NONE UINT32_MAX

/* Per-field memory: hash of the value (0 = never seen), its source time (ms since epoch). */
typedef struct __attribute__((packed)) cs_fstate_s {
    int64_t time;
    uint32_t hash;
} cs_fstate_t;

enum {
    CS_PS_DO_NOT_SYNC = 1u << 0,
    CS_PS_HAS_PROSPECT_ID = 1u << 1,
    CS_PS_ASSIGNED = 1u << 2,
    CS_PS_SEEN_MARKETING = 1u << 3, /* a marketing event was seen (the prospect exists) */
    CS_PS_WAITING = 1u << 4,        /* dirty but parked: see wait reason */
    CS_PS_NEEDS_FETCH = 1u << 5,    /* values must be read from the marketing API first */
    CS_PS_LINK_SURE = 1u << 6,      /* the linked record is the one the match picks (a contact,
                                       a match result, or written by us); a lead linked from
                                       the CRM stream is matched once more before the first
                                       write, in case its contact is simply not read yet */
};

/* cs_pstate_t.log_dirty: whether the next commit point writes the prospect's state record. */
enum {
    CS_LOG_CLEAN = 0,  /* not listed: nothing changed since its last record */
    CS_LOG_DIRTY = 1,  /* listed: the persisted part changed since its last record */
    CS_LOG_WRITTEN = 2 /* listed, but written since (right after its push): skipped */
};

/* Which CRM record a prospect is linked to. */
typedef enum {
    CS_LINK_NONE = 0,
    CS_LINK_LEAD = 1,
    CS_LINK_CONTACT = 2,
} cs_link_t;

/* Why a prospect with changes is not being pushed (for the admin view). */
typedef enum {
    CS_WAIT_NONE = 0,
    CS_WAIT_UNASSIGNED,  /* unmatched in the CRM and not assigned: no lead may be created */
    CS_WAIT_NO_EMAIL,    /* CRM record without an email */
    CS_WAIT_NO_PROSPECT, /* CRM record with no prospect, auto_create_prospects off */
    CS_WAIT_ERROR,       /* gave up after the retry limit; see the errors topic */
    CS_WAIT_DO_NOT_SYNC,
} cs_wait_t;

typedef struct cs_pstate_s {
    uint32_t key_off; /* into the key arena */
    uint16_t key_len;
    uint16_t partition;
    /* --- working state: not persisted on its own (see cs_pstate_persisted) --- */
    uint32_t queue;     /* sync-queue entry, or CS_NONE */
    uint32_t dirty_crm; /* fields whose value must be pushed to the CRM */
    uint32_t dirty_mkt; /* fields whose value must be pushed to the marketing system */
    uint16_t log_dirty; /* CS_LOG_*: listed for the next commit point's changelog record */
    uint16_t stashed;   /* an event of it waits for the batch being pushed (cs_sync busy) */
    int64_t updated_at; /* newest marketing updatedAt seen */
    int64_t last_activity_at;
    int64_t crm_last_modified; /* newest CRM LastModifiedDate seen for the linked record */
    /* --- persisted: a change here calls for a new changelog record --- */
    uint32_t flags;    /* CS_PS_* */
    uint32_t side_crm; /* bit i set: field i's remembered value came from the CRM */
    int64_t prospect_id;
    int64_t mkt_watermark; /* newest marketing time included in the last push to the CRM */
    int64_t crm_watermark; /* newest CRM time included in the last push to marketing */
    int64_t assigned_user_id;
    char crm_id[18];
    uint8_t crm_object;   /* cs_link_t */
    uint8_t wait;         /* cs_wait_t */
    cs_fstate_t fields[]; /* one per mapped field */
} cs_pstate_t;

typedef struct cs_store_s cs_store_t;

/* nfields: mapped fields per record (cs_fieldmap_t.n). Returns NULL on ENOMEM.
 * Caller frees with cs_store_destroy(). */
cs_store_t *cs_store_new(int nfields);
void cs_store_destroy(cs_store_t *s); /* accepts NULL */

/* 64-bit hash of a key (also used to pick the hash tag). */
uint64_t cs_hash64(const void *data, size_t len);

/* 32-bit value hash used in cs_fstate_t; never 0 (0 means "never seen"); NULL -> 1. */
uint32_t cs_value_hash(const char *v, size_t len);

/* Offset of the persisted part of a record (flags .. fields[]). */
#define CS_PSTATE_PERSISTED_OFF offsetof(cs_pstate_t, flags)

/* Finds a key: its index or CS_NONE. */
uint32_t cs_store_find(const cs_store_t *s, const char *key, size_t len);

/* Finds or inserts a key (new records are zeroed, queue = CS_NONE). *created says which.
 * Returns the index, or CS_NONE on ENOMEM or a key longer than 65535 bytes. */
uint32_t cs_store_upsert(cs_store_t *s, const char *key, size_t len, int partition, int *created);

/* The record at idx; valid until the next insert. */
cs_pstate_t *cs_store_at(const cs_store_t *s, uint32_t idx);

/* The key of a record (not NUL-terminated); valid until the next insert. */
const char *cs_store_key(const cs_store_t *s, uint32_t idx, size_t *len);

/* Removes every record whose partition p has drop[p] != 0 (p < ndrop) and compacts: indices
 * of the remaining records change. Dropped records must not be in the sync queue. */
void cs_store_drop_partitions(cs_store_t *s, const uint8_t *drop, size_t ndrop);

/* Number of records, and the bytes the store holds (records, keys, table). */
size_t cs_store_count(const cs_store_t *s);
size_t cs_store_bytes(const cs_store_t *s);
size_t cs_store_record_size(const cs_store_t *s);

#endif
