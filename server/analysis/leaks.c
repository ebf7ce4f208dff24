/* leaks.c - GET /leaks: each site's history over the window, classified (leaks_classify.c), ranked and answered as text or JSON (method in leaks.h and docs/leaks.md). */
/* tracker_untracked_begin/end: the history is the tracker's working memory in effect
 * (like its snapshots), kept out of /capture's sites on purpose. */
#include "tracker.h"
#include "leaks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../decimal.h"
#include "history.h"
#include "../http/http_reply.h"
#include "rss.h"

#define LEAKS_TOP_MAX ((int)HISTORY_SERIES)
#define LEAKS_WINDOW_MAX 86400
#define LEAKS_POINTS_MAX 500

/* Leaks first (per-request rate, then per-second), then plateaus and
 * steady sites by live bytes, unknown last; ties by name. */
static int suspect_cmp(const void *pa, const void *pb)
{
    const leaks_suspect *a = pa, *b = pb;
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    if (a->kind == LEAKS_LEAK) {
        if (a->per_request != b->per_request) return b->per_request - a->per_request;
        double ra = a->per_request ? a->bytes_per_request : a->bytes_per_second;
        double rb = b->per_request ? b->bytes_per_request : b->bytes_per_second;
        if (ra != rb) return ra > rb ? -1 : 1;
    }
    if (a->live_bytes != b->live_bytes) return a->live_bytes > b->live_bytes ? -1 : 1;
    return strcmp(a->site, b->site);
}

/* All sites of v, classified and ranked, into a malloc'ed array of
 * v->nseries (NULL when out of memory). */
static leaks_suspect *rank(const history_view *v)
{
    leaks_suspect *all = calloc(v->nseries ? v->nseries : 1, sizeof *all);
    double *x = malloc((v->n ? v->n : 1) * 3 * sizeof *x), *t = x ? x + v->n : NULL, *y = x ? t + v->n : NULL;
    if (!all || !x) { free(all); free(x); return NULL; }
    for (size_t k = 0; k < v->nseries; k++) {
        const history_series *hs = &v->series[k];
        leaks_suspect *s = &all[k];
        size_t n = 0, newest = v->n;
        for (size_t j = 0; j < v->n; j++) {
            if (hs->bytes[j] == HISTORY_MISSING) continue;
            x[n] = (double)v->requests[j];
            t[n] = v->t[j];
            y[n] = (double)hs->bytes[j];
            n++;
            newest = j;
        }
        snprintf(s->site, sizeof s->site, "%s", hs->site);
        s->file = hs->info.file;
        s->line = hs->info.line;
        s->function = hs->info.function;
        if (newest < v->n) { s->live_bytes = hs->bytes[newest]; s->live_count = hs->count[newest]; }
        leaks_classify(x, t, y, n, s);
    }
    free(x);
    qsort(all, v->nseries, sizeof *all, suspect_cmp);
    return all;
}

/* The samples to judge: the last window_s seconds; by default (0) the
 * full-rate ones, or the longer decimated tail when the full-rate samples
 * saw fewer than LEAKS_MIN_REQUESTS requests (an idle server would
 * otherwise make every leak look flat). Returns 0 or -1 as history_view_take. */
static int take_window(double window_s, history_view *v)
{
    history_view tail;
    if (history_view_take(window_s, v) != 0) return -1;
    if (window_s > 0 || v->n == 0 || v->requests[v->n - 1] - v->requests[0] >= LEAKS_MIN_REQUESTS)
        return 0;
    if (history_view_take(LEAKS_WINDOW_MAX, &tail) != 0) return 0;
    if (tail.from_tail && tail.n > 0 &&
        tail.requests[tail.n - 1] - tail.requests[0] > v->requests[v->n - 1] - v->requests[0]) {
        history_view_free(v);
        *v = tail;
    } else {
        history_view_free(&tail);
    }
    return 0;
}

