/* The activity producer's runtime and its HTTP ingest handler (see act.h).
 *
 * A request is answered 2xx only after every event in it has its delivery report:
 *
 *   MHD thread: auth -> rate limit -> parse (all or nothing) -> for each event: claim its id
 *               (a duplicate waits for the original's outcome, a new one is encoded and
 *               sent with its tracker entry as the message opaque) -> wait on the tracker
 *               until all are resolved or ingest.delivery_timeout.ms passed -> answer
 *   poll thread: cs_producer_poll -> on_delivery -> act_tracker_resolve -> wakes waiters
 *
 * Broker outage: a delivery that fails with a transient error (timeout, transport, all
 * brokers down) marks Kafka down; while it is down requests are answered 503 at once
 * (Retry-After) instead of queueing, and the poll thread probes the cluster (metadata
 * request) every second; a successful probe or delivery clears the mark. */
#include "act.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_topics.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define LOG_COMP "activity"
#define INGEST_PATH "/v1/activities"
#define SIGNATURE_HEADER "X-Crmsync-Signature"

enum {
    R_ACCEPTED,
    R_DUPLICATE, /* every event of the request was a duplicate */
    R_BAD_REQUEST,
    R_UNAUTHORIZED,
    R_RATE_LIMITED,
    R_UNAVAILABLE,
    R_OTHER, /* 405, shutting down, internal */
    R_COUNT_
};
static const char *const r_names[R_COUNT_] = {
    "accepted", "duplicate", "bad_request", "unauthorized", "rate_limited", "unavailable", "other"};

/* ------------------------------------------------------------------ Kafka */

static void on_delivery(void *opaque, void *msg_opaque, int err, const char *errstr,
                        int32_t partition, int64_t offset)
{
    act_t *a = opaque;
    act_entry_t *e = msg_opaque;
    (void)partition;
    (void)offset;
    if (err) {
        cs_counter_add(a->m.delivery_failed, 1);
        if (cs_err_class(err) == CS_CLASS_RETRY) {
            if (!atomic_exchange(&a->kafka_down, 1))
                CS_WARN(LOG_COMP,
                        "Kafka unavailable (%s): answering 503 until a broker answers again",
                        errstr ? errstr : cs_err_str(err));
            cs_gauge_set(a->m.kafka_up, 0);
        } else {
            CS_ERROR(LOG_COMP, "delivery to %s failed: %s", a->topic,
                     errstr ? errstr : cs_err_str(err));
        }
    } else if (atomic_load(&a->kafka_down)) {
        if (atomic_exchange(&a->kafka_down, 0))
            CS_INFO(LOG_COMP, "Kafka available again (a delivery succeeded)");
        cs_gauge_set(a->m.kafka_up, 1);
    }
    if (e)
        act_tracker_resolve(a->tracker, e, err);
}

