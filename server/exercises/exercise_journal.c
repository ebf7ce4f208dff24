/* exercise_journal.c - exercise 1: GET / greets the user and keeps an audit journal of every answer in memory. */
/*
 * One of the workshop's exercises (docs/exercises/1.md). Its memory problem
 * is deliberate; the answer is in docs/solutions.md: do not read on if you
 * are doing the exercise.
 */
#include "exercise.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../http/http_reply.h"
#include "../user_pick.h"
#include "../http/stats.h"
#include "../user_directory.h"

#define JOURNAL_FIRST_CAP 4096 /* bytes of the journal's first buffer */

/* ------------------------------------------------------------ module state */

static struct {
    pthread_mutex_t lock; /* guards the fields below */
    char *text;           /* the journal: one line per answer, NUL-terminated */
    size_t len;           /* bytes used in text, without the NUL */
    size_t cap;           /* bytes allocated for text; doubles when full */
} journal = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 };

/* Append line[0..n) to the journal. Returns 0, or -1 when memory ran out
 * (the journal is then unchanged). */
static int journal_append(const char *line, size_t n)
{
    int rc = -1;

    pthread_mutex_lock(&journal.lock);
    if (journal.len + n + 1 > journal.cap) {
        size_t cap = journal.cap ? journal.cap : JOURNAL_FIRST_CAP;
        char *grown;

        while (cap < journal.len + n + 1)
            cap *= 2;
        grown = realloc(journal.text, cap); /* EXERCISE-SITE */
        if (grown == NULL)
            goto done;
        journal.text = grown;
        journal.cap = cap;
    }
    memcpy(journal.text + journal.len, line, n);
    journal.len += n;
    journal.text[journal.len] = '\0';
    rc = 0;
done:
    pthread_mutex_unlock(&journal.lock);
    return rc;
}

/* ------------------------------------------------------------ GET / */

enum MHD_Result exercise_journal(struct MHD_Connection *conn)
{
    char err[128], body[96], line[1536];
    const user_entry *u;
    uint32_t id;
    int n, len;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    u = user_directory_get(id);

    /* What was answered, to whom, for the audit. */
    len = snprintf(line, sizeof line, "%ld user%u %s <%s> %s, %s: %s\n", (long)time(NULL),
                   (unsigned)u->id, u->name, u->email, u->city, u->company, u->bio);
    if (len < 0 || (size_t)len >= sizeof line)
        len = (int)sizeof line - 1;
    if (journal_append(line, (size_t)len) != 0)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 "out of memory writing the journal");

    n = snprintf(body, sizeof body, "hello user%u\n", (unsigned)u->id);
    stats_count_request();
    return exercise_reply(conn, body, (size_t)n);
}
