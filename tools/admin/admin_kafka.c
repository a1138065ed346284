/* crmsync-admin's Kafka side: handles with bounded timeouts, reading a topic to its end
 * without a consumer group, control records, and a consumer group's offsets and members
 * through the Admin API (nothing here joins the group). */
#include "admin.h"

#include "cs_avro.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_topics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* librdkafka reports from its own threads: the last error is kept under a lock and read
 * through detail(). */
static pthread_mutex_t detail_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_detail(adm_t *a, const char *fac, const char *text)
{
    pthread_mutex_lock(&detail_lock);
    snprintf(a->kafka_error, sizeof(a->kafka_error), "%s: %s", fac, text);
    pthread_mutex_unlock(&detail_lock);
}

/* ": <last librdkafka error>" or "" when none, for messages. */
static const char *detail(adm_t *a, char *buf, size_t size)
{
    pthread_mutex_lock(&detail_lock);
    snprintf(buf, size, "%s%s", a->kafka_error[0] ? ": " : "", a->kafka_error);
    pthread_mutex_unlock(&detail_lock);
    return buf;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    keep_detail(opaque, rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* A command-line tool reports failures itself: librdkafka's errors (connection refused, ...)
 * become the detail of that report instead of log lines; with log.level=debug every line of
 * librdkafka's is logged as well. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= CS_LOG_ERROR)
        keep_detail(rd_kafka_opaque(rk), fac, buf);
    if (cs_log_level_g >= CS_LOG_DEBUG)
        CS_LOG(level < CS_LOG_ERROR   ? CS_LOG_ERROR
               : level > CS_LOG_DEBUG ? CS_LOG_DEBUG
                                      : level,
               "kafka", "%s: %s", fac, buf);
}

static int set_default(adm_t *a, rd_kafka_conf_t *kc, const char *key, const char *value)
{
    char errstr[256];
    if (cs_conf_kafka(a->conf, key))
        return 0;
    if (rd_kafka_conf_set(kc, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return adm_fail(a, -1, "kafka.%s: %s", key, errstr);
    return 0;
}

static rd_kafka_t *kafka_new(adm_t *a, rd_kafka_type_t type,
                             void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *))
{
    char errstr[512], timeout[32];
    rd_kafka_conf_t *kc = cs_kafka_conf_new(a->conf, errstr, sizeof(errstr));
    rd_kafka_t *rk;
    if (!kc) {
        adm_fail(a, ADM_FAIL, "%s", errstr);
        return NULL;
    }
    snprintf(timeout, sizeof(timeout), "%d", a->timeout_ms);
    if (set_default(a, kc, "log.connection.close", "false") ||
        /* librdkafka wants a group.id even for assign(); the reader never joins the group
         * and never commits, so the broker never hears of it. */
        (type == RD_KAFKA_CONSUMER && (set_default(a, kc, "group.id", "crmsync-admin-reader") ||
                                       set_default(a, kc, "enable.auto.commit", "false") ||
                                       set_default(a, kc, "enable.partition.eof", "true"))) ||
        (type == RD_KAFKA_PRODUCER && set_default(a, kc, "message.timeout.ms", timeout)) ||
        /* what the other producers use: the same partition for the same key */
        (dr && (set_default(a, kc, "enable.idempotence", "true") ||
                set_default(a, kc, "partitioner", "murmur2_random")))) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(kc, error_cb);
    rd_kafka_conf_set_log_cb(kc, log_cb);
    if (dr)
        rd_kafka_conf_set_dr_msg_cb(kc, dr);
    rd_kafka_conf_set_opaque(kc, a);
    if (!(rk = rd_kafka_new(type, kc, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(kc);
        adm_fail(a, ADM_FAIL, "%s", errstr);
        return NULL;
    }
    return rk; /* kc is owned by rk */
}

rd_kafka_t *adm_kafka_new(adm_t *a, rd_kafka_type_t type)
{
    return kafka_new(a, type, NULL);
}

static const char *bootstrap(const adm_t *a)
{
    const char *b = cs_conf_kafka(a->conf, "bootstrap.servers");
    return b ? b : CS_KAFKA_DEFAULT_BOOTSTRAP;
}

int adm_kafka_unreachable(adm_t *a, int err)
{
    char d[600];
    if (detail(a, d, sizeof(d))[0])
        return adm_fail(a, ADM_FAIL, "cannot reach Kafka at %s within %d ms%s", bootstrap(a),
                        a->timeout_ms, d);
    return adm_fail(a, ADM_FAIL, "cannot reach Kafka at %s within %d ms (%s)", bootstrap(a),
                    a->timeout_ms, cs_err_str(err));
}

int adm_partition_count(adm_t *a, rd_kafka_t *rk, const char *topic)
{
    int n = cs_kafka_partition_count(rk, topic, a->timeout_ms);
    if (n > 0)
        return n;
    if (n == CS_ERR_NOT_FOUND)
        adm_fail(a, ADM_FAIL,
                 "topic %s does not exist (wrong topic.* option, or run crmsync-admin topics "
                 "create)",
                 topic);
    else
        adm_kafka_unreachable(a, n);
    return -1;
}

/* ---------------------------------------------------------------- reading a topic */

/* Watermarks of one partition. A partition whose leader is moving or not yet known (a topic
 * created a moment ago) answers NOT_LEADER / LEADER_NOT_AVAILABLE for a while: asked again
 * until admin.timeout.ms. Returns 0 or -1 (printed). */
static int watermarks(adm_t *a, rd_kafka_t *rk, const char *topic, int32_t p, int64_t *low,
                      int64_t *high)
{
    int64_t deadline = cs_now_ms() + a->timeout_ms;
    for (;;) {
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, topic, p, low, high, a->timeout_ms);
        if (!err)
            return 0;
        if ((err != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
             err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
             err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
             err != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION && err != RD_KAFKA_RESP_ERR__TRANSPORT) ||
            cs_now_ms() + 100 > deadline || cs_run_stopping()) {
            adm_fail(a, ADM_FAIL, "%s [%d]: cannot read the watermarks: %s", topic, (int)p,
                     rd_kafka_err2str(err));
            return -1;
        }
        cs_run_sleep_ms(100);
    }
}

int adm_read_topic(adm_t *a, const char *topic, int32_t partition, adm_msg_cb_t cb, void *opaque)
{
    rd_kafka_t *rk = adm_kafka_new(a, RD_KAFKA_CONSUMER);
    rd_kafka_topic_partition_list_t *list = NULL;
    int64_t *high = NULL;
    char *done = NULL;
    int nparts, remaining = 0, rc = ADM_FAIL, stop = 0;
    int64_t deadline;
    rd_kafka_resp_err_t err;

    if (!rk)
        return ADM_FAIL;
    if ((nparts = adm_partition_count(a, rk, topic)) < 0)
        goto out;
    if (partition >= nparts) {
        adm_fail(a, ADM_FAIL, "topic %s has no partition %d", topic, (int)partition);
        goto out;
    }
    high = calloc((size_t)nparts, sizeof(*high));
    done = calloc((size_t)nparts, 1);
    list = rd_kafka_topic_partition_list_new(nparts);
    if (!high || !done || !list) {
        adm_fail(a, ADM_FAIL, "out of memory");
        goto out;
    }
    for (int32_t p = 0; p < nparts; p++) {
        int64_t low;
        done[p] = 1;
        if (partition >= 0 && p != partition)
            continue;
        if (watermarks(a, rk, topic, p, &low, &high[p]))
            goto out;
        if (high[p] > low) {
            rd_kafka_topic_partition_list_add(list, topic, p)->offset = low;
            done[p] = 0;
            remaining++;
        }
    }
    if (remaining && (err = rd_kafka_assign(rk, list))) {
        adm_fail(a, ADM_FAIL, "%s: cannot assign: %s", topic, rd_kafka_err2str(err));
        goto out;
    }
    /* The deadline moves with progress: a slow but moving read is not a failure. */
    deadline = cs_now_ms() + a->timeout_ms;
    while (remaining > 0 && !stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (cs_run_stopping()) {
            adm_fail(a, ADM_FAIL, "interrupted");
            if (m)
                rd_kafka_message_destroy(m);
            goto out;
        }
        if (!m) {
            if (cs_now_ms() > deadline) {
                char d[600];
                adm_fail(a, ADM_FAIL, "%s: no progress reading to the end within %d ms%s", topic,
                         a->timeout_ms, detail(a, d, sizeof(d)));
                goto out;
            }
            continue;
        }
        deadline = cs_now_ms() + a->timeout_ms;
        if (m->partition >= 0 && m->partition < nparts && !done[m->partition]) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                done[m->partition] = 1;
                remaining--;
            } else if (!m->err) {
                if (m->offset < high[m->partition])
                    stop = cb(opaque, m) != 0;
                if (m->offset >= high[m->partition] - 1) {
                    done[m->partition] = 1;
                    remaining--;
                }
            } else {
                keep_detail(a, rd_kafka_err2name(m->err), rd_kafka_message_errstr(m));
            }
        }
        rd_kafka_message_destroy(m);
    }
    rc = ADM_OK;
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    free(high);
    free(done);
    rd_kafka_destroy(rk);
    return rc;
}

int32_t adm_key_partition(const char *key, size_t len, int partitions)
{
    /* The producers' partitioner (murmur2_random: murmur2 for every non-NULL key). */
    return rd_kafka_msg_partitioner_murmur2(NULL, key, len, partitions, NULL, NULL);
}

/* ---------------------------------------------------------------- control records */

typedef struct dr_s {
    int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} dr_t;

static void control_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    dr_t *dr = m->_private;
    (void)rk;
    (void)opaque;
    if (!dr)
        return;
    dr->done = 1;
    dr->err = m->err;
    dr->partition = m->partition;
    dr->offset = m->offset;
}

