/* The state changelog (compacted topic, keyed by prospect, co-partitioned with the inputs),
 * the rebalance hooks and offset commits.
 *
 * Invariant: the changelog and the state record hold only what was pushed (pending values
 * live in queue entries), and an input offset is committed only when every event before it
 * is resolved: pushed (and that state delivered to the changelog), recorded as an error, or
 * found to change nothing. A replica that dies loses only queue entries; whoever takes the
 * partition restores the pushed state and re-reads the uncommitted events. */
#include "sync.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const wait_names[] = {
    [CS_WAIT_NONE] = "OK",
    [CS_WAIT_UNASSIGNED] = "WAITING_UNASSIGNED",
    [CS_WAIT_NO_EMAIL] = "WAITING_NO_EMAIL",
    [CS_WAIT_NO_PROSPECT] = "WAITING_NO_PROSPECT",
    [CS_WAIT_ERROR] = "ERROR",
    [CS_WAIT_DO_NOT_SYNC] = "DO_NOT_SYNC",
};

const char *sc_input_topic(const sc_t *sc, int kind)
{
    return sc->topics[kind == CS_EV_PROSPECT   ? CS_TOPIC_PROSPECT
                      : kind == CS_EV_ACTIVITY ? CS_TOPIC_ACTIVITY
                                               : CS_TOPIC_CRM];
}

int sc_topic_kind(const sc_t *sc, const char *topic)
{
    if (!strcmp(topic, sc->topics[CS_TOPIC_PROSPECT]))
        return CS_EV_PROSPECT;
    if (!strcmp(topic, sc->topics[CS_TOPIC_ACTIVITY]))
        return CS_EV_ACTIVITY;
    if (!strcmp(topic, sc->topics[CS_TOPIC_CRM]))
        return CS_EV_CRM;
    return -1;
}

/* Written with cs_avro_encode_sync_state(): no avro-c value, no allocation per record (the
 * bytes are those the generic path wrote; tests/unit/test_state_encode.c checks it). */
int sc_write_state(sc_t *sc, uint32_t st)
{
    const cs_pstate_t *p = cs_store_at(sc->sync.store, st);
    cs_field_state_rec_t fs[CS_FIELDS_MAX];
    cs_sync_state_rec_t r = {0};
    const void *out;
    size_t out_len, nfs = 0;
    int err;

    r.prospect_key = cs_store_key(sc->sync.store, st, &r.prospect_key_len);
    r.has_prospect_id = (p->flags & CS_PS_HAS_PROSPECT_ID) != 0;
    r.prospect_id = p->prospect_id;
    r.marketing_watermark = p->mkt_watermark;
    r.crm_watermark = p->crm_watermark;
    r.has_updated_at = true;
    r.updated_at = p->updated_at;
    r.has_last_activity_at = p->last_activity_at != 0;
    r.last_activity_at = p->last_activity_at;
    r.has_crm_last_modified = p->crm_last_modified != 0;
    r.crm_last_modified = p->crm_last_modified;
    r.crm_object = -1;
    if (p->crm_object != CS_LINK_NONE) {
        r.crm_object = p->crm_object == CS_LINK_CONTACT ? CS_OBJECT_CONTACT : CS_OBJECT_LEAD;
        r.crm_id = p->crm_id;
        r.crm_id_len = sizeof p->crm_id; /* all 18 bytes, as before */
    }
    r.has_assigned_user_id = (p->flags & CS_PS_ASSIGNED) != 0;
    r.assigned_user_id = p->assigned_user_id;
    r.do_not_sync = (p->flags & CS_PS_DO_NOT_SYNC) != 0;
    for (int f = 0; f < sc->fm.n && f < CS_FIELDS_MAX; f++) {
        if (!p->fields[f].hash)
            continue;
        fs[nfs] = (cs_field_state_rec_t){
            .name = sc->fm.f[f].name,
            .name_len = strlen(sc->fm.f[f].name),
            .time = p->fields[f].time,
            .side = (p->side_crm & (1u << f)) ? CS_SIDE_CRM : CS_SIDE_MARKETING,
            .hash = p->fields[f].hash,
        };
        nfs++;
    }
    r.fields = fs;
    r.n_fields = nfs;
    r.last_result = p->wait < sizeof(wait_names) / sizeof(*wait_names) ? wait_names[p->wait] : "OK";
    r.last_result_len = strlen(r.last_result);
    r.pending = p->queue != CS_NONE || (p->flags & CS_PS_WAITING);
    if ((err = cs_avro_encode_sync_state(sc->enc, &r, &out, &out_len))) {
        CS_ERROR("sync", "cannot encode a state record: %s", cs_avro_encoder_error(sc->enc));
        return err;
    }
    cs_counter_add(sc->m.changelog_writes, 1);
    /* Same partition number as the inputs: the replica owning the inputs owns the state. */
    return sc_send(sc, sc->topics[CS_TOPIC_STATE], p->partition, r.prospect_key, r.prospect_key_len,
                   out, out_len);
}

