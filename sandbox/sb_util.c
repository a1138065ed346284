#include "sb_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static void split_utc(int64_t ms, struct tm *tm)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    gmtime_r(&t, tm);
}

char *sb_fmt_sf(int64_t ms, char *buf)
{
    struct tm tm;
    split_utc(ms, &tm);
    int frac = (int)(((ms % 1000) + 1000) % 1000);
    snprintf(buf, SB_TIME_BUF, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

char *sb_fmt_iso(int64_t ms, int offset_min, char *buf)
{
    struct tm tm;
    split_utc(ms + (int64_t)offset_min * 60000, &tm);
    int off = offset_min < 0 ? -offset_min : offset_min;
    snprintf(buf, SB_TIME_BUF, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             offset_min < 0 ? '-' : '+', off / 60, off % 60);
    return buf;
}

/* Reads n digits at s[*i]; returns the value or -1. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || !isdigit((unsigned char)s[*i]))
            return -1;
        v = v * 10 + (s[(*i)++] - '0');
    }
    return v;
}

static int parse_offset_at(const char *s, size_t len, size_t *i, int *minutes)
{
    if (*i >= len)
        return -1;
    char c = s[*i];
    if (c == 'Z' || c == 'z') {
        (*i)++;
        *minutes = 0;
        return 0;
    }
    if (c != '+' && c != '-' && c != ' ')
        return -1;
    (*i)++;
    int hh = digits(s, len, i, 2);
    if (hh < 0)
        return -1;
    if (*i < len && s[*i] == ':')
        (*i)++;
    int mm = digits(s, len, i, 2);
    if (mm < 0 || hh > 14 || mm > 59)
        return -1;
    *minutes = (c == '-' ? -1 : 1) * (hh * 60 + mm);
    return 0;
}

int sb_parse_offset(const char *s, int *minutes)
{
    size_t i = 0, len = strlen(s);
    if (parse_offset_at(s, len, &i, minutes) != 0 || i != len)
        return -1;
    return 0;
}

int sb_parse_datetime(const char *s, size_t len, int64_t *ms)
{
    if (!s)
        return -1;
    if (len == (size_t)-1)
        len = strlen(s);
    size_t i = 0;
    int y = digits(s, len, &i, 4);
    if (y < 0 || i >= len || s[i++] != '-')
        return -1;
    int mo = digits(s, len, &i, 2);
    if (mo < 1 || mo > 12 || i >= len || s[i++] != '-')
        return -1;
    int d = digits(s, len, &i, 2);
    if (d < 1 || d > days_in_month(y, mo) || i >= len || (s[i] != 'T' && s[i] != 't'))
        return -1;
    i++;
    int hh = digits(s, len, &i, 2);
    if (hh < 0 || hh > 23 || i >= len || s[i++] != ':')
        return -1;
    int mi = digits(s, len, &i, 2);
    if (mi < 0 || mi > 59 || i >= len || s[i++] != ':')
        return -1;
    int ss = digits(s, len, &i, 2);
    if (ss < 0 || ss > 60)
        return -1;
    int frac_ms = 0;
    if (i < len && s[i] == '.') {
        i++;
        int nd = 0;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (nd < 3)
                frac_ms = frac_ms * 10 + (s[i] - '0');
            nd++;
            i++;
        }
        if (nd == 0 || nd > 9)
            return -1;
        for (int k = nd; k < 3; k++)
            frac_ms *= 10;
    }
    int off = 0;
    if (parse_offset_at(s, len, &i, &off) != 0 || i != len)
        return -1;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + hh * 3600 + mi * 60 + ss - (int64_t)off * 60;
    *ms = secs * 1000 + frac_ms;
    return 0;
}

/* ---- Salesforce ids ---- */

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void sb_sfid_suffix(const char *id15, char *out)
{
    static const char map[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    for (int i = 0; i < 3; i++) {
        int flags = 0;
        for (int j = 0; j < 5; j++) {
            char c = id15[i * 5 + j];
            if (c >= 'A' && c <= 'Z')
                flags |= 1 << j;
        }
        out[i] = map[flags];
    }
    out[3] = '\0';
}

void sb_sfid_make(const char *prefix, uint64_t n, char *out)
{
    memcpy(out, prefix, 3);
    memcpy(out + 3, "5g0", 3);
    for (int i = 14; i >= 6; i--) {
        out[i] = B62[n % 62];
        n /= 62;
    }
    sb_sfid_suffix(out, out + 15);
}

int sb_sfid_normalize(const char *id, char *out)
{
    if (!id)
        return -1;
    size_t n = strlen(id);
    if (n != 15 && n != 18)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]))
            return -1;
    char suf[4];
    sb_sfid_suffix(id, suf);
    /* The suffix is case-insensitive in practice (it exists so case-insensitive systems can
     * compare ids); accept either case. */
    if (n == 18 && strncasecmp(id + 15, suf, 3) != 0)
        return -1;
    memcpy(out, id, 15);
    memcpy(out + 15, suf, 4);
    return 0;
}

