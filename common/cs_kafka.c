#include "cs_kafka.h"
#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

int cs_kafka_err(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return CS_OK;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return CS_ERR_QUEUE_FULL;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        return CS_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return CS_ERR_KAFKA_FATAL;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return CS_ERR_NOT_FOUND;
    default:
        return CS_ERR_KAFKA;
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* librdkafka uses syslog levels, as cs_log does; 0-2 (emerg..crit) are errors. */
    int lvl = level < CS_LOG_ERROR ? CS_LOG_ERROR : level;
    if (lvl > CS_LOG_DEBUG)
        lvl = CS_LOG_DEBUG;
    CS_LOG(lvl, "kafka", "%s: %s", fac, buf);
}

static int apply_kafka_key(void *opaque, const char *key, const char *value)
{
    void **args = opaque;
    rd_kafka_conf_t *kc = args[0];
    char *errstr = args[1];
    size_t n = *(size_t *)args[2];
    if (rd_kafka_conf_set(kc, key, value, errstr, n) != RD_KAFKA_CONF_OK) {
        /* librdkafka's message names the property; never echo the value (may be secret). */
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "kafka.%s: %s", key, errstr);
        snprintf(errstr, n, "%s", tmp);
        return CS_ERR_CONFIG;
    }
    return 0;
}

rd_kafka_conf_t *cs_kafka_conf_new(const cs_conf_t *conf, char *errstr, size_t n)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    void *args[3] = {kc, errstr, &n};
    if (!kc) {
        cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(kc, log_cb);
    if (rd_kafka_conf_set(kc, "bootstrap.servers", CS_KAFKA_DEFAULT_BOOTSTRAP, errstr, n) !=
        RD_KAFKA_CONF_OK)
        goto fail;
    if (conf && cs_conf_foreach_kafka(conf, apply_kafka_key, args))
        goto fail;
    return kc;
fail:
    rd_kafka_conf_destroy(kc);
    return NULL;
}

int cs_kafka_check_conf(const cs_conf_t *conf, char *errstr, size_t n)
{
    rd_kafka_conf_t *kc = cs_kafka_conf_new(conf, errstr, n);
    if (!kc)
        return CS_ERR_CONFIG;
    rd_kafka_conf_destroy(kc);
    return CS_OK;
}

/* Sets key=value unless the user configured key through kafka.*. */
static int set_default(rd_kafka_conf_t *kc, const cs_conf_t *conf, const char *key,
                       const char *value, char *errstr, size_t n)
{
    if (conf && cs_conf_kafka(conf, key))
        return 0;
    return rd_kafka_conf_set(kc, key, value, errstr, n) == RD_KAFKA_CONF_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ producer */

struct cs_producer_s {
    rd_kafka_t *rk;
    cs_dr_cb_t dr_cb;
    void *opaque;
    atomic_uint_fast64_t delivered, failed;
    atomic_int fatal;
};

static void producer_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    cs_producer_t *p = opaque;
    int err = cs_kafka_err(m->err);
    (void)rk;
    if (m->err)
        atomic_fetch_add_explicit(&p->failed, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&p->delivered, 1, memory_order_relaxed);
    if (p->dr_cb)
        p->dr_cb(p->opaque, m->_private, err, m->err ? rd_kafka_err2str(m->err) : NULL,
                 m->partition, m->offset);
}

static void producer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    cs_producer_t *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        atomic_store(&p->fatal, 1);
        CS_ERROR("kafka", "fatal producer error %s: %s", rd_kafka_err2name(orig), buf);
        return;
    }
    /* Transient: librdkafka retries by itself (e.g. all brokers down); delivery reports
     * carry the outcome of each message. */
    CS_WARN("kafka", "producer: %s: %s", rd_kafka_err2name(err), reason);
}

