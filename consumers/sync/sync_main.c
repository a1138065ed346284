/* crmsync-sync-consumer: one replica of the deduplicating sync consumer.
 *
 * Consumes the prospect-change, activity and CRM-change topics in one consumer group (the
 * range assignor keeps partition p of every input topic on the same replica), applies the
 * sync rules, pushes batches to the CRM and the marketing system, writes the state changelog
 * and commits offsets only behind resolved events. See docs/ARCHITECTURE.md. */
#include "sync.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cs_opt_t sync_opts[] = {
    {"group.id", CS_OPT_STRING, "crmsync-sync", 0, 0, 0, "consumer group shared by every replica"},
    {"batch.max", CS_OPT_INT, "200", 1, 200, 0,
     "records per batch (200 is the CRM's collection limit)"},
    {"batch.linger.ms", CS_OPT_INT, "250", 0, 600000, 0,
     "how long the oldest queued prospect may wait for its batch to fill"},
    {"batch.settle.ms", CS_OPT_INT, "100", 0, 600000, 0,
     "a full batch takes only prospects queued at least this long (their burst has been "
     "read); the linger deadline takes everything"},
    {"sync.email_changes", CS_OPT_BOOL, "false", 0, 0, 0,
     "apply CRM email changes to the prospect"},
    {"sync.auto_create_prospects", CS_OPT_BOOL, "false", 0, 0, 0,
     "create prospects from new CRM leads and contacts"},
    {"sync.assign_unassigned_to", CS_OPT_STRING, "", 0, 0, 0,
     "CRM user owning leads created for unassigned prospects; empty = unassigned, unmatched "
     "prospects wait"},
    {"sync.stamped_hold.ms", CS_OPT_INT, "5000", 0, 600000, 0,
     "how long a CRM change under an email no prospect snapshot has shown yet waits for that "
     "snapshot (read later, the topics being read in no common order); then a record crmsync "
     "stamped with a prospect id counts as an email change, any other as a record with no "
     "prospect"},
    {"sync.max_attempts", CS_OPT_INT, "5", 1, 1000, 0,
     "attempts of a record that fails with a transient error before it is parked"},
    {"sync.paused", CS_OPT_BOOL, "false", 0, 0, 0,
     "start paused (the control topic's last pause/unpause wins)"},
    {"users.map", CS_OPT_STRING, "", 0, 0, 0,
     "marketing user id to CRM user id, comma list of mktId:005...; unmapped assignees get "
     "the connector user"},
    {"commit.interval.ms", CS_OPT_INT, "1000", 10, 60000, 0,
     "how often the changelog is flushed and offsets committed"},
    {"http.port", CS_OPT_INT, "0", -1, 65535, 0,
     "port of /metrics, /healthz and the admin views /status, /queue, /prospect?key= (0 = any "
     "free port, logged; -1 = off)"},
    CS_OPT_END,
};

static const char usage[] =
    "crmsync-sync-consumer [options]\n\n"
    "One replica of the sync consumer: reads the input topics in a consumer group, dedups\n"
    "each event against the prospect's last-synced state, and pushes batched updates to the\n"
    "CRM and the marketing system. Run as many replicas as there are partitions to share.";

static int parse_users(sc_t *sc, const char *s, char *errstr, size_t n)
{
    while (s && *s) {
        const char *end = strchr(s, ','), *colon;
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char num[32];
        colon = memchr(s, ':', len);
        if (!colon || colon == s || (size_t)(colon - s) >= sizeof(num) ||
            (size_t)(s + len - colon - 1) != 18 || sc->nusers >= SC_MAX_USERS)
            return cs_err_set(errstr, n, CS_ERR_CONFIG,
                              "users.map: '%.*s' is not marketingUserId:18-character CRM user id",
                              (int)len, s);
        memcpy(num, s, (size_t)(colon - s));
        num[colon - s] = '\0';
        char *e;
        long long id = strtoll(num, &e, 10);
        if (*e || id < 0)
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "users.map: '%s' is not a user id", num);
        sc->users[sc->nusers].mkt_id = id;
        memcpy(sc->users[sc->nusers].crm_id, colon + 1, 18);
        sc->users[sc->nusers].crm_id[18] = '\0';
        sc->nusers++;
        s = end ? end + 1 : NULL;
    }
    return CS_OK;
}

