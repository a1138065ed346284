/* The replica's admin endpoints (/status, /queue, /prospect), served by the HTTP threads
 * but answered by the consumer thread: a request is handed over under a mutex, the loop
 * builds the JSON between two polls (sc_inspect_serve), and the HTTP thread waits for it.
 * No state is read from another thread, and the hot path pays one unlocked flag check. */
#include "sync.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { INS_NONE = 0, INS_STATUS, INS_QUEUE, INS_PROSPECT } ins_kind_t;

static pthread_mutex_t ins_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ins_cond = PTHREAD_COND_INITIALIZER;
static atomic_int ins_pending;
static ins_kind_t ins_kind;
static char ins_key[512];
static int ins_limit;
static json_t *ins_answer;
static int ins_status;

static const char *const wait_text[] = {
    [CS_WAIT_NONE] = "",
    [CS_WAIT_UNASSIGNED] = "unassigned and no matching contact or lead",
    [CS_WAIT_NO_EMAIL] = "waiting for an email",
    [CS_WAIT_NO_PROSPECT] = "no prospect and auto_create_prospects is off",
    [CS_WAIT_ERROR] = "gave up after an error (see errors; retry with crmsync-admin)",
    [CS_WAIT_DO_NOT_SYNC] = "do-not-sync",
};

static const char *wait_reason(unsigned w)
{
    return w < sizeof(wait_text) / sizeof(*wait_text) ? wait_text[w] : "";
}

static json_t *fields_mask(const sc_t *sc, uint32_t mask)
{
    json_t *a = json_array();
    for (int f = 0; f < sc->fm.n; f++)
        if (mask & (1u << f))
            json_array_append_new(a, json_string(sc->fm.f[f].name));
    return a;
}

/* Why a queued entry has not been pushed yet. */
static const char *entry_reason(const sc_t *sc, const cs_qentry_t *x, int64_t now)
{
    switch (x->list) {
    case CS_QL_RETRY:
        return "backing off after an error";
    case CS_QL_INFLIGHT:
        return "in a batch being pushed";
    case CS_QL_HELD:
        return "CRM change held for the prospect's snapshot";
    case CS_QL_PRIO:
        return now < sc->hold_until ? "sync-now, API backing off" : "sync-now";
    default:
        if (sc->paused)
            return "paused";
        if (now < sc->hold_until)
            return "API backing off (batch-level error)";
        return "linger (batch filling)";
    }
}

static json_t *entry_json(const sc_t *sc, uint32_t e, int64_t now, int values)
{
    const cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
    const cs_pstate_t *p = cs_store_at(sc->sync.store, x->state);
    size_t klen;
    const char *key = cs_store_key(sc->sync.store, x->state, &klen);
    json_t *o = json_object();
    json_object_set_new(o, "key", json_stringn(key, klen));
    json_object_set_new(o, "waiting_ms", json_integer(now - x->enqueued_ms));
    json_object_set_new(o, "reason", json_string(entry_reason(sc, x, now)));
    json_object_set_new(o, "sync_now", json_boolean(x->sync_now));
    json_object_set_new(o, "attempts", json_integer(x->attempts));
    if (x->last_error[0])
        json_object_set_new(o, "last_error", json_string(x->last_error));
    json_object_set_new(o, "to_crm", fields_mask(sc, p->dirty_crm));
    json_object_set_new(o, "to_marketing", fields_mask(sc, p->dirty_mkt));
    if (values) {
        json_t *v = json_object();
        for (int f = 0; f < sc->fm.n; f++) {
            size_t len;
            const char *val;
            if (!(x->has_value & (1u << f)))
                continue;
            val = cs_queue_value(sc->sync.queue, e, f, &len);
            json_object_set_new(v, sc->fm.f[f].name, val ? json_stringn(val, len) : json_null());
        }
        json_object_set_new(o, "pending_values", v);
    }
    return o;
}

