/* fuzz_csv: the streaming CSV reader (cs_csv), fed in random chunk sizes.
 *
 * Input: bytes 0-1 pick the options (delimiter, strict quotes, blank lines, UTF-8
 * validation, small record/field/input-buffer limits so the overflow paths are reached);
 * byte 2 seeds the chunk sizes; the rest is the file.
 * The same file is read three ways:
 *   1. from memory (cs_csv_new_mem);
 *   2. through a read callback handing out 1..N bytes at a time (N from the seed);
 *   3. through a callback that fails with EIO part-way.
 * Invariants: 1 and 2 return exactly the same sequence of records and errors (a streaming
 * reader must not depend on where the reads split the input); every record keeps the
 * documented bounds (fields <= max_fields, NUL-terminated fields of the reported length, the
 * record within max_record, lines ordered, index counting by one, valid UTF-8 when asked);
 * every call makes progress; after an I/O error every call returns CS_ERR_IO. */
#include "fuzz.h"

#include "cs_csv.h"
#include "cs_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    uint64_t rng;
    size_t max_step;
    size_t fail_at; /* (size_t)-1: never */
} src_t;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static ssize_t chunk_read(void *opaque, void *buf, size_t n)
{
    src_t *s = opaque;
    if (s->pos >= s->fail_at) {
        errno = EIO;
        return -1;
    }
    size_t k = s->len - s->pos;
    size_t step = 1 + (size_t)(xorshift(&s->rng) % s->max_step);
    if (k > n)
        k = n;
    if (k > step)
        k = step;
    if (s->fail_at != (size_t)-1 && s->pos + k > s->fail_at)
        k = s->fail_at - s->pos;
    memcpy(buf, s->p + s->pos, k);
    s->pos += k;
    return (ssize_t)k;
}

static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf)
            k = 1;
        else if (b >= 0xe0 && b <= 0xef) {
            k = 2;
            lo = b == 0xe0 ? 0xa0 : 0x80;
            hi = b == 0xed ? 0x9f : 0xbf;
        } else if (b >= 0xf0 && b <= 0xf4) {
            k = 3;
            lo = b == 0xf0 ? 0x90 : 0x80;
            hi = b == 0xf4 ? 0x8f : 0xbf;
        } else
            return 0;
        if (n - i <= k)
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

/* FNV-1a over everything a caller can observe of one cs_csv_next() outcome. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

typedef struct {
    uint64_t hash;
    size_t calls, records, errors;
    int io_failed;
} run_t;

static void read_all(cs_csv_t *c, const cs_csv_opts_t *o, size_t input_len, run_t *out)
{
    cs_csv_record_t r;
    uint64_t last_index = 0;
    memset(out, 0, sizeof(*out));
    out->hash = 0xcbf29ce484222325ull;
    for (;;) {
        memset(&r, 0xA5, sizeof r);
        int rc = cs_csv_next(c, &r);
        if (++out->calls > 2 * input_len + 16)
            cs_fuzz_fail("csv", "no progress: %zu calls for %zu bytes", out->calls, input_len);
        out->hash = mix(out->hash, &rc, sizeof rc);
        if (rc == 0)
            break;
        if (rc == CS_ERR_IO) {
            out->io_failed = 1;
            for (int i = 0; i < 3; i++)
                if (cs_csv_next(c, &r) != CS_ERR_IO)
                    cs_fuzz_fail("csv", "a failed reader recovered");
            break;
        }
        if (rc != 1 && rc != CS_ERR_PARSE && rc != CS_ERR_TOO_LARGE)
            cs_fuzz_fail("csv", "undocumented return %d", rc);
        if (r.index != last_index + 1)
            cs_fuzz_fail("csv", "index %llu after %llu", (unsigned long long)r.index,
                         (unsigned long long)last_index);
        last_index = r.index;
        if (r.line < 1 || r.line_end < r.line)
            cs_fuzz_fail("csv", "lines %llu..%llu", (unsigned long long)r.line,
                         (unsigned long long)r.line_end);
        out->hash = mix(out->hash, &r.line, sizeof r.line);
        out->hash = mix(out->hash, &r.line_end, sizeof r.line_end);
        if (rc != 1) {
            const char *e = cs_csv_error(c);
            if (!e || !*e)
                cs_fuzz_fail("csv", "error %d without a message", rc);
            out->hash = mix(out->hash, e, strlen(e));
            out->errors++;
            continue;
        }
        out->records++;
        if (r.nfields < 1 || r.nfields > o->max_fields)
            cs_fuzz_fail("csv", "%zu fields (max %zu)", r.nfields, o->max_fields);
        size_t total = 0;
        out->hash = mix(out->hash, &r.nfields, sizeof r.nfields);
        for (size_t i = 0; i < r.nfields; i++) {
            const char *f = r.fields[i];
            if (!f || strlen(f) != r.lens[i])
                cs_fuzz_fail("csv", "field %zu: length %zu but strlen %zu", i, r.lens[i],
                             f ? strlen(f) : 0);
            if (r.quoted[i] > 1)
                cs_fuzz_fail("csv", "quoted flag %u", r.quoted[i]);
            if (o->validate_utf8 && !utf8_ok((const unsigned char *)f, r.lens[i]))
                cs_fuzz_fail("csv", "field %zu is not UTF-8 though validate_utf8 is set", i);
            total += r.lens[i] + 1;
            out->hash = mix(out->hash, f, r.lens[i] + 1);
            out->hash = mix(out->hash, &r.quoted[i], sizeof r.quoted[i]);
        }
        if (total > o->max_record)
            cs_fuzz_fail("csv", "record of %zu bytes over max_record %zu", total, o->max_record);
    }
    if (!out->io_failed && cs_csv_bytes(c) != input_len)
        cs_fuzz_fail("csv", "consumed %llu of %zu bytes", (unsigned long long)cs_csv_bytes(c),
                     input_len);
    /* At the end it stays at the end. */
    if (!out->io_failed && cs_csv_next(c, &r) != 0)
        cs_fuzz_fail("csv", "a record after the end of input");
}

