/* hooks.c - the malloc-family entry points: glibc's allocator with a 16-byte record in front of each block, and the tracker told. */
/* Long on purpose: every entry point is written out for its three modes
 * (glibc's with a header, another allocator's, stepped aside), side by
 * side, so a reader checks each call for each mode in one place. */

#include "tracker.h"
#include "tracker_internal.h"
#include "ialloc.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * A program that defines malloc & co. replaces glibc's for every library
 * in the process (libmicrohttpd's and libc's internal calls included), as
 * glibc documents under "Replacing malloc". glibc 2.36 has no
 * __malloc_hook, and -Wl,--wrap would miss other libraries' calls, so we
 * define the entry points and forward to the __libc_* functions glibc
 * exports: no dlsym bootstrap needed.
 *
 * The record of a block (its stack id and size) travels with it, in a
 * 16-byte header in front of what the caller gets, like heap allocators'
 * own chunk headers (and unlike heaptrack's or valgrind's side tables): a
 * free finds it in the cache line glibc's free reads next anyway, with no
 * table to lock, probe or update. Every block from malloc, calloc and
 * realloc has one, recorded or not (a signal handler's inside a hook,
 * those made while the tracker is off), so free never has to guess:
 *   word 0: a check word, the block's address keyed with a per-process
 *           random secret (never 0; zeroed by our free);
 *   word 1: size << 20 | stack id (TRACKER_UNTRACKED: not recorded).
 * glibc aligns the user pointer to 16 still, and the chunk grows by at
 * most 16 bytes. Blocks glibc aligns for the caller (memalign,
 * aligned_alloc, posix_memalign, valloc, pvalloc with an alignment above
 * 16) have no header: they go to the tracker's address table. A pointer
 * whose word 0 is not its check word is looked up there, and is otherwise
 * glibc's own (allocated before us or by __libc_malloc directly): handed
 * to glibc untouched. Reading 16 bytes in front of any glibc block is
 * safe: they are its chunk header. malloc_usable_size is ours too: it
 * answers what the caller may use, without our header. What the tracker's
 * own code allocates (libdw's caches, a report) comes from its own heap
 * (tracker/base/ialloc.h), tagged in the same 16 bytes, so glibc's
 * counters (mallinfo2) show only the program's blocks and our headers.
 *
 * Each hook: call the real allocator; if it succeeded and this thread is
 * not already inside the tracker, record.
 *
 * The real allocator is the program's, not always glibc's: the first call
 * looks up the next malloc family (dlsym RTLD_NEXT) and picks a mode once:
 *   glibc:   the next malloc is glibc's: the header scheme above;
 *   foreign: another allocator defines the whole family (jemalloc,
 *            tcmalloc, mimalloc): every call goes to it, and blocks carry
 *            no header (its malloc_usable_size, sized frees and stats must
 *            see its own pointers); records go to the address table;
 *   aside:   the program defines malloc itself, or a library defines only
 *            part of the family: forward every call to the next definition
 *            and record nothing (said once in the report file), since any
 *            record of ours could pair a block with the wrong free.
 * While the lookup runs (dlsym may allocate), calls are served from a
 * static bootstrap arena that free ignores.
 */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

int tracker_hooks_linked(void) { return 1; }

/* The hooks are the only symbols bin/libtracker.so exports (with
 * -fvisibility=hidden and tracker/preload/libtracker.map); a program's own
 * tracker_init or report can then never be bound to ours, nor ours to it. */
#define TRACKER_EXPORT __attribute__((visibility("default")))

atomic_int tracker_hooks_pending;
void (*tracker_hooks_deferred)(void);

/* The tables are set up by the first allocation, not by our constructor:
 * libraries initialized before us (libstdc++'s exception pool, a C++
 * static's constructor) allocate first, and their blocks must be counted
 * too (the totals at exit equal valgrind's "in use at exit"). */
static int hooks_ready;

static void hooks_init(void)
{
    int prev = tracker_internal_enter();
    tracker_init();
    tracker_internal_leave(prev);
    hooks_ready = 1;
}

/* ---- which allocator: the mode, looked up at the first call ---- */

enum { MODE_UNRESOLVED, MODE_RESOLVING, MODE_GLIBC, MODE_FOREIGN, MODE_ASIDE };
static _Atomic int hooks_mode;

/* The next definitions of the family (written once, before the mode is
 * published with a release store). */
static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    void *(*memalign)(size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*usable)(void *);
} next;
static char mode_why[256]; /* the mode in words, for the report file */
static int not_interposed; /* our malloc is not the program's: the library was dlopen'ed */

