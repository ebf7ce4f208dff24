/* exercise_watch.c - exercise 7: GET / answers the user's profile and subscribes the caller to its changes. */
/*
 * One of the workshop's exercises (docs/exercises/7.md). Its memory
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

#define ITEM_BYTES 256   /* one entry of any of the lists below */
#define RECENT_KEEP 64   /* profiles kept in the "recently viewed" list */
#define WATCH_BUCKETS 64 /* watchers, by user id */

/* ------------------------------------------------------------ a plain list of fixed-size items */

typedef struct node {
    struct node *next;
    char item[ITEM_BYTES];
} node;

typedef struct list {
    node *head;
    size_t n;
} list;

/* Put a copy of item (ITEM_BYTES) at the head of l. Returns 0, or -1 when memory ran out. */
static int list_push(list *l, const char *item)
{
    node *nd = malloc(sizeof *nd); /* EXERCISE-SITE */
    if (nd == NULL)
        return -1;
    memcpy(nd->item, item, ITEM_BYTES);
    nd->next = l->head;
    l->head = nd;
    l->n++;
    return 0;
}

/* Free the entries of l past the first keep. */
static void list_trim(list *l, size_t keep)
{
    node **at = &l->head;
    for (size_t i = 0; *at && i < keep; i++)
        at = &(*at)->next;
    while (*at) {
        node *dead = *at;
        *at = dead->next;
        free(dead);
        l->n--;
    }
}

/* ------------------------------------------------------------ the feature */

static struct {
    pthread_mutex_t lock;         /* guards the lists */
    list recent;                  /* profiles viewed lately, newest first, RECENT_KEEP at most */
    list pending;                 /* change events not yet sent (none: the lab changes no profile) */
    list watchers[WATCH_BUCKETS]; /* who asked to hear of a user's changes: user id % WATCH_BUCKETS */
} watch = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Tell every watcher of user id that the profile changed, and forget them:
 * a watcher hears of one change. Called by the profile editor. */
void exercise_watch_notify(uint32_t id)
{
    list *w = &watch.watchers[id % WATCH_BUCKETS];
    char event[ITEM_BYTES] = { 0 };
    pthread_mutex_lock(&watch.lock);
    snprintf(event, sizeof event, "user%u changed", (unsigned)id);
    for (node *nd = w->head; nd; nd = nd->next)
        list_push(&watch.pending, event);
    list_trim(w, 0);
    pthread_mutex_unlock(&watch.lock);
}

enum MHD_Result exercise_watch(struct MHD_Connection *conn)
{
    char err[128], item[ITEM_BYTES] = { 0 }, body[96];
    const user_entry *u;
    uint32_t id;
    int n;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    u = user_directory_get(id);
    snprintf(item, sizeof item, "user%u %s", (unsigned)id, u->name);

    pthread_mutex_lock(&watch.lock);
    list_push(&watch.recent, item);
    list_trim(&watch.recent, RECENT_KEEP);
    list_push(&watch.watchers[id % WATCH_BUCKETS], item);
    list_trim(&watch.pending, 0); /* sent */
    pthread_mutex_unlock(&watch.lock);

    n = snprintf(body, sizeof body, "%-60.60s\n", item);
    stats_count_request();
    return exercise_reply(conn, body, (size_t)n);
}
