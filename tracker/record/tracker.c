/* tracker.c - the tracker's tables: interned call stacks, live totals per stack, live blocks by address. */
/* Long on purpose: the stacks table, the rows and the address table share
 * one set of locks and one fork order (lockorder.h), kept in one file so
 * that every place that takes them is seen together. */

#include "tracker.h"
#include "tracker_internal.h"
#include "ialloc.h"
#include "index.h" /* its integer mix only: the tables here are lock-free, index.h says why */
#include "vg_annotate.h"
#include "cfi.h"
#include "lockorder.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

/*
 * Design (after CPython's tracemalloc and heaptrack):
 *  - Each distinct call stack is stored once, in an append-only arena, and
 *    gets a small id. Stacks are never freed, so an id stays valid forever
 *    and a snapshot only needs ids. The stack itself comes from the CFI walk
 *    (stackwalk.c), or, most of the time, from its per-thread memo: the id of
 *    the last stack walked from the same call site and %rsp, reused when
 *    every stack word that walk read is unchanged (no walk, no hash, no
 *    intern lookup).
 *  - A block's record (stack id, size) travels with the block: hooks.c puts
 *    it in a 16-byte header in front of the block, so a free finds it in the
 *    cache line glibc's free reads anyway. No table is looked up, locked or
 *    updated per block. Only blocks glibc aligned for the caller (memalign &
 *    co., rare) are recorded in a sharded address table instead (below).
 *  - Live bytes and count per stack are kept in rows, one per thread slot:
 *    a thread takes one of 15 slots at its first allocation and gives it
 *    back at exit (a pthread key's destructor), and updates its own rows
 *    with plain stores: no lock, no atomic read-modify-write. Threads
 *    beyond 15, and frees nested in a hook (a signal handler), use slot 0
 *    with atomic adds. A free on another thread than the allocation takes
 *    the block out of the freeing thread's row (a row may go below zero;
 *    the sum over the rows is right). The rows are laid out [slot][stack],
 *    32 bytes each: a thread's busy rows share cache lines with each other,
 *    never with another thread's (but in slot 0). A snapshot sums a stack's
 *    16 rows, so its cost follows the number of stacks, never the number
 *    of blocks. The same row counts bytes and blocks ever allocated
 *    (pprof's alloc_space/alloc_objects).
 *  - All tables come from mmap, never from malloc: the tracker cannot
 *    recurse into the allocator it watches, and cannot be counted by it.
 *  - No lock is held while calling malloc/free, so a hook that runs
 *    inside the tracker (libdw's allocations at report time) cannot deadlock.
 * What is left per malloc+free pair is the hooks' own work (guard, the
 * header, glibc's calls), the memo's check of the stack words (one load,
 * xor and or a word) and the row's adds to memory (four for a malloc, two
 * for a free); docs/perf.md has what make bench measured.
 */

/* ------------------------------------------------------------------ */
/* Limits                                                               */
/* ------------------------------------------------------------------ */

#define MAX_STACKS      TRACKER_UNTRACKED       /* ids 0..MAX_STACKS-1 fit a header and a table slot */
#define ARENA_RESERVE   (256u << 20)            /* virtual, touched as used */
#define INTERN_MIN      4096u                   /* first intern table, slots */
#define NSHARDS         32u                     /* address table shards */
#define NSLOTS          16u                     /* rows per stack: slot 0 shared, 1..15 one thread each */
#define SLOT_SHARED     NSLOTS                  /* t_slot of a thread that uses slot 0 */
#define SHARD_MIN       256u                    /* first shard table, slots */
#define BIG_MAX         64                      /* live blocks of >= 4 GiB */
#define SIZE_BIG        UINT32_MAX              /* slot size: look in big[] */

typedef struct stack_rec {
    uint64_t hash;        /* hash of frames[] */
    uint32_t nframes;     /* 1..TRACKER_MAX_FRAMES */
    uint32_t unused;
    uintptr_t frames[];   /* return addresses, innermost first */
} stack_rec;

typedef struct intern_table {
    uint32_t mask;               /* slots - 1, slots a power of two */
    _Atomic uint32_t slot[];     /* stack id + 1, or 0 when empty */
} intern_table;

typedef struct block_slot {
    uint32_t key_lo;   /* low 32 bits of address >> 3; 0/0 = empty */
    uint32_t hi_stack; /* bits 0-11: high bits of address >> 3; 12-31: stack id (TRACKER_STACK_BITS) */
    uint32_t size;     /* requested size, SIZE_BIG when >= 4 GiB */
} block_slot;

typedef struct shard {
    _Alignas(64) _Atomic int lock; /* spinlock (shard_lock): one shard per cache line */
    block_slot *slots; /* mmap'ed, mask + 1 slots, NULL until first use */
    uint32_t mask;     /* slots - 1 */
    uint32_t count;    /* occupied slots */
} shard;

typedef struct big_block {
    uintptr_t addr;    /* 0 when the entry is free */
    uint64_t size;     /* exact size of a block of >= 4 GiB */
} big_block;

