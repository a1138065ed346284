/* Component: crmsync-activity-producer as a child process against the real local broker
 * (and, for the pull, the sandbox).
 *
 *   - webhooks (one JSON object, an array, NDJSON, a form post) arrive on the topic decoded,
 *     keyed by the normalised e-mail (the record's prospect_key = the Kafka key), with the
 *     right type, time, score delta and flags; a 200 means the records are already in the
 *     topic (high watermarks checked right after each answer);
 *   - a retried event id is answered as a duplicate and not produced again;
 *   - every bad input is answered as specified and produces nothing: bad JSON, missing or
 *     invalid fields (named, with the event's index), no credentials, a bad token, a bad
 *     signature (and a good one accepted), an oversized body (413), too many events (413),
 *     a wrong method (405), an unsupported media type (415), the rate limit (429 +
 *     Retry-After);
 *   - no broker (bootstrap 127.0.0.1:1): 503 with Retry-After, /healthz 503; a failed delivery
 *     on a live broker (topic deleted under the producer) is a 503 too, never a 200;
 *   - the pull maps visitor-activity type codes to the Activity types, keys by the prospect's
 *     e-mail, skips what cannot be keyed, and resumes from its durable cursor without
 *     republishing;
 *   - SIGTERM: exit status 0 after the drain. */
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_http.h"
#include "cs_kafka.h"
#include "cs_run.h"
#include "cs_test.h"
#include "cs_time.h"
#include "testutil_proc.h"
#include "testutil_sandbox.h"

#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN "test-token-123"
#define SECRET "hmac-test-secret"
#define SIGNED_BODY "{\"id\":\"sig-1\",\"type\":\"unsubscribe\",\"email\":\"Signed@Example.com\"}"
/* HMAC-SHA256(SECRET, SIGNED_BODY) and HMAC-SHA256("wrong-secret", SIGNED_BODY), computed with
 * `printf '%s' BODY | openssl dgst -sha256 -hmac SECRET` */
#define SIGNED_GOOD "dcbd2fe2d89fe91d6aea7dece7ccd0f06f8e0cd38df5d046ad72c5c1920f716e"
#define SIGNED_BAD "3e773e000e268fbdba24b6cd811ccb15f4b7ca8c9afe63701407cc62cf2508c0"

static const char *bootstrap;
static char dir[256], suffix[64];
static cs_conf_t *conf;
static cs_avro_registry_t *reg;
static cs_http_t *http;

/* ---------------------------------------------------------------- process helpers */

static int wait_port(const char *log, int timeout_ms)
{
    int64_t end = cs_now_ms() + timeout_ms;
    while (cs_now_ms() < end) {
        FILE *f = fopen(log, "r");
        char line[1024];
        while (f && fgets(line, sizeof(line), f)) {
            const char *p = strstr(line, "listening on ");
            const char *colon = p ? strrchr(p, ':') : NULL;
            if (colon) {
                fclose(f);
                return atoi(colon + 1);
            }
        }
        if (f)
            fclose(f);
        usleep(50 * 1000);
    }
    return -1;
}

/* Starts the producer with a config file of base settings plus extra lines. */
static int start(cs_tproc_t *p, const char *name, const char *topic, const char *extra, int *port)
{
    char path[512], log[512];
    snprintf(path, sizeof(path), "%s/%s.conf", dir, name);
    snprintf(log, sizeof(log), "%s/%s.log", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "kafka.bootstrap.servers=%s\n"
            "topic.activity=%s\n"
            "topic.cursors=crmsync.test.act-cursors-%s\n"
            "http.port=0\n"
            "ingest.token=" TOKEN "\n"
            "ingest.hmac_secret=" SECRET "\n"
            "%s",
            bootstrap, topic, suffix, extra ? extra : "");
    fclose(f);
    const char *args[] = {"--config", path, NULL};
    if (cs_tproc_start(p, "activity-producer", args, log))
        return -1;
    if (port && (*port = wait_port(log, 15000)) <= 0) {
        fprintf(stderr, "%s did not start: see %s\n", name, log);
        return -1;
    }
    return 0;
}

