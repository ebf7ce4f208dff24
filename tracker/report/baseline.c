/* baseline.c - reports against a kept baseline: each report is the difference since the previous one. */

#include "report_internal.h"
#include "lockorder.h"

#include <stdlib.h>

/* One report at a time in the process, whatever the baseline: a report is
 * the outermost of the tracker's locks (the fork handlers, base.c, take it
 * first), and one lock is what fork() needs to know of. */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

/* Registered at load, before any report can hold the lock. */
__attribute__((constructor)) static void baseline_fork_register(void)
{
    tracker_fork_register_mutex(LOCK_REPORT, &report_lock);
}

char *tracker_baseline_report(tracker_baseline *b, tracker_baseline_mode mode,
                              const tracker_report_opts *opts, size_t *len, int *no)
{
    char *text = NULL;
    tracker_report_opts o = *opts;
    tracker_lock(&report_lock, LOCK_REPORT);
    tracker_snapshot *snap = tracker_snapshot_take();
    if (!snap) goto done;
    tracker_snapshot_read_rss(snap); /* kept with it: the next report compares RSS growth to the heap's */
    o.capture_no = b->reports + 1;
    int keep = mode == TRACKER_BASELINE_DIFF;
    /* an absolute (exit) report still says how RSS grew since the last one */
    text = report_since(snap, keep ? b->prev : NULL, keep ? NULL : b->prev, &o, len);
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
    tracker_unlock(&report_lock, LOCK_REPORT);
    return text;
}

void tracker_baseline_clear(tracker_baseline *b)
{
    tracker_lock(&report_lock, LOCK_REPORT);
    tracker_snapshot_free(b->prev);
    b->prev = NULL;
    tracker_unlock(&report_lock, LOCK_REPORT);
}
