/* report_internal.h - the pieces of tracker_report shared by its files: a growable string, groups, text and JSON output. */
#ifndef REPORT_INTERNAL_H
#define REPORT_INTERNAL_H

#include "tracker.h"
#include "symbolize.h"
#include "tracker_internal.h"

#include <stddef.h>
#include <stdint.h>

/*
 * tracker_report (report.c) runs in three steps, one file each:
 *   report_group.c  one row per (snapshot, stack), keyed, merged into groups, sorted;
 *   report_text.c   groups as tracemalloc's lines;
 *   report_json.c   groups as one JSON object;
 *   report_folded.c (no grouping) stacks as folded lines, for flame graphs.
 * All of it runs under the tracker's recursion guard: its memory is not tracked.
 */

/* ---- report_buf.c: a growable string ---- */

typedef struct strbuf {
    char *buf;  /* NUL-terminated text so far */
    size_t len; /* bytes used, without the NUL */
    size_t cap; /* bytes allocated */
    int oom;    /* an append failed: the result is discarded */
} strbuf;

void sb_append(strbuf *sb, const char *s, size_t n);
__attribute__((format(printf, 2, 3))) void sb_printf(strbuf *sb, const char *fmt, ...);
/* report_json.c: s as a JSON string (NULL: null). report_text.c: a size as
 * tracemalloc prints it ("392 MiB"; sign: "+39.3 KiB"). Also used by the
 * retention report (retention_report.c). */
void sb_json_string(strbuf *sb, const char *s);
void format_size(char *out, size_t len, double size, int sign);

/* ---- report_site.c: the frame that names a stack ---- */

#define REPORT_SYSTEM_MAX 32 /* entries in a list of system prefixes */

#define REPORT_WRAPPERS_MAX 64  /* wrappers taken at once (found or named) */
#define REPORT_WRAPPER_NAME 96  /* bytes of a wrapper's short name */
#define REPORT_WRAPPER_NAMED 16 /* +name / -name entries of TRACKER_WRAPPERS */
#define REPORT_WRAPPER_CALLERS 256 /* distinct callers counted per function */

/* One function taken for an allocation wrapper (report_wrappers.c). */
typedef struct report_wrapper {
    char name[REPORT_WRAPPER_NAME]; /* short name, as report_short_name gives it */
    unsigned callers;               /* distinct call sites seen (capped at REPORT_WRAPPER_CALLERS) */
    char why;                       /* 'n': its name says alloc/dup/new; 'p': returns a pointer;
                                       'f': named in TRACKER_WRAPPERS */
} report_wrapper;

/* The program's own allocation wrappers: skipped like malloc when choosing a site. */
typedef struct report_wrappers {
    int on;                                             /* 0: TRACKER_WRAPPERS=none (only +names) */
    int n;                                              /* entries in w */
    report_wrapper w[REPORT_WRAPPERS_MAX];
    int nforce, nnever;                                 /* entries of the two lists below */
    char force[REPORT_WRAPPER_NAMED][REPORT_WRAPPER_NAME]; /* +name: always a wrapper */
    char never[REPORT_WRAPPER_NAMED][REPORT_WRAPPER_NAME]; /* -name: never one */
} report_wrappers;

/* What counts as "system" code (skipped when choosing a site). */
typedef struct report_memo report_memo;

typedef struct report_system {
    int on;                             /* 0: "none", the innermost frame is the site */
    int n;                              /* entries */
    const char *entry[REPORT_SYSTEM_MAX]; /* path prefixes ("/usr/lib/") or module name prefixes */
    char buf[1024];                     /* the entries' text */
    size_t used;                        /* bytes of buf used */
    report_wrappers wr;                 /* wrappers skipped too (report_wrappers_find) */
    report_memo *memo;           /* what each frame is under this rule, kept for one report
                                           (report_memo_start); NULL: worked out at each ask */
} report_system;

/* Parse a list as TRACKER_SYSTEM takes it (NULL: the default). Returns 0,
 * or -1 when it has too many or too long entries. */
int report_system_parse(const char *spec, report_system *sys);

/* 1 when frame f is skipped by the rule: an allocator entry point, or in
 * system code. */
int report_frame_is_system(const tracker_frame_info *f, const report_system *sys);

