/* Unit tests of cs_avro: schemas, fingerprints, framing, round trips, evolution, hostile input. */
#include "cs_avro.h"
#include "cs_err.h"
#include "cs_test.h"

#include <avro.h>

#define OK(call) CHECK_INT((call), 0)

/* Expected CRC-64-AVRO fingerprints, computed independently with Python fastavro 1.13.1:
 *   s = fastavro.schema.parse_schema(json.load(open(path)))
 *   h = fastavro.schema.fingerprint(fastavro.schema.to_parsing_canonical_form(s), "CRC-64-AVRO")
 *   int.from_bytes(bytes.fromhex(h), "little")
 * (fastavro prints the 8 bytes in wire order, i.e. little-endian.) Re-run and update these
 * when a schema changes on purpose; a change here means old readers no longer know the new
 * writer schema. */
static const uint64_t expected_fp[CS_AVRO_N_SCHEMAS] = {
    [CS_AVRO_PROSPECT_CHANGE] = 0x3f3cd51e66ebfaf4ULL, [CS_AVRO_ACTIVITY] = 0x6d351b9ccfb90d1bULL,
    [CS_AVRO_CRM_CHANGE] = 0xdf5108184d8e190fULL,      [CS_AVRO_SYNC_STATE] = 0xe8697344b7eef4bfULL,
    [CS_AVRO_SYNC_ERROR] = 0x28e88f4eb9a4238eULL,      [CS_AVRO_CONTROL] = 0x3ec704aedc83a418ULL,
};
static const uint64_t expected_fp_pc_v1 = 0xa6433d79f3f499e2ULL; /* schemas/old/...v1.avsc */
static const uint64_t expected_fp_pc_v2 = 0xf3a5ea2daf563c7eULL; /* schemas/old/...v2.avsc */

/* ---- Counting allocator: proves the decode hot path does not allocate ---------------- */

/* ---- Helpers ---------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    REQUIRE(b && fread(b, 1, (size_t)n, f) == (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

static uint64_t rng_g = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    return cs_test_xorshift(&rng_g);
}

static bool str_is(const avro_value_t *v, int i, const char *want)
{
    size_t len = 0;
    const char *s = cs_avro_get_str(v, i, &len);
    if (!want)
        return s == NULL;
    return s && len == strlen(want) && !strcmp(s, want);
}

static bool long_is(const avro_value_t *v, int i, int64_t want)
{
    int64_t x = 0;
    return cs_avro_get_long(v, i, &x) && x == want;
}

static bool bool_is(const avro_value_t *v, int i, bool want)
{
    bool b = !want;
    return cs_avro_get_bool(v, i, &b) && b == want;
}

/* ---- Populating and checking each schema ------------------------------------------------ */

static void fill_pc(avro_value_t *v, bool rich)
{
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
    OK(cs_avro_set_str(v, CS_PC_COMPANY, NULL));
    OK(cs_avro_set_strn(v, CS_PC_PHONE, "+44 20 7946 0000xyz", 16));
    OK(cs_avro_set_str(v, CS_PC_JOB_TITLE, ""));
    OK(cs_avro_set_bool(v, CS_PC_OPTED_OUT, true));
    OK(cs_avro_set_int(v, CS_PC_SCORE, -42));
    OK(cs_avro_set_str(v, CS_PC_GRADE, "A-"));
    OK(cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, 77));
    OK(cs_avro_set_bool(v, CS_PC_DO_NOT_SYNC, false));
    OK(cs_avro_set_str(v, CS_PC_CRM_LEAD_ID, "00Q000000000001AAA"));
    OK(cs_avro_set_null(v, CS_PC_CRM_CONTACT_ID));
    OK(cs_avro_set_str(v, CS_PC_CRM_OWNER_ID, "005000000000001AAA"));
    if (rich) {
        OK(cs_avro_map_set_str(v, CS_PC_CUSTOM_FIELDS, "Industry__c", "Computing"));
        OK(cs_avro_map_set_str(v, CS_PC_CUSTOM_FIELDS, "Empty__c", NULL));
        OK(cs_avro_array_add_str(v, CS_PC_CHANGED_FIELDS, "first_name"));
        OK(cs_avro_array_add_str(v, CS_PC_CHANGED_FIELDS, "assigned_user_id"));
        OK(cs_avro_set_long(v, CS_PC_UPDATED_BY_ID, 101));
    }
}

static void check_pc(const avro_value_t *v, bool rich)
{
    const char *s = NULL;
    CHECK(str_is(v, CS_PC_EVENT_ID, "evt-0001"));
    CHECK(str_is(v, CS_PC_PROSPECT_KEY, "ada@example.com"));
    CHECK(long_is(v, CS_PC_PROSPECT_ID, 123456789012LL));
    CHECK_INT(cs_avro_get_enum(v, CS_PC_CAUSE), CS_CAUSE_ASSIGNMENT);
    CHECK(long_is(v, CS_PC_UPDATED_AT, 1700000000123LL));
    CHECK(long_is(v, CS_PC_LAST_ACTIVITY_AT, 1700000000456LL));
    CHECK(long_is(v, CS_PC_EVENT_TIME, 1700000000999LL));
    CHECK(str_is(v, CS_PC_EMAIL, "Ada@Example.com"));
    CHECK(str_is(v, CS_PC_FIRST_NAME, "Ada"));
    CHECK(str_is(v, CS_PC_LAST_NAME, "Lovelace \xc3\xa9"));
    CHECK(cs_avro_is_null(v, CS_PC_COMPANY));
    CHECK(str_is(v, CS_PC_COMPANY, NULL));
    CHECK(str_is(v, CS_PC_PHONE, "+44 20 7946 0000"));
    CHECK(str_is(v, CS_PC_JOB_TITLE, ""));
    CHECK(!cs_avro_is_null(v, CS_PC_JOB_TITLE));
    CHECK(bool_is(v, CS_PC_OPTED_OUT, true));
    int32_t score = 0;
    CHECK(cs_avro_get_int(v, CS_PC_SCORE, &score) && score == -42);
    CHECK(long_is(v, CS_PC_SCORE, -42));
    CHECK(str_is(v, CS_PC_GRADE, "A-"));
    CHECK(long_is(v, CS_PC_ASSIGNED_USER_ID, 77));
    CHECK(bool_is(v, CS_PC_DO_NOT_SYNC, false));
    CHECK(str_is(v, CS_PC_CRM_LEAD_ID, "00Q000000000001AAA"));
    CHECK(cs_avro_is_null(v, CS_PC_CRM_CONTACT_ID));
    CHECK(str_is(v, CS_PC_CRM_OWNER_ID, "005000000000001AAA"));
    if (!rich) {
        CHECK_INT(cs_avro_count(v, CS_PC_CUSTOM_FIELDS), 0);
        CHECK_INT(cs_avro_count(v, CS_PC_CHANGED_FIELDS), 0);
        CHECK(cs_avro_is_null(v, CS_PC_UPDATED_BY_ID));
        return;
    }
    CHECK(long_is(v, CS_PC_UPDATED_BY_ID, 101));
    CHECK_INT(cs_avro_count(v, CS_PC_CUSTOM_FIELDS), 2);
    CHECK(cs_avro_map_find(v, CS_PC_CUSTOM_FIELDS, "Industry__c", &s) && s &&
          !strcmp(s, "Computing"));
    s = "x";
    CHECK(cs_avro_map_find(v, CS_PC_CUSTOM_FIELDS, "Empty__c", &s) && s == NULL);
    CHECK(!cs_avro_map_find(v, CS_PC_CUSTOM_FIELDS, "Absent__c", &s));
    int seen = 0;
    for (size_t k = 0; k < cs_avro_count(v, CS_PC_CUSTOM_FIELDS); k++) {
        const char *key = NULL, *val = NULL;
        CHECK(cs_avro_get_map_entry(v, CS_PC_CUSTOM_FIELDS, k, &key, &val));
        if (key && !strcmp(key, "Industry__c") && val && !strcmp(val, "Computing"))
            seen |= 1;
        if (key && !strcmp(key, "Empty__c") && !val)
            seen |= 2;
    }
    CHECK_INT(seen, 3);
    CHECK(!cs_avro_get_map_entry(v, CS_PC_CUSTOM_FIELDS, 2, NULL, NULL));
    CHECK_INT(cs_avro_count(v, CS_PC_CHANGED_FIELDS), 2);
    CHECK_STR(cs_avro_get_item_str(v, CS_PC_CHANGED_FIELDS, 0, NULL), "first_name");
    CHECK_STR(cs_avro_get_item_str(v, CS_PC_CHANGED_FIELDS, 1, NULL), "assigned_user_id");
    CHECK(cs_avro_get_item_str(v, CS_PC_CHANGED_FIELDS, 2, NULL) == NULL);
}

