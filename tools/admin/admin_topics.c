/* crmsync-admin topics create|verify: makes the topic set of cs_topics exist with the
 * right partition counts and settings (idempotent), or checks it without changing anything. */
#include "admin.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: crmsync-admin [options] topics create|verify [--json]\n\n"
    "  create   create the missing topics (idempotent), then verify them\n"
    "  verify   check that every topic exists with the expected partition count\n"
    "Topic names come from the topic.* options, partition counts from topics.partitions.\n";

static int verify(adm_t *a, const cs_topic_spec_t *specs)
{
    static const char *const h[] = {"TOPIC", ">EXPECTED", ">ACTUAL", "STATUS"};
    rd_kafka_t *rk = adm_kafka_new(a, RD_KAFKA_PRODUCER);
    adm_table_t *t;
    json_t *arr;
    int bad = 0;
    if (!rk)
        return ADM_FAIL;
    t = adm_table_new(4, h);
    arr = json_array();
    for (int i = 0; i < CS_TOPIC_COUNT_; i++) {
        int pc = cs_kafka_partition_count(rk, specs[i].name, a->timeout_ms);
        const char *status = pc == specs[i].partitions ? "ok" : pc > 0 ? "MISMATCH" : "missing";
        if (pc < 0 && pc != CS_ERR_NOT_FOUND) { /* no answer about the topic */
            adm_kafka_unreachable(a, pc);
            adm_table_destroy(t);
            json_decref(arr);
            rd_kafka_destroy(rk);
            return ADM_FAIL;
        }
        if (pc != specs[i].partitions)
            bad++;
        adm_table_cell(t, "%s", specs[i].name);
        adm_table_cell(t, "%d", specs[i].partitions);
        adm_table_cell(t, "%d", pc < 0 ? 0 : pc);
        adm_table_cell(t, "%s", status);
        json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:s}", "topic", specs[i].name,
                                             "expected", specs[i].partitions, "actual",
                                             pc < 0 ? 0 : pc, "status", status));
    }
    rd_kafka_destroy(rk);
    if (a->json) {
        adm_table_destroy(t);
        adm_print_json(json_pack("{s:o, s:b}", "topics", arr, "ok", !bad));
    } else {
        json_decref(arr);
        adm_table_print(t, stdout);
        adm_table_destroy(t);
    }
    if (bad)
        adm_fail(a, ADM_FAIL, "%d topic%s missing or with another partition count", bad,
                 bad == 1 ? "" : "s");
    return bad ? ADM_FAIL : ADM_OK;
}

int admin_topics(adm_t *a, int argc, char **argv)
{
    const adm_arg_t args[] = {{"--json", ADM_ARG_FLAG, &a->json}, {NULL, 0, NULL}};
    cs_topic_spec_t specs[CS_TOPIC_COUNT_];
    char errstr[512], **pos = calloc((size_t)argc + 1, sizeof(*pos));
    const char *action;
    int npos = 0, rc, err;

    if (!pos)
        return adm_fail(a, ADM_FAIL, "out of memory");
    rc = adm_parse_args(a, help, args, argc, argv, pos, &npos);
    action = npos ? pos[0] : NULL;
    if (rc == ADM_OK && npos != 1)
        rc = adm_fail(a, ADM_USAGE,
                      npos ? "one action only: create or verify"
                           : "missing action: create or verify (see topics --help)");
    if (rc == ADM_OK && strcmp(action, "create") && strcmp(action, "verify"))
        rc = adm_fail(a, ADM_USAGE, "unknown action '%s': create or verify", action);
    free(pos);
    if (rc)
        return rc < 0 ? ADM_OK : rc;
    cs_topics_specs(a->conf, specs);
    if (!strcmp(action, "verify"))
        return verify(a, specs);
    err = cs_kafka_ensure_topics(a->conf, specs, CS_TOPIC_COUNT_, a->timeout_ms + 5000, errstr,
                                 sizeof(errstr));
    if (err)
        return adm_fail(a, ADM_FAIL, "%s (%s)", errstr, cs_err_name(err));
    return verify(a, specs);
}
