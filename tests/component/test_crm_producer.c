/* Component: crmsync-crm-producer against the sandbox and the real local broker.
 *
 * Seeded leads and contacts arrive as CrmChange records keyed by the normalised e-mail on
 * Kafka's default partition for that key (a lead without an e-mail: prospect_key "" and no
 * Kafka key); a user's edit, a system edit, two edits in one second and an e-mail added later
 * arrive; a deleted lead arrives as deleted=true (Get Deleted, minute windows); after a
 * SIGKILL it resumes from its durable cursors without losing a change and without
 * republishing anything older than the overlap window; 503s, 403 REQUEST_LIMIT_EXCEEDED and
 * expired tokens are survived; SIGTERM exits 0 after a clean drain. */
#include "cs_err.h"
#include "cs_run.h"
#include "cs_test.h"
#include "cs_time.h"
#include "testutil_proc.h"
#include "testutil_producer.h"
#include "testutil_sandbox.h"

#include <jansson.h>
#include <unistd.h>

#define NLEADS 8
#define NCONTACTS 4
#define OVERLAP_MS 2000

static cs_tsandbox_t sb;
static cs_tsandbox_client_t cl;
static char integration_user[19], editor_user[19];

typedef struct rec_s {
    char id[19];
    char key[64];
    int64_t modstamp;
} rec_t;

static rec_t leads[NLEADS + 8], contacts[NCONTACTS + 4], nomail;

/* ---------------------------------------------------------------- sandbox helpers */

static int64_t modstamp_of(const char *type, const char *id)
{
    char path[160];
    int status = 0;
    int64_t ms = -1;
    snprintf(path, sizeof(path), CS_TSANDBOX_DATA "/sobjects/%s/%s", type, id);
    json_t *r = cs_tsandbox_req(&cl, "GET", path, NULL, &status);
    if (status == 200)
        cs_time_parse_iso8601(json_string_value(json_object_get(r, "SystemModstamp")), &ms);
    return ms;
}

/* Creates through the REST API (as the integration user). 0 or -1. */
static int create(const char *type, const char *fields, rec_t *out)
{
    char path[128];
    int status = 0;
    snprintf(path, sizeof(path), CS_TSANDBOX_DATA "/sobjects/%s", type);
    for (int attempt = 0; attempt < 20; attempt++) {
        json_t *r = cs_tsandbox_req(&cl, "POST", path, fields, &status);
        if (status == 201 && json_is_string(json_object_get(r, "id"))) {
            snprintf(out->id, sizeof(out->id), "%s", json_string_value(json_object_get(r, "id")));
            out->modstamp = modstamp_of(type, out->id);
            return 0;
        }
        usleep(100 * 1000); /* a fault knob may be on: retry */
    }
    fprintf(stderr, "create %s: HTTP %d %s\n", type, status, cl.res.body);
    return -1;
}

/* A person's (or, with system, an automated process's) edit, through the admin endpoint: no
 * API call, no knobs. 0 or -1. */
static int edit(const char *type, const char *id, const char *fields, int system)
{
    char body[1024];
    int status = 0;
    snprintf(body, sizeof(body), "{\"type\": \"%s\", \"id\": \"%s\", \"fields\": %s%s}", type, id,
             fields, system ? ", \"system\": true" : "");
    json_t *r = cs_tsandbox_admin(&sb, "POST", "crm/edit", body, &status);
    json_decref(r);
    return status == 200 ? 0 : -1;
}

/* ---------------------------------------------------------------- predicates */

static int have_crm_ids(cs_tprod_reader_t *r, void *opaque)
{
    const rec_t *const *want = opaque;
    for (size_t i = 0; want[i]; i++)
        if (!cs_tprod_last_by_crm_id(r, want[i]->id))
            return 0;
    return 1;
}

typedef struct {
    const char *crm_id, *title, *key;
    int deleted;
} want_t;

static int have_value(cs_tprod_reader_t *r, void *opaque)
{
    const want_t *w = opaque;
    const cs_tprod_msg_t *m = cs_tprod_last_by_crm_id(r, w->crm_id);
    return m && (!w->title || !strcmp(m->title, w->title)) &&
           (!w->key || !strcmp(m->prospect_key, w->key)) && m->deleted == w->deleted;
}

typedef struct {
    int from, to;
    const char *title;
} titles_t;

