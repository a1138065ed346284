/* Header mapping and row conversion of crmsync-import (see import.h). */
#include "import.h"

#include "cs_err.h"
#include "cs_log.h"
#include "cs_time.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOG_COMP "import"

static const char *const field_names[IM_FIELD_COUNT_] = {
    "email", "first_name", "last_name", "company",          "phone",       "job_title",
    "score", "grade",      "opted_out", "assigned_user_id", "do_not_sync", "prospect_id",
};

/* Accepted header spellings, squeezed (lower case, no ' ', '_' or '-'). */
static const struct {
    const char *squeezed;
    int field;
} aliases[] = {
    {"email", IM_EMAIL},
    {"emailaddress", IM_EMAIL},
    {"firstname", IM_FIRST_NAME},
    {"lastname", IM_LAST_NAME},
    {"company", IM_COMPANY},
    {"phone", IM_PHONE},
    {"jobtitle", IM_JOB_TITLE},
    {"title", IM_JOB_TITLE},
    {"score", IM_SCORE},
    {"grade", IM_GRADE},
    {"optedout", IM_OPTED_OUT},
    {"assigneduserid", IM_ASSIGNED_USER_ID},
    {"assignedtoid", IM_ASSIGNED_USER_ID},
    {"donotsync", IM_DO_NOT_SYNC},
    {"prospectid", IM_PROSPECT_ID},
    {"id", IM_PROSPECT_ID},
};

const char *im_field_name(int f)
{
    return f >= 0 && f < IM_FIELD_COUNT_ ? field_names[f] : "?";
}

