/* fuzz_activity: the activity producer's request-body parser (act_parse_body: JSON object,
 * array, NDJSON, form-urlencoded) and, through it, cs_httpd_form_parse, the e-mail key
 * normalisation and the ISO-8601 parser.
 *
 * Input: byte 0 picks the Content-Type (8 choices), the key mode and require_id; byte 1 the
 * per-request event limit; the rest is the body.
 * Invariants: success means 1..max_events events, each with a non-empty printable id of at
 * most ACT_ID_MAX bytes, a known type, a positive time, and a key: the decimal prospect id,
 * or a normalised e-mail (one '@', no upper case or blanks, at most 254 bytes, and
 * normalising it again changes nothing); failure means a 400/413/415 answer with an error
 * code and a message, and no events handed out. */
#include "fuzz.h"

#include "act.h"
#include "cs_err.h"
#include "cs_time.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const content_types[8] = {
    NULL,
    "application/json",
    "application/x-ndjson",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "multipart/form-data; boundary=x",
};

static void check_event(const act_event_t *ev, const act_parse_opts_t *o, size_t i)
{
    char again[ACT_KEY_MAX];
    size_t idlen = strnlen(ev->id, sizeof ev->id);
    if (idlen == 0 || idlen > ACT_ID_MAX)
        cs_fuzz_fail("activity", "event %zu: id of %zu bytes", i, idlen);
    for (size_t k = 0; k < idlen; k++)
        if ((unsigned char)ev->id[k] < 0x20 || ev->id[k] == 0x7f)
            cs_fuzz_fail("activity", "event %zu: control character in the id", i);
    if (ev->type < 0 || ev->type > CS_ACTIVITY_OTHER)
        cs_fuzz_fail("activity", "event %zu: type %d", i, ev->type);
    if (ev->occurred_at <= 0)
        cs_fuzz_fail("activity", "event %zu: occurred_at %" PRId64, i, ev->occurred_at);
    if (ev->identified != 0 && ev->identified != 1)
        cs_fuzz_fail("activity", "event %zu: identified %d", i, ev->identified);
    size_t klen = strnlen(ev->key, sizeof ev->key);
    if (klen == 0 || klen >= sizeof ev->key || strnlen(ev->email, sizeof ev->email) >= ACT_KEY_MAX)
        cs_fuzz_fail("activity", "event %zu: key of %zu bytes", i, klen);
    if (o->key_mode == ACT_KEY_ID) {
        char want[32];
        if (ev->prospect_id < 1)
            cs_fuzz_fail("activity", "event %zu: keyed by id without one", i);
        snprintf(want, sizeof want, "%" PRId64, ev->prospect_id);
        if (strcmp(want, ev->key))
            cs_fuzz_fail("activity", "event %zu: key %s for prospect %s", i, ev->key, want);
        return;
    }
    const char *at = strchr(ev->key, '@');
    if (!at || strchr(at + 1, '@') || klen > 254)
        cs_fuzz_fail("activity", "event %zu: key \"%s\" is not an address", i, ev->key);
    for (size_t k = 0; k < klen; k++)
        if (isupper((unsigned char)ev->key[k]) || isspace((unsigned char)ev->key[k]))
            cs_fuzz_fail("activity", "event %zu: key \"%s\" is not normalised", i, ev->key);
    if (cs_key_normalize_email(ev->key, klen, again, sizeof again) != (int)klen ||
        strcmp(again, ev->key))
        cs_fuzz_fail("activity", "event %zu: normalising key \"%s\" again changes it", i, ev->key);
}

int cs_fuzz_activity(const uint8_t *data, size_t size)
{
    act_event_t *events = NULL;
    size_t n = 0;
    act_parse_err_t err;
    cs_fuzz_quiet();
    if (size < 2)
        return 0;
    act_parse_opts_t o = {
        .key_mode = (data[0] >> 3) & 1 ? ACT_KEY_ID : ACT_KEY_EMAIL,
        .require_id = (data[0] >> 4) & 1,
        .max_events = data[1] < 128 ? 1 + data[1] % 8 : 1000,
        .now_ms = 1714557072000LL,
    };
    const char *ct = content_types[data[0] & 7];
    /* The body, copied so that reading one byte past it is an ASan error (libFuzzer's own
     * buffer has the same property; the regression replay's does not). */
    size_t len = size - 2;
    char *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, data + 2, len);
    int rc = act_parse_body(ct, body, len, &o, &events, &n, &err);
    if (rc == CS_OK) {
        if (!events || n < 1 || n > o.max_events)
            cs_fuzz_fail("activity", "success with %zu events (max %zu)", n, o.max_events);
        for (size_t i = 0; i < n; i++)
            check_event(&events[i], &o, i);
    } else {
        if (rc != CS_ERR_PARSE && rc != CS_ERR_NOMEM)
            cs_fuzz_fail("activity", "undocumented return %s", cs_err_name(rc));
        if (events || n)
            cs_fuzz_fail("activity", "events handed out with an error");
        if (rc == CS_ERR_PARSE && (!err.error[0] || !err.message[0] ||
                                   (err.status != 400 && err.status != 413 && err.status != 415)))
            cs_fuzz_fail("activity", "rejection without a proper answer (%d %s)", err.status,
                         err.error);
        if (strnlen(err.error, sizeof err.error) >= sizeof err.error ||
            strnlen(err.field, sizeof err.field) >= sizeof err.field ||
            strnlen(err.message, sizeof err.message) >= sizeof err.message)
            cs_fuzz_fail("activity", "an error string is not terminated");
    }
    /* The type names: every prefix of the body as a name. */
    (void)act_type_lookup(body, len < 40 ? len : 40);
    free(events);
    free(body);
    return 0;
}

CS_FUZZ_ENTRY(activity)
