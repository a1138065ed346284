/* crmsync-admin: the operator's command line. */
#include "admin.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_run.h"
#include "cs_topics.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "crmsync-admin [options] COMMAND [ARGS]\n\n"
    "Commands:\n"
    "  topics create|verify   create or check the Kafka topics crmsync uses\n";

int main(int argc, char **argv)
{
    char errstr[512];
    int pos = argc, rc;
    cs_conf_t *conf = cs_conf_new("crmsync-admin", usage, NULL);
    if (!conf || cs_conf_add_opts(conf, cs_topics_opts)) {
        fprintf(stderr, "crmsync-admin: out of memory\n");
        return 1;
    }
    rc = cs_conf_from_args(conf, argc, argv, &pos, errstr, sizeof(errstr));
    if (rc != CS_OK) {
        if (rc < 0)
            fprintf(stderr, "crmsync-admin: %s\n", errstr);
        cs_conf_destroy(conf);
        return rc < 0 ? 2 : 0;
    }
    cs_run_install_signals();
    if (pos >= argc) {
        fprintf(stderr, "%s", usage);
        rc = 2;
    } else if (!strcmp(argv[pos], "topics")) {
        rc = admin_topics(conf, argc - pos - 1, argv + pos + 1);
    } else {
        fprintf(stderr, "crmsync-admin: unknown command '%s' (see --help)\n", argv[pos]);
        rc = 2;
    }
    cs_conf_destroy(conf);
    return rc;
}
