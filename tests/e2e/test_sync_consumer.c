/* End to end: crmsync-sync-consumer (one or two replicas) against the real broker and the
 * sandbox. Each scenario gets its own topics, consumer group and a reset sandbox, writes
 * input events the way the producers do, and asserts on the sandbox's records and call
 * counts. One scenario per rule of the design brief. */
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_run.h"
#include "cs_test.h"
#include "testutil_proc.h"
#include "testutil_sandbox.h"

#include <ctype.h>
#include <inttypes.h>
#include <unistd.h>

#define NPARTS 3

static cs_tsandbox_t sb;
static cs_tsandbox_client_t api;
static cs_avro_registry_t *reg;
static cs_avro_encoder_t *enc;
static cs_producer_t *prod;
static cs_conf_t *kconf;
static const char *bootstrap;
static char topics[7][128];
static char group[128];
static char crm_users[3][19], integration_user[19];
static int64_t mkt_users[3];
static int scenario;
static int64_t clock_ms = 1800000000000LL; /* source times: strictly increasing */

static const char *const topic_keys[7] = {"topic.prospect", "topic.activity", "topic.crm",
                                          "topic.control",  "topic.state",    "topic.errors",
                                          "topic.cursors"};
enum { T_PROSPECT, T_ACTIVITY, T_CRM, T_CONTROL, T_STATE, T_ERRORS };

/* ---------------------------------------------------------------- sandbox helpers */

static json_t *admin(const char *method, const char *what, const char *body)
{
    int status = 0;
    json_t *j = cs_tsandbox_admin(&sb, method, what, body, &status);
    if (status != 200)
        fprintf(stderr, "sandbox %s %s: HTTP %d\n", method, what, status);
    return j;
}

static long long stat_of(const char *side, const char *what)
{
    json_t *s = admin("GET", "stats", NULL);
    long long v = json_integer_value(json_object_get(json_object_get(s, side), what));
    json_decref(s);
    return v;
}

/* Calls on one endpoint template, e.g. "PATCH /composite/sobjects". */
static long long endpoint_calls(const char *side, const char *ep)
{
    json_t *s = admin("GET", "stats", NULL);
    long long v = json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(s, side), "endpoints"), ep), "calls"));
    json_decref(s);
    return v;
}

/* The records of a CRM object with this email (new reference to an array). */
static json_t *crm_records(const char *type, const char *email)
{
    json_t *snap = admin("GET", "snapshot", NULL), *out = json_array(), *r;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), type), i, r)
    {
        const char *e = json_string_value(json_object_get(r, "Email"));
        if (e && !strcasecmp(e, email))
            json_array_append(out, r);
    }
    json_decref(snap);
    return out;
}

static json_t *prospect_record(int64_t id)
{
    json_t *snap = admin("GET", "snapshot", NULL), *r, *out = NULL;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(snap, "marketing"), "prospects"), i, r)
    {
        if (json_integer_value(json_object_get(r, "id")) == id)
            out = json_incref(r);
    }
    json_decref(snap);
    return out;
}

/* Creates a CRM record through the API (as a person would have). Returns its id in out. */
static void crm_create(const char *type, const char *email, const char *first, const char *last,
                       char out[19])
{
    char body[1024];
    int status = 0;
    snprintf(body, sizeof(body),
             "{\"allOrNone\":false,\"records\":[{\"attributes\":{\"type\":\"%s\"},\"Email\":\"%s\","
             "\"FirstName\":\"%s\",\"LastName\":\"%s\"%s}]}",
             type, email, first, last, !strcmp(type, "Lead") ? ",\"Company\":\"Acme\"" : "");
    json_t *r =
        cs_tsandbox_req(&api, "POST", CS_TSANDBOX_DATA "/composite/sobjects", body, &status);
    const char *id = json_string_value(json_object_get(json_array_get(r, 0), "id"));
    REQUIRE(status == 200 && id);
    snprintf(out, 19, "%s", id);
}

/* Creates a prospect in the marketing system; returns its id. */
static int64_t mkt_create(const char *email, const char *first, const char *last)
{
    char body[512];
    int status = 0;
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"firstName\":\"%s\",\"lastName\":\"%s\"}",
             email, first, last);
    json_t *r =
        cs_tsandbox_req(&api, "POST", CS_TSANDBOX_V5 "/prospects?fields=id,email", body, &status);
    REQUIRE(status == 201 || status == 200);
    return json_integer_value(json_object_get(r, "id"));
}

static void load_users(void)
{
    json_t *snap = admin("GET", "snapshot", NULL), *r, *info = admin("GET", "info", NULL);
    size_t i;
    const char *emails[3] = {"sam@acme.example", "rita@acme.example", "mo@acme.example"};
    snprintf(integration_user, sizeof(integration_user), "%s",
             json_string_value(json_object_get(info, "integration_user_id")));
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), "User"), i, r)
    {
        const char *e = json_string_value(json_object_get(r, "Email"));
        for (int k = 0; k < 3; k++)
            if (e && !strcmp(e, emails[k]))
                snprintf(crm_users[k], 19, "%s", json_string_value(json_object_get(r, "Id")));
    }
    json_array_foreach(json_object_get(json_object_get(snap, "marketing"), "users"), i, r)
    {
        const char *e = json_string_value(json_object_get(r, "email"));
        for (int k = 0; k < 3; k++)
            if (e && !strcmp(e, emails[k]))
                mkt_users[k] = json_integer_value(json_object_get(r, "id"));
    }
    json_decref(snap);
    json_decref(info);
    REQUIRE(strlen(crm_users[0]) == 18 && strlen(integration_user) == 18 && mkt_users[0] > 0);
}

/* ---------------------------------------------------------------- events */

typedef struct pc_s {
    const char *email;
    int64_t id;
    const char *first, *last, *company;
    int64_t assigned; /* -1 = unassigned */
    int dns;
    int cause;
    int64_t time; /* 0 = next tick */
} pc_t;

static int64_t tick(void)
{
    return clock_ms += 1000;
}

static void send_rec(int t, const char *key, avro_value_t *v)
{
    const void *out;
    size_t len;
    REQUIRE(cs_avro_encode(enc, v, &out, &len) == CS_OK);
    REQUIRE(cs_producer_send(prod, topics[t], key, key ? strlen(key) : 0, out, len, 0, NULL, -1) ==
            CS_OK);
}

