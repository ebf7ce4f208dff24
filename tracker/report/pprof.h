/* pprof.h - the tracker's heap as a gzipped pprof profile.proto, in the shape Go's /debug/pprof/heap serves. */
#ifndef TRACKER_PPROF_H
#define TRACKER_PPROF_H

/*
 * One sample per call stack, with four values in Go's order (so viewers
 * default to the last, inuse_space):
 *   alloc_objects/count, alloc_space/bytes   blocks and bytes allocated since start
 *   inuse_objects/count, inuse_space/bytes   blocks and bytes live now
 * period 1 (exact counts, nothing scaled). Every frame is a location with
 * its function and file:line (the tracker's symbolizer; "unknown" frames
 * keep only their address), in the mapping (file name, build ID) of the
 * module that holds it. Snapshots given here must be taken with
 * TRACKER_SNAP_ALL_STACKS, or alloc_* miss the stacks with nothing live.
 */

#include <stddef.h>

#include "tracker.h"

/* Encode now as a gzip-compressed profile.proto. base not NULL: a delta
 * profile (every value now - base, as Go's ?seconds=N serves it; stacks
 * whose four values do not change are left out), with the time between
 * the two snapshots as its duration. Returns 0 and a malloc'ed buffer in
 * *out of *len bytes; -1 when out of memory (*out untouched). Thread-safe;
 * not from inside a malloc hook. */
int tracker_pprof_heap(const tracker_snapshot *now, const tracker_snapshot *base,
                       unsigned char **out, size_t *len);

/* The same profile with alloc_space as its default sample type, as Go's
 * /debug/pprof/allocs serves it (viewers then show allocations since start,
 * freed ones included). Returns as tracker_pprof_heap. */
int tracker_pprof_allocs(const tracker_snapshot *now, const tracker_snapshot *base,
                         unsigned char **out, size_t *len);

#endif /* TRACKER_PPROF_H */