static struct {
    _Atomic int ready;                 /* tables mapped by tracker_init */
    pthread_mutex_t init_lock;         /* serializes tracker_init */

    /* interned stacks */
    pthread_mutex_t intern_lock;       /* held to add a stack */
    _Atomic(intern_table *) itab;      /* current table; old ones are kept */
    stack_rec **stacks;                /* by id; max_stacks reserved */
    uint32_t max_stacks;               /* MAX_STACKS, fewer under RLIMIT_AS (tracker_init) */
    size_t arena_reserve;              /* ARENA_RESERVE, less under RLIMIT_AS */
    _Atomic uint32_t nstacks;          /* ids in use: 0..nstacks-1 */
    char *arena;                       /* stack_rec storage, arena_reserve bytes */
    size_t arena_used;                 /* bytes, under intern_lock */

    /* totals: stack id's row of slot i at rows[i * max_stacks + id] */
    tracker_row *rows;
    _Atomic uint32_t slots_owned;      /* bit i: slot i taken by a live thread (never bit 0) */
    pthread_key_t slot_key;            /* its destructor gives a thread's slot back */
    int slot_key_ok;

    /* blocks without a header: address table */
    shard shards[NSHARDS];
    pthread_mutex_t big_lock;          /* guards big[] */
    big_block big[BIG_MAX];

