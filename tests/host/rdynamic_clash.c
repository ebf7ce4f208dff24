/* rdynamic_clash.c - a -rdynamic program with its own tracker_init (and tracker_report): the preload must never call them. */

#include <stdio.h>
#include <stdlib.h>

/* Exported (built with -rdynamic): a library that called these names
 * through the dynamic linker would reach the program's. */
int init_calls;
void tracker_init(void) { init_calls++; }
char *tracker_report(void) { return NULL; }

__attribute__((constructor)) static void start(void) { tracker_init(); }

int main(void)
{
    char *p = malloc(100); /* LEAK-CLASH: kept to the end, so the report has a line */
    printf("tracker_init called %d time(s)\n", init_calls);
    return p ? 0 : 1;
}
