/* crmsync-admin replay: rewinds the sync consumers' group, like Kafka's own offset reset.
 *
 * For every input topic partition it computes the target offset (the start, an offset
 * clamped to what is retained, or the first event at or after a time) and shows how many
 * events the group would re-read, before changing anything. --dry-run stops there. Otherwise
 * the group must have no live member (a running consumer would overwrite the new offsets
 * with its own commits, and the broker refuses offset changes of an active group): the
 * command refuses, or with --wait polls until the replicas are stopped. Then it commits the
 * targets for the group (AlterConsumerGroupOffsets) and reports what it did. The replicas
 * re-read from there when started: history already synced compares equal or stale and
 * writes nothing (docs/ARCHITECTURE.md, Replay). */
#include "admin.h"

#include "cs_err.h"
#include "cs_run.h"
#include "cs_time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: crmsync-admin [options] replay (--to-start | --to-offset N | --to-time ISO8601)\n"
    "                     [--group G] [--dry-run] [--wait [--wait-timeout SECONDS]] [--json]\n\n"
    "Rewinds the sync consumers' group on every input topic partition, and first shows per\n"
    "partition how many events it would re-read (REREAD; SKIPPED when the target is past the\n"
    "committed offset). Nothing changes with --dry-run. The group must have no live member:\n"
    "stop the sync consumers first, or pass --wait to wait until they are stopped.\n"
    "  --to-start           the oldest retained event (topics.retention.ms bounds how far)\n"
    "  --to-offset N        offset N on every partition, clamped to the retained range\n"
    "  --to-time T          the first event at or after T, e.g. 2024-05-01T00:00:00Z\n"
    "  --group G            consumer group (default: the group.id option, crmsync-sync)\n"
    "  --dry-run            show the plan only\n"
    "  --wait               wait for the group to have no live member, then reset\n"
    "  --wait-timeout S     give up waiting after S seconds (default 60)\n";

typedef enum { TO_START, TO_OFFSET, TO_TIME } mode_t_;

typedef struct plan_s {
    mode_t_ mode;
    int64_t value; /* offset or epoch ms */
    adm_part_t *parts;
    int n;
    long long reread, skipped;
} plan_t;

/* Reads the partitions and the group's offsets, and sets each target. */
static int make_plan(adm_t *a, rd_kafka_t *rk, const char *group, plan_t *pl)
{
    free(pl->parts);
    pl->parts = NULL;
    pl->reread = pl->skipped = 0;
    if (adm_input_parts(a, rk, group, &pl->parts, &pl->n))
        return ADM_FAIL;
    if (pl->mode == TO_TIME) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(pl->n);
        rd_kafka_resp_err_t err;
        if (!l)
            return adm_fail(a, ADM_FAIL, "out of memory");
        for (int i = 0; i < pl->n; i++)
            rd_kafka_topic_partition_list_add(l, pl->parts[i].topic, pl->parts[i].partition)
                ->offset = pl->value;
        err = rd_kafka_offsets_for_times(rk, l, a->timeout_ms);
        for (int i = 0; !err && i < pl->n; i++) {
            rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_find(l, pl->parts[i].topic, pl->parts[i].partition);
            if (!tp || tp->err) {
                err = tp ? tp->err : RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
                break;
            }
            /* -1: no event at or after that time: the end. */
            pl->parts[i].target = tp->offset < 0 ? pl->parts[i].high : tp->offset;
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (err)
            return adm_fail(a, ADM_FAIL, "offsets for the time: %s", rd_kafka_err2str(err));
    }
    for (int i = 0; i < pl->n; i++) {
        adm_part_t *p = &pl->parts[i];
        int64_t from = p->committed >= 0 ? p->committed : p->high;
        if (pl->mode == TO_START)
            p->target = p->low;
        else if (pl->mode == TO_OFFSET)
            p->target = pl->value;
        if (p->target < p->low)
            p->target = p->low;
        if (p->target > p->high)
            p->target = p->high;
        if (from > p->target)
            pl->reread += from - p->target;
        else
            pl->skipped += p->target - from;
    }
    return ADM_OK;
}

static void describe_target(const plan_t *pl, char *buf, size_t size)
{
    char t[40];
    if (pl->mode == TO_START)
        snprintf(buf, size, "the start");
    else if (pl->mode == TO_OFFSET)
        snprintf(buf, size, "offset %" PRId64, pl->value);
    else
        snprintf(buf, size, "%s", adm_time(pl->value, t, sizeof(t)));
}

