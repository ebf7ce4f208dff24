/* pprof_http.h - GET /debug/pprof/heap (and /allocs): the tracker's heap as a gzipped pprof profile, as Go's net/http/pprof serves it. */
#ifndef PPROF_HTTP_H
#define PPROF_HTTP_H

#include <microhttpd.h>

#define PPROF_HTTP_PATH "/debug/pprof/heap"
#define PPROF_HTTP_ALLOCS_PATH "/debug/pprof/allocs" /* the same, alloc_space shown first */
#define PPROF_SECONDS_MAX 60 /* largest ?seconds= accepted */

/* Answer GET /debug/pprof/heap on conn: 200 with a gzipped profile.proto
 * (application/octet-stream, as Go serves it: see tracker/report/pprof.h for its
 * contents). ?seconds=N (1..PPROF_SECONDS_MAX): wait N seconds and answer
 * the difference between the heap before and after, computed here. The
 * wait holds this connection's libmicrohttpd worker thread (new
 * connections go to the others). 400 with a reason for a bad or unknown
 * parameter, 503 when the tracker is off, 500 when out of memory. Returns
 * what MHD_queue_response returns. */
enum MHD_Result pprof_http_heap(struct MHD_Connection *conn);

/* GET /debug/pprof/allocs: the same as pprof_http_heap, with alloc_space as
 * the profile's default sample type (tracker_pprof_allocs), as Go serves it. */
enum MHD_Result pprof_http_allocs(struct MHD_Connection *conn);

#endif /* PPROF_HTTP_H */
