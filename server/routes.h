/* routes.h - the libmicrohttpd access handler: /, /stats, /capture, and the 404/405 answers. */
#ifndef ROUTES_H
#define ROUTES_H

#include <stddef.h>
#include <microhttpd.h>

/* Settings the handler needs; passed as the handler's cls, read-only while serving. */
typedef struct routes_config {
    int fixed;                /* 1 with --fixed: free the record after answering */
    unsigned int leak_cap_mb; /* --leak-cap-mb, for the 503 message (the cap itself is in stats) */
} routes_config;

/* MHD_AccessHandlerCallback for MHD_start_daemon, cls = a routes_config *.
 *   GET|HEAD /         200 "hello user<ID>\n" (?user=ID, 1..user count; without it,
 *                      round-robin over the ids as long as the last one)
 *                      leaks one record in leaky mode; 503 past the leak
 *                      cap; 400 for a bad user
 *   GET|HEAD /stats    200 the JSON line of stats_format_json
 *   GET|HEAD /capture  see capture_handle
 *   other paths 404, other methods 405 (Allow: GET, HEAD), each with a
 *   one-line reason. Each request is handled exactly once (on the call
 *   after the first, once any body has been discarded). */
enum MHD_Result routes_handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **req_cls);

#endif /* ROUTES_H */
