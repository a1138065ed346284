/* sb_util: small pieces the sandbox modules share: time formats, Salesforce ids, a string
 * multimap, a reproducible random generator, base64 and e-mail syntax.
 *
 * All functions are pure or operate on caller-owned objects; none takes a lock. */
#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ---- time ---- */

#define SB_TIME_BUF 64

/* "2024-05-01T10:11:12.000+0000": the Salesforce REST wire format (UTC, milliseconds,
 * offset without a colon). Returns buf. */
char *sb_fmt_sf(int64_t ms, char *buf);

/* "2024-05-01T06:11:12-04:00": ISO-8601 in a fixed offset (minutes east of UTC), seconds
 * precision, as Account Engagement v5 answers. Returns buf. */
char *sb_fmt_iso(int64_t ms, int offset_min, char *buf);

/* Parses an ISO-8601 date-time "YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm|+hhmm)". A space in
 * place of the '+' (a '+' that was URL-decoded to a space) is accepted. len may be (size_t)-1
 * for a NUL-terminated string. Returns 0 and *ms (UTC epoch milliseconds), or -1. */
int sb_parse_datetime(const char *s, size_t len, int64_t *ms);

/* Parses "+hh:mm" / "-hh:mm" / "Z" into minutes east of UTC. Returns 0 or -1. */
int sb_parse_offset(const char *s, int *minutes);

/* ---- Salesforce ids ---- */

/* Builds an 18-character id: 3-char key prefix, "5g0", 9 base-62 digits of n, and the
 * 3-character case-safe suffix. out must hold 19 bytes. */
void sb_sfid_make(const char *prefix, uint64_t n, char *out);

/* Checks a 15- or 18-character id (alphanumeric; an 18-char id's suffix must match) and writes
 * its 18-character form to out (19 bytes). Returns 0 when well formed, -1 otherwise. */
int sb_sfid_normalize(const char *id, char *out);

/* Writes the 3-character case-safe suffix of the 15-character id to out (4 bytes). */
void sb_sfid_suffix(const char *id15, char *out);

/* ---- a string -> pointer multimap (chained hash table) ---- */

typedef struct sb_map_s sb_map_t;

/* Returns NULL on allocation failure. Caller frees with sb_map_destroy(). */
sb_map_t *sb_map_new(void);
void sb_map_destroy(sb_map_t *m); /* accepts NULL; values are not freed */
void sb_map_clear(sb_map_t *m);

/* Adds (key, val); the key is copied. Several values may share a key. Returns 0 or -1. */
int sb_map_add(sb_map_t *m, const char *key, void *val);

/* Removes the entry (key, val). Returns 0 when found, -1 otherwise. */
int sb_map_del(sb_map_t *m, const char *key, void *val);

/* First value added under key that is still present, or NULL. */
void *sb_map_get(const sb_map_t *m, const char *key);

/* Calls cb for each value under key (in insertion order) until cb returns non-zero; returns
 * that value or 0. */
int sb_map_each(const sb_map_t *m, const char *key, int (*cb)(void *opaque, void *val),
                void *opaque);

size_t sb_map_count(const sb_map_t *m);

/* ---- a reproducible random generator (splitmix64) ---- */

typedef struct sb_rng_s {
    uint64_t s;
} sb_rng_t;

void sb_rng_seed(sb_rng_t *r, uint64_t seed);
uint64_t sb_rng_next(sb_rng_t *r);
/* Uniform in [0, 1). */
double sb_rng_double(sb_rng_t *r);

/* ---- text ---- */

/* Standard base64 (with padding). Returns a malloc'd string or NULL. */
char *sb_b64_encode(const unsigned char *data, size_t len);
/* URL-safe base64 without padding. Returns a malloc'd string or NULL. */
char *sb_b64url_encode(const unsigned char *data, size_t len);
/* Decodes URL-safe base64 (padding optional). Returns a malloc'd NUL-terminated buffer (length
 * in *out_len) or NULL on bad input. */
unsigned char *sb_b64url_decode(const char *s, size_t *out_len);

/* Lower-cases ASCII into a malloc'd copy; NULL on ENOMEM. */
char *sb_lower_dup(const char *s);

/* E-mail syntax as the sandbox checks it: one '@', a non-empty local part of allowed
 * characters, a domain of dot-separated labels with at least one dot, no spaces, max 80
 * characters. Returns 1 when valid. */
int sb_email_valid(const char *s);

/* Returns a malloc'd copy of s in which every byte that is not part of a valid UTF-8 sequence
 * is replaced by '?', so user text can be echoed in JSON. NULL on ENOMEM. */
char *sb_utf8_dup(const char *s);

/* Parses "First Last <email>" (or a bare e-mail) into malloc'd parts. Returns 0 or -1. */
int sb_parse_person(const char *s, char **first, char **last, char **email);

#endif
