/* retention.c - which live blocks are lost and which are held, and by whom: a conservative mark of a copy-on-write snapshot of the process. */
/* Long on purpose: the snapshot (clone, no malloc in the child), the
 * block enumeration and the mark run in the copy with their own mmap'ed
 * arena and no calls out of this file, which is what makes the child safe
 * to run; the naming and formatting are in retention_report.c. */

#include "retention.h"
#include "tracker.h"
#include "tracker_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* hooks.c's, absent from builds where another tool owns malloc (nohooks.c):
 * the scan then says it is unavailable before it would call it. */
#pragma weak tracker_lookup

/*
 * How (after LeakSanitizer's lsan_common and Android's libmemunreachable,
 * written anew for the tracker's headers):
 *
 * Parent (the thread that asks): names every site first (symbolization
 * needs malloc and locks), lists the modules' writable segments
 * (dl_iterate_phdr), reads each other thread's stack pointer from
 * /proc/self/task/TID/syscall with its run time (schedstat), spills its
 * own registers onto its stack, then makes a copy-on-write child with a
 * raw clone: no atfork handler runs, no SIGCHLD is sent (exit signal 0,
 * reaped with __WCLONE), every signal blocked in the child. The program's
 * other threads only wait while the kernel copies the page tables (they
 * cannot fault or mmap then): that is pause_ms. The parent then reads
 * every thread's stack pointer and run time again: a thread whose line
 * and run time did not change was blocked in that system call throughout,
 * so at the clone its live frames were those above that stack pointer;
 * any other thread's whole stack mapping is scanned (stale frames below
 * its stack pointer may then hold blocks: over-retention, never a false
 * "lost"). It sends that verdict to the child, and reads the result.
 *
 * Child (no malloc, no lock it could find taken: its memory is its own
 * mmap): enumerates the live blocks (enum_blocks: the address table, then
 * every anonymous writable mapping's resident pages searched for headers
 * that check), sorts them by address, marks from the roots (data and bss
 * of every module, each thread's stack from its stack pointer (or whole),
 * the main thread's static TLS): any aligned word that points into a
 * block, at its start or inside (interior: counted and flagged), then
 * transitively through the marked blocks' contents. Unmarked blocks are
 * lost; as valgrind tells them, a lost block that another lost block
 * points at is lost indirectly (of a cycle, one stays direct).
 *
 * Owners: for each reachable block, its immediate dominator in the graph
 * of roots and blocks (Cooper, Harvey and Kennedy's iterative algorithm):
 * the one node every path from the roots passes through, so freeing it
 * (or clearing it) frees the block. We walk up the dominator tree past
 * blocks of the block's own site (a list's or tree's nodes hold each
 * other) to the first node of another site, a global (one data word), a
 * thread's stack, or "several roots" (nothing but the roots dominates).
 * A dominator rather than "who points at it": a block pointed at by many
 * is charged to no one of them, and the bytes an owner is charged are
 * exactly what freeing it would return, as in Eclipse MAT's retained size.
 */

/* ------------------------------------------------------------------ */
/* The child's memory: growable arrays in mmap, never malloc            */
/* ------------------------------------------------------------------ */

typedef struct vec {
    char *p;
    size_t n, cap, elem; /* elements used, elements room, bytes each */
} vec;

static int vec_reserve(vec *v, size_t want)
{
    if (want <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 4096 / v->elem;
    while (cap < want) cap *= 2;
    size_t bytes = (cap * v->elem + 4095) & ~(size_t)4095;
    void *np = v->p ? mremap(v->p, (v->cap * v->elem + 4095) & ~(size_t)4095, bytes, MREMAP_MAYMOVE)
                    : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (np == MAP_FAILED) return -1;
    v->p = np;
    v->cap = bytes / v->elem;
    return 0;
}

static void *vec_push(vec *v)
{
    if (v->n == v->cap && vec_reserve(v, v->n + 1) != 0) return NULL;
    return v->p + v->elem * v->n++;
}

#define VEC(type) { NULL, 0, 0, sizeof(type) }
#define VAT(v, type, i) (((type *)(v).p)[i])

/* ------------------------------------------------------------------ */
/* What the parent prepares before the clone                            */
/* ------------------------------------------------------------------ */

typedef struct range { uintptr_t lo, hi; } range;

typedef struct thread_sp {
    pid_t tid;
    uintptr_t sp;       /* 0: unknown (running at both reads) */
    char line[160];     /* /proc/self/task/TID/syscall before the clone */
    char sched[64];     /* /proc/self/task/TID/schedstat before the clone */
} thread_sp;

typedef struct prep {
    range data[256];    /* writable PT_LOAD segments of the modules */
    unsigned ndata;
    thread_sp th[RET_MAX_THREADS];
    unsigned nth;
    int threads_missed; /* more threads than RET_MAX_THREADS */
    uintptr_t self_sp;  /* the calling thread's stack pointer at the clone */
    uintptr_t self_from; /* where its stack is scanned from, up to the end of that mapping:
                            the caller's frames and saved registers; the scan's own
                            frames below hold only stale words of the program */
    uintptr_t main_tcb; /* the main thread's thread pointer (its static TLS is below it) */
    uintptr_t tls_bytes; /* the modules' PT_TLS segments, each rounded up to its alignment */
    /* The tracker's own TLS when it is a module of its own (the preload):
     * at thread pointer + own_tls_off in every thread, own_tls_len bytes.
     * Its walk memo keeps copies of registers (a %rbp that is no frame
     * pointer may hold a heap pointer): not the program's roots. */
    intptr_t own_tls_off;
    uintptr_t own_tls_len;
    uint32_t *site_of;  /* stack id -> site key, for ids < nsite_of */
    uint32_t nsite_of;
    uint32_t nstacks;   /* stack ids in use at the clone: a header's id must be below */
    ret_object *obj;    /* the globals' extents (retention_objects.c), by address */
    size_t nobj;
} prep;

static uintptr_t main_tcb; /* set by the constructor below, on the main thread */

__attribute__((constructor)) static void retention_note_main(void)
{
    main_tcb = (uintptr_t)pthread_self();
}

/* Read a small /proc file into buf (NUL-terminated, newline cut); 0 or -1. */
static int read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n;
    do n = read(fd, buf, cap - 1); while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl) *nl = '\0';
    return 0;
}

