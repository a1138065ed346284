/* cs_avro: the Avro contract of crmsync's topics and its wire framing.
 *
 * The schemas are schemas/ *.avsc (current versions) and schemas/old/ *.avsc (older versions
 * still readable), embedded in the library at build time. A registry parses each one once,
 * computes its CRC-64-AVRO fingerprint over its Parsing Canonical Form, and checks that the
 * field and symbol constants below match the schemas (so code using CS_PC_EMAIL etc. cannot
 * silently drift from the .avsc).
 *
 * Framing (docs/SCHEMAS.md):
 *   single object (default)  C3 01 | 8-byte little-endian fingerprint | Avro binary body
 *   Confluent                00 | 4-byte big-endian schema-registry id | Avro binary body
 *
 * Decoding is crmsync's own bounds-checked binary reader (avro-c's avro_value_read allocates
 * twice per string and trusts union and enum indexes), writing into one generic avro_value_t
 * per schema that the decoder keeps and reuses: after warm-up a record decodes with no
 * allocation, except for elements of non-empty arrays/maps and for nullable fields that flip
 * between null and a value (avro-c's generic union frees the old branch). Records written
 * with an older schema version are resolved into the current version with crmsync's own
 * resolver (avro-c 1.11.1's avro_resolved_reader_new cannot fill a reader field with its
 * default: it fails, and crashes on our ProspectChange v1 -> v2), missing fields taking the
 * reader schema's defaults. The sync consumer's input path, cs_avro_decode_flat(), makes the
 * same checks but writes no avro-c value at all (see "Flat decoding" below).
 *
 * Threads: a registry is immutable once set up (cs_avro_registry_new plus any
 * cs_avro_registry_set_id / cs_avro_registry_add_writer calls) and may then be shared by all
 * threads; a setup call must not run while another thread uses the registry (encoders and
 * decoders made before it keep working after it). Encoders and decoders, and the values they
 * hand out, belong to one thread at a time: make one per thread. Values are avro-c generic values;
 * read them with the cs_avro_get_* accessors below or with avro-c's avro_value_* API. */
#ifndef CS_AVRO_H
#define CS_AVRO_H

#include <avro.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Schemas, fields and symbols -------------------------------------------------------- */

/* X(ID, fullname): the records of the topics, in cs_avro_schema_id_t order. */
#define CS_AVRO_SCHEMAS(X)                                                                         \
    X(PROSPECT_CHANGE, "crmsync.ProspectChange")                                                   \
    X(ACTIVITY, "crmsync.Activity")                                                                \
    X(CRM_CHANGE, "crmsync.CrmChange")                                                             \
    X(SYNC_STATE, "crmsync.SyncState")                                                             \
    X(SYNC_ERROR, "crmsync.SyncError")                                                             \
    X(CONTROL, "crmsync.Control")

typedef enum {
#define CS_AVRO_ID_(id, name) CS_AVRO_##id,
    CS_AVRO_SCHEMAS(CS_AVRO_ID_)
#undef CS_AVRO_ID_
        CS_AVRO_N_SCHEMAS
} cs_avro_schema_id_t;

/* Field lists: X(CONSTANT, "field_name") in schema order; the constant is the field index. */
#define CS_AVRO_PROSPECT_CHANGE_FIELDS(X)                                                          \
    X(EVENT_ID, "event_id")                                                                        \
    X(PROSPECT_KEY, "prospect_key")                                                                \
    X(PROSPECT_ID, "prospect_id")                                                                  \
    X(CAUSE, "cause")                                                                              \
    X(UPDATED_AT, "updated_at")                                                                    \
    X(LAST_ACTIVITY_AT, "last_activity_at")                                                        \
    X(EVENT_TIME, "event_time")                                                                    \
    X(EMAIL, "email")                                                                              \
    X(FIRST_NAME, "first_name")                                                                    \
    X(LAST_NAME, "last_name")                                                                      \
    X(COMPANY, "company")                                                                          \
    X(PHONE, "phone")                                                                              \
    X(JOB_TITLE, "job_title")                                                                      \
    X(OPTED_OUT, "opted_out")                                                                      \
    X(SCORE, "score")                                                                              \
    X(GRADE, "grade")                                                                              \
    X(ASSIGNED_USER_ID, "assigned_user_id")                                                        \
    X(DO_NOT_SYNC, "do_not_sync")                                                                  \
    X(CRM_LEAD_ID, "crm_lead_id")                                                                  \
    X(CRM_CONTACT_ID, "crm_contact_id")                                                            \
    X(CRM_OWNER_ID, "crm_owner_id")                                                                \
    X(CUSTOM_FIELDS, "custom_fields")                                                              \
    X(CHANGED_FIELDS, "changed_fields")                                                            \
    X(UPDATED_BY_ID, "updated_by_id")

