/* Component: the common producer and consumer against the real local broker. Avro records
 * go out through cs_producer (success = delivery report) and come back through cs_consumer
 * with their keys, decoded, each key always on one partition, and the same key on the same
 * partition number of another topic with the same partition count (co-partitioning). */
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_run.h"
#include "cs_test.h"

#include <inttypes.h>
#include <unistd.h>

#define NKEYS 10
#define PER_KEY 3

static int delivered, failed;
static int32_t dr_partition[2][NKEYS];

static void on_dr(void *opaque, void *msg_opaque, int err, const char *errstr, int32_t partition,
                  int64_t offset)
{
    intptr_t tag = (intptr_t)msg_opaque; /* topic * 100 + key */
    (void)opaque;
    (void)offset;
    if (err) {
        failed++;
        fprintf(stderr, "delivery failed: %s\n", errstr);
        return;
    }
    delivered++;
    dr_partition[tag / 100][tag % 100] = partition;
}

int main(void)
{
    char err[512], topic[2][128], key[64], group[128];
    const char *bootstrap = cs_test_env("CRMSYNC_BOOTSTRAP", "127.0.0.1:19092");
    cs_conf_t *conf = cs_conf_new("test_kafka", "test", NULL);
    cs_avro_registry_t *reg = cs_avro_registry_new(err, sizeof(err));
    REQUIRE(conf && reg);
    REQUIRE(cs_conf_set(conf, "kafka.bootstrap.servers", bootstrap, err, sizeof(err)) == CS_OK);
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    REQUIRE(enc && dec);

    for (int t = 0; t < 2; t++)
        snprintf(topic[t], sizeof(topic[t]), "crmsync.test.kafka%d-%d-%" PRId64, t, (int)getpid(),
                 cs_wall_ms());
    cs_topic_spec_t specs[2] = {{topic[0], 3, 1, NULL}, {topic[1], 3, 1, NULL}};
    CHECK_INT(cs_kafka_ensure_topics(conf, specs, 2, 10000, err, sizeof(err)), CS_OK);
    /* idempotent: a second call finds them */
    CHECK_INT(cs_kafka_ensure_topics(conf, specs, 2, 10000, err, sizeof(err)), CS_OK);
    /* a partition-count mismatch is reported, not hidden */
    cs_topic_spec_t wrong = {topic[0], 5, 1, NULL};
    CHECK_INT(cs_kafka_ensure_topics(conf, &wrong, 1, 10000, err, sizeof(err)), CS_ERR_CONFIG);
    CHECK(strstr(err, "co-partitioned") != NULL);

    /* produce */
    cs_producer_t *p = cs_producer_new(conf, on_dr, NULL, err, sizeof(err));
    REQUIRE(p);
    for (int t = 0; t < 2; t++) {
        for (int k = 0; k < NKEYS; k++) {
            for (int i = 0; i < PER_KEY; i++) {
                avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
                const void *out;
                size_t len;
                char eid[64];
                snprintf(key, sizeof(key), "user%d@example.com", k);
                snprintf(eid, sizeof(eid), "e-%d-%d-%d", t, k, i);
                REQUIRE(v);
                cs_avro_set_str(v, CS_PC_EVENT_ID, eid);
                cs_avro_set_str(v, CS_PC_PROSPECT_KEY, key);
                cs_avro_set_long(v, CS_PC_PROSPECT_ID, 1000 + k);
                cs_avro_set_enum(v, CS_PC_CAUSE, CS_CAUSE_FIELD_CHANGE);
                cs_avro_set_long(v, CS_PC_UPDATED_AT, 1700000000000LL + i);
                cs_avro_set_long(v, CS_PC_EVENT_TIME, cs_wall_ms());
                cs_avro_set_str(v, CS_PC_EMAIL, key);
                cs_avro_set_int(v, CS_PC_SCORE, i);
                REQUIRE(cs_avro_encode(enc, v, &out, &len) == CS_OK);
                CHECK_INT(cs_producer_send(p, topic[t], key, strlen(key), out, len, 0,
                                           (void *)(intptr_t)(t * 100 + k), -1),
                          CS_OK);
            }
        }
    }
    CHECK_INT(cs_producer_flush(p, 30000), CS_OK);
    CHECK_INT(delivered, 2 * NKEYS * PER_KEY);
    CHECK_INT(failed, 0);
    CHECK_INT(cs_producer_delivered(p), 2 * NKEYS * PER_KEY);
    for (int k = 0; k < NKEYS; k++)
        CHECK_INT(dr_partition[0][k], dr_partition[1][k]); /* co-partitioned */
    cs_producer_destroy(p);

    /* an unknown topic is a delivery failure, reported and counted, never a silent drop */
    REQUIRE(cs_conf_set(conf, "kafka.message.timeout.ms", "2000", err, sizeof(err)) == CS_OK);
    p = cs_producer_new(conf, on_dr, NULL, err, sizeof(err));
    REQUIRE(p);
    int before_failed = failed;
    cs_producer_send(p, "crmsync.test.no-such-topic", "k", 1, "v", 1, 0, NULL, -1);
    CHECK_INT(cs_producer_flush(p, 10000), CS_OK);
    CHECK_INT(failed, before_failed + 1);
    CHECK_INT(cs_producer_failed(p), 1);
    cs_producer_destroy(p);

    /* consume topic 0 back in a fresh group */
    snprintf(group, sizeof(group), "crmsync-test-%d-%" PRId64, (int)getpid(), cs_wall_ms());
    const char *topics[1] = {topic[0]};
    cs_consumer_t *c = cs_consumer_new(conf, group, topics, 1, NULL, err, sizeof(err));
    REQUIRE(c);
    int got = 0, decoded_ok = 0, key_ok = 0, part_ok = 0;
    int64_t deadline = cs_now_ms() + 30000;
    while (got < NKEYS * PER_KEY && cs_now_ms() < deadline) {
        rd_kafka_message_t *m = cs_consumer_poll(c, 500);
        cs_avro_decoded_t d;
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        got++;
        if (!cs_avro_decode(dec, m->payload, m->len, &d) && d.schema == CS_AVRO_PROSPECT_CHANGE) {
            size_t klen;
            const char *k = cs_avro_get_str(d.value, CS_PC_PROSPECT_KEY, &klen);
            int64_t pid = 0;
            decoded_ok++;
            if (k && m->key_len == klen && !memcmp(m->key, k, klen))
                key_ok++;
            int kn = atoi(k + 4);
            if (cs_avro_get_long(d.value, CS_PC_PROSPECT_ID, &pid) && pid == 1000 + kn &&
                m->partition == dr_partition[0][kn])
                part_ok++;
        }
        CHECK_INT(cs_consumer_store(c, m), CS_OK);
        rd_kafka_message_destroy(m);
    }
    CHECK_INT(got, NKEYS * PER_KEY);
    CHECK_INT(decoded_ok, NKEYS * PER_KEY);
    CHECK_INT(key_ok, NKEYS * PER_KEY);
    CHECK_INT(part_ok, NKEYS * PER_KEY);
    CHECK_INT(cs_consumer_commit(c, 0), CS_OK);
    cs_consumer_destroy(c);

    /* the same group resumes after its commit: nothing left to read */
    c = cs_consumer_new(conf, group, topics, 1, NULL, err, sizeof(err));
    REQUIRE(c);
    int again = 0;
    deadline = cs_now_ms() + 4000;
    while (cs_now_ms() < deadline) {
        rd_kafka_message_t *m = cs_consumer_poll(c, 500);
        if (m) {
            if (!m->err)
                again++;
            rd_kafka_message_destroy(m);
        }
    }
    CHECK_INT(again, 0);
    cs_consumer_destroy(c);

    cs_avro_encoder_destroy(enc);
    cs_avro_decoder_destroy(dec);
    cs_avro_registry_destroy(reg);
    cs_conf_destroy(conf);
    return cs_test_report();
}