/* The stack pointer in a syscall line ("NR args... SP PC" or "-1 SP PC"); 0 for "running". */
static uintptr_t syscall_sp(const char *line)
{
    const char *last = strrchr(line, ' ');
    if (!last || last == line) return 0;
    const char *p = last - 1;
    while (p > line && *p != ' ') p--;
    if (*p == ' ') p++;
    return (uintptr_t)strtoull(p, NULL, 16);
}

static void read_thread(pid_t tid, char *line, size_t lcap, char *sched, size_t scap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    if (read_small(path, line, lcap) != 0) snprintf(line, lcap, "running");
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
    if (read_small(path, sched, scap) != 0) sched[0] = '\0';
}

static void list_threads(prep *pr)
{
    pid_t self = (pid_t)syscall(SYS_gettid);
    DIR *d = opendir("/proc/self/task");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0 || tid == self) continue;
        if (pr->nth == RET_MAX_THREADS) { pr->threads_missed = 1; break; }
        thread_sp *t = &pr->th[pr->nth++];
        t->tid = tid;
        read_thread(tid, t->line, sizeof t->line, t->sched, sizeof t->sched);
        t->sp = syscall_sp(t->line);
    }
    closedir(d);
}

/* 1 when info is the tracker's own module and not the main program (the
 * preload, bin/libtracker.so): its data and TLS are not roots. Linked into
 * a program, its variables cannot be told from the program's. */
static int own_module(const struct dl_phdr_info *info)
{
    uintptr_t me = (uintptr_t)&own_module;
    if (!info->dlpi_name || !info->dlpi_name[0]) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && me >= lo && me - lo < ph->p_memsz) return 1;
    }
    return 0;
}

static int add_segment(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    prep *pr = arg;
    int own = own_module(info);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_TLS) {
            uintptr_t a = ph->p_align ? ph->p_align : 1;
            pr->tls_bytes += (ph->p_memsz + a - 1) / a * a;
            if (own && info->dlpi_tls_data) {
                pr->own_tls_off = (intptr_t)((uintptr_t)info->dlpi_tls_data - (uintptr_t)pthread_self());
                pr->own_tls_len = ph->p_memsz;
            }
        }
        if (own || ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || pr->ndata == 256) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        pr->data[pr->ndata++] = (range){ lo, lo + ph->p_memsz };
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The child                                                            */
/* ------------------------------------------------------------------ */

typedef struct blk {
    uintptr_t addr;
    uint64_t size;
    uint32_t id;     /* stack id */
    uint32_t site;   /* site key */
} blk;

enum { ST_UNSEEN = 0, ST_REACHED = 1, ST_DIRECT = 2, ST_INDIRECT = 3 };

typedef struct mapping { uintptr_t lo, hi; int anon, rw, blocks; } mapping;

typedef struct edge { uint32_t src, dst; } edge;

typedef struct child {
    const prep *pr;
    vec maps;       /* mapping */
    vec blocks;     /* blk, sorted by addr */
    uint8_t *state; /* per block */
    uint8_t *start; /* per block: reached by a pointer to its start */
    vec work;       /* uint32 block indexes to scan */
    vec edges;      /* edge: roots and reachable blocks only */
    vec root_addr;  /* uint64: per root node, its owner (RET_OWNER) */
    uintptr_t lo, hi; /* lowest block start, highest block end */
    range skip[RET_MAX_THREADS + 3]; /* the tracker's TLS in each thread whose thread pointer is known */
    uint32_t *obj_node; /* per global object: its root node, 0 before its first pointer */
    unsigned nskip;
    uint32_t vroot;   /* node id of the virtual root: nblocks; root nodes follow */
    ret_wire_head head;
} child;

static double now_ms(void) { return tracker_now() * 1000.0; }

/* Parse /proc/self/maps (the child's: the snapshot's). */
static int read_maps(child *c)
{
    vec text = VEC(char);
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    /* room for the whole list at once, so that its buffer does not move while it is read */
    if (fd < 0 || vec_reserve(&text, 1 << 20) != 0) return -1;
    for (;;) {
        if (vec_reserve(&text, text.n + 65536) != 0) { close(fd); return -1; }
        ssize_t r = read(fd, text.p + text.n, 65536);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        text.n += (size_t)r;
    }
    close(fd);
    if (vec_reserve(&text, text.n + 1) != 0) return -1;
    text.p[text.n] = '\0';
    for (char *line = text.p; *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        char *q;
        uintptr_t lo = (uintptr_t)strtoull(line, &q, 16);
        uintptr_t hi = (uintptr_t)strtoull(q + 1, &q, 16);
        char perms[5] = { 0 };
        memcpy(perms, q + 1, 4);
        /* offset, dev, inode, then the path (if any) */
        char *f = q + 6;
        for (int k = 0; k < 2 && f; k++) { f = strchr(f, ' '); if (f) f++; }
        unsigned long inode = f ? strtoul(f, &f, 10) : 1;
        while (f && *f == ' ') f++;
        mapping *m = vec_push(&c->maps);
        if (!m) return -1;
        m->lo = lo;
        m->hi = hi;
        m->rw = perms[0] == 'r' && perms[1] == 'w';
        m->anon = inode == 0 && (!f || !*f || strcmp(f, "[heap]") == 0 || strcmp(f, "[stack]") == 0);
        m->blocks = 0;
        if (!end) break;
        line = end + 1;
    }
    munmap(text.p, (text.cap * text.elem + 4095) & ~(size_t)4095);
    return 0;
}

/* The readable mapping holding [lo, lo+len), or NULL. */
static mapping *map_of(child *c, uintptr_t lo, uint64_t len)
{
    for (size_t i = 0; i < c->maps.n; i++) {
        mapping *m = &VAT(c->maps, mapping, i);
        if (lo >= m->lo && lo < m->hi) return m->rw && len <= m->hi - lo ? m : NULL;
    }
    return NULL;
}

