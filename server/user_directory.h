/* user_directory.h - the in-memory user directory the server answers from (synthetic, deterministic). */
#ifndef USER_DIRECTORY_H
#define USER_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Loaded once at start, read-only afterwards (so threads share it without a
 * lock). The records are generated from fixed word lists and a fixed seed,
 * so every run holds the same users; the text is really written, which is
 * what gives the idle server its ~26 MB of RSS, as the seed's app had.
 */

/* Number of users loaded; tuned so the idle server's VmRSS is ~26 MB, as the
 * seed's was. Retune it when the server's own footprint changes (it was 36000
 * before the CFI unwinder, the per-site history and the pprof encoder, which
 * added ~4 MB of code pages and tables; 29000 until later changes added ~1.2
 * MB more: 0.7 MB of code and file pages, 0.3 MB of heap the tracker does
 * not record, as /stats' "rss" breakdown shows). */
#define USER_DIRECTORY_USERS 27000

/* One user. Strings are NUL-terminated and live in the directory's text arena. */
typedef struct user_entry {
    uint32_t id;         /* 1..USER_DIRECTORY_USERS */
    uint16_t born;       /* year of birth, 1950..2005 */
    uint16_t since;      /* year the account was opened, 2008..2024 */
    const char *name;    /* "First Last" */
    const char *email;   /* first.last<id>@domain */
    const char *city;    /* home city */
    const char *company; /* employer */
    const char *bio;     /* 4..12 sentences, ~250..1000 bytes */
    uint32_t bio_len;    /* strlen(bio) */
} user_entry;

/* Build the directory (USER_DIRECTORY_USERS users). Returns 0, or -1 when
 * memory runs out (nothing is kept; the message is the caller's to print).
 * Calling it again after success is a no-op. */
int user_directory_load(void);

/* Number of users loaded (0 before user_directory_load). */
uint32_t user_directory_count(void);

/* The user with this id, or NULL when id is 0 or above user_directory_count(). */
const user_entry *user_directory_get(uint32_t id);

/* Release the directory (at exit; afterwards count is 0). */
void user_directory_free(void);

#endif /* USER_DIRECTORY_H */
