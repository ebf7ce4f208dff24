/* base.h - the tracker's leaf: the recursion guard, the fork-lock registry, the clock, the one growable array (index.h: the one hash index); every stage may use it, it uses none. */
#ifndef TRACKER_BASE_H
#define TRACKER_BASE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lockorder.h"

/* Thread-local state in the initial-exec model: no allocation, no lock,
 * usable from inside malloc (a preloaded library gets static TLS too). */
#define TRACKER_TLS __thread __attribute__((tls_model("initial-exec")))

/* The recursion guard: while it is set, the calling thread's allocations
 * are not recorded (the tracker's own, libdw's). */
extern TRACKER_TLS int tracker_in_tracker;
static inline int tracker_guard_enter(void) /* returns 0 if already inside (do nothing) */
{
    if (tracker_in_tracker) return 0;
    tracker_in_tracker = 1;
    return 1;
}
static inline void tracker_guard_leave(void) { tracker_in_tracker = 0; }

/* The tracker's own code at work (a walk's rule-cache miss, symbols, a
 * report): the guard at TRACKER_GUARD_INTERNAL sends this thread's
 * allocations to the tracker's own heap (ialloc.h), out of the program's.
 * A hook's guard (1) alone forwards them to the program's allocator: they
 * may be a signal handler's. Returns what to restore. */
#define TRACKER_GUARD_INTERNAL 2
static inline int tracker_internal_enter(void)
{
    int prev = tracker_in_tracker;
    tracker_in_tracker = TRACKER_GUARD_INTERNAL;
    return prev;
}
static inline void tracker_internal_leave(int prev) { tracker_in_tracker = prev; }

/* Set between this thread's fork prepare and parent/child handlers: it
 * holds every lock of the tracker then, so an atfork handler of another
 * library that runs meanwhile and allocates must not wait for one. */
extern TRACKER_TLS int tracker_in_fork;

/* A tracker mutex, taken and dropped under its rank (the lock-order
 * check of lockorder.h). The _unless_fork pair does nothing between this
 * thread's fork handlers, which hold every lock then. */
static inline void tracker_lock(pthread_mutex_t *m, enum tracker_lock_rank r)
{
    pthread_mutex_lock(m);
    lock_order_take(r);
}
static inline void tracker_unlock(pthread_mutex_t *m, enum tracker_lock_rank r)
{
    lock_order_drop(r);
    pthread_mutex_unlock(m);
}
static inline void tracker_lock_unless_fork(pthread_mutex_t *m, enum tracker_lock_rank r)
{
    if (!tracker_in_fork) tracker_lock(m, r);
}
static inline void tracker_unlock_unless_fork(pthread_mutex_t *m, enum tracker_lock_rank r)
{
    if (!tracker_in_fork) tracker_unlock(m, r);
}

/* fork(): a lock held by another thread at that moment would stay locked
 * forever in the child. Each stage registers its locks under its rank
 * (lockorder.h) when it sets up; the prepare handler takes them in rank
 * order, both sides release them in reverse, and the child then runs each
 * stage's child function. Registering twice under a rank is harmless (the
 * same functions). tracker_fork_install: once, by the first stage set up. */
void tracker_fork_register(enum tracker_lock_rank rank, void (*lock)(void), void (*unlock)(void),
                           void (*child)(void));
/* The common case: one mutex under rank (taken with the lock-order check). */
void tracker_fork_register_mutex(enum tracker_lock_rank rank, pthread_mutex_t *m);
void tracker_fork_install(void);

/* A random odd 64-bit key, made once into *slot: from the kernel (the
 * raw syscall: glibc's getrandom is a cancellation point), else from the
 * clock and ASLR. Racing callers agree on one value; errno is kept. */
uint64_t tracker_key_once(_Atomic uint64_t *slot);

/* Seconds on CLOCK_MONOTONIC. */
double tracker_now(void);

/* Room for one more element in a malloc'ed array arr of *cap elements of
 * elem bytes, n of them in use: arr itself when there is room, else the
 * array grown to twice (at first, to first elements; *cap updated), or
 * NULL when realloc fails (arr unchanged). Report time only, inside the
 * recursion guard. */
static inline void *tracker_grow(void *arr, size_t n, size_t *cap, size_t elem, size_t first)
{
    if (n < *cap) return arr;
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(arr, c * elem);
    if (p) *cap = c;
    return p;
}

#endif /* TRACKER_BASE_H */
