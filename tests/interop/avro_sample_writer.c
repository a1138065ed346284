/* crmsync-avro-sample: the C side of tests/interop/test_avro_interop.py.
 *
 *   crmsync-avro-sample write DIR       writes one sample record of each topic schema as
 *                                       DIR/<Name>.bin (single-object framing) and
 *                                       DIR/<Name>.confluent.bin (Confluent, id 1000 + index)
 *   crmsync-avro-sample recode IN OUT   decodes IN (either framing, current or old version)
 *                                       and writes it back as a current single-object record
 *
 * The sample values are mirrored in the Python test (SAMPLES there). Exit 0 on success, 1 on
 * any failure (with the reason on stderr). */
#include "cs_avro.h"
#include "cs_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures_g;

static void ok(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "avro-sample: %s: %s\n", what, cs_err_name(rc));
        failures_g++;
    }
}

#define OK(call) ok((call), #call)

static void fill(int schema, avro_value_t *v)
{
    avro_value_t item;
    static const unsigned char payload[] = {0xde, 0xad, 0x00, 0xbe, 0xef};
    switch (schema) {
    case CS_AVRO_PROSPECT_CHANGE:
        OK(cs_avro_set_str(v, CS_PC_EVENT_ID, "evt-0001"));
        OK(cs_avro_set_str(v, CS_PC_PROSPECT_KEY, "ada@example.com"));
        OK(cs_avro_set_long(v, CS_PC_PROSPECT_ID, 123456789012LL));
        OK(cs_avro_set_enum(v, CS_PC_CAUSE, CS_CAUSE_ASSIGNMENT));
        OK(cs_avro_set_long(v, CS_PC_UPDATED_AT, 1700000000123LL));
        OK(cs_avro_set_long(v, CS_PC_LAST_ACTIVITY_AT, 1700000000456LL));
        OK(cs_avro_set_long(v, CS_PC_EVENT_TIME, 1700000000999LL));
        OK(cs_avro_set_str(v, CS_PC_EMAIL, "Ada@Example.com"));
        OK(cs_avro_set_str(v, CS_PC_FIRST_NAME, "Ada"));
        OK(cs_avro_set_str(v, CS_PC_LAST_NAME, "Lovelace \xc3\xa9"));
        OK(cs_avro_set_str(v, CS_PC_PHONE, "+44 20 7946 0000"));
        OK(cs_avro_set_str(v, CS_PC_JOB_TITLE, ""));
        OK(cs_avro_set_bool(v, CS_PC_OPTED_OUT, true));
        OK(cs_avro_set_int(v, CS_PC_SCORE, -42));
        OK(cs_avro_set_str(v, CS_PC_GRADE, "A-"));
        OK(cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, 77));
        OK(cs_avro_set_str(v, CS_PC_CRM_LEAD_ID, "00Q000000000001AAA"));
        OK(cs_avro_set_str(v, CS_PC_CRM_OWNER_ID, "005000000000001AAA"));
        OK(cs_avro_map_set_str(v, CS_PC_CUSTOM_FIELDS, "Industry__c", "Computing"));
        OK(cs_avro_map_set_str(v, CS_PC_CUSTOM_FIELDS, "Empty__c", NULL));
        OK(cs_avro_array_add_str(v, CS_PC_CHANGED_FIELDS, "first_name"));
        OK(cs_avro_array_add_str(v, CS_PC_CHANGED_FIELDS, "assigned_user_id"));
        OK(cs_avro_set_long(v, CS_PC_UPDATED_BY_ID, 101));
        break;
    case CS_AVRO_ACTIVITY:
        OK(cs_avro_set_str(v, CS_ACT_EVENT_ID, "act-9"));
        OK(cs_avro_set_str(v, CS_ACT_PROSPECT_KEY, "bob@example.org"));
        OK(cs_avro_set_long(v, CS_ACT_PROSPECT_ID, 5));
        OK(cs_avro_set_str(v, CS_ACT_EMAIL, "bob@example.org"));
        OK(cs_avro_set_enum(v, CS_ACT_TYPE, CS_ACTIVITY_TRACKED_LINK_CLICK));
        OK(cs_avro_set_bool(v, CS_ACT_IDENTIFIED, true));
        OK(cs_avro_set_int(v, CS_ACT_SCORE_DELTA, 3));
        OK(cs_avro_set_long(v, CS_ACT_OCCURRED_AT, 1600000000000LL));
        OK(cs_avro_set_long(v, CS_ACT_EVENT_TIME, 1600000000001LL));
        OK(cs_avro_set_long(v, CS_ACT_SOURCE_ACTIVITY_ID, INT64_MAX));
        break;
    case CS_AVRO_CRM_CHANGE:
        OK(cs_avro_set_str(v, CS_CRM_EVENT_ID, "crm-1"));
        OK(cs_avro_set_str(v, CS_CRM_PROSPECT_KEY, ""));
        OK(cs_avro_set_enum(v, CS_CRM_OBJECT, CS_OBJECT_CONTACT));
        OK(cs_avro_set_str(v, CS_CRM_CRM_ID, "003000000000042AAA"));
        OK(cs_avro_set_str(v, CS_CRM_OWNER_ID, "005000000000002AAA"));
        OK(cs_avro_set_str(v, CS_CRM_FIRST_NAME, "Grace"));
        OK(cs_avro_set_str(v, CS_CRM_LAST_NAME, "Hopper"));
        OK(cs_avro_set_str(v, CS_CRM_COMPANY, "Navy"));
        OK(cs_avro_set_str(v, CS_CRM_PHONE, "555"));
        OK(cs_avro_set_str(v, CS_CRM_TITLE, "RADM"));
        OK(cs_avro_map_set_str(v, CS_CRM_CUSTOM_FIELDS, "Region__c", "EMEA"));
        OK(cs_avro_array_add_str(v, CS_CRM_CHANGED_FIELDS, "Title"));
        OK(cs_avro_set_long(v, CS_CRM_LAST_MODIFIED_DATE, 1650000000000LL));
        OK(cs_avro_set_long(v, CS_CRM_SYSTEM_MODSTAMP, 1650000000500LL));
        OK(cs_avro_set_str(v, CS_CRM_LAST_MODIFIED_BY_ID, "005CONNECTORUSERAA"));
        OK(cs_avro_set_str(v, CS_CRM_EXTERNAL_ID, "123456789012"));
        OK(cs_avro_set_bool(v, CS_CRM_DELETED, true));
        OK(cs_avro_set_long(v, CS_CRM_EVENT_TIME, 1650000000600LL));
        break;
    case CS_AVRO_SYNC_STATE:
        OK(cs_avro_set_str(v, CS_SS_PROSPECT_KEY, "ada@example.com"));
        OK(cs_avro_set_long(v, CS_SS_PROSPECT_ID, 1));
        OK(cs_avro_set_long(v, CS_SS_MARKETING_WATERMARK, 1700000000123LL));
        OK(cs_avro_set_long(v, CS_SS_CRM_WATERMARK, 1650000000000LL));
        OK(cs_avro_set_long(v, CS_SS_UPDATED_AT, 1700000000123LL));
        OK(cs_avro_set_long(v, CS_SS_CRM_LAST_MODIFIED, 1650000000000LL));
        OK(cs_avro_set_enum(v, CS_SS_CRM_OBJECT, CS_OBJECT_LEAD));
        OK(cs_avro_set_str(v, CS_SS_CRM_ID, "00Q000000000001AAA"));
        OK(cs_avro_set_long(v, CS_SS_ASSIGNED_USER_ID, 77));
        OK(cs_avro_set_bool(v, CS_SS_DO_NOT_SYNC, true));
        OK(cs_avro_array_add(v, CS_SS_FIELDS, &item));
        OK(cs_avro_set_str(&item, CS_FS_NAME, "email"));
        OK(cs_avro_set_str(&item, CS_FS_VALUE, "ada@example.com"));
        OK(cs_avro_set_long(&item, CS_FS_TIME, 1700000000000LL));
        OK(cs_avro_set_enum(&item, CS_FS_SIDE, CS_SIDE_MARKETING));
        OK(cs_avro_set_long(&item, CS_FS_HASH, 0xfedcba98));
        OK(cs_avro_array_add(v, CS_SS_FIELDS, &item));
        OK(cs_avro_set_str(&item, CS_FS_NAME, "custom:Region__c"));
        OK(cs_avro_set_long(&item, CS_FS_TIME, 1650000000000LL));
        OK(cs_avro_set_enum(&item, CS_FS_SIDE, CS_SIDE_CRM));
        OK(cs_avro_set_str(v, CS_SS_LAST_RESULT, "OK"));
        OK(cs_avro_set_bool(v, CS_SS_PENDING, true));
        break;
    case CS_AVRO_SYNC_ERROR:
        OK(cs_avro_set_str(v, CS_SE_ERROR_ID, "err-7"));
        OK(cs_avro_set_str(v, CS_SE_PROSPECT_KEY, "ada@example.com"));
        OK(cs_avro_set_enum(v, CS_SE_DIRECTION, CS_DIRECTION_INPUT));
        OK(cs_avro_set_str(v, CS_SE_CODE, "POISON_UNKNOWN_SCHEMA"));
        OK(cs_avro_set_str(v, CS_SE_MESSAGE, "fingerprint 0123456789abcdef unknown"));
        OK(cs_avro_set_int(v, CS_SE_ATTEMPTS, 4));
        OK(cs_avro_set_long(v, CS_SE_FIRST_AT, 1));
        OK(cs_avro_set_long(v, CS_SE_LAST_AT, 2));
        OK(cs_avro_set_str(v, CS_SE_TOPIC, "crmsync.prospect-changes"));
        OK(cs_avro_set_int(v, CS_SE_PARTITION, 11));
        OK(cs_avro_set_long(v, CS_SE_OFFSET, 1234567));
        OK(cs_avro_set_bytes(v, CS_SE_PAYLOAD, payload, sizeof payload));
        break;
    case CS_AVRO_CONTROL:
        OK(cs_avro_set_str(v, CS_CTL_COMMAND_ID, "cmd-1"));
        OK(cs_avro_set_enum(v, CS_CTL_COMMAND, CS_COMMAND_SYNC_NOW));
        OK(cs_avro_array_add_str(v, CS_CTL_PROSPECT_KEYS, "a@x.io"));
        OK(cs_avro_array_add_str(v, CS_CTL_PROSPECT_KEYS, "b@x.io"));
        OK(cs_avro_set_long(v, CS_CTL_ISSUED_AT, 1700000000000LL));
        OK(cs_avro_set_str(v, CS_CTL_ISSUED_BY, "admin"));
        break;
    }
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "avro-sample: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int cmd_write(cs_avro_registry_t *reg, const char *dir)
{
    cs_avro_encoder_t *so = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_encoder_t *cf = cs_avro_encoder_new(reg, CS_AVRO_CONFLUENT);
    int rc = 0;
    if (!so || !cf)
        return 1;
    for (int i = 0; i < CS_AVRO_N_SCHEMAS && !rc; i++) {
        char path[4096];
        const char *name = strchr(cs_avro_schema_name(i), '.') + 1;
        const void *frame;
        size_t len;
        OK(cs_avro_registry_set_id(reg, i, 1000 + i));
        avro_value_t *v = cs_avro_encoder_value(so, i);
        fill(i, v);
        if (cs_avro_encode(so, v, &frame, &len)) {
            fprintf(stderr, "avro-sample: %s: %s\n", name, cs_avro_encoder_error(so));
            rc = 1;
            break;
        }
        snprintf(path, sizeof path, "%s/%s.bin", dir, name);
        rc |= write_file(path, frame, len);
        if (cs_avro_encode(cf, v, &frame, &len)) {
            fprintf(stderr, "avro-sample: %s: %s\n", name, cs_avro_encoder_error(cf));
            rc = 1;
            break;
        }
        snprintf(path, sizeof path, "%s/%s.confluent.bin", dir, name);
        rc |= write_file(path, frame, len);
    }
    cs_avro_encoder_destroy(so);
    cs_avro_encoder_destroy(cf);
    return rc;
}

