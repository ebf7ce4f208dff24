/* test_unwind.c - the CFI stack walk is never wrong and never faults: coroutines, sigaltstack, signals in libc, dlopen, garbage %rbp, JIT code, the walk memo. */

#include "tracker.h"
#include "check.h"
#include "tracker_internal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/*
 * Each test allocates from a known chain of this program's functions and
 * checks the stack the tracker recorded for that block: every frame in
 * this program (or in the test library) must be the next function of the
 * chain, in order, starting at frame 0, and every other frame must lie in
 * libc or ld.so. Built twice by the Makefile: with frame pointers
 * (test_unwind_fp) and with -fomit-frame-pointer (test_unwind_nofp); the
 * library it dlopens is lib/unwind_dl.so next to it.
 * Output on stderr (unbuffered: printing does not allocate).
 */


#define NCHAIN(c) ((int)(sizeof c / sizeof c[0]))
#define BARRIER() __asm__ volatile("" ::: "memory") /* no tail calls */

/* call_malloc_rbp(n, fake): malloc(n) with %rbp = fake, from a function
 * whose CFI is correct (CFA = %rsp + 16, %rbp saved at CFA - 16), as code
 * built without frame pointers uses %rbp for anything. */
void *call_malloc_rbp(size_t n, uintptr_t fake);
__asm__(".text\n"
        ".globl call_malloc_rbp\n"
        ".type call_malloc_rbp, @function\n"
        "call_malloc_rbp:\n"
        ".cfi_startproc\n"
        "push %rbp\n"
        ".cfi_adjust_cfa_offset 8\n"
        ".cfi_rel_offset %rbp, 0\n"
        "mov %rsi, %rbp\n"
        "call malloc@PLT\n"
        "pop %rbp\n"
        ".cfi_adjust_cfa_offset -8\n"
        ".cfi_restore %rbp\n"
        "ret\n"
        ".cfi_endproc\n"
        ".size call_malloc_rbp, .-call_malloc_rbp\n");

static char self_name[256];

static const char *base_name(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p ? p : "?";
}

static int own_module(const char *mod)
{
    return strcmp(mod, self_name) == 0 || strcmp(mod, "unwind_dl.so") == 0;
}

static int system_module(const char *mod)
{
    return strncmp(mod, "libc.so", 7) == 0 || strncmp(mod, "ld-linux", 8) == 0 || strncmp(mod, "[vdso", 5) == 0 ||
           strncmp(mod, "linux-vdso", 10) == 0;
}

/* This program's PLT stubs [lo, hi) (.plt, .plt.sec, .plt.got): a signal
 * can interrupt one, and it has no function name. From the section
 * headers of /proc/self/exe (libelf), moved by the load bias. */
static struct { uintptr_t lo, hi; } plt[3];

static int first_bias(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    *(uintptr_t *)arg = info->dlpi_addr;
    return 1;
}

static void find_plt(void)
{
    uintptr_t bias = 0;
    dl_iterate_phdr(first_bias, &bias);
    elf_version(EV_CURRENT);
    int fd = open("/proc/self/exe", O_RDONLY);
    Elf *e = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    size_t shstr;
    int k = 0;
    if (e && elf_getshdrstrndx(e, &shstr) == 0) {
        for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn)) != NULL && k < 3;) {
            GElf_Shdr sh;
            const char *name = gelf_getshdr(scn, &sh) ? elf_strptr(e, shstr, sh.sh_name) : NULL;
            if (name && strncmp(name, ".plt", 4) == 0) {
                plt[k].lo = bias + sh.sh_addr;
                plt[k++].hi = bias + sh.sh_addr + sh.sh_size;
            }
        }
    }
    if (e) elf_end(e);
    if (fd >= 0) close(fd);
}

static int in_plt(uintptr_t pc)
{
    for (int i = 0; i < 3; i++)
        if (pc >= plt[i].lo && pc < plt[i].hi) return 1;
    return 0;
}

/* Check the recorded stack of block p against chain (this program's
 * functions, innermost first): no frame of ours out of order, and at least
 * the first need entries of the chain found. Returns 1 when right; on a
 * mismatch *why says which frame. */