static void metrics_init(sc_t *sc)
{
    static const double lat_bounds[] = {5,   10,  25,   50,   100,  150,  200,   250,   300,  400,
                                        500, 750, 1000, 1500, 2500, 5000, 10000, 30000, 60000};
    static const char *const kinds[3] = {"prospect", "activity", "crm"};
    cs_metrics_t *m = sc->metrics;
    char lbl[64];
    for (int k = 0; k < 3; k++) {
        snprintf(lbl, sizeof(lbl), "input=\"%s\"", kinds[k]);
        sc->m.consumed[k] = cs_metrics_counter(m, "crmsync_events_consumed_total",
                                               "Input events read, per input topic", lbl);
    }
    for (int r = 0; r < CS_R_COUNT_; r++) {
        snprintf(lbl, sizeof(lbl), "outcome=\"%s\"", cs_result_name((cs_result_t)r));
        sc->m.results[r] = cs_metrics_counter(
            m, "crmsync_events_total",
            "Input events by rule outcome (deduplicated, queued, coalesced, ...)", lbl);
    }
    sc->m.poison = cs_metrics_counter(m, "crmsync_poison_total",
                                      "Unreadable input records routed to the errors topic", NULL);
    sc->m.batches[0] =
        cs_metrics_counter(m, "crmsync_batches_total", "Batches pushed", "direction=\"crm\"");
    sc->m.batches[1] =
        cs_metrics_counter(m, "crmsync_batches_total", "Batches pushed", "direction=\"marketing\"");
    sc->m.records[0] = cs_metrics_counter(m, "crmsync_records_pushed_total", "Records written",
                                          "direction=\"crm\"");
    sc->m.records[1] = cs_metrics_counter(m, "crmsync_records_pushed_total", "Records written",
                                          "direction=\"marketing\"");
    sc->m.created_leads =
        cs_metrics_counter(m, "crmsync_leads_created_total", "Leads created in the CRM", NULL);
    sc->m.created_prospects = cs_metrics_counter(m, "crmsync_prospects_created_total",
                                                 "Prospects created from CRM records", NULL);
    sc->m.record_errors = cs_metrics_counter(m, "crmsync_record_errors_total",
                                             "Per-record API errors (see the errors topic)", NULL);
    sc->m.batch_retries = cs_metrics_counter(
        m, "crmsync_batch_retries_total",
        "Batches put back after a batch-level failure (transport, 5xx, rate limit)", NULL);
    sc->m.parked = cs_metrics_counter(
        m, "crmsync_parked_total", "Prospects parked (unassigned, or errors past the limit)", NULL);
    sc->m.changelog_writes = cs_metrics_counter(m, "crmsync_changelog_writes_total",
                                                "State changelog records written", NULL);
    sc->m.commits = cs_metrics_counter(m, "crmsync_commits_total", "Offset commits", NULL);
    sc->m.queue_depth =
        cs_metrics_gauge(m, "crmsync_queue_depth", "Prospects in the sync queue", NULL);
    sc->m.queue_retry = cs_metrics_gauge(m, "crmsync_queue_retry",
                                         "Queued prospects backing off after an error", NULL);
    sc->m.state_prospects =
        cs_metrics_gauge(m, "crmsync_state_prospects", "Prospects tracked by this replica", NULL);
    sc->m.state_bytes =
        cs_metrics_gauge(m, "crmsync_state_bytes", "Bytes held by the prospect state", NULL);
    sc->m.paused = cs_metrics_gauge(m, "crmsync_paused", "1 while the connector is paused", NULL);
    sc->m.lag = cs_metrics_gauge(m, "crmsync_lag_events",
                                 "Input events not yet read (all owned partitions)", NULL);
    {
        static const char *const phases[5] = {"wait", "read", "push", "read_during_push", "commit"};
        for (int i = 0; i < 5; i++) {
            snprintf(lbl, sizeof(lbl), "phase=\"%s\"", phases[i]);
            sc->m.phase_us[i] = cs_metrics_counter(
                m, "crmsync_loop_time_us_total",
                "Consumer thread time by phase, microseconds: waiting for input, reading and "
                "applying, pushing (waiting on the APIs), reading while a push waits (and "
                "applying the events it set aside), committing (changelog delivery, offsets)",
                lbl);
        }
    }
    sc->m.latency_ms = cs_metrics_histogram(
        m, "crmsync_sync_latency_ms", "Source event time to CRM acknowledgement, milliseconds",
        NULL, lat_bounds, sizeof(lat_bounds) / sizeof(*lat_bounds));
}

