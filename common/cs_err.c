#include "cs_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *cs_err_name(int err)
{
    switch (err) {
#define CS_ERR_NAME_(name, val, cls, msg)                                                          \
    case val:                                                                                      \
        return "CS_ERR_" #name;
        CS_ERR_MAP(CS_ERR_NAME_)
#undef CS_ERR_NAME_
    }
    return "CS_ERR_UNKNOWN";
}

const char *cs_err_str(int err)
{
    switch (err) {
#define CS_ERR_STR_(name, val, cls, msg)                                                           \
    case val:                                                                                      \
        return msg;
        CS_ERR_MAP(CS_ERR_STR_)
#undef CS_ERR_STR_
    }
    return "unknown error";
}

cs_class_t cs_err_class(int err)
{
    if (err >= 0)
        return CS_CLASS_OK;
    switch (err) {
#define CS_ERR_CLASS_(name, val, cls, msg)                                                         \
    case val:                                                                                      \
        return CS_CLASS_##cls;
        CS_ERR_MAP(CS_ERR_CLASS_)
#undef CS_ERR_CLASS_
    }
    return CS_CLASS_FATAL;
}

const char *cs_class_name(cs_class_t c)
{
    switch (c) {
    case CS_CLASS_OK:
        return "OK";
    case CS_CLASS_RETRY:
        return "RETRY";
    case CS_CLASS_FATAL:
        return "FATAL";
    }
    return "FATAL";
}

int cs_err_set(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
{
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}
