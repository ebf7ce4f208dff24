/* history.h - the server's per-site history: a sampler thread keeps live bytes and blocks by allocation site over time, bounded. */
#ifndef HISTORY_H
#define HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "tracker.h"

/*
 * Every period (default 500 ms) the sampler thread takes the tracker's
 * O(stacks) snapshot, groups it by site exactly as /capture names sites
 * (tracker_site_key, key=lineno), and appends one point per site: live
 * bytes and blocks, with the time, the requests served so far and VmRSS.
 *
 * Bounded, whatever the uptime: the last HISTORY_FULL samples at the full
 * rate, plus a tail of HISTORY_TAIL samples keeping one in every
 * HISTORY_DECIMATE (at 500 ms: 10 minutes, then 1 h 40 min at 5 s). Series
 * are kept for at most HISTORY_SERIES sites at a time: every site while
 * there are fewer; past that a site replaces the smallest series only when
 * it holds more than twice its live bytes (a leak grows into a series; it
 * cannot be crowded out by many small sites). A series' rings (28 KiB) are
 * taken the first time its slot is used, so the history's memory is at
 * most ~1.8 MiB plus one name per distinct site, whatever the uptime. It is
 * taken under the tracker's recursion guard: not a site of /capture;
 * /stats (history.memory_bytes) and /leaks' RSS breakdown report it.
 */

#define HISTORY_FULL     1200u /* samples at the full rate */
#define HISTORY_TAIL     1200u /* decimated samples after them */
#define HISTORY_DECIMATE 10u   /* one tail sample per this many samples */
#define HISTORY_SERIES   64u   /* sites with a series at the same time */
#define HISTORY_PERIOD_MS_DEFAULT 500u
#define HISTORY_PERIOD_MS_MIN 10u
#define HISTORY_PERIOD_MS_MAX 60000u

#define HISTORY_MISSING UINT64_MAX /* bytes of a sample taken before the site had a series */

/* Start the sampler thread, sampling every period_ms (HISTORY_PERIOD_MS_MIN..
 * _MAX); requests() gives the requests served so far. Takes the first
 * sample at once. Returns 0, or -1 (errno set) when the memory or the
 * thread cannot be had; the server then runs without a history. */
int history_start(unsigned period_ms, uint64_t (*requests)(void));

/* Stop and join the sampler, free the history. Safe when never started. */
void history_stop(void);

/* Take one sample now, on the calling thread (the sampler does this every
 * period; benchmarks call it directly). No-op before history_start. */
void history_sample_now(void);

/* One site's series inside a view, aligned with the view's timeline. */
typedef struct history_series {
    char *site;                  /* as /capture names it (malloc'ed, owned by the view) */
    tracker_frame_info info;     /* file, line, function of that frame (strings: process lifetime) */
    uint64_t *bytes;             /* n values, HISTORY_MISSING before the series began */
    uint64_t *count;             /* n values (meaningless where bytes is missing) */
} history_series;

/* A copy of the history over a window, for analysis outside the lock. */
typedef struct history_view {
    size_t n;                    /* samples in the window, oldest first */
    double *t;                   /* CLOCK_MONOTONIC seconds of each sample */
    uint64_t *requests;          /* requests served at each sample */
    uint64_t *rss_kb;            /* VmRSS at each sample */
    size_t nseries;              /* sites with a series */
    history_series *series;      /* nseries of them */
    double period_s;             /* seconds between samples in this view */
    int from_tail;               /* 1: the decimated tail was used (window longer than the full rate) */
} history_view;

/* Copy the samples of the last window_s seconds (0: all the full-rate
 * ones) into *v. A window longer than the full-rate samples cover is
 * answered from the decimated tail. Returns 0, or -1 when there is no
 * history (not started) or no memory; *v is then empty. */
int history_view_take(double window_s, history_view *v);

/* Free what history_view_take filled in (an empty view is fine). */
void history_view_free(history_view *v);

/* The sampler's own figures, for /stats. */
typedef struct history_info {
    int running;                 /* 1 when the sampler runs */
    unsigned period_ms;          /* sampling period */
    uint64_t samples;            /* samples taken since start */
    size_t sites_known;          /* distinct sites seen so far (named once each) */
    size_t series;               /* sites with a series now */
    size_t memory_bytes;         /* all memory the history holds: timeline, the series' rings, site names */
    double cpu_s;                /* CPU seconds spent sampling (thread CPU clock) */
    double cpu_share;            /* cpu_s / seconds since start: fraction of one core */
    double last_sample_ms;       /* CPU time of the last sample */
    double last_snapshot_ms;     /* of which the tracker's snapshot took (wall clock) */
    double covers_s;             /* seconds the full-rate samples cover now */
} history_info;

/* Fill *out (all zero when not started). Thread-safe. */
void history_get_info(history_info *out);

#endif /* HISTORY_H */
