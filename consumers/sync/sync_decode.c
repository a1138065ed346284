/* Avro records of the input topics -> cs_event_t, poison routing, and the control topic.
 * Input records are decoded flat (cs_avro_decode_flat): the event's strings borrow from the
 * Kafka message (or, for a record of an older schema version, from the decoder), so an event
 * is applied before its message is destroyed. */
#include "sync.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t sc_user_mkt(const sc_t *sc, const char *crm_id, size_t len)
{
    for (int i = 0; i < sc->nusers; i++)
        if (strlen(sc->users[i].crm_id) == len && !memcmp(sc->users[i].crm_id, crm_id, len))
            return sc->users[i].mkt_id;
    return -1;
}

const char *sc_user_crm(const sc_t *sc, int64_t mkt_id)
{
    for (int i = 0; i < sc->nusers; i++)
        if (sc->users[i].mkt_id == mkt_id)
            return sc->users[i].crm_id;
    return "";
}

static cs_strv_t str_field(const cs_avro_flat_t *rec, int i)
{
    size_t len = 0;
    cs_strv_t v;
    v.p = cs_avro_flat_str(rec, i, &len);
    v.len = (uint32_t)len;
    return v;
}

static int64_t long_field(const cs_avro_flat_t *rec, int i, int64_t def)
{
    int64_t v;
    return cs_avro_flat_long(rec, i, &v) ? v : def;
}

static int bool_field(const cs_avro_flat_t *rec, int i)
{
    bool b = false;
    cs_avro_flat_bool(rec, i, &b);
    return b;
}

