/* Batches: a flush takes up to batch.max queue entries (sync-now first) and pushes them.
 *
 * To the CRM, a batch costs at most three calls: one /composite call matching the unlinked
 * prospects by email (Contact and Lead queries together), one sObject Collections update
 * for every matched or linked record, one upsert-by-external-id creating the leads of
 * assigned, unmatched prospects. To the marketing system, Account Engagement v5 has no
 * collection update: one call per prospect.
 *
 * A batch-level failure (transport, 5xx, rate limit, expired token) puts the entries back
 * at the front of the queue and holds every flush for a backoff; a per-record failure goes
 * to the errors topic and that entry alone retries (transient codes) or parks. */
#include "sync.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOT_PROVIDED "[not provided]" /* what the CRM gets for a required field left empty */

static cs_pstate_t *state_of(sc_t *sc, uint32_t e)
{
    return cs_store_at(sc->sync.store, cs_queue_entry(sc->sync.queue, e)->state);
}

static const char *key_of(sc_t *sc, uint32_t e, size_t *len)
{
    return cs_store_key(sc->sync.store, cs_queue_entry(sc->sync.queue, e)->state, len);
}

/* A held value as JSON of the field's type; NULL when no value is held. */
static json_t *json_value(const cs_field_t *f, const char *v, size_t len, int held)
{
    if (!held)
        return NULL;
    if (!v)
        return json_null();
    if (f->is_bool)
        return json_boolean(len == 4 && !memcmp(v, "true", 4));
    if (f->is_number) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < 31 ? len : 31), v);
        return json_integer(strtoll(buf, NULL, 10));
    }
    return json_stringn(v, len);
}

static int is_transient(const char *code)
{
    return !strcmp(code, "UNABLE_TO_LOCK_ROW") || !strcmp(code, "UNKNOWN_EXCEPTION") ||
           !strcmp(code, "REQUEST_RUNNING_TOO_LONG") || !strcmp(code, "SERVER_UNAVAILABLE");
}

/* A record-level failure of entry e: recorded in the errors topic, then retried with backoff
 * (transient codes, up to sync.max_attempts) or parked until an operator retries it. */
static void record_failed(sc_t *sc, uint32_t e, int direction, const char *code,
                          const char *message)
{
    cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
    size_t klen;
    const char *key = key_of(sc, e, &klen);
    x->attempts++;
    snprintf(x->last_error, sizeof(x->last_error), "%s: %s", code, message);
    cs_counter_add(sc->m.record_errors, 1);
    {
        char lbl[96];
        snprintf(lbl, sizeof(lbl), "code=\"%.60s\"", code);
        cs_counter_add(cs_metrics_counter(sc->metrics, "crmsync_record_errors_by_code_total",
                                          "Per-record API errors by code", lbl),
                       1);
    }
    sc_error_record(sc, key, klen, direction, code, message, x->attempts, NULL);
    if (is_transient(code) && x->attempts < sc->max_attempts) {
        cs_backoff_t b;
        cs_backoff_init(&b);
        b.attempt = x->attempts - 1;
        x->retry_at = cs_now_ms() + cs_backoff_next(&b, CS_ERR_HTTP_5XX, -1);
        cs_queue_move(sc->sync.queue, e, CS_QL_RETRY);
        CS_INFO("sync", "%.*s: %s (attempt %d), retrying", (int)klen, key, code, x->attempts);
        return;
    }
    CS_WARN("sync", "%.*s: %s: %s; parked after %d attempt(s) (crmsync-admin errors retry)",
            (int)klen, key, code, message, x->attempts);
    cs_counter_add(sc->m.parked, 1);
    cs_sync_park(&sc->sync, e, CS_WAIT_ERROR);
}

static void acknowledged(sc_t *sc, uint32_t e, int to_crm)
{
    cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
    if (to_crm && x->first_event_ms > 0) {
        int64_t lat = cs_wall_ms() - x->first_event_ms;
        cs_hist_observe(sc->m.latency_ms, (double)(lat < 0 ? 0 : lat));
    }
    cs_counter_add(sc->m.records[to_crm ? 0 : 1], 1);
    cs_sync_pushed(&sc->sync, e, to_crm);
}

