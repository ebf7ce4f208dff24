/* nohooks.c - stands in for hooks.c in builds where another tool (ASan) owns malloc: the tracker stays off. */

#include "tracker.h"

int tracker_hooks_linked(void) { return 0; }
