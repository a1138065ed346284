/* avro_bench: ProspectChange decode (and encode) throughput on one core.
 *
 *   crmsync-avro-bench [records]      default 2,000,000 per case
 *
 * Cases: the same lean record over and over (no custom fields, stable nulls: the zero-
 * allocation path); a mix of 1,024 distinct records (nulls flipping, 0-4 custom fields, 0-3
 * changed fields) decoded round-robin, alone and with 8 fields read per record as a consumer
 * does; the same three with cs_avro_decode_flat (the sync consumer's path: no avro-c value);
 * avro-c's own avro_value_read on the same mix, for reference; encoding; and SyncState
 * encoding both ways (the avro-c value path and cs_avro_encode_sync_state). Prints
 * records/s, ns/record and MB/s of frames. A program that prints numbers, not a test. */
#include "cs_avro.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIX 1024

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fill(avro_value_t *v, int i)
{
    char buf[64];
    snprintf(buf, sizeof buf, "evt-%08d", i);
    cs_avro_set_str(v, CS_PC_EVENT_ID, buf);
    snprintf(buf, sizeof buf, "prospect%d@example.com", i);
    cs_avro_set_str(v, CS_PC_PROSPECT_KEY, buf);
    cs_avro_set_str(v, CS_PC_EMAIL, buf);
    cs_avro_set_long(v, CS_PC_PROSPECT_ID, 1000000 + i);
    cs_avro_set_enum(v, CS_PC_CAUSE, i % 10);
    cs_avro_set_long(v, CS_PC_UPDATED_AT, 1700000000000LL + i);
    if (i % 4)
        cs_avro_set_long(v, CS_PC_LAST_ACTIVITY_AT, 1700000000000LL + i);
    cs_avro_set_long(v, CS_PC_EVENT_TIME, 1700000001000LL + i);
    cs_avro_set_str(v, CS_PC_FIRST_NAME, i % 7 ? "Ada" : "Bartholomew");
    cs_avro_set_str(v, CS_PC_LAST_NAME, "Lovelace");
    cs_avro_set_str(v, CS_PC_COMPANY, i % 3 ? "Analytical Engines Ltd" : NULL);
    cs_avro_set_str(v, CS_PC_PHONE, i % 2 ? "+44 20 7946 0000" : NULL);
    cs_avro_set_str(v, CS_PC_JOB_TITLE, "Mathematician");
    cs_avro_set_bool(v, CS_PC_OPTED_OUT, i % 11 == 0);
    cs_avro_set_int(v, CS_PC_SCORE, i % 300);
    cs_avro_set_str(v, CS_PC_GRADE, "B+");
    if (i % 5)
        cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, 42);
    if (i % 2)
        cs_avro_set_str(v, CS_PC_CRM_LEAD_ID, "00Q000000000001AAA");
    else
        cs_avro_set_str(v, CS_PC_CRM_CONTACT_ID, "003000000000001AAA");
    cs_avro_set_str(v, CS_PC_CRM_OWNER_ID, "005000000000001AAA");
    for (int k = 0; k < i % 5; k++) {
        snprintf(buf, sizeof buf, "Custom%d__c", k);
        cs_avro_map_set_str(v, CS_PC_CUSTOM_FIELDS, buf, k % 2 ? NULL : "some value");
    }
    static const char *changed[] = {"email", "first_name", "score"};
    for (int k = 0; k < i % 4; k++)
        cs_avro_array_add_str(v, CS_PC_CHANGED_FIELDS, changed[k]);
}

static void report(const char *what, long n, double secs, size_t bytes)
{
    printf("%-48s %10.0f records/s %7.1f ns/record %8.1f MB/s\n", what, n / secs, secs * 1e9 / n,
           bytes / secs / 1e6);
}

/* SyncState, as sc_write_state() writes it: a linked prospect with 8 remembered fields. The
 * avro-c path (fill the encoder's generic value, cs_avro_encode) against
 * cs_avro_encode_sync_state (fill a plain struct, write the bytes). Both include the filling. */
