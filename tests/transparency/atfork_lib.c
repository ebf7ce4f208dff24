/* atfork_lib.c - a library that registers pthread_atfork handlers in its constructor (as OpenSSL,
 * NSS and allocators do), before a preloaded tracker's; its child handler allocates from a call
 * stack the process has never used. */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static char *state;

static __attribute__((noinline)) char *fresh_copy(const char *s, int depth)
{
    if (depth > 0) return fresh_copy(s, depth - 1);
    return strdup(s);
}

static void prepare(void) { }
static void parent(void) { }

/* In the child: a new buffer for state the child must not share (a seed,
 * a connection table): a malloc from a stack seen only here. */
static void child(void)
{
    char *c = fresh_copy("child state", 5);
    free(state);
    state = c;
}

__attribute__((constructor)) static void atfork_lib_init(void)
{
    pthread_atfork(prepare, parent, child);
    state = strdup("parent state");
}

const char *atfork_lib_state(void) { return state; }
