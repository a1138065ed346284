/* The sync rules of the design brief, one check group per rule, on the pure rule engine
 * (cs_sync) with its state store and sync queue. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cs_err.h"
#include "cs_fields.h"
#include "cs_queue.h"
#include "cs_state.h"
#include "cs_sync.h"
#include "cs_test.h"

static cs_fieldmap_t fm;

typedef struct ctx_s {
    cs_sync_t s;
} ctx_t;

static void ctx_init(ctx_t *c)
{
    memset(c, 0, sizeof(*c));
    c->s.store = cs_store_new(fm.n);
    c->s.queue = cs_queue_new();
    c->s.fm = &fm;
    REQUIRE(c->s.store && c->s.queue);
}

static void ctx_free(ctx_t *c)
{
    cs_sync_free(&c->s);
    cs_store_destroy(c->s.store);
    cs_queue_destroy(c->s.queue);
}

static cs_strv_t sv(const char *s)
{
    cs_strv_t v = {s, s ? (uint32_t)strlen(s) : 0};
    return v;
}

static int64_t next_offset;

/* A marketing snapshot: email, first/last name, company, owner (CRM id or NULL). */
static cs_event_t prospect(const char *key, int64_t t, const char *first, const char *last,
                           const char *company)
{
    cs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = CS_EV_PROSPECT;
    ev.key = sv(key);
    ev.time = t;
    ev.event_time = t;
    ev.offset = next_offset++;
    ev.cause = CS_CAUSE_FIELD_CHANGE;
    ev.prospect_id = 1000;
    ev.assigned_user_id = -1;
    ev.values[CS_F_EMAIL] = sv(key);
    ev.values[CS_F_FIRST_NAME] = sv(first);
    ev.values[CS_F_LAST_NAME] = sv(last);
    ev.values[CS_F_COMPANY] = sv(company);
    ev.values[CS_F_SCORE] = sv("10");
    ev.present = (1u << CS_F_EMAIL) | (1u << CS_F_FIRST_NAME) | (1u << CS_F_LAST_NAME) |
                 (1u << CS_F_COMPANY) | (1u << CS_F_SCORE);
    return ev;
}

static cs_event_t crm(const char *key, int64_t t, cs_link_t obj, const char *id, const char *email,
                      const char *first, const char *last)
{
    cs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = CS_EV_CRM;
    ev.key = sv(key);
    ev.time = t;
    ev.offset = next_offset++;
    ev.crm_object = obj;
    ev.crm_id = sv(id);
    ev.prospect_id = -1;
    ev.assigned_user_id = -1;
    ev.values[CS_F_EMAIL] = sv(email);
    ev.values[CS_F_FIRST_NAME] = sv(first);
    ev.values[CS_F_LAST_NAME] = sv(last);
    ev.present = (1u << CS_F_EMAIL) | (1u << CS_F_FIRST_NAME) | (1u << CS_F_LAST_NAME);
    return ev;
}

static cs_event_t activity(const char *key, int64_t t, cs_activity_type_t type, int identified)
{
    cs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = CS_EV_ACTIVITY;
    ev.key = sv(key);
    ev.time = t;
    ev.offset = next_offset++;
    ev.activity = type;
    ev.identified = identified;
    ev.prospect_id = -1;
    ev.assigned_user_id = -1;
    return ev;
}

static cs_pstate_t *st(ctx_t *c, const char *key)
{
    uint32_t i = cs_store_find(c->s.store, key, strlen(key));
    REQUIRE(i != CS_NONE);
    return cs_store_at(c->s.store, i);
}

/* Simulates a successful push of everything queued, both directions. */
static void push_all(ctx_t *c)
{
    uint32_t out[256];
    size_t n = cs_queue_take(c->s.queue, out, 256, 0, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        cs_qentry_t *x = cs_queue_entry(c->s.queue, out[i]);
        cs_pstate_t *p = cs_store_at(c->s.store, x->state);
        int both = p->dirty_crm && p->dirty_mkt;
        if (p->dirty_crm)
            cs_sync_pushed(&c->s, out[i], 1);
        if (both || (!p->dirty_crm && p->dirty_mkt))
            cs_sync_pushed(&c->s, out[i], 0);
    }
}

static void test_activity_classes(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t ev = activity("a@x.com", 1000, CS_ACTIVITY_EMAIL_OPEN, 1);
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_IGNORED);
    ev = activity("a@x.com", 1001, CS_ACTIVITY_EMAIL_SEND, 1);
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_IGNORED);
    ev = activity("a@x.com", 1002, CS_ACTIVITY_PAGE_VIEW, 0); /* anonymous */
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_IGNORED);
    ev = activity("a@x.com", 1003, CS_ACTIVITY_VISITOR_SESSION, 1);
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_IGNORED);
    CHECK_INT(cs_queue_total(c.s.queue), 0);
    CHECK_INT(cs_store_count(c.s.store), 0); /* not even a state record */

    ev = activity("a@x.com", 1004, CS_ACTIVITY_PAGE_VIEW, 1); /* identified */
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    ev = activity("a@x.com", 1005, CS_ACTIVITY_FORM, 1);
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_COALESCED);
    ev = activity("a@x.com", 1006, CS_ACTIVITY_EMAIL_OPEN, 1);
    ev.score_delta = 5; /* an activity that changes the score is a trigger */
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_COALESCED);
    CHECK(cs_activity_is_trigger(CS_ACTIVITY_FORM_HANDLER, 0, 0));
    CHECK(cs_activity_is_trigger(CS_ACTIVITY_LANDING_PAGE, 0, 0));
    CHECK(cs_activity_is_trigger(CS_ACTIVITY_TRACKED_LINK_CLICK, 0, 0));
    CHECK(cs_activity_is_trigger(CS_ACTIVITY_UNSUBSCRIBE, 0, 0));
    CHECK(!cs_activity_is_trigger(CS_ACTIVITY_OTHER, 1, 0));
    CHECK_INT(cs_queue_total(c.s.queue), 1);

    /* the pushed activity time is the newest; a late activity is covered */
    push_all(&c);
    CHECK_INT(st(&c, "a@x.com")->mkt_watermark, 1006);
    ev = activity("a@x.com", 1003, CS_ACTIVITY_FORM, 1);
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_DEDUP);
    ctx_free(&c);
}