static void fill_act(avro_value_t *v)
{
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
}

static void check_act(const avro_value_t *v)
{
    CHECK(str_is(v, CS_ACT_EVENT_ID, "act-9"));
    CHECK(str_is(v, CS_ACT_PROSPECT_KEY, "bob@example.org"));
    CHECK(long_is(v, CS_ACT_PROSPECT_ID, 5));
    CHECK(str_is(v, CS_ACT_EMAIL, "bob@example.org"));
    CHECK_INT(cs_avro_get_enum(v, CS_ACT_TYPE), CS_ACTIVITY_TRACKED_LINK_CLICK);
    CHECK(bool_is(v, CS_ACT_IDENTIFIED, true));
    CHECK(long_is(v, CS_ACT_SCORE_DELTA, 3));
    CHECK(long_is(v, CS_ACT_OCCURRED_AT, 1600000000000LL));
    CHECK(long_is(v, CS_ACT_EVENT_TIME, 1600000000001LL));
    CHECK(long_is(v, CS_ACT_SOURCE_ACTIVITY_ID, INT64_MAX));
}

static void fill_crm(avro_value_t *v)
{
    OK(cs_avro_set_str(v, CS_CRM_EVENT_ID, "crm-1"));
    OK(cs_avro_set_str(v, CS_CRM_PROSPECT_KEY, ""));
    OK(cs_avro_set_enum(v, CS_CRM_OBJECT, CS_OBJECT_CONTACT));
    OK(cs_avro_set_str(v, CS_CRM_CRM_ID, "003000000000042AAA"));
    OK(cs_avro_set_str(v, CS_CRM_OWNER_ID, "005000000000002AAA"));
    OK(cs_avro_set_null(v, CS_CRM_EMAIL));
    OK(cs_avro_set_str(v, CS_CRM_FIRST_NAME, "Grace"));
    OK(cs_avro_set_str(v, CS_CRM_LAST_NAME, "Hopper"));
    OK(cs_avro_set_str(v, CS_CRM_COMPANY, "Navy"));
    OK(cs_avro_set_str(v, CS_CRM_PHONE, "555"));
    OK(cs_avro_set_str(v, CS_CRM_TITLE, "RADM"));
    OK(cs_avro_set_bool(v, CS_CRM_OPTED_OUT, false));
    OK(cs_avro_map_set_str(v, CS_CRM_CUSTOM_FIELDS, "Region__c", "EMEA"));
    OK(cs_avro_array_add_str(v, CS_CRM_CHANGED_FIELDS, "Title"));
    OK(cs_avro_set_long(v, CS_CRM_LAST_MODIFIED_DATE, 1650000000000LL));
    OK(cs_avro_set_long(v, CS_CRM_SYSTEM_MODSTAMP, 1650000000500LL));
    OK(cs_avro_set_str(v, CS_CRM_LAST_MODIFIED_BY_ID, "005CONNECTORUSERAA"));
    OK(cs_avro_set_str(v, CS_CRM_EXTERNAL_ID, "123456789012"));
    OK(cs_avro_set_bool(v, CS_CRM_DELETED, true));
    OK(cs_avro_set_long(v, CS_CRM_EVENT_TIME, 1650000000600LL));
}

static void check_crm(const avro_value_t *v)
{
    const char *s = NULL;
    CHECK(str_is(v, CS_CRM_EVENT_ID, "crm-1"));
    CHECK(str_is(v, CS_CRM_PROSPECT_KEY, ""));
    CHECK_INT(cs_avro_get_enum(v, CS_CRM_OBJECT), CS_OBJECT_CONTACT);
    CHECK(str_is(v, CS_CRM_CRM_ID, "003000000000042AAA"));
    CHECK(str_is(v, CS_CRM_OWNER_ID, "005000000000002AAA"));
    CHECK(cs_avro_is_null(v, CS_CRM_EMAIL));
    CHECK(str_is(v, CS_CRM_FIRST_NAME, "Grace"));
    CHECK(str_is(v, CS_CRM_LAST_NAME, "Hopper"));
    CHECK(str_is(v, CS_CRM_COMPANY, "Navy"));
    CHECK(str_is(v, CS_CRM_PHONE, "555"));
    CHECK(str_is(v, CS_CRM_TITLE, "RADM"));
    CHECK(bool_is(v, CS_CRM_OPTED_OUT, false));
    CHECK(cs_avro_map_find(v, CS_CRM_CUSTOM_FIELDS, "Region__c", &s) && s && !strcmp(s, "EMEA"));
    CHECK_STR(cs_avro_get_item_str(v, CS_CRM_CHANGED_FIELDS, 0, NULL), "Title");
    CHECK(long_is(v, CS_CRM_LAST_MODIFIED_DATE, 1650000000000LL));
    CHECK(long_is(v, CS_CRM_SYSTEM_MODSTAMP, 1650000000500LL));
    CHECK(str_is(v, CS_CRM_LAST_MODIFIED_BY_ID, "005CONNECTORUSERAA"));
    CHECK(str_is(v, CS_CRM_EXTERNAL_ID, "123456789012"));
    CHECK(bool_is(v, CS_CRM_DELETED, true));
    CHECK(long_is(v, CS_CRM_EVENT_TIME, 1650000000600LL));
}

static void fill_ss(avro_value_t *v)
{
    avro_value_t item;
    OK(cs_avro_set_str(v, CS_SS_PROSPECT_KEY, "ada@example.com"));
    OK(cs_avro_set_long(v, CS_SS_PROSPECT_ID, 1));
    OK(cs_avro_set_long(v, CS_SS_MARKETING_WATERMARK, 1700000000123LL));
    OK(cs_avro_set_long(v, CS_SS_CRM_WATERMARK, 1650000000000LL));
    OK(cs_avro_set_long(v, CS_SS_UPDATED_AT, 1700000000123LL));
    OK(cs_avro_set_null(v, CS_SS_LAST_ACTIVITY_AT));
    OK(cs_avro_set_long(v, CS_SS_CRM_LAST_MODIFIED, 1650000000000LL));
    OK(cs_avro_set_enum(v, CS_SS_CRM_OBJECT, CS_OBJECT_LEAD));
    OK(cs_avro_set_str(v, CS_SS_CRM_ID, "00Q000000000001AAA"));
    OK(cs_avro_set_long(v, CS_SS_ASSIGNED_USER_ID, 77));
    OK(cs_avro_set_bool(v, CS_SS_DO_NOT_SYNC, true));
    OK(cs_avro_array_add(v, CS_SS_FIELDS, &item));
    CHECK(cs_avro_is_null(&item, CS_FS_VALUE)); /* fresh items are zeroed */
    OK(cs_avro_set_str(&item, CS_FS_NAME, "email"));
    OK(cs_avro_set_str(&item, CS_FS_VALUE, "ada@example.com"));
    OK(cs_avro_set_long(&item, CS_FS_TIME, 1700000000000LL));
    OK(cs_avro_set_enum(&item, CS_FS_SIDE, CS_SIDE_MARKETING));
    OK(cs_avro_set_long(&item, CS_FS_HASH, 0xfedcba98));
    OK(cs_avro_array_add(v, CS_SS_FIELDS, &item));
    OK(cs_avro_set_str(&item, CS_FS_NAME, "custom:Region__c"));
    OK(cs_avro_set_null(&item, CS_FS_VALUE));
    OK(cs_avro_set_long(&item, CS_FS_TIME, 1650000000000LL));
    OK(cs_avro_set_enum(&item, CS_FS_SIDE, CS_SIDE_CRM));
    OK(cs_avro_set_str(v, CS_SS_LAST_RESULT, "OK"));
    OK(cs_avro_set_bool(v, CS_SS_PENDING, false));
}

