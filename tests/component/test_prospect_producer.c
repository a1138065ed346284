/* Component: crmsync-prospect-producer against the sandbox and the real local broker.
 *
 * Seeded prospects arrive decoded, keyed by the normalised e-mail on Kafka's default
 * partition for that key; changes made while it runs arrive (two in one second included);
 * after a SIGKILL it resumes from its durable cursor without losing a change and without
 * republishing anything older than the overlap window; 503s, rate limits and expired tokens
 * are survived; malformed API data (from a stub marketing API) goes to the errors topic
 * instead of the prospect topic, once; SIGTERM exits 0 after a clean drain. */
#include "cs_err.h"
#include "cs_httpd.h"
#include "cs_run.h"
#include "cs_test.h"
#include "cs_time.h"
#include "testutil_proc.h"
#include "testutil_producer.h"
#include "testutil_sandbox.h"

#include <jansson.h>
#include <stdatomic.h>
#include <unistd.h>

#define NSEED 20
#define OVERLAP_MS 2000

static cs_tsandbox_t sb;
static cs_tsandbox_client_t cl;

/* ---------------------------------------------------------------- sandbox helpers */

static int64_t create_prospect(const char *email, const char *more, int64_t *updated_ms)
{
    char body[1024];
    int status = 0;
    snprintf(body, sizeof(body), "{\"email\": \"%s\"%s%s}", email, more ? ", " : "",
             more ? more : "");
    json_t *r = cs_tsandbox_req(&cl, "POST", CS_TSANDBOX_V5 "/prospects?fields=id,updatedAt", body,
                                &status);
    if (status != 201 || !r) {
        fprintf(stderr, "create %s: HTTP %d %s\n", email, status, cl.res.body);
        return -1;
    }
    if (updated_ms)
        cs_time_parse_iso8601(json_string_value(json_object_get(r, "updatedAt")), updated_ms);
    return json_integer_value(json_object_get(r, "id"));
}

static int update_prospect(int64_t id, const char *fields, int64_t *updated_ms)
{
    char path[128];
    int status = 0;
    snprintf(path, sizeof(path), CS_TSANDBOX_V5 "/prospects/%lld?fields=id,updatedAt",
             (long long)id);
    json_t *r = cs_tsandbox_req(&cl, "PATCH", path, fields, &status);
    if (status != 200 || !r) {
        fprintf(stderr, "update %lld: HTTP %d %s\n", (long long)id, status, cl.res.body);
        return -1;
    }
    if (updated_ms)
        cs_time_parse_iso8601(json_string_value(json_object_get(r, "updatedAt")), updated_ms);
    return 0;
}

/* A marketer's edit through the sandbox's admin endpoint: no API call, no knobs. */
static int admin_edit(int64_t id, const char *fields)
{
    char body[512];
    int status = 0;
    snprintf(body, sizeof(body), "{\"id\": %lld, \"fields\": %s}", (long long)id, fields);
    json_t *r = cs_tsandbox_admin(&sb, "POST", "marketing/edit", body, &status);
    json_decref(r);
    return status == 200 ? 0 : -1;
}

/* ---------------------------------------------------------------- predicates */

static size_t distinct_ids(const cs_tprod_reader_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        int seen = 0;
        if (r->msgs[i].schema != CS_AVRO_PROSPECT_CHANGE)
            continue;
        for (size_t j = 0; j < i && !seen; j++)
            seen = r->msgs[j].schema == CS_AVRO_PROSPECT_CHANGE &&
                   r->msgs[j].prospect_id == r->msgs[i].prospect_id;
        n += !seen;
    }
    return n;
}

static int have_ids(cs_tprod_reader_t *r, void *opaque)
{
    return distinct_ids(r) >= *(size_t *)opaque;
}

typedef struct {
    const char *key, *first_name, *last_name;
} want_t;

static int have_value(cs_tprod_reader_t *r, void *opaque)
{
    const want_t *w = opaque;
    const cs_tprod_msg_t *m = cs_tprod_last_by_key(r, w->key);
    return m && (!w->first_name || !strcmp(m->first_name, w->first_name)) &&
           (!w->last_name || !strcmp(m->last_name, w->last_name));
}

