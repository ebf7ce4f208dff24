/* user_directory.c - generates the synthetic user directory: names, emails, cities, bios. */
#include "user_directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "splitmix.h"

/* ------------------------------------------------------------ word lists */

static const char *const first_names[] = {
    "Ada", "Alan", "Amara", "Aziz", "Bea", "Boris", "Carmen", "Chen", "Dara", "Diego",
    "Elena", "Emeka", "Farah", "Felix", "Grace", "Gustav", "Hana", "Hugo", "Ines", "Ivan",
    "Jana", "Jonas", "Kai", "Keiko", "Lena", "Luis", "Maya", "Milan", "Nadia", "Noah",
    "Olga", "Omar", "Priya", "Pablo", "Quinn", "Rosa", "Ravi", "Sara", "Sven", "Tara",
    "Tomas", "Uma", "Viktor", "Wen", "Xavier", "Yara", "Yusuf", "Zoe", "Zeno", "Lucia",
};
static const char *const last_names[] = {
    "Moreau", "Okafor", "Tanaka", "Novak", "Silva", "Kowalski", "Haddad", "Lindqvist",
    "Fischer", "Rossi", "Kumar", "Garcia", "Nakamura", "Petrov", "Dubois", "Mensah",
    "Jensen", "Costa", "Yilmaz", "Horvat", "Brennan", "Schmidt", "Almeida", "Virtanen",
    "Khan", "Lopez", "Andersen", "Ivanova", "Popescu", "Nguyen", "Weber", "Romano",
};
static const char *const cities[] = {
    "Lisbon", "Lagos", "Osaka", "Prague", "Porto", "Krakow", "Beirut", "Uppsala",
    "Hamburg", "Turin", "Pune", "Valencia", "Sapporo", "Sofia", "Lyon", "Accra",
    "Aarhus", "Recife", "Izmir", "Zagreb", "Cork", "Leipzig", "Curitiba", "Tampere",
    "Lahore", "Cordoba", "Bergen", "Kazan", "Cluj", "Hanoi", "Graz", "Bologna",
};
static const char *const companies[] = {
    "Northwind Logistics", "Bluefin Analytics", "Kestrel Robotics", "Juniper Health",
    "Ostara Energy", "Pelican Freight", "Saffron Foods", "Tidewater Bank",
    "Umbra Games", "Verdant Farms", "Wavelength Media", "Zephyr Aerospace",
    "Aurora Textiles", "Basalt Mining", "Cobalt Software", "Driftwood Hotels",
};
static const char *const jobs[] = {
    "backend engineer", "data analyst", "nurse", "product manager", "teacher",
    "site reliability engineer", "accountant", "designer", "field technician",
    "researcher", "sales lead", "support engineer", "architect", "pharmacist",
};
static const char *const hobbies[] = {
    "trail running", "sourdough baking", "chess", "bird watching", "jazz piano",
    "rock climbing", "urban sketching", "sailing", "board games", "pottery",
    "amateur astronomy", "cycling", "film photography", "gardening", "salsa",
    "open-source maintenance", "beekeeping", "long-distance swimming",
};
static const char *const topics[] = {
    "distributed systems", "local history", "coffee roasting", "public transport",
    "typography", "urban beekeeping", "retro computing", "climate data",
    "fermentation", "mechanical keyboards", "small-town architecture", "birdsong",
};
static const char *const domains[] = {
    "example.org", "mail.example.com", "post.example.net", "inbox.example.io",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ module state */

static struct {
    user_entry *users; /* users[i] has id i + 1; NULL before load */
    char *text;        /* arena holding every string of every user */
    uint32_t count;    /* users loaded, 0 before load */
} dir;

/* ------------------------------------------------------------ generator */

static const char *pick(uint64_t *rng, const char *const *list, size_t n)
{
    return list[splitmix64_next(rng) % n];
}

#define PICK(rng, list) pick((rng), (list), COUNT(list))

/* Pick an entry of list other than not (so a bio never says "chess and chess"). */
static const char *pick_other(uint64_t *rng, const char *const *list, size_t n, const char *not)
{
    size_t i;

    for (i = 0; i < n && list[i] != not; i++)
        ;
    return list[(i + 1 + splitmix64_next(rng) % (n - 1)) % n];
}

/* One user as generated, before its strings are copied into the arena. */
typedef struct user_text {
    char name[64];       /* "First Last" */
    char email[96];      /* "first.last<id>@domain" */
    char bio[1536];      /* 12 sentences of < 128 bytes each fit */
    const char *city;    /* from cities[] */
    const char *company; /* from companies[] */
    uint16_t born;       /* 1950..2005 */
    uint16_t since;      /* 2008..2024 */
} user_text;

#define BIO_KINDS 12 /* kinds of bio sentence in generate_user */

/* Generate user id's text from the rng; the same rng state gives the same user. */
static void generate_user(uint64_t *rng, uint32_t id, user_text *u)
{
    const char *first = PICK(rng, first_names);
    const char *last = PICK(rng, last_names);
    size_t len = 0;
    int kinds[BIO_KINDS], sentences, i;

    u->city = PICK(rng, cities);
    u->company = PICK(rng, companies);
    u->born = (uint16_t)(1950 + splitmix64_next(rng) % 56);
    u->since = (uint16_t)(2008 + splitmix64_next(rng) % 17);
    snprintf(u->name, sizeof u->name, "%s %s", first, last);
    snprintf(u->email, sizeof u->email, "%s.%s%u@%s", first, last, (unsigned)id,
             PICK(rng, domains));
    for (char *p = u->email; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');

    /* A bio of 4..12 different sentences (a shuffled pick of the kinds below):
     * 250..1000 bytes, like a filled-in profile. */
    for (i = 0; i < BIO_KINDS; i++)
        kinds[i] = i;
    for (i = BIO_KINDS - 1; i > 0; i--) {
        int j = (int)(splitmix64_next(rng) % (uint64_t)(i + 1)), t = kinds[i];

        kinds[i] = kinds[j];
        kinds[j] = t;
    }
    sentences = 4 + (int)(splitmix64_next(rng) % (BIO_KINDS - 3));
    for (i = 0; i < sentences; i++) {
        char *out = u->bio + len;
        size_t room = sizeof u->bio - len;
        const char *other;
        int n = 0;

        switch (kinds[i]) {
        case 0:
            n = snprintf(out, room, "%s works as a %s at %s. ", first, PICK(rng, jobs),
                         u->company);
            break;
        case 1:
            n = snprintf(out, room, "Born in %u, has lived in %s for %u years. ",
                         (unsigned)u->born, u->city, (unsigned)(1 + splitmix64_next(rng) % 30));
            break;
        case 2:
            other = PICK(rng, hobbies);
            n = snprintf(out, room, "Spends weekends on %s and %s. ", other,
                         pick_other(rng, hobbies, COUNT(hobbies), other));
            break;
        case 3:
            n = snprintf(out, room, "Writes a small newsletter about %s, read by %u people. ",
                         PICK(rng, topics), (unsigned)(10 + splitmix64_next(rng) % 5000));
            break;
        case 4:
            n = snprintf(out, room, "Before %s, spent %u years in %s as a %s. ", u->company,
                         (unsigned)(1 + splitmix64_next(rng) % 12), PICK(rng, cities), PICK(rng, jobs));
            break;
        case 5:
            n = snprintf(out, room, "Member since %u; prefers to be contacted by email. ",
                         (unsigned)u->since);
            break;
        case 6:
            n = snprintf(out, room, "Currently learning about %s and trying to get better at %s. ",
                         PICK(rng, topics), PICK(rng, hobbies));
            break;
        case 7:
            n = snprintf(out, room, "Has organised %u meetups on %s in %s. ",
                         (unsigned)(1 + splitmix64_next(rng) % 40), PICK(rng, topics), u->city);
            break;
        case 8:
            other = PICK(rng, cities);
            n = snprintf(out, room, "Speaks at conferences about %s, mostly in %s and %s. ",
                         PICK(rng, topics), other, pick_other(rng, cities, COUNT(cities), other));
            break;
        case 9:
            n = snprintf(out, room, "Mentors %u junior colleagues and runs the %s reading group. ",
                         (unsigned)(1 + splitmix64_next(rng) % 6), PICK(rng, topics));
            break;
        case 10:
            n = snprintf(out, room, "Volunteers at a %s club in %s on Tuesday evenings. ",
                         PICK(rng, hobbies), u->city);
            break;
        default:
            n = snprintf(out, room, "Dreams of moving to %s one day to open a %s school. ",
                         PICK(rng, cities), PICK(rng, hobbies));
            break;
        }
        if (n > 0)
            len += (size_t)n < room ? (size_t)n : room - 1;
    }
    if (len > 0 && u->bio[len - 1] == ' ')
        u->bio[--len] = '\0';
}

/* Copy s (with its NUL) to text + *used and advance *used; returns the
 * copy's offset (the arena may still be cut, so no pointer yet). */
static uint32_t arena_put(char *text, size_t *used, const char *s)
{
    size_t n = strlen(s) + 1;
    uint32_t off = (uint32_t)*used;

    memcpy(text + *used, s, n);
    *used += n;
    return off;
}

/* ------------------------------------------------------------ public */

#define DIRECTORY_SEED 0x5EEDu /* same users on every run */

int user_directory_load(void)
{
    uint64_t rng = DIRECTORY_SEED;
    size_t used = 0;
    user_entry *users = NULL;
    char *text = NULL, *cut;
    uint32_t *offs = NULL; /* name, email, bio offsets per user, until the arena is cut */
    user_text u;
    uint32_t id;

    if (dir.users != NULL)
        return 0;

    /* One pass, into an arena big enough for any users: pages never
     * written cost no RSS, and the arena is cut to what was written. */
    users = malloc(USER_DIRECTORY_USERS * sizeof *users);
    text = malloc((size_t)USER_DIRECTORY_USERS * (sizeof u.name + sizeof u.email + sizeof u.bio));
    offs = malloc(USER_DIRECTORY_USERS * 3 * sizeof *offs);
    if (users == NULL || text == NULL || offs == NULL)
        goto fail;

    for (id = 1; id <= USER_DIRECTORY_USERS; id++) {
        user_entry *e = &users[id - 1];
        uint32_t *o = &offs[(id - 1) * 3];

        generate_user(&rng, id, &u);
        e->id = id;
        e->born = u.born;
        e->since = u.since;
        e->city = u.city;       /* word lists are static, shared by all users */
        e->company = u.company;
        e->bio_len = (uint32_t)strlen(u.bio);
        o[0] = arena_put(text, &used, u.name);
        o[1] = arena_put(text, &used, u.email);
        o[2] = arena_put(text, &used, u.bio);
    }
    cut = realloc(text, used);
    if (cut != NULL)
        text = cut;
    for (id = 0; id < USER_DIRECTORY_USERS; id++) {
        users[id].name = text + offs[id * 3];
        users[id].email = text + offs[id * 3 + 1];
        users[id].bio = text + offs[id * 3 + 2];
    }
    free(offs);

    dir.users = users;
    dir.text = text;
    dir.count = USER_DIRECTORY_USERS;
    return 0;

fail:
    free(users);
    free(text);
    free(offs);
    return -1;
}

uint32_t user_directory_count(void)
{
    return dir.count;
}

const user_entry *user_directory_get(uint32_t id)
{
    if (id == 0 || id > dir.count)
        return NULL;
    return &dir.users[id - 1];
}

void user_directory_free(void)
{
    free(dir.users);
    free(dir.text);
    dir.users = NULL;
    dir.text = NULL;
    dir.count = 0;
}
