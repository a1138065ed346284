/* cs_time: timestamps and prospect keys as the producers read them from outside input
 * (marketing API answers, activity webhooks, CSV imports).
 *
 * Pure functions, no allocation, any thread. */
#ifndef CS_TIME_H
#define CS_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Parses an ISO-8601 / RFC 3339 date-time into milliseconds since the epoch (UTC):
 *   YYYY-MM-DD                                   midnight UTC
 *   YYYY-MM-DDTHH:MM[:SS[.fraction]][offset]     'T', 't' or one space between date and time
 * offset: "Z", "z", "+HH:MM", "-HH:MM", "+HHMM", "+HH"; none = UTC. Fractions beyond
 * milliseconds are truncated; a leap second (:60) is accepted as :59.999. Fields are range-
 * checked (month 1-12, day within the month, hour 0-23 (24:00:00 accepted as the next midnight),
 * offset below 24 h); leading or trailing characters are an error. Years 0001-9999.
 * Returns CS_OK with *ms_out set, or CS_ERR_PARSE (ms_out untouched) or CS_ERR_INVAL
 * (NULL argument). Examples: "2024-05-01T10:11:12-04:00", "2024-05-01T14:11:12.000+0000". */
int cs_time_parse_iso8601(const char *s, int64_t *ms_out);

/* Normalises an e-mail address into a prospect key (unique-email mode): leading and trailing
 * whitespace removed, ASCII letters lower-cased, everything else kept. in need not be
 * NUL-terminated; len is its length. The address must look like one: exactly one '@', a
 * non-empty local part of printable characters without whitespace, '"', '(', ')', ',', ':',
 * ';', '<', '>', '[', ']' or '\\' (no leading, trailing or double dot), and a domain of at
 * least two dot-separated labels of letters, digits, '-' or UTF-8 bytes (no empty label),
 * 254 bytes at most. Returns the key's length (> 0) with out NUL-terminated, or
 * CS_ERR_PARSE (not an e-mail address), CS_ERR_TOO_LARGE (outsize too small; >= 255 always
 * fits), CS_ERR_INVAL (NULL argument); out is then "" when outsize > 0. */
int cs_key_normalize_email(const char *in, size_t len, char *out, size_t outsize);

/* Flags of cs_time_format_iso8601(). */
#define CS_TIME_FMT_MS 0x1     /* milliseconds: "...T10:11:12.345Z" */
#define CS_TIME_FMT_OFFSET 0x2 /* "+00:00" instead of "Z" (the marketing API's shape) */

/* Formats ms (epoch milliseconds) as a UTC ISO-8601 date-time, "2024-05-01T14:11:12Z" by
 * default (seconds truncated toward the past; SOQL's date-time literal shape). Years
 * 0001-9999. Returns CS_OK, CS_ERR_TOO_LARGE (size below 30: buf is then ""), CS_ERR_INVAL
 * (out of range or NULL buf). */
int cs_time_format_iso8601(int64_t ms, int flags, char *buf, size_t size);

#endif
