/* rss.c - RSS explained: mallinfo2, the tracker's totals, the history's size and /proc/self/smaps, added up (see rss.h). */
#include "rss.h"

#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tracker.h"

#define GUARD_MAX (64u * 1024u) /* a ---p mapping this small right below an rw-p one is a thread's stack guard */
/* glibc reserves each heap of a non-main arena as HEAP_MAX_SIZE bytes aligned to that size
 * (2 * DEFAULT_MMAP_THRESHOLD_MAX on 64-bit) and makes it rw-p as it grows: a full heap's small
 * PROT_NONE tail right below the next heap looks exactly like a thread stack's guard. */
#define ARENA_HEAP_SIZE (64ull << 20)
#define SP_MAX 512 /* threads whose stack pointers are read per walk; more are classified by shape */

/* ------------------------------------------------------------ /proc readers (read(2): no stdio buffers) */

long rss_now_kb(void)
{
    char buf[128];
    ssize_t n;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *p = strchr(buf, ' '); /* "size resident shared ..." in pages */
    if (!p) return -1;
    return strtol(p + 1, NULL, 10) * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The RSS counters of /proc/self/status, in kB (-1 each when unreadable). */
typedef struct status_rss {
    long vm_rss, anon, file, shmem;
} status_rss;

static long status_field(const char *buf, const char *name)
{
    const char *p = strstr(buf, name);
    return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

static void read_status(status_rss *r)
{
    char buf[4096];
    ssize_t n;
    size_t got = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    buf[0] = '\0';
    if (fd >= 0) {
        while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
        close(fd);
        buf[got] = '\0';
    }
    r->vm_rss = status_field(buf, "\nVmRSS:");
    r->anon = status_field(buf, "\nRssAnon:");
    r->file = status_field(buf, "\nRssFile:");
    r->shmem = status_field(buf, "\nRssShmem:");
}

long rss_status_kb(void)
{
    status_rss r;
    read_status(&r);
    return r.vm_rss;
}

/* What smaps says, by class of mapping. */
typedef struct smaps_sum {
    uint64_t stacks;    /* Rss of thread stacks */
    uint64_t arena_heaps; /* Rss of glibc's non-main arena heaps (already in mallinfo2's arena) */
    unsigned arenas;      /* how many such heaps */
    unsigned threads;     /* threads whose stack pointer was read */
    uint64_t file_anon; /* "Anonymous:" of file-backed mappings: libraries' written data, counted in RssAnon */
    unsigned mappings;
} smaps_sum;

/* The mapping being read and the one before it. */
typedef struct smaps_map {
    uint64_t start, end;
    char perms[8];
    int file;   /* path starts with '/' */
    int stack;  /* [stack], holds a thread's stack pointer, or shaped like a stack (below) */
    int arena;  /* a heap of a non-main malloc arena */
} smaps_map;

/* The stack pointers of this process's threads, from /proc/self/task/TID/syscall
 * ("NR args... SP PC" for a thread blocked in a system call, "running" otherwise):
 * a thread stack is the mapping a thread's stack pointer is in, which no layout
 * rule can mistake for a malloc arena. Raw getdents64 and read(2): nothing allocated. */
typedef struct thread_sps {
    uint64_t sp[SP_MAX];
    unsigned n;
} thread_sps;

static uint64_t syscall_sp(const char *tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/syscall", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    /* the next-to-last field: "... 0xSP 0xPC\n" */
    char *end = buf + n;
    while (end > buf && (end[-1] == '\n' || end[-1] == ' ')) end--;
    *end = '\0';
    char *pc = strrchr(buf, ' ');
    if (!pc) return 0; /* "running", or "-1 0xSP 0xPC" short forms without args are still fine */
    *pc = '\0';
    char *sp = strrchr(buf, ' ');
    return sp && strncmp(sp + 1, "0x", 2) == 0 ? strtoull(sp + 1, NULL, 16) : 0;
}

static void read_thread_sps(thread_sps *t)
{
    char buf[4096];
    long n;
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int here; /* the calling thread is running: its own stack pointer is a local's address */
    t->n = 0;
    t->sp[t->n++] = (uint64_t)(uintptr_t)&here;
    if (fd < 0) return;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct linux_dirent64 {
                uint64_t d_ino;
                int64_t d_off;
                unsigned short d_reclen;
                unsigned char d_type;
                char d_name[];
            } *d = (void *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9' || t->n >= SP_MAX) continue;
            uint64_t sp = syscall_sp(d->d_name);
            if (sp) t->sp[t->n++] = sp;
        }
    }
    close(fd);
}

static int holds_sp(const thread_sps *t, uint64_t start, uint64_t end)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->sp[i] >= start && t->sp[i] < end) return 1;
    return 0;
}

