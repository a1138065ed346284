/* Event tracking: the dedup window and message completion (see act.h).
 *
 * An entry is one event id. It is referenced by the window (while its id is in it), by the
 * producer (from send to delivery report) and by each request waiting for it; the last
 * reference frees it. The window is a hash table for lookups plus a ring in acceptance
 * order for eviction: inserting the (window+1)-th id evicts the oldest. A failed delivery
 * takes the id out at once, so a retry is produced again; a delivered one stays until
 * evicted, so a retry within the window is answered as a duplicate without producing.
 * One mutex guards everything; one condition variable (monotonic clock) wakes waiters. */
#include "act.h"

#include "cs_err.h"
#include "cs_run.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_SLOT ((size_t)-1)

struct act_entry_s {
    act_entry_t *hnext; /* hash chain */
    uint64_t hash;
    size_t slot; /* ring slot, NO_SLOT when not in the window */
    int state;
    int refs;
    char id[]; /* "" for untracked entries */
};

struct act_tracker_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t window; /* ring size; 0 = no dedup */
    act_entry_t **ring;
    size_t head, count;
    act_entry_t **buckets;
    size_t nbuckets; /* power of two */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

act_tracker_t *act_tracker_new(size_t window)
{
    act_tracker_t *t = calloc(1, sizeof(*t));
    pthread_condattr_t ca;
    if (!t)
        return NULL;
    t->window = window;
    if (window) {
        t->nbuckets = 16;
        while (t->nbuckets < window * 2)
            t->nbuckets *= 2;
        t->ring = calloc(window, sizeof(*t->ring));
        t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
        if (!t->ring || !t->buckets) {
            free(t->ring);
            free(t->buckets);
            free(t);
            return NULL;
        }
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    return t;
}

static void unref(act_entry_t *e)
{
    if (--e->refs == 0)
        free(e);
}

/* Takes e out of the window (hash chain and ring) and drops the window's reference. */
static void window_remove(act_tracker_t *t, act_entry_t *e)
{
    act_entry_t **pp = &t->buckets[e->hash & (t->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    e->hnext = NULL;
    t->ring[e->slot] = NULL;
    e->slot = NO_SLOT;
    t->count--;
    unref(e);
}

void act_tracker_destroy(act_tracker_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->window; i++)
        if (t->ring[i])
            window_remove(t, t->ring[i]);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->ring);
    free(t->buckets);
    free(t);
}

int act_tracker_claim(act_tracker_t *t, const char *id, act_entry_t **out, int *dup)
{
    uint64_t h = id ? fnv1a(id) : 0;
    act_entry_t *e;
    *out = NULL;
    *dup = 0;
    pthread_mutex_lock(&t->mu);
    if (id && t->window) {
        for (e = t->buckets[h & (t->nbuckets - 1)]; e; e = e->hnext)
            if (e->hash == h && !strcmp(e->id, id)) {
                e->refs++;
                *out = e;
                *dup = 1;
                pthread_mutex_unlock(&t->mu);
                return CS_OK;
            }
    }
    size_t idlen = id ? strlen(id) : 0;
    e = calloc(1, sizeof(*e) + idlen + 1);
    if (!e) {
        pthread_mutex_unlock(&t->mu);
        return CS_ERR_NOMEM;
    }
    if (id)
        memcpy(e->id, id, idlen + 1);
    e->hash = h;
    e->slot = NO_SLOT;
    e->state = ACT_PENDING;
    e->refs = 2; /* the caller and the producer */
    if (id && t->window) {
        if (t->ring[t->head]) /* the oldest id leaves the window */
            window_remove(t, t->ring[t->head]);
        t->ring[t->head] = e;
        e->slot = t->head;
        t->head = (t->head + 1) % t->window;
        e->hnext = t->buckets[h & (t->nbuckets - 1)];
        t->buckets[h & (t->nbuckets - 1)] = e;
        t->count++;
        e->refs++; /* the window */
    }
    *out = e;
    pthread_mutex_unlock(&t->mu);
    return CS_OK;
}

void act_tracker_resolve(act_tracker_t *t, act_entry_t *e, int err)
{
    pthread_mutex_lock(&t->mu);
    e->state = err ? ACT_FAILED : ACT_DELIVERED;
    if (err && e->slot != NO_SLOT)
        window_remove(t, e);
    unref(e); /* the producer's */
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void count(act_entry_t *const *e, size_t n, act_outcome_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        if (!e[i])
            continue;
        if (e[i]->state == ACT_DELIVERED)
            out->delivered++;
        else if (e[i]->state == ACT_FAILED)
            out->failed++;
        else
            out->pending++;
    }
}

void act_tracker_wait(act_tracker_t *t, act_entry_t *const *e, size_t n, int64_t deadline_ms,
                      act_outcome_t *out)
{
    pthread_mutex_lock(&t->mu);
    for (;;) {
        count(e, n, out);
        if (!out->pending)
            break;
        int64_t left = deadline_ms - cs_now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
}

void act_tracker_release(act_tracker_t *t, act_entry_t *const *e, size_t n)
{
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < n; i++)
        if (e[i])
            unref(e[i]);
    pthread_mutex_unlock(&t->mu);
}

size_t act_tracker_size(act_tracker_t *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

int act_tracker_state(act_tracker_t *t, act_entry_t *e)
{
    pthread_mutex_lock(&t->mu);
    int st = e->state;
    pthread_mutex_unlock(&t->mu);
    return st;
}
