/* Unit: cs_csv, the streaming RFC 4180 reader. Every RFC 4180 case (quoted fields with
 * delimiters, doubled quotes, CR/LF inside quotes, CRLF/LF/CR record ends, a last record
 * without a line break), what spreadsheets add (BOM, blank lines), every malformed-input path
 * (each reported with its line and skipped, the next record read normally), input split at
 * every byte, a random round trip against a writer, random garbage, and 1M generated rows in
 * constant memory (no allocation at all after cs_csv_new). */
#include "cs_csv.h"
#include "cs_err.h"
#include "cs_test.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/resource.h>

/* ---- helpers ---- */

typedef struct {
    char f[16][64];
    size_t n;
    uint64_t line, line_end;
    int rc;
} got_t;

/* Parses text fully; stores up to max results (records or errors) in out. Returns count. */
static size_t parse_all(cs_csv_t *c, got_t *out, size_t max)
{
    size_t k = 0;
    cs_csv_record_t r;
    for (int guard = 0; guard < 10000; guard++) {
        int rc = cs_csv_next(c, &r);
        if (rc == 0 || rc == CS_ERR_IO)
            break;
        if (k < max) {
            memset(&out[k], 0, sizeof(out[k]));
            out[k].rc = rc;
            out[k].line = r.line;
            out[k].line_end = r.line_end;
            if (rc == 1) {
                out[k].n = r.nfields;
                for (size_t i = 0; i < r.nfields && i < 16; i++)
                    snprintf(out[k].f[i], sizeof(out[k].f[i]), "%s", r.fields[i]);
            }
        }
        k++;
    }
    return k;
}

static size_t parse_text(const char *text, const cs_csv_opts_t *o, got_t *out, size_t max)
{
    cs_csv_t *c = cs_csv_new_mem(o, text, strlen(text));
    REQUIRE(c);
    size_t n = parse_all(c, out, max);
    cs_csv_destroy(c);
    return n;
}

/* A read callback that hands out `step` bytes at a time. */
typedef struct {
    const char *p;
    size_t len, pos, step;
    int fail_at; /* fail when pos reaches this (-1 = never) */
} chunked_t;

static ssize_t chunked_read(void *opaque, void *buf, size_t n)
{
    chunked_t *s = opaque;
    if (s->fail_at >= 0 && s->pos >= (size_t)s->fail_at) {
        errno = EIO;
        return -1;
    }
    size_t k = s->len - s->pos;
    if (k > n)
        k = n;
    if (k > s->step)
        k = s->step;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (ssize_t)k;
}

/* ---- RFC 4180 cases ---- */

static void test_basic(void)
{
    got_t g[8];
    size_t n = parse_text("a,b,c\n1,2,3\n", NULL, g, 8);
    CHECK_INT(n, 2);
    CHECK_INT(g[0].rc, 1);
    CHECK_INT(g[0].n, 3);
    CHECK_STR(g[0].f[0], "a");
    CHECK_STR(g[0].f[2], "c");
    CHECK_INT(g[0].line, 1);
    CHECK_STR(g[1].f[1], "2");
    CHECK_INT(g[1].line, 2);
    CHECK_INT(g[1].line_end, 2);

    /* the last record without a line break */
    n = parse_text("a,b\n1,2", NULL, g, 8);
    CHECK_INT(n, 2);
    CHECK_INT(g[1].n, 2);
    CHECK_STR(g[1].f[1], "2");

    /* CRLF, lone CR, mixed */
    n = parse_text("a,b\r\n1,2\r3,4\n5,6\r\n", NULL, g, 8);
    CHECK_INT(n, 4);
    CHECK_STR(g[0].f[1], "b");
    CHECK_STR(g[1].f[1], "2");
    CHECK_STR(g[2].f[0], "3");
    CHECK_STR(g[3].f[1], "6");
    CHECK_INT(g[3].line, 4);

    /* empty fields, quoted empty fields */
    cs_csv_record_t r;
    cs_csv_t *c = cs_csv_new_mem(NULL, ",,\n\"\",x,\"\"\n", 11);
    REQUIRE(c);
    CHECK_INT(cs_csv_next(c, &r), 1);
    CHECK_INT(r.nfields, 3);
    CHECK_INT(r.lens[0] + r.lens[1] + r.lens[2], 0);
    CHECK_INT(r.quoted[0], 0);
    CHECK_INT(cs_csv_next(c, &r), 1);
    CHECK_INT(r.nfields, 3);
    CHECK_INT(r.lens[0], 0);
    CHECK_INT(r.quoted[0], 1);
    CHECK_STR(r.fields[1], "x");
    CHECK_INT(r.quoted[2], 1);
    CHECK_INT(cs_csv_next(c, &r), 0);
    CHECK_INT(cs_csv_next(c, &r), 0); /* stays at the end */
    cs_csv_destroy(c);

    /* empty input, only a BOM, only line breaks */
    CHECK_INT(parse_text("", NULL, g, 8), 0);
    CHECK_INT(parse_text("\xef\xbb\xbf", NULL, g, 8), 0);
    CHECK_INT(parse_text("\n\r\n\r", NULL, g, 8), 0);
}

