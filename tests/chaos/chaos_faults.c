/* The monkey: what goes wrong during a chaos run, on a timeline of the run's duration D.
 *
 *   always        a random replica SIGKILLed every chaos.kill_interval_ms (+-50 %), restarted
 *                 chaos.restart_delay_ms later; replicas that die by themselves are crashes
 *   always        the sandbox answers chaos.error_rate of the calls of both sides with 503,
 *                 tokens live chaos.token_ttl_s, and every chaos.burst_every_ms the next
 *                 chaos.burst_errors calls of each side are refused as rate-limited
 *   0.2 D, 0.7 D  a round of poison records on every input topic
 *   0.3 D         the CSV import (crmsync-import)
 *   0.5 D         the broker is stopped (kafka.sh stop), left down chaos.broker_down_ms and
 *                 started again (kafka.sh start)
 * It stops when the main thread says the chaos is over; the faults are lifted there. */
#include "chaos.h"

#include "cs_avro.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_t monkey;
static int monkey_started;

static const char *const poison_kinds[CH_POISON_KINDS] = {"garbage bytes",  "unknown fingerprint",
                                                          "truncated body", "wrong schema",
                                                          "empty value",    "no key or no time"};

int ch_knobs(ch_t *ch, const char *text)
{
    char err[256];
    cs_http_t *h = cs_http_new(NULL, err, sizeof(err));
    json_t *body = json_loads(text, 0, NULL), *out = NULL;
    int st = 0;
    if (h && body)
        st = ch_sandbox(ch, h, "POST", "/sandbox/knobs", body, &out);
    json_decref(body);
    json_decref(out);
    cs_http_destroy(h);
    return st == 200 ? 0 : -1;
}

/* ---------------------------------------------------------------- poison */

static void poison_dr(void *opaque, void *msg_opaque, int err, const char *errstr,
                      int32_t partition, int64_t offset)
{
    ch_poison_t *p = msg_opaque;
    (void)opaque;
    if (err) {
        ch_say("poison record to %d not delivered: %s", p->topic, errstr);
        return;
    }
    p->partition = partition;
    p->offset = offset;
}

/* A valid record of `schema` keyed by key ("" = an empty prospect key), time 0 when
 * no_time. Returns the encoded bytes (borrowed from enc). */
static int valid_record(cs_avro_encoder_t *enc, int schema, const char *key, int no_time,
                        const void **out, size_t *len)
{
    avro_value_t *v = cs_avro_encoder_value(enc, schema);
    int64_t now = cs_wall_ms(), t = no_time ? 0 : now;
    if (!v)
        return -1;
    switch (schema) {
    case CS_AVRO_PROSPECT_CHANGE:
        cs_avro_set_str(v, CS_PC_EVENT_ID, "chaos-poison");
        cs_avro_set_str(v, CS_PC_PROSPECT_KEY, key);
        cs_avro_set_long(v, CS_PC_PROSPECT_ID, 999999);
        cs_avro_set_enum(v, CS_PC_CAUSE, CS_CAUSE_FIELD_CHANGE);
        cs_avro_set_long(v, CS_PC_UPDATED_AT, t);
        cs_avro_set_long(v, CS_PC_EVENT_TIME, now);
        cs_avro_set_str(v, CS_PC_EMAIL, "poison@chaos.example");
        cs_avro_set_str(v, CS_PC_FIRST_NAME, "Poison");
        cs_avro_set_str(v, CS_PC_LAST_NAME, "Record with a reasonably long last name");
        cs_avro_set_str(v, CS_PC_COMPANY, "Poison Incorporated and Sons");
        cs_avro_set_str(v, CS_PC_JOB_TITLE, "Chief Poison Officer");
        cs_avro_set_int(v, CS_PC_SCORE, 42);
        break;
    case CS_AVRO_ACTIVITY:
        cs_avro_set_str(v, CS_ACT_EVENT_ID, "chaos-poison");
        cs_avro_set_str(v, CS_ACT_PROSPECT_KEY, key);
        cs_avro_set_str(v, CS_ACT_EMAIL, "poison@chaos.example");
        cs_avro_set_enum(v, CS_ACT_TYPE, CS_ACTIVITY_FORM);
        cs_avro_set_bool(v, CS_ACT_IDENTIFIED, 1);
        cs_avro_set_long(v, CS_ACT_OCCURRED_AT, t);
        cs_avro_set_long(v, CS_ACT_EVENT_TIME, now);
        break;
    default:
        cs_avro_set_str(v, CS_CRM_EVENT_ID, "chaos-poison");
        cs_avro_set_str(v, CS_CRM_PROSPECT_KEY, key);
        cs_avro_set_enum(v, CS_CRM_OBJECT, CS_OBJECT_LEAD);
        cs_avro_set_str(v, CS_CRM_CRM_ID, "00Q000000000000AAA");
        cs_avro_set_str(v, CS_CRM_EMAIL, "poison@chaos.example");
        cs_avro_set_str(v, CS_CRM_LAST_NAME, "Poison");
        cs_avro_set_long(v, CS_CRM_LAST_MODIFIED_DATE, t);
        cs_avro_set_long(v, CS_CRM_SYSTEM_MODSTAMP, t);
        cs_avro_set_long(v, CS_CRM_EVENT_TIME, now);
        break;
    }
    return cs_avro_encode(enc, v, out, len) == CS_OK ? 0 : -1;
}

