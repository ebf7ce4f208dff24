/* sigalt.c - signal handlers on a 16 KiB sigaltstack: one allocates (as crash reporters and
 * interpreters' handlers do), one _exits from a SIGSEGV handler (as servers' crash handlers do). */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALT_SIZE (16 * 1024)

static volatile sig_atomic_t handled;
static int *volatile nowhere; /* NULL, read at run time */

/* Not async-signal-safe in theory; done by real programs all the same
 * (the handler interrupts only raise(), never a malloc of this thread). */
static __attribute__((noinline)) void note(int sig)
{
    char *p = malloc(64 + (size_t)handled % 100);
    if (p) {
        snprintf(p, 64, "signal %d", sig);
        handled += p[0] == 's';
        free(p);
    }
}

static void on_usr1(int sig) { note(sig); }

static void on_segv(int sig)
{
    (void)sig;
    static const char msg[] = "crash handler: caught SIGSEGV, exiting 3\n";
    write(2, msg, sizeof msg - 1);
    _exit(3);
}

/* The alternate stack with a guard page below it, so that an overflow is a
 * clean SIGSEGV rather than silent corruption of the memory next to it. */
static void alt_stack(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, ALT_SIZE + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); exit(1); }
    mprotect(m, pg, PROT_NONE);
    stack_t ss = { .ss_sp = m + pg, .ss_size = ALT_SIZE, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL)) { perror("sigaltstack"); exit(1); }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "alloc";
    alt_stack();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (strcmp(mode, "crash") == 0) {
        char *keep = malloc(77);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        printf("about to crash, %s\n", keep ? "a block kept" : "no block");
        fflush(stdout);
        *nowhere = 1;
        return 0;
    }
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    for (int i = 0; i < 200; i++) raise(SIGUSR1);
    printf("handled %d of 200 on a %d KiB sigaltstack\n", (int)handled, ALT_SIZE / 1024);
    return 0;
}
