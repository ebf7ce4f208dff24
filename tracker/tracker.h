/* tracker.h - what a consumer of the allocation tracker needs: live heap blocks by call stack, and reports of them. */
#ifndef TRACKER_H
#define TRACKER_H

/*
 * The tracker knows nothing of HTTP. It is fed by the malloc-family hooks in
 * tracker/record/hooks.c (linked into a program, or preloaded as bin/libtracker.so)
 * and answers questions about what is live right now:
 *
 *   tracker_snapshot *s = tracker_snapshot_take();     // cheap: O(call sites)
 *   char *text = tracker_report(s, prev, &opts, &len); // group, diff, format
 *
 * Counts are exact: every block allocated while the tracker is enabled is
 * recorded with its size and the id of its (interned) call stack.
 *
 * This header is for programs that read the tracker (the lab server, a
 * user's own code). The entry points of the hooks and of the tracker's
 * tests (recording, the recursion guard, fault injection) are in
 * tracker_internal.h.
 */

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define TRACKER_MAX_FRAMES 16 /* deepest call stack recorded per allocation */

/* Totals of the whole process, as the tracker sees it. */
typedef struct tracker_totals {
    uint64_t live_bytes;        /* bytes requested by live tracked blocks */
    uint64_t live_blocks;       /* number of live tracked blocks */
    uint64_t stacks;            /* distinct call stacks interned so far */
    uint64_t lost_records;      /* blocks not recorded: bookkeeping had no memory */
    uint64_t bookkeeping_bytes; /* memory the tracker's own tables occupy, heap_bookkeeping_bytes included */
    uint64_t heap_bookkeeping_bytes; /* the part inside malloc's heap: the blocks' headers (hooks.c) */
} tracker_totals;

/* 1 when hooks are linked in (tracker/record/hooks.c), 0 in builds without them. */
int tracker_hooks_linked(void);

/* Start (1) or stop (0) recording new allocations. Blocks recorded before a
 * stop are still forgotten when freed. Default: on. */
void tracker_set_enabled(int on);

/* 1 when hooks are linked and recording is on. */
int tracker_is_active(void);

/* Fill *out with the current totals. Never fails. */
void tracker_get_totals(tracker_totals *out);

/* ---- snapshots: a copy of per-stack aggregates, cost O(stacks) ---- */

typedef struct tracker_stack_stat {
    uint32_t stack_id;    /* id of the interned call stack */
    uint64_t size;        /* live bytes allocated from this stack */
    uint64_t count;       /* live blocks allocated from this stack */
    uint64_t alloc_bytes; /* bytes allocated from this stack since start (freed ones too) */
    uint64_t alloc_count; /* blocks allocated from this stack since start (freed ones too) */
} tracker_stack_stat;

typedef struct tracker_snapshot {
    tracker_stack_stat *stats; /* one entry per stack with live blocks (see flags), by ascending stack_id */
    size_t nstats;            /* entries in stats */
    tracker_totals totals;    /* totals when the snapshot was taken */
    double taken_at;          /* CLOCK_MONOTONIC seconds */
    double take_seconds;      /* time the copy took */
    /* The process's resident memory beside it (/proc/self/status), filled
     * by tracker_baseline_report; all 0 when not read (a report then reads
     * the current values). */
    uint64_t rss_bytes;       /* VmRSS */
    uint64_t rss_anon_bytes;  /* RssAnon: heap, anonymous mmaps, thread stacks */
    uint64_t rss_file_bytes;  /* RssFile: code and mapped files */
    uint32_t threads;         /* Threads */
} tracker_snapshot;

/* Fill snap's rss_* and threads from /proc/self/status (left 0 when it
 * cannot be read). */
void tracker_snapshot_read_rss(tracker_snapshot *snap);

/* The allocator linked into the program itself, which a preload cannot
 * see ("jemalloc", "tcmalloc", "mimalloc"; the symbol it was found by in
 * *symbol, the module in *module), or NULL. Found once, from the symbol
 * tables of the program and of its libraries outside the system prefixes. */
