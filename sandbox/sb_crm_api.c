/* sb_crm_api: the Salesforce REST routes under /services/: the OAuth token endpoint, the
 * versions list and the data API of one version (vNN.0): query, sObject Collections, sObject
 * rows, describe, Get Updated / Get Deleted, limits.
 *
 * Every data call goes through the same gates, in the order a client sees them in real life:
 * latency and outages (503, from the edge) -> the session (401 INVALID_SESSION_ID) -> request
 * limits (403 REQUEST_LIMIT_EXCEEDED) -> the call, counted in Sforce-Limit-Info. */
#include "sb.h"
#include "sb_util.h"

#include "cs_log.h"
#include "cs_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIN_VERSION 31
#define MAX_VERSION 60
#define DEFAULT_BATCH 2000

typedef struct call_s {
    sb_t *sb;
    const cs_httpd_req_t *req;
    cs_httpd_resp_t *resp;
    char version[8]; /* "v60.0" */
    char user[19];
    const char *endpoint; /* stats label */
    int status;           /* answered */
} call_t;

static void reply(call_t *c, int status, json_t *body)
{
    c->status = status;
    cs_httpd_resp_json(c->resp, status, body);
}

static void no_content(call_t *c)
{
    c->status = 204;
    cs_httpd_resp_status(c->resp, 204);
}

static void reply_error(call_t *c, int status, const char *code, const char *msg)
{
    reply(c, status, sb_sf_error(code, msg, NULL));
}

static void not_found(call_t *c)
{
    reply_error(c, 404, "NOT_FOUND", "The requested resource does not exist");
}

static void method_not_allowed(call_t *c, const char *allowed)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "HTTP Method '%.16s' not allowed. Allowed are %s", c->req->method,
             allowed);
    cs_httpd_resp_header(c->resp, "Allow", allowed);
    reply_error(c, 405, "METHOD_NOT_ALLOWED", msg);
}

static int is(const call_t *c, const char *method)
{
    return !strcmp(c->req->method, method);
}

/* Parses the body as a JSON object or array; answers 400 JSON_PARSER_ERROR and returns NULL. */
static json_t *body_json(call_t *c)
{
    json_error_t e;
    json_t *j = json_loadb(c->req->body, c->req->body_len, 0, &e);
    if (!j || (!json_is_object(j) && !json_is_array(j))) {
        char msg[300];
        if (j)
            snprintf(msg, sizeof(msg), "Expected a JSON object");
        else
            snprintf(msg, sizeof(msg), "Unexpected character: %.160s at [line:%d, column:%d]",
                     e.text, e.line, e.column);
        json_decref(j);
        reply_error(c, 400, "JSON_PARSER_ERROR", msg);
        return NULL;
    }
    return j;
}

static void wctx_init(call_t *c, sb_wctx_t *w)
{
    memset(w, 0, sizeof(*w));
    w->user_id = c->user;
    w->now_ms = sb_knobs_now_ms(c->sb->knobs, SB_SIDE_CRM);
    w->lock_row = sb_knobs_lock_row;
    w->lock_opaque = c->sb->knobs;
}

static void count_write(call_t *c, const sb_wstats_t *st)
{
    for (int i = 0; i < SB_CRM_NOBJ; i++)
        if (st->touched[i])
            sb_stats_object(c->sb->stats, "crm", sb_crm_sobj_at(i)->name, 1, st->created[i],
                            st->updated[i], 0);
}

static void count_object(call_t *c, const char *type)
{
    const sb_sobj_t *o = sb_crm_sobj(type);
    if (o)
        sb_stats_object(c->sb->stats, "crm", o->name, 1, 0, 0, 0);
}

/* ---- the token endpoint ---- */

