/* The workload: what people and systems do while the pipeline runs, in this order.
 *
 *   CRM records     a share of the future prospects already exist in the CRM as leads or
 *                   contacts, entered by sales people (/sandbox/crm/edit), so matching happens
 *   prospects       created through the Account Engagement v5 API (POST /prospects): most
 *                   assigned to marketing users, a fifth unassigned, one with the do-not-sync
 *                   custom field crmsyncDoNotSync__c set
 *   activities      webhooks to the activity producer (POST /v1/activities, JSON batches,
 *                   bearer token): form submissions, identified page views, email opens,
 *                   anonymous page views
 *   (first sync)    a bounded wait until the first wave is through
 *   CSV import      a list of prospects re-imported with crmsync-import (forked), which forces
 *                   their sync
 *   assignment      a marketer assigns a few unassigned prospects (/sandbox/marketing/edit)
 *   CRM edits       sales people change titles and phones on leads and contacts
 *
 * Everything is deterministic for a given demo.seed and prospect count (the lead ids crmsync
 * creates, and so which leads are edited, depend on the run). */
#include "demo.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define LOG_COMP "demo"
#define ACT_BATCH 200 /* events per webhook request */

enum { NO_CRM = 0, CRM_LEAD, CRM_CONTACT };

typedef struct wprospect_s {
    char email[128];
    const char *first, *last, *company, *title;
    char phone[24];
    int64_t id;       /* marketing id, 0 until created */
    int64_t assigned; /* marketing user id, -1 = unassigned */
    int crm;          /* NO_CRM, CRM_LEAD, CRM_CONTACT: entered in the CRM beforehand */
    char crm_id[24];
    int dns;
    int imported; /* on the CSV list */
} wprospect_t;

typedef struct wk_s {
    demo_t *d;
    cs_http_t *plain; /* sandbox helpers, the ingest endpoint */
    cs_http_t *api;   /* the v5 API (OAuth token) */
    cs_oauth_t *oauth;
    char bu_hdr[128], auth_hdr[600];
    int64_t mkt_users[8];
    int nmkt_users;
    char people[8][128]; /* CRM users who edit records (not the integration user) */
    int npeople;
    wprospect_t *p;
    int n;
    uint64_t rng;
} wk_t;

static const char *const first_names[] = {
    "Ada",  "Grace", "Linus",  "Barbara", "Ken",    "Margaret", "Dennis", "Frances",
    "Alan", "Radia", "Donald", "Hedy",    "Edsger", "Sophie",   "John",   "Karen"};
static const char *const last_names[] = {
    "Lovelace", "Hopper",  "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen",
    "Turing",   "Perlman", "Knuth",    "Lamarr", "Dijkstra", "Wilson",   "Backus",  "Jones"};
static const char *const companies[] = {"Acme",   "Globex",    "Initech", "Umbrella",
                                        "Hooli",  "Stark",     "Wayne",   "Wonka",
                                        "Tyrell", "Cyberdyne", "Soylent", "Aperture"};
static const char *const titles[] = {"Engineer", "Director", "CTO",     "Buyer",
                                     "Analyst",  "Manager",  "Founder", "Architect"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- HTTP helpers */

int demo_get_json(cs_http_t *h, const char *url, const char *path, json_t **out)
{
    char full[1024];
    cs_http_result_t res;
    json_t *j;
    int err;
    *out = NULL;
    snprintf(full, sizeof(full), "%s%s", url, path);
    if ((err = cs_http_request(h, "GET", full, NULL, NULL, 0, &res)))
        return err;
    if (!(j = cs_http_result_json(&res)))
        return CS_ERR_PARSE;
    *out = json_incref(j);
    return CS_OK;
}

/* Sends a request, retrying what may pass later (rate limit code 66, transport) a few times.
 * *out (may be NULL): the answer's JSON, new reference or NULL. */
static int call(cs_http_t *h, const char *method, const char *url, const char *const *headers,
                json_t *body, json_t **out, int *status)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    cs_http_result_t res;
    cs_backoff_t b;
    int err;

    cs_backoff_init(&b);
    b.base_ms = 50;
    b.max_ms = 1000;
    b.rate_base_ms = 100;
    b.rate_max_ms = 2000;
    b.max_attempts = 8;
    if (out)
        *out = NULL;
    for (;;) {
        int64_t wait;
        err = cs_http_request(h, method, url, headers, text, text ? strlen(text) : 0, &res);
        if (err == CS_OK || cs_run_stopping() || (wait = cs_backoff_next(&b, err, -1)) < 0)
            break;
        cs_run_sleep_ms(wait);
    }
    if (status)
        *status = res.status;
    if (out && res.body_len) {
        json_t *j = cs_http_result_json(&res);
        *out = j ? json_incref(j) : NULL;
    }
    if (err)
        CS_WARN(LOG_COMP, "%s", res.errstr);
    free(text);
    return err;
}

