/* fd_probe.c - prints the fd numbers a program gets, and checks that a data file stays untouched by an on-demand report. */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* usage: fd_probe first          print the fd of the first open() and the open fd count
 *        fd_probe report         the same after an on-demand report (SIGUSR2, allocation)
 *        fd_probe closeall FILE  close fds 3..1023 (a daemon), open FILE, ask for a
 *                                report, print FILE's size (0: nothing written into it)
 * The report is asked for only when TRACKER_SIGNAL is set (else SIGUSR2 would kill us). */

char *fd_probe_kept; /* live at the report: it names this file, so the symbolizer opens modules */

static void ask_report(void)
{
    if (!getenv("TRACKER_SIGNAL")) return;
    fd_probe_kept = malloc(40);
    kill(getpid(), SIGUSR2);
    free(malloc(32)); /* the preload writes the report at the next allocation */
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) n += fcntl(fd, F_GETFD) != -1;
    return n;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "closeall") == 0 && argc == 3) {
        for (int fd = 3; fd < 1024; fd++) close(fd);
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) { perror(argv[2]); return 1; }
        ask_report();
        struct stat st;
        fstat(fd, &st);
        printf("data fd=%d size=%lld\n", fd, (long long)st.st_size);
        return 0;
    }
    if (argc != 2 || (strcmp(argv[1], "first") != 0 && strcmp(argv[1], "report") != 0)) {
        fprintf(stderr, "usage: %s first|report|closeall FILE\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "report") == 0) ask_report();
    int fd = open("/dev/null", O_RDONLY);
    printf("first fd=%d open fds=%d\n", fd, count_fds());
    return 0;
}
