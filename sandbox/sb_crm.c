/* sb_crm: store lifecycle, collection writes (validate every record, then apply or roll back
 * as allOrNone says), single-record reads, deletes and the replication resources. */
#include "sb_crm_int.h"

#include "cs_run.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_COLLECTION 200
#define MAX_RETRIEVE_IDS 2000
#define DAY_MS (86400LL * 1000)

/* ---- lifecycle ---- */

static void rec_free(sb_rec_t *r)
{
    if (!r)
        return;
    json_decref(r->v);
    free(r->email_key);
    free(r->ext_key);
    free(r);
}

static int push_rec(sb_crm_t *c, sb_rec_t *r)
{
    int i = r->obj->idx;
    if (c->nrecs[i] == c->caprecs[i]) {
        size_t cap = c->caprecs[i] ? c->caprecs[i] * 2 : 1024;
        sb_rec_t **n = realloc(c->recs[i], cap * sizeof(*n));
        if (!n)
            return -1;
        c->recs[i] = n;
        c->caprecs[i] = cap;
    }
    if (sb_map_add(c->by_id, r->id, r) != 0)
        return -1;
    c->recs[i][c->nrecs[i]++] = r;
    return 0;
}

/* Keeps by_email / by_ext in step with r's stored values (and drops deleted records). */
static int reindex(sb_crm_t *c, sb_rec_t *r)
{
    int i = r->obj->idx;
    if (r->email_key) {
        sb_map_del(c->by_email[i], r->email_key, r);
        free(r->email_key);
        r->email_key = NULL;
    }
    if (r->ext_key) {
        sb_map_del(c->by_ext[i], r->ext_key, r);
        free(r->ext_key);
        r->ext_key = NULL;
    }
    if (r->deleted)
        return 0;
    const char *email = json_string_value(json_object_get(r->v, "Email"));
    if (email && *email) {
        r->email_key = sb_lower_dup(email);
        if (!r->email_key || sb_map_add(c->by_email[i], r->email_key, r) != 0)
            return -1;
    }
    const sb_field_t *xf = sb_crm_ext_field(r->obj);
    const char *ext = xf ? json_string_value(json_object_get(r->v, xf->name)) : NULL;
    if (ext && *ext) {
        r->ext_key = sb_lower_dup(ext);
        if (!r->ext_key || sb_map_add(c->by_ext[i], r->ext_key, r) != 0)
            return -1;
    }
    return 0;
}

static int64_t trunc_s(int64_t ms)
{
    return ms - ((ms % 1000) + 1000) % 1000;
}

static sb_rec_t *rec_new(sb_crm_t *c, const sb_sobj_t *o, const char *user, int64_t now_ms)
{
    sb_rec_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->obj = o;
    r->seq = ++c->next_seq;
    sb_sfid_make(o->prefix, ++c->next_id, r->id);
    r->v = json_object();
    if (!r->v) {
        free(r);
        return NULL;
    }
    int64_t now = trunc_s(now_ms);
    json_object_set_new(r->v, "IsDeleted", json_false());
    for (size_t i = 0; i < o->nfields; i++) {
        const sb_field_t *f = &o->fields[i];
        if (f->def_str)
            json_object_set_new(r->v, f->name, json_string(f->def_str));
        else if (f->type == SB_FT_BOOL)
            json_object_set_new(r->v, f->name, json_false());
    }
    if (sb_crm_field(o, "OwnerId"))
        json_object_set_new(r->v, "OwnerId", json_string(user));
    if (o->idx == 2)
        json_object_set_new(r->v, "IsActive", json_true());
    json_object_set_new(r->v, "CreatedDate", json_integer(now));
    json_object_set_new(r->v, "LastModifiedDate", json_integer(now));
    json_object_set_new(r->v, "SystemModstamp", json_integer(now));
    json_object_set_new(r->v, "CreatedById", json_string(user));
    json_object_set_new(r->v, "LastModifiedById", json_string(user));
    return r;
}

static int add_user(sb_crm_t *c, const sb_person_t *p, const char *creator, char *id_out)
{
    const sb_sobj_t *u = sb_crm_sobj("User");
    sb_rec_t *r = rec_new(c, u, creator ? creator : "", cs_wall_ms());
    if (!r)
        return -1;
    if (!creator) { /* the first user created itself */
        json_object_set_new(r->v, "CreatedById", json_string(r->id));
        json_object_set_new(r->v, "LastModifiedById", json_string(r->id));
    }
    json_object_set_new(r->v, "Username", json_string(p->email));
    json_object_set_new(r->v, "Email", json_string(p->email));
    json_object_set_new(r->v, "FirstName", *p->first ? json_string(p->first) : json_null());
    json_object_set_new(r->v, "LastName", json_string(p->last));
    char alias[9];
    snprintf(alias, sizeof(alias), "%.1s%.4s", p->first, p->last);
    for (char *a = alias; *a; a++)
        *a = (char)tolower((unsigned char)*a);
    json_object_set_new(r->v, "Alias", json_string(alias));
    json_object_del(r->v, "OwnerId");
    if (push_rec(c, r) != 0 || reindex(c, r) != 0) {
        rec_free(r);
        return -1;
    }
    if (id_out)
        memcpy(id_out, r->id, 19);
    return 0;
}

