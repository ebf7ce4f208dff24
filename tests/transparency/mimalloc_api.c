/* mimalloc_api.c - a program linked with mimalloc (which overrides malloc) that uses its mi_* API
 * on the blocks it gets, mixing them with malloc/free as mimalloc allows. */

#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    printf("mimalloc %d\n", mi_version());
    void *p = malloc(100);
    printf("malloc(100): mi_usable_size %zu, in heap %d\n", mi_usable_size(p), (int)mi_is_in_heap_region(p));
    mi_free(p); /* a malloc block freed by mi_free */

    char *q = mi_malloc_aligned(3000, 512);
    printf("mi_malloc_aligned(3000, 512): aligned %d\n", ((size_t)q & 511) == 0);
    strcpy(q, "mi");
    q = realloc(q, 100000); /* grown by realloc */
    printf("realloc kept %s, usable %zu\n", q, mi_usable_size(q));
    free(q); /* freed by free */

    mi_heap_t *h = mi_heap_new();
    void *b[1000];
    for (int i = 0; i < 1000; i++) b[i] = mi_heap_malloc(h, 64 + (size_t)i);
    printf("heap blocks: %d\n", b[999] != NULL);
    mi_heap_destroy(h); /* frees every block of the heap at once */

    size_t elapsed, user, sys, rss, peak_rss, commit, peak_commit, faults;
    mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
    printf("mi_process_info: rss known %d\n", rss > 0);
    return 0;
}