static void flush_events(void)
{
    REQUIRE(cs_producer_flush(prod, 30000) == CS_OK);
}

static void send_prospect(const pc_t *p)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
    char eid[64];
    int64_t t = p->time ? p->time : tick();
    snprintf(eid, sizeof(eid), "pc-%" PRId64, t);
    cs_avro_set_str(v, CS_PC_EVENT_ID, eid);
    cs_avro_set_str(v, CS_PC_PROSPECT_KEY, p->email);
    cs_avro_set_long(v, CS_PC_PROSPECT_ID, p->id);
    cs_avro_set_enum(v, CS_PC_CAUSE, p->cause);
    cs_avro_set_long(v, CS_PC_UPDATED_AT, t);
    cs_avro_set_long(v, CS_PC_EVENT_TIME, cs_wall_ms());
    cs_avro_set_str(v, CS_PC_EMAIL, p->email);
    cs_avro_set_str(v, CS_PC_FIRST_NAME, p->first);
    cs_avro_set_str(v, CS_PC_LAST_NAME, p->last);
    cs_avro_set_str(v, CS_PC_COMPANY, p->company ? p->company : "Acme");
    cs_avro_set_int(v, CS_PC_SCORE, 1234); /* four digits: the whole number goes out */
    if (p->assigned >= 0)
        cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, p->assigned);
    cs_avro_set_bool(v, CS_PC_DO_NOT_SYNC, p->dns);
    send_rec(T_PROSPECT, p->email, v);
}

static void send_activity(const char *email, int type, int identified)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_ACTIVITY);
    char eid[64];
    int64_t t = tick();
    snprintf(eid, sizeof(eid), "a-%" PRId64, t);
    cs_avro_set_str(v, CS_ACT_EVENT_ID, eid);
    cs_avro_set_str(v, CS_ACT_PROSPECT_KEY, email);
    cs_avro_set_str(v, CS_ACT_EMAIL, email);
    cs_avro_set_enum(v, CS_ACT_TYPE, type);
    cs_avro_set_bool(v, CS_ACT_IDENTIFIED, identified);
    cs_avro_set_long(v, CS_ACT_OCCURRED_AT, t);
    cs_avro_set_long(v, CS_ACT_EVENT_TIME, cs_wall_ms());
    send_rec(T_ACTIVITY, email, v);
}

/* A CrmChange as the CRM producer would publish it for the record as it is now. */
static void send_crm_record(json_t *r, const char *type)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_CRM_CHANGE);
    const char *email = json_string_value(json_object_get(r, "Email"));
    char key[256] = "", eid[64];
    int64_t t = tick();
    if (email)
        for (size_t i = 0; email[i] && i < sizeof(key) - 1; i++)
            key[i] = (char)tolower((unsigned char)email[i]);
    snprintf(eid, sizeof(eid), "c-%" PRId64, t);
    cs_avro_set_str(v, CS_CRM_EVENT_ID, eid);
    cs_avro_set_str(v, CS_CRM_PROSPECT_KEY, key);
    cs_avro_set_enum(v, CS_CRM_OBJECT,
                     !strcmp(type, "Contact") ? CS_OBJECT_CONTACT : CS_OBJECT_LEAD);
    cs_avro_set_str(v, CS_CRM_CRM_ID, json_string_value(json_object_get(r, "Id")));
    cs_avro_set_str(v, CS_CRM_OWNER_ID, json_string_value(json_object_get(r, "OwnerId")));
    cs_avro_set_str(v, CS_CRM_EMAIL, email);
    cs_avro_set_str(v, CS_CRM_FIRST_NAME, json_string_value(json_object_get(r, "FirstName")));
    cs_avro_set_str(v, CS_CRM_LAST_NAME, json_string_value(json_object_get(r, "LastName")));
    cs_avro_set_str(v, CS_CRM_COMPANY, json_string_value(json_object_get(r, "Company")));
    cs_avro_set_bool(v, CS_CRM_OPTED_OUT, json_is_true(json_object_get(r, "HasOptedOutOfEmail")));
    cs_avro_set_long(v, CS_CRM_LAST_MODIFIED_DATE, t);
    cs_avro_set_long(v, CS_CRM_SYSTEM_MODSTAMP, t);
    cs_avro_set_str(v, CS_CRM_EXTERNAL_ID,
                    json_string_value(json_object_get(r, "Crmsync_Prospect_Id__c")));
    cs_avro_set_long(v, CS_CRM_EVENT_TIME, cs_wall_ms());
    send_rec(T_CRM, *key ? key : NULL, v);
}

static void send_control(int cmd, const char *key)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_CONTROL);
    char id[64];
    snprintf(id, sizeof(id), "ctl-%" PRId64, cs_wall_ms());
    cs_avro_set_str(v, CS_CTL_COMMAND_ID, id);
    cs_avro_set_enum(v, CS_CTL_COMMAND, cmd);
    if (key)
        cs_avro_array_add_str(v, CS_CTL_PROSPECT_KEYS, key);
    cs_avro_set_long(v, CS_CTL_ISSUED_AT, cs_wall_ms());
    cs_avro_set_str(v, CS_CTL_ISSUED_BY, "test");
    send_rec(T_CONTROL, NULL, v);
}

/* ---------------------------------------------------------------- consumer */

typedef struct consumer_s {
    cs_tproc_t proc;
    int port;
} consumer_t;

static char conf_path[256];

static void write_conf(const char *extra)
{
    FILE *f;
    snprintf(conf_path, sizeof(conf_path), "/tmp/crmsync-e2e-%d-%d.conf", (int)getpid(), scenario);
    f = fopen(conf_path, "w");
    REQUIRE(f);
    fprintf(f, "kafka.bootstrap.servers=%s\n", bootstrap);
    for (int t = 0; t < 7; t++)
        fprintf(f, "%s=%s\n", topic_keys[t], topics[t]);
    fprintf(f,
            "topics.partitions=%d\ngroup.id=%s\ncrm.login_url=%s\nmkt.base_url=%s\n"
            "crm.client_id=%s\ncrm.client_secret=%s\nmkt.business_unit_id=%s\n"
            "batch.linger.ms=100\ncommit.interval.ms=200\nhttp.port=0\n"
            "users.map=%" PRId64 ":%s,%" PRId64 ":%s\n%s\n",
            NPARTS, group, sb.url, sb.url, CS_TSANDBOX_CLIENT_ID, CS_TSANDBOX_CLIENT_SECRET,
            CS_TSANDBOX_BU_ID, mkt_users[0], crm_users[0], mkt_users[1], crm_users[1],
            extra ? extra : "");
    fclose(f);
}

