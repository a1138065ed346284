/* sb_server: builds the sandbox from its configuration and routes requests by prefix. */
#include "sb.h"
#include "sb_util.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_COMP "sandbox"
#define ORG_ID "00D5g000004SBOXEA4"

/* ---- helpers shared by the API files ---- */

int sb_split_path(const char *path, char *buf, size_t bufsize, char **seg, int max)
{
    size_t n = strlen(path);
    if (n + 1 > bufsize)
        return -1;
    memcpy(buf, path, n + 1);
    if (n && buf[n - 1] == '/')
        buf[--n] = '\0';
    if (!n)
        return 0;
    int k = 0;
    char *p = buf;
    for (;;) {
        if (k == max)
            return -1;
        seg[k++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    for (int i = 0; i < k; i++)
        if (!*seg[i])
            return -1; /* "a//b" */
    return k;
}

static int arg_cb(void *opaque, const char *key, const char *value)
{
    json_object_set_new(opaque, key, json_string(value ? value : ""));
    return 0;
}

json_t *sb_req_args(const cs_httpd_req_t *req)
{
    json_t *o = json_object();
    cs_httpd_req_foreach_arg(req, arg_cb, o);
    return o;
}

void sb_resp_unavailable(cs_httpd_resp_t *resp)
{
    static const char page[] = "<html><head><title>503 Service Unavailable</title></head>"
                               "<body><h1>503 Service Unavailable</h1>"
                               "<p>The server is temporarily unable to service your request."
                               "</p></body></html>\n";
    cs_httpd_resp_header(resp, "Retry-After", "1");
    cs_httpd_resp_text(resp, 503, "text/html; charset=utf-8", page, sizeof(page) - 1);
}

/* ---- configuration ---- */

static void people_free(sb_person_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].first);
        free(p[i].last);
        free(p[i].email);
    }
    free(p);
}

/* "First Last <email>, ..." -> array. Returns 0 or -1 with errstr. */
static int parse_people(const char *key, const char *list, sb_person_t **out, size_t *n,
                        char *errstr, size_t errstr_size)
{
    *out = NULL;
    *n = 0;
    if (!list || !*list)
        return 0;
    char *copy = strdup(list);
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    sb_person_t *arr = calloc(cap, sizeof(*arr));
    if (!copy || !arr) {
        free(copy);
        free(arr);
        return cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (sb_parse_person(tok, &arr[*n].first, &arr[*n].last, &arr[*n].email) != 0) {
            cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                       "%s: cannot read \"%s\" (expected First Last <email>)", key, tok);
            people_free(arr, *n);
            free(copy);
            *n = 0;
            return CS_ERR_CONFIG;
        }
        (*n)++;
    }
    free(copy);
    *out = arr;
    return 0;
}

