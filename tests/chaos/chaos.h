/* crmsync-chaos: the whole pipeline under faults, checked against a ledger (`make chaos`,
 * tests/e2e/test_chaos.sh).
 *
 *   chaos_main.c      options, set-up (sandbox, topics, producers, replicas), the run, the
 *                     summary and the CHAOS line
 *   chaos_procs.c     child processes: start and wait for their "listening"/"metrics" line,
 *                     SIGKILL and restart replicas, the broker script, /metrics scraping
 *   chaos_workload.c  the ledger and the people at work: prospects created and edited through
 *                     the v5 API, CRM records seeded and edited by sales people
 *                     (/sandbox/crm/edit), activity webhooks, a CSV import (crmsync-import)
 *   chaos_faults.c    the monkey: replica kills, the broker restart, sandbox knobs (503s,
 *                     rate-limit bursts, short token lifetime), poison records
 *   chaos_verify.c    quiescence, the expected state from the ledger against the sandbox's
 *                     snapshot, offsets and the errors topic
 *
 * The expected state is computed from what this program itself wrote (the ledger), never
 * from crmsync's state: every field of a prospect is edited on one side only, each edit in a
 * later second than the one before (both APIs keep whole seconds), so "the newest value" of
 * every field is unambiguous. Groups of prospects:
 *
 *   MKT         assigned, edited in the marketing system (first name, company, title); a lead
 *               is created by crmsync and must carry the newest values
 *   CRM         edited in the CRM by sales people (phone, last name, title) once linked; some
 *               have a lead, a contact or both seeded before the prospect exists (matching:
 *               the contact wins, no second record), the others get a crmsync lead
 *   ACTIVITY    assigned, intent activities (form, clicks, page views...): the lead's
 *               Crmsync_Last_Activity__c must be the newest one; half get them in a burst
 *               right after creation, half once the lead exists
 *   DNS         do-not-sync from creation, edited, with intent activities: no CRM record
 *   UNASSIGNED  unassigned and unmatched, edited, with intent activities: no CRM record
 *   IMPORT      assigned, re-imported with crmsync-import (their current values): unchanged
 * and passive activities (email opens and sends, anonymous page views, visits) for all. */
#ifndef CHAOS_H
#define CHAOS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "cs_conf.h"
#include "cs_http.h"
#include "testutil_proc.h"

enum { G_MKT = 0, G_CRM, G_ACT, G_DNS, G_UNASSIGNED, G_IMPORT, G_COUNT_ };
enum { SEED_NONE = 0, SEED_LEAD, SEED_CONTACT, SEED_BOTH };
enum { T_PROSPECT = 0, T_ACTIVITY, T_CRM, T_CONTROL, T_STATE, T_ERRORS, T_CURSORS, T_COUNT_ };

#define CH_MAX_REPLICAS 8
#define CH_MKT_THREADS 4 /* marketing users at work in parallel */
#define CH_WORKLOAD_THREADS (CH_MKT_THREADS + 2)
#define CH_POISON_KINDS 6

extern const char *const ch_group_names[G_COUNT_];

/* One prospect of the workload and everything the driver did to it. Strings are written by
 * the thread owning the prospect's group (marketing edits: the marketing thread; CRM edits:
 * the CRM thread) under ch_t.mu; the flags are atomics. */
typedef struct ch_prospect_s {
    int idx, group, seed;
    atomic_int created;     /* 1 once `id` is valid */
    atomic_int linked;      /* 1 once the CRM record carries the prospect id (crm_id set) */
    atomic_llong linked_ms; /* wall ms when the link was seen */
    int64_t id;             /* marketing prospect id */
    char email[64];
    char first[48], last[48], company[48], title[48], phone[48];
    int64_t assigned; /* marketing user id, -1 unassigned */
    int dns;
    int act_burst; /* ACTIVITY: every intent activity right after creation */
    int imported;
    char seed_owner[19]; /* CRM user who entered the seeded records */
    char seed_lead[19], seed_contact[19];
    char crm_id[19]; /* the record sales people edit (CRM group) */
    int crm_is_contact;
    int64_t created_ms;            /* wall clock of the create */
    int64_t last_edit_ms;          /* wall clock of the newest edit (either side) */
    atomic_llong last_activity_ms; /* newest accepted intent activity (occurred_at), 0 none */
    int mkt_edits, crm_edits, triggers;
    unsigned crm_origin; /* CH_F_* bits whose newest value was written in the CRM */
} ch_prospect_t;