/* POST a /sandbox/... helper; steals body. */
static int sandbox_post(wk_t *w, const char *path, json_t *body, json_t **out)
{
    char url[512];
    int err;
    snprintf(url, sizeof(url), "%s%s", w->d->sandbox_url, path);
    err = call(w->plain, "POST", url, NULL, body, out, NULL);
    json_decref(body);
    return err;
}

/* ---------------------------------------------------------------- set-up */

/* xorshift64: the workload's choices, reproducible from demo.seed */
static uint32_t rnd(wk_t *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)(w->rng >> 11);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static int wk_init(wk_t *w, demo_t *d, char *errstr, size_t n)
{
    cs_http_opts_t o;
    cs_oauth_opts_t oo;
    json_t *info = NULL, *snap = NULL, *u;
    const char *integration;
    size_t i;
    int err;

    memset(w, 0, sizeof(*w));
    w->d = d;
    w->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)d->seed * 0x100000001B3ULL);
    memset(&o, 0, sizeof(o));
    o.timeout_ms = 30000;
    o.name = "demo";
    if (!(w->plain = cs_http_new(&o, errstr, n)))
        return CS_ERR_CONFIG;
    if ((err = demo_get_json(w->plain, d->sandbox_url, "/sandbox/info", &info)))
        return cs_err_set(errstr, n, err, "sandbox at %s does not answer /sandbox/info (%s)",
                          d->sandbox_url, cs_err_name(err));
    snprintf(w->bu_hdr, sizeof(w->bu_hdr), "Pardot-Business-Unit-Id: %s",
             json_string_value(json_object_get(info, "business_unit_id")));
    integration = json_string_value(json_object_get(info, "integration_user_id"));

    memset(&oo, 0, sizeof(oo));
    oo.login_url = d->sandbox_url;
    oo.client_id = cs_conf_str(d->conf, "demo.client_id");
    oo.client_secret = cs_conf_str(d->conf, "demo.client_secret");
    oo.grant_type = "password";
    oo.username = cs_conf_str(d->conf, "demo.username");
    oo.password = cs_conf_str(d->conf, "demo.password");
    if (!(w->oauth = cs_oauth_new(&oo, errstr, n))) {
        json_decref(info);
        return CS_ERR_CONFIG;
    }
    o.get_token = cs_oauth_get_token;
    o.token_opaque = w->oauth;
    if (!(w->api = cs_http_new(&o, errstr, n))) {
        json_decref(info);
        return CS_ERR_CONFIG;
    }
    snprintf(w->auth_hdr, sizeof(w->auth_hdr), "Authorization: Bearer %s", d->ingest_token);

    if ((err = demo_get_json(w->plain, d->sandbox_url, "/sandbox/snapshot", &snap))) {
        json_decref(info);
        return cs_err_set(errstr, n, err, "sandbox snapshot: %s", cs_err_name(err));
    }
    json_array_foreach(json_object_get(json_object_get(snap, "marketing"), "users"), i, u)
    {
        if (w->nmkt_users < (int)NELEM(w->mkt_users) &&
            !json_is_true(json_object_get(u, "isDeleted")))
            w->mkt_users[w->nmkt_users++] = json_integer_value(json_object_get(u, "id"));
    }
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), "User"), i, u)
    {
        const char *id = json_string_value(json_object_get(u, "Id"));
        const char *email = json_string_value(json_object_get(u, "Email"));
        if (w->npeople < (int)NELEM(w->people) && email && id && integration &&
            strcmp(id, integration))
            snprintf(w->people[w->npeople++], sizeof(w->people[0]), "%s", email);
    }
    json_decref(snap);
    json_decref(info);
    if (w->nmkt_users == 0 || w->npeople == 0)
        return cs_err_set(errstr, n, CS_ERR_STATE, "the sandbox has no marketing or CRM users");
    return CS_OK;
}