/* Read one header line "start-end perms offset dev inode [path]" into *m,
 * classifying it with the previous mapping *prev. Returns 0, or -1. */
static int parse_header(const char *line, const smaps_map *prev, const thread_sps *t, smaps_map *m)
{
    unsigned long long a, b;
    char perms[8];
    int off = 0;
    if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %n", &a, &b, perms, &off) < 3) return -1;
    memset(m, 0, sizeof *m);
    m->start = a;
    m->end = b;
    snprintf(m->perms, sizeof m->perms, "%s", perms);
    const char *path = off ? line + off : "";
    m->file = path[0] == '/';
    int anon_rw = !m->file && path[0] == '\0' && strcmp(m->perms, "rw-p") == 0;
    /* A thread that was running when its stack pointer was read still has a guard below its stack;
     * an arena heap starts on a HEAP_MAX_SIZE boundary, which a thread stack almost never does. */
    int guarded = anon_rw && prev->end == m->start && strcmp(prev->perms, "---p") == 0 && !prev->file &&
                  prev->end - prev->start <= GUARD_MAX;
    int aligned = anon_rw && m->start % ARENA_HEAP_SIZE == 0 && m->end - m->start <= ARENA_HEAP_SIZE;
    m->stack = strncmp(path, "[stack]", 7) == 0 || (anon_rw && holds_sp(t, m->start, m->end)) ||
               (guarded && !aligned);
    m->arena = aligned && !m->stack;
    return 0;
}

/* Sum the Rss of every mapping of /proc/self/smaps by class. Returns 0 or -1. */
static int read_smaps(smaps_sum *s)
{
    static char buf[65536];  /* callers hold maps.lock */
    static thread_sps sps;   /* the same */
    size_t have = 0;
    smaps_map prev = { 0 }, cur = { 0 }; /* prev: an empty "previous" for the first mapping */
    int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC), in_map = 0;
    memset(s, 0, sizeof *s);
    if (fd < 0) return -1;
    read_thread_sps(&sps);
    s->threads = sps.n - 1; /* the caller's own is there twice */
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            if (strncmp(line, "Rss:", 4) == 0 && in_map && cur.stack) {
                s->stacks += strtoull(line + 4, NULL, 10) * 1024u;
            } else if (strncmp(line, "Rss:", 4) == 0 && in_map && cur.arena) {
                s->arena_heaps += strtoull(line + 4, NULL, 10) * 1024u;
            } else if (strncmp(line, "Anonymous:", 10) == 0 && in_map && cur.file) {
                s->file_anon += strtoull(line + 10, NULL, 10) * 1024u;
            } else if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
                /* a mapping's header: field lines start with a capital ("Rss:") */
                smaps_map m;
                if (parse_header(line, in_map ? &cur : &prev, &sps, &m) == 0) {
                    cur = m;
                    in_map = 1;
                    s->mappings++;
                    s->arenas += m.arena;
                }
            }
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1) have = 0; /* a line longer than the buffer: dropped */
    }
    close(fd);
    return s->mappings ? 0 : -1;
}

/* ------------------------------------------------------------ the parts */

