/* exercise_tags.c - exercise 6: GET / answers the user's profile tags, normalised to lower case. */
/*
 * One of the workshop's exercises (docs/exercises/6.md). Its memory problem
 * is deliberate; the answer is in docs/solutions.md: do not read on if you
 * are doing the exercise.
 */
#include "exercise.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "../http/http_reply.h"
#include "../user_pick.h"
#include "../http/stats.h"
#include "../user_directory.h"
#include "xalloc.h"

#define TAGS_MAX 6 /* tags per user */

/* The words a profile can be tagged with; a user gets TAGS_MAX of them. */
static const char *const vocabulary[] = {
    "c", "Rust", "go", "Linux", "kernel", "Networking", "storage", "SRE", "databases", "Security",
    "compilers", "HTTP", "embedded", "audio", "graphics", "ML",
};
#define VOCABULARY (sizeof vocabulary / sizeof vocabulary[0])

/* The tag in lower case. Returns tag itself when it is lower case already
 * (nothing to free then), else a copy the caller frees. */
static char *tag_lower(char *tag)
{
    char *copy = xstrdup(tag); /* EXERCISE-SITE */
    for (char *c = copy; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return copy;
}

/* The user's tags, each an xmalloc'ed string, in tags[0..TAGS_MAX). */
static void tags_of(uint32_t id, char **tags)
{
    for (unsigned i = 0; i < TAGS_MAX; i++)
        tags[i] = xstrdup(vocabulary[(id * 7u + i * 5u) % VOCABULARY]);
}

/* "tags of userN: a b c", padded to one length for ab, as an xmalloc'ed line. */
static char *tags_line(uint32_t id, char **tags, int *len)
{
    char words[160], *line = xmalloc(sizeof words);
    int n = snprintf(words, sizeof words, "tags of user%u:", (unsigned)id);
    for (unsigned i = 0; i < TAGS_MAX; i++) {
        char *low = tag_lower(tags[i]);
        n += snprintf(words + n, sizeof words - (size_t)n, " %s", low);
        if (strcmp(low, tags[i]) != 0) /* a copy was made */
            free(low);
    }
    *len = snprintf(line, sizeof words, "%-100.100s\n", words);
    return line;
}

enum MHD_Result exercise_tags(struct MHD_Connection *conn)
{
    char err[128], *tags[TAGS_MAX], *line, body[128];
    uint32_t id;
    int len;

    id = user_pick(conn, err, sizeof err);
    if (id == 0)
        return http_reply_reason(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
    tags_of(id, tags);
    line = tags_line(id, tags, &len);
    memcpy(body, line, (size_t)len + 1);
    free(line);
    for (unsigned i = 0; i < TAGS_MAX; i++)
        free(tags[i]);
    stats_count_request();
    return exercise_reply(conn, body, (size_t)len);
}