static int stack_is(void *p, const char *const *chain, int nchain, int need, char *why, size_t whylen)
{
    size_t size;
    uint32_t id;
    int n, k = 0;
    if (!tracker_lookup(p, &size, &id)) { snprintf(why, whylen, "block not tracked"); return 0; }
    const uintptr_t *f = tracker_stack_frames(id, &n);
    for (int i = 0; i < n; i++) {
        tracker_frame_info info;
        tracker_symbolize(f[i], &info);
        const char *fn = info.function ? info.function : "??";
        /* The module as the loader knows it (dladdr); the test library's
         * functions are exported, so the loader names them too. */
        Dl_info dl;
        if (dladdr((void *)(f[i] - 1), &dl) && dl.dli_fname) {
            info.module = base_name(dl.dli_fname);
            if (strcmp(info.module, "unwind_dl.so") == 0) fn = dl.dli_sname ? dl.dli_sname : "??";
        }
        if (i > 0 && !info.module[0]) info.module = self_name; /* the main program: dli_fname "" */
        if (own_module(info.module) && i > 0 && in_plt(f[i] - 1)) {
            /* a PLT stub: only as the interrupted pc of a signal (stored + 1, so f[i] - 1 is exact) */
        } else if (own_module(info.module)) {
            if (k >= nchain || strcmp(fn, chain[k]) != 0) {
                snprintf(why, whylen, "frame #%d is [%s] %s, want %s", i, info.module, fn, k < nchain ? chain[k] : "(none)");
                return 0;
            }
            k++;
        } else if (i == 0 || !system_module(info.module)) {
            snprintf(why, whylen, "frame #%d is [%s] %s", i, info.module, fn);
            return 0;
        }
    }
    if (k < need) {
        snprintf(why, whylen, "stops after %d frames, before %s", n, chain[k]);
        return 0;
    }
    snprintf(why, whylen, "%d frames", n);
    return 1;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A garbage %rbp of one of several kinds: random bits, this stack (just
 * above us, far above), the heap, code, small numbers, kernel addresses. */
static uintptr_t garbage(void)
{
    volatile char here[64];
    here[0] = 0;
    uint64_t r = next_rand();
    switch (r % 8) {
    case 0: return (uintptr_t)r;
    case 1: return (uintptr_t)here + (r >> 8) % 4096;
    case 2: return (uintptr_t)here - (r >> 8) % 4096;
    case 3: return (uintptr_t)&rng + (r >> 8) % 65536;
    case 4: return (uintptr_t)&next_rand + (r >> 8) % 4096;
    case 5: return (uintptr_t)(r >> 8) % 4096;
    case 6: return 0xffff800000000000ULL + (r >> 16);
    default: return (uintptr_t)here + 8; /* an aligned slot of a live frame */
    }
}

/* ---- a thousand garbage %rbp values on the thread's stack ---- */

__attribute__((noipa)) static void test_random_rbp(void)
{
    static const char *const chain[] = { "call_malloc_rbp", "test_random_rbp", "main", "_start" };
    int bad = 0;
    char why[512] = "", first_bad[512] = "";
    for (int i = 0; i < 1000; i++) {
        void *p = call_malloc_rbp(16, garbage());
        if (!stack_is(p, chain, NCHAIN(chain), NCHAIN(chain), why, sizeof why) && !bad++) snprintf(first_bad, sizeof first_bad, "%s", why);
        free(p);
    }
    CHECK(bad == 0, "1000 garbage %%rbp values: no fault, every stack is call_malloc_rbp <- test_random_rbp <- main (%d wrong%s%s)",
          bad, bad ? ": " : "", first_bad);
    BARRIER();
}

/* ---- the walk memo: same call site, same %rsp, different callers ---- */

__attribute__((noipa)) static void *memo_leaf(size_t n) { void *p = malloc(n); BARRIER(); return p; }
__attribute__((noipa)) static void *memo_mid(size_t n) { void *p = memo_leaf(n); BARRIER(); return p; }
__attribute__((noipa)) static void *memo_left(size_t n) { void *p = memo_mid(n); BARRIER(); return p; }
__attribute__((noipa)) static void *memo_right(size_t n) { void *p = memo_mid(n); BARRIER(); return p; }

/* memo_left and memo_right have the same frame, so memo_leaf's malloc
 * starts at the same return address and %rsp either way: only a word
 * further up differs. Every block must name its own caller. */
__attribute__((noipa)) static void test_memo(void)
{
    static const char *const left[] = { "memo_leaf", "memo_mid", "memo_left", "test_memo", "main", "_start" };
    static const char *const right[] = { "memo_leaf", "memo_mid", "memo_right", "test_memo", "main", "_start" };
    static void *blocks[2000];
    int bad = 0;
    char why[512] = "", first_bad[512] = "";
    for (int i = 0; i < 2000; i++) blocks[i] = (i % 3 == 1) ? memo_right(8) : memo_left(8);
    for (int i = 0; i < 2000; i++) {
        int ok = (i % 3 == 1) ? stack_is(blocks[i], right, NCHAIN(right), NCHAIN(right), why, sizeof why)
                              : stack_is(blocks[i], left, NCHAIN(left), NCHAIN(left), why, sizeof why);
        if (!ok && !bad++) snprintf(first_bad, sizeof first_bad, "block %d: %s", i, why);
        free(blocks[i]);
    }
    CHECK(bad == 0, "2000 mallocs from one call site at one %%rsp through two callers, interleaved: each stack names "
          "its own caller (%d wrong%s%s)", bad, bad ? ": " : "", first_bad);
    BARRIER();
}

/* ---- the walk memo: walks of every length, differing in any word ---- */

__attribute__((noipa)) static void *memo_rec(int d, size_t n)
{
    void *p = d ? memo_rec(d - 1, n) : malloc(n);
    BARRIER();
    return p;
}
__attribute__((noipa)) static void *memo_outer_a(int d) { void *p = memo_rec(d, 8); BARRIER(); return p; }
__attribute__((noipa)) static void *memo_outer_b(int d) { void *p = memo_rec(d, 8); BARRIER(); return p; }

/* Frames of p's stack named fn, from frame 0 on, and the frame after them
 * (NULL when the stack ends there). */
static int leading(void *p, const char *fn, const char **next)
{
    size_t size;
    uint32_t id;
    int n, k = 0;
    *next = NULL;
    if (!tracker_lookup(p, &size, &id)) return -1;
    const uintptr_t *f = tracker_stack_frames(id, &n);
    static char name[128];
    for (; k < n; k++) {
        tracker_frame_info info;
        tracker_symbolize(f[k], &info);
        if (!info.function || strcmp(info.function, fn) != 0) {
            snprintf(name, sizeof name, "%s", info.function ? info.function : "??");
            *next = name;
            break;
        }
    }
    return k;
}

/* memo_outer_a and memo_outer_b have the same frame, so memo_rec's malloc
 * at depth d starts at the same return address and %rsp from either, and
 * both are called from one call site: the walks differ only in the one
 * word d + 1 frames up (the return address into memo_outer_*), among the
 * first words the memo checks or the last. Depths 0..TRACKER_MAX_FRAMES + 2 (walks of
 * 1 to 16 frames, 1 or 2 words a frame), ROUNDS calls at each depth,
 * the caller drawn at random each time (so the way the memo tries first is
 * often the other caller's): every stack has exactly its d + 1 memo_rec
 * frames, then its own caller. */
__attribute__((noipa)) static void test_memo_depths(void)
{
    enum { DMAX = TRACKER_MAX_FRAMES + 2, ROUNDS = 24 };
    static void *blocks[ROUNDS][DMAX + 1];
    static char by_b[ROUNDS][DMAX + 1];
    int bad = 0;
    char first_bad[256] = "";
    for (int d = 0; d <= DMAX; d++)
        for (int r = 0; r < ROUNDS; r++) {
            by_b[r][d] = (char)(next_rand() & 1);
            void *(*outer)(int) = by_b[r][d] ? memo_outer_b : memo_outer_a;
            blocks[r][d] = outer(d); /* one call site: the return address into here is the same */
        }
    for (int r = 0; r < ROUNDS; r++)
        for (int d = 0; d <= DMAX; d++) {
            const char *next, *want = by_b[r][d] ? "memo_outer_b" : "memo_outer_a";
            int k = leading(blocks[r][d], "memo_rec", &next);
            int frames_left = TRACKER_MAX_FRAMES - (d + 1);
            int ok = frames_left > 0 ? k == d + 1 && next && strcmp(next, want) == 0 : k == TRACKER_MAX_FRAMES;
            if (!ok && !bad++)
                snprintf(first_bad, sizeof first_bad, "round %d depth %d: %d memo_rec frames, then %s (want %s)", r, d, k,
                         next ? next : "the end", frames_left > 0 ? want : "the end");
            free(blocks[r][d]);
        }
    CHECK(bad == 0, "%d mallocs at depths 0..%d from two callers with the same frame, drawn at random: each stack has its "
          "own depth and names its own caller (%d wrong%s%s)", ROUNDS * (DMAX + 1), (int)DMAX, bad, bad ? ": " : "", first_bad);
    BARRIER();
}

/* ---- makecontext coroutines (mmap'ed and malloc'ed stacks), garbage %rbp ---- */

static ucontext_t main_ctx, coro_ctx;
static void *coro_blocks[64];
static int coro_n;

__attribute__((noipa)) static void coro_entry(void)
{
    for (coro_n = 0; coro_n < 64; coro_n++) coro_blocks[coro_n] = call_malloc_rbp(32, garbage());
    BARRIER();
}

static void run_coroutine(const char *what, char *stack, size_t size)
{
    static const char *const chain[] = { "call_malloc_rbp", "coro_entry" };
    getcontext(&coro_ctx);
    coro_ctx.uc_stack.ss_sp = stack;
    coro_ctx.uc_stack.ss_size = size;
    coro_ctx.uc_link = &main_ctx;
    makecontext(&coro_ctx, coro_entry, 0);
    swapcontext(&main_ctx, &coro_ctx);
    int bad = 0;
    char why[512] = "", first_bad[512] = "";
    for (int i = 0; i < coro_n; i++) {
        if (!stack_is(coro_blocks[i], chain, NCHAIN(chain), NCHAIN(chain), why, sizeof why) && !bad++)
            snprintf(first_bad, sizeof first_bad, "%s", why);
        free(coro_blocks[i]);
    }
    CHECK(coro_n == 64 && bad == 0,
          "coroutine on a %s stack, 64 mallocs with garbage %%rbp: each stack is call_malloc_rbp <- coro_entry, "
          "then only libc (%d wrong%s%s)", what, bad, bad ? ": " : "", first_bad);
}

__attribute__((noipa)) static void test_coroutine(void)
{
    size_t size = 256 * 1024;
    char *st = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    run_coroutine("mmap'ed", st, size);
    munmap(st, size);
    char *heap = malloc(size);
    run_coroutine("malloc'ed", heap, size);
    free(heap);
    /* the same address range again after the mapping changed */
    st = mmap(NULL, size / 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    run_coroutine("remapped", st, size / 2);
    munmap(st, size / 2);
    BARRIER();
}

/* ---- a handler on a sigaltstack ---- */

static void *alt_block;
static char *alt_base;
static size_t alt_size = 64 * 1024;
static volatile int alt_on_alt;

__attribute__((noipa)) static void alt_handler(int sig)
{
    (void)sig;
    char here;
    alt_on_alt = &here >= alt_base && &here < alt_base + alt_size;
    alt_block = malloc(40);
    BARRIER();
}

__attribute__((noipa)) static void test_sigaltstack(void)
{
    static const char *const chain[] = { "alt_handler", "test_sigaltstack", "main", "_start" };
    alt_base = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stack_t ss = { .ss_sp = alt_base, .ss_size = alt_size }, old;
    sigaltstack(&ss, &old);
    struct sigaction sa = { .sa_handler = alt_handler, .sa_flags = SA_ONSTACK }, olda;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &olda);
    raise(SIGUSR1);
    sigaction(SIGUSR1, &olda, NULL);
    sigaltstack(&old, NULL);
    char why[512];
    int ok = stack_is(alt_block, chain, NCHAIN(chain), NCHAIN(chain), why, sizeof why);
    CHECK(alt_on_alt && ok, "malloc in a handler on a sigaltstack: alt_handler <- (signal frame) <- test_sigaltstack <- main "
          "(on the alt stack: %d; %s)", alt_on_alt, why);
    free(alt_block);
    munmap(alt_base, alt_size);
    BARRIER();
}

/* ---- a handler interrupting libc at random points ---- */

#define SIG_MAX 200
static void *sig_blocks[SIG_MAX];
static volatile int sig_n;

__attribute__((noipa)) static void sig_handler(int sig)
{
    (void)sig;
    if (sig_n < SIG_MAX) sig_blocks[sig_n++] = malloc(24);
    BARRIER();
}

__attribute__((noipa)) static size_t spin_fn(const char *s)
{
    size_t t = 0;
    for (int i = 0; i < 64; i++) t += strlen(s + (i & 7)) + (size_t)(memchr(s, 'x', 60000) != NULL);
    BARRIER();
    return t;
}

__attribute__((noipa)) static void test_signal_libc(void)
{
    /* the signal lands in spin_fn (or the libc it calls), or in the loop around it */
    static const char *const chain[] = { "sig_handler", "spin_fn", "test_signal_libc", "main", "_start" };
    static const char *const chain2[] = { "sig_handler", "test_signal_libc", "main", "_start" };
    static char text[65536];
    memset(text, 'a', sizeof text - 1);
    struct sigaction sa = { .sa_handler = sig_handler, .sa_flags = SA_RESTART }, olda;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &olda);
    struct itimerval it = { { 0, 300 }, { 0, 300 } }, off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &it, NULL);
    volatile size_t sink = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        sink += spin_fn(text);
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while (sig_n < SIG_MAX && t1.tv_sec - t0.tv_sec < 5);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &olda, NULL);
    int n = sig_n, bad = 0, full = 0;
    char why[512] = "", first_bad[512] = "";
    for (int i = 0; i < n; i++) {
        if (stack_is(sig_blocks[i], chain, NCHAIN(chain), NCHAIN(chain), why, sizeof why) ||
            stack_is(sig_blocks[i], chain2, NCHAIN(chain2), NCHAIN(chain2), why, sizeof why))
            full++;
        else if (!stack_is(sig_blocks[i], chain, NCHAIN(chain), 1, why, sizeof why) &&
                 !stack_is(sig_blocks[i], chain2, NCHAIN(chain2), 1, why, sizeof why) && !bad++)
            snprintf(first_bad, sizeof first_bad, "%s", why);
        free(sig_blocks[i]);
    }
    CHECK(n >= 20 && bad == 0, "%d signals interrupting strlen/memchr: no wrong frame in any stack (%d wrong%s%s)",
          n, bad, bad ? ": " : "", first_bad);
    CHECK(n >= 20 && full * 10 >= n * 9, "through the signal frame: %d of %d stacks reach _start (want >= 90%%)", full, n);
    BARRIER();
}

