/* history.c - the sampler thread and the bounded per-site history it keeps (see history.h). */
/* tracker_untracked_begin/end: the history is the tracker's working memory in effect
 * (like its snapshots), kept out of /capture's sites on purpose. */
#include "tracker.h"
#include "history.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rss.h"

#define EVICT_MIN_BYTES 4096u /* a site must hold this much to take another's series */
#define EVICTIONS_PER_SAMPLE 8 /* series handed over per sample at most */
#define NO_SITE UINT32_MAX

/* ------------------------------------------------------------ module state */

/* One series: a site's values at the full rate and in the tail. */
typedef struct slot {
    uint32_t site;      /* index in H.sites, NO_SITE when free */
    uint64_t since;     /* sample number of its first value; older ring entries are missing */
    uint64_t *b_full;   /* HISTORY_FULL live bytes */
    uint32_t *c_full;   /* HISTORY_FULL live blocks (saturated at UINT32_MAX) */
    uint64_t *b_tail;   /* HISTORY_TAIL */
    uint32_t *c_tail;   /* HISTORY_TAIL */
} slot;

/* Every distinct site seen, named once. */
typedef struct site {
    char *key;               /* /capture's name (tracker_site_key), untracked memory */
    tracker_frame_info info; /* the frame it names */
    uint64_t bytes, count;   /* live in the current sample, valid when gen == H.gen */
    uint64_t gen;            /* sample generation these totals belong to */
    uint32_t slot;           /* its series, or NO_SITE */
} site;

typedef struct history_state {
    pthread_mutex_t lock;        /* guards the rings, slots and counters below against views */
    pthread_mutex_t sample_lock; /* one sample at a time; guards sites, hash, stack map */
    pthread_cond_t wake;         /* signalled by history_stop */
    pthread_t thread;
    int started;                 /* history_start succeeded */
    int stopping;                /* history_stop asked the thread to end (under lock) */
    unsigned period_ms;
    uint64_t (*requests)(void);
    double started_at;           /* CLOCK_MONOTONIC s */

    /* timeline: sample number s is at s % HISTORY_FULL; tail sample k at k % HISTORY_TAIL */
    double *t_full, *t_tail;
    uint64_t *req_full, *req_tail, *rss_full, *rss_tail;
    uint64_t *no_tail;           /* sample number of each tail entry */
    uint64_t nsamples;           /* samples taken */
    uint64_t ntail;              /* tail samples taken */
    slot slots[HISTORY_SERIES];
    size_t nslots_used;

    /* sites (sample_lock) */
    site *sites;
    size_t nsites, cap_sites;
    uint32_t *hash;              /* open addressing: site index + 1, 0 empty */
    size_t hash_cap;             /* power of two */
    uint32_t *stack_site;        /* by stack id: site index + 1, 0 not named yet */
    size_t stack_cap;
    uint64_t gen;

    size_t fixed_bytes;          /* rings and slots, taken at start */
    size_t names_bytes;          /* key strings */
    double cpu_s, last_ms;       /* sampling CPU time */
    double last_snap_ms;         /* of which the tracker's snapshot (wall time of its copy) */
    size_t info_sites, info_bytes; /* nsites and the memory in use, copied under lock after each sample */
} history_state;

static history_state H = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .sample_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ------------------------------------------------------------ small helpers */

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FNV-1a: site names are short and few; no need for more. */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Double the hash table (sample_lock). Returns 0 or -1. */
static int hash_grow_unlocked(void)
{
    size_t cap = H.hash_cap ? H.hash_cap * 2 : 1024;
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h) return -1;
    for (size_t i = 0; i < H.nsites; i++) {
        size_t j = hash_str(H.sites[i].key) & (cap - 1);
        while (h[j]) j = (j + 1) & (cap - 1);
        h[j] = (uint32_t)i + 1;
    }
    free(H.hash);
    H.hash = h;
    H.hash_cap = cap;
    return 0;
}

/* The site index of stack_id, naming it the first time (sample_lock).
 * NO_SITE when out of memory (the stack is then skipped this sample). */