static void check_ss(const avro_value_t *v)
{
    avro_value_t item;
    CHECK(str_is(v, CS_SS_PROSPECT_KEY, "ada@example.com"));
    CHECK(long_is(v, CS_SS_PROSPECT_ID, 1));
    CHECK(long_is(v, CS_SS_MARKETING_WATERMARK, 1700000000123LL));
    CHECK(long_is(v, CS_SS_CRM_WATERMARK, 1650000000000LL));
    CHECK(long_is(v, CS_SS_UPDATED_AT, 1700000000123LL));
    CHECK(cs_avro_is_null(v, CS_SS_LAST_ACTIVITY_AT));
    CHECK(long_is(v, CS_SS_CRM_LAST_MODIFIED, 1650000000000LL));
    CHECK_INT(cs_avro_get_enum(v, CS_SS_CRM_OBJECT), CS_OBJECT_LEAD);
    CHECK(str_is(v, CS_SS_CRM_ID, "00Q000000000001AAA"));
    CHECK(long_is(v, CS_SS_ASSIGNED_USER_ID, 77));
    CHECK(bool_is(v, CS_SS_DO_NOT_SYNC, true));
    CHECK_INT(cs_avro_count(v, CS_SS_FIELDS), 2);
    OK(cs_avro_get_item(v, CS_SS_FIELDS, 0, &item, NULL));
    CHECK(str_is(&item, CS_FS_NAME, "email"));
    CHECK(str_is(&item, CS_FS_VALUE, "ada@example.com"));
    CHECK(long_is(&item, CS_FS_TIME, 1700000000000LL));
    CHECK_INT(cs_avro_get_enum(&item, CS_FS_SIDE), CS_SIDE_MARKETING);
    CHECK(long_is(&item, CS_FS_HASH, 0xfedcba98));
    OK(cs_avro_get_item(v, CS_SS_FIELDS, 1, &item, NULL));
    CHECK(str_is(&item, CS_FS_NAME, "custom:Region__c"));
    CHECK(cs_avro_is_null(&item, CS_FS_VALUE));
    CHECK_INT(cs_avro_get_enum(&item, CS_FS_SIDE), CS_SIDE_CRM);
    CHECK(long_is(&item, CS_FS_HASH, 0)); /* zeroed by cs_avro_array_add */
    CHECK_INT(cs_avro_get_item(v, CS_SS_FIELDS, 2, &item, NULL), CS_ERR_NOT_FOUND);
    CHECK(str_is(v, CS_SS_LAST_RESULT, "OK"));
    CHECK(bool_is(v, CS_SS_PENDING, false));
}

static const unsigned char poison[] = {0xde, 0xad, 0x00, 0xbe, 0xef};

static void fill_se(avro_value_t *v)
{
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
    OK(cs_avro_set_bytes(v, CS_SE_PAYLOAD, poison, sizeof poison));
}

static void check_se(const avro_value_t *v)
{
    size_t len = 0;
    CHECK(str_is(v, CS_SE_ERROR_ID, "err-7"));
    CHECK(str_is(v, CS_SE_PROSPECT_KEY, "ada@example.com"));
    CHECK_INT(cs_avro_get_enum(v, CS_SE_DIRECTION), CS_DIRECTION_INPUT);
    CHECK(str_is(v, CS_SE_CODE, "POISON_UNKNOWN_SCHEMA"));
    CHECK(str_is(v, CS_SE_MESSAGE, "fingerprint 0123456789abcdef unknown"));
    CHECK(long_is(v, CS_SE_ATTEMPTS, 4));
    CHECK(long_is(v, CS_SE_FIRST_AT, 1));
    CHECK(long_is(v, CS_SE_LAST_AT, 2));
    CHECK(str_is(v, CS_SE_TOPIC, "crmsync.prospect-changes"));
    CHECK(long_is(v, CS_SE_PARTITION, 11));
    CHECK(long_is(v, CS_SE_OFFSET, 1234567));
    const void *p = cs_avro_get_bytes(v, CS_SE_PAYLOAD, &len);
    CHECK(p && len == sizeof poison && !memcmp(p, poison, len));
}

static void fill_ctl(avro_value_t *v)
{
    OK(cs_avro_set_str(v, CS_CTL_COMMAND_ID, "cmd-1"));
    OK(cs_avro_set_enum(v, CS_CTL_COMMAND, CS_COMMAND_SYNC_NOW));
    OK(cs_avro_array_add_str(v, CS_CTL_PROSPECT_KEYS, "a@x.io"));
    OK(cs_avro_array_add_str(v, CS_CTL_PROSPECT_KEYS, "b@x.io"));
    OK(cs_avro_set_long(v, CS_CTL_ISSUED_AT, 1700000000000LL));
    OK(cs_avro_set_str(v, CS_CTL_ISSUED_BY, "admin"));
}

static void check_ctl(const avro_value_t *v)
{
    CHECK(str_is(v, CS_CTL_COMMAND_ID, "cmd-1"));
    CHECK_INT(cs_avro_get_enum(v, CS_CTL_COMMAND), CS_COMMAND_SYNC_NOW);
    CHECK_INT(cs_avro_count(v, CS_CTL_PROSPECT_KEYS), 2);
    CHECK_STR(cs_avro_get_item_str(v, CS_CTL_PROSPECT_KEYS, 1, NULL), "b@x.io");
    CHECK_INT(cs_avro_count(v, CS_CTL_ERROR_IDS), 0);
    CHECK(long_is(v, CS_CTL_ISSUED_AT, 1700000000000LL));
    CHECK(str_is(v, CS_CTL_ISSUED_BY, "admin"));
}

static void fill(int schema, avro_value_t *v)
{
    switch (schema) {
    case CS_AVRO_PROSPECT_CHANGE:
        fill_pc(v, true);
        break;
    case CS_AVRO_ACTIVITY:
        fill_act(v);
        break;
    case CS_AVRO_CRM_CHANGE:
        fill_crm(v);
        break;
    case CS_AVRO_SYNC_STATE:
        fill_ss(v);
        break;
    case CS_AVRO_SYNC_ERROR:
        fill_se(v);
        break;
    case CS_AVRO_CONTROL:
        fill_ctl(v);
        break;
    }
}

static void check(int schema, const avro_value_t *v)
{
    switch (schema) {
    case CS_AVRO_PROSPECT_CHANGE:
        check_pc(v, true);
        break;
    case CS_AVRO_ACTIVITY:
        check_act(v);
        break;
    case CS_AVRO_CRM_CHANGE:
        check_crm(v);
        break;
    case CS_AVRO_SYNC_STATE:
        check_ss(v);
        break;
    case CS_AVRO_SYNC_ERROR:
        check_se(v);
        break;
    case CS_AVRO_CONTROL:
        check_ctl(v);
        break;
    }
}

/* Frames of every schema, kept for the hostile-input tests. */
static unsigned char *frames_g[CS_AVRO_N_SCHEMAS];
static size_t frame_len_g[CS_AVRO_N_SCHEMAS];