static void token_endpoint(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    int status = 400;
    if (strcmp(req->method, "POST") != 0) {
        cs_httpd_resp_json(resp, 405,
                           json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
                                     "must use HTTP POST"));
        return;
    }
    json_t *out = sb_auth_token(sb->auth, sb->crm, req->body, req->body_len,
                                cs_httpd_req_header(req, "Authorization"), sb->base_url,
                                cs_wall_ms(), &status);
    sb_stats_call(sb->stats, "crm", "POST /services/oauth2/token", status);
    cs_httpd_resp_json(resp, status, out);
}

static int revoke_cb(void *opaque, const char *key, const char *value)
{
    if (!strcmp(key, "token")) {
        char **t = opaque;
        free(*t);
        *t = strdup(value);
    }
    return 0;
}

static void revoke_endpoint(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    char *token = NULL;
    const char *q = cs_httpd_req_arg(req, "token");
    if (q)
        token = strdup(q);
    else
        cs_httpd_form_parse(req->body, req->body_len, revoke_cb, &token);
    if (token && sb_auth_revoke(sb->auth, token) == 0)
        cs_httpd_resp_text(resp, 200, "text/plain", "", 0);
    else
        cs_httpd_resp_json(resp, 400,
                           json_pack("{s:s, s:s}", "error", "unsupported_token_type",
                                     "error_description", "this token type is not supported"));
    free(token);
}

/* ---- versions ---- */

static json_t *versions(void)
{
    static const char *season[] = {"Spring", "Winter", "Summer"};
    json_t *arr = json_array();
    for (int v = MIN_VERSION; v <= MAX_VERSION; v++) {
        int back = MAX_VERSION - v; /* v60 = Spring '24, v59 = Winter '24, v58 = Summer '23 */
        int s = back % 3, year = 24 - back / 3 - (s == 2);
        char label[32], url[48], ver[8];
        snprintf(label, sizeof(label), "%s '%02d", season[s], year);
        snprintf(ver, sizeof(ver), "%d.0", v);
        snprintf(url, sizeof(url), "/services/data/v%s", ver);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s}", "label", label, "url", url, "version", ver));
    }
    return arr;
}

/* ---- data routes ---- */

static void do_query(call_t *c, const char *locator)
{
    int batch = locator ? 0 : DEFAULT_BATCH, status = 400;
    const char *opts = cs_httpd_req_header(c->req, "Sforce-Query-Options");
    const char *bs = opts ? strcasestr(opts, "batchSize=") : NULL;
    if (bs) {
        long n = strtol(bs + 10, NULL, 10);
        if (n >= 1 && n <= 2000)
            batch = (int)n;
    }
    json_t *out;
    if (locator) {
        c->endpoint = "GET /query/{locator}";
        out = sb_crm_query_more(c->sb->crm, c->version, locator, batch, &status);
    } else {
        const char *object = NULL;
        c->endpoint = "GET /query";
        out = sb_crm_query(c->sb->crm, c->version, cs_httpd_req_arg(c->req, "q"), batch, &status,
                           &object);
        if (object)
            count_object(c, object);
    }
    reply(c, status, out);
}

/* Collections: POST (create) / PATCH (update) composite/sobjects, and PATCH
 * composite/sobjects/{type}/{field} (upsert). */
static void do_collection_write(call_t *c, sb_wr_op_t op, const char *type, const char *field)
{
    json_t *body = body_json(c);
    if (!body)
        return;
    json_t *aon = json_object_get(body, "allOrNone");
    if (!json_is_object(body) || (aon && !json_is_boolean(aon))) {
        json_decref(body);
        reply_error(c, 400, "JSON_PARSER_ERROR",
                    "Expected {\"allOrNone\": boolean, \"records\": [...]}");
        return;
    }
    sb_wctx_t w;
    sb_wstats_t st;
    int status = 400;
    wctx_init(c, &w);
    json_t *out = sb_crm_write(c->sb->crm, op, json_object_get(body, "records"), json_is_true(aon),
                               type, field, &w, &status, &st);
    json_decref(body);
    count_write(c, &st);
    reply(c, status, out);
}