static void wk_destroy(wk_t *w)
{
    if (w->oauth)
        atomic_store(&w->d->progress.token_fetches, (long)cs_oauth_fetch_count(w->oauth));
    cs_http_destroy(w->api);
    cs_http_destroy(w->plain);
    cs_oauth_destroy(w->oauth);
    free(w->p);
}

/* The cast: prospect i, its name, company, assignment and whether the CRM knows it already.
 *   i % 5 == 4         unassigned (a fifth)
 *   i % 10 == 3        a lead entered by a sales person beforehand
 *   i % 20 == 7        a contact entered beforehand
 *   i % 20 == 14       a lead for an unassigned prospect (matched, so synced anyway)
 *   i == 5             the do-not-sync prospect (assigned, no CRM record: must stay so) */
static int wk_cast(wk_t *w, char *errstr, size_t n)
{
    int np = w->d->nprospects;
    if (!(w->p = calloc((size_t)np, sizeof(*w->p))))
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    w->n = np;
    for (int i = 0; i < np; i++) {
        wprospect_t *p = &w->p[i];
        p->first = first_names[rnd(w) % NELEM(first_names)];
        p->last = last_names[rnd(w) % NELEM(last_names)];
        p->company = companies[rnd(w) % NELEM(companies)];
        p->title = titles[rnd(w) % NELEM(titles)];
        snprintf(p->email, sizeof(p->email), "%s.%s.%d@%s.example", p->first, p->last, i + 1,
                 p->company);
        lower(p->email);
        snprintf(p->phone, sizeof(p->phone), "+1 555 %04u", rnd(w) % 10000);
        p->assigned = i % 5 == 4 ? -1 : w->mkt_users[(size_t)i % (size_t)w->nmkt_users];
        p->crm = i % 10 == 3 || i % 20 == 14 ? CRM_LEAD : i % 20 == 7 ? CRM_CONTACT : NO_CRM;
        p->dns = i == 5;
    }
    snprintf(w->d->dns_email, sizeof(w->d->dns_email), "%s", w->p[np > 5 ? 5 : 0].email);
    if (np <= 5)
        w->p[0].dns = 1;
    return CS_OK;
}

/* Sleeps so that `done` of `total` items take about `seconds` from t0. */
static void pace(int64_t t0, long done, long total, double seconds)
{
    int64_t due = t0 + (int64_t)(seconds * 1000.0 * (double)done / (double)(total ? total : 1));
    if (due > cs_now_ms())
        cs_run_sleep_ms(due - cs_now_ms());
}

/* ---------------------------------------------------------------- phases */

static int phase_crm_records(wk_t *w, char *errstr, size_t n)
{
    for (int i = 0; i < w->n && !cs_run_stopping(); i++) {
        wprospect_t *p = &w->p[i];
        json_t *fields, *out = NULL;
        int err;
        if (p->crm == NO_CRM)
            continue;
        /* an older title than the prospect will have: the first sync updates it */
        fields = json_pack("{s:s, s:s, s:s, s:s, s:s}", "Email", p->email, "FirstName", p->first,
                           "LastName", p->last, "Title", "Unknown", "Phone", p->phone);
        if (p->crm == CRM_LEAD)
            json_object_set_new(fields, "Company", json_string(p->company));
        err = sandbox_post(w, "/sandbox/crm/edit",
                           json_pack("{s:s, s:o, s:s}", "type",
                                     p->crm == CRM_LEAD ? "Lead" : "Contact", "fields", fields,
                                     "user", w->people[(size_t)i % (size_t)w->npeople]),
                           &out);
        if (err || !json_is_string(json_object_get(out, "id"))) {
            json_decref(out);
            return cs_err_set(errstr, n, err ? err : CS_ERR_STATE,
                              "the sandbox refused a CRM record for %s", p->email);
        }
        snprintf(p->crm_id, sizeof(p->crm_id), "%s", json_string_value(json_object_get(out, "id")));
        json_decref(out);
        atomic_fetch_add(&w->d->progress.crm_records, 1);
    }
    return CS_OK;
}

