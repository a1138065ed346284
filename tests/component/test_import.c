/* Component: crmsync-import as a child process against the real local broker.
 *
 *   - an RFC 4180 file with a BOM, CRLF, quoted fields holding commas, quotes and newlines,
 *     v5 and crmsync header names in any case and a custom column: the good rows arrive as
 *     ProspectChange records with cause IMPORT, keyed by the normalised e-mail (= the
 *     record's prospect_key), one updated_at for the whole import, the fields mapped; the bad
 *     rows (invalid e-mail, wrong column count, bad number, bad boolean, unterminated quote)
 *     are listed with their line numbers and skipped; exit status 3;
 *   - 600 generated rows: 600 records, exit status 0;
 *   - prospect.key=id keys by the prospect id;
 *   - --import.dry_run reads and checks without Kafka;
 *   - unusable input (no email column, unknown column with unknown_columns=error, no file),
 *     a missing topic, no broker: exit status 2 / 1 and nothing published;
 *   - a delivery failure (the topic deleted under the import) makes the exit status 1;
 *   - SIGTERM while reading a FIFO that stays open: the rows read so far are delivered,
 *     exit status 4. */
#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_run.h"
#include "cs_test.h"
#include "testutil_proc.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *bootstrap;
static char dir[256], suffix[64];
static cs_conf_t *conf;
static cs_avro_registry_t *reg;
static cs_producer_t *query;

/* ---------------------------------------------------------------- helpers */

static void write_file(const char *name, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

/* Runs crmsync-import with args (NULL-terminated) until it exits; returns its status and
 * leaves its output in dir/<name>.log. */
static int run_import(const char *name, const char *const *args)
{
    char log[512];
    cs_tproc_t p;
    snprintf(log, sizeof(log), "%s/%s.log", dir, name);
    unlink(log);
    if (cs_tproc_start(&p, "import", args, log))
        return -1;
    int st = cs_tproc_wait(&p, 120000);
    if (st == -2) {
        cs_tproc_kill(&p);
        fprintf(stderr, "%s: still running after 120 s\n", name);
    }
    return st;
}

static int log_has(const char *name, const char *needle)
{
    char path[512], line[2048];
    int n = 0;
    snprintf(path, sizeof(path), "%s/%s.log", dir, name);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    if (!n)
        fprintf(stderr, "%s.log lacks \"%s\"\n", name, needle);
    return n;
}

static int64_t topic_count(const char *topic)
{
    rd_kafka_t *rk = cs_producer_handle(query);
    int parts = cs_kafka_partition_count(rk, topic, 10000);
    int64_t sum = 0;
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000))
            return -1;
        sum += hi;
    }
    return parts > 0 ? sum : -1;
}

static void make_topic(const char *name, int partitions)
{
    char err[512];
    cs_topic_spec_t spec = {name, partitions, 1, NULL};
    if (cs_kafka_ensure_topics(conf, &spec, 1, 15000, err, sizeof(err)))
        fprintf(stderr, "cannot create %s: %s\n", name, err);
}

