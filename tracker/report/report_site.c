/* report_site.c - which frame of a stack is "the site": the first one in the program's own code, and what it called. */

#include "index.h"
#include "report_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The rule (README, "How a site is chosen"): walk the frames of a stack
 * innermost first, inlined calls expanded, and skip
 *   - allocator entry points: malloc & co. and operator new/new[], wherever
 *     they are (the hooks' own reallocarray -> realloc, a static libstdc++);
 *   - "system" frames: code in a module whose path starts with a system
 *     prefix, or inlined from a source file that does (/usr/include/c++/...).
 *   - frames without a source line (no debug info): they cannot name a line;
 *   - the program's own allocation wrappers (zmalloc, xmalloc: found from
 *     the data, report_wrappers.c), as long as a caller of the program's
 *     own is left.
 * The first frame left is the site, shown with the outermost skipped
 * frame's function (or the wrapper): "mine.c:12 (via regcomp)",
 * "t_list.c:412 (via zmalloc)". When no frame has a line (a program built
 * without -g, perl's main() under libperl), the first frame of the
 * program's own code is the site, by function and offset: "[server]
 * Http::Header::parse+0x1c". When every frame is system code (an
 * allocation made entirely inside libraries, e.g. at start-up), the
 * innermost frame is the site.
 *
 * The system prefixes: TRACKER_SYSTEM, or /capture's system=, a list
 * separated by ':'. An entry starting with '/' is a path prefix (of the
 * module, or of the source file of an inlined frame); any other entry is a
 * prefix of a module's file name ("libmicrohttpd" , "libfoo.so"). A leading
 * '+' adds the entries to the default; "none" turns the rule off (the
 * innermost frame is always the site); unset or "default" is the default.
 */

/* Debian's system libraries and headers (libc, libstdc++, libgcc_s, ld.so,
 * libmicrohttpd, libdw...): everything the package manager installs. */
static const char default_system[] = "/lib/:/lib64/:/usr/lib/:/usr/lib64/:/usr/libexec/:/usr/include/";

static int add_entries(report_system *sys, const char *spec)
{
    while (*spec) {
        const char *end = strchr(spec, ':');
        size_t len = end ? (size_t)(end - spec) : strlen(spec);
        if (len > 0) {
            if (sys->n >= REPORT_SYSTEM_MAX || sys->used + len + 1 > sizeof sys->buf) return -1;
            memcpy(sys->buf + sys->used, spec, len);
            sys->buf[sys->used + len] = '\0';
            sys->entry[sys->n++] = sys->buf + sys->used;
            sys->used += len + 1;
        }
        spec += len + (end ? 1 : 0);
    }
    return 0;
}

int report_system_parse(const char *spec, report_system *sys)
{
    memset(sys, 0, sizeof *sys);
    sys->on = 1;
    if (!spec || !*spec || strcmp(spec, "default") == 0) return add_entries(sys, default_system);
    if (strcmp(spec, "none") == 0) { sys->on = 0; return 0; }
    if (spec[0] == '+') {
        if (add_entries(sys, default_system) != 0) return -1;
        spec++;
    }
    return add_entries(sys, spec);
}

int tracker_system_check(const char *spec)
{
    report_system sys;
    return report_system_parse(spec, &sys);
}

static int has_prefix(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- the memo of a report's answers per frame (report_memo_start) ---- */

typedef struct report_memo_entry {
    const tracker_frame_info *f;
    signed char system;          /* report_frame_is_system's answer, -1: not asked yet */
    char *name;                  /* report_short_name of f->function (malloc'ed), NULL: not made yet */
} report_memo_entry;

#define MEMO_MODULES 64
struct report_memo {
    report_memo_entry *e; /* the frames asked about, in the order asked */
    size_t n, cap;
    tracker_index index;  /* a frame -> its entry */
    struct {
        const char *path; /* tracker_symbolize_peek's path of a module (one pointer per module) */
        int system;
    } module[MEMO_MODULES];
    int nmodules;
};

void report_memo_start(report_system *sys)
{
    sys->memo = calloc(1, sizeof *sys->memo); /* NULL: no memo, every answer worked out */
}

void report_memo_end(report_system *sys)
{
    report_memo *m = sys->memo;
    for (size_t i = 0; m && i < m->n; i++) free(m->e[i].name);
    if (m) {
        free(m->e);
        tracker_index_free(&m->index);
    }
    free(m);
    sys->memo = NULL;
}

/* f's entry in m (added), or NULL without a memo or memory. */
static report_memo_entry *memo_get(report_memo *m, const tracker_frame_info *f)
{
    if (!m) return NULL;
    uint64_t h = tracker_hash_u64((uintptr_t)f);
    uint32_t i;
    for (size_t pos = h; tracker_index_next(&m->index, h, &pos, &i);)
        if (m->e[i].f == f) return &m->e[i];
    report_memo_entry *e = tracker_grow(m->e, m->n, &m->cap, sizeof *e, 256);
    if (!e) return NULL;
    m->e = e;
    if (tracker_index_add(&m->index, h, (uint32_t)m->n) != 0) return NULL;
    e[m->n] = (report_memo_entry){ .f = f, .system = -1 };
    return &e[m->n++];
}

/* malloc & co. (the names the hooks define) and operator new/new[]. */
static int is_allocator_entry(const char *fn)
{
    static const char *const names[] = { "malloc", "calloc", "realloc", "reallocarray", "memalign",
                                         "aligned_alloc", "posix_memalign", "valloc", "pvalloc" };
    if (!fn) return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(fn, names[i]) == 0) return 1;
    return has_prefix(fn, "operator new");
}

