/* sb_mkt: the marketing objects, their rendering and the prospect writes. */
#include "sb_mkt_int.h"

#include "cs_run.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TEXT 255

/* ---- the objects ---- */

#define W MF_W
#define C MF_CONN
#define F MF_FILT
#define S MF_SORT
#define N MF_NULL

static const mfield_t prospect_fields[] = {
    {"id", MT_INT, F | S},
    {"email", MT_EMAIL, W | F},
    {"firstName", MT_STR, W | N},
    {"lastName", MT_STR, W | N},
    {"company", MT_STR, W | N},
    {"jobTitle", MT_STR, W | N},
    {"phone", MT_STR, W | N},
    {"website", MT_STR, W | N},
    {"city", MT_STR, W | N},
    {"state", MT_STR, W | N},
    {"country", MT_STR, W | N},
    {"source", MT_STR, W | N},
    {"score", MT_INT, W},
    {"grade", MT_STR, W | N},
    {"assignedToId", MT_INT, W | N | F},
    {"salesforceId", MT_STR, C | N},
    {"salesforceLeadId", MT_STR, C | N},
    {"salesforceContactId", MT_STR, C | N},
    {"salesforceOwnerId", MT_STR, C | N},
    {"salesforceLastSync", MT_DT, C | N},
    {"salesforceUrl", MT_STR, MF_COMP},
    {"optedOut", MT_BOOL, W},
    {"isDoNotEmail", MT_BOOL, W},
    {"isDoNotCall", MT_BOOL, W},
    {"crmsyncDoNotSync__c", MT_BOOL, W},
    {"isDeleted", MT_BOOL, 0},
    {"createdAt", MT_DT, F | S},
    {"createdById", MT_INT, F}, /* marketing user who created it (null: none) */
    {"updatedAt", MT_DT, F | S},
    {"updatedById", MT_INT, F}, /* marketing user of the last change (null: none) */
    {"lastActivityAt", MT_DT, F | S},
};

static const mfield_t activity_fields[] = {
    {"id", MT_INT, F | S},           {"type", MT_INT, F},          {"typeName", MT_STR, 0},
    {"details", MT_STR, 0},          {"prospectId", MT_INT, F},    {"visitorId", MT_INT, 0},
    {"campaignId", MT_INT, 0},       {"emailId", MT_INT, 0},       {"listEmailId", MT_INT, 0},
    {"formId", MT_INT, 0},           {"formHandlerId", MT_INT, 0}, {"landingPageId", MT_INT, 0},
    {"customRedirectId", MT_INT, 0}, {"fileId", MT_INT, 0},        {"visitorPageViewId", MT_INT, 0},
    {"createdAt", MT_DT, F | S},     {"updatedAt", MT_DT, F | S},
};

static const mfield_t user_fields[] = {
    {"id", MT_INT, F | S},       {"email", MT_EMAIL, F},      {"username", MT_STR, 0},
    {"firstName", MT_STR, 0},    {"lastName", MT_STR, 0},     {"jobTitle", MT_STR, 0},
    {"role", MT_STR, 0},         {"salesforceId", MT_STR, 0}, {"isDeleted", MT_BOOL, 0},
    {"createdAt", MT_DT, F | S}, {"updatedAt", MT_DT, F | S},
};

#undef W
#undef C
#undef F
#undef S
#undef N

#define NF(a) (sizeof(a) / sizeof((a)[0]))

static const mobj_t mobjs[MO_N] = {
    {"prospects", prospect_fields, NF(prospect_fields), MO_PROSPECTS},
    {"visitor-activities", activity_fields, NF(activity_fields), MO_ACTIVITIES},
    {"users", user_fields, NF(user_fields), MO_USERS},
};

const mobj_t *sb_mobj(const char *name)
{
    for (int i = 0; name && i < MO_N; i++)
        if (!strcmp(mobjs[i].name, name))
            return &mobjs[i];
    return NULL;
}

const mobj_t *sb_mobj_at(int idx)
{
    return &mobjs[idx];
}

int64_t sb_mkt_user_by_crm_id(sb_mkt_t *m, const char *crm_user_id)
{
    int64_t id = SB_MKT_NO_USER;
    if (!crm_user_id || !*crm_user_id)
        return id;
    pthread_rwlock_rdlock(&m->lock);
    for (size_t i = 0; i < m->n[MO_USERS] && id == SB_MKT_NO_USER; i++) {
        const mrec_t *u = m->recs[MO_USERS][i];
        const char *sf = json_string_value(json_object_get(u->v, "salesforceId"));
        if (!u->deleted && sf && !strcmp(sf, crm_user_id))
            id = u->id;
    }
    pthread_rwlock_unlock(&m->lock);
    return id;
}

