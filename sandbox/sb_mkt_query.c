/* sb_mkt_query: the v5 query shared by every object: fields, filters (id / date-time ranges,
 * text equality), orderBy, limit and nextPageToken paging.
 *
 * A token carries the query itself (the filter parameters, orderBy, limit, deleted), the sort
 * key of the last record served and the count served so far, as URL-safe base64 JSON. Paging
 * is keyset-based: the next page is "the records after that key", so records created or
 * updated while a client pages never make it skip or repeat a record that did not move. */
#include "sb_mkt_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_LIMIT 200
#define MAX_LIMIT 1000
#define MAX_FILTERED_FIELDS 3
#define TOKEN_TTL_MS (4LL * 3600 * 1000)
#define MAX_SEQUENCE 100000

typedef enum { FO_EQ, FO_GT, FO_GE, FO_LT, FO_LE } fop_t;

typedef struct filter_s {
    const mfield_t *f;
    fop_t op;
    int64_t iv;
    const char *sv;
} filter_t;

typedef struct ospec_s {
    const mfield_t *f;
    int desc;
} ospec_t;

typedef struct query_s {
    const mobj_t *o;
    filter_t filters[32];
    size_t nfilters;
    ospec_t order[8];
    size_t norder;
    int has_id_order;
    long limit;
    int deleted;   /* 0 live, 1 deleted only, 2 all */
    json_t *after; /* key array of the last record served, or NULL */
} query_t;

static json_t *v5err(int *status, int http, int code, const char *msg)
{
    *status = http;
    return sb_v5_error(code, msg);
}

static const struct {
    const char *sfx;
    fop_t op;
} int_sfx[] = {{"GreaterThan", FO_GT},
               {"GreaterThanOrEqualTo", FO_GE},
               {"LessThan", FO_LT},
               {"LessThanOrEqualTo", FO_LE}},
  dt_sfx[] = {
      {"After", FO_GT}, {"AfterOrEqualTo", FO_GE}, {"Before", FO_LT}, {"BeforeOrEqualTo", FO_LE}};

/* Recognizes a filter parameter name. Returns the field or NULL. */
static const mfield_t *filter_param(const mobj_t *o, const char *name, fop_t *op)
{
    for (size_t i = 0; i < o->nfields; i++) {
        const mfield_t *f = &o->fields[i];
        if (!(f->flags & MF_FILT))
            continue;
        size_t n = strlen(f->name);
        if (strncmp(name, f->name, n) != 0)
            continue;
        const char *sfx = name + n;
        if (!*sfx) {
            *op = FO_EQ;
            return f;
        }
        if (f->type == MT_INT) {
            for (size_t k = 0; k < 4; k++)
                if (!strcmp(sfx, int_sfx[k].sfx)) {
                    *op = int_sfx[k].op;
                    return f;
                }
        } else if (f->type == MT_DT) {
            for (size_t k = 0; k < 4; k++)
                if (!strcmp(sfx, dt_sfx[k].sfx)) {
                    *op = dt_sfx[k].op;
                    return f;
                }
        }
    }
    return NULL;
}

static json_t *bad_param(int *status, const char *name, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "Invalid parameter: %.80s.%s%s", name, why ? " " : "",
             why ? why : "");
    return v5err(status, 400, 51, msg);
}

