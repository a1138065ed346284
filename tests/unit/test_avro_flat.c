/* Unit: cs_avro_decode_flat (the sync consumer's input path) against cs_avro_decode.
 *
 * Every frame below is decoded both ways and compared with flat_check() (avro_flat_check.h):
 * same error code and text for invalid input; for valid input the same value through every
 * accessor the consumer uses, for every top-level field. Frames:
 *   - every file of the Avro fuzz corpus and regressions, read as the harness reads it;
 *   - random valid records of every current schema (both framings) and of the old
 *     ProspectChange versions (written with avro-c alone, resolved on decode);
 *   - hand-made encodings avro-c never writes (negative block counts, a repeated map key);
 *   - every truncation and random byte changes of all of the above. */
#include "avro_flat_check.h"
#include "cs_avro.h"
#include "cs_err.h"
#include "cs_test.h"

#include <avro.h>
#include <dirent.h>
#include <sys/stat.h>

#define CONFLUENT_ID_BASE 1000 /* as the fuzz harness */

static cs_avro_registry_t *reg_g;
static cs_avro_decoder_t *gdec_g, *fdec_g;
static long frames_checked_g, frames_valid_g;

static uint64_t rng_g = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
    return cs_test_xorshift(&rng_g);
}

/* One frame both ways; a disagreement is a failed check with its detail. */
static bool check_frame(const char *what, const unsigned char *p, size_t n)
{
    char why[700];
    cs_avro_decoded_t d;
    frames_checked_g++;
    if (!flat_check(gdec_g, fdec_g, p, n, why, sizeof why)) {
        fprintf(stderr, "%s (%zu bytes): %s\n", what, n, why);
        CHECK(!"flat and generic decoding disagree");
        return false;
    }
    if (cs_avro_decode(gdec_g, p, n, &d) == 0)
        frames_valid_g++;
    return true;
}

/* The frame, each truncation of it, and `flips` copies with random bytes changed. Stops at
 * the first disagreement (one report per frame). */
static void check_mutations(const char *what, const unsigned char *p, size_t n, int flips)
{
    unsigned char *c = malloc(n + 8);
    REQUIRE(c);
    if (!check_frame(what, p, n))
        goto out;
    for (size_t k = 0; k < n; k++)
        if (!check_frame(what, p, k))
            goto out;
    for (int t = 0; t < flips && n > 0; t++) {
        memcpy(c, p, n);
        int changes = 1 + (int)(rnd() % 3);
        for (int j = 0; j < changes; j++) {
            size_t at = n > 10 ? 10 + rnd() % (n - 10) : rnd() % n; /* mostly the body */
            c[at] = (unsigned char)(rnd() % 4 ? rnd() : c[at] ^ 0x80);
        }
        if (!check_frame(what, c, n))
            goto out;
        c[n] = (unsigned char)rnd(); /* a trailing byte */
        if (!check_frame(what, c, n + 1))
            goto out;
    }
out:
    free(c);
}

/* ---- Random valid records --------------------------------------------------------------- */

static void rnd_string(char *buf, size_t *len)
{
    static const char *pool[] = {
        "",           "email",      "first_name",           "assigned_user_id",  "do_not_sync",
        "Custom0__c", "Custom1__c", "prospect@example.com", "00Q000000000001AAA"};
    if (rnd() % 2) {
        const char *s = pool[rnd() % (sizeof pool / sizeof pool[0])];
        *len = strlen(s);
        memcpy(buf, s, *len);
        return;
    }
    *len = rnd() % 40;
    for (size_t i = 0; i < *len; i++)
        buf[i] = (char)(rnd() % 16 ? 32 + rnd() % 95 : rnd() % 256); /* sometimes a NUL */
}

static int64_t rnd_long(void)
{
    switch (rnd() % 6) {
    case 0:
        return 0;
    case 1:
        return INT64_MAX;
    case 2:
        return INT64_MIN;
    case 3:
        return -(int64_t)(rnd() % 1000);
    default:
        return (int64_t)(rnd() >> (rnd() % 64));
    }
}

