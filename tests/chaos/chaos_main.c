/* crmsync-chaos: an end-to-end run of the whole pipeline under faults, checked at the end
 * against what the workload wrote (see chaos.h for the pieces and the groups of prospects).
 *
 * It starts its own crmsync-sandbox, the three producers and chaos.replicas sync-consumer
 * replicas (one fresh consumer group, fresh topics chaos<epoch>-<pid>.*) against the broker at
 * CRMSYNC_BOOTSTRAP (or kafka.bootstrap.servers); tools/chaos.sh (`make chaos`) and
 * tests/e2e/test_chaos.sh run it. During the run, replicas are SIGKILLed and restarted, the
 * broker is stopped and started again once (deploy/kafka/kafka.sh, which must manage it), the
 * sandbox refuses calls (503, rate-limit bursts) and expires tokens, and poison records land
 * on every input topic. Then the faults are lifted, the pipeline is left to go quiet, and the
 * sandbox's records are compared with the ledger. Everything it started is stopped at the end
 * (children also die with it: PR_SET_PDEATHSIG). Logs: chaos.dir/<run>/.
 *
 * Last line of stdout:
 *   CHAOS events=N lost=N duplicate_leads=N mismatched=N poison_routed=N kills=N
 * Exit status: 0 every check passed, 1 a check failed, 2 usage, 3 set-up failed, 130
 * interrupted (SIGINT / SIGTERM: everything is stopped, no CHAOS line). */
#include "chaos.h"

#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_topics.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "crmsync-chaos [options]\n\n"
    "End-to-end chaos run: sandbox, every producer and chaos.replicas sync-consumer replicas\n"
    "against the broker at $CRMSYNC_BOOTSTRAP (default kafka.bootstrap.servers), a workload\n"
    "(prospects created and edited through the v5 API, CRM edits by sales people, activity\n"
    "webhooks, a CSV import) while replicas are SIGKILLed, the broker restarts once, the\n"
    "sandbox answers 503s, rate-limits and expires tokens, and poison records are written.\n"
    "Then it waits for quiescence and checks the records against its ledger. Last line:\n"
    "  CHAOS events=N lost=N duplicate_leads=N mismatched=N poison_routed=N kills=N\n"
    "Exit status 0 when every check passed.";

static const cs_opt_t chaos_opts[] = {
    {"chaos.size", CS_OPT_STRING, "default", 0, 0, 0,
     "short (the e2e tier: a few minutes), default (>= 100,000 events) or large (>= 1,000,000)"},
    {"chaos.prospects", CS_OPT_INT, "0", 0, 1000000, 0, "prospects (0 = by chaos.size)"},
    {"chaos.mkt_edits", CS_OPT_INT, "-1", -1, 100000000, 0, "marketing edits (-1 = by chaos.size)"},
    {"chaos.crm_edits", CS_OPT_INT, "-1", -1, 100000000, 0, "CRM edits (-1 = by chaos.size)"},
    {"chaos.activities", CS_OPT_INT, "-1", -1, 100000000, 0,
     "activity webhooks (-1 = by chaos.size)"},
    {"chaos.min_events", CS_OPT_INT, "-1", -1, 1000000000, 0,
     "input events the run must reach (-1 = by chaos.size: 100,000, 1,000,000; short: none)"},
    {"chaos.duration_s", CS_OPT_INT, "0", 0, 86400, 0,
     "length of the chaos phase (0 = by chaos.size: 150 s, 600 s; short: 50 s)"},
    {"chaos.replicas", CS_OPT_INT, "3", 1, CH_MAX_REPLICAS, 0, "sync-consumer replicas"},
    {"chaos.static_replicas", CS_OPT_INT, "-1", -1, CH_MAX_REPLICAS, 0,
     "replicas that are static group members (group.instance.id: a restart rejoins without a "
     "rebalance); the others' kills rebalance the group (-1 = all but one)"},
    {"chaos.partitions", CS_OPT_INT, "6", 1, 64, 0, "partitions of the input topics"},
    {"chaos.kill_interval_ms", CS_OPT_INT, "5000", 500, 3600000, 0,
     "mean time between two replica kills (each +-50 %)"},
    {"chaos.restart_delay_ms", CS_OPT_INT, "1000", 0, 600000, 0,
     "time a killed replica stays down"},
    {"chaos.broker_restart", CS_OPT_BOOL, "true", 0, 0, 0,
     "stop and start the broker once in the middle (it must be deploy/kafka/kafka.sh's)"},
    {"chaos.broker_down_ms", CS_OPT_INT, "3000", 0, 600000, 0,
     "time the broker stays stopped (its restart time comes on top)"},
    {"chaos.kafka_sh", CS_OPT_STRING, "", 0, 0, 0,
     "path of deploy/kafka/kafka.sh (default: $CRMSYNC_SOURCE_DIR/deploy/kafka/kafka.sh)"},
    {"chaos.error_rate", CS_OPT_STRING, "0.1", 0, 0, 0,
     "share of the calls of each side the sandbox answers with 503 during the chaos"},
    {"chaos.burst_every_ms", CS_OPT_INT, "10000", 0, 3600000, 0,
     "how often a rate-limit burst starts on both sides (0 = none)"},
    {"chaos.burst_errors", CS_OPT_INT, "3", 0, 1000, 0,
     "calls refused per burst and side (403 REQUEST_LIMIT_EXCEEDED, code 66)"},
    {"chaos.token_ttl_s", CS_OPT_INT, "5", 1, 7200, 0, "access token lifetime during the chaos"},
    {"chaos.quiet_ms", CS_OPT_INT, "5000", 500, 600000, 0,
     "quiescence: no write on either side for this long (and queues empty, offsets at the end)"},
    {"chaos.settle_timeout_s", CS_OPT_INT, "0", 0, 86400, 0,
     "longest wait for quiescence after the chaos (0 = 420 s, 900 s large: crmsync's longest "
     "rate-limit backoff is 300 s)"},
    {"chaos.seed", CS_OPT_INT, "1", 0, INT_MAX, 0, "seed of the workload's and monkey's choices"},
    {"chaos.dir", CS_OPT_STRING, "/tmp/crmsync-chaos", 0, 0, 0,
     "parent directory of the run directory (logs, configs, the import CSV)"},
    CS_OPT_END,
};

