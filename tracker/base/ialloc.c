/* ialloc.c - the tracker's own heap: size classes carved from mapped slabs, big blocks mapped one by one. */

#include "ialloc.h"
#include "base.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Simple on purpose: the tracker allocates on its slow paths only (a
 * rule-cache miss, a new module's symbols, a report), so one mutex and
 * a free list per class are enough, as in a slab allocator. Freed blocks
 * of a class (up to 256 KiB) go back to it, never to the kernel (libdw's
 * caches live as long as the process anyway); bigger ones are unmapped
 * when freed.
 *
 * The tag in front of each block: word 0 = the block's address keyed with
 * a random per-process key (tracker_iowns), word 1 = the class index, or
 * BIG | the mapping's length.
 */

_Atomic uint64_t tracker_ialloc_key;

#define SLAB_BYTES (256u << 10)
#define BIG ((uint64_t)1 << 63)
#define TAG 16u

/* The classes' user sizes: 1.5x steps, so at most a third is wasted. */
static const uint32_t class_size[] = {16,    32,    48,    64,    96,     128,    192,    256,   384,
                                      512,   768,   1024,  1536,  2048,   3072,   4096,   6144,  8192,
                                      12288, 16384, 24576, 32768, 49152,  65536,  98304,  131072,
                                      196608, 262144};
#define NCLASSES (sizeof class_size / sizeof class_size[0])

static struct {
    pthread_mutex_t lock;
    void *free[NCLASSES]; /* each free block's first word: the next */
    char *bump, *end;     /* the unused rest of the newest slab */
    _Atomic uint64_t used; /* carved from slabs (touched) and mapped for big blocks */
} H = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* In the fork registry before any thread can hold the lock (the library's
 * constructors run before the program's threads exist); tracker_init
 * installs the handlers, and only the tracker's code, after it, allocates here. */
__attribute__((constructor)) static void ialloc_register(void)
{
    tracker_fork_register_mutex(LOCK_IALLOC, &H.lock);
}

static void *map(size_t len)
{
    int e = errno;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = e;
    return m == MAP_FAILED ? NULL : m;
}

static unsigned class_of(size_t size)
{
    unsigned c = 0;
    while (class_size[c] < size) c++;
    return c;
}

static void *tagged(char *b, uint64_t word1)
{
    uint64_t *t = (uint64_t *)b;
    t[0] = tracker_itag(b + TAG, tracker_key_once(&tracker_ialloc_key));
    t[1] = word1;
    return b + TAG;
}

/* A block of class c's size need with none free (the lock held): carved
 * from the newest slab, or for the classes above 32 KiB mapped alone and
 * kept in the class when freed (libdw frees and allocates its big buffers
 * again for every unit it reads: a map and an unmap each time otherwise). */
static char *carve(size_t need)
{
    char *b;
    if (need > SLAB_BYTES / 8) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        need = (need + page - 1) & ~(page - 1);
        if (!(b = map(need))) return NULL;
    } else {
        if ((size_t)(H.end - H.bump) < need) {
            char *s = map(SLAB_BYTES);
            if (!s) return NULL;
            H.bump = s;
            H.end = s + SLAB_BYTES;
        }
        b = H.bump;
        H.bump += need;
    }
    atomic_fetch_add(&H.used, need);
    return b;
}

void *tracker_ialloc(size_t size)
{
    if (size > class_size[NCLASSES - 1]) {
        long page = sysconf(_SC_PAGESIZE);
        if (size > SIZE_MAX / 2) { errno = ENOMEM; return NULL; }
        size_t len = (size + TAG + (size_t)page - 1) & ~((size_t)page - 1);
        char *m = map(len);
        if (!m) { errno = ENOMEM; return NULL; }
        atomic_fetch_add(&H.used, len);
        return tagged(m, BIG | len);
    }
    unsigned c = class_of(size);
    tracker_lock_unless_fork(&H.lock, LOCK_IALLOC); /* the forking thread holds it: an atfork handler may allocate */
    char *b = H.free[c];
    if (b) H.free[c] = *(void **)b;
    else b = carve(class_size[c] + TAG);
    tracker_unlock_unless_fork(&H.lock, LOCK_IALLOC);
    if (!b) { errno = ENOMEM; return NULL; }
    return tagged(b, c);
}

void *tracker_icalloc(size_t size)
{
    void *p = tracker_ialloc(size);
    if (p) memset(p, 0, size);
    return p;
}

void tracker_ifree(void *p)
{
    uint64_t *t = (uint64_t *)p - 2;
    uint64_t w = t[1];
    t[0] = 0; /* no longer ours: a second free is not taken for a block */
    if (w & BIG) {
        size_t len = (size_t)(w & ~BIG);
        int e = errno;
        munmap(t, len);
        errno = e;
        atomic_fetch_sub(&H.used, len);
        return;
    }
    if (w >= NCLASSES) return; /* not a tag of ours after all: leak it rather than corrupt the lists */
    tracker_lock_unless_fork(&H.lock, LOCK_IALLOC);
    *(void **)t = H.free[w];
    H.free[w] = t;
    tracker_unlock_unless_fork(&H.lock, LOCK_IALLOC);
}

size_t tracker_iusable(const void *p)
{
    uint64_t w = ((const uint64_t *)p)[-1];
    return w & BIG ? (size_t)(w & ~BIG) - TAG : class_size[w];
}

void *tracker_irealloc(void *p, size_t size)
{
    if (size == 0) {
        tracker_ifree(p);
        return NULL;
    }
    size_t have = tracker_iusable(p);
    if (size <= have && (size > have / 2 || have <= 64)) return p;
    void *q = tracker_ialloc(size);
    if (!q) return size <= have ? p : NULL; /* a shrink that found no smaller block keeps the old one */
    memcpy(q, p, have < size ? have : size);
    tracker_ifree(p);
    return q;
}

uint64_t tracker_ialloc_bytes(void) { return atomic_load(&H.used); }
