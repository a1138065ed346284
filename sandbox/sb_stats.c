#include "sb_stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb_stats_s {
    pthread_mutex_t mu;
    json_t *root; /* {"crm": {...}, "marketing": {...}} */
    cs_counter_t *calls[2];
};

static json_t *side_new(void)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:{}, s:{}, s:{}}", "api_calls", 0, "records_created", 0,
                     "records_updated", 0, "records_deleted", 0, "endpoints", "objects", "refused");
}

static json_t *root_new(void)
{
    return json_pack("{s:o, s:o}", "crm", side_new(), "marketing", side_new());
}

sb_stats_t *sb_stats_new(cs_metrics_t *metrics)
{
    sb_stats_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->root = root_new();
    if (!s->root) {
        sb_stats_destroy(s);
        return NULL;
    }
    if (metrics) {
        const char *help = "API calls answered by the sandbox, by side";
        s->calls[0] =
            cs_metrics_counter(metrics, "crmsync_sandbox_api_calls_total", help, "side=\"crm\"");
        s->calls[1] = cs_metrics_counter(metrics, "crmsync_sandbox_api_calls_total", help,
                                         "side=\"marketing\"");
    }
    return s;
}

void sb_stats_destroy(sb_stats_t *s)
{
    if (!s)
        return;
    json_decref(s->root);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void sb_stats_reset(sb_stats_t *s)
{
    json_t *fresh = root_new();
    if (!fresh)
        return;
    pthread_mutex_lock(&s->mu);
    json_decref(s->root);
    s->root = fresh;
    pthread_mutex_unlock(&s->mu);
}

static void incr(json_t *obj, const char *key, json_int_t by)
{
    json_t *v = json_object_get(obj, key);
    if (v)
        json_integer_set(v, json_integer_value(v) + by);
    else
        json_object_set_new(obj, key, json_integer(by));
}

/* Child object of parent under key, created empty when missing (borrowed). */
static json_t *child(json_t *parent, const char *key, json_t *(*make)(void))
{
    json_t *c = json_object_get(parent, key);
    if (!c) {
        c = make();
        json_object_set_new(parent, key, c);
    }
    return c;
}

static json_t *endpoint_new(void)
{
    return json_pack("{s:i, s:{}}", "calls", 0, "status");
}

static json_t *object_new(void)
{
    return json_pack("{s:i, s:i, s:i, s:i}", "calls", 0, "created", 0, "updated", 0, "deleted", 0);
}

void sb_stats_call(sb_stats_t *s, const char *side, const char *endpoint, int status)
{
    char cls[16];
    snprintf(cls, sizeof(cls), "%dxx", (status / 100) % 10);
    pthread_mutex_lock(&s->mu);
    json_t *sd = json_object_get(s->root, side);
    if (sd) {
        incr(sd, "api_calls", 1);
        json_t *ep = child(json_object_get(sd, "endpoints"), endpoint, endpoint_new);
        if (ep) {
            incr(ep, "calls", 1);
            incr(json_object_get(ep, "status"), cls, 1);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (s->calls[0] && sd)
        cs_counter_add(s->calls[strcmp(side, "crm") != 0], 1);
}

void sb_stats_refused(sb_stats_t *s, const char *side, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    json_t *sd = json_object_get(s->root, side);
    if (sd)
        incr(json_object_get(sd, "refused"), reason, 1);
    pthread_mutex_unlock(&s->mu);
}

void sb_stats_object(sb_stats_t *s, const char *side, const char *object, unsigned calls,
                     unsigned created, unsigned updated, unsigned deleted)
{
    pthread_mutex_lock(&s->mu);
    json_t *sd = json_object_get(s->root, side);
    json_t *o = sd ? child(json_object_get(sd, "objects"), object, object_new) : NULL;
    if (o) {
        incr(o, "calls", calls);
        incr(o, "created", created);
        incr(o, "updated", updated);
        incr(o, "deleted", deleted);
        incr(sd, "records_created", created);
        incr(sd, "records_updated", updated);
        incr(sd, "records_deleted", deleted);
    }
    pthread_mutex_unlock(&s->mu);
}

json_t *sb_stats_json(sb_stats_t *s)
{
    pthread_mutex_lock(&s->mu);
    json_t *copy = json_deep_copy(s->root);
    pthread_mutex_unlock(&s->mu);
    return copy;
}