static int phase_prospects(wk_t *w, char *errstr, size_t n)
{
    char url[512];
    const char *headers[] = {w->bu_hdr, NULL};
    int64_t t0 = cs_now_ms();
    double seconds = w->d->short_run ? 2.0 : 8.0;
    snprintf(url, sizeof(url), "%s/api/v5/objects/prospects?fields=id,email", w->d->sandbox_url);
    for (int i = 0; i < w->n && !cs_run_stopping(); i++) {
        wprospect_t *p = &w->p[i];
        json_t *body, *out = NULL;
        int err, status = 0;
        body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "email", p->email, "firstName",
                         p->first, "lastName", p->last, "company", p->company, "jobTitle", p->title,
                         "phone", p->phone, "score", (int)(rnd(w) % 50));
        if (p->assigned >= 0)
            json_object_set_new(body, "assignedToId", json_integer(p->assigned));
        if (p->dns)
            json_object_set_new(body, "crmsyncDoNotSync__c", json_true());
        err = call(w->api, "POST", url, headers, body, &out, &status);
        json_decref(body);
        if (err || !json_is_integer(json_object_get(out, "id"))) {
            json_decref(out);
            return cs_err_set(errstr, n, err ? err : CS_ERR_STATE,
                              "creating prospect %s: HTTP %d (%s)", p->email, status,
                              cs_err_name(err));
        }
        p->id = json_integer_value(json_object_get(out, "id"));
        json_decref(out);
        atomic_store(&w->d->progress.token_fetches, (long)cs_oauth_fetch_count(w->oauth));
        atomic_fetch_add(&w->d->progress.prospects, 1);
        if (i % 25 == 24)
            pace(t0, i + 1, w->n, seconds);
    }
    return CS_OK;
}

static json_t *activity(const char *id, const wprospect_t *p, const char *type, int identified,
                        int score)
{
    json_t *a = json_pack("{s:s, s:s, s:s, s:I, s:b, s:I}", "id", id, "type", type, "email",
                          p->email, "prospect_id", (json_int_t)p->id, "identified", identified,
                          "occurred_at", (json_int_t)cs_wall_ms());
    if (score)
        json_object_set_new(a, "score_delta", json_integer(score));
    return a;
}

static int post_activities(wk_t *w, json_t *batch, char *errstr, size_t n)
{
    char url[512];
    const char *headers[] = {w->auth_hdr, NULL};
    json_t *out = NULL;
    int status = 0, err;
    snprintf(url, sizeof(url), "%s/v1/activities", w->d->ingest_url);
    err = call(w->plain, "POST", url, headers, batch, &out, &status);
    json_decref(out);
    if (err)
        return cs_err_set(errstr, n, err, "activity ingest answered HTTP %d (%s)", status,
                          cs_err_name(err));
    atomic_fetch_add(&w->d->progress.activities, (long)json_array_size(batch));
    return CS_OK;
}

/* Per prospect: a form submission for a third (the do-not-sync one included), an identified
 * page view for a fifth, an email open for half, an anonymous page view for a quarter. The
 * first two are intent (a trigger), the others are only counted. */
