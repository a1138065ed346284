/* crmsync-bench: the end-to-end benchmark behind `make bench` (tools/bench.sh).
 *
 * Against the real local broker and a crmsync-sandbox it starts itself:
 *   1. writes a workload (N events over M prospects, duplicates and a type mix) to fresh
 *      input topics;
 *   2. measures the ceiling: a plain librdkafka consumer counting the same topics;
 *   3. measures crmsync-sync-consumer on the same topics, the sandbox as the sink (events/s,
 *      CPU, peak RSS, ratio to the ceiling);
 *   5. sends 100-event bursts to fresh and known prospects: API calls per 200-record batch,
 *      CRM writes per prospect;
 *   4. offers a fixed load (5,000 events/s) to a fresh consumer on fresh topics: source event
 *      time to CRM acknowledgement, from the consumer's latency histogram;
 *   6. replays everything with a new consumer group (state from the changelog): events/s and
 *      writes (must be none);
 *   7. state bytes per tracked prospect, restore time per million prospects.
 * then prints the table and the BENCH line (the last line). Every child process is stopped and
 * the run's topics are deleted at the end; configs and logs stay in the work directory. */
#include "bench.h"

#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_log.h"
#include "cs_run.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EDITABLE_SHARE 0.1 /* of the prospects with a lead: salespeople edit them */

static const char *const topic_keys[7] = {"topic.prospect", "topic.activity", "topic.crm",
                                          "topic.control",  "topic.state",    "topic.errors",
                                          "topic.cursors"};
static const char *const topic_kinds[7] = {"prospect-changes", "activities", "crm-changes",
                                           "control",          "sync-state", "sync-errors",
                                           "producer-cursors"};
enum { SET_MAIN, SET_LAT, NSETS };