static const char *const topic_suffix[T_COUNT_] = {"prospect-changes", "activities", "crm-changes",
                                                   "control",          "sync-state", "sync-errors",
                                                   "producer-cursors"};

static FILE *driver_log;

double ch_elapsed_s(const ch_t *ch)
{
    return (cs_now_ms() - ch->start_ms) / 1000.0;
}

static int mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static int settings(ch_t *ch)
{
    const cs_conf_t *c = ch->conf;
    int large = !strcmp(ch->size, "large"), shrt = !strcmp(ch->size, "short");
    if (!large && !shrt && strcmp(ch->size, "default")) {
        fprintf(stderr, "crmsync-chaos: chaos.size must be short, default or large\n");
        return -1;
    }
    /* events: prospects (creates and edits) + their echoes + CRM edits and crmsync's writes
     * echoed by the CRM producer + activities + import rows */
    ch->nprospects = (int)cs_conf_int(c, "chaos.prospects");
    if (!ch->nprospects)
        ch->nprospects = large ? 12000 : shrt ? 300 : 3000;
    ch->mkt_edits = (int)cs_conf_int(c, "chaos.mkt_edits");
    if (ch->mkt_edits < 0)
        ch->mkt_edits = ch->nprospects * (large ? 6 : shrt ? 4 : 6);
    ch->crm_edits = (int)cs_conf_int(c, "chaos.crm_edits");
    if (ch->crm_edits < 0)
        ch->crm_edits = ch->nprospects;
    ch->activities = (int)cs_conf_int(c, "chaos.activities");
    if (ch->activities < 0)
        ch->activities = large ? 900000 : shrt ? 6000 : 85000;
    ch->min_events = cs_conf_int(c, "chaos.min_events");
    if (ch->min_events < 0)
        ch->min_events = large ? 1000000 : shrt ? 0 : 100000;
    ch->duration_ms = cs_conf_int(c, "chaos.duration_s") * 1000;
    if (!ch->duration_ms)
        ch->duration_ms = (large ? 600 : shrt ? 50 : 150) * 1000LL;
    ch->settle_timeout_ms = cs_conf_int(c, "chaos.settle_timeout_s") * 1000;
    if (!ch->settle_timeout_ms)
        ch->settle_timeout_ms = (large ? 900 : 420) * 1000LL;
    ch->nreplicas = (int)cs_conf_int(c, "chaos.replicas");
    ch->static_replicas = (int)cs_conf_int(c, "chaos.static_replicas");
    if (ch->static_replicas < 0 || ch->static_replicas > ch->nreplicas)
        ch->static_replicas = ch->nreplicas - 1;
    ch->partitions = (int)cs_conf_int(c, "chaos.partitions");
    ch->kill_interval_ms = cs_conf_int(c, "chaos.kill_interval_ms");
    ch->restart_delay_ms = cs_conf_int(c, "chaos.restart_delay_ms");
    ch->broker_restart = cs_conf_bool(c, "chaos.broker_restart");
    ch->broker_down_ms = cs_conf_int(c, "chaos.broker_down_ms");
    ch->error_rate = cs_conf_str(c, "chaos.error_rate");
    ch->burst_every_ms = cs_conf_int(c, "chaos.burst_every_ms");
    ch->burst_errors = (int)cs_conf_int(c, "chaos.burst_errors");
    ch->token_ttl_s = (int)cs_conf_int(c, "chaos.token_ttl_s");
    ch->quiet_ms = cs_conf_int(c, "chaos.quiet_ms");
    ch->seed = (unsigned)cs_conf_int(c, "chaos.seed");
    if (ch->nprospects < 20) {
        fprintf(stderr, "crmsync-chaos: chaos.prospects must be at least 20\n");
        return -1;
    }
    return 0;
}

