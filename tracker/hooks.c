/* hooks.c - the malloc-family entry points: call glibc's allocator, then tell the tracker (a thin shim). */

#include "tracker.h"
#include "tracker_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * A program that defines malloc & co. replaces glibc's for every library
 * in the process (libmicrohttpd's and libc's internal calls included), as
 * glibc documents under "Replacing malloc". glibc 2.36 has no
 * __malloc_hook, and -Wl,--wrap would miss other libraries' calls, so we
 * define the entry points and forward to the __libc_* functions glibc
 * exports: no dlsym bootstrap needed, and block layout is glibc's own
 * (malloc_usable_size and friends keep working).
 *
 * Each hook: call the real allocator; if it succeeded and this thread is
 * not already inside the tracker, record. free records first, then frees:
 * the address cannot be handed out again in between.
 */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

int tracker_hooks_linked(void) { return 1; }

/* The hooks are the only symbols bin/libtracker.so exports (with
 * -fvisibility=hidden and tracker/libtracker.map); a program's own
 * tracker_init or report can then never be bound to ours, nor ours to it. */
#define TRACKER_EXPORT __attribute__((visibility("default")))

atomic_int tracker_hooks_pending;
void (*tracker_hooks_deferred)(void);

/* The tables are set up by the first allocation, not by our constructor:
 * libraries initialized before us (libstdc++'s exception pool, a C++
 * static's constructor) allocate first, and their blocks must be counted
 * too (the totals at exit equal valgrind's "in use at exit"). */
static int hooks_ready;

static void hooks_init(void)
{
    tracker_init();
    hooks_ready = 1;
}

/* Every hook holds the recursion guard across the real call too, so a
 * signal handler that interrupts an allocation and allocates itself is
 * forwarded untouched, and finds the guard taken if it calls _exit.
 * Recording never changes errno: a successful call leaves it as glibc did. */
#define HOOK_BEGIN int g_ = tracker_guard_enter()

/* Record block p (if any) for the caller of this hook, run a deferred
 * report if one is asked, and release the guard. */
#define HOOK_END(p, size)                                                    \
    do {                                                                     \
        if (!g_) break;                                                      \
        int e_ = errno;                                                      \
        if (__builtin_expect(!hooks_ready, 0)) hooks_init();                 \
        if (p) tracker_record_alloc((p), (size), __builtin_frame_address(0)); \
        if (atomic_load_explicit(&tracker_hooks_pending, memory_order_relaxed) && tracker_hooks_deferred) tracker_hooks_deferred(); \
        errno = e_;                                                          \
        tracker_guard_leave();                                               \
    } while (0)

TRACKER_EXPORT void *malloc(size_t size)
{
    HOOK_BEGIN;
    void *p = __libc_malloc(size);
    HOOK_END(p, size);
    return p;
}

TRACKER_EXPORT void *calloc(size_t n, size_t size)
{
    HOOK_BEGIN;
    void *p = __libc_calloc(n, size);
    HOOK_END(p, n * size); /* no overflow: calloc succeeded */
    return p;
}

TRACKER_EXPORT void free(void *ptr)
{
    if (!ptr) return;
    int saved = errno; /* free must not change errno (POSIX 2024, glibc >= 2.33) */
    HOOK_BEGIN;
    if (g_) tracker_record_free(ptr, NULL, NULL);
    __libc_free(ptr);
    HOOK_END((void *)NULL, 0);
    errno = saved;
}

TRACKER_EXPORT void *realloc(void *ptr, size_t size)
{
    size_t old_size = 0;
    uint32_t old_id = 0;
    int had = 0;
    HOOK_BEGIN;
    if (g_ && ptr) had = tracker_record_free(ptr, &old_size, &old_id);
    void *p = __libc_realloc(ptr, size);
    if (g_ && !p && had && size != 0) { /* failed (size 0 means glibc freed it): the old block is still live */
        int e = errno;
        tracker_record_restore(ptr, old_size, old_id);
        errno = e;
    }
    HOOK_END(p, size);
    return p;
}

/* glibc 2.36's reallocarray: ENOMEM on overflow, else realloc (which
 * glibc also calls through the interposable symbol). */
TRACKER_EXPORT void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) { errno = ENOMEM; return NULL; }
    return realloc(ptr, bytes);
}

/* __libc_memalign is glibc's memalign (a non-power-of-two alignment is
 * rounded up, > SIZE_MAX/2+1 is EINVAL), and in 2.36 aligned_alloc is the
 * same function (no alignment check of its own). */
TRACKER_EXPORT void *memalign(size_t align, size_t size)
{
    HOOK_BEGIN;
    void *p = __libc_memalign(align, size);
    HOOK_END(p, size);
    return p;
}

TRACKER_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    HOOK_BEGIN;
    void *p = __libc_memalign(align, size);
    HOOK_END(p, size);
    return p;
}

/* glibc's checks, in its order: EINVAL (and *out untouched) unless align
 * is a power-of-two multiple of sizeof(void *); ENOMEM on failure. */
TRACKER_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (align == 0 || align % sizeof(void *) != 0 || ((align / sizeof(void *)) & (align / sizeof(void *) - 1)) != 0)
        return EINVAL;
    HOOK_BEGIN;
    void *p = __libc_memalign(align, size);
    HOOK_END(p, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

TRACKER_EXPORT void *valloc(size_t size)
{
    HOOK_BEGIN;
    void *p = __libc_valloc(size);
    HOOK_END(p, size);
    return p;
}

TRACKER_EXPORT void *pvalloc(size_t size)
{
    HOOK_BEGIN;
    void *p = __libc_pvalloc(size);
    HOOK_END(p, size);
    return p;
}
