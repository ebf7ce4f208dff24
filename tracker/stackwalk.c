/* stackwalk.c - call stacks by frame-pointer walk, bounded to the thread's own stack and to loaded code. */

#include "tracker.h"
#include "tracker_internal.h"

#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/*
 * Why frame pointers and not backtrace()/libunwind: glibc's backtrace()
 * costs ~1 us for 8 frames (DWARF CFI unwinding) against ~2-9 ns for this
 * walk, and the tracker runs on every malloc. Our own code is built with
 * -fno-omit-frame-pointer. Debian's libc and libmicrohttpd are not, so
 * through them %rbp may hold anything: every step is checked before it is
 * followed (inside this thread's stack, moving up, aligned) and every
 * return address must fall in a loaded executable segment. A frame that
 * fails a check ends the walk: stacks through such code may be shorter
 * than the truth, never wrong memory reads.
 *
 * Frame 0 (the hook's own return address) is always exact: the hooks are
 * ours and keep a frame pointer.
 */

#define MAX_RANGES 256

typedef struct code_range {
    uintptr_t lo, hi; /* [lo, hi) of one PF_X PT_LOAD segment */
} code_range;

typedef struct range_set {
    int n;                          /* ranges in use, sorted by lo */
    code_range r[MAX_RANGES];
} range_set;

/* A walk that overlaps two refreshes (two captures within its few
 * nanoseconds) could read a set being rewritten: at worst one wrong frame
 * kept or dropped. Return addresses are only compared, never followed, so
 * this can never become a bad memory read. */
static struct {
    range_set ranges[2];          /* refresh fills the one not in use, then flips */
    _Atomic int cur;              /* index of the set hooks read: always complete, sorted */
    pthread_mutex_t refresh_lock; /* one refresh at a time */
    int use_dwarf;                /* TRACKER_UNWIND=dwarf: glibc backtrace(), set at init */
} walker = { .refresh_lock = PTHREAD_MUTEX_INITIALIZER };

/* Top of this thread's stack; 0 = not looked up yet, 1 = lookup failed
 * (walks then stop at frame 0, and the lookup is not retried on every malloc).
 * TLS, so not in walker. */
static TRACKER_TLS uintptr_t stack_hi;

/* ---- loaded code ranges ---- */

static int collect_range(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    range_set *rs = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || rs->n >= MAX_RANGES) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        code_range cr = { lo, lo + ph->p_memsz };
        int j = rs->n++;
        while (j > 0 && rs->r[j - 1].lo > cr.lo) { rs->r[j] = rs->r[j - 1]; j--; }
        rs->r[j] = cr;
    }
    return 0;
}

void tracker_stackwalk_refresh(void)
{
    pthread_mutex_lock(&walker.refresh_lock);
    int next = !atomic_load(&walker.cur);
    walker.ranges[next].n = 0;
    dl_iterate_phdr(collect_range, &walker.ranges[next]);
    atomic_store(&walker.cur, next);
    pthread_mutex_unlock(&walker.refresh_lock);
}

void tracker_stackwalk_fork_lock(void) { pthread_mutex_lock(&walker.refresh_lock); }
void tracker_stackwalk_fork_unlock(void) { pthread_mutex_unlock(&walker.refresh_lock); }

static int in_code(uintptr_t pc)
{
    const range_set *rs = &walker.ranges[atomic_load_explicit(&walker.cur, memory_order_acquire)];
    int lo = 0, hi = rs->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (pc < rs->r[mid].lo) hi = mid - 1;
        else if (pc >= rs->r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

/* ---- this thread's stack ---- */

/* pthread_getattr_np may allocate (for the main thread it reads
 * /proc/self/maps); the caller holds the recursion guard, so those
 * allocations go straight to glibc. */
static uintptr_t find_stack_hi(void)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    uintptr_t hi = 1;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return 1;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) hi = (uintptr_t)addr + size;
    pthread_attr_destroy(&attr);
    return hi;
}

void tracker_stackwalk_init(void)
{
    if (!stack_hi) stack_hi = find_stack_hi();
    const char *mode = getenv("TRACKER_UNWIND");
    if (mode && strcmp(mode, "dwarf") == 0) {
        /* backtrace()'s first call dlopens libgcc_s and allocates: do it
         * now, at init, never for the first time inside a hook. */
        void *warm[4];
        backtrace(warm, 4);
        walker.use_dwarf = 1;
    }
}

/* TRACKER_UNWIND=dwarf: full stacks through code without frame pointers
 * (a program built with plain -O2), at ~1 us per allocation instead of a
 * few ns. backtrace() starts in this file; drop frames up to the hook's. */
static int walk_dwarf(uintptr_t frame0, uintptr_t *out, int max)
{
    void *buf[TRACKER_MAX_FRAMES + 8];
    int n = backtrace(buf, TRACKER_MAX_FRAMES + 8);
    for (int i = 0; i < n; i++) {
        if ((uintptr_t)buf[i] != frame0) continue;
        int k = 0;
        for (; i < n && k < max; i++) out[k++] = (uintptr_t)buf[i];
        return k;
    }
    return 0; /* hook's frame not seen: let the frame-pointer walk answer */
}

int tracker_stackwalk(void *hook_frame, uintptr_t *out, int max)
{
    const uintptr_t *fp = hook_frame;
    uintptr_t lo = (uintptr_t)__builtin_frame_address(0);
    int n = 0;

    out[n++] = fp[1]; /* the hook's return address: exact */
    if (walker.use_dwarf) {
        int k = walk_dwarf(fp[1], out, max);
        if (k > 0) return k;
    }
    if (!stack_hi) stack_hi = find_stack_hi();
    uintptr_t hi = stack_hi;
    /* A hook running on another stack (sigaltstack, coroutines): frame 0 only. */
    if ((uintptr_t)fp < lo || (uintptr_t)fp >= hi) return n;

    uintptr_t next = fp[0];
    while (n < max) {
        /* The caller's frame record must lie above the current one, inside
         * the stack, aligned, with room for {saved fp, return address}. */
        if (next <= (uintptr_t)fp || (next & 7) || next > hi - 2 * sizeof(uintptr_t)) break;
        fp = (const uintptr_t *)next;
        uintptr_t ret = fp[1];
        if (!in_code(ret)) break;
        out[n++] = ret;
        next = fp[0];
    }
    return n;
}
