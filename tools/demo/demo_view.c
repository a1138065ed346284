/* The live view: samples the pipeline every second (the replicas' and producers' /metrics,
 * the sandbox's /sandbox/stats) and draws a compact block, redrawn in place on a terminal,
 * one line per second otherwise. */
#include "demo.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const demo_phase_names[] = {
    "setup",      "CRM records",       "prospects", "activities", "first sync",
    "CSV import", "assignment change", "CRM edits", "settling",   "done",
};

/* ---------------------------------------------------------------- Prometheus text */

/* Calls cb for every sample line "name{labels} value" of metric `name` (exact name). */
static void prom_each(const char *text, const char *name,
                      void (*cb)(void *opaque, const char *labels, size_t llen, double v),
                      void *opaque)
{
    size_t nlen = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > nlen && *p != '#' && !strncmp(p, name, nlen) &&
            (p[nlen] == ' ' || p[nlen] == '{')) {
            const char *labels = "", *sp;
            size_t llen = 0;
            const char *end = p + len;
            if (p[nlen] == '{') {
                const char *close = memchr(p + nlen, '}', len - nlen);
                if (close) {
                    labels = p + nlen + 1;
                    llen = (size_t)(close - labels);
                }
            }
            /* the value is the last blank-separated token (no timestamps here) */
            for (sp = end; sp > p && sp[-1] != ' '; sp--)
                ;
            if (sp > p && sp < end) {
                char num[64];
                size_t vlen = (size_t)(end - sp);
                if (vlen < sizeof(num)) {
                    memcpy(num, sp, vlen);
                    num[vlen] = '\0';
                    cb(opaque, labels, llen, strtod(num, NULL));
                }
            }
        }
        p = nl ? nl + 1 : NULL;
    }
}

typedef struct sum_ctx_s {
    const char *label;
    double sum;
} sum_ctx_t;

static void sum_cb(void *opaque, const char *labels, size_t llen, double v)
{
    sum_ctx_t *c = opaque;
    if (c->label) {
        size_t n = strlen(c->label);
        int found = 0;
        for (size_t i = 0; !found && n <= llen && i + n <= llen; i++)
            found = !memcmp(labels + i, c->label, n);
        if (!found)
            return;
    }
    if (isfinite(v))
        c->sum += v;
}

double demo_prom_sum(const char *text, const char *name, const char *label)
{
    sum_ctx_t c = {label, 0};
    if (text)
        prom_each(text, name, sum_cb, &c);
    return c.sum;
}

static void hist_cb(void *opaque, const char *labels, size_t llen, double v)
{
    demo_sample_t *s = opaque;
    const char *le = NULL;
    double bound;
    int i;
    for (size_t k = 0; k + 4 <= llen; k++)
        if (!memcmp(labels + k, "le=\"", 4)) {
            le = labels + k + 4;
            break;
        }
    if (!le)
        return;
    bound = !strncmp(le, "+Inf", 4) ? INFINITY : strtod(le, NULL);
    for (i = 0; i < s->nlat; i++)
        if (s->lat_le[i] == bound)
            break;
    if (i == s->nlat) {
        if (s->nlat == DEMO_LAT_MAX)
            return;
        /* keep the bounds sorted */
        while (i > 0 && s->lat_le[i - 1] > bound) {
            s->lat_le[i] = s->lat_le[i - 1];
            s->lat_cum[i] = s->lat_cum[i - 1];
            i--;
        }
        s->lat_le[i] = bound;
        s->lat_cum[i] = 0;
        s->nlat++;
    }
    s->lat_cum[i] += v;
    if (isinf(bound))
        s->lat_count += v;
}

void demo_prom_hist(const char *text, const char *name, demo_sample_t *s)
{
    char bucket[128];
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    if (text)
        prom_each(text, bucket, hist_cb, s);
}

double demo_quantile(const demo_sample_t *s, double q)
{
    double total = s->lat_count, target, prev_cum = 0, prev_le = 0;
    if (s->nlat == 0 || total <= 0)
        return 0;
    target = q * total;
    for (int i = 0; i < s->nlat; i++) {
        if (s->lat_cum[i] >= target) {
            if (isinf(s->lat_le[i]))
                return prev_le; /* beyond the last bound: the last bound is all we know */
            if (s->lat_cum[i] <= prev_cum)
                return s->lat_le[i];
            return prev_le +
                   (s->lat_le[i] - prev_le) * (target - prev_cum) / (s->lat_cum[i] - prev_cum);
        }
        prev_cum = s->lat_cum[i];
        prev_le = s->lat_le[i];
    }
    return prev_le;
}

/* ---------------------------------------------------------------- sampling */