int sc_send(sc_t *sc, const char *topic, int32_t partition, const void *key, size_t klen,
            const void *value, size_t len)
{
    uint64_t epoch = sc->epoch;
    int err = cs_producer_send_partition(sc->producer, topic, partition, key, klen, value, len, 0,
                                         (void *)(uintptr_t)epoch, -1);
    if (!err)
        sc->outstanding[epoch % SC_COMMIT_SLOTS]++;
    return err;
}

void sc_on_delivery(void *opaque, void *msg_opaque, int err, const char *errstr, int32_t partition,
                    int64_t offset)
{
    sc_t *sc = opaque;
    uint64_t epoch = (uint64_t)(uintptr_t)msg_opaque;
    (void)err, (void)errstr, (void)partition, (void)offset; /* failures: cs_producer_failed */
    if (sc->outstanding[epoch % SC_COMMIT_SLOTS])
        sc->outstanding[epoch % SC_COMMIT_SLOTS]--;
}

/* The lowest unresolved offset of each input topic-partition, from the queue. */
static void queue_low_offsets(sc_t *sc, int64_t *low)
{
    static const cs_qlist_t lists[] = {CS_QL_READY, CS_QL_PRIO, CS_QL_INFLIGHT, CS_QL_RETRY,
                                       CS_QL_HELD};
    for (size_t li = 0; li < sizeof(lists) / sizeof(*lists); li++) {
        for (uint32_t e = cs_queue_first(sc->sync.queue, lists[li]); e != CS_NONE;
             e = cs_queue_next(sc->sync.queue, e)) {
            const cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
            int part = cs_store_at(sc->sync.store, x->state)->partition;
            for (int k = 0; k < 3; k++) {
                int64_t o = x->min_offset[k];
                int64_t *l = &low[k * sc->nparts + part];
                if (o >= 0 && (*l < 0 || o < *l))
                    *l = o;
            }
        }
    }
    /* Events set aside during a batch are not applied yet: nothing past them either. */
    for (int i = 0; i < sc->nstash; i++) {
        const rd_kafka_message_t *m = sc->stash[i].m;
        int k = sc->stash[i].kind;
        if (k < 0 || m->partition < 0 || m->partition >= sc->nparts)
            continue;
        int64_t *l = &low[k * sc->nparts + m->partition];
        if (*l < 0 || m->offset < *l)
            *l = m->offset;
    }
}

/* Stores and commits the offsets of the oldest closed epochs whose records are all
 * delivered, oldest first. */