static void table_block(void *arg, uintptr_t addr, uint64_t size, uint32_t id)
{
    child *c = arg;
    mapping *m = map_of(c, addr, size);
    if (!m || id >= c->pr->nstacks) return; /* not readable here: skip it rather than fault */
    blk *b = vec_push(&c->blocks);
    if (!b) return;
    *b = (blk){ addr, size, id, 0 };
    c->head.table_blocks++;
}

/* Every live recorded block: the ones in the address table (blocks glibc
 * aligned; all of them for an allocator whose blocks carry no header),
 * then each anonymous writable mapping's resident pages searched for
 * 16-aligned addresses whose header checks (tracker_lookup). A cheap test
 * of the header's second word (a stack id in use, a size that fits)
 * comes first, and a block found is skipped over whole. */
static int enum_blocks(child *c)
{
    tracker_table_each(table_block, c);
    enum { PAGE = 4096, CHUNK = 256 };
    unsigned char res[CHUNK];
    for (size_t i = 0; i < c->maps.n; i++) {
        mapping *m = &VAT(c->maps, mapping, i);
        if (!m->rw || !m->anon) continue;
        uintptr_t clo = 0, chi = 0; /* the pages res[] describes */
        /* h: where a header would be; the block's user pointer is h + 16 */
        for (uintptr_t h = m->lo; h + 16 < m->hi;) {
            uintptr_t pg = h & ~(uintptr_t)(PAGE - 1);
            if (pg < clo || pg >= chi) {
                clo = pg;
                chi = m->hi - pg < (uintptr_t)CHUNK * PAGE ? m->hi : pg + (uintptr_t)CHUNK * PAGE;
                if (mincore((void *)clo, chi - clo, res) != 0) break; /* gone: an mmap of our own since the list */
            }
            if (!(res[(pg - clo) / PAGE] & 1)) { h = pg + PAGE; continue; } /* never touched: no header */
            c->head.heap_bytes_read += PAGE;
            uintptr_t pend = pg + PAGE;
            while (h < pend && h + 16 < m->hi) {
                const uint64_t *w = (const uint64_t *)h;
                uintptr_t p = h + 16;
                uint64_t size = w[1] >> TRACKER_STACK_BITS;
                size_t sz;
                uint32_t id;
                if ((w[0] & 1) && (uint32_t)(w[1] & TRACKER_UNTRACKED) < c->pr->nstacks && size <= m->hi - p &&
                    tracker_lookup((void *)p, &sz, &id) && sz <= m->hi - p) {
                    blk *b = vec_push(&c->blocks);
                    if (!b) return -1;
                    *b = (blk){ p, sz, id, 0 };
                    m->blocks = 1;
                    h = (p + sz + 15) & ~(uintptr_t)15; /* the next header lies past this block */
                } else {
                    h += 16;
                }
            }
        }
    }
    return 0;
}

#define NONE UINT32_MAX

static uint32_t *arena_u32(size_t n)
{
    void *p = mmap(NULL, (n * 4 + 4095) & ~(size_t)4095, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* LSD radix sort of the blocks by address (16 bits a pass over addr >> 3:
 * blocks are 8-aligned at least, user space addresses have 47 bits). No
 * qsort: glibc's may malloc. */
static int sort_blocks(child *c)
{
    size_t n = c->blocks.n;
    vec tmp = VEC(blk);
    if (vec_reserve(&tmp, n + 1) != 0) return -1;
    blk *a = (blk *)c->blocks.p, *b = (blk *)tmp.p;
    uint32_t *count = arena_u32(65536);
    if (!count) return -1;
    for (int pass = 0; pass < 3; pass++) {
        int shift = 3 + 16 * pass;
        memset(count, 0, 65536 * sizeof *count);
        for (size_t i = 0; i < n; i++) count[(a[i].addr >> shift) & 0xffff]++;
        uint32_t sum = 0;
        for (size_t k = 0; k < 65536; k++) { uint32_t t = count[k]; count[k] = sum; sum += t; }
        for (size_t i = 0; i < n; i++) b[count[(a[i].addr >> shift) & 0xffff]++] = a[i];
        blk *t = a; a = b; b = t;
    }
    /* three passes: the sorted copy is in tmp */
    memcpy(c->blocks.p, a, n * sizeof(blk));
    munmap(tmp.p, (tmp.cap * tmp.elem + 4095) & ~(size_t)4095);
    /* a block found both in the table and by its header counts once */
    size_t o = 0;
    blk *v = (blk *)c->blocks.p;
    for (size_t i = 0; i < n; i++)
        if (o == 0 || v[i].addr != v[o - 1].addr) v[o++] = v[i];
    c->blocks.n = o;
    if (o) {
        c->lo = v[0].addr;
        c->hi = 0;
        for (size_t i = 0; i < o; i++) {
            uintptr_t e = v[i].addr + (v[i].size ? v[i].size : 1);
            if (e > c->hi) c->hi = e;
        }
    }
    return 0;
}

/* The block holding address v (its start, or inside it), or -1. */
static int64_t find_block(const child *c, uintptr_t v)
{
    if (v < c->lo || v >= c->hi) return -1;
    const blk *b = (const blk *)c->blocks.p;
    size_t lo = 0, hi = c->blocks.n; /* first block with addr > v */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b[mid].addr <= v) lo = mid + 1; else hi = mid;
    }
    if (lo == 0) return -1;
    const blk *x = &b[lo - 1];
    if (v == x->addr || v - x->addr < x->size) return (int64_t)(lo - 1);
    return -1;
}

static int skipped(const child *c, uintptr_t a)
{
    for (unsigned i = 0; i < c->nskip; i++)
        if (a >= c->skip[i].lo && a < c->skip[i].hi) return 1;
    return 0;
}

/* Leave out the tracker's own TLS of the thread whose thread pointer is tp. */
static void skip_tls(child *c, uintptr_t tp)
{
    if (!c->pr->own_tls_len || !tp || c->nskip == sizeof c->skip / sizeof c->skip[0]) return;
    uintptr_t lo = tp + (uintptr_t)c->pr->own_tls_off;
    c->skip[c->nskip++] = (range){ lo, lo + c->pr->own_tls_len };
}

