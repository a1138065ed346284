/* crmsync-sandbox: one process that plays the CRM (Salesforce REST subset) and the marketing
 * system (Account Engagement API v5 subset) in memory, for tests, benchmarks and the demo.
 * See docs/SANDBOX.md. */
#include "sb.h"

#include "cs_conf.h"
#include "cs_err.h"
#include "cs_httpd.h"
#include "cs_log.h"
#include "cs_metrics.h"
#include "cs_run.h"

#include <stdio.h>
#include <string.h>

#define LOG_COMP "sandbox"

/* Knob names (crm.*, marketing.*, auth.token_ttl_s, seed) are also the names accepted by
 * POST /sandbox/knobs; sb_knobs.c reads them by these names. */
static const cs_opt_t opts[] = {
    {"port", CS_OPT_INT, "0", 0, 65535, 0, "API port (0 = pick a free port)"},
    {"bind", CS_OPT_STRING, "127.0.0.1", 0, 0, 0, "address to listen on"},
    {"public_url", CS_OPT_STRING, NULL, 0, 0, 0,
     "base URL to advertise (instance_url, nextPageUrl); default http://<bind>:<port>"},
    {"threads", CS_OPT_INT, "8", 1, 256, 0,
     "HTTP worker threads (more than marketing.concurrency_limit to ever see code 66)"},
    {"max_body", CS_OPT_INT, "16777216", 1024, 1073741824, 0, "largest request body in bytes"},
    {"auth.client_id", CS_OPT_STRING, "crmsync-sandbox-client", 0, 0, 0,
     "OAuth consumer key accepted by /services/oauth2/token"},
    {"auth.client_secret", CS_OPT_STRING, "sandbox-secret", 0, 0, CS_OPT_SENSITIVE,
     "OAuth consumer secret (also the key of the token signature)"},
    {"auth.password", CS_OPT_STRING, "sandbox-password", 0, 0, CS_OPT_SENSITIVE,
     "password of every seeded user (username-password grant)"},
    {"auth.security_token", CS_OPT_STRING, "", 0, 0, CS_OPT_SENSITIVE,
     "security token that may be appended to the password"},
    {"auth.token_ttl_s", CS_OPT_INT, "7200", 1, 315360000, 0,
     "access token lifetime in seconds (knob)"},
    {"crm.integration_user", CS_OPT_STRING, "Integration User <integration@crmsync.example>", 0, 0,
     0, "the user behind client-credentials tokens (\"First Last <email>\")"},
    {"crm.users", CS_OPT_STRING,
     "Ada Admin <ada@acme.example>, Sam Sales <sam@acme.example>, Rita Rep <rita@acme.example>", 0,
     0, 0, "other CRM users, comma-separated \"First Last <email>\""},
    {"crm.editor_user", CS_OPT_STRING, "ada@acme.example", 0, 0, 0,
     "the user /sandbox/crm/edit acts as by default"},
    {"crm.latency_ms", CS_OPT_INT, "0", 0, 600000, 0, "added latency per CRM call (knob)"},
    {"crm.error_rate", CS_OPT_STRING, "0", 0, 0, 0, "share of CRM calls answered 503 (knob)"},
    {"crm.burst_limit_errors", CS_OPT_INT, "0", 0, 1000000000, 0,
     "the next N CRM calls get 403 REQUEST_LIMIT_EXCEEDED (knob)"},
    {"crm.daily_limit", CS_OPT_INT, "100000", 0, 1000000000000LL, 0,
     "CRM API calls per day before 403 REQUEST_LIMIT_EXCEEDED (knob)"},
    {"crm.lock_row_rate", CS_OPT_STRING, "0", 0, 0, 0,
     "share of collection records failing UNABLE_TO_LOCK_ROW (knob)"},
    {"crm.clock_skew_ms", CS_OPT_INT, "0", -86400000, 86400000, 0,
     "offset of the CRM clock from the machine's (knob)"},
    {"marketing.business_unit_id", CS_OPT_STRING, "0Uv5g000000SBOXCA4", 0, 0, 0,
     "the only Pardot-Business-Unit-Id accepted"},
    {"marketing.users", CS_OPT_STRING,
     "Sam Sales <sam@acme.example>, Rita Rep <rita@acme.example>, Mo Marketer <mo@acme.example>", 0,
     0, 0, "marketing users (assignedToId); mapped to CRM users by e-mail"},
    {"marketing.utc_offset", CS_OPT_STRING, "-04:00", 0, 0, 0,
     "offset of the timestamps the marketing API answers"},
    {"marketing.allow_duplicate_emails", CS_OPT_BOOL, "false", 0, 0, 0,
     "AMPSEA: allow several prospects with one e-mail"},
    {"marketing.strict_readonly", CS_OPT_BOOL, "false", 0, 0, 0,
     "reject writes to connector-owned prospect fields (salesforceId, ...) like the real API"},
    {"marketing.latency_ms", CS_OPT_INT, "0", 0, 600000, 0,
     "added latency per marketing call (knob)"},
    {"marketing.error_rate", CS_OPT_STRING, "0", 0, 0, 0,
     "share of marketing calls answered 503 (knob)"},
    {"marketing.burst_limit_errors", CS_OPT_INT, "0", 0, 1000000000, 0,
     "the next N marketing calls get code 66 (knob)"},
    {"marketing.daily_limit", CS_OPT_INT, "100000", 0, 1000000000000LL, 0,
     "marketing API calls per day before code 122 (knob)"},
    {"marketing.concurrency_limit", CS_OPT_INT, "5", 1, 1000000, 0,
     "concurrent marketing calls before code 66 (knob)"},
    {"marketing.clock_skew_ms", CS_OPT_INT, "0", -86400000, 86400000, 0,
     "offset of the marketing clock from the machine's (knob)"},
    {"seed", CS_OPT_INT, "1", 0, 0, 0, "seed of every random choice (knob)"},
    {"seed.file", CS_OPT_STRING, NULL, 0, 0, 0,
     "JSON file with initial {\"leads\", \"contacts\", \"prospects\"} (re-applied on reset)"},
    CS_OPT_END,
};

