/* stackwalk.c - call stacks from the call-frame information: each step applies the cached CFI rule of its address, inside the bounds of the stack the hook runs on. */
/* Long on purpose: the walk, its memo and the stack bounds it reads
 * within are one contract (a remembered walk is reused only where the
 * bounds proved its words safe to read again); apart, that proof would
 * span three files. */

#include "tracker.h"
#include "base.h"
#include "unwind.h"
#include "cfi.h"
#include "vg_annotate.h"

#include <emmintrin.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/*
 * Every x86-64 ELF module carries .eh_frame: for each code address, where
 * the caller's frame (the CFA) is and where the return address and the
 * saved registers were stored. Debian builds nothing with frame pointers,
 * so that is the only way to get through libc, libstdc++, libgcc_s,
 * libmicrohttpd or a program built with plain -O2. tracker/unwind/cfi.c reduces
 * libdw's answer for an address to a cached 64-bit rule; this file applies
 * the rules, one per frame, starting from the hook's own frame (ours, with
 * a frame pointer: frame 0 is exact). Frame pointers are used only where
 * the CFI itself says the CFA is %rbp-based at that address.
 *
 * A frame is kept only when it is proven:
 *  - the address it comes from has a CFI rule (a module's FDE covers it);
 *  - the step moves up (CFA above the current %rsp), and every read lies
 *    between the current %rsp and the top of the stack the hook is running
 *    on: the thread's stack, the sigaltstack the kernel reports as in use,
 *    or (a coroutine or makecontext stack) the mapping that holds %rsp in
 *    /proc/self/maps, checked with mincore() each time it is reused;
 *  - the return address lies in a loaded module (dl_iterate_phdr, looked
 *    at again on any address that is not in one: dlopen'ed code is unwound
 *    from its first allocation).
 * The walk ends cleanly at an address without CFI (JIT code, stripped
 * asm), at the outermost frame (the CFI marks the return address undefined
 * in _start, clone and makecontext's trampoline) and at the stack's top.
 * Signal frames are unwound through: glibc's __restore_rt has CFI (the
 * kernel's saved context); the interrupted pc is exact, so it is stored
 * plus one, like a return address, and looked up at itself. The
 * interrupted code may run on another stack than the handler (sigaltstack):
 * its bounds are found again for its %rsp.
 *
 * A frame costs about what glibc's backtrace() and libunwind's
 * unw_backtrace() take (docs/perf.md has the figures of make bench).
 * Most allocations skip the walk: the memo below answers them with one
 * check of the 5-20 stack words the last walk from the same place read,
 * two at a time in an SSE2 register (memo_words_fit).
 */

/* This thread's stack [lo, hi); hi = 0: not looked up yet, 1: lookup failed. */
static TRACKER_TLS uintptr_t t_lo, t_hi;
/* The main thread's stack (found once, at init: its [stack] mapping and
 * RLIMIT_STACK below its top). */
static uintptr_t main_lo, main_hi;
/* glibc's thread descriptor (pthread_self()) records the thread's stack
 * block: where, as a word index, and the descriptor's size (exported for
 * libthread_db); -1 / 0 until found. */
static _Atomic int pd_stack_at = -1;
static size_t pd_size;

#define PAGE        4096u
#define OTHER_MAX   (4u << 20) /* read at most this far above %rsp on other stacks */

/* ---- stack bounds ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The mapping of /proc/self/maps that holds sp. No allocation: a small
 * buffer on the stack, lines parsed as they stream in. */
static int maps_find(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[256];
    uintptr_t a = 0, b = 0;
    int field = 0, found = 0; /* field 0: start, 1: end, 2: rest of the line */
    ssize_t got;
    while (!found && (got = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got && !found; i++) {
            int v = hexval(buf[i]);
            if (field == 0) {
                if (v >= 0) a = a * 16 + (uintptr_t)v;
                else field = buf[i] == '-' ? 1 : 2;
            } else if (field == 1) {
                if (v >= 0) b = b * 16 + (uintptr_t)v;
                else { found = sp >= a && sp < b; field = 2; }
            }
            if (field == 2 && buf[i] == '\n') { field = 0; a = b = 0; }
        }
    }
    close(fd);
    if (found) { *lo = a; *hi = b; }
    return found;
}

/* Is [from, to) still mapped? One mincore() call (ENOMEM if not). The
 * page vector is never read: threads may share it. */
static unsigned char mincore_vec[OTHER_MAX / PAGE + 1];
static int mapped(uintptr_t from, uintptr_t to)
{
    from &= ~(uintptr_t)(PAGE - 1);
    return mincore((void *)from, to - from, mincore_vec) == 0;
}

/*
 * A thread's own stack, found at its first walk without asking glibc:
 * pthread_getattr_np takes the thread's lock and allocates under it
 * (glibc 2.36, through pthread_attr_setaffinity_np), so a thread whose
 * first allocation happens inside it (every Rust thread, every Java
 * thread) would wait for itself. glibc keeps the stack block (address,
 * size, guard size: three words) in the thread's descriptor, at the top
 * of that block; the word index is found once by its shape (a block that
 * holds both %rsp and the descriptor, ending just above the descriptor),
 * then read for each thread. A thread whose descriptor does not show it
 * (not glibc's pthread_create) gets the mapping that holds %rsp.
 */
static int pd_fits(const uintptr_t *w, uintptr_t sp, uintptr_t pd)
{
    uintptr_t lo = w[0], size = w[1], guard = w[2], hi = lo + size;
    return lo && !(lo & 15) && size > guard && size < ((uintptr_t)1 << 40) && hi > lo && sp > lo + guard && sp < pd &&
           pd < hi && hi - pd <= pd_size + PAGE;
}

static void find_thread_stack(uintptr_t sp)
{
    int saved = errno;
    uintptr_t pd = (uintptr_t)pthread_self();
    const uintptr_t *w = (const uintptr_t *)pd;
    int at = atomic_load_explicit(&pd_stack_at, memory_order_relaxed);
    t_hi = 1;
    if (pd_size >= 3 * sizeof(uintptr_t)) {
        if (at < 0)
            for (int i = 0; i + 3 <= (int)(pd_size / sizeof(uintptr_t)); i++)
                if (pd_fits(w + i, sp, pd)) { atomic_store_explicit(&pd_stack_at, at = i, memory_order_relaxed); break; }
        if (at >= 0 && pd_fits(w + at, sp, pd)) {
            t_lo = w[at] + w[at + 2];
            t_hi = w[at] + w[at + 1];
        }
    }
    uintptr_t lo, hi;
    if (t_hi == 1 && maps_find(sp, &lo, &hi)) {
        t_lo = lo;
        t_hi = hi;
    }
    errno = saved;
}

/* Once, at init: the main thread's stack from the loader's
 * __libc_stack_end, and the size of glibc's thread descriptor. */
static void stack_bounds_init(void)
{
    extern void *__libc_stack_end;
    uintptr_t lo, hi;
    struct rlimit rl;
    if (maps_find((uintptr_t)__libc_stack_end, &lo, &hi)) {
        uintptr_t room = getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < hi
                             ? (uintptr_t)rl.rlim_cur : (uintptr_t)(64u << 20);
        main_lo = hi - room < lo ? hi - room : lo;
        main_hi = hi;
    }
    const unsigned *sz = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
    if (sz && *sz >= 64 && *sz <= 65536) pd_size = *sz;
}

/* This thread's own stack, at its first walk. */
static void thread_stack(uintptr_t sp)
{
    if (sp >= main_lo && sp < main_hi) {
        t_lo = main_lo;
        t_hi = main_hi;
    } else {
        find_thread_stack(sp);
    }
}

/* The other stacks (coroutines, makecontext) this thread ran on lately:
 * a switch back to one costs a mincore() check, not a read of
 * /proc/self/maps. In the thread's memo set (memo_other), none without. */
#define OTHER_WAYS 32
typedef struct other_stack { uintptr_t lo, hi; } other_stack;
static other_stack *memo_other(void);

/* Bounds of a remembered other stack holding sp, still mapped up to cap. */
static int other_cached(uintptr_t sp, uintptr_t cap, uintptr_t *lo, uintptr_t *hi)
{
    other_stack *o = memo_other();
    for (unsigned i = 0; o && i < OTHER_WAYS; i++) {
        if (sp < o[i].lo || sp >= o[i].hi) continue;
        if (mapped(sp, o[i].hi < cap ? o[i].hi : cap)) {
            *lo = o[i].lo;
            *hi = o[i].hi;
            if (i) { other_stack t = o[i]; memmove(o + 1, o, i * sizeof *o); o[0] = t; } /* most recent first */
            return 1;
        }
        o[i].lo = o[i].hi = 0; /* unmapped since */
    }
    return 0;
}

/* Bounds of the mapping holding sp in /proc/self/maps, remembered as an
 * other stack (after other_cached found none). */
static int other_find(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
    other_stack *o = memo_other();
    if (!maps_find(sp, lo, hi)) return 0;
    if (o) {
        memmove(o + 1, o, (OTHER_WAYS - 1) * sizeof *o);
        o[0].lo = *lo;
        o[0].hi = *hi;
    }
    return 1;
}

/* The alternate signal stack sp is on, if it is (errno kept). */
static int on_altstack(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
    int saved = errno;
    stack_t ss;
    int on = sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) && sp >= (uintptr_t)ss.ss_sp &&
             sp < (uintptr_t)ss.ss_sp + ss.ss_size;
    errno = saved;
    if (on) {
        *lo = (uintptr_t)ss.ss_sp;
        *hi = (uintptr_t)ss.ss_sp + ss.ss_size;
    }
    return on;
}

/* Top of the stack holding sp, and its bottom in *lo: 0 when it cannot
 * be found. *sure: 0 when *lo is a remembered mapping's start (see
 * miss_room). */
static uintptr_t stack_top(uintptr_t sp, uintptr_t *lo, int *sure)
{
    *sure = 1;
    if (!t_hi) thread_stack(sp);
    if (sp >= t_lo && sp < t_hi) { *lo = t_lo; return t_hi; }
    int saved = errno;
    uintptr_t cap = (sp & ~(uintptr_t)(PAGE - 1)) + OTHER_MAX, hi;
    /* A remembered stack first (a coroutine switched back to: one mincore,
     * no sigaltstack call). An alternate signal stack is only ever
     * remembered as the mapping that holds it, which is as safe to read. */
    if (other_cached(sp, cap, lo, &hi)) *sure = 0;
    else if (on_altstack(sp, lo, &hi)) cap = hi; /* read to its top, however far */
    else if (!other_find(sp, lo, &hi)) hi = 0;
    errno = saved;
    return hi < cap ? hi : cap;
}


void tracker_stackwalk_refresh(void)
{
    tracker_cfi_refresh();
}


/* ---- the walk ---- */

typedef struct regs {
    uintptr_t pc, sp, bp;
    int bp_ok;      /* bp holds the frame's real %rbp */
    int bp_read;    /* bp was loaded from a frame (no longer the hook's caller's %rbp) */
    int bp_noted;   /* ... and that word is in the pending memo */
    uintptr_t bp_at;/* where it was loaded from */
    uintptr_t hi;   /* top of the stack sp is on */
    struct memo *pend; /* the walk being noted for the memo */
    int may_miss;   /* room on the hook's stack for a rule-cache miss; -1: not known yet */
    uintptr_t sp0, lo0; /* the hook's %rsp and the bottom of the stack it is on, as far as known */
} regs;

#define MISS_ROOM (32u << 10)

/* Room for a miss below sp0, when the bottom lo0 came from a remembered
 * mapping: that mapping may hold an alternate signal stack smaller than
 * itself, so the kernel is asked, once a walk needs a miss. */
static __attribute__((noinline)) int miss_room(uintptr_t sp0, uintptr_t lo0)
{
    uintptr_t hi;
    on_altstack(sp0, &lo0, &hi);
    return sp0 - lo0 >= MISS_ROOM;
}

/* The rule at a: cached, or computed when the stack has room for it. */
static inline uint64_t walk_rule(regs *r, uintptr_t a)
{
    uint64_t rule = tracker_cfi_cached(a);
    if (rule != CFI_NONE) return rule;
    if (r->may_miss < 0) r->may_miss = miss_room(r->sp0, r->lo0);
    return r->may_miss ? tracker_cfi_miss(a) : CFI_BUSY;
}

/*
 * The walk memo. A walk is a pure function of where it starts (the hook's
 * return address, %rsp and, if a rule used it, %rbp), of the rules (fixed
 * per address until a module goes away: the CFI generation) and of the
 * stack words it read. So each thread remembers its last walks from each
 * call site, with the words read (at most MEMO_WORDS, as offsets from the
 * start %rsp) and the interned stack id: when a walk starts at the same
 * place and every one of those words still holds the same value, the walk
 * would read the same words, apply the same rules and produce the same
 * frames, and its id is reused without walking. The check is a handful of
 * independent loads (no dependent chain, unlike the walk). A saved %rbp
 * counts as read only when a later rule takes the CFA from it (code
 * without frame pointers saves %rbp as any other register). Only walks on the
 * thread's own stack, not through a signal frame and not cut short by a busy
 * lock, are remembered; those words lie between the start %rsp and the
 * stack's top, so reading them again is safe. The ways are forgotten all at
 * once when the CFI generation changes (a module went away).
 */
/* One set of 32 ways per thread, fully associative: programs that allocate
 * through one wrapper from a few callers in turn (sqlite3) keep one busy
 * start with several walks, which smaller sets evicted. A lookup first
 * checks the way that came after the last 3 ways hit, the last time they
 * came in that order (pred: the same way in a loop, the next caller's in
 * turns), else the way last hit from this start (hint), then the way with
 * the same first words (hint2), then scans the 32 tags (4 cache lines).
 * docs/perf.md has the hit rates that chose this. */
#define MEMO_WAYS  32 /* walks remembered per thread */
#define MEMO_WORDS 32 /* 16 frames with a frame pointer read two words each */

typedef struct memo {
    uintptr_t pc0, sp0, bp0;   /* the start */
    uintptr_t bp_mask;         /* ~0: the walk used the starting %rbp; 0: it did not */
    uint32_t id;               /* interned stack */
    uint32_t gen;              /* tracker_cfi_generation() when walked (pending) */
    uint8_t ok;                /* pending: a complete, reusable walk */
    uint8_t nwords;            /* words the walk read */
    uint8_t npairs;            /* a way's words checked two at a time: (nwords + 1) / 2,
                                * kept so the check loads it instead of working it out */
    /* A word the walk read: (its address - sp0) / 8 ... Offsets in 16 bits
     * keep the offsets of a way in one cache line with its start; a walk
     * that reads 512 KiB or more above its start is not remembered. A way
     * keeps its words at the end of the arrays, from memo_first (the
     * check's pointers are then constants), after the first word again
     * when their count is odd (whole pairs; checking a word twice changes
     * nothing); pending keeps them from index 0, in the order read. */
    uint16_t off[MEMO_WORDS];
    _Alignas(16) uintptr_t val[MEMO_WORDS]; /* ... and its value, in 16-byte pairs */
} memo;

/* Where to look after the way last hit, by 10 bits of a hash: hint, the
 * way last learned or hit for a start; hint2, the way for a start and the
 * first HINT_WORDS stack words its walk read (the callers' return
 * addresses). sqlite3 reaches one call site at one depth from ~4 callers
 * in turn: those walks share a start and differ only from the 4th to 6th
 * word on. The words are read at the offsets of a way with the same start
 * (its first frames are the same code, so mostly the same offsets); a
 * wrong guess only costs the scan, and memo_fits decides. */
#define HINT_WORDS 6
#define MEMO_HINTS 1024
#define MEMO_PREDS 1024

/* A thread's memo and its last walk, mapped at its first walk (not TLS:
 * ~13 KiB of static TLS would come out of every thread's stack, and a
 * library with that much initial-exec TLS cannot be dlopen'ed), given
 * back to a pool at thread exit. */
typedef struct memo_set {
    /* Each way's start (memo_tag_of its pc0, sp0), side by side: a lookup
     * reads 4 cache lines to find the ways worth checking. 0: empty. */
    uintptr_t tag[MEMO_WAYS];
    uint32_t gen;              /* the CFI generation of the ways */
    uint8_t mru;               /* the way last hit or learned */
    uint16_t hist;             /* the last 3 ways hit or learned, 5 bits each */
    uint8_t pred[MEMO_PREDS];  /* by memo_pred_of(hist): the way that came next */
    uint8_t next;              /* the way to replace next */
    uint8_t hint[MEMO_HINTS];
    uint8_t hint2[MEMO_HINTS];
    memo way[MEMO_WAYS];
    memo pending;              /* this thread's last walk */
    other_stack other[OTHER_WAYS]; /* stack_top's other stacks */
    struct memo_set *next_free;/* in the pool */
} memo_set;

/* This thread's set: NULL until its first walk, MEMO_DEAD once given back
 * at its exit (later frees of other TLS destructors walk without one). */
static TRACKER_TLS memo_set *t_memo;
#define MEMO_DEAD ((memo_set *)1)

/* Sets of exited threads, for new ones. The lock is only tried, never
 * waited for (a fork child may find it held forever): when busy, a set
 * is mapped or unmapped instead. */
static struct {
    atomic_flag lock;
    memo_set *free;
    pthread_key_t key;
    int key_ok;
} pool = { .lock = ATOMIC_FLAG_INIT };

static void memo_release(void *v)
{
    memo_set *s = v;
    t_memo = MEMO_DEAD;
    if (!s || s == MEMO_DEAD) return;
    if (!atomic_flag_test_and_set_explicit(&pool.lock, memory_order_acquire)) {
        VG_LOCK_ACQUIRED(&pool.lock);
        s->next_free = pool.free;
        pool.free = s;
        VG_LOCK_RELEASED(&pool.lock);
        atomic_flag_clear_explicit(&pool.lock, memory_order_release);
    } else {
        munmap(s, sizeof *s);
    }
}

/* This thread's set, made at its first walk; NULL when it has none (no
 * memory, no key, or the thread is exiting). */
static __attribute__((noinline)) memo_set *memo_get(void)
{
    memo_set *s = t_memo;
    if (s) return s == MEMO_DEAD ? NULL : s;
    if (!pool.key_ok) return NULL;
    int e = errno;
    if (!atomic_flag_test_and_set_explicit(&pool.lock, memory_order_acquire)) {
        VG_LOCK_ACQUIRED(&pool.lock);
        if ((s = pool.free)) pool.free = s->next_free;
        VG_LOCK_RELEASED(&pool.lock);
        atomic_flag_clear_explicit(&pool.lock, memory_order_release);
    }
    if (s) {
        memset(s->tag, 0, sizeof s->tag); /* a previous thread's stacks */
        memset(s->other, 0, sizeof s->other);
        s->mru = s->next = 0;
        s->pending.ok = 0;
    } else {
        void *p = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        s = p == MAP_FAILED ? NULL : p;
    }
    if (s && pthread_setspecific(pool.key, s) != 0) {
        memo_release(s);
        s = NULL;
    }
    t_memo = s ? s : MEMO_DEAD;
    errno = e;
    return s;
}

static other_stack *memo_other(void)
{
    memo_set *s = t_memo;
    return s && s != MEMO_DEAD ? s->other : NULL;
}

/* Note a stack word the walk depends on in the pending memo. */
static void note_word(memo *pending, uintptr_t at, uintptr_t v)
{
    uintptr_t d = (at - pending->sp0) / 8; /* at and sp0 are 8-aligned, at >= sp0 */
    if (pending->nwords < MEMO_WORDS && d <= UINT16_MAX) {
        pending->off[pending->nwords] = (uint16_t)d;
        pending->val[pending->nwords++] = v;
    } else {
        pending->ok = 0;
    }
}

/* A stack word the walk read (its value decides where the walk goes). */
static uintptr_t read_word(memo *pending, uintptr_t at)
{
    uintptr_t v = *(const uintptr_t *)at;
    note_word(pending, at, v);
    return v;
}

/* Pair k from the end of m's words against the stack s: two loads into
 * one SSE2 register (movq, movhps), one xor with the pair's 16 aligned
 * bytes, one or into acc: 3 instructions a word with the offsets' loads,
 * where a word alone takes 4 (load offset, load, xor, or). */
#define MEMO_PAIR(k) case k: \
    acc = _mm_or_si128(acc, _mm_xor_si128(_mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd( \
              _mm_loadl_epi64((const __m128i *)(s + o[-2 * (k)]))), (const double *)(s + o[-2 * (k) + 1]))), \
              _mm_load_si128(v - (k))));                                                                   \
    __attribute__((fallthrough));