/* The thread pointer of the thread whose stack holds [from, hi): glibc
 * puts its descriptor right above the thread's frames, the first
 * 64-aligned word above them that points at itself, with the descriptor's
 * "self" (two words on) pointing there too. 0 when there is none (the
 * main thread's stack). */
static uintptr_t find_tp(uintptr_t from, uintptr_t hi)
{
    for (uintptr_t a = (from + 63) & ~(uintptr_t)63; a + 24 <= hi; a += 64) {
        const uintptr_t *w = (const uintptr_t *)a;
        if (w[0] == a && w[2] == a) return a;
    }
    return 0;
}

/* Where a thread's stack ends in a mapping that ends at hi: its
 * descriptor's end (the kernel may have merged the mapping with the one
 * above it: a heap), else hi. */
static uintptr_t stack_end(uintptr_t from, uintptr_t hi)
{
    uintptr_t tp = find_tp(from, hi);
    return tp && tp + 4096 < hi ? tp + 4096 : hi;
}

/* Mark what the words of [lo, hi) point at, as node src (record: keep the
 * edges). root: [lo, hi) is a stack or TLS, whose mapping the kernel may
 * have merged with a neighbour that holds blocks: a word inside a block is
 * not a root (the block is scanned if it is reached). */
static int scan_words(child *c, uintptr_t lo, uintptr_t hi, uint32_t src, int record, int root)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (const uintptr_t *w = (const uintptr_t *)lo; (uintptr_t)(w + 1) <= hi; w++) {
        uintptr_t v = *w;
        if (v < c->lo || v >= c->hi) continue;
        if (root && (uintptr_t)w >= c->lo && (uintptr_t)w < c->hi && find_block(c, (uintptr_t)w) >= 0) continue;
        if (root && skipped(c, (uintptr_t)w)) continue;
        int64_t j = find_block(c, v);
        if (j < 0) continue;
        if (v == VAT(c->blocks, blk, j).addr) c->start[j] = 1;
        if (record) {
            edge *e = vec_push(&c->edges);
            if (!e) return -1;
            *e = (edge){ src, (uint32_t)j };
        }
        if (c->state[j] == ST_UNSEEN) {
            c->state[j] = ST_REACHED;
            uint32_t *q = vec_push(&c->work);
            if (!q) return -1;
            *q = (uint32_t)j;
        }
    }
    return 0;
}

/* A new root node owned by owner (RET_OWNER): its node id, edge from the virtual root. */
static int64_t root_node(child *c, uint64_t owner)
{
    uint64_t *r = vec_push(&c->root_addr);
    if (!r) return -1;
    *r = owner;
    uint32_t id = c->vroot + (uint32_t)c->root_addr.n;
    edge *e = vec_push(&c->edges);
    if (!e) return -1;
    *e = (edge){ c->vroot, id };
    return id;
}

/* Scan the data words one at a time: each word that points into a block
 * is a root node of its own (a global's address names it). */
/* The global object holding data word w (pr->obj), or -1. */
static int64_t object_of(const prep *pr, uintptr_t w)
{
    size_t lo = 0, hi = pr->nobj;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pr->obj[mid].lo <= w) lo = mid + 1; else hi = mid;
    }
    return lo && w < pr->obj[lo - 1].hi ? (int64_t)(lo - 1) : -1;
}

/* Scan the data words one at a time: a word that points into a block is
 * a root node, one per global object (named by its address) or, outside
 * any object the symbols tell, per word. */
static int scan_data(child *c, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (const uintptr_t *w = (const uintptr_t *)lo; (uintptr_t)(w + 1) <= hi; w++) {
        uintptr_t v = *w;
        if (v < c->lo || v >= c->hi || find_block(c, v) < 0) continue;
        int64_t k = c->obj_node ? object_of(c->pr, (uintptr_t)w) : -1, node;
        if (k >= 0 && c->obj_node[k]) {
            node = c->obj_node[k];
        } else {
            node = root_node(c, RET_OWNER(RET_OWN_DATA, k >= 0 ? c->pr->obj[k].lo : (uintptr_t)w));
            if (k >= 0 && node > 0) c->obj_node[k] = (uint32_t)node;
        }
        if (node < 0 || scan_words(c, (uintptr_t)w, (uintptr_t)(w + 1), (uint32_t)node, 1, 0) != 0) return -1;
    }
    c->head.data_bytes += hi - lo;
    return 0;
}

static int drain(child *c)
{
    while (c->work.n) {
        uint32_t j = VAT(c->work, uint32_t, --c->work.n);
        const blk *b = &VAT(c->blocks, blk, j);
        if (scan_words(c, b->addr, b->addr + b->size, j, 1, 0) != 0) return -1;
    }
    return 0;
}

/* The stack mapping holding sp: [sp - red zone, end of its mapping). */
static mapping *stack_map(child *c, uintptr_t sp)
{
    for (size_t i = 0; i < c->maps.n; i++) {
        mapping *m = &VAT(c->maps, mapping, i);
        if (sp >= m->lo && sp < m->hi) return m->rw ? m : NULL;
    }
    return NULL;
}

static int scan_stack(child *c, uintptr_t lo, uintptr_t hi, unsigned thread)
{
    hi = stack_end(lo, hi);
    int64_t node = root_node(c, RET_OWNER(RET_OWN_STACK, thread));
    if (node < 0) return -1;
    c->head.stacks++;
    c->head.stack_bytes += hi - lo;
    return scan_words(c, lo, hi, (uint32_t)node, 1, 1);
}

/* Mark from every root. exact: per thread, 1 when its stack pointer held
 * across the clone (the parent's verdict). Thread 0 is the caller. */