sb_t *sb_new(const cs_conf_t *conf, cs_metrics_t *metrics, char *errstr, size_t errstr_size)
{
    sb_t *sb = calloc(1, sizeof(*sb));
    sb_person_t *integ = NULL, *crm_users = NULL, *mkt_users = NULL;
    size_t ninteg = 0, ncrm = 0, nmkt = 0;
    if (!sb) {
        cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    sb->conf = conf;
    sb->max_body = (size_t)cs_conf_int(conf, "max_body");
    memcpy(sb->org_id, ORG_ID, 19);
    snprintf(sb->base_url, sizeof(sb->base_url), "http://127.0.0.1");

    if (parse_people("crm.integration_user", cs_conf_str(conf, "crm.integration_user"), &integ,
                     &ninteg, errstr, errstr_size) != 0 ||
        parse_people("crm.users", cs_conf_str(conf, "crm.users"), &crm_users, &ncrm, errstr,
                     errstr_size) != 0 ||
        parse_people("marketing.users", cs_conf_str(conf, "marketing.users"), &mkt_users, &nmkt,
                     errstr, errstr_size) != 0)
        goto fail;
    if (ninteg != 1) {
        cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "crm.integration_user: exactly one user");
        goto fail;
    }
    const char *bu = cs_conf_str(conf, "marketing.business_unit_id");
    if (!bu || sb_sfid_normalize(bu, sb->bu_id) != 0 || strncmp(sb->bu_id, "0Uv", 3) != 0) {
        cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                   "marketing.business_unit_id: expected a 15- or 18-character id starting 0Uv");
        goto fail;
    }
    int offset = 0;
    const char *off = cs_conf_str(conf, "marketing.utc_offset");
    if (!off || sb_parse_offset(off, &offset) != 0) {
        cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                   "marketing.utc_offset: expected +hh:mm, -hh:mm or Z");
        goto fail;
    }

    sb->knobs = sb_knobs_new(conf, errstr, errstr_size);
    if (!sb->knobs)
        goto fail;
    sb->crm = sb_crm_new(&integ[0], crm_users, ncrm);
    sb->stats = sb_stats_new(metrics);
    sb_auth_opts_t ao = {cs_conf_str(conf, "auth.client_id"),
                         cs_conf_str(conf, "auth.client_secret"),
                         cs_conf_str(conf, "auth.password"),
                         cs_conf_str(conf, "auth.security_token"),
                         sb->org_id,
                         (uint64_t)cs_conf_int(conf, "seed")};
    sb->auth = sb_auth_new(&ao);
    if (!sb->crm || !sb->stats || !sb->auth) {
        cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const char *editor = cs_conf_str(conf, "crm.editor_user");
    if (!editor || sb_crm_user_by_email(sb->crm, editor, sb->editor_user) != 0) {
        cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                   "crm.editor_user: \"%s\" is not one of crm.users or crm.integration_user",
                   editor ? editor : "");
        goto fail;
    }
    /* the integration user gets a linked marketing user, as the connector user has in a real
     * org: its writes through the v5 API carry that user's id in updatedById */
    sb_mkt_opts_t mo = {.users = mkt_users,
                        .nusers = nmkt,
                        .integration = &integ[0],
                        .crm = sb->crm,
                        .utc_offset_min = offset,
                        .allow_dup_emails = cs_conf_bool(conf, "marketing.allow_duplicate_emails"),
                        .strict_readonly = cs_conf_bool(conf, "marketing.strict_readonly"),
                        .base_url = sb->base_url,
                        .crm_url = sb->base_url};
    sb->mkt = sb_mkt_new(&mo);
    if (!sb->mkt) {
        cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const char *seed_file = cs_conf_str(conf, "seed.file");
    if (seed_file && *seed_file) {
        json_error_t e;
        sb->seed = json_load_file(seed_file, 0, &e);
        if (!json_is_object(sb->seed)) {
            cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "seed.file %s:%d: %s", seed_file, e.line,
                       sb->seed ? "expected a JSON object" : e.text);
            goto fail;
        }
        if (sb_apply_seed(sb, errstr, errstr_size) != 0)
            goto fail;
    }
    people_free(integ, ninteg);
    people_free(crm_users, ncrm);
    people_free(mkt_users, nmkt);
    return sb;
fail:
    people_free(integ, ninteg);
    people_free(crm_users, ncrm);
    people_free(mkt_users, nmkt);
    sb_destroy(sb);
    return NULL;
}

void sb_destroy(sb_t *sb)
{
    if (!sb)
        return;
    sb_mkt_destroy(sb->mkt);
    sb_crm_destroy(sb->crm);
    sb_auth_destroy(sb->auth);
    sb_knobs_destroy(sb->knobs);
    sb_stats_destroy(sb->stats);
    json_decref(sb->seed);
    free(sb);
}

void sb_set_base_url(sb_t *sb, const char *url)
{
    snprintf(sb->base_url, sizeof(sb->base_url), "%s", url);
    sb_mkt_set_urls(sb->mkt, sb->base_url, sb->base_url);
    atomic_store(&sb->ready, 1);
}

/* ---- seed data ---- */