/* Do m's words still hold, for a walk from the start m was walked from
 * (its pc0 and sp0: the caller checked them, so the words lie on this
 * stack), with %rbp bp and the rules of generation gen? Independent loads
 * without a loop (a jump into a run of one step per pair of words) and one
 * branch at the end: the first guess is almost always right, so an early
 * exit on the first words would only cost the right ones. */
static inline __attribute__((always_inline)) int memo_words_fit(const memo *m, uintptr_t sp, uintptr_t bp, uint32_t gen)
{
    const uintptr_t *s = (const uintptr_t *)sp;
    uintptr_t d = ((m->bp0 ^ bp) & m->bp_mask) | (m->gen ^ gen);
    unsigned np = m->npairs;
    const uint16_t *o = m->off + MEMO_WORDS;
    const __m128i *v = (const __m128i *)(m->val + MEMO_WORDS);
    __m128i acc = _mm_setzero_si128();
    _Static_assert(MEMO_WORDS == 32, "memo_words_fit has a case for each count of pairs up to 16");
    switch (np) {
        MEMO_PAIR(16) MEMO_PAIR(15) MEMO_PAIR(14) MEMO_PAIR(13) MEMO_PAIR(12) MEMO_PAIR(11) MEMO_PAIR(10) MEMO_PAIR(9)
        MEMO_PAIR(8) MEMO_PAIR(7) MEMO_PAIR(6) MEMO_PAIR(5) MEMO_PAIR(4) MEMO_PAIR(3) MEMO_PAIR(2) MEMO_PAIR(1)
    case 0: break;
    default: __builtin_unreachable(); /* learn stores at most MEMO_WORDS / 2 */
    }
    acc = _mm_or_si128(acc, _mm_unpackhi_epi64(acc, acc));
    return (d | (uintptr_t)_mm_cvtsi128_si64(acc)) == 0;
}

