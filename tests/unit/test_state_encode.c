/* Unit: cs_avro_encode_sync_state (the sync consumer's changelog writer) against the generic
 * avro-c path (cs_avro_set_* + cs_avro_encode) it replaced.
 *
 * Thousands of random SyncState records (seeded, so every run sees the same ones) are
 * encoded both ways, in both framings, and the frames must be byte-identical. The random
 * records cover every null / non-null combination of the optional fields, empty and
 * non-empty strings, empty and non-empty fields arrays (up to CS_FIELDS_MAX items and more),
 * keys and names whose length needs a 1-, 2- or 3-byte varint, bytes 0x00-0xff in strings,
 * longs at every varint boundary, negative, INT64_MIN and INT64_MAX, and every enum symbol.
 * The direct frame is then decoded with cs_avro_decode and every field compared with the
 * input. Also: one hand-computed frame (so that both paths cannot be wrong the same way),
 * the error cases, the start-up shape check's positive side, and no allocation once warm. */
#include "cs_avro.h"
#include "cs_err.h"
#include "cs_test.h"

#include <avro.h>

#define CONFLUENT_ID 4242
#define N_RANDOM 6000
#define MAX_FIELDS 40

static uint64_t rng_g = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    return cs_test_xorshift(&rng_g);
}

/* A long worth testing: varint and zig-zag boundaries, extremes, or anything. */
static int64_t rnd_long(void)
{
    static const int64_t special[] = {0,
                                      1,
                                      -1,
                                      63,
                                      64,
                                      -64,
                                      -65,
                                      8191,
                                      8192,
                                      -8192,
                                      -8193,
                                      INT32_MAX,
                                      INT32_MIN,
                                      (int64_t)UINT32_MAX,
                                      INT64_MAX,
                                      INT64_MIN,
                                      INT64_MAX - 1,
                                      INT64_MIN + 1,
                                      1700000000000LL,
                                      -1700000000000LL};
    switch (rnd() % 6) {
    case 0:
        return special[rnd() % (sizeof special / sizeof *special)];
    case 1: { /* around a power of two, either sign */
        int sh = (int)(rnd() % 63);
        int64_t v = ((int64_t)1 << sh) + (int64_t)(rnd() % 3) - 1;
        return rnd() % 2 ? v : -v;
    }
    case 2:
        return (int64_t)rnd(); /* full range */
    case 3:
        return (int64_t)(rnd() % 200) - 100;
    default:
        return 1700000000000LL + (int64_t)(rnd() % 100000000);
    }
}

/* String lengths whose varint takes 1, 2 or 3 bytes, boundaries included (63/64 and
 * 8191/8192 are where the zig-zag varint grows). */
static size_t rnd_len(void)
{
    static const size_t special[] = {0, 1, 63, 64, 65, 127, 128, 8191, 8192, 70000};
    switch (rnd() % 8) {
    case 0:
        return special[rnd() % (sizeof special / sizeof *special)];
    case 1:
        return (size_t)(rnd() % 300);
    default:
        return (size_t)(rnd() % 40);
    }
}

/* Random bytes, sometimes printable only, sometimes any byte including NUL. */
static void rnd_bytes(char *p, size_t n)
{
    bool any = rnd() % 4 == 0;
    for (size_t i = 0; i < n; i++)
        p[i] = any ? (char)(rnd() & 0xff) : (char)('!' + rnd() % 94);
}

typedef struct {
    cs_sync_state_rec_t r;
    cs_field_state_rec_t f[MAX_FIELDS];
    char key[70000], crm_id[300], last_result[300];
    char names[MAX_FIELDS][300], values[MAX_FIELDS][300];
    bool explicit_null; /* the reference sets nulls explicitly instead of leaving defaults */
} state_t;