/* A report asks the same questions of the same frames (a frame of the
 * symbolizer's cache is shared by every stack through its address) once
 * per stack, per wrapper round and per pass: between start and end, sys
 * keeps each frame's answers (system or not, its short name). Without
 * memory the answers are worked out at each ask, as without a memo. */
void report_memo_start(report_system *sys);
void report_memo_end(report_system *sys);

/* Short name of f->function (as report_short_name, in REPORT_WRAPPER_NAME
 * bytes): sys's memo's copy, else written into buf. */
const char *report_frame_short_name(const report_system *sys, const tracker_frame_info *f, char *buf);

/* fn as a reader calls it: without parameters, template arguments or
 * return type ("std::vector<int, std::allocator<int> >::push_back(int
 * const&)" -> "std::vector::push_back"; "operator new(unsigned long)" ->
 * "operator new"). Writes a NUL-terminated string into buf. */
void report_short_name(const char *fn, char *buf, size_t len);

typedef struct report_site {
    const tracker_frame_info *site;      /* the program's own frame, else the innermost */
    const tracker_frame_info *innermost; /* the innermost frame of the stack */
    int own;                             /* 1: site is the program's own */
    int wrapped;                         /* 1: via names a wrapper of the program skipped */
    char via[128];                       /* short name of the function the site called
                                            into system code through, or "" */
} report_site;

/* Choose the site of an interned stack. Never fails. */
void report_site_of_stack(uint32_t stack_id, const report_system *sys, report_site *out);

/* "file:line (via fn)", "file:line", "[module] function+0x1c (via fn)" (the
 * program's own frame without a line) or "[module] function". */
void report_site_format(const report_site *s, char *buf, size_t len);

/* The same without "(via ...)": the key a site is grouped by. */
void report_site_name(const report_site *s, char *buf, size_t len);

/* The frames of an interned stack, inlined calls expanded, innermost
 * first (at most REPORT_FLAT_MAX), looked up as they are asked for: the
 * site is chosen from the first frames of the program's own code. A
 * return address in a module without DWARF is exactly one frame without
 * a line: in a system module (libc, a stripped /usr/lib program) it is
 * passed over without symbolizing it, in the program's own (a stripped
 * /usr/bin program) it is symbolized only when pass 2 gets to it. */
#define REPORT_FLAT_MAX (TRACKER_MAX_FRAMES * 4)
typedef struct report_frames {
    const report_system *sys;
    const uintptr_t *pcs;
    int npcs, next;                              /* return addresses, the next one to expand */
    tracker_peek peek[TRACKER_MAX_FRAMES];       /* what is known of each before symbolizing */
    int n;                                       /* frames so far */
    const tracker_frame_info *fr[REPORT_FLAT_MAX]; /* NULL: not looked up yet (a module without DWARF) */
    uintptr_t pc[REPORT_FLAT_MAX];               /* the return address of each frame */
    unsigned char sys_module[REPORT_FLAT_MAX];   /* 1: in a system module (when fr is NULL) */
} report_frames;

void report_frames_of(report_frames *f, uint32_t stack_id, const report_system *sys);

/* 1 when the stack has a frame i (expanding it as far as needed). */
int report_frames_has(report_frames *f, int i);

/* Frame i (which report_frames_has said exists), symbolized. */
const tracker_frame_info *report_frames_at(report_frames *f, int i);

/* The index of the first frame at or after from that can be a site: not
 * system code, with a source line (pass 1) or only in a known module
 * (pass 2: code without debug info); -1 when none. */
int report_next_own(report_frames *f, int from, int pass);

/* ---- report_wrappers.c ---- */

/* Fill sys->wr from the stacks the tracker has (every stack interned so
 * far) and spec (TRACKER_WRAPPERS: "none", "+name", "-name", a ',' list;
 * NULL: $TRACKER_WRAPPERS). The set is cached until the number of stacks
 * changes. */
void report_wrappers_find(report_system *sys, const char *spec);

/* The wrapper frame f's function is, or NULL. */
const report_wrapper *report_wrapper_of(const report_wrappers *wr, const tracker_frame_info *f);

/* The same for sys->wr, with sys's memo of short names. */
const report_wrapper *report_frame_wrapper(const report_system *sys, const tracker_frame_info *f);

/* Parse spec into wr's on/force/never (the found list emptied). Returns 0,
 * or -1 when an entry is too long or there are too many. */
int report_wrappers_parse(const char *spec, report_wrappers *wr);