static uint32_t site_of_stack_unlocked(uint32_t stack_id)
{
    static const tracker_report_opts lineno = { .key = TRACKER_KEY_LINENO, .top = 1, .frames = 1 };
    if (stack_id < H.stack_cap && H.stack_site[stack_id])
        return H.stack_site[stack_id] - 1;
    if (stack_id >= H.stack_cap) {
        size_t cap = H.stack_cap ? H.stack_cap : 1024;
        while (cap <= stack_id) cap *= 2;
        uint32_t *m = realloc(H.stack_site, cap * sizeof *m);
        if (!m) return NO_SITE;
        memset(m + H.stack_cap, 0, (cap - H.stack_cap) * sizeof *m);
        H.stack_site = m;
        H.stack_cap = cap;
    }
    tracker_frame_info info;
    char *key = tracker_site_key(stack_id, &lineno, &info);
    if (!key) return NO_SITE;
    if ((H.nsites + 1) * 2 > H.hash_cap && hash_grow_unlocked() != 0) { free(key); return NO_SITE; }
    size_t j = hash_str(key) & (H.hash_cap - 1);
    while (H.hash[j] && strcmp(H.sites[H.hash[j] - 1].key, key) != 0) j = (j + 1) & (H.hash_cap - 1);
    if (H.hash[j]) { /* another stack of a known site */
        free(key);
    } else {
        if (H.nsites == H.cap_sites) {
            size_t cap = H.cap_sites ? H.cap_sites * 2 : 256;
            site *s = realloc(H.sites, cap * sizeof *s);
            if (!s) { free(key); return NO_SITE; }
            H.sites = s;
            H.cap_sites = cap;
        }
        H.sites[H.nsites] = (site){ .key = key, .info = info, .slot = NO_SITE };
        H.names_bytes += strlen(key) + 1;
        H.hash[j] = (uint32_t)++H.nsites;
    }
    H.stack_site[stack_id] = H.hash[j];
    return H.hash[j] - 1;
}

