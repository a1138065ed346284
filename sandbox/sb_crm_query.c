/* sb_crm_query: SOQL against the store. Parse (sb_soql), bind names and literal types against
 * the object's schema, pick candidates (the e-mail or id index when the WHERE clause allows,
 * else a scan), filter, sort, then page through query locators.
 *
 * A locator keeps the whole rendered result (a consistent snapshot, as a server-side cursor
 * would) until it has been idle for CURSOR_IDLE_MS or MAX_CURSORS newer ones push it out. */
#include "sb_crm_int.h"
#include "sb_soql.h"

#include "cs_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_CURSORS 256
#define CURSOR_IDLE_MS (15 * 60 * 1000)

/* ---- errors ---- */

/* "<query>\n    ^\nERROR at Row:r:Column:c\n<msg>", the shape of the real messages. */
static json_t *query_error(int *status, const char *code, const char *soql, int col,
                           const char *msg)
{
    char buf[1200];
    int row = 1, rcol = col > 0 ? col : 1;
    const char *line = soql;
    for (int i = 0; soql && soql[i] && i < col - 1; i++) {
        if (soql[i] == '\n') {
            row++;
            rcol = col - i - 1;
            line = soql + i + 1;
        }
    }
    size_t linelen = strcspn(line ? line : "", "\n");
    if (linelen > 200)
        linelen = 200;
    int caret = rcol - 1 < 200 ? rcol - 1 : 200;
    snprintf(buf, sizeof(buf), "%.*s\n%*s^\nERROR at Row:%d:Column:%d\n%s", (int)linelen,
             line ? line : "", caret, "", row, rcol, msg);
    *status = 400;
    return sb_sf_error(code, buf, NULL);
}

/* ---- binding ---- */

static int is_text(sb_ftype_t t)
{
    return t == SB_FT_STRING || t == SB_FT_EMAIL || t == SB_FT_PHONE || t == SB_FT_PICKLIST;
}

static int is_idref(sb_ftype_t t)
{
    return t == SB_FT_ID || t == SB_FT_REFERENCE;
}

/* Checks one literal against the field type; normalizes ids to 18 characters. */
static json_t *bind_literal(const sb_field_t *f, sb_lit_t *lit, sb_op_t op, const char *soql,
                            int *status)
{
    char msg[300];
    if (lit->type == SB_LIT_NULL)
        return NULL;
    if (f->type == SB_FT_DATETIME) {
        if (lit->type != SB_LIT_DATETIME) {
            snprintf(msg, sizeof(msg),
                     "value of filter criterion for field '%s' must be of type dateTime and "
                     "should not be enclosed in quotes",
                     f->name);
            return query_error(status, "INVALID_FIELD", soql, lit->col, msg);
        }
        return NULL;
    }
    if (f->type == SB_FT_BOOL) {
        if (lit->type != SB_LIT_BOOL) {
            snprintf(msg, sizeof(msg),
                     "value of filter criterion for field '%s' must be of type boolean and "
                     "should not be enclosed in quotes",
                     f->name);
            return query_error(status, "INVALID_FIELD", soql, lit->col, msg);
        }
        if (op != SB_OP_EQ && op != SB_OP_NE) {
            snprintf(msg, sizeof(msg), "invalid operator on boolean field: %s", f->name);
            return query_error(status, "INVALID_QUERY_FILTER_OPERATOR", soql, lit->col, msg);
        }
        return NULL;
    }
    /* text and id types want quoted strings */
    if (lit->type != SB_LIT_STRING) {
        snprintf(msg, sizeof(msg),
                 "value of filter criterion for field '%s' must be of type %s and should be "
                 "enclosed in quotes",
                 f->name, is_idref(f->type) ? "id" : "string");
        return query_error(status, "INVALID_FIELD", soql, lit->col, msg);
    }
    if (is_idref(f->type)) {
        char id18[19];
        if (op == SB_OP_LIKE) {
            snprintf(msg, sizeof(msg), "invalid operator on id field: %s", f->name);
            return query_error(status, "INVALID_QUERY_FILTER_OPERATOR", soql, lit->col, msg);
        }
        if (sb_sfid_normalize(lit->s, id18) != 0) {
            snprintf(msg, sizeof(msg), "invalid ID field: %.40s", lit->s);
            return query_error(status, "INVALID_QUERY_FILTER_OPERATOR", soql, lit->col, msg);
        }
        char *n = strdup(id18);
        if (n) {
            free(lit->s);
            lit->s = n;
        }
    }
    return NULL;
}

