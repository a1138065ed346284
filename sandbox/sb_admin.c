/* sb_admin: the /sandbox/... helpers for tests, benchmarks and the demo. No authentication, no
 * knobs, not counted as API calls. */
#include "sb.h"
#include "sb_util.h"

#include "cs_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bad_request(cs_httpd_resp_t *resp, const char *msg)
{
    cs_httpd_resp_json(resp, 400, json_pack("{s:s}", "error", msg));
}

static json_t *body_object(const cs_httpd_req_t *req, cs_httpd_resp_t *resp, int optional)
{
    if (optional && req->body_len == 0)
        return json_object();
    json_t *j = json_loadb(req->body, req->body_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        bad_request(resp, "expected a JSON object body");
        return NULL;
    }
    return j;
}

static json_t *info(sb_t *sb)
{
    json_t *o = json_object();
    json_object_set_new(o, "base_url", json_string(sb->base_url));
    json_object_set_new(o, "org_id", json_string(sb->org_id));
    json_object_set_new(o, "business_unit_id", json_string(sb->bu_id));
    json_object_set_new(o, "client_id", json_string(cs_conf_str(sb->conf, "auth.client_id")));
    json_object_set_new(o, "integration_user_id", json_string(sb_crm_integration_user(sb->crm)));
    json_object_set_new(o, "editor_user_id", json_string(sb->editor_user));
    json_object_set_new(o, "api_version", json_string("v60.0"));
    return o;
}

static void reset(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    json_t *body = body_object(req, resp, 1);
    if (!body)
        return;
    int keep_knobs = json_is_true(json_object_get(body, "keep_knobs"));
    json_decref(body);
    sb_crm_reset(sb->crm);
    sb_mkt_reset(sb->mkt);
    sb_stats_reset(sb->stats);
    if (!keep_knobs)
        sb_knobs_reset(sb->knobs);
    char err[512];
    if (sb_apply_seed(sb, err, sizeof(err)) != 0) {
        cs_httpd_resp_json(resp, 500, json_pack("{s:s}", "error", err));
        return;
    }
    CS_INFO("sandbox", "reset%s", keep_knobs ? " (knobs kept)" : "");
    cs_httpd_resp_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

static json_t *stats(sb_t *sb)
{
    json_t *s = sb_stats_json(sb->stats);
    long long used, limit;
    size_t counts[SB_CRM_NOBJ];
    sb_knobs_usage(sb->knobs, SB_SIDE_CRM, &used, &limit);
    json_object_set_new(
        json_object_get(s, "crm"), "api_usage",
        json_pack("{s:I, s:I}", "used", (json_int_t)used, "limit", (json_int_t)limit));
    sb_knobs_usage(sb->knobs, SB_SIDE_MKT, &used, &limit);
    json_object_set_new(
        json_object_get(s, "marketing"), "api_usage",
        json_pack("{s:I, s:I}", "used", (json_int_t)used, "limit", (json_int_t)limit));
    sb_crm_counts(sb->crm, counts);
    json_t *live = json_object();
    for (int i = 0; i < SB_CRM_NOBJ; i++)
        json_object_set_new(live, sb_crm_sobj_at(i)->name, json_integer((json_int_t)counts[i]));
    json_object_set_new(json_object_get(s, "crm"), "live_records", live);
    json_object_set_new(json_object_get(s, "marketing"), "live_records",
                        json_pack("{s:I}", "prospects", (json_int_t)sb_mkt_count(sb->mkt)));
    return s;
}

/* POST /sandbox/crm/edit {"type", "id"?, "fields", "user"?, "system"?}: a change made by a
 * person in the CRM (or, with "system", by an automated process). */
static void crm_edit(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    json_t *body = body_object(req, resp, 0);
    if (!body)
        return;
    const char *type = json_string_value(json_object_get(body, "type"));
    const char *id = json_string_value(json_object_get(body, "id"));
    const char *user = json_string_value(json_object_get(body, "user"));
    json_t *fields = json_object_get(body, "fields");
    char user_id[19];
    memcpy(user_id, sb->editor_user, 19);
    if (!type || !sb_crm_sobj(type) || (fields && !json_is_object(fields))) {
        json_decref(body);
        bad_request(resp, "expected {\"type\": \"Lead|Contact\", \"id\"?: ..., "
                          "\"fields\": {...}, \"user\"?: email, \"system\"?: bool}");
        return;
    }
    if (user && sb_sfid_normalize(user, user_id) != 0 &&
        sb_crm_user_by_email(sb->crm, user, user_id) != 0) {
        json_decref(body);
        bad_request(resp, "unknown user");
        return;
    }
    json_t *rec = fields ? json_deep_copy(fields) : json_object();
    json_object_set_new(rec, "attributes", json_pack("{s:s}", "type", type));
    if (id)
        json_object_set_new(rec, "Id", json_string(id));
    json_t *records = json_pack("[o]", rec);
    sb_wctx_t w = {user_id, json_is_true(json_object_get(body, "system")),
                   sb_knobs_now_ms(sb->knobs, SB_SIDE_CRM), NULL, NULL};
    sb_wstats_t st;
    int status = 400;
    json_t *out = sb_crm_write(sb->crm, id ? SB_WR_UPDATE : SB_WR_CREATE, records, 0, NULL, NULL,
                               &w, &status, &st);
    json_decref(records);
    json_decref(body);
    if (status == 200) {
        json_t *r = json_incref(json_array_get(out, 0));
        json_decref(out);
        out = r;
    }
    cs_httpd_resp_json(resp, status, out);
}

/* POST /sandbox/marketing/edit {"id": N, "fields": {...}}: a marketer's edit in the UI. It
 * names no user, so a change sets updatedById to null. */
static void mkt_edit(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    json_t *body = body_object(req, resp, 0);
    if (!body)
        return;
    json_t *id = json_object_get(body, "id"), *fields = json_object_get(body, "fields");
    if (!json_is_integer(id) || !json_is_object(fields)) {
        json_decref(body);
        bad_request(resp, "expected {\"id\": prospect id, \"fields\": {...}}");
        return;
    }
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)json_integer_value(id));
    int status = 400;
    sb_mstats_t st = {0, 0, 0};
    json_t *out = sb_mkt_update(sb->mkt, ids, fields, NULL, sb_knobs_now_ms(sb->knobs, SB_SIDE_MKT),
                                SB_MKT_NO_USER, &status, &st);
    json_decref(body);
    cs_httpd_resp_json(resp, status, out);
}