int sb_mkt_known_object(const char *object)
{
    return sb_mobj(object) != NULL;
}

const mfield_t *sb_mfield(const mobj_t *o, const char *name)
{
    for (size_t i = 0; i < o->nfields; i++)
        if (!strcmp(o->fields[i].name, name))
            return &o->fields[i];
    return NULL;
}

json_t *sb_v5_error(int code, const char *msg)
{
    char *clean = sb_utf8_dup(msg); /* messages may echo the caller's bytes */
    json_t *e = json_pack("{s:i, s:s}", "code", code, "message", clean ? clean : "");
    free(clean);
    return e;
}

static json_t *v5err(int *status, int http, int code, const char *msg)
{
    *status = http;
    return sb_v5_error(code, msg);
}

/* ---- lifecycle ---- */

static void mrec_free(mrec_t *r)
{
    if (r) {
        json_decref(r->v);
        free(r->email_key);
        free(r);
    }
}

static int push(sb_mkt_t *m, int idx, mrec_t *r)
{
    if (m->n[idx] == m->cap[idx]) {
        size_t cap = m->cap[idx] ? m->cap[idx] * 2 : 1024;
        mrec_t **n = realloc(m->recs[idx], cap * sizeof(*n));
        if (!n)
            return -1;
        m->recs[idx] = n;
        m->cap[idx] = cap;
    }
    m->recs[idx][m->n[idx]++] = r;
    return 0;
}

mrec_t *sb_mkt_find(sb_mkt_t *m, int idx, int64_t id)
{
    size_t lo = 0, hi = m->n[idx];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int64_t v = m->recs[idx][mid]->id;
        if (v == id)
            return m->recs[idx][mid];
        if (v < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static mrec_t *mrec_new(sb_mkt_t *m, int idx, int64_t now_ms)
{
    mrec_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->v = json_object();
    if (!r->v) {
        free(r);
        return NULL;
    }
    r->id = m->next_id[idx]++;
    int64_t now = now_ms - ((now_ms % 1000) + 1000) % 1000;
    json_object_set_new(r->v, "id", json_integer(r->id));
    json_object_set_new(r->v, "createdAt", json_integer(now));
    json_object_set_new(r->v, "updatedAt", json_integer(now));
    return r;
}

static int add_user(sb_mkt_t *m, const sb_person_t *p, const char *role, int64_t now_ms)
{
    mrec_t *r = mrec_new(m, MO_USERS, now_ms);
    if (!r)
        return -1;
    char crm_id[19];
    json_object_set_new(r->v, "email", json_string(p->email));
    json_object_set_new(r->v, "username", json_string(p->email));
    json_object_set_new(r->v, "firstName", json_string(p->first));
    json_object_set_new(r->v, "lastName", json_string(p->last));
    json_object_set_new(r->v, "role", json_string(role));
    json_object_set_new(r->v, "isDeleted", json_false());
    json_object_set_new(r->v, "salesforceId",
                        m->o.crm && sb_crm_user_by_email(m->o.crm, p->email, crm_id) == 0
                            ? json_string(crm_id)
                            : json_null());
    if (push(m, MO_USERS, r) != 0) {
        mrec_free(r);
        return -1;
    }
    return 0;
}

sb_mkt_t *sb_mkt_new(const sb_mkt_opts_t *o)
{
    sb_mkt_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_rwlock_init(&m->lock, NULL);
    m->o = *o;
    m->o.users = NULL; /* borrowed: read only while building */
    m->o.nusers = 0;
    m->o.integration = NULL;
    m->o.base_url = strdup(o->base_url ? o->base_url : "");
    m->o.crm_url = strdup(o->crm_url ? o->crm_url : "");
    m->by_email = sb_map_new();
    m->next_id[MO_PROSPECTS] = 1001;
    m->next_id[MO_ACTIVITIES] = 1;
    m->next_id[MO_USERS] = 101;
    if (!m->o.base_url || !m->o.crm_url || !m->by_email)
        goto fail;
    int64_t now = cs_wall_ms();
    int linked = 0; /* a configured user is the integration user already */
    for (size_t i = 0; i < o->nusers; i++) {
        if (add_user(m, &o->users[i], "Sales", now) != 0)
            goto fail;
        linked |= o->integration && !strcasecmp(o->users[i].email, o->integration->email);
    }
    /* after the configured users, so that their ids (101, ...) do not depend on it */
    if (o->integration && !linked && add_user(m, o->integration, "Administrator", now) != 0)
        goto fail;
    return m;
fail:
    sb_mkt_destroy(m);
    return NULL;
}

void sb_mkt_set_urls(sb_mkt_t *m, const char *base_url, const char *crm_url)
{
    char *b = strdup(base_url), *c = strdup(crm_url);
    if (!b || !c) {
        free(b);
        free(c);
        return;
    }
    pthread_rwlock_wrlock(&m->lock);
    free((char *)m->o.base_url);
    free((char *)m->o.crm_url);
    m->o.base_url = b;
    m->o.crm_url = c;
    pthread_rwlock_unlock(&m->lock);
}

static void drop(sb_mkt_t *m, int idx)
{
    for (size_t i = 0; i < m->n[idx]; i++)
        mrec_free(m->recs[idx][i]);
    m->n[idx] = 0;
}

void sb_mkt_destroy(sb_mkt_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < MO_N; i++) {
        drop(m, i);
        free(m->recs[i]);
    }
    sb_map_destroy(m->by_email);
    free((char *)m->o.base_url);
    free((char *)m->o.crm_url);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

void sb_mkt_reset(sb_mkt_t *m)
{
    pthread_rwlock_wrlock(&m->lock);
    drop(m, MO_PROSPECTS);
    drop(m, MO_ACTIVITIES);
    sb_map_clear(m->by_email);
    pthread_rwlock_unlock(&m->lock);
}

size_t sb_mkt_count(sb_mkt_t *m)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&m->lock);
    for (size_t i = 0; i < m->n[MO_PROSPECTS]; i++)
        n += !m->recs[MO_PROSPECTS][i]->deleted;
    pthread_rwlock_unlock(&m->lock);
    return n;
}

