/* stats.c - atomic request/leak counters and the /stats JSON line. */
#include "stats.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tracker.h"
#include "../analysis/history.h"
#include "../analysis/rss.h"

/* ------------------------------------------------------------ module state */

static struct {
    _Atomic uint64_t requests;      /* GET/HEAD / answered, 200 or 503 */
    _Atomic uint64_t leaked_bytes;  /* bytes dropped without free (leaky mode), <= leak_cap_bytes */
    _Atomic uint64_t leaked_blocks; /* records dropped without free */
    _Atomic uint64_t capped;        /* requests answered 503 because the cap was reached */
    uint64_t leak_cap_bytes;        /* set once by stats_init */
    const char *leak_kind;          /* "drop" | "cache" | "none" (--leak), set once */
    struct timespec started;        /* CLOCK_MONOTONIC at stats_init */
} st;

/* ------------------------------------------------------------ counters */

void stats_init(const char *leak_kind, uint64_t leak_cap_bytes)
{
    st.leak_kind = leak_kind;
    st.leak_cap_bytes = leak_cap_bytes;
    clock_gettime(CLOCK_MONOTONIC, &st.started);
}

uint64_t stats_requests(void)
{
    return atomic_load_explicit(&st.requests, memory_order_relaxed);
}

void stats_count_request(void)
{
    atomic_fetch_add_explicit(&st.requests, 1, memory_order_relaxed);
}

int stats_try_leak(uint64_t bytes)
{
    uint64_t cur = atomic_load_explicit(&st.leaked_bytes, memory_order_relaxed);

    do {
        if (cur > st.leak_cap_bytes || bytes > st.leak_cap_bytes - cur) {
            atomic_fetch_add_explicit(&st.capped, 1, memory_order_relaxed);
            return 0;
        }
    } while (!atomic_compare_exchange_weak_explicit(&st.leaked_bytes, &cur, cur + bytes,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    atomic_fetch_add_explicit(&st.leaked_blocks, 1, memory_order_relaxed);
    return 1;
}

void stats_cancel_leak(uint64_t bytes)
{
    atomic_fetch_sub_explicit(&st.leaked_bytes, bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&st.leaked_blocks, 1, memory_order_relaxed);
}

void stats_get(stats_counters *out)
{
    out->requests = atomic_load(&st.requests);
    out->leaked_bytes = atomic_load(&st.leaked_bytes);
    out->leaked_blocks = atomic_load(&st.leaked_blocks);
    out->capped = atomic_load(&st.capped);
    out->leak_cap_bytes = st.leak_cap_bytes;
    out->leak_kind = st.leak_kind;
}

/* ------------------------------------------------------------ /proc and JSON */

long stats_rss_kb(void)
{
    return rss_status_kb(); /* one /proc/self/status reader, in rss.c */
}

int stats_format_json(char *buf, size_t len)
{
    struct timespec now;
    double uptime;
    history_info hi;
    rss_parts rp;
    char rss[1024];
    int n;

    clock_gettime(CLOCK_MONOTONIC, &now);
    uptime = (double)(now.tv_sec - st.started.tv_sec) +
             (double)(now.tv_nsec - st.started.tv_nsec) / 1e9;
    history_get_info(&hi);
    if (rss_explain(&rp, hi.memory_bytes) != 0 || rss_format_json(&rp, rss, sizeof rss) < 0)
        snprintf(rss, sizeof rss, "null");
    n = snprintf(buf, len,
                 "{\"requests\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64
                 ",\"leaked_blocks\":%" PRIu64 ",\"rss_kb\":%ld,\"uptime_s\":%.1f"
                 ",\"mode\":\"%s\",\"leak\":\"%s\",\"leak_cap_bytes\":%" PRIu64 ",\"capped\":%" PRIu64
                 ",\"tracker\":%s"
                 ",\"history\":{\"running\":%s,\"period_ms\":%u,\"samples\":%" PRIu64 ",\"sites\":%zu"
                 ",\"series\":%zu,\"memory_bytes\":%zu,\"covers_s\":%.1f,\"cpu_s\":%.3f"
                 ",\"cpu_share\":%.5f,\"last_sample_ms\":%.3f}"
                 ",\"rss\":%s}\n",
                 atomic_load(&st.requests), atomic_load(&st.leaked_bytes),
                 atomic_load(&st.leaked_blocks), stats_rss_kb(), uptime,
                 strcmp(st.leak_kind, "none") == 0       ? "fixed"
                 : strcmp(st.leak_kind, "exercise") == 0 ? "exercise"
                                                         : "leaky",
                 st.leak_kind,
                 st.leak_cap_bytes, atomic_load(&st.capped),
                 tracker_is_active() ? "true" : "false",
                 hi.running ? "true" : "false", hi.period_ms, hi.samples, hi.sites_known, hi.series,
                 hi.memory_bytes, hi.covers_s, hi.cpu_s, hi.cpu_share, hi.last_sample_ms, rss);
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}
