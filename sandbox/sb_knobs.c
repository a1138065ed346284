#include "sb_knobs.h"
#include "sb_util.h"

#include "cs_err.h"
#include "cs_run.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct values_s {
    long long crm_latency_ms, crm_burst, crm_daily_limit, crm_clock_skew_ms;
    double crm_error_rate, crm_lock_row_rate;
    long long mkt_latency_ms, mkt_burst, mkt_daily_limit, mkt_concurrency, mkt_clock_skew_ms;
    double mkt_error_rate;
    long long token_ttl_s, seed;
} values_t;

typedef enum { K_INT, K_RATE } kind_t;

typedef struct knob_s {
    const char *name;
    kind_t kind;
    size_t off;
    long long min, max;
} knob_t;

#define KI(n, f, lo, hi)                                                                           \
    {                                                                                              \
        n, K_INT, offsetof(values_t, f), lo, hi                                                    \
    }
#define KR(n, f)                                                                                   \
    {                                                                                              \
        n, K_RATE, offsetof(values_t, f), 0, 1                                                     \
    }

/* The config keys and POST /sandbox/knobs names are the same. */
static const knob_t knobs[] = {
    KI("crm.latency_ms", crm_latency_ms, 0, 600000),
    KR("crm.error_rate", crm_error_rate),
    KI("crm.burst_limit_errors", crm_burst, 0, 1000000000),
    KI("crm.daily_limit", crm_daily_limit, 0, 1000000000000LL),
    KR("crm.lock_row_rate", crm_lock_row_rate),
    KI("crm.clock_skew_ms", crm_clock_skew_ms, -86400000LL, 86400000LL),
    KI("marketing.latency_ms", mkt_latency_ms, 0, 600000),
    KR("marketing.error_rate", mkt_error_rate),
    KI("marketing.burst_limit_errors", mkt_burst, 0, 1000000000),
    KI("marketing.daily_limit", mkt_daily_limit, 0, 1000000000000LL),
    KI("marketing.concurrency_limit", mkt_concurrency, 1, 1000000),
    KI("marketing.clock_skew_ms", mkt_clock_skew_ms, -86400000LL, 86400000LL),
    KI("auth.token_ttl_s", token_ttl_s, 1, 315360000LL),
    KI("seed", seed, 0, (long long)(~0ULL >> 1)),
};

#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))

struct sb_knobs_s {
    pthread_mutex_t mu;
    values_t conf; /* as configured */
    values_t cur;
    long long used[2];
    sb_rng_t rng_fault[2], rng_lock;
    atomic_long inflight;
};

static void reseed(sb_knobs_t *k)
{
    uint64_t s = (uint64_t)k->cur.seed;
    sb_rng_seed(&k->rng_fault[0], s * 3 + 1);
    sb_rng_seed(&k->rng_fault[1], s * 3 + 2);
    sb_rng_seed(&k->rng_lock, s * 3 + 3);
}

static int set_value(values_t *v, const knob_t *kn, const char *text, json_t *jv, char *errstr,
                     size_t errstr_size)
{
    char *p = (char *)v + kn->off;
    if (kn->kind == K_INT) {
        long long x;
        if (jv) {
            if (!json_is_integer(jv))
                return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "%s: expected an integer",
                                  kn->name);
            x = json_integer_value(jv);
        } else {
            char *end;
            x = strtoll(text, &end, 10);
            if (!*text || *end)
                return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "%s: expected an integer",
                                  kn->name);
        }
        if (x < kn->min || x > kn->max)
            return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                              "%s: %lld is outside [%lld, %lld]", kn->name, x, kn->min, kn->max);
        memcpy(p, &x, sizeof(x));
    } else {
        double x;
        if (jv) {
            if (!json_is_number(jv))
                return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "%s: expected a number",
                                  kn->name);
            x = json_number_value(jv);
        } else {
            char *end;
            x = strtod(text, &end);
            if (!*text || *end)
                return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "%s: expected a number",
                                  kn->name);
        }
        if (!(x >= 0.0 && x <= 1.0))
            return cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "%s: a rate must be in [0, 1]",
                              kn->name);
        memcpy(p, &x, sizeof(x));
    }
    return 0;
}

sb_knobs_t *sb_knobs_new(const cs_conf_t *c, char *errstr, size_t errstr_size)
{
    sb_knobs_t *k = calloc(1, sizeof(*k));
    if (!k) {
        cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&k->mu, NULL);
    for (size_t i = 0; i < NKNOBS; i++) {
        const char *text = cs_conf_str(c, knobs[i].name);
        char num[32];
        if (knobs[i].kind == K_INT) { /* INT options: read through the typed getter */
            snprintf(num, sizeof(num), "%lld", cs_conf_int(c, knobs[i].name));
            text = num;
        }
        if (!text || set_value(&k->conf, &knobs[i], text, NULL, errstr, errstr_size) != 0) {
            if (!text)
                cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "%s is not set", knobs[i].name);
            sb_knobs_destroy(k);
            return NULL;
        }
    }
    k->cur = k->conf;
    reseed(k);
    return k;
}

void sb_knobs_destroy(sb_knobs_t *k)
{
    if (!k)
        return;
    pthread_mutex_destroy(&k->mu);
    free(k);
}

void sb_knobs_reset(sb_knobs_t *k)
{
    pthread_mutex_lock(&k->mu);
    k->cur = k->conf;
    k->used[0] = k->used[1] = 0;
    reseed(k);
    pthread_mutex_unlock(&k->mu);
}

