/* cancel_fork.c - threads cancelled while they allocate (deferred cancellation, as thread pools
 * shut down), then fork: the child must be able to allocate and exit. Each round's thread makes
 * its first allocations from a copy of the plugin never loaded before, so a tracker loading that
 * module's unwind tables would do it inside the cancelled thread's malloc. */

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tp.h"

typedef unsigned (*work_fn)(unsigned);

static void *worker(void *arg)
{
    work_fn work = (work_fn)arg;
    for (;;) {
        work(50);
        pthread_testcancel(); /* the only cancellation point of the loop, without a tracker */
    }
    return NULL;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out)) ok = 0;
    return ok;
}


int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: cancel_fork PLUGIN.so TMPDIR\n"); return 2; }
    int rounds = 24, ok = 0, hung = 0, cancelled = 0;
    for (int r = 0; r < rounds; r++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/plugin%d.so", argv[2], r);
        if (!copy_file(argv[1], path)) { printf("copy to %s failed\n", path); return 1; }
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        work_fn work = h ? (work_fn)dlsym(h, "plugin_work") : NULL;
        if (!work) { printf("dlopen failed\n"); return 1; }
        pthread_t t;
        pthread_create(&t, NULL, worker, (void *)work);
        if (r % 2) { struct timespec ts = { 0, 200 * 1000 }; nanosleep(&ts, NULL); }
        pthread_cancel(t);
        void *res;
        pthread_join(t, &res);
        cancelled += res == PTHREAD_CANCELED;
        pid_t pid = fork();
        if (pid == 0) {
            char *p = strdup("child");
            free(p);
            exit(0);
        }
        int k = tp_reap(pid);
        ok += k == 1;
        hung += k < 0;
        unlink(path);
    }
    printf("rounds=%d cancelled=%d children ok=%d hung=%d\n", rounds, cancelled, ok, hung);
    return hung ? 1 : 0;
}
