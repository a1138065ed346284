/* cs_metrics: lock-free updates, locked registration and rendering.
 *
 * Layout: the registry holds families (one per metric name, in registration order: that is
 * the render order), each family a list of series (one per label set, in registration
 * order). A series is a counter, a gauge or a histogram; every series starts with the same
 * header so a family can walk its list without knowing the kind.
 *
 * Hot path: counters and gauges are one relaxed atomic add; a histogram observation is one
 * relaxed add on its bucket plus a CAS loop on the double sum. Counters and gauges are
 * allocated on their own cache line so two hot counters never share one. Relaxed ordering
 * is enough: nothing is synchronised through a metric, and a scrape may see values a few
 * updates old. A histogram's _count is rendered as the sum of the bucket counts read
 * during that scrape, so _count always equals the +Inf bucket. */
#include "cs_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HIST } kind_t;

typedef struct series_s {
    struct series_s *next;
    char *labels; /* "" when none */
} series_t;

struct cs_counter_s {
    _Alignas(CACHE_LINE) _Atomic uint64_t v;
    series_t s;
};

struct cs_gauge_s {
    _Alignas(CACHE_LINE) _Atomic int64_t v;
    series_t s;
};

struct cs_hist_s {
    series_t s;
    size_t nbounds;
    double *bounds;            /* nbounds ascending upper bounds */
    _Atomic uint64_t *counts;  /* nbounds + 1, non-cumulative; the last one is +Inf */
    _Atomic uint64_t sum_bits; /* a double, stored as its bits */
};

typedef struct family_s {
    struct family_s *next;
    char *name;
    char *help;
    kind_t kind;
    series_t *head, **tail;
} family_t;

struct cs_metrics_s {
    pthread_mutex_t lock;
    family_t *head, **tail;
};

#define SERIES_OF(ptr, type) ((type *)((char *)(ptr)-offsetof(type, s)))

cs_metrics_t *cs_metrics_new(void)
{
    cs_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->tail = &m->head;
    return m;
}

static void series_free(kind_t kind, series_t *s)
{
    free(s->labels);
    if (kind == KIND_COUNTER) {
        free(SERIES_OF(s, struct cs_counter_s));
    } else if (kind == KIND_GAUGE) {
        free(SERIES_OF(s, struct cs_gauge_s));
    } else {
        struct cs_hist_s *h = SERIES_OF(s, struct cs_hist_s);
        free(h->bounds);
        free(h->counts);
        free(h);
    }
}

