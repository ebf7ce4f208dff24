/* bench_history.c - `make bench`: the history sampler's CPU and memory with 10000 live allocation sites, and leaks_suspects' time. */
/*
 * Linked with the tracker (hooks included), server/analysis/history.c, leaks.c and
 * rss.c, and build/gen/sites10k.c: 10000 functions, each calling malloc on
 * its own line, so the tracker sees 10000 distinct sites. Prints one
 * Markdown table row. Usage: bench_history [SAMPLES]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../server/analysis/history.h"
#include "../../server/analysis/leaks.h"

extern void *(*const bench_sites[])(void);
extern const int bench_nsites;

static uint64_t requests; /* advanced by the loop below, as a server's counter would */
static uint64_t get_requests(void) { return requests; }

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int samples = argc > 1 ? atoi(argv[1]) : 41;
    if (samples < 3 || samples > 10000) {
        fprintf(stderr, "usage: bench_history [SAMPLES 3..10000]\n");
        return 2;
    }
    void **keep = calloc((size_t)bench_nsites, sizeof *keep);
    if (!keep) return 1;
    for (int i = 0; i < bench_nsites; i++) keep[i] = bench_sites[i]();

    /* A 60 s period: the thread takes the first sample (naming every site)
     * and then sleeps; the steady samples are taken here and timed. */
    if (history_start(HISTORY_PERIOD_MS_MAX, get_requests) != 0) { perror("history_start"); return 1; }
    history_info hi;
    for (int i = 0; i < 600; i++) {
        history_get_info(&hi);
        if (hi.samples >= 1 && hi.cpu_s > 0) break;
        usleep(100000);
    }
    double first_ms = hi.cpu_s * 1e3;

    double *ms = calloc((size_t)samples, sizeof *ms), *snap = calloc((size_t)samples, sizeof *snap);
    void **grow = calloc((size_t)samples * 10, sizeof *grow);
    leaks_suspect top[8];
    for (int s = 0; s < samples; s++) {
        for (int k = 0; k < 10; k++) grow[s * 10 + k] = bench_sites[k * 997 % bench_nsites](); /* 10 sites grow */
        requests += 100;
        double t0 = cpu_ms();
        history_sample_now();
        ms[s] = cpu_ms() - t0;
        history_get_info(&hi);
        snap[s] = hi.last_snapshot_ms;
    }
    /* Sites are named by the first sample that sees them: the thread's, or
     * (when the tracker had not published the stacks yet) the first here. */
    if (ms[0] > first_ms) first_ms = ms[0];
    qsort(ms, (size_t)samples, sizeof *ms, cmp_double);
    qsort(snap, (size_t)samples, sizeof *snap, cmp_double);
    double lk[21];
    int ranked = 0;
    for (int i = 0; i < 21; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        ranked = leaks_suspects(0, top, 8);
        clock_gettime(CLOCK_MONOTONIC, &b);
        lk[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    }
    qsort(lk, 21, sizeof *lk, cmp_double);
    history_get_info(&hi);
    printf("| %d | %zu | %.0f ms | %.3f ms (snapshot %.3f ms) | %.2f%% | %d series, %.3f ms | %.2f MiB |\n",
           bench_nsites, hi.sites_known, first_ms, ms[samples / 2], snap[samples / 2],
           ms[samples / 2] / 500.0 * 100.0, ranked, lk[10], (double)hi.memory_bytes / (1024.0 * 1024.0));
    /* samples - 1 steady ones: the median is not the naming one */
    history_stop();
    for (int i = 0; i < samples * 10; i++) free(grow[i]);
    for (int i = 0; i < bench_nsites; i++) free(keep[i]);
    free(grow);
    free(keep);
    free(ms);
    free(snap);
    return 0;
}
