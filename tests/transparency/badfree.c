/* badfree.c - the bugs glibc's own checks catch: a double free and a free of a pointer it never
 * returned. Its message and the SIGABRT must be the same with a tracker in between. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Through a volatile pointer: the compiler would see the bugs and warn. */
static void (*volatile release)(void *) = free;

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "double";
    char *p = malloc(40);
    char *q = malloc(40);
    strcpy(p, "first");
    strcpy(q, "second");
    printf("%s %s\n", p, q);
    fflush(stdout);
    if (strcmp(mode, "double") == 0) {
        release(p);
        release(q);
        release(p); /* the bug */
    } else {
        release(p + 16); /* the bug: not a pointer malloc returned */
    }
    printf("not reached\n");
    return 0;
}