/* Lines of dir/name containing needle. */
static int log_count(const char *name, const char *needle)
{
    char path[512], line[2048];
    int n = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* ---------------------------------------------------------------- HTTP */

typedef struct {
    int status, retry_after;
    json_t *json; /* owned */
} resp_t;

static void resp_free(resp_t *r)
{
    json_decref(r->json);
    r->json = NULL;
}

static resp_t call(int port, const char *method, const char *path, const char *const *headers,
                   const char *body, size_t len)
{
    char url[256];
    cs_http_result_t res;
    resp_t r = {0, -1, NULL};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    cs_http_request(http, method, url, headers, body, len, &res);
    r.status = res.status;
    r.retry_after = res.retry_after_s;
    r.json = json_incref(cs_http_result_json(&res));
    return r;
}

static const char *const auth_json[] = {"Authorization: Bearer " TOKEN,
                                        "Content-Type: application/json", NULL};

static resp_t post(int port, const char *body)
{
    return call(port, "POST", "/v1/activities", auth_json, body, strlen(body));
}

static const char *jstr(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

static long long jint(json_t *j, const char *k)
{
    json_t *v = json_object_get(j, k);
    return json_is_integer(v) ? json_integer_value(v) : -999;
}

/* ---------------------------------------------------------------- Kafka */

static int64_t topic_count(const char *topic)
{
    char err[256];
    static cs_producer_t *q;
    if (!q && !(q = cs_producer_new(conf, NULL, NULL, err, sizeof(err))))
        return -1;
    rd_kafka_t *rk = cs_producer_handle(q);
    int parts = cs_kafka_partition_count(rk, topic, 10000);
    int64_t sum = 0;
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000))
            return -1;
        sum += hi;
    }
    return parts > 0 ? sum : -1;
}

typedef struct {
    char key[256], event_id[256], prospect_key[256], email[256];
    int type, identified, has_email;
    int32_t score_delta;
    int64_t occurred_at, prospect_id, source_id;
} rec_t;

/* Reads the whole topic (every record up to the high watermarks) with a fresh group. */
static size_t read_all(const char *topic, rec_t *out, size_t max)
{
    char err[256], group[128];
    int64_t want = topic_count(topic);
    snprintf(group, sizeof(group), "crmsync-test-act-%s-%d", suffix, rand());
    const char *topics[1] = {topic};
    cs_consumer_t *c = cs_consumer_new(conf, group, topics, 1, NULL, err, sizeof(err));
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    size_t n = 0;
    int64_t got = 0, deadline = cs_now_ms() + 30000;
    REQUIRE(c && dec);
    while (got < want && cs_now_ms() < deadline) {
        rd_kafka_message_t *m = cs_consumer_poll(c, 200);
        cs_avro_decoded_t d;
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        got++;
        if (n < max && cs_avro_decode(dec, m->payload, m->len, &d) == 0 &&
            d.schema == CS_AVRO_ACTIVITY) {
            rec_t *r = &out[n++];
            memset(r, 0, sizeof(*r));
            snprintf(r->key, sizeof(r->key), "%.*s", (int)m->key_len, (const char *)m->key);
            snprintf(r->event_id, sizeof(r->event_id), "%s",
                     cs_avro_get_str(d.value, CS_ACT_EVENT_ID, NULL));
            snprintf(r->prospect_key, sizeof(r->prospect_key), "%s",
                     cs_avro_get_str(d.value, CS_ACT_PROSPECT_KEY, NULL));
            const char *e = cs_avro_get_str(d.value, CS_ACT_EMAIL, NULL);
            r->has_email = e != NULL;
            snprintf(r->email, sizeof(r->email), "%s", e ? e : "");
            r->type = cs_avro_get_enum(d.value, CS_ACT_TYPE);
            bool b = false;
            cs_avro_get_bool(d.value, CS_ACT_IDENTIFIED, &b);
            r->identified = b;
            cs_avro_get_int(d.value, CS_ACT_SCORE_DELTA, &r->score_delta);
            cs_avro_get_long(d.value, CS_ACT_OCCURRED_AT, &r->occurred_at);
            if (!cs_avro_get_long(d.value, CS_ACT_PROSPECT_ID, &r->prospect_id))
                r->prospect_id = -1;
            if (!cs_avro_get_long(d.value, CS_ACT_SOURCE_ACTIVITY_ID, &r->source_id))
                r->source_id = -1;
        }
        rd_kafka_message_destroy(m);
    }
    CHECK_INT(got, want);
    cs_avro_decoder_destroy(dec);
    cs_consumer_destroy(c);
    return n;
}

static const rec_t *find(const rec_t *r, size_t n, const char *event_id, int *count)
{
    const rec_t *hit = NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].event_id, event_id)) {
            hit = &r[i];
            (*count)++;
        }
    return hit;
}

static void make_topic(const char *name, int partitions)
{
    char err[512];
    cs_topic_spec_t spec = {name, partitions, 1, NULL};
    if (cs_kafka_ensure_topics(conf, &spec, 1, 15000, err, sizeof(err)))
        fprintf(stderr, "cannot create %s: %s\n", name, err);
}

