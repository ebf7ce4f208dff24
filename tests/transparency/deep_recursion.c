/* deep_recursion.c - an allocation at the bottom of a deep recursion, with 4 KiB of a thread's
 * 64 KiB stack left (recursive parsers and interpreters run this close to the guard page). */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uintptr_t stack_lo;

static __attribute__((noinline)) size_t descend(unsigned depth, volatile char *prev)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    frame[511] = prev ? prev[0] : 0;
    if ((uintptr_t)frame - stack_lo > 4096 + 1024) return descend(depth + 1, frame) + frame[0] * 0;
    char *p = malloc(100 + depth % 7); /* here: about 4 KiB of stack left */
    if (!p) return 0;
    memset(p, 1, 100);
    size_t r = (size_t)p[50];
    p = realloc(p, 5000);
    free(p);
    return r;
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_attr_t a;
    void *addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
    stack_lo = (uintptr_t)addr;
    return (void *)descend(0, NULL);
}

int main(void)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    pthread_t t;
    int rc = pthread_create(&t, &a, worker, NULL);
    if (rc) { printf("pthread_create: %s\n", strerror(rc)); return 1; }
    void *r;
    pthread_join(t, &r);
    printf("allocated with 4 KiB of stack left: %s\n", r == (void *)1 ? "ok" : "failed");
    return 0;
}