void sc_commit_progress(sc_t *sc)
{
    int stored = 0;
    while (sc->pend_n && !sc->outstanding[sc->pend_first % SC_COMMIT_SLOTS]) {
        const int64_t *offs =
            sc->pend_offsets + (sc->pend_first % SC_COMMIT_SLOTS) * 3 * (size_t)sc->nparts;
        if (cs_producer_failed(sc->producer)) {
            /* A delivery failed for good: state we cannot prove written. Stop committing;
             * the operator sees it in the logs and metrics, and a restart re-reads. */
            static int warned;
            if (!warned++)
                CS_ERROR("sync",
                         "%" PRIu64 " changelog/error record(s) failed delivery: not committing",
                         cs_producer_failed(sc->producer));
            return;
        }
        for (int k = 0; k < 3; k++) {
            for (int part = 0; part < sc->nparts; part++) {
                int i = k * sc->nparts + part;
                int64_t next = offs[i];
                if (!sc->owned[part] || next < 0 || next <= sc->stored[i])
                    continue;
                if (!cs_consumer_store_offset(sc->consumer, sc_input_topic(sc, k), part, next))
                    sc->stored[i] = next;
            }
        }
        sc->pend_first++;
        sc->pend_n--;
        stored = 1;
    }
    if (stored) {
        cs_consumer_commit(sc->consumer, 1);
        cs_counter_add(sc->m.commits, 1);
    }
}

/* Waits (up to 30 s) for every record in flight, then commits what they allow. */
static int wait_deliveries(sc_t *sc)
{
    int err = cs_producer_flush(sc->producer, 30000);
    if (err) {
        CS_WARN("sync", "changelog/errors not delivered yet (%d in flight): offsets not committed",
                cs_producer_outq_len(sc->producer));
        return err;
    }
    sc_commit_progress(sc);
    return CS_OK;
}

int sc_commit(sc_t *sc)
{
    int err;
    int64_t *low;

    sc->last_commit_ms = cs_now_ms();
    if (!sc->pend_offsets &&
        !(sc->pend_offsets = malloc(SC_COMMIT_SLOTS * 3 * (size_t)sc->nparts * sizeof(int64_t))))
        return CS_ERR_NOMEM;
    cs_producer_poll(sc->producer, 0);
    sc_commit_progress(sc);
    if (sc->pend_n >= SC_COMMIT_SLOTS - 1) {
        /* Every slot waits for deliveries (a slow or absent broker): wait for them. */
        if ((err = wait_deliveries(sc)))
            return err;
        if (sc->pend_n >= SC_COMMIT_SLOTS - 1)
            return CS_ERR_KAFKA; /* failed deliveries: nothing more is committed */
    }

    /* 1. The changelog: every changed prospect not written since (after its push), in this
     * epoch. */
    for (size_t i = 0; i < sc->sync.nlog; i++)
        if (cs_store_at(sc->sync.store, sc->sync.logq[i])->log_dirty == CS_LOG_DIRTY &&
            (err = sc_write_state(sc, sc->sync.logq[i])))
            return err; /* the list stays: written again at the next commit point */
    cs_sync_log_clear(&sc->sync);

    /* 2. Offsets: below every unresolved event, safe once this epoch is delivered. */
    low = sc->pend_offsets + (sc->epoch % SC_COMMIT_SLOTS) * 3 * (size_t)sc->nparts;
    for (int i = 0; i < 3 * sc->nparts; i++)
        low[i] = -1;
    queue_low_offsets(sc, low);
    for (int i = 0; i < 3 * sc->nparts; i++) {
        int64_t next = sc->next_offset[i];
        if (next >= 0 && low[i] >= 0 && low[i] < next)
            next = low[i];
        low[i] = next;
    }
    if (sc->pend_n == 0)
        sc->pend_first = sc->epoch;
    sc->pend_ms[sc->epoch % SC_COMMIT_SLOTS] = cs_now_ms();
    sc->pend_n++;
    sc->epoch++;
    sc->outstanding[sc->epoch % SC_COMMIT_SLOTS] = 0; /* the slot is reused */
    sc_commit_progress(sc);
    return CS_OK;
}

