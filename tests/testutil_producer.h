/* testutil_producer: what the producer component tests share: a private set of topics per
 * test (unique prefix), a config file pointing a producer at a sandbox (or any URL) and
 * at those topics, and a reader that decodes what the producer wrote.
 *
 *   cs_tprod_env_t e;
 *   REQUIRE(cs_tprod_env_init(&e, "prospect", 3) == 0);          topics created
 *   cs_tprod_write_config(&e, sb.url, "poll.interval.ms=200\n");  e.conf_path
 *   cs_tprod_reader_t r;  cs_tprod_reader_init(&r, &e, e.topics[CS_TOPIC_PROSPECT]);
 *   cs_tprod_reader_wait(&r, pred, ctx, 30000);
 *
 * Needs the broker at $CRMSYNC_BOOTSTRAP (default 127.0.0.1:19092). One thread. */
#ifndef TESTUTIL_PRODUCER_H
#define TESTUTIL_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_kafka.h"
#include "cs_topics.h"

typedef struct cs_tprod_env_s {
    char prefix[96];
    char topics[CS_TOPIC_COUNT_][128];
    int partitions;
    cs_conf_t *conf; /* kafka.bootstrap.servers + the topic names: for readers */
    char dir[256];   /* a fresh temporary directory: config, logs */
    char conf_path[300];
} cs_tprod_env_t;

/* Makes the prefix "crmsync.test.<name>.<pid>.<ms>", the temp dir, and creates every topic
 * (partitions for the input topics; the cursors topic compacted, one partition).
 * Returns 0 or -1 (broker unreachable: message on stderr). */
int cs_tprod_env_init(cs_tprod_env_t *e, const char *name, int partitions);

/* Frees e; removes the temporary directory unless keep (pass "a check failed", so the logs of
 * a failing run stay for a post-mortem; the path is printed). The topics are left to the
 * broker's retention (their names are unique). */
void cs_tprod_env_destroy(cs_tprod_env_t *e, int keep);

/* Writes e->conf_path: bootstrap, topic names and partitions, the API endpoints (crm.login_url
 * and mkt.base_url = base_url, the sandbox's default credentials and business unit), fast
 * backoffs, then extra (key=value lines, may be NULL). Returns 0 or -1. */
int cs_tprod_write_config(cs_tprod_env_t *e, const char *base_url, const char *extra);

/* One message read back, with the fields the tests look at (strings "" when null). */
typedef struct cs_tprod_msg_s {
    int32_t partition;
    int64_t offset;
    int has_key;
    char key[320];
    int schema; /* cs_avro_schema_id_t, -1 when the value did not decode */
    char event_id[160], prospect_key[320], email[320], first_name[128], last_name[128];
    char company[128], title[128], grade[16], crm_id[32], owner_id[32], last_modified_by[32];
    char external_id[64], crm_lead_id[32], code[64], message[512];
    int email_null;
    int64_t prospect_id, updated_at, last_activity_at, event_time, system_modstamp,
        last_modified_date, assigned_user_id;
    int cause, object, deleted, opted_out, do_not_sync, score, ncustom;
    char custom_key[64], custom_value[128]; /* first custom field */
    char raw[1024];                         /* the value as text when not Avro (cursors) */
} cs_tprod_msg_t;

typedef struct cs_tprod_reader_s {
    cs_consumer_t *consumer;
    cs_avro_registry_t *reg;
    cs_avro_decoder_t *dec;
    cs_tprod_msg_t *msgs;
    size_t n, cap;
} cs_tprod_reader_t;

/* A reader of topic from its beginning (fresh consumer group). Returns 0 or -1. */
int cs_tprod_reader_init(cs_tprod_reader_t *r, const cs_tprod_env_t *e, const char *topic);
void cs_tprod_reader_close(cs_tprod_reader_t *r);

/* Reads what is there within timeout_ms (stops early after 300 ms without a message once
 * something was read). Returns the number of new messages. */
size_t cs_tprod_reader_poll(cs_tprod_reader_t *r, int timeout_ms);

/* Reads until pred(r, opaque) is true or timeout_ms passes. Returns 1 when pred held. */
int cs_tprod_reader_wait(cs_tprod_reader_t *r, int (*pred)(cs_tprod_reader_t *r, void *opaque),
                         void *opaque, int timeout_ms);

/* The last message whose field `key` (prospect_key) / crm_id / event_id matches, or NULL. */
const cs_tprod_msg_t *cs_tprod_last_by_key(const cs_tprod_reader_t *r, const char *prospect_key);
const cs_tprod_msg_t *cs_tprod_last_by_crm_id(const cs_tprod_reader_t *r, const char *crm_id);
size_t cs_tprod_count_event_id(const cs_tprod_reader_t *r, const char *event_id);

/* Kafka's default partitioner for a key (murmur2, as the Java client and librdkafka's
 * murmur2_random): (murmur2(key) & 0x7fffffff) % partitions. */
int32_t cs_tprod_murmur2_partition(const void *key, size_t len, int partitions);

/* Port of the program's /metrics server, from the "metrics on http://...:PORT/metrics" line
 * of its log; 0 when not (yet) there. */
int cs_tprod_log_port(const char *log_path);

/* GET http://127.0.0.1:port + path. Returns the HTTP status (0: no answer) and copies the
 * body into buf. */
int cs_tprod_http_get(int port, const char *path, char *buf, size_t size);

/* Value of a Prometheus sample "name{labels} value" whose line starts with prefix; -1 when
 * absent. */
double cs_tprod_metric(const char *text, const char *prefix);

/* The last value written under key in the cursors topic (JSON text), "" when none.
 * Returns 0 or -1. */
int cs_tprod_read_cursor(const cs_tprod_env_t *e, const char *key, char *buf, size_t size);

#endif
