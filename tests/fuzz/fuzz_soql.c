/* fuzz_soql: the sandbox's SOQL parser (sb_soql_parse) and its LIKE matcher.
 *
 * Input: the query; after a NUL byte (optional), "<text>\0<pattern>" for sb_soql_like.
 * Invariants:
 *   - failure: a message and a column within the query (1 .. length + 1);
 *   - success: a sane tree (an object, fields or COUNT(), AND/OR with 2+ children, NOT with
 *     one, one value per comparison, 1+ per IN, LIMIT/OFFSET within bounds), and a round
 *     trip: the tree printed back as SOQL parses again into a tree that prints the same;
 *   - LIKE agrees with a plain dynamic-programming matcher. */
#include "fuzz.h"

#include "sb_soql.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void put(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            cs_fuzz_fail("soql", "out of memory");
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(sbuf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_lit(sbuf_t *b, const sb_lit_t *l)
{
    if (l->type != SB_LIT_STRING) {
        if (!l->s)
            cs_fuzz_fail("soql", "literal of type %d without its text", (int)l->type);
        puts_(b, l->s);
        return;
    }
    puts_(b, "'");
    for (const char *s = l->s; *s; s++) {
        switch (*s) {
        case '\'':
            puts_(b, "\\'");
            break;
        case '\\':
            puts_(b, "\\\\");
            break;
        case '\n':
            puts_(b, "\\n");
            break;
        case '\r':
            puts_(b, "\\r");
            break;
        case '\t':
            puts_(b, "\\t");
            break;
        case '\b':
            puts_(b, "\\b");
            break;
        case '\f':
            puts_(b, "\\f");
            break;
        default:
            put(b, s, 1);
        }
    }
    puts_(b, "'");
}

static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">=", "LIKE"};

static int is_chain(const sb_cond_t *c)
{
    return c->kind == SB_COND_AND || c->kind == SB_COND_OR;
}

/* Prints a condition with the fewest parentheses that keep its shape (so the printed query
 * nests no deeper than the original did). */
static void put_cond(sbuf_t *b, const sb_cond_t *c, int depth)
{
    if (!c || depth > 2 * SB_SOQL_MAX_DEPTH + 4)
        cs_fuzz_fail("soql", "condition tree deeper than the parser allows");
    switch (c->kind) {
    case SB_COND_AND:
    case SB_COND_OR:
        if (c->nkids < 2)
            cs_fuzz_fail("soql", "AND/OR with %zu children", c->nkids);
        for (size_t i = 0; i < c->nkids; i++) {
            const sb_cond_t *k = c->kids[i];
            int paren = k && is_chain(k) && (k->kind == c->kind || c->kind == SB_COND_AND);
            if (i)
                puts_(b, c->kind == SB_COND_AND ? " AND " : " OR ");
            if (paren)
                puts_(b, "(");
            put_cond(b, k, depth + 1);
            if (paren)
                puts_(b, ")");
        }
        break;
    case SB_COND_NOT:
        if (c->nkids != 1)
            cs_fuzz_fail("soql", "NOT with %zu children", c->nkids);
        puts_(b, "NOT ");
        if (is_chain(c->kids[0]))
            puts_(b, "(");
        put_cond(b, c->kids[0], depth + 1);
        if (is_chain(c->kids[0]))
            puts_(b, ")");
        break;
    case SB_COND_CMP:
        if (!c->field || c->nvals != 1 || (unsigned)c->op > SB_OP_LIKE)
            cs_fuzz_fail("soql", "comparison without field, value or operator");
        puts_(b, c->field);
        puts_(b, " ");
        puts_(b, ops[c->op]);
        puts_(b, " ");
        put_lit(b, &c->vals[0]);
        break;
    case SB_COND_IN:
    case SB_COND_NOT_IN:
        if (!c->field || c->nvals < 1)
            cs_fuzz_fail("soql", "IN without field or values");
        puts_(b, c->field);
        puts_(b, c->kind == SB_COND_IN ? " IN (" : " NOT IN (");
        for (size_t i = 0; i < c->nvals; i++) {
            if (i)
                puts_(b, ", ");
            put_lit(b, &c->vals[i]);
        }
        puts_(b, ")");
        break;
    default:
        cs_fuzz_fail("soql", "condition kind %d", (int)c->kind);
    }
}