sb_crm_t *sb_crm_new(const sb_person_t *integration, const sb_person_t *users, size_t n)
{
    sb_crm_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->cur_lock, NULL);
    c->by_id = sb_map_new();
    c->cursors = sb_map_new();
    int ok = c->by_id && c->cursors;
    for (int i = 0; i < SB_CRM_NOBJ; i++) {
        c->by_email[i] = sb_map_new();
        c->by_ext[i] = sb_map_new();
        ok = ok && c->by_email[i] && c->by_ext[i];
    }
    c->next_id = 0x2A5000; /* ids look like 00Q5g0000000AbCdEF, not 00Q5g00000000001 */
    c->epoch_ms = cs_wall_ms();
    if (!ok || add_user(c, integration, NULL, c->integration_id) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (add_user(c, &users[i], c->integration_id, NULL) != 0)
            goto fail;
    return c;
fail:
    sb_crm_destroy(c);
    return NULL;
}

static void drop_records(sb_crm_t *c, int i)
{
    for (size_t k = 0; k < c->nrecs[i]; k++) {
        sb_rec_t *r = c->recs[i][k];
        sb_map_del(c->by_id, r->id, r);
        rec_free(r);
    }
    c->nrecs[i] = 0;
    sb_map_clear(c->by_email[i]);
    sb_map_clear(c->by_ext[i]);
}

void sb_crm_destroy(sb_crm_t *c)
{
    if (!c)
        return;
    sb_crm_cursors_clear(c);
    for (int i = 0; i < SB_CRM_NOBJ; i++) {
        if (c->by_email[i])
            drop_records(c, i);
        free(c->recs[i]);
        sb_map_destroy(c->by_email[i]);
        sb_map_destroy(c->by_ext[i]);
    }
    sb_map_destroy(c->by_id);
    sb_map_destroy(c->cursors);
    free(c->curlist);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->cur_lock);
    free(c);
}

void sb_crm_reset(sb_crm_t *c)
{
    pthread_rwlock_wrlock(&c->lock);
    drop_records(c, 0);
    drop_records(c, 1);
    c->epoch_ms = cs_wall_ms();
    pthread_rwlock_unlock(&c->lock);
    sb_crm_cursors_clear(c);
}

const char *sb_crm_integration_user(const sb_crm_t *c)
{
    return c->integration_id;
}

int64_t sb_crm_epoch_ms(const sb_crm_t *c)
{
    return c->epoch_ms;
}

int sb_crm_user_by_email(sb_crm_t *c, const char *email, char *id_out)
{
    int rc = -1;
    char *key = email ? sb_lower_dup(email) : NULL;
    if (!key)
        return -1;
    pthread_rwlock_rdlock(&c->lock);
    sb_rec_t *r = sb_map_get(c->by_email[2], key);
    if (!r) { /* usernames may differ from e-mails */
        for (size_t k = 0; k < c->nrecs[2] && !r; k++) {
            const char *u = json_string_value(json_object_get(c->recs[2][k]->v, "Username"));
            if (u && !strcasecmp(u, email))
                r = c->recs[2][k];
        }
    }
    if (r && json_is_true(json_object_get(r->v, "IsActive"))) {
        memcpy(id_out, r->id, 19);
        rc = 0;
    }
    pthread_rwlock_unlock(&c->lock);
    free(key);
    return rc;
}

sb_rec_t *sb_crm_find(sb_crm_t *c, const char *id18, const sb_sobj_t *o)
{
    sb_rec_t *r = sb_map_get(c->by_id, id18);
    if (!r || r->deleted || (o && r->obj != o))
        return NULL;
    return r;
}

void sb_crm_counts(sb_crm_t *c, size_t out[SB_CRM_NOBJ])
{
    pthread_rwlock_rdlock(&c->lock);
    for (int i = 0; i < SB_CRM_NOBJ; i++) {
        size_t n = 0;
        for (size_t k = 0; k < c->nrecs[i]; k++)
            n += !c->recs[i][k]->deleted;
        out[i] = n;
    }
    pthread_rwlock_unlock(&c->lock);
}

/* ---- collection writes ---- */

typedef struct item_s {
    const sb_sobj_t *obj;
    json_t *changes; /* field name -> normalized value */
    sb_rec_t *target;
    int create;
    json_t *error; /* {statusCode, message, fields} */
    char key_lower[128];
} item_t;

static json_t *rec_error(const char *code, const char *msg, json_t *fields)
{
    return json_pack("{s:s, s:s, s:o}", "statusCode", code, "message", msg, "fields",
                     fields ? fields : json_array());
}

