/* cs_csv: a streaming RFC 4180 CSV reader in constant memory.
 *
 * The reader pulls input through a read callback into one fixed input buffer and unescapes
 * each record into one fixed record buffer; both are allocated by cs_csv_new() and never
 * grow, so a file of any size is read with the same memory and no allocation per record.
 *
 * Accepted input (RFC 4180 plus what spreadsheets write):
 *   - fields separated by the delimiter (',' by default), records by CRLF, LF or a lone CR;
 *   - a field in double quotes may hold delimiters, CR, LF and doubled quotes ("" -> ");
 *   - a UTF-8 byte order mark at the very start is skipped;
 *   - the last record may lack its line break;
 *   - a quote inside an unquoted field (5'11") is kept as a literal character unless
 *     strict_quotes is set (then it is an error);
 *   - blank lines (nothing between two line breaks) are skipped when skip_blank_lines is set.
 * Errors are per record: the reader reports one, skips the rest of that record and goes on
 * with the next, so one bad row never stops a file. What "the rest of the record" is:
 *   - a character after a closing quote ("abc"x), a NUL byte, more than max_fields fields,
 *     invalid UTF-8 (when validate_utf8 is set): the record is read to its end as usual
 *     (quotes still count) and discarded;
 *   - a record longer than max_record bytes: discarded up to its end, or, when the overflow
 *     happens inside a quoted field (most likely an unterminated quote), up to the next
 *     physical line break (the lines consumed are in the record's line range);
 *   - an unterminated quoted field at the end of the input: the record is reported and the
 *     input is over.
 *
 * Threads: a reader belongs to one thread at a time. Pure of global state: fuzzable with
 * cs_csv_new_mem(). */
#ifndef CS_CSV_H
#define CS_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct cs_csv_s cs_csv_t;

/* Reads up to n bytes into buf. Returns the count (> 0), 0 at end of input, or -1 on an I/O
 * error (errno kept for the message). Called only from cs_csv_next(). */
typedef ssize_t (*cs_csv_read_cb_t)(void *opaque, void *buf, size_t n);

typedef struct cs_csv_opts_s {
    char delimiter;       /* default ',' */
    size_t max_record;    /* bytes of one unescaped record (fields + 1 NUL each); default
                             1 MiB, minimum 64 */
    size_t max_fields;    /* fields per record; default 1024 */
    size_t input_buffer;  /* read size; default 64 KiB, minimum 16 */
    int strict_quotes;    /* 1: a quote inside an unquoted field is an error */
    int skip_blank_lines; /* 1: an empty line is no record (default when opts is NULL) */
    int validate_utf8;    /* 1: a field that is not valid UTF-8 is an error (default when
                             opts is NULL) */
} cs_csv_opts_t;

/* The defaults above, with skip_blank_lines and validate_utf8 on. */
void cs_csv_opts_init(cs_csv_opts_t *opts);

/* One record. Fields are NUL-terminated (a field never contains a NUL byte) and borrowed
 * until the next cs_csv_next() or cs_csv_destroy(). */
typedef struct cs_csv_record_s {
    size_t nfields;
    const char *const *fields;
    const size_t *lens;     /* byte length of each field */
    const unsigned *quoted; /* 1 when the field was quoted */
    uint64_t line;          /* physical line (1-based) where the record starts */
    uint64_t line_end;      /* physical line where it ends (> line for embedded newlines) */
    uint64_t index;         /* 1-based count of records returned so far, bad ones included */
} cs_csv_record_t;

/* Creates a reader over a read callback (opaque is passed to it). opts may be NULL for the
 * defaults. Returns NULL on allocation failure or bad options. Caller frees with
 * cs_csv_destroy(), which does not close anything the callback reads from. */
cs_csv_t *cs_csv_new(const cs_csv_opts_t *opts, cs_csv_read_cb_t read_cb, void *opaque);

/* A reader over a file descriptor (not closed by cs_csv_destroy()). */
cs_csv_t *cs_csv_new_fd(const cs_csv_opts_t *opts, int fd);

/* A reader over a memory buffer (borrowed until cs_csv_destroy()). */
cs_csv_t *cs_csv_new_mem(const cs_csv_opts_t *opts, const void *data, size_t len);

/* Accepts NULL. */
void cs_csv_destroy(cs_csv_t *c);

/* Reads the next record into *rec. Returns
 *   1               a record (rec filled);
 *   0               end of input (rec untouched);
 *   CS_ERR_PARSE    a malformed record, skipped (rec->line, line_end and index say which;
 *                   cs_csv_error() says why); call again for the next record;
 *   CS_ERR_TOO_LARGE a record over max_record bytes or max_fields fields, skipped likewise;
 *   CS_ERR_IO       the read callback failed; the reader stays failed (every later call
 *                   returns CS_ERR_IO). */
int cs_csv_next(cs_csv_t *c, cs_csv_record_t *rec);

/* Why the last cs_csv_next() failed ("" after a success). Borrowed until the next call. */
const char *cs_csv_error(const cs_csv_t *c);

/* Input bytes consumed so far (BOM included), for progress reporting. */
uint64_t cs_csv_bytes(const cs_csv_t *c);

/* Bytes the reader allocated (constant for its lifetime; for tests and docs). */
size_t cs_csv_memory(const cs_csv_t *c);

#endif