static int delete_topic(const char *name)
{
    rd_kafka_t *rk = cs_producer_handle(query);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    int rc = -1;
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (ev && rd_kafka_event_DeleteTopics_result(ev)) {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
        rc = cnt == 1 && !rd_kafka_topic_result_error(res[0]) ? 0 : -1;
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    return rc;
}

typedef struct {
    char key[128], prospect_key[128], event_id[128];
    char email[128], first[128], last[128], company[128], phone[64], title[64], grade[16];
    char industry[64];
    int has_last, has_industry_key, industry_null, cause, opted_out, do_not_sync, nchanged;
    int changed_has_email, changed_has_industry;
    int32_t score;
    int64_t prospect_id, assigned, updated_at, event_time;
} pc_t;

static void copy_str(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static size_t read_all(const char *topic, pc_t *out, size_t max)
{
    char err[256], group[160];
    int64_t want = topic_count(topic), got = 0, deadline = cs_now_ms() + 60000;
    snprintf(group, sizeof(group), "crmsync-test-import-%s-%s", suffix, topic);
    const char *topics[1] = {topic};
    cs_consumer_t *c = cs_consumer_new(conf, group, topics, 1, NULL, err, sizeof(err));
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    size_t n = 0;
    REQUIRE(c && dec);
    while (got < want && cs_now_ms() < deadline) {
        rd_kafka_message_t *m = cs_consumer_poll(c, 200);
        cs_avro_decoded_t d;
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        got++;
        if (n < max && cs_avro_decode(dec, m->payload, m->len, &d) == 0 &&
            d.schema == CS_AVRO_PROSPECT_CHANGE) {
            const avro_value_t *v = d.value;
            pc_t *r = &out[n++];
            bool b;
            memset(r, 0, sizeof(*r));
            snprintf(r->key, sizeof(r->key), "%.*s", (int)m->key_len, (const char *)m->key);
            copy_str(r->prospect_key, sizeof(r->prospect_key),
                     cs_avro_get_str(v, CS_PC_PROSPECT_KEY, NULL));
            copy_str(r->event_id, sizeof(r->event_id), cs_avro_get_str(v, CS_PC_EVENT_ID, NULL));
            copy_str(r->email, sizeof(r->email), cs_avro_get_str(v, CS_PC_EMAIL, NULL));
            copy_str(r->first, sizeof(r->first), cs_avro_get_str(v, CS_PC_FIRST_NAME, NULL));
            r->has_last = cs_avro_get_str(v, CS_PC_LAST_NAME, NULL) != NULL;
            copy_str(r->last, sizeof(r->last), cs_avro_get_str(v, CS_PC_LAST_NAME, NULL));
            copy_str(r->company, sizeof(r->company), cs_avro_get_str(v, CS_PC_COMPANY, NULL));
            copy_str(r->phone, sizeof(r->phone), cs_avro_get_str(v, CS_PC_PHONE, NULL));
            copy_str(r->title, sizeof(r->title), cs_avro_get_str(v, CS_PC_JOB_TITLE, NULL));
            copy_str(r->grade, sizeof(r->grade), cs_avro_get_str(v, CS_PC_GRADE, NULL));
            r->cause = cs_avro_get_enum(v, CS_PC_CAUSE);
            b = false;
            cs_avro_get_bool(v, CS_PC_OPTED_OUT, &b);
            r->opted_out = b;
            b = false;
            cs_avro_get_bool(v, CS_PC_DO_NOT_SYNC, &b);
            r->do_not_sync = b;
            cs_avro_get_int(v, CS_PC_SCORE, &r->score);
            if (!cs_avro_get_long(v, CS_PC_PROSPECT_ID, &r->prospect_id))
                r->prospect_id = -1;
            if (!cs_avro_get_long(v, CS_PC_ASSIGNED_USER_ID, &r->assigned))
                r->assigned = -1;
            cs_avro_get_long(v, CS_PC_UPDATED_AT, &r->updated_at);
            cs_avro_get_long(v, CS_PC_EVENT_TIME, &r->event_time);
            const char *ind = NULL;
            r->has_industry_key = cs_avro_map_find(v, CS_PC_CUSTOM_FIELDS, "Industry", &ind);
            r->industry_null = r->has_industry_key && !ind;
            copy_str(r->industry, sizeof(r->industry), ind);
            r->nchanged = (int)cs_avro_count(v, CS_PC_CHANGED_FIELDS);
            for (int k = 0; k < r->nchanged; k++) {
                const char *s = cs_avro_get_item_str(v, CS_PC_CHANGED_FIELDS, (size_t)k, NULL);
                r->changed_has_email |= s && !strcmp(s, "email");
                r->changed_has_industry |= s && !strcmp(s, "Industry");
            }
        }
        rd_kafka_message_destroy(m);
    }
    CHECK_INT(got, want);
    cs_avro_decoder_destroy(dec);
    cs_consumer_destroy(c);
    return n;
}

static const pc_t *by_key(const pc_t *r, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].key, key))
            return &r[i];
    return NULL;
}

