/* report_folded.c - a snapshot as folded stacks ("outer;...;inner bytes" lines), the input of flamegraph.pl and speedscope. */

#include "report_internal.h"

#include <stdio.h>
#include <string.h>

/*
 * One line per call stack, frames outermost first, separated by ';', then
 * a space and a byte count (Brendan Gregg's stackcollapse format):
 *   main (server/main.c:321);user_directory_load (server/user_directory.c:246) 19668000
 * Absolute: the live bytes of each stack. Against a previous snapshot: the
 * growth since it, stacks that grew only (a flame graph cannot draw a
 * negative width). Each frame reads "function (file:line)" (inlined calls
 * are frames of their own, after the function they were inlined into), or
 * "[module] function" without line information; ';' in a name becomes ':'.
 * All stacks are written (opts->top is not used); at most opts->frames
 * frames each, the innermost ones.
 */

/* Append the frames of return address pc, outermost first (an inlined call
 * after the function it was inlined into), each "function (file:line)". */
static void folded_frames(strbuf *sb, uintptr_t pc)
{
    const tracker_frame_info *fr;
    char name[512];
    for (int i = tracker_symbolize_all(pc, &fr) - 1; i >= 0; i--) {
        if (fr[i].file && fr[i].function)
            snprintf(name, sizeof name, "%s (%s:%d)", fr[i].function, fr[i].file, fr[i].line);
        else
            tracker_format_site(&fr[i], name, sizeof name);
        for (char *p = name; (p = strchr(p, ';')) != NULL;) *p = ':';
        sb_append(sb, name, strlen(name));
        if (i) sb_append(sb, ";", 1);
    }
}

void report_folded(strbuf *sb, const tracker_snapshot *now, const tracker_snapshot *prev,
                   const tracker_report_opts *opts)
{
    size_t j = 0;
    for (size_t i = 0; i < now->nstats; i++) {
        const tracker_stack_stat *st = &now->stats[i];
        uint64_t before = 0;
        if (prev) { /* both in ascending stack id order */
            while (j < prev->nstats && prev->stats[j].stack_id < st->stack_id) j++;
            if (j < prev->nstats && prev->stats[j].stack_id == st->stack_id) before = prev->stats[j].size;
        }
        if (st->size <= before) continue;
        int n = 0;
        const uintptr_t *f = tracker_stack_frames(st->stack_id, &n);
        if (n == 0) continue; /* no frames (an id that was never interned): nothing to draw */
        if (n > opts->frames) n = opts->frames;
        for (int k = n - 1; k >= 0; k--) {
            folded_frames(sb, f[k]);
            if (k) sb_append(sb, ";", 1);
        }
        sb_printf(sb, " %llu\n", (unsigned long long)(st->size - before));
    }
}