#define CS_AVRO_ACTIVITY_FIELDS(X)                                                                 \
    X(EVENT_ID, "event_id")                                                                        \
    X(PROSPECT_KEY, "prospect_key")                                                                \
    X(PROSPECT_ID, "prospect_id")                                                                  \
    X(EMAIL, "email")                                                                              \
    X(TYPE, "type")                                                                                \
    X(IDENTIFIED, "identified")                                                                    \
    X(SCORE_DELTA, "score_delta")                                                                  \
    X(OCCURRED_AT, "occurred_at")                                                                  \
    X(EVENT_TIME, "event_time")                                                                    \
    X(SOURCE_ACTIVITY_ID, "source_activity_id")

#define CS_AVRO_CRM_CHANGE_FIELDS(X)                                                               \
    X(EVENT_ID, "event_id")                                                                        \
    X(PROSPECT_KEY, "prospect_key")                                                                \
    X(OBJECT, "object")                                                                            \
    X(CRM_ID, "crm_id")                                                                            \
    X(OWNER_ID, "owner_id")                                                                        \
    X(EMAIL, "email")                                                                              \
    X(FIRST_NAME, "first_name")                                                                    \
    X(LAST_NAME, "last_name")                                                                      \
    X(COMPANY, "company")                                                                          \
    X(PHONE, "phone")                                                                              \
    X(TITLE, "title")                                                                              \
    X(OPTED_OUT, "opted_out")                                                                      \
    X(CUSTOM_FIELDS, "custom_fields")                                                              \
    X(CHANGED_FIELDS, "changed_fields")                                                            \
    X(LAST_MODIFIED_DATE, "last_modified_date")                                                    \
    X(SYSTEM_MODSTAMP, "system_modstamp")                                                          \
    X(LAST_MODIFIED_BY_ID, "last_modified_by_id")                                                  \
    X(EXTERNAL_ID, "external_id")                                                                  \
    X(DELETED, "deleted")                                                                          \
    X(EVENT_TIME, "event_time")

#define CS_AVRO_SYNC_STATE_FIELDS(X)                                                               \
    X(PROSPECT_KEY, "prospect_key")                                                                \
    X(PROSPECT_ID, "prospect_id")                                                                  \
    X(MARKETING_WATERMARK, "marketing_watermark")                                                  \
    X(CRM_WATERMARK, "crm_watermark")                                                              \
    X(UPDATED_AT, "updated_at")                                                                    \
    X(LAST_ACTIVITY_AT, "last_activity_at")                                                        \
    X(CRM_LAST_MODIFIED, "crm_last_modified")                                                      \
    X(CRM_OBJECT, "crm_object")                                                                    \
    X(CRM_ID, "crm_id")                                                                            \
    X(ASSIGNED_USER_ID, "assigned_user_id")                                                        \
    X(DO_NOT_SYNC, "do_not_sync")                                                                  \
    X(FIELDS, "fields")                                                                            \
    X(LAST_RESULT, "last_result")                                                                  \
    X(PENDING, "pending")

/* crmsync.FieldState: the items of SyncState.fields. */
#define CS_AVRO_FIELD_STATE_FIELDS(X)                                                              \
    X(NAME, "name")                                                                                \
    X(VALUE, "value")                                                                              \
    X(TIME, "time")                                                                                \
    X(SIDE, "side")                                                                                \
    X(HASH, "hash")

#define CS_AVRO_SYNC_ERROR_FIELDS(X)                                                               \
    X(ERROR_ID, "error_id")                                                                        \
    X(PROSPECT_KEY, "prospect_key")                                                                \
    X(DIRECTION, "direction")                                                                      \
    X(CODE, "code")                                                                                \
    X(MESSAGE, "message")                                                                          \
    X(ATTEMPTS, "attempts")                                                                        \
    X(FIRST_AT, "first_at")                                                                        \
    X(LAST_AT, "last_at")                                                                          \
    X(TOPIC, "topic")                                                                              \
    X(PARTITION, "partition")                                                                      \
    X(OFFSET, "offset")                                                                            \
    X(PAYLOAD, "payload")