static json_t *build_status(sc_t *sc)
{
    json_t *o = json_object(), *parts = json_array();
    static const char *const kinds[3] = {"prospect", "activity", "crm"};
    for (int part = 0; part < sc->nparts; part++) {
        json_t *pj;
        if (!sc->owned[part])
            continue;
        pj = json_pack("{s:i}", "partition", part);
        for (int k = 0; k < 3; k++)
            json_object_set_new(pj, kinds[k],
                                json_pack("{s:I, s:I}", "next_offset",
                                          (json_int_t)sc->next_offset[k * sc->nparts + part],
                                          "committed",
                                          (json_int_t)sc->stored[k * sc->nparts + part]));
        json_array_append_new(parts, pj);
    }
    json_object_set_new(o, "group", json_string(cs_conf_str(sc->conf, "group.id")));
    json_object_set_new(o, "paused", json_boolean(sc->paused));
    json_object_set_new(o, "queue_depth", json_integer((json_int_t)cs_queue_total(sc->sync.queue)));
    json_object_set_new(o, "queue_retry",
                        json_integer((json_int_t)cs_queue_len(sc->sync.queue, CS_QL_RETRY)));
    json_object_set_new(o, "prospects", json_integer((json_int_t)cs_store_count(sc->sync.store)));
    json_object_set_new(o, "state_bytes", json_integer((json_int_t)cs_store_bytes(sc->sync.store)));
    json_object_set_new(o, "errors", json_integer((json_int_t)cs_counter_get(sc->m.record_errors)));
    json_object_set_new(
        o, "api_backoff_ms",
        json_integer(sc->hold_until > cs_now_ms() ? sc->hold_until - cs_now_ms() : 0));
    json_object_set_new(o, "partitions", parts);
    return o;
}

static json_t *build_queue(sc_t *sc, int limit)
{
    static const cs_qlist_t lists[] = {CS_QL_PRIO, CS_QL_INFLIGHT, CS_QL_READY, CS_QL_RETRY,
                                       CS_QL_HELD};
    json_t *o = json_object(), *entries = json_array(), *parked = json_array();
    int64_t now = cs_now_ms();
    int n = 0;
    for (size_t li = 0; li < sizeof(lists) / sizeof(*lists); li++)
        for (uint32_t e = cs_queue_first(sc->sync.queue, lists[li]); e != CS_NONE && n < limit;
             e = cs_queue_next(sc->sync.queue, e), n++)
            json_array_append_new(entries, entry_json(sc, e, now, 0));
    /* Parked prospects hold no queue entry; the admin view lists them as waiting too. */
    n = 0;
    for (uint32_t st = 0; st < cs_store_count(sc->sync.store) && n < limit; st++) {
        const cs_pstate_t *p = cs_store_at(sc->sync.store, st);
        size_t klen;
        const char *key;
        if (p->queue != CS_NONE || p->wait == CS_WAIT_NONE)
            continue;
        key = cs_store_key(sc->sync.store, st, &klen);
        json_array_append_new(
            parked, json_pack("{s:s%, s:s}", "key", key, klen, "reason", wait_reason(p->wait)));
        n++;
    }
    json_object_set_new(o, "paused", json_boolean(sc->paused));
    json_object_set_new(o, "depth", json_integer((json_int_t)cs_queue_total(sc->sync.queue)));
    json_object_set_new(o, "entries", entries);
    json_object_set_new(o, "parked", parked);
    return o;
}

static json_t *build_prospect(sc_t *sc, const char *key, int *status)
{
    uint32_t st = cs_store_find(sc->sync.store, key, strlen(key));
    const cs_pstate_t *p;
    json_t *o, *fields;
    if (st == CS_NONE) {
        *status = 404;
        return json_pack("{s:s, s:s}", "error", "not_found", "message",
                         "this replica holds no state for that key");
    }
    p = cs_store_at(sc->sync.store, st);
    o = json_object();
    fields = json_object();
    json_object_set_new(o, "key", json_string(key));
    json_object_set_new(o, "partition", json_integer(p->partition));
    if (p->flags & CS_PS_HAS_PROSPECT_ID)
        json_object_set_new(o, "prospect_id", json_integer(p->prospect_id));
    json_object_set_new(o, "marketing_watermark", json_integer(p->mkt_watermark));
    json_object_set_new(o, "crm_watermark", json_integer(p->crm_watermark));
    json_object_set_new(o, "updated_at", json_integer(p->updated_at));
    json_object_set_new(o, "last_activity_at", json_integer(p->last_activity_at));
    json_object_set_new(o, "crm_last_modified", json_integer(p->crm_last_modified));
    if (p->crm_object != CS_LINK_NONE) {
        json_object_set_new(o, "crm_object",
                            json_string(p->crm_object == CS_LINK_CONTACT ? "Contact" : "Lead"));
        json_object_set_new(o, "crm_id", json_stringn(p->crm_id, 18));
    }
    if (p->flags & CS_PS_ASSIGNED)
        json_object_set_new(o, "assigned_user_id", json_integer(p->assigned_user_id));
    json_object_set_new(o, "do_not_sync", json_boolean(p->flags & CS_PS_DO_NOT_SYNC));
    for (int f = 0; f < sc->fm.n; f++) {
        if (!p->fields[f].hash)
            continue;
        char h[12];
        snprintf(h, sizeof(h), "%08x", p->fields[f].hash);
        json_object_set_new(fields, sc->fm.f[f].name,
                            json_pack("{s:I, s:s, s:s, s:s}", "time", (json_int_t)p->fields[f].time,
                                      "side", (p->side_crm & (1u << f)) ? "crm" : "marketing",
                                      "wins", cs_wins_name(sc->fm.f[f].wins), "value_hash", h));
    }
    json_object_set_new(o, "fields", fields);
    if (p->queue != CS_NONE) {
        json_object_set_new(o, "in_queue", json_true());
        json_object_set_new(o, "queue", entry_json(sc, p->queue, cs_now_ms(), 1));
    } else {
        json_object_set_new(o, "in_queue", json_false());
        json_object_set_new(o, "why",
                            json_string(p->wait != CS_WAIT_NONE ? wait_reason(p->wait)
                                                                : "in sync: nothing to push"));
    }
    *status = 200;
    return o;
}