int sc_changelog_stalled(const sc_t *sc, int64_t now)
{
    uint64_t k = sc->pend_first % SC_COMMIT_SLOTS;
    /* reported failures do not count: they stop the commits, not the pushes */
    return sc->pend_n && sc->outstanding[k] && now - sc->pend_ms[k] > SC_STALL_MS;
}

int sc_commit_sync(sc_t *sc)
{
    int err = sc_commit(sc);
    if (err || (err = wait_deliveries(sc)))
        return err;
    return sc->pend_n ? CS_ERR_KAFKA : CS_OK;
}

/* ------------------------------------------------------------------ restore */

static void restore_record(sc_t *sc, int part, const avro_value_t *r)
{
    size_t klen;
    const char *key = cs_avro_get_str(r, CS_SS_PROSPECT_KEY, &klen);
    int created;
    int64_t v;
    bool b;
    uint32_t st;
    cs_pstate_t *p;

    if (!key || !klen)
        return;
    st = cs_store_upsert(sc->sync.store, key, klen, part, &created);
    if (st == CS_NONE)
        return;
    p = cs_store_at(sc->sync.store, st);
    /* A later record of the same key replaces an earlier one entirely. */
    p->flags = 0;
    p->side_crm = 0;
    memset(p->fields, 0, (size_t)sc->fm.n * sizeof(cs_fstate_t));
    if (cs_avro_get_long(r, CS_SS_PROSPECT_ID, &v)) {
        p->prospect_id = v;
        p->flags |= CS_PS_HAS_PROSPECT_ID | CS_PS_SEEN_MARKETING;
    }
    cs_avro_get_long(r, CS_SS_MARKETING_WATERMARK, &p->mkt_watermark);
    cs_avro_get_long(r, CS_SS_CRM_WATERMARK, &p->crm_watermark);
    cs_avro_get_long(r, CS_SS_UPDATED_AT, &p->updated_at);
    if (!cs_avro_get_long(r, CS_SS_LAST_ACTIVITY_AT, &p->last_activity_at))
        p->last_activity_at = 0;
    if (!cs_avro_get_long(r, CS_SS_CRM_LAST_MODIFIED, &p->crm_last_modified))
        p->crm_last_modified = 0;
    {
        int obj = cs_avro_get_enum(r, CS_SS_CRM_OBJECT);
        size_t idlen;
        const char *id = cs_avro_get_str(r, CS_SS_CRM_ID, &idlen);
        if (obj >= 0 && id && idlen == 18) {
            memcpy(p->crm_id, id, 18);
            p->crm_object = obj == CS_OBJECT_CONTACT ? CS_LINK_CONTACT : CS_LINK_LEAD;
            /* a contact, or a record we have written to (a marketing change was pushed) */
            if (p->crm_object == CS_LINK_CONTACT || p->mkt_watermark > 0)
                p->flags |= CS_PS_LINK_SURE;
        } else {
            p->crm_object = CS_LINK_NONE;
            memset(p->crm_id, 0, sizeof(p->crm_id));
        }
    }
    if (cs_avro_get_long(r, CS_SS_ASSIGNED_USER_ID, &v)) {
        p->assigned_user_id = v;
        p->flags |= CS_PS_ASSIGNED;
    }
    if (cs_avro_get_bool(r, CS_SS_DO_NOT_SYNC, &b) && b)
        p->flags |= CS_PS_DO_NOT_SYNC;
    for (size_t k = 0, n = cs_avro_count(r, CS_SS_FIELDS); k < n; k++) {
        avro_value_t item;
        const char *name;
        int f;
        if (cs_avro_get_item(r, CS_SS_FIELDS, k, &item, NULL))
            continue;
        name = cs_avro_get_str(&item, CS_FS_NAME, NULL);
        if (!name || (f = cs_fieldmap_find(&sc->fm, name)) < 0)
            continue; /* a field no longer mapped */
        if (cs_avro_get_long(&item, CS_FS_TIME, &v))
            p->fields[f].time = v;
        if (cs_avro_get_long(&item, CS_FS_HASH, &v))
            p->fields[f].hash = (uint32_t)v;
        if (cs_avro_get_enum(&item, CS_FS_SIDE) == CS_SIDE_CRM)
            p->side_crm |= 1u << f;
    }
    {
        const char *res = cs_avro_get_str(r, CS_SS_LAST_RESULT, NULL);
        p->wait = CS_WAIT_NONE;
        for (size_t w = 1; res && w < sizeof(wait_names) / sizeof(*wait_names); w++)
            if (!strcmp(res, wait_names[w]))
                p->wait = (uint8_t)w;
        if (p->wait == CS_WAIT_UNASSIGNED || p->wait == CS_WAIT_ERROR)
            p->flags |= CS_PS_WAITING;
    }
}

