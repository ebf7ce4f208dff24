/* spawn.c - the ways programs start others: "vfork" (vfork + exec, and a failed exec's _exit in
 * the child, as shells and make do), "spawn" (posix_spawn with file actions), "popen". */

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int status_of(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "vfork";
    static char *keep; /* static: vfork's child shares this frame */
    keep = strdup("parent's block");
    if (strcmp(mode, "vfork") == 0) {
        for (int i = 0; i < 50; i++) {
            pid_t pid = vfork();
            if (pid == 0) {
                if (i % 2) execl("/nonexistent/program", "x", (char *)NULL);
                else execl("/bin/true", "true", (char *)NULL);
                _exit(127);
            }
            int st = status_of(pid);
            if (i < 2) printf("vfork child %d: status %d\n", i, st);
        }
        fflush(stdout); /* before the child: its echo and our buffered lines would race for fd 1 */
        pid_t pid = vfork();
        if (pid == 0) { execl("/bin/echo", "echo", "echo after vfork", (char *)NULL); _exit(127); }
        printf("echo: status %d\n", status_of(pid));
    } else if (strcmp(mode, "spawn") == 0) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, 1, 2); /* the child's stderr is our stdout */
        posix_spawn_file_actions_addclose(&fa, 0);
        char *args[] = { "sh", "-c", "echo spawned >&2; exit 3", NULL };
        fflush(stdout);
        for (int i = 0; i < 20; i++) {
            pid_t pid;
            int rc = posix_spawnp(&pid, "sh", &fa, NULL, args, environ);
            if (rc) { printf("posix_spawnp: %s\n", strerror(rc)); return 1; }
            int st = status_of(pid);
            if (i == 0) printf("spawned: status %d\n", st);
            fflush(stdout);
        }
        posix_spawn_file_actions_destroy(&fa);
    } else {
        FILE *w = popen("sort -n | tail -n 2", "w");
        for (int i = 0; i < 5000; i++) fprintf(w, "%d\n", (i * 7919) % 5000);
        fflush(stdout);
        printf("pclose: %d\n", pclose(w) >> 8);
        FILE *r = popen("echo from popen; exit 4", "r");
        char line[100] = "";
        if (!fgets(line, sizeof line, r)) line[0] = 0;
        printf("read: %s", line);
        printf("pclose: %d\n", pclose(r) >> 8);
    }
    free(keep);
    return 0;
}
