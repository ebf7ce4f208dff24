/* churn.c - malloc+free churn for the tracker's cost benchmark: 4096 live blocks, allocations at call depth 6. */

#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/*
 * Usage: churn [PAIRS]   (default 4000000)
 * Prints one line: "ns_per_pair N" (thread CPU time, so a busy machine
 * stretches it less than wall time). Each round frees one of 4096 live
 * blocks (pseudo-random slot) and allocates a new one (16..527 bytes)
 * from the bottom of a 6-deep call chain, the shape of an allocation-heavy
 * program. Built with and without frame pointers by tests/bench_tracker.sh.
 */

#define LIVE 4096

static void *slots[LIVE];
static uint32_t rng = 2463534242u;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

__attribute__((noinline)) static void *d6(size_t n) { void *p = malloc(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *d5(size_t n) { void *p = d6(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *d4(size_t n) { void *p = d5(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *d3(size_t n) { void *p = d4(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *d2(size_t n) { void *p = d3(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *d1(size_t n) { void *p = d2(n); __asm__ volatile("" ::: "memory"); return p; }

int main(int argc, char **argv)
{
    long pairs = argc > 1 ? atol(argv[1]) : 4000000;
    if (pairs <= 0) {
        fprintf(stderr, "usage: %s [PAIRS > 0]\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < LIVE; i++) slots[i] = d1(16 + next_rand() % 512);
    struct timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (long i = 0; i < pairs; i++) {
        uint32_t r = next_rand();
        uint32_t k = r % LIVE;
        free(slots[k]);
        slots[k] = d1(16 + (r >> 12) % 512);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    for (int i = 0; i < LIVE; i++) free(slots[i]);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)pairs;
    printf("ns_per_pair %.1f\n", ns);
    return 0;
}
