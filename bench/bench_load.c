/* The benchmark's workload: a model of a population of prospects and the events real
 * producers would write for it.
 *
 * The stream is a sequence of prospect *sessions* (a visit, a campaign touch: a few events
 * about one prospect in a row, mean length --session), interleaved with CRM-side events that
 * come independently of them (the CRM producer polls on its own), plus exact duplicates:
 *
 *   ProspectChange  the prospect's full snapshot: CREATED the first time it is seen, then a
 *                   FIELD_CHANGE (score +1..10, a new title or a new phone)
 *   Activity        a trigger (form, landing page, tracked link or email click, identified
 *                   page view; forms and landing pages add to the score) or, with share
 *                   --passive, a passive one (email send or open, anonymous page view,
 *                   visitor session) that the sync ignores
 *   CrmChange       for prospects whose lead exists, the lead as the CRM producer would read
 *                   it: mostly the record as crmsync last wrote it (an echo, with its old
 *                   LastModifiedDate), with share --crm-edits a salesperson's new title
 *   duplicate       with share --dup, an exact copy (same bytes) of one of the last 4,096
 *                   events: a producer retry, the same activity from the webhook and the pull
 *
 * The model keeps, per prospect, marketing's values and the CRM record's values. At the start
 * of a session the CRM record is assumed to hold what marketing held at the end of the
 * previous one (crmsync pushed it meanwhile: sessions of one prospect are far apart in the
 * stream), so CRM echoes carry exactly what a real CRM would. A CRM edit changes both views
 * (crmsync will carry the new title to marketing, whose later snapshots show it). */
#include "bench.h"

#include "cs_avro.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 4096

typedef struct ring_item_s {
    int topic;
    size_t keylen, len, cap;
    char key[64];
    char *buf;
} ring_item_t;

struct bench_load_s {
    const bench_opts_t *o;
    cs_avro_registry_t *reg;
    cs_avro_encoder_t *enc;
    cs_producer_t *prod;
    const char *topics[3];
    uint64_t rng;
    int64_t clock; /* source clock (ms): strictly increasing */
    uint64_t seq;  /* event ids */
    uint32_t edits;
    int64_t mkt_user[2];
    char crm_user[2][19];
    char integ[19];
    ring_item_t ring[RING];
    uint64_t nring;
    /* the current session */
    bench_pop_t *spop;
    long scur;
    int in_session;
    int paced; /* the source clock follows the wall clock */
};

/* ------------------------------------------------------------------ randomness, clock */