/* Does m answer a walk starting at pc, sp, bp? Its start first: only then
 * are its words read. */
static inline __attribute__((always_inline)) int memo_fits(const memo *m, uintptr_t pc, uintptr_t sp, uintptr_t bp)
{
    /* m as a plain pointer: without this, gcc re-derives every access
     * from the TLS base and the way's index (twice the instructions). */
    __asm__("" : "+r"(m));
    if ((m->pc0 ^ pc) | (m->sp0 ^ sp)) return 0;
    return memo_words_fit(m, sp, bp, m->gen);
}

/* memo_fits out of line, for the slow lookups. */
static __attribute__((noinline)) int memo_fits_cold(const memo *m, uintptr_t pc, uintptr_t sp, uintptr_t bp)
{
    return memo_fits(m, pc, sp, bp);
}

/* The tag of a walk start in tag[]: never 0 (0 marks an empty way). */
static inline uintptr_t memo_tag_of(uintptr_t pc, uintptr_t sp)
{
    return (sp ^ (pc * 0x9e3779b97f4a7c15ULL)) | 1;
}

static inline unsigned memo_hint_of(uintptr_t tag)
{
    return (unsigned)((tag * 0x9e3779b97f4a7c15ULL) >> 54) & (MEMO_HINTS - 1);
}