cs_producer_t *cs_producer_new(const cs_conf_t *conf, cs_dr_cb_t dr_cb, void *opaque, char *errstr,
                               size_t n)
{
    cs_producer_t *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *kc = NULL;
    if (!p) {
        cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    p->dr_cb = dr_cb;
    p->opaque = opaque;
    if (!(kc = cs_kafka_conf_new(conf, errstr, n)))
        goto fail;
    if (set_default(kc, conf, "enable.idempotence", "true", errstr, n) ||
        set_default(kc, conf, "linger.ms", "5", errstr, n) ||
        /* the Java client's partitioner: any Kafka producer puts a key where we do */
        set_default(kc, conf, "partitioner", "murmur2_random", errstr, n) ||
        set_default(kc, conf, "compression.type", "lz4", errstr, n))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(kc, producer_dr);
    rd_kafka_conf_set_error_cb(kc, producer_error);
    rd_kafka_conf_set_opaque(kc, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, n);
    if (!p->rk)
        goto fail;
    kc = NULL; /* now owned by rk */
    return p;
fail:
    if (kc)
        rd_kafka_conf_destroy(kc);
    free(p);
    return NULL;
}

int cs_producer_send_partition(cs_producer_t *p, const char *topic, int32_t partition,
                               const void *key, size_t keylen, const void *value, size_t len,
                               int64_t timestamp_ms, void *msg_opaque, int block_ms)
{
    int64_t deadline = block_ms < 0 ? -1 : cs_now_ms() + block_ms;
    for (;;) {
        rd_kafka_resp_err_t err;
        if (atomic_load(&p->fatal))
            return CS_ERR_KAFKA_FATAL;
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY((void *)key, keylen),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
            RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        if (!err)
            return CS_OK;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            CS_ERROR("kafka", "produce to %s failed: %s", topic, rd_kafka_err2str(err));
            return cs_kafka_err(err);
        }
        if (deadline >= 0 && cs_now_ms() >= deadline)
            return CS_ERR_QUEUE_FULL;
        /* Make room by serving delivery reports: poll, never sleep blindly. */
        rd_kafka_poll(p->rk, 100);
    }
}

int cs_producer_send(cs_producer_t *p, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, int64_t timestamp_ms, void *msg_opaque,
                     int block_ms)
{
    return cs_producer_send_partition(p, topic, RD_KAFKA_PARTITION_UA, key, keylen, value, len,
                                      timestamp_ms, msg_opaque, block_ms);
}

int cs_producer_poll(cs_producer_t *p, int timeout_ms)
{
    return rd_kafka_poll(p->rk, timeout_ms);
}

int cs_producer_flush(cs_producer_t *p, int timeout_ms)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
    return err ? CS_ERR_TIMEOUT : CS_OK;
}

int cs_producer_outq_len(cs_producer_t *p)
{
    return rd_kafka_outq_len(p->rk);
}

uint64_t cs_producer_delivered(const cs_producer_t *p)
{
    return atomic_load_explicit(&((cs_producer_t *)p)->delivered, memory_order_relaxed);
}

uint64_t cs_producer_failed(const cs_producer_t *p)
{
    return atomic_load_explicit(&((cs_producer_t *)p)->failed, memory_order_relaxed);
}

int cs_producer_fatal(const cs_producer_t *p)
{
    return atomic_load(&((cs_producer_t *)p)->fatal);
}

rd_kafka_t *cs_producer_handle(cs_producer_t *p)
{
    return p->rk;
}

void cs_producer_destroy(cs_producer_t *p)
{
    if (!p)
        return;
    if (rd_kafka_flush(p->rk, 10000))
        CS_WARN("kafka", "producer closing with %d message(s) undelivered",
                rd_kafka_outq_len(p->rk));
    rd_kafka_destroy(p->rk);
    free(p);
}

/* ------------------------------------------------------------------ consumer */