/* The last smaps walk: the parts that only smaps can tell, and that move slowly. */
static struct {
    pthread_mutex_t lock;  /* guards the fields and read_smaps' buffer */
    smaps_sum sum;
    double at;             /* CLOCK_MONOTONIC s of the walk, 0 before the first */
} maps = { .lock = PTHREAD_MUTEX_INITIALIZER };

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void rss_refresh_maps(void)
{
    smaps_sum sm;
    pthread_mutex_lock(&maps.lock);
    if (read_smaps(&sm) == 0) {
        maps.sum = sm;
        maps.at = mono_s();
    }
    pthread_mutex_unlock(&maps.lock);
}

int rss_explain(rss_parts *p, uint64_t history_bytes)
{
    tracker_totals tt;
    status_rss st;
    smaps_sum sm;
    double at;

    memset(p, 0, sizeof *p);
    pthread_mutex_lock(&maps.lock);
    at = maps.at;
    pthread_mutex_unlock(&maps.lock);
    if (at == 0) rss_refresh_maps(); /* the first call pays for the first walk */
    pthread_mutex_lock(&maps.lock);
    sm = maps.sum;
    at = maps.at;
    pthread_mutex_unlock(&maps.lock);

    struct mallinfo2 mi = mallinfo2();
    tracker_get_totals(&tt);
    read_status(&st);

    p->vm_rss = st.vm_rss > 0 ? (uint64_t)st.vm_rss * 1024u : 0;
    uint64_t in_use = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
    p->tracked_live = tt.live_bytes;
    p->history = history_bytes;
    uint64_t known = p->tracked_live + p->history + tt.heap_bookkeeping_bytes; /* headers: in the heap, counted as bookkeeping */
    p->heap_untracked = in_use > known ? in_use - known : 0; /* counters read a moment apart */
    p->heap_free = mi.fordblks;
    p->heap_top_pad = mi.keepcost;
    p->bookkeeping = tt.bookkeeping_bytes;
    p->code_and_files = (st.file > 0 ? (uint64_t)st.file * 1024u : 0) +
                        (st.shmem > 0 ? (uint64_t)st.shmem * 1024u : 0) + sm.file_anon;
    p->thread_stacks = sm.stacks;
    p->arena_heaps = sm.arena_heaps;
    p->arenas = sm.arenas;
    p->threads = sm.threads;
    p->mappings = sm.mappings;
    p->maps_age_s = at > 0 ? mono_s() - at : -1;
    p->explained = p->tracked_live + p->heap_untracked + p->history + p->heap_free + p->bookkeeping +
                   p->code_and_files + p->thread_stacks;
    p->unexplained = (int64_t)p->vm_rss - (int64_t)p->explained;
    return st.vm_rss < 0 || st.file < 0 || at == 0 ? -1 : 0;
}

int rss_format_json(const rss_parts *p, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "{\"vm_rss\":%" PRIu64 ",\"tracked_live\":%" PRIu64 ",\"heap_untracked\":%" PRIu64
                     ",\"history\":%" PRIu64 ",\"heap_free\":%" PRIu64 ",\"heap_top_pad\":%" PRIu64
                     ",\"bookkeeping\":%" PRIu64 ",\"code_and_files\":%" PRIu64 ",\"thread_stacks\":%" PRIu64
                     ",\"arena_heaps\":%" PRIu64 ",\"arenas\":%u,\"threads\":%u"
                     ",\"explained\":%" PRIu64 ",\"unexplained\":%" PRId64
                     ",\"unexplained_pct\":%.2f,\"maps_age_s\":%.1f}",
                     p->vm_rss, p->tracked_live, p->heap_untracked, p->history, p->heap_free, p->heap_top_pad,
                     p->bookkeeping, p->code_and_files, p->thread_stacks, p->arena_heaps, p->arenas,
                     p->threads, p->explained,
                     p->unexplained, p->vm_rss ? 100.0 * (double)p->unexplained / (double)p->vm_rss : 0.0,
                     p->maps_age_s);
    return n < 0 || (size_t)n >= len ? -1 : n;
}