static void rnd_state(state_t *s)
{
    cs_sync_state_rec_t *r = &s->r;
    memset(r, 0, sizeof *r);
    size_t kl = rnd_len();
    rnd_bytes(s->key, kl);
    r->prospect_key = s->key;
    r->prospect_key_len = kl;
    uint64_t b = rnd(); /* one bit per optional field: all combinations come up */
    r->has_prospect_id = b & 1;
    r->prospect_id = rnd_long();
    r->marketing_watermark = rnd_long();
    r->crm_watermark = rnd_long();
    r->has_updated_at = b & 2;
    r->updated_at = rnd_long();
    r->has_last_activity_at = b & 4;
    r->last_activity_at = rnd_long();
    r->has_crm_last_modified = b & 8;
    r->crm_last_modified = rnd_long();
    r->crm_object = (b & 16) ? (int)(rnd() % 2) : -1;
    if (b & 32) {
        r->crm_id_len = rnd() % 3 ? 18 : rnd() % 300;
        rnd_bytes(s->crm_id, r->crm_id_len);
        r->crm_id = s->crm_id;
    }
    r->has_assigned_user_id = b & 64;
    r->assigned_user_id = rnd_long();
    r->do_not_sync = b & 128;
    r->pending = b & 256;
    if (b & 512) {
        r->last_result_len = rnd() % 4 ? rnd() % 20 : rnd() % 300;
        rnd_bytes(s->last_result, r->last_result_len);
        r->last_result = s->last_result;
    }
    s->explicit_null = b & 1024;
    /* fields: empty a third of the time, else 1..MAX_FIELDS items */
    r->n_fields = rnd() % 3 ? 1 + rnd() % (rnd() % 4 ? 8 : MAX_FIELDS) : 0;
    for (size_t i = 0; i < r->n_fields; i++) {
        cs_field_state_rec_t *f = &s->f[i];
        f->name_len = rnd() % 5 ? 1 + rnd() % 30 : rnd() % 300;
        rnd_bytes(s->names[i], f->name_len);
        f->name = s->names[i];
        f->value = NULL;
        f->value_len = 0;
        if (rnd() % 4 == 0) {
            f->value_len = rnd() % 5 ? rnd() % 30 : rnd() % 300;
            rnd_bytes(s->values[i], f->value_len);
            f->value = s->values[i];
        }
        f->time = rnd_long();
        f->side = (int)(rnd() % 2);
        f->hash = rnd() % 3 ? (int64_t)(uint32_t)rnd() : rnd_long();
    }
    r->fields = s->f;
}

/* The generic path, as sc_write_state() wrote records before the direct writer. */
static int encode_ref(cs_avro_encoder_t *enc, const state_t *s, const void **out, size_t *len)
{
    const cs_sync_state_rec_t *r = &s->r;
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_SYNC_STATE), item;
    int rc = 0;
#define SET_OPT_LONG(has, idx, val)                                                                \
    rc |= (has) ? cs_avro_set_long(v, idx, val) : s->explicit_null ? cs_avro_set_null(v, idx) : 0
    REQUIRE(v);
    rc |= cs_avro_set_strn(v, CS_SS_PROSPECT_KEY, r->prospect_key, r->prospect_key_len);
    SET_OPT_LONG(r->has_prospect_id, CS_SS_PROSPECT_ID, r->prospect_id);
    rc |= cs_avro_set_long(v, CS_SS_MARKETING_WATERMARK, r->marketing_watermark);
    rc |= cs_avro_set_long(v, CS_SS_CRM_WATERMARK, r->crm_watermark);
    SET_OPT_LONG(r->has_updated_at, CS_SS_UPDATED_AT, r->updated_at);
    SET_OPT_LONG(r->has_last_activity_at, CS_SS_LAST_ACTIVITY_AT, r->last_activity_at);
    SET_OPT_LONG(r->has_crm_last_modified, CS_SS_CRM_LAST_MODIFIED, r->crm_last_modified);
    if (r->crm_object >= 0)
        rc |= cs_avro_set_enum(v, CS_SS_CRM_OBJECT, r->crm_object);
    else if (s->explicit_null)
        rc |= cs_avro_set_null(v, CS_SS_CRM_OBJECT);
    if (r->crm_id)
        rc |= cs_avro_set_strn(v, CS_SS_CRM_ID, r->crm_id, r->crm_id_len);
    else if (s->explicit_null)
        rc |= cs_avro_set_null(v, CS_SS_CRM_ID);
    SET_OPT_LONG(r->has_assigned_user_id, CS_SS_ASSIGNED_USER_ID, r->assigned_user_id);
    rc |= cs_avro_set_bool(v, CS_SS_DO_NOT_SYNC, r->do_not_sync);
    for (size_t i = 0; i < r->n_fields; i++) {
        const cs_field_state_rec_t *f = &r->fields[i];
        rc |= cs_avro_array_add(v, CS_SS_FIELDS, &item);
        rc |= cs_avro_set_strn(&item, CS_FS_NAME, f->name, f->name_len);
        if (f->value)
            rc |= cs_avro_set_strn(&item, CS_FS_VALUE, f->value, f->value_len);
        rc |= cs_avro_set_long(&item, CS_FS_TIME, f->time);
        rc |= cs_avro_set_enum(&item, CS_FS_SIDE, f->side);
        rc |= cs_avro_set_long(&item, CS_FS_HASH, f->hash);
    }
    if (r->last_result)
        rc |= cs_avro_set_strn(v, CS_SS_LAST_RESULT, r->last_result, r->last_result_len);
    else if (s->explicit_null)
        rc |= cs_avro_set_null(v, CS_SS_LAST_RESULT);
    rc |= cs_avro_set_bool(v, CS_SS_PENDING, r->pending);
