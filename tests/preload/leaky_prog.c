/* leaky_prog.c - a small program of the tests' own that leaks at marked lines, for the preloaded tracker. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* usage: leaky_prog N [REPORT_FILE]: leaks N records and N names; with
 * REPORT_FILE, asks for an on-demand report (SIGUSR2: run it with
 * TRACKER_SIGNAL=USR2) and waits for it, allocating as it waits: the
 * preload writes an on-demand report at the program's next allocation. */

struct record { int id; char payload[200]; };

static struct record *make_record(int id)
{
    struct record *r = malloc(sizeof *r); /* LEAK-RECORD */
    r->id = id;
    memset(r->payload, 'x', sizeof r->payload);
    return r;
}

static char *make_name(int id)
{
    char buf[32];
    snprintf(buf, sizeof buf, "user%d", id);
    return strdup(buf); /* LEAK-NAME (allocated inside libc's strdup) */
}

/* 1 when file holds an on-demand report. */
static int reported(const char *file)
{
    char line[256];
    int found = 0;
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, "on demand") != NULL;
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s N [REPORT_FILE]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    for (int i = 0; i < n; i++) {
        make_record(i);
        make_name(i);
        free(malloc(64)); /* freed at once: must not show up */
    }
    if (argc > 2) {
        kill(getpid(), SIGUSR2);
        for (int i = 0; i < 100 && !reported(argv[2]); i++) { /* at most 5 s */
            free(malloc(64));
            struct timespec ts = { 0, 50 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        struct timespec settle = { 0, 200 * 1000 * 1000 };
        nanosleep(&settle, NULL);
    }
    return 0;
}