/* All of prospects 10..14 (person10..14) have their last event with job title opaque. */
static int have_titles(cs_tprod_reader_t *r, void *opaque)
{
    for (int k = 10; k < 15; k++) {
        char key[64];
        snprintf(key, sizeof(key), "person%02d@example.com", k);
        const cs_tprod_msg_t *m = cs_tprod_last_by_key(r, key);
        if (!m || strcmp(m->title, (const char *)opaque))
            return 0;
    }
    return 1;
}

typedef struct {
    size_t n;
} count_t;

static int have_count(cs_tprod_reader_t *r, void *opaque)
{
    return r->n >= ((count_t *)opaque)->n;
}

static int start_producer(cs_tproc_t *p, const cs_tprod_env_t *e, const char *log)
{
    const char *args[] = {"--config", e->conf_path, NULL};
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", e->dir, log);
    return cs_tproc_start(p, "prospect-producer", args, path);
}

static int wait_port(const cs_tproc_t *p)
{
    for (int i = 0; i < 100; i++) {
        int port = cs_tprod_log_port(p->log);
        if (port > 0)
            return port;
        usleep(100 * 1000);
    }
    return 0;
}

/* Waits until the metric (a "name{labels}" line prefix) reaches min. Returns its value. */
static double wait_metric(int port, const char *metric, double min, int timeout_ms)
{
    static char body[65536];
    double v = -1;
    for (int64_t end = cs_now_ms() + timeout_ms; cs_now_ms() < end; usleep(100 * 1000)) {
        if (cs_tprod_http_get(port, "/metrics", body, sizeof(body)) == 200 &&
            (v = cs_tprod_metric(body, metric)) >= min)
            break;
    }
    return v;
}

/* Reads the durable cursor's time; -1 when none. */
static int64_t durable_cursor(const cs_tprod_env_t *e, const char *key)
{
    char doc[8192];
    if (cs_tprod_read_cursor(e, key, doc, sizeof(doc)) || !*doc)
        return -1;
    json_t *j = json_loads(doc, 0, NULL);
    int64_t ms = json_is_integer(json_object_get(j, "cursor_ms"))
                     ? json_integer_value(json_object_get(j, "cursor_ms"))
                     : -1;
    json_decref(j);
    return ms;
}

/* ---------------------------------------------------------------- part A: the sandbox */

