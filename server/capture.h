/* capture.h - GET /capture: query parsing and the tracker report, diffed against the previous capture. */
#ifndef CAPTURE_H
#define CAPTURE_H

#include <stddef.h>
#include <microhttpd.h>

#include "../tracker/tracker.h"

#define CAPTURE_TOP_MAX 1000 /* largest ?top= accepted */

/* The parsed query of one /capture request. */
typedef struct capture_query {
    /* The report's options, as tracker_report takes them: top (groups shown,
     * 1..CAPTURE_TOP_MAX, default 10), key (default TRACKER_KEY_LINENO),
     * frames (1..TRACKER_MAX_FRAMES; 0 = not given yet, default set by
     * finish), format (text, the default, json or folded). */
    tracker_report_opts opts;
    unsigned seen;   /* one bit per parameter already given, to reject repeats */
} capture_query;

/* Reset q to the defaults, nothing seen. */
void capture_query_init(capture_query *q);

/* Apply one query parameter name=value to q (value NULL when the query had
 * "name" without '='). Pure: no I/O, no allocation, no global state.
 * Returns 0, or -1 with a one-line reason in err (no newline) for an empty,
 * non-numeric, negative, zero or out-of-range value, an unknown key or
 * format, an unknown parameter name, or a parameter given twice; q is then
 * unspecified. */
int capture_parse_query(const char *name, const char *value, capture_query *q, char *err,
                        size_t errlen);

/* Fill in what depends on other parameters (frames defaults to 1 for lineno
 * and filename, TRACKER_MAX_FRAMES for traceback and format=folded). Never fails. */
void capture_query_finish(capture_query *q);

/* Answer GET /capture on conn: 200 with the report (text/plain or JSON),
 * 400 for a bad query, 503 when the tracker is off, 500 when out of memory.
 * The first successful capture is absolute and becomes the baseline; each
 * later one is the difference from the previous one. Thread-safe (captures
 * are serialized). Returns what MHD_queue_response returns. */
enum MHD_Result capture_handle(struct MHD_Connection *conn);

/* Free the kept baseline snapshot (at exit). */
void capture_shutdown(void);

#endif /* CAPTURE_H */