static void start_consumer(consumer_t *c, int n)
{
    char log[256];
    const char *args[] = {"--config", conf_path, NULL};
    snprintf(log, sizeof(log), "/tmp/crmsync-e2e-%d-%d-%d.log", (int)getpid(), scenario, n);
    unlink(log);
    REQUIRE(cs_tproc_start(&c->proc, "sync-consumer", args, log) == 0);
    c->port = 0;
    for (int i = 0; i < 200 && !c->port; i++) {
        FILE *f = fopen(log, "r");
        char line[1024];
        while (f && fgets(line, sizeof(line), f)) {
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

/* Sum of a metric (all label sets) from a consumer's /metrics; -1 when unreachable. */
static double metric(consumer_t *c, const char *name, const char *label)
{
    char url[128];
    int status = 0;
    double sum = 0;
    cs_tsandbox_t fake = sb;
    (void)url;
    snprintf(fake.url, sizeof(fake.url), "http://127.0.0.1:%d", c->port);
    cs_http_opts_t o;
    memset(&o, 0, sizeof(o));
    cs_http_t *h = cs_http_new(&o, NULL, 0);
    cs_http_result_t res;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", c->port);
    if (!h || cs_http_request(h, "GET", url, NULL, NULL, 0, &res)) {
        cs_http_destroy(h);
        return -1;
    }
    status = res.status;
    for (const char *p = res.body; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        size_t nlen = strlen(name);
        if (len > nlen && !strncmp(p, name, nlen) && (p[nlen] == ' ' || p[nlen] == '{')) {
            char line[512];
            snprintf(line, sizeof(line), "%.*s", (int)len, p);
            if (!label || strstr(line, label)) {
                const char *sp = strrchr(line, ' ');
                if (sp)
                    sum += atof(sp + 1);
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    cs_http_destroy(h);
    return status == 200 ? sum : -1;
}

/* Waits until the replicas together consumed `events` input events and their queues are
 * empty (or only hold parked/retrying work when allow_queue), then a little longer. */
static int settle(consumer_t *cs, int n, double events, int allow_queue)
{
    int64_t deadline = cs_now_ms() + 30000;
    while (cs_now_ms() < deadline) {
        double consumed = 0, depth = 0;
        for (int i = 0; i < n; i++) {
            double c = metric(&cs[i], "crmsync_events_consumed_total", NULL);
            double d = metric(&cs[i], "crmsync_queue_depth", NULL);
            consumed += c < 0 ? 0 : c;
            depth += d < 0 ? 0 : d;
        }
        if (consumed >= events && (allow_queue || depth == 0)) {
            /* The gauges refresh every second: confirm on a fresh reading. */
            usleep(1200000);
            if (!allow_queue) {
                depth = 0;
                for (int i = 0; i < n; i++) {
                    double d = metric(&cs[i], "crmsync_queue_depth", NULL);
                    depth += d < 0 ? 0 : d;
                }
                if (depth > 0)
                    continue;
            }
            usleep(300000); /* let the last batch finish */
            return 0;
        }
        usleep(100000);
    }
    fprintf(stderr, "settle: timed out\n");
    return -1;
}

static void begin(const char *name, const char *extra_conf)
{
    scenario++;
    printf("--- scenario %d: %s\n", scenario, name);
    fflush(stdout);
    REQUIRE(cs_tsandbox_reset(&sb) == 0);
    cs_tsandbox_client_close(&api);
    REQUIRE(cs_tsandbox_client_init(&api, &sb) == 0);
    load_users();
    for (int t = 0; t < 7; t++)
        snprintf(topics[t], sizeof(topics[t]), "e2e%d.s%d.%s", (int)getpid(), scenario,
                 topic_keys[t] + (t < 6 ? 6 : 6));
    snprintf(group, sizeof(group), "e2e-%d-%d", (int)getpid(), scenario);
    cs_topic_spec_t specs[7];
    static const char *compact[] = {"cleanup.policy", "compact", NULL};
    for (int t = 0; t < 7; t++) {
        specs[t].name = topics[t];
        specs[t].partitions = (t == T_CONTROL || t == 6) ? 1 : NPARTS;
        specs[t].replication_factor = 1;
        specs[t].configs = t == T_STATE ? compact : NULL;
    }
    char err[512];
    REQUIRE(cs_kafka_ensure_topics(kconf, specs, 7, 15000, err, sizeof(err)) == CS_OK);
    write_conf(extra_conf);
}

static int end(consumer_t *c, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        int st = cs_tproc_stop(&c[i].proc, 20000);
        if (st != 0) {
            fprintf(stderr, "consumer %d exited with %d (log %s)\n", i, st, c[i].proc.log);
            rc = -1;
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- scenarios */

static void s_passive_activities(void)
{
    consumer_t c;
    begin("passive activities write nothing", NULL);
    start_consumer(&c, 0);
    long long before = stat_of("crm", "api_calls");
    send_activity("passive@x.example", CS_ACTIVITY_EMAIL_OPEN, 1);
    send_activity("passive@x.example", CS_ACTIVITY_EMAIL_SEND, 1);
    send_activity("passive@x.example", CS_ACTIVITY_PAGE_VIEW, 0);
    send_activity("passive@x.example", CS_ACTIVITY_VISITOR_SESSION, 1);
    flush_events();
    CHECK_INT(settle(&c, 1, 4, 0), 0);
    CHECK_INT(stat_of("crm", "api_calls") - before, 0);
    CHECK_INT(metric(&c, "crmsync_events_total", "outcome=\"ignored\""), 4);
    CHECK_INT(end(&c, 1), 0);
}

static void s_unassigned_unmatched(void)
{
    consumer_t c;
    begin("intent activity, unassigned and unmatched: no write, explained", NULL);
    start_consumer(&c, 0);
    pc_t p = {"lonely@x.example", 501, "Lo", "Nely", NULL, -1, 0, CS_CAUSE_CREATED, 0};
    send_prospect(&p);
    send_activity("lonely@x.example", CS_ACTIVITY_FORM, 1);
    flush_events();
    CHECK_INT(settle(&c, 1, 2, 0), 0);
    CHECK_INT(stat_of("crm", "records_created") + stat_of("crm", "records_updated"), 0);
    CHECK(cs_tproc_log_count(&c.proc, "lonely@x.example waits: unassigned") >= 1);
    CHECK_INT(end(&c, 1), 0);
}

static void s_contact_before_lead(void)
{
    consumer_t c;
    char lead[19], contact[19];
    begin("contact and lead match: the contact is updated", NULL);
    crm_create("Lead", "both@x.example", "Old", "Lead", lead);
    crm_create("Contact", "both@x.example", "Old", "Contact", contact);
    long long created0 = stat_of("crm", "records_created");
    start_consumer(&c, 0);
    pc_t p = {"both@x.example", 502, "New", "Name", NULL, -1, 0, CS_CAUSE_FIELD_CHANGE, 0};
    send_prospect(&p);
    flush_events();
    CHECK_INT(settle(&c, 1, 1, 0), 0);
    json_t *cs = crm_records("Contact", "both@x.example"),
           *ls = crm_records("Lead", "both@x.example");
    CHECK_STR(json_string_value(json_object_get(json_array_get(cs, 0), "FirstName")), "New");
    CHECK_STR(json_string_value(json_object_get(json_array_get(ls, 0), "FirstName")), "Old");
    CHECK_INT(stat_of("crm", "records_created"), created0);
    json_decref(cs);
    json_decref(ls);
    CHECK_INT(end(&c, 1), 0);
}

/* make chaos --large: the CRM producer published a seeded lead a second before the contact
 * with the same email, and the first push went to the lead. A lead known only from the CRM
 * stream is matched again before the first write: the contact wins. */
static void s_lead_read_before_contact(void)
{
    consumer_t c;
    char lead[19], contact[19];
    begin("a lead read from the CRM stream first, a contact exists: the contact is updated", NULL);
    crm_create("Lead", "first@x.example", "Old", "Lead", lead);
    crm_create("Contact", "first@x.example", "Old", "Contact", contact);
    json_t *ls = crm_records("Lead", "first@x.example");
    start_consumer(&c, 0);
    send_crm_record(json_array_get(ls, 0), "Lead"); /* the contact's event is not read yet */
    json_decref(ls);
    pc_t p = {"first@x.example", 510, "New", "Name", NULL, -1, 0, CS_CAUSE_FIELD_CHANGE, 0};
    send_prospect(&p);
    flush_events();
    CHECK_INT(settle(&c, 1, 2, 0), 0);
    json_t *cs = crm_records("Contact", "first@x.example");
    ls = crm_records("Lead", "first@x.example");
    CHECK_STR(json_string_value(json_object_get(json_array_get(cs, 0), "FirstName")), "New");
    CHECK_STR(json_string_value(json_object_get(json_array_get(cs, 0), "Crmsync_Prospect_Id__c")),
              "510");
    CHECK_STR(json_string_value(json_object_get(json_array_get(ls, 0), "FirstName")), "Old");
    CHECK(!json_string_value(json_object_get(json_array_get(ls, 0), "Crmsync_Prospect_Id__c")));
    json_decref(cs);
    json_decref(ls);
    CHECK_INT(end(&c, 1), 0);
}

static void s_create_lead_owner(void)
{
    consumer_t c;
    begin("assigned and unmatched: one lead, mapped owner or connector user", NULL);
    start_consumer(&c, 0);
    pc_t a = {"mapped@x.example", 503, "Map", "Ped", "Initech", mkt_users[1], 0,
              CS_CAUSE_CREATED,   0};
    pc_t b = {"unmapped@x.example", 504, "Un", "Mapped", "Initech", mkt_users[2], 0,
              CS_CAUSE_CREATED,     0};
    send_prospect(&a);
    send_prospect(&b);
    send_prospect(&a); /* a duplicate of the same change */
    flush_events();
    CHECK_INT(settle(&c, 1, 3, 0), 0);
    json_t *la = crm_records("Lead", "mapped@x.example"),
           *lb = crm_records("Lead", "unmapped@x.example");
    CHECK_INT(json_array_size(la), 1);
    CHECK_INT(json_array_size(lb), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(la, 0), "OwnerId")), crm_users[1]);
    CHECK_STR(json_string_value(json_object_get(json_array_get(lb, 0), "OwnerId")),
              integration_user);
    CHECK_STR(json_string_value(json_object_get(json_array_get(la, 0), "Crmsync_Prospect_Id__c")),
              "503");
    CHECK_STR(json_string_value(json_object_get(json_array_get(la, 0), "Company")), "Initech");
    CHECK_STR(json_string_value(json_object_get(json_array_get(la, 0), "Crmsync_Score__c")),
              "1234");
    json_decref(la);
    json_decref(lb);
    CHECK_INT(end(&c, 1), 0);
}

static void s_do_not_sync(void)
{
    consumer_t c;
    char lead[19];
    begin("do-not-sync blocks everything, sync-now included", NULL);
    crm_create("Lead", "dns@x.example", "Dee", "Ns", lead);
    long long upd0 = stat_of("crm", "records_updated");
    start_consumer(&c, 0);
    pc_t p = {"dns@x.example",       505, "Changed", "Ns", NULL, mkt_users[0], 1,
              CS_CAUSE_FIELD_CHANGE, 0};
    send_prospect(&p);
    p.cause = CS_CAUSE_SYNC_NOW;
    p.first = "Again";
    send_prospect(&p);
    flush_events();
    /* the activity after the snapshot has been read (topics are read in no common order: an
     * activity read first would meet a prospect not yet marked do-not-sync) */
    for (int i = 0; i < 300 && metric(&c, "crmsync_events_consumed_total", NULL) < 2; i++)
        usleep(100000);
    send_activity("dns@x.example", CS_ACTIVITY_FORM, 1);
    flush_events();
    send_control(CS_COMMAND_SYNC_NOW, "dns@x.example");
    flush_events();
    CHECK_INT(settle(&c, 1, 3, 0), 0);
    usleep(500000);
    CHECK_INT(stat_of("crm", "records_updated") - upd0, 0);
    CHECK_INT(metric(&c, "crmsync_events_total", "outcome=\"blocked\""), 3);
    CHECK_INT(end(&c, 1), 0);
}

static void s_burst_one_write(void)
{
    consumer_t c;
    char lead[19];
    begin("100 events on one prospect in a burst: one write", NULL);
    crm_create("Lead", "burst@x.example", "B", "Urst", lead);
    long long upd0 = stat_of("crm", "records_updated");
    long long calls0 = endpoint_calls("crm", "PATCH /composite/sobjects");
    start_consumer(&c, 0);
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "Burst%d", i);
        pc_t p = {"burst@x.example",     506, name, "Urst", NULL, mkt_users[0], 0,
                  CS_CAUSE_FIELD_CHANGE, 0};
        send_prospect(&p);
    }
    flush_events();
    CHECK_INT(settle(&c, 1, 100, 0), 0);
    CHECK_INT(stat_of("crm", "records_updated") - upd0, 1);
    CHECK_INT(endpoint_calls("crm", "PATCH /composite/sobjects") - calls0, 1);
    json_t *ls = crm_records("Lead", "burst@x.example");
    CHECK_STR(json_string_value(json_object_get(json_array_get(ls, 0), "FirstName")), "Burst99");
    json_decref(ls);
    CHECK_INT(end(&c, 1), 0);
}

static void s_import_600(void)
{
    consumer_t c;
    char email[64];
    begin("import of 600 prospects: 3 batches, a handful of calls each", NULL);
    long long calls0 = stat_of("crm", "api_calls");
    start_consumer(&c, 0);
    int64_t t = tick();
    for (int i = 0; i < 600; i++) {
        snprintf(email, sizeof(email), "imp%03d@x.example", i);
        pc_t p = {email, 1000 + i, "Imp", "Orted", NULL, mkt_users[0], 0, CS_CAUSE_IMPORT, t};
        send_prospect(&p);
    }
    flush_events();
    CHECK_INT(settle(&c, 1, 600, 0), 0);
    CHECK_INT(stat_of("crm", "records_created"), 600);
    long long calls = stat_of("crm", "api_calls") - calls0;
    double batches = metric(&c, "crmsync_batches_total", "direction=\"crm\"");
    printf("import: %lld CRM calls, %.0f batch calls, %.1f calls per 200 records\n", calls, batches,
           calls / 3.0);
    CHECK(calls >= 3 && calls <= 3 * 3 + 2); /* match + upsert per batch (+ token) */
    CHECK(batches >= 3 && batches <= 4);
    CHECK_INT(end(&c, 1), 0);
}

static void s_crm_to_marketing_quiescence(void)
{
    consumer_t c;
    char lead[19];
    begin("CRM edit reaches the prospect; nothing bounces back", NULL);
    int64_t pid = mkt_create("quiet@x.example", "Qu", "Iet");
    crm_create("Lead", "quiet@x.example", "Qu", "Iet", lead);
    start_consumer(&c, 0);
    pc_t p = {"quiet@x.example", pid, "Qu", "Iet", NULL, mkt_users[0], 0, CS_CAUSE_CREATED, 0};
    send_prospect(&p); /* links through the match, no change to push but the first sync */
    flush_events();
    CHECK_INT(settle(&c, 1, 1, 0), 0);
    /* a person edits the lead */
    char body[256];
    snprintf(body, sizeof(body),
             "{\"type\":\"Lead\",\"id\":\"%s\",\"fields\":{\"FirstName\":\"Quentin\"}}", lead);
    json_decref(admin("POST", "crm/edit", body));
    json_t *ls = crm_records("Lead", "quiet@x.example");
    send_crm_record(json_array_get(ls, 0), "Lead");
    json_decref(ls);
    flush_events();
    CHECK_INT(settle(&c, 1, 2, 0), 0);
    json_t *pr = prospect_record(pid);
    CHECK_STR(json_string_value(json_object_get(pr, "firstName")), "Quentin");
    json_decref(pr);
    long long crm_upd = stat_of("crm", "records_updated"),
              mkt_upd = stat_of("marketing", "records_updated");
    /* the echoes: marketing's new snapshot, the CRM record again */
    pc_t echo = {"quiet@x.example",     pid, "Quentin", "Iet", NULL, mkt_users[0], 0,
                 CS_CAUSE_FIELD_CHANGE, 0};
    send_prospect(&echo);
    ls = crm_records("Lead", "quiet@x.example");
    send_crm_record(json_array_get(ls, 0), "Lead");
    json_decref(ls);
    flush_events();
    CHECK_INT(settle(&c, 1, 4, 0), 0);
    CHECK_INT(stat_of("crm", "records_updated") - crm_upd, 0);
    CHECK_INT(stat_of("marketing", "records_updated") - mkt_upd, 0);
    CHECK_INT(end(&c, 1), 0);
}

static json_t *crm_record_by_id(const char *type, const char *id)
{
    json_t *snap = admin("GET", "snapshot", NULL), *r, *out = NULL;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), type), i, r)
    {
        const char *rid = json_string_value(json_object_get(r, "Id"));
        if (rid && !strcmp(rid, id))
            out = json_incref(r);
    }
    json_decref(snap);
    return out;
}

static void email_change(int enabled)
{
    consumer_t c;
    char email[64], newemail[64], body[256];
    begin(enabled ? "a CRM email change is applied when enabled"
                  : "a CRM email change is ignored by default",
          enabled ? "sync.email_changes=true" : NULL);
    snprintf(email, sizeof(email), "mail%d@x.example", enabled);
    snprintf(newemail, sizeof(newemail), "mail%d-new@x.example", enabled);
    int64_t pid = mkt_create(email, "Ma", "Il");
    start_consumer(&c, 0);
    pc_t p = {email, pid, "Ma", "Il", NULL, mkt_users[0], 0, CS_CAUSE_CREATED, 0};
    send_prospect(&p); /* creates the lead, stamped with the prospect id */
    flush_events();
    CHECK_INT(settle(&c, 1, 1, 0), 0);
    json_t *ls = crm_records("Lead", email);
    REQUIRE(json_array_size(ls) == 1);
    char lead[19];
    snprintf(lead, sizeof(lead), "%s",
             json_string_value(json_object_get(json_array_get(ls, 0), "Id")));
    json_decref(ls);
    snprintf(body, sizeof(body), "{\"type\":\"Lead\",\"id\":\"%s\",\"fields\":{\"Email\":\"%s\"}}",
             lead, newemail);
    json_decref(admin("POST", "crm/edit", body));
    json_t *r = crm_record_by_id("Lead", lead);
    REQUIRE(r);
    long long mkt0 = stat_of("marketing", "records_updated");
    send_crm_record(r, "Lead"); /* keyed by the new email, as the CRM producer does */
    json_decref(r);
    flush_events();
    CHECK_INT(settle(&c, 1, 2, 0), 0);
    json_t *pr = prospect_record(pid);
    CHECK_STR(json_string_value(json_object_get(pr, "email")), enabled ? newemail : email);
    CHECK_INT(stat_of("marketing", "records_updated") - mkt0, enabled ? 1 : 0);
    json_decref(pr);
    CHECK_INT(end(&c, 1), 0);
}

static void s_email_change(void)
{
    email_change(0);
    email_change(1);
}

static void s_no_email_then_email(void)
{
    consumer_t c;
    char lead[19];
    begin("a CRM record without email waits, then syncs once it has one",
          "sync.auto_create_prospects=true");
    start_consumer(&c, 0);
    crm_create("Lead", "", "No", "Mail", lead);
    json_t *snap = admin("GET", "snapshot", NULL), *r, *rec = NULL;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), "Lead"), i, r)
    {
        if (!strcmp(json_string_value(json_object_get(r, "Id")), lead))
            rec = json_deep_copy(r);
    }
    json_decref(snap);
    REQUIRE(rec);
    json_object_set_new(rec, "Email", json_null());
    long long mkt0 = stat_of("marketing", "records_created");
    send_crm_record(rec, "Lead");
    flush_events();
    CHECK_INT(settle(&c, 1, 1, 0), 0);
    CHECK_INT(stat_of("marketing", "records_created") - mkt0, 0);
    CHECK_INT(metric(&c, "crmsync_events_total", "outcome=\"waiting\""), 1);
    json_object_set_new(rec, "Email", json_string("found@x.example"));
    send_crm_record(rec, "Lead");
    flush_events();
    CHECK_INT(settle(&c, 1, 2, 0), 0);
    CHECK_INT(stat_of("marketing", "records_created") - mkt0, 1);
    json_decref(rec);
    CHECK_INT(end(&c, 1), 0);
}

