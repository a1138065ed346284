#include "cs_sync.h"
#include "cs_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cs_result_name(cs_result_t r)
{
    static const char *const names[CS_R_COUNT_] = {
        "ignored", "deduplicated", "queued", "coalesced", "blocked", "waiting", "unlinked", "nomem",
    };
    return r >= 0 && r < CS_R_COUNT_ ? names[r] : r == CS_R_BUSY ? "busy" : "unknown";
}

int cs_activity_is_trigger(cs_activity_type_t type, int identified, int score_delta)
{
    if (score_delta != 0)
        return 1; /* the score changed: a field change */
    switch (type) {
    case CS_ACTIVITY_FORM:
    case CS_ACTIVITY_FORM_HANDLER:
    case CS_ACTIVITY_LANDING_PAGE:
    case CS_ACTIVITY_TRACKED_LINK_CLICK:
    case CS_ACTIVITY_EMAIL_CLICK: /* a click on a tracked link in an email */
    case CS_ACTIVITY_UNSUBSCRIBE:
        return 1;
    case CS_ACTIVITY_PAGE_VIEW:
        return identified; /* anonymous page views are not */
    case CS_ACTIVITY_EMAIL_OPEN:
    case CS_ACTIVITY_EMAIL_SEND:
    case CS_ACTIVITY_VISITOR_SESSION:
    case CS_ACTIVITY_OTHER:
        break;
    }
    return 0;
}

void cs_format_time(int64_t ms, char out[40])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(ms % 1000));
}

/* The prospect's queue entry, created on first need. Returns CS_NONE on ENOMEM. */
static uint32_t entry_for(cs_sync_t *s, uint32_t st, int64_t now_ms, int sync_now, int *created)
{
    cs_pstate_t *p = cs_store_at(s->store, st);
    *created = 0;
    if (p->queue != CS_NONE) {
        cs_qentry_t *x = cs_queue_entry(s->queue, p->queue);
        if (sync_now && !x->sync_now) {
            x->sync_now = 1;
            if (x->list == CS_QL_READY)
                cs_queue_move(s->queue, p->queue, CS_QL_PRIO);
        }
        return p->queue;
    }
    uint32_t e = cs_queue_add(s->queue, st, now_ms, sync_now);
    if (e != CS_NONE) {
        p->queue = e;
        *created = 1;
    }
    return e;
}

static void note_event(cs_qentry_t *x, const cs_event_t *ev)
{
    if (x->min_offset[ev->kind] < 0 || ev->offset < x->min_offset[ev->kind])
        x->min_offset[ev->kind] = ev->offset;
    if (ev->event_time && (!x->first_event_ms || ev->event_time < x->first_event_ms))
        x->first_event_ms = ev->event_time;
    if (ev->kind == CS_EV_CRM) {
        if (ev->time > x->crm_time)
            x->crm_time = ev->time;
    } else if (ev->time > x->mkt_time) {
        x->mkt_time = ev->time;
    }
}

static int same_str(cs_strv_t a, const char *b, size_t blen)
{
    return a.p && a.len == blen && !memcmp(a.p, b, blen);
}

/* The memory of field f as the rules see it: the pending value while one waits to be
 * pushed, else what was last pushed (the state record). */
typedef struct eff_s {
    uint32_t hash;
    int64_t time;
    int from_crm;
} eff_t;

static eff_t effective(const cs_sync_t *s, const cs_pstate_t *p, int f)
{
    uint32_t bit = 1u << f;
    eff_t r;
    if (p->queue != CS_NONE && ((p->dirty_crm | p->dirty_mkt) & bit)) {
        const cs_qentry_t *x = cs_queue_entry(s->queue, p->queue);
        r.hash = x->phash[f];
        r.time = x->ptime[f];
        r.from_crm = (x->pside_crm & bit) != 0;
    } else {
        r.hash = p->fields[f].hash;
        r.time = p->fields[f].time;
        r.from_crm = (p->side_crm & bit) != 0;
    }
    return r;
}

/* Is h one of the values field f's pending value replaced while it waited? Such a value
 * showing up on the other side is crmsync's own earlier write of it coming back, stamped with
 * the write time: when the outcome of that write was never recorded (a replica killed, a
 * changelog record lost with the broker), nothing else tells it from an edit, and taking it
 * as the newest change would revert the pending value. Nobody edits a field to the value it
 * already shows, so an independent edit cannot look like this. */
