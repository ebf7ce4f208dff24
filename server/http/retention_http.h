/* retention_http.h - GET /retention: which live memory is lost and which is held, and by whom (tracker/report/retention.c). */
#ifndef RETENTION_HTTP_H
#define RETENTION_HTTP_H

#include <microhttpd.h>

#define RETENTION_HTTP_PATH "/retention"
#define RETENTION_TOP_MAX 1000

/* Answer GET /retention on conn: a scan of a copy-on-write snapshot of the
 * server, per site unreachable (lost) and reachable bytes and the owners of
 * the reachable ones, as text or JSON (?format=text|json, ?top=N 1..1000,
 * default 10). 200 with "available": false and the reason when the
 * snapshot cannot be had; 400 for a bad parameter, 503 when the tracker is
 * off, 500 when out of memory. One scan at a time: a second request waits
 * for the first. Returns what MHD_queue_response returns. */
enum MHD_Result retention_http_handle(struct MHD_Connection *conn);

#endif /* RETENTION_HTTP_H */
