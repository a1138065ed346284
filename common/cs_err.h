/* cs_err: the one error convention of crmsync.
 *
 * Every fallible function returns int: 0 (CS_OK) on success, a negative CS_ERR_* code on
 * failure. Human detail goes into a caller-supplied errstr buffer where a function takes
 * one. Codes are grouped by how a caller should react (cs_err_class()). */
#ifndef CS_ERR_H
#define CS_ERR_H

#include <stddef.h>

/* X(NAME, value, class, message). class is OK, RETRY or FATAL (see cs_class_t). */
#define CS_ERR_MAP(X)                                                                              \
    X(OK, 0, OK, "success")                                                                        \
    X(NOMEM, -1, FATAL, "out of memory")                                                           \
    X(INVAL, -2, FATAL, "invalid argument")                                                        \
    X(CONFIG, -3, FATAL, "configuration error")                                                    \
    X(IO, -4, RETRY, "I/O error")                                                                  \
    X(PARSE, -5, FATAL, "malformed input")                                                         \
    X(TRUNCATED, -6, FATAL, "truncated input")                                                     \
    X(UNKNOWN_SCHEMA, -7, FATAL, "unknown schema fingerprint")                                     \
    X(AVRO, -8, FATAL, "Avro encoding or decoding failed")                                         \
    X(KAFKA, -9, RETRY, "Kafka error")                                                             \
    X(KAFKA_FATAL, -10, FATAL, "fatal Kafka error")                                                \
    X(QUEUE_FULL, -11, RETRY, "queue full")                                                        \
    X(TIMEOUT, -12, RETRY, "timed out")                                                            \
    X(TRANSPORT, -13, RETRY, "HTTP transport error")                                               \
    X(HTTP_5XX, -14, RETRY, "server unavailable (HTTP 5xx)")                                       \
    X(RATE_LIMIT, -15, RETRY, "API rate or request limit reached")                                 \
    X(AUTH, -16, RETRY, "authentication expired or refused")                                       \
    X(HTTP_4XX, -17, FATAL, "request rejected (HTTP 4xx)")                                         \
    X(NOT_FOUND, -18, FATAL, "not found")                                                          \
    X(EXISTS, -19, FATAL, "already exists")                                                        \
    X(TOO_LARGE, -20, FATAL, "too large")                                                          \
    X(SHUTDOWN, -21, RETRY, "shutting down")                                                       \
    X(STATE, -22, FATAL, "operation not valid in this state")                                      \
    X(ABORTED, -23, RETRY, "abandoned (a rebalance took the work away)")

typedef enum {
#define CS_ERR_ENUM_(name, val, cls, msg) CS_ERR_##name = val,
    CS_ERR_MAP(CS_ERR_ENUM_)
#undef CS_ERR_ENUM_
} cs_err_t;

#define CS_OK CS_ERR_OK

/* How a caller reacts to an error: nothing to do, try again later (after a backoff), or
 * give up on this request / record / configuration. */
typedef enum {
    CS_CLASS_OK = 0,
    CS_CLASS_RETRY,
    CS_CLASS_FATAL,
} cs_class_t;

/* "CS_ERR_TIMEOUT" style name; "CS_ERR_UNKNOWN" for a value outside the table. Static storage. */
const char *cs_err_name(int err);

/* One-line human message; static storage. */
const char *cs_err_str(int err);

/* Classification of err; unknown negative values are FATAL, 0 and positives are OK. */
cs_class_t cs_err_class(int err);

/* "OK", "RETRY" or "FATAL". */
const char *cs_class_name(cs_class_t c);

/* snprintf into errstr (if errstr != NULL and errstr_size > 0) and return err, so setup paths
 * can write `return cs_err_set(errstr, n, CS_ERR_CONFIG, "bad %s", k);`. */
int cs_err_set(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
