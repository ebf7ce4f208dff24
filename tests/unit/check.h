/* check.h - the unit tests' one assertion: an ok/FAIL line on stderr (after mimalloc's test/testhelper.h). */
#ifndef TESTS_UNIT_CHECK_H
#define TESTS_UNIT_CHECK_H

#include <stdio.h>

/* Counted by CHECK; a test's main reports them and exits non-zero on a failure.
 * stderr is unbuffered, so printing never allocates. */
static int passed, failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) { passed++; fprintf(stderr, "ok %d - ", passed + failed); } \
        else { failed++; fprintf(stderr, "not ok %d - %s:%d: ", passed + failed, __FILE__, __LINE__); } \
        fprintf(stderr, __VA_ARGS__);                                      \
        fprintf(stderr, "\n");                                             \
    } while (0)

/* The TAP plan, after the last CHECK (prove reads the plan at the end too). */
#define CHECK_PLAN() fprintf(stderr, "1..%d\n", passed + failed)

#endif /* TESTS_UNIT_CHECK_H */