/* Fills any generic value with random content its schema allows. */
static void rnd_value(avro_value_t *v, int depth)
{
    avro_value_t child;
    avro_schema_t s = avro_value_get_schema(v);
    char buf[64];
    size_t len, n;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        avro_value_set_null(v);
        break;
    case AVRO_BOOLEAN:
        avro_value_set_boolean(v, (int)(rnd() % 2));
        break;
    case AVRO_INT32: {
        int64_t l = rnd_long();
        avro_value_set_int(v, rnd() % 4 ? (int32_t)(l % 100000) : (int32_t)l);
        break;
    }
    case AVRO_INT64:
        avro_value_set_long(v, rnd_long());
        break;
    case AVRO_FLOAT:
        avro_value_set_float(v, (float)(rnd() % 1000) / 7.0f);
        break;
    case AVRO_DOUBLE:
        avro_value_set_double(v, (double)rnd_long() / 3.0);
        break;
    case AVRO_STRING:
        rnd_string(buf, &len);
        buf[len] = '\0';
        avro_value_set_string_len(v, buf, len + 1);
        break;
    case AVRO_BYTES:
        rnd_string(buf, &len);
        avro_value_set_bytes(v, buf, len);
        break;
    case AVRO_FIXED: {
        size_t size = (size_t)avro_schema_fixed_size(s);
        char fx[256] = {0};
        for (size_t i = 0; i < size && i < sizeof fx; i++)
            fx[i] = (char)rnd();
        avro_value_set_fixed(v, fx, size);
        break;
    }
    case AVRO_ENUM:
        avro_value_set_enum(v, (int)(rnd() % (uint64_t)avro_schema_enum_number_of_symbols(s)));
        break;
    case AVRO_UNION:
        avro_value_set_branch(v, (int)(rnd() % avro_schema_union_size(s)), &child);
        rnd_value(&child, depth + 1);
        break;
    case AVRO_RECORD:
        avro_value_get_size(v, &n);
        for (size_t i = 0; i < n; i++) {
            avro_value_get_by_index(v, i, &child, NULL);
            rnd_value(&child, depth + 1);
        }
        break;
    case AVRO_ARRAY:
    case AVRO_MAP:
        avro_value_reset(v);
        n = depth > 4 ? 0 : rnd() % 6;
        for (size_t i = 0; i < n; i++) {
            if (avro_value_get_type(v) == AVRO_MAP) {
                rnd_string(buf, &len);
                buf[len] = '\0'; /* a key stops at a NUL anyway */
                avro_value_add(v, buf, &child, NULL, NULL);
            } else {
                avro_value_append(v, &child, NULL);
            }
            rnd_value(&child, depth + 1);
        }
        break;
    default:
        break;
    }
}

static size_t put_so_header(unsigned char *f, uint64_t fp)
{
    f[0] = 0xc3;
    f[1] = 0x01;
    for (int i = 0; i < 8; i++)
        f[2 + i] = (unsigned char)(fp >> (8 * i));
    return 10;
}

/* Random records of every current schema, single-object and Confluent frames. */
static void test_random_current(void)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg_g, CS_AVRO_SINGLE_OBJECT);
    cs_avro_encoder_t *cenc = cs_avro_encoder_new(reg_g, CS_AVRO_CONFLUENT);
    REQUIRE(enc && cenc);
    for (int schema = 0; schema < CS_AVRO_N_SCHEMAS; schema++) {
        int records = schema <= CS_AVRO_CRM_CHANGE ? 300 : 60; /* the input topics most */
        for (int i = 0; i < records; i++) {
            char what[96];
            const void *f;
            size_t len;
            avro_value_t *v = cs_avro_encoder_value(enc, schema);
            REQUIRE(v);
            rnd_value(v, 0);
            int rc = cs_avro_encode(enc, v, &f, &len);
            CHECK_INT(rc, 0);
            if (rc)
                continue;
            snprintf(what, sizeof what, "random %s #%d", cs_avro_schema_name(schema), i);
            check_mutations(what, f, len, i < 100 ? 20 : 2);
            if (i % 10 == 0) {
                avro_value_t *cv = cs_avro_encoder_value(cenc, schema);
                rnd_value(cv, 0);
                if (!cs_avro_encode(cenc, cv, &f, &len))
                    check_mutations(what, f, len, 2);
            }
        }
    }
    cs_avro_encoder_destroy(enc);
    cs_avro_encoder_destroy(cenc);
}

