/* stack_use.c - how much of a thread's stack its allocations and an on-demand report take: the stack is painted, then the deepest touched byte found. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define STACK (1u << 20)
static unsigned char *stack;

/* Bytes of the painted stack touched so far (from its top down). */
static size_t used(void)
{
    size_t i = 0;
    while (i < STACK && stack[i] == 0xA5) i++;
    return STACK - i;
}

/* New call sites at new depths: each needs a walk with rule-cache misses. */
__attribute__((noinline)) static void *fresh(int depth)
{
    if (depth == 0) return malloc(100);
    void *p = fresh(depth - 1);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void *run(void *arg)
{
    (void)arg;
    for (int d = 0; d < 12; d++) free(fresh(d));
    void *p = calloc(7, 9);
    p = realloc(p, 5000);
    free(p);
    size_t allocs = used();
    raise(SIGUSR2); /* with TRACKER_SIGNAL=USR2: the next allocation writes a report */
    void *volatile q = malloc(200);
    free(q);
    printf("allocations %zu report %zu\n", allocs, used());
    return NULL;
}

static void ignore(int sig) { (void)sig; }

int main(void)
{
    if (!getenv("TRACKER_SIGNAL")) signal(SIGUSR2, ignore);
    stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) return 1;
    memset(stack, 0xA5, STACK);
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, stack, STACK);
    if (pthread_create(&t, &attr, run, NULL) != 0) return 1;
    pthread_join(t, NULL);
    return 0;
}
