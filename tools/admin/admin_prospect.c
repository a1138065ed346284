/* crmsync-admin prospect KEY: one prospect as crmsync sees it.
 *
 *  - live state from the replica that holds the key (each replica in admin.consumers is
 *    asked; the others answer 404): watermarks, fields (time, side, behaviour, value hash),
 *    CRM link, its queue entry with the pending values, or why it is not queued;
 *  - the latest SyncState record of the key on the changelog: the pushed state and the last
 *    sync result. Only the partition the key maps to is read (murmur2 of the key, the
 *    producers' partitioner; the consumer writes a prospect's state to the partition number
 *    of its input events);
 *  - the latest error of the key on the errors topic (same partition rule).
 */
#include "admin.h"

#include "cs_avro.h"
#include "cs_http.h"
#include "cs_topics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: crmsync-admin [options] prospect KEY [--json]\n\n"
    "Shows one prospect: which replica holds it, its two watermarks (newest marketing and CRM\n"
    "source times included in the last successful sync), each mapped field's time, side,\n"
    "sync behaviour and value hash, the CRM link, whether it waits in the queue (why, with the\n"
    "pending values) or why not, the last sync result from the state changelog, and its\n"
    "latest error. KEY is the prospect key (e-mail, trimmed and lower-cased, or prospect id).\n"
    "Exit status 1 when no replica, no changelog record and no error knows the key.\n";

typedef struct last_s {
    const char *key;
    size_t keylen;
    void *payload; /* copy of the latest record of the key; NULL with found = tombstone */
    size_t len;
    int found;
    int32_t partition;
    int64_t offset;
} last_t;

static int on_state(void *opaque, const rd_kafka_message_t *m)
{
    last_t *l = opaque;
    if (m->key_len != l->keylen || memcmp(m->key, l->key, l->keylen))
        return 0;
    free(l->payload);
    l->payload = NULL;
    l->len = 0;
    if (m->payload && (l->payload = malloc(m->len))) {
        memcpy(l->payload, m->payload, m->len);
        l->len = m->len;
    }
    l->found = 1;
    l->partition = m->partition;
    l->offset = m->offset;
    return 0;
}

static json_t *opt_long(const avro_value_t *v, int i)
{
    int64_t x;
    return cs_avro_get_long(v, i, &x) ? json_integer(x) : json_null();
}

