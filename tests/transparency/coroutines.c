/* coroutines.c - 16 ucontext coroutines, each on its own mmap'ed stack with a guard page (as
 * coroutine libraries such as boost.context and libco, green threads and some servers make them),
 * 200000 switches, each coroutine allocating on its own stack between switches. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define NCO 16
#define STACK (128 * 1024)
#define GUARD 4096
#define SWITCHES 200000

static ucontext_t main_ctx, co_ctx[NCO];
static unsigned long sums[NCO];

static __attribute__((noinline)) unsigned step(unsigned i)
{
    char *p = malloc(16 + i % 256);
    if (!p) return 0;
    p[0] = (char)i;
    unsigned v = (unsigned char)p[0];
    free(p);
    return v;
}

static void body(int id)
{
    for (unsigned i = 0;; i++) {
        sums[id] += step(i + (unsigned)id);
        swapcontext(&co_ctx[id], &main_ctx);
    }
}

/* One coroutine's context and stack, in a function of its own: getcontext()
 * returns twice in gcc's eyes, and a loop around it would be "clobbered". */
static int setup(int i)
{
    char *m = mmap(NULL, STACK + GUARD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    mprotect(m, GUARD, PROT_NONE);
    getcontext(&co_ctx[i]);
    co_ctx[i].uc_stack.ss_sp = m + GUARD;
    co_ctx[i].uc_stack.ss_size = STACK;
    co_ctx[i].uc_link = &main_ctx;
    makecontext(&co_ctx[i], (void (*)(void))body, 1, i);
    return 0;
}

int main(void)
{
    for (int i = 0; i < NCO; i++)
        if (setup(i)) return 1;
    for (int s = 0; s < SWITCHES; s++) swapcontext(&main_ctx, &co_ctx[s % NCO]);
    unsigned long total = 0;
    for (int i = 0; i < NCO; i++) {
        total += sums[i];
        munmap((char *)co_ctx[i].uc_stack.ss_sp - GUARD, STACK + GUARD);
    }
    printf("%d coroutines, %d switches, sum %lu\n", NCO, SWITCHES, total);
    return 0;
}