static void test_dedup_and_burst(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t ev = prospect("b@x.com", 2000, "Bo", "Berg", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    cs_pstate_t *p = st(&c, "b@x.com");
    CHECK(p->dirty_crm & (1u << CS_F_LAST_NAME));
    CHECK_INT(p->dirty_mkt, 0);
    /* the same snapshot again changes nothing */
    ev = prospect("b@x.com", 2000, "Bo", "Berg", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_DEDUP);

    /* 100 events for one prospect: one entry, the last value wins */
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "Name%d", i);
        ev = prospect("b@x.com", 2001 + i, name, "Berg", "Acme");
        cs_result_t r = cs_sync_apply(&c.s, &ev, 0);
        CHECK(r == CS_R_COALESCED);
    }
    CHECK_INT(cs_queue_total(c.s.queue), 1);
    size_t len;
    uint32_t e = st(&c, "b@x.com")->queue;
    const char *v = cs_queue_value(c.s.queue, e, CS_F_FIRST_NAME, &len);
    CHECK(v && len == 6 && !memcmp(v, "Name99", 6));
    v = cs_queue_value(c.s.queue, e, CS_F_COMPANY, &len);
    CHECK(v && len == 4 && !memcmp(v, "Acme", 4));
    CHECK_INT(cs_queue_entry(c.s.queue, e)->mkt_time, 2100);

    /* stale: an older event with another value changes nothing */
    ev = prospect("b@x.com", 1999, "Old", "Berg", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_DEDUP);
    v = cs_queue_value(c.s.queue, e, CS_F_FIRST_NAME, &len);
    CHECK(v && len == 6 && !memcmp(v, "Name99", 6));

    /* a case-only change is a change */
    push_all(&c);
    CHECK_INT(cs_queue_total(c.s.queue), 0);
    ev = prospect("b@x.com", 3000, "name99", "Berg", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    CHECK_INT(st(&c, "b@x.com")->dirty_crm, 1u << CS_F_FIRST_NAME); /* only what changed */
    ctx_free(&c);
}

static void test_do_not_sync(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t ev = prospect("d@x.com", 1000, "Di", "Do", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    ev = prospect("d@x.com", 1001, "Di2", "Do", "Acme");
    ev.do_not_sync = 1;
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_BLOCKED);
    CHECK_INT(cs_queue_total(c.s.queue), 0); /* the pending push is withdrawn */
    ev = prospect("d@x.com", 1002, "Di3", "Do", "Acme");
    ev.do_not_sync = 1;
    ev.cause = CS_CAUSE_SYNC_NOW; /* sync-now does not override do-not-sync */
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_BLOCKED);
    cs_event_t a = activity("d@x.com", 1003, CS_ACTIVITY_FORM, 1);
    CHECK_INT(cs_sync_apply(&c.s, &a, 0), CS_R_BLOCKED);
    cs_event_t cr = crm("d@x.com", 1004, CS_LINK_LEAD, "00Q000000000001AAA", "d@x.com", "X", "Do");
    CHECK_INT(cs_sync_apply(&c.s, &cr, 0), CS_R_BLOCKED);
    CHECK_INT(cs_queue_total(c.s.queue), 0);
    /* lifting the flag syncs what changed meanwhile */
    ev = prospect("d@x.com", 1005, "Di3", "Do", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    ctx_free(&c);
}

static void test_import_and_replay(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t hist[6];
    hist[0] = prospect("i@x.com", 1000, "Ida", "Ice", "Acme");
    hist[1] = prospect("i@x.com", 1100, "Ida", "Ice", "Acme Inc");
    hist[2] = activity("i@x.com", 1200, CS_ACTIVITY_FORM, 1);
    hist[3] = crm("i@x.com", 1300, CS_LINK_CONTACT, "003000000000001AAA", "i@x.com", "Ida", "Icer");
    hist[4] = prospect("i@x.com", 1400, "Ida", "Icer", "Acme Inc"); /* marketing echo */
    for (int i = 0; i < 5; i++)
        cs_sync_apply(&c.s, &hist[i], 0);
    push_all(&c);
    CHECK_INT(cs_queue_total(c.s.queue), 0);

    /* an import row forces a push even when nothing changed */
    cs_event_t imp = prospect("i@x.com", 2000, "Ida", "Icer", "Acme Inc");
    imp.cause = CS_CAUSE_IMPORT;
    CHECK_INT(cs_sync_apply(&c.s, &imp, 0), CS_R_QUEUED);
    CHECK(st(&c, "i@x.com")->dirty_crm & (1u << CS_F_LAST_NAME));
    push_all(&c);
    hist[5] = imp;

    /* replay of the whole history, import included: nothing to do, not even a changelog
     * record */
    CHECK(c.s.nlog > 0);
    cs_sync_log_clear(&c.s);
    uint64_t before = c.s.results[CS_R_QUEUED] + c.s.results[CS_R_COALESCED];
    for (int i = 0; i < 6; i++) {
        cs_result_t r = cs_sync_apply(&c.s, &hist[i], 0);
        CHECK(r == CS_R_DEDUP);
    }
    CHECK_INT(c.s.results[CS_R_QUEUED] + c.s.results[CS_R_COALESCED], before);
    CHECK_INT(cs_queue_total(c.s.queue), 0);
    CHECK_INT(c.s.nlog, 0);
    ctx_free(&c);
}

