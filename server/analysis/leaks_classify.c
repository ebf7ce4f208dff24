/* leaks_classify.c - one site's series fitted (least squares against requests and time) and classified: leak, plateau, steady or unknown (the rules in leaks.h). */
#include "leaks.h"

/* By hand rather than <math.h>: the server links no libm for two one-liners. */
static double dmax(double a, double b) { return a > b ? a : b; }
static double dabs(double a) { return a < 0 ? -a : a; }

/* Least squares y = a + b x over n points; *r2 the coefficient of
 * determination (1 for a flat y: the line fits exactly). Returns b, 0
 * when the x do not vary. */
static double fit(const double *x, const double *y, size_t n, double *r2)
{
    double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;
    for (size_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if (sxx <= 0) { *r2 = 0; return 0; }
    double b = sxy / sxx;
    *r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 1.0;
    return b;
}

void leaks_classify(const double *x, const double *t, const double *y, size_t n, leaks_suspect *s)
{
    s->points = n;
    if (n == 0) { s->kind = LEAKS_UNKNOWN; return; }
    s->window_s = t[n - 1] - t[0];
    s->window_requests = (uint64_t)(x[n - 1] - x[0]);
    s->growth_bytes = (int64_t)(y[n - 1] - y[0]);
    if (n < LEAKS_MIN_POINTS) { s->kind = LEAKS_UNKNOWN; return; }

    double r2t, r2x = 0;
    s->bytes_per_second = fit(t, y, n, &r2t);
    s->per_request = s->window_requests >= LEAKS_MIN_REQUESTS;
    const double *axis = s->per_request ? x : t;
    double slope = s->per_request ? fit(x, y, n, &r2x) : s->bytes_per_second;
    s->bytes_per_request = s->per_request ? slope : 0;
    s->r2 = s->per_request ? r2x : r2t;

    /* the last quarter of the window along the axis: still growing? It is
     * widened back to the newest 3 samples, and to the newest one at a
     * smaller count than the last, when it holds fewer: a sampler that woke
     * late leaves one or two samples in it, and an idle server's samples all
     * sit at its last request count (the decimated tail keeps one in ten, so
     * those taken while it served may all fall before the quarter). Either
     * way the newest evidence of growth per request is further back; without
     * the widening the quarter had no slope (0) and a leak read "steady". */
    double span = axis[n - 1] - axis[0], from = axis[0] + 0.75 * span, r2q;
    size_t q = n;
    while (q > 0 && axis[q - 1] >= from) q--;
    while (q > 0 && (n - q < 3 || axis[q] >= axis[n - 1])) q--;
    double recent = n - q >= 3 ? fit(axis + q, y + q, n - q, &r2q) : 0;
    s->recent_share = slope > 0 ? recent / slope : 0;

    /* the flat stretch at the end: within tol of the newest value */
    double last = y[n - 1], tol = dmax(LEAKS_FLAT_TOL_SHARE * last, LEAKS_FLAT_TOL_MIN), peak = y[0];
    size_t f = n - 1;
    while (f > 0 && dabs(y[f - 1] - last) <= tol) f--;
    for (size_t i = 0; i <= f; i++) peak = dmax(peak, y[i]);
    s->flat_requests = (uint64_t)(x[n - 1] - x[f]);
    s->flat_s = t[n - 1] - t[f];

    /* Growth in steps: a rise after a stretch of >= LEAKS_PLATEAU_MIN_REQUESTS
     * requests served without one, never a fall. A bounded cache fills and
     * stays; a buffer enlarged again and again (realloc doubling) looks like
     * a plateau between its steps, and the second step says it is not one. */
    int steps = 0, rose = 0, fell = 0;
    size_t flat_from = 0; /* the sample after the last rise */
    for (size_t i = 1; i < n; i++) {
        double d = y[i] - y[i - 1];
        if (d < -tol) fell = 1;
        if (d <= tol) continue;
        if (rose && x[i - 1] - x[flat_from] >= LEAKS_PLATEAU_MIN_REQUESTS) steps++;
        rose = 1;
        flat_from = i;
    }

    double grew = dmax(peak, last) - y[0];
    if ((double)s->growth_bytes >= LEAKS_MIN_GROWTH && s->per_request && slope > 0 && !fell && steps >= 1)
        s->kind = LEAKS_LEAK; /* grew again after a flat stretch: not bounded by what the window shows */
    else if (grew >= LEAKS_MIN_GROWTH && f > 0 && n - f >= 3 && s->per_request &&
        s->flat_requests >= LEAKS_PLATEAU_MIN_REQUESTS &&
        (double)s->flat_requests >= LEAKS_PLATEAU_MIN_SHARE * (double)s->window_requests)
        s->kind = LEAKS_PLATEAU;
    else if ((double)s->growth_bytes >= LEAKS_MIN_GROWTH && slope > 0 && s->r2 >= LEAKS_MIN_R2 &&
             s->recent_share >= LEAKS_RECENT_SHARE)
        s->kind = LEAKS_LEAK;
    else
        s->kind = LEAKS_STEADY;
}

const char *leaks_kind_name(leaks_kind k)
{
    static const char *const names[] = { "leak", "plateau", "steady", "unknown" };
    return (unsigned)k < 4 ? names[k] : "unknown";
}
