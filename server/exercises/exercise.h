/* exercise.h - the workshop's exercises (bin/server --exercise N|random): GET / served by code with a memory problem the attendee must find. */
#ifndef EXERCISE_H
#define EXERCISE_H

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

#define EXERCISE_COUNT 9  /* exercises 1..EXERCISE_COUNT; docs/exercises/N.md is the sheet of N */
#define EXERCISE_RANDOM 5 /* --exercise random picks among the first five; 6..9 are the harder set */

/* The exercise an --exercise value names: "1".."9", or "random" (one of
 * the first EXERCISE_RANDOM, picked from the clock and the pid, and never printed: the attendee
 * must find out with the tools). Returns 1..EXERCISE_COUNT, or 0 for any
 * other value. */
unsigned exercise_pick(const char *arg);

/* Reply 200 with an exercise's answer body[0..len) (copied). Under
 * --exercise random every exercise answers the same line instead, so that
 * only the tools, not the answer, tell which one runs. */
enum MHD_Result exercise_reply(struct MHD_Connection *conn, const char *body, size_t len);

/* From now on every exercise_reply answers "ok" (exercise_pick calls it for
 * random). In its own file (exercise_reply.c) so that the handlers, which
 * call exercise_reply, and exercise.c, which calls the handlers, form no cycle. */
void exercise_reply_plain(void);

/* Answer GET|HEAD / (any query) for exercise n (1..EXERCISE_COUNT): what
 * the attendee's load hits. Counts the request in stats like GET / of the
 * lab; never touches the lab's leak counters (the exercises' servers do not
 * know what they leak). Returns what MHD_queue_response returns. */
enum MHD_Result exercise_handle(unsigned n, struct MHD_Connection *conn);

/* ------------------------------------------------------------ one file each
 * Each exercise is one file, server/exercise_<feature>.c, named after what
 * the feature does, not after its bug; the line to find carries the comment
 * EXERCISE-SITE (the tests find it there). The answers are in
 * docs/solutions.md. */
enum MHD_Result exercise_journal(struct MHD_Connection *conn); /* 1: exercise_journal.c */
enum MHD_Result exercise_card(struct MHD_Connection *conn);    /* 2: exercise_card.c */
enum MHD_Result exercise_lookup(struct MHD_Connection *conn);  /* 3: exercise_lookup.c */
enum MHD_Result exercise_badges(struct MHD_Connection *conn);  /* 4: exercise_badges.c */
enum MHD_Result exercise_report(struct MHD_Connection *conn);  /* 5: exercise_report.c */
enum MHD_Result exercise_tags(struct MHD_Connection *conn);    /* 6: exercise_tags.c */
enum MHD_Result exercise_watch(struct MHD_Connection *conn);   /* 7: exercise_watch.c */
enum MHD_Result exercise_batch(struct MHD_Connection *conn);   /* 8: exercise_batch.c */
enum MHD_Result exercise_export(struct MHD_Connection *conn);  /* 9: exercise_export.c */

/* exercise_watch.c: the profile editor's hook (a user's profile changed). */
void exercise_watch_notify(uint32_t id);

#endif /* EXERCISE_H */