/* The words folded with rotations (no multiply, no chain of them), one
 * final mix in memo_hint_of. */
static inline uintptr_t fold_word(uintptr_t h, uintptr_t w, unsigned i)
{
    return h ^ ((w << (7 * i + 1)) | (w >> (63 - 7 * i)));
}

/* Where a way's words start in its off[] and val[] (not pending's). */
static inline unsigned memo_first(const memo *m)
{
    return MEMO_WORDS - m->nwords;
}

/* memo_hint2's key of a start: its first words at way m's offsets. */
static inline unsigned memo_hint2_here(uintptr_t tag, uintptr_t sp, const memo *m)
{
    uintptr_t h = tag;
    unsigned n = m->nwords < HINT_WORDS ? m->nwords : HINT_WORDS, f = memo_first(m);
    for (unsigned i = 0; i < n; i++) h = fold_word(h, ((const uintptr_t *)sp)[m->off[f + i]], i);
    return memo_hint_of(h);
}

/* ... and the same key from the values way m learned. */
static inline unsigned memo_hint2_learned(uintptr_t tag, const memo *m)
{
    uintptr_t h = tag;
    unsigned n = m->nwords < HINT_WORDS ? m->nwords : HINT_WORDS, f = memo_first(m);
    for (unsigned i = 0; i < n; i++) h = fold_word(h, m->val[f + i], i);
    return memo_hint_of(h);
}

