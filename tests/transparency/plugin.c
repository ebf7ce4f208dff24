/* plugin.c - a small plugin (built without frame pointers, as Debian builds libraries) that
 * allocates: dlopen_cycles.c loads and unloads it thousands of times, cancel_fork.c loads
 * copies of it so that each thread's first walk meets a module never seen. */

#include <stdlib.h>
#include <string.h>

static __attribute__((noinline)) char **build(unsigned n)
{
    char **v = malloc(n * sizeof *v);
    if (!v) return NULL;
    for (unsigned i = 0; i < n; i++) {
        v[i] = malloc(24 + i % 64);
        if (v[i]) memset(v[i], (int)i, 24);
    }
    return v;
}

unsigned plugin_work(unsigned n)
{
    char **v = build(n);
    unsigned sum = 0;
    if (!v) return 0;
    for (unsigned i = 0; i < n; i++) {
        if (v[i]) sum += (unsigned char)v[i][0];
        free(v[i]);
    }
    free(v);
    return sum;
}
