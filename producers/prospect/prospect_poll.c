/* The prospect poll: updatedAt query with nextPageUrl paging, v5 prospect -> ProspectChange. */
#include "prospect.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "prospect"

const cs_opt_t pp_opts[] = {
    {"http.port", CS_OPT_INT, "0", -1, 65535, 0,
     "port of /metrics and /healthz (0 = any free port, logged; -1 = off)"},
    {"prospect.page_size", CS_OPT_INT, "1000", 1, 1000, 0,
     "prospects per page of the updatedAt query (limit=, at most 1000)"},
    {"prospect.do_not_sync_field", CS_OPT_STRING, "crmsyncDoNotSync__c", 0, 0, 0,
     "v5 name of the boolean custom field that blocks the sync of a prospect (empty = none)"},
    {"cursor.name", CS_OPT_STRING, "prospect-producer", 0, 0, 0,
     "key of this producer's cursor in topic.cursors (one per business unit)"},
    CS_OPT_END,
};

/* Every mapped v5 field the ProspectChange carries (custom fields are appended). */
static const char base_fields[] =
    "id,email,firstName,lastName,company,phone,jobTitle,optedOut,"
    "score,grade,assignedToId,salesforceLeadId,salesforceContactId,"
    "salesforceOwnerId,lastActivityAt,createdAt,updatedAt,updatedById";

static int append_field(char **list, const char *name)
{
    size_t n = strlen(*list), m = strlen(name);
    char *p;
    /* already listed? (whole names between commas) */
    for (const char *s = *list; (s = strstr(s, name)); s += m)
        if ((s == *list || s[-1] == ',') && (s[m] == ',' || s[m] == '\0'))
            return CS_OK;
    if (!(p = realloc(*list, n + m + 2)))
        return CS_ERR_NOMEM;
    p[n] = ',';
    memcpy(p + n + 1, name, m + 1);
    *list = p;
    return CS_OK;
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

int pp_setup(pp_t *pp, char *errstr, size_t n)
{
    pr_t *pr = &pp->pr;
    const char *dns = cs_conf_str(pr->conf, "prospect.do_not_sync_field");
    int err;
    if ((err = cs_fieldmap_init(&pp->fm, pr->conf, errstr, n)))
        return err;
    pp->page_size = (long)cs_conf_int(pr->conf, "prospect.page_size");
    pp->dns_field = dns && *dns ? dns : NULL;
    if (!(pp->fields = strdup(base_fields)))
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    if (pp->dns_field) {
        if (!valid_field_name(pp->dns_field))
            return cs_err_set(errstr, n, CS_ERR_CONFIG,
                              "prospect.do_not_sync_field: \"%s\" is not a field name",
                              pp->dns_field);
        if (append_field(&pp->fields, pp->dns_field))
            return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    }
    for (int f = CS_F_DEFAULT_COUNT_; f < pp->fm.n; f++) {
        const char *name = pp->fm.f[f].mkt_name;
        if (!name)
            continue;
        if (!valid_field_name(name))
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "fields.custom: \"%s\" is not a field name",
                              name);
        if (append_field(&pp->fields, name))
            return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    }
    pp->cursor =
        pr_add_cursor(pr, cs_cursor_new(cs_conf_str(pr->conf, "cursor.name"), pr->initial_ms));
    if (!pp->cursor)
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    return CS_OK;
}

void pp_free(pp_t *pp)
{
    free(pp->fields);
    pp->fields = NULL;
}

/* ------------------------------------------------------------------ mapping */

static const char *jstr(json_t *rec, const char *name)
{
    return json_string_value(json_object_get(rec, name)); /* NULL unless a string */
}

static void set_opt_str(avro_value_t *v, int field, json_t *rec, const char *name)
{
    cs_avro_set_str(v, field, jstr(rec, name));
}

/* The record's id as decimal text ("" when absent or not a positive integer). */
static int64_t record_id(json_t *rec, char *buf, size_t n)
{
    json_t *id = json_object_get(rec, "id");
    int64_t v = -1;
    if (json_is_integer(id)) {
        v = json_integer_value(id);
    } else if (json_is_string(id)) {
        char *end;
        long long x = strtoll(json_string_value(id), &end, 10);
        if (*json_string_value(id) && !*end)
            v = x;
    }
    if (v <= 0) {
        snprintf(buf, n, "unknown");
        return -1;
    }
    snprintf(buf, n, "%" PRId64, v);
    return v;
}

static int time_field(json_t *rec, const char *name, int64_t *ms)
{
    const char *s = jstr(rec, name);
    return s ? cs_time_parse_iso8601(s, ms) : CS_ERR_NOT_FOUND;
}

