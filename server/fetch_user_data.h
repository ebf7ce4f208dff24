/* fetch_user_data.h - builds one user's profile record: the allocation this lab is about. */
#ifndef FETCH_USER_DATA_H
#define FETCH_USER_DATA_H

#include <stdint.h>

/* Size of every profile record, in bytes (the seed's ~39.3 KiB per request). */
#define USER_RECORD_BYTES 40200

/* Build the profile record of user user_id (1..user_directory_count()):
 * a malloc'ed block of exactly USER_RECORD_BYTES bytes, every byte written.
 * It starts with the line "user<ID>\n", then the profile, then the profile
 * history text repeated to fill it; the last byte is NUL.
 * The CALLER OWNS the record and must free() it: not doing so is the leak
 * the workshop hunts. Returns NULL when user_id is unknown or memory runs
 * out (nothing allocated then). */
char *fetch_user_data(uint32_t user_id);

#endif /* FETCH_USER_DATA_H */