    /* accounting */
    _Atomic uint64_t lost;             /* records dropped: no bookkeeping memory */
    _Atomic uint64_t table_bytes;      /* bytes of intern and shard tables */
    _Atomic int fail_next;             /* test hook: fail n bookkeeping maps */
} tables = {
    .init_lock = PTHREAD_MUTEX_INITIALIZER,
    .intern_lock = PTHREAD_MUTEX_INITIALIZER,
    .big_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* This thread's slot: 0 = none yet, 1..NSLOTS-1 its own, SLOT_SHARED = slot 0. */
static TRACKER_TLS uint8_t t_slot;
/* Its own slot's rows (t_slot 1..NSLOTS-1), else NULL: read by the hooks'
 * inlined fast paths (tracker_internal.h). */
TRACKER_TLS tracker_row *tracker_rows;
/* New blocks are recorded (tracker_set_enabled, TRACKER_OFF). */
_Atomic int tracker_enabled;

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */


void tracker_debug_fail_bookkeeping(int n)
{
    atomic_store(&tables.fail_next, n);
}

/* Map zeroed bookkeeping memory. Returns NULL when the system (or the test
 * hook) says no; the caller then counts a lost record. */
static void *bk_map(size_t bytes, int reserve_only)
{
    int f = atomic_load_explicit(&tables.fail_next, memory_order_relaxed);
    while (f > 0) {
        if (atomic_compare_exchange_weak(&tables.fail_next, &f, f - 1)) return NULL;
    }
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (reserve_only ? MAP_NORESERVE : 0);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* The shard locks are spinlocks, not pthread mutexes: taking one is one
 * exchange and releasing it a plain store, where a mutex costs two locked
 * instructions and two calls; a malloc+free pair takes two. They are held
 * for a few probes only, never across a call that can block or allocate.
 * A waiter spins briefly, then yields the CPU. */
static __attribute__((noinline)) void shard_lock_wait(shard *sh)
{
    for (unsigned spins = 0; atomic_exchange_explicit(&sh->lock, 1, memory_order_acquire); spins++) {
        while (atomic_load_explicit(&sh->lock, memory_order_relaxed)) {
            if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            } else {
                sched_yield();
            }
        }
    }
}

static inline __attribute__((always_inline)) void shard_lock(shard *sh)
{
    if (atomic_exchange_explicit(&sh->lock, 1, memory_order_acquire) && !tracker_in_fork) shard_lock_wait(sh);
    if (!tracker_in_fork) lock_order_take(LOCK_SHARD);
    VG_LOCK_ACQUIRED(&sh->lock);
}

static inline __attribute__((always_inline)) void shard_unlock(shard *sh)
{
    if (__builtin_expect(tracker_in_fork, 0)) return; /* fork_prepare's, released by fork_release */
    lock_order_drop(LOCK_SHARD);
    VG_LOCK_RELEASED(&sh->lock);
    atomic_store_explicit(&sh->lock, 0, memory_order_release);
}

/* intern_lock and big_lock, except between this thread's fork handlers
 * (it holds them then). */
static void table_lock(pthread_mutex_t *m)
{
    tracker_lock_unless_fork(m, m == &tables.big_lock ? LOCK_BIG : LOCK_INTERN);
}
static void table_unlock(pthread_mutex_t *m)
{
    tracker_unlock_unless_fork(m, m == &tables.big_lock ? LOCK_BIG : LOCK_INTERN);
}

/* One multiplication per frame, then a full mix for the low bits the
 * intern table indexes by (the hot path hashes every new walk). */
static uint64_t hash_frames(const uintptr_t *frames, int n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    for (int i = 0; i < n; i++) h = (h ^ frames[i]) * 0xff51afd7ed558ccdULL;
    h = tracker_hash_u64(h);
    return h ? h : 1;
}
/* ------------------------------------------------------------------ */
/* Thread slots                                                         */
/* ------------------------------------------------------------------ */

/* A thread's slot goes back at its exit: the pthread key's destructor runs
 * after the thread's own code, and the few frees that come later (TLS
 * destructors of other libraries, glibc's own) use slot 0. */
static void slot_release(void *v)
{
    unsigned s = (unsigned)(uintptr_t)v;
    t_slot = SLOT_SHARED;
    tracker_rows = NULL;
    if (s >= 1 && s < NSLOTS) atomic_fetch_and(&tables.slots_owned, ~(1u << s));
}

/* Take a free slot for this thread (at its first record): the lowest
 * free bit, or slot 0 for good when all 15 are taken or there is no key.
 * pthread_setspecific may allocate (a key past the first 32): the caller
 * holds the recursion guard, so that goes straight to glibc. */
static __attribute__((noinline)) unsigned slot_claim(void)
{
    int e = errno;
    unsigned s = SLOT_SHARED;
    uint32_t m = atomic_load(&tables.slots_owned);
    while (tables.slot_key_ok) {
        uint32_t avail = ~m & ((1u << NSLOTS) - 2);
        if (!avail) break;
        unsigned i = (unsigned)__builtin_ctz(avail);
        if (atomic_compare_exchange_weak(&tables.slots_owned, &m, m | (1u << i))) {
            if (pthread_setspecific(tables.slot_key, (void *)(uintptr_t)i) == 0) s = i;
            else atomic_fetch_and(&tables.slots_owned, ~(1u << i));
            break;
        }
    }
    t_slot = (uint8_t)s;
    tracker_rows = s < NSLOTS ? &tables.rows[(size_t)s * tables.max_stacks] : NULL;
    errno = e;
    return s;
}

/* ------------------------------------------------------------------ */
/* Init and switches                                                    */
/* ------------------------------------------------------------------ */

/* fork(): the tables' locks, for base.c's handlers under LOCK_INTERN (the
 * order is lockorder.h's): intern_lock, the 32 shard locks in index order,
 * big_lock (shard then big in table_put/find; intern is never held with
 * them). The slot bitmap has no lock: the child gives back the slots of
 * the threads that did not follow it. init_lock is not taken: it is held
 * only inside tracker_init, which registers these (glibc's atfork lock is
 * held while the handlers run, so taking it here could deadlock). */
static void tables_fork_lock(void)
{
    table_lock(&tables.intern_lock);
    for (unsigned i = 0; i < NSHARDS; i++) shard_lock(&tables.shards[i]);
    table_lock(&tables.big_lock);
}

static void tables_fork_unlock(void)
{
    table_unlock(&tables.big_lock);
    for (unsigned i = NSHARDS; i-- > 0;) shard_unlock(&tables.shards[i]);
    table_unlock(&tables.intern_lock);
}

static void tables_fork_child(void)
{
    unsigned s = t_slot;
    atomic_store(&tables.slots_owned, s >= 1 && s < NSLOTS ? 1u << s : 0u);
}

static intern_table *intern_table_new(uint32_t slots)
{
    size_t bytes = sizeof(intern_table) + (size_t)slots * sizeof(uint32_t);
    intern_table *t = bk_map(bytes, 0);
    if (!t) return NULL;
    VG_ATOMIC_RANGE(t->slot, (size_t)slots * sizeof(uint32_t));
    t->mask = slots - 1;
    atomic_fetch_add(&tables.table_bytes, bytes);
    return t;
}

/* The tables' address space is reserved at init and touched as used:
 * ~780 MiB for 2^20 stacks. A program under RLIMIT_AS (ulimit -v) would
 * see that much less, so there the reservation is 1/32 of the limit (at
 * least 4096 stacks: ~3 MiB); stacks beyond it are counted as lost
 * records, which every report shows. */
static void reserve_size(void)
{
    struct rlimit rl;
    uint64_t per_stack = NSLOTS * sizeof(tracker_row) + sizeof(stack_rec *) + sizeof(stack_rec) +
                         8 * sizeof(uintptr_t); /* a typical stack's frames */
    uint64_t n = MAX_STACKS;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        uint64_t budget = rl.rlim_cur / 32;
        n = budget / per_stack;
        if (n < 4096) n = 4096;
        if (n > MAX_STACKS) n = MAX_STACKS;
    }
    tables.max_stacks = (uint32_t)n;
    tables.arena_reserve = n == MAX_STACKS ? ARENA_RESERVE : (size_t)n * (sizeof(stack_rec) + 16 * sizeof(uintptr_t)) / 2;
}