static void s_pause_sync_now_unpause(void)
{
    consumer_t c;
    char l1[19], l2[19];
    begin("pause, then sync-now, then unpause", NULL);
    crm_create("Lead", "p1@x.example", "P", "One", l1);
    crm_create("Lead", "p2@x.example", "P", "Two", l2);
    long long upd0 = stat_of("crm", "records_updated");
    start_consumer(&c, 0);
    send_control(CS_COMMAND_PAUSE, NULL);
    flush_events();
    usleep(500000);
    pc_t a = {"p1@x.example",        601, "Paused", "One", NULL, mkt_users[0], 0,
              CS_CAUSE_FIELD_CHANGE, 0};
    pc_t b = {"p2@x.example",        602, "Paused", "Two", NULL, mkt_users[0], 0,
              CS_CAUSE_FIELD_CHANGE, 0};
    send_prospect(&a);
    send_prospect(&b);
    flush_events();
    CHECK_INT(settle(&c, 1, 2, 1), 0);
    CHECK_INT(stat_of("crm", "records_updated") - upd0, 0);
    CHECK_INT(metric(&c, "crmsync_queue_depth", NULL), 2);
    a.cause = CS_CAUSE_SYNC_NOW; /* a marketer presses "sync now" on p1 */
    a.first = "Now";
    send_prospect(&a);
    flush_events();
    CHECK_INT(settle(&c, 1, 3, 1), 0);
    CHECK_INT(stat_of("crm", "records_updated") - upd0, 1);
    CHECK_INT(metric(&c, "crmsync_queue_depth", NULL), 1);
    send_control(CS_COMMAND_UNPAUSE, NULL);
    flush_events();
    CHECK_INT(settle(&c, 1, 3, 0), 0);
    CHECK_INT(stat_of("crm", "records_updated") - upd0, 2);
    CHECK_INT(end(&c, 1), 0);
}