static void *poll_main(void *arg)
{
    act_t *a = arg;
    rd_kafka_t *rk = cs_producer_handle(a->producer);
    int64_t next_probe = 0;
    while (!atomic_load(&a->poll_stop)) {
        cs_producer_poll(a->producer, 100);
        if (atomic_load(&a->kafka_down) && cs_now_ms() >= next_probe) {
            const struct rd_kafka_metadata *md = NULL;
            if (rd_kafka_metadata(rk, 0, NULL, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                int brokers = md->broker_cnt;
                rd_kafka_metadata_destroy(md);
                if (brokers > 0 && atomic_exchange(&a->kafka_down, 0)) {
                    CS_INFO(LOG_COMP, "Kafka available again (%d broker(s) answer)", brokers);
                    cs_gauge_set(a->m.kafka_up, 1);
                }
            }
            next_probe = cs_now_ms() + 1000;
        }
        if (cs_producer_fatal(a->producer) && !cs_run_stopping()) {
            CS_ERROR(LOG_COMP, "fatal Kafka producer error: stopping (restart to recover)");
            cs_run_request_stop();
        }
    }
    return NULL;
}

int act_send(act_t *a, const act_event_t *ev, act_entry_t *e, int block_ms)
{
    const void *out;
    size_t len;
    int rc;
    pthread_mutex_lock(&a->enc_mu);
    avro_value_t *v = cs_avro_encoder_value(a->enc, CS_AVRO_ACTIVITY);
    if (!v) {
        rc = CS_ERR_NOMEM;
    } else {
        rc = cs_avro_set_str(v, CS_ACT_EVENT_ID, ev->id);
        rc = rc ? rc : cs_avro_set_str(v, CS_ACT_PROSPECT_KEY, ev->key);
        if (!rc && ev->prospect_id >= 0)
            rc = cs_avro_set_long(v, CS_ACT_PROSPECT_ID, ev->prospect_id);
        if (!rc && ev->email[0])
            rc = cs_avro_set_str(v, CS_ACT_EMAIL, ev->email);
        rc = rc ? rc : cs_avro_set_enum(v, CS_ACT_TYPE, ev->type);
        rc = rc ? rc : cs_avro_set_bool(v, CS_ACT_IDENTIFIED, ev->identified != 0);
        rc = rc ? rc : cs_avro_set_int(v, CS_ACT_SCORE_DELTA, ev->score_delta);
        rc = rc ? rc : cs_avro_set_long(v, CS_ACT_OCCURRED_AT, ev->occurred_at);
        rc = rc ? rc : cs_avro_set_long(v, CS_ACT_EVENT_TIME, cs_wall_ms());
        if (!rc && ev->source_activity_id >= 0)
            rc = cs_avro_set_long(v, CS_ACT_SOURCE_ACTIVITY_ID, ev->source_activity_id);
        rc = rc ? rc : cs_avro_encode(a->enc, v, &out, &len);
        if (rc)
            CS_ERROR(LOG_COMP, "cannot encode event %s: %s", ev->id, cs_avro_encoder_error(a->enc));
        else
            rc = cs_producer_send(a->producer, a->topic, ev->key, strlen(ev->key), out, len, 0, e,
                                  block_ms);
    }
    pthread_mutex_unlock(&a->enc_mu);
    if (rc)
        act_tracker_resolve(a->tracker, e, rc);
    return rc;
}

/* ------------------------------------------------------------------ auth and rate limit */

/* Constant-time comparison of two strings of any lengths: their digests are compared. */
static int secret_equal(const char *given, size_t given_len, const char *secret, size_t len)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)given, given_len, a);
    SHA256((const unsigned char *)secret, len, b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0 && given_len == len;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Returns 1 when the request carries valid credentials; otherwise *why says what failed
 * (never echoing a secret). */
static int authenticate(act_t *a, const cs_httpd_req_t *req, const char **why)
{
    const char *authz = cs_httpd_req_header(req, "Authorization");
    const char *sig = cs_httpd_req_header(req, SIGNATURE_HEADER);
    if (!a->token_len && !a->hmac_secret_len)
        return a->allow_unauthenticated;
    *why = "missing credentials: send Authorization: Bearer <token> or " SIGNATURE_HEADER
           ": sha256=<hex HMAC-SHA256 of the body>";
    if (a->token_len && authz) {
        if (strncasecmp(authz, "Bearer ", 7) == 0) {
            const char *t = authz + 7;
            while (*t == ' ')
                t++;
            if (secret_equal(t, strlen(t), a->token, a->token_len))
                return 1;
        }
        *why = "invalid bearer token";
    }
    if (a->hmac_secret_len && sig) {
        unsigned char given[32], md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        int ok = strncasecmp(sig, "sha256=", 7) == 0 && strlen(sig + 7) == 64;
        for (int i = 0; ok && i < 32; i++) {
            int hi = hexval((unsigned char)sig[7 + 2 * i]),
                lo = hexval((unsigned char)sig[8 + 2 * i]);
            ok = hi >= 0 && lo >= 0;
            given[i] = (unsigned char)(hi << 4 | lo);
        }
        if (ok &&
            HMAC(EVP_sha256(), a->hmac_secret, (int)a->hmac_secret_len,
                 (const unsigned char *)req->body, req->body_len, md, &mdlen) &&
            mdlen == 32 && CRYPTO_memcmp(md, given, 32) == 0)
            return 1;
        *why = "invalid signature (" SIGNATURE_HEADER
               ": sha256=<hex HMAC-SHA256 of the raw body with ingest.hmac_secret>)";
    }
    return 0;
}

/* Token bucket: ingest.max_rps per second, ingest.burst deep. Returns 1 when the request may
 * proceed, else 0 with the seconds until a token is due. */
static int rate_take(act_t *a, int *retry_after_s)
{
    if (a->rl_rate <= 0)
        return 1;
    pthread_mutex_lock(&a->rl_mu);
    int64_t now = cs_now_us();
    a->rl_tokens += (double)(now - a->rl_last_us) / 1e6 * a->rl_rate;
    if (a->rl_tokens > a->rl_burst)
        a->rl_tokens = a->rl_burst;
    a->rl_last_us = now;
    if (a->rl_tokens >= 1.0) {
        a->rl_tokens -= 1.0;
        pthread_mutex_unlock(&a->rl_mu);
        return 1;
    }
    double wait = (1.0 - a->rl_tokens) / a->rl_rate;
    pthread_mutex_unlock(&a->rl_mu);
    *retry_after_s = (int)ceil(wait);
    if (*retry_after_s < 1)
        *retry_after_s = 1;
    return 0;
}

/* ------------------------------------------------------------------ answers */

static void answer_error(act_t *a, cs_httpd_resp_t *resp, int outcome, int status, const char *code,
                         const char *message, int retry_after_s)
{
    char ra[16];
    if (retry_after_s > 0) {
        snprintf(ra, sizeof(ra), "%d", retry_after_s);
        cs_httpd_resp_header(resp, "Retry-After", ra);
    }
    cs_counter_add(a->m.req[outcome], 1);
    cs_httpd_resp_json(resp, status, json_pack("{s:s, s:s}", "error", code, "message", message));
}

void act_handle(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    act_t *a = opaque;
    act_event_t *ev = NULL;
    act_entry_t **entries = NULL;
    unsigned char *is_new = NULL;
    size_t n = 0;
    act_parse_err_t perr;
    const char *why = NULL;
    int retry_after = 0;
    char msg[256];

    if (strcmp(req->path, INGEST_PATH))
        return; /* 404 from cs_httpd */
    if (strcmp(req->method, "POST")) {
        cs_httpd_resp_header(resp, "Allow", "POST");
        answer_error(a, resp, R_OTHER, 405, "method_not_allowed", "use POST", 0);
        return;
    }
    if (atomic_load(&a->stopping)) {
        answer_error(a, resp, R_OTHER, 503, "shutting_down", "the producer is shutting down",
                     a->retry_after_s);
        return;
    }
    if (!authenticate(a, req, &why)) {
        cs_httpd_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"crmsync\"");
        answer_error(a, resp, R_UNAUTHORIZED, 401, "unauthorized", why, 0);
        return;
    }
    if (!rate_take(a, &retry_after)) {
        snprintf(msg, sizeof(msg), "more than %.0f requests per second (ingest.max_rps)",
                 a->rl_rate);
        answer_error(a, resp, R_RATE_LIMITED, 429, "rate_limited", msg, retry_after);
        return;
    }

    act_parse_opts_t po = {a->key_mode, a->require_id, a->max_events, cs_wall_ms()};
    int rc = act_parse_body(cs_httpd_req_header(req, "Content-Type"), req->body, req->body_len, &po,
                            &ev, &n, &perr);
    if (rc) {
        json_t *body = json_pack("{s:s, s:s}", "error", perr.error, "message", perr.message);
        if (perr.field[0])
            json_object_set_new(body, "field", json_string(perr.field));
        if (perr.index >= 0)
            json_object_set_new(body, "index", json_integer(perr.index));
        cs_counter_add(a->m.req[perr.status >= 500 ? R_OTHER : R_BAD_REQUEST], 1);
        CS_DEBUG(LOG_COMP, "rejected request: %s %s%s%s", perr.error,
                 perr.field[0] ? perr.field : "", perr.field[0] ? ": " : "", perr.message);
        cs_httpd_resp_json(resp, perr.status, body);
        return;
    }
    if (atomic_load(&a->kafka_down)) {
        answer_error(a, resp, R_UNAVAILABLE, 503, "kafka_unavailable",
                     "Kafka is unreachable: nothing was accepted, retry later", a->retry_after_s);
        free(ev);
        return;
    }

    entries = calloc(n, sizeof(*entries));
    is_new = calloc(n, 1);
    if (!entries || !is_new) {
        answer_error(a, resp, R_OTHER, 500, "internal", "out of memory", 0);
        goto out;
    }
    int64_t start = cs_now_ms();
    int64_t deadline = start + a->delivery_timeout_ms + 1000;
    size_t dups = 0;
    int send_err = 0;
    for (size_t i = 0; i < n && !send_err; i++) {
        int dup = 0;
        if (act_tracker_claim(a->tracker, ev[i].id, &entries[i], &dup)) {
            send_err = CS_ERR_NOMEM;
            break;
        }
        if (dup) {
            dups++;
            continue;
        }
        is_new[i] = 1;
        int64_t left = deadline - cs_now_ms();
        send_err = act_send(a, &ev[i], entries[i], left > 0 ? (int)left : 0);
    }
    act_outcome_t oc;
    act_tracker_wait(a->tracker, entries, n, deadline, &oc);
    cs_hist_observe(a->m.wait_ms, (double)(cs_now_ms() - start));
    if (!send_err && oc.delivered == n) {
        size_t accepted = 0;
        for (size_t i = 0; i < n; i++)
            if (is_new[i]) {
                accepted++;
                if (ev[i].type >= 0 && ev[i].type < 16 && a->m.by_type[ev[i].type])
                    cs_counter_add(a->m.by_type[ev[i].type], 1);
            }
        cs_counter_add(a->m.published_webhook, accepted);
        cs_counter_add(a->m.duplicates, dups);
        cs_counter_add(a->m.req[accepted ? R_ACCEPTED : R_DUPLICATE], 1);
        cs_httpd_resp_json(resp, 200,
                           json_pack("{s:I, s:I}", "accepted", (json_int_t)accepted, "duplicates",
                                     (json_int_t)dups));
    } else {
        snprintf(msg, sizeof(msg),
                 "%zu of %zu event(s) not confirmed by Kafka (%s): retry the request; events "
                 "already delivered are recognised by their id",
                 n - oc.delivered, n,
                 send_err    ? cs_err_str(send_err)
                 : oc.failed ? "delivery failed"
                             : "no delivery report within ingest.delivery_timeout.ms");
        json_t *body = json_pack("{s:s, s:s, s:I, s:I, s:I}", "error", "kafka_unavailable",
                                 "message", msg, "delivered", (json_int_t)oc.delivered, "failed",
                                 (json_int_t)(n - oc.delivered - oc.pending), "pending",
                                 (json_int_t)oc.pending);
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", a->retry_after_s);
        cs_httpd_resp_header(resp, "Retry-After", ra);
        cs_counter_add(a->m.req[R_UNAVAILABLE], 1);
        cs_httpd_resp_json(resp, 503, body);
        CS_WARN(LOG_COMP, "answered 503: %s", msg);
    }
    cs_gauge_set(a->m.window, (int64_t)act_tracker_size(a->tracker));
out:
    if (entries)
        act_tracker_release(a->tracker, entries, n);
    free(entries);
    free(is_new);
    free(ev);
}

