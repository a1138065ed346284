/* Config: precedence, every bad-input path, kafka.* passthrough, redaction. */
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const cs_opt_t opts[] = {
    {"batch.max", CS_OPT_INT, "200", 1, 200, 0, "records per batch"},
    {"crm.client_secret", CS_OPT_STRING, "", 0, 0, CS_OPT_SENSITIVE, "OAuth client secret"},
    {"sync.email_changes", CS_OPT_BOOL, "false", 0, 0, 0, "apply CRM email changes"},
    {"name", CS_OPT_STRING, NULL, 0, 0, 0, "no default"},
    {"http.port", CS_OPT_INT, "8080", -1, 65535, 0, "program override of a common option"},
    CS_OPT_END,
};

static cs_conf_t *fresh(void)
{
    cs_conf_t *c = cs_conf_new("test", "test", opts);
    REQUIRE(c);
    return c;
}

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/cs_test_conf_XXXXXX");
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static char *capture(void (*fn)(const cs_conf_t *, FILE *), const cs_conf_t *c)
{
    static char buf[8192];
    FILE *f = tmpfile();
    REQUIRE(f);
    fn(c, f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_defaults(void)
{
    cs_conf_t *c = fresh();
    CHECK_INT(cs_conf_int(c, "batch.max"), 200);
    CHECK_INT(cs_conf_bool(c, "sync.email_changes"), 0);
    CHECK(cs_conf_str(c, "name") == NULL);
    CHECK_STR(cs_conf_str(c, "log.level"), "info");
    CHECK_INT(cs_conf_int(c, "http.port"), 8080); /* the program's override wins */
    cs_conf_destroy(c);
    cs_conf_destroy(NULL); /* accepts NULL */
}

static void test_file(void)
{
    char err[256];
    cs_conf_t *c = fresh();
    const char *p = write_tmp("# comment\n\n  batch.max = 50  \nsync.email_changes=yes\n"
                              "kafka.bootstrap.servers=127.0.0.1:1\nname=a=b\n");
    CHECK_INT(cs_conf_load_file(c, p, err, sizeof(err)), CS_OK);
    CHECK_INT(cs_conf_int(c, "batch.max"), 50);
    CHECK_INT(cs_conf_bool(c, "sync.email_changes"), 1);
    CHECK_STR(cs_conf_kafka(c, "bootstrap.servers"), "127.0.0.1:1");
    CHECK_STR(cs_conf_str(c, "name"), "a=b"); /* only the first '=' splits */
    unlink(p);
    cs_conf_destroy(c);
}

static void expect_file_error(const char *text, const char *want_in_msg)
{
    char err[256] = "";
    cs_conf_t *c = fresh();
    const char *p = write_tmp(text);
    CHECK_INT(cs_conf_load_file(c, p, err, sizeof(err)), CS_ERR_CONFIG);
    if (!strstr(err, want_in_msg)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", err, want_in_msg);
        CHECK(0);
    }
    unlink(p);
    cs_conf_destroy(c);
}

static void test_bad_input(void)
{
    char err[256];
    /* unknown key, with file:line */
    expect_file_error("batch.max=10\n\nbogus.key=1\n", ":3: unknown key 'bogus.key'");
    expect_file_error("no equals sign\n", ":1: expected key=value");
    expect_file_error("batch.max=abc\n", "not an integer");
    expect_file_error("batch.max=201\n", "out of range");
    expect_file_error("batch.max=0\n", "out of range");
    expect_file_error("batch.max=12x\n", "not an integer");
    expect_file_error("sync.email_changes=maybe\n", "not a boolean");
    expect_file_error("log.level=loud\n", "log.level");
    expect_file_error("log.format=xml\n", "log.format");
    expect_file_error("=value\n", "empty key");
    expect_file_error("kafka.=x\n", "empty kafka");
    /* a bad secret value is never echoed */
    {
        cs_conf_t *c = fresh();
        CHECK_INT(cs_conf_set(c, "batch.max", "999", err, sizeof(err)), CS_ERR_CONFIG);
        cs_conf_destroy(c);
    }
    /* missing file */
    {
        cs_conf_t *c = fresh();
        CHECK_INT(cs_conf_load_file(c, "/nonexistent/x.conf", err, sizeof(err)), CS_ERR_CONFIG);
        CHECK(strstr(err, "/nonexistent/x.conf") != NULL);
        cs_conf_destroy(c);
    }
}

static void test_precedence(void)
{
    char err[256];
    int pos = -1;
    cs_conf_t *c = fresh();
    const char *p = write_tmp("batch.max=10\nname=file\nlog.level=warn\n");
    char path[64];
    snprintf(path, sizeof(path), "%s", p);
    setenv("CRMSYNC_BATCH_MAX", "20", 1);
    setenv("CRMSYNC_LOG_LEVEL", "error", 1);
    setenv("CRMSYNC_KAFKA_SASL_MECHANISMS", "PLAIN", 1);
    char *argv[] = {"prog",
                    "--config",
                    path,
                    "--batch.max",
                    "30",
                    "--set",
                    "kafka.acks=all",
                    "--sync.email_changes",
                    "positional",
                    "--not-an-option",
                    NULL};
    int argc = 10;
    CHECK_INT(cs_conf_from_args(c, argc, argv, &pos, err, sizeof(err)), CS_OK);
    CHECK_INT(cs_conf_int(c, "batch.max"), 30);              /* CLI beats env beats file */
    CHECK_STR(cs_conf_str(c, "name"), "file");               /* file beats default */
    CHECK_STR(cs_conf_str(c, "log.level"), "error");         /* env beats file */
    CHECK_INT(cs_conf_bool(c, "sync.email_changes"), 1);     /* bare boolean flag */
    CHECK_STR(cs_conf_kafka(c, "sasl.mechanisms"), "PLAIN"); /* env -> kafka.* */
    CHECK_STR(cs_conf_kafka(c, "acks"), "all");
    CHECK_INT(pos, 8); /* positional args stay for the program, flags after them too */
    unsetenv("CRMSYNC_BATCH_MAX");
    unsetenv("CRMSYNC_LOG_LEVEL");
    unsetenv("CRMSYNC_KAFKA_SASL_MECHANISMS");
    unlink(path);
    cs_conf_destroy(c);

    /* bad environment value is reported with the variable name */
    c = fresh();
    setenv("CRMSYNC_BATCH_MAX", "lots", 1);
    char *argv2[] = {"prog", NULL};
    CHECK_INT(cs_conf_from_args(c, 1, argv2, NULL, err, sizeof(err)), CS_ERR_CONFIG);
    CHECK(strstr(err, "CRMSYNC_BATCH_MAX") != NULL);
    unsetenv("CRMSYNC_BATCH_MAX");
    cs_conf_destroy(c);

    /* unknown option and missing value on the command line */
    c = fresh();
    char *argv3[] = {"prog", "--bogus", "1", NULL};
    CHECK_INT(cs_conf_from_args(c, 3, argv3, NULL, err, sizeof(err)), CS_ERR_CONFIG);
    CHECK(strstr(err, "--bogus") != NULL);
    char *argv4[] = {"prog", "--batch.max", NULL};
    CHECK_INT(cs_conf_from_args(c, 2, argv4, NULL, err, sizeof(err)), CS_ERR_CONFIG);
    char *argv5[] = {"prog", "--set", "novalue", NULL};
    CHECK_INT(cs_conf_from_args(c, 3, argv5, NULL, err, sizeof(err)), CS_ERR_CONFIG);
    char *argv6[] = {"prog", "--config", NULL};
    CHECK_INT(cs_conf_from_args(c, 2, argv6, NULL, err, sizeof(err)), CS_ERR_CONFIG);
    cs_conf_destroy(c);
}

static void test_redaction(void)
{
    char err[256];
    cs_conf_t *c = fresh();
    CHECK_INT(cs_conf_set(c, "crm.client_secret", "s3cr3t-value", err, sizeof(err)), CS_OK);
    CHECK_INT(cs_conf_set(c, "kafka.sasl.password", "kafka-pw-123", err, sizeof(err)), CS_OK);
    CHECK_INT(cs_conf_set(c, "kafka.sasl.username", "alice", err, sizeof(err)), CS_OK);
    const char *dump = capture(cs_conf_dump, c);
    CHECK(strstr(dump, "s3cr3t-value") == NULL);
    CHECK(strstr(dump, "kafka-pw-123") == NULL);
    CHECK(strstr(dump, "crm.client_secret=********") != NULL);
    CHECK(strstr(dump, "kafka.sasl.password=********") != NULL);
    CHECK(strstr(dump, "kafka.sasl.username=alice") != NULL);
    CHECK(strstr(dump, "batch.max=200") != NULL);
    CHECK(cs_conf_is_sensitive(c, "crm.client_secret"));
    CHECK(cs_conf_is_sensitive(c, "kafka.ssl.key.password"));
    CHECK(!cs_conf_is_sensitive(c, "batch.max"));
    const char *help = capture(cs_conf_print_help, c);
    CHECK(strstr(help, "batch.max") != NULL);
    CHECK(strstr(help, "s3cr3t") == NULL);
    cs_conf_destroy(c);
}

static void test_kafka_passthrough(void)
{
    char err[256];
    cs_conf_t *c = fresh();
    CHECK_INT(cs_conf_set(c, "kafka.linger.ms", "7", err, sizeof(err)), CS_OK);
    rd_kafka_conf_t *kc = cs_kafka_conf_new(c, err, sizeof(err));
    REQUIRE(kc);
    char val[64];
    size_t vl = sizeof(val);
    CHECK(rd_kafka_conf_get(kc, "linger.ms", val, &vl) == RD_KAFKA_CONF_OK);
    CHECK_STR(val, "7");
    rd_kafka_conf_destroy(kc);
    /* librdkafka rejects an unknown property: the error names it, not its value */
    CHECK_INT(cs_conf_set(c, "kafka.no.such.property", "secretish", err, sizeof(err)), CS_OK);
    kc = cs_kafka_conf_new(c, err, sizeof(err));
    CHECK(kc == NULL);
    CHECK(strstr(err, "kafka.no.such.property") != NULL);
    CHECK(strstr(err, "secretish") == NULL);
    cs_conf_destroy(c);
}

static void test_check_hook(void)
{
    char err[256];
    cs_conf_t *c = fresh();
    cs_conf_set_check(c, cs_kafka_check_conf);
    char *argv1[] = {"prog", "--check-config", "--set", "kafka.linger.ms=5", NULL};
    CHECK_INT(cs_conf_from_args(c, 4, argv1, NULL, err, sizeof(err)), 1); /* OK: exit 0 */
    cs_conf_destroy(c);
    c = fresh();
    cs_conf_set_check(c, cs_kafka_check_conf);
    char *argv2[] = {"prog", "--check-config", "--set", "kafka.lingerr.ms=5", NULL};
    CHECK_INT(cs_conf_from_args(c, 4, argv2, NULL, err, sizeof(err)), CS_ERR_CONFIG);
    CHECK(strstr(err, "kafka.lingerr.ms") != NULL);
    cs_conf_destroy(c);
}

int main(void)
{
    test_check_hook();
    test_defaults();
    test_file();
    test_bad_input();
    test_precedence();
    test_redaction();
    test_kafka_passthrough();
    return cs_test_report();
}
