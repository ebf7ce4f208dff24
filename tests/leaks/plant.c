/* plant.c - test-only leaks for bin/server-planted: a second leak and a bounded cache, in a file and functions the lab does not have, chosen by $PLANT. */
/*
 * Linked only into bin/server-planted (tests/test_leaks.sh, the dashboard
 * test): it defines routes_test_hook, which GET / calls once per answered
 * request. $PLANT is a comma-separated list of
 *   leak:BYTES         keep BYTES per request forever (remember_session)
 *   cache:BYTES:N      keep BYTES per request in a ring of N entries, the
 *                      oldest freed: grows for N requests, then flat (warm_cache)
 * e.g. PLANT=leak:3000,cache:4096:2000. /leaks must find them from the data
 * alone; the tests find their lines by the markers below.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/routes.h"

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;     /* guards the lists */
    size_t leak_bytes;        /* 0: no planted leak */
    size_t cache_bytes, cache_n;
    void *sessions;           /* leaked blocks, chained through their first word */
    void **ring;              /* cache_n entries */
    size_t ring_pos;
} P = { PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, NULL, NULL, 0 };

static void parse_plant(void)
{
    const char *s = getenv("PLANT");
    char buf[256];
    if (!s) return;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        unsigned long a = 0, b = 0;
        if (sscanf(tok, "leak:%lu", &a) == 1 && a >= sizeof(void *)) P.leak_bytes = a;
        else if (sscanf(tok, "cache:%lu:%lu", &a, &b) == 2 && a > 0 && b > 0) {
            P.cache_bytes = a;
            P.cache_n = b;
            P.ring = calloc(b, sizeof *P.ring);
        } else fprintf(stderr, "plant: ignored '%s'\n", tok);
    }
}

/* The planted leak: every session is remembered, none forgotten. */
static void __attribute__((noinline)) remember_session(void)
{
    void *s = malloc(P.leak_bytes); /* PLANT-LEAK */
    if (!s) return;
    memset(s, 0x5a, P.leak_bytes);
    *(void **)s = P.sessions;
    P.sessions = s;
}

/* The bounded cache: the newest cache_n entries are kept. */
static void __attribute__((noinline)) warm_cache(void)
{
    void *e = malloc(P.cache_bytes); /* PLANT-CACHE */
    if (!e) return;
    memset(e, 0xa5, P.cache_bytes);
    free(P.ring[P.ring_pos]);
    P.ring[P.ring_pos] = e;
    P.ring_pos = (P.ring_pos + 1) % P.cache_n;
}

void routes_test_hook(void)
{
    pthread_once(&P.once, parse_plant);
    pthread_mutex_lock(&P.lock);
    if (P.leak_bytes) remember_session();
    if (P.ring) warm_cache();
    pthread_mutex_unlock(&P.lock);
}
