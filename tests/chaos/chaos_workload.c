/* The workload of a chaos run and its ledger.
 *
 *   marketing thread  creates every prospect through the v5 API (POST /prospects), then edits
 *                     the MKT, DNS and UNASSIGNED ones (PATCH /prospects/{id})
 *   CRM thread        finds the records crmsync linked (the snapshot's external ids), then
 *                     has sales people edit the CRM group's records (/sandbox/crm/edit)
 *   activity thread   posts activity webhooks to crmsync-activity-producer in batches
 *
 * Every call is retried until it succeeds (503s, rate limits and expired tokens are part of
 * the run); the ledger records a value once the call that wrote it succeeded. Edits of one
 * prospect are at least 1.1 s apart and in a later wall-clock second than the previous one,
 * so both systems' whole-second timestamps order them. */
#include "chaos.h"

#include "cs_err.h"
#include "cs_run.h"
#include "cs_time.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define ACT_BATCH 500
#define EDIT_GAP_MS 1100   /* between two edits of one prospect */
#define LINK_GRACE_MS 2000 /* between a record's link and its first CRM edit */

const char *const ch_group_names[G_COUNT_] = {"mkt", "crm",        "activity",
                                              "dns", "unassigned", "import"};

static const char *const companies[] = {"Acme",  "Globex", "Initech", "Umbrella", "Hooli",
                                        "Stark", "Wayne",  "Wonka",   "Tyrell",   "Aperture"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- randomness */

static pthread_mutex_t rng_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

void ch_rand_seed(unsigned seed)
{
    rng_state = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)seed * 0x100000001B3ULL);
    if (!rng_state)
        rng_state = 1;
}

uint32_t ch_rand(uint32_t n)
{
    uint64_t x;
    pthread_mutex_lock(&rng_mu);
    x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    pthread_mutex_unlock(&rng_mu);
    return n ? (uint32_t)((x >> 11) % n) : 0;
}

/* ---------------------------------------------------------------- HTTP with retries */

typedef struct wk_s {
    ch_t *ch;
    cs_http_t *plain; /* sandbox helpers, the ingest endpoint */
    cs_http_t *api;   /* v5 (OAuth token from the sandbox; refreshed on 401 by cs_http) */
    cs_oauth_t *oauth;
} wk_t;

static int wk_open(wk_t *w, ch_t *ch, int with_api)
{
    char err[256];
    cs_http_opts_t o;
    memset(w, 0, sizeof(*w));
    w->ch = ch;
    memset(&o, 0, sizeof(o));
    o.timeout_ms = 60000;
    o.name = "chaos";
    if (!(w->plain = cs_http_new(&o, err, sizeof(err))))
        return -1;
    if (with_api) {
        cs_oauth_opts_t oo;
        memset(&oo, 0, sizeof(oo));
        oo.login_url = ch->sandbox_url;
        oo.client_id = "crmsync-sandbox-client";
        oo.client_secret = "sandbox-secret";
        /* Marketers edit as themselves (a password token for Sam, marketing user 101), not as
         * the integration user crmsync writes as: its changes are echoes to the consumer. */
        oo.grant_type = "password";
        oo.username = "sam@acme.example";
        oo.password = "sandbox-password";
        if (!(w->oauth = cs_oauth_new(&oo, err, sizeof(err))))
            return -1;
        o.get_token = cs_oauth_get_token;
        o.token_opaque = w->oauth;
        if (!(w->api = cs_http_new(&o, err, sizeof(err))))
            return -1;
    }
    return 0;
}

static void wk_close(wk_t *w)
{
    cs_http_destroy(w->plain);
    cs_http_destroy(w->api);
    cs_oauth_destroy(w->oauth);
}

static void fatal(ch_t *ch, const char *fmt, const char *a, const char *b)
{
    pthread_mutex_lock(&ch->mu);
    if (!ch->fatal[0])
        snprintf(ch->fatal, sizeof(ch->fatal), fmt, a, b);
    pthread_mutex_unlock(&ch->mu);
    ch_say("workload error: %s", ch->fatal);
    atomic_store(&ch->stop, 1);
}

/* One request, repeated while the answer is a retryable failure (transport, 5xx, rate limit,
 * an expired token that a refresh did not cure). *status and *out (new reference, may be
 * NULL) describe the last answer. Returns CS_OK or the final error. */