/* The SyncState record as JSON; NULL (printed) when it does not decode. */
static json_t *state_json(adm_t *a, const last_t *l)
{
    char errstr[512];
    cs_avro_registry_t *reg = cs_avro_registry_new(errstr, sizeof(errstr));
    cs_avro_decoder_t *dec = reg ? cs_avro_decoder_new(reg) : NULL;
    cs_avro_decoded_t d;
    json_t *o = NULL, *fields;
    bool b = false;
    if (!dec || cs_avro_decode(dec, l->payload, l->len, &d) || d.schema != CS_AVRO_SYNC_STATE) {
        fprintf(stderr,
                "crmsync-admin prospect: changelog record at offset %" PRId64
                " does not decode as SyncState\n",
                l->offset);
        goto out;
    }
    fields = json_array();
    for (size_t k = 0, n = cs_avro_count(d.value, CS_SS_FIELDS); k < n; k++) {
        avro_value_t item;
        int64_t t = 0, h = 0;
        const char *name, *val;
        if (cs_avro_get_item(d.value, CS_SS_FIELDS, k, &item, NULL))
            continue;
        name = cs_avro_get_str(&item, CS_FS_NAME, NULL);
        val = cs_avro_get_str(&item, CS_FS_VALUE, NULL);
        cs_avro_get_long(&item, CS_FS_TIME, &t);
        cs_avro_get_long(&item, CS_FS_HASH, &h);
        {
            char hex[12] = "-";
            json_t *fj = json_pack(
                "{s:s, s:I, s:s}", "name", name ? name : "", "time", (json_int_t)t, "side",
                cs_avro_get_enum(&item, CS_FS_SIDE) == CS_SIDE_CRM ? "crm" : "marketing");
            if (h)
                snprintf(hex, sizeof(hex), "%08" PRIx32, (uint32_t)h);
            json_object_set_new(fj, "value_hash", json_string(hex));
            if (val)
                json_object_set_new(fj, "value", json_string(val));
            json_array_append_new(fields, fj);
        }
    }
    cs_avro_get_bool(d.value, CS_SS_DO_NOT_SYNC, &b);
    o = json_pack(
        "{s:i, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "partition", (int)l->partition, "offset",
        (json_int_t)l->offset, "prospect_id", opt_long(d.value, CS_SS_PROSPECT_ID),
        "marketing_watermark", opt_long(d.value, CS_SS_MARKETING_WATERMARK), "crm_watermark",
        opt_long(d.value, CS_SS_CRM_WATERMARK), "updated_at", opt_long(d.value, CS_SS_UPDATED_AT),
        "last_activity_at", opt_long(d.value, CS_SS_LAST_ACTIVITY_AT), "crm_last_modified",
        opt_long(d.value, CS_SS_CRM_LAST_MODIFIED));
    if (!o) {
        json_decref(fields);
        goto out;
    }
    if (!cs_avro_is_null(d.value, CS_SS_CRM_ID)) {
        json_object_set_new(
            o, "crm_object",
            json_string(cs_avro_get_enum(d.value, CS_SS_CRM_OBJECT) == CS_OBJECT_CONTACT ? "Contact"
                                                                                         : "Lead"));
        json_object_set_new(o, "crm_id", json_string(cs_avro_get_str(d.value, CS_SS_CRM_ID, NULL)));
    }
    json_object_set_new(o, "assigned_user_id", opt_long(d.value, CS_SS_ASSIGNED_USER_ID));
    json_object_set_new(o, "do_not_sync", json_boolean(b));
    b = false;
    cs_avro_get_bool(d.value, CS_SS_PENDING, &b);
    json_object_set_new(o, "pending", json_boolean(b));
    {
        const char *lr = cs_avro_get_str(d.value, CS_SS_LAST_RESULT, NULL);
        json_object_set_new(o, "last_result", lr ? json_string(lr) : json_null());
    }
    json_object_set_new(o, "fields", fields);
out:
    cs_avro_decoder_destroy(dec);
    cs_avro_registry_destroy(reg);
    return o;
}

/* ---------------------------------------------------------------- text output */

static void line_time(const char *label, json_t *v)
{
    char t[40];
    json_int_t ms = json_integer_value(v);
    printf("  %-20s %s\n", label, ms > 0 ? adm_time(ms, t, sizeof(t)) : "never");
}

static void print_fields(json_t *fields, int live)
{
    static const char *const h_live[] = {"FIELD", "SIDE", "TIME", "BEHAVIOUR", "VALUE_HASH"};
    static const char *const h_log[] = {"FIELD", "SIDE", "TIME", "VALUE_HASH"};
    adm_table_t *t = live ? adm_table_new(5, h_live) : adm_table_new(4, h_log);
    const char *name;
    json_t *f;
    size_t i;
    char tb[40];
    if (live) {
        json_object_foreach(fields, name, f)
        {
            adm_table_cell(t, "%s", name);
            adm_table_cell(t, "%s", json_string_value(json_object_get(f, "side")));
            adm_table_cell(
                t, "%s", adm_time(json_integer_value(json_object_get(f, "time")), tb, sizeof(tb)));
            adm_table_cell(t, "%s", json_string_value(json_object_get(f, "wins")));
            adm_table_cell(t, "%s", json_string_value(json_object_get(f, "value_hash")));
        }
    } else {
        json_array_foreach(fields, i, f)
        {
            adm_table_cell(t, "%s", json_string_value(json_object_get(f, "name")));
            adm_table_cell(t, "%s", json_string_value(json_object_get(f, "side")));
            adm_table_cell(
                t, "%s", adm_time(json_integer_value(json_object_get(f, "time")), tb, sizeof(tb)));
            adm_table_cell(t, "%s", json_string_value(json_object_get(f, "value_hash")));
        }
    }
    if (adm_table_rows(t)) {
        printf("\n");
        adm_table_print(t, stdout);
    } else {
        printf("\n  no field pushed yet\n");
    }
    adm_table_destroy(t);
}