/* Turns the one result of a single-record write into the single-record answer. */
static void single_result(call_t *c, json_t *results, int status, int upsert, int update)
{
    if (status != 200) {
        reply(c, status, results);
        return;
    }
    json_t *r = json_array_get(results, 0);
    if (json_is_true(json_object_get(r, "success"))) {
        if (update) {
            json_decref(results);
            no_content(c);
            return;
        }
        int created = !upsert || json_is_true(json_object_get(r, "created"));
        reply(c, created ? 201 : 200, json_incref(r));
        json_decref(results);
        return;
    }
    /* per-record errors -> a top-level error array */
    json_t *errs = json_array(), *e;
    size_t i;
    int code = 400;
    json_array_foreach(json_object_get(r, "errors"), i, e)
    {
        const char *sc = json_string_value(json_object_get(e, "statusCode"));
        if (update && sc &&
            (!strcmp(sc, "INVALID_CROSS_REFERENCE_KEY") || !strcmp(sc, "ENTITY_IS_DELETED")))
            code = 404;
        json_t *te = json_pack("{s:s, s:O}", "errorCode", sc ? sc : "UNKNOWN_EXCEPTION", "message",
                               json_object_get(e, "message"));
        json_t *f = json_object_get(e, "fields");
        if (json_array_size(f))
            json_object_set(te, "fields", f);
        json_array_append_new(errs, te);
    }
    json_decref(results);
    reply(c, code, errs);
}

static void do_single_write(call_t *c, sb_wr_op_t op, const char *type, const char *key_field,
                            const char *key)
{
    json_t *body = body_json(c);
    if (!body)
        return;
    if (!json_is_object(body)) {
        json_decref(body);
        reply_error(c, 400, "JSON_PARSER_ERROR", "Expected a JSON object");
        return;
    }
    const sb_sobj_t *o = sb_crm_sobj(type);
    if (!o) {
        json_decref(body);
        not_found(c);
        return;
    }
    if (op == SB_WR_UPSERT) {
        const sb_field_t *kf = sb_crm_field(o, key_field);
        if (!kf || !(kf->type == SB_FT_ID || (kf->flags & SB_F_EXTID))) {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "Provided external ID field does not exist or is not accessible: %.80s",
                     key_field);
            json_decref(body);
            reply_error(c, 404, "NOT_FOUND", msg);
            return;
        }
        json_object_set_new(body, kf->name, json_string(key));
        key_field = kf->name;
    } else if (op == SB_WR_UPDATE) {
        char id18[19];
        if (sb_sfid_normalize(key, id18) != 0) {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "Provided external ID field does not exist or is not accessible: %.80s", key);
            json_decref(body);
            reply_error(c, 404, "NOT_FOUND", msg);
            return;
        }
        json_object_set_new(body, "Id", json_string(key));
    }
    json_object_set_new(body, "attributes", json_pack("{s:s}", "type", o->name));
    json_t *records = json_pack("[o]", body);
    sb_wctx_t w;
    sb_wstats_t st;
    int status = 400;
    wctx_init(c, &w);
    json_t *out = sb_crm_write(c->sb->crm, op, records, 0, o->name, key_field, &w, &status, &st);
    json_decref(records);
    count_write(c, &st);
    single_result(c, out, status, op == SB_WR_UPSERT, op == SB_WR_UPDATE);
}

