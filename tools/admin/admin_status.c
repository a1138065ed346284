/* crmsync-admin status: the sync consumers' group (state, live members, committed offsets
 * and lag per input partition, from the Admin API without joining it) and each replica's
 * own view (queue depth, paused, errors) from its /status endpoint. */
#include "admin.h"

#include "cs_topics.h"

#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: crmsync-admin [options] status [--group G] [--json]\n\n"
    "Shows the sync consumers' group: its state and live members (one per replica), and for\n"
    "every input topic partition the committed offset, the end offset and the lag (events\n"
    "not yet committed; with nothing committed, every retained event). With admin.consumers\n"
    "set, each replica's partitions, sync-queue depth, retrying entries, paused flag and\n"
    "record errors since it started.\n"
    "  --group G   consumer group (default: the group.id option, crmsync-sync)\n";

/* The owner of topic:partition: the replica that reports it, else the group member that
 * has it assigned, else NULL. */
static const char *owner_of(json_t *replicas, json_t *members, const char *topic, int partition)
{
    size_t i, k;
    json_t *r, *m, *p;
    char tp[512];
    json_array_foreach(replicas, i, r)
    {
        json_array_foreach(json_object_get(json_object_get(r, "status"), "partitions"), k, p)
        {
            if (json_integer_value(json_object_get(p, "partition")) == partition)
                return json_string_value(json_object_get(r, "url"));
        }
    }
    snprintf(tp, sizeof(tp), "%s:%d", topic, partition);
    json_array_foreach(members, i, m)
    {
        json_array_foreach(json_object_get(m, "partitions"), k, p)
        {
            if (!strcmp(json_string_value(p), tp))
                return json_string_value(json_object_get(m, "client_id"));
        }
    }
    return NULL;
}

static json_t *ask_replicas(adm_t *a)
{
    char **urls = NULL, errstr[512];
    int n = adm_replicas(a, &urls);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        int status = 0;
        json_t *st = adm_replica_get(a, urls[i], "/status", &status, errstr, sizeof(errstr));
        json_t *o = json_pack("{s:s, s:b}", "url", urls[i], "reachable", status == 200 && st);
        if (status == 200 && st)
            json_object_set(o, "status", st);
        else
            json_object_set_new(o, "error", json_string(status ? "bad answer" : errstr));
        json_decref(st);
        json_array_append_new(arr, o);
    }
    adm_replicas_free(urls, n);
    return arr;
}

static void partitions_text(json_t *st, char *buf, size_t size)
{
    size_t i, len = 0;
    json_t *p;
    buf[0] = '\0';
    json_array_foreach(json_object_get(st, "partitions"), i, p)
    {
        int w = snprintf(buf + len, size - len, "%s%d", i ? "," : "",
                         (int)json_integer_value(json_object_get(p, "partition")));
        if (w < 0 || (size_t)w >= size - len)
            break;
        len += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, size, "-");
}