/* ---- rendering ---- */

json_t *sb_mkt_wire(sb_mkt_t *m, const mobj_t *o, const mrec_t *r, const mfield_t *f)
{
    if (f->flags & MF_COMP) { /* salesforceUrl */
        const char *sid = json_string_value(json_object_get(r->v, "salesforceId"));
        if (!sid)
            return json_null();
        char url[300];
        snprintf(url, sizeof(url), "%s/%s", m->o.crm_url, sid);
        return json_string(url);
    }
    json_t *v = json_object_get(r->v, f->name);
    if (!v)
        return f->type == MT_BOOL ? json_false() : json_null();
    if (f->type == MT_DT && json_is_integer(v)) {
        char buf[SB_TIME_BUF];
        return json_string(sb_fmt_iso(json_integer_value(v), m->o.utc_offset_min, buf));
    }
    return json_incref(v);
}

json_t *sb_mkt_render(sb_mkt_t *m, const mobj_t *o, const mrec_t *r, const mfield_t *const *fields,
                      size_t n)
{
    json_t *out = json_object();
    if (!fields) {
        for (size_t i = 0; i < o->nfields; i++)
            json_object_set_new(out, o->fields[i].name, sb_mkt_wire(m, o, r, &o->fields[i]));
    } else {
        for (size_t i = 0; i < n; i++)
            json_object_set_new(out, fields[i]->name, sb_mkt_wire(m, o, r, fields[i]));
    }
    return out;
}

const mfield_t **sb_mkt_parse_fields(const mobj_t *o, const char *list, size_t *n, json_t **err)
{
    *n = 0;
    *err = NULL;
    size_t cap = o->nfields;
    const mfield_t **out = calloc(cap, sizeof(*out));
    if (!out) {
        *err = sb_v5_error(500, "out of memory");
        return NULL;
    }
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            char name[64];
            const mfield_t *f = NULL;
            if (len < sizeof(name)) {
                memcpy(name, p, len);
                name[len] = '\0';
                f = sb_mfield(o, name);
            }
            if (!f) {
                char msg[200];
                snprintf(msg, sizeof(msg),
                         "Invalid parameter: fields. It contains an invalid or unknown field: "
                         "%.*s.",
                         (int)(len > 60 ? 60 : len), p);
                *err = sb_v5_error(51, msg);
                free(out);
                return NULL;
            }
            int dup = 0;
            for (size_t i = 0; i < *n; i++)
                dup |= out[i] == f;
            if (!dup)
                out[(*n)++] = f;
        }
        p = comma ? comma + 1 : NULL;
    }
    if (*n == 0) {
        *err = sb_v5_error(51, "Invalid parameter: fields. At least one field is required.");
        free(out);
        return NULL;
    }
    return out;
}