static void do_retrieve_post(call_t *c, const char *type)
{
    json_t *body = body_json(c);
    if (!body)
        return;
    json_t *ids = json_object_get(body, "ids"), *fields = json_object_get(body, "fields");
    if (!json_is_array(ids) || !json_is_array(fields)) {
        json_decref(body);
        reply_error(c, 400, "JSON_PARSER_ERROR", "Expected {\"ids\": [...], \"fields\": [...]}");
        return;
    }
    size_t cap = 64, len = 0, i;
    char *idl = malloc(cap), *fl = NULL;
    json_t *v;
    int ok = idl != NULL;
    for (int pass = 0; pass < 2 && ok; pass++) {
        json_t *arr = pass ? fields : ids;
        char *buf = malloc(cap = 64);
        len = 0;
        if (buf)
            buf[0] = '\0';
        json_array_foreach(arr, i, v)
        {
            const char *s = json_string_value(v);
            size_t n = s ? strlen(s) : 0;
            if (!buf || !s) {
                ok = 0;
                break;
            }
            while (len + n + 2 > cap) {
                char *nb = realloc(buf, cap *= 2);
                if (!nb) {
                    ok = 0;
                    break;
                }
                buf = nb;
            }
            if (!ok)
                break;
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "", s);
        }
        if (pass) {
            fl = buf;
        } else {
            free(idl);
            idl = buf;
        }
    }
    json_decref(body);
    if (!ok) {
        free(idl);
        free(fl);
        reply_error(c, 400, "JSON_PARSER_ERROR", "ids and fields must be arrays of strings");
        return;
    }
    int status = 400;
    json_t *out = sb_crm_retrieve(c->sb->crm, c->version, type, idl, fl, &status);
    free(idl);
    free(fl);
    count_object(c, type);
    reply(c, status, out);
}

static void route_sobjects(call_t *c, char **seg, int n)
{
    int status = 400;
    /* seg[0] == "sobjects" */
    if (n == 1) {
        c->endpoint = "GET /sobjects";
        if (!is(c, "GET")) {
            method_not_allowed(c, "GET,HEAD");
            return;
        }
        reply(c, 200, sb_crm_describe_global(c->version));
        return;
    }
    const char *type = seg[1];
    const sb_sobj_t *o = sb_crm_sobj(type);
    if (!o) {
        c->endpoint = "* /sobjects/{unknown}";
        not_found(c);
        return;
    }
    if (n == 2) {
        c->endpoint = is(c, "POST") ? "POST /sobjects/{type}" : "GET /sobjects/{type}";
        count_object(c, type);
        if (is(c, "POST")) {
            do_single_write(c, SB_WR_CREATE, type, NULL, NULL);
            return;
        }
        if (!is(c, "GET")) {
            method_not_allowed(c, "GET,HEAD,POST");
            return;
        }
        json_t *d = sb_crm_describe(c->sb->crm, c->version, type, &status);
        json_t *basic = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(d, k, v) if (strcmp(k, "fields")) json_object_set(basic, k, v);
        json_decref(d);
        reply(c, 200, json_pack("{s:o, s:[]}", "objectDescribe", basic, "recentItems"));
        return;
    }
    if (n == 3 && !strcmp(seg[2], "describe")) {
        c->endpoint = "GET /sobjects/{type}/describe";
        count_object(c, type);
        if (!is(c, "GET")) {
            method_not_allowed(c, "GET,HEAD");
            return;
        }
        reply(c, 200, sb_crm_describe(c->sb->crm, c->version, type, &status));
        return;
    }
    if (n == 3 && (!strcmp(seg[2], "updated") || !strcmp(seg[2], "deleted"))) {
        int upd = !strcmp(seg[2], "updated");
        c->endpoint = upd ? "GET /sobjects/{type}/updated" : "GET /sobjects/{type}/deleted";
        count_object(c, type);
        if (!is(c, "GET")) {
            method_not_allowed(c, "GET,HEAD");
            return;
        }
        int64_t now = sb_knobs_now_ms(c->sb->knobs, SB_SIDE_CRM);
        const char *start = cs_httpd_req_arg(c->req, "start"),
                   *end = cs_httpd_req_arg(c->req, "end");
        json_t *out = upd ? sb_crm_updated(c->sb->crm, type, start, end, now, &status)
                          : sb_crm_deleted(c->sb->crm, type, start, end, now, &status);
        reply(c, status, out);
        return;
    }
    if (n == 3) {
        const char *id = seg[2];
        count_object(c, type);
        if (is(c, "GET")) {
            c->endpoint = "GET /sobjects/{type}/{id}";
            json_t *out = sb_crm_get(c->sb->crm, c->version, type, NULL, id,
                                     cs_httpd_req_arg(c->req, "fields"), &status);
            reply(c, status, out);
            return;
        }
        if (is(c, "PATCH")) {
            c->endpoint = "PATCH /sobjects/{type}/{id}";
            do_single_write(c, SB_WR_UPDATE, type, NULL, id);
            return;
        }
        if (is(c, "DELETE")) {
            c->endpoint = "DELETE /sobjects/{type}/{id}";
            sb_wctx_t w;
            json_t *err = NULL;
            wctx_init(c, &w);
            if (sb_crm_delete(c->sb->crm, type, id, &w, &status, &err) == 0) {
                sb_stats_object(c->sb->stats, "crm", o->name, 0, 0, 0, 1);
                no_content(c);
            } else {
                reply(c, status, err);
            }
            return;
        }
        c->endpoint = "* /sobjects/{type}/{id}";
        method_not_allowed(c, "GET,HEAD,PATCH,DELETE");
        return;
    }
    if (n == 4) {
        count_object(c, type);
        if (is(c, "GET")) {
            c->endpoint = "GET /sobjects/{type}/{field}/{value}";
            json_t *out = sb_crm_get(c->sb->crm, c->version, type, seg[2], seg[3],
                                     cs_httpd_req_arg(c->req, "fields"), &status);
            reply(c, status, out);
            return;
        }
        if (is(c, "PATCH")) {
            c->endpoint = "PATCH /sobjects/{type}/{field}/{value}";
            do_single_write(c, SB_WR_UPSERT, type, seg[2], seg[3]);
            return;
        }
        c->endpoint = "* /sobjects/{type}/{field}/{value}";
        method_not_allowed(c, "GET,HEAD,PATCH");
        return;
    }
    c->endpoint = "* /sobjects/...";
    not_found(c);
}

