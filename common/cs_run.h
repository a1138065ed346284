/* cs_run: signal handling and the run loop's stop flag.
 *
 * SIGTERM and SIGINT set a flag only (async-signal-safe); loops poll cs_run_stopping() with a
 * bounded timeout and then drain in order. A second signal exits at once with status 130. */
#ifndef CS_RUN_H
#define CS_RUN_H

#include <stdint.h>
#include <sys/types.h>

/* Installs the SIGTERM/SIGINT handlers and ignores SIGPIPE. Call once from main(). */
void cs_run_install_signals(void);

/* Non-zero once a stop was requested (by a signal or cs_run_request_stop()). Any thread. */
int cs_run_stopping(void);

/* Requests a stop from code (tests, fatal errors). Any thread. */
void cs_run_request_stop(void);

/* Monotonic clock in milliseconds / microseconds. */
int64_t cs_now_ms(void);
int64_t cs_now_us(void);

/* Wall clock in milliseconds since the epoch. */
int64_t cs_wall_ms(void);

/* Sleeps up to ms, returning early (within ~50 ms) when a stop is requested. */
void cs_run_sleep_ms(int64_t ms);

/* Waits for child pid to exit, checking every 50 ms. Past deadline_ms (monotonic), or once a
 * stop is requested when stop_too is set, the child gets SIGTERM and is reaped. Returns its
 * exit status, or -1 (killed by a signal, given up on, waitpid failed). */
int cs_run_wait_child(pid_t pid, int64_t deadline_ms, int stop_too);

#endif
