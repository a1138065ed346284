/* sb_soql: recursive-descent parser over a hand-written tokenizer. Every path that can fail
 * sets one error (the first wins) and unwinds; the caller frees the partial tree. */
#include "sb_soql.h"
#include "sb_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    T_EOF,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_DATETIME,
    T_DATE,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_OP,
} ttype_t;

typedef struct {
    ttype_t t;
    const char *p; /* into the query */
    size_t n;
    int col;
    sb_op_t op;
} tok_t;

typedef struct {
    const char *q;
    size_t len, i;
    tok_t cur;
    int depth;
    int failed;
    int err_col;
    char *err;
    size_t errsz;
} parser_t;

static void fail(parser_t *P, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(parser_t *P, int col, const char *fmt, ...)
{
    if (P->failed)
        return;
    P->failed = 1;
    P->err_col = col;
    if (P->err && P->errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P->err, P->errsz, fmt, ap);
        va_end(ap);
    }
}

static void fail_tok(parser_t *P)
{
    if (P->cur.t == T_EOF)
        fail(P, P->cur.col, "unexpected token: '<EOF>'");
    else
        fail(P, P->cur.col, "unexpected token: '%.*s'", (int)(P->cur.n > 60 ? 60 : P->cur.n),
             P->cur.p);
}

/* ---- tokenizer ---- */

static int is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static int is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.';
}

/* Scans a date or date-time literal at P->i (which starts with 4 digits and '-'). */
static void scan_datetime(parser_t *P, tok_t *t)
{
    size_t start = P->i, i = P->i;
    while (i < P->len && (isdigit((unsigned char)P->q[i]) || P->q[i] == '-'))
        i++;
    if (i < P->len && (P->q[i] == 'T' || P->q[i] == 't')) {
        while (i < P->len && (isdigit((unsigned char)P->q[i]) || strchr(":.TtZz+-", P->q[i])))
            i++;
        /* "...:00 05:00": a '+' offset that was URL-decoded to a space */
        const char *q = P->q;
        if (i + 6 <= P->len && q[i] == ' ' && isdigit((unsigned char)q[i + 1]) &&
            isdigit((unsigned char)q[i + 2]) && q[i + 3] == ':' &&
            isdigit((unsigned char)q[i + 4]) && isdigit((unsigned char)q[i + 5]) &&
            q[i - 1] != 'Z' && q[i - 1] != 'z')
            i += 6;
        t->t = T_DATETIME;
    } else {
        t->t = T_DATE;
    }
    t->p = P->q + start;
    t->n = i - start;
    P->i = i;
}

static void next(parser_t *P)
{
    tok_t *t = &P->cur;
    while (P->i < P->len && isspace((unsigned char)P->q[P->i]))
        P->i++;
    t->col = (int)P->i + 1;
    t->p = P->q + P->i;
    t->n = 0;
    if (P->i >= P->len) {
        t->t = T_EOF;
        return;
    }
    const char *q = P->q;
    size_t i = P->i;
    char c = q[i];
    if (is_ident_start(c)) {
        while (i < P->len && is_ident_char(q[i]))
            i++;
        t->t = T_IDENT;
    } else if (isdigit((unsigned char)c) && i + 4 < P->len && isdigit((unsigned char)q[i + 1]) &&
               isdigit((unsigned char)q[i + 2]) && isdigit((unsigned char)q[i + 3]) &&
               q[i + 4] == '-') {
        scan_datetime(P, t);
        return;
    } else if (isdigit((unsigned char)c) ||
               ((c == '-' || c == '+') && i + 1 < P->len && isdigit((unsigned char)q[i + 1]))) {
        i++;
        while (i < P->len && isdigit((unsigned char)q[i]))
            i++;
        if (i < P->len && q[i] == '.') {
            i++;
            while (i < P->len && isdigit((unsigned char)q[i]))
                i++;
        }
        t->t = T_NUMBER;
    } else if (c == '\'') {
        i++;
        while (i < P->len && q[i] != '\'') {
            if (q[i] == '\\')
                i++;
            i++;
        }
        if (i >= P->len) {
            t->t = T_EOF;
            fail(P, t->col, "unterminated string literal");
            P->i = P->len;
            return;
        }
        i++;
        t->t = T_STRING;
    } else if (c == '(') {
        i++;
        t->t = T_LPAREN;
    } else if (c == ')') {
        i++;
        t->t = T_RPAREN;
    } else if (c == ',') {
        i++;
        t->t = T_COMMA;
    } else if (c == '=') {
        i++;
        t->t = T_OP;
        t->op = SB_OP_EQ;
    } else if (c == '!' && i + 1 < P->len && q[i + 1] == '=') {
        i += 2;
        t->t = T_OP;
        t->op = SB_OP_NE;
    } else if (c == '<') {
        i++;
        t->t = T_OP;
        t->op = SB_OP_LT;
        if (i < P->len && q[i] == '=') {
            i++;
            t->op = SB_OP_LE;
        } else if (i < P->len && q[i] == '>') {
            i++;
            t->op = SB_OP_NE;
        }
    } else if (c == '>') {
        i++;
        t->t = T_OP;
        t->op = SB_OP_GT;
        if (i < P->len && q[i] == '=') {
            i++;
            t->op = SB_OP_GE;
        }
    } else {
        t->t = T_EOF;
        t->n = 1;
        fail(P, t->col, "unexpected char: '%c'", isprint((unsigned char)c) ? c : '?');
        P->i = P->len;
        return;
    }
    t->n = i - P->i;
    P->i = i;
}