/* Random records of each old schema version, written with avro-c alone. */
static void test_random_old(void)
{
    int olds = 0;
    for (size_t e = 0; e < cs_avro_embedded_count_g; e++) {
        const cs_avro_embedded_t *em = &cs_avro_embedded_g[e];
        char err[512];
        uint64_t fp;
        avro_schema_t s;
        if (strncmp(em->path, "old/", 4))
            continue;
        olds++;
        REQUIRE(!cs_avro_fingerprint_json(em->json, em->len, &fp, NULL, err, sizeof err));
        REQUIRE(!avro_schema_from_json_length(em->json, em->len, &s));
        avro_value_iface_t *iface = avro_generic_class_from_schema(s);
        avro_value_t w;
        REQUIRE(iface && !avro_generic_value_new(iface, &w));
        for (int i = 0; i < 200; i++) {
            unsigned char frame[8192];
            char what[96];
            size_t hdr = put_so_header(frame, fp);
            rnd_value(&w, 0);
            avro_writer_t wr = avro_writer_memory((const char *)frame + hdr, sizeof frame - hdr);
            int rc = avro_value_write(wr, &w);
            size_t len = hdr + (size_t)avro_writer_tell(wr);
            avro_writer_free(wr);
            CHECK_INT(rc, 0);
            snprintf(what, sizeof what, "random %s #%d", em->path, i);
            if (!rc)
                check_mutations(what, frame, len, i < 50 ? 10 : 1);
        }
        avro_value_decref(&w);
        avro_value_iface_decref(iface);
        avro_schema_decref(s);
    }
    CHECK(olds >= 2);
}

/* ---- Hand-made encodings ---------------------------------------------------------------- */

static size_t put_long(unsigned char *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (unsigned char)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (unsigned char)z;
    return n;
}

static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = put_long(p, (int64_t)strlen(s));
    memcpy(p + n, s, strlen(s));
    return n + strlen(s);
}

/* A ProspectChange whose custom_fields and changed_fields come in blocks avro-c never
 * writes: a negative count with a byte size, several blocks, a repeated key (the later
 * value wins), a key with a NUL in it. */