typedef struct run_s {
    bench_opts_t o;
    cs_conf_t *kconf;
    bench_load_t *ld;
    cs_tsandbox_t sb;
    int sb_up;
    cs_tsandbox_client_t api;
    int api_up;
    bench_pop_t main, burst, lat;
    char topics[NSETS][7][128];
    int sets_created[NSETS];
    int64_t mkt[2];
    char crm[2][19], integ[19];
    char users_map[128];
    bench_consumer_t c;
    int c_up;
    bench_result_t r;
} run_t;

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("== ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

/* ------------------------------------------------------------------ options */

static const char usage[] =
    "crmsync-bench [options]\n"
    "\n"
    "End-to-end benchmark of crmsync-sync-consumer against the local broker and a sandbox it\n"
    "starts (docs/PERFORMANCE.md). Programs are taken from this binary's directory.\n"
    "\n"
    "  --events N            throughput workload size (default 1000000)\n"
    "  --prospects M         prospects it is spread over (default 50000)\n"
    "  --dup R               share of exact duplicates (default 0.2)\n"
    "  --mix P:A:C           weights of ProspectChange, Activity, CrmChange (default 20:70:10)\n"
    "  --passive R           share of activities that are not triggers (default 0.75)\n"
    "  --session L           mean events per prospect session (default 8)\n"
    "  --leads R             share of prospects whose lead exists beforehand (default 0.5)\n"
    "  --crm-edits R         share of CRM events that are a person's edit (default 0.02)\n"
    "  --partitions P        partitions of each input topic (default 6)\n"
    "  --rate R              latency phase: offered events/s (default 5000)\n"
    "  --seconds S           latency phase: measured seconds after 2 s of warm-up (default 20)\n"
    "  --burst-prospects B   burst phase: prospects, a multiple of 3 (default 1200)\n"
    "  --burst-events E      burst phase: events per prospect (default 100)\n"
    "  --large               4,000,000 events over 1,000,000 prospects\n"
    "  --seed S              random seed (default 1)\n"
    "  --bootstrap H:P       broker (default $CRMSYNC_BOOTSTRAP or 127.0.0.1:19092)\n"
    "  --kafka KEY=VALUE     a librdkafka setting for the raw and the sync consumers alike\n"
    "                        (e.g. queued.min.messages=1000000); repeatable\n"
    "  --keep-topics         do not delete the run's topics\n"
    "  --workdir DIR         configs and logs (default /tmp/crmsync-bench-<pid>)\n";

static int parse_mix(const char *s, int mix[3])
{
    return sscanf(s, "%d:%d:%d", &mix[0], &mix[1], &mix[2]) == 3 && mix[0] >= 0 && mix[1] >= 0 &&
                   mix[2] >= 0 && mix[0] + mix[1] > 0
               ? 0
               : -1;
}

static int parse_args(bench_opts_t *o, int argc, char **argv)
{
    const char *env = getenv("CRMSYNC_BOOTSTRAP");
    long events = -1, prospects = -1;
    memset(o, 0, sizeof(*o));
    o->dup = 0.2;
    o->mix[0] = 20, o->mix[1] = 70, o->mix[2] = 10;
    o->passive = 0.75;
    o->session = 8;
    o->leads = 0.5;
    o->crm_edits = 0.02;
    o->partitions = 6;
    o->rate = 5000;
    o->lat_seconds = 20;
    o->burst_prospects = 1200;
    o->burst_events = 100;
    o->seed = 1;
    o->bootstrap = env && *env ? env : CS_KAFKA_DEFAULT_BOOTSTRAP;
    snprintf(o->workdir, sizeof(o->workdir), "/tmp/crmsync-bench-%d", (int)getpid());
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        } else if (!strcmp(a, "--large")) {
            o->large = 1;
            used = 0;
        } else if (!strcmp(a, "--keep-topics")) {
            o->keep_topics = 1;
            used = 0;
        } else if (!v) {
            goto bad;
        } else if (!strcmp(a, "--events")) {
            events = atol(v);
        } else if (!strcmp(a, "--prospects")) {
            prospects = atol(v);
        } else if (!strcmp(a, "--dup")) {
            o->dup = atof(v);
        } else if (!strcmp(a, "--mix")) {
            if (parse_mix(v, o->mix))
                goto bad;
        } else if (!strcmp(a, "--passive")) {
            o->passive = atof(v);
        } else if (!strcmp(a, "--session")) {
            o->session = atof(v);
        } else if (!strcmp(a, "--leads")) {
            o->leads = atof(v);
        } else if (!strcmp(a, "--crm-edits")) {
            o->crm_edits = atof(v);
        } else if (!strcmp(a, "--partitions")) {
            o->partitions = atoi(v);
        } else if (!strcmp(a, "--rate")) {
            o->rate = atoi(v);
        } else if (!strcmp(a, "--seconds")) {
            o->lat_seconds = atoi(v);
        } else if (!strcmp(a, "--burst-prospects")) {
            o->burst_prospects = atoi(v);
        } else if (!strcmp(a, "--burst-events")) {
            o->burst_events = atoi(v);
        } else if (!strcmp(a, "--seed")) {
            o->seed = strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--bootstrap")) {
            o->bootstrap = v;
        } else if (!strcmp(a, "--kafka")) {
            if (o->nkafka >= 16 || !strchr(v, '='))
                goto bad;
            o->kafka[o->nkafka++] = v;
        } else if (!strcmp(a, "--workdir")) {
            snprintf(o->workdir, sizeof(o->workdir), "%s", v);
        } else {
            goto bad;
        }
        i += used;
        continue;
    bad:
        fprintf(stderr, "crmsync-bench: bad option %s (see --help)\n", a);
        return -1;
    }
    o->events = events > 0 ? events : o->large ? 4000000 : 1000000;
    o->prospects = prospects > 0 ? prospects : o->large ? 1000000 : 50000;
    o->burst_prospects -= o->burst_prospects % 3;
    if (o->prospects > o->events || o->dup < 0 || o->dup >= 1 || o->passive < 0 || o->passive > 1 ||
        o->session < 1 || o->leads < 0 || o->leads > 1 || o->crm_edits < 0 || o->crm_edits > 1 ||
        o->partitions < 1 || o->rate < 1 || o->lat_seconds < 1 || o->burst_prospects < 3 ||
        o->burst_events < 1) {
        fprintf(stderr, "crmsync-bench: inconsistent options (prospects <= events, shares in "
                        "[0, 1], dup < 1, ...)\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ topics and configs */

static int create_topics(run_t *run, int set, const char *tag)
{
    cs_topic_spec_t specs[7];
    static const char *const compact[] = {"cleanup.policy", "compact", NULL};
    char err[512];
    for (int t = 0; t < 7; t++) {
        snprintf(run->topics[set][t], sizeof(run->topics[set][t]), "crmsync-bench.%d.%s.%s",
                 (int)getpid(), tag, topic_kinds[t]);
        specs[t].name = run->topics[set][t];
        specs[t].partitions = (t == 3 || t == 6) ? 1 : run->o.partitions;
        specs[t].replication_factor = 1;
        specs[t].configs = t == 4 || t == 6 ? compact : NULL;
    }
    if (cs_kafka_ensure_topics(run->kconf, specs, 7, 30000, err, sizeof(err))) {
        fprintf(stderr, "bench: creating topics: %s\n", err);
        return -1;
    }
    run->sets_created[set] = 1;
    return 0;
}

static void delete_topics(run_t *run)
{
    char errstr[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(run->kconf, errstr, sizeof(errstr));
    rd_kafka_t *rk = kc ? rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr)) : NULL;
    rd_kafka_DeleteTopic_t *del[NSETS * 7];
    rd_kafka_queue_t *q;
    size_t n = 0;
    if (!rk) {
        if (kc)
            rd_kafka_conf_destroy(kc);
        fprintf(stderr, "bench: cannot delete the topics: %s\n", errstr);
        return;
    }
    for (int s = 0; s < NSETS; s++)
        for (int t = 0; s < NSETS && run->sets_created[s] && t < 7; t++)
            del[n++] = rd_kafka_DeleteTopic_new(run->topics[s][t]);
    q = rd_kafka_queue_new(rk);
    if (n) {
        rd_kafka_DeleteTopics(rk, del, n, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        if (!ev || rd_kafka_event_error(ev))
            fprintf(stderr, "bench: deleting the topics: %s\n",
                    ev ? rd_kafka_event_error_string(ev) : "timed out");
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_DeleteTopic_destroy_array(del, n);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static int write_conf(run_t *run, int set, const char *group, char *path, size_t n)
{
    FILE *f;
    snprintf(path, n, "%s/%s.conf", run->o.workdir, group);
    if (!(f = fopen(path, "w"))) {
        fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "# written by crmsync-bench\nkafka.bootstrap.servers=%s\n", run->o.bootstrap);
    for (int k = 0; k < run->o.nkafka; k++)
        fprintf(f, "kafka.%s\n", run->o.kafka[k]);
    for (int t = 0; t < 7; t++)
        fprintf(f, "%s=%s\n", topic_keys[t], run->topics[set][t]);
    fprintf(f,
            "topics.partitions=%d\ngroup.id=%s\ncrm.login_url=%s\nmkt.base_url=%s\n"
            "crm.client_id=%s\ncrm.client_secret=%s\nmkt.business_unit_id=%s\nhttp.port=0\n"
            "users.map=%s\n",
            run->o.partitions, group, run->sb.url, run->sb.url, CS_TSANDBOX_CLIENT_ID,
            CS_TSANDBOX_CLIENT_SECRET, CS_TSANDBOX_BU_ID, run->users_map);
    return fclose(f) ? -1 : 0;
}

static int start_consumer(run_t *run, int set, const char *group)
{
    char conf[512], log[512];
    if (write_conf(run, set, group, conf, sizeof(conf)))
        return -1;
    snprintf(log, sizeof(log), "%s/%s.log", run->o.workdir, group);
    if (bench_consumer_start(&run->c, conf, log))
        return -1;
    run->c_up = 1;
    return 0;
}

static int stop_consumer(run_t *run)
{
    int rc = 0;
    if (run->c_up) {
        run->c_up = 0;
        rc = bench_consumer_stop(&run->c);
        if (rc)
            fprintf(stderr, "bench: the consumer exited with status %d (log %s)\n", rc,
                    run->c.proc.log);
    }
    return rc;
}

static void count_errors(run_t *run)
{
    double e = bench_metric(&run->c, "crmsync_record_errors_total", NULL);
    double p = bench_metric(&run->c, "crmsync_poison_total", NULL);
    run->r.errors += (int)((e > 0 ? e : 0) + (p > 0 ? p : 0));
}

/* ------------------------------------------------------------------ set-up */

static int setup(run_t *run)
{
    char path[512], err[512];
    FILE *f;
    long seeded;
    int64_t next_id = 1001; /* the sandbox's first prospect id */
    bench_opts_t *o = &run->o;
    long nlat = (long)o->rate * (o->lat_seconds + 2) / 20;
    int64_t t0 = cs_now_us();

    {
        /* What else the machine is doing: the figures below share it. */
        uint64_t b0, j0, b1, j1;
        bench_machine_jiffies(&b0, &j0);
        cs_run_sleep_ms(1000);
        bench_machine_jiffies(&b1, &j1);
        run->r.background_busy = j1 > j0 ? (double)(b1 - b0) / (double)(j1 - j0) : 0;
    }
    if (mkdir(o->workdir, 0755) && errno != EEXIST) {
        fprintf(stderr, "bench: %s: %s\n", o->workdir, strerror(errno));
        return -1;
    }
    if (!(run->kconf = cs_conf_new("crmsync-bench", "crmsync-bench", NULL)) ||
        cs_conf_set(run->kconf, "kafka.bootstrap.servers", o->bootstrap, err, sizeof(err))) {
        fprintf(stderr, "bench: %s\n", run->kconf ? err : "out of memory");
        return -1;
    }
    for (int k = 0; k < o->nkafka; k++) {
        char key[128];
        const char *eq = strchr(o->kafka[k], '=');
        snprintf(key, sizeof(key), "kafka.%.*s", (int)(eq - o->kafka[k]), o->kafka[k]);
        if (cs_conf_set(run->kconf, key, eq + 1, err, sizeof(err))) {
            fprintf(stderr, "bench: --kafka %s: %s\n", o->kafka[k], err);
            return -1;
        }
    }
    if (!(run->ld = bench_load_new(o, run->kconf, err, sizeof(err)))) {
        fprintf(stderr, "bench: %s\n", err);
        return -1;
    }
    if (nlat < 1000)
        nlat = 1000;
    if (bench_pop_init(run->ld, &run->main, "p", o->prospects, 10000000, o->leads,
                       EDITABLE_SHARE) ||
        bench_pop_init(run->ld, &run->burst, "b", o->burst_prospects / 3 * 2, 20000000, 0, 0) ||
        bench_pop_init(run->ld, &run->lat, "l", nlat, 30000000, o->leads, EDITABLE_SHARE)) {
        fprintf(stderr, "bench: out of memory\n");
        return -1;
    }
    for (long i = 0; i < run->burst.n; i += 2) /* burst prospects: every other one has a lead */
        run->burst.p[i].flags |= BP_LEAD;

    /* Every prospect exists on the marketing side (the sandbox loads them at start), so every
     * push to marketing is a real write. */
    snprintf(path, sizeof(path), "%s/sandbox-seed.json", o->workdir);
    if (!(f = fopen(path, "w"))) {
        fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("{\"prospects\":[", f);
    seeded = bench_seed_prospects(f, &run->main, 1);
    seeded += bench_seed_prospects(f, &run->burst, seeded == 0);
    seeded += bench_seed_prospects(f, &run->lat, seeded == 0);
    fputs("]}\n", f);
    if (fclose(f))
        return -1;
    {
        const char *args[] = {"--seed.file",
                              path,
                              "--crm.daily_limit",
                              "2000000000",
                              "--marketing.daily_limit",
                              "2000000000",
                              "--log.level",
                              "warn",
                              NULL};
        if (cs_tsandbox_start(&run->sb, args, err, sizeof(err))) {
            fprintf(stderr, "bench: sandbox: %s\n", err);
            return -1;
        }
        run->sb_up = 1;
    }
    if (cs_tsandbox_client_init(&run->api, &run->sb)) {
        fprintf(stderr, "bench: no token from the sandbox\n");
        return -1;
    }
    run->api_up = 1;
    if (bench_sandbox_users(&run->api, run->mkt, run->crm, run->integ) ||
        bench_sandbox_prospect_ids(&run->api, &run->main, &next_id) ||
        bench_sandbox_prospect_ids(&run->api, &run->burst, &next_id) ||
        bench_sandbox_prospect_ids(&run->api, &run->lat, &next_id))
        return -1;
    bench_load_set_users(run->ld, run->mkt, run->crm, run->integ);
    snprintf(run->users_map, sizeof(run->users_map), "%" PRId64 ":%s,%" PRId64 ":%s", run->mkt[0],
             run->crm[0], run->mkt[1], run->crm[1]);
    if (bench_sandbox_leads(&run->api, &run->main, run->crm) ||
        bench_sandbox_leads(&run->api, &run->burst, run->crm) ||
        bench_sandbox_leads(&run->api, &run->lat, run->crm))
        return -1;
    if (create_topics(run, SET_MAIN, "main") || create_topics(run, SET_LAT, "lat"))
        return -1;
    progress("set-up: sandbox %s with %ld prospects and the pre-existing leads, topics "
             "crmsync-bench.%d.*, work directory %s (%.1f s)",
             run->sb.url, seeded, (int)getpid(), o->workdir, secs(cs_now_us() - t0));
    return 0;
}

/* ------------------------------------------------------------------ phases */

static const char *const *main_inputs(run_t *run, const char *buf[3])
{
    for (int k = 0; k < 3; k++)
        buf[k] = run->topics[SET_MAIN][k];
    return buf;
}

/* 1. the workload */
static int phase_generate(run_t *run)
{
    const char *in[3];
    int64_t t0 = cs_now_us();
    bench_load_set_topics(run->ld, main_inputs(run, in));
    if (bench_load_bulk(run->ld, &run->main, run->o.events, &run->r.mix))
        return -1;
    run->r.gen_s = secs(cs_now_us() - t0);
    run->r.events = run->r.mix.total;
    run->r.prospects = run->main.n;
    run->r.created = run->main.ncreated;
    progress("1. workload: %ld events over %ld prospects (%ld created) written in %.1f s",
             run->r.events, run->r.prospects, run->r.created, run->r.gen_s);
    return 0;
}

/* 2. the ceiling */
static int phase_raw(run_t *run)
{
    const char *in[3];
    char group[128];
    snprintf(group, sizeof(group), "crmsync-bench.%d.raw", (int)getpid());
    if (bench_raw_run(run->kconf, main_inputs(run, in), group, run->r.events, &run->r.raw))
        return -1;
    progress("2. raw librdkafka consumer: %ld messages in %.2f s: %.0f events/s",
             run->r.raw.messages, run->r.raw.seconds, run->r.raw.messages / run->r.raw.seconds);
    return 0;
}

/* 3. the sync consumer over the same topics */
static int phase_sync(run_t *run)
{
    bench_result_t *r = &run->r;
    bench_sbstats_t s0, s1;
    char group[128];
    int64_t t_first, t_done, t_push;
    uint64_t b0, j0, b1, j1;
    double sb_cpu0;
    snprintf(group, sizeof(group), "crmsync-bench.%d.sync", (int)getpid());
    if (bench_sandbox_stats(&run->sb, &s0))
        return -1;
    sb_cpu0 = bench_proc_cpu_s(run->sb.pid);
    bench_machine_jiffies(&b0, &j0);
    if (start_consumer(run, SET_MAIN, group) ||
        bench_wait_consumed(&run->c, (double)r->events, 20, 60, &t_first, &t_done))
        return -1;
    r->sync_cpu_s = bench_proc_cpu_s(run->c.proc.pid);
    r->sync_http_s = bench_metric(&run->c, "crmsync_http_request_duration_seconds_sum", NULL);
    {
        static const char *const phases[5] = {"phase=\"wait\"", "phase=\"read\"", "phase=\"push\"",
                                              "phase=\"read_during_push\"", "phase=\"commit\""};
        for (int i = 0; i < 5; i++)
            r->sync_phase_s[i] =
                bench_metric(&run->c, "crmsync_loop_time_us_total", phases[i]) / 1e6;
    }
    bench_machine_jiffies(&b1, &j1);
    r->sandbox_cpu_s = bench_proc_cpu_s(run->sb.pid) - sb_cpu0;
    r->sync_machine_busy = j1 > j0 ? (double)(b1 - b0) / (double)(j1 - j0) : 0;
    r->sync_s = secs(t_done - run->c.t_start_us);
    r->sync_steady_s = secs(t_done - t_first);
    r->sync_eps = r->events / r->sync_s;
    r->sync_steady_eps = r->events / r->sync_steady_s;
    r->ratio = r->sync_eps / (r->raw.messages / r->raw.seconds);
    r->sync_cores = r->sync_cpu_s / r->sync_s;
    if (bench_wait_quiet(&run->c, 1500, 600, &t_push) || bench_sandbox_stats(&run->sb, &s1))
        return -1;
    r->quiet_s = secs(t_push - run->c.t_start_us);
    r->sync_crm_writes = (s1.crm_created + s1.crm_updated) - (s0.crm_created + s0.crm_updated);
    r->sync_mkt_writes = (s1.mkt_created + s1.mkt_updated) - (s0.mkt_created + s0.mkt_updated);
    r->sync_crm_calls = s1.crm_calls - s0.crm_calls;
    r->sync_mkt_calls = s1.mkt_calls - s0.mkt_calls;
    r->sync_calls_per_200 =
        r->sync_crm_writes ? 200.0 * (double)r->sync_crm_calls / (double)r->sync_crm_writes : 0;
    r->dedup = bench_metric(&run->c, "crmsync_events_total", "outcome=\"deduplicated\"");
    r->ignored = bench_metric(&run->c, "crmsync_events_total", "outcome=\"ignored\"");
    r->queued = bench_metric(&run->c, "crmsync_events_total", "outcome=\"queued\"");
    r->coalesced = bench_metric(&run->c, "crmsync_events_total", "outcome=\"coalesced\"");
    progress("3. sync consumer: %ld events in %.2f s: %.0f events/s (%.2f of raw), %.2f cores; "
             "quiet after %.1f s: %ld CRM and %ld marketing writes",
             r->events, r->sync_s, r->sync_eps, r->ratio, r->sync_cores, r->quiet_s,
             r->sync_crm_writes, r->sync_mkt_writes);
    return 0;
}

/* 5. 100-event bursts on the running consumer: a third known prospects, a third new ones
 * whose lead exists (matched), a third new ones without (created), interleaved. */
static int phase_bursts(run_t *run)
{
    bench_result_t *r = &run->r;
    bench_sbstats_t s0, s1;
    const char *in[3];
    long before = r->events;
    bench_load_set_topics(run->ld, main_inputs(run, in));
    if (bench_sandbox_stats(&run->sb, &s0))
        return -1;
    for (long k = 0; k < run->o.burst_prospects; k++) {
        long j = k / 3;
        int rc;
        switch (k % 3) {
        case 0:
            rc = bench_load_burst(run->ld, &run->main, run->main.perm[j % run->main.ncreated],
                                  run->o.burst_events, &r->burst_mix);
            break;
        case 1:
            rc = bench_load_burst(run->ld, &run->burst, 2 * j, run->o.burst_events, &r->burst_mix);
            break;
        default:
            rc = bench_load_burst(run->ld, &run->burst, 2 * j + 1, run->o.burst_events,
                                  &r->burst_mix);
        }
        if (rc)
            return -1;
    }
    if (bench_load_flush(run->ld))
        return -1;
    r->burst_events = r->burst_mix.total;
    r->burst_prospects = run->o.burst_prospects;
    if (bench_wait_consumed(&run->c, (double)(before + r->burst_events), 50, 60, NULL, NULL) ||
        bench_wait_quiet(&run->c, 1500, 300, NULL) || bench_sandbox_stats(&run->sb, &s1))
        return -1;
    r->burst_crm_writes = (s1.crm_created + s1.crm_updated) - (s0.crm_created + s0.crm_updated);
    r->burst_mkt_writes = (s1.mkt_created + s1.mkt_updated) - (s0.mkt_created + s0.mkt_updated);
    r->burst_crm_calls = s1.crm_calls - s0.crm_calls;
    r->burst_composite = s1.crm_composite - s0.crm_composite;
    r->burst_update = s1.crm_update_calls - s0.crm_update_calls;
    r->burst_upsert = s1.crm_upsert_calls - s0.crm_upsert_calls;
    r->writes_per_prospect = (double)r->burst_crm_writes / (double)r->burst_prospects;
    r->calls_per_batch =
        r->burst_crm_writes ? 200.0 * (double)r->burst_crm_calls / (double)r->burst_crm_writes : 0;
    /* state size, now that every prospect of the run is tracked */
    r->state_bytes = bench_metric(&run->c, "crmsync_state_bytes", NULL);
    r->state_prospects = bench_metric(&run->c, "crmsync_state_prospects", NULL);
    r->bytes_per_prospect = r->state_prospects > 0 ? r->state_bytes / r->state_prospects : 0;
    r->sync_rss_hwm = bench_proc_hwm(run->c.proc.pid);
    count_errors(run);
    progress("5. bursts: %ld prospects x %d events: %ld CRM writes in %ld calls (%ld match, %ld "
             "update, %ld create); state %.0f bytes for %.0f prospects",
             r->burst_prospects, run->o.burst_events, r->burst_crm_writes, r->burst_crm_calls,
             r->burst_composite, r->burst_update, r->burst_upsert, r->state_bytes,
             r->state_prospects);
    return stop_consumer(run);
}

typedef struct warm_s {
    run_t *run;
    bench_hist_t base;
    int taken;
} warm_t;

static void warm_tick(void *opaque, int64_t elapsed_ms)
{
    warm_t *w = opaque;
    if (!w->taken && elapsed_ms >= 2000) {
        if (!bench_consumer_scrape(&w->run->c) &&
            !bench_hist_read(&w->run->c, "crmsync_sync_latency_ms", &w->base))
            w->taken = 1;
    }
}

/* 4. latency at a fixed offered load, fresh topics and consumer */
static int phase_latency(run_t *run)
{
    bench_result_t *r = &run->r;
    const char *in[3];
    char group[128];
    bench_hist_t h;
    warm_t warm;
    int64_t t0;
    memset(&warm, 0, sizeof(warm));
    warm.run = run;
    for (int k = 0; k < 3; k++)
        in[k] = run->topics[SET_LAT][k];
    bench_load_set_topics(run->ld, in);
    snprintf(group, sizeof(group), "crmsync-bench.%d.latency", (int)getpid());
    if (start_consumer(run, SET_LAT, group))
        return -1;
    /* offer the load once the consumer owns its partitions */
    for (int i = 0; i < 600; i++) {
        long recs, ms;
        if (bench_restore_lines(run->c.proc.log, &recs, &ms) >= run->o.partitions)
            break;
        cs_run_sleep_ms(50);
    }
    t0 = cs_now_us();
    if (bench_load_paced(run->ld, &run->lat, run->o.rate, 2.0 + run->o.lat_seconds, warm_tick,
                         &warm, &r->lat_mix))
        return -1;
    r->lat_events = r->lat_mix.total;
    r->lat_offered_eps = r->lat_events / secs(cs_now_us() - t0);
    if (bench_wait_consumed(&run->c, (double)r->lat_events, 50, 60, NULL, NULL) ||
        bench_wait_quiet(&run->c, 1500, 120, NULL) ||
        bench_hist_read(&run->c, "crmsync_sync_latency_ms", &h))
        return -1;
    count_errors(run);
    r->lat_p50 = bench_hist_quantile(&h, warm.taken ? &warm.base : NULL, 0.5);
    r->lat_p99 = bench_hist_quantile(&h, warm.taken ? &warm.base : NULL, 0.99);
    r->lat_max_le = bench_hist_max_le(&h, warm.taken ? &warm.base : NULL);
    r->lat_count = bench_hist_count(&h, warm.taken ? &warm.base : NULL);
    r->lat_all_p50 = bench_hist_quantile(&h, NULL, 0.5);
    r->lat_all_p99 = bench_hist_quantile(&h, NULL, 0.99);
    progress("4. latency: %ld events offered at %.0f/s: %.0f CRM acknowledgements after warm-up, "
             "p50 %.0f ms, p99 %.0f ms, max <= %.0f ms",
             r->lat_events, r->lat_offered_eps, r->lat_count, r->lat_p50, r->lat_p99,
             r->lat_max_le);
    return stop_consumer(run);
}

/* 6. replay everything with a new group; 7. restore time of the changelog */
static int phase_replay(run_t *run)
{
    bench_result_t *r = &run->r;
    bench_sbstats_t s0, s1;
    char group[128];
    int64_t t_first, t_done, wall0 = cs_wall_ms();
    snprintf(group, sizeof(group), "crmsync-bench.%d.replay", (int)getpid());
    r->replay_events = r->events + r->burst_events;
    if (bench_sandbox_stats(&run->sb, &s0) || start_consumer(run, SET_MAIN, group) ||
        bench_wait_consumed(&run->c, (double)r->replay_events, 20, 120, &t_first, &t_done))
        return -1;
    r->replay_cpu_s = bench_proc_cpu_s(run->c.proc.pid);
    r->replay_s = secs(t_done - run->c.t_start_us);
    r->replay_steady_s = secs(t_done - t_first);
    r->replay_eps = r->replay_events / r->replay_s;
    r->replay_steady_eps = r->replay_events / r->replay_steady_s;
    /* a push would come within the linger (250 ms): wait as for the other phases */
    if (bench_wait_quiet(&run->c, 2000, 120, NULL) || bench_sandbox_stats(&run->sb, &s1))
        return -1;
    r->replay_writes = (s1.crm_created + s1.crm_updated + s1.mkt_created + s1.mkt_updated) -
                       (s0.crm_created + s0.crm_updated + s0.mkt_created + s0.mkt_updated);
    if (r->replay_writes) {
        /* name them, for whoever investigates (the sandbox keeps whole seconds: the list may
         * hold records written in the second before the replay started) */
        char path[512];
        snprintf(path, sizeof(path), "%s/replay-writes.txt", run->o.workdir);
        bench_sandbox_touched(&run->api, wall0, "", path);
        fprintf(stderr,
                "bench: the replay wrote %ld record(s) (the replaying consumer pushed %.0f to the "
                "CRM, %.0f to marketing; %.0f events queued): see %s\n",
                r->replay_writes,
                bench_metric(&run->c, "crmsync_records_pushed_total", "direction=\"crm\""),
                bench_metric(&run->c, "crmsync_records_pushed_total", "direction=\"marketing\""),
                bench_metric(&run->c, "crmsync_events_total", "outcome=\"queued\""), path);
    }
    r->restore_lines = bench_restore_lines(run->c.proc.log, &r->restore_records, &r->restore_ms);
    {
        double prospects = bench_metric(&run->c, "crmsync_state_prospects", NULL);
        r->restore_s_per_million = prospects > 0 ? (r->restore_ms / 1000.0) / prospects * 1e6 : NAN;
    }
    count_errors(run);
    progress("6. replay: %ld events in %.2f s (%.0f events/s, %.0f/s after restore), %ld writes; "
             "7. restored %ld changelog records in %ld ms over %ld partitions",
             r->replay_events, r->replay_s, r->replay_eps, r->replay_steady_eps, r->replay_writes,
             r->restore_records, r->restore_ms, r->restore_lines);
    return stop_consumer(run);
}

static void teardown(run_t *run)
{
    stop_consumer(run);
    if (run->api_up)
        cs_tsandbox_client_close(&run->api);
    if (run->sb_up) {
        int st = cs_tsandbox_stop(&run->sb);
        if (st)
            fprintf(stderr, "bench: the sandbox exited with status %d\n", st);
    }
    if (!run->o.keep_topics && (run->sets_created[0] || run->sets_created[1]))
        delete_topics(run);
    bench_pop_free(&run->main);
    bench_pop_free(&run->burst);
    bench_pop_free(&run->lat);
    bench_load_destroy(run->ld);
    cs_conf_destroy(run->kconf);
}

int main(int argc, char **argv)
{
    static run_t run;
    int rc = 1;
    if (parse_args(&run.o, argc, argv))
        return 2;
    cs_log_setup("warn", NULL); /* the benchmark's own clients: only what goes wrong */
    cs_run_install_signals();
    if (setup(&run) == 0 && phase_generate(&run) == 0 && phase_raw(&run) == 0 &&
        phase_sync(&run) == 0 && phase_bursts(&run) == 0 && phase_latency(&run) == 0 &&
        phase_replay(&run) == 0)
        rc = 0;
    teardown(&run);
    if (rc) {
        fprintf(stderr, "crmsync-bench: failed%s (configs and logs in %s)\n",
                cs_run_stopping() ? " (interrupted)" : "", run.o.workdir);
        return 1;
    }
    bench_report(&run.o, &run.r);
    return 0;
}
