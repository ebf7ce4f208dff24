/* daemonize.c - a fork storm from a threaded parent, each child daemonizing the classic way
 * (fork, setsid, fork again, the middle one _exits) and the grandchild allocating and exiting. */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tp.h"

static atomic_int stop;


static __attribute__((noinline)) void grandchild(int fd)
{
    char *p = malloc(123);
    snprintf(p, 123, "x");
    char c = 'k';
    if (write(fd, &c, 1) != 1) _exit(1);
    exit(0);
}

int main(void)
{
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, tp_busy, &stop);
    int n = 150, ok = 0, fds[2];
    if (pipe(fds)) return 1;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            setsid();
            if (fork() == 0) grandchild(fds[1]);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    close(fds[1]);
    /* every grandchild writes one byte; the pipe ends when the last exits
     * (a hung one keeps it open: bounded by the caller's timeout) */
    int got = 0;
    char buf[64];
    ssize_t r;
    while ((r = read(fds[0], buf, sizeof buf)) > 0) got += (int)r;
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("forks=%d children ok=%d grandchildren done=%d\n", n, ok, got);
    return 0;
}
