/* test_tracker.c - unit tests of the tracker core, linked with the hooks like the server is. */

#include "tracker.h"
#include "check.h"
#include "tracker_internal.h"
#include "lockorder.h"
#include "ialloc.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Output goes to stderr only: it is unbuffered, so printing never
 * allocates and cannot disturb the totals under test.
 * Run from the project root (the tests read this file to find markers).
 */


static tracker_totals totals(void)
{
    tracker_totals t;
    tracker_get_totals(&t);
    return t;
}

/* Line of this file that carries marker (found in the source, never hard-coded). */
static int marker_line(const char *marker)
{
    FILE *f = fopen(__FILE__, "r");
    char buf[512];
    int no = 0, found = 0;
    if (!f) return -1;
    while (fgets(buf, sizeof buf, f)) {
        no++;
        /* the marker inside a comment, not this function's own argument */
        char *m = strstr(buf, marker);
        if (m && m > buf + 2 && m[-1] == ' ' && m[-2] == '*' && m[-3] == '/') { found = no; break; }
    }
    fclose(f);
    return found;
}

/* Live count and size of the stacks whose frame 0 is at this file:line. */
static void site_totals(int line, uint64_t *count, uint64_t *size, int *nstacks)
{
    *count = *size = 0;
    *nstacks = 0;
    tracker_snapshot *s = tracker_snapshot_take();
    for (size_t i = 0; s && i < s->nstats; i++) {
        int n;
        const uintptr_t *f = tracker_stack_frames(s->stats[i].stack_id, &n);
        tracker_frame_info info;
        tracker_symbolize(f[0], &info);
        if (info.file && strstr(info.file, "test_tracker.c") && info.line == line) {
            *count += s->stats[i].count;
            *size += s->stats[i].size;
            (*nstacks)++;
        }
    }
    tracker_snapshot_free(s);
}

/* ------------------------------------------------------------------ */
/* Allocation sites with markers                                        */
/* ------------------------------------------------------------------ */

__attribute__((noipa)) static void *alloc_at_site_a(size_t n)
{
    void *p = malloc(n); /* SITE-A */
    __asm__ volatile("" ::: "memory"); /* keep the call from becoming a tail call */
    return p;
}

__attribute__((noipa)) static void *alloc_at_site_b(void *p, size_t n)
{
    void *q = realloc(p, n); /* SITE-B */
    __asm__ volatile("" ::: "memory");
    return q;
}

__attribute__((noipa)) static void *alloc_at_site_c(size_t n)
{
    void *p = malloc(n); /* SITE-C */
    __asm__ volatile("" ::: "memory");
    return p;
}

/* One allocating helper, two callers: same line, two stacks. noipa keeps
 * gcc -O2 from folding identical functions into one (-fipa-icf). */
__attribute__((noipa)) static void *shared_helper(size_t n)
{
    void *p = malloc(n); /* SITE-SHARED */
    __asm__ volatile("" ::: "memory");
    return p;
}
__attribute__((noipa)) static void *caller_one(size_t n) { void *p = shared_helper(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noipa)) static void *caller_two(size_t n) { void *p = shared_helper(n); __asm__ volatile("" ::: "memory"); return p; }

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_zero_at_start_and_end(void)
{
    tracker_totals t0 = totals();
    CHECK(t0.live_bytes == 0 && t0.live_blocks == 0,
          "live memory is 0 at start (%llu bytes, %llu blocks)",
          (unsigned long long)t0.live_bytes, (unsigned long long)t0.live_blocks);
    void *p[1000];
    for (int i = 0; i < 1000; i++) p[i] = malloc((size_t)i + 1);
    tracker_totals t1 = totals();
    CHECK(t1.live_blocks == 1000 && t1.live_bytes == 1000 * 1001 / 2,
          "1000 mallocs of 1..1000 bytes: %llu blocks, %llu bytes (want 1000, 500500)",
          (unsigned long long)t1.live_blocks, (unsigned long long)t1.live_bytes);
    for (int i = 0; i < 1000; i++) free(p[i]);
    tracker_totals t2 = totals();
    CHECK(t2.live_bytes == 0 && t2.live_blocks == 0, "live memory is 0 after freeing all (%llu bytes)",
          (unsigned long long)t2.live_bytes);
}