/* Renders for a write answer: the fields asked for, or every field. */
static json_t *render_for(sb_mkt_t *m, const mobj_t *o, const mrec_t *r, const char *fields,
                          int *status)
{
    if (!fields || !*fields)
        return sb_mkt_render(m, o, r, NULL, 0);
    size_t n;
    json_t *err;
    const mfield_t **fl = sb_mkt_parse_fields(o, fields, &n, &err);
    if (!fl) {
        *status = 400;
        return err;
    }
    json_t *out = sb_mkt_render(m, o, r, fl, n);
    free(fl);
    return out;
}

/* ---- reads ---- */

static int parse_id(const char *s, int64_t *id)
{
    if (!s || !*s)
        return -1;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || v <= 0 || v == LLONG_MAX)
        return -1;
    *id = v;
    return 0;
}

json_t *sb_mkt_read(sb_mkt_t *m, const char *object, const char *id, const char *fields,
                    int *status)
{
    const mobj_t *o = sb_mobj(object);
    int64_t nid;
    if (!o)
        return v5err(status, 404, 192, "Object does not exist");
    if (!fields || !*fields)
        return v5err(status, 400, 13, "One or more required parameters are missing: fields");
    if (parse_id(id, &nid) != 0)
        return v5err(status, 400, 16, "Invalid ID");
    size_t n;
    json_t *err;
    const mfield_t **fl = sb_mkt_parse_fields(o, fields, &n, &err);
    if (!fl) {
        *status = 400;
        return err;
    }
    json_t *out;
    pthread_rwlock_rdlock(&m->lock);
    mrec_t *r = sb_mkt_find(m, o->idx, nid);
    if (!r || r->deleted) {
        out = o->idx == MO_PROSPECTS ? v5err(status, 404, 3, "Invalid prospect ID")
                                     : v5err(status, 404, 16, "Invalid ID");
    } else {
        out = sb_mkt_render(m, o, r, fl, n);
        *status = 200;
    }
    pthread_rwlock_unlock(&m->lock);
    free(fl);
    return out;
}

/* ---- prospect writes ---- */

typedef struct owner_ctx_s {
    const mrec_t *self;
    mrec_t *found;
} owner_ctx_t;

static int owner_cb(void *opaque, void *val)
{
    owner_ctx_t *c = opaque;
    mrec_t *r = val;
    if (r != c->self && !r->deleted) {
        c->found = r;
        return 1;
    }
    return 0;
}

/* A live prospect with this e-mail (case-insensitive) other than self, or NULL. */
static mrec_t *email_owner(sb_mkt_t *m, const char *email, const mrec_t *self)
{
    char *key = sb_lower_dup(email);
    owner_ctx_t c = {self, NULL};
    if (key)
        sb_map_each(m->by_email, key, owner_cb, &c);
    free(key);
    return c.found;
}

static void reindex_email(sb_mkt_t *m, mrec_t *r)
{
    if (r->email_key) {
        sb_map_del(m->by_email, r->email_key, r);
        free(r->email_key);
        r->email_key = NULL;
    }
    const char *e = json_string_value(json_object_get(r->v, "email"));
    if (e && *e) {
        r->email_key = sb_lower_dup(e);
        if (r->email_key)
            sb_map_add(m->by_email, r->email_key, r);
    }
}

/* Validates a prospect body into normalized changes (new reference) or returns NULL with the
 * error in *err. target is NULL for a create. Caller holds the write lock. */
