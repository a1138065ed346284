/* End to end: poison and bad input reaching crmsync-sync-consumer.
 *
 * Scenario 1, routing. On the input topics (one partition each): garbage bytes, a record
 * with an unknown fingerprint, a truncated Avro body, an empty record, a ProspectChange whose
 * e-mail is not an address, then good records. Expected: each bad one is a SyncError record
 * on the errors topic with a code that says why (POISON_BAD_AVRO, POISON_UNKNOWN_SCHEMA,
 * POISON_TRUNCATED, POISON_EMPTY; the CRM's INVALID_EMAIL_ADDRESS for the address), a
 * message, and for poison the raw bytes with their topic, partition and offset; the poison
 * and per-record error metrics count them; the consumer keeps going (the good prospect after
 * them reaches the CRM); and the group's committed offsets end past every record.
 *
 * Scenario 2, ordering. The errors topic does not exist (the local broker does not create
 * topics), so the poison record's SyncError cannot be written: the consumer must not commit
 * past the poison record, even though a good record after it is done. Restarted with a
 * working errors topic, the same group re-reads the poison record, writes it there, and only
 * then commits past it. */
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_run.h"
#include "cs_test.h"
#include "testutil_proc.h"
#include "testutil_sandbox.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

static cs_tsandbox_t sb;
static cs_tsandbox_client_t api;
static cs_avro_registry_t *reg;
static cs_avro_encoder_t *enc;
static cs_producer_t *prod;
static cs_conf_t *kconf;
static const char *bootstrap;
static int64_t mkt_user;
static char topics[7][160], group[160], conf_path[256];
static int scenario;

static const char *const topic_keys[7] = {"topic.prospect", "topic.activity", "topic.crm",
                                          "topic.control",  "topic.state",    "topic.errors",
                                          "topic.cursors"};
enum { T_PROSPECT, T_ACTIVITY, T_CRM, T_CONTROL, T_STATE, T_ERRORS, T_CURSORS };

/* ---------------------------------------------------------------- helpers */

static json_t *snapshot(void)
{
    int status = 0;
    json_t *j = cs_tsandbox_admin(&sb, "GET", "snapshot", NULL, &status);
    REQUIRE(status == 200 && j);
    return j;
}

static size_t leads_with_email(const char *email)
{
    json_t *snap = snapshot(), *r;
    size_t i, n = 0;
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), "Lead"), i, r)
    {
        const char *e = json_string_value(json_object_get(r, "Email"));
        n += e && !strcasecmp(e, email);
    }
    json_decref(snap);
    return n;
}

static void load_user(void)
{
    json_t *snap = snapshot();
    json_t *u = json_array_get(json_object_get(json_object_get(snap, "marketing"), "users"), 0);
    mkt_user = json_integer_value(json_object_get(u, "id"));
    json_decref(snap);
    REQUIRE(mkt_user > 0);
}

/* The bytes of a ProspectChange as the prospect producer writes them. */
static size_t prospect_frame(const char *email, int64_t id, unsigned char *buf, size_t cap)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
    const void *out;
    size_t len;
    char eid[64];
    int64_t now = cs_wall_ms();
    snprintf(eid, sizeof eid, "poison-%" PRId64 "-%" PRId64, id, now);
    cs_avro_set_str(v, CS_PC_EVENT_ID, eid);
    cs_avro_set_str(v, CS_PC_PROSPECT_KEY, email);
    cs_avro_set_long(v, CS_PC_PROSPECT_ID, id);
    cs_avro_set_enum(v, CS_PC_CAUSE, CS_CAUSE_CREATED);
    cs_avro_set_long(v, CS_PC_UPDATED_AT, now);
    cs_avro_set_long(v, CS_PC_EVENT_TIME, now);
    cs_avro_set_str(v, CS_PC_EMAIL, email);
    cs_avro_set_str(v, CS_PC_FIRST_NAME, "Poi");
    cs_avro_set_str(v, CS_PC_LAST_NAME, "Son");
    cs_avro_set_str(v, CS_PC_COMPANY, "Acme");
    cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, mkt_user);
    REQUIRE(cs_avro_encode(enc, v, &out, &len) == CS_OK);
    REQUIRE(len <= cap);
    memcpy(buf, out, len);
    return len;
}