static int frame_is_system(const tracker_frame_info *f, const report_system *sys)
{
    if (is_allocator_entry(f->function)) return 1;
    for (int i = 0; i < sys->n; i++) {
        const char *e = sys->entry[i];
        if (e[0] == '/' ? has_prefix(f->module_path, e) || (f->file && has_prefix(f->file, e)) ||
                              (f->path && has_prefix(f->path, e))
                        : has_prefix(f->module, e))
            return 1;
    }
    return 0;
}

int report_frame_is_system(const tracker_frame_info *f, const report_system *sys)
{
    if (!sys->on) return 0;
    report_memo_entry *e = memo_get(sys->memo, f);
    if (!e) return frame_is_system(f, sys);
    if (e->system < 0) e->system = (signed char)frame_is_system(f, sys);
    return e->system;
}

const char *report_frame_short_name(const report_system *sys, const tracker_frame_info *f, char *buf)
{
    report_memo_entry *e = memo_get(sys->memo, f);
    if (e && e->name) return e->name;
    report_short_name(f->function, buf, REPORT_WRAPPER_NAME);
    if (e) e->name = strdup(buf); /* NULL when out of memory: made again next time */
    return buf;
}

/* fn without parameters, template arguments or return type: what a reader
 * calls it. "std::vector<int, std::allocator<int> >::push_back(int const&)"
 * -> "std::vector::push_back"; "operator new(unsigned long)" -> "operator new". */
void report_short_name(const char *fn, char *buf, size_t len)
{
    size_t o = 0;
    int depth = 0;
    for (const char *s = fn; *s && o + 1 < len; s++) {
        if (strncmp(s, "operator", 8) == 0 && depth == 0) { /* kept as written: operator<, operator() */
            size_t k = 8;
            if (has_prefix(s + k, " new")) k += 4;
            else if (has_prefix(s + k, " delete")) k += 7;
            else if (s[k] == ' ') while (s[k] && s[k] != '(') k++; /* a conversion: "operator bool" */
            else {
                while (s[k] && strchr("<>=!+-*/%&|^~,", s[k])) k++;
                if (s[k] == '(' && s[k + 1] == ')') k += 2; /* operator() */
            }
            if (s[k] == '[' && s[k + 1] == ']') k += 2;
            for (size_t i = 0; i < k && o + 1 < len; i++) buf[o++] = s[i];
            s += k - 1;
            continue;
        }
        if (depth == 0 && (strncmp(s, "(anonymous namespace)", 21) == 0 || *s == '{')) {
            /* copied as is: "(anonymous namespace)", "{lambda(int)#1}" */
            const char *e = *s == '{' ? strchr(s, '}') : s + 20;
            if (!e) break;
            for (; s <= e && o + 1 < len; s++) buf[o++] = *s;
            s--;
            continue;
        }
        if (*s == '<') { depth++; continue; }
        if (*s == '>') { if (depth) depth--; continue; }
        if (depth) continue;
        if (*s == '(') break; /* the parameter list: the rest is parameters and qualifiers */
        if (*s == ' ' && s[1] == '<') continue; /* "operator< <char>": its template arguments follow */
        if (*s == ' ' && o > 0 && buf[o - 1] != ' ' && strchr(s + 1, '(')) {
            o = 0; /* a return type before the name ("void foo<int>(...)"): drop it */
            continue;
        }
        buf[o++] = *s;
    }
    while (o > 0 && buf[o - 1] == ' ') o--;
    buf[o] = '\0';
}

void report_frames_of(report_frames *f, uint32_t stack_id, const report_system *sys)
{
    f->sys = sys;
    f->pcs = tracker_stack_frames(stack_id, &f->npcs);
    if (f->npcs > TRACKER_MAX_FRAMES) f->npcs = TRACKER_MAX_FRAMES;
    f->next = f->n = 0;
    tracker_symbolize_peek(f->pcs, f->npcs, f->peek);
}

/* A module under a system prefix: every frame in it is system code. */
static int module_is_system(const char *path, const report_system *sys)
{
    report_memo *m = sys->memo;
    for (int i = 0; m && i < m->nmodules; i++)
        if (m->module[i].path == path) return m->module[i].system;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int system = 0;
    for (int i = 0; i < sys->n && !system; i++)
        system = has_prefix(sys->entry[i][0] == '/' ? path : base, sys->entry[i]);
    if (m && m->nmodules < MEMO_MODULES) {
        m->module[m->nmodules].path = path;
        m->module[m->nmodules++].system = system;
    }
    return system;
}