/* The broker the run may restart: a loopback bootstrap whose port kafka.sh says it runs. */
static void find_broker(ch_t *ch)
{
    const char *colon = strrchr(ch->bootstrap, ':');
    const char *src = getenv("CRMSYNC_SOURCE_DIR");
    const char *ksh = cs_conf_str(ch->conf, "chaos.kafka_sh");
    int port = colon ? atoi(colon + 1) : 0;
    ch->broker_port = 0;
    if (!ch->broker_restart) {
        ch_say("broker: no restart (chaos.broker_restart=false)");
        return;
    }
    if (*ksh)
        snprintf(ch->kafka_sh, sizeof(ch->kafka_sh), "%s", ksh);
    else if (src && *src)
        snprintf(ch->kafka_sh, sizeof(ch->kafka_sh), "%s/deploy/kafka/kafka.sh", src);
    if (!ch->kafka_sh[0] || access(ch->kafka_sh, R_OK) != 0) {
        ch_say("broker: kafka.sh not found (chaos.kafka_sh or CRMSYNC_SOURCE_DIR): no restart");
        return;
    }
    if (strchr(ch->bootstrap, ',') || port <= 0 ||
        (strncmp(ch->bootstrap, "127.0.0.1:", 10) && strncmp(ch->bootstrap, "localhost:", 10))) {
        ch_say("broker: %s is not a local kafka.sh broker: no restart", ch->bootstrap);
        return;
    }
    ch->broker_port = port;
    if (ch_broker(ch, "status", 30000) != 0) {
        ch_say("broker: kafka.sh does not manage a running broker on port %d: no restart", port);
        ch->broker_port = 0;
    }
}

static int load_users(ch_t *ch, cs_http_t *h)
{
    json_t *snap = NULL, *info = NULL, *u;
    size_t i;
    static const char *const mkt_emails[3] = {"sam@acme.example", "rita@acme.example",
                                              "mo@acme.example"};
    static const char *const crm_emails[3] = {"sam@acme.example", "rita@acme.example",
                                              "ada@acme.example"};
    if (ch_sandbox(ch, h, "GET", "/sandbox/snapshot", NULL, &snap) != 200 ||
        ch_sandbox(ch, h, "GET", "/sandbox/info", NULL, &info) != 200) {
        json_decref(snap);
        json_decref(info);
        return -1;
    }
    snprintf(ch->integration_user, sizeof(ch->integration_user), "%s",
             json_string_value(json_object_get(info, "integration_user_id")));
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), "User"), i, u)
    {
        const char *e = json_string_value(json_object_get(u, "Email"));
        for (int k = 0; k < 3; k++)
            if (e && !strcmp(e, crm_emails[k]))
                snprintf(ch->crm_users[k], 19, "%s", json_string_value(json_object_get(u, "Id")));
    }
    json_array_foreach(json_object_get(json_object_get(snap, "marketing"), "users"), i, u)
    {
        const char *e = json_string_value(json_object_get(u, "email"));
        for (int k = 0; k < 3; k++)
            if (e && !strcmp(e, mkt_emails[k]))
                ch->mkt_users[k] = json_integer_value(json_object_get(u, "id"));
    }
    json_decref(snap);
    json_decref(info);
    for (int k = 0; k < 3; k++)
        if (strlen(ch->crm_users[k]) != 18 || ch->mkt_users[k] <= 0)
            return -1;
    /* Sam and Rita are users on both sides; Mo has no CRM user (an unmapped assignee) */
    snprintf(ch->users_map, sizeof(ch->users_map), "%" PRId64 ":%s,%" PRId64 ":%s",
             ch->mkt_users[0], ch->crm_users[0], ch->mkt_users[1], ch->crm_users[1]);
    return strlen(ch->integration_user) == 18 ? 0 : -1;
}

