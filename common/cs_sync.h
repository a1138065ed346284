/* cs_sync: the sync rules. Pure functions over the state store and the sync queue: no I/O,
 * no Kafka, no HTTP, so every rule of the design brief is unit-testable.
 *
 * An event (decoded from any input topic into cs_event_t, borrowing the Avro buffers) is
 * classified (trigger or not), compared with the prospect's remembered field hashes,
 * per-field source times and per-side watermarks, and either dropped (counted as ignored,
 * deduplicated, blocked, ...) or folded into the prospect's sync-queue entry with the
 * direction(s) it needs. See docs/ARCHITECTURE.md, "The sync algorithm". */
#ifndef CS_SYNC_H
#define CS_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "cs_avro.h" /* cs_cause_t, cs_activity_type_t: the schemas' enums */
#include "cs_fields.h"
#include "cs_queue.h"
#include "cs_state.h"

/* A borrowed string; p == NULL means null / absent. */
typedef struct cs_strv_s {
    const char *p;
    uint32_t len;
} cs_strv_t;

typedef enum {
    CS_EV_PROSPECT = 0, /* index into the queue entry's min_offset[] too */
    CS_EV_ACTIVITY = 1,
    CS_EV_CRM = 2,
} cs_ev_kind_t;

#define CS_KEEP_ASSIGNMENT (-2) /* assigned_user_id of an event that does not carry it */

typedef struct cs_event_s {
    cs_ev_kind_t kind;
    cs_strv_t key;
    int64_t time;       /* source time: updatedAt, occurred_at or LastModifiedDate (ms) */
    int64_t event_time; /* when the producer made the event (wall ms), for latency */
    int32_t partition;
    int64_t offset;
    /* marketing prospect */
    cs_cause_t cause;
    int64_t prospect_id;      /* -1 unknown */
    int64_t last_activity_at; /* 0 none */
    int64_t assigned_user_id; /* -1 unassigned, CS_KEEP_ASSIGNMENT not carried */
    int do_not_sync;          /* 0, 1, or -1: not carried (keep the state's flag) */
    cs_strv_t crm_lead_id, crm_contact_id;
    int64_t updated_by_id; /* the marketing user who made this version (updatedById); 0 unknown */
    /* activity */
    cs_activity_type_t activity;
    int identified;
    int score_delta;
    /* CRM */
    cs_link_t crm_object;
    cs_strv_t crm_id;
    cs_strv_t last_modified_by;
    int64_t ext_prospect_id; /* the record's external id (the prospect id crmsync wrote), -1 */
    int deleted;
    /* mapped field values (marketing or CRM side, per kind). The owner is always in the CRM
     * user-id space (a marketing assignee is mapped before this), so both sides compare. */
    uint32_t present; /* bit f: the event carries field f (its value may be null) */
    cs_strv_t values[CS_FIELDS_MAX];
} cs_event_t;

typedef enum {
    CS_R_BUSY = -1,   /* not applied: the prospect is in a batch being pushed (busy_check);
                         apply it again once the batch is done */
    CS_R_IGNORED = 0, /* not a trigger (email open, anonymous view, ...) */
    CS_R_DEDUP,       /* changes nothing: same values, stale, or covered by a watermark */
    CS_R_QUEUED,      /* the prospect entered the sync queue */
    CS_R_COALESCED,   /* folded into the prospect's existing queue entry */
    CS_R_BLOCKED,     /* do-not-sync */
    CS_R_WAITING,     /* recorded, but parked (no email, no prospect and no auto-create) */
    CS_R_UNLINKED,    /* a CRM record that is not the one linked to the prospect */
    CS_R_NOMEM,
    CS_R_COUNT_
} cs_result_t;

const char *cs_result_name(cs_result_t r);

typedef struct cs_sync_s {
    cs_store_t *store;
    cs_queue_t *queue;
    const cs_fieldmap_t *fm;
    int sync_email_changes;
    int auto_create_prospects;
    char self_user[19];    /* the CRM user crmsync writes as ("" until known): its changes are
                              echoes of our own writes */
    int64_t self_mkt_user; /* the marketing user crmsync writes as (0 until known, the user
                              linked to self_user): its prospect versions are echoes too */
    int64_t hold_ms;       /* how long a CRM change under a key with no prospect snapshot read waits
                              for one (HELD) before it counts as an email change (a record crmsync
                              stamped) or as a record with no prospect (any other) */
    uint64_t results[CS_R_COUNT_]; /* events by outcome */
    /* set while a batch is being pushed and events are read meanwhile: an event of a prospect
     * whose entry is in the batch (CS_QL_INFLIGHT), or which already has an event set aside,
     * changes nothing, marks the prospect (stashed) and returns CS_R_BUSY: the caller keeps
     * it and applies it (busy_check off) after the batch, in reading order */
    int busy_check;
    /* records whose persisted part changed (log_dirty set): the consumer writes them to the
     * changelog and clears the list (cs_sync_log_clear) before it commits offsets */
    uint32_t *logq;
    size_t nlog, caplog;
} cs_sync_t;

/* Marks record st for the changelog (once until cleared). Returns CS_OK or CS_ERR_NOMEM. */
int cs_sync_log_mark(cs_sync_t *s, uint32_t st);

/* Clears log_dirty on every listed record and empties the list. */
void cs_sync_log_clear(cs_sync_t *s);

/* Frees the list. */
void cs_sync_free(cs_sync_t *s);

/* Is this activity a sync trigger? (intent: forms, form handlers, landing pages, tracked
 * link clicks, identified page views, unsubscribes; or any activity changing the score) */
int cs_activity_is_trigger(cs_activity_type_t type, int identified, int score_delta);

/* Applies one event. now_ms is the monotonic clock (linger). Never fails except on ENOMEM. */
cs_result_t cs_sync_apply(cs_sync_t *s, const cs_event_t *ev, int64_t now_ms);

/* Outcome of a push of entry e (taken from the queue) to one side: that side's pending
 * field values become the remembered ones, its dirty fields clear, and the side's watermark
 * moves to the newest source time the entry covered. When no direction is left dirty the entry is
 * removed (and CS_NONE stored in the state); returns 1 when the entry was removed. */
int cs_sync_pushed(cs_sync_t *s, uint32_t e, int to_crm);

/* Parks a prospect: records why it waits and drops its queue entry with its pending values
 * (the state record keeps what was last pushed, so the next snapshot finds the changes
 * again). */
void cs_sync_park(cs_sync_t *s, uint32_t e, cs_wait_t why);

/* Ends the holds that expired by now_ms (monotonic): entries of CRM changes read before any
 * snapshot of their prospect that none came for. A record crmsync stamped with a prospect id
 * had its email changed in the CRM: that change is released to READY when email changes are
 * applied (the other fields agreed as they are), else dropped. Any other record has no
 * prospect: dropped, the prospect waits (CS_WAIT_NO_PROSPECT). Returns how many ended. */
size_t cs_sync_release_held(cs_sync_t *s, int64_t now_ms);

/* Formats ms since epoch as Salesforce's "2026-11-25T07:40:00.000+0000" (28 characters). */
void cs_format_time(int64_t ms, char out[40]);

#endif