/* glibc's tcache key (glibc >= 2.34 writes it into the second word of a
 * block in its tcache): a block of ours freed twice has it where our
 * header's second word was, and is then handed to glibc as glibc's own
 * pointer so that glibc's double-free check fires as without us. 0:
 * unknown. */
static uint64_t tcache_key;

/* The bootstrap arena: 16 bytes of size in front of each block, never
 * reused (.bss: zeroed, and no memory until touched). */
#define BOOT_BYTES (64u << 10)
static _Alignas(16) char boot[BOOT_BYTES];
static _Atomic size_t boot_used;

static void *boot_alloc(size_t size)
{
    size_t n = (size + 31) & ~(size_t)15;
    if (size > BOOT_BYTES) { errno = ENOMEM; return NULL; }
    size_t off = atomic_fetch_add(&boot_used, n);
    if (off + n > BOOT_BYTES) { errno = ENOMEM; return NULL; }
    *(size_t *)(boot + off) = size;
    return boot + off + 16;
}
static inline int is_boot(const void *p) { return (const char *)p >= boot && (const char *)p < boot + BOOT_BYTES; }
static size_t boot_size(const void *p) { return *(const size_t *)((const char *)p - 16); }

/* The load address of the module that holds addr, or NULL. */
static const void *module_of(const void *addr)
{
    Dl_info di;
    return addr && dladdr(addr, &di) ? di.dli_fbase : NULL;
}
static const char *module_name(const void *addr)
{
    Dl_info di;
    return addr && dladdr(addr, &di) && di.dli_fname ? di.dli_fname : "?";
}

/* Is addr the definition of name, not a non-PIE program's PLT entry for
 * it (an undefined symbol with a value: dlsym and dladdr return it too)? */
