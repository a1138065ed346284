/* The report: what the workload was, the side-by-side table (crmsync, the raw librdkafka
 * ceiling, the incumbent's published figures, the target) and the BENCH line, last. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 1234567 -> "1,234,567" */
static const char *num(char *buf, double v)
{
    char tmp[32];
    int n, o = 0;
    if (isnan(v))
        return "n/a";
    n = snprintf(tmp, sizeof(tmp), "%.0f", fabs(v));
    if (v < 0)
        buf[o++] = '-';
    for (int i = 0; i < n; i++) {
        buf[o++] = tmp[i];
        if ((n - i - 1) % 3 == 0 && i < n - 1)
            buf[o++] = ',';
    }
    buf[o] = '\0';
    return buf;
}

static void cpu_model(char *buf, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    snprintf(buf, n, "unknown CPU");
    while (f && fgets(line, sizeof(line), f)) {
        char *c = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && c) {
            c += 2;
            c[strcspn(c, "\n")] = '\0';
            snprintf(buf, n, "%s", c);
            break;
        }
    }
    if (f)
        fclose(f);
}

static void row(const char *metric, const char *ours, const char *raw, const char *incumbent,
                const char *target, const char *status)
{
    printf("%-44s %-16s %-16s %-30s %-14s %s\n", metric, ours, raw, incumbent, target, status);
}

static const char *ok(int good)
{
    return good ? "ok" : "MISS";
}