/* Reads the prospect from the marketing API into e's values (sync-now, retries). */
static int fetch_values(sc_t *sc, uint32_t e)
{
    cs_pstate_t *p = state_of(sc, e);
    char fields[1024];
    size_t w = 0;
    json_t *obj = NULL;
    int err;
    for (int f = 0; f < sc->fm.n; f++)
        if (sc->fm.f[f].mkt_name && sc->fm.f[f].crm_name)
            w += (size_t)snprintf(fields + w, sizeof(fields) - w, "%s%s", w ? "," : "",
                                  sc->fm.f[f].mkt_name);
    err = cs_api_mkt_get(sc->api, p->prospect_id, fields, &obj);
    if (sc->push_aborted) {
        json_decref(obj);
        return CS_ERR_ABORTED;
    }
    if (err)
        return err;
    p = state_of(sc, e); /* events read during the call may have moved the store */
    for (int f = 0; f < sc->fm.n; f++) {
        const cs_field_t *fd = &sc->fm.f[f];
        json_t *v;
        char num[32];
        if (!fd->mkt_name || !fd->crm_name)
            continue;
        v = json_object_get(obj, fd->mkt_name);
        if (f == CS_F_OWNER) {
            const char *crm = json_is_integer(v) ? sc_user_crm(sc, json_integer_value(v)) : "";
            if (*crm && !(p->dirty_mkt & (1u << f))) {
                cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
                cs_queue_set_value(sc->sync.queue, e, f, crm, strlen(crm));
                x->phash[f] = cs_value_hash(crm, strlen(crm));
                x->ptime[f] = p->updated_at;
                x->pside_crm &= ~(1u << f);
                p->dirty_crm |= 1u << f;
            }
            continue;
        }
        const char *sv = NULL;
        size_t sl = 0;
        if (json_is_string(v)) {
            sv = json_string_value(v);
            sl = json_string_length(v);
        } else if (json_is_boolean(v)) {
            sv = json_is_true(v) ? "true" : "false";
            sl = strlen(sv);
        } else if (json_is_integer(v)) {
            sl = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            sv = num;
        } else if (v && !json_is_null(v)) {
            continue; /* a type the mapping does not carry */
        }
        if (p->dirty_mkt & (1u << f))
            continue; /* a CRM value is on its way to marketing: that one stands */
        /* A field read here is pushed as the marketing value it is now. */
        cs_queue_set_value(sc->sync.queue, e, f, sv, sl);
        cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
        x->phash[f] = cs_value_hash(sv, sl);
        x->ptime[f] = p->updated_at;
        x->pside_crm &= ~(1u << f);
        p->dirty_crm |= 1u << f;
    }
    json_decref(obj);
    p = state_of(sc, e);
    p->flags &= ~CS_PS_NEEDS_FETCH;
    return CS_OK;
}

/* Adds e's dirty CRM fields to rec. create: every held field, required ones defaulted. */
static void crm_fields(sc_t *sc, uint32_t e, json_t *rec, int object, int create)
{
    cs_pstate_t *p = state_of(sc, e);
    cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
    for (int f = 0; f < sc->fm.n; f++) {
        const cs_field_t *fd = &sc->fm.f[f];
        size_t len;
        const char *v;
        json_t *j;
        if (!fd->crm_name || !(x->has_value & (1u << f)))
            continue;
        if (!create && !(p->dirty_crm & (1u << f)))
            continue;
        if (f == CS_F_COMPANY && object == CS_LINK_CONTACT)
            continue; /* a contact's company is its account: not ours to write */
        v = cs_queue_value(sc->sync.queue, e, f, &len);
        if (!v && (f == CS_F_LAST_NAME || f == CS_F_COMPANY || f == CS_F_OWNER || f == CS_F_EMAIL))
            continue; /* never blank a required field or the owner */
        if ((j = json_value(fd, v, len, 1)))
            json_object_set_new(rec, fd->crm_name, j);
    }
}

