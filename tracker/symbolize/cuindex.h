/* cuindex.h - a compile unit's functions by address: the inline chain at an address without walking the whole unit, as libdw's dwarf_getscopes does for each address. */
#ifndef TRACKER_CUINDEX_H
#define TRACKER_CUINDEX_H

#include <elfutils/libdw.h>

/* The concrete DIEs around pc (an address of cu's module, bias removed),
 * innermost first: the DW_TAG_inlined_subroutine DIEs down to the
 * innermost that covers pc, then the DW_TAG_subprogram holding them.
 * Returns how many (at most max: the innermost are dropped first), or 0
 * when no function of cu covers pc (the caller then asks libdw). The
 * unit's index is built at its first lookup and kept. Call with the
 * symbolizer's lock held, inside the tracker's recursion guard (the index
 * is malloc'ed). */
int tracker_cu_scopes(Dwarf_Die *cu, Dwarf_Addr pc, Dwarf_Die *out, int max);

/* Forget every index: their units go away with the libdw session. */
void tracker_cu_reset(void);

#endif