static json_t *bind_cond(const sb_sobj_t *o, sb_cond_t *c, const char *soql, int *status)
{
    if (c->kind == SB_COND_AND || c->kind == SB_COND_OR || c->kind == SB_COND_NOT) {
        for (size_t i = 0; i < c->nkids; i++) {
            json_t *e = bind_cond(o, c->kids[i], soql, status);
            if (e)
                return e;
        }
        return NULL;
    }
    const sb_field_t *f = sb_crm_field(o, c->field);
    if (!f) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "No such column '%.100s' on entity '%s'. If you are attempting to use a custom "
                 "field, be sure to append the '__c' after the custom field name. Please "
                 "reference your WSDL or the describe call for the appropriate names.",
                 c->field, o->name);
        return query_error(status, "INVALID_FIELD", soql, c->field_col, msg);
    }
    c->bound = f;
    if (c->kind == SB_COND_CMP && c->op == SB_OP_LIKE && !is_text(f->type)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "invalid operator on field: %s", f->name);
        return query_error(status, "INVALID_QUERY_FILTER_OPERATOR", soql, c->field_col, msg);
    }
    for (size_t i = 0; i < c->nvals; i++) {
        json_t *e =
            bind_literal(f, &c->vals[i], c->kind == SB_COND_CMP ? c->op : SB_OP_EQ, soql, status);
        if (e)
            return e;
    }
    return NULL;
}

/* ---- evaluation ---- */

/* Compares a stored value with a literal: <0, 0, >0; 2 when either side is null. */
static int compare(const sb_field_t *f, json_t *v, const sb_lit_t *lit)
{
    if (!v || json_is_null(v) || lit->type == SB_LIT_NULL)
        return 2;
    switch (f->type) {
    case SB_FT_DATETIME: {
        int64_t a = json_integer_value(v);
        return a < lit->ms ? -1 : a > lit->ms;
    }
    case SB_FT_BOOL:
        return json_is_true(v) == lit->b ? 0 : (json_is_true(v) ? 1 : -1);
    case SB_FT_ID:
    case SB_FT_REFERENCE:
        return strcmp(json_string_value(v) ? json_string_value(v) : "", lit->s);
    default:
        return strcasecmp(json_string_value(v) ? json_string_value(v) : "", lit->s);
    }
}

static int eval(const sb_rec_t *r, const sb_cond_t *c)
{
    switch (c->kind) {
    case SB_COND_AND:
        for (size_t i = 0; i < c->nkids; i++)
            if (!eval(r, c->kids[i]))
                return 0;
        return 1;
    case SB_COND_OR:
        for (size_t i = 0; i < c->nkids; i++)
            if (eval(r, c->kids[i]))
                return 1;
        return 0;
    case SB_COND_NOT:
        return !eval(r, c->kids[0]);
    default:
        break;
    }
    const sb_field_t *f = c->bound;
    json_t *v = sb_rec_value(r, f);
    int null_v = json_is_null(v);
    int res = 0;
    if (c->kind == SB_COND_IN || c->kind == SB_COND_NOT_IN) {
        int found = 0;
        for (size_t i = 0; i < c->nvals && !found; i++) {
            const sb_lit_t *l = &c->vals[i];
            found = l->type == SB_LIT_NULL ? null_v : compare(f, v, l) == 0;
        }
        res = c->kind == SB_COND_IN ? found : !found;
    } else {
        const sb_lit_t *l = &c->vals[0];
        if (c->op == SB_OP_LIKE) {
            res = !null_v && l->type == SB_LIT_STRING &&
                  sb_soql_like(json_string_value(v) ? json_string_value(v) : "", l->s);
        } else if (l->type == SB_LIT_NULL) {
            res = c->op == SB_OP_EQ ? null_v : c->op == SB_OP_NE ? !null_v : 0;
        } else {
            int k = compare(f, v, l);
            switch (c->op) {
            case SB_OP_EQ:
                res = k == 0;
                break;
            case SB_OP_NE:
                res = k != 0; /* null != 'x' is true */
                break;
            case SB_OP_LT:
                res = k != 2 && k < 0;
                break;
            case SB_OP_LE:
                res = k != 2 && k <= 0;
                break;
            case SB_OP_GT:
                res = k != 2 && k > 0;
                break;
            case SB_OP_GE:
                res = k != 2 && k >= 0;
                break;
            default:
                res = 0;
            }
        }
    }
    json_decref(v);
    return res;
}

/* ---- candidates ---- */

typedef struct {
    sb_rec_t **v;
    size_t n, cap;
} recvec_t;

