/* leaks_c.c - a battery of C leak shapes through libc, one per function, each call marked "LEAK: name" (tests/test_stacks.sh). */

#define _GNU_SOURCE
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Each leak_* function loses what one libc call allocates, on the line
 * marked with its shape's name. The test finds the line by the marker and
 * checks that the tracker and valgrind both name it. noinline keeps each
 * shape a frame of its own; touch() keeps the result used (so the
 * compiler neither drops the call nor turns it into a tail call) without
 * keeping a pointer to it: the memory is definitely lost.
 */

#define SHAPE __attribute__((noinline))

static volatile char sink;

SHAPE static void touch(const void *p)
{
    if (p) sink = *(const volatile char *)p;
}

SHAPE static void leak_strdup(void)
{
    char *s = strdup("a string that is never freed"); /* LEAK: strdup */
    touch(s);
}

SHAPE static void leak_strndup(void)
{
    char *s = strndup("a string that is cut and never freed", 12); /* LEAK: strndup */
    touch(s);
}

SHAPE static void leak_asprintf(void)
{
    char *s = NULL;
    if (asprintf(&s, "%s %d", "number", 42) < 0) return; /* LEAK: asprintf */
    touch(s);
}

SHAPE static void leak_getline(void)
{
    static char text[] = "first line\nsecond line\n";
    FILE *fp = fmemopen(text, sizeof text - 1, "r");
    char *line = NULL;
    size_t cap = 0;
    if (!fp) return;
    if (getline(&line, &cap, fp) < 0) line = NULL; /* LEAK: getline */
    fclose(fp);
    touch(line);
}

SHAPE static void leak_regcomp(void)
{
    regex_t re;
    if (regcomp(&re, "^[a-z]+([0-9]{2,4})?$", REG_EXTENDED) != 0) return; /* LEAK: regcomp */
    touch(&re);
}

SHAPE static void leak_fopen(void)
{
    FILE *fp = fopen("/dev/null", "r"); /* LEAK: fopen */
    touch(fp);
}

SHAPE static void leak_open_memstream(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len); /* LEAK: open_memstream */
    touch(fp);
}

SHAPE static void leak_scandir(void)
{
    struct dirent **list = NULL;
    int n = scandir("/", &list, NULL, alphasort); /* LEAK: scandir */
    if (n > 0) touch(list[0]);
}

SHAPE static void leak_realpath(void)
{
    char *p = realpath("/usr/bin/../lib", NULL); /* LEAK: realpath */
    touch(p);
}

int main(void)
{
    leak_strdup();
    leak_strndup();
    leak_asprintf();
    leak_getline();
    leak_regcomp();
    leak_fopen();
    leak_open_memstream();
    leak_scandir();
    leak_realpath();
    return 0;
}