/* ---- multimap ---- */

typedef struct ent_s {
    struct ent_s *next;
    uint64_t hash;
    void *val;
    char key[];
} ent_t;

struct sb_map_s {
    ent_t **b;
    size_t nb, n;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

sb_map_t *sb_map_new(void)
{
    sb_map_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->nb = 64;
    m->b = calloc(m->nb, sizeof(*m->b));
    if (!m->b) {
        free(m);
        return NULL;
    }
    return m;
}

void sb_map_clear(sb_map_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nb; i++) {
        ent_t *e = m->b[i];
        while (e) {
            ent_t *n = e->next;
            free(e);
            e = n;
        }
        m->b[i] = NULL;
    }
    m->n = 0;
}

void sb_map_destroy(sb_map_t *m)
{
    if (!m)
        return;
    sb_map_clear(m);
    free(m->b);
    free(m);
}

static void append(ent_t **head, ent_t *e)
{
    e->next = NULL;
    while (*head)
        head = &(*head)->next;
    *head = e;
}

static int grow(sb_map_t *m)
{
    size_t nb = m->nb * 2;
    ent_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < m->nb; i++) {
        ent_t *e = m->b[i];
        while (e) {
            ent_t *n = e->next;
            append(&b[e->hash & (nb - 1)], e);
            e = n;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int sb_map_add(sb_map_t *m, const char *key, void *val)
{
    if (m->n + 1 > m->nb && grow(m) != 0)
        return -1;
    size_t kl = strlen(key);
    ent_t *e = malloc(sizeof(*e) + kl + 1);
    if (!e)
        return -1;
    e->hash = fnv(key);
    e->val = val;
    memcpy(e->key, key, kl + 1);
    append(&m->b[e->hash & (m->nb - 1)], e);
    m->n++;
    return 0;
}

int sb_map_del(sb_map_t *m, const char *key, void *val)
{
    uint64_t h = fnv(key);
    for (ent_t **p = &m->b[h & (m->nb - 1)]; *p; p = &(*p)->next) {
        ent_t *e = *p;
        if (e->hash == h && e->val == val && !strcmp(e->key, key)) {
            *p = e->next;
            free(e);
            m->n--;
            return 0;
        }
    }
    return -1;
}

void *sb_map_get(const sb_map_t *m, const char *key)
{
    uint64_t h = fnv(key);
    for (ent_t *e = m->b[h & (m->nb - 1)]; e; e = e->next)
        if (e->hash == h && !strcmp(e->key, key))
            return e->val;
    return NULL;
}

int sb_map_each(const sb_map_t *m, const char *key, int (*cb)(void *opaque, void *val),
                void *opaque)
{
    uint64_t h = fnv(key);
    for (ent_t *e = m->b[h & (m->nb - 1)]; e; e = e->next) {
        if (e->hash == h && !strcmp(e->key, key)) {
            int rc = cb(opaque, e->val);
            if (rc)
                return rc;
        }
    }
    return 0;
}

size_t sb_map_count(const sb_map_t *m)
{
    return m ? m->n : 0;
}

/* ---- rng ---- */

void sb_rng_seed(sb_rng_t *r, uint64_t seed)
{
    r->s = seed;
}

uint64_t sb_rng_next(sb_rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double sb_rng_double(sb_rng_t *r)
{
    return (double)(sb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- base64 ---- */

static char *b64(const unsigned char *d, size_t len, const char *alpha, int pad)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < len ? (uint32_t)d[i + 1] << 8 : 0);
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alpha[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

char *sb_b64_encode(const unsigned char *data, size_t len)
{
    return b64(data, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 1);
}

char *sb_b64url_encode(const unsigned char *data, size_t len)
{
    return b64(data, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 0);
}

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

unsigned char *sb_b64url_decode(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return NULL;
    unsigned char *out = malloc(n * 3 / 4 + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* ---- text ---- */

char *sb_lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        o[i] = (char)tolower((unsigned char)s[i]);
    return o;
}

int sb_email_valid(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 3 || n > 80)
        return 0;
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@'))
        return 0;
    for (const char *p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c) && !strchr("!#$%&'*+-/=?^_`{|}~.", c))
            return 0;
    }
    if (s[0] == '.' || at[-1] == '.')
        return 0;
    const char *dom = at + 1;
    if (!*dom || !strchr(dom, '.'))
        return 0;
    size_t label = 0;
    for (const char *p = dom; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum(c) || c == '-') {
            label++;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not one. */
static int utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    int n = p[0] >= 0xF0 && p[0] <= 0xF4  ? 4
            : p[0] >= 0xE0                ? 3
            : p[0] >= 0xC2 && p[0] < 0xE0 ? 2
                                          : 0;
    if (!n || (p[0] >= 0xF8))
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0)))
        return 0; /* overlong, surrogates */
    if (n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90)))
        return 0;
    return n;
}