static void print_text(const char *key, const char *holder, json_t *live, json_t *state,
                       json_t *error, int nreplicas)
{
    json_t *src = live ? live : state, *v;
    char tb[40];
    printf("prospect %s\n", key);
    if (holder)
        printf("  %-20s %s (partition %d)\n", "held by", holder,
               (int)json_integer_value(json_object_get(live, "partition")));
    else
        printf("  %-20s %s\n", "held by",
               nreplicas ? "no replica (not seen since the replicas started, or its replica "
                           "did not answer)"
                         : "unknown (admin.consumers not set)");
    if ((v = json_object_get(src, "prospect_id")) && json_is_integer(v))
        printf("  %-20s %" JSON_INTEGER_FORMAT "\n", "prospect id", json_integer_value(v));
    if (json_object_get(src, "crm_id"))
        printf("  %-20s %s %s\n", "CRM link", json_string_value(json_object_get(src, "crm_object")),
               json_string_value(json_object_get(src, "crm_id")));
    else
        printf("  %-20s none\n", "CRM link");
    if ((v = json_object_get(src, "assigned_user_id")) && json_is_integer(v))
        printf("  %-20s %" JSON_INTEGER_FORMAT "\n", "assigned user", json_integer_value(v));
    else
        printf("  %-20s unassigned\n", "assigned user");
    printf("  %-20s %s\n", "do not sync",
           json_is_true(json_object_get(src, "do_not_sync")) ? "YES" : "no");
    line_time("marketing watermark", json_object_get(src, "marketing_watermark"));
    line_time("CRM watermark", json_object_get(src, "crm_watermark"));
    line_time("updated_at", json_object_get(src, "updated_at"));
    line_time("last activity", json_object_get(src, "last_activity_at"));
    line_time("CRM last modified", json_object_get(src, "crm_last_modified"));
    if (live) {
        json_t *q = json_object_get(live, "queue");
        if (json_is_true(json_object_get(live, "in_queue")) && q) {
            const char *fname;
            json_t *fv;
            printf("  %-20s yes: %s, waiting %" JSON_INTEGER_FORMAT " ms, attempts %d%s\n",
                   "in queue", json_string_value(json_object_get(q, "reason")),
                   json_integer_value(json_object_get(q, "waiting_ms")),
                   (int)json_integer_value(json_object_get(q, "attempts")),
                   json_is_true(json_object_get(q, "sync_now")) ? ", sync-now" : "");
            if (json_string_value(json_object_get(q, "last_error")))
                printf("  %-20s %s\n", "last attempt",
                       json_string_value(json_object_get(q, "last_error")));
            json_object_foreach(json_object_get(q, "pending_values"), fname, fv)
            {
                printf("  %-20s %s = %s%s%s\n", "pending", fname, json_is_null(fv) ? "" : "\"",
                       json_is_null(fv) ? "null" : json_string_value(fv),
                       json_is_null(fv) ? "" : "\"");
            }
        } else {
            printf("  %-20s no: %s\n", "in queue", json_string_value(json_object_get(live, "why")));
        }
    }
    if (state) {
        const char *lr = json_string_value(json_object_get(state, "last_result"));
        printf("  %-20s %s%s (changelog partition %d, offset %" JSON_INTEGER_FORMAT ")\n",
               "last sync result", lr ? lr : "-",
               json_is_true(json_object_get(state, "pending")) ? ", sync pending" : "",
               (int)json_integer_value(json_object_get(state, "partition")),
               json_integer_value(json_object_get(state, "offset")));
    } else {
        printf("  %-20s none on the changelog (never pushed)\n", "last sync result");
    }
    if (error)
        printf("  %-20s %s %s: %s (%s, attempts %d, %s)\n", "last error",
               json_string_value(json_object_get(error, "error_id")),
               json_string_value(json_object_get(error, "code")),
               json_string_value(json_object_get(error, "message")),
               json_string_value(json_object_get(error, "direction")),
               (int)json_integer_value(json_object_get(error, "attempts")),
               adm_time(json_integer_value(json_object_get(error, "last_at")), tb, sizeof(tb)));
    print_fields(live ? json_object_get(live, "fields") : json_object_get(state, "fields"),
                 live != NULL);
}

/* ---------------------------------------------------------------- command */