#define CS_AVRO_CONTROL_FIELDS(X)                                                                  \
    X(COMMAND_ID, "command_id")                                                                    \
    X(COMMAND, "command")                                                                          \
    X(PROSPECT_KEYS, "prospect_keys")                                                              \
    X(ERROR_IDS, "error_ids")                                                                      \
    X(ISSUED_AT, "issued_at")                                                                      \
    X(ISSUED_BY, "issued_by")

#define CS_AVRO_FIELD_ENUM_(prefix, list) enum { list(prefix##_FIELD_) prefix##__COUNT }
#define CS_PC_FIELD_(c, n) CS_PC_##c,
#define CS_ACT_FIELD_(c, n) CS_ACT_##c,
#define CS_CRM_FIELD_(c, n) CS_CRM_##c,
#define CS_SS_FIELD_(c, n) CS_SS_##c,
#define CS_FS_FIELD_(c, n) CS_FS_##c,
#define CS_SE_FIELD_(c, n) CS_SE_##c,
#define CS_CTL_FIELD_(c, n) CS_CTL_##c,
CS_AVRO_FIELD_ENUM_(CS_PC, CS_AVRO_PROSPECT_CHANGE_FIELDS);
CS_AVRO_FIELD_ENUM_(CS_ACT, CS_AVRO_ACTIVITY_FIELDS);
CS_AVRO_FIELD_ENUM_(CS_CRM, CS_AVRO_CRM_CHANGE_FIELDS);
CS_AVRO_FIELD_ENUM_(CS_SS, CS_AVRO_SYNC_STATE_FIELDS);
CS_AVRO_FIELD_ENUM_(CS_FS, CS_AVRO_FIELD_STATE_FIELDS);
CS_AVRO_FIELD_ENUM_(CS_SE, CS_AVRO_SYNC_ERROR_FIELDS);
CS_AVRO_FIELD_ENUM_(CS_CTL, CS_AVRO_CONTROL_FIELDS);

/* Enum symbols: X(SYMBOL) in schema order; the constant is the symbol index. */
/* clang-format off */
#define CS_AVRO_CAUSE_SYMBOLS(X) \
    X(FIELD_CHANGE) X(CREATED) X(OPT_OUT) X(ASSIGNMENT) X(CAMPAIGN) X(AUTOMATION_RULE) X(SCORE) \
    X(IMPORT) X(SYNC_NOW) X(OTHER)
#define CS_AVRO_ACTIVITY_TYPE_SYMBOLS(X) \
    X(FORM) X(FORM_HANDLER) X(LANDING_PAGE) X(TRACKED_LINK_CLICK) X(PAGE_VIEW) X(EMAIL_OPEN) \
    X(EMAIL_SEND) X(EMAIL_CLICK) X(UNSUBSCRIBE) X(VISITOR_SESSION) X(OTHER)
/* clang-format on */
#define CS_AVRO_CRM_OBJECT_SYMBOLS(X) X(LEAD) X(CONTACT)
#define CS_AVRO_SIDE_SYMBOLS(X) X(MARKETING) X(CRM)
#define CS_AVRO_DIRECTION_SYMBOLS(X) X(TO_CRM) X(TO_MARKETING) X(INPUT)
#define CS_AVRO_COMMAND_SYMBOLS(X) X(PAUSE) X(UNPAUSE) X(SYNC_NOW) X(RETRY_ERROR)

