/* cfi.c - unwind rules per code address from the modules' .eh_frame (elfutils libdw), cached in a lock-free table. */

#include "tracker.h"
#include "base.h"
#include "unwind.h"
#include "lockorder.h"
#include "cfi.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * The call-frame information of every module is read by libdw
 * (dwarf_getcfi_elf on the module's file, dwarf_cfi_addrframe per address);
 * libdw does the CIE/FDE parsing and runs the CFA programs. What this file
 * adds is the cache that makes unwinding a lookup: for each code address
 * seen (a return address minus one), libdw's answer is reduced once to a
 * 64-bit rule (cfi.h: CFA = %rsp or %rbp + offset, where the return
 * address and the saved %rbp are) and stored in an open-addressing table
 * allocated with mmap. The hooks read the table without a lock; only a
 * miss takes the lock, asks libdw (which allocates: the caller holds the
 * tracker's recursion guard, so that memory goes straight to glibc) and
 * publishes the rule with a release store.
 *
 * Modules come from dl_iterate_phdr. Each miss first compares the loader's
 * adds/subs counters with the ones the module list was built from, so code
 * dlopen'ed a moment ago is unwound from its first allocation; when a
 * module went away (subs moved) the whole rule table is replaced, since
 * another library may now be mapped at its addresses. A rule cached for
 * a library that was dlclose'd and replaced at the same address by one
 * whose first call site is at exactly the same return address would be
 * used once, until the next miss or report notices: a window we accept.
 *
 * Module files are opened only while libdw maps them (fd closed at once,
 * with O_CLOEXEC); errno is kept for the program.
 */

#define MAX_SEGS     512        /* executable segments of loaded modules */
#define RULES_MIN    (1u << 11) /* first rule table, slots (grows at load 1/2) */
#define TRY_ROUNDS   4000       /* waits for another thread's miss (sched_yield each) */

typedef struct module module;
struct module {
    uintptr_t bias;       /* dlpi_addr */
    char *path;           /* file to open; NULL: the vDSO (read from memory) */
    int state;            /* 0 = CFI not loaded yet, 1 = loaded, -1 = none */
    Elf *elf;
    Dwarf_CFI *cfi;
    void *image;          /* vDSO copy given to elf_memory, or NULL */
    int seen;             /* refresh: still loaded */
};

typedef struct seg {
    uintptr_t lo, hi;     /* [lo, hi) of one PF_X PT_LOAD segment */
    module *mod;
} seg;

static struct {
    pthread_mutex_t lock;             /* misses, module list, refresh */
    seg segs[MAX_SEGS];               /* sorted by lo; under lock */
    int nsegs;
    module **mods;                    /* malloc'ed array of malloc'ed modules */
    int nmods, capmods;
    unsigned long long adds, subs;    /* loader counters the list was built from */
    int have_counters;
    _Atomic uint64_t bytes;           /* rule tables, for the bookkeeping total */
    uint32_t not_code;                /* CFI_NOT_CODE rules in the current table */
} C = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The current rule table (cfi.h). A table replaced (grown, or emptied
 * after a dlclose) is retired, and unmapped at a later replacement or
 * refresh when no walk is running (tracker_cfi_walkers: a walk counts
 * itself before it loads the table pointer), so dlopen/dlclose cycles do
 * not pile up tables. */
_Atomic(rule_table *) tracker_cfi_rules;
_Atomic unsigned tracker_cfi_walkers;
#define RETIRED_MAX 64
static rule_table *retired[RETIRED_MAX];
static int nretired;
static int in_miss; /* under C.lock: the holder is a walk (it counts in tracker_cfi_walkers) */
static void *module_cfi(module *m);

/* Unmap the retired tables if no walk can still be probing one. */
static void reclaim_unlocked(void)
{
    if (!nretired || atomic_load(&tracker_cfi_walkers) != (unsigned)in_miss) return;
    for (int i = 0; i < nretired; i++) {
        atomic_fetch_sub(&C.bytes, retired[i]->bytes);
        munmap(retired[i], retired[i]->bytes);
    }
    nretired = 0;
}

/* Publish nt as the current table; the old one is retired (kept mapped
 * for good when the list is full: a leak, never a fault). */
static void replace_unlocked(rule_table *old, rule_table *nt)
{
    atomic_store(&tracker_cfi_rules, nt);
    if (old && nretired < RETIRED_MAX) retired[nretired++] = old;
    reclaim_unlocked();
}

/* Bumped when a rule table is replaced by an empty one (cfi.h). */
_Atomic uint32_t tracker_cfi_gen;

/* This thread holds C.lock (a signal handler that lands in a miss must not wait for itself). */
static TRACKER_TLS int holding;

/* ---- rule table ---- */

static rule_table *table_new(uint32_t slots)
{
    size_t bytes = sizeof(rule_table) + (size_t)slots * sizeof(rule_slot);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    rule_table *t = p;
    VG_ATOMIC_RANGE(t->slot, (size_t)slots * sizeof(rule_slot));
    t->mask = slots - 1;
    t->bytes = bytes;
    atomic_fetch_add(&C.bytes, bytes);
    return t;
}

static void table_put_unlocked(rule_table *t, uint64_t key, uint64_t rule)
{
    uint32_t i = tracker_cfi_home(key, t->mask);
    while (atomic_load_explicit(&t->slot[i].key, memory_order_relaxed)) i = (i + 1) & t->mask;
    atomic_store_explicit(&t->slot[i].rule, rule, memory_order_relaxed);
    VG_PUBLISH(&tracker_cfi_rules);
    atomic_store_explicit(&t->slot[i].key, key, memory_order_release);
    t->count++;
}

/* Add a rule; doubles the table at load 1/2 (readers switch to the new
 * one; the old one stays mapped for the walks still probing it). */
static void cache_put_unlocked(uint64_t key, uint64_t rule)
{
    rule_table *t = atomic_load_explicit(&tracker_cfi_rules, memory_order_relaxed);
    if (!t) return;
    if ((t->count + 1) * 2 > t->mask + 1) {
        rule_table *nt = t->mask + 1 < (1u << 26) ? table_new((t->mask + 1) * 2) : NULL;
        if (!nt) return; /* no room: this address is computed again next time */
        for (uint32_t i = 0; i <= t->mask; i++) {
            uint64_t k = atomic_load_explicit(&t->slot[i].key, memory_order_relaxed);
            if (k) table_put_unlocked(nt, k, atomic_load_explicit(&t->slot[i].rule, memory_order_relaxed));
        }
        replace_unlocked(t, nt);
        t = nt;
    }
    table_put_unlocked(t, key, rule);
    if (cfi_kind(rule) == CFI_NOT_CODE) C.not_code++;
}

/* ---- modules ---- */

static void module_drop(module *m)
{
    if (m->cfi) dwarf_cfi_end(m->cfi);
    if (m->elf) elf_end(m->elf);
    free(m->image);
    free(m->path);
    free(m);
}

static int is_vdso(const struct dl_phdr_info *info)
{
    uintptr_t vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    for (int i = 0; vdso && i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD && info->dlpi_addr + info->dlpi_phdr[i].p_vaddr == vdso)
            return 1;
    return 0;
}

static module *module_find_or_add(const struct dl_phdr_info *info)
{
    int vdso = is_vdso(info);
    const char *path = vdso ? NULL : (info->dlpi_name && info->dlpi_name[0]) ? info->dlpi_name : "/proc/self/exe";
    for (int i = 0; i < C.nmods; i++) {
        module *m = C.mods[i];
        if (m->bias == info->dlpi_addr && ((!path && !m->path) || (path && m->path && strcmp(path, m->path) == 0)))
            return m;
    }
    if (C.nmods == C.capmods) {
        int cap = C.capmods ? C.capmods * 2 : 64;
        module **nm = realloc(C.mods, (size_t)cap * sizeof *nm);
        if (!nm) return NULL;
        C.mods = nm;
        C.capmods = cap;
    }
    module *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->bias = info->dlpi_addr;
    if (path && !(m->path = strdup(path))) { free(m); return NULL; }
    C.mods[C.nmods++] = m;
    return m;
}

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    if (!C.have_counters) {
        C.adds = info->dlpi_adds;
        C.subs = info->dlpi_subs;
        C.have_counters = 1;
    }
    module *m = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || C.nsegs >= MAX_SEGS) continue;
        if (!m && !(m = module_find_or_add(info))) return 0;
        m->seen = 1;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        seg s = { lo, lo + ph->p_memsz, m };
        int j = C.nsegs++;
        while (j > 0 && C.segs[j - 1].lo > s.lo) { C.segs[j] = C.segs[j - 1]; j--; }
        C.segs[j] = s;
    }
    return 0;
}

