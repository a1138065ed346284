/* sandbox_bench: how many records per second crmsync-sandbox writes through 200-record sObject
 * Collections calls, to show the sandbox is never the bottleneck of a test or benchmark.
 *
 *   crmsync-sandbox-bench [--threads N] [--seconds S] [--url http://127.0.0.1:PORT]
 *
 * Without --url it starts its own sandbox (next to this binary, or $CRMSYNC_BIN_DIR) and stops
 * it at the end. Each client thread has its own cs_http client (kept-alive connection) and
 * sends, for S seconds per phase: creates (POST composite/sobjects), updates of the records
 * it created (PATCH composite/sobjects), then upserts by external id (PATCH
 * composite/sobjects/Lead/Crmsync_Prospect_Id__c, half new keys, half existing). Prints one line
 * per phase: records/s, calls/s and call latency percentiles. */
#include "cs_http.h"
#include "cs_run.h"
#include "testutil_sandbox.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 200

typedef enum { PH_CREATE, PH_UPDATE, PH_UPSERT } phase_t;

static const char *phase_name[] = {"create", "update", "upsert"};

typedef struct worker_s {
    int idx;
    const char *url;
    cs_oauth_t *oauth;
    phase_t phase;
    int64_t until_ms;
    /* results */
    long calls, records, failures;
    int64_t *lat_us;
    size_t nlat, caplat;
    char **ids; /* created ids, for updates */
    size_t nids, capids;
} worker_t;

