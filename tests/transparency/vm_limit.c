/* vm_limit.c - run under `ulimit -v` (as batch systems and CI sandboxes set it): 48 MiB allocated
 * and touched in 1 MiB blocks, some small blocks, a thread. The tracker must leave it the room. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *worker(void *arg)
{
    char *p = malloc(1000);
    if (p) memset(p, 1, 1000);
    free(p);
    return arg;
}

int main(void)
{
    char *big[48];
    int got = 0;
    for (int i = 0; i < 48; i++) {
        big[i] = malloc(1 << 20);
        if (!big[i]) break;
        memset(big[i], i, 1 << 20);
        got++;
    }
    char *small[1000];
    for (int i = 0; i < 1000; i++) small[i] = strdup("a small string");
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 * 1024);
    int rc = pthread_create(&t, &a, worker, NULL);
    if (rc == 0) pthread_join(t, NULL);
    printf("1 MiB blocks: %d of 48, thread: %s\n", got, rc ? strerror(rc) : "ran");
    for (int i = 0; i < got; i++) free(big[i]);
    for (int i = 0; i < 1000; i++) free(small[i]);
    return got == 48 && rc == 0 ? 0 : 1;
}
