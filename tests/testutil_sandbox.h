/* testutil_sandbox: start and stop a crmsync-sandbox for a test.
 *
 *   cs_tsandbox_t sb;
 *   REQUIRE(cs_tsandbox_start(&sb, NULL, err, sizeof(err)) == 0);
 *   ... talk to sb.url (cs_http, or cs_tsandbox_oauth() for a token provider) ...
 *   CHECK_INT(cs_tsandbox_stop(&sb), 0);
 *
 * The sandbox is $CRMSYNC_BIN_DIR/crmsync-sandbox (../bin from the test binary's directory
 * when unset), started with --port 0; its first stdout line gives the URL. It gets SIGTERM if
 * the test process dies (PR_SET_PDEATHSIG), so a crashed test leaves nothing running.
 * Not thread-safe (one start/stop per struct); the helpers below may be used from any thread. */
#ifndef TESTUTIL_SANDBOX_H
#define TESTUTIL_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "cs_http.h"

/* The sandbox's default credentials and ids (see docs/SANDBOX.md). */
#define CS_TSANDBOX_CLIENT_ID "crmsync-sandbox-client"
#define CS_TSANDBOX_CLIENT_SECRET "sandbox-secret"
#define CS_TSANDBOX_PASSWORD "sandbox-password"
#define CS_TSANDBOX_BU_ID "0Uv5g000000SBOXCA4"
#define CS_TSANDBOX_DATA "/services/data/v60.0"
#define CS_TSANDBOX_V5 "/api/v5/objects"

typedef struct cs_tsandbox_s {
    pid_t pid;
    int out_fd; /* the child's stdout, kept open until stop */
    int port;
    char url[64]; /* "http://127.0.0.1:PORT", no trailing slash */
} cs_tsandbox_t;

/* Starts the sandbox with "--port 0" and extra_args (NULL-terminated, may be NULL) and waits
 * up to 10 s for its "listening on" line. Returns 0, or -1 with errstr (nothing left running). */
int cs_tsandbox_start(cs_tsandbox_t *sb, const char *const *extra_args, char *errstr,
                      size_t errstr_size);

/* SIGTERM, then waits up to 10 s (SIGKILL after). Returns the exit status (0 = clean exit),
 * 128 + signal when killed by a signal, -1 when it was not running. */
int cs_tsandbox_stop(cs_tsandbox_t *sb);

/* A client-credentials token provider for this sandbox (default credentials). Caller frees
 * with cs_oauth_destroy(). NULL on failure. */
cs_oauth_t *cs_tsandbox_oauth(const cs_tsandbox_t *sb);

/* One request to the sandbox without a token provider: url = sb->url + path, extra header
 * lines (NULL-terminated, may be NULL), body (JSON text or NULL). Returns the parsed JSON
 * body (new reference; NULL when not JSON) and sets *status (0 on transport failure). */
json_t *cs_tsandbox_call(const cs_tsandbox_t *sb, const char *method, const char *path,
                         const char *const *headers, const char *body, int *status);

/* The /sandbox/... admin helpers: cs_tsandbox_call(sb, method, "/sandbox/" + what, body). */
json_t *cs_tsandbox_admin(const cs_tsandbox_t *sb, const char *method, const char *what,
                          const char *body, int *status);

/* Sets knobs: body is the JSON object text, e.g. "{\"crm.latency_ms\": 50}". Returns 0 or -1. */
int cs_tsandbox_knobs(const cs_tsandbox_t *sb, const char *body);

/* POST /sandbox/reset. Returns 0 or -1. */
int cs_tsandbox_reset(const cs_tsandbox_t *sb);

/* An authenticated client: a cs_http client whose token comes from cs_tsandbox_oauth(). */
typedef struct cs_tsandbox_client_s {
    const cs_tsandbox_t *sb;
    cs_oauth_t *oauth;
    cs_http_t *http;
    cs_http_result_t res; /* of the last request */
} cs_tsandbox_client_t;

/* Returns 0 or -1. Release with cs_tsandbox_client_close(). One thread at a time. */
int cs_tsandbox_client_init(cs_tsandbox_client_t *c, const cs_tsandbox_t *sb);
void cs_tsandbox_client_close(cs_tsandbox_client_t *c);

/* An authenticated request to sb->url + path (paths under /api/v5/ also get the
 * Pardot-Business-Unit-Id header). Returns the response JSON, borrowed until the next request
 * on c (NULL when not JSON); *status (may be NULL) gets the HTTP status (0: no response). */
json_t *cs_tsandbox_req(cs_tsandbox_client_t *c, const char *method, const char *path,
                        const char *body, int *status);

#endif
