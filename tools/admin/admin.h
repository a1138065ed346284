/* crmsync-admin: subcommands and the helpers they share.
 *
 *   admin_main.c      options, dispatch
 *   admin_util.c      arguments, tables, JSON output, times, replica endpoints (HTTP)
 *   admin_kafka.c     Kafka handles, reading a topic to its end, control records, group
 *                     offsets and members
 *   admin_<name>.c    one subcommand each (topics, status, queue, errors, prospect, control,
 *                     replay)
 *
 * Every subcommand returns the process exit status: ADM_OK (0), ADM_FAIL (1, the command
 * could not do its job; a message is on stderr) or ADM_USAGE (2, bad arguments; a message
 * is on stderr). Results go to stdout: a human table, or one JSON document with --json.
 * One thread; nothing here is thread-safe. */
#ifndef CS_ADMIN_H
#define CS_ADMIN_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "cs_conf.h"

enum { ADM_OK = 0, ADM_FAIL = 1, ADM_USAGE = 2 };

/* What every subcommand gets. */
typedef struct adm_s {
    cs_conf_t *conf;
    int json;              /* --json: one JSON document on stdout */
    int timeout_ms;        /* admin.timeout.ms: each Kafka request or HTTP call */
    const char *cmd;       /* "errors list", for messages */
    char kafka_error[512]; /* the last error librdkafka reported on any handle ("" none) */
} adm_t;

/* The option table of crmsync-admin (admin.consumers, admin.timeout.ms, group.id). */
extern const cs_opt_t adm_opts[];

/* ---------------------------------------------------------------- admin_util.c */

/* Prints "crmsync-admin <cmd>: <message>" on stderr and returns status (for
 * `return adm_fail(a, ADM_FAIL, "...")`). */
