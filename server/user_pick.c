/* user_pick.c - the user a GET / asks for (?user=ID, or the next in turn): shared by the lab's GET / and the exercises'. */
#include "user_pick.h"

#include <stdatomic.h>
#include <stdio.h>

#include "decimal.h"
#include "http/http_reply.h"
#include "user_directory.h"

static _Atomic uint32_t next_user; /* round-robin position for requests without ?user= */

uint32_t user_pick(struct MHD_Connection *conn, char *err, size_t errlen)
{
    const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "user");
    uint32_t count = user_directory_count();
    unsigned long id;
    char shown[48];

    if (s == NULL) {
        /* No ?user=: walk the directory in turn, over the ids with as many
         * digits as the last one (10000..36000), so every answer has the same
         * length: ab counts a change of length as a "failed request". */
        uint32_t first = 1;

        while (first * 10 <= count)
            first *= 10;
        return first + atomic_fetch_add_explicit(&next_user, 1, memory_order_relaxed) %
                           (count - first + 1);
    }

    if (decimal_parse(s, count, &id) != 0 || id == 0 || id > count) { /* not a number: as out of range */
        snprintf(err, errlen, "user must be a number from 1 to %u, got '%s'", (unsigned)count,
                 http_printable(s, shown, sizeof shown));
        return 0;
    }
    return (uint32_t)id;
}
