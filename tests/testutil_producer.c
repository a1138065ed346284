#include "testutil_producer.h"

#include "cs_err.h"
#include "cs_http.h"
#include "cs_run.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const topic_suffix[CS_TOPIC_COUNT_] = {
    "prospect", "activity", "crm", "control", "state", "errors", "cursors"};
static const char *const topic_key[CS_TOPIC_COUNT_] = {
    "topic.prospect", "topic.activity", "topic.crm",    "topic.control",
    "topic.state",    "topic.errors",   "topic.cursors"};

int cs_tprod_env_init(cs_tprod_env_t *e, const char *name, int partitions)
{
    char err[512], num[16];
    cs_topic_spec_t specs[CS_TOPIC_COUNT_];
    const char *bootstrap = getenv("CRMSYNC_BOOTSTRAP");
    memset(e, 0, sizeof(*e));
    if (!bootstrap || !*bootstrap)
        bootstrap = "127.0.0.1:19092";
    snprintf(e->prefix, sizeof(e->prefix), "crmsync.test.%s.%d.%" PRId64, name, (int)getpid(),
             cs_wall_ms());
    snprintf(e->dir, sizeof(e->dir), "/tmp/crmsync-%s-XXXXXX", name);
    if (!mkdtemp(e->dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(e->conf_path, sizeof(e->conf_path), "%s/producer.conf", e->dir);
    e->partitions = partitions;
    e->conf = cs_conf_new("test", "test", NULL);
    if (!e->conf || cs_conf_add_opts(e->conf, cs_topics_opts) ||
        cs_conf_set(e->conf, "kafka.bootstrap.servers", bootstrap, err, sizeof(err)))
        return -1;
    snprintf(num, sizeof(num), "%d", partitions);
    cs_conf_set(e->conf, "topics.partitions", num, err, sizeof(err));
    for (int t = 0; t < CS_TOPIC_COUNT_; t++) {
        snprintf(e->topics[t], sizeof(e->topics[t]), "%s.%s", e->prefix, topic_suffix[t]);
        cs_conf_set(e->conf, topic_key[t], e->topics[t], err, sizeof(err));
    }
    cs_topics_specs(e->conf, specs);
    if (cs_kafka_ensure_topics(e->conf, specs, CS_TOPIC_COUNT_, 30000, err, sizeof(err))) {
        fprintf(stderr, "cannot create the test topics at %s: %s\n", bootstrap, err);
        return -1;
    }
    return 0;
}

void cs_tprod_env_destroy(cs_tprod_env_t *e, int keep)
{
    cs_conf_destroy(e->conf);
    e->conf = NULL;
    if (!e->dir[0])
        return;
    if (keep) {
        fprintf(stderr, "logs kept in %s\n", e->dir);
        return;
    }
    DIR *d = opendir(e->dir);
    struct dirent *de;
    char path[600];
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", e->dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(e->dir);
}

int cs_tprod_write_config(cs_tprod_env_t *e, const char *base_url, const char *extra)
{
    FILE *f = fopen(e->conf_path, "w");
    if (!f)
        return -1;
    fprintf(f, "kafka.bootstrap.servers=%s\n", cs_conf_kafka(e->conf, "bootstrap.servers"));
    fprintf(f, "topics.partitions=%d\n", e->partitions);
    for (int t = 0; t < CS_TOPIC_COUNT_; t++)
        fprintf(f, "%s=%s\n", topic_key[t], e->topics[t]);
    fprintf(f,
            "crm.login_url=%s\n"
            "crm.client_id=crmsync-sandbox-client\n"
            "crm.client_secret=sandbox-secret\n"
            "mkt.base_url=%s\n"
            "mkt.business_unit_id=0Uv5g000000SBOXCA4\n"
            "http.port=0\n"
            "retry.backoff.ms=50\n"
            "retry.backoff.max.ms=1000\n"
            "retry.rate_limit.backoff.ms=200\n"
            "retry.rate_limit.backoff.max.ms=1000\n",
            base_url, base_url);
    if (extra)
        fputs(extra, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ reader */

int cs_tprod_reader_init(cs_tprod_reader_t *r, const cs_tprod_env_t *e, const char *topic)
{
    char err[512], group[160];
    memset(r, 0, sizeof(*r));
    snprintf(group, sizeof(group), "crmsync-test-reader-%d-%" PRId64, (int)getpid(), cs_now_us());
    r->reg = cs_avro_registry_new(err, sizeof(err));
    r->dec = r->reg ? cs_avro_decoder_new(r->reg) : NULL;
    r->consumer = cs_consumer_new(e->conf, group, &topic, 1, NULL, err, sizeof(err));
    if (!r->reg || !r->dec || !r->consumer) {
        fprintf(stderr, "reader for %s: %s\n", topic, err);
        return -1;
    }
    return 0;
}

void cs_tprod_reader_close(cs_tprod_reader_t *r)
{
    cs_consumer_destroy(r->consumer);
    cs_avro_decoder_destroy(r->dec);
    cs_avro_registry_destroy(r->reg);
    free(r->msgs);
    memset(r, 0, sizeof(*r));
}

static void cp_str(char *dst, size_t n, const avro_value_t *v, int field)
{
    const char *s = cs_avro_get_str(v, field, NULL);
    snprintf(dst, n, "%s", s ? s : "");
}

static void decode(cs_tprod_reader_t *r, const rd_kafka_message_t *m, cs_tprod_msg_t *out)
{
    cs_avro_decoded_t d;
    const avro_value_t *v;
    bool b;
    int32_t i32;
    memset(out, 0, sizeof(*out));
    out->partition = m->partition;
    out->offset = m->offset;
    out->has_key = m->key != NULL;
    if (m->key)
        snprintf(out->key, sizeof(out->key), "%.*s", (int)m->key_len, (const char *)m->key);
    out->schema = -1;
    out->prospect_id = out->assigned_user_id = out->last_activity_at = -1;
    if (m->payload)
        snprintf(out->raw, sizeof(out->raw), "%.*s", (int)m->len, (const char *)m->payload);
    if (!m->payload || cs_avro_decode(r->dec, m->payload, m->len, &d))
        return;
    out->schema = d.schema;
    v = d.value;
    switch (d.schema) {
    case CS_AVRO_PROSPECT_CHANGE:
        cp_str(out->event_id, sizeof(out->event_id), v, CS_PC_EVENT_ID);
        cp_str(out->prospect_key, sizeof(out->prospect_key), v, CS_PC_PROSPECT_KEY);
        cp_str(out->email, sizeof(out->email), v, CS_PC_EMAIL);
        out->email_null = cs_avro_is_null(v, CS_PC_EMAIL);
        cp_str(out->first_name, sizeof(out->first_name), v, CS_PC_FIRST_NAME);
        cp_str(out->last_name, sizeof(out->last_name), v, CS_PC_LAST_NAME);
        cp_str(out->company, sizeof(out->company), v, CS_PC_COMPANY);
        cp_str(out->title, sizeof(out->title), v, CS_PC_JOB_TITLE);
        cp_str(out->grade, sizeof(out->grade), v, CS_PC_GRADE);
        cp_str(out->crm_lead_id, sizeof(out->crm_lead_id), v, CS_PC_CRM_LEAD_ID);
        cs_avro_get_long(v, CS_PC_PROSPECT_ID, &out->prospect_id);
        cs_avro_get_long(v, CS_PC_UPDATED_AT, &out->updated_at);
        cs_avro_get_long(v, CS_PC_LAST_ACTIVITY_AT, &out->last_activity_at);
        cs_avro_get_long(v, CS_PC_EVENT_TIME, &out->event_time);
        cs_avro_get_long(v, CS_PC_ASSIGNED_USER_ID, &out->assigned_user_id);
        out->cause = cs_avro_get_enum(v, CS_PC_CAUSE);
        out->opted_out = cs_avro_get_bool(v, CS_PC_OPTED_OUT, &b) && b;
        out->do_not_sync = cs_avro_get_bool(v, CS_PC_DO_NOT_SYNC, &b) && b;
        out->score = cs_avro_get_int(v, CS_PC_SCORE, &i32) ? i32 : -1;
        out->ncustom = (int)cs_avro_count(v, CS_PC_CUSTOM_FIELDS);
        if (out->ncustom) {
            const char *k = NULL, *val = NULL;
            cs_avro_get_map_entry(v, CS_PC_CUSTOM_FIELDS, 0, &k, &val);
            snprintf(out->custom_key, sizeof(out->custom_key), "%s", k ? k : "");
            snprintf(out->custom_value, sizeof(out->custom_value), "%s", val ? val : "(null)");
        }
        break;
    case CS_AVRO_CRM_CHANGE:
        cp_str(out->event_id, sizeof(out->event_id), v, CS_CRM_EVENT_ID);
        cp_str(out->prospect_key, sizeof(out->prospect_key), v, CS_CRM_PROSPECT_KEY);
        cp_str(out->email, sizeof(out->email), v, CS_CRM_EMAIL);
        out->email_null = cs_avro_is_null(v, CS_CRM_EMAIL);
        cp_str(out->first_name, sizeof(out->first_name), v, CS_CRM_FIRST_NAME);
        cp_str(out->last_name, sizeof(out->last_name), v, CS_CRM_LAST_NAME);
        cp_str(out->company, sizeof(out->company), v, CS_CRM_COMPANY);
        cp_str(out->title, sizeof(out->title), v, CS_CRM_TITLE);
        cp_str(out->crm_id, sizeof(out->crm_id), v, CS_CRM_CRM_ID);
        cp_str(out->owner_id, sizeof(out->owner_id), v, CS_CRM_OWNER_ID);
        cp_str(out->last_modified_by, sizeof(out->last_modified_by), v, CS_CRM_LAST_MODIFIED_BY_ID);
        cp_str(out->external_id, sizeof(out->external_id), v, CS_CRM_EXTERNAL_ID);
        cs_avro_get_long(v, CS_CRM_SYSTEM_MODSTAMP, &out->system_modstamp);
        cs_avro_get_long(v, CS_CRM_LAST_MODIFIED_DATE, &out->last_modified_date);
        cs_avro_get_long(v, CS_CRM_EVENT_TIME, &out->event_time);
        out->object = cs_avro_get_enum(v, CS_CRM_OBJECT);
        out->deleted = cs_avro_get_bool(v, CS_CRM_DELETED, &b) && b;
        out->opted_out = cs_avro_get_bool(v, CS_CRM_OPTED_OUT, &b) && b;
        out->ncustom = (int)cs_avro_count(v, CS_CRM_CUSTOM_FIELDS);
        if (out->ncustom) {
            const char *k = NULL, *val = NULL;
            cs_avro_get_map_entry(v, CS_CRM_CUSTOM_FIELDS, 0, &k, &val);
            snprintf(out->custom_key, sizeof(out->custom_key), "%s", k ? k : "");
            snprintf(out->custom_value, sizeof(out->custom_value), "%s", val ? val : "(null)");
        }
        break;
    case CS_AVRO_SYNC_ERROR:
        cp_str(out->event_id, sizeof(out->event_id), v, CS_SE_ERROR_ID);
        cp_str(out->prospect_key, sizeof(out->prospect_key), v, CS_SE_PROSPECT_KEY);
        cp_str(out->code, sizeof(out->code), v, CS_SE_CODE);
        cp_str(out->message, sizeof(out->message), v, CS_SE_MESSAGE);
        break;
    default:
        break;
    }
}

size_t cs_tprod_reader_poll(cs_tprod_reader_t *r, int timeout_ms)
{
    int64_t deadline = cs_now_ms() + timeout_ms, last = 0;
    size_t got = 0;
    while (cs_now_ms() < deadline) {
        rd_kafka_message_t *m = cs_consumer_poll(r->consumer, 100);
        if (!m) {
            if (got && cs_now_ms() - last > 300)
                break;
            continue;
        }
        if (!m->err) {
            if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 64;
                cs_tprod_msg_t *nm = realloc(r->msgs, cap * sizeof(*nm));
                if (!nm) {
                    rd_kafka_message_destroy(m);
                    break;
                }
                r->msgs = nm;
                r->cap = cap;
            }
            decode(r, m, &r->msgs[r->n++]);
            got++;
            last = cs_now_ms();
        }
        rd_kafka_message_destroy(m);
    }
    return got;
}

int cs_tprod_reader_wait(cs_tprod_reader_t *r, int (*pred)(cs_tprod_reader_t *r, void *opaque),
                         void *opaque, int timeout_ms)
{
    int64_t deadline = cs_now_ms() + timeout_ms;
    for (;;) {
        if (pred(r, opaque))
            return 1;
        if (cs_now_ms() >= deadline)
            return 0;
        cs_tprod_reader_poll(r, 500);
    }
}

const cs_tprod_msg_t *cs_tprod_last_by_key(const cs_tprod_reader_t *r, const char *prospect_key)
{
    for (size_t i = r->n; i-- > 0;)
        if (r->msgs[i].schema >= 0 && !strcmp(r->msgs[i].prospect_key, prospect_key))
            return &r->msgs[i];
    return NULL;
}

const cs_tprod_msg_t *cs_tprod_last_by_crm_id(const cs_tprod_reader_t *r, const char *crm_id)
{
    for (size_t i = r->n; i-- > 0;)
        if (r->msgs[i].schema >= 0 && !strcmp(r->msgs[i].crm_id, crm_id))
            return &r->msgs[i];
    return NULL;
}

size_t cs_tprod_count_event_id(const cs_tprod_reader_t *r, const char *event_id)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += !strcmp(r->msgs[i].event_id, event_id);
    return n;
}

/* ------------------------------------------------------------------ misc */

int32_t cs_tprod_murmur2_partition(const void *key, size_t len, int partitions)
{
    /* Kafka's Utils.murmur2 (seed 0x9747b28c), then toPositive(h) % partitions */
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    const unsigned char *data = key;
    uint32_t h = 0x9747b28c ^ (uint32_t)len;
    size_t len4 = len / 4;
    for (size_t i = 0; i < len4; i++) {
        uint32_t k = (uint32_t)data[i * 4] | (uint32_t)data[i * 4 + 1] << 8 |
                     (uint32_t)data[i * 4 + 2] << 16 | (uint32_t)data[i * 4 + 3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)data[(len & ~3u) + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[(len & ~3u) + 1] << 8;
        /* fall through */
    case 1:
        h ^= data[len & ~3u];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)((h & 0x7fffffff) % (uint32_t)partitions);
}

int cs_tprod_log_port(const char *log_path)
{
    char line[1024];
    int port = 0;
    FILE *f = fopen(log_path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "metrics on http://");
        const char *colon = p ? strchr(p + 18, ':') : NULL;
        if (colon)
            port = atoi(colon + 1);
    }
    fclose(f);
    return port;
}

int cs_tprod_http_get(int port, const char *path, char *buf, size_t size)
{
    char url[256], err[256];
    cs_http_result_t res;
    cs_http_t *h = cs_http_new(NULL, err, sizeof(err));
    int status;
    if (!h)
        return 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    cs_http_request(h, "GET", url, NULL, NULL, 0, &res);
    status = res.status;
    if (size)
        snprintf(buf, size, "%s", res.body ? res.body : "");
    cs_http_destroy(h);
    return status;
}

double cs_tprod_metric(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (!strncmp(line, prefix, n)) {
            const char *sp = strchr(line, ' ');
            const char *nl = strchr(line, '\n');
            if (sp && (!nl || sp < nl))
                return atof(sp + 1);
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

int cs_tprod_read_cursor(const cs_tprod_env_t *e, const char *key, char *buf, size_t size)
{
    cs_tprod_reader_t r;
    if (cs_tprod_reader_init(&r, e, e->topics[CS_TOPIC_CURSORS]))
        return -1;
    cs_tprod_reader_poll(&r, 5000);
    snprintf(buf, size, "%s", "");
    for (size_t i = 0; i < r.n; i++)
        if (r.msgs[i].has_key && !strcmp(r.msgs[i].key, key))
            snprintf(buf, size, "%s", r.msgs[i].raw);
    cs_tprod_reader_close(&r);
    return 0;
}