static void test_sandbox(void)
{
    cs_tprod_env_t e;
    cs_tprod_reader_t r;
    cs_tproc_t p;
    char err[512], email[64], more[256], body[65536];
    int64_t ids[NSEED + 20], seed_updated[NSEED];
    int64_t max_updated = 0;

    REQUIRE(cs_tsandbox_start(&sb, NULL, err, sizeof(err)) == 0);
    REQUIRE(cs_tsandbox_client_init(&cl, &sb) == 0);
    REQUIRE(cs_tprod_env_init(&e, "prospect", 3) == 0);
    REQUIRE(cs_tprod_write_config(&e, sb.url,
                                  "poll.interval.ms=200\n"
                                  "overlap.ms=2000\n"
                                  "fields.custom=website:Website__c\n"
                                  "prospect.page_size=7\n"
                                  "shutdown.timeout.ms=5000\n") == 0);

    for (int i = 0; i < NSEED; i++) {
        snprintf(email, sizeof(email), "Person%02d@Example.COM", i);
        snprintf(more, sizeof(more),
                 "\"firstName\": \"P%02d\", \"lastName\": \"L%02d\", \"score\": %d, "
                 "\"optedOut\": %s, \"grade\": \"B\", \"website\": \"w%d.example\"%s%s",
                 i, i, i * 10, i % 5 == 0 ? "true" : "false", i,
                 i == 3 ? ", \"assignedToId\": 101" : "",
                 i == 4 ? ", \"crmsyncDoNotSync__c\": true" : "");
        ids[i] = create_prospect(email, more, &seed_updated[i]);
        REQUIRE(ids[i] > 0);
        if (seed_updated[i] > max_updated)
            max_updated = seed_updated[i];
    }

    REQUIRE(start_producer(&p, &e, "producer1.log") == 0);
    REQUIRE(cs_tprod_reader_init(&r, &e, e.topics[CS_TOPIC_PROSPECT]) == 0);

    /* 1. every seeded prospect arrives once, decoded, keyed and partitioned as specified */
    size_t want = NSEED;
    CHECK(cs_tprod_reader_wait(&r, have_ids, &want, 30000));
    CHECK_INT(r.n, NSEED); /* no duplicates while nothing changes */
    int key_ok = 0, part_ok = 0, fields_ok = 0;
    for (size_t i = 0; i < r.n; i++) {
        const cs_tprod_msg_t *m = &r.msgs[i];
        int k = (int)(m->prospect_id - ids[0]);
        char lower[64];
        CHECK_INT(m->schema, CS_AVRO_PROSPECT_CHANGE);
        if (k < 0 || k >= NSEED) {
            CHECK(0);
            continue;
        }
        snprintf(lower, sizeof(lower), "person%02d@example.com", k);
        key_ok += m->has_key && !strcmp(m->key, lower) && !strcmp(m->prospect_key, lower);
        part_ok += m->partition == cs_tprod_murmur2_partition(m->key, strlen(m->key), 3);
        snprintf(email, sizeof(email), "Person%02d@Example.COM", k);
        char first[16], last[16], ev[64], site[32];
        snprintf(first, sizeof(first), "P%02d", k);
        snprintf(last, sizeof(last), "L%02d", k);
        snprintf(ev, sizeof(ev), "p:%lld:%lld:", (long long)m->prospect_id,
                 (long long)seed_updated[k]);
        snprintf(site, sizeof(site), "w%d.example", k);
        fields_ok += !strcmp(m->email, email) && !strcmp(m->first_name, first) &&
                     !strcmp(m->last_name, last) && m->score == k * 10 &&
                     m->opted_out == (k % 5 == 0) && !strcmp(m->grade, "B") &&
                     m->updated_at == seed_updated[k] && m->cause == CS_CAUSE_CREATED &&
                     m->assigned_user_id == (k == 3 ? 101 : -1) && m->do_not_sync == (k == 4) &&
                     !strncmp(m->event_id, ev, strlen(ev)) && m->event_time > 0 &&
                     m->ncustom == 1 && !strcmp(m->custom_key, "website") &&
                     !strcmp(m->custom_value, site);
    }
    CHECK_INT(key_ok, NSEED);
    CHECK_INT(part_ok, NSEED);
    CHECK_INT(fields_ok, NSEED);

    /* 2. /healthz and /metrics */
    int port = wait_port(&p);
    CHECK(port > 0);
    CHECK_INT(cs_tprod_http_get(port, "/healthz", body, sizeof(body)), 200);
    CHECK_INT(cs_tprod_http_get(port, "/metrics", body, sizeof(body)), 200);
    CHECK_INT(cs_tprod_metric(body, "crmsync_producer_events_total{producer=\"prospect\","
                                    "cursor=\"prospect-producer\"}"),
              NSEED);
    CHECK(wait_metric(port, "crmsync_producer_polls_total{producer=\"prospect\",outcome=\"ok\"}", 1,
                      5000) >= 1);

    /* 3. changes made while it runs; the seeds fall out of the overlap window first */
    usleep((OVERLAP_MS + 1200) * 1000);
    int64_t upd;
    CHECK_INT(update_prospect(ids[7], "{\"firstName\": \"Renamed\"}", &upd), 0);
    want_t w7 = {"person07@example.com", "Renamed", NULL};
    CHECK(cs_tprod_reader_wait(&r, have_value, &w7, 15000));
    const cs_tprod_msg_t *m7 = cs_tprod_last_by_key(&r, "person07@example.com");
    CHECK(m7 && m7->cause == CS_CAUSE_FIELD_CHANGE && m7->updated_at == upd);

    /* two changes within one second (the API's resolution), the producer polling between
     * them: the second keeps updatedAt but has other content, and is published too */
    int same_second = 0;
    for (int attempt = 0; attempt < 6 && !same_second; attempt++) {
        int64_t ua, ub;
        char fa[64], fb[64], aname[16];
        while (cs_wall_ms() % 1000 > 50)
            usleep(5000);
        snprintf(aname, sizeof(aname), "A%d", attempt);
        snprintf(fa, sizeof(fa), "{\"firstName\": \"%s\"}", aname);
        snprintf(fb, sizeof(fb), "{\"firstName\": \"B%d\"}", attempt);
        if (update_prospect(ids[8], fa, &ua))
            break;
        want_t wa = {"person08@example.com", aname, NULL};
        if (!cs_tprod_reader_wait(&r, have_value, &wa, 800))
            continue; /* not seen within the second: try again */
        if (update_prospect(ids[8], fb, &ub))
            break;
        if (ua != ub)
            continue;
        same_second = 1;
        char bname[16];
        snprintf(bname, sizeof(bname), "B%d", attempt);
        want_t wb = {"person08@example.com", bname, NULL};
        CHECK(cs_tprod_reader_wait(&r, have_value, &wb, 10000));
        const cs_tprod_msg_t *m8 = cs_tprod_last_by_key(&r, "person08@example.com");
        CHECK(m8 && m8->updated_at == ub);
    }
    CHECK(same_second);

    /* 4. SIGKILL, changes while down, restart: resumes from the durable cursor */
    int64_t last_seen = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.msgs[i].updated_at > last_seen)
            last_seen = r.msgs[i].updated_at;
    int64_t cursor_before = -1;
    for (int i = 0; i < 50 && cursor_before != last_seen; i++) {
        cursor_before = durable_cursor(&e, "prospect-producer");
        if (cursor_before != last_seen)
            usleep(200 * 1000);
    }
    CHECK_INT(cursor_before, last_seen); /* the cursor is durable behind what was delivered */
    cs_tproc_kill(&p);
    size_t n_before = r.n;
    usleep(1100 * 1000); /* the next changes get a later second than the cursor */
    for (int i = NSEED; i < NSEED + 5; i++) {
        snprintf(email, sizeof(email), "late%02d@example.com", i);
        ids[i] = create_prospect(email, "\"firstName\": \"Late\"", NULL);
        CHECK(ids[i] > 0);
    }
    CHECK_INT(update_prospect(ids[9], "{\"lastName\": \"Down\"}", NULL), 0);
    REQUIRE(start_producer(&p, &e, "producer2.log") == 0);
    want = NSEED + 5;
    CHECK(cs_tprod_reader_wait(&r, have_ids, &want, 30000));
    want_t w9 = {"person09@example.com", NULL, "Down"};
    CHECK(cs_tprod_reader_wait(&r, have_value, &w9, 15000));
    cs_tprod_reader_poll(&r, 1500); /* let any re-publication show up */
    int dups = 0, dups_outside = 0;
    for (size_t i = n_before; i < r.n; i++) {
        for (size_t j = 0; j < n_before; j++) {
            if (!strcmp(r.msgs[i].event_id, r.msgs[j].event_id)) {
                dups++;
                dups_outside += r.msgs[i].updated_at < cursor_before - OVERLAP_MS;
                break;
            }
        }
    }
    CHECK_INT(dups_outside, 0); /* nothing older than the overlap window came back */
    CHECK(dups <= 2);           /* at most the window's records (#7, #8) */
    CHECK_INT(r.n - n_before - (size_t)dups, 6); /* 5 created + 1 changed, each once */
    size_t n0 = r.n;

    /* 5. faults: 503s, rate limits, expired tokens; everything still arrives. The changes
     * are made through the sandbox's admin endpoint (no knobs), so that every fault lands on
     * the producer. */
    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"marketing.error_rate\": 1.0}"), 0);
    for (int k = 10; k < 15; k++)
        CHECK_INT(admin_edit(ids[k], "{\"jobTitle\": \"Fault503\"}"), 0);
    /* every poll fails meanwhile (the sandbox's 503 says Retry-After: 1) */
    port = wait_port(&p);
    CHECK(wait_metric(port,
                      "crmsync_producer_polls_total{producer=\"prospect\",outcome=\"failed\"}", 3,
                      10000) >= 3);
    CHECK(wait_metric(port, "crmsync_producer_api_errors_total{producer=\"prospect\"}", 3, 1000) >=
          3);
    CHECK(cs_tprod_reader_poll(&r, 300) == 0 || !have_titles(&r, "Fault503"));
    CHECK_INT(cs_tprod_http_get(port, "/healthz", body, sizeof(body)), 200); /* within grace */
    CHECK(cs_tproc_alive(&p));
    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"marketing.error_rate\": 0.5}"), 0);
    CHECK(cs_tprod_reader_wait(&r, have_titles, "Fault503", 60000));
    CHECK(cs_tproc_log_count(&p, "HTTP_5XX") >= 3);

    /* rate limit: code 66 answers, backed off (retry.rate_limit.backoff.ms) */
    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"marketing.error_rate\": 0, "
                                     "\"marketing.burst_limit_errors\": 4}"),
              0);
    for (int k = 10; k < 15; k++)
        CHECK_INT(admin_edit(ids[k], "{\"jobTitle\": \"Fault66\"}"), 0);
    CHECK(cs_tprod_reader_wait(&r, have_titles, "Fault66", 60000));
    CHECK(cs_tproc_log_count(&p, "RATE_LIMIT") >= 4);

    /* token expiry: the marketing API answers 184, the token is fetched again */
    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"auth.token_ttl_s\": 1}"), 0);
    usleep(2200 * 1000);
    int refreshed = cs_tproc_log_count(&p, "fetching a new one");
    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"auth.token_ttl_s\": 7200}"), 0);
    for (int k = 10; k < 15; k++)
        CHECK_INT(admin_edit(ids[k], "{\"jobTitle\": \"FaultToken\"}"), 0);
    CHECK(cs_tprod_reader_wait(&r, have_titles, "FaultToken", 60000));
    CHECK(refreshed >= 1);
    CHECK_INT(cs_tprod_http_get(port, "/healthz", body, sizeof(body)), 200);
    /* nothing was published twice through all this: each title change is one event */
    {
        int per_title[3] = {0, 0, 0};
        for (size_t i = n0; i < r.n; i++) {
            per_title[0] += !strcmp(r.msgs[i].title, "Fault503");
            per_title[1] += !strcmp(r.msgs[i].title, "Fault66");
            per_title[2] += !strcmp(r.msgs[i].title, "FaultToken");
        }
        CHECK_INT(per_title[0], 5);
        CHECK_INT(per_title[1], 5);
        CHECK_INT(per_title[2], 5);
    }

    /* 6. SIGTERM: clean drain, exit 0 */
    CHECK_INT(cs_tproc_stop(&p, 20000), 0);
    CHECK(cs_tproc_log_count(&p, "stopped cleanly") == 1);

    cs_tprod_reader_close(&r);
    cs_tprod_env_destroy(&e, cs_test_fail_ > 0);
    cs_tsandbox_client_close(&cl);
    CHECK_INT(cs_tsandbox_stop(&sb), 0);
}

