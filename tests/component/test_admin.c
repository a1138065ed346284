/* Component test of crmsync-admin: every subcommand run as a child process against the real
 * broker (private topics and groups per run), and queue/prospect/status/pause against a
 * running crmsync-sync-consumer with a sandbox. Asserts on exit statuses, stdout (tables and
 * --json) and stderr, and checks the side effects independently: the Control records on
 * the control topic (decoded here) and the group's committed offsets (rd_kafka_committed).
 *
 *   test_admin [usage|control|errors|replay|pipeline]    one section only */
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_run.h"
#include "cs_test.h"
#include "cs_time.h"
#include "cs_topics.h"
#include "testutil_proc.h"
#include "testutil_sandbox.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPARTS 3

static const char *bootstrap;
static char workdir[256];
static cs_avro_registry_t *reg;
static cs_avro_encoder_t *enc;
static cs_avro_decoder_t *dec;
static cs_producer_t *prod;
static cs_conf_t *kconf; /* bootstrap only: the test's own clients */

static const char *const topic_keys[CS_TOPIC_COUNT_] = {
    "topic.prospect", "topic.activity", "topic.crm",    "topic.control",
    "topic.state",    "topic.errors",   "topic.cursors"};

/* A private topic set, group and admin config file. */
typedef struct env_s {
    char topics[CS_TOPIC_COUNT_][160];
    char group[160];
    char conf[300]; /* the admin's config file */
} env_t;

static void env_init(env_t *e, const char *name, const char *extra)
{
    static const char *const suffix[CS_TOPIC_COUNT_] = {"prospect", "activity", "crm",    "control",
                                                        "state",    "errors",   "cursors"};
    static const char *compact[] = {"cleanup.policy", "compact", NULL};
    cs_topic_spec_t specs[CS_TOPIC_COUNT_];
    char err[512];
    FILE *f;
    for (int t = 0; t < CS_TOPIC_COUNT_; t++) {
        snprintf(e->topics[t], sizeof(e->topics[t]), "crmsync.test.admin.%d.%s.%s", (int)getpid(),
                 name, suffix[t]);
        specs[t].name = e->topics[t];
        specs[t].partitions = (t == CS_TOPIC_CONTROL || t == CS_TOPIC_CURSORS) ? 1 : NPARTS;
        specs[t].replication_factor = 1;
        specs[t].configs = t == CS_TOPIC_STATE ? compact : NULL;
    }
    snprintf(e->group, sizeof(e->group), "crmsync-test-admin-%d-%s", (int)getpid(), name);
    REQUIRE(cs_kafka_ensure_topics(kconf, specs, CS_TOPIC_COUNT_, 30000, err, sizeof(err)) ==
            CS_OK);
    snprintf(e->conf, sizeof(e->conf), "%s/admin-%s.conf", workdir, name);
    REQUIRE((f = fopen(e->conf, "w")));
    fprintf(f, "kafka.bootstrap.servers=%s\ntopics.partitions=%d\ngroup.id=%s\n", bootstrap, NPARTS,
            e->group);
    for (int t = 0; t < CS_TOPIC_COUNT_; t++)
        fprintf(f, "%s=%s\n", topic_keys[t], e->topics[t]);
    fprintf(f, "admin.timeout.ms=10000\n%s", extra ? extra : "");
    REQUIRE(fclose(f) == 0);
}

/* ---------------------------------------------------------------- running the admin */

typedef struct run_s {
    pid_t pid;
    int status;      /* exit status; -1 when it did not exit in time */
    char out[65536]; /* stdout */
    char err[16384]; /* stderr */
    char out_path[300], err_path[300];
} run_t;

static void slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* Starts crmsync-admin --config <conf> args... with stdout and stderr in files. */
static void admin_start(run_t *r, const env_t *e, const char *const *args)
{
    static int seq;
    char bin[4200];
    const char *argv[64];
    int n = 0;
    pid_t parent = getpid();
    memset(r, 0, sizeof(*r));
    cs_tproc_bin("admin", bin, sizeof(bin));
    argv[n++] = bin;
    if (e) {
        argv[n++] = "--config";
        argv[n++] = e->conf;
    }
    for (int i = 0; args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    seq++;
    snprintf(r->out_path, sizeof(r->out_path), "%s/run%d.out", workdir, seq);
    snprintf(r->err_path, sizeof(r->err_path), "%s/run%d.err", workdir, seq);
    r->pid = fork();
    REQUIRE(r->pid >= 0);
    if (r->pid == 0) {
        int fo = open(r->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(r->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent || fo < 0 || fe < 0)
            _exit(127);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
}

static int admin_finish(run_t *r, int timeout_ms)
{
    int64_t deadline = cs_now_ms() + timeout_ms;
    int st;
    r->status = -1;
    for (;;) {
        pid_t w = waitpid(r->pid, &st, WNOHANG);
        if (w == r->pid) {
            r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (cs_now_ms() > deadline) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &st, 0);
            fprintf(stderr, "crmsync-admin did not finish in %d ms: killed\n", timeout_ms);
            break;
        }
        usleep(20000);
    }
    slurp(r->out_path, r->out, sizeof(r->out));
    slurp(r->err_path, r->err, sizeof(r->err));
    return r->status;
}

/* Runs crmsync-admin to completion; returns its exit status. */
static int admin_run(run_t *r, const env_t *e, const char *const *args)
{
    admin_start(r, e, args);
    return admin_finish(r, 60000);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* True when one line of text contains both a and then b. */
static int line_has(const char *text, const char *a, const char *b)
{
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[2048];
        const char *x;
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        if ((x = strstr(line, a)) && strstr(x + strlen(a), b))
            return 1;
        p = nl ? nl + 1 : NULL;
    }
    fprintf(stderr, "  (no line with \"%s\" then \"%s\")\n", a, b);
    return 0;
}

static int has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "  (output does not contain \"%s\")\n", needle);
        return 0;
    }
    return 1;
}

/* stdout parsed as JSON (new reference), NULL (and a message) when it is not. */
static json_t *out_json(const run_t *r)
{
    json_error_t je;
    json_t *j = json_loads(r->out, 0, &je);
    if (!j)
        fprintf(stderr, "  stdout is not JSON (%s): %.300s\n", je.text, r->out);
    return j;
}

static int usage_case(const env_t *e, const char *const *args, int want, const char *in_err)
{
    run_t *r = malloc(sizeof(*r));
    int ok;
    REQUIRE(r);
    admin_run(r, e, args);
    ok = r->status == want && (!in_err || has(r->err, in_err));
    if (!ok)
        fprintf(stderr, "  %s ...: exit %d (want %d), stderr: %.400s\n", args[0], r->status, want,
                r->err);
    free(r);
    return ok;
}

/* ---------------------------------------------------------------- Kafka helpers */