/* ---------------------------------------------------------------- the cases */

static const char rfc_csv[] =
    "\xef\xbb\xbf"
    "Email,First Name,lastName,Company,phone,Job Title,score,grade,Opted_Out,assignedToId,"
    "do_not_sync,prospect_id,Industry\r\n"
    " Ann@Example.COM ,Ann,\"Lee, Jr.\",\"Acme \"\"Rockets\"\", Inc.\",+1 555,CTO,10,A-,yes,7,"
    "false,1001,\"Aero\r\nspace\"\r\n"                            /* lines 2-3 */
    "bob@example.com,Bob,,,,,0,,no,,,,\r\n"                       /* 4 */
    "not-an-email,X,Y,Z,,,,,,,,,\r\n"                             /* 5 */
    "carol@example.com,Carol,C\r\n"                               /* 6 */
    "dave@example.com,Dave,D,Co,,,high,,,,,,\r\n"                 /* 7 */
    "erin@example.com,Erin,E,Co,,,,,maybe,,,,\r\n"                /* 8 */
    ",,,,,,,,,,,,\r\n"                                            /* 9: blank */
    "fred@example.com,\"Fred \"\"The\"\" Man\",F,Co,,,,,,,,,\r\n" /* 10 */
    "gus@example.com,Gus,G,Co,,,,,,abc,,,\r\n"                    /* 11 */
    "\"henry@example.com,Henry,H,Co,,,,,,,,,\r\n";                /* 12: unterminated */

static void test_rfc(void)
{
    char topic[128], path[512], set_topic[200];
    snprintf(topic, sizeof(topic), "crmsync.test.import-%s", suffix);
    make_topic(topic, 3);
    write_file("rfc.csv", rfc_csv, path, sizeof(path));
    snprintf(set_topic, sizeof(set_topic), "topic.prospect=%s", topic);
    char bs[200];
    snprintf(bs, sizeof(bs), "kafka.bootstrap.servers=%s", bootstrap);
    const char *args[] = {"--set", bs, "--set", set_topic, "--import.progress", "on", path, NULL};
    int64_t t0 = cs_wall_ms();
    CHECK_INT(run_import("rfc", args), 3); /* rows rejected, the rest published */
    int64_t t1 = cs_wall_ms();
    CHECK(log_has("rfc", "rows read        9"));
    CHECK(log_has("rfc", "published        3"));
    CHECK(log_has("rfc", "rejected         6"));
    CHECK(log_has("rfc", "delivery failed  0"));
    CHECK(log_has("rfc", "blank rows       1"));
    CHECK(log_has("rfc", "line 5: invalid email \"not-an-email\""));
    CHECK(log_has("rfc", "line 6: expected 13 fields, found 3"));
    CHECK(log_has("rfc", "line 7: bad number in score: \"high\""));
    CHECK(log_has("rfc", "line 8: bad boolean in Opted_Out"));
    CHECK(log_has("rfc", "line 11: bad number in assignedToId"));
    CHECK(log_has("rfc", "line 12: unterminated quoted field"));
    CHECK(log_has("rfc", "rows/s")); /* the progress line */

    static pc_t recs[16];
    size_t n = read_all(topic, recs, 16);
    CHECK_INT(n, 3);
    for (size_t i = 0; i < n; i++) {
        CHECK_STR(recs[i].key, recs[i].prospect_key);
        CHECK_INT(recs[i].cause, CS_CAUSE_IMPORT);
        CHECK_INT(recs[i].updated_at, recs[0].updated_at); /* one time for the import */
        CHECK(recs[i].updated_at >= t0 - 1000 && recs[i].updated_at <= t1);
        CHECK(recs[i].event_time >= recs[i].updated_at && recs[i].event_time <= t1);
        CHECK(recs[i].changed_has_email);
        CHECK(recs[i].changed_has_industry);
        CHECK_INT(recs[i].nchanged, 13);
        CHECK(strncmp(recs[i].event_id, "import:", 7) == 0);
    }
    const pc_t *ann = by_key(recs, n, "ann@example.com");
    CHECK(ann != NULL);
    if (ann) {
        CHECK_STR(ann->email, "Ann@Example.COM");
        CHECK_STR(ann->first, "Ann");
        CHECK_STR(ann->last, "Lee, Jr.");
        CHECK_STR(ann->company, "Acme \"Rockets\", Inc.");
        CHECK_STR(ann->phone, "+1 555");
        CHECK_STR(ann->title, "CTO");
        CHECK_STR(ann->grade, "A-");
        CHECK_INT(ann->score, 10);
        CHECK_INT(ann->opted_out, 1);
        CHECK_INT(ann->do_not_sync, 0);
        CHECK_INT(ann->assigned, 7);
        CHECK_INT(ann->prospect_id, 1001);
        CHECK_STR(ann->industry, "Aero\r\nspace");
        CHECK(strstr(ann->event_id, ":2") != NULL); /* the line of the row */
    }
    const pc_t *bob = by_key(recs, n, "bob@example.com");
    CHECK(bob != NULL);
    if (bob) {
        CHECK_INT(bob->has_last, 0); /* empty cell: null */
        CHECK_INT(bob->score, 0);
        CHECK_INT(bob->assigned, -1);
        CHECK_INT(bob->prospect_id, -1);
        CHECK_INT(bob->has_industry_key, 1);
        CHECK_INT(bob->industry_null, 1);
    }
    const pc_t *fred = by_key(recs, n, "fred@example.com");
    CHECK(fred && !strcmp(fred->first, "Fred \"The\" Man"));
}