int leaks_suspects(double window_s, leaks_suspect *out, size_t max)
{
    history_view v;
    if (take_window(window_s, &v) != 0) return -1;
    int g = tracker_untracked_begin();
    leaks_suspect *all = rank(&v);
    int n = all ? (int)v.nseries : -1;
    for (size_t i = 0; all && i < v.nseries && i < max; i++) out[i] = all[i];
    free(all);
    tracker_untracked_end(g);
    history_view_free(&v);
    return n;
}

/* ------------------------------------------------------------ query */

typedef struct leaks_query {
    int json, top, window, points;
    unsigned seen;
    int failed;
    char err[160];
} leaks_query;

static const char *const param_names[] = { "format", "top", "window", "points" };

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    leaks_query *q = cls;
    char shown[48];
    unsigned long v;
    (void)kind;
    int i = http_query_param(key, param_names, 4, &q->seen, q->err, sizeof q->err);
    if (i < 0) goto bad;
    if (!value || !value[0]) {
        snprintf(q->err, sizeof q->err, "%s: empty value", key);
        goto bad;
    }
    if (i == 0) {
        if (strcmp(value, "json") == 0) q->json = 1;
        else if (strcmp(value, "text") == 0) q->json = 0;
        else {
            snprintf(q->err, sizeof q->err, "format: unknown format '%s' (expected text or json)",
                     http_printable(value, shown, sizeof shown));
            goto bad;
        }
        return MHD_YES;
    }
    static const int lo[] = { 0, 1, 1, 0 }, hi[] = { 0, LEAKS_TOP_MAX, LEAKS_WINDOW_MAX, LEAKS_POINTS_MAX };
    if (decimal_parse(value, (unsigned long)hi[i], &v) != 0 || v < (unsigned long)lo[i] || v > (unsigned long)hi[i]) {
        snprintf(q->err, sizeof q->err, "%s: '%s' is not a number from %d to %d", key,
                 http_printable(value, shown, sizeof shown), lo[i], hi[i]);
        goto bad;
    }
    if (i == 1) q->top = (int)v;
    else if (i == 2) q->window = (int)v;
    else q->points = (int)v;
    return MHD_YES;
bad:
    q->failed = 1;
    return MHD_NO;
}

/* ------------------------------------------------------------ output */

/* "383.4 MiB", "+39.3 KiB", "12 B": binary units, one decimal. */
static const char *human(double b, int sign, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    double a = b < 0 ? -b : b;
    while (a >= 1024 && u < 4) { a /= 1024; b /= 1024; u++; }
    snprintf(buf, len, sign ? (u ? "%+.1f %s" : "%+.0f %s") : (u ? "%.1f %s" : "%.0f %s"), b, units[u]);
    return buf;
}

