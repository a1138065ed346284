/* crmsync-crm-producer: CRM lead/contact changes and deletions -> topic.crm.
 * See docs/PRODUCERS.md. */
#include "crm.h"

#include "cs_log.h"

#include <stdio.h>

static const char usage[] =
    "crmsync-crm-producer [options]\n\n"
    "Polls the CRM (Salesforce REST) for leads and contacts changed since its durable cursors\n"
    "(SOQL on SystemModstamp) and for deleted ones (Get Deleted), and publishes CrmChange\n"
    "records to topic.crm keyed by the prospect key (none for records without an email).\n"
    "The cursors live in the compacted topic.cursors and move only behind delivered events.";

int main(int argc, char **argv)
{
    static cp_t cp;
    char errstr[512];
    int rc;

    if (pr_init(&cp.pr, "crm", "crmsync-crm-producer", usage, cp_opts, argc, argv, &rc) != 0)
        goto out;
    if (cp_setup(&cp, errstr, sizeof(errstr))) {
        CS_ERROR("crm", "%s", errstr);
        rc = 2;
        goto out;
    }
    CS_INFO("crm", "started: %d object(s)%s, every %lld ms, overlap %lld ms, key %s", cp.nobjs,
            cp.deletions ? " with deletions" : "", (long long)cp.pr.interval_ms,
            (long long)cp.pr.overlap_ms, cp.pr.key_mode == PR_KEY_EMAIL ? "email" : "id");
    rc = pr_run(&cp.pr, cp_poll, &cp);
out:
    cp_free(&cp);
    pr_destroy(&cp.pr);
    return rc;
}
