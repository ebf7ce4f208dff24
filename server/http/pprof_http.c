/* pprof_http.c - GET /debug/pprof/heap and /allocs: validates ?seconds=, takes the snapshots and sends the encoded profile. */
#include "pprof_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../decimal.h"
#include "http_reply.h"
#include "pprof.h"

/* State of one pass over the query arguments. */
typedef struct heap_query {
    unsigned long seconds; /* 0: an absolute profile */
    unsigned seen;         /* ?seconds= given already (http_query_param) */
    char err[160];         /* the reason, when one was rejected */
} heap_query;

static enum MHD_Result walk_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    static const char *const names[] = { "seconds" };
    heap_query *q = cls;
    char shown[48];

    (void)kind;
    if (http_query_param(key, names, 1, &q->seen, q->err, sizeof q->err) >= 0 &&
        (value == NULL || decimal_parse(value, PPROF_SECONDS_MAX, &q->seconds) != 0 || q->seconds < 1 ||
         q->seconds > PPROF_SECONDS_MAX))
        snprintf(q->err, sizeof q->err, "seconds: '%s' is not a whole number from 1 to %d",
                 http_printable(value, shown, sizeof shown), PPROF_SECONDS_MAX);
    return q->err[0] ? MHD_NO : MHD_YES; /* stop at the first bad parameter */
}

/* Sleep s seconds, whatever signals arrive (the server's workers block them anyway). */
static void wait_seconds(unsigned long s)
{
    struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = 0 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

typedef int (*encoder)(const tracker_snapshot *, const tracker_snapshot *, unsigned char **, size_t *);

/* Both endpoints: the query, the snapshots, encode, reply (disposition: the
 * Content-Disposition Go sends, naming the file a browser saves). */
static enum MHD_Result serve(struct MHD_Connection *conn, const char *path, encoder encode,
                             const char *disposition)
{
    heap_query q = { 0 };
    enum MHD_Result off;
    tracker_snapshot *base = NULL, *now = NULL;
    unsigned char *body = NULL;
    size_t len = 0;

    if (http_reply_tracker_off(conn, &off))
        return off;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, walk_arg, &q);
    if (q.err[0])
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "bad %s query: %s", path, q.err);

    if (q.seconds) {
        base = tracker_snapshot_take_flags(TRACKER_SNAP_ALL_STACKS);
        if (base == NULL)
            goto oom;
        wait_seconds(q.seconds);
    }
    now = tracker_snapshot_take_flags(TRACKER_SNAP_ALL_STACKS);
    if (now == NULL || encode(now, base, &body, &len) != 0)
        goto oom;
    tracker_snapshot_free(base);
    tracker_snapshot_free(now);
    return http_reply_header(conn, MHD_HTTP_OK, "application/octet-stream", (const char *)body, len,
                             MHD_RESPMEM_MUST_FREE, "Content-Disposition", disposition);
oom:
    tracker_snapshot_free(base);
    tracker_snapshot_free(now);
    return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "out of memory while encoding the heap profile (see rss_kb in /stats)");
}

enum MHD_Result pprof_http_heap(struct MHD_Connection *conn)
{
    return serve(conn, PPROF_HTTP_PATH, tracker_pprof_heap, "attachment; filename=\"heap\"");
}

enum MHD_Result pprof_http_allocs(struct MHD_Connection *conn)
{
    return serve(conn, PPROF_HTTP_ALLOCS_PATH, tracker_pprof_allocs, "attachment; filename=\"allocs\"");
}