static void print_plan(const plan_t *pl, const char *group)
{
    static const char *const h[] = {"TOPIC", ">PARTITION", ">COMMITTED", ">TARGET",
                                    ">END",  ">REREAD",    ">SKIPPED"};
    adm_table_t *t = adm_table_new(7, h);
    char target[64];
    for (int i = 0; i < pl->n; i++) {
        const adm_part_t *p = &pl->parts[i];
        int64_t from = p->committed >= 0 ? p->committed : p->high;
        adm_table_cell(t, "%s", p->topic);
        adm_table_cell(t, "%d", (int)p->partition);
        if (p->committed >= 0)
            adm_table_cell(t, "%" PRId64, p->committed);
        else
            adm_table_cell(t, "-");
        adm_table_cell(t, "%" PRId64, p->target);
        adm_table_cell(t, "%" PRId64, p->high);
        adm_table_cell(t, "%" PRId64, from > p->target ? from - p->target : 0);
        adm_table_cell(t, "%" PRId64, p->target > from ? p->target - from : 0);
    }
    describe_target(pl, target, sizeof(target));
    printf("replay of group %s to %s\n\n", group, target);
    adm_table_print(t, stdout);
    adm_table_destroy(t);
    printf("%lld event%s would be re-read", pl->reread, pl->reread == 1 ? "" : "s");
    if (pl->skipped)
        printf(", %lld skipped", pl->skipped);
    printf(" over %d partition%s\n", pl->n, pl->n == 1 ? "" : "s");
}

static json_t *plan_json(const plan_t *pl, const char *group, int dry_run)
{
    static const char *const modes[] = {"start", "offset", "time"};
    json_t *parts = json_array();
    char t[40];
    for (int i = 0; i < pl->n; i++) {
        const adm_part_t *p = &pl->parts[i];
        int64_t from = p->committed >= 0 ? p->committed : p->high;
        json_array_append_new(
            parts,
            json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "topic", p->topic, "partition",
                      (int)p->partition, "low", (json_int_t)p->low, "end", (json_int_t)p->high,
                      "committed", (json_int_t)p->committed, "target", (json_int_t)p->target,
                      "reread", (json_int_t)(from > p->target ? from - p->target : 0), "skipped",
                      (json_int_t)(p->target > from ? p->target - from : 0)));
    }
    return json_pack(
        "{s:s, s:s, s:o, s:b, s:o, s:I, s:I, s:b}", "group", group, "to", modes[pl->mode], "value",
        pl->mode == TO_START  ? json_null()
        : pl->mode == TO_TIME ? json_string(adm_time(pl->value, t, sizeof(t)))
                              : json_integer(pl->value),
        "dry_run", dry_run, "partitions", parts, "total_reread", (json_int_t)pl->reread,
        "total_skipped", (json_int_t)pl->skipped, "applied", 0);
}

/* Members' client ids, for the refusal message. */
static void member_names(json_t *members, char *buf, size_t size)
{
    size_t i, len = 0;
    json_t *m;
    buf[0] = '\0';
    json_array_foreach(members, i, m)
    {
        int w = snprintf(buf + len, size - len, "%s%s@%s", i ? ", " : "",
                         json_string_value(json_object_get(m, "client_id")),
                         json_string_value(json_object_get(m, "host")));
        if (w < 0 || (size_t)w >= size - len)
            break;
        len += (size_t)w;
    }
}