#define CS_CAUSE_SYM_(s) CS_CAUSE_##s,
#define CS_ACTIVITY_SYM_(s) CS_ACTIVITY_##s,
#define CS_OBJECT_SYM_(s) CS_OBJECT_##s,
#define CS_SIDE_SYM_(s) CS_SIDE_##s,
#define CS_DIRECTION_SYM_(s) CS_DIRECTION_##s,
#define CS_COMMAND_SYM_(s) CS_COMMAND_##s,
typedef enum { CS_AVRO_CAUSE_SYMBOLS(CS_CAUSE_SYM_) } cs_cause_t; /* ProspectChangeCause */
typedef enum {
    CS_AVRO_ACTIVITY_TYPE_SYMBOLS(CS_ACTIVITY_SYM_)
} cs_activity_type_t;                                                         /* ActivityType */
typedef enum { CS_AVRO_CRM_OBJECT_SYMBOLS(CS_OBJECT_SYM_) } cs_crm_object_t;  /* CrmObject */
typedef enum { CS_AVRO_SIDE_SYMBOLS(CS_SIDE_SYM_) } cs_side_t;                /* Side */
typedef enum { CS_AVRO_DIRECTION_SYMBOLS(CS_DIRECTION_SYM_) } cs_direction_t; /* SyncDirection */
typedef enum { CS_AVRO_COMMAND_SYMBOLS(CS_COMMAND_SYM_) } cs_command_t;       /* ControlCommand */

/* The schema files compiled into the library (the table is generated by
 * common/CMakeLists.txt), ended by an all-NULL entry: cs_avro_embedded_count_g of them. */
typedef struct {
    const char *path; /* relative to schemas/, e.g. "old/ProspectChange.v1.avsc" */
    const char *json;
    size_t len;
} cs_avro_embedded_t;
extern const cs_avro_embedded_t cs_avro_embedded_g[];
extern const size_t cs_avro_embedded_count_g;

/* ---- Registry ---------------------------------------------------------------------------- */

typedef struct cs_avro_registry_s cs_avro_registry_t;

typedef enum {
    CS_AVRO_SINGLE_OBJECT = 0, /* Avro single-object encoding (C3 01 + fingerprint) */
    CS_AVRO_CONFLUENT = 1,     /* Confluent Schema Registry framing (00 + 4-byte id) */
} cs_avro_framing_t;

/* Parses every embedded schema, checks the field/symbol constants above against them, and
 * resolves each old version against its current counterpart. Returns NULL on failure with
 * the reason in errstr (a broken .avsc is a build defect: callers exit). Destroy with
 * cs_avro_registry_destroy() after every encoder/decoder made from it. Any thread. */
cs_avro_registry_t *cs_avro_registry_new(char *errstr, size_t errstr_size);

/* Frees everything the registry owns; accepts NULL. */
void cs_avro_registry_destroy(cs_avro_registry_t *reg);

/* Current schema by name ("ProspectChange" or "crmsync.ProspectChange"); NULL when unknown.
 * Borrowed: valid until cs_avro_registry_destroy(). */
avro_schema_t cs_avro_schema(const cs_avro_registry_t *reg, const char *name);

/* Schema index (cs_avro_schema_id_t for the six topic records) by name; -1 when unknown. */
int cs_avro_schema_lookup(const cs_avro_registry_t *reg, const char *name);

/* Fullname of a schema id ("crmsync.ProspectChange"); "?" when out of range. Static. */
const char *cs_avro_schema_name(int schema);

/* Properties of the current version of a schema (NULL / 0 when out of range). Strings are
 * borrowed until cs_avro_registry_destroy(). */
avro_schema_t cs_avro_schema_by_id(const cs_avro_registry_t *reg, int schema);
uint64_t cs_avro_fingerprint(const cs_avro_registry_t *reg, int schema);
const char *cs_avro_canonical_form(const cs_avro_registry_t *reg, int schema);
const char *cs_avro_schema_json(const cs_avro_registry_t *reg, int schema);

/* Computes the Parsing Canonical Form and CRC-64-AVRO fingerprint of any schema JSON text
 * (spec: "Schema Fingerprints"). *pcf (optional) is malloc'd: caller frees. Returns 0, or
 * CS_ERR_PARSE with the reason in errstr. Any thread. */
int cs_avro_fingerprint_json(const char *json, size_t len, uint64_t *fp, char **pcf, char *errstr,
                             size_t errstr_size);

/* Finds a known writer schema (current or old version) by fingerprint. Returns 0 with
 * *schema = the current schema's index and *is_old set, or CS_ERR_UNKNOWN_SCHEMA. */
int cs_avro_lookup_fingerprint(const cs_avro_registry_t *reg, uint64_t fp, int *schema,
                               bool *is_old);

/* Setup only (before the registry is shared). Declares that Confluent schema-registry id
 * `id` is the CURRENT version of `schema`: the encoder then frames it with this id and the
 * decoder reads it. Returns CS_ERR_INVAL for a bad schema or a negative id. */