static uint64_t next_u64(bench_load_t *ld)
{
    uint64_t x = ld->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ld->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double urand(bench_load_t *ld)
{
    return (double)(next_u64(ld) >> 11) * 0x1.0p-53;
}

long bench_load_rand(bench_load_t *ld, long n)
{
    return n > 0 ? (long)(next_u64(ld) % (uint64_t)n) : 0;
}

static int64_t tick(bench_load_t *ld)
{
    ld->clock++;
    if (ld->paced) {
        int64_t w = cs_wall_ms();
        if (w > ld->clock)
            ld->clock = w;
    }
    return ld->clock;
}

/* ------------------------------------------------------------------ set-up */

bench_load_t *bench_load_new(const bench_opts_t *o, const cs_conf_t *kconf, char *errstr, size_t n)
{
    bench_load_t *ld = calloc(1, sizeof(*ld));
    if (!ld) {
        snprintf(errstr, n, "out of memory");
        return NULL;
    }
    ld->o = o;
    ld->rng = o->seed ? o->seed * 0x9E3779B97F4A7C15ULL : 0x9E3779B97F4A7C15ULL;
    /* Source times start 30 days back and advance 1 ms per event: always in the past. */
    ld->clock = cs_wall_ms() - 30LL * 86400000;
    if (!(ld->reg = cs_avro_registry_new(errstr, n)) ||
        !(ld->enc = cs_avro_encoder_new(ld->reg, CS_AVRO_SINGLE_OBJECT))) {
        bench_load_destroy(ld);
        return NULL;
    }
    if (!(ld->prod = cs_producer_new(kconf, NULL, NULL, errstr, n))) {
        bench_load_destroy(ld);
        return NULL;
    }
    return ld;
}

void bench_load_destroy(bench_load_t *ld)
{
    if (!ld)
        return;
    cs_producer_destroy(ld->prod);
    cs_avro_encoder_destroy(ld->enc);
    cs_avro_registry_destroy(ld->reg);
    for (int i = 0; i < RING; i++)
        free(ld->ring[i].buf);
    free(ld);
}

void bench_load_set_users(bench_load_t *ld, const int64_t mkt[2], char crm[2][19],
                          const char *integration)
{
    for (int k = 0; k < 2; k++) {
        ld->mkt_user[k] = mkt[k];
        snprintf(ld->crm_user[k], sizeof(ld->crm_user[k]), "%s", crm[k]);
    }
    snprintf(ld->integ, sizeof(ld->integ), "%s", integration);
}

void bench_load_set_topics(bench_load_t *ld, const char *const names[3])
{
    for (int k = 0; k < 3; k++)
        ld->topics[k] = names[k];
    ld->nring = 0; /* duplicates repeat events of the same topics */
    ld->in_session = 0;
}

size_t bench_pop_key(const bench_pop_t *pop, long i, char *buf)
{
    return (size_t)snprintf(buf, 64, "%s%07ld@bench.example", pop->prefix, i);
}

int bench_pop_init(bench_load_t *ld, bench_pop_t *pop, const char *prefix, long n, int64_t id_base,
                   double leads, double editable)
{
    memset(pop, 0, sizeof(*pop));
    snprintf(pop->prefix, sizeof(pop->prefix), "%s", prefix);
    pop->n = n;
    pop->id_base = id_base;
    pop->p = calloc((size_t)n, sizeof(*pop->p));
    pop->perm = malloc((size_t)n * sizeof(uint32_t));
    pop->linked = malloc((size_t)n * sizeof(uint32_t));
    pop->editable = malloc((size_t)n * sizeof(uint32_t));
    if (!pop->p || !pop->perm || !pop->linked || !pop->editable) {
        bench_pop_free(pop);
        return -1;
    }
    for (long i = 0; i < n; i++) {
        bench_prospect_t *p = &pop->p[i];
        p->mkt_id = id_base + i;
        p->score = (uint32_t)bench_load_rand(ld, 20);
        p->phone = i % 3 ? 1 : 0;
        p->owner = (uint8_t)(i & 1);
        p->crm_title = p->title;
        p->crm_phone = p->phone;
        p->crm_time = ld->clock - 86400000; /* the lead is a day older than the stream */
        if (urand(ld) < leads) {
            p->flags |= BP_LEAD;
            if (urand(ld) < editable)
                p->flags |= BP_EDITABLE;
        }
        pop->perm[i] = (uint32_t)i;
    }
    for (long i = n - 1; i > 0; i--) { /* creation order: Fisher-Yates */
        long j = bench_load_rand(ld, i + 1);
        uint32_t t = pop->perm[i];
        pop->perm[i] = pop->perm[j];
        pop->perm[j] = t;
    }
    return 0;
}

void bench_pop_free(bench_pop_t *pop)
{
    free(pop->p);
    free(pop->perm);
    free(pop->linked);
    free(pop->editable);
    memset(pop, 0, sizeof(*pop));
}

/* ------------------------------------------------------------------ values */

static void title_str(uint16_t t, char *b)
{
    if (t & 0x8000)
        snprintf(b, 32, "Sales title %u", (unsigned)(t & 0x7fff));
    else
        snprintf(b, 32, "Title %u", (unsigned)t);
}

static const char *phone_str(uint16_t ph, long i, char *b)
{
    if (!ph)
        return NULL;
    snprintf(b, 32, "+1 555 %04u %06ld", (unsigned)ph, i % 1000000);
    return b;
}

static const char *grade_of(uint32_t score)
{
    return score < 25 ? "D" : score < 50 ? "C" : score < 100 ? "B" : "A";
}

/* ------------------------------------------------------------------ writing */

static int send_raw(bench_load_t *ld, int topic, const char *key, size_t klen, const void *val,
                    size_t len)
{
    int err = cs_producer_send(ld->prod, ld->topics[topic], key, klen, val, len, 0, NULL, -1);
    if (err) {
        fprintf(stderr, "bench: produce to %s: %s\n", ld->topics[topic], cs_err_str(err));
        return -1;
    }
    return 0;
}

static void ring_put(bench_load_t *ld, int topic, const char *key, size_t klen, const void *val,
                     size_t len)
{
    ring_item_t *r = &ld->ring[ld->nring % RING];
    if (r->cap < len) {
        char *nb = realloc(r->buf, len);
        if (!nb)
            return; /* no duplicate of this one: harmless */
        r->buf = nb;
        r->cap = len;
    }
    memcpy(r->buf, val, len);
    r->len = len;
    r->topic = topic;
    r->keylen = klen < sizeof(r->key) ? klen : sizeof(r->key);
    memcpy(r->key, key, r->keylen);
    ld->nring++;
}

/* Sends an exact copy of one of the last `within` events. */
static int send_dup(bench_load_t *ld, uint64_t within, bench_mixcount_t *mc)
{
    if (within > ld->nring)
        within = ld->nring;
    if (within > RING)
        within = RING;
    const ring_item_t *r =
        &ld->ring[(ld->nring - 1 - (uint64_t)bench_load_rand(ld, (long)within)) % RING];
    mc->dup++;
    mc->total++;
    return send_raw(ld, r->topic, r->key, r->keylen, r->buf, r->len);
}

static int emit(bench_load_t *ld, int topic, const char *key, size_t klen, avro_value_t *v,
                bench_mixcount_t *mc)
{
    const void *out;
    size_t len;
    if (cs_avro_encode(ld->enc, v, &out, &len)) {
        fprintf(stderr, "bench: encode: %s\n", cs_avro_encoder_error(ld->enc));
        return -1;
    }
    ring_put(ld, topic, key, klen, out, len);
    mc->total++;
    return send_raw(ld, topic, key, klen, out, len);
}

static int emit_prospect(bench_load_t *ld, bench_pop_t *pop, long i, int cause,
                         bench_mixcount_t *mc)
{
    bench_prospect_t *p = &pop->p[i];
    char key[64], eid[32], first[32], last[32], comp[32], title[32], phone[32];
    size_t klen = bench_pop_key(pop, i, key);
    avro_value_t *v = cs_avro_encoder_value(ld->enc, CS_AVRO_PROSPECT_CHANGE);
    int64_t t = tick(ld);
    if (!v)
        return -1;
    p->last_time = t;
    snprintf(eid, sizeof(eid), "bench-%" PRIu64, ++ld->seq);
    snprintf(first, sizeof(first), "First%ld", i);
    snprintf(last, sizeof(last), "Last%ld", i);
    snprintf(comp, sizeof(comp), "Company %ld", i % 1000);
    title_str(p->title, title);
    cs_avro_set_str(v, CS_PC_EVENT_ID, eid);
    cs_avro_set_strn(v, CS_PC_PROSPECT_KEY, key, klen);
    cs_avro_set_long(v, CS_PC_PROSPECT_ID, p->mkt_id);
    cs_avro_set_enum(v, CS_PC_CAUSE, cause);
    cs_avro_set_long(v, CS_PC_UPDATED_AT, t);
    if (p->last_act)
        cs_avro_set_long(v, CS_PC_LAST_ACTIVITY_AT, p->last_act);
    cs_avro_set_long(v, CS_PC_EVENT_TIME, cs_wall_ms());
    cs_avro_set_strn(v, CS_PC_EMAIL, key, klen);
    cs_avro_set_str(v, CS_PC_FIRST_NAME, first);
    cs_avro_set_str(v, CS_PC_LAST_NAME, last);
    cs_avro_set_str(v, CS_PC_COMPANY, comp);
    cs_avro_set_str(v, CS_PC_PHONE, phone_str(p->phone, i, phone));
    cs_avro_set_str(v, CS_PC_JOB_TITLE, title);
    cs_avro_set_bool(v, CS_PC_OPTED_OUT, false);
    cs_avro_set_int(v, CS_PC_SCORE, (int32_t)p->score);
    cs_avro_set_str(v, CS_PC_GRADE, grade_of(p->score));
    cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, ld->mkt_user[p->owner]);
    return emit(ld, 0, key, klen, v, mc);
}