int im_field_lookup(const char *header)
{
    char sq[64];
    size_t n = 0;
    for (const char *p = header; *p; p++) {
        char c = *p;
        if (c == ' ' || c == '_' || c == '-' || c == '\t')
            continue;
        if (n + 1 >= sizeof(sq))
            return -1;
        sq[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    sq[n] = '\0';
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (!strcmp(aliases[i].squeezed, sq))
            return aliases[i].field;
    return -1;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims s[0..*len) in place (returns the new start). */
static const char *trim(const char *s, size_t *len)
{
    size_t b = 0, e = *len;
    while (b < e && is_ws(s[b]))
        b++;
    while (e > b && is_ws(s[e - 1]))
        e--;
    *len = e - b;
    return s + b;
}

void im_map_free(im_map_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->ncols; i++) {
        free(m->name[i]);
        m->name[i] = NULL;
    }
    m->ncols = 0;
}

int im_map_header(im_map_t *m, const cs_csv_record_t *hdr, im_unknown_t unknown,
                  im_key_mode_t key_mode, char *errstr, size_t n)
{
    memset(m, 0, sizeof(*m));
    for (int f = 0; f < IM_FIELD_COUNT_; f++)
        m->col[f] = -1;
    if (hdr->nfields > IM_MAX_COLUMNS)
        return cs_err_set(errstr, n, CS_ERR_PARSE, "header has %zu columns (at most %d)",
                          hdr->nfields, IM_MAX_COLUMNS);
    m->ncols = hdr->nfields;
    for (size_t i = 0; i < hdr->nfields; i++) {
        size_t len = hdr->lens[i];
        const char *s = trim(hdr->fields[i], &len);
        if (!(m->name[i] = strndup(s, len))) {
            im_map_free(m);
            return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
        }
        int f = im_field_lookup(m->name[i]);
        if (f >= 0) {
            if (m->col[f] >= 0) {
                cs_err_set(errstr, n, CS_ERR_PARSE,
                           "columns %d (\"%.64s\") and %zu (\"%.64s\") both map to %s",
                           m->col[f] + 1, m->name[m->col[f]], i + 1, m->name[i], field_names[f]);
                im_map_free(m);
                return CS_ERR_PARSE;
            }
            m->col[f] = (int)i;
            m->kind[i] = f;
            continue;
        }
        if (len == 0) {
            CS_WARN(LOG_COMP, "column %zu has no name: ignored", i + 1);
            m->kind[i] = IM_IGNORED;
            m->nignored++;
        } else if (unknown == IM_UNKNOWN_ERROR) {
            cs_err_set(errstr, n, CS_ERR_PARSE,
                       "column %zu (\"%.64s\") is not a prospect field "
                       "(import.unknown_columns=error)",
                       i + 1, m->name[i]);
            im_map_free(m);
            return CS_ERR_PARSE;
        } else if (unknown == IM_UNKNOWN_IGNORE) {
            CS_WARN(LOG_COMP, "column %zu (\"%s\") is not a prospect field: ignored", i + 1,
                    m->name[i]);
            m->kind[i] = IM_IGNORED;
            m->nignored++;
        } else {
            for (size_t j = 0; j < i; j++)
                if (m->kind[j] == IM_CUSTOM && !strcmp(m->name[j], m->name[i])) {
                    cs_err_set(errstr, n, CS_ERR_PARSE,
                               "columns %zu and %zu are both named \"%.64s\"", j + 1, i + 1,
                               m->name[i]);
                    im_map_free(m);
                    return CS_ERR_PARSE;
                }
            m->kind[i] = IM_CUSTOM;
            m->ncustom++;
        }
    }
    if (m->col[IM_EMAIL] < 0) {
        im_map_free(m);
        return cs_err_set(errstr, n, CS_ERR_PARSE,
                          "no email column in the header (accepted names: email, "
                          "Email, email_address)");
    }
    if (key_mode == IM_KEY_ID && m->col[IM_PROSPECT_ID] < 0) {
        im_map_free(m);
        return cs_err_set(errstr, n, CS_ERR_PARSE,
                          "prospect.key=id needs a prospect id column (prospect_id or id)");
    }
    for (int f = 0; f < IM_FIELD_COUNT_; f++)
        if (m->col[f] >= 0)
            m->changed[m->nchanged++] = field_names[f];
    return CS_OK;
}

/* ---- values ---- */

/* Parses a whole decimal integer in [min, max] (surrounding blanks allowed). */
static int parse_int(const char *s, size_t len, long long min, long long max, long long *out)
{
    char buf[32];
    char *end;
    s = trim(s, &len);
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || end == buf || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* true/false, 1/0, yes/no, y/n (any case). */
static int parse_bool(const char *s, size_t len, int *out)
{
    static const char *const t[] = {"true", "1", "yes", "y"}, *const f[] = {"false", "0", "no",
                                                                            "n"};
    s = trim(s, &len);
    for (size_t i = 0; i < 4; i++) {
        if (strlen(t[i]) == len && !strncasecmp(s, t[i], len)) {
            *out = 1;
            return 0;
        }
        if (strlen(f[i]) == len && !strncasecmp(s, f[i], len)) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Quotes a cell for a rejection message: at most 40 bytes, control characters as '?'. */
static void cell_excerpt(const char *s, size_t len, char *out, size_t outsize)
{
    size_t k = 0, max = outsize > 48 ? 40 : outsize / 2;
    for (size_t i = 0; i < len && k < max; i++)
        out[k++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (len > max && k + 4 < outsize) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

static int reject(char *reason, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reject(char *reason, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, n, fmt, ap);
    va_end(ap);
    return CS_ERR_PARSE;
}

static const int pc_string_field[IM_FIELD_COUNT_] = {
    [IM_FIRST_NAME] = CS_PC_FIRST_NAME, [IM_LAST_NAME] = CS_PC_LAST_NAME,
    [IM_COMPANY] = CS_PC_COMPANY,       [IM_PHONE] = CS_PC_PHONE,
    [IM_JOB_TITLE] = CS_PC_JOB_TITLE,   [IM_GRADE] = CS_PC_GRADE,
};

int im_row_fill(const im_row_ctx_t *ctx, const cs_csv_record_t *row, avro_value_t *v, char *key,
                size_t keysize, char *reason, size_t rn)
{
    const im_map_t *m = ctx->map;
    char cell[64], eid[160];
    long long num;
    int b, err = 0;

    if (row->nfields != m->ncols)
        return reject(reason, rn, "expected %zu fields, found %zu", m->ncols, row->nfields);

    /* email: required, normalised into the key (unique-email mode) */
    size_t elen = row->lens[m->col[IM_EMAIL]];
    const char *email = trim(row->fields[m->col[IM_EMAIL]], &elen);
    if (elen == 0)
        return reject(reason, rn, "email is empty");
    char nkey[256];
    if (cs_key_normalize_email(email, elen, nkey, sizeof(nkey)) <= 0) {
        cell_excerpt(email, elen, cell, sizeof(cell));
        return reject(reason, rn, "invalid email \"%s\"", cell);
    }

    /* prospect id: optional, required as the key in key mode ID */
    long long prospect_id = -1;
    if (m->col[IM_PROSPECT_ID] >= 0) {
        int c = m->col[IM_PROSPECT_ID];
        size_t len = row->lens[c];
        const char *s = trim(row->fields[c], &len);
        if (len > 0 && parse_int(s, len, 1, INT64_MAX, &num) < 0) {
            cell_excerpt(s, len, cell, sizeof(cell));
            return reject(reason, rn, "bad number in %s: \"%s\"", m->name[c], cell);
        }
        if (len > 0)
            prospect_id = num;
    }
    if (ctx->key_mode == IM_KEY_ID) {
        if (prospect_id < 0)
            return reject(reason, rn, "prospect id is empty (prospect.key=id)");
        if (snprintf(key, keysize, "%lld", prospect_id) >= (int)keysize)
            return reject(reason, rn, "key too long");
    } else if (snprintf(key, keysize, "%s", nkey) >= (int)keysize) {
        return reject(reason, rn, "key too long");
    }

    snprintf(eid, sizeof(eid), "import:%s:%llu", ctx->import_id, (unsigned long long)row->line);
    err |= cs_avro_set_str(v, CS_PC_EVENT_ID, eid);
    err |= cs_avro_set_str(v, CS_PC_PROSPECT_KEY, key);
    if (prospect_id > 0)
        err |= cs_avro_set_long(v, CS_PC_PROSPECT_ID, prospect_id);
    err |= cs_avro_set_enum(v, CS_PC_CAUSE, CS_CAUSE_IMPORT);
    err |= cs_avro_set_long(v, CS_PC_UPDATED_AT, ctx->updated_at);
    err |= cs_avro_set_long(v, CS_PC_EVENT_TIME, ctx->event_time);
    err |= cs_avro_set_strn(v, CS_PC_EMAIL, email, elen);

    for (int f = 0; f < IM_FIELD_COUNT_; f++) {
        int c = m->col[f];
        if (c < 0 || f == IM_EMAIL || f == IM_PROSPECT_ID)
            continue;
        size_t len = row->lens[c];
        const char *s = trim(row->fields[c], &len);
        switch (f) {
        case IM_SCORE:
            if (len == 0)
                break; /* the schema default, 0 */
            if (parse_int(s, len, INT32_MIN, INT32_MAX, &num) < 0) {
                cell_excerpt(s, len, cell, sizeof(cell));
                return reject(reason, rn, "bad number in %s: \"%s\"", m->name[c], cell);
            }
            err |= cs_avro_set_int(v, CS_PC_SCORE, (int32_t)num);
            break;
        case IM_ASSIGNED_USER_ID:
            if (len == 0)
                break; /* null: unassigned */
            if (parse_int(s, len, 1, INT64_MAX, &num) < 0) {
                cell_excerpt(s, len, cell, sizeof(cell));
                return reject(reason, rn, "bad number in %s: \"%s\"", m->name[c], cell);
            }
            err |= cs_avro_set_long(v, CS_PC_ASSIGNED_USER_ID, num);
            break;
        case IM_OPTED_OUT:
        case IM_DO_NOT_SYNC:
            if (len == 0)
                break; /* false */
            if (parse_bool(s, len, &b) < 0) {
                cell_excerpt(s, len, cell, sizeof(cell));
                return reject(reason, rn, "bad boolean in %s: \"%s\" (true/false, 1/0, yes/no)",
                              m->name[c], cell);
            }
            err |= cs_avro_set_bool(v, f == IM_OPTED_OUT ? CS_PC_OPTED_OUT : CS_PC_DO_NOT_SYNC,
                                    b != 0);
            break;
        default:
            if (len > 0)
                err |= cs_avro_set_strn(v, pc_string_field[f], s, len);
            break;
        }
    }
    /* Unknown columns as custom fields: an empty cell is null ("the field is empty"). */
    if (m->ncustom)
        for (size_t c = 0; c < m->ncols; c++)
            if (m->kind[c] == IM_CUSTOM)
                err |= cs_avro_map_set_str(v, CS_PC_CUSTOM_FIELDS, m->name[c],
                                           row->lens[c] ? row->fields[c] : NULL);
    for (size_t i = 0; i < m->nchanged; i++)
        err |= cs_avro_array_add_str(v, CS_PC_CHANGED_FIELDS, m->changed[i]);
    if (m->ncustom)
        for (size_t c = 0; c < m->ncols; c++)
            if (m->kind[c] == IM_CUSTOM)
                err |= cs_avro_array_add_str(v, CS_PC_CHANGED_FIELDS, m->name[c]);
    if (err)
        return reject(reason, rn, "cannot build the record (out of memory?)");
    return CS_OK;
}
