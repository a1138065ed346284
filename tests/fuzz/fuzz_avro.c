/* fuzz_avro: cs_avro_decode (both framings, every current and old writer schema),
 * cs_avro_decode_body for every schema, and the schema-JSON parsers a schema registry feeds
 * (cs_avro_fingerprint_json, cs_avro_registry_add_writer).
 *
 * Input: byte 0 picks the mode, the rest is the payload.
 *   mode 0  payload is a whole record as read from Kafka: cs_avro_decode
 *   mode 1  byte 1 picks a schema, the rest is an unframed body: cs_avro_decode_body
 *   mode 2  byte 1 picks a known writer schema (old versions included); the rest is a body,
 *           framed here as single-object with that fingerprint (so the fuzzer need not
 *           guess 8-byte fingerprints to reach the resolver)
 *   mode 3  same with Confluent framing and the schema's registry id
 *   mode 4  payload is schema JSON: fingerprint, and add_writer into a scratch registry
 * Invariants after a successful decode: the value is readable through every accessor, and
 * it re-encodes, decodes again and compares equal (the decoder accepts only what the
 * encoder can write back). Every frame (modes 0, 2, 3) is also decoded with
 * cs_avro_decode_flat, which must agree with cs_avro_decode (tests/unit/avro_flat_check.h). */
#include "fuzz.h"

#include "../unit/avro_flat_check.h"
#include "cs_avro.h"
#include "cs_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFLUENT_ID_BASE 1000
#define MAX_WRITERS 32

static struct {
    cs_avro_registry_t *reg;
    cs_avro_decoder_t *dec, *dec2, *flat, *flat_gen;
    cs_avro_encoder_t *enc;
    uint64_t fp[MAX_WRITERS]; /* every embedded schema, old versions included */
    size_t nfp;
    unsigned char *frame;
    size_t frame_cap;
} g;

/* At exit: avro-c keeps string buffers where LeakSanitizer does not see them reachable
 * from the decoders (reported as leaks at exit though nothing is lost), so free it all. */
static void teardown(void)
{
    cs_avro_encoder_destroy(g.enc);
    cs_avro_decoder_destroy(g.dec);
    cs_avro_decoder_destroy(g.dec2);
    cs_avro_decoder_destroy(g.flat);
    cs_avro_decoder_destroy(g.flat_gen);
    cs_avro_registry_destroy(g.reg);
    free(g.frame);
    memset(&g, 0, sizeof g);
}

static void setup(void)
{
    char err[512];
    if (g.reg)
        return;
    atexit(teardown);
    cs_fuzz_quiet();
    if (!(g.reg = cs_avro_registry_new(err, sizeof err)))
        cs_fuzz_fail("avro", "registry: %s", err);
    for (int s = 0; s < CS_AVRO_N_SCHEMAS; s++)
        if (cs_avro_registry_set_id(g.reg, s, CONFLUENT_ID_BASE + s))
            cs_fuzz_fail("avro", "set_id %d", s);
    for (size_t i = 0; i < cs_avro_embedded_count_g && g.nfp < MAX_WRITERS; i++) {
        const cs_avro_embedded_t *em = &cs_avro_embedded_g[i];
        if (cs_avro_fingerprint_json(em->json, em->len, &g.fp[g.nfp], NULL, err, sizeof err))
            cs_fuzz_fail("avro", "fingerprint of schemas/%s: %s", em->path, err);
        g.nfp++;
    }
    g.dec = cs_avro_decoder_new(g.reg);
    g.dec2 = cs_avro_decoder_new(g.reg);
    g.flat = cs_avro_decoder_new(g.reg);
    g.flat_gen = cs_avro_decoder_new(g.reg);
    g.enc = cs_avro_encoder_new(g.reg, CS_AVRO_SINGLE_OBJECT);
    if (!g.dec || !g.dec2 || !g.flat || !g.flat_gen || !g.enc)
        cs_fuzz_fail("avro", "out of memory in set-up");
}

static unsigned char *frame_buf(size_t n)
{
    if (n > g.frame_cap) {
        unsigned char *b = realloc(g.frame, n);
        if (!b)
            cs_fuzz_fail("avro", "out of memory");
        g.frame = b;
        g.frame_cap = n;
    }
    return g.frame;
}

/* Reads every leaf of a generic value the way avro-c's API allows, so a value the decoder
 * left half-built (a union without a branch, a string without its NUL) shows here. */