static int emit_activity(bench_load_t *ld, bench_pop_t *pop, long i, int trigger,
                         bench_mixcount_t *mc)
{
    static const int triggers[5] = {CS_ACTIVITY_FORM, CS_ACTIVITY_LANDING_PAGE,
                                    CS_ACTIVITY_TRACKED_LINK_CLICK, CS_ACTIVITY_EMAIL_CLICK,
                                    CS_ACTIVITY_PAGE_VIEW};
    static const int passives[4] = {CS_ACTIVITY_EMAIL_SEND, CS_ACTIVITY_EMAIL_OPEN,
                                    CS_ACTIVITY_PAGE_VIEW, CS_ACTIVITY_VISITOR_SESSION};
    bench_prospect_t *p = &pop->p[i];
    char key[64], eid[32];
    size_t klen = bench_pop_key(pop, i, key);
    avro_value_t *v = cs_avro_encoder_value(ld->enc, CS_AVRO_ACTIVITY);
    int type = trigger ? triggers[bench_load_rand(ld, 5)] : passives[bench_load_rand(ld, 4)];
    int delta = !trigger                           ? 0
                : type == CS_ACTIVITY_FORM         ? 5
                : type == CS_ACTIVITY_LANDING_PAGE ? 3
                                                   : 0;
    int64_t t = tick(ld);
    if (!v)
        return -1;
    if (trigger) {
        p->last_act = t;
        p->score += (uint32_t)delta;
        mc->trigger++;
    } else {
        mc->passive++;
    }
    snprintf(eid, sizeof(eid), "bench-%" PRIu64, ++ld->seq);
    cs_avro_set_str(v, CS_ACT_EVENT_ID, eid);
    cs_avro_set_strn(v, CS_ACT_PROSPECT_KEY, key, klen);
    cs_avro_set_long(v, CS_ACT_PROSPECT_ID, p->mkt_id);
    cs_avro_set_strn(v, CS_ACT_EMAIL, key, klen);
    cs_avro_set_enum(v, CS_ACT_TYPE, type);
    /* identified: trigger page views are a known visitor's, passive ones anonymous */
    cs_avro_set_bool(v, CS_ACT_IDENTIFIED, trigger || type != CS_ACTIVITY_PAGE_VIEW);
    cs_avro_set_int(v, CS_ACT_SCORE_DELTA, delta);
    cs_avro_set_long(v, CS_ACT_OCCURRED_AT, t);
    cs_avro_set_long(v, CS_ACT_EVENT_TIME, cs_wall_ms());
    cs_avro_set_long(v, CS_ACT_SOURCE_ACTIVITY_ID, (int64_t)ld->seq);
    return emit(ld, 1, key, klen, v, mc);
}