/* ---- Tests ----------------------------------------------------------------------------- */

static void test_fingerprints(cs_avro_registry_t *reg)
{
    uint64_t fp = 0;
    int schema = -1;
    bool old = true;
    char err[256];
    for (int i = 0; i < CS_AVRO_N_SCHEMAS; i++) {
        if (cs_avro_fingerprint(reg, i) != expected_fp[i])
            fprintf(stderr, "%s: fingerprint %016llx, expected %016llx\n", cs_avro_schema_name(i),
                    (unsigned long long)cs_avro_fingerprint(reg, i),
                    (unsigned long long)expected_fp[i]);
        CHECK(cs_avro_fingerprint(reg, i) == expected_fp[i]);
        OK(cs_avro_lookup_fingerprint(reg, expected_fp[i], &schema, &old));
        CHECK_INT(schema, i);
        CHECK(!old);
        CHECK(cs_avro_schema_by_id(reg, i) != NULL);
        CHECK_INT(cs_avro_schema_lookup(reg, cs_avro_schema_name(i)), i);
    }
    OK(cs_avro_lookup_fingerprint(reg, expected_fp_pc_v1, &schema, &old));
    CHECK_INT(schema, CS_AVRO_PROSPECT_CHANGE);
    CHECK(old);
    OK(cs_avro_lookup_fingerprint(reg, expected_fp_pc_v2, &schema, &old));
    CHECK_INT(schema, CS_AVRO_PROSPECT_CHANGE);
    CHECK(old);
    CHECK_INT(cs_avro_lookup_fingerprint(reg, 0x1234, &schema, &old), CS_ERR_UNKNOWN_SCHEMA);
    CHECK(cs_avro_schema(reg, "ProspectChange") == cs_avro_schema_by_id(reg, 0));
    CHECK(cs_avro_schema(reg, "crmsync.Control") == cs_avro_schema_by_id(reg, CS_AVRO_CONTROL));
    CHECK(cs_avro_schema(reg, "Nope") == NULL);
    CHECK_STR(cs_avro_canonical_form(reg, CS_AVRO_CONTROL),
              "{\"name\":\"crmsync.Control\",\"type\":\"record\",\"fields\":[{\"name\":"
              "\"command_id\",\"type\":\"string\"},{\"name\":\"command\",\"type\":{\"name\":"
              "\"crmsync.ControlCommand\",\"type\":\"enum\",\"symbols\":[\"PAUSE\",\"UNPAUSE\","
              "\"SYNC_NOW\",\"RETRY_ERROR\"]}},{\"name\":\"prospect_keys\",\"type\":{\"type\":"
              "\"array\",\"items\":\"string\"}},{\"name\":\"error_ids\",\"type\":{\"type\":"
              "\"array\",\"items\":\"string\"}},{\"name\":\"issued_at\",\"type\":\"long\"},"
              "{\"name\":\"issued_by\",\"type\":\"string\"}]}");

    /* Primitives (the spec's test vectors; fastavro agrees) and a schema that exercises the
     * canonical-form rules: namespaces inherited, overridden and dotted, references by short
     * and full name, doc/aliases/default/logicalType stripped, fixed size, nested union. */
    static const struct {
        const char *json;
        uint64_t fp;
    } cases[] = {
        {"\"null\"", 0x63dd24e7cc258f8aULL},  {"\"boolean\"", 0x9f42fc78a4d4f764ULL},
        {"\"int\"", 0x7275d51a3f395c8fULL},   {"{\"type\": \"long\"}", 0xd054e14493f41db7ULL},
        {"\"float\"", 0x4d7c02cb3ea8d790ULL}, {"\"double\"", 0x8e7535c032ab957eULL},
        {"\"bytes\"", 0x4fc016dac3201965ULL}, {"\"string\"", 0x8f014872634503c7ULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *pcf = NULL;
        OK(cs_avro_fingerprint_json(cases[i].json, strlen(cases[i].json), &fp, &pcf, err,
                                    sizeof err));
        CHECK(fp == cases[i].fp);
        free(pcf);
    }
    const char *tricky =
        "{\"type\":\"record\",\"name\":\"Outer\",\"namespace\":\"a.b\",\"doc\":\"x\",\"aliases\":"
        "[\"Z\"],\"fields\":[{\"name\":\"f1\",\"type\":{\"type\":\"fixed\",\"name\":\"Md5\","
        "\"size\":16,\"namespace\":\"c\"}},{\"name\":\"f2\",\"type\":\"c.Md5\"},{\"name\":\"f3\","
        "\"type\":{\"type\":\"record\",\"name\":\"x.Inner\",\"fields\":[{\"name\":\"e\",\"type\":"
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"],\"doc\":\"d\"}}]}},{\"name\":"
        "\"f4\",\"type\":[\"null\",\"x.E\",{\"type\":\"map\",\"values\":{\"type\":\"array\","
        "\"items\":\"Outer\"}}],\"default\":null},{\"name\":\"f5\",\"type\":{\"type\":\"int\","
        "\"logicalType\":\"date\"}}]}";
    char *pcf = NULL;
    OK(cs_avro_fingerprint_json(tricky, strlen(tricky), &fp, &pcf, err, sizeof err));
    CHECK_STR(pcf, "{\"name\":\"a.b.Outer\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
                   "\"type\":{\"name\":\"c.Md5\",\"type\":\"fixed\",\"size\":16}},{\"name\":"
                   "\"f2\",\"type\":\"c.Md5\"},{\"name\":\"f3\",\"type\":{\"name\":\"x.Inner\","
                   "\"type\":\"record\",\"fields\":[{\"name\":\"e\",\"type\":{\"name\":\"x.E\","
                   "\"type\":\"enum\",\"symbols\":[\"A\",\"B\"]}}]}},{\"name\":\"f4\",\"type\":"
                   "[\"null\",\"x.E\",{\"type\":\"map\",\"values\":{\"type\":\"array\","
                   "\"items\":\"a.b.Outer\"}}]},{\"name\":\"f5\",\"type\":\"int\"}]}");
    CHECK(fp == 0x9774035ed15e9f9dULL); /* fastavro, as above */
    free(pcf);
    CHECK_INT(cs_avro_fingerprint_json("{\"type\":\"nope\"}", 15, &fp, NULL, err, sizeof err),
              CS_ERR_PARSE);
    CHECK_INT(cs_avro_fingerprint_json("{", 1, &fp, NULL, err, sizeof err), CS_ERR_PARSE);
}

static void test_round_trips(cs_avro_registry_t *reg)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    REQUIRE(enc && dec);
    for (int i = 0; i < CS_AVRO_N_SCHEMAS; i++) {
        avro_value_t *v = cs_avro_encoder_value(enc, i);
        REQUIRE(v);
        fill(i, v);
        check(i, v);
        const void *frame = NULL;
        size_t len = 0;
        int rc = cs_avro_encode(enc, v, &frame, &len);
        CHECK_INT(rc, 0);
        if (rc)
            fprintf(stderr, "encode %s: %s\n", cs_avro_schema_name(i), cs_avro_encoder_error(enc));
        REQUIRE(rc == 0 && len > 10);
        const unsigned char *p = frame;
        CHECK(p[0] == 0xc3 && p[1] == 0x01);
        uint64_t fp = 0;
        for (int k = 0; k < 8; k++)
            fp |= (uint64_t)p[2 + k] << (8 * k);
        CHECK(fp == expected_fp[i]);
        frames_g[i] = malloc(len);
        memcpy(frames_g[i], frame, len);
        frame_len_g[i] = len;

        cs_avro_decoded_t out;
        rc = cs_avro_decode(dec, frames_g[i], len, &out);
        CHECK_INT(rc, 0);
        if (rc)
            fprintf(stderr, "decode %s: %s\n", cs_avro_schema_name(i), cs_avro_decoder_error(dec));
        REQUIRE(rc == 0);
        CHECK_INT(out.schema, i);
        CHECK(out.framing == CS_AVRO_SINGLE_OBJECT && out.confluent_id == -1 && !out.resolved);
        CHECK(out.fingerprint == expected_fp[i]);
        check(i, out.value);
        CHECK(avro_value_equal(v, out.value));

        /* avro-c's own reader agrees with ours on the same body. */
        avro_value_iface_t *iface = avro_generic_class_from_schema(cs_avro_schema_by_id(reg, i));
        avro_value_t ref;
        REQUIRE(iface && avro_generic_value_new(iface, &ref) == 0);
        avro_reader_t rd = avro_reader_memory((const char *)frames_g[i] + 10, (int64_t)len - 10);
        OK(avro_value_read(rd, &ref));
        CHECK(avro_value_equal(&ref, out.value));
        avro_reader_free(rd);
        avro_value_decref(&ref);
        avro_value_iface_decref(iface);

        /* Re-encoding the decoded value gives the same bytes. */
        const void *again = NULL;
        size_t again_len = 0;
        OK(cs_avro_encode(enc, out.value, &again, &again_len));
        CHECK(again_len == len && !memcmp(again, frames_g[i], len));

        /* Unframed body. */
        avro_value_t *body = NULL;
        OK(cs_avro_decode_body(dec, i, frames_g[i] + 10, len - 10, &body));
        CHECK(body && avro_value_equal(v, body));
    }
    cs_avro_encoder_destroy(enc);
    cs_avro_decoder_destroy(dec);
}

