/* routes.h - the libmicrohttpd access handler: /, /stats, /capture, and the 404/405 answers. */
#ifndef ROUTES_H
#define ROUTES_H

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

/* What GET / does with the profile record once it has answered (--leak=KIND). */
typedef enum routes_leak_kind {
    ROUTES_LEAK_DROP,  /* drop the pointer, never free: unreachable, "definitely lost" */
    ROUTES_LEAK_CACHE, /* keep it in profile_cache forever: reachable, so exit-time checkers are quiet */
    ROUTES_LEAK_NONE,  /* free it: the fixed server (--fixed) */
    ROUTES_LEAK_RESPONSE /* free it, but never destroy the reply's libmicrohttpd response:
                            the leak is made inside the library, named at the handler's line */
} routes_leak_kind;

/* Settings the handler needs; passed as the handler's cls, read-only while serving. */
typedef struct routes_config {
    routes_leak_kind leak;    /* --leak=drop|cache|none, default drop */
    unsigned int leak_cap_mb; /* --leak-cap-mb, for the 503 message (the cap itself is in stats) */
    unsigned int exercise;    /* --exercise: 1..EXERCISE_COUNT serves GET / by that exercise, 0 = the lab's leak */
} routes_config;

/* MHD_AccessHandlerCallback for MHD_start_daemon, cls = a routes_config *.
 *   GET|HEAD /         200 "hello user<ID>\n" (?user=ID, 1..user count; without it,
 *                      round-robin over the ids as long as the last one)
 *                      leaks one record per request unless leak is
 *                      ROUTES_LEAK_NONE (dropped, or kept in profile_cache);
 *                      503 past the leak cap; 400 for a bad user
 *   GET|HEAD /stats    200 the JSON line of stats_format_json
 *   GET|HEAD /capture  see capture_handle
 *   GET|HEAD /metrics  Prometheus text, see metrics_handle
 *   GET|HEAD /debug/pprof/heap, /debug/pprof/allocs  see pprof_http.h
 *   GET|HEAD /dashboard[/...]  the live page and its assets, see dashboard_handle
 *   other paths 404, other methods 405 (Allow: GET, HEAD), each with a
 *   one-line reason. Each request is handled exactly once (on the call
 *   after the first, once any body has been discarded). */
enum MHD_Result routes_handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **req_cls);

/* Test builds only (tests/leaks/plant.c, linked into bin/server-planted):
 * called once per GET / answered with 200. Weak and undefined in bin/server,
 * where it is never called. */
void routes_test_hook(void) __attribute__((weak));

/* MHD_UnescapeCallback for MHD_OPTION_UNESCAPE_CALLBACK (cls unused): decodes
 * %XX in the path and in query names and values in place, as libmicrohttpd's
 * own unescaper does, except %00, kept as the three characters "%00": a NUL
 * would silently cut the string short ("/%00" would be routed as "/",
 * "?top=5%00" read as 5). Returns the new length. */
size_t routes_unescape(void *cls, struct MHD_Connection *conn, char *s);

#endif /* ROUTES_H */