static int superseded(const cs_sync_t *s, const cs_pstate_t *p, int f, uint32_t h)
{
    const cs_qentry_t *x;
    if (p->queue == CS_NONE)
        return 0;
    x = cs_queue_entry(s->queue, p->queue);
    return h == x->shash[f][0] || h == x->shash[f][1];
}

/* Field f's pending value is now the agreed one on both sides: the state record takes it
 * and nothing is left to push for it. */
static void converge(cs_sync_t *s, cs_pstate_t *p, int f)
{
    uint32_t bit = 1u << f;
    const cs_qentry_t *x = cs_queue_entry(s->queue, p->queue);
    p->fields[f].hash = x->phash[f];
    p->fields[f].time = x->ptime[f];
    p->side_crm = (p->side_crm & ~bit) | (x->pside_crm & bit);
    p->dirty_crm &= ~bit;
    p->dirty_mkt &= ~bit;
}

/* Drops the entry when nothing is left to push (not while it is in a batch). */
static void drop_if_clean(cs_sync_t *s, cs_pstate_t *p)
{
    if (p->queue == CS_NONE || p->dirty_crm || p->dirty_mkt)
        return;
    if (cs_queue_entry(s->queue, p->queue)->list == CS_QL_INFLIGHT)
        return;
    cs_queue_remove(s->queue, p->queue);
    p->queue = CS_NONE;
}

/* Records the accepted fields (take) as pending in the prospect's entry, with their values,
 * towards the CRM (to_crm) or the marketing system. */
static cs_result_t enqueue(cs_sync_t *s, uint32_t st, const cs_event_t *ev, uint32_t take,
                           const uint32_t *hashes, const cs_strv_t *values, int to_crm,
                           int64_t now_ms, int sync_now)
{
    int created;
    uint32_t e = entry_for(s, st, now_ms, sync_now, &created);
    cs_pstate_t *p = cs_store_at(s->store, st);
    if (e == CS_NONE)
        return CS_R_NOMEM;
    cs_qentry_t *x = cs_queue_entry(s->queue, e);
    for (int f = 0; f < s->fm->n; f++) {
        uint32_t bit = 1u << f;
        if (!(take & bit))
            continue;
        /* still pending from the same side: remember the value it replaces */
        int same_side = to_crm ? (p->dirty_crm & bit) && !(x->pside_crm & bit)
                               : (p->dirty_mkt & bit) && (x->pside_crm & bit);
        uint32_t old = x->phash[f];
        if (cs_queue_set_value(s->queue, e, f, values[f].p, values[f].len))
            return CS_R_NOMEM;
        x = cs_queue_entry(s->queue, e);
        if (!same_side) {
            x->shash[f][0] = x->shash[f][1] = 0;
        } else if (old != hashes[f]) {
            x->shash[f][1] = x->shash[f][0];
            x->shash[f][0] = old;
        }
        x->phash[f] = hashes[f];
        x->ptime[f] = ev->time;
        if (to_crm) {
            x->pside_crm &= ~bit;
            p->dirty_crm |= bit;
            p->dirty_mkt &= ~bit;
        } else {
            x->pside_crm |= bit;
            p->dirty_mkt |= bit;
            p->dirty_crm &= ~bit;
        }
    }
    note_event(x, ev);
    return created ? CS_R_QUEUED : CS_R_COALESCED;
}

/* Keeps the prospect's entry out of the batches (HELD) until its snapshot is read, for
 * hold_ms at most (cs_sync_release_held). An entry already on its way (in a batch, backing
 * off) is left where it is. */
static void hold(cs_sync_t *s, uint32_t st, int64_t now_ms)
{
    uint32_t e = cs_store_at(s->store, st)->queue;
    cs_qentry_t *x = cs_queue_entry(s->queue, e);
    if (x->list != CS_QL_READY)
        return;
    x->hold_until = now_ms + s->hold_ms;
    cs_queue_move(s->queue, e, CS_QL_HELD);
}

/* The snapshot came: a held entry goes on as if enqueued now (it lingers with the changes the
 * snapshot brings), and the rules compare the snapshot with its values as usual. */
