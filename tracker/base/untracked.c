/* untracked.c - tracker_untracked_begin/end: the recursion guard of base.h, for consumers outside the tracker. */
#include "tracker.h"
#include "base.h"

int tracker_untracked_begin(void) { return tracker_guard_enter(); }

void tracker_untracked_end(int begun)
{
    if (begun) tracker_guard_leave(); /* only the outermost begin leaves the guard */
}