/* Live bytes and blocks of site index i in the current sample. */
static uint64_t cur_bytes(uint32_t i) { return H.sites[i].gen == H.gen ? H.sites[i].bytes : 0; }
static uint32_t cur_count(uint32_t i)
{
    uint64_t c = H.sites[i].gen == H.gen ? H.sites[i].count : 0;
    return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

/* The used slot with the fewest live bytes now, or HISTORY_SERIES if none (lock). */
static size_t smallest_slot_unlocked(void)
{
    size_t best = HISTORY_SERIES;
    for (size_t k = 0; k < HISTORY_SERIES; k++)
        if (H.slots[k].site != NO_SITE &&
            (best == HISTORY_SERIES || cur_bytes(H.slots[k].site) < cur_bytes(H.slots[best].site)))
            best = k;
    return best;
}

/* The rings of one series, in one block, taken the first time the slot is
 * used (an idle server with few sites holds few). Returns 0 or -1. */
static int slot_alloc_unlocked(slot *sl)
{
    size_t bytes = (HISTORY_FULL + HISTORY_TAIL) * (sizeof(uint64_t) + sizeof(uint32_t));
    char *p = calloc(1, bytes);
    if (!p) return -1;
    sl->b_full = (uint64_t *)p;
    sl->b_tail = sl->b_full + HISTORY_FULL;
    sl->c_full = (uint32_t *)(sl->b_tail + HISTORY_TAIL);
    sl->c_tail = sl->c_full + HISTORY_FULL;
    H.fixed_bytes += bytes;
    return 0;
}

/* Give site i a series starting with this sample (lock): a free slot, or
 * slot *smallest (the used slot with the fewest live bytes, kept up to
 * date here: found once per sample, again only after a hand-over). */
static void assign_slot_unlocked(uint32_t i, size_t *smallest, int *evictions)
{
    size_t k;
    if (H.nslots_used < HISTORY_SERIES) {
        for (k = 0; H.slots[k].site != NO_SITE; k++) {}
    } else {
        k = *smallest;
        uint64_t b = cur_bytes(i);
        if (*evictions >= EVICTIONS_PER_SAMPLE || k == HISTORY_SERIES || b < EVICT_MIN_BYTES ||
            b <= 2 * cur_bytes(H.slots[k].site))
            return;
    }
    if (!H.slots[k].b_full && slot_alloc_unlocked(&H.slots[k]) != 0) return; /* no memory: no series */
    if (H.slots[k].site == NO_SITE) H.nslots_used++;
    else { H.sites[H.slots[k].site].slot = NO_SITE; (*evictions)++; }
    H.slots[k].site = i;
    H.slots[k].since = H.nsamples;
    H.sites[i].slot = (uint32_t)k;
    if (H.nslots_used == HISTORY_SERIES) *smallest = smallest_slot_unlocked();
}

/* ------------------------------------------------------------ sampling */

void history_sample_now(void)
{
    if (!H.started) return;
    int g = tracker_untracked_begin(); /* the history's memory is not a site of /capture */
    double c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    pthread_mutex_lock(&H.sample_lock);
    tracker_snapshot *snap = tracker_snapshot_take();
    uint64_t requests = H.requests ? H.requests() : 0;
    long rss = rss_now_kb();
    if (!snap) goto done;

    H.gen++;
    for (size_t r = 0; r < snap->nstats; r++) {
        uint32_t i = site_of_stack_unlocked(snap->stats[r].stack_id);
        if (i == NO_SITE) continue;
        site *s = &H.sites[i];
        if (s->gen != H.gen) { s->gen = H.gen; s->bytes = 0; s->count = 0; }
        s->bytes += snap->stats[r].size;
        s->count += snap->stats[r].count;
    }

    pthread_mutex_lock(&H.lock);
    /* sites without a series yet: a free slot, or the smallest one's if much bigger */
    int evictions = 0;
    size_t smallest = smallest_slot_unlocked();
    uint64_t bar = smallest < HISTORY_SERIES ? 2 * cur_bytes(H.slots[smallest].site) : 0;
    for (uint32_t i = 0; i < H.nsites; i++) {
        const site *st = &H.sites[i];
        if (st->slot != NO_SITE || st->gen != H.gen || st->bytes == 0) continue;
        if (H.nslots_used == HISTORY_SERIES && (st->bytes <= bar || st->bytes < EVICT_MIN_BYTES)) continue; /* fast path */
        assign_slot_unlocked(i, &smallest, &evictions);
        bar = smallest < HISTORY_SERIES ? 2 * cur_bytes(H.slots[smallest].site) : 0;
    }

    size_t pos = H.nsamples % HISTORY_FULL;
    int tail = H.nsamples % HISTORY_DECIMATE == 0;
    size_t tpos = H.ntail % HISTORY_TAIL;
    H.t_full[pos] = snap->taken_at;
    H.req_full[pos] = requests;
    H.rss_full[pos] = rss > 0 ? (uint64_t)rss : 0;
    if (tail) {
        H.t_tail[tpos] = snap->taken_at;
        H.req_tail[tpos] = requests;
        H.rss_tail[tpos] = H.rss_full[pos];
        H.no_tail[tpos] = H.nsamples;
    }
    for (size_t k = 0; k < HISTORY_SERIES; k++) {
        slot *sl = &H.slots[k];
        if (sl->site == NO_SITE) continue;
        sl->b_full[pos] = cur_bytes(sl->site);
        sl->c_full[pos] = cur_count(sl->site);
        if (tail) {
            sl->b_tail[tpos] = sl->b_full[pos];
            sl->c_tail[tpos] = sl->c_full[pos];
        }
    }
    H.nsamples++;
    if (tail) H.ntail++;
    H.last_snap_ms = snap->take_seconds * 1e3;
    pthread_mutex_unlock(&H.lock);
    tracker_snapshot_free(snap);

done:;
    double ms = (now_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e3;
    pthread_mutex_lock(&H.lock);
    H.last_ms = ms;
    H.cpu_s += ms / 1e3;
    H.info_sites = H.nsites;
    H.info_bytes = H.fixed_bytes + H.names_bytes + H.cap_sites * sizeof(site) +
                   H.hash_cap * sizeof(uint32_t) + H.stack_cap * sizeof(uint32_t);
    pthread_mutex_unlock(&H.lock);
    pthread_mutex_unlock(&H.sample_lock);
    tracker_untracked_end(g);
}

static void *sampler_main(void *arg)
{
    (void)arg;
    struct timespec next;
    double maps_at = 0;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&H.lock);
    while (!H.stopping) {
        pthread_mutex_unlock(&H.lock);
        history_sample_now();
        if (now_s(CLOCK_MONOTONIC) - maps_at >= RSS_MAPS_EVERY_S) { /* RSS explained: the slow part */
            double c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
            rss_refresh_maps();
            maps_at = now_s(CLOCK_MONOTONIC);
            pthread_mutex_lock(&H.lock);
            H.cpu_s += now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
            pthread_mutex_unlock(&H.lock);
        }
        next.tv_nsec += (long)(H.period_ms % 1000u) * 1000000L;
        next.tv_sec += H.period_ms / 1000u + next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
            next = now; /* late (a stopped process, a busy machine): no burst to catch up */
        pthread_mutex_lock(&H.lock);
        while (!H.stopping && pthread_cond_timedwait(&H.wake, &H.lock, &next) != ETIMEDOUT) {}
    }
    pthread_mutex_unlock(&H.lock);
    return NULL;
}

/* ------------------------------------------------------------ start and stop */

/* calloc that counts into H.fixed_bytes; sets *failed on NULL. */
static void *fixed_alloc(size_t n, size_t size, int *failed)
{
    void *p = calloc(n, size);
    if (!p) *failed = 1;
    else H.fixed_bytes += n * size;
    return p;
}

static void free_all(void)
{
    free(H.t_full); free(H.t_tail); free(H.req_full); free(H.req_tail);
    free(H.rss_full); free(H.rss_tail); free(H.no_tail);
    for (size_t k = 0; k < HISTORY_SERIES; k++) free(H.slots[k].b_full); /* one block per slot */
    for (size_t i = 0; i < H.nsites; i++) free(H.sites[i].key);
    free(H.sites); free(H.hash); free(H.stack_site);
    memset(&H.t_full, 0, sizeof H - offsetof(history_state, t_full));
}

int history_start(unsigned period_ms, uint64_t (*requests)(void))
{
    int failed = 0, g = tracker_untracked_begin(), err;
    pthread_condattr_t ca;
    if (H.started || period_ms < HISTORY_PERIOD_MS_MIN || period_ms > HISTORY_PERIOD_MS_MAX) {
        tracker_untracked_end(g);
        errno = EINVAL;
        return -1;
    }
    H.t_full = fixed_alloc(HISTORY_FULL, sizeof *H.t_full, &failed);
    H.req_full = fixed_alloc(HISTORY_FULL, sizeof *H.req_full, &failed);
    H.rss_full = fixed_alloc(HISTORY_FULL, sizeof *H.rss_full, &failed);
    H.t_tail = fixed_alloc(HISTORY_TAIL, sizeof *H.t_tail, &failed);
    H.req_tail = fixed_alloc(HISTORY_TAIL, sizeof *H.req_tail, &failed);
    H.rss_tail = fixed_alloc(HISTORY_TAIL, sizeof *H.rss_tail, &failed);
    H.no_tail = fixed_alloc(HISTORY_TAIL, sizeof *H.no_tail, &failed);
    for (size_t k = 0; k < HISTORY_SERIES; k++) H.slots[k].site = NO_SITE; /* rings on first use */
    tracker_untracked_end(g);
    if (failed) {
        free_all();
        errno = ENOMEM;
        return -1;
    }
    H.period_ms = period_ms;
    H.requests = requests;
    H.started_at = now_s(CLOCK_MONOTONIC);
    H.started = 1;
    H.stopping = 0;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&H.wake, &ca);
    pthread_condattr_destroy(&ca);
    if ((err = pthread_create(&H.thread, NULL, sampler_main, NULL)) != 0) {
        H.started = 0;
        pthread_cond_destroy(&H.wake);
        free_all();
        errno = err;
        return -1;
    }
    return 0;
}

