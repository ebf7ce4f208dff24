/* threads.c - many threads allocating at once, for the tracker's cost benchmark: malloc+free throughput. */

#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

/*
 * Usage: threads [THREADS [PAIRS_PER_THREAD]]   (default 8, 1000000)
 * Prints one line: "pairs_per_s N pairs_per_cpu_s M": pairs of all
 * threads per wall-clock second, and per CPU second the process used (its
 * threads' user + system time: spinning and cache-line traffic count, time
 * spent waiting for a core on a busy machine does not).
 * Each thread keeps 1024 live blocks and replaces a pseudo-random one per
 * round (16..527 bytes, from a 4-deep call chain); every 64th block is
 * handed to the next thread, which frees it (frees on another thread than
 * the allocation, as in a server).
 */

#define LIVE 1024
#define MAXT 256

typedef struct worker {
    pthread_t tid;
    int idx;
    long pairs;
    void *_Atomic handoff; /* a block for the next thread to free */
} worker;

static worker workers[MAXT];
static int nthreads;

__attribute__((noinline)) static void *a4(size_t n) { void *p = malloc(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *a3(size_t n) { void *p = a4(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *a2(size_t n) { void *p = a3(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) static void *a1(size_t n) { void *p = a2(n); __asm__ volatile("" ::: "memory"); return p; }

static void *run(void *arg)
{
    worker *w = arg;
    void **live = malloc(LIVE * sizeof *live);
    uint32_t rng = 2463534242u + (uint32_t)w->idx * 7919u;
    for (int i = 0; i < LIVE; i++) live[i] = a1(16 + i % 512);
    worker *next = &workers[(w->idx + 1) % nthreads];
    for (long i = 0; i < w->pairs; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        uint32_t k = rng % LIVE;
        if ((i & 63) == 0) {
            free(atomic_exchange(&next->handoff, live[k])); /* the next thread's last block, or NULL */
        } else {
            free(live[k]);
        }
        live[k] = a1(16 + (rng >> 12) % 512);
    }
    for (int i = 0; i < LIVE; i++) free(live[i]);
    free(live);
    return NULL;
}

int main(int argc, char **argv)
{
    nthreads = argc > 1 ? atoi(argv[1]) : 8;
    long pairs = argc > 2 ? atol(argv[2]) : 1000000;
    if (nthreads < 1 || nthreads > MAXT || pairs < 1) {
        fprintf(stderr, "usage: %s [THREADS 1..%d [PAIRS_PER_THREAD > 0]]\n", argv[0], MAXT);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < nthreads; i++) {
        workers[i].idx = i;
        workers[i].pairs = pairs;
        if (pthread_create(&workers[i].tid, NULL, run, &workers[i]) != 0) {
            fprintf(stderr, "threads: cannot start thread %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < nthreads; i++) pthread_join(workers[i].tid, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int i = 0; i < nthreads; i++) free(atomic_load(&workers[i].handoff));
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double total = (double)nthreads * (double)pairs;
    printf("pairs_per_s %.0f pairs_per_cpu_s %.0f\n", total / s, cpu > 0 ? total / cpu : 0);
    return 0;
}
