/* cs_cursor: durable poll cursors and the handled set at their edge (see cs_cursor.h). */
#include "cs_cursor.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define ID_MAX 64 /* bytes of an id, NUL included (CRM ids are 18, prospect ids <= 19) */

typedef struct slot_s {
    char id[ID_MAX]; /* "" = empty slot */
    int64_t ms;
    uint64_t hash; /* content hash, 0 = unknown */
} slot_t;

struct cs_cursor_s {
    char *name;
    int64_t ms;
    int loaded;
    uint64_t version;
    /* the handled set: open addressing, linear probing, load <= 1/2, no deletions (pruning
     * rebuilds the table) */
    slot_t *slots;
    size_t cap, used;
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static slot_t *find_slot(slot_t *slots, size_t cap, const char *id)
{
    size_t i = (size_t)hash_id(id) & (cap - 1);
    while (slots[i].id[0] && strcmp(slots[i].id, id))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int rehash(cs_cursor_t *c, size_t cap, int64_t keep_from)
{
    slot_t *ns = calloc(cap, sizeof(*ns));
    size_t used = 0;
    if (!ns)
        return CS_ERR_NOMEM;
    for (size_t i = 0; i < c->cap; i++) {
        slot_t *s = &c->slots[i];
        if (!s->id[0] || s->ms < keep_from)
            continue;
        *find_slot(ns, cap, s->id) = *s;
        used++;
    }
    free(c->slots);
    c->slots = ns;
    c->cap = cap;
    c->used = used;
    return CS_OK;
}

cs_cursor_t *cs_cursor_new(const char *name, int64_t initial_ms)
{
    cs_cursor_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->name = strdup(name);
    c->cap = 64;
    c->slots = calloc(c->cap, sizeof(*c->slots));
    if (!c->name || !c->slots) {
        cs_cursor_destroy(c);
        return NULL;
    }
    c->ms = initial_ms;
    return c;
}

void cs_cursor_destroy(cs_cursor_t *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->slots);
    free(c);
}

const char *cs_cursor_name(const cs_cursor_t *c)
{
    return c->name;
}

int64_t cs_cursor_ms(const cs_cursor_t *c)
{
    return c->ms;
}

int cs_cursor_loaded(const cs_cursor_t *c)
{
    return c->loaded;
}

int64_t cs_cursor_query_from(const cs_cursor_t *c, int64_t overlap_ms)
{
    int64_t from = c->ms - (overlap_ms > 0 ? overlap_ms : 0);
    return from > 0 ? from : 0;
}

uint64_t cs_cursor_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

bool cs_cursor_seen(const cs_cursor_t *c, const char *id, int64_t ms, uint64_t hash)
{
    const slot_t *s;
    if (!id || strlen(id) >= ID_MAX)
        return false;
    s = find_slot(c->slots, c->cap, id);
    if (!s->id[0] || s->ms < ms)
        return false;
    return s->ms > ms || !hash || !s->hash || s->hash == hash;
}

int cs_cursor_mark(cs_cursor_t *c, const char *id, int64_t ms, uint64_t hash)
{
    slot_t *s;
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len >= ID_MAX)
        return CS_ERR_INVAL;
    if ((c->used + 1) * 2 > c->cap && rehash(c, c->cap * 2, INT64_MIN))
        return CS_ERR_NOMEM;
    s = find_slot(c->slots, c->cap, id);
    if (!s->id[0]) {
        memcpy(s->id, id, len + 1);
        s->ms = ms;
        s->hash = hash;
        c->used++;
    } else if (ms > s->ms || (ms == s->ms && hash != s->hash)) {
        if (s->ms == c->ms && ms != s->ms)
            c->version++; /* leaves the ids at the cursor */
        s->ms = ms;
        s->hash = hash;
    } else {
        return CS_OK;
    }
    if (ms == c->ms)
        c->version++;
    return CS_OK;
}

void cs_cursor_advance(cs_cursor_t *c, int64_t ms, int64_t overlap_ms)
{
    int64_t keep_from;
    if (ms > c->ms) {
        c->ms = ms;
        c->version++;
    }
    keep_from = cs_cursor_query_from(c, overlap_ms);
    /* shrink when the window emptied a big table; otherwise rebuild only when something
     * falls out of the window */
    for (size_t i = 0; i < c->cap; i++) {
        if (c->slots[i].id[0] && c->slots[i].ms < keep_from) {
            size_t cap = c->cap;
            while (cap > 64 && c->used * 8 < cap)
                cap /= 2;
            rehash(c, cap, keep_from); /* on ENOMEM the old table stays: still correct */
            break;
        }
    }
}

size_t cs_cursor_handled(const cs_cursor_t *c)
{
    return c->used;
}