static const char *command_name(int command)
{
    static const char *const names[] = {
#define CS_CMD_NAME_(s) #s,
        CS_AVRO_COMMAND_SYMBOLS(CS_CMD_NAME_)
#undef CS_CMD_NAME_
    };
    return command >= 0 && command < (int)(sizeof(names) / sizeof(*names)) ? names[command] : "?";
}

int adm_send_control(adm_t *a, int command, const char *const *keys, int nkeys,
                     const char *const *error_ids, int nids, json_t **sent)
{
    char errstr[512], id[160], host[64] = "";
    const char *topic = cs_topic_name(a->conf, CS_TOPIC_CONTROL), *user = getenv("USER");
    const char *key = nkeys == 1 ? keys[0] : ""; /* "" = connector-wide or several prospects */
    cs_avro_registry_t *reg = NULL;
    cs_avro_encoder_t *enc = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_resp_err_t kerr;
    avro_value_t *v;
    const void *out;
    size_t out_len;
    dr_t dr;
    int rc = ADM_FAIL, err;
    static int seq;

    memset(&dr, 0, sizeof(dr));
    *sent = NULL;
    if (!(reg = cs_avro_registry_new(errstr, sizeof(errstr))) ||
        !(enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT)) ||
        !(v = cs_avro_encoder_value(enc, CS_AVRO_CONTROL))) {
        adm_fail(a, ADM_FAIL, "Avro setup failed: %s", reg ? "out of memory" : errstr);
        goto out;
    }
    gethostname(host, sizeof(host) - 1);
    snprintf(id, sizeof(id), "adm-%s-%d-%" PRId64 "-%d", host, (int)getpid(), cs_wall_ms(), ++seq);
    if (!user || !*user)
        user = "crmsync-admin";
    err = cs_avro_set_str(v, CS_CTL_COMMAND_ID, id);
    err = err ? err : cs_avro_set_enum(v, CS_CTL_COMMAND, command);
    for (int i = 0; !err && i < nkeys; i++)
        err = cs_avro_array_add_str(v, CS_CTL_PROSPECT_KEYS, keys[i]);
    for (int i = 0; !err && i < nids; i++)
        err = cs_avro_array_add_str(v, CS_CTL_ERROR_IDS, error_ids[i]);
    err = err ? err : cs_avro_set_long(v, CS_CTL_ISSUED_AT, cs_wall_ms());
    err = err ? err : cs_avro_set_str(v, CS_CTL_ISSUED_BY, user);
    if (err || (err = cs_avro_encode(enc, v, &out, &out_len))) {
        adm_fail(a, ADM_FAIL, "cannot encode the Control record: %s (%s)",
                 cs_avro_encoder_error(enc), cs_err_name(err));
        goto out;
    }
    if (!(rk = kafka_new(a, RD_KAFKA_PRODUCER, control_dr)) ||
        adm_partition_count(a, rk, topic) < 0)
        goto out;
    kerr = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                             RD_KAFKA_V_VALUE((void *)out, out_len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&dr),
                             RD_KAFKA_V_END);
    if (kerr) {
        adm_fail(a, ADM_FAIL, "cannot send to %s: %s", topic, rd_kafka_err2str(kerr));
        goto out;
    }
    /* The delivery report is the truth; message.timeout.ms bounds the wait. */
    rd_kafka_flush(rk, a->timeout_ms + 5000);
    if (!dr.done || dr.err) {
        char d[600];
        adm_fail(a, ADM_FAIL, "%s command not delivered to %s: %s%s", command_name(command), topic,
                 dr.done ? rd_kafka_err2str(dr.err) : "no delivery report in time",
                 detail(a, d, sizeof(d)));
        goto out;
    }
    *sent =
        json_pack("{s:s, s:s, s:[], s:[], s:s, s:s, s:i, s:I}", "command", command_name(command),
                  "command_id", id, "prospect_keys", "error_ids", "issued_by", user, "topic", topic,
                  "partition", (int)dr.partition, "offset", (json_int_t)dr.offset);
    for (int i = 0; *sent && i < nkeys; i++)
        json_array_append_new(json_object_get(*sent, "prospect_keys"), json_string(keys[i]));
    for (int i = 0; *sent && i < nids; i++)
        json_array_append_new(json_object_get(*sent, "error_ids"), json_string(error_ids[i]));
    rc = *sent ? ADM_OK : adm_fail(a, ADM_FAIL, "out of memory");