static int defines(const void *addr, const char *name)
{
    Dl_info di;
    const ElfW(Sym) *sym = NULL;
    return dladdr1(addr, &di, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_shndx != SHN_UNDEF &&
           di.dli_saddr == addr && di.dli_sname && strcmp(di.dli_sname, name) == 0;
}

/* Decide the mode (the caller won the race to do it; calls from any thread
 * meanwhile are served by the bootstrap arena). */
static int mode_decide(void)
{
    const void *self = module_of((const void *)mode_decide);
    void *def = dlsym(RTLD_DEFAULT, "malloc");
#define NEXT(f) (next.f = (__typeof__(next.f))dlsym(RTLD_NEXT, #f))
    NEXT(malloc); NEXT(calloc); NEXT(realloc); NEXT(free);
    NEXT(memalign); NEXT(aligned_alloc); NEXT(posix_memalign); NEXT(valloc); NEXT(pvalloc);
#undef NEXT
    next.usable = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    if (def == (void *)__libc_malloc) { /* glibc's own comes first: we were loaded after it */
        not_interposed = 1;
        return MODE_ASIDE;
    }
    if (def && module_of(def) != self && defines(def, "malloc")) {
        snprintf(mode_why, sizeof mode_why, "the program defines malloc itself (%s): recording nothing, every call "
                 "forwarded", module_name(def));
        return MODE_ASIDE;
    }
    if (!next.malloc || !next.free || !next.calloc || !next.realloc) {
        snprintf(mode_why, sizeof mode_why, "no next malloc family found: glibc's used");
        return MODE_GLIBC;
    }
    const void *m = module_of((void *)next.malloc);
    /* glibc's, in glibc's module: mimalloc also defines __libc_malloc & co.,
     * and then our references to them are its functions. */
    if ((void *)next.malloc == (void *)__libc_malloc && (void *)next.free == (void *)__libc_free &&
        (void *)next.realloc == (void *)__libc_realloc && (void *)next.calloc == (void *)__libc_calloc &&
        m == module_of((void *)gnu_get_libc_version)) {
        void *a = __libc_malloc(24);
        if (a) {
            __libc_free(a);
            uint64_t k = ((volatile uint64_t *)a)[1];
            if (__builtin_popcountll(k) >= 16) tcache_key = k;
        }
        return MODE_GLIBC;
    }
    if (module_of((void *)next.free) == m && module_of((void *)next.calloc) == m && module_of((void *)next.realloc) == m) {
        void *cxx = dlsym(RTLD_DEFAULT, "_Znwm");
        snprintf(mode_why, sizeof mode_why, "the program's allocator is %s: calls forwarded to it, blocks recorded "
                 "without a header%s", module_name(m),
                 cxx && module_of(cxx) == m ? "; C++ new/delete are its own and not seen" : "");
        return MODE_FOREIGN;
    }
    snprintf(mode_why, sizeof mode_why, "the malloc family is split between %s and %s: recording nothing, every call "
             "forwarded", module_name(m), module_name((void *)next.free));
    return MODE_ASIDE;
}

/* The mode, looked up at the first call; MODE_RESOLVING while another
 * call (this thread's dlsym, or another thread) is looking it up. */
static __attribute__((noinline)) int mode_resolve(void)
{
    int expect = MODE_UNRESOLVED;
    if (!atomic_compare_exchange_strong(&hooks_mode, &expect, MODE_RESOLVING)) return expect;
    int e = errno;
    int m = mode_decide();
    atomic_store_explicit(&hooks_mode, m, memory_order_release);
    errno = e;
    return m;
}

static inline int mode_now(void)
{
    int m = atomic_load_explicit(&hooks_mode, memory_order_acquire);
    return __builtin_expect(m >= MODE_GLIBC, 1) ? m : mode_resolve();
}

int tracker_hooks_interposed(void)
{
    mode_now();
    return !not_interposed;
}

const char *tracker_hooks_mode(void)
{
    mode_now();
    return mode_why[0] ? mode_why : NULL;
}

/* ---- the header ---- */

typedef struct block_hdr {
    uint64_t check; /* hdr_check(user pointer) */
    uint64_t info;  /* size << TRACKER_STACK_BITS | stack id */
} block_hdr;
_Static_assert(sizeof(block_hdr) == TRACKER_HEADER_BYTES, "header size");
#define HDR sizeof(block_hdr)

static _Atomic uint64_t secret;

/* The check word of a block at user, for the secret s. */
static inline uint64_t hdr_mix(const void *user, uint64_t s)
{
    return (((uint64_t)(uintptr_t)user ^ s) * 0x9e3779b97f4a7c15ULL) | 1;
}

/* The secret, made at the first header (once per process, base.h). */
static inline uint64_t secret_now(void)
{
    uint64_t s = atomic_load_explicit(&secret, memory_order_relaxed);
    return __builtin_expect(s != 0, 1) ? s : tracker_key_once(&secret);
}

static inline uint64_t hdr_check(const void *user) { return hdr_mix(user, secret_now()); }

/* The header in front of ptr, or NULL when ptr has none. */
static inline block_hdr *hdr_of(const void *ptr)
{
    block_hdr *h = (block_hdr *)ptr - 1;
    return h->check == hdr_check(ptr) ? h : NULL;
}

static inline uint32_t hdr_id(const block_hdr *h) { return (uint32_t)(h->info & TRACKER_UNTRACKED); }
static inline size_t hdr_size(const block_hdr *h) { return (size_t)(h->info >> TRACKER_STACK_BITS); }

/* Write h's header (the secret s known) for a block of size recorded as
 * id; the caller's pointer. */
static inline __attribute__((always_inline)) void *hdr_write(block_hdr *h, size_t size, uint64_t id, uint64_t s)
{
    h->check = hdr_mix(h + 1, s);
    h->info = (uint64_t)size << TRACKER_STACK_BITS | id;
    return h + 1;
}

/* hdr_write with the secret made if need be; an unrecorded block's size
 * is never read, so it is 0. */
static inline void *hdr_set(block_hdr *h, size_t size, uint32_t id)
{
    if (id == TRACKER_UNTRACKED) size = 0;
    return hdr_write(h, size, id, secret_now());
}

/* size + HDR, or 0 (and ENOMEM) when it does not fit a size_t. */
static inline size_t with_hdr(size_t size)
{
    if (__builtin_expect(size > SIZE_MAX - HDR, 0)) { errno = ENOMEM; return 0; }
    return size + HDR;
}

/* ---- recording ---- */

/* Every hook holds the recursion guard across the real call too, so a
 * signal handler that interrupts an allocation and allocates itself is
 * forwarded untouched (its blocks not recorded), and finds the guard taken
 * if it calls _exit. Recording never changes errno: a successful call
 * leaves it as glibc did. */
static inline __attribute__((always_inline)) int hook_begin(void) { return tracker_guard_enter(); }

/* The stack id of a new block of size (TRACKER_UNTRACKED inside the
 * tracker), for the code whose frames start at frame. The tracker keeps
 * errno itself, on the slow paths that can change it (a walk, a new
 * thread's slot, the address table's growth): the common path makes no
 * call that could. */
static inline __attribute__((always_inline)) uint32_t hook_record(int g, size_t size, void *frame)
{
    if (!g) return TRACKER_UNTRACKED;
    if (__builtin_expect(!hooks_ready, 0)) {
        int e = errno;
        hooks_init();
        errno = e;
    }
    return tracker_record_alloc(size, frame);
}

/* The deferred report, out of line: the hooks' common path keeps no
 * register for it. */
static __attribute__((noinline)) void hook_deferred(void)
{
    void (*f)(void) = tracker_hooks_deferred;
    if (!f) return;
    int e = errno;
    f();
    errno = e;
}

/* Run a deferred report if one is asked, and release the guard. */
static inline __attribute__((always_inline)) void hook_end(int g)
{
    if (!g) return;
    if (__builtin_expect(atomic_load_explicit(&tracker_hooks_pending, memory_order_relaxed), 0)) hook_deferred();
    tracker_guard_leave();
}

/* A header block from glibc's h (NULL: failed), recorded for frame. */
static inline __attribute__((always_inline)) void *hdr_block(int g, block_hdr *h, size_t size, void *frame)
{
    return h ? hdr_set(h, size, hook_record(g, size, frame)) : NULL;
}

/* malloc's block of size with its header (also realloc(NULL) and the
 * aligned allocations glibc serves from malloc). */
static inline __attribute__((always_inline)) void *hdr_malloc(int g, size_t size, void *frame)
{
    if (!g && tracker_in_tracker == TRACKER_GUARD_INTERNAL) return tracker_ialloc(size);
    size_t n = with_hdr(size);
    return n ? hdr_block(g, __libc_malloc(n), size, frame) : NULL;
}

/* A block without a header (glibc aligned it): record it in the table. */
static inline __attribute__((always_inline)) void table_record(int g, void *p, size_t size, void *frame)
{
    if (!p) return;
    uint32_t id = hook_record(g, size, frame);
    if (id != TRACKER_UNTRACKED && tracker_table_put(p, size, id) != 0) {
        tracker_record_free(id, size, 0);
        tracker_count_lost();
    }
}

/* Forget the record of ptr, a block about to be freed: take it out of the
 * totals, and out of the table if it is there. Returns its header, or
 * NULL when it has none. */
static inline __attribute__((always_inline)) block_hdr *forget(void *ptr, int g)
{
    block_hdr *h = hdr_of(ptr);
    if (h) {
        tracker_record_free(hdr_id(h), hdr_size(h), !g);
        return h;
    }
    size_t size;
    uint32_t id;
    if (tracker_table_take(ptr, &size, &id)) tracker_record_free(id, size, !g);
    return NULL;
}

/* ---- another allocator's calls (foreign: recorded in the table; aside: not) ---- */

/* A block of the foreign allocator: record it in the address table. */
static void *other_record(int m, int g, void *p, size_t size, void *frame)
{
    if (m == MODE_FOREIGN) table_record(g, p, size, frame);
    return p;
}

/* Take ptr's record out (foreign mode), before the allocator frees it. */
static int other_forget(int m, void *ptr, size_t *size, uint32_t *id)
{
    return m == MODE_FOREIGN && ptr && tracker_table_take(ptr, size, id);
}

static __attribute__((noinline)) void *other_malloc(int m, size_t size, void *frame)
{
    if (m == MODE_RESOLVING) return boot_alloc(size);
    int g = hook_begin();
    void *p = other_record(m, g, next.malloc(size), size, frame);
    hook_end(g);
    return p;
}

static __attribute__((noinline)) void other_free(int m, void *ptr)
{
    if (m == MODE_RESOLVING) return; /* only bootstrap blocks exist yet */
    int g = hook_begin();
    size_t size;
    uint32_t id;
    if (other_forget(m, ptr, &size, &id)) tracker_record_free(id, size, !g);
    next.free(ptr);
    hook_end(g);
}

static __attribute__((noinline)) void *other_realloc(int m, void *ptr, size_t size, void *frame)
{
    if (m == MODE_RESOLVING) { errno = ENOMEM; return NULL; }
    int g = hook_begin();
    size_t old_size;
    uint32_t old_id;
    int had = other_forget(m, ptr, &old_size, &old_id);
    void *p = next.realloc(ptr, size);
    if (had) {
        if (p || size == 0) { /* moved, resized, or freed (realloc(p, 0)) */
            tracker_record_free(old_id, old_size, !g);
        } else if (tracker_table_put(ptr, old_size, old_id) != 0) { /* failed: still live */
            tracker_record_free(old_id, old_size, !g);
            tracker_count_lost();
        }
    }
    other_record(m, g, p, size, frame);
    hook_end(g);
    return p;
}

/* ---- the entry points ---- */

/* malloc's uncommon cases, out of line: another allocator, inside a hook
 * (a signal handler's, the tracker's own: glibc's block with an
 * unrecorded header), a size that cannot have a header (ENOMEM). */
static __attribute__((noinline)) void *malloc_slow(size_t size, void *frame)
{
    int m = mode_now();
    if (m != MODE_GLIBC) return other_malloc(m, size, frame);
    int g = hook_begin();
    void *p = hdr_malloc(g, size, frame);
    hook_end(g);
    return p;
}

/* The record of h, malloc'ed for size at frame, when the memo or this
 * thread's row cannot give it at once (the guard is held). */
static __attribute__((noinline)) void *malloc_record(block_hdr *h, size_t size, void *frame)
{
    return hdr_set(h, size, hook_record(1, size, frame));
}

/* The same steps as hdr_malloc's, with the common case (glibc's
 * allocator, a stack the memo knows, this thread's own row) inline and the
 * rest out of line: gcc then keeps three values across glibc's malloc and
 * the memo's check, not six. */
TRACKER_EXPORT void *malloc(size_t size)
{
    if (__builtin_expect(tracker_in_tracker || size > SIZE_MAX - HDR ||
                             atomic_load_explicit(&hooks_mode, memory_order_relaxed) != MODE_GLIBC, 0))
        return malloc_slow(size, __builtin_frame_address(0));
    tracker_in_tracker = 1;
    block_hdr *h = __libc_malloc(size + HDR);
    void *p = NULL;
    if (h) {
        int64_t id;
        uint64_t s;
        /* secret is read after the memo's call (held across it, it took
         * a register); it is 0 only until the first header is written. */
        if ((id = tracker_record_fast(size, __builtin_frame_address(0))) >= 0 &&
            (s = atomic_load_explicit(&secret, memory_order_relaxed)) != 0) {
            tracker_record_fast_add(id, size);
            p = hdr_write(h, size, (uint64_t)id, s);
        } else {
            p = malloc_record(h, size, __builtin_frame_address(0));
        }
    }
    hook_end(1);
    return p;
}

TRACKER_EXPORT void *calloc(size_t count, size_t size)
{
    size_t bytes, n;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    int m = mode_now();
    if (m == MODE_RESOLVING) return boot_alloc(bytes); /* .bss: already zero */
    if (m != MODE_GLIBC) {
        int g = hook_begin();
        void *p = other_record(m, g, next.calloc(count, size), bytes, __builtin_frame_address(0));
        hook_end(g);
        return p;
    }
    if (!(n = with_hdr(bytes))) return NULL;
    int g = hook_begin();
    void *p = !g && tracker_in_tracker == TRACKER_GUARD_INTERNAL
                  ? tracker_icalloc(bytes)
                  : hdr_block(g, __libc_calloc(1, n), bytes, __builtin_frame_address(0));
    hook_end(g);
    return p;
}

/* free's uncommon cases, out of line: another allocator, inside a hook
 * (nested), a block without a header, a thread without a row of its own,
 * a bootstrap block (ignored), a block of ours freed twice. */
static __attribute__((noinline)) void free_slow(void *ptr)
{
    if (is_boot(ptr)) return;
    int m = mode_now();
    if (m != MODE_GLIBC) {
        other_free(m, ptr);
        return;
    }
    int g = hook_begin();
    block_hdr *h;
    if (tracker_iowns(ptr)) {
        tracker_ifree(ptr);
    } else if ((h = forget(ptr, g))) {
        h->check = 0;
        __libc_free(h);
    } else if (tcache_key && ((const uint64_t *)ptr)[-1] == tcache_key) {
        /* Our block freed again: glibc's tcache holds its chunk, whose
         * user pointer is our header. glibc reports the double free. */
        __libc_free((block_hdr *)ptr - 1);
    } else {
        __libc_free(ptr);
    }
    hook_end(g);
}

/* The common case, a recorded block freed by a thread with its own row,
 * keeps nothing in a register across glibc's free: its two adds are
 * done before it, and after it only the guard is released. The same steps
 * as free_slow's (guard, forget, header cleared, glibc, hook_end). free
 * must not change errno (POSIX 2024): glibc's free keeps it (since 2.33),
 * and so do forget() and hook_end(). With another allocator no header is
 * ever written, so secret stays 0 and every free takes free_slow. */
TRACKER_EXPORT void free(void *ptr)
{
    if (!ptr) return;
    block_hdr *h = (block_hdr *)ptr - 1;
    tracker_row *rows = tracker_rows;
    uint64_t s = atomic_load_explicit(&secret, memory_order_relaxed); /* 0: no header written yet */
    uint32_t id;
    if (__builtin_expect(tracker_in_tracker || !rows || !s || h->check != hdr_mix(ptr, s) ||
                             (id = hdr_id(h)) == TRACKER_UNTRACKED, 0)) {
        free_slow(ptr);
        return;
    }
    tracker_in_tracker = 1;
    tracker_row_add_all(rows + id, -(uint64_t)hdr_size(h), -(uint64_t)1, 0, 0);
    h->check = 0;
    __libc_free(h);
    hook_end(1);
}

/* realloc of a bootstrap block: a new block of ours, the bytes copied. */
static void *boot_realloc(void *ptr, size_t size)
{
    if (size == 0) return NULL;
    void *p = malloc(size);
    if (p) memcpy(p, ptr, boot_size(ptr) < size ? boot_size(ptr) : size);
    return p;
}

TRACKER_EXPORT void *realloc(void *ptr, size_t size)
{
    void *frame = __builtin_frame_address(0);
    if (ptr && is_boot(ptr)) return boot_realloc(ptr, size);
    int m = mode_now();
    if (m != MODE_GLIBC) return other_realloc(m, ptr, size, frame);
    if (!ptr) {
        int g = hook_begin();
        void *p = hdr_malloc(g, size, frame);
        hook_end(g);
        return p;
    }
    if (size == 0) { /* glibc 2.36: frees the block, returns NULL */
        free(ptr);
        return NULL;
    }
    int g = hook_begin();
    void *p = NULL;
    block_hdr *h = hdr_of(ptr);
    if (h) {
        size_t n = with_hdr(size);
        uint32_t old_id = hdr_id(h);
        size_t old_size = hdr_size(h);
        uint64_t check = h->check;
        h->check = 0; /* if the block moves, its old place must not look like a block */
        block_hdr *nh = n ? __libc_realloc(h, n) : NULL;
        if (nh) {
            tracker_record_free(old_id, old_size, !g);
            p = hdr_set(nh, size, hook_record(g, size, frame));
        } else {
            h->check = check; /* failed: the old block is untouched, and still ours */
        }
    } else if (tracker_iowns(ptr)) {
        p = tracker_irealloc(ptr, size);
    } else {
        /* A table block (or glibc's own): it stays without a header. */
        size_t old_size;
        uint32_t old_id;
        int had = tracker_table_take(ptr, &old_size, &old_id);
        p = __libc_realloc(ptr, size);
        if (had && !p && tracker_table_put(ptr, old_size, old_id) != 0) { /* still live: put it back */
            tracker_record_free(old_id, old_size, !g);
            tracker_count_lost();
        }
        if (had && p) {
            tracker_record_free(old_id, old_size, !g);
            table_record(g, p, size, frame);
        }
    }
    hook_end(g);
    return p;
}

/* glibc 2.36's reallocarray: ENOMEM on overflow, else realloc (which
 * glibc also calls through the interposable symbol). */
TRACKER_EXPORT void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) { errno = ENOMEM; return NULL; }
    return realloc(ptr, bytes);
}

