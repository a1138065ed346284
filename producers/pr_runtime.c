/* pr_runtime: the poll loop, batches, cursors and drain shared by the polling producers
 * (see pr_runtime.h). */
#include "pr_runtime.h"

#include "cs_err.h"
#include "cs_fields.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_time.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cs_opt_t pr_opts[] = {
    {"poll.interval.ms", CS_OPT_INT, "5000", 10, 86400000, 0,
     "pause between two polls of the source (a poll follows every page before pausing)"},
    {"overlap.ms", CS_OPT_INT, "2000", 0, 86400000, 0,
     "each poll re-reads this much before the cursor (late-visible changes); records already "
     "published are recognised by (id, modification time) and not published again"},
    {"cursor.initial", CS_OPT_STRING, "earliest", 0, 0, 0,
     "where a producer without a durable cursor starts: earliest (everything), now, or an "
     "ISO-8601 time"},
    {"cursor.load.timeout.ms", CS_OPT_INT, "30000", 1000, 600000, 0,
     "time to read the cursors topic at start before retrying"},
    {"prospect.key", CS_OPT_STRING, "email", 0, 0, 0,
     "prospect key: email (unique-email accounts: lower-cased trimmed e-mail) or id (the "
     "prospect id, where duplicate e-mails are allowed)"},
    {"shutdown.timeout.ms", CS_OPT_INT, "15000", 0, 600000, 0,
     "on SIGTERM, how long to wait for outstanding deliveries and the last cursor write"},
    {"retry.backoff.ms", CS_OPT_INT, "200", 1, 3600000, 0,
     "first wait after a failed poll (API down, broker down), doubled per failure"},
    {"retry.backoff.max.ms", CS_OPT_INT, "30000", 1, 3600000, 0, "longest wait between retries"},
    {"retry.rate_limit.backoff.ms", CS_OPT_INT, "5000", 1, 3600000, 0,
     "first wait after a rate-limit answer (403 REQUEST_LIMIT_EXCEEDED, codes 66/122)"},
    {"retry.rate_limit.backoff.max.ms", CS_OPT_INT, "300000", 1, 86400000, 0,
     "longest wait after rate-limit answers (a Retry-After header wins)"},
    CS_OPT_END,
};

/* ------------------------------------------------------------------ delivery reports */

static void on_delivery(void *opaque, void *msg_opaque, int err, const char *errstr,
                        int32_t partition, int64_t offset)
{
    pr_t *pr = opaque;
    (void)partition;
    (void)offset;
    if (!msg_opaque)
        return;
    pr->outstanding--;
    if ((char *)msg_opaque >= (char *)pr->items &&
        (char *)msg_opaque < (char *)(pr->items + PR_BATCH_MAX)) {
        pr_item_t *it = msg_opaque;
        it->state = err ? -1 : 1;
        if (err) {
            cs_counter_add(pr->m.delivery_failures, 1);
            CS_WARN(pr->prog, "event for record %s not delivered: %s", it->id,
                    errstr ? errstr : cs_err_str(err));
        }
        return;
    }
    pr_cursor_t *pc = msg_opaque;
    pc->write_state = err ? -1 : 1;
    if (err) {
        cs_counter_add(pr->m.delivery_failures, 1);
        CS_WARN(pr->prog, "cursor %s not written: %s", cs_cursor_name(pc->c),
                errstr ? errstr : cs_err_str(err));
    } else {
        pc->written_version = pc->sent_version;
    }
    pc->sent_version = 0;
}

/* Serves delivery reports until none is due. While stopping, gives up at the drain
 * deadline (CS_ERR_SHUTDOWN). */
