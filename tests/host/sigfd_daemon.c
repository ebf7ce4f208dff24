/* sigfd_daemon.c - a daemon that collects SIGTERM with signalfd (the signal blocked in every thread) and shuts down cleanly. */

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* usage: sigfd_daemon: prints "ready", waits up to 20 s for SIGTERM on a
 * signalfd, prints "clean shutdown" and exits 0 (2 on timeout). A worker
 * thread allocates meanwhile. A SIGTERM delivered to any thread that does
 * not block it (a tracker's own thread) would kill it instead: exit 143. */

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) { free(malloc(100)); usleep(1000); }
    return NULL;
}

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread: all inherit it */
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0) { perror("signalfd"); return 1; }
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    printf("ready\n");
    fflush(stdout);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 20000) != 1) { fprintf(stderr, "no SIGTERM within 20 s\n"); return 2; }
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) != sizeof si) return 1;
    pthread_join(t, NULL);
    printf("clean shutdown (signal %u)\n", si.ssi_signo);
    return 0;
}