static json_t *prospect_changes(sb_mkt_t *m, json_t *body, const mrec_t *target, json_t **err,
                                int *status)
{
    const mobj_t *o = &mobjs[MO_PROSPECTS];
    char msg[300];
    *err = NULL;
    if (!json_is_object(body)) {
        *err = v5err(status, 400, 71, "Input needs to be valid JSON");
        return NULL;
    }
    json_t *ch = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        const mfield_t *f = sb_mfield(o, k);
        if (!f) {
            snprintf(msg, sizeof(msg), "Invalid property in request: %.80s", k);
            goto bad154;
        }
        int writable = (f->flags & MF_W) || ((f->flags & MF_CONN) && !m->o.strict_readonly);
        if (!writable) {
            snprintf(msg, sizeof(msg),
                     "Invalid property in request: %.80s. The property is "
                     "read-only.",
                     k);
            goto bad154;
        }
        if (json_is_null(v)) {
            if (!(f->flags & MF_NULL) && f->type != MT_EMAIL) {
                snprintf(msg, sizeof(msg), "Invalid value for property %s: null", k);
                goto bad154;
            }
            json_object_set_new(ch, f->name, json_null());
            continue;
        }
        switch (f->type) {
        case MT_INT:
            if (!json_is_integer(v)) {
                snprintf(msg, sizeof(msg), "Invalid value for property %s: expected an integer", k);
                goto bad154;
            }
            break;
        case MT_BOOL:
            if (!json_is_boolean(v)) {
                snprintf(msg, sizeof(msg), "Invalid value for property %s: expected a boolean", k);
                goto bad154;
            }
            break;
        case MT_DT: {
            int64_t ms;
            if (!json_is_string(v) || sb_parse_datetime(json_string_value(v), (size_t)-1, &ms)) {
                snprintf(msg, sizeof(msg),
                         "Invalid value for property %s: expected an ISO-8601 "
                         "date-time",
                         k);
                goto bad154;
            }
            json_object_set_new(ch, f->name, json_integer(ms - ((ms % 1000) + 1000) % 1000));
            continue;
        }
        default:
            if (!json_is_string(v) || strlen(json_string_value(v)) > MAX_TEXT) {
                snprintf(msg, sizeof(msg),
                         "Invalid value for property %s: expected a string of "
                         "at most %d characters",
                         k, MAX_TEXT);
                goto bad154;
            }
            break;
        }
        json_object_set(ch, f->name, v);
    }

    json_t *email = json_object_get(ch, "email");
    if (!target || email) {
        const char *e = json_string_value(email);
        if (!e || !sb_email_valid(e)) {
            *err = v5err(status, 400, 4, "Invalid prospect email address");
            goto fail;
        }
        if (!m->o.allow_dup_emails && email_owner(m, e, target)) {
            *err =
                v5err(status, 400, 9, "A prospect with the specified email address already exists");
            goto fail;
        }
    }
    json_t *assigned = json_object_get(ch, "assignedToId");
    if (json_is_integer(assigned)) {
        mrec_t *u = sb_mkt_find(m, MO_USERS, json_integer_value(assigned));
        if (!u || u->deleted) {
            *err = v5err(status, 400, 10, "Invalid user ID");
            goto fail;
        }
    }
    return ch;
bad154:
    *err = v5err(status, 400, 154, msg);
fail:
    json_decref(ch);
    return NULL;
}

static json_t *user_ref(int64_t by)
{
    return by == SB_MKT_NO_USER ? json_null() : json_integer(by);
}

/* A change by user `by` at now_ms: updatedAt and updatedById move together. */
static void stamp(mrec_t *r, int64_t now_ms, int64_t by)
{
    json_object_set_new(r->v, "updatedAt", json_integer(now_ms - ((now_ms % 1000) + 1000) % 1000));
    json_object_set_new(r->v, "updatedById", user_ref(by));
}

/* Applies changes; when a value actually changed, stamps the record (updatedAt, updatedById).
 * Returns 1 when changed. */
static int apply(sb_mkt_t *m, mrec_t *r, json_t *ch, int64_t now_ms, int64_t by)
{
    int changed = 0;
    const char *k;
    json_t *v;
    json_object_foreach(ch, k, v)
    {
        json_t *old = json_object_get(r->v, k);
        if (!old || !json_equal(old, v)) {
            json_object_set(r->v, k, v);
            changed = 1;
        }
    }
    if (changed) {
        stamp(r, now_ms, by);
        reindex_email(m, r);
    }
    return changed;
}

static mrec_t *new_prospect(sb_mkt_t *m, json_t *ch, int64_t now_ms, int64_t by)
{
    mrec_t *r = mrec_new(m, MO_PROSPECTS, now_ms);
    if (!r)
        return NULL;
    static const char *falses[] = {"optedOut", "isDoNotEmail", "isDoNotCall", "crmsyncDoNotSync__c",
                                   "isDeleted"};
    for (size_t i = 0; i < sizeof(falses) / sizeof(falses[0]); i++)
        json_object_set_new(r->v, falses[i], json_false());
    json_object_set_new(r->v, "score", json_integer(0));
    json_object_set_new(r->v, "lastActivityAt", json_null());
    json_object_set_new(r->v, "createdById", user_ref(by));
    json_object_set_new(r->v, "updatedById", user_ref(by));
    const char *k;
    json_t *v;
    json_object_foreach(ch, k, v) json_object_set(r->v, k, v);
    if (push(m, MO_PROSPECTS, r) != 0) {
        mrec_free(r);
        return NULL;
    }
    reindex_email(m, r);
    return r;
}