static int wait_outstanding(pr_t *pr)
{
    int err = CS_OK;
    if (pr->outstanding > 0)
        atomic_store(&pr->waiting_since_ms, cs_wall_ms());
    while (pr->outstanding > 0) {
        atomic_store(&pr->waiting_for, pr->outstanding);
        if (cs_run_stopping()) {
            if (!pr->stop_deadline)
                pr->stop_deadline = cs_now_ms() + pr->shutdown_timeout_ms;
            if (cs_now_ms() >= pr->stop_deadline) {
                CS_WARN(pr->prog, "stopping with %d delivery report(s) still due", pr->outstanding);
                err = CS_ERR_SHUTDOWN;
                break;
            }
        }
        if (cs_producer_fatal(pr->producer)) {
            err = CS_ERR_KAFKA_FATAL;
            break;
        }
        cs_producer_poll(pr->producer, 100);
    }
    atomic_store(&pr->waiting_since_ms, 0);
    return err;
}

/* ------------------------------------------------------------------ cursors */

pr_cursor_t *pr_add_cursor(pr_t *pr, cs_cursor_t *c)
{
    char lbl[160];
    pr_cursor_t *pc;
    if (!c || pr->ncursors >= PR_MAX_CURSORS) {
        cs_cursor_destroy(c);
        return NULL;
    }
    pc = &pr->cursors[pr->ncursors++];
    memset(pc, 0, sizeof(*pc));
    pc->c = c;
    pc->write_state = 1;
    snprintf(lbl, sizeof(lbl), "producer=\"%s\",cursor=\"%s\"", pr->prog, cs_cursor_name(c));
    pc->published = cs_metrics_counter(pr->metrics, "crmsync_producer_events_total",
                                       "Events published and acknowledged by the broker", lbl);
    pc->duplicates =
        cs_metrics_counter(pr->metrics, "crmsync_producer_duplicates_suppressed_total",
                           "Records re-read in the overlap window and not published again", lbl);
    pc->rejected =
        cs_metrics_counter(pr->metrics, "crmsync_producer_rejected_total",
                           "Source records not publishable (sent to the errors topic)", lbl);
    pc->cursor_ms = cs_metrics_gauge(pr->metrics, "crmsync_producer_cursor_ms",
                                     "Durable cursor (source modification time, epoch ms)", lbl);
    return pc;
}

/* Writes every cursor whose document changed and waits for the reports. */
static int sync_cursors(pr_t *pr)
{
    int err, failed = 0;
    for (int i = 0; i < pr->ncursors; i++) {
        pr_cursor_t *pc = &pr->cursors[i];
        uint64_t v = cs_cursor_version(pc->c) + 1; /* 0 = never written */
        if (v == pc->written_version || pc->sent_version)
            continue;
        pc->sent_version = v;
        pc->write_state = 0;
        err = cs_cursor_send(pr->producer, pr->topics[CS_TOPIC_CURSORS], pc->c, pc, 5000);
        if (err) {
            pc->sent_version = 0;
            pc->write_state = -1;
            CS_WARN(pr->prog, "cursor %s: cannot enqueue: %s", cs_cursor_name(pc->c),
                    cs_err_str(err));
            failed = 1;
            continue;
        }
        pr->outstanding++;
    }
    if ((err = wait_outstanding(pr)))
        return err;
    for (int i = 0; i < pr->ncursors; i++) {
        pr_cursor_t *pc = &pr->cursors[i];
        if (pc->write_state < 0)
            failed = 1;
        else if (pc->written_version == cs_cursor_version(pc->c) + 1)
            cs_gauge_set(pc->cursor_ms, cs_cursor_ms(pc->c));
    }
    return failed ? CS_ERR_KAFKA : CS_OK;
}

/* ------------------------------------------------------------------ batches */

void pr_batch_begin(pr_t *pr, pr_cursor_t *cur)
{
    pr->cur = cur;
    pr->nitems = 0;
    pr->batch_records = 0;
    pr->batch_max_ms = INT64_MIN;
    pr->batch_advance = 1;
}

static void note_record(pr_t *pr, int64_t ms)
{
    if (ms != PR_TIMELESS && ms > pr->batch_max_ms)
        pr->batch_max_ms = ms;
    pr->batch_records++;
}

