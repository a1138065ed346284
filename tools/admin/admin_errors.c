/* crmsync-admin errors list | retry: the sync-errors topic read from its beginning to its
 * end (no consumer group), the latest record of each error_id kept (a retried error is
 * re-written under its id with more attempts), and RETRY_ERROR commands on the control
 * topic naming the errors and their prospects. */
#include "admin.h"

#include "cs_avro.h"
#include "cs_err.h"
#include "cs_topics.h"

#include <stdlib.h>
#include <string.h>

const char *adm_direction_name(int direction)
{
    static const char *const names[] = {
#define CS_DIR_NAME_(s) #s,
        CS_AVRO_DIRECTION_SYMBOLS(CS_DIR_NAME_)
#undef CS_DIR_NAME_
    };
    return direction >= 0 && direction < (int)(sizeof(names) / sizeof(*names)) ? names[direction]
                                                                               : "?";
}

typedef struct reader_s {
    adm_t *a;
    cs_avro_registry_t *reg;
    cs_avro_decoder_t *dec;
    adm_error_t *v;
    int n, cap;
    long unreadable;
    int nomem;
} reader_t;

static char *dup_field(const avro_value_t *rec, int i)
{
    const char *s = cs_avro_get_str(rec, i, NULL);
    return strdup(s ? s : "");
}

static void error_clear(adm_error_t *e)
{
    free(e->error_id);
    free(e->key);
    free(e->code);
    free(e->message);
    memset(e, 0, sizeof(*e));
}

static int on_error_record(void *opaque, const rd_kafka_message_t *m)
{
    reader_t *r = opaque;
    cs_avro_decoded_t d;
    adm_error_t e, *slot = NULL;
    const char *id;
    int32_t attempts = 1;
    if (!m->payload || cs_avro_decode(r->dec, m->payload, m->len, &d) ||
        d.schema != CS_AVRO_SYNC_ERROR) {
        r->unreadable++;
        return 0;
    }
    id = cs_avro_get_str(d.value, CS_SE_ERROR_ID, NULL);
    for (int i = 0; id && i < r->n; i++)
        if (!strcmp(r->v[i].error_id, id))
            slot = &r->v[i];
    memset(&e, 0, sizeof(e));
    e.error_id = dup_field(d.value, CS_SE_ERROR_ID);
    e.key = dup_field(d.value, CS_SE_PROSPECT_KEY);
    e.code = dup_field(d.value, CS_SE_CODE);
    e.message = dup_field(d.value, CS_SE_MESSAGE);
    e.direction = cs_avro_get_enum(d.value, CS_SE_DIRECTION);
    cs_avro_get_int(d.value, CS_SE_ATTEMPTS, &attempts);
    e.attempts = attempts;
    cs_avro_get_long(d.value, CS_SE_FIRST_AT, &e.first_at);
    cs_avro_get_long(d.value, CS_SE_LAST_AT, &e.last_at);
    e.partition = m->partition;
    e.offset = m->offset;
    if (!e.error_id || !e.key || !e.code || !e.message) {
        error_clear(&e);
        r->nomem = 1;
        return 1;
    }
    if (!slot) {
        if (r->n == r->cap) {
            int cap = r->cap ? r->cap * 2 : 64;
            adm_error_t *v = realloc(r->v, (size_t)cap * sizeof(*v));
            if (!v) {
                error_clear(&e);
                r->nomem = 1;
                return 1;
            }
            r->v = v;
            r->cap = cap;
        }
        slot = &r->v[r->n++];
        memset(slot, 0, sizeof(*slot));
    }
    error_clear(slot);
    *slot = e;
    return 0;
}

static int by_time(const void *x, const void *y)
{
    const adm_error_t *a = x, *b = y;
    if (a->last_at != b->last_at)
        return a->last_at < b->last_at ? -1 : 1;
    return strcmp(a->error_id, b->error_id);
}