/* A JSON value for field f, normalized: strings for text types ("" -> null), booleans. Returns
 * a new reference, or NULL when the JSON type cannot be deserialized into the field. */
static json_t *normalize(const sb_field_t *f, json_t *v)
{
    if (json_is_null(v))
        return f->type == SB_FT_BOOL ? json_false() : json_null();
    if (json_is_object(v) || json_is_array(v))
        return NULL;
    if (f->type == SB_FT_BOOL) {
        if (json_is_boolean(v))
            return json_incref(v);
        if (json_is_string(v) && !strcasecmp(json_string_value(v), "true"))
            return json_true();
        if (json_is_string(v) && !strcasecmp(json_string_value(v), "false"))
            return json_false();
        return NULL;
    }
    if (f->type == SB_FT_DATETIME) {
        int64_t ms;
        if (json_is_string(v) && sb_parse_datetime(json_string_value(v), (size_t)-1, &ms) == 0)
            return json_integer(trunc_s(ms));
        return NULL;
    }
    if (json_is_string(v))
        return *json_string_value(v) ? json_incref(v) : json_null();
    if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return json_string(buf);
    }
    if (json_is_real(v)) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return json_string(buf);
    }
    if (json_is_boolean(v))
        return json_string(json_is_true(v) ? "true" : "false");
    return NULL;
}

static json_t *top_error(int *status, const char *code, const char *msg)
{
    *status = 400;
    return sb_sf_error(code, msg, NULL);
}

/* First pass over the request: shapes the real API rejects as a whole. Fills items[i].obj and
 * items[i].changes. Returns NULL when fine, else the 400 body. */
static json_t *check_structure(sb_wr_op_t op, json_t *records, const sb_sobj_t *uri_obj,
                               item_t *items, int *status)
{
    char msg[512];
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        if (!json_is_object(rec))
            return top_error(status, "JSON_PARSER_ERROR",
                             "Cannot deserialize instance of SObject from a non-object value");
        json_t *attrs = json_object_get(rec, "attributes");
        const char *type = json_string_value(json_object_get(attrs, "type"));
        if (!type && op == SB_WR_UPSERT)
            type = uri_obj->name;
        if (!type)
            return top_error(status, "INVALID_TYPE", "Must send a concrete entity type.");
        const sb_sobj_t *o = sb_crm_sobj(type);
        if (!o) {
            snprintf(msg, sizeof(msg),
                     "sObject type '%.80s' is not supported. If you are attempting to use a "
                     "custom object, be sure to append the '__c' after the entity name. Please "
                     "reference your WSDL or the describe call for the appropriate names.",
                     type);
            return top_error(status, "INVALID_TYPE", msg);
        }
        if (op == SB_WR_UPSERT && o != uri_obj) {
            snprintf(msg, sizeof(msg),
                     "Record type %s doesn't match the sObject type %s named in the URI", o->name,
                     uri_obj->name);
            return top_error(status, "INVALID_TYPE", msg);
        }
        items[i].obj = o;
        items[i].changes = json_object();
        const char *key;
        json_t *val;
        json_object_foreach(rec, key, val)
        {
            if (!strcmp(key, "attributes"))
                continue;
            const sb_field_t *f = sb_crm_field(o, key);
            if (!f) {
                snprintf(msg, sizeof(msg), "No such column '%.80s' on sobject of type %s", key,
                         o->name);
                return top_error(status, "INVALID_FIELD", msg);
            }
            json_t *nv = normalize(f, val);
            if (!nv) {
                snprintf(msg, sizeof(msg),
                         "Cannot deserialize instance of %s from %s value for field %s",
                         f->type == SB_FT_BOOL       ? "boolean"
                         : f->type == SB_FT_DATETIME ? "datetime"
                                                     : "string",
                         json_is_object(val)  ? "START_OBJECT"
                         : json_is_array(val) ? "START_ARRAY"
                                              : "VALUE",
                         f->name);
                return top_error(status, "JSON_PARSER_ERROR", msg);
            }
            json_object_set_new(items[i].changes, f->name, nv);
        }
    }
    return NULL;
}

static int is_blank(json_t *v)
{
    return !v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v));
}

typedef struct {
    sb_crm_t *c;
    sb_wr_op_t op;
    const sb_field_t *key_field; /* upsert */
    const sb_wctx_t *ctx;
    sb_map_t *claimed_ext[SB_CRM_NOBJ]; /* lower-cased external ids taken by earlier records */
    sb_map_t *claimed_id;               /* ids updated by earlier records */
    sb_map_t *claimed_key;              /* upsert keys seen */
} wstate_t;

/* Validates one record against the store and the earlier records of the request; sets
 * it->error or prepares it->target / it->create. */