/* Reads the changelog partition from its start to its end at this moment. */
static int restore_partition(sc_t *sc, int part)
{
    char errstr[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(sc->conf, errstr, sizeof(errstr));
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *l = NULL;
    int64_t lo = 0, hi = 0, n = 0, t0 = cs_now_ms();
    const char *topic = sc->topics[CS_TOPIC_STATE];
    int err = CS_OK;

    if (!kc)
        return CS_ERR_CONFIG;
    rd_kafka_conf_set(kc, "group.id", "crmsync-restore", NULL, 0);
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(kc, "enable.partition.eof", "false", NULL, 0);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(kc);
        CS_ERROR("sync", "restore: %s", errstr);
        return CS_ERR_KAFKA;
    }
    for (int tries = 0;; tries++) {
        rd_kafka_resp_err_t qe = rd_kafka_query_watermark_offsets(rk, topic, part, &lo, &hi, 5000);
        if (!qe)
            break;
        if (tries >= 40 || cs_run_stopping()) {
            CS_ERROR("sync", "restore of %s [%d]: %s", topic, part, rd_kafka_err2str(qe));
            err = CS_ERR_KAFKA;
            goto out;
        }
        /* e.g. "not leader" right after the topic was created, or during a broker restart */
        cs_run_sleep_ms(250);
    }
    if (hi > lo) {
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, part)->offset = lo;
        rd_kafka_assign(rk, l);
        while (!cs_run_stopping()) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
            cs_avro_decoded_t d;
            if (!m)
                continue;
            if (!m->err && m->payload && !cs_avro_decode(sc->dec, m->payload, m->len, &d) &&
                d.schema == CS_AVRO_SYNC_STATE) {
                restore_record(sc, part, d.value);
                n++;
            }
            int64_t off = m->offset;
            int fatal = m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF;
            rd_kafka_message_destroy(m);
            if (fatal)
                continue; /* transient: librdkafka retries */
            if (off >= hi - 1)
                break;
        }
        rd_kafka_assign(rk, NULL);
    }
    CS_INFO("sync", "restored %" PRId64 " state record(s) of partition %d in %" PRId64 " ms", n,
            part, cs_now_ms() - t0);
out:
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return err;
}

/* ------------------------------------------------------------------ rebalance */

/* Abandons the queue entries of the partitions in drop[] (their events are re-read by the
 * next owner: nothing was committed past them) and forgets their state. */