static int delete_topic(const char *name)
{
    char err[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(conf, err, sizeof(err));
    rd_kafka_t *rk = kc ? rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err)) : NULL;
    int rc = -1;
    if (!rk)
        return -1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (ev && rd_kafka_event_DeleteTopics_result(ev)) {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
        rc = cnt == 1 && !rd_kafka_topic_result_error(res[0]) ? 0 : -1;
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---------------------------------------------------------------- webhooks */

static void expect_field_error(int port, const char *body, int status, const char *error,
                               const char *field, long index)
{
    resp_t r = post(port, body);
    CHECK_INT(r.status, status);
    CHECK_STR(jstr(r.json, "error"), error);
    if (field)
        CHECK_STR(jstr(r.json, "field"), field);
    if (index >= 0)
        CHECK_INT(jint(r.json, "index"), index);
    if (r.status != status)
        fprintf(stderr, "  body was: %s\n", body);
    resp_free(&r);
}

static void test_webhooks(void)
{
    char topic[128];
    cs_tproc_t p;
    int port = 0;
    resp_t r;
    int64_t ms;
    snprintf(topic, sizeof(topic), "crmsync.test.act-%s", suffix);
    make_topic(topic, 3);
    REQUIRE(start(&p, "webhooks", topic, "ingest.max_body=4096\ningest.max_events=20\n", &port) ==
            0);

    /* -------- accepted shapes; a 200 means the records are in the topic already */
    r = post(port, "{\"id\":\"a-1\",\"type\":\"form\",\"email\":\"  Ann.Lee@Example.COM \","
                   "\"time\":\"2024-05-01T10:11:12-04:00\",\"score_delta\":7,"
                   "\"prospect_id\":42,\"source_activity_id\":9001,\"extra\":{\"x\":1}}");
    CHECK_INT(r.status, 200);
    CHECK_INT(jint(r.json, "accepted"), 1);
    CHECK_INT(jint(r.json, "duplicates"), 0);
    resp_free(&r);
    CHECK_INT(topic_count(topic), 1);

    r = post(port, "[{\"event_id\":\"a-2\",\"type\":\"page_view\",\"email\":\"bob@example.com\","
                   "\"identified\":false,\"occurred_at\":1714572672000},"
                   "{\"id\":77,\"type\":\"EMAIL-OPEN\",\"prospectEmail\":\"carol@example.com\"},"
                   "{\"id\":\"a-4\",\"type\":\"tracked_link_click\",\"email\":\"bob@example.com\","
                   "\"scoreDelta\":\"-3\"}]");
    CHECK_INT(r.status, 200);
    CHECK_INT(jint(r.json, "accepted"), 3);
    resp_free(&r);
    CHECK_INT(topic_count(topic), 4);

    const char *ndjson =
        "{\"id\":\"n-1\",\"type\":\"email_send\",\"email\":\"dan@example.com\"}\n"
        "{\"id\":\"n-2\",\"type\":\"visitor_session\",\"email\":\"dan@example.com\"}\n";
    const char *const nd_hdr[] = {"Authorization: Bearer " TOKEN,
                                  "Content-Type: application/x-ndjson", NULL};
    r = call(port, "POST", "/v1/activities", nd_hdr, ndjson, strlen(ndjson));
    CHECK_INT(r.status, 200);
    CHECK_INT(jint(r.json, "accepted"), 2);
    resp_free(&r);

    const char *form = "id=f-1&type=form_handler&email=Erin%40Example.com&first_name=Erin"
                       "&score_delta=12&identified=true&time=2024-06-01T00%3A00%3A00Z";
    const char *const form_hdr[] = {"Authorization: Bearer " TOKEN,
                                    "Content-Type: application/x-www-form-urlencoded", NULL};
    r = call(port, "POST", "/v1/activities", form_hdr, form, strlen(form));
    CHECK_INT(r.status, 200);
    CHECK_INT(jint(r.json, "accepted"), 1);
    resp_free(&r);
    CHECK_INT(topic_count(topic), 7);

    /* signed with HMAC-SHA256 instead of a token */
    const char *const sig_good[] = {"X-Crmsync-Signature: sha256=" SIGNED_GOOD, NULL};
    r = call(port, "POST", "/v1/activities", sig_good, SIGNED_BODY, strlen(SIGNED_BODY));
    CHECK_INT(r.status, 200);
    resp_free(&r);
    CHECK_INT(topic_count(topic), 8);

    /* -------- a retry of the same ids is not produced again */
    r = post(port, "[{\"event_id\":\"a-2\",\"type\":\"page_view\",\"email\":\"bob@example.com\"},"
                   "{\"id\":\"77\",\"type\":\"email_open\",\"email\":\"carol@example.com\"},"
                   "{\"id\":\"a-5\",\"type\":\"unsubscribe\",\"email\":\"bob@example.com\"},"
                   "{\"id\":\"a-5\",\"type\":\"unsubscribe\",\"email\":\"bob@example.com\"}]");
    CHECK_INT(r.status, 200);
    CHECK_INT(jint(r.json, "accepted"), 1);
    CHECK_INT(jint(r.json, "duplicates"), 3);
    resp_free(&r);
    r = call(port, "POST", "/v1/activities", sig_good, SIGNED_BODY, strlen(SIGNED_BODY));
    CHECK_INT(r.status, 200);
    CHECK_INT(jint(r.json, "accepted"), 0);
    CHECK_INT(jint(r.json, "duplicates"), 1);
    resp_free(&r);
    CHECK_INT(topic_count(topic), 9);

    /* -------- bad input: named fields, nothing produced */
    expect_field_error(port, "{\"id\":\"b-1\",\"type\":\"form\"", 400, "invalid_json", NULL, -1);
    expect_field_error(port, "\"just a string\"", 400, "invalid_json", NULL, -1);
    expect_field_error(port, "{\"id\":\"b-2\",\"email\":\"x@example.com\"}", 400, "invalid_field",
                       "type", 0);
    expect_field_error(port,
                       "[{\"id\":\"b-3\",\"type\":\"form\",\"email\":\"ok@example.com\"},"
                       "{\"id\":\"b-4\",\"type\":\"webinar\",\"email\":\"x@example.com\"}]",
                       400, "invalid_field", "type", 1);
    expect_field_error(port, "{\"id\":\"b-5\",\"type\":\"form\",\"email\":\"not-an-email\"}", 400,
                       "invalid_field", "email", 0);
    expect_field_error(port, "{\"id\":\"b-6\",\"type\":\"form\",\"prospect_id\":5}", 400,
                       "invalid_field", "email", 0);
    expect_field_error(port,
                       "{\"id\":\"b-7\",\"type\":\"form\",\"email\":\"x@example.com\","
                       "\"time\":\"yesterday\"}",
                       400, "invalid_field", "time", 0);
    expect_field_error(port,
                       "{\"id\":\"b-8\",\"type\":\"form\",\"email\":\"x@example.com\","
                       "\"score_delta\":\"lots\"}",
                       400, "invalid_field", "score_delta", 0);
    expect_field_error(port,
                       "{\"id\":\"b-9\",\"type\":\"form\",\"email\":\"x@example.com\","
                       "\"identified\":\"maybe\"}",
                       400, "invalid_field", "identified", 0);
    expect_field_error(port, "{\"type\":\"form\",\"email\":\"x@example.com\"}", 400,
                       "invalid_field", "id", 0);
    expect_field_error(port,
                       "{\"id\":\"b-10\",\"event_id\":\"b-11\",\"type\":\"form\","
                       "\"email\":\"x@example.com\"}",
                       400, "invalid_field", "event_id", 0);
    expect_field_error(port, "[{\"id\":\"b-12\",\"type\":\"form\",\"email\":\"x@example.com\"}, 3]",
                       400, "invalid_event", NULL, 1);
    expect_field_error(port, "[]", 400, "empty_body", NULL, -1);
    expect_field_error(port, "   ", 400, "empty_body", NULL, -1);
    /* NDJSON: the broken second line is named by its index */
    expect_field_error(port,
                       "{\"id\":\"b-13\",\"type\":\"form\",\"email\":\"x@example.com\"}\n"
                       "{\"id\":\"b-14\",\"type\":\"form\",\"email\":\"y@example.com\"\n",
                       400, "invalid_json", NULL, 1);

    /* too many events, too large a body, wrong method, wrong media type */
    {
        char big[8192];
        size_t w = (size_t)snprintf(big, sizeof(big), "[");
        for (int i = 0; i < 21; i++)
            w += (size_t)snprintf(big + w, sizeof(big) - w, "%s{\"id\":\"m%d\",\"type\":\"form\"}",
                                  i ? "," : "", i);
        snprintf(big + w, sizeof(big) - w, "]");
        expect_field_error(port, big, 413, "too_many_events", NULL, -1);
        memset(big, ' ', 5000);
        memcpy(big, "{\"id\":\"big\",\"type\":\"form\",\"email\":\"x@example.com\"}", 51);
        r = call(port, "POST", "/v1/activities", auth_json, big, 5000);
        CHECK_INT(r.status, 413);
        resp_free(&r);
    }
    r = call(port, "GET", "/v1/activities", auth_json, NULL, 0);
    CHECK_INT(r.status, 405);
    resp_free(&r);
    {
        const char *const xml[] = {"Authorization: Bearer " TOKEN, "Content-Type: text/xml", NULL};
        r = call(port, "POST", "/v1/activities", xml, "<a/>", 4);
        CHECK_INT(r.status, 415);
        CHECK_STR(jstr(r.json, "error"), "unsupported_media_type");
        resp_free(&r);
    }

    /* authentication */
    {
        const char *body = "{\"id\":\"u-1\",\"type\":\"form\",\"email\":\"x@example.com\"}";
        const char *const none[] = {"Content-Type: application/json", NULL};
        const char *const bad_token[] = {"Authorization: Bearer nope", NULL};
        const char *const basic[] = {"Authorization: Basic dGVzdDp0ZXN0", NULL};
        const char *const sig_bad[] = {"X-Crmsync-Signature: sha256=" SIGNED_BAD, NULL};
        const char *const sig_junk[] = {"X-Crmsync-Signature: md5=abc", NULL};
        const char *const *cases[] = {none, bad_token, basic, sig_bad, sig_junk};
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            const char *b = cases[i] == sig_bad || cases[i] == sig_junk ? SIGNED_BODY : body;
            r = call(port, "POST", "/v1/activities", cases[i], b, strlen(b));
            CHECK_INT(r.status, 401);
            CHECK_STR(jstr(r.json, "error"), "unauthorized");
            resp_free(&r);
        }
        /* a valid signature over another body does not authenticate this one */
        const char *tampered =
            "{\"id\":\"sig-2\",\"type\":\"unsubscribe\",\"email\":\"x@example.com\"}";
        r = call(port, "POST", "/v1/activities", sig_good, tampered, strlen(tampered));
        CHECK_INT(r.status, 401);
        resp_free(&r);
    }
    CHECK_INT(topic_count(topic), 9); /* nothing of the above was produced */

    /* health and metrics */
    r = call(port, "GET", "/healthz", NULL, NULL, 0);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    {
        char url[128];
        cs_http_result_t res;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
        cs_http_request(http, "GET", url, NULL, NULL, 0, &res);
        CHECK_INT(res.status, 200);
        CHECK(strstr(res.body, "crmsync_activity_requests_total{outcome=\"accepted\"} 6") != NULL);
        CHECK(strstr(res.body, "crmsync_activity_duplicates_total 4") != NULL);
        CHECK(strstr(res.body, "crmsync_activities_published_total{source=\"webhook\"} 9") != NULL);
    }

    CHECK_INT(cs_tproc_stop(&p, 20000), 0);

    /* -------- what is in the topic */
    static rec_t recs[64];
    size_t n = read_all(topic, recs, 64);
    int cnt;
    CHECK_INT(n, 9);
    for (size_t i = 0; i < n; i++)
        CHECK_STR(recs[i].key, recs[i].prospect_key); /* the consumer's co-partitioning rule */
    const rec_t *a1 = find(recs, n, "a-1", &cnt);
    CHECK_INT(cnt, 1);
    if (a1) {
        CHECK_STR(a1->key, "ann.lee@example.com");
        CHECK_STR(a1->email, "Ann.Lee@Example.COM");
        CHECK_INT(a1->type, CS_ACTIVITY_FORM);
        CHECK_INT(a1->score_delta, 7);
        CHECK_INT(a1->identified, 1);
        CHECK_INT(a1->prospect_id, 42);
        CHECK_INT(a1->source_id, 9001);
        cs_time_parse_iso8601("2024-05-01T14:11:12Z", &ms);
        CHECK_INT(a1->occurred_at, ms);
    }
    const rec_t *a2 = find(recs, n, "a-2", &cnt);
    CHECK_INT(cnt, 1); /* retried, produced once */
    if (a2) {
        CHECK_INT(a2->type, CS_ACTIVITY_PAGE_VIEW);
        CHECK_INT(a2->identified, 0);
        CHECK_INT(a2->occurred_at, 1714572672000LL);
        CHECK_INT(a2->prospect_id, -1);
    }
    const rec_t *a3 = find(recs, n, "77", &cnt);
    CHECK_INT(cnt, 1);
    if (a3) {
        CHECK_INT(a3->type, CS_ACTIVITY_EMAIL_OPEN);
        CHECK_STR(a3->key, "carol@example.com");
        CHECK(a3->occurred_at > 1700000000000LL); /* defaulted to now */
    }
    const rec_t *a4 = find(recs, n, "a-4", &cnt);
    if (a4) {
        CHECK_INT(a4->type, CS_ACTIVITY_TRACKED_LINK_CLICK);
        CHECK_INT(a4->score_delta, -3);
    }
    find(recs, n, "a-5", &cnt);
    CHECK_INT(cnt, 1); /* twice in one request: once */
    const rec_t *n2 = find(recs, n, "n-2", &cnt);
    CHECK(n2 && n2->type == CS_ACTIVITY_VISITOR_SESSION);
    const rec_t *n1 = find(recs, n, "n-1", &cnt);
    CHECK(n1 && n1->type == CS_ACTIVITY_EMAIL_SEND);
    const rec_t *f1 = find(recs, n, "f-1", &cnt);
    CHECK_INT(cnt, 1);
    if (f1) {
        CHECK_INT(f1->type, CS_ACTIVITY_FORM_HANDLER);
        CHECK_STR(f1->key, "erin@example.com");
        CHECK_INT(f1->score_delta, 12);
        cs_time_parse_iso8601("2024-06-01T00:00:00Z", &ms);
        CHECK_INT(f1->occurred_at, ms);
    }
    const rec_t *s1 = find(recs, n, "sig-1", &cnt);
    CHECK_INT(cnt, 1);
    CHECK(s1 && s1->type == CS_ACTIVITY_UNSUBSCRIBE && !strcmp(s1->key, "signed@example.com"));
    find(recs, n, "b-3", &cnt); /* valid event of a rejected request: all or nothing */
    CHECK_INT(cnt, 0);
}