/* The checked fields of a prospect (bits of crm_origin). */
enum { CH_F_FIRST = 0, CH_F_LAST, CH_F_COMPANY, CH_F_TITLE, CH_F_PHONE, CH_F_COUNT_ };

typedef struct ch_replica_s {
    cs_tproc_t proc;
    int port;      /* /metrics, 0 while down */
    int starts;    /* incarnations */
    int64_t up_ms; /* monotonic ms of the last start */
} ch_replica_t;

typedef struct ch_poison_s {
    int topic; /* T_PROSPECT, T_ACTIVITY, T_CRM */
    int kind;
    int32_t partition;
    int64_t offset; /* -1 until delivered */
    int found;      /* a POISON_* record for it is in the errors topic */
    char code[40];  /* the code found */
} ch_poison_t;

typedef struct ch_s {
    cs_conf_t *conf;
    /* settings */
    const char *size;
    int nprospects, mkt_edits, crm_edits, activities, nreplicas, partitions, static_replicas;
    int64_t duration_ms, kill_interval_ms, restart_delay_ms, broker_down_ms, burst_every_ms;
    int burst_errors, token_ttl_s;
    const char *error_rate;
    long long min_events;
    int64_t quiet_ms, settle_timeout_ms;
    unsigned seed;
    int broker_restart; /* wanted */
    int broker_port;    /* of kafka.sh; 0 = not a broker we can restart */
    char bootstrap[256], kafka_sh[1024], run[96], run_dir[1024];

    /* the pipeline */
    cs_tproc_t sandbox;
    char sandbox_url[64];
    cs_tproc_t pprod, cprod, aprod; /* prospect, CRM, activity producers */
    int pprod_port, cprod_port;
    char ingest_url[256];
    char ingest_token[40];
    pthread_mutex_t rep_mu; /* the replica table */
    ch_replica_t rep[CH_MAX_REPLICAS];
    char topics[T_COUNT_][160];
    char group[128];
    int64_t mkt_users[3];  /* Sam, Rita (mapped), Mo (no CRM user) */
    char crm_users[3][19]; /* Sam, Rita, Ada */
    char integration_user[19];
    char users_map[128];
    void *lag_rk; /* rd_kafka_t: the group's committed offsets for the progress lines */

    /* the ledger */
    pthread_mutex_t mu;
    ch_prospect_t *p;
    int n;
    int import_rows, import_status;

    /* the run */
    int64_t start_ms, chaos_end_ms; /* monotonic */
    atomic_int stop;                /* stop everything now (signal, fatal error) */
    atomic_int workload_done;       /* the workload threads were joined */
    atomic_int threads_done;        /* workload threads that returned */
    atomic_int chaos_over;          /* the monkey stops the faults (keeps minding replicas) */
    atomic_int timeline_done;       /* the monkey did its last fault of the timeline */
    atomic_int children_stopping;   /* the monkey no longer restarts replicas */
    atomic_int monkey_parked;       /* ... and has acknowledged it */
    atomic_int finished;            /* the monkey thread may return */
    atomic_long n_created, n_mkt_edits, n_crm_edits, n_seeded, n_acts, n_triggers, n_act_posts;
    atomic_long kills, crashes, bursts;
    atomic_int broker_restarts, broker_down;
    int64_t broker_down_total_ms;
    char broker_error[256];
    ch_poison_t poison[64];
    int npoison;
    char fatal[512]; /* first fatal workload error */
} ch_t;

/* ---- chaos_procs.c ---- */

/* Starts $CRMSYNC_BIN_DIR/crmsync-<name> with args, output appended to log (a marker line
 * first), and waits up to 60 s for a log line (after the marker) containing `marker`; the
 * text after it up to a space goes to out. Returns 0, or -1 (the process is stopped). */