/* Allocate with one entry point, check it is tracked with its size, free it. */
static void expect_tracked(const char *what, void *p, size_t size)
{
    size_t got = 0;
    uint32_t id;
    tracker_totals before = totals();
    int found = tracker_lookup(p, &got, &id);
    CHECK(p && found && got == size, "%s is counted (found=%d, size %zu, want %zu)", what, found, got, size);
    free(p);
    tracker_totals after = totals();
    CHECK(after.live_blocks + 1 == before.live_blocks && after.live_bytes + size == before.live_bytes,
          "%s is forgotten by free", what);
}

static void test_entry_points(void)
{
    void *p = NULL;
    expect_tracked("malloc", malloc(123), 123);
    expect_tracked("calloc", calloc(7, 9), 63);
    expect_tracked("realloc(NULL)", realloc(NULL, 77), 77);
    expect_tracked("realloc", realloc(malloc(10), 3000), 3000);
    expect_tracked("reallocarray", reallocarray(NULL, 5, 11), 55);
    int rc = posix_memalign(&p, 64, 200);
    CHECK(rc == 0 && ((uintptr_t)p & 63) == 0, "posix_memalign aligned to 64");
    expect_tracked("posix_memalign", p, 200);
    CHECK(posix_memalign(&p, 3, 10) != 0, "posix_memalign rejects alignment 3");
    expect_tracked("aligned_alloc", aligned_alloc(128, 256), 256);
    expect_tracked("memalign", memalign(32, 40), 40);
    expect_tracked("valloc", valloc(100), 100);
#ifndef TEST_QUICK /* helgrind and drd have no pvalloc: they abort the program */
    expect_tracked("pvalloc", pvalloc(100), 100);
#endif
    expect_tracked("strdup (inside libc)", strdup("leak lab"), 9);
    expect_tracked("strndup (inside libc)", strndup("leak lab", 4), 5);
    char *line = NULL;
    FILE *f = fopen(__FILE__, "r");
    size_t cap = 0;
    ssize_t got = f ? getline(&line, &cap, f) : -1;
    if (got > 0) expect_tracked("getline (inside libc)", line, cap);
    else CHECK(0, "getline read this file");
    if (f) fclose(f);
    tracker_totals t = totals();
    CHECK(t.live_blocks == 0, "nothing left after the entry-point tests (%llu)", (unsigned long long)t.live_blocks);
}