static int is_kw(const tok_t *t, const char *kw)
{
    return t->t == T_IDENT && strlen(kw) == t->n && !strncasecmp(t->p, kw, t->n);
}

static int accept_kw(parser_t *P, const char *kw)
{
    if (!P->failed && is_kw(&P->cur, kw)) {
        next(P);
        return 1;
    }
    return 0;
}

static int expect_kw(parser_t *P, const char *kw)
{
    if (accept_kw(P, kw))
        return 1;
    fail_tok(P);
    return 0;
}

static int is_reserved(const tok_t *t)
{
    static const char *kws[] = {"SELECT", "FROM",  "WHERE", "AND",   "OR",   "NOT",
                                "IN",     "ORDER", "BY",    "LIMIT", "LIKE", "OFFSET",
                                "NULL",   "TRUE",  "FALSE", "ASC",   "DESC", "NULLS"};
    for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
        if (is_kw(t, kws[i]))
            return 1;
    return 0;
}

static char *tok_dup(parser_t *P, const tok_t *t)
{
    char *s = strndup(t->p, t->n);
    if (!s)
        fail(P, t->col, "out of memory");
    return s;
}

/* A field name: an identifier that is not a reserved word. */
static char *parse_name(parser_t *P, int *col)
{
    if (P->failed)
        return NULL;
    if (P->cur.t != T_IDENT || is_reserved(&P->cur)) {
        fail_tok(P);
        return NULL;
    }
    *col = P->cur.col;
    char *s = tok_dup(P, &P->cur);
    next(P);
    return s;
}

/* ---- literals ---- */

static int parse_string_lit(parser_t *P, const tok_t *t, sb_lit_t *lit)
{
    /* t->p[0] and t->p[n-1] are the quotes */
    char *s = malloc(t->n);
    if (!s) {
        fail(P, t->col, "out of memory");
        return -1;
    }
    size_t o = 0;
    for (size_t i = 1; i + 1 < t->n; i++) {
        char c = t->p[i];
        if (c == '\\') {
            i++;
            if (i + 1 >= t->n) {
                free(s);
                fail(P, t->col, "invalid escape sequence");
                return -1;
            }
            switch (t->p[i]) {
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case '\'':
            case '"':
            case '\\':
            case '%':
            case '_':
                c = t->p[i];
                break;
            default:
                free(s);
                fail(P, t->col + (int)i,
                     "Invalid string literal '%.*s'. Illegal character "
                     "sequence '\\%c' in string literal.",
                     (int)(t->n > 60 ? 60 : t->n), t->p, t->p[i]);
                return -1;
            }
        }
        s[o++] = c;
    }
    s[o] = '\0';
    lit->type = SB_LIT_STRING;
    lit->s = s;
    return 0;
}