/* ---- dlopen'ed code, before any report ---- */

__attribute__((noipa)) static void test_dlopen(void)
{
    static const char *const ctor_chain[] = { "unwind_dl_ctor", "test_dlopen", "main", "_start" };
    static const char *const call_chain[] = { "unwind_dl_inner", "unwind_dl_outer", "test_dlopen", "main", "_start" };
    char path[PATH_MAX - 32];
    ssize_t len = readlink("/proc/self/exe", path, sizeof path - 32);
    if (len <= 0) { CHECK(0, "readlink /proc/self/exe"); return; }
    path[len] = 0;
    strcpy(strrchr(path, '/') + 1, "lib/unwind_dl.so");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { CHECK(0, "dlopen %s: %s", path, dlerror()); return; }
    void **ctor_block = dlsym(h, "unwind_dl_ctor_block");
    void *(*outer)(size_t) = (void *(*)(size_t))dlsym(h, "unwind_dl_outer");
    char why[512];
    int ok = ctor_block && stack_is(*ctor_block, ctor_chain, NCHAIN(ctor_chain), 2, why, sizeof why);
    CHECK(ok, "dlopen: the library's constructor allocation is unwound through ld.so to test_dlopen (%s)",
          ctor_block ? why : "no symbol");
    void *p = outer ? outer(77) : NULL;
    ok = p && stack_is(p, call_chain, NCHAIN(call_chain), NCHAIN(call_chain), why, sizeof why);
    CHECK(ok, "dlopen: its first call, built without frame pointers: unwind_dl_inner <- unwind_dl_outer <- test_dlopen <- main (%s)",
          p ? why : "no call");
    free(p);
    if (ctor_block) free(*ctor_block);
    BARRIER();
}

