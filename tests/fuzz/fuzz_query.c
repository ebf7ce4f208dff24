/* fuzz_query.c - libFuzzer target: server/http/capture.c's capture_parse_query on query strings split from the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/http/capture.h"

/*
 * The input is a query string as libmicrohttpd hands it over, already split:
 * parameters separated by '&', name and value by the first '=' (a parameter
 * without '=' has a NULL value, as MHD reports "?top"). The first byte picks
 * the size of the error buffer (1..160), to exercise truncation.
 *
 * Properties checked on every input (abort() = a finding):
 *  - success leaves top in 1..CAPTURE_TOP_MAX, frames in 1..TRACKER_MAX_FRAMES
 *    after capture_query_finish, a known key, json 0 or 1;
 *  - failure leaves a reason that is NUL-terminated inside the buffer, one
 *    line, printable ASCII, and non-empty whenever the buffer has room;
 *  - a parameter is never accepted twice.
 */

#define MAX_PARAMS 64
#define ERR_MAX 160

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_query: property violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy, *p, *end;
    char err[ERR_MAX + 1];
    size_t errlen;
    capture_query q;
    int rc = 0, nparams = 0;

    if (size == 0)
        return 0;
    errlen = 1 + data[0] % ERR_MAX;
    copy = malloc(size); /* data[1..] as a C string (an embedded NUL ends it, as in MHD) */
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';

    capture_query_init(&q);
    for (p = copy; rc == 0 && nparams < MAX_PARAMS; p = end + 1) {
        char *eq;
        unsigned seen_before = q.seen;

        end = strchr(p, '&');
        if (end != NULL)
            *end = '\0';
        eq = strchr(p, '=');
        if (eq != NULL)
            *eq = '\0';
        memset(err, 'X', sizeof err); /* a missing terminator shows up below */
        err[errlen] = '\0';
        rc = capture_parse_query(p, eq ? eq + 1 : NULL, &q, err, errlen);
        nparams++;
        if (rc != 0) {
            size_t n = strnlen(err, errlen);
            require(rc == -1, "returns 0 or -1");
            require(n < errlen, "reason NUL-terminated inside errlen");
            require(errlen == 1 || n > 0, "reason non-empty when there is room");
            for (size_t i = 0; i < n; i++)
                require(err[i] >= 0x20 && err[i] < 0x7f, "reason is one printable line");
        } else {
            require(q.seen != seen_before, "an accepted parameter is marked seen");
        }
        if (end == NULL)
            break;
    }
    if (rc == 0) {
        capture_query_finish(&q);
        require(q.opts.top >= 1 && q.opts.top <= CAPTURE_TOP_MAX, "top in 1..CAPTURE_TOP_MAX");
        require(q.opts.frames >= 1 && q.opts.frames <= TRACKER_MAX_FRAMES, "frames in 1..TRACKER_MAX_FRAMES");
        require(q.opts.key == TRACKER_KEY_LINENO || q.opts.key == TRACKER_KEY_TRACEBACK ||
                    q.opts.key == TRACKER_KEY_FILENAME,
                "key is a known key");
        require(q.opts.format == TRACKER_FORMAT_TEXT || q.opts.format == TRACKER_FORMAT_JSON ||
                q.opts.format == TRACKER_FORMAT_FOLDED, "format is text, json or folded");
    }
    free(copy);
    return 0;
}
