/* crmsync-bench: the end-to-end benchmark (`make bench`), shared by its source files.
 *
 *   bench_main.c    options, the phases in order, the child processes, clean-up
 *   bench_load.c    the workload model and generator: ProspectChange / Activity / CrmChange
 *                   events over a population of prospects, written to the input topics in
 *                   bulk, at a fixed rate, or as 100-event bursts
 *   bench_raw.c     the ceiling: a plain librdkafka consumer counting the same topics
 *   bench_probe.c   what the benchmark observes: /metrics of a consumer, /sandbox/stats,
 *                   /proc (CPU, RSS), the consumer's restore log lines; sandbox set-up
 *   bench_report.c  the side-by-side table and the BENCH line
 *
 * Single-threaded: the benchmark drives everything from main(). See docs/PERFORMANCE.md. */
#ifndef CS_BENCH_H
#define CS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "cs_conf.h"
#include "cs_http.h"
#include "testutil_proc.h"
#include "testutil_sandbox.h"

/* ------------------------------------------------------------------ options */

typedef struct bench_opts_s {
    long events;           /* N: events of the throughput workload */
    long prospects;        /* M: prospects they are spread over */
    double dup;            /* share of events that repeat an earlier event exactly */
    int mix[3];            /* weights: ProspectChange, Activity, CrmChange */
    double passive;        /* share of activities that are not sync triggers */
    double session;        /* mean events per prospect session (visit, campaign touch) */
    double leads;          /* share of prospects whose CRM lead exists beforehand */
    double crm_edits;      /* share of CrmChange events that are a person's edit */
    int partitions;        /* of every input topic */
    int rate;              /* latency phase: offered events per second */
    int lat_seconds;       /* latency phase: measured seconds (after 2 s of warm-up) */
    int burst_prospects;   /* burst phase: prospects (a multiple of 3) */
    int burst_events;      /* burst phase: events per prospect */
    int large;             /* --large */
    uint64_t seed;         /* of every random choice */
    const char *bootstrap; /* kafka.bootstrap.servers */
    int keep_topics;       /* do not delete the run's topics at the end */
    const char *kafka[16]; /* --kafka key=value: librdkafka settings of every consumer */
    int nkafka;
    char workdir[256]; /* configs, logs, seed file of this run */
} bench_opts_t;

/* ------------------------------------------------------------------ workload (bench_load.c) */

/* BP_STAMPED: crmsync has written the lead once (it carries the prospect id as external id). */
enum { BP_CREATED = 1, BP_LEAD = 2, BP_EDITABLE = 4, BP_STAMPED = 8 };

/* The benchmark's model of one prospect: enough to write events that a real producer would
 * write for it, and to know what the CRM record holds (for CRM-side echoes). */
typedef struct bench_prospect_s {
    int64_t mkt_id;    /* marketing prospect id */
    int64_t last_time; /* newest marketing source time written (updatedAt) */
    int64_t last_act;  /* newest activity time written */
    int64_t crm_time;  /* LastModifiedDate of the CRM record as the CRM producer sees it */
    uint32_t score;
    uint16_t title, phone;         /* marketing's values (as numbers that name strings) */
    uint16_t crm_title, crm_phone; /* the CRM record's values */
    uint8_t flags;                 /* BP_* */
    uint8_t owner;                 /* which of the two mapped users it is assigned to */
    char lead_id[18];              /* BP_LEAD: the pre-existing lead */
} bench_prospect_t;

typedef struct bench_pop_s {
    char prefix[8]; /* keys are <prefix><index>@bench.example */
    long n;
    int64_t id_base; /* marketing id of prospect i = id_base + i until the sandbox gives one */
    bench_prospect_t *p;
    uint32_t *perm;              /* creation order (a random permutation) */
    long ncreated;               /* perm[0 .. ncreated) have had their CREATED event */
    uint32_t *linked, *editable; /* created prospects with a lead (CRM events), and editable */
    long nlinked, neditable;
} bench_pop_t;

/* Events written, by kind. */
typedef struct bench_mixcount_s {
    long total, dup, created, changed, trigger, passive, crm_echo, crm_edit;
} bench_mixcount_t;

typedef struct bench_load_s bench_load_t;

/* Encoder, idempotent producer (the producers' defaults), random generator and source clock.
 * kconf holds kafka.*. NULL with errstr on failure. */
bench_load_t *bench_load_new(const bench_opts_t *o, const cs_conf_t *kconf, char *errstr, size_t n);
void bench_load_destroy(bench_load_t *ld);

/* The mapped users: marketing ids and their CRM user ids; the connector (integration) user. */
void bench_load_set_users(bench_load_t *ld, const int64_t mkt[2], char crm[2][19],
                          const char *integration);

