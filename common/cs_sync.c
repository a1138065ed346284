#include "cs_sync.h"
#include "cs_err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *cs_result_name(cs_result_t r)
{
    static const char *const names[CS_R_COUNT_] = {
        "ignored", "deduplicated", "queued", "coalesced", "blocked", "waiting", "unlinked", "nomem",
    };
    return r < CS_R_COUNT_ ? names[r] : "unknown";
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

/* Folds the accepted changes (values of fields in `take`) into the queue. */
static cs_result_t enqueue(cs_sync_t *s, uint32_t st, const cs_event_t *ev, uint32_t take,
                           const cs_strv_t *values, int64_t now_ms, int sync_now)
{
    int created;
    uint32_t e = entry_for(s, st, now_ms, sync_now, &created);
    if (e == CS_NONE)
        return CS_R_NOMEM;
    for (int f = 0; f < s->fm->n; f++)
        if ((take & (1u << f)) && cs_queue_set_value(s->queue, e, f, values[f].p, values[f].len))
            return CS_R_NOMEM;
    note_event(cs_queue_entry(s->queue, e), ev);
    return created ? CS_R_QUEUED : CS_R_COALESCED;
}

static int same_str(cs_strv_t a, const char *b, size_t blen)
{
    return a.p && a.len == blen && !memcmp(a.p, b, blen);
}

/* Marketing prospect change. */
static cs_result_t apply_prospect(cs_sync_t *s, uint32_t st, const cs_event_t *ev, int64_t now_ms)
{
    cs_pstate_t *p = cs_store_at(s->store, st);
    const cs_fieldmap_t *fm = s->fm;
    uint32_t take = 0;
    int waiting = (p->flags & CS_PS_WAITING) != 0;
    int force = 0, sync_now = ev->cause == CS_CAUSE_SYNC_NOW;

    p->flags |= CS_PS_SEEN_MARKETING;
    if (ev->prospect_id >= 0) {
        p->prospect_id = ev->prospect_id;
        p->flags |= CS_PS_HAS_PROSPECT_ID;
    }
    if (ev->time > p->updated_at)
        p->updated_at = ev->time;
    if (ev->last_activity_at > p->last_activity_at)
        p->last_activity_at = ev->last_activity_at;
    if (ev->assigned_user_id >= 0) {
        p->flags |= CS_PS_ASSIGNED;
        p->assigned_user_id = ev->assigned_user_id;
    } else {
        p->flags &= ~CS_PS_ASSIGNED;
        p->assigned_user_id = 0;
    }
    /* The marketing system may already know the CRM record (a contact beats a lead). */
    if (p->crm_object != CS_LINK_CONTACT && ev->crm_contact_id.p && ev->crm_contact_id.len == 18) {
        memcpy(p->crm_id, ev->crm_contact_id.p, 18);
        p->crm_object = CS_LINK_CONTACT;
    } else if (p->crm_object == CS_LINK_NONE && ev->crm_lead_id.p && ev->crm_lead_id.len == 18) {
        memcpy(p->crm_id, ev->crm_lead_id.p, 18);
        p->crm_object = CS_LINK_LEAD;
    }

    if (ev->do_not_sync) {
        /* Blocks everything, sync-now included. Field memory is left as it was, so what
         * changed meanwhile is pushed once the flag is lifted. */
        p->flags |= CS_PS_DO_NOT_SYNC;
        p->wait = CS_WAIT_DO_NOT_SYNC;
        if (p->queue != CS_NONE) {
            uint32_t e = p->queue;
            cs_qentry_t *x = cs_queue_entry(s->queue, e);
            if (x->list != CS_QL_INFLIGHT) {
                cs_queue_remove(s->queue, e);
                p->queue = CS_NONE;
            }
        }
        p->dirty_crm = p->dirty_mkt = 0;
        return CS_R_BLOCKED;
    }
    if (p->flags & CS_PS_DO_NOT_SYNC) {
        p->flags &= ~CS_PS_DO_NOT_SYNC;
        p->wait = CS_WAIT_NONE;
    }

    /* Import rows and sync-now force a push of every field, unless the event is already
     * covered by the marketing watermark (a replay of an import writes nothing). A parked
     * prospect lost its queued values: this snapshot brings them back. */
    if ((ev->cause == CS_CAUSE_IMPORT || sync_now) && ev->time > p->mkt_watermark)
        force = 1;
    if (waiting)
        force = 1;

    for (int f = 0; f < fm->n; f++) {
        uint32_t bit = 1u << f;
        if (!(ev->present & bit) || !fm->f[f].crm_name)
            continue;
        cs_fstate_t *fs = &p->fields[f];
        uint32_t h = cs_value_hash(ev->values[f].p, ev->values[f].len);
        if (fs->hash == h) {
            /* Marketing holds the value the CRM side last agreed on: whatever was pending
             * towards marketing for this field is done. */
            p->dirty_mkt &= ~bit;
            if (force && (fs->time < ev->time || waiting))
                take |= bit;
            continue;
        }
        if (fs->hash && ev->time <= fs->time)
            continue; /* stale: an older value than the one remembered */
        if (fs->hash && fm->f[f].wins == CS_WINS_CRM && (p->side_crm & bit) &&
            p->crm_object != CS_LINK_NONE)
            continue; /* the CRM owns this field once a record exists */
        fs->hash = h;
        fs->time = ev->time;
        p->side_crm &= ~bit;
        p->dirty_mkt &= ~bit;
        take |= bit;
    }
    if (!take)
        return CS_R_DEDUP;
    p->dirty_crm |= take;
    p->flags &= ~CS_PS_WAITING;
    p->wait = CS_WAIT_NONE;
    return enqueue(s, st, ev, take, ev->values, now_ms, sync_now);
}

static cs_result_t apply_activity(cs_sync_t *s, uint32_t st, const cs_event_t *ev, int64_t now_ms)
{
    cs_pstate_t *p = cs_store_at(s->store, st);
    const int f = CS_F_LAST_ACTIVITY;
    cs_fstate_t *fs = &p->fields[f];
    char iso[40];
    cs_strv_t values[CS_FIELDS_MAX];

    if (ev->prospect_id >= 0 && !(p->flags & CS_PS_HAS_PROSPECT_ID)) {
        p->prospect_id = ev->prospect_id;
        p->flags |= CS_PS_HAS_PROSPECT_ID;
    }
    if (p->flags & CS_PS_DO_NOT_SYNC)
        return CS_R_BLOCKED;
    if (ev->time > p->last_activity_at)
        p->last_activity_at = ev->time;
    /* Covered: already pushed (watermark) or a newer activity is already remembered. */
    if (ev->time <= p->mkt_watermark || ev->time <= fs->time)
        return CS_R_DEDUP;
    cs_format_time(ev->time, iso);
    fs->hash = cs_value_hash(iso, strlen(iso));
    fs->time = ev->time;
    p->side_crm &= ~(1u << f);
    if (p->flags & CS_PS_WAITING) {
        /* Still parked (unassigned and unmatched, ...): remember, do not queue. The next
         * prospect snapshot pushes everything, this activity's time included. */
        return CS_R_WAITING;
    }
    p->dirty_crm |= 1u << f;
    values[f].p = iso;
    values[f].len = (uint32_t)strlen(iso);
    return enqueue(s, st, ev, 1u << f, values, now_ms, 0);
}

static cs_result_t apply_crm(cs_sync_t *s, uint32_t st, const cs_event_t *ev, int64_t now_ms)
{
    cs_pstate_t *p = cs_store_at(s->store, st);
    const cs_fieldmap_t *fm = s->fm;
    uint32_t take = 0;

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
    } else if (!same_str(ev->crm_id, p->crm_id, 18)) {
        return CS_R_UNLINKED;
    }
    if (ev->time > p->crm_last_modified)
        p->crm_last_modified = ev->time;
    if (p->flags & CS_PS_DO_NOT_SYNC)
        return CS_R_BLOCKED;
    if (ev->time <= p->crm_watermark)
        return CS_R_DEDUP; /* replay of a change already pushed to marketing */

    for (int f = 0; f < fm->n; f++) {
        uint32_t bit = 1u << f;
        if (!(ev->present & bit) || !fm->f[f].mkt_name || fm->f[f].wins == CS_WINS_MARKETING)
            continue;
        if (f == CS_F_EMAIL && !s->sync_email_changes && (p->flags & CS_PS_SEEN_MARKETING))
            continue; /* CRM email changes apply only when enabled */
        cs_fstate_t *fs = &p->fields[f];
        uint32_t h = cs_value_hash(ev->values[f].p, ev->values[f].len);
        if (fs->hash == h) {
            p->dirty_crm &= ~bit; /* the CRM already has what we were about to send */
            continue;
        }
        if (fs->hash && ev->time <= fs->time)
            continue;
        if (fs->hash && fm->f[f].wins == CS_WINS_MARKETING && !(p->side_crm & bit))
            continue;
        fs->hash = h;
        fs->time = ev->time;
        p->side_crm |= bit;
        p->dirty_crm &= ~bit;
        take |= bit;
    }
    if (!take)
        return CS_R_DEDUP;
    if (!(p->flags & CS_PS_SEEN_MARKETING) && !s->auto_create_prospects) {
        /* No prospect known for this record and creating one is off: remember the values'
         * hashes (a later prospect snapshot is compared against them) and wait. */
        p->wait = CS_WAIT_NO_PROSPECT;
        return CS_R_WAITING;
    }
    p->dirty_mkt |= take;
    return enqueue(s, st, ev, take, ev->values, now_ms, 0);
}

cs_result_t cs_sync_apply(cs_sync_t *s, const cs_event_t *ev, int64_t now_ms)
{
    cs_result_t r;
    int created;
    uint32_t st;

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
out:
    s->results[r]++;
    return r;
}

int cs_sync_pushed(cs_sync_t *s, uint32_t e, int to_crm)
{
    cs_qentry_t *x = cs_queue_entry(s->queue, e);
    cs_pstate_t *p = cs_store_at(s->store, x->state);
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
    p->wait = (uint8_t)why;
    p->flags |= CS_PS_WAITING;
    p->dirty_crm = p->dirty_mkt = 0;
    cs_queue_remove(s->queue, e);
    p->queue = CS_NONE;
}
