/* testutil_proc: run a crmsync program as a child process in a test.
 *
 *   cs_tproc_t p;
 *   const char *args[] = {"--config", path, NULL};
 *   REQUIRE(cs_tproc_start(&p, "sync-consumer", args, "/tmp/x.log") == 0);
 *   ...
 *   CHECK_INT(cs_tproc_stop(&p), 0);        (SIGTERM, then the exit status)
 *
 * The program is $CRMSYNC_BIN_DIR/crmsync-<name> (../bin beside the test binary when unset).
 * Its stdout and stderr go to the log file. It gets SIGKILL if the test process dies
 * (PR_SET_PDEATHSIG), so a crashed test leaves nothing running. */
#ifndef TESTUTIL_PROC_H
#define TESTUTIL_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct cs_tproc_s {
    pid_t pid;
    char log[256];
} cs_tproc_t;

/* Returns 0, or -1 when the program cannot be started. args is NULL-terminated. */
int cs_tproc_start(cs_tproc_t *p, const char *name, const char *const *args, const char *log);

/* SIGTERM, waits up to timeout_ms (SIGKILL after). Returns the exit status, 128 + signal when
 * killed, -1 when not running. */
int cs_tproc_stop(cs_tproc_t *p, int timeout_ms);

/* SIGKILL and reap (a crash). */
void cs_tproc_kill(cs_tproc_t *p);

/* Non-zero while the child runs. */
int cs_tproc_alive(cs_tproc_t *p);

/* Waits for the child to exit by itself, up to timeout_ms. Returns its status as
 * cs_tproc_stop, or -2 on timeout (still running). */
int cs_tproc_wait(cs_tproc_t *p, int timeout_ms);

/* Counts the lines of the log containing needle. */
int cs_tproc_log_count(const cs_tproc_t *p, const char *needle);

/* Path of a built program: $CRMSYNC_BIN_DIR/crmsync-<name>. */
void cs_tproc_bin(const char *name, char *buf, size_t size);

#endif