/* ---------------------------------------------------------------- limits and outages */

static void test_rate_limit(void)
{
    char topic[128];
    cs_tproc_t p;
    int port = 0;
    snprintf(topic, sizeof(topic), "crmsync.test.act-%s", suffix); /* made by test_webhooks */
    REQUIRE(start(&p, "ratelimit", topic, "ingest.max_rps=1\ningest.burst=2\n", &port) == 0);
    int ok = 0, limited = 0, retry_after = -1;
    for (int i = 0; i < 5; i++) {
        char body[128];
        snprintf(body, sizeof(body),
                 "{\"id\":\"rl-%d\",\"type\":\"form\",\"email\":\"r@example.com\"}", i);
        resp_t r = post(port, body);
        if (r.status == 200)
            ok++;
        else if (r.status == 429) {
            limited++;
            retry_after = r.retry_after;
            CHECK_STR(jstr(r.json, "error"), "rate_limited");
        }
        resp_free(&r);
    }
    CHECK(ok >= 2 && ok <= 3); /* the burst, plus at most one refill */
    CHECK(limited >= 2);
    CHECK(retry_after >= 1);
    /* unauthenticated requests do not spend the bucket: once it has refilled, five of them
     * are refused 401 (not 429) and two authenticated ones still pass */
    sleep(3);
    const char *const none[] = {"Content-Type: application/json", NULL};
    for (int i = 0; i < 5; i++) {
        resp_t u = call(port, "POST", "/v1/activities", none, "{}", 2);
        CHECK_INT(u.status, 401);
        resp_free(&u);
    }
    for (int i = 0; i < 2; i++) {
        char body[128];
        snprintf(body, sizeof(body),
                 "{\"id\":\"rl-late-%d\",\"type\":\"form\",\"email\":\"r@example.com\"}", i);
        resp_t r = post(port, body);
        CHECK_INT(r.status, 200);
        resp_free(&r);
    }
    CHECK_INT(cs_tproc_stop(&p, 20000), 0);
}