/* The reused value must not keep anything from the previous record. */
static void test_value_reuse(cs_avro_registry_t *reg)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    cs_avro_decoded_t out;
    const void *f;
    size_t len;
    REQUIRE(enc && dec);
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
    fill_pc(v, true);
    OK(cs_avro_encode(enc, v, &f, &len));
    OK(cs_avro_decode(dec, f, len, &out));
    check_pc(out.value, true);
    avro_value_t *first = out.value;

    v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE); /* reset to defaults */
    CHECK(cs_avro_is_null(v, CS_PC_EMAIL));
    CHECK_INT(cs_avro_count(v, CS_PC_CUSTOM_FIELDS), 0);
    CHECK_INT(cs_avro_get_enum(v, CS_PC_CAUSE), CS_CAUSE_OTHER); /* enum default */
    OK(cs_avro_set_str(v, CS_PC_EVENT_ID, "evt-2"));
    OK(cs_avro_set_str(v, CS_PC_PROSPECT_KEY, "k"));
    OK(cs_avro_set_str(v, CS_PC_COMPANY, "Now set"));
    OK(cs_avro_encode(enc, v, &f, &len));
    OK(cs_avro_decode(dec, f, len, &out));
    CHECK(out.value == first); /* the same reused value */
    CHECK(str_is(out.value, CS_PC_EVENT_ID, "evt-2"));
    CHECK(cs_avro_is_null(out.value, CS_PC_EMAIL));
    CHECK(cs_avro_is_null(out.value, CS_PC_PROSPECT_ID));
    CHECK(str_is(out.value, CS_PC_COMPANY, "Now set"));
    CHECK_INT(cs_avro_count(out.value, CS_PC_CUSTOM_FIELDS), 0);
    CHECK_INT(cs_avro_count(out.value, CS_PC_CHANGED_FIELDS), 0);
    CHECK(bool_is(out.value, CS_PC_OPTED_OUT, false));
    CHECK_INT(cs_avro_get_enum(out.value, CS_PC_CAUSE), CS_CAUSE_OTHER);

    /* Defaults of a fresh value: SyncError.attempts defaults to 1. */
    avro_value_t se;
    OK(cs_avro_value_new(reg, CS_AVRO_SYNC_ERROR, &se));
    CHECK(long_is(&se, CS_SE_ATTEMPTS, 1));
    CHECK(cs_avro_is_null(&se, CS_SE_PAYLOAD));
    OK(cs_avro_set_int(&se, CS_SE_ATTEMPTS, 9));
    OK(cs_avro_value_clear(reg, &se));
    CHECK(long_is(&se, CS_SE_ATTEMPTS, 1));
    avro_value_decref(&se);
    cs_avro_encoder_destroy(enc);
    cs_avro_decoder_destroy(dec);
}

static void test_accessor_errors(cs_avro_registry_t *reg)
{
    avro_value_t v, item;
    OK(cs_avro_value_new(reg, CS_AVRO_PROSPECT_CHANGE, &v));
    CHECK_INT(cs_avro_set_long(&v, CS_PC_SCORE, (int64_t)INT32_MAX + 1), CS_ERR_INVAL);
    CHECK_INT(cs_avro_set_null(&v, CS_PC_EVENT_ID), CS_ERR_INVAL); /* not nullable */
    CHECK_INT(cs_avro_set_str(&v, CS_PC_EVENT_ID, NULL), CS_ERR_INVAL);
    CHECK_INT(cs_avro_set_enum(&v, CS_PC_CAUSE, 10), CS_ERR_INVAL);
    CHECK_INT(cs_avro_set_enum(&v, CS_PC_CAUSE, -1), CS_ERR_INVAL);
    CHECK_INT(cs_avro_set_str(&v, CS_PC_UPDATED_AT, "x"), CS_ERR_INVAL);
    CHECK_INT(cs_avro_set_bool(&v, CS_PC_EMAIL, true), CS_ERR_INVAL);
    CHECK_INT(cs_avro_set_str(&v, CS_PC__COUNT, "x"), CS_ERR_INVAL);
    CHECK_INT(cs_avro_set_str(&v, -1, "x"), CS_ERR_INVAL);
    CHECK_INT(cs_avro_array_add(&v, CS_PC_EMAIL, &item), CS_ERR_INVAL);
    CHECK_INT(cs_avro_map_set_str(&v, CS_PC_CHANGED_FIELDS, "k", "v"), CS_ERR_INVAL);
    CHECK(cs_avro_get_str(&v, CS_PC_SCORE, NULL) == NULL);
    CHECK(!cs_avro_get_long(&v, CS_PC_EMAIL, &(int64_t){0}));
    CHECK(!cs_avro_get_bool(&v, CS_PC__COUNT, &(bool){0}));
    CHECK_INT(cs_avro_get_enum(&v, CS_PC_EMAIL), -1);
    CHECK(cs_avro_is_null(&v, 999));
    CHECK_INT(cs_avro_get_field(&v, CS_PC_EMAIL, &item), CS_ERR_NOT_FOUND);
    CHECK_INT(cs_avro_get_field(&v, 999, &item), CS_ERR_INVAL);
    OK(cs_avro_get_field(&v, CS_PC_EVENT_ID, &item));
    CHECK_INT(cs_avro_get_item(&v, CS_PC_EMAIL, 0, &item, NULL), CS_ERR_INVAL);
    CHECK_INT(cs_avro_count(&v, CS_PC_EMAIL), 0);
    OK(cs_avro_array_add_str(&v, CS_PC_CHANGED_FIELDS, "a"));
    CHECK_INT(cs_avro_count(&v, CS_PC_CHANGED_FIELDS), 1);
    OK(cs_avro_clear(&v, CS_PC_CHANGED_FIELDS));
    CHECK_INT(cs_avro_count(&v, CS_PC_CHANGED_FIELDS), 0);
    avro_value_decref(&v);
}