static int read_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    unsigned long long *c = arg;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1; /* the counters are the same in every entry: stop at the first */
}

void tracker_loader_counts(unsigned long long c[2])
{
    c[0] = c[1] = 0;
    dl_iterate_phdr(read_counters, c);
}

/* Rebuild the module list when the loader's counters moved since it was
 * built. A module gone (subs moved) also empties the rule cache, and so
 * does a module added while addresses are cached as "in no module" (code
 * may now be mapped there). */
static void refresh_unlocked(void)
{
    unsigned long long c[2];
    tracker_loader_counts(c);
    if (C.have_counters && c[0] == C.adds && c[1] == C.subs) return;
    int gone = C.have_counters && (c[1] != C.subs || C.not_code);
    for (int i = 0; i < C.nmods; i++) C.mods[i]->seen = 0;
    C.nsegs = 0;
    C.have_counters = 0;
    dl_iterate_phdr(collect, NULL);
    int k = 0;
    for (int i = 0; i < C.nmods; i++) {
        if (C.mods[i]->seen) C.mods[k++] = C.mods[i];
        else module_drop(C.mods[i]);
    }
    C.nmods = k;
    if (gone) {
        rule_table *nt = table_new(RULES_MIN);
        if (nt) {
            C.not_code = 0;
            replace_unlocked(atomic_load(&tracker_cfi_rules), nt);
            atomic_fetch_add_explicit(&tracker_cfi_gen, 1, memory_order_release);
        }
    }
    reclaim_unlocked();
    /* Every module's CFI opened now, at start-up or after the program's
     * own dlopen, not at a later miss: a program that forbids open() in a
     * seccomp filter after its start still gets its stacks. */
    for (int i = 0; i < C.nmods; i++) module_cfi(C.mods[i]);
}