int cs_avro_registry_set_id(cs_avro_registry_t *reg, int schema, int32_t id);

/* Setup only. Adds a writer schema from its JSON text (e.g. fetched from a schema registry),
 * readable from then on through its fingerprint, and through `id` in Confluent frames when
 * id >= 0. A schema equal to a known one (same fingerprint) just gets the id. Otherwise it
 * must have the fullname of a current schema and resolve into it (Avro resolution rules:
 * extra writer fields skipped, missing ones need a default in the current schema, int ->
 * long -> float -> double and string <-> bytes promotion, enum symbols by name).
 * Returns 0, CS_ERR_PARSE (bad JSON or schema), CS_ERR_UNKNOWN_SCHEMA (no current schema
 * of that name) or CS_ERR_AVRO (does not resolve), with the reason in errstr. */
int cs_avro_registry_add_writer(cs_avro_registry_t *reg, const char *json, size_t len, int32_t id,
                                char *errstr, size_t errstr_size);

/* ---- Values ------------------------------------------------------------------------------ */

/* Makes a new generic value of the current version of `schema`, every field set to its
 * schema default (or null / 0 / false / "" / empty when it has none). The caller owns it:
 * avro_value_decref(out). Returns 0, CS_ERR_INVAL or CS_ERR_NOMEM. */
int cs_avro_value_new(const cs_avro_registry_t *reg, int schema, avro_value_t *out);

/* Resets a value of one of the registry's schemas to its defaults, as cs_avro_value_new.
 * Allocation-free once the value has been used. Returns 0 or CS_ERR_INVAL. */
int cs_avro_value_clear(const cs_avro_registry_t *reg, avro_value_t *value);

/* ---- Encoding ---------------------------------------------------------------------------- */

typedef struct cs_avro_encoder_s cs_avro_encoder_t;

/* An encoder with its own growable output buffer and one reusable value per schema. NULL on
 * allocation failure. Owned by one thread at a time; destroy with cs_avro_encoder_destroy(). */
cs_avro_encoder_t *cs_avro_encoder_new(const cs_avro_registry_t *reg, cs_avro_framing_t framing);

/* Accepts NULL. */
void cs_avro_encoder_destroy(cs_avro_encoder_t *enc);

/* The encoder's value for `schema`, reset to defaults: fill it, then cs_avro_encode() it.
 * Borrowed: valid until the next cs_avro_encoder_value() for the same schema or destroy.
 * NULL for a bad schema or on allocation failure. */
avro_value_t *cs_avro_encoder_value(cs_avro_encoder_t *enc, int schema);

/* Encodes a record of one of the registry's current schemas with the encoder's framing.
 * On success *out / *out_len describe the frame, borrowed until the next call on enc.
 * Returns 0, CS_ERR_INVAL (not a registry schema), CS_ERR_STATE (Confluent framing and no
 * id set), CS_ERR_AVRO (incomplete value, e.g. a union with no branch) or CS_ERR_NOMEM;
 * the detail is in cs_avro_encoder_error(). No allocation once the buffer has grown. */
int cs_avro_encode(cs_avro_encoder_t *enc, avro_value_t *value, const void **out, size_t *out_len);

/* Same into a caller buffer. On CS_ERR_TOO_LARGE *out_len is the size needed. */
int cs_avro_encode_to(const cs_avro_registry_t *reg, cs_avro_framing_t framing, avro_value_t *value,
                      void *buf, size_t cap, size_t *out_len, char *errstr, size_t errstr_size);

/* Detail of the encoder's last error ("" when none); borrowed until the next call on enc. */
const char *cs_avro_encoder_error(const cs_avro_encoder_t *enc);

/* ---- Direct SyncState encoding (the sync consumer's changelog path) ----------------------
 * cs_avro_encode_sync_state() writes a crmsync.SyncState record from the plain structs below,
 * with no avro-c value: the bytes are those cs_avro_encode() writes for the same values (same
 * framing header, same body). The layout is fixed in cs_avro.c; cs_avro_registry_new() fails
 * when schemas/SyncState.avsc no longer has that shape. Strings are not NUL-terminated (their
 * length is given) and are written as they are. A `has_*` flag false, or a NULL string where
 * the schema allows null, writes null. */

