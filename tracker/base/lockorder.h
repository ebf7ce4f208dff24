/* lockorder.h - the tracker's locks in the one order any path may nest them, checked in the test build. */
#ifndef TRACKER_LOCKORDER_H
#define TRACKER_LOCKORDER_H

/*
 * A thread holding a lock may take only locks of a higher rank. The fork
 * prepare handler (base.c) takes them all in this order, so a path
 * that took them in another could deadlock with a fork. Built with
 * -DTRACKER_LOCK_CHECK (the O0 variant: the unit tests), each take checks
 * the rank against the ones this thread holds and aborts with a message
 * when it is out of order; in other builds the checks are empty.
 * Never waited for: the memo pool's lock (only tried) and init_lock (held
 * only inside tracker_init, which registers the fork handlers).
 */
enum tracker_lock_rank {
    LOCK_REPORT = 1, /* baseline.c: a whole report */
    LOCK_CFI,        /* cfi.c: a rule-cache miss, the module list */
    LOCK_SYMBOLS,    /* symbolize.c: the symbol cache */
    LOCK_INTERN,     /* tracker.c: adding a stack; its fork handler also takes the shards and big */
    LOCK_SHARD,      /* tracker.c: one address-table shard (fork takes all 32 in index order) */
    LOCK_BIG,        /* tracker.c: blocks of >= 4 GiB, under a shard */
    LOCK_IALLOC,     /* ialloc.c: the tracker's own heap (libdw allocates under any of the above) */
    LOCK_RANKS
};

#ifdef TRACKER_LOCK_CHECK
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
extern __thread unsigned tracker_locks_held;
static inline void lock_order_take(enum tracker_lock_rank r)
{
    if (tracker_locks_held >> (r + 1)) {
        char msg[96];
        int n = snprintf(msg, sizeof msg, "tracker: lock order: rank %d taken while holding mask 0x%x\n", (int)r,
                         tracker_locks_held);
        if (n > 0 && write(2, msg, (size_t)n) < 0) abort();
        abort();
    }
    tracker_locks_held |= 1u << r;
}
static inline void lock_order_drop(enum tracker_lock_rank r) { tracker_locks_held &= ~(1u << r); }
#else
static inline void lock_order_take(enum tracker_lock_rank r) { (void)r; }
static inline void lock_order_drop(enum tracker_lock_rank r) { (void)r; }
#endif

#endif /* TRACKER_LOCKORDER_H */