static void test_600(void)
{
    char topic[128], path[512], set_topic[200], bs[200];
    snprintf(topic, sizeof(topic), "crmsync.test.import600-%s", suffix);
    make_topic(topic, 6);
    snprintf(path, sizeof(path), "%s/600.csv", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "email,firstName,lastName,company,score\n");
    for (int i = 0; i < 600; i++)
        fprintf(f, "User%03d@Example.com,First%d,\"Last, %d\",Co %d,%d\n", i, i, i, i % 7, i);
    fclose(f);
    snprintf(set_topic, sizeof(set_topic), "topic.prospect=%s", topic);
    snprintf(bs, sizeof(bs), "kafka.bootstrap.servers=%s", bootstrap);
    const char *args[] = {"--set", bs, "--set", set_topic, path, NULL};
    CHECK_INT(run_import("600", args), 0);
    CHECK(log_has("600", "published        600"));
    CHECK(log_has("600", "rejected         0"));
    CHECK_INT(topic_count(topic), 600);
    static pc_t recs[700];
    size_t n = read_all(topic, recs, 700);
    CHECK_INT(n, 600);
    int distinct = 0, ok = 0;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = !strcmp(recs[i].key, recs[j].key);
        distinct += !dup;
        int k = atoi(recs[i].key + 4);
        char want[64];
        snprintf(want, sizeof(want), "user%03d@example.com", k);
        ok +=
            !strcmp(recs[i].key, want) && recs[i].score == k && !strcmp(recs[i].prospect_key, want);
    }
    CHECK_INT(distinct, 600);
    CHECK_INT(ok, 600);
}

