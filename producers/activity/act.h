/* crmsync-activity-producer: activity webhooks (and, optionally, the marketing API's
 * visitor-activities) -> Activity records on topic.activity, keyed by prospect key.
 *
 *   act_parse.c   request bodies (JSON object / array / NDJSON, form-urlencoded) -> events;
 *                 pure functions
 *   act_track.c   one entry per event id: the dedup window of recently accepted ids, and the
 *                 completion of each message (delivery report -> waiting requests)
 *   act_ingest.c  the runtime (producer, its poll thread, the Avro encoder, metrics, health)
 *                 and the HTTP handler (auth, rate limit, parse, dedup, produce, wait)
 *   act_pull.c    the optional pull of visitor-activities with a durable cursor
 *   act_main.c    options and main()
 *
 * Threads: MHD's pool runs the handler (one request per thread, blocking until its
 * delivery reports are in); one poll thread serves the producer's delivery reports; the
 * main thread runs the pull. The encoder is shared under a mutex, the tracker under its own. */
#ifndef ACT_H
#define ACT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_api.h"
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_cursor.h"
#include "cs_httpd.h"
#include "cs_kafka.h"
#include "cs_metrics.h"

#define ACT_ID_MAX 200  /* bytes of a client event id */
#define ACT_KEY_MAX 256 /* bytes of a prospect key or e-mail, NUL included */

typedef enum { ACT_KEY_EMAIL = 0, ACT_KEY_ID } act_key_mode_t;

/* ---- events (act_parse.c) ---- */

typedef struct act_event_s {
    char id[ACT_ID_MAX + 1];
    char key[ACT_KEY_MAX];
    char email[ACT_KEY_MAX]; /* as sent, trimmed; "" when none */
    int64_t prospect_id;     /* -1 when none */
    int type;                /* cs_activity_type_t */
    int identified;
    int32_t score_delta;
    int64_t occurred_at;        /* epoch ms */
    int64_t source_activity_id; /* -1 when none */
} act_event_t;

typedef struct act_parse_opts_s {
    act_key_mode_t key_mode;
    int require_id;    /* 0: events without an id get a generated one (no dedup) */
    size_t max_events; /* per request */
    int64_t now_ms;    /* default occurred_at */
} act_parse_opts_t;

/* A rejected body, rendered as the JSON error answer. */
typedef struct act_parse_err_s {
    int status;     /* 400, 413 or 415 */
    char error[32]; /* "invalid_json", "invalid_field", "empty_body", "too_many_events", ... */
    char field[64]; /* invalid_field: the name as sent */
    char message[256];
    long index; /* the event's position in the request (0-based), -1 when not about one */
} act_parse_err_t;

/* Maps an activity type name to the ActivityType symbol: the crmsync names (form,
 * form_handler, landing_page, tracked_link_click, page_view, email_open, email_send,
 * email_click, unsubscribe, visitor_session, other), case-insensitive, '-' or ' ' for '_'.
 * Returns the symbol or -1. */
int act_type_lookup(const char *name, size_t len);

/* The lower-case name of a type ("form_handler"); "other" when out of range. Static. */
const char *act_type_name(int type);

/* Parses a request body into events. content_type may be NULL (JSON is tried). JSON bodies
 * hold one object, an array of objects, or objects one after another (NDJSON); a form body
 * (application/x-www-form-urlencoded) holds one event. All or nothing: the first invalid
 * event makes the whole body rejected. Returns CS_OK with *events (malloc'd, caller frees)
 * and *n >= 1, or CS_ERR_PARSE with err filled (CS_ERR_NOMEM on allocation failure). */
int act_parse_body(const char *content_type, const char *body, size_t len,
                   const act_parse_opts_t *o, act_event_t **events, size_t *n,
                   act_parse_err_t *err);

/* ---- event tracking (act_track.c) ---- */

typedef struct act_tracker_s act_tracker_t;
typedef struct act_entry_s act_entry_t;

enum { ACT_PENDING = 0, ACT_DELIVERED = 1, ACT_FAILED = 2 };

/* A tracker whose dedup window remembers the last `window` accepted event ids (0 = no
 * dedup). NULL on allocation failure. Thread-safe. */
act_tracker_t *act_tracker_new(size_t window);
void act_tracker_destroy(act_tracker_t *t); /* accepts NULL; entries still referenced leak */

/* Claims an event id for a request. When the id is in the window (delivered, or in flight
 * for another request), *dup = 1 and *out is that entry; otherwise *dup = 0 and *out is a
 * new pending entry, entered into the window, that the caller must send (the producer's
 * reference travels as the message opaque: act_tracker_resolve() drops it) or resolve
 * as failed. Either way the caller holds a reference: release it with act_tracker_release().
 * id NULL: an untracked entry (never a duplicate, not in the window). Returns CS_OK or
 * CS_ERR_NOMEM. */