json_t *sb_mkt_create(sb_mkt_t *m, json_t *body, const char *fields, int64_t now_ms, int64_t by,
                      int *status, char **location, sb_mstats_t *st)
{
    json_t *err, *out;
    *location = NULL;
    pthread_rwlock_wrlock(&m->lock);
    json_t *ch = prospect_changes(m, body, NULL, &err, status);
    if (!ch) {
        pthread_rwlock_unlock(&m->lock);
        return err;
    }
    mrec_t *r = new_prospect(m, ch, now_ms, by);
    json_decref(ch);
    if (!r) {
        out = v5err(status, 500, 0, "out of memory");
    } else {
        st->created++;
        *status = 201;
        out = render_for(m, &mobjs[MO_PROSPECTS], r, fields, status);
        char url[300];
        snprintf(url, sizeof(url), "%s/api/v5/objects/prospects/%lld", m->o.base_url,
                 (long long)r->id);
        *location = strdup(url);
    }
    pthread_rwlock_unlock(&m->lock);
    return out;
}

json_t *sb_mkt_update(sb_mkt_t *m, const char *id, json_t *body, const char *fields, int64_t now_ms,
                      int64_t by, int *status, sb_mstats_t *st)
{
    int64_t nid;
    if (parse_id(id, &nid) != 0)
        return v5err(status, 400, 16, "Invalid ID");
    json_t *err, *out;
    pthread_rwlock_wrlock(&m->lock);
    mrec_t *r = sb_mkt_find(m, MO_PROSPECTS, nid);
    if (!r) {
        out = v5err(status, 404, 3, "Invalid prospect ID");
    } else if (r->deleted) {
        out = v5err(status, 400, 219, "Record In Recycle Bin can't be updated");
    } else {
        json_t *ch = prospect_changes(m, body, r, &err, status);
        if (!ch) {
            out = err;
        } else {
            st->updated += apply(m, r, ch, now_ms, by);
            json_decref(ch);
            *status = 200;
            out = render_for(m, &mobjs[MO_PROSPECTS], r, fields, status);
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return out;
}

static int latest_cb(void *opaque, void *val)
{
    void **ctx = opaque; /* [0] best live, [1] best deleted */
    mrec_t *r = val;
    int slot = r->deleted ? 1 : 0;
    mrec_t *best = ctx[slot];
    int64_t u = json_integer_value(json_object_get(r->v, "updatedAt"));
    if (!best || u > json_integer_value(json_object_get(best->v, "updatedAt")) ||
        (u == json_integer_value(json_object_get(best->v, "updatedAt")) && r->id > best->id))
        ctx[slot] = r;
    return 0;
}

json_t *sb_mkt_upsert_latest(sb_mkt_t *m, json_t *body, int64_t now_ms, int64_t by, int *status,
                             sb_mstats_t *st)
{
    if (!json_is_object(body))
        return v5err(status, 400, 71, "Input needs to be valid JSON");
    const char *match = json_string_value(json_object_get(body, "matchEmail"));
    json_t *prospect = json_object_get(body, "prospect");
    json_t *fields = json_object_get(body, "fields");
    json_t *secondary = json_object_get(body, "secondaryDeletedSearch");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "matchEmail") && strcmp(k, "prospect") && strcmp(k, "fields") &&
            strcmp(k, "secondaryDeletedSearch")) {
            char msg[200];
            snprintf(msg, sizeof(msg), "Invalid property in request: %.80s", k);
            return v5err(status, 400, 154, msg);
        }
    }
    if (!match || !sb_email_valid(match))
        return v5err(status, 400, 4, "Invalid prospect email address");
    if (!json_is_object(prospect))
        return v5err(status, 400, 13, "One or more required parameters are missing: prospect");
    if (fields && !json_is_array(fields))
        return v5err(status, 400, 51, "Invalid parameter: fields. Expected an array of names.");
    if (secondary && !json_is_boolean(secondary))
        return v5err(status, 400, 51, "Invalid parameter: secondaryDeletedSearch.");

    /* the answer's field list as a comma-separated string */
    char flist[2048] = "";
    size_t fl = 0, i;
    json_array_foreach(fields, i, v)
    {
        if (!json_is_string(v))
            return v5err(status, 400, 51, "Invalid parameter: fields. Expected an array of names.");
        fl += (size_t)snprintf(flist + fl, fl < sizeof(flist) ? sizeof(flist) - fl : 0, "%s%s",
                               i ? "," : "", json_string_value(v));
        if (fl >= sizeof(flist))
            return v5err(status, 400, 51, "Invalid parameter: fields. Too many fields.");
    }

    json_t *err, *out;
    pthread_rwlock_wrlock(&m->lock);
    char *key = sb_lower_dup(match);
    void *best[2] = {NULL, NULL};
    if (key)
        sb_map_each(m->by_email, key, latest_cb, best);
    free(key);
    mrec_t *r = best[0];
    if (!r && json_is_true(secondary))
        r = best[1];
    json_t *pbody = json_deep_copy(prospect);
    if (!r && !json_object_get(pbody, "email"))
        json_object_set_new(pbody, "email", json_string(match));
    json_t *ch = prospect_changes(m, pbody, r, &err, status);
    json_decref(pbody);
    if (!ch) {
        out = err;
    } else if (r) {
        if (r->deleted) { /* restored from the recycle bin */
            r->deleted = 0;
            json_object_set_new(r->v, "isDeleted", json_false());
            stamp(r, now_ms, by);
        }
        st->updated += apply(m, r, ch, now_ms, by);
        *status = 200;
        out = render_for(m, &mobjs[MO_PROSPECTS], r, flist, status);
    } else {
        r = new_prospect(m, ch, now_ms, by);
        if (!r) {
            out = v5err(status, 500, 0, "out of memory");
        } else {
            st->created++;
            *status = 201;
            out = render_for(m, &mobjs[MO_PROSPECTS], r, flist, status);
        }
    }
    json_decref(ch);
    pthread_rwlock_unlock(&m->lock);
    return out;
}