typedef struct ctl_s {
    int command;
    char command_id[160], issued_by[64];
    int64_t issued_at;
    char keys[8][128];
    int nkeys;
    char ids[8][64];
    int nids;
} ctl_t;

/* Reads every record of a topic partition (from the start to the end now). */
static int read_partition(const char *topic, int32_t partition,
                          void (*cb)(void *, const rd_kafka_message_t *), void *opaque)
{
    char err[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(kconf, err, sizeof(err));
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *l;
    int64_t lo = 0, hi = 0, next = 0, deadline = cs_now_ms() + 15000;
    int n = 0;
    REQUIRE(kc && rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof(err)) == 0);
    /* assign() needs a group.id; this reader never joins nor commits */
    REQUIRE(rd_kafka_conf_set(kc, "group.id", "crmsync-test-admin-reader", err, sizeof(err)) == 0);
    REQUIRE((rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err))));
    /* a new topic's leader may not be known yet: ask again for a while */
    for (int i = 0; rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 10000); i++) {
        REQUIRE(i < 100);
        usleep(100000);
    }
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = lo;
    REQUIRE(rd_kafka_assign(rk, l) == 0);
    rd_kafka_topic_partition_list_destroy(l);
    next = lo;
    while (next < hi && cs_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (!m->err) {
            cb(opaque, m);
            next = m->offset + 1;
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(rk);
    REQUIRE(next >= hi);
    return n;
}

typedef struct ctls_s {
    ctl_t v[64];
    int n, bad;
} ctls_t;

static void on_control(void *opaque, const rd_kafka_message_t *m)
{
    ctls_t *c = opaque;
    cs_avro_decoded_t d;
    ctl_t *x;
    if (c->n >= 64)
        return;
    if (!m->payload || cs_avro_decode(dec, m->payload, m->len, &d) || d.schema != CS_AVRO_CONTROL) {
        c->bad++;
        return;
    }
    x = &c->v[c->n++];
    memset(x, 0, sizeof(*x));
    x->command = cs_avro_get_enum(d.value, CS_CTL_COMMAND);
    snprintf(x->command_id, sizeof(x->command_id), "%s",
             cs_avro_get_str(d.value, CS_CTL_COMMAND_ID, NULL));
    snprintf(x->issued_by, sizeof(x->issued_by), "%s",
             cs_avro_get_str(d.value, CS_CTL_ISSUED_BY, NULL));
    cs_avro_get_long(d.value, CS_CTL_ISSUED_AT, &x->issued_at);
    for (size_t k = 0; k < cs_avro_count(d.value, CS_CTL_PROSPECT_KEYS) && x->nkeys < 8; k++)
        snprintf(x->keys[x->nkeys++], 128, "%s",
                 cs_avro_get_item_str(d.value, CS_CTL_PROSPECT_KEYS, k, NULL));
    for (size_t k = 0; k < cs_avro_count(d.value, CS_CTL_ERROR_IDS) && x->nids < 8; k++)
        snprintf(x->ids[x->nids++], 64, "%s",
                 cs_avro_get_item_str(d.value, CS_CTL_ERROR_IDS, k, NULL));
}

static void read_controls(const env_t *e, ctls_t *c)
{
    memset(c, 0, sizeof(*c));
    read_partition(e->topics[CS_TOPIC_CONTROL], 0, on_control, c);
    CHECK_INT(c->bad, 0);
}

static int has_str(char (*v)[128], int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return 1;
    return 0;
}

static int has_id(char (*v)[64], int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return 1;
    return 0;
}

/* The group's committed offset of topic[partition], -1 when none (rd_kafka_committed with a
 * consumer of the group that never joins it). */
static int64_t committed(const char *group, const char *topic, int32_t partition)
{
    char err[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(kconf, err, sizeof(err));
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t off;
    REQUIRE(kc && rd_kafka_conf_set(kc, "group.id", group, err, sizeof(err)) == 0);
    REQUIRE((rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err))));
    rd_kafka_topic_partition_list_add(l, topic, partition);
    REQUIRE(rd_kafka_committed(rk, l, 10000) == 0);
    off = l->elems[0].err ? -2 : l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return off < 0 ? -1 : off;
}

/* Commits offsets for the group without joining it (a "simple" consumer commit). */
static void commit_offsets(const char *group, const char *const *topics, const int32_t *parts,
                           const int64_t *offs, int n)
{
    char err[512];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(kconf, err, sizeof(err));
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    REQUIRE(kc && rd_kafka_conf_set(kc, "group.id", group, err, sizeof(err)) == 0);
    REQUIRE((rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err))));
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topics[i], parts[i])->offset = offs[i];
    REQUIRE(rd_kafka_commit(rk, l, 0) == 0);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static void send_raw(const char *topic, int32_t partition, const char *key, const char *value,
                     int64_t ts)
{
    REQUIRE(cs_producer_send_partition(prod, topic, partition, key, key ? strlen(key) : 0, value,
                                       strlen(value), ts, NULL, -1) == CS_OK);
}

static void send_error(const env_t *e, const char *id, const char *key, int direction,
                       const char *code, int attempts, int64_t last_at)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_SYNC_ERROR);
    const void *out;
    size_t len;
    cs_avro_set_str(v, CS_SE_ERROR_ID, id);
    cs_avro_set_str(v, CS_SE_PROSPECT_KEY, key);
    cs_avro_set_enum(v, CS_SE_DIRECTION, direction);
    cs_avro_set_str(v, CS_SE_CODE, code);
    cs_avro_set_str(v, CS_SE_MESSAGE, "rejected by the test");
    cs_avro_set_int(v, CS_SE_ATTEMPTS, attempts);
    cs_avro_set_long(v, CS_SE_FIRST_AT, last_at - 1000);
    cs_avro_set_long(v, CS_SE_LAST_AT, last_at);
    REQUIRE(cs_avro_encode(enc, v, &out, &len) == CS_OK);
    REQUIRE(cs_producer_send(prod, e->topics[CS_TOPIC_ERRORS], key, strlen(key), out, len, 0, NULL,
                             -1) == CS_OK);
}

/* The producers' partition of a key (murmur2, as the Java client), written out here so the
 * admin's own mapping is checked against an independent one. */
