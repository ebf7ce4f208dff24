/* tp.h - what several of the transparency programs share: a thread that allocates until told to
 * stop (a busy parent for fork tests) and a bounded wait for a child. */
#ifndef TP_H
#define TP_H

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

/* pthread start routine: malloc/free of varied sizes until *(atomic_int *)stop. */
__attribute__((unused)) static void *tp_busy(void *stop)
{
    void *keep[32] = { 0 };
    for (unsigned i = 0; !atomic_load((atomic_int *)stop); i++) {
        free(keep[i % 32]);
        keep[i % 32] = malloc(8 + i % 1000);
    }
    for (int i = 0; i < 32; i++) free(keep[i]);
    return NULL;
}

/* Wait up to 10 s for child PID: 1 if it exited 0, 0 if it ended otherwise,
 * -1 if it was still running (hung: then killed and reaped). */
__attribute__((unused)) static int tp_reap(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

#endif