static void s_record_error_retry(void)
{
    consumer_t c;
    char lead[19];
    begin("per-record error, then the retry succeeds", NULL);
    crm_create("Lead", "locked@x.example", "Lo", "Cked", lead);
    start_consumer(&c, 0);
    REQUIRE(cs_tsandbox_knobs(&sb, "{\"crm.lock_row_rate\": 1}") == 0);
    pc_t p = {"locked@x.example",    701, "Unlocked", "Cked", NULL, mkt_users[0], 0,
              CS_CAUSE_FIELD_CHANGE, 0};
    send_prospect(&p);
    flush_events();
    int64_t deadline = cs_now_ms() + 15000;
    while (metric(&c, "crmsync_record_errors_total", NULL) < 1 && cs_now_ms() < deadline)
        usleep(100000);
    CHECK(metric(&c, "crmsync_record_errors_total", NULL) >= 1);
    REQUIRE(cs_tsandbox_knobs(&sb, "{\"crm.lock_row_rate\": 0}") == 0);
    CHECK_INT(settle(&c, 1, 1, 0), 0);
    json_t *ls = crm_records("Lead", "locked@x.example");
    CHECK_STR(json_string_value(json_object_get(json_array_get(ls, 0), "FirstName")), "Unlocked");
    json_decref(ls);
    CHECK_INT(end(&c, 1), 0);
}

