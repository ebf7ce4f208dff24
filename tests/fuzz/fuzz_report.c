/* fuzz_report.c - libFuzzer target: the tracker's report formatter (tracker_report) on snapshots built from the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracker.h"
#include "tracker_internal.h"

/*
 * Linked with tracker/record/nohooks.c: AddressSanitizer owns malloc here, so no
 * hook feeds the tracker. The stacks a report names are interned at start
 * by calling tracker_record_alloc directly, as a hook would:
 *   - real stacks, walked from helper functions of this file at depths 1..4
 *     (they symbolize to tests/fuzz/fuzz_report.c:LINE);
 *   - forged stacks, from a frame chain built on our own stack whose
 *     innermost return address is not code (0x1, a data address, ~0):
 *     the symbolizer must answer "?" for those.
 * Each record is taken back out of the totals at once: only the interned
 * stacks are kept, so the tracker's state is the same for every input.
 *
 * Each input then builds two snapshots (now, prev) of up to 24 site stats
 * each, with stack ids that may be out of range (the "<unknown>" path),
 * sizes and counts up to 2^40 (a process cannot hold more live bytes: sums
 * of 48 such rows stay far from 2^63), and report options including
 * out-of-range top and frames (tracker_report clamps them).
 *
 * Properties checked (abort() = a finding): a report comes back (no OOM
 * here), *len is its strlen, it ends in '\n'; a JSON report is one valid
 * JSON value; a text report ends with its three "# " summary lines.
 */

#define MAX_ROWS 24
#ifndef VALUE_BITS
#define VALUE_BITS 40 /* -DVALUE_BITS=64 explores impossible sizes too (see the report) */
#endif

static uint32_t nstacks; /* stacks interned at start, ids 0..nstacks-1 */

static void require(int ok, const char *what, const char *report)
{
    if (!ok) {
        fprintf(stderr, "fuzz_report: property violated: %s\n--- report ---\n%s\n", what,
                report ? report : "(null)");
        abort();
    }
}

/* ------------------------------------------------------------ stacks at start */

/* Record and forget a block from frame: interns the stack walked from frame. */
static void intern_from(void *frame)
{
    tracker_record_free(tracker_record_alloc(64, frame), 64, 0);
}

__attribute__((noinline)) static void depth1(void) { intern_from(__builtin_frame_address(0)); }
__attribute__((noinline)) static void depth2(void) { depth1(); intern_from(__builtin_frame_address(0)); }
__attribute__((noinline)) static void depth3(void) { depth2(); intern_from(__builtin_frame_address(0)); }
__attribute__((noinline)) static void depth4(void) { depth3(); intern_from(__builtin_frame_address(0)); }

/* A frame chain {saved fp, return address} built on this function's stack:
 * frame 0 returns to `bogus`, frame 1 to a real return address of ours. */
__attribute__((noinline)) static void forged(uintptr_t bogus)
{
    uintptr_t chain[4];
    chain[0] = (uintptr_t)&chain[2]; /* saved fp of "frame 0": the next record */
    chain[1] = bogus;                /* frame 0's return address: not code */
    chain[2] = (uintptr_t)__builtin_frame_address(0);
    chain[3] = (uintptr_t)__builtin_return_address(0);
    intern_from(chain);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char data_byte = 1;
    tracker_totals t;

    (void)argc;
    (void)argv;
    tracker_init();
    depth4();
    forged(1);
    forged((uintptr_t)&data_byte);
    forged(~(uintptr_t)0);
    tracker_get_totals(&t);
    nstacks = (uint32_t)t.stacks;
    if (nstacks < 5 || t.live_blocks != 0) {
        fprintf(stderr, "fuzz_report: setup interned %u stacks, %llu live blocks left\n", nstacks,
                (unsigned long long)t.live_blocks);
        abort();
    }
    return 0;
}

/* ------------------------------------------------------------ input reader */

typedef struct reader {
    const uint8_t *p; /* next byte */
    size_t left;      /* bytes left; reads past the end give zeros */
} reader;

static uint64_t take(reader *r, int nbytes)
{
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++) {
        v = v << 8 | (r->left ? *r->p : 0);
        if (r->left) {
            r->p++;
            r->left--;
        }
    }
    return v;
}

/* A size or count: mostly small, sometimes up to 2^VALUE_BITS - 1. */
static uint64_t take_value(reader *r)
{
    uint64_t shape = take(r, 1), v = take(r, 6);
    switch (shape % 4) {
    case 0: return 0;
    case 1: return v % 256;
    case 2: return v % (1u << 20);
    default: return VALUE_BITS >= 64 ? v << 16 | take(r, 2) : v & ((UINT64_C(1) << (VALUE_BITS % 64)) - 1);
    }
}