static void forget_partitions(sc_t *sc, const uint8_t *drop)
{
    static const cs_qlist_t lists[] = {CS_QL_READY, CS_QL_PRIO, CS_QL_INFLIGHT, CS_QL_RETRY,
                                       CS_QL_HELD};
    size_t dropped = 0;
    for (size_t li = 0; li < sizeof(lists) / sizeof(*lists); li++) {
        uint32_t e = cs_queue_first(sc->sync.queue, lists[li]);
        while (e != CS_NONE) {
            uint32_t next = cs_queue_next(sc->sync.queue, e);
            cs_pstate_t *p = cs_store_at(sc->sync.store, cs_queue_entry(sc->sync.queue, e)->state);
            if (drop[p->partition]) {
                p->queue = CS_NONE;
                p->dirty_crm = p->dirty_mkt = 0;
                cs_queue_remove(sc->sync.queue, e);
                dropped++;
            }
            e = next;
        }
    }
    cs_store_drop_partitions(sc->sync.store, drop, (size_t)sc->nparts);
    /* Compaction moved records: point the queue at them again, and rebuild the changelog
     * list from the log_dirty flags of the records that are left. */
    sc->sync.nlog = 0;
    for (uint32_t st = 0; st < cs_store_count(sc->sync.store); st++) {
        cs_pstate_t *p = cs_store_at(sc->sync.store, st);
        if (p->queue != CS_NONE)
            cs_queue_entry(sc->sync.queue, p->queue)->state = st;
        if (p->log_dirty) {
            uint16_t d = p->log_dirty;
            p->log_dirty = CS_LOG_CLEAN;
            cs_sync_log_mark(&sc->sync, st);
            p->log_dirty = d; /* CS_LOG_WRITTEN stays skipped */
        }
    }
    for (int part = 0; part < sc->nparts; part++) {
        if (!drop[part])
            continue;
        sc->owned[part] = 0;
        for (int k = 0; k < 3; k++)
            sc->next_offset[k * sc->nparts + part] = sc->stored[k * sc->nparts + part] = -1;
    }
    if (dropped)
        CS_INFO("sync", "abandoned %zu queued prospect(s) of revoked partitions", dropped);
}

void sc_on_assign(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    sc_t *sc = opaque;
    uint8_t *want, *drop;
    sc_push_abort(sc); /* only when this rebalance came while a batch was in flight */
    want = calloc((size_t)sc->nparts, 1);
    drop = calloc((size_t)sc->nparts, 1);
    if (!want || !drop)
        goto out;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        if (sc_topic_kind(sc, parts->elems[i].topic) < 0)
            continue;
        if (part < 0 || part >= sc->nparts) {
            CS_ERROR("sync",
                     "%s has partition %d but topics.partitions=%d: input topics must be "
                     "co-partitioned and match the configuration",
                     parts->elems[i].topic, part, sc->nparts);
            continue;
        }
        want[part] = 1;
    }
    for (int part = 0; part < sc->nparts; part++) {
        if (!want[part] || sc->owned[part])
            continue;
        if (restore_partition(sc, part))
            CS_ERROR("sync", "partition %d starts without its restored state", part);
        sc->owned[part] = 1;
    }
    (void)drop;
out:
    free(want);
    free(drop);
    cs_gauge_set(sc->m.state_prospects, (int64_t)cs_store_count(sc->sync.store));
}

void sc_on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    sc_t *sc = opaque;
    uint8_t *drop;
    sc_push_abort(sc); /* only when this rebalance came while a batch was in flight */
    drop = calloc((size_t)sc->nparts, 1);
    if (!drop)
        return;
    /* Settle what can be settled: changelog and offsets of resolved events. */
    sc_commit_sync(sc);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        if (sc_topic_kind(sc, parts->elems[i].topic) >= 0 && part >= 0 && part < sc->nparts)
            drop[part] = 1;
    }
    {
        /* Set-aside events of these partitions: no longer ours to apply (the commit above
         * stayed below them: the next owner reads them). */
        int kept = 0;
        for (int i = 0; i < sc->nstash; i++) {
            int part = sc->stash[i].m->partition;
            if (part >= 0 && part < sc->nparts && drop[part])
                rd_kafka_message_destroy(sc->stash[i].m);
            else
                sc->stash[kept++] = sc->stash[i];
        }
        sc->nstash = kept;
    }
    forget_partitions(sc, drop);
    free(drop);
    cs_gauge_set(sc->m.state_prospects, (int64_t)cs_store_count(sc->sync.store));
}
