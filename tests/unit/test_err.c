/* The error table: names, messages, classes, and the errstr helper. */
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_test.h"

int main(void)
{
    char buf[64];

    CHECK_INT(CS_OK, 0);
    CHECK_STR(cs_err_name(CS_OK), "CS_ERR_OK");
    CHECK_STR(cs_err_name(CS_ERR_TIMEOUT), "CS_ERR_TIMEOUT");
    CHECK_STR(cs_err_name(-9999), "CS_ERR_UNKNOWN");
    CHECK_STR(cs_err_str(CS_ERR_RATE_LIMIT), "API rate or request limit reached");
    CHECK_STR(cs_err_str(12345), "unknown error");

    /* Every code in the table is negative (except OK), unique, and named. */
#define CHECK_ENTRY_(name, val, cls, msg)                                                          \
    CHECK(val <= 0);                                                                               \
    CHECK_STR(cs_err_name(val), "CS_ERR_" #name);                                                  \
    CHECK_STR(cs_class_name(cs_err_class(val)), #cls);
    CS_ERR_MAP(CHECK_ENTRY_)
#undef CHECK_ENTRY_

    CHECK_INT(cs_err_class(CS_OK), CS_CLASS_OK);
    CHECK_INT(cs_err_class(5), CS_CLASS_OK);
    CHECK_INT(cs_err_class(CS_ERR_TRANSPORT), CS_CLASS_RETRY);
    CHECK_INT(cs_err_class(CS_ERR_HTTP_5XX), CS_CLASS_RETRY);
    CHECK_INT(cs_err_class(CS_ERR_RATE_LIMIT), CS_CLASS_RETRY);
    CHECK_INT(cs_err_class(CS_ERR_QUEUE_FULL), CS_CLASS_RETRY);
    CHECK_INT(cs_err_class(CS_ERR_CONFIG), CS_CLASS_FATAL);
    CHECK_INT(cs_err_class(CS_ERR_KAFKA_FATAL), CS_CLASS_FATAL);
    CHECK_INT(cs_err_class(CS_ERR_HTTP_4XX), CS_CLASS_FATAL);
    CHECK_INT(cs_err_class(-9999), CS_CLASS_FATAL);

    CHECK_INT(cs_err_set(buf, sizeof(buf), CS_ERR_CONFIG, "bad %s", "thing"), CS_ERR_CONFIG);
    CHECK_STR(buf, "bad thing");
    CHECK_INT(cs_err_set(NULL, 0, CS_ERR_IO, "ignored"), CS_ERR_IO);

    /* Kafka error mapping */
    CHECK_INT(cs_kafka_err(RD_KAFKA_RESP_ERR_NO_ERROR), CS_OK);
    CHECK_INT(cs_kafka_err(RD_KAFKA_RESP_ERR__QUEUE_FULL), CS_ERR_QUEUE_FULL);
    CHECK_INT(cs_kafka_err(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), CS_ERR_TIMEOUT);
    CHECK_INT(cs_kafka_err(RD_KAFKA_RESP_ERR__FATAL), CS_ERR_KAFKA_FATAL);
    CHECK_INT(cs_kafka_err(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), CS_ERR_NOT_FOUND);
    CHECK_INT(cs_kafka_err(RD_KAFKA_RESP_ERR__TRANSPORT), CS_ERR_KAFKA);
    return cs_test_report();
}
