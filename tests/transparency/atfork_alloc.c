/* atfork_alloc.c - forks from a threaded program that links a library whose atfork child handler
 * allocates (tests/transparency/atfork_lib.c): every child must run and exit. */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tp.h"

const char *atfork_lib_state(void);

static atomic_int stop;


int main(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, tp_busy, &stop);
    int ok = 0, hung = 0, n = 40;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char *s = malloc(100);
            int good = s && atfork_lib_state()[0] == 'c';
            free(s);
            exit(good ? 0 : 1);
        }
        int r = tp_reap(pid);
        ok += r == 1;
        hung += r < 0;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("forks=%d ok=%d hung=%d parent=%s\n", n, ok, hung, atfork_lib_state());
    return hung ? 1 : 0;
}
