/* held_by_stack.c - a block held only by a local of main while an on-demand report runs (tests/test_retention.sh: the preload's retention section scans the program's stack, not the report's own). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

int main(void)
{
    char *volatile held = malloc(777); /* HELD-BY-STACK */
    char *lost = malloc(555);          /* LOST-HERE */
    if (!held || !lost) return 1;
    memset(held, 1, 777);
    memset(lost, 2, 555);
    lost = NULL;
    raise(SIGUSR2);   /* the tracker's handler asks for a report ... */
    sink = malloc(1); /* ... written in this allocation's hook */
    free(sink);
    printf("%d\n", held[0]);
    free(held);
    return 0;
}
