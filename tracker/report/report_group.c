/* report_group.c - the grouping step of a report: one key per stack, equal keys merged, groups sorted as tracemalloc sorts. */

#include "report_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct row {
    char *key;         /* group key text */
    uint32_t stack_id; /* the stack this row came from */
    int in_prev;       /* 0: from now, 1: from prev */
    uint64_t size, count;
} row;

/* The key of one stack under opts->key; malloc'ed, NULL when out of memory.
 * When named is not NULL it receives the frame the key names (the site,
 * for key=traceback the innermost frame). */
static char *make_key(uint32_t stack_id, const tracker_report_opts *opts, const report_system *sys,
                      tracker_frame_info *named)
{
    int n = 0;
    const uintptr_t *f = tracker_stack_frames(stack_id, &n);
    char text[512];
    report_site site;
    tracker_frame_info info = { .module = "?" };
    strbuf sb = { 0 };
    if (named) *named = info;
    if (n == 0) return strdup("<unknown>");
    switch (opts->key) {
    case TRACKER_KEY_LINENO:
        report_site_of_stack(stack_id, sys, &site); /* the "(via ...)" is shown, not keyed */
        report_site_name(&site, text, sizeof text);
        sb_printf(&sb, "%s", text);
        info = *site.site;
        break;
    case TRACKER_KEY_FILENAME:
        report_site_of_stack(stack_id, sys, &site);
        if (site.site->file) sb_printf(&sb, "%s", site.site->file);
        else sb_printf(&sb, "[%s]", site.site->module);
        info = *site.site;
        break;
    case TRACKER_KEY_TRACEBACK:
        for (int i = 0; i < n && i < opts->frames; i++) {
            tracker_frame_info fi;
            tracker_symbolize(f[i], &fi);
            if (i == 0) info = fi;
            tracker_format_site(&fi, text, sizeof text);
            sb_printf(&sb, "%s%s", i ? "\n" : "", text);
        }
        break;
    }
    if (sb.oom) { free(sb.buf); return NULL; }
    if (named) *named = info;
    return sb.buf;
}

/* The rule of opts->system, else $TRACKER_SYSTEM, else the default. */
static void system_of(const tracker_report_opts *opts, report_system *sys)
{
    const char *spec = opts->system ? opts->system : getenv("TRACKER_SYSTEM");
    if (report_system_parse(spec, sys) != 0) report_system_parse(NULL, sys);
    report_memo_start(sys);
    report_wrappers_find(sys, NULL);
}

char *tracker_site_key(uint32_t stack_id, const tracker_report_opts *opts, tracker_frame_info *site)
{
    int g = tracker_internal_enter();
    report_system sys;
    system_of(opts, &sys);
    char *key = make_key(stack_id, opts, &sys, site);
    report_memo_end(&sys);
    tracker_internal_leave(g);
    return key;
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const row *)a)->key, ((const row *)b)->key);
}

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }
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

/* Add row r to group gr; the group's representative stack is its biggest
 * in now, or else its biggest in prev. */
static void group_add(group *gr, const row *r)
{
    if (r->in_prev) {
        gr->psize += r->size;
        gr->pcount += r->count;
        if (!gr->rep_from_now && r->size >= gr->rep_size) { gr->rep = r->stack_id; gr->rep_size = r->size; }
    } else {
        gr->size += r->size;
        gr->count += r->count;
        if (!gr->rep_from_now || r->size > gr->rep_size) {
            gr->rep = r->stack_id;
            gr->rep_size = r->size;
            gr->rep_from_now = 1;
        }
    }
}

void report_group_free(grouping *g)
{
    for (size_t i = 0; g->keys && i < g->nkeys; i++) free(g->keys[i]);
    free(g->keys);
    free(g->groups);
    report_memo_end(&g->system);
    *g = (grouping){ 0 };
}

int report_group(const tracker_snapshot *now, const tracker_snapshot *prev, report_mode mode,
                 const tracker_report_opts *opts, grouping *out)
{
    int diff = mode == REPORT_DIFF && prev;
    size_t nrows = now->nstats + (diff ? prev->nstats : 0);
    row *rows = calloc(nrows ? nrows : 1, sizeof *rows);
    *out = (grouping){ 0 };
    system_of(opts, &out->system);
    out->groups = calloc(nrows ? nrows : 1, sizeof *out->groups);
    out->keys = calloc(nrows ? nrows : 1, sizeof *out->keys);
    if (!rows || !out->groups || !out->keys) goto fail;

    /* One row per (snapshot, stack), keyed. */
    for (size_t i = 0; i < nrows; i++) {
        const tracker_stack_stat *st = i < now->nstats ? &now->stats[i] : &prev->stats[i - now->nstats];
        rows[i].in_prev = i >= now->nstats;
        rows[i].stack_id = st->stack_id;
        rows[i].size = st->size;
        rows[i].count = st->count;
        rows[i].key = make_key(st->stack_id, opts, &out->system, NULL);
        if (!rows[i].key) goto fail;
        out->keys[out->nkeys++] = rows[i].key;
    }
    qsort(rows, nrows, sizeof *rows, row_cmp);

    /* Merge equal keys into groups. */
    for (size_t i = 0; i < nrows; i++) {
        if (i == 0 || strcmp(rows[i].key, rows[i - 1].key) != 0) {
            group *ng = &out->groups[out->ngroups++];
            ng->key = rows[i].key;
            ng->rep = rows[i].stack_id;
        }
        group_add(&out->groups[out->ngroups - 1], &rows[i]);
    }
    qsort(out->groups, out->ngroups, sizeof *out->groups, diff ? group_cmp_diff : group_cmp_abs);
    free(rows);
    return 0;
fail:
    free(rows);
    report_group_free(out);
    return -1;
}