static void env_set(const char *name, const char *value)
{
    setenv(name, value, 1);
}

/* Starts the sandbox, creates the topics, starts the producers and the replicas. */
static int setup(ch_t *ch)
{
    char log[1200], path[1200], err[512], buf[256];
    cs_http_t *h = cs_http_new(NULL, err, sizeof(err));
    int rc = -1;
    if (!h)
        return -1;

    /* the sandbox: enough threads for every client, limits out of the way (the faults are
     * the knobs set later) */
    ch_path(ch, "sandbox.log", log, sizeof(log));
    {
        char seed[16];
        snprintf(seed, sizeof(seed), "%u", ch->seed);
        const char *args[] = {"--port",
                              "0",
                              "--threads",
                              "24",
                              "--crm.daily_limit",
                              "1000000000000",
                              "--marketing.daily_limit",
                              "1000000000000",
                              "--marketing.concurrency_limit",
                              "64",
                              "--seed",
                              seed,
                              NULL};
        if (ch_start(ch, &ch->sandbox, "sandbox", args, log, "listening on ", ch->sandbox_url,
                     sizeof(ch->sandbox_url)) != 0)
            goto out;
    }
    ch_say("sandbox on %s", ch->sandbox_url);
    if (load_users(ch, h) != 0) {
        ch_say("the sandbox's users are not the documented ones");
        goto out;
    }

    /* every program reads these from the environment (the command line can still override) */
    env_set("CRMSYNC_KAFKA_BOOTSTRAP_SERVERS", ch->bootstrap);
    for (int t = 0; t < T_COUNT_; t++) {
        static const char *const env[T_COUNT_] = {
            "CRMSYNC_TOPIC_PROSPECT", "CRMSYNC_TOPIC_ACTIVITY", "CRMSYNC_TOPIC_CRM",
            "CRMSYNC_TOPIC_CONTROL",  "CRMSYNC_TOPIC_STATE",    "CRMSYNC_TOPIC_ERRORS",
            "CRMSYNC_TOPIC_CURSORS"};
        static const char *const key[T_COUNT_] = {
            "topic.prospect", "topic.activity", "topic.crm",    "topic.control",
            "topic.state",    "topic.errors",   "topic.cursors"};
        snprintf(ch->topics[t], sizeof(ch->topics[t]), "%s.%s", ch->run, topic_suffix[t]);
        env_set(env[t], ch->topics[t]);
        cs_conf_set(ch->conf, key[t], ch->topics[t], NULL, 0);
    }
    snprintf(buf, sizeof(buf), "%d", ch->partitions);
    env_set("CRMSYNC_TOPICS_PARTITIONS", buf);
    cs_conf_set(ch->conf, "topics.partitions", buf, NULL, 0);
    env_set("CRMSYNC_CRM_LOGIN_URL", ch->sandbox_url);
    env_set("CRMSYNC_MKT_BASE_URL", ch->sandbox_url);
    env_set("CRMSYNC_CRM_CLIENT_ID", "crmsync-sandbox-client");
    env_set("CRMSYNC_CRM_CLIENT_SECRET", "sandbox-secret");
    env_set("CRMSYNC_MKT_BUSINESS_UNIT_ID", "0Uv5g000000SBOXCA4");
    for (int i = 0; i < 16; i++)
        snprintf(ch->ingest_token + 2 * i, 3, "%02x", ch_rand(256));
    env_set("CRMSYNC_INGEST_TOKEN", ch->ingest_token);

    {
        cs_topic_spec_t specs[CS_TOPIC_COUNT_];
        cs_topics_specs(ch->conf, specs);
        if (cs_kafka_ensure_topics(ch->conf, specs, CS_TOPIC_COUNT_, 30000, err, sizeof(err))) {
            ch_say("cannot create the topics at %s: %s", ch->bootstrap, err);
            goto out;
        }
    }
    ch_say("topics %s.*, %d partitions; consumer group %s", ch->run, ch->partitions, ch->group);

    /* the replicas' configuration: fast failure detection (a killed member leaves the group
     * after the session timeout, not 45 s), the users map */
    ch_path(ch, "sync-consumer.conf", path, sizeof(path));
    {
        FILE *f = fopen(path, "w");
        if (!f)
            goto out;
        fprintf(f,
                "# sync-consumer replicas of chaos run %s (kafka, topics, APIs: environment)\n"
                "group.id=%s\nusers.map=%s\nhttp.port=0\n"
                "kafka.session.timeout.ms=6000\nkafka.heartbeat.interval.ms=1000\n",
                ch->run, ch->group, ch->users_map);
        fclose(f);
    }

    /* the producers */
    {
        const char *pargs[] = {"--poll.interval.ms",
                               "1000",
                               "--http.port",
                               "0",
                               "--shutdown.timeout.ms",
                               "10000",
                               "--retry.rate_limit.backoff.max.ms",
                               "20000",
                               NULL};
        char port[32];
        ch_path(ch, "prospect-producer.log", log, sizeof(log));
        if (ch_start(ch, &ch->pprod, "prospect-producer", pargs, log,
                     "metrics on http://127.0.0.1:", port, sizeof(port)) != 0)
            goto out;
        ch->pprod_port = atoi(port);
        ch_path(ch, "crm-producer.log", log, sizeof(log));
        if (ch_start(ch, &ch->cprod, "crm-producer", pargs, log,
                     "metrics on http://127.0.0.1:", port, sizeof(port)) != 0)
            goto out;
        ch->cprod_port = atoi(port);
        const char *aargs[] = {"--http.port", "0", "--ingest.max_rps", "0", "--shutdown.timeout.ms",
                               "10000",       NULL};
        char url[256];
        ch_path(ch, "activity-producer.log", log, sizeof(log));
        if (ch_start(ch, &ch->aprod, "activity-producer", aargs, log, "ingest endpoint ", url,
                     sizeof(url)) != 0)
            goto out;
        /* "http://127.0.0.1:PORT/v1/activities" -> the base */
        char *slash = strstr(url, "://");
        slash = slash ? strchr(slash + 3, '/') : NULL;
        if (slash)
            *slash = '\0';
        snprintf(ch->ingest_url, sizeof(ch->ingest_url), "%s", url);
    }
    ch_say("producers: prospect :%d, crm :%d, activity ingest %s", ch->pprod_port, ch->cprod_port,
           ch->ingest_url);
    rc = 0;
out:
    cs_http_destroy(h);
    return rc;
}

