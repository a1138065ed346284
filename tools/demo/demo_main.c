/* crmsync-demo: drives a running pipeline (started by tools/demo.sh) with a sample workload,
 * shows it live, waits until it is quiet, checks the outcome and prints the summary with the
 * last line
 *   DEMO events=N crm_writes=N marketing_writes=N api_calls=N errors=N p99_ms=N
 * Exit status: 0 synced and every check passed, 1 not (or not quiet in time), 2 usage,
 * 130 interrupted (SIGINT / SIGTERM). */
#include "demo.h"

#include "cs_conf.h"
#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char usage[] =
    "crmsync-demo [options] [run | users-map]\n\n"
    "run (default): the workload generator and live view of `make demo` (tools/demo.sh starts\n"
    "the broker, crmsync-sandbox, the producers and the sync-consumer replicas, then this).\n"
    "Creates prospects through the v5 API, CRM leads and contacts and edits as sales people,\n"
    "activity webhooks, an assignment change and a CSV import (crmsync-import); shows events\n"
    "in per topic, deduplicated, queue depth, batches, API calls and latency every second;\n"
    "waits until the pipeline is quiet, then prints a summary ending with the line\n"
    "  DEMO events=N crm_writes=N marketing_writes=N api_calls=N errors=N p99_ms=N\n"
    "(writes and API calls are the pipeline's: the workload's own prospect creates and token\n"
    "calls are not counted). Exit status 0 when it synced and every check passed.\n"
    "users-map: prints the users.map (marketing id:CRM user id) of the sandbox's users.";

static const cs_opt_t demo_opts[] = {
    {"demo.sandbox_url", CS_OPT_STRING, "", 0, 0, 0,
     "base URL of crmsync-sandbox (the URL on its first stdout line)"},
    {"demo.client_id", CS_OPT_STRING, "crmsync-sandbox-client", 0, 0, 0,
     "OAuth client id of the sandbox (for the workload's v5 calls)"},
    {"demo.client_secret", CS_OPT_STRING, "sandbox-secret", 0, 0, CS_OPT_SENSITIVE,
     "OAuth client secret of the sandbox"},
    {"demo.username", CS_OPT_STRING, "sam@acme.example", 0, 0, 0,
     "the marketer the workload's v5 calls act as (password grant; not the integration user "
     "crmsync writes as, whose changes the consumer takes for echoes)"},
    {"demo.password", CS_OPT_STRING, "sandbox-password", 0, 0, CS_OPT_SENSITIVE,
     "that marketer's sandbox password"},
    {"demo.consumers", CS_OPT_STRING, "", 0, 0, 0,
     "comma list of the sync-consumer replicas' base URLs (http://127.0.0.1:port)"},
    {"demo.prospect_producer", CS_OPT_STRING, "", 0, 0, 0,
     "base URL of crmsync-prospect-producer's /metrics server"},
    {"demo.crm_producer", CS_OPT_STRING, "", 0, 0, 0,
     "base URL of crmsync-crm-producer's /metrics server"},
    {"demo.ingest_url", CS_OPT_STRING, "", 0, 0, 0,
     "base URL of crmsync-activity-producer (POST /v1/activities, /metrics)"},
    {"demo.ingest_token", CS_OPT_STRING, "", 0, 0, CS_OPT_SENSITIVE,
     "bearer token of the activity ingest (its ingest.token)"},
    {"demo.prospects", CS_OPT_INT, "0", 0, 1000000, 0,
     "prospects to create (0 = 3000, or 300 with demo.short)"},
    {"demo.short", CS_OPT_BOOL, "false", 0, 0, 0,
     "a short run: fewer prospects, faster pacing, shorter waits"},
    {"demo.timeout_s", CS_OPT_INT, "0", 0, 3600, 0,
     "longest wait for the pipeline to go quiet after the workload (0 = 180, or 60 with "
     "demo.short)"},
    {"demo.quiet_ms", CS_OPT_INT, "3000", 500, 600000, 0,
     "quiet means: everything produced was consumed, queues empty and no write for this long"},
    {"demo.seed", CS_OPT_INT, "1", 0, INT_MAX, 0, "seed of the workload's names and choices"},
    {"demo.run_dir", CS_OPT_STRING, ".", 0, 0, 0,
     "directory for the import CSV and crmsync-import's log"},
    {"demo.result_file", CS_OPT_STRING, "", 0, 0, 0,
     "also write the DEMO line to this file (empty = no)"},
    {"demo.view", CS_OPT_STRING, "auto", 0, 0, 0,
     "live view: auto (redrawn on a terminal, a line per second otherwise), lines or off"},
    CS_OPT_END,
};

