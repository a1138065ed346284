/* cs_csv: streaming RFC 4180 reader (see cs_csv.h).
 *
 * One state machine per byte: FIELD_START -> UNQUOTED | QUOTED -> QUOTE_SEEN -> ... Every
 * buffer is allocated once in cs_csv_new(); cs_csv_next() never allocates. Unescaped field
 * bytes go into the record buffer one after another, each followed by a NUL, so a field is a
 * C string without copying. */
#include "cs_csv.h"
#include "cs_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_RECORD (1024 * 1024)
#define DEFAULT_MAX_FIELDS 1024
#define DEFAULT_INPUT (64 * 1024)

enum { ST_FIELD_START, ST_UNQUOTED, ST_QUOTED, ST_QUOTE_SEEN };

struct cs_csv_s {
    cs_csv_opts_t o;
    cs_csv_read_cb_t rd;
    void *opaque;
    /* built-in sources */
    int fd;
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    /* input */
    unsigned char *in;
    size_t in_len, in_pos;
    int eof, io_failed, bom_checked;
    /* the record being built */
    char *rec;
    size_t rec_len, field_start;
    size_t *lens;
    unsigned *quoted;
    const char **ptrs;
    size_t nf;
    int discard;   /* an error is pending: read the record to its end, keep nothing */
    int err_code;  /* pending error */
    uint64_t line; /* current physical line, 1-based */
    uint64_t bytes, index;
    size_t memory;
    char err[256];
};

void cs_csv_opts_init(cs_csv_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->delimiter = ',';
    o->max_record = DEFAULT_MAX_RECORD;
    o->max_fields = DEFAULT_MAX_FIELDS;
    o->input_buffer = DEFAULT_INPUT;
    o->skip_blank_lines = 1;
    o->validate_utf8 = 1;
}