static int mark(child *c, const uint8_t *exact)
{
    const prep *pr = c->pr;
    c->vroot = (uint32_t)c->blocks.n;
    skip_tls(c, (uintptr_t)pthread_self()); /* the child's thread pointer is the caller's */
    skip_tls(c, pr->main_tcb);
    for (unsigned i = 0; i < pr->nth; i++) {
        mapping *s = pr->th[i].sp ? stack_map(c, pr->th[i].sp) : NULL;
        if (s) skip_tls(c, find_tp(pr->th[i].sp, s->hi));
    }
    for (unsigned i = 0; i < pr->ndata; i++) {
        const range *r = &pr->data[i];
        if (scan_data(c, r->lo, r->hi) != 0) return -1;
        c->head.data_ranges++;
        if (drain(c) != 0) return -1;
    }
    /* the caller: from its stack pointer (its registers are spilled above it) */
    mapping *m = stack_map(c, pr->self_from);
    if (m) {
        if (scan_stack(c, pr->self_from, m->hi, 0) != 0) return -1;
        c->head.stacks_exact++;
    }
    int unknown = 0;
    for (unsigned i = 0; i < pr->nth; i++) {
        uintptr_t sp = pr->th[i].sp;
        mapping *s = sp ? stack_map(c, sp) : NULL;
        if (!s) { unknown = 1; continue; }
        uintptr_t lo = exact[i] ? (sp - 128 > s->lo ? sp - 128 : s->lo) : s->lo;
        if (exact[i]) c->head.stacks_exact++; else c->head.stacks_whole++;
        if (scan_stack(c, lo, s->hi, i + 1) != 0) return -1;
        s->blocks |= 2; /* scanned as a stack */
    }
    if (m) m->blocks |= 2;
    if (unknown || pr->threads_missed) {
        /* threads whose stack pointer was never seen: every mapping that
         * looks like a thread's stack (rw, right above a guard page, no
         * block in it) is scanned whole */
        for (size_t i = 1; i < c->maps.n; i++) {
            mapping *s = &VAT(c->maps, mapping, i), *g = s - 1;
            if (!s->rw || !s->anon || s->blocks || g->hi != s->lo || g->rw) continue;
            c->head.stacks_whole++;
            if (scan_stack(c, s->lo, s->hi, RET_MAX_THREADS + 1) != 0) return -1;
            s->blocks |= 2;
        }
    }
    if (drain(c) != 0) return -1;
    /* the main thread's static TLS, below its thread pointer */
    if (pr->main_tcb) {
        mapping *t = stack_map(c, pr->main_tcb);
        if (t && !(t->blocks & 2)) {
            /* the modules' TLS blocks and glibc's surplus below the thread pointer, its TCB above */
            uintptr_t below = pr->tls_bytes + 4096, above = 4096;
            uintptr_t lo = pr->main_tcb - below > t->lo ? pr->main_tcb - below : t->lo;
            uintptr_t hi = pr->main_tcb + above < t->hi ? pr->main_tcb + above : t->hi;
            int64_t node = root_node(c, RET_OWNER(RET_OWN_TLS, 0));
            if (node < 0 || scan_words(c, lo, hi, (uint32_t)node, 1, 1) != 0) return -1;
            c->head.tls_bytes += hi - lo;
        }
    }
    return drain(c);
}

/* Lost blocks, as valgrind tells them: each unreached block not yet
 * reached from another is a direct leak, and what it points at (not
 * reached from the roots) indirect; of a cycle, the first stays direct. */
static int classify_lost(child *c)
{
    size_t n = c->blocks.n;
    for (size_t i = 0; i < n; i++) {
        if (c->state[i] != ST_UNSEEN) continue;
        c->state[i] = ST_DIRECT;
        uint32_t *q = vec_push(&c->work);
        if (!q) return -1;
        *q = (uint32_t)i;
        while (c->work.n) {
            const blk *b = &VAT(c->blocks, blk, VAT(c->work, uint32_t, --c->work.n));
            uintptr_t lo = b->addr, hi = b->addr + b->size;
            for (const uintptr_t *w = (const uintptr_t *)lo; (uintptr_t)(w + 1) <= hi; w++) {
                int64_t j = find_block(c, *w);
                if (j < 0 || (size_t)j == i) continue;
                if (c->state[j] == ST_UNSEEN) {
                    c->state[j] = ST_INDIRECT;
                    if (!(q = vec_push(&c->work))) return -1;
                    *q = (uint32_t)j;
                } else if (c->state[j] == ST_DIRECT) {
                    c->state[j] = ST_INDIRECT; /* an earlier leader is reached from this one */
                }
            }
        }
    }
    return 0;
}

/* ---- dominators (Cooper, Harvey, Kennedy: "A Simple, Fast Dominance Algorithm") ---- */

/* idom[node] for every node reached from the virtual root (NONE elsewhere). */
static uint32_t *dominators(child *c, uint32_t nnodes)
{
    size_t ne = c->edges.n;
    const edge *E = (const edge *)c->edges.p;
    uint32_t *soff = arena_u32(nnodes + 1), *poff = arena_u32(nnodes + 1);
    uint32_t *succ = arena_u32(ne + 1), *pred = arena_u32(ne + 1);
    uint32_t *order = arena_u32(nnodes + 1), *po = arena_u32(nnodes + 1);
    uint32_t *idom = arena_u32(nnodes + 1), *stk = arena_u32(nnodes + 1), *it = arena_u32(nnodes + 1);
    if (!soff || !poff || !succ || !pred || !order || !po || !idom || !stk || !it) return NULL;
    for (size_t i = 0; i < ne; i++) { soff[E[i].src + 1]++; poff[E[i].dst + 1]++; }
    for (uint32_t v = 0; v < nnodes; v++) { soff[v + 1] += soff[v]; poff[v + 1] += poff[v]; }
    for (size_t i = 0; i < ne; i++) { succ[it[E[i].src]++ + soff[E[i].src]] = E[i].dst; }
    memset(it, 0, (size_t)(nnodes + 1) * 4);
    for (size_t i = 0; i < ne; i++) { pred[it[E[i].dst]++ + poff[E[i].dst]] = E[i].src; }
    /* postorder numbers from an iterative depth-first search */
    for (uint32_t v = 0; v < nnodes; v++) { po[v] = NONE; idom[v] = NONE; it[v] = 0; }
    uint32_t npo = 0, sp = 0;
    stk[sp++] = c->vroot;
    po[c->vroot] = NONE - 1; /* on the stack */
    while (sp) {
        uint32_t v = stk[sp - 1];
        if (it[v] < soff[v + 1] - soff[v]) {
            uint32_t w = succ[soff[v] + it[v]++];
            if (po[w] == NONE) { po[w] = NONE - 1; stk[sp++] = w; }
        } else {
            po[v] = npo;
            order[npo++] = v;
            sp--;
        }
    }
    idom[c->vroot] = c->vroot;
    for (int changed = 1; changed;) {
        changed = 0;
        for (uint32_t k = npo - 1; k-- > 0;) { /* reverse postorder, the root (last) left out */
            uint32_t v = order[k], nd = NONE;
            for (uint32_t e = poff[v]; e < poff[v + 1]; e++) {
                uint32_t p = pred[e];
                if (po[p] >= NONE - 1 || idom[p] == NONE) continue;
                if (nd == NONE) { nd = p; continue; }
                uint32_t a = p, b = nd;
                while (a != b) {
                    while (po[a] < po[b]) a = idom[a];
                    while (po[b] < po[a]) b = idom[b];
                }
                nd = a;
            }
            if (nd != NONE && idom[v] != nd) { idom[v] = nd; changed = 1; }
        }
    }
    return idom;
}

