/* crmsync-admin: the operator's command line. Options first (the config file, topic names,
 * group, replica endpoints), then one command with its own arguments. */
#include "admin.h"
#include "cs_conf.h"
#include "cs_kafka.h"
#include "cs_err.h"
#include "cs_run.h"
#include "cs_topics.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "crmsync-admin [options] COMMAND [ARGS] [--json]\n\n"
    "Commands (each takes --help; --json prints one JSON document instead of tables):\n"
    "  topics create|verify        create or check the Kafka topics crmsync uses\n"
    "  status                      lag per group partition, replicas, queue depth, paused, "
    "errors\n"
    "  queue [--limit N]           what waits to sync, oldest first, and why\n"
    "  errors list [--code C]      sync errors (latest record of each)\n"
    "  errors retry (--id ID | --all)  ask the replicas to retry errors\n"
    "  prospect KEY                a prospect's watermarks, fields, CRM link, queue state\n"
    "  sync-now KEY...             sync these prospects now (jumps the queue)\n"
    "  pause | unpause             stop or resume pushing (events keep being read)\n"
    "  replay (--to-start | --to-offset N | --to-time ISO8601) [--group G] [--dry-run] "
    "[--wait]\n"
    "                              rewind the sync consumers' group\n\n"
    "Exit status: 0 done, 1 failed (message on stderr), 2 bad arguments.\n"
    "Options go before the command, e.g. crmsync-admin --config crmsync.conf status.";

typedef struct cmd_s {
    const char *name;
    int (*fn)(adm_t *a, int argc, char **argv);
} cmd_t;

static const cmd_t cmds[] = {
    {"topics", admin_topics}, {"status", admin_status},     {"queue", admin_queue},
    {"errors", admin_errors}, {"prospect", admin_prospect}, {"sync-now", admin_sync_now},
    {"pause", admin_pause},   {"unpause", admin_unpause},   {"replay", admin_replay},
};

int main(int argc, char **argv)
{
    char errstr[512];
    int pos = argc, rc;
    adm_t a;
    cs_conf_t *conf = cs_conf_new("crmsync-admin", usage, adm_opts);

    memset(&a, 0, sizeof(a));
    if (!conf || cs_conf_add_opts(conf, cs_topics_opts)) {
        fprintf(stderr, "crmsync-admin: out of memory\n");
        return ADM_FAIL;
    }
    cs_conf_set_check(conf, cs_kafka_check_conf);
    rc = cs_conf_from_args(conf, argc, argv, &pos, errstr, sizeof(errstr));
    if (rc != CS_OK) {
        if (rc < 0)
            fprintf(stderr, "crmsync-admin: %s\n", errstr);
        cs_conf_destroy(conf);
        return rc < 0 ? ADM_USAGE : ADM_OK;
    }
    cs_run_install_signals();
    a.conf = conf;
    a.timeout_ms = (int)cs_conf_int(conf, "admin.timeout.ms");
    rc = -1;
    if (pos >= argc) {
        fprintf(stderr, "%s\n", usage);
        rc = ADM_USAGE;
    }
    for (size_t i = 0; rc < 0 && i < sizeof(cmds) / sizeof(*cmds); i++)
        if (!strcmp(argv[pos], cmds[i].name)) {
            a.cmd = cmds[i].name;
            rc = cmds[i].fn(&a, argc - pos - 1, argv + pos + 1);
        }
    if (rc < 0) {
        fprintf(stderr, "crmsync-admin: unknown command '%s' (see crmsync-admin --help)\n",
                argv[pos]);
        rc = ADM_USAGE;
    }
    fflush(stdout);
    cs_conf_destroy(conf);
    return rc;
}