static void test_encode_errors(cs_avro_registry_t *reg)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    const void *f;
    size_t len = 0, need = 0;
    char err[256];
    REQUIRE(enc);
    /* A value avro-c made without defaults: unions have no branch yet. */
    avro_value_iface_t *iface =
        avro_generic_class_from_schema(cs_avro_schema_by_id(reg, CS_AVRO_ACTIVITY));
    avro_value_t raw;
    REQUIRE(iface && !avro_generic_value_new(iface, &raw));
    CHECK_INT(cs_avro_encode(enc, &raw, &f, &len), CS_ERR_AVRO);
    CHECK(strlen(cs_avro_encoder_error(enc)) > 0);
    avro_value_decref(&raw);
    avro_value_iface_decref(iface);

    /* Not one of ours. */
    avro_schema_t other = avro_schema_string();
    iface = avro_generic_class_from_schema(other);
    REQUIRE(iface && !avro_generic_value_new(iface, &raw));
    CHECK_INT(cs_avro_encode(enc, &raw, &f, &len), CS_ERR_INVAL);
    avro_value_decref(&raw);
    avro_value_iface_decref(iface);
    avro_schema_decref(other);

    /* Caller buffer: too small reports the size needed, exact size works. */
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_SYNC_STATE);
    fill_ss(v);
    OK(cs_avro_encode(enc, v, &f, &len));
    unsigned char small[8], *big = malloc(len);
    CHECK_INT(cs_avro_encode_to(reg, CS_AVRO_SINGLE_OBJECT, v, small, sizeof small, &need, err,
                                sizeof err),
              CS_ERR_TOO_LARGE);
    CHECK_INT(need, len);
    CHECK_INT(
        cs_avro_encode_to(reg, CS_AVRO_SINGLE_OBJECT, v, big, len - 1, &need, err, sizeof err),
        CS_ERR_TOO_LARGE);
    OK(cs_avro_encode_to(reg, CS_AVRO_SINGLE_OBJECT, v, big, len, &need, err, sizeof err));
    CHECK(need == len && !memcmp(big, f, len));
    /* Confluent framing without an id. */
    CHECK_INT(cs_avro_encode_to(reg, CS_AVRO_CONFLUENT, v, big, len, &need, err, sizeof err),
              CS_ERR_STATE);
    free(big);

    /* A big record grows the encoder's buffer. */
    char *huge = malloc(100000);
    memset(huge, 'x', 99999);
    huge[99999] = '\0';
    v = cs_avro_encoder_value(enc, CS_AVRO_SYNC_ERROR);
    fill_se(v);
    OK(cs_avro_set_str(v, CS_SE_MESSAGE, huge));
    OK(cs_avro_encode(enc, v, &f, &len));
    CHECK(len > 100000);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    cs_avro_decoded_t out;
    OK(cs_avro_decode(dec, f, len, &out));
    CHECK(str_is(out.value, CS_SE_MESSAGE, huge));
    cs_avro_decoder_destroy(dec);
    free(huge);
    cs_avro_encoder_destroy(enc);
}

static bool err_has(const cs_avro_decoder_t *dec, const char *needle)
{
    bool ok = strstr(cs_avro_decoder_error(dec), needle) != NULL;
    if (!ok)
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", cs_avro_decoder_error(dec), needle);
    return ok;
}

static int decode_raw(cs_avro_decoder_t *dec, int schema, const unsigned char *body, size_t n)
{
    unsigned char buf[256];
    cs_avro_decoded_t out;
    uint64_t fp = expected_fp[schema];
    buf[0] = 0xc3;
    buf[1] = 0x01;
    for (int k = 0; k < 8; k++)
        buf[2 + k] = (unsigned char)(fp >> (8 * k));
    memcpy(buf + 10, body, n);
    return cs_avro_decode(dec, buf, 10 + n, &out);
}

static void test_framing_errors(cs_avro_registry_t *reg)
{
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    cs_avro_decoded_t out;
    REQUIRE(dec);
    CHECK_INT(cs_avro_decode(dec, "", 0, &out), CS_ERR_TRUNCATED);
    CHECK(err_has(dec, "empty"));
    CHECK_INT(cs_avro_decode(dec, "\xc3", 1, &out), CS_ERR_TRUNCATED);
    CHECK_INT(cs_avro_decode(dec, "\x00", 1, &out), CS_ERR_TRUNCATED);
    CHECK_INT(cs_avro_decode(dec, "\x42", 1, &out), CS_ERR_AVRO);
    CHECK(err_has(dec, "not an Avro frame"));
    CHECK_INT(cs_avro_decode(dec, "{\"json\":1}", 10, &out), CS_ERR_AVRO);
    CHECK_INT(cs_avro_decode(dec, "\xc3\x02\x01\x02\x03\x04\x05\x06\x07\x08\x00", 11, &out),
              CS_ERR_AVRO);
    CHECK(err_has(dec, "marker"));
    CHECK_INT(cs_avro_decode(dec, "\xc3\x01\x01\x02\x03\x04\x05\x06\x07\x08\x00", 11, &out),
              CS_ERR_UNKNOWN_SCHEMA);
    CHECK(err_has(dec, "0807060504030201"));
    CHECK_INT(cs_avro_decode(dec, "\x00\x00\x00\x00\x07\x02", 6, &out), CS_ERR_UNKNOWN_SCHEMA);
    CHECK(err_has(dec, "id 7"));

    /* Every strict prefix of every valid frame is truncated, never anything else. */
    for (int i = 0; i < CS_AVRO_N_SCHEMAS; i++) {
        int bad = 0;
        for (size_t n = 0; n < frame_len_g[i]; n++) {
            unsigned char *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
            memcpy(copy, frames_g[i], n);
            int rc = cs_avro_decode(dec, copy, n, &out);
            if (rc != CS_ERR_TRUNCATED) {
                fprintf(stderr, "%s prefix %zu: %s: %s\n", cs_avro_schema_name(i), n,
                        cs_err_name(rc), cs_avro_decoder_error(dec));
                bad++;
            }
            free(copy);
        }
        CHECK_INT(bad, 0);
        /* One byte too many. */
        unsigned char *longer = malloc(frame_len_g[i] + 1);
        memcpy(longer, frames_g[i], frame_len_g[i]);
        longer[frame_len_g[i]] = 0;
        CHECK_INT(cs_avro_decode(dec, longer, frame_len_g[i] + 1, &out), CS_ERR_AVRO);
        CHECK(err_has(dec, "trailing"));
        free(longer);
    }

    /* Hand-made bad bodies (Control: command_id string, command enum, 2 arrays, long, string;
     * Activity: event_id, prospect_key, prospect_id ["null","long"], ...). */
    static const unsigned char bad_enum[] = {0x02, 'c', 0x14, 0, 0, 0, 0};
    CHECK_INT(decode_raw(dec, CS_AVRO_CONTROL, bad_enum, sizeof bad_enum), CS_ERR_AVRO);
    CHECK(err_has(dec, "Control.command: enum index 10"));
    static const unsigned char neg_len[] = {0x01, 'c'};
    CHECK_INT(decode_raw(dec, CS_AVRO_CONTROL, neg_len, sizeof neg_len), CS_ERR_AVRO);
    CHECK(err_has(dec, "negative length"));
    static const unsigned char long_str[] = {0x7e, 'c'};
    CHECK_INT(decode_raw(dec, CS_AVRO_CONTROL, long_str, sizeof long_str), CS_ERR_TRUNCATED);
    static const unsigned char bad_union[] = {0x02, 'e', 0x00, 0x0a};
    CHECK_INT(decode_raw(dec, CS_AVRO_ACTIVITY, bad_union, sizeof bad_union), CS_ERR_AVRO);
    CHECK(err_has(dec, "Activity.prospect_id: union index 5"));
    static const unsigned char bad_bool[] = {0x02, 'e', 0x00, 0x00, 0x00, 0x00, 0x02};
    CHECK_INT(decode_raw(dec, CS_AVRO_ACTIVITY, bad_bool, sizeof bad_bool), CS_ERR_AVRO);
    CHECK(err_has(dec, "identified: boolean byte 0x02"));
    static const unsigned char big_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                               0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_INT(decode_raw(dec, CS_AVRO_CONTROL, big_varint, sizeof big_varint), CS_ERR_AVRO);
    CHECK(err_has(dec, "varint"));
    /* Array count of 2^40 with 3 bytes left: refused before any allocation. */
    static const unsigned char big_array[] = {0x02, 'c',  0x00, 0x80, 0x80, 0x80,
                                              0x80, 0x80, 0x40, 'x',  'y',  'z'};
    CHECK_INT(decode_raw(dec, CS_AVRO_CONTROL, big_array, sizeof big_array), CS_ERR_TRUNCATED);
    CHECK(err_has(dec, "prospect_keys"));
    /* Negative block count (with byte size) is valid Avro. */
    static const unsigned char neg_block[] = {0x02, 'c',  0x04, 0x03, 0x04, 0x02, 'k',
                                              0x00, 0x00, 0x00, 0x02, 0x02, 'u'};
    CHECK_INT(decode_raw(dec, CS_AVRO_CONTROL, neg_block, sizeof neg_block), 0);

    /* Random garbage, random bodies behind valid headers, and mutated valid frames: errors,
     * never a crash or an unexpected code; the decoder keeps working afterwards. */
    int unexpected = 0, decoded = 0;
    unsigned char buf[300];
    for (int iter = 0; iter < 300000; iter++) {
        size_t n;
        int kind = iter % 3, schema = (int)(rnd() % CS_AVRO_N_SCHEMAS);
        if (kind == 0) {
            n = rnd() % 64;
            for (size_t k = 0; k < n; k++)
                buf[k] = (unsigned char)rnd();
            if (n && iter % 2)
                buf[0] = 0xc3;
        } else if (kind == 1) {
            n = 10 + rnd() % 120;
            memcpy(buf, frames_g[schema], 10);
            for (size_t k = 10; k < n; k++)
                buf[k] = (unsigned char)rnd();
        } else {
            n = frame_len_g[schema] < sizeof buf ? frame_len_g[schema] : sizeof buf;
            memcpy(buf, frames_g[schema], n);
            for (int m = 0; m < 1 + (int)(rnd() % 4); m++)
                buf[10 + rnd() % (n - 10)] = (unsigned char)rnd();
        }
        unsigned char *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        int rc = cs_avro_decode(dec, exact, n, &out);
        free(exact);
        if (rc == 0)
            decoded++;
        else if (rc != CS_ERR_TRUNCATED && rc != CS_ERR_AVRO && rc != CS_ERR_UNKNOWN_SCHEMA)
            unexpected++;
        if (rc == 0 && (out.schema < 0 || out.schema >= CS_AVRO_N_SCHEMAS || !out.value))
            unexpected++;
    }
    CHECK_INT(unexpected, 0);
    printf("fuzz: 300000 inputs, %d decoded as valid records, rest rejected\n", decoded);
    for (int i = 0; i < CS_AVRO_N_SCHEMAS; i++) {
        OK(cs_avro_decode(dec, frames_g[i], frame_len_g[i], &out));
        check(i, out.value);
    }
    cs_avro_decoder_destroy(dec);
}

