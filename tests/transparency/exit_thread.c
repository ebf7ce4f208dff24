/* exit_thread.c - exit() called from a worker thread while the others still allocate, and an
 * atexit handler that allocates (as servers that shut down from a signal-handling thread do). */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int started;

static void at_exit_handler(void)
{
    char *msg = strdup("atexit handler ran");
    puts(msg);
    free(msg);
}

static void *busy(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    void *keep[16] = { 0 };
    for (unsigned i = 0;; i++) {
        free(keep[i % 16]);
        keep[i % 16] = malloc(16 + i % 400);
    }
    return NULL;
}

static void *quitter(void *arg)
{
    (void)arg;
    while (atomic_load(&started) < 3) usleep(1000);
    usleep(20000);
    printf("exiting from a thread\n");
    exit(5);
}

int main(void)
{
    atexit(at_exit_handler);
    pthread_t t;
    for (int i = 0; i < 3; i++) pthread_create(&t, NULL, busy, NULL);
    pthread_create(&t, NULL, quitter, NULL);
    for (;;) free(malloc(64));
}