static void test_crm_direction_and_echo(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t ev = prospect("e@x.com", 1000, "Eve", "Eng", "Acme");
    cs_sync_apply(&c.s, &ev, 0);
    push_all(&c);

    /* our own CRM write comes back with the same values: nothing bounces */
    cs_event_t echo =
        crm("e@x.com", 1500, CS_LINK_LEAD, "00Q000000000002AAA", "e@x.com", "Eve", "Eng");
    CHECK_INT(cs_sync_apply(&c.s, &echo, 0), CS_R_DEDUP);
    CHECK_INT(st(&c, "e@x.com")->crm_object, CS_LINK_LEAD);

    /* a user edits the lead in the CRM: it goes to marketing */
    cs_event_t edit =
        crm("e@x.com", 1600, CS_LINK_LEAD, "00Q000000000002AAA", "e@x.com", "Evelyn", "Eng");
    CHECK_INT(cs_sync_apply(&c.s, &edit, 0), CS_R_QUEUED);
    cs_pstate_t *p = st(&c, "e@x.com");
    CHECK_INT(p->dirty_mkt, 1u << CS_F_FIRST_NAME);
    CHECK_INT(p->dirty_crm, 0);
    push_all(&c);
    CHECK_INT(st(&c, "e@x.com")->crm_watermark, 1600);
    /* marketing's echo of our write: nothing goes back to the CRM */
    ev = prospect("e@x.com", 1700, "Evelyn", "Eng", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_DEDUP);
    CHECK_INT(cs_queue_total(c.s.queue), 0);
    /* a replay of the CRM edit is covered by the CRM watermark */
    CHECK_INT(cs_sync_apply(&c.s, &edit, 0), CS_R_DEDUP);

    /* a formula-field-only change carries no mapped change */
    cs_event_t formula =
        crm("e@x.com", 1800, CS_LINK_LEAD, "00Q000000000002AAA", "e@x.com", "Evelyn", "Eng");
    CHECK_INT(cs_sync_apply(&c.s, &formula, 0), CS_R_DEDUP);

    /* another record with the same email, while linked to the lead: a contact wins */
    cs_event_t other_lead =
        crm("e@x.com", 1900, CS_LINK_LEAD, "00Q000000000003AAA", "e@x.com", "Dup", "Lead");
    CHECK_INT(cs_sync_apply(&c.s, &other_lead, 0), CS_R_UNLINKED);
    cs_event_t contact =
        crm("e@x.com", 1950, CS_LINK_CONTACT, "003000000000003AAA", "e@x.com", "Evelyn", "Eng");
    CHECK(cs_sync_apply(&c.s, &contact, 0) == CS_R_DEDUP);
    CHECK_INT(st(&c, "e@x.com")->crm_object, CS_LINK_CONTACT);
    /* deletion unlinks */
    contact.deleted = 1;
    contact.time = 2000;
    cs_sync_apply(&c.s, &contact, 0);
    CHECK_INT(st(&c, "e@x.com")->crm_object, CS_LINK_NONE);
    ctx_free(&c);
}

static void test_email_and_autocreate(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t ev = prospect("m@x.com", 1000, "Mo", "Mu", "Acme");
    cs_sync_apply(&c.s, &ev, 0);
    push_all(&c);
    cs_event_t cr =
        crm("m@x.com", 1100, CS_LINK_LEAD, "00Q000000000004AAA", "new@x.com", "Mo", "Mu");
    CHECK_INT(cs_sync_apply(&c.s, &cr, 0), CS_R_DEDUP); /* email change ignored by default */
    c.s.sync_email_changes = 1;
    cr.time = 1200;
    CHECK_INT(cs_sync_apply(&c.s, &cr, 0), CS_R_QUEUED);
    CHECK_INT(st(&c, "m@x.com")->dirty_mkt, 1u << CS_F_EMAIL);

    /* a CRM record with no email waits */
    cs_event_t noemail = crm("", 1300, CS_LINK_LEAD, "00Q000000000005AAA", NULL, "No", "Mail");
    CHECK_INT(cs_sync_apply(&c.s, &noemail, 0), CS_R_WAITING);
    /* a new CRM record with no prospect: waits unless auto-create is on */
    cs_event_t fresh =
        crm("n@x.com", 1400, CS_LINK_LEAD, "00Q000000000005AAA", "n@x.com", "No", "Mail");
    c.s.hold_ms = 5000;
    CHECK_INT(cs_sync_apply(&c.s, &fresh, 0), CS_R_WAITING);
    CHECK_INT(st(&c, "n@x.com")->wait, CS_WAIT_NO_PROSPECT);
    CHECK_INT(cs_queue_len(c.s.queue, CS_QL_HELD), 1); /* held for a snapshot read late */
    CHECK_INT(cs_sync_release_held(&c.s, 4999), 0);
    CHECK_INT(cs_sync_release_held(&c.s, 5000), 1); /* none came: dropped, the record waits */
    CHECK_INT(cs_queue_len(c.s.queue, CS_QL_HELD), 0);
    CHECK_INT(st(&c, "n@x.com")->queue, CS_NONE);
    CHECK_INT(st(&c, "n@x.com")->wait, CS_WAIT_NO_PROSPECT);
    c.s.auto_create_prospects = 1;
    cs_event_t fresh2 =
        crm("o@x.com", 1500, CS_LINK_LEAD, "00Q000000000006AAA", "o@x.com", "Now", "Mail");
    CHECK_INT(cs_sync_apply(&c.s, &fresh2, 0), CS_R_QUEUED);
    CHECK_INT(cs_queue_entry(c.s.queue, st(&c, "o@x.com")->queue)->list, CS_QL_READY);
    ctx_free(&c);
}

