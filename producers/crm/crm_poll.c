/* The CRM poll: SOQL on SystemModstamp (changed records) and Get Deleted (deletions) per
 * object, SOQL record -> CrmChange. */
#include "crm.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "crm"
#define MINUTE_MS 60000LL
#define DAY_MS (24 * 3600 * 1000LL)
#define DELETED_MAX_AGE_MS (15 * DAY_MS) /* Get Deleted answers 15 days back at most */

const cs_opt_t cp_opts[] = {
    {"http.port", CS_OPT_INT, "0", -1, 65535, 0,
     "port of /metrics and /healthz (0 = any free port, logged; -1 = off)"},
    {"crm.objects", CS_OPT_STRING, "Lead,Contact", 0, 0, 0,
     "CRM objects to poll, comma list of Lead and Contact"},
    {"crm.deletions", CS_OPT_BOOL, "true", 0, 0, 0,
     "also poll Get Deleted (sobjects/{type}/deleted) and publish deleted=true records"},
    {"cursor.name", CS_OPT_STRING, "crm-producer", 0, 0, 0,
     "prefix of this producer's cursor keys in topic.cursors (<name>:Lead, <name>:Contact, "
     "<name>:Lead:deleted, ...)"},
    CS_OPT_END,
};

static int64_t floor_minute(int64_t ms)
{
    return ms - ((ms % MINUTE_MS) + MINUTE_MS) % MINUTE_MS;
}

static int valid_field_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int add_select_field(char **q, size_t *cap, const char *f)
{
    size_t n = strlen(*q), m = strlen(f);
    /* skip a field already selected (case-insensitive, as SOQL) */
    for (const char *s = *q + 7; *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        while (*s == ' ')
            s++, len--;
        if (len == m && !strncasecmp(s, f, m))
            return CS_OK;
        if (!e)
            break;
        s = e + 1;
    }
    if (n + m + 3 > *cap) {
        size_t nc = (*cap + m + 3) * 2;
        char *p = realloc(*q, nc);
        if (!p)
            return CS_ERR_NOMEM;
        *q = p;
        *cap = nc;
    }
    snprintf(*q + n, *cap - n, "%s%s", (*q)[n - 1] == ' ' ? "" : ", ", f);
    return CS_OK;
}

static int build_select(cp_t *cp, cp_obj_t *obj, char *errstr, size_t n)
{
    static const char *const common[] = {"Id",
                                         "Email",
                                         "FirstName",
                                         "LastName",
                                         "Phone",
                                         "Title",
                                         "OwnerId",
                                         "HasOptedOutOfEmail",
                                         "LastModifiedDate",
                                         "SystemModstamp",
                                         "LastModifiedById",
                                         NULL};
    size_t cap = 512;
    char *q = malloc(cap);
    int err = CS_ERR_NOMEM;
    if (!q)
        goto fail;
    strcpy(q, "SELECT ");
    for (int i = 0; common[i]; i++)
        if (add_select_field(&q, &cap, common[i]))
            goto fail;
    /* a contact's company is its account's name: not a Contact field */
    if (obj->object == CS_OBJECT_LEAD && add_select_field(&q, &cap, "Company"))
        goto fail;
    if (*cp->ext_field && add_select_field(&q, &cap, cp->ext_field))
        goto fail;
    for (int f = CS_F_DEFAULT_COUNT_; f < cp->fm.n; f++) {
        const char *name = cp->fm.f[f].crm_name;
        if (!name)
            continue;
        if (!valid_field_name(name)) {
            err = cs_err_set(errstr, n, CS_ERR_CONFIG, "fields.custom: \"%s\" is not a field name",
                             name);
            goto fail;
        }
        if (add_select_field(&q, &cap, name))
            goto fail;
    }
    if (strlen(q) + strlen(obj->name) + 8 > cap) {
        char *p = realloc(q, strlen(q) + strlen(obj->name) + 8);
        if (!p)
            goto fail;
        q = p;
    }
    strcat(q, " FROM ");
    strcat(q, obj->name);
    obj->select = q;
    return CS_OK;
fail:
    free(q);
    if (err == CS_ERR_NOMEM)
        cs_err_set(errstr, n, err, "out of memory");
    return err;
}

