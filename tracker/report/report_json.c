/* report_json.c - a grouped report as one JSON object (GET /capture?format=json, TRACKER_FORMAT=json). */

#include "report_internal.h"

#include <stdio.h>
#include <string.h>

void sb_json_string(strbuf *sb, const char *s)
{
    if (!s) { sb_append(sb, "null", 4); return; }
    sb_append(sb, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2] = { '\\', (char)c }; sb_append(sb, e, 2); }
        else if (c < 0x20) sb_printf(sb, "\\u%04x", c);
        else sb_append(sb, (const char *)&c, 1);
    }
    sb_append(sb, "\"", 1);
}

/* Copy line `line` of `file` (trimmed) into buf; "" when unreadable. */
static void source_line(const char *file, int line, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!file || line <= 0) return;
    FILE *fp = fopen(file, "r");
    if (!fp) return;
    char tmp[1024];
    int no = 0;
    while (fgets(tmp, sizeof tmp, fp)) {
        size_t l = strlen(tmp);
        int whole = l && tmp[l - 1] == '\n';
        if (++no == line) {
            char *s = tmp;
            while (*s == ' ' || *s == '\t') s++;
            l = strlen(s);
            while (l && (s[l - 1] == '\n' || s[l - 1] == '\r' || s[l - 1] == ' ')) s[--l] = '\0';
            size_t n = l < len - 1 ? l : len - 1; /* a long line is cut, on purpose */
            memcpy(buf, s, n);
            buf[n] = '\0';
            break;
        }
        while (!whole && fgets(tmp, sizeof tmp, fp)) { /* rest of a long line */
            l = strlen(tmp);
            whole = l && tmp[l - 1] == '\n';
        }
    }
    fclose(fp);
}

/* "site","file","line","function","module" of frame f, without braces; shown: the
 * site's text when not NULL. */
static void json_frame_fields(strbuf *sb, const tracker_frame_info *f, const char *shown)
{
    char site[512];
    if (shown) snprintf(site, sizeof site, "%s", shown);
    else tracker_format_site(f, site, sizeof site);
    sb_append(sb, "\"site\":", 7);
    sb_json_string(sb, site);
    sb_append(sb, ",\"file\":", 8);
    sb_json_string(sb, f->file);
    sb_printf(sb, ",\"line\":%d,\"function\":", f->line);
    sb_json_string(sb, f->function);
    sb_append(sb, ",\"module\":", 10);
    sb_json_string(sb, f->module);
}

/* {"site","file","line","function","module","address"[,"inlined"]} of one frame. */
static void json_frame_obj(strbuf *sb, uintptr_t pc, const tracker_frame_info *f, int with_inlined)
{
    sb_append(sb, "{", 1);
    json_frame_fields(sb, f, NULL);
    sb_printf(sb, ",\"address\":\"0x%llx\"", (unsigned long long)pc);
    if (with_inlined) sb_printf(sb, ",\"inlined\":%s", f->inlined ? "true" : "false");
    sb_append(sb, "}", 1);
}

static void json_traceback_frame(void *arg, int index, uintptr_t pc, const tracker_frame_info *f)
{
    strbuf *sb = arg;
    if (index) sb_append(sb, ",", 1);
    json_frame_obj(sb, pc, f, 1);
}

/* One group: its key; the site (the program's own frame) as "site", "file",
 * "line", "function", "module", "via" and its "source" line; the counts;
 * the "innermost" frame; the "traceback", inlined calls expanded. */
static void json_group(strbuf *sb, const grouping *gr, const group *g, report_mode mode,
                       const tracker_report_opts *opts)
{
    int n = 0;
    const uintptr_t *f = tracker_stack_frames(g->rep, &n);
    report_site site;
    report_site_of_stack(g->rep, &gr->system, &site);
    const tracker_frame_info *own = site.site;
    char src[512];
    source_line(own->file, own->line, src, sizeof src);

    sb_append(sb, "{\"key\":", 7);
    sb_json_string(sb, g->key);
    sb_append(sb, ",", 1);
    char name[512];
    report_site_name(&site, name, sizeof name);
    json_frame_fields(sb, own, name);
    sb_append(sb, ",\"via\":", 7);
    sb_json_string(sb, site.via[0] ? site.via : NULL);
    sb_printf(sb, ",\"own_code\":%s,\"wrapper\":%s,\"source\":", site.own ? "true" : "false",
              site.wrapped ? "true" : "false");
    sb_json_string(sb, src[0] ? src : NULL);
    sb_printf(sb, ",\"size\":%llu,\"count\":%llu", (unsigned long long)g->size, (unsigned long long)g->count);
    if (mode == REPORT_DIFF)
        sb_printf(sb, ",\"size_diff\":%lld,\"count_diff\":%lld",
                  report_delta(g->size, g->psize), report_delta(g->count, g->pcount));
    sb_printf(sb, ",\"average\":%.1f,\"innermost\":", g->count ? (double)g->size / (double)g->count : 0.0);
    json_frame_obj(sb, n > 0 ? f[0] : 0, site.innermost, 0);
    sb_append(sb, ",\"traceback\":[", 14);
    report_each_frame(g->rep, opts->frames, json_traceback_frame, sb);
    sb_append(sb, "]}", 2);
}