static void test_quoted(void)
{
    got_t g[8];
    size_t n = parse_text("id,text\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n"
                          "3,\"two\nlines\"\n4,\"crlf\r\ninside\",end\r\n5,last\n",
                          NULL, g, 8);
    CHECK_INT(n, 6);
    CHECK_STR(g[1].f[1], "a, b");
    CHECK_STR(g[2].f[1], "say \"hi\"");
    CHECK_STR(g[3].f[1], "two\nlines");
    CHECK_INT(g[3].line, 4);
    CHECK_INT(g[3].line_end, 5);
    CHECK_STR(g[4].f[1], "crlf\r\ninside");
    CHECK_STR(g[4].f[2], "end");
    CHECK_INT(g[4].line, 6);
    CHECK_INT(g[4].line_end, 7);
    CHECK_STR(g[5].f[1], "last");
    CHECK_INT(g[5].line, 8);

    /* a quoted field that is only quotes; a quoted delimiter at the end */
    n = parse_text("\"\"\"\"\"\",\",\"\n", NULL, g, 8);
    CHECK_INT(n, 1);
    CHECK_STR(g[0].f[0], "\"\"");
    CHECK_STR(g[0].f[1], ",");

    /* a quote inside an unquoted field: literal (lenient) or an error (strict) */
    n = parse_text("5'11\",x\n", NULL, g, 8);
    CHECK_INT(n, 1);
    CHECK_INT(g[0].rc, 1);
    CHECK_STR(g[0].f[0], "5'11\"");
    cs_csv_opts_t o;
    cs_csv_opts_init(&o);
    o.strict_quotes = 1;
    n = parse_text("5'11\",x\nok,1\n", &o, g, 8);
    CHECK_INT(n, 2);
    CHECK_INT(g[0].rc, CS_ERR_PARSE);
    CHECK_INT(g[1].rc, 1);
    CHECK_STR(g[1].f[0], "ok");
}