const char *tracker_static_allocator(const char **symbol, const char **module);

/* Take a snapshot. Also re-reads the list of loaded code (libraries
 * dlopen'ed since the last one), so stacks reported from it are named with
 * the modules loaded now. Returns NULL only if its own copy cannot be
 * allocated. Not from inside a malloc hook. */
tracker_snapshot *tracker_snapshot_take(void);

/* Flags of tracker_snapshot_take_flags. */
#define TRACKER_SNAP_ALL_STACKS 1u /* also stacks with no live block that allocated
                                      since start (pprof's alloc_* need them) */

/* tracker_snapshot_take with flags (0: the same as tracker_snapshot_take). */
tracker_snapshot *tracker_snapshot_take_flags(unsigned flags);

/* Free a snapshot (NULL is a no-op). */
void tracker_snapshot_free(tracker_snapshot *snap);

/* Frames of an interned stack: returns a pointer to *nframes return
 * addresses, innermost first (valid for the life of the process). */
const uintptr_t *tracker_stack_frames(uint32_t stack_id, int *nframes);

/* ---- symbolization: address -> file:line (function), via libdw, cached ---- */

#define TRACKER_MAX_INLINE 16 /* frames one return address expands to (inlined calls;
                                a deeper chain keeps its outermost 16) */

/* One frame of source: a function and where in it. A return address gives
 * one such frame per inlined call, then the function it was inlined into. */
typedef struct tracker_frame_info {
    const char *file;        /* source path as printed: relative to the module's source
                                root (the common prefix of its units' compile dirs and
                                sources), else to the working directory, else absolute;
                                NULL when unknown */
    int line;                /* source line, 0 when unknown */
    const char *function;    /* function name, C++ demangled (namespace, class,
                                parameters), or "+0x..." in a stripped module, or NULL */
    const char *module;      /* basename of the executable or shared library, or "?" */
    const char *module_path; /* its path as loaded, or NULL */
    int inlined;             /* 1: this call was inlined into the next frame out */
    const char *path;        /* file made absolute against its unit's DW_AT_comp_dir, or
                                NULL (no file, or built with a relative compile dir) */
    unsigned long offset;    /* return address - the function's start, from the symbol
                                table, for frames without a line; 0 when unknown */
    int returns_pointer;     /* 1: DWARF says the function returns a pointer */
} tracker_frame_info;

/* Describe return address pc (looked up at pc - 1): the innermost of its
 * frames (tracker_symbolize_all). Strings stay valid for the life of the
 * process. Never fails: unknown parts are NULL/0/"?". */
void tracker_symbolize(uintptr_t pc, tracker_frame_info *out);

/* All frames of return address pc, inlined calls expanded (libdw's inline
 * scopes: each DW_TAG_inlined_subroutine says where it was called from),
 * innermost first. Sets *frames to an array valid for the life of the
 * process and returns its length, 1..TRACKER_MAX_INLINE. */
int tracker_symbolize_all(uintptr_t pc, const tracker_frame_info **frames);

/* Write "file:line" or "[module] function" for info into buf. */
void tracker_format_site(const tracker_frame_info *info, char *buf, size_t len);

/* ---- reports in tracemalloc's shape ---- */

/* The "site" of a stack is its first frame in the program's own code
 * (allocator entry points, system libraries/headers (see
 * tracker_system_check) and frames without a source line skipped), shown
 * with what it called: "mine.c:12 (via regcomp)"; the innermost frame when
 * no frame is left. */
typedef enum tracker_key {
    TRACKER_KEY_LINENO,    /* group by the site's file:line */
    TRACKER_KEY_TRACEBACK, /* group by the first `frames` frames of the stack */
    TRACKER_KEY_FILENAME   /* group by the site's file */
} tracker_key;