int adm_errors_read(adm_t *a, int32_t partition, adm_error_t **out)
{
    char errstr[512];
    reader_t r;
    int rc;
    memset(&r, 0, sizeof(r));
    r.a = a;
    *out = NULL;
    if (!(r.reg = cs_avro_registry_new(errstr, sizeof(errstr))) ||
        !(r.dec = cs_avro_decoder_new(r.reg))) {
        adm_fail(a, ADM_FAIL, "Avro setup failed: %s", r.reg ? "out of memory" : errstr);
        cs_avro_registry_destroy(r.reg);
        return -1;
    }
    rc = adm_read_topic(a, cs_topic_name(a->conf, CS_TOPIC_ERRORS), partition, on_error_record, &r);
    cs_avro_decoder_destroy(r.dec);
    cs_avro_registry_destroy(r.reg);
    if (rc || r.nomem) {
        if (r.nomem)
            adm_fail(a, ADM_FAIL, "out of memory");
        adm_errors_free(r.v, r.n);
        return -1;
    }
    if (r.unreadable)
        fprintf(stderr, "crmsync-admin %s: %ld unreadable record(s) in %s skipped\n", a->cmd,
                r.unreadable, cs_topic_name(a->conf, CS_TOPIC_ERRORS));
    if (r.n > 1)
        qsort(r.v, (size_t)r.n, sizeof(*r.v), by_time);
    *out = r.v;
    return r.n;
}

void adm_errors_free(adm_error_t *e, int n)
{
    for (int i = 0; e && i < n; i++)
        error_clear(&e[i]);
    free(e);
}

json_t *adm_error_json(const adm_error_t *e)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:i, s:I}", "error_id", e->error_id,
                     "prospect_key", e->key, "direction", adm_direction_name(e->direction), "code",
                     e->code, "message", e->message, "attempts", (int)e->attempts, "first_at",
                     (json_int_t)e->first_at, "last_at", (json_int_t)e->last_at, "partition",
                     (int)e->partition, "offset", (json_int_t)e->offset);
}

/* ---------------------------------------------------------------- list */

static const char list_help[] =
    "Usage: crmsync-admin [options] errors list [--code CODE] [--key KEY] [--json]\n\n"
    "Lists the sync errors on the errors topic (the latest record of each error id), oldest\n"
    "first: per-record CRM or marketing rejections and unreadable (poison) input records.\n"
    "  --code CODE   only errors with this code (e.g. INVALID_EMAIL_ADDRESS)\n"
    "  --key KEY     only errors of this prospect\n";

static int matches(const adm_error_t *e, const char *code, const char *key)
{
    return (!code || !strcmp(e->code, code)) && (!key || !strcmp(e->key, key));
}

