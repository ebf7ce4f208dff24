/* preload.c - LD_PRELOAD glue: writes a tracker report of any program at exit, and on a signal the user names. */
/* Long on purpose: everything the library does in a program besides
 * recording (report files, signals, exits, the calls it interposes for
 * privilege drops and seccomp) is here, so what it may change in a program
 * (docs/preload.md) is read in one file. */

#include "pprof.h"
#include "tracker.h"
#include "tracker_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/*
 * Usage (bin/leak-report sets all this up: prefer it):
 *   LD_PRELOAD=bin/libtracker.so TRACKER_OUT=leaks.%p.txt ./program
 *
 * Environment (all optional):
 *   TRACKER_OUT     file to append reports to; %p becomes the pid of the
 *                   process writing (so a forked child has its own file).
 *                   A relative path is made absolute once, at load.
 *                   Default: standard error.
 *   TRACKER_SIGNAL  a signal name or number (USR2, SIGUSR2, 12) for
 *                   on-demand reports; default none: no handler is
 *                   installed and the signal keeps its default action
 *   TRACKER_SIGNAL_THREAD  1: with TRACKER_SIGNAL, a thread of ours (all
 *                   signals blocked) writes the report at once, even when
 *                   the program is idle; default 0: no thread
 *   TRACKER_FATAL   1: also a report when a fatal signal (SEGV, BUS, FPE,
 *                   ILL, ABRT, TERM, INT, HUP, QUIT) ends the process: a
 *                   handler of ours on each that has its default action;
 *                   default 0: none
 *   TRACKER_TOP     groups per report (default 10)
 *   TRACKER_FRAMES  frames shown per group (default 8)
 *   TRACKER_KEY     lineno | traceback | filename (default lineno); a site
 *                   is the first frame in the program's own code
 *   TRACKER_SYSTEM  what counts as system code when choosing a site: a ':'
 *                   list of path or module-name prefixes, +LIST adds to the
 *                   default, none (tracker.h, tracker_system_check)
 *   TRACKER_WRAPPERS  the program's own allocation wrappers, found from the
 *                   stacks (report_wrappers.c, docs/sites.md): +name takes
 *                   one, -name never, none turns the detection off
 *   TRACKER_FORMAT  text | json | pprof (default text). pprof: each report
 *                   replaces the TRACKER_OUT file with a gzipped pprof
 *                   profile of the heap (tracker/report/pprof.h), for go tool pprof
 *   TRACKER_DEBUGINFO  system: also read separate debug files (libc6-dbg,
 *                   /usr/lib/debug) so system libraries show file:line;
 *                   default: only DWARF inside each module
 *   TRACKER_OFF     set: load but record nothing
 *   TRACKER_RETENTION  1: each report is followed by a retention section:
 *                   which live blocks are lost and which are held, and by
 *                   whom (tracker/report/retention.c; costs a copy-on-write fork
 *                   of the program per report); default 0
 *
 * What the library leaves alone in the program (README, "What the preload
 * changes"): no thread, no signal handler unless TRACKER_SIGNAL names one,
 * no fd kept open (report files are opened, written and closed, O_CLOEXEC),
 * no environment change, errno and exit status untouched.
 *
 * On-demand reports need no thread: the handler only sets a flag, and the
 * report is written by the next thread that enters a malloc-family call
 * outside the tracker (hooks.c), after its allocation is complete. An
 * idle program writes it when it next allocates, or at exit (before the
 * exit report, and said so in its header).
 *
 * At exit the report lists what is still live: absolute, not a diff,
 * since everything live at exit is either a leak or a long-lived object.
 * Exit paths with a report: exit(), return from main (a destructor), and
 * _exit()/_Exit() called by the program (interposed here; skipped, with a
 * line saying so, when unsafe: see exit_report()). Fatal signals and
 * abort() write none by default: catching them needs handlers of ours;
 * TRACKER_FATAL=1 installs them (on_fatal()).
 *
 * With TRACKER_OUT set, each process also writes a "started" line when it
 * loads the library or is forked, so a process that ended without a
 * report (killed, or exec'd a static program) can be told apart from one
 * that never ran (bin/leak-report lists them).
 */

static struct {
    char out[PATH_MAX];       /* TRACKER_OUT made absolute, %p kept; "" = stderr */
    tracker_report_opts opts; /* from the environment */
    int signo;                /* on-demand signal, 0 = none (the default) */
    int pprof;                /* TRACKER_FORMAT=pprof */
    atomic_int sandboxed;     /* the program installed a seccomp filter (prctl): no more reports */
    int keep_fd;              /* -1, or this process's report file kept open across a privilege drop */
    pid_t keep_pid;           /* the process keep_fd was opened by (a forked child's is not its own) */
    int launched;             /* TRACKER_LAUNCHER=1: bin/leak-report tells what was lost, not the program's stderr */
    pid_t pid;                /* this process; a hook seeing another pid runs in a vfork child */
    atomic_int exit_done;     /* the exit report is written (or refused): never twice */
    volatile sig_atomic_t thread; /* 1: the opt-in reporter thread runs in this process */
    sem_t wake;               /* signal handler -> reporter thread (no fd needed) */
    tracker_baseline base;    /* last on-demand snapshot, for diffs; report count */
    int retention;            /* TRACKER_RETENTION=1 */
} preload = { .base = TRACKER_BASELINE_INIT, .keep_fd = -1 };

/* ------------------------------------------------------------------ */
/* Output                                                               */
/* ------------------------------------------------------------------ */

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        buf += w;
        len -= (size_t)w;
    }
}

