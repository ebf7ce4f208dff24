/* test_retention.c - the retention scan on heaps whose graph the test knows: lost, indirectly lost, a lost cycle, held by a global (and through a block), by a thread's stack, by TLS, through an interior pointer, a memalign'ed block. */

#include "check.h"
#include "tracker.h"
#include "tracker_internal.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each shape is allocated by its own function (its own site), noinline so
 * every one is a line of this file. */
typedef struct node { struct node *next; char pad[40]; } node;

static node *g_list;             /* held by a global: a list of 50 */
static void **g_table;           /* a global's array that holds records */
static char *g_interior;         /* points 8 bytes into its block */
static void *g_aligned;          /* a memalign'ed block (the address table) */
static __thread void *t_tls;     /* the main thread's TLS holds one */
static int pipefd[2];            /* the holder thread blocks reading it */
static volatile void *sink;

#define NOINLINE __attribute__((noinline))

NOINLINE static void *alloc_lost(void) { return malloc(100); }          /* SITE lost */
NOINLINE static void *alloc_child(void) { return malloc(200); }         /* SITE indirect */
NOINLINE static void *alloc_cycle(void) { return malloc(64); }          /* SITE cycle */
NOINLINE static node *alloc_node(void) { return calloc(1, sizeof(node)); } /* SITE list */
NOINLINE static void *alloc_table(void) { return calloc(16, sizeof(void *)); } /* SITE table */
NOINLINE static void *alloc_record(void) { return malloc(1000); }       /* SITE record */
NOINLINE static void *alloc_stack(void) { return malloc(300); }         /* SITE stack */
NOINLINE static void *alloc_tls(void) { return malloc(400); }           /* SITE tls */
NOINLINE static void *alloc_interior(void) { return malloc(500); }      /* SITE interior */
NOINLINE static void *alloc_aligned(void) { void *p = NULL; return posix_memalign(&p, 256, 600) ? NULL : p; }

static void *lost_parent, *cycle_a;
/* Hidden pointers: the high bits flipped, so no word of ours points into the heap. */
#define HIDE 0xa5a5000000000000ULL

/* Lose the blocks in a frame that is gone by the time of the scan; the
 * scrub below overwrites it. */
NOINLINE static void make_lost(void)
{
    void **parent = alloc_lost();
    memset(parent, 0, 100);
    parent[0] = alloc_child();           /* indirectly lost: only the lost parent points at it */
    void **a = alloc_cycle(), **b = alloc_cycle();
    a[0] = b; b[0] = a;                  /* a lost cycle: one direct, one indirect */
    /* keep their addresses, hidden (xor), for the checks below */
    lost_parent = (void *)((uintptr_t)parent ^ HIDE);
    cycle_a = (void *)((uintptr_t)a ^ HIDE);
}

NOINLINE static void scrub(void)
{
    volatile char big[16384];
    memset((char *)big, 0, sizeof big);
}

NOINLINE static void make_held(void)
{
    for (int i = 0; i < 50; i++) {
        node *n = alloc_node();
        n->next = g_list;
        g_list = n;
    }
    g_table = alloc_table();
    for (int i = 0; i < 16; i++) g_table[i] = alloc_record();
    t_tls = alloc_tls();
    char *p = alloc_interior();
    g_interior = p + 8;
    g_aligned = alloc_aligned();
}

/* A thread that holds a block only in a local, blocked in read(). */
static void *holder(void *arg)
{
    (void)arg;
    void *volatile mine = alloc_stack();
    char c;
    ssize_t r = read(pipefd[0], &c, 1);
    (void)r;
    free((void *)mine);
    return NULL;
}

static volatile sig_atomic_t sigchld_seen;
static void on_sigchld(int signo) { (void)signo; sigchld_seen++; }

/* Refuse clone(2) with EPERM from now on (clone3, which pthread_create
 * uses, stays allowed), as a container's seccomp policy might. */