static void unhold(cs_sync_t *s, cs_pstate_t *p, int64_t now_ms)
{
    cs_qentry_t *x;
    if (p->queue == CS_NONE || (x = cs_queue_entry(s->queue, p->queue))->list != CS_QL_HELD)
        return;
    x->hold_until = 0;
    x->enqueued_ms = now_ms;
    cs_queue_move(s->queue, p->queue, CS_QL_READY);
    if (p->wait == CS_WAIT_NO_PROSPECT)
        p->wait = CS_WAIT_NONE;
}

/* Marketing prospect change. */
static cs_result_t apply_prospect(cs_sync_t *s, uint32_t st, const cs_event_t *ev, int64_t now_ms)
{
    cs_pstate_t *p = cs_store_at(s->store, st);
    const cs_fieldmap_t *fm = s->fm;
    uint32_t take = 0, hashes[CS_FIELDS_MAX];
    int force = 0, sync_now = ev->cause == CS_CAUSE_SYNC_NOW;
    int echo = s->self_mkt_user > 0 && ev->updated_by_id == s->self_mkt_user;

    p->flags |= CS_PS_SEEN_MARKETING;
    unhold(s, p, now_ms);
    if (ev->prospect_id >= 0) {
        p->prospect_id = ev->prospect_id;
        p->flags |= CS_PS_HAS_PROSPECT_ID;
    }
    if (ev->time > p->updated_at)
        p->updated_at = ev->time;
    /* p->last_activity_at is the newest *trigger* activity seen (apply_activity); the
     * snapshot's lastActivityAt also counts email opens and is not used for syncing. */
    if (ev->assigned_user_id >= 0) {
        p->flags |= CS_PS_ASSIGNED;
        p->assigned_user_id = ev->assigned_user_id;
    } else if (ev->assigned_user_id != CS_KEEP_ASSIGNMENT) {
        p->flags &= ~CS_PS_ASSIGNED;
        p->assigned_user_id = 0;
    }
    /* The marketing system may already know the CRM record (a contact beats a lead). */
    if (p->crm_object != CS_LINK_CONTACT && ev->crm_contact_id.p && ev->crm_contact_id.len == 18) {
        memcpy(p->crm_id, ev->crm_contact_id.p, 18);
        p->crm_object = CS_LINK_CONTACT;
        p->flags |= CS_PS_LINK_SURE;
    } else if (p->crm_object == CS_LINK_NONE && ev->crm_lead_id.p && ev->crm_lead_id.len == 18) {
        memcpy(p->crm_id, ev->crm_lead_id.p, 18);
        p->crm_object = CS_LINK_LEAD;
    }

    if (ev->do_not_sync > 0 || (ev->do_not_sync < 0 && (p->flags & CS_PS_DO_NOT_SYNC))) {
        /* Blocks everything, sync-now included. Pending changes are withdrawn; the state
         * keeps what was last pushed, so what changed meanwhile is pushed once the flag is
         * lifted. */
        p->flags |= CS_PS_DO_NOT_SYNC;
        p->wait = CS_WAIT_DO_NOT_SYNC;
        if (p->queue != CS_NONE && cs_queue_entry(s->queue, p->queue)->list != CS_QL_INFLIGHT) {
            cs_queue_remove(s->queue, p->queue);
            p->queue = CS_NONE;
            p->dirty_crm = p->dirty_mkt = 0;
        }
        return CS_R_BLOCKED;
    }
    if (p->flags & CS_PS_DO_NOT_SYNC) {
        p->flags &= ~CS_PS_DO_NOT_SYNC;
        p->wait = CS_WAIT_NONE;
    }
    /* Parked because unassigned and unmatched: nothing to try until that changes (an
     * assignment, or a CRM record linked by the CRM stream). */
    if ((p->flags & CS_PS_WAITING) && p->wait == CS_WAIT_UNASSIGNED &&
        !(p->flags & CS_PS_ASSIGNED) && p->crm_object == CS_LINK_NONE)
        return CS_R_WAITING;

    /* Import rows and sync-now push every field, unless already covered by the marketing
     * watermark (a replay of an import writes nothing). */
    if ((ev->cause == CS_CAUSE_IMPORT || sync_now) && ev->time > p->mkt_watermark)
        force = 1;

    for (int f = 0; f < fm->n; f++) {
        uint32_t bit = 1u << f;
        if (!(ev->present & bit) || !fm->f[f].crm_name)
            continue;
        eff_t m = effective(s, p, f);
        uint32_t h = cs_value_hash(ev->values[f].p, ev->values[f].len);
        hashes[f] = h;
        if (m.hash == h) {
            /* Marketing now holds the value the CRM sent: that push is done. */
            if (p->dirty_mkt & bit)
                converge(s, p, f);
            if (force && ev->time > m.time)
                take |= bit;
            continue;
        }
        if (m.hash && ev->time <= m.time)
            continue; /* stale: older than the value remembered */
        /* A version crmsync's own marketing user made is our write coming back: its updatedAt
         * is the time of the write, not of the value, so it never wins "most recent". Without
         * this, an unrecorded write read back before the CRM events it came from (a kill
         * before the changelog record, then a restart) would look like a marketing edit. */
        if (echo && !force)
            continue;
        if (h == p->fields[f].hash && (p->dirty_mkt & bit))
            continue; /* still the agreed value here; the CRM's newer one is on its way */
        if ((p->dirty_mkt & bit) && superseded(s, p, f, h))
            continue; /* a CRM value the pending one replaced: our earlier write echoing */
        if (m.hash && fm->f[f].wins == CS_WINS_CRM && m.from_crm && p->crm_object != CS_LINK_NONE)
            continue; /* the CRM owns this field once a record exists */
        take |= bit;
    }
    /* A trigger activity seen while the prospect could not be pushed (parked, or read before
     * its first snapshot) is carried along now, so its time is not lost whatever order the
     * topics were read in. */
    {
        const int f = CS_F_LAST_ACTIVITY;
        eff_t m = effective(s, p, f);
        if (fm->f[f].crm_name && p->last_activity_at > m.time &&
            p->last_activity_at > p->mkt_watermark) {
            char iso[40];
            cs_strv_t v[CS_FIELDS_MAX];
            uint32_t h[CS_FIELDS_MAX];
            cs_result_t r;
            cs_format_time(p->last_activity_at, iso);
            v[f].p = iso;
            v[f].len = (uint32_t)strlen(iso);
            h[f] = cs_value_hash(iso, v[f].len);
            p->flags &= ~CS_PS_WAITING;
            p->wait = CS_WAIT_NONE;
            cs_event_t act = *ev;
            act.time = p->last_activity_at;
            r = enqueue(s, st, &act, 1u << f, h, v, 1, now_ms, sync_now);
            if (r == CS_R_NOMEM || !take)
                return r;
            if (r == CS_R_QUEUED) {
                p->flags &= ~CS_PS_WAITING;
                return enqueue(s, st, ev, take, hashes, ev->values, 1, now_ms, sync_now) ==
                               CS_R_NOMEM
                           ? CS_R_NOMEM
                           : CS_R_QUEUED;
            }
        }
    }
    if (!take) {
        drop_if_clean(s, p);
        return CS_R_DEDUP;
    }
    p->flags &= ~CS_PS_WAITING;
    p->wait = CS_WAIT_NONE;
    return enqueue(s, st, ev, take, hashes, ev->values, 1, now_ms, sync_now);
}