static void s_storms(void)
{
    consumer_t c;
    char email[64], leads[20][19], name[32];
    int64_t pids[20];
    begin("rate-limit, 503 and expired-token storms recover with nothing lost", NULL);
    for (int i = 0; i < 20; i++) {
        snprintf(email, sizeof(email), "back%02d@x.example", i);
        pids[i] = mkt_create(email, "Back", "Ward");
        crm_create("Lead", email, "Back", "Ward", leads[i]);
    }
    start_consumer(&c, 0);
    for (int i = 0; i < 20; i++) { /* link every prospect first */
        snprintf(email, sizeof(email), "back%02d@x.example", i);
        pc_t p = {email, pids[i], "Back", "Ward", NULL, mkt_users[0], 0, CS_CAUSE_CREATED, 0};
        send_prospect(&p);
    }
    flush_events();
    CHECK_INT(settle(&c, 1, 20, 0), 0);
    REQUIRE(cs_tsandbox_knobs(
                &sb, "{\"crm.error_rate\": 0.5, \"crm.burst_limit_errors\": 3, "
                     "\"marketing.error_rate\": 0.3, "
                     "\"marketing.burst_limit_errors\": 3, \"auth.token_ttl_s\": 1}") == 0);
    for (int i = 0; i < 300; i++) {
        snprintf(email, sizeof(email), "storm%03d@x.example", i);
        pc_t p = {email, 2000 + i, "Storm", "Y", NULL, mkt_users[0], 0, CS_CAUSE_CREATED, 0};
        send_prospect(&p);
    }
    for (int i = 0; i < 20; i++) { /* and CRM edits going the other way */
        json_t *r = crm_record_by_id("Lead", leads[i]);
        snprintf(name, sizeof(name), "Stormy%d", i);
        json_object_set_new(r, "FirstName", json_string(name));
        send_crm_record(r, "Lead");
        json_decref(r);
    }
    flush_events();
    usleep(4000000);
    REQUIRE(cs_tsandbox_knobs(
                &sb, "{\"crm.error_rate\": 0, \"crm.burst_limit_errors\": 0, "
                     "\"marketing.error_rate\": 0, "
                     "\"marketing.burst_limit_errors\": 0, \"auth.token_ttl_s\": 7200}") == 0);
    CHECK_INT(settle(&c, 1, 340, 0), 0);
    CHECK_INT(stat_of("crm", "records_created"), 320); /* 20 seeded + 300 */
    int renamed = 0;
    for (int i = 0; i < 20; i++) {
        json_t *pr = prospect_record(pids[i]);
        snprintf(name, sizeof(name), "Stormy%d", i);
        const char *fn = json_string_value(json_object_get(pr, "firstName"));
        renamed += fn && !strcmp(fn, name);
        json_decref(pr);
    }
    CHECK_INT(renamed, 20);
    CHECK(metric(&c, "crmsync_batch_retries_total", NULL) >= 1);
    json_t *st = admin("GET", "stats", NULL);
    json_t *refused = json_object_get(json_object_get(st, "crm"), "refused");
    CHECK(json_integer_value(json_object_get(refused, "503")) > 0);
    CHECK(json_integer_value(json_object_get(refused, "REQUEST_LIMIT_EXCEEDED")) > 0);
    json_decref(st);
    CHECK_INT(end(&c, 1), 0);
}

