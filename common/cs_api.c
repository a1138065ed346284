#include "cs_api.h"
#include "cs_err.h"
#include "cs_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cs_opt_t cs_api_opts[] = {
    {"crm.login_url", CS_OPT_STRING, "https://login.salesforce.com", 0, 0, 0,
     "OAuth token host (My Domain for client_credentials; the sandbox's URL locally)"},
    {"crm.instance_url", CS_OPT_STRING, "", 0, 0, 0,
     "REST host; empty = the instance_url returned with the token"},
    {"crm.grant_type", CS_OPT_STRING, "client_credentials", 0, 0, 0,
     "client_credentials or password"},
    {"crm.client_id", CS_OPT_STRING, "", 0, 0, 0, "connected app consumer key"},
    {"crm.client_secret", CS_OPT_STRING, "", 0, 0, CS_OPT_SENSITIVE,
     "connected app consumer secret"},
    {"crm.username", CS_OPT_STRING, "", 0, 0, 0, "integration user (password grant only)"},
    {"crm.password", CS_OPT_STRING, "", 0, 0, CS_OPT_SENSITIVE,
     "password + security token (password grant only)"},
    {"crm.api_version", CS_OPT_STRING, "v60.0", 0, 0, 0, "Salesforce REST API version"},
    {"crm.external_id_field", CS_OPT_STRING, "Crmsync_Prospect_Id__c", 0, 0, 0,
     "External ID field on Lead holding the prospect id (idempotent creates)"},
    {"crm.connector_user_id", CS_OPT_STRING, "", 0, 0, 0,
     "owner of leads whose assignee is not mapped; empty = the integration user"},
    {"crm.timeout.ms", CS_OPT_INT, "30000", 100, 600000, 0, "CRM request timeout"},
    {"mkt.base_url", CS_OPT_STRING, "https://pi.pardot.com", 0, 0, 0,
     "Account Engagement host (the v5 API lives under /api/v5/objects)"},
    {"mkt.business_unit_id", CS_OPT_STRING, "", 0, 0, 0,
     "Pardot-Business-Unit-Id header (18 characters, 0Uv...)"},
    {"mkt.timeout.ms", CS_OPT_INT, "30000", 100, 600000, 0, "marketing API request timeout"},
    {"http.tls.insecure", CS_OPT_BOOL, "false", 0, 0, 0,
     "turn TLS certificate verification OFF for the APIs (logged as a warning)"},
    {"http.ca_file", CS_OPT_STRING, "", 0, 0, 0, "CA bundle for the APIs; empty = system"},
    CS_OPT_END,
};

enum {
    EP_CRM_COMPOSITE,
    EP_CRM_UPDATE,
    EP_CRM_UPSERT,
    EP_CRM_QUERY,
    EP_CRM_GET,
    EP_MKT_UPDATE,
    EP_MKT_UPSERT,
    EP_MKT_GET,
    EP_COUNT_
};

static const char *const ep_labels[EP_COUNT_] = {
    "api=\"crm\",endpoint=\"composite\"",
    "api=\"crm\",endpoint=\"collections_update\"",
    "api=\"crm\",endpoint=\"collections_upsert\"",
    "api=\"crm\",endpoint=\"query\"",
    "api=\"crm\",endpoint=\"get\"",
    "api=\"marketing\",endpoint=\"prospect_update\"",
    "api=\"marketing\",endpoint=\"prospect_upsert\"",
    "api=\"marketing\",endpoint=\"get\"",
};

struct cs_api_s {
    cs_counter_t *calls[EP_COUNT_]; /* per endpoint, NULL without metrics */
    cs_oauth_t *oauth;
    cs_http_t *crm, *mkt;
    cs_http_result_t last;
    char prefix[64];
    char instance[512];
    char mkt_base[512];
    char bu_header[128];
    const char *external_id;
    const char *connector_user;
    uint64_t crm_calls, mkt_calls;
    char last_next[512]; /* previous nextRecordsUrl of the running query */
};