int pr_checkpoint(pr_t *pr)
{
    pr_cursor_t *pc = pr->cur;
    int err, failed = 0;
    if (!pc)
        return CS_OK;
    if ((err = wait_outstanding(pr)))
        return err;
    for (int i = 0; i < pr->nitems; i++) {
        pr_item_t *it = &pr->items[i];
        if (it->state == 1) {
            if (cs_cursor_mark(pc->c, it->id, it->ms, it->hash))
                failed++; /* out of memory: the cursor must not pass it */
            else if (it->event)
                cs_counter_add(pc->published, 1);
        } else {
            failed++;
        }
    }
    if (!failed && pr->batch_records > 0 && pr->batch_advance)
        cs_cursor_advance(pc->c, pr->batch_max_ms, pr->overlap_ms);
    int advance = pr->batch_advance;
    pr_batch_begin(pr, pc);
    pr->batch_advance = advance;
    if (failed) {
        CS_WARN(pr->prog, "cursor %s stays at %" PRId64 ": %d event(s) of the batch not delivered",
                cs_cursor_name(pc->c), cs_cursor_ms(pc->c), failed);
        return CS_ERR_KAFKA;
    }
    return CS_OK;
}

/* Sends one message of the batch; item is the next slot (already filled). */
static int send_item(pr_t *pr, pr_item_t *it, const char *topic, const char *key, size_t keylen,
                     const void *value, size_t len)
{
    for (;;) {
        /* the queue holds PR_BATCH_MAX messages at most per batch: a full queue means the
         * broker is slow or down; cs_producer_send serves reports while it waits */
        int err = cs_producer_send(pr->producer, topic, key, keylen, value, len, 0, it, 1000);
        if (err == CS_ERR_QUEUE_FULL && !cs_run_stopping())
            continue;
        if (err) {
            it->state = -1;
            return err;
        }
        pr->outstanding++;
        return CS_OK;
    }
}

static pr_item_t *next_item(pr_t *pr, const char *id, int64_t ms, uint64_t hash, int event,
                            int *err)
{
    pr_item_t *it;
    *err = CS_OK;
    if (pr->nitems == PR_BATCH_MAX && (*err = pr_checkpoint(pr)))
        return NULL;
    it = &pr->items[pr->nitems++];
    snprintf(it->id, sizeof(it->id), "%s", id);
    it->ms = ms;
    it->hash = hash;
    it->state = 0;
    it->event = event;
    note_record(pr, ms);
    return it;
}

int pr_publish(pr_t *pr, const char *id, int64_t ms, uint64_t hash, const char *topic,
               const char *key, size_t keylen, const void *value, size_t len)
{
    int err;
    pr_item_t *it = next_item(pr, id, ms, hash, 1, &err);
    if (!it)
        return err;
    if ((err = send_item(pr, it, topic, key, keylen, value, len)))
        CS_WARN(pr->prog, "event for record %s not sent: %s", id, cs_err_str(err));
    return err;
}

void pr_skip(pr_t *pr, int64_t ms)
{
    note_record(pr, ms);
    cs_counter_add(pr->cur->duplicates, 1);
}

int pr_reject(pr_t *pr, const char *id, int64_t ms, uint64_t hash, const char *code,
              const char *fmt, ...)
{
    char msg[512], eid[256];
    va_list ap;
    avro_value_t *v;
    const void *out;
    size_t out_len;
    int64_t now = cs_wall_ms();
    int err;
    pr_item_t *it;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    CS_WARN(pr->prog, "%s: %s (reported to %s)", code, msg, pr->topics[CS_TOPIC_ERRORS]);
    cs_counter_add(pr->cur->rejected, 1);
    if (!(it = next_item(pr, id, ms, hash, 0, &err)))
        return err;
    /* one error id per record version: a re-read of the same version rewrites the same id */
    if (ms == PR_TIMELESS)
        snprintf(eid, sizeof(eid), "input:%s:%s", cs_cursor_name(pr->cur->c), id + (*id == '!'));
    else
        snprintf(eid, sizeof(eid), "input:%s:%s:%" PRId64, cs_cursor_name(pr->cur->c), id, ms);
    if (!(v = cs_avro_encoder_value(pr->enc, CS_AVRO_SYNC_ERROR))) {
        it->state = -1;
        return CS_ERR_NOMEM;
    }
    cs_avro_set_str(v, CS_SE_ERROR_ID, eid);
    cs_avro_set_str(v, CS_SE_PROSPECT_KEY, "");
    cs_avro_set_enum(v, CS_SE_DIRECTION, CS_DIRECTION_INPUT);
    cs_avro_set_str(v, CS_SE_CODE, code);
    cs_avro_set_str(v, CS_SE_MESSAGE, msg);
    cs_avro_set_int(v, CS_SE_ATTEMPTS, 1);
    cs_avro_set_long(v, CS_SE_FIRST_AT, now);
    cs_avro_set_long(v, CS_SE_LAST_AT, now);
    if ((err = cs_avro_encode(pr->enc, v, &out, &out_len))) {
        CS_ERROR(pr->prog, "cannot encode an error record: %s", cs_avro_encoder_error(pr->enc));
        it->state = -1;
        return err;
    }
    return send_item(pr, it, pr->topics[CS_TOPIC_ERRORS], NULL, 0, out, out_len);
}

