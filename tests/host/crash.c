/* crash.c - a program that ends by a fatal signal (segfault, abort) with a block still live: its report exists only with TRACKER_FATAL=1. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* usage: crash segv|abort: keeps one 77-byte block, then dies by SIGSEGV
 * (a write through NULL) or SIGABRT (abort()). */

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "segv") != 0 && strcmp(argv[1], "abort") != 0)) {
        fprintf(stderr, "usage: %s segv|abort\n", argv[0]);
        return 2;
    }
    char *kept = malloc(77); /* LEAK-CRASH */
    printf("kept %s\n", kept ? "a block" : "nothing");
    fflush(stdout);
    if (strcmp(argv[1], "abort") == 0) abort();
    *(volatile int *)(kept ? NULL : kept) = 1;
    return 0;
}