int sb_knobs_apply(sb_knobs_t *k, json_t *obj, char *errstr, size_t errstr_size)
{
    if (!json_is_object(obj))
        return cs_err_set(errstr, errstr_size, CS_ERR_PARSE, "expected a JSON object");
    pthread_mutex_lock(&k->mu);
    values_t v = k->cur;
    long long used[2] = {k->used[0], k->used[1]};
    const char *key;
    json_t *val;
    int rc = 0, seeded = 0;
    json_object_foreach(obj, key, val)
    {
        /* the usage counters can be set too, to reach a daily limit without the calls */
        if (!strcmp(key, "crm.daily_used") || !strcmp(key, "marketing.daily_used")) {
            if (!json_is_integer(val) || json_integer_value(val) < 0) {
                rc = cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "%s: expected an integer >= 0",
                                key);
                break;
            }
            used[key[0] == 'm'] = json_integer_value(val);
            continue;
        }
        const knob_t *kn = NULL;
        for (size_t i = 0; i < NKNOBS && !kn; i++)
            if (!strcmp(knobs[i].name, key))
                kn = &knobs[i];
        if (!kn) {
            rc = cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "unknown knob: %s", key);
            break;
        }
        if ((rc = set_value(&v, kn, NULL, val, errstr, errstr_size)) != 0)
            break;
        seeded |= !strcmp(key, "seed");
    }
    if (rc == 0) {
        k->cur = v;
        k->used[0] = used[0];
        k->used[1] = used[1];
        if (seeded)
            reseed(k);
    }
    pthread_mutex_unlock(&k->mu);
    return rc;
}

json_t *sb_knobs_json(sb_knobs_t *k)
{
    json_t *o = json_object();
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < NKNOBS; i++) {
        const char *p = (const char *)&k->cur + knobs[i].off;
        if (knobs[i].kind == K_INT) {
            long long x;
            memcpy(&x, p, sizeof(x));
            json_object_set_new(o, knobs[i].name, json_integer(x));
        } else {
            double x;
            memcpy(&x, p, sizeof(x));
            json_object_set_new(o, knobs[i].name, json_real(x));
        }
    }
    json_object_set_new(o, "crm.daily_used", json_integer(k->used[0]));
    json_object_set_new(o, "marketing.daily_used", json_integer(k->used[1]));
    pthread_mutex_unlock(&k->mu);
    json_object_set_new(o, "marketing.inflight", json_integer(atomic_load(&k->inflight)));
    return o;
}

sb_gate_t sb_knobs_pre(sb_knobs_t *k, sb_side_t side)
{
    pthread_mutex_lock(&k->mu);
    long long latency = side == SB_SIDE_CRM ? k->cur.crm_latency_ms : k->cur.mkt_latency_ms;
    double rate = side == SB_SIDE_CRM ? k->cur.crm_error_rate : k->cur.mkt_error_rate;
    int fail = rate > 0 && sb_rng_double(&k->rng_fault[side]) < rate;
    pthread_mutex_unlock(&k->mu);
    if (latency > 0)
        cs_run_sleep_ms(latency);
    return fail ? SB_GATE_UNAVAILABLE : SB_GATE_OK;
}

sb_gate_t sb_knobs_admit(sb_knobs_t *k, sb_side_t side, long inflight, long long *used,
                         long long *limit)
{
    sb_gate_t g = SB_GATE_OK;
    pthread_mutex_lock(&k->mu);
    long long *burst = side == SB_SIDE_CRM ? &k->cur.crm_burst : &k->cur.mkt_burst;
    long long lim = side == SB_SIDE_CRM ? k->cur.crm_daily_limit : k->cur.mkt_daily_limit;
    if (*burst > 0) {
        (*burst)--;
        g = SB_GATE_BURST;
    } else if (side == SB_SIDE_MKT && inflight > k->cur.mkt_concurrency) {
        g = SB_GATE_CONCURRENCY;
    } else if (k->used[side] >= lim) {
        g = SB_GATE_DAILY;
    } else {
        k->used[side]++;
    }
    *used = k->used[side];
    *limit = lim;
    pthread_mutex_unlock(&k->mu);
    return g;
}

void sb_knobs_usage(sb_knobs_t *k, sb_side_t side, long long *used, long long *limit)
{
    pthread_mutex_lock(&k->mu);
    *used = k->used[side];
    *limit = side == SB_SIDE_CRM ? k->cur.crm_daily_limit : k->cur.mkt_daily_limit;
    pthread_mutex_unlock(&k->mu);
}

long sb_knobs_enter(sb_knobs_t *k)
{
    return atomic_fetch_add(&k->inflight, 1) + 1;
}

void sb_knobs_leave(sb_knobs_t *k)
{
    atomic_fetch_sub(&k->inflight, 1);
}

int sb_knobs_lock_row(void *opaque)
{
    sb_knobs_t *k = opaque;
    pthread_mutex_lock(&k->mu);
    int fail =
        k->cur.crm_lock_row_rate > 0 && sb_rng_double(&k->rng_lock) < k->cur.crm_lock_row_rate;
    pthread_mutex_unlock(&k->mu);
    return fail;
}

int64_t sb_knobs_token_ttl_ms(sb_knobs_t *k)
{
    pthread_mutex_lock(&k->mu);
    int64_t v = k->cur.token_ttl_s * 1000;
    pthread_mutex_unlock(&k->mu);
    return v;
}

int64_t sb_knobs_now_ms(sb_knobs_t *k, sb_side_t side)
{
    pthread_mutex_lock(&k->mu);
    int64_t skew = side == SB_SIDE_CRM ? k->cur.crm_clock_skew_ms : k->cur.mkt_clock_skew_ms;
    pthread_mutex_unlock(&k->mu);
    return cs_wall_ms() + skew;
}