typedef enum tracker_format {
    TRACKER_FORMAT_TEXT, /* tracemalloc's lines, then "# ..." summary lines */
    TRACKER_FORMAT_JSON,  /* one JSON object */
    TRACKER_FORMAT_FOLDED /* "outer;...;inner bytes" lines for flame graphs (report_folded.c) */
} tracker_format;

typedef struct tracker_report_opts {
    tracker_key key;       /* grouping */
    int top;               /* number of groups to show, >= 1 */
    int frames;            /* frames shown per group, 1..TRACKER_MAX_FRAMES */
    tracker_format format; /* text or JSON */
    int capture_no;        /* sequence number shown in the report (1 = first) */
    const char *system;    /* what counts as system code when choosing a site (a
                              ':' list, see tracker_system_check); NULL:
                              $TRACKER_SYSTEM, else the default */
} tracker_report_opts;

/* Format now (compared to prev when prev is not NULL, as
 * Snapshot.compare_to does; absolute statistics otherwise). Returns a
 * malloc'ed NUL-terminated string and its length in *len, or NULL when out
 * of memory. */
char *tracker_report(const tracker_snapshot *now, const tracker_snapshot *prev,
                     const tracker_report_opts *opts, size_t *len);

/* The group key stack_id has under opts (key and frames; top, json and
 * capture_no are not used): the "site" /capture prints for it, e.g.
 * "server/fetch_user_data.c:27". When site is not NULL it receives the
 * frame the key names. Returns malloc'ed text (the caller frees it, its
 * memory is not tracked), or NULL when out of memory. For callers that
 * group by site themselves (the server's per-site history): they follow
 * /capture's naming without repeating it. */
char *tracker_site_key(uint32_t stack_id, const tracker_report_opts *opts, tracker_frame_info *site);

/* ---- reports against a kept baseline (GET /capture, the preload's reports) ---- */

/* Guarded by the tracker's one report lock (baseline.c): one report at a
 * time in the process, and fork() waits for it. */
typedef struct tracker_baseline {
    tracker_snapshot *prev; /* snapshot of the last kept report, NULL before the first */
    int reports;            /* reports made so far (the next is number reports + 1) */
} tracker_baseline;

#define TRACKER_BASELINE_INIT { NULL, 0 }

typedef enum tracker_baseline_mode {
    TRACKER_BASELINE_DIFF,    /* the difference since b's previous kept snapshot
                                 (absolute the first time); the new snapshot
                                 becomes the baseline */
    TRACKER_BASELINE_ABSOLUTE /* absolute statistics; the baseline left alone */
} tracker_baseline_mode;

/* Take a snapshot and report it as mode says. opts->capture_no is replaced
 * by the report's number, also stored in *no when no is not NULL. Returns
 * malloc'ed text, or NULL when out of memory, with b unchanged. */
char *tracker_baseline_report(tracker_baseline *b, tracker_baseline_mode mode,
                              const tracker_report_opts *opts, size_t *len, int *no);

/* Free the kept snapshot (at exit); the next kept report is absolute. */
void tracker_baseline_clear(tracker_baseline *b);

/* Check a list of system prefixes as tracker_report_opts.system takes it:
 * entries separated by ':', each a path prefix ("/usr/lib/": of a module,
 * or of the source file of an inlined frame) or a prefix of a module's file
 * name ("libmicrohttpd"); "+..." adds to the default
 * (/lib/:/lib64/:/usr/lib/:/usr/lib64/:/usr/libexec/:/usr/include/);
 * "none": no frame is skipped; "default". Returns 0 when usable, -1 when it
 * has more than 32 entries or 1 KiB of text. */
int tracker_system_check(const char *spec);

/* Parse "lineno"/"traceback"/"filename". Returns 0 on success, -1 otherwise. */
int tracker_key_parse(const char *s, tracker_key *out);

/* ---- retention: lost or held, and who holds it (retention.c, docs/retention.md) ---- */

