/* cs_kafka: the producer, consumer and topic administration every crmsync program uses,
 * over librdkafka. Configuration comes from cs_conf: every kafka.* key is passed to
 * rd_kafka_conf_set() unchanged, on top of the defaults documented below; librdkafka's own
 * log lines are routed through cs_log with component "kafka". */
#ifndef CS_KAFKA_H
#define CS_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "cs_conf.h"

/* Used when kafka.bootstrap.servers is not configured: the local development broker
 * started by deploy/kafka/kafka.sh. */
#define CS_KAFKA_DEFAULT_BOOTSTRAP "127.0.0.1:19092"

/* Builds an rd_kafka_conf_t: defaults, then every kafka.* key of conf, with the log callback
 * routed to cs_log. Returns NULL and fills errstr on a rejected key or value.
 * Caller owns the result (hand it to rd_kafka_new or free with rd_kafka_conf_destroy). */
rd_kafka_conf_t *cs_kafka_conf_new(const cs_conf_t *conf, char *errstr, size_t errstr_size);

/* A cs_conf_check_t: every kafka.* key and value is accepted by librdkafka. */
int cs_kafka_check_conf(const cs_conf_t *conf, char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------ producer */

typedef struct cs_producer_s cs_producer_t;

/* Delivery report: err is 0 (CS_OK) or a negative CS_ERR_* code (errstr says why);
 * msg_opaque is what was passed to cs_producer_send(). Called on the thread that calls
 * cs_producer_poll() or cs_producer_flush(). */
typedef void (*cs_dr_cb_t)(void *opaque, void *msg_opaque, int err, const char *errstr,
                           int32_t partition, int64_t offset);

/* Creates an idempotent producer (enable.idempotence=true, hence acks=all; linger.ms=5;
 * compression.type=lz4; partitioner=murmur2_random, as the Java client), any of which
 * kafka.* keys may override. dr_cb may be NULL (the
 * delivered/failed counters still count). Returns NULL and fills errstr on failure.
 * Caller frees with cs_producer_destroy(). */
cs_producer_t *cs_producer_new(const cs_conf_t *conf, cs_dr_cb_t dr_cb, void *opaque, char *errstr,
                               size_t errstr_size);

/* Enqueues a copy of key and value. When librdkafka's queue is full it serves delivery
 * reports (rd_kafka_poll) and tries again, never sleeping blindly, for at most
 * block_ms (-1 = until it fits or a fatal error). timestamp_ms 0 = now.
 * Returns CS_OK, CS_ERR_QUEUE_FULL (still full after block_ms), CS_ERR_KAFKA_FATAL, or
 * CS_ERR_KAFKA (e.g. unknown topic). Success here is NOT delivery: wait for the report.
 * @locality: the thread that owns the producer. */
int cs_producer_send(cs_producer_t *p, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, int64_t timestamp_ms, void *msg_opaque,
                     int block_ms);

/* Same, to an explicit partition (e.g. RD_KAFKA_PARTITION_UA for the partitioner). */
int cs_producer_send_partition(cs_producer_t *p, const char *topic, int32_t partition,
                               const void *key, size_t keylen, const void *value, size_t len,
                               int64_t timestamp_ms, void *msg_opaque, int block_ms);

/* Serves delivery reports; returns the number of events served. */
int cs_producer_poll(cs_producer_t *p, int timeout_ms);

/* Waits until every enqueued message has a delivery report, at most timeout_ms.
 * Returns CS_OK or CS_ERR_TIMEOUT (messages still in flight). */
int cs_producer_flush(cs_producer_t *p, int timeout_ms);

/* Messages not yet reported (queued or in flight). */
int cs_producer_outq_len(cs_producer_t *p);

/* Counters of delivery reports so far. */
uint64_t cs_producer_delivered(const cs_producer_t *p);
uint64_t cs_producer_failed(const cs_producer_t *p);

/* Non-zero once librdkafka raised a fatal error (the producer must be recreated). */
int cs_producer_fatal(const cs_producer_t *p);

/* Borrowed until cs_producer_destroy(). */
rd_kafka_t *cs_producer_handle(cs_producer_t *p);

/* Flushes for at most 10 s, then destroys. Accepts NULL. Call cs_producer_flush() first when
 * the outcome matters (its result says whether everything was delivered). */
void cs_producer_destroy(cs_producer_t *p);

/* ------------------------------------------------------------------ consumer */

typedef struct cs_consumer_s cs_consumer_t;

/* Rebalance hooks, called from inside cs_consumer_poll() on the polling thread.
 * on_assign runs before any message of the new partitions is returned (restore state
 * there); on_revoke runs before the partitions are given up, while offsets can still be
 * committed (finish or abandon in-flight work there). Both get only the partitions that
 * change hands, for the EAGER and the COOPERATIVE protocol alike. */
typedef struct cs_rebalance_hooks_s {
    void (*on_assign)(void *opaque, const rd_kafka_topic_partition_list_t *parts);
    void (*on_revoke)(void *opaque, const rd_kafka_topic_partition_list_t *parts);
    void *opaque;
} cs_rebalance_hooks_t;

/* Creates a consumer in group_id subscribed to topics. Offsets are stored only by the
 * program (enable.auto.offset.store=false) after the side effects are durable, and
 * committed in the background (enable.auto.commit) and synchronously on revoke and close.
 * auto.offset.reset defaults to earliest, queued.min.messages to 1000000 (the 100k default
 * makes librdkafka 2.0 back fetches off on a backlog). hooks may be NULL.
 * Returns NULL and fills errstr on failure. Caller frees with cs_consumer_destroy(). */
cs_consumer_t *cs_consumer_new(const cs_conf_t *conf, const char *group_id,
                               const char *const *topics, size_t ntopics,
                               const cs_rebalance_hooks_t *hooks, char *errstr, size_t errstr_size);

/* Returns the next message (caller frees with rd_kafka_message_destroy()) or NULL on
 * timeout. Partition-EOF events are swallowed; other errors are logged and returned as a
 * message with ->err set, so the caller can count them. */
rd_kafka_message_t *cs_consumer_poll(cs_consumer_t *c, int timeout_ms);

/* Marks msg as processed: its offset + 1 will be committed. */
int cs_consumer_store(cs_consumer_t *c, const rd_kafka_message_t *msg);

/* Stores offset (the next offset to read) for one partition. */
int cs_consumer_store_offset(cs_consumer_t *c, const char *topic, int32_t partition,
                             int64_t next_offset);

/* Commits stored offsets now (synchronously unless async). CS_OK when there was nothing
 * to commit. */
int cs_consumer_commit(cs_consumer_t *c, int async);

/* Borrowed until cs_consumer_destroy(). */
rd_kafka_t *cs_consumer_handle(cs_consumer_t *c);

/* Leaves the group cleanly (revoke hooks run, offsets committed), then destroys.
 * Accepts NULL. */
void cs_consumer_destroy(cs_consumer_t *c);

/* ------------------------------------------------------------------ topics */

typedef struct cs_topic_spec_s {
    const char *name;
    int partitions;
    int replication_factor;
    const char *const *configs; /* "key", "value", ..., NULL; may be NULL */
} cs_topic_spec_t;

/* Creates the topics that do not exist; for those that do, checks the partition count.
 * Returns CS_OK, CS_ERR_CONFIG (a topic exists with another partition count: errstr names
 * it) or CS_ERR_KAFKA / CS_ERR_TIMEOUT. */
int cs_kafka_ensure_topics(const cs_conf_t *conf, const cs_topic_spec_t *specs, size_t n,
                           int timeout_ms, char *errstr, size_t errstr_size);

/* Partition count of topic (>= 1), or a negative CS_ERR_* (CS_ERR_NOT_FOUND if absent). */
int cs_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* Maps an rd_kafka_resp_err_t to a CS_ERR_* code (fatal errors -> CS_ERR_KAFKA_FATAL). */
int cs_kafka_err(rd_kafka_resp_err_t err);

#endif
