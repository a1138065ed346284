/* sb: the sandbox as a whole: the two stores, auth, knobs and stats, and the HTTP handler that
 * routes /services/... (CRM), /api/v5/... (marketing) and /sandbox/... (test helpers).
 *
 * Life cycle (main.c): sb_new() -> cs_httpd_new(handler = sb_handle, opaque = sb) ->
 * sb_set_base_url() (the handler answers 503 until then) -> ... -> cs_httpd_destroy() ->
 * sb_destroy(). */
#ifndef SB_H
#define SB_H

#include <stdatomic.h>
#include <stddef.h>

#include <jansson.h>

#include "cs_conf.h"
#include "cs_httpd.h"
#include "cs_metrics.h"

#include "sb_auth.h"
#include "sb_crm.h"
#include "sb_knobs.h"
#include "sb_mkt.h"
#include "sb_stats.h"

typedef struct sb_s {
    const cs_conf_t *conf;
    sb_crm_t *crm;
    sb_mkt_t *mkt;
    sb_auth_t *auth;
    sb_knobs_t *knobs;
    sb_stats_t *stats;
    char base_url[160];
    atomic_int ready;
    size_t max_body;
    char org_id[19];
    char bu_id[19];
    char editor_user[19];
    json_t *seed; /* the seed file's content, re-applied by /sandbox/reset (or NULL) */
} sb_t;

/* Builds the sandbox from the configuration (options listed in main.c). Returns NULL with
 * errstr on a bad value or ENOMEM. Caller frees with sb_destroy(). */
sb_t *sb_new(const cs_conf_t *conf, cs_metrics_t *metrics, char *errstr, size_t errstr_size);
void sb_destroy(sb_t *sb); /* accepts NULL */

/* Sets the URL the sandbox advertises (instance_url, nextPageUrl, ...) and opens it for
 * requests. */
void sb_set_base_url(sb_t *sb, const char *url);

/* The cs_httpd handler. Any MHD thread. */
void sb_handle(void *opaque, const cs_httpd_req_t *req, cs_httpd_resp_t *resp);

/* ---- shared by the API files ---- */

void sb_crm_api(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp, const char *rest);
void sb_mkt_api(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp, const char *rest);
void sb_admin_api(sb_t *sb, const cs_httpd_req_t *req, cs_httpd_resp_t *resp, const char *rest);

/* Loads the seed data (leads, contacts, prospects) into the stores. Returns 0 or -1 with
 * errstr. */
int sb_apply_seed(sb_t *sb, char *errstr, size_t errstr_size);

/* Splits "a/b/c" into at most max segments (in a copy held in buf); returns the count or -1
 * when there are more. A trailing slash is ignored. */
int sb_split_path(const char *path, char *buf, size_t bufsize, char **seg, int max);

/* The request's query arguments as {"name": "value"} (new reference). */
json_t *sb_req_args(const cs_httpd_req_t *req);

/* Answers an HTML 503 page, as an edge or load balancer does in an outage. */
void sb_resp_unavailable(cs_httpd_resp_t *resp);

#endif