/* A CRM edit read before the prospect's (older) snapshot, auto-create off: it is held, and
 * the snapshot compares with it as if read in the other order. Before, the edit was dropped
 * and the older snapshot's values went to the CRM over it. */
static void test_crm_edit_before_snapshot(void)
{
    ctx_t c;
    for (int order = 0; order < 2; order++) {
        ctx_init(&c);
        c.s.hold_ms = 5000;
        cs_event_t cr =
            crm("ro@x.com", 9000, CS_LINK_LEAD, "00Q00000000000RAAA", "ro@x.com", "New", "Name");
        cs_event_t ev = prospect("ro@x.com", 8000, "Old", "Name", "Acme");
        if (order == 0) {
            CHECK_INT(cs_sync_apply(&c.s, &cr, 100), CS_R_WAITING);
            CHECK_INT(cs_queue_len(c.s.queue, CS_QL_HELD), 1);
            push_all(&c); /* held entries are not in a batch */
            CHECK_INT(cs_queue_len(c.s.queue, CS_QL_HELD), 1);
            CHECK_INT(cs_sync_apply(&c.s, &ev, 300), CS_R_COALESCED);
        } else {
            CHECK_INT(cs_sync_apply(&c.s, &ev, 100), CS_R_QUEUED);
            CHECK_INT(cs_sync_apply(&c.s, &cr, 300), CS_R_COALESCED);
        }
        cs_pstate_t *p = st(&c, "ro@x.com");
        CHECK_INT(cs_queue_len(c.s.queue, CS_QL_HELD), 0);
        CHECK_INT(p->wait, CS_WAIT_NONE);
        /* whatever the order: the newer CRM first name goes to marketing, the snapshot's
         * company to the CRM, and the older first name nowhere */
        CHECK(p->dirty_mkt & (1u << CS_F_FIRST_NAME));
        CHECK(!(p->dirty_crm & (1u << CS_F_FIRST_NAME)));
        CHECK(p->dirty_crm & (1u << CS_F_COMPANY));
        size_t len;
        const char *v = cs_queue_value(c.s.queue, p->queue, CS_F_FIRST_NAME, &len);
        CHECK(v && len == 3 && !memcmp(v, "New", 3));
        CHECK_INT(cs_sync_release_held(&c.s, 6000), 0); /* nothing held: nothing dropped */
        push_all(&c);
        CHECK_INT(cs_queue_total(c.s.queue), 0);
        ctx_free(&c);
    }
}

/* Accepted changes stay pending until pushed: the state record (what the changelog writes)
 * only holds pushed values, so abandoning a queue entry (revocation, crash) and re-reading
 * the same events finds the same work again. */
static void test_pending_not_persisted(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t ev = prospect("pend@x.com", 5000, "Pe", "Nding", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    cs_pstate_t *p = st(&c, "pend@x.com");
    CHECK_INT(p->fields[CS_F_LAST_NAME].hash, 0);
    CHECK_INT(p->mkt_watermark, 0);
    /* abandon, as a revocation does */
    cs_queue_remove(c.s.queue, p->queue);
    p->queue = CS_NONE;
    p->dirty_crm = p->dirty_mkt = 0;
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    push_all(&c);
    p = st(&c, "pend@x.com");
    CHECK(p->fields[CS_F_LAST_NAME].hash != 0);
    CHECK_INT(p->fields[CS_F_LAST_NAME].time, 5000);
    CHECK_INT(p->mkt_watermark, 5000);
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_DEDUP);
    ctx_free(&c);
}

/* An import of some columns only: the others are unknown, not empty. */
static void test_partial_snapshot(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t ev = prospect("part@x.com", 6000, "Pa", "Rt", "Acme");
    ev.assigned_user_id = 7;
    cs_sync_apply(&c.s, &ev, 0);
    push_all(&c);
    cs_event_t imp = prospect("part@x.com", 6100, NULL, NULL, "NewCo");
    imp.cause = CS_CAUSE_IMPORT;
    imp.present = (1u << CS_F_EMAIL) | (1u << CS_F_COMPANY); /* changed_fields: email, company */
    imp.assigned_user_id = CS_KEEP_ASSIGNMENT;
    imp.do_not_sync = -1;
    CHECK_INT(cs_sync_apply(&c.s, &imp, 0), CS_R_QUEUED);
    cs_pstate_t *p = st(&c, "part@x.com");
    CHECK_INT(p->dirty_crm, (1u << CS_F_EMAIL) | (1u << CS_F_COMPANY)); /* names not blanked */
    CHECK(p->flags & CS_PS_ASSIGNED);
    CHECK_INT(p->assigned_user_id, 7);
    ctx_free(&c);
}

/* An activity read before the prospect's snapshot (topics are read in no common order) is
 * parked with the prospect, and its time goes out with the snapshot that unparks it. */
static void test_activity_before_snapshot(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t a = activity("early@x.com", 7000, CS_ACTIVITY_FORM, 1);
    CHECK_INT(cs_sync_apply(&c.s, &a, 0), CS_R_QUEUED);
    cs_pstate_t *p = st(&c, "early@x.com");
    cs_sync_park(&c.s, p->queue, CS_WAIT_UNASSIGNED); /* the flush found no match, no owner */
    cs_event_t ev = prospect("early@x.com", 6900, "Ea", "Rly", "Acme");
    ev.assigned_user_id = 3;
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    p = st(&c, "early@x.com");
    CHECK(p->dirty_crm & (1u << CS_F_LAST_ACTIVITY));
    CHECK(p->dirty_crm & (1u << CS_F_LAST_NAME));
    push_all(&c);
    CHECK_INT(st(&c, "early@x.com")->fields[CS_F_LAST_ACTIVITY].time, 7000);
    /* the other order, replayed on that state: nothing */
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_DEDUP);
    CHECK_INT(cs_sync_apply(&c.s, &a, 0), CS_R_DEDUP);
    ctx_free(&c);
}

