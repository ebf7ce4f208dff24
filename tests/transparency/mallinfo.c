/* mallinfo.c - glibc's heap counters as a program reads them (mallinfo2, as memory-aware caches
 * and runtimes do): what a burst of allocations from new call stacks, and freeing it all, does to
 * them. The tracker's own data must not show in them. */

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#define N 100

static __attribute__((noinline)) void *a1(size_t n) { return malloc(n); }
static __attribute__((noinline)) void *a2(size_t n) { return malloc(n); }
static __attribute__((noinline)) void *a3(size_t n) { return calloc(1, n); }

int main(void)
{
    /* glibc's arena and tcache exist before the first reading (volatile: gcc
     * -O2 removes a malloc whose block is only freed) */
    void *volatile warm = malloc(1000);
    free(warm);
    struct mallinfo2 m0 = mallinfo2();
    void *p[3 * N];
    for (int i = 0; i < N; i++) {
        p[3 * i] = a1(1000);
        p[3 * i + 1] = a2(200);
        p[3 * i + 2] = a3(50);
    }
    struct mallinfo2 m1 = mallinfo2();
    for (int i = 0; i < 3 * N; i++) free(p[i]);
    struct mallinfo2 m2 = mallinfo2();
    printf("in use after %d blocks (1000, 200, 50 B): %+ld B\n", 3 * N, (long)(m1.uordblks - m0.uordblks));
    printf("in use after freeing them: %+ld B\n", (long)(m2.uordblks - m0.uordblks));
    printf("mmapped regions: %+ld\n", (long)(m2.hblks - m0.hblks));
    return 0;
}