static int start_replicas(ch_t *ch)
{
    for (int i = 0; i < ch->nreplicas; i++)
        if (ch_replica_start(ch, i) != 0)
            return -1;
    {
        char line[256];
        size_t w = 0;
        for (int i = 0; i < ch->nreplicas; i++)
            w += (size_t)snprintf(line + w, sizeof(line) - w, "%s:%d", i ? ", " : "",
                                  ch->rep[i].port);
        ch_say("%d sync-consumer replicas (metrics ports %s)", ch->nreplicas, line);
    }
    return 0;
}

static void progress(ch_t *ch, cs_http_t *h)
{
    double queue = 0;
    long long lag = ch_group_lag(ch);
    int up = 0;
    for (int i = 0; i < ch->nreplicas; i++) {
        int port;
        pthread_mutex_lock(&ch->rep_mu);
        port = ch->rep[i].port;
        pthread_mutex_unlock(&ch->rep_mu);
        double q = ch_metric(h, port, "crmsync_queue_depth", NULL);
        if (q >= 0) {
            up++;
            queue += q;
        }
    }
    ch_say("t=%3.0fs prospects %ld/%d, edits mkt %ld crm %ld, activities %ld, kills %ld%s, "
           "replicas up %d/%d, queued %.0f, events not committed %lld%s",
           ch_elapsed_s(ch), atomic_load(&ch->n_created), ch->n, atomic_load(&ch->n_mkt_edits),
           atomic_load(&ch->n_crm_edits), atomic_load(&ch->n_acts), atomic_load(&ch->kills),
           atomic_load(&ch->crashes) ? " (CRASHES!)" : "", up, ch->nreplicas, queue, lag,
           atomic_load(&ch->broker_down) ? ", broker DOWN" : "");
}