static int have_titles(cs_tprod_reader_t *r, void *opaque)
{
    const titles_t *t = opaque;
    for (int k = t->from; k < t->to; k++) {
        const cs_tprod_msg_t *m = cs_tprod_last_by_crm_id(r, leads[k].id);
        if (!m || strcmp(m->title, t->title))
            return 0;
    }
    return 1;
}

static int start_producer(cs_tproc_t *p, const cs_tprod_env_t *e, const char *log)
{
    const char *args[] = {"--config", e->conf_path, NULL};
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", e->dir, log);
    return cs_tproc_start(p, "crm-producer", args, path);
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

static int64_t max_modstamp(const cs_tprod_reader_t *r, int object)
{
    int64_t mx = -1;
    for (size_t i = 0; i < r->n; i++)
        if (r->msgs[i].object == object && !r->msgs[i].deleted && r->msgs[i].system_modstamp > mx)
            mx = r->msgs[i].system_modstamp;
    return mx;
}

/* ---------------------------------------------------------------- the test */

int main(void)
{
    cs_tprod_env_t e;
    cs_tprod_reader_t r;
    cs_tproc_t p;
    char err[512], fields[512], body[65536];
    int status;

    REQUIRE(cs_tsandbox_start(&sb, NULL, err, sizeof(err)) == 0);
    REQUIRE(cs_tsandbox_client_init(&cl, &sb) == 0);
    {
        json_t *info = cs_tsandbox_admin(&sb, "GET", "info", NULL, &status);
        REQUIRE(status == 200);
        snprintf(integration_user, sizeof(integration_user), "%s",
                 json_string_value(json_object_get(info, "integration_user_id")));
        snprintf(editor_user, sizeof(editor_user), "%s",
                 json_string_value(json_object_get(info, "editor_user_id")));
        json_decref(info);
    }
    REQUIRE(cs_tprod_env_init(&e, "crm", 3) == 0);
    REQUIRE(cs_tprod_write_config(&e, sb.url,
                                  "poll.interval.ms=200\n"
                                  "overlap.ms=2000\n"
                                  "fields.custom=emailDomain:Email_Domain__c\n"
                                  "shutdown.timeout.ms=5000\n") == 0);

    for (int i = 0; i < NLEADS; i++) {
        snprintf(fields, sizeof(fields),
                 "{\"LastName\": \"Lead%02d\", \"FirstName\": \"F%02d\", \"Company\": \"Acme\", "
                 "\"Email\": \"Lead%02d@Acme.COM\", \"Title\": \"T0\", \"HasOptedOutOfEmail\": "
                 "%s%s}",
                 i, i, i, i == 2 ? "true" : "false",
                 i == 1 ? ", \"Crmsync_Prospect_Id__c\": \"1001\"" : "");
        REQUIRE(create("Lead", fields, &leads[i]) == 0);
        snprintf(leads[i].key, sizeof(leads[i].key), "lead%02d@acme.com", i);
    }
    for (int i = 0; i < NCONTACTS; i++) {
        snprintf(fields, sizeof(fields),
                 "{\"LastName\": \"Contact%02d\", \"Email\": \"Contact%02d@Acme.com\"}", i, i);
        REQUIRE(create("Contact", fields, &contacts[i]) == 0);
        snprintf(contacts[i].key, sizeof(contacts[i].key), "contact%02d@acme.com", i);
    }
    REQUIRE(create("Lead", "{\"LastName\": \"NoMail\", \"Company\": \"Acme\"}", &nomail) == 0);

    REQUIRE(start_producer(&p, &e, "producer1.log") == 0);
    REQUIRE(cs_tprod_reader_init(&r, &e, e.topics[CS_TOPIC_CRM]) == 0);

    /* 1. everything seeded arrives once, decoded, keyed and partitioned as specified */
    const rec_t *all[NLEADS + NCONTACTS + 2];
    int n = 0;
    for (int i = 0; i < NLEADS; i++)
        all[n++] = &leads[i];
    for (int i = 0; i < NCONTACTS; i++)
        all[n++] = &contacts[i];
    all[n++] = &nomail;
    all[n] = NULL;
    CHECK(cs_tprod_reader_wait(&r, have_crm_ids, all, 30000));
    cs_tprod_reader_poll(&r, 800);
    CHECK_INT(r.n, NLEADS + NCONTACTS + 1);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const cs_tprod_msg_t *m = cs_tprod_last_by_crm_id(&r, all[i]->id);
        int is_lead = i < NLEADS || all[i] == &nomail;
        if (!m)
            continue;
        int good = m->schema == CS_AVRO_CRM_CHANGE && !m->deleted &&
                   m->object == (is_lead ? CS_OBJECT_LEAD : CS_OBJECT_CONTACT) &&
                   m->system_modstamp == all[i]->modstamp && m->last_modified_date > 0 &&
                   !strcmp(m->owner_id, integration_user) &&
                   !strcmp(m->last_modified_by, integration_user) && m->event_time > 0 &&
                   !strncmp(m->event_id, "crm:", 4);
        if (all[i] == &nomail) {
            good = good && !m->has_key && !strcmp(m->prospect_key, "") && m->email_null &&
                   !strcmp(m->company, "Acme");
        } else {
            good = good && m->has_key && !strcmp(m->key, all[i]->key) &&
                   !strcmp(m->prospect_key, all[i]->key) &&
                   m->partition == cs_tprod_murmur2_partition(m->key, strlen(m->key), 3) &&
                   m->ncustom == 1 && !strcmp(m->custom_key, "Email_Domain__c") &&
                   !strcasecmp(m->custom_value, "acme.com");
            good = good && (is_lead ? !strcmp(m->company, "Acme") && !strcmp(m->title, "T0")
                                    : !strcmp(m->company, ""));
        }
        if (all[i] == &leads[1])
            good = good && !strcmp(m->external_id, "1001");
        if (all[i] == &leads[2])
            good = good && m->opted_out;
        else
            good = good && !m->opted_out;
        if (!good)
            fprintf(stderr, "record %s: unexpected event (key \"%s\", object %d, owner %s)\n",
                    all[i]->id, m->key, m->object, m->owner_id);
        ok += good;
    }
    CHECK_INT(ok, n);

    /* a lead deleted now shows up after the next whole minute (Get Deleted's resolution) */
    {
        char path[160];
        snprintf(path, sizeof(path), CS_TSANDBOX_DATA "/sobjects/Lead/%s", leads[NLEADS - 1].id);
        cs_tsandbox_req(&cl, "DELETE", path, NULL, &status);
        CHECK_INT(status, 204);
    }

    /* 2. /healthz, /metrics */
    int port = wait_port(&p);
    CHECK(port > 0);
    CHECK_INT(cs_tprod_http_get(port, "/healthz", body, sizeof(body)), 200);
    CHECK(wait_metric(
              port, "crmsync_producer_events_total{producer=\"crm\",cursor=\"crm-producer:Lead\"}",
              NLEADS + 1, 5000) == NLEADS + 1);
    CHECK(wait_metric(port,
                      "crmsync_producer_events_total{producer=\"crm\",cursor=\"crm-producer:"
                      "Contact\"}",
                      NCONTACTS, 5000) == NCONTACTS);

    /* 3. changes while it runs: a person's edit, a system edit, an e-mail added later */
    usleep((OVERLAP_MS + 1200) * 1000); /* the seeds leave the overlap window */
    CHECK_INT(edit("Lead", leads[3].id, "{\"Title\": \"VP\"}", 0), 0);
    want_t w3 = {leads[3].id, "VP", NULL, 0};
    CHECK(cs_tprod_reader_wait(&r, have_value, &w3, 15000));
    const cs_tprod_msg_t *m3 = cs_tprod_last_by_crm_id(&r, leads[3].id);
    CHECK(m3 && !strcmp(m3->last_modified_by, editor_user)); /* not crmsync's own write */
    usleep(1100 * 1000);
    int64_t before_sys = modstamp_of("Lead", leads[4].id);
    CHECK_INT(edit("Lead", leads[4].id, "{\"Phone\": \"+1 555 0100\"}", 1), 0);
    int64_t after_sys = modstamp_of("Lead", leads[4].id);
    CHECK(after_sys > before_sys);
    {
        int64_t end = cs_now_ms() + 15000;
        const cs_tprod_msg_t *m4 = NULL;
        while (cs_now_ms() < end && (!(m4 = cs_tprod_last_by_crm_id(&r, leads[4].id)) ||
                                     m4->system_modstamp != after_sys))
            cs_tprod_reader_poll(&r, 300);
        CHECK(m4 && m4->system_modstamp == after_sys &&
              m4->last_modified_date < m4->system_modstamp); /* a system change */
    }
    CHECK_INT(edit("Lead", nomail.id, "{\"Email\": \"Late.Mail@Acme.com\"}", 0), 0);
    want_t wn = {nomail.id, NULL, "late.mail@acme.com", 0};
    CHECK(cs_tprod_reader_wait(&r, have_value, &wn, 15000));
    const cs_tprod_msg_t *mn = cs_tprod_last_by_crm_id(&r, nomail.id);
    CHECK(mn && mn->has_key && !strcmp(mn->key, "late.mail@acme.com"));

    /* two edits in one second, the producer polling between them */
    int same_second = 0;
    for (int attempt = 0; attempt < 6 && !same_second; attempt++) {
        char ta[32], tb[32], fa[64], fb[64];
        while (cs_wall_ms() % 1000 > 50)
            usleep(5000);
        snprintf(ta, sizeof(ta), "A%d", attempt);
        snprintf(tb, sizeof(tb), "B%d", attempt);
        snprintf(fa, sizeof(fa), "{\"Title\": \"%s\"}", ta);
        snprintf(fb, sizeof(fb), "{\"Title\": \"%s\"}", tb);
        if (edit("Lead", leads[5].id, fa, 0))
            break;
        int64_t ua = modstamp_of("Lead", leads[5].id);
        want_t wa = {leads[5].id, ta, NULL, 0};
        if (!cs_tprod_reader_wait(&r, have_value, &wa, 800))
            continue;
        if (edit("Lead", leads[5].id, fb, 0))
            break;
        if (modstamp_of("Lead", leads[5].id) != ua)
            continue;
        same_second = 1;
        want_t wb = {leads[5].id, tb, NULL, 0};
        CHECK(cs_tprod_reader_wait(&r, have_value, &wb, 10000));
    }
    CHECK(same_second);

    /* 4. SIGKILL, changes while down, restart from the durable cursors */
    int64_t lead_cursor = -1, contact_cursor = -1, lead_max = max_modstamp(&r, CS_OBJECT_LEAD),
            contact_max = max_modstamp(&r, CS_OBJECT_CONTACT);
    for (int i = 0; i < 50 && (lead_cursor != lead_max || contact_cursor != contact_max); i++) {
        lead_cursor = durable_cursor(&e, "crm-producer:Lead");
        contact_cursor = durable_cursor(&e, "crm-producer:Contact");
        if (lead_cursor != lead_max || contact_cursor != contact_max)
            usleep(200 * 1000);
    }
    CHECK_INT(lead_cursor, lead_max);
    CHECK_INT(contact_cursor, contact_max);
    /* The deletion cursor is durable from the first round, even before Get Deleted covers a
     * whole minute: a restart must resume at the first start's position, not at a later
     * "now" (the deletion above would fall between the two; CI caught that once). */
    CHECK(durable_cursor(&e, "crm-producer:Lead:deleted") > 0);
    cs_tproc_kill(&p);
    size_t n_before = r.n;
    usleep(1100 * 1000);
    for (int i = NLEADS; i < NLEADS + 2; i++) {
        snprintf(fields, sizeof(fields),
                 "{\"LastName\": \"Late%02d\", \"Company\": \"Acme\", \"Email\": "
                 "\"late%02d@acme.com\"}",
                 i, i);
        CHECK_INT(create("Lead", fields, &leads[i]), 0);
    }
    CHECK_INT(create("Contact", "{\"LastName\": \"LateC\", \"Email\": \"latec@acme.com\"}",
                     &contacts[NCONTACTS]),
              0);
    CHECK_INT(edit("Contact", contacts[0].id, "{\"Title\": \"Down\"}", 0), 0);
    REQUIRE(start_producer(&p, &e, "producer2.log") == 0);
    const rec_t *later[] = {&leads[NLEADS], &leads[NLEADS + 1], &contacts[NCONTACTS], NULL};
    CHECK(cs_tprod_reader_wait(&r, have_crm_ids, later, 30000));
    want_t wc = {contacts[0].id, "Down", NULL, 0};
    CHECK(cs_tprod_reader_wait(&r, have_value, &wc, 15000));
    cs_tprod_reader_poll(&r, 1500);
    int dups = 0, dups_outside = 0;
    for (size_t i = n_before; i < r.n; i++) {
        for (size_t j = 0; j < n_before; j++) {
            if (!strcmp(r.msgs[i].event_id, r.msgs[j].event_id)) {
                int64_t cur = r.msgs[i].object == CS_OBJECT_LEAD ? lead_cursor : contact_cursor;
                dups++;
                dups_outside += r.msgs[i].system_modstamp < cur - OVERLAP_MS;
                break;
            }
        }
    }
    CHECK_INT(dups_outside, 0);
    size_t fresh = 0;
    for (size_t i = n_before; i < r.n; i++)
        fresh += !r.msgs[i].deleted;
    CHECK_INT(fresh - (size_t)dups, 4); /* 3 created + 1 edited, each once */
    size_t n0 = r.n;

    /* 5. faults: 503s, REQUEST_LIMIT_EXCEEDED, expired tokens */
    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"crm.error_rate\": 1.0}"), 0);
    for (int k = 0; k < 4; k++)
        CHECK_INT(edit("Lead", leads[k].id, "{\"Title\": \"Fault503\"}", 0), 0);
    port = wait_port(&p);
    CHECK(wait_metric(port, "crmsync_producer_polls_total{producer=\"crm\",outcome=\"failed\"}", 3,
                      10000) >= 3);
    CHECK_INT(cs_tprod_http_get(port, "/healthz", body, sizeof(body)), 200); /* within grace */
    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"crm.error_rate\": 0.5}"), 0);
    titles_t t503 = {0, 4, "Fault503"};
    CHECK(cs_tprod_reader_wait(&r, have_titles, &t503, 60000));
    CHECK(cs_tproc_log_count(&p, "HTTP_5XX") >= 3);

    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"crm.error_rate\": 0, \"crm.burst_limit_errors\": 4}"), 0);
    for (int k = 0; k < 4; k++)
        CHECK_INT(edit("Lead", leads[k].id, "{\"Title\": \"Fault403\"}", 0), 0);
    titles_t t403 = {0, 4, "Fault403"};
    CHECK(cs_tprod_reader_wait(&r, have_titles, &t403, 60000));
    CHECK(cs_tproc_log_count(&p, "REQUEST_LIMIT_EXCEEDED") >= 1);

    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"auth.token_ttl_s\": 1}"), 0);
    usleep(2200 * 1000);
    CHECK_INT(cs_tsandbox_knobs(&sb, "{\"auth.token_ttl_s\": 7200}"), 0);
    for (int k = 0; k < 4; k++)
        CHECK_INT(edit("Lead", leads[k].id, "{\"Title\": \"FaultToken\"}", 0), 0);
    titles_t ttok = {0, 4, "FaultToken"};
    CHECK(cs_tprod_reader_wait(&r, have_titles, &ttok, 60000));
    CHECK(cs_tproc_log_count(&p, "fetching a new one") >= 1);
    {
        int per[3] = {0, 0, 0};
        for (size_t i = n0; i < r.n; i++) {
            per[0] += !strcmp(r.msgs[i].title, "Fault503");
            per[1] += !strcmp(r.msgs[i].title, "Fault403");
            per[2] += !strcmp(r.msgs[i].title, "FaultToken");
        }
        CHECK_INT(per[0], 4); /* each change once, faults or not */
        CHECK_INT(per[1], 4);
        CHECK_INT(per[2], 4);
    }

    /* 6. the deletion (at most ~70 s after it happened) */
    want_t wd = {leads[NLEADS - 1].id, NULL, NULL, 1};
    CHECK(cs_tprod_reader_wait(&r, have_value, &wd, 90000));
    const cs_tprod_msg_t *md = cs_tprod_last_by_crm_id(&r, leads[NLEADS - 1].id);
    CHECK(md && md->deleted && !md->has_key && !strcmp(md->prospect_key, "") &&
          md->object == CS_OBJECT_LEAD && md->system_modstamp > 0);
    cs_tprod_reader_poll(&r, 1000);
    int ndel = 0;
    for (size_t i = 0; i < r.n; i++)
        ndel += r.msgs[i].deleted;
    CHECK_INT(ndel, 1);
    CHECK(durable_cursor(&e, "crm-producer:Lead:deleted") > 0);

    /* 7. SIGTERM: clean drain, exit 0 */
    CHECK_INT(cs_tproc_stop(&p, 20000), 0);
    CHECK(cs_tproc_log_count(&p, "stopped cleanly") == 1);

    cs_tprod_reader_close(&r);
    cs_tprod_env_destroy(&e, cs_test_fail_ > 0);
    cs_tsandbox_client_close(&cl);
    CHECK_INT(cs_tsandbox_stop(&sb), 0);
    return cs_test_report();
}