static void json_str(FILE *f, const char *s)
{
    if (!s) { fputs("null", f); return; }
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* The series of the suspect named site in v as [requests, bytes] pairs, at most points of them. */
static void json_series(FILE *f, const history_view *v, const char *site, int points)
{
    const history_series *hs = NULL;
    for (size_t k = 0; k < v->nseries && !hs; k++)
        if (strcmp(v->series[k].site, site) == 0) hs = &v->series[k];
    fputs(",\"series\":[", f);
    size_t step = v->n > (size_t)points ? (v->n + (size_t)points - 1) / (size_t)points : 1, out = 0;
    for (size_t j = 0; hs && j < v->n; j++) {
        if (hs->bytes[j] == HISTORY_MISSING || (j % step != 0 && j != v->n - 1)) continue;
        fprintf(f, "%s[%" PRIu64 ",%" PRIu64 "]", out++ ? "," : "", v->requests[j], hs->bytes[j]);
    }
    fputc(']', f);
}

static void json_rss(FILE *f, const rss_parts *r)
{
    char buf[1024];
    fputs(rss_format_json(r, buf, sizeof buf) > 0 ? buf : "null", f);
}

static void write_json(FILE *f, const history_view *v, const leaks_suspect *all, size_t shown,
                       const int counts[4], const rss_parts *r, const leaks_query *q)
{
    fprintf(f, "{\"window\":{\"seconds\":%.3f,\"samples\":%zu,\"period_s\":%.3f,\"requests\":%" PRIu64
               ",\"from_tail\":%s},\"counts\":{\"leak\":%d,\"plateau\":%d,\"steady\":%d,\"unknown\":%d},"
               "\"sites\":%zu,\"suspects\":[",
            v->n ? v->t[v->n - 1] - v->t[0] : 0.0, v->n, v->period_s,
            v->n ? v->requests[v->n - 1] - v->requests[0] : 0, v->from_tail ? "true" : "false",
            counts[0], counts[1], counts[2], counts[3], v->nseries);
    for (size_t i = 0; i < shown; i++) {
        const leaks_suspect *s = &all[i];
        fputs(i ? ",{\"site\":" : "{\"site\":", f);
        json_str(f, s->site);
        fputs(",\"file\":", f);
        json_str(f, s->file);
        fprintf(f, ",\"line\":%d,\"function\":", s->line);
        json_str(f, s->function);
        fprintf(f, ",\"kind\":\"%s\",\"bytes_per_request\":", leaks_kind_name(s->kind));
        if (s->per_request) fprintf(f, "%.1f", s->bytes_per_request);
        else fputs("null", f);
        fprintf(f, ",\"bytes_per_second\":%.1f,\"r2\":%.4f,\"recent_share\":%.3f,\"live_bytes\":%" PRIu64
                   ",\"live_count\":%" PRIu64 ",\"growth_bytes\":%" PRId64 ",\"flat_requests\":%" PRIu64
                   ",\"flat_s\":%.3f,\"window_s\":%.3f,\"window_requests\":%" PRIu64 ",\"points\":%zu",
                s->bytes_per_second, s->r2, s->recent_share, s->live_bytes, s->live_count, s->growth_bytes,
                s->flat_requests, s->flat_s, s->window_s, s->window_requests, s->points);
        if (q->points > 0) json_series(f, v, s->site, q->points);
        fputc('}', f);
    }
    fputs("],\"rss\":", f);
    json_rss(f, r);
    if (q->points > 0) {
        fputs(",\"rss_series\":[", f);
        size_t step = v->n > (size_t)q->points ? (v->n + (size_t)q->points - 1) / (size_t)q->points : 1, out = 0;
        for (size_t j = 0; j < v->n; j++)
            if (j % step == 0 || j == v->n - 1)
                fprintf(f, "%s[%" PRIu64 ",%" PRIu64 "]", out++ ? "," : "", v->requests[j], v->rss_kb[j] * 1024u);
        fputc(']', f);
    }
}

static void write_text(FILE *f, const history_view *v, const leaks_suspect *all, size_t shown,
                       const int counts[4], const rss_parts *r)
{
    char a[32], b[32], c[32], d[32], e[32], g[32], h[32], k[32], u[32], x[32];
    fprintf(f, "# leak suspects over the last %.1f s (%zu samples, every %.3f s%s; %" PRIu64
               " requests): %d leak, %d plateau, %d steady, %d unknown; top %zu of %zu sites\n",
            v->n ? v->t[v->n - 1] - v->t[0] : 0.0, v->n, v->period_s, v->from_tail ? ", decimated" : "",
            v->n ? v->requests[v->n - 1] - v->requests[0] : 0, counts[0], counts[1], counts[2], counts[3],
            shown, v->nseries);
    for (size_t i = 0; i < shown; i++) {
        const leaks_suspect *s = &all[i];
        fprintf(f, "%-7s %s", leaks_kind_name(s->kind), s->site);
        if (s->function && s->file) fprintf(f, " in %s", s->function); /* else the site names it */
        fprintf(f, ": live %s in %" PRIu64 " blocks", human((double)s->live_bytes, 0, a, sizeof a), s->live_count);
        if (s->kind == LEAKS_LEAK || s->kind == LEAKS_PLATEAU || s->growth_bytes != 0) {
            if (s->per_request) fprintf(f, ", %+.1f B/request", s->bytes_per_request);
            fprintf(f, ", %s/s (R^2 %.3f), %s in %.1f s", human(s->bytes_per_second, 1, b, sizeof b), s->r2,
                    human((double)s->growth_bytes, 1, c, sizeof c), s->window_s);
        }
        if (s->kind == LEAKS_PLATEAU)
            fprintf(f, ", flat for the last %" PRIu64 " requests (%.1f s)", s->flat_requests, s->flat_s);
        if (s->kind == LEAKS_UNKNOWN) fprintf(f, " (%zu samples: too few to tell)", s->points);
        fputc('\n', f);
    }
    fprintf(f, "# rss: VmRSS %s = tracked heap %s + untracked heap %s + history %s + free in malloc %s"
               " + tracker %s + code and files %s + stacks %s (%u threads); unexplained %s (%.2f%%)\n",
            human((double)r->vm_rss, 0, a, sizeof a), human((double)r->tracked_live, 0, b, sizeof b),
            human((double)r->heap_untracked, 0, c, sizeof c), human((double)r->history, 0, d, sizeof d),
            human((double)r->heap_free, 0, e, sizeof e), human((double)r->bookkeeping, 0, g, sizeof g),
            human((double)r->code_and_files, 0, h, sizeof h), human((double)r->thread_stacks, 0, k, sizeof k),
            r->threads, human((double)r->unexplained, 1, u, sizeof u),
            r->vm_rss ? 100.0 * (double)r->unexplained / (double)r->vm_rss : 0.0);
    if (r->arenas) /* where the heap lives, so a big rw-p mapping in smaps is not a mystery */
        fprintf(f, "# heap: %s of it in %u heaps of glibc's other malloc arenas (64 MiB reservations), the rest in [heap] and mmap'ed blocks\n",
                human((double)r->arena_heaps, 0, x, sizeof x), r->arenas);
    fputs("# method: docs/leaks.md\n", f);
}

enum MHD_Result leaks_handle(struct MHD_Connection *conn)
{
    leaks_query q = { .top = 10 };
    history_view v;
    rss_parts r;
    char *body = NULL;
    size_t len = 0;
    int counts[4] = { 0 };

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_arg, &q);
    if (q.failed) return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "bad /leaks query: %s", q.err);
    if (take_window(q.window, &v) != 0)
        return http_reply_reason(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "no history yet: the sampler is not running or has no sample "
                                 "(the tracker off, or out of memory at start)");
    int g = tracker_untracked_begin(); /* the answer's own memory is not a site */
    double t0 = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    leaks_suspect *all = rank(&v);
    FILE *f = all ? open_memstream(&body, &len) : NULL;
    if (f) {
        for (size_t i = 0; i < v.nseries; i++) counts[all[i].kind]++;
        size_t shown = v.nseries < (size_t)q.top ? v.nseries : (size_t)q.top;
        history_info hi;
        history_get_info(&hi);
        rss_explain(&r, hi.memory_bytes);
        if (q.json) write_json(f, &v, all, shown, counts, &r, &q);
        else write_text(f, &v, all, shown, counts, &r);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double ms = ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0) * 1e3;
        if (q.json) fprintf(f, ",\"analysis_ms\":%.3f}\n", ms);
        else fprintf(f, "# analysis %.3f ms\n", ms);
        if (fclose(f) != 0) { free(body); body = NULL; }
    }
    free(all);
    history_view_free(&v);
    tracker_untracked_end(g);
    if (!body)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory while ranking the sites");
    return http_reply(conn, MHD_HTTP_OK, q.json ? HTTP_REPLY_JSON : HTTP_REPLY_TEXT, body, len,
                      MHD_RESPMEM_MUST_FREE);
}