void sc_inspect_serve(sc_t *sc)
{
    if (!atomic_load_explicit(&ins_pending, memory_order_acquire))
        return;
    pthread_mutex_lock(&ins_lock);
    ins_status = 200;
    switch (ins_kind) {
    case INS_STATUS:
        ins_answer = build_status(sc);
        break;
    case INS_QUEUE:
        ins_answer = build_queue(sc, ins_limit);
        break;
    case INS_PROSPECT:
        ins_answer = build_prospect(sc, ins_key, &ins_status);
        break;
    default:
        ins_answer = NULL;
    }
    /* The requester takes the answer and frees the slot (ins_kind). */
    atomic_store(&ins_pending, 0);
    pthread_cond_broadcast(&ins_cond);
    pthread_mutex_unlock(&ins_lock);
}

void sc_inspect_cancel(void)
{
    pthread_mutex_lock(&ins_lock);
    atomic_store(&ins_pending, 0);
    pthread_cond_broadcast(&ins_cond);
    pthread_mutex_unlock(&ins_lock);
}

/* cs_httpd handler (HTTP threads): one inspection at a time, answered by the loop. */
void sc_inspect_http(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    ins_kind_t kind = INS_NONE;
    const char *key = NULL, *limit;
    struct timespec deadline;
    (void)opaque;
    if (strcmp(req->method, "GET"))
        return;
    if (!strcmp(req->path, "/status"))
        kind = INS_STATUS;
    else if (!strcmp(req->path, "/queue"))
        kind = INS_QUEUE;
    else if (!strcmp(req->path, "/prospect")) {
        kind = INS_PROSPECT;
        key = cs_httpd_req_arg(req, "key");
        if (!key || !*key || strlen(key) >= sizeof(ins_key)) {
            cs_httpd_resp_json(resp, 400,
                               json_pack("{s:s, s:s}", "error", "invalid_field", "field", "key"));
            return;
        }
    } else {
        return; /* 404 */
    }
    limit = cs_httpd_req_arg(req, "limit");
    pthread_mutex_lock(&ins_lock);
    while (ins_kind != INS_NONE) /* another inspection in progress */
        pthread_cond_wait(&ins_cond, &ins_lock);
    ins_kind = kind;
    ins_limit = limit ? atoi(limit) : 100;
    if (ins_limit <= 0 || ins_limit > 100000)
        ins_limit = 100;
    if (key)
        snprintf(ins_key, sizeof(ins_key), "%s", key);
    ins_answer = NULL;
    atomic_store_explicit(&ins_pending, 1, memory_order_release);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    while (atomic_load(&ins_pending)) {
        if (pthread_cond_timedwait(&ins_cond, &ins_lock, &deadline)) {
            ins_kind = INS_NONE;
            atomic_store(&ins_pending, 0);
            pthread_cond_broadcast(&ins_cond);
            pthread_mutex_unlock(&ins_lock);
            cs_httpd_resp_json(resp, 503, json_pack("{s:s}", "error", "consumer busy"));
            return;
        }
    }
    if (ins_answer)
        cs_httpd_resp_json(resp, ins_status, ins_answer);
    else
        cs_httpd_resp_json(resp, 503, json_pack("{s:s}", "error", "consumer stopping"));
    ins_answer = NULL;
    ins_kind = INS_NONE;
    pthread_cond_broadcast(&ins_cond);
    pthread_mutex_unlock(&ins_lock);
}