static void walk(avro_value_t *v, int depth)
{
    size_t n = 0, i, sz = 0;
    const char *s, *name;
    const void *p;
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    int b;
    avro_value_t child;
    if (depth > 128)
        cs_fuzz_fail("avro", "value nested deeper than any schema");
    switch (avro_value_get_type(v)) {
    case AVRO_STRING:
        if (avro_value_get_string(v, &s, &sz) || !s || sz == 0 || s[sz - 1] != '\0')
            cs_fuzz_fail("avro", "string without its NUL");
        break;
    case AVRO_BYTES:
        if (avro_value_get_bytes(v, &p, &sz))
            cs_fuzz_fail("avro", "unreadable bytes");
        break;
    case AVRO_INT32:
        avro_value_get_int(v, &i32);
        break;
    case AVRO_INT64:
        avro_value_get_long(v, &i64);
        break;
    case AVRO_FLOAT:
        avro_value_get_float(v, &f);
        break;
    case AVRO_DOUBLE:
        avro_value_get_double(v, &d);
        break;
    case AVRO_BOOLEAN:
        avro_value_get_boolean(v, &b);
        break;
    case AVRO_ENUM:
        if (avro_value_get_enum(v, &b) || b < 0 ||
            !avro_schema_enum_get(avro_value_get_schema(v), b))
            cs_fuzz_fail("avro", "enum index %d outside its symbols", b);
        break;
    case AVRO_RECORD:
    case AVRO_ARRAY:
    case AVRO_MAP:
        avro_value_get_size(v, &n);
        for (i = 0; i < n; i++) {
            name = NULL;
            if (avro_value_get_by_index(v, i, &child, &name))
                cs_fuzz_fail("avro", "child %zu of %zu unreadable", i, n);
            walk(&child, depth + 1);
        }
        break;
    case AVRO_UNION:
        if (avro_value_get_discriminant(v, &b) || b < 0 || avro_value_get_current_branch(v, &child))
            cs_fuzz_fail("avro", "union without a branch");
        walk(&child, depth + 1);
        break;
    default:
        break;
    }
}

/* The cs_avro accessors over every field of a record (none may fail or crash whatever the
 * field's type). */
static void accessors(avro_value_t *rec)
{
    size_t nf = 0, len, k;
    avro_value_get_size(rec, &nf);
    for (int i = 0; i < (int)nf + 1; i++) { /* one past the end: must be refused cleanly */
        int64_t l;
        int32_t n32;
        bool bv;
        avro_value_t item;
        const char *key, *val;
        (void)cs_avro_is_null(rec, i);
        (void)cs_avro_get_str(rec, i, &len);
        (void)cs_avro_get_bytes(rec, i, &len);
        (void)cs_avro_get_long(rec, i, &l);
        (void)cs_avro_get_int(rec, i, &n32);
        (void)cs_avro_get_bool(rec, i, &bv);
        (void)cs_avro_get_enum(rec, i);
        (void)cs_avro_get_field(rec, i, &item);
        size_t cnt = cs_avro_count(rec, i);
        for (k = 0; k <= cnt && k < 64; k++) {
            (void)cs_avro_get_item(rec, i, k, &item, &key);
            const char *s = cs_avro_get_item_str(rec, i, k, &len);
            if (s && strlen(s) > len)
                cs_fuzz_fail("avro", "item string longer than its length");
            (void)cs_avro_get_map_entry(rec, i, k, &key, &val);
        }
        (void)cs_avro_map_find(rec, i, "Custom_Field__c", &val);
    }
}

static void check_value(int schema, avro_value_t *v)
{
    const void *out;
    size_t out_len;
    cs_avro_decoded_t d2;
    if (!v)
        cs_fuzz_fail("avro", "decode returned 0 without a value");
    if (schema < 0 || schema >= CS_AVRO_N_SCHEMAS)
        cs_fuzz_fail("avro", "decoded schema %d out of range", schema);
    walk(v, 0);
    accessors(v);
    int rc = cs_avro_encode(g.enc, v, &out, &out_len);
    if (rc)
        cs_fuzz_fail("avro", "a decoded %s does not encode: %s: %s", cs_avro_schema_name(schema),
                     cs_err_name(rc), cs_avro_encoder_error(g.enc));
    rc = cs_avro_decode(g.dec2, out, out_len, &d2);
    if (rc)
        cs_fuzz_fail("avro", "re-encoded %s does not decode: %s: %s", cs_avro_schema_name(schema),
                     cs_err_name(rc), cs_avro_decoder_error(g.dec2));
    if (d2.schema != schema || d2.resolved || !avro_value_equal(v, d2.value))
        cs_fuzz_fail("avro", "%s changed in a round trip", cs_avro_schema_name(schema));
}

