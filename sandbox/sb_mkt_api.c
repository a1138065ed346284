/* sb_mkt_api: the Account Engagement v5 routes under /api/v5/objects/.
 *
 * Gates, in order: a call in progress is counted (for the concurrency limit) -> latency and
 * outages (503) -> headers: a missing Authorization or Pardot-Business-Unit-Id is code 181, a
 * bad or expired token 184, an unknown business unit 201 -> burst errors and the concurrency
 * limit (code 66) -> the daily limit (code 122) -> the call.
 *
 * Prospect writes act as the marketing user linked to the token's CRM user (its salesforceId),
 * or as nobody (null updatedById) when no marketing user is linked. */
#include "sb.h"
#include "sb_util.h"

#include "cs_log.h"
#include "cs_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct mcall_s {
    sb_t *sb;
    const cs_httpd_req_t *req;
    cs_httpd_resp_t *resp;
    const char *endpoint;
    int status;
    const char *user; /* the token's CRM user id */
} mcall_t;

static void reply(mcall_t *c, int status, json_t *body)
{
    c->status = status;
    if (status == 204 && !body)
        cs_httpd_resp_status(c->resp, 204);
    else
        cs_httpd_resp_json(c->resp, status, body);
}

static void reply_error(mcall_t *c, int http, int code, const char *msg)
{
    reply(c, http, sb_v5_error(code, msg));
}

static void method_not_allowed(mcall_t *c)
{
    reply_error(c, 405, 60, "Invalid HTTP request method");
}

static json_t *body_object(mcall_t *c)
{
    json_t *j = json_loadb(c->req->body, c->req->body_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        reply_error(c, 400, 71, "Input needs to be valid JSON");
        return NULL;
    }
    return j;
}

static void count(mcall_t *c, const char *object, const sb_mstats_t *st)
{
    sb_stats_object(c->sb->stats, "marketing", object, 1, st ? st->created : 0,
                    st ? st->updated : 0, st ? st->deleted : 0);
}

static void route(mcall_t *c, char **seg, int n)
{
    sb_t *sb = c->sb;
    const char *object = seg[0];
    sb_mstats_t st = {0, 0, 0};
    int status = 400;
    int64_t now = sb_knobs_now_ms(sb->knobs, SB_SIDE_MKT);
    /* the marketing user this call acts as (for prospect writes) */
    int64_t by = sb_mkt_user_by_crm_id(sb->mkt, c->user);
    if (!sb_mkt_known_object(object)) {
        c->endpoint = "* /{unknown}";
        reply_error(c, 404, 192, "Object does not exist");
        return;
    }
    int prospects = !strcmp(object, "prospects");
    if (n == 1) {
        if (!strcmp(c->req->method, "GET")) {
            c->endpoint = prospects          ? "GET /prospects"
                          : object[0] == 'v' ? "GET /visitor-activities"
                                             : "GET /users";
            json_t *params = sb_req_args(c->req);
            char warning[200];
            json_t *out =
                sb_mkt_query(sb->mkt, object, params, now, &status, warning, sizeof(warning));
            json_decref(params);
            if (warning[0])
                cs_httpd_resp_header(c->resp, "Pardot-Warning", warning);
            count(c, object, NULL);
            reply(c, status, out);
            return;
        }
        if (prospects && !strcmp(c->req->method, "POST")) {
            c->endpoint = "POST /prospects";
            json_t *body = body_object(c);
            if (!body)
                return;
            char *location = NULL;
            json_t *out = sb_mkt_create(sb->mkt, body, cs_httpd_req_arg(c->req, "fields"), now, by,
                                        &status, &location, &st);
            json_decref(body);
            if (location)
                cs_httpd_resp_header(c->resp, "Location", location);
            free(location);
            count(c, object, &st);
            reply(c, status, out);
            return;
        }
        c->endpoint = "* /{object}";
        method_not_allowed(c);
        return;
    }
    if (n == 3 && prospects && !strcmp(seg[1], "do") && !strcmp(seg[2], "upsertLatestByEmail")) {
        c->endpoint = "POST /prospects/do/upsertLatestByEmail";
        if (strcmp(c->req->method, "POST") != 0) {
            method_not_allowed(c);
            return;
        }
        json_t *body = body_object(c);
        if (!body)
            return;
        json_t *out = sb_mkt_upsert_latest(sb->mkt, body, now, by, &status, &st);
        json_decref(body);
        count(c, object, &st);
        reply(c, status, out);
        return;
    }
    if (n == 2) {
        const char *id = seg[1];
        const char *fields = cs_httpd_req_arg(c->req, "fields");
        if (!strcmp(c->req->method, "GET")) {
            c->endpoint = prospects          ? "GET /prospects/{id}"
                          : object[0] == 'v' ? "GET /visitor-activities/{id}"
                                             : "GET /users/{id}";
            count(c, object, NULL);
            json_t *out = sb_mkt_read(sb->mkt, object, id, fields, &status);
            reply(c, status, out);
            return;
        }
        if (prospects && !strcmp(c->req->method, "PATCH")) {
            c->endpoint = "PATCH /prospects/{id}";
            json_t *body = body_object(c);
            if (!body)
                return;
            json_t *out = sb_mkt_update(sb->mkt, id, body, fields, now, by, &status, &st);
            json_decref(body);
            count(c, object, &st);
            reply(c, status, out);
            return;
        }
        if (prospects && !strcmp(c->req->method, "DELETE")) {
            c->endpoint = "DELETE /prospects/{id}";
            json_t *out = sb_mkt_delete(sb->mkt, id, now, &status, &st);
            count(c, object, &st);
            reply(c, status, out);
            return;
        }
        c->endpoint = "* /{object}/{id}";
        method_not_allowed(c);
        return;
    }
    c->endpoint = "* /{object}/...";
    reply_error(c, 404, 192, "Object does not exist");
}

