/* The optional pull of the marketing API's visitor activities (see act.h, docs/PRODUCERS.md).
 *
 * Every pull.interval.ms: GET visitor-activities created at or after (cursor - overlap),
 * ordered by createdAt then id, following nextPageUrl. Per page: activities already handled
 * (cs_cursor_seen) are skipped; the rest are keyed (the prospect's e-mail, fetched with
 * GET prospects/{id}?fields=email through a small cache, or the prospect id with
 * prospect.key=id), sent, and waited for; only when every delivery report of the page is in
 * are they marked handled, the cursor moved to the page's newest createdAt, and the cursor
 * written to topic.cursors (key pull.cursor_name) and its delivery awaited. A failure stops
 * the poll without moving the cursor; the next poll re-reads from the same place, and the
 * handled set keeps delivered activities from being sent twice.
 *
 * Activities that cannot be keyed (anonymous visitors without a prospect, prospects deleted
 * or without an e-mail) are skipped, counted in crmsync_activity_pull_skipped_total{reason}
 * and summarised in the log: they cannot trigger a sync of anyone. */
#include "act.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_COMP "activity-pull"
#define CACHE_TTL_MS (10 * 60 * 1000)
#define FIELDS "id,type,prospectId,emailId,listEmailId,formId,formHandlerId,landingPageId,createdAt"

enum { SK_ANONYMOUS, SK_NOT_FOUND, SK_NO_EMAIL, SK_MALFORMED, SK_COUNT_ };
static const char *const sk_names[SK_COUNT_] = {"anonymous", "prospect_not_found",
                                                "prospect_without_email", "malformed"};

typedef struct cache_ent_s {
    int64_t id; /* 0 = empty */
    int64_t at;
    char email[ACT_KEY_MAX];
} cache_ent_t;

struct act_pull_s {
    int enabled;
    cs_api_t *api;
    cs_cursor_t *cursor;
    int loaded;
    int64_t interval_ms, overlap_ms, next_ms, load_timeout_ms;
    size_t page;
    cs_backoff_t backoff;
    cache_ent_t *cache;
    size_t ncache;
    uint64_t written_version;
    struct {
        cs_counter_t *ok, *failed, *skipped[SK_COUNT_];
        cs_gauge_t *cursor_ms;
    } m;
};

int act_pull_init(act_t *a, char *errstr, size_t n)
{
    act_pull_t *p = calloc(1, sizeof(*p));
    const char *initial = cs_conf_str(a->conf, "pull.initial");
    int64_t initial_ms = 0;
    if (!p)
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    a->pull = p;
    p->enabled = cs_conf_bool(a->conf, "pull.enabled");
    if (!p->enabled)
        return CS_OK;
    if (!strcmp(initial, "earliest"))
        initial_ms = 0;
    else if (!strcmp(initial, "now"))
        initial_ms = cs_wall_ms();
    else if (cs_time_parse_iso8601(initial, &initial_ms) != CS_OK)
        return cs_err_set(errstr, n, CS_ERR_CONFIG,
                          "pull.initial: \"%s\" is not earliest, now or an ISO-8601 time", initial);
    p->interval_ms = cs_conf_int(a->conf, "pull.interval.ms");
    p->overlap_ms = cs_conf_int(a->conf, "pull.overlap.ms");
    p->page = (size_t)cs_conf_int(a->conf, "pull.page_size");
    p->load_timeout_ms = cs_conf_int(a->conf, "pull.cursor_load.timeout.ms");
    p->ncache = (size_t)cs_conf_int(a->conf, "pull.prospect_cache");
    if (p->ncache && !(p->cache = calloc(p->ncache, sizeof(*p->cache))))
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    if (!(p->cursor = cs_cursor_new(cs_conf_str(a->conf, "pull.cursor_name"), initial_ms)))
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    if (!(p->api = cs_api_new(a->conf, a->metrics, errstr, n)))
        return CS_ERR_CONFIG;
    cs_backoff_init(&p->backoff);
    p->m.ok = cs_metrics_counter(a->metrics, "crmsync_activity_pull_polls_total",
                                 "Polls of visitor-activities", "outcome=\"ok\"");
    p->m.failed = cs_metrics_counter(a->metrics, "crmsync_activity_pull_polls_total",
                                     "Polls of visitor-activities", "outcome=\"failed\"");
    for (int i = 0; i < SK_COUNT_; i++) {
        char lbl[64];
        snprintf(lbl, sizeof(lbl), "reason=\"%s\"", sk_names[i]);
        p->m.skipped[i] =
            cs_metrics_counter(a->metrics, "crmsync_activity_pull_skipped_total",
                               "Pulled activities that could not be keyed, by reason", lbl);
    }
    p->m.cursor_ms = cs_metrics_gauge(a->metrics, "crmsync_activity_pull_cursor_ms",
                                      "Cursor of the pull (createdAt, epoch ms)", NULL);
    CS_INFO(LOG_COMP, "pulling visitor-activities every %" PRId64 " ms (cursor \"%s\" in %s)",
            p->interval_ms, cs_cursor_name(p->cursor), a->cursors_topic);
    return CS_OK;
}