static int health(void *opaque, char *reason, size_t n)
{
    sc_t *sc = opaque;
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(cs_consumer_handle(sc->consumer), 0, NULL, &md, 2000)) {
        snprintf(reason, n, "Kafka brokers unreachable");
        return 1;
    }
    rd_kafka_metadata_destroy(md);
    if (!sc->api_healthy && cs_now_ms() - sc->last_api_error_ms < 60000) {
        snprintf(reason, n, "API calls failing (batches backing off)");
        return 1;
    }
    return 0;
}

/* The control topic, read in full by every replica (no group, no commits). */
static rd_kafka_t *control_new(sc_t *sc, char *errstr, size_t n)
{
    rd_kafka_conf_t *kc = cs_kafka_conf_new(sc->conf, errstr, n);
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *l;
    int64_t lo = 0, hi = 0;
    const char *topic = sc->topics[CS_TOPIC_CONTROL];
    if (!kc)
        return NULL;
    rd_kafka_conf_set(kc, "group.id", "crmsync-control-reader", NULL, 0);
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(kc, "enable.auto.offset.store", "false", NULL, 0);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, n))) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    if (rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000)) {
        CS_WARN("sync", "control topic %s unreadable: pause/sync-now will not be seen", topic);
        hi = 0;
    }
    sc->control_catchup = hi; /* commands below this were issued before we started */
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* The input-topic index of a message (-1: not an input topic). */
static int msg_kind(sc_t *sc, const rd_kafka_message_t *m)
{
    int kind;
    for (int i = 0; i < 3; i++)
        if (sc->rkt_cache[i].rkt && sc->rkt_cache[i].rkt == m->rkt)
            return sc->rkt_cache[i].kind;
    if (!m->rkt)
        return -1;
    kind = sc_topic_kind(sc, rd_kafka_topic_name(m->rkt));
    if (kind >= 0) {
        sc->rkt_cache[kind].rkt = m->rkt;
        sc->rkt_cache[kind].kind = kind;
    }
    return kind;
}

/* Applies one input message. Returns 1 when it was not applied because its prospect is in
 * the batch being pushed (only while sc->sync.busy_check is set), else 0. */
static int handle(sc_t *sc, rd_kafka_message_t *m, int kind, int64_t now_ms)
{
    cs_event_t ev;
    if (kind < 0 || m->partition < 0 || m->partition >= sc->nparts)
        return 0;
    if (!sc_decode(sc, m, (cs_ev_kind_t)kind, &ev)) {
        cs_result_t r = cs_sync_apply(&sc->sync, &ev, now_ms);
        if (r == CS_R_BUSY)
            return 1;
        cs_counter_add(sc->m.results[r], 1);
    }
    cs_counter_add(sc->m.consumed[kind], 1);
    /* the highest read (a set-aside event is applied after later ones of its partition; the
     * commit stays below set-aside and queued events on its own) */
    if (m->offset + 1 > sc->next_offset[kind * sc->nparts + m->partition])
        sc->next_offset[kind * sc->nparts + m->partition] = m->offset + 1;
    return 0;
}

