/* test_golden.c - golden-file tests of the report formats (text, JSON, folded, pprof) from snapshots built by hand. */

#include "tracker.h"
#include "record/tracker_internal.h"
#include "report/pprof.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"

/*
 * The reports are rendered from snapshots whose every number is chosen here:
 * four call stacks of known frames (return addresses inside the functions
 * below, each at a line marked GOLDEN-...), known live and cumulative bytes
 * and blocks, fixed totals, RSS and times, and a previous snapshot for the
 * diffs. What still varies from build to build (addresses, the absolute path
 * of the checkout) is normalized, then each report is compared with its file
 * in tests/unit/golden/.
 *
 * After a deliberate change of a format: GOLDEN_UPDATE=1 build/unit/test_golden
 * rewrites the files; review them with git diff and commit them.
 */

/* ------------------------------------------------------------ the frames */

/* The return address into the caller: symbolized (at pc - 1) as the line of
 * the call, inside the calling function. */
static __attribute__((noinline)) uintptr_t here(void)
{
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory"); /* not a tail call: the caller's frame must be ours */
    return pc;
}

/* A function that fills *pc with a return address at its own line, the line
 * of the FRAME_FN that defines it (with its marker). noinline, and an asm
 * of its own name (so gcc's identical code folding keeps them apart), keep
 * each one a real function and the call a real call. */