int ch_poison_round(ch_t *ch)
{
    static const int schemas[3] = {CS_AVRO_PROSPECT_CHANGE, CS_AVRO_ACTIVITY, CS_AVRO_CRM_CHANGE};
    char err[512];
    cs_avro_registry_t *reg = cs_avro_registry_new(err, sizeof(err));
    cs_avro_encoder_t *enc = reg ? cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT) : NULL;
    cs_producer_t *prod = NULL;
    int rc = -1, first = ch->npoison;

    if (!enc || ch->npoison + 3 * CH_POISON_KINDS > (int)(sizeof(ch->poison) / sizeof(*ch->poison)))
        goto out;
    if (!(prod = cs_producer_new(ch->conf, poison_dr, ch, err, sizeof(err)))) {
        ch_say("poison producer: %s", err);
        goto out;
    }
    for (int t = 0; t < 3; t++) {
        for (int kind = 0; kind < CH_POISON_KINDS; kind++) {
            ch_poison_t *p = &ch->poison[ch->npoison++];
            unsigned char buf[512];
            const void *val = buf;
            size_t len = 0;
            char key[64];
            const char *k = key;
            p->topic = t;
            p->kind = kind;
            p->offset = -1;
            snprintf(key, sizeof(key), "poison-%d-%d@chaos.example", ch->npoison, kind);
            switch (kind) {
            case 0: /* bytes that are no Avro framing at all */
                for (len = 0; len < 48; len++)
                    buf[len] = (unsigned char)(0x20 + ch_rand(90));
                break;
            case 1: { /* single-object framing with a fingerprint nobody knows */
                const void *body;
                size_t blen;
                if (valid_record(enc, schemas[t], key, 0, &body, &blen))
                    goto out;
                memcpy(buf, body, blen < sizeof(buf) ? blen : sizeof(buf));
                len = blen < sizeof(buf) ? blen : sizeof(buf);
                for (int i = 2; i < 10; i++)
                    buf[i] = (unsigned char)ch_rand(256);
                break;
            }
            case 2: { /* a valid record cut in the middle of its body */
                const void *body;
                size_t blen;
                if (valid_record(enc, schemas[t], key, 0, &body, &blen))
                    goto out;
                len = 10 + (blen - 10) / 2;
                memcpy(buf, body, len < sizeof(buf) ? len : sizeof(buf));
                break;
            }
            case 3: /* a valid record of another input topic's schema */
                if (valid_record(enc, schemas[(t + 1) % 3], key, 0, &val, &len))
                    goto out;
                break;
            case 4: /* nothing at all */
                val = NULL;
                len = 0;
                break;
            default: /* prospects and activities: no key; CRM changes: no time */
                if (t == 2) {
                    if (valid_record(enc, schemas[t], key, 1, &val, &len))
                        goto out;
                } else {
                    if (valid_record(enc, schemas[t], "", 0, &val, &len))
                        goto out;
                    k = NULL;
                }
                break;
            }
            if (cs_producer_send(prod, ch->topics[t], k, k ? strlen(k) : 0, val, len, 0, p, -1) !=
                CS_OK) {
                ch_say("poison record not sent to %s", ch->topics[t]);
                goto out;
            }
        }
    }
    if (cs_producer_flush(prod, 120000) != CS_OK) {
        ch_say("poison records not delivered within 120 s");
        goto out;
    }
    rc = 0;
    for (int i = first; i < ch->npoison; i++)
        if (ch->poison[i].offset < 0)
            rc = -1;
    ch_say("poison: wrote %d records (%s, ...) to the three input topics%s", ch->npoison - first,
           poison_kinds[0], rc ? " (some NOT delivered)" : "");
out:
    cs_producer_destroy(prod);
    cs_avro_encoder_destroy(enc);
    cs_avro_registry_destroy(reg);
    return rc;
}

/* ---------------------------------------------------------------- the monkey */

static int64_t jitter(int64_t base)
{
    return base / 2 + (int64_t)ch_rand((uint32_t)(base > 0 ? base : 1));
}

