/* ialloc.h - the tracker's own heap: what the tracker and libdw allocate while it works, kept out of the program's allocator. */
#ifndef TRACKER_IALLOC_H
#define TRACKER_IALLOC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The malloc hooks send here every allocation made while the tracker's
 * own code runs (tracker_in_tracker == TRACKER_GUARD_INTERNAL: a rule-cache
 * miss in libdw, symbols, a report), so that glibc's heap statistics
 * (mallinfo2, malloc_info, malloc_stats) and its arenas show only what
 * the program allocated. Blocks are 16-byte aligned with a 16-byte tag in
 * front, like the hooks' header, so a free from anywhere recognises them
 * by reading the two words every glibc chunk has there too.
 */

void *tracker_ialloc(size_t size);                 /* NULL and ENOMEM when out of memory */
void *tracker_icalloc(size_t size);                /* zeroed */
void *tracker_irealloc(void *p, size_t size);      /* p must be ours; size 0 frees it (NULL returned) */
void tracker_ifree(void *p);                       /* p must be ours */
size_t tracker_iusable(const void *p);             /* p must be ours */
uint64_t tracker_ialloc_bytes(void);               /* carved or mapped for it (the RSS explanation) */

/* The tag word of a block at p for the key k (never 0). */
static inline uint64_t tracker_itag(const void *p, uint64_t k)
{
    return (((uint64_t)(uintptr_t)p) ^ k) * 0xff51afd7ed558ccdULL | 1;
}

/* Is p a block of this heap? Reads the 16 bytes in front of p, so p must
 * be a block of some allocator that has a header there (glibc's has). */
extern _Atomic uint64_t tracker_ialloc_key; /* 0 until the first block */
static inline int tracker_iowns(const void *p)
{
    uint64_t k = atomic_load_explicit(&tracker_ialloc_key, memory_order_relaxed);
    const uint64_t *tag = (const uint64_t *)((uintptr_t)p - 16); /* integer arithmetic: outside any object gcc knows */
    return k && *tag == tracker_itag(p, k);
}

#endif /* TRACKER_IALLOC_H */