static void crm_caught_up(bench_prospect_t *p);

static int emit_crm(bench_load_t *ld, bench_pop_t *pop, long i, int edit, bench_mixcount_t *mc)
{
    bench_prospect_t *p = &pop->p[i];
    char key[64], eid[32], first[32], last[32], comp[32], title[32], phone[32], ext[24];
    size_t klen = bench_pop_key(pop, i, key);
    avro_value_t *v = cs_avro_encoder_value(ld->enc, CS_AVRO_CRM_CHANGE);
    if (!v)
        return -1;
    if (edit) {
        /* A salesperson retitles the lead (which holds what crmsync last wrote: the prospect
         * is not in a session); crmsync will carry the title to marketing. */
        crm_caught_up(p);
        p->crm_title = (uint16_t)(0x8000 | (++ld->edits & 0x7fff));
        p->title = p->crm_title;
        p->crm_time = tick(ld);
        mc->crm_edit++;
    } else {
        mc->crm_echo++;
    }
    snprintf(eid, sizeof(eid), "bench-%" PRIu64, ++ld->seq);
    snprintf(first, sizeof(first), "First%ld", i);
    snprintf(last, sizeof(last), "Last%ld", i);
    snprintf(comp, sizeof(comp), "Company %ld", i % 1000);
    snprintf(ext, sizeof(ext), "%" PRId64, p->mkt_id);
    title_str(p->crm_title, title);
    cs_avro_set_str(v, CS_CRM_EVENT_ID, eid);
    cs_avro_set_strn(v, CS_CRM_PROSPECT_KEY, key, klen);
    cs_avro_set_enum(v, CS_CRM_OBJECT, CS_OBJECT_LEAD);
    cs_avro_set_strn(v, CS_CRM_CRM_ID, p->lead_id, 18);
    cs_avro_set_str(v, CS_CRM_OWNER_ID, ld->crm_user[p->owner]);
    cs_avro_set_strn(v, CS_CRM_EMAIL, key, klen);
    cs_avro_set_str(v, CS_CRM_FIRST_NAME, first);
    cs_avro_set_str(v, CS_CRM_LAST_NAME, last);
    cs_avro_set_str(v, CS_CRM_COMPANY, comp);
    cs_avro_set_str(v, CS_CRM_PHONE, phone_str(p->crm_phone, i, phone));
    cs_avro_set_str(v, CS_CRM_TITLE, title);
    cs_avro_set_bool(v, CS_CRM_OPTED_OUT, false);
    cs_avro_set_long(v, CS_CRM_LAST_MODIFIED_DATE, p->crm_time);
    cs_avro_set_long(v, CS_CRM_SYSTEM_MODSTAMP, p->crm_time);
    cs_avro_set_str(v, CS_CRM_LAST_MODIFIED_BY_ID, edit ? ld->crm_user[p->owner] : ld->integ);
    /* the external id exists once crmsync has written the lead */
    cs_avro_set_str(v, CS_CRM_EXTERNAL_ID, (p->flags & BP_STAMPED) ? ext : NULL);
    cs_avro_set_bool(v, CS_CRM_DELETED, false);
    cs_avro_set_long(v, CS_CRM_EVENT_TIME, cs_wall_ms());
    return emit(ld, 2, key, klen, v, mc);
}

