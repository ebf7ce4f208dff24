/* capture.c - GET /capture: validates the query, takes a tracker snapshot and reports the diff. */
#include "capture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "http_reply.h"

/* ------------------------------------------------------------ query parsing (pure) */

enum { SEEN_TOP = 1u << 0, SEEN_KEY = 1u << 1, SEEN_FRAMES = 1u << 2, SEEN_FORMAT = 1u << 3 };

/* Parse value as a decimal integer in lo..hi into *out. Returns 0, or -1
 * with the reason in err. */
static int parse_int(const char *name, const char *value, int lo, int hi, int *out, char *err,
                     size_t errlen)
{
    char shown[48];
    unsigned long v;

    if (value[0] == '-' && value[1] >= '0' && value[1] <= '9') {
        snprintf(err, errlen, "%s: negative value %s (expected %d..%d)", name,
                 http_printable(value, shown, sizeof shown), lo, hi);
        return -1;
    }
    if (decimal_parse(value, (unsigned long)hi, &v) != 0) {
        snprintf(err, errlen, "%s: '%s' is not a number (expected %d..%d)", name,
                 http_printable(value, shown, sizeof shown), lo, hi);
        return -1;
    }
    if (v < (unsigned long)lo || v > (unsigned long)hi) {
        snprintf(err, errlen, "%s: %s is out of range (expected %d..%d)", name,
                 http_printable(value, shown, sizeof shown), lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

void capture_query_init(capture_query *q)
{
    q->opts.top = 10;
    q->opts.key = TRACKER_KEY_LINENO;
    q->opts.frames = 0;
    q->opts.format = TRACKER_FORMAT_TEXT;
    q->seen = 0;
}

int capture_parse_query(const char *name, const char *value, capture_query *q, char *err,
                        size_t errlen)
{
    char shown[48];
    unsigned bit;

    if (strcmp(name, "top") == 0)
        bit = SEEN_TOP;
    else if (strcmp(name, "key") == 0)
        bit = SEEN_KEY;
    else if (strcmp(name, "frames") == 0)
        bit = SEEN_FRAMES;
    else if (strcmp(name, "format") == 0)
        bit = SEEN_FORMAT;
    else {
        snprintf(err, errlen, "unknown parameter '%s' (known: top, key, frames, format)",
                 http_printable(name, shown, sizeof shown));
        return -1;
    }
    if (q->seen & bit) {
        snprintf(err, errlen, "parameter '%s' given more than once", name);
        return -1;
    }
    q->seen |= bit;
    if (value == NULL || value[0] == '\0') {
        snprintf(err, errlen, "%s: empty value", name);
        return -1;
    }

    switch (bit) {
    case SEEN_TOP:
        return parse_int(name, value, 1, CAPTURE_TOP_MAX, &q->opts.top, err, errlen);
    case SEEN_FRAMES:
        return parse_int(name, value, 1, TRACKER_MAX_FRAMES, &q->opts.frames, err, errlen);
    case SEEN_KEY:
        if (tracker_key_parse(value, &q->opts.key) != 0) {
            snprintf(err, errlen, "key: unknown key '%s' (expected lineno, traceback or filename)",
                     http_printable(value, shown, sizeof shown));
            return -1;
        }
        return 0;
    default: /* SEEN_FORMAT */
        if (strcmp(value, "text") == 0)
            q->opts.format = TRACKER_FORMAT_TEXT;
        else if (strcmp(value, "json") == 0)
            q->opts.format = TRACKER_FORMAT_JSON;
        else if (strcmp(value, "folded") == 0)
            q->opts.format = TRACKER_FORMAT_FOLDED;
        else {
            snprintf(err, errlen, "format: unknown format '%s' (expected text, json or folded)",
                     http_printable(value, shown, sizeof shown));
            return -1;
        }
        return 0;
    }
}

void capture_query_finish(capture_query *q)
{
    if (q->opts.frames == 0)
        q->opts.frames = q->opts.key == TRACKER_KEY_TRACEBACK || q->opts.format == TRACKER_FORMAT_FOLDED
                             ? TRACKER_MAX_FRAMES : 1;
}

/* ------------------------------------------------------------ handler */

/* The previous capture's snapshot (the baseline) and the capture count. */
static tracker_baseline baseline = TRACKER_BASELINE_INIT;

/* State of one pass over the query arguments. */
typedef struct query_walk {
    capture_query q; /* what was parsed so far */
    int failed;      /* 1 once a parameter was rejected */
    char err[160];   /* the reason, when failed */
} query_walk;

static enum MHD_Result walk_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    query_walk *w = cls;

    (void)kind;
    if (capture_parse_query(key, value, &w->q, w->err, sizeof w->err) != 0) {
        w->failed = 1;
        return MHD_NO; /* stop at the first bad parameter */
    }
    return MHD_YES;
}

enum MHD_Result capture_handle(struct MHD_Connection *conn)
{
    query_walk w;
    char *body;
    size_t len = 0;

    if (!tracker_hooks_linked()) /* bin/server-asan, -plain, -lsan: another tool owns malloc */
        return http_reply_reason(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "tracker is off: this build has no allocation hooks (use bin/server)");
    if (!tracker_is_active())
        return http_reply_reason(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "tracker is off (server started with --no-tracker)");

    capture_query_init(&w.q);
    w.failed = 0;
    w.err[0] = '\0';
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, walk_arg, &w);
    if (w.failed)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "bad /capture query: %s", w.err);
    capture_query_finish(&w.q);

    body = tracker_baseline_report(&baseline, TRACKER_BASELINE_DIFF, &w.q.opts, &len, NULL);
    if (body == NULL)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory while taking the capture (see rss_kb in /stats)");
    return http_reply(conn, MHD_HTTP_OK, w.q.opts.format == TRACKER_FORMAT_JSON ? HTTP_REPLY_JSON : HTTP_REPLY_TEXT, body,
                      len, MHD_RESPMEM_MUST_FREE);
}

void capture_shutdown(void)
{
    tracker_baseline_clear(&baseline);
}
