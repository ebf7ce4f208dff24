/* jemalloc_api.c - a program linked with jemalloc (as redis, Firefox, many servers are) that uses
 * its extended API on the blocks it gets: mallocx/rallocx/xallocx/sallocx/sdallocx, mallctl
 * statistics, malloc_stats_print, and mixes them with malloc/free as jemalloc allows. */

#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t allocated(void)
{
    uint64_t epoch = 1;
    size_t sz = sizeof epoch, v = 0, vs = sizeof v;
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    mallctl("stats.allocated", &v, &vs, NULL, 0);
    return v;
}

static void count_out(void *arg, const char *s)
{
    size_t *n = arg;
    if (strstr(s, "Allocated:")) n[1]++;
    n[0] += strlen(s);
}

static void *worker(void *arg)
{
    (void)arg;
    uint64_t a0 = 0, a1 = 0;
    size_t sz = sizeof a0;
    mallctl("thread.allocated", &a0, &sz, NULL, 0);
    void *p = mallocx(100000, 0);
    mallctl("thread.allocated", &a1, &sz, NULL, 0);
    dallocx(p, 0);
    return (void *)(size_t)(a1 - a0 >= 100000);
}

int main(void)
{
    const char *version;
    size_t vsz = sizeof version;
    mallctl("version", &version, &vsz, NULL, 0);
    printf("jemalloc %.5s\n", version);

    void *p = malloc(1000);
    printf("malloc(1000): usable %zu, sallocx %zu\n", malloc_usable_size(p), sallocx(p, 0));
    sdallocx(p, 1000, 0); /* a malloc block freed by size (C++'s sized delete does this) */

    char *q = mallocx(4096, MALLOCX_ALIGN(256) | MALLOCX_ZERO);
    printf("mallocx(4096, align 256, zero): aligned %d, zero %d, sallocx %zu\n", ((size_t)q & 255) == 0,
           q[0] == 0 && q[4095] == 0, sallocx(q, 0));
    q[0] = 'j';
    q = rallocx(q, 20000, 0);
    printf("rallocx to 20000: kept %c, sallocx %zu, nallocx(20000) %zu\n", q[0], sallocx(q, 0), nallocx(20000, 0));
    size_t x = xallocx(q, 20000, 0, 0);
    printf("xallocx in place: %zu\n", x);
    free(q); /* a mallocx block freed by free (allowed) */

    size_t before = allocated();
    void *blocks[1000];
    for (int i = 0; i < 1000; i++) blocks[i] = malloc(10000);
    size_t during = allocated();
    for (int i = 0; i < 1000; i++) free(blocks[i]);
    size_t after = allocated();
    printf("stats.allocated: grew by >= 9.5 MB: %s, back within 1 MB: %s\n",
           during - before >= 9500000 ? "yes" : "no",
           after < before + 1000000 ? "yes" : "no");

    pthread_t t;
    void *r;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, &r);
    printf("thread.allocated counts a thread's mallocx: %s\n", r ? "yes" : "no");

    size_t out[2] = { 0, 0 };
    malloc_stats_print(count_out, out, NULL);
    printf("malloc_stats_print: %s\n", out[0] > 1000 && out[1] > 0 ? "written" : "missing");
    return 0;
}