void tracker_init(void)
{
    if (atomic_load(&tables.ready)) return;
    pthread_mutex_lock(&tables.init_lock);
    if (!atomic_load(&tables.ready)) {
        /* One array, [slot][stack id]: a thread's rows side by side (the
         * fewest cache lines for its busy stacks). Reserved, touched as
         * used. */
        reserve_size();
        tables.rows = bk_map((size_t)tables.max_stacks * NSLOTS * sizeof(tracker_row), 1);
        int sites_ok = tables.rows != NULL;
        for (unsigned i = 0; i < NSHARDS; i++) {
            VG_LOCK_CREATE(&tables.shards[i].lock);
            VG_ATOMIC_RANGE(&tables.shards[i].count, sizeof tables.shards[i].count); /* also read by collect() */
        }
        VG_ATOMIC_RANGE(&tables.slots_owned, sizeof tables.slots_owned);
        tables.stacks = bk_map(tables.max_stacks * sizeof(stack_rec *), 1);
        tables.arena = bk_map(tables.arena_reserve, 1);
        intern_table *t = intern_table_new(INTERN_MIN);
        if (tables.stacks && sites_ok && tables.arena && t) {
            atomic_store(&tables.itab, t);
            tracker_fork_register(LOCK_INTERN, tables_fork_lock, tables_fork_unlock, tables_fork_child);
            tracker_fork_install();
            tables.slot_key_ok = pthread_key_create(&tables.slot_key, slot_release) == 0;
            tracker_stackwalk_init();
            if (!getenv("TRACKER_OFF")) atomic_store(&tracker_enabled, 1);
            atomic_store(&tables.ready, 1);
        }
        /* else: stay not ready; every hook then just forwards. */
    }
    pthread_mutex_unlock(&tables.init_lock);
}

/* Runs before main() in a program that links the tracker, and when the
 * preloaded library is loaded. */
__attribute__((constructor)) static void tracker_ctor(void)
{
    int g = tracker_internal_enter();
    tracker_init();
    tracker_internal_leave(g);
}

void tracker_set_enabled(int on)
{
    atomic_store(&tracker_enabled, on ? 1 : 0);
}

int tracker_is_active(void)
{
    return tracker_hooks_linked() && atomic_load(&tables.ready) && atomic_load(&tracker_enabled);
}

/* ------------------------------------------------------------------ */
/* Interned stacks                                                      */
/* ------------------------------------------------------------------ */

static int stack_equal(const stack_rec *s, uint64_t h, const uintptr_t *f, int n)
{
    if (s->hash != h || s->nframes != (uint32_t)n) return 0;
    uintptr_t diff = 0;
    for (int i = 0; i < n; i++) diff |= s->frames[i] ^ f[i]; /* at most 16 words: no call to memcmp */
    return diff == 0;
}

/* Probe t for the stack; returns id + 1, or 0 when absent. Lock-free:
 * slots are published with release stores after the record is complete. */
static uint32_t intern_find(intern_table *t, uint64_t h, const uintptr_t *f, int n)
{
    for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t v = atomic_load_explicit(&t->slot[i], memory_order_acquire);
        if (v == 0) return 0;
        VG_SEEN(&tables.itab);
        if (stack_equal(tables.stacks[v - 1], h, f, n)) return v;
    }
}

static void intern_put_unlocked(intern_table *t, uint64_t h, uint32_t v)
{
    uint32_t i = (uint32_t)h & t->mask;
    while (atomic_load_explicit(&t->slot[i], memory_order_relaxed)) i = (i + 1) & t->mask;
    VG_PUBLISH(&tables.itab);
    atomic_store_explicit(&t->slot[i], v, memory_order_release);
}

/* Slow path: add the stack under the intern lock. Old tables are never
 * unmapped (readers may still be probing them); a reader that misses in an
 * old table comes here and finds the stack in the current one. */
static int intern_add(uint64_t h, const uintptr_t *f, int n, uint32_t *id)
{
    int rc = -1;
    table_lock(&tables.intern_lock);
    intern_table *t = atomic_load(&tables.itab);
    uint32_t v = intern_find(t, h, f, n);
    if (v) { *id = v - 1; rc = 0; goto done; }

    uint32_t nst = atomic_load(&tables.nstacks);
    size_t need = sizeof(stack_rec) + (size_t)n * sizeof(uintptr_t);
    if (nst >= tables.max_stacks || tables.arena_used + need > tables.arena_reserve) goto done;
    if ((uint64_t)(nst + 1) * 2 > (uint64_t)t->mask + 1) { /* keep load <= 1/2 */
        intern_table *nt = intern_table_new((t->mask + 1) * 2);
        if (!nt) goto done;
        for (uint32_t i = 0; i < nst; i++) intern_put_unlocked(nt, tables.stacks[i]->hash, i + 1);
        atomic_store(&tables.itab, nt);
        t = nt;
    }
    stack_rec *s = (stack_rec *)(tables.arena + tables.arena_used);
    tables.arena_used += need;
    s->hash = h;
    s->nframes = (uint32_t)n;
    memcpy(s->frames, f, (size_t)n * sizeof(uintptr_t));
    tables.stacks[nst] = s;
    for (unsigned i = 0; i < NSLOTS; i++) VG_ATOMIC_RANGE(&tables.rows[(size_t)i * tables.max_stacks + nst], sizeof(tracker_row));
    atomic_store(&tables.nstacks, nst + 1);
    intern_put_unlocked(t, h, nst + 1);
    *id = nst;
    rc = 0;
done:
    table_unlock(&tables.intern_lock);
    return rc;
}