static void send_raw(int t, const char *key, const void *p, size_t n)
{
    REQUIRE(cs_producer_send(prod, topics[t], key, strlen(key), p, n, 0, NULL, -1) == CS_OK);
}

static void begin(const char *name, int with_errors_topic)
{
    char err[512];
    scenario++;
    printf("--- scenario %d: %s\n", scenario, name);
    fflush(stdout);
    REQUIRE(cs_tsandbox_reset(&sb) == 0);
    load_user();
    for (int t = 0; t < 7; t++)
        snprintf(topics[t], sizeof topics[t], "e2e-poison%d.s%d.%s", (int)getpid(), scenario,
                 topic_keys[t] + 6);
    snprintf(group, sizeof group, "e2e-poison-%d-%d", (int)getpid(), scenario);
    cs_topic_spec_t specs[7];
    size_t n = 0;
    static const char *compact[] = {"cleanup.policy", "compact", NULL};
    for (int t = 0; t < 7; t++) {
        if (t == T_ERRORS && !with_errors_topic)
            continue; /* it will not exist */
        specs[n].name = topics[t];
        specs[n].partitions = 1;
        specs[n].replication_factor = 1;
        specs[n].configs = t == T_STATE ? compact : NULL;
        n++;
    }
    REQUIRE(cs_kafka_ensure_topics(kconf, specs, n, 15000, err, sizeof err) == CS_OK);
}

static void create_errors_topic(void)
{
    char err[512];
    cs_topic_spec_t s = {topics[T_ERRORS], 1, 1, NULL};
    REQUIRE(cs_kafka_ensure_topics(kconf, &s, 1, 15000, err, sizeof err) == CS_OK);
}

typedef struct {
    cs_tproc_t proc;
    int port;
} consumer_t;

static void start_consumer(consumer_t *c, int run)
{
    char log[256];
    FILE *f;
    snprintf(conf_path, sizeof conf_path, "/tmp/crmsync-poison-%d-%d.conf", (int)getpid(),
             scenario);
    f = fopen(conf_path, "w");
    REQUIRE(f);
    fprintf(f, "kafka.bootstrap.servers=%s\n", bootstrap);
    for (int t = 0; t < 7; t++)
        fprintf(f, "%s=%s\n", topic_keys[t], topics[t]);
    /* a missing errors topic fails deliveries after 3 s instead of 5 minutes */
    fprintf(f,
            "topics.partitions=1\ngroup.id=%s\ncrm.login_url=%s\nmkt.base_url=%s\n"
            "crm.client_id=%s\ncrm.client_secret=%s\nmkt.business_unit_id=%s\n"
            "batch.linger.ms=100\ncommit.interval.ms=200\nhttp.port=0\n"
            "kafka.message.timeout.ms=3000\n",
            group, sb.url, sb.url, CS_TSANDBOX_CLIENT_ID, CS_TSANDBOX_CLIENT_SECRET,
            CS_TSANDBOX_BU_ID);
    fclose(f);
    const char *args[] = {"--config", conf_path, NULL};
    snprintf(log, sizeof log, "/tmp/crmsync-poison-%d-%d-%d.log", (int)getpid(), scenario, run);
    unlink(log);
    REQUIRE(cs_tproc_start(&c->proc, "sync-consumer", args, log) == 0);
    c->port = 0;
    for (int i = 0; i < 300 && !c->port; i++) {
        char line[1024];
        f = fopen(log, "r");
        while (f && fgets(line, sizeof line, f)) {
            char *m = strstr(line, "metrics on http://127.0.0.1:");
            if (m)
                c->port = atoi(m + strlen("metrics on http://127.0.0.1:"));
        }
        if (f)
            fclose(f);
        if (!c->port)
            usleep(50000);
    }
    REQUIRE(c->port > 0);
}