void act_pull_destroy(act_t *a)
{
    act_pull_t *p = a->pull;
    if (!p)
        return;
    cs_api_destroy(p->api);
    cs_cursor_destroy(p->cursor);
    free(p->cache);
    free(p);
    a->pull = NULL;
}

/* The ActivityType of a v5 visitor activity: the type code plus which asset id is set. */
static int map_type(json_t *v)
{
#define HAS(k) (json_integer_value(json_object_get(v, k)) != 0)
    switch (json_integer_value(json_object_get(v, "type"))) {
    case 4: /* Success */
        return HAS("formId")          ? CS_ACTIVITY_FORM
               : HAS("formHandlerId") ? CS_ACTIVITY_FORM_HANDLER
               : HAS("landingPageId") ? CS_ACTIVITY_LANDING_PAGE
                                      : CS_ACTIVITY_OTHER;
    case 1: /* Click */
        return HAS("emailId") || HAS("listEmailId") ? CS_ACTIVITY_EMAIL_CLICK
                                                    : CS_ACTIVITY_TRACKED_LINK_CLICK;
    case 2:
        return CS_ACTIVITY_PAGE_VIEW;
    case 11:
        return CS_ACTIVITY_EMAIL_OPEN;
    case 6:
        return CS_ACTIVITY_EMAIL_SEND;
    case 12:
        return CS_ACTIVITY_UNSUBSCRIBE;
    case 20:
        return CS_ACTIVITY_VISITOR_SESSION;
    default:
        return CS_ACTIVITY_OTHER;
    }
#undef HAS
}

/* The prospect's e-mail: from the cache, else GET prospects/{id}?fields=email. Returns
 * CS_OK with email filled, CS_ERR_NOT_FOUND (deleted, or no usable e-mail: *no_email set),
 * or the API error. */
static int prospect_email(act_pull_t *p, int64_t id, char *email, size_t n, int *no_email)
{
    cache_ent_t *c = p->ncache ? &p->cache[(uint64_t)id % p->ncache] : NULL;
    int64_t now = cs_now_ms();
    json_t *out = NULL;
    *no_email = 0;
    if (c && c->id == id && now - c->at < CACHE_TTL_MS) {
        snprintf(email, n, "%s", c->email);
        return CS_OK;
    }
    int err = cs_api_mkt_get(p->api, id, "email", &out);
    if (err)
        return err;
    const char *e = json_string_value(json_object_get(out, "email"));
    if (!e || !*e || strlen(e) >= n) {
        json_decref(out);
        *no_email = 1;
        return CS_ERR_NOT_FOUND;
    }
    snprintf(email, n, "%s", e);
    json_decref(out);
    if (c) {
        c->id = id;
        c->at = now;
        snprintf(c->email, sizeof(c->email), "%s", email);
    }
    return CS_OK;
}

