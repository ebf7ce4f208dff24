/* base.c - the recursion guard, the fork-lock registry and the clock: the leaf every stage of the tracker may use. */

#include "base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

TRACKER_TLS int tracker_in_tracker;
TRACKER_TLS int tracker_in_fork;
#ifdef TRACKER_LOCK_CHECK
__thread unsigned tracker_locks_held;
#endif

/* One entry per rank (index = rank). Written before the first fork that
 * could need it: a stage registers when it sets up, before its lock can
 * be held. */
static struct {
    void (*lock)(void), (*unlock)(void), (*child)(void);
    pthread_mutex_t *mutex; /* instead of lock/unlock */
} fork_locks[LOCK_RANKS];

void tracker_fork_register(enum tracker_lock_rank rank, void (*lock)(void), void (*unlock)(void),
                           void (*child)(void))
{
    if ((unsigned)rank >= LOCK_RANKS) return;
    fork_locks[rank].lock = lock;
    fork_locks[rank].unlock = unlock;
    fork_locks[rank].child = child;
}

void tracker_fork_register_mutex(enum tracker_lock_rank rank, pthread_mutex_t *m)
{
    if ((unsigned)rank < LOCK_RANKS) fork_locks[rank].mutex = m;
}

static void fork_prepare(void)
{
    for (unsigned r = 0; r < LOCK_RANKS; r++) {
        if (fork_locks[r].mutex) {
            pthread_mutex_lock(fork_locks[r].mutex);
            lock_order_take((enum tracker_lock_rank)r);
        } else if (fork_locks[r].lock) {
            fork_locks[r].lock();
        }
    }
    tracker_in_fork = 1;
}

static void fork_release(void)
{
    tracker_in_fork = 0;
    for (unsigned r = LOCK_RANKS; r-- > 0;) {
        if (fork_locks[r].mutex) {
            lock_order_drop((enum tracker_lock_rank)r);
            pthread_mutex_unlock(fork_locks[r].mutex);
        } else if (fork_locks[r].unlock) {
            fork_locks[r].unlock();
        }
    }
}

static void fork_child(void)
{
    fork_release();
    for (unsigned r = 0; r < LOCK_RANKS; r++)
        if (fork_locks[r].child) fork_locks[r].child();
}

void tracker_fork_install(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&once)) pthread_atfork(fork_prepare, fork_release, fork_child);
}

double tracker_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