static int seed_crm(sb_t *sb, const char *key, const char *type, char *errstr, size_t errstr_size)
{
    json_t *arr = json_object_get(sb->seed, key);
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "seed.file: %s must be an array",
                          key);
    size_t n = json_array_size(arr);
    for (size_t from = 0; from < n; from += 200) {
        json_t *chunk = json_array();
        for (size_t i = from; i < n && i < from + 200; i++) {
            json_t *r = json_array_get(arr, i);
            if (!json_is_object(r)) {
                json_decref(chunk);
                return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                                  "seed.file: %s[%zu] must be an object", key, i);
            }
            json_t *copy = json_deep_copy(r);
            json_object_set_new(copy, "attributes", json_pack("{s:s}", "type", type));
            json_array_append_new(chunk, copy);
        }
        sb_wctx_t w = {sb->editor_user, 0, sb_knobs_now_ms(sb->knobs, SB_SIDE_CRM), NULL, NULL};
        sb_wstats_t st;
        int status = 0;
        json_t *res = sb_crm_write(sb->crm, SB_WR_CREATE, chunk, 1, NULL, NULL, &w, &status, &st);
        json_decref(chunk);
        if (status != 200) {
            char *t = json_dumps(res, JSON_COMPACT);
            cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "seed.file: %s: %s", key, t ? t : "");
            free(t);
            json_decref(res);
            return CS_ERR_CONFIG;
        }
        size_t i;
        json_t *r;
        json_array_foreach(res, i, r)
        {
            if (!json_is_true(json_object_get(r, "success"))) {
                char *t = json_dumps(json_object_get(r, "errors"), JSON_COMPACT);
                cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "seed.file: %s[%zu]: %s", key,
                           from + i, t ? t : "");
                free(t);
                json_decref(res);
                return CS_ERR_CONFIG;
            }
        }
        json_decref(res);
    }
    return 0;
}

int sb_apply_seed(sb_t *sb, char *errstr, size_t errstr_size)
{
    if (!sb->seed)
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach(sb->seed, k, v)
    {
        if (strcmp(k, "leads") && strcmp(k, "contacts") && strcmp(k, "prospects"))
            return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                              "seed.file: unknown key \"%s\" (leads, contacts, prospects)", k);
    }
    if (seed_crm(sb, "leads", "Lead", errstr, errstr_size) != 0 ||
        seed_crm(sb, "contacts", "Contact", errstr, errstr_size) != 0)
        return CS_ERR_CONFIG;
    json_t *ps = json_object_get(sb->seed, "prospects");
    if (ps && !json_is_array(ps))
        return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                          "seed.file: prospects must be an array");
    size_t i;
    json_array_foreach(ps, i, v)
    {
        int status = 0;
        char *loc = NULL;
        sb_mstats_t st = {0, 0, 0};
        json_t *res = sb_mkt_create(sb->mkt, v, "id", sb_knobs_now_ms(sb->knobs, SB_SIDE_MKT),
                                    SB_MKT_NO_USER, &status, &loc, &st); /* no author */
        free(loc);
        if (status != 201) {
            char *t = json_dumps(res, JSON_COMPACT);
            cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "seed.file: prospects[%zu]: %s", i,
                       t ? t : "");
            free(t);
            json_decref(res);
            return CS_ERR_CONFIG;
        }
        json_decref(res);
    }
    return 0;
}

/* ---- routing ---- */

void sb_handle(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp)
{
    sb_t *sb = opaque;
    const char *p = req->path;
    if (!atomic_load(&sb->ready)) {
        sb_resp_unavailable(resp);
        return;
    }
    if (req->body_len > sb->max_body) {
        char msg[128];
        snprintf(msg, sizeof(msg), "The request body exceeds the limit of %zu bytes", sb->max_body);
        if (!strncmp(p, "/api/", 5))
            cs_httpd_resp_json(resp, 413, sb_v5_error(413, msg));
        else
            cs_httpd_resp_json(resp, 413, sb_sf_error("REQUEST_ENTITY_TOO_LARGE", msg, NULL));
        return;
    }
    if (!strncmp(p, "/services/", 10)) {
        sb_crm_api(sb, req, resp, p + 10);
    } else if (!strncmp(p, "/api/v5/objects/", 16)) {
        sb_mkt_api(sb, req, resp, p + 16);
    } else if (!strncmp(p, "/sandbox/", 9)) {
        sb_admin_api(sb, req, resp, p + 9);
    } else if (!strcmp(p, "/")) {
        cs_httpd_resp_json(resp, 200,
                           json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "crmsync-sandbox", "crm",
                                     "/services/data/", "token", "/services/oauth2/token",
                                     "marketing", "/api/v5/objects/", "admin", "/sandbox/info"));
    } else {
        cs_httpd_resp_json(resp, 404,
                           sb_sf_error("NOT_FOUND", "The requested resource does not exist", NULL));
    }
}
