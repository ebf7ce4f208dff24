/* symtab.c - a module's function symbols sorted by address, looked up by binary search (see symtab.h). */

#include "symtab.h"
#include "tracker_internal.h"

#include <gelf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * libdw's dwfl_module_addrinfo compares every symbol of the module with the
 * address, for each address: a report of perl's 457 stacks spent ~25 ms
 * there (perl, libc and libperl have thousands of dynamic symbols and no
 * DWARF). Here the function symbols of a module are read once, sorted by
 * start, one entry per start (the best alias), and each lookup is a binary
 * search. Only an answer the index is sure of is given: the function
 * starting last at or below the address, when its size covers it. Anything
 * else (symbols of size 0, nested ranges) goes back to libdw, as before.
 *
 * Most addresses the index cannot name are in a static function of a
 * stripped program (bash, gcc's cc1: "+0x4e5d2"), where libdw's scan, for
 * each one, finds nothing after reading every symbol and, for each symbol
 * of size 0, the section headers. That "nothing" is certain from the index
 * too (no_symbol_at), so libdw is asked only where it may find a name.
 */

typedef struct sym_range {
    GElf_Addr lo, hi;  /* [lo, hi): the function's code, as libdw places it */
    const char *name;  /* libdw's string, valid for the session */
    int rank;          /* alias_rank: lower is the name a program calls */
} sym_range;

typedef struct module_index {
    Dwfl_Module *mod;
    sym_range *r;      /* sorted by lo, one per lo */
    size_t n;
    /* Every symbol libdw's scan weighs (below), for no_symbol_at: */
    GElf_Addr *lo, *reach; /* starts, sorted; reach[i]: the highest end of lo[0..i]'s symbols */
    size_t nall;
    GElf_Addr *bare;       /* starts of the symbols of size 0, sorted */
    size_t nbare;
    int exact;             /* 0: values libdw may move (function descriptors): no_symbol_at is never sure */
} module_index;

static module_index *indexes;
static size_t nindexes, capindexes;

/* Leading underscores of a symbol name, plus 8 for a local symbol. */
static int alias_rank(const char *name, const GElf_Sym *sym)
{
    int r = GELF_ST_BIND(sym->st_info) == STB_LOCAL ? 8 : 0;
    while (*name == '_') { name++; r++; }
    return r;
}

static int by_start_then_rank(const void *a, const void *b)
{
    const sym_range *x = a, *y = b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

typedef struct span {
    GElf_Addr lo, hi;
} span;

static int by_lo(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* A symbol dwfl_module_addrinfo weighs for an address at or above its
 * value: named, defined, not a section, file or TLS symbol (elfutils'
 * search_table). Its value is what dwfl_module_getsym_info gives, as
 * there. */
static int weighed(const char *name, const GElf_Sym *s)
{
    int type = GELF_ST_TYPE(s->st_info);
    return name && *name && s->st_shndx != SHN_UNDEF && type != STT_SECTION && type != STT_FILE && type != STT_TLS;
}

/* Where a function symbol's value is a descriptor libdw resolves to the
 * code (ppc64 ELFv1, ia64, parisc), it also weighs the value unresolved:
 * no_symbol_at is then never sure. */
#if defined(__powerpc64__) || defined(__ia64__) || defined(__hppa__)
#define FUNCTION_DESCRIPTORS 1
#else
#define FUNCTION_DESCRIPTORS 0
#endif

/* The arrays of no_symbol_at from the n symbols of ix->mod (none when out
 * of memory: then it is never sure). */
static void build_all(module_index *ix, int n)
{
    span *sp = malloc((size_t)n * sizeof *sp);
    GElf_Addr *lo = malloc((size_t)n * sizeof *lo), *reach = malloc((size_t)n * sizeof *reach);
    GElf_Addr *bare = malloc((size_t)n * sizeof *bare);
    size_t k = 0, nb = 0;
    if (!sp || !lo || !reach || !bare || FUNCTION_DESCRIPTORS) {
        free(lo);
        free(reach);
        free(bare);
        free(sp);
        return;
    }
    for (int i = 1; i < n; i++) {
        GElf_Sym s;
        GElf_Addr a;
        const char *name = dwfl_module_getsym_info(ix->mod, i, &s, &a, NULL, NULL, NULL);
        if (weighed(name, &s)) sp[k++] = (span){ a, a + s.st_size };
    }
    qsort(sp, k, sizeof *sp, by_lo);
    GElf_Addr top = 0;
    for (size_t i = 0; i < k; i++) {
        if (sp[i].hi == sp[i].lo) bare[nb++] = sp[i].lo; /* sorted, as sp is */
        if (sp[i].hi > top) top = sp[i].hi;
        lo[i] = sp[i].lo;
        reach[i] = top;
    }
    free(sp);
    ix->lo = lo;
    ix->reach = reach;
    ix->bare = bare;
    ix->nall = k;
    ix->nbare = nb;
    ix->exact = 1;
}

/* Index of the last entry of a[0..n) at or below addr, or n when none is. */
static size_t last_at_or_below(const GElf_Addr *a, size_t n, GElf_Addr addr)
{
    if (!n || a[0] > addr) return n;
    size_t lo = 0, hi = n; /* the answer lies in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] <= addr) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* 1 when libdw's scan is sure to name nothing at addr. It takes a symbol
 * of size > 0 that covers addr, else one of size 0 at or below addr that
 * no symbol below addr reaches past (its "min_label": the highest end of
 * the symbols at or below addr, a symbol of size 0 ending where it
 * starts). So when no symbol at or below addr reaches past it and none of
 * size 0 starts at that highest end, it names nothing. */
static int no_symbol_at(const module_index *ix, GElf_Addr addr)
{
    if (!ix->exact) return 0;
    size_t i = last_at_or_below(ix->lo, ix->nall, addr);
    if (i == ix->nall) return 1; /* no symbol at or below addr */
    GElf_Addr top = ix->reach[i];
    if (top > addr) return 0; /* a symbol covers addr */
    size_t b = last_at_or_below(ix->bare, ix->nbare, top);
    return b == ix->nbare || ix->bare[b] != top;
}

/* Read mod's function symbols into ix (n = 0 when there are none or no memory). */
static void build(module_index *ix)
{
    int n = dwfl_module_getsymtab(ix->mod);
    Dwfl_Module *mod = ix->mod;
    *ix = (module_index){ .mod = mod };
    if (n <= 1) return;
    build_all(ix, n);
    sym_range *r = malloc((size_t)n * sizeof *r);
    if (!r) return;
    size_t k = 0;
    for (int i = 1; i < n; i++) {
        GElf_Sym s;
        GElf_Addr a;
        const char *name = dwfl_module_getsym_info(ix->mod, i, &s, &a, NULL, NULL, NULL);
        int type = GELF_ST_TYPE(s.st_info);
        if (!name || !*name || s.st_shndx == SHN_UNDEF || s.st_size == 0 || (type != STT_FUNC && type != STT_GNU_IFUNC))
            continue;
        r[k++] = (sym_range){ .lo = a, .hi = a + s.st_size, .name = name, .rank = alias_rank(name, &s) };
    }
    qsort(r, k, sizeof *r, by_start_then_rank);
    /* One entry per start: the best alias (first after the sort), with the
     * largest size any alias gives it. */
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (m && r[m - 1].lo == r[i].lo) {
            if (r[i].hi > r[m - 1].hi) r[m - 1].hi = r[i].hi;
            continue;
        }
        r[m++] = r[i];
    }
    ix->r = r;
    ix->n = m;
}

static module_index *index_of(Dwfl_Module *mod)
{
    for (size_t i = 0; i < nindexes; i++)
        if (indexes[i].mod == mod) return &indexes[i];
    module_index *grown = tracker_grow(indexes, nindexes, &capindexes, sizeof *grown, 16);
    if (!grown) return NULL;
    indexes = grown;
    module_index *ix = &indexes[nindexes++];
    ix->mod = mod;
    build(ix);
    return ix;
}

/* The index's answer, or NULL when it is not sure; *start: where the function begins. */
static const char *indexed_name(module_index *ix, Dwarf_Addr addr, GElf_Addr *start)
{
    if (!ix || !ix->n || addr < ix->r[0].lo) return NULL;
    size_t lo = 0, hi = ix->n; /* the last entry with r.lo <= addr lies in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->r[mid].lo <= addr) lo = mid;
        else hi = mid;
    }
    /* Nested ranges (a larger symbol around a smaller one) are left to libdw. */
    if (addr >= ix->r[lo].hi || (lo > 0 && ix->r[lo - 1].hi > ix->r[lo].lo)) return NULL;
    *start = ix->r[lo].lo;
    return ix->r[lo].name;
}

/* libdw's answer: its symbol for addr (a scan of the table), then of the
 * aliases at the same address and of the same type the best one (another
 * scan, skipped when libdw's is already the best). */
static const char *scanned_name(Dwfl_Module *mod, Dwarf_Addr addr, GElf_Addr *start)
{
    GElf_Sym sym;
    GElf_Off off;
    const char *best = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
    if (!best) return NULL;
    GElf_Addr entry = addr - off;
    *start = entry;
    int rank = alias_rank(best, &sym), n = dwfl_module_getsymtab(mod);
    for (int i = 1; i < n && rank > 0; i++) {
        GElf_Sym s;
        GElf_Addr a;
        const char *name = dwfl_module_getsym_info(mod, i, &s, &a, NULL, NULL, NULL);
        if (!name || !*name || a != entry || GELF_ST_TYPE(s.st_info) != GELF_ST_TYPE(sym.st_info)) continue;
        int r = alias_rank(name, &s);
        if (r < rank) { best = name; rank = r; }
    }
    return best;
}

const char *tracker_symtab_name(Dwfl_Module *mod, Dwarf_Addr addr, GElf_Addr *start)
{
    GElf_Addr ignored;
    if (!start) start = &ignored;
    module_index *ix = index_of(mod);
    const char *name = indexed_name(ix, addr, start);
    if (name || (ix && no_symbol_at(ix, addr))) return name;
    return scanned_name(mod, addr, start);
}

void tracker_symtab_reset(void)
{
    for (size_t i = 0; i < nindexes; i++) {
        free(indexes[i].r);
        free(indexes[i].lo);
        free(indexes[i].reach);
        free(indexes[i].bare);
    }
    nindexes = 0;
}