/* Decimal digits of v into buf (at least 12 bytes, NUL-terminated); returns the length. */
static uint32_t format_i32(char *buf, int32_t v)
{
    char tmp[12];
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v, n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

static void set_value(cs_event_t *ev, int f, cs_strv_t v)
{
    ev->values[f] = v;
    ev->present |= 1u << f;
}

static cs_strv_t lit(const char *s)
{
    cs_strv_t v = {s, (uint32_t)strlen(s)};
    return v;
}

/* Custom fields come in a map keyed by the side's field name. A value is taken up to its
 * first NUL, as when it was read as a C string. */
static void custom_fields(const sc_t *sc, const cs_avro_flat_t *rec, int map_field, int crm_side,
                          cs_event_t *ev)
{
    if (sc->fm.n <= CS_F_DEFAULT_COUNT_ || cs_avro_flat_count(rec, map_field) == 0)
        return;
    for (int f = CS_F_DEFAULT_COUNT_; f < sc->fm.n; f++) {
        const char *name = crm_side ? sc->fm.f[f].crm_name : sc->fm.f[f].mkt_name, *val;
        size_t len;
        if (name && cs_avro_flat_map_find(rec, map_field, name, &val, &len))
            set_value(ev, f, (cs_strv_t){val, val ? (uint32_t)strnlen(val, len) : 0});
    }
}

/* A ProspectChange naming its changed fields (an import of some columns, for instance)
 * carries only those: the others are not "empty", they are unknown, so they must neither be
 * pushed nor compared, and assignment and do-not-sync keep their state. */
static void partial_snapshot(const sc_t *sc, const cs_avro_flat_t *r, cs_event_t *ev)
{
    static const struct {
        const char *name;
        int field;
    } schema_names[] = {
        {"email", CS_F_EMAIL},         {"first_name", CS_F_FIRST_NAME},
        {"last_name", CS_F_LAST_NAME}, {"company", CS_F_COMPANY},
        {"phone", CS_F_PHONE},         {"job_title", CS_F_TITLE},
        {"opted_out", CS_F_OPTED_OUT}, {"assigned_user_id", CS_F_OWNER},
        {"score", CS_F_SCORE},         {"grade", CS_F_GRADE},
    };
    uint32_t keep = 0;
    int assigned = 0, dns = 0;
    cs_avro_iter_t it;
    const char *item;
    size_t len;
    char buf[256], *name;
    if (cs_avro_flat_count(r, CS_PC_CHANGED_FIELDS) == 0)
        return; /* a full snapshot */
    cs_avro_iter_init(r, CS_PC_CHANGED_FIELDS, &it);
    while (cs_avro_iter_next(&it, NULL, NULL, &item, &len)) {
        int f = -1;
        if (!item)
            continue;
        len = strnlen(item, len); /* a name is read up to its first NUL */
        name = len < sizeof(buf) ? buf : malloc(len + 1);
        if (!name)
            continue;
        memcpy(name, item, len);
        name[len] = '\0';
        if (!strcmp(name, "assigned_user_id"))
            assigned = 1;
        if (!strcmp(name, "do_not_sync"))
            dns = 1;
        for (size_t i = 0; i < sizeof(schema_names) / sizeof(*schema_names) && f < 0; i++)
            if (!strcmp(name, schema_names[i].name))
                f = schema_names[i].field;
        if (f < 0)
            f = cs_fieldmap_find(&sc->fm, name); /* custom fields: by their marketing name */
        if (f >= 0)
            keep |= 1u << f;
        if (name != buf)
            free(name);
    }
    ev->present &= keep;
    if (!assigned)
        ev->assigned_user_id = CS_KEEP_ASSIGNMENT;
    if (!dns)
        ev->do_not_sync = -1;
}

static int poison(sc_t *sc, const rd_kafka_message_t *msg, const char *code, const char *detail)
{
    char text[512];
    snprintf(text, sizeof(text), "%s [%" PRId32 "] offset %" PRId64 ": %s",
             rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, detail);
    CS_WARN("sync", "poison record routed to the errors topic: %s: %s", code, text);
    cs_counter_add(sc->m.poison, 1);
    sc_error_record(sc, msg->key, msg->key_len, CS_DIRECTION_INPUT, code, text, 1, msg);
    return CS_ERR_PARSE;
}

static int expected_schema(cs_ev_kind_t kind)
{
    switch (kind) {
    case CS_EV_PROSPECT:
        return CS_AVRO_PROSPECT_CHANGE;
    case CS_EV_ACTIVITY:
        return CS_AVRO_ACTIVITY;
    case CS_EV_CRM:
        break;
    }
    return CS_AVRO_CRM_CHANGE;
}

int sc_decode(sc_t *sc, const rd_kafka_message_t *msg, cs_ev_kind_t kind, cs_event_t *ev)
{
    cs_avro_flat_t d;
    int err;
    const cs_avro_flat_t *r = &d;

    memset(ev, 0, offsetof(cs_event_t, values)); /* values[] are read through `present` */
    ev->kind = kind;
    ev->partition = msg->partition;
    ev->offset = msg->offset;
    if (!msg->payload || msg->len == 0)
        return poison(sc, msg, "POISON_EMPTY", "empty record");
    err = cs_avro_decode_flat(sc->dec, msg->payload, msg->len, &d);
    if (err) {
        const char *code = err == CS_ERR_UNKNOWN_SCHEMA ? "POISON_UNKNOWN_SCHEMA"
                           : err == CS_ERR_TRUNCATED    ? "POISON_TRUNCATED"
                                                        : "POISON_BAD_AVRO";
        return poison(sc, msg, code, cs_avro_decoder_error(sc->dec));
    }
    if (d.schema != expected_schema(kind))
        return poison(sc, msg, "POISON_WRONG_SCHEMA", cs_avro_schema_name(d.schema));

    switch (kind) {
    case CS_EV_PROSPECT: {
        ev->key = str_field(r, CS_PC_PROSPECT_KEY);
        ev->time = long_field(r, CS_PC_UPDATED_AT, 0);
        ev->event_time = long_field(r, CS_PC_EVENT_TIME, 0);
        ev->cause = (cs_cause_t)cs_avro_flat_enum(r, CS_PC_CAUSE);
        ev->prospect_id = long_field(r, CS_PC_PROSPECT_ID, -1);
        ev->last_activity_at = long_field(r, CS_PC_LAST_ACTIVITY_AT, 0);
        ev->assigned_user_id = long_field(r, CS_PC_ASSIGNED_USER_ID, -1);
        ev->do_not_sync = bool_field(r, CS_PC_DO_NOT_SYNC);
        ev->crm_lead_id = str_field(r, CS_PC_CRM_LEAD_ID);
        ev->crm_contact_id = str_field(r, CS_PC_CRM_CONTACT_ID);
        ev->updated_by_id = long_field(r, CS_PC_UPDATED_BY_ID, 0);
        set_value(ev, CS_F_EMAIL, str_field(r, CS_PC_EMAIL));
        set_value(ev, CS_F_FIRST_NAME, str_field(r, CS_PC_FIRST_NAME));
        set_value(ev, CS_F_LAST_NAME, str_field(r, CS_PC_LAST_NAME));
        set_value(ev, CS_F_COMPANY, str_field(r, CS_PC_COMPANY));
        set_value(ev, CS_F_PHONE, str_field(r, CS_PC_PHONE));
        set_value(ev, CS_F_TITLE, str_field(r, CS_PC_JOB_TITLE));
        set_value(ev, CS_F_OPTED_OUT, lit(bool_field(r, CS_PC_OPTED_OUT) ? "true" : "false"));
        {
            int32_t score = 0;
            cs_avro_flat_int(r, CS_PC_SCORE, &score);
            _Static_assert(sizeof(sc->score_buf) >= 12, "score_buf holds an int32");
            set_value(ev, CS_F_SCORE, (cs_strv_t){sc->score_buf, format_i32(sc->score_buf, score)});
        }
        set_value(ev, CS_F_GRADE, str_field(r, CS_PC_GRADE));
        /* The owner is compared in the CRM's user-id space: a mapped assignee becomes its
         * CRM user; an unmapped one or none leaves the CRM owner alone. */
        if (ev->assigned_user_id >= 0) {
            const char *crm = sc_user_crm(sc, ev->assigned_user_id);
            if (*crm)
                set_value(ev, CS_F_OWNER, lit(crm));
        }
        custom_fields(sc, r, CS_PC_CUSTOM_FIELDS, 0, ev);
        partial_snapshot(sc, r, ev);
        break;
    }
    case CS_EV_ACTIVITY:
        ev->key = str_field(r, CS_ACT_PROSPECT_KEY);
        ev->time = long_field(r, CS_ACT_OCCURRED_AT, 0);
        ev->event_time = long_field(r, CS_ACT_EVENT_TIME, 0);
        ev->prospect_id = long_field(r, CS_ACT_PROSPECT_ID, -1);
        ev->activity = (cs_activity_type_t)cs_avro_flat_enum(r, CS_ACT_TYPE);
        ev->identified = bool_field(r, CS_ACT_IDENTIFIED);
        {
            int32_t delta = 0;
            cs_avro_flat_int(r, CS_ACT_SCORE_DELTA, &delta);
            ev->score_delta = delta;
        }
        ev->assigned_user_id = -1;
        break;
    case CS_EV_CRM: {
        ev->key = str_field(r, CS_CRM_PROSPECT_KEY);
        ev->time = long_field(r, CS_CRM_LAST_MODIFIED_DATE, 0);
        ev->event_time = long_field(r, CS_CRM_EVENT_TIME, 0);
        ev->crm_object = cs_avro_flat_enum(r, CS_CRM_OBJECT) == CS_OBJECT_CONTACT ? CS_LINK_CONTACT
                                                                                  : CS_LINK_LEAD;
        ev->crm_id = str_field(r, CS_CRM_CRM_ID);
        ev->last_modified_by = str_field(r, CS_CRM_LAST_MODIFIED_BY_ID);
        ev->deleted = bool_field(r, CS_CRM_DELETED);
        ev->ext_prospect_id = -1;
        {
            cs_strv_t ext = str_field(r, CS_CRM_EXTERNAL_ID);
            char num[24];
            if (ext.p && ext.len > 0 && ext.len < sizeof(num)) {
                char *end;
                memcpy(num, ext.p, ext.len);
                num[ext.len] = '\0';
                long long id = strtoll(num, &end, 10);
                if (*end == '\0' && id > 0)
                    ev->ext_prospect_id = id;
            }
        }
        ev->prospect_id = -1;
        ev->assigned_user_id = -1;
        set_value(ev, CS_F_EMAIL, str_field(r, CS_CRM_EMAIL));
        set_value(ev, CS_F_FIRST_NAME, str_field(r, CS_CRM_FIRST_NAME));
        set_value(ev, CS_F_LAST_NAME, str_field(r, CS_CRM_LAST_NAME));
        if (ev->crm_object == CS_LINK_LEAD) /* a contact's company is its account's */
            set_value(ev, CS_F_COMPANY, str_field(r, CS_CRM_COMPANY));
        set_value(ev, CS_F_PHONE, str_field(r, CS_CRM_PHONE));
        set_value(ev, CS_F_TITLE, str_field(r, CS_CRM_TITLE));
        set_value(ev, CS_F_OPTED_OUT, lit(bool_field(r, CS_CRM_OPTED_OUT) ? "true" : "false"));
        {
            cs_strv_t owner = str_field(r, CS_CRM_OWNER_ID);
            if (owner.p)
                set_value(ev, CS_F_OWNER, owner);
        }
        custom_fields(sc, r, CS_CRM_CUSTOM_FIELDS, 1, ev);
        break;
    }
    }
    /* The record's key must be the Kafka key: co-partitioning depends on it. */
    if (msg->key && ev->key.p &&
        (msg->key_len != ev->key.len || memcmp(msg->key, ev->key.p, ev->key.len)))
        return poison(sc, msg, "POISON_KEY_MISMATCH",
                      "prospect_key differs from the Kafka message key");
    if (kind != CS_EV_CRM && (!ev->key.p || ev->key.len == 0))
        return poison(sc, msg, "POISON_NO_KEY", "empty prospect_key");
    if (ev->time <= 0)
        return poison(sc, msg, "POISON_NO_TIME", "missing source time");
    return CS_OK;
}

void sc_error_record(sc_t *sc, const char *key, size_t keylen, int direction, const char *code,
                     const char *message, int attempts, const rd_kafka_message_t *raw)
{
    avro_value_t *v = cs_avro_encoder_value(sc->enc, CS_AVRO_SYNC_ERROR);
    char id[300];
    const void *out;
    size_t out_len;
    int64_t now = cs_wall_ms();
    if (!v)
        return;
    if (!key)
        key = "", keylen = 0;
    /* One id per prospect and direction (inputs: per topic/partition/offset), so that the
     * admin view shows the latest attempt of each. */
    if (raw)
        snprintf(id, sizeof(id), "input:%s:%" PRId32 ":%" PRId64, rd_kafka_topic_name(raw->rkt),
                 raw->partition, raw->offset);
    else
        snprintf(id, sizeof(id), "%s:%.*s", direction == CS_DIRECTION_TO_CRM ? "crm" : "mkt",
                 (int)keylen, key);
    cs_avro_set_str(v, CS_SE_ERROR_ID, id);
    cs_avro_set_strn(v, CS_SE_PROSPECT_KEY, key, keylen);
    cs_avro_set_enum(v, CS_SE_DIRECTION, direction);
    cs_avro_set_str(v, CS_SE_CODE, code);
    cs_avro_set_str(v, CS_SE_MESSAGE, message);
    cs_avro_set_int(v, CS_SE_ATTEMPTS, attempts);
    cs_avro_set_long(v, CS_SE_FIRST_AT, now);
    cs_avro_set_long(v, CS_SE_LAST_AT, now);
    if (raw) {
        cs_avro_set_str(v, CS_SE_TOPIC, rd_kafka_topic_name(raw->rkt));
        cs_avro_set_int(v, CS_SE_PARTITION, raw->partition);
        cs_avro_set_long(v, CS_SE_OFFSET, raw->offset);
        cs_avro_set_bytes(v, CS_SE_PAYLOAD, raw->payload ? raw->payload : "", raw->len);
    }
    if (cs_avro_encode(sc->enc, v, &out, &out_len)) {
        CS_ERROR("sync", "cannot encode an error record: %s", cs_avro_encoder_error(sc->enc));
        return;
    }
    /* Blocks while the producer queue is full: an error record is never dropped. */
    sc_send(sc, sc->topics[CS_TOPIC_ERRORS], RD_KAFKA_PARTITION_UA, key, keylen, out, out_len);
}

/* Sync-now / retry for one key: only the replica holding the key's state acts. */
static void control_key(sc_t *sc, const char *key, size_t len, int sync_now)
{
    uint32_t st = cs_store_find(sc->sync.store, key, len);
    cs_pstate_t *p;
    if (st == CS_NONE)
        return; /* not ours (or never seen) */
    p = cs_store_at(sc->sync.store, st);
    if (p->flags & CS_PS_DO_NOT_SYNC) {
        CS_INFO("sync", "sync-now for %.*s ignored: do-not-sync", (int)len, key);
        return;
    }
    if (!(p->flags & CS_PS_HAS_PROSPECT_ID)) {
        CS_WARN("sync", "sync-now for %.*s ignored: no marketing prospect id known", (int)len, key);
        return;
    }
    uint32_t e = p->queue;
    if (e == CS_NONE) {
        e = cs_queue_add(sc->sync.queue, st, cs_now_ms(), sync_now);
        if (e == CS_NONE)
            return;
        p = cs_store_at(sc->sync.store, st);
        p->queue = e;
    } else if (sync_now) {
        cs_qentry_t *x = cs_queue_entry(sc->sync.queue, e);
        x->sync_now = 1;
        if (x->list == CS_QL_READY || x->list == CS_QL_RETRY)
            cs_queue_move(sc->sync.queue, e, CS_QL_PRIO);
    }
    cs_queue_entry(sc->sync.queue, e)->attempts = 0;
    /* Every field to the CRM, with the values read from the marketing API at push time. */
    for (int f = 0; f < sc->fm.n; f++)
        if (sc->fm.f[f].crm_name)
            p->dirty_crm |= 1u << f;
    p->flags |= CS_PS_NEEDS_FETCH;
    p->flags &= ~CS_PS_WAITING;
    p->wait = CS_WAIT_NONE;
}

void sc_control(sc_t *sc, const rd_kafka_message_t *msg)
{
    cs_avro_decoded_t d;
    int live = msg->offset >= sc->control_catchup;
    int cmd;
    if (!msg->payload || cs_avro_decode(sc->dec, msg->payload, msg->len, &d) ||
        d.schema != CS_AVRO_CONTROL) {
        CS_WARN("sync", "control topic: unreadable record at offset %" PRId64 " skipped",
                msg->offset);
        return;
    }
    cmd = cs_avro_get_enum(d.value, CS_CTL_COMMAND);
    switch (cmd) {
    case CS_COMMAND_PAUSE:
    case CS_COMMAND_UNPAUSE:
        /* Pause state is global and replayed from the start of the topic at start-up. */
        sc->paused = cmd == CS_COMMAND_PAUSE;
        cs_gauge_set(sc->m.paused, sc->paused);
        if (live)
            CS_INFO("sync", "connector %s", sc->paused ? "paused" : "unpaused");
        break;
    case CS_COMMAND_SYNC_NOW:
    case CS_COMMAND_RETRY_ERROR:
        if (!live)
            break; /* issued before this replica started: handled then, or by the owner */
        for (size_t k = 0, n = cs_avro_count(d.value, CS_CTL_PROSPECT_KEYS); k < n; k++) {
            size_t len;
            const char *key = cs_avro_get_item_str(d.value, CS_CTL_PROSPECT_KEYS, k, &len);
            if (key)
                control_key(sc, key, len, cmd == CS_COMMAND_SYNC_NOW);
        }
        break;
    default:
        CS_WARN("sync", "control topic: unknown command %d skipped", cmd);
    }
}