static int parse_literal(parser_t *P, sb_lit_t *lit)
{
    memset(lit, 0, sizeof(*lit));
    if (P->failed)
        return -1;
    tok_t t = P->cur;
    lit->col = t.col;
    switch (t.t) {
    case T_STRING:
        if (parse_string_lit(P, &t, lit) != 0)
            return -1;
        break;
    case T_NUMBER: {
        char buf[64];
        if (t.n >= sizeof(buf)) {
            fail(P, t.col, "number too long: '%.*s'", 20, t.p);
            return -1;
        }
        memcpy(buf, t.p, t.n);
        buf[t.n] = '\0';
        lit->type = SB_LIT_NUMBER;
        lit->num = strtod(buf, NULL);
        lit->s = tok_dup(P, &t);
        break;
    }
    case T_DATETIME:
    case T_DATE: {
        int64_t ms = 0;
        int ok;
        if (t.t == T_DATE) {
            char buf[32];
            ok = t.n == 10;
            if (ok) {
                snprintf(buf, sizeof(buf), "%.10sT00:00:00Z", t.p);
                ok = sb_parse_datetime(buf, (size_t)-1, &ms) == 0;
            }
        } else {
            ok = sb_parse_datetime(t.p, t.n, &ms) == 0;
        }
        if (!ok) {
            fail(P, t.col, "line 1:%d no viable alternative at character '%.*s'", t.col,
                 (int)(t.n > 40 ? 40 : t.n), t.p);
            return -1;
        }
        lit->type = t.t == T_DATE ? SB_LIT_DATE : SB_LIT_DATETIME;
        lit->ms = ms;
        lit->s = tok_dup(P, &t);
        break;
    }
    case T_IDENT:
        if (is_kw(&t, "null")) {
            lit->type = SB_LIT_NULL;
        } else if (is_kw(&t, "true") || is_kw(&t, "false")) {
            lit->type = SB_LIT_BOOL;
            lit->b = is_kw(&t, "true");
        } else {
            fail_tok(P);
            return -1;
        }
        lit->s = tok_dup(P, &t);
        break;
    default:
        fail_tok(P);
        return -1;
    }
    if (P->failed)
        return -1;
    next(P);
    return 0;
}

static void lit_free(sb_lit_t *l)
{
    free(l->s);
}

/* ---- conditions ---- */

static void cond_free(sb_cond_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nkids; i++)
        cond_free(c->kids[i]);
    free(c->kids);
    free(c->field);
    for (size_t i = 0; i < c->nvals; i++)
        lit_free(&c->vals[i]);
    free(c->vals);
    free(c);
}

static sb_cond_t *cond_new(parser_t *P, sb_cond_kind_t kind)
{
    sb_cond_t *c = calloc(1, sizeof(*c));
    if (!c)
        fail(P, P->cur.col, "out of memory");
    else
        c->kind = kind;
    return c;
}

static int add_kid(parser_t *P, sb_cond_t *c, sb_cond_t *kid)
{
    sb_cond_t **k = realloc(c->kids, (c->nkids + 1) * sizeof(*k));
    if (!k) {
        fail(P, P->cur.col, "out of memory");
        cond_free(kid);
        return -1;
    }
    c->kids = k;
    c->kids[c->nkids++] = kid;
    return 0;
}

static sb_cond_t *parse_or(parser_t *P);

static sb_cond_t *parse_predicate(parser_t *P)
{
    int col = 0;
    char *field = parse_name(P, &col);
    if (!field)
        return NULL;
    sb_cond_t *c = NULL;
    int negate_in = 0;
    if (P->cur.t == T_OP || is_kw(&P->cur, "LIKE")) {
        c = cond_new(P, SB_COND_CMP);
        if (!c)
            goto fail;
        c->op = P->cur.t == T_OP ? P->cur.op : SB_OP_LIKE;
        next(P);
        c->vals = calloc(1, sizeof(*c->vals));
        if (!c->vals) {
            fail(P, col, "out of memory");
            goto fail;
        }
        c->nvals = 1;
        if (parse_literal(P, &c->vals[0]) != 0)
            goto fail;
    } else if (is_kw(&P->cur, "IN") || is_kw(&P->cur, "NOT")) {
        if (accept_kw(P, "NOT")) {
            negate_in = 1;
            if (!is_kw(&P->cur, "IN")) {
                fail_tok(P);
                goto fail;
            }
        }
        next(P); /* IN */
        c = cond_new(P, negate_in ? SB_COND_NOT_IN : SB_COND_IN);
        if (!c)
            goto fail;
        if (P->cur.t != T_LPAREN) {
            fail_tok(P);
            goto fail;
        }
        next(P);
        size_t cap = 0;
        for (;;) {
            if (c->nvals == cap) {
                cap = cap ? cap * 2 : 8;
                sb_lit_t *v = realloc(c->vals, cap * sizeof(*v));
                if (!v) {
                    fail(P, col, "out of memory");
                    goto fail;
                }
                c->vals = v;
            }
            if (parse_literal(P, &c->vals[c->nvals]) != 0)
                goto fail;
            c->nvals++;
            if (P->cur.t == T_COMMA) {
                next(P);
                continue;
            }
            if (P->cur.t == T_RPAREN) {
                next(P);
                break;
            }
            fail_tok(P);
            goto fail;
        }
    } else {
        fail_tok(P);
        goto fail;
    }
    if (P->failed)
        goto fail;
    c->field = field;
    c->field_col = col;
    return c;
fail:
    free(field);
    cond_free(c);
    return NULL;
}

