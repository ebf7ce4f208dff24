/* report_wrappers.c - the program's own allocation wrappers (zmalloc, xmalloc, ngx_alloc), found from the stacks the tracker has. */

#include "index.h"
#include "report_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Almost every C server allocates through a function of its own that calls
 * malloc and hands the block back (redis' zmalloc, mosquitto__malloc,
 * lighttpd's ck_malloc, nginx's ngx_alloc). Stopping at the first frame of
 * the program would name the wrapper's one line for every block of the
 * process. A function is taken for such a wrapper when, over every stack
 * interned so far:
 *   - it is the allocating frame: the first frame of the program's own code
 *     (or the first after wrappers already taken, so ngx_calloc over
 *     ngx_alloc is found in a second round);
 *   - it allocates at few points of its own (at most 3 distinct lines): a
 *     small function, not a handler that happens to allocate;
 *   - it is reached from distinct call sites: 2 or more when its name says
 *     so (alloc, dup or new in it, any case: zmalloc, zstrdup, sdsnewlen,
 *     ck_calloc), 4 or more when only DWARF says it returns a pointer
 *     (createObject), so that a function that stores what it allocated
 *     (returns void or int) is never taken on the count alone.
 * Then its caller's line is the site, "t_list.c:412 (via zmalloc)". Taking
 * a wrapper only ever splits a site into its callers: two callers are never
 * merged by it. TRACKER_WRAPPERS overrides: "+name" (or "name") takes a
 * function whatever the data, "-name" never takes it, "none" turns the
 * detection off (the +names still apply). docs/sites.md has the rule with
 * examples, and what it gets wrong.
 */

#define MAX_POINTS 3               /* allocation points of a wrapper */
#define ROUNDS 4                   /* wrappers over wrappers followed */
#define MAX_STACKS 200000          /* stacks read (the oldest first) */

char report_wrapper_rule(const char *short_name, int returns_pointer, unsigned callers, unsigned points)
{
    if (points == 0 || points > MAX_POINTS) return 0;
    char low[REPORT_WRAPPER_NAME];
    size_t i = 0;
    const char *base = strrchr(short_name, ':'); /* the name, not its class or namespace */
    base = base ? base + 1 : short_name;
    for (; base[i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)base[i]);
    low[i] = '\0';
    if (strcmp(low, "main") == 0) return 0;
    int hint = strstr(low, "alloc") || strstr(low, "dup") || strstr(low, "new");
    if (hint && callers >= 2) return 'n';
    if (returns_pointer && callers >= 4) return 'p';
    return 0;
}