static void test_bom_blank_utf8(void)
{
    got_t g[8];
    size_t n =
        parse_text("\xef\xbb\xbf"
                   "email,name\r\n\r\nx@y.com,J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80\r\n\n",
                   NULL, g, 8);
    CHECK_INT(n, 2);
    CHECK_STR(g[0].f[0], "email"); /* the BOM is not part of the first field */
    CHECK_STR(g[1].f[1], "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK_INT(g[1].line, 3); /* the blank line still counts as a line */

    /* a BOM later in the file is data (and valid UTF-8) */
    n = parse_text("a\n\xef\xbb\xbf"
                   "b\n",
                   NULL, g, 8);
    CHECK_INT(n, 2);
    CHECK_STR(g[1].f[0], "\xef\xbb\xbf"
                         "b");

    /* blank lines as records when skipping is off */
    cs_csv_opts_t o;
    cs_csv_opts_init(&o);
    o.skip_blank_lines = 0;
    n = parse_text("a\n\nb\n", &o, g, 8);
    CHECK_INT(n, 3);
    CHECK_INT(g[1].n, 1);
    CHECK_STR(g[1].f[0], "");

    /* invalid UTF-8: overlong, surrogate, truncated, stray continuation, > U+10FFFF */
    const char *bad[] = {"\xc0\xaf", "\xed\xa0\x80",     "\xe2\x82",
                         "\x80",     "\xf4\x90\x80\x80", "\xff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "ok,1\nx%s,2\nnext,3\n", bad[i]);
        n = parse_text(text, NULL, g, 8);
        CHECK_INT(n, 3);
        CHECK_INT(g[1].rc, CS_ERR_PARSE);
        CHECK_INT(g[1].line, 2);
        CHECK_INT(g[2].rc, 1);
        CHECK_STR(g[2].f[0], "next");
        CHECK_INT(g[2].line, 3);
    }
    /* ... accepted when validation is off */
    o.skip_blank_lines = 1;
    o.validate_utf8 = 0;
    n = parse_text("x\xff,2\n", &o, g, 8);
    CHECK_INT(n, 1);
    CHECK_INT(g[0].rc, 1);
}

static void test_delimiters(void)
{
    got_t g[4];
    cs_csv_opts_t o;
    cs_csv_opts_init(&o);
    o.delimiter = ';';
    size_t n = parse_text("a;\"b;c\";d,e\n", &o, g, 4);
    CHECK_INT(n, 1);
    CHECK_INT(g[0].n, 3);
    CHECK_STR(g[0].f[1], "b;c");
    CHECK_STR(g[0].f[2], "d,e");
    o.delimiter = '\t';
    n = parse_text("a\tb\t\n", &o, g, 4);
    CHECK_INT(g[0].n, 3);
    o.delimiter = '"';
    CHECK(cs_csv_new_mem(&o, "", 0) == NULL); /* not a delimiter */
}

/* ---- malformed input: reported with its line, skipped, never fatal ---- */

static void test_malformed(void)
{
    got_t g[8];
    cs_csv_t *c;
    cs_csv_record_t r;

    /* unterminated quote at the end of the input */
    size_t n = parse_text("a,b\n1,\"open\n2,3\n", NULL, g, 8);
    CHECK_INT(n, 2);
    CHECK_INT(g[1].rc, CS_ERR_PARSE);
    CHECK_INT(g[1].line, 2);
    c = cs_csv_new_mem(NULL, "1,\"open", 7);
    REQUIRE(c);
    CHECK_INT(cs_csv_next(c, &r), CS_ERR_PARSE);
    CHECK(strstr(cs_csv_error(c), "unterminated") != NULL);
    CHECK(strstr(cs_csv_error(c), "line 1") != NULL);
    CHECK_INT(cs_csv_next(c, &r), 0);
    cs_csv_destroy(c);

    /* a character after the closing quote: the record is read to its end (its quoted
     * newline included) and skipped */
    n = parse_text("h\n\"abc\"def,\"multi\nline\"\nnext,1\n", NULL, g, 8);
    CHECK_INT(n, 3);
    CHECK_INT(g[1].rc, CS_ERR_PARSE);
    CHECK_INT(g[1].line, 2);
    CHECK_INT(g[1].line_end, 3);
    CHECK_INT(g[2].rc, 1);
    CHECK_STR(g[2].f[0], "next");
    CHECK_INT(g[2].line, 4);

    /* NUL bytes, quoted and not */
    static const char nul[] = "a,b\nx\0y,1\n\"q\0\",2\nok,3\n";
    c = cs_csv_new_mem(NULL, nul, sizeof(nul) - 1);
    REQUIRE(c);
    n = parse_all(c, g, 8);
    cs_csv_destroy(c);
    CHECK_INT(n, 4);
    CHECK_INT(g[1].rc, CS_ERR_PARSE);
    CHECK_INT(g[2].rc, CS_ERR_PARSE);
    CHECK_INT(g[3].rc, 1);
    CHECK_STR(g[3].f[0], "ok");

    /* too many fields */
    cs_csv_opts_t o;
    cs_csv_opts_init(&o);
    o.max_fields = 3;
    n = parse_text("1,2,3\n1,2,3,4\n1,2,\"3\n\",4,5\n7,8,9\n", &o, g, 8);
    CHECK_INT(n, 4);
    CHECK_INT(g[0].rc, 1);
    CHECK_INT(g[1].rc, CS_ERR_TOO_LARGE);
    CHECK_INT(g[2].rc, CS_ERR_TOO_LARGE);
    CHECK_INT(g[2].line, 3);
    CHECK_INT(g[2].line_end, 4);
    CHECK_INT(g[3].rc, 1);
    CHECK_STR(g[3].f[2], "9");
    CHECK_INT(g[3].line, 5);

    /* a record over max_record bytes, unquoted: skipped to its end */
    cs_csv_opts_init(&o);
    o.max_record = 64;
    char text[512];
    char longf[200];
    memset(longf, 'x', sizeof(longf) - 1);
    longf[sizeof(longf) - 1] = '\0';
    snprintf(text, sizeof(text), "a,b\n%s,1\nc,d\n", longf);
    n = parse_text(text, &o, g, 8);
    CHECK_INT(n, 3);
    CHECK_INT(g[1].rc, CS_ERR_TOO_LARGE);
    CHECK_INT(g[2].rc, 1);
    CHECK_STR(g[2].f[0], "c");
    /* ... inside a quote (an unterminated quote, most likely): resumed at the next line */
    snprintf(text, sizeof(text), "a,b\n1,\"open\n%s\nc,d\ne,f\n", longf);
    n = parse_text(text, &o, g, 8);
    CHECK_INT(n, 4);
    CHECK_INT(g[1].rc, CS_ERR_TOO_LARGE);
    CHECK_INT(g[1].line, 2);
    CHECK_INT(g[1].line_end, 3);
    CHECK_INT(g[2].rc, 1);
    CHECK_STR(g[2].f[0], "c");
    CHECK_INT(g[2].line, 4);
    CHECK_STR(g[3].f[1], "f");
    /* exactly at the limit is fine: 63 bytes + NUL */
    memset(longf, 'y', 63);
    longf[63] = '\0';
    snprintf(text, sizeof(text), "%s\n", longf);
    n = parse_text(text, &o, g, 8);
    CHECK_INT(n, 1);
    CHECK_INT(g[0].rc, 1);
    longf[63] = 'y';
    longf[64] = '\0';
    snprintf(text, sizeof(text), "%s\n", longf);
    n = parse_text(text, &o, g, 8);
    CHECK_INT(g[0].rc, CS_ERR_TOO_LARGE);
}

static void test_io_error(void)
{
    const char *text = "a,b\n1,2\n3,4\n";
    chunked_t s = {text, strlen(text), 0, 3, 6};
    cs_csv_t *c = cs_csv_new(NULL, chunked_read, &s);
    cs_csv_record_t r;
    REQUIRE(c);
    CHECK_INT(cs_csv_next(c, &r), 1);
    CHECK_INT(cs_csv_next(c, &r), CS_ERR_IO);
    CHECK(strstr(cs_csv_error(c), "read error") != NULL);
    CHECK_INT(cs_csv_next(c, &r), CS_ERR_IO); /* sticky */
    cs_csv_destroy(c);
}

/* The same text read whole and in pieces of every size gives the same results. */
static void test_chunking(void)
{
    const char *text = "\xef\xbb\xbf"
                       "email,name,notes\r\n"
                       "a@x.com,\"Doe, J\",\"line1\r\nline2\"\r\n"
                       "\r\n"
                       "b@x.com,\"q\"\"uote\",\r"
                       "bad\"x\"y,\"z\"w,1\n"
                       "c@x.com,\xc3\xa9,\"\"\n"
                       "d@x.com,\"unterminated";
    got_t want[16], got[16];
    size_t nw = parse_text(text, NULL, want, 16);
    CHECK_INT(nw, 6);
    CHECK_INT(want[3].rc, CS_ERR_PARSE);
    CHECK_INT(want[5].rc, CS_ERR_PARSE);
    for (size_t step = 1; step <= 20; step++) {
        for (size_t buf = 16; buf <= 40; buf += 24) {
            cs_csv_opts_t o;
            cs_csv_opts_init(&o);
            o.input_buffer = buf;
            chunked_t s = {text, strlen(text), 0, step, -1};
            cs_csv_t *c = cs_csv_new(&o, chunked_read, &s);
            REQUIRE(c);
            size_t ng = parse_all(c, got, 16);
            CHECK_INT(cs_csv_bytes(c), strlen(text));
            cs_csv_destroy(c);
            int same = ng == nw;
            for (size_t i = 0; same && i < nw; i++) {
                same = got[i].rc == want[i].rc && got[i].n == want[i].n &&
                       got[i].line == want[i].line && got[i].line_end == want[i].line_end;
                for (size_t f = 0; same && f < got[i].n; f++)
                    same = !strcmp(got[i].f[f], want[i].f[f]);
            }
            if (!same)
                fprintf(stderr, "chunking differs at step %zu buffer %zu\n", step, buf);
            CHECK(same);
        }
    }
}

/* ---- random round trip: a writer's output reads back as written ---- */

static uint64_t rng = 88172645463325252ULL;
static uint64_t xr(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_roundtrip(void)
{
    static const char alphabet[] = "ab,\"\r\n x\xc3\xa9;";
    enum { ROWS = 300 };
    static char fields[ROWS][6][24];
    static size_t nf[ROWS];
    static char text[ROWS * 6 * 60];
    size_t w = 0;
    for (int r = 0; r < ROWS; r++) {
        nf[r] = 1 + xr() % 6;
        for (size_t f = 0; f < nf[r]; f++) {
            size_t len = xr() % 12, k = 0;
            while (k < len) {
                char ch = alphabet[xr() % (sizeof(alphabet) - 1)];
                if ((unsigned char)ch == 0xc3) { /* keep the two-byte é together */
                    fields[r][f][k++] = (char)0xc3;
                    ch = (char)0xa9;
                } else if ((unsigned char)ch == 0xa9)
                    ch = 'y';
                fields[r][f][k++] = ch;
            }
            fields[r][f][k] = '\0';
            /* the writer: quote when needed (or at random), double the quotes */
            int quote =
                strpbrk(fields[r][f], ",\"\r\n") != NULL || xr() % 4 == 0 || (nf[r] == 1 && k == 0);
            if (f)
                text[w++] = ',';
            if (quote)
                text[w++] = '"';
            for (size_t i = 0; i < k; i++) {
                if (fields[r][f][i] == '"')
                    text[w++] = '"';
                text[w++] = fields[r][f][i];
            }
            if (quote)
                text[w++] = '"';
        }
        const char *eol = xr() % 2 ? "\r\n" : "\n";
        memcpy(text + w, eol, strlen(eol));
        w += strlen(eol);
    }
    cs_csv_t *c = cs_csv_new_mem(NULL, text, w);
    REQUIRE(c);
    cs_csv_record_t rec;
    int ok = 1, r = 0, rc;
    while ((rc = cs_csv_next(c, &rec)) == 1 && r < ROWS) {
        if (rec.nfields != nf[r]) {
            ok = 0;
            fprintf(stderr, "roundtrip row %d: %zu fields, wrote %zu\n", r, rec.nfields, nf[r]);
            break;
        }
        for (size_t f = 0; f < nf[r]; f++)
            if (strcmp(rec.fields[f], fields[r][f]) || rec.lens[f] != strlen(fields[r][f])) {
                ok = 0;
                fprintf(stderr, "roundtrip row %d field %zu differs\n", r, f);
            }
        r++;
    }
    CHECK(ok);
    CHECK_INT(r, ROWS);
    CHECK_INT(rc, 0); /* and then the end */
    cs_csv_destroy(c);
}

/* ---- garbage: always terminates, always consumes everything, never crashes ---- */

static void test_garbage(void)
{
    static const char pool[] = "a,\"\r\n\0\xef\xbb\xbf\xff\xc3";
    char buf[600];
    int ok = 1;
    for (int it = 0; it < 2000; it++) {
        size_t len = xr() % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = pool[xr() % (sizeof(pool) - 1)];
        cs_csv_opts_t o;
        cs_csv_opts_init(&o);
        o.max_record = 64 + xr() % 64;
        o.max_fields = 1 + xr() % 8;
        o.input_buffer = 16 + xr() % 32;
        o.strict_quotes = (int)(xr() % 2);
        chunked_t s = {buf, len, 0, 1 + xr() % 7, -1};
        cs_csv_t *c = cs_csv_new(&o, chunked_read, &s);
        REQUIRE(c);
        cs_csv_record_t r;
        int rc, calls = 0;
        while ((rc = cs_csv_next(c, &r)) != 0 && calls++ < 10000) {
            if (rc == 1)
                for (size_t f = 0; f < r.nfields; f++)
                    ok &= strlen(r.fields[f]) == r.lens[f];
            else
                ok &= rc == CS_ERR_PARSE || rc == CS_ERR_TOO_LARGE;
        }
        ok &= rc == 0 && cs_csv_bytes(c) == len;
        cs_csv_destroy(c);
    }
    CHECK(ok);
}

/* ---- 1M rows, constant memory ---- */

typedef struct {
    uint64_t row, rows;
    char pending[256];
    size_t plen, ppos;
} gen_t;

static ssize_t gen_read(void *opaque, void *buf, size_t n)
{
    gen_t *g = opaque;
    size_t w = 0;
    while (w < n) {
        if (g->ppos == g->plen) {
            if (g->row == g->rows)
                break;
            if (g->row == 0)
                g->plen = (size_t)snprintf(g->pending, sizeof(g->pending),
                                           "\xef\xbb\xbf"
                                           "email,first_name,company,notes\r\n");
            else
                g->plen = (size_t)snprintf(
                    g->pending, sizeof(g->pending),
                    "user%llu@example.com,Name%llu,\"Acme, Inc. \"\"%llu\"\"\",\"%s\"\r\n",
                    (unsigned long long)g->row, (unsigned long long)g->row,
                    (unsigned long long)g->row, g->row % 10 ? "short" : "two\nlines");
            g->ppos = 0;
            g->row++;
        }
        size_t k = g->plen - g->ppos;
        if (k > n - w)
            k = n - w;
        memcpy((char *)buf + w, g->pending + g->ppos, k);
        g->ppos += k;
        w += k;
    }
    return (ssize_t)w;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_million(void)
{
    enum { ROWS = 1000000 };
    gen_t g = {0, ROWS + 1, {0}, 0, 0};
    cs_csv_t *c = cs_csv_new(NULL, gen_read, &g);
    REQUIRE(c);
    cs_csv_record_t r;
    uint64_t rows = 0, bad = 0, last_line = 0;
    size_t mem = cs_csv_memory(c);
    long rss0 = maxrss_kb();
    struct mallinfo2 m0 = mallinfo2();
    int rc;
    char expect[64];
    while ((rc = cs_csv_next(c, &r)) != 0) {
        if (rc != 1) {
            bad++;
            continue;
        }
        if (rows > 0 && rows % 99991 == 0) { /* spot checks */
            snprintf(expect, sizeof(expect), "Acme, Inc. \"%llu\"", (unsigned long long)rows);
            CHECK_STR(r.fields[2], expect);
            snprintf(expect, sizeof(expect), "user%llu@example.com", (unsigned long long)rows);
            CHECK_STR(r.fields[0], expect);
        }
        last_line = r.line_end;
        rows++;
    }
    struct mallinfo2 m1 = mallinfo2();
    long rss1 = maxrss_kb();
    CHECK_INT(rows, ROWS + 1); /* header + 1M */
    CHECK_INT(bad, 0);
    /* 1 header line + 1M rows, one in ten spanning two lines */
    CHECK_INT(last_line, 1 + ROWS + ROWS / 10);
    /* no allocation at all while reading: heap in use unchanged, RSS bounded */
    CHECK_INT((long long)m1.uordblks - (long long)m0.uordblks, 0);
    CHECK(rss1 - rss0 < 4096);
    CHECK_INT(cs_csv_memory(c), mem);
    CHECK(mem < 2 * 1024 * 1024);
    printf("1M rows: %llu bytes read, reader memory %zu bytes, max RSS grew %ld KiB\n",
           (unsigned long long)cs_csv_bytes(c), mem, rss1 - rss0);
    cs_csv_destroy(c);
}

int main(void)
{
    test_basic();
    test_quoted();
    test_bom_blank_utf8();
    test_delimiters();
    test_malformed();
    test_io_error();
    test_chunking();
    test_roundtrip();
    test_garbage();
    test_million();
    return cs_test_report();
}