static void test_no_broker(void)
{
    cs_tproc_t p;
    int port = 0;
    char path[512];
    /* a bootstrap where nothing listens; short timeouts */
    snprintf(path, sizeof(path), "%s/nobroker.conf", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "kafka.bootstrap.servers=127.0.0.1:1\n"
               "kafka.message.timeout.ms=1500\n"
               "ingest.delivery_timeout.ms=1500\n"
               "ingest.retry_after.s=7\n"
               "http.port=0\n"
               "ingest.token=" TOKEN "\n");
    fclose(f);
    char log[512];
    snprintf(log, sizeof(log), "%s/nobroker.log", dir);
    const char *args[] = {"--config", path, NULL};
    REQUIRE(cs_tproc_start(&p, "activity-producer", args, log) == 0);
    REQUIRE((port = wait_port(log, 20000)) > 0);
    for (int i = 0; i < 2; i++) {
        int64_t t0 = cs_now_ms();
        resp_t r = post(port, "{\"id\":\"nb-1\",\"type\":\"form\",\"email\":\"x@example.com\"}");
        CHECK_INT(r.status, 503);
        CHECK_STR(jstr(r.json, "error"), "kafka_unavailable");
        CHECK_INT(r.retry_after, 7);
        CHECK(cs_now_ms() - t0 < 10000);
        resp_free(&r);
    }
    resp_t r = call(port, "GET", "/healthz", NULL, NULL, 0);
    CHECK_INT(r.status, 503);
    resp_free(&r);
    CHECK_INT(cs_tproc_stop(&p, 20000), 0); /* nothing was accepted, nothing is owed */
}

