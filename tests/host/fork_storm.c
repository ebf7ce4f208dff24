/* fork_storm.c - forks hundreds of times from a multithreaded parent while on-demand reports are being made. */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* usage: fork_storm N: 3 threads allocate, a 4th asks for a report every
 * 2 ms (SIGUSR2, only when TRACKER_SIGNAL is set), main forks N children
 * that allocate and exit(0) (the preload then writes their exit reports).
 * Each child gets 10 s to end, then is killed and counted as hung.
 * Prints "forks=N exited=E hung=H"; exit 0 when every child exited 0. */

static atomic_int stop;

static void *allocator(void *arg)
{
    (void)arg;
    void *keep[64] = { 0 };
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        free(keep[i % 64]);
        keep[i % 64] = malloc(16 + i % 512);
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    return NULL;
}

static void *asker(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 2 * 1000 * 1000 };
    while (!atomic_load(&stop)) {
        kill(getpid(), SIGUSR2);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = argc == 2 ? atoi(argv[1]) : 0;
    if (n < 1 || n > 10000) { fprintf(stderr, "usage: %s N (1..10000)\n", argv[0]); return 2; }
    pthread_t t[4];
    int nt = 0;
    for (; nt < 3; nt++) pthread_create(&t[nt], NULL, allocator, NULL);
    if (getenv("TRACKER_SIGNAL")) pthread_create(&t[nt++], NULL, asker, NULL);
    int exited = 0, hung = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            free(malloc(100));
            char *keep = malloc(200); /* live at the child's exit */
            exit(keep ? 0 : 1);
        }
        if (pid < 0) { perror("fork"); break; }
        int status = 0;
        double deadline = now() + 10;
        pid_t r;
        while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now() < deadline) usleep(500);
        if (r == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            hung++;
        } else if (r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            exited++;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nt; i++) pthread_join(t[i], NULL);
    printf("forks=%d exited=%d hung=%d\n", n, exited, hung);
    return exited == n ? 0 : 1;
}