static void test_confluent(cs_avro_registry_t *reg)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_CONFLUENT);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    cs_avro_decoded_t out;
    const void *f;
    size_t len;
    REQUIRE(enc && dec);
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_CRM_CHANGE);
    fill_crm(v);
    CHECK_INT(cs_avro_encode(enc, v, &f, &len), CS_ERR_STATE);
    CHECK_INT(cs_avro_registry_set_id(reg, CS_AVRO_CRM_CHANGE, -1), CS_ERR_INVAL);
    CHECK_INT(cs_avro_registry_set_id(reg, 99, 1), CS_ERR_INVAL);
    OK(cs_avro_registry_set_id(reg, CS_AVRO_CRM_CHANGE, 0x01020304));
    OK(cs_avro_encode(enc, v, &f, &len));
    const unsigned char *p = f;
    CHECK(p[0] == 0 && p[1] == 1 && p[2] == 2 && p[3] == 3 && p[4] == 4);
    CHECK_INT(len, frame_len_g[CS_AVRO_CRM_CHANGE] - 10 + 5); /* same body */
    CHECK(!memcmp(p + 5, frames_g[CS_AVRO_CRM_CHANGE] + 10, len - 5));
    OK(cs_avro_decode(dec, f, len, &out));
    CHECK_INT(out.schema, CS_AVRO_CRM_CHANGE);
    CHECK(out.framing == CS_AVRO_CONFLUENT && out.confluent_id == 0x01020304);
    CHECK(out.fingerprint == expected_fp[CS_AVRO_CRM_CHANGE]);
    check_crm(out.value);
    /* Truncated Confluent frames. */
    for (size_t n = 0; n < len; n++)
        CHECK_INT(cs_avro_decode(dec, f, n, &out), CS_ERR_TRUNCATED);
    cs_avro_encoder_destroy(enc);
    cs_avro_decoder_destroy(dec);
}

/* A record written with schemas/old/ProspectChange.v1.avsc (no custom_fields, no
 * changed_fields) reads into the current ProspectChange with those fields defaulted. */
