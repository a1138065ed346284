/* avro_flat_check: does cs_avro_decode_flat() read a frame as cs_avro_decode() does?
 *
 * Header-only, shared by tests/unit/test_avro_flat.c and the fuzz harness
 * tests/fuzz/fuzz_avro.c. flat_check() decodes one frame both ways (on two decoders, so that
 * neither result disturbs the other) and compares: the return code and the error text; on
 * success the metadata (schema, framing, fingerprint, id, resolved) and every top-level field
 * through every accessor: null, string, bytes, long, int, boolean, enum, the element count,
 * each array item, and each map entry (both ways round, plus a key that is absent). */
#ifndef AVRO_FLAT_CHECK_H
#define AVRO_FLAT_CHECK_H

#include "cs_avro.h"
#include "cs_err.h"

#include <stdio.h>
#include <string.h>

/* A string seen through a nullable union, with its length (NULL when null / not a string). */
static const char *afc_gen_str(const avro_value_t *v, size_t *len)
{
    avro_value_t b;
    const char *s = NULL;
    size_t size = 0;
    if (avro_value_get_type(v) == AVRO_UNION) {
        if (avro_value_get_current_branch(v, &b))
            return NULL;
        v = &b;
    }
    if (avro_value_get_type(v) != AVRO_STRING || avro_value_get_string(v, &s, &size))
        return NULL;
    *len = size ? size - 1 : 0;
    return s ? s : "";
}

static bool afc_same(const void *a, size_t alen, const void *b, size_t blen)
{
    if (!a || !b)
        return !a && !b;
    return alen == blen && !memcmp(a, b, alen);
}

#define AFC_FAIL(...)                                                                              \
    do {                                                                                           \
        snprintf(why, why_size, __VA_ARGS__);                                                      \
        return false;                                                                              \
    } while (0)

