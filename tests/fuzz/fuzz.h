/* The fuzz harnesses (tests/fuzz/fuzz_<target>.c).
 *
 * Each harness is one function, cs_fuzz_<target>(data, size), that feeds the bytes to one
 * parser and checks what it can about the outcome (invariants the parser promises: bounds,
 * NUL-termination, redaction, a streaming parser giving the same answer whatever the chunk
 * sizes). A broken invariant calls cs_fuzz_fail(), which aborts, so libFuzzer and the
 * sanitizers report it like a crash.
 *
 * The same functions run in two builds:
 *   - CRMSYNC_FUZZ=ON (clang): fuzz_<target> executables whose LLVMFuzzerTestOneInput calls
 *     the harness (`make fuzz`, tools/fuzz.sh);
 *   - every build: the unit test tests/unit/test_fuzz_regressions.c (compiled with
 *     CS_FUZZ_NO_ENTRY) replays tests/fuzz/regressions/<target>/ and the seed corpora
 *     through them, so every crash ever found stays fixed without clang in CI.
 *
 * Harnesses keep their set-up (registries, servers) in statics made on first use and never
 * freed: reachable at exit, so not a leak for LeakSanitizer. Single-threaded callers. */
#ifndef CS_FUZZ_H
#define CS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define CS_FUZZ_TARGETS(X)                                                                         \
    X(avro)                                                                                        \
    X(conf)                                                                                        \
    X(csv)                                                                                         \
    X(activity)                                                                                    \
    X(api_responses)                                                                               \
    X(soql)

#define CS_FUZZ_DECL_(t) int cs_fuzz_##t(const uint8_t *data, size_t size);
CS_FUZZ_TARGETS(CS_FUZZ_DECL_)
#undef CS_FUZZ_DECL_

/* Reports a broken invariant on stderr and aborts. */
void cs_fuzz_fail(const char *target, const char *fmt, ...) __attribute__((noreturn))
__attribute__((format(printf, 2, 3)));

/* Quiets the library's logger (once): parsers log rejected input at warn level, and a
 * fuzzer would print millions of lines. CS_FUZZ_LOG=debug|info|warn|error overrides. */
void cs_fuzz_quiet(void);

#ifndef CS_FUZZ_NO_ENTRY
#define CS_FUZZ_ENTRY(t)                                                                           \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                  \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                                   \
    {                                                                                              \
        cs_fuzz_##t(data, size);                                                                   \
        return 0;                                                                                  \
    }
#else
#define CS_FUZZ_ENTRY(t)
#endif

#endif
