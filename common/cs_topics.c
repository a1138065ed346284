#include "cs_topics.h"

#include <stdio.h>

const cs_opt_t cs_topics_opts[] = {
    {"topic.prospect", CS_OPT_STRING, "crmsync.prospect-changes", 0, 0, 0,
     "marketing-side prospect changes (ProspectChange records)"},
    {"topic.activity", CS_OPT_STRING, "crmsync.activities", 0, 0, 0,
     "prospect activities (Activity records)"},
    {"topic.crm", CS_OPT_STRING, "crmsync.crm-changes", 0, 0, 0,
     "CRM lead/contact changes (CrmChange records)"},
    {"topic.control", CS_OPT_STRING, "crmsync.control", 0, 0, 0,
     "pause / unpause / sync-now / retry commands (Control records; one partition)"},
    {"topic.state", CS_OPT_STRING, "crmsync.sync-state", 0, 0, 0,
     "per-prospect sync state changelog (SyncState records; compacted)"},
    {"topic.errors", CS_OPT_STRING, "crmsync.sync-errors", 0, 0, 0,
     "per-record sync errors and poison input (SyncError records)"},
    {"topic.cursors", CS_OPT_STRING, "crmsync.producer-cursors", 0, 0, 0,
     "durable poll cursors of the producers (compacted)"},
    {"topics.partitions", CS_OPT_INT, "6", 1, 10000, 0,
     "partition count of the input topics and the state changelog (must all match)"},
    {"topics.replication", CS_OPT_INT, "1", 1, 16, 0,
     "replication factor when crmsync creates topics (3 on a production cluster)"},
    {"topics.retention.ms", CS_OPT_INT, "2592000000", -1, 0x7fffffffffffffffLL, 0,
     "retention of the input topics: how far back a replay can go (default 30 days)"},
    CS_OPT_END,
};

static const char *const topic_keys[CS_TOPIC_COUNT_] = {
    "topic.prospect", "topic.activity", "topic.crm",     "topic.control",
    "topic.state",    "topic.errors",   "topic.cursors",
};

const char *cs_topic_name(const cs_conf_t *conf, cs_topic_id_t id)
{
    return cs_conf_str(conf, topic_keys[id]);
}

void cs_topics_specs(const cs_conf_t *conf, cs_topic_spec_t specs[CS_TOPIC_COUNT_])
{
    /* Input topics keep history for replays; the changelogs keep the latest value per key. */
    static char retention[32];
    static const char *input_cfg[] = {"retention.ms", retention, "cleanup.policy", "delete", NULL};
    static const char *compacted_cfg[] = {"cleanup.policy", "compact", "min.compaction.lag.ms",
                                          "60000", NULL};
    static const char *errors_cfg[] = {"retention.ms", retention, NULL};
    int parts = (int)cs_conf_int(conf, "topics.partitions");
    int rf = (int)cs_conf_int(conf, "topics.replication");

    snprintf(retention, sizeof(retention), "%lld", cs_conf_int(conf, "topics.retention.ms"));
    for (int i = 0; i < CS_TOPIC_COUNT_; i++) {
        specs[i].name = cs_topic_name(conf, (cs_topic_id_t)i);
        specs[i].partitions = parts;
        specs[i].replication_factor = rf;
        specs[i].configs = input_cfg;
    }
    specs[CS_TOPIC_CONTROL].partitions = 1;
    specs[CS_TOPIC_STATE].configs = compacted_cfg;
    specs[CS_TOPIC_CURSORS].configs = compacted_cfg;
    specs[CS_TOPIC_CURSORS].partitions = 1;
    specs[CS_TOPIC_ERRORS].configs = errors_cfg;
}