static void s_deleted_lead(void)
{
    consumer_t c;
    char path[128];
    int status = 0;
    begin("a linked lead deleted in the CRM is matched again and re-created", NULL);
    int64_t pid = mkt_create("gone@x.example", "Go", "Ne");
    start_consumer(&c, 0);
    pc_t p = {"gone@x.example", pid, "Go", "Ne", NULL, mkt_users[0], 0, CS_CAUSE_CREATED, 0};
    send_prospect(&p);
    flush_events();
    CHECK_INT(settle(&c, 1, 1, 0), 0);
    json_t *ls = crm_records("Lead", "gone@x.example");
    REQUIRE(json_array_size(ls) == 1);
    snprintf(path, sizeof(path), CS_TSANDBOX_DATA "/sobjects/Lead/%s",
             json_string_value(json_object_get(json_array_get(ls, 0), "Id")));
    json_decref(ls);
    cs_tsandbox_req(&api, "DELETE", path, NULL, &status);
    CHECK_INT(status, 204);
    p.first = "Back";
    send_prospect(&p);
    flush_events();
    CHECK_INT(settle(&c, 1, 2, 0), 0);
    json_t *snap = admin("GET", "snapshot", NULL), *r;
    size_t i;
    int live = 0;
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), "Lead"), i, r)
    {
        const char *e = json_string_value(json_object_get(r, "Email"));
        if (e && !strcmp(e, "gone@x.example") && !json_is_true(json_object_get(r, "IsDeleted")))
            live++;
    }
    json_decref(snap);
    CHECK_INT(live, 1);
    CHECK_INT(end(&c, 1), 0);
}

