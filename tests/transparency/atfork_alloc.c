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

const char *atfork_lib_state(void);

static atomic_int stop;

static void *busy(void *arg)
{
    (void)arg;
    void *keep[32] = { 0 };
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        free(keep[i % 32]);
        keep[i % 32] = malloc(8 + i % 300);
    }
    for (int i = 0; i < 32; i++) free(keep[i]);
    return NULL;
}

/* waitpid with a deadline: a child still running after 10 s is hung. */
static int reap(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int main(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, busy, NULL);
    int ok = 0, hung = 0, n = 40;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char *s = malloc(100);
            int good = s && atfork_lib_state()[0] == 'c';
            free(s);
            exit(good ? 0 : 1);
        }
        int r = reap(pid);
        ok += r == 1;
        hung += r < 0;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("forks=%d ok=%d hung=%d parent=%s\n", n, ok, hung, atfork_lib_state());
    return hung ? 1 : 0;
}