static void validate(wstate_t *W, item_t *it)
{
    sb_crm_t *c = W->c;
    const sb_sobj_t *o = it->obj;
    char msg[600];
    json_t *idv = json_object_get(it->changes, "Id");
    const char *idstr = json_string_value(idv);

    if (!o->writable) {
        snprintf(msg, sizeof(msg), "entity type cannot be %s: %s",
                 W->op == SB_WR_CREATE ? "inserted" : "updated", o->name);
        it->error = rec_error("INVALID_TYPE_FOR_OPERATION", msg, NULL);
        return;
    }

    /* locate the target */
    it->create = W->op == SB_WR_CREATE;
    if (W->op == SB_WR_CREATE && !is_blank(idv)) {
        it->error = rec_error("INVALID_FIELD", "cannot specify Id in an insert call",
                              json_pack("[s]", "Id"));
        return;
    }
    if (W->op == SB_WR_UPDATE || (W->op == SB_WR_UPSERT && W->key_field->type == SB_FT_ID)) {
        if (is_blank(idv)) {
            if (W->op == SB_WR_UPSERT) {
                it->create = 1;
            } else {
                it->error =
                    rec_error("MISSING_ARGUMENT", "Id not specified in an update call", NULL);
                return;
            }
        } else {
            char id18[19];
            sb_rec_t *any = NULL;
            if (!idstr || sb_sfid_normalize(idstr, id18) != 0 || strncmp(id18, o->prefix, 3) != 0) {
                snprintf(msg, sizeof(msg), "%s ID: id value of incorrect type: %.40s", o->label,
                         idstr ? idstr : "");
                it->error = rec_error("MALFORMED_ID", msg, json_pack("[s]", "Id"));
                return;
            }
            any = sb_map_get(c->by_id, id18);
            if (!any || any->obj != o) {
                it->error =
                    rec_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", NULL);
                return;
            }
            if (any->deleted) {
                it->error = rec_error("ENTITY_IS_DELETED", "entity is deleted", NULL);
                return;
            }
            if (sb_map_get(W->claimed_id, id18)) {
                snprintf(msg, sizeof(msg), "Duplicate id in list: %s", id18);
                it->error = rec_error("DUPLICATE_VALUE", msg, NULL);
                return;
            }
            it->target = any;
            it->create = 0;
        }
    } else if (W->op == SB_WR_UPSERT) {
        json_t *kv = json_object_get(it->changes, W->key_field->name);
        if (is_blank(kv)) {
            snprintf(msg, sizeof(msg), "%s not specified", W->key_field->name);
            it->error = rec_error("MISSING_ARGUMENT", msg, json_pack("[s]", W->key_field->name));
            return;
        }
        char *low = sb_lower_dup(json_string_value(kv));
        if (!low || strlen(low) >= sizeof(it->key_lower)) {
            free(low);
            it->error = rec_error("STRING_TOO_LONG", "external id value too long",
                                  json_pack("[s]", W->key_field->name));
            return;
        }
        strcpy(it->key_lower, low);
        free(low);
        if (sb_map_get(W->claimed_key, it->key_lower)) {
            snprintf(msg, sizeof(msg), "Duplicate external id specified: %.80s",
                     json_string_value(kv));
            it->error =
                rec_error("DUPLICATE_EXTERNAL_ID", msg, json_pack("[s]", W->key_field->name));
            return;
        }
        it->target = sb_map_get(c->by_ext[o->idx], it->key_lower);
        it->create = it->target == NULL;
    }
    if (it->target)
        json_object_del(it->changes, "Id");

    /* fields this operation may not write */
    json_t *bad = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(it->changes, k, v)
    {
        const sb_field_t *f = sb_crm_field(o, k);
        unsigned need = it->create ? SB_F_CREATE : SB_F_UPDATE;
        if (f->type == SB_FT_ID)
            continue;
        if (!(f->flags & need))
            json_array_append_new(bad, json_string(f->name));
    }
    if (json_array_size(bad)) {
        size_t n = 0;
        n += (size_t)snprintf(msg, sizeof(msg), "Unable to create/update fields: ");
        size_t i;
        json_t *b;
        json_array_foreach(bad, i, b)
        {
            if (n < sizeof(msg))
                n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s%s", i ? ", " : "",
                                      json_string_value(b));
        }
        if (n < sizeof(msg))
            snprintf(msg + n, sizeof(msg) - n,
                     ". Please check the security settings of this field and verify that it is "
                     "read/write for your profile or permission set.");
        it->error = rec_error("INVALID_FIELD_FOR_INSERT_UPDATE", msg, bad);
        return;
    }
    json_decref(bad);
    json_object_del(it->changes, "Id");

    /* values */
    json_object_foreach(it->changes, k, v)
    {
        const sb_field_t *f = sb_crm_field(o, k);
        const char *s = json_string_value(v);
        if (s && f->length && (int)strlen(s) > f->length) {
            snprintf(msg, sizeof(msg), "%s: data value too large: %.60s%s (max length=%d)",
                     f->label, s, strlen(s) > 60 ? "..." : "", f->length);
            it->error = rec_error("STRING_TOO_LONG", msg, json_pack("[s]", f->name));
            return;
        }
        if (s && f->type == SB_FT_EMAIL && !sb_email_valid(s)) {
            snprintf(msg, sizeof(msg), "%s: invalid email address: %.100s", f->label, s);
            it->error = rec_error("INVALID_EMAIL_ADDRESS", msg, json_pack("[s]", f->name));
            return;
        }
        if (f->type == SB_FT_REFERENCE && !strcmp(f->name, "OwnerId")) {
            char id18[19];
            if (!s) {
                it->error = rec_error("INVALID_CROSS_REFERENCE_KEY",
                                      "Owner ID: owner cannot be blank", json_pack("[s]", f->name));
                return;
            }
            if (sb_sfid_normalize(s, id18) != 0) {
                snprintf(msg, sizeof(msg), "Owner ID: id value of incorrect type: %.40s", s);
                it->error = rec_error("MALFORMED_ID", msg, json_pack("[s]", f->name));
                return;
            }
            sb_rec_t *u = sb_crm_find(c, id18, sb_crm_sobj("User"));
            if (!u || !json_is_true(json_object_get(u->v, "IsActive"))) {
                it->error = rec_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id",
                                      json_pack("[s]", f->name));
                return;
            }
            json_object_set_new(it->changes, f->name, json_string(id18));
        }
    }

    /* required fields after the change */
    json_t *missing = json_array();
    for (size_t i = 0; i < o->nfields; i++) {
        const sb_field_t *f = &o->fields[i];
        if (!(f->flags & SB_F_REQUIRED))
            continue;
        json_t *nv = json_object_get(it->changes, f->name);
        if (!nv && it->target)
            nv = json_object_get(it->target->v, f->name);
        if (is_blank(nv))
            json_array_append_new(missing, json_string(f->name));
    }
    if (json_array_size(missing)) {
        size_t n = (size_t)snprintf(msg, sizeof(msg), "Required fields are missing: [");
        size_t i;
        json_t *m;
        json_array_foreach(missing, i, m)
        {
            if (n < sizeof(msg))
                n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s%s", i ? ", " : "",
                                      json_string_value(m));
        }
        if (n < sizeof(msg))
            snprintf(msg + n, sizeof(msg) - n, "]");
        it->error = rec_error("REQUIRED_FIELD_MISSING", msg, missing);
        return;
    }
    json_decref(missing);

    /* external id uniqueness */
    const sb_field_t *xf = sb_crm_ext_field(o);
    json_t *xv = xf ? json_object_get(it->changes, xf->name) : NULL;
    if (xv && json_is_string(xv)) {
        char *low = sb_lower_dup(json_string_value(xv));
        sb_rec_t *other = low ? sb_map_get(c->by_ext[o->idx], low) : NULL;
        int taken = (other && other != it->target) ||
                    (low && sb_map_get(W->claimed_ext[o->idx], low) &&
                     !(W->op == SB_WR_UPSERT && !strcmp(low, it->key_lower)));
        if (taken) {
            snprintf(msg, sizeof(msg),
                     "duplicate value found: %s duplicates value on record with id: %s", xf->name,
                     other && other != it->target ? other->id : "(this request)");
            it->error = rec_error("DUPLICATE_VALUE", msg, NULL);
            free(low);
            return;
        }
        free(low);
    }

    if (W->ctx->lock_row && W->ctx->lock_row(W->ctx->lock_opaque)) {
        it->error = rec_error("UNABLE_TO_LOCK_ROW",
                              "unable to obtain exclusive access to this record", NULL);
        return;
    }

    /* claim what this record takes, for the records after it */
    if (xv && json_is_string(xv)) {
        char *low = sb_lower_dup(json_string_value(xv));
        if (low)
            sb_map_add(W->claimed_ext[o->idx], low, it);
        free(low);
    }
    if (it->target)
        sb_map_add(W->claimed_id, it->target->id, it);
    if (W->op == SB_WR_UPSERT && it->key_lower[0])
        sb_map_add(W->claimed_key, it->key_lower, it);
}

