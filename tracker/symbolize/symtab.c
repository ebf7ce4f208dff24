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

/* Read mod's function symbols into ix (n = 0 when there are none or no memory). */
static void build(module_index *ix)
{
    int n = dwfl_module_getsymtab(ix->mod);
    ix->r = NULL;
    ix->n = 0;
    if (n <= 1) return;
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
static const char *indexed_name(Dwfl_Module *mod, Dwarf_Addr addr, GElf_Addr *start)
{
    module_index *ix = index_of(mod);
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
    const char *name = indexed_name(mod, addr, start);
    return name ? name : scanned_name(mod, addr, start);
}

void tracker_symtab_reset(void)
{
    for (size_t i = 0; i < nindexes; i++) free(indexes[i].r);
    nindexes = 0;
}