typedef struct {
    const char *name; /* not null */
    size_t name_len;
    const char *value; /* NULL: null (the sync consumer keeps hashes, not values) */
    size_t value_len;
    int64_t time;
    int side; /* cs_side_t */
    int64_t hash;
} cs_field_state_rec_t;

typedef struct {
    const char *prospect_key; /* not null */
    size_t prospect_key_len;
    const char *crm_id; /* NULL: null */
    size_t crm_id_len;
    const char *last_result; /* NULL: null */
    size_t last_result_len;
    const cs_field_state_rec_t *fields; /* n_fields items, in order */
    size_t n_fields;
    int64_t prospect_id; /* when has_prospect_id */
    int64_t marketing_watermark;
    int64_t crm_watermark;
    int64_t updated_at;        /* when has_updated_at */
    int64_t last_activity_at;  /* when has_last_activity_at */
    int64_t crm_last_modified; /* when has_crm_last_modified */
    int64_t assigned_user_id;  /* when has_assigned_user_id */
    int crm_object;            /* cs_crm_object_t, -1: null */
    bool has_prospect_id, has_updated_at, has_last_activity_at, has_crm_last_modified,
        has_assigned_user_id;
    bool do_not_sync;
    bool pending;
} cs_sync_state_rec_t;

/* Encodes *rec as a SyncState record with the encoder's framing, into the encoder's buffer
 * (the one cs_avro_encode() uses; it grows and is reused, so no allocation once it is large
 * enough). On success *out / *out_len describe the frame, borrowed until the next call on enc.
 * Returns 0, CS_ERR_INVAL (a NULL key or field name, an enum value out of range),
 * CS_ERR_STATE (Confluent framing and no id set for SyncState), CS_ERR_TOO_LARGE or
 * CS_ERR_NOMEM, with the detail in cs_avro_encoder_error(). Thread owning enc. */
int cs_avro_encode_sync_state(cs_avro_encoder_t *enc, const cs_sync_state_rec_t *rec,
                              const void **out, size_t *out_len);

/* ---- Decoding ---------------------------------------------------------------------------- */

typedef struct cs_avro_decoder_s cs_avro_decoder_t;

typedef struct {
    int schema;          /* cs_avro_schema_id_t of the record (always the current version) */
    avro_value_t *value; /* the record in the current schema: borrowed, see cs_avro_decode */
    cs_avro_framing_t framing;
    uint64_t fingerprint; /* of the writer schema */
    int32_t confluent_id; /* writer's schema-registry id, -1 for single-object frames */
    bool resolved;        /* written with another version, resolved into the current one */
} cs_avro_decoded_t;

/* A decoder: one reusable value per schema. NULL on allocation failure. Owned by one thread
 * at a time; destroy with cs_avro_decoder_destroy() before the registry. */
cs_avro_decoder_t *cs_avro_decoder_new(const cs_avro_registry_t *reg);

/* Accepts NULL. */
void cs_avro_decoder_destroy(cs_avro_decoder_t *dec);

/* Decodes one framed record (either framing, detected from the first byte). Returns 0 and
 * fills *out; out->value is the decoder's value for that schema, valid (and unchanged)
 * until the next decode of a record of the same schema on this decoder. Never reads past
 * buf + len and never trusts a length, index or count from the input. Errors, with the
 * detail (field path, offset) in cs_avro_decoder_error():
 *   CS_ERR_TRUNCATED       the frame or body ends early (empty input included)
 *   CS_ERR_AVRO            not a known framing, or an invalid body (bad union/enum index,
 *                          negative length, non-0/1 boolean, trailing bytes, ...)
 *   CS_ERR_UNKNOWN_SCHEMA  fingerprint or schema id not in the registry
 * On error *out is unspecified; the decoder stays usable. */
int cs_avro_decode(cs_avro_decoder_t *dec, const void *buf, size_t len, cs_avro_decoded_t *out);

/* Decodes an unframed Avro binary body written with the current version of `schema`.
 * *value as for cs_avro_decode. Same errors (CS_ERR_INVAL for a bad schema index). */
int cs_avro_decode_body(cs_avro_decoder_t *dec, int schema, const void *buf, size_t len,
                        avro_value_t **value);

/* Detail of the decoder's last error ("" when none); borrowed until the next call on dec. */
const char *cs_avro_decoder_error(const cs_avro_decoder_t *dec);

