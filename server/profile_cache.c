/* profile_cache.c - the "cache" leak kind (--leak=cache): every profile record is kept, none is ever evicted. */
#include "profile_cache.h"

#include <pthread.h>
#include <stdlib.h>

/*
 * THE SECOND LESSON of this lab: a leak that exit-time leak checkers do not
 * call a leak. A cache meant to save work "for next time" that appends every
 * record and never evicts one grows without bound, exactly like the dropped
 * pointer of --leak=drop: RSS climbs ~40 KB per request. But every record
 * stays reachable from the global below, so at exit valgrind calls it "still
 * reachable" and LeakSanitizer says nothing at all. The allocation tracker
 * does not ask whether a block is reachable, only where live memory was
 * allocated, so /capture still names the LEAK-SITE line in fetch_user_data.c.
 * The records are deliberately NOT freed at exit: that is how such caches
 * live in real programs, and why the checkers stay quiet.
 * The fix would be a bound (evict the oldest past N records) or no cache.
 */

/* ------------------------------------------------------------ module state */

static struct {
    pthread_mutex_t lock; /* guards the fields below */
    char **records;       /* every record ever kept; reachable from here until exit */
    size_t count;         /* records kept */
    size_t cap;           /* slots in records; doubles when full */
} profile_cache = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };

/* ------------------------------------------------------------ keep */

int profile_cache_keep(char *record)
{
    int rc = -1;

    pthread_mutex_lock(&profile_cache.lock);
    if (profile_cache.count == profile_cache.cap) {
        size_t cap = profile_cache.cap ? profile_cache.cap * 2 : 1024;
        char **grown = realloc(profile_cache.records, cap * sizeof *grown);

        if (grown == NULL)
            goto done; /* nothing kept; the caller still owns record */
        profile_cache.records = grown;
        profile_cache.cap = cap;
    }
    profile_cache.records[profile_cache.count++] = record; /* kept forever: no eviction */
    rc = 0;
done:
    pthread_mutex_unlock(&profile_cache.lock);
    return rc;
}
