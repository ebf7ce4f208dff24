/* metrics.h - GET /metrics: the process, the lab and the tracker in Prometheus' text exposition format 0.0.4. */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <microhttpd.h>

#define METRICS_PATH "/metrics"

/* Write the exposition into buf (len bytes): the standard process_*
 * metrics (as Prometheus' client libraries name them), the lab's counters
 * (leaklab_*) and the tracker's totals (leaklab_tracker_*). Returns its
 * length, or -1 when len is too small (buf is then unspecified). */
int metrics_format(char *buf, size_t len);

/* Answer GET /metrics on conn: 200 text/plain; version=0.0.4 (no query
 * parameters: 400 with a reason for any). Returns what MHD_queue_response
 * returns. */
enum MHD_Result metrics_handle(struct MHD_Connection *conn);

#endif /* METRICS_H */
