/* exercise.c - picks the exercise of --exercise N|random and hands GET / to its handler. */
#include "exercise.h"

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../decimal.h"
#include "../splitmix.h"


/* The handlers, indexed by exercise number - 1. */
static enum MHD_Result (*const handlers[EXERCISE_COUNT])(struct MHD_Connection *) = {
    exercise_journal, exercise_card, exercise_lookup, exercise_badges, exercise_report,
    exercise_tags,    exercise_watch, exercise_batch,  exercise_export,
};

unsigned exercise_pick(const char *arg)
{
    unsigned long n;

    if (strcmp(arg, "random") == 0) {
        struct timespec now;
        uint64_t seed;

        clock_gettime(CLOCK_REALTIME, &now);
        /* Not secret, only not printed: the clock and the pid as a seed,
         * mixed by splitmix64 so that every bit of them reaches the remainder
         * (a plain xor of them kept a coarse clock's pattern). */
        seed = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 30) ^ ((uint64_t)getpid() << 40);
        exercise_reply_plain();
        return 1u + (unsigned)(splitmix64_next(&seed) % EXERCISE_RANDOM);
    }
    if (decimal_parse(arg, EXERCISE_COUNT, &n) != 0 || n < 1 || n > EXERCISE_COUNT)
        return 0;
    return (unsigned)n;
}

enum MHD_Result exercise_handle(unsigned n, struct MHD_Connection *conn)
{
    return handlers[n - 1](conn); /* n was checked by exercise_pick */
}