static json_t *attributes(const char *type)
{
    return json_pack("{s:s}", "type", type);
}

/* Puts every INFLIGHT entry of the batch back at the front (in batch order) and holds the
 * flushes for a backoff. */
static void batch_failed(sc_t *sc, const uint32_t *es, size_t n, int err, const char *what)
{
    const cs_http_result_t *r = cs_api_last(sc->api);
    int64_t wait = cs_backoff_next(&sc->backoff, err, r->retry_after_s);
    for (size_t i = n; i-- > 0;) {
        cs_qentry_t *x = cs_queue_entry(sc->sync.queue, es[i]);
        if (x->list == CS_QL_INFLIGHT)
            cs_queue_move_front(sc->sync.queue, es[i], x->sync_now ? CS_QL_PRIO : CS_QL_READY);
    }
    if (wait < 0)
        wait = 30000;
    sc->hold_until = cs_now_ms() + wait;
    sc->api_healthy = 0;
    sc->last_api_error_ms = cs_now_ms();
    cs_counter_add(sc->m.batch_retries, 1);
    CS_WARN("sync", "%s failed (%s: %s); batch of %zu back in the queue, retry in %" PRId64 " ms",
            what, cs_err_name(err), r->errstr[0] ? r->errstr : cs_err_str(err), n, wait);
}

