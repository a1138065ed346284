/* What the benchmark observes, and the sandbox set-up.
 *
 * The sync consumer is a black box here: a child process whose /metrics is read over HTTP
 * (events consumed, queue depth, records pushed, the latency histogram, state size), whose
 * log holds the restore timings, and whose CPU time and peak RSS come from /proc. The
 * sandbox is read through /sandbox/stats (API calls and records written, per side). */
#include "bench.h"

#include "cs_err.h"
#include "cs_run.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ the consumer process */

static int find_port(const char *log)
{
    static const char tag[] = "metrics on http://";
    FILE *f = fopen(log, "r");
    char line[2048];
    int port = 0;
    while (f && !port && fgets(line, sizeof(line), f)) {
        char *m = strstr(line, tag), *colon;
        if (m && (colon = strchr(m + sizeof(tag) - 1, ':')))
            port = atoi(colon + 1);
    }
    if (f)
        fclose(f);
    return port;
}

int bench_consumer_start(bench_consumer_t *c, const char *conf, const char *log)
{
    const char *args[] = {"--config", conf, NULL};
    char errstr[256];
    memset(c, 0, sizeof(*c));
    unlink(log);
    c->t_start_us = cs_now_us();
    if (cs_tproc_start(&c->proc, "sync-consumer", args, log)) {
        fprintf(stderr, "bench: cannot start crmsync-sync-consumer\n");
        return -1;
    }
    for (int i = 0; i < 6000 && !c->port; i++) { /* up to 30 s */
        if (!cs_tproc_alive(&c->proc)) {
            fprintf(stderr, "bench: crmsync-sync-consumer exited at start (log %s)\n", log);
            return -1;
        }
        if (!(c->port = find_port(log)))
            sleep_ms(5);
    }
    if (!c->port || !(c->http = cs_http_new(NULL, errstr, sizeof(errstr)))) {
        fprintf(stderr, "bench: no metrics port from the consumer (log %s)\n", log);
        cs_tproc_stop(&c->proc, 20000);
        return -1;
    }
    return 0;
}

int bench_consumer_stop(bench_consumer_t *c)
{
    int rc = cs_tproc_stop(&c->proc, 30000);
    cs_http_destroy(c->http);
    free(c->body);
    c->http = NULL;
    c->body = NULL;
    return rc;
}

int bench_consumer_scrape(bench_consumer_t *c)
{
    char url[96];
    cs_http_result_t res;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", c->port);
    if (cs_http_request(c->http, "GET", url, NULL, NULL, 0, &res) || res.status != 200)
        return -1;
    free(c->body);
    c->body = strdup(res.body);
    return c->body ? 0 : -1;
}

/* Calls fn for every sample line of metric `name` (with or without labels). */
static void each_sample(const char *body, const char *name,
                        void (*fn)(void *opaque, const char *line, size_t len), void *opaque)
{
    size_t nlen = strlen(name);
    for (const char *p = body; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > nlen && !strncmp(p, name, nlen) && (p[nlen] == ' ' || p[nlen] == '{'))
            fn(opaque, p, len);
        p = nl ? nl + 1 : NULL;
    }
}

typedef struct sum_s {
    const char *label;
    double sum;
    int found;
} sum_t;

static void add_sample(void *opaque, const char *line, size_t len)
{
    sum_t *s = opaque;
    char buf[512];
    const char *sp;
    snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
    if (s->label && !strstr(buf, s->label))
        return;
    if ((sp = strrchr(buf, ' '))) {
        s->sum += atof(sp + 1);
        s->found = 1;
    }
}

double bench_metric(const bench_consumer_t *c, const char *name, const char *label)
{
    sum_t s = {label, 0, 0};
    if (!c->body)
        return -1;
    each_sample(c->body, name, add_sample, &s);
    return s.found ? s.sum : -1;
}

static void add_bucket(void *opaque, const char *line, size_t len)
{
    bench_hist_t *h = opaque;
    char buf[512];
    const char *le, *sp;
    snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
    if (!(le = strstr(buf, "le=\"")) || !(sp = strrchr(buf, ' ')) || h->n >= 32)
        return;
    le += 4;
    h->le[h->n] = !strncmp(le, "+Inf", 4) ? INFINITY : atof(le);
    h->cum[h->n] = atof(sp + 1);
    h->n++;
}