void report_json(strbuf *sb, const grouping *gr, const tracker_snapshot *now, const tracker_snapshot *prev,
                 const tracker_snapshot *rss_prev, report_mode mode, const tracker_report_opts *opts, double t0)
{
    size_t shown = gr->ngroups < (size_t)opts->top ? gr->ngroups : (size_t)opts->top;
    const tracker_totals *tt = &now->totals;
    int diff = mode == REPORT_DIFF;
    long long dsize = diff ? report_delta(tt->live_bytes, prev->totals.live_bytes) : 0;
    long long dcount = diff ? report_delta(tt->live_blocks, prev->totals.live_blocks) : 0;
    double per_block = tt->live_blocks ? (double)tt->bookkeeping_bytes / (double)tt->live_blocks : 0;

    sb_printf(sb, "{\"capture\":%d,\"mode\":\"%s\",\"key\":\"%s\",\"top\":%d,\"frames\":%d,\"groups\":%zu,",
              opts->capture_no, diff ? "diff" : "absolute", report_key_name(opts->key), opts->top,
              opts->frames, gr->ngroups);
    sb_printf(sb, "\"since_previous_s\":%.3f,", diff ? now->taken_at - prev->taken_at : 0.0);
    sb_printf(sb, "\"total\":{\"size\":%llu,\"count\":%llu,\"size_diff\":%lld,\"count_diff\":%lld},",
              (unsigned long long)tt->live_bytes, (unsigned long long)tt->live_blocks, dsize, dcount);
    report_rss r;
    report_rss_of(now, rss_prev, &r);
    sb_printf(sb, "\"rss\":{\"bytes\":%llu,\"anon_bytes\":%llu,\"threads\":%u", (unsigned long long)r.rss,
              (unsigned long long)r.anon, r.threads);
    if (r.have_prev) sb_printf(sb, ",\"bytes_diff\":%lld,\"heap_diff\":%lld", r.drss, r.dheap);
    sb_printf(sb, ",\"untracked_growth\":%s,\"cause\":", r.unseen ? "true" : "false");
    sb_json_string(sb, r.unseen ? r.cause : NULL);
    sb_append(sb, ",\"static_allocator\":", 20);
    sb_json_string(sb, r.static_kind);
    sb_append(sb, "},", 2);
    sb_printf(sb, "\"tracker\":{\"stacks\":%llu,\"lost_records\":%llu,\"bookkeeping_bytes\":%llu,"
                  "\"bookkeeping_per_block\":%.1f,\"snapshot_ms\":%.3f},\"stats\":[",
              (unsigned long long)tt->stacks, (unsigned long long)tt->lost_records,
              (unsigned long long)tt->bookkeeping_bytes, per_block, now->take_seconds * 1e3);
    for (size_t i = 0; i < shown; i++) {
        if (i) sb_append(sb, ",", 1);
        json_group(sb, gr, &gr->groups[i], mode, opts);
    }
    sb_append(sb, "],\"wrappers\":[", 14);
    for (int i = 0; i < gr->system.wr.n; i++) {
        const report_wrapper *w = &gr->system.wr.w[i];
        sb_append(sb, i ? ",{\"function\":" : "{\"function\":", i ? 13 : 12);
        sb_json_string(sb, w->name);
        sb_printf(sb, ",\"call_sites\":%u,\"why\":\"%s\"}", w->callers,
                  w->why == 'f' ? "named" : w->why == 'n' ? "name" : "returns a pointer");
    }
    sb_printf(sb, "],\"report_ms\":%.3f}\n", (tracker_now() - t0) * 1e3);
}
