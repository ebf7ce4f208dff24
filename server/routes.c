/* routes.c - dispatches each HTTP request by method and path; GET / is where the leak happens. */
#include "routes.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/capture.h"
#include "http/dashboard.h"
#include "decimal.h"
#include "exercises/exercise.h"
#include "fetch_user_data.h"
#include "http/http_reply.h"
#include "analysis/leaks.h"
#include "http/metrics.h"
#include "http/pprof_http.h"
#include "profile_cache.h"
#include "http/retention_http.h"
#include "http/stats.h"
#include "user_directory.h"
#include "user_pick.h"

/* ------------------------------------------------------------ GET / */

/* THE THIRD LESSON (--leak=response): the reply is sent as http_reply sends
 * it, minus its last step, MHD_destroy_response. libmicrohttpd drops its
 * own reference when the reply is sent; ours is never dropped, so the
 * response (its struct, the copy of the body, the header) stays allocated
 * inside the library, ~250 bytes a request. The tracker names this line,
 * not libmicrohttpd: the site is the program's own line that called into it. */
static enum MHD_Result reply_keeping_response(struct MHD_Connection *conn, const char *body, size_t len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY); /* LEAK-RESPONSE */
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, HTTP_REPLY_TEXT);
    return MHD_queue_response(conn, MHD_HTTP_OK, response); /* and no MHD_destroy_response */
}

static enum MHD_Result handle_hello(struct MHD_Connection *conn, const routes_config *cfg)
{
    char err[128], body[64];
    char *record;
    uint32_t id;
    int n, leaks = cfg->leak == ROUTES_LEAK_DROP || cfg->leak == ROUTES_LEAK_CACHE;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);

    /* The cap keeps a forgotten leaky server from eating the machine. */
    if (leaks && !stats_try_leak(USER_RECORD_BYTES)) {
        stats_count_request();
        return http_reply_reason(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "leak cap of %u MiB reached; restart the server (or raise --leak-cap-mb)",
                                 cfg->leak_cap_mb);
    }

    record = fetch_user_data(id);
    if (record == NULL) {
        if (leaks)
            stats_cancel_leak(USER_RECORD_BYTES);
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory building the profile of user %u",
                                 (unsigned)id);
    }

    /* Answer from the record: its first line is "user<ID>". */
    n = snprintf(body, sizeof body, "hello %.*s\n", (int)strcspn(record, "\n"), record);

    switch (cfg->leak) {
    case ROUTES_LEAK_NONE:
    case ROUTES_LEAK_RESPONSE: /* this kind leaks the reply instead (reply_keeping_response) */
        free(record); /* THE FIX: the one line leaky mode does not run */
        break;
    case ROUTES_LEAK_CACHE:
        /* THE SECOND LESSON (--leak=cache): kept in a cache that never
         * evicts. Still reachable, so exit-time checkers say nothing; RSS
         * grows all the same (see profile_cache.c). */
        if (profile_cache_keep(record) != 0) {
            free(record);
            stats_cancel_leak(USER_RECORD_BYTES);
            return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                     "out of memory growing the profile cache");
        }
        break;
    case ROUTES_LEAK_DROP:
        /* The default: `record` is simply dropped here, never freed: the
         * deliberate leak of this lab (allocated at LEAK-SITE in fetch_user_data.c). */
        break;
    }

    if (routes_test_hook) /* only in the tests' bin/server-planted */
        routes_test_hook();
    stats_count_request();
    if (cfg->leak == ROUTES_LEAK_RESPONSE)
        return reply_keeping_response(conn, body, (size_t)n);
    return http_reply(conn, MHD_HTTP_OK, HTTP_REPLY_TEXT, body, (size_t)n,
                      MHD_RESPMEM_MUST_COPY);
}

/* ------------------------------------------------------------ GET /stats */

static enum MHD_Result handle_stats(struct MHD_Connection *conn)
{
    char body[2048];
    int n = stats_format_json(body, sizeof body);

    if (n < 0)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "stats line did not fit its buffer");
    return http_reply(conn, MHD_HTTP_OK, HTTP_REPLY_JSON, body, (size_t)n,
                      MHD_RESPMEM_MUST_COPY);
}

/* ------------------------------------------------------------ dispatch */

static int first_call_marker; /* *req_cls points here after the first call of a request */

enum MHD_Result routes_handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **req_cls)
{
    const routes_config *cfg = cls;
    char shown[48], shown2[48];

    (void)version;
    (void)upload_data;

    /* First call: only the headers are in. Refuse other methods now, before
     * reading any body; for GET/HEAD come back for the real work. */
    if (*req_cls == NULL) {
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
            strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
            return http_reply_reason_header(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                            MHD_HTTP_HEADER_ALLOW, "GET, HEAD",
                                            "method %s not allowed on %s; use GET or HEAD",
                                            http_printable(method, shown, sizeof shown),
                                            http_printable(url, shown2, sizeof shown2));
        }
        *req_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) { /* a GET with a body: read and ignore it */
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (strcmp(url, "/") == 0)
        return cfg->exercise ? exercise_handle(cfg->exercise, conn) : handle_hello(conn, cfg);
    if (strcmp(url, "/stats") == 0)
        return handle_stats(conn);
    if (strcmp(url, "/capture") == 0)
        return capture_handle(conn, method);
    if (strcmp(url, "/leaks") == 0)
        return leaks_handle(conn);
    if (strcmp(url, METRICS_PATH) == 0)
        return metrics_handle(conn);
    if (strcmp(url, PPROF_HTTP_PATH) == 0)
        return pprof_http_heap(conn);
    if (strcmp(url, PPROF_HTTP_ALLOCS_PATH) == 0)
        return pprof_http_allocs(conn);
    if (strcmp(url, RETENTION_HTTP_PATH) == 0)
        return retention_http_handle(conn);
    if (dashboard_match(url))
        return dashboard_handle(conn, url);
    return http_reply_reason(conn, MHD_HTTP_NOT_FOUND,
                             "no such path: %s (try /, /stats, /capture, /leaks or /dashboard)",
                             http_printable(url, shown, sizeof shown));
}

/* ------------------------------------------------------------ URL decoding */

/* Value of hex digit c, or -1 (also for the NUL that ends the string). */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t routes_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    char *r = s, *w = s;
    int hi, lo;

    (void)cls;
    (void)conn;
    while (*r != '\0') {
        if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++; /* a plain byte, a stray '%', or "%00" kept as is */
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}
