/* Unit: the producers' cursor (cs_cursor): the handled set at the cursor's edge, the overlap
 * window, same-second changes told apart by content, and the durable JSON document. */
#include "cs_cursor.h"
#include "cs_err.h"
#include "cs_test.h"

#include <jansson.h>

int main(void)
{
    const int64_t T = 1714572672000LL;
    char err[256];
    cs_cursor_t *c = cs_cursor_new("prospect-producer", 0), *d;
    REQUIRE(c);
    CHECK_STR(cs_cursor_name(c), "prospect-producer");
    CHECK_INT(cs_cursor_ms(c), 0);
    CHECK_INT(cs_cursor_loaded(c), 0);
    CHECK_INT(cs_cursor_query_from(c, 2000), 0); /* never before the epoch */

    /* a poll handles three records: two in the same second */
    CHECK(!cs_cursor_seen(c, "1", T - 1000, 11));
    CHECK_INT(cs_cursor_mark(c, "1", T - 1000, 11), CS_OK);
    CHECK_INT(cs_cursor_mark(c, "2", T, 22), CS_OK);
    CHECK_INT(cs_cursor_mark(c, "3", T, 33), CS_OK);
    uint64_t v0 = cs_cursor_version(c);
    cs_cursor_advance(c, T, 2000);
    CHECK(cs_cursor_version(c) > v0);
    CHECK_INT(cs_cursor_ms(c), T);
    CHECK_INT(cs_cursor_query_from(c, 2000), T - 2000);
    CHECK_INT(cs_cursor_ids_at_cursor(c), 2);
    CHECK_INT(cs_cursor_handled(c), 3); /* "1" is inside the overlap window */

    /* the next poll re-reads the window: nothing handled is seen as new */
    CHECK(cs_cursor_seen(c, "1", T - 1000, 11));
    CHECK(cs_cursor_seen(c, "2", T, 22));
    CHECK(cs_cursor_seen(c, "3", T, 0)); /* unknown content matches */
    /* ... but a newer version is new: later time, or same second and other content */
    CHECK(!cs_cursor_seen(c, "2", T + 1000, 22));
    CHECK(!cs_cursor_seen(c, "3", T, 34));
    CHECK(!cs_cursor_seen(c, "4", T, 44));        /* late-visible record at the cursor second */
    CHECK(!cs_cursor_seen(c, "5", T - 1500, 55)); /* late-visible within the window */
    /* an older version of a record handled later is seen (never republished backwards) */
    CHECK(cs_cursor_seen(c, "1", T - 5000, 99));

    /* same-second change: marking the new content bumps the version (ids at cursor changed) */
    v0 = cs_cursor_version(c);
    CHECK_INT(cs_cursor_mark(c, "3", T, 34), CS_OK);
    CHECK(cs_cursor_version(c) > v0);
    CHECK(cs_cursor_seen(c, "3", T, 34));
    CHECK(!cs_cursor_seen(c, "3", T, 33));
    /* re-marking the same version changes nothing */
    v0 = cs_cursor_version(c);
    CHECK_INT(cs_cursor_mark(c, "3", T, 34), CS_OK);
    CHECK_INT(cs_cursor_version(c), v0);
    /* marking inside the window (not at the cursor) does not change the document */
    CHECK_INT(cs_cursor_mark(c, "5", T - 1500, 55), CS_OK);
    CHECK_INT(cs_cursor_version(c), v0);

    /* never backwards */
    cs_cursor_advance(c, T - 10000, 2000);
    CHECK_INT(cs_cursor_ms(c), T);

    /* moving on prunes what leaves the window */
    CHECK_INT(cs_cursor_mark(c, "2", T + 5000, 23), CS_OK);
    cs_cursor_advance(c, T + 5000, 2000);
    CHECK_INT(cs_cursor_handled(c), 1);
    CHECK_INT(cs_cursor_ids_at_cursor(c), 1);
    CHECK(!cs_cursor_seen(c, "1", T - 1000, 11)); /* forgotten: outside the window */

    /* bad ids */
    CHECK_INT(cs_cursor_mark(c, "", T, 1), CS_ERR_INVAL);
    CHECK_INT(
        cs_cursor_mark(c, "0123456789012345678901234567890123456789012345678901234567890123", T, 1),
        CS_ERR_INVAL);

    /* growth: many records at one second, then the document round trip */
    for (int i = 0; i < 5000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "r%d", i);
        REQUIRE(cs_cursor_mark(c, id, T + 9000, (uint64_t)i + 1) == CS_OK);
    }
    cs_cursor_advance(c, T + 9000, 2000);
    CHECK_INT(cs_cursor_ids_at_cursor(c), 5000);
    CHECK_INT(cs_cursor_handled(c), 5000);
    char *doc = cs_cursor_to_json(c, 0);
    REQUIRE(doc);
    d = cs_cursor_new("prospect-producer", 0);
    REQUIRE(d);
    CHECK_INT(cs_cursor_from_json(d, doc, strlen(doc), err, sizeof(err)), CS_OK);
    CHECK_INT(cs_cursor_loaded(d), 1);
    CHECK_INT(cs_cursor_ms(d), T + 9000);
    CHECK_INT(cs_cursor_ids_at_cursor(d), 5000);
    CHECK(cs_cursor_seen(d, "r17", T + 9000, 18));
    CHECK(!cs_cursor_seen(d, "r17", T + 9000, 19)); /* the hash survived the round trip */
    CHECK(!cs_cursor_seen(d, "r17", T + 10000, 18));
    free(doc);

    /* the document's shape */
    doc = cs_cursor_to_json(c, 3);
    REQUIRE(doc);
    {
        json_t *j = json_loads(doc, 0, NULL);
        CHECK(json_is_integer(json_object_get(j, "cursor_ms")));
        CHECK_INT(json_integer_value(json_object_get(j, "cursor_ms")), T + 9000);
        CHECK_INT(json_array_size(json_object_get(j, "ids_at_cursor")), 3);
        CHECK_INT(json_array_size(json_object_get(j, "hashes_at_cursor")), 3);
        CHECK(json_is_true(json_object_get(j, "ids_truncated")));
        json_decref(j);
    }
    free(doc);

    /* a minimal document (no hashes: any content matches) and bad ones */
    const char *min = "{\"cursor_ms\": 1000, \"ids_at_cursor\": [\"a\", \"b\"]}";
    CHECK_INT(cs_cursor_from_json(d, min, strlen(min), err, sizeof(err)), CS_OK);
    CHECK_INT(cs_cursor_ms(d), 1000);
    CHECK_INT(cs_cursor_handled(d), 2);
    CHECK(cs_cursor_seen(d, "a", 1000, 12345));
    const char *bad[] = {"",
                         "nope",
                         "{}",
                         "{\"cursor_ms\": \"x\"}",
                         "{\"cursor_ms\": -5}",
                         "{\"cursor_ms\": 5, \"ids_at_cursor\": \"a\"}",
                         "{\"cursor_ms\": 5, \"ids_at_cursor\": [1]}",
                         "{\"cursor_ms\": 5, \"ids_at_cursor\": [\"a\"], \"hashes_at_cursor\": "
                         "[\"zz\"]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CHECK_INT(cs_cursor_from_json(d, bad[i], strlen(bad[i]), err, sizeof(err)), CS_ERR_PARSE);
        CHECK_INT(cs_cursor_ms(d), 1000); /* unchanged */
        CHECK_INT(cs_cursor_handled(d), 2);
    }
    CHECK(cs_cursor_hash("a", 1) != cs_cursor_hash("b", 1));
    CHECK(cs_cursor_hash("", 0) != 0);

    cs_cursor_destroy(d);
    cs_cursor_destroy(c);
    cs_cursor_destroy(NULL);
    return cs_test_report();
}