static int murmur2_partition(const char *key, int n)
{
    const uint32_t m = 0x5bd1e995;
    size_t len = strlen(key);
    uint32_t h = 0x9747b28c ^ (uint32_t)len;
    const unsigned char *d = (const unsigned char *)key;
    while (len >= 4) {
        uint32_t k =
            (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
        d += 4;
        len -= 4;
    }
    switch (len) {
    case 3:
        h ^= (uint32_t)d[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)d[1] << 8;
        /* fall through */
    case 1:
        h ^= d[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int)((h & 0x7fffffff) % (uint32_t)n);
}

/* A SyncState record as the consumer writes it, keyed (murmur2 partition) by key. */
static void send_state(const env_t *e, const char *key, int64_t id, int64_t wm, const char *tag,
                       int contact)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_SYNC_STATE), item;
    const void *out;
    size_t len;
    cs_avro_set_str(v, CS_SS_PROSPECT_KEY, key);
    cs_avro_set_long(v, CS_SS_PROSPECT_ID, id);
    cs_avro_set_long(v, CS_SS_MARKETING_WATERMARK, wm);
    cs_avro_set_long(v, CS_SS_CRM_WATERMARK, wm - 500);
    cs_avro_set_long(v, CS_SS_UPDATED_AT, wm);
    cs_avro_set_enum(v, CS_SS_CRM_OBJECT, contact ? CS_OBJECT_CONTACT : CS_OBJECT_LEAD);
    cs_avro_set_str(v, CS_SS_CRM_ID, "00Q000000000001AAA");
    REQUIRE(cs_avro_array_add(v, CS_SS_FIELDS, &item) == 0);
    cs_avro_set_str(&item, CS_FS_NAME, "first_name");
    cs_avro_set_long(&item, CS_FS_TIME, wm);
    cs_avro_set_enum(&item, CS_FS_SIDE, CS_SIDE_CRM);
    cs_avro_set_long(&item, CS_FS_HASH, 0xbeef);
    cs_avro_set_str(v, CS_SS_LAST_RESULT, contact ? "OK" : tag);
    REQUIRE(cs_avro_encode(enc, v, &out, &len) == CS_OK);
    REQUIRE(cs_producer_send(prod, e->topics[CS_TOPIC_STATE], key, strlen(key), out, len, 0, NULL,
                             -1) == CS_OK);
}

/* ---------------------------------------------------------------- usage and failures */

static void t_usage(void)
{
    env_t e;
    printf("--- usage and bad arguments\n");
    env_init(&e, "usage", NULL);
    run_t *r = malloc(sizeof(*r));
    REQUIRE(r);

    CHECK_INT(admin_run(r, NULL, ARGS("--admin.timeout.ms", "1000")), 2);
    CHECK(has(r->err, "COMMAND"));
    CHECK(usage_case(&e, ARGS("bogus"), 2, "unknown command 'bogus'"));
    CHECK(usage_case(&e, ARGS("--no-such-option", "x", "status"), 2, "unknown option"));
    CHECK_INT(admin_run(r, NULL, ARGS("--help")), 0);
    CHECK(has(r->out, "replay") && has(r->out, "admin.consumers"));

    static const char *const cmds[][3] = {
        {"status", "--help", NULL},    {"queue", "--help", NULL},    {"errors", "list", "--help"},
        {"errors", "retry", "--help"}, {"prospect", "--help", NULL}, {"sync-now", "--help", NULL},
        {"pause", "--help", NULL},     {"unpause", "--help", NULL},  {"replay", "--help", NULL},
        {"errors", "--help", NULL},    {"topics", "--help", NULL},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++) {
        const char *args[4] = {cmds[i][0], cmds[i][1], cmds[i][2], NULL};
        admin_run(r, &e, args);
        CHECK_INT(r->status, 0);
        CHECK(has(r->out, "Usage: crmsync-admin"));
    }

    CHECK(usage_case(&e, ARGS("sync-now"), 2, "missing KEY"));
    CHECK(usage_case(&e, ARGS("sync-now", "   "), 2, "not a prospect key"));
    CHECK(usage_case(&e, ARGS("prospect"), 2, "missing KEY"));
    CHECK(usage_case(&e, ARGS("prospect", "a@x.example", "b@x.example"), 2, "one KEY"));
    CHECK(usage_case(&e, ARGS("replay"), 2, "exactly one of"));
    CHECK(usage_case(&e, ARGS("replay", "--to-start", "--to-offset", "5"), 2, "exactly one of"));
    CHECK(usage_case(&e, ARGS("replay", "--to-time", "yesterday"), 2, "ISO-8601"));
    CHECK(usage_case(&e, ARGS("replay", "--to-time", "2024-13-01T00:00:00Z"), 2, "ISO-8601"));
    CHECK(usage_case(&e, ARGS("replay", "--to-offset", "-3"), 2, "not an offset"));
    CHECK(usage_case(&e, ARGS("replay", "--to-offset"), 2, "needs a value"));
    CHECK(usage_case(&e, ARGS("replay", "--to-start", "--frobnicate"), 2, "unknown option"));
    CHECK(usage_case(&e, ARGS("replay", "--to-start", "--wait-timeout", "soon"), 2,
                     "not a non-negative integer"));
    CHECK(usage_case(&e, ARGS("errors"), 2, "missing action"));
    CHECK(usage_case(&e, ARGS("errors", "frob"), 2, "unknown action"));
    CHECK(usage_case(&e, ARGS("errors", "retry"), 2, "--id ID"));
    CHECK(usage_case(&e, ARGS("errors", "retry", "--id", "x", "--all"), 2, "either"));
    CHECK(usage_case(&e, ARGS("errors", "retry", "--id", "x", "--code", "C"), 2, "--code"));
    CHECK(usage_case(&e, ARGS("errors", "list", "extra"), 2, "unexpected argument"));
    CHECK(usage_case(&e, ARGS("queue", "--limit", "abc"), 2, "--limit"));
    CHECK(usage_case(&e, ARGS("queue", "--limit", "0"), 2, "--limit"));
    CHECK(usage_case(&e, ARGS("pause", "now"), 2, "unexpected argument"));
    CHECK(usage_case(&e, ARGS("status", "--json=yes"), 2, "takes no value"));

    /* Failures: exit 1 with a clear message, within the timeout. */
    CHECK(usage_case(&e, ARGS("queue"), 1, "admin.consumers"));
    CHECK(usage_case(&e, ARGS("prospect", "nobody@x.example"), 1, "no state for"));
    {
        const char *const unreachable[][4] = {
            {"pause", NULL, NULL, NULL},
            {"status", NULL, NULL, NULL},
            {"errors", "list", NULL, NULL},
            {"replay", "--to-start", "--dry-run", NULL},
            {"sync-now", "a@x.example", NULL, NULL},
        };
        for (size_t i = 0; i < sizeof(unreachable) / sizeof(*unreachable); i++) {
            const char *args[10] = {"--set", "kafka.bootstrap.servers=127.0.0.1:1",
                                    "--admin.timeout.ms", "1500"};
            for (int k = 0; k < 4 && unreachable[i][k]; k++)
                args[4 + k] = unreachable[i][k];
            int64_t t0 = cs_now_ms();
            admin_run(r, &e, args);
            CHECK_INT(r->status, 1);
            CHECK(has(r->err, "cannot reach Kafka at 127.0.0.1:1"));
            CHECK(cs_now_ms() - t0 < 15000);
        }
    }
    CHECK(usage_case(&e,
                     ARGS("--topic.errors", "crmsync.test.admin.no-such-topic", "errors", "list"),
                     1, "does not exist"));
    free(r);
}

