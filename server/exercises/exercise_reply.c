/* exercise_reply.c - the exercises' 200 answer, the same for all under --exercise random (see exercise.h). */
#include "exercise.h"

#include "../http/http_reply.h"

static int plain;                            /* set once at start, before the daemon runs */
static const char plain_body[] = "ok\n";

void exercise_reply_plain(void) { plain = 1; }

enum MHD_Result exercise_reply(struct MHD_Connection *conn, const char *body, size_t len)
{
    if (plain) {
        body = plain_body;
        len = sizeof plain_body - 1;
    }
    return http_reply(conn, MHD_HTTP_OK, HTTP_REPLY_TEXT, body, len, MHD_RESPMEM_MUST_COPY);
}