int admin_replay(adm_t *a, int argc, char **argv)
{
    const char *group = cs_conf_str(a->conf, "group.id"), *offset_arg = NULL, *time_arg = NULL;
    int to_start = 0, dry_run = 0, wait = 0, npos = 0, rc, nmembers;
    long long wait_timeout = 60;
    const adm_arg_t args[] = {{"--json", ADM_ARG_FLAG, &a->json},
                              {"--to-start", ADM_ARG_FLAG, &to_start},
                              {"--to-offset", ADM_ARG_STR, &offset_arg},
                              {"--to-time", ADM_ARG_STR, &time_arg},
                              {"--group", ADM_ARG_STR, &group},
                              {"--dry-run", ADM_ARG_FLAG, &dry_run},
                              {"--wait", ADM_ARG_FLAG, &wait},
                              {"--wait-timeout", ADM_ARG_INT, &wait_timeout},
                              {NULL, 0, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos)), state[64], names[1024];
    rd_kafka_t *rk = NULL;
    json_t *members = NULL, *doc = NULL;
    plan_t pl;

    memset(&pl, 0, sizeof(pl));
    if (!pos)
        return adm_fail(a, ADM_FAIL, "out of memory");
    rc = adm_parse_args(a, help, args, argc, argv, pos, &npos);
    if (rc == ADM_OK && npos)
        rc = adm_fail(a, ADM_USAGE, "unexpected argument '%s' (see replay --help)", pos[0]);
    free(pos);
    if (rc)
        return rc < 0 ? ADM_OK : rc;
    if (to_start + !!offset_arg + !!time_arg != 1)
        return adm_fail(a, ADM_USAGE,
                        "give exactly one of --to-start, --to-offset N, --to-time "
                        "ISO8601 (see replay --help)");
    if (!group || !*group)
        return adm_fail(a, ADM_USAGE, "--group needs a group id");
    pl.mode = to_start ? TO_START : offset_arg ? TO_OFFSET : TO_TIME;
    if (offset_arg) {
        char *end;
        long long v = strtoll(offset_arg, &end, 10);
        if (!*offset_arg || *end || v < 0)
            return adm_fail(a, ADM_USAGE, "--to-offset: '%s' is not an offset (an integer >= 0)",
                            offset_arg);
        pl.value = v;
    }
    if (time_arg && cs_time_parse_iso8601(time_arg, &pl.value) != 0)
        return adm_fail(a, ADM_USAGE,
                        "--to-time: '%s' is not an ISO-8601 time (e.g. 2024-05-01T00:00:00Z)",
                        time_arg);

    if (!(rk = adm_kafka_new(a, RD_KAFKA_PRODUCER)))
        return ADM_FAIL;
    rc = ADM_FAIL;
    if (make_plan(a, rk, group, &pl))
        goto out;
    if (!a->json)
        print_plan(&pl, group);
    if (dry_run) {
        if (a->json)
            rc = adm_print_json(plan_json(&pl, group, 1));
        else
            printf("dry run: nothing changed\n");
        rc = a->json ? rc : ADM_OK;
        goto out;
    }

    /* The group must be empty: the broker refuses to move an active group's offsets, and a
     * running replica would commit over them anyway. */
    if ((nmembers = adm_group_members(a, rk, group, &members, state, sizeof(state))) < 0)
        goto out;
    if (nmembers > 0 && wait) {
        int64_t deadline = cs_now_ms() + wait_timeout * 1000;
        if (!a->json)
            printf("waiting up to %lld s for the %d live member%s of group %s to stop...\n",
                   wait_timeout, nmembers, nmembers == 1 ? "" : "s", group);
        fflush(stdout);
        while (nmembers > 0 && cs_now_ms() < deadline && !cs_run_stopping()) {
            cs_run_sleep_ms(1000);
            json_decref(members);
            members = NULL;
            if ((nmembers = adm_group_members(a, rk, group, &members, state, sizeof(state))) < 0)
                goto out;
        }
        if (nmembers == 0) {
            /* The replicas committed as they left: plan again from where they stopped. */
            if (make_plan(a, rk, group, &pl))
                goto out;
            if (!a->json) {
                printf("group %s has no live member now; the plan from its final offsets:\n\n",
                       group);
                print_plan(&pl, group);
            }
        }
    }
    if (nmembers > 0) {
        member_names(members, names, sizeof(names));
        if (wait)
            rc = adm_fail(a, ADM_FAIL,
                          "group %s still has %d live member%s after %lld s (%s): nothing changed",
                          group, nmembers, nmembers == 1 ? "" : "s", wait_timeout, names);
        else
            rc = adm_fail(a, ADM_FAIL,
                          "group %s has %d live member%s (%s): nothing changed. Stop the sync "
                          "consumers first, or pass --wait to wait until they are stopped",
                          group, nmembers, nmembers == 1 ? "" : "s", names);
        goto out;
    }
    if (adm_group_commit(a, rk, group, pl.parts, pl.n))
        goto out;
    if (a->json) {
        doc = plan_json(&pl, group, 0);
        json_object_set_new(doc, "applied", json_true());
        rc = adm_print_json(doc);
        doc = NULL;
    } else {
        printf("done: group %s now starts at the target offsets on %d partition%s; the sync "
               "consumers re-read %lld event%s when started\n",
               group, pl.n, pl.n == 1 ? "" : "s", pl.reread, pl.reread == 1 ? "" : "s");
        rc = ADM_OK;
    }
out:
    json_decref(doc);
    json_decref(members);
    free(pl.parts);
    if (rk)
        rd_kafka_destroy(rk);
    return rc;
}
