/* threads64.c - 64 threads started together (a barrier) that allocate, free and hand blocks to
 * each other, as a server's worker pool under load does. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define N 64
static pthread_barrier_t go;
static void *handoff[N];

static void *worker(void *arg)
{
    unsigned id = (unsigned)(size_t)arg, x = id * 2654435761u;
    unsigned long sum = 0;
    void *keep[64] = { 0 };
    pthread_barrier_wait(&go);
    for (unsigned i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 8) % 64;
        free(keep[k]);
        keep[k] = malloc(8 + (x >> 16) % 2000);
        sum += keep[k] != NULL;
    }
    handoff[id] = keep[0];
    keep[0] = NULL;
    for (int k = 0; k < 64; k++) free(keep[k]);
    pthread_barrier_wait(&go);
    free(handoff[(id + 1) % N]); /* a block another thread allocated */
    return (void *)sum;
}

int main(void)
{
    pthread_t t[N];
    unsigned long total = 0;
    pthread_barrier_init(&go, NULL, N);
    int made = 0;
    for (int i = 0; i < N; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(size_t)i) == 0) made++;
    for (int i = 0; i < made; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (size_t)r;
    }
    printf("%d threads, %lu allocations\n", made, total);
    return 0;
}
