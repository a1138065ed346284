/* The end of a chaos run: waiting for quiescence, then the checks.
 *
 *   lost             (prospect, field) pairs whose newest value in the ledger is missing on a
 *                    side that must hold it (both for synced prospects, the marketing side
 *                    for DNS and UNASSIGNED ones): the five edited fields, and for the
 *                    ACTIVITY group the newest intent activity on the lead; a missing CRM
 *                    record counts each of its fields
 *   duplicate_leads  live leads beyond the first with one external id (Crmsync_Prospect_Id__c)
 *                    or one e-mail
 *   mismatched       records (prospects, leads, contacts) whose checked values (the fields,
 *                    owner / assignment, external id, do-not-sync) differ from the ledger,
 *                    and CRM records that must not exist
 *   accounted        the consumer group's committed offsets reached the end of every input
 *                    partition (every event was resolved: synced, deduplicated, parked or
 *                    routed), and every poison record written is in the errors topic with a
 *                    POISON_* code
 * Every finding goes to <run>/findings.txt; a table says where the differences are (group,
 * side, field). */
#include "chaos.h"

#include "cs_avro.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_run.h"
#include "cs_time.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHOW_MAX 12 /* findings printed per kind */

/* ---------------------------------------------------------------- Kafka */

static rd_kafka_t *kafka_consumer(ch_t *ch, const char *group)
{
    char err[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(ch->conf, err, sizeof(err));
    rd_kafka_t *rk;
    if (!kc)
        return NULL;
    rd_kafka_conf_set(kc, "group.id", group, NULL, 0);
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(kc, "enable.partition.eof", "false", NULL, 0);
    rd_kafka_conf_set(kc, "auto.offset.reset", "earliest", NULL, 0);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err)))) {
        rd_kafka_conf_destroy(kc);
        ch_say("kafka consumer: %s", err);
    }
    return rk;
}

/* End offsets of the input topics (per topic in per_topic) and, when rk_group is set, how many
 * events lie beyond the group's committed offsets. Returns -1 when Kafka did not answer. */
static int input_offsets(ch_t *ch, rd_kafka_t *rk, long long per_topic[3], long long *behind)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3 * ch->partitions);
    long long end[3 * 64];
    int rc = 0;
    if (behind)
        *behind = 0;
    for (int t = 0; t < 3; t++) {
        per_topic[t] = 0;
        for (int part = 0; part < ch->partitions && part < 64; part++) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(rk, ch->topics[t], part, &lo, &hi, 10000)) {
                rc = -1;
                goto out;
            }
            end[t * ch->partitions + part] = hi;
            per_topic[t] += hi;
            rd_kafka_topic_partition_list_add(l, ch->topics[t], part);
        }
    }
    if (behind) {
        if (rd_kafka_committed(rk, l, 10000)) {
            rc = -1;
            goto out;
        }
        for (int i = 0; i < l->cnt; i++) {
            int t = i / ch->partitions, part = i % ch->partitions;
            int64_t c = l->elems[i].offset;
            long long e = end[t * ch->partitions + part];
            if (l->elems[i].err) {
                rc = -1;
                goto out;
            }
            *behind += c < 0 ? e : (e > c ? e - c : 0);
        }
    }
out:
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

long long ch_group_lag(ch_t *ch)
{
    long long per[3], behind = -1;
    if (!ch->lag_rk)
        ch->lag_rk = kafka_consumer(ch, ch->group);
    if (!ch->lag_rk || input_offsets(ch, ch->lag_rk, per, &behind) != 0)
        return -1;
    return behind;
}

void ch_lag_close(ch_t *ch)
{
    if (ch->lag_rk)
        rd_kafka_destroy(ch->lag_rk);
    ch->lag_rk = NULL;
}

/* ---------------------------------------------------------------- quiescence */

static long long sandbox_writes(ch_t *ch, cs_http_t *h)
{
    json_t *s = NULL;
    long long w = -1;
    if (ch_sandbox(ch, h, "GET", "/sandbox/stats", NULL, &s) == 200 && s) {
        w = 0;
        for (int side = 0; side < 2; side++) {
            json_t *o = json_object_get(s, side ? "marketing" : "crm");
            w += json_integer_value(json_object_get(o, "records_created")) +
                 json_integer_value(json_object_get(o, "records_updated")) +
                 json_integer_value(json_object_get(o, "records_deleted"));
        }
    }
    json_decref(s);
    return w;
}

