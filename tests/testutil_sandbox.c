#include "testutil_sandbox.h"

#include "cs_err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void binary_path(char *buf, size_t size)
{
    const char *dir = getenv("CRMSYNC_BIN_DIR");
    if (dir && *dir) {
        snprintf(buf, size, "%s/crmsync-sandbox", dir);
        return;
    }
    /* the test binaries live in <build>/tests, the programs in <build>/bin */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, size, "%s/../bin/crmsync-sandbox", self);
            return;
        }
    }
    snprintf(buf, size, "crmsync-sandbox");
}

/* Reads one line (without '\n') from fd within the deadline. Returns 0 or -1. */
static int read_line(int fd, char *line, size_t size, long long deadline)
{
    size_t n = 0;
    while (n + 1 < size) {
        long long left = deadline - mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        if (c == '\n')
            break;
        line[n++] = c;
    }
    line[n] = '\0';
    return 0;
}

int cs_tsandbox_start(cs_tsandbox_t *sb, const char *const *extra_args, char *errstr,
                      size_t errstr_size)
{
    char bin[4200], line[256];
    const char *argv[64];
    int pfd[2];
    size_t argc = 0;

    memset(sb, 0, sizeof(*sb));
    sb->pid = -1;
    sb->out_fd = -1;
    binary_path(bin, sizeof(bin));
    argv[argc++] = bin;
    argv[argc++] = "--port";
    argv[argc++] = "0";
    for (size_t i = 0; extra_args && extra_args[i] && argc < 62; i++)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;

    if (pipe(pfd) != 0) {
        cs_err_set(errstr, errstr_size, -1, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        cs_err_set(errstr, errstr_size, -1, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    sb->pid = pid;
    sb->out_fd = pfd[0];
    fcntl(sb->out_fd, F_SETFD, FD_CLOEXEC);
    if (read_line(sb->out_fd, line, sizeof(line), mono_ms() + START_TIMEOUT_MS) != 0 ||
        sscanf(line, "listening on http://127.0.0.1:%d", &sb->port) != 1) {
        cs_err_set(errstr, errstr_size, -1, "%s did not report its port (got \"%.100s\")", bin,
                   line);
        cs_tsandbox_stop(sb);
        return -1;
    }
    snprintf(sb->url, sizeof(sb->url), "http://127.0.0.1:%d", sb->port);
    return 0;
}

int cs_tsandbox_stop(cs_tsandbox_t *sb)
{
    int status = 0, rc = -1;
    if (sb->pid > 0) {
        kill(sb->pid, SIGTERM);
        long long deadline = mono_ms() + STOP_TIMEOUT_MS;
        for (;;) {
            pid_t w = waitpid(sb->pid, &status, WNOHANG);
            if (w == sb->pid)
                break;
            if (w < 0 && errno != EINTR) {
                status = -1;
                break;
            }
            if (mono_ms() > deadline) {
                kill(sb->pid, SIGKILL);
                waitpid(sb->pid, &status, 0);
                break;
            }
            usleep(10000);
        }
        if (status == -1)
            rc = -1;
        else if (WIFEXITED(status))
            rc = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
            rc = 128 + WTERMSIG(status);
    }
    if (sb->out_fd >= 0)
        close(sb->out_fd);
    sb->pid = -1;
    sb->out_fd = -1;
    return rc;
}

cs_oauth_t *cs_tsandbox_oauth(const cs_tsandbox_t *sb)
{
    char err[256];
    cs_oauth_opts_t o = {0};
    o.login_url = sb->url;
    o.grant_type = "client_credentials";
    o.client_id = CS_TSANDBOX_CLIENT_ID;
    o.client_secret = CS_TSANDBOX_CLIENT_SECRET;
    cs_oauth_t *oa = cs_oauth_new(&o, err, sizeof(err));
    if (!oa)
        fprintf(stderr, "cs_tsandbox_oauth: %s\n", err);
    return oa;
}

json_t *cs_tsandbox_call(const cs_tsandbox_t *sb, const char *method, const char *path,
                         const char *const *headers, const char *body, int *status)
{
    char err[256], url[4096];
    cs_http_result_t res;
    *status = 0;
    cs_http_t *h = cs_http_new(NULL, err, sizeof(err));
    if (!h)
        return NULL;
    snprintf(url, sizeof(url), "%s%s", sb->url, path);
    cs_http_request(h, method, url, headers, body, body ? strlen(body) : 0, &res);
    *status = res.status;
    json_t *j = cs_http_result_json(&res);
    if (j)
        json_incref(j);
    cs_http_destroy(h);
    return j;
}

json_t *cs_tsandbox_admin(const cs_tsandbox_t *sb, const char *method, const char *what,
                          const char *body, int *status)
{
    char path[512];
    snprintf(path, sizeof(path), "/sandbox/%s", what);
    return cs_tsandbox_call(sb, method, path, NULL, body, status);
}

int cs_tsandbox_knobs(const cs_tsandbox_t *sb, const char *body)
{
    int status = 0;
    json_t *j = cs_tsandbox_admin(sb, "POST", "knobs", body, &status);
    json_decref(j);
    return status == 200 ? 0 : -1;
}

int cs_tsandbox_reset(const cs_tsandbox_t *sb)
{
    int status = 0;
    json_t *j = cs_tsandbox_admin(sb, "POST", "reset", NULL, &status);
    json_decref(j);
    return status == 200 ? 0 : -1;
}

int cs_tsandbox_client_init(cs_tsandbox_client_t *c, const cs_tsandbox_t *sb)
{
    char err[256];
    memset(c, 0, sizeof(*c));
    c->sb = sb;
    c->oauth = cs_tsandbox_oauth(sb);
    if (!c->oauth)
        return -1;
    cs_http_opts_t o = {0};
    o.get_token = cs_oauth_get_token;
    o.token_opaque = c->oauth;
    o.name = "tsandbox";
    c->http = cs_http_new(&o, err, sizeof(err));
    if (!c->http) {
        fprintf(stderr, "cs_tsandbox_client_init: %s\n", err);
        cs_oauth_destroy(c->oauth);
        c->oauth = NULL;
        return -1;
    }
    return 0;
}

void cs_tsandbox_client_close(cs_tsandbox_client_t *c)
{
    cs_http_destroy(c->http);
    cs_oauth_destroy(c->oauth);
    c->http = NULL;
    c->oauth = NULL;
}

json_t *cs_tsandbox_req(cs_tsandbox_client_t *c, const char *method, const char *path,
                        const char *body, int *status)
{
    char url[16384];
    static const char *const v5_headers[] = {"Pardot-Business-Unit-Id: " CS_TSANDBOX_BU_ID, NULL};
    snprintf(url, sizeof(url), "%s%s", c->sb->url, path);
    int v5 = !strncmp(path, "/api/v5/", 8);
    cs_http_request(c->http, method, url, v5 ? v5_headers : NULL, body, body ? strlen(body) : 0,
                    &c->res);
    if (status)
        *status = c->res.status;
    return cs_http_result_json(&c->res);
}