out:
    if (rk)
        rd_kafka_destroy(rk);
    cs_avro_encoder_destroy(enc);
    cs_avro_registry_destroy(reg);
    return rc;
}

/* ---------------------------------------------------------------- groups */

/* Runs one Admin API request whose result lands on q; returns the event or NULL (printed). */
static rd_kafka_event_t *admin_wait(adm_t *a, rd_kafka_queue_t *q, const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, a->timeout_ms + 2000);
    char d[600];
    if (!ev) {
        adm_fail(a, ADM_FAIL, "%s: no answer from Kafka at %s within %d ms%s", what, bootstrap(a),
                 a->timeout_ms, detail(a, d, sizeof(d)));
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        adm_fail(a, ADM_FAIL, "%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static rd_kafka_AdminOptions_t *admin_options(adm_t *a, rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
    char errstr[256];
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, op);
    if (ao)
        rd_kafka_AdminOptions_set_request_timeout(ao, a->timeout_ms, errstr, sizeof(errstr));
    return ao;
}

int adm_input_parts(adm_t *a, rd_kafka_t *rk, const char *group, adm_part_t **parts, int *n)
{
    static const cs_topic_id_t inputs[] = {CS_TOPIC_PROSPECT, CS_TOPIC_ACTIVITY, CS_TOPIC_CRM};
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_ListConsumerGroupOffsets_t *req = NULL;
    rd_kafka_AdminOptions_t *ao = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    adm_part_t *ps = NULL;
    int count = 0, rc = ADM_FAIL;

    *parts = NULL;
    *n = 0;
    for (size_t t = 0; t < sizeof(inputs) / sizeof(*inputs); t++) {
        const char *topic = cs_topic_name(a->conf, inputs[t]);
        int np = adm_partition_count(a, rk, topic);
        adm_part_t *grown;
        if (np < 0)
            goto out;
        if (!(grown = realloc(ps, (size_t)(count + np) * sizeof(*ps)))) {
            adm_fail(a, ADM_FAIL, "out of memory");
            goto out;
        }
        ps = grown;
        for (int32_t p = 0; p < np; p++, count++) {
            adm_part_t *x = &ps[count];
            memset(x, 0, sizeof(*x));
            x->topic = topic;
            x->partition = p;
            x->committed = x->target = -1;
            if (watermarks(a, rk, topic, p, &x->low, &x->high))
                goto out;
        }
    }

    /* The group's committed offsets, read without joining it. */
    list = rd_kafka_topic_partition_list_new(count);
    for (int i = 0; list && i < count; i++)
        rd_kafka_topic_partition_list_add(list, ps[i].topic, ps[i].partition);
    q = rd_kafka_queue_new(rk);
    ao = admin_options(a, rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    req = list ? rd_kafka_ListConsumerGroupOffsets_new(group, list) : NULL;
    if (!q || !ao || !req) {
        adm_fail(a, ADM_FAIL, "out of memory");
        goto out;
    }
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, ao, q);
    if (!(ev = admin_wait(a, q, "committed offsets")))
        goto out;
    {
        size_t ng = 0;
        const rd_kafka_ListConsumerGroupOffsets_result_t *res =
            rd_kafka_event_ListConsumerGroupOffsets_result(ev);
        const rd_kafka_group_result_t **gr =
            res ? rd_kafka_ListConsumerGroupOffsets_result_groups(res, &ng) : NULL;
        const rd_kafka_topic_partition_list_t *got;
        if (!gr || ng < 1) {
            adm_fail(a, ADM_FAIL, "committed offsets: empty answer");
            goto out;
        }
        if (rd_kafka_group_result_error(gr[0])) {
            adm_fail(a, ADM_FAIL, "committed offsets of group %s: %s", group,
                     rd_kafka_error_string(rd_kafka_group_result_error(gr[0])));
            goto out;
        }
        got = rd_kafka_group_result_partitions(gr[0]);
        for (int i = 0; got && i < got->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &got->elems[i];
            for (int k = 0; k < count; k++)
                if (ps[k].partition == tp->partition && !strcmp(ps[k].topic, tp->topic))
                    ps[k].committed = !tp->err && tp->offset >= 0 ? tp->offset : -1;
        }
    }
    *parts = ps;
    *n = count;
    ps = NULL;
    rc = ADM_OK;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (req)
        rd_kafka_ListConsumerGroupOffsets_destroy(req);
    if (ao)
        rd_kafka_AdminOptions_destroy(ao);
    if (q)
        rd_kafka_queue_destroy(q);
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    free(ps);
    return rc;
}