/* A scalar as text for the custom_fields map; NULL for null / absent / non-scalars. */
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

static int32_t score_of(json_t *v)
{
    long long x = 0;
    if (json_is_integer(v))
        x = json_integer_value(v);
    else if (json_is_real(v))
        x = (long long)json_real_value(v);
    else if (json_is_string(v))
        x = strtoll(json_string_value(v), NULL, 10);
    return x > INT32_MAX ? INT32_MAX : x < INT32_MIN ? INT32_MIN : (int32_t)x;
}

int pp_handle(pp_t *pp, json_t *rec)
{
    pr_t *pr = &pp->pr;
    cs_cursor_t *cur = pp->cursor->c;
    char id[32], key[320], eid[96], buf[64];
    int64_t pid, ms, created, last_activity;
    uint64_t hash;
    const char *email;
    avro_value_t *v;
    const void *out;
    size_t out_len;
    int keylen, err;
    char *text;

    if (!json_is_object(rec))
        return pr_reject(pr, "!unknown", PR_TIMELESS, 0, "INVALID_RECORD",
                         "marketing API: a prospect that is not a JSON object");
    text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return CS_ERR_NOMEM;
    hash = cs_cursor_hash(text, strlen(text));
    free(text);

    pid = record_id(rec, id, sizeof(id));
    if (time_field(rec, "updatedAt", &ms) != CS_OK) {
        /* not placeable in time: reported once per content, the cursor unaffected */
        char tid[40];
        snprintf(tid, sizeof(tid), "!%s", id);
        if (cs_cursor_seen(cur, tid, PR_TIMELESS, hash)) {
            cs_counter_add(pp->cursor->duplicates, 1);
            return CS_OK;
        }
        return pr_reject(pr, tid, PR_TIMELESS, hash, "INVALID_UPDATED_AT",
                         "marketing API: prospect %s has no readable updatedAt (\"%s\")", id,
                         jstr(rec, "updatedAt") ? jstr(rec, "updatedAt") : "");
    }
    if (cs_cursor_seen(cur, id, ms, hash)) {
        pr_skip(pr, ms);
        return CS_OK;
    }
    if (pid < 0)
        return pr_reject(pr, id, ms, hash, "INVALID_PROSPECT_ID",
                         "marketing API: a prospect without a usable id (updatedAt %s)",
                         jstr(rec, "updatedAt"));
    email = jstr(rec, "email");
    if (pr->key_mode == PR_KEY_EMAIL) {
        if (!email || !*email)
            return pr_reject(pr, id, ms, hash, "MISSING_EMAIL",
                             "marketing API: prospect %s has no email: no prospect key in "
                             "unique-email mode (prospect.key=email)",
                             id);
        keylen = pr_email_key(email, key, sizeof(key));
        if (keylen <= 0)
            return pr_reject(pr, id, ms, hash, "INVALID_EMAIL",
                             "marketing API: prospect %s has an invalid email \"%.200s\": no "
                             "prospect key in unique-email mode",
                             id, email);
    } else {
        keylen = snprintf(key, sizeof(key), "%s", id);
    }

    if (!(v = cs_avro_encoder_value(pr->enc, CS_AVRO_PROSPECT_CHANGE)))
        return CS_ERR_NOMEM;
    /* the content hash makes two versions within one second (same updatedAt) distinct */
    snprintf(eid, sizeof(eid), "p:%s:%" PRId64 ":%08" PRIx32, id, ms, (uint32_t)(hash >> 32));
    cs_avro_set_str(v, CS_PC_EVENT_ID, eid);
    cs_avro_set_strn(v, CS_PC_PROSPECT_KEY, key, (size_t)keylen);
    cs_avro_set_long(v, CS_PC_PROSPECT_ID, pid);
    cs_avro_set_enum(v, CS_PC_CAUSE,
                     time_field(rec, "createdAt", &created) == CS_OK && created == ms
                         ? CS_CAUSE_CREATED
                         : CS_CAUSE_FIELD_CHANGE);
    cs_avro_set_long(v, CS_PC_UPDATED_AT, ms);
    if (time_field(rec, "lastActivityAt", &last_activity) == CS_OK)
        cs_avro_set_long(v, CS_PC_LAST_ACTIVITY_AT, last_activity);
    cs_avro_set_long(v, CS_PC_EVENT_TIME, cs_wall_ms());
    cs_avro_set_str(v, CS_PC_EMAIL, email);
    set_opt_str(v, CS_PC_FIRST_NAME, rec, "firstName");
    set_opt_str(v, CS_PC_LAST_NAME, rec, "lastName");
    set_opt_str(v, CS_PC_COMPANY, rec, "company");
    set_opt_str(v, CS_PC_PHONE, rec, "phone");
    set_opt_str(v, CS_PC_JOB_TITLE, rec, "jobTitle");
    cs_avro_set_bool(v, CS_PC_OPTED_OUT, json_is_true(json_object_get(rec, "optedOut")));
    cs_avro_set_int(v, CS_PC_SCORE, score_of(json_object_get(rec, "score")));
    set_opt_str(v, CS_PC_GRADE, rec, "grade");
    {
        json_t *a = json_object_get(rec, "assignedToId");
        if (json_is_integer(a))
            cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, json_integer_value(a));
        /* who made this version (our own writes come back with crmsync's marketing user) */
        a = json_object_get(rec, "updatedById");
        if (json_is_integer(a))
            cs_avro_set_long(v, CS_PC_UPDATED_BY_ID, json_integer_value(a));
    }
    cs_avro_set_bool(v, CS_PC_DO_NOT_SYNC,
                     pp->dns_field && json_is_true(json_object_get(rec, pp->dns_field)));
    set_opt_str(v, CS_PC_CRM_LEAD_ID, rec, "salesforceLeadId");
    set_opt_str(v, CS_PC_CRM_CONTACT_ID, rec, "salesforceContactId");
    set_opt_str(v, CS_PC_CRM_OWNER_ID, rec, "salesforceOwnerId");
    for (int f = CS_F_DEFAULT_COUNT_; f < pp->fm.n; f++) {
        const char *name = pp->fm.f[f].mkt_name;
        if (name)
            cs_avro_map_set_str(v, CS_PC_CUSTOM_FIELDS, name,
                                scalar_text(json_object_get(rec, name), buf, sizeof(buf)));
    }
    if ((err = cs_avro_encode(pr->enc, v, &out, &out_len))) {
        /* a value the schema cannot carry: the record is reported, not retried forever */
        return pr_reject(pr, id, ms, hash, "UNENCODABLE",
                         "marketing API: prospect %s cannot be encoded: %s", id,
                         cs_avro_encoder_error(pr->enc));
    }
    return pr_publish(pr, id, ms, hash, pr->topics[CS_TOPIC_PROSPECT], key, (size_t)keylen, out,
                      out_len);
}