struct cs_consumer_s {
    rd_kafka_t *rk;
    cs_rebalance_hooks_t hooks;
};

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    cs_consumer_t *c = opaque;
    const char *proto = rd_kafka_rebalance_protocol(rk);
    int cooperative = proto && !strcmp(proto, "COOPERATIVE");

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        CS_INFO("kafka", "assigned %d partition(s) (%s)", parts->cnt, proto ? proto : "NONE");
        /* Hook first: state for these partitions is restored before any of their messages
         * is returned by poll (messages only flow once assigned). */
        if (c->hooks.on_assign)
            c->hooks.on_assign(c->hooks.opaque, parts);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                CS_ERROR("kafka", "incremental assign failed: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        return;
    }

    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        CS_INFO("kafka", "revoking %d partition(s)%s", parts->cnt,
                rd_kafka_assignment_lost(rk) ? " (lost)" : "");
        if (c->hooks.on_revoke)
            c->hooks.on_revoke(c->hooks.opaque, parts);
        /* Commit what is stored while we still own the partitions; skip when the
         * assignment was lost (another member may already own them). */
        if (!rd_kafka_assignment_lost(rk)) {
            rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
            if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                CS_WARN("kafka", "commit on revoke failed: %s", rd_kafka_err2str(cerr));
        }
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e) {
                CS_ERROR("kafka", "incremental unassign failed: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, NULL);
        }
        return;
    }

    CS_ERROR("kafka", "rebalance error: %s", rd_kafka_err2str(err));
    rd_kafka_assign(rk, NULL);
}

cs_consumer_t *cs_consumer_new(const cs_conf_t *conf, const char *group_id,
                               const char *const *topics, size_t ntopics,
                               const cs_rebalance_hooks_t *hooks, char *errstr, size_t n)
{
    cs_consumer_t *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *kc = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t err;
    if (!c) {
        cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (hooks)
        c->hooks = *hooks;
    if (!(kc = cs_kafka_conf_new(conf, errstr, n)))
        goto fail;
    if (rd_kafka_conf_set(kc, "group.id", group_id, errstr, n) != RD_KAFKA_CONF_OK ||
        set_default(kc, conf, "enable.auto.offset.store", "false", errstr, n) ||
        set_default(kc, conf, "enable.auto.commit", "true", errstr, n) ||
        set_default(kc, conf, "auto.commit.interval.ms", "1000", errstr, n) ||
        set_default(kc, conf, "auto.offset.reset", "earliest", errstr, n) ||
        /* librdkafka 2.0 applies queued.min.messages to the whole queue of a high-level
         * consumer and backs a fetch off for ~0.5 s once it is reached: on a backlog (start,
         * replay) the default 100k halves throughput (docs/PERFORMANCE.md). */
        set_default(kc, conf, "queued.min.messages", "1000000", errstr, n))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_opaque(kc, c);
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, n)))
        goto fail;
    kc = NULL; /* now owned by rk */
    rd_kafka_poll_set_consumer(c->rk);

    subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err) {
        cs_err_set(errstr, n, CS_ERR_KAFKA, "subscribe failed: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(c->rk);
        goto fail;
    }
    return c;
fail:
    if (kc)
        rd_kafka_conf_destroy(kc);
    free(c);
    return NULL;
}

rd_kafka_message_t *cs_consumer_poll(cs_consumer_t *c, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!m)
        return NULL;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rd_kafka_message_destroy(m);
        return NULL;
    }
    if (m->err)
        CS_WARN("kafka", "consumer: %s", rd_kafka_message_errstr(m));
    return m;
}

int cs_consumer_store(cs_consumer_t *c, const rd_kafka_message_t *msg)
{
    return cs_consumer_store_offset(c, rd_kafka_topic_name(msg->rkt), msg->partition,
                                    msg->offset + 1);
}

int cs_consumer_store_offset(cs_consumer_t *c, const char *topic, int32_t partition,
                             int64_t next_offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next_offset;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, l);
    if (!err && l->elems[0].err)
        err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    return cs_kafka_err(err);
}

int cs_consumer_commit(cs_consumer_t *c, int async)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, async);
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return CS_OK;
    return cs_kafka_err(err);
}

rd_kafka_t *cs_consumer_handle(cs_consumer_t *c)
{
    return c->rk;
}

