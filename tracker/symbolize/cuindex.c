/* cuindex.c - a compile unit's function DIEs sorted by address, looked up by binary search (see cuindex.h). */

#include "cuindex.h"
#include "tracker_internal.h"

#include <dwarf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * dwarf_getscopes(cu, pc) and dwarf_getscopes_die() find the scopes around
 * an address by walking the unit's DIE tree from its root, for each
 * address: fine for small units, quadratic for big ones (a unit of 10000
 * functions: build/gen/sites10k.c, SQLite's amalgamation, a unity build;
 * docs/perf.md has what that cost). Here a unit's
 * functions (DW_TAG_subprogram with code, also inside namespaces and
 * classes) are read once, one entry per address range, sorted; a lookup is
 * a binary search, then a walk down that one function's DIEs (lexical
 * blocks and inlined subroutines that cover pc) to the innermost.
 */

#define MAX_DEPTH 64 /* nested inlined subroutines followed */

typedef struct fn_range {
    Dwarf_Addr lo, hi; /* [lo, hi) */
    Dwarf_Die die;     /* the subprogram, valid for the session */
} fn_range;

typedef struct cu_index {
    void *cu_addr;     /* the unit's DIE (Dwarf_Die.addr): unique while the session lives */
    fn_range *r;       /* sorted by lo */
    size_t n;
} cu_index;

static cu_index *indexes;
static size_t nindexes, capindexes;

static int by_lo(const void *a, const void *b)
{
    const fn_range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

typedef struct ranges {
    fn_range *r;
    size_t n, cap;
    int failed; /* out of memory: the index stays empty (libdw answers) */
} ranges;

static void add_ranges(ranges *rs, Dwarf_Die *die)
{
    Dwarf_Addr base, lo, hi;
    for (ptrdiff_t off = 0; (off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0;) {
        if (hi <= lo) continue;
        fn_range *r = tracker_grow(rs->r, rs->n, &rs->cap, sizeof *r, 64);
        if (!r) { rs->failed = 1; return; }
        rs->r = r;
        rs->r[rs->n++] = (fn_range){ lo, hi, *die };
    }
}

/* The functions among parent's children, and inside its namespaces and
 * classes (a C++ member function defined in its class). */
static void collect(ranges *rs, Dwarf_Die *parent, int depth)
{
    Dwarf_Die child;
    if (depth > MAX_DEPTH || dwarf_child(parent, &child) != 0) return;
    do {
        switch (dwarf_tag(&child)) {
        case DW_TAG_subprogram: add_ranges(rs, &child); break;
        case DW_TAG_namespace:
        case DW_TAG_module:
        case DW_TAG_class_type:
        case DW_TAG_structure_type:
        case DW_TAG_union_type: collect(rs, &child, depth + 1); break;
        default: break;
        }
    } while (!rs->failed && dwarf_siblingof(&child, &child) == 0);
}

static cu_index *index_of(Dwarf_Die *cu)
{
    for (size_t i = 0; i < nindexes; i++)
        if (indexes[i].cu_addr == cu->addr) return &indexes[i];
    cu_index *grown = tracker_grow(indexes, nindexes, &capindexes, sizeof *grown, 16);
    if (!grown) return NULL;
    indexes = grown;
    ranges rs = { 0 };
    collect(&rs, cu, 0);
    if (rs.failed) {
        free(rs.r);
        rs.r = NULL;
        rs.n = 0;
    }
    if (rs.n) qsort(rs.r, rs.n, sizeof *rs.r, by_lo);
    cu_index *ix = &indexes[nindexes++];
    *ix = (cu_index){ cu->addr, rs.r, rs.n };
    return ix;
}

/* The function of ix covering pc: the last range starting at or below it
 * that ends above it (ranges of one unit do not overlap but for odd
 * DWARF: the nearest few below are tried). */
static const fn_range *function_at(const cu_index *ix, Dwarf_Addr pc)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->r[mid].lo <= pc) lo = mid + 1;
        else hi = mid;
    }
    for (size_t i = lo, tries = 0; i-- > 0 && tries < 4; tries++)
        if (pc < ix->r[i].hi) return &ix->r[i];
    return NULL;
}

int tracker_cu_scopes(Dwarf_Die *cu, Dwarf_Addr pc, Dwarf_Die *out, int max)
{
    if (max < 1) return 0;
    cu_index *ix = index_of(cu);
    const fn_range *f = ix ? function_at(ix, pc) : NULL;
    if (!f) return 0;
    /* Down from the function: outer first, into the child that covers pc. */
    Dwarf_Die chain[MAX_DEPTH + 1];
    int n = 0;
    chain[n++] = f->die;
    Dwarf_Die cur = f->die, child;
    for (int depth = 0; depth < MAX_DEPTH && dwarf_child(&cur, &child) == 0; depth++) {
        int found = 0;
        do {
            int tag = dwarf_tag(&child);
            if ((tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block || tag == DW_TAG_try_block ||
                 tag == DW_TAG_catch_block) && dwarf_haspc(&child, pc) > 0) {
                if (tag == DW_TAG_inlined_subroutine && n <= MAX_DEPTH) chain[n++] = child;
                found = 1;
                break;
            }
        } while (dwarf_siblingof(&child, &child) == 0);
        if (!found) break;
        cur = child;
    }
    /* Innermost first; when too deep, keep the outer ones (the program's own). */
    int k = n < max ? n : max;
    for (int i = 0; i < k; i++) out[i] = chain[k - 1 - i];
    return k;
}

void tracker_cu_reset(void)
{
    for (size_t i = 0; i < nindexes; i++) free(indexes[i].r);
    free(indexes);
    indexes = NULL;
    nindexes = capindexes = 0;
}
