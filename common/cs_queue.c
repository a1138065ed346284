#include "cs_queue.h"
#include "cs_err.h"

#include <stdlib.h>
#include <string.h>

typedef struct qlist_s {
    uint32_t head, tail;
    size_t len;
} qlist_t;

struct cs_queue_s {
    cs_qentry_t *e;
    size_t n, cap;
    qlist_t lists[CS_QL_COUNT_];
};

cs_queue_t *cs_queue_new(void)
{
    cs_queue_t *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    for (int i = 0; i < CS_QL_COUNT_; i++)
        q->lists[i].head = q->lists[i].tail = CS_NONE;
    return q;
}

void cs_queue_destroy(cs_queue_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++)
        free(q->e[i].buf);
    free(q->e);
    free(q);
}

cs_qentry_t *cs_queue_entry(const cs_queue_t *q, uint32_t e)
{
    return &q->e[e];
}

static void unlink_entry(cs_queue_t *q, uint32_t e)
{
    cs_qentry_t *x = &q->e[e];
    qlist_t *l = &q->lists[x->list];
    if (x->prev != CS_NONE)
        q->e[x->prev].next = x->next;
    else
        l->head = x->next;
    if (x->next != CS_NONE)
        q->e[x->next].prev = x->prev;
    else
        l->tail = x->prev;
    l->len--;
    x->prev = x->next = CS_NONE;
}

static void append(cs_queue_t *q, uint32_t e, cs_qlist_t li)
{
    cs_qentry_t *x = &q->e[e];
    qlist_t *l = &q->lists[li];
    x->list = (uint8_t)li;
    x->next = CS_NONE;
    x->prev = l->tail;
    if (l->tail != CS_NONE)
        q->e[l->tail].next = e;
    else
        l->head = e;
    l->tail = e;
    l->len++;
}

uint32_t cs_queue_add(cs_queue_t *q, uint32_t st, int64_t now_ms, int sync_now)
{
    uint32_t e;
    if (q->lists[CS_QL_FREE].head != CS_NONE) {
        e = q->lists[CS_QL_FREE].head;
        unlink_entry(q, e);
    } else {
        if (q->n == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 256;
            cs_qentry_t *ne = realloc(q->e, cap * sizeof(*ne));
            if (!ne)
                return CS_NONE;
            q->e = ne;
            q->cap = cap;
        }
        e = (uint32_t)q->n++;
        memset(&q->e[e], 0, sizeof(q->e[e]));
    }
    cs_qentry_t *x = &q->e[e];
    char *buf = x->buf; /* the value buffer is kept across reuse */
    uint32_t cap = x->buf_cap;
    memset(x, 0, sizeof(*x));
    x->buf = buf;
    x->buf_cap = cap;
    x->state = st;
    x->sync_now = (uint8_t)(sync_now != 0);
    x->enqueued_ms = now_ms;
    for (int i = 0; i < CS_QUEUE_INPUTS; i++)
        x->min_offset[i] = -1;
    x->prev = x->next = CS_NONE;
    append(q, e, sync_now ? CS_QL_PRIO : CS_QL_READY);
    return e;
}

int cs_queue_set_value(cs_queue_t *q, uint32_t e, int f, const char *v, size_t len)
{
    cs_qentry_t *x = &q->e[e];
    uint32_t bit = 1u << f;
    int had = (x->has_value & bit) && !(x->is_null & bit);
    if (len > 65535)
        len = 65535;
    x->has_value |= bit;
    if (!v) {
        x->is_null |= bit;
        x->vlen[f] = 0;
        return CS_OK;
    }
    x->is_null &= ~bit;
    /* Overwrite in place when the new value fits where the old one was. */
    if (had && x->vlen[f] >= len) {
        memcpy(x->buf + x->voff[f], v, len);
        x->vlen[f] = (uint16_t)len;
        return CS_OK;
    }
    if (x->buf_len + len > x->buf_cap) {
        /* Compact first: a long burst rewrites the same fields many times. */
        uint32_t live = 0;
        for (int i = 0; i < CS_FIELDS_MAX; i++)
            if ((x->has_value & ~x->is_null & (1u << i)) && i != f)
                live += x->vlen[i];
        uint32_t cap = x->buf_cap ? x->buf_cap : 256;
        while (cap < live + len)
            cap *= 2;
        char *nb = malloc(cap);
        if (!nb)
            return CS_ERR_NOMEM;
        uint32_t w = 0;
        for (int i = 0; i < CS_FIELDS_MAX; i++) {
            if ((x->has_value & ~x->is_null & (1u << i)) && i != f) {
                memcpy(nb + w, x->buf + x->voff[i], x->vlen[i]);
                x->voff[i] = w;
                w += x->vlen[i];
            }
        }
        free(x->buf);
        x->buf = nb;
        x->buf_cap = cap;
        x->buf_len = w;
    }
    memcpy(x->buf + x->buf_len, v, len);
    x->voff[f] = x->buf_len;
    x->vlen[f] = (uint16_t)len;
    x->buf_len += (uint32_t)len;
    return CS_OK;
}

