/* cs_test: the tiny assertion kit every C test uses. A test binary runs its checks, prints
 * "N passed, N failed" and exits non-zero when any check failed, so CTest sees it. */
#ifndef CS_TEST_H
#define CS_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cs_test_pass_, cs_test_fail_;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            cs_test_pass_++;                                                                       \
        } else {                                                                                   \
            cs_test_fail_++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_) {                                                                            \
            cs_test_pass_++;                                                                       \
        } else {                                                                                   \
            cs_test_fail_++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,  \
                    #a, #b, a_, b_);                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ && b_ && !strcmp(a_, b_)) {                                                         \
            cs_test_pass_++;                                                                       \
        } else {                                                                                   \
            cs_test_fail_++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
        }                                                                                          \
    } while (0)

/* Aborts the test binary (a precondition for the rest failed). */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline int cs_test_report(void)
{
    printf("%d passed, %d failed\n", cs_test_pass_, cs_test_fail_);
    return cs_test_fail_ == 0 && cs_test_pass_ > 0 ? 0 : 1;
}

/* Environment helpers: set by the test runner (tests/CMakeLists.txt). */
static inline const char *cs_test_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* xorshift64: a fast, seeded, reproducible generator for randomised tests (*s != 0). */
static inline uint64_t cs_test_xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The source tree's root: CRMSYNC_SOURCE_DIR, else found from this header's own path. */
static inline const char *cs_test_source_dir(void)
{
    static char dir[1024];
    const char *env = cs_test_env("CRMSYNC_SOURCE_DIR", NULL), *p;
    if (env)
        return env;
    snprintf(dir, sizeof dir, "%s", __FILE__);
    if ((p = strstr(dir, "/tests/cs_test.h")))
        dir[p - dir] = '\0';
    return dir;
}

#ifdef AVRO_H
/* An avro-c allocator that counts allocations: install it with
 * avro_set_allocator(cs_test_avro_alloc, NULL) before any avro-c object exists, then compare
 * cs_test_avro_allocs_ before and after the code that must not allocate. */
static long cs_test_avro_allocs_;

static inline void *cs_test_avro_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    cs_test_avro_allocs_++;
    return realloc(ptr, nsize);
}
#endif

#endif