/* The three input topics the next events go to (borrowed). */
void bench_load_set_topics(bench_load_t *ld, const char *const names[3]);

/* A population of n prospects; share `leads` have a pre-existing lead, and `editable` of those
 * receive salespeople's edits in the CRM. Returns 0/-1. */
int bench_pop_init(bench_load_t *ld, bench_pop_t *pop, const char *prefix, long n, int64_t id_base,
                   double leads, double editable);
void bench_pop_free(bench_pop_t *pop);
/* The key of prospect i into buf (>= 64 bytes); returns its length. */
size_t bench_pop_key(const bench_pop_t *pop, long i, char *buf);

/* Writes `events` events over pop to the current topics as fast as the producer takes them,
 * then flushes. Returns 0, or -1 when delivery failed or a stop was requested. */
int bench_load_bulk(bench_load_t *ld, bench_pop_t *pop, long events, bench_mixcount_t *mc);

/* Offers events over pop at `rate` per second for `seconds`, event_time = wall clock at
 * produce. tick(opaque, elapsed_ms) is called about every 100 ms (may be NULL).
 * Returns 0 or -1. */
int bench_load_paced(bench_load_t *ld, bench_pop_t *pop, int rate, double seconds,
                     void (*tick)(void *opaque, int64_t elapsed_ms), void *opaque,
                     bench_mixcount_t *mc);

/* One burst of `events` consecutive events for prospect i of pop (no CRM edits).
 * Returns 0 or -1. */
int bench_load_burst(bench_load_t *ld, bench_pop_t *pop, long i, int events, bench_mixcount_t *mc);

/* Waits for every delivery report. Returns 0, or -1 when some failed or time ran out. */
int bench_load_flush(bench_load_t *ld);

/* A random number in [0, n). */
long bench_load_rand(bench_load_t *ld, long n);

/* ------------------------------------------------------------------ ceiling (bench_raw.c) */

typedef struct bench_raw_s {
    long messages;
    double seconds;      /* from rd_kafka_new to the last message */
    double steady_s;     /* from the first message to the last */
    double cpu_s;        /* this process's CPU time meanwhile */
    double machine_busy; /* share of the machine's CPU time that was busy, 0..1 */
} bench_raw_t;

/* Reads the three topics from the start in a fresh group until `expect` messages were seen.
 * Returns 0 or -1 (timeout, error). */
int bench_raw_run(const cs_conf_t *kconf, const char *const topics[3], const char *group,
                  long expect, bench_raw_t *out);

/* ------------------------------------------------------------------ probes (bench_probe.c) */

typedef struct bench_consumer_s {
    cs_tproc_t proc;
    int port;
    int64_t t_start_us; /* monotonic, just before the fork */
    cs_http_t *http;
    char *body; /* last /metrics text (owned) */
} bench_consumer_t;

/* Starts crmsync-sync-consumer --config conf, logging to log; waits for its metrics port.
 * Returns 0 or -1 (it is stopped again). */
int bench_consumer_start(bench_consumer_t *c, const char *conf, const char *log);
/* SIGTERM (drain and commit), waits. Returns the exit status. Frees the rest. */
int bench_consumer_stop(bench_consumer_t *c);
/* Fetches /metrics. Returns 0 or -1. */
int bench_consumer_scrape(bench_consumer_t *c);
/* Sum of every series of `name` whose labels contain `label` (NULL: all) in the last scrape;
 * -1 when absent. */
double bench_metric(const bench_consumer_t *c, const char *name, const char *label);
/* Quantile q (0..1) of the crmsync_sync_latency_ms histogram, interpolated inside its bucket
 * as Prometheus' histogram_quantile() does, from the difference of two scrapes' buckets
 * (base NULL: since start). *max_le gets the upper bound of the highest non-empty bucket
 * (INFINITY when it is +Inf) and *count the observations. */
typedef struct bench_hist_s {
    int n;
    double le[32];
    double cum[32]; /* cumulative counts */
} bench_hist_t;
int bench_hist_read(const bench_consumer_t *c, const char *name, bench_hist_t *h);
double bench_hist_quantile(const bench_hist_t *h, const bench_hist_t *base, double q);
double bench_hist_max_le(const bench_hist_t *h, const bench_hist_t *base);
double bench_hist_count(const bench_hist_t *h, const bench_hist_t *base);

/* Waits until the consumer has read `events` input events (polling /metrics every poll_ms).
 * Sets *t_first_us (first event seen; may be NULL) and *t_done_us (monotonic).
 * Returns 0, or -1 after `timeout_s` without progress or when the consumer died. */