static int phase_activities(wk_t *w, char *errstr, size_t n)
{
    json_t *batch = json_array();
    long seq = 0, planned = 0, sent = 0;
    int64_t t0 = cs_now_ms(), run = cs_wall_ms();
    double seconds = w->d->short_run ? 2.0 : 8.0;
    int err = CS_OK;
    char id[96];

    for (int i = 0; i < w->n; i++)
        planned += (i % 3 == 0 || w->p[i].dns) + (i % 5 == 1) + (i % 2 == 0) + (i % 4 == 2);
    atomic_store(&w->d->progress.activities_planned, planned);
    for (int i = 0; i < w->n && !cs_run_stopping() && !err; i++) {
        const wprospect_t *p = &w->p[i];
        struct {
            int on;
            const char *type;
            int identified, score;
        } kinds[4] = {{i % 3 == 0 || p->dns, "form", 1, 10},
                      {i % 5 == 1, "page_view", 1, 1},
                      {i % 2 == 0, "email_open", 1, 0},
                      {i % 4 == 2, "page_view", 0, 0}};
        for (int k = 0; k < 4; k++) {
            if (!kinds[k].on)
                continue;
            snprintf(id, sizeof(id), "demo-%u-%" PRId64 "-%ld", w->d->seed, run, seq++);
            json_array_append_new(
                batch, activity(id, p, kinds[k].type, kinds[k].identified, kinds[k].score));
        }
        if (json_array_size(batch) >= ACT_BATCH) {
            sent += (long)json_array_size(batch);
            err = post_activities(w, batch, errstr, n);
            json_array_clear(batch);
            pace(t0, sent, planned, seconds);
        }
    }
    if (!err && json_array_size(batch))
        err = post_activities(w, batch, errstr, n);
    json_decref(batch);
    return err;
}

/* Waits (bounded) until the first wave is through: every prospect event read, queues empty,
 * leads created. The edits that follow then land on linked records. */
static void phase_settle(wk_t *w)
{
    int64_t deadline = cs_now_ms() + (w->d->short_run ? 20000 : 45000);
    while (!cs_run_stopping() && cs_now_ms() < deadline) {
        demo_sample_t s;
        demo_last(w->d, &s);
        if (s.at_ms && s.consumed[DEMO_IN_PROSPECT] >= w->n && s.queue == 0 && s.crm_created > 0)
            return;
        cs_run_sleep_ms(250);
    }
}

static int crm_edit(wk_t *w, const char *type, const char *id, const char *title, const char *phone,
                    const char *person)
{
    json_t *fields = json_pack("{s:s}", "Title", title), *out = NULL;
    int err;
    if (phone)
        json_object_set_new(fields, "Phone", json_string(phone));
    err = sandbox_post(
        w, "/sandbox/crm/edit",
        json_pack("{s:s, s:s, s:o, s:s}", "type", type, "id", id, "fields", fields, "user", person),
        &out);
    if (!err && !json_is_true(json_object_get(out, "success")))
        err = CS_ERR_HTTP_4XX;
    json_decref(out);
    if (!err)
        atomic_fetch_add(&w->d->progress.crm_edits, 1);
    return err;
}

/* Sales people edit titles and phones: on records they entered themselves and on leads
 * crmsync created. Each edit should come back to the prospect in the marketing system. */
static int phase_edits(wk_t *w, char *errstr, size_t n)
{
    int want = w->n / 100 < 3 ? 3 : w->n / 100, done = 0;
    json_t *snap = NULL, *r;
    size_t i;
    char title[64], phone[24];

    /* leads created by crmsync (their external id holds the prospect id) */
    if (demo_get_json(w->plain, w->d->sandbox_url, "/sandbox/snapshot", &snap) == CS_OK) {
        json_array_foreach(json_object_get(json_object_get(snap, "crm"), "Lead"), i, r)
        {
            const char *id = json_string_value(json_object_get(r, "Id"));
            const char *email = json_string_value(json_object_get(r, "Email"));
            const char *ext = json_string_value(json_object_get(r, "Crmsync_Prospect_Id__c"));
            int k = 0;
            if (done >= want || cs_run_stopping())
                break;
            if (!id || !email || !ext || json_is_true(json_object_get(r, "IsDeleted")))
                continue;
            while (k < w->n && strcmp(w->p[k].email, email))
                k++;
            /* not one entered beforehand; not one on the import list (a row imported in the
             * same second as the edit is as new as the edit: CRM times are whole seconds) */
            if (k == w->n || w->p[k].crm != NO_CRM || w->p[k].imported)
                continue;
            snprintf(title, sizeof(title), "VP %s", titles[(size_t)done % NELEM(titles)]);
            if (crm_edit(w, "Lead", id, title, NULL,
                         w->people[(size_t)done % (size_t)w->npeople]) == CS_OK) {
                if (!w->d->edited_email[0]) {
                    snprintf(w->d->edited_email, sizeof(w->d->edited_email), "%s", email);
                    snprintf(w->d->edited_title, sizeof(w->d->edited_title), "%s", title);
                }
                done++;
            }
        }
        json_decref(snap);
    }
    /* records the sales people entered themselves */
    done = 0;
    for (int k = 0; k < w->n && done < want && !cs_run_stopping(); k++) {
        wprospect_t *p = &w->p[k];
        if (p->crm == NO_CRM || !p->crm_id[0] || p->imported)
            continue;
        snprintf(title, sizeof(title), "Head of %s", companies[(size_t)k % NELEM(companies)]);
        snprintf(phone, sizeof(phone), "+1 555 9%03d", k % 1000);
        if (crm_edit(w, p->crm == CRM_LEAD ? "Lead" : "Contact", p->crm_id, title, phone,
                     w->people[(size_t)k % (size_t)w->npeople]) != CS_OK)
            return cs_err_set(errstr, n, CS_ERR_STATE, "the sandbox refused an edit of %s",
                              p->crm_id);
        if (!w->d->edited_email[0]) {
            snprintf(w->d->edited_email, sizeof(w->d->edited_email), "%s", p->email);
            snprintf(w->d->edited_title, sizeof(w->d->edited_title), "%s", title);
        }
        done++;
    }
    return CS_OK;
}