/* ---- aggregation: open addressing on 64-bit keys ---- */

typedef struct agg {
    uint64_t *keys; /* two words a slot: key1 + 1 (0: empty), key2 */
    uint32_t *val;  /* index into the records */
    size_t mask;
} agg;

static int agg_init(agg *a, size_t want)
{
    size_t n = 64;
    while (n < want * 2) n *= 2;
    a->keys = mmap(NULL, n * 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a->val = arena_u32(n);
    a->mask = n - 1;
    return a->keys == MAP_FAILED || !a->val ? -1 : 0;
}

/* Index of (k1, k2)'s record; *fresh 1 when just added as index next. */
static uint32_t agg_get(agg *a, uint64_t k1, uint64_t k2, uint32_t next, int *fresh)
{
    size_t i = (size_t)(((k1 * 0x9e3779b97f4a7c15ULL) ^ k2) * 0xbf58476d1ce4e5b9ULL >> 20) & a->mask;
    for (;; i = (i + 1) & a->mask) {
        uint64_t *k = &a->keys[2 * i];
        if (k[0] == k1 + 1 && k[1] == k2) { *fresh = 0; return a->val[i]; }
        if (!k[0]) { k[0] = k1 + 1; k[1] = k2; a->val[i] = next; *fresh = 1; return next; }
    }
}

static uint32_t site_key(const prep *pr, uint32_t id)
{
    return id < pr->nsite_of ? pr->site_of[id] : RET_LATE_SITE | id;
}

/* Sum per site and per (site, owner), and send it. */
static int report(child *c, uint32_t *idom, int fd)
{
    size_t n = c->blocks.n;
    vec sites = VEC(ret_wire_site), pairs = VEC(ret_wire_pair);
    agg sa, pa;
    if (agg_init(&sa, n + 16) != 0 || agg_init(&pa, n + 16) != 0) return -1;
    const blk *B = (const blk *)c->blocks.p;
    for (size_t i = 0; i < n; i++) {
        int fresh;
        uint32_t k = agg_get(&sa, B[i].site, 0, (uint32_t)sites.n, &fresh);
        if (fresh) {
            ret_wire_site *s = vec_push(&sites);
            if (!s) return -1;
            memset(s, 0, sizeof *s);
            s->site = B[i].site;
        }
        ret_wire_site *s = &VAT(sites, ret_wire_site, k);
        s->blocks++;
        s->bytes += B[i].size;
        if (c->state[i] == ST_REACHED) {
            s->reachable_blocks++;
            s->reachable_bytes += B[i].size;
            if (!c->start[i]) { s->interior_blocks++; c->head.interior_blocks++; }
            /* the owner: up the dominator tree past blocks of this site */
            uint32_t d = idom ? idom[i] : NONE;
            while (d != NONE && d < c->vroot && B[d].site == B[i].site && idom[d] != d) d = idom[d];
            uint64_t owner;
            if (d == NONE || d == c->vroot) owner = RET_OWNER(RET_OWN_MULTI, 0);
            else if (d < c->vroot) owner = RET_OWNER(RET_OWN_SITE, B[d].site);
            else owner = VAT(c->root_addr, uint64_t, d - c->vroot - 1);
            uint32_t pi = agg_get(&pa, B[i].site, owner, (uint32_t)pairs.n, &fresh);
            ret_wire_pair *p;
            if (fresh) {
                if (!(p = vec_push(&pairs))) return -1;
                memset(p, 0, sizeof *p);
                p->site = B[i].site;
                p->owner = owner;
            }
            p = &VAT(pairs, ret_wire_pair, pi);
            p->blocks++;
            p->bytes += B[i].size;
        } else if (c->state[i] == ST_INDIRECT) {
            s->indirect_blocks++;
            s->indirect_bytes += B[i].size;
        } else {
            s->direct_blocks++;
            s->direct_bytes += B[i].size;
        }
    }
    c->head.magic = RET_MAGIC;
    c->head.nsites = (uint32_t)sites.n;
    c->head.npairs = (uint32_t)pairs.n;
    c->head.blocks = n;
    for (size_t i = 0; i < n; i++) c->head.bytes += B[i].size;
    const void *parts[] = { &c->head, sites.p, pairs.p };
    size_t lens[] = { sizeof c->head, sites.n * sizeof(ret_wire_site), pairs.n * sizeof(ret_wire_pair) };
    for (int k = 0; k < 3; k++) {
        const char *q = parts[k];
        size_t left = lens[k];
        while (left) {
            ssize_t w = write(fd, q, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return -1;
            q += w;
            left -= (size_t)w;
        }
    }
    return 0;
}

/* Private_Clean + Private_Dirty of the child, in kB (0 when unreadable). */
static uint64_t child_private_kb(void)
{
    char buf[4096];
    int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    uint64_t kb = 0;
    for (const char *p = buf; (p = strstr(p, "Private_")) != NULL; p++) {
        const char *colon = strchr(p, ':');
        if (colon) kb += strtoull(colon + 1, NULL, 10);
    }
    return kb;
}

static void child_fail(int fd, int why)
{
    ret_wire_head h;
    memset(&h, 0, sizeof h);
    h.magic = RET_MAGIC;
    h.failed = why;
    ssize_t w = write(fd, &h, sizeof h);
    (void)w;
    syscall(SYS_exit_group, 1);
}

/* The child's whole life. Never returns. */
static __attribute__((noreturn, noinline)) void child_main(const prep *pr, int out, int in)
{
    /* no core file of a copy of the program, dead with its parent, first for the OOM killer */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) { ssize_t w = write(fd, "1000", 4); (void)w; close(fd); }
    /* the tracker's address table locks were held by the caller across the clone */
    tracker_table_lock_all(0);

    child c;
    memset(&c, 0, sizeof c);
    c.pr = pr;
    c.maps = (vec)VEC(mapping);
    c.blocks = (vec)VEC(blk);
    c.work = (vec)VEC(uint32_t);
    c.edges = (vec)VEC(edge);
    c.root_addr = (vec)VEC(uint64_t);
    double t0 = now_ms();
    if (read_maps(&c) != 0) child_fail(out, RET_FAIL_MAPS);
    if (enum_blocks(&c) != 0 || sort_blocks(&c) != 0) child_fail(out, RET_FAIL_MEMORY);
    size_t n = c.blocks.n;
    for (size_t i = 0; i < n; i++) {
        blk *b = &VAT(c.blocks, blk, i);
        b->site = site_key(pr, b->id);
    }
    c.obj_node = pr->nobj ? arena_u32(pr->nobj) : NULL;
    c.state = (uint8_t *)arena_u32(n / 4 + 1);
    c.start = (uint8_t *)arena_u32(n / 4 + 1);
    if (!c.state || !c.start) child_fail(out, RET_FAIL_MEMORY);
    double t1 = now_ms();
    /* the parent's verdict on each thread's stack pointer */
    uint8_t exact[RET_MAX_THREADS];
    size_t got = 0;
    while (got < pr->nth) {
        ssize_t r = read(in, exact + got, pr->nth - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) child_fail(out, RET_FAIL_PARENT);
        got += (size_t)r;
    }
    if (mark(&c, exact) != 0 || classify_lost(&c) != 0) child_fail(out, RET_FAIL_MEMORY);
    double t2 = now_ms();
    uint32_t *idom = dominators(&c, c.vroot + 1 + (uint32_t)c.root_addr.n);
    double t3 = now_ms();
    c.head.enum_ms = t1 - t0;
    c.head.mark_ms = t2 - t1;
    c.head.dom_ms = t3 - t2;
    c.head.edges = c.edges.n;
    c.head.child_private_kb = child_private_kb();
    if (report(&c, idom, out) != 0) child_fail(out, RET_FAIL_MEMORY);
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

/* ------------------------------------------------------------------ */
/* The parent                                                           */
/* ------------------------------------------------------------------ */

/* Site keys for every stack id in use: tracker_site_key's names, one key
 * per distinct name. names receives them (malloc'ed, the caller frees). */
static int name_sites(prep *pr, const char *system, char ***names, uint32_t *nnames)
{
    tracker_report_opts o = { .key = TRACKER_KEY_LINENO, .top = 1, .frames = 1, .system = system };
    tracker_snapshot *s = tracker_snapshot_take();
    if (!s) return -1;
    uint32_t n = 0;
    for (size_t i = 0; i < s->nstats; i++)
        if (s->stats[i].stack_id + 1 > n) n = s->stats[i].stack_id + 1;
    size_t hn = 64;
    while (hn < s->nstats * 2 + 2) hn *= 2;
    pr->site_of = malloc((n + 1) * sizeof *pr->site_of);
    char **nm = calloc(s->nstats + 1, sizeof *nm);
    uint32_t *hash = malloc(hn * sizeof *hash); /* name index + 1, 0 empty */
    if (!pr->site_of || !nm || !hash) { tracker_snapshot_free(s); free(nm); free(hash); return -1; }
    memset(hash, 0, hn * sizeof *hash);
    /* ids with no live block now are named by the parent if they show up */
    for (uint32_t id = 0; id < n; id++) pr->site_of[id] = RET_LATE_SITE | id;
    uint32_t k = 0;
    for (size_t i = 0; i < s->nstats; i++) {
        char *key = tracker_site_key(s->stats[i].stack_id, &o, NULL);
        if (!key) continue;
        uint64_t hv = 1469598103934665603ULL;
        for (const char *q = key; *q; q++) hv = (hv ^ (unsigned char)*q) * 1099511628211ULL;
        size_t j = (size_t)hv & (hn - 1);
        while (hash[j] && strcmp(nm[hash[j] - 1], key) != 0) j = (j + 1) & (hn - 1);
        if (hash[j]) {
            free(key);
        } else {
            nm[k++] = key;
            hash[j] = k;
        }
        pr->site_of[s->stats[i].stack_id] = hash[j] - 1;
    }
    free(hash);
    pr->nsite_of = n;
    tracker_snapshot_free(s);
    *names = nm;
    *nnames = k;
    return 0;
}

/* Read exactly len bytes from fd before the deadline (ms on tracker_now's clock). */
static int read_full(int fd, void *buf, size_t len, double deadline)
{
    char *p = buf;
    while (len) {
        int wait = (int)(deadline - now_ms());
        if (wait <= 0) return -1;
        struct pollfd pf = { fd, POLLIN, 0 };
        int r = poll(&pf, 1, wait);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Defined in retention_report.c: the parent's half of the result. */
int tracker_retention_build(tracker_retention *r, const ret_wire_head *h, const ret_wire_site *sites,
                            const ret_wire_pair *pairs, char **names, uint32_t nnames, const char *system,
                            const pid_t *tids, unsigned ntids);

/* The clone: registers spilled, stack pointer taken, the table's locks held
 * across it. Returns the child's pid (or -1 with errno); pause in *ms. */
static __attribute__((noinline)) pid_t snapshot_clone(prep *pr, int out, int in, int *close_in_child, double *ms)
{
    __builtin_unwind_init(); /* every callee-saved register into this frame, above the stack pointer */
    uintptr_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    pr->self_sp = sp;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the child starts with every signal blocked */
    tracker_table_lock_all(1);
    double t0 = now_ms();
    long pid = syscall(SYS_clone, 0L /* no CLONE_*, exit signal 0: no SIGCHLD */, 0L, 0L, 0L, 0L);
    if (pid == 0) {
        close(close_in_child[0]);
        close(close_in_child[1]);
        child_main(pr, out, in);
    }
    int e = errno;
    *ms = now_ms() - t0;
    tracker_table_lock_all(0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return (pid_t)pid;
}

static tracker_retention *unavailable(tracker_retention *r, const char *fmt, const char *what)
{
    snprintf(r->reason, sizeof r->reason, fmt, what);
    r->available = 0;
    return r;
}

tracker_retention *tracker_retention_scan(const char *system, double timeout_s, const void *stack_from)
{
    int g = tracker_internal_enter();
    double t_start = now_ms();
    tracker_retention *r = calloc(1, sizeof *r);
    prep *pr = calloc(1, sizeof *pr);
    char **names = NULL;
    uint32_t nnames = 0;
    int up[2] = { -1, -1 }, down[2] = { -1, -1 };
    pid_t pid = -1;
    char *buf = NULL;
    if (!r || !pr) { free(r); r = NULL; goto done; }
    /* from where the caller said (its stack may be another mapping than
     * the one it runs on now), else from this function's frame base, less
     * the callee-saved registers its prologue pushed right below it (up to
     * 5 with %rbp: the values of the frames above) */
    pr->self_from = stack_from ? (uintptr_t)stack_from & ~(uintptr_t)7 : (uintptr_t)__builtin_frame_address(0) - 48;
#if !defined(__x86_64__) || !defined(__linux__)
    unavailable(r, "%s", "the retention scan is written for x86-64 Linux");
    goto done;
#endif
    if (!tracker_hooks_linked()) { unavailable(r, "%s", "no allocation hooks in this build: no block is recorded"); goto done; }
    if (name_sites(pr, system, &names, &nnames) != 0) { unavailable(r, "%s", "out of memory naming the sites"); goto done; }
    dl_iterate_phdr(add_segment, pr);
    pr->obj = tracker_retention_objects(&pr->nobj);
    pr->main_tcb = main_tcb;
    tracker_totals tot;
    tracker_get_totals(&tot);
    pr->nstacks = (uint32_t)(tot.stacks < TRACKER_UNTRACKED ? tot.stacks : TRACKER_UNTRACKED);
    list_threads(pr);
    if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) {
        unavailable(r, "pipe: %s", strerror(errno));
        goto done;
    }
    int ends[2] = { up[0], down[1] };
    pid = snapshot_clone(pr, up[1], down[0], ends, &r->pause_ms);
    if (pid < 0) {
        unavailable(r, "the copy-on-write child cannot be had: clone: %s", strerror(errno));
        goto done;
    }
    close(up[1]); up[1] = -1;
    close(down[0]); down[0] = -1;
    /* each thread's stack pointer: held across the clone if its line and run time are unchanged */
    uint8_t exact[RET_MAX_THREADS];
    for (unsigned i = 0; i < pr->nth; i++) {
        char line[160], sched[64];
        read_thread(pr->th[i].tid, line, sizeof line, sched, sizeof sched);
        exact[i] = pr->th[i].sp && strcmp(line, pr->th[i].line) == 0 && sched[0] &&
                   strcmp(sched, pr->th[i].sched) == 0;
        if (!pr->th[i].sp) pr->th[i].sp = syscall_sp(line); /* running before: its mapping at least */
    }
    /* the child has its copy of pr: the verdict goes down the pipe */
    if (pr->nth && write(down[1], exact, pr->nth) != (ssize_t)pr->nth) {
        unavailable(r, "%s", "the scan's child went away before it started");
        goto done;
    }
    double deadline = now_ms() + timeout_s * 1000.0;
    ret_wire_head h;
    if (read_full(up[0], &h, sizeof h, deadline) != 0 || h.magic != RET_MAGIC) {
        unavailable(r, "%s", now_ms() >= deadline ? "the scan took longer than its time limit: stopped"
                                                  : "the scan's child died before it answered");
        goto done;
    }
    if (h.failed) {
        static const char *why[] = { "", "the scan's child had no memory of its own (mmap failed)",
                                     "the scan's child could not read /proc/self/maps",
                                     "the scan's child did not hear from its parent" };
        unavailable(r, "%s", why[h.failed < 4 ? h.failed : 1]);
        goto done;
    }
    size_t bytes = (size_t)h.nsites * sizeof(ret_wire_site) + (size_t)h.npairs * sizeof(ret_wire_pair);
    buf = malloc(bytes + 1);
    if (!buf || read_full(up[0], buf, bytes, deadline) != 0) {
        unavailable(r, "%s", buf ? "the scan's child stopped answering" : "out of memory reading the scan");
        goto done;
    }
    pid_t tids[RET_MAX_THREADS + 1];
    tids[0] = (pid_t)syscall(SYS_gettid);
    for (unsigned i = 0; i < pr->nth; i++) tids[i + 1] = pr->th[i].tid;
    r->scan_ms = h.enum_ms + h.mark_ms + h.dom_ms;
    r->enum_ms = h.enum_ms;
    r->mark_ms = h.mark_ms;
    r->dom_ms = h.dom_ms;
    if (tracker_retention_build(r, &h, (const ret_wire_site *)buf,
                                (const ret_wire_pair *)(buf + (size_t)h.nsites * sizeof(ret_wire_site)), names,
                                nnames, system, tids, pr->nth + 1) != 0)
        unavailable(r, "%s", "out of memory building the report");
    else
        r->available = 1;
done:
    if (pid > 0) {
        int st;
        kill(pid, SIGKILL); /* done or not, it has nothing more to say */
        while (waitpid(pid, &st, __WCLONE) < 0 && errno == EINTR) {}
    }
    for (int i = 0; i < 2; i++) {
        if (up[i] >= 0) close(up[i]);
        if (down[i] >= 0) close(down[i]);
    }
    free(buf);
    if (names) for (uint32_t i = 0; i < nnames; i++) free(names[i]);
    free(names);
    if (pr) { free(pr->site_of); free(pr->obj); }
    free(pr);
    if (r) r->total_ms = now_ms() - t_start;
    tracker_internal_leave(g);
    return r;
}