cs_api_t *cs_api_new(const cs_conf_t *conf, cs_metrics_t *metrics, char *errstr, size_t n)
{
    cs_api_t *a = calloc(1, sizeof(*a));
    cs_http_opts_t ho;
    cs_oauth_opts_t oo;
    if (!a) {
        cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memset(&ho, 0, sizeof(ho));
    ho.tls_insecure = cs_conf_bool(conf, "http.tls.insecure");
    ho.ca_file = *cs_conf_str(conf, "http.ca_file") ? cs_conf_str(conf, "http.ca_file") : NULL;
    ho.metrics = metrics;

    memset(&oo, 0, sizeof(oo));
    oo.login_url = cs_conf_str(conf, "crm.login_url");
    oo.grant_type = cs_conf_str(conf, "crm.grant_type");
    oo.client_id = cs_conf_str(conf, "crm.client_id");
    oo.client_secret = cs_conf_str(conf, "crm.client_secret");
    oo.username = cs_conf_str(conf, "crm.username");
    oo.password = cs_conf_str(conf, "crm.password");
    ho.name = "oauth";
    ho.timeout_ms = cs_conf_int(conf, "crm.timeout.ms");
    oo.http = &ho;
    if (!(a->oauth = cs_oauth_new(&oo, errstr, n)))
        goto fail;

    ho.get_token = cs_oauth_get_token;
    ho.token_opaque = a->oauth;
    ho.name = "crm";
    if (!(a->crm = cs_http_new(&ho, errstr, n)))
        goto fail;
    ho.name = "marketing";
    ho.timeout_ms = cs_conf_int(conf, "mkt.timeout.ms");
    if (!(a->mkt = cs_http_new(&ho, errstr, n)))
        goto fail;

    snprintf(a->prefix, sizeof(a->prefix), "/services/data/%s",
             cs_conf_str(conf, "crm.api_version"));
    snprintf(a->instance, sizeof(a->instance), "%s", cs_conf_str(conf, "crm.instance_url"));
    snprintf(a->mkt_base, sizeof(a->mkt_base), "%s", cs_conf_str(conf, "mkt.base_url"));
    snprintf(a->bu_header, sizeof(a->bu_header), "Pardot-Business-Unit-Id: %s",
             cs_conf_str(conf, "mkt.business_unit_id"));
    a->external_id = cs_conf_str(conf, "crm.external_id_field");
    a->connector_user = cs_conf_str(conf, "crm.connector_user_id");
    for (int i = 0; metrics && i < EP_COUNT_; i++)
        a->calls[i] = cs_metrics_counter(metrics, "crmsync_api_calls_total",
                                         "API calls made, per system and endpoint", ep_labels[i]);
    return a;
fail:
    cs_api_destroy(a);
    return NULL;
}

void cs_api_set_idle(cs_api_t *a, cs_http_idle_cb_t idle, void *opaque)
{
    cs_http_set_idle(a->crm, idle, opaque);
    cs_http_set_idle(a->mkt, idle, opaque);
}

void cs_api_destroy(cs_api_t *a)
{
    if (!a)
        return;
    cs_http_destroy(a->crm);
    cs_http_destroy(a->mkt);
    cs_oauth_destroy(a->oauth);
    free(a);
}

const char *cs_api_crm_prefix(const cs_api_t *a)
{
    return a->prefix;
}

const char *cs_api_external_id_field(const cs_api_t *a)
{
    return a->external_id;
}

const char *cs_api_connector_user(const cs_api_t *a)
{
    return a->connector_user;
}

uint64_t cs_api_crm_calls(const cs_api_t *a)
{
    return a->crm_calls;
}

uint64_t cs_api_mkt_calls(const cs_api_t *a)
{
    return a->mkt_calls;
}

const cs_http_result_t *cs_api_last(const cs_api_t *a)
{
    return &a->last;
}

static void count(cs_api_t *a, int ep)
{
    if (a->calls[ep])
        cs_counter_add(a->calls[ep], 1 + (a->last.auth_retried ? 1 : 0));
}

/* The REST host: configured, or learned with the first token. */
static int instance(cs_api_t *a)
{
    char *tok;
    int err;
    if (a->instance[0])
        return CS_OK;
    /* Any token fetch records the instance_url; the token itself is not needed here. */
    if (!(tok = malloc(4096)))
        return CS_ERR_NOMEM;
    err = cs_oauth_get_token(a->oauth, 0, tok, 4096);
    memset(tok, 0, 4096);
    free(tok);
    if (err)
        return err;
    return cs_oauth_instance_url(a->oauth, a->instance, sizeof(a->instance));
}

int cs_api_self_user(cs_api_t *a, char *buf, size_t n)
{
    int err = instance(a); /* fetches a token when there is none */
    if (err)
        return err;
    return cs_oauth_user_id(a->oauth, buf, n);
}

static int crm_call(cs_api_t *a, const char *method, const char *path, const char *body, size_t len)
{
    static const char *const hdrs[] = {"Content-Type: application/json", "Accept: application/json",
                                       "Sforce-Auto-Assign: FALSE", NULL};
    char url[2048];
    int err = instance(a);
    if (err) {
        memset(&a->last, 0, sizeof(a->last));
        a->last.err = err;
        snprintf(a->last.errstr, sizeof(a->last.errstr), "CRM token: %s", cs_err_str(err));
        return err;
    }
    if (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8))
        snprintf(url, sizeof(url), "%s", path);
    else if (!strncmp(path, "/services/", 10))
        snprintf(url, sizeof(url), "%s%s", a->instance, path);
    else
        snprintf(url, sizeof(url), "%s%s/%s", a->instance, a->prefix, path);
    err = cs_http_request(a->crm, method, url, hdrs, body, len, &a->last);
    a->crm_calls += 1 + (a->last.auth_retried ? 1 : 0);
    return err;
}

