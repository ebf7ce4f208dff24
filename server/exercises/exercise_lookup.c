/* exercise_lookup.c - exercise 3: GET /?user=ID looks a user up, keeping a copy of the request's arguments while it works. */
/*
 * One of the workshop's exercises (docs/exercises/3.md). Its memory problem
 * is deliberate; the answer is in docs/solutions.md: do not read on if you
 * are doing the exercise.
 */
#include "exercise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../http/http_reply.h"
#include "../user_pick.h"
#include "../http/stats.h"
#include "../user_directory.h"

#define LOOKUP_ARGS_BYTES 8192 /* room for a copy of the query arguments */

/* One request's working state. */
typedef struct lookup {
    char args[LOOKUP_ARGS_BYTES]; /* "name=value&..." of the query, cut at the end */
    size_t len;                   /* bytes used in args */
} lookup;

/* MHD_KeyValueIterator: append "key=value&" to the lookup in cls. */
static enum MHD_Result copy_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    lookup *l = cls;
    int n;

    (void)kind;
    n = snprintf(l->args + l->len, sizeof l->args - l->len, "%s=%s&", key, value ? value : "");
    if (n > 0)
        l->len = l->len + (size_t)n < sizeof l->args ? l->len + (size_t)n : sizeof l->args - 1;
    return MHD_YES;
}

enum MHD_Result exercise_lookup(struct MHD_Connection *conn)
{
    char err[128], body[96];
    lookup *l;
    uint32_t id;
    int n;

    l = malloc(sizeof *l); /* EXERCISE-SITE */
    if (l == NULL)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    memset(l, 0, sizeof *l);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, copy_arg, l);

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);

    n = snprintf(body, sizeof body, "hello user%u (asked: %.40s)\n", (unsigned)id,
                 l->len ? l->args : "-");
    free(l);
    stats_count_request();
    return exercise_reply(conn, body, (size_t)n);
}