static int q_arg(void *opaque, const char *key, const char *value)
{
    char **q = opaque;
    if (!strcmp(key, "q") && !*q)
        *q = strdup(value);
    return 0;
}

/* One subrequest of POST /composite. The sandbox runs SOQL queries (GET .../query?q=) and
 * answers anything else with a per-subrequest 400 NOT_SUPPORTED (documented). */
static json_t *composite_sub(call_t *c, json_t *sub)
{
    const char *method = json_string_value(json_object_get(sub, "method"));
    const char *url = json_string_value(json_object_get(sub, "url"));
    const char *ref = json_string_value(json_object_get(sub, "referenceId"));
    char prefix[64], *q = NULL;
    const char *qs;
    json_t *body;
    int status = 400;
    snprintf(prefix, sizeof(prefix), "/services/data/%s/query", c->version);
    if (!method || !url || !ref) {
        body = json_pack("[{s:s, s:s}]", "message",
                         "each subrequest needs method, url and referenceId", "errorCode",
                         "INVALID_FIELD");
    } else if (strcmp(method, "GET") || strncmp(url, prefix, strlen(prefix)) ||
               url[strlen(prefix)] != '?') {
        body = json_pack("[{s:s, s:s}]", "message",
                         "the sandbox's /composite runs only GET .../query?q= subrequests",
                         "errorCode", "NOT_SUPPORTED");
    } else {
        const char *object = NULL;
        qs = url + strlen(prefix) + 1;
        if (cs_httpd_form_parse(qs, strlen(qs), q_arg, &q) || !q) {
            body = json_pack("[{s:s, s:s}]", "message", "missing or malformed q", "errorCode",
                             "MALFORMED_QUERY");
        } else {
            body = sb_crm_query(c->sb->crm, c->version, q, DEFAULT_BATCH, &status, &object);
            if (object)
                count_object(c, object);
        }
        free(q);
    }
    return json_pack("{s:o, s:{}, s:i, s:s}", "body", body, "httpHeaders", "httpStatusCode", status,
                     "referenceId", ref ? ref : "");
}