/* Forget every way (they were walked with rules of generation != gen). */
static __attribute__((noinline)) void memo_reset(memo_set *S, uint32_t gen)
{
    memset(S->tag, 0, sizeof S->tag);
    S->mru = S->next = 0;
    S->gen = gen;
}

/* Where pred keeps the way after the history h. */
static inline unsigned memo_pred_of(unsigned h)
{
    _Static_assert(MEMO_WAYS == 32 && MEMO_PREDS == 1024, "5 bits a way in hist, 10 bits of pred");
    return (h * 0x9e3779b1u) >> 22;
}

/* Way w was the one after hist (pred already says so when hit is 1): it
 * becomes the way last hit and joins the history. */
static inline void memo_follow(memo_set *S, unsigned w, int hit)
{
    if (!hit) S->pred[memo_pred_of(S->hist)] = (uint8_t)w;
    S->hist = (uint16_t)(((unsigned)S->hist << 5 | w) & 0x7fff);
    S->mru = (uint8_t)w;
}

/* The slow half of tracker_stackwalk_known, out of line so the common
 * path keeps its registers: tried, the way the hints gave, did not fit. */
static __attribute__((noinline)) int64_t memo_search(memo_set *S, const uintptr_t *fp, unsigned tried)
{
    uintptr_t pc = fp[1], sp = (uintptr_t)(fp + 2), bp = fp[0], tag = memo_tag_of(pc, sp);
    unsigned w, w2 = MEMO_WAYS;
    /* The way learned with the same first words, read where tried's are
     * (between %rsp and the top of this thread's stack, like every word a
     * kept walk read) when tried is a way of this very start. */
    const memo *mt = &S->way[tried];
    if (S->tag[tried] == tag && mt->pc0 == pc && mt->sp0 == sp) {
        w2 = S->hint2[memo_hint2_here(tag, sp, mt)];
        if (w2 != tried && S->tag[w2] == tag && memo_fits_cold(&S->way[w2], pc, sp, bp)) {
            w = w2;
            goto hit;
        }
    }
    for (w = 0; w < MEMO_WAYS; w++)
        if (w != tried && w != w2 && S->tag[w] == tag && memo_fits_cold(&S->way[w], pc, sp, bp)) break;
    if (w == MEMO_WAYS) return -1;
    S->hint2[memo_hint2_learned(tag, &S->way[w])] = (uint8_t)w;
hit:
    S->hint[memo_hint_of(tag)] = (uint8_t)w;
    memo_follow(S, w, 0);
    return S->way[w].id;
}