int bench_hist_read(const bench_consumer_t *c, const char *name, bench_hist_t *h)
{
    char bucket[128];
    memset(h, 0, sizeof(*h));
    if (!c->body)
        return -1;
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    each_sample(c->body, bucket, add_bucket, h);
    return h->n > 0 ? 0 : -1;
}

static double cum_at(const bench_hist_t *h, const bench_hist_t *base, int i)
{
    return h->cum[i] - (base && base->n == h->n ? base->cum[i] : 0);
}

double bench_hist_count(const bench_hist_t *h, const bench_hist_t *base)
{
    return h->n ? cum_at(h, base, h->n - 1) : 0;
}

double bench_hist_quantile(const bench_hist_t *h, const bench_hist_t *base, double q)
{
    double total = bench_hist_count(h, base), rank = q * total;
    if (total <= 0)
        return NAN;
    for (int i = 0; i < h->n; i++) {
        double c = cum_at(h, base, i), prev = i ? cum_at(h, base, i - 1) : 0;
        double lo = i ? h->le[i - 1] : 0;
        if (c < rank || c <= 0)
            continue;
        if (isinf(h->le[i]))
            return lo; /* in +Inf: the highest finite bound is all that is known */
        return lo + (h->le[i] - lo) * (c > prev ? (rank - prev) / (c - prev) : 1);
    }
    return NAN;
}

double bench_hist_max_le(const bench_hist_t *h, const bench_hist_t *base)
{
    double total = bench_hist_count(h, base);
    for (int i = 0; i < h->n; i++)
        if (cum_at(h, base, i) >= total)
            return h->le[i];
    return NAN;
}

int bench_wait_consumed(bench_consumer_t *c, double events, int poll_ms, int timeout_s,
                        int64_t *t_first_us, int64_t *t_done_us)
{
    double last = -1;
    int64_t last_progress = cs_now_us(), prev_t = 0;
    double prev_v = 0;
    if (t_first_us)
        *t_first_us = 0;
    while (!cs_run_stopping()) {
        int64_t now = cs_now_us();
        double v =
            bench_consumer_scrape(c) ? -1 : bench_metric(c, "crmsync_events_consumed_total", NULL);
        if (v > last) {
            last = v;
            last_progress = now;
        }
        if (v > 0 && t_first_us && !*t_first_us)
            *t_first_us = now;
        if (v >= events) {
            /* between the last two scrapes, at the rate seen between them */
            if (prev_t && v > prev_v)
                now = prev_t + (int64_t)((double)(now - prev_t) * (events - prev_v) / (v - prev_v));
            if (t_done_us)
                *t_done_us = now;
            return 0;
        }
        if (!cs_tproc_alive(&c->proc)) {
            fprintf(stderr, "bench: the consumer died (log %s)\n", c->proc.log);
            return -1;
        }
        if (now - last_progress > (int64_t)timeout_s * 1000000) {
            fprintf(stderr, "bench: consumer stuck at %.0f of %.0f events (log %s)\n", last, events,
                    c->proc.log);
            return -1;
        }
        if (v >= 0) {
            prev_t = now;
            prev_v = v;
        }
        sleep_ms(poll_ms);
    }
    return -1;
}

int bench_wait_quiet(bench_consumer_t *c, int settle_ms, int timeout_s, int64_t *t_last_push_us)
{
    int64_t t0 = cs_now_us(), last_change = t0;
    double last = -2;
    while (!cs_run_stopping()) {
        int64_t now = cs_now_us();
        double pushed = -1, depth = -1, lag = -1;
        if (!bench_consumer_scrape(c)) {
            pushed = bench_metric(c, "crmsync_records_pushed_total", NULL);
            depth = bench_metric(c, "crmsync_queue_depth", NULL);
            lag = bench_metric(c, "crmsync_lag_events", NULL);
        }
        if (pushed != last) {
            last = pushed;
            last_change = now;
        }
        if (pushed >= 0 && depth == 0 && lag <= 0 && now - last_change >= settle_ms * 1000LL) {
            if (t_last_push_us)
                *t_last_push_us = last_change;
            return 0;
        }
        if (now - t0 > (int64_t)timeout_s * 1000000) {
            fprintf(stderr, "bench: consumer not quiet after %d s (queue %.0f, lag %.0f)\n",
                    timeout_s, depth, lag);
            return -1;
        }
        sleep_ms(100);
    }
    return -1;
}