/* A CRM edit of a record crmsync stamped, read before the prospect's snapshot: held for the
 * snapshot, which decides as usual; without one in time it is an email change. */
static void test_stamped_before_snapshot(void)
{
    ctx_t c;
    ctx_init(&c);
    c.s.hold_ms = 5000;
    cs_event_t cr =
        crm("st@x.com", 9000, CS_LINK_LEAD, "00Q000000000009AAA", "st@x.com", "Edited", "Lead");
    cr.ext_prospect_id = 4242;
    CHECK_INT(cs_sync_apply(&c.s, &cr, 100), CS_R_QUEUED);
    CHECK_INT(cs_queue_len(c.s.queue, CS_QL_HELD), 1);
    CHECK_INT(cs_sync_release_held(&c.s, 200), 0);                     /* still waiting */
    cs_event_t ev = prospect("st@x.com", 8000, "Old", "Lead", "Acme"); /* older snapshot */
    ev.prospect_id = 4242;
    cs_sync_apply(&c.s, &ev, 300);
    CHECK_INT(cs_queue_len(c.s.queue, CS_QL_HELD), 0); /* released by the snapshot */
    cs_pstate_t *p = st(&c, "st@x.com");
    CHECK(p->dirty_mkt & (1u << CS_F_FIRST_NAME)); /* the CRM edit goes to marketing */
    ctx_free(&c);

    /* no snapshot: an email change, dropped when email changes are off */
    ctx_init(&c);
    c.s.hold_ms = 5000;
    cr.time = 9100;
    CHECK_INT(cs_sync_apply(&c.s, &cr, 100), CS_R_QUEUED);
    CHECK_INT(cs_sync_release_held(&c.s, 5200), 1);
    CHECK_INT(cs_queue_total(c.s.queue), 0);
    CHECK_INT(st(&c, "st@x.com")->wait, CS_WAIT_NONE);
    ctx_free(&c);

    /* ... and released as an email change when they are on: only the email goes */
    ctx_init(&c);
    c.s.hold_ms = 5000;
    c.s.sync_email_changes = 1;
    cr.values[CS_F_EMAIL] = sv("moved@x.com");
    CHECK_INT(cs_sync_apply(&c.s, &cr, 100), CS_R_QUEUED);
    CHECK_INT(cs_sync_release_held(&c.s, 5100), 1);
    p = st(&c, "st@x.com");
    CHECK_INT(cs_queue_len(c.s.queue, CS_QL_READY), 1);
    CHECK_INT(p->dirty_mkt, 1u << CS_F_EMAIL);
    CHECK(p->flags & CS_PS_SEEN_MARKETING);
    ctx_free(&c);
}

/* Our own earlier write coming back (stamped with its write time) must not revert a newer
 * edit waiting to go out, on either side. */
static void test_echo_does_not_revert(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t m2 = prospect("echo@x.com", 1000, "M2", "E", "Acme");
    m2.assigned_user_id = 1;
    cs_sync_apply(&c.s, &m2, 0);
    push_all(&c); /* M2 is in the CRM now */
    cs_event_t m3 = prospect("echo@x.com", 2000, "M3", "E", "Acme");
    m3.assigned_user_id = 1;
    CHECK_INT(cs_sync_apply(&c.s, &m3, 0), CS_R_QUEUED);
    cs_event_t echo = crm("echo@x.com", 3000, CS_LINK_LEAD, "00Q00000000000EAAA", "echo@x.com",
                          "M2", "E"); /* written at 3000 with the value M2 */
    CHECK_INT(cs_sync_apply(&c.s, &echo, 0), CS_R_DEDUP);
    cs_pstate_t *p = st(&c, "echo@x.com");
    CHECK(p->dirty_crm & (1u << CS_F_FIRST_NAME)); /* M3 still goes out */
    CHECK_INT(p->dirty_mkt, 0);
    push_all(&c);

    /* the other way: a CRM edit waiting for marketing, marketing's snapshot still old */
    cs_event_t c1 =
        crm("echo@x.com", 4000, CS_LINK_LEAD, "00Q00000000000EAAA", "echo@x.com", "C1", "E");
    CHECK_INT(cs_sync_apply(&c.s, &c1, 0), CS_R_QUEUED);
    cs_event_t stale = prospect("echo@x.com", 5000, "M3", "E", "Acme"); /* the agreed value */
    stale.assigned_user_id = 1;
    cs_sync_apply(&c.s, &stale, 0);
    p = st(&c, "echo@x.com");
    CHECK(p->dirty_mkt & (1u << CS_F_FIRST_NAME)); /* C1 still goes out */
    CHECK(!(p->dirty_crm & (1u << CS_F_FIRST_NAME)));
    ctx_free(&c);
}

/* A change made by crmsync's own CRM user is an echo, whatever its LastModifiedDate: even
 * when the remembered state is older than the write (a replica restarted before recording
 * it), it never wins over the marketing value. */