/* Append the frames of the next return address. */
static void expand_next(report_frames *f)
{
    const tracker_peek *p = &f->peek[f->next];
    uintptr_t pc = f->pcs[f->next++];
    const tracker_frame_info *fr = p->frames;
    int m = p->n;
    if (m == 0 && p->module && !p->dwarf && f->sys->on) {
        f->pc[f->n] = pc; /* one frame without a line: looked up when needed */
        f->sys_module[f->n] = (unsigned char)module_is_system(p->module, f->sys);
        f->fr[f->n++] = NULL;
        return;
    }
    if (m == 0) m = tracker_symbolize_all(pc, &fr);
    for (int j = 0; j < m && f->n < REPORT_FLAT_MAX; j++) {
        f->pc[f->n] = pc;
        f->fr[f->n++] = &fr[j];
    }
}

int report_frames_has(report_frames *f, int i)
{
    while (f->n <= i && f->next < f->npcs && f->n < REPORT_FLAT_MAX) expand_next(f);
    return i < f->n;
}

const tracker_frame_info *report_frames_at(report_frames *f, int i)
{
    if (!f->fr[i]) {
        const tracker_frame_info *fr;
        tracker_symbolize_all(f->pc[i], &fr); /* one frame, its module having no DWARF */
        f->fr[i] = &fr[0];
    }
    return f->fr[i];
}

int report_next_own(report_frames *f, int from, int pass)
{
    for (int i = from; report_frames_has(f, i); i++) {
        /* A frame not looked up has no line: in a system module it is
         * system code, in the program's own it is for pass 2 only. */
        if (!f->fr[i] && (f->sys_module[i] || pass == 1)) continue;
        report_frames_at(f, i);
        if (report_frame_is_system(f->fr[i], f->sys)) continue;
        if (pass == 1 ? f->fr[i]->file != NULL : f->fr[i]->module_path != NULL) return i;
    }
    return -1;
}

static void set_via(report_site *out, const tracker_frame_info *prev)
{
    if (prev && prev->function && prev->function[0] != '+')
        report_short_name(prev->function, out->via, sizeof out->via);
    else if (prev) /* a function without a name: say which library */
        snprintf(out->via, sizeof out->via, "%s", prev->module);
}

/* Pass 1 looks for a frame with a source line; pass 2, for a program (or
 * one of its libraries) built without -g, for the first frame of its own
 * code, named by function and offset. Within a pass, a frame of one of
 * the program's allocation wrappers (report_wrappers.c) is passed over
 * for its caller, as long as there is a caller of the program's own: the
 * wrapper then is the "(via ...)". */
void report_site_of_stack(uint32_t stack_id, const report_system *sys, report_site *out)
{
    report_frames f;
    report_frames_of(&f, stack_id, sys);
    memset(out, 0, sizeof *out);
    if (!report_frames_has(&f, 0)) { /* no frames at all */
        static const tracker_frame_info none = { .module = "?" };
        out->innermost = out->site = &none;
        return;
    }
    out->innermost = out->site = report_frames_at(&f, 0);
    if (!sys->on) return;
    for (int pass = 1; pass <= 2; pass++) {
        int i = report_next_own(&f, 0, pass);
        if (i < 0) continue;
        int wrapper = -1;
        while (report_frame_wrapper(sys, report_frames_at(&f, i))) {
            int k = report_next_own(&f, i + 1, pass);
            if (k < 0) break; /* no caller of its own: the wrapper stays the site */
            wrapper = i;
            i = k;
        }
        out->site = report_frames_at(&f, i);
        out->own = 1;
        if (wrapper >= 0) {
            report_short_name(report_frames_at(&f, wrapper)->function, out->via, sizeof out->via);
            out->wrapped = 1;
        } else if (i > 0) {
            set_via(out, report_frames_at(&f, i - 1));
        }
        return;
    }
}

void report_site_name(const report_site *s, char *buf, size_t len)
{
    const tracker_frame_info *f = s->site;
    if (s->own && !f->file && f->function && f->function[0] != '+') {
        /* The program's own code without debug info: its function, and
         * where in it, so two callers in one function stay two sites. */
        char fn[256];
        report_short_name(f->function, fn, sizeof fn);
        if (f->offset) snprintf(buf, len, "[%s] %s+0x%lx", f->module, fn, f->offset);
        else snprintf(buf, len, "[%s] %s", f->module, fn);
        return;
    }
    tracker_format_site(f, buf, len);
}

void report_site_format(const report_site *s, char *buf, size_t len)
{
    report_site_name(s, buf, len);
    if (s->via[0]) {
        size_t l = strlen(buf);
        if (l + 1 < len) snprintf(buf + l, len - l, " (via %s)", s->via);
    }
}

void report_each_frame(uint32_t stack_id, int physical, report_frame_fn fn, void *arg)
{
    int n = 0, index = 0;
    const uintptr_t *pcs = tracker_stack_frames(stack_id, &n);
    for (int i = 0; i < n && i < physical; i++) {
        const tracker_frame_info *fr;
        int k = tracker_symbolize_all(pcs[i], &fr);
        for (int j = 0; j < k; j++) fn(arg, index++, pcs[i], &fr[j]);
    }
}