int cp_setup(cp_t *cp, char *errstr, size_t n)
{
    pr_t *pr = &cp->pr;
    const char *list = cs_conf_str(pr->conf, "crm.objects"), *s = list;
    const char *prefix = cs_conf_str(pr->conf, "cursor.name");
    int err;
    int64_t del_initial;

    if ((err = cs_fieldmap_init(&cp->fm, pr->conf, errstr, n)))
        return err;
    cp->deletions = cs_conf_bool(pr->conf, "crm.deletions");
    cp->ext_field = cs_api_external_id_field(pr->api);
    if (*cp->ext_field && !valid_field_name(cp->ext_field))
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "crm.external_id_field: \"%s\" is not a field",
                          cp->ext_field);
    /* Deletions that happened before the producer first ran concern records it never
     * published: a first start asks from now (or from cursor.initial when that is a time
     * within Get Deleted's window). */
    del_initial = cs_wall_ms();
    if (pr->initial_ms > 0 && pr->initial_ms < del_initial)
        del_initial = pr->initial_ms;
    if (del_initial < cs_wall_ms() - DELETED_MAX_AGE_MS + DAY_MS)
        del_initial = cs_wall_ms() - DELETED_MAX_AGE_MS + DAY_MS;
    del_initial = floor_minute(del_initial);

    while (s && *s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char name[16], key[256];
        cp_obj_t *obj;
        while (len && *s == ' ')
            s++, len--;
        while (len && s[len - 1] == ' ')
            len--;
        if (len >= sizeof(name))
            len = sizeof(name) - 1;
        memcpy(name, s, len);
        name[len] = '\0';
        if (strcmp(name, "Lead") && strcmp(name, "Contact"))
            return cs_err_set(errstr, n, CS_ERR_CONFIG,
                              "crm.objects: \"%s\" is not Lead or Contact", name);
        for (int i = 0; i < cp->nobjs; i++)
            if (!strcmp(cp->objs[i].name, name))
                return cs_err_set(errstr, n, CS_ERR_CONFIG, "crm.objects: %s listed twice", name);
        obj = &cp->objs[cp->nobjs++];
        snprintf(obj->name, sizeof(obj->name), "%s", name);
        obj->object = strcmp(name, "Lead") ? CS_OBJECT_CONTACT : CS_OBJECT_LEAD;
        if ((err = build_select(cp, obj, errstr, n)))
            return err;
        snprintf(key, sizeof(key), "%s:%s", prefix, name);
        if (!(obj->mod = pr_add_cursor(pr, cs_cursor_new(key, pr->initial_ms))))
            return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
        if (cp->deletions) {
            snprintf(key, sizeof(key), "%s:%s:deleted", prefix, name);
            if (!(obj->del = pr_add_cursor(pr, cs_cursor_new(key, del_initial))))
                return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
        }
        s = e ? e + 1 : NULL;
    }
    if (cp->nobjs == 0)
        return cs_err_set(errstr, n, CS_ERR_CONFIG, "crm.objects: empty");
    return CS_OK;
}

void cp_free(cp_t *cp)
{
    for (int i = 0; i < cp->nobjs; i++) {
        free(cp->objs[i].select);
        cp->objs[i].select = NULL;
    }
}

/* ------------------------------------------------------------------ mapping */

static const char *jstr(json_t *rec, const char *name)
{
    return json_string_value(json_object_get(rec, name));
}

static const char *scalar_text(json_t *v, char *buf, size_t n)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, n, "%.17g", json_real_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

/* A Salesforce id: 15 or 18 letters and digits. */
static int valid_sf_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n != 15 && n != 18)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

static int time_field(json_t *rec, const char *name, int64_t *ms)
{
    const char *s = jstr(rec, name);
    return s ? cs_time_parse_iso8601(s, ms) : CS_ERR_NOT_FOUND;
}

