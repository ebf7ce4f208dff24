/* user_pick.h - the user a GET / asks for: the lab's and the exercises' (which therefore need not include routes.h). */
#ifndef USER_PICK_H
#define USER_PICK_H

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

/* The user a GET / asks for: ?user=ID (1..user count), or without ?user= the
 * next one in turn among the ids as long as the last one (every answer then
 * has the same length). Returns the id, or 0 with a one-line reason in err
 * (size errlen) for a bad ?user=. Thread-safe. */
uint32_t user_pick(struct MHD_Connection *conn, char *err, size_t errlen);

#endif /* USER_PICK_H */