static cs_result_t apply_activity(cs_sync_t *s, uint32_t st, const cs_event_t *ev, int64_t now_ms)
{
    cs_pstate_t *p = cs_store_at(s->store, st);
    const int f = CS_F_LAST_ACTIVITY;
    char iso[40];
    cs_strv_t values[CS_FIELDS_MAX];
    uint32_t hashes[CS_FIELDS_MAX];

    if (ev->prospect_id >= 0 && !(p->flags & CS_PS_HAS_PROSPECT_ID)) {
        p->prospect_id = ev->prospect_id;
        p->flags |= CS_PS_HAS_PROSPECT_ID;
    }
    if (p->flags & CS_PS_DO_NOT_SYNC)
        return CS_R_BLOCKED;
    if (ev->time > p->last_activity_at)
        p->last_activity_at = ev->time;
    /* Covered: already pushed (watermark) or a newer activity is already remembered. */
    if (ev->time <= p->mkt_watermark || ev->time <= effective(s, p, f).time)
        return CS_R_DEDUP;
    if (p->flags & CS_PS_WAITING)
        return CS_R_WAITING; /* parked: the next prospect snapshot is what unparks it */
    cs_format_time(ev->time, iso);
    values[f].p = iso;
    values[f].len = (uint32_t)strlen(iso);
    hashes[f] = cs_value_hash(iso, values[f].len);
    return enqueue(s, st, ev, 1u << f, hashes, values, 1, now_ms, 0);
}

