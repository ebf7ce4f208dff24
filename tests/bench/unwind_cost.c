/* unwind_cost.c - ns per frame of the ways to take a call stack: the tracker's cached CFI rules, frame pointers, glibc backtrace(), libunwind. */

#include "tracker.h"
#include "tracker_internal.h"

#include <execinfo.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Usage: unwind_cost [ROUNDS]   (default 200000)
 * At the bottom of a 12-deep call chain of this file's functions (built
 * with or without frame pointers by tests/bench_tracker.sh), takes the
 * stack ROUNDS times with each method and prints one line per method:
 * "METHOD frames N ns_per_stack X ns_per_frame Y". The measuring function
 * itself keeps a frame pointer (like the tracker's hooks).
 */

#define MAXF  64

static long rounds;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The plain frame-pointer walk (the tracker's old default), with its
 * bounds checks: only right in a build with frame pointers. */
__attribute__((noinline)) static int fp_walk(void *frame, uintptr_t *out, int max)
{
    const uintptr_t *fp = frame;
    uintptr_t lo = (uintptr_t)__builtin_frame_address(0);
    int n = 0;
    out[n++] = fp[1];
    uintptr_t next = fp[0];
    while (n < max) {
        if (next <= (uintptr_t)fp || (next & 7) || next < lo) break;
        fp = (const uintptr_t *)next;
        if (!fp[1]) break;
        out[n++] = fp[1];
        next = fp[0];
    }
    return n;
}

static void report(const char *name, int frames, double t0, double t1)
{
    double per = (t1 - t0) / (double)rounds;
    printf("%-12s frames %2d ns_per_stack %7.1f ns_per_frame %6.2f\n", name, frames, per, per / (frames ? frames : 1));
}

__attribute__((noinline, optimize("no-omit-frame-pointer"))) static void measure(void)
{
    uintptr_t out[MAXF];
    void *buf[MAXF];
    int n = 0;
    double t0, t1;
    volatile uintptr_t sink = 0;

    int g = tracker_guard_enter(); /* libunwind's and backtrace's first calls allocate */
    t0 = now_ns();
    for (long i = 0; i < rounds; i++) { n = tracker_stackwalk(__builtin_frame_address(0), out, TRACKER_MAX_FRAMES); sink += out[n - 1]; }
    t1 = now_ns();
    report("cfi-cached", n, t0, t1);

    t0 = now_ns();
    for (long i = 0; i < rounds; i++) { n = fp_walk(__builtin_frame_address(0), out, TRACKER_MAX_FRAMES); sink += out[n - 1]; }
    t1 = now_ns();
    report("frame-ptr", n, t0, t1);

    backtrace(buf, MAXF);
    t0 = now_ns();
    for (long i = 0; i < rounds; i++) { n = backtrace(buf, TRACKER_MAX_FRAMES); sink += (uintptr_t)buf[n - 1]; }
    t1 = now_ns();
    report("glibc-bt", n, t0, t1);

    unw_backtrace(buf, MAXF);
    t0 = now_ns();
    for (long i = 0; i < rounds; i++) { n = unw_backtrace(buf, TRACKER_MAX_FRAMES); sink += (uintptr_t)buf[n - 1]; }
    t1 = now_ns();
    report("libunwind", n, t0, t1);
    if (g) tracker_guard_leave();
    (void)sink;
}

/* Twelve distinct functions (distinct return addresses, as in a real stack). */
#define LEVEL(name, next)                                                   \
    __attribute__((noinline)) static int name(int x)                        \
    {                                                                       \
        int r = next(x + 1);                                                \
        __asm__ volatile("" ::: "memory");                                  \
        return r + 1;                                                       \
    }
static int bottom(int x) { (void)x; measure(); return 0; }
LEVEL(c11, bottom) LEVEL(c10, c11) LEVEL(c9, c10) LEVEL(c8, c9) LEVEL(c7, c8) LEVEL(c6, c7)
LEVEL(c5, c6) LEVEL(c4, c5) LEVEL(c3, c4) LEVEL(c2, c3) LEVEL(c1, c2) LEVEL(c0, c1)

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atol(argv[1]) : 200000;
    if (rounds <= 0) {
        fprintf(stderr, "usage: %s [ROUNDS > 0]\n", argv[0]);
        return 2;
    }
    c0(0);
    return 0;
}
