/* capture.c - GET /capture: validates the query, takes a tracker snapshot and reports the diff. */
#include "capture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../decimal.h"
#include "http_reply.h"

/* ------------------------------------------------------------ query parsing (pure) */

enum { SEEN_TOP = 1u << 0, SEEN_KEY = 1u << 1, SEEN_FRAMES = 1u << 2, SEEN_FORMAT = 1u << 3,
       SEEN_BASELINE = 1u << 4, SEEN_SYSTEM = 1u << 5, SEEN_SINCE = 1u << 6 };

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
    /* Every field set (zero unless named): the report options grow, and a
     * field left to the stack's garbage was read as a snapshot pointer. */
    *q = (capture_query){ .opts = { .top = 10, .key = TRACKER_KEY_LINENO, .format = TRACKER_FORMAT_TEXT }, .since = -1 };
}

int capture_parse_query(const char *name, const char *value, capture_query *q, char *err,
                        size_t errlen)
{
    /* in the order of the SEEN_ bits */
    static const char *const names[] = { "top", "key", "frames", "format", "baseline", "system", "since" };
    char shown[48];
    int i = http_query_param(name, names, 7, &q->seen, err, errlen);
    if (i < 0) return -1;
    unsigned bit = 1u << i;
    if (value == NULL || value[0] == '\0') {
        snprintf(err, errlen, "%s: empty value", name);
        return -1;
    }

    switch (bit) {
    case SEEN_TOP:
        return parse_int(name, value, 1, CAPTURE_TOP_MAX, &q->opts.top, err, errlen);
    case SEEN_FRAMES:
        return parse_int(name, value, 1, TRACKER_MAX_FRAMES, &q->opts.frames, err, errlen);
    case SEEN_SINCE: /* whether capture N is kept is known only to the handler */
        return parse_int(name, value, 0, 1 << 30, &q->since, err, errlen);
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

/* One baseline's captures: the last CAPTURE_KEPT snapshots, each with how it
 * grouped and what it was compared to, so that a re-grouped capture can be
 * compared to what the previous one was, and ?since=N to any kept one. */
typedef struct kept_capture {
    int no;                 /* capture number, 0 when the slot is empty */
    tracker_snapshot *snap;
    tracker_key key;
    int frames;
    int since;              /* the capture it was compared to, 0: absolute */
} kept_capture;

typedef struct capture_series {
    pthread_mutex_t lock;   /* one capture of a series at a time */
    int reports;            /* captures made so far */
    int base;               /* the last capture that grouped as the one before it did (0: none):
                             * what the next capture that groups the same way is compared to */
    kept_capture kept[CAPTURE_KEPT]; /* capture no is in slot (no - 1) % CAPTURE_KEPT */
} capture_series;

#define CAPTURE_SERIES_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }

/* The baselines: the default one (plain /capture) and the named ones. */
typedef struct named_baseline {
    char name[CAPTURE_BASELINE_NAME_MAX + 1]; /* "" when the entry is free */
    capture_series s;
    time_t last_used;                         /* CLOCK_MONOTONIC seconds of its last capture */
} named_baseline;

static struct {
    pthread_mutex_t lock;                     /* guards the names and last_used, not the reports */
    capture_series plain;                     /* the seed's one baseline */
    named_baseline named[CAPTURE_BASELINES_MAX];
} baselines = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .plain = CAPTURE_SERIES_INIT,
};

static void series_clear(capture_series *s)
{
    for (size_t i = 0; i < CAPTURE_KEPT; i++) {
        tracker_snapshot_free(s->kept[i].snap);
        s->kept[i] = (kept_capture){ 0 };
    }
    s->reports = 0;
    s->base = 0;
}

static const kept_capture *series_get(const capture_series *s, int no)
{
    const kept_capture *k = no > 0 ? &s->kept[(no - 1) % CAPTURE_KEPT] : NULL;
    return k && k->no == no ? k : NULL;
}

static time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* The baseline called name ("" = the default), made when new. NULL when
 * the table is full and no name has been idle for CAPTURE_BASELINE_IDLE_S. */
static capture_series *baseline_for(const char *name)
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
            pthread_mutex_lock(&idlest->s.lock);
            series_clear(&idlest->s); /* taken over: the new name starts absolute */
            pthread_mutex_unlock(&idlest->s.lock);
            free_slot = idlest;
        }
        if (free_slot) {
            found = free_slot;
            if (!found->name[0]) found->s = (capture_series)CAPTURE_SERIES_INIT;
            snprintf(found->name, sizeof found->name, "%s", name);
        }
    }
    if (found) found->last_used = now;
    pthread_mutex_unlock(&baselines.lock);
    return found ? &found->s : NULL;
}