/* ------------------------------------------------------------------ the poll */

int pp_poll(pr_t *pr, void *opaque)
{
    pp_t *pp = opaque;
    char from[40], *esc, *path;
    size_t plen;
    int err = CS_OK, pages = 0;
    int64_t from_ms = cs_cursor_query_from(pp->cursor->c, pr->overlap_ms);

    pr_batch_begin(pr, pp->cursor);
    /* the API answers in whole seconds: ">= the second of from_ms" covers from_ms */
    if (cs_time_format_iso8601(from_ms, CS_TIME_FMT_OFFSET, from, sizeof(from)))
        return CS_ERR_INVAL;
    if (!(esc = cs_http_escape(from, strlen(from), 0)))
        return CS_ERR_NOMEM;
    plen = strlen(pp->fields) + strlen(esc) + 160;
    if (!(path = malloc(plen))) {
        free(esc);
        return CS_ERR_NOMEM;
    }
    snprintf(
        path, plen,
        "objects/prospects?fields=%s&updatedAtAfterOrEqualTo=%s&orderBy=updatedAt,id&limit=%ld",
        pp->fields, esc, pp->page_size);
    free(esc);
    CS_DEBUG(COMP, "poll from %s", from);

    while (path && !cs_run_stopping()) {
        json_t *body = NULL, *values, *rec;
        const char *next;
        size_t i;
        err = cs_api_mkt_get_path(pr->api, path, &body);
        free(path);
        path = NULL;
        if (err) {
            err = pr_api_error(pr, err, "prospect query");
            break;
        }
        values = json_object_get(body, "values");
        if (!json_is_array(values)) {
            CS_WARN(COMP, "prospect query: answer without a values array");
            cs_counter_add(pr->m.api_errors, 1);
            json_decref(body);
            err = CS_ERR_PARSE;
            break;
        }
        json_array_foreach(values, i, rec)
        {
            if ((err = pp_handle(pp, rec)))
                break;
        }
        next = json_string_value(json_object_get(body, "nextPageUrl"));
        if (!err && next && *next && !(path = strdup(next)))
            err = CS_ERR_NOMEM;
        json_decref(body);
        pages++;
        if (err)
            break;
        /* one checkpoint per page: a crash or an error on page n+1 resumes after page n */
        if ((err = pr_checkpoint(pr)))
            break;
    }
    free(path);
    CS_DEBUG(COMP, "poll: %d page(s), %s", pages, cs_err_name(err));
    return err;
}