/* Decimal of v into buf (no stdio: also used in the atfork child). */
static size_t fmt_long(char *buf, long v)
{
    char tmp[24];
    size_t n = 0, o = 0;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) buf[o++] = '-';
    while (n) buf[o++] = tmp[--n];
    return o;
}

/* Open this process's report file (TRACKER_OUT with %p = our pid now),
 * for appending. Returns 2 (stderr) when no file is set, -1 on error. The
 * fd lives only while one report is written. Async-signal-safe. */
static int open_out(char *path, size_t cap)
{
    if (!preload.out[0]) return 2;
    size_t o = 0;
    for (const char *s = preload.out; *s && o + 24 < cap; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            o += fmt_long(path + o, (long)getpid());
            s++;
        } else {
            path[o++] = *s;
        }
    }
    path[o] = '\0';
    if (preload.keep_fd >= 0 && preload.keep_pid == getpid()) {
        int fd = fcntl(preload.keep_fd, F_DUPFD_CLOEXEC, 3);
        if (fd >= 0) return fd;
        preload.keep_fd = -1; /* the program closed it (closefrom): by path, as the others */
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        /* Created by root, the file is made writable by all: servers that
         * drop privileges later (memcached -u, nginx's and lighttpd's
         * workers) still append their reports to it. */
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0 && geteuid() == 0) fchmod(fd, 0666);
    }
    return fd;
}

/* One line "== tracker: pid N <what> (<program>) ==" to the report file
 * (files only: never on the program's stderr). Async-signal-safe. */
static void note(const char *what)
{
    if (!preload.out[0]) return;
    char path[PATH_MAX], line[PATH_MAX + 128];
    int fd = open_out(path, sizeof path);
    if (fd < 0) return;
    size_t n = 0;
    const char *parts[] = { "== tracker: pid ", NULL, what, " (", program_invocation_name, ") ==\n" };
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        if (!parts[i]) { n += fmt_long(line + n, (long)getpid()); continue; }
        size_t l = strnlen(parts[i], sizeof line - n - 64);
        memcpy(line + n, parts[i], l);
        n += l;
    }
    write_all(fd, line, n);
    close(fd);
}

/* TRACKER_FORMAT=pprof: replace the report file with a profile of the
 * heap now, absolute (pprof -diff_base compares two). Needs TRACKER_OUT. */
static void write_pprof(void)
{
    char path[PATH_MAX];
    unsigned char *buf = NULL;
    size_t len = 0;
    tracker_snapshot *s = tracker_snapshot_take_flags(TRACKER_SNAP_ALL_STACKS);
    int fd = preload.out[0] ? open_out(path, sizeof path) : -1;
    if (s && fd >= 0 && ftruncate(fd, 0) == 0 && tracker_pprof_heap(s, NULL, &buf, &len) == 0) {
        write_all(fd, (const char *)buf, len);
    } else {
        static const char msg[] = "tracker: no pprof profile written (TRACKER_OUT unset or unwritable, or out of memory)\n";
        write_all(2, msg, sizeof msg - 1);
    }
    if (fd >= 0) close(fd);
    free(buf);
    tracker_snapshot_free(s);
}