/* Complete successful polls of a polling producer so far (-1: no answer). */
static double polls_ok(cs_http_t *h, int port)
{
    return ch_metric(h, port, "crmsync_producer_polls_total", "outcome=\"ok\"");
}

int ch_wait_quiet(ch_t *ch, ch_result_t *r)
{
    char err[256];
    cs_http_opts_t o;
    memset(&o, 0, sizeof(o));
    o.timeout_ms = 10000;
    cs_http_t *h = cs_http_new(&o, err, sizeof(err));
    int64_t t0 = cs_now_ms(), deadline = t0 + ch->settle_timeout_ms, quiet_since = 0, shown = 0;
    long long writes = -2;
    double base_p = -1, base_c = -1;
    int quiet = 0;
    if (!h)
        goto out;
    while (cs_now_ms() < deadline && !atomic_load(&ch->stop) && !cs_run_stopping()) {
        double queue = 0, pp, cp;
        int up = 0, polled;
        long long behind, w;
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
        behind = ch_group_lag(ch);
        w = sandbox_writes(ch, h);
        pp = polls_ok(h, ch->pprod_port);
        cp = polls_ok(h, ch->cprod_port);
        /* Quiet: every replica answers with an empty queue, the group committed everything,
         * nothing was written for quiet_ms, and both polling producers completed two polls
         * since the last write (so they have seen it, and published its echo if any). */
        polled = pp >= 0 && cp >= 0 && pp >= base_p + 2 && cp >= base_c + 2;
        if (w != writes || up < ch->nreplicas || queue > 0 || behind != 0 || base_p < 0) {
            writes = w;
            quiet_since = 0;
            base_p = pp;
            base_c = cp;
        } else if (!quiet_since) {
            quiet_since = cs_now_ms();
        }
        if (quiet_since && polled && cs_now_ms() - quiet_since >= ch->quiet_ms) {
            quiet = 1;
            break;
        }
        if (cs_now_ms() - shown >= 5000) {
            ch_say("settling: %.0f s, replicas up %d/%d, queued %.0f, events not committed %lld, "
                   "writes so far %lld, producer polls since %.0f and %.0f",
                   (cs_now_ms() - t0) / 1000.0, up, ch->nreplicas, queue, behind, w, pp - base_p,
                   cp - base_c);
            shown = cs_now_ms();
        }
        cs_run_sleep_ms(500);
    }
out:
    r->quiet = quiet;
    r->settle_ms = cs_now_ms() - t0;
    if (quiet)
        ch_say("quiet after %.1f s (queues empty, offsets at the end, no write for %.1f s, "
               "both polling producers polled twice since)",
               r->settle_ms / 1000.0, ch->quiet_ms / 1000.0);
    else
        ch_say("NOT quiet after %.1f s (chaos.settle_timeout_s)", r->settle_ms / 1000.0);
    cs_http_destroy(h);
    return quiet;
}

/* ---------------------------------------------------------------- the errors topic */

typedef struct err_count_s {
    char code[48];
    long long n;
} err_count_t;

