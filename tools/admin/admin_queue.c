/* crmsync-admin queue: what waits to sync on every replica (its /queue endpoint), merged
 * oldest first, with the reason each entry waits; then the parked prospects, which hold no
 * queue entry but wait for something outside crmsync (an assignment, an e-mail, an
 * operator's retry). */
#include "admin.h"

#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: crmsync-admin [options] queue [--limit N] [--json]\n\n"
    "Lists what waits to sync, oldest first, from every replica in admin.consumers, and why:\n"
    "  linger (batch filling)        the batch is filling (batch.linger.ms)\n"
    "  paused                        the connector is paused (crmsync-admin unpause)\n"
    "  sync-now                      queued ahead of the others\n"
    "  backing off after an error    a transient record error; retried with backoff\n"
    "  API backing off (...)         a batch-level failure (5xx, rate limit); retried\n"
    "  in a batch being pushed       on its way\n"
    "Then the parked prospects: unassigned and no matching contact or lead, waiting for an\n"
    "e-mail, no prospect (auto-create off), gave up after an error, do-not-sync.\n"
    "  --limit N   at most N entries and N parked prospects (default 100)\n";

static int by_age(const void *x, const void *y)
{
    json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "waiting_ms"));
    json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "waiting_ms"));
    return a == b ? 0 : a > b ? -1 : 1;
}

static void join_names(const json_t *arr, char *buf, size_t size)
{
    size_t i, len = 0;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        int w = snprintf(buf + len, size - len, "%s%s", i ? "," : "", json_string_value(v));
        if (w < 0 || (size_t)w >= size - len)
            break;
        len += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, size, "-");
}

