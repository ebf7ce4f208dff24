/* seccomp.c - a sandboxed program (as browsers' renderers, sshd's privsep child, systemd units
 * with SystemCallFilter= do): after start-up a seccomp filter kills the process on open/openat;
 * then new threads allocate from call stacks never seen. It must not be killed. */

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sandbox(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static __attribute__((noinline)) unsigned parse(unsigned n)
{
    unsigned sum = 0;
    for (unsigned i = 0; i < n; i++) {
        char *s = malloc(32 + i % 500);
        if (!s) return 0;
        snprintf(s, 32, "item %u", i);
        char *d = strdup(s);
        sum += (unsigned)strlen(d);
        free(d);
        free(s);
    }
    return sum;
}

static void *worker(void *arg)
{
    return (void *)(size_t)parse((unsigned)(size_t)arg);
}

int main(void)
{
    char *before = strdup("set up before the sandbox");
    printf("%s\n", before);
    fflush(stdout);
    if (sandbox()) { printf("seccomp: %s\n", strerror(errno)); return 1; }
    pthread_t t[4];
    unsigned long total = 0;
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)(size_t)(2000 + i));
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (size_t)r;
    }
    total += parse(100);
    free(before);
    printf("in the sandbox: 4 threads, sum %lu\n", total);
    return 0;
}
