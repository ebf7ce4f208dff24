/* own_malloc.c - a program that defines malloc/free/calloc/realloc itself over glibc's
 * __libc_* entry points (to count, as some servers and test harnesses do) and also calls the
 * aligned allocators it does not define, freeing their blocks with its own free. */

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

static unsigned long n_malloc, n_free;

void *malloc(size_t n) { n_malloc++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { n_malloc++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { if (!p) n_malloc++; return __libc_realloc(p, n); }
void free(void *p) { if (p) n_free++; __libc_free(p); }

int main(void)
{
    unsigned long m0 = n_malloc, f0 = n_free;
    void *a = memalign(64, 100);
    void *b = NULL;
    int rc = posix_memalign(&b, 256, 1000);
    void *c = aligned_alloc(128, 512);
    void *d = valloc(100);
    char *s = strdup("counted");
    printf("aligned: %d %d %d %d, posix_memalign rc %d\n", ((size_t)a & 63) == 0, ((size_t)b & 255) == 0,
           ((size_t)c & 127) == 0, d != NULL, rc);
    free(a);
    free(b);
    free(c);
    free(d);
    free(s);
    void *e = realloc(NULL, 10);
    e = realloc(e, 100000);
    free(e);
    printf("counted here: %lu mallocs, %lu frees\n", n_malloc - m0, n_free - f0);
    return 0;
}
