/* Unit tests for cs_metrics: handles, label rendering, exact exposition text, quantile
 * estimates and concurrent updates. */
#include "cs_metrics.h"
#include "cs_test.h"

#include <math.h>
#include <pthread.h>

static void test_handles(void)
{
    cs_metrics_t *m = cs_metrics_new();
    REQUIRE(m);
    cs_counter_t *a = cs_metrics_counter(m, "crmsync_x_total", "X", "k=\"1\"");
    cs_counter_t *b = cs_metrics_counter(m, "crmsync_x_total", "X", "k=\"1\"");
    cs_counter_t *c = cs_metrics_counter(m, "crmsync_x_total", "X", "k=\"2\"");
    CHECK(a != NULL);
    CHECK(a == b);
    CHECK(c != NULL && c != a);
    /* NULL labels and "" are the same series */
    CHECK(cs_metrics_counter(m, "crmsync_y_total", "Y", NULL) ==
          cs_metrics_counter(m, "crmsync_y_total", "Y", ""));
    /* a name belongs to one kind */
    CHECK(cs_metrics_gauge(m, "crmsync_x_total", "X", NULL) == NULL);
    /* invalid names are refused */
    CHECK(cs_metrics_counter(m, "9bad", "", NULL) == NULL);
    CHECK(cs_metrics_counter(m, "bad-name", "", NULL) == NULL);
    CHECK(cs_metrics_counter(m, "", "", NULL) == NULL);
    /* histograms: same series with other buckets, or unsorted buckets, are refused */
    double b1[] = {1, 2}, b2[] = {1, 3}, b3[] = {2, 1};
    cs_hist_t *h = cs_metrics_histogram(m, "crmsync_h", "H", NULL, b1, 2);
    CHECK(h != NULL);
    CHECK(cs_metrics_histogram(m, "crmsync_h", "H", NULL, b1, 2) == h);
    CHECK(cs_metrics_histogram(m, "crmsync_h", "H", NULL, b2, 2) == NULL);
    CHECK(cs_metrics_histogram(m, "crmsync_h2", "H", NULL, b3, 2) == NULL);

    cs_counter_add(a, 5);
    cs_counter_add(b, 2);
    CHECK_INT(cs_counter_get(a), 7);
    CHECK_INT(cs_counter_get(c), 0);

    cs_gauge_t *g = cs_metrics_gauge(m, "crmsync_g", "G", NULL);
    cs_gauge_set(g, 10);
    cs_gauge_add(g, -15);
    CHECK_INT(cs_gauge_get(g), -5);

    cs_hist_observe(h, 0.5);
    cs_hist_observe(h, 1.5);
    cs_hist_observe(h, 99);
    cs_hist_observe(h, 0.0 / 0.0); /* NaN: dropped */
    CHECK_INT(cs_hist_count(h), 3);

    /* NULL handles are harmless */
    cs_counter_add(NULL, 1);
    cs_gauge_set(NULL, 1);
    cs_hist_observe(NULL, 1);
    CHECK_INT(cs_counter_get(NULL), 0);
    cs_metrics_destroy(m);
    cs_metrics_destroy(NULL);
}

static void test_render_exact(void)
{
    cs_metrics_t *m = cs_metrics_new();
    REQUIRE(m);
    size_t len = 99;
    char *empty = cs_metrics_render(m, &len);
    CHECK(empty != NULL);
    CHECK_INT(len, 0);
    CHECK_STR(empty, "");
    free(empty);

    cs_counter_t *ea = cs_metrics_counter(m, "crmsync_events_total", "Events seen", "topic=\"a\"");
    cs_metrics_counter(m, "crmsync_events_total", "ignored: first help wins", "topic=\"b\"");
    cs_gauge_t *q = cs_metrics_gauge(m, "crmsync_queue_depth", "Queue depth\nwith \\ slash", NULL);
    double bounds[] = {0.1, 0.5, 1};
    cs_hist_t *h =
        cs_metrics_histogram(m, "crmsync_latency_seconds", "Latency", "api=\"crm\"", bounds, 3);
    cs_hist_t *hn = cs_metrics_histogram(m, "crmsync_size_bytes", "Size", NULL, bounds, 1);
    /* registered late, rendered with its family */
    cs_counter_t *ec = cs_metrics_counter(m, "crmsync_events_total", "x", "topic=\"c\"");
    REQUIRE(ea && q && h && hn && ec);

    cs_counter_add(ea, 3);
    cs_counter_add(ec, 1);
    cs_gauge_set(q, -2);
    cs_hist_observe(h, 0.25);
    cs_hist_observe(h, 0.5); /* le is inclusive */
    cs_hist_observe(h, 2);
    cs_hist_observe(hn, 7);

    const char *want = "# HELP crmsync_events_total Events seen\n"
                       "# TYPE crmsync_events_total counter\n"
                       "crmsync_events_total{topic=\"a\"} 3\n"
                       "crmsync_events_total{topic=\"b\"} 0\n"
                       "crmsync_events_total{topic=\"c\"} 1\n"
                       "# HELP crmsync_queue_depth Queue depth\\nwith \\\\ slash\n"
                       "# TYPE crmsync_queue_depth gauge\n"
                       "crmsync_queue_depth -2\n"
                       "# HELP crmsync_latency_seconds Latency\n"
                       "# TYPE crmsync_latency_seconds histogram\n"
                       "crmsync_latency_seconds_bucket{api=\"crm\",le=\"0.1\"} 0\n"
                       "crmsync_latency_seconds_bucket{api=\"crm\",le=\"0.5\"} 2\n"
                       "crmsync_latency_seconds_bucket{api=\"crm\",le=\"1\"} 2\n"
                       "crmsync_latency_seconds_bucket{api=\"crm\",le=\"+Inf\"} 3\n"
                       "crmsync_latency_seconds_sum{api=\"crm\"} 2.75\n"
                       "crmsync_latency_seconds_count{api=\"crm\"} 3\n"
                       "# HELP crmsync_size_bytes Size\n"
                       "# TYPE crmsync_size_bytes histogram\n"
                       "crmsync_size_bytes_bucket{le=\"0.1\"} 0\n"
                       "crmsync_size_bytes_bucket{le=\"+Inf\"} 1\n"
                       "crmsync_size_bytes_sum 7\n"
                       "crmsync_size_bytes_count 1\n";
    char *text = cs_metrics_render(m, &len);
    CHECK_STR(text, want);
    CHECK_INT(len, strlen(want));
    free(text);
    cs_metrics_destroy(m);
}