/* ------------------------------------------------------------------ lifecycle */

static int health(void *opaque, char *reason, size_t n)
{
    act_t *a = opaque;
    if (atomic_load(&a->stopping)) {
        snprintf(reason, n, "shutting down");
        return 1;
    }
    if (a->producer && cs_producer_fatal(a->producer)) {
        snprintf(reason, n, "fatal Kafka producer error");
        return 1;
    }
    if (atomic_load(&a->kafka_down)) {
        snprintf(reason, n, "Kafka unreachable: deliveries failing");
        return 1;
    }
    return 0;
}

static void metrics_init(act_t *a)
{
    static const double wait_bounds[] = {1,   2,   5,    10,   25,   50,    100,
                                         250, 500, 1000, 2500, 5000, 10000, 30000};
    char lbl[64];
    for (int i = 0; i < R_COUNT_; i++) {
        snprintf(lbl, sizeof(lbl), "outcome=\"%s\"", r_names[i]);
        a->m.req[i] = cs_metrics_counter(a->metrics, "crmsync_activity_requests_total",
                                         "Ingest requests (POST /v1/activities) by outcome", lbl);
    }
    a->m.published_webhook =
        cs_metrics_counter(a->metrics, "crmsync_activities_published_total",
                           "Activity events delivered to Kafka, by source", "source=\"webhook\"");
    a->m.published_pull =
        cs_metrics_counter(a->metrics, "crmsync_activities_published_total",
                           "Activity events delivered to Kafka, by source", "source=\"pull\"");
    for (int t = 0; t <= CS_ACTIVITY_OTHER; t++) {
        snprintf(lbl, sizeof(lbl), "type=\"%s\"", act_type_name(t));
        a->m.by_type[t] = cs_metrics_counter(a->metrics, "crmsync_activities_by_type_total",
                                             "Webhook activity events delivered, by type", lbl);
    }
    a->m.duplicates = cs_metrics_counter(
        a->metrics, "crmsync_activity_duplicates_total",
        "Events whose id was already accepted (inside ingest.dedup_window): not produced again",
        NULL);
    a->m.delivery_failed =
        cs_metrics_counter(a->metrics, "crmsync_activity_delivery_failures_total",
                           "Messages whose delivery report was a failure", NULL);
    a->m.window = cs_metrics_gauge(a->metrics, "crmsync_activity_dedup_ids",
                                   "Event ids in the dedup window", NULL);
    a->m.kafka_up = cs_metrics_gauge(a->metrics, "crmsync_activity_kafka_up",
                                     "0 while deliveries fail and no broker answers", NULL);
    a->m.wait_ms =
        cs_metrics_histogram(a->metrics, "crmsync_activity_request_wait_ms",
                             "Time an ingest request waited for its delivery reports, milliseconds",
                             NULL, wait_bounds, sizeof(wait_bounds) / sizeof(wait_bounds[0]));
    cs_gauge_set(a->m.kafka_up, 1);
}

