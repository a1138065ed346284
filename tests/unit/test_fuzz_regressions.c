/* Unit: every input a fuzzer ever made crash, replayed through the same harness.
 *
 * For each fuzz target (tests/fuzz/fuzz.h) this runs cs_fuzz_<target>() — built without
 * libFuzzer, linked from tests/fuzz/CMakeLists.txt — on every file of
 * tests/fuzz/regressions/<target>/ and of the seed corpus tests/fuzz/corpus/<target>/. A
 * harness aborts on a broken invariant and the sanitizer build (make sanitize-test) reports
 * memory errors, so a fixed crash that comes back fails CI without clang.
 *
 * To add a crash: copy the crash-* file libFuzzer wrote (make fuzz prints where) into
 * tests/fuzz/regressions/<target>/ under a name that says what it was. */
#include "cs_test.h"
#include "fuzz.h"

#include <dirent.h>
#include <sys/stat.h>

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs fn on every regular file of dir (sorted, dot files skipped); returns the count. */
static size_t replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    char *names[4096];
    size_t n = 0, ran = 0;
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d)) && n < sizeof names / sizeof names[0])
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) {
            free(names[i]);
            continue;
        }
        FILE *f = fopen(path, "rb");
        REQUIRE(f);
        size_t len = (size_t)st.st_size;
        /* An exact-size heap copy: reading one byte past the input is an ASan error here
         * as it is under libFuzzer. */
        uint8_t *buf = malloc(len ? len : 1);
        REQUIRE(buf && fread(buf, 1, len, f) == len);
        fclose(f);
        fprintf(stderr, "  %s\n", path + strlen(cs_test_source_dir()) + 1);
        fn(buf, len); /* aborts on a broken invariant */
        free(buf);
        free(names[i]);
        ran++;
    }
    return ran;
}

typedef struct {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
} target_t;

#define CS_FUZZ_ROW_(t) {#t, cs_fuzz_##t},
static const target_t targets[] = {CS_FUZZ_TARGETS(CS_FUZZ_ROW_)};

int main(void)
{
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char dir[1200];
        size_t seeds, regressions;
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", cs_test_source_dir(), targets[i].name);
        seeds = replay_dir(dir, targets[i].fn);
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/%s", cs_test_source_dir(),
                 targets[i].name);
        regressions = replay_dir(dir, targets[i].fn);
        printf("fuzz_%s: %zu seeds and %zu regression inputs replayed\n", targets[i].name, seeds,
               regressions);
        CHECK(seeds > 0); /* every target has a seed corpus */
        /* Empty inputs and single bytes: the edges every harness must take. */
        static const uint8_t edge[] = {0, 1, 2, 3, 4, 0xff};
        targets[i].fn(edge, 0);
        for (size_t k = 0; k < sizeof edge; k++)
            targets[i].fn(edge + k, 1);
        CHECK(1);
    }
    return cs_test_report();
}