/* ---------------------------------------------------------------- control records */

static void t_control(void)
{
    env_t e;
    ctls_t *c = malloc(sizeof(*c));
    run_t *r = malloc(sizeof(*r));
    json_t *j;
    int64_t t0 = cs_wall_ms();
    printf("--- pause, unpause, sync-now\n");
    REQUIRE(c && r);
    env_init(&e, "control", NULL);

    CHECK_INT(admin_run(r, &e, ARGS("pause")), 0);
    CHECK(has(r->out, "sent PAUSE") && has(r->out, "at offset 0"));
    CHECK_INT(admin_run(r, &e, ARGS("unpause")), 0);
    CHECK(has(r->out, "sent UNPAUSE") && has(r->out, "at offset 1"));
    CHECK_INT(admin_run(r, &e, ARGS("sync-now", " Alice@X.example ", "bob@x.example", "--json")),
              0);
    j = out_json(r);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "command")), "SYNC_NOW");
    CHECK_INT(json_integer_value(json_object_get(j, "offset")), 2);
    CHECK_INT(json_array_size(json_object_get(j, "prospect_keys")), 2);
    CHECK_STR(json_string_value(json_array_get(json_object_get(j, "prospect_keys"), 0)),
              "alice@x.example");
    char sent_id[160];
    const char *cid = json_string_value(json_object_get(j, "command_id"));
    snprintf(sent_id, sizeof(sent_id), "%s", cid ? cid : "");
    json_decref(j);

    read_controls(&e, c);
    CHECK_INT(c->n, 3);
    if (c->n == 3) {
        CHECK_INT(c->v[0].command, CS_COMMAND_PAUSE);
        CHECK_INT(c->v[0].nkeys, 0);
        CHECK_INT(c->v[1].command, CS_COMMAND_UNPAUSE);
        CHECK_INT(c->v[2].command, CS_COMMAND_SYNC_NOW);
        CHECK_INT(c->v[2].nkeys, 2);
        CHECK(has_str(c->v[2].keys, c->v[2].nkeys, "alice@x.example"));
        CHECK(has_str(c->v[2].keys, c->v[2].nkeys, "bob@x.example"));
        CHECK_STR(c->v[2].command_id, sent_id);
        CHECK(strcmp(c->v[0].command_id, c->v[1].command_id) &&
              strcmp(c->v[1].command_id, c->v[2].command_id) &&
              strcmp(c->v[0].command_id, c->v[2].command_id));
        for (int i = 0; i < 3; i++) {
            CHECK(c->v[i].issued_by[0] != '\0');
            CHECK(c->v[i].issued_at >= t0 - 1000 && c->v[i].issued_at <= cs_wall_ms() + 1000);
        }
    }
    /* The same key twice is one key. */
    CHECK_INT(admin_run(r, &e, ARGS("sync-now", "carol@x.example", "CAROL@x.example")), 0);
    CHECK(has(r->out, "for 1 prospect: carol@x.example"));
    free(c);
    free(r);
}

/* ---------------------------------------------------------------- errors */

