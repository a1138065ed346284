/* crmsync-sync-consumer: the pieces of one replica, shared by its source files.
 *
 *   sync_main.c     configuration, the loop, control commands, metrics and health
 *   sync_decode.c   Avro records -> cs_event_t; poison input -> the errors topic
 *   sync_push.c     batches: matching, CRM collection calls, marketing calls, outcomes
 *   sync_changelog.c  state changelog (write, restore), rebalance hooks, offset commits
 *
 * Everything runs on the one consumer thread; librdkafka and libmicrohttpd run their own.
 * While a batch waits for an API answer, that thread goes on reading and applying events
 * (sc_idle, called by the HTTP client); an event of a prospect in the batch is kept aside
 * (the stash) and applied once the batch is done. */
#ifndef CS_SYNC_CONSUMER_H
#define CS_SYNC_CONSUMER_H

#include <stdint.h>

#include "cs_api.h"
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_fields.h"
#include "cs_http.h"
#include "cs_httpd.h"
#include "cs_kafka.h"
#include "cs_metrics.h"
#include "cs_queue.h"
#include "cs_state.h"
#include "cs_sync.h"
#include "cs_topics.h"

#define SC_MAX_USERS 256
#define SC_STASH_MAX 4096 /* events set aside during one batch; reading pauses when full */
#define SC_COMMIT_SLOTS 8 /* commit points whose changelog is still being delivered */
#define SC_STALL_MS 500   /* a commit point undelivered this long stops the pushes */

typedef struct sc_user_map_s {
    int64_t mkt_id;
    char crm_id[19];
} sc_user_map_t;

typedef struct sc_metrics_s {
    cs_counter_t *consumed[3];          /* per input topic */
    cs_counter_t *results[CS_R_COUNT_]; /* per rule outcome */
    cs_counter_t *poison;
    cs_counter_t *batches[2], *records[2]; /* [0] to CRM, [1] to marketing */
    cs_counter_t *created_leads, *created_prospects;
    cs_counter_t *record_errors, *batch_retries, *parked;
    cs_counter_t *changelog_writes, *commits;
    cs_gauge_t *queue_depth, *queue_retry, *state_prospects, *state_bytes, *paused, *lag;
    cs_hist_t *latency_ms; /* source event time -> CRM acknowledgement */
    /* where the consumer thread's time goes (microseconds), per SC_PHASE_* */
    cs_counter_t *phase_us[5];
} sc_metrics_t;

/* Phases of the consumer thread's time (crmsync_loop_time_us_total{phase=...}). */
enum { SC_PHASE_WAIT, SC_PHASE_READ, SC_PHASE_PUSH, SC_PHASE_READ_IN_PUSH, SC_PHASE_COMMIT };

typedef struct sc_s {
    cs_conf_t *conf;
    cs_metrics_t *metrics;
    sc_metrics_t m;
    cs_httpd_t *httpd;

    cs_avro_registry_t *reg;
    cs_avro_decoder_t *dec;
    cs_avro_encoder_t *enc;

    cs_fieldmap_t fm;
    cs_sync_t sync;
    cs_api_t *api;

    cs_consumer_t *consumer; /* the group: the three input topics */
    rd_kafka_t *control;     /* the control topic, read in full by every replica */
    int64_t control_catchup; /* offsets below this were issued before we started */
    cs_producer_t *producer; /* changelog and errors */

    const char *topics[CS_TOPIC_COUNT_];
    int nparts;
    uint8_t *owned;       /* [nparts] */
    int64_t *next_offset; /* [3 * nparts]: last processed input offset + 1, -1 = none */
    int64_t *stored;      /* [3 * nparts]: last offset stored for commit */

    /* settings */
    int batch_max;
    int64_t linger_ms;
    int64_t settle_ms;
    int max_attempts;
    int64_t commit_interval_ms;
    int paused;
    const char *assign_unassigned_to;
    sc_user_map_t users[SC_MAX_USERS];
    int nusers;

    /* loop state */
    int64_t hold_until;    /* batch-level backoff: no flush before this (monotonic ms) */
    int64_t next_self_try; /* when to ask again for the users crmsync writes as */
    cs_backoff_t backoff;
    int64_t last_commit_ms;
    /* Pipelined commits: the records produced between two commit points (an epoch) carry
     * the epoch; a commit point keeps the offsets that are safe once they are delivered, and
     * they are committed when the deliveries of that epoch and every earlier one are in. */
    uint64_t epoch;                        /* epoch of the records produced now */
    uint64_t outstanding[SC_COMMIT_SLOTS]; /* undelivered records per epoch (epoch % slots) */
    uint64_t pend_first, pend_n;           /* closed epochs waiting for their deliveries */
    int64_t pend_ms[SC_COMMIT_SLOTS];      /* when each closed epoch was closed */
    uint32_t batch_states[200];            /* the records of the batch being pushed */
    size_t nbatch_states;
    int64_t *pend_offsets; /* [SC_COMMIT_SLOTS][3 * nparts], -1 = none */
    int api_healthy;
    int64_t last_api_error_ms;
    char score_buf[12]; /* the event's score as text, formatted during decode (an int32) */
    int broker_down;

    /* reading while a batch is pushed (sc_idle) */
    struct {
        rd_kafka_topic_t *rkt;
        int kind;
    } rkt_cache[3];   /* input topic handle -> kind, learned from the messages */
    int64_t idle_us;  /* time spent in sc_idle (SC_PHASE_READ_IN_PUSH) */
    int in_push;      /* sc_flush is running: sc_idle may read */
    int push_aborted; /* a rebalance ran inside sc_idle: the batch was put back */
    struct {
        rd_kafka_message_t *m;
        int kind;
    } stash[SC_STASH_MAX]; /* read while its prospect was in the batch (or had an event here
                              already): applied in this order once the batch is done */
    int nstash;
} sc_t;