/* Splits a comma list of URLs (trailing slashes dropped). */
static int split_urls(const char *list, char **out, int max)
{
    int n = 0;
    const char *s = list;
    while (s && *s && n < max) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        while (len && (s[0] == ' ')) {
            s++;
            len--;
        }
        while (len && (s[len - 1] == ' ' || s[len - 1] == '/'))
            len--;
        if (len && (out[n] = strndup(s, len)))
            n++;
        s = e ? e + 1 : NULL;
    }
    return n;
}

/* ---------------------------------------------------------------- waiting for quiet */

/* Everything the producers published has been read, nothing waits in a queue, and each
 * polling producer has polled twice since the workload ended (so it has seen every change). */
static int drained(const demo_t *d, const demo_sample_t *s, double polls_p, double polls_c)
{
    if (!s->at_ms || s->replicas_up < d->nconsumers || !s->sandbox_up)
        return 0;
    if (s->consumed[DEMO_IN_PROSPECT] < s->produced_prospect + (double)d->import_rows ||
        s->consumed[DEMO_IN_ACTIVITY] < s->produced_activity ||
        s->consumed[DEMO_IN_CRM] < s->produced_crm || s->queue > 0)
        return 0;
    if (*d->prospect_producer && s->polls_prospect < polls_p + 2)
        return 0;
    if (*d->crm_producer && s->polls_crm < polls_c + 2)
        return 0;
    return 1;
}

/* Returns 1 when quiet, 0 on timeout or interruption; *quiet_at_ms: when it was. */
static int wait_quiet(demo_t *d, int64_t *quiet_at_ms)
{
    demo_sample_t s;
    int64_t deadline = cs_now_ms() + d->timeout_ms, since = 0, seen = 0;
    long long writes = -1;
    double events = -1, polls_p, polls_c;

    demo_last(d, &s);
    polls_p = s.polls_prospect;
    polls_c = s.polls_crm;
    while (!cs_run_stopping() && cs_now_ms() < deadline) {
        demo_last(d, &s);
        if (s.at_ms != seen) {
            long long w = s.crm_created + s.crm_updated + s.mkt_created + s.mkt_updated;
            double e = s.consumed[0] + s.consumed[1] + s.consumed[2];
            seen = s.at_ms;
            if (!drained(d, &s, polls_p, polls_c) || w != writes || e != events)
                since = s.at_ms;
            writes = w;
            events = e;
            if (since && s.at_ms - since >= d->quiet_ms) {
                *quiet_at_ms = since;
                return 1;
            }
        }
        cs_run_sleep_ms(100);
    }
    *quiet_at_ms = cs_now_ms();
    return 0;
}

/* Waits (bounded) until every replica owns partitions: the group has settled, so the first
 * events are not timed waiting for the group to form. Returns 1 when it has. */
static int wait_replicas(demo_t *d, cs_http_t *h, int64_t timeout_ms)
{
    int64_t deadline = cs_now_ms() + timeout_ms;
    while (!cs_run_stopping() && cs_now_ms() < deadline) {
        int owning = 0;
        for (int i = 0; i < d->nconsumers; i++) {
            json_t *st = NULL;
            if (demo_get_json(h, d->consumers[i], "/status", &st) == CS_OK &&
                json_array_size(json_object_get(st, "partitions")) > 0)
                owning++;
            json_decref(st);
        }
        if (owning == d->nconsumers)
            return 1;
        cs_run_sleep_ms(200);
    }
    return 0;
}

/* ---------------------------------------------------------------- checks */

typedef struct check_s {
    int ok;
    char text[512];
} check_t;

static int crm_has_email(json_t *snap, const char *type, const char *email)
{
    json_t *r;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(snap, "crm"), type), i, r)
    {
        const char *e = json_string_value(json_object_get(r, "Email"));
        if (e && !strcasecmp(e, email) && !json_is_true(json_object_get(r, "IsDeleted")))
            return 1;
    }
    return 0;
}