#define FRAME_FN(name)                                                    \
    static __attribute__((noinline)) void name(uintptr_t *pc)              \
    {                                                                      \
        *pc = here();                                                      \
        __asm__ volatile("# " #name ::: "memory");                        \
    }

FRAME_FN(serve_a)        /* GOLDEN-SERVE-A */
FRAME_FN(serve_b)        /* GOLDEN-SERVE-B */
FRAME_FN(handle_request) /* GOLDEN-HANDLE-A */
FRAME_FN(handle_login)   /* GOLDEN-HANDLE-B */
FRAME_FN(grow_cache)     /* GOLDEN-GROW */
FRAME_FN(make_session)   /* GOLDEN-SESSION */
FRAME_FN(parse_config)   /* GOLDEN-CONFIG */
FRAME_FN(scratch_buffer) /* GOLDEN-SCRATCH */

/* The line of this file that holds marker (found in the source, never
 * written down here), or 0. */
static int marker_line(const char *src, const char *marker)
{
    char buf[512], pat[64];
    int n = 0, found = 0;
    FILE *f = fopen(src, "r");
    if (!f) return 0;
    snprintf(pat, sizeof pat, "/* %s */", marker);
    while (fgets(buf, sizeof buf, f)) {
        n++;
        if (strstr(buf, pat)) { found = n; break; }
    }
    fclose(f);
    return found;
}

/* ------------------------------------------------------------ the snapshots */

enum { S_CACHE, S_SESSION, S_CONFIG, S_SCRATCH, NSTACKS };

static uint32_t ids[NSTACKS];

/* Intern the four stacks, innermost frame first, as a walk would. */
static int make_stacks(void)
{
    uintptr_t f[NSTACKS][3];
    int n[NSTACKS] = { 3, 3, 2, 2 };

    grow_cache(&f[S_CACHE][0]);
    handle_request(&f[S_CACHE][1]);
    serve_a(&f[S_CACHE][2]);
    make_session(&f[S_SESSION][0]);
    handle_login(&f[S_SESSION][1]);
    serve_a(&f[S_SESSION][2]);
    parse_config(&f[S_CONFIG][0]);
    serve_b(&f[S_CONFIG][1]);
    scratch_buffer(&f[S_SCRATCH][0]);
    serve_b(&f[S_SCRATCH][1]);
    for (int i = 0; i < NSTACKS; i++)
        if (tracker_debug_intern_stack(f[i], n[i], &ids[i]) != 0) return -1;
    return 0;
}

typedef struct row { int stack; uint64_t size, count, alloc_bytes, alloc_count; } row;

/* A snapshot of the given rows, totals and RSS filled as a real one is, at
 * time t. Rows are sorted by stack id as tracker_snapshot_take sorts them. */
static tracker_snapshot *snapshot(const row *rows, size_t n, double t)
{
    tracker_snapshot *s = calloc(1, sizeof *s);
    s->stats = calloc(n, sizeof *s->stats);
    s->nstats = n;
    for (size_t i = 0; i < n; i++) {
        tracker_stack_stat *st = &s->stats[i];
        st->stack_id = ids[rows[i].stack];
        st->size = rows[i].size;
        st->count = rows[i].count;
        st->alloc_bytes = rows[i].alloc_bytes;
        st->alloc_count = rows[i].alloc_count;
        s->totals.live_bytes += st->size;
        s->totals.live_blocks += st->count;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort by stack id */
        for (size_t j = i; j > 0 && s->stats[j].stack_id < s->stats[j - 1].stack_id; j--) {
            tracker_stack_stat tmp = s->stats[j];
            s->stats[j] = s->stats[j - 1];
            s->stats[j - 1] = tmp;
        }
    s->totals.stacks = NSTACKS;
    s->totals.bookkeeping_bytes = 1u << 20;
    s->totals.heap_bookkeeping_bytes = 4096;
    s->taken_at = t;
    s->take_seconds = 0.000125;
    s->rss_bytes = 64u << 20;
    s->rss_anon_bytes = 48u << 20;
    s->rss_file_bytes = 16u << 20;
    s->threads = 3;
    return s;
}

/* ------------------------------------------------------------ normalizing */

static char root[PATH_MAX]; /* the checkout: build/unit/test_golden's ../.. */

typedef struct text { char *s; size_t len, cap; } text;

static void put(text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void putf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(text *t, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    put(t, buf, n < 0 ? 0 : (size_t)n >= sizeof buf ? sizeof buf - 1 : (size_t)n);
}

/* The report's own time, which no snapshot fixes: the number after these is "?". */
static const char *const timings[] = { "report ", "\"report_ms\":" };

/* in, with the checkout's absolute path written "$ROOT", every hex number
 * "0x?" and the report's own time "?": what differs between two runs or
 * two builds of the same source. */
static char *normalize(const char *in, size_t len)
{
    text t = { 0 };
    size_t rl = strlen(root);
    put(&t, "", 0);
    for (size_t i = 0; i < len;) {
        size_t k, tl = 0;
        for (k = 0; k < sizeof timings / sizeof *timings; k++) {
            tl = strlen(timings[k]);
            if (i + tl < len && memcmp(in + i, timings[k], tl) == 0 && in[i + tl] >= '0' && in[i + tl] <= '9') break;
        }
        if (k < sizeof timings / sizeof *timings) {
            put(&t, in + i, tl);
            put(&t, "?", 1);
            for (i += tl; i < len && ((in[i] >= '0' && in[i] <= '9') || in[i] == '.'); i++)
                ;
        } else if (rl && i + rl <= len && memcmp(in + i, root, rl) == 0) {
            put(&t, "$ROOT", 5);
            i += rl;
        } else if (in[i] == '0' && i + 2 < len && in[i + 1] == 'x' && strchr("0123456789abcdef", in[i + 2])) {
            put(&t, "0x?", 3);
            for (i += 2; i < len && in[i] && strchr("0123456789abcdef", in[i]); i++)
                ;
        } else {
            put(&t, in + i, 1);
            i++;
        }
    }
    return t.s;
}

/* ------------------------------------------------------------ pprof, decoded */

/* gunzip in (the whole profile fits in 1 MiB here). */
static unsigned char *gunzip(const unsigned char *in, size_t len, size_t *out_len)
{
    size_t cap = 1u << 20;
    unsigned char *out = malloc(cap);
    z_stream z = { 0 };
    if (!out || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) { free(out); return NULL; }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    *out_len = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) { free(out); return NULL; }
    return out;
}

static const char *str_of(const Perftools__Profiles__Profile *p, int64_t i)
{
    return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : "<bad string index>";
}

/* The profile as lines of text, in the profile's own order: what a viewer
 * reads of it (types, values, each location's functions and lines, the
 * mappings' files), ids and addresses left out. NULL when it does not decode. */
static char *pprof_text(const unsigned char *gz, size_t gz_len)
{
    size_t len;
    unsigned char *raw = gunzip(gz, gz_len, &len);
    if (!raw) return NULL;
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
    free(raw);
    if (!p) return NULL;

    text t = { 0 };
    put(&t, "", 0);
    for (size_t i = 0; i < p->n_sample_type; i++)
        putf(&t, "sample_type %s/%s\n", str_of(p, p->sample_type[i]->type), str_of(p, p->sample_type[i]->unit));
    if (p->period_type)
        putf(&t, "period_type %s/%s period %" PRId64 "\n", str_of(p, p->period_type->type),
             str_of(p, p->period_type->unit), p->period);
    putf(&t, "default_sample_type %s\n", str_of(p, p->default_sample_type));
    putf(&t, "time_nanos %s, duration_nanos %" PRId64 "\n", p->time_nanos > 0 ? "set" : "0", p->duration_nanos);
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        put(&t, "sample", 6);
        for (size_t v = 0; v < s->n_value; v++) putf(&t, " %" PRId64, s->value[v]);
        put(&t, "\n", 1);
        for (size_t k = 0; k < s->n_location_id; k++) {
            const Perftools__Profiles__Location *loc = NULL;
            for (size_t l = 0; l < p->n_location; l++)
                if (p->location[l]->id == s->location_id[k]) loc = p->location[l];
            if (!loc) { put(&t, "  <no such location>\n", 21); continue; }
            const char *map = "<no mapping>";
            for (size_t m = 0; m < p->n_mapping; m++)
                if (p->mapping[m]->id == loc->mapping_id) map = str_of(p, p->mapping[m]->filename);
            putf(&t, "  location in %s%s\n", map, loc->address ? "" : " (no address)");
            for (size_t l = 0; l < loc->n_line; l++) {
                const Perftools__Profiles__Function *fn = NULL;
                for (size_t f = 0; f < p->n_function; f++)
                    if (p->function[f]->id == loc->line[l]->function_id) fn = p->function[f];
                putf(&t, "    %s %s:%" PRId64 "\n", fn ? str_of(p, fn->name) : "<no function>",
                     fn ? str_of(p, fn->filename) : "?", loc->line[l]->line);
            }
        }
    }
    perftools__profiles__profile__free_unpacked(p, NULL);
    return t.s;
}

/* ------------------------------------------------------------ golden files */

static int update; /* GOLDEN_UPDATE=1: write the files instead of comparing */

/* Where a and b first differ: the line (1-based, 0 when equal) and column,
 * each side's text from a little before that column in ea/eb (a JSON report
 * is one long line: the difference must show). */
static int first_diff(const char *a, const char *b, int *col, char *ea, char *eb, size_t cap)
{
    int line = 1;
    for (;;) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || memcmp(a, b, la) != 0 || (a[la] == '\0') != (b[lb] == '\0')) {
            size_t c = 0;
            while (c < la && c < lb && a[c] == b[c]) c++;
            size_t from = c > 40 ? c - 40 : 0;
            snprintf(ea, cap, "%s%.*s%s", from ? "..." : "", (int)(la - from), a + from,
                     a[la] || la ? "" : "<end of file>");
            snprintf(eb, cap, "%s%.*s%s", from ? "..." : "", (int)(lb - from), b + from,
                     b[lb] || lb ? "" : "<end of output>");
            *col = (int)c + 1;
            return line;
        }
        if (a[la] == '\0') return 0;
        a += la + 1;
        b += lb + 1;
        line++;
    }
}