/* Fast path: a known stack is found without any lock. */
static int intern(const uintptr_t *f, int n, uint32_t *id)
{
    uint64_t h = hash_frames(f, n);
    uint32_t v = intern_find(atomic_load_explicit(&tables.itab, memory_order_acquire), h, f, n);
    if (v) { *id = v - 1; return 0; }
    return intern_add(h, f, n, id);
}

const uintptr_t *tracker_stack_frames(uint32_t stack_id, int *nframes)
{
    if (stack_id >= atomic_load(&tables.nstacks)) { *nframes = 0; return NULL; }
    *nframes = (int)tables.stacks[stack_id]->nframes;
    return tables.stacks[stack_id]->frames;
}

/* ---- for the tracker's own tests (tracker_internal.h) ---- */

int tracker_debug_intern_stack(const uintptr_t *frames, int nframes, uint32_t *stack_id)
{
    tracker_init();
    if (!atomic_load(&tables.ready) || nframes < 1 || nframes > TRACKER_MAX_FRAMES) return -1;
    return intern(frames, nframes, stack_id);
}

/* row_move for a thread without a row of its own yet, for one that has
 * none (slot 0, atomic adds) and for a free nested in a hook. */
static __attribute__((noinline)) void row_move_slow(uint32_t id, uint64_t bytes, uint64_t blocks, int fresh, int nested)
{
    if (!nested && t_slot == 0) slot_claim();
    if (!nested && tracker_rows) tracker_row_add_all(tracker_rows + id, bytes, blocks, fresh, 0);
    else tracker_row_add_all(&tables.rows[id], bytes, blocks, fresh, 1);
}

/* Move stack id's live totals by bytes and blocks (a free passes -size and
 * -1: the values wrap), and for a new block (fresh) its cumulative totals
 * too, in this thread's row; in slot 0 when nested (a free inside a hook)
 * or when the thread has no row of its own. */
static inline __attribute__((always_inline)) void row_move(uint32_t id, uint64_t bytes, uint64_t blocks, int fresh, int nested)
{
    tracker_row *rows = tracker_rows;
    if (__builtin_expect(!rows || nested, 0)) row_move_slow(id, bytes, blocks, fresh, nested);
    else tracker_row_add_all(rows + id, bytes, blocks, fresh, 0);
}

/* Live and cumulative totals of stack id, summed over the slots, into
 * row (all fields but stack_id). The rows are read a moment apart while
 * threads run: a block counted in one slot and freed in another may be
 * seen freed only, so a sum below zero is shown as zero. */
static void stack_sum(uint32_t id, tracker_stack_stat *row)
{
    memset(row, 0, sizeof *row);
    for (unsigned i = 0; i < NSLOTS; i++) {
        const tracker_row *st = &tables.rows[(size_t)i * tables.max_stacks + id];
        row->size += atomic_load_explicit(&st->size, memory_order_relaxed);
        row->count += atomic_load_explicit(&st->count, memory_order_relaxed);
        row->alloc_bytes += atomic_load_explicit(&st->alloc_bytes, memory_order_relaxed);
        row->alloc_count += atomic_load_explicit(&st->alloc_count, memory_order_relaxed);
    }
    if ((int64_t)row->size < 0 || (int64_t)row->count < 0) row->size = row->count = 0;
}

/* ------------------------------------------------------------------ */
/* Blocks without a header: sharded open addressing, linear probing    */
/* ------------------------------------------------------------------ */

/* Blocks are 8-aligned at least (jemalloc's and tcmalloc's smallest
 * classes are 8 bytes), so the key is the address >> 3: 44 bits cover the
 * 47-bit user address space. */
static inline uint64_t block_key(const void *p) { return (uint64_t)(uintptr_t)p >> 3; }
static inline uintptr_t block_addr(uint64_t k) { return (uintptr_t)(k << 3); }
/* key_lo and the low 12 bits of hi_stack, as one 64-bit load (x86-64 is little-endian). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "slot_key reads key_lo and hi_stack as one word");
static inline uint64_t slot_key(const block_slot *s)
{
    uint64_t v;
    memcpy(&v, s, sizeof v);
    return v & ((1ULL << 44) - 1);
}
static uint32_t slot_stack(const block_slot *s) { return s->hi_stack >> 12; }
/* Home slot of key k in its shard: Fibonacci hashing. */
static inline uint32_t key_hash(uint64_t k) { return (uint32_t)((k * 0x9e3779b97f4a7c15ULL) >> 27); }

/* The shard follows the 64 MiB region of the address (glibc gives each
 * thread its own arena, in 64 MiB-aligned heaps), spread over 4 shards by
 * page: the blocks of one thread mostly land in shards that stay in its
 * core's cache, and threads sharing an arena still share 4 locks, not 1.
 * Only frees on another thread than the allocation cross over. */
