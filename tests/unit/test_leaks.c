/* test_leaks.c - unit tests of /leaks' classifier (server/analysis/leaks_classify.c) on made-up series: leak, plateau, steady, unknown. */

#include "../../server/analysis/leaks.h"

#include <string.h>

#include "check.h"

/* The end-to-end tests (tests/test_leaks.sh, tests/test_leak_kinds.sh) run the
 * server; here, the shapes a sampler cannot be made to produce on demand, such
 * as a decimated tail whose samples all fell before the last quarter. */

#define RECORD 40200.0 /* bytes a leaky request keeps (any size would do) */
#define MAXP 64

typedef struct series {
    double x[MAXP], t[MAXP], y[MAXP];
    size_t n;
} series;

/* Append one sample: requests served so far, live bytes; a second apart. */
static void at(series *s, double requests, double bytes)
{
    if (s->n == MAXP) return;
    s->x[s->n] = requests;
    s->t[s->n] = (double)s->n;
    s->y[s->n] = bytes;
    s->n++;
}

static leaks_suspect classify(const series *s)
{
    leaks_suspect out;
    memset(&out, 0, sizeof out);
    leaks_classify(s->x, s->t, s->y, s->n, &out);
    return out;
}

int main(void)
{
    series s;
    leaks_suspect r;

    /* A leak under steady load: one record per request, a sample every 100 requests. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 30; i++) at(&s, i * 100.0, i * 100.0 * RECORD);
    r = classify(&s);
    CHECK(r.kind == LEAKS_LEAK, "steady load, one record per request: leak (got %s)", leaks_kind_name(r.kind));
    CHECK(r.per_request && r.bytes_per_request > RECORD * 0.99 && r.bytes_per_request < RECORD * 1.01,
          "... at %.0f B per request (got %.1f)", RECORD, r.bytes_per_request);

    /* The same leak, then idle, as the decimated tail sees it: four samples while
     * 3000 requests were served, none in the last quarter (2250..3000), then ten
     * idle ones at 3000. The newest growth is the last word on it: still a leak. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 4; i++) at(&s, i * 700.0, i * 700.0 * RECORD);
    for (int i = 0; i < 10; i++) at(&s, 3000, 3000 * RECORD);
    r = classify(&s);
    CHECK(r.kind == LEAKS_LEAK, "a leak, then idle, no sample in the last quarter but the idle ones: leak (got %s, recent share %.2f)",
          leaks_kind_name(r.kind), r.recent_share);
    CHECK(r.recent_share > 0.99 && r.recent_share < 1.01, "... its newest growth at the whole window's rate (recent share %.2f)", r.recent_share);

    /* A sampler that woke late: one sample in the last quarter (3000..4000).
     * The newest 3 samples stand in for it: still a leak. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 8; i++) at(&s, i * 350.0, i * 350.0 * RECORD);
    at(&s, 4000, 4000 * RECORD);
    r = classify(&s);
    CHECK(r.kind == LEAKS_LEAK, "a late sampler, one sample in the last quarter: leak (got %s, recent share %.2f)",
          leaks_kind_name(r.kind), r.recent_share);

    /* ... and when those 3 are flat, the growth has stopped: not a leak. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 6; i++) at(&s, i * 350.0, i * 350.0 * RECORD);
    at(&s, 2500, 2100 * RECORD);
    at(&s, 2900, 2100 * RECORD);
    at(&s, 4000, 2100 * RECORD);
    r = classify(&s);
    CHECK(r.kind != LEAKS_LEAK, "grew, then flat over its newest 4 samples (1900 requests): not a leak (got %s)",
          leaks_kind_name(r.kind));

    /* Grew, then flat for 2000 requests served, then idle at the same count:
     * widening the last quarter back must not turn a filled cache into a leak. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 2; i++) at(&s, i * 500.0, i * 500.0 * RECORD);
    at(&s, 1500, 1000 * RECORD);
    at(&s, 2000, 1000 * RECORD);
    for (int i = 0; i < 10; i++) at(&s, 3000, 1000 * RECORD);
    r = classify(&s);
    CHECK(r.kind == LEAKS_PLATEAU, "grew, flat for 2000 requests, idle: plateau (got %s)", leaks_kind_name(r.kind));

    /* Grew, then flat for 800 requests (too few for a plateau), then idle: the
     * widened quarter holds the flat stretch, so not a leak either. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 4; i++) at(&s, i * 300.0, i * 300.0 * RECORD);
    at(&s, 1600, 1200 * RECORD);
    at(&s, 2000, 1200 * RECORD);
    for (int i = 0; i < 10; i++) at(&s, 2000, 1200 * RECORD);
    r = classify(&s);
    CHECK(r.kind == LEAKS_STEADY, "grew, flat for 800 requests, idle: steady (got %s)", leaks_kind_name(r.kind));

    /* A bounded cache under load: fills in 2000 requests, flat for 3000. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 50; i++) {
        double req = i * 100.0;
        at(&s, req, (req < 2000 ? req : 2000) * RECORD);
    }
    r = classify(&s);
    CHECK(r.kind == LEAKS_PLATEAU, "a cache full after 2000 requests, flat for 3000: plateau (got %s)", leaks_kind_name(r.kind));

    /* Churn: up and down around 5 MB. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 30; i++) at(&s, i * 100.0, 5e6 + (i % 2 ? 2e5 : -2e5));
    r = classify(&s);
    CHECK(r.kind == LEAKS_STEADY, "churn around a level: steady (got %s)", leaks_kind_name(r.kind));

    /* Grew, then freed: a fall is never a leak. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 20; i++) at(&s, i * 100.0, i * 100.0 * RECORD);
    at(&s, 2100, 0);
    r = classify(&s);
    CHECK(r.kind == LEAKS_STEADY, "grew, then freed: steady (got %s)", leaks_kind_name(r.kind));

    /* No requests at all: the fit against time stands in. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i <= 10; i++) at(&s, 0, i * 1e6);
    r = classify(&s);
    CHECK(r.kind == LEAKS_LEAK && !r.per_request, "growth without requests: a leak per second (got %s, per_request %d)",
          leaks_kind_name(r.kind), r.per_request);

    /* Too few samples to tell. */
    memset(&s, 0, sizeof s);
    for (int i = 0; i < LEAKS_MIN_POINTS - 1; i++) at(&s, i * 1000.0, i * 1000.0 * RECORD);
    r = classify(&s);
    CHECK(r.kind == LEAKS_UNKNOWN, "%d samples: unknown (got %s)", LEAKS_MIN_POINTS - 1, leaks_kind_name(r.kind));

    CHECK_PLAN();
    fprintf(stderr, "# test_leaks: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