/* Pushes the entries needing the CRM. Returns CS_OK or the batch-level error. */
static int push_crm(sc_t *sc, uint32_t *es, size_t n)
{
    uint32_t upd[200], mat[200], cre[200];
    const char *emails[200];
    char *email_buf = NULL;
    cs_api_match_t matches[200];
    cs_api_rec_result_t results[200];
    size_t nu = 0, nm = 0, nc = 0;
    int err = CS_OK;

    for (size_t i = 0; i < n; i++) {
        cs_pstate_t *p = state_of(sc, es[i]);
        if ((p->flags & CS_PS_NEEDS_FETCH) && (err = fetch_values(sc, es[i]))) {
            if (err == CS_ERR_ABORTED || cs_err_class(err) == CS_CLASS_RETRY)
                return err;
            record_failed(sc, es[i], CS_DIRECTION_TO_CRM, "FETCH_FAILED",
                          cs_api_last(sc->api)->errstr);
            continue;
        }
        p = state_of(sc, es[i]);
        if (p->crm_object != CS_LINK_NONE && (p->flags & CS_PS_LINK_SURE))
            upd[nu++] = es[i];
        else
            mat[nm++] = es[i];
    }

    /* Match the unlinked ones by email: contacts first, then leads. */
    if (nm) {
        size_t off = 0;
        email_buf = malloc(nm * 256);
        if (!email_buf)
            return CS_ERR_NOMEM;
        for (size_t i = 0; i < nm; i++) {
            size_t len;
            const char *v = cs_queue_value(sc->sync.queue, mat[i], CS_F_EMAIL, &len);
            if (!v)
                v = key_of(sc, mat[i], &len);
            if (len > 254)
                len = 254;
            memcpy(email_buf + off, v, len);
            email_buf[off + len] = '\0';
            emails[i] = email_buf + off;
            off += len + 1;
        }
        err = cs_api_crm_match(sc->api, emails, nm, matches);
        free(email_buf);
        if (sc->push_aborted)
            return CS_ERR_ABORTED;
        if (err)
            return err;
        cs_backoff_reset(&sc->backoff);
        for (size_t i = 0; i < nm; i++) {
            cs_pstate_t *p = state_of(sc, mat[i]);
            if (matches[i].object != CS_LINK_NONE) {
                /* contacts first: it may replace a lead linked from the CRM stream */
                memcpy(p->crm_id, matches[i].id, 18);
                p->crm_object = (uint8_t)matches[i].object;
                p->flags |= CS_PS_LINK_SURE;
                upd[nu++] = mat[i];
            } else if (p->crm_object != CS_LINK_NONE) {
                /* linked from the CRM stream, not found by this email (changed in the CRM):
                 * the linked record it is */
                p->flags |= CS_PS_LINK_SURE;
                upd[nu++] = mat[i];
            } else if ((p->flags & CS_PS_ASSIGNED) || *sc->assign_unassigned_to) {
                /* A create needs the prospect's values, not just what changed (e.g. only an
                 * activity time after a restart): read them first rather than create a lead
                 * of placeholders. */
                if (!(cs_queue_entry(sc->sync.queue, mat[i])->has_value & (1u << CS_F_LAST_NAME)) &&
                    (p->flags & CS_PS_HAS_PROSPECT_ID)) {
                    if ((err = fetch_values(sc, mat[i]))) {
                        if (err == CS_ERR_ABORTED || cs_err_class(err) == CS_CLASS_RETRY)
                            return err;
                        record_failed(sc, mat[i], CS_DIRECTION_TO_CRM, "FETCH_FAILED",
                                      cs_api_last(sc->api)->errstr);
                        continue;
                    }
                }
                cre[nc++] = mat[i];
            } else {
                size_t klen;
                const char *key = key_of(sc, mat[i], &klen);
                CS_INFO("sync", "%.*s waits: unassigned and no matching contact or lead", (int)klen,
                        key);
                cs_counter_add(sc->m.parked, 1);
                cs_sync_park(&sc->sync, mat[i], CS_WAIT_UNASSIGNED);
            }
        }
    }

    if (nu) {
        json_t *recs = json_array();
        for (size_t i = 0; i < nu; i++) {
            cs_pstate_t *p = state_of(sc, upd[i]);
            json_t *rec = json_object();
            const char *type = p->crm_object == CS_LINK_CONTACT ? "Contact" : "Lead";
            json_object_set_new(rec, "attributes", attributes(type));
            json_object_set_new(rec, "id", json_stringn(p->crm_id, 18));
            crm_fields(sc, upd[i], rec, p->crm_object, 0);
            /* Stamp the prospect id on the record: a later change of its email in the CRM
             * can then be traced back to the prospect. */
            if (p->flags & CS_PS_HAS_PROSPECT_ID) {
                char pid[24];
                snprintf(pid, sizeof(pid), "%" PRId64, p->prospect_id);
                json_object_set_new(rec, cs_api_external_id_field(sc->api), json_string(pid));
            }
            json_array_append_new(recs, rec);
        }
        err = cs_api_crm_update(sc->api, recs, results);
        if (sc->push_aborted)
            return CS_ERR_ABORTED;
        if (err)
            return err;
        cs_backoff_reset(&sc->backoff);
        cs_counter_add(sc->m.batches[0], 1);
        for (size_t i = 0; i < nu; i++) {
            if (results[i].success) {
                acknowledged(sc, upd[i], 1);
            } else if (!strcmp(results[i].code, "ENTITY_IS_DELETED") ||
                       !strcmp(results[i].code, "INVALID_CROSS_REFERENCE_KEY")) {
                /* The linked record is gone (deleted in the CRM; deletions carry no email,
                 * so the link is only found stale here): forget it and match again. */
                cs_pstate_t *p = state_of(sc, upd[i]);
                size_t klen;
                const char *key = key_of(sc, upd[i], &klen);
                CS_INFO("sync", "%.*s: linked %s %.18s is deleted; matching again", (int)klen, key,
                        p->crm_object == CS_LINK_CONTACT ? "contact" : "lead", p->crm_id);
                p->crm_object = CS_LINK_NONE;
                memset(p->crm_id, 0, sizeof(p->crm_id));
                cs_sync_log_mark(&sc->sync, cs_queue_entry(sc->sync.queue, upd[i])->state);
                cs_queue_move_front(sc->sync.queue, upd[i], CS_QL_READY);
            } else {
                record_failed(sc, upd[i], CS_DIRECTION_TO_CRM, results[i].code, results[i].message);
            }
        }
    }

    if (nc) {
        json_t *recs = json_array();
        const char *ext = cs_api_external_id_field(sc->api);
        for (size_t i = 0; i < nc; i++) {
            cs_pstate_t *p = state_of(sc, cre[i]);
            json_t *rec = json_object();
            char pid[32];
            size_t len;
            const char *owner;
            if (p->flags & CS_PS_HAS_PROSPECT_ID)
                snprintf(pid, sizeof(pid), "%" PRId64, p->prospect_id);
            else {
                const char *k = key_of(sc, cre[i], &len);
                snprintf(pid, sizeof(pid), "%.*s", (int)(len < 31 ? len : 31), k);
            }
            json_object_set_new(rec, "attributes", attributes("Lead"));
            json_object_set_new(rec, ext, json_string(pid));
            crm_fields(sc, cre[i], rec, CS_LINK_LEAD, 1);
            if (!json_object_get(rec, "LastName"))
                json_object_set_new(rec, "LastName", json_string(NOT_PROVIDED));
            if (!json_object_get(rec, "Company"))
                json_object_set_new(rec, "Company", json_string(NOT_PROVIDED));
            if (!json_object_get(rec, "Email")) {
                const char *k = key_of(sc, cre[i], &len);
                json_object_set_new(rec, "Email", json_stringn(k, len));
            }
            /* Owner: the mapped assignee (already in the record), else the configured
             * owner for unassigned prospects, else the connector (integration) user. */
            owner = !(p->flags & CS_PS_ASSIGNED) && *sc->assign_unassigned_to
                        ? sc->assign_unassigned_to
                        : cs_api_connector_user(sc->api);
            if (!json_object_get(rec, "OwnerId") && *owner)
                json_object_set_new(rec, "OwnerId", json_string(owner));
            json_array_append_new(recs, rec);
        }
        err = cs_api_crm_upsert(sc->api, "Lead", recs, results);
        if (sc->push_aborted)
            return CS_ERR_ABORTED;
        if (err)
            return err;
        cs_backoff_reset(&sc->backoff);
        cs_counter_add(sc->m.batches[0], 1);
        for (size_t i = 0; i < nc; i++) {
            if (results[i].success) {
                cs_pstate_t *p = state_of(sc, cre[i]);
                if (strlen(results[i].id) == 18) {
                    memcpy(p->crm_id, results[i].id, 18);
                    p->crm_object = CS_LINK_LEAD;
                    p->flags |= CS_PS_LINK_SURE;
                }
                if (results[i].created)
                    cs_counter_add(sc->m.created_leads, 1);
                acknowledged(sc, cre[i], 1);
            } else {
                record_failed(sc, cre[i], CS_DIRECTION_TO_CRM, results[i].code, results[i].message);
            }
        }
    }
    return CS_OK;
}

