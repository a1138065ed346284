/* cs_metrics: a registry of counters, gauges and histograms served as Prometheus text.
 *
 * Registration (cs_metrics_counter() etc.) takes a lock and may allocate: do it at setup,
 * keep the returned handle, and update through it on the hot path (one relaxed atomic op,
 * no lock, no allocation). Handles live until cs_metrics_destroy(). Any thread. */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_metrics_s cs_metrics_t;
typedef struct cs_counter_s cs_counter_t;
typedef struct cs_gauge_s cs_gauge_t;
typedef struct cs_hist_s cs_hist_t;

/* Returns NULL on allocation failure. Caller frees with cs_metrics_destroy(). */
cs_metrics_t *cs_metrics_new(void);
void cs_metrics_destroy(cs_metrics_t *m); /* accepts NULL */

/* name: Prometheus metric name ("crmsync_events_consumed_total"); labels: the text between the
 * braces ("topic=\"activity\",type=\"form\"") or NULL. Registering the same name+labels twice
 * returns the same handle. Returns NULL on allocation failure, for a name that is not a valid
 * Prometheus name, for a name already registered as another kind, and (histograms) for bounds
 * not strictly ascending or differing from the series' first registration. */
cs_counter_t *cs_metrics_counter(cs_metrics_t *m, const char *name, const char *help,
                                 const char *labels);
cs_gauge_t *cs_metrics_gauge(cs_metrics_t *m, const char *name, const char *help,
                             const char *labels);
/* bounds: ascending upper bounds (the +Inf bucket is implicit), copied. */
cs_hist_t *cs_metrics_histogram(cs_metrics_t *m, const char *name, const char *help,
                                const char *labels, const double *bounds, size_t nbounds);

void cs_counter_add(cs_counter_t *c, uint64_t n);
uint64_t cs_counter_get(const cs_counter_t *c);
void cs_gauge_set(cs_gauge_t *g, int64_t v);
void cs_gauge_add(cs_gauge_t *g, int64_t delta);
int64_t cs_gauge_get(const cs_gauge_t *g);
void cs_hist_observe(cs_hist_t *h, double v);
/* Estimated quantile (0 < q < 1) from the buckets (linear within a bucket); 0 when empty. */
double cs_hist_quantile(const cs_hist_t *h, double q);
uint64_t cs_hist_count(const cs_hist_t *h);

/* Renders every metric in the Prometheus text exposition format (version 0.0.4).
 * Returns a malloc'd NUL-terminated string (caller frees with free()), NULL on ENOMEM. */
char *cs_metrics_render(cs_metrics_t *m, size_t *len);

#endif