int act_tracker_claim(act_tracker_t *t, const char *id, act_entry_t **out, int *dup);

/* The delivery report of an entry's message: DELIVERED keeps the id in the window (a retry
 * is a duplicate), FAILED takes it out (a retry is produced again). Wakes the waiters and
 * drops the producer's reference. Any thread. */
void act_tracker_resolve(act_tracker_t *t, act_entry_t *e, int err);

typedef struct act_outcome_s {
    size_t delivered, failed, pending;
} act_outcome_t;

/* Waits until every entry of e[0..n) is resolved or deadline_ms (cs_now_ms() clock) has
 * passed, and counts the states. */
void act_tracker_wait(act_tracker_t *t, act_entry_t *const *e, size_t n, int64_t deadline_ms,
                      act_outcome_t *out);

/* ACT_PENDING, ACT_DELIVERED or ACT_FAILED (the caller holds a reference to e). */
int act_tracker_state(act_tracker_t *t, act_entry_t *e);

/* Drops the caller's references (NULL entries skipped). */
void act_tracker_release(act_tracker_t *t, act_entry_t *const *e, size_t n);

/* Ids in the window now. */
size_t act_tracker_size(act_tracker_t *t);

/* ---- the runtime (act_ingest.c) ---- */

typedef struct act_s act_t;

typedef struct act_pull_s act_pull_t;

struct act_s {
    cs_conf_t *conf;
    const char *topic;         /* topic.activity */
    const char *cursors_topic; /* topic.cursors */
    cs_metrics_t *metrics;
    cs_avro_registry_t *reg;
    cs_avro_encoder_t *enc; /* under enc_mu */
    pthread_mutex_t enc_mu;
    cs_producer_t *producer;
    act_tracker_t *tracker;
    cs_httpd_t *httpd;
    pthread_t poll_thread;
    int poll_started;
    atomic_int poll_stop;
    atomic_int kafka_down; /* delivery failures since the last success, and no probe has
                              reached a broker since */
    atomic_int stopping;   /* new requests are refused */
    act_pull_t *pull;

    /* settings */
    act_key_mode_t key_mode;
    char *token, *hmac_secret; /* copies; "" = not configured */
    size_t token_len, hmac_secret_len;
    int allow_unauthenticated, require_id;
    size_t max_events;
    int64_t delivery_timeout_ms;
    int retry_after_s;

    /* rate limit: a token bucket */
    pthread_mutex_t rl_mu;
    double rl_rate, rl_burst, rl_tokens;
    int64_t rl_last_us;

    struct {
        cs_counter_t *req[8]; /* by outcome, see act_ingest.c */
        cs_counter_t *published_webhook, *published_pull, *duplicates, *delivery_failed;
        cs_counter_t *by_type[16];
        cs_gauge_t *window, *kafka_up;
        cs_hist_t *wait_ms;
    } m;
};

/* Reads the settings from a->conf (filled by main) and builds metrics, Avro, tracker,
 * producer, its poll thread and the HTTP server. Returns CS_OK or an error with errstr. */
int act_start(act_t *a, char *errstr, size_t errstr_size);

/* Drains: refuses new requests, waits for the in-flight ones (HTTP server stopped), stops
 * the poll thread and flushes the producer within timeout_ms. Returns 0 when every message
 * was delivered, 1 otherwise. Then frees everything act_start made (also after a failed
 * start). */
int act_stop(act_t *a, int64_t timeout_ms);

/* Encodes an event as an Activity record and sends it (key = ev->key) with e as the message
 * opaque; on a send error e is resolved as failed here. block_ms bounds the wait for room
 * in the producer queue. Returns CS_OK or the send error. Any thread. */
int act_send(act_t *a, const act_event_t *ev, act_entry_t *e, int block_ms);

/* The HTTP handler (cs_httpd_handler_t). */
void act_handle(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp);

/* ---- pull (act_pull.c) ---- */

/* pull.* options are read here. Returns CS_OK (also when pull.enabled is false: then
 * act_pull_step only sleeps) or CS_ERR_CONFIG with errstr. */
int act_pull_init(act_t *a, char *errstr, size_t errstr_size);

/* One turn of the main loop: polls when due (loading the cursor first), else sleeps a
 * little. Returns when a stop is requested or after at most ~1 s. */
void act_pull_step(act_t *a);

void act_pull_destroy(act_t *a);

#endif
