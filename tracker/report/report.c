/* report.c - tracker_report: group snapshot statistics, diff two snapshots and format them the way Python's tracemalloc does. */

#include "report_internal.h"

#include <stdlib.h>
#include <string.h>

/*
 * Mirrors Lib/tracemalloc.py: Snapshot.statistics() and compare_to() group
 * traces by a key, sort, and print each group as
 *   file:line: size=392 MiB (+392 MiB), count=10000 (+10000), average=40 KiB
 * Input is per-stack totals (a few hundred rows, not one per block), so a
 * whole report runs in well under a millisecond once names are cached.
 * The steps are in report_group.c, report_text.c and report_json.c.
 */

const char *report_key_name(tracker_key k)
{
    return k == TRACKER_KEY_TRACEBACK ? "traceback" : k == TRACKER_KEY_FILENAME ? "filename" : "lineno";
}

int tracker_key_parse(const char *s, tracker_key *out)
{
    if (!s) return -1;
    if (strcmp(s, "lineno") == 0) *out = TRACKER_KEY_LINENO;
    else if (strcmp(s, "traceback") == 0) *out = TRACKER_KEY_TRACEBACK;
    else if (strcmp(s, "filename") == 0) *out = TRACKER_KEY_FILENAME;
    else return -1;
    return 0;
}

char *tracker_report(const tracker_snapshot *now, const tracker_snapshot *prev,
                     const tracker_report_opts *opts_in, size_t *len)
{
    return report_since(now, prev, NULL, opts_in, len);
}

char *report_since(const tracker_snapshot *now, const tracker_snapshot *prev, const tracker_snapshot *since,
                   const tracker_report_opts *opts_in, size_t *len)
{
    int g = tracker_internal_enter();
    double t0 = tracker_now();
    tracker_report_opts opts = *opts_in;
    if (opts.top < 1) opts.top = 1;
    if (opts.frames < 1) opts.frames = 1;
    if (opts.frames > TRACKER_MAX_FRAMES) opts.frames = TRACKER_MAX_FRAMES;
    report_mode mode = prev ? REPORT_DIFF : REPORT_ABSOLUTE;
    strbuf sb = { 0 };
    char *result = NULL;
    grouping gr;
    if (opts.format == TRACKER_FORMAT_FOLDED) {
        report_folded(&sb, now, prev, &opts);
        sb_append(&sb, "", 0); /* nothing grew: an empty report, not NULL */
    } else if (report_group(now, prev, mode, &opts, &gr) == 0) {
        const tracker_snapshot *rss_prev = prev ? prev : since;
        if (opts.format == TRACKER_FORMAT_JSON) report_json(&sb, &gr, now, prev, rss_prev, mode, &opts, t0);
        else report_text(&sb, &gr, now, prev, rss_prev, mode, &opts, t0);
        report_group_free(&gr);
    } else {
        sb.oom = 1;
    }
    if (!sb.oom) { result = sb.buf; sb.buf = NULL; *len = sb.len; }
    free(sb.buf);
    tracker_internal_leave(g);
    return result;
}