static void apply_changes(sb_crm_t *c, sb_rec_t *r, json_t *changes, const sb_wctx_t *ctx,
                          int created)
{
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v) json_object_set(r->v, k, v);
    int64_t now = trunc_s(ctx->now_ms);
    if (!created) {
        json_object_set_new(r->v, "SystemModstamp", json_integer(now));
        if (!ctx->system) {
            json_object_set_new(r->v, "LastModifiedDate", json_integer(now));
            json_object_set_new(r->v, "LastModifiedById", json_string(ctx->user_id));
        }
    }
    reindex(c, r);
}

static json_t *result_of(const item_t *it, sb_wr_op_t op, int rolled_back)
{
    json_t *res = json_object();
    if (!it->error && !rolled_back) {
        json_object_set_new(res, "id", json_string(it->target->id));
        json_object_set_new(res, "success", json_true());
        json_object_set_new(res, "errors", json_array());
        if (op == SB_WR_UPSERT)
            json_object_set_new(res, "created", json_boolean(it->create));
        return res;
    }
    if (it->target && !it->create)
        json_object_set_new(res, "id", json_string(it->target->id));
    json_object_set_new(res, "success", json_false());
    json_t *errs = json_array();
    if (it->error)
        json_array_append(errs, it->error);
    else
        json_array_append_new(
            errs, rec_error("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                            "Record rolled back because not all records were valid and the "
                            "request was using AllOrNone header",
                            NULL));
    json_object_set_new(res, "errors", errs);
    return res;
}

