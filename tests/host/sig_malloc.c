/* sig_malloc.c - a single-threaded program whose signal handler allocates: it relies on glibc's single-thread paths. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* usage: sig_malloc: prints whether glibc still sees one thread (a preload
 * that starts a thread turns __libc_single_threaded off, and with it the
 * lock-free malloc a handler like this one depends on), the thread count,
 * then allocates for ~0.5 s under a 1 kHz timer whose handler allocates. */

static volatile sig_atomic_t ticks;

static void on_tick(int signo)
{
    (void)signo;
    free(malloc(24)); /* not async-signal-safe by POSIX; works in a single-threaded glibc process */
    ticks++;
}

static int threads(void)
{
    char line[256];
    int n = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f)) if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
    if (f) fclose(f);
    return n;
}

int main(void)
{
    printf("single_threaded=%d threads=%d\n", (int)__libc_single_threaded, threads());
    free(malloc(24)); /* the handler's size is then served from glibc's cache */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rounds = 0;
    do {
        for (int i = 0; i < 1000; i++) free(malloc(2000 + (size_t)(i % 7) * 100));
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 500);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    printf("done: handler ran %s\n", ticks > 10 ? "many times" : "too few times");
    return 0;
}