static void test_self_user_echo(void)
{
    ctx_t c;
    ctx_init(&c);
    snprintf(c.s.self_user, sizeof(c.s.self_user), "005000000000001AAA");
    cs_event_t m = prospect("self@x.com", 1000, "M2", "S", "Acme");
    cs_sync_apply(&c.s, &m, 0);
    push_all(&c);
    cs_event_t echo = crm("self@x.com", 9000, CS_LINK_LEAD, "00Q00000000000SAAA", "self@x.com",
                          "M3", "S"); /* our write of a value the state never recorded */
    echo.last_modified_by.p = "005000000000001AAA";
    echo.last_modified_by.len = 18;
    CHECK_INT(cs_sync_apply(&c.s, &echo, 0), CS_R_DEDUP);
    CHECK_INT(st(&c, "self@x.com")->dirty_mkt, 0);
    echo.last_modified_by.p = "005000000000002AAA"; /* a person: a real change */
    echo.time = 9100;
    CHECK_INT(cs_sync_apply(&c.s, &echo, 0), CS_R_QUEUED);
    ctx_free(&c);
}

static void test_behaviours(void)
{
    ctx_t c;
    cs_fieldmap_t saved = fm;
    fm.f[CS_F_COMPANY].wins = CS_WINS_CRM;
    fm.f[CS_F_FIRST_NAME].wins = CS_WINS_MARKETING;
    ctx_init(&c);
    cs_event_t ev = prospect("w@x.com", 1000, "Wu", "Wi", "Acme");
    cs_sync_apply(&c.s, &ev, 0);
    push_all(&c);
    cs_event_t cr =
        crm("w@x.com", 1100, CS_LINK_LEAD, "00Q000000000006AAA", "w@x.com", "Wolf", "Wi");
    cr.values[CS_F_COMPANY] = sv("CRM Corp");
    cr.present |= 1u << CS_F_COMPANY;
    CHECK_INT(cs_sync_apply(&c.s, &cr, 0), CS_R_QUEUED);
    /* company (crm_wins) goes to marketing; first name (marketing_wins) does not */
    CHECK_INT(st(&c, "w@x.com")->dirty_mkt, 1u << CS_F_COMPANY);
    push_all(&c);
    /* a later marketing edit of the CRM-owned company is not sent to the CRM */
    ev = prospect("w@x.com", 1200, "Wu", "Wi", "Mkt Corp");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_DEDUP);
    /* most_recent (last name): the newer side wins */
    ev = prospect("w@x.com", 1300, "Wu", "Wim", "CRM Corp");
    CHECK_INT(cs_sync_apply(&c.s, &ev, 0), CS_R_QUEUED);
    ctx_free(&c);
    fm = saved;
}

static void test_store_and_queue(void)
{
    cs_store_t *s = cs_store_new(fm.n);
    char key[32];
    int created;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "p%d@example.com", i);
        uint32_t idx = cs_store_upsert(s, key, strlen(key), i % 6, &created);
        REQUIRE(idx != CS_NONE);
        if (!created)
            CHECK(0);
        cs_store_at(s, idx)->prospect_id = i;
    }
    int found = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "p%d@example.com", i);
        uint32_t idx = cs_store_find(s, key, strlen(key));
        found += idx != CS_NONE && cs_store_at(s, idx)->prospect_id == i;
    }
    CHECK_INT(found, 100000);
    CHECK(cs_store_find(s, "nobody", 6) == CS_NONE);
    printf("state: %zu records, %zu bytes, %.1f bytes per prospect (record %zu)\n",
           cs_store_count(s), cs_store_bytes(s), (double)cs_store_bytes(s) / cs_store_count(s),
           cs_store_record_size(s));
    uint8_t drop[6] = {0, 1, 0, 0, 0, 1};
    cs_store_drop_partitions(s, drop, 6);
    CHECK_INT(cs_store_count(s), 100000 - 2 * 16667 + 1);
    snprintf(key, sizeof(key), "p%d@example.com", 7); /* partition 1: gone */
    CHECK(cs_store_find(s, key, strlen(key)) == CS_NONE);
    snprintf(key, sizeof(key), "p%d@example.com", 8); /* partition 2: kept, intact */
    uint32_t idx = cs_store_find(s, key, strlen(key));
    CHECK(idx != CS_NONE && cs_store_at(s, idx)->prospect_id == 8);
    cs_store_destroy(s);

    cs_queue_t *q = cs_queue_new();
    uint32_t e = cs_queue_add(q, 7, 100, 0);
    uint32_t e2 = cs_queue_add(q, 8, 101, 1);
    size_t len;
    for (int i = 0; i < 1000; i++) { /* many rewrites stay bounded */
        char v[64];
        snprintf(v, sizeof(v), "value-%d-%s", i, i % 2 ? "long-long-long-long" : "s");
        CHECK_INT(cs_queue_set_value(q, e, 3, v, strlen(v)), CS_OK);
        CHECK_INT(cs_queue_set_value(q, e, 4, "fixed", 5), CS_OK);
    }
    const char *v = cs_queue_value(q, e, 3, &len);
    CHECK(v && len == strlen("value-999-long-long-long-long") &&
          !memcmp(v, "value-999-long-long-long-long", len));
    v = cs_queue_value(q, e, 4, &len);
    CHECK(v && len == 5 && !memcmp(v, "fixed", 5));
    CHECK(cs_queue_entry(q, e)->buf_cap <= 1024);
    cs_queue_set_value(q, e, 5, NULL, 0);
    CHECK(cs_queue_value(q, e, 5, &len) == NULL && (cs_queue_entry(q, e)->has_value & 32));
    uint32_t out[4];
    CHECK_INT(cs_queue_take(q, out, 4, 1, NULL, NULL), 1); /* paused: sync-now only */
    CHECK_INT(out[0], e2);
    CHECK_INT(cs_queue_take(q, out, 4, 0, NULL, NULL), 1);
    CHECK_INT(out[0], e);
    cs_queue_entry(q, e)->retry_at = 500;
    cs_queue_move(q, e, CS_QL_RETRY);
    CHECK_INT(cs_queue_due(q, 499), 0);
    CHECK_INT(cs_queue_due(q, 500), 1);
    CHECK_INT(cs_queue_len(q, CS_QL_READY), 1);
    cs_queue_remove(q, e);
    cs_queue_remove(q, e2);
    CHECK_INT(cs_queue_total(q), 0);
    CHECK_INT(cs_queue_add(q, 9, 1, 0), e); /* entries are reused, oldest freed first */
    cs_queue_destroy(q);
}