static char *dup_secret(const char *s, size_t *len)
{
    *len = s ? strlen(s) : 0;
    return strdup(s ? s : "");
}

int act_start(act_t *a, char *errstr, size_t n)
{
    const char *km = cs_conf_str(a->conf, "prospect.key");
    char num[32];

    pthread_mutex_init(&a->enc_mu, NULL);
    pthread_mutex_init(&a->rl_mu, NULL);
    a->topic = cs_topic_name(a->conf, CS_TOPIC_ACTIVITY);
    a->cursors_topic = cs_topic_name(a->conf, CS_TOPIC_CURSORS);
    if (!strcmp(km, "email"))
        a->key_mode = ACT_KEY_EMAIL;
    else if (!strcmp(km, "id"))
        a->key_mode = ACT_KEY_ID;
    else
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "prospect.key: \"%s\" is not email or id", km);
    a->token = dup_secret(cs_conf_str(a->conf, "ingest.token"), &a->token_len);
    a->hmac_secret = dup_secret(cs_conf_str(a->conf, "ingest.hmac_secret"), &a->hmac_secret_len);
    if (!a->token || !a->hmac_secret)
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    a->allow_unauthenticated = cs_conf_bool(a->conf, "ingest.allow_unauthenticated");
    long long port = cs_conf_int(a->conf, "http.port");
    if (port >= 0 && !a->token_len && !a->hmac_secret_len && !a->allow_unauthenticated)
        return cs_err_set(errstr, n, CS_ERR_CONFIG,
                          "the ingest endpoint needs ingest.token or ingest.hmac_secret (or "
                          "ingest.allow_unauthenticated=true for local tests)");
    if (port >= 0 && a->allow_unauthenticated && !a->token_len && !a->hmac_secret_len)
        CS_WARN(LOG_COMP, "ingest endpoint open WITHOUT authentication "
                          "(ingest.allow_unauthenticated)");
    a->require_id = cs_conf_bool(a->conf, "ingest.require_event_id");
    a->max_events = (size_t)cs_conf_int(a->conf, "ingest.max_events");
    a->delivery_timeout_ms = cs_conf_int(a->conf, "ingest.delivery_timeout.ms");
    a->retry_after_s = (int)cs_conf_int(a->conf, "ingest.retry_after.s");
    a->rl_rate = (double)cs_conf_int(a->conf, "ingest.max_rps");
    a->rl_burst = (double)cs_conf_int(a->conf, "ingest.burst");
    if (a->rl_burst < 1)
        a->rl_burst = a->rl_rate > 1 ? a->rl_rate : 1;
    a->rl_tokens = a->rl_burst;
    a->rl_last_us = cs_now_us();

    /* A message librdkafka gives up on must fail before the request stops waiting for it,
     * so that the answer and the outcome agree: unless configured, message.timeout.ms is
     * the request's delivery timeout. */
    if (!cs_conf_kafka(a->conf, "message.timeout.ms")) {
        snprintf(num, sizeof(num), "%lld", (long long)a->delivery_timeout_ms);
        if (cs_conf_set(a->conf, "kafka.message.timeout.ms", num, errstr, n))
            return CS_ERR_CONFIG;
    }

    if (!(a->metrics = cs_metrics_new()))
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    metrics_init(a);
    if (!(a->reg = cs_avro_registry_new(errstr, n)))
        return CS_ERR_AVRO;
    if (!(a->enc = cs_avro_encoder_new(a->reg, CS_AVRO_SINGLE_OBJECT)) ||
        !(a->tracker = act_tracker_new((size_t)cs_conf_int(a->conf, "ingest.dedup_window"))))
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    if (!(a->producer = cs_producer_new(a->conf, on_delivery, a, errstr, n)))
        return CS_ERR_CONFIG;
    /* A missing topic is a deployment error: refuse to start. An unreachable cluster is an
     * outage: start, answer 503 and probe until a broker answers. */
    int parts = cs_kafka_partition_count(cs_producer_handle(a->producer), a->topic, 5000);
    if (parts == CS_ERR_NOT_FOUND)
        return cs_err_set(errstr, n, CS_ERR_CONFIG,
                          "topic %s does not exist (create it: crmsync-admin topics create)",
                          a->topic);
    if (parts < 0) {
        CS_WARN(LOG_COMP, "Kafka unreachable at start (%s): answering 503 until a broker answers",
                cs_err_str(parts));
        atomic_store(&a->kafka_down, 1);
        cs_gauge_set(a->m.kafka_up, 0);
    }
    if (pthread_create(&a->poll_thread, NULL, poll_main, a))
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "cannot start the poll thread");
    a->poll_started = 1;

    if (port >= 0) {
        cs_httpd_opts_t ho = {0};
        ho.bind = cs_conf_str(a->conf, "http.bind");
        ho.port = (int)port;
        ho.max_body = (size_t)cs_conf_int(a->conf, "ingest.max_body");
        ho.threads = (unsigned)cs_conf_int(a->conf, "ingest.threads");
        ho.handler = act_handle;
        ho.opaque = a;
        ho.metrics = a->metrics;
        ho.health = health;
        ho.health_opaque = a;
        if (!(a->httpd = cs_httpd_new(&ho, errstr, n)))
            return CS_ERR_IO;
        CS_INFO(LOG_COMP, "ingest endpoint http://%s:%d%s -> %s (auth: %s%s%s)", ho.bind,
                cs_httpd_port(a->httpd), INGEST_PATH, a->topic, a->token_len ? "bearer" : "",
                a->token_len && a->hmac_secret_len ? " + " : "",
                a->hmac_secret_len ? "hmac-sha256"
                : a->token_len     ? ""
                                   : "NONE");
    }
    return CS_OK;
}