/* ---------------------------------------------------------------- part B: bad API data */

static atomic_int stub_queries;
static char stub_url[64];

static void stub_handler(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    (void)opaque;
    if (!strcmp(req->path, "/services/oauth2/token")) {
        cs_httpd_resp_json(resp, 200,
                           json_pack("{s:s, s:s, s:s, s:s, s:s}", "access_token", "stub-token",
                                     "instance_url", stub_url, "token_type", "Bearer", "id", "stub",
                                     "issued_at", "1714572672000"));
        return;
    }
    if (!strcmp(req->path, "/api/v5/objects/prospects") && !strcmp(req->method, "GET")) {
        const char *t = "2024-05-01T10:11:12-04:00";
        atomic_fetch_add(&stub_queries, 1);
        json_t *values = json_pack(
            "[{s:i, s:s, s:s, s:s, s:s},"  /* good */
            " {s:i, s:n, s:s, s:s},"       /* email null */
            " {s:i, s:s, s:s, s:s},"       /* email not an address */
            " {s:i, s:s, s:s, s:s},"       /* updatedAt unreadable */
            " {s:i, s:s, s:s, s:s, s:s},"  /* good, email needs trimming and lower-casing */
            " {s:s, s:s, s:s, s:s},"       /* id unusable */
            " {s:i, s:s, s:s, s:s, s:s}]", /* the same email as the first: a second event */
            "id", 1, "email", "good@x.io", "updatedAt", t, "createdAt", t, "firstName", "Good",
            "id", 2, "email", "updatedAt", t, "createdAt", t, "id", 3, "email", "not-an-email",
            "updatedAt", t, "createdAt", t, "id", 4, "email", "ok@x.io", "updatedAt", "yesterday",
            "createdAt", t, "id", 5, "email", "  Mixed.Case@X.IO ", "updatedAt", t, "createdAt",
            "2024-05-01T09:00:00-04:00", "firstName", "Mixed", "id", "abc", "email", "abc@x.io",
            "updatedAt", t, "createdAt", t, "id", 6, "email", "GOOD@x.io", "updatedAt", t,
            "createdAt", t, "firstName", "Twin");
        cs_httpd_resp_json(
            resp, 200,
            json_pack("{s:o, s:n, s:n}", "values", values, "nextPageToken", "nextPageUrl"));
        return;
    }
    cs_httpd_resp_json(resp, 404, json_pack("{s:i, s:s}", "code", 192, "message", "no"));
}

