/* rss.h - RSS explained: VmRSS split into the tracked heap, the allocator's spare memory, the tracker's and the history's own, and the rest. */
#ifndef RSS_H
#define RSS_H

#include <stddef.h>
#include <stdint.h>

/*
 * All in bytes, read at one moment:
 *   tracked_live + heap_untracked + history + heap_free   = what malloc got from the system
 *                                                           (mallinfo2: arena + hblkhd)
 *   + bookkeeping + code_and_files + thread_stacks       = explained
 *   vm_rss - explained                                   = unexplained (signed: + anonymous
 *     memory nobody above accounts for, e.g. TLS blocks or a library's own mmap; - memory malloc
 *     obtained but never touched, e.g. a fresh top chunk)
 * Read fresh on each call (cheap counters): VmRSS, RssFile, RssShmem, mallinfo2, the tracker's
 * totals, the history's size. From the last walk of /proc/self/smaps (rss_refresh_maps; the
 * history's sampler does one every RSS_MAPS_EVERY_S, as a walk costs ~15 ms at 400 MB): the
 * thread stacks, the arena heaps and the pages libraries have written (in RssAnon, counted with
 * their code).
 */
#define RSS_MAPS_EVERY_S 10.0
typedef struct rss_parts {
    uint64_t vm_rss;         /* VmRSS of /proc/self/status */
    uint64_t tracked_live;   /* live bytes of the blocks the tracker recorded (what /capture shows) */
    uint64_t heap_untracked; /* malloc'ed, not tracked: chunk headers and rounding, libdw's tables,
                              * the tracker's snapshots, blocks from before it started */
    uint64_t history;        /* the per-site history's memory (history.h; untracked, malloc'ed) */
    uint64_t heap_free;      /* free chunks malloc holds and has not returned (mallinfo2 fordblks) */
    uint64_t heap_top_pad;   /* of heap_free: the releasable top of the main arena (keepcost) */
    uint64_t bookkeeping;    /* the tracker's own tables (mmap'ed, tracker_totals) */
    uint64_t code_and_files; /* file-backed: code, libraries and the data they wrote, files libdw
                              * mapped (RssFile + RssShmem + their "Anonymous:" pages in smaps) */
    uint64_t thread_stacks;  /* [stack] and each thread's stack: the mapping a thread's stack pointer
                              * is in (/proc/self/task/TID/syscall), or anonymous rw-p just above a
                              * guard page that does not start a malloc arena's 64 MiB heap */
    uint64_t arena_heaps;    /* of the heap above, the Rss of glibc's non-main arena heaps (smaps;
                              * shown, not added: mallinfo2 already counts them) */
    unsigned arenas;         /* how many such heaps */
    unsigned threads;        /* threads whose stack pointer the last walk read */
    uint64_t explained;      /* sum of the parts from tracked_live to thread_stacks (heap_top_pad excluded) */
    int64_t unexplained;     /* vm_rss - explained */
    unsigned mappings;       /* mappings in the last smaps walk */
    double maps_age_s;       /* seconds since that walk (-1: none) */
} rss_parts;

/* Fill *p; history_bytes is the per-site history's memory (history_get_info:
 * given by the caller, so that the history may use this file and not the
 * other way round). Returns 0, or -1 when /proc/self/status or smaps cannot
 * be read (*p then holds what could be measured, zeros elsewhere). Cheap
 * (well under a millisecond) except the very first call, which walks smaps. */
int rss_explain(rss_parts *p, uint64_t history_bytes);

/* Walk /proc/self/smaps now for the parts only it tells (a page-table walk:
 * ~15 ms at 400 MB of RSS). Thread-safe; allocates nothing. */
void rss_refresh_maps(void);

/* VmRSS in kB as /proc/self/status prints it; -1 if unreadable. */
long rss_status_kb(void);

/* VmRSS in kB from /proc/self/statm (cheap: for each history sample); -1 if unreadable. */
long rss_now_kb(void);

/* Append the parts as a JSON object ({"vm_rss":...,"unexplained":...}) to
 * buf[0..len). Returns the length written, or -1 when it does not fit. */
int rss_format_json(const rss_parts *p, char *buf, size_t len);

#endif /* RSS_H */
