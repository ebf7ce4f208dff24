/* exercise_badges.c - exercise 4: GET / answers the user's badge, rendered once and kept in a cache. */
/*
 * One of the workshop's exercises (docs/exercises/4.md). Its memory
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

#define BADGE_BYTES 8192      /* one rendered badge, every byte written */
#define BADGE_CACHE_SLOTS 4096 /* badges kept; the oldest goes when a new one comes */

/* One rendered badge. */
typedef struct badge {
    uint32_t user; /* whose badge */
    char art[BADGE_BYTES]; /* the picture, text lines; NUL-terminated */
} badge;

/* ------------------------------------------------------------ module state */

static struct {
    pthread_mutex_t lock;              /* guards the fields below */
    badge *slot[BADGE_CACHE_SLOTS];    /* a ring: NULL until first filled */
    size_t next;                       /* the slot the next new badge takes (the oldest) */
    badge *by_user[USER_DIRECTORY_USERS + 1]; /* user id -> its badge in the ring, or NULL */
} badges = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Draw u's badge into b: its name and id in a frame, repeated to fill it. */
static void badge_draw(badge *b, const user_entry *u)
{
    size_t len = 0;
    int n;

    b->user = u->id;
    while (len < sizeof b->art - 1) {
        n = snprintf(b->art + len, sizeof b->art - len, "+-- %s, user%u, %s --+\n", u->name,
                     (unsigned)u->id, u->city);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    b->art[sizeof b->art - 1] = '\0';
}

/* The first line of u's badge into out (size outlen), from the cache or
 * drawn now and kept. Returns 0, or -1 when memory ran out. */
static int badge_first_line(const user_entry *u, char *out, size_t outlen)
{
    badge *b;
    int rc = -1;

    pthread_mutex_lock(&badges.lock);
    b = badges.by_user[u->id];
    if (b == NULL) {
        b = malloc(sizeof *b); /* EXERCISE-SITE */
        if (b == NULL)
            goto done;
        badge_draw(b, u);
        if (badges.slot[badges.next] != NULL) { /* the ring is full: the oldest goes */
            badges.by_user[badges.slot[badges.next]->user] = NULL;
            free(badges.slot[badges.next]);
        }
        badges.slot[badges.next] = b;
        badges.next = (badges.next + 1) % BADGE_CACHE_SLOTS;
        badges.by_user[u->id] = b;
    }
    snprintf(out, outlen, "%.*s", (int)strcspn(b->art, "\n"), b->art);
    rc = 0;
done:
    pthread_mutex_unlock(&badges.lock);
    return rc;
}

enum MHD_Result exercise_badges(struct MHD_Connection *conn)
{
    char err[128], line[160], body[96];
    uint32_t id;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    if (badge_first_line(user_directory_get(id), line, sizeof line) != 0)
        return http_reply_reason(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    stats_count_request();
    int n = snprintf(body, sizeof body, "%-80.80s\n", line); /* one length for ab */
    return exercise_reply(conn, body, (size_t)n);
}