static int errors_list(adm_t *a, int argc, char **argv)
{
    const char *code = NULL, *key_arg = NULL;
    char key[512], t1[40];
    const adm_arg_t args[] = {{"--json", ADM_ARG_FLAG, &a->json},
                              {"--code", ADM_ARG_STR, &code},
                              {"--key", ADM_ARG_STR, &key_arg},
                              {NULL, 0, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    adm_error_t *errs = NULL;
    int npos = 0, n, shown = 0, rc;
    if (!pos)
        return adm_fail(a, ADM_FAIL, "out of memory");
    rc = adm_parse_args(a, list_help, args, argc, argv, pos, &npos);
    if (rc == ADM_OK && npos)
        rc = adm_fail(a, ADM_USAGE, "unexpected argument '%s' (see errors list --help)", pos[0]);
    free(pos);
    if (rc)
        return rc < 0 ? ADM_OK : rc;
    if (key_arg && adm_key_normalize(key_arg, key, sizeof(key)))
        return adm_fail(a, ADM_USAGE, "--key: '%s' is not a prospect key", key_arg);
    if ((n = adm_errors_read(a, -1, &errs)) < 0)
        return ADM_FAIL;
    if (a->json) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            if (matches(&errs[i], code, key_arg ? key : NULL))
                json_array_append_new(arr, adm_error_json(&errs[i]));
        adm_errors_free(errs, n);
        return adm_print_json(json_pack("{s:s, s:o}", "topic",
                                        cs_topic_name(a->conf, CS_TOPIC_ERRORS), "errors", arr));
    }
    {
        static const char *const h[] = {"ERROR_ID",  "KEY",     "DIRECTION", "CODE",
                                        ">ATTEMPTS", "LAST_AT", "MESSAGE"};
        adm_table_t *t = adm_table_new(7, h);
        for (int i = 0; i < n; i++) {
            const adm_error_t *e = &errs[i];
            if (!matches(e, code, key_arg ? key : NULL))
                continue;
            adm_table_cell(t, "%s", e->error_id);
            adm_table_cell(t, "%s", *e->key ? e->key : "-");
            adm_table_cell(t, "%s", adm_direction_name(e->direction));
            adm_table_cell(t, "%s", e->code);
            adm_table_cell(t, "%d", (int)e->attempts);
            adm_table_cell(t, "%s", adm_time(e->last_at, t1, sizeof(t1)));
            adm_table_cell(t, "%s", e->message);
            shown++;
        }
        if (shown)
            adm_table_print(t, stdout);
        printf("%d error%s%s%s%s%s (%d on %s)\n", shown, shown == 1 ? "" : "s",
               code ? " with code " : "", code ? code : "", key_arg ? " of " : "",
               key_arg ? key : "", n, cs_topic_name(a->conf, CS_TOPIC_ERRORS));
        adm_table_destroy(t);
    }
    adm_errors_free(errs, n);
    return ADM_OK;
}

/* ---------------------------------------------------------------- retry */

static const char retry_help[] =
    "Usage: crmsync-admin [options] errors retry (--id ID... | --all [--code CODE]) [--json]\n\n"
    "Asks the replicas to retry errors: one RETRY_ERROR command on the control topic naming\n"
    "the errors and their prospects; the replica holding each prospect queues it again with\n"
    "every field and a fresh attempt count. Poison input records (direction INPUT) cannot be\n"
    "retried: the source record itself is unreadable.\n"
    "  --id ID       an error id from errors list (repeatable)\n"
    "  --all         every retriable error on the errors topic (with --code: of that code)\n";

static int errors_retry(adm_t *a, int argc, char **argv)
{
    adm_list_t ids = {NULL, 0};
    int all = 0, npos = 0, n = -1, nkeys = 0, nids = 0, rc;
    const char *code = NULL;
    const adm_arg_t args[] = {{"--json", ADM_ARG_FLAG, &a->json},
                              {"--id", ADM_ARG_LIST, &ids},
                              {"--all", ADM_ARG_FLAG, &all},
                              {"--code", ADM_ARG_STR, &code},
                              {NULL, 0, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    adm_error_t *errs = NULL;
    const char **keys = NULL, **eids = NULL;
    json_t *sent = NULL;

    if (!pos)
        return adm_fail(a, ADM_FAIL, "out of memory");
    rc = adm_parse_args(a, retry_help, args, argc, argv, pos, &npos);
    if (rc) {
        rc = rc < 0 ? ADM_OK : rc;
        goto out;
    }
    if (npos) {
        rc = adm_fail(a, ADM_USAGE, "unexpected argument '%s' (see errors retry --help)", pos[0]);
        goto out;
    }
    if (!all == !ids.n) {
        rc = adm_fail(a, ADM_USAGE, "give either --id ID (repeatable) or --all");
        goto out;
    }
    if (code && !all) {
        rc = adm_fail(a, ADM_USAGE, "--code goes with --all");
        goto out;
    }
    if ((n = adm_errors_read(a, -1, &errs)) < 0) {
        rc = ADM_FAIL;
        goto out;
    }
    keys = calloc((size_t)n + 1, sizeof(*keys));
    eids = calloc((size_t)n + 1, sizeof(*eids));
    if (!keys || !eids) {
        rc = adm_fail(a, ADM_FAIL, "out of memory");
        goto out;
    }
    /* --id names must all exist; --all takes every retriable one. */
    for (int k = 0; k < ids.n; k++) {
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            found = !strcmp(errs[i].error_id, ids.v[k]);
        if (!found) {
            rc = adm_fail(a, ADM_FAIL, "no error with id '%s' on %s (see errors list)", ids.v[k],
                          cs_topic_name(a->conf, CS_TOPIC_ERRORS));
            goto out;
        }
    }
    for (int i = 0; i < n; i++) {
        const adm_error_t *e = &errs[i];
        int wanted = all ? (!code || !strcmp(e->code, code)) : 0, dup = 0;
        for (int k = 0; !all && k < ids.n; k++)
            wanted |= !strcmp(e->error_id, ids.v[k]);
        if (!wanted)
            continue;
        if (e->direction == CS_DIRECTION_INPUT || !*e->key) {
            if (!all) {
                rc = adm_fail(a, ADM_FAIL,
                              "error '%s' is a poison input record: nothing to retry (fix or "
                              "re-publish the source record)",
                              e->error_id);
                goto out;
            }
            continue;
        }
        eids[nids++] = e->error_id;
        for (int k = 0; k < nkeys; k++)
            dup |= !strcmp(keys[k], e->key);
        if (!dup)
            keys[nkeys++] = e->key;
    }
    if (!nids) {
        if (a->json)
            rc = adm_print_json(json_pack("{s:b, s:[]}", "sent", 0, "error_ids"));
        else
            printf("no retriable errors%s%s: nothing sent\n", code ? " with code " : "",
                   code ? code : "");
        rc = rc ? rc : ADM_OK;
        goto out;
    }
    if ((rc = adm_send_control(a, CS_COMMAND_RETRY_ERROR, keys, nkeys, eids, nids, &sent)))
        goto out;
    if (a->json) {
        json_object_set_new(sent, "sent", json_true());
        rc = adm_print_json(sent);
    } else {
        printf("sent RETRY_ERROR for %d error%s of %d prospect%s:\n", nids, nids == 1 ? "" : "s",
               nkeys, nkeys == 1 ? "" : "s");
        for (int i = 0; i < nids; i++)
            for (int e = 0; e < n; e++)
                if (errs[e].error_id == eids[i])
                    printf("  %s  %s  %s\n", errs[e].error_id, errs[e].key, errs[e].code);
        printf("  command id  %s\n  delivered   %s [%d] at offset %" JSON_INTEGER_FORMAT "\n",
               json_string_value(json_object_get(sent, "command_id")),
               json_string_value(json_object_get(sent, "topic")),
               (int)json_integer_value(json_object_get(sent, "partition")),
               json_integer_value(json_object_get(sent, "offset")));
        json_decref(sent);
    }
out:
    free(keys);
    free(eids);
    adm_errors_free(errs, n < 0 ? 0 : n);
    adm_list_free(&ids);
    free(pos);
    return rc;
}

int admin_errors(adm_t *a, int argc, char **argv)
{
    static const char help[] = "Usage: crmsync-admin [options] errors list|retry ...\n"
                               "  list [--code CODE] [--key KEY]   the sync errors\n"
                               "  retry (--id ID... | --all)       retry errors\n"
                               "See errors list --help and errors retry --help.\n";
    if (argc < 1)
        return adm_fail(a, ADM_USAGE, "missing action: list or retry (see errors --help)");
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        fputs(help, stdout);
        return ADM_OK;
    }
    if (!strcmp(argv[0], "list")) {
        a->cmd = "errors list";
        return errors_list(a, argc - 1, argv + 1);
    }
    if (!strcmp(argv[0], "retry")) {
        a->cmd = "errors retry";
        return errors_retry(a, argc - 1, argv + 1);
    }
    return adm_fail(a, ADM_USAGE, "unknown action '%s': list or retry", argv[0]);
}