void sb_mkt_api(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp, const char *rest)
{
    mcall_t c = {sb, req, resp, "* /unknown", 0, NULL};
    char buf[1024];
    char *seg[6];
    long inflight = sb_knobs_enter(sb->knobs);

    if (sb_knobs_pre(sb->knobs, SB_SIDE_MKT) != SB_GATE_OK) {
        sb_stats_refused(sb->stats, "marketing", "503");
        sb_resp_unavailable(resp);
        goto out;
    }
    const char *authz = cs_httpd_req_header(req, "Authorization");
    const char *bu = cs_httpd_req_header(req, "Pardot-Business-Unit-Id");
    char user[19];
    if (!authz || !bu) {
        sb_stats_refused(sb->stats, "marketing", "181");
        reply_error(&c, 400, 181,
                    !authz ? "A required header is missing: Authorization"
                           : "A required header is missing: Pardot-Business-Unit-Id");
        goto out;
    }
    if (sb_auth_check(sb->auth, authz, sb_knobs_token_ttl_ms(sb->knobs), cs_wall_ms(), user) !=
        SB_AUTH_OK) {
        sb_stats_refused(sb->stats, "marketing", "184");
        reply_error(&c, 401, 184, "access_token is invalid, unknown, or malformed: Inactive token");
        goto out;
    }
    c.user = user;
    char bu18[19];
    if (sb_sfid_normalize(bu, bu18) != 0 || strcmp(bu18, sb->bu_id) != 0) {
        sb_stats_refused(sb->stats, "marketing", "201");
        reply_error(&c, 400, 201,
                    "Business Unit specified in Pardot-Business-Unit-Id header not found or "
                    "inactive");
        goto out;
    }
    long long used, limit;
    sb_gate_t g = sb_knobs_admit(sb->knobs, SB_SIDE_MKT, inflight, &used, &limit);
    if (cs_httpd_req_header(req, "X-Return-Api-Usage")) {
        char usage[64];
        snprintf(usage, sizeof(usage), "%lld/%lld", used, limit);
        cs_httpd_resp_header(resp, "x-api-usage", usage);
    }
    if (g == SB_GATE_BURST || g == SB_GATE_CONCURRENCY) {
        sb_stats_refused(sb->stats, "marketing", "66");
        reply_error(&c, 400, 66,
                    "You have exceeded your concurrent request limit. Please wait, before trying "
                    "again");
        goto out;
    }
    if (g == SB_GATE_DAILY) {
        sb_stats_refused(sb->stats, "marketing", "122");
        reply_error(&c, 400, 122, "Daily API rate limit met");
        goto out;
    }
    int n = sb_split_path(rest, buf, sizeof(buf), seg, 6);
    if (n < 1) {
        reply_error(&c, 404, 192, "Object does not exist");
    } else {
        route(&c, seg, n);
    }
    CS_DEBUG("sandbox", "marketing %s %s -> %s", req->method, req->path, c.endpoint);
    sb_stats_call(sb->stats, "marketing", c.endpoint, c.status);
out:
    sb_knobs_leave(sb->knobs);
}