/* Each replica's batch backoff when the faults are lifted: how long it will not push even
 * though nothing fails any more. */
static void backoffs(ch_t *ch, cs_http_t *h)
{
    char line[512];
    size_t w = 0;
    double worst = 0;
    for (int i = 0; i < ch->nreplicas; i++) {
        char url[128];
        cs_http_result_t res;
        json_t *j;
        int port;
        pthread_mutex_lock(&ch->rep_mu);
        port = ch->rep[i].port;
        pthread_mutex_unlock(&ch->rep_mu);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", port);
        if (!port || cs_http_request(h, "GET", url, NULL, NULL, 0, &res) != CS_OK ||
            !(j = cs_http_result_json(&res)))
            continue;
        double ms = (double)json_integer_value(json_object_get(j, "api_backoff_ms"));
        worst = ms > worst ? ms : worst;
        w += (size_t)snprintf(line + w, sizeof(line) - w, "%sreplica %d %.1f s", w ? ", " : "",
                              i + 1, ms / 1000.0);
    }
    if (w)
        ch_say("backoff of the replicas' pushes at that moment: %s%s", line,
               worst > 30000 ? " (a replica holds every push although nothing fails any more)"
                             : "");
}

/* SIGTERM to a child; its exit status, noted when it is not 0. */
static int stop_child(ch_t *ch, cs_tproc_t *p, const char *what)
{
    int st;
    if (p->pid <= 0)
        return 0;
    st = cs_tproc_stop(p, 30000);
    if (st != 0)
        ch_say("%s exited with status %d on SIGTERM (log %s)", what, st, p->log);
    return st;
}

static long long refused(json_t *stats, const char *side, const char *what)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(stats, side), "refused"), what));
}