static void test_known_line(void)
{
    int line = marker_line("SITE-A");
    enum { N = 2500 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = alloc_at_site_a(40);
    uint64_t count, size;
    int nst;
    site_totals(line, &count, &size, &nst);
    CHECK(line > 0 && count == N && size == N * 40,
          "%d allocations at test_tracker.c:%d (found from SITE-A) give count %llu, size %llu",
          N, line, (unsigned long long)count, (unsigned long long)size);

    /* The report's first line names the same site. */
    tracker_snapshot *s = tracker_snapshot_take();
    tracker_report_opts o = { .key = TRACKER_KEY_LINENO, .top = 3, .frames = 1, .capture_no = 1 };
    size_t len;
    char *text = tracker_report(s, NULL, &o, &len);
    char want[64];
    snprintf(want, sizeof want, "test_tracker.c:%d: size=", line);
    CHECK(text && strstr(text, want) && strncmp(text, "tests/unit/test_tracker.c:", 26) == 0,
          "report's first line is the SITE-A line relative to the project: %.60s", text ? text : "(null)");
    free(text);
    tracker_snapshot_free(s);
    for (int i = 0; i < N; i++) free(p[i]);
    site_totals(line, &count, &size, &nst);
    CHECK(count == 0 && size == 0, "after free the SITE-A line holds nothing");
}

static void test_realloc_moves(void)
{
    int la = marker_line("SITE-A"), lb = marker_line("SITE-B");
    void *p = alloc_at_site_a(100);
    uint64_t ca, sa, cb, sb;
    int n;
    p = alloc_at_site_b(p, 5000);
    site_totals(la, &ca, &sa, &n);
    site_totals(lb, &cb, &sb, &n);
    CHECK(ca == 0 && sa == 0 && cb == 1 && sb == 5000,
          "realloc moves the block: SITE-A %llu B, SITE-B %llu B (want 0, 5000)",
          (unsigned long long)sa, (unsigned long long)sb);
    p = alloc_at_site_b(p, 10);
    site_totals(lb, &cb, &sb, &n);
    CHECK(cb == 1 && sb == 10, "shrinking realloc: SITE-B %llu B (want 10)", (unsigned long long)sb);
    void *q = alloc_at_site_b(p, 0); /* glibc: frees, returns NULL */
    site_totals(lb, &cb, &sb, &n);
    CHECK(q == NULL && cb == 0 && sb == 0, "realloc(p, 0) frees the block");
    void *big = malloc(64);
    volatile uintptr_t keep = (uintptr_t)big;
    void *r = realloc(big, (size_t)-1 / 2); /* fails: the old block must stay tracked */
    size_t sz = 0;
    CHECK(r == NULL && tracker_lookup((void *)keep, &sz, NULL) && sz == 64, "a failed realloc keeps the old record (%zu B)", sz);
    free((void *)keep);
}

/* The SITE-C row of a snapshot taken with flags: found (0/1) and its fields. */
static int site_c_row(unsigned flags, tracker_stack_stat *out)
{
    int line = marker_line("SITE-C"), found = 0;
    tracker_snapshot *s = tracker_snapshot_take_flags(flags);
    for (size_t i = 0; s && i < s->nstats && !found; i++) {
        int n;
        tracker_frame_info info;
        tracker_symbolize(tracker_stack_frames(s->stats[i].stack_id, &n)[0], &info);
        if (info.file && strstr(info.file, "test_tracker.c") && info.line == line) {
            *out = s->stats[i];
            found = 1;
        }
    }
    tracker_snapshot_free(s);
    return found;
}

static void test_cumulative(void)
{
    enum { N = 300 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = alloc_at_site_c(50);
    for (int i = 0; i < N / 3; i++) free(p[i]);
    tracker_stack_stat r = { 0 };
    int found = site_c_row(0, &r);
    CHECK(found && r.count == N - N / 3 && r.size == (N - N / 3) * 50 && r.alloc_count == N &&
          r.alloc_bytes == N * 50,
          "SITE-C after %d mallocs, %d frees: live %llu/%llu B, allocated %llu/%llu B", N, N / 3,
          (unsigned long long)r.count, (unsigned long long)r.size,
          (unsigned long long)r.alloc_count, (unsigned long long)r.alloc_bytes);
    void *keep = p[N - 1];
    void *q = realloc(keep, (size_t)-1 / 2); /* fails: the block is put back, not allocated again */
    found = site_c_row(0, &r);
    CHECK(q == NULL && found && r.alloc_count == N, "a failed realloc is not counted as an allocation (%llu)",
          (unsigned long long)r.alloc_count);
    for (int i = N / 3; i < N; i++) free(p[i]);
    CHECK(!site_c_row(0, &r), "a default snapshot leaves out a stack with nothing live");
    found = site_c_row(TRACKER_SNAP_ALL_STACKS, &r);
    CHECK(found && r.count == 0 && r.size == 0 && r.alloc_count == N && r.alloc_bytes == N * 50,
          "TRACKER_SNAP_ALL_STACKS keeps it: live %llu, allocated %llu blocks, %llu B",
          (unsigned long long)r.count, (unsigned long long)r.alloc_count, (unsigned long long)r.alloc_bytes);
}

static void test_two_callers(void)
{
    int line = marker_line("SITE-SHARED");
    void *two[2];
    void *a = caller_one(11);
    for (volatile int i = 0; i < 2; i++) two[i] = caller_two(22 + 11 * (size_t)i); /* one call site (volatile: not unrolled) */
    void *b = two[0], *c = two[1];
    uint32_t ia, ib, ic;
    tracker_lookup(a, NULL, &ia);
    tracker_lookup(b, NULL, &ib);
    tracker_lookup(c, NULL, &ic);
    CHECK(ia != ib && ib == ic, "two callers of one helper get two stacks (%u, %u, %u)", ia, ib, ic);
    uint64_t count, size;
    int nst;
    site_totals(line, &count, &size, &nst);
    if (getenv("DEBUG_TRACKER")) {
        tracker_snapshot *d = tracker_snapshot_take();
        tracker_report_opts dop = { .key = TRACKER_KEY_TRACEBACK, .top = 5, .frames = 3, .capture_no = 1 };
        size_t dl;
        char *dt = tracker_report(d, NULL, &dop, &dl);
        fprintf(stderr, "line %d\n%s", line, dt);
        free(dt);
        tracker_snapshot_free(d);
    }
    CHECK(count == 3 && nst == 2, "key=lineno: one line, %llu blocks from %d stacks", (unsigned long long)count, nst);

    tracker_snapshot *s = tracker_snapshot_take();
    tracker_report_opts o = { .key = TRACKER_KEY_TRACEBACK, .top = 20, .frames = 4, .format = TRACKER_FORMAT_JSON, .capture_no = 1 };
    size_t len;
    char *json = tracker_report(s, NULL, &o, &len);
    int ones = 0, twos = 0;
    for (const char *q = json; q && (q = strstr(q, "\"function\":\"caller_")); q++) {
        if (!strncmp(q + 19, "one", 3)) ones++;
        if (!strncmp(q + 19, "two", 3)) twos++;
    }
    CHECK(ones == 1 && twos == 1, "key=traceback shows caller_one and caller_two as separate groups (%d, %d)", ones, twos);
    free(json);
    tracker_snapshot_free(s);
    free(a); free(b); free(c);
}

/* ---- threads ---- */

/* -DTEST_QUICK: the build tests/test_sanitizers.sh runs under valgrind's
 * thread checkers (helgrind, drd), ~100x slower: fewer rounds. */
#ifdef TEST_QUICK
enum { THREADS = 8, ROUNDS = 2000, KEEP = 1000 };
#else
enum { THREADS = 8, ROUNDS = 20000, KEEP = 1000 };
#endif
static void *kept[THREADS][KEEP];

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    unsigned seed = (unsigned)t * 7919u + 1;
    void *ring[64] = { 0 };
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        int slot = (int)(seed >> 16) % 64;
        free(ring[slot]);
        ring[slot] = malloc(16 + (seed >> 20) % 512);
    }
    for (int i = 0; i < 64; i++) free(ring[i]);
    for (int i = 0; i < KEEP; i++) kept[t][i] = alloc_at_site_a(100);
    return NULL;
}