/* ---- Flat decoding (the sync consumer's input path) -------------------------------------
 * cs_avro_decode_flat() reads a record written with the CURRENT version of its schema
 * straight into one slot per top-level field, with no avro-c value and no allocation: strings
 * and bytes point into the caller's buffer (NOT NUL-terminated), arrays and maps are kept as
 * their encoded bytes and read on demand through cs_avro_iter_*. It checks the input exactly
 * as cs_avro_decode() does (same error codes and messages). A record written with another
 * version goes through cs_avro_decode()'s resolver instead, and the same accessors then read
 * the resolved generic value (out->value != NULL). */

typedef struct {
    const unsigned char *p; /* string, bytes, fixed: the bytes; array, map, record: encoded */
    size_t len;             /* byte length of the above */
    int64_t i;              /* boolean, int, long, enum index */
    size_t count;           /* array, map: elements (map entries as encoded, duplicates too) */
    const void *node;       /* array, map: its compiled schema (internal) */
    int branch;             /* union branch taken, -1 when the field is not a union */
    avro_type_t type;       /* type of the value, AVRO_NULL when null */
} cs_avro_slot_t;

typedef struct {
    int schema; /* as in cs_avro_decoded_t */
    cs_avro_framing_t framing;
    uint64_t fingerprint;
    int32_t confluent_id;
    bool resolved;
    const avro_value_t *value;   /* resolved records only: what the accessors read; else NULL */
    const cs_avro_slot_t *slots; /* flat records: one per field of the schema */
    size_t n;                    /* number of slots */
} cs_avro_flat_t;

/* Decodes one framed record as cs_avro_decode() does (same errors, same detail in
 * cs_avro_decoder_error()). *out and everything read through it are borrowed from the decoder
 * AND from buf: valid until the next cs_avro_decode*() call on dec, and while buf is. */
int cs_avro_decode_flat(cs_avro_decoder_t *dec, const void *buf, size_t len, cs_avro_flat_t *out);

/* The accessors below answer as the cs_avro_get_* ones on the same record would, except that
 * strings are not NUL-terminated (use *len) and map entries are seen as encoded (a key is
 * read up to its first NUL, as avro-c's maps do; a repeated key appears again, the last one
 * wins in cs_avro_flat_map_find). Any thread owning the record. */
bool cs_avro_flat_is_null(const cs_avro_flat_t *rec, int i);
const char *cs_avro_flat_str(const cs_avro_flat_t *rec, int i, size_t *len);
const void *cs_avro_flat_bytes(const cs_avro_flat_t *rec, int i, size_t *len);
bool cs_avro_flat_long(const cs_avro_flat_t *rec, int i, int64_t *out);
bool cs_avro_flat_int(const cs_avro_flat_t *rec, int i, int32_t *out);
bool cs_avro_flat_bool(const cs_avro_flat_t *rec, int i, bool *out);
int cs_avro_flat_enum(const cs_avro_flat_t *rec, int i);

/* Arrays and maps: number of elements of field i (0 when null or not an array/map). */
size_t cs_avro_flat_count(const cs_avro_flat_t *rec, int i);

/* Walks array or map field i in order. */
typedef struct {
    const cs_avro_flat_t *rec;
    int field;
    size_t k;                     /* elements returned so far */
    const unsigned char *p, *end; /* flat records: what is left of the encoding */
    int64_t left;                 /* elements left in the current block */
    const void *item;             /* the items' compiled schema */
    bool is_map;
} cs_avro_iter_t;

void cs_avro_iter_init(const cs_avro_flat_t *rec, int i, cs_avro_iter_t *it);

/* The next element: false at the end (or when field i is not an array/map). For a map *key /
 * *key_len get the entry's key (arrays: NULL / 0). *val / *val_len get the element's string
 * (seen through a nullable union), NULL when it is null or not a string. Any of the out
 * pointers may be NULL. */
bool cs_avro_iter_next(cs_avro_iter_t *it, const char **key, size_t *key_len, const char **val,
                       size_t *val_len);

/* Map field i: true when `key` is present, *val / *val_len its string (NULL for a null value). */
bool cs_avro_flat_map_find(const cs_avro_flat_t *rec, int i, const char *key, const char **val,
                           size_t *val_len);

