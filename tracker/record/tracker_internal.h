/* tracker_internal.h - entry points of the tracker's hooks, own files and tests: not for consumers (they read tracker.h). */
#ifndef TRACKER_INTERNAL_H
#define TRACKER_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base.h"
#include "unwind.h"

/* tracker.c: set up the tables. Idempotent; run by a constructor before main(). */
void tracker_init(void);

/* ---- tracker.c, hot path: called by the hooks only (guarded against recursion) ---- */

/* A block's record is its stack id and size, kept by the hooks with the
 * block (hooks.c: a 16-byte header, or the address table below for blocks
 * glibc aligned). TRACKER_UNTRACKED: not recorded (tracker off, inside the
 * tracker, or no bookkeeping memory: then counted as lost). Sizes above
 * TRACKER_SIZE_MAX (16 TiB) cannot be kept in a header and are not recorded. */
#define TRACKER_STACK_BITS 20
#define TRACKER_UNTRACKED  ((1u << TRACKER_STACK_BITS) - 1)
#define TRACKER_SIZE_MAX   ((1ULL << (64 - TRACKER_STACK_BITS)) - 1)
#define TRACKER_HEADER_BYTES 16 /* hooks.c's header: a check word, then size << 20 | stack id */

/* One stack's totals in one slot: written by the slot's thread alone with
 * plain stores (slot 0: by anyone, with atomic adds); read lock-free by
 * snapshots (relaxed atomics: whole 64-bit values, never torn). Values
 * wrap: a slot's live count may go "below zero" (frees of blocks another
 * slot counted); only the sum over the slots means something. 32 bytes:
 * two stacks' rows of one slot share a cache line (one thread's, so no
 * false sharing but in the shared slot 0). */
typedef struct tracker_row {
    _Atomic uint64_t size;        /* live bytes from this stack, this slot's share */
    _Atomic uint64_t count;       /* live blocks from this stack, this slot's share */
    _Atomic uint64_t alloc_bytes;  /* bytes ever allocated from it (since start), never decreases */
    _Atomic uint64_t alloc_count; /* blocks ever allocated from it (since start), never decreases */
} tracker_row;

/* tracker.c: this thread's own row of totals for each stack id (NULL: no
 * row of its own yet, or slot 0 shared with atomic adds), and whether new
 * blocks are recorded. A thread gets rows only once the tables are set up,
 * so rows != NULL also says they are. */
extern TRACKER_TLS tracker_row *tracker_rows;
extern _Atomic int tracker_enabled;

/* Add d to one total: with a plain (not locked) add in a row only this
 * thread writes, with an atomic add in the shared slot 0. */
static inline __attribute__((always_inline)) void tracker_row_add(_Atomic uint64_t *v, uint64_t d, int shared)
{
    if (shared) {
        atomic_fetch_add_explicit(v, d, memory_order_relaxed);
    } else {
#if defined(__x86_64__)
        /* One add to memory, where gcc makes three instructions of the
         * relaxed load and store: no other thread writes this row, and an
         * aligned 8-byte store is atomic on x86-64, so a reader sees the
         * old value or the new one. */
        __asm__("addq %1, %0" : "+m"(*v) : "er"(d));
#else
        atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + d, memory_order_relaxed);
#endif
    }
}

/* Add to one row: all four totals, or the live two (fresh = 0). */
static inline __attribute__((always_inline)) void tracker_row_add_all(tracker_row *st, uint64_t bytes, uint64_t blocks,
                                                                      int fresh, int shared)
{
    tracker_row_add(&st->size, bytes, shared);
    tracker_row_add(&st->count, blocks, shared);
    if (fresh) {
        tracker_row_add(&st->alloc_bytes, bytes, shared);
        tracker_row_add(&st->alloc_count, 1, shared);
    }
}


/* The paths of the two below that the inlined fast paths leave to tracker.c. */
uint32_t tracker_record_alloc_slow(size_t size, void *frame);
void tracker_record_free_slow(uint32_t id, size_t size, int nested);

