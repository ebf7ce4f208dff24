/* vg_annotate.h - tells valgrind's drd and helgrind what the tracker's spinlocks and lock-free tables synchronize on. */
#ifndef TRACKER_VG_ANNOTATE_H
#define TRACKER_VG_ANNOTATE_H

/*
 * The shard locks are spinlocks of our own and the rule and intern tables
 * are read without a lock (release stores publish, acquire loads read):
 * C11 atomics that drd and helgrind do not model, so without these notes
 * every access under a spinlock and every lock-free probe is reported as a
 * race. Only the build made for those tools defines TRACKER_VALGRIND
 * (build/tools/test_tracker_quick, the "vg" variant of the Makefile): the
 * client requests cost ~10 instructions each, too much for the hot path of
 * every other build, where the macros are empty.
 */
#ifdef TRACKER_VALGRIND
#include <valgrind/drd.h>
#define VG_LOCK_CREATE(l)   ANNOTATE_RWLOCK_CREATE(l)
#define VG_LOCK_ACQUIRED(l) ANNOTATE_RWLOCK_ACQUIRED(l, 1)
#define VG_LOCK_RELEASED(l) ANNOTATE_RWLOCK_RELEASED(l, 1)
/* A publication (before the release store) and a read that saw it (after
 * the acquire load): one object per table orders every publish before
 * every later read, an over-approximation that hides no real race of the
 * locked paths. */
#define VG_PUBLISH(p)       ANNOTATE_HAPPENS_BEFORE(p)
#define VG_SEEN(p)          ANNOTATE_HAPPENS_AFTER(p)
/* Memory shared without a lock (lock-free table slots, the per-thread
 * totals rows): C11 atomics, or a row owner's single add to memory, that
 * readers load atomically. The tools would report each access. */
#define VG_ATOMIC_RANGE(p, n) ANNOTATE_BENIGN_RACE_SIZED(p, n, "lock-free: C11 atomics or the owner's single add")
#else
#define VG_LOCK_CREATE(l)   ((void)0)
#define VG_LOCK_ACQUIRED(l) ((void)0)
#define VG_LOCK_RELEASED(l) ((void)0)
#define VG_PUBLISH(p)       ((void)0)
#define VG_SEEN(p)          ((void)0)
#define VG_ATOMIC_RANGE(p, n) ((void)0)
#endif

#endif /* TRACKER_VG_ANNOTATE_H */
