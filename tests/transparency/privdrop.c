/* privdrop.c - what daemons do to themselves after start-up: "setuid" drops root to nobody (as
 * memcached -u, nginx and lighttpd workers), "chroot" enters an empty directory (as bind, vsftpd,
 * postfix), "closefrom" closes every descriptor (as daemon(3) users and sshd do). Each then
 * allocates from new call stacks and exits normally. */

#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static __attribute__((noinline)) unsigned after(void)
{
    unsigned sum = 0;
    for (int i = 0; i < 500; i++) {
        char *p = malloc(32 + (size_t)i);
        if (!p) return 0;
        snprintf(p, 32, "after %d", i);
        sum += (unsigned)strlen(p);
        if (i % 3) free(p); /* some kept, for the report to show */
    }
    return sum;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "setuid";
    char *before = strdup("allocated before");
    if (strcmp(mode, "setuid") == 0) {
        if (geteuid() != 0) { printf("not root\n"); return 0; }
        if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) { perror("drop"); return 1; }
        printf("uid %d gid %d, sum %u\n", (int)getuid(), (int)getgid(), after());
    } else if (strcmp(mode, "chroot") == 0) {
        if (argc < 3) return 2;
        if (geteuid() != 0) { printf("not root\n"); return 0; }
        if (chroot(argv[2]) || chdir("/")) { perror("chroot"); return 1; }
        printf("in chroot, sum %u\n", after());
    } else {
        printf("closing every fd\n");
        fflush(stdout);
        closefrom(0);
        if (after() == 0) return 1;
    }
    free(before);
    return 0;
}