/* GET base + path; returns the body (borrowed from h) or NULL. */
static const char *get_text(cs_http_t *h, const char *base, const char *path, cs_http_result_t *res)
{
    char url[512];
    if (!base || !*base)
        return NULL;
    snprintf(url, sizeof(url), "%s%s", base, path);
    if (cs_http_request(h, "GET", url, NULL, NULL, 0, res) != CS_OK)
        return NULL;
    return res->body;
}

static long long jint(json_t *o, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

void demo_sample(demo_t *d, cs_http_t *h, demo_sample_t *s)
{
    static const char *const inputs[DEMO_IN_COUNT_] = {"input=\"prospect\"", "input=\"activity\"",
                                                       "input=\"crm\""};
    cs_http_result_t res;
    const char *t;
    json_t *st = NULL;

    memset(s, 0, sizeof(*s));
    for (int i = 0; i < d->nconsumers; i++) {
        if (!(t = get_text(h, d->consumers[i], "/metrics", &res)))
            continue;
        s->replicas_up++;
        for (int k = 0; k < DEMO_IN_COUNT_; k++)
            s->consumed[k] += demo_prom_sum(t, "crmsync_events_consumed_total", inputs[k]);
        s->dedup += demo_prom_sum(t, "crmsync_events_total", "outcome=\"deduplicated\"");
        s->queue += demo_prom_sum(t, "crmsync_queue_depth", NULL);
        s->batches_crm += demo_prom_sum(t, "crmsync_batches_total", "direction=\"crm\"");
        s->batches_mkt += demo_prom_sum(t, "crmsync_batches_total", "direction=\"marketing\"");
        s->record_errors += demo_prom_sum(t, "crmsync_record_errors_total", NULL);
        s->poison += demo_prom_sum(t, "crmsync_poison_total", NULL);
        demo_prom_hist(t, "crmsync_sync_latency_ms", s);
    }
    if ((t = get_text(h, d->prospect_producer, "/metrics", &res))) {
        s->producers_up++;
        s->produced_prospect = demo_prom_sum(t, "crmsync_producer_events_total", NULL);
        s->polls_prospect = demo_prom_sum(t, "crmsync_producer_polls_total", "outcome=\"ok\"");
    }
    if ((t = get_text(h, d->crm_producer, "/metrics", &res))) {
        s->producers_up++;
        s->produced_crm = demo_prom_sum(t, "crmsync_producer_events_total", NULL);
        s->polls_crm = demo_prom_sum(t, "crmsync_producer_polls_total", "outcome=\"ok\"");
    }
    if ((t = get_text(h, d->ingest_url, "/metrics", &res))) {
        s->producers_up++;
        s->produced_activity = demo_prom_sum(t, "crmsync_activities_published_total", NULL);
    }
    if (demo_get_json(h, d->sandbox_url, "/sandbox/stats", &st) == CS_OK) {
        s->sandbox_up = 1;
        s->crm_calls = jint(st, "crm", "api_calls", NULL);
        s->mkt_calls = jint(st, "marketing", "api_calls", NULL);
        s->crm_created = jint(st, "crm", "records_created", NULL);
        s->crm_updated = jint(st, "crm", "records_updated", NULL);
        s->mkt_created = jint(st, "marketing", "records_created", NULL);
        s->mkt_updated = jint(st, "marketing", "records_updated", NULL);
        json_t *ep = json_object_get(json_object_get(json_object_get(st, "marketing"), "endpoints"),
                                     "POST /prospects");
        s->wl_mkt_calls = jint(ep, "calls", NULL, NULL);
        s->wl_mkt_created = jint(ep, "status", "2xx", NULL);
        json_decref(st);
    }
    s->at_ms = cs_now_ms();
}

void demo_last(demo_t *d, demo_sample_t *s)
{
    pthread_mutex_lock(&d->mu);
    *s = d->last;
    pthread_mutex_unlock(&d->mu);
}

void demo_totals(const demo_sample_t *s, long wl_calls, demo_totals_t *t)
{
    long long wl_mkt = s->wl_mkt_calls;
    t->events = (long long)(s->consumed[0] + s->consumed[1] + s->consumed[2]);
    t->crm_writes = s->crm_created + s->crm_updated;
    /* the workload's own prospect creates are the people's work, not the pipeline's */
    t->mkt_writes = s->mkt_created - s->wl_mkt_created + s->mkt_updated;
    t->api_calls = s->crm_calls - wl_calls + s->mkt_calls - wl_mkt;
    if (t->mkt_writes < 0)
        t->mkt_writes = 0;
    if (t->api_calls < 0)
        t->api_calls = 0;
    t->errors = (long long)(s->record_errors + s->poison);
    t->p50_ms = llround(demo_quantile(s, 0.50));
    t->p99_ms = llround(demo_quantile(s, 0.99));
}

/* ---------------------------------------------------------------- drawing */

static void draw(demo_t *d, const demo_sample_t *s, const demo_sample_t *prev)
{
    demo_totals_t t;
    double in = s->consumed[0] + s->consumed[1] + s->consumed[2];
    double rate = 0, secs = (double)(s->at_ms - d->start_ms) / 1000.0;
    int ph = atomic_load(&d->progress.phase);
    char work[128];

    demo_totals(s, atomic_load(&d->progress.token_fetches), &t);
    if (prev && prev->at_ms && s->at_ms > prev->at_ms)
        rate = (in - (prev->consumed[0] + prev->consumed[1] + prev->consumed[2])) * 1000.0 /
               (double)(s->at_ms - prev->at_ms);
    if (ph < 0 || ph > DEMO_PH_DONE)
        ph = DEMO_PH_DONE;
    switch (ph) {
    case DEMO_PH_CRM:
        snprintf(work, sizeof(work), "%s %ld", demo_phase_names[ph],
                 atomic_load(&d->progress.crm_records));
        break;
    case DEMO_PH_PROSPECTS:
        snprintf(work, sizeof(work), "%s %ld/%d", demo_phase_names[ph],
                 atomic_load(&d->progress.prospects), d->nprospects);
        break;
    case DEMO_PH_ACTIVITIES:
        snprintf(work, sizeof(work), "%s %ld/%ld", demo_phase_names[ph],
                 atomic_load(&d->progress.activities),
                 atomic_load(&d->progress.activities_planned));
        break;
    default:
        snprintf(work, sizeof(work), "%s", demo_phase_names[ph]);
    }

    if (!d->tty) {
        printf("[%5.1fs] %-20s in p=%.0f a=%.0f c=%.0f (%.0f/s) dedup=%.0f queue=%.0f "
               "batches=%.0f/%.0f api=%lld writes=%lld/%lld p50=%lldms p99=%lldms errors=%lld\n",
               secs, work, s->consumed[0], s->consumed[1], s->consumed[2], rate, s->dedup, s->queue,
               s->batches_crm, s->batches_mkt, t.api_calls, t.crm_writes, t.mkt_writes, t.p50_ms,
               t.p99_ms, t.errors);
        fflush(stdout);
        return;
    }
    if (d->drawn_lines)
        printf("\033[%dA", d->drawn_lines);
    printf("\033[K\033[1mcrmsync demo\033[0m  %5.1f s   workload: %-28s replicas %d/%d\n", secs,
           work, s->replicas_up, d->nconsumers);
    printf("\033[K  events in    prospect %7.0f   activity %7.0f   crm %7.0f   = %7.0f "
           "(%5.0f/s)\n",
           s->consumed[0], s->consumed[1], s->consumed[2], in, rate);
    printf("\033[K  dedup        %7.0f deduplicated   queue %6.0f   batches crm %5.0f  "
           "marketing %5.0f\n",
           s->dedup, s->queue, s->batches_crm, s->batches_mkt);
    printf("\033[K  API calls    %7lld (crm %lld, marketing %lld)   writes crm %lld  marketing "
           "%lld\n",
           t.api_calls, s->crm_calls - atomic_load(&d->progress.token_fetches),
           s->mkt_calls - s->wl_mkt_calls, t.crm_writes, t.mkt_writes);
    printf("\033[K  latency      p50 %5lld ms   p99 %5lld ms   errors %lld\n", t.p50_ms, t.p99_ms,
           t.errors);
    d->drawn_lines = 5;
    fflush(stdout);
}

static void *view_main(void *opaque)
{
    demo_t *d = opaque;
    cs_http_opts_t o;
    cs_http_t *h;
    demo_sample_t s, prev;
    int64_t next = cs_now_ms();

    memset(&o, 0, sizeof(o));
    o.timeout_ms = 2000;
    o.connect_timeout_ms = 1000;
    o.name = "demo-view";
    memset(&prev, 0, sizeof(prev));
    if (!(h = cs_http_new(&o, NULL, 0)))
        return NULL;
    while (!atomic_load(&d->view_stop)) {
        demo_sample(d, h, &s);
        pthread_mutex_lock(&d->mu);
        d->last = s;
        pthread_mutex_unlock(&d->mu);
        if (!d->view_off)
            draw(d, &s, &prev);
        prev = s;
        next += 1000;
        while (!atomic_load(&d->view_stop) && cs_now_ms() < next)
            cs_run_sleep_ms(50);
        if (cs_now_ms() > next + 1000)
            next = cs_now_ms(); /* a slow sample: do not try to catch up */
    }
    cs_http_destroy(h);
    return NULL;
}

int demo_view_start(demo_t *d)
{
    atomic_store(&d->view_stop, 0);
    if (pthread_create(&d->view_thread, NULL, view_main, d))
        return CS_ERR_NOMEM;
    d->view_started = 1;
    return CS_OK;
}

void demo_view_stop(demo_t *d)
{
    if (!d->view_started)
        return;
    atomic_store(&d->view_stop, 1);
    pthread_join(d->view_thread, NULL);
    d->view_started = 0;
}
