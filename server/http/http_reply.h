/* http_reply.h - one call to create, queue and release a libmicrohttpd response. */
#ifndef HTTP_REPLY_H
#define HTTP_REPLY_H

#include <stddef.h>
#include <microhttpd.h>

#define HTTP_REPLY_TEXT "text/plain; charset=utf-8" /* one-line reasons and hello bodies */
#define HTTP_REPLY_JSON "application/json"          /* /stats and /capture?format=json */

/* Queue a response with status, Content-Type ctype (not NULL) and body[0..len) on conn.
 * mode says who owns body, as for MHD_create_response_from_buffer:
 * MHD_RESPMEM_PERSISTENT for literals, MUST_COPY for stack buffers,
 * MUST_FREE for malloc'ed bodies (freed by MHD after sending). Returns what
 * MHD_queue_response returns; MHD_NO (the connection is then closed) when
 * the response cannot be created, in which case a MUST_FREE body is freed
 * here so it never leaks by accident. */
enum MHD_Result http_reply(struct MHD_Connection *conn, unsigned int status,
                           const char *ctype, const char *body, size_t len,
                           enum MHD_ResponseMemoryMode mode);

/* Same as http_reply, plus one extra header (e.g. "Allow", "GET, HEAD");
 * hname NULL adds none. */
enum MHD_Result http_reply_header(struct MHD_Connection *conn, unsigned int status,
                                  const char *ctype, const char *body, size_t len,
                                  enum MHD_ResponseMemoryMode mode,
                                  const char *hname, const char *hvalue);

/* Queue a one-line text/plain reason, formatted printf-style; a newline is
 * appended. Longer than 511 bytes is truncated. hname NULL adds no header
 * (405 adds "Allow"). Returns as http_reply. */
enum MHD_Result http_reply_reason_header(struct MHD_Connection *conn, unsigned int status,
                                         const char *hname, const char *hvalue,
                                         const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The same without an extra header: the common case. */
#define http_reply_reason(conn, status, ...) \
    http_reply_reason_header((conn), (status), NULL, NULL, __VA_ARGS__)

/* For the endpoints that read the tracker (/capture, /debug/pprof/heap):
 * when it cannot answer (a build without allocation hooks, or
 * --no-tracker), queue 503 with the reason, store what MHD_queue_response
 * returned in *ret and return 1; return 0 (nothing queued) when it is on. */
int http_reply_tracker_off(struct MHD_Connection *conn, enum MHD_Result *ret);

/* Copy s into buf (size len >= 8) for echoing in a one-line reason: at most
 * 40 characters, anything but printable ASCII shown as '?', "..." appended
 * when cut. s NULL gives "". Returns buf. */
const char *http_printable(const char *s, char *buf, size_t len);

/* A query parameter name checked against the endpoint's names[0..n) (at
 * most 32): its index, marked in *seen; -1 and a one-line reason in err
 * when it is unknown (the known ones listed) or given more than once. */
int http_query_param(const char *name, const char *const *names, int n, unsigned *seen, char *err,
                     size_t errlen);

#endif /* HTTP_REPLY_H */
