/* sb_knobs: the sandbox's fault and limit knobs, the API usage counters they guard, and the
 * random choices behind them.
 *
 * Knobs start from the configuration (same names as the config keys) and can be changed while
 * running (POST /sandbox/knobs). Random choices come from generators seeded by the "seed" knob,
 * one stream per purpose (503s, per-record lock errors), so a single-threaded client sees the
 * same faults on every run with the same seed. Thread-safe: one mutex; the marketing in-flight
 * count is atomic. */
#ifndef SB_KNOBS_H
#define SB_KNOBS_H

#include <stdint.h>

#include <jansson.h>

#include "cs_conf.h"

typedef enum { SB_SIDE_CRM = 0, SB_SIDE_MKT = 1 } sb_side_t;

typedef struct sb_knobs_s sb_knobs_t;

/* Reads every knob from c (the option names listed by sb_knobs_names()). Returns NULL with
 * errstr on a bad value (e.g. a rate outside [0, 1]). Caller frees with sb_knobs_destroy(). */
sb_knobs_t *sb_knobs_new(const cs_conf_t *c, char *errstr, size_t errstr_size);
void sb_knobs_destroy(sb_knobs_t *k); /* accepts NULL */

/* Back to the configured values, usage counters to zero, generators re-seeded. */
void sb_knobs_reset(sb_knobs_t *k);

/* Applies {"name": value, ...}. Unknown names or bad values change nothing and return -1 with
 * errstr. */
int sb_knobs_apply(sb_knobs_t *k, json_t *obj, char *errstr, size_t errstr_size);

/* Every knob and the usage counters, as JSON (new reference). */
json_t *sb_knobs_json(sb_knobs_t *k);

/* ---- the gates an API call passes ---- */

typedef enum {
    SB_GATE_OK = 0,
    SB_GATE_UNAVAILABLE, /* answer 503 */
    SB_GATE_BURST,       /* CRM: 403 REQUEST_LIMIT_EXCEEDED; marketing: code 66 */
    SB_GATE_DAILY,       /* CRM: 403 REQUEST_LIMIT_EXCEEDED; marketing: code 122 */
    SB_GATE_CONCURRENCY, /* marketing: code 66 */
} sb_gate_t;

/* Before authentication: sleeps the side's latency (returns early on shutdown) and rolls the
 * 503 dice. Returns SB_GATE_OK or SB_GATE_UNAVAILABLE. */
sb_gate_t sb_knobs_pre(sb_knobs_t *k, sb_side_t side);

/* After authentication: burst errors, concurrency (marketing; inflight = calls in progress
 * including this one), then the daily limit; an admitted call is counted. *used / *limit get
 * the usage after this call (for Sforce-Limit-Info). */
sb_gate_t sb_knobs_admit(sb_knobs_t *k, sb_side_t side, long inflight, long long *used,
                         long long *limit);

/* Current usage without counting. */
void sb_knobs_usage(sb_knobs_t *k, sb_side_t side, long long *used, long long *limit);

/* Marketing calls in progress. */
long sb_knobs_enter(sb_knobs_t *k);
void sb_knobs_leave(sb_knobs_t *k);

/* 1 when this record should fail with UNABLE_TO_LOCK_ROW (a sb_wctx_t lock_row callback;
 * opaque is the sb_knobs_t). */
int sb_knobs_lock_row(void *opaque);

int64_t sb_knobs_token_ttl_ms(sb_knobs_t *k);
/* Wall clock of a side, with its configured skew. */
int64_t sb_knobs_now_ms(sb_knobs_t *k, sb_side_t side);

#endif