static int call(ch_t *ch, cs_http_t *h, const char *method, const char *url,
                const char *const *headers, json_t *body, int *status, json_t **out)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    cs_http_result_t res;
    int err, attempt = 0;
    if (out)
        *out = NULL;
    for (;;) {
        err = cs_http_request(h, method, url, headers, text, text ? strlen(text) : 0, &res);
        if (err == CS_OK || atomic_load(&ch->stop))
            break;
        if (cs_err_class(err) != CS_CLASS_RETRY && err != CS_ERR_AUTH)
            break;
        /* The injected 503s say Retry-After: 1, a Kafka outage at the ingest more. The
         * workload is a crowd of users, not one polite client: it tries again soon (the
         * faults are injected per call), backing off up to half a second. */
        int64_t wait = 20LL << (attempt < 5 ? attempt : 5);
        if (wait > 500)
            wait = 500;
        attempt++;
        cs_run_sleep_ms(wait);
    }
    free(text);
    if (status)
        *status = res.status;
    if (out && res.body_len) {
        json_t *j = cs_http_result_json(&res);
        *out = j ? json_incref(j) : NULL;
    }
    return err;
}

static const char *const v5_headers[] = {"Pardot-Business-Unit-Id: 0Uv5g000000SBOXCA4", NULL};

static int v5(wk_t *w, const char *method, const char *path, json_t *body, int *status,
              json_t **out)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/api/v5/objects%s", w->ch->sandbox_url, path);
    return call(w->ch, w->api, method, url, v5_headers, body, status, out);
}

/* ---------------------------------------------------------------- ledger */

static int edit_ready(const ch_prospect_t *p, int64_t now)
{
    return now - p->last_edit_ms >= EDIT_GAP_MS && now / 1000 > p->last_edit_ms / 1000;
}

/* Spreads `total` items over span_ms from t0 (monotonic): sleeps until item `done` is due. */
static void pace(ch_t *ch, long done, long total, int64_t t0, int64_t span_ms)
{
    if (total <= 0)
        return;
    int64_t due = t0 + (int64_t)((double)span_ms * (double)done / (double)total);
    while (cs_now_ms() < due && !atomic_load(&ch->stop))
        cs_run_sleep_ms(due - cs_now_ms() > 100 ? 100 : due - cs_now_ms());
}

static int seed_record(ch_t *ch, cs_http_t *h, ch_prospect_t *p, const char *type, char out[19])
{
    json_t *fields = json_pack("{s:s, s:s, s:s, s:s, s:s}", "Email", p->email, "FirstName",
                               p->first, "LastName", p->last, "Title", p->title, "Phone", p->phone);
    json_t *ans = NULL, *body;
    const char *owner = p->seed_owner;
    int st;
    if (!strcmp(type, "Lead"))
        json_object_set_new(fields, "Company", json_string(p->company));
    /* the owner is whoever entered the record */
    body = json_pack("{s:s, s:o, s:s}", "type", type, "fields", fields, "user", owner);
    st = ch_sandbox(ch, h, "POST", "/sandbox/crm/edit", body, &ans);
    json_decref(body);
    const char *id = json_string_value(json_object_get(ans, "id"));
    if (st != 200 || !json_is_true(json_object_get(ans, "success")) || !id || strlen(id) != 18) {
        char *t = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
        ch_say("seeding a %s for %s failed: HTTP %d %s", type, p->email, st, t ? t : "");
        free(t);
        json_decref(ans);
        return -1;
    }
    memcpy(out, id, 19);
    json_decref(ans);
    atomic_fetch_add(&ch->n_seeded, 1);
    return 0;
}