/* Fills q from the query parameters (fields and nextPageToken excluded). */
static json_t *parse_params(query_t *q, json_t *params, int *status)
{
    const char *k;
    json_t *v;
    const mfield_t *filtered[32];
    size_t nfiltered = 0;
    q->limit = DEFAULT_LIMIT;
    json_object_foreach(params, k, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            return bad_param(status, k, NULL);
        if (!strcmp(k, "fields") || !strcmp(k, "nextPageToken"))
            continue;
        if (!strcmp(k, "limit")) {
            char *end;
            long n = strtol(s, &end, 10);
            if (!*s || *end || n < 1 || n > MAX_LIMIT)
                return bad_param(status, k, "Must be an integer between 1 and 1000.");
            q->limit = n;
            continue;
        }
        if (!strcmp(k, "deleted")) {
            if (q->o->idx != MO_PROSPECTS)
                return bad_param(status, k, "Not supported for this object.");
            if (!strcasecmp(s, "false"))
                q->deleted = 0;
            else if (!strcasecmp(s, "true"))
                q->deleted = 1;
            else if (!strcasecmp(s, "all"))
                q->deleted = 2;
            else
                return bad_param(status, k, "Must be true, false or all.");
            continue;
        }
        if (!strcmp(k, "orderBy")) {
            const char *p = s;
            while (p && *p) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                char item[80], name[64], dir[16] = "";
                if (len >= sizeof(item) || q->norder >= 7)
                    return bad_param(status, k, NULL);
                memcpy(item, p, len);
                item[len] = '\0';
                int nt = sscanf(item, " %63s %15s", name, dir);
                const mfield_t *f = nt >= 1 ? sb_mfield(q->o, name) : NULL;
                if (!f || !(f->flags & MF_SORT))
                    return bad_param(status, k, "Unknown or unsortable field.");
                if (nt == 2 && strcasecmp(dir, "asc") && strcasecmp(dir, "desc"))
                    return bad_param(status, k, "Direction must be ASC or DESC.");
                q->order[q->norder].f = f;
                q->order[q->norder].desc = nt == 2 && !strcasecmp(dir, "desc");
                q->has_id_order |= !strcmp(f->name, "id");
                q->norder++;
                p = comma ? comma + 1 : NULL;
            }
            continue;
        }
        fop_t op;
        const mfield_t *f = filter_param(q->o, k, &op);
        if (!f || q->nfilters >= 32)
            return bad_param(status, k, NULL);
        filter_t *fl = &q->filters[q->nfilters++];
        fl->f = f;
        fl->op = op;
        if (f->type == MT_INT) {
            char *end;
            long long n = strtoll(s, &end, 10);
            if (!*s || *end)
                return bad_param(status, k, "Must be an integer.");
            fl->iv = n;
        } else if (f->type == MT_DT) {
            int64_t ms;
            if (sb_parse_datetime(s, (size_t)-1, &ms) != 0)
                return bad_param(status, k, "Must be an ISO-8601 date-time with an offset.");
            fl->iv = ms;
        } else {
            fl->sv = s;
        }
        int seen = 0;
        for (size_t i = 0; i < nfiltered; i++)
            seen |= filtered[i] == f;
        if (!seen) {
            filtered[nfiltered++] = f;
            if (nfiltered > MAX_FILTERED_FIELDS)
                return v5err(status, 400, 209,
                             "Too many filtered fields. At most 3 distinct fields may be "
                             "filtered in one query.");
        }
    }
    if (q->norder == 0) {
        q->order[0].f = sb_mfield(q->o, "id");
        q->order[0].desc = 0;
        q->norder = 1;
        q->has_id_order = 1;
    }
    return NULL;
}

/* ---- evaluation ---- */

static int match(const filter_t *fl, const mrec_t *r)
{
    json_t *v = json_object_get(r->v, fl->f->name);
    if (fl->f->type == MT_INT || fl->f->type == MT_DT) {
        if (!json_is_integer(v))
            return 0;
        int64_t a = json_integer_value(v);
        switch (fl->op) {
        case FO_EQ:
            return fl->f->type == MT_DT ? a / 1000 == fl->iv / 1000 : a == fl->iv;
        case FO_GT:
            return a > fl->iv;
        case FO_GE:
            return a >= fl->iv;
        case FO_LT:
            return a < fl->iv;
        case FO_LE:
            return a <= fl->iv;
        }
        return 0;
    }
    return json_is_string(v) && !strcasecmp(json_string_value(v), fl->sv);
}

