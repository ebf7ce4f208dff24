/* tracker_internal.h - entry points of the tracker's hooks, own files and tests: not for consumers (they read tracker.h). */
#ifndef TRACKER_INTERNAL_H
#define TRACKER_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Thread-local state in the initial-exec model: no allocation, no lock,
 * usable from inside malloc (a preloaded library gets static TLS too). */
#define TRACKER_TLS __thread __attribute__((tls_model("initial-exec")))

/* tracker.c: set up the tables. Idempotent; run by a constructor before main(). */
void tracker_init(void);

/* ---- tracker.c, hot path: called by the hooks only (guarded against recursion) ---- */

/* Record block ptr of size bytes, allocated by the code whose frame chain
 * starts at frame (the hook's __builtin_frame_address(0)). */
void tracker_record_alloc(void *ptr, size_t size, void *frame);

/* Forget block ptr before the real free. Returns 1 and, when the out
 * pointers are not NULL, the block's size and stack id if it was tracked;
 * returns 0 (and changes nothing) for unknown pointers. */
int tracker_record_free(void *ptr, size_t *size, uint32_t *stack_id);

/* Put back a record taken by tracker_record_free (a realloc that failed). */
void tracker_record_restore(void *ptr, size_t size, uint32_t stack_id);

/* Thread-local recursion guard shared with the hooks: while it is set, the
 * calling thread's allocations are not recorded (the tracker's own, libdw's). */
extern TRACKER_TLS int tracker_in_tracker; /* tracker.c: the guard itself */
static inline int tracker_guard_enter(void) /* returns 0 if already inside (do nothing) */
{
    if (tracker_in_tracker) return 0;
    tracker_in_tracker = 1;
    return 1;
}
static inline void tracker_guard_leave(void) { tracker_in_tracker = 0; }

/* ---- tracker.c, for the tracker's own tests ---- */

/* Look up a live block: its size and stack id. Returns 0 if not tracked. */
int tracker_lookup(const void *ptr, size_t *size, uint32_t *stack_id);

/* Make the next n bookkeeping allocations (table growth, stack storage)
 * fail, as if the system had no memory left. */
void tracker_debug_fail_bookkeeping(int n);

/* stackwalk.c: fill out[] with up to max return addresses, innermost first,
 * starting at the frame of a hook (its __builtin_frame_address(0)), by the
 * modules' CFI. Reads only inside the stack the caller runs on. Returns the
 * number of frames (>= 1). */
int tracker_stackwalk(void *hook_frame, uintptr_t *out, int max);

/* stackwalk.c: the walk memo. tracker_stackwalk_known: 1 and *id when a
 * walk from hook_frame would give the stack this thread last interned from
 * there (checked, not guessed); tracker_stackwalk_learn: the id of the
 * stack of this thread's last tracker_stackwalk. */
int tracker_stackwalk_known(void *hook_frame, uint32_t *id);
void tracker_stackwalk_learn(uint32_t id);

/* stackwalk.c: notice modules loaded or unloaded (rule-cache misses do it
 * too). Must not run inside a hook; called by tracker_snapshot_take. */
void tracker_stackwalk_refresh(void);

/* stackwalk.c: once, at init: the CFI rule cache and module list, the
 * calling (main) thread's stack bounds. */
void tracker_stackwalk_init(void);

/* hooks.c: a report asked for from a signal handler (preload.c sets the
 * flag, async-signal-safe); the next hook that holds the recursion guard,
 * its allocation done, calls tracker_hooks_deferred (NULL: nothing). */
extern atomic_int tracker_hooks_pending;
extern void (*tracker_hooks_deferred)(void);

/* symbolize.c: close the libdw session and its fds (the cache stays);
 * the preload calls it after each report. */
void tracker_symbolize_release(void);

/* fork(): each module's locks, taken by tracker.c's atfork prepare handler
 * in the one order documented there, and released on both sides. */
void tracker_baseline_fork_lock(void);
void tracker_baseline_fork_unlock(void);
void tracker_stackwalk_fork_lock(void);
void tracker_stackwalk_fork_unlock(void);
void tracker_symbolize_fork_lock(void);
void tracker_symbolize_fork_unlock(void);

/* tracker.c: seconds on CLOCK_MONOTONIC. */
double tracker_now(void);

#endif /* TRACKER_INTERNAL_H */