static int have_errors(cs_tprod_reader_t *r, void *opaque)
{
    return r->n >= *(size_t *)opaque;
}

static void test_bad_data(void)
{
    cs_tprod_env_t e;
    cs_tprod_reader_t rp, re;
    cs_tproc_t p;
    char err[512];
    cs_httpd_opts_t ho;
    memset(&ho, 0, sizeof(ho));
    ho.handler = stub_handler;
    cs_httpd_t *stub = cs_httpd_new(&ho, err, sizeof(err));
    REQUIRE(stub);
    snprintf(stub_url, sizeof(stub_url), "http://127.0.0.1:%d", cs_httpd_port(stub));
    REQUIRE(cs_tprod_env_init(&e, "prospect-bad", 3) == 0);
    REQUIRE(cs_tprod_write_config(&e, stub_url, "poll.interval.ms=100\n") == 0);
    REQUIRE(start_producer(&p, &e, "producer-bad.log") == 0);
    REQUIRE(cs_tprod_reader_init(&rp, &e, e.topics[CS_TOPIC_PROSPECT]) == 0);
    REQUIRE(cs_tprod_reader_init(&re, &e, e.topics[CS_TOPIC_ERRORS]) == 0);

    count_t three = {3};
    size_t four = 4;
    CHECK(cs_tprod_reader_wait(&rp, have_count, &three, 30000));
    CHECK(cs_tprod_reader_wait(&re, have_errors, &four, 30000));
    /* several more polls of the same page: nothing is published or reported again */
    int q0 = atomic_load(&stub_queries);
    for (int i = 0; i < 50 && atomic_load(&stub_queries) < q0 + 5; i++)
        usleep(100 * 1000);
    CHECK(atomic_load(&stub_queries) >= q0 + 5);
    cs_tprod_reader_poll(&rp, 1000);
    cs_tprod_reader_poll(&re, 1000);
    CHECK_INT(rp.n, 3);
    CHECK_INT(re.n, 4);

    const cs_tprod_msg_t *g = cs_tprod_last_by_key(&rp, "good@x.io");
    const cs_tprod_msg_t *mx = cs_tprod_last_by_key(&rp, "mixed.case@x.io");
    CHECK(g && g->prospect_id == 6 && !strcmp(g->first_name, "Twin"));
    CHECK(mx && mx->has_key && !strcmp(mx->key, "mixed.case@x.io") &&
          !strcmp(mx->email, "  Mixed.Case@X.IO ") && mx->cause == CS_CAUSE_FIELD_CHANGE &&
          mx->updated_at == 1714572672000LL);
    int first_ok = 0;
    for (size_t i = 0; i < rp.n; i++)
        first_ok += rp.msgs[i].prospect_id == 1 && rp.msgs[i].cause == CS_CAUSE_CREATED &&
                    !strcmp(rp.msgs[i].key, "good@x.io");
    CHECK_INT(first_ok, 1);
    for (size_t i = 0; i < rp.n; i++)
        CHECK(rp.msgs[i].partition ==
              cs_tprod_murmur2_partition(rp.msgs[i].key, strlen(rp.msgs[i].key), 3));
    int codes = 0;
    for (size_t i = 0; i < re.n; i++) {
        const cs_tprod_msg_t *m = &re.msgs[i];
        CHECK_INT(m->schema, CS_AVRO_SYNC_ERROR);
        CHECK(!m->has_key);
        codes |= (!strcmp(m->code, "MISSING_EMAIL") && strstr(m->message, "prospect 2")) << 0;
        codes |= (!strcmp(m->code, "INVALID_EMAIL") && strstr(m->message, "not-an-email")) << 1;
        codes |= (!strcmp(m->code, "INVALID_UPDATED_AT") && strstr(m->message, "yesterday")) << 2;
        codes |= !strcmp(m->code, "INVALID_PROSPECT_ID") << 3;
    }
    CHECK_INT(codes, 15);
    CHECK(cs_tproc_alive(&p));
    CHECK_INT(cs_tproc_stop(&p, 20000), 0);

    cs_tprod_reader_close(&rp);
    cs_tprod_reader_close(&re);
    cs_tprod_env_destroy(&e, cs_test_fail_ > 0);
    cs_httpd_destroy(stub);
}

int main(void)
{
    test_sandbox();
    test_bad_data();
    return cs_test_report();
}