void cs_consumer_destroy(cs_consumer_t *c)
{
    if (!c)
        return;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
    if (err)
        CS_WARN("kafka", "consumer close: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(c->rk);
    free(c);
}

/* ------------------------------------------------------------------ topics */

int cs_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int result;
    if (!rkt)
        return CS_ERR_KAFKA;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err)
        return cs_kafka_err(err);
    if (md->topic_cnt < 1 || md->topics[0].err)
        result = md->topic_cnt < 1 ? CS_ERR_NOT_FOUND : cs_kafka_err(md->topics[0].err);
    else
        result = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return result;
}

int cs_kafka_ensure_topics(const cs_conf_t *conf, const cs_topic_spec_t *specs, size_t n,
                           int timeout_ms, char *errstr, size_t en)
{
    rd_kafka_conf_t *kc = cs_kafka_conf_new(conf, errstr, en);
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t **nt = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *ao = NULL;
    rd_kafka_event_t *ev = NULL;
    int result = CS_OK;
    char buf[512];

    if (!kc)
        return CS_ERR_CONFIG;
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, en))) {
        rd_kafka_conf_destroy(kc);
        return CS_ERR_KAFKA;
    }
    kc = NULL; /* now owned by rk */
    nt = calloc(n, sizeof(*nt));
    if (!nt) {
        result = CS_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions,
                                      specs[i].replication_factor, buf, sizeof(buf));
        if (!nt[i]) {
            result = cs_err_set(errstr, en, CS_ERR_CONFIG, "topic %s: %s", specs[i].name, buf);
            goto out;
        }
        for (const char *const *kv = specs[i].configs; kv && kv[0] && kv[1]; kv += 2)
            rd_kafka_NewTopic_set_config(nt[i], kv[0], kv[1]);
    }
    q = rd_kafka_queue_new(rk);
    ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, buf, sizeof(buf));
    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, buf, sizeof(buf));
    rd_kafka_CreateTopics(rk, nt, n, ao, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        result = cs_err_set(errstr, en, CS_ERR_TIMEOUT, "CreateTopics timed out");
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        result = cs_err_set(errstr, en, cs_kafka_err(rd_kafka_event_error(ev)),
                            "CreateTopics failed: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
            if (te == RD_KAFKA_RESP_ERR_NO_ERROR) {
                CS_INFO("kafka", "created topic %s", rd_kafka_topic_result_name(tr[i]));
            } else if (te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                result = cs_err_set(errstr, en, CS_ERR_KAFKA, "topic %s: %s",
                                    rd_kafka_topic_result_name(tr[i]),
                                    rd_kafka_topic_result_error_string(tr[i]));
                goto out;
            }
        }
    }
    /* Existing topics must match: co-partitioning needs the same partition count. */
    for (size_t i = 0; i < n; i++) {
        int pc = -1;
        for (int tries = 0; tries < 20; tries++) {
            pc = cs_kafka_partition_count(rk, specs[i].name, timeout_ms);
            if (pc > 0)
                break;
            cs_run_sleep_ms(250); /* metadata of a just-created topic may lag */
        }
        if (pc < 0) {
            result = cs_err_set(errstr, en, pc, "topic %s: cannot read metadata: %s", specs[i].name,
                                cs_err_str(pc));
            goto out;
        }
        if (pc != specs[i].partitions) {
            result = cs_err_set(errstr, en, CS_ERR_CONFIG,
                                "topic %s has %d partitions, expected %d (all input topics "
                                "must be co-partitioned)",
                                specs[i].name, pc, specs[i].partitions);
            goto out;
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (ao)
        rd_kafka_AdminOptions_destroy(ao);
    if (q)
        rd_kafka_queue_destroy(q);
    if (nt) {
        for (size_t i = 0; i < n; i++)
            if (nt[i])
                rd_kafka_NewTopic_destroy(nt[i]);
        free(nt);
    }
    rd_kafka_destroy(rk);
    return result;
}
