/* api_check.c - prints what each malloc-family call returns and sets in errno, for edge cases: compared with and without the preload. */

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* One line per case: the case, NULL or "ptr" (and whether aligned as
 * asked), the return code where there is one, and errno (set to 1234
 * before each call, so "unchanged" is visible). Pointers are freed. */

static void show(const char *what, void *p, size_t align, int rc_given, int rc)
{
    int e = errno;
    printf("%-40s ", what);
    if (rc_given) printf("rc=%d ", rc);
    if (p) printf("ptr%s", align && ((uintptr_t)p % align) ? " MISALIGNED" : "");
    else printf("NULL");
    printf(" errno=%d\n", e);
    free(p);
}

/* Sizes through a volatile: the compiler must neither warn about nor fold the calls. */
static size_t v(size_t x)
{
    volatile size_t y = x;
    return y;
}

#define CALL(what, expr, align) do { errno = 1234; void *p_ = (expr); show(what, p_, align, 0, 0); } while (0)

static void pm(size_t align, size_t size, const char *what)
{
    void *p = (void *)1;
    errno = 1234;
    int rc = posix_memalign(&p, align, size);
    int untouched = p == (void *)1;
    show(what, untouched ? NULL : p, align, 1, rc);
    if (untouched) printf("%-40s out untouched\n", what);
}

int main(void)
{
    pm(0, 64, "posix_memalign(0, 64)");
    pm(1, 64, "posix_memalign(1, 64)");
    pm(4, 64, "posix_memalign(4, 64)");
    pm(8, 64, "posix_memalign(8, 64)");
    pm(24, 64, "posix_memalign(24, 64)");
    pm(64, 64, "posix_memalign(64, 64)");
    pm(4096, 0, "posix_memalign(4096, 0)");
    pm((size_t)1 << 63, 64, "posix_memalign(2^63, 64)");
    pm(64, SIZE_MAX, "posix_memalign(64, SIZE_MAX)");
    CALL("aligned_alloc(0, 64)", aligned_alloc(v(0), v(64)), 0);
    CALL("aligned_alloc(3, 64)", aligned_alloc(v(3), v(64)), 4);
    CALL("aligned_alloc(64, 10)", aligned_alloc(v(64), v(10)), 64);
    CALL("aligned_alloc(2^63+1, 64)", aligned_alloc(v(((size_t)1 << 63) + 1), v(64)), 0);
    CALL("aligned_alloc(4096, SIZE_MAX)", aligned_alloc(v(4096), v(SIZE_MAX)), 0);
    CALL("memalign(0, 64)", memalign(v(0), v(64)), 0);
    CALL("memalign(48, 64)", memalign(v(48), v(64)), 64);
    CALL("memalign(SIZE_MAX/2+2, 64)", memalign(v(SIZE_MAX / 2 + 2), v(64)), 0);
    CALL("valloc(0)", valloc(v(0)), 4096);
    CALL("valloc(SIZE_MAX)", valloc(v(SIZE_MAX)), 0);
    CALL("pvalloc(0)", pvalloc(v(0)), 4096);
    CALL("pvalloc(SIZE_MAX)", pvalloc(v(SIZE_MAX)), 0);
    CALL("malloc(0)", malloc(v(0)), 16);
    CALL("malloc(16)", malloc(v(16)), 16);
    CALL("malloc(SIZE_MAX)", malloc(v(SIZE_MAX)), 0);
    CALL("malloc(PTRDIFF_MAX+1)", malloc(v((size_t)PTRDIFF_MAX + 1)), 0);
    CALL("calloc(0, 0)", calloc(v(0), v(0)), 16);
    CALL("calloc(SIZE_MAX, 2)", calloc(v(SIZE_MAX), v(2)), 0);
    CALL("calloc(2^32, 2^32)", calloc(v((size_t)1 << 32), v((size_t)1 << 32)), 0);
    CALL("realloc(NULL, 0)", realloc(NULL, v(0)), 16);
    CALL("realloc(NULL, SIZE_MAX)", realloc(NULL, v(SIZE_MAX)), 0);
    CALL("realloc(p, 0)", realloc(malloc(10), v(0)), 0);
    void *volatile q = malloc(10);
    CALL("realloc(p, SIZE_MAX)", realloc(q, v(SIZE_MAX)), 0);
    free(q);
    CALL("reallocarray(NULL, SIZE_MAX, 2)", reallocarray(NULL, v(SIZE_MAX), v(2)), 0);
    CALL("reallocarray(NULL, 0, 10)", reallocarray(NULL, v(0), v(10)), 16);
    CALL("reallocarray(p, 0, 10)", reallocarray(malloc(10), v(0), v(10)), 0);
    CALL("reallocarray(NULL, 4, 8)", reallocarray(NULL, v(4), v(8)), 16);
    errno = 1234;
    free(NULL);
    free(malloc(10));
    printf("%-40s errno=%d\n", "free(NULL), free(p)", errno);
    return 0;
}