static inline shard *shard_of(uint64_t k)
{
    uint64_t region = k >> 23; /* address >> 26 */
    unsigned base = (unsigned)((region * 0x9e3779b97f4a7c15ULL) >> 59);
    return &tables.shards[(base + (unsigned)((k >> 9) & 3)) & (NSHARDS - 1)];
}

/* Keep the exact size of a >= 4 GiB block. Returns -1 when all BIG_MAX
 * entries are taken (the caller then counts a lost record). */
static int big_put(uintptr_t addr, uint64_t size)
{
    int rc = -1;
    table_lock(&tables.big_lock);
    for (int i = 0; i < BIG_MAX && rc; i++)
        if (!tables.big[i].addr) { tables.big[i].addr = addr; tables.big[i].size = size; rc = 0; }
    table_unlock(&tables.big_lock);
    return rc;
}

/* Exact size of a >= 4 GiB block; take: also free its entry. */
static uint64_t big_get(uintptr_t addr, int take)
{
    uint64_t size = 0;
    table_lock(&tables.big_lock);
    for (int i = 0; i < BIG_MAX; i++)
        if (tables.big[i].addr == addr) {
            size = tables.big[i].size;
            if (take) tables.big[i].addr = 0;
            break;
        }
    table_unlock(&tables.big_lock);
    return size;
}

/* Index of key in sh, or -1. */
static inline int64_t shard_find_unlocked(shard *sh, uint64_t k)
{
    if (!sh->slots) return -1;
    for (uint32_t i = key_hash(k) & sh->mask;; i = (i + 1) & sh->mask) {
        uint64_t sk = slot_key(&sh->slots[i]);
        if (sk == k) return i;
        if (sk == 0) return -1;
    }
}

static int shard_grow_unlocked(shard *sh)
{
    uint32_t nslots = sh->slots ? (sh->mask + 1) * 2 : SHARD_MIN;
    block_slot *ns = bk_map((size_t)nslots * sizeof(block_slot), 0);
    if (!ns) return -1;
    uint32_t nmask = nslots - 1;
    if (sh->slots) {
        for (uint32_t i = 0; i <= sh->mask; i++) {
            uint64_t k = slot_key(&sh->slots[i]);
            if (!k) continue;
            uint32_t j = key_hash(k) & nmask;
            while (slot_key(&ns[j])) j = (j + 1) & nmask;
            ns[j] = sh->slots[i];
        }
        munmap(sh->slots, (size_t)(sh->mask + 1) * sizeof(block_slot));
        atomic_fetch_sub(&tables.table_bytes, (uint64_t)(sh->mask + 1) * sizeof(block_slot));
    }
    atomic_fetch_add(&tables.table_bytes, (uint64_t)nslots * sizeof(block_slot));
    sh->slots = ns;
    sh->mask = nmask;
    return 0;
}

/* Delete slot i, shifting later members of its probe run back
 * (no tombstones, so probes stay short). */
static inline __attribute__((always_inline)) void shard_delete_unlocked(shard *sh, uint32_t i)
{
    block_slot *slots = sh->slots;
    uint32_t mask = sh->mask, j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint64_t k = slot_key(&slots[j]);
        if (!k) break;
        /* Leave slot j where it is if its home lies cyclically in (i, j]:
         * its distance from home is less than its distance from i. */
        if (((j - key_hash(k)) & mask) < ((j - i) & mask)) continue;
        slots[i] = slots[j];
        i = j;
    }
    memset(&slots[i], 0, sizeof(block_slot));
    sh->count--;
}

/* Find block p: returns 1 with its exact size and stack id, 0 if absent.
 * take: also remove it. */
static inline __attribute__((always_inline)) int blocks_find(const void *p, int take, uint64_t *size, uint32_t *id)
{
    uint64_t k = block_key(p);
    shard *sh = shard_of(k);
    int found = 0;
    shard_lock(sh);
    int64_t i = shard_find_unlocked(sh, k);
    if (i >= 0) {
        block_slot *s = &sh->slots[i];
        *size = s->size;
        *id = slot_stack(s);
        if (*size == SIZE_BIG) *size = big_get((uintptr_t)p, take); /* lock order: shard, then big */
        if (take) shard_delete_unlocked(sh, (uint32_t)i);
        found = 1;
    }
    shard_unlock(sh);
    return found;
}

/* Insert p. A stale record at the same address (a free we never saw) is
 * replaced and its totals taken back. Returns -1 when out of bookkeeping. */