static int vec_push(recvec_t *rv, sb_rec_t *r)
{
    if (rv->n == rv->cap) {
        size_t cap = rv->cap ? rv->cap * 2 : 64;
        sb_rec_t **n = realloc(rv->v, cap * sizeof(*n));
        if (!n)
            return -1;
        rv->v = n;
        rv->cap = cap;
    }
    rv->v[rv->n++] = r;
    return 0;
}

static int push_cb(void *opaque, void *val)
{
    sb_rec_t *r = val;
    if (!r->deleted)
        vec_push(opaque, r);
    return 0;
}

/* An indexable predicate (Email = / IN, Id = / IN) that every match must satisfy, or NULL. */
static const sb_cond_t *index_pred(const sb_cond_t *w)
{
    if (!w)
        return NULL;
    const sb_cond_t *const *list = (const sb_cond_t *const *)&w;
    size_t n = 1;
    if (w->kind == SB_COND_AND) {
        list = (const sb_cond_t *const *)w->kids;
        n = w->nkids;
    }
    for (size_t i = 0; i < n; i++) {
        const sb_cond_t *c = list[i];
        if (!(c->kind == SB_COND_IN || (c->kind == SB_COND_CMP && c->op == SB_OP_EQ)))
            continue;
        const sb_field_t *f = c->bound;
        int all_strings = 1;
        for (size_t k = 0; k < c->nvals; k++)
            all_strings &= c->vals[k].type == SB_LIT_STRING;
        if (all_strings && (f->type == SB_FT_ID || !strcmp(f->name, "Email")))
            return c;
    }
    return NULL;
}

static int candidates(sb_crm_t *c, const sb_sobj_t *o, const sb_cond_t *where, recvec_t *out)
{
    const sb_cond_t *p = index_pred(where);
    if (!p) {
        for (size_t k = 0; k < c->nrecs[o->idx]; k++)
            if (!c->recs[o->idx][k]->deleted && vec_push(out, c->recs[o->idx][k]) != 0)
                return -1;
        return 0;
    }
    const sb_field_t *f = p->bound;
    sb_map_t *seen = sb_map_new();
    if (!seen)
        return -1;
    for (size_t i = 0; i < p->nvals; i++) {
        const sb_lit_t *l = &p->vals[i];
        if (l->type != SB_LIT_STRING)
            continue;
        char *key = f->type == SB_FT_ID ? strdup(l->s) : sb_lower_dup(l->s);
        if (!key)
            continue;
        if (!sb_map_get(seen, key)) {
            sb_map_add(seen, key, (void *)l);
            if (f->type == SB_FT_ID) {
                sb_rec_t *r = sb_crm_find(c, key, o);
                if (r)
                    vec_push(out, r);
            } else {
                sb_map_each(c->by_email[o->idx], key, push_cb, out);
            }
        }
        free(key);
    }
    sb_map_destroy(seen);
    return 0;
}

/* ---- sorting ---- */

typedef struct {
    const sb_field_t **f;
    const sb_order_t *o;
    size_t n;
} sortctx_t;