static const char *const ss_names[] = {"email", "first_name", "last_name", "company",
                                       "phone", "job_title",  "score",     "last_activity"};
#define SS_NF (sizeof ss_names / sizeof *ss_names)

static int ss_avro_c(cs_avro_encoder_t *enc, const char *key, size_t klen, long i, const void **f,
                     size_t *len)
{
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_SYNC_STATE), item;
    cs_avro_set_strn(v, CS_SS_PROSPECT_KEY, key, klen);
    cs_avro_set_long(v, CS_SS_PROSPECT_ID, 1000000 + i);
    cs_avro_set_long(v, CS_SS_MARKETING_WATERMARK, 1700000000000LL + i);
    cs_avro_set_long(v, CS_SS_CRM_WATERMARK, 1700000000500LL + i);
    cs_avro_set_long(v, CS_SS_UPDATED_AT, 1700000000000LL + i);
    cs_avro_set_long(v, CS_SS_LAST_ACTIVITY_AT, 1700000000100LL + i);
    cs_avro_set_long(v, CS_SS_CRM_LAST_MODIFIED, 1700000000500LL + i);
    cs_avro_set_enum(v, CS_SS_CRM_OBJECT, CS_OBJECT_LEAD);
    cs_avro_set_strn(v, CS_SS_CRM_ID, "00Q000000000001AAA", 18);
    cs_avro_set_long(v, CS_SS_ASSIGNED_USER_ID, 42);
    cs_avro_set_bool(v, CS_SS_DO_NOT_SYNC, false);
    for (size_t k = 0; k < SS_NF; k++) {
        cs_avro_array_add(v, CS_SS_FIELDS, &item);
        cs_avro_set_str(&item, CS_FS_NAME, ss_names[k]);
        cs_avro_set_long(&item, CS_FS_TIME, 1700000000000LL + i);
        cs_avro_set_enum(&item, CS_FS_SIDE, k & 1 ? CS_SIDE_CRM : CS_SIDE_MARKETING);
        cs_avro_set_long(&item, CS_FS_HASH, (int64_t)(0x9e3779b9u * (uint32_t)(i + k)));
    }
    cs_avro_set_str(v, CS_SS_LAST_RESULT, "OK");
    cs_avro_set_bool(v, CS_SS_PENDING, false);
    return cs_avro_encode(enc, v, f, len);
}

static int ss_direct(cs_avro_encoder_t *enc, const char *key, size_t klen, long i, const void **f,
                     size_t *len)
{
    cs_field_state_rec_t fs[SS_NF];
    cs_sync_state_rec_t r = {
        .prospect_key = key,
        .prospect_key_len = klen,
        .has_prospect_id = true,
        .prospect_id = 1000000 + i,
        .marketing_watermark = 1700000000000LL + i,
        .crm_watermark = 1700000000500LL + i,
        .has_updated_at = true,
        .updated_at = 1700000000000LL + i,
        .has_last_activity_at = true,
        .last_activity_at = 1700000000100LL + i,
        .has_crm_last_modified = true,
        .crm_last_modified = 1700000000500LL + i,
        .crm_object = CS_OBJECT_LEAD,
        .crm_id = "00Q000000000001AAA",
        .crm_id_len = 18,
        .has_assigned_user_id = true,
        .assigned_user_id = 42,
        .fields = fs,
        .n_fields = SS_NF,
        .last_result = "OK",
        .last_result_len = 2,
    };
    for (size_t k = 0; k < SS_NF; k++)
        fs[k] = (cs_field_state_rec_t){
            .name = ss_names[k],
            .name_len = strlen(ss_names[k]),
            .time = 1700000000000LL + i,
            .side = k & 1 ? CS_SIDE_CRM : CS_SIDE_MARKETING,
            .hash = (int64_t)(0x9e3779b9u * (uint32_t)(i + k)),
        };
    return cs_avro_encode_sync_state(enc, &r, f, len);
}