/* ------------------------------------------------------------------ the stream */

static void mark_created(bench_pop_t *pop, long i)
{
    bench_prospect_t *p = &pop->p[i];
    p->flags |= BP_CREATED;
    if (p->flags & BP_LEAD) {
        pop->linked[pop->nlinked++] = (uint32_t)i;
        if (p->flags & BP_EDITABLE)
            pop->editable[pop->neditable++] = (uint32_t)i;
    }
}

/* The CRM record holds what marketing held when the previous session ended: crmsync pushed
 * it meanwhile. */
static void crm_caught_up(bench_prospect_t *p)
{
    if (p->flags & BP_CREATED)
        p->flags |= BP_STAMPED;
    p->crm_title = p->title;
    p->crm_phone = p->phone;
    if (p->last_time > p->crm_time)
        p->crm_time = p->last_time;
}

/* A new prospect with probability (not yet created) / (sessions still expected), so that
 * creations spread over the whole stream and every prospect is created. */
static void start_session(bench_load_t *ld, bench_pop_t *pop, double sessions_left)
{
    long left_new = pop->n - pop->ncreated;
    long i;
    if (left_new > 0 &&
        (pop->ncreated == 0 || urand(ld) * (sessions_left > 1 ? sessions_left : 1) < left_new))
        i = pop->perm[pop->ncreated++];
    else
        i = pop->perm[bench_load_rand(ld, pop->ncreated)];
    ld->spop = pop;
    ld->scur = i;
    ld->in_session = 1;
    if (pop->p[i].flags & BP_CREATED)
        crm_caught_up(&pop->p[i]);
}

static void mutate(bench_load_t *ld, bench_prospect_t *p)
{
    double r = urand(ld);
    if (r < 0.7) {
        p->score += 1 + (uint32_t)bench_load_rand(ld, 10);
    } else if (r < 0.9) {
        p->title = (uint16_t)(((p->title & 0x7fff) + 1) & 0x7fff);
    } else {
        p->phone = (uint16_t)(p->phone + 1);
        if (!p->phone)
            p->phone = 1;
    }
}

static int pick_kind(bench_load_t *ld)
{
    const int *m = ld->o->mix;
    long r = bench_load_rand(ld, m[0] + m[1] + m[2]);
    return r < m[0] ? 0 : r < m[0] + m[1] ? 1 : 2;
}

/* One session event for prospect i of pop (kind 0: a change, else an activity). */
static int session_event(bench_load_t *ld, bench_pop_t *pop, long i, int kind, bench_mixcount_t *mc)
{
    bench_prospect_t *p = &pop->p[i];
    if (!(p->flags & BP_CREATED)) {
        mark_created(pop, i);
        mc->created++;
        return emit_prospect(ld, pop, i, CS_CAUSE_CREATED, mc);
    }
    if (kind == 0) {
        mutate(ld, p);
        mc->changed++;
        return emit_prospect(ld, pop, i, CS_CAUSE_FIELD_CHANGE, mc);
    }
    return emit_activity(ld, pop, i, urand(ld) >= ld->o->passive, mc);
}

/* The next event of the stream. remaining: events still to write (this one included). */
static int next_event(bench_load_t *ld, bench_pop_t *pop, long remaining, double session_mean,
                      bench_mixcount_t *mc)
{
    const int *m = ld->o->mix;
    int kind;
    if (ld->nring && urand(ld) < ld->o->dup)
        return send_dup(ld, RING, mc);
    kind = pick_kind(ld);
    if (kind == 2 && pop->nlinked > 0) {
        int edit = pop->neditable > 0 && urand(ld) < ld->o->crm_edits;
        long i = edit ? pop->editable[bench_load_rand(ld, pop->neditable)]
                      : pop->linked[bench_load_rand(ld, pop->nlinked)];
        if (edit && ld->in_session && ld->spop == pop && ld->scur == i)
            edit = 0; /* nobody edits a lead while its prospect's session is in flight */
        return emit_crm(ld, pop, i, edit, mc);
    }
    if (!ld->in_session || ld->spop != pop) {
        double share = (1 - ld->o->dup) * (m[0] + m[1]) / (double)(m[0] + m[1] + m[2]);
        start_session(ld, pop, remaining * share / session_mean);
    }
    int rc = session_event(ld, pop, ld->scur, kind, mc);
    if (urand(ld) * session_mean < 1.0)
        ld->in_session = 0;
    return rc;
}