#undef SET_OPT_LONG
    REQUIRE(rc == 0); /* the setters accept everything rnd_state makes */
    return cs_avro_encode(enc, v, out, len);
}

static int mismatches_g;

static bool same_bytes(const char *what, long n, const void *a, size_t alen, const void *b,
                       size_t blen)
{
    if (alen == blen && !memcmp(a, b, alen))
        return true;
    if (mismatches_g++ < 5) {
        size_t i = 0;
        while (i < alen && i < blen &&
               ((const unsigned char *)a)[i] == ((const unsigned char *)b)[i])
            i++;
        fprintf(stderr,
                "%s #%ld: direct %zu bytes, avro-c %zu bytes, first difference at %zu:", what, n,
                alen, blen, i);
        for (size_t k = i; k < i + 8 && k < alen; k++)
            fprintf(stderr, " %02x", ((const unsigned char *)a)[k]);
        fprintf(stderr, " vs");
        for (size_t k = i; k < i + 8 && k < blen; k++)
            fprintf(stderr, " %02x", ((const unsigned char *)b)[k]);
        fprintf(stderr, "\n");
    }
    return false;
}

static bool same_str(const char *got, size_t glen, const char *want, size_t wlen)
{
    if (!want)
        return got == NULL;
    return got && glen == wlen && !memcmp(got, want, wlen);
}

static bool same_opt_long(const avro_value_t *v, int i, bool has, int64_t want)
{
    int64_t got = 0;
    bool set = cs_avro_get_long(v, i, &got);
    return set == has && (!has || got == want) && cs_avro_is_null(v, i) == !has;
}