static char *print_query(const sb_soql_t *s)
{
    sbuf_t b = {NULL, 0, 0};
    char num[32];
    if (!s->object || !*s->object || (!s->count_only && s->nfields == 0))
        cs_fuzz_fail("soql", "a query without object or fields");
    if (s->limit < -1 || s->offset < -1 || s->offset > SB_SOQL_MAX_OFFSET)
        cs_fuzz_fail("soql", "LIMIT %lld OFFSET %lld", s->limit, s->offset);
    puts_(&b, "SELECT ");
    if (s->count_only)
        puts_(&b, "COUNT()");
    for (size_t i = 0; !s->count_only && i < s->nfields; i++) {
        if (i)
            puts_(&b, ", ");
        puts_(&b, s->fields[i]);
    }
    puts_(&b, " FROM ");
    puts_(&b, s->object);
    if (s->where) {
        puts_(&b, " WHERE ");
        put_cond(&b, s->where, 0);
    }
    for (size_t i = 0; i < s->norder; i++) {
        puts_(&b, i ? ", " : " ORDER BY ");
        puts_(&b, s->order[i].field);
        puts_(&b, s->order[i].desc ? " DESC" : " ASC");
        puts_(&b, s->order[i].nulls_last ? " NULLS LAST" : " NULLS FIRST");
    }
    if (s->limit >= 0) {
        snprintf(num, sizeof num, " LIMIT %lld", s->limit);
        puts_(&b, num);
    }
    if (s->offset >= 0) {
        snprintf(num, sizeof num, " OFFSET %lld", s->offset);
        puts_(&b, num);
    }
    return b.p;
}

/* LIKE by dynamic programming: '%' any run, '_' one character, ASCII case-insensitive. */
static int like_ref(const char *t, const char *p)
{
    size_t n = strlen(t), m = strlen(p);
    unsigned char *prev = calloc(n + 1, 1), *cur = calloc(n + 1, 1);
    if (!prev || !cur)
        cs_fuzz_fail("soql", "out of memory");
    prev[0] = 1;
    for (size_t j = 1; j <= n; j++)
        prev[j] = 0;
    for (size_t i = 1; i <= m; i++) {
        char pc = p[i - 1];
        cur[0] = pc == '%' && prev[0];
        for (size_t j = 1; j <= n; j++) {
            if (pc == '%')
                cur[j] = prev[j] || cur[j - 1];
            else
                cur[j] = prev[j - 1] && (pc == '_' || tolower((unsigned char)pc) ==
                                                          tolower((unsigned char)t[j - 1]));
        }
        unsigned char *tmp = prev;
        prev = cur;
        cur = tmp;
    }
    int r = prev[n];
    free(prev);
    free(cur);
    return r;
}

int cs_fuzz_soql(const uint8_t *data, size_t size)
{
    char err[256], err2[256];
    int col = 0;
    sb_soql_t *s = NULL, *s2 = NULL;
    cs_fuzz_quiet();
    char *q = malloc(size + 2);
    if (!q)
        return 0;
    memcpy(q, data, size);
    q[size] = q[size + 1] = '\0';
    size_t qlen = strlen(q);

    if (sb_soql_parse(q, &s, &col, err, sizeof err) != 0) {
        if (s)
            cs_fuzz_fail("soql", "failure with a tree");
        if (!err[0] || col < 1 || (size_t)col > qlen + 1)
            cs_fuzz_fail("soql", "failure without a message or with column %d of %zu", col, qlen);
    } else {
        char *p1 = print_query(s);
        if (sb_soql_parse(p1, &s2, &col, err2, sizeof err2) != 0)
            cs_fuzz_fail("soql", "printed query does not parse: %s (column %d): %s", err2, col, p1);
        char *p2 = print_query(s2);
        if (strcmp(p1, p2))
            cs_fuzz_fail("soql", "round trip changed the query:\n  %s\n  %s", p1, p2);
        free(p1);
        free(p2);
        sb_soql_free(s2);
        sb_soql_free(s);
    }

    /* LIKE over the rest: text \0 pattern (bounded: the reference is quadratic). */
    if (qlen < size) {
        const char *text = q + qlen + 1;
        const char *pat = text + strlen(text) + 1;
        if (pat > q + size)
            pat = "";
        if (strlen(text) <= 512 && strlen(pat) <= 512) {
            int got = sb_soql_like(text, pat), want = like_ref(text, pat);
            if (got != want)
                cs_fuzz_fail("soql", "LIKE '%s' on '%s': %d, expected %d", pat, text, got, want);
        }
    }
    free(q);
    return 0;
}

CS_FUZZ_ENTRY(soql)
