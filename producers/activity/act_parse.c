/* Request bodies -> activity events (see act.h). Pure: no I/O, no globals except the counter
 * of generated ids. */
#include "act.h"

#include "cs_err.h"
#include "cs_time.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

/* The largest epoch-ms value accepted (9999-12-31T23:59:59.999Z). */
#define MAX_EPOCH_MS 253402300799999LL

static const char *const type_names[] = {
    "form",       "form_handler", "landing_page", "tracked_link_click", "page_view", "email_open",
    "email_send", "email_click",  "unsubscribe",  "visitor_session",    "other",
};

int act_type_lookup(const char *name, size_t len)
{
    char buf[32];
    if (len >= sizeof(buf))
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        buf[i] = (c == '-' || c == ' ') ? '_' : (char)tolower((unsigned char)c);
    }
    buf[len] = '\0';
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (!strcmp(buf, type_names[i]))
            return (int)i;
    return -1;
}

const char *act_type_name(int type)
{
    if (type < 0 || type >= (int)(sizeof(type_names) / sizeof(type_names[0])))
        return "other";
    return type_names[type];
}

/* ---- fields ---- */

enum { F_ID, F_TYPE, F_EMAIL, F_PROSPECT_ID, F_TIME, F_IDENTIFIED, F_SCORE, F_SOURCE, F_COUNT };

static const char *const canonical[F_COUNT] = {
    "id",          "type",       "email",       "prospect_id",
    "occurred_at", "identified", "score_delta", "source_activity_id",
};

/* Names accepted for each field: crmsync's snake_case, v5-style camelCase, and aliases. */
static const struct {
    const char *name;
    int field;
} field_names[] = {
    {"id", F_ID},
    {"event_id", F_ID},
    {"eventId", F_ID},
    {"type", F_TYPE},
    {"email", F_EMAIL},
    {"prospect_email", F_EMAIL},
    {"prospectEmail", F_EMAIL},
    {"prospect_id", F_PROSPECT_ID},
    {"prospectId", F_PROSPECT_ID},
    {"occurred_at", F_TIME},
    {"occurredAt", F_TIME},
    {"time", F_TIME},
    {"timestamp", F_TIME},
    {"created_at", F_TIME},
    {"createdAt", F_TIME},
    {"identified", F_IDENTIFIED},
    {"score_delta", F_SCORE},
    {"scoreDelta", F_SCORE},
    {"source_activity_id", F_SOURCE},
    {"activity_id", F_SOURCE},
    {"activityId", F_SOURCE},
};

typedef struct evctx_s {
    act_event_t *ev;
    const act_parse_opts_t *o;
    act_parse_err_t *err;
    long index;
    const char *seen[F_COUNT]; /* the name each field was given under */
    char seen_buf[F_COUNT][32];
} evctx_t;