static void s_replicas_and_kill(void)
{
    consumer_t c[2];
    char email[64];
    begin("two replicas share partitions; one killed with SIGKILL loses nothing", NULL);
    start_consumer(&c[0], 0);
    start_consumer(&c[1], 1);
    /* both in the group: each replica's /status lists the partitions it owns */
    for (int64_t deadline = cs_now_ms() + 30000; cs_now_ms() < deadline; usleep(200000)) {
        int ready = 0;
        for (int i = 0; i < 2; i++) {
            char url[96];
            cs_http_opts_t o;
            cs_http_result_t res;
            memset(&o, 0, sizeof(o));
            cs_http_t *h = cs_http_new(&o, NULL, 0);
            snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", c[i].port);
            if (h && !cs_http_request(h, "GET", url, NULL, NULL, 0, &res))
                ready +=
                    json_array_size(json_object_get(cs_http_result_json(&res), "partitions")) > 0;
            cs_http_destroy(h);
        }
        if (ready == 2)
            break;
    }
    for (int i = 0; i < 200; i++) {
        snprintf(email, sizeof(email), "rep%03d@x.example", i);
        pc_t p = {email, 3000 + i, "Rep", "A", NULL, mkt_users[0], 0, CS_CAUSE_CREATED, 0};
        send_prospect(&p);
    }
    flush_events();
    CHECK_INT(settle(c, 2, 200, 0), 0);
    CHECK(metric(&c[0], "crmsync_events_consumed_total", NULL) > 0);
    CHECK(metric(&c[1], "crmsync_events_consumed_total", NULL) > 0);
    CHECK_INT(stat_of("crm", "records_created"), 200);
    /* second wave; kill replica 1 in the middle of it */
    REQUIRE(cs_tsandbox_knobs(&sb, "{\"crm.latency_ms\": 300}") == 0);
    for (int i = 0; i < 200; i++) {
        snprintf(email, sizeof(email), "rep%03d@x.example", i);
        pc_t p = {email, 3000 + i, "Rep", "B", NULL, mkt_users[0], 0, CS_CAUSE_FIELD_CHANGE, 0};
        send_prospect(&p);
    }
    flush_events();
    usleep(400000);
    cs_tproc_kill(&c[1].proc);
    REQUIRE(cs_tsandbox_knobs(&sb, "{\"crm.latency_ms\": 0}") == 0);
    /* the survivor takes the partitions over, restores their state and finishes */
    int64_t deadline = cs_now_ms() + 45000;
    int done = 0;
    while (cs_now_ms() < deadline && !done) {
        json_t *snap = admin("GET", "snapshot", NULL), *r;
        size_t i;
        int b = 0;
        json_array_foreach(json_object_get(json_object_get(snap, "crm"), "Lead"), i, r)
        {
            const char *ln = json_string_value(json_object_get(r, "LastName"));
            if (ln && !strcmp(ln, "B"))
                b++;
        }
        json_decref(snap);
        done = b == 200;
        if (!done)
            usleep(250000);
    }
    CHECK(done);
    CHECK_INT(stat_of("crm", "records_created"), 200); /* no second lead for anyone */
    CHECK_INT(end(c, 1), 0);
}

static void s_replay_zero_writes(void)
{
    consumer_t c;
    char email[64], lead[19];
    begin("replay from the start after quiescence writes nothing", NULL);
    crm_create("Contact", "rp-contact@x.example", "Re", "Play", lead);
    int64_t pid = mkt_create("rp-contact@x.example", "Re", "Play");
    start_consumer(&c, 0);
    int events = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(email, sizeof(email), "rp%03d@x.example", i);
        pc_t p = {email, 4000 + i, "Re", "Play", NULL, mkt_users[0], 0, CS_CAUSE_IMPORT, 0};
        send_prospect(&p);
        send_activity(email, CS_ACTIVITY_FORM, 1);
        events += 2;
    }
    pc_t q = {"rp-contact@x.example", pid, "Re", "Play", NULL, mkt_users[0], 0,
              CS_CAUSE_FIELD_CHANGE,  0};
    send_prospect(&q);
    json_t *cs = crm_records("Contact", "rp-contact@x.example");
    json_object_set_new(json_array_get(cs, 0), "FirstName", json_string("Replayed"));
    send_crm_record(json_array_get(cs, 0), "Contact");
    json_decref(cs);
    events += 2;
    flush_events();
    CHECK_INT(settle(&c, 1, events, 0), 0);
    CHECK_INT(end(&c, 1), 0);
    long long crm_w = stat_of("crm", "records_created") + stat_of("crm", "records_updated");
    long long mkt_w =
        stat_of("marketing", "records_created") + stat_of("marketing", "records_updated");
    CHECK(crm_w >= 51);
    /* a new group over the same topics = a rewind to the start; state comes from the log */
    snprintf(group, sizeof(group), "e2e-%d-%d-replay", (int)getpid(), scenario);
    write_conf(NULL);
    start_consumer(&c, 1);
    CHECK_INT(settle(&c, 1, events, 0), 0);
    CHECK_INT(stat_of("crm", "records_created") + stat_of("crm", "records_updated") - crm_w, 0);
    CHECK_INT(stat_of("marketing", "records_created") + stat_of("marketing", "records_updated") -
                  mkt_w,
              0);
    CHECK_INT(metric(&c, "crmsync_events_total", "outcome=\"deduplicated\""), events);
    CHECK_INT(end(&c, 1), 0);
}

int main(int argc, char **argv)
{
    char err[512];
    const char *only = argc > 1 ? argv[1] : NULL;
    bootstrap = cs_test_env("CRMSYNC_BOOTSTRAP", "127.0.0.1:19092");
    REQUIRE(cs_tsandbox_start(&sb, NULL, err, sizeof(err)) == 0);
    REQUIRE(cs_tsandbox_client_init(&api, &sb) == 0);
    reg = cs_avro_registry_new(err, sizeof(err));
    REQUIRE(reg);
    enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    kconf = cs_conf_new("e2e", "e2e", NULL);
    REQUIRE(enc && kconf);
    REQUIRE(cs_conf_set(kconf, "kafka.bootstrap.servers", bootstrap, err, sizeof(err)) == CS_OK);
    prod = cs_producer_new(kconf, NULL, NULL, err, sizeof(err));
    REQUIRE(prod);

    struct {
        const char *name;
        void (*fn)(void);
    } all[] = {
        {"passive", s_passive_activities},
        {"unassigned", s_unassigned_unmatched},
        {"contact", s_contact_before_lead},
        {"leadfirst", s_lead_read_before_contact},
        {"create", s_create_lead_owner},
        {"dns", s_do_not_sync},
        {"burst", s_burst_one_write},
        {"import", s_import_600},
        {"quiescence", s_crm_to_marketing_quiescence},
        {"email", s_email_change},
        {"noemail", s_no_email_then_email},
        {"pause", s_pause_sync_now_unpause},
        {"error", s_record_error_retry},
        {"storms", s_storms},
        {"deleted", s_deleted_lead},
        {"replicas", s_replicas_and_kill},
        {"replay", s_replay_zero_writes},
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
        if (!only || !strcmp(only, all[i].name))
            all[i].fn();

    cs_producer_destroy(prod);
    cs_avro_encoder_destroy(enc);
    cs_avro_registry_destroy(reg);
    cs_conf_destroy(kconf);
    cs_tsandbox_client_close(&api);
    CHECK_INT(cs_tsandbox_stop(&sb), 0);
    return cs_test_report();
}