int sc_idle(void *opaque)
{
    sc_t *sc = opaque;
    rd_kafka_message_t *m;
    int n = 0;
    int64_t now;
    /* Not outside a flush, not after a rebalance aborted it, not while stopping (the drain
     * pushes what is queued, it reads no more), and not beyond a bounded backlog of ready
     * prospects or set-aside events. */
    if (!sc->in_push || sc->push_aborted || cs_run_stopping() || sc->nstash >= SC_STASH_MAX ||
        cs_queue_len(sc->sync.queue, CS_QL_READY) >= (size_t)sc->batch_max * 200)
        return 0;
    now = cs_now_ms();
    int64_t t0 = cs_now_us();
    sc->sync.busy_check = 1;
    while (n < 256 && sc->nstash < SC_STASH_MAX && (m = cs_consumer_poll(sc->consumer, 0))) {
        int kind = msg_kind(sc, m);
        n++;
        if (!m->err && !sc->push_aborted && handle(sc, m, kind, now)) {
            sc->stash[sc->nstash].m = m;
            sc->stash[sc->nstash].kind = kind;
            sc->nstash++;
            continue;
        }
        rd_kafka_message_destroy(m);
        if (sc->push_aborted)
            break; /* a rebalance ran inside the poll */
    }
    sc->sync.busy_check = 0;
    sc->idle_us += cs_now_us() - t0;
    return n;
}

void sc_apply_stash(sc_t *sc)
{
    int64_t now, t0;
    if (!sc->nstash)
        return;
    now = cs_now_ms();
    t0 = cs_now_us();
    for (int i = 0; i < sc->nstash; i++) {
        rd_kafka_message_t *m = sc->stash[i].m;
        if (m->partition >= 0 && m->partition < sc->nparts && sc->owned[m->partition])
            handle(sc, m, sc->stash[i].kind, now);
        rd_kafka_message_destroy(m);
    }
    sc->nstash = 0;
    sc->idle_us += cs_now_us() - t0; /* reading, and counted as such by the loop */
}

static void update_gauges(sc_t *sc)
{
    int64_t lag = 0;
    cs_gauge_set(sc->m.queue_depth, (int64_t)cs_queue_total(sc->sync.queue));
    cs_gauge_set(sc->m.queue_retry, (int64_t)cs_queue_len(sc->sync.queue, CS_QL_RETRY));
    cs_gauge_set(sc->m.state_prospects, (int64_t)cs_store_count(sc->sync.store));
    cs_gauge_set(sc->m.state_bytes, (int64_t)cs_store_bytes(sc->sync.store));
    for (int k = 0; k < 3; k++) {
        const char *topic = sc_input_topic(sc, k);
        for (int part = 0; part < sc->nparts; part++) {
            int64_t lo, hi, next = sc->next_offset[k * sc->nparts + part], l = 0;
            char lbl[64];
            if (!sc->owned[part])
                continue;
            /* cached watermarks (no request): fetch responses keep them fresh */
            if (!rd_kafka_get_watermark_offsets(cs_consumer_handle(sc->consumer), topic, part, &lo,
                                                &hi) &&
                hi >= 0)
                l = hi - (next >= 0 ? next : lo);
            lag += l;
            snprintf(lbl, sizeof(lbl), "input=\"%s\",partition=\"%d\"",
                     k == 0   ? "prospect"
                     : k == 1 ? "activity"
                              : "crm",
                     part);
            cs_gauge_set(cs_metrics_gauge(sc->metrics, "crmsync_partition_lag_events",
                                          "Input events not yet read, per owned partition", lbl),
                         l);
        }
    }
    cs_gauge_set(sc->m.lag, lag);
}