int cp_handle(cp_t *cp, cp_obj_t *obj, json_t *rec)
{
    pr_t *pr = &cp->pr;
    cs_cursor_t *cur = obj->mod->c;
    const char *id = jstr(rec, "Id"), *email = jstr(rec, "Email"), *ext;
    char key[320], eid[128], buf[64], idbuf[24];
    int64_t ms, lmd;
    uint64_t hash;
    int keylen = 0, err;
    avro_value_t *v;
    const void *out;
    size_t out_len;
    char *text;

    if (!json_is_object(rec))
        return pr_reject(pr, "!unknown", PR_TIMELESS, 0, "INVALID_RECORD",
                         "CRM %s query: a record that is not a JSON object", obj->name);
    text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return CS_ERR_NOMEM;
    hash = cs_cursor_hash(text, strlen(text));
    free(text);
    snprintf(idbuf, sizeof(idbuf), "%s", valid_sf_id(id) ? id : "unknown");
    if (time_field(rec, "SystemModstamp", &ms) != CS_OK) {
        /* not placeable in time: reported once per content, the cursor unaffected */
        char tid[32];
        snprintf(tid, sizeof(tid), "!%s", idbuf);
        if (cs_cursor_seen(cur, tid, PR_TIMELESS, hash)) {
            cs_counter_add(obj->mod->duplicates, 1);
            return CS_OK;
        }
        return pr_reject(pr, tid, PR_TIMELESS, hash, "INVALID_SYSTEM_MODSTAMP",
                         "CRM %s %s has no readable SystemModstamp (\"%s\")", obj->name, idbuf,
                         jstr(rec, "SystemModstamp") ? jstr(rec, "SystemModstamp") : "");
    }
    if (cs_cursor_seen(cur, idbuf, ms, hash)) {
        pr_skip(pr, ms);
        return CS_OK;
    }
    if (!valid_sf_id(id))
        return pr_reject(pr, idbuf, ms, hash, "INVALID_RECORD_ID",
                         "CRM %s record without a valid Id (SystemModstamp %s)", obj->name,
                         jstr(rec, "SystemModstamp"));
    if (time_field(rec, "LastModifiedDate", &lmd) != CS_OK)
        lmd = ms;
    ext = jstr(rec, cp->ext_field);
    if (pr->key_mode == PR_KEY_EMAIL) {
        /* no email yet, or one the CRM accepted but that is not an address: no prospect key;
         * the record is still published (NULL Kafka key) and waits for one */
        if (email && *email && (keylen = pr_email_key(email, key, sizeof(key))) <= 0) {
            CS_WARN(COMP, "%s %s: email \"%.200s\" is not an address: published without a key",
                    obj->name, id, email);
            keylen = 0;
        }
    } else if (ext && *ext) {
        keylen = snprintf(key, sizeof(key), "%s", ext);
    }
    if (keylen <= 0) {
        keylen = 0;
        key[0] = '\0';
    }

    if (!(v = cs_avro_encoder_value(pr->enc, CS_AVRO_CRM_CHANGE)))
        return CS_ERR_NOMEM;
    snprintf(eid, sizeof(eid), "crm:%s:%s:%" PRId64 ":%08" PRIx32, obj->name, id, ms,
             (uint32_t)(hash >> 32));
    cs_avro_set_str(v, CS_CRM_EVENT_ID, eid);
    cs_avro_set_strn(v, CS_CRM_PROSPECT_KEY, key, (size_t)keylen);
    cs_avro_set_enum(v, CS_CRM_OBJECT, obj->object);
    cs_avro_set_str(v, CS_CRM_CRM_ID, id);
    cs_avro_set_str(v, CS_CRM_OWNER_ID, jstr(rec, "OwnerId"));
    cs_avro_set_str(v, CS_CRM_EMAIL, email);
    cs_avro_set_str(v, CS_CRM_FIRST_NAME, jstr(rec, "FirstName"));
    cs_avro_set_str(v, CS_CRM_LAST_NAME, jstr(rec, "LastName"));
    if (obj->object == CS_OBJECT_LEAD)
        cs_avro_set_str(v, CS_CRM_COMPANY, jstr(rec, "Company"));
    cs_avro_set_str(v, CS_CRM_PHONE, jstr(rec, "Phone"));
    cs_avro_set_str(v, CS_CRM_TITLE, jstr(rec, "Title"));
    cs_avro_set_bool(v, CS_CRM_OPTED_OUT, json_is_true(json_object_get(rec, "HasOptedOutOfEmail")));
    for (int f = CS_F_DEFAULT_COUNT_; f < cp->fm.n; f++) {
        const char *name = cp->fm.f[f].crm_name;
        if (name)
            cs_avro_map_set_str(v, CS_CRM_CUSTOM_FIELDS, name,
                                scalar_text(json_object_get(rec, name), buf, sizeof(buf)));
    }
    cs_avro_set_long(v, CS_CRM_LAST_MODIFIED_DATE, lmd);
    cs_avro_set_long(v, CS_CRM_SYSTEM_MODSTAMP, ms);
    cs_avro_set_str(v, CS_CRM_LAST_MODIFIED_BY_ID, jstr(rec, "LastModifiedById"));
    cs_avro_set_str(v, CS_CRM_EXTERNAL_ID, ext && *ext ? ext : NULL);
    cs_avro_set_bool(v, CS_CRM_DELETED, false);
    cs_avro_set_long(v, CS_CRM_EVENT_TIME, cs_wall_ms());
    if ((err = cs_avro_encode(pr->enc, v, &out, &out_len)))
        return pr_reject(pr, id, ms, hash, "UNENCODABLE", "CRM %s %s cannot be encoded: %s",
                         obj->name, id, cs_avro_encoder_error(pr->enc));
    return pr_publish(pr, id, ms, hash, pr->topics[CS_TOPIC_CRM], keylen ? key : NULL,
                      (size_t)keylen, out, out_len);
}