/* The aligned allocations: kind names the entry point, for another
 * allocator's own definition of it. */
enum { AL_MEMALIGN, AL_ALIGNED_ALLOC, AL_VALLOC, AL_PVALLOC };

/* Another allocator's aligned block, recorded in the table (foreign). */
static __attribute__((noinline)) void *other_aligned(int m, int kind, size_t align, size_t size, void *frame)
{
    if (m == MODE_RESOLVING) { errno = ENOMEM; return NULL; }
    int g = hook_begin();
    void *p = kind == AL_MEMALIGN        ? (next.memalign ? next.memalign(align, size) : NULL)
            : kind == AL_ALIGNED_ALLOC ? (next.aligned_alloc ? next.aligned_alloc(align, size) : NULL)
            : kind == AL_VALLOC        ? (next.valloc ? next.valloc(size) : NULL)
                                       : (next.pvalloc ? next.pvalloc(size) : NULL);
    other_record(m, g, p, size, frame);
    hook_end(g);
    return p;
}

/* __libc_memalign is glibc's memalign (a non-power-of-two alignment is
 * rounded up, > SIZE_MAX/2+1 is EINVAL), and in 2.36 aligned_alloc is the
 * same function (no alignment check of its own). Up to 16, glibc's
 * memalign is its malloc: so is ours, with a header. */
