/* retention_http.c - GET /retention: validates ?format= and ?top=, runs one retention scan and sends its report. */
#include "retention_http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../decimal.h"
#include "http_reply.h"
#include "tracker.h"

#define RETENTION_TIMEOUT_S 60.0 /* a scan that takes longer is stopped and said so */

typedef struct ret_query {
    unsigned long top;
    int json;
    unsigned seen; /* http_query_param */
    char err[160];
} ret_query;

static enum MHD_Result walk_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    static const char *const names[] = { "top", "format" };
    ret_query *q = cls;
    char shown[48];

    (void)kind;
    int i = http_query_param(key, names, 2, &q->seen, q->err, sizeof q->err);
    if (i < 0) {
        /* the reason is in q->err */
    } else if (i == 0) {
        if (value == NULL || decimal_parse(value, RETENTION_TOP_MAX, &q->top) != 0 || q->top < 1 ||
            q->top > RETENTION_TOP_MAX)
            snprintf(q->err, sizeof q->err, "top: '%s' is not a whole number from 1 to %d",
                     http_printable(value, shown, sizeof shown), RETENTION_TOP_MAX);
    } else {
        if (value != NULL && strcmp(value, "json") == 0)
            q->json = 1;
        else if (value == NULL || strcmp(value, "text") != 0)
            snprintf(q->err, sizeof q->err, "format: '%s' is not text or json",
                     http_printable(value, shown, sizeof shown));
    }
    return q->err[0] ? MHD_NO : MHD_YES;
}

/* One scan at a time: each is a copy of the process. */
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;

enum MHD_Result retention_http_handle(struct MHD_Connection *conn)
{
    ret_query q = { .top = 10 };
    enum MHD_Result off;
    size_t len = 0;

    if (http_reply_tracker_off(conn, &off))
        return off;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, walk_arg, &q);
    if (q.err[0])
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "bad /retention query: %s", q.err);
    pthread_mutex_lock(&scan_lock);
    tracker_retention *r = tracker_retention_scan(getenv("TRACKER_SYSTEM"), RETENTION_TIMEOUT_S, NULL);
    pthread_mutex_unlock(&scan_lock);
    char *body = r ? tracker_retention_format(r, (int)q.top, q.json, &len) : NULL;
    tracker_retention_free(r);
    if (body == NULL)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory while making the retention report");
    return http_reply(conn, MHD_HTTP_OK, q.json ? HTTP_REPLY_JSON : HTTP_REPLY_TEXT, body, len,
                      MHD_RESPMEM_MUST_FREE);
}