size_t cs_cursor_ids_at_cursor(const cs_cursor_t *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++)
        n += c->slots[i].id[0] && c->slots[i].ms == c->ms;
    return n;
}

uint64_t cs_cursor_version(const cs_cursor_t *c)
{
    return c->version;
}

char *cs_cursor_to_json(const cs_cursor_t *c, size_t max_ids)
{
    json_t *doc = json_object(), *ids = json_array(), *hashes = json_array();
    size_t n = 0;
    char hex[17];
    int truncated = 0;
    char *out = NULL;
    if (!max_ids)
        max_ids = CS_CURSOR_MAX_IDS;
    if (!doc || !ids || !hashes)
        goto out;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].id[0] || c->slots[i].ms != c->ms)
            continue;
        if (n == max_ids) {
            truncated = 1;
            break;
        }
        if (c->slots[i].hash)
            snprintf(hex, sizeof(hex), "%016" PRIx64, c->slots[i].hash);
        else
            hex[0] = '\0';
        if (json_array_append_new(ids, json_string(c->slots[i].id)) ||
            json_array_append_new(hashes, json_string(hex)))
            goto out;
        n++;
    }
    if (json_object_set_new(doc, "cursor_ms", json_integer((json_int_t)c->ms)) ||
        json_object_set(doc, "ids_at_cursor", ids) ||
        json_object_set(doc, "hashes_at_cursor", hashes) ||
        (truncated && json_object_set_new(doc, "ids_truncated", json_true())) ||
        json_object_set_new(doc, "written_at", json_integer((json_int_t)cs_wall_ms())))
        goto out;
    out = json_dumps(doc, JSON_COMPACT);
out:
    json_decref(ids);
    json_decref(hashes);
    json_decref(doc);
    return out;
}

int cs_cursor_from_json(cs_cursor_t *c, const char *text, size_t len, char *errstr,
                        size_t errstr_size)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr), *ms, *ids, *hashes, *v;
    cs_cursor_t tmp;
    size_t i;
    int err = CS_ERR_PARSE;
    memset(&tmp, 0, sizeof(tmp));
    if (!doc) {
        cs_err_set(errstr, errstr_size, CS_ERR_PARSE, "not JSON: %s", jerr.text);
        goto out;
    }
    ms = json_object_get(doc, "cursor_ms");
    ids = json_object_get(doc, "ids_at_cursor");
    hashes = json_object_get(doc, "hashes_at_cursor");
    if (!json_is_integer(ms) || json_integer_value(ms) < 0 || (ids && !json_is_array(ids)) ||
        (hashes && !json_is_array(hashes))) {
        cs_err_set(errstr, errstr_size, CS_ERR_PARSE,
                   "expected {\"cursor_ms\": integer >= 0, \"ids_at_cursor\": [...]}");
        goto out;
    }
    /* build the new set aside, so a bad document leaves c untouched */
    tmp.cap = 64;
    while (tmp.cap < json_array_size(ids) * 2 + 2)
        tmp.cap *= 2;
    if (!(tmp.slots = calloc(tmp.cap, sizeof(*tmp.slots)))) {
        err = cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    tmp.ms = json_integer_value(ms);
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        if (!id || !*id || strlen(id) >= ID_MAX) {
            cs_err_set(errstr, errstr_size, CS_ERR_PARSE, "ids_at_cursor[%zu]: not an id", i);
            goto out;
        }
        const char *hex = json_string_value(json_array_get(hashes, i));
        uint64_t h = 0;
        if (hex && *hex) {
            char *end;
            h = strtoull(hex, &end, 16);
            if (*end || strlen(hex) != 16) {
                cs_err_set(errstr, errstr_size, CS_ERR_PARSE, "hashes_at_cursor[%zu]: not a hash",
                           i);
                goto out;
            }
        }
        slot_t *s = find_slot(tmp.slots, tmp.cap, id);
        if (!s->id[0]) {
            snprintf(s->id, sizeof(s->id), "%s", id);
            s->ms = tmp.ms;
            s->hash = h;
            tmp.used++;
        }
    }
    free(c->slots);
    c->slots = tmp.slots;
    tmp.slots = NULL;
    c->cap = tmp.cap;
    c->used = tmp.used;
    c->ms = tmp.ms;
    c->loaded = 1;
    c->version++;
    err = CS_OK;
out:
    free(tmp.slots);
    json_decref(doc);
    return err;
}

/* ------------------------------------------------------------------ store */