/* Decodes the direct frame and compares every field with the input. */
static void check_decoded(cs_avro_decoder_t *dec, const cs_avro_registry_t *reg,
                          cs_avro_framing_t framing, const cs_sync_state_rec_t *r,
                          const void *frame, size_t len)
{
    cs_avro_decoded_t d;
    int64_t l = 0;
    bool bv = false;
    size_t sl = 0;
    const char *s;
    avro_value_t item;
    int rc = cs_avro_decode(dec, frame, len, &d);
    if (rc) {
        fprintf(stderr, "decode: %s\n", cs_avro_decoder_error(dec));
        CHECK_INT(rc, 0);
        return;
    }
    const avro_value_t *v = d.value;
    bool ok = d.schema == CS_AVRO_SYNC_STATE && d.framing == framing && !d.resolved &&
              d.fingerprint == cs_avro_fingerprint(reg, CS_AVRO_SYNC_STATE) &&
              d.confluent_id == (framing == CS_AVRO_CONFLUENT ? CONFLUENT_ID : -1);
    s = cs_avro_get_str(v, CS_SS_PROSPECT_KEY, &sl);
    ok = ok && same_str(s, sl, r->prospect_key, r->prospect_key_len);
    ok = ok && same_opt_long(v, CS_SS_PROSPECT_ID, r->has_prospect_id, r->prospect_id);
    ok = ok && cs_avro_get_long(v, CS_SS_MARKETING_WATERMARK, &l) && l == r->marketing_watermark;
    ok = ok && cs_avro_get_long(v, CS_SS_CRM_WATERMARK, &l) && l == r->crm_watermark;
    ok = ok && same_opt_long(v, CS_SS_UPDATED_AT, r->has_updated_at, r->updated_at);
    ok = ok &&
         same_opt_long(v, CS_SS_LAST_ACTIVITY_AT, r->has_last_activity_at, r->last_activity_at);
    ok = ok &&
         same_opt_long(v, CS_SS_CRM_LAST_MODIFIED, r->has_crm_last_modified, r->crm_last_modified);
    ok = ok && cs_avro_get_enum(v, CS_SS_CRM_OBJECT) == r->crm_object;
    s = cs_avro_get_str(v, CS_SS_CRM_ID, &sl);
    ok = ok && same_str(s, sl, r->crm_id, r->crm_id_len);
    ok = ok &&
         same_opt_long(v, CS_SS_ASSIGNED_USER_ID, r->has_assigned_user_id, r->assigned_user_id);
    ok = ok && cs_avro_get_bool(v, CS_SS_DO_NOT_SYNC, &bv) && bv == r->do_not_sync;
    ok = ok && cs_avro_count(v, CS_SS_FIELDS) == r->n_fields;
    for (size_t i = 0; ok && i < r->n_fields; i++) {
        const cs_field_state_rec_t *f = &r->fields[i];
        ok = !cs_avro_get_item(v, CS_SS_FIELDS, i, &item, NULL);
        s = cs_avro_get_str(&item, CS_FS_NAME, &sl);
        ok = ok && same_str(s, sl, f->name, f->name_len);
        s = cs_avro_get_str(&item, CS_FS_VALUE, &sl);
        ok = ok && same_str(s, sl, f->value, f->value_len);
        ok = ok && cs_avro_get_long(&item, CS_FS_TIME, &l) && l == f->time;
        ok = ok && cs_avro_get_enum(&item, CS_FS_SIDE) == f->side;
        ok = ok && cs_avro_get_long(&item, CS_FS_HASH, &l) && l == f->hash;
    }
    s = cs_avro_get_str(v, CS_SS_LAST_RESULT, &sl);
    ok = ok && same_str(s, sl, r->last_result, r->last_result_len);
    ok = ok && cs_avro_get_bool(v, CS_SS_PENDING, &bv) && bv == r->pending;
    CHECK(ok);
}

static state_t st_g;