static void check_error(int rc, cs_avro_decoder_t *dec)
{
    if (rc != CS_ERR_TRUNCATED && rc != CS_ERR_AVRO && rc != CS_ERR_UNKNOWN_SCHEMA)
        cs_fuzz_fail("avro", "decode error %s is not a documented one", cs_err_name(rc));
    const char *e = cs_avro_decoder_error(dec);
    if (!e || !*e)
        cs_fuzz_fail("avro", "decode error %s without a detail", cs_err_name(rc));
}

static void decode_frame(const unsigned char *p, size_t n)
{
    cs_avro_decoded_t d;
    char why[700];
    if (!flat_check(g.flat_gen, g.flat, p, n, why, sizeof why))
        cs_fuzz_fail("avro", "flat decoding disagrees: %s", why);
    int rc = cs_avro_decode(g.dec, p, n, &d);
    if (rc) {
        check_error(rc, g.dec);
        return;
    }
    check_value(d.schema, d.value);
}

static void schema_json(const unsigned char *p, size_t n)
{
    char err[512];
    uint64_t fp;
    char *pcf = NULL;
    if (cs_avro_fingerprint_json((const char *)p, n, &fp, &pcf, err, sizeof err))
        return; /* not a schema: add_writer would refuse it at the same parse */
    /* The canonical form is itself a schema with the same fingerprint. */
    uint64_t fp2;
    if (!pcf || cs_avro_fingerprint_json(pcf, strlen(pcf), &fp2, NULL, err, sizeof err) ||
        fp2 != fp)
        cs_fuzz_fail("avro", "canonical form does not re-parse to the same fingerprint");
    free(pcf);
    /* A valid schema: add it as a writer to a fresh registry (add_writer is set-up only and
     * grows the registry, so one per input keeps every input reproducible alone). */
    cs_avro_registry_t *reg = cs_avro_registry_new(err, sizeof err);
    if (!reg)
        cs_fuzz_fail("avro", "registry: %s", err);
    (void)cs_avro_registry_add_writer(reg, (const char *)p, n, 7, err, sizeof err);
    cs_avro_registry_destroy(reg);
}

int cs_fuzz_avro(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    int mode = data[0] % 5;
    const unsigned char *p = data + 1;
    size_t n = size - 1;
    switch (mode) {
    case 0:
        decode_frame(p, n);
        break;
    case 1: {
        avro_value_t *v = NULL;
        if (n < 1)
            return 0;
        int schema = p[0] % CS_AVRO_N_SCHEMAS;
        int rc = cs_avro_decode_body(g.dec, schema, p + 1, n - 1, &v);
        if (rc)
            check_error(rc, g.dec);
        else
            check_value(schema, v);
        break;
    }
    case 2: {
        if (n < 1 || g.nfp == 0)
            return 0;
        uint64_t fp = g.fp[p[0] % g.nfp];
        unsigned char *f = frame_buf(n - 1 + 10);
        f[0] = 0xC3;
        f[1] = 0x01;
        for (int i = 0; i < 8; i++)
            f[2 + i] = (unsigned char)(fp >> (8 * i));
        memcpy(f + 10, p + 1, n - 1);
        decode_frame(f, n - 1 + 10);
        break;
    }
    case 3: {
        if (n < 1)
            return 0;
        uint32_t id = CONFLUENT_ID_BASE + p[0] % CS_AVRO_N_SCHEMAS;
        unsigned char *f = frame_buf(n - 1 + 5);
        f[0] = 0x00;
        f[1] = (unsigned char)(id >> 24);
        f[2] = (unsigned char)(id >> 16);
        f[3] = (unsigned char)(id >> 8);
        f[4] = (unsigned char)id;
        memcpy(f + 5, p + 1, n - 1);
        decode_frame(f, n - 1 + 5);
        break;
    }
    default:
        schema_json(p, n);
        break;
    }
    return 0;
}

CS_FUZZ_ENTRY(avro)
