/* symtab.c - a module's function symbols sorted by address, looked up by binary search (see symtab.h). */

#include "symtab.h"
#include "tracker_internal.h"

#include <gelf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * libdw's dwfl_module_addrinfo compares every symbol of the module with the
 * address, for each address: slow where modules have thousands of
 * dynamic symbols and no DWARF (perl, libc, libperl; docs/perf.md). Here the function symbols of a module are read once, sorted by
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
    const char **fn_names; /* the defined STT_FUNC symbols' names, in the table's order */
    size_t nfn;
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

/* A stable order of key[0..n) into perm: LSD radix sort on the bytes in
 * which the keys differ (3 or 4 for the addresses of one module), where
 * qsort's calls of a comparison were most of a short program's report.
 * -1 when out of memory. */
static int radix_order(const GElf_Addr *key, uint32_t *perm, size_t n)
{
    uint32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) return -1;
    GElf_Addr differ = 0;
    for (size_t i = 0; i < n; i++) {
        perm[i] = (uint32_t)i;
        differ |= key[i] ^ key[0];
    }
    for (int shift = 0; shift < 64; shift += 8) {
        if (!((differ >> shift) & 0xff)) continue;
        size_t at[257] = { 0 };
        for (size_t i = 0; i < n; i++) at[((key[perm[i]] >> shift) & 0xff) + 1]++;
        for (int d = 0; d < 256; d++) at[d + 1] += at[d];
        for (size_t i = 0; i < n; i++) tmp[at[(key[perm[i]] >> shift) & 0xff]++] = perm[i];
        memcpy(perm, tmp, n * sizeof *perm);
    }
    free(tmp);
    return 0;
}

/* Read mod's symbols into ix: the function ranges (r: one per start, the
 * best alias) and the arrays of no_symbol_at. Each part is left empty
 * when there are no symbols or no memory (lookups then go to libdw). */
static void build(module_index *ix)
{
    int n = dwfl_module_getsymtab(ix->mod);
    Dwfl_Module *mod = ix->mod;
    *ix = (module_index){ .mod = mod };
    if (n <= 1) return;
    /* Every symbol libdw weighs, in the table's order; the functions of
     * size > 0 among them (flag fn) are the ranges. */
    sym_range *all = malloc((size_t)n * sizeof *all);
    GElf_Addr *key = malloc((size_t)n * sizeof *key);
    unsigned char *fn = malloc((size_t)n);
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    const char **fn_names = malloc((size_t)n * sizeof *fn_names);
    size_t k = 0, nfn = 0;
    if (!all || !key || !fn || !perm || !fn_names) {
        free(fn_names);
        goto done;
    }
    for (int i = 1; i < n; i++) {
        GElf_Sym s;
        GElf_Addr a;
        const char *name = dwfl_module_getsym_info(mod, i, &s, &a, NULL, NULL, NULL);
        if (!weighed(name, &s)) continue;
        int type = GELF_ST_TYPE(s.st_info);
        if (type == STT_FUNC) fn_names[nfn++] = name;
        all[k] = (sym_range){ .lo = a, .hi = a + s.st_size, .name = name, .rank = alias_rank(name, &s) };
        fn[k] = s.st_size != 0 && (type == STT_FUNC || type == STT_GNU_IFUNC);
        key[k++] = a;
    }
    /* By start, and at one start by rank, each stably (the table's order
     * among equals, as glibc's merge sort kept it). */
    ix->fn_names = fn_names;
    ix->nfn = nfn;
    if (radix_order(key, perm, k) != 0) goto done;
    for (size_t i = 1; i < k; i++) {
        uint32_t p = perm[i];
        size_t j = i;
        while (j > 0 && all[perm[j - 1]].lo == all[p].lo && all[perm[j - 1]].rank > all[p].rank) {
            perm[j] = perm[j - 1];
            j--;
        }
        perm[j] = p;
    }
    sym_range *r = malloc((k ? k : 1) * sizeof *r);
    GElf_Addr *lo = malloc((k ? k : 1) * sizeof *lo), *reach = malloc((k ? k : 1) * sizeof *reach);
    GElf_Addr *bare = malloc((k ? k : 1) * sizeof *bare);
    if (!r || !lo || !reach || !bare) {
        free(r);
        free(lo);
        free(reach);
        free(bare);
        goto done;
    }
    size_t m = 0, nb = 0;
    GElf_Addr top = 0;
    for (size_t i = 0; i < k; i++) {
        const sym_range *e = &all[perm[i]];
        if (e->hi == e->lo) bare[nb++] = e->lo;
        if (e->hi > top) top = e->hi;
        lo[i] = e->lo;
        reach[i] = top;
        if (!fn[perm[i]]) continue;
        /* One range per start: the best alias (the first), with the
         * largest size any alias gives it. */
        if (m && r[m - 1].lo == e->lo) {
            if (e->hi > r[m - 1].hi) r[m - 1].hi = e->hi;
            continue;
        }
        r[m++] = *e;
    }
    ix->r = r;
    ix->n = m;
    if (!FUNCTION_DESCRIPTORS) {
        ix->lo = lo;
        ix->reach = reach;
        ix->bare = bare;
        ix->nall = k;
        ix->nbare = nb;
        ix->exact = 1;
    } else {
        free(lo);
        free(reach);
        free(bare);
    }
done:
    free(all);
    free(key);
    free(fn);
    free(perm);
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
        free(indexes[i].fn_names);
    }
    nindexes = 0;
}

const char *const *tracker_symtab_functions(Dwfl_Module *mod, size_t *n)
{
    module_index *ix = index_of(mod);
    *n = ix ? ix->nfn : 0;
    return ix && ix->fn_names ? ix->fn_names : NULL;
}