/* The lookup after the first guess failed: w, the way pred gave, is not
 * of this start or does not fit. Then the way last hit from this start
 * (hint), then memo_search. */
static __attribute__((noinline)) int64_t known_miss(memo_set *S, const uintptr_t *fp, unsigned w)
{
    uintptr_t pc = fp[1], sp = (uintptr_t)(fp + 2), bp = fp[0], tag = memo_tag_of(pc, sp);
    uint32_t gen = tracker_cfi_generation();
    if (__builtin_expect(S->gen != gen, 0)) {
        memo_reset(S, gen);
        return -1;
    }
    if (S->tag[w] != tag) {
        w = S->hint[memo_hint_of(tag)];
        if (S->tag[w] == tag && memo_fits_cold(&S->way[w], pc, sp, bp)) {
            memo_follow(S, w, 0);
            return S->way[w].id;
        }
    }
    return memo_search(S, fp, w);
}

/* The first guess: the way that came after the last 3, last time (a loop's
 * allocation: the same way; sqlite3's callers in turn: the next). NULL
 * when it is not of this start (its pc0 and sp0: only then are its words
 * read, at offsets that lie on this stack). An empty way's pc0 is 0. The
 * same test as memo_fits', apart: written as one memo_fits call with the
 * generation, gcc saved two more registers on every lookup (+8M
 * instructions in sqlite3's run). */
