/* preload.c - LD_PRELOAD glue: writes tracker reports of any program at exit and when signalled. */

#include "tracker.h"
#include "tracker_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Usage:
 *   LD_PRELOAD=bin/libtracker.so TRACKER_OUT=leaks.%p.txt ./program
 *   kill -USR2 <pid>     # a report now: differences since the last one
 *
 * Environment (all optional):
 *   TRACKER_OUT     file to append reports to; %p becomes the pid.
 *                   Default: standard error.
 *   TRACKER_TOP     groups per report (default 10)
 *   TRACKER_FRAMES  frames shown per group (default 8)
 *   TRACKER_KEY     lineno | traceback | filename (default lineno)
 *   TRACKER_FORMAT  text | json (default text)
 *   TRACKER_SIGNAL  signal number for on-demand reports (default SIGUSR2;
 *                   0 disables it and no helper thread is started)
 *   TRACKER_UNWIND  fp (default): frame-pointer walk, a few ns per malloc;
 *                   dwarf: glibc backtrace(), ~1 us per malloc, but full
 *                   stacks through code built without frame pointers
 *   TRACKER_DEBUGINFO  system: also read separate debug files (libc6-dbg,
 *                   /usr/lib/debug) so system libraries show file:line;
 *                   default: only DWARF inside each module
 *   TRACKER_OFF     set: load but record nothing
 *
 * At exit the report lists what is still live: absolute, not a diff,
 * since everything live at exit is either a leak or a long-lived object.
 * The on-demand report runs on a helper thread woken through a pipe by
 * the signal handler (the handler itself only calls write(), which is
 * async-signal-safe; building a report allocates and takes locks).
 */

static struct {
    char path[4096];          /* report file, "" = stderr */
    tracker_report_opts opts; /* from the environment */
    int pipe_fd[2];           /* signal handler -> reporter thread */
    int signo;                /* 0 = no on-demand reports */
    tracker_baseline base;    /* last on-demand snapshot, for diffs; report count */
} preload = { .pipe_fd = { -1, -1 }, .base = TRACKER_BASELINE_INIT };

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

/* Expand %p in TRACKER_OUT. */
static void set_path(const char *tmpl)
{
    size_t o = 0;
    for (const char *s = tmpl; *s && o + 24 < sizeof preload.path; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            o += (size_t)snprintf(preload.path + o, sizeof preload.path - o, "%ld", (long)getpid());
            s++;
        } else {
            preload.path[o++] = *s;
        }
    }
    preload.path[o] = '\0';
}

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

/* Write one report: on demand, the difference since the previous one (this
 * one becomes the next baseline); at exit, absolute. */
static void write_report(const char *why, tracker_baseline_mode mode)
{
    size_t len = 0;
    int no = 0;
    char *text = tracker_baseline_report(&preload.base, mode, &preload.opts, &len, &no);
    int fd = 2;
    if (preload.path[0]) fd = open(preload.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "tracker: cannot open %s: %s\n", preload.path, strerror(errno));
    } else {
        char head[160];
        int hn = snprintf(head, sizeof head, "== tracker report %d (pid %ld, %s) ==\n",
                          no, (long)getpid(), why);
        if (text && preload.opts.format != TRACKER_FORMAT_JSON) write_all(fd, head, (size_t)hn);
        if (text) write_all(fd, text, len);
        else {
            static const char oom[] = "tracker: out of memory while making the report\n";
            write_all(fd, oom, sizeof oom - 1);
        }
        if (fd != 2) close(fd);
    }
    free(text);
}

static void on_signal(int signo)
{
    (void)signo;
    int saved = errno;
    char c = 1;
    ssize_t w = write(preload.pipe_fd[1], &c, 1); /* full pipe: a report is pending anyway */
    (void)w;
    errno = saved;
}

static void *reporter(void *arg)
{
    (void)arg;
    tracker_guard_enter(); /* this thread's own allocations are the tracker's */
    for (;;) {
        char c;
        ssize_t r = read(preload.pipe_fd[0], &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return NULL;
        write_report("on demand", TRACKER_BASELINE_DIFF);
    }
}

__attribute__((constructor(200))) static void preload_init(void)
{
    int g = tracker_guard_enter();
    tracker_init();
    const char *out = getenv("TRACKER_OUT");
    if (out && *out) set_path(out);
    preload.opts.top = env_int("TRACKER_TOP", 10, 1, 10000);
    preload.opts.frames = env_int("TRACKER_FRAMES", 8, 1, TRACKER_MAX_FRAMES);
    const char *key = getenv("TRACKER_KEY");
    if (key && *key && tracker_key_parse(key, &preload.opts.key) != 0)
        fprintf(stderr, "tracker: ignoring TRACKER_KEY=%s (want lineno, traceback or filename)\n", key);
    const char *fmt = getenv("TRACKER_FORMAT");
    preload.opts.format = fmt && strcmp(fmt, "json") == 0 ? TRACKER_FORMAT_JSON : TRACKER_FORMAT_TEXT;
    preload.signo = env_int("TRACKER_SIGNAL", SIGUSR2, 0, SIGRTMAX);

    if (preload.signo && pipe2(preload.pipe_fd, O_CLOEXEC | O_NONBLOCK) == 0) {
        fcntl(preload.pipe_fd[0], F_SETFL, 0); /* the reader blocks; the writer never does */
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (pthread_create(&tid, &attr, reporter, NULL) == 0) sigaction(preload.signo, &sa, NULL);
        pthread_attr_destroy(&attr);
    }
    if (g) tracker_guard_leave();
}

__attribute__((destructor)) static void preload_fini(void)
{
    int g = tracker_guard_enter();
    write_report("at exit: still live", TRACKER_BASELINE_ABSOLUTE);
    if (g) tracker_guard_leave();
}