/* Compares two sort values (integers or null; null first). */
static int cmp_val(json_t *a, json_t *b)
{
    int na = !json_is_integer(a), nb = !json_is_integer(b);
    if (na || nb)
        return na == nb ? 0 : (na ? -1 : 1);
    int64_t x = json_integer_value(a), y = json_integer_value(b);
    return x < y ? -1 : x > y;
}

/* Record vs key (array of the sort values, then the id). */
static int cmp_key(const query_t *q, const mrec_t *r, json_t *key)
{
    for (size_t i = 0; i < q->norder; i++) {
        int k = cmp_val(json_object_get(r->v, q->order[i].f->name), json_array_get(key, i));
        if (k)
            return q->order[i].desc ? -k : k;
    }
    if (!q->has_id_order) {
        json_t *kid = json_array_get(key, q->norder);
        int64_t id = json_integer_value(kid);
        return r->id < id ? -1 : r->id > id;
    }
    return 0;
}

static int cmp_recs(const void *pa, const void *pb, void *arg)
{
    const query_t *q = arg;
    const mrec_t *a = *(mrec_t *const *)pa, *b = *(mrec_t *const *)pb;
    for (size_t i = 0; i < q->norder; i++) {
        int k = cmp_val(json_object_get(a->v, q->order[i].f->name),
                        json_object_get(b->v, q->order[i].f->name));
        if (k)
            return q->order[i].desc ? -k : k;
    }
    return a->id < b->id ? -1 : a->id > b->id;
}

static json_t *key_of(const query_t *q, const mrec_t *r)
{
    json_t *k = json_array();
    for (size_t i = 0; i < q->norder; i++) {
        json_t *v = json_object_get(r->v, q->order[i].f->name);
        json_array_append_new(k, json_is_integer(v) ? json_incref(v) : json_null());
    }
    if (!q->has_id_order)
        json_array_append_new(k, json_integer(r->id));
    return k;
}

/* ---- tokens ---- */

static char *token_encode(json_t *state)
{
    char *text = json_dumps(state, JSON_COMPACT);
    if (!text)
        return NULL;
    char *tok = sb_b64url_encode((const unsigned char *)text, strlen(text));
    free(text);
    return tok;
}

static json_t *token_decode(const char *tok)
{
    size_t n = 0;
    unsigned char *raw = sb_b64url_decode(tok, &n);
    if (!raw)
        return NULL;
    json_t *j = json_loadb((const char *)raw, n, 0, NULL);
    free(raw);
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "o")) ||
        !json_is_object(json_object_get(j, "p")) || !json_is_array(json_object_get(j, "k")) ||
        !json_is_integer(json_object_get(j, "n")) || !json_is_integer(json_object_get(j, "t"))) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- the query ---- */