int admin_queue(adm_t *a, int argc, char **argv)
{
    long long limit = 100;
    const adm_arg_t args[] = {
        {"--json", ADM_ARG_FLAG, &a->json}, {"--limit", ADM_ARG_INT, &limit}, {NULL, 0, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos)), **urls = NULL, path[64], errstr[512];
    json_t *entries = json_array(), *parked = json_array(), *down = json_array(), *doc;
    json_t **sorted = NULL;
    long long depth = 0;
    int npos = 0, nurls = 0, nreach = 0, npaused = 0, rc;
    size_t n, i;

    if (!pos || !entries || !parked || !down) {
        free(pos);
        json_decref(entries);
        json_decref(parked);
        json_decref(down);
        return adm_fail(a, ADM_FAIL, "out of memory");
    }
    rc = adm_parse_args(a, help, args, argc, argv, pos, &npos);
    if (rc == ADM_OK && npos)
        rc = adm_fail(a, ADM_USAGE, "unexpected argument '%s' (see queue --help)", pos[0]);
    if (rc == ADM_OK && (limit < 1 || limit > 100000))
        rc = adm_fail(a, ADM_USAGE, "--limit must be between 1 and 100000");
    free(pos);
    if (rc == ADM_OK && (nurls = adm_replicas(a, &urls)) == 0)
        rc = adm_fail(a, ADM_FAIL,
                      "no replica endpoints: set admin.consumers=http://host:port,... (each sync "
                      "consumer logs its port as \"metrics on http://...\")");
    if (rc) {
        json_decref(entries);
        json_decref(parked);
        json_decref(down);
        return rc < 0 ? ADM_OK : rc;
    }

    snprintf(path, sizeof(path), "/queue?limit=%lld", limit);
    for (int u = 0; u < nurls; u++) {
        int status = 0;
        json_t *q = adm_replica_get(a, urls[u], path, &status, errstr, sizeof(errstr)), *e;
        if (status != 200 || !q) {
            fprintf(stderr, "crmsync-admin queue: replica %s: %s\n", urls[u],
                    status ? "bad answer" : errstr);
            json_array_append_new(down, json_string(urls[u]));
            json_decref(q);
            continue;
        }
        nreach++;
        npaused += json_is_true(json_object_get(q, "paused"));
        depth += json_integer_value(json_object_get(q, "depth"));
        json_array_foreach(json_object_get(q, "entries"), i, e)
        {
            json_object_set_new(e, "replica", json_string(urls[u]));
            json_array_append(entries, e);
        }
        json_array_foreach(json_object_get(q, "parked"), i, e)
        {
            json_object_set_new(e, "replica", json_string(urls[u]));
            if (json_array_size(parked) < (size_t)limit)
                json_array_append(parked, e);
        }
        json_decref(q);
    }
    adm_replicas_free(urls, nurls);
    if (!nreach) {
        json_decref(entries);
        json_decref(parked);
        json_decref(down);
        return adm_fail(a, ADM_FAIL, "no replica answered");
    }

    /* Oldest first across replicas, then the limit. */
    n = json_array_size(entries);
    sorted = calloc(n + 1, sizeof(*sorted));
    for (i = 0; sorted && i < n; i++)
        sorted[i] = json_array_get(entries, i);
    if (sorted)
        qsort(sorted, n, sizeof(*sorted), by_age);
    {
        json_t *limited = json_array();
        for (i = 0; sorted && i < n && i < (size_t)limit; i++)
            json_array_append(limited, sorted[i]);
        free(sorted);
        json_decref(entries);
        entries = limited;
    }
    doc = json_pack("{s:I, s:o, s:o, s:o, s:o}", "depth", (json_int_t)depth, "paused",
                    npaused == nreach ? json_true()
                    : npaused         ? json_string("mixed")
                                      : json_false(),
                    "entries", entries, "parked", parked, "unreachable", down);
    if (a->json)
        return adm_print_json(doc);

    if (json_array_size(entries)) {
        static const char *const h[] = {"KEY",      ">WAITING_MS", "REASON",       ">ATTEMPTS",
                                        "SYNC_NOW", "TO_CRM",      "TO_MARKETING", "REPLICA"};
        adm_table_t *t = adm_table_new(8, h);
        json_t *e;
        json_array_foreach(entries, i, e)
        {
            char crm[256], mkt[256];
            const char *err = json_string_value(json_object_get(e, "last_error"));
            join_names(json_object_get(e, "to_crm"), crm, sizeof(crm));
            join_names(json_object_get(e, "to_marketing"), mkt, sizeof(mkt));
            adm_table_cell(t, "%s", json_string_value(json_object_get(e, "key")));
            adm_table_cell(t, "%" JSON_INTEGER_FORMAT,
                           json_integer_value(json_object_get(e, "waiting_ms")));
            adm_table_cell(t, "%s%s%s", json_string_value(json_object_get(e, "reason")),
                           err ? ": " : "", err ? err : "");
            adm_table_cell(t, "%d", (int)json_integer_value(json_object_get(e, "attempts")));
            adm_table_cell(t, "%s", json_is_true(json_object_get(e, "sync_now")) ? "yes" : "no");
            adm_table_cell(t, "%s", crm);
            adm_table_cell(t, "%s", mkt);
            adm_table_cell(t, "%s", json_string_value(json_object_get(e, "replica")));
        }
        adm_table_print(t, stdout);
        adm_table_destroy(t);
    }
    printf("%lld queued%s (%zu shown)%s\n", depth, npaused == nreach ? ", connector PAUSED" : "",
           json_array_size(entries), json_array_size(down) ? "; some replicas did not answer" : "");
    if (json_array_size(parked)) {
        static const char *const h[] = {"PARKED", "REASON", "REPLICA"};
        adm_table_t *t = adm_table_new(3, h);
        json_t *e;
        json_array_foreach(parked, i, e)
        {
            adm_table_cell(t, "%s", json_string_value(json_object_get(e, "key")));
            adm_table_cell(t, "%s", json_string_value(json_object_get(e, "reason")));
            adm_table_cell(t, "%s", json_string_value(json_object_get(e, "replica")));
        }
        printf("\n");
        adm_table_print(t, stdout);
        adm_table_destroy(t);
        printf("%zu parked (waiting for something outside crmsync)\n", json_array_size(parked));
    }
    json_decref(doc);
    return ADM_OK;
}
