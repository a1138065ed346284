/* cs_log: the one logger. Lines go to stderr (or a chosen FILE) as text or JSON, each
 * tagged with a component. The level check happens in the macro, before any formatting,
 * so a disabled debug line costs one comparison. Thread-safe (one write per line). */
#ifndef CS_LOG_H
#define CS_LOG_H

#include <stdio.h>

/* syslog numbering, like librdkafka's log levels, so its levels map one to one. */
typedef enum {
    CS_LOG_ERROR = 3,
    CS_LOG_WARN = 4,
    CS_LOG_INFO = 6,
    CS_LOG_DEBUG = 7,
} cs_log_level_t;

extern int cs_log_level_g;

/* Sets the level ("error", "warn", "info", "debug") and format ("text" or "json").
 * Returns CS_ERR_CONFIG for an unknown name (nothing changes). Call before threads start. */
int cs_log_setup(const char *level, const char *format);

/* Redirects output (default stderr); the caller keeps ownership of f. */
void cs_log_set_output(FILE *f);

/* Returns the level for a name, or -1 when unknown. */
int cs_log_level_parse(const char *name);

/* Writes one line unconditionally; use the macros instead. */
void cs_log_write(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CS_LOG(lvl, comp, ...)                                                                     \
    do {                                                                                           \
        if ((lvl) <= cs_log_level_g)                                                               \
            cs_log_write((lvl), (comp), __VA_ARGS__);                                              \
    } while (0)

#define CS_ERROR(comp, ...) CS_LOG(CS_LOG_ERROR, comp, __VA_ARGS__)
#define CS_WARN(comp, ...) CS_LOG(CS_LOG_WARN, comp, __VA_ARGS__)
#define CS_INFO(comp, ...) CS_LOG(CS_LOG_INFO, comp, __VA_ARGS__)
#define CS_DEBUG(comp, ...) CS_LOG(CS_LOG_DEBUG, comp, __VA_ARGS__)

#endif
