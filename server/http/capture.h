/* capture.h - GET /capture: query parsing and the tracker report, diffed against the previous capture. */
#ifndef CAPTURE_H
#define CAPTURE_H

#include <stddef.h>
#include <microhttpd.h>

#include "tracker.h"

#define CAPTURE_TOP_MAX 1000 /* largest ?top= accepted */
#define CAPTURE_BASELINE_NAME_MAX 32 /* ?baseline=NAME: 1..32 of A-Z a-z 0-9 . _ - */
#define CAPTURE_BASELINES_MAX 16     /* named baselines kept at the same time */
#define CAPTURE_BASELINE_IDLE_S 600  /* a name unused this long may be taken over when the table is full */
#define CAPTURE_KEPT 8               /* captures of each baseline kept for ?since=N */

/* The parsed query of one /capture request. */
typedef struct capture_query {
    /* The report's options, as tracker_report takes them: top (groups shown,
     * 1..CAPTURE_TOP_MAX, default 10), key (default TRACKER_KEY_LINENO),
     * frames (1..TRACKER_MAX_FRAMES; 0 = not given yet, default set by
     * finish), format (text, the default, json or folded), system (NULL, the
     * default, or the system= value: a pointer into the request). */
    tracker_report_opts opts;
    unsigned seen;   /* one bit per parameter already given, to reject repeats */
    char baseline[CAPTURE_BASELINE_NAME_MAX + 1]; /* ?baseline=NAME, "" for the default baseline */
    int since;       /* ?since=N: the capture to diff against (0: none, absolute); -1 when not given */
} capture_query;

/* Reset q to the defaults, nothing seen. */
void capture_query_init(capture_query *q);

/* Apply one query parameter name=value to q (value NULL when the query had
 * "name" without '='). Pure: no I/O, no allocation, no global state.
 * Returns 0, or -1 with a one-line reason in err (no newline) for an empty,
 * non-numeric, negative, zero or out-of-range value, an unknown key or
 * format, a baseline name that is empty, longer than
 * CAPTURE_BASELINE_NAME_MAX or not made of A-Z a-z 0-9 . _ -, an unknown
 * parameter name, or a parameter given twice; q is then
 * unspecified. */
int capture_parse_query(const char *name, const char *value, capture_query *q, char *err,
                        size_t errlen);

/* Fill in what depends on other parameters (frames defaults to 1 for lineno
 * and filename, TRACKER_MAX_FRAMES for traceback and format=folded). Never fails. */
void capture_query_finish(capture_query *q);

/* Answer GET or HEAD /capture on conn: 200 with the report (text/plain or
 * JSON), 400 for a bad query, 429 when ?baseline= names a new baseline and
 * CAPTURE_BASELINES_MAX are in use (none idle for CAPTURE_BASELINE_IDLE_S),
 * 503 when the tracker is off, 500 when out of memory.
 * Each baseline (the default one, used without ?baseline=, and each name)
 * counts its own captures and keeps the last CAPTURE_KEPT of them: its first
 * capture is absolute; a later one that groups as the last plain one did
 * (key and frames) is the difference from it and becomes the new baseline;
 * one that groups another way is compared to what that capture was compared
 * to (to that capture itself when it was the absolute first) and moves
 * nothing: ?key=traceback after two plain captures shows the same growth, by
 * stack, and the next plain capture still diffs from the last plain one. ?since=N diffs against capture N (0: absolute; a capture
 * with since= moves the baseline when it groups the same way); 400 when N
 * is not kept.
 * HEAD answers an absolute report and moves no baseline. Thread-safe
 * (captures of one baseline are serialized). Returns what
 * MHD_queue_response returns. */
enum MHD_Result capture_handle(struct MHD_Connection *conn, const char *method);

/* Free the kept baseline snapshots (at exit). */
void capture_shutdown(void);

#endif /* CAPTURE_H */