int cs_cursor_load(const cs_conf_t *conf, const char *topic, cs_cursor_t *const *cursors, size_t n,
                   int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *kc = cs_kafka_conf_new(conf, errstr, errstr_size);
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t *hi = NULL, *next = NULL, deadline = cs_now_ms() + timeout_ms;
    int nparts, err = CS_ERR_KAFKA, remaining = 0;
    char jerr[256];

    if (!kc)
        return CS_ERR_CONFIG;
    /* A plain reader: partitions are assigned, not subscribed; nothing is committed. */
    if (rd_kafka_conf_set(kc, "group.id", "crmsync-cursor-reader", errstr, errstr_size) ||
        rd_kafka_conf_set(kc, "enable.auto.commit", "false", errstr, errstr_size) ||
        rd_kafka_conf_set(kc, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        /* the end is the high watermark; EOF also ends a partition whose last offsets
         * were compacted away */
        rd_kafka_conf_set(kc, "enable.partition.eof", "true", errstr, errstr_size)) {
        rd_kafka_conf_destroy(kc);
        return CS_ERR_CONFIG;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errstr_size))) {
        rd_kafka_conf_destroy(kc);
        return CS_ERR_KAFKA;
    }
    kc = NULL; /* now owned by rk */

    nparts = cs_kafka_partition_count(rk, topic, timeout_ms);
    if (nparts < 0) {
        err = nparts;
        if (err == CS_ERR_NOT_FOUND)
            cs_err_set(errstr, errstr_size, err,
                       "cursor topic %s does not exist (crmsync-admin topics create)", topic);
        else
            cs_err_set(errstr, errstr_size, err, "cursor topic %s: metadata: %s", topic,
                       cs_err_str(err));
        goto out;
    }
    hi = calloc((size_t)nparts, sizeof(*hi));
    next = calloc((size_t)nparts, sizeof(*next));
    parts = rd_kafka_topic_partition_list_new(nparts);
    if (!hi || !next || !parts) {
        err = cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int p = 0; p < nparts; p++) {
        int64_t lo = 0;
        int left = (int)(deadline - cs_now_ms());
        rd_kafka_resp_err_t kerr =
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi[p], left > 0 ? left : 1);
        if (kerr) {
            err = cs_kafka_err(kerr) == CS_ERR_TIMEOUT ? CS_ERR_TIMEOUT : CS_ERR_KAFKA;
            cs_err_set(errstr, errstr_size, err, "cursor topic %s [%d]: watermarks: %s", topic, p,
                       rd_kafka_err2str(kerr));
            goto out;
        }
        next[p] = lo;
        if (hi[p] > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo;
            remaining++;
        }
    }
    if (remaining && rd_kafka_assign(rk, parts)) {
        err =
            cs_err_set(errstr, errstr_size, CS_ERR_KAFKA, "cursor topic %s: assign failed", topic);
        goto out;
    }
    while (remaining > 0) {
        rd_kafka_message_t *m;
        if (cs_now_ms() >= deadline) {
            err =
                cs_err_set(errstr, errstr_size, CS_ERR_TIMEOUT,
                           "cursor topic %s: not read to its end within %d ms", topic, timeout_ms);
            goto out;
        }
        if (cs_run_stopping()) {
            err = cs_err_set(errstr, errstr_size, CS_ERR_SHUTDOWN, "stopping");
            goto out;
        }
        if (!(m = rd_kafka_consumer_poll(rk, 200)))
            continue;
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->partition >= 0 && m->partition < nparts &&
                    next[m->partition] < hi[m->partition] && m->offset >= hi[m->partition]) {
                    next[m->partition] = m->offset;
                    remaining--;
                }
            } else {
                CS_WARN("cursor", "reading %s: %s", topic, rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->partition >= 0 && m->partition < nparts && next[m->partition] < hi[m->partition]) {
            for (size_t i = 0; i < n && m->key; i++) {
                const char *name = cs_cursor_name(cursors[i]);
                if (m->key_len != strlen(name) || memcmp(m->key, name, m->key_len))
                    continue;
                if (!m->payload) /* a tombstone: the cursor was deleted on purpose */
                    continue;
                if (cs_cursor_from_json(cursors[i], m->payload, m->len, jerr, sizeof(jerr)))
                    CS_WARN("cursor",
                            "%s: unreadable value at %s [%" PRId32 "] offset %" PRId64
                            " skipped (the previous value stands): %s",
                            name, topic, m->partition, m->offset, jerr);
            }
            next[m->partition] = m->offset + 1;
            if (next[m->partition] >= hi[m->partition])
                remaining--;
        }
        rd_kafka_message_destroy(m);
    }
    err = CS_OK;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    free(hi);
    free(next);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return err;
}

int cs_cursor_send(cs_producer_t *p, const char *topic, const cs_cursor_t *c, void *msg_opaque,
                   int block_ms)
{
    char *doc = cs_cursor_to_json(c, 0);
    int err;
    if (!doc)
        return CS_ERR_NOMEM;
    err = cs_producer_send(p, topic, c->name, strlen(c->name), doc, strlen(doc), 0, msg_opaque,
                           block_ms);
    free(doc);
    return err;
}