/* Pushes one entry to the marketing system. Returns CS_OK or a batch-level error. */
static int push_mkt_one(sc_t *sc, uint32_t e)
{
    cs_pstate_t *p = state_of(sc, e);
    cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
    json_t *fields = json_object();
    int err;
    size_t klen;
    const char *key = key_of(sc, e, &klen);

    for (int f = 0; f < sc->fm.n; f++) {
        const cs_field_t *fd = &sc->fm.f[f];
        size_t len;
        const char *v;
        json_t *j;
        if (!fd->mkt_name || !(p->dirty_mkt & (1u << f)) || !(x->has_value & (1u << f)))
            continue;
        v = cs_queue_value(sc->sync.queue, e, f, &len);
        if (f == CS_F_OWNER) {
            int64_t mkt = v ? sc_user_mkt(sc, v, len) : -1;
            if (mkt >= 0)
                json_object_set_new(fields, fd->mkt_name, json_integer(mkt));
            continue;
        }
        if (f == CS_F_EMAIL && !v)
            continue;
        if ((j = json_value(fd, v, len, 1)))
            json_object_set_new(fields, fd->mkt_name, j);
    }
    if (p->flags & CS_PS_HAS_PROSPECT_ID) {
        err = cs_api_mkt_update(sc->api, p->prospect_id, fields);
    } else {
        char email[256];
        int64_t id;
        snprintf(email, sizeof(email), "%.*s", (int)klen, key);
        err = cs_api_mkt_upsert_by_email(sc->api, email, fields, &id);
        if (!err && !sc->push_aborted) {
            p = state_of(sc, e);
            p->prospect_id = id;
            p->flags |= CS_PS_HAS_PROSPECT_ID | CS_PS_SEEN_MARKETING;
            cs_counter_add(sc->m.created_prospects, 1);
        }
    }
    if (sc->push_aborted)
        return CS_ERR_ABORTED;
    if (!err) {
        cs_backoff_reset(&sc->backoff); /* the backoff grows only over consecutive failures */
        acknowledged(sc, e, 0);
        return CS_OK;
    }
    if (cs_err_class(err) == CS_CLASS_RETRY)
        return err;
    {
        const cs_http_result_t *r = cs_api_last(sc->api);
        record_failed(sc, e, CS_DIRECTION_TO_MARKETING,
                      r->api_error[0] ? r->api_error : cs_err_name(err),
                      r->api_message[0] ? r->api_message : r->errstr);
    }
    return CS_OK;
}