void cs_metrics_destroy(cs_metrics_t *m)
{
    if (!m)
        return;
    family_t *f = m->head;
    while (f) {
        family_t *fn = f->next;
        series_t *s = f->head;
        while (s) {
            series_t *sn = s->next;
            series_free(f->kind, s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]* */
static int valid_name(const char *n)
{
    if (!n || !*n)
        return 0;
    for (const char *p = n; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        if (!alpha && !(p != n && *p >= '0' && *p <= '9'))
            return 0;
    }
    return 1;
}

/* Finds or creates the family; NULL on ENOMEM or when the name is taken by another kind.
 * Called with the lock held. */
static family_t *family_get(cs_metrics_t *m, const char *name, const char *help, kind_t kind)
{
    for (family_t *f = m->head; f; f = f->next) {
        if (!strcmp(f->name, name))
            return f->kind == kind ? f : NULL;
    }
    family_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->kind = kind;
    f->tail = &f->head;
    *m->tail = f;
    m->tail = &f->next;
    return f;
}

static series_t *series_find(family_t *f, const char *labels)
{
    for (series_t *s = f->head; s; s = s->next) {
        if (!strcmp(s->labels, labels))
            return s;
    }
    return NULL;
}

static void series_append(family_t *f, series_t *s)
{
    *f->tail = s;
    f->tail = &s->next;
}

static void *alloc_aligned(size_t size)
{
    size_t rounded = (size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    void *p = aligned_alloc(CACHE_LINE, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

cs_counter_t *cs_metrics_counter(cs_metrics_t *m, const char *name, const char *help,
                                 const char *labels)
{
    cs_counter_t *c = NULL;
    if (!m || !valid_name(name))
        return NULL;
    if (!labels)
        labels = "";
    pthread_mutex_lock(&m->lock);
    family_t *f = family_get(m, name, help, KIND_COUNTER);
    if (!f)
        goto out;
    series_t *s = series_find(f, labels);
    if (s) {
        c = SERIES_OF(s, cs_counter_t);
        goto out;
    }
    c = alloc_aligned(sizeof(*c));
    if (!c)
        goto out;
    atomic_init(&c->v, 0);
    c->s.labels = strdup(labels);
    if (!c->s.labels) {
        free(c);
        c = NULL;
        goto out;
    }
    series_append(f, &c->s);
out:
    pthread_mutex_unlock(&m->lock);
    return c;
}

cs_gauge_t *cs_metrics_gauge(cs_metrics_t *m, const char *name, const char *help,
                             const char *labels)
{
    cs_gauge_t *g = NULL;
    if (!m || !valid_name(name))
        return NULL;
    if (!labels)
        labels = "";
    pthread_mutex_lock(&m->lock);
    family_t *f = family_get(m, name, help, KIND_GAUGE);
    if (!f)
        goto out;
    series_t *s = series_find(f, labels);
    if (s) {
        g = SERIES_OF(s, cs_gauge_t);
        goto out;
    }
    g = alloc_aligned(sizeof(*g));
    if (!g)
        goto out;
    atomic_init(&g->v, 0);
    g->s.labels = strdup(labels);
    if (!g->s.labels) {
        free(g);
        g = NULL;
        goto out;
    }
    series_append(f, &g->s);
out:
    pthread_mutex_unlock(&m->lock);
    return g;
}

cs_hist_t *cs_metrics_histogram(cs_metrics_t *m, const char *name, const char *help,
                                const char *labels, const double *bounds, size_t nbounds)
{
    cs_hist_t *h = NULL;
    if (!m || !valid_name(name) || (nbounds && !bounds))
        return NULL;
    for (size_t i = 0; i < nbounds; i++) {
        if (isnan(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return NULL; /* bounds must be strictly ascending */
    }
    if (!labels)
        labels = "";
    pthread_mutex_lock(&m->lock);
    family_t *f = family_get(m, name, help, KIND_HIST);
    if (!f)
        goto out;
    series_t *s = series_find(f, labels);
    if (s) {
        h = SERIES_OF(s, cs_hist_t);
        /* Same series with other buckets: a programming error, refuse it. */
        if (h->nbounds != nbounds ||
            (nbounds && memcmp(h->bounds, bounds, nbounds * sizeof(*bounds))))
            h = NULL;
        goto out;
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        goto out;
    h->nbounds = nbounds;
    h->bounds = malloc((nbounds ? nbounds : 1) * sizeof(*h->bounds));
    h->counts = calloc(nbounds + 1, sizeof(*h->counts));
    h->s.labels = strdup(labels);
    if (!h->bounds || !h->counts || !h->s.labels) {
        free(h->bounds);
        free(h->counts);
        free(h->s.labels);
        free(h);
        h = NULL;
        goto out;
    }
    if (nbounds)
        memcpy(h->bounds, bounds, nbounds * sizeof(*bounds));
    for (size_t i = 0; i <= nbounds; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum_bits, 0); /* the bits of 0.0 */
    series_append(f, &h->s);
out:
    pthread_mutex_unlock(&m->lock);
    return h;
}

void cs_counter_add(cs_counter_t *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t cs_counter_get(const cs_counter_t *c)
{
    return c ? atomic_load_explicit(&((cs_counter_t *)c)->v, memory_order_relaxed) : 0;
}

void cs_gauge_set(cs_gauge_t *g, int64_t v)
{
    if (g)
        atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

void cs_gauge_add(cs_gauge_t *g, int64_t delta)
{
    if (g)
        atomic_fetch_add_explicit(&g->v, delta, memory_order_relaxed);
}

int64_t cs_gauge_get(const cs_gauge_t *g)
{
    return g ? atomic_load_explicit(&((cs_gauge_t *)g)->v, memory_order_relaxed) : 0;
}

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* NaN observations are dropped: they would poison the sum forever. */
void cs_hist_observe(cs_hist_t *h, double v)
{
    if (!h || isnan(v))
        return;
    /* Binary search for the first bound >= v (Prometheus buckets are "le"). */
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, dbl_bits(bits_dbl(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

uint64_t cs_hist_count(const cs_hist_t *h)
{
    uint64_t n = 0;
    if (!h)
        return 0;
    for (size_t i = 0; i <= h->nbounds; i++)
        n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    return n;
}

/* Same estimate as Prometheus' histogram_quantile(): find the bucket holding the rank and
 * interpolate linearly inside it; the first bucket starts at 0 (or at its bound if that is
 * not positive); a rank in the +Inf bucket answers the highest finite bound. */
double cs_hist_quantile(const cs_hist_t *h, double q)
{
    if (!h || isnan(q))
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    size_t n = h->nbounds + 1;
    uint64_t stack_counts[64];
    uint64_t *counts = n <= 64 ? stack_counts : malloc(n * sizeof(*counts));
    if (!counts)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        counts[i] = atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        total += counts[i];
    }
    double result = 0;
    if (total == 0)
        goto out;
    double rank = q * (double)total;
    uint64_t cum = 0;
    size_t b = 0;
    for (; b < n; b++) {
        if ((double)(cum + counts[b]) >= rank && counts[b] > 0)
            break;
        cum += counts[b];
    }
    if (b >= n)
        b = n - 1;
    if (b == h->nbounds) { /* +Inf bucket */
        result = h->nbounds ? h->bounds[h->nbounds - 1] : 0;
        goto out;
    }
    double upper = h->bounds[b];
    double lower = b > 0 ? h->bounds[b - 1] : (upper > 0 ? 0 : upper);
    if (counts[b] == 0) {
        result = upper;
        goto out;
    }
    result = lower + (upper - lower) * ((rank - (double)cum) / (double)counts[b]);
out:
    if (counts != stack_counts)
        free(counts);
    return result;
}

/* ---- rendering ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Shortest text that reads back as the same double; Inf/NaN spelled as Prometheus wants. */
static void fmt_double(char *out, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(out, n, "NaN");
    } else if (isinf(v)) {
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    } else {
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(out, n, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                return;
        }
    }
}

/* HELP text escapes backslash and newline. */
static void sb_help(sbuf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_str(b, "\\\\");
        else if (*s == '\n')
            sb_str(b, "\\n");
        else
            sb_put(b, s, 1);
    }
}

/* name{labels} or name{labels,extra} or name{extra} or name */
static void sb_series(sbuf_t *b, const char *name, const char *suffix, const char *labels,
                      const char *extra)
{
    sb_str(b, name);
    sb_str(b, suffix);
    int has_l = labels && *labels, has_e = extra && *extra;
    if (has_l || has_e) {
        sb_str(b, "{");
        if (has_l)
            sb_str(b, labels);
        if (has_l && has_e)
            sb_str(b, ",");
        if (has_e)
            sb_str(b, extra);
        sb_str(b, "}");
    }
    sb_str(b, " ");
}

static const char *kind_name(kind_t k)
{
    return k == KIND_COUNTER ? "counter" : k == KIND_GAUGE ? "gauge" : "histogram";
}

static void render_hist(sbuf_t *b, const char *name, cs_hist_t *h)
{
    char num[64], le[96];
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        fmt_double(num, sizeof(num), i < h->nbounds ? h->bounds[i] : INFINITY);
        snprintf(le, sizeof(le), "le=\"%s\"", num);
        sb_series(b, name, "_bucket", h->s.labels, le);
        snprintf(num, sizeof(num), "%llu\n", (unsigned long long)cum);
        sb_str(b, num);
    }
    sb_series(b, name, "_sum", h->s.labels, NULL);
    fmt_double(num, sizeof(num),
               bits_dbl(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    sb_str(b, num);
    sb_str(b, "\n");
    sb_series(b, name, "_count", h->s.labels, NULL);
    snprintf(num, sizeof(num), "%llu\n", (unsigned long long)cum);
    sb_str(b, num);
}

char *cs_metrics_render(cs_metrics_t *m, size_t *len)
{
    sbuf_t b = {0};
    char num[64];
    if (len)
        *len = 0;
    if (!m)
        return NULL;
    sb_put(&b, "", 0); /* an empty registry renders "" rather than NULL */
    pthread_mutex_lock(&m->lock);
    for (family_t *f = m->head; f; f = f->next) {
        if (!f->head)
            continue;
        sb_str(&b, "# HELP ");
        sb_str(&b, f->name);
        sb_str(&b, " ");
        sb_help(&b, f->help);
        sb_str(&b, "\n# TYPE ");
        sb_str(&b, f->name);
        sb_str(&b, " ");
        sb_str(&b, kind_name(f->kind));
        sb_str(&b, "\n");
        for (series_t *s = f->head; s; s = s->next) {
            if (f->kind == KIND_COUNTER) {
                sb_series(&b, f->name, "", s->labels, NULL);
                snprintf(num, sizeof(num), "%llu\n",
                         (unsigned long long)cs_counter_get(SERIES_OF(s, cs_counter_t)));
                sb_str(&b, num);
            } else if (f->kind == KIND_GAUGE) {
                sb_series(&b, f->name, "", s->labels, NULL);
                snprintf(num, sizeof(num), "%lld\n",
                         (long long)cs_gauge_get(SERIES_OF(s, cs_gauge_t)));
                sb_str(&b, num);
            } else {
                render_hist(&b, f->name, SERIES_OF(s, cs_hist_t));
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.buf;
}
