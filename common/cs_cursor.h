/* cs_cursor: the durable poll cursor of a producer, and the record of what it already
 * published at the cursor's edge.
 *
 * A polling producer asks its source for "records modified at or after T", ordered by
 * modification time, and publishes each one. The cursor is T: the newest modification time
 * of which everything up to and including it has been published (every delivery report in).
 * Two things make "at or after" imprecise, and both are handled here:
 *   - several records share one timestamp (the APIs answer to the second), so the records
 *     at exactly T that were already published are remembered (ids_at_cursor);
 *   - the source may show a change late (read lag, long transactions), so each poll re-reads
 *     an overlap window before T, and the handled set remembers (id, modification time) of
 *     every record handled within the window, so a re-read is not published twice.
 * Because the timestamps have one-second resolution, a record may change twice within one
 * second and keep its modification time: each handled record also carries a hash of its
 * content, and a record at the same time with another content is a new change.
 * The set lives in memory and is pruned to the window as the cursor moves; only the ids at
 * the cursor are made durable. After a restart, records of the window before T may thus be
 * published once more (consumers de-duplicate on event ids and watermarks); records at T
 * and after are neither skipped nor repeated.
 *
 * Durability: each cursor is a record of the compacted cursors topic (topic.cursors, one
 * partition), key = the cursor's name ("prospect-producer", "crm-producer:Lead", ...),
 * value = a small JSON document:
 *   {"cursor_ms": 1714572672000, "ids_at_cursor": ["1001", "1002"],
 *    "hashes_at_cursor": ["9f86d081884c7d65", "..."], "written_at": 1714572675123}
 * (hashes_at_cursor: the content hash of each id, same order, "" when unknown;
 * "ids_truncated": true when more ids were at the cursor than the document may carry).
 * A compacted topic rather than a file: it survives losing the host or the pod, needs no
 * volume, and is replicated like the events it describes.
 *
 * A cs_cursor_t belongs to one thread. cs_cursor_load() may run on any thread. */
#ifndef CS_CURSOR_H
#define CS_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_conf.h"
#include "cs_kafka.h"

/* Ids written into the durable document at most (beyond: "ids_truncated"). */
#define CS_CURSOR_MAX_IDS 10000

typedef struct cs_cursor_s cs_cursor_t;

/* A cursor named name (the Kafka key; copied) at initial_ms, with an empty handled set.
 * NULL on allocation failure. Caller frees with cs_cursor_destroy(). */
cs_cursor_t *cs_cursor_new(const char *name, int64_t initial_ms);
void cs_cursor_destroy(cs_cursor_t *c); /* accepts NULL */

/* Borrowed until destroy. */
const char *cs_cursor_name(const cs_cursor_t *c);

/* The cursor time (epoch ms, the source's clock). */
int64_t cs_cursor_ms(const cs_cursor_t *c);

/* Non-zero once a durable value was read by cs_cursor_load() or cs_cursor_from_json(). */
int cs_cursor_loaded(const cs_cursor_t *c);

/* Where the next query starts: cursor - overlap_ms (not below 0). The query must include
 * that instant (">=" semantics). */
int64_t cs_cursor_query_from(const cs_cursor_t *c, int64_t overlap_ms);

/* True when the record version (id, modification time ms, content hash) was already handled:
 * marked with a later ms, or with this ms and this hash (hash 0 = unknown: any hash
 * matches). A record modified again (a newer ms, or the same ms and other content) is not
 * seen. */
bool cs_cursor_seen(const cs_cursor_t *c, const char *id, int64_t ms, uint64_t hash);

/* Records (id, ms, hash) as handled: published and delivered, or rejected and reported.
 * Returns CS_OK, CS_ERR_NOMEM, or CS_ERR_INVAL for an empty id or one of 64 bytes or more. */
int cs_cursor_mark(cs_cursor_t *c, const char *id, int64_t ms, uint64_t hash);

/* A 64-bit content hash (FNV-1a) of len bytes, never 0: for cs_cursor_seen/mark. */
uint64_t cs_cursor_hash(const void *data, size_t len);

/* Moves the cursor forward to ms (no-op when ms is not newer), then forgets handled records
 * older than cursor - overlap_ms. Call it only when every record up to ms has been handled. */
void cs_cursor_advance(cs_cursor_t *c, int64_t ms, int64_t overlap_ms);

/* Handled records remembered (the window plus the ids at the cursor). */
size_t cs_cursor_handled(const cs_cursor_t *c);

/* Records handled at exactly the cursor time. */
size_t cs_cursor_ids_at_cursor(const cs_cursor_t *c);

/* Increases whenever the durable document would change (cursor time or ids at the cursor):
 * compare with the version last written to know when to write again. */
uint64_t cs_cursor_version(const cs_cursor_t *c);

/* The durable document (at most max_ids ids; 0 = CS_CURSOR_MAX_IDS), NUL-terminated,
 * malloc'd: caller frees. NULL on allocation failure. */
char *cs_cursor_to_json(const cs_cursor_t *c, size_t max_ids);

/* Replaces the cursor time and the handled set with a durable document. Returns CS_OK, or
 * CS_ERR_PARSE with errstr (the cursor is then unchanged). */
int cs_cursor_from_json(cs_cursor_t *c, const char *text, size_t len, char *errstr,
                        size_t errstr_size);

/* Reads the cursors topic from its beginning to its end (high watermarks taken at the start)
 * and applies, for each of the n cursors, the last readable value written under its name;
 * a value that does not parse is logged and skipped (the one before it stands). Cursors
 * without a value keep their initial time. conf supplies kafka.*. Returns CS_OK;
 * CS_ERR_NOT_FOUND (the topic does not exist: errstr says so), CS_ERR_TIMEOUT or CS_ERR_KAFKA
 * (broker unreachable within timeout_ms: retry later; never start from the initial time
 * on such an error). */
int cs_cursor_load(const cs_conf_t *conf, const char *topic, cs_cursor_t *const *cursors, size_t n,
                   int timeout_ms, char *errstr, size_t errstr_size);

/* Enqueues the cursor's document to topic with cs_producer_send (key = the name). Success
 * is the delivery report carrying msg_opaque, as for any message. Returns what
 * cs_producer_send returns, or CS_ERR_NOMEM. */
int cs_cursor_send(cs_producer_t *p, const char *topic, const cs_cursor_t *c, void *msg_opaque,
                   int block_ms);

#endif
