/* dlopen_cycles.c - loads, calls and unloads a plugin 4000 times (plugin hosts, language
 * runtimes' extension loaders): the process's memory must stay bounded. Between cycles the host
 * maps a page of its own (untouched: no RSS), as a real host's other mappings come and go, so
 * the plugin's code lands at a new address each time. */

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: dlopen_cycles PLUGIN.so [N]\n"); return 2; }
    int n = argc > 2 ? atoi(argv[2]) : 4000;
    long before = 0;
    unsigned long sum = 0;
    for (int i = 0; i < n; i++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) { printf("dlopen %d failed: %s\n", i, dlerror()); return 1; }
        unsigned (*work)(unsigned) = (unsigned (*)(unsigned))dlsym(h, "plugin_work");
        if (!work) { printf("dlsym failed\n"); return 1; }
        sum += work(20 + (unsigned)i % 7);
        if (dlclose(h)) { printf("dlclose %d failed: %s\n", i, dlerror()); return 1; }
        if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) return 1;
        if (i == 99) before = rss_kb(); /* after the first cycles: lazily built tables in place */
    }
    long growth = rss_kb() - before;
    printf("%d cycles, sum %lu, RSS growth after cycle 100 under 16 MiB: %s\n", n, sum,
           growth < 16 * 1024 ? "yes" : "no");
    if (getenv("SHOW_RSS") /* to see it when it is small too */ || growth >= 16 * 1024) fprintf(stderr, "RSS grew by %ld kB\n", growth);
    return 0;
}