/* A delivery that fails on a live broker (the topic is deleted under the producer): 503, not
 * 200, and nothing is remembered as accepted. */
static void test_delivery_failure(void)
{
    char topic[128];
    cs_tproc_t p;
    int port = 0;
    snprintf(topic, sizeof(topic), "crmsync.test.act-gone-%s", suffix);
    make_topic(topic, 1);
    REQUIRE(start(&p, "gone", topic,
                  "kafka.message.timeout.ms=3000\ningest.delivery_timeout.ms=3000\n"
                  "kafka.topic.metadata.refresh.interval.ms=500\n",
                  &port) == 0);
    resp_t r = post(port, "{\"id\":\"g-1\",\"type\":\"form\",\"email\":\"x@example.com\"}");
    CHECK_INT(r.status, 200);
    resp_free(&r);
    REQUIRE(delete_topic(topic) == 0);
    sleep(2);
    int64_t t0 = cs_now_ms();
    r = post(port, "{\"id\":\"g-2\",\"type\":\"form\",\"email\":\"x@example.com\"}");
    CHECK_INT(r.status, 503);
    CHECK_STR(jstr(r.json, "error"), "kafka_unavailable");
    CHECK(r.retry_after >= 1);
    CHECK(cs_now_ms() - t0 < 8000);
    resp_free(&r);
    CHECK_INT(cs_tproc_stop(&p, 20000), 0);
}

/* ---------------------------------------------------------------- pull */

static cs_tsandbox_t sb;
static cs_tsandbox_client_t cl;