static void fill_snapshot(reader *r, tracker_snapshot *s, tracker_stack_stat *rows, double at)
{
    memset(s, 0, sizeof *s);
    s->stats = rows;
    s->nstats = take(r, 1) % (MAX_ROWS + 1);
    for (size_t i = 0; i < s->nstats; i++) {
        rows[i].stack_id = (uint32_t)(take(r, 1) % (nstacks + 3)); /* a few unknown ids */
        rows[i].size = take_value(r);
        rows[i].count = take_value(r);
        s->totals.live_bytes += rows[i].size;
        s->totals.live_blocks += rows[i].count;
    }
    s->totals.stacks = nstacks;
    s->totals.lost_records = take(r, 1);
    s->totals.bookkeeping_bytes = take_value(r);
    s->taken_at = at;
    s->take_seconds = (double)take(r, 2) / 1e6;
}

/* ------------------------------------------------------------ a tiny JSON checker */

static const char *json_value(const char *s, int depth);

static const char *json_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return s;
}

static const char *json_string(const char *s)
{
    if (*s++ != '"') return NULL;
    for (; *s != '"'; s++) {
        if ((unsigned char)*s < 0x20) return NULL; /* raw control char, or the end */
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i]) return NULL;
                s += 4;
            } else if (!*s || !strchr("\"\\/bfnrt", *s)) {
                return NULL;
            }
        }
    }
    return s + 1;
}

static const char *json_number(const char *s)
{
    const char *start;
    if (*s == '-') s++;
    start = s;
    while (*s >= '0' && *s <= '9') s++;
    if (s == start || (*start == '0' && s - start > 1)) return NULL;
    if (*s == '.') {
        start = ++s;
        while (*s >= '0' && *s <= '9') s++;
        if (s == start) return NULL;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        start = s;
        while (*s >= '0' && *s <= '9') s++;
        if (s == start) return NULL;
    }
    return s;
}

static const char *json_value(const char *s, int depth)
{
    if (depth > 32) return NULL;
    s = json_ws(s);
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        s = json_ws(s + 1);
        if (*s == close) return s + 1;
        for (;;) {
            if (close == '}') {
                s = json_string(json_ws(s));
                if (!s) return NULL;
                s = json_ws(s);
                if (*s++ != ':') return NULL;
            }
            s = json_value(s, depth + 1);
            if (!s) return NULL;
            s = json_ws(s);
            if (*s == ',') { s++; continue; }
            if (*s == close) return s + 1;
            return NULL;
        }
    }
    if (*s == '"') return json_string(s);
    if (strncmp(s, "null", 4) == 0 || strncmp(s, "true", 4) == 0) return s + 4;
    if (strncmp(s, "false", 5) == 0) return s + 5;
    return json_number(s);
}

/* ------------------------------------------------------------ the target */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tracker_stack_stat now_rows[MAX_ROWS], prev_rows[MAX_ROWS];
    reader r = { data, size };
    tracker_snapshot now, prev;
    tracker_report_opts opts = { 0 };
    uint64_t flags = take(&r, 1);
    size_t len = 0;
    char *report;

    opts.key = (tracker_key)(take(&r, 1) % 3);
    opts.top = (int)(int8_t)take(&r, 1);     /* -128..127: clamped to >= 1 */
    opts.frames = (int)(int8_t)take(&r, 1);  /* clamped to 1..TRACKER_MAX_FRAMES */
    opts.format = (flags & 4) ? TRACKER_FORMAT_FOLDED : (flags & 1) ? TRACKER_FORMAT_JSON : TRACKER_FORMAT_TEXT;
    opts.capture_no = (int)(int16_t)take(&r, 2);
    fill_snapshot(&r, &now, now_rows, 100.0 + (double)take(&r, 2) / 1000);
    fill_snapshot(&r, &prev, prev_rows, 100.0);

    report = tracker_report(&now, (flags & 2) ? &prev : NULL, &opts, &len);
    require(report != NULL, "tracker_report returns a report", NULL);
    require(strlen(report) == len, "*len is the report's length", report);
    if (opts.format == TRACKER_FORMAT_FOLDED) { /* may be empty; else "frame;...;frame BYTES" lines */
        for (const char *l = report; *l; l = strchr(l, '\n') + 1) {
            const char *nl = strchr(l, '\n'), *sp = l;
            require(nl != NULL, "a folded report ends in a newline", report);
            for (const char *p = l; p < nl; p++) if (*p == ' ') sp = p;
            require(sp > l && sp + 1 < nl && strspn(sp + 1, "0123456789") == (size_t)(nl - sp - 1),
                    "a folded line is a stack, a space and a byte count", report);
        }
        free(report);
        return 0;
    }
    require(len > 0 && report[len - 1] == '\n', "the report ends in a newline", report);
    if (opts.format == TRACKER_FORMAT_JSON) {
        const char *end = json_value(report, 0);
        require(end != NULL && *json_ws(end) == '\0', "a JSON report is one valid JSON value", report);
    } else {
        const char *tail = report + len - 1;
        int lines = 0;
        while (tail > report && lines < 3) {
            tail--;
            if (*tail == '\n' || tail == report) {
                const char *line = *tail == '\n' ? tail + 1 : tail;
                require(line[0] == '#' && line[1] == ' ', "a text report ends with '# ' lines", report);
                lines++;
            }
        }
        require(lines == 3, "a text report has three summary lines", report);
    }
    free(report);
    return 0;
}
