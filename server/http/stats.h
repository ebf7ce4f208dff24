/* stats.h - the server's request and leak counters, and the /stats JSON line built from them. */
#ifndef STATS_H
#define STATS_H

#include <stddef.h>
#include <stdint.h>

/* Record the settings /stats reports and start the uptime clock. Call once,
 * before the daemon starts. leak_kind: "drop", "cache" or "none" (a string
 * literal, kept; "mode" is "fixed" for none, else "leaky"); leak_cap_bytes:
 * the cap on bytes leaked. */
void stats_init(const char *leak_kind, uint64_t leak_cap_bytes);

/* Requests counted so far (GET/HEAD / answered). Thread-safe. */
uint64_t stats_requests(void);

/* Count one GET/HEAD / answered (with 200 or 503). Thread-safe. */
void stats_count_request(void);

/* Reserve bytes of leak under the cap: returns 1 and counts them as leaked
 * (one block) when leaked + bytes <= cap; otherwise returns 0, counts one
 * capped request and changes nothing else. Thread-safe and exact: two
 * threads cannot both take the last room under the cap. */
int stats_try_leak(uint64_t bytes);

/* Undo a successful stats_try_leak(bytes) whose block could not be made. */
void stats_cancel_leak(uint64_t bytes);

/* The counters, each read atomically (for /metrics). */
typedef struct stats_counters {
    uint64_t requests;       /* GET/HEAD / answered, 200 or 503 */
    uint64_t leaked_bytes;   /* bytes leaked so far (<= leak_cap_bytes) */
    uint64_t leaked_blocks;  /* records leaked so far */
    uint64_t capped;         /* requests answered 503: leak cap reached */
    uint64_t leak_cap_bytes; /* --leak-cap-mb in bytes */
    const char *leak_kind;   /* "drop", "cache" or "none" */
} stats_counters;

/* Fill *out with the counters now. Thread-safe. */
void stats_get(stats_counters *out);

/* VmRSS of this process in kB as /proc/self/status prints it; -1 if unreadable. */
long stats_rss_kb(void);

/* Write the /stats JSON object (one line, ending in '\n') into buf: the
 * counters, the history sampler's figures ("history") and the RSS
 * breakdown ("rss", see rss.h). Returns
 * its length, or -1 when len is too small (buf is then unspecified). */
int stats_format_json(char *buf, size_t len);

#endif /* STATS_H */