char *sb_utf8_dup(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    size_t i = 0, k = 0;
    while (i < n) {
        int l = utf8_len((const unsigned char *)s + i);
        if (l == 0) {
            o[k++] = '?';
            i++;
        } else {
            memcpy(o + k, s + i, (size_t)l);
            k += (size_t)l;
            i += (size_t)l;
        }
    }
    o[k] = '\0';
    return o;
}

static char *trim_dup(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    char *o = malloc(n + 1);
    if (o) {
        memcpy(o, s, n);
        o[n] = '\0';
    }
    return o;
}

int sb_parse_person(const char *s, char **first, char **last, char **email)
{
    *first = *last = *email = NULL;
    const char *lt = strchr(s, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    char *name = NULL;
    if (lt && gt) {
        *email = trim_dup(lt + 1, (size_t)(gt - lt - 1));
        name = trim_dup(s, (size_t)(lt - s));
    } else {
        *email = trim_dup(s, strlen(s));
        name = NULL;
    }
    if (!*email || !sb_email_valid(*email))
        goto fail;
    if (!name || !*name) {
        /* "sam.sales@x" -> First "sam", Last "sales" (or the local part as last name) */
        free(name);
        name = NULL;
        const char *at = strchr(*email, '@');
        const char *dot = memchr(*email, '.', (size_t)(at - *email));
        if (dot) {
            *first = trim_dup(*email, (size_t)(dot - *email));
            *last = trim_dup(dot + 1, (size_t)(at - dot - 1));
        } else {
            *first = strdup("");
            *last = trim_dup(*email, (size_t)(at - *email));
        }
    } else {
        char *sp = strrchr(name, ' ');
        if (sp) {
            *first = trim_dup(name, (size_t)(sp - name));
            *last = trim_dup(sp + 1, strlen(sp + 1));
        } else {
            *first = strdup("");
            *last = strdup(name);
        }
        free(name);
        name = NULL;
    }
    if (!*first || !*last)
        goto fail;
    return 0;
fail:
    free(name);
    free(*first);
    free(*last);
    free(*email);
    *first = *last = *email = NULL;
    return -1;
}
