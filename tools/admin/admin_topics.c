/* crmsync-admin topics create|verify: makes the topic set of cs_topics exist with the
 * right partition counts and settings (idempotent), or checks it without changing anything. */
#include "admin.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_log.h"
#include "cs_topics.h"

#include <stdio.h>
#include <string.h>

static int verify(cs_conf_t *conf, const cs_topic_spec_t *specs)
{
    char errstr[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(conf, errstr, sizeof(errstr));
    rd_kafka_t *rk;
    int bad = 0;
    if (!kc) {
        fprintf(stderr, "crmsync-admin: %s\n", errstr);
        return 1;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(kc);
        fprintf(stderr, "crmsync-admin: %s\n", errstr);
        return 1;
    }
    printf("%-32s %10s %10s  %s\n", "TOPIC", "EXPECTED", "ACTUAL", "STATUS");
    for (int i = 0; i < CS_TOPIC_COUNT_; i++) {
        int pc = cs_kafka_partition_count(rk, specs[i].name, 10000);
        const char *status = pc == specs[i].partitions ? "ok" : pc < 0 ? "missing" : "MISMATCH";
        if (pc != specs[i].partitions)
            bad++;
        printf("%-32s %10d %10d  %s\n", specs[i].name, specs[i].partitions, pc < 0 ? 0 : pc,
               status);
    }
    rd_kafka_destroy(rk);
    return bad ? 1 : 0;
}

int admin_topics(cs_conf_t *conf, int argc, char **argv)
{
    cs_topic_spec_t specs[CS_TOPIC_COUNT_];
    char errstr[512];
    int err;

    if (argc < 1 || !strcmp(argv[0], "--help")) {
        fprintf(argc < 1 ? stderr : stdout,
                "Usage: crmsync-admin topics create|verify\n"
                "  create   create the missing topics (idempotent), then verify them\n"
                "  verify   check that every topic exists with the expected partitions\n");
        return argc < 1 ? 2 : 0;
    }
    cs_topics_specs(conf, specs);
    if (!strcmp(argv[0], "verify"))
        return verify(conf, specs);
    if (strcmp(argv[0], "create")) {
        fprintf(stderr, "crmsync-admin topics: unknown action '%s'\n", argv[0]);
        return 2;
    }
    err = cs_kafka_ensure_topics(conf, specs, CS_TOPIC_COUNT_, 15000, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "crmsync-admin topics create: %s (%s)\n", errstr, cs_err_name(err));
        return 1;
    }
    return verify(conf, specs);
}