static void note_latency(worker_t *w, int64_t us)
{
    if (w->nlat == w->caplat) {
        w->caplat = w->caplat ? w->caplat * 2 : 4096;
        w->lat_us = realloc(w->lat_us, w->caplat * sizeof(*w->lat_us));
        if (!w->lat_us) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    w->lat_us[w->nlat++] = us;
}

/* Builds the body of the next call into buf (reused); returns its length. */
static size_t build_body(worker_t *w, long call, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "{\"allOrNone\":false,\"records\":[");
    for (int i = 0; i < BATCH; i++) {
        const char *sep = i ? "," : "";
        switch (w->phase) {
        case PH_CREATE:
            k += (size_t)snprintf(buf + k, cap - k,
                                  "%s{\"attributes\":{\"type\":\"Lead\"},\"LastName\":\"Bench%d\","
                                  "\"FirstName\":\"W%d\",\"Company\":\"Bench Inc\",\"Email\":"
                                  "\"b%d.%ld.%d@bench.example\",\"Title\":\"Engineer\"}",
                                  sep, i, w->idx, w->idx, call, i);
            break;
        case PH_UPDATE: {
            const char *id = w->ids[((size_t)call * BATCH + (size_t)i) % w->nids];
            k += (size_t)snprintf(buf + k, cap - k,
                                  "%s{\"attributes\":{\"type\":\"Lead\"},\"Id\":\"%s\","
                                  "\"Title\":\"Title %ld\",\"HasOptedOutOfEmail\":%s}",
                                  sep, id, call, (call + i) % 2 ? "true" : "false");
            break;
        }
        case PH_UPSERT: {
            /* keys cycle through a space twice the size of one second of calls: half the
             * records create, half update */
            long key = (call * BATCH + i) % 40000;
            k += (size_t)snprintf(buf + k, cap - k,
                                  "%s{\"attributes\":{\"type\":\"Lead\"},"
                                  "\"Crmsync_Prospect_Id__c\":\"W%d-%ld\",\"LastName\":\"Up\","
                                  "\"Company\":\"Bench Inc\",\"Title\":\"T%ld\"}",
                                  sep, w->idx, key, call);
            break;
        }
        }
    }
    k += (size_t)snprintf(buf + k, cap - k, "]}");
    return k;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    char err[256], url[256];
    cs_http_opts_t o = {0};
    o.get_token = cs_oauth_get_token;
    o.token_opaque = w->oauth;
    o.name = "bench";
    cs_http_t *h = cs_http_new(&o, err, sizeof(err));
    if (!h) {
        fprintf(stderr, "cs_http_new: %s\n", err);
        return NULL;
    }
    const char *path = w->phase == PH_CREATE   ? "/services/data/v60.0/composite/sobjects"
                       : w->phase == PH_UPDATE ? "/services/data/v60.0/composite/sobjects"
                                               : "/services/data/v60.0/composite/sobjects/Lead/"
                                                 "Crmsync_Prospect_Id__c";
    const char *method = w->phase == PH_CREATE ? "POST" : "PATCH";
    snprintf(url, sizeof(url), "%s%s", w->url, path);
    size_t cap = 256 * BATCH + 64;
    char *body = malloc(cap);
    if (!body) {
        cs_http_destroy(h);
        return NULL;
    }
    for (long call = 0; cs_now_ms() < w->until_ms; call++) {
        size_t len = build_body(w, call, body, cap);
        cs_http_result_t res;
        int64_t t0 = cs_now_us();
        int rc = cs_http_request(h, method, url, NULL, body, len, &res);
        note_latency(w, cs_now_us() - t0);
        w->calls++;
        if (rc != 0) {
            w->failures++;
            fprintf(stderr, "%s\n", res.errstr);
            continue;
        }
        json_t *arr = cs_http_result_json(&res);
        size_t i;
        json_t *r;
        json_array_foreach(arr, i, r)
        {
            if (!json_is_true(json_object_get(r, "success"))) {
                w->failures++;
                continue;
            }
            w->records++;
            if (w->phase == PH_CREATE) {
                if (w->nids == w->capids) {
                    w->capids = w->capids ? w->capids * 2 : 4096;
                    w->ids = realloc(w->ids, w->capids * sizeof(*w->ids));
                    if (!w->ids) {
                        fprintf(stderr, "out of memory\n");
                        exit(1);
                    }
                }
                w->ids[w->nids++] = strdup(json_string_value(json_object_get(r, "id")));
            }
        }
    }
    free(body);
    cs_http_destroy(h);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void run_phase(phase_t ph, worker_t *w, int threads, int seconds)
{
    pthread_t th[64];
    int64_t t0 = cs_now_ms();
    for (int i = 0; i < threads; i++) {
        w[i].phase = ph;
        w[i].until_ms = t0 + seconds * 1000LL;
        w[i].calls = w[i].records = w[i].failures = 0;
        w[i].nlat = 0;
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(cs_now_ms() - t0) / 1000.0;
    long calls = 0, records = 0, failures = 0;
    size_t nlat = 0;
    for (int i = 0; i < threads; i++) {
        calls += w[i].calls;
        records += w[i].records;
        failures += w[i].failures;
        nlat += w[i].nlat;
    }
    int64_t *all = malloc((nlat ? nlat : 1) * sizeof(*all));
    size_t k = 0;
    for (int i = 0; i < threads; i++)
        for (size_t j = 0; j < w[i].nlat; j++)
            all[k++] = w[i].lat_us[j];
    qsort(all, nlat, sizeof(*all), cmp64);
    double p50 = nlat ? (double)all[nlat / 2] / 1000.0 : 0;
    double p99 = nlat ? (double)all[(nlat * 99) / 100] / 1000.0 : 0;
    double max = nlat ? (double)all[nlat - 1] / 1000.0 : 0;
    printf("%-7s %2d threads %5.1fs  %9.0f records/s  %6.0f calls/s  p50 %5.2f ms  p99 %5.2f ms"
           "  max %6.1f ms  failures %ld\n",
           phase_name[ph], threads, secs, (double)records / secs, (double)calls / secs, p50, p99,
           max, failures);
    fflush(stdout);
    free(all);
}

int main(int argc, char **argv)
{
    int threads = 2, seconds = 3;
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--url") && i + 1 < argc)
            url = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--url URL]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || seconds < 1) {
        fprintf(stderr, "--threads 1..64, --seconds >= 1\n");
        return 2;
    }
    cs_tsandbox_t sb = {.pid = -1, .out_fd = -1};
    char err[512];
    if (!url) {
        const char *args[] = {"--log.level", "warn", NULL};
        if (cs_tsandbox_start(&sb, args, err, sizeof(err)) != 0) {
            fprintf(stderr, "cannot start the sandbox: %s\n", err);
            return 1;
        }
        url = sb.url;
    } else {
        snprintf(sb.url, sizeof(sb.url), "%s", url);
    }
    int st;
    json_t *r = cs_tsandbox_admin(&sb, "POST", "reset", NULL, &st);
    json_decref(r);
    if (st != 200) {
        fprintf(stderr, "POST %s/sandbox/reset failed (%d)\n", url, st);
        cs_tsandbox_stop(&sb);
        return 1;
    }
    cs_oauth_t *oauth = cs_tsandbox_oauth(&sb);
    worker_t w[64];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < threads; i++) {
        w[i].idx = i;
        w[i].url = url;
        w[i].oauth = oauth;
    }
    printf("crmsync-sandbox %s, %d-record collection calls\n", url, BATCH);
    run_phase(PH_CREATE, w, threads, seconds);
    run_phase(PH_UPDATE, w, threads, seconds);
    run_phase(PH_UPSERT, w, threads, seconds);
    for (int i = 0; i < threads; i++) {
        for (size_t j = 0; j < w[i].nids; j++)
            free(w[i].ids[j]);
        free(w[i].ids);
        free(w[i].lat_us);
    }
    cs_oauth_destroy(oauth);
    r = cs_tsandbox_admin(&sb, "POST", "reset", NULL, &st); /* free the sandbox's memory */
    json_decref(r);
    if (sb.pid > 0)
        cs_tsandbox_stop(&sb);
    return 0;
}