int adm_group_members(adm_t *a, rd_kafka_t *rk, const char *group, json_t **members, char *state,
                      size_t state_size)
{
    rd_kafka_AdminOptions_t *ao = admin_options(a, rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_ConsumerGroupDescription_t **gd;
    const rd_kafka_error_t *gerr;
    size_t ng = 0, nm = 0;
    int rc = -1;
    json_t *arr = json_array();

    if (members)
        *members = NULL;
    snprintf(state, state_size, "Unknown");
    if (!ao || !q || !arr) {
        adm_fail(a, ADM_FAIL, "out of memory");
        goto out;
    }
    rd_kafka_DescribeConsumerGroups(rk, &group, 1, ao, q);
    if (!(ev = admin_wait(a, q, "describe group")))
        goto out;
    gd = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &ng);
    if (!gd || ng < 1) {
        adm_fail(a, ADM_FAIL, "describe group %s: empty answer", group);
        goto out;
    }
    gerr = rd_kafka_ConsumerGroupDescription_error(gd[0]);
    if (gerr && rd_kafka_error_code(gerr) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
        snprintf(state, state_size, "Dead"); /* never used or expired: no members */
        rc = 0;
        goto out;
    }
    if (gerr) {
        adm_fail(a, ADM_FAIL, "describe group %s: %s", group, rd_kafka_error_string(gerr));
        goto out;
    }
    snprintf(state, state_size, "%s",
             rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(gd[0])));
    nm = rd_kafka_ConsumerGroupDescription_member_count(gd[0]);
    for (size_t i = 0; i < nm; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(gd[0], i);
        const rd_kafka_MemberAssignment_t *as = rd_kafka_MemberDescription_assignment(m);
        const rd_kafka_topic_partition_list_t *pl =
            as ? rd_kafka_MemberAssignment_partitions(as) : NULL;
        json_t *pj = json_array();
        for (int k = 0; pl && k < pl->cnt; k++)
            json_array_append_new(
                pj, json_sprintf("%s:%d", pl->elems[k].topic, (int)pl->elems[k].partition));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "client_id",
                                             rd_kafka_MemberDescription_client_id(m), "host",
                                             rd_kafka_MemberDescription_host(m), "consumer_id",
                                             rd_kafka_MemberDescription_consumer_id(m),
                                             "partitions", pj));
    }
    rc = (int)nm;