/* ---- TRACKER_RETENTION=1 (added by the retention helper) ---- */

/* Where the program's stack of the reporting thread ends: write_report's
 * report_call, which holds the program's registers (swapcontext saved
 * them). The report's own stack is not the program's. */
static TRACKER_TLS const void *retention_stack_from;

/* The retention section after a report: text under its own heading, or
 * one line of JSON {"retention": ...} after the report's object. */
static void write_retention(int fd, const void *stack_from)
{
    int json = preload.opts.format == TRACKER_FORMAT_JSON;
    size_t len = 0;
    tracker_retention *r = tracker_retention_scan(preload.opts.system, 120.0, stack_from);
    char *text = r ? tracker_retention_format(r, preload.opts.top, json, &len) : NULL;
    tracker_retention_free(r);
    if (!json) {
        char head[96];
        int hn = snprintf(head, sizeof head, "== retention (pid %ld) ==\n", (long)getpid());
        write_all(fd, head, (size_t)hn);
    } else {
        write_all(fd, "{\"retention\":", strlen("{\"retention\":"));
        while (text && len && text[len - 1] == '\n') len--;
    }
    const char *none = json ? "null" : "tracker: out of memory in the retention scan\n";
    if (text) write_all(fd, text, len);
    else write_all(fd, none, strlen(none));
    if (json) write_all(fd, "}\n", 2);
    free(text);
}

/* Write one report: on demand, the difference since the previous one (this
 * one becomes the next baseline); at exit, absolute. errno is left as it was. */
static void write_report_here(const char *why, tracker_baseline_mode mode)
{
    int saved = errno, cancel;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel); /* open, write: never die holding a lock of ours */
    int g = tracker_internal_enter();
    if (preload.pprof) {
        write_pprof();
        tracker_symbolize_release();
        tracker_internal_leave(g);
        pthread_setcancelstate(cancel, NULL);
        errno = saved;
        return;
    }
    size_t len = 0;
    int no = 0;
    char *text = tracker_baseline_report(&preload.base, mode, &preload.opts, &len, &no);
    char path[PATH_MAX];
    int fd = open_out(path, sizeof path);
    if (fd < 0) {
        char msg[PATH_MAX + 128];
        int n = snprintf(msg, sizeof msg, "tracker: cannot open %s: %s (report of pid %ld lost)\n", path,
                         strerror(errno), (long)getpid());
        if (!preload.launched) write_all(2, msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0);
    } else {
        char head[160];
        int hn = snprintf(head, sizeof head, "== tracker report %d (pid %ld, %s) ==\n", no, (long)getpid(), why);
        if (text && preload.opts.format != TRACKER_FORMAT_JSON) write_all(fd, head, (size_t)hn);
        if (text) write_all(fd, text, len);
        if (text && preload.retention) write_retention(fd, retention_stack_from);
        if (!text) {
            static const char oom[] = "tracker: out of memory while making the report\n";
            write_all(fd, oom, sizeof oom - 1);
        }
        if (fd != 2) close(fd);
    }
    free(text);
    tracker_symbolize_release(); /* libdw's fds are not left open in the program */
    tracker_internal_leave(g);
    pthread_setcancelstate(cancel, NULL);
    errno = saved;
}

/* A report needs ~200 KiB of stack (libdw's line tables, the formats'
 * buffers): more than a small thread stack or a 16 KiB sigaltstack has.
 * So it runs on a stack of its own, mapped for it and unmapped after; the
 * program's stack gives only swapcontext's frame. Without that mapping
 * (ulimit -v, no memory), the report is skipped and a line says why. */
#define REPORT_STACK (1u << 20)

typedef struct report_call {
    const char *why;
    tracker_baseline_mode mode;
    ucontext_t back, run;
} report_call;

/* makecontext passes ints: the call's address in two halves. */
static void report_trampoline(unsigned lo, unsigned hi)
{
    report_call *c = (report_call *)(((uintptr_t)hi << 32) | lo);
    write_report_here(c->why, c->mode);
}