static int cmp_recs(const void *pa, const void *pb, void *arg)
{
    const sortctx_t *S = arg;
    const sb_rec_t *a = *(sb_rec_t *const *)pa, *b = *(sb_rec_t *const *)pb;
    for (size_t i = 0; i < S->n; i++) {
        const sb_field_t *f = S->f[i];
        json_t *va = sb_rec_value(a, f), *vb = sb_rec_value(b, f);
        int na = json_is_null(va), nb = json_is_null(vb), k = 0;
        if (na || nb) {
            k = na == nb ? 0 : (na ? -1 : 1);
            if (S->o[i].nulls_last)
                k = -k;
        } else {
            if (f->type == SB_FT_DATETIME) {
                int64_t x = json_integer_value(va), y = json_integer_value(vb);
                k = x < y ? -1 : x > y;
            } else if (f->type == SB_FT_BOOL) {
                k = json_is_true(va) - json_is_true(vb);
            } else if (is_idref(f->type)) {
                k = strcmp(json_string_value(va), json_string_value(vb));
            } else {
                k = strcasecmp(json_string_value(va), json_string_value(vb));
            }
            if (S->o[i].desc)
                k = -k;
        }
        json_decref(va);
        json_decref(vb);
        if (k)
            return k;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* ---- cursors ---- */

static void cursor_free(sb_cursor_t *k)
{
    if (k) {
        json_decref(k->records);
        free(k);
    }
}

void sb_crm_cursors_clear(sb_crm_t *c)
{
    pthread_mutex_lock(&c->cur_lock);
    for (size_t i = 0; i < c->ncur; i++)
        cursor_free(c->curlist[i]);
    c->ncur = 0;
    sb_map_clear(c->cursors);
    pthread_mutex_unlock(&c->cur_lock);
}

static void cursor_drop_at(sb_crm_t *c, size_t i)
{
    sb_cursor_t *k = c->curlist[i];
    sb_map_del(c->cursors, k->locator, k);
    cursor_free(k);
    memmove(&c->curlist[i], &c->curlist[i + 1], (c->ncur - i - 1) * sizeof(*c->curlist));
    c->ncur--;
}

/* Registers a cursor; writes its locator. Takes records. Returns 0 or -1. */
static int cursor_add(sb_crm_t *c, json_t *records, int batch, char *locator)
{
    sb_cursor_t *k = calloc(1, sizeof(*k));
    if (!k) {
        json_decref(records);
        return -1;
    }
    k->records = records;
    k->batch = batch;
    int64_t now = cs_now_ms();
    k->last_used_ms = now;
    pthread_mutex_lock(&c->cur_lock);
    for (size_t i = 0; i < c->ncur;) {
        if (now - c->curlist[i]->last_used_ms > CURSOR_IDLE_MS)
            cursor_drop_at(c, i);
        else
            i++;
    }
    if (c->ncur == MAX_CURSORS) { /* the least recently used goes */
        size_t lru = 0;
        for (size_t i = 1; i < c->ncur; i++)
            if (c->curlist[i]->last_used_ms < c->curlist[lru]->last_used_ms)
                lru = i;
        cursor_drop_at(c, lru);
    }
    if (c->ncur == c->capcur) {
        size_t cap = c->capcur ? c->capcur * 2 : 16;
        sb_cursor_t **n = realloc(c->curlist, cap * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&c->cur_lock);
            cursor_free(k);
            return -1;
        }
        c->curlist = n;
        c->capcur = cap;
    }
    sb_sfid_make("01g", ++c->next_locator, k->locator);
    if (sb_map_add(c->cursors, k->locator, k) != 0) {
        pthread_mutex_unlock(&c->cur_lock);
        cursor_free(k);
        return -1;
    }
    c->curlist[c->ncur++] = k;
    memcpy(locator, k->locator, 19);
    pthread_mutex_unlock(&c->cur_lock);
    return 0;
}

static json_t *page(const char *version, json_t *all, size_t offset, int batch, const char *locator)
{
    size_t total = json_array_size(all);
    size_t end = offset + (size_t)batch < total ? offset + (size_t)batch : total;
    json_t *recs = json_array();
    for (size_t i = offset; i < end; i++)
        json_array_append(recs, json_array_get(all, i));
    json_t *out = json_object();
    json_object_set_new(out, "totalSize", json_integer((json_int_t)total));
    json_object_set_new(out, "done", json_boolean(end >= total));
    if (end < total) {
        char url[128];
        snprintf(url, sizeof(url), "/services/data/%s/query/%s-%zu", version, locator, end);
        json_object_set_new(out, "nextRecordsUrl", json_string(url));
    }
    json_object_set_new(out, "records", recs);
    return out;
}

/* ---- the query ---- */

json_t *sb_crm_query(sb_crm_t *c, const char *version, const char *soql, int batch, int *status,
                     const char **object)
{
    char err[400];
    int col = 0;
    sb_soql_t *q = NULL;
    json_t *out = NULL;
    const sb_field_t **sel = NULL, **ord = NULL;
    recvec_t cand = {0};

    if (!soql || !*soql) {
        *status = 400;
        return sb_sf_error("MALFORMED_QUERY", "A query string has to be specified", NULL);
    }
    if (sb_soql_parse(soql, &q, &col, err, sizeof(err)) != 0)
        return query_error(status, "MALFORMED_QUERY", soql, col, err);

    const sb_sobj_t *o = sb_crm_sobj(q->object);
    if (!o) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "sObject type '%.80s' is not supported. If you are attempting to use a custom "
                 "object, be sure to append the '__c' after the entity name. Please reference "
                 "your WSDL or the describe call for the appropriate names.",
                 q->object);
        out = query_error(status, "INVALID_TYPE", soql, q->object_col, msg);
        goto done;
    }
    if (object)
        *object = o->name;
    sel = calloc(q->nfields ? q->nfields : 1, sizeof(*sel));
    ord = calloc(q->norder ? q->norder : 1, sizeof(*ord));
    if (!sel || !ord) {
        *status = 500;
        out = sb_sf_error("UNKNOWN_EXCEPTION", "out of memory", NULL);
        goto done;
    }
    for (size_t i = 0; i < q->nfields; i++) {
        sel[i] = sb_crm_field(o, q->fields[i]);
        if (!sel[i]) {
            char msg[512];
            snprintf(msg, sizeof(msg),
                     "No such column '%.100s' on entity '%s'. If you are attempting to use a "
                     "custom field, be sure to append the '__c' after the custom field name. "
                     "Please reference your WSDL or the describe call for the appropriate names.",
                     q->fields[i], o->name);
            out = query_error(status, "INVALID_FIELD", soql, q->field_cols[i], msg);
            goto done;
        }
        for (size_t j = 0; j < i; j++) {
            if (sel[j] == sel[i]) {
                snprintf(err, sizeof(err), "duplicate field selected: %s", sel[i]->name);
                out = query_error(status, "MALFORMED_QUERY", soql, q->field_cols[i], err);
                goto done;
            }
        }
    }
    for (size_t i = 0; i < q->norder; i++) {
        ord[i] = sb_crm_field(o, q->order[i].field);
        if (!ord[i]) {
            char msg[512];
            snprintf(msg, sizeof(msg), "No such column '%.100s' on entity '%s'.", q->order[i].field,
                     o->name);
            out = query_error(status, "INVALID_FIELD", soql, q->order[i].col, msg);
            goto done;
        }
    }
    if (q->where && (out = bind_cond(o, q->where, soql, status)))
        goto done;

    pthread_rwlock_rdlock(&c->lock);
    if (candidates(c, o, q->where, &cand) != 0) {
        pthread_rwlock_unlock(&c->lock);
        *status = 500;
        out = sb_sf_error("UNKNOWN_EXCEPTION", "out of memory", NULL);
        goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < cand.n; i++)
        if (!q->where || eval(cand.v[i], q->where))
            cand.v[n++] = cand.v[i];
    sortctx_t S = {ord, q->order, q->norder};
    if (n > 1)
        qsort_r(cand.v, n, sizeof(*cand.v), cmp_recs, &S);
    size_t from = q->offset > 0 ? (size_t)q->offset : 0;
    if (from > n)
        from = n;
    size_t to = n;
    if (q->limit >= 0 && from + (size_t)q->limit < to)
        to = from + (size_t)q->limit;
    json_t *all = json_array();
    if (!q->count_only)
        for (size_t i = from; i < to; i++)
            json_array_append_new(all, sb_rec_render(cand.v[i], sel, q->nfields, version));
    pthread_rwlock_unlock(&c->lock);

    *status = 200;
    if (q->count_only) {
        json_decref(all);
        out = json_pack("{s:I, s:b, s:[]}", "totalSize", (json_int_t)(to - from), "done", 1,
                        "records");
    } else if (json_array_size(all) <= (size_t)batch) {
        out = page(version, all, 0, batch, NULL);
        json_decref(all);
    } else {
        char locator[19];
        json_incref(all);
        if (cursor_add(c, all, batch, locator) != 0) {
            json_decref(all);
            *status = 500;
            out = sb_sf_error("UNKNOWN_EXCEPTION", "out of memory", NULL);
            goto done;
        }
        out = page(version, all, 0, batch, locator);
        json_decref(all);
    }