typedef struct settle_s {
    cs_sync_t *sync;
    int64_t cutoff;
} settle_t;

/* cs_queue_take predicate: sync-now entries always, others enqueued before the cutoff. */
static int settled(void *opaque, uint32_t e)
{
    const settle_t *st = opaque;
    const cs_qentry_t *x = cs_queue_entry(st->sync->queue, e);
    if (x->list == CS_QL_PRIO)
        return 1;
    return x->enqueued_ms <= st->cutoff ? 1 : -1;
}

void sc_push_abort(sc_t *sc)
{
    cs_queue_t *q = sc->sync.queue;
    uint32_t es[256];
    size_t n = 0;
    if (!sc->in_push || sc->push_aborted)
        return;
    /* Back to the front, in their order; what the answer would have settled is pushed again
     * by whoever owns the prospect next (the same values: at worst a repeated write). A batch
     * holds at most batch.max (<= 200) entries. */
    for (uint32_t e = cs_queue_first(q, CS_QL_INFLIGHT); e != CS_NONE && n < 256;
         e = cs_queue_next(q, e))
        es[n++] = e;
    for (size_t i = n; i-- > 0;)
        cs_queue_move_front(q, es[i],
                            cs_queue_entry(q, es[i])->sync_now ? CS_QL_PRIO : CS_QL_READY);
    sc->push_aborted = 1;
    CS_INFO("sync", "rebalance during a push: its %zu prospect(s) are back in the queue", n);
}

static int flush(sc_t *sc, int force);

int sc_flush(sc_t *sc, int force)
{
    int n;
    sc->in_push = 1;
    sc->push_aborted = 0;
    sc->nbatch_states = 0;
    n = flush(sc, force);
    sc->in_push = 0;
    if (sc->push_aborted) {
        sc->push_aborted = 0; /* the records of the batch are written by the revocation */
        return 0;
    }
    /* What the batch wrote is recorded at once, not at the next commit point: a write whose
     * record is lost with a killed replica is done again by the next owner, over whatever
     * was edited in between. */
    for (size_t i = 0; i < sc->nbatch_states; i++) {
        uint32_t st = sc->batch_states[i];
        cs_pstate_t *p = cs_store_at(sc->sync.store, st);
        if (p->log_dirty != CS_LOG_DIRTY || sc_write_state(sc, st))
            continue; /* clean, or written at the commit point after all */
        p->log_dirty = CS_LOG_WRITTEN;
    }
    return n;
}

/* Echo suppression needs the users crmsync writes as on both sides: asked at start-up and,
 * until both answers are in, again every 5 s (the token endpoint or the marketing API may
 * not answer yet). A marketing side with no user linked to ours is said once and not asked
 * again: its echoes are then recognised by value and time only. */