int act_stop(act_t *a, int64_t timeout_ms)
{
    int rc = 0;
    atomic_store(&a->stopping, 1);
    /* in-flight requests finish (their delivery reports still flow: the poll thread runs) */
    cs_httpd_destroy(a->httpd);
    a->httpd = NULL;
    act_pull_destroy(a);
    if (a->poll_started) {
        atomic_store(&a->poll_stop, 1);
        pthread_join(a->poll_thread, NULL);
        a->poll_started = 0;
    }
    if (a->producer) {
        if (cs_producer_flush(a->producer, (int)timeout_ms) != CS_OK) {
            CS_ERROR(LOG_COMP, "%d message(s) undelivered at shutdown",
                     cs_producer_outq_len(a->producer));
            rd_kafka_purge(cs_producer_handle(a->producer),
                           RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            cs_producer_poll(a->producer, 0);
            rc = 1;
        }
        cs_producer_destroy(a->producer);
        a->producer = NULL;
    }
    act_tracker_destroy(a->tracker);
    cs_avro_encoder_destroy(a->enc);
    cs_avro_registry_destroy(a->reg);
    cs_metrics_destroy(a->metrics);
    if (a->token)
        OPENSSL_cleanse(a->token, a->token_len);
    if (a->hmac_secret)
        OPENSSL_cleanse(a->hmac_secret, a->hmac_secret_len);
    free(a->token);
    free(a->hmac_secret);
    pthread_mutex_destroy(&a->enc_mu);
    pthread_mutex_destroy(&a->rl_mu);
    a->tracker = NULL;
    a->enc = NULL;
    a->reg = NULL;
    a->metrics = NULL;
    a->token = a->hmac_secret = NULL;
    return rc;
}