/* POST /composite {"allOrNone": bool, "compositeRequest": [...]}: up to 25 subrequests in
 * one call (one API call against the limit, as on the real API). */
static void do_composite(call_t *c)
{
    json_t *req = body_json(c), *subs, *sub, *out;
    size_t i;
    c->endpoint = "POST /composite";
    if (!req)
        return;
    subs = json_object_get(req, "compositeRequest");
    if (!json_is_array(subs) || json_array_size(subs) == 0 || json_array_size(subs) > 25) {
        json_decref(req);
        reply_error(c, 400, "INVALID_FIELD",
                    "compositeRequest must be an array of 1 to 25 subrequests");
        return;
    }
    out = json_array();
    json_array_foreach(subs, i, sub) json_array_append_new(out, composite_sub(c, sub));
    json_decref(req);
    reply(c, 200, json_pack("{s:o}", "compositeResponse", out));
}

static void route_composite(call_t *c, char **seg, int n)
{
    /* seg[0] == "composite" */
    if (n == 1) {
        if (is(c, "POST")) {
            do_composite(c);
            return;
        }
        c->endpoint = "* /composite";
        method_not_allowed(c, "POST");
        return;
    }
    if (n < 2 || strcmp(seg[1], "sobjects") != 0) {
        c->endpoint = "* /composite/...";
        not_found(c);
        return;
    }
    if (n == 2) {
        if (is(c, "POST")) {
            c->endpoint = "POST /composite/sobjects";
            do_collection_write(c, SB_WR_CREATE, NULL, NULL);
            return;
        }
        if (is(c, "PATCH")) {
            c->endpoint = "PATCH /composite/sobjects";
            do_collection_write(c, SB_WR_UPDATE, NULL, NULL);
            return;
        }
        c->endpoint = "* /composite/sobjects";
        method_not_allowed(c, "POST,PATCH");
        return;
    }
    if (n == 3) {
        if (is(c, "GET")) {
            int status = 400;
            c->endpoint = "GET /composite/sobjects/{type}";
            count_object(c, seg[2]);
            json_t *out =
                sb_crm_retrieve(c->sb->crm, c->version, seg[2], cs_httpd_req_arg(c->req, "ids"),
                                cs_httpd_req_arg(c->req, "fields"), &status);
            reply(c, status, out);
            return;
        }
        if (is(c, "POST")) {
            c->endpoint = "POST /composite/sobjects/{type}";
            do_retrieve_post(c, seg[2]);
            return;
        }
        c->endpoint = "* /composite/sobjects/{type}";
        method_not_allowed(c, "GET,HEAD,POST");
        return;
    }
    if (n == 4) {
        c->endpoint = "PATCH /composite/sobjects/{type}/{field}";
        if (!is(c, "PATCH")) {
            method_not_allowed(c, "PATCH");
            return;
        }
        do_collection_write(c, SB_WR_UPSERT, seg[2], seg[3]);
        return;
    }
    c->endpoint = "* /composite/...";
    not_found(c);
}

static void route_data(call_t *c, char **seg, int n)
{
    if (n == 0) {
        c->endpoint = "GET /";
        char b[64];
        json_t *r = json_object();
        static const char *res[] = {"sobjects", "query", "composite", "limits"};
        for (size_t i = 0; i < 4; i++) {
            snprintf(b, sizeof(b), "/services/data/%s/%s", c->version, res[i]);
            json_object_set_new(r, res[i], json_string(b));
        }
        reply(c, 200, r);
        return;
    }
    if (!strcmp(seg[0], "query")) {
        if (!is(c, "GET")) {
            c->endpoint = "* /query";
            method_not_allowed(c, "GET,HEAD");
            return;
        }
        do_query(c, n >= 2 ? seg[1] : NULL);
        return;
    }
    if (!strcmp(seg[0], "sobjects")) {
        route_sobjects(c, seg, n);
        return;
    }
    if (!strcmp(seg[0], "composite")) {
        route_composite(c, seg, n);
        return;
    }
    if (!strcmp(seg[0], "limits") && n == 1) {
        long long used, limit;
        c->endpoint = "GET /limits";
        sb_knobs_usage(c->sb->knobs, SB_SIDE_CRM, &used, &limit);
        reply(c, 200,
              json_pack("{s:{s:I, s:I}}", "DailyApiRequests", "Max", (json_int_t)limit, "Remaining",
                        (json_int_t)(limit > used ? limit - used : 0)));
        return;
    }
    c->endpoint = "* /unknown";
    not_found(c);
}