static module *module_at(uintptr_t addr)
{
    int lo = 0, hi = C.nsegs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (addr < C.segs[mid].lo) hi = mid - 1;
        else if (addr >= C.segs[mid].hi) lo = mid + 1;
        else return C.segs[mid].mod;
    }
    return NULL;
}

/* Open the module's CFI with libdw, once. */
static void *module_cfi(module *m)
{
    if (m->state) return m->state > 0 ? m->cfi : NULL;
    m->state = -1;
    if (m->path) {
        int fd = open(m->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return NULL;
        m->elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (m->elf) elf_cntl(m->elf, ELF_C_FDDONE); /* mapped: the fd is not needed any more */
        close(fd);
    } else {
        /* The vDSO has no file: copy its image (one or two pages) and read that. */
        const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)getauxval(AT_SYSINFO_EHDR);
        const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
        size_t size = 0;
        for (int i = 0; i < eh->e_phnum; i++)
            if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > size) size = ph[i].p_offset + ph[i].p_filesz;
        if (size < eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize) size = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
        if (!(m->image = malloc(size))) return NULL;
        memcpy(m->image, eh, size);
        m->elf = elf_memory(m->image, size);
    }
    if (!m->elf || !(m->cfi = dwarf_getcfi_elf(m->elf))) return NULL;
    m->state = 1;
    return m->cfi;
}

/* ---- libdw's frame state -> rule ---- */

#define REG_RBP 6
#define REG_RSP 7
#define REG_RA  16

/* An "at CFA + n" location ([DW_OP_call_frame_cfa, DW_OP_plus_uconst n]
 * as libdw spells offset(n)). Returns 1 with *off, 0 for anything else. */
static int cfa_plus(const Dwarf_Op *op, size_t n, int64_t *off)
{
    if (n == 1 && op[0].atom == DW_OP_call_frame_cfa) { *off = 0; return 1; }
    if (n != 2 || op[0].atom != DW_OP_call_frame_cfa || op[1].atom != DW_OP_plus_uconst) return 0;
    *off = (int64_t)op[1].number;
    return 1;
}

/* The kernel's signal frame as glibc's __restore_rt describes it:
 * CFA = *(%rsp + a), register = *(%rsp + b). Returns 1 with *off = b. */
static int sp_slot(const Dwarf_Op *op, size_t n, int64_t *off)
{
    if (n != 2 || op[0].atom != DW_OP_call_frame_cfa || op[1].atom != DW_OP_breg7) return 0;
    *off = (int64_t)op[1].number;
    return 1;
}

static int fits8(int64_t off)  { return off % 8 == 0 && off / 8 >= -128 && off / 8 <= 127; }
static int fits32(int64_t off) { return off >= INT32_MIN && off <= INT32_MAX; }