int cs_fuzz_csv(const uint8_t *data, size_t size)
{
    static const char delims[] = {',', ';', '\t', '|'};
    cs_csv_opts_t o;
    run_t mem, chunked, failing;
    cs_fuzz_quiet();
    if (size < 3)
        return 0;
    cs_csv_opts_init(&o);
    /* Inputs are at most a few KiB: 64 KiB records behave as the default 1 MiB (never
     * reached) at a fraction of the allocation cost per run. */
    o.max_record = 64 * 1024;
    o.input_buffer = 4096;
    o.delimiter = delims[data[0] & 3];
    o.strict_quotes = (data[0] >> 2) & 1;
    o.skip_blank_lines = (data[0] >> 3) & 1;
    o.validate_utf8 = (data[0] >> 4) & 1;
    if (data[0] & 0x20) { /* small limits: the overflow paths */
        o.max_record = 64 + (data[1] & 0x0f) * 16;
        o.max_fields = 1 + ((data[1] >> 4) & 7);
        o.input_buffer = 16 + (data[1] >> 7) * 16;
    }
    const uint8_t *p = data + 3;
    size_t n = size - 3;

    cs_csv_t *c = cs_csv_new_mem(&o, p, n);
    if (!c)
        cs_fuzz_fail("csv", "cs_csv_new_mem refused valid options");
    read_all(c, &o, n, &mem);
    cs_csv_destroy(c);

    src_t s = {p, n, 0, 0x1234567ull + data[2], 1 + (size_t)(data[2] % 97), (size_t)-1};
    if (!(c = cs_csv_new(&o, chunk_read, &s)))
        cs_fuzz_fail("csv", "cs_csv_new refused valid options");
    read_all(c, &o, n, &chunked);
    cs_csv_destroy(c);
    if (mem.hash != chunked.hash || mem.records != chunked.records || mem.errors != chunked.errors)
        cs_fuzz_fail("csv",
                     "chunked reads (max %zu bytes) differ from one read: %zu/%zu records, "
                     "%zu/%zu errors",
                     s.max_step, chunked.records, mem.records, chunked.errors, mem.errors);

    if (n > 0) {
        src_t f = {p, n, 0, 0x42ull + data[2], 1 + (size_t)(data[2] % 13), (size_t)data[2] % n};
        if (!(c = cs_csv_new(&o, chunk_read, &f)))
            cs_fuzz_fail("csv", "cs_csv_new refused valid options");
        read_all(c, &o, n, &failing);
        if (!failing.io_failed)
            cs_fuzz_fail("csv", "the read error at byte %zu was not reported", f.fail_at);
        cs_csv_destroy(c);
    }
    return 0;
}

CS_FUZZ_ENTRY(csv)