/* Sessions as long as --session asks, unless that leaves too few to create every prospect. */
static double session_mean(const bench_load_t *ld, const bench_pop_t *pop, long events)
{
    const int *m = ld->o->mix;
    double share = (1 - ld->o->dup) * (m[0] + m[1]) / (double)(m[0] + m[1] + m[2]);
    double per_new =
        events * share / (double)(pop->n - pop->ncreated > 0 ? pop->n - pop->ncreated : 1);
    double s = ld->o->session;
    if (per_new < s)
        s = per_new < 1 ? 1 : per_new;
    return s;
}

int bench_load_bulk(bench_load_t *ld, bench_pop_t *pop, long events, bench_mixcount_t *mc)
{
    double sm = session_mean(ld, pop, events);
    ld->paced = 0;
    for (long k = 0; k < events; k++) {
        if (next_event(ld, pop, events - k, sm, mc))
            return -1;
        if ((k & 0xffff) == 0 && cs_run_stopping())
            return -1;
    }
    return bench_load_flush(ld);
}

int bench_load_paced(bench_load_t *ld, bench_pop_t *pop, int rate, double seconds,
                     void (*tick_cb)(void *opaque, int64_t elapsed_ms), void *opaque,
                     bench_mixcount_t *mc)
{
    long total = (long)(rate * seconds), sent = 0;
    double sm = session_mean(ld, pop, total);
    int64_t t0 = cs_now_us(), last_tick = 0;
    ld->paced = 1;
    while (sent < total && !cs_run_stopping()) {
        int64_t el = cs_now_us() - t0;
        long due = (long)((double)rate * (double)el / 1e6);
        if (due > total)
            due = total;
        while (sent < due) {
            if (next_event(ld, pop, total - sent, sm, mc))
                return -1;
            sent++;
        }
        cs_producer_poll(ld->prod, 0);
        if (tick_cb && el / 1000 - last_tick >= 100) {
            last_tick = el / 1000;
            tick_cb(opaque, last_tick);
        }
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    ld->paced = 0;
    return cs_run_stopping() ? -1 : bench_load_flush(ld);
}

int bench_load_burst(bench_load_t *ld, bench_pop_t *pop, long i, int events, bench_mixcount_t *mc)
{
    bench_prospect_t *p = &pop->p[i];
    uint64_t first = ld->nring;
    ld->paced = 0;
    ld->in_session = 0; /* the bulk stream's session does not continue across a burst */
    if (p->flags & BP_CREATED) {
        crm_caught_up(p);
        mutate(ld, p);
        mc->changed++;
        if (emit_prospect(ld, pop, i, CS_CAUSE_FIELD_CHANGE, mc))
            return -1;
    } else if (session_event(ld, pop, i, 0, mc)) {
        return -1;
    }
    for (int k = 1; k < events; k++) {
        int kind, rc;
        if (urand(ld) < ld->o->dup) {
            rc = send_dup(ld, ld->nring - first, mc); /* a repeat of this burst's events */
        } else if ((kind = pick_kind(ld)) == 2 && (p->flags & BP_LEAD)) {
            rc = emit_crm(ld, pop, i, 0, mc);
        } else {
            rc = session_event(ld, pop, i, kind, mc);
        }
        if (rc)
            return -1;
    }
    return 0;
}

int bench_load_flush(bench_load_t *ld)
{
    uint64_t failed0 = cs_producer_failed(ld->prod);
    if (cs_producer_flush(ld->prod, 120000)) {
        fprintf(stderr, "bench: %d event(s) still undelivered after 120 s\n",
                cs_producer_outq_len(ld->prod));
        return -1;
    }
    if (cs_producer_failed(ld->prod) != failed0 || cs_producer_failed(ld->prod)) {
        fprintf(stderr, "bench: %" PRIu64 " event(s) failed delivery\n",
                cs_producer_failed(ld->prod));
        return -1;
    }
    return 0;
}
