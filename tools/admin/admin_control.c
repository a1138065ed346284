/* crmsync-admin sync-now KEY... | pause | unpause: one Control record each on the control
 * topic, delivered before the command succeeds. Every replica reads the whole control topic:
 * pause/unpause are global (the last one wins, also for a replica started later), sync-now
 * is acted on by the replica that holds the prospect. */
#include "admin.h"

#include "cs_avro.h"

#include <stdlib.h>
#include <string.h>

static void print_sent(const json_t *sent)
{
    const json_t *keys = json_object_get(sent, "prospect_keys");
    size_t nk = json_array_size(keys);
    printf("sent %s", json_string_value(json_object_get(sent, "command")));
    if (nk) {
        printf(" for %zu prospect%s:", nk, nk == 1 ? "" : "s");
        for (size_t i = 0; i < nk; i++)
            printf(" %s", json_string_value(json_array_get(keys, i)));
    }
    printf("\n  command id  %s\n  issued by   %s\n  delivered   %s [%d] at offset "
           "%" JSON_INTEGER_FORMAT "\n",
           json_string_value(json_object_get(sent, "command_id")),
           json_string_value(json_object_get(sent, "issued_by")),
           json_string_value(json_object_get(sent, "topic")),
           (int)json_integer_value(json_object_get(sent, "partition")),
           json_integer_value(json_object_get(sent, "offset")));
}

static int finish(adm_t *a, json_t *sent, const char *note)
{
    if (a->json)
        return adm_print_json(sent);
    print_sent(sent);
    if (note)
        printf("%s\n", note);
    json_decref(sent);
    return ADM_OK;
}

static int connector_command(adm_t *a, int command, int argc, char **argv, const char *help,
                             const char *note)
{
    const adm_arg_t args[] = {{"--json", ADM_ARG_FLAG, &a->json}, {NULL, 0, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    json_t *sent = NULL;
    int npos = 0, rc;
    if (!pos)
        return adm_fail(a, ADM_FAIL, "out of memory");
    rc = adm_parse_args(a, help, args, argc, argv, pos, &npos);
    if (rc == ADM_OK && npos > 0)
        rc = adm_fail(a, ADM_USAGE, "unexpected argument '%s' (see %s --help)", pos[0], a->cmd);
    free(pos);
    if (rc)
        return rc < 0 ? ADM_OK : rc;
    rc = adm_send_control(a, command, NULL, 0, NULL, 0, &sent);
    return rc ? rc : finish(a, sent, note);
}

int admin_pause(adm_t *a, int argc, char **argv)
{
    return connector_command(
        a, CS_COMMAND_PAUSE, argc, argv,
        "Usage: crmsync-admin [options] pause [--json]\n\n"
        "Pauses the connector: the replicas keep reading events and queueing prospects but push\n"
        "nothing (sync-now still goes through) until unpause. Global, and it survives replica\n"
        "restarts (the last pause/unpause on the control topic wins).\n",
        "the replicas stop pushing once they read it (crmsync-admin status shows PAUSED)");
}

int admin_unpause(adm_t *a, int argc, char **argv)
{
    return connector_command(a, CS_COMMAND_UNPAUSE, argc, argv,
                             "Usage: crmsync-admin [options] unpause [--json]\n\n"
                             "Resumes pushing after a pause; the queued backlog drains.\n",
                             "the replicas resume pushing once they read it");
}

int admin_sync_now(adm_t *a, int argc, char **argv)
{
    static const char help[] =
        "Usage: crmsync-admin [options] sync-now KEY... [--json]\n\n"
        "Syncs these prospects now: every mapped field is pushed to the CRM with the values\n"
        "read from the marketing system, ahead of the queue, even while paused. A do-not-sync\n"
        "prospect is not synced. KEY is the prospect key (the e-mail address, trimmed and\n"
        "lower-cased, or the prospect id where duplicate e-mails are allowed).\n";
    const adm_arg_t args[] = {{"--json", ADM_ARG_FLAG, &a->json}, {NULL, 0, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    char **keys = calloc((size_t)argc + 1, sizeof(*keys));
    json_t *sent = NULL;
    int npos = 0, nkeys = 0, rc;
    if (!pos || !keys) {
        rc = adm_fail(a, ADM_FAIL, "out of memory");
        goto out;
    }
    rc = adm_parse_args(a, help, args, argc, argv, pos, &npos);
    if (rc) {
        rc = rc < 0 ? ADM_OK : rc;
        goto out;
    }
    if (npos == 0) {
        rc = adm_fail(a, ADM_USAGE, "missing KEY (see sync-now --help)");
        goto out;
    }
    for (int i = 0; i < npos; i++) {
        char key[512];
        int dup = 0;
        if (adm_key_normalize(pos[i], key, sizeof(key))) {
            rc = adm_fail(a, ADM_USAGE, "'%s' is not a prospect key", pos[i]);
            goto out;
        }
        for (int k = 0; k < nkeys; k++)
            dup |= !strcmp(keys[k], key);
        if (!dup && !(keys[nkeys++] = strdup(key))) {
            rc = adm_fail(a, ADM_FAIL, "out of memory");
            goto out;
        }
    }
    rc = adm_send_control(a, CS_COMMAND_SYNC_NOW, (const char *const *)keys, nkeys, NULL, 0, &sent);
    if (!rc)
        rc = finish(a, sent, "the replica holding each prospect queues it ahead of the others");
out:
    for (int k = 0; keys && k < nkeys; k++)
        free(keys[k]);
    free(keys);
    free(pos);
    return rc;
}