/* ---- code without CFI (a JIT page) ---- */

__attribute__((noipa)) static void test_jit(void)
{
    /* sub $8,%rsp; movabs $malloc,%rax; call *%rax; add $8,%rsp; ret */
    unsigned char code[] = { 0x48, 0x83, 0xec, 0x08, 0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
                             0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3 };
    void *(*mp)(size_t) = malloc;
    memcpy(code + 6, &mp, sizeof mp);
    unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(page, code, sizeof code);
    mprotect(page, 4096, PROT_READ | PROT_EXEC);
    void *(*jit)(size_t) = (void *(*)(size_t))page;
    void *p = jit(56);
    size_t size;
    uint32_t id;
    int n = 0;
    const uintptr_t *f = tracker_lookup(p, &size, &id) ? tracker_stack_frames(id, &n) : NULL;
    CHECK(n == 1 && f[0] == (uintptr_t)page + 16,
          "malloc from code without CFI (a JIT page): the stack is that one exact frame and ends (%d frames)", n);
    free(p);
    munmap(page, 4096);
    BARRIER();
}

int main(void)
{
    char path[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
    path[len > 0 ? len : 0] = 0;
    snprintf(self_name, sizeof self_name, "%.*s", (int)sizeof self_name - 1, base_name(path));
    find_plt();
    test_random_rbp();
    test_memo();
    test_memo_depths();
    test_coroutine();
    test_sigaltstack();
    test_signal_libc();
    test_dlopen();
    test_jit();
    CHECK_PLAN();
    fprintf(stderr, "# test_unwind: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