/* An absolute report that moves no baseline (HEAD). */
static char *report_unkept(const tracker_report_opts *opts, size_t *len)
{
    tracker_snapshot *snap = tracker_snapshot_take();
    char *text = snap ? tracker_report(snap, NULL, opts, len) : NULL;
    tracker_snapshot_free(snap);
    return text;
}

/* The tracker's report says "differences since capture N-1" (its own
 * baselines only ever diff from the previous one): name the capture this one
 * was really compared to. Text: in place (the number never gets longer);
 * JSON: "since":N added after "mode":"diff". Left as it is if out of memory. */
static char *name_since(char *text, size_t *len, tracker_format format, int no, int since)
{
    char from[64], to[64], *at;
    if (format == TRACKER_FORMAT_TEXT) {
        snprintf(from, sizeof from, ": differences since capture %d (", no - 1);
        snprintf(to, sizeof to, ": differences since capture %d (", since);
    } else if (format == TRACKER_FORMAT_JSON) {
        snprintf(from, sizeof from, "\"mode\":\"diff\",");
        snprintf(to, sizeof to, "\"mode\":\"diff\",\"since\":%d,", since);
    } else {
        return text; /* folded stacks carry no header */
    }
    size_t lf = strlen(from), lt = strlen(to);
    if (lt > lf) {
        char *more = realloc(text, *len + (lt - lf) + 1);
        if (!more) return text;
        text = more;
    }
    if (!(at = strstr(text, from))) return text;
    memmove(at + lt, at + lf, *len - (size_t)(at - text) - lf + 1);
    memcpy(at, to, lt);
    *len = *len + lt - lf;
    return text;
}

/* Take capture number s->reports + 1 of series s, compared to capture since
 * (0: absolute; -1: the default rule of capture.h). Returns the report, NULL
 * when out of memory, or NULL with *bad set when since names no kept capture. */
static char *series_report(capture_series *s, int since, const tracker_report_opts *opts, size_t *len,
                           char *bad, size_t badlen)
{
    char *text = NULL;
    tracker_report_opts o = *opts;
    pthread_mutex_lock(&s->lock);
    const kept_capture *base = series_get(s, s->base);
    int moves = !base || (base->key == o.key && base->frames == o.frames);
    if (since < 0) {
        /* re-grouped: the last plain capture's diff again, or the growth since it when it was absolute */
        since = !base ? 0 : moves || !base->since ? base->no : base->since;
        if (since && !series_get(s, since)) since = base->no; /* that one is gone: the base itself */
    } else if (since > s->reports) {
        snprintf(bad, badlen, "since: capture %d has not been taken yet (the last is %d)", since, s->reports);
        goto done;
    } else if (since > 0 && !series_get(s, since)) {
        snprintf(bad, badlen, "since: capture %d is no longer kept (the last %d are: %d..%d)", since, CAPTURE_KEPT,
                 s->reports - CAPTURE_KEPT + 1, s->reports);
        goto done;
    }
    tracker_snapshot *snap = tracker_snapshot_take();
    if (!snap) goto done;
    tracker_snapshot_read_rss(snap); /* kept with it: a later capture compares RSS growth with the heap's */
    o.capture_no = s->reports + 1;
    text = tracker_report(snap, since ? series_get(s, since)->snap : NULL, &o, len);
    if (!text) {
        tracker_snapshot_free(snap);
        goto done;
    }
    if (since) text = name_since(text, len, o.format, o.capture_no, since);
    kept_capture *k = &s->kept[(o.capture_no - 1) % CAPTURE_KEPT];
    tracker_snapshot_free(k->snap);
    *k = (kept_capture){ .no = o.capture_no, .snap = snap, .key = o.key, .frames = o.frames, .since = since };
    s->reports = o.capture_no;
    if (moves) s->base = o.capture_no;
done:
    pthread_mutex_unlock(&s->lock);
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
    capture_series *b = NULL;
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
        char bad[160] = "";
        body = series_report(b, w.q.since, &w.q.opts, &len, bad, sizeof bad);
        if (body == NULL && bad[0])
            return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "bad /capture query: %s", bad);
    }
    if (body == NULL)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory while taking the capture (see rss_kb in /stats)");
    return http_reply(conn, MHD_HTTP_OK, w.q.opts.format == TRACKER_FORMAT_JSON ? HTTP_REPLY_JSON : HTTP_REPLY_TEXT, body,
                      len, MHD_RESPMEM_MUST_FREE);
}

void capture_shutdown(void)
{
    series_clear(&baselines.plain);
    for (size_t i = 0; i < CAPTURE_BASELINES_MAX; i++)
        if (baselines.named[i].name[0]) series_clear(&baselines.named[i].s);
}