static void test_key_id_and_dry_run(void)
{
    char topic[128], path[512], set_topic[200], bs[200];
    snprintf(topic, sizeof(topic), "crmsync.test.import-id-%s", suffix);
    make_topic(topic, 3);
    write_file("ids.csv",
               "id,email\n"
               "5001,a@example.com\n"
               ",b@example.com\n"
               "5003,c@example.com\n",
               path, sizeof(path));
    snprintf(set_topic, sizeof(set_topic), "topic.prospect=%s", topic);
    snprintf(bs, sizeof(bs), "kafka.bootstrap.servers=%s", bootstrap);
    const char *args[] = {"--set", bs, "--set", set_topic, "--prospect.key", "id", path, NULL};
    CHECK_INT(run_import("ids", args), 3);
    CHECK(log_has("ids", "line 3: prospect id is empty"));
    static pc_t recs[8];
    size_t n = read_all(topic, recs, 8);
    CHECK_INT(n, 2);
    const pc_t *a = by_key(recs, n, "5001");
    CHECK(a && !strcmp(a->prospect_key, "5001") && a->prospect_id == 5001 &&
          !strcmp(a->email, "a@example.com"));
    CHECK(by_key(recs, n, "5003") != NULL);

    /* dry run: no broker needed, same verdicts, nothing published */
    char rfc[512];
    snprintf(rfc, sizeof(rfc), "%s/rfc.csv", dir);
    const char *dry[] = {
        "--set", "kafka.bootstrap.servers=127.0.0.1:1", "--import.dry_run", "true", rfc, NULL};
    int64_t t0 = cs_now_ms();
    CHECK_INT(run_import("dry", dry), 3);
    CHECK(cs_now_ms() - t0 < 5000);
    CHECK(log_has("dry", "dry run"));
    CHECK(log_has("dry", "line 6: expected 13 fields, found 3"));
}

static void test_unusable(void)
{
    char path[512], topic_arg[200], bs[200];
    snprintf(bs, sizeof(bs), "kafka.bootstrap.servers=%s", bootstrap);
    snprintf(topic_arg, sizeof(topic_arg), "topic.prospect=crmsync.test.import-%s", suffix);
    int64_t before = topic_count(topic_arg + strlen("topic.prospect="));

    write_file("noemail.csv", "first_name,last_name\nA,B\n", path, sizeof(path));
    const char *a1[] = {"--set", bs, "--set", topic_arg, path, NULL};
    CHECK_INT(run_import("noemail", a1), 2);
    CHECK(log_has("noemail", "no email column"));

    write_file("unknown.csv", "email,shoe_size\na@example.com,9\n", path, sizeof(path));
    const char *a2[] = {"--set", bs,   "--set", topic_arg, "--import.unknown_columns",
                        "error", path, NULL};
    CHECK_INT(run_import("unknown", a2), 2);
    CHECK(log_has("unknown", "shoe_size"));

    write_file("dupcol.csv", "email,Email\na@example.com,b@example.com\n", path, sizeof(path));
    const char *a3[] = {"--set", bs, "--set", topic_arg, path, NULL};
    CHECK_INT(run_import("dupcol", a3), 2);
    CHECK(log_has("dupcol", "both map to email"));

    const char *a4[] = {"--set", bs, "--set", topic_arg, "/nonexistent/file.csv", NULL};
    CHECK_INT(run_import("nofile", a4), 2);
    const char *a5[] = {"--set", bs, NULL};
    CHECK_INT(run_import("noargs", a5), 2);
    CHECK_INT(topic_count(topic_arg + strlen("topic.prospect=")), before);

    /* a topic that does not exist, a broker that does not answer: exit 1 at once */
    char rfc[512];
    snprintf(rfc, sizeof(rfc), "%s/rfc.csv", dir);
    const char *a6[] = {"--set", bs,  "--set", "topic.prospect=crmsync.test.no-such-topic",
                        rfc,     NULL};
    CHECK_INT(run_import("notopic", a6), 1);
    CHECK(log_has("notopic", "does not exist"));
    const char *a7[] = {"--set", "kafka.bootstrap.servers=127.0.0.1:1", "--set", topic_arg, rfc,
                        NULL};
    CHECK_INT(run_import("nobroker", a7), 1);
    CHECK(log_has("nobroker", "cannot reach Kafka"));
}

static int wait_count(const char *topic, int64_t n, int timeout_ms)
{
    int64_t end = cs_now_ms() + timeout_ms;
    while (cs_now_ms() < end) {
        if (topic_count(topic) >= n)
            return 1;
        usleep(100 * 1000);
    }
    return 0;
}