int ch_workload_init(ch_t *ch)
{
    wk_t w;
    int rc = 0;
    ch->n = ch->nprospects;
    ch->p = calloc((size_t)ch->n, sizeof(*ch->p));
    if (!ch->p)
        return -1;
    /* Groups in a fixed pattern of 20 (so every prefix of the list has all of them):
     * 7 MKT, 4 CRM, 4 ACTIVITY, 1 DNS, 2 UNASSIGNED, 2 IMPORT. */
    static const int pattern[20] = {
        G_MKT, G_CRM, G_ACT, G_MKT, G_IMPORT, G_UNASSIGNED, G_MKT, G_CRM, G_ACT, G_DNS,
        G_MKT, G_CRM, G_ACT, G_MKT, G_IMPORT, G_UNASSIGNED, G_MKT, G_CRM, G_ACT, G_MKT};
    int ncrm = 0;
    for (int i = 0; i < ch->n; i++) {
        ch_prospect_t *p = &ch->p[i];
        p->idx = i;
        p->group = pattern[i % 20];
        /* some e-mails in mixed case: the key is the lower-cased one */
        snprintf(p->email, sizeof(p->email),
                 i % 10 == 3 ? "P%05d@Chaos.Example" : "p%05d@chaos.example", i);
        snprintf(p->first, sizeof(p->first), "Fn%05d", i);
        snprintf(p->last, sizeof(p->last), "Ln%05d", i);
        snprintf(p->company, sizeof(p->company), "%s %05d", companies[(size_t)i % NELEM(companies)],
                 i);
        snprintf(p->title, sizeof(p->title), "Title %05d", i);
        snprintf(p->phone, sizeof(p->phone), "+1 555 %05d", i);
        p->assigned = ch->mkt_users[(i / 20) % 3]; /* Sam, Rita, Mo (Mo has no CRM user) */
        p->dns = p->group == G_DNS;
        p->act_burst = p->group == G_ACT && (i / 20) % 2 == 0;
        if (p->group == G_UNASSIGNED)
            p->assigned = -1;
        if (p->group == G_CRM) {
            static const int seeds[20] = {SEED_LEAD, SEED_LEAD,    SEED_CONTACT, SEED_NONE,
                                          SEED_LEAD, SEED_CONTACT, SEED_NONE,    SEED_BOTH,
                                          SEED_LEAD, SEED_CONTACT, SEED_NONE,    SEED_LEAD,
                                          SEED_NONE, SEED_CONTACT, SEED_LEAD,    SEED_NONE,
                                          SEED_BOTH, SEED_CONTACT, SEED_LEAD,    SEED_NONE};
            p->seed = seeds[ncrm % 20];
            /* matched records need no assignment: some seeded ones stay unassigned */
            if (p->seed != SEED_NONE && ncrm % 4 == 1)
                p->assigned = -1;
            ncrm++;
        }
        /* the person who entered the seeded records: the assignee's CRM user, else Ada */
        int u = p->assigned == ch->mkt_users[0] ? 0 : p->assigned == ch->mkt_users[1] ? 1 : 2;
        snprintf(p->seed_owner, sizeof(p->seed_owner), "%s",
                 u == 0   ? "sam@acme.example"
                 : u == 1 ? "rita@acme.example"
                          : "ada@acme.example");
    }
    /* The CRM records sales people entered before the prospects existed. */
    if (wk_open(&w, ch, 0) != 0) {
        wk_close(&w);
        return -1;
    }
    for (int i = 0; i < ch->n && !rc; i++) {
        ch_prospect_t *p = &ch->p[i];
        if (p->seed == SEED_LEAD || p->seed == SEED_BOTH)
            rc = seed_record(ch, w.plain, p, "Lead", p->seed_lead);
        if (!rc && (p->seed == SEED_CONTACT || p->seed == SEED_BOTH))
            rc = seed_record(ch, w.plain, p, "Contact", p->seed_contact);
    }
    wk_close(&w);
    return rc;
}

void ch_workload_free(ch_t *ch)
{
    free(ch->p);
    ch->p = NULL;
}

/* ---------------------------------------------------------------- marketing thread */

static int create_prospect(wk_t *w, ch_prospect_t *p)
{
    ch_t *ch = w->ch;
    json_t *body, *out = NULL;
    int st = 0, err;
    pthread_mutex_lock(&ch->mu);
    body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "email", p->email, "firstName", p->first,
                     "lastName", p->last, "company", p->company, "jobTitle", p->title, "phone",
                     p->phone);
    pthread_mutex_unlock(&ch->mu);
    if (p->assigned >= 0)
        json_object_set_new(body, "assignedToId", json_integer(p->assigned));
    if (p->dns)
        json_object_set_new(body, "crmsyncDoNotSync__c", json_true());
    err = v5(w, "POST", "/prospects?fields=id", body, &st, &out);
    json_decref(body);
    if (err && json_integer_value(json_object_get(out, "code")) == 9) {
        /* e-mail already used: an earlier attempt went through after all */
        char path[256];
        json_decref(out);
        out = NULL;
        snprintf(path, sizeof(path), "/prospects?fields=id&email=%s", p->email);
        err = v5(w, "GET", path, NULL, &st, &out);
        json_t *v = json_array_get(json_object_get(out, "values"), 0);
        if (!err && v)
            json_object_set(out, "id", json_object_get(v, "id"));
    }
    if (err || !json_is_integer(json_object_get(out, "id"))) {
        char *t = out ? json_dumps(out, JSON_COMPACT) : NULL;
        fatal(ch, "creating prospect %s failed: %s", p->email, t ? t : cs_err_name(err));
        free(t);
        json_decref(out);
        return -1;
    }
    p->id = json_integer_value(json_object_get(out, "id"));
    json_decref(out);
    p->created_ms = p->last_edit_ms = cs_wall_ms();
    atomic_store(&p->created, 1);
    atomic_fetch_add(&ch->n_created, 1);
    return 0;
}

