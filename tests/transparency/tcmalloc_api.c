/* tcmalloc_api.c - a program linked with gperftools' tcmalloc (as many Google-style servers are)
 * that uses its tc_* API and MallocExtension's C interface on the blocks it gets. */

#include <gperftools/malloc_extension_c.h>
#include <gperftools/tcmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t prop(const char *name)
{
    size_t v = 0;
    return MallocExtension_GetNumericProperty(name, &v) ? v : (size_t)-1;
}

int main(void)
{
    void *p = malloc(1000);
    memset(p, 0, 1000);
    printf("malloc(1000): tc_malloc_size %zu, GetAllocatedSize %zu, ownership %d\n", tc_malloc_size(p),
           MallocExtension_GetAllocatedSize(p), (int)MallocExtension_GetOwnership(p));
    tc_free(p); /* a malloc block freed by tc_free */

    char *q = tc_malloc(5000);
    strcpy(q, "tc");
    q = realloc(q, 50000); /* a tc_malloc block grown by realloc */
    printf("tc_malloc + realloc: kept %s, size %zu\n", q, tc_malloc_size(q));
    free(q);

    void *a = NULL;
    int rc = tc_posix_memalign(&a, 4096, 100);
    printf("tc_posix_memalign: rc %d aligned %d\n", rc, ((size_t)a & 4095) == 0);
    tc_free(a);

    size_t before = prop("generic.current_allocated_bytes");
    void *blocks[1000];
    for (int i = 0; i < 1000; i++) blocks[i] = malloc(10000);
    size_t during = prop("generic.current_allocated_bytes");
    for (int i = 0; i < 1000; i++) free(blocks[i]);
    size_t after = prop("generic.current_allocated_bytes");
    printf("current_allocated_bytes: grew by >= 9.5 MB: %s, back within 1 MB: %s\n",
           during - before >= 9500000 ? "yes" : "no", after < before + 1000000 ? "yes" : "no");

    char stats[4096];
    MallocExtension_GetStats(stats, sizeof stats);
    printf("GetStats: %s\n", strstr(stats, "MALLOC:") ? "written" : "missing");
    MallocExtension_ReleaseFreeMemory();
    return 0;
}