int adm_fail(const adm_t *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Subcommand arguments. */
typedef enum {
    ADM_ARG_FLAG, /* out: int *, set to 1 */
    ADM_ARG_STR,  /* out: const char ** (borrowed from argv) */
    ADM_ARG_INT,  /* out: long long *, a decimal integer >= 0 */
    ADM_ARG_LIST, /* out: adm_list_t *, repeatable */
} adm_arg_kind_t;

typedef struct adm_list_s {
    const char **v; /* borrowed from argv; the array is malloc'd: adm_list_free() */
    int n;
} adm_list_t;

typedef struct adm_arg_s {
    const char *name; /* "--limit"; NULL ends the table */
    adm_arg_kind_t kind;
    void *out;
} adm_arg_t;

/* Parses a subcommand's argv (argv[0] is its first argument, not its name): options of the
 * table (--name VALUE or --name=VALUE) and positional arguments, which go to pos (the whole
 * argv is large enough; *npos gets the count). "--help" prints help on stdout.
 * Returns ADM_OK, ADM_USAGE (message on stderr, help hint) or -1 when --help was served
 * (the command then exits 0). */
int adm_parse_args(adm_t *a, const char *help, const adm_arg_t *args, int argc, char **argv,
                   char **pos, int *npos);

void adm_list_free(adm_list_t *l);

/* A text table: columns sized to their widest cell, two spaces apart. A header starting
 * with '>' is right-aligned (the '>' is not printed). Cells are copied. */
typedef struct adm_table_s adm_table_t;
adm_table_t *adm_table_new(int ncols, const char *const *headers);
/* Appends one cell (printf format); rows wrap after ncols cells. */
void adm_table_cell(adm_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Number of complete rows. */
int adm_table_rows(const adm_table_t *t);
void adm_table_print(const adm_table_t *t, FILE *out);
void adm_table_destroy(adm_table_t *t); /* accepts NULL */

/* Prints doc as indented JSON on stdout, then decrefs it. Returns ADM_OK or ADM_FAIL. */
int adm_print_json(json_t *doc);

/* Formats epoch milliseconds as "2024-05-01T14:11:12.345Z"; "-" for ms <= 0.
 * Returns buf. */
const char *adm_time(int64_t ms, char *buf, size_t size);

/* Normalises a prospect key as the producers do: surrounding whitespace trimmed, ASCII
 * lower-cased (an e-mail key; a numeric prospect-id key is unchanged). Writes into out.
 * Returns 0, or -1 when the key is empty or does not fit. */
int adm_key_normalize(const char *in, char *out, size_t size);

/* The replica endpoints of admin.consumers, split on ','. Returns the count (0 when none
 * configured); urls[] are malloc'd (adm_replicas_free). */
int adm_replicas(const adm_t *a, char ***urls);
void adm_replicas_free(char **urls, int n);

/* GET base + path of a replica. Returns the parsed JSON body (new reference) and the HTTP
 * status in *status (0 when the replica did not answer, errstr says why). NULL when the
 * answer is not JSON. */
json_t *adm_replica_get(const adm_t *a, const char *base, const char *path, int *status,
                        char *errstr, size_t errstr_size);

/* ---------------------------------------------------------------- admin_kafka.c */

/* A Kafka handle of the given type (a producer also serves metadata, watermarks and admin
 * requests) with the admin's timeouts; its errors are recorded in a->kafka_error rather
 * than logged. NULL on failure, message printed. Caller destroys with rd_kafka_destroy(). */
rd_kafka_t *adm_kafka_new(adm_t *a, rd_kafka_type_t type);

/* Prints "cannot reach Kafka at <bootstrap> within N ms: <librdkafka's last error>" for a
 * failed request (err: its CS_ERR_* code) and returns ADM_FAIL. */
int adm_kafka_unreachable(adm_t *a, int err);

/* Partition count of topic (> 0), or -1 with a clear message printed (unreachable broker,
 * missing topic). */
int adm_partition_count(adm_t *a, rd_kafka_t *rk, const char *topic);

/* Reads topic from its low to its high watermark as of the call (one partition, or all when
 * partition < 0), without a consumer group, and calls cb for each message in partition
 * order. cb returns 0 to go on, non-zero to stop. Returns ADM_OK or ADM_FAIL (printed). */
typedef int (*adm_msg_cb_t)(void *opaque, const rd_kafka_message_t *msg);
int adm_read_topic(adm_t *a, const char *topic, int32_t partition, adm_msg_cb_t cb, void *opaque);

/* Partition of key under the producers' partitioner (murmur2, as the Java client). */
int32_t adm_key_partition(const char *key, size_t len, int partitions);

/* Sends one Control record (command = CS_COMMAND_*) with the given prospect keys and error
 * ids to the control topic and waits for its delivery report. command_id is unique
 * ("adm-<host>-<pid>-<ms>"), issued_at now, issued_by $USER or "crmsync-admin". On success
 * fills *sent (new reference: command, command_id, keys, ids, topic, partition, offset)
 * and returns ADM_OK; ADM_FAIL with a message printed otherwise. */
int adm_send_control(adm_t *a, int command, const char *const *keys, int nkeys,
                     const char *const *error_ids, int nids, json_t **sent);

/* One partition of an input topic, as status and replay see it. */
typedef struct adm_part_s {
    const char *topic; /* borrowed from the config */
    int32_t partition;
    int64_t low, high; /* watermarks */
    int64_t committed; /* the group's committed offset, -1 when none */
    int64_t target;    /* replay: where the group would start */
} adm_part_t;

/* Every partition of the three input topics with their watermarks and the group's committed
 * offsets. *parts is malloc'd (free()). Returns ADM_OK or ADM_FAIL (printed). */
int adm_input_parts(adm_t *a, rd_kafka_t *rk, const char *group, adm_part_t **parts, int *n);

/* The group's live members (DescribeConsumerGroups). *members (may be NULL) gets a new JSON
 * array of {client_id, host, consumer_id, partitions: ["topic:p", ...]}; *state the group
 * state ("Stable", "Empty", "Dead" for an unknown group, ...). Returns the member count
 * (>= 0) or -1 on failure (printed). */
int adm_group_members(adm_t *a, rd_kafka_t *rk, const char *group, json_t **members, char *state,
                      size_t state_size);

/* Commits parts[i].target as the group's offset of every partition
 * (AlterConsumerGroupOffsets). Fails (the broker refuses) while the group has members.
 * Returns ADM_OK or ADM_FAIL (printed, per partition). */
int adm_group_commit(adm_t *a, rd_kafka_t *rk, const char *group, const adm_part_t *parts, int n);

/* ---------------------------------------------------------------- subcommands */

int admin_topics(adm_t *a, int argc, char **argv);
int admin_status(adm_t *a, int argc, char **argv);
int admin_queue(adm_t *a, int argc, char **argv);
int admin_errors(adm_t *a, int argc, char **argv);
int admin_prospect(adm_t *a, int argc, char **argv);
int admin_sync_now(adm_t *a, int argc, char **argv);
int admin_pause(adm_t *a, int argc, char **argv);
int admin_unpause(adm_t *a, int argc, char **argv);
int admin_replay(adm_t *a, int argc, char **argv);

/* admin_errors.c: the latest record of each error, for errors and prospect. */
typedef struct adm_error_s {
    char *error_id, *key, *code, *message;
    int direction; /* CS_DIRECTION_* */
    int32_t attempts;
    int64_t first_at, last_at;
    int32_t partition; /* where the latest record is */
    int64_t offset;
} adm_error_t;

/* Reads the errors topic (all partitions, or one when partition >= 0) and keeps the latest
 * record of each error_id, ordered by last_at then error_id. Returns the count (>= 0) with
 * *out malloc'd (adm_errors_free), or -1 (printed). */
int adm_errors_read(adm_t *a, int32_t partition, adm_error_t **out);
void adm_errors_free(adm_error_t *e, int n);
json_t *adm_error_json(const adm_error_t *e);
const char *adm_direction_name(int direction);

#endif