static int blocks_put(const void *p, uint64_t size, uint32_t id)
{
    uint64_t k = block_key(p);
    if (((uintptr_t)p & 7) || k >> 44) return -1; /* not a heap address */
    shard *sh = shard_of(k);
    shard_lock(sh);
    /* One probe finds either the key (a stale record: rare) or the empty
     * slot that ends its run, where the new record goes. */
    int64_t j = -1;
    if (sh->slots) {
        uint32_t i = key_hash(k) & sh->mask;
        for (uint64_t sk; (sk = slot_key(&sh->slots[i])) != 0 && sk != k;) i = (i + 1) & sh->mask;
        if (slot_key(&sh->slots[i]) == k) {
            block_slot *s = &sh->slots[i];
            uint64_t old_size = s->size;
            uint32_t old_id = slot_stack(s);
            shard_delete_unlocked(sh, i);
            if (old_size == SIZE_BIG) old_size = big_get((uintptr_t)p, 1);
            row_move(old_id, -old_size, -(uint64_t)1, 0, 1);
        } else {
            j = i;
        }
    }
    /* Keep the load <= 3/4; when growth fails, a table < 15/16 full still takes it. */
    if (!sh->slots || (uint64_t)(sh->count + 1) * 4 > (uint64_t)(sh->mask + 1) * 3) {
        if (shard_grow_unlocked(sh) != 0) {
            if (!sh->slots || (uint64_t)(sh->count + 1) * 16 > (uint64_t)(sh->mask + 1) * 15) {
                shard_unlock(sh);
                return -1;
            }
        } else {
            j = -1; /* a new table: probe again */
        }
    }
    if (j < 0) {
        j = key_hash(k) & sh->mask;
        while (slot_key(&sh->slots[j])) j = (j + 1) & sh->mask;
    }
    if (size >= SIZE_BIG && big_put((uintptr_t)p, size) != 0) { /* lock order: shard, then big */
        shard_unlock(sh);
        return -1;
    }
    sh->slots[j].key_lo = (uint32_t)k;
    sh->slots[j].hi_stack = (uint32_t)(k >> 32) | (id << 12);
    sh->slots[j].size = size >= SIZE_BIG ? SIZE_BIG : (uint32_t)size;
    sh->count++;
    shard_unlock(sh);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Hot path, called by the hooks                                        */
/* ------------------------------------------------------------------ */

/* The stack id of a walk the memo could not answer (walk, intern,
 * remember), or -1. Out of line, so the common path keeps its registers. */
static __attribute__((noinline)) int64_t walk_and_intern(void *frame)
{
    int e = errno; /* an mmap for the intern table may fail */
    uintptr_t frames[TRACKER_MAX_FRAMES];
    uint32_t id;
    /* A walk may open and read files (a module's CFI, /proc/self/maps):
     * cancellation points, where a cancelled thread would die holding the
     * unwinder's lock. */
    int cancel;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
    int n = tracker_stackwalk(frame, frames, TRACKER_MAX_FRAMES);
    int rc = intern(frames, n, &id);
    if (rc == 0) tracker_stackwalk_learn(id);
    pthread_setcancelstate(cancel, NULL);
    errno = e;
    return rc == 0 ? (int64_t)id : -1;
}

void tracker_count_lost(void)
{
    atomic_fetch_add_explicit(&tables.lost, 1, memory_order_relaxed);
}

/* tracker_record_alloc's path when the fast one cannot answer: no row of
 * this thread's own yet (its first block, or slot 0), the tracker off or
 * not set up, a size a header cannot hold, a stack the memo does not know. */
uint32_t tracker_record_alloc_slow(size_t size, void *frame)
{
    if (!atomic_load_explicit(&tracker_enabled, memory_order_relaxed) ||
        !atomic_load_explicit(&tables.ready, memory_order_acquire))
        return TRACKER_UNTRACKED;
    if (size > TRACKER_SIZE_MAX) goto lost;
    int64_t known = tracker_stackwalk_known(frame);
    if (known < 0 && (known = walk_and_intern(frame)) < 0) goto lost;
    uint32_t id = (uint32_t)known;
    row_move(id, size, 1, 1, 0);
    return id;
lost:
    tracker_count_lost();
    return TRACKER_UNTRACKED;
}

void tracker_record_free_slow(uint32_t id, size_t size, int nested)
{
    if (id < tables.max_stacks) row_move(id, -(uint64_t)size, -(uint64_t)1, 0, nested);
}

int tracker_table_put(const void *ptr, size_t size, uint32_t id)
{
    if (!atomic_load_explicit(&tables.ready, memory_order_acquire)) return -1;
    int e = errno; /* the table's growth may fail an mmap */
    int rc = blocks_put(ptr, size, id);
    errno = e;
    return rc;
}

int tracker_table_take(const void *ptr, size_t *size, uint32_t *id)
{
    uint64_t sz;
    if (!ptr || !atomic_load_explicit(&tables.ready, memory_order_acquire) || !blocks_find(ptr, 1, &sz, id)) return 0;
    *size = (size_t)sz;
    return 1;
}

int tracker_table_find(const void *ptr, size_t *size, uint32_t *id)
{
    uint64_t sz;
    if (!ptr || !atomic_load_explicit(&tables.ready, memory_order_acquire) || !blocks_find(ptr, 0, &sz, id)) return 0;
    *size = (size_t)sz;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Totals and snapshots                                                 */
/* ------------------------------------------------------------------ */

/* One pass over the first n stacks: totals into *out and, when rows is not
 * NULL, one row per stack with live blocks (*nrows of them; all_stacks:
 * also those with none live that allocated since start). Snapshot and
 * totals share it, so a snapshot's totals are the sum of its own rows. */
static void collect(uint32_t n, int all_stacks, tracker_stack_stat *rows, size_t *nrows,
                    tracker_totals *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < n; i++) {
        tracker_stack_stat row;
        stack_sum(i, &row);
        row.stack_id = i;
        out->live_bytes += row.size;
        out->live_blocks += row.count;
        if (rows && (row.count || (all_stacks && row.alloc_count))) rows[(*nrows)++] = row;
    }
    out->stacks = n;
    out->lost_records = atomic_load(&tables.lost);
    /* Recorded blocks not in the address table carry a header (hooks.c). */
    uint64_t in_table = 0;
    for (unsigned i = 0; i < NSHARDS; i++) in_table += __atomic_load_n(&tables.shards[i].count, __ATOMIC_RELAXED);
    out->heap_bookkeeping_bytes = out->live_blocks > in_table ? (out->live_blocks - in_table) * TRACKER_HEADER_BYTES : 0;
    table_lock(&tables.intern_lock);
    size_t arena = tables.arena_used;
    table_unlock(&tables.intern_lock);
    out->bookkeeping_bytes = atomic_load(&tables.table_bytes) + arena + tracker_cfi_bytes() + tracker_ialloc_bytes() +
                             (uint64_t)n * (sizeof(stack_rec *) + NSLOTS * sizeof(tracker_row)) +
                             out->heap_bookkeeping_bytes;
}

void tracker_get_totals(tracker_totals *out)
{
    collect(atomic_load(&tables.ready) ? atomic_load(&tables.nstacks) : 0, 0, NULL, NULL, out);
}

tracker_snapshot *tracker_snapshot_take(void)
{
    return tracker_snapshot_take_flags(0);
}

tracker_snapshot *tracker_snapshot_take_flags(unsigned flags)
{
    /* The snapshot's own memory is not tracked: like tracemalloc, the
     * report never shows the tracker's working memory. */
    int g = tracker_internal_enter();
    tracker_stackwalk_refresh(); /* libraries loaded since the last snapshot */
    double t0 = tracker_now();
    tracker_snapshot *s = calloc(1, sizeof *s);
    uint32_t n = atomic_load(&tables.ready) ? atomic_load(&tables.nstacks) : 0;
    if (!s) goto done;
    s->stats = malloc((n ? n : 1) * sizeof *s->stats);
    if (!s->stats) { free(s); s = NULL; goto done; }
    collect(n, (flags & TRACKER_SNAP_ALL_STACKS) != 0, s->stats, &s->nstats, &s->totals);
    s->taken_at = tracker_now();
    s->take_seconds = s->taken_at - t0;
done:
    tracker_internal_leave(g);
    return s;
}

void tracker_snapshot_free(tracker_snapshot *snap)
{
    if (!snap) return;
    int g = tracker_internal_enter();
    free(snap->stats);
    free(snap);
    tracker_internal_leave(g);
}

/* ------------------------------------------------------------------ */
/* For the retention scan (retention.c; added by the retention helper)  */
/* ------------------------------------------------------------------ */

/* Hold (1) or release (0) every lock of the address table: the retention
 * scan holds them across its raw clone, so its child (where no other
 * thread runs) finds the table whole and releases them itself. Order as
 * in fork_prepare: shards by index, then big. */
void tracker_table_lock_all(int lock)
{
    if (lock) {
        for (unsigned i = 0; i < NSHARDS; i++) shard_lock(&tables.shards[i]);
        tracker_lock(&tables.big_lock, LOCK_BIG);
    } else {
        tracker_unlock(&tables.big_lock, LOCK_BIG);
        for (unsigned i = NSHARDS; i-- > 0;) shard_unlock(&tables.shards[i]);
    }
}

/* Call fn for every recorded block of the address table, without taking
 * its locks: for a caller that holds them (tracker_table_lock_all) or a
 * child where no other thread runs. fn must not allocate. Returns the
 * number of blocks. */
size_t tracker_table_each(void (*fn)(void *arg, uintptr_t addr, uint64_t size, uint32_t id), void *arg)
{
    size_t n = 0;
    for (unsigned i = 0; i < NSHARDS; i++) {
        const shard *sh = &tables.shards[i];
        if (!sh->slots) continue;
        for (uint32_t j = 0; j <= sh->mask; j++) {
            uint64_t k = slot_key(&sh->slots[j]);
            if (!k) continue;
            uintptr_t addr = block_addr(k);
            uint64_t size = sh->slots[j].size;
            if (size == SIZE_BIG) {
                size = 0;
                for (int b = 0; b < BIG_MAX; b++)
                    if (tables.big[b].addr == addr) size = tables.big[b].size;
            }
            fn(arg, addr, size, slot_stack(&sh->slots[j]));
            n++;
        }
    }
    return n;
}