static void test_threads(void)
{
    int line = marker_line("SITE-A");
    tracker_totals before = totals();
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    uint64_t count, size;
    int nst;
    site_totals(line, &count, &size, &nst);
    CHECK(count == THREADS * KEEP && size == THREADS * KEEP * 100,
          "%d threads x %d mallocs/frees: SITE-A holds exactly %llu blocks (want %d)",
          THREADS, ROUNDS, (unsigned long long)count, THREADS * KEEP);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < KEEP; i++) free(kept[t][i]);
    tracker_totals after = totals();
    /* Thread exit frees its own bookkeeping in glibc (TLS, stacks are cached):
     * whatever the threads left is pthread's, not ours. Ours must be gone. */
    site_totals(line, &count, &size, &nst);
    CHECK(count == 0 && after.lost_records == before.lost_records, "all freed, no record lost");
}

/* ---- stacks through code without frame pointers ---- */

static int cmp_alloc(const void *a, const void *b)
{
    void *p = malloc(8); /* called by qsort: the caller chain runs through libc */
    free(p);
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Call malloc with %rbp set to garbage, as code built without frame
 * pointers may leave it. Built with -mno-red-zone (see the Makefile). */
__attribute__((noipa)) static void *malloc_with_rbp(size_t n, uintptr_t fake)
{
    void *ret;
    /* The call must find the stack 16-byte aligned (the psABI: the hooks'
     * compiled code may use aligned SSE stores), so align it first and
     * restore it from callee-saved %r12 afterwards. Everything the call may
     * clobber is declared: %rdi and %rbx as in-out, the rest below. */
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "and $-16, %%rsp\n\t"
                     "push %%rbp\n\t"
                     "push %%rbp\n\t"
                     "mov %%rbx, %%rbp\n\t"
                     "call malloc@PLT\n\t"
                     "pop %%rbp\n\t"
                     "pop %%rbp\n\t"
                     "mov %%r12, %%rsp\n\t"
                     : "=a"(ret), "+D"(n), "+b"(fake)
                     :
                     : "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "r12",
                       "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                       "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
                       "memory", "cc");
    return ret;
}