int main(int argc, char **argv)
{
    ch_t ch;
    ch_result_t r;
    char errstr[512];
    int err, rc = 3, stop_failures = 0;
    cs_http_t *h = NULL;

    memset(&ch, 0, sizeof(ch));
    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&ch.mu, NULL);
    pthread_mutex_init(&ch.rep_mu, NULL);
    ch.import_status = -1;
    ch.conf = cs_conf_new("crmsync-chaos", usage, chaos_opts);
    if (!ch.conf || cs_conf_add_opts(ch.conf, cs_topics_opts)) {
        cs_conf_destroy(ch.conf);
        return 3;
    }
    err = cs_conf_from_args(ch.conf, argc, argv, NULL, errstr, sizeof(errstr));
    if (err) {
        if (err < 0)
            fprintf(stderr, "crmsync-chaos: %s\n", errstr);
        cs_conf_destroy(ch.conf);
        return err < 0 ? 2 : 0;
    }
    ch.size = cs_conf_str(ch.conf, "chaos.size");
    if (settings(&ch) != 0) {
        cs_conf_destroy(ch.conf);
        return 2;
    }
    ch_rand_seed(ch.seed);
    cs_run_install_signals();
    signal(SIGPIPE, SIG_IGN);

    {
        const char *b = getenv("CRMSYNC_BOOTSTRAP");
        if (!b || !*b)
            b = cs_conf_kafka(ch.conf, "bootstrap.servers");
        snprintf(ch.bootstrap, sizeof(ch.bootstrap), "%s",
                 b && *b ? b : CS_KAFKA_DEFAULT_BOOTSTRAP);
        cs_conf_set(ch.conf, "kafka.bootstrap.servers", ch.bootstrap, NULL, 0);
    }
    snprintf(ch.run, sizeof(ch.run), "chaos%lld-%d", (long long)(cs_wall_ms() / 1000),
             (int)getpid());
    snprintf(ch.group, sizeof(ch.group), "%s-sync", ch.run);
    snprintf(ch.run_dir, sizeof(ch.run_dir), "%s/%s", cs_conf_str(ch.conf, "chaos.dir"), ch.run);
    if (mkdirs(ch.run_dir) != 0) {
        fprintf(stderr, "crmsync-chaos: cannot create %s\n", ch.run_dir);
        cs_conf_destroy(ch.conf);
        return 3;
    }
    /* the driver's own Kafka clients complain loudly while the broker is down: to a file */
    {
        char path[1200];
        ch_path(&ch, "driver.log", path, sizeof(path));
        driver_log = fopen(path, "a");
        cs_log_setup("warn", "text");
        if (driver_log) {
            setvbuf(driver_log, NULL, _IOLBF, 0);
            cs_log_set_output(driver_log);
        }
    }
    ch_say("run %s (size %s): %d prospects, %d marketing edits, %d CRM edits, %d activities, "
           "%d replicas, %.0f s of chaos; broker %s; logs in %s",
           ch.run, ch.size, ch.nprospects, ch.mkt_edits, ch.crm_edits, ch.activities, ch.nreplicas,
           ch.duration_ms / 1000.0, ch.bootstrap, ch.run_dir);
    find_broker(&ch);

    if (setup(&ch) != 0 || ch_workload_init(&ch) != 0) {
        ch_say("set-up failed");
        goto stop;
    }
    ch_say("seeded %ld CRM records (leads and contacts entered by sales people)",
           atomic_load(&ch.n_seeded));
    if (start_replicas(&ch) != 0)
        goto stop;

    /* ---- the chaos */
    rc = 1;
    ch.start_ms = cs_now_ms();
    if (ch_faults_start(&ch) != 0 || ch_workload_start(&ch) != 0) {
        ch_say("cannot start the workload or the faults");
        atomic_store(&ch.stop, 1);
    }
    ch_say("chaos on: %s of the calls answered 503 on each side, tokens live %d s, %d-call "
           "rate-limit bursts every %.0f s, a replica killed every ~%.1f s (%d of %d static "
           "members: their restarts do not rebalance the group)",
           ch.error_rate, ch.token_ttl_s, ch.burst_errors, ch.burst_every_ms / 1000.0,
           ch.kill_interval_ms / 1000.0, ch.static_replicas, ch.nreplicas);
    h = cs_http_new(NULL, errstr, sizeof(errstr));
    {
        int64_t next_progress = cs_now_ms() + 5000;
        while (!atomic_load(&ch.stop)) {
            if (cs_run_stopping()) {
                ch_say("interrupted");
                atomic_store(&ch.stop, 1);
                break;
            }
            if (atomic_load(&ch.threads_done) == CH_WORKLOAD_THREADS &&
                cs_now_ms() - ch.start_ms >= ch.duration_ms)
                break;
            if (cs_now_ms() >= next_progress) {
                progress(&ch, h);
                next_progress += 5000;
            }
            cs_run_sleep_ms(100);
        }
    }
    atomic_store(&ch.chaos_over, 1);
    ch_workload_join(&ch);
    /* the monkey finishes its timeline (after a short workload), then only minds the
     * replicas */
    while (!atomic_load(&ch.stop) && !atomic_load(&ch.timeline_done))
        cs_run_sleep_ms(100);
    ch.chaos_end_ms = cs_now_ms();
    progress(&ch, h);

    /* ---- lift the faults, let it settle */
    if (ch_knobs(&ch, "{\"crm.error_rate\": 0, \"marketing.error_rate\": 0, "
                      "\"crm.burst_limit_errors\": 0, \"marketing.burst_limit_errors\": 0, "
                      "\"auth.token_ttl_s\": 7200}") != 0)
        ch_say("could not lift the faults");
    if (!atomic_load(&ch.stop)) {
        ch_say("chaos over after %.0f s: faults lifted; waiting for quiescence", ch_elapsed_s(&ch));
        backoffs(&ch, h);
        ch_wait_quiet(&ch, &r);
    }
    if (!cs_run_stopping() && ch.sandbox.pid > 0)
        ch_verify(&ch, &r);