/* A marketer changes one or two fields of p. */
static int mkt_edit(wk_t *w, ch_prospect_t *p)
{
    ch_t *ch = w->ch;
    static const char *const mkt_fields[] = {"firstName", "company", "jobTitle"};
    static const char *const any_fields[] = {"firstName", "company", "jobTitle", "lastName",
                                             "phone"};
    const char *const *fields = p->group == G_MKT ? mkt_fields : any_fields;
    int nf = p->group == G_MKT ? 3 : 5, k = p->mkt_edits + 1;
    int a = (int)ch_rand((uint32_t)nf), b = ch_rand(3) == 0 ? (int)ch_rand((uint32_t)nf) : a;
    char vals[2][48];
    const char *names[2] = {fields[a], fields[b]};
    json_t *body = json_object(), *out = NULL;
    int st = 0, err;
    for (int j = 0; j < 2; j++) {
        const char *f = names[j];
        if (!strcmp(f, "firstName"))
            snprintf(vals[j], sizeof(vals[j]), "Fn%05d-m%d", p->idx, k);
        else if (!strcmp(f, "company"))
            snprintf(vals[j], sizeof(vals[j]), "%s %05d-m%d",
                     companies[(size_t)(p->idx + k) % NELEM(companies)], p->idx, k);
        else if (!strcmp(f, "jobTitle"))
            snprintf(vals[j], sizeof(vals[j]), "Title %05d-m%d", p->idx, k);
        else if (!strcmp(f, "lastName"))
            snprintf(vals[j], sizeof(vals[j]), "Ln%05d-m%d", p->idx, k);
        else
            snprintf(vals[j], sizeof(vals[j]), "+1 555 %05d %d", p->idx, k);
        json_object_set_new(body, f, json_string(vals[j]));
    }
    char path[64];
    snprintf(path, sizeof(path), "/prospects/%" PRId64 "?fields=id", p->id);
    err = v5(w, "PATCH", path, body, &st, &out);
    json_decref(body);
    if (err) {
        char *t = out ? json_dumps(out, JSON_COMPACT) : NULL;
        fatal(ch, "editing prospect %s failed: %s", p->email, t ? t : cs_err_name(err));
        free(t);
        json_decref(out);
        return -1;
    }
    json_decref(out);
    pthread_mutex_lock(&ch->mu);
    for (int j = 0; j < 2; j++) {
        const char *f = names[j];
        char *dst = !strcmp(f, "firstName")  ? p->first
                    : !strcmp(f, "company")  ? p->company
                    : !strcmp(f, "jobTitle") ? p->title
                    : !strcmp(f, "lastName") ? p->last
                                             : p->phone;
        snprintf(dst, 48, "%s", vals[j]);
    }
    p->last_edit_ms = cs_wall_ms();
    p->mkt_edits++;
    pthread_mutex_unlock(&ch->mu);
    atomic_fetch_add(&ch->n_mkt_edits, 1);
    return 0;
}

typedef struct mkt_arg_s {
    ch_t *ch;
    int k, n; /* this thread handles the prospects with idx % n == k */
} mkt_arg_t;

static void *mkt_thread(void *arg)
{
    mkt_arg_t *ma = arg;
    ch_t *ch = ma->ch;
    long quota = (ch->mkt_edits + ma->n - 1 - ma->k) / ma->n;
    wk_t w;
    int *list = NULL, nlist = 0, cap;
    long done = 0;
    int64_t t0, span;
    if (wk_open(&w, ch, 1) != 0) {
        fatal(ch, "%s%s", "cannot open the marketing client", "");
        wk_close(&w); /* what wk_open opened before it failed */
        return NULL;
    }
    /* Creation is spread over the first fifth of the run (as fast as it goes otherwise). */
    t0 = cs_now_ms();
    for (int i = ma->k; i < ch->n && !atomic_load(&ch->stop); i += ma->n) {
        if (create_prospect(&w, &ch->p[i]))
            goto out;
        pace(ch, i / ma->n + 1, ch->n / ma->n, t0, ch->duration_ms / 5);
    }
    list = malloc((size_t)ch->n * sizeof(*list));
    if (!list)
        goto out;
    for (int i = ma->k; i < ch->n; i += ma->n)
        if (ch->p[i].group == G_MKT || ch->p[i].group == G_DNS || ch->p[i].group == G_UNASSIGNED)
            list[nlist++] = i;
    t0 = cs_now_ms();
    span = ch->duration_ms * 85 / 100 - (t0 - ch->start_ms);
    if (span < 1000)
        span = 1000;
    /* no prospect gets more than twice its share */
    cap = nlist ? 2 * (int)((quota + nlist - 1) / nlist) : 0;
    while (done < quota && nlist && !atomic_load(&ch->stop)) {
        int64_t now = cs_wall_ms();
        int edited = 0;
        /* a random starting point, then the first prospect ready for an edit */
        int start = (int)ch_rand((uint32_t)nlist);
        for (int k = 0; k < nlist && !edited; k++) {
            ch_prospect_t *p = &ch->p[list[(start + k) % nlist]];
            if (p->mkt_edits >= cap || !edit_ready(p, now))
                continue;
            if (mkt_edit(&w, p))
                goto out;
            edited = 1;
        }
        if (!edited) {
            cs_run_sleep_ms(20);
            continue;
        }
        done++;
        pace(ch, done, quota, t0, span);
    }
out:
    free(list);
    wk_close(&w);
    atomic_fetch_add(&ch->threads_done, 1);
    return NULL;
}