/* While a batch is pushed, events go on being read: one of a prospect in the batch is not
 * applied (CS_R_BUSY, nothing changes) and neither is any later one of that prospect, even
 * once its entry has left the batch, so they are applied in reading order afterwards. */
static void test_busy_while_pushing(void)
{
    ctx_t c;
    ctx_init(&c);
    cs_event_t a = prospect("busy@x.com", 1000, "A", "B", "Acme");
    cs_event_t other = prospect("free@x.com", 1000, "F", "G", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &a, 0), CS_R_QUEUED);
    uint32_t out[4];
    CHECK_INT(cs_queue_take(c.s.queue, out, 4, 0, NULL, NULL), 1); /* the batch: busy@ */
    c.s.busy_check = 1;
    uint64_t queued = c.s.results[CS_R_QUEUED];
    size_t rs = cs_store_record_size(c.s.store), so = offsetof(cs_pstate_t, stashed);
    unsigned char *before = malloc(rs);
    REQUIRE(before);
    memcpy(before, st(&c, "busy@x.com"), rs);
    cs_event_t a2 = prospect("busy@x.com", 2000, "A2", "B", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &a2, 0), CS_R_BUSY);
    /* nothing changed but the stashed mark */
    CHECK(!memcmp(before, st(&c, "busy@x.com"), so));
    CHECK(!memcmp(before + so + 2, (unsigned char *)st(&c, "busy@x.com") + so + 2, rs - so - 2));
    free(before);
    CHECK_INT(st(&c, "busy@x.com")->stashed, 1);
    CHECK_INT(c.s.results[CS_R_QUEUED], queued);            /* not counted */
    CHECK_INT(cs_sync_apply(&c.s, &other, 0), CS_R_QUEUED); /* others go on */
    /* the batch's answer for busy@ (still pushing): the later event stays aside */
    cs_sync_pushed(&c.s, out[0], 1);
    CHECK_INT(st(&c, "busy@x.com")->queue, CS_NONE);
    cs_event_t a3 = prospect("busy@x.com", 3000, "A3", "B", "Acme");
    CHECK_INT(cs_sync_apply(&c.s, &a3, 0), CS_R_BUSY);
    /* after the batch, in reading order */
    c.s.busy_check = 0;
    CHECK_INT(cs_sync_apply(&c.s, &a2, 0), CS_R_QUEUED);
    CHECK_INT(st(&c, "busy@x.com")->stashed, 0);
    CHECK_INT(cs_sync_apply(&c.s, &a3, 0), CS_R_COALESCED);
    size_t len;
    cs_pstate_t *p = st(&c, "busy@x.com");
    const char *v = cs_queue_value(c.s.queue, p->queue, CS_F_FIRST_NAME, &len);
    CHECK(v && len == 2 && !memcmp(v, "A3", 2));
    CHECK_STR(cs_result_name(CS_R_BUSY), "busy");
    ctx_free(&c);
}

/* An assigned prospect (assignee 1) linked to lead id, last name "L0" agreed on both sides
 * (marketing at 1000, the CRM at 1500). */
static void agreed_lead(ctx_t *c, const char *email, const char *id)
{
    cs_event_t m0 = prospect(email, 1000, "F", "L0", "Acme");
    m0.assigned_user_id = 1;
    cs_sync_apply(&c->s, &m0, 0);
    cs_event_t link = crm(email, 1500, CS_LINK_LEAD, id, email, "F", "L0");
    cs_sync_apply(&c->s, &link, 0);
    push_all(c);
}

/* A write whose success was never recorded (the replica died before its changelog record)
 * comes back from the other system stamped with the write time, newer than a later edit that
 * is now pending: found by the chaos run. CRM edits C2 then C5 wait for marketing; marketing
 * shows C2 (the lost write) at a later time: an echo, not an edit. Both directions. */