static void test_random(cs_avro_registry_t *reg)
{
    /* Single object: an encoder per path. Confluent: one encoder for both, so the direct
     * writer's buffer growth and avro-c's writer on the same buffer are exercised together. */
    cs_avro_encoder_t *ref_so = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_encoder_t *dir_so = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_encoder_t *cf = cs_avro_encoder_new(reg, CS_AVRO_CONFLUENT);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    REQUIRE(ref_so && dir_so && cf && dec);
    size_t cap = 1 << 20;
    unsigned char *copy = malloc(cap);
    REQUIRE(copy);
    long same = 0, nulls_seen[2] = {0, 0}, empty_fields = 0, big_keys = 0, neg = 0;
    for (long n = 0; n < N_RANDOM; n++) {
        const void *a, *b;
        size_t alen, blen;
        rnd_state(&st_g);
        const cs_sync_state_rec_t *r = &st_g.r;
        nulls_seen[r->crm_id != NULL]++;
        empty_fields += r->n_fields == 0;
        big_keys += r->prospect_key_len >= 8192;
        neg += r->crm_watermark < 0;
        for (int fr = 0; fr < 2; fr++) {
            cs_avro_framing_t framing = fr ? CS_AVRO_CONFLUENT : CS_AVRO_SINGLE_OBJECT;
            cs_avro_encoder_t *re = fr ? cf : ref_so, *de = fr ? cf : dir_so;
            int rc = encode_ref(re, &st_g, &b, &blen);
            if (rc) {
                fprintf(stderr, "reference encode: %s\n", cs_avro_encoder_error(re));
                CHECK_INT(rc, 0);
                continue;
            }
            REQUIRE(blen <= cap);
            memcpy(copy, b, blen);
            rc = cs_avro_encode_sync_state(de, r, &a, &alen);
            CHECK_INT(rc, 0);
            if (rc)
                continue;
            bool eq = same_bytes(fr ? "confluent" : "single object", n, a, alen, copy, blen);
            CHECK(eq);
            same += eq;
            check_decoded(dec, reg, framing, r, a, alen);
        }
    }
    printf("%ld random records, %ld frames identical (%ld with crm_id null, %ld with no "
           "fields, %ld keys >= 8192 bytes, %ld negative crm_watermark)\n",
           (long)N_RANDOM, same, nulls_seen[0], empty_fields, big_keys, neg);
    CHECK_INT(same, 2 * N_RANDOM);
    CHECK(nulls_seen[0] > 100 && nulls_seen[1] > 100 && empty_fields > 100 && big_keys > 10 &&
          neg > 100);
    free(copy);
    cs_avro_decoder_destroy(dec);
    cs_avro_encoder_destroy(ref_so);
    cs_avro_encoder_destroy(dir_so);
    cs_avro_encoder_destroy(cf);
}

/* One frame computed by hand from the Avro spec, so that the two paths cannot agree on a
 * wrong encoding. */
static void test_known_frame(cs_avro_registry_t *reg)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_CONFLUENT);
    REQUIRE(enc);
    cs_field_state_rec_t f = {
        .name = "email", .name_len = 5, .time = -65, .side = CS_SIDE_CRM, .hash = 4294967295LL};
    cs_sync_state_rec_t r = {
        .prospect_key = "k1",
        .prospect_key_len = 2,
        .has_prospect_id = true,
        .prospect_id = -1,
        .marketing_watermark = 64,
        .crm_watermark = INT64_MIN,
        .has_updated_at = true,
        .updated_at = 0,
        .crm_object = CS_OBJECT_CONTACT,
        .crm_id = "",
        .crm_id_len = 0,
        .do_not_sync = true,
        .fields = &f,
        .n_fields = 1,
        .last_result = "OK",
        .last_result_len = 2,
        .pending = false,
    };
    static const unsigned char want[] = {
        0x00, 0x00, 0x00, 0x10, 0x92,                               /* Confluent, id 4242 */
        0x04, 'k',  '1',                                            /* prospect_key */
        0x02, 0x01,                                                 /* prospect_id: branch 1, -1 */
        0x80, 0x01,                                                 /* marketing_watermark 64 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* crm_watermark min */
        0x02, 0x00,                                                 /* updated_at 0 */
        0x00, 0x00,                               /* last_activity_at, crm_lm null */
        0x02, 0x02,                               /* crm_object CONTACT */
        0x02, 0x00,                               /* crm_id "" */
        0x00,                                     /* assigned_user_id null */
        0x01,                                     /* do_not_sync true */
        0x02,                                     /* fields: a block of 1 */
        0x0a, 'e',  'm',  'a',  'i',  'l',  0x00, /* name, value null */
        0x81, 0x01,                               /* time -65 */
        0x02,                                     /* side CRM */
        0xfe, 0xff, 0xff, 0xff, 0x1f,             /* hash 2^32 - 1 */
        0x00,                                     /* end of fields */
        0x02, 0x04, 'O',  'K',                    /* last_result */
        0x00,                                     /* pending false */
    };
    const void *out;
    size_t len;
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), 0);
    CHECK(same_bytes("known frame", 0, out, len, want, sizeof want));
    cs_avro_encoder_destroy(enc);
}

