/* leaks.h - leak suspects from the per-site history: which sites grow with the requests (leak), grew then stopped (plateau), or not (steady). */
#ifndef LEAKS_H
#define LEAKS_H

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

/*
 * The method (docs/leaks.md has it in full, with its reasons): over the
 * window, for each site with a series, fit live bytes against requests
 * served (least squares) and against time.
 *   leak     (first) it grew by >= LEAKS_MIN_GROWTH, never fell, and rose
 *            again after a stretch of >= LEAKS_PLATEAU_MIN_REQUESTS requests
 *            without a rise: growth in steps (a buffer enlarged again and
 *            again), which a bounded cache does not show.
 *   plateau  it grew by >= LEAKS_MIN_GROWTH, then stayed within
 *            LEAKS_FLAT_TOL of its last value for at least
 *            LEAKS_PLATEAU_MIN_REQUESTS requests and LEAKS_PLATEAU_MIN_SHARE
 *            of the window's requests: a bounded cache.
 *   leak     it grew by >= LEAKS_MIN_GROWTH, the line fits (R^2 >=
 *            LEAKS_MIN_R2), and the last quarter of the window still grows
 *            at >= LEAKS_RECENT_SHARE of the overall slope (a quarter of
 *            fewer than 3 samples, or of samples all at the last request
 *            count, an idle server's, is widened back to the newest 3 and to
 *            the newest one at a smaller count). Without
 *            requests (fewer than LEAKS_MIN_REQUESTS in the window), the
 *            same test against time.
 *   steady   anything else with enough samples: flat, freed, or churning.
 *   unknown  fewer than LEAKS_MIN_POINTS samples.
 * Nothing else is read: no file name, marker or server mode.
 * Ranked: leaks by bytes per request (then per second), plateaus and
 * steady sites by live bytes, unknown last.
 */
#define LEAKS_MIN_POINTS 5
#define LEAKS_MIN_REQUESTS 100
#define LEAKS_MIN_GROWTH (512.0 * 1024)   /* bytes over the window */
#define LEAKS_MIN_R2 0.90
#define LEAKS_RECENT_SHARE 0.5
#define LEAKS_FLAT_TOL_SHARE 0.02         /* of the last value ... */
#define LEAKS_FLAT_TOL_MIN (64.0 * 1024)  /* ... but at least this many bytes */
#define LEAKS_PLATEAU_MIN_REQUESTS 1000
#define LEAKS_PLATEAU_MIN_SHARE 0.25

typedef enum leaks_kind { LEAKS_LEAK, LEAKS_PLATEAU, LEAKS_STEADY, LEAKS_UNKNOWN } leaks_kind;

/* One site and its evidence. */
typedef struct leaks_suspect {
    char site[256];           /* as /capture names it, e.g. "server/fetch_user_data.c:27" */
    const char *file;         /* or NULL; strings live as long as the process */
    int line;                 /* 0 when unknown */
    const char *function;     /* or NULL */
    leaks_kind kind;
    int per_request;          /* 1: the requests advanced enough for bytes_per_request */
    double bytes_per_request; /* slope of live bytes against requests (0 unless per_request) */
    double r2;                /* fit of that line (of the time line without requests), 0..1 */
    double bytes_per_second;  /* slope of live bytes against time */
    double recent_share;      /* slope in the window's last quarter / overall slope */
    uint64_t live_bytes;      /* at the newest sample */
    uint64_t live_count;
    int64_t growth_bytes;     /* newest - oldest value in the window */
    uint64_t flat_requests;   /* requests served in the flat stretch at the end (plateau evidence) */
    double flat_s;            /* its length in seconds */
    double window_s;          /* seconds between this site's oldest and newest sample */
    uint64_t window_requests; /* requests served in between */
    size_t points;            /* samples used */
} leaks_suspect;

/* Classify one series of n points: x requests served, t seconds, y live
 * bytes, oldest first. Fills s's kind and evidence (all but site, file,
 * line, function, live_bytes and live_count). Pure: no history, no I/O. */
void leaks_classify(const double *x, const double *t, const double *y, size_t n, leaks_suspect *s);

/* Rank every site with a series over the last window_s seconds (0: all
 * the full-rate history, or the decimated tail when the full-rate samples
 * saw fewer than LEAKS_MIN_REQUESTS requests: an idle server) and copy the first max into out. Returns how many
 * sites were ranked (may exceed max), or -1 when there is no history. A C
 * API for other views (/metrics): thread-safe, no HTTP. */
int leaks_suspects(double window_s, leaks_suspect *out, size_t max);

/* "leak", "plateau", "steady", "unknown". */
const char *leaks_kind_name(leaks_kind k);

/* Answer GET /leaks on conn: ?format=text|json, top=1..64 (default 10),
 * window=SECONDS (1..86400, default: as leaks_suspects with 0),
 * points=0..500 (per site, the series as [requests, live bytes] pairs for
 * charts; default 0). 400 with a one-line reason for a bad query, 503
 * without a history. Returns what MHD_queue_response returns. */
enum MHD_Result leaks_handle(struct MHD_Connection *conn);

#endif /* LEAKS_H */