static void test_no_frame_pointer_code(void)
{
    int v[64];
    for (int i = 0; i < 64; i++) v[i] = (i * 37) % 64;
    tracker_totals before = totals();
    qsort(v, 64, sizeof v[0], cmp_alloc);
    tracker_totals after = totals();
    CHECK(after.live_blocks == before.live_blocks, "allocations from inside libc's qsort are counted and freed");

    char local[64];
    memset(local, 0x41, sizeof local);
    uintptr_t fakes[] = { 0, 1, 8, (uintptr_t)-16, (uintptr_t)&local[0], (uintptr_t)&local[3],
                          (uintptr_t)malloc_with_rbp, (uintptr_t)&passed, 0x7ffffffff000ULL };
    int ok = 1;
    for (size_t i = 0; i < sizeof fakes / sizeof fakes[0]; i++) {
        void *p = malloc_with_rbp(24, fakes[i]);
        uint32_t id = 0;
        int n = 0;
        if (!p || !tracker_lookup(p, NULL, &id)) { ok = 0; continue; }
        const uintptr_t *f = tracker_stack_frames(id, &n);
        tracker_frame_info info;
        tracker_symbolize(f[0], &info);
        if (n < 1 || !info.function || strcmp(info.function, "malloc_with_rbp") != 0) ok = 0;
        free(p);
    }
    CHECK(ok, "malloc with a garbage frame pointer: no crash, frame 0 still names the caller");
}

/* ---- bookkeeping out of memory ---- */

static void test_bookkeeping_oom(void)
{
    enum { N = 20000 };
    static void *p[N];
    tracker_totals before = totals();
    tracker_debug_fail_bookkeeping(1000000);
    int all = 1;
    /* Headers need no bookkeeping memory: every block is still recorded. */
    for (int i = 0; i < N; i++) if (!(p[i] = malloc(32))) all = 0;
    tracker_totals mid = totals();
    CHECK(all, "every malloc succeeds while the tracker's bookkeeping has no memory");
    CHECK(mid.lost_records == before.lost_records && mid.live_blocks - before.live_blocks == N,
          "blocks with a header are all recorded (%llu of %d, %llu lost)",
          (unsigned long long)(mid.live_blocks - before.live_blocks), N,
          (unsigned long long)(mid.lost_records - before.lost_records));
    for (int i = 0; i < N; i++) free(p[i]);
    /* Aligned blocks need the address table, which cannot grow now. */
    for (int i = 0; i < N; i++) if (posix_memalign(&p[i], 64, 32) != 0) { p[i] = NULL; all = 0; }
    tracker_debug_fail_bookkeeping(0);
    tracker_totals aligned = totals();
    CHECK(all, "every posix_memalign succeeds while the tracker's bookkeeping has no memory");
    CHECK(aligned.lost_records > before.lost_records, "the aligned blocks it could not keep are counted as lost (%llu)",
          (unsigned long long)(aligned.lost_records - before.lost_records));
    CHECK(aligned.live_blocks - before.live_blocks + (aligned.lost_records - before.lost_records) == N,
          "tracked + lost = allocations (%llu + %llu = %d)",
          (unsigned long long)(aligned.live_blocks - before.live_blocks),
          (unsigned long long)(aligned.lost_records - before.lost_records), N);
    for (int i = 0; i < N; i++) free(p[i]);
    tracker_totals after = totals();
    CHECK(after.live_blocks == before.live_blocks && after.live_bytes == before.live_bytes,
          "freeing untracked blocks is harmless");
}

/* ---- the header in front of each block (hooks.c) ---- */

extern void *__libc_malloc(size_t size);
extern void *__libc_memalign(size_t align, size_t size);