/* Compare got (already normalized) with tests/unit/golden/NAME, or write it
 * there under GOLDEN_UPDATE=1. */
static void golden(const char *name, const char *got)
{
    char path[PATH_MAX + 64], ea[120], eb[120];
    snprintf(path, sizeof path, "%s/tests/unit/golden/%s", root, name);
    if (!got) { CHECK(0, "%s: rendered", name); return; }
    if (update) {
        FILE *f = fopen(path, "w");
        int ok = f && fputs(got, f) >= 0;
        if (f && fclose(f) != 0) ok = 0;
        CHECK(ok, "%s: golden file rewritten (GOLDEN_UPDATE=1)", name);
        return;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        CHECK(0, "%s: no golden file %s (%s; GOLDEN_UPDATE=1 %s writes it)", name, path, strerror(errno),
              "build/unit/test_golden");
        return;
    }
    text want = { 0 };
    char buf[4096];
    size_t n;
    put(&want, "", 0);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) put(&want, buf, n);
    fclose(f);
    int col = 0, line = first_diff(want.s, got, &col, ea, eb, sizeof ea);
    if (line == 0)
        CHECK(1, "%s: as tests/unit/golden/%s", name, name);
    else
        CHECK(0, "%s: differs from tests/unit/golden/%s at line %d, column %d (expected '%s', got '%s'; "
              "if the change is meant: GOLDEN_UPDATE=1 build/unit/test_golden, then git diff)",
              name, name, line, col, ea, eb);
    free(want.s);
}

static void golden_report(const char *name, const tracker_snapshot *now, const tracker_snapshot *prev,
                          tracker_key key, int frames, tracker_format format)
{
    tracker_report_opts o = { .key = key, .top = 10, .frames = frames, .format = format,
                              .capture_no = prev ? 2 : 1, .system = "default" };
    size_t len = 0;
    char *r = tracker_report(now, prev, &o, &len);
    char *norm = r ? normalize(r, len) : NULL;
    golden(name, norm);
    free(norm);
    free(r);
}

static void golden_pprof(const char *name, const tracker_snapshot *now, const tracker_snapshot *base, int allocs)
{
    unsigned char *gz = NULL;
    size_t len = 0;
    int rc = allocs ? tracker_pprof_allocs(now, base, &gz, &len) : tracker_pprof_heap(now, base, &gz, &len);
    char *txt = rc == 0 ? pprof_text(gz, len) : NULL;
    char *norm = txt ? normalize(txt, strlen(txt)) : NULL;
    CHECK(txt != NULL, "%s: the profile gunzips and decodes with protobuf-c", name);
    golden(name, norm);
    free(norm);
    free(txt);
    free(gz);
}