stop:
    /* ---- stop everything, replicas and producers first (they call the sandbox) */
    ch_faults_park(&ch);
    for (int i = 0; i < ch.nreplicas; i++) {
        char what[32];
        snprintf(what, sizeof(what), "replica %d", i + 1);
        stop_failures += stop_child(&ch, &ch.rep[i].proc, what) != 0;
    }
    stop_failures += stop_child(&ch, &ch.pprod, "crmsync-prospect-producer") != 0;
    stop_failures += stop_child(&ch, &ch.cprod, "crmsync-crm-producer") != 0;
    stop_failures += stop_child(&ch, &ch.aprod, "crmsync-activity-producer") != 0;
    if (rc == 1) {
        json_t *stats = NULL;
        if (h && ch.sandbox.pid > 0)
            ch_sandbox(&ch, h, "GET", "/sandbox/stats", NULL, &stats);
        ch_say("workload: %ld prospects (groups of 20: 7 mkt, 4 crm, 4 activity, 1 dns, 2 "
               "unassigned, 2 import), %ld marketing edits, %ld CRM edits, %ld activities (%ld "
               "intent) in %ld webhook requests, %ld seeded CRM records, import of %d rows "
               "(exit %d)",
               atomic_load(&ch.n_created), atomic_load(&ch.n_mkt_edits),
               atomic_load(&ch.n_crm_edits), atomic_load(&ch.n_acts), atomic_load(&ch.n_triggers),
               atomic_load(&ch.n_act_posts), atomic_load(&ch.n_seeded), ch.import_rows,
               ch.import_status);
        ch_say("faults: %ld replica kills, %ld crashes, broker restarted %d time(s) (down %.1f "
               "s)%s%s, "
               "%ld rate-limit bursts; refused by the sandbox: CRM 503 %lld, "
               "REQUEST_LIMIT_EXCEEDED %lld, INVALID_SESSION_ID %lld; marketing 503 %lld, "
               "66 %lld, 184 %lld",
               atomic_load(&ch.kills), atomic_load(&ch.crashes), atomic_load(&ch.broker_restarts),
               ch.broker_down_total_ms / 1000.0, ch.broker_error[0] ? ": " : "", ch.broker_error,
               atomic_load(&ch.bursts), refused(stats, "crm", "503"),
               refused(stats, "crm", "REQUEST_LIMIT_EXCEEDED"),
               refused(stats, "crm", "INVALID_SESSION_ID"), refused(stats, "marketing", "503"),
               refused(stats, "marketing", "66"), refused(stats, "marketing", "184"));
        json_decref(stats);
    }
    stop_failures += stop_child(&ch, &ch.sandbox, "crmsync-sandbox") != 0;
    ch_faults_join(&ch);
    if (cs_run_stopping()) {
        ch_say("interrupted: no verdict (logs in %s)", ch.run_dir);
        rc = 130;
    }

    if (rc == 1) {
        int pass = 1;
        const char *why[16];
        int nwhy = 0;
#define FAIL_IF(cond, text)                                                                        \
    do {                                                                                           \
        if (cond) {                                                                                \
            pass = 0;                                                                              \
            if (nwhy < 16)                                                                         \
                why[nwhy++] = text;                                                                \
        }                                                                                          \
    } while (0)
        FAIL_IF(ch.fatal[0], "the workload failed");
        FAIL_IF(!r.quiet, "never quiet");
        FAIL_IF(r.lost != 0, "lost values");
        FAIL_IF(r.duplicate_leads != 0, "duplicate leads");
        FAIL_IF(r.mismatched != 0, "mismatched records");
        FAIL_IF(r.uncommitted != 0, "events not accounted for (offsets)");
        FAIL_IF(r.poison_routed != r.poison_written || r.poison_written == 0,
                "poison records not routed");
        FAIL_IF(atomic_load(&ch.crashes) != 0, "replica crashes");
        FAIL_IF(stop_failures != 0, "a process did not stop cleanly");
        FAIL_IF(ch.import_status != 0, "the import failed");
        FAIL_IF(ch.broker_port && atomic_load(&ch.broker_restarts) != 1, "no broker restart");
        FAIL_IF(r.events < ch.min_events, "fewer events than chaos.min_events");
        FAIL_IF(atomic_load(&ch.kills) == 0, "no replica was killed");
        if (pass) {
            ch_say("PASSED: every check (run %s, %.0f s)", ch.run, ch_elapsed_s(&ch));
            rc = 0;
        } else {
            char line[512];
            size_t w = 0;
            for (int i = 0; i < nwhy; i++)
                w += (size_t)snprintf(line + w, sizeof(line) - w, "%s%s", i ? "; " : "", why[i]);
            ch_say("FAILED: %s (logs in %s)", line, ch.run_dir);
        }
        printf("CHAOS events=%lld lost=%lld duplicate_leads=%lld mismatched=%lld "
               "poison_routed=%lld kills=%ld\n",
               r.events, r.lost, r.duplicate_leads, r.mismatched, r.poison_routed,
               atomic_load(&ch.kills));
        fflush(stdout);
    }
    cs_http_destroy(h);
    ch_lag_close(&ch);
    ch_workload_free(&ch);
    cs_conf_destroy(ch.conf);
    if (driver_log) {
        cs_log_set_output(stderr);
        fclose(driver_log);
    }
    return rc;
}