static inline __attribute__((always_inline)) const memo *known_guess(memo_set *S, const uintptr_t *fp, unsigned *way)
{
    unsigned w = S->pred[memo_pred_of(S->hist)];
    const memo *m = &S->way[w];
    /* m as a plain pointer: without this, gcc re-derives every access
     * from the TLS base and the way's index (twice the instructions). */
    __asm__("" : "+r"(m));
    *way = w;
    return ((m->pc0 ^ fp[1]) | (m->sp0 ^ (uintptr_t)(fp + 2))) ? NULL : m;
}

int64_t tracker_stackwalk_known(void *hook_frame)
{
    const uintptr_t *fp = hook_frame;
    unsigned w;
    memo_set *S = t_memo;
    if (__builtin_expect(S == NULL || S == MEMO_DEAD, 0)) return -1;
    const memo *m = known_guess(S, fp, &w);
    if (!m || !memo_words_fit(m, (uintptr_t)(fp + 2), fp[0], tracker_cfi_generation())) return known_miss(S, fp, w);
    memo_follow(S, w, 1);
    return m->id;
}

void tracker_stackwalk_learn(uint32_t id)
{
    memo_set *S = t_memo;
    if (S == NULL || S == MEMO_DEAD) return;
    memo *pending = &S->pending;
    uint32_t gen = tracker_cfi_generation();
    if (!pending->ok || pending->gen != gen) return;
    if (S->gen != gen) memo_reset(S, gen);
    pending->id = id;
    /* Replace the ways in turn, never the one last hit. */
    unsigned w = S->next;
    if (w == S->mru) w = (w + 1) & (MEMO_WAYS - 1);
    S->next = (uint8_t)((w + 1) & (MEMO_WAYS - 1));
    uintptr_t tag = memo_tag_of(pending->pc0, pending->sp0);
    S->tag[w] = tag;
    S->hint[memo_hint_of(tag)] = (uint8_t)w;
    memo *m = &S->way[w];
    size_t head = offsetof(memo, off), words = pending->nwords;
    memcpy(m, pending, head); /* only the words in use */
    size_t first = memo_first(m);
    memcpy(m->off + first, pending->off, words * sizeof m->off[0]);
    memcpy(m->val + first, pending->val, words * sizeof m->val[0]);
    if (words & 1) { /* the first word again: whole pairs */
        m->off[first - 1] = pending->off[0];
        m->val[first - 1] = pending->val[0];
    }
    m->npairs = (uint8_t)((words + 1) / 2);
    S->hint2[memo_hint2_learned(tag, m)] = (uint8_t)w;
    memo_follow(S, w, 0);
    pending->ok = 0;
}

static int inside(const regs *r, uintptr_t at, uintptr_t end)
{
    return at >= r->sp && at + sizeof(uintptr_t) <= end && !(at & 7);
}

/* One normal step: CFA from %rsp or %rbp, return address and %rbp from
 * the frame. Returns 0 when the rule cannot be applied safely. */
static int step_cfa(regs *r, uint64_t rule)
{
    if (cfi_kind(rule) == CFI_CFA_RBP) {
        if (!r->bp_ok) return 0;
        if (!r->bp_read) r->pend->bp_mask = ~(uintptr_t)0;
        else if (!r->bp_noted) note_word(r->pend, r->bp_at, r->bp);
        r->bp_noted = 1;
    }
    uintptr_t cfa = (cfi_kind(rule) == CFI_CFA_RSP ? r->sp : r->bp) + (uintptr_t)cfi_cfa_off(rule);
    if (cfa <= r->sp || cfa > r->hi || (cfa & 7)) return 0;
    uintptr_t ra_at = cfa + (uintptr_t)cfi_ra_off(rule);
    if (!inside(r, ra_at, cfa)) return 0;
    if (cfi_bp(rule) == CFI_BP_SAVED) {
        uintptr_t bp_at = cfa + (uintptr_t)cfi_bp_off(rule);
        if (!inside(r, bp_at, cfa)) return 0;
        r->bp = *(const uintptr_t *)bp_at; /* noted when a rule uses it */
        r->bp_at = bp_at;
        r->bp_read = 1;
        r->bp_noted = 0;
    } else if (cfi_bp(rule) == CFI_BP_LOST) {
        r->bp_ok = 0;
    }
    r->pc = read_word(r->pend, ra_at);
    r->sp = cfa;
    return 1;
}