static inline __attribute__((always_inline)) void *aligned(int g, size_t align, size_t size, void *frame)
{
    if (align <= 16) return hdr_malloc(g, size, frame);
    void *p = __libc_memalign(align, size);
    table_record(g, p, size, frame);
    return p;
}

/* memalign's and aligned_alloc's body (glibc 2.36: the same function), for
 * the hook's frame. */
static inline __attribute__((always_inline)) void *aligned_entry(int kind, size_t align, size_t size, void *frame)
{
    int m = mode_now();
    if (m != MODE_GLIBC) return other_aligned(m, kind, align, size, frame);
    int g = hook_begin();
    void *p = aligned(g, align, size, frame);
    hook_end(g);
    return p;
}

TRACKER_EXPORT void *memalign(size_t align, size_t size)
{
    return aligned_entry(AL_MEMALIGN, align, size, __builtin_frame_address(0));
}

TRACKER_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    return aligned_entry(AL_ALIGNED_ALLOC, align, size, __builtin_frame_address(0));
}

/* glibc's checks, in its order: EINVAL (and *out untouched) unless align
 * is a power-of-two multiple of sizeof(void *); ENOMEM on failure. Another
 * allocator's posix_memalign makes its own checks. */
TRACKER_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    int m = mode_now();
    if (m == MODE_FOREIGN || m == MODE_ASIDE) {
        if (!next.posix_memalign) return ENOMEM;
        int g = hook_begin();
        int rc = next.posix_memalign(out, align, size);
        if (rc == 0) other_record(m, g, *out, size, __builtin_frame_address(0));
        hook_end(g);
        return rc;
    }
    if (align == 0 || align % sizeof(void *) != 0 || ((align / sizeof(void *)) & (align / sizeof(void *) - 1)) != 0)
        return EINVAL;
    if (m == MODE_RESOLVING) return ENOMEM;
    int g = hook_begin();
    void *p = aligned(g, align, size, __builtin_frame_address(0));
    hook_end(g);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