static int run(sc_t *sc)
{
    int64_t last_gauges = 0;
    while (!cs_run_stopping()) {
        rd_kafka_message_t *m;
        int wait = 100, n = 0;
        int64_t now = cs_now_ms();

        while (sc->control && (m = rd_kafka_consumer_poll(sc->control, 0))) {
            if (!m->err)
                sc_control(sc, m);
            rd_kafka_message_destroy(m);
        }
        /* Wake up in time for the oldest queued prospect's linger deadline. */
        if (cs_queue_len(sc->sync.queue, CS_QL_READY) && !sc->paused && now >= sc->hold_until) {
            int64_t due = cs_queue_oldest(sc->sync.queue, CS_QL_READY) + sc->linger_ms - now;
            if (due < wait) /* at least 5 ms: a push held back (changelog stalled) must not
                               make the loop spin */
                wait = due < 5 ? 5 : (int)due;
        }
        /* ... and for the first hold to end (cs_sync_release_held). */
        if (cs_queue_len(sc->sync.queue, CS_QL_HELD)) {
            uint32_t h = cs_queue_first(sc->sync.queue, CS_QL_HELD);
            int64_t due = cs_queue_entry(sc->sync.queue, h)->hold_until - now;
            if (due < wait)
                wait = due < 5 ? 5 : (int)due;
        }
        int64_t t0 = cs_now_us(), t1;
        while (n < 10000 && (m = cs_consumer_poll(sc->consumer, n ? 0 : wait))) {
            if (!n) {
                now = cs_now_ms(); /* one clock read per poll batch: linger is coarse */
                t1 = cs_now_us();
                cs_counter_add(sc->m.phase_us[SC_PHASE_WAIT], (uint64_t)(t1 - t0));
                t0 = t1;
            }
            if (!m->err)
                handle(sc, m, msg_kind(sc, m), now);
            rd_kafka_message_destroy(m);
            n++;
            /* A full batch does not wait for the poll loop to drain. */
            if (cs_queue_len(sc->sync.queue, CS_QL_READY) >= (size_t)sc->batch_max * 4)
                break;
        }
        if (!n)
            cs_counter_add(sc->m.phase_us[SC_PHASE_WAIT], (uint64_t)(cs_now_us() - t0));
        else
            cs_counter_add(sc->m.phase_us[SC_PHASE_READ], (uint64_t)(cs_now_us() - t0));
        /* Events read during a batch wait for it: applied before anything else. */
        t0 = cs_now_us();
        sc->idle_us = 0;
        /* Full batches back to back, but for at most 100 ms: reading goes on inside them
         * (sc_idle), and commits, control commands and the admin views must not wait for a
         * whole backlog. */
        int64_t until = cs_now_ms() + 100;
        do
            sc_apply_stash(sc);
        while (sc_flush(sc, 0) >= sc->batch_max && cs_now_ms() < until);
        sc_apply_stash(sc);
        t1 = cs_now_us();
        cs_counter_add(sc->m.phase_us[SC_PHASE_READ_IN_PUSH], (uint64_t)sc->idle_us);
        cs_counter_add(sc->m.phase_us[SC_PHASE_PUSH], (uint64_t)(t1 - t0 - sc->idle_us));
        sc_inspect_serve(sc);
        now = cs_now_ms();
        cs_producer_poll(sc->producer, 0); /* delivery reports: commits move on */
        sc_commit_progress(sc);
        if (now - sc->last_commit_ms >= sc->commit_interval_ms || sc->sync.nlog > 50000) {
            t0 = cs_now_us();
            sc_commit(sc);
            cs_counter_add(sc->m.phase_us[SC_PHASE_COMMIT], (uint64_t)(cs_now_us() - t0));
        }
        if (now - last_gauges >= 1000) {
            update_gauges(sc);
            last_gauges = now;
        }
    }
    return 0;
}

/* Clean shutdown: push what is queued (bounded), then commit behind it. */
static void drain(sc_t *sc)
{
    int64_t deadline = cs_now_ms() + 15000;
    sc_apply_stash(sc); /* read during the last batch: pushed with the rest */
    CS_INFO("sync", "draining %zu queued prospect(s)", cs_queue_total(sc->sync.queue));
    while (cs_queue_len(sc->sync.queue, CS_QL_READY) + cs_queue_len(sc->sync.queue, CS_QL_PRIO) >
               0 &&
           !sc->paused && cs_now_ms() < deadline && cs_now_ms() >= sc->hold_until) {
        if (sc_flush(sc, 1) <= 0)
            break;
    }
    sc_commit_sync(sc);
}