/* ------------------------------------------------------------------ changed records */

typedef struct qctx_s {
    cp_t *cp;
    cp_obj_t *obj;
    int err;
    long records;
} qctx_t;

static int on_record(void *opaque, json_t *rec)
{
    qctx_t *q = opaque;
    q->records++;
    q->err = cp_handle(q->cp, q->obj, rec);
    return q->err || cs_run_stopping();
}

static int poll_changed(cp_t *cp, cp_obj_t *obj)
{
    pr_t *pr = &cp->pr;
    char from[40], what[64];
    char *soql;
    size_t len;
    qctx_t q = {cp, obj, CS_OK, 0};
    int err;

    pr_batch_begin(pr, obj->mod);
    /* SOQL date-time literals are whole seconds: ">= the second of from" covers it */
    if (cs_time_format_iso8601(cs_cursor_query_from(obj->mod->c, pr->overlap_ms), 0, from,
                               sizeof(from)))
        return CS_ERR_INVAL;
    len = strlen(obj->select) + 128;
    if (!(soql = malloc(len)))
        return CS_ERR_NOMEM;
    snprintf(soql, len, "%s WHERE SystemModstamp >= %s ORDER BY SystemModstamp, Id", obj->select,
             from);
    CS_DEBUG(COMP, "%s", soql);
    err = cs_api_crm_query(pr->api, soql, on_record, &q);
    free(soql);
    if (q.err)
        return q.err;
    if (err) {
        snprintf(what, sizeof(what), "%s query", obj->name);
        return pr_api_error(pr, err, what);
    }
    CS_DEBUG(COMP, "%s: %ld record(s) since %s", obj->name, q.records, from);
    return pr_checkpoint(pr);
}

/* ------------------------------------------------------------------ deletions */

static int publish_deleted(cp_t *cp, cp_obj_t *obj, const char *id, int64_t ms)
{
    pr_t *pr = &cp->pr;
    char eid[96];
    avro_value_t *v;
    const void *out;
    size_t out_len;
    int err;
    if (cs_cursor_seen(obj->del->c, id, ms, 0)) {
        pr_skip(pr, ms);
        return CS_OK;
    }
    if (!(v = cs_avro_encoder_value(pr->enc, CS_AVRO_CRM_CHANGE)))
        return CS_ERR_NOMEM;
    snprintf(eid, sizeof(eid), "crm:%s:%s:deleted:%" PRId64, obj->name, id, ms);
    cs_avro_set_str(v, CS_CRM_EVENT_ID, eid);
    cs_avro_set_str(v, CS_CRM_PROSPECT_KEY, ""); /* Get Deleted gives ids only */
    cs_avro_set_enum(v, CS_CRM_OBJECT, obj->object);
    cs_avro_set_str(v, CS_CRM_CRM_ID, id);
    cs_avro_set_long(v, CS_CRM_LAST_MODIFIED_DATE, ms);
    cs_avro_set_long(v, CS_CRM_SYSTEM_MODSTAMP, ms);
    cs_avro_set_bool(v, CS_CRM_DELETED, true);
    cs_avro_set_long(v, CS_CRM_EVENT_TIME, cs_wall_ms());
    if ((err = cs_avro_encode(pr->enc, v, &out, &out_len)))
        return err;
    return pr_publish(pr, id, ms, 0, pr->topics[CS_TOPIC_CRM], NULL, 0, out, out_len);
}