static void read_errors(ch_t *ch, ch_result_t *r)
{
    char err[512], group[200];
    cs_avro_registry_t *reg = cs_avro_registry_new(err, sizeof(err));
    cs_avro_decoder_t *dec = reg ? cs_avro_decoder_new(reg) : NULL;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *l;
    int64_t hi[64] = {0};
    int parts = ch->partitions < 64 ? ch->partitions : 64, left = 0;
    err_count_t counts[32];
    int ncounts = 0;
    long long total = 0;

    snprintf(group, sizeof(group), "%s-errors-reader", ch->group);
    if (!dec || !(rk = kafka_consumer(ch, group))) {
        cs_avro_decoder_destroy(dec);
        cs_avro_registry_destroy(reg);
        return;
    }
    l = rd_kafka_topic_partition_list_new(parts);
    for (int part = 0; part < parts; part++) {
        int64_t lo = 0;
        if (rd_kafka_query_watermark_offsets(rk, ch->topics[T_ERRORS], part, &lo, &hi[part],
                                             10000) == 0 &&
            hi[part] > lo) {
            rd_kafka_topic_partition_list_add(l, ch->topics[T_ERRORS], part)->offset = lo;
            left++;
        }
    }
    rd_kafka_assign(rk, l);
    int64_t deadline = cs_now_ms() + 60000;
    while (left > 0 && cs_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        cs_avro_decoded_t d;
        if (!m)
            continue;
        if (!m->err && m->payload && !cs_avro_decode(dec, m->payload, m->len, &d) &&
            d.schema == CS_AVRO_SYNC_ERROR) {
            const char *code = cs_avro_get_str(d.value, CS_SE_CODE, NULL);
            const char *topic = cs_avro_get_str(d.value, CS_SE_TOPIC, NULL);
            int32_t part = -1;
            int64_t off = -1;
            int k;
            cs_avro_get_int(d.value, CS_SE_PARTITION, &part);
            cs_avro_get_long(d.value, CS_SE_OFFSET, &off);
            total++;
            if (!code)
                code = "(none)";
            for (k = 0; k < ncounts && strcmp(counts[k].code, code); k++)
                ;
            if (k == ncounts && ncounts < 32) {
                snprintf(counts[k].code, sizeof(counts[k].code), "%s", code);
                counts[k].n = 0;
                ncounts++;
            }
            if (k < ncounts)
                counts[k].n++;
            for (int i = 0; topic && i < ch->npoison; i++) {
                ch_poison_t *p = &ch->poison[i];
                if (p->offset == off && p->partition == part &&
                    !strcmp(topic, ch->topics[p->topic]) && !strncmp(code, "POISON_", 7)) {
                    p->found = 1;
                    snprintf(p->code, sizeof(p->code), "%s", code);
                }
            }
        }
        if (!m->err && m->partition >= 0 && m->partition < parts &&
            m->offset >= hi[m->partition] - 1) {
            left--;
            hi[m->partition] = -1; /* done */
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_assign(rk, NULL);
    rd_kafka_destroy(rk);
    cs_avro_decoder_destroy(dec);
    cs_avro_registry_destroy(reg);

    r->error_records = total;
    {
        char line[1024];
        size_t w = 0;
        line[0] = '\0';
        for (int k = 0; k < ncounts && w < sizeof(line) - 64; k++)
            w += (size_t)snprintf(line + w, sizeof(line) - w, "%s%s %lld", k ? ", " : "",
                                  counts[k].code, counts[k].n);
        ch_say("errors topic: %lld record(s)%s%s%s", total, ncounts ? " (" : "", line,
               ncounts ? ")" : "");
    }
    if (left > 0)
        ch_say("errors topic: could not read it to its end");
}

/* ---------------------------------------------------------------- records */

enum { F_MKT, F_CRM, F_MISSING, F_UNEXPECTED, F_DUP, F_PRECEDENCE, F_COUNT_ };
static const char *const finding_names[F_COUNT_] = {
    "marketing prospect differs from the ledger",
    "CRM record differs from the ledger",
    "expected CRM record missing",
    "CRM record that must not exist",
    "duplicate leads",
    "lead written although a contact exists (the contact must win)",
};
static long long findings[F_COUNT_];
static FILE *findings_file;

/* Every finding goes to <run>/findings.txt; the first SHOW_MAX of each kind to stdout too. */
static void finding(int kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void finding(int kind, const char *fmt, ...)
{
    char line[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (findings[kind]++ < SHOW_MAX)
        ch_say("  %s: %s", finding_names[kind], line);
    if (findings_file)
        fprintf(findings_file, "%s: %s\n", finding_names[kind], line);
}

/* Differences by group and field (CH_F_*, then owner/ids, last activity), per side. */
enum { X_OWNER = CH_F_COUNT_, X_LINK, X_LAST_ACTIVITY, X_OTHER, X_COUNT_ };
static const char *const tally_names[X_COUNT_] = {
    "first name",    "last name", "company", "title", "phone", "owner", "prospect id / assignment",
    "last activity", "other"};
static long long tally[G_COUNT_][2][X_COUNT_]; /* [group][0 marketing, 1 CRM][field] */

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void lower(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

/* Compares one field; appends "name 'got' want 'want'" to diff. Returns 1 when it differs. */
static int differs(const char *name, const char *got, const char *want, char *diff, size_t n)
{
    if (!strcmp(got, want))
        return 0;
    size_t l = strlen(diff);
    if (l < n - 1)
        snprintf(diff + l, n - l, "%s%s '%s' want '%s'", l ? ", " : "", name, got, want);
    return 1;
}

static const char *crm_user_of(const ch_t *ch, const char *email)
{
    if (!strcmp(email, "sam@acme.example"))
        return ch->crm_users[0];
    if (!strcmp(email, "rita@acme.example"))
        return ch->crm_users[1];
    return ch->crm_users[2];
}

/* The CRM owner crmsync must leave: the mapped assignee's user; for a record crmsync
 * created, the integration user otherwise; for a seeded one, whoever entered it. */
static const char *expected_owner(const ch_t *ch, const ch_prospect_t *p)
{
    if (p->assigned == ch->mkt_users[0])
        return ch->crm_users[0];
    if (p->assigned == ch->mkt_users[1])
        return ch->crm_users[1];
    return p->seed == SEED_NONE ? ch->integration_user : crm_user_of(ch, p->seed_owner);
}

/* Checks a CRM record against the ledger. Returns the bit mask (X_*) of what differs. */
static unsigned check_crm_record(const ch_t *ch, const ch_prospect_t *p, json_t *rec, int contact)
{
    char diff[1200] = "", pid[24];
    unsigned bad = 0;
    snprintf(pid, sizeof(pid), "%" PRId64, p->id);
    bad |= (unsigned)differs("Email", jstr(rec, "Email"), p->email, diff, sizeof(diff)) << X_OTHER;
    bad |= (unsigned)differs("FirstName", jstr(rec, "FirstName"), p->first, diff, sizeof(diff))
           << CH_F_FIRST;
    bad |= (unsigned)differs("LastName", jstr(rec, "LastName"), p->last, diff, sizeof(diff))
           << CH_F_LAST;
    if (!contact) /* a contact's company is its account's: not synced */
        bad |= (unsigned)differs("Company", jstr(rec, "Company"), p->company, diff, sizeof(diff))
               << CH_F_COMPANY;
    bad |= (unsigned)differs("Title", jstr(rec, "Title"), p->title, diff, sizeof(diff))
           << CH_F_TITLE;
    bad |= (unsigned)differs("Phone", jstr(rec, "Phone"), p->phone, diff, sizeof(diff))
           << CH_F_PHONE;
    bad |= (unsigned)differs("OwnerId", jstr(rec, "OwnerId"), expected_owner(ch, p), diff,
                             sizeof(diff))
           << X_OWNER;
    bad |= (unsigned)differs("Crmsync_Prospect_Id__c", jstr(rec, "Crmsync_Prospect_Id__c"), pid,
                             diff, sizeof(diff))
           << X_LINK;
    if (p->group == G_ACT) {
        int64_t want = atomic_load(&p->last_activity_ms), got = 0;
        const char *v = jstr(rec, "Crmsync_Last_Activity__c");
        char gs[48] = "", ws[48] = "";
        if (*v)
            cs_time_parse_iso8601(v, &got);
        if (got)
            cs_time_format_iso8601(got, 0, gs, sizeof(gs));
        if (want)
            cs_time_format_iso8601(want, 0, ws, sizeof(ws));
        /* the sandbox keeps date-times in whole seconds */
        if (got / 1000 != want / 1000) {
            bad |= 1u << X_LAST_ACTIVITY;
            size_t l = strlen(diff);
            snprintf(diff + l, sizeof(diff) - l,
                     "%sCrmsync_Last_Activity__c '%s' want '%s' (%d intent activities, %s)",
                     l ? ", " : "", gs, ws, p->triggers,
                     p->act_burst ? "all in a burst right after the create"
                                  : "sent once the lead existed");
        }
    }
    if (bad)
        finding(F_CRM, "%s (%s group, %s%s %s): %s", p->email, ch_group_names[p->group],
                p->seed == SEED_NONE ? "" : "seeded ", contact ? "contact" : "lead",
                jstr(rec, "Id"), diff);
    return bad;
}

/* Checks the marketing prospect against the ledger. Returns the bit mask (X_*). */
static unsigned check_prospect(const ch_t *ch, const ch_prospect_t *p, json_t *pr)
{
    char diff[1200] = "", got_a[32], want_a[32];
    unsigned bad = 0;
    (void)ch;
    if (!pr) {
        finding(F_MKT, "%s (%s group): prospect %" PRId64 " not found", p->email,
                ch_group_names[p->group], p->id);
        return (1u << X_COUNT_) - 1;
    }
    bad |= (unsigned)differs("email", jstr(pr, "email"), p->email, diff, sizeof(diff)) << X_OTHER;
    bad |= (unsigned)differs("firstName", jstr(pr, "firstName"), p->first, diff, sizeof(diff))
           << CH_F_FIRST;
    bad |= (unsigned)differs("lastName", jstr(pr, "lastName"), p->last, diff, sizeof(diff))
           << CH_F_LAST;
    bad |= (unsigned)differs("company", jstr(pr, "company"), p->company, diff, sizeof(diff))
           << CH_F_COMPANY;
    bad |= (unsigned)differs("jobTitle", jstr(pr, "jobTitle"), p->title, diff, sizeof(diff))
           << CH_F_TITLE;
    bad |= (unsigned)differs("phone", jstr(pr, "phone"), p->phone, diff, sizeof(diff))
           << CH_F_PHONE;
    json_t *a = json_object_get(pr, "assignedToId");
    if (json_is_integer(a))
        snprintf(got_a, sizeof(got_a), "%" JSON_INTEGER_FORMAT, json_integer_value(a));
    else
        snprintf(got_a, sizeof(got_a), "unassigned");
    if (p->assigned >= 0)
        snprintf(want_a, sizeof(want_a), "%" PRId64, p->assigned);
    else
        snprintf(want_a, sizeof(want_a), "unassigned");
    bad |= (unsigned)differs("assignedToId", got_a, want_a, diff, sizeof(diff)) << X_LINK;
    bad |= (unsigned)differs("crmsyncDoNotSync__c",
                             json_is_true(json_object_get(pr, "crmsyncDoNotSync__c")) ? "true"
                                                                                      : "false",
                             p->dns ? "true" : "false", diff, sizeof(diff))
           << X_OTHER;
    if (bad)
        finding(F_MKT, "%s (%s group, prospect %" PRId64 "): %s", p->email,
                ch_group_names[p->group], p->id, diff);
    return bad;
}

static void count_mask(int group, int side, unsigned mask)
{
    for (int x = 0; x < X_COUNT_; x++)
        if (mask & (1u << x))
            tally[group][side][x]++;
}

static int popcount(unsigned m)
{
    int n = 0;
    for (; m; m &= m - 1)
        n++;
    return n;
}

void ch_verify(ch_t *ch, ch_result_t *r)
{
    char err[256];
    cs_http_opts_t o;
    json_t *snap = NULL, *leads_by_email = json_object(), *contacts_by_email = json_object();
    json_t *leads_by_ext = json_object(), *prospects = json_object(), *rec, *arr;
    const char *k;
    size_t i;
    rd_kafka_t *rk;

    memset(&o, 0, sizeof(o));
    o.timeout_ms = 120000;
    cs_http_t *h = cs_http_new(&o, err, sizeof(err));

    /* 1. events and offsets */
    if ((rk = kafka_consumer(ch, ch->group))) {
        long long behind = -1;
        if (input_offsets(ch, rk, r->per_topic, &behind) == 0) {
            r->events = r->per_topic[0] + r->per_topic[1] + r->per_topic[2];
            r->uncommitted = behind;
        } else {
            r->uncommitted = -1;
        }
        rd_kafka_destroy(rk);
    }
    ch_say("events: %lld in prospect-changes, %lld in activities, %lld in crm-changes: %lld "
           "input events (all published by the producers, except %d poison records written "
           "directly)",
           r->per_topic[0], r->per_topic[1], r->per_topic[2], r->events, ch->npoison);
    if (r->uncommitted == 0)
        ch_say("offsets: the group committed every input partition to its end: every event was "
               "resolved (synced, deduplicated, ignored, parked or routed to the errors topic)");
    else
        ch_say("offsets: %lld input event(s) NOT covered by the group's committed offsets",
               r->uncommitted);

    /* 2. the errors topic: poison routed */
    read_errors(ch, r);
    r->poison_written = ch->npoison;
    for (int n = 0; n < ch->npoison; n++) {
        ch_poison_t *p = &ch->poison[n];
        if (p->found)
            r->poison_routed++;
        else
            ch_say("  poison record NOT in the errors topic: %s [%d] offset %" PRId64 " (kind %d)",
                   ch->topics[p->topic], p->partition, p->offset, p->kind);
    }
    {
        char codes[512] = "";
        size_t w = 0;
        for (int kind = 0; kind < CH_POISON_KINDS; kind++)
            for (int n = 0; n < ch->npoison; n++)
                if (ch->poison[n].kind == kind && ch->poison[n].found) {
                    w += (size_t)snprintf(codes + w, sizeof(codes) - w, "%s%s", w ? ", " : "",
                                          ch->poison[n].code);
                    break;
                }
        ch_say("poison: %lld of %lld records routed to the errors topic (codes: %s)",
               r->poison_routed, r->poison_written, codes);
    }

    /* 3. the records */
    {
        char path[1200];
        ch_path(ch, "findings.txt", path, sizeof(path));
        findings_file = fopen(path, "w");
    }
    if (!h || ch_sandbox(ch, h, "GET", "/sandbox/snapshot", NULL, &snap) != 200 || !snap) {
        ch_say("cannot read the sandbox snapshot");
        r->mismatched = r->lost = -1;
        goto out;
    }
    static const char *const types[2] = {"Lead", "Contact"};
    for (int t = 0; t < 2; t++)
        json_array_foreach(json_object_get(json_object_get(snap, "crm"), types[t]), i, rec)
        {
            char em[128];
            if (json_is_true(json_object_get(rec, "IsDeleted")))
                continue;
            lower(jstr(rec, "Email"), em, sizeof(em));
            json_t *by = t ? contacts_by_email : leads_by_email;
            if (!(arr = json_object_get(by, em)))
                json_object_set_new(by, em, arr = json_array());
            json_array_append(arr, rec);
            const char *ext = jstr(rec, "Crmsync_Prospect_Id__c");
            if (!t && *ext) {
                if (!(arr = json_object_get(leads_by_ext, ext)))
                    json_object_set_new(leads_by_ext, ext, arr = json_array());
                json_array_append(arr, rec);
            }
        }
    json_array_foreach(json_object_get(json_object_get(snap, "marketing"), "prospects"), i, rec)
    {
        char id[24];
        if (json_is_true(json_object_get(rec, "isDeleted")))
            continue;
        snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(rec, "id")));
        json_object_set(prospects, id, rec);
    }
    /* duplicates: one live lead per external id and per e-mail */
    json_object_foreach(leads_by_ext, k, arr)
    {
        if (json_array_size(arr) > 1) {
            r->duplicate_leads += (long long)json_array_size(arr) - 1;
            finding(F_DUP, "%zu live leads carry Crmsync_Prospect_Id__c %s", json_array_size(arr),
                    k);
        }
    }
    json_object_foreach(leads_by_email, k, arr)
    {
        if (json_array_size(arr) > 1) {
            r->duplicate_leads += (long long)json_array_size(arr) - 1;
            finding(F_DUP, "%zu live leads have the e-mail %s", json_array_size(arr), k);
        }
    }

    for (int n = 0; n < ch->n; n++) {
        ch_prospect_t *p = &ch->p[n];
        char id[24], em[128];
        unsigned mk, cr = 0;
        if (!atomic_load(&p->created))
            continue;
        snprintf(id, sizeof(id), "%" PRId64, p->id);
        lower(p->email, em, sizeof(em));
        mk = check_prospect(ch, p, json_object_get(prospects, id));
        r->mismatched += mk != 0;
        count_mask(p->group, 0, mk);
        json_t *leads = json_object_get(leads_by_email, em);
        json_t *contacts = json_object_get(contacts_by_email, em);
        size_t nl = json_array_size(leads), nc = json_array_size(contacts);

        if (p->group == G_DNS || p->group == G_UNASSIGNED) {
            if (nl + nc) {
                r->unexpected_records += (long long)(nl + nc);
                r->mismatched += (long long)(nl + nc);
                finding(F_UNEXPECTED, "%s (%s group): %zu lead(s), %zu contact(s)", p->email,
                        ch_group_names[p->group], nl, nc);
            }
            /* the ledger's values must be on the marketing side (the only one) */
            r->lost += popcount(mk & ((1u << CH_F_COUNT_) - 1));
            continue;
        }
        if (p->seed == SEED_CONTACT || p->seed == SEED_BOTH) {
            json_t *c = NULL;
            json_array_foreach(contacts, i, rec)
            {
                if (!strcmp(jstr(rec, "Id"), p->seed_contact))
                    c = rec;
            }
            if (!c) {
                r->missing_records++;
                r->mismatched++;
                cr = (1u << X_COUNT_) - 1;
                finding(F_MISSING, "%s: the seeded contact %s is gone", p->email, p->seed_contact);
            } else {
                cr = check_crm_record(ch, p, c, 1);
                r->mismatched += cr != 0;
            }
            if (p->seed == SEED_CONTACT && nl) {
                r->unexpected_records += (long long)nl;
                r->mismatched += (long long)nl;
                finding(F_UNEXPECTED, "%s: %zu lead(s) although a contact matches", p->email, nl);
            }
            if (p->seed == SEED_BOTH) {
                /* the seeded lead must be left alone */
                json_array_foreach(leads, i, rec)
                {
                    if (strcmp(jstr(rec, "Id"), p->seed_lead)) {
                        r->unexpected_records++;
                        r->mismatched++;
                        finding(F_UNEXPECTED, "%s: lead %s created although a contact matches",
                                p->email, jstr(rec, "Id"));
                    } else if (*jstr(rec, "Crmsync_Prospect_Id__c")) {
                        finding(F_PRECEDENCE,
                                "%s: lead %s carries Crmsync_Prospect_Id__c %s "
                                "(contact %s)",
                                p->email, p->seed_lead, jstr(rec, "Crmsync_Prospect_Id__c"),
                                p->seed_contact);
                    }
                }
            }
        } else if (nl == 0) {
            /* a lead: the seeded one or crmsync's */
            r->missing_records++;
            r->mismatched++;
            cr = (1u << X_COUNT_) - 1;
            finding(F_MISSING, "%s (%s group, prospect %" PRId64 "): no lead", p->email,
                    ch_group_names[p->group], p->id);
        } else {
            json_t *l = json_array_get(leads, 0);
            if (p->seed == SEED_LEAD) {
                json_array_foreach(leads, i, rec)
                {
                    if (!strcmp(jstr(rec, "Id"), p->seed_lead))
                        l = rec;
                }
            }
            cr = check_crm_record(ch, p, l, 0);
            r->mismatched += cr != 0;
        }
        if (p->seed != SEED_CONTACT && p->seed != SEED_BOTH && nc) {
            r->unexpected_records += (long long)nc;
            r->mismatched += (long long)nc;
            finding(F_UNEXPECTED, "%s (%s group): %zu contact(s)", p->email,
                    ch_group_names[p->group], nc);
        }
        count_mask(p->group, 1, cr);
        /* lost: ledger values (the five fields, the newest intent activity) missing on a side
         * that must hold them */
        r->lost += popcount((mk | cr) & (((1u << CH_F_COUNT_) - 1) | (1u << X_LAST_ACTIVITY)));
    }
    for (int f = 0; f < F_COUNT_; f++)
        if (findings[f] > SHOW_MAX)
            ch_say("  ... %lld finding(s) of \"%s\" in all", findings[f], finding_names[f]);
    if (findings[F_PRECEDENCE])
        ch_say("note: %lld seeded lead(s) were written although a contact matched (not counted "
               "as mismatches: the values agree)",
               findings[F_PRECEDENCE]);
    /* where the differences are */
    for (int g = 0; g < G_COUNT_; g++)
        for (int side = 0; side < 2; side++) {
            char line[512];
            size_t w = 0;
            for (int x = 0; x < X_COUNT_; x++)
                if (tally[g][side][x])
                    w += (size_t)snprintf(line + w, sizeof(line) - w, "%s%s %lld", w ? ", " : "",
                                          tally_names[x], tally[g][side][x]);
            if (w)
                ch_say("differences, %s group, %s side: %s", ch_group_names[g],
                       side ? "CRM" : "marketing", line);
        }
out:
    if (findings_file) {
        fclose(findings_file);
        findings_file = NULL;
    }
    json_decref(snap);
    json_decref(leads_by_email);
    json_decref(contacts_by_email);
    json_decref(leads_by_ext);
    json_decref(prospects);
    cs_http_destroy(h);
}