void sc_learn_self(sc_t *sc, int64_t now)
{
    int err;
    sc->next_self_try = now + 5000;
    if (!sc->sync.self_user[0]) {
        if (cs_api_self_user(sc->api, sc->sync.self_user, sizeof(sc->sync.self_user))) {
            sc->sync.self_user[0] = '\0';
            return;
        }
        CS_INFO("sync", "writing as CRM user %s: its changes coming back are echoes",
                sc->sync.self_user);
    }
    if (sc->sync.self_mkt_user)
        return;
    err = cs_api_mkt_self_user(sc->api, &sc->sync.self_mkt_user);
    if (!err) {
        CS_INFO("sync", "writing as marketing user %" PRId64 ": its changes coming back are echoes",
                sc->sync.self_mkt_user);
    } else if (err == CS_ERR_NOT_FOUND || cs_err_class(err) != CS_CLASS_RETRY) {
        /* none linked, or the users list refused (e.g. no permission): asking again every 5 s
         * would not change the answer */
        sc->sync.self_mkt_user = -1;
        CS_WARN("sync",
                "no marketing user found for CRM user %s (users.salesforceId: %s): crmsync's own "
                "prospect writes coming back are recognised by value and time only",
                sc->sync.self_user,
                err == CS_ERR_NOT_FOUND ? "none linked" : cs_api_last(sc->api)->errstr);
    } else {
        sc->sync.self_mkt_user = 0;
    }
}

static int flush(sc_t *sc, int force)
{
    cs_queue_t *q = sc->sync.queue;
    int64_t now = cs_now_ms();
    uint32_t batch[200], tocrm[200];
    size_t n, ncrm = 0, nmkt = 0, prio, ready;
    settle_t settle = {&sc->sync, INT64_MAX};
    int err;

    cs_queue_due(q, now);
    cs_sync_release_held(&sc->sync, now);
    if ((!sc->sync.self_user[0] || !sc->sync.self_mkt_user) && now >= sc->next_self_try)
        sc_learn_self(sc, now);
    if (now < sc->hold_until || sc_changelog_stalled(sc, now))
        return 0;
    prio = cs_queue_len(q, CS_QL_PRIO);
    ready = cs_queue_len(q, CS_QL_READY);
    /* Paused: nothing is pushed but sync-now; the queue keeps growing. */
    if (prio == 0 && (sc->paused || ready == 0))
        return 0;
    settle.cutoff = INT64_MAX;
    if (!force && prio == 0 && cs_queue_oldest(q, CS_QL_READY) + sc->linger_ms > now) {
        /* Before the linger deadline, only a full batch of settled entries goes: a prospect
         * whose burst is still being read (its events sit in three topics, fetched at
         * different moments) would otherwise be written twice. */
        settle.cutoff = now - sc->settle_ms;
        if (cs_queue_count_before(q, CS_QL_READY, settle.cutoff, (size_t)sc->batch_max) <
            (size_t)sc->batch_max)
            return 0;
    }

    n = cs_queue_take(q, batch, (size_t)sc->batch_max, sc->paused, settled, &settle);
    for (size_t i = 0; i < n; i++)
        sc->batch_states[sc->nbatch_states++] = cs_queue_entry(q, batch[i])->state;
    for (size_t i = 0; i < n; i++)
        if (state_of(sc, batch[i])->dirty_crm)
            tocrm[ncrm++] = batch[i];
    if (ncrm && (err = push_crm(sc, tocrm, ncrm))) {
        if (err != CS_ERR_ABORTED)
            batch_failed(sc, batch, n, err, "CRM push");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        cs_qentry_t *x = cs_queue_entry(q, batch[i]);
        if (x->list != CS_QL_INFLIGHT || x->state == CS_NONE)
            continue;
        if (!state_of(sc, batch[i])->dirty_mkt) {
            /* Nothing left to do (e.g. every CRM field converged meanwhile). */
            cs_sync_pushed(&sc->sync, batch[i], 0);
            continue;
        }
        nmkt++;
        if ((err = push_mkt_one(sc, batch[i]))) {
            if (err != CS_ERR_ABORTED)
                batch_failed(sc, batch + i, n - i, err, "marketing push");
            return (int)i;
        }
    }
    if (nmkt)
        cs_counter_add(sc->m.batches[1], 1);
    cs_backoff_reset(&sc->backoff);
    sc->api_healthy = 1;
    return (int)n;
}