static int poll_deleted(cp_t *cp, cp_obj_t *obj)
{
    pr_t *pr = &cp->pr;
    cs_cursor_t *cur = obj->del->c;
    int64_t start = floor_minute(cs_cursor_ms(cur)), now = cs_wall_ms(), covered, earliest;
    char s_iso[40], e_iso[40], path[256], what[64], *s_esc = NULL, *e_esc = NULL;
    json_t *body = NULL, *recs, *r;
    size_t i;
    int err;

    /* the window is whole minutes and must be more than one minute long */
    if (floor_minute(now) <= start)
        return CS_OK;
    pr_batch_begin(pr, obj->del);
    pr->batch_advance = 0; /* deletedRecords are not in time order: moved to covered below */
    cs_time_format_iso8601(start, CS_TIME_FMT_OFFSET, s_iso, sizeof(s_iso));
    cs_time_format_iso8601(now, CS_TIME_FMT_OFFSET, e_iso, sizeof(e_iso));
    s_esc = cs_http_escape(s_iso, strlen(s_iso), 0);
    e_esc = cs_http_escape(e_iso, strlen(e_iso), 0);
    if (!s_esc || !e_esc) {
        err = CS_ERR_NOMEM;
        goto out;
    }
    snprintf(path, sizeof(path), "sobjects/%s/deleted/?start=%s&end=%s", obj->name, s_esc, e_esc);
    err = cs_api_crm_get_path(pr->api, path, &body);
    if (err) {
        const cs_http_result_t *res = cs_api_last(pr->api);
        if (err == CS_ERR_HTTP_4XX && !strcmp(res->api_error, "INVALID_REPLICATION_DATE")) {
            if (start < now - DELETED_MAX_AGE_MS + MINUTE_MS) {
                /* down for longer than the CRM keeps deletions: go on from the oldest day
                 * it still answers; deletions before that are lost to this producer */
                int64_t to = floor_minute(now - DELETED_MAX_AGE_MS + DAY_MS);
                cs_time_format_iso8601(to, 0, e_iso, sizeof(e_iso));
                CS_WARN(COMP,
                        "%s deletions before %s are no longer available (%s): deletions "
                        "in between are missed; a full resync reconciles them",
                        obj->name, e_iso, res->api_message);
                cs_cursor_advance(cur, to, 0);
            } else {
                /* the CRM's clock is behind ours: no complete minute to ask for yet */
                CS_DEBUG(COMP, "%s deletions: %s", obj->name, res->api_message);
            }
            err = CS_OK;
            goto out;
        }
        snprintf(what, sizeof(what), "%s deletions", obj->name);
        err = pr_api_error(pr, err, what);
        goto out;
    }
    if (cs_time_parse_iso8601(jstr(body, "latestDateCovered") ? jstr(body, "latestDateCovered")
                                                              : "",
                              &covered) != CS_OK ||
        !json_is_array(recs = json_object_get(body, "deletedRecords"))) {
        CS_WARN(COMP, "%s deletions: answer without deletedRecords / latestDateCovered", obj->name);
        cs_counter_add(pr->m.api_errors, 1);
        err = CS_ERR_PARSE;
        goto out;
    }
    if (jstr(body, "earliestDateAvailable") &&
        cs_time_parse_iso8601(jstr(body, "earliestDateAvailable"), &earliest) == CS_OK &&
        earliest > start)
        CS_WARN(COMP, "%s deletions: the CRM purged deletions older than %s; some may be missed",
                obj->name, jstr(body, "earliestDateAvailable"));
    json_array_foreach(recs, i, r)
    {
        const char *id = jstr(r, "id");
        int64_t ms;
        if (!valid_sf_id(id) || time_field(r, "deletedDate", &ms) != CS_OK) {
            err = pr_reject(
                pr, valid_sf_id(id) ? id : "unknown", start, 0, "INVALID_DELETED_RECORD",
                "CRM %s Get Deleted: an entry without a valid id or deletedDate", obj->name);
        } else {
            err = publish_deleted(cp, obj, id, ms);
        }
        if (err)
            goto out;
    }
    if ((err = pr_checkpoint(pr)))
        goto out;
    /* everything before latestDateCovered is now published: the next window starts there */
    cs_cursor_advance(cur, covered, 0);
out:
    json_decref(body);
    free(s_esc);
    free(e_esc);
    return err;
}

/* ------------------------------------------------------------------ the poll */

int cp_poll(pr_t *pr, void *opaque)
{
    cp_t *cp = opaque;
    int first_err = CS_OK;
    /* one object failing (e.g. a field missing on Contact) does not starve the other */
    for (int i = 0; i < cp->nobjs && !cs_run_stopping(); i++) {
        cp_obj_t *obj = &cp->objs[i];
        int err = poll_changed(cp, obj);
        if (err == CS_ERR_SHUTDOWN || err == CS_ERR_KAFKA_FATAL)
            return err;
        if (!err && cp->deletions)
            err = poll_deleted(cp, obj);
        if (err == CS_ERR_SHUTDOWN || err == CS_ERR_KAFKA_FATAL)
            return err;
        if (err && !first_err)
            first_err = err;
        pr_checkpoint(pr); /* the batch of a failed step: what was delivered counts */
    }
    return first_err;
}