static ssize_t read_fd(void *opaque, void *buf, size_t n)
{
    cs_csv_t *c = opaque;
    for (;;) {
        ssize_t r = read(c->fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

static ssize_t read_mem(void *opaque, void *buf, size_t n)
{
    cs_csv_t *c = opaque;
    size_t left = c->mem_len - c->mem_pos;
    if (n > left)
        n = left;
    memcpy(buf, c->mem + c->mem_pos, n);
    c->mem_pos += n;
    return (ssize_t)n;
}

cs_csv_t *cs_csv_new(const cs_csv_opts_t *opts, cs_csv_read_cb_t read_cb, void *opaque)
{
    cs_csv_opts_t o;
    cs_csv_t *c;
    if (opts)
        o = *opts;
    else
        cs_csv_opts_init(&o);
    if (!o.delimiter)
        o.delimiter = ',';
    if (!o.max_record)
        o.max_record = DEFAULT_MAX_RECORD;
    if (!o.max_fields)
        o.max_fields = DEFAULT_MAX_FIELDS;
    if (!o.input_buffer)
        o.input_buffer = DEFAULT_INPUT;
    if (!read_cb || o.max_record < 64 || o.input_buffer < 16 || o.delimiter == '"' ||
        o.delimiter == '\r' || o.delimiter == '\n')
        return NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    c->o = o;
    c->rd = read_cb;
    c->opaque = opaque;
    c->fd = -1;
    c->line = 1;
    c->in = malloc(o.input_buffer);
    c->rec = malloc(o.max_record);
    c->lens = malloc(o.max_fields * sizeof(*c->lens));
    c->quoted = malloc(o.max_fields * sizeof(*c->quoted));
    c->ptrs = malloc(o.max_fields * sizeof(*c->ptrs));
    if (!c->in || !c->rec || !c->lens || !c->quoted || !c->ptrs) {
        cs_csv_destroy(c);
        return NULL;
    }
    c->memory = sizeof(*c) + o.input_buffer + o.max_record +
                o.max_fields * (sizeof(*c->lens) + sizeof(*c->quoted) + sizeof(*c->ptrs));
    return c;
}

cs_csv_t *cs_csv_new_fd(const cs_csv_opts_t *opts, int fd)
{
    cs_csv_t *c = cs_csv_new(opts, read_fd, NULL);
    if (c) {
        c->opaque = c;
        c->fd = fd;
    }
    return c;
}

cs_csv_t *cs_csv_new_mem(const cs_csv_opts_t *opts, const void *data, size_t len)
{
    cs_csv_t *c = cs_csv_new(opts, read_mem, NULL);
    if (c) {
        c->opaque = c;
        c->mem = data;
        c->mem_len = data ? len : 0;
    }
    return c;
}

void cs_csv_destroy(cs_csv_t *c)
{
    if (!c)
        return;
    free(c->in);
    free(c->rec);
    free(c->lens);
    free(c->quoted);
    free(c->ptrs);
    free(c);
}

const char *cs_csv_error(const cs_csv_t *c)
{
    return c ? c->err : "";
}

uint64_t cs_csv_bytes(const cs_csv_t *c)
{
    return c ? c->bytes : 0;
}

size_t cs_csv_memory(const cs_csv_t *c)
{
    return c ? c->memory : 0;
}

/* ---- input ---- */

static int fill(cs_csv_t *c)
{
    if (c->eof || c->io_failed)
        return 0;
    ssize_t n = c->rd(c->opaque, c->in, c->o.input_buffer);
    if (n < 0) {
        c->io_failed = 1;
        snprintf(c->err, sizeof(c->err), "read error: %s", strerror(errno));
        return 0;
    }
    if (n == 0) {
        c->eof = 1;
        return 0;
    }
    c->in_len = (size_t)n > c->o.input_buffer ? c->o.input_buffer : (size_t)n;
    c->in_pos = 0;
    return 1;
}

static inline int next_byte(cs_csv_t *c)
{
    if (c->in_pos == c->in_len && !fill(c))
        return -1;
    c->bytes++;
    return c->in[c->in_pos++];
}

static inline int peek_byte(cs_csv_t *c)
{
    if (c->in_pos == c->in_len && !fill(c))
        return -1;
    return c->in[c->in_pos];
}

/* ---- record building ---- */

static void fail(cs_csv_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error of the record and switches to discarding. */
static void fail(cs_csv_t *c, int code, const char *fmt, ...)
{
    if (c->discard)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->err_code = code;
    c->discard = 1;
}

/* Returns 0, or -1 when the record outgrew max_record (the error is set). */
static inline int append(cs_csv_t *c, int ch)
{
    if (c->discard)
        return 0;
    if (c->rec_len + 2 > c->o.max_record) { /* the byte and this field's NUL */
        fail(c, CS_ERR_TOO_LARGE, "record longer than %zu bytes", c->o.max_record);
        return -1;
    }
    c->rec[c->rec_len++] = (char)ch;
    return 0;
}

static void end_field(cs_csv_t *c, unsigned quoted)
{
    if (c->discard)
        return;
    if (c->nf == c->o.max_fields) {
        fail(c, CS_ERR_TOO_LARGE, "more than %zu fields", c->o.max_fields);
        return;
    }
    if (c->rec_len + 1 > c->o.max_record) {
        fail(c, CS_ERR_TOO_LARGE, "record longer than %zu bytes", c->o.max_record);
        return;
    }
    c->lens[c->nf] = c->rec_len - c->field_start;
    c->quoted[c->nf] = quoted;
    c->rec[c->rec_len++] = '\0';
    c->nf++;
    c->field_start = c->rec_len;
}

/* Consumes input up to and including the next physical line break (quotes ignored).
 * Returns 1 when a line break was consumed, 0 at the end of the input. */
static int skip_line(cs_csv_t *c)
{
    for (;;) {
        int ch = next_byte(c);
        if (ch < 0)
            return 0;
        if (ch == '\n') {
            c->line++;
            return 1;
        }
        if (ch == '\r') {
            if (peek_byte(c) == '\n')
                next_byte(c);
            c->line++;
            return 1;
        }
    }
}

/* 1 when s[0..n) is valid UTF-8: no overlong forms, surrogates or code points above
 * U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf)
            k = 1;
        else if (b >= 0xe0 && b <= 0xef) {
            k = 2;
            if (b == 0xe0)
                lo = 0xa0;
            else if (b == 0xed)
                hi = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            k = 3;
            if (b == 0xf0)
                lo = 0x90;
            else if (b == 0xf4)
                hi = 0x8f;
        } else
            return 0;
        if (n - i <= k) /* the sequence is cut off */
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf)
                return 0;
        i += k + 1;
    }
    return 1;
}

static void finish(cs_csv_t *c, cs_csv_record_t *rec, uint64_t start_line, uint64_t end_line)
{
    rec->line = start_line;
    rec->line_end = end_line;
    rec->index = ++c->index;
    if (c->discard) {
        rec->nfields = 0;
        return;
    }
    size_t off = 0;
    for (size_t i = 0; i < c->nf; i++) {
        c->ptrs[i] = c->rec + off;
        off += c->lens[i] + 1;
    }
    rec->nfields = c->nf;
    rec->fields = c->ptrs;
    rec->lens = c->lens;
    rec->quoted = c->quoted;
    if (c->o.validate_utf8)
        for (size_t i = 0; i < c->nf; i++)
            if (!utf8_valid((const unsigned char *)c->ptrs[i], c->lens[i])) {
                fail(c, CS_ERR_PARSE, "field %zu is not valid UTF-8", i + 1);
                rec->nfields = 0;
                return;
            }
}

int cs_csv_next(cs_csv_t *c, cs_csv_record_t *rec)
{
    if (!c || !rec)
        return CS_ERR_INVAL;
    if (c->io_failed)
        return CS_ERR_IO;
    c->err[0] = '\0';
    if (!c->bom_checked) {
        /* The first bytes, however the callback splits them: skip a UTF-8 BOM. */
        c->bom_checked = 1;
        while (c->in_len < 3 && !c->eof && !c->io_failed) {
            ssize_t n = c->rd(c->opaque, c->in + c->in_len, c->o.input_buffer - c->in_len);
            if (n < 0) {
                c->io_failed = 1;
                snprintf(c->err, sizeof(c->err), "read error: %s", strerror(errno));
            } else if (n == 0) {
                c->eof = 1;
            } else {
                c->in_len += (size_t)n;
            }
        }
        if (c->io_failed)
            return CS_ERR_IO;
        if (c->in_len >= 3 && !memcmp(c->in, "\xef\xbb\xbf", 3)) {
            c->in_pos = 3;
            c->bytes = 3;
        }
    }

    for (;;) { /* one record per iteration; blank lines loop */
        int state = ST_FIELD_START, any = 0;
        unsigned q = 0;
        uint64_t start_line = c->line, quote_line = 0;
        c->rec_len = c->field_start = 0;
        c->nf = 0;
        c->discard = 0;
        c->err_code = 0;

        for (;;) {
            int ch = next_byte(c);
            if (ch < 0) {
                if (c->io_failed)
                    return CS_ERR_IO;
                if (!any)
                    return 0;
                if (state == ST_QUOTED)
                    fail(c, CS_ERR_PARSE,
                         "unterminated quoted field (the quote opened on line %llu)",
                         (unsigned long long)quote_line);
                end_field(c, q);
                finish(c, rec, start_line, c->line);
                return c->discard ? c->err_code : 1;
            }
            any = 1;
            if (ch == 0) {
                fail(c, CS_ERR_PARSE, "NUL byte on line %llu", (unsigned long long)c->line);
                if (state == ST_QUOTE_SEEN)
                    state = ST_UNQUOTED;
                continue;
            }
            switch (state) {
            case ST_FIELD_START:
                q = 0;
                if (ch == '"') {
                    state = ST_QUOTED;
                    q = 1;
                    quote_line = c->line;
                    continue;
                }
                /* FALLTHROUGH */
            case ST_UNQUOTED:
                if (ch == c->o.delimiter) {
                    end_field(c, q);
                    state = ST_FIELD_START;
                } else if (ch == '\n' || ch == '\r') {
                    uint64_t end_line = c->line;
                    if (ch == '\r' && peek_byte(c) == '\n')
                        next_byte(c);
                    c->line++;
                    if (state == ST_FIELD_START && c->nf == 0 && c->o.skip_blank_lines &&
                        !c->discard)
                        goto blank;
                    end_field(c, q);
                    finish(c, rec, start_line, end_line);
                    return c->discard ? c->err_code : 1;
                } else {
                    if (ch == '"' && c->o.strict_quotes)
                        fail(c, CS_ERR_PARSE, "quote inside an unquoted field on line %llu",
                             (unsigned long long)c->line);
                    append(c, ch);
                    state = ST_UNQUOTED;
                }
                break;
            case ST_QUOTED:
                if (ch == '"') {
                    state = ST_QUOTE_SEEN;
                    break;
                }
                if (ch == '\n' || (ch == '\r' && peek_byte(c) != '\n'))
                    c->line++;
                if (append(c, ch) < 0) {
                    /* Most likely an unterminated quote: resume at the next line break
                     * rather than read on to the next quote character. */
                    int nl = skip_line(c);
                    if (c->io_failed)
                        return CS_ERR_IO;
                    finish(c, rec, start_line, nl ? c->line - 1 : c->line);
                    return c->err_code;
                }
                break;
            case ST_QUOTE_SEEN:
                if (ch == '"') {
                    append(c, '"');
                    state = ST_QUOTED;
                } else if (ch == c->o.delimiter) {
                    end_field(c, q);
                    state = ST_FIELD_START;
                } else if (ch == '\n' || ch == '\r') {
                    uint64_t end_line = c->line;
                    if (ch == '\r' && peek_byte(c) == '\n')
                        next_byte(c);
                    c->line++;
                    end_field(c, q);
                    finish(c, rec, start_line, end_line);
                    return c->discard ? c->err_code : 1;
                } else {
                    fail(c, CS_ERR_PARSE, "unexpected character after a closing quote on line %llu",
                         (unsigned long long)c->line);
                    state = ST_UNQUOTED; /* read the rest of the record, quotes still counting */
                }
                break;
            }
        }
    blank:;
    }
}