void bench_report(const bench_opts_t *o, const bench_result_t *r)
{
    char model[128];
    const bench_mixcount_t *m = &r->mix;
    double raw_eps = r->raw.messages / r->raw.seconds;
    double raw_steady = r->raw.messages / r->raw.steady_s;

    cpu_model(model, sizeof(model));
    printf("\ncrmsync bench on %ld CPUs (%s)%s; the machine was %.0f%% busy before the run\n",
           sysconf(_SC_NPROCESSORS_ONLN), model, o->large ? ", --large" : "",
           100 * r->background_busy);
    {
        char s[8][32];
        if (o->nkafka) {
            printf("librdkafka settings of every consumer:");
            for (int k = 0; k < o->nkafka; k++)
                printf(" %s", o->kafka[k]);
            printf("\n");
        }
        printf("workload: %s events over %s prospects (%s created), %d partitions\n",
               num(s[0], (double)m->total), num(s[1], (double)r->prospects),
               num(s[2], (double)r->created), o->partitions);
        printf("  %s exact duplicates (%.0f%%), %s CREATED + %s changes, %s trigger + %s passive "
               "activities, %s CRM echoes + %s CRM edits\n",
               num(s[0], (double)m->dup), 100.0 * m->dup / (m->total ? m->total : 1),
               num(s[1], (double)m->created), num(s[2], (double)m->changed),
               num(s[3], (double)m->trigger), num(s[4], (double)m->passive),
               num(s[5], (double)m->crm_echo), num(s[6], (double)m->crm_edit));
        printf("  sync outcomes: %s deduplicated, %s ignored, %s queued, %s coalesced\n",
               num(s[0], r->dedup), num(s[1], r->ignored), num(s[2], r->queued),
               num(s[3], r->coalesced));
        printf("  writes: %s CRM records in %s CRM calls (%.2f per 200), %s marketing writes in %s "
               "calls; quiet %.1f s after start\n",
               num(s[0], (double)r->sync_crm_writes), num(s[1], (double)r->sync_crm_calls),
               r->sync_calls_per_200, num(s[2], (double)r->sync_mkt_writes),
               num(s[3], (double)r->sync_mkt_calls), r->quiet_s);
        printf(
            "  while reading: the consumer used %.2f CPU-s and waited %.2f s on API calls (%.0f%% "
            "of %.2f s); the sandbox used %.2f CPU-s; the machine was %.0f%% busy\n",
            r->sync_cpu_s, r->sync_http_s, 100 * r->sync_http_s / r->sync_s, r->sync_s,
            r->sandbox_cpu_s, 100 * r->sync_machine_busy);
        printf("  the consumer thread: %.2f s reading, %.2f s reading while a push waited, %.2f s "
               "pushing (API waits left over), %.2f s committing, %.2f s waiting for input\n",
               r->sync_phase_s[1], r->sync_phase_s[3], r->sync_phase_s[2], r->sync_phase_s[4],
               r->sync_phase_s[0]);
        printf("  bursts: %s prospects x %d events (%s written): %s CRM writes, %s calls (%ld "
               "match, %ld update, %ld create), %ld marketing writes\n",
               num(s[0], (double)r->burst_prospects), o->burst_events,
               num(s[1], (double)r->burst_events), num(s[2], (double)r->burst_crm_writes),
               num(s[3], (double)r->burst_crm_calls), r->burst_composite, r->burst_update,
               r->burst_upsert, r->burst_mkt_writes);
        printf("  latency: %s events offered at %s/s, %s acknowledgements measured after 2 s of "
               "warm-up (all: p50 %.0f ms, p99 %.0f ms); histogram buckets 5, 10, 25, 50, 100, "
               "250, 500, 750, 1000, 2500 ms...\n",
               num(s[0], (double)r->lat_events), num(s[1], r->lat_offered_eps),
               num(s[2], r->lat_count), r->lat_all_p50, r->lat_all_p99);
        printf("  restore: %s changelog records in %ld ms over %ld partitions\n",
               num(s[0], (double)r->restore_records), r->restore_ms, r->restore_lines);
        if (r->errors)
            printf("  WARNING: %d record error(s) / poison record(s): see the consumer logs\n",
                   r->errors);
    }
    printf("\n");
    row("metric", "crmsync", "raw librdkafka", "incumbent (published)", "target", "");
    row("--------------------------------------------", "----------------", "----------------",
        "------------------------------", "--------------", "----");
    {
        char s[4][32], t[64];
        row("events/s, process start to last event", num(s[0], r->sync_eps), num(s[1], raw_eps),
            "one sync cycle per 2-10 min", "", "");
        snprintf(s[0], sizeof(s[0]), "%.2f", r->ratio);
        row("  ratio to the raw consumer", s[0], "1.00", "", ">= 0.5", ok(r->ratio >= 0.5));
        row("events/s, first event to last", num(s[0], r->sync_steady_eps), num(s[1], raw_steady),
            "", "", "");
        snprintf(s[0], sizeof(s[0]), "%.2f", r->sync_cores);
        snprintf(s[1], sizeof(s[1]), "%.2f", r->raw.cpu_s / r->raw.seconds);
        row("CPU while reading (cores)", s[0], s[1], "", "", "");
        snprintf(s[0], sizeof(s[0]), "%.1f", r->sync_rss_hwm / 1048576.0);
        row("peak RSS (MB)", s[0], "", "", "", "");
        snprintf(t, sizeof(t), "sync latency p50 (ms) at %s/s", num(s[3], o->rate));
        snprintf(s[0], sizeof(s[0]), "%.0f", r->lat_p50);
        row(t, s[0], "", "120,000-600,000 (2-10 min)", "", "");
        snprintf(s[0], sizeof(s[0]), "%.0f", r->lat_p99);
        row("sync latency p99 (ms)", s[0], "", "120,000-600,000 (2-10 min)", "<= 1000",
            ok(r->lat_p99 <= 1000));
        snprintf(s[0], sizeof(s[0]), "<= %.0f", r->lat_max_le);
        row("sync latency max (ms, bucket bound)", s[0], "", "", "", "");
        snprintf(s[0], sizeof(s[0]), "%.2f", r->calls_per_batch);
        row("API calls per 200-record batch", s[0], "", "5-20", "<= 3",
            ok(r->calls_per_batch <= 3));
        {
            /* every batch sent makes at most one call of each kind: their largest count is
             * the number of batches (a lower bound when one batch used all three) */
            long nb = r->burst_composite;
            if (r->burst_update > nb)
                nb = r->burst_update;
            if (r->burst_upsert > nb)
                nb = r->burst_upsert;
            snprintf(s[0], sizeof(s[0]), "%.2f", nb ? (double)r->burst_crm_calls / (double)nb : 0);
            snprintf(s[1], sizeof(s[1]), "%.0f", nb ? (double)r->burst_crm_writes / (double)nb : 0);
            row("  API calls per batch sent, at most", s[0], "", "", "", "");
            row("  records per batch sent, average (at most)", s[1], "", "", "", "");
        }
        snprintf(s[0], sizeof(s[0]), "%.3f", r->writes_per_prospect);
        snprintf(t, sizeof(t), "CRM writes per prospect, %d-event bursts", o->burst_events);
        row(t, s[0], "", "", "<= 1.05", ok(r->writes_per_prospect <= 1.05));
        row("replay events/s, process start to last", num(s[0], r->replay_eps), num(s[1], raw_eps),
            "", ">= 200,000", ok(r->replay_eps >= 200000));
        row("replay events/s, after the restore", num(s[0], r->replay_steady_eps),
            num(s[1], raw_steady), "", "", "");
        row("replay writes", num(s[0], (double)r->replay_writes), "", "", "0",
            ok(r->replay_writes == 0));
        row("state bytes per tracked prospect", num(s[0], r->bytes_per_prospect), "", "", "<= 300",
            ok(r->bytes_per_prospect <= 300));
        snprintf(s[0], sizeof(s[0]), "%.2f", r->restore_s_per_million);
        row("restore, s per million prospects", s[0], "", "", "", "");
    }
    printf("\nBENCH events=%ld ratio_vs_raw=%.2f eps=%.0f p50_ms=%.0f p99_ms=%.0f "
           "calls_per_batch=%.2f writes_per_prospect=%.3f replay_writes=%ld replay_eps=%.0f "
           "bytes_per_prospect=%.0f restore_s_per_million=%.2f\n",
           r->events, r->ratio, r->sync_eps, r->lat_p50, r->lat_p99, r->calls_per_batch,
           r->writes_per_prospect, r->replay_writes, r->replay_eps, r->bytes_per_prospect,
           r->restore_s_per_million);
    fflush(stdout);
}