/* ------------------------------------------------------------------ helpers */

int pr_email_key(const char *email, char *out, size_t outsize)
{
    if (!email)
        return CS_ERR_PARSE;
    return cs_key_normalize_email(email, strlen(email), out, outsize);
}

int pr_api_error(pr_t *pr, int err, const char *what)
{
    const cs_http_result_t *r = cs_api_last(pr->api);
    cs_counter_add(pr->m.api_errors, 1);
    if (r->err == err && r->api_error[0])
        CS_WARN(pr->prog, "%s: %s (%s: %s %s)", what, cs_err_name(err), r->errstr, r->api_error,
                r->api_message);
    else if (r->err == err)
        CS_WARN(pr->prog, "%s: %s (%s)", what, cs_err_name(err), r->errstr);
    else
        CS_WARN(pr->prog, "%s: %s", what, cs_err_name(err));
    return err;
}

/* ------------------------------------------------------------------ setup */

static int health(void *opaque, char *reason, size_t n)
{
    pr_t *pr = opaque;
    int64_t grace = pr->interval_ms * 3 > 60000 ? pr->interval_ms * 3 : 60000;
    if (!atomic_load(&pr->loaded)) {
        snprintf(reason, n, "cursors not loaded yet (cursors topic unreadable?)");
        return 1;
    }
    int64_t since = atomic_load(&pr->waiting_since_ms);
    if (since && cs_wall_ms() - since > 30000) {
        /* librdkafka retries until message.timeout.ms: the broker is unreachable meanwhile */
        snprintf(reason, n, "%d message(s) unacknowledged by the broker for %lld s",
                 atomic_load(&pr->waiting_for), (long long)((cs_wall_ms() - since) / 1000));
        return 1;
    }
    if (atomic_load(&pr->failures) > 0 && cs_wall_ms() - atomic_load(&pr->last_ok_ms) > grace) {
        snprintf(reason, n, "%d consecutive polls failed (API or broker unreachable)",
                 atomic_load(&pr->failures));
        return 1;
    }
    return 0;
}

static int parse_initial(const char *s, int64_t *out)
{
    if (!strcmp(s, "earliest")) {
        *out = 0;
        return CS_OK;
    }
    if (!strcmp(s, "now")) {
        *out = cs_wall_ms();
        return CS_OK;
    }
    return cs_time_parse_iso8601(s, out);
}