void history_stop(void)
{
    if (!H.started) return;
    pthread_mutex_lock(&H.lock);
    H.stopping = 1;
    pthread_cond_signal(&H.wake);
    pthread_mutex_unlock(&H.lock);
    pthread_join(H.thread, NULL);
    pthread_mutex_lock(&H.sample_lock);
    pthread_mutex_lock(&H.lock);
    H.started = 0;
    int g = tracker_untracked_begin();
    free_all();
    tracker_untracked_end(g);
    pthread_mutex_unlock(&H.lock);
    pthread_mutex_unlock(&H.sample_lock);
    pthread_cond_destroy(&H.wake);
}

/* ------------------------------------------------------------ views */

void history_view_free(history_view *v)
{
    int g = tracker_untracked_begin();
    for (size_t i = 0; i < v->nseries; i++) {
        free(v->series[i].site);
        free(v->series[i].bytes);
        free(v->series[i].count);
    }
    free(v->series); free(v->t); free(v->requests); free(v->rss_kb);
    memset(v, 0, sizeof *v);
    tracker_untracked_end(g);
}

int history_view_take(double window_s, history_view *v)
{
    int g = tracker_untracked_begin(), rc = -1;
    memset(v, 0, sizeof *v);
    pthread_mutex_lock(&H.sample_lock); /* site names stay put while copied */
    pthread_mutex_lock(&H.lock);
    if (!H.started || H.nsamples == 0) goto done;

    double period = H.period_ms / 1e3;
    uint64_t full_avail = H.nsamples < HISTORY_FULL ? H.nsamples : HISTORY_FULL;
    uint64_t tail_avail = H.ntail < HISTORY_TAIL ? H.ntail : HISTORY_TAIL;
    int use_tail = window_s > 0 && window_s > (double)(full_avail - 1) * period && tail_avail > full_avail / HISTORY_DECIMATE;
    double step = use_tail ? period * HISTORY_DECIMATE : period;
    uint64_t avail = use_tail ? tail_avail : full_avail;
    uint64_t n = avail;
    if (window_s > 0 && window_s / step + 1 < (double)n) n = (uint64_t)(window_s / step) + 1;
    if (n < 1) n = 1;
    uint64_t last = use_tail ? H.ntail : H.nsamples; /* one past the newest */
    size_t ring = use_tail ? HISTORY_TAIL : HISTORY_FULL;

    v->n = (size_t)n;
    v->period_s = step;
    v->from_tail = use_tail;
    v->t = malloc(n * sizeof *v->t);
    v->requests = malloc(n * sizeof *v->requests);
    v->rss_kb = malloc(n * sizeof *v->rss_kb);
    v->series = calloc(H.nslots_used ? H.nslots_used : 1, sizeof *v->series);
    if (!v->t || !v->requests || !v->rss_kb || !v->series) goto done;
    for (uint64_t j = 0; j < n; j++) {
        size_t p = (size_t)((last - n + j) % ring);
        v->t[j] = use_tail ? H.t_tail[p] : H.t_full[p];
        v->requests[j] = use_tail ? H.req_tail[p] : H.req_full[p];
        v->rss_kb[j] = use_tail ? H.rss_tail[p] : H.rss_full[p];
    }
    for (size_t k = 0; k < HISTORY_SERIES; k++) {
        const slot *sl = &H.slots[k];
        if (sl->site == NO_SITE) continue;
        history_series *s = &v->series[v->nseries];
        s->bytes = malloc(n * sizeof *s->bytes);
        s->count = malloc(n * sizeof *s->count);
        s->site = strdup(H.sites[sl->site].key);
        s->info = H.sites[sl->site].info;
        v->nseries++; /* freed by history_view_free even when incomplete */
        if (!s->bytes || !s->count || !s->site) goto done;
        for (uint64_t j = 0; j < n; j++) {
            size_t p = (size_t)((last - n + j) % ring);
            uint64_t sample_no = use_tail ? H.no_tail[p] : last - n + j;
            int missing = sample_no < sl->since;
            s->bytes[j] = missing ? HISTORY_MISSING : use_tail ? sl->b_tail[p] : sl->b_full[p];
            s->count[j] = missing ? 0 : use_tail ? sl->c_tail[p] : sl->c_full[p];
        }
    }
    rc = 0;
done:
    pthread_mutex_unlock(&H.lock);
    pthread_mutex_unlock(&H.sample_lock);
    if (rc != 0) history_view_free(v);
    tracker_untracked_end(g);
    return rc;
}

void history_get_info(history_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&H.lock);
    if (H.started) {
        out->running = 1;
        out->period_ms = H.period_ms;
        out->samples = H.nsamples;
        out->sites_known = H.info_sites;
        out->series = H.nslots_used;
        out->memory_bytes = H.info_bytes ? H.info_bytes : H.fixed_bytes;
        out->cpu_s = H.cpu_s;
        double up = now_s(CLOCK_MONOTONIC) - H.started_at;
        out->cpu_share = up > 0 ? H.cpu_s / up : 0;
        out->last_sample_ms = H.last_ms;
        out->last_snapshot_ms = H.last_snap_ms;
        uint64_t full = H.nsamples < HISTORY_FULL ? H.nsamples : HISTORY_FULL;
        out->covers_s = full > 1 ? (double)(full - 1) * H.period_ms / 1e3 : 0;
    }
    pthread_mutex_unlock(&H.lock);
}
