/* base.c - the recursion guard, the fork-lock registry and the clock: the leaf every stage of the tracker may use. */

#include "base.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
            tracker_lock(fork_locks[r].mutex, (enum tracker_lock_rank)r);
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
            tracker_unlock(fork_locks[r].mutex, (enum tracker_lock_rank)r);
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

uint64_t tracker_key_once(_Atomic uint64_t *slot)
{
    uint64_t k = atomic_load_explicit(slot, memory_order_relaxed);
    if (k) return k;
    int e = errno;
    if (syscall(SYS_getrandom, &k, sizeof k, 1 /* GRND_NONBLOCK */) != (long)sizeof k) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts ^ (uint64_t)(uintptr_t)slot;
    }
    k |= 1;
    errno = e;
    uint64_t zero = 0;
    return atomic_compare_exchange_strong(slot, &zero, k) ? k : zero;
}

double tracker_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
