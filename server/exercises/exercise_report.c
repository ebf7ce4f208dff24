/* exercise_report.c - exercise 5: GET / answers a summary of the user's activity report, built row by row. */
/*
 * One of the workshop's exercises (docs/exercises/5.md). Its memory
 * behaviour is deliberate; the answer is in docs/solutions.md: do not read
 * on if you are doing the exercise.
 */
#include "exercise.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../http/http_reply.h"
#include "../user_pick.h"
#include "../http/stats.h"
#include "../user_directory.h"

#define REPORT_ROW_BYTES (64 * 1024) /* one row of the report, every byte written */
#define REPORT_ROWS_MIN 16           /* rows of a report: 16..64, by user */
#define REPORT_ROWS_SPREAD 49
#define RECENT_SLOTS 256             /* summaries kept for the "recent reports" list */

/* ------------------------------------------------------------ module state */

static struct {
    pthread_mutex_t lock;       /* guards the fields below */
    char *recent[RECENT_SLOTS]; /* the latest summaries, a ring; NULL until filled */
    size_t next;                /* the slot the next summary takes (the oldest) */
} reports = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Keep summary (malloc'ed) in the ring of recent ones, freeing the oldest. */
static void recent_keep(char *summary)
{
    pthread_mutex_lock(&reports.lock);
    free(reports.recent[reports.next]);
    reports.recent[reports.next] = summary;
    reports.next = (reports.next + 1) % RECENT_SLOTS;
    pthread_mutex_unlock(&reports.lock);
}

/* ------------------------------------------------------------ GET / */

enum MHD_Result exercise_report(struct MHD_Connection *conn)
{
    char err[128], body[128];
    char *rows[REPORT_ROWS_MIN + REPORT_ROWS_SPREAD];
    char *summary;
    const user_entry *u;
    unsigned long checksum = 0;
    size_t nrows, i, j, len;
    uint32_t id;
    int n;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    u = user_directory_get(id);
    nrows = REPORT_ROWS_MIN + id % REPORT_ROWS_SPREAD;

    /* Build the report: one block per row, each filled from the profile. */
    for (i = 0; i < nrows; i++) {
        rows[i] = malloc(REPORT_ROW_BYTES); /* EXERCISE-SITE */
        if (rows[i] == NULL)
            break;
        for (j = 0; j < REPORT_ROW_BYTES; j += len) {
            len = REPORT_ROW_BYTES - j < u->bio_len ? REPORT_ROW_BYTES - j : u->bio_len;
            memcpy(rows[i] + j, u->bio, len);
        }
        checksum = checksum * 31 + (unsigned char)rows[i][(i * 4099) % REPORT_ROW_BYTES];
    }
    nrows = i;

    /* The summary outlives the request, in the list of recent reports. */
    n = snprintf(body, sizeof body, "report of user%u: %2zu rows, checksum %08lx\n",
                 (unsigned)id, nrows, checksum & 0xffffffffUL);
    summary = strdup(body);
    if (summary != NULL)
        recent_keep(summary);

    for (i = 0; i < nrows; i++)
        free(rows[i]);
    stats_count_request();
    return exercise_reply(conn, body, (size_t)n);
}
