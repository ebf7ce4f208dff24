/* signal_storm.c - allocating threads interrupted by thousands of signals (a profiler's SIGPROF
 * timer, and SIGUSR1 sent at each thread), handlers that only count, as profilers and runtimes do:
 * no allocation may fail or deadlock, every signal handled. */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static atomic_int stop;
static atomic_long usr1, prof;

static void on_usr1(int sig) { (void)sig; atomic_fetch_add(&usr1, 1); }
static void on_prof(int sig) { (void)sig; atomic_fetch_add(&prof, 1); }

static void *worker(void *arg)
{
    (void)arg;
    void *keep[16] = { 0 };
    unsigned long n = 0;
    while (!atomic_load(&stop)) {
        unsigned k = (unsigned)(n % 16);
        free(keep[k]);
        keep[k] = calloc(1, 16 + n % 700);
        if (n % 5 == 0) keep[k] = realloc(keep[k], 900);
        n++;
    }
    for (int k = 0; k < 16; k++) free(keep[k]);
    return (void *)n;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_prof;
    sigaction(SIGPROF, &sa, NULL);
    struct itimerval it = { { 0, 200 }, { 0, 200 } };
    setitimer(ITIMER_PROF, &it, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < 20000; i++) pthread_kill(t[i % 4], SIGUSR1);
    atomic_store(&stop, 1);
    unsigned long total = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (size_t)r;
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_PROF, &off, NULL);
    printf("allocations made: %s, SIGPROF handled: %s\n", total > 0 ? "yes" : "no", atomic_load(&prof) > 0 ? "yes" : "no");
    return 0;
}