int bench_wait_consumed(bench_consumer_t *c, double events, int poll_ms, int timeout_s,
                        int64_t *t_first_us, int64_t *t_done_us);
/* Waits until the consumer is quiet: queue empty, nothing pushed for settle_ms. Sets
 * *t_last_push_us to when the pushed-record counter last moved. Returns 0 or -1. */
int bench_wait_quiet(bench_consumer_t *c, int settle_ms, int timeout_s, int64_t *t_last_push_us);
/* The "restored N state record(s) of partition P in M ms" lines of a log: sums. Returns the
 * number of lines. */
int bench_restore_lines(const char *log, long *records, long *ms);

/* /proc/<pid>: CPU seconds (user + system), peak and current resident set (bytes). */
double bench_proc_cpu_s(pid_t pid);
long bench_proc_hwm(pid_t pid);
/* Busy and total jiffies of the whole machine (/proc/stat). */
void bench_machine_jiffies(uint64_t *busy, uint64_t *total);

/* Sandbox statistics (GET /sandbox/stats). */
typedef struct bench_sbstats_s {
    long crm_calls, crm_created, crm_updated;
    long mkt_calls, mkt_created, mkt_updated;
    long crm_composite, crm_update_calls, crm_upsert_calls, crm_token_calls;
} bench_sbstats_t;
int bench_sandbox_stats(const cs_tsandbox_t *sb, bench_sbstats_t *s);
/* Writes to `path` the CRM leads and marketing prospects whose key starts with prefix and that
 * were modified at or after since_ms (the sandbox keeps whole seconds), one per line. Returns
 * how many. */
long bench_sandbox_touched(cs_tsandbox_client_t *api, int64_t since_ms, const char *prefix,
                           const char *path);

/* Sandbox set-up: the mapped users; the population's pre-existing leads (created through
 * collections, ids kept in the model); the marketing ids of the prospects, which the sandbox
 * loaded from the seed file (checked by email). Return 0 or -1 with a message on stderr. */
int bench_sandbox_users(cs_tsandbox_client_t *api, int64_t mkt[2], char crm[2][19],
                        char integration[19]);
int bench_sandbox_leads(cs_tsandbox_client_t *api, bench_pop_t *pop, char crm[2][19]);
/* Appends the prospects of pop to the seed file f as JSON array items (first: no leading
 * comma). Returns how many. */
long bench_seed_prospects(FILE *f, const bench_pop_t *pop, int first);
int bench_sandbox_prospect_ids(cs_tsandbox_client_t *api, bench_pop_t *pop, int64_t *next_id);

/* ------------------------------------------------------------------ report (bench_report.c) */

typedef struct bench_result_s {
    double background_busy; /* share of the machine busy before the run (other jobs) */
    /* workload */
    long events, prospects, created, burst_events, lat_events;
    bench_mixcount_t mix, burst_mix, lat_mix;
    double gen_s, gen_eps;
    /* 2. ceiling */
    bench_raw_t raw;
    /* 3. sync consumer throughput */
    double sync_s, sync_steady_s, sync_eps, sync_steady_eps, ratio, sync_cpu_s, sync_cores;
    double sync_machine_busy, sandbox_cpu_s, quiet_s;
    double sync_http_s; /* the consumer's time waiting for API calls while reading the N events */
    /* the consumer thread's time by phase while reading the N events (s): waiting for input,
     * reading, pushing (net of reading done while it waits), reading during pushes,
     * committing; crmsync_loop_time_us_total */
    double sync_phase_s[5];
    long sync_rss_hwm;
    long sync_crm_writes, sync_mkt_writes, sync_crm_calls, sync_mkt_calls;
    double sync_calls_per_200;
    double dedup, ignored, queued, coalesced;
    /* 4. latency */
    double lat_p50, lat_p99, lat_max_le, lat_count, lat_offered_eps;
    double lat_all_p50, lat_all_p99;
    /* 5. bursts */
    long burst_prospects, burst_crm_writes, burst_crm_calls, burst_mkt_writes;
    double calls_per_batch, writes_per_prospect;
    long burst_composite, burst_update, burst_upsert;
    /* 6. replay */
    long replay_events, replay_writes;
    double replay_s, replay_steady_s, replay_eps, replay_steady_eps, replay_cpu_s;
    /* 7. state */
    double state_bytes, state_prospects, bytes_per_prospect;
    long restore_records, restore_ms, restore_lines;
    double restore_s_per_million;
    int errors; /* record errors / poison seen by the consumers */
} bench_result_t;

void bench_report(const bench_opts_t *o, const bench_result_t *r);

#endif