typedef struct page_s {
    act_event_t *ev;
    act_entry_t **entries;
    char (*ids)[32];
    int64_t *ms;
    unsigned char *skipped; /* 1: handled without sending (cannot be keyed) */
    size_t n;
} page_t;

/* Writes the cursor and waits for its delivery report. */
static int write_cursor(act_t *a, act_pull_t *p)
{
    act_entry_t *e;
    int dup;
    act_outcome_t oc;
    if (cs_cursor_version(p->cursor) == p->written_version)
        return CS_OK;
    if (act_tracker_claim(a->tracker, NULL, &e, &dup))
        return CS_ERR_NOMEM;
    uint64_t version = cs_cursor_version(p->cursor);
    int err =
        cs_cursor_send(a->producer, a->cursors_topic, p->cursor, e, (int)a->delivery_timeout_ms);
    if (err)
        act_tracker_resolve(a->tracker, e, err);
    act_tracker_wait(a->tracker, &e, 1, cs_now_ms() + a->delivery_timeout_ms + 1000, &oc);
    act_tracker_release(a->tracker, &e, 1);
    if (oc.delivered != 1) {
        CS_WARN(LOG_COMP, "cursor write to %s not delivered: retrying at the next poll",
                a->cursors_topic);
        return err ? err : CS_ERR_KAFKA;
    }
    p->written_version = version;
    cs_gauge_set(p->m.cursor_ms, cs_cursor_ms(p->cursor));
    return CS_OK;
}

/* Handles one page of values. Returns CS_OK or the error that stops the poll. */
static int handle_page(act_t *a, act_pull_t *p, json_t *values, page_t *pg, uint64_t *published,
                       uint64_t skipped[SK_COUNT_])
{
    size_t i;
    json_t *v;
    int64_t max_ms = 0;
    int err = CS_OK;

    pg->n = 0;
    json_array_foreach(values, i, v)
    {
        if (cs_run_stopping())
            return CS_ERR_SHUTDOWN;
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        const char *created = json_string_value(json_object_get(v, "createdAt"));
        int64_t ms;
        if (id <= 0 || !created || cs_time_parse_iso8601(created, &ms) != CS_OK) {
            CS_WARN(LOG_COMP, "visitor activity without a usable id/createdAt: skipped");
            skipped[SK_MALFORMED]++;
            continue;
        }
        char idstr[32];
        snprintf(idstr, sizeof(idstr), "%" JSON_INTEGER_FORMAT, id);
        if (ms > max_ms)
            max_ms = ms;
        if (cs_cursor_seen(p->cursor, idstr, ms, 0))
            continue;
        size_t k = pg->n++;
        snprintf(pg->ids[k], sizeof(pg->ids[k]), "%s", idstr);
        pg->ms[k] = ms;
        pg->entries[k] = NULL;
        pg->skipped[k] = 1; /* until sent */
        act_event_t *ev = &pg->ev[k];
        memset(ev, 0, sizeof(*ev));
        json_int_t pid = json_integer_value(json_object_get(v, "prospectId"));
        if (pid <= 0) {
            skipped[SK_ANONYMOUS]++;
            continue;
        }
        snprintf(ev->id, sizeof(ev->id), "mkt-activity:%s", idstr);
        ev->prospect_id = pid;
        ev->type = map_type(v);
        ev->identified = 1;
        ev->occurred_at = ms;
        ev->source_activity_id = id;
        if (a->key_mode == ACT_KEY_ID) {
            snprintf(ev->key, sizeof(ev->key), "%" JSON_INTEGER_FORMAT, pid);
        } else {
            int no_email = 0;
            err = prospect_email(p, pid, ev->email, sizeof(ev->email), &no_email);
            if (err == CS_ERR_NOT_FOUND) {
                skipped[no_email ? SK_NO_EMAIL : SK_NOT_FOUND]++;
                err = CS_OK;
                continue;
            }
            if (err) {
                CS_WARN(LOG_COMP, "cannot read prospect %" JSON_INTEGER_FORMAT ": %s", pid,
                        cs_err_str(err));
                pg->skipped[k] = 0;
                break;
            }
            if (cs_key_normalize_email(ev->email, strlen(ev->email), ev->key, sizeof(ev->key)) <=
                0) {
                skipped[SK_NO_EMAIL]++;
                continue;
            }
        }
        int dup;
        pg->skipped[k] = 0;
        if (act_tracker_claim(a->tracker, NULL, &pg->entries[k], &dup)) {
            err = CS_ERR_NOMEM;
            break;
        }
        if ((err = act_send(a, ev, pg->entries[k], (int)a->delivery_timeout_ms)))
            break;
    }

    /* every report in before anything is marked handled */
    act_outcome_t oc;
    size_t sent = 0;
    for (size_t k = 0; k < pg->n; k++)
        sent += pg->entries[k] != NULL;
    act_tracker_wait(a->tracker, pg->entries, pg->n, cs_now_ms() + a->delivery_timeout_ms + 1000,
                     &oc);
    /* handled: delivered, or deliberately skipped (not the one an error stopped at) */
    for (size_t k = 0; k < pg->n; k++)
        if (pg->entries[k] ? act_tracker_state(a->tracker, pg->entries[k]) == ACT_DELIVERED
                           : pg->skipped[k])
            cs_cursor_mark(p->cursor, pg->ids[k], pg->ms[k], 0);
    act_tracker_release(a->tracker, pg->entries, pg->n);
    *published += oc.delivered;
    cs_counter_add(a->m.published_pull, oc.delivered);
    if (err)
        return err;
    if (oc.delivered != sent) {
        CS_WARN(LOG_COMP, "%zu of %zu pulled activities not delivered: the cursor stays",
                sent - oc.delivered, sent);
        return CS_ERR_KAFKA;
    }
    if (max_ms > 0)
        cs_cursor_advance(p->cursor, max_ms, p->overlap_ms);
    return write_cursor(a, p);
}