static sb_cond_t *parse_unary(parser_t *P)
{
    if (P->failed)
        return NULL;
    if (P->depth >= SB_SOQL_MAX_DEPTH) {
        fail(P, P->cur.col, "query is nested too deeply");
        return NULL;
    }
    if (is_kw(&P->cur, "NOT")) {
        next(P);
        P->depth++;
        sb_cond_t *inner = parse_unary(P);
        P->depth--;
        if (!inner)
            return NULL;
        sb_cond_t *c = cond_new(P, SB_COND_NOT);
        if (!c || add_kid(P, c, inner) != 0) {
            if (!c)
                cond_free(inner);
            cond_free(c);
            return NULL;
        }
        return c;
    }
    if (P->cur.t == T_LPAREN) {
        next(P);
        P->depth++;
        sb_cond_t *c = parse_or(P);
        P->depth--;
        if (!c)
            return NULL;
        if (P->cur.t != T_RPAREN) {
            fail_tok(P);
            cond_free(c);
            return NULL;
        }
        next(P);
        return c;
    }
    return parse_predicate(P);
}

/* Parses a chain "x KW y KW z" into one n-ary node (or returns x alone). */
static sb_cond_t *parse_chain(parser_t *P, const char *kw, sb_cond_kind_t kind,
                              sb_cond_t *(*sub)(parser_t *))
{
    sb_cond_t *first = sub(P);
    if (!first)
        return NULL;
    if (!is_kw(&P->cur, kw))
        return first;
    sb_cond_t *c = cond_new(P, kind);
    if (!c) {
        cond_free(first);
        return NULL;
    }
    if (add_kid(P, c, first) != 0)
        goto fail;
    while (accept_kw(P, kw)) {
        sb_cond_t *k = sub(P);
        if (!k || add_kid(P, c, k) != 0)
            goto fail;
    }
    return c;
fail:
    cond_free(c);
    return NULL;
}

static sb_cond_t *parse_and(parser_t *P)
{
    return parse_chain(P, "AND", SB_COND_AND, parse_unary);
}

static sb_cond_t *parse_or(parser_t *P)
{
    return parse_chain(P, "OR", SB_COND_OR, parse_and);
}

/* ---- the statement ---- */

void sb_soql_free(sb_soql_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nfields; i++)
        free(s->fields[i]);
    free(s->fields);
    free(s->field_cols);
    free(s->object);
    cond_free(s->where);
    for (size_t i = 0; i < s->norder; i++)
        free(s->order[i].field);
    free(s->order);
    free(s);
}

static long long parse_count(parser_t *P, long long max)
{
    if (P->failed)
        return -1;
    if (P->cur.t != T_NUMBER || P->cur.p[0] == '-' || P->cur.p[0] == '+' ||
        memchr(P->cur.p, '.', P->cur.n) || P->cur.n > 12) {
        fail_tok(P);
        return -1;
    }
    long long v = 0;
    for (size_t i = 0; i < P->cur.n; i++)
        v = v * 10 + (P->cur.p[i] - '0');
    if (v > max) {
        fail(P, P->cur.col, "maximum value exceeded: %.*s", (int)P->cur.n, P->cur.p);
        return -1;
    }
    next(P);
    return v;
}

