/* report_rss.c - resident memory beside the tracked heap in every report, and what the tracker cannot see when RSS grows past it. */

#include "report_internal.h"

#include <stdio.h>
#include <string.h>

/*
 * A preload sees what goes through malloc. It does not see an allocator
 * linked into the program (redis' bundled jemalloc: RSS climbs while the
 * tracked heap stays flat), anonymous mmaps, or thread stacks. So every report states the resident memory beside the tracked
 * heap, and when RSS grew far more than the heap since the previous report
 * (by at least UNSEEN_MIN and more than twice the heap's growth), one line
 * says so and names the likely cause it can find.
 */

#define UNSEEN_MIN (8ull << 20) /* growth below this is noise: arenas, caches, page faults */

void tracker_snapshot_read_rss(tracker_snapshot *snap)
{
    int g = tracker_internal_enter(); /* the FILE is the tracker's, not a site of the program's */
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) { tracker_internal_leave(g); return; }
    char line[256];
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1) snap->rss_bytes = v << 10;
        else if (sscanf(line, "RssAnon: %llu kB", &v) == 1) snap->rss_anon_bytes = v << 10;
        else if (sscanf(line, "RssFile: %llu kB", &v) == 1) snap->rss_file_bytes = v << 10;
        else if (sscanf(line, "Threads: %llu", &v) == 1) snap->threads = (uint32_t)v;
    }
    fclose(f);
    tracker_internal_leave(g);
}

void report_rss_of(const tracker_snapshot *now, const tracker_snapshot *prev, report_rss *out)
{
    memset(out, 0, sizeof *out);
    tracker_snapshot cur = *now;
    if (!cur.rss_bytes) tracker_snapshot_read_rss(&cur); /* a report of a snapshot taken by hand */
    out->rss = cur.rss_bytes;
    out->anon = cur.rss_anon_bytes;
    out->threads = cur.threads;
    out->static_kind = tracker_static_allocator(&out->static_symbol, &out->static_module);
    if (!prev || !prev->rss_bytes || !cur.rss_bytes) return;
    out->have_prev = 1;
    out->drss = report_delta(cur.rss_bytes, prev->rss_bytes);
    out->dheap = report_delta(now->totals.live_bytes, prev->totals.live_bytes);
    out->danon = report_delta(cur.rss_anon_bytes, prev->rss_anon_bytes);
    out->dfile = report_delta(cur.rss_file_bytes, prev->rss_file_bytes);
    out->dthreads = (long long)cur.threads - (long long)prev->threads;
    long long heap = out->dheap > 0 ? out->dheap : 0;
    out->unseen = out->drss >= (long long)UNSEEN_MIN && out->drss - heap >= (long long)UNSEEN_MIN && out->drss > 2 * heap;
    if (!out->unseen) return;
    if (out->static_kind)
        snprintf(out->cause, sizeof out->cause, "a %s linked into %s (%s): its allocations never reach the tracker",
                 out->static_kind, out->static_module ? out->static_module : "the program", out->static_symbol);
    else if (out->dthreads >= 4)
        snprintf(out->cause, sizeof out->cause, "thread stacks: %lld new threads (%u now)", out->dthreads, cur.threads);
    else if (out->dfile > out->danon)
        snprintf(out->cause, sizeof out->cause, "mapped files (RssFile grew more than anonymous memory)");
    else
        snprintf(out->cause, sizeof out->cause,
                 "anonymous memory outside malloc (mmap by the program or a library, or an allocator of its own)");
}