static void test_blocks(void)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg_g, CS_AVRO_SINGLE_OBJECT);
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
    const void *f;
    size_t len;
    REQUIRE(v);
    cs_avro_set_str(v, CS_PC_EVENT_ID, "e1");
    cs_avro_set_str(v, CS_PC_PROSPECT_KEY, "k1");
    cs_avro_set_long(v, CS_PC_UPDATED_AT, 1700000000000LL);
    cs_avro_set_long(v, CS_PC_EVENT_TIME, 1700000000001LL);
    cs_avro_set_str(v, CS_PC_EMAIL, "a@example.com");
    REQUIRE(!cs_avro_encode(enc, v, &f, &len));
    /* The body ends with {} [] null: 00 00 00. Replace them. */
    unsigned char frame[512], ent[128];
    REQUIRE(len >= 3 && len < 256);
    memcpy(frame, f, len - 3);
    size_t n = len - 3, e = 0;
    /* map block 1: count -2 with its byte size: Custom0__c -> "x", Custom1__c -> null */
    e += put_str(ent + e, "Custom0__c");
    e += put_long(ent + e, 1);
    e += put_str(ent + e, "x");
    e += put_str(ent + e, "Custom1__c");
    e += put_long(ent + e, 0);
    n += put_long(frame + n, -2);
    n += put_long(frame + n, (int64_t)e);
    memcpy(frame + n, ent, e);
    n += e;
    /* map block 2: Custom0__c again -> "y" (wins), "Cu\0stom" (key read as "Cu") -> "z" */
    n += put_long(frame + n, 2);
    n += put_str(frame + n, "Custom0__c");
    n += put_long(frame + n, 1);
    n += put_str(frame + n, "y");
    n += put_long(frame + n, 7);
    memcpy(frame + n, "Cu\0stom", 7);
    n += 7;
    n += put_long(frame + n, 1);
    n += put_str(frame + n, "z");
    frame[n++] = 0;
    /* array: block of -1 with size, block of 2, end */
    e = put_str(ent, "email");
    n += put_long(frame + n, -1);
    n += put_long(frame + n, (int64_t)e);
    memcpy(frame + n, ent, e);
    n += e;
    n += put_long(frame + n, 2);
    n += put_str(frame + n, "score");
    n += put_str(frame + n, "");
    frame[n++] = 0;
    frame[n++] = 0; /* updated_by_id: null */
    check_mutations("hand-made blocks", frame, n, 200);

    cs_avro_flat_t fl;
    const char *val;
    size_t vlen;
    int rc = cs_avro_decode_flat(fdec_g, frame, n, &fl);
    CHECK_INT(rc, 0);
    if (!rc) {
        CHECK(fl.value == NULL);
        CHECK_INT(cs_avro_flat_count(&fl, CS_PC_CUSTOM_FIELDS), 4);
        CHECK_INT(cs_avro_flat_count(&fl, CS_PC_CHANGED_FIELDS), 3);
        CHECK(cs_avro_flat_map_find(&fl, CS_PC_CUSTOM_FIELDS, "Custom0__c", &val, &vlen) &&
              vlen == 1 && val[0] == 'y');
        CHECK(cs_avro_flat_map_find(&fl, CS_PC_CUSTOM_FIELDS, "Custom1__c", &val, &vlen) &&
              val == NULL);
        CHECK(cs_avro_flat_map_find(&fl, CS_PC_CUSTOM_FIELDS, "Cu", &val, &vlen) && vlen == 1);
        CHECK(!cs_avro_flat_map_find(&fl, CS_PC_CUSTOM_FIELDS, "Custom2__c", &val, &vlen));
        CHECK(cs_avro_flat_str(&fl, CS_PC_EMAIL, &vlen) && vlen == 13);
        CHECK(cs_avro_flat_is_null(&fl, CS_PC_PHONE));
        CHECK(cs_avro_flat_is_null(&fl, -1) && cs_avro_flat_is_null(&fl, CS_PC__COUNT));
    }
    cs_avro_encoder_destroy(enc);
}

/* ---- The fuzz corpus -------------------------------------------------------------------- */

/* A corpus file as fuzz_avro.c reads it (byte 0: mode), plus the file itself as a frame. */
static void corpus_input(const char *name, const unsigned char *data, size_t size)
{
    static uint64_t fps[32];
    static size_t nfp;
    unsigned char frame[1 << 16];
    char err[256];
    if (!nfp)
        for (size_t i = 0; i < cs_avro_embedded_count_g && nfp < 32; i++)
            REQUIRE(!cs_avro_fingerprint_json(cs_avro_embedded_g[i].json, cs_avro_embedded_g[i].len,
                                              &fps[nfp++], NULL, err, sizeof err));
    check_mutations(name, data, size, 50);
    if (size < 1)
        return;
    const unsigned char *p = data + 1;
    size_t n = size - 1, hdr;
    switch (data[0] % 5) {
    case 0:
        check_mutations(name, p, n, 50);
        break;
    case 1: /* an unframed body: frame it as its schema's current version */
        if (n < 1 || n - 1 + 10 > sizeof frame)
            break;
        hdr = put_so_header(frame, cs_avro_fingerprint(reg_g, p[0] % CS_AVRO_N_SCHEMAS));
        memcpy(frame + hdr, p + 1, n - 1);
        check_mutations(name, frame, hdr + n - 1, 50);
        break;
    case 2:
        if (n < 1 || n - 1 + 10 > sizeof frame)
            break;
        hdr = put_so_header(frame, fps[p[0] % nfp]);
        memcpy(frame + hdr, p + 1, n - 1);
        check_mutations(name, frame, hdr + n - 1, 50);
        break;
    case 3: {
        uint32_t id = CONFLUENT_ID_BASE + p[0] % CS_AVRO_N_SCHEMAS;
        if (n < 1 || n - 1 + 5 > sizeof frame)
            break;
        frame[0] = 0;
        frame[1] = (unsigned char)(id >> 24);
        frame[2] = (unsigned char)(id >> 16);
        frame[3] = (unsigned char)(id >> 8);
        frame[4] = (unsigned char)id;
        memcpy(frame + 5, p + 1, n - 1);
        check_mutations(name, frame, 5 + n - 1, 50);
        break;
    }
    default: /* schema JSON: nothing to decode */
        break;
    }
}