static void write_report(const char *why, tracker_baseline_mode mode)
{
    int saved = errno;
    report_call c = { .why = why, .mode = mode };
    void *stack = mmap(NULL, REPORT_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                       -1, 0);
    if (stack == MAP_FAILED || getcontext(&c.run) != 0) {
        if (stack != MAP_FAILED) munmap(stack, REPORT_STACK);
        char line[96];
        snprintf(line, sizeof line, " report skipped (%s): no memory for its stack", why);
        note(line);
        errno = saved;
        return;
    }
    c.run.uc_stack.ss_sp = stack;
    c.run.uc_stack.ss_size = REPORT_STACK;
    c.run.uc_link = &c.back;
    uintptr_t a = (uintptr_t)&c;
    makecontext(&c.run, (void (*)(void))report_trampoline, 2, (unsigned)(a & 0xffffffffu), (unsigned)(a >> 32));
    retention_stack_from = &c; /* TRACKER_RETENTION: the program's stack, from here up */
    swapcontext(&c.back, &c.run);
    munmap(stack, REPORT_STACK);
    errno = saved;
}

/* ------------------------------------------------------------------ */
/* The on-demand signal's own account (issue 28, wrappers helper): how   */
/* many reports were asked for and written, and whether the program put  */
/* a handler of its own on our signal (then its reports are lost: a real */
/* MQTT broker handles SIGUSR2 itself). Said in "== tracker: pid N       */
/* signal ..." lines of the report file, which bin/leak-report reads.   */
/* ------------------------------------------------------------------ */

static void on_signal(int signo);
static atomic_uint signal_requested; /* our handler ran */
static atomic_uint signal_written;   /* on-demand reports written */
static atomic_int signal_taken_said; /* the "taken" line is written once */

static pid_t signal_counted_pid;    /* the process the counts are of */

/* A forked child starts its own counts (preload.pid is its own by then). */
static void signal_same_process(void)
{
    if (signal_counted_pid == preload.pid) return;
    atomic_store(&signal_requested, 0);
    atomic_store(&signal_written, 0);
    atomic_store(&signal_taken_said, 0);
    signal_counted_pid = preload.pid;
}

static void signal_count_request(void) /* lock-free: signal-safe */
{
    signal_same_process();
    atomic_fetch_add(&signal_requested, 1);
}

static void signal_count_written(void)
{
    signal_same_process();
    atomic_fetch_add(&signal_written, 1);
}

/* Called at each on-demand report and at exit: one line when the action of
 * our signal is no longer our handler; at exit, the counts. */
static void signal_account(int at_exit)
{
    if (!preload.signo) return;
    signal_same_process();
    struct sigaction cur;
    char what[192];
    int taken = sigaction(preload.signo, NULL, &cur) == 0 && cur.sa_handler != on_signal;
    if (taken && !atomic_exchange(&signal_taken_said, 1)) {
        snprintf(what, sizeof what, " signal %d: taken by the program (%s): on-demand reports are lost",
                 preload.signo, cur.sa_handler == SIG_DFL ? "default action" : cur.sa_handler == SIG_IGN ? "ignored"
                                                                                                          : "its own handler");
        note(what);
    }
    if (at_exit) {
        snprintf(what, sizeof what, " signal %d: %u requested, %u written", preload.signo,
                 atomic_load(&signal_requested), atomic_load(&signal_written));
        note(what);
    }
}

/* ------------------------------------------------------------------ */
/* On-demand reports: a flag, written by the next hook                  */
/* ------------------------------------------------------------------ */

static void on_signal(int signo)
{
    (void)signo;
    int saved = errno;
    signal_count_request();
    atomic_store(&tracker_hooks_pending, 1); /* lock-free: async-signal-safe */
    if (preload.thread) sem_post(&preload.wake);        /* async-signal-safe too */
    errno = saved;
}

/* hooks.c calls this when tracker_hooks_pending is set, on a thread that
 * holds the recursion guard and has just finished an allocation call. */
static void run_pending(void)
{
    if (atomic_load(&preload.sandboxed)) return;
    if (getpid() != preload.pid) return; /* a vfork child shares our memory: not here */
    if (atomic_exchange(&tracker_hooks_pending, 0)) {
        write_report("on demand", TRACKER_BASELINE_DIFF);
        signal_count_written();
        signal_account(0);
    }
}

/* TRACKER_SIGNAL_THREAD=1: reports at once even in an idle program, from
 * a thread that blocks every signal (none is ever delivered to it) and
 * waits on a semaphore (no fd). The cost: one thread, as gdb shows it, and
 * glibc's single-thread fast paths are off. Not restarted in a forked
 * child, which falls back to the hooks. */
