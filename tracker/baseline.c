/* baseline.c - reports against a kept baseline: each report is the difference since the previous one. */

#include "tracker.h"

#include <stdlib.h>

char *tracker_baseline_report(tracker_baseline *b, tracker_baseline_mode mode,
                              const tracker_report_opts *opts, size_t *len, int *no)
{
    char *text = NULL;
    tracker_report_opts o = *opts;
    pthread_mutex_lock(&b->lock);
    tracker_snapshot *snap = tracker_snapshot_take();
    if (!snap) goto done;
    o.capture_no = b->reports + 1;
    int keep = mode == TRACKER_BASELINE_DIFF;
    text = tracker_report(snap, keep ? b->prev : NULL, &o, len);
    if (!text) { /* baseline unchanged: the next report still diffs from it */
        tracker_snapshot_free(snap);
        goto done;
    }
    b->reports++;
    if (no) *no = b->reports;
    if (keep) {
        tracker_snapshot_free(b->prev);
        b->prev = snap;
    } else {
        tracker_snapshot_free(snap);
    }
done:
    pthread_mutex_unlock(&b->lock);
    return text;
}

void tracker_baseline_clear(tracker_baseline *b)
{
    pthread_mutex_lock(&b->lock);
    tracker_snapshot_free(b->prev);
    b->prev = NULL;
    pthread_mutex_unlock(&b->lock);
}