int bench_restore_lines(const char *log, long *records, long *ms)
{
    FILE *f = fopen(log, "r");
    char line[2048];
    int n = 0;
    *records = *ms = 0;
    while (f && fgets(line, sizeof(line), f)) {
        const char *m = strstr(line, "restored ");
        long r, t;
        int part;
        if (m && sscanf(m, "restored %ld state record(s) of partition %d in %ld ms", &r, &part,
                        &t) == 3) {
            *records += r;
            *ms += t;
            n++;
        }
    }
    if (f)
        fclose(f);
    return n;
}

/* ------------------------------------------------------------------ /proc */

double bench_proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    FILE *f;
    size_t n;
    unsigned long long ut = 0, st = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long bench_proc_hwm(pid_t pid)
{
    char path[64], line[256];
    FILE *f;
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atol(line + 6);
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

void bench_machine_jiffies(uint64_t *busy, uint64_t *total)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[10] = {0};
    *busy = *total = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4]; /* idle, iowait */
    }
    fclose(f);
}

/* ------------------------------------------------------------------ the sandbox */

static long jint(json_t *o, const char *a, const char *b)
{
    return (long)json_integer_value(json_object_get(json_object_get(o, a), b));
}

static long endpoint_calls(json_t *st, const char *side, const char *ep)
{
    return (long)json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(st, side), "endpoints"), ep), "calls"));
}

int bench_sandbox_stats(const cs_tsandbox_t *sb, bench_sbstats_t *s)
{
    int status = 0;
    json_t *st = cs_tsandbox_admin(sb, "GET", "stats", NULL, &status);
    memset(s, 0, sizeof(*s));
    if (status != 200 || !st) {
        json_decref(st);
        fprintf(stderr, "bench: /sandbox/stats: HTTP %d\n", status);
        return -1;
    }
    s->crm_calls = jint(st, "crm", "api_calls");
    s->crm_created = jint(st, "crm", "records_created");
    s->crm_updated = jint(st, "crm", "records_updated");
    s->mkt_calls = jint(st, "marketing", "api_calls");
    s->mkt_created = jint(st, "marketing", "records_created");
    s->mkt_updated = jint(st, "marketing", "records_updated");
    s->crm_composite = endpoint_calls(st, "crm", "POST /composite");
    s->crm_update_calls = endpoint_calls(st, "crm", "PATCH /composite/sobjects");
    s->crm_upsert_calls = endpoint_calls(st, "crm", "PATCH /composite/sobjects/{type}/{field}");
    s->crm_token_calls = endpoint_calls(st, "crm", "POST /services/oauth2/token");
    json_decref(st);
    return 0;
}

/* Runs a SOQL query through every page; fn(opaque, record) for each record. 0 or -1. */
static int soql_each(cs_tsandbox_client_t *api, const char *soql,
                     void (*fn)(void *opaque, json_t *rec), void *opaque)
{
    char path[2048];
    char *q = cs_http_escape(soql, strlen(soql), 0);
    int status = 0;
    if (!q)
        return -1;
    snprintf(path, sizeof(path), CS_TSANDBOX_DATA "/query?q=%s", q);
    free(q);
    for (;;) {
        json_t *r = cs_tsandbox_req(api, "GET", path, NULL, &status), *rec;
        size_t i;
        const char *next;
        if (status != 200 || !r)
            return -1;
        json_array_foreach(json_object_get(r, "records"), i, rec) fn(opaque, rec);
        next = json_string_value(json_object_get(r, "nextRecordsUrl"));
        if (!next || json_is_true(json_object_get(r, "done")))
            return 0;
        snprintf(path, sizeof(path), "%s", next);
    }
}

typedef struct users_s {
    char (*crm)[19];
    int64_t *mkt;
} users_t;

static const char *const user_emails[2] = {"sam@acme.example", "rita@acme.example"};