json_t *sb_mkt_delete(sb_mkt_t *m, const char *id, int64_t now_ms, int *status, sb_mstats_t *st)
{
    int64_t nid;
    if (parse_id(id, &nid) != 0)
        return v5err(status, 400, 16, "Invalid ID");
    json_t *out = NULL;
    pthread_rwlock_wrlock(&m->lock);
    mrec_t *r = sb_mkt_find(m, MO_PROSPECTS, nid);
    if (!r || r->deleted) {
        out = v5err(status, 404, 3, "Invalid prospect ID");
    } else {
        r->deleted = 1;
        json_object_set_new(r->v, "isDeleted", json_true());
        st->deleted++;
        *status = 204;
    }
    pthread_rwlock_unlock(&m->lock);
    (void)now_ms;
    return out;
}

/* ---- activities ---- */

typedef struct kind_s {
    const char *kind;
    int type;
    const char *asset; /* the id field that tells the category apart */
    const char *type_name;
} kind_t;

static const kind_t kinds[] = {
    {"form", 4, "formId", "Form"},
    {"form_error", 3, "formId", "Form"},
    {"form_handler", 4, "formHandlerId", "Form Handler"},
    {"landing_page", 4, "landingPageId", "Landing Page"},
    {"click", 1, "emailId", "Email Tracker"},
    {"custom_redirect", 21, "customRedirectId", "Custom Redirect"},
    {"view", 2, "visitorPageViewId", "Page View"},
    {"open", 11, "emailId", "Email"},
    {"sent", 6, "emailId", "Email"},
    {"unsubscribe", 12, "emailId", "Unsubscribe Page"},
    {"visit", 20, NULL, "Visit"},
    {"resubscribe", 16, "emailId", "Resubscribed"},
    {"bounce", 13, "emailId", "Bounced"},
};

static const char *type_name_of(int type)
{
    static const char *names[] = {NULL,
                                  "Click",
                                  "View",
                                  "Error",
                                  "Success",
                                  "Session",
                                  "Sent",
                                  "Search",
                                  "New Opportunity",
                                  "Opportunity Won",
                                  "Opportunity Lost",
                                  "Open",
                                  "Unsubscribe Page",
                                  "Bounced",
                                  "Spam Complaint",
                                  "Email Preference Page",
                                  "Resubscribed",
                                  "Click (Third Party)",
                                  "Opportunity Reopened",
                                  "Opportunity Linked",
                                  "Visit",
                                  "Custom URL click"};
    return type > 0 && type < (int)(sizeof(names) / sizeof(names[0])) ? names[type] : "Activity";
}