static void write_rows(int fd, int from, int to)
{
    char line[128];
    for (int i = from; i < to; i++) {
        int len = snprintf(line, sizeof(line), "fifo%d@example.com,F%d\n", i, i);
        REQUIRE(write(fd, line, (size_t)len) == len);
    }
}

/* Rows come through a FIFO the test keeps open: they are published as they are read. */
static void test_fifo_sigterm_and_failure(void)
{
    char topic[128], fifo[512], set_topic[200], bs[200], log[512];
    cs_tproc_t p;
    snprintf(topic, sizeof(topic), "crmsync.test.import-fifo-%s", suffix);
    make_topic(topic, 2);
    snprintf(fifo, sizeof(fifo), "%s/rows.fifo", dir);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    snprintf(set_topic, sizeof(set_topic), "topic.prospect=%s", topic);
    snprintf(bs, sizeof(bs), "kafka.bootstrap.servers=%s", bootstrap);

    /* SIGTERM: what was read is delivered, the exit status says interrupted */
    const char *args[] = {"--set", bs, "--set", set_topic, fifo, NULL};
    snprintf(log, sizeof(log), "%s/sigterm.log", dir);
    REQUIRE(cs_tproc_start(&p, "import", args, log) == 0);
    int fd = open(fifo, O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "email,first_name\n", 17) == 17);
    write_rows(fd, 0, 50);
    CHECK(wait_count(topic, 50, 20000));
    CHECK_INT(cs_tproc_stop(&p, 20000), 4);
    close(fd);
    CHECK(log_has("sigterm", "interrupted"));
    CHECK(log_has("sigterm", "published        50"));
    CHECK_INT(topic_count(topic), 50);

    /* a delivery failure: the topic disappears after the first rows */
    const char *args2[] = {"--set", bs,
                           "--set", set_topic,
                           "--set", "kafka.message.timeout.ms=3000",
                           "--set", "kafka.topic.metadata.refresh.interval.ms=500",
                           fifo,    NULL};
    snprintf(log, sizeof(log), "%s/failure.log", dir);
    REQUIRE(cs_tproc_start(&p, "import", args2, log) == 0);
    fd = open(fifo, O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "email,first_name\n", 17) == 17);
    write_rows(fd, 100, 110);
    CHECK(wait_count(topic, 60, 20000));
    REQUIRE(delete_topic(topic) == 0);
    sleep(2);
    write_rows(fd, 110, 120);
    close(fd);
    CHECK_INT(cs_tproc_wait(&p, 60000), 1);
    CHECK(log_has("failure", "published        10"));
    CHECK(log_has("failure", "delivery failed  10"));
    CHECK(log_has("failure", "first failure"));
}

int main(void)
{
    char err[512];
    bootstrap = cs_test_env("CRMSYNC_BOOTSTRAP", "127.0.0.1:19092");
    snprintf(suffix, sizeof(suffix), "%d-%lld", (int)getpid(), (long long)cs_wall_ms());
    snprintf(dir, sizeof(dir), "/tmp/crmsync-test-import-%s", suffix);
    mkdir(dir, 0755);
    signal(SIGPIPE, SIG_IGN);
    conf = cs_conf_new("test_import", "test", NULL);
    REQUIRE(conf && cs_conf_set(conf, "kafka.bootstrap.servers", bootstrap, err, sizeof(err)) == 0);
    REQUIRE((reg = cs_avro_registry_new(err, sizeof(err))));
    REQUIRE((query = cs_producer_new(conf, NULL, NULL, err, sizeof(err))));

    /* --help names the options and exits 0 */
    const char *help[] = {"--help", NULL};
    CHECK_INT(run_import("help", help), 0);
    CHECK(log_has("help", "import.unknown_columns"));

    test_rfc();
    test_600();
    test_key_id_and_dry_run();
    test_unusable();
    test_fifo_sigterm_and_failure();

    cs_producer_destroy(query);
    cs_avro_registry_destroy(reg);
    cs_conf_destroy(conf);
    return cs_test_report();
}