static void test_headers(void)
{
    tracker_totals before = totals();
    /* glibc's own blocks (no header, not in the table) pass through. */
    void *g = __libc_malloc(40), *ga = __libc_memalign(64, 40);
    memset(g, 0x5a, 40);
    CHECK(g && !tracker_lookup(g, NULL, NULL) && malloc_usable_size(g) >= 40, "a block from glibc itself is not ours");
    g = realloc(g, 5000);
    CHECK(g && ((unsigned char *)g)[39] == 0x5a && !tracker_lookup(g, NULL, NULL),
          "realloc of glibc's own block keeps its bytes and stays untracked");
    free(g);
    free(ga);
    tracker_totals t = totals();
    CHECK(t.live_blocks == before.live_blocks && t.live_bytes == before.live_bytes,
          "freeing glibc's own blocks changes no totals");

    /* The caller may use all of malloc_usable_size: the next block's record survives. */
    int ok = 1;
    for (size_t n = 1; n <= 600; n += 7) {
        char *a = malloc(n), *b = malloc(n);
        size_t u = malloc_usable_size(a), sz = 0;
        if (!a || !b || u < n || u > n + 32) ok = 0;
        else memset(a, 0xff, u);
        if (!tracker_lookup(b, &sz, NULL) || sz != n) ok = 0;
        free(a);
        free(b);
    }
    CHECK(ok, "malloc_usable_size is the caller's, and filling it spares the next block's header");

    /* An aligned block moved by realloc stays recorded, at its new size. */
    void *al = aligned_alloc(256, 100);
    size_t sz = 0;
    CHECK(al && ((uintptr_t)al & 255) == 0 && tracker_lookup(al, &sz, NULL) && sz == 100, "aligned_alloc(256) is recorded");
    memset(al, 7, 100);
    al = realloc(al, 100000);
    sz = 0;
    CHECK(al && ((unsigned char *)al)[99] == 7 && tracker_lookup(al, &sz, NULL) && sz == 100000,
          "realloc of an aligned block: recorded at its new size (%zu)", sz);
    free(al);

    /* Sizes no header can hold fail like glibc's (volatile: the compiler
     * would warn about sizes it can see are impossible). */
    static volatile size_t too_big = SIZE_MAX - 8, half = SIZE_MAX / 2;
    errno = 0;
    void *huge = malloc(too_big);
    CHECK(!huge && errno == ENOMEM, "malloc(SIZE_MAX - 8): NULL and ENOMEM");
    errno = 0;
    huge = calloc(half, 3);
    CHECK(!huge && errno == ENOMEM, "calloc overflow: NULL and ENOMEM");
    char *volatile r = malloc(10);
    strcpy(r, "keep");
    errno = 0;
    huge = realloc(r, too_big + 4);
    CHECK(!huge && errno == ENOMEM && tracker_lookup(r, &sz, NULL) && sz == 10 && strcmp(r, "keep") == 0,
          "a failed realloc keeps the block and its record");
    free(r);
    t = totals();
    CHECK(t.live_blocks == before.live_blocks && t.live_bytes == before.live_bytes, "nothing left after the header tests");
}

/* ---- thread slots: more threads than slots, frees on other threads ---- */

enum { SLOT_THREADS = 40, SLOT_BLOCKS = 500 };
static void *handed[SLOT_THREADS][SLOT_BLOCKS];
static pthread_barrier_t all_alive;
static int use_barrier;

static void *slot_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    if (use_barrier) pthread_barrier_wait(&all_alive); /* all 40 alive before any allocates */
    for (int i = 0; i < SLOT_BLOCKS; i++) handed[t][i] = malloc(16 + (size_t)t);
    return NULL;
}