static json_t *prospect_by_email(json_t *snap, const char *email)
{
    json_t *r;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(snap, "marketing"), "prospects"), i, r)
    {
        const char *e = json_string_value(json_object_get(r, "email"));
        if (e && !strcasecmp(e, email) && !json_is_true(json_object_get(r, "isDeleted")))
            return r;
    }
    return NULL;
}

static int run_checks(demo_t *d, cs_http_t *h, const demo_totals_t *t, check_t *c, int max)
{
    json_t *snap = NULL;
    int n = 0;

    c[n].ok = t->crm_writes > 0;
    snprintf(c[n++].text, sizeof(c[0].text), "the pipeline wrote to the CRM (%lld writes)",
             t->crm_writes);
    if (demo_get_json(h, d->sandbox_url, "/sandbox/snapshot", &snap) != CS_OK) {
        c[n].ok = 0;
        snprintf(c[n++].text, sizeof(c[0].text), "the sandbox snapshot could not be read");
        return n;
    }
    if (d->dns_email[0] && n < max) {
        c[n].ok = !crm_has_email(snap, "Lead", d->dns_email) &&
                  !crm_has_email(snap, "Contact", d->dns_email);
        snprintf(c[n++].text, sizeof(c[0].text), "the do-not-sync prospect %s has no CRM record",
                 d->dns_email);
    }
    if (d->reassigned_email[0] && n < max) {
        c[n].ok = crm_has_email(snap, "Lead", d->reassigned_email);
        snprintf(c[n++].text, sizeof(c[0].text), "the prospect assigned late (%s) got its lead",
                 d->reassigned_email);
    }
    if (d->edited_email[0] && n < max) {
        json_t *p = prospect_by_email(snap, d->edited_email);
        const char *title = json_string_value(json_object_get(p, "jobTitle"));
        c[n].ok = title && !strcmp(title, d->edited_title);
        snprintf(c[n++].text, sizeof(c[0].text),
                 "a sales person's CRM edit reached the marketing system (%s: \"%s\", now \"%s\")",
                 d->edited_email, d->edited_title, title ? title : "(none)");
    }
    json_decref(snap);
    return n;
}

/* ---------------------------------------------------------------- summary */

static void row(const char *what, long long v, const char *detail)
{
    printf("  %-26s %10lld   %s\n", what, v, detail);
}