/* Sum of a metric over its label sets; -1 when /metrics does not answer. */
static double metric(consumer_t *c, const char *name)
{
    char url[128];
    double sum = 0;
    cs_http_result_t res;
    cs_http_t *h = cs_http_new(NULL, NULL, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c->port);
    if (!h || cs_http_request(h, "GET", url, NULL, NULL, 0, &res) || res.status != 200) {
        cs_http_destroy(h);
        return -1;
    }
    size_t nlen = strlen(name);
    for (const char *p = res.body; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > nlen && !strncmp(p, name, nlen) && (p[nlen] == ' ' || p[nlen] == '{')) {
            const char *sp = memrchr(p, ' ', len);
            if (sp)
                sum += atof(sp + 1);
        }
        p = nl ? nl + 1 : NULL;
    }
    cs_http_destroy(h);
    return sum;
}

static int wait_metric(consumer_t *c, const char *name, double want, int timeout_ms)
{
    int64_t deadline = cs_now_ms() + timeout_ms;
    while (cs_now_ms() < deadline) {
        if (metric(c, name) >= want)
            return 1;
        usleep(100000);
    }
    fprintf(stderr, "%s stayed at %g (wanted %g)\n", name, metric(c, name), want);
    return 0;
}

/* The group's committed offset of partition 0 of an input topic (-1: none). */
static int64_t committed(int t)
{
    char err[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(kconf, err, sizeof err);
    REQUIRE(kc);
    REQUIRE(rd_kafka_conf_set(kc, "group.id", group, err, sizeof err) == RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
    REQUIRE(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topics[t], 0);
    int64_t off = -2;
    if (rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && !l->elems[0].err)
        off = l->elems[0].offset < 0 ? -1 : l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return off;
}

typedef struct {
    char code[64], topic[200];
    int direction;
    int has_message;
    int32_t partition;
    int64_t offset;
    unsigned char payload[512];
    size_t payload_len;
} sync_error_t;

/* Reads the errors topic from the start to its end; returns the count (max `cap`). */
static size_t read_errors(sync_error_t *out, size_t cap)
{
    char err[512];
    size_t n = 0;
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    rd_kafka_conf_t *kc = cs_kafka_conf_new(kconf, err, sizeof err);
    REQUIRE(dec && kc);
    REQUIRE(rd_kafka_conf_set(kc, "group.id", "poison-reader", err, sizeof err) ==
            RD_KAFKA_CONF_OK);
    REQUIRE(rd_kafka_conf_set(kc, "enable.partition.eof", "true", err, sizeof err) ==
            RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof err);
    REQUIRE(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topics[T_ERRORS], 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    REQUIRE(rd_kafka_assign(rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    int64_t deadline = cs_now_ms() + 15000;
    for (int eof = 0; !eof && cs_now_ms() < deadline;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof = 1;
        } else if (!m->err && n < cap) {
            cs_avro_decoded_t d;
            if (cs_avro_decode(dec, m->payload, m->len, &d) == CS_OK &&
                d.schema == CS_AVRO_SYNC_ERROR) {
                sync_error_t *e = &out[n++];
                const char *s;
                const void *p;
                size_t len = 0;
                int64_t v;
                memset(e, 0, sizeof *e);
                s = cs_avro_get_str(d.value, CS_SE_CODE, NULL);
                snprintf(e->code, sizeof e->code, "%s", s ? s : "");
                s = cs_avro_get_str(d.value, CS_SE_MESSAGE, NULL);
                e->has_message = s && *s;
                e->direction = cs_avro_get_enum(d.value, CS_SE_DIRECTION);
                s = cs_avro_get_str(d.value, CS_SE_TOPIC, NULL);
                snprintf(e->topic, sizeof e->topic, "%s", s ? s : "");
                e->partition = cs_avro_get_long(d.value, CS_SE_PARTITION, &v) ? (int32_t)v : -1;
                e->offset = cs_avro_get_long(d.value, CS_SE_OFFSET, &v) ? v : -1;
                p = cs_avro_get_bytes(d.value, CS_SE_PAYLOAD, &len);
                if (p && len <= sizeof e->payload) {
                    memcpy(e->payload, p, len);
                    e->payload_len = len;
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    cs_avro_decoder_destroy(dec);
    return n;
}

static const sync_error_t *find_code(const sync_error_t *e, size_t n, const char *code)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i].code, code))
            return &e[i];
    return NULL;
}

/* ---------------------------------------------------------------- scenarios */

static void s_routing(void)
{
    consumer_t c;
    unsigned char good[2048], trunc[2048], unknown[2048];
    static const unsigned char garbage[] = "\xde\xad\xbe\xef this is not Avro";
    size_t glen = sizeof garbage - 1;
    begin("garbage, unknown fingerprint, truncated body, empty record, invalid e-mail", 1);

    /* prospect topic offsets: 0 garbage, 1 unknown fingerprint, 2 truncated, 3 empty,
     * 4 invalid e-mail, 5 good */
    send_raw(T_PROSPECT, "garbage@x.example", garbage, glen);
    size_t ulen = prospect_frame("unknown@x.example", 9001, unknown, sizeof unknown);
    for (int i = 0; i < 8; i++)
        unknown[2 + i] = (unsigned char)(0xA1 + i); /* a fingerprint no schema has */
    send_raw(T_PROSPECT, "unknown@x.example", unknown, ulen);
    size_t tlen = prospect_frame("truncated@x.example", 9002, trunc, sizeof trunc) / 2;
    send_raw(T_PROSPECT, "truncated@x.example", trunc, tlen);
    send_raw(T_PROSPECT, "empty@x.example", "", 0);
    size_t blen = prospect_frame("not-an-email", 9003, good, sizeof good);
    send_raw(T_PROSPECT, "not-an-email", good, blen);
    blen = prospect_frame("good.after.poison@x.example", 9004, good, sizeof good);
    send_raw(T_PROSPECT, "good.after.poison@x.example", good, blen);
    /* the activity and CRM topics: garbage at offset 0 of each */
    send_raw(T_ACTIVITY, "garbage@x.example", garbage, glen);
    send_raw(T_CRM, "garbage@x.example", garbage, glen);
    REQUIRE(cs_producer_flush(prod, 30000) == CS_OK);

    start_consumer(&c, 0);
    CHECK(wait_metric(&c, "crmsync_poison_total", 6, 30000));
    int64_t deadline = cs_now_ms() + 30000;
    while (leads_with_email("good.after.poison@x.example") < 1 && cs_now_ms() < deadline)
        usleep(200000);
    CHECK_INT(leads_with_email("good.after.poison@x.example"), 1); /* it kept going */
    CHECK(wait_metric(&c, "crmsync_record_errors_total", 1, 30000));
    CHECK_INT(leads_with_email("not-an-email"), 0);

    /* committed past everything (poll: commits are periodic) */
    deadline = cs_now_ms() + 20000;
    while ((committed(T_PROSPECT) < 6 || committed(T_ACTIVITY) < 1 || committed(T_CRM) < 1) &&
           cs_now_ms() < deadline)
        usleep(300000);
    CHECK_INT(committed(T_PROSPECT), 6);
    CHECK_INT(committed(T_ACTIVITY), 1);
    CHECK_INT(committed(T_CRM), 1);

    sync_error_t errs[32];
    size_t n = read_errors(errs, 32);
    printf("errors topic: %zu records:", n);
    for (size_t i = 0; i < n; i++)
        printf(" %s", errs[i].code);
    printf("\n");
    const sync_error_t *e = find_code(errs, n, "POISON_BAD_AVRO");
    CHECK(e != NULL);
    if (e) {
        CHECK(e->has_message);
        CHECK_INT(e->direction, CS_DIRECTION_INPUT);
        CHECK(e->payload_len == glen && !memcmp(e->payload, garbage, glen)); /* raw bytes */
        CHECK(strstr(e->topic, ".prospect") || strstr(e->topic, ".activity") ||
              strstr(e->topic, ".crm"));
        CHECK_INT(e->partition, 0);
    }
    e = find_code(errs, n, "POISON_UNKNOWN_SCHEMA");
    CHECK(e != NULL);
    if (e) {
        CHECK(e->has_message);
        CHECK(e->payload_len == ulen && !memcmp(e->payload, unknown, ulen));
        CHECK_INT(e->offset, 1);
    }
    e = find_code(errs, n, "POISON_TRUNCATED");
    CHECK(e != NULL);
    if (e) {
        CHECK(e->has_message);
        CHECK(e->payload_len == tlen && !memcmp(e->payload, trunc, tlen));
        CHECK_INT(e->offset, 2);
    }
    e = find_code(errs, n, "POISON_EMPTY");
    CHECK(e != NULL);
    if (e)
        CHECK_INT(e->offset, 3);
    /* the invalid address: refused by the CRM, reported per record */
    int email_err = 0;
    for (size_t i = 0; i < n; i++)
        email_err |= strstr(errs[i].code, "EMAIL") != NULL && errs[i].has_message;
    CHECK(email_err);
    CHECK(cs_tproc_log_count(&c.proc, "poison record routed to the errors topic") >= 6);
    CHECK_INT(cs_tproc_stop(&c.proc, 20000), 0);
}

static void s_commit_after_error_written(void)
{
    consumer_t c;
    unsigned char good[2048];
    static const unsigned char garbage[] = "\xff no known framing";
    begin("the offset moves past a poison record only once its error record is written", 0);
    /* offset 0: poison, offset 1: good */
    send_raw(T_PROSPECT, "garbage@x.example", garbage, sizeof garbage - 1);
    size_t blen = prospect_frame("good.second@x.example", 9101, good, sizeof good);
    send_raw(T_PROSPECT, "good.second@x.example", good, blen);
    REQUIRE(cs_producer_flush(prod, 30000) == CS_OK);

    start_consumer(&c, 0);
    CHECK(wait_metric(&c, "crmsync_poison_total", 1, 30000));
    int64_t deadline = cs_now_ms() + 30000;
    while (leads_with_email("good.second@x.example") < 1 && cs_now_ms() < deadline)
        usleep(200000);
    CHECK_INT(leads_with_email("good.second@x.example"), 1);
    /* the error record cannot be delivered (no such topic; 3 s message timeout): commits
     * stop below the poison record */
    deadline = cs_now_ms() + 20000;
    while (cs_tproc_log_count(&c.proc, "not committing") == 0 && cs_now_ms() < deadline)
        usleep(200000);
    CHECK(cs_tproc_log_count(&c.proc, "not committing") > 0);
    usleep(1000000);
    int64_t off = committed(T_PROSPECT);
    printf("committed with the errors topic missing: %" PRId64 "\n", off);
    CHECK(off == -1 || off == 0); /* none, or the poison record itself */
    cs_tproc_stop(&c.proc, 20000);

    /* with the topic there, a restart re-reads the poison record and then commits past it */
    create_errors_topic();
    start_consumer(&c, 1);
    CHECK(wait_metric(&c, "crmsync_poison_total", 1, 30000));
    deadline = cs_now_ms() + 20000;
    while (committed(T_PROSPECT) < 2 && cs_now_ms() < deadline)
        usleep(300000);
    CHECK_INT(committed(T_PROSPECT), 2);
    sync_error_t errs[8];
    size_t n = read_errors(errs, 8);
    const sync_error_t *e = find_code(errs, n, "POISON_BAD_AVRO");
    CHECK(e != NULL && e->offset == 0);
    CHECK_INT(leads_with_email("good.second@x.example"), 1); /* the re-read wrote nothing new */
    CHECK_INT(cs_tproc_stop(&c.proc, 20000), 0);
}

int main(void)
{
    char err[512];
    bootstrap = cs_test_env("CRMSYNC_BOOTSTRAP", "127.0.0.1:19092");
    REQUIRE(cs_tsandbox_start(&sb, NULL, err, sizeof err) == 0);
    REQUIRE(cs_tsandbox_client_init(&api, &sb) == 0);
    reg = cs_avro_registry_new(err, sizeof err);
    REQUIRE(reg);
    enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    kconf = cs_conf_new("e2e-poison", "e2e", NULL);
    REQUIRE(enc && kconf);
    REQUIRE(cs_conf_set(kconf, "kafka.bootstrap.servers", bootstrap, err, sizeof err) == CS_OK);
    prod = cs_producer_new(kconf, NULL, NULL, err, sizeof err);
    REQUIRE(prod);

    s_routing();
    s_commit_after_error_written();

    cs_producer_destroy(prod);
    cs_conf_destroy(kconf);
    cs_avro_encoder_destroy(enc);
    cs_avro_registry_destroy(reg);
    cs_tsandbox_client_close(&api);
    CHECK_INT(cs_tsandbox_stop(&sb), 0);
    return cs_test_report();
}
