/* http_reply.c - the create/queue/destroy dance for libmicrohttpd responses, written once. */
#include "http_reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracker.h"

enum MHD_Result http_reply_header(struct MHD_Connection *conn, unsigned int status,
                                  const char *ctype, const char *body, size_t len,
                                  enum MHD_ResponseMemoryMode mode,
                                  const char *hname, const char *hvalue)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    /* The API takes a non-const pointer for all modes; MHD does not write to it. */
    resp = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (resp == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free((void *)body);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES)
        goto fail;
    if (hname != NULL && MHD_add_response_header(resp, hname, hvalue) != MHD_YES)
        goto fail;
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp); /* MHD keeps its own reference until sent */
    return ret;

fail:
    MHD_destroy_response(resp); /* frees a MUST_FREE body too */
    return MHD_NO;
}

enum MHD_Result http_reply(struct MHD_Connection *conn, unsigned int status,
                           const char *ctype, const char *body, size_t len,
                           enum MHD_ResponseMemoryMode mode)
{
    return http_reply_header(conn, status, ctype, body, len, mode, NULL, NULL);
}

enum MHD_Result http_reply_reason_header(struct MHD_Connection *conn, unsigned int status,
                                         const char *hname, const char *hvalue,
                                         const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf - 1, fmt, ap); /* keep one byte for the newline */
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof buf - 2)
        n = (int)(sizeof buf - 2);
    buf[n++] = '\n';
    buf[n] = '\0';
    return http_reply_header(conn, status, HTTP_REPLY_TEXT, buf, (size_t)n, MHD_RESPMEM_MUST_COPY,
                             hname, hvalue);
}

const char *http_printable(const char *s, char *buf, size_t len)
{
    size_t max = len - 4 < 40 ? len - 4 : 40; /* room for "..." and the NUL */
    size_t i;

    for (i = 0; s != NULL && s[i] != '\0' && i < max; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s != NULL && s[i] != '\0') {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

int http_reply_tracker_off(struct MHD_Connection *conn, enum MHD_Result *ret)
{
    if (!tracker_hooks_linked()) /* bin/server-asan, -plain, -lsan: another tool owns malloc */
        *ret = http_reply_reason(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "tracker is off: this build has no allocation hooks (use bin/server)");
    else if (!tracker_is_active())
        *ret = http_reply_reason(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "tracker is off (server started with --no-tracker)");
    else
        return 0;
    return 1;
}

int http_query_param(const char *name, const char *const *names, int n, unsigned *seen, char *err,
                     size_t errlen)
{
    char shown[48];
    int i = 0;
    while (i < n && strcmp(name, names[i]) != 0) i++;
    if (i == n) {
        int len = snprintf(err, errlen, "unknown parameter '%s' (known:", http_printable(name, shown, sizeof shown));
        for (int k = 0; k < n && len >= 0 && (size_t)len < errlen; k++)
            len += snprintf(err + len, errlen - (size_t)len, "%s %s", k ? "," : "", names[k]);
        if (len >= 0 && (size_t)len < errlen) snprintf(err + len, errlen - (size_t)len, ")");
        return -1;
    }
    if (*seen & (1u << i)) {
        snprintf(err, errlen, "parameter '%s' given more than once", name);
        return -1;
    }
    *seen |= 1u << i;
    return i;
}
