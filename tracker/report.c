/* report.c - group snapshot statistics, diff two snapshots and format them the way Python's tracemalloc does. */

#include "tracker.h"
#include "tracker_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Mirrors Lib/tracemalloc.py: Snapshot.statistics() and compare_to() group
 * traces by a key, sort, and print each group as
 *   file:line: size=392 MiB (+392 MiB), count=10000 (+10000), average=40 KiB
 * Input is per-stack totals (a few hundred rows, not one per block), so
 * this whole file runs in well under a millisecond once names are cached.
 * Runs under the recursion guard: its memory is not tracked.
 */

/* ------------------------------------------------------------------ */
/* A growable string                                                    */
/* ------------------------------------------------------------------ */

typedef struct strbuf {
    char *buf;  /* NUL-terminated text so far */
    size_t len; /* bytes used, without the NUL */
    size_t cap; /* bytes allocated */
    int oom;    /* an append failed: the result is discarded */
} strbuf;

static void sb_append(strbuf *sb, const char *s, size_t n)
{
    if (sb->oom) return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 1024;
        while (sb->len + n + 1 > cap) cap *= 2;
        char *nb = realloc(sb->buf, cap);
        if (!nb) { sb->oom = 1; return; }
        sb->buf = nb;
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

__attribute__((format(printf, 2, 3)))
static void sb_printf(strbuf *sb, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { sb->oom = 1; return; }
    if ((size_t)n < sizeof small) { sb_append(sb, small, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { sb->oom = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_append(sb, big, (size_t)n);
    free(big);
}

static void sb_json_string(strbuf *sb, const char *s)
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

/* ------------------------------------------------------------------ */
/* tracemalloc's size format                                            */
/* ------------------------------------------------------------------ */

/* _format_size() from Lib/tracemalloc.py: "392 MiB", "+39.3 KiB", "12 B". */
static void format_size(char *out, size_t len, double size, int sign)
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

/* ------------------------------------------------------------------ */
/* Grouping                                                             */
/* ------------------------------------------------------------------ */

typedef struct row {
    char *key;         /* group key text */
    uint32_t stack_id; /* the stack this row came from */
    int in_prev;       /* 0: from now, 1: from prev */
    uint64_t size, count;
} row;

typedef struct group {
    const char *key;          /* group key text (owned by a row) */
    uint64_t size, count;     /* in now */
    uint64_t psize, pcount;   /* in prev */
    uint32_t rep;             /* stack shown for the group: biggest in now (else prev) */
    uint64_t rep_size;
    int rep_from_now;
} group;

static void site_of(uintptr_t pc, char *buf, size_t len, tracker_frame_info *info)
{
    tracker_symbolize(pc, info);
    tracker_format_site(info, buf, len);
}

/* The key of one stack under opts->key; malloc'ed. */
static char *make_key(uint32_t stack_id, const tracker_report_opts *opts)
{
    int n = 0;
    const uintptr_t *f = tracker_stack_frames(stack_id, &n);
    char site[512];
    tracker_frame_info info;
    strbuf sb = { 0 };
    if (n == 0) return strdup("<unknown>");
    switch (opts->key) {
    case TRACKER_KEY_LINENO:
        site_of(f[0], site, sizeof site, &info);
        sb_printf(&sb, "%s", site);
        break;
    case TRACKER_KEY_FILENAME:
        tracker_symbolize(f[0], &info);
        if (info.file) sb_printf(&sb, "%s", info.file);
        else sb_printf(&sb, "[%s]", info.module);
        break;
    case TRACKER_KEY_TRACEBACK:
        for (int i = 0; i < n && i < opts->frames; i++) {
            site_of(f[i], site, sizeof site, &info);
            sb_printf(&sb, "%s%s", i ? "\n" : "", site);
        }
        break;
    }
    if (sb.oom) { free(sb.buf); return NULL; }
    return sb.buf;
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const row *)a)->key, ((const row *)b)->key);
}

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

/* now - before as a signed number, without signed overflow (wraps like
 * the counters themselves would past 2^63: never in practice). */
static long long delta(uint64_t now, uint64_t before) { return (long long)(now - before); }
static uint64_t absdiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

/* Biggest first, as tracemalloc sorts with reverse=True. */
static int group_cmp_diff(const void *pa, const void *pb)
{
    const group *a = pa, *b = pb;
    int c;
    if ((c = cmp_u64(absdiff(b->size, b->psize), absdiff(a->size, a->psize)))) return c;
    if ((c = cmp_u64(b->size, a->size))) return c;
    if ((c = cmp_u64(absdiff(b->count, b->pcount), absdiff(a->count, a->pcount)))) return c;
    if ((c = cmp_u64(b->count, a->count))) return c;
    return strcmp(b->key, a->key);
}

static int group_cmp_abs(const void *pa, const void *pb)
{
    const group *a = pa, *b = pb;
    int c;
    if ((c = cmp_u64(b->size, a->size))) return c;
    if ((c = cmp_u64(b->count, a->count))) return c;
    return strcmp(b->key, a->key);
}

/* ------------------------------------------------------------------ */
/* Source lines (as tracemalloc's traceback.format shows them)          */
/* ------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------ */
/* Output                                                               */
/* ------------------------------------------------------------------ */

static void text_group(strbuf *sb, const group *g, int diff, const tracker_report_opts *opts)
{
    char size[32], sdiff[32], avg[32];
    int n = 0;
    const uintptr_t *f = tracker_stack_frames(g->rep, &n);
    char head[512];
    tracker_frame_info info;
    if (opts->key == TRACKER_KEY_TRACEBACK && n > 0) site_of(f[0], head, sizeof head, &info);
    else snprintf(head, sizeof head, "%s", g->key);

    format_size(size, sizeof size, (double)g->size, 0);
    if (diff) {
        format_size(sdiff, sizeof sdiff, (double)g->size - (double)g->psize, 1);
        sb_printf(sb, "%s: size=%s (%s), count=%llu (%+lld)", head, size, sdiff,
                  (unsigned long long)g->count, delta(g->count, g->pcount));
    } else {
        sb_printf(sb, "%s: size=%s, count=%llu", head, size, (unsigned long long)g->count);
    }
    if (g->count) {
        format_size(avg, sizeof avg, (double)g->size / (double)g->count, 0);
        sb_printf(sb, ", average=%s", avg);
    }
    sb_append(sb, "\n", 1);
    if (opts->frames > 1 || opts->key == TRACKER_KEY_TRACEBACK) {
        for (int i = 0; i < n && i < opts->frames; i++) {
            char site[512];
            site_of(f[i], site, sizeof site, &info);
            if (info.file && info.function) sb_printf(sb, "    #%d %s in %s\n", i, site, info.function);
            else sb_printf(sb, "    #%d %s\n", i, site);
        }
    }
}

/* "site","file","line","function" of info, without braces. */
static void json_site_fields(strbuf *sb, const char *site, const tracker_frame_info *info)
{
    sb_append(sb, "\"site\":", 7);
    sb_json_string(sb, site);
    sb_append(sb, ",\"file\":", 8);
    sb_json_string(sb, info->file);
    sb_printf(sb, ",\"line\":%d,\"function\":", info->line);
    sb_json_string(sb, info->function);
}

static void json_frame(strbuf *sb, uintptr_t pc)
{
    char site[512];
    tracker_frame_info info;
    site_of(pc, site, sizeof site, &info);
    sb_append(sb, "{", 1);
    json_site_fields(sb, site, &info);
    sb_append(sb, ",\"module\":", 10);
    sb_json_string(sb, info.module);
    sb_printf(sb, ",\"address\":\"0x%llx\"}", (unsigned long long)pc);
}

static void json_group(strbuf *sb, const group *g, int diff, const tracker_report_opts *opts)
{
    int n = 0;
    const uintptr_t *f = tracker_stack_frames(g->rep, &n);
    tracker_frame_info info = { 0 };
    if (n > 0) tracker_symbolize(f[0], &info);
    char src[512];
    source_line(info.file, info.line, src, sizeof src);
    char site[512];
    if (n > 0) tracker_format_site(&info, site, sizeof site);
    else snprintf(site, sizeof site, "%s", g->key);

    sb_append(sb, "{\"key\":", 7);
    sb_json_string(sb, g->key);
    sb_append(sb, ",", 1);
    json_site_fields(sb, site, &info);
    sb_append(sb, ",\"source\":", 10);
    sb_json_string(sb, src[0] ? src : NULL);
    sb_printf(sb, ",\"size\":%llu,\"count\":%llu", (unsigned long long)g->size, (unsigned long long)g->count);
    if (diff)
        sb_printf(sb, ",\"size_diff\":%lld,\"count_diff\":%lld",
                  delta(g->size, g->psize), delta(g->count, g->pcount));
    sb_printf(sb, ",\"average\":%.1f,\"traceback\":[", g->count ? (double)g->size / (double)g->count : 0.0);
    for (int i = 0; i < n && i < opts->frames; i++) {
        if (i) sb_append(sb, ",", 1);
        json_frame(sb, f[i]);
    }
    sb_append(sb, "]}", 2);
}

static const char *key_name(tracker_key k)
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
    int g = tracker_guard_enter();
    double t0 = tracker_now();
    tracker_report_opts opts = *opts_in;
    if (opts.top < 1) opts.top = 1;
    if (opts.frames < 1) opts.frames = 1;
    if (opts.frames > TRACKER_MAX_FRAMES) opts.frames = TRACKER_MAX_FRAMES;
    int diff = prev != NULL;
    size_t nrows = now->nstats + (diff ? prev->nstats : 0), ngroups = 0;
    row *rows = calloc(nrows ? nrows : 1, sizeof *rows);
    group *groups = calloc(nrows ? nrows : 1, sizeof *groups);
    strbuf sb = { 0 };
    char *result = NULL;
    if (!rows || !groups) goto done;

    tracker_stackwalk_refresh(); /* pick up libraries loaded since the last report */

    /* One row per (snapshot, stack), keyed. */
    for (size_t i = 0; i < nrows; i++) {
        const tracker_site_stat *st = i < now->nstats ? &now->stats[i] : &prev->stats[i - now->nstats];
        rows[i].in_prev = i >= now->nstats;
        rows[i].stack_id = st->stack_id;
        rows[i].size = st->size;
        rows[i].count = st->count;
        rows[i].key = make_key(st->stack_id, &opts);
        if (!rows[i].key) goto done;
    }
    qsort(rows, nrows, sizeof *rows, row_cmp);

    /* Merge equal keys into groups. */
    for (size_t i = 0; i < nrows; i++) {
        if (i == 0 || strcmp(rows[i].key, rows[i - 1].key) != 0) {
            group *ng = &groups[ngroups++];
            ng->key = rows[i].key;
            ng->rep = rows[i].stack_id;
        }
        group *gr = &groups[ngroups - 1];
        if (rows[i].in_prev) {
            gr->psize += rows[i].size;
            gr->pcount += rows[i].count;
            if (!gr->rep_from_now && rows[i].size >= gr->rep_size) { gr->rep = rows[i].stack_id; gr->rep_size = rows[i].size; }
        } else {
            gr->size += rows[i].size;
            gr->count += rows[i].count;
            if (!gr->rep_from_now || rows[i].size > gr->rep_size) {
                gr->rep = rows[i].stack_id;
                gr->rep_size = rows[i].size;
                gr->rep_from_now = 1;
            }
        }
    }
    qsort(groups, ngroups, sizeof *groups, diff ? group_cmp_diff : group_cmp_abs);
    size_t shown = ngroups < (size_t)opts.top ? ngroups : (size_t)opts.top;

    const tracker_totals *tt = &now->totals;
    long long dsize = diff ? delta(tt->live_bytes, prev->totals.live_bytes) : 0;
    long long dcount = diff ? delta(tt->live_blocks, prev->totals.live_blocks) : 0;
    double per_block = tt->live_blocks ? (double)tt->bookkeeping_bytes / (double)tt->live_blocks : 0;

    if (opts.json) {
        sb_printf(&sb, "{\"capture\":%d,\"mode\":\"%s\",\"key\":\"%s\",\"top\":%d,\"frames\":%d,\"groups\":%zu,",
                  opts.capture_no, diff ? "diff" : "absolute", key_name(opts.key), opts.top, opts.frames, ngroups);
        sb_printf(&sb, "\"since_previous_s\":%.3f,", diff ? now->taken_at - prev->taken_at : 0.0);
        sb_printf(&sb, "\"total\":{\"size\":%llu,\"count\":%llu,\"size_diff\":%lld,\"count_diff\":%lld},",
                  (unsigned long long)tt->live_bytes, (unsigned long long)tt->live_blocks, dsize, dcount);
        sb_printf(&sb, "\"tracker\":{\"stacks\":%llu,\"lost_records\":%llu,\"bookkeeping_bytes\":%llu,"
                       "\"bookkeeping_per_block\":%.1f,\"snapshot_ms\":%.3f},\"stats\":[",
                  (unsigned long long)tt->stacks, (unsigned long long)tt->lost_records,
                  (unsigned long long)tt->bookkeeping_bytes, per_block, now->take_seconds * 1e3);
        for (size_t i = 0; i < shown; i++) {
            if (i) sb_append(&sb, ",", 1);
            json_group(&sb, &groups[i], diff, &opts);
        }
        sb_printf(&sb, "],\"report_ms\":%.3f}\n", (tracker_now() - t0) * 1e3);
    } else {
        for (size_t i = 0; i < shown; i++) text_group(&sb, &groups[i], diff, &opts);
        char tsize[32], tdiff[32], bk[32];
        format_size(tsize, sizeof tsize, (double)tt->live_bytes, 0);
        format_size(tdiff, sizeof tdiff, (double)dsize, 1);
        format_size(bk, sizeof bk, (double)tt->bookkeeping_bytes, 0);
        if (diff)
            sb_printf(&sb, "# capture %d: differences since capture %d (%.1f s earlier), key=%s, top %zu of %zu\n",
                      opts.capture_no, opts.capture_no - 1, now->taken_at - prev->taken_at,
                      key_name(opts.key), shown, ngroups);
        else
            sb_printf(&sb, "# capture %d: live memory by %s, top %zu of %zu (the next capture shows differences)\n",
                      opts.capture_no, key_name(opts.key), shown, ngroups);
        sb_printf(&sb, "# total: size=%s (%s), count=%llu (%+lld)\n", tsize, tdiff,
                  (unsigned long long)tt->live_blocks, dcount);
        sb_printf(&sb, "# tracker: %llu stacks, %llu lost records, bookkeeping %s (%.1f B per live block), "
                       "snapshot %.3f ms, report %.3f ms\n",
                  (unsigned long long)tt->stacks, (unsigned long long)tt->lost_records, bk, per_block,
                  now->take_seconds * 1e3, (tracker_now() - t0) * 1e3);
    }
    if (!sb.oom) { result = sb.buf; sb.buf = NULL; *len = sb.len; }

done:
    for (size_t i = 0; rows && i < nrows; i++) free(rows[i].key);
    free(rows);
    free(groups);
    free(sb.buf);
    if (g) tracker_guard_leave();
    return result;
}