/* Through the kernel's signal frame: the interrupted registers are in the
 * saved context at %rsp. */
static int step_signal(regs *r, uint64_t rule)
{
    uintptr_t sp_at = r->sp + (uintptr_t)cfi_cfa_off(rule), pc_at = r->sp + (uintptr_t)cfi_ra_off(rule);
    uintptr_t bp_at = r->sp + (uintptr_t)cfi_bp_off(rule);
    if (!inside(r, sp_at, r->hi) || !inside(r, pc_at, r->hi) ||
        (cfi_bp(rule) == CFI_BP_SAVED && !inside(r, bp_at, r->hi)))
        return 0;
    r->pend->ok = 0; /* not remembered: the walk may continue on another stack */
    uintptr_t nsp = *(const uintptr_t *)sp_at;
    if (nsp > r->sp && nsp < r->hi) {
        /* the interrupted code ran on the same stack, above the handler */
    } else {
        int sure;
        uintptr_t lo, hi = stack_top(nsp, &lo, &sure); /* another stack (the handler ran on a sigaltstack) */
        if (!hi || (nsp >= r->sp && nsp < r->hi)) return 0;
        r->hi = hi;
    }
    r->bp_ok = cfi_bp(rule) == CFI_BP_SAVED;
    r->bp_read = 1;
    if (r->bp_ok) r->bp = *(const uintptr_t *)bp_at;
    r->pc = *(const uintptr_t *)pc_at + 1; /* exact pc, stored like a return address */
    r->sp = nsp;
    return 1;
}

/* The walk, noting what it read in pending. */
static int walk(memo *pending, const uintptr_t *fp, uintptr_t *out, int max)
{
    regs r = { .pc = fp[1], .sp = (uintptr_t)(fp + 2), .bp = fp[0], .bp_ok = 1, .pend = pending };
    int n = 0;
    pending->pc0 = r.pc;
    pending->sp0 = r.sp;
    pending->bp0 = r.bp;
    pending->gen = tracker_cfi_generation();
    pending->nwords = 0;
    pending->bp_mask = 0;
    out[n++] = r.pc; /* the hook's return address: exact */
    uintptr_t lo;
    int sure;
    if (!(r.hi = stack_top(r.sp, &lo, &sure))) { pending->ok = 0; return n; }
    /* A rule-cache miss runs libdw (a few KiB of stack, more for DWARF
     * expressions): not with less than MISS_ROOM left below %rsp (a
     * sigaltstack, a minimum-size thread stack); the walk then ends at
     * the first address without a cached rule. */
    r.sp0 = r.sp;
    r.lo0 = lo;
    r.may_miss = sure ? r.sp - lo >= MISS_ROOM : -1;
    pending->ok = r.sp >= t_lo && r.sp < t_hi;
    uint64_t rule = walk_rule(&r, r.pc - 1);
    while (n < max) {
        unsigned kind = cfi_kind(rule);
        int ok = kind == CFI_CFA_RSP || kind == CFI_CFA_RBP ? step_cfa(&r, rule)
               : kind == CFI_SIGNAL                         ? step_signal(&r, rule)
                                                            : 0;
        if (!ok) break;
        rule = walk_rule(&r, r.pc - 1);
        if (cfi_kind(rule) == CFI_BUSY) pending->ok = 0; /* cut short for now, not for good */
        if (cfi_kind(rule) == CFI_NOT_CODE || cfi_kind(rule) == CFI_BUSY) break;
        out[n++] = r.pc;
    }
    if (cfi_kind(rule) == CFI_BUSY) pending->ok = 0;
    return n;
}

/* A walk for a thread without a memo set: noted in a scratch memo on the
 * stack, out of line so that the common walk's frame does not hold it. */
static __attribute__((noinline)) int walk_scratch(const uintptr_t *fp, uintptr_t *out, int max)
{
    memo scratch;
    return walk(&scratch, fp, out, max);
}

int tracker_stackwalk(void *hook_frame, uintptr_t *out, int max)
{
    memo_set *S = memo_get();
    tracker_cfi_walk_begin();
    int n = S ? walk(&S->pending, hook_frame, out, max) : walk_scratch(hook_frame, out, max);
    tracker_cfi_walk_end();
    return n;
}

void tracker_stackwalk_init(void)
{
    tracker_cfi_init();
    VG_LOCK_CREATE(&pool.lock);
    pool.key_ok = pthread_key_create(&pool.key, memo_release) == 0;
    stack_bounds_init();
}
