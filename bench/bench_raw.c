/* The ceiling: a plain librdkafka consumer in a fresh group reading the three input topics
 * from the start, counting messages and nothing else (no decode, no state, no commits). It is
 * made by cs_consumer_new(), as the sync consumer's is: same client library, same defaults,
 * same kafka.* settings, same broker and topics, so the ratio between the two is what
 * crmsync's own work costs. */
#include "bench.h"

#include "cs_kafka.h"
#include "cs_run.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int bench_raw_run(const cs_conf_t *kconf, const char *const topics[3], const char *group,
                  long expect, bench_raw_t *out)
{
    char errstr[512];
    cs_consumer_t *c;
    int64_t t0, t_first = 0, t_end = 0, last_progress;
    uint64_t b0, j0, b1, j1;
    double cpu0;
    long n = 0;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    bench_machine_jiffies(&b0, &j0);
    cpu0 = self_cpu_s();
    t0 = cs_now_us();
    /* crmsync's consumer set-up (its librdkafka defaults, kafka.* on top), no rebalance hooks */
    if (!(c = cs_consumer_new(kconf, group, topics, 3, NULL, errstr, sizeof(errstr)))) {
        fprintf(stderr, "bench: raw consumer: %s\n", errstr);
        return -1;
    }
    last_progress = cs_now_us();
    while (n < expect && !cs_run_stopping()) {
        rd_kafka_message_t *m = cs_consumer_poll(c, 100);
        if (!m) {
            if (cs_now_us() - last_progress > 60 * 1000000LL) {
                fprintf(stderr, "bench: raw consumer: no message for 60 s (%ld of %ld)\n", n,
                        expect);
                goto out;
            }
            continue;
        }
        if (!m->err) {
            if (!n++)
                t_first = cs_now_us();
            last_progress = t_end = cs_now_us();
        }
        rd_kafka_message_destroy(m);
    }
    if (n >= expect)
        rc = 0;
out:
    out->messages = n;
    out->seconds = (double)(t_end - t0) / 1e6;
    out->steady_s = (double)(t_end - t_first) / 1e6;
    out->cpu_s = self_cpu_s() - cpu0;
    bench_machine_jiffies(&b1, &j1);
    out->machine_busy = j1 > j0 ? (double)(b1 - b0) / (double)(j1 - j0) : 0;
    cs_consumer_destroy(c); /* nothing stored: nothing committed */
    return rc;
}