static void summary(demo_t *d, const demo_sample_t *s, const demo_totals_t *t, int quiet,
                    double quiet_s, const check_t *c, int nc, const char *workload_err)
{
    char buf[256];
    const char *rule = "  -------------------------------------------------------------------"
                       "---------";
    printf("\n  crmsync demo: summary (%d prospects, %d sync-consumer replicas, %s after %.1f s)"
           "\n%s\n",
           d->nprospects, d->nconsumers,
           quiet                                                  ? "quiet"
           : workload_err && !strcmp(workload_err, "interrupted") ? "interrupted"
           : workload_err                                         ? "stopped"
                                                                  : "NOT quiet, timed out",
           quiet_s, rule);
    row("workload", atomic_load(&d->progress.prospects),
        "prospects created through the v5 API (1 do-not-sync)");
    row("", atomic_load(&d->progress.activities),
        "activity webhooks: forms, page views, email opens");
    row("", atomic_load(&d->progress.crm_records),
        "CRM leads and contacts entered by sales people");
    row("", atomic_load(&d->progress.crm_edits), "CRM edits by sales people");
    row("", atomic_load(&d->progress.assignments), "assignment changes by a marketer");
    row("", atomic_load(&d->progress.import_rows), "CSV rows imported (crmsync-import)");
    printf("%s\n", rule);
    snprintf(buf, sizeof(buf), "prospect %.0f, activity %.0f, crm %.0f", s->consumed[0],
             s->consumed[1], s->consumed[2]);
    row("events in", t->events, buf);
    row("deduplicated", (long long)s->dedup, "events that changed nothing");
    snprintf(buf, sizeof(buf), "created %lld, updated %lld", s->crm_created, s->crm_updated);
    row("CRM writes", t->crm_writes, buf);
    snprintf(buf, sizeof(buf), "created %lld, updated %lld (the workload's creates excluded)",
             s->mkt_created - s->wl_mkt_created, s->mkt_updated);
    row("marketing writes", t->mkt_writes, buf);
    snprintf(buf, sizeof(buf), "crm %lld, marketing %lld (producers' polls included)",
             s->crm_calls - atomic_load(&d->progress.token_fetches),
             s->mkt_calls - s->wl_mkt_calls);
    row("API calls", t->api_calls, buf);
    snprintf(buf, sizeof(buf), "crm %.0f, marketing %.0f", s->batches_crm, s->batches_mkt);
    row("batches pushed", (long long)(s->batches_crm + s->batches_mkt), buf);
    snprintf(buf, sizeof(buf), "per record %.0f, poison %.0f", s->record_errors, s->poison);
    row("errors", t->errors, buf);
    snprintf(buf, sizeof(buf), "p50 %lld ms; source change to CRM acknowledgement, n=%.0f",
             t->p50_ms, s->lat_count);
    row("p99 latency (ms)", t->p99_ms, buf);
    row("queue depth", (long long)s->queue, "prospects still waiting to be pushed");
    printf("%s\n", rule);
    if (workload_err)
        printf("  FAIL  the demo stopped early: %s\n", workload_err);
    for (int i = 0; i < nc; i++)
        printf("  %-4s  %s\n", c[i].ok ? "ok" : "FAIL", c[i].text);
    printf("%s\n", rule);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    char errstr[512], workload_err[512] = "";
    int pos = argc, rc, quiet = 0, nc = 0, ok, interrupted;
    demo_t d;
    demo_sample_t s;
    demo_totals_t t;
    check_t checks[8];
    int64_t quiet_at = 0;
    cs_http_t *h = NULL;
    cs_http_opts_t o;
    const char *cmd, *view;
    char line[256];

    memset(&d, 0, sizeof(d));
    d.import_status = -1;
    pthread_mutex_init(&d.mu, NULL);
    if (!(d.conf = cs_conf_new("crmsync-demo", usage, demo_opts))) {
        fprintf(stderr, "crmsync-demo: out of memory\n");
        return 1;
    }
    cs_conf_set(d.conf, "log.level", "warn", errstr, sizeof(errstr));
    rc = cs_conf_from_args(d.conf, argc, argv, &pos, errstr, sizeof(errstr));
    if (rc != CS_OK) {
        if (rc < 0)
            fprintf(stderr, "crmsync-demo: %s\n", errstr);
        cs_conf_destroy(d.conf);
        return rc < 0 ? 2 : 0;
    }
    if (cs_log_setup(cs_conf_str(d.conf, "log.level"), cs_conf_str(d.conf, "log.format"))) {
        fprintf(stderr, "crmsync-demo: bad log.level or log.format\n");
        cs_conf_destroy(d.conf);
        return 2;
    }
    cmd = pos < argc ? argv[pos] : "run";
    d.sandbox_url = cs_conf_str(d.conf, "demo.sandbox_url");
    if (!d.sandbox_url || !*d.sandbox_url) {
        fprintf(stderr, "crmsync-demo: demo.sandbox_url is required\n");
        cs_conf_destroy(d.conf);
        return 2;
    }
    if (!strcmp(cmd, "users-map")) {
        rc = demo_users_map(d.sandbox_url, errstr, sizeof(errstr));
        if (rc)
            fprintf(stderr, "crmsync-demo: %s\n", errstr);
        cs_conf_destroy(d.conf);
        return rc ? 1 : 0;
    }
    if (strcmp(cmd, "run") || pos + 1 < argc) {
        fprintf(stderr, "crmsync-demo: unknown command \"%s\" (run or users-map)\n", cmd);
        cs_conf_destroy(d.conf);
        return 2;
    }

    d.ingest_url = cs_conf_str(d.conf, "demo.ingest_url");
    d.ingest_token = cs_conf_str(d.conf, "demo.ingest_token");
    d.prospect_producer = cs_conf_str(d.conf, "demo.prospect_producer");
    d.crm_producer = cs_conf_str(d.conf, "demo.crm_producer");
    d.run_dir = cs_conf_str(d.conf, "demo.run_dir");
    d.short_run = cs_conf_bool(d.conf, "demo.short");
    d.nprospects = (int)cs_conf_int(d.conf, "demo.prospects");
    if (d.nprospects == 0)
        d.nprospects = d.short_run ? 300 : 3000;
    d.timeout_ms = cs_conf_int(d.conf, "demo.timeout_s") * 1000;
    if (d.timeout_ms == 0)
        d.timeout_ms = d.short_run ? 60000 : 180000;
    d.quiet_ms = cs_conf_int(d.conf, "demo.quiet_ms");
    d.seed = (unsigned)cs_conf_int(d.conf, "demo.seed");
    d.nconsumers = split_urls(cs_conf_str(d.conf, "demo.consumers"), d.consumers, DEMO_MAX_URLS);
    view = cs_conf_str(d.conf, "demo.view");
    if (!*d.ingest_url || !*d.ingest_token || d.nconsumers == 0) {
        fprintf(stderr, "crmsync-demo: demo.ingest_url, demo.ingest_token and demo.consumers "
                        "are required\n");
        rc = 2;
        goto out;
    }
    if (!strcmp(view, "off"))
        d.view_off = 1;
    else if (!strcmp(view, "auto"))
        d.tty = isatty(STDOUT_FILENO);
    else if (strcmp(view, "lines")) {
        fprintf(stderr, "crmsync-demo: demo.view must be auto, lines or off\n");
        rc = 2;
        goto out;
    }

    cs_run_install_signals();
    memset(&o, 0, sizeof(o));
    o.timeout_ms = 30000;
    o.name = "demo";
    if (!(h = cs_http_new(&o, errstr, sizeof(errstr)))) {
        fprintf(stderr, "crmsync-demo: %s\n", errstr);
        rc = 1;
        goto out;
    }
    d.start_ms = cs_now_ms();
    if (demo_view_start(&d)) {
        fprintf(stderr, "crmsync-demo: cannot start the view thread\n");
        rc = 1;
        goto out;
    }
    if (!wait_replicas(&d, h, 30000) && !cs_run_stopping())
        CS_WARN("demo", "the sync-consumer replicas did not all get partitions in 30 s");
    if (demo_workload_run(&d, errstr, sizeof(errstr)) != CS_OK)
        snprintf(workload_err, sizeof(workload_err), "%s", errstr);
    atomic_store(&d.progress.phase, DEMO_PH_QUIET);
    if (!workload_err[0])
        quiet = wait_quiet(&d, &quiet_at);
    else
        quiet_at = cs_now_ms();
    atomic_store(&d.progress.phase, DEMO_PH_DONE);
    demo_view_stop(&d);

    /* the final numbers: one more sample of everything */
    /* the final numbers: one more sample of everything; when interrupted (Ctrl-C reaches
     * the whole pipeline too), the last one taken while it ran */
    interrupted = cs_run_stopping();
    if (interrupted) {
        demo_last(&d, &s);
        snprintf(workload_err, sizeof(workload_err), "interrupted");
    } else {
        demo_sample(&d, h, &s);
    }
    demo_totals(&s, atomic_load(&d.progress.token_fetches), &t);
    if (!interrupted)
        nc = run_checks(&d, h, &t, checks, (int)(sizeof(checks) / sizeof(*checks)));
    summary(&d, &s, &t, quiet, (double)(quiet_at - d.start_ms) / 1000.0, checks, nc,
            workload_err[0] ? workload_err : NULL);
    ok = quiet && !workload_err[0];
    for (int i = 0; i < nc; i++)
        ok = ok && checks[i].ok;
    snprintf(line, sizeof(line),
             "DEMO events=%lld crm_writes=%lld marketing_writes=%lld api_calls=%lld errors=%lld "
             "p99_ms=%lld",
             t.events, t.crm_writes, t.mkt_writes, t.api_calls, t.errors, t.p99_ms);
    printf("%s\n", line);
    fflush(stdout);
    {
        const char *rf = cs_conf_str(d.conf, "demo.result_file");
        FILE *f;
        if (rf && *rf && (f = fopen(rf, "w"))) {
            fprintf(f, "%s\n", line);
            if (d.edited_email[0]) /* a prospect worth looking at (tools/demo.sh --keep) */
                fprintf(f, "key=%s\n", d.edited_email);
            fclose(f);
        }
    }
    rc = interrupted ? 130 : ok ? 0 : 1;
out:
    demo_view_stop(&d);
    cs_http_destroy(h);
    for (int i = 0; i < d.nconsumers; i++)
        free(d.consumers[i]);
    cs_conf_destroy(d.conf);
    pthread_mutex_destroy(&d.mu);
    return rc;
}
