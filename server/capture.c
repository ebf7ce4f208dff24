/* capture.c - GET /capture: validates the query, takes a tracker snapshot and reports the diff. */
#include "capture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decimal.h"
#include "http_reply.h"

/* ------------------------------------------------------------ query parsing (pure) */

enum { SEEN_TOP = 1u << 0, SEEN_KEY = 1u << 1, SEEN_FRAMES = 1u << 2, SEEN_FORMAT = 1u << 3,
       SEEN_BASELINE = 1u << 4, SEEN_SYSTEM = 1u << 5 };

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
    q->opts.system = NULL;
    q->seen = 0;
    q->baseline[0] = '\0';
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
    else if (strcmp(name, "baseline") == 0)
        bit = SEEN_BASELINE;
    else if (strcmp(name, "system") == 0)
        bit = SEEN_SYSTEM;
    else {
        snprintf(err, errlen, "unknown parameter '%s' (known: top, key, frames, format, baseline, system)",
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
    case SEEN_BASELINE: {
        size_t n = strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
        if (value[n] != '\0' || n > CAPTURE_BASELINE_NAME_MAX) {
            snprintf(err, errlen, "baseline: '%s' is not a name of 1 to %d letters, digits, '.', '_' or '-'",
                     http_printable(value, shown, sizeof shown), CAPTURE_BASELINE_NAME_MAX);
            return -1;
        }
        memcpy(q->baseline, value, n + 1);
        return 0;
    }
    case SEEN_KEY:
        if (tracker_key_parse(value, &q->opts.key) != 0) {
            snprintf(err, errlen, "key: unknown key '%s' (expected lineno, traceback or filename)",
                     http_printable(value, shown, sizeof shown));
            return -1;
        }
        return 0;
    case SEEN_SYSTEM: /* kept as a pointer into the request: valid while it is answered */
        if (tracker_system_check(value) != 0) {
            snprintf(err, errlen, "system: more than 32 prefixes or 1 KiB of text in '%s'",
                     http_printable(value, shown, sizeof shown));
            return -1;
        }
        q->opts.system = value;
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

/* The baselines: the default one (plain /capture) and the named ones. */
typedef struct named_baseline {
    char name[CAPTURE_BASELINE_NAME_MAX + 1]; /* "" when the entry is free */
    tracker_baseline b;
    time_t last_used;                         /* CLOCK_MONOTONIC seconds of its last capture */
} named_baseline;

static struct {
    pthread_mutex_t lock;                     /* guards the names and last_used, not the reports */
    tracker_baseline plain;                   /* the seed's one baseline */
    named_baseline named[CAPTURE_BASELINES_MAX];
} baselines = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .plain = TRACKER_BASELINE_INIT,
};

static time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* The baseline called name ("" = the default), made when new. NULL when
 * the table is full and no name has been idle for CAPTURE_BASELINE_IDLE_S. */
static tracker_baseline *baseline_for(const char *name)
{
    named_baseline *found = NULL, *free_slot = NULL, *idlest = NULL;
    time_t now = mono_now();
    if (!name[0]) return &baselines.plain;
    pthread_mutex_lock(&baselines.lock);
    for (size_t i = 0; i < CAPTURE_BASELINES_MAX && !found; i++) {
        named_baseline *e = &baselines.named[i];
        if (e->name[0] && strcmp(e->name, name) == 0) found = e;
        else if (!e->name[0] && !free_slot) free_slot = e;
        else if (e->name[0] && (!idlest || e->last_used < idlest->last_used)) idlest = e;
    }
    if (!found) {
        if (!free_slot && idlest && now - idlest->last_used >= CAPTURE_BASELINE_IDLE_S) {
            tracker_baseline_clear(&idlest->b); /* taken over: the new name starts absolute */
            idlest->b.reports = 0;
            free_slot = idlest;
        }
        if (free_slot) {
            found = free_slot;
            if (!found->name[0]) found->b = (tracker_baseline)TRACKER_BASELINE_INIT;
            snprintf(found->name, sizeof found->name, "%s", name);
        }
    }
    if (found) found->last_used = now;
    pthread_mutex_unlock(&baselines.lock);
    return found ? &found->b : NULL;
}

/* An absolute report that moves no baseline (HEAD). */
static char *report_unkept(const tracker_report_opts *opts, size_t *len)
{
    tracker_snapshot *snap = tracker_snapshot_take();
    char *text = snap ? tracker_report(snap, NULL, opts, len) : NULL;
    tracker_snapshot_free(snap);
    return text;
}

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

enum MHD_Result capture_handle(struct MHD_Connection *conn, const char *method)
{
    tracker_baseline *b = NULL;
    enum MHD_Result off;
    query_walk w;
    char *body;
    size_t len = 0;

    if (http_reply_tracker_off(conn, &off))
        return off;

    capture_query_init(&w.q);
    w.failed = 0;
    w.err[0] = '\0';
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, walk_arg, &w);
    if (w.failed)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "bad /capture query: %s", w.err);
    capture_query_finish(&w.q);

    if (strcmp(method, "HEAD") == 0) {
        body = report_unkept(&w.q.opts, &len);
    } else {
        b = baseline_for(w.q.baseline);
        if (b == NULL)
            return http_reply_reason(conn, MHD_HTTP_TOO_MANY_REQUESTS,
                                     "too many baselines: %d names in use, none idle for %d s; "
                                     "reuse a name, or omit baseline= for the default one",
                                     CAPTURE_BASELINES_MAX, CAPTURE_BASELINE_IDLE_S);
        body = tracker_baseline_report(b, TRACKER_BASELINE_DIFF, &w.q.opts, &len, NULL);
    }
    if (body == NULL)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory while taking the capture (see rss_kb in /stats)");
    return http_reply(conn, MHD_HTTP_OK, w.q.opts.format == TRACKER_FORMAT_JSON ? HTTP_REPLY_JSON : HTTP_REPLY_TEXT, body,
                      len, MHD_RESPMEM_MUST_FREE);
}

void capture_shutdown(void)
{
    tracker_baseline_clear(&baselines.plain);
    for (size_t i = 0; i < CAPTURE_BASELINES_MAX; i++)
        if (baselines.named[i].name[0]) tracker_baseline_clear(&baselines.named[i].b);
}