static void t_errors(void)
{
    env_t e;
    ctls_t *c = malloc(sizeof(*c));
    run_t *r = malloc(sizeof(*r));
    json_t *j, *x;
    size_t i;
    int64_t t = cs_wall_ms() - 60000;
    printf("--- errors list and retry\n");
    REQUIRE(c && r);
    env_init(&e, "errors", NULL);

    CHECK_INT(admin_run(r, &e, ARGS("errors", "list")), 0);
    CHECK(has(r->out, "0 errors"));

    send_error(&e, "e-1", "a@x.example", CS_DIRECTION_TO_CRM, "INVALID_EMAIL_ADDRESS", 1, t);
    send_error(&e, "e-2", "b@x.example", CS_DIRECTION_TO_CRM, "REQUIRED_FIELD_MISSING", 1,
               t + 1000);
    send_error(&e, "e-1", "a@x.example", CS_DIRECTION_TO_CRM, "INVALID_EMAIL_ADDRESS", 3, t + 5000);
    send_error(&e, "e-3", "", CS_DIRECTION_INPUT, "POISON_UNKNOWN_SCHEMA", 1, t + 2000);
    send_error(&e, "e-4", "c@x.example", CS_DIRECTION_TO_MARKETING, "INVALID_EMAIL_ADDRESS", 2,
               t + 3000);
    REQUIRE(cs_producer_flush(prod, 30000) == CS_OK);

    CHECK_INT(admin_run(r, &e, ARGS("errors", "list")), 0);
    CHECK(has(r->out, "ERROR_ID") && has(r->out, "e-1") && has(r->out, "e-2") &&
          has(r->out, "e-3") && has(r->out, "e-4") && has(r->out, "4 errors"));
    CHECK(has(r->out, "REQUIRED_FIELD_MISSING") && has(r->out, "TO_MARKETING"));

    CHECK_INT(admin_run(r, &e, ARGS("errors", "list", "--json")), 0);
    j = out_json(r);
    CHECK_INT(json_array_size(json_object_get(j, "errors")), 4);
    json_array_foreach(json_object_get(j, "errors"), i, x)
    {
        if (!strcmp(json_string_value(json_object_get(x, "error_id")), "e-1")) {
            CHECK_INT(json_integer_value(json_object_get(x, "attempts")), 3); /* the latest */
            CHECK_INT(json_integer_value(json_object_get(x, "last_at")), t + 5000);
            CHECK_STR(json_string_value(json_object_get(x, "prospect_key")), "a@x.example");
            CHECK_STR(json_string_value(json_object_get(x, "direction")), "TO_CRM");
        }
    }
    /* oldest first: e-2 (t+1000) ... e-1 (t+5000) last */
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(j, "errors"), 0), "error_id")),
              "e-2");
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(j, "errors"), 3), "error_id")),
              "e-1");
    json_decref(j);

    CHECK_INT(admin_run(r, &e, ARGS("errors", "list", "--code", "INVALID_EMAIL_ADDRESS")), 0);
    CHECK(has(r->out, "e-1") && has(r->out, "e-4") && !strstr(r->out, "e-2") &&
          !strstr(r->out, "e-3"));
    CHECK_INT(admin_run(r, &e, ARGS("errors", "list", "--code=REQUIRED_FIELD_MISSING", "--json")),
              0);
    j = out_json(r);
    CHECK_INT(json_array_size(json_object_get(j, "errors")), 1);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(j, "errors"), 0), "error_id")),
              "e-2");
    json_decref(j);
    CHECK_INT(admin_run(r, &e, ARGS("errors", "list", "--key", "C@X.example", "--json")), 0);
    j = out_json(r);
    CHECK_INT(json_array_size(json_object_get(j, "errors")), 1);
    json_decref(j);

    /* retry one */
    CHECK_INT(admin_run(r, &e, ARGS("errors", "retry", "--id", "e-2")), 0);
    CHECK(has(r->out, "sent RETRY_ERROR for 1 error of 1 prospect") && has(r->out, "b@x.example"));
    read_controls(&e, c);
    CHECK_INT(c->n, 1);
    CHECK_INT(c->v[0].command, CS_COMMAND_RETRY_ERROR);
    CHECK_INT(c->v[0].nkeys, 1);
    CHECK_STR(c->v[0].keys[0], "b@x.example");
    CHECK_INT(c->v[0].nids, 1);
    CHECK_STR(c->v[0].ids[0], "e-2");

    /* retry all: the poison record (no prospect) is not retriable */
    CHECK_INT(admin_run(r, &e, ARGS("errors", "retry", "--all")), 0);
    read_controls(&e, c);
    CHECK_INT(c->n, 2);
    if (c->n == 2) {
        ctl_t *x2 = &c->v[1];
        CHECK_INT(x2->command, CS_COMMAND_RETRY_ERROR);
        CHECK_INT(x2->nkeys, 3);
        CHECK(has_str(x2->keys, x2->nkeys, "a@x.example") &&
              has_str(x2->keys, x2->nkeys, "b@x.example") &&
              has_str(x2->keys, x2->nkeys, "c@x.example"));
        CHECK_INT(x2->nids, 3);
        CHECK(has_id(x2->ids, x2->nids, "e-1") && has_id(x2->ids, x2->nids, "e-2") &&
              has_id(x2->ids, x2->nids, "e-4") && !has_id(x2->ids, x2->nids, "e-3"));
    }

    /* retry by code, JSON; several --id */
    CHECK_INT(
        admin_run(r, &e,
                  ARGS("errors", "retry", "--all", "--code", "INVALID_EMAIL_ADDRESS", "--json")),
        0);
    j = out_json(r);
    CHECK_INT(json_array_size(json_object_get(j, "error_ids")), 2);
    CHECK_INT(json_array_size(json_object_get(j, "prospect_keys")), 2);
    CHECK(json_is_true(json_object_get(j, "sent")));
    json_decref(j);
    CHECK_INT(admin_run(r, &e, ARGS("errors", "retry", "--id", "e-1", "--id", "e-4")), 0);
    read_controls(&e, c);
    CHECK_INT(c->n, 4);
    CHECK_INT(c->n == 4 ? c->v[3].nids : -1, 2);

    /* refusals: nothing sent */
    CHECK(usage_case(&e, ARGS("errors", "retry", "--id", "nope"), 1, "no error with id 'nope'"));
    CHECK(usage_case(&e, ARGS("errors", "retry", "--id", "e-3"), 1, "poison"));
    CHECK(usage_case(&e, ARGS("errors", "retry", "--id", "e-1", "--id", "nope"), 1, "nope"));
    read_controls(&e, c);
    CHECK_INT(c->n, 4);

    /* prospect without replicas: its latest error, and its changelog record */
    CHECK_INT(admin_run(r, &e, ARGS("prospect", "a@x.example")), 0);
    CHECK(line_has(r->out, "last error", "e-1 INVALID_EMAIL_ADDRESS") &&
          line_has(r->out, "last error", "attempts 3"));
    CHECK(line_has(r->out, "held by", "admin.consumers not set"));
    send_state(&e, "s@x.example", 801, t, "Old", 0);
    send_state(&e, "s@x.example", 801, t + 7000, "New", 1);
    REQUIRE(cs_producer_flush(prod, 30000) == CS_OK);
    CHECK_INT(admin_run(r, &e, ARGS("prospect", "S@x.example", "--json")), 0);
    j = out_json(r);
    x = json_object_get(j, "changelog");
    CHECK(json_is_null(json_object_get(j, "live")) || !json_object_get(j, "live"));
    CHECK_INT(json_integer_value(json_object_get(x, "marketing_watermark")), t + 7000);
    CHECK_INT(json_integer_value(json_object_get(x, "prospect_id")), 801);
    CHECK_STR(json_string_value(json_object_get(x, "crm_id")), "00Q000000000001AAA");
    CHECK_STR(json_string_value(json_object_get(x, "crm_object")), "Contact");
    CHECK_STR(json_string_value(json_object_get(x, "last_result")), "OK");
    CHECK_INT(json_integer_value(json_object_get(x, "partition")),
              murmur2_partition("s@x.example", NPARTS));
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(x, "fields"), 0), "value_hash")),
              "0000beef");
    json_decref(j);
    CHECK_INT(admin_run(r, &e, ARGS("prospect", "s@x.example")), 0);
    CHECK(line_has(r->out, "CRM link", "Contact 00Q000000000001AAA") &&
          line_has(r->out, "last sync result", "OK (changelog partition") &&
          line_has(r->out, "first_name", "0000beef") && line_has(r->out, "first_name", "crm"));
    free(c);
    free(r);
}

/* ---------------------------------------------------------------- replay and status */

static json_t *part_of(json_t *doc, const char *topic, int partition)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "partitions"), i, p)
    {
        if (!strcmp(json_string_value(json_object_get(p, "topic")), topic) &&
            json_integer_value(json_object_get(p, "partition")) == partition)
            return p;
    }
    return NULL;
}

static json_int_t part_field(json_t *doc, const char *topic, int partition, const char *field)
{
    json_t *p = part_of(doc, topic, partition);
    return p ? json_integer_value(json_object_get(p, field)) : -999;
}