int main(int argc, char **argv)
{
    char err[512];
    int rc = 2;
    cs_conf_t *conf = NULL;
    cs_metrics_t *metrics = NULL;
    sb_t *sb = NULL;
    cs_httpd_t *httpd = NULL, *mhttpd = NULL;

    cs_run_install_signals();
    conf = cs_conf_new("crmsync-sandbox",
                       "crmsync-sandbox [--port N] [--config FILE] [options]\n"
                       "Plays the CRM (Salesforce REST) and the marketing system (Account "
                       "Engagement v5) in memory.",
                       opts);
    if (!conf) {
        fprintf(stderr, "crmsync-sandbox: out of memory\n");
        return 2;
    }
    int r = cs_conf_from_args(conf, argc, argv, NULL, err, sizeof(err));
    if (r == 1) {
        rc = 0;
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "crmsync-sandbox: %s\n", err);
        goto out;
    }
    if (cs_log_setup(cs_conf_str(conf, "log.level"), cs_conf_str(conf, "log.format")) != CS_OK) {
        fprintf(stderr, "crmsync-sandbox: bad log.level or log.format\n");
        goto out;
    }

    metrics = cs_metrics_new();
    sb = metrics ? sb_new(conf, metrics, err, sizeof(err)) : NULL;
    if (!sb) {
        CS_ERROR(LOG_COMP, "%s", metrics ? err : "out of memory");
        goto out;
    }
    cs_httpd_opts_t ho = {0};
    ho.bind = cs_conf_str(conf, "bind");
    ho.port = (int)cs_conf_int(conf, "port");
    /* bodies a bit above max_body still reach the handler, which answers in the API's shape */
    ho.max_body = (size_t)cs_conf_int(conf, "max_body") * 2;
    ho.threads = (unsigned)cs_conf_int(conf, "threads");
    ho.handler = sb_handle;
    ho.opaque = sb;
    ho.metrics = metrics;
    httpd = cs_httpd_new(&ho, err, sizeof(err));
    if (!httpd) {
        CS_ERROR(LOG_COMP, "%s", err);
        goto out;
    }
    char url[160];
    const char *pub = cs_conf_str(conf, "public_url");
    const char *bind = ho.bind;
    if (!strcmp(bind, "0.0.0.0") || !strcmp(bind, "::") || !*bind)
        bind = "127.0.0.1";
    snprintf(url, sizeof(url), "http://%s%s%s:%d", strchr(bind, ':') ? "[" : "", bind,
             strchr(bind, ':') ? "]" : "", cs_httpd_port(httpd));
    sb_set_base_url(sb, pub && *pub ? pub : url);

    /* the common /metrics server, when asked for on its own port */
    if (cs_conf_int(conf, "http.port") >= 0) {
        cs_httpd_opts_t mo = {0};
        mo.bind = cs_conf_str(conf, "http.bind");
        mo.port = (int)cs_conf_int(conf, "http.port");
        mo.metrics = metrics;
        mhttpd = cs_httpd_new(&mo, err, sizeof(err));
        if (!mhttpd) {
            CS_ERROR(LOG_COMP, "%s", err);
            goto out;
        }
    }

    printf("listening on %s\n", url);
    fflush(stdout);
    CS_INFO(LOG_COMP, "ready on %s (advertised as %s)", url, sb->base_url);
    while (!cs_run_stopping())
        cs_run_sleep_ms(200);
    CS_INFO(LOG_COMP, "stopping");
    rc = 0;
out:
    cs_httpd_destroy(mhttpd);
    cs_httpd_destroy(httpd); /* waits for requests in flight */
    sb_destroy(sb);
    cs_metrics_destroy(metrics);
    cs_conf_destroy(conf);
    return rc;
}