done:
    free(cand.v);
    free(sel);
    free(ord);
    sb_soql_free(q);
    return out;
}

json_t *sb_crm_query_more(sb_crm_t *c, const char *version, const char *locator, int batch,
                          int *status)
{
    const char *dash = locator ? strrchr(locator, '-') : NULL;
    char loc[32];
    char *end = NULL;
    long long offset = dash ? strtoll(dash + 1, &end, 10) : -1;
    if (!dash || (size_t)(dash - locator) >= sizeof(loc) || !end || *end || offset < 0 ||
        end == dash + 1) {
        *status = 400;
        return sb_sf_error("INVALID_QUERY_LOCATOR", "invalid query locator", NULL);
    }
    memcpy(loc, locator, (size_t)(dash - locator));
    loc[dash - locator] = '\0';
    pthread_mutex_lock(&c->cur_lock);
    sb_cursor_t *k = sb_map_get(c->cursors, loc);
    json_t *all = k ? json_incref(k->records) : NULL;
    if (k) {
        k->last_used_ms = cs_now_ms();
        if (batch <= 0)
            batch = k->batch;
    }
    pthread_mutex_unlock(&c->cur_lock);
    if (!all || (size_t)offset >= json_array_size(all)) {
        json_decref(all);
        *status = 400;
        return sb_sf_error("INVALID_QUERY_LOCATOR", "invalid query locator", NULL);
    }
    json_t *out = page(version, all, (size_t)offset, batch, loc);
    json_decref(all);
    *status = 200;
    return out;
}