int admin_status(adm_t *a, int argc, char **argv)
{
    const char *group = cs_conf_str(a->conf, "group.id");
    const adm_arg_t args[] = {
        {"--json", ADM_ARG_FLAG, &a->json}, {"--group", ADM_ARG_STR, &group}, {NULL, 0, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos)), state[64];
    rd_kafka_t *rk = NULL;
    adm_part_t *parts = NULL;
    json_t *members = NULL, *replicas = NULL, *doc = NULL, *pj, *r;
    int npos = 0, nparts = 0, nmembers, rc, nreach = 0, npaused = 0;
    long long total_lag = 0, depth = 0, retry = 0, errors = 0;
    size_t i;

    if (!pos)
        return adm_fail(a, ADM_FAIL, "out of memory");
    rc = adm_parse_args(a, help, args, argc, argv, pos, &npos);
    if (rc == ADM_OK && npos)
        rc = adm_fail(a, ADM_USAGE, "unexpected argument '%s' (see status --help)", pos[0]);
    free(pos);
    if (rc)
        return rc < 0 ? ADM_OK : rc;
    if (!group || !*group)
        return adm_fail(a, ADM_USAGE, "--group needs a group id");
    if (!(rk = adm_kafka_new(a, RD_KAFKA_PRODUCER)))
        return ADM_FAIL;
    rc = ADM_FAIL;
    if (adm_input_parts(a, rk, group, &parts, &nparts))
        goto out;
    if ((nmembers = adm_group_members(a, rk, group, &members, state, sizeof(state))) < 0)
        goto out;
    replicas = ask_replicas(a);

    json_array_foreach(replicas, i, r)
    {
        json_t *st = json_object_get(r, "status");
        if (!st)
            continue;
        nreach++;
        npaused += json_is_true(json_object_get(st, "paused"));
        depth += json_integer_value(json_object_get(st, "queue_depth"));
        retry += json_integer_value(json_object_get(st, "queue_retry"));
        errors += json_integer_value(json_object_get(st, "errors"));
    }
    pj = json_array();
    for (int k = 0; k < nparts; k++) {
        const adm_part_t *p = &parts[k];
        long long lag = p->high - (p->committed >= 0 ? p->committed : p->low);
        const char *owner = owner_of(replicas, members, p->topic, p->partition);
        total_lag += lag;
        json_array_append_new(pj, json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:s?}", "topic",
                                            p->topic, "partition", (int)p->partition, "low",
                                            (json_int_t)p->low, "end", (json_int_t)p->high,
                                            "committed", (json_int_t)p->committed, "lag",
                                            (json_int_t)lag, "owner", owner));
    }
    doc = json_pack("{s:s, s:s, s:i, s:o, s:I, s:o, s:o}", "group", group, "state", state,
                    "members_alive", nmembers, "members", members, "total_lag",
                    (json_int_t)total_lag, "partitions", pj, "replicas", replicas);
    members = replicas = NULL; /* now owned by doc */
    if (nreach) {
        json_object_set_new(doc, "queue_depth", json_integer(depth));
        json_object_set_new(doc, "queue_retry", json_integer(retry));
        json_object_set_new(doc, "errors", json_integer(errors));
        json_object_set_new(doc, "paused",
                            npaused == nreach ? json_true()
                            : npaused         ? json_string("mixed")
                                              : json_false());
    }
    if (a->json) {
        rc = adm_print_json(doc);
        doc = NULL;
        goto out;
    }

    printf("group %s: %s, %d live member%s\n\n", group, state, nmembers, nmembers == 1 ? "" : "s");
    {
        static const char *const h[] = {"TOPIC", ">PARTITION", ">COMMITTED",
                                        ">END",  ">LAG",       "OWNER"};
        adm_table_t *t = adm_table_new(6, h);
        json_array_foreach(json_object_get(doc, "partitions"), i, r)
        {
            json_int_t c = json_integer_value(json_object_get(r, "committed"));
            const char *o = json_string_value(json_object_get(r, "owner"));
            adm_table_cell(t, "%s", json_string_value(json_object_get(r, "topic")));
            adm_table_cell(t, "%d", (int)json_integer_value(json_object_get(r, "partition")));
            if (c >= 0)
                adm_table_cell(t, "%" JSON_INTEGER_FORMAT, c);
            else
                adm_table_cell(t, "-");
            adm_table_cell(t, "%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(r, "end")));
            adm_table_cell(t, "%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(r, "lag")));
            adm_table_cell(t, "%s", o ? o : "-");
        }
        adm_table_print(t, stdout);
        adm_table_destroy(t);
    }
    printf("total lag %lld\n\n", total_lag);
    if (json_array_size(json_object_get(doc, "replicas")) == 0) {
        printf("replica endpoints not configured (admin.consumers=http://host:port,...): queue "
               "depth, paused and errors unknown\n");
    } else {
        static const char *const h[] = {"REPLICA",   "STATUS", "PARTITIONS", ">QUEUE",
                                        ">RETRYING", "PAUSED", ">ERRORS",    ">PROSPECTS"};
        adm_table_t *t = adm_table_new(8, h);
        json_array_foreach(json_object_get(doc, "replicas"), i, r)
        {
            json_t *st = json_object_get(r, "status");
            char parts_txt[256];
            adm_table_cell(t, "%s", json_string_value(json_object_get(r, "url")));
            if (!st) {
                adm_table_cell(t, "down");
                for (int c = 0; c < 6; c++)
                    adm_table_cell(t, "-");
                continue;
            }
            partitions_text(st, parts_txt, sizeof(parts_txt));
            adm_table_cell(t, "up");
            adm_table_cell(t, "%s", parts_txt);
            adm_table_cell(t, "%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(st, "queue_depth")));
            adm_table_cell(t, "%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(st, "queue_retry")));
            adm_table_cell(t, "%s", json_is_true(json_object_get(st, "paused")) ? "yes" : "no");
            adm_table_cell(t, "%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(st, "errors")));
            adm_table_cell(t, "%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(st, "prospects")));
        }
        adm_table_print(t, stdout);
        adm_table_destroy(t);
        json_array_foreach(json_object_get(doc, "replicas"), i, r)
        {
            if (!json_object_get(r, "status"))
                printf("%s is down: %s\n", json_string_value(json_object_get(r, "url")),
                       json_string_value(json_object_get(r, "error")));
        }
        printf("%d of %zu replica%s reachable; queue depth %lld, paused %s, errors %lld\n", nreach,
               json_array_size(json_object_get(doc, "replicas")),
               json_array_size(json_object_get(doc, "replicas")) == 1 ? "" : "s", depth,
               !nreach             ? "unknown"
               : npaused == nreach ? "yes"
               : npaused           ? "mixed"
                                   : "no",
               errors);
    }
    rc = ADM_OK;
out:
    json_decref(doc);
    json_decref(members);
    json_decref(replicas);
    free(parts);
    if (rk)
        rd_kafka_destroy(rk);
    return rc;
}
