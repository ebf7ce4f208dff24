/* retention.h - the retention scan's internals shared by retention.c and its report (retention_report.c): the child's wire format. */
#ifndef TRACKER_RETENTION_INTERNAL_H
#define TRACKER_RETENTION_INTERNAL_H

#include "tracker.h"

#include <stddef.h>
#include <stdint.h>

/*
 * The scan runs in a copy-on-write child (retention.c) and sends back
 * aggregates, never per-block data: one ret_wire_head, then nsites
 * ret_wire_site, then npairs ret_wire_pair. Sites are keys the parent
 * chose before the clone (an index into its list of site names), or
 * RET_LATE_SITE | stack id for a stack interned after it.
 */

#define RET_MAGIC 0x52455431u /* "RET1" */
#define RET_LATE_SITE 0x80000000u

/* Who keeps a reachable block alive: its nearest dominator of another
 * site (retention.c explains the choice), by kind. */
enum ret_owner_kind {
    RET_OWN_SITE = 1,  /* value: a site key (a block of that site) */
    RET_OWN_DATA = 2,  /* value: the address of a word in a module's data/bss */
    RET_OWN_STACK = 3, /* value: index of the thread (ret_wire_head.tids) */
    RET_OWN_TLS = 4,   /* value: 0, the main thread's static TLS */
    RET_OWN_MULTI = 5  /* value: 0, reached from several roots: none dominates */
};
#define RET_OWNER(kind, value) ((uint64_t)(kind) << 56 | ((uint64_t)(value) & ((1ULL << 56) - 1)))
#define RET_OWNER_KIND(o) ((int)((o) >> 56))
#define RET_OWNER_VALUE(o) ((o) & ((1ULL << 56) - 1))

#define RET_MAX_THREADS 256 /* threads whose stacks are scanned from their stack pointer */

typedef struct ret_wire_head {
    uint32_t magic;
    uint32_t nsites, npairs;
    int32_t failed;              /* 0, or the child's reason code (ret_child_reason) */
    uint64_t blocks, bytes;      /* live recorded blocks found, their bytes */
    uint64_t table_blocks;       /* of those, from the address table */
    uint64_t heap_bytes_read;    /* bytes of heap mappings read to find the blocks */
    uint64_t data_bytes, stack_bytes, tls_bytes; /* root bytes scanned */
    uint32_t data_ranges, stacks, stacks_exact, stacks_whole;
    uint64_t edges;              /* pointers between blocks (and from roots) followed */
    uint64_t interior_blocks;    /* reachable blocks reached only by interior pointers */
    double enum_ms, mark_ms, dom_ms; /* the child's phases */
    uint64_t child_private_kb;   /* the child's own pages at its end (smaps_rollup Private_*):
                                    its arrays, and the pages the program wrote since the clone */
} ret_wire_head;

typedef struct ret_wire_site {
    uint32_t site;
    uint32_t unused;
    uint64_t blocks, bytes;
    uint64_t direct_blocks, direct_bytes;     /* unreachable, nothing unreachable points at them */
    uint64_t indirect_blocks, indirect_bytes; /* unreachable, pointed at by other unreachable blocks */
    uint64_t reachable_blocks, reachable_bytes;
    uint64_t interior_blocks;                 /* reachable only through interior pointers */
} ret_wire_site;

typedef struct ret_wire_pair {
    uint32_t site;   /* the held blocks' site */
    uint32_t unused;
    uint64_t owner;  /* RET_OWNER(...) */
    uint64_t blocks, bytes;
} ret_wire_pair;

/* The child's reasons for giving up. */
enum ret_child_reason {
    RET_FAIL_NONE = 0,
    RET_FAIL_MEMORY = 1, /* its own mmap failed */
    RET_FAIL_MAPS = 2,   /* /proc/self/maps unreadable */
    RET_FAIL_PARENT = 3  /* the parent's message did not come */
};

/* retention_objects.c: the extents of the sized global objects in the
 * modules' writable segments, sorted, not overlapping (malloc'ed; *n of
 * them). Parent only: libelf allocates. */
typedef struct ret_object { uintptr_t lo, hi; } ret_object;
ret_object *tracker_retention_objects(size_t *n);

/* tracker.c (its retention block): the address table's locks, all held
 * (1) or released (0); and every block of the table, read without its
 * locks (by a caller that holds them, or a child with no other thread). */
void tracker_table_lock_all(int lock);
size_t tracker_table_each(void (*fn)(void *arg, uintptr_t addr, uint64_t size, uint32_t id), void *arg);

#endif /* TRACKER_RETENTION_INTERNAL_H */
