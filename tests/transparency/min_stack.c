/* min_stack.c - threads on PTHREAD_STACK_MIN stacks allocate and print, as thread pools sized for many light workers do. */

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each worker allocates from a few call stacks of its own (the tracker's
 * first walk of a new thread and of a new stack both happen here), then
 * formats a line: all within the 16 KiB glibc gives as its minimum. */
static __attribute__((noinline)) char *make(unsigned i)
{
    char *p = malloc(16 + i % 200);
    if (p) snprintf(p, 16, "%u", i);
    return p;
}

static __attribute__((noinline)) unsigned churn(unsigned n)
{
    unsigned sum = 0;
    for (unsigned i = 0; i < n; i++) {
        char *p = make(i);
        if (!p) return 0;
        sum += (unsigned)strlen(p);
        char *q = realloc(p, 300);
        free(q ? q : p);
    }
    return sum;
}

static void *worker(void *arg)
{
    unsigned n = (unsigned)(size_t)arg;
    return (void *)(size_t)churn(n);
}

int main(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int rc = pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
    printf("stack size %d: %s\n", (int)PTHREAD_STACK_MIN, rc ? strerror(rc) : "set");
    for (int round = 0; round < 4; round++) {
        pthread_t t[8];
        unsigned long total = 0;
        int made = 0;
        for (int i = 0; i < 8; i++) {
            rc = pthread_create(&t[i], &attr, worker, (void *)(size_t)(1000 + i));
            if (rc) { printf("round %d: pthread_create: %s\n", round, strerror(rc)); break; }
            made++;
        }
        for (int i = 0; i < made; i++) {
            void *r;
            pthread_join(t[i], &r);
            total += (size_t)r;
        }
        printf("round %d: %d threads, sum %lu\n", round, made, total);
    }
    pthread_attr_destroy(&attr);
    return 0;
}