void sb_admin_api(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp, const char *rest)
{
    int get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST");
    if (get && !strcmp(rest, "info")) {
        cs_httpd_resp_json(resp, 200, info(sb));
        return;
    }
    if (get && !strcmp(rest, "stats")) {
        cs_httpd_resp_json(resp, 200, stats(sb));
        return;
    }
    if (get && !strcmp(rest, "snapshot")) {
        cs_httpd_resp_json(resp, 200,
                           json_pack("{s:o, s:o}", "crm", sb_crm_snapshot(sb->crm), "marketing",
                                     sb_mkt_snapshot(sb->mkt)));
        return;
    }
    if (get && !strcmp(rest, "knobs")) {
        cs_httpd_resp_json(resp, 200, sb_knobs_json(sb->knobs));
        return;
    }
    if (post && !strcmp(rest, "knobs")) {
        json_t *body = body_object(req, resp, 0);
        char err[256];
        if (!body)
            return;
        int rc = sb_knobs_apply(sb->knobs, body, err, sizeof(err));
        json_decref(body);
        if (rc != 0) {
            bad_request(resp, err);
            return;
        }
        cs_httpd_resp_json(resp, 200, sb_knobs_json(sb->knobs));
        return;
    }
    if (post && !strcmp(rest, "reset")) {
        reset(sb, req, resp);
        return;
    }
    if (post && !strcmp(rest, "crm/edit")) {
        crm_edit(sb, req, resp);
        return;
    }
    if (post && !strcmp(rest, "marketing/edit")) {
        mkt_edit(sb, req, resp);
        return;
    }
    if (post && !strcmp(rest, "marketing/activity")) {
        json_t *body = body_object(req, resp, 0);
        if (!body)
            return;
        int status = 400;
        json_t *out =
            sb_mkt_add_activity(sb->mkt, body, sb_knobs_now_ms(sb->knobs, SB_SIDE_MKT), &status);
        json_decref(body);
        cs_httpd_resp_json(resp, status, out);
        return;
    }
    if (post && !strcmp(rest, "tokens/revoke")) {
        sb_auth_revoke_all(sb->auth);
        cs_httpd_resp_json(resp, 200, json_pack("{s:b}", "ok", 1));
        return;
    }
    cs_httpd_resp_json(resp, 404, json_pack("{s:s}", "error", "no such sandbox endpoint"));
}
