#include "cs_state.h"

#include <stdlib.h>
#include <string.h>

/* One slot of the open-addressed table: record index + 1 (0 = empty) and the upper 32 bits
 * of the key hash, so most mismatches are rejected without touching the record. */
typedef struct slot_s {
    uint32_t idx1;
    uint32_t tag;
} slot_t;

struct cs_store_s {
    int nfields;
    size_t stride; /* bytes per record */
    uint8_t *recs;
    size_t nrecs, cap;
    char *keys;
    size_t keys_len, keys_cap;
    slot_t *slots;
    size_t nslots; /* power of two */
};

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t cs_hash64(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (len * 0xA0761D6478BD642FULL), t = 0;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix(h ^ v, 0xA0761D6478BD642FULL);
        p += 8;
        len -= 8;
    }
    if (len)
        memcpy(&t, p, len);
    h = mix(h ^ t, 0xE7037ED1A0B428DBULL);
    return mix(h, 0x8EBC6AF09C88C6E3ULL);
}

uint32_t cs_value_hash(const char *v, size_t len)
{
    if (!v)
        return 1; /* null / empty-by-absence */
    uint32_t h = (uint32_t)cs_hash64(v, len);
    return h < 2 ? h + 2 : h; /* 0 = never seen, 1 = null */
}

cs_store_t *cs_store_new(int nfields)
{
    cs_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->nfields = nfields;
    s->stride = sizeof(cs_pstate_t) + (size_t)nfields * sizeof(cs_fstate_t);
    s->stride = (s->stride + 7) & ~(size_t)7;
    s->nslots = 1024;
    s->slots = calloc(s->nslots, sizeof(slot_t));
    if (!s->slots) {
        free(s);
        return NULL;
    }
    return s;
}

void cs_store_destroy(cs_store_t *s)
{
    if (!s)
        return;
    free(s->recs);
    free(s->keys);
    free(s->slots);
    free(s);
}

cs_pstate_t *cs_store_at(const cs_store_t *s, uint32_t idx)
{
    return (cs_pstate_t *)(s->recs + (size_t)idx * s->stride);
}

const char *cs_store_key(const cs_store_t *s, uint32_t idx, size_t *len)
{
    const cs_pstate_t *r = cs_store_at(s, idx);
    *len = r->key_len;
    return s->keys + r->key_off;
}

static uint32_t lookup(const cs_store_t *s, const char *key, size_t len, uint64_t h,
                       size_t *slot_out)
{
    size_t mask = s->nslots - 1, i = (size_t)h & mask;
    uint32_t tag = (uint32_t)(h >> 32);
    for (;;) {
        const slot_t *sl = &s->slots[i];
        if (!sl->idx1) {
            *slot_out = i;
            return CS_NONE;
        }
        if (sl->tag == tag) {
            const cs_pstate_t *r = cs_store_at(s, sl->idx1 - 1);
            if (r->key_len == len && !memcmp(s->keys + r->key_off, key, len)) {
                *slot_out = i;
                return sl->idx1 - 1;
            }
        }
        i = (i + 1) & mask;
    }
}

uint32_t cs_store_find(const cs_store_t *s, const char *key, size_t len)
{
    size_t slot;
    return lookup(s, key, len, cs_hash64(key, len), &slot);
}

static int rehash(cs_store_t *s, size_t nslots)
{
    slot_t *ns = calloc(nslots, sizeof(slot_t));
    if (!ns)
        return -1;
    free(s->slots);
    s->slots = ns;
    s->nslots = nslots;
    for (size_t r = 0; r < s->nrecs; r++) {
        const cs_pstate_t *p = cs_store_at(s, (uint32_t)r);
        uint64_t h = cs_hash64(s->keys + p->key_off, p->key_len);
        size_t i = (size_t)h & (nslots - 1);
        while (ns[i].idx1)
            i = (i + 1) & (nslots - 1);
        ns[i].idx1 = (uint32_t)r + 1;
        ns[i].tag = (uint32_t)(h >> 32);
    }
    return 0;
}

uint32_t cs_store_upsert(cs_store_t *s, const char *key, size_t len, int partition, int *created)
{
    uint64_t h = cs_hash64(key, len);
    size_t slot;
    uint32_t idx = lookup(s, key, len, h, &slot);
    *created = 0;
    if (idx != CS_NONE)
        return idx;
    if (len > 65535 || s->nrecs >= CS_NONE - 1)
        return CS_NONE;
    /* Grow before inserting: the table stays under 3/4 full, so probes stay short. */
    if ((s->nrecs + 1) * 4 > s->nslots * 3) {
        if (rehash(s, s->nslots * 2))
            return CS_NONE;
        lookup(s, key, len, h, &slot);
    }
    if (s->nrecs == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint8_t *nr = realloc(s->recs, cap * s->stride);
        if (!nr)
            return CS_NONE;
        s->recs = nr;
        s->cap = cap;
    }
    if (s->keys_len + len > s->keys_cap) {
        size_t cap = s->keys_cap ? s->keys_cap * 2 : 32768;
        while (cap < s->keys_len + len)
            cap *= 2;
        char *nk = realloc(s->keys, cap);
        if (!nk)
            return CS_NONE;
        s->keys = nk;
        s->keys_cap = cap;
    }
    idx = (uint32_t)s->nrecs++;
    cs_pstate_t *r = cs_store_at(s, idx);
    memset(r, 0, s->stride);
    r->key_off = (uint32_t)s->keys_len;
    r->key_len = (uint16_t)len;
    r->partition = (uint16_t)partition;
    r->queue = CS_NONE;
    memcpy(s->keys + s->keys_len, key, len);
    s->keys_len += len;
    s->slots[slot].idx1 = idx + 1;
    s->slots[slot].tag = (uint32_t)(h >> 32);
    *created = 1;
    return idx;
}

void cs_store_drop_partitions(cs_store_t *s, const uint8_t *drop, size_t ndrop)
{
    size_t w = 0, kw = 0;
    char *nk = malloc(s->keys_cap ? s->keys_cap : 1);
    if (!nk)
        return; /* keep everything: stale records are harmless, only memory is lost */
    for (size_t r = 0; r < s->nrecs; r++) {
        cs_pstate_t *p = cs_store_at(s, (uint32_t)r);
        if (p->partition < ndrop && drop[p->partition])
            continue;
        memcpy(nk + kw, s->keys + p->key_off, p->key_len);
        p->key_off = (uint32_t)kw;
        kw += p->key_len;
        if (w != r)
            memmove(s->recs + w * s->stride, p, s->stride);
        w++;
    }
    free(s->keys);
    s->keys = nk;
    s->keys_len = kw;
    s->nrecs = w;
    rehash(s, s->nslots);
}

size_t cs_store_count(const cs_store_t *s)
{
    return s->nrecs;
}

size_t cs_store_record_size(const cs_store_t *s)
{
    return s->stride;
}

size_t cs_store_bytes(const cs_store_t *s)
{
    /* What the records need, not the spare capacity of the growable arrays. */
    return s->nrecs * s->stride + s->keys_len + s->nslots * sizeof(slot_t);
}
