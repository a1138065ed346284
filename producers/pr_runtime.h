/* pr_runtime: what the polling producers (crmsync-prospect-producer, crmsync-crm-producer)
 * share: configuration, the Kafka producer, the durable cursors, the poll loop with its
 * backoff, /metrics and /healthz, and the clean drain on SIGTERM.
 *
 * A poll reads records changed since a cursor and hands each to a batch:
 *   pr_batch_begin(pr, cur)              the batch's records all belong to cursor cur
 *   pr_publish(pr, id, ms, hash, ...)    send one encoded event (record id, modstamp ms,
 *                                        content hash: see cs_cursor.h)
 *   pr_skip(pr, ms)                      a record already handled (overlap re-read)
 *   pr_reject(pr, id, ms, hash, code, ..) bad source data: a SyncError to topic.errors
 *   pr_checkpoint(pr)                    waits for every delivery report of the batch, marks
 *                                        the delivered records handled and, when nothing
 *                                        failed, moves the cursor to the newest modstamp
 *                                        of the batch and writes it to topic.cursors.
 * Records must be handed over in modstamp order (the queries sort by it), so that moving
 * the cursor to the batch's newest modstamp never passes a record not yet handled.
 *
 * Everything here runs on the main thread, except the /healthz callback (atomics only). */
#ifndef PR_RUNTIME_H
#define PR_RUNTIME_H

#include <stdatomic.h>
#include <stdint.h>

#include "cs_api.h"
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_cursor.h"
#include "cs_http.h"
#include "cs_httpd.h"
#include "cs_kafka.h"
#include "cs_metrics.h"
#include "cs_topics.h"

#define PR_MAX_CURSORS 8
/* ms of a record that cannot be placed in time (no readable modification time): it is
 * remembered as handled under its own id namespace and never moves or holds the cursor */
#define PR_TIMELESS INT64_MAX
#define PR_BATCH_MAX 1000 /* records per checkpoint: bounds memory and the replay after a crash */

/* Options of both producers: add with cs_conf_add_opts(c, pr_opts). */
extern const cs_opt_t pr_opts[];

typedef enum { PR_KEY_EMAIL = 0, PR_KEY_ID } pr_key_mode_t;

typedef struct pr_item_s {
    char id[64];
    int64_t ms;
    uint64_t hash; /* content hash (cs_cursor_hash) */
    int state;     /* 0 in flight, 1 delivered, -1 failed */
    int event;     /* 1 = an event (counted as published), 0 = an error record */
} pr_item_t;

typedef struct pr_cursor_s {
    cs_cursor_t *c;
    uint64_t written_version; /* version + 1 of the last document delivered (0 = none) */
    uint64_t sent_version;    /* version + 1 of the document in flight (0 = none) */
    int write_state;          /* 0 in flight, 1 delivered, -1 failed */
    cs_counter_t *published, *duplicates, *rejected;
    cs_gauge_t *cursor_ms;
} pr_cursor_t;

typedef struct pr_s {
    const char *prog; /* "prospect" / "crm": log component and metric label */
    cs_conf_t *conf;
    cs_metrics_t *metrics;
    cs_httpd_t *httpd;
    cs_producer_t *producer;
    cs_api_t *api;
    cs_avro_registry_t *reg;
    cs_avro_encoder_t *enc;
    const char *topics[CS_TOPIC_COUNT_];

    pr_key_mode_t key_mode;
    int64_t interval_ms, overlap_ms, shutdown_timeout_ms, initial_ms;
    cs_backoff_t backoff;

    pr_cursor_t cursors[PR_MAX_CURSORS];
    int ncursors;

    /* the open batch */
    pr_cursor_t *cur;
    pr_item_t items[PR_BATCH_MAX];
    int nitems;
    int outstanding; /* delivery reports still due (items and cursor writes) */
    int64_t batch_max_ms;
    int batch_records; /* records handed over (published, skipped, rejected) */
    int batch_advance; /* 1 (pr_batch_begin): a checkpoint moves the cursor to batch_max_ms;
                          0: the caller moves it (sources not sorted by time) */

    int64_t stop_deadline; /* drain deadline once a stop was requested, 0 before */

    /* health, read by the /healthz thread */
    atomic_int loaded;
    atomic_int failures; /* consecutive failed polls */
    atomic_llong last_ok_ms;
    atomic_llong waiting_since_ms; /* waiting for delivery reports since (0 = not waiting) */
    atomic_int waiting_for;        /* how many */

    struct {
        cs_counter_t *polls_ok, *polls_failed, *api_errors, *delivery_failures;
        cs_gauge_t *last_ok;
        cs_hist_t *poll_ms;
    } m;
} pr_t;

/* The poll of one program: reads every source once, through batches. Returns CS_OK or the
 * error that ended it (an API or delivery error: the loop backs off and polls again). */
typedef int (*pr_poll_fn)(pr_t *pr, void *opaque);

/* Parses the command line into pr->conf (prog_opts, pr_opts, topics, api, fields), then
 * sets up logging, metrics, Avro, the API client, the Kafka producer and the HTTP server.
 * Returns CS_OK; 1 when an informational flag (--help, ...) was served; or a negative
 * CS_ERR_* (reported on stderr / the log). *exit_code gets the status main() should return
 * in the last two cases. */
int pr_init(pr_t *pr, const char *prog, const char *program_name, const char *usage,
            const cs_opt_t *prog_opts, int argc, char **argv, int *exit_code);

/* Registers a cursor (ownership passes to pr). Returns its slot, or NULL (too many). */
pr_cursor_t *pr_add_cursor(pr_t *pr, cs_cursor_t *c);

/* Loads the cursors (retrying with backoff while the broker is unreachable), then polls
 * every interval until a stop is requested, then drains. Returns main()'s exit status:
 * 0 after a clean drain, 1 when events or cursor writes were left undelivered. */
int pr_run(pr_t *pr, pr_poll_fn poll, void *opaque);

/* Frees everything pr_init made. Accepts a partly initialised pr. */
void pr_destroy(pr_t *pr);

/* ---- batches ---- */

void pr_batch_begin(pr_t *pr, pr_cursor_t *cur);

/* Sends one encoded event to topic (key NULL: no key). id (< 64 bytes), ms and hash identify
 * the source record version for the handled set. Checkpoints first when the batch is full.
 * Returns CS_OK or the send / checkpoint error. */
int pr_publish(pr_t *pr, const char *id, int64_t ms, uint64_t hash, const char *topic,
               const char *key, size_t keylen, const void *value, size_t len);

/* A record already handled (cs_cursor_seen): counted, and the cursor may pass it. */
void pr_skip(pr_t *pr, int64_t ms);

/* Bad source data: logs it, sends a SyncError (direction INPUT, code, message naming the
 * record) to topic.errors, and treats the record as handled once that is delivered.
 * Returns as pr_publish. */
int pr_reject(pr_t *pr, const char *id, int64_t ms, uint64_t hash, const char *code,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Ends the batch: see the header comment. Returns CS_OK, CS_ERR_KAFKA (a delivery failed:
 * the cursor did not move) or CS_ERR_SHUTDOWN (stopping and the drain time is up). */
int pr_checkpoint(pr_t *pr);

/* ---- helpers ---- */

/* The prospect key of an e-mail in key_mode EMAIL: cs_key_normalize_email. Returns the key
 * length (> 0) or a negative CS_ERR_*. */
int pr_email_key(const char *email, char *out, size_t outsize);

/* Records an API failure in the log and metrics and returns err (convenience). */
int pr_api_error(pr_t *pr, int err, const char *what);

#endif
