/* cs_queue: the sync queue. A set of prospects waiting to be pushed: one entry per
 * prospect however many events arrive for it (the state record points at its entry).
 *
 * Entries live in a pool reused through a free list (no allocation per event once warm) and
 * move between lists: READY (FIFO by first enqueue), PRIO (sync-now: taken first), INFLIGHT
 * (taken into a batch), RETRY (backing off after an error, until retry_at), HELD (a CRM
 * change waiting for the prospect's snapshot, until hold_until: see cs_sync_release_held;
 * FIFO, and so in hold_until order, as every hold is as long). While queued, an
 * entry holds the latest value of each dirty field, the newest source time of each side
 * that its values cover, and the lowest input offset of each input topic that made it
 * dirty: the consumer never commits past that offset until the entry is resolved.
 * Single-threaded (the consumer loop). */
#ifndef CS_QUEUE_H
#define CS_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "cs_fields.h"
#include "cs_state.h"

#define CS_QUEUE_INPUTS 3 /* prospect, activity and CRM topics */

typedef enum {
    CS_QL_FREE = 0,
    CS_QL_READY,
    CS_QL_PRIO,
    CS_QL_INFLIGHT,
    CS_QL_RETRY,
    CS_QL_HELD,
    CS_QL_COUNT_
} cs_qlist_t;

typedef struct cs_qentry_s {
    uint32_t state; /* cs_store_t index */
    uint32_t prev, next;
    uint8_t list; /* cs_qlist_t */
    uint8_t sync_now;
    uint16_t attempts;
    int64_t enqueued_ms;                 /* monotonic time of the first enqueue (linger) */
    int64_t first_event_ms;              /* wall time of the oldest event folded in (latency) */
    int64_t retry_at;                    /* monotonic ms, in RETRY */
    int64_t mkt_time;                    /* newest marketing source time covered */
    int64_t crm_time;                    /* newest CRM source time covered */
    int64_t min_offset[CS_QUEUE_INPUTS]; /* -1 = none */
    /* values of dirty fields, in buf */
    char *buf;
    uint32_t buf_len, buf_cap;
    uint32_t has_value; /* bit i: a value for field i is held (possibly null) */
    uint32_t is_null;   /* bit i: that value is null */
    uint32_t voff[CS_FIELDS_MAX];
    uint16_t vlen[CS_FIELDS_MAX];
    char last_error[96]; /* last per-record error (code: message), for retries */
    int64_t hold_until;  /* in HELD: released by this time (monotonic ms) at the latest */
    /* Accepted but not yet pushed: the field memory the state record takes on when the
     * push succeeds (cs_sync_pushed). Until then the record keeps what was last pushed, so
     * the changelog never claims a change that is not in the other system. */
    uint32_t pside_crm; /* bit i: pending value of field i came from the CRM */
    uint32_t phash[CS_FIELDS_MAX];
    int64_t ptime[CS_FIELDS_MAX];
    /* The two values of the same side that field i's pending value replaced while it waited
     * (newest first; 0 = none): the other system showing one of them is our earlier write of
     * it coming back (one whose success was never recorded: a crash, a lost changelog), not
     * a change newer than the pending value (see cs_sync.c). */
    uint32_t shash[CS_FIELDS_MAX][2];
} cs_qentry_t;

typedef struct cs_queue_s cs_queue_t;

/* Returns NULL on ENOMEM. Caller frees with cs_queue_destroy(). */
cs_queue_t *cs_queue_new(void);
void cs_queue_destroy(cs_queue_t *q); /* accepts NULL */

/* A new entry for state index st in READY (or PRIO when sync_now), or CS_NONE on ENOMEM. */
uint32_t cs_queue_add(cs_queue_t *q, uint32_t st, int64_t now_ms, int sync_now);

cs_qentry_t *cs_queue_entry(const cs_queue_t *q, uint32_t e);

/* Records the value of field f (v == NULL: null). Returns CS_OK or CS_ERR_NOMEM. */
int cs_queue_set_value(cs_queue_t *q, uint32_t e, int f, const char *v, size_t len);

/* The held value of field f: NULL when null or not held (see has_value); valid until the
 * next cs_queue_set_value() on the entry. */
const char *cs_queue_value(const cs_queue_t *q, uint32_t e, int f, size_t *len);

/* Moves e to list l (PRIO entries keep their place when re-promoted). */
void cs_queue_move(cs_queue_t *q, uint32_t e, cs_qlist_t l);

/* Moves e to the front of list l (a batch that failed as a whole keeps its place). */
void cs_queue_move_front(cs_queue_t *q, uint32_t e, cs_qlist_t l);

/* Frees e (back to the pool). */
void cs_queue_remove(cs_queue_t *q, uint32_t e);

/* Takes up to max entries, PRIO first then (unless prio_only) READY, oldest first, that
 * match pred (NULL = all: > 0 take, 0 skip, < 0 stop looking in this list), moving them to
 * INFLIGHT. Returns the count written to out. */
size_t cs_queue_take(cs_queue_t *q, uint32_t *out, size_t max, int prio_only,
                     int (*pred)(void *opaque, uint32_t e), void *opaque);

/* Moves RETRY entries whose retry_at <= now_ms back to READY. Returns how many. */
size_t cs_queue_due(cs_queue_t *q, int64_t now_ms);

size_t cs_queue_len(const cs_queue_t *q, cs_qlist_t l);
size_t cs_queue_total(const cs_queue_t *q); /* every list but FREE */

/* How many entries from the head of list l (at most max) were enqueued at or before
 * cutoff_ms; stops at the first younger one (lists are kept in enqueue order). */
size_t cs_queue_count_before(const cs_queue_t *q, cs_qlist_t l, int64_t cutoff_ms, size_t max);

/* enqueued_ms of the oldest entry of list l, or -1 when empty. */
int64_t cs_queue_oldest(const cs_queue_t *q, cs_qlist_t l);

/* First entry of list l and the next one, for iteration (CS_NONE at the end). */
uint32_t cs_queue_first(const cs_queue_t *q, cs_qlist_t l);
uint32_t cs_queue_next(const cs_queue_t *q, uint32_t e);

#endif