/* ---------------------------------------------------------------- CRM thread */

/* Reads the snapshot and marks the CRM and ACTIVITY prospects whose record crmsync linked
 * (stamped with the prospect id). Returns how many are still unlinked. */
static int find_links(wk_t *w)
{
    ch_t *ch = w->ch;
    json_t *snap = NULL, *byext = json_object(), *r;
    size_t i;
    int left = 0;
    if (ch_sandbox(ch, w->plain, "GET", "/sandbox/snapshot", NULL, &snap) != 200 || !snap) {
        json_decref(snap);
        json_decref(byext);
        return -1;
    }
    static const char *const types[2] = {"Lead", "Contact"};
    for (int t = 0; t < 2; t++)
        json_array_foreach(json_object_get(json_object_get(snap, "crm"), types[t]), i, r)
        {
            const char *ext = json_string_value(json_object_get(r, "Crmsync_Prospect_Id__c"));
            if (!ext || json_is_true(json_object_get(r, "IsDeleted")))
                continue;
            json_t *prev = json_object_get(byext, ext);
            /* a contact wins over a lead */
            if (!prev || t == 1)
                json_object_set(byext, ext, r);
        }
    for (int k = 0; k < ch->n; k++) {
        ch_prospect_t *p = &ch->p[k];
        char ext[24];
        if ((p->group != G_CRM && p->group != G_ACT) || atomic_load(&p->linked))
            continue;
        if (!atomic_load(&p->created)) {
            left++;
            continue;
        }
        snprintf(ext, sizeof(ext), "%" PRId64, p->id);
        r = json_object_get(byext, ext);
        if (!r) {
            left++;
            continue;
        }
        const char *id = json_string_value(json_object_get(r, "Id"));
        /* sales people edit the record crmsync must sync with: the contact when there is one */
        if (p->seed == SEED_CONTACT || p->seed == SEED_BOTH) {
            memcpy(p->crm_id, p->seed_contact, 19);
            p->crm_is_contact = 1;
        } else if (p->seed == SEED_LEAD) {
            memcpy(p->crm_id, p->seed_lead, 19);
        } else if (id && strlen(id) == 18) {
            memcpy(p->crm_id, id, 19);
        }
        atomic_store(&p->linked_ms, cs_wall_ms());
        atomic_store(&p->linked, 1);
    }
    json_decref(byext);
    json_decref(snap);
    return left;
}

static int crm_edit(wk_t *w, ch_prospect_t *p)
{
    ch_t *ch = w->ch;
    static const char *const fields[3] = {"Phone", "LastName", "Title"};
    static const char *const people[2] = {"sam@acme.example", "rita@acme.example"};
    int k = p->crm_edits + 1, a = (int)ch_rand(3), b = ch_rand(3) == 0 ? (int)ch_rand(3) : a;
    char vals[2][48];
    json_t *f = json_object(), *out = NULL, *body;
    int st;
    for (int j = 0; j < 2; j++) {
        int which = j ? b : a;
        if (which == 0)
            snprintf(vals[j], sizeof(vals[j]), "+1 555 %05d c%d", p->idx, k);
        else if (which == 1)
            snprintf(vals[j], sizeof(vals[j]), "Ln%05d-c%d", p->idx, k);
        else
            snprintf(vals[j], sizeof(vals[j]), "Title %05d-c%d", p->idx, k);
        json_object_set_new(f, fields[which], json_string(vals[j]));
    }
    body = json_pack("{s:s, s:s, s:o, s:s}", "type", p->crm_is_contact ? "Contact" : "Lead", "id",
                     p->crm_id, "fields", f, "user", people[ch_rand(2)]);
    st = ch_sandbox(ch, w->plain, "POST", "/sandbox/crm/edit", body, &out);
    json_decref(body);
    if (st != 200 || !json_is_true(json_object_get(out, "success"))) {
        char *t = out ? json_dumps(out, JSON_COMPACT) : NULL;
        fatal(ch, "a CRM edit of %s failed: %s", p->crm_id, t ? t : "no answer");
        free(t);
        json_decref(out);
        return -1;
    }
    json_decref(out);
    pthread_mutex_lock(&ch->mu);
    for (int j = 0; j < 2; j++) {
        int which = j ? b : a;
        char *dst = which == 0 ? p->phone : which == 1 ? p->last : p->title;
        memcpy(dst, vals[j], strlen(vals[j]) + 1); /* both 48 bytes */
        p->crm_origin |= 1u << (which == 0 ? CH_F_PHONE : which == 1 ? CH_F_LAST : CH_F_TITLE);
    }
    p->last_edit_ms = cs_wall_ms();
    p->crm_edits++;
    pthread_mutex_unlock(&ch->mu);
    atomic_fetch_add(&ch->n_crm_edits, 1);
    return 0;
}

