/* exercise_card.c - exercise 2: GET / answers the user's contact card, formatted with asprintf. */
/*
 * One of the workshop's exercises (docs/exercises/2.md). Its memory problem
 * is deliberate; the answer is in docs/solutions.md: do not read on if you
 * are doing the exercise.
 */
#include "exercise.h"

#include <stdio.h>
#include <stdlib.h>

#include "../http/http_reply.h"
#include "../user_pick.h"
#include "../http/stats.h"
#include "../user_directory.h"

/* The card of u, as a malloc'ed string (asprintf); its length in *len.
 * Every field is padded to a fixed width, so all cards have one length
 * (ab counts an answer of another length as a failed request).
 * Returns NULL when memory ran out. */
static char *format_card(const user_entry *u, int *len)
{
    char *card = NULL;

    *len = asprintf(&card, /* EXERCISE-SITE */
                    "user%u\n%-40.40s\n%-60.60s\n%-40.40s %-30.30s\nborn %u, member since %u\n\n%-1000.1000s\n",
                    (unsigned)u->id, u->name, u->email, u->company, u->city,
                    (unsigned)u->born, (unsigned)u->since, u->bio);
    return *len < 0 ? NULL : card;
}

enum MHD_Result exercise_card(struct MHD_Connection *conn)
{
    char err[128];
    char *card;
    uint32_t id;
    int len;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    card = format_card(user_directory_get(id), &len);
    if (card == NULL)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory formatting the card of user %u", (unsigned)id);
    stats_count_request();
    return exercise_reply(conn, card, (size_t)len);
}
