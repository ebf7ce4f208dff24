/* profile_cache.h - the "cache" leak kind: a cache of profile records that nothing ever evicts. */
#ifndef PROFILE_CACHE_H
#define PROFILE_CACHE_H

/* Keep record (a block from fetch_user_data) in the global profile cache,
 * "for next time". The cache takes ownership and never lets go: no eviction,
 * and no free at exit either (see profile_cache.c for why that is the lesson).
 * Thread-safe. Returns 0, or -1 when the cache's own index cannot grow: then
 * nothing is kept and the caller still owns record. */
int profile_cache_keep(char *record);

#endif /* PROFILE_CACHE_H */