static void free_snapshot(tracker_snapshot *s)
{
    free(s->stats);
    free(s);
}

int main(void)
{
    char exe[PATH_MAX], src[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) { CHECK(0, "readlink /proc/self/exe"); CHECK_PLAN(); return 1; }
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) { /* build/unit/test_golden -> the checkout */
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
    }
    snprintf(root, sizeof root, "%s", exe);
    if (chdir(root) != 0) { CHECK(0, "chdir %s: %s", root, strerror(errno)); CHECK_PLAN(); return 1; }
    const char *u = getenv("GOLDEN_UPDATE");
    update = u && strcmp(u, "1") == 0;
    setenv("TRACKER_SYSTEM", "default", 1);

    CHECK(make_stacks() == 0, "the four stacks are interned");

    /* The frames are named as this file's marked lines, found in the source. */
    snprintf(src, sizeof src, "%s/%s", root, __FILE__);
    struct { int stack, frame; const char *marker; } where[] = {
        { S_CACHE, 0, "GOLDEN-GROW" }, { S_CACHE, 1, "GOLDEN-HANDLE-A" }, { S_CACHE, 2, "GOLDEN-SERVE-A" },
        { S_SESSION, 0, "GOLDEN-SESSION" }, { S_SESSION, 1, "GOLDEN-HANDLE-B" }, { S_CONFIG, 0, "GOLDEN-CONFIG" }, { S_CONFIG, 1, "GOLDEN-SERVE-B" },
    };
    for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
        int nf = 0;
        const uintptr_t *f = tracker_stack_frames(ids[where[i].stack], &nf);
        tracker_frame_info info = { 0 };
        if (f && where[i].frame < nf) tracker_symbolize(f[where[i].frame], &info);
        int want = marker_line(src, where[i].marker);
        CHECK(want > 0 && info.line == want && info.file && strcmp(info.file, __FILE__) == 0,
              "frame %d of stack %d is %s:%d, the %s line (got %s:%d)", where[i].frame, where[i].stack,
              __FILE__, want, where[i].marker, info.file ? info.file : "?", info.line);
    }

    /* prev: the cache at 60 records, the sessions, a scratch buffer since freed.
     * now: the cache at 100 records, the sessions unchanged, a new config. */
    const row prev_rows[] = {
        { S_CACHE, 60 * 40200, 60, 60 * 40200, 60 },
        { S_SESSION, 10 * 3000, 10, 25 * 3000, 25 },
        { S_SCRATCH, 1000, 1, 1000, 1 },
    };
    const row now_rows[] = {
        { S_CACHE, 100 * 40200, 100, 100 * 40200, 100 },
        { S_SESSION, 10 * 3000, 10, 25 * 3000, 25 },
        { S_CONFIG, 512, 4, 768, 6 },
        { S_SCRATCH, 0, 0, 1000, 1 }, /* freed: cumulative only (TRACKER_SNAP_ALL_STACKS) */
    };
    tracker_snapshot *prev = snapshot(prev_rows, 3, 90.0);
    tracker_snapshot *now = snapshot(now_rows, 4, 100.0);

    golden_report("text_lineno.txt", now, NULL, TRACKER_KEY_LINENO, 1, TRACKER_FORMAT_TEXT);
    golden_report("text_lineno_diff.txt", now, prev, TRACKER_KEY_LINENO, 1, TRACKER_FORMAT_TEXT);
    golden_report("text_traceback_diff.txt", now, prev, TRACKER_KEY_TRACEBACK, 3, TRACKER_FORMAT_TEXT);
    golden_report("text_filename.txt", now, NULL, TRACKER_KEY_FILENAME, 1, TRACKER_FORMAT_TEXT);
    golden_report("json_lineno_diff.json", now, prev, TRACKER_KEY_LINENO, 1, TRACKER_FORMAT_JSON);
    golden_report("json_traceback.json", now, NULL, TRACKER_KEY_TRACEBACK, 3, TRACKER_FORMAT_JSON);
    golden_report("folded.txt", now, NULL, TRACKER_KEY_TRACEBACK, 3, TRACKER_FORMAT_FOLDED);
    golden_report("folded_diff.txt", now, prev, TRACKER_KEY_TRACEBACK, 3, TRACKER_FORMAT_FOLDED);
    golden_pprof("pprof_heap.txt", now, NULL, 0);
    golden_pprof("pprof_heap_delta.txt", now, prev, 0);
    golden_pprof("pprof_allocs.txt", now, NULL, 1);

    free_snapshot(prev);
    free_snapshot(now);
    CHECK_PLAN();
    return failed != 0;
}