static int64_t create_prospect(const char *email)
{
    char body[256];
    int status = 0;
    snprintf(body, sizeof(body), "{\"email\": \"%s\"}", email);
    json_t *r = cs_tsandbox_req(&cl, "POST", CS_TSANDBOX_V5 "/prospects?fields=id", body, &status);
    return status == 201 && r ? json_integer_value(json_object_get(r, "id")) : -1;
}

/* kind: a sandbox activity kind ("form", "click", ...) or a bare v5 type code ("1"). */
static int add_activity(int64_t pid, const char *kind)
{
    char body[256];
    int status = 0;
    if (kind[0] >= '0' && kind[0] <= '9')
        snprintf(body, sizeof(body), "{\"prospectId\": %lld, \"type\": %s}", (long long)pid, kind);
    else
        snprintf(body, sizeof(body), "{\"prospectId\": %lld, \"kind\": \"%s\"}", (long long)pid,
                 kind);
    json_t *r = cs_tsandbox_admin(&sb, "POST", "marketing/activity", body, &status);
    json_decref(r);
    if (status != 201)
        fprintf(stderr, "add activity %s: HTTP %d\n", kind, status);
    return status == 201 ? 0 : -1;
}

static size_t wait_count(const char *topic, int64_t n, int timeout_ms)
{
    int64_t end = cs_now_ms() + timeout_ms, c = 0;
    while (cs_now_ms() < end && (c = topic_count(topic)) < n)
        usleep(200 * 1000);
    return (size_t)c;
}

static void test_pull(void)
{
    char err[512], topic[128], cursors[128], extra[1024];
    cs_tproc_t p;
    REQUIRE(cs_tsandbox_start(&sb, NULL, err, sizeof(err)) == 0);
    REQUIRE(cs_tsandbox_client_init(&cl, &sb) == 0);
    snprintf(topic, sizeof(topic), "crmsync.test.act-pull-%s", suffix);
    snprintf(cursors, sizeof(cursors), "crmsync.test.act-cursors-%s", suffix);
    make_topic(topic, 3);
    make_topic(cursors, 1);

    int64_t ann = create_prospect("Ann@Pull.Example"), bob = create_prospect("bob@pull.example"),
            gone = create_prospect("gone@pull.example");
    REQUIRE(ann > 0 && bob > 0 && gone > 0);
    static const struct {
        const char *kind;
        int type;
    } kinds[] = {
        {"form", CS_ACTIVITY_FORM},
        {"form_handler", CS_ACTIVITY_FORM_HANDLER},
        {"landing_page", CS_ACTIVITY_LANDING_PAGE},
        {"click", CS_ACTIVITY_EMAIL_CLICK},
        {"view", CS_ACTIVITY_PAGE_VIEW},
        {"open", CS_ACTIVITY_EMAIL_OPEN},
        {"sent", CS_ACTIVITY_EMAIL_SEND},
        {"unsubscribe", CS_ACTIVITY_UNSUBSCRIBE},
        {"visit", CS_ACTIVITY_VISITOR_SESSION},
        {"custom_redirect", CS_ACTIVITY_OTHER},
        {"1", CS_ACTIVITY_TRACKED_LINK_CLICK}, /* a click without an email id */
        {"4", CS_ACTIVITY_OTHER},              /* a success without a known asset */
    };
    size_t nk = sizeof(kinds) / sizeof(kinds[0]);
    for (size_t i = 0; i < nk; i++)
        REQUIRE(add_activity(i % 2 ? bob : ann, kinds[i].kind) == 0);
    /* an activity of a prospect deleted before the pull: cannot be keyed, skipped */
    REQUIRE(add_activity(gone, "form") == 0);
    {
        char path[128];
        int status = 0;
        snprintf(path, sizeof(path), CS_TSANDBOX_V5 "/prospects/%lld", (long long)gone);
        cs_tsandbox_req(&cl, "DELETE", path, NULL, &status);
        CHECK_INT(status, 204);
    }

    snprintf(extra, sizeof(extra),
             "http.port=-1\npull.enabled=true\npull.interval.ms=300\npull.overlap.ms=0\n"
             "pull.initial=earliest\npull.page_size=5\n"
             "crm.login_url=%s\ncrm.client_id=" CS_TSANDBOX_CLIENT_ID "\n"
             "crm.client_secret=" CS_TSANDBOX_CLIENT_SECRET "\nmkt.base_url=%s\n"
             "mkt.business_unit_id=" CS_TSANDBOX_BU_ID "\n",
             sb.url, sb.url);
    REQUIRE(start(&p, "pull1", topic, extra, NULL) == 0);
    CHECK_INT(wait_count(topic, (int64_t)nk, 20000), nk);
    sleep(1); /* a few more polls: nothing more may come */
    CHECK_INT(cs_tproc_stop(&p, 20000), 0);
    CHECK_INT(topic_count(topic), nk);

    static rec_t recs[64];
    size_t n = read_all(topic, recs, 64);
    CHECK_INT(n, nk);
    size_t type_ok = 0, keys_ok = 0;
    for (size_t i = 0; i < n; i++) {
        /* sandbox activity ids grow in creation order: the i-th created is kinds[i] */
        int64_t first = recs[0].source_id;
        for (size_t j = 0; j < n; j++)
            if (recs[j].source_id < first)
                first = recs[j].source_id;
        size_t k = (size_t)(recs[i].source_id - first);
        if (k < nk && recs[i].type == kinds[k].type)
            type_ok++;
        else
            fprintf(stderr, "pulled activity %lld: type %d\n", (long long)recs[i].source_id,
                    recs[i].type);
        const char *want = k % 2 ? "bob@pull.example" : "ann@pull.example";
        keys_ok += !strcmp(recs[i].key, want) && !strcmp(recs[i].prospect_key, want) &&
                   recs[i].prospect_id == (k % 2 ? bob : ann) && recs[i].identified;
        char eid[64];
        snprintf(eid, sizeof(eid), "mkt-activity:%lld", (long long)recs[i].source_id);
        CHECK_STR(recs[i].event_id, eid);
    }
    CHECK_INT(type_ok, nk);
    CHECK_INT(keys_ok, nk);

    /* restart: resumes from the durable cursor, publishes only what is new */
    REQUIRE(add_activity(ann, "form") == 0);
    REQUIRE(start(&p, "pull2", topic, extra, NULL) == 0);
    CHECK_INT(wait_count(topic, (int64_t)nk + 1, 20000), nk + 1);
    sleep(1);
    CHECK_INT(cs_tproc_stop(&p, 20000), 0);
    CHECK_INT(topic_count(topic), nk + 1);
    CHECK(log_count("pull1.log", "prospect not found 1") >= 1);
    CHECK_INT(log_count("pull1.log", "poll failed"), 0);
    CHECK_INT(log_count("pull2.log", "poll failed"), 0);
    CHECK_INT(log_count("pull2.log", "resumed cursor"), 1);

    cs_tsandbox_client_close(&cl);
    CHECK_INT(cs_tsandbox_stop(&sb), 0);
}