static int mkt_call(cs_api_t *a, const char *method, const char *path, const char *body, size_t len)
{
    const char *hdrs[] = {"Content-Type: application/json", "Accept: application/json",
                          a->bu_header, NULL};
    char url[4096];
    int err;
    if (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8))
        snprintf(url, sizeof(url), "%s", path);
    else
        snprintf(url, sizeof(url), "%s/api/v5/%s", a->mkt_base, path);
    err = cs_http_request(a->mkt, method, url, hdrs, body, len, &a->last);
    a->mkt_calls += 1 + (a->last.auth_retried ? 1 : 0);
    return err;
}

/* ---------------------------------------------------------------- CRM */

/* Appends a SOQL string literal: single quotes and backslashes escaped. */
static void soql_quote(char **p, char *end, const char *s)
{
    char *w = *p;
    if (w < end)
        *w++ = '\'';
    for (; *s && w + 2 < end; s++) {
        if (*s == '\'' || *s == '\\')
            *w++ = '\\';
        *w++ = *s;
    }
    if (w < end)
        *w++ = '\'';
    *p = w;
}

static char *build_in_query(const char *obj, const char *const *emails, size_t n)
{
    size_t cap = 128 + n * 2 * 256;
    char *q = malloc(cap), *w, *end;
    if (!q)
        return NULL;
    end = q + cap - 64;
    w = q + sprintf(q, "SELECT Id, Email FROM %s WHERE Email IN (", obj);
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        soql_quote(&w, end, emails[i]);
    }
    strcpy(w, ") ORDER BY Id");
    return q;
}

static void match_records(json_t *qbody, cs_link_t obj, const char *const *emails, size_t n,
                          cs_api_match_t *out)
{
    json_t *recs = json_object_get(qbody, "records");
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "Id"));
        const char *em = json_string_value(json_object_get(r, "Email"));
        if (!id || !em || strlen(id) != 18)
            continue;
        for (size_t k = 0; k < n; k++) {
            /* Contacts first: a lead never replaces a contact; among records of one type
             * the first (lowest Id) wins. */
            if (out[k].object == CS_LINK_CONTACT || (out[k].object == obj))
                continue;
            if (!strcasecmp(em, emails[k])) {
                out[k].object = obj;
                memcpy(out[k].id, id, 19);
            }
        }
    }
}

int cs_api_crm_match(cs_api_t *a, const char *const *emails, size_t n, cs_api_match_t *out)
{
    char *qc = NULL, *ql = NULL, *ec = NULL, *el = NULL, *body = NULL;
    json_t *req = NULL, *resp;
    int err = CS_ERR_NOMEM;
    memset(out, 0, n * sizeof(*out));
    if (n == 0)
        return CS_OK;
    qc = build_in_query("Contact", emails, n);
    ql = build_in_query("Lead", emails, n);
    if (!qc || !ql)
        goto out;
    ec = cs_http_escape(qc, strlen(qc), 1);
    el = cs_http_escape(ql, strlen(ql), 1);
    if (!ec || !el)
        goto out;
    {
        size_t ul = strlen(a->prefix) + strlen(ec) + strlen(el) + 32;
        char *uc = malloc(ul), *ulead = malloc(ul);
        if (!uc || !ulead) {
            free(uc);
            free(ulead);
            goto out;
        }
        snprintf(uc, ul, "%s/query?q=%s", a->prefix, ec);
        snprintf(ulead, ul, "%s/query?q=%s", a->prefix, el);
        req = json_pack("{s:b, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "allOrNone", 0,
                        "compositeRequest", "method", "GET", "url", uc, "referenceId", "contacts",
                        "method", "GET", "url", ulead, "referenceId", "leads");
        free(uc);
        free(ulead);
    }
    if (!req || !(body = json_dumps(req, JSON_COMPACT)))
        goto out;
    err = crm_call(a, "POST", "composite", body, strlen(body));
    count(a, EP_CRM_COMPOSITE);
    if (err)
        goto out;
    resp = json_object_get(cs_http_result_json(&a->last), "compositeResponse");
    if (!json_is_array(resp) || json_array_size(resp) != 2) {
        err = CS_ERR_PARSE;
        goto out;
    }
    for (size_t i = 0; i < 2; i++) {
        json_t *sub = json_array_get(resp, i);
        const char *ref = json_string_value(json_object_get(sub, "referenceId"));
        json_int_t code = json_integer_value(json_object_get(sub, "httpStatusCode"));
        if (code != 200) {
            snprintf(a->last.errstr, sizeof(a->last.errstr), "composite %s: HTTP %lld",
                     ref ? ref : "?", (long long)code);
            err = code >= 500 ? CS_ERR_HTTP_5XX : CS_ERR_HTTP_4XX;
            goto out;
        }
        match_records(json_object_get(sub, "body"),
                      ref && !strcmp(ref, "contacts") ? CS_LINK_CONTACT : CS_LINK_LEAD, emails, n,
                      out);
    }
    err = CS_OK;
out:
    free(qc);
    free(ql);
    free(ec);
    free(el);
    free(body);
    json_decref(req);
    return err;
}