static void *crm_thread(void *arg)
{
    ch_t *ch = arg;
    wk_t w;
    int *list = NULL, nlist = 0, left = 1, cap;
    long done = 0;
    int64_t next_links = 0, t0 = cs_now_ms();
    int64_t span = ch->duration_ms * 85 / 100;
    int64_t link_every = ch->n > 5000 ? 4000 : 2000;
    if (wk_open(&w, ch, 0) != 0) {
        fatal(ch, "%s%s", "cannot open the CRM client", "");
        wk_close(&w);
        return NULL;
    }
    list = malloc((size_t)ch->n * sizeof(*list));
    if (!list)
        goto out;
    for (int i = 0; i < ch->n; i++)
        if (ch->p[i].group == G_CRM)
            list[nlist++] = i;
    cap = nlist ? 2 * ((ch->crm_edits + nlist - 1) / nlist) : 0;
    /* edits as long as there are some to make; links until every record is linked (the
     * activity thread waits for the ACTIVITY group's links too) */
    while (!atomic_load(&ch->stop) && (done < ch->crm_edits || left > 0)) {
        int64_t now = cs_wall_ms();
        int edited = 0;
        if (left > 0 && cs_now_ms() >= next_links) {
            left = find_links(&w);
            next_links = cs_now_ms() + link_every;
        }
        if (cs_now_ms() - ch->start_ms > ch->duration_ms * 3 / 2) {
            /* the pipeline is behind: the chaos has to end some time */
            if (left > 0 || done < ch->crm_edits)
                ch_say("CRM workload: stopping at 1.5x the duration with %ld of %d edits made and "
                       "%d record(s) not linked yet",
                       done, ch->crm_edits, left);
            break;
        }
        if (done >= ch->crm_edits) {
            cs_run_sleep_ms(200);
            continue;
        }
        int start = nlist ? (int)ch_rand((uint32_t)nlist) : 0;
        for (int k = 0; k < nlist && !edited; k++) {
            ch_prospect_t *p = &ch->p[list[(start + k) % nlist]];
            if (p->crm_edits >= cap || !atomic_load(&p->linked) ||
                now - atomic_load(&p->linked_ms) < LINK_GRACE_MS || !edit_ready(p, now))
                continue;
            if (crm_edit(&w, p))
                goto out;
            edited = 1;
        }
        if (!edited) {
            cs_run_sleep_ms(20);
            continue;
        }
        done++;
        pace(ch, done, ch->crm_edits, t0, span);
    }
out:
    free(list);
    wk_close(&w);
    atomic_fetch_add(&ch->threads_done, 1);
    return NULL;
}

/* ---------------------------------------------------------------- activity thread */

static const struct {
    const char *type;
    int identified, score;
} triggers[] = {{"form", 1, 0},         {"form_handler", 1, 0},
                {"landing_page", 1, 0}, {"tracked_link_click", 1, 0},
                {"email_click", 1, 0},  {"page_view", 1, 0},
                {"email_open", 1, 5}},
  passives[] = {{"email_open", 1, 0},
                {"email_send", 1, 0},
                {"visitor_session", 1, 0},
                {"page_view", 0, 0},
                {"other", 1, 0}};

typedef struct act_s {
    ch_prospect_t *p;
    int trigger;
    int64_t at;
} act_t;

static int post_batch(wk_t *w, json_t *batch, act_t *acts, size_t n)
{
    ch_t *ch = w->ch;
    char url[300], auth[128];
    const char *headers[] = {auth, NULL};
    int st = 0, err;
    json_t *out = NULL;
    snprintf(url, sizeof(url), "%s/v1/activities", ch->ingest_url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ch->ingest_token);
    err = call(ch, w->plain, "POST", url, headers, batch, &st, &out);
    if (err) {
        char *t = out ? json_dumps(out, JSON_COMPACT) : NULL;
        if (!atomic_load(&ch->stop))
            fatal(ch, "the activity ingest refused a batch: %s%s", t ? t : cs_err_name(err), "");
        free(t);
        json_decref(out);
        return -1;
    }
    json_decref(out);
    for (size_t i = 0; i < n; i++) {
        if (!acts[i].trigger)
            continue;
        long long prev = atomic_load(&acts[i].p->last_activity_ms);
        while (acts[i].at > prev &&
               !atomic_compare_exchange_weak(&acts[i].p->last_activity_ms, &prev, acts[i].at))
            ;
        acts[i].p->triggers++;
        atomic_fetch_add(&ch->n_triggers, 1);
    }
    atomic_fetch_add(&ch->n_acts, (long)n);
    atomic_fetch_add(&ch->n_act_posts, 1);
    return 0;
}