out:
    if (members && rc >= 0) {
        *members = arr;
        arr = NULL;
    }
    json_decref(arr);
    if (ev)
        rd_kafka_event_destroy(ev);
    if (ao)
        rd_kafka_AdminOptions_destroy(ao);
    if (q)
        rd_kafka_queue_destroy(q);
    return rc;
}

int adm_group_commit(adm_t *a, rd_kafka_t *rk, const char *group, const adm_part_t *parts, int n)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    rd_kafka_AdminOptions_t *ao = admin_options(a, rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AlterConsumerGroupOffsets_t *req = NULL;
    rd_kafka_event_t *ev = NULL;
    int rc = ADM_FAIL;

    for (int i = 0; list && i < n; i++)
        rd_kafka_topic_partition_list_add(list, parts[i].topic, parts[i].partition)->offset =
            parts[i].target;
    if (!list || !ao || !q || !(req = rd_kafka_AlterConsumerGroupOffsets_new(group, list))) {
        adm_fail(a, ADM_FAIL, "out of memory");
        goto out;
    }
    rd_kafka_AlterConsumerGroupOffsets(rk, &req, 1, ao, q);
    if (!(ev = admin_wait(a, q, "commit offsets")))
        goto out;
    {
        size_t ng = 0;
        const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
            rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &ng);
        const rd_kafka_topic_partition_list_t *got;
        int bad = 0;
        if (!gr || ng < 1) {
            adm_fail(a, ADM_FAIL, "commit offsets: empty answer");
            goto out;
        }
        if (rd_kafka_group_result_error(gr[0])) {
            adm_fail(a, ADM_FAIL, "commit offsets of group %s: %s", group,
                     rd_kafka_error_string(rd_kafka_group_result_error(gr[0])));
            goto out;
        }
        got = rd_kafka_group_result_partitions(gr[0]);
        for (int i = 0; got && i < got->cnt; i++)
            if (got->elems[i].err) {
                adm_fail(a, ADM_FAIL, "commit offset of %s [%d]: %s", got->elems[i].topic,
                         (int)got->elems[i].partition, rd_kafka_err2str(got->elems[i].err));
                bad++;
            }
        if (bad)
            goto out;
    }
    rc = ADM_OK;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (req)
        rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    if (ao)
        rd_kafka_AdminOptions_destroy(ao);
    if (q)
        rd_kafka_queue_destroy(q);
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    return rc;
}