int admin_prospect(adm_t *a, int argc, char **argv)
{
    const adm_arg_t args[] = {{"--json", ADM_ARG_FLAG, &a->json}, {NULL, 0, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos)), key[512], errstr[512], **urls = NULL;
    char *esc = NULL, *path = NULL;
    const char *holder = NULL;
    json_t *live = NULL, *state = NULL, *error = NULL, *down = json_array();
    rd_kafka_t *rk = NULL;
    adm_error_t *errs = NULL;
    last_t last;
    int npos = 0, nurls = 0, nerrs = 0, rc, np;

    memset(&last, 0, sizeof(last));
    if (!pos || !down) {
        free(pos);
        json_decref(down);
        return adm_fail(a, ADM_FAIL, "out of memory");
    }
    rc = adm_parse_args(a, help, args, argc, argv, pos, &npos);
    if (rc == ADM_OK && npos != 1)
        rc = adm_fail(a, ADM_USAGE,
                      npos ? "one KEY only (see prospect --help)"
                           : "missing KEY (see prospect --help)");
    if (rc == ADM_OK && adm_key_normalize(pos[0], key, sizeof(key)))
        rc = adm_fail(a, ADM_USAGE, "'%s' is not a prospect key", pos[0]);
    free(pos);
    if (rc) {
        json_decref(down);
        return rc < 0 ? ADM_OK : rc;
    }
    rc = ADM_FAIL;

    /* 1. The replica holding the key. */
    nurls = adm_replicas(a, &urls);
    if (!(esc = cs_http_escape(key, strlen(key), 0)) ||
        asprintf(&path, "/prospect?key=%s", esc) < 0) {
        path = NULL;
        adm_fail(a, ADM_FAIL, "out of memory");
        goto out;
    }
    for (int u = 0; u < nurls && !live; u++) {
        int status = 0;
        json_t *j = adm_replica_get(a, urls[u], path, &status, errstr, sizeof(errstr));
        if (status == 200 && j) {
            live = j;
            holder = urls[u];
            continue;
        }
        if (status != 404) {
            fprintf(stderr, "crmsync-admin prospect: replica %s: %s\n", urls[u],
                    status ? "bad answer" : errstr);
            json_array_append_new(down, json_string(urls[u]));
        }
        json_decref(j);
    }

    /* 2. The latest changelog record of the key. */
    if (!(rk = adm_kafka_new(a, RD_KAFKA_PRODUCER)))
        goto out;
    if ((np = adm_partition_count(a, rk, cs_topic_name(a->conf, CS_TOPIC_STATE))) < 0)
        goto out;
    last.key = key;
    last.keylen = strlen(key);
    if (adm_read_topic(a, cs_topic_name(a->conf, CS_TOPIC_STATE),
                       adm_key_partition(key, strlen(key), np), on_state, &last))
        goto out;
    if (last.found && last.payload)
        state = state_json(a, &last);

    /* 3. Its latest error. */
    if ((np = adm_partition_count(a, rk, cs_topic_name(a->conf, CS_TOPIC_ERRORS))) < 0)
        goto out;
    if ((nerrs = adm_errors_read(a, adm_key_partition(key, strlen(key), np), &errs)) < 0) {
        nerrs = 0;
        goto out;
    }
    for (int i = 0; i < nerrs; i++) /* ordered by last_at: the last match is the latest */
        if (!strcmp(errs[i].key, key)) {
            json_decref(error);
            error = adm_error_json(&errs[i]);
        }

    if (!live && !state && !error) {
        rc = adm_fail(a, ADM_FAIL, "no state for '%s': %s, and no record on the changelog %s", key,
                      nurls ? (json_array_size(down) ? "the replicas that answered do not hold it"
                                                     : "no replica holds it")
                            : "admin.consumers not set",
                      cs_topic_name(a->conf, CS_TOPIC_STATE));
        goto out;
    }
    if (a->json) {
        rc = adm_print_json(json_pack("{s:s, s:s?, s:O?, s:O?, s:O?, s:O}", "key", key, "replica",
                                      holder, "live", live, "changelog", state, "last_error", error,
                                      "unreachable", down));
        goto out;
    }
    print_text(key, holder, live, state, error, nurls);
    rc = ADM_OK;
out:
    adm_errors_free(errs, nerrs);
    free(last.payload);
    if (rk)
        rd_kafka_destroy(rk);
    json_decref(live);
    json_decref(state);
    json_decref(error);
    json_decref(down);
    free(esc);
    free(path);
    adm_replicas_free(urls, nurls);
    return rc;
}
