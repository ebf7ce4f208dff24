/* tracker.c - the tracker's tables: interned call stacks, live totals per stack, live blocks by address. */

#include "tracker.h"
#include "tracker_internal.h"
#include "vg_annotate.h"
#include "cfi.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
 *  - Live blocks live in a sharded open-addressing table keyed by address:
 *    12 bytes a slot (address >> 4, 20-bit stack id, 32-bit size). The shard
 *    follows the address's 64 MiB region (glibc's per-thread arenas), so a
 *    thread mostly works in shards of its own; shard locks are spinlocks
 *    (one exchange to take, a plain store to release).
 *  - Each shard also keeps live bytes and count per stack id, updated under
 *    the shard's lock with plain stores: no atomic read-modify-write. The
 *    rows are laid out [stack][shard]: a stack's 32 rows share one page. A
 *    snapshot sums the shards' rows: its cost follows the number of stacks
 *    (x 32 shards), never the number of blocks. The same row also counts
 *    bytes and blocks ever allocated (pprof's alloc_space/alloc_objects),
 *    two more plain stores in the cache line the live totals already hold.
 *  - All tables come from mmap, never from malloc: the tracker cannot
 *    recurse into the allocator it watches, and cannot be counted by it.
 *  - No lock is held while calling malloc/free, so a hook that runs
 *    inside the tracker (libdw's allocations at report time) cannot deadlock.
 * Cost (make bench, docs/samples/bench.md, 2 shared cores, 2026-12-01): a
 * malloc+free pair of a churn loop with 4096 live blocks at depth 6 costs
 * ~130 ns, 3.5-3.9x plain glibc's, with or without frame pointers
 * (heaptrack ~24x, valgrind ~50-85x); sqlite3 runs 1.44x and perl 1.67x
 * slower (heaptrack 6.3x and 7.6x). The memo answers 99.97% of their walks;
 * the rest is this file's table work (two shard locks, two probes, the
 * delete, the totals).
 */

/* ------------------------------------------------------------------ */
/* Limits                                                               */
/* ------------------------------------------------------------------ */

#define STACK_ID_BITS   20
#define MAX_STACKS      (1u << STACK_ID_BITS)   /* ids fit a block slot */
#define ARENA_RESERVE   (256u << 20)            /* virtual, touched as used */
#define INTERN_MIN      4096u                   /* first intern table, slots */
#define NSHARDS         32u                     /* block table shards */
#define SHARD_MIN       256u                    /* first shard table, slots */
#define BIG_MAX         64                      /* live blocks of >= 4 GiB */
#define SIZE_BIG        UINT32_MAX              /* slot size: look in big[] */

typedef struct stack_rec {
    uint64_t hash;        /* hash of frames[] */
    uint32_t nframes;     /* 1..TRACKER_MAX_FRAMES */
    uint32_t unused;
    uintptr_t frames[];   /* return addresses, innermost first */
} stack_rec;

/* Written only under the owning shard's lock; read lock-free by snapshots
 * (relaxed atomics: whole 64-bit values, never torn). */
typedef struct site_totals {
    _Atomic uint64_t size;        /* live bytes from this stack, in this shard */
    _Atomic uint64_t count;       /* live blocks from this stack, in this shard */
    _Atomic uint64_t alloc_size;  /* bytes ever allocated from it (since start), never decreases */
    _Atomic uint64_t alloc_count; /* blocks ever allocated from it (since start), never decreases */
} site_totals;

typedef struct intern_table {
    uint32_t mask;               /* slots - 1, slots a power of two */
    _Atomic uint32_t slot[];     /* stack id + 1, or 0 when empty */
} intern_table;

typedef struct block_slot {
    uint32_t key_lo;   /* low 32 bits of address >> 4; 0/0 = empty */
    uint32_t hi_stack; /* bits 0-11: high bits of address >> 4; 12-31: stack id */
    uint32_t size;     /* requested size, SIZE_BIG when >= 4 GiB */
} block_slot;

typedef struct shard {
    _Alignas(64) _Atomic int lock; /* spinlock (shard_lock): one shard per cache line */
    block_slot *slots; /* mmap'ed, mask + 1 slots, NULL until first use */
    uint32_t mask;     /* slots - 1 */
    uint32_t count;    /* occupied slots */
    site_totals *sites;/* this shard's totals of stack id at sites[id * NSHARDS] */
} shard;

typedef struct big_block {
    uintptr_t addr;    /* 0 when the entry is free */
    uint64_t size;     /* exact size of a block of >= 4 GiB */
} big_block;

static struct {
    _Atomic int ready;                 /* tables mapped by tracker_init */
    _Atomic int enabled;               /* record new allocations */
    pthread_mutex_t init_lock;         /* serializes tracker_init */

    /* interned stacks */
    pthread_mutex_t intern_lock;       /* held to add a stack */
    _Atomic(intern_table *) itab;      /* current table; old ones are kept */
    stack_rec **stacks;                /* by id; MAX_STACKS reserved */
    _Atomic uint32_t nstacks;          /* ids in use: 0..nstacks-1 */
    char *arena;                       /* stack_rec storage, ARENA_RESERVE */
    size_t arena_used;                 /* bytes, under intern_lock */

    /* live blocks */
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

/* The recursion guard: set while the thread is inside the tracker. */
TRACKER_TLS int tracker_in_tracker;

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

double tracker_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
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
    if (atomic_exchange_explicit(&sh->lock, 1, memory_order_acquire)) shard_lock_wait(sh);
    VG_LOCK_ACQUIRED(&sh->lock);
}

static inline __attribute__((always_inline)) void shard_unlock(shard *sh)
{
    VG_LOCK_RELEASED(&sh->lock);
    atomic_store_explicit(&sh->lock, 0, memory_order_release);
}

/* One multiplication per frame, then a full mix for the low bits the
 * intern table indexes by (the hot path hashes every new walk). */
static uint64_t hash_frames(const uintptr_t *frames, int n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    for (int i = 0; i < n; i++) h = (h ^ frames[i]) * 0xff51afd7ed558ccdULL;
    h = mix64(h);
    return h ? h : 1;
}
/* ------------------------------------------------------------------ */
/* Init and switches                                                    */
/* ------------------------------------------------------------------ */

/* fork(): a lock held by another thread at that moment would stay locked
 * forever in the child. The prepare handler takes every lock of the
 * tracker, in the one order any code path nests them, and both sides
 * release them in reverse:
 *   1. the report lock (baseline.c): held across a whole report
 *   2. the unwinder's lock (cfi.c, through stackwalk.c): taken inside a
 *      report or by a hook's rule-cache miss, nothing nested in it
 *   3. the symbolizer's cache lock (symbolize.c): taken inside a report
 *   4. intern_lock, 5. the 32 shard locks in index order, 6. big_lock
 *      (shard then big in blocks_put/find; intern is never held with them)
 * Not taken: init_lock, held only inside tracker_init, which
 * registers these handlers itself (glibc's atfork lock is held while the
 * handlers run, so taking init_lock here could deadlock with it). */
static void fork_prepare(void)
{
    tracker_baseline_fork_lock();
    tracker_stackwalk_fork_lock();
    tracker_symbolize_fork_lock();
    pthread_mutex_lock(&tables.intern_lock);
    for (unsigned i = 0; i < NSHARDS; i++) shard_lock(&tables.shards[i]);
    pthread_mutex_lock(&tables.big_lock);
}

static void fork_release(void)
{
    pthread_mutex_unlock(&tables.big_lock);
    for (unsigned i = NSHARDS; i-- > 0;) shard_unlock(&tables.shards[i]);
    pthread_mutex_unlock(&tables.intern_lock);
    tracker_symbolize_fork_unlock();
    tracker_stackwalk_fork_unlock();
    tracker_baseline_fork_unlock();
}

static intern_table *intern_table_new(uint32_t slots)
{
    size_t bytes = sizeof(intern_table) + (size_t)slots * sizeof(uint32_t);
    intern_table *t = bk_map(bytes, 0);
    if (!t) return NULL;
    t->mask = slots - 1;
    atomic_fetch_add(&tables.table_bytes, bytes);
    return t;
}

void tracker_init(void)
{
    if (atomic_load(&tables.ready)) return;
    pthread_mutex_lock(&tables.init_lock);
    if (!atomic_load(&tables.ready)) {
        /* One array, [stack id][shard]: a stack's 32 rows share 16 cache
         * lines and one page (fewer TLB entries in the hot path, one
         * stride for the snapshot's sum). Reserved, touched as used. */
        site_totals *sites = bk_map((size_t)MAX_STACKS * NSHARDS * sizeof(site_totals), 1);
        int sites_ok = sites != NULL;
        for (unsigned i = 0; i < NSHARDS; i++) {
            tables.shards[i].sites = sites ? sites + i : NULL;
            VG_LOCK_CREATE(&tables.shards[i].lock);
        }
        tables.stacks = bk_map(MAX_STACKS * sizeof(stack_rec *), 1);
        tables.arena = bk_map(ARENA_RESERVE, 1);
        intern_table *t = intern_table_new(INTERN_MIN);
        if (tables.stacks && sites_ok && tables.arena && t) {
            atomic_store(&tables.itab, t);
            pthread_atfork(fork_prepare, fork_release, fork_release);
            tracker_stackwalk_init();
            if (!getenv("TRACKER_OFF")) atomic_store(&tables.enabled, 1);
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
    int g = tracker_guard_enter();
    tracker_init();
    if (g) tracker_guard_leave();
}

void tracker_set_enabled(int on)
{
    atomic_store(&tables.enabled, on ? 1 : 0);
}

int tracker_is_active(void)
{
    return tracker_hooks_linked() && atomic_load(&tables.ready) && atomic_load(&tables.enabled);
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
    pthread_mutex_lock(&tables.intern_lock);
    intern_table *t = atomic_load(&tables.itab);
    uint32_t v = intern_find(t, h, f, n);
    if (v) { *id = v - 1; rc = 0; goto done; }

    uint32_t nst = atomic_load(&tables.nstacks);
    size_t need = sizeof(stack_rec) + (size_t)n * sizeof(uintptr_t);
    if (nst >= MAX_STACKS || tables.arena_used + need > ARENA_RESERVE) goto done;
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
    atomic_store(&tables.nstacks, nst + 1);
    intern_put_unlocked(t, h, nst + 1);
    *id = nst;
    rc = 0;
done:
    pthread_mutex_unlock(&tables.intern_lock);
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

/* Add (sign 1) or take back (sign -1) one block of size from stack id in
 * shard sh. Caller holds sh->lock: a load and a store, no locked instruction. */
static inline __attribute__((always_inline)) void site_move_unlocked(shard *sh, uint32_t id, uint64_t size, int sign)
{
    site_totals *st = &sh->sites[(size_t)id * NSHARDS];
    uint64_t sz = atomic_load_explicit(&st->size, memory_order_relaxed);
    uint64_t ct = atomic_load_explicit(&st->count, memory_order_relaxed);
    atomic_store_explicit(&st->size, sign > 0 ? sz + size : sz - size, memory_order_relaxed);
    atomic_store_explicit(&st->count, sign > 0 ? ct + 1 : ct - 1, memory_order_relaxed);
}

/* Count one new block of size from stack id in the cumulative totals of
 * shard sh (not for a block put back after a failed realloc). Caller holds
 * sh->lock. */
static void site_count_alloc_unlocked(shard *sh, uint32_t id, uint64_t size)
{
    site_totals *st = &sh->sites[(size_t)id * NSHARDS];
    uint64_t sz = atomic_load_explicit(&st->alloc_size, memory_order_relaxed);
    uint64_t ct = atomic_load_explicit(&st->alloc_count, memory_order_relaxed);
    atomic_store_explicit(&st->alloc_size, sz + size, memory_order_relaxed);
    atomic_store_explicit(&st->alloc_count, ct + 1, memory_order_relaxed);
}

/* Live and cumulative totals of stack id, summed over the shards, into
 * row (all fields but stack_id). */
static void site_sum(uint32_t id, tracker_site_stat *row)
{
    memset(row, 0, sizeof *row);
    for (unsigned i = 0; i < NSHARDS; i++) {
        const site_totals *st = &tables.shards[i].sites[(size_t)id * NSHARDS];
        row->size += atomic_load_explicit(&st->size, memory_order_relaxed);
        row->count += atomic_load_explicit(&st->count, memory_order_relaxed);
        row->alloc_bytes += atomic_load_explicit(&st->alloc_size, memory_order_relaxed);
        row->alloc_count += atomic_load_explicit(&st->alloc_count, memory_order_relaxed);
    }
}

/* ------------------------------------------------------------------ */
/* Live blocks: sharded open addressing, linear probing                 */
/* ------------------------------------------------------------------ */

static inline uint64_t block_key(const void *p) { return (uint64_t)(uintptr_t)p >> 4; }
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
    uint64_t region = k >> 22; /* address >> 26 */
    unsigned base = (unsigned)((region * 0x9e3779b97f4a7c15ULL) >> 59);
    return &tables.shards[(base + (unsigned)((k >> 8) & 3)) & (NSHARDS - 1)];
}

/* Keep the exact size of a >= 4 GiB block. Returns -1 when all BIG_MAX
 * entries are taken (the caller then counts a lost record). */
static int big_put(uintptr_t addr, uint64_t size)
{
    int rc = -1;
    pthread_mutex_lock(&tables.big_lock);
    for (int i = 0; i < BIG_MAX && rc; i++)
        if (!tables.big[i].addr) { tables.big[i].addr = addr; tables.big[i].size = size; rc = 0; }
    pthread_mutex_unlock(&tables.big_lock);
    return rc;
}

/* Exact size of a >= 4 GiB block; take: also free its entry. */
static uint64_t big_get(uintptr_t addr, int take)
{
    uint64_t size = 0;
    pthread_mutex_lock(&tables.big_lock);
    for (int i = 0; i < BIG_MAX; i++)
        if (tables.big[i].addr == addr) {
            size = tables.big[i].size;
            if (take) tables.big[i].addr = 0;
            break;
        }
    pthread_mutex_unlock(&tables.big_lock);
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
 * take: also remove it and take its totals back from its site. */
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
        if (take) {
            shard_delete_unlocked(sh, (uint32_t)i);
            site_move_unlocked(sh, *id, *size, -1);
        }
        found = 1;
    }
    shard_unlock(sh);
    return found;
}

/* Insert p. A stale record at the same address (a free we never saw) is
 * replaced and its totals taken back. fresh: a new allocation, also counted
 * in the cumulative totals (0: a block put back). Returns -1 when out of
 * bookkeeping. */
static inline __attribute__((always_inline)) int blocks_put(const void *p, uint64_t size, uint32_t id, int fresh)
{
    uint64_t k = block_key(p);
    if (((uintptr_t)p & 15) || k >> 44) return -1; /* not a glibc heap address */
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
            site_move_unlocked(sh, old_id, old_size, -1);
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
    site_move_unlocked(sh, id, size, 1);
    if (fresh) site_count_alloc_unlocked(sh, id, size);
    shard_unlock(sh);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Hot path, called by the hooks                                        */
/* ------------------------------------------------------------------ */

/* The stack of a walk the memo could not answer: walk, intern, remember.
 * Out of line, so the common path keeps its registers. */
static __attribute__((noinline)) int walk_and_intern(void *frame, uint32_t *id)
{
    uintptr_t frames[TRACKER_MAX_FRAMES];
    int n = tracker_stackwalk(frame, frames, TRACKER_MAX_FRAMES);
    if (intern(frames, n, id) != 0) return -1;
    tracker_stackwalk_learn(*id);
    return 0;
}

void tracker_record_alloc(void *ptr, size_t size, void *frame)
{
    if (!atomic_load_explicit(&tables.enabled, memory_order_relaxed) ||
        !atomic_load_explicit(&tables.ready, memory_order_acquire))
        return;
    /* The block's home slot is a likely cache miss: start it now, so it
     * arrives while the memo check (or the walk) runs. */
    shard *sh = shard_of(block_key(ptr));
    if (sh->slots) __builtin_prefetch(&sh->slots[key_hash(block_key(ptr)) & sh->mask], 1);
    uint32_t id;
    if ((!tracker_stackwalk_known(frame, &id) && walk_and_intern(frame, &id) != 0) || blocks_put(ptr, size, id, 1) != 0)
        atomic_fetch_add_explicit(&tables.lost, 1, memory_order_relaxed);
}

int tracker_record_free(void *ptr, size_t *size, uint32_t *stack_id)
{
    if (!ptr || !atomic_load_explicit(&tables.ready, memory_order_acquire)) return 0;
    /* Two misses a free cannot avoid, started together: the block's home
     * slot here, and the chunk header glibc's free reads next. */
    shard *sh = shard_of(block_key(ptr));
    if (sh->slots) __builtin_prefetch(&sh->slots[key_hash(block_key(ptr)) & sh->mask]);
    __builtin_prefetch((const char *)ptr - sizeof(size_t));
    uint64_t sz;
    uint32_t id;
    if (!blocks_find(ptr, 1, &sz, &id)) return 0;
    if (size) *size = (size_t)sz;
    if (stack_id) *stack_id = id;
    return 1;
}

void tracker_record_restore(void *ptr, size_t size, uint32_t stack_id)
{
    if (blocks_put(ptr, size, stack_id, 0) != 0)
        atomic_fetch_add_explicit(&tables.lost, 1, memory_order_relaxed);
}

int tracker_lookup(const void *ptr, size_t *size, uint32_t *stack_id)
{
    uint64_t sz;
    uint32_t id;
    if (!ptr || !atomic_load(&tables.ready) || !blocks_find(ptr, 0, &sz, &id)) return 0;
    if (size) *size = (size_t)sz;
    if (stack_id) *stack_id = id;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Totals and snapshots                                                 */
/* ------------------------------------------------------------------ */

/* One pass over the first n stacks: totals into *out and, when rows is not
 * NULL, one row per stack with live blocks (*nrows of them; all_stacks:
 * also those with none live that allocated since start). Snapshot and
 * totals share it, so a snapshot's totals are the sum of its own rows. */
static void collect(uint32_t n, int all_stacks, tracker_site_stat *rows, size_t *nrows,
                    tracker_totals *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < n; i++) {
        tracker_site_stat row;
        site_sum(i, &row);
        row.stack_id = i;
        out->live_bytes += row.size;
        out->live_blocks += row.count;
        if (rows && (row.count || (all_stacks && row.alloc_count))) rows[(*nrows)++] = row;
    }
    out->stacks = n;
    out->lost_records = atomic_load(&tables.lost);
    pthread_mutex_lock(&tables.intern_lock);
    size_t arena = tables.arena_used;
    pthread_mutex_unlock(&tables.intern_lock);
    out->bookkeeping_bytes = atomic_load(&tables.table_bytes) + arena + tracker_cfi_bytes() +
                             (uint64_t)n * (sizeof(stack_rec *) + NSHARDS * sizeof(site_totals));
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
    int g = tracker_guard_enter();
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
    if (g) tracker_guard_leave();
    return s;
}

void tracker_snapshot_free(tracker_snapshot *snap)
{
    if (!snap) return;
    int g = tracker_guard_enter();
    free(snap->stats);
    free(snap);
    if (g) tracker_guard_leave();
}