static void t_replay(void)
{
    env_t e;
    run_t *r = malloc(sizeof(*r)), *bg = malloc(sizeof(*bg));
    json_t *j;
    char iso[40], err[512];
    const char *tp, *ta;
    int64_t t0 = cs_wall_ms() - 3600 * 1000;
    printf("--- replay and status\n");
    REQUIRE(r && bg);
    env_init(&e, "replay", NULL);
    tp = e.topics[CS_TOPIC_PROSPECT];
    ta = e.topics[CS_TOPIC_ACTIVITY];

    /* prospect p0: 5 events 1 s apart from t0; p1: 3 events an hour later; activity p0: 2
     * events before t0. */
    for (int i = 0; i < 5; i++)
        send_raw(tp, 0, "k0", "x", t0 + i * 1000);
    for (int i = 0; i < 3; i++)
        send_raw(tp, 1, "k1", "x", t0 + 3600 * 1000 + i);
    for (int i = 0; i < 2; i++)
        send_raw(ta, 0, "k0", "x", t0 - 10000 + i);
    REQUIRE(cs_producer_flush(prod, 30000) == CS_OK);
    {
        const char *topics[] = {tp, tp, ta};
        const int32_t parts[] = {0, 1, 0};
        const int64_t offs[] = {5, 3, 1};
        commit_offsets(e.group, topics, parts, offs, 3);
    }
    CHECK_INT(committed(e.group, tp, 0), 5);

    /* status: lag per partition, no live member */
    CHECK_INT(admin_run(r, &e, ARGS("status", "--json")), 0);
    j = out_json(r);
    CHECK_INT(json_integer_value(json_object_get(j, "members_alive")), 0);
    CHECK_INT(part_field(j, tp, 0, "lag"), 0);
    CHECK_INT(part_field(j, tp, 0, "committed"), 5);
    CHECK_INT(part_field(j, ta, 0, "lag"), 1);
    CHECK_INT(part_field(j, ta, 0, "end"), 2);
    CHECK_INT(json_integer_value(json_object_get(j, "total_lag")), 1);
    json_decref(j);
    CHECK_INT(admin_run(r, &e, ARGS("status")), 0);
    CHECK(has(r->out, "0 live members") && has(r->out, "total lag 1") && has(r->out, tp));

    /* dry run: the plan, nothing changed */
    CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-start", "--dry-run", "--json")), 0);
    j = out_json(r);
    CHECK_INT(json_integer_value(json_object_get(j, "total_reread")), 5 + 3 + 1);
    CHECK_INT(part_field(j, tp, 0, "reread"), 5);
    CHECK_INT(part_field(j, tp, 1, "reread"), 3);
    CHECK_INT(part_field(j, ta, 0, "reread"), 1);
    CHECK_INT(part_field(j, tp, 0, "target"), 0);
    CHECK(json_is_true(json_object_get(j, "dry_run")));
    CHECK(json_is_false(json_object_get(j, "applied")));
    json_decref(j);
    CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-start", "--dry-run")), 0);
    CHECK(has(r->out, "REREAD") && has(r->out, "9 events would be re-read") &&
          has(r->out, "dry run: nothing changed"));
    CHECK_INT(committed(e.group, tp, 0), 5);
    CHECK_INT(committed(e.group, tp, 1), 3);
    CHECK_INT(committed(e.group, ta, 0), 1);
    CHECK_INT(committed(e.group, tp, 2), -1);

    /* --to-time: p0 from the 3rd event on, p1 all, activity p0 past its end (skips 1) */
    REQUIRE(cs_time_format_iso8601(t0 + 1500, CS_TIME_FMT_MS, iso, sizeof(iso)) == CS_OK);
    CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-time", iso, "--dry-run", "--json")), 0);
    j = out_json(r);
    CHECK_INT(part_field(j, tp, 0, "target"), 2);
    CHECK_INT(part_field(j, tp, 0, "reread"), 3);
    CHECK_INT(part_field(j, tp, 1, "target"), 0);
    CHECK_INT(part_field(j, ta, 0, "target"), 2);
    CHECK_INT(part_field(j, ta, 0, "skipped"), 1);
    json_decref(j);
    CHECK_INT(committed(e.group, tp, 0), 5);

    /* a live member: refused, with --wait it waits (bounded), then goes through */
    {
        const char *topics[] = {tp};
        cs_consumer_t *member = cs_consumer_new(kconf, e.group, topics, 1, NULL, err, sizeof(err));
        rd_kafka_topic_partition_list_t *as = NULL;
        int64_t deadline = cs_now_ms() + 30000;
        REQUIRE(member);
        while (cs_now_ms() < deadline) {
            rd_kafka_message_t *m = cs_consumer_poll(member, 100);
            if (m)
                rd_kafka_message_destroy(m);
            if (!rd_kafka_assignment(cs_consumer_handle(member), &as) && as && as->cnt > 0)
                break;
            if (as)
                rd_kafka_topic_partition_list_destroy(as);
            as = NULL;
        }
        CHECK(as && as->cnt > 0);
        if (as)
            rd_kafka_topic_partition_list_destroy(as);

        CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-start")), 1);
        CHECK(has(r->err, "1 live member") && has(r->err, "--wait"));
        CHECK(has(r->out, "9 events would be re-read")); /* the plan came first */
        CHECK_INT(committed(e.group, tp, 0), 5);
        CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-start", "--wait", "--wait-timeout", "2")),
                  1);
        CHECK(has(r->err, "still has 1 live member"));
        CHECK_INT(committed(e.group, tp, 0), 5);
        CHECK_INT(admin_run(r, &e, ARGS("status", "--json")), 0);
        j = out_json(r);
        CHECK_INT(json_integer_value(json_object_get(j, "members_alive")), 1);
        CHECK_STR(json_string_value(json_object_get(j, "state")), "Stable");
        json_decref(j);

        admin_start(bg, &e, ARGS("replay", "--to-start", "--wait", "--wait-timeout", "60"));
        /* keep the member alive (polling) for 2 s, then leave the group */
        deadline = cs_now_ms() + 2000;
        while (cs_now_ms() < deadline) {
            rd_kafka_message_t *m = cs_consumer_poll(member, 100);
            if (m)
                rd_kafka_message_destroy(m);
        }
        CHECK_INT(committed(e.group, tp, 0), 5); /* still waiting */
        cs_consumer_destroy(member);
        CHECK_INT(admin_finish(bg, 60000), 0);
        CHECK(has(bg->out, "waiting up to 60 s") && has(bg->out, "done: group"));
    }
    CHECK_INT(committed(e.group, tp, 0), 0);
    CHECK_INT(committed(e.group, tp, 1), 0);
    CHECK_INT(committed(e.group, tp, 2), 0);
    CHECK_INT(committed(e.group, ta, 0), 0);

    /* --to-offset, clamped to each partition's range */
    CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-offset", "4", "--json")), 0);
    j = out_json(r);
    CHECK(json_is_true(json_object_get(j, "applied")));
    json_decref(j);
    CHECK_INT(committed(e.group, tp, 0), 4);
    CHECK_INT(committed(e.group, tp, 1), 3);
    CHECK_INT(committed(e.group, ta, 0), 2);
    CHECK_INT(committed(e.group, tp, 2), 0);

    /* --to-time applied */
    CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-time", iso)), 0);
    CHECK(has(r->out, "done: group"));
    CHECK_INT(committed(e.group, tp, 0), 2);
    CHECK_INT(committed(e.group, tp, 1), 0);

    /* status sees the new lag */
    CHECK_INT(admin_run(r, &e, ARGS("status", "--json")), 0);
    j = out_json(r);
    CHECK_INT(part_field(j, tp, 0, "lag"), 3);
    CHECK_INT(part_field(j, tp, 1, "lag"), 3);
    json_decref(j);
    free(r);
    free(bg);
}

/* ---------------------------------------------------------------- against a running pipeline */

