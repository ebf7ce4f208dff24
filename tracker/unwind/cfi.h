/* cfi.h - unwind rules per code address (tracker/unwind/cfi.c), the encoding shared with the stack walk. */
#ifndef TRACKER_CFI_H
#define TRACKER_CFI_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vg_annotate.h"

/*
 * A rule is one 64-bit word, how to go from a frame at code address a
 * (a return address minus one, or an exact interrupted pc) to its caller:
 *   bits 0-3   kind (below)
 *   bits 4-5   how %rbp is recovered (CFI_BP_*)
 *   bits 8-15  return address offset / 8, signed
 *   bits 16-23 saved %rbp offset / 8, signed
 *   bits 32-63 CFA offset, signed
 * CFI_CFA_RSP / CFI_CFA_RBP: CFA = %rsp or %rbp + CFA offset; the return
 * address is at CFA + its offset, the saved %rbp (CFI_BP_SAVED) at CFA +
 * its offset; the caller's %rsp is the CFA.
 * CFI_SIGNAL: a - 0 is the kernel's signal trampoline (__restore_rt): %rsp
 * points at the saved context; the caller's %rsp is *(%rsp + CFA offset),
 * its pc *(%rsp + return address offset), exact (not after a call), its
 * %rbp *(%rsp + saved %rbp offset).
 */
enum {
    CFI_NONE = 0,     /* not in the cache (never stored) */
    CFI_STOP = 1,     /* no usable CFI here, or the outermost frame: the stack ends */
    CFI_NOT_CODE = 2, /* the address is in no loaded module: not a return address */
    CFI_BUSY = 3,     /* could not be computed now (lock busy): end the stack (never stored) */
    CFI_CFA_RSP = 4,
    CFI_CFA_RBP = 5,
    CFI_SIGNAL = 6,
};
enum { CFI_BP_SAME = 0, CFI_BP_SAVED = 1, CFI_BP_LOST = 2 };

static inline uint64_t cfi_rule_make(unsigned kind, unsigned bp, int32_t cfa_off, int ra_off8, int bp_off8)
{
    return (uint64_t)kind | (uint64_t)bp << 4 | (uint64_t)(uint8_t)(int8_t)ra_off8 << 8 |
           (uint64_t)(uint8_t)(int8_t)bp_off8 << 16 | (uint64_t)(uint32_t)cfa_off << 32;
}
static inline unsigned cfi_kind(uint64_t r)    { return (unsigned)(r & 15); }
static inline unsigned cfi_bp(uint64_t r)      { return (unsigned)(r >> 4) & 3; }
static inline int64_t cfi_ra_off(uint64_t r)   { return (int64_t)(int8_t)(uint8_t)(r >> 8) * 8; }
static inline int64_t cfi_bp_off(uint64_t r)   { return (int64_t)(int8_t)(uint8_t)(r >> 16) * 8; }
static inline int64_t cfi_cfa_off(uint64_t r)  { return (int64_t)(int32_t)(uint32_t)(r >> 32); }

/* The cache: open addressing, written only under cfi.c's lock (rule
 * first, then the key with a release store), read without any. */
typedef struct rule_slot {
    _Atomic uint64_t key; /* code address, 0 = empty */
    _Atomic uint64_t rule;
} rule_slot;

typedef struct rule_table {
    uint32_t mask;        /* slots - 1 */
    uint32_t count;       /* used slots (under cfi.c's lock) */
    size_t bytes;         /* mapping size */
    rule_slot slot[];
} rule_table;

extern _Atomic(rule_table *) tracker_cfi_rules;

/* Walks running now: a walk that reads rule tables counts itself first
 * (tracker_cfi_walk_begin/end), so replaced tables are unmapped only when
 * none can still be probing one. */
extern _Atomic unsigned tracker_cfi_walkers;
static inline void tracker_cfi_walk_begin(void) { atomic_fetch_add(&tracker_cfi_walkers, 1); }
static inline void tracker_cfi_walk_end(void) { atomic_fetch_sub(&tracker_cfi_walkers, 1); }

static inline uint32_t tracker_cfi_home(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & mask;
}

/* The cached rule for a, or CFI_NONE. Lock-free, no allocation; inline,
 * as the walk does it once a frame. */
static inline uint64_t tracker_cfi_cached(uintptr_t a)
{
    rule_table *t = atomic_load_explicit(&tracker_cfi_rules, memory_order_acquire);
    if (!t) return CFI_NONE;
    for (uint32_t i = tracker_cfi_home(a, t->mask);; i = (i + 1) & t->mask) {
        uint64_t k = atomic_load_explicit(&t->slot[i].key, memory_order_acquire);
        if (k == a) {
            VG_SEEN(&tracker_cfi_rules);
            return atomic_load_explicit(&t->slot[i].rule, memory_order_relaxed);
        }
        if (k == 0) return CFI_NONE;
    }
}

/* Compute (with libdw), cache and return the rule for a; CFI_BUSY when the
 * lock is held by this thread or stays busy. May allocate and open the
 * module's file: call under the tracker's recursion guard. Keeps errno. */
uint64_t tracker_cfi_miss(uintptr_t a);

/* The rule for a: the cache, else a miss. */
static inline uint64_t tracker_cfi_rule(uintptr_t a)
{
    uint64_t r = tracker_cfi_cached(a);
    return r != CFI_NONE ? r : tracker_cfi_miss(a);
}

/* Once, at init: map the rule table, read the module list. */
void tracker_cfi_init(void);

/* Notice modules loaded or unloaded since the last look (not in a hook). */
void tracker_cfi_refresh(void);

/* Changes whenever cached rules are dropped (a module went away): a walk
 * remembered under another generation is not reused. */
extern _Atomic uint32_t tracker_cfi_gen;
static inline uint32_t tracker_cfi_generation(void)
{
    return atomic_load_explicit(&tracker_cfi_gen, memory_order_acquire);
}

/* The loader's counts of objects added and removed so far (dl_phdr_info's
 * dlpi_adds, dlpi_subs) into c[0], c[1]: the module list changed when
 * they did. Also used by symbolize.c. */
void tracker_loader_counts(unsigned long long c[2]);

/* Bytes of rule tables mapped. */
uint64_t tracker_cfi_bytes(void);


#endif /* TRACKER_CFI_H */
