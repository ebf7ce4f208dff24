/* dashboard.h - GET /dashboard: the live page for the workshop screen and its assets, built into the binary. */
#ifndef DASHBOARD_H
#define DASHBOARD_H

#include <microhttpd.h>

/* 1 when url belongs to the dashboard ("/dashboard", "/dashboard/" or
 * "/dashboard/<anything>"), 0 otherwise. Pure. */
int dashboard_match(const char *url);

/* Answer a GET or HEAD of a url for which dashboard_match is 1: 200 with the
 * page (text/html) or one of its assets (JavaScript, CSS), Cache-Control:
 * no-cache; 404 with a one-line reason for an unknown asset. The bodies live
 * in the binary's read-only data and are never copied. Returns what
 * MHD_queue_response returns. */
enum MHD_Result dashboard_handle(struct MHD_Connection *conn, const char *url);

#endif /* DASHBOARD_H */
