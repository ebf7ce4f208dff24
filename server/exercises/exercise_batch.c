/* exercise_batch.c - exercise 8: GET / records an audit event in the current batch; a full batch goes to the writer. */
/*
 * One of the workshop's exercises (docs/exercises/8.md). Its memory problem
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

#define BATCH_EVENTS 8    /* events per batch */
#define EVENT_BYTES 12000 /* one event's text, with room for its details */
#define WRITTEN_KEEP 16   /* batches the writer keeps for a retry */

typedef struct batch {
    char header[64];                       /* "batch opened at ..." */
    char events[BATCH_EVENTS][EVENT_BYTES];
    unsigned n;                            /* events in it */
} batch;

static struct {
    pthread_mutex_t lock;          /* guards the fields below */
    batch *current;                /* the batch events go to; NULL before the first */
    batch *written[WRITTEN_KEEP];  /* the last full batches handed to the writer, a ring */
    unsigned next_written;
    unsigned long batches;
} audit = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* A new empty batch, its header stamped. Made outside the lock: it takes a
 * while (the clock, the formatting, the zeroed pages), and every request
 * would wait for it. */
static batch *batch_open(void)
{
    batch *b = calloc(1, sizeof *b); /* EXERCISE-SITE */
    struct timespec now;
    struct tm tm;
    if (b == NULL)
        return NULL;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(b->header, sizeof b->header, "batch opened at %Y-%m-%dT%H:%M:%SZ", &tm);
    return b;
}

/* Hand a full batch to the writer (under the lock): the writer keeps the
 * last WRITTEN_KEEP for a retry and frees the oldest. */
static void batch_write(batch *b)
{
    free(audit.written[audit.next_written]);
    audit.written[audit.next_written] = b;
    audit.next_written = (audit.next_written + 1) % WRITTEN_KEEP;
    audit.batches++;
}

/* Record one event. Returns 0, or -1 when memory ran out. */
static int audit_record(const char *event)
{
    pthread_mutex_lock(&audit.lock);
    batch *b = audit.current;
    int full = b == NULL || b->n == BATCH_EVENTS;
    pthread_mutex_unlock(&audit.lock);

    if (full) {
        batch *fresh = batch_open();
        if (fresh == NULL)
            return -1;
        pthread_mutex_lock(&audit.lock);
        if (audit.current == b) { /* still the full one: replace it */
            if (b != NULL)
                batch_write(b);
            audit.current = fresh;
        }
        /* else another request replaced it meanwhile: use theirs */
        b = audit.current;
    } else {
        pthread_mutex_lock(&audit.lock);
        b = audit.current;
    }
    if (b->n < BATCH_EVENTS)
        snprintf(b->events[b->n++], EVENT_BYTES, "%s", event);
    pthread_mutex_unlock(&audit.lock);
    return 0;
}

enum MHD_Result exercise_batch(struct MHD_Connection *conn)
{
    char err[128], event[EVENT_BYTES], body[96];
    uint32_t id;
    int n;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    snprintf(event, sizeof event, "GET / user%u", (unsigned)id);
    if (audit_record(event) != 0)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    n = snprintf(body, sizeof body, "hello user%-10u (audited)\n", (unsigned)id);
    stats_count_request();
    return exercise_reply(conn, body, (size_t)n);
}
