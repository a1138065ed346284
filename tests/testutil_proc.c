#include "testutil_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cs_tproc_bin(const char *name, char *buf, size_t size)
{
    const char *dir = getenv("CRMSYNC_BIN_DIR");
    char self[4096];
    ssize_t n;
    if (dir && *dir) {
        snprintf(buf, size, "%s/crmsync-%s", dir, name);
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, size, "%s/../bin/crmsync-%s", self, name);
            return;
        }
    }
    snprintf(buf, size, "crmsync-%s", name);
}

int cs_tproc_start(cs_tproc_t *p, const char *name, const char *const *args, const char *log)
{
    char bin[4200];
    const char *argv[128];
    int n = 0, fd;
    pid_t parent = getpid();
    memset(p, 0, sizeof(*p));
    snprintf(p->log, sizeof(p->log), "%s", log);
    cs_tproc_bin(name, bin, sizeof(bin));
    argv[n++] = bin;
    for (int i = 0; args && args[i] && n < 127; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        return -1;
    p->pid = fork();
    if (p->pid < 0) {
        close(fd);
        return -1;
    }
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(fd);
    return 0;
}

static int status_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int cs_tproc_wait(cs_tproc_t *p, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;
    int st;
    if (p->pid <= 0)
        return -1;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return status_code(st);
        }
        if (r < 0 && errno != EINTR) {
            p->pid = 0;
            return -1;
        }
        if (mono_ms() >= deadline)
            return -2;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

int cs_tproc_stop(cs_tproc_t *p, int timeout_ms)
{
    int rc;
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    rc = cs_tproc_wait(p, timeout_ms);
    if (rc == -2) {
        kill(p->pid, SIGKILL);
        rc = cs_tproc_wait(p, 10000);
        if (rc == -2)
            rc = -1;
    }
    return rc;
}

void cs_tproc_kill(cs_tproc_t *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    cs_tproc_wait(p, 10000);
}

int cs_tproc_alive(cs_tproc_t *p)
{
    if (p->pid <= 0)
        return 0;
    if (waitpid(p->pid, NULL, WNOHANG) == 0)
        return 1;
    p->pid = 0; /* exited (now reaped) */
    return 0;
}

int cs_tproc_log_count(const cs_tproc_t *p, const char *needle)
{
    FILE *f = fopen(p->log, "r");
    char line[4096];
    int n = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}
