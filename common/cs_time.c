/* cs_time: ISO-8601 timestamps and e-mail prospect keys (see cs_time.h). */
#include "cs_time.h"
#include "cs_err.h"

#include <stdio.h>
#include <string.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil): exact for every year we accept, no table, no timegm() (which depends
 * on the process's TZ handling and is not in C11). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* Reads exactly n digits at *p. Returns the value or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

int cs_time_parse_iso8601(const char *s, int64_t *ms_out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off_min = 0;
    if (!s || !ms_out)
        return CS_ERR_INVAL;
    if ((y = digits(&p, 4)) < 1 || *p++ != '-' || (mo = digits(&p, 2)) < 1 || mo > 12 ||
        *p++ != '-' || (d = digits(&p, 2)) < 1 || d > days_in_month(y, mo))
        return CS_ERR_PARSE;
    if (*p == 'T' || *p == 't' || (*p == ' ' && p[1] >= '0' && p[1] <= '9')) {
        p++;
        if ((h = digits(&p, 2)) < 0 || h > 24 || *p++ != ':' || (mi = digits(&p, 2)) < 0 || mi > 59)
            return CS_ERR_PARSE;
        if (*p == ':') {
            p++;
            if ((sec = digits(&p, 2)) < 0 || sec > 60)
                return CS_ERR_PARSE;
            if (*p == '.' || *p == ',') {
                int n = 0;
                p++;
                if (*p < '0' || *p > '9')
                    return CS_ERR_PARSE;
                for (; *p >= '0' && *p <= '9'; p++, n++)
                    if (n < 3)
                        ms = ms * 10 + (*p - '0');
                for (; n < 3; n++)
                    ms *= 10;
            }
        }
        if (h == 24 && (mi || sec || ms))
            return CS_ERR_PARSE;
        if (sec == 60) /* a leap second: the last instant of the minute */
            sec = 59, ms = 999;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if ((oh = digits(&p, 2)) < 0 || oh > 23)
                return CS_ERR_PARSE;
            if (*p == ':') {
                p++;
                if ((om = digits(&p, 2)) < 0)
                    return CS_ERR_PARSE;
            } else if (*p >= '0' && *p <= '9') {
                if ((om = digits(&p, 2)) < 0)
                    return CS_ERR_PARSE;
            }
            if (om > 59)
                return CS_ERR_PARSE;
            off_min = sign * (oh * 60 + om);
        }
    }
    if (*p)
        return CS_ERR_PARSE;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + (int64_t)h * 3600 + mi * 60 + sec - (int64_t)off_min * 60;
    *ms_out = secs * 1000 + ms;
    return CS_OK;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int cs_key_normalize_email(const char *in, size_t len, char *out, size_t outsize)
{
    size_t b = 0, e = len, at = (size_t)-1;
    if (outsize > 0 && out)
        out[0] = '\0';
    if (!in || !out)
        return CS_ERR_INVAL;
    while (b < e && is_ws((unsigned char)in[b]))
        b++;
    while (e > b && is_ws((unsigned char)in[e - 1]))
        e--;
    size_t n = e - b;
    if (n < 3 || n > 254)
        return CS_ERR_PARSE;
    for (size_t i = b; i < e; i++) {
        if (in[i] != '@')
            continue;
        if (at != (size_t)-1)
            return CS_ERR_PARSE;
        at = i;
    }
    if (at == (size_t)-1 || at == b || at == e - 1)
        return CS_ERR_PARSE;
    /* local part */
    if (in[b] == '.' || in[at - 1] == '.')
        return CS_ERR_PARSE;
    for (size_t i = b; i < at; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= 0x20 || c == 0x7f || strchr("\"(),:;<>[]\\", c))
            return CS_ERR_PARSE;
        if (c == '.' && in[i + 1] == '.')
            return CS_ERR_PARSE;
    }
    /* domain: labels of letters, digits, '-' or UTF-8 bytes; at least one dot */
    size_t label = 0, dots = 0;
    for (size_t i = at + 1; i < e; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0)
                return CS_ERR_PARSE;
            label = 0;
            dots++;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c >= 0x80) {
            label++;
        } else {
            return CS_ERR_PARSE;
        }
    }
    if (label == 0 || dots == 0)
        return CS_ERR_PARSE;
    if (n + 1 > outsize)
        return CS_ERR_TOO_LARGE;
    for (size_t i = 0; i < n; i++) {
        char c = in[b + i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return (int)n;
}

int cs_time_format_iso8601(int64_t ms, int flags, char *buf, size_t size)
{
    int64_t secs, days, rem, z, era, doe, yoe, doy, mp, y;
    int m, d, frac;
    if (!buf)
        return CS_ERR_INVAL;
    if (size < 30) {
        if (size)
            buf[0] = '\0';
        return CS_ERR_TOO_LARGE;
    }
    /* floor division: a time before 1970 still truncates toward the past */
    secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    frac = (int)(ms - secs * 1000);
    days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    rem = secs - days * 86400;
    /* civil_from_days (Howard Hinnant), the inverse of days_from_civil */
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = (int)(doy - (153 * mp + 2) / 5 + 1);
    m = (int)(mp < 10 ? mp + 3 : mp - 9);
    y = yoe + era * 400 + (m <= 2);
    if (y < 1 || y > 9999) {
        buf[0] = '\0';
        return CS_ERR_INVAL;
    }
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60));
    if (flags & CS_TIME_FMT_MS)
        n += snprintf(buf + n, size - (size_t)n, ".%03d", frac);
    snprintf(buf + n, size - (size_t)n, "%s", (flags & CS_TIME_FMT_OFFSET) ? "+00:00" : "Z");
    return CS_OK;
}
