/* Shared by every harness: failure reporting and the logger set-up. */
#include "fuzz.h"

#include "cs_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cs_fuzz_fail(const char *target, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_%s: invariant broken: ", target);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void cs_fuzz_quiet(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    /* Every log line is still formatted (a format bug with hostile input must show), at
     * debug level, into /dev/null unless CS_FUZZ_LOG names a level to print on stderr. */
    const char *lvl = getenv("CS_FUZZ_LOG");
    if (lvl && *lvl) {
        cs_log_setup(lvl, "text");
        return;
    }
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
        cs_log_set_output(devnull); /* kept open for the life of the process */
        cs_log_setup("debug", "text");
    } else {
        cs_log_setup("error", "text");
    }
}
