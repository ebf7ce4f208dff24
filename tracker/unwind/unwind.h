/* unwind.h - the unwind stage's contract: call stacks from a hook's frame (stackwalk.c, by the CFI rules of cfi.c), and the walk memo that skips most walks. */
#ifndef TRACKER_UNWIND_H
#define TRACKER_UNWIND_H

#include <stdint.h>

/* stackwalk.c: the walk memo. tracker_stackwalk_known: the stack id when a
 * walk from hook_frame would give the stack this thread last interned from
 * there (checked, not guessed), else -1; tracker_stackwalk_learn: the id of
 * the stack of this thread's last tracker_stackwalk. */
int64_t tracker_stackwalk_known(void *hook_frame);
void tracker_stackwalk_learn(uint32_t id);

/* stackwalk.c: fill out[] with up to max return addresses, innermost first,
 * starting at the frame of a hook (its __builtin_frame_address(0)), by the
 * modules' CFI. Reads only inside the stack the caller runs on. Returns the
 * number of frames (>= 1). */
int tracker_stackwalk(void *hook_frame, uintptr_t *out, int max);

/* stackwalk.c: notice modules loaded or unloaded (rule-cache misses do it
 * too). Must not run inside a hook; called by tracker_snapshot_take. */
void tracker_stackwalk_refresh(void);

/* stackwalk.c: once, at init: the CFI rule cache and module list, the
 * calling (main) thread's stack bounds. */
void tracker_stackwalk_init(void);

#endif /* TRACKER_UNWIND_H */
