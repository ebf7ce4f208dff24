/* tracker_internal.h - declarations shared by the tracker's own files, not part of the public contract. */
#ifndef TRACKER_INTERNAL_H
#define TRACKER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Thread-local state in the initial-exec model: no allocation, no lock,
 * usable from inside malloc (a preloaded library gets static TLS too). */
#define TRACKER_TLS __thread __attribute__((tls_model("initial-exec")))

/* stackwalk.c: fill out[] with up to max return addresses, innermost first,
 * starting at the frame of a hook (its __builtin_frame_address(0)). Reads
 * only inside the calling thread's stack. Returns the number of frames (>= 1). */
int tracker_stackwalk(void *hook_frame, uintptr_t *out, int max);

/* stackwalk.c: re-read the list of loaded code ranges (after dlopen). Must
 * not run inside a hook; called at init and before each report. */
void tracker_stackwalk_refresh(void);

/* stackwalk.c: once, at init: the calling (main) thread's stack bounds and
 * the unwinding mode (TRACKER_UNWIND). */
void tracker_stackwalk_init(void);

/* tracker.c: seconds on CLOCK_MONOTONIC. */
double tracker_now(void);

#endif /* TRACKER_INTERNAL_H */