static void test_quantile(void)
{
    cs_metrics_t *m = cs_metrics_new();
    double bounds[] = {10, 20, 30, 40};
    cs_hist_t *h = cs_metrics_histogram(m, "crmsync_q", "Q", NULL, bounds, 4);
    REQUIRE(h);
    CHECK(cs_hist_quantile(h, 0.5) == 0); /* empty */
    for (int i = 0; i < 5; i++)
        cs_hist_observe(h, 5);
    for (int i = 0; i < 5; i++)
        cs_hist_observe(h, 15);
    CHECK(fabs(cs_hist_quantile(h, 0.5) - 10.0) < 1e-9);
    CHECK(fabs(cs_hist_quantile(h, 0.75) - 15.0) < 1e-9);
    CHECK(fabs(cs_hist_quantile(h, 0.99) - 19.8) < 1e-9);
    CHECK(fabs(cs_hist_quantile(h, 0.1) - 2.0) < 1e-9);
    /* ranks beyond the last finite bound answer that bound */
    for (int i = 0; i < 90; i++)
        cs_hist_observe(h, 1000);
    CHECK_INT(cs_hist_count(h), 100);
    CHECK(fabs(cs_hist_quantile(h, 0.95) - 40.0) < 1e-9);
    CHECK(fabs(cs_hist_quantile(h, 0.05) - 10.0) < 1e-9);
    cs_metrics_destroy(m);
}

#define THREADS 4
#define PER_THREAD 250000

typedef struct {
    cs_counter_t *c;
    cs_gauge_t *g;
    cs_hist_t *h;
} shared_t;

static void *hammer(void *arg)
{
    shared_t *s = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        cs_counter_add(s->c, 1);
        cs_gauge_add(s->g, (i & 1) ? 3 : -1);
        cs_hist_observe(s->h, (i % 4) * 0.5); /* 0, 0.5, 1, 1.5 */
    }
    return NULL;
}

static void test_concurrent(void)
{
    cs_metrics_t *m = cs_metrics_new();
    double bounds[] = {0.5, 1};
    shared_t s = {cs_metrics_counter(m, "crmsync_c_total", "C", NULL),
                  cs_metrics_gauge(m, "crmsync_g", "G", NULL),
                  cs_metrics_histogram(m, "crmsync_h", "H", NULL, bounds, 2)};
    REQUIRE(s.c && s.g && s.h);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, hammer, &s) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(cs_counter_get(s.c), (long long)THREADS * PER_THREAD);
    CHECK_INT(cs_gauge_get(s.g), (long long)THREADS * (PER_THREAD / 2) * 2);
    CHECK_INT(cs_hist_count(s.h), (long long)THREADS * PER_THREAD);
    char *text = cs_metrics_render(m, NULL);
    REQUIRE(text);
    /* per thread: sum = (0 + 0.5 + 1 + 1.5) * PER_THREAD / 4 = 0.75 * PER_THREAD, exact */
    char want[128];
    snprintf(want, sizeof(want), "crmsync_h_sum %.0f\n", 0.75 * PER_THREAD * THREADS);
    CHECK(strstr(text, want) != NULL);
    snprintf(want, sizeof(want), "crmsync_h_bucket{le=\"0.5\"} %d\n", THREADS * PER_THREAD / 2);
    CHECK(strstr(text, want) != NULL);
    snprintf(want, sizeof(want), "crmsync_h_bucket{le=\"1\"} %d\n", THREADS * PER_THREAD / 4 * 3);
    CHECK(strstr(text, want) != NULL);
    free(text);
    cs_metrics_destroy(m);
}

int main(void)
{
    test_handles();
    test_render_exact();
    test_quantile();
    test_concurrent();
    return cs_test_report();
}