json_t *sb_crm_write(sb_crm_t *c, sb_wr_op_t op, json_t *records, int all_or_none, const char *type,
                     const char *ext_field, const sb_wctx_t *ctx, int *status, sb_wstats_t *st)
{
    char msg[512];
    memset(st, 0, sizeof(*st));
    if (!json_is_array(records))
        return top_error(status, "JSON_PARSER_ERROR",
                         "Cannot deserialize instance of List<SObject>: 'records' is required");
    size_t n = json_array_size(records);
    if (n > MAX_COLLECTION)
        return top_error(
            status, "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call");

    const sb_sobj_t *uri_obj = NULL;
    const sb_field_t *key_field = NULL;
    if (op == SB_WR_UPSERT) {
        uri_obj = sb_crm_sobj(type);
        if (!uri_obj) {
            *status = 404;
            return sb_sf_error("NOT_FOUND", "The requested resource does not exist", NULL);
        }
        key_field = sb_crm_field(uri_obj, ext_field);
        if (!key_field || !(key_field->type == SB_FT_ID || (key_field->flags & SB_F_EXTID))) {
            snprintf(msg, sizeof(msg),
                     "Field name provided, %.80s is not an External ID or indexed field for %s",
                     ext_field ? ext_field : "", uri_obj->name);
            return top_error(status, "INVALID_FIELD", msg);
        }
    }

    item_t *items = calloc(n ? n : 1, sizeof(*items));
    wstate_t W = {c, op, key_field, ctx, {NULL}, NULL, NULL};
    json_t *out = NULL;
    if (!items)
        return top_error(status, "UNKNOWN_EXCEPTION", "out of memory");
    for (int i = 0; i < SB_CRM_NOBJ; i++)
        W.claimed_ext[i] = sb_map_new();
    W.claimed_id = sb_map_new();
    W.claimed_key = sb_map_new();

    out = check_structure(op, records, uri_obj, items, status);
    if (out)
        goto done;

    pthread_rwlock_wrlock(&c->lock);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        validate(&W, &items[i]);
        failed += items[i].error != NULL;
        st->touched[items[i].obj->idx]++;
    }
    int rollback = all_or_none && failed > 0;
    if (!rollback) {
        for (size_t i = 0; i < n; i++) {
            item_t *it = &items[i];
            if (it->error)
                continue;
            if (it->create) {
                sb_rec_t *r = rec_new(c, it->obj, ctx->user_id, ctx->now_ms);
                if (!r || push_rec(c, r) != 0) {
                    rec_free(r);
                    it->error = rec_error("UNKNOWN_EXCEPTION", "out of memory", NULL);
                    continue;
                }
                it->target = r;
                apply_changes(c, r, it->changes, ctx, 1);
                st->created[it->obj->idx]++;
            } else {
                apply_changes(c, it->target, it->changes, ctx, 0);
                st->updated[it->obj->idx]++;
            }
        }
    }
    /* results are built under the lock: they read ids of records another call could delete */
    out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, result_of(&items[i], op, rollback && !items[i].error));
    pthread_rwlock_unlock(&c->lock);
    *status = 200;

done:
    for (size_t i = 0; i < n; i++) {
        json_decref(items[i].changes);
        json_decref(items[i].error);
    }
    free(items);
    for (int i = 0; i < SB_CRM_NOBJ; i++)
        sb_map_destroy(W.claimed_ext[i]);
    sb_map_destroy(W.claimed_id);
    sb_map_destroy(W.claimed_key);
    return out;
}

/* ---- delete ---- */

static json_t *not_found(int *status)
{
    *status = 404;
    return sb_sf_error("NOT_FOUND", "The requested resource does not exist", NULL);
}

static json_t *bad_ext_id(int *status, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof(msg),
             "Provided external ID field does not exist or is not accessible: %.80s", what);
    *status = 404;
    return sb_sf_error("NOT_FOUND", msg, NULL);
}