static void test_slots(void)
{
    tracker_totals before = totals();
    pthread_t th[SLOT_THREADS];
    /* 40 at once: 15 get a slot of their own, the rest share slot 0. */
    pthread_barrier_init(&all_alive, NULL, SLOT_THREADS);
    use_barrier = 1;
    for (int i = 0; i < SLOT_THREADS; i++) pthread_create(&th[i], NULL, slot_worker, (void *)(intptr_t)i);
    for (int i = 0; i < SLOT_THREADS; i++) pthread_join(th[i], NULL);
    use_barrier = 0;
    pthread_barrier_destroy(&all_alive);
    tracker_totals mid = totals();
    uint64_t want = 0;
    for (int t = 0; t < SLOT_THREADS; t++) want += (uint64_t)(16 + t) * SLOT_BLOCKS;
    CHECK(mid.live_blocks - before.live_blocks == SLOT_THREADS * SLOT_BLOCKS && mid.live_bytes - before.live_bytes == want,
          "%d threads at once: every block counted (%llu blocks)", SLOT_THREADS,
          (unsigned long long)(mid.live_blocks - before.live_blocks));
    /* 200 threads one after the other (their slots given back at exit);
     * this thread frees what they allocated. */
    int ok = 1;
    for (int r = 0; r < 200 && ok; r++) {
        int k = r % SLOT_THREADS;
        for (int i = 0; i < SLOT_BLOCKS; i++) free(handed[k][i]);
        pthread_t one;
        if (pthread_create(&one, NULL, slot_worker, (void *)(intptr_t)k) != 0) ok = 0;
        else pthread_join(one, NULL);
    }
    for (int t = 0; t < SLOT_THREADS; t++)
        for (int i = 0; i < SLOT_BLOCKS; i++) free(handed[t][i]);
    tracker_totals after = totals();
    CHECK(ok && after.live_blocks == before.live_blocks && after.live_bytes == before.live_bytes &&
              after.lost_records == before.lost_records,
          "200 short-lived threads, blocks freed on another thread: totals back to %llu blocks",
          (unsigned long long)before.live_blocks);
}

/* ---- fork while other threads allocate ---- */

static atomic_int_fast32_t stop_churn;

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_churn)) free(malloc(48));
    return NULL;
}

static void test_fork(void)
{
    pthread_t th[3];
    atomic_store(&stop_churn, 0);
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, churn, NULL);
    int ok = 0, forks = 200;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(5); /* a child stuck on a tracker lock dies instead of hanging the test */
            void *p[256]; /* enough blocks to touch every shard of the table */
            int good = 1;
            for (int k = 0; k < 256; k++) good &= (p[k] = malloc(16 + (size_t)k * 8)) != NULL;
            for (int k = 0; k < 256; k++) free(p[k]);
            _exit(good ? 0 : 1);
        }
        int st = 0;
        if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
    }
    atomic_store(&stop_churn, 1);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    CHECK(ok == forks, "fork while 3 threads allocate: %d of %d children could malloc and exit", ok, forks);
}

/* The lock-order check of the O0 build can fail: a child that takes a
 * lower-ranked lock while holding a higher one aborts; one in order
 * exits 0. */
static void test_lock_order(void)
{
#ifdef TRACKER_LOCK_CHECK
    int st[2] = { -1, -1 };
    for (int bad = 0; bad < 2; bad++) {
        pid_t pid = fork();
        if (pid == 0) {
            lock_order_take(bad ? LOCK_BIG : LOCK_CFI);
            lock_order_take(bad ? LOCK_CFI : LOCK_BIG);
            _exit(0);
        }
        if (pid > 0) waitpid(pid, &st[bad], 0);
    }
    CHECK(WIFEXITED(st[0]) && WEXITSTATUS(st[0]) == 0 && WIFSIGNALED(st[1]) && WTERMSIG(st[1]) == SIGABRT,
          "lock order: CFI then BIG is allowed, BIG then CFI aborts (status %#x, %#x)", st[0], st[1]);
#endif
}

/* What the tracker's own code allocates (the guard at TRACKER_GUARD_INTERNAL:
 * libdw, reports) comes from its own heap: glibc's counters do not move,
 * the blocks work as malloc's do (sizes, realloc, calloc, a big one), a
 * free from the program's side finds them, and /stats counts them as
 * bookkeeping. */
static void *own_churn(void *arg)
{
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int g = tracker_internal_enter();
        char *p = malloc((size_t)(i % 700) + 1);
        if (!p || !tracker_iowns(p)) bad++;
        else p[i % 700] = 1;
        tracker_internal_leave(g);
        free(p);
    }
    *(int *)arg = bad;
    return NULL;
}