static int refuse_clone(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static const char *site_of(void *p, char *buf, size_t len)
{
    size_t size;
    uint32_t id;
    tracker_report_opts o = { .key = TRACKER_KEY_LINENO, .top = 1, .frames = 1 };
    buf[0] = '\0';
    if (!tracker_lookup(p, &size, &id)) return buf;
    char *k = tracker_site_key(id, &o, NULL);
    if (k) { snprintf(buf, len, "%s", k); free(k); }
    return buf;
}

static const tracker_retention_site *find(const tracker_retention *r, const char *site)
{
    for (size_t i = 0; i < r->nsites; i++)
        if (strcmp(r->sites[i].site, site) == 0) return &r->sites[i];
    return NULL;
}

static const char *top_owner(const tracker_retention_site *s)
{
    return s && s->nowners ? s->owners[0].owner : "(none)";
}

int main(void)
{
    char name[256], name2[256];
    if (pipe(pipefd) != 0) return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sigaction(SIGCHLD, &sa, NULL);
    make_lost();
    scrub();
    make_held();
    pthread_t th;
    pthread_create(&th, NULL, holder, NULL);
    usleep(200 * 1000); /* let it block in read() */
    scrub(); /* the shapes' pointers are gone from dead frames (a stale word would keep them alive) */

    void *parent = (void *)((uintptr_t)lost_parent ^ HIDE);
    tracker_retention *r = tracker_retention_scan(NULL, 30.0, NULL);
    CHECK(r && r->available, "the scan ran (%s)", r ? r->reason : "no memory");
    if (!r || !r->available) { CHECK_PLAN(); fprintf(stderr, "# %d passed, %d failed\n", passed, failed); return 1; }
    size_t len;
    char *text = tracker_retention_format(r, 20, 0, &len);
    printf("%s", text);
    free(text);

    const tracker_retention_site *s;
    s = find(r, site_of(parent, name, sizeof name));
    CHECK(s && s->unreachable_blocks == 1 && s->indirect_blocks == 0 && s->reachable_blocks == 0,
          "a dropped block is lost, directly (%s)", name);
    s = find(r, site_of(((void **)parent)[0], name, sizeof name));
    CHECK(s && s->unreachable_blocks == 1 && s->indirect_blocks == 1, "what only a lost block points at is lost indirectly (%s)", name);
    void *a = (void *)((uintptr_t)cycle_a ^ HIDE);
    s = find(r, site_of(a, name, sizeof name));
    CHECK(s && s->unreachable_blocks == 2 && s->indirect_blocks == 1, "a lost cycle: one direct, one indirect (%s: %llu lost, %llu indirect)",
          name, s ? (unsigned long long)s->unreachable_blocks : 0ULL, s ? (unsigned long long)s->indirect_blocks : 0ULL);
    char *v = tracker_retention_verdict(r, name);
    CHECK(v && strcmp(v, "lost") == 0, "its verdict is \"lost\" (%s)", v ? v : "NULL");
    free(v);

    s = find(r, site_of(g_list, name, sizeof name));
    CHECK(s && s->reachable_blocks == 50 && s->unreachable_blocks == 0, "a list of 50 held by a global is reachable (%s)", name);
    CHECK(s && strstr(top_owner(s), "global g_list"), "the list's owner is the global g_list, past its own nodes (%s)", top_owner(s));
    s = find(r, site_of(g_table[0], name, sizeof name));
    site_of(g_table, name2, sizeof name2);
    CHECK(s && s->reachable_blocks == 16 && strcmp(top_owner(s), name2) == 0,
          "records held by an array block are owned by the array's site (%s)", top_owner(s));
    v = tracker_retention_verdict(r, name);
    CHECK(v && strstr(v, name2) && strstr(v, "<- global g_table"), "the chain: held by the array <- the global (%s)", v ? v : "NULL");
    free(v);
    s = find(r, site_of(t_tls, name, sizeof name));
    CHECK(s && s->reachable_blocks == 1 && strstr(top_owner(s), "TLS"), "a block held only by the main thread's TLS (%s)", top_owner(s));
    s = find(r, site_of(g_interior - 8, name, sizeof name));
    CHECK(s && s->reachable_blocks == 1 && s->interior_blocks == 1, "a block held by an interior pointer is reachable and flagged");
    s = find(r, site_of(g_aligned, name, sizeof name));
    CHECK(s && s->reachable_blocks == 1 && r->table_blocks >= 1, "a memalign'ed block (address table) is found and held (%s; %llu table blocks)", name, (unsigned long long)r->table_blocks);

    /* the holder thread's stack: find its site by a fresh block of the same function? its site is alloc_stack's line */
    int found = 0;
    for (size_t i = 0; i < r->nsites; i++)
        if (r->sites[i].reachable_blocks == 1 && r->sites[i].nowners && strstr(r->sites[i].owners[0].owner, "thread stack") &&
            strstr(r->sites[i].site, "test_retention.c"))
            found = 1;
    CHECK(found, "a block held only in a blocked thread's local is held by a thread stack");
    CHECK(r->pause_ms >= 0 && r->pause_ms < 1000, "pause %.3f ms", r->pause_ms);
    CHECK(r->stacks_exact >= 2, "the caller's and the blocked thread's stacks scanned from their stack pointers (%u)", r->stacks_exact);
    char *json = tracker_retention_format(r, 5, 1, &len);
    CHECK(json && strstr(json, "\"pause_ms\":") && strstr(json, "\"owners\":[{\"owner\":"), "JSON has pause_ms and owners");
    free(json);
    tracker_retention_free(r);

    CHECK(sigchld_seen == 0, "the program saw no SIGCHLD from the scan's child (%d)", (int)sigchld_seen);

    /* no fork to be had: "unavailable" with the reason, and the program goes on */
    if (refuse_clone() == 0) {
        r = tracker_retention_scan(NULL, 30.0, NULL);
        CHECK(r && !r->available && strstr(r->reason, "clone"), "clone refused: unavailable (%s)", r ? r->reason : "NULL");
        char *t = r ? tracker_retention_format(r, 5, 1, &len) : NULL;
        CHECK(t && strstr(t, "\"available\":false") && strstr(t, "\"reason\":"), "its JSON says available false and why");
        free(t);
        tracker_retention_free(r);
    } else {
        CHECK(0, "seccomp filter installed (%s)", strerror(errno));
    }

    ssize_t w = write(pipefd[1], "x", 1);
    (void)w;
    pthread_join(th, NULL);
    sink = g_list;
    CHECK_PLAN();
    fprintf(stderr, "# %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