const char *cs_queue_value(const cs_queue_t *q, uint32_t e, int f, size_t *len)
{
    const cs_qentry_t *x = &q->e[e];
    uint32_t bit = 1u << f;
    *len = 0;
    if (!(x->has_value & bit) || (x->is_null & bit))
        return NULL;
    *len = x->vlen[f];
    return x->buf + x->voff[f];
}

void cs_queue_move(cs_queue_t *q, uint32_t e, cs_qlist_t l)
{
    if (q->e[e].list == l)
        return;
    unlink_entry(q, e);
    append(q, e, l);
}

void cs_queue_move_front(cs_queue_t *q, uint32_t e, cs_qlist_t li)
{
    cs_qentry_t *x = &q->e[e];
    qlist_t *l = &q->lists[li];
    unlink_entry(q, e);
    x->list = (uint8_t)li;
    x->prev = CS_NONE;
    x->next = l->head;
    if (l->head != CS_NONE)
        q->e[l->head].prev = e;
    else
        l->tail = e;
    l->head = e;
    l->len++;
}

void cs_queue_remove(cs_queue_t *q, uint32_t e)
{
    unlink_entry(q, e);
    q->e[e].buf_len = 0;
    append(q, e, CS_QL_FREE);
}

size_t cs_queue_take(cs_queue_t *q, uint32_t *out, size_t max, int prio_only,
                     int (*pred)(void *opaque, uint32_t e), void *opaque)
{
    size_t n = 0;
    cs_qlist_t order[2] = {CS_QL_PRIO, CS_QL_READY};
    for (int li = 0; li < (prio_only ? 1 : 2) && n < max; li++) {
        uint32_t e = q->lists[order[li]].head;
        while (e != CS_NONE && n < max) {
            uint32_t next = q->e[e].next;
            int take = pred ? pred(opaque, e) : 1;
            if (take < 0)
                break;
            if (take) {
                cs_queue_move(q, e, CS_QL_INFLIGHT);
                out[n++] = e;
            }
            e = next;
        }
    }
    return n;
}

size_t cs_queue_due(cs_queue_t *q, int64_t now_ms)
{
    size_t n = 0;
    uint32_t e = q->lists[CS_QL_RETRY].head;
    while (e != CS_NONE) {
        uint32_t next = q->e[e].next;
        if (q->e[e].retry_at <= now_ms) {
            cs_queue_move(q, e, q->e[e].sync_now ? CS_QL_PRIO : CS_QL_READY);
            n++;
        }
        e = next;
    }
    return n;
}

size_t cs_queue_len(const cs_queue_t *q, cs_qlist_t l)
{
    return q->lists[l].len;
}

size_t cs_queue_total(const cs_queue_t *q)
{
    return q->n - q->lists[CS_QL_FREE].len;
}

size_t cs_queue_count_before(const cs_queue_t *q, cs_qlist_t l, int64_t cutoff_ms, size_t max)
{
    size_t n = 0;
    for (uint32_t e = q->lists[l].head; e != CS_NONE && n < max && q->e[e].enqueued_ms <= cutoff_ms;
         e = q->e[e].next)
        n++;
    return n;
}

int64_t cs_queue_oldest(const cs_queue_t *q, cs_qlist_t l)
{
    uint32_t h = q->lists[l].head;
    return h == CS_NONE ? -1 : q->e[h].enqueued_ms;
}

uint32_t cs_queue_first(const cs_queue_t *q, cs_qlist_t l)
{
    return q->lists[l].head;
}

uint32_t cs_queue_next(const cs_queue_t *q, uint32_t e)
{
    return q->e[e].next;
}