static void send_prospect(const env_t *e, const char *email, int64_t id, const char *first,
                          int64_t assigned, int64_t t)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
    const void *out;
    size_t len;
    char eid[64];
    snprintf(eid, sizeof(eid), "pc-%" PRId64 "-%" PRId64, id, t);
    cs_avro_set_str(v, CS_PC_EVENT_ID, eid);
    cs_avro_set_str(v, CS_PC_PROSPECT_KEY, email);
    cs_avro_set_long(v, CS_PC_PROSPECT_ID, id);
    cs_avro_set_enum(v, CS_PC_CAUSE, CS_CAUSE_CREATED);
    cs_avro_set_long(v, CS_PC_UPDATED_AT, t);
    cs_avro_set_long(v, CS_PC_EVENT_TIME, cs_wall_ms());
    cs_avro_set_str(v, CS_PC_EMAIL, email);
    cs_avro_set_str(v, CS_PC_FIRST_NAME, first);
    cs_avro_set_str(v, CS_PC_LAST_NAME, "Tester");
    cs_avro_set_str(v, CS_PC_COMPANY, "Acme");
    if (assigned >= 0)
        cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, assigned);
    REQUIRE(cs_avro_encode(enc, v, &out, &len) == CS_OK);
    REQUIRE(cs_producer_send(prod, e->topics[CS_TOPIC_PROSPECT], email, strlen(email), out, len, 0,
                             NULL, -1) == CS_OK);
    REQUIRE(cs_producer_flush(prod, 30000) == CS_OK);
}

/* Runs args with --json until pred holds on the document (or 30 s pass). */
static int poll_json(run_t *r, const env_t *e, const char *const *args,
                     int (*pred)(json_t *doc, const void *arg), const void *arg)
{
    int64_t deadline = cs_now_ms() + 30000;
    while (cs_now_ms() < deadline) {
        json_t *j;
        if (admin_run(r, e, args) == 0 && (j = json_loads(r->out, 0, NULL))) {
            int ok = pred(j, arg);
            json_decref(j);
            if (ok)
                return 1;
        }
        usleep(300000);
    }
    fprintf(stderr, "  poll %s: gave up; last exit %d, stdout %.600s, stderr %.300s\n", args[0],
            r->status, r->out, r->err);
    return 0;
}

static int replica_owns_all(json_t *doc, const void *arg)
{
    json_t *rep = json_array_get(json_object_get(doc, "replicas"), 0);
    (void)arg;
    return json_integer_value(json_object_get(doc, "members_alive")) == 1 &&
           json_array_size(json_object_get(json_object_get(rep, "status"), "partitions")) == NPARTS;
}

static int status_paused(json_t *doc, const void *arg)
{
    return json_is_true(json_object_get(doc, "paused")) == *(const int *)arg &&
           json_object_get(doc, "paused") != NULL;
}

static int parked_has(json_t *doc, const void *key)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "parked"), i, p)
    {
        if (!strcmp(json_string_value(json_object_get(p, "key")), key))
            return 1;
    }
    return 0;
}

static int entry_paused(json_t *doc, const void *key)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "entries"), i, p)
    {
        if (!strcmp(json_string_value(json_object_get(p, "key")), key) &&
            !strcmp(json_string_value(json_object_get(p, "reason")), "paused"))
            return 1;
    }
    return 0;
}

static int pushed(json_t *doc, const void *arg)
{
    json_t *live = json_object_get(doc, "live"), *log = json_object_get(doc, "changelog");
    (void)arg;
    return live && log && json_is_string(json_object_get(live, "crm_id")) &&
           json_integer_value(json_object_get(live, "marketing_watermark")) > 0 &&
           json_is_false(json_object_get(live, "in_queue")) &&
           json_string_value(json_object_get(log, "last_result")) &&
           !strcmp(json_string_value(json_object_get(log, "last_result")), "OK");
}