/* "v60.0" -> 1 when supported */
static int parse_version(const char *s, char *out)
{
    int major;
    char tail;
    if (sscanf(s, "v%d.0%c", &major, &tail) != 1 || major < MIN_VERSION || major > MAX_VERSION)
        return 0;
    snprintf(out, 8, "v%d.0", major);
    return strcmp(out, s) == 0;
}

void sb_crm_api(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp, const char *rest)
{
    char buf[2048];
    char *seg[8];
    if (!strcmp(rest, "oauth2/token")) {
        token_endpoint(sb, req, resp);
        return;
    }
    if (!strcmp(rest, "oauth2/revoke")) {
        revoke_endpoint(sb, req, resp);
        return;
    }
    if (!strcmp(rest, "data") || !strcmp(rest, "data/")) {
        cs_httpd_resp_json(resp, 200, versions());
        return;
    }
    if (strncmp(rest, "data/", 5) != 0) {
        cs_httpd_resp_json(resp, 404,
                           sb_sf_error("NOT_FOUND", "The requested resource does not exist", NULL));
        return;
    }

    call_t c = {sb, req, resp, "", "", "* /unknown", 0};
    int n = sb_split_path(rest + 5, buf, sizeof(buf), seg, 8);
    if (n < 1 || !parse_version(seg[0], c.version)) {
        cs_httpd_resp_json(resp, 404,
                           sb_sf_error("NOT_FOUND", "The requested resource does not exist", NULL));
        return;
    }

    if (sb_knobs_pre(sb->knobs, SB_SIDE_CRM) != SB_GATE_OK) {
        sb_stats_refused(sb->stats, "crm", "503");
        sb_resp_unavailable(resp);
        return;
    }
    sb_auth_rc_t arc = sb_auth_check(sb->auth, cs_httpd_req_header(req, "Authorization"),
                                     sb_knobs_token_ttl_ms(sb->knobs), cs_wall_ms(), c.user);
    if (arc != SB_AUTH_OK) {
        sb_stats_refused(sb->stats, "crm", "INVALID_SESSION_ID");
        cs_httpd_resp_header(resp, "WWW-Authenticate", "Token");
        cs_httpd_resp_json(resp, 401,
                           sb_sf_error("INVALID_SESSION_ID", "Session expired or invalid", NULL));
        return;
    }
    long long used, limit;
    sb_gate_t g = sb_knobs_admit(sb->knobs, SB_SIDE_CRM, 0, &used, &limit);
    char info[96];
    snprintf(info, sizeof(info), "api-usage=%lld/%lld", used, limit);
    cs_httpd_resp_header(resp, "Sforce-Limit-Info", info);
    if (g != SB_GATE_OK) {
        sb_stats_refused(sb->stats, "crm", "REQUEST_LIMIT_EXCEEDED");
        cs_httpd_resp_json(resp, 403,
                           sb_sf_error("REQUEST_LIMIT_EXCEEDED",
                                       g == SB_GATE_BURST
                                           ? "ConcurrentPerOrgLongTxn Limit exceeded."
                                           : "TotalRequests Limit exceeded.",
                                       NULL));
        return;
    }
    route_data(&c, seg + 1, n - 1);
    CS_DEBUG("sandbox", "crm %s %s -> %s", req->method, req->path, c.endpoint);
    /* the status is known only once the route answered: count after */
    sb_stats_call(sb->stats, "crm", c.endpoint, c.status);
}