static int bench_sync_state(cs_avro_encoder_t *enc, long n)
{
    char key[64];
    const void *f;
    size_t len = 0, klen = (size_t)snprintf(key, sizeof key, "prospect%d@example.com", 12345);
    unsigned char ref[1024];
    long sink = 0;

    /* Same bytes both ways, or the figures mean nothing. */
    if (ss_avro_c(enc, key, klen, 7, &f, &len) || len > sizeof ref)
        return -1;
    memcpy(ref, f, len);
    size_t rlen = len;
    if (ss_direct(enc, key, klen, 7, &f, &len) || len != rlen || memcmp(ref, f, len)) {
        fprintf(stderr, "SyncState: direct and avro-c frames differ\n");
        return -1;
    }
    double t = now();
    for (long i = 0; i < n; i++)
        sink += ss_avro_c(enc, key, klen, i, &f, &len);
    report("SyncState encode, avro-c value + cs_avro_encode", n, now() - t, rlen * (size_t)n);
    t = now();
    for (long i = 0; i < n; i++)
        sink += ss_direct(enc, key, klen, i, &f, &len);
    report("SyncState encode, cs_avro_encode_sync_state", n, now() - t, rlen * (size_t)n);
    printf("SyncState frame: %zu bytes, 8 fields (sink %ld)\n", rlen, sink);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    char err[512];
    cs_avro_registry_t *reg = cs_avro_registry_new(err, sizeof err);
    if (!reg || n <= 0) {
        fprintf(stderr, "avro_bench: %s\n", reg ? "bad count" : err);
        return 1;
    }
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    cs_avro_decoded_t out;
    unsigned char *frames[MIX];
    size_t lens[MIX], mix_bytes = 0;
    const void *f;
    size_t len;

    for (int i = 0; i < MIX; i++) {
        avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
        fill(v, i);
        if (cs_avro_encode(enc, v, &f, &len)) {
            fprintf(stderr, "encode: %s\n", cs_avro_encoder_error(enc));
            return 1;
        }
        frames[i] = malloc(len);
        memcpy(frames[i], f, len);
        lens[i] = len;
        mix_bytes += len;
    }
    /* frames[0] is the lean one: i = 0 has no custom or changed fields. */
    volatile long sink = 0;
    for (int i = 0; i < MIX; i++)
        if (cs_avro_decode(dec, frames[i], lens[i], &out)) {
            fprintf(stderr, "decode: %s\n", cs_avro_decoder_error(dec));
            return 1;
        }

    double t = now();
    for (long i = 0; i < n; i++)
        sink += cs_avro_decode(dec, frames[0], lens[0], &out);
    report("decode, same lean record", n, now() - t, lens[0] * (size_t)n);

    t = now();
    for (long i = 0; i < n; i++)
        sink += cs_avro_decode(dec, frames[i & (MIX - 1)], lens[i & (MIX - 1)], &out);
    report("decode, mix of 1024 records", n, now() - t, mix_bytes * ((size_t)n / MIX));

    t = now();
    for (long i = 0; i < n; i++) {
        int64_t upd = 0, aid = 0;
        bool dns = false;
        size_t kl = 0;
        cs_avro_decode(dec, frames[i & (MIX - 1)], lens[i & (MIX - 1)], &out);
        const char *key = cs_avro_get_str(out.value, CS_PC_PROSPECT_KEY, &kl);
        const char *email = cs_avro_get_str(out.value, CS_PC_EMAIL, NULL);
        cs_avro_get_long(out.value, CS_PC_UPDATED_AT, &upd);
        cs_avro_get_long(out.value, CS_PC_ASSIGNED_USER_ID, &aid);
        cs_avro_get_bool(out.value, CS_PC_DO_NOT_SYNC, &dns);
        int cause = cs_avro_get_enum(out.value, CS_PC_CAUSE);
        const char *lead = cs_avro_get_str(out.value, CS_PC_CRM_LEAD_ID, NULL);
        size_t nc = cs_avro_count(out.value, CS_PC_CUSTOM_FIELDS);
        sink += (long)kl + (email != NULL) + upd + aid + dns + cause + (lead != NULL) + (long)nc +
                (key != NULL);
    }
    report("decode + read 8 fields, mix", n, now() - t, mix_bytes * ((size_t)n / MIX));

    /* The flat decoder (cs_avro_decode_flat), as sc_decode uses it. */
    cs_avro_flat_t fl;
    t = now();
    for (long i = 0; i < n; i++)
        sink += cs_avro_decode_flat(dec, frames[0], lens[0], &fl);
    report("flat decode, same lean record", n, now() - t, lens[0] * (size_t)n);

    t = now();
    for (long i = 0; i < n; i++)
        sink += cs_avro_decode_flat(dec, frames[i & (MIX - 1)], lens[i & (MIX - 1)], &fl);
    report("flat decode, mix of 1024 records", n, now() - t, mix_bytes * ((size_t)n / MIX));

    t = now();
    for (long i = 0; i < n; i++) {
        int64_t upd = 0, aid = 0;
        bool dns = false;
        size_t kl = 0;
        cs_avro_decode_flat(dec, frames[i & (MIX - 1)], lens[i & (MIX - 1)], &fl);
        const char *key = cs_avro_flat_str(&fl, CS_PC_PROSPECT_KEY, &kl);
        const char *email = cs_avro_flat_str(&fl, CS_PC_EMAIL, NULL);
        cs_avro_flat_long(&fl, CS_PC_UPDATED_AT, &upd);
        cs_avro_flat_long(&fl, CS_PC_ASSIGNED_USER_ID, &aid);
        cs_avro_flat_bool(&fl, CS_PC_DO_NOT_SYNC, &dns);
        int cause = cs_avro_flat_enum(&fl, CS_PC_CAUSE);
        const char *lead = cs_avro_flat_str(&fl, CS_PC_CRM_LEAD_ID, NULL);
        size_t nc = cs_avro_flat_count(&fl, CS_PC_CUSTOM_FIELDS);
        sink += (long)kl + (email != NULL) + upd + aid + dns + cause + (lead != NULL) + (long)nc +
                (key != NULL);
    }
    report("flat decode + read 8 fields, mix", n, now() - t, mix_bytes * ((size_t)n / MIX));

    /* avro-c's generic reader on the same bodies, for reference (allocates per string). */
    avro_value_iface_t *iface =
        avro_generic_class_from_schema(cs_avro_schema_by_id(reg, CS_AVRO_PROSPECT_CHANGE));
    avro_value_t ref;
    avro_generic_value_new(iface, &ref);
    avro_reader_t rd = avro_reader_memory((const char *)frames[0], (int64_t)lens[0]);
    long m = n / 4;
    t = now();
    for (long i = 0; i < m; i++) {
        avro_reader_memory_set_source(rd, (const char *)frames[i & (MIX - 1)] + 10,
                                      (int64_t)lens[i & (MIX - 1)] - 10);
        sink += avro_value_read(rd, &ref);
    }
    report("avro-c avro_value_read, mix (reference)", m, now() - t, mix_bytes * ((size_t)m / MIX));
    avro_reader_free(rd);
    avro_value_decref(&ref);
    avro_value_iface_decref(iface);

    avro_value_t *v = out.value;
    cs_avro_decode(dec, frames[3], lens[3], &out);
    t = now();
    for (long i = 0; i < n; i++)
        sink += cs_avro_encode(enc, v, &f, &len);
    report("encode (avro_value_write), one record", n, now() - t, len * (size_t)n);

    if (bench_sync_state(enc, n))
        return 1;
    printf("frames: lean %zu bytes, mix average %.1f bytes (sink %ld)\n", lens[0],
           (double)mix_bytes / MIX, (long)sink);
    for (int i = 0; i < MIX; i++)
        free(frames[i]);
    cs_avro_encoder_destroy(enc);
    cs_avro_decoder_destroy(dec);
    cs_avro_registry_destroy(reg);
    return 0;
}