/* A marketer assigns a few unassigned prospects that the CRM does not know: until now they
 * waited ("unassigned"); now crmsync creates their leads. */
static int phase_assign(wk_t *w, char *errstr, size_t n)
{
    int want = w->n / 100 < 1 ? 1 : w->n / 100, done = 0;
    for (int i = 0; i < w->n && done < want && !cs_run_stopping(); i++) {
        wprospect_t *p = &w->p[i];
        json_t *out = NULL;
        int64_t to = w->mkt_users[(size_t)done % (size_t)w->nmkt_users];
        int err;
        if (p->assigned >= 0 || p->crm != NO_CRM || p->dns)
            continue;
        err = sandbox_post(w, "/sandbox/marketing/edit",
                           json_pack("{s:I, s:{s:I}}", "id", (json_int_t)p->id, "fields",
                                     "assignedToId", (json_int_t)to),
                           &out);
        json_decref(out);
        if (err)
            return cs_err_set(errstr, n, err, "the sandbox refused assigning prospect %" PRId64,
                              p->id);
        p->assigned = to;
        if (!w->d->reassigned_email[0])
            snprintf(w->d->reassigned_email, sizeof(w->d->reassigned_email), "%s", p->email);
        atomic_fetch_add(&w->d->progress.assignments, 1);
        done++;
    }
    return CS_OK;
}

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

/* Runs crmsync-import (next to this program) on path; output to log. Returns its exit
 * status, or -1 when it could not run. */