static cs_result_t apply_crm(cs_sync_t *s, uint32_t st, const cs_event_t *ev, int64_t now_ms)
{
    cs_pstate_t *p = cs_store_at(s->store, st);
    const cs_fieldmap_t *fm = s->fm;
    uint32_t take = 0, hashes[CS_FIELDS_MAX];

    if (ev->deleted) {
        if (p->crm_object != CS_LINK_NONE && same_str(ev->crm_id, p->crm_id, 18)) {
            p->crm_object = CS_LINK_NONE;
            memset(p->crm_id, 0, sizeof(p->crm_id));
        }
        return CS_R_DEDUP;
    }
    if (!ev->crm_id.p || ev->crm_id.len != 18)
        return CS_R_IGNORED;
    /* Link: contacts first, then leads; a record other than the linked one is not ours. */
    if (p->crm_object == CS_LINK_NONE ||
        (p->crm_object == CS_LINK_LEAD && ev->crm_object == CS_LINK_CONTACT)) {
        memcpy(p->crm_id, ev->crm_id.p, 18);
        p->crm_object = (uint8_t)ev->crm_object;
        if (ev->crm_object == CS_LINK_CONTACT)
            p->flags |= CS_PS_LINK_SURE;
        else
            p->flags &= ~CS_PS_LINK_SURE;
        if (p->wait == CS_WAIT_UNASSIGNED) {
            p->flags &= ~CS_PS_WAITING; /* a record to sync with exists now */
            p->wait = CS_WAIT_NONE;
        }
    } else if (!same_str(ev->crm_id, p->crm_id, 18)) {
        return CS_R_UNLINKED;
    }
    if (ev->time > p->crm_last_modified)
        p->crm_last_modified = ev->time;
    if (p->flags & CS_PS_DO_NOT_SYNC)
        return CS_R_BLOCKED;
    if (ev->time <= p->crm_watermark)
        return CS_R_DEDUP; /* replay of a change already pushed to marketing */

    /* A record crmsync stamped with a prospect id (its external id) under a key whose
     * prospect snapshot this replica has not seen: either the snapshot is still unread (the
     * topics are read in no common order) or the record's email changed in the CRM (held
     * below, like any change under a key with no snapshot read). */
    int stamped = !(p->flags & CS_PS_SEEN_MARKETING) && ev->ext_prospect_id > 0;
    int echo = s->self_user[0] && ev->last_modified_by.p && ev->last_modified_by.len >= 15 &&
               !strncmp(ev->last_modified_by.p, s->self_user, 15);
    if (stamped) {
        p->prospect_id = ev->ext_prospect_id;
        p->flags |= CS_PS_HAS_PROSPECT_ID;
    }
    for (int f = 0; f < fm->n; f++) {
        uint32_t bit = 1u << f;
        if (!(ev->present & bit) || !fm->f[f].mkt_name || fm->f[f].wins == CS_WINS_MARKETING)
            continue;
        if (f == CS_F_EMAIL && !s->sync_email_changes && (p->flags & CS_PS_SEEN_MARKETING))
            continue; /* CRM email changes apply only when enabled */
        eff_t m = effective(s, p, f);
        uint32_t h = cs_value_hash(ev->values[f].p, ev->values[f].len);
        hashes[f] = h;
        if (m.hash == h) {
            /* The CRM now holds what we were sending it (our own write coming back, or the
             * same edit on both sides): done, and nothing bounces. */
            if (p->dirty_crm & bit)
                converge(s, p, f);
            continue;
        }
        if (m.hash && ev->time <= m.time)
            continue;
        /* Our own write coming back (the record's last modifier is crmsync's user) carries
         * nothing new: its LastModifiedDate is the time of the write, not of the value, so
         * it must never win "most recent" over a value that changed meanwhile. */
        if (echo)
            continue;
        /* The value last agreed on (typically our own earlier write coming back, stamped
         * with its write time) is not a CRM change while a newer marketing value is on its
         * way: it must not revert it. */
        if (h == p->fields[f].hash && (p->dirty_crm & bit))
            continue;
        if ((p->dirty_crm & bit) && superseded(s, p, f, h))
            continue; /* a marketing value the pending one replaced: our earlier write */
        if (m.hash && fm->f[f].wins == CS_WINS_MARKETING && !m.from_crm)
            continue;
        take |= bit;
    }
    if (!take) {
        drop_if_clean(s, p);
        return CS_R_DEDUP;
    }
    if (stamped || (!(p->flags & CS_PS_SEEN_MARKETING) && !s->auto_create_prospects)) {
        /* No prospect snapshot read for this key. Either it is still unread (the topics are
         * read in no common order) or there is none: the change is held (cs_sync_release_held)
         * so that a snapshot read in time compares with it as usual (a newer CRM edit must not
         * lose to an older snapshot just because it was read first). Without one in time, a
         * stamped record had its email changed in the CRM; any other is a record no prospect
         * has, and with auto-create off it waits. */
        cs_result_t r;
        if (stamped && p->wait == CS_WAIT_NO_PROSPECT)
            p->wait = CS_WAIT_NONE;
        else if (!stamped)
            p->wait = CS_WAIT_NO_PROSPECT;
        r = enqueue(s, st, ev, take, hashes, ev->values, 0, now_ms, 0);
        if (r == CS_R_QUEUED || r == CS_R_COALESCED)
            hold(s, st, now_ms);
        return stamped || r == CS_R_NOMEM ? r : CS_R_WAITING;
    }
    if (p->wait == CS_WAIT_NO_PROSPECT)
        p->wait = CS_WAIT_NONE;
    return enqueue(s, st, ev, take, hashes, ev->values, 0, now_ms, 0);
}