static void add_activity(ch_t *ch, json_t *batch, act_t *acts, size_t *n, ch_prospect_t *p,
                         int trigger, long seq)
{
    char id[160];
    int k = trigger ? (int)ch_rand(NELEM(triggers)) : (int)ch_rand(NELEM(passives));
    const char *type = trigger ? triggers[k].type : passives[k].type;
    int identified = trigger ? triggers[k].identified : passives[k].identified;
    int score = trigger ? triggers[k].score : passives[k].score;
    int64_t at = cs_wall_ms();
    snprintf(id, sizeof(id), "%s-%ld", ch->run, seq);
    json_t *a = json_pack("{s:s, s:s, s:s, s:I, s:I, s:b}", "id", id, "type", type, "email",
                          p->email, "prospect_id", (json_int_t)p->id, "occurred_at", (json_int_t)at,
                          "identified", identified);
    if (score)
        json_object_set_new(a, "score_delta", json_integer(score));
    json_array_append_new(batch, a);
    acts[*n].p = p;
    acts[*n].trigger = trigger;
    acts[*n].at = at;
    (*n)++;
}

static void *act_thread(void *arg)
{
    ch_t *ch = arg;
    wk_t w = {0}; /* closed at the end whether wk_open ran, failed half-way or succeeded */
    act_t *acts = malloc(ACT_BATCH * sizeof(*acts));
    int *want = calloc((size_t)ch->n, sizeof(int)); /* intent activities still to send */
    json_t *batch = json_array();
    long sent = 0, seq = 0, planned_triggers = 0, triggers_added = 0;
    int nact = 0, nother = 0, gave_up = 0;
    int64_t t0 = cs_now_ms(), span = ch->duration_ms * 85 / 100;
    if (!acts || !want || wk_open(&w, ch, 0) != 0) {
        fatal(ch, "%s%s", "cannot set up the activity thread", "");
        goto done;
    }
    /* 40 % of the activities are intent ones for the ACTIVITY group, 10 % for the DNS and
     * UNASSIGNED groups (which must stay out of the CRM); the rest is passive, for everyone. */
    for (int i = 0; i < ch->n; i++) {
        nact += ch->p[i].group == G_ACT;
        nother += ch->p[i].group == G_DNS || ch->p[i].group == G_UNASSIGNED;
    }
    for (int i = 0; i < ch->n; i++) {
        const ch_prospect_t *p = &ch->p[i];
        if (p->group == G_ACT)
            want[i] = (int)((long)ch->activities * 40 / 100 / (nact ? nact : 1));
        else if (p->group == G_DNS || p->group == G_UNASSIGNED)
            want[i] = (int)((long)ch->activities * 10 / 100 / (nother ? nother : 1));
        if (want[i] < 1 && (p->group == G_ACT || p->group == G_DNS || p->group == G_UNASSIGNED))
            want[i] = 1;
        planned_triggers += want[i];
    }
    while ((sent < ch->activities || triggers_added < planned_triggers) &&
           !atomic_load(&ch->stop)) {
        size_t n = 0;
        int64_t elapsed = cs_now_ms() - ch->start_ms;
        if (elapsed > ch->duration_ms && !gave_up) {
            /* The ACTIVITY prospects whose lead does not exist yet get no more intent
             * activities: sending them now would test something else (an activity read
             * before its prospect), which the burst half already does. */
            long skipped = 0;
            int nprospects = 0;
            for (int i = 0; i < ch->n; i++) {
                ch_prospect_t *p = &ch->p[i];
                if (p->group == G_ACT && !p->act_burst && !atomic_load(&p->linked) && want[i]) {
                    skipped += want[i];
                    planned_triggers -= want[i];
                    want[i] = 0;
                    nprospects++;
                }
            }
            if (skipped)
                ch_say("activity workload: %ld intent activities of %d prospect(s) whose lead "
                       "does not exist yet are not sent (the pipeline is behind)",
                       skipped, nprospects);
            gave_up = 1;
        }
        /* intent activities that are due: bursts right after creation, the others once the
         * lead exists (ACTIVITY) or any time (DNS, UNASSIGNED), spread over the run */
        int start = (int)ch_rand((uint32_t)ch->n);
        for (int k = 0; k < ch->n && n < ACT_BATCH / 2; k++) {
            int i = (start + k) % ch->n;
            ch_prospect_t *p = &ch->p[i];
            if (!want[i] || !atomic_load(&p->created))
                continue;
            if (p->group == G_ACT && !p->act_burst && !atomic_load(&p->linked))
                continue;
            int burst = p->group == G_ACT && p->act_burst;
            int take = burst ? want[i] : (ch_rand(4) == 0 ? 1 : 0);
            if (!burst && elapsed > span)
                take = want[i]; /* the run is ending: whatever is left */
            for (int j = 0; j < take && n < ACT_BATCH; j++) {
                add_activity(ch, batch, acts, &n, p, 1, seq++);
                want[i]--;
                triggers_added++;
            }
        }
        /* passive ones fill the batch */
        long passive_left = (ch->activities - sent - (long)n) - (planned_triggers - triggers_added);
        while (n < ACT_BATCH && passive_left-- > 0) {
            ch_prospect_t *p = &ch->p[ch_rand((uint32_t)ch->n)];
            if (atomic_load(&p->created))
                add_activity(ch, batch, acts, &n, p, 0, seq++);
        }
        if (n == 0) {
            /* only intent activities are left and none is due yet */
            cs_run_sleep_ms(100);
            continue;
        }
        if (post_batch(&w, batch, acts, n))
            break;
        json_array_clear(batch);
        sent += (long)n;
        pace(ch, sent, ch->activities, t0, span);
    }
done:
    wk_close(&w);
    json_decref(batch);
    free(acts);
    free(want);
    atomic_fetch_add(&ch->threads_done, 1);
    return NULL;
}