/* The fast path of recording a new block of size bytes allocated by the
 * code whose frame chain starts at frame (the hook's
 * __builtin_frame_address(0)): the stack id the memo knows, when this
 * thread has its own row and the tracker is on; else -1, and the slow
 * path (tracker_record_alloc_slow) decides. One call, the memo's check. */
static inline __attribute__((always_inline)) int64_t tracker_record_fast(size_t size, void *frame)
{
    if (__builtin_expect(!tracker_rows || size > TRACKER_SIZE_MAX ||
                         !atomic_load_explicit(&tracker_enabled, memory_order_relaxed), 0))
        return -1;
    return tracker_stackwalk_known(frame);
}

/* ... and its four adds to this thread's own row (tracker_rows is read
 * again after the memo's call: held across it, it took a register). */
static inline __attribute__((always_inline)) void tracker_record_fast_add(int64_t id, size_t size)
{
    tracker_row_add_all(tracker_rows + id, size, 1, 1, 0);
}

/* Record a new block: its stack id (or TRACKER_UNTRACKED), already added
 * to the live and cumulative totals; the fast path inline, the rest out
 * of line. */
static inline __attribute__((always_inline)) uint32_t tracker_record_alloc(size_t size, void *frame)
{
    int64_t id = tracker_record_fast(size, frame);
    if (__builtin_expect(id < 0, 0)) return tracker_record_alloc_slow(size, frame);
    tracker_record_fast_add(id, size);
    return (uint32_t)id;
}

/* Take a recorded block of size bytes from stack id out of the live
 * totals (id TRACKER_UNTRACKED: nothing to do). nested: the caller holds
 * no recursion guard of its own (a signal handler interrupted a hook, or
 * the tracker frees a block it did not allocate): the totals are then
 * changed with atomic adds, never with this thread's plain stores. Inline:
 * a free of a recorded block is two adds to this thread's row. */
static inline __attribute__((always_inline)) void tracker_record_free(uint32_t id, size_t size, int nested)
{
    tracker_row *rows = tracker_rows;
    if (__builtin_expect(rows && !nested && id < TRACKER_UNTRACKED, 1))
        tracker_row_add_all(rows + id, -(uint64_t)size, -(uint64_t)1, 0, 0);
    else
        tracker_record_free_slow(id, size, nested);
}

/* The address table, for blocks without a header (memalign & co.).
 * put: 0, or -1 when out of bookkeeping (the caller takes the block back
 * out of the totals and counts it lost). take: 1 with its record, removed;
 * 0 when absent. find: the same without removing. None changes totals. */
int tracker_table_put(const void *ptr, size_t size, uint32_t id);
int tracker_table_take(const void *ptr, size_t *size, uint32_t *id);
int tracker_table_find(const void *ptr, size_t *size, uint32_t *id);

/* Count a block that could not be recorded. */
void tracker_count_lost(void);


/* ---- for the tracker's own tests ---- */

/* hooks.c: the allocator the hooks forward to, in words, when it is not
 * glibc's (another allocator, or the hooks stepped aside), else NULL. */
const char *tracker_hooks_mode(void);
/* hooks.c: 0 when the program's malloc is not ours at all (the library
 * was dlopen'ed, not preloaded): nothing is recorded, nothing reported. */
int tracker_hooks_interposed(void);

/* hooks.c: look up a live block (never a freed one: its memory is read):
 * its size and stack id. Returns 0 if not tracked. */
int tracker_lookup(const void *ptr, size_t *size, uint32_t *stack_id);

/* Make the next n bookkeeping allocations (table growth, stack storage)
 * fail, as if the system had no memory left. */
void tracker_debug_fail_bookkeeping(int n);


/* hooks.c: a report asked for from a signal handler (preload.c sets the
 * flag, async-signal-safe); the next hook that holds the recursion guard,
 * its allocation done, calls tracker_hooks_deferred (NULL: nothing). */
extern atomic_int tracker_hooks_pending;
extern void (*tracker_hooks_deferred)(void);

/* symbolize.c: close the libdw session and its fds (the cache stays);
 * the preload calls it after each report. */
void tracker_symbolize_release(void);


#endif /* TRACKER_INTERNAL_H */
