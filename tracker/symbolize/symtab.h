/* symtab.h - a module's function symbols sorted by address: the name of the function holding an address in O(log n), where libdw scans the whole table for each address. */
#ifndef TRACKER_SYMTAB_H
#define TRACKER_SYMTAB_H

#include <elfutils/libdwfl.h>

/* The symbol-table name of the function holding addr, of its aliases the
 * one a program calls (public binding, fewest leading underscores), as
 * libdw spells it (maybe "name@@VERSION"); NULL when no symbol holds it.
 * From the module's index (built at its first lookup) when a sized
 * function symbol covers addr there, or when the index is sure libdw's
 * scan would find no symbol at all; else from libdw's scan. Call with the
 * symbolizer's lock held, inside the tracker's recursion guard (the index
 * is malloc'ed). *start (when not NULL) receives the function's first
 * address, for "function+0x1c" names of frames without a line. */
const char *tracker_symtab_name(Dwfl_Module *mod, Dwarf_Addr addr, GElf_Addr *start);

/* The names of mod's defined function symbols (STT_FUNC), in the symbol
 * table's order (*n of them), from its index: the index is built on the
 * way, so a scan by name costs no second pass through libdw. NULL when
 * the index could not keep them (out of memory): read the table then. */
const char *const *tracker_symtab_functions(Dwfl_Module *mod, size_t *n);

/* Forget every index: their modules go away with the libdw session. */
void tracker_symtab_reset(void);

#endif
