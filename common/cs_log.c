#include "cs_log.h"
#include "cs_err.h"

#include <jansson.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int cs_log_level_g = CS_LOG_INFO;
static int json_format;
static FILE *log_out;

int cs_log_level_parse(const char *name)
{
    if (!name)
        return -1;
    if (!strcmp(name, "error"))
        return CS_LOG_ERROR;
    if (!strcmp(name, "warn") || !strcmp(name, "warning"))
        return CS_LOG_WARN;
    if (!strcmp(name, "info"))
        return CS_LOG_INFO;
    if (!strcmp(name, "debug"))
        return CS_LOG_DEBUG;
    return -1;
}

int cs_log_setup(const char *level, const char *format)
{
    int lvl = level ? cs_log_level_parse(level) : cs_log_level_g;
    if (lvl < 0)
        return CS_ERR_CONFIG;
    if (format && strcmp(format, "text") && strcmp(format, "json"))
        return CS_ERR_CONFIG;
    cs_log_level_g = lvl;
    if (format)
        json_format = !strcmp(format, "json");
    return CS_OK;
}

void cs_log_set_output(FILE *f)
{
    log_out = f;
}

static const char *level_name(int level)
{
    if (level <= CS_LOG_ERROR)
        return "error";
    if (level <= CS_LOG_WARN)
        return "warn";
    if (level <= CS_LOG_INFO)
        return "info";
    return "debug";
}

void cs_log_write(int level, const char *component, const char *fmt, ...)
{
    char msg[2048], ts[96];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    FILE *out = log_out ? log_out : stderr;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

    if (json_format) {
        /* jansson escapes the message; the line is written with one call so lines from
         * several threads never interleave. */
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_name(level),
                              "component", component ? component : "-", "msg", msg);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (line) {
            fprintf(out, "%s\n", line);
            free(line);
        }
        json_decref(o);
    } else {
        fprintf(out, "%s %-5s [%s] %s\n", ts, level_name(level), component ? component : "-", msg);
    }
    fflush(out);
}