/* A scan of a copy-on-write snapshot of the process: every live recorded
 * block marked conservatively from the roots (modules' data and bss, each
 * thread's stack, the main thread's TLS), then split per site into
 * unreachable (direct / indirect, as valgrind tells them) and reachable,
 * and for reachable memory its owners: the nearest block of another site,
 * global or thread stack that dominates it (freeing the owner frees it). */

typedef struct tracker_retention_owner {
    char *owner;    /* a site ("server/profile_cache.c:38 (via realloc)"), "global NAME (module)",
                       "thread stack (tid N)", "main thread's TLS" or "several roots" */
    int kind;       /* 1 site, 2 global, 3 stack, 4 TLS, 5 several roots (retention.h) */
    uint64_t bytes, blocks;
} tracker_retention_owner;

typedef struct tracker_retention_site {
    char *site;
    uint64_t bytes, blocks;                      /* live */
    uint64_t unreachable_bytes, unreachable_blocks; /* direct + indirect */
    uint64_t indirect_bytes, indirect_blocks;    /* the part pointed at only by other lost blocks */
    uint64_t reachable_bytes, reachable_blocks;
    uint64_t interior_blocks;                    /* reachable only through interior pointers */
    tracker_retention_owner *owners;             /* biggest first */
    size_t nowners;
} tracker_retention_site;

typedef struct tracker_retention {
    int available;          /* 0: no scan; reason says why */
    char reason[200];
    double pause_ms;        /* what the program's other threads could see: the clone */
    double scan_ms;         /* the child's work: find the blocks, mark, dominators */
    double total_ms;        /* the calling thread's whole wait */
    double enum_ms, mark_ms, dom_ms; /* scan_ms in parts: find the blocks; mark and tell loss; dominators */
    uint64_t child_private_kb; /* the extra memory at the scan's end: the child's own pages (its
                                  arrays, and the pages the program wrote meanwhile: copy-on-write) */
    uint64_t blocks_scanned, bytes_scanned, table_blocks, heap_bytes_read, edges, interior_blocks;
    uint64_t root_data_bytes, root_stack_bytes, root_tls_bytes;
    unsigned data_ranges, threads, stacks_exact, stacks_whole;
    uint64_t unreachable_bytes, unreachable_blocks, reachable_bytes, reachable_blocks;
    tracker_retention_site *sites; /* most unreachable + reachable bytes first */
    size_t nsites;
} tracker_retention;

/* Scan now. system: as tracker_report_opts.system (sites are named as
 * /capture's key=lineno names them). The calling thread's stack is scanned
 * from stack_from up to the end of its mapping: the lowest address of the
 * program's own frames (and of its saved registers), for a caller that
 * runs on a stack of its own or whose frames' unwritten locals would keep
 * stale words alive; NULL: from this function's frame. Never NULL but
 * when out of memory; ->available 0 with ->reason when the snapshot cannot
 * be had (clone refused, the child died or took longer than timeout_s).
 * Not from a signal handler. */
tracker_retention *tracker_retention_scan(const char *system, double timeout_s, const void *stack_from);

/* Text (json 0) or JSON of r, the top sites, each with up to 5 owners and
 * the chain of its top owner. Returns malloc'ed text and its length. */
char *tracker_retention_format(const tracker_retention *r, int top, int json, size_t *len);

/* The verdict of one site in a few words: "lost", "held by OWNER <- ...",
 * "partly lost (N%)"; NULL when the site is not in r. malloc'ed. */
char *tracker_retention_verdict(const tracker_retention *r, const char *site);

void tracker_retention_free(tracker_retention *r);

/* The calling thread's allocations between begin and end are not recorded (a
 * consumer's own bookkeeping, e.g. the server's per-site history, kept out of
 * the sites it reports). Nests: pass end what begin returned. */
int tracker_untracked_begin(void);
void tracker_untracked_end(int begun);

#endif /* TRACKER_H */
