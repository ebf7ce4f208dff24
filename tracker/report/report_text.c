/* report_text.c - a grouped report as tracemalloc prints it: one line per group, then "# ..." summary lines. */

#include "report_internal.h"

#include <stdio.h>
#include <string.h>

/* _format_size() from Lib/tracemalloc.py: "392 MiB", "+39.3 KiB", "12 B". */
void format_size(char *out, size_t len, double size, int sign)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    for (int u = 0;; u++) {
        double a = size < 0 ? -size : size;
        if (a < 100 && u > 0) {
            snprintf(out, len, sign ? "%+.1f %s" : "%.1f %s", size, units[u]);
            return;
        }
        if (a < 10 * 1024 || u == 4) {
            snprintf(out, len, sign ? "%+.0f %s" : "%.0f %s", size, units[u]);
            return;
        }
        size /= 1024;
    }
}

/* "    #i site in function", "(inlined)" for a call inlined into the next frame. */
static void text_frame(void *arg, int index, uintptr_t pc, const tracker_frame_info *f)
{
    strbuf *sb = arg;
    char site[512];
    (void)pc;
    tracker_format_site(f, site, sizeof site);
    if (f->file && f->function) sb_printf(sb, "    #%d %s in %s%s\n", index, site, f->function, f->inlined ? " (inlined)" : "");
    else sb_printf(sb, "    #%d %s\n", index, site);
}

/*   file:line (via fn): size=392 MiB (+392 MiB), count=10000 (+10000), average=40 KiB
 * then, for key=traceback or frames > 1, one "    #i site in function" line per frame. */
static void text_group(strbuf *sb, const grouping *gr, const group *g, report_mode mode,
                       const tracker_report_opts *opts)
{
    char size[32], sdiff[32], avg[32];
    char head[512];
    if (opts->key == TRACKER_KEY_FILENAME) {
        snprintf(head, sizeof head, "%s", g->key);
    } else { /* the site of the group's biggest stack, "(via ...)" included */
        report_site site;
        report_site_of_stack(g->rep, &gr->system, &site);
        report_site_format(&site, head, sizeof head);
    }

    format_size(size, sizeof size, (double)g->size, 0);
    if (mode == REPORT_DIFF) {
        format_size(sdiff, sizeof sdiff, (double)g->size - (double)g->psize, 1);
        sb_printf(sb, "%s: size=%s (%s), count=%llu (%+lld)", head, size, sdiff,
                  (unsigned long long)g->count, report_delta(g->count, g->pcount));
    } else {
        sb_printf(sb, "%s: size=%s, count=%llu", head, size, (unsigned long long)g->count);
    }
    if (g->count) {
        format_size(avg, sizeof avg, (double)g->size / (double)g->count, 0);
        sb_printf(sb, ", average=%s", avg);
    }
    sb_append(sb, "\n", 1);
    if (opts->frames > 1 || opts->key == TRACKER_KEY_TRACEBACK) report_each_frame(g->rep, opts->frames, text_frame, sb);
}

void report_text(strbuf *sb, const grouping *gr, const tracker_snapshot *now, const tracker_snapshot *prev,
                 const tracker_snapshot *rss_prev, report_mode mode, const tracker_report_opts *opts, double t0)
{
    size_t shown = gr->ngroups < (size_t)opts->top ? gr->ngroups : (size_t)opts->top;
    for (size_t i = 0; i < shown; i++) text_group(sb, gr, &gr->groups[i], mode, opts);

    const tracker_totals *tt = &now->totals;
    int diff = mode == REPORT_DIFF;
    long long dsize = diff ? report_delta(tt->live_bytes, prev->totals.live_bytes) : 0;
    long long dcount = diff ? report_delta(tt->live_blocks, prev->totals.live_blocks) : 0;
    double per_block = tt->live_blocks ? (double)tt->bookkeeping_bytes / (double)tt->live_blocks : 0;
    char tsize[32], tdiff[32], bk[32];
    format_size(tsize, sizeof tsize, (double)tt->live_bytes, 0);
    format_size(tdiff, sizeof tdiff, (double)dsize, 1);
    format_size(bk, sizeof bk, (double)tt->bookkeeping_bytes, 0);
    if (diff)
        sb_printf(sb, "# capture %d: differences since capture %d (%.1f s earlier), key=%s, top %zu of %zu\n",
                  opts->capture_no, opts->capture_no - 1, now->taken_at - prev->taken_at,
                  report_key_name(opts->key), shown, gr->ngroups);
    else
        sb_printf(sb, "# capture %d: live memory by %s, top %zu of %zu (the next capture shows differences)\n",
                  opts->capture_no, report_key_name(opts->key), shown, gr->ngroups);
    sb_printf(sb, "# total: size=%s (%s), count=%llu (%+lld)\n", tsize, tdiff,
              (unsigned long long)tt->live_blocks, dcount);
    report_rss r;
    report_rss_of(now, rss_prev, &r);
    if (r.rss) {
        char rss[32], drss[32] = "", dheap[32] = "";
        format_size(rss, sizeof rss, (double)r.rss, 0);
        if (r.have_prev) { /* growth since the previous report */
            drss[0] = dheap[0] = ' ';
            drss[1] = dheap[1] = '(';
            format_size(drss + 2, sizeof drss - 3, (double)r.drss, 1);
            format_size(dheap + 2, sizeof dheap - 3, (double)r.dheap, 1);
            strcat(drss, ")");
            strcat(dheap, ")");
        }
        sb_printf(sb, "# rss: VmRSS %s%s beside the tracked heap %s%s (%u threads)\n", rss, drss, tsize, dheap,
                  r.threads);
    }
    if (r.unseen) {
        char drss[32], dheap[32];
        format_size(drss, sizeof drss, (double)r.drss, 1);
        format_size(dheap, sizeof dheap, (double)r.dheap, 1);
        sb_printf(sb, "# untracked: RSS grew %s since the previous report while the tracked heap grew %s; likely cause: %s\n",
                  drss, dheap, r.cause);
    } else if (r.static_kind) {
        sb_printf(sb, "# not seen: a %s linked into %s (%s): its allocations never reach the tracker\n",
                  r.static_kind, r.static_module ? r.static_module : "the program", r.static_symbol);
    }
    sb_printf(sb, "# tracker: %llu stacks, %llu lost records, bookkeeping %s (%.1f B per live block), "
                  "snapshot %.3f ms, report %.3f ms\n",
              (unsigned long long)tt->stacks, (unsigned long long)tt->lost_records, bk, per_block,
              now->take_seconds * 1e3, (tracker_now() - t0) * 1e3);
    report_wrappers_line(sb, &gr->system.wr);
}

void report_wrappers_line(strbuf *sb, const report_wrappers *wr)
{
    if (!wr->n) return;
    enum { SHOWN = 8 };
    sb_printf(sb, "# wrappers (sites are their callers' lines):");
    for (int i = 0; i < wr->n && i < SHOWN; i++) {
        const report_wrapper *w = &wr->w[i];
        if (w->why == 'f') sb_printf(sb, "%s %s (TRACKER_WRAPPERS)", i ? "," : "", w->name);
        else sb_printf(sb, "%s %s (%u%s call sites)", i ? "," : "", w->name, w->callers,
                       w->callers >= REPORT_WRAPPER_CALLERS ? "+" : "");
    }
    if (wr->n > SHOWN) sb_printf(sb, " and %d more", wr->n - SHOWN);
    sb_printf(sb, "; TRACKER_WRAPPERS=-NAME keeps one as the site\n");
}
