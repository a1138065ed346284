/* Child processes of a chaos run: start and wait for their first useful log line, replica
 * kills and restarts, the broker script, /metrics and the sandbox helpers. */
#include "chaos.h"

#include "cs_err.h"
#include "cs_run.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_TIMEOUT_MS 60000

static pthread_mutex_t say_mu = PTHREAD_MUTEX_INITIALIZER;

void ch_say(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&say_mu);
    fputs("chaos: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&say_mu);
}

void ch_path(const ch_t *ch, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", ch->run_dir, name);
}

/* Appends a marker line to log; returns the log's size after it (where the new incarnation's
 * lines start), -1 on error. */
static long mark_log(const char *log, const char *name)
{
    FILE *f = fopen(log, "a");
    long size;
    if (!f)
        return -1;
    fprintf(f, "=== crmsync-chaos: starting crmsync-%s (wall ms %lld)\n", name,
            (long long)cs_wall_ms());
    fflush(f);
    size = ftell(f);
    fclose(f);
    return size;
}

/* Looks for marker in log from offset; copies the token after it into out. 1 when found. */
static int find_marker(const char *log, long offset, const char *marker, char *out, size_t n)
{
    FILE *f = fopen(log, "r");
    char line[4096];
    int found = 0;
    if (!f)
        return 0;
    if (fseek(f, offset, SEEK_SET) == 0) {
        while (!found && fgets(line, sizeof(line), f)) {
            char *m = strstr(line, marker);
            if (!m)
                continue;
            m += strlen(marker);
            size_t len = strcspn(m, " \r\n");
            snprintf(out, n, "%.*s", (int)len, m);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

int ch_start(ch_t *ch, cs_tproc_t *p, const char *name, const char *const *args, const char *log,
             const char *marker, char *out, size_t outsize)
{
    long off = mark_log(log, name);
    int64_t deadline = cs_now_ms() + START_TIMEOUT_MS;
    if (off < 0 || cs_tproc_start(p, name, args, log) != 0) {
        ch_say("cannot start crmsync-%s (log %s)", name, log);
        return -1;
    }
    while (cs_now_ms() < deadline && !atomic_load(&ch->stop)) {
        if (find_marker(log, off, marker, out, outsize))
            return 0;
        if (!cs_tproc_alive(p)) {
            ch_say("crmsync-%s exited at start (log %s)", name, log);
            return -1;
        }
        cs_run_sleep_ms(50);
    }
    ch_say("crmsync-%s did not log \"%s\" within %d s (log %s)", name, marker,
           START_TIMEOUT_MS / 1000, log);
    cs_tproc_stop(p, 5000);
    return -1;
}

int ch_replica_start(ch_t *ch, int i)
{
    char log[1200], conf[1200], port[32], name[32], instance[200];
    cs_tproc_t proc;
    ch_path(ch, "sync-consumer.conf", conf, sizeof(conf));
    snprintf(name, sizeof(name), "replica-%d.log", i + 1);
    ch_path(ch, name, log, sizeof(log));
    /* The first chaos.static_replicas replicas are static group members (KIP-345, as a
     * StatefulSet would run them): restarted under the same group.instance.id they get their
     * partitions back without a rebalance of the others. The rest join as new members, so
     * their kills rebalance the whole group (revoke, commit, abandon, restore). */
    snprintf(instance, sizeof(instance), "kafka.group.instance.id=%s-replica-%d", ch->run, i + 1);
    const char *args[] = {"--config", conf, i < ch->static_replicas ? "--set" : NULL, instance,
                          NULL};
    if (ch_start(ch, &proc, "sync-consumer", args, log, "metrics on http://127.0.0.1:", port,
                 sizeof(port)) != 0)
        return -1;
    pthread_mutex_lock(&ch->rep_mu);
    ch->rep[i].proc = proc;
    ch->rep[i].port = atoi(port);
    ch->rep[i].starts++;
    ch->rep[i].up_ms = cs_now_ms();
    pthread_mutex_unlock(&ch->rep_mu);
    return 0;
}

void ch_replica_kill(ch_t *ch, int i)
{
    cs_tproc_t proc;
    pthread_mutex_lock(&ch->rep_mu);
    proc = ch->rep[i].proc;
    ch->rep[i].port = 0;
    ch->rep[i].proc.pid = 0;
    pthread_mutex_unlock(&ch->rep_mu);
    cs_tproc_kill(&proc);
}

int ch_replicas_check(ch_t *ch)
{
    int found = 0;
    for (int i = 0; i < ch->nreplicas; i++) {
        int st;
        pthread_mutex_lock(&ch->rep_mu);
        st = ch->rep[i].proc.pid > 0 ? cs_tproc_wait(&ch->rep[i].proc, 0) : -2;
        if (st != -2)
            ch->rep[i].port = 0;
        pthread_mutex_unlock(&ch->rep_mu);
        if (st == -2)
            continue;
        found++;
        atomic_fetch_add(&ch->crashes, 1);
        ch_say("CRASH: replica %d exited by itself with status %d (log %s/replica-%d.log); "
               "restarting it",
               i + 1, st, ch->run_dir, i + 1);
        if (!atomic_load(&ch->stop) && ch_replica_start(ch, i) != 0)
            ch_say("replica %d could not be restarted", i + 1);
    }
    return found;
}

int ch_broker(ch_t *ch, const char *cmd, int timeout_ms)
{
    char log[1200], port[16];
    int fd;
    pid_t pid, parent = getpid();
    int64_t deadline = cs_now_ms() + timeout_ms;
    ch_path(ch, "broker.log", log, sizeof(log));
    snprintf(port, sizeof(port), "%d", ch->broker_port);
    if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
        return -1;
    {
        char line[128];
        int n = snprintf(line, sizeof(line), "=== crmsync-chaos: kafka.sh %s (wall ms %lld)\n", cmd,
                         (long long)cs_wall_ms());
        if (write(fd, line, (size_t)n) < 0)
            (void)0;
    }
    if ((pid = fork()) < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        setenv("CRMSYNC_BROKER_PORT", port, 1);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("bash", "bash", ch->kafka_sh, cmd, (char *)NULL);
        _exit(127);
    }
    close(fd);
    return cs_run_wait_child(pid, deadline, 0);
}

double ch_metric(cs_http_t *h, int port, const char *name, const char *label)
{
    char url[128];
    cs_http_result_t res;
    double sum = 0;
    size_t nlen = strlen(name);
    if (port <= 0)
        return -1;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    if (cs_http_request(h, "GET", url, NULL, NULL, 0, &res) != CS_OK || res.status != 200)
        return -1;
    for (const char *p = res.body; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > nlen && !strncmp(p, name, nlen) && (p[nlen] == ' ' || p[nlen] == '{')) {
            char line[512];
            snprintf(line, sizeof(line), "%.*s", (int)len, p);
            if (!label || strstr(line, label)) {
                const char *sp = strrchr(line, ' ');
                if (sp)
                    sum += atof(sp + 1);
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return sum;
}

int ch_sandbox(ch_t *ch, cs_http_t *h, const char *method, const char *path, json_t *body,
               json_t **out)
{
    char url[512];
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    cs_http_result_t res;
    if (out)
        *out = NULL;
    snprintf(url, sizeof(url), "%s%s", ch->sandbox_url, path);
    cs_http_request(h, method, url, NULL, text, text ? strlen(text) : 0, &res);
    free(text);
    if (out && res.body_len) {
        json_t *j = cs_http_result_json(&res);
        *out = j ? json_incref(j) : NULL;
    }
    return res.status;
}
