/* index.h - the report and symbolize stages' one hash index: a 64-bit hash to the position (id) of an element in the caller's own array. */
#ifndef TRACKER_INDEX_H
#define TRACKER_INDEX_H

#include <stddef.h>
#include <stdint.h>

/*
 * Open addressing with linear probing, load at most 1/2. A slot keeps the
 * hash beside the id, so growing needs nothing of the caller's elements;
 * the caller owns its array (tracker_grow) and says which of the ids found
 * under a hash is its element. It callocs as it grows: report time or under
 * the symbols' lock only, inside the tracker's guard.
 *
 * Where it does not fit, and why: record/tracker.c's stack intern and
 * address table and unwind/cfi.c's rule table are read lock-free on the
 * malloc path and may not allocate; report/retention.c's child works in
 * its own arena, with no malloc after the fork.
 *
 *     uint32_t id;
 *     for (size_t pos = h; tracker_index_next(&ix, h, &pos, &id);)
 *         if (strcmp(names[id], name) == 0) return id;
 */

typedef struct tracker_index_slot {
    uint64_t hash;
    uint32_t id1; /* id + 1; 0: an empty slot */
} tracker_index_slot;

typedef struct tracker_index {
    tracker_index_slot *slot; /* NULL until the first add; zero the struct to start */
    size_t mask;              /* slots - 1 */
    size_t count;             /* ids added */
} tracker_index;

/* The next id added under hash h: start with *pos = h and call again for
 * the one after (*pos moves on). 0 when there is none left. No add may come
 * between the calls of one walk. */
static inline int tracker_index_next(const tracker_index *ix, uint64_t h, size_t *pos, uint32_t *id)
{
    if (!ix->slot) return 0;
    for (size_t i = *pos & ix->mask;; i = (i + 1) & ix->mask) {
        const tracker_index_slot *s = &ix->slot[i];
        if (!s->id1) return 0;
        if (s->hash == h) {
            *id = s->id1 - 1;
            *pos = i + 1;
            return 1;
        }
    }
}

/* Add id (< UINT32_MAX) under hash h; an id is not checked for being there
 * already. Returns 0, or -1 when out of memory (ix unchanged). */
int tracker_index_add(tracker_index *ix, uint64_t h, uint32_t id);

/* Frees the slots; ix is empty again. */
void tracker_index_free(tracker_index *ix);

/* FNV-1a of a NUL-terminated string. */
static inline uint64_t tracker_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* A 64-bit integer or address mixed so that every bit moves the low ones
 * the index probes with (MurmurHash3's finalizer: aligned pointers and
 * packed pairs have most of their entropy up high). */
static inline uint64_t tracker_hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

#endif /* TRACKER_INDEX_H */