int pr_init(pr_t *pr, const char *prog, const char *program_name, const char *usage,
            const cs_opt_t *prog_opts, int argc, char **argv, int *exit_code)
{
    char errstr[512];
    int err;
    const char *km;
    static const double poll_bounds[] = {5,   10,   25,   50,   100,   250,
                                         500, 1000, 2500, 5000, 10000, 30000};

    memset(pr, 0, sizeof(*pr));
    pr->prog = prog;
    *exit_code = 1;
    pr->conf = cs_conf_new(program_name, usage, prog_opts);
    if (!pr->conf || cs_conf_add_opts(pr->conf, pr_opts) ||
        cs_conf_add_opts(pr->conf, cs_topics_opts) || cs_conf_add_opts(pr->conf, cs_api_opts) ||
        cs_conf_add_opts(pr->conf, cs_fields_opts)) {
        fprintf(stderr, "%s: out of memory\n", program_name);
        return CS_ERR_NOMEM;
    }
    cs_conf_set_check(pr->conf, cs_kafka_check_conf);
    err = cs_conf_from_args(pr->conf, argc, argv, NULL, errstr, sizeof(errstr));
    if (err) {
        if (err < 0)
            fprintf(stderr, "%s: %s\n", program_name, errstr);
        *exit_code = err < 0 ? 2 : 0;
        return err;
    }
    cs_run_install_signals();

    *exit_code = 2; /* configuration errors from here on */
    km = cs_conf_str(pr->conf, "prospect.key");
    if (!strcmp(km, "email")) {
        pr->key_mode = PR_KEY_EMAIL;
    } else if (!strcmp(km, "id")) {
        pr->key_mode = PR_KEY_ID;
    } else {
        CS_ERROR(prog, "prospect.key: expected email or id, not \"%s\"", km);
        return CS_ERR_CONFIG;
    }
    if (parse_initial(cs_conf_str(pr->conf, "cursor.initial"), &pr->initial_ms)) {
        CS_ERROR(prog, "cursor.initial: expected earliest, now or an ISO-8601 time, not \"%s\"",
                 cs_conf_str(pr->conf, "cursor.initial"));
        return CS_ERR_CONFIG;
    }
    for (int t = 0; t < CS_TOPIC_COUNT_; t++)
        pr->topics[t] = cs_topic_name(pr->conf, (cs_topic_id_t)t);
    pr->interval_ms = cs_conf_int(pr->conf, "poll.interval.ms");
    pr->overlap_ms = cs_conf_int(pr->conf, "overlap.ms");
    pr->shutdown_timeout_ms = cs_conf_int(pr->conf, "shutdown.timeout.ms");
    cs_backoff_init(&pr->backoff);
    pr->backoff.base_ms = cs_conf_int(pr->conf, "retry.backoff.ms");
    pr->backoff.max_ms = cs_conf_int(pr->conf, "retry.backoff.max.ms");
    pr->backoff.rate_base_ms = cs_conf_int(pr->conf, "retry.rate_limit.backoff.ms");
    pr->backoff.rate_max_ms = cs_conf_int(pr->conf, "retry.rate_limit.backoff.max.ms");

    *exit_code = 1;
    if (!(pr->metrics = cs_metrics_new()))
        return CS_ERR_NOMEM;
    {
        char lbl[64];
        snprintf(lbl, sizeof(lbl), "producer=\"%s\",outcome=\"ok\"", prog);
        pr->m.polls_ok = cs_metrics_counter(pr->metrics, "crmsync_producer_polls_total",
                                            "Polls of the source, by outcome", lbl);
        snprintf(lbl, sizeof(lbl), "producer=\"%s\",outcome=\"failed\"", prog);
        pr->m.polls_failed = cs_metrics_counter(pr->metrics, "crmsync_producer_polls_total",
                                                "Polls of the source, by outcome", lbl);
        snprintf(lbl, sizeof(lbl), "producer=\"%s\"", prog);
        pr->m.api_errors = cs_metrics_counter(pr->metrics, "crmsync_producer_api_errors_total",
                                              "Failed source API calls (backed off)", lbl);
        pr->m.delivery_failures = cs_metrics_counter(
            pr->metrics, "crmsync_producer_delivery_failures_total",
            "Messages the broker did not acknowledge (the cursor did not move)", lbl);
        pr->m.last_ok = cs_metrics_gauge(pr->metrics, "crmsync_producer_last_success_ms",
                                         "Wall time of the last successful poll (epoch ms)", lbl);
        pr->m.poll_ms = cs_metrics_histogram(pr->metrics, "crmsync_producer_poll_duration_ms",
                                             "Duration of one poll, milliseconds", lbl, poll_bounds,
                                             sizeof(poll_bounds) / sizeof(*poll_bounds));
    }
    if (!(pr->reg = cs_avro_registry_new(errstr, sizeof(errstr))) ||
        !(pr->enc = cs_avro_encoder_new(pr->reg, CS_AVRO_SINGLE_OBJECT))) {
        CS_ERROR(prog, "Avro setup: %s", pr->reg ? "out of memory" : errstr);
        return CS_ERR_AVRO;
    }
    if (!(pr->api = cs_api_new(pr->conf, pr->metrics, errstr, sizeof(errstr)))) {
        CS_ERROR(prog, "API setup: %s", errstr);
        *exit_code = 2;
        return CS_ERR_CONFIG;
    }
    if (!(pr->producer = cs_producer_new(pr->conf, on_delivery, pr, errstr, sizeof(errstr)))) {
        CS_ERROR(prog, "Kafka producer: %s", errstr);
        *exit_code = 2;
        return CS_ERR_CONFIG;
    }
    if (cs_conf_int(pr->conf, "http.port") >= 0) {
        cs_httpd_opts_t ho;
        memset(&ho, 0, sizeof(ho));
        ho.bind = cs_conf_str(pr->conf, "http.bind");
        ho.port = (int)cs_conf_int(pr->conf, "http.port");
        ho.metrics = pr->metrics;
        ho.health = health;
        ho.health_opaque = pr;
        if (!(pr->httpd = cs_httpd_new(&ho, errstr, sizeof(errstr)))) {
            CS_ERROR(prog, "HTTP server: %s", errstr);
            return CS_ERR_IO;
        }
        CS_INFO(prog, "metrics on http://%s:%d/metrics", ho.bind, cs_httpd_port(pr->httpd));
    }
    *exit_code = 0;
    return CS_OK;
}