static int cmd_recode(cs_avro_registry_t *reg, const char *in, const char *out)
{
    FILE *f = fopen(in, "rb");
    static unsigned char buf[1 << 20];
    if (!f) {
        fprintf(stderr, "avro-sample: cannot read %s\n", in);
        return 1;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_decoded_t d;
    const void *frame;
    size_t len;
    int rc = 1;
    if (!dec || !enc)
        goto out;
    if ((rc = cs_avro_decode(dec, buf, n, &d))) {
        fprintf(stderr, "avro-sample: %s: %s: %s\n", in, cs_err_name(rc),
                cs_avro_decoder_error(dec));
        goto out;
    }
    if ((rc = cs_avro_encode(enc, d.value, &frame, &len))) {
        fprintf(stderr, "avro-sample: %s: %s\n", in, cs_avro_encoder_error(enc));
        goto out;
    }
    rc = write_file(out, frame, len);
    printf("%s %s\n", cs_avro_schema_name(d.schema), d.resolved ? "resolved" : "current");
out:
    cs_avro_decoder_destroy(dec);
    cs_avro_encoder_destroy(enc);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    char err[512];
    int rc;
    cs_avro_registry_t *reg = cs_avro_registry_new(err, sizeof err);
    if (!reg) {
        fprintf(stderr, "avro-sample: %s\n", err);
        return 1;
    }
    if (argc == 3 && !strcmp(argv[1], "write")) {
        rc = cmd_write(reg, argv[2]);
    } else if (argc == 4 && !strcmp(argv[1], "recode")) {
        rc = cmd_recode(reg, argv[2], argv[3]);
    } else {
        fprintf(stderr, "usage: %s write DIR | recode IN OUT\n", argv[0]);
        rc = 2;
    }
    cs_avro_registry_destroy(reg);
    return rc ? rc : failures_g ? 1 : 0;
}