static int run_import(demo_t *d, const char *path, const char *log)
{
    char self[4096], bin[4200], import_id[64];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    pid_t pid, parent = getpid();
    int fd;

    if (len <= 0)
        return -1;
    self[len] = '\0';
    if (!strrchr(self, '/'))
        return -1;
    *strrchr(self, '/') = '\0';
    snprintf(bin, sizeof(bin), "%s/crmsync-import", self);
    snprintf(import_id, sizeof(import_id), "demo-%u-%" PRId64, d->seed, cs_wall_ms());
    if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return -1;
    if ((pid = fork()) < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        char *argv[] = {bin,       "--import.progress", "off", "--import.id",
                        import_id, (char *)path,        NULL};
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(fd);
    return cs_run_wait_child(pid, cs_now_ms() + 60000, 1);
}

/* A list of prospects exported from the marketing system and imported again: every row is
 * published with cause IMPORT, which forces the prospect's sync (the do-not-sync prospect is
 * on the list too, and stays unsynced). */
static int phase_import(wk_t *w, char *errstr, size_t n)
{
    char path[1024], log[1024], num[32];
    int want = w->n / 50 < 10 ? 10 : w->n / 50, rows = 0, st;
    FILE *f;

    snprintf(path, sizeof(path), "%s/import.csv", w->d->run_dir);
    snprintf(log, sizeof(log), "%s/import.log", w->d->run_dir);
    if (!(f = fopen(path, "w")))
        return cs_err_set(errstr, n, CS_ERR_IO, "%s: %s", path, strerror(errno));
    fputs("email,id,first_name,last_name,company,job_title,phone,assigned_user_id,do_not_sync\n",
          f);
    for (int i = 0; i < w->n; i++) {
        wprospect_t *p = &w->p[i];
        if (!p->dns && (rows >= want || i % 7 != 1 || p->assigned < 0))
            continue;
        p->imported = 1;
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
        rows++;
    }
    if (fclose(f))
        return cs_err_set(errstr, n, CS_ERR_IO, "%s: write failed", path);
    st = run_import(w->d, path, log);
    w->d->import_status = st;
    if (cs_run_stopping())
        return cs_err_set(errstr, n, CS_ERR_SHUTDOWN, "interrupted");
    if (st != 0)
        return cs_err_set(errstr, n, CS_ERR_STATE, "crmsync-import exited with %d (see %s)", st,
                          log);
    w->d->import_rows = rows;
    atomic_store(&w->d->progress.import_rows, rows);
    return CS_OK;
}

int demo_workload_run(demo_t *d, char *errstr, size_t n)
{
    wk_t w;
    int err;

    atomic_store(&d->progress.phase, DEMO_PH_SETUP);
    if ((err = wk_init(&w, d, errstr, n)) || (err = wk_cast(&w, errstr, n)))
        goto out;
    atomic_store(&d->progress.phase, DEMO_PH_CRM);
    if ((err = phase_crm_records(&w, errstr, n)))
        goto out;
    atomic_store(&d->progress.phase, DEMO_PH_PROSPECTS);
    if ((err = phase_prospects(&w, errstr, n)))
        goto out;
    atomic_store(&d->progress.phase, DEMO_PH_ACTIVITIES);
    if ((err = phase_activities(&w, errstr, n)))
        goto out;
    atomic_store(&d->progress.phase, DEMO_PH_SETTLE);
    phase_settle(&w);
    /* the import first: its rows are the prospects as created, and a forced sync of an old
     * export after the edits below would undo them */
    atomic_store(&d->progress.phase, DEMO_PH_IMPORT);
    if ((err = phase_import(&w, errstr, n)))
        goto out;
    atomic_store(&d->progress.phase, DEMO_PH_ASSIGN);
    if ((err = phase_assign(&w, errstr, n)))
        goto out;
    atomic_store(&d->progress.phase, DEMO_PH_EDITS);
    if ((err = phase_edits(&w, errstr, n)))
        goto out;
    for (int i = 0; i < w.n; i++)
        if (!strcmp(w.p[i].email, d->edited_email))
            d->edited_prospect_id = w.p[i].id;
out:
    if (!err && cs_run_stopping())
        err = cs_err_set(errstr, n, CS_ERR_SHUTDOWN, "interrupted");
    wk_destroy(&w);
    return err;
}

/* ---------------------------------------------------------------- users.map */

int demo_users_map(const char *url, char *errstr, size_t n)
{
    cs_http_opts_t o;
    cs_http_t *h;
    json_t *snap = NULL, *u;
    size_t i;
    int err, first = 1;

    memset(&o, 0, sizeof(o));
    o.timeout_ms = 10000;
    if (!(h = cs_http_new(&o, errstr, n)))
        return CS_ERR_CONFIG;
    err = demo_get_json(h, url, "/sandbox/snapshot", &snap);
    cs_http_destroy(h);
    if (err)
        return cs_err_set(errstr, n, err, "%s/sandbox/snapshot: %s", url, cs_err_name(err));
    json_array_foreach(json_object_get(json_object_get(snap, "marketing"), "users"), i, u)
    {
        const char *sf = json_string_value(json_object_get(u, "salesforceId"));
        if (!sf || !*sf || json_is_true(json_object_get(u, "isDeleted")))
            continue;
        printf("%s%" JSON_INTEGER_FORMAT ":%s", first ? "" : ",",
               json_integer_value(json_object_get(u, "id")), sf);
        first = 0;
    }
    printf("\n");
    json_decref(snap);
    return CS_OK;
}
