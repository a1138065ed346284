/* cs_topics: the Kafka topics crmsync uses, their names (configurable) and settings.
 *
 * The input topics (prospect changes, activities, CRM changes) are keyed by the prospect
 * key and MUST have the same partition count, so one consumer replica sees everything about
 * a prospect. The sync state changelog is keyed the same way, co-partitioned with them, and
 * compacted. The control topic has one partition and is read in full by every replica
 * (pause/unpause are global; sync-now is acted on by the replica owning the key). */
#ifndef CS_TOPICS_H
#define CS_TOPICS_H

#include "cs_conf.h"
#include "cs_kafka.h"

/* topic.prospect, topic.activity, topic.crm, topic.control, topic.state, topic.errors,
 * topic.cursors, topics.partitions, topics.replication, topics.retention.ms.
 * Add to a program's config with cs_conf_add_opts(c, cs_topics_opts). */
extern const cs_opt_t cs_topics_opts[];

typedef enum {
    CS_TOPIC_PROSPECT = 0,
    CS_TOPIC_ACTIVITY,
    CS_TOPIC_CRM,
    CS_TOPIC_CONTROL,
    CS_TOPIC_STATE,
    CS_TOPIC_ERRORS,
    CS_TOPIC_CURSORS,
    CS_TOPIC_COUNT_
} cs_topic_id_t;

/* Name of a topic from conf (which must include cs_topics_opts). Borrowed from conf. */
const char *cs_topic_name(const cs_conf_t *conf, cs_topic_id_t id);

/* The full set with partitions, replication and per-topic configs, for
 * cs_kafka_ensure_topics(). Fills specs[CS_TOPIC_COUNT_]; the specs borrow from conf and
 * static storage. */
void cs_topics_specs(const cs_conf_t *conf, cs_topic_spec_t specs[CS_TOPIC_COUNT_]);

#endif
