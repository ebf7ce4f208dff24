/* index.c - growing the one hash index (index.h). */

#include "index.h"

#include <stdlib.h>

#define FIRST_SLOTS 256

/* The empty slot where hash h goes. */
static size_t free_slot(const tracker_index *ix, uint64_t h)
{
    size_t i = h & ix->mask;
    while (ix->slot[i].id1) i = (i + 1) & ix->mask;
    return i;
}

int tracker_index_add(tracker_index *ix, uint64_t h, uint32_t id)
{
    size_t slots = ix->slot ? ix->mask + 1 : 0;
    if ((ix->count + 1) * 2 > slots) { /* rehash into twice the slots: the hashes are here */
        size_t nslots = slots ? slots * 2 : FIRST_SLOTS;
        tracker_index n = { calloc(nslots, sizeof *n.slot), nslots - 1, ix->count };
        if (!n.slot) return -1;
        for (size_t i = 0; i < slots; i++)
            if (ix->slot[i].id1) n.slot[free_slot(&n, ix->slot[i].hash)] = ix->slot[i];
        free(ix->slot);
        *ix = n;
    }
    ix->slot[free_slot(ix, h)] = (tracker_index_slot){ .hash = h, .id1 = id + 1 };
    ix->count++;
    return 0;
}

void tracker_index_free(tracker_index *ix)
{
    free(ix->slot);
    *ix = (tracker_index){ 0 };
}
