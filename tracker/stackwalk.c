/* stackwalk.c - call stacks from the call-frame information: each step applies the cached CFI rule of its address, inside the bounds of the stack the hook runs on. */

#include "tracker.h"
#include "tracker_internal.h"
#include "cfi.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Every x86-64 ELF module carries .eh_frame: for each code address, where
 * the caller's frame (the CFA) is and where the return address and the
 * saved registers were stored. Debian builds nothing with frame pointers,
 * so that is the only way to get through libc, libstdc++, libgcc_s,
 * libmicrohttpd or a program built with plain -O2. tracker/cfi.c reduces
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
 */

/* This thread's stack [lo, hi); hi = 0: not looked up yet, 1: lookup failed. */
static TRACKER_TLS uintptr_t t_lo, t_hi;
/* The last other stack seen on this thread (coroutine), from /proc/self/maps. */
static TRACKER_TLS uintptr_t o_lo, o_hi;

#define PAGE        4096u
#define OTHER_MAX   (4u << 20) /* read at most this far above %rsp on other stacks */

/* ---- stack bounds ---- */

/* pthread_getattr_np may allocate (for the main thread it reads
 * /proc/self/maps); the caller holds the recursion guard, so those
 * allocations go straight to glibc. */
static void find_thread_stack(void)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    int saved = errno;
    t_hi = 1;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            t_lo = (uintptr_t)addr;
            t_hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
    errno = saved;
}

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

/* Top of the stack holding sp: 0 when it cannot be found. */
static uintptr_t stack_top(uintptr_t sp)
{
    if (!t_hi) find_thread_stack();
    if (sp >= t_lo && sp < t_hi) return t_hi;
    int saved = errno;
    uintptr_t hi = 0;
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) && sp >= (uintptr_t)ss.ss_sp &&
        sp < (uintptr_t)ss.ss_sp + ss.ss_size) {
        hi = (uintptr_t)ss.ss_sp + ss.ss_size;
    } else {
        int known = sp >= o_lo && sp < o_hi;
        uintptr_t cap = (sp & ~(uintptr_t)(PAGE - 1)) + OTHER_MAX;
        if (!known || !mapped(sp, o_hi < cap ? o_hi : cap)) {
            o_lo = o_hi = 0;
            known = maps_find(sp, &o_lo, &o_hi);
        }
        if (known) hi = o_hi < cap ? o_hi : cap;
    }
    errno = saved;
    return hi;
}

void tracker_stackwalk_init(void)
{
    tracker_cfi_init();
    if (!t_hi) find_thread_stack();
}

void tracker_stackwalk_refresh(void)
{
    tracker_cfi_refresh();
}

void tracker_stackwalk_fork_lock(void) { tracker_cfi_fork_lock(); }
void tracker_stackwalk_fork_unlock(void) { tracker_cfi_fork_unlock(); }

/* ---- the walk ---- */

typedef struct regs {
    uintptr_t pc, sp, bp;
    int bp_ok;      /* bp holds the frame's real %rbp */
    uintptr_t hi;   /* top of the stack sp is on */
} regs;

static int inside(const regs *r, uintptr_t at, uintptr_t end)
{
    return at >= r->sp && at + sizeof(uintptr_t) <= end && !(at & 7);
}

/* One normal step: CFA from %rsp or %rbp, return address and %rbp from
 * the frame. Returns 0 when the rule cannot be applied safely. */
static int step_cfa(regs *r, uint64_t rule)
{
    if (cfi_kind(rule) == CFI_CFA_RBP && !r->bp_ok) return 0;
    uintptr_t cfa = (cfi_kind(rule) == CFI_CFA_RSP ? r->sp : r->bp) + (uintptr_t)cfi_cfa_off(rule);
    if (cfa <= r->sp || cfa > r->hi || (cfa & 7)) return 0;
    uintptr_t ra_at = cfa + (uintptr_t)cfi_ra_off(rule);
    if (!inside(r, ra_at, cfa)) return 0;
    if (cfi_bp(rule) == CFI_BP_SAVED) {
        uintptr_t bp_at = cfa + (uintptr_t)cfi_bp_off(rule);
        if (!inside(r, bp_at, cfa)) return 0;
        r->bp = *(const uintptr_t *)bp_at;
    } else if (cfi_bp(rule) == CFI_BP_LOST) {
        r->bp_ok = 0;
    }
    r->pc = *(const uintptr_t *)ra_at;
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
    uintptr_t nsp = *(const uintptr_t *)sp_at;
    if (nsp > r->sp && nsp < r->hi) {
        /* the interrupted code ran on the same stack, above the handler */
    } else {
        uintptr_t hi = stack_top(nsp); /* another stack (the handler ran on a sigaltstack) */
        if (!hi || (nsp >= r->sp && nsp < r->hi)) return 0;
        r->hi = hi;
    }
    r->bp_ok = cfi_bp(rule) == CFI_BP_SAVED;
    if (r->bp_ok) r->bp = *(const uintptr_t *)bp_at;
    r->pc = *(const uintptr_t *)pc_at + 1; /* exact pc, stored like a return address */
    r->sp = nsp;
    return 1;
}

int tracker_stackwalk(void *hook_frame, uintptr_t *out, int max)
{
    const uintptr_t *fp = hook_frame;
    regs r = { .pc = fp[1], .sp = (uintptr_t)(fp + 2), .bp = fp[0], .bp_ok = 1 };
    int n = 0;
    out[n++] = r.pc; /* the hook's return address: exact */
    if (!(r.hi = stack_top(r.sp))) return n;
    uint64_t rule = tracker_cfi_rule(r.pc - 1);
    while (n < max) {
        unsigned kind = cfi_kind(rule);
        int ok = kind == CFI_CFA_RSP || kind == CFI_CFA_RBP ? step_cfa(&r, rule)
               : kind == CFI_SIGNAL                         ? step_signal(&r, rule)
                                                            : 0;
        if (!ok) break;
        rule = tracker_cfi_rule(r.pc - 1);
        if (cfi_kind(rule) == CFI_NOT_CODE || cfi_kind(rule) == CFI_BUSY) break;
        out[n++] = r.pc;
    }
    return n;
}