static int poll_once(act_t *a, act_pull_t *p)
{
    char from[40], url[4096];
    json_t *body = NULL;
    page_t pg;
    uint64_t published = 0, skipped[SK_COUNT_] = {0};
    int err = CS_OK, pages = 0;

    if (cs_time_format_iso8601(cs_cursor_query_from(p->cursor, p->overlap_ms), CS_TIME_FMT_MS, from,
                               sizeof(from)) != CS_OK)
        return CS_ERR_INVAL;
    snprintf(url, sizeof(url),
             "objects/visitor-activities?fields=" FIELDS
             "&createdAtAfterOrEqualTo=%s&orderBy=createdAt,id&limit=%zu",
             from, p->page);
    pg.ev = malloc(1000 * sizeof(*pg.ev));
    pg.entries = calloc(1000, sizeof(*pg.entries));
    pg.ids = malloc(1000 * sizeof(*pg.ids));
    pg.ms = malloc(1000 * sizeof(*pg.ms));
    pg.skipped = malloc(1000);
    if (!pg.ev || !pg.entries || !pg.ids || !pg.ms || !pg.skipped) {
        err = CS_ERR_NOMEM;
        goto out;
    }
    while (url[0] && !cs_run_stopping()) {
        json_decref(body);
        body = NULL;
        if ((err = cs_api_mkt_get_path(p->api, url, &body))) {
            const cs_http_result_t *r = cs_api_last(p->api);
            CS_WARN(LOG_COMP, "GET visitor-activities failed: %s (%s%s%s)", cs_err_str(err),
                    r->errstr, r->api_message[0] ? ": " : "", r->api_message);
            goto out;
        }
        json_t *values = json_object_get(body, "values");
        if (!json_is_array(values) || json_array_size(values) > 1000) {
            CS_WARN(LOG_COMP, "visitor-activities answer without a values array of <= 1000");
            err = CS_ERR_PARSE;
            goto out;
        }
        pages++;
        if ((err = handle_page(a, p, values, &pg, &published, skipped)))
            goto out;
        /* copied: the body it points into is freed before the next request */
        const char *next = json_string_value(json_object_get(body, "nextPageUrl"));
        if (next && strlen(next) >= sizeof(url)) {
            CS_WARN(LOG_COMP, "nextPageUrl longer than %zu bytes", sizeof(url) - 1);
            err = CS_ERR_TOO_LARGE;
            goto out;
        }
        snprintf(url, sizeof(url), "%s", next ? next : "");
    }
out:
    json_decref(body);
    free(pg.ev);
    free(pg.entries);
    free(pg.ids);
    free(pg.ms);
    free(pg.skipped);
    uint64_t nskipped = 0;
    for (int i = 0; i < SK_COUNT_; i++) {
        cs_counter_add(p->m.skipped[i], skipped[i]);
        nskipped += skipped[i];
    }
    if (published || nskipped)
        CS_INFO(LOG_COMP,
                "poll: %d page(s), %" PRIu64 " published, %" PRIu64 " skipped (anonymous %" PRIu64
                ", prospect not found %" PRIu64 ", without e-mail %" PRIu64 ", malformed %" PRIu64
                ")",
                pages, published, nskipped, skipped[SK_ANONYMOUS], skipped[SK_NOT_FOUND],
                skipped[SK_NO_EMAIL], skipped[SK_MALFORMED]);
    return err;
}