/* ---- Field accessors --------------------------------------------------------------------
 * `rec` is a record value (a decoded record, an encoder value, a FieldState item, ...) and `i`
 * a field index (CS_PC_EMAIL, ...). Fields of type ["null", T] are seen through: getters
 * report null, setters pick the branch. None allocates, except where avro-c's generic values
 * do (a string longer than ever before in that field, a null <-> value flip, array/map
 * elements). Strings returned are NUL-terminated and borrowed from rec until it changes. */

/* True when field i is null (or i is not a field). */
bool cs_avro_is_null(const avro_value_t *rec, int i);

/* String field: its bytes (and length without the NUL in *len, optional), NULL when null or
 * not a string. */
const char *cs_avro_get_str(const avro_value_t *rec, int i, size_t *len);

/* Bytes field: pointer and length, NULL when null or not bytes. */
const void *cs_avro_get_bytes(const avro_value_t *rec, int i, size_t *len);

/* Integer fields (int, long, timestamp-millis): true and *out when set, false when null or
 * not an integer. cs_avro_get_int accepts an int field only. */
bool cs_avro_get_long(const avro_value_t *rec, int i, int64_t *out);
bool cs_avro_get_int(const avro_value_t *rec, int i, int32_t *out);

/* Boolean field: true and *out when set, false when null or not a boolean. */
bool cs_avro_get_bool(const avro_value_t *rec, int i, bool *out);

/* Enum field: symbol index (CS_CAUSE_..., ...), -1 when null or not an enum. */
int cs_avro_get_enum(const avro_value_t *rec, int i);

/* The field's value seen through a nullable union: 0, CS_ERR_NOT_FOUND when null,
 * CS_ERR_INVAL when i is not a field. *out is borrowed from rec. */
int cs_avro_get_field(const avro_value_t *rec, int i, avro_value_t *out);

/* Arrays and maps: number of elements of field i (0 when null or not an array/map). */
size_t cs_avro_count(const avro_value_t *rec, int i);

/* Element k of array field i (or value k of map field i, with its key in *key when key is
 * not NULL): 0, or CS_ERR_INVAL / CS_ERR_NOT_FOUND (k out of range). Borrowed from rec. */
int cs_avro_get_item(const avro_value_t *rec, int i, size_t k, avro_value_t *item,
                     const char **key);

/* String element k of array field i; NULL when out of range or not a string. */
const char *cs_avro_get_item_str(const avro_value_t *rec, int i, size_t k, size_t *len);

/* Map field i of nullable strings: entry k's key in *key and its value returned (NULL for
 * a null value); false when k is out of range. */
bool cs_avro_get_map_entry(const avro_value_t *rec, int i, size_t k, const char **key,
                           const char **value);

/* Map field i: true when `key` is present, *value its string (NULL for a null value). */
bool cs_avro_map_find(const avro_value_t *rec, int i, const char *key, const char **value);

/* Setters: 0, or CS_ERR_INVAL (bad index, wrong type, null for a non-nullable field, int out
 * of range, enum symbol out of range), CS_ERR_AVRO / CS_ERR_NOMEM from avro-c. */
int cs_avro_set_null(avro_value_t *rec, int i);
int cs_avro_set_str(avro_value_t *rec, int i, const char *s); /* s NULL: null */
int cs_avro_set_strn(avro_value_t *rec, int i, const char *s, size_t len);
int cs_avro_set_bytes(avro_value_t *rec, int i, const void *p, size_t len); /* p NULL: null */
int cs_avro_set_long(avro_value_t *rec, int i, int64_t v); /* int (range-checked) or long */
int cs_avro_set_int(avro_value_t *rec, int i, int32_t v);
int cs_avro_set_bool(avro_value_t *rec, int i, bool v);
int cs_avro_set_enum(avro_value_t *rec, int i, int symbol);

/* Arrays and maps. cs_avro_clear empties array/map field i. cs_avro_array_add appends a new
 * element (records: every field null / 0 / false / "" / empty / first symbol) and returns it
 * in *item, borrowed from rec. cs_avro_map_set_str sets key to a string (NULL: null). */
int cs_avro_clear(avro_value_t *rec, int i);
int cs_avro_array_add(avro_value_t *rec, int i, avro_value_t *item);
int cs_avro_array_add_str(avro_value_t *rec, int i, const char *s);
int cs_avro_map_set_str(avro_value_t *rec, int i, const char *key, const char *value);

#endif