static int field_error(act_parse_err_t *err, long index, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int field_error(act_parse_err_t *err, long index, const char *field, const char *fmt, ...)
{
    va_list ap;
    err->status = 400;
    snprintf(err->error, sizeof(err->error), "invalid_field");
    snprintf(err->field, sizeof(err->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->index = index;
    return CS_ERR_PARSE;
}

static int body_error(act_parse_err_t *err, int status, const char *code, long index,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int body_error(act_parse_err_t *err, int status, const char *code, long index,
                      const char *fmt, ...)
{
    va_list ap;
    err->status = status;
    snprintf(err->error, sizeof(err->error), "%s", code);
    err->field[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->index = index;
    return CS_ERR_PARSE;
}

static int lookup_field(const char *name)
{
    for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
        if (!strcmp(field_names[i].name, name))
            return field_names[i].field;
    return -1;
}

/* Trims ASCII blanks; returns the start, *len updated. */
static const char *trim(const char *s, size_t *len)
{
    size_t b = 0, e = *len;
    while (b < e && isspace((unsigned char)s[b]))
        b++;
    while (e > b && isspace((unsigned char)s[e - 1]))
        e--;
    *len = e - b;
    return s + b;
}

/* Whole decimal integer (optional sign) in [min, max]. */
static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    size_t len = strlen(s);
    char buf[32], *end;
    s = trim(s, &len);
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* An integer from a JSON integer or a decimal string. */
static int int_value(json_t *jv, const char *sv, long long min, long long max, long long *out)
{
    if (jv && json_is_integer(jv)) {
        long long v = json_integer_value(jv);
        if (v < min || v > max)
            return -1;
        *out = v;
        return 0;
    }
    if (jv)
        sv = json_string_value(jv); /* NULL for anything else */
    return sv ? parse_ll(sv, min, max, out) : -1;
}

static int set_field(evctx_t *c, int f, const char *name, json_t *jv, const char *sv)
{
    act_event_t *ev = c->ev;
    long long v;
    const char *s = jv ? json_string_value(jv) : sv;
    size_t len = s ? (jv ? json_string_length(jv) : strlen(s)) : 0;

    if (c->seen[f])
        return field_error(c->err, c->index, name, "%s given twice (also as %s)", canonical[f],
                           c->seen[f]);
    snprintf(c->seen_buf[f], sizeof(c->seen_buf[f]), "%s", name);
    c->seen[f] = c->seen_buf[f];

    switch (f) {
    case F_ID:
        if (jv && json_is_integer(jv)) {
            snprintf(ev->id, sizeof(ev->id), "%" JSON_INTEGER_FORMAT, json_integer_value(jv));
            return CS_OK;
        }
        if (!s)
            return field_error(c->err, c->index, name, "must be a string or an integer");
        s = trim(s, &len);
        if (len == 0 || len > ACT_ID_MAX)
            return field_error(c->err, c->index, name, "must be 1 to %d bytes", ACT_ID_MAX);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return field_error(c->err, c->index, name, "must not contain control characters");
        memcpy(ev->id, s, len);
        ev->id[len] = '\0';
        return CS_OK;
    case F_TYPE:
        if (!s)
            return field_error(c->err, c->index, name, "must be a string");
        s = trim(s, &len);
        if ((ev->type = act_type_lookup(s, len)) < 0)
            return field_error(c->err, c->index, name,
                               "unknown activity type \"%.40s\" (form, form_handler, landing_page, "
                               "tracked_link_click, page_view, email_open, email_send, "
                               "email_click, unsubscribe, visitor_session, other)",
                               s);
        return CS_OK;
    case F_EMAIL:
        if (!s)
            return field_error(c->err, c->index, name, "must be a string");
        s = trim(s, &len);
        if (memchr(s, '\0', len) || len >= ACT_KEY_MAX ||
            cs_key_normalize_email(s, len, ev->key, sizeof(ev->key)) <= 0) {
            ev->key[0] = '\0';
            return field_error(c->err, c->index, name, "not a valid e-mail address");
        }
        memcpy(ev->email, s, len);
        ev->email[len] = '\0';
        return CS_OK;
    case F_PROSPECT_ID:
        if (int_value(jv, sv, 1, INT64_MAX, &v) < 0)
            return field_error(c->err, c->index, name, "must be a positive integer");
        ev->prospect_id = v;
        return CS_OK;
    case F_SOURCE:
        if (int_value(jv, sv, 0, INT64_MAX, &v) < 0)
            return field_error(c->err, c->index, name, "must be a non-negative integer");
        ev->source_activity_id = v;
        return CS_OK;
    case F_SCORE:
        if (int_value(jv, sv, INT32_MIN, INT32_MAX, &v) < 0)
            return field_error(c->err, c->index, name, "must be an integer (32-bit)");
        ev->score_delta = (int32_t)v;
        return CS_OK;
    case F_TIME: {
        int64_t ms;
        if (jv && json_is_integer(jv)) {
            v = json_integer_value(jv);
            if (v <= 0 || v > MAX_EPOCH_MS)
                return field_error(c->err, c->index, name,
                                   "epoch milliseconds out of range (1 .. 9999-12-31)");
            ev->occurred_at = v;
            return CS_OK;
        }
        if (!s)
            return field_error(c->err, c->index, name,
                               "must be an ISO-8601 date-time or epoch milliseconds");
        s = trim(s, &len);
        char buf[64];
        if (len == 0 || len >= sizeof(buf))
            return field_error(c->err, c->index, name,
                               "must be an ISO-8601 date-time or epoch milliseconds");
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (strspn(buf, "0123456789") == len) {
            if (parse_ll(buf, 1, MAX_EPOCH_MS, &v) < 0)
                return field_error(c->err, c->index, name,
                                   "epoch milliseconds out of range (1 .. 9999-12-31)");
            ev->occurred_at = v;
            return CS_OK;
        }
        if (cs_time_parse_iso8601(buf, &ms) != CS_OK || ms <= 0)
            return field_error(c->err, c->index, name,
                               "\"%.40s\" is not an ISO-8601 date-time (2024-05-01T10:11:12Z) or "
                               "epoch milliseconds",
                               buf);
        ev->occurred_at = ms;
        return CS_OK;
    }
    case F_IDENTIFIED:
        if (jv && json_is_boolean(jv)) {
            ev->identified = json_is_true(jv);
            return CS_OK;
        }
        if (jv && json_is_integer(jv) &&
            (json_integer_value(jv) == 0 || json_integer_value(jv) == 1)) {
            ev->identified = (int)json_integer_value(jv);
            return CS_OK;
        }
        if (s) {
            static const char *const t[] = {"true", "1", "yes", "on"}, *const fl[] = {"false", "0",
                                                                                      "no", "off"};
            s = trim(s, &len);
            for (int i = 0; i < 4; i++) {
                if (strlen(t[i]) == len && !strncasecmp(s, t[i], len)) {
                    ev->identified = 1;
                    return CS_OK;
                }
                if (strlen(fl[i]) == len && !strncasecmp(s, fl[i], len)) {
                    ev->identified = 0;
                    return CS_OK;
                }
            }
        }
        return field_error(c->err, c->index, name, "must be a boolean");
    }
    return CS_OK;
}

static void event_init(evctx_t *c, act_event_t *ev, const act_parse_opts_t *o, act_parse_err_t *err,
                       long index)
{
    memset(c, 0, sizeof(*c));
    memset(ev, 0, sizeof(*ev));
    ev->prospect_id = -1;
    ev->source_activity_id = -1;
    ev->type = -1;
    ev->identified = 1;
    ev->occurred_at = -1;
    c->ev = ev;
    c->o = o;
    c->err = err;
    c->index = index;
}

/* Checks what must be there, fills the defaults and the key. */
static int event_finish(evctx_t *c)
{
    static atomic_ullong generated;
    act_event_t *ev = c->ev;
    if (!c->seen[F_ID]) {
        if (c->o->require_id)
            return field_error(c->err, c->index, "id",
                               "missing: an event id (id or event_id) is required, so that a "
                               "retried request is not counted twice");
        snprintf(ev->id, sizeof(ev->id), "gen-%d-%" PRId64 "-%llu", (int)getpid(), c->o->now_ms,
                 (unsigned long long)atomic_fetch_add(&generated, 1));
    }
    if (ev->type < 0)
        return field_error(c->err, c->index, "type", "missing: the activity type is required");
    if (c->o->key_mode == ACT_KEY_ID) {
        if (ev->prospect_id < 0)
            return field_error(c->err, c->index, "prospect_id",
                               "missing: the prospect id is the key (prospect.key=id)");
        snprintf(ev->key, sizeof(ev->key), "%" PRId64, ev->prospect_id);
    } else if (!ev->email[0]) {
        return field_error(c->err, c->index, "email",
                           ev->prospect_id >= 0
                               ? "missing: the key is the prospect's e-mail (prospect.key=email); "
                                 "a prospect id alone cannot be keyed"
                               : "missing: the prospect's e-mail is required");
    }
    if (ev->occurred_at < 0)
        ev->occurred_at = c->o->now_ms;
    return CS_OK;
}

static int event_from_json(json_t *obj, const act_parse_opts_t *o, act_event_t *ev,
                           act_parse_err_t *err, long index)
{
    evctx_t c;
    const char *k;
    json_t *v;
    event_init(&c, ev, o, err, index);
    if (!json_is_object(obj))
        return body_error(err, 400, "invalid_event", index, "event %ld is not a JSON object",
                          index);
    json_object_foreach(obj, k, v)
    {
        int f = lookup_field(k);
        if (f < 0 || json_is_null(v))
            continue; /* unknown keys are ignored (forward compatible); null = absent */
        if (set_field(&c, f, k, v, NULL))
            return CS_ERR_PARSE;
    }
    return event_finish(&c);
}

/* ---- bodies ---- */

typedef struct evlist_s {
    act_event_t *v;
    size_t n, cap;
} evlist_t;

static act_event_t *evlist_add(evlist_t *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        act_event_t *nv = realloc(l->v, cap * sizeof(*nv));
        if (!nv)
            return NULL;
        l->v = nv;
        l->cap = cap;
    }
    return &l->v[l->n++];
}

static int parse_json(const char *body, size_t len, const act_parse_opts_t *o, evlist_t *l,
                      act_parse_err_t *err)
{
    size_t pos = 0;
    long values = 0;
    for (;;) {
        while (pos < len && isspace((unsigned char)body[pos]))
            pos++;
        if (pos >= len)
            break;
        json_error_t je;
        json_t *root =
            json_loadb(body + pos, len - pos, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &je);
        if (!root) {
            /* je.position is relative to this value; report the absolute byte offset and,
             * for NDJSON, which value (line) it was */
            return body_error(err, 400, "invalid_json", values > 0 ? (long)l->n : -1,
                              "%s at byte %zu%s", je.text, pos + (size_t)je.position,
                              values > 0 ? " (after the previous value)" : "");
        }
        pos += (size_t)je.position;
        values++;
        if (json_is_array(root)) {
            size_t i;
            json_t *el;
            if (l->n + json_array_size(root) > o->max_events) {
                json_decref(root);
                return body_error(err, 413, "too_many_events", -1,
                                  "more than %zu events in one request (ingest.max_events)",
                                  o->max_events);
            }
            json_array_foreach(root, i, el)
            {
                act_event_t *ev = evlist_add(l);
                if (!ev) {
                    json_decref(root);
                    return CS_ERR_NOMEM;
                }
                if (event_from_json(el, o, ev, err, (long)(l->n - 1))) {
                    json_decref(root);
                    return CS_ERR_PARSE;
                }
            }
        } else if (json_is_object(root)) {
            if (l->n >= o->max_events) {
                json_decref(root);
                return body_error(err, 413, "too_many_events", -1,
                                  "more than %zu events in one request (ingest.max_events)",
                                  o->max_events);
            }
            act_event_t *ev = evlist_add(l);
            if (!ev) {
                json_decref(root);
                return CS_ERR_NOMEM;
            }
            if (event_from_json(root, o, ev, err, (long)(l->n - 1))) {
                json_decref(root);
                return CS_ERR_PARSE;
            }
        } else {
            json_decref(root);
            return body_error(err, 400, "invalid_json", (long)l->n,
                              "expected a JSON object, an array of objects, or objects one per "
                              "line (NDJSON)");
        }
        json_decref(root);
    }
    return CS_OK;
}

typedef struct formctx_s {
    evctx_t c;
    int failed;
} formctx_t;

static int form_cb(void *opaque, const char *key, const char *value)
{
    formctx_t *fc = opaque;
    int f = lookup_field(key);
    if (f < 0)
        return 0; /* a form's own fields (first_name, ...) are not ours */
    if (set_field(&fc->c, f, key, NULL, value)) {
        fc->failed = 1;
        return 1;
    }
    return 0;
}

static int parse_form(const char *body, size_t len, const act_parse_opts_t *o, evlist_t *l,
                      act_parse_err_t *err)
{
    formctx_t fc;
    act_event_t *ev = evlist_add(l);
    if (!ev)
        return CS_ERR_NOMEM;
    event_init(&fc.c, ev, o, err, 0);
    fc.failed = 0;
    int rc = cs_httpd_form_parse(body, len, form_cb, &fc);
    if (fc.failed)
        return CS_ERR_PARSE;
    if (rc == CS_ERR_NOMEM)
        return CS_ERR_NOMEM;
    if (rc)
        return body_error(err, 400, "invalid_form", 0,
                          "malformed application/x-www-form-urlencoded body (bad %%-escape)");
    return event_finish(&fc.c);
}

/* The media type of a Content-Type value, lower-cased, without parameters. */
static void media_type(const char *ct, char *out, size_t n)
{
    size_t k = 0;
    if (!ct)
        ct = "";
    while (*ct == ' ' || *ct == '\t')
        ct++;
    for (; *ct && *ct != ';' && *ct != ' ' && *ct != '\t' && k + 1 < n; ct++)
        out[k++] = (char)tolower((unsigned char)*ct);
    out[k] = '\0';
}

int act_parse_body(const char *content_type, const char *body, size_t len,
                   const act_parse_opts_t *o, act_event_t **events, size_t *n, act_parse_err_t *err)
{
    char mt[96];
    evlist_t l = {NULL, 0, 0};
    int rc;
    size_t blank = 0;

    memset(err, 0, sizeof(*err));
    err->index = -1;
    *events = NULL;
    *n = 0;
    while (blank < len && isspace((unsigned char)body[blank]))
        blank++;
    if (blank == len)
        return body_error(err, 400, "empty_body", -1, "the request has no events");
    media_type(content_type, mt, sizeof(mt));
    /* curl -d sends JSON as a form unless told otherwise: a "form" that starts like JSON is
     * read as JSON (no form field of ours starts with a brace or a bracket) */
    if (!strcmp(mt, "application/x-www-form-urlencoded") && body[blank] != '{' &&
        body[blank] != '[')
        rc = parse_form(body, len, o, &l, err);
    else if (!mt[0] || !strcmp(mt, "application/json") ||
             !strcmp(mt, "application/x-www-form-urlencoded") ||
             !strcmp(mt, "application/x-ndjson") || !strcmp(mt, "application/ndjson") ||
             !strcmp(mt, "application/jsonl") || !strcmp(mt, "application/x-jsonlines") ||
             !strcmp(mt, "text/plain"))
        rc = parse_json(body, len, o, &l, err);
    else
        rc = body_error(err, 415, "unsupported_media_type", -1,
                        "Content-Type %.60s is not accepted (application/json, "
                        "application/x-ndjson, application/x-www-form-urlencoded)",
                        mt);
    if (rc == CS_OK && l.n == 0)
        rc = body_error(err, 400, "empty_body", -1, "the request has no events");
    if (rc) {
        free(l.v);
        if (rc == CS_ERR_NOMEM)
            body_error(err, 500, "internal", -1, "out of memory");
        return rc;
    }
    *events = l.v;
    *n = l.n;
    return CS_OK;
}