static void *reporter(void *arg)
{
    (void)arg;
    tracker_internal_enter(); /* this thread's own allocations are the tracker's */
    for (;;) {
        if (sem_wait(&preload.wake) != 0) continue; /* EINTR cannot happen: all signals blocked */
        if (atomic_exchange(&tracker_hooks_pending, 0)) {
            write_report("on demand", TRACKER_BASELINE_DIFF);
            signal_count_written();
            signal_account(0);
        }
    }
    return NULL;
}

static void start_reporter(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_t tid;
    if (sem_init(&preload.wake, 0, 0) != 0 || pthread_attr_init(&attr) != 0) return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits: every signal blocked */
    if (pthread_create(&tid, &attr, reporter, NULL) == 0) preload.thread = 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

/* Parse "USR2", "SIGUSR2", "12", "RTMIN+3". Returns the number, 0 for
 * "" / "0" / unset, -1 when not a signal we can use. */
static int parse_signal(const char *s)
{
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*end) return v >= 0 && v <= SIGRTMAX && v != SIGKILL && v != SIGSTOP ? (int)v : -1;
    if (strncmp(s, "SIG", 3) == 0) s += 3;
    static const struct { const char *name; int no; } names[] = {
        { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
        { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CONT", SIGCONT }, { "TTIN", SIGTTIN },
        { "TTOU", SIGTTOU }, { "URG", SIGURG }, { "WINCH", SIGWINCH }, { "PROF", SIGPROF }, { "PWR", SIGPWR },
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(s, names[i].name) == 0) return names[i].no;
    if (strncmp(s, "RTMIN+", 6) == 0) {
        v = strtol(s + 6, &end, 10);
        if (!*end && v >= 0 && SIGRTMIN + v <= SIGRTMAX) return SIGRTMIN + (int)v;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Exit paths                                                           */
/* ------------------------------------------------------------------ */

/* The at-exit report, once. Refused (with a line in the report file)
 * where making it could hang or corrupt the program: inside the tracker or
 * an allocation on this thread (a signal handler that interrupted malloc
 * and calls _exit), or in a vfork child (it shares its parent's memory). */
static void exit_report(const char *why)
{
    if (atomic_load(&preload.sandboxed)) return; /* a report opens files: the filter may kill the program for it */
    if (getpid() != preload.pid) return; /* vfork child: no note either (nothing of the parent may change) */
    if (atomic_exchange(&preload.exit_done, 1)) return;
    int g = tracker_guard_enter();
    if (!g) {
        note(" ended inside an allocation (_exit from a signal handler?): no report");
        return;
    }
    tracker_internal_enter(); /* the report's memory is the tracker's; tracker_guard_leave below ends it */
    /* An on-demand report asked for, but no allocation since: write it now. */
    if (preload.signo && atomic_exchange(&tracker_hooks_pending, 0)) {
        write_report("on demand, written at exit: no allocation since it was asked", TRACKER_BASELINE_DIFF);
        signal_count_written();
    }
    signal_account(1);
    write_report(why, TRACKER_BASELINE_ABSOLUTE);
    tracker_guard_leave();
}

/* _exit and _Exit are interposed so that a program leaving through them
 * (dash, the child of a fork) still has its report; exit() reaches glibc's
 * _exit internally, not through here. Then the same system call as glibc. */
__attribute__((noreturn)) static void real_exit(int status)
{
    for (;;) syscall(SYS_exit_group, status);
}

__attribute__((visibility("default"))) void _exit(int status)
{
    exit_report("at _exit: still live");
    real_exit(status);
}

__attribute__((visibility("default"))) void _Exit(int status)
{
    exit_report("at _Exit: still live");
    real_exit(status);
}

/* prctl is interposed only to notice PR_SET_SECCOMP: after it, a report
 * (which opens the report file and the modules' debug information) could
 * make the filter kill the program, so none is written, and
 * bin/leak-report says the process ended without one. The same system
 * call as glibc's wrapper, which also reads four arguments. A filter set
 * with syscall(SYS_seccomp) is not seen. */
__attribute__((visibility("default"))) int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_SECCOMP) {
        /* Before the call: once the filter is in, a line may be forbidden. */
        note(" installs a seccomp filter: no report from here on");
        atomic_store(&preload.sandboxed, 1);
    }
    return (int)syscall(SYS_prctl, option, a2, a3, a4, a5);
}

/* A root process that drops its privileges (memcached -u, nginx's and
 * lighttpd's workers, any setuid after start) or chroots could no longer
 * reach its report file: the folder's parents may be closed to the new
 * user (a 0700 home or mktemp -d), or outside the jail. So just before
 * such a call the file is opened and kept, close-on-exec, at fd 512 or
 * above (the program's own numbering is untouched); reports then go
 * through it. Only processes that make these calls as root keep an fd.
 * The calls themselves are glibc's, unchanged. */
static void keep_report_fd(void)
{
    if (!preload.out[0] || geteuid() != 0 || (preload.keep_fd >= 0 && preload.keep_pid == getpid())) return;
    char path[PATH_MAX];
    int saved = errno, fd = open_out(path, sizeof path);
    if (fd >= 0) {
        int hi = fcntl(fd, F_DUPFD_CLOEXEC, 512);
        close(fd);
        if (hi >= 0) {
            preload.keep_fd = hi;
            preload.keep_pid = getpid();
        }
    }
    errno = saved;
}

/* The next definition of name (glibc's), looked up once. */
static void *next_fn(void *_Atomic *slot, const char *name)
{
    void *f = atomic_load_explicit(slot, memory_order_acquire);
    if (!f) {
        int g = tracker_guard_enter();
        f = dlsym(RTLD_NEXT, name);
        if (g) tracker_guard_leave();
        atomic_store_explicit(slot, f, memory_order_release);
    }
    return f;
}

#define KEEP_BEFORE(ret, name, params, args)                                              \
    __attribute__((visibility("default"))) ret name params                               \
    {                                                                                     \
        static void *_Atomic next_##name;                                                 \
        ret (*f) params = (ret (*) params)next_fn(&next_##name, #name);                   \
        if (!f) { errno = ENOSYS; return -1; }                                            \
        keep_report_fd();                                                                 \
        return f args;                                                                    \
    }
KEEP_BEFORE(int, setuid, (uid_t u), (u))
KEEP_BEFORE(int, seteuid, (uid_t u), (u))
KEEP_BEFORE(int, setreuid, (uid_t r, uid_t e), (r, e))
KEEP_BEFORE(int, setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
KEEP_BEFORE(int, setgid, (gid_t g), (g))
KEEP_BEFORE(int, setegid, (gid_t g), (g))
KEEP_BEFORE(int, setregid, (gid_t r, gid_t e), (r, e))
KEEP_BEFORE(int, setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
KEEP_BEFORE(int, chroot, (const char *dir), (dir))

/* TRACKER_FATAL=1 (opt-in, bin/leak-report -f): a report when a fatal
 * signal ends the process. Installed only for the signals whose action is
 * the default at load (an ignored or already handled one is left alone);
 * the handler resets itself, writes the report (refused as above when the
 * signal interrupted an allocation), and raises the signal again, so the
 * process ends exactly as it would have (same status, same core dump). A
 * handler of the program's own installed later simply replaces ours. Off
 * by default: it changes what sigaction() reports, and a report from a
 * crashed process may itself fail (then the second fault ends it). */
static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM, SIGINT, SIGHUP, SIGQUIT };

static void on_fatal(int signo)
{
    char why[64] = "at signal ";
    size_t n = strlen(why);
    const char *name = sigabbrev_np(signo);
    if (name) {
        memcpy(why + n, "SIG", 3);
        n += 3;
        size_t l = strnlen(name, 16);
        memcpy(why + n, name, l);
        n += l;
    } else {
        n += fmt_long(why + n, signo);
    }
    memcpy(why + n, ": still live", 13);
    exit_report(why);
    raise(signo); /* SA_RESETHAND: the default action now, at once (SA_NODEFER) */
}

static void install_fatal(void)
{
    for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++) {
        struct sigaction old, sa;
        if (sigaction(fatal_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal;
        sa.sa_flags = SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(fatal_signals[i], &sa, NULL);
    }
}

__attribute__((destructor)) static void preload_fini(void)
{
    exit_report("at exit: still live");
}

/* ------------------------------------------------------------------ */
/* Start-up                                                             */
/* ------------------------------------------------------------------ */

static int env_int(const char *name, int def, int lo, int hi)
{
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "tracker: ignoring %s=%s (want %d..%d), using %d\n", name, s, lo, hi, def);
        return def;
    }
    return (int)v;
}

/* TRACKER_OUT, made absolute now: the program may chdir later. */
static void set_out(const char *tmpl)
{
    size_t o = 0;
    if (tmpl[0] != '/') {
        if (!getcwd(preload.out, sizeof preload.out - 1)) {
            fprintf(stderr, "tracker: cannot resolve TRACKER_OUT=%s (getcwd: %s): reports go to stderr\n",
                    tmpl, strerror(errno));
            preload.out[0] = '\0';
            return;
        }
        o = strlen(preload.out);
        preload.out[o++] = '/';
    }
    if (o + strlen(tmpl) >= sizeof preload.out - 24) {
        fprintf(stderr, "tracker: TRACKER_OUT too long: reports go to stderr\n");
        preload.out[0] = '\0';
        return;
    }
    strcpy(preload.out + o, tmpl);
}

/* A forked child: its own pid, no on-demand report inherited, a line. */
static void preload_atfork_child(void)
{
    if (preload.keep_fd >= 0) { /* the parent's file: not this process's */
        close(preload.keep_fd);
        preload.keep_fd = -1;
    }
    preload.pid = getpid();
    preload.thread = 0; /* not in the child */
    atomic_store(&preload.exit_done, 0); /* its own exit report, even if forked from an atexit handler */
    atomic_store(&tracker_hooks_pending, 0);
    note(" forked");
}

__attribute__((constructor(200))) static void preload_init(void)
{
    if (!tracker_hooks_interposed()) { /* dlopen'ed: no malloc of the program reaches us */
        atomic_store(&preload.exit_done, 1);
        return;
    }
    int g = tracker_internal_enter();
    int saved = errno;
    tracker_init();
    preload.pid = getpid();
    preload.launched = env_int("TRACKER_LAUNCHER", 0, 0, 1);
    const char *out = getenv("TRACKER_OUT");
    if (out && *out) set_out(out);
    preload.opts.top = env_int("TRACKER_TOP", 10, 1, 10000);
    preload.opts.frames = env_int("TRACKER_FRAMES", 8, 1, TRACKER_MAX_FRAMES);
    const char *key = getenv("TRACKER_KEY");
    if (key && *key && tracker_key_parse(key, &preload.opts.key) != 0)
        fprintf(stderr, "tracker: ignoring TRACKER_KEY=%s (want lineno, traceback or filename)\n", key);
    const char *sys = getenv("TRACKER_SYSTEM");
    if (sys && tracker_system_check(sys) != 0)
        fprintf(stderr, "tracker: ignoring TRACKER_SYSTEM (more than 32 prefixes or 1 KiB), using the default\n");
    const char *fmt = getenv("TRACKER_FORMAT");
    preload.opts.format = fmt && strcmp(fmt, "json") == 0 ? TRACKER_FORMAT_JSON : TRACKER_FORMAT_TEXT;
    preload.pprof = fmt && strcmp(fmt, "pprof") == 0;
    preload.signo = parse_signal(getenv("TRACKER_SIGNAL"));
    if (preload.signo < 0) {
        fprintf(stderr, "tracker: ignoring TRACKER_SIGNAL=%s (want a signal name or number, e.g. USR2)\n",
                getenv("TRACKER_SIGNAL"));
        preload.signo = 0;
    }
    if (env_int("TRACKER_FATAL", 0, 0, 1)) install_fatal();
    preload.retention = env_int("TRACKER_RETENTION", 0, 0, 1);
    pthread_atfork(NULL, NULL, preload_atfork_child);
    note(" started");
    const char *mode = tracker_hooks_mode();
    if (mode) {
        char line[320];
        snprintf(line, sizeof line, " allocator: %s", mode);
        if (preload.out[0]) note(line);
        else fprintf(stderr, "tracker: pid %ld%s\n", (long)getpid(), line);
    }
    if (preload.signo) {
        tracker_hooks_deferred = run_pending;
        if (env_int("TRACKER_SIGNAL_THREAD", 0, 0, 1)) start_reporter();
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(preload.signo, &sa, NULL);
    }
    errno = saved;
    tracker_internal_leave(g);
}