void act_pull_step(act_t *a)
{
    act_pull_t *p = a->pull;
    char errstr[512];
    int err;
    if (!p || !p->enabled) {
        cs_run_sleep_ms(500);
        return;
    }
    int64_t now = cs_now_ms();
    if (now < p->next_ms) {
        cs_run_sleep_ms(p->next_ms - now < 500 ? p->next_ms - now : 500);
        return;
    }
    if (!p->loaded) {
        cs_cursor_t *cs[1] = {p->cursor};
        err = cs_cursor_load(a->conf, a->cursors_topic, cs, 1, (int)p->load_timeout_ms, errstr,
                             sizeof(errstr));
        if (err) {
            int64_t wait =
                cs_backoff_next(&p->backoff, err == CS_ERR_NOT_FOUND ? CS_ERR_KAFKA : err, -1);
            CS_WARN(LOG_COMP, "cannot read the pull cursor (%s): retrying in %" PRId64 " ms",
                    errstr, wait < 0 ? 1000 : wait);
            p->next_ms = cs_now_ms() + (wait < 0 ? 1000 : wait);
            return;
        }
        p->loaded = 1;
        p->written_version = cs_cursor_version(p->cursor);
        cs_backoff_reset(&p->backoff);
        char iso[40] = "";
        cs_time_format_iso8601(cs_cursor_ms(p->cursor), CS_TIME_FMT_MS, iso, sizeof(iso));
        CS_INFO(LOG_COMP, "%s cursor at %s", cs_cursor_loaded(p->cursor) ? "resumed" : "new", iso);
    }
    if (atomic_load(&a->kafka_down)) {
        p->next_ms = cs_now_ms() + 1000; /* nothing could be delivered now */
        return;
    }
    err = poll_once(a, p);
    if (err == CS_ERR_SHUTDOWN || cs_run_stopping())
        return;
    if (err) {
        cs_counter_add(p->m.failed, 1);
        const cs_http_result_t *r = cs_api_last(p->api);
        int64_t wait = cs_backoff_next(&p->backoff, err, r ? r->retry_after_s : -1);
        if (wait < 0)
            wait = p->interval_ms;
        p->next_ms = cs_now_ms() + wait;
        CS_WARN(LOG_COMP, "poll failed (%s): next try in %" PRId64 " ms", cs_err_str(err), wait);
        return;
    }
    cs_counter_add(p->m.ok, 1);
    cs_backoff_reset(&p->backoff);
    p->next_ms = cs_now_ms() + p->interval_ms;
}