static void test_errors(cs_avro_registry_t *reg)
{
    char err[512];
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    REQUIRE(enc);
    cs_field_state_rec_t f = {.name = "x", .name_len = 1};
    cs_sync_state_rec_t ok = {.prospect_key = "k", .prospect_key_len = 1, .crm_object = -1};
    cs_sync_state_rec_t r;
    const void *out;
    size_t len;

    CHECK_INT(cs_avro_encode_sync_state(NULL, &ok, &out, &len), CS_ERR_INVAL);
    CHECK_INT(cs_avro_encode_sync_state(enc, NULL, &out, &len), CS_ERR_INVAL);
    CHECK_INT(cs_avro_encode_sync_state(enc, &ok, NULL, &len), CS_ERR_INVAL);
    r = ok, r.prospect_key = NULL;
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), CS_ERR_INVAL);
    CHECK(strstr(cs_avro_encoder_error(enc), "prospect_key") != NULL);
    r = ok, r.crm_object = 2;
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), CS_ERR_INVAL);
    r = ok, r.crm_object = -2;
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), CS_ERR_INVAL);
    r = ok, r.n_fields = 1;
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), CS_ERR_INVAL);
    r.fields = &f, f.side = 2;
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), CS_ERR_INVAL);
    f.side = -1;
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), CS_ERR_INVAL);
    f.side = CS_SIDE_CRM, f.name = NULL;
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), CS_ERR_INVAL);
    f.name = "x";
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), 0);
    CHECK_STR(cs_avro_encoder_error(enc), "");
    r = ok, r.prospect_key_len = (size_t)300 * 1024 * 1024; /* never read: over the limit */
    CHECK_INT(cs_avro_encode_sync_state(enc, &r, &out, &len), CS_ERR_TOO_LARGE);
    cs_avro_encoder_destroy(enc);

    /* Confluent framing with no id for SyncState, as cs_avro_encode. */
    cs_avro_registry_t *bare = cs_avro_registry_new(err, sizeof err);
    REQUIRE(bare);
    REQUIRE((enc = cs_avro_encoder_new(bare, CS_AVRO_CONFLUENT)));
    CHECK_INT(cs_avro_encode_sync_state(enc, &ok, &out, &len), CS_ERR_STATE);
    CHECK(strstr(cs_avro_encoder_error(enc), "SyncState") != NULL);
    cs_avro_encoder_destroy(enc);
    cs_avro_registry_destroy(bare);
}

/* Once the buffer has grown, records go out with no allocation: no avro-c call at all, and
 * the encoder's buffer stays where it is. */
static void test_no_alloc(cs_avro_registry_t *reg)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    REQUIRE(enc);
    const void *out, *first = NULL;
    size_t len;
    bool stable = true;
    rng_g = 12345;
    long before = cs_test_avro_allocs_;
    for (int i = 0; i < 1000; i++) {
        rnd_state(&st_g);
        if (st_g.r.prospect_key_len > 1000)
            st_g.r.prospect_key_len = 1000; /* keep under the initial 4 KiB buffer */
        for (size_t k = 0; k < st_g.r.n_fields; k++) {
            st_g.f[k].name_len %= 40;
            st_g.f[k].value_len %= 20;
        }
        if (st_g.r.n_fields > 20)
            st_g.r.n_fields = 20;
        CHECK_INT(cs_avro_encode_sync_state(enc, &st_g.r, &out, &len), 0);
        if (!first)
            first = out;
        stable = stable && out == first;
    }
    CHECK_INT(cs_test_avro_allocs_ - before, 0);
    CHECK(stable);
    cs_avro_encoder_destroy(enc);
}

int main(void)
{
    char err[512];
    avro_set_allocator(cs_test_avro_alloc, NULL); /* before any avro-c object exists */
    cs_avro_registry_t *reg = cs_avro_registry_new(err, sizeof err);
    if (!reg)
        fprintf(stderr, "registry: %s\n", err);
    REQUIRE(reg);
    REQUIRE(!cs_avro_registry_set_id(reg, CS_AVRO_SYNC_STATE, CONFLUENT_ID));

    test_known_frame(reg);
    test_random(reg);
    test_errors(reg);
    test_no_alloc(reg);

    cs_avro_registry_destroy(reg);
    return cs_test_report();
}