size_t cs_sync_release_held(cs_sync_t *s, int64_t now_ms)
{
    const uint32_t email = 1u << CS_F_EMAIL;
    size_t n = 0;
    uint32_t e = cs_queue_first(s->queue, CS_QL_HELD);
    while (e != CS_NONE && cs_queue_entry(s->queue, e)->hold_until <= now_ms) {
        uint32_t next = cs_queue_next(s->queue, e);
        cs_qentry_t *x = cs_queue_entry(s->queue, e);
        cs_pstate_t *p = cs_store_at(s->store, x->state);
        n++;
        x->hold_until = 0;
        cs_sync_log_mark(s, x->state);
        if (!(p->flags & CS_PS_SEEN_MARKETING) &&
            (p->wait == CS_WAIT_NO_PROSPECT || !s->sync_email_changes || !(p->dirty_mkt & email))) {
            /* No prospect (it waits, auto-create off), or an email change not to be applied
             * (or no email change at all): dropped. The state keeps what was last pushed. */
            if (p->wait != CS_WAIT_NO_PROSPECT)
                p->flags &= ~CS_PS_HAS_PROSPECT_ID;
            cs_queue_remove(s->queue, e);
            p->queue = CS_NONE;
            p->dirty_crm = p->dirty_mkt = 0;
        } else {
            if (!(p->flags & CS_PS_SEEN_MARKETING)) {
                /* The linked record's email changed: the other fields were in sync under the
                 * old email, so they are agreed as they are; only the new email goes to the
                 * prospect. */
                for (int f = 0; f < s->fm->n; f++)
                    if ((p->dirty_mkt & (1u << f)) && f != CS_F_EMAIL)
                        converge(s, p, f);
                p->flags |= CS_PS_SEEN_MARKETING;
            }
            x->enqueued_ms = now_ms;
            cs_queue_move(s->queue, e, CS_QL_READY);
        }
        e = next;
    }
    return n;
}

int cs_sync_log_mark(cs_sync_t *s, uint32_t st)
{
    cs_pstate_t *p = cs_store_at(s->store, st);
    if (p->log_dirty) {
        p->log_dirty = CS_LOG_DIRTY; /* already listed (maybe written since): changed again */
        return CS_OK;
    }
    if (s->nlog == s->caplog) {
        size_t cap = s->caplog ? s->caplog * 2 : 1024;
        uint32_t *nl = realloc(s->logq, cap * sizeof(*nl));
        if (!nl)
            return CS_ERR_NOMEM;
        s->logq = nl;
        s->caplog = cap;
    }
    s->logq[s->nlog++] = st;
    p->log_dirty = CS_LOG_DIRTY;
    return CS_OK;
}

void cs_sync_log_clear(cs_sync_t *s)
{
    for (size_t i = 0; i < s->nlog; i++)
        cs_store_at(s->store, s->logq[i])->log_dirty = CS_LOG_CLEAN;
    s->nlog = 0;
}

void cs_sync_free(cs_sync_t *s)
{
    free(s->logq);
    s->logq = NULL;
    s->nlog = s->caplog = 0;
}