int main(int argc, char **argv)
{
    sc_t sc;
    char errstr[512];
    int rc = 1, err;
    memset(&sc, 0, sizeof(sc));

    sc.conf = cs_conf_new("crmsync-sync-consumer", usage, sync_opts);
    if (!sc.conf || cs_conf_add_opts(sc.conf, cs_topics_opts) ||
        cs_conf_add_opts(sc.conf, cs_api_opts) || cs_conf_add_opts(sc.conf, cs_fields_opts)) {
        fprintf(stderr, "crmsync-sync-consumer: out of memory\n");
        return 1;
    }
    cs_conf_set_check(sc.conf, cs_kafka_check_conf);
    err = cs_conf_from_args(sc.conf, argc, argv, NULL, errstr, sizeof(errstr));
    if (err) {
        if (err < 0)
            fprintf(stderr, "crmsync-sync-consumer: %s\n", errstr);
        cs_conf_destroy(sc.conf);
        return err < 0 ? 2 : 0;
    }
    cs_run_install_signals();

    if (cs_fieldmap_init(&sc.fm, sc.conf, errstr, sizeof(errstr)) ||
        parse_users(&sc, cs_conf_str(sc.conf, "users.map"), errstr, sizeof(errstr))) {
        CS_ERROR("sync", "%s", errstr);
        rc = 2;
        goto out;
    }
    for (int t = 0; t < CS_TOPIC_COUNT_; t++)
        sc.topics[t] = cs_topic_name(sc.conf, (cs_topic_id_t)t);
    sc.nparts = (int)cs_conf_int(sc.conf, "topics.partitions");
    sc.batch_max = (int)cs_conf_int(sc.conf, "batch.max");
    sc.linger_ms = cs_conf_int(sc.conf, "batch.linger.ms");
    sc.settle_ms = cs_conf_int(sc.conf, "batch.settle.ms");
    sc.max_attempts = (int)cs_conf_int(sc.conf, "sync.max_attempts");
    sc.commit_interval_ms = cs_conf_int(sc.conf, "commit.interval.ms");
    sc.paused = cs_conf_bool(sc.conf, "sync.paused");
    sc.assign_unassigned_to = cs_conf_str(sc.conf, "sync.assign_unassigned_to");
    sc.api_healthy = 1;
    cs_backoff_init(&sc.backoff);
    sc.backoff.rate_max_ms = 60000; /* a rate limit holds every push: keep the hold short */
    sc.owned = calloc((size_t)sc.nparts, 1);
    sc.next_offset = malloc(3 * (size_t)sc.nparts * sizeof(int64_t));
    sc.stored = malloc(3 * (size_t)sc.nparts * sizeof(int64_t));
    if (!sc.owned || !sc.next_offset || !sc.stored)
        goto out;
    for (int i = 0; i < 3 * sc.nparts; i++)
        sc.next_offset[i] = sc.stored[i] = -1;

    if (!(sc.metrics = cs_metrics_new()))
        goto out;
    metrics_init(&sc);
    cs_gauge_set(sc.m.paused, sc.paused);
    if (!(sc.reg = cs_avro_registry_new(errstr, sizeof(errstr))) ||
        !(sc.dec = cs_avro_decoder_new(sc.reg)) ||
        !(sc.enc = cs_avro_encoder_new(sc.reg, CS_AVRO_SINGLE_OBJECT))) {
        CS_ERROR("sync", "Avro setup: %s", errstr);
        goto out;
    }
    sc.sync.store = cs_store_new(sc.fm.n);
    sc.sync.queue = cs_queue_new();
    sc.sync.fm = &sc.fm;
    sc.sync.sync_email_changes = cs_conf_bool(sc.conf, "sync.email_changes");
    sc.sync.auto_create_prospects = cs_conf_bool(sc.conf, "sync.auto_create_prospects");
    sc.sync.hold_ms = cs_conf_int(sc.conf, "sync.stamped_hold.ms");
    if (!sc.sync.store || !sc.sync.queue)
        goto out;
    if (!(sc.api = cs_api_new(sc.conf, sc.metrics, errstr, sizeof(errstr)))) {
        CS_ERROR("sync", "API setup: %s", errstr);
        rc = 2;
        goto out;
    }
    cs_api_set_idle(sc.api, sc_idle, &sc); /* reads on while a batch waits (sc_idle) */
    if (!(sc.producer = cs_producer_new(sc.conf, sc_on_delivery, &sc, errstr, sizeof(errstr)))) {
        CS_ERROR("sync", "producer: %s", errstr);
        goto out;
    }
    {
        const char *inputs[3] = {sc.topics[CS_TOPIC_PROSPECT], sc.topics[CS_TOPIC_ACTIVITY],
                                 sc.topics[CS_TOPIC_CRM]};
        cs_rebalance_hooks_t hooks = {sc_on_assign, sc_on_revoke, &sc};
        /* range keeps partition p of every input topic on one replica (co-partitioning) */
        if (!cs_conf_kafka(sc.conf, "partition.assignment.strategy"))
            cs_conf_set(sc.conf, "kafka.partition.assignment.strategy", "range", NULL, 0);
        sc.consumer = cs_consumer_new(sc.conf, cs_conf_str(sc.conf, "group.id"), inputs, 3, &hooks,
                                      errstr, sizeof(errstr));
        if (!sc.consumer) {
            CS_ERROR("sync", "consumer: %s", errstr);
            goto out;
        }
    }
    if (!(sc.control = control_new(&sc, errstr, sizeof(errstr))))
        CS_WARN("sync", "control topic reader: %s", errstr);
    if (cs_conf_int(sc.conf, "http.port") >= 0) {
        cs_httpd_opts_t ho;
        memset(&ho, 0, sizeof(ho));
        ho.bind = cs_conf_str(sc.conf, "http.bind");
        ho.port = (int)cs_conf_int(sc.conf, "http.port");
        ho.metrics = sc.metrics;
        ho.handler = sc_inspect_http;
        ho.opaque = &sc;
        ho.health = health;
        ho.health_opaque = &sc;
        if (!(sc.httpd = cs_httpd_new(&ho, errstr, sizeof(errstr)))) {
            CS_ERROR("sync", "HTTP server: %s", errstr);
            goto out;
        }
        CS_INFO("sync", "metrics on http://%s:%d/metrics", ho.bind, cs_httpd_port(sc.httpd));
    }
    CS_INFO("sync", "started: group %s, %d partitions, batch %d, linger %" PRId64 " ms%s",
            cs_conf_str(sc.conf, "group.id"), sc.nparts, sc.batch_max, sc.linger_ms,
            sc.paused ? ", paused" : "");
    /* Learn the users we write as before the first event is compared (echo suppression);
     * if the APIs are not reachable yet, the flush keeps asking. */
    sc_learn_self(&sc, cs_now_ms());
    rc = run(&sc);
    drain(&sc);
    CS_INFO("sync", "stopped");
out:
    sc_inspect_cancel();
    cs_httpd_destroy(sc.httpd);
    sc.httpd = NULL;
    for (int i = 0; i < sc.nstash; i++) /* not applied: not committed either */
        rd_kafka_message_destroy(sc.stash[i].m);
    sc.nstash = 0;
    cs_consumer_destroy(sc.consumer); /* leaves the group: revoke hook, final commit */
    if (sc.control) {
        rd_kafka_consumer_close(sc.control);
        rd_kafka_destroy(sc.control);
    }
    cs_httpd_destroy(sc.httpd);
    cs_producer_destroy(sc.producer);
    cs_api_destroy(sc.api);
    cs_avro_encoder_destroy(sc.enc);
    cs_avro_decoder_destroy(sc.dec);
    cs_avro_registry_destroy(sc.reg);
    cs_sync_free(&sc.sync);
    cs_store_destroy(sc.sync.store);
    cs_queue_destroy(sc.sync.queue);
    cs_metrics_destroy(sc.metrics);
    free(sc.pend_offsets);
    free(sc.owned);
    free(sc.next_offset);
    free(sc.stored);
    cs_conf_destroy(sc.conf);
    return rc;
}