static int parse_select_list(parser_t *P, sb_soql_t *s)
{
    size_t cap = 0;
    if (is_kw(&P->cur, "COUNT")) {
        /* COUNT() only when followed by "(" ")" */
        size_t save_i = P->i;
        tok_t save = P->cur;
        next(P);
        if (P->cur.t == T_LPAREN) {
            next(P);
            if (P->cur.t != T_RPAREN) {
                fail_tok(P);
                return -1;
            }
            next(P);
            s->count_only = 1;
            return P->failed ? -1 : 0;
        }
        P->i = save_i;
        P->cur = save;
    }
    for (;;) {
        if (s->nfields == cap) {
            cap = cap ? cap * 2 : 8;
            char **f = realloc(s->fields, cap * sizeof(*f));
            int *c = f ? realloc(s->field_cols, cap * sizeof(*c)) : NULL;
            if (f)
                s->fields = f;
            if (c)
                s->field_cols = c;
            if (!f || !c) {
                fail(P, P->cur.col, "out of memory");
                return -1;
            }
        }
        int col = 0;
        char *name = parse_name(P, &col);
        if (!name)
            return -1;
        s->fields[s->nfields] = name;
        s->field_cols[s->nfields] = col;
        s->nfields++;
        if (P->cur.t != T_COMMA)
            return P->failed ? -1 : 0;
        next(P);
    }
}

static int parse_order(parser_t *P, sb_soql_t *s)
{
    size_t cap = 0;
    for (;;) {
        if (s->norder == cap) {
            cap = cap ? cap * 2 : 4;
            sb_order_t *o = realloc(s->order, cap * sizeof(*o));
            if (!o) {
                fail(P, P->cur.col, "out of memory");
                return -1;
            }
            s->order = o;
        }
        sb_order_t *o = &s->order[s->norder];
        memset(o, 0, sizeof(*o));
        o->field = parse_name(P, &o->col);
        if (!o->field)
            return -1;
        s->norder++;
        if (accept_kw(P, "DESC"))
            o->desc = 1;
        else
            accept_kw(P, "ASC");
        o->nulls_last = o->desc;
        if (accept_kw(P, "NULLS")) {
            if (accept_kw(P, "LAST"))
                o->nulls_last = 1;
            else if (expect_kw(P, "FIRST"))
                o->nulls_last = 0;
            else
                return -1;
        }
        if (P->cur.t != T_COMMA)
            return P->failed ? -1 : 0;
        next(P);
    }
}

int sb_soql_parse(const char *q, sb_soql_t **out, int *err_col, char *err, size_t errsz)
{
    parser_t P = {0};
    sb_soql_t *s = NULL;
    *out = NULL;
    P.q = q ? q : "";
    P.len = strlen(P.q);
    P.err = err;
    P.errsz = errsz;
    if (err && errsz)
        err[0] = '\0';
    if (P.len > SB_SOQL_MAX_LEN) {
        fail(&P, 1, "query is longer than %d characters", SB_SOQL_MAX_LEN);
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        fail(&P, 1, "out of memory");
        goto out;
    }
    s->limit = s->offset = -1;
    next(&P);
    if (!expect_kw(&P, "SELECT") || parse_select_list(&P, s) != 0 || !expect_kw(&P, "FROM"))
        goto out;
    s->object = parse_name(&P, &s->object_col);
    if (!s->object)
        goto out;
    if (accept_kw(&P, "WHERE")) {
        s->where = parse_or(&P);
        if (!s->where)
            goto out;
    }
    if (accept_kw(&P, "ORDER")) {
        if (!expect_kw(&P, "BY") || parse_order(&P, s) != 0)
            goto out;
    }
    if (accept_kw(&P, "LIMIT")) {
        s->limit = parse_count(&P, 2147483647LL);
        if (s->limit < 0)
            goto out;
    }
    if (accept_kw(&P, "OFFSET")) {
        s->offset = parse_count(&P, SB_SOQL_MAX_OFFSET);
        if (s->offset < 0)
            goto out;
    }
    if (!P.failed && P.cur.t != T_EOF)
        fail_tok(&P);
out:
    if (P.failed) {
        if (err_col)
            *err_col = P.err_col;
        sb_soql_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int sb_soql_like(const char *t, const char *p)
{
    /* iterative matcher with single backtrack point for '%' */
    const char *star_p = NULL, *star_t = NULL;
    while (*t) {
        if (*p == '%') {
            star_p = ++p;
            star_t = t;
        } else if (*p && (*p == '_' || tolower((unsigned char)*p) == tolower((unsigned char)*t))) {
            p++;
            t++;
        } else if (star_p) {
            p = star_p;
            t = ++star_t;
        } else {
            return 0;
        }
    }
    while (*p == '%')
        p++;
    return *p == '\0';
}
