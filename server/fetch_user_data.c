/* fetch_user_data.c - builds a user's 40200-byte profile record; its malloc is the leak to find. */
#include "fetch_user_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "user_directory.h"

char *fetch_user_data(uint32_t user_id)
{
    const user_entry *u = user_directory_get(user_id);
    char *record;
    size_t len, chunk;
    int n;

    if (u == NULL)
        return NULL;

    /*
     * THE DELIBERATE LEAK (the lesson of this lab): this block is handed to
     * the caller; the handler in routes.c answers from it, then drops the
     * pointer without free() (--leak=drop) or keeps it in a cache that never
     * evicts (--leak=cache). Either way every GET / leaks these 40200 bytes,
     * and the tracker's /capture names this very line.
     */
    record = malloc(USER_RECORD_BYTES); /* LEAK-SITE: never freed in leaky mode */
    if (record == NULL)
        return NULL;

    /* The profile itself... */
    n = snprintf(record, USER_RECORD_BYTES,
                 "user%u\nname: %s\nemail: %s\ncity: %s\ncompany: %s\n"
                 "born: %u\nmember since: %u\nbio: %s\nhistory:\n",
                 (unsigned)u->id, u->name, u->email, u->city, u->company,
                 (unsigned)u->born, (unsigned)u->since, u->bio);
    len = n > 0 ? (size_t)n : 0;
    if (len > USER_RECORD_BYTES - 1)
        len = USER_RECORD_BYTES - 1;

    /* ...then the bio repeated as the user's history, so every page of the
     * record is written (and counted in RSS), as a real profile would be. */
    while (len < USER_RECORD_BYTES - 1) {
        chunk = u->bio_len + 1;
        if (chunk > USER_RECORD_BYTES - 1 - len)
            chunk = USER_RECORD_BYTES - 1 - len;
        memcpy(record + len, u->bio, chunk - 1);
        record[len + chunk - 1] = '\n';
        len += chunk;
    }
    record[USER_RECORD_BYTES - 1] = '\0';
    return record;
}