int ch_start(ch_t *ch, cs_tproc_t *p, const char *name, const char *const *args, const char *log,
             const char *marker, char *out, size_t outsize);
/* Starts replica i (a new incarnation) and waits for its metrics port. Returns 0 or -1. */
int ch_replica_start(ch_t *ch, int i);
/* SIGKILLs replica i. */
void ch_replica_kill(ch_t *ch, int i);
/* Replicas that exited by themselves (not killed by us) are counted as crashes, logged and
 * restarted. Returns how many were found. Monkey thread only. */
int ch_replicas_check(ch_t *ch);
/* Runs `bash kafka.sh <cmd>` for our broker port, output appended to the run's broker.log.
 * Returns its exit status (-1 when it could not run or took longer than timeout_ms). */
int ch_broker(ch_t *ch, const char *cmd, int timeout_ms);
/* Sum of the values of metric `name` whose labels contain `label` (NULL = any) in the
 * /metrics of 127.0.0.1:port; -1 when it does not answer. */
double ch_metric(cs_http_t *h, int port, const char *name, const char *label);
/* GET/POST a sandbox helper path (no auth); *out: new reference (may be NULL). Returns the
 * HTTP status, 0 on transport failure. */
int ch_sandbox(ch_t *ch, cs_http_t *h, const char *method, const char *path, json_t *body,
               json_t **out);
/* Path under the run directory. */
void ch_path(const ch_t *ch, const char *name, char *buf, size_t size);

/* ---- chaos_workload.c ---- */

/* Fills the ledger (groups, names, assignments) and seeds the CRM records. Returns 0 or -1. */
int ch_workload_init(ch_t *ch);
/* The workload threads (marketing, CRM, activities); ch_workload_join waits for them. */
int ch_workload_start(ch_t *ch);
void ch_workload_join(ch_t *ch);
/* Writes the import CSV and runs crmsync-import on it. Returns its exit status. */
int ch_import(ch_t *ch);
void ch_workload_free(ch_t *ch);

/* ---- chaos_faults.c ---- */

/* Sets the faults and starts the monkey thread. The monkey forks the replicas it restarts,
 * and children get SIGKILL when the thread that forked them ends (PR_SET_PDEATHSIG), so it
 * lives until the end: ch_faults_park() (no more restarts; stop the replicas after it), then
 * ch_faults_join(). */
int ch_faults_start(ch_t *ch);
void ch_faults_park(ch_t *ch);
void ch_faults_join(ch_t *ch);
/* Sets the sandbox knobs (JSON object text). Returns 0 or -1. */
int ch_knobs(ch_t *ch, const char *json);
/* Writes a round of poison records (every kind to every input topic) and waits for their
 * delivery. Returns 0 or -1. */
int ch_poison_round(ch_t *ch);

/* ---- chaos_verify.c ---- */

typedef struct ch_result_s {
    long long events, per_topic[3], poison_written, poison_routed;
    long long lost, duplicate_leads, mismatched;
    long long unexpected_records, missing_records, uncommitted, error_records;
    int quiet; /* quiescence reached */
    int64_t settle_ms;
} ch_result_t;

/* Waits (bounded) until the pipeline is quiet: every replica answers with an empty queue,
 * the group's committed offsets reached the end of every input partition, no record was
 * written on either side for chaos.quiet_ms, and both polling producers completed two polls
 * since the last write. Returns 1 when quiet. */
int ch_wait_quiet(ch_t *ch, ch_result_t *r);
/* Compares everything; prints the findings. */
void ch_verify(ch_t *ch, ch_result_t *r);
/* Input events beyond the group's committed offsets (-1: Kafka did not answer). The first
 * call opens ch->lag_rk; ch_lag_close() closes it. Main thread. */
long long ch_group_lag(ch_t *ch);
void ch_lag_close(ch_t *ch);

/* Logging of the driver itself (stdout, flushed). */
void ch_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wall seconds since the start, for messages. */
double ch_elapsed_s(const ch_t *ch);
/* A uniform random number in [0, n) (thread-safe, seeded by chaos.seed). */
uint32_t ch_rand(uint32_t n);
void ch_rand_seed(unsigned seed);

#endif
