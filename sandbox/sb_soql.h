/* sb_soql: a parser for the SOQL subset the sandbox answers.
 *
 *   SELECT <field> {, <field>} | COUNT()
 *   FROM <object>
 *   [WHERE <cond>]            cond: cond AND cond | cond OR cond | NOT cond | ( cond )
 *                                 | <field> (= | != | <> | < | <= | > | >= | LIKE) <literal>
 *                                 | <field> [NOT] IN ( <literal> {, <literal>} )
 *   [ORDER BY <field> [ASC|DESC] [NULLS FIRST|LAST] {, ...}]
 *   [LIMIT n] [OFFSET n]
 *
 * Literals: 'strings' (backslash escapes), numbers, true/false/null, unquoted date-times
 * (2024-05-01T00:00:00Z, ...+02:00, ...-0500) and dates (2024-05-01). Keywords are
 * case-insensitive. The parser knows nothing about objects or fields: names are checked later
 * against the schema (sb_crm). It never reads past the input, bounds its recursion and its
 * sizes, and reports the first problem with a 1-based column. Pure; any thread. */
#ifndef SB_SOQL_H
#define SB_SOQL_H

#include <stddef.h>
#include <stdint.h>

#define SB_SOQL_MAX_LEN 100000 /* characters in a query (the real limit) */
#define SB_SOQL_MAX_DEPTH 32   /* nesting of parentheses / NOT */
#define SB_SOQL_MAX_OFFSET 2000

typedef enum {
    SB_LIT_STRING,
    SB_LIT_NUMBER,
    SB_LIT_BOOL,
    SB_LIT_NULL,
    SB_LIT_DATETIME,
    SB_LIT_DATE,
} sb_lit_type_t;

typedef struct sb_lit_s {
    sb_lit_type_t type;
    char *s;    /* STRING: the unescaped text; other types: the literal as written */
    double num; /* NUMBER */
    int b;      /* BOOL */
    int64_t ms; /* DATETIME (UTC epoch ms); DATE: midnight UTC */
    int col;
} sb_lit_t;

typedef enum {
    SB_COND_AND,
    SB_COND_OR,
    SB_COND_NOT,
    SB_COND_CMP,
    SB_COND_IN,
    SB_COND_NOT_IN,
} sb_cond_kind_t;

typedef enum { SB_OP_EQ, SB_OP_NE, SB_OP_LT, SB_OP_LE, SB_OP_GT, SB_OP_GE, SB_OP_LIKE } sb_op_t;

typedef struct sb_cond_s {
    sb_cond_kind_t kind;
    struct sb_cond_s **kids; /* AND / OR: n-ary (chains are flat); NOT: one */
    size_t nkids;
    char *field; /* CMP / IN */
    int field_col;
    sb_op_t op; /* CMP */
    sb_lit_t *vals;
    size_t nvals;      /* CMP: 1 */
    const void *bound; /* free for the caller: sb_crm stores the resolved field here */
} sb_cond_t;

typedef struct sb_order_s {
    char *field;
    int col;
    int desc;
    int nulls_last; /* default: NULLS FIRST for ASC, NULLS LAST for DESC (as SOQL) */
} sb_order_t;

typedef struct sb_soql_s {
    char **fields; /* as written */
    int *field_cols;
    size_t nfields;
    int count_only; /* SELECT COUNT() */
    char *object;
    int object_col;
    sb_cond_t *where; /* NULL when absent */
    sb_order_t *order;
    size_t norder;
    long long limit;  /* -1 when absent */
    long long offset; /* -1 when absent */
} sb_soql_t;

/* Parses q. Returns 0 and *out (caller frees with sb_soql_free()), or -1 with a message in
 * err (e.g. "unexpected token: 'FRM'") and the 1-based column in *err_col; ENOMEM is reported
 * the same way. */
int sb_soql_parse(const char *q, sb_soql_t **out, int *err_col, char *err, size_t errsz);

void sb_soql_free(sb_soql_t *s); /* accepts NULL */

/* SOQL LIKE: '%' any run, '_' one character, case-insensitive, no escapes. */
int sb_soql_like(const char *text, const char *pattern);

#endif