/* sync_decode.c */
/* Decodes msg (from input topic kind) into ev. Returns CS_OK, or an error after routing the
 * record to the errors topic as poison (the caller then just moves on). */
int sc_decode(sc_t *sc, const rd_kafka_message_t *msg, cs_ev_kind_t kind, cs_event_t *ev);
/* Applies one control record (PAUSE, UNPAUSE, SYNC_NOW, RETRY_ERROR). */
void sc_control(sc_t *sc, const rd_kafka_message_t *msg);
/* Writes a SyncError record (errors topic). raw may be NULL. */
void sc_error_record(sc_t *sc, const char *key, size_t keylen, int direction, const char *code,
                     const char *message, int attempts, const rd_kafka_message_t *raw);
/* Marketing user id of a CRM user id (-1 when unmapped), and the reverse ("" unmapped). */
int64_t sc_user_mkt(const sc_t *sc, const char *crm_id, size_t len);
const char *sc_user_crm(const sc_t *sc, int64_t mkt_id);

/* Reads and applies input events while an API call of a batch is in flight (the HTTP
 * client's idle callback). Returns the number of messages read. */
int sc_idle(void *opaque);
/* Called by the rebalance hooks: when a batch is in flight (the rebalance came through
 * sc_idle), puts its entries back in the queue and marks it aborted. */
void sc_push_abort(sc_t *sc);
/* Applies the events set aside during the last batch (their partition still ours). */
void sc_apply_stash(sc_t *sc);

/* sync_push.c */
/* Flushes at most one batch when one is due. Returns the number of entries handled. */
int sc_flush(sc_t *sc, int force);

/* Asks for the CRM and marketing users crmsync writes as (echo suppression), those not
 * known yet; again in 5 s when an API does not answer. */
void sc_learn_self(sc_t *sc, int64_t now);

/* sync_inspect.c: /status, /queue?limit=N, /prospect?key=K (JSON), answered by the loop */
void sc_inspect_http(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp);
/* Called by the loop between polls: answers a pending inspection. */
void sc_inspect_serve(sc_t *sc);
/* Releases a waiting inspection at shutdown. */
void sc_inspect_cancel(void);

/* sync_changelog.c */
void sc_on_assign(void *opaque, const rd_kafka_topic_partition_list_t *parts);
void sc_on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts);
/* A commit point: writes the changelog records of changed prospects and keeps the offsets
 * that are safe once they are delivered; offsets are stored and committed as deliveries
 * come in (sc_commit_progress), without waiting. Returns CS_OK or an error. */
int sc_commit(sc_t *sc);
/* Commits what the delivered records allow; called by the loop after serving reports. */
void sc_commit_progress(sc_t *sc);
/* A commit point, then waits for every delivery and commits (revocation, shutdown).
 * Returns CS_OK or an error (not everything committed). */
int sc_commit_sync(sc_t *sc);

/* 1 while the oldest closed commit point has waited more than SC_STALL_MS for its
 * deliveries (the broker is away): pushes wait, since what they write could not be recorded,
 * and a takeover would write it again later over newer edits. */
int sc_changelog_stalled(const sc_t *sc, int64_t now);
/* Delivery report callback of the replica's producer (msg_opaque: the record's epoch). */
void sc_on_delivery(void *opaque, void *msg_opaque, int err, const char *errstr, int32_t partition,
                    int64_t offset);
/* Produces a record in the current epoch (see sc_commit); partition -1 = the partitioner. */
int sc_send(sc_t *sc, const char *topic, int32_t partition, const void *key, size_t klen,
            const void *value, size_t len);
/* Writes one prospect's state record (no wait). */
int sc_write_state(sc_t *sc, uint32_t st);
/* The input-topic index of a topic name, -1 for others. */
int sc_topic_kind(const sc_t *sc, const char *topic);
/* The input topic of an index (CS_EV_PROSPECT, CS_EV_ACTIVITY, CS_EV_CRM). */
const char *sc_input_topic(const sc_t *sc, int kind);

#endif