static uint64_t rule_of(Dwarf_Frame *f)
{
    Dwarf_Addr start, end;
    bool sig = false;
    Dwarf_Op mem[3], *op;
    size_t n;
    int64_t cfa_off, ra_off, bp_off = 0;
    unsigned kind, bp_kind;

    if (dwarf_frame_info(f, &start, &end, &sig) != REG_RA) return CFI_STOP;
    if (dwarf_frame_cfa(f, &op, &n) != 0) return CFI_STOP;
    if (sig) {
        if (n != 2 || op[0].atom != DW_OP_breg7 || op[1].atom != DW_OP_deref) return CFI_STOP;
        kind = CFI_SIGNAL;
        cfa_off = (int64_t)op[0].number;
    } else if (n == 1 && op[0].atom == DW_OP_bregx && (op[0].number == REG_RSP || op[0].number == REG_RBP)) {
        kind = op[0].number == REG_RSP ? CFI_CFA_RSP : CFI_CFA_RBP;
        cfa_off = (int64_t)op[0].number2;
    } else if (n == 1 && (op[0].atom == DW_OP_breg7 || op[0].atom == DW_OP_breg6)) {
        kind = op[0].atom == DW_OP_breg7 ? CFI_CFA_RSP : CFI_CFA_RBP;
        cfa_off = (int64_t)op[0].number;
    } else {
        return CFI_STOP; /* CFA from another register or an expression: not followed */
    }
    if (!fits32(cfa_off)) return CFI_STOP;

    /* The return address: undefined marks the outermost frame (_start,
     * clone, a makecontext entry): the stack ends here. */
    if (dwarf_frame_register(f, REG_RA, mem, &op, &n) != 0) return CFI_STOP;
    if (!(sig ? sp_slot(op, n, &ra_off) : cfa_plus(op, n, &ra_off)) || !fits8(ra_off)) return CFI_STOP;

    /* %rbp: unchanged, saved in the frame, or lost (later frames whose CFA
     * is %rbp-based then end the walk). */
    if (dwarf_frame_register(f, REG_RBP, mem, &op, &n) != 0) return CFI_STOP;
    if (n == 0 && op == NULL) bp_kind = CFI_BP_SAME;
    else if ((sig ? sp_slot(op, n, &bp_off) : cfa_plus(op, n, &bp_off)) && fits8(bp_off)) bp_kind = CFI_BP_SAVED;
    else bp_kind = CFI_BP_LOST;

    return cfi_rule_make(kind, bp_kind, (int32_t)cfa_off, (int)(ra_off / 8), (int)(bp_off / 8));
}

static uint64_t compute_unlocked(uintptr_t addr)
{
    refresh_unlocked();
    module *m = module_at(addr);
    if (!m) return CFI_NOT_CODE;
    Dwarf_CFI *cfi = module_cfi(m);
    if (!cfi) return CFI_STOP;
    Dwarf_Frame *f = NULL;
    if (dwarf_cfi_addrframe(cfi, addr - m->bias, &f) != 0) return CFI_STOP; /* no FDE covers it */
    uint64_t r = rule_of(f);
    free(f);
    return r;
}

/* Take C.lock unless this thread already holds it; wait for another
 * thread's miss a bounded time (a few ms at most), never forever. */
static int lock_bounded(void)
{
    if (tracker_in_fork) return 1; /* the fork handlers hold it for this thread */
    if (holding) return 0;
    for (int i = 0; i < TRY_ROUNDS; i++) {
        if (pthread_mutex_trylock(&C.lock) == 0) { holding = 1; lock_order_take(LOCK_CFI); return 1; }
        sched_yield();
    }
    return 0;
}

static void unlock(void)
{
    if (tracker_in_fork) return;
    holding = 0;
    tracker_unlock(&C.lock, LOCK_CFI);
}

uint64_t tracker_cfi_miss(uintptr_t addr)
{
    if (!atomic_load_explicit(&tracker_cfi_rules, memory_order_acquire) || !lock_bounded()) return CFI_BUSY;
    int saved = errno;
    uint64_t r = tracker_cfi_cached(addr);
    if (r == CFI_NONE) {
        in_miss = 1;
        int g = tracker_internal_enter(); /* libdw's memory: the tracker's own heap */
        r = compute_unlocked(addr);
        tracker_internal_leave(g);
        cache_put_unlocked(addr, r);
        in_miss = 0;
    }
    unlock();
    errno = saved;
    return r;
}

void tracker_cfi_init(void)
{
    tracker_fork_register_mutex(LOCK_CFI, &C.lock);
    elf_version(EV_CURRENT);
    tracker_lock(&C.lock, LOCK_CFI);
    if (!atomic_load(&tracker_cfi_rules)) atomic_store(&tracker_cfi_rules, table_new(RULES_MIN));
    refresh_unlocked();
    tracker_unlock(&C.lock, LOCK_CFI);
}

void tracker_cfi_refresh(void)
{
    int g = tracker_internal_enter();
    tracker_lock(&C.lock, LOCK_CFI);
    refresh_unlocked();
    tracker_unlock(&C.lock, LOCK_CFI);
    tracker_internal_leave(g);
}

uint64_t tracker_cfi_bytes(void)
{
    return atomic_load(&C.bytes);
}

