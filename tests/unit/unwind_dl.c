/* unwind_dl.c - a library for tests/unit/test_unwind.c to dlopen: it allocates in its constructor and from two frames deep, built without frame pointers (its functions exported, so the test can name them with dladdr). */

#include <stdlib.h>

void *unwind_dl_ctor_block;

__attribute__((constructor)) void unwind_dl_ctor(void)
{
    unwind_dl_ctor_block = malloc(48);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noipa)) void *unwind_dl_inner(size_t n)
{
    void *p = malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noipa)) void *unwind_dl_outer(size_t n)
{
    void *p = unwind_dl_inner(n);
    __asm__ volatile("" ::: "memory");
    return p;
}
