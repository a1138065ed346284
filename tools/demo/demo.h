/* crmsync-demo: the workload generator and live view of `make demo` (tools/demo.sh starts
 * the broker, the sandbox, the producers and the sync-consumer replicas; this program drives
 * them and shows what happens).
 *
 *   demo_main.c      options, the users-map helper, the run: workload, wait for quiet, summary
 *   demo_workload.c  people and systems at work: prospects created through the v5 API, CRM
 *                    records and edits through /sandbox/crm/edit, activity webhooks, an
 *                    assignment change, a CSV import (crmsync-import, forked)
 *   demo_view.c      sampling (the replicas' and producers' /metrics, /sandbox/stats),
 *                    Prometheus text and histogram quantiles, the live view, the summary
 *
 * Threads: the main thread runs the workload and then waits for the pipeline to go quiet;
 * the view thread samples every second, keeps the latest sample under a mutex and draws it.
 * Each thread has its own cs_http clients. */
#ifndef DEMO_H
#define DEMO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_conf.h"
#include "cs_http.h"

#define DEMO_MAX_URLS 8
#define DEMO_LAT_MAX 32 /* histogram buckets kept (the consumer has 15) */

enum { DEMO_IN_PROSPECT = 0, DEMO_IN_ACTIVITY, DEMO_IN_CRM, DEMO_IN_COUNT_ };

/* One look at the whole pipeline. Counters are sums over the replicas (or producers) that
 * answered; *_up say how many did. */
typedef struct demo_sample_s {
    int64_t at_ms; /* cs_now_ms() of the sample; 0 = none yet */
    int replicas_up, producers_up, sandbox_up;
    /* sync-consumer replicas */
    double consumed[DEMO_IN_COUNT_]; /* crmsync_events_consumed_total{input=...} */
    double dedup;                    /* crmsync_events_total{outcome="deduplicated"} */
    double queue;                    /* crmsync_queue_depth */
    double batches_crm, batches_mkt; /* crmsync_batches_total{direction=...} */
    double record_errors, poison;
    int nlat; /* merged crmsync_sync_latency_ms buckets: upper bounds, cumulative counts */
    double lat_le[DEMO_LAT_MAX], lat_cum[DEMO_LAT_MAX];
    double lat_count;
    /* producers (crmsync_producer_* of the polling ones, the activity producer's counters) */
    double produced_prospect, produced_crm, produced_activity;
    double polls_prospect, polls_crm; /* successful polls */
    /* sandbox: every API call and record write, and the workload's own part of them */
    long long crm_calls, mkt_calls;
    long long crm_created, crm_updated, mkt_created, mkt_updated;
    long long wl_mkt_calls, wl_mkt_created; /* POST /prospects: only the workload creates */
} demo_sample_t;

/* What the workload has done so far (written by the main thread, read by the view). */
typedef struct demo_progress_s {
    atomic_int phase; /* index into demo_phase_names */
    atomic_long crm_records, prospects, activities, crm_edits, assignments, import_rows;
    atomic_long token_fetches; /* the workload's own CRM calls (OAuth token) */
    atomic_long activities_planned;
} demo_progress_t;

extern const char *const demo_phase_names[];
enum {
    DEMO_PH_SETUP = 0,
    DEMO_PH_CRM,
    DEMO_PH_PROSPECTS,
    DEMO_PH_ACTIVITIES,
    DEMO_PH_SETTLE,
    DEMO_PH_IMPORT,
    DEMO_PH_ASSIGN,
    DEMO_PH_EDITS,
    DEMO_PH_QUIET,
    DEMO_PH_DONE
};

typedef struct demo_s {
    cs_conf_t *conf;
    const char *sandbox_url; /* no trailing slash */
    const char *ingest_url;
    const char *ingest_token;
    const char *run_dir;
    char *consumers[DEMO_MAX_URLS]; /* the replicas' base URLs (http://127.0.0.1:port) */
    int nconsumers;
    const char *prospect_producer, *crm_producer; /* base URLs of their /metrics; "" = none */
    int nprospects;
    int short_run;
    int64_t timeout_ms, quiet_ms;
    unsigned seed;
    int tty; /* the view redraws in place */
    int view_off;

    demo_progress_t progress;

    /* the view thread */
    pthread_t view_thread;
    int view_started;
    atomic_int view_stop;
    pthread_mutex_t mu;
    demo_sample_t last; /* the latest sample, under mu */
    int64_t start_ms;
    int drawn_lines; /* lines of the last drawn block (TTY redraw) */

    /* what the workload remembers for the final checks */
    char dns_email[256];        /* the do-not-sync prospect */
    char reassigned_email[256]; /* an unassigned prospect given an assignee */
    char edited_email[256];     /* a CRM record edited by a person */
    char edited_title[64];      /* ... and the title it was given */
    int64_t edited_prospect_id; /* the prospect with that email */
    long import_rows;           /* rows published by crmsync-import */
    int import_status;          /* its exit status (-1 not run) */
} demo_t;

/* ---- demo_workload.c ---- */

/* Runs every phase of the workload against d->sandbox_url and d->ingest_url, updating
 * d->progress. Returns CS_OK, or an error with errstr (the sandbox or the ingest refused,
 * the import failed to start). Main thread. */
int demo_workload_run(demo_t *d, char *errstr, size_t errstr_size);

/* Prints the users.map the consumers need ("101:005...,102:005...": every marketing user
 * with a CRM user of the same e-mail) for the sandbox at url. Returns CS_OK or an error. */
int demo_users_map(const char *url, char *errstr, size_t errstr_size);

/* GET url + path as JSON (no auth: /sandbox/... helpers). *out: new reference. */
int demo_get_json(cs_http_t *h, const char *url, const char *path, json_t **out);

/* ---- demo_view.c ---- */

/* Takes one sample of everything (h: the calling thread's client). */
void demo_sample(demo_t *d, cs_http_t *h, demo_sample_t *s);

/* The latest sample (copy). */
void demo_last(demo_t *d, demo_sample_t *s);

/* Starts / stops the thread that samples every second and draws the view. */
int demo_view_start(demo_t *d);
void demo_view_stop(demo_t *d);

/* The q-quantile (0..1) of the merged latency histogram, interpolated inside the bucket
 * (as Prometheus' histogram_quantile does); 0 when empty. */
double demo_quantile(const demo_sample_t *s, double q);

/* Sum of the values of every series of metric `name` whose label set contains `label`
 * (NULL = any) in a Prometheus text exposition. Pure. */
double demo_prom_sum(const char *text, const char *name, const char *label);

/* Adds the `name`_bucket series of text into s's merged histogram (bounds matched by
 * value). Pure. */
void demo_prom_hist(const char *text, const char *name, demo_sample_t *s);

/* The numbers of the DEMO line, from a sample. */
typedef struct demo_totals_s {
    long long events, crm_writes, mkt_writes, api_calls, errors, p50_ms, p99_ms;
} demo_totals_t;
void demo_totals(const demo_sample_t *s, long wl_calls, demo_totals_t *t);

#endif