/* valloc's and pvalloc's body: glibc aligns the block to a page itself, so
 * it has no header and goes to the table. */
static inline __attribute__((always_inline)) void *page_entry(int kind, size_t size, void *frame)
{
    int m = mode_now();
    if (m != MODE_GLIBC) return other_aligned(m, kind, 0, size, frame);
    int g = hook_begin();
    void *p = kind == AL_VALLOC ? __libc_valloc(size) : __libc_pvalloc(size);
    table_record(g, p, size, frame);
    hook_end(g);
    return p;
}

TRACKER_EXPORT void *valloc(size_t size)
{
    return page_entry(AL_VALLOC, size, __builtin_frame_address(0));
}

TRACKER_EXPORT void *pvalloc(size_t size)
{
    return page_entry(AL_PVALLOC, size, __builtin_frame_address(0));
}

/* What the caller may use: without our header (glibc mode), or the
 * allocator's own answer (it never saw a header). */
TRACKER_EXPORT size_t malloc_usable_size(void *ptr)
{
    if (!ptr) return 0;
    if (is_boot(ptr)) return boot_size(ptr);
    int m = mode_now();
    if (m == MODE_RESOLVING || !next.usable) return 0;
    if (m != MODE_GLIBC) return next.usable(ptr);
    block_hdr *h = hdr_of(ptr); /* the common case first: redis asks after every allocation */
    if (h) return next.usable(h) - HDR;
    return tracker_iowns(ptr) ? tracker_iusable(ptr) : next.usable(ptr);
}

int tracker_lookup(const void *ptr, size_t *size, uint32_t *stack_id)
{
    size_t sz;
    uint32_t id;
    if (!ptr) return 0;
    const block_hdr *h = mode_now() == MODE_GLIBC ? hdr_of(ptr) : NULL;
    if (h) {
        id = hdr_id(h);
        sz = hdr_size(h);
        if (id == TRACKER_UNTRACKED) return 0;
    } else if (!tracker_table_find(ptr, &sz, &id)) {
        return 0;
    }
    if (size) *size = sz;
    if (stack_id) *stack_id = id;
    return 1;
}