void pr_destroy(pr_t *pr)
{
    cs_httpd_destroy(pr->httpd); /* first: /healthz reads pr */
    pr->httpd = NULL;
    cs_producer_destroy(pr->producer); /* may still serve reports into pr->items */
    pr->producer = NULL;
    for (int i = 0; i < pr->ncursors; i++)
        cs_cursor_destroy(pr->cursors[i].c);
    pr->ncursors = 0;
    cs_api_destroy(pr->api);
    cs_avro_encoder_destroy(pr->enc);
    cs_avro_registry_destroy(pr->reg);
    cs_metrics_destroy(pr->metrics);
    cs_conf_destroy(pr->conf);
    memset(pr, 0, sizeof(*pr));
}

/* ------------------------------------------------------------------ the loop */

static int load_cursors(pr_t *pr)
{
    cs_cursor_t *cs[PR_MAX_CURSORS];
    char errstr[512], when[40];
    int timeout = (int)cs_conf_int(pr->conf, "cursor.load.timeout.ms");
    for (int i = 0; i < pr->ncursors; i++)
        cs[i] = pr->cursors[i].c;
    cs_backoff_reset(&pr->backoff);
    for (;;) {
        int err = cs_cursor_load(pr->conf, pr->topics[CS_TOPIC_CURSORS], cs, (size_t)pr->ncursors,
                                 timeout, errstr, sizeof(errstr));
        if (!err)
            break;
        if (err == CS_ERR_SHUTDOWN || cs_run_stopping())
            return CS_ERR_SHUTDOWN;
        int64_t wait = cs_backoff_next(&pr->backoff, CS_ERR_TIMEOUT, -1);
        CS_WARN(pr->prog, "cannot read the cursors (%s); retrying in %" PRId64 " ms", errstr, wait);
        cs_run_sleep_ms(wait);
        if (cs_run_stopping())
            return CS_ERR_SHUTDOWN;
    }
    cs_backoff_reset(&pr->backoff);
    for (int i = 0; i < pr->ncursors; i++) {
        pr_cursor_t *pc = &pr->cursors[i];
        cs_time_format_iso8601(cs_cursor_ms(pc->c), CS_TIME_FMT_MS, when, sizeof(when));
        if (cs_cursor_loaded(pc->c)) {
            CS_INFO(pr->prog, "cursor %s resumes at %s (%zu record(s) at the cursor)",
                    cs_cursor_name(pc->c), when, cs_cursor_ids_at_cursor(pc->c));
            pc->written_version = cs_cursor_version(pc->c) + 1;
        } else {
            /* written_version 0: the first round writes this starting point, so a restart
             * before the cursor first moves resumes here, not at a later "now" (a deletion
             * between the two would be missed) */
            CS_INFO(pr->prog, "cursor %s: no durable value, starting at %s", cs_cursor_name(pc->c),
                    when);
        }
        cs_gauge_set(pc->cursor_ms, cs_cursor_ms(pc->c));
    }
    atomic_store(&pr->loaded, 1);
    return CS_OK;
}