static void crm_user(void *opaque, json_t *rec)
{
    users_t *u = opaque;
    const char *e = json_string_value(json_object_get(rec, "Email"));
    for (int k = 0; k < 2; k++)
        if (e && !strcmp(e, user_emails[k]))
            snprintf(u->crm[k], 19, "%s", json_string_value(json_object_get(rec, "Id")));
}

int bench_sandbox_users(cs_tsandbox_client_t *api, int64_t mkt[2], char crm[2][19],
                        char integration[19])
{
    users_t u = {crm, mkt};
    int status = 0;
    json_t *info = cs_tsandbox_admin(api->sb, "GET", "info", NULL, &status), *r, *v;
    const char *integ = json_string_value(json_object_get(info, "integration_user_id"));
    size_t i;
    mkt[0] = mkt[1] = 0;
    crm[0][0] = crm[1][0] = '\0';
    snprintf(integration, 19, "%s", integ ? integ : "");
    json_decref(info);
    if (soql_each(api, "SELECT Id, Email FROM User", crm_user, &u))
        goto bad;
    r = cs_tsandbox_req(api, "GET", CS_TSANDBOX_V5 "/users?fields=id,email&limit=1000", NULL,
                        &status);
    json_array_foreach(json_object_get(r, "values"), i, v)
    {
        const char *e = json_string_value(json_object_get(v, "email"));
        for (int k = 0; k < 2; k++)
            if (e && !strcmp(e, user_emails[k]))
                mkt[k] = json_integer_value(json_object_get(v, "id"));
    }
    if (strlen(crm[0]) == 18 && strlen(crm[1]) == 18 && mkt[0] > 0 && mkt[1] > 0 &&
        strlen(integration) == 18)
        return 0;
bad:
    fprintf(stderr, "bench: the sandbox's users are not the documented ones\n");
    return -1;
}

/* The lead as it exists before the stream: the prospect's initial values. */
static void lead_json(const bench_pop_t *pop, long i, char crm[2][19], char *buf, size_t cap,
                      size_t *w)
{
    const bench_prospect_t *p = &pop->p[i];
    char key[64];
    bench_pop_key(pop, i, key);
    *w += (size_t)snprintf(buf + *w, cap - *w,
                           "%s{\"attributes\":{\"type\":\"Lead\"},\"Email\":\"%s\",\"FirstName\":"
                           "\"First%ld\",\"LastName\":\"Last%ld\",\"Company\":\"Company %ld\","
                           "\"Title\":\"Title %u\",\"OwnerId\":\"%s\"",
                           buf[*w - 1] == '[' ? "" : ",", key, i, i, i % 1000, (unsigned)p->title,
                           crm[p->owner]);
    if (p->phone)
        *w += (size_t)snprintf(buf + *w, cap - *w, ",\"Phone\":\"+1 555 %04u %06ld\"",
                               (unsigned)p->phone, i % 1000000);
    *w += (size_t)snprintf(buf + *w, cap - *w, "}");
}

int bench_sandbox_leads(cs_tsandbox_client_t *api, bench_pop_t *pop, char crm[2][19])
{
    size_t cap = 200 * 512 + 64;
    char *body = malloc(cap);
    long idx[200];
    int rc = 0;
    if (!body)
        return -1;
    for (long i = 0; i < pop->n && !rc;) {
        size_t w = (size_t)snprintf(body, cap, "{\"allOrNone\":true,\"records\":[");
        int k = 0, status = 0;
        for (; i < pop->n && k < 200; i++) {
            if (!(pop->p[i].flags & BP_LEAD))
                continue;
            lead_json(pop, i, crm, body, cap, &w);
            idx[k++] = i;
        }
        if (!k)
            break;
        w += (size_t)snprintf(body + w, cap - w, "]}");
        json_t *res =
            cs_tsandbox_req(api, "POST", CS_TSANDBOX_DATA "/composite/sobjects", body, &status);
        for (int j = 0; j < k; j++) {
            const char *id = json_string_value(json_object_get(json_array_get(res, j), "id"));
            if (status != 200 || !id || strlen(id) != 18) {
                fprintf(stderr, "bench: creating leads: HTTP %d\n", status);
                rc = -1;
                break;
            }
            memcpy(pop->p[idx[j]].lead_id, id, 18);
        }
    }
    free(body);
    return rc;
}