static void test_old_version(cs_avro_registry_t *reg)
{
    char path[1200], err[512];
    size_t jlen;
    snprintf(path, sizeof path, "%s/schemas/old/ProspectChange.v1.avsc", cs_test_source_dir());
    char *json = slurp(path, &jlen);
    uint64_t fp = 0;
    OK(cs_avro_fingerprint_json(json, jlen, &fp, NULL, err, sizeof err));
    CHECK(fp == expected_fp_pc_v1);

    /* Write it with avro-c alone, as an old producer would. */
    avro_schema_t v1;
    REQUIRE(!avro_schema_from_json_length(json, jlen, &v1));
    avro_value_iface_t *iface = avro_generic_class_from_schema(v1);
    avro_value_t w;
    REQUIRE(iface && !avro_generic_value_new(iface, &w));
    fill_pc(&w, false);
    unsigned char frame[1024];
    frame[0] = 0xc3;
    frame[1] = 0x01;
    for (int k = 0; k < 8; k++)
        frame[2 + k] = (unsigned char)(fp >> (8 * k));
    avro_writer_t wr = avro_writer_memory((const char *)frame + 10, sizeof frame - 10);
    OK(avro_value_write(wr, &w));
    size_t len = 10 + (size_t)avro_writer_tell(wr);
    avro_writer_free(wr);

    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_decoded_t out;
    /* First a current record with non-empty map/array into the same value... */
    OK(cs_avro_decode(dec, frames_g[CS_AVRO_PROSPECT_CHANGE], frame_len_g[CS_AVRO_PROSPECT_CHANGE],
                      &out));
    check_pc(out.value, true);
    /* ...then the v1 record: resolved, and the added fields take their defaults. */
    int rc = cs_avro_decode(dec, frame, len, &out);
    CHECK_INT(rc, 0);
    if (rc)
        fprintf(stderr, "v1: %s\n", cs_avro_decoder_error(dec));
    CHECK_INT(out.schema, CS_AVRO_PROSPECT_CHANGE);
    CHECK(out.resolved);
    CHECK(out.fingerprint == expected_fp_pc_v1);
    if (!rc) {
        check_pc(out.value, false);
        CHECK(avro_value_get_schema(out.value) == cs_avro_schema_by_id(reg, 0));
        /* It re-encodes with the current schema. */
        const void *f;
        size_t flen;
        OK(cs_avro_encode(enc, out.value, &f, &flen));
        CHECK(flen == len + 3); /* two empty blocks ({} and []) and a null updated_by_id */
    }
    /* Truncated v1 records fail cleanly too. */
    for (size_t n = 0; n < len; n++)
        CHECK_INT(cs_avro_decode(dec, frame, n, &out), CS_ERR_TRUNCATED);

    /* The same v1 schema, announced by a schema registry under an id. */
    OK(cs_avro_registry_add_writer(reg, json, jlen, 31, err, sizeof err));
    unsigned char cf[1024];
    cf[0] = 0;
    cf[1] = cf[2] = cf[3] = 0;
    cf[4] = 31;
    memcpy(cf + 5, frame + 10, len - 10);
    OK(cs_avro_decode(dec, cf, len - 5, &out));
    CHECK(out.resolved && out.confluent_id == 31);
    check_pc(out.value, false);

    /* A writer schema that cannot resolve: a reader field without default is missing. */
    const char *bad = "{\"type\":\"record\",\"name\":\"crmsync.Control\",\"fields\":["
                      "{\"name\":\"command_id\",\"type\":\"string\"}]}";
    CHECK_INT(cs_avro_registry_add_writer(reg, bad, strlen(bad), 32, err, sizeof err), CS_ERR_AVRO);
    CHECK(strstr(err, "command") != NULL);
    const char *stranger = "{\"type\":\"record\",\"name\":\"x.Y\",\"fields\":[]}";
    CHECK_INT(cs_avro_registry_add_writer(reg, stranger, strlen(stranger), 33, err, sizeof err),
              CS_ERR_UNKNOWN_SCHEMA);
    /* A newer writer with an extra field and a promoted type resolves (extra field skipped). */
    const char *newer =
        "{\"type\":\"record\",\"name\":\"Control\",\"namespace\":\"crmsync\",\"fields\":["
        "{\"name\":\"command_id\",\"type\":\"string\"},"
        "{\"name\":\"extra\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
        "{\"name\":\"command\",\"type\":{\"type\":\"enum\",\"name\":\"ControlCommand\","
        "\"symbols\":[\"PAUSE\",\"UNPAUSE\",\"SYNC_NOW\",\"RETRY_ERROR\",\"REBOOT\"]}},"
        "{\"name\":\"prospect_keys\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
        "{\"name\":\"issued_at\",\"type\":\"int\"},"
        "{\"name\":\"issued_by\",\"type\":[\"null\",\"string\"]}]}";
    rc = cs_avro_registry_add_writer(reg, newer, strlen(newer), 34, err, sizeof err);
    CHECK_INT(rc, CS_ERR_AVRO); /* issued_by: writer null branch has no reader branch */
    const char *newer2 =
        "{\"type\":\"record\",\"name\":\"Control\",\"namespace\":\"crmsync\",\"fields\":["
        "{\"name\":\"command_id\",\"type\":\"string\"},"
        "{\"name\":\"extra\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
        "{\"name\":\"command\",\"type\":{\"type\":\"enum\",\"name\":\"ControlCommand\","
        "\"symbols\":[\"PAUSE\",\"UNPAUSE\",\"SYNC_NOW\",\"RETRY_ERROR\",\"REBOOT\"]}},"
        "{\"name\":\"prospect_keys\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
        "{\"name\":\"issued_at\",\"type\":\"int\"},"
        "{\"name\":\"issued_by\",\"type\":\"bytes\"}]}";
    rc = cs_avro_registry_add_writer(reg, newer2, strlen(newer2), 35, err, sizeof err);
    CHECK_INT(rc, 0);
    if (rc)
        fprintf(stderr, "newer2: %s\n", err);
    /* id 35: "c", {"n": 1}, SYNC_NOW, ["k"], 5 (int), bytes "me" */
    static const unsigned char nb[] = {0,    0,    0,    0,    35,   0x02, 'c',
                                       0x02, 0x02, 'n',  0x02, 0x00, 0x04, 0x02,
                                       0x02, 'k',  0x00, 0x0a, 0x04, 'm',  'e'};
    rc = cs_avro_decode(dec, nb, sizeof nb, &out);
    CHECK_INT(rc, 0);
    if (!rc) {
        CHECK_INT(out.schema, CS_AVRO_CONTROL);
        CHECK(out.resolved);
        CHECK(str_is(out.value, CS_CTL_COMMAND_ID, "c"));
        CHECK_INT(cs_avro_get_enum(out.value, CS_CTL_COMMAND), CS_COMMAND_SYNC_NOW);
        CHECK_STR(cs_avro_get_item_str(out.value, CS_CTL_PROSPECT_KEYS, 0, NULL), "k");
        CHECK_INT(cs_avro_count(out.value, CS_CTL_ERROR_IDS), 0); /* default [] */
        CHECK(long_is(out.value, CS_CTL_ISSUED_AT, 5));
        CHECK(str_is(out.value, CS_CTL_ISSUED_BY, "me"));
    }
    /* Symbol 4 (REBOOT) is unknown to the reader and ControlCommand has no default. */
    unsigned char nb2[sizeof nb];
    memcpy(nb2, nb, sizeof nb);
    nb2[12] = 0x08;
    CHECK_INT(cs_avro_decode(dec, nb2, sizeof nb2, &out), CS_ERR_AVRO);
    CHECK(err_has(dec, "REBOOT"));

    cs_avro_encoder_destroy(enc);
    cs_avro_decoder_destroy(dec);
    avro_value_decref(&w);
    avro_value_iface_decref(iface);
    avro_schema_decref(v1);
    free(json);
}

static void test_no_alloc(cs_avro_registry_t *reg)
{
    cs_avro_encoder_t *enc = cs_avro_encoder_new(reg, CS_AVRO_SINGLE_OBJECT);
    cs_avro_decoder_t *dec = cs_avro_decoder_new(reg);
    cs_avro_decoded_t out;
    const void *f;
    size_t len;
    REQUIRE(enc && dec);
    avro_value_t *v = cs_avro_encoder_value(enc, CS_AVRO_PROSPECT_CHANGE);
    fill_pc(v, false);
    OK(cs_avro_encode(enc, v, &f, &len));
    unsigned char *frame = malloc(len);
    memcpy(frame, f, len);
    for (int i = 0; i < 3; i++)
        OK(cs_avro_decode(dec, frame, len, &out));
    long before = cs_test_avro_allocs_;
    for (int i = 0; i < 1000; i++)
        OK(cs_avro_decode(dec, frame, len, &out));
    CHECK_INT(cs_test_avro_allocs_ - before, 0);
    check_pc(out.value, false);
    before = cs_test_avro_allocs_;
    for (int i = 0; i < 1000; i++)
        OK(cs_avro_encode(enc, v, &f, &len));
    CHECK_INT(cs_test_avro_allocs_ - before, 0);

    /* Non-empty map and array: avro-c's generic containers allocate per element. */
    before = cs_test_avro_allocs_;
    for (int i = 0; i < 1000; i++)
        OK(cs_avro_decode(dec, frames_g[CS_AVRO_PROSPECT_CHANGE],
                          frame_len_g[CS_AVRO_PROSPECT_CHANGE], &out));
    printf("ProspectChange with 2 custom fields + 2 changed fields: %.1f avro-c allocations per "
           "decode\n",
           (cs_test_avro_allocs_ - before) / 1000.0);
    free(frame);
    cs_avro_encoder_destroy(enc);
    cs_avro_decoder_destroy(dec);
}

int main(void)
{
    char err[512];
    avro_set_allocator(cs_test_avro_alloc, NULL);
    cs_avro_registry_t *reg = cs_avro_registry_new(err, sizeof err);
    if (!reg)
        fprintf(stderr, "registry: %s\n", err);
    REQUIRE(reg);
    test_fingerprints(reg);
    test_round_trips(reg);
    test_value_reuse(reg);
    test_accessor_errors(reg);
    test_encode_errors(reg);
    test_framing_errors(reg);
    test_no_alloc(reg);
    test_confluent(reg);
    test_old_version(reg);
    for (int i = 0; i < CS_AVRO_N_SCHEMAS; i++)
        free(frames_g[i]);
    cs_avro_registry_destroy(reg);
    cs_avro_registry_destroy(NULL);
    cs_avro_encoder_destroy(NULL);
    cs_avro_decoder_destroy(NULL);
    return cs_test_report();
}