static size_t corpus_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t files = 0;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char path[2048];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) || !S_ISREG(st.st_mode) || st.st_size > (1 << 20))
            continue;
        FILE *f = fopen(path, "rb");
        REQUIRE(f);
        unsigned char *b = malloc((size_t)st.st_size + 1);
        REQUIRE(b && fread(b, 1, (size_t)st.st_size, f) == (size_t)st.st_size);
        fclose(f);
        corpus_input(e->d_name, b, (size_t)st.st_size);
        free(b);
        files++;
    }
    closedir(d);
    return files;
}

static void test_corpus(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/avro", cs_test_source_dir());
    size_t files = corpus_dir(dir);
    CHECK(files >= 10); /* the seeds are there */
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/avro", cs_test_source_dir());
    files += corpus_dir(dir);
    printf("fuzz corpus: %zu files\n", files);
}

/* The flat path makes no avro-c allocation (and has no malloc of its own after
 * cs_avro_decoder_new). */

static void test_no_alloc(void)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg_g, CS_AVRO_SINGLE_OBJECT);
    unsigned char frames[16][4096];
    size_t lens[16];
    for (int i = 0; i < 16; i++) {
        avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
        const void *f;
        rnd_value(v, 0);
        REQUIRE(!cs_avro_encode(enc, v, &f, &lens[i]) && lens[i] <= sizeof frames[i]);
        memcpy(frames[i], f, lens[i]);
    }
    long before = cs_test_avro_allocs_;
    for (int i = 0; i < 1000; i++) {
        cs_avro_flat_t fl;
        CHECK_INT(cs_avro_decode_flat(fdec_g, frames[i % 16], lens[i % 16], &fl), 0);
    }
    CHECK_INT(cs_test_avro_allocs_ - before, 0);
    cs_avro_encoder_destroy(enc);
}

int main(void)
{
    char err[512];
    avro_set_allocator(cs_test_avro_alloc, NULL); /* before any avro-c object exists */
    REQUIRE((reg_g = cs_avro_registry_new(err, sizeof err)));
    for (int s = 0; s < CS_AVRO_N_SCHEMAS; s++)
        REQUIRE(!cs_avro_registry_set_id(reg_g, s, CONFLUENT_ID_BASE + s));
    REQUIRE((gdec_g = cs_avro_decoder_new(reg_g)) && (fdec_g = cs_avro_decoder_new(reg_g)));

    test_corpus();
    test_random_current();
    test_random_old();
    test_blocks();
    test_no_alloc();
    printf("%ld frames compared, %ld of them valid records\n", frames_checked_g, frames_valid_g);
    CHECK(frames_valid_g > 2000);

    cs_avro_decoder_destroy(gdec_g);
    cs_avro_decoder_destroy(fdec_g);
    cs_avro_registry_destroy(reg_g);
    return cs_test_report();
}