/* ---------------------------------------------------------------- threads */

static pthread_t threads[CH_WORKLOAD_THREADS];
static mkt_arg_t mkt_args[CH_MKT_THREADS];
static int nthreads;

int ch_workload_start(ch_t *ch)
{
    for (int i = 0; i < CH_MKT_THREADS; i++) {
        mkt_args[i] = (mkt_arg_t){ch, i, CH_MKT_THREADS};
        if (pthread_create(&threads[nthreads], NULL, mkt_thread, &mkt_args[i]) != 0)
            return -1;
        nthreads++;
    }
    if (pthread_create(&threads[nthreads], NULL, crm_thread, ch) != 0)
        return -1;
    nthreads++;
    if (pthread_create(&threads[nthreads], NULL, act_thread, ch) != 0)
        return -1;
    nthreads++;
    return 0;
}

void ch_workload_join(ch_t *ch)
{
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    nthreads = 0;
    atomic_store(&ch->workload_done, 1);
}

/* ---------------------------------------------------------------- import */

static void csv_cell(FILE *f, const char *v, int last)
{
    if (strpbrk(v, ",\"\r\n")) {
        fputc('"', f);
        for (; *v; v++) {
            if (*v == '"')
                fputc('"', f);
            fputc(*v, f);
        }
        fputc('"', f);
    } else {
        fputs(v, f);
    }
    fputc(last ? '\n' : ',', f);
}

int ch_import(ch_t *ch)
{
    char path[1200], log[1200], bin[1200], id[128], num[32];
    FILE *f;
    int rows = 0, fd;
    pid_t pid, parent = getpid();
    int64_t deadline;

    ch_path(ch, "import.csv", path, sizeof(path));
    ch_path(ch, "import.log", log, sizeof(log));
    if (!(f = fopen(path, "w")))
        return -1;
    fputs("email,id,first_name,last_name,company,job_title,phone,assigned_user_id,do_not_sync\n",
          f);
    pthread_mutex_lock(&ch->mu);
    for (int i = 0; i < ch->n; i++) {
        ch_prospect_t *p = &ch->p[i];
        /* the IMPORT group, the do-not-sync prospects and half the unassigned ones: an export
         * of the marketing system imported again, with each row's current values */
        if (!atomic_load(&p->created) || !(p->group == G_IMPORT || p->group == G_DNS ||
                                           (p->group == G_UNASSIGNED && i % 2 == 0)))
            continue;
        csv_cell(f, p->email, 0);
        snprintf(num, sizeof(num), "%" PRId64, p->id);
        csv_cell(f, num, 0);
        csv_cell(f, p->first, 0);
        csv_cell(f, p->last, 0);
        csv_cell(f, p->company, 0);
        csv_cell(f, p->title, 0);
        csv_cell(f, p->phone, 0);
        if (p->assigned >= 0)
            snprintf(num, sizeof(num), "%" PRId64, p->assigned);
        else
            num[0] = '\0';
        csv_cell(f, num, 0);
        csv_cell(f, p->dns ? "true" : "false", 1);
        p->imported = 1;
        rows++;
    }
    pthread_mutex_unlock(&ch->mu);
    if (fclose(f))
        return -1;
    ch->import_rows = rows;

    cs_tproc_bin("import", bin, sizeof(bin));
    snprintf(id, sizeof(id), "%s", ch->run);
    if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
        return -1;
    if ((pid = fork()) < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        char *argv[] = {bin, "--import.progress", "off", "--import.id", id, path, NULL};
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, argv);
        _exit(127);
    }
    close(fd);
    deadline = cs_now_ms() + 120000;
    return cs_run_wait_child(pid, deadline, 0);
}