json_t *sb_mkt_query(sb_mkt_t *m, const char *object, json_t *params, int64_t now_ms, int *status,
                     char *warning, size_t warning_size)
{
    query_t q;
    memset(&q, 0, sizeof(q));
    json_t *out = NULL, *state = NULL, *qp = NULL;
    const mfield_t **fl = NULL;
    mrec_t **hits = NULL;
    long long served = 0;
    if (warning && warning_size)
        warning[0] = '\0';

    q.o = sb_mobj(object);
    if (!q.o)
        return v5err(status, 404, 192, "Object does not exist");
    const char *fields = json_string_value(json_object_get(params, "fields"));
    const char *token = json_string_value(json_object_get(params, "nextPageToken"));
    if (token) {
        const char *k;
        json_t *v;
        json_object_foreach(params, k, v)
        {
            if (strcmp(k, "fields") && strcmp(k, "nextPageToken"))
                return bad_param(status, k, "Only fields may be sent with nextPageToken.");
        }
        state = token_decode(token);
        if (!state || strcmp(json_string_value(json_object_get(state, "o")), object) != 0) {
            json_decref(state);
            return v5err(status, 400, 211, "Invalid nextPageToken");
        }
        if (now_ms - json_integer_value(json_object_get(state, "t")) > TOKEN_TTL_MS) {
            json_decref(state);
            return v5err(status, 400, 210, "nextPageToken has expired");
        }
        qp = json_incref(json_object_get(state, "p"));
        q.after = json_object_get(state, "k");
        served = json_integer_value(json_object_get(state, "n"));
    } else {
        qp = json_deep_copy(params);
        json_object_del(qp, "fields");
    }
    if (!fields || !*fields) {
        out = v5err(status, 400, 13, "One or more required parameters are missing: fields");
        goto done;
    }
    size_t nf = 0;
    fl = sb_mkt_parse_fields(q.o, fields, &nf, &out);
    if (!fl) {
        *status = 400;
        goto done;
    }
    if ((out = parse_params(&q, qp, status)))
        goto done;
    if (q.after && json_array_size(q.after) != q.norder + !q.has_id_order) {
        out = v5err(status, 400, 211, "Invalid nextPageToken");
        goto done;
    }

    pthread_rwlock_rdlock(&m->lock);
    size_t total = m->n[q.o->idx], nhits = 0;
    hits = malloc((total ? total : 1) * sizeof(*hits));
    if (!hits) {
        pthread_rwlock_unlock(&m->lock);
        out = v5err(status, 500, 0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < total; i++) {
        mrec_t *r = m->recs[q.o->idx][i];
        if ((q.deleted == 0 && r->deleted) || (q.deleted == 1 && !r->deleted))
            continue;
        int ok = 1;
        for (size_t k = 0; k < q.nfilters && ok; k++)
            ok = match(&q.filters[k], r);
        if (ok && q.after)
            ok = cmp_key(&q, r, q.after) > 0;
        if (ok)
            hits[nhits++] = r;
    }
    if (nhits > 1)
        qsort_r(hits, nhits, sizeof(*hits), cmp_recs, &q);
    size_t take = nhits < (size_t)q.limit ? nhits : (size_t)q.limit;
    int more = nhits > take;
    if (more && served + (long long)take >= MAX_SEQUENCE) {
        more = 0;
        if (warning && warning_size)
            snprintf(warning, warning_size,
                     "203;Record count for nextPageToken sequence has been exceeded. Use a "
                     "filter to narrow the result.");
    }
    json_t *values = json_array();
    for (size_t i = 0; i < take; i++)
        json_array_append_new(values, sb_mkt_render(m, q.o, hits[i], fl, nf));
    json_t *key = take ? key_of(&q, hits[take - 1]) : NULL;
    pthread_rwlock_unlock(&m->lock);

    out = json_object();
    json_object_set_new(out, "values", values);
    if (more) {
        json_t *st = json_pack("{s:s, s:O, s:o, s:I, s:I}", "o", object, "p", qp, "k", key, "n",
                               (json_int_t)(served + (long long)take), "t", (json_int_t)now_ms);
        key = NULL;
        char *tok = st ? token_encode(st) : NULL;
        json_decref(st);
        if (tok) {
            size_t ulen = strlen(m->o.base_url) + strlen(tok) + strlen(fields) + 128;
            char *url = malloc(ulen);
            if (url)
                snprintf(url, ulen, "%s/api/v5/objects/%s?nextPageToken=%s&fields=%s",
                         m->o.base_url, object, tok, fields);
            json_object_set_new(out, "nextPageToken", json_string(tok));
            json_object_set_new(out, "nextPageUrl", url ? json_string(url) : json_null());
            free(url);
            free(tok);
        }
    }
    if (!json_object_get(out, "nextPageToken")) {
        json_object_set_new(out, "nextPageToken", json_null());
        json_object_set_new(out, "nextPageUrl", json_null());
    }
    json_decref(key);
    *status = 200;
done:
    free(hits);
    free(fl);
    json_decref(qp);
    json_decref(state);
    return out;
}