json_t *sb_mkt_add_activity(sb_mkt_t *m, json_t *body, int64_t now_ms, int *status)
{
    const mobj_t *o = &mobjs[MO_ACTIVITIES];
    if (!json_is_object(body))
        return v5err(status, 400, 71, "Input needs to be valid JSON");
    json_t *pid = json_object_get(body, "prospectId");
    const char *kind = json_string_value(json_object_get(body, "kind"));
    json_t *type = json_object_get(body, "type");
    json_t *delta = json_object_get(body, "scoreDelta");
    const char *created = json_string_value(json_object_get(body, "createdAt"));
    const kind_t *kd = NULL;
    if (!json_is_integer(pid))
        return v5err(status, 400, 13, "prospectId (integer) is required");
    if (kind) {
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !kd; i++)
            if (!strcmp(kinds[i].kind, kind))
                kd = &kinds[i];
        if (!kd)
            return v5err(status, 400, 51, "unknown kind (see docs/SANDBOX.md)");
    } else if (!json_is_integer(type) || json_integer_value(type) < 1 ||
               json_integer_value(type) > 38) {
        return v5err(status, 400, 51, "type (1..38) or kind is required");
    }
    if (delta && !json_is_integer(delta))
        return v5err(status, 400, 51, "scoreDelta must be an integer");
    int64_t at = now_ms;
    if (created && sb_parse_datetime(created, (size_t)-1, &at) != 0)
        return v5err(status, 400, 7, "Invalid timestamp: createdAt");
    at -= ((at % 1000) + 1000) % 1000;

    json_t *out;
    pthread_rwlock_wrlock(&m->lock);
    mrec_t *p = sb_mkt_find(m, MO_PROSPECTS, json_integer_value(pid));
    mrec_t *r = NULL;
    if (!p || p->deleted) {
        out = v5err(status, 404, 3, "Invalid prospect ID");
        goto done;
    }
    r = mrec_new(m, MO_ACTIVITIES, at);
    if (!r || push(m, MO_ACTIVITIES, r) != 0) {
        if (r)
            mrec_free(r);
        out = v5err(status, 500, 0, "out of memory");
        goto done;
    }
    int t = kd ? kd->type : (int)json_integer_value(type);
    json_object_set_new(r->v, "type", json_integer(t));
    json_object_set_new(r->v, "typeName", json_string(kd ? kd->type_name : type_name_of(t)));
    json_object_set_new(r->v, "prospectId", json_integer(p->id));
    json_object_set_new(r->v, "visitorId", json_integer(p->id + 500000));
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    { /* asset ids and details as given */
        const mfield_t *f = sb_mfield(o, k);
        if (f && strcmp(k, "id") && strcmp(k, "type") && strcmp(k, "prospectId") &&
            strcmp(k, "createdAt") && strcmp(k, "updatedAt") &&
            (json_is_integer(v) || (f->type == MT_STR && json_is_string(v))))
            json_object_set(r->v, k, v);
    }
    if (kd && kd->asset && !json_object_get(r->v, kd->asset))
        json_object_set_new(r->v, kd->asset, json_integer(1));
    if (!json_object_get(r->v, "details"))
        json_object_set_new(r->v, "details", json_string(kd ? kd->kind : type_name_of(t)));

    /* the prospect: last activity, and the score / opt-out the activity carries */
    json_t *last = json_object_get(p->v, "lastActivityAt");
    if (!json_is_integer(last) || json_integer_value(last) < at)
        json_object_set_new(p->v, "lastActivityAt", json_integer(at));
    json_t *ch = json_object();
    if (delta && json_integer_value(delta) != 0)
        json_object_set_new(ch, "score",
                            json_integer(json_integer_value(json_object_get(p->v, "score")) +
                                         json_integer_value(delta)));
    if (t == 12)
        json_object_set_new(ch, "optedOut", json_true());
    apply(m, p, ch, now_ms, SB_MKT_NO_USER); /* a visitor's doing, not a user's */
    json_decref(ch);
    *status = 201;
    out = sb_mkt_render(m, o, r, NULL, 0);
done:
    pthread_rwlock_unlock(&m->lock);
    return out;
}

json_t *sb_mkt_snapshot(sb_mkt_t *m)
{
    static const char *keys[MO_N] = {"prospects", "visitorActivities", "users"};
    json_t *out = json_object();
    pthread_rwlock_rdlock(&m->lock);
    for (int i = 0; i < MO_N; i++) {
        json_t *arr = json_array();
        for (size_t k = 0; k < m->n[i]; k++)
            json_array_append_new(arr, sb_mkt_render(m, &mobjs[i], m->recs[i][k], NULL, 0));
        json_object_set_new(out, keys[i], arr);
    }
    pthread_rwlock_unlock(&m->lock);
    return out;
}