cs_result_t cs_sync_apply(cs_sync_t *s, const cs_event_t *ev, int64_t now_ms)
{
    cs_result_t r;
    int created;
    uint32_t st;
    /* Copy of the persisted part before the event, to tell whether the changelog needs a
     * new record: a pure duplicate (a replay) must cost no changelog write. */
    unsigned char before[sizeof(cs_pstate_t) + CS_FIELDS_MAX * sizeof(cs_fstate_t)];
    size_t plen;

    if (ev->kind == CS_EV_ACTIVITY &&
        !cs_activity_is_trigger(ev->activity, ev->identified, ev->score_delta)) {
        r = CS_R_IGNORED;
        goto out;
    }
    if (!ev->key.p || ev->key.len == 0) {
        /* A CRM record without an email has no prospect key yet: it waits for one. */
        r = CS_R_WAITING;
        goto out;
    }
    st = cs_store_upsert(s->store, ev->key.p, ev->key.len, ev->partition, &created);
    if (st == CS_NONE) {
        r = CS_R_NOMEM;
        goto out;
    }
    if (!created) {
        cs_pstate_t *p = cs_store_at(s->store, st);
        if (!s->busy_check) {
            p->stashed = 0; /* applied in order now */
        } else if (p->stashed || (p->queue != CS_NONE &&
                                  cs_queue_entry(s->queue, p->queue)->list == CS_QL_INFLIGHT)) {
            p->stashed = 1;
            return CS_R_BUSY; /* not counted: it is applied after the batch */
        }
    }
    plen = cs_store_record_size(s->store) - CS_PSTATE_PERSISTED_OFF;
    memcpy(before, (char *)cs_store_at(s->store, st) + CS_PSTATE_PERSISTED_OFF, plen);
    switch (ev->kind) {
    case CS_EV_PROSPECT:
        r = apply_prospect(s, st, ev, now_ms);
        break;
    case CS_EV_ACTIVITY:
        r = apply_activity(s, st, ev, now_ms);
        break;
    case CS_EV_CRM:
    default:
        r = apply_crm(s, st, ev, now_ms);
        break;
    }
    if (created ||
        memcmp(before, (char *)cs_store_at(s->store, st) + CS_PSTATE_PERSISTED_OFF, plen)) {
        if (cs_sync_log_mark(s, st))
            r = CS_R_NOMEM;
    }
out:
    s->results[r]++;
    return r;
}

int cs_sync_pushed(cs_sync_t *s, uint32_t e, int to_crm)
{
    cs_qentry_t *x = cs_queue_entry(s->queue, e);
    cs_pstate_t *p = cs_store_at(s->store, x->state);
    uint32_t done = to_crm ? p->dirty_crm : p->dirty_mkt;
    cs_sync_log_mark(s, x->state); /* watermarks and fields move: the changelog says so */
    p = cs_store_at(s->store, x->state);
    /* The pushed values become the remembered ones. */
    for (int f = 0; f < s->fm->n; f++) {
        uint32_t bit = 1u << f;
        if (!(done & bit))
            continue;
        p->fields[f].hash = x->phash[f];
        p->fields[f].time = x->ptime[f];
        p->side_crm = (p->side_crm & ~bit) | (x->pside_crm & bit);
    }
    if (to_crm) {
        p->dirty_crm = 0;
        if (x->mkt_time > p->mkt_watermark)
            p->mkt_watermark = x->mkt_time;
    } else {
        p->dirty_mkt = 0;
        if (x->crm_time > p->crm_watermark)
            p->crm_watermark = x->crm_time;
    }
    p->wait = CS_WAIT_NONE;
    p->flags &= ~(CS_PS_WAITING | CS_PS_NEEDS_FETCH);
    if (p->dirty_crm || p->dirty_mkt)
        return 0;
    cs_queue_remove(s->queue, e);
    p->queue = CS_NONE;
    return 1;
}

void cs_sync_park(cs_sync_t *s, uint32_t e, cs_wait_t why)
{
    cs_qentry_t *x = cs_queue_entry(s->queue, e);
    cs_pstate_t *p = cs_store_at(s->store, x->state);
    cs_sync_log_mark(s, x->state);
    p->wait = (uint8_t)why;
    p->flags |= CS_PS_WAITING;
    p->dirty_crm = p->dirty_mkt = 0;
    cs_queue_remove(s->queue, e);
    p->queue = CS_NONE;
}