static void test_own_heap(void)
{
    enum { N = 200 };
    char *p[N];
    struct mallinfo2 m0 = mallinfo2();
    tracker_totals t0 = totals();
    int g = tracker_internal_enter();
    int owned = 0, sized = 0;
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(i * 37 % 5000) + 1;
        p[i] = i % 3 == 0 ? calloc(1, n) : malloc(n);
        if (!p[i]) continue;
        owned += tracker_iowns(p[i]);
        sized += malloc_usable_size(p[i]) >= n;
        memset(p[i], 0x5a, n);
    }
    char *big = malloc(3u << 20);
    char *z = calloc(64, 16);
    int zero = z != NULL;
    for (int i = 0; z && i < 64 * 16; i++) zero &= z[i] == 0;
    char *r = strdup("the tracker's own string, grown by realloc");
    r = r ? realloc(r, 20000) : NULL;
    int kept = r && strcmp(r, "the tracker's own string, grown by realloc") == 0 && tracker_iowns(r);
    tracker_internal_leave(g);
    struct mallinfo2 m1 = mallinfo2();
    tracker_totals t1 = totals();
    CHECK(owned == N && sized == N, "the tracker's own blocks come from its own heap (%d of %d), with their sizes (%d)",
          owned, N, sized);
    CHECK(big && tracker_iowns(big) && malloc_usable_size(big) >= (3u << 20) && zero && kept,
          "a 3 MiB block, calloc's zeroes, realloc keeping the bytes");
    CHECK(m1.uordblks == m0.uordblks && m1.hblkhd == m0.hblkhd,
          "glibc's counters do not move (uordblks %+ld B, hblkhd %+ld B)", (long)(m1.uordblks - m0.uordblks),
          (long)(m1.hblkhd - m0.hblkhd));
    CHECK(t1.bookkeeping_bytes >= t0.bookkeeping_bytes + (3u << 20) && t1.live_blocks == t0.live_blocks,
          "they count as bookkeeping, not as the program's blocks (+%llu B)",
          (unsigned long long)(t1.bookkeeping_bytes - t0.bookkeeping_bytes));
    for (int i = 0; i < N; i++) free(p[i]); /* freed outside the guard: found by their tag */
    free(big);
    free(z);
    free(r);
    /* A whole report (libdw's symbols, the text) leaves glibc's heap as it was. */
    struct mallinfo2 r0 = mallinfo2();
    tracker_snapshot *snap = tracker_snapshot_take();
    tracker_report_opts ro = { .top = 10 };
    size_t rlen = 0;
    char *rep = snap ? tracker_report(snap, NULL, &ro, &rlen) : NULL;
    int rep_own = rep && rlen > 0 && tracker_iowns(rep);
    free(rep);
    tracker_snapshot_free(snap);
    struct mallinfo2 r1 = mallinfo2();
    CHECK(rep_own && r1.uordblks == r0.uordblks && r1.hblkhd == r0.hblkhd,
          "a report's memory is the tracker's own: glibc's uordblks %+ld B, hblkhd %+ld B",
          (long)(r1.uordblks - r0.uordblks), (long)(r1.hblkhd - r0.hblkhd));
    void *mine = malloc(100);
    CHECK(mine && !tracker_iowns(mine) && tracker_lookup(mine, NULL, NULL),
          "outside the guard, malloc is glibc's again and recorded");
    free(mine);
    int bad[4] = {0};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, own_churn, &bad[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CHECK(bad[0] + bad[1] + bad[2] + bad[3] == 0, "4 threads x %d blocks of its own heap at once", ROUNDS);
}

static void test_disabled(void)
{
    tracker_set_enabled(0);
    void *p = malloc(99);
    int found = tracker_lookup(p, NULL, NULL);
    tracker_set_enabled(1);
    free(p);
    CHECK(!found && tracker_is_active(), "a stopped tracker records nothing, and restarts");
}

int main(void)
{
    test_zero_at_start_and_end();
    test_entry_points();
    test_known_line();
    test_realloc_moves();
    test_cumulative();
    test_two_callers();
    test_threads();
    test_no_frame_pointer_code();
    test_bookkeeping_oom();
    test_headers();
    test_slots();
    test_fork();
    test_lock_order();
    test_own_heap();
    test_disabled();
    CHECK_PLAN();
    fprintf(stderr, "%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