static void t_pipeline(void)
{
    env_t e, ec; /* the admin's config, then the consumer's (same topics and group) */
    cs_tsandbox_t sb;
    cs_tproc_t cons;
    run_t *r = malloc(sizeof(*r));
    char err[512], log[300], url[64], extra[128];
    int port = 0, yes = 1, no = 0;
    int64_t t = cs_wall_ms() - 600000;
    json_t *j, *live;
    FILE *f;
    printf("--- against a running sync consumer\n");
    REQUIRE(r);
    env_init(&e, "pipe", NULL);
    REQUIRE(cs_tsandbox_start(&sb, NULL, err, sizeof(err)) == 0);

    /* the consumer: same topics and group, the sandbox as both APIs */
    ec = e;
    snprintf(ec.conf, sizeof(ec.conf), "%s/consumer.conf", workdir);
    REQUIRE((f = fopen(ec.conf, "w")));
    fprintf(f, "kafka.bootstrap.servers=%s\ntopics.partitions=%d\ngroup.id=%s\n", bootstrap, NPARTS,
            e.group);
    for (int k = 0; k < CS_TOPIC_COUNT_; k++)
        fprintf(f, "%s=%s\n", topic_keys[k], e.topics[k]);
    fprintf(f,
            "crm.login_url=%s\nmkt.base_url=%s\ncrm.client_id=%s\ncrm.client_secret=%s\n"
            "mkt.business_unit_id=%s\nbatch.linger.ms=100\ncommit.interval.ms=200\nhttp.port=0\n",
            sb.url, sb.url, CS_TSANDBOX_CLIENT_ID, CS_TSANDBOX_CLIENT_SECRET, CS_TSANDBOX_BU_ID);
    REQUIRE(fclose(f) == 0);
    snprintf(log, sizeof(log), "%s/consumer.log", workdir);
    REQUIRE(cs_tproc_start(&cons, "sync-consumer", ARGS("--config", ec.conf), log) == 0);
    for (int i = 0; i < 200 && !port; i++) {
        char line[1024];
        FILE *lf = fopen(log, "r");
        while (lf && fgets(line, sizeof(line), lf)) {
            char *m = strstr(line, "metrics on http://127.0.0.1:");
            if (m)
                port = atoi(m + strlen("metrics on http://127.0.0.1:"));
        }
        if (lf)
            fclose(lf);
        if (!port)
            usleep(50000);
    }
    REQUIRE(port > 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    snprintf(extra, sizeof(extra), "admin.consumers=%s\n", url);
    env_init(&e, "pipe", extra); /* same names: the topics exist; rewrites the admin config */

    /* status: the replica joined and owns every partition */
    CHECK(poll_json(r, &e, ARGS("status", "--json"), replica_owns_all, NULL));
    CHECK_INT(admin_run(r, &e, ARGS("status")), 0);
    CHECK(has(r->out, "1 live member") && has(r->out, url) && has(r->out, "1 of 1 replica") &&
          has(r->out, "paused no"));

    /* an unassigned prospect with no CRM match is parked, and says why */
    send_prospect(&e, "lonely@x.example", 701, "Lo", -1, t);
    CHECK(poll_json(r, &e, ARGS("queue", "--json"), parked_has, "lonely@x.example"));
    CHECK_INT(admin_run(r, &e, ARGS("queue")), 0);
    CHECK(has(r->out, "PARKED") && has(r->out, "lonely@x.example") &&
          has(r->out, "unassigned and no matching contact or lead"));
    CHECK_INT(admin_run(r, &e, ARGS("prospect", "Lonely@X.example")), 0);
    CHECK(has(r->out, "prospect lonely@x.example") && has(r->out, url) &&
          line_has(r->out, "in queue", "no: unassigned") &&
          line_has(r->out, "prospect id", " 701") && has(r->out, "marketing watermark"));
    CHECK_INT(admin_run(r, &e, ARGS("prospect", "lonely@x.example", "--json")), 0);
    j = out_json(r);
    live = json_object_get(j, "live");
    CHECK_STR(json_string_value(json_object_get(j, "replica")), url);
    CHECK(json_is_false(json_object_get(live, "in_queue")));
    CHECK(json_string_value(json_object_get(live, "why")) &&
          strstr(json_string_value(json_object_get(live, "why")), "unassigned"));
    CHECK_INT(json_integer_value(json_object_get(live, "prospect_id")), 701);
    CHECK(json_is_integer(json_object_get(live, "marketing_watermark")));
    json_decref(j);

    /* paused: an assigned prospect waits in the queue with the reason "paused" */
    CHECK_INT(admin_run(r, &e, ARGS("pause")), 0);
    CHECK(poll_json(r, &e, ARGS("status", "--json"), status_paused, &yes));
    send_prospect(&e, "queued@x.example", 702, "Queued", 42, t + 1000);
    CHECK(poll_json(r, &e, ARGS("queue", "--json"), entry_paused, "queued@x.example"));
    CHECK_INT(admin_run(r, &e, ARGS("queue")), 0);
    CHECK(has(r->out, "queued@x.example") && has(r->out, "paused") &&
          has(r->out, "connector PAUSED"));
    CHECK_INT(admin_run(r, &e, ARGS("prospect", "queued@x.example", "--json")), 0);
    j = out_json(r);
    live = json_object_get(j, "live");
    CHECK(json_is_true(json_object_get(live, "in_queue")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(live, "queue"), "reason")),
              "paused");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(live, "queue"), "pending_values"), "first_name")),
              "Queued");
    /* the changelog may already hold the accepted state (marked pending, not pushed), or
     * not yet: the consumer writes it at its next commit point and delivers it
     * asynchronously; until then the admin prints "changelog": null (docs/ADMIN.md) */
    {
        json_t *cl = json_object_get(j, "changelog");
        CHECK(json_is_null(cl) || json_is_true(json_object_get(cl, "pending")));
    }
    CHECK(json_integer_value(json_object_get(live, "marketing_watermark")) == 0);
    json_decref(j);
    CHECK_INT(admin_run(r, &e, ARGS("prospect", "queued@x.example")), 0);
    CHECK(line_has(r->out, "in queue", "yes: paused") &&
          line_has(r->out, "pending", "first_name = \"Queued\"") &&
          line_has(r->out, "marketing watermark", "never"));
    CHECK_INT(admin_run(r, &e, ARGS("status", "--json")), 0);
    j = out_json(r);
    CHECK(json_is_true(json_object_get(j, "paused")));
    CHECK(json_integer_value(json_object_get(j, "queue_depth")) >= 1);
    json_decref(j);

    /* the pipeline is live: a replay is planned but refused */
    CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-start", "--dry-run")), 0);
    CHECK(has(r->out, "dry run: nothing changed"));
    CHECK_INT(admin_run(r, &e, ARGS("replay", "--to-start")), 1);
    CHECK(has(r->err, "live member"));

    /* unpaused: pushed; the changelog has the state and the result */
    CHECK_INT(admin_run(r, &e, ARGS("unpause")), 0);
    CHECK(poll_json(r, &e, ARGS("status", "--json"), status_paused, &no));
    CHECK(poll_json(r, &e, ARGS("prospect", "queued@x.example", "--json"), pushed, NULL));
    CHECK_INT(admin_run(r, &e, ARGS("prospect", "queued@x.example")), 0);
    CHECK(line_has(r->out, "CRM link", "Lead ") && line_has(r->out, "last sync result", " OK") &&
          line_has(r->out, "in queue", "no: in sync") &&
          line_has(r->out, "first_name", "most_recent"));
    CHECK(line_has(r->out, "marketing watermark", "Z") && line_has(r->out, "assigned user", "42"));

    /* sync-now through the control topic reaches the replica that holds the key */
    CHECK_INT(admin_run(r, &e, ARGS("sync-now", "queued@x.example")), 0);
    CHECK(has(r->out, "sent SYNC_NOW for 1 prospect: queued@x.example"));
    CHECK(usage_case(&e, ARGS("prospect", "nobody@x.example"), 1, "no state for"));

    CHECK_INT(cs_tproc_stop(&cons, 20000), 0);
    /* a replica that is down: queue fails with the reason, status says so */
    CHECK(usage_case(&e, ARGS("queue"), 1, "no replica answered"));
    CHECK_INT(admin_run(r, &e, ARGS("status")), 0);
    CHECK(has(r->out, "down") && has(r->out, "0 of 1 replica"));
    CHECK_INT(cs_tsandbox_stop(&sb), 0);
    free(r);
}

int main(int argc, char **argv)
{
    char err[512];
    const char *only = argc > 1 ? argv[1] : NULL;
    bootstrap = cs_test_env("CRMSYNC_BOOTSTRAP", "127.0.0.1:19092");
    snprintf(workdir, sizeof(workdir), "/tmp/crmsync-test-admin-XXXXXX");
    REQUIRE(mkdtemp(workdir));
    REQUIRE((reg = cs_avro_registry_new(err, sizeof(err))));
    REQUIRE((enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT)));
    REQUIRE((dec = cs_avro_decoder_new(reg)));
    REQUIRE((kconf = cs_conf_new("test", "test", NULL)));
    REQUIRE(cs_conf_set(kconf, "kafka.bootstrap.servers", bootstrap, err, sizeof(err)) == CS_OK);
    REQUIRE((prod = cs_producer_new(kconf, NULL, NULL, err, sizeof(err))));

    struct {
        const char *name;
        void (*fn)(void);
    } all[] = {
        {"usage", t_usage},   {"control", t_control},   {"errors", t_errors},
        {"replay", t_replay}, {"pipeline", t_pipeline},
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
        if (!only || !strcmp(only, all[i].name))
            all[i].fn();

    cs_producer_destroy(prod);
    cs_avro_decoder_destroy(dec);
    cs_avro_encoder_destroy(enc);
    cs_avro_registry_destroy(reg);
    cs_conf_destroy(kconf);
    printf("logs and outputs in %s\n", workdir);
    return cs_test_report();
}
