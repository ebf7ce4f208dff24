/* exercise_export.c - exercise 9: GET / starts an export of the user's data in the background and answers at once. */
/*
 * One of the workshop's exercises (docs/exercises/9.md). Its memory problem
 * is deliberate; the answer is in docs/solutions.md: do not read on if you
 * are doing the exercise.
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

#define EXPORT_CHUNK 4096 /* the export is written in chunks of this size, from the stack */

static struct {
    pthread_mutex_t lock;       /* guards the fields below */
    unsigned long started;      /* exports started */
    unsigned long done;         /* exports finished */
    unsigned long checksum;     /* of every export, as the archive would see it */
} exports = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Export the profile of user (uintptr_t) arg: each chunk is built on this
 * thread's stack, the archive sees its checksum. */
static void *export_run(void *arg)
{
    const user_entry *u = user_directory_get((uint32_t)(uintptr_t)arg);
    char chunk[EXPORT_CHUNK];
    unsigned long sum = 0;
    for (size_t off = 0; off < sizeof chunk; off += u->bio_len) {
        size_t n = sizeof chunk - off < u->bio_len ? sizeof chunk - off : u->bio_len;
        memcpy(chunk + off, u->bio, n);
    }
    for (size_t i = 0; i < sizeof chunk; i++)
        sum = sum * 31 + (unsigned char)chunk[i];
    pthread_mutex_lock(&exports.lock);
    exports.done++;
    exports.checksum ^= sum;
    pthread_mutex_unlock(&exports.lock);
    return NULL;
}

enum MHD_Result exercise_export(struct MHD_Connection *conn)
{
    char err[128], body[96];
    pthread_t t;
    uint32_t id;
    int n;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    /* The export runs on its own thread so that the answer does not wait for it. */
    if (pthread_create(&t, NULL, export_run, (void *)(uintptr_t)id) != 0) /* EXERCISE-SITE */
        return http_reply_reason(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot start the export now");
    pthread_mutex_lock(&exports.lock);
    exports.started++;
    pthread_mutex_unlock(&exports.lock);
    n = snprintf(body, sizeof body, "export of user%-10u started\n", (unsigned)id);
    stats_count_request();
    return exercise_reply(conn, body, (size_t)n);
}