long bench_seed_prospects(FILE *f, const bench_pop_t *pop, int first)
{
    long n = 0;
    char key[64];
    for (long i = 0; i < pop->n; i++) {
        bench_pop_key(pop, i, key);
        fprintf(f, "%s{\"email\":\"%s\",\"firstName\":\"First%ld\",\"lastName\":\"Last%ld\"}",
                first && !n ? "" : ",", key, i, i);
        n++;
    }
    return n;
}

static int64_t prospect_id_by_email(cs_tsandbox_client_t *api, const char *email)
{
    char path[256];
    int status = 0;
    snprintf(path, sizeof(path), CS_TSANDBOX_V5 "/prospects?fields=id&email=%s", email);
    json_t *r = cs_tsandbox_req(api, "GET", path, NULL, &status);
    return status == 200 ? json_integer_value(json_object_get(
                               json_array_get(json_object_get(r, "values"), 0), "id"))
                         : -1;
}

/* The seed file's prospects get ids *next_id, *next_id + 1, ... in file order; the first and
 * the last of this population are checked against the sandbox. */
int bench_sandbox_prospect_ids(cs_tsandbox_client_t *api, bench_pop_t *pop, int64_t *next_id)
{
    long first = -1, last = -1;
    int64_t id = *next_id;
    char key[64];
    for (long i = 0; i < pop->n; i++) {
        pop->p[i].mkt_id = id++;
        if (first < 0)
            first = i;
        last = i;
    }
    *next_id = id;
    if (first < 0)
        return 0;
    bench_pop_key(pop, first, key);
    if (prospect_id_by_email(api, key) != pop->p[first].mkt_id)
        goto bad;
    bench_pop_key(pop, last, key);
    if (prospect_id_by_email(api, key) != pop->p[last].mkt_id)
        goto bad;
    return 0;
bad:
    fprintf(stderr, "bench: seeded prospect %s does not have the expected id\n", key);
    return -1;
}

typedef struct touched_s {
    FILE *f;
    const char *prefix;
    long n;
} touched_t;

static void touched_lead(void *opaque, json_t *rec)
{
    touched_t *t = opaque;
    const char *e = json_string_value(json_object_get(rec, "Email"));
    if (!e || strncmp(e, t->prefix, strlen(t->prefix)))
        return;
    if (t->f)
        fprintf(t->f, "crm %s %s\n", json_string_value(json_object_get(rec, "Id")), e);
    t->n++;
}

long bench_sandbox_touched(cs_tsandbox_client_t *api, int64_t since_ms, const char *prefix,
                           const char *path)
{
    touched_t t = {fopen(path, "w"), prefix, 0};
    char soql[256], when[40], url[512];
    time_t secs = (time_t)(since_ms / 1000); /* the sandbox keeps whole seconds */
    struct tm tm;
    int status = 0;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(soql, sizeof(soql), "SELECT Id, Email FROM Lead WHERE LastModifiedDate >= %s", when);
    soql_each(api, soql, touched_lead, &t);
    /* the marketing side: prospects updated since then, page by page */
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%%2B00:00", &tm);
    snprintf(url, sizeof(url),
             CS_TSANDBOX_V5 "/prospects?fields=id,email&limit=1000&updatedAtAfterOrEqualTo=%s",
             when);
    for (int page = 0; page < 10000; page++) {
        json_t *r = cs_tsandbox_req(api, "GET", url, NULL, &status), *v;
        const char *next;
        size_t i;
        if (status != 200 || !r)
            break;
        json_array_foreach(json_object_get(r, "values"), i, v)
        {
            const char *e = json_string_value(json_object_get(v, "email"));
            if (!e || strncmp(e, prefix, strlen(prefix)))
                continue;
            if (t.f)
                fprintf(t.f, "marketing %" JSON_INTEGER_FORMAT " %s\n",
                        json_integer_value(json_object_get(v, "id")), e);
            t.n++;
        }
        next = json_string_value(json_object_get(r, "nextPageToken"));
        if (!next)
            break;
        snprintf(url, sizeof(url), CS_TSANDBOX_V5 "/prospects?fields=id,email&nextPageToken=%s",
                 next);
    }
    if (t.f)
        fclose(t.f);
    return t.n;
}
