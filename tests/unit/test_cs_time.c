/* Unit: ISO-8601 parsing and formatting (cs_time) and e-mail prospect keys
 * (cs_key_normalize_email), on the shapes the two APIs really send and on malformed input. */
#include "cs_err.h"
#include "cs_test.h"
#include "cs_time.h"

#include <stdint.h>

static int64_t parse(const char *s)
{
    int64_t ms = -42;
    int err = cs_time_parse_iso8601(s, &ms);
    return err ? INT64_MIN : ms;
}

static const char *key(const char *in)
{
    static char out[300];
    int n = cs_key_normalize_email(in, strlen(in), out, sizeof(out));
    return n > 0 ? out : NULL;
}

int main(void)
{
    /* 2024-05-01T14:11:12Z = 1714572672 s */
    const int64_t T = 1714572672000LL;
    char buf[64];

    /* the marketing API: seconds with an offset in the API user's timezone */
    CHECK_INT(parse("2024-05-01T10:11:12-04:00"), T);
    CHECK_INT(parse("2024-05-01T19:41:12+05:30"), T);
    /* Salesforce: milliseconds, +0000 without a colon */
    CHECK_INT(parse("2024-05-01T14:11:12.000+0000"), T);
    CHECK_INT(parse("2024-05-01T14:11:12.345+0000"), T + 345);
    CHECK_INT(parse("2024-05-01T14:11:12Z"), T);
    CHECK_INT(parse("2024-05-01T14:11:12.5Z"), T + 500);
    CHECK_INT(parse("2024-05-01T14:11:12.123456789Z"), T + 123); /* truncated */
    CHECK_INT(parse("2024-05-01t14:11:12z"), T);
    CHECK_INT(parse("2024-05-01 14:11:12"), T); /* no offset = UTC */
    CHECK_INT(parse("2024-05-01T16:11:12+02"), T);
    CHECK_INT(parse("2024-05-01"), T - (14 * 3600 + 11 * 60 + 12) * 1000LL);
    CHECK_INT(parse("1970-01-01T00:00:00Z"), 0);
    CHECK_INT(parse("1969-12-31T23:59:59Z"), -1000);
    CHECK_INT(parse("2024-02-29T00:00:00Z"), 1709164800000LL); /* leap day */
    CHECK_INT(parse("2000-02-29T00:00:00Z"), 951782400000LL);  /* 400-year leap */
    /* malformed or out of range */
    CHECK_INT(parse(""), INT64_MIN);
    CHECK_INT(parse("2024-05-01T14:11:12+"), INT64_MIN);
    CHECK_INT(parse("2024-05-01T14:11:12Zjunk"), INT64_MIN);
    CHECK_INT(parse("2024-13-01T00:00:00Z"), INT64_MIN);
    CHECK_INT(parse("2023-02-29T00:00:00Z"), INT64_MIN);
    CHECK_INT(parse("1900-02-29T00:00:00Z"), INT64_MIN);
    CHECK_INT(parse("2024-05-01T25:00:00Z"), INT64_MIN);
    CHECK_INT(parse("2024-05-01T14:61:00Z"), INT64_MIN);
    CHECK_INT(parse("2024-05-01T14:11:12.Z"), INT64_MIN);
    CHECK_INT(parse("2024-05-01T14:11:12+05:77"), INT64_MIN);
    CHECK_INT(parse("24-05-01T14:11:12Z"), INT64_MIN);
    CHECK_INT(parse("not a date"), INT64_MIN);
    {
        int64_t ms = 7;
        CHECK_INT(cs_time_parse_iso8601("garbage", &ms), CS_ERR_PARSE);
        CHECK_INT(ms, 7); /* untouched on error */
        CHECK_INT(cs_time_parse_iso8601(NULL, &ms), CS_ERR_INVAL);
    }

    /* formatting: SOQL literal shape, the marketing shape, milliseconds, and round trips */
    CHECK_INT(cs_time_format_iso8601(T + 999, 0, buf, sizeof(buf)), CS_OK);
    CHECK_STR(buf, "2024-05-01T14:11:12Z");
    CHECK_INT(cs_time_format_iso8601(T, CS_TIME_FMT_OFFSET, buf, sizeof(buf)), CS_OK);
    CHECK_STR(buf, "2024-05-01T14:11:12+00:00");
    CHECK_INT(cs_time_format_iso8601(T + 7, CS_TIME_FMT_MS, buf, sizeof(buf)), CS_OK);
    CHECK_STR(buf, "2024-05-01T14:11:12.007Z");
    CHECK_INT(cs_time_format_iso8601(0, 0, buf, sizeof(buf)), CS_OK);
    CHECK_STR(buf, "1970-01-01T00:00:00Z");
    CHECK_INT(cs_time_format_iso8601(-1, CS_TIME_FMT_MS, buf, sizeof(buf)), CS_OK);
    CHECK_STR(buf, "1969-12-31T23:59:59.999Z"); /* truncated toward the past */
    CHECK_INT(cs_time_format_iso8601(951782400000LL, 0, buf, sizeof(buf)), CS_OK);
    CHECK_STR(buf, "2000-02-29T00:00:00Z");
    CHECK_INT(cs_time_format_iso8601(T, 0, buf, 10), CS_ERR_TOO_LARGE);
    CHECK_STR(buf, "");
    CHECK_INT(cs_time_format_iso8601(300000000000000LL, 0, buf, sizeof(buf)), CS_ERR_INVAL);
    for (int64_t ms = -86400000LL * 800; ms < 86400000LL * 365 * 80;
         ms += 86400000LL * 37 + 12345) {
        int64_t back = 0;
        cs_time_format_iso8601(ms, CS_TIME_FMT_MS, buf, sizeof(buf));
        if (cs_time_parse_iso8601(buf, &back) != CS_OK || back != ms) {
            CHECK_INT(back, ms);
            break;
        }
    }
    CHECK(1);

    /* prospect keys: trimmed, ASCII lower-cased, shape-checked */
    CHECK_STR(key("Ann.Lee@Example.COM"), "ann.lee@example.com");
    CHECK_STR(key("  ann@example.com \t\r\n"), "ann@example.com");
    CHECK_STR(key("o'brien+tag@sub.example.co.uk"), "o'brien+tag@sub.example.co.uk");
    CHECK_STR(key("J\xc3\x96RG@b\xc3\xbc"
                  "cher.de"),
              "j\xc3\x96rg@b\xc3\xbc"
              "cher.de");
    CHECK(key("") == NULL);
    CHECK(key("   ") == NULL);
    CHECK(key("ann") == NULL);
    CHECK(key("ann@") == NULL);
    CHECK(key("@example.com") == NULL);
    CHECK(key("ann@example") == NULL); /* one label */
    CHECK(key("ann@@example.com") == NULL);
    CHECK(key("a@b@example.com") == NULL);
    CHECK(key("ann lee@example.com") == NULL);
    CHECK(key("ann@exa mple.com") == NULL);
    CHECK(key(".ann@example.com") == NULL);
    CHECK(key("ann.@example.com") == NULL);
    CHECK(key("an..n@example.com") == NULL);
    CHECK(key("ann@example..com") == NULL);
    CHECK(key("ann@.example.com") == NULL);
    CHECK(key("ann@example.com.") == NULL);
    CHECK(key("<ann@example.com>") == NULL);
    CHECK(key("Ann Lee <ann@example.com>") == NULL);
    {
        char out[8], big[300];
        /* a buffer too small is reported, never overrun */
        CHECK_INT(cs_key_normalize_email("ann@example.com", 15, out, sizeof(out)),
                  CS_ERR_TOO_LARGE);
        CHECK_STR(out, "");
        /* len bounds the input: no NUL needed */
        CHECK_INT(cs_key_normalize_email("Bo@x.io-trailing", 7, big, sizeof(big)), 7);
        CHECK_STR(big, "bo@x.io");
        CHECK_INT(cs_key_normalize_email(NULL, 3, out, sizeof(out)), CS_ERR_INVAL);
    }
    {
        char big[400], out[400];
        memset(big, 'a', 250);
        memcpy(big + 250, "@x.io", 5); /* 255 bytes: too long for an address */
        CHECK(cs_key_normalize_email(big, 255, out, sizeof(out)) < 0);
        memcpy(big + 240, "@example.com", 12); /* 252 bytes: fine */
        CHECK_INT(cs_key_normalize_email(big, 252, out, sizeof(out)), 252);
    }
    return cs_test_report();
}
