/* sb_stats: what the sandbox counts for tests and benchmarks (GET /sandbox/stats): API calls
 * per side and endpoint (with their HTTP status classes), calls and records created / updated /
 * deleted per object, and calls refused by a knob or a limit. Thread-safe (one mutex). */
#ifndef SB_STATS_H
#define SB_STATS_H

#include <jansson.h>

#include "cs_metrics.h"

typedef struct sb_stats_s sb_stats_t;

/* metrics may be NULL; when set, crmsync_sandbox_api_calls_total{side} counters are kept too.
 * Returns NULL on ENOMEM. Caller frees with sb_stats_destroy(). */
sb_stats_t *sb_stats_new(cs_metrics_t *metrics);
void sb_stats_destroy(sb_stats_t *s); /* accepts NULL */
void sb_stats_reset(sb_stats_t *s);

/* One API call: side is "crm" or "marketing", endpoint a route template such as
 * "POST /composite/sobjects", status the HTTP status answered. */
void sb_stats_call(sb_stats_t *s, const char *side, const char *endpoint, int status);

/* A refused call ("503", "REQUEST_LIMIT_EXCEEDED", "INVALID_SESSION_ID", "66", ...). */
void sb_stats_refused(sb_stats_t *s, const char *side, const char *reason);

/* Per-object counts: one call touching the object plus records created / updated / deleted. */
void sb_stats_object(sb_stats_t *s, const char *side, const char *object, unsigned calls,
                     unsigned created, unsigned updated, unsigned deleted);

/* The whole tree (new reference). */
json_t *sb_stats_json(sb_stats_t *s);

#endif