static int collection_results(cs_api_t *a, size_t n, cs_api_rec_result_t *results)
{
    json_t *arr = cs_http_result_json(&a->last), *r;
    size_t i;
    memset(results, 0, n * sizeof(*results));
    if (!json_is_array(arr) || json_array_size(arr) != n) {
        snprintf(a->last.errstr, sizeof(a->last.errstr),
                 "collection answer is not an array of %zu results", n);
        return CS_ERR_PARSE;
    }
    json_array_foreach(arr, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "id"));
        results[i].success = json_is_true(json_object_get(r, "success"));
        results[i].created = json_is_true(json_object_get(r, "created"));
        if (id)
            snprintf(results[i].id, sizeof(results[i].id), "%s", id);
        json_t *e0 = json_array_get(json_object_get(r, "errors"), 0);
        if (e0) {
            const char *code = json_string_value(json_object_get(e0, "statusCode"));
            const char *msg = json_string_value(json_object_get(e0, "message"));
            snprintf(results[i].code, sizeof(results[i].code), "%s", code ? code : "UNKNOWN");
            snprintf(results[i].message, sizeof(results[i].message), "%s", msg ? msg : "");
        } else if (!results[i].success) {
            snprintf(results[i].code, sizeof(results[i].code), "UNKNOWN");
        }
    }
    return CS_OK;
}

static int collection_call(cs_api_t *a, const char *path, int ep, json_t *records,
                           cs_api_rec_result_t *results)
{
    size_t n = json_array_size(records);
    json_t *req = json_pack("{s:b, s:o}", "allOrNone", 0, "records", records);
    char *body;
    int err;
    if (!req)
        return CS_ERR_NOMEM;
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        return CS_ERR_NOMEM;
    err = crm_call(a, "PATCH", path, body, strlen(body));
    count(a, ep);
    free(body);
    if (err)
        return err;
    return collection_results(a, n, results);
}

int cs_api_crm_update(cs_api_t *a, json_t *records, cs_api_rec_result_t *results)
{
    return collection_call(a, "composite/sobjects", EP_CRM_UPDATE, records, results);
}

int cs_api_crm_upsert(cs_api_t *a, const char *type, json_t *records, cs_api_rec_result_t *results)
{
    char path[256];
    snprintf(path, sizeof(path), "composite/sobjects/%s/%s", type, a->external_id);
    return collection_call(a, path, EP_CRM_UPSERT, records, results);
}

int cs_api_crm_query(cs_api_t *a, const char *soql, int (*cb)(void *opaque, json_t *record),
                     void *opaque)
{
    char *esc = cs_http_escape(soql, strlen(soql), 1), *path;
    int err;
    a->last_next[0] = '\0';
    if (!esc)
        return CS_ERR_NOMEM;
    path = malloc(strlen(esc) + 16);
    if (!path) {
        free(esc);
        return CS_ERR_NOMEM;
    }
    sprintf(path, "query?q=%s", esc);
    free(esc);
    /* A server that keeps answering done:false (or repeats a locator) must not hold us
     * forever: 10,000 pages of 2,000 records is 20 million records. */
    for (int page = 0;; page++) {
        if (page >= 10000) {
            CS_WARN("api", "SOQL query stopped after %d pages (server never said done)", page);
            err = CS_ERR_PARSE;
            break;
        }
        json_t *body, *recs, *r;
        size_t i;
        const char *next;
        err = crm_call(a, "GET", path, NULL, 0);
        count(a, EP_CRM_QUERY);
        free(path);
        path = NULL;
        if (err)
            break;
        body = cs_http_result_json(&a->last);
        recs = json_object_get(body, "records");
        json_array_foreach(recs, i, r)
        {
            if (cb(opaque, r))
                return CS_OK;
        }
        if (json_is_true(json_object_get(body, "done")))
            break;
        next = json_string_value(json_object_get(body, "nextRecordsUrl"));
        if (!next || !(path = strdup(next)))
            break;
        if (a->last_next[0] && !strcmp(a->last_next, next)) {
            CS_WARN("api", "SOQL query: the server repeated nextRecordsUrl %s; stopping", next);
            err = CS_ERR_PARSE;
            break;
        }
        snprintf(a->last_next, sizeof(a->last_next), "%s", next);
    }
    free(path);
    return err;
}

