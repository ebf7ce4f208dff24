/* tls_dtor.c - per-thread data with destructors that allocate at thread exit (pthread keys, as
 * glib, OpenSSL's error queues and language runtimes have), 32 short-lived threads. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t key;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long logged;

/* Runs after the thread's own code, while glibc tears the thread down. */
static void dtor(void *v)
{
    char *line = malloc(64);
    if (line) {
        snprintf(line, 64, "thread state %s", (char *)v);
        char *copy = strdup(line);
        pthread_mutex_lock(&mu);
        logged += strlen(copy) > 0;
        pthread_mutex_unlock(&mu);
        free(copy);
        free(line);
    }
    free(v);
}

static void *worker(void *arg)
{
    char *state = malloc(32);
    snprintf(state, 32, "%zu", (size_t)arg);
    pthread_setspecific(key, state);
    for (int i = 0; i < 100; i++) free(malloc(100 + (size_t)i));
    return NULL;
}

int main(void)
{
    pthread_key_create(&key, dtor);
    for (int round = 0; round < 4; round++) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, worker, (void *)(size_t)i);
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    }
    printf("destructors that allocated: %lu of 32\n", logged);
    return 0;
}