/* Field i (also out of range) read both ways. */
static bool afc_field(const avro_value_t *g, const cs_avro_flat_t *f, int i, char *why,
                      size_t why_size)
{
    size_t gl = 0, fl = 0;
    const void *gp, *fp;
    int64_t g64 = 0, f64 = 0;
    int32_t g32 = 0, f32 = 0;
    bool gb = false, fb = false, gok, fok;

    if (cs_avro_is_null(g, i) != cs_avro_flat_is_null(f, i))
        AFC_FAIL("field %d: null %d vs flat %d", i, cs_avro_is_null(g, i),
                 cs_avro_flat_is_null(f, i));
    gp = cs_avro_get_str(g, i, &gl);
    fp = cs_avro_flat_str(f, i, &fl);
    if (!afc_same(gp, gl, fp, fl))
        AFC_FAIL("field %d: string \"%.*s\" (%zu) vs flat \"%.*s\" (%zu)", i, gp ? (int)gl : 6,
                 gp ? (const char *)gp : "(null)", gl, fp ? (int)fl : 6,
                 fp ? (const char *)fp : "(null)", fl);
    gp = cs_avro_get_bytes(g, i, &gl);
    fp = cs_avro_flat_bytes(f, i, &fl);
    if (!afc_same(gp, gl, fp, fl))
        AFC_FAIL("field %d: bytes differ", i);
    gok = cs_avro_get_long(g, i, &g64);
    fok = cs_avro_flat_long(f, i, &f64);
    if (gok != fok || (gok && g64 != f64))
        AFC_FAIL("field %d: long %d/%lld vs flat %d/%lld", i, gok, (long long)g64, fok,
                 (long long)f64);
    gok = cs_avro_get_int(g, i, &g32);
    fok = cs_avro_flat_int(f, i, &f32);
    if (gok != fok || (gok && g32 != f32))
        AFC_FAIL("field %d: int %d/%d vs flat %d/%d", i, gok, g32, fok, f32);
    gok = cs_avro_get_bool(g, i, &gb);
    fok = cs_avro_flat_bool(f, i, &fb);
    if (gok != fok || (gok && gb != fb))
        AFC_FAIL("field %d: boolean %d/%d vs flat %d/%d", i, gok, gb, fok, fb);
    if (cs_avro_get_enum(g, i) != cs_avro_flat_enum(f, i))
        AFC_FAIL("field %d: enum %d vs flat %d", i, cs_avro_get_enum(g, i),
                 cs_avro_flat_enum(f, i));

    /* Arrays and maps. A generic map holds each key once; the flat one as encoded. */
    avro_value_t fv, item;
    bool is_map = !cs_avro_get_field(g, i, &fv) && avro_value_get_type(&fv) == AVRO_MAP;
    size_t gn = cs_avro_count(g, i), fn = cs_avro_flat_count(f, i);
    if (is_map ? (gn == 0) != (fn == 0) || fn < gn : gn != fn)
        AFC_FAIL("field %d: %zu elements vs flat %zu", i, gn, fn);
    cs_avro_iter_t it;
    const char *key, *val, *gkey;
    size_t klen, vlen, k = 0;
    cs_avro_iter_init(f, i, &it);
    while (cs_avro_iter_next(&it, &key, &klen, &val, &vlen)) {
        if (!is_map) {
            if (cs_avro_get_item(g, i, k, &item, NULL))
                AFC_FAIL("field %d: flat item %zu beyond the generic array", i, k);
            gp = afc_gen_str(&item, &gl);
            if (!afc_same(gp, gl, val, vlen) || key)
                AFC_FAIL("field %d: item %zu differs", i, k);
        } else {
            char kbuf[512];
            const char *gv = NULL;
            if (!key || klen >= sizeof kbuf)
                AFC_FAIL("field %d: map entry %zu without a usable key", i, k);
            memcpy(kbuf, key, klen);
            kbuf[klen] = '\0';
            if (!cs_avro_map_find(g, i, kbuf, &gv))
                AFC_FAIL("field %d: flat key \"%s\" not in the generic map", i, kbuf);
        }
        k++;
    }
    if (k != fn)
        AFC_FAIL("field %d: iterated %zu of %zu elements", i, k, fn);
    for (k = 0; is_map && !cs_avro_get_item(g, i, k, &item, &gkey); k++) {
        const char *fvp = NULL;
        size_t fvl = 0;
        gp = afc_gen_str(&item, &gl);
        if (!cs_avro_flat_map_find(f, i, gkey, &fvp, &fvl) || !afc_same(gp, gl, fvp, fvl))
            AFC_FAIL("field %d: map key \"%s\" differs", i, gkey);
    }
    if (cs_avro_flat_map_find(f, i, "No_Such_Key__c", &val, &vlen) !=
        cs_avro_map_find(g, i, "No_Such_Key__c", &gkey))
        AFC_FAIL("field %d: absent key found", i);
    return true;
}

/* True when both decoders agree on buf; else false with the first difference in why. */
static bool flat_check(cs_avro_decoder_t *gdec, cs_avro_decoder_t *fdec, const void *buf,
                       size_t len, char *why, size_t why_size)
{
    cs_avro_decoded_t g;
    cs_avro_flat_t f;
    int grc = cs_avro_decode(gdec, buf, len, &g);
    int frc = cs_avro_decode_flat(fdec, buf, len, &f);
    if (grc != frc)
        AFC_FAIL("decode returns %s (%s), flat %s (%s)", cs_err_name(grc),
                 cs_avro_decoder_error(gdec), cs_err_name(frc), cs_avro_decoder_error(fdec));
    if (grc) {
        if (strcmp(cs_avro_decoder_error(gdec), cs_avro_decoder_error(fdec)))
            AFC_FAIL("errors differ: \"%s\" vs flat \"%s\"", cs_avro_decoder_error(gdec),
                     cs_avro_decoder_error(fdec));
        return true;
    }
    if (g.schema != f.schema || g.framing != f.framing || g.fingerprint != f.fingerprint ||
        g.confluent_id != f.confluent_id || g.resolved != f.resolved)
        AFC_FAIL("metadata differs");
    if (!g.resolved && (f.value || f.n == 0))
        AFC_FAIL("a current-version record was not decoded flat");
    size_t nf = 0;
    avro_value_get_size(g.value, &nf);
    for (int i = -1; i <= (int)nf; i++)
        if (!afc_field(g.value, &f, i, why, why_size))
            return false;
    return true;
}

#undef AFC_FAIL

#endif