static int named_in(char list[][REPORT_WRAPPER_NAME], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

int report_wrappers_parse(const char *spec, report_wrappers *wr)
{
    memset(wr, 0, sizeof *wr);
    wr->on = 1;
    if (!spec) return 0;
    while (*spec) {
        while (*spec == ',' || *spec == ' ') spec++;
        size_t len = strcspn(spec, ", ");
        if (len == 0) break;
        char sign = spec[0] == '-' || spec[0] == '+' ? spec[0] : '+';
        const char *name = spec + (spec[0] == '-' || spec[0] == '+');
        size_t nl = len - (size_t)(name - spec);
        if (len == 4 && strncmp(spec, "none", 4) == 0) wr->on = 0;
        else if (nl == 0 || nl >= REPORT_WRAPPER_NAME) return -1;
        else if (sign == '+') {
            if (wr->nforce == REPORT_WRAPPER_NAMED) return -1;
            memcpy(wr->force[wr->nforce], name, nl);
            wr->force[wr->nforce++][nl] = '\0';
        } else {
            if (wr->nnever == REPORT_WRAPPER_NAMED) return -1;
            memcpy(wr->never[wr->nnever], name, nl);
            wr->never[wr->nnever++][nl] = '\0';
        }
        spec += len;
    }
    return 0;
}

static const report_wrapper *wrapper_named_in(const report_wrappers *wr, const char *name)
{
    for (int i = 0; i < wr->n; i++)
        if (strcmp(wr->w[i].name, name) == 0) return &wr->w[i];
    return NULL;
}

const report_wrapper *report_wrapper_of(const report_wrappers *wr, const tracker_frame_info *f)
{
    if (!wr->n || !f->function || f->function[0] == '+') return NULL;
    char name[REPORT_WRAPPER_NAME];
    report_short_name(f->function, name, sizeof name);
    return wrapper_named_in(wr, name);
}

const report_wrapper *report_frame_wrapper(const report_system *sys, const tracker_frame_info *f)
{
    if (!sys->wr.n || !f->function || f->function[0] == '+') return NULL;
    char buf[REPORT_WRAPPER_NAME];
    return wrapper_named_in(&sys->wr, report_frame_short_name(sys, f, buf));
}

/* ---- the evidence, per function ---- */

typedef struct candidate {
    char *name;                              /* short name (malloc'ed) */
    const tracker_frame_info **callers;      /* distinct caller frames (malloc'ed) */
    unsigned ncallers, capcallers;
    const tracker_frame_info *points[MAX_POINTS + 1]; /* distinct allocation points */
    unsigned npoints;
    int returns_pointer;
    int taken; /* already in the set */
} candidate;

typedef struct table {
    candidate *c;        /* in the order first seen */
    size_t n, cap;
    tracker_index index; /* a name -> its candidate */
} table;

/* The candidate named name, added when new; NULL when out of memory. */
static candidate *table_get(table *t, const char *name)
{
    uint64_t h = tracker_hash_str(name);
    uint32_t i;
    for (size_t pos = h; tracker_index_next(&t->index, h, &pos, &i);)
        if (strcmp(t->c[i].name, name) == 0) return &t->c[i];
    candidate *c = tracker_grow(t->c, t->n, &t->cap, sizeof *c, 64);
    if (!c) return NULL;
    t->c = c;
    c += t->n;
    *c = (candidate){ .name = strdup(name) };
    if (!c->name || tracker_index_add(&t->index, h, (uint32_t)t->n) != 0) {
        free(c->name);
        return NULL;
    }
    t->n++;
    return c;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->c[i].name);
        free(t->c[i].callers);
    }
    free(t->c);
    tracker_index_free(&t->index);
}

/* Two frames are one allocation point when they name one line (or, without
 * a line, are one return address). */
static int same_point(const tracker_frame_info *a, const tracker_frame_info *b)
{
    if (a == b) return 1;
    return a->file && b->file && a->line == b->line && strcmp(a->file, b->file) == 0;
}

static void note_point(candidate *c, const tracker_frame_info *at, const tracker_frame_info *caller)
{
    if (c->npoints <= MAX_POINTS) {
        unsigned i = 0;
        while (i < c->npoints && !same_point(c->points[i], at)) i++;
        if (i == c->npoints) c->points[c->npoints++] = at;
    }
    if (caller && c->ncallers < REPORT_WRAPPER_CALLERS) {
        unsigned i = 0;
        while (i < c->ncallers && c->callers[i] != caller) i++;
        if (i == c->ncallers) {
            size_t cap = c->capcallers;
            const tracker_frame_info **grown = tracker_grow(c->callers, c->ncallers, &cap, sizeof *grown, 4);
            if (!grown) return; /* out of memory: counted short, the rule errs on "not a wrapper" */
            c->callers = grown;
            c->capcallers = (unsigned)cap;
            c->callers[c->ncallers++] = caller;
        }
    }
    if (at->returns_pointer) c->returns_pointer = 1;
}

static report_wrapper *wrapper_named(report_wrappers *wr, const char *name)
{
    return (report_wrapper *)wrapper_named_in(wr, name);
}

