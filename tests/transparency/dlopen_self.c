/* dlopen_self.c - dlopen of the tracker library itself (a program that loads it on demand, or
 * a plugin host handed it): it must load, and the process go on as before. */

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: dlopen_self LIB.so\n"); return 2; }
    char *before = strdup("before");
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        const char *c = e ? strrchr(e, ':') : NULL; /* the reason, without the path */
        printf("dlopen failed%s\n", c ? c : "");
        return 1;
    }
    char *after = strdup("after");
    printf("dlopen ok; %s, %s\n", before, after);
    free(before);
    free(after);
    dlclose(h);
    return 0;
}