int main(void)
{
    char err[512];
    bootstrap = cs_test_env("CRMSYNC_BOOTSTRAP", "127.0.0.1:19092");
    snprintf(suffix, sizeof(suffix), "%d-%lld", (int)getpid(), (long long)cs_wall_ms());
    snprintf(dir, sizeof(dir), "/tmp/crmsync-test-act-%s", suffix);
    mkdir(dir, 0755);
    srand((unsigned)getpid());
    conf = cs_conf_new("test_activity_producer", "test", NULL);
    REQUIRE(conf && cs_conf_set(conf, "kafka.bootstrap.servers", bootstrap, err, sizeof(err)) == 0);
    REQUIRE((reg = cs_avro_registry_new(err, sizeof(err))));
    cs_http_opts_t ho = {0};
    ho.timeout_ms = 30000;
    REQUIRE((http = cs_http_new(&ho, err, sizeof(err))));

    /* --help and --check-config work without Kafka */
    cs_tproc_t p;
    char log[512];
    snprintf(log, sizeof(log), "%s/help.log", dir);
    const char *help[] = {"--help", NULL};
    REQUIRE(cs_tproc_start(&p, "activity-producer", help, log) == 0);
    CHECK_INT(cs_tproc_wait(&p, 10000), 0);
    CHECK(cs_tproc_log_count(&p, "ingest.hmac_secret") >= 1);
    snprintf(log, sizeof(log), "%s/check.log", dir);
    const char *check[] = {"--check-config", "--ingest.token", "x", NULL};
    REQUIRE(cs_tproc_start(&p, "activity-producer", check, log) == 0);
    CHECK_INT(cs_tproc_wait(&p, 10000), 0);
    snprintf(log, sizeof(log), "%s/dump.log", dir);
    const char *dump[] = {"--dump-config", "--ingest.token", "supersecret", NULL};
    REQUIRE(cs_tproc_start(&p, "activity-producer", dump, log) == 0);
    CHECK_INT(cs_tproc_wait(&p, 10000), 0);
    CHECK_INT(cs_tproc_log_count(&p, "supersecret"), 0); /* redacted */
    /* no credentials configured: refuses to start */
    snprintf(log, sizeof(log), "%s/noauth.log", dir);
    const char *noauth[] = {"--set", "kafka.bootstrap.servers=127.0.0.1:1", NULL};
    REQUIRE(cs_tproc_start(&p, "activity-producer", noauth, log) == 0);
    CHECK_INT(cs_tproc_wait(&p, 10000), 2);

    test_webhooks();
    test_rate_limit();
    test_no_broker();
    test_delivery_failure();
    test_pull();

    cs_http_destroy(http);
    cs_avro_registry_destroy(reg);
    cs_conf_destroy(conf);
    return cs_test_report();
}
