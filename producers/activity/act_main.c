/* crmsync-activity-producer: the HTTP ingest endpoint for activity webhooks and the optional
 * pull of the marketing API's visitor activities (docs/PRODUCERS.md). */
#include "act.h"

#include "cs_api.h"
#include "cs_conf.h"
#include "cs_kafka.h"
#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_topics.h"

#include <stdio.h>
#include <string.h>

static const cs_opt_t act_opts[] = {
    {"http.port", CS_OPT_INT, "8090", -1, 65535, 0,
     "port of the ingest endpoint (POST /v1/activities), /metrics and /healthz (0 = any free "
     "port, logged; -1 = off: pull only)"},
    {"prospect.key", CS_OPT_STRING, "email", 0, 0, 0,
     "prospect key: email (lower-cased trimmed e-mail) or id (the prospect id, where duplicate "
     "e-mails are allowed)"},
    {"ingest.token", CS_OPT_STRING, "", 0, 0, CS_OPT_SENSITIVE,
     "bearer token accepted in Authorization: Bearer <token>"},
    {"ingest.hmac_secret", CS_OPT_STRING, "", 0, 0, CS_OPT_SENSITIVE,
     "secret of the X-Crmsync-Signature: sha256=<hex HMAC-SHA256 of the raw body> header"},
    {"ingest.allow_unauthenticated", CS_OPT_BOOL, "false", 0, 0, 0,
     "accept requests without credentials when no token or secret is set (local tests only)"},
    {"ingest.max_body", CS_OPT_INT, "1048576", 1024, 67108864, 0,
     "largest request body in bytes (larger: 413)"},
    {"ingest.max_rps", CS_OPT_INT, "1000", 0, 1000000, 0,
     "authenticated requests per second accepted (token bucket; beyond: 429 with Retry-After; "
     "0 = unlimited)"},
    {"ingest.burst", CS_OPT_INT, "0", 0, 1000000, 0,
     "token bucket depth (requests accepted at once after a quiet period); 0 = ingest.max_rps"},
    {"ingest.max_events", CS_OPT_INT, "1000", 1, 100000, 0,
     "events in one request at most (beyond: 413)"},
    {"ingest.dedup_window", CS_OPT_INT, "100000", 0, 100000000, 0,
     "recently accepted event ids remembered: a retry with one of them is answered as a "
     "duplicate without producing (0 = off)"},
    {"ingest.require_event_id", CS_OPT_BOOL, "true", 0, 0, 0,
     "reject events without an id (id / event_id); false: generate one (no dedup)"},
    {"ingest.delivery_timeout.ms", CS_OPT_INT, "10000", 100, 600000, 0,
     "how long a request waits for its delivery reports before answering 503; also the "
     "default of kafka.message.timeout.ms"},
    {"ingest.retry_after.s", CS_OPT_INT, "5", 1, 3600, 0,
     "Retry-After of 503 answers (Kafka unavailable, shutting down)"},
    {"ingest.threads", CS_OPT_INT, "8", 1, 256, 0,
     "HTTP worker threads (each request holds one while it waits for Kafka)"},
    {"pull.enabled", CS_OPT_BOOL, "false", 0, 0, 0,
     "also pull visitor-activities from the marketing API (mkt.*, crm.* for the token)"},
    {"pull.interval.ms", CS_OPT_INT, "60000", 100, 86400000, 0, "pause between two pulls"},
    {"pull.overlap.ms", CS_OPT_INT, "120000", 0, 86400000, 0,
     "each pull re-reads this much before the cursor (the v5 API may show records up to 60 s "
     "late); activities already published are recognised and skipped"},
    {"pull.initial", CS_OPT_STRING, "now", 0, 0, 0,
     "where the pull starts without a durable cursor: now, earliest, or an ISO-8601 time"},
    {"pull.page_size", CS_OPT_INT, "1000", 1, 1000, 0, "activities per API page (limit)"},
    {"pull.prospect_cache", CS_OPT_INT, "4096", 0, 10000000, 0,
     "prospect id -> e-mail cache entries (10-minute lifetime; 0 = no cache)"},
    {"pull.cursor_name", CS_OPT_STRING, "activity-pull", 0, 0, 0,
     "key of the pull's cursor in topic.cursors"},
    {"pull.cursor_load.timeout.ms", CS_OPT_INT, "30000", 1000, 600000, 0,
     "time to read the cursors topic at start before retrying"},
    {"shutdown.timeout.ms", CS_OPT_INT, "15000", 0, 600000, 0,
     "on SIGTERM, how long to wait for outstanding deliveries"},
    CS_OPT_END,
};

static const char usage[] =
    "crmsync-activity-producer [options]\n\n"
    "Receives activity webhooks on POST /v1/activities (JSON object, array or NDJSON, or a\n"
    "form post), authenticated by bearer token or HMAC-SHA256 signature, and publishes each\n"
    "as an Activity record keyed by prospect key; answers 200 only once Kafka has them.\n"
    "Optionally pulls visitor-activities from the marketing API too. Serves /metrics and\n"
    "/healthz on the same port.";

int main(int argc, char **argv)
{
    act_t a;
    char errstr[512];
    int err, status = 1;
    memset(&a, 0, sizeof(a));

    a.conf = cs_conf_new("crmsync-activity-producer", usage, act_opts);
    if (!a.conf || cs_conf_add_opts(a.conf, cs_topics_opts) ||
        cs_conf_add_opts(a.conf, cs_api_opts)) {
        fprintf(stderr, "crmsync-activity-producer: out of memory\n");
        return 1;
    }
    cs_conf_set_check(a.conf, cs_kafka_check_conf);
    err = cs_conf_from_args(a.conf, argc, argv, NULL, errstr, sizeof(errstr));
    if (err) {
        if (err < 0)
            fprintf(stderr, "crmsync-activity-producer: %s\n", errstr);
        cs_conf_destroy(a.conf);
        return err < 0 ? 2 : 0;
    }
    if (cs_log_setup(cs_conf_str(a.conf, "log.level"), cs_conf_str(a.conf, "log.format"))) {
        fprintf(stderr, "crmsync-activity-producer: bad log.level or log.format\n");
        cs_conf_destroy(a.conf);
        return 2;
    }
    if (cs_conf_int(a.conf, "http.port") < 0 && !cs_conf_bool(a.conf, "pull.enabled")) {
        fprintf(stderr, "crmsync-activity-producer: nothing to do (http.port=-1 and "
                        "pull.enabled=false)\n");
        cs_conf_destroy(a.conf);
        return 2;
    }
    cs_run_install_signals();

    if ((err = act_start(&a, errstr, sizeof(errstr))) ||
        (err = act_pull_init(&a, errstr, sizeof(errstr)))) {
        CS_ERROR("activity", "%s", errstr);
        status = err == CS_ERR_CONFIG ? 2 : 1;
        act_stop(&a, 0);
        cs_conf_destroy(a.conf);
        return status;
    }
    while (!cs_run_stopping())
        act_pull_step(&a);

    CS_INFO("activity", "stopping: draining in-flight requests and deliveries");
    status = act_stop(&a, cs_conf_int(a.conf, "shutdown.timeout.ms"));
    CS_INFO("activity", "stopped%s", status ? " with undelivered messages" : "");
    cs_conf_destroy(a.conf);
    return status;
}