static void restart_broker(ch_t *ch)
{
    int64_t t0 = cs_now_ms(), t1;
    int rc;
    ch_say("broker: stopping it (kafka.sh stop, port %d)", ch->broker_port);
    atomic_store(&ch->broker_down, 1);
    rc = ch_broker(ch, "stop", 90000);
    if (rc != 0) {
        snprintf(ch->broker_error, sizeof(ch->broker_error), "kafka.sh stop exited with %d", rc);
        ch_say("broker: %s (see %s/broker.log)", ch->broker_error, ch->run_dir);
    }
    t1 = cs_now_ms();
    while (cs_now_ms() - t1 < ch->broker_down_ms && !atomic_load(&ch->stop)) {
        ch_replicas_check(ch);
        cs_run_sleep_ms(100);
    }
    rc = ch_broker(ch, "start", 180000);
    atomic_store(&ch->broker_down, 0);
    ch->broker_down_total_ms = cs_now_ms() - t0;
    if (rc != 0) {
        snprintf(ch->broker_error, sizeof(ch->broker_error), "kafka.sh start exited with %d", rc);
        ch_say("broker: %s (see %s/broker.log)", ch->broker_error, ch->run_dir);
        atomic_store(&ch->stop, 1);
        return;
    }
    atomic_fetch_add(&ch->broker_restarts, 1);
    ch_say("broker: back after %.1f s", ch->broker_down_total_ms / 1000.0);
}

static void *monkey_thread(void *arg)
{
    ch_t *ch = arg;
    int64_t next_kill = cs_now_ms() + jitter(ch->kill_interval_ms);
    int64_t next_burst = cs_now_ms() + ch->burst_every_ms;
    int poison_done = 0, import_done = 0, broker_done = !ch->broker_port;
    char knobs[256];

    while (!atomic_load(&ch->chaos_over) && !atomic_load(&ch->stop)) {
        int64_t now = cs_now_ms(), at = now - ch->start_ms;
        ch_replicas_check(ch);
        if (now >= next_kill) {
            int i = (int)ch_rand((uint32_t)ch->nreplicas);
            ch_replica_kill(ch, i);
            atomic_fetch_add(&ch->kills, 1);
            cs_run_sleep_ms(ch->restart_delay_ms);
            if (ch_replica_start(ch, i) != 0) {
                ch_say("replica %d could not be restarted after its kill", i + 1);
                atomic_store(&ch->stop, 1);
                break;
            }
            next_kill = cs_now_ms() + jitter(ch->kill_interval_ms);
        }
        if (ch->burst_every_ms > 0 && now >= next_burst) {
            snprintf(knobs, sizeof(knobs),
                     "{\"crm.burst_limit_errors\": %d, \"marketing.burst_limit_errors\": %d}",
                     ch->burst_errors, ch->burst_errors);
            if (ch_knobs(ch, knobs) == 0)
                atomic_fetch_add(&ch->bursts, 1);
            next_burst = now + ch->burst_every_ms;
        }
        if (poison_done == 0 && at >= ch->duration_ms / 5) {
            ch_poison_round(ch);
            poison_done = 1;
        }
        if (!import_done && at >= ch->duration_ms * 3 / 10) {
            ch->import_status = ch_import(ch);
            ch_say("import: %d rows, crmsync-import exited with %d", ch->import_rows,
                   ch->import_status);
            import_done = 1;
        }
        if (!broker_done && at >= ch->duration_ms / 2) {
            restart_broker(ch);
            broker_done = 1;
        }
        if (poison_done == 1 && at >= ch->duration_ms * 7 / 10) {
            ch_poison_round(ch);
            poison_done = 2;
        }
        cs_run_sleep_ms(50);
    }
    /* whatever the timeline did not reach (a short workload) happens now */
    if (!atomic_load(&ch->stop)) {
        if (!import_done) {
            ch->import_status = ch_import(ch);
            ch_say("import: %d rows, crmsync-import exited with %d", ch->import_rows,
                   ch->import_status);
        }
        if (!broker_done)
            restart_broker(ch);
        while (poison_done++ < 2)
            ch_poison_round(ch);
    }
    atomic_store(&ch->timeline_done, 1);
    /* Mind the replicas (crashes are restarted) until told to stop, then stay alive (the
     * replicas forked here die with this thread) until the main thread has stopped them. */
    while (!atomic_load(&ch->children_stopping)) {
        ch_replicas_check(ch);
        cs_run_sleep_ms(100);
    }
    atomic_store(&ch->monkey_parked, 1);
    while (!atomic_load(&ch->finished))
        cs_run_sleep_ms(50);
    return NULL;
}

int ch_faults_start(ch_t *ch)
{
    char knobs[256];
    snprintf(knobs, sizeof(knobs),
             "{\"crm.error_rate\": %s, \"marketing.error_rate\": %s, \"auth.token_ttl_s\": %d}",
             ch->error_rate, ch->error_rate, ch->token_ttl_s);
    if (ch_knobs(ch, knobs) != 0) {
        ch_say("the sandbox refused the knobs %s", knobs);
        return -1;
    }
    if (pthread_create(&monkey, NULL, monkey_thread, ch) != 0)
        return -1;
    monkey_started = 1;
    return 0;
}

void ch_faults_park(ch_t *ch)
{
    atomic_store(&ch->children_stopping, 1);
    while (monkey_started && !atomic_load(&ch->monkey_parked))
        cs_run_sleep_ms(20);
}

void ch_faults_join(ch_t *ch)
{
    atomic_store(&ch->children_stopping, 1);
    atomic_store(&ch->finished, 1);
    if (monkey_started)
        pthread_join(monkey, NULL);
    monkey_started = 0;
}
