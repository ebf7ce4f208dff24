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

/* Record block p for the caller of the hook whose frame is fr. */
#define RECORD(p, size, fr)                                        \
    do {                                                           \
        if ((p) && tracker_guard_enter()) {                        \
            tracker_record_alloc((p), (size), (fr));               \
            tracker_guard_leave();                                 \
        }                                                          \
    } while (0)

void *malloc(size_t size)
{
    void *p = __libc_malloc(size);
    RECORD(p, size, __builtin_frame_address(0));
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    RECORD(p, n * size, __builtin_frame_address(0)); /* no overflow: calloc succeeded */
    return p;
}

void free(void *ptr)
{
    if (!ptr) return;
    int saved = errno; /* free must not change errno (POSIX 2024, glibc >= 2.33) */
    if (tracker_guard_enter()) {
        tracker_record_free(ptr, NULL, NULL);
        tracker_guard_leave();
    }
    __libc_free(ptr);
    errno = saved;
}

void *realloc(void *ptr, size_t size)
{
    size_t old_size = 0;
    uint32_t old_id = 0;
    int had = 0;
    int g = tracker_guard_enter();
    if (g && ptr) had = tracker_record_free(ptr, &old_size, &old_id);
    void *p = __libc_realloc(ptr, size);
    if (g) {
        if (p) tracker_record_alloc(p, size, __builtin_frame_address(0));
        else if (had && size != 0) /* failed (size 0 means glibc freed it): the old block is still live */
            tracker_record_restore(ptr, old_size, old_id);
        tracker_guard_leave();
    }
    return p;
}

void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) { errno = ENOMEM; return NULL; }
    return realloc(ptr, bytes);
}

void *memalign(size_t align, size_t size)
{
    void *p = __libc_memalign(align, size);
    RECORD(p, size, __builtin_frame_address(0));
    return p;
}

void *aligned_alloc(size_t align, size_t size)
{
    void *p = __libc_memalign(align, size);
    RECORD(p, size, __builtin_frame_address(0));
    return p;
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(align, size);
    if (!p) return ENOMEM;
    RECORD(p, size, __builtin_frame_address(0));
    *out = p;
    return 0;
}

void *valloc(size_t size)
{
    void *p = __libc_valloc(size);
    RECORD(p, size, __builtin_frame_address(0));
    return p;
}

void *pvalloc(size_t size)
{
    void *p = __libc_pvalloc(size);
    RECORD(p, size, __builtin_frame_address(0));
    return p;
}