int sb_crm_delete(sb_crm_t *c, const char *type, const char *id, const sb_wctx_t *ctx, int *status,
                  json_t **err)
{
    const sb_sobj_t *o = sb_crm_sobj(type);
    char id18[19];
    *err = NULL;
    if (!o) {
        *err = not_found(status);
        return -1;
    }
    if (sb_sfid_normalize(id, id18) != 0) {
        *err = bad_ext_id(status, id);
        return -1;
    }
    if (!o->writable) {
        *status = 400;
        *err = sb_sf_error("INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted", NULL);
        return -1;
    }
    pthread_rwlock_wrlock(&c->lock);
    sb_rec_t *r = sb_map_get(c->by_id, id18);
    int rc = -1;
    if (!r || r->obj != o) {
        *err = not_found(status);
    } else if (r->deleted) {
        *status = 404;
        *err = sb_sf_error("ENTITY_IS_DELETED", "entity is deleted", NULL);
    } else {
        int64_t now = trunc_s(ctx->now_ms);
        r->deleted = 1;
        r->deleted_ms = now;
        json_object_set_new(r->v, "IsDeleted", json_true());
        json_object_set_new(r->v, "SystemModstamp", json_integer(now));
        reindex(c, r);
        *status = 204;
        rc = 0;
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

/* ---- reads ---- */

json_t *sb_crm_get(sb_crm_t *c, const char *version, const char *type, const char *key_field,
                   const char *id, const char *fields, int *status)
{
    const sb_sobj_t *o = sb_crm_sobj(type);
    if (!o)
        return not_found(status);
    const sb_field_t **fl = NULL;
    size_t nf = 0;
    if (fields) {
        char *bad = NULL;
        fl = sb_crm_parse_fields(o, fields, &nf, &bad);
        if (!fl) {
            *status = 400;
            json_t *e = sb_err_no_column(bad ? bad : "", o->name);
            free(bad);
            return e;
        }
    }
    json_t *out = NULL;
    pthread_rwlock_rdlock(&c->lock);
    sb_rec_t *r = NULL;
    if (key_field) {
        const sb_field_t *kf = sb_crm_field(o, key_field);
        if (!kf || !(kf->flags & SB_F_EXTID || kf->type == SB_FT_ID)) {
            out = bad_ext_id(status, key_field);
            goto done;
        }
        if (kf->type == SB_FT_ID) {
            char id18[19];
            r = sb_sfid_normalize(id, id18) == 0 ? sb_map_get(c->by_id, id18) : NULL;
        } else {
            char *low = sb_lower_dup(id);
            r = low ? sb_map_get(c->by_ext[o->idx], low) : NULL;
            free(low);
        }
    } else {
        char id18[19];
        if (sb_sfid_normalize(id, id18) != 0) {
            out = bad_ext_id(status, id);
            goto done;
        }
        r = sb_map_get(c->by_id, id18);
    }
    if (!r || r->obj != o) {
        out = not_found(status);
    } else if (r->deleted) {
        *status = 404;
        out = sb_sf_error("ENTITY_IS_DELETED", "entity is deleted", NULL);
    } else {
        out = sb_rec_render(r, fields ? fl : NULL, nf, version);
        *status = 200;
    }
done:
    pthread_rwlock_unlock(&c->lock);
    free(fl);
    return out;
}

json_t *sb_crm_retrieve(sb_crm_t *c, const char *version, const char *type, const char *ids,
                        const char *fields, int *status)
{
    const sb_sobj_t *o = sb_crm_sobj(type);
    if (!o)
        return not_found(status);
    if (!ids || !*ids || !fields || !*fields) {
        *status = 400;
        return sb_sf_error("MISSING_ARGUMENT",
                           !ids || !*ids ? "The 'ids' parameter is required"
                                         : "The 'fields' parameter is required",
                           NULL);
    }
    char *bad = NULL;
    size_t nf = 0;
    const sb_field_t **fl = sb_crm_parse_fields(o, fields, &nf, &bad);
    if (!fl) {
        *status = 400;
        json_t *e = sb_err_no_column(bad ? bad : "", o->name);
        free(bad);
        return e;
    }
    size_t count = 1;
    for (const char *p = ids; *p; p++)
        count += *p == ',';
    if (count > MAX_RETRIEVE_IDS) {
        free(fl);
        *status = 400;
        return sb_sf_error("EXCEEDED_ID_LIMIT", "Too many ids: the limit is 2000", NULL);
    }
    json_t *out = json_array();
    pthread_rwlock_rdlock(&c->lock);
    const char *p = ids;
    while (p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char id[32], id18[19];
        sb_rec_t *r = NULL;
        if (len < sizeof(id)) {
            memcpy(id, p, len);
            id[len] = '\0';
            if (sb_sfid_normalize(id, id18) == 0)
                r = sb_crm_find(c, id18, o);
        }
        json_array_append_new(out, r ? sb_rec_render(r, fl, nf, version) : json_null());
        p = comma ? comma + 1 : NULL;
    }
    pthread_rwlock_unlock(&c->lock);
    free(fl);
    *status = 200;
    return out;
}

/* ---- replication ---- */

static int64_t floor_minute(int64_t ms)
{
    return ms - ((ms % 60000) + 60000) % 60000;
}

/* Parses and checks start/end; sets *from, *covered. Returns NULL or the 400 body. */
static json_t *replication_window(const char *start, const char *end, int64_t now_ms,
                                  int64_t max_age_ms, int64_t *from, int64_t *covered, int *status)
{
    int64_t s, e;
    if (!start || sb_parse_datetime(start, (size_t)-1, &s) != 0)
        return top_error(status, "INVALID_REPLICATION_DATE",
                         "start: invalid date-time (expected ISO-8601, e.g. "
                         "2024-05-01T00:00:00+00:00)");
    if (!end || sb_parse_datetime(end, (size_t)-1, &e) != 0)
        return top_error(status, "INVALID_REPLICATION_DATE",
                         "end: invalid date-time (expected ISO-8601, e.g. "
                         "2024-05-01T00:00:00+00:00)");
    s = floor_minute(s);
    e = floor_minute(e);
    if (s >= e)
        return top_error(status, "INVALID_REPLICATION_DATE",
                         "startDate must chronologically precede endDate by more than one minute");
    if (s < floor_minute(now_ms) - max_age_ms) {
        char msg[128];
        snprintf(msg, sizeof(msg), "startDate cannot be more than %lld days ago",
                 (long long)(max_age_ms / DAY_MS));
        return top_error(status, "INVALID_REPLICATION_DATE", msg);
    }
    *from = s;
    *covered = e < floor_minute(now_ms) ? e : floor_minute(now_ms);
    return NULL;
}

json_t *sb_crm_updated(sb_crm_t *c, const char *type, const char *start, const char *end,
                       int64_t now_ms, int *status)
{
    const sb_sobj_t *o = sb_crm_sobj(type);
    if (!o)
        return not_found(status);
    int64_t from, covered;
    json_t *err = replication_window(start, end, now_ms, 30 * DAY_MS, &from, &covered, status);
    if (err)
        return err;
    json_t *ids = json_array();
    pthread_rwlock_rdlock(&c->lock);
    for (size_t k = 0; k < c->nrecs[o->idx]; k++) {
        sb_rec_t *r = c->recs[o->idx][k];
        int64_t ts = json_integer_value(json_object_get(r->v, "SystemModstamp"));
        if (!r->deleted && ts >= from && ts < covered)
            json_array_append_new(ids, json_string(r->id));
    }
    pthread_rwlock_unlock(&c->lock);
    if (json_array_size(ids) > 600000) {
        json_decref(ids);
        return top_error(status, "EXCEEDED_ID_LIMIT",
                         "too many ids in the replication window; narrow the range");
    }
    char buf[SB_TIME_BUF];
    *status = 200;
    return json_pack("{s:o, s:s}", "ids", ids, "latestDateCovered", sb_fmt_sf(covered, buf));
}

json_t *sb_crm_deleted(sb_crm_t *c, const char *type, const char *start, const char *end,
                       int64_t now_ms, int *status)
{
    const sb_sobj_t *o = sb_crm_sobj(type);
    if (!o)
        return not_found(status);
    int64_t from, covered;
    json_t *err = replication_window(start, end, now_ms, 15 * DAY_MS, &from, &covered, status);
    if (err)
        return err;
    json_t *recs = json_array();
    char buf[SB_TIME_BUF];
    pthread_rwlock_rdlock(&c->lock);
    for (size_t k = 0; k < c->nrecs[o->idx]; k++) {
        sb_rec_t *r = c->recs[o->idx][k];
        if (r->deleted && r->deleted_ms >= from && r->deleted_ms < covered)
            json_array_append_new(recs, json_pack("{s:s, s:s}", "id", r->id, "deletedDate",
                                                  sb_fmt_sf(r->deleted_ms, buf)));
    }
    int64_t earliest = floor_minute(c->epoch_ms);
    pthread_rwlock_unlock(&c->lock);
    char b1[SB_TIME_BUF], b2[SB_TIME_BUF];
    *status = 200;
    return json_pack("{s:o, s:s, s:s}", "deletedRecords", recs, "earliestDateAvailable",
                     sb_fmt_sf(earliest, b1), "latestDateCovered", sb_fmt_sf(covered, b2));
}

json_t *sb_crm_snapshot(sb_crm_t *c)
{
    json_t *out = json_object();
    pthread_rwlock_rdlock(&c->lock);
    for (int i = 0; i < SB_CRM_NOBJ; i++) {
        const sb_sobj_t *o = sb_crm_sobj_at(i);
        json_t *arr = json_array();
        for (size_t k = 0; k < c->nrecs[i]; k++)
            json_array_append_new(arr, sb_rec_render(c->recs[i][k], NULL, 0, "v60.0"));
        json_object_set_new(out, o->name, arr);
    }
    pthread_rwlock_unlock(&c->lock);
    return out;
}
