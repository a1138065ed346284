#include "cs_run.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signals;

static void on_signal(int sig)
{
    (void)sig;
    if (stop_signals++ > 0)
        _exit(130); /* second signal: the operator means it */
}

void cs_run_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cs_run_stopping(void)
{
    return stop_signals > 0;
}

void cs_run_request_stop(void)
{
    if (stop_signals == 0)
        stop_signals = 1;
}

int64_t cs_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cs_now_ms(void)
{
    return cs_now_us() / 1000;
}

int64_t cs_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cs_run_sleep_ms(int64_t ms)
{
    int64_t end = cs_now_ms() + ms;
    while (!cs_run_stopping()) {
        int64_t left = end - cs_now_ms();
        if (left <= 0)
            break;
        if (left > 50)
            left = 50;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

int cs_run_wait_child(pid_t pid, int64_t deadline_ms, int stop_too)
{
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (cs_now_ms() > deadline_ms || (stop_too && cs_run_stopping())) {
            kill(pid, SIGTERM);
            waitpid(pid, &st, 0);
            return -1;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