static void test_unrecorded_write_echo(void)
{
    ctx_t c;
    ctx_init(&c);
    const char *id = "00Q00000000000UAAA";
    agreed_lead(&c, "lost@x.com", id); /* L0 agreed on both sides */
    /* the state restored after the crash: C2 was written to marketing, never recorded */
    cs_event_t c2 = crm("lost@x.com", 2000, CS_LINK_LEAD, id, "lost@x.com", "F", "C2");
    CHECK_INT(cs_sync_apply(&c.s, &c2, 0), CS_R_QUEUED);
    cs_event_t c5 = crm("lost@x.com", 2400, CS_LINK_LEAD, id, "lost@x.com", "F", "C5");
    CHECK_INT(cs_sync_apply(&c.s, &c5, 0), CS_R_COALESCED);
    cs_event_t echo = prospect("lost@x.com", 2800, "F", "C2", "Acme"); /* written at 2800 */
    echo.assigned_user_id = 1;
    CHECK_INT(cs_sync_apply(&c.s, &echo, 0), CS_R_DEDUP);
    cs_pstate_t *p = st(&c, "lost@x.com");
    CHECK_INT(p->dirty_crm, 0);
    CHECK(p->dirty_mkt & (1u << CS_F_LAST_NAME));
    size_t len;
    const char *v = cs_queue_value(c.s.queue, p->queue, CS_F_LAST_NAME, &len);
    CHECK(v && len == 2 && !memcmp(v, "C5", 2)); /* C5 still goes to marketing */
    /* a real marketing edit afterwards still wins */
    cs_event_t m9 = prospect("lost@x.com", 3000, "F", "M9", "Acme");
    m9.assigned_user_id = 1;
    CHECK_INT(cs_sync_apply(&c.s, &m9, 0), CS_R_COALESCED);
    p = st(&c, "lost@x.com");
    CHECK(p->dirty_crm & (1u << CS_F_LAST_NAME));
    push_all(&c);

    /* the other way: marketing M10 then M11 wait for the CRM; the CRM shows M10 later */
    cs_event_t m10 = prospect("lost@x.com", 4000, "F", "M10", "Acme");
    m10.assigned_user_id = 1;
    CHECK_INT(cs_sync_apply(&c.s, &m10, 0), CS_R_QUEUED);
    cs_event_t m11 = prospect("lost@x.com", 4100, "F", "M11", "Acme");
    m11.assigned_user_id = 1;
    CHECK_INT(cs_sync_apply(&c.s, &m11, 0), CS_R_COALESCED);
    cs_event_t back = crm("lost@x.com", 5000, CS_LINK_LEAD, id, "lost@x.com", "F", "M10");
    CHECK_INT(cs_sync_apply(&c.s, &back, 0), CS_R_DEDUP);
    p = st(&c, "lost@x.com");
    CHECK_INT(p->dirty_mkt, 0);
    v = cs_queue_value(c.s.queue, p->queue, CS_F_LAST_NAME, &len);
    CHECK(v && len == 3 && !memcmp(v, "M11", 3));
    ctx_free(&c);
}

/* make chaos --large: our write of a CRM value to marketing, never recorded (a kill), is read
 * back from the prospect stream BEFORE the CRM events it came from are read again. Taken as
 * a marketing edit stamped with the write's time, it would beat every CRM edit made before
 * the write but read after it. The author (updatedById = crmsync's marketing user) says it
 * is an echo. */
static void test_mkt_author_echo(void)
{
    for (int known = 0; known < 2; known++) {
        ctx_t c;
        ctx_init(&c);
        if (known)
            c.s.self_mkt_user = 101;
        const char *id = "00Q00000000000VAAA";
        agreed_lead(&c, "auth@x.com", id); /* L0 agreed on both sides; then the restart */
        cs_event_t echo = prospect("auth@x.com", 2800, "F", "C2", "Acme");
        echo.assigned_user_id = 2; /* what is not a mapped value still counts */
        echo.updated_by_id = 101;
        cs_result_t r = cs_sync_apply(&c.s, &echo, 0);
        cs_pstate_t *p = st(&c, "auth@x.com");
        CHECK_INT(p->assigned_user_id, 2);
        if (!known) {
            /* without the author, the echo is a marketing edit: the gap the rule closes */
            CHECK_INT(r, CS_R_QUEUED);
            CHECK(p->dirty_crm & (1u << CS_F_LAST_NAME));
            ctx_free(&c);
            continue;
        }
        CHECK_INT(r, CS_R_DEDUP);
        CHECK_INT(p->dirty_crm, 0);
        /* the CRM events read again: C5, made at 2400 before our write at 2800, goes out */
        cs_event_t c2 = crm("auth@x.com", 2000, CS_LINK_LEAD, id, "auth@x.com", "F", "C2");
        CHECK_INT(cs_sync_apply(&c.s, &c2, 0), CS_R_QUEUED);
        cs_event_t c5 = crm("auth@x.com", 2400, CS_LINK_LEAD, id, "auth@x.com", "F", "C5");
        CHECK_INT(cs_sync_apply(&c.s, &c5, 0), CS_R_COALESCED);
        p = st(&c, "auth@x.com");
        CHECK_INT(p->dirty_crm, 0);
        size_t len;
        const char *v = cs_queue_value(c.s.queue, p->queue, CS_F_LAST_NAME, &len);
        CHECK(v && len == 2 && !memcmp(v, "C5", 2));
        /* our own write of C5 coming back converges it */
        cs_event_t back = prospect("auth@x.com", 3500, "F", "C5", "Acme");
        back.assigned_user_id = 2;
        back.updated_by_id = 101;
        CHECK_INT(cs_sync_apply(&c.s, &back, 0), CS_R_DEDUP);
        p = st(&c, "auth@x.com");
        CHECK_INT(p->dirty_mkt, 0);
        /* a marketer's edit (another user, or none known) is a change as before */
        cs_event_t m9 = prospect("auth@x.com", 4000, "F", "M9", "Acme");
        m9.assigned_user_id = 2;
        m9.updated_by_id = 102;
        CHECK_INT(cs_sync_apply(&c.s, &m9, 0), CS_R_QUEUED);
        CHECK(st(&c, "auth@x.com")->dirty_crm & (1u << CS_F_LAST_NAME));
        ctx_free(&c);
    }
}

int main(void)
{
    cs_fieldmap_defaults(&fm);
    test_activity_classes();
    test_dedup_and_burst();
    test_do_not_sync();
    test_import_and_replay();
    test_crm_direction_and_echo();
    test_email_and_autocreate();
    test_behaviours();
    test_pending_not_persisted();
    test_partial_snapshot();
    test_activity_before_snapshot();
    test_stamped_before_snapshot();
    test_crm_edit_before_snapshot();
    test_echo_does_not_revert();
    test_self_user_echo();
    test_busy_while_pushing();
    test_unrecorded_write_echo();
    test_mkt_author_echo();
    test_store_and_queue();
    return cs_test_report();
}