/* Decide from one function's evidence (its short name, whether it returns
 * a pointer, distinct callers, distinct allocation points in it) whether
 * it is taken for a wrapper: returns its "why" ('n', 'p') or 0. The rule,
 * on its own for the unit tests. */
char report_wrapper_rule(const char *short_name, int returns_pointer, unsigned callers, unsigned points);

/* Call fn for every frame of the first `physical` return addresses of an
 * interned stack, inlined calls expanded, innermost first; index counts
 * the frames from 0. */
typedef void (*report_frame_fn)(void *arg, int index, uintptr_t pc, const tracker_frame_info *f);
void report_each_frame(uint32_t stack_id, int physical, report_frame_fn fn, void *arg);

/* ---- report_group.c ---- */

/* What a report compares. */
typedef enum report_mode {
    REPORT_ABSOLUTE, /* statistics of one snapshot */
    REPORT_DIFF      /* now compared to prev, as Snapshot.compare_to */
} report_mode;

typedef struct group {
    const char *key;        /* group key text (owned by the grouping) */
    uint64_t size, count;   /* in now */
    uint64_t psize, pcount; /* in prev */
    uint32_t rep;           /* stack shown for the group: biggest in now (else prev) */
    uint64_t rep_size;      /* its size */
    int rep_from_now;       /* rep comes from now */
} group;

typedef struct grouping {
    report_system system; /* the rule sites were chosen by */
    group *groups;  /* sorted, biggest (growth) first */
    size_t ngroups; /* entries in groups */
    char **keys;    /* key texts, freed with the grouping */
    size_t nkeys;   /* entries in keys */
} grouping;

/* Group now (and prev in REPORT_DIFF) by opts->key. Returns 0, or -1 when
 * out of memory (out then holds nothing to free). */
int report_group(const tracker_snapshot *now, const tracker_snapshot *prev, report_mode mode,
                 const tracker_report_opts *opts, grouping *out);
void report_group_free(grouping *g);

/* now - before as a signed number, without signed overflow (wraps like
 * the counters themselves would past 2^63: never in practice). */
static inline long long report_delta(uint64_t now, uint64_t before) { return (long long)(now - before); }

/* "lineno", "traceback" or "filename". */
const char *report_key_name(tracker_key k);

/* ---- report_text.c and report_json.c: the whole report for one grouping ---- */

/* t0: when the report started (tracker_now), for its own timing line;
 * rss_prev: the snapshot RSS growth is measured from (prev, or an absolute
 * report's previous one), NULL for none. */
void report_text(strbuf *sb, const grouping *g, const tracker_snapshot *now, const tracker_snapshot *prev,
                 const tracker_snapshot *rss_prev, report_mode mode, const tracker_report_opts *opts, double t0);
void report_json(strbuf *sb, const grouping *g, const tracker_snapshot *now, const tracker_snapshot *prev,
                 const tracker_snapshot *rss_prev, report_mode mode, const tracker_report_opts *opts, double t0);

/* tracker_report, with since: for an absolute report (prev NULL), the
 * previous report's snapshot, which its "# rss:" line compares with (the
 * preload's exit report after on-demand ones). */
char *report_since(const tracker_snapshot *now, const tracker_snapshot *prev, const tracker_snapshot *since,
                   const tracker_report_opts *opts, size_t *len);

/* "# wrappers: ..." (nothing when none was taken): which functions the
 * sites skipped as the program's allocation wrappers. */
void report_wrappers_line(strbuf *sb, const report_wrappers *wr);

/* ---- report_rss.c: resident memory beside the tracked heap ---- */

typedef struct report_rss {
    uint64_t rss, anon;      /* VmRSS, RssAnon now (0: unknown) */
    uint32_t threads;        /* threads now */
    int have_prev;           /* the deltas below are set */
    long long drss, dheap, danon, dfile, dthreads; /* since the previous report */
    int unseen;              /* RSS grew far more than the tracked heap */
    char cause[256];         /* the likely cause, when unseen */
    const char *static_kind, *static_symbol, *static_module; /* tracker_static_allocator */
} report_rss;

void report_rss_of(const tracker_snapshot *now, const tracker_snapshot *prev, report_rss *out);

/* ---- report_folded.c: every stack, not grouped ---- */
void report_folded(strbuf *sb, const tracker_snapshot *now, const tracker_snapshot *prev,
                   const tracker_report_opts *opts);

#endif /* REPORT_INTERNAL_H */
