/* symbolize.h - what a report may learn of a return address before symbolizing it (the rest of the stage's contract is tracker.h's tracker_symbolize*). */
#ifndef TRACKER_SYMBOLIZE_H
#define TRACKER_SYMBOLIZE_H

#include "tracker.h"

/* What is known of a return address without symbolizing it: its frames
 * when they are cached (n of them, as tracker_symbolize_all gives them);
 * else n = 0, with module the path of the module holding it as its frames
 * would name it (NULL: in no module, or unknown; one pointer per module for
 * the life of the process) and dwarf whether that module has DWARF: a
 * module without gives each address exactly one frame, without a line. */
typedef struct tracker_peek {
    const tracker_frame_info *frames;
    int n;
    const char *module;
    int dwarf;
} tracker_peek;

/* out[i] for each of pcs[0..n), under one take of the symbolizer's lock.
 * Each answer is kept with its address (a table probe the next time); a
 * module's DWARF is looked for once. */
void tracker_symbolize_peek(const uintptr_t *pcs, int n, tracker_peek *out);

#endif