int cs_api_crm_get_path(cs_api_t *a, const char *path, json_t **out)
{
    int err = crm_call(a, "GET", path, NULL, 0);
    count(a, EP_CRM_GET);
    *out = NULL;
    if (err)
        return err;
    *out = json_incref(cs_http_result_json(&a->last));
    return *out ? CS_OK : CS_ERR_PARSE;
}

/* ---------------------------------------------------------------- marketing */

int cs_api_mkt_update(cs_api_t *a, int64_t prospect_id, json_t *fields)
{
    char path[128], *body = json_dumps(fields, JSON_COMPACT);
    int err;
    json_decref(fields);
    if (!body)
        return CS_ERR_NOMEM;
    snprintf(path, sizeof(path), "objects/prospects/%lld?fields=id,updatedAt",
             (long long)prospect_id);
    err = mkt_call(a, "PATCH", path, body, strlen(body));
    count(a, EP_MKT_UPDATE);
    free(body);
    return err;
}

int cs_api_mkt_upsert_by_email(cs_api_t *a, const char *email, json_t *fields, int64_t *id_out)
{
    json_t *req = json_pack("{s:s, s:o, s:[s,s,s]}", "matchEmail", email, "prospect", fields,
                            "fields", "id", "email", "updatedAt");
    char *body;
    int err;
    *id_out = -1;
    if (!req)
        return CS_ERR_NOMEM;
    json_object_set_new(json_object_get(req, "prospect"), "email", json_string(email));
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        return CS_ERR_NOMEM;
    err = mkt_call(a, "POST", "objects/prospects/do/upsertLatestByEmail", body, strlen(body));
    count(a, EP_MKT_UPSERT);
    free(body);
    if (!err) {
        json_t *id = json_object_get(cs_http_result_json(&a->last), "id");
        if (!json_is_integer(id))
            return CS_ERR_PARSE;
        *id_out = json_integer_value(id);
    }
    return err;
}

int cs_api_mkt_get(cs_api_t *a, int64_t prospect_id, const char *fields, json_t **out)
{
    char path[1024];
    snprintf(path, sizeof(path), "objects/prospects/%lld?fields=%s", (long long)prospect_id,
             fields);
    return cs_api_mkt_get_path(a, path, out);
}

int cs_api_mkt_get_path(cs_api_t *a, const char *path_or_url, json_t **out)
{
    int err = mkt_call(a, "GET", path_or_url, NULL, 0);
    count(a, EP_MKT_GET);
    *out = NULL;
    if (err)
        return err;
    *out = json_incref(cs_http_result_json(&a->last));
    return *out ? CS_OK : CS_ERR_PARSE;
}

int cs_api_mkt_self_user(cs_api_t *a, int64_t *id)
{
    char crm_user[19], next[4096];
    int err = cs_api_self_user(a, crm_user, sizeof(crm_user)), pages = 0;
    snprintf(next, sizeof(next), "objects/users?fields=id,salesforceId&limit=1000");
    while (!err && next[0] && pages++ < 100) {
        json_t *body, *values, *u;
        size_t k;
        if ((err = cs_api_mkt_get_path(a, next, &body)))
            break;
        values = json_object_get(body, "values");
        next[0] = '\0';
        json_array_foreach(values, k, u)
        {
            const char *sf = json_string_value(json_object_get(u, "salesforceId"));
            json_t *uid = json_object_get(u, "id");
            /* 15- and 18-character forms of one id share their first 15 characters */
            if (sf && strlen(sf) >= 15 && !strncmp(sf, crm_user, 15) && json_is_integer(uid)) {
                *id = json_integer_value(uid);
                json_decref(body);
                return CS_OK;
            }
        }
        const char *url = json_string_value(json_object_get(body, "nextPageUrl"));
        if (url)
            snprintf(next, sizeof(next), "%s", url);
        json_decref(body);
    }
    return err ? err : CS_ERR_NOT_FOUND;
}