static void add_wrapper(report_wrappers *wr, const char *name, unsigned callers, char why)
{
    if (wr->n == REPORT_WRAPPERS_MAX) return;
    report_wrapper *w = &wr->w[wr->n++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->callers = callers;
    w->why = why;
}

/* One round: the allocating frame of every stack (its first own frame past
 * the wrappers taken so far), and what calls it. Returns how many
 * functions were newly taken. */
static int one_round(report_system *sys, table *t, uint32_t nstacks)
{
    report_wrappers *wr = &sys->wr;
    for (uint32_t id = 0; id < nstacks; id++) {
        report_frames f;
        report_frames_of(&f, id, sys);
        for (int pass = 1; pass <= 2; pass++) {
            int i = report_next_own(&f, 0, pass);
            if (i < 0) continue;
            while (i >= 0 && report_frame_wrapper(sys, report_frames_at(&f, i))) i = report_next_own(&f, i + 1, pass);
            const tracker_frame_info *at = i >= 0 ? report_frames_at(&f, i) : NULL;
            if (at && report_frames_has(&f, i + 1) && at->function && at->function[0] != '+') {
                char buf[REPORT_WRAPPER_NAME];
                const char *name = report_frame_short_name(sys, at, buf);
                candidate *c = name[0] && !named_in(wr->never, wr->nnever, name) ? table_get(t, name) : NULL;
                if (c) note_point(c, at, report_frames_at(&f, i + 1));
            }
            break;
        }
    }
    /* In the order first seen (the oldest stacks' first): where more than
     * REPORT_WRAPPERS_MAX qualify, those are the ones taken. */
    int added = 0;
    for (size_t j = 0; j < t->n; j++) {
        candidate *c = &t->c[j];
        if (c->taken) continue;
        report_wrapper *forced = wrapper_named(wr, c->name);
        if (forced) { /* named +name: taken already, its callers counted now */
            forced->callers = c->ncallers;
            c->taken = 1;
            continue;
        }
        char why = wr->on ? report_wrapper_rule(c->name, c->returns_pointer, c->ncallers, c->npoints) : 0;
        if (!why || wr->n == REPORT_WRAPPERS_MAX) continue;
        add_wrapper(wr, c->name, c->ncallers, why);
        c->taken = 1;
        added++;
    }
    return added;
}

static int by_callers(const void *a, const void *b)
{
    const report_wrapper *x = a, *y = b;
    if (x->callers != y->callers) return x->callers < y->callers ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* The last set found, for as long as the tracker has as many stacks and
 * the rule is the same: the server's sampler asks for each site. */
static struct {
    pthread_mutex_t lock;
    int valid;
    uint64_t nstacks;
    char system[1024];
    char spec[512];
    report_wrappers wr;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void system_text(const report_system *sys, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "%d", sys->on);
    for (int i = 0; i < sys->n && o < len; i++) o += (size_t)snprintf(buf + o, len - o, ":%s", sys->entry[i]);
}

void report_wrappers_find(report_system *sys, const char *spec)
{
    if (!spec) spec = getenv("TRACKER_WRAPPERS");
    if (report_wrappers_parse(spec, &sys->wr) != 0) report_wrappers_parse(NULL, &sys->wr);
    if (!sys->on) return;
    tracker_totals tt;
    tracker_get_totals(&tt);
    char stext[1024];
    system_text(sys, stext, sizeof stext);
    /* trylock: a thread forked while another held the lock must not wait
     * for ever; without the lock the set is found afresh and not kept. */
    int locked = pthread_mutex_trylock(&cache.lock) == 0;
    if (locked && cache.valid && cache.nstacks == tt.stacks && strcmp(cache.system, stext) == 0 &&
        strcmp(cache.spec, spec ? spec : "") == 0) {
        sys->wr = cache.wr;
        pthread_mutex_unlock(&cache.lock);
        return;
    }
    /* Forced names first, so that their callers are the next round's. */
    for (int i = 0; i < sys->wr.nforce; i++) add_wrapper(&sys->wr, sys->wr.force[i], 0, 'f');
    table t = { 0 };
    uint32_t nstacks = tt.stacks > MAX_STACKS ? MAX_STACKS : (uint32_t)tt.stacks;
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t j = 0; j < t.n; j++) { /* each round counts afresh */
            t.c[j].ncallers = t.c[j].npoints = 0;
            t.c[j].returns_pointer = 0;
        }
        if (one_round(sys, &t, nstacks) == 0) break;
    }
    table_free(&t);
    qsort(sys->wr.w, (size_t)sys->wr.n, sizeof sys->wr.w[0], by_callers); /* the report lists the busiest first */
    if (!locked) return;
    cache.valid = 1;
    cache.nstacks = tt.stacks;
    snprintf(cache.system, sizeof cache.system, "%s", stext);
    snprintf(cache.spec, sizeof cache.spec, "%s", spec ? spec : "");
    cache.wr = sys->wr;
    pthread_mutex_unlock(&cache.lock);
}
