/* crmsync-prospect-producer: marketing-side prospect changes -> topic.prospect.
 * See docs/PRODUCERS.md. */
#include "prospect.h"

#include "cs_log.h"

#include <stdio.h>

static const char usage[] =
    "crmsync-prospect-producer [options]\n\n"
    "Polls the marketing API (Account Engagement v5) for prospects changed since its durable\n"
    "cursor and publishes one ProspectChange per change to topic.prospect, keyed by the\n"
    "prospect key. The cursor lives in the compacted topic.cursors and moves only behind\n"
    "delivered events.";

int main(int argc, char **argv)
{
    static pp_t pp;
    char errstr[512];
    int rc;

    if (pr_init(&pp.pr, "prospect", "crmsync-prospect-producer", usage, pp_opts, argc, argv, &rc) !=
        0)
        goto out;
    if (pp_setup(&pp, errstr, sizeof(errstr))) {
        CS_ERROR("prospect", "%s", errstr);
        rc = 2;
        goto out;
    }
    CS_INFO("prospect", "started: fields %s, every %lld ms, overlap %lld ms, key %s", pp.fields,
            (long long)pp.pr.interval_ms, (long long)pp.pr.overlap_ms,
            pp.pr.key_mode == PR_KEY_EMAIL ? "email" : "id");
    rc = pr_run(&pp.pr, pp_poll, &pp);
out:
    pp_free(&pp);
    pr_destroy(&pp.pr);
    return rc;
}