int pr_run(pr_t *pr, pr_poll_fn poll, void *opaque)
{
    int rc = 0, err;
    atomic_store(&pr->last_ok_ms, cs_wall_ms());
    if (load_cursors(pr) == CS_OK) {
        while (!cs_run_stopping()) {
            int64_t t0 = cs_now_ms(), elapsed, wait;
            err = poll(pr, opaque);
            /* a poll may end in the middle of a batch (an API error on page n): what was sent
             * is still checkpointed, so the next poll starts after it */
            int cerr = pr_checkpoint(pr);
            if (!err)
                err = cerr;
            pr->cur = NULL;
            cerr = sync_cursors(pr);
            if (!err)
                err = cerr;
            elapsed = cs_now_ms() - t0;
            cs_hist_observe(pr->m.poll_ms, (double)elapsed);
            if (err == CS_ERR_SHUTDOWN || err == CS_ERR_KAFKA_FATAL) {
                if (err == CS_ERR_KAFKA_FATAL) {
                    CS_ERROR(pr->prog, "fatal Kafka producer error: stopping");
                    rc = 1;
                }
                break;
            }
            if (err) {
                const cs_http_result_t *r = cs_api_last(pr->api);
                cs_counter_add(pr->m.polls_failed, 1);
                atomic_fetch_add(&pr->failures, 1);
                wait = cs_backoff_next(&pr->backoff, err, r->err == err ? r->retry_after_s : -1);
                if (wait < 0) /* FATAL class (a rejected query, bad data): keep trying, slowly */
                    wait = cs_backoff_next(&pr->backoff, CS_ERR_TIMEOUT, -1);
                if (wait < 0)
                    wait = pr->backoff.max_ms;
                CS_WARN(pr->prog, "poll failed (%s); retrying in %" PRId64 " ms", cs_err_name(err),
                        wait);
            } else {
                cs_counter_add(pr->m.polls_ok, 1);
                atomic_store(&pr->failures, 0);
                atomic_store(&pr->last_ok_ms, cs_wall_ms());
                cs_gauge_set(pr->m.last_ok, cs_wall_ms());
                cs_backoff_reset(&pr->backoff);
                wait = pr->interval_ms - elapsed;
            }
            if (wait > 0)
                cs_run_sleep_ms(wait);
        }
    }

    /* Drain: what is in flight is delivered (or the deadline passes), then the cursors are
     * written behind it. Nothing is acknowledged that was not delivered. */
    CS_INFO(pr->prog, "stopping: draining %d outstanding message(s)", pr->outstanding);
    err = pr_checkpoint(pr);
    pr->cur = NULL;
    if (!err)
        err = sync_cursors(pr);
    if (err && err != CS_ERR_SHUTDOWN) /* one more try: a transient failure of the last poll */
        err = sync_cursors(pr);
    if (err || pr->outstanding > 0) {
        CS_WARN(pr->prog,
                "stopped with undelivered messages or an unwritten cursor (%s): the "
                "next start resumes from the last durable cursor",
                cs_err_name(err));
        rc = 1;
    } else {
        CS_INFO(pr->prog, "stopped cleanly: every event delivered, cursors written");
    }
    return rc;
}
