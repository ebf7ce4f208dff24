/* retention_report.c - the parent's half of the retention scan: names for the child's keys (sites, globals, stacks), text and JSON. */

#include "report_internal.h"
#include "retention.h"
#include "tracker_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The name of a site key: a name chosen before the clone, or the site of a
 * stack interned after it. malloc'ed. */
static char *site_name(uint32_t key, char **names, uint32_t nnames, const char *system)
{
    if (!(key & RET_LATE_SITE)) return strdup(key < nnames ? names[key] : "?");
    tracker_report_opts o = { .key = TRACKER_KEY_LINENO, .top = 1, .frames = 1, .system = system };
    char *s = tracker_site_key(key & ~RET_LATE_SITE, &o, NULL);
    return s ? s : strdup("?");
}

/* "global NAME (module)" for a word of a module's data or bss: the symbol
 * holding it, from the dynamic symbols (dladdr) or the module's symbol
 * table (libdw, through tracker_symbolize), else module+offset. */
static char *global_name(uintptr_t addr)
{
    char buf[512];
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    const char *mod = "?";
    if (dladdr1((void *)addr, &info, (void **)&sym, RTLD_DL_SYMENT) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        mod = slash ? slash + 1 : info.dli_fname;
        if (!*mod) mod = program_invocation_short_name;
        if (info.dli_sname && sym && addr - (uintptr_t)info.dli_saddr < (sym->st_size ? sym->st_size : 8)) {
            snprintf(buf, sizeof buf, "global %s (%s)", info.dli_sname, mod);
            return strdup(buf);
        }
    }
    tracker_frame_info f;
    tracker_symbolize(addr + 1, &f); /* it looks at pc - 1 */
    if (f.function && f.function[0] != '+')
        snprintf(buf, sizeof buf, "global %s (%s)", f.function, f.module ? f.module : mod);
    else
        snprintf(buf, sizeof buf, "global at %s%s (%s)", f.function ? "" : "0x", f.function ? f.function : "",
                 f.module ? f.module : mod);
    if (!f.function) snprintf(buf, sizeof buf, "global at %#lx (%s)", (unsigned long)addr, mod);
    return strdup(buf);
}

static char *owner_name(uint64_t owner, char **names, uint32_t nnames, const char *system, const pid_t *tids,
                        unsigned ntids)
{
    char buf[64];
    uint64_t v = RET_OWNER_VALUE(owner);
    switch (RET_OWNER_KIND(owner)) {
    case RET_OWN_SITE: return site_name((uint32_t)v, names, nnames, system);
    case RET_OWN_DATA: return global_name((uintptr_t)v);
    case RET_OWN_STACK:
        if (v < ntids) snprintf(buf, sizeof buf, "thread stack (tid %d)", (int)tids[v]);
        else snprintf(buf, sizeof buf, "thread stack");
        return strdup(buf);
    case RET_OWN_TLS: return strdup("main thread's TLS");
    default: return strdup("several roots");
    }
}

static int by_bytes_owner(const void *a, const void *b)
{
    const tracker_retention_owner *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return strcmp(x->owner, y->owner);
}

static int by_bytes_site(const void *a, const void *b)
{
    const tracker_retention_site *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return strcmp(x->site, y->site);
}

static int by_name_site(const void *a, const void *b)
{
    return strcmp(((const tracker_retention_site *)a)->site, ((const tracker_retention_site *)b)->site);
}

/* The site named name in r (sorted by name while building), or NULL. */
static tracker_retention_site *find_site(tracker_retention_site *v, size_t n, const char *name)
{
    tracker_retention_site key = { .site = (char *)name };
    return bsearch(&key, v, n, sizeof *v, by_name_site);
}

int tracker_retention_build(tracker_retention *r, const ret_wire_head *h, const ret_wire_site *sites,
                            const ret_wire_pair *pairs, char **names, uint32_t nnames, const char *system,
                            const pid_t *tids, unsigned ntids)
{
    r->blocks_scanned = h->blocks;
    r->bytes_scanned = h->bytes;
    r->table_blocks = h->table_blocks;
    r->heap_bytes_read = h->heap_bytes_read;
    r->edges = h->edges;
    r->interior_blocks = h->interior_blocks;
    r->child_private_kb = h->child_private_kb;
    r->root_data_bytes = h->data_bytes;
    r->root_stack_bytes = h->stack_bytes;
    r->root_tls_bytes = h->tls_bytes;
    r->data_ranges = h->data_ranges;
    r->threads = h->stacks;
    r->stacks_exact = h->stacks_exact;
    r->stacks_whole = h->stacks_whole;
    /* one entry per site name (a late stack may share a name with another) */
    tracker_retention_site *v = calloc(h->nsites + 1, sizeof *v);
    if (!v) return -1;
    size_t n = 0;
    for (uint32_t i = 0; i < h->nsites; i++) {
        tracker_retention_site *s = &v[n++];
        s->site = site_name(sites[i].site, names, nnames, system);
        if (!s->site) return -1;
        s->blocks = sites[i].blocks;
        s->bytes = sites[i].bytes;
        s->indirect_blocks = sites[i].indirect_blocks;
        s->indirect_bytes = sites[i].indirect_bytes;
        s->unreachable_blocks = sites[i].direct_blocks + sites[i].indirect_blocks;
        s->unreachable_bytes = sites[i].direct_bytes + sites[i].indirect_bytes;
        s->reachable_blocks = sites[i].reachable_blocks;
        s->reachable_bytes = sites[i].reachable_bytes;
        s->interior_blocks = sites[i].interior_blocks;
    }
    qsort(v, n, sizeof *v, by_name_site);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && strcmp(v[m - 1].site, v[i].site) == 0) {
            tracker_retention_site *a = &v[m - 1], *b = &v[i];
            a->blocks += b->blocks; a->bytes += b->bytes;
            a->indirect_blocks += b->indirect_blocks; a->indirect_bytes += b->indirect_bytes;
            a->unreachable_blocks += b->unreachable_blocks; a->unreachable_bytes += b->unreachable_bytes;
            a->reachable_blocks += b->reachable_blocks; a->reachable_bytes += b->reachable_bytes;
            a->interior_blocks += b->interior_blocks;
            free(b->site);
        } else {
            v[m++] = v[i];
        }
    }
    n = m;
    /* owners: each pair named, added to its site, equal names merged */
    for (uint32_t i = 0; i < h->npairs; i++) {
        char *sn = site_name(pairs[i].site, names, nnames, system);
        char *on = owner_name(pairs[i].owner, names, nnames, system, tids, ntids);
        tracker_retention_site *s = sn ? find_site(v, n, sn) : NULL;
        free(sn);
        if (!s || !on) { free(on); continue; }
        size_t k;
        for (k = 0; k < s->nowners && strcmp(s->owners[k].owner, on) != 0; k++) {}
        if (k == s->nowners) {
            tracker_retention_owner *no = realloc(s->owners, (s->nowners + 1) * sizeof *no);
            if (!no) { free(on); return -1; }
            s->owners = no;
            s->owners[s->nowners++] = (tracker_retention_owner){ on, RET_OWNER_KIND(pairs[i].owner), 0, 0 };
        } else {
            free(on);
        }
        s->owners[k].bytes += pairs[i].bytes;
        s->owners[k].blocks += pairs[i].blocks;
    }
    for (size_t i = 0; i < n; i++) {
        qsort(v[i].owners, v[i].nowners, sizeof *v[i].owners, by_bytes_owner);
        r->unreachable_bytes += v[i].unreachable_bytes;
        r->unreachable_blocks += v[i].unreachable_blocks;
        r->reachable_bytes += v[i].reachable_bytes;
        r->reachable_blocks += v[i].reachable_blocks;
    }
    qsort(v, n, sizeof *v, by_bytes_site);
    r->sites = v;
    r->nsites = n;
    return 0;
}

void tracker_retention_free(tracker_retention *r)
{
    if (!r) return;
    int g = tracker_internal_enter();
    for (size_t i = 0; i < r->nsites; i++) {
        for (size_t k = 0; k < r->sites[i].nowners; k++) free(r->sites[i].owners[k].owner);
        free(r->sites[i].owners);
        free(r->sites[i].site);
    }
    free(r->sites);
    free(r);
    tracker_internal_leave(g);
}

/* ---- chains and verdicts ---- */

static const tracker_retention_site *site_by_name(const tracker_retention *r, const char *name)
{
    for (size_t i = 0; i < r->nsites; i++)
        if (strcmp(r->sites[i].site, name) == 0) return &r->sites[i];
    return NULL;
}

#define CHAIN_MAX 6

/* The owners of s's top owner, and theirs, up to a root: chain[0] is s's
 * top owner. Returns the number of links (0: s has no reachable bytes). */
static int chain_of(const tracker_retention *r, const tracker_retention_site *s, const char **chain)
{
    int n = 0;
    while (s && s->nowners && n < CHAIN_MAX) {
        const tracker_retention_owner *o = &s->owners[0];
        for (int k = 0; k < n; k++)
            if (strcmp(chain[k], o->owner) == 0) return n; /* a loop of sites */
        chain[n++] = o->owner;
        s = o->kind == RET_OWN_SITE ? site_by_name(r, o->owner) : NULL;
    }
    return n;
}

static void verdict_into(strbuf *sb, const tracker_retention *r, const tracker_retention_site *s)
{
    const char *chain[CHAIN_MAX];
    int n = chain_of(r, s, chain);
    if (s->unreachable_bytes * 10 >= s->bytes * 9 && s->bytes) {
        sb_printf(sb, "lost");
        return;
    }
    if (s->unreachable_bytes)
        sb_printf(sb, "partly lost (%.0f%% of its bytes); ", 100.0 * (double)s->unreachable_bytes / (double)s->bytes);
    if (!n) { sb_printf(sb, "held"); return; }
    sb_printf(sb, "held by %s", chain[0]);
    for (int k = 1; k < n; k++) sb_printf(sb, " <- %s", chain[k]);
}

char *tracker_retention_verdict(const tracker_retention *r, const char *site)
{
    const tracker_retention_site *s = r && r->available ? site_by_name(r, site) : NULL;
    if (!s) return NULL;
    int g = tracker_internal_enter(); /* the answer's memory is the tracker's, as tracker_report's is */
    strbuf sb = { 0 };
    verdict_into(&sb, r, s);
    if (sb.oom) { free(sb.buf); sb.buf = NULL; }
    tracker_internal_leave(g);
    return sb.buf;
}

/* ---- text and JSON ---- */

static void text_report(strbuf *sb, const tracker_retention *r, int top)
{
    char a[32], b[32], c[32];
    for (size_t i = 0; i < r->nsites && i < (size_t)top; i++) {
        const tracker_retention_site *s = &r->sites[i];
        format_size(a, sizeof a, (double)s->bytes, 0);
        format_size(b, sizeof b, (double)s->unreachable_bytes, 0);
        format_size(c, sizeof c, (double)s->reachable_bytes, 0);
        sb_printf(sb, "%s: size=%s, count=%llu; unreachable=%s (%llu blocks, %llu of them indirect), reachable=%s",
                  s->site, a, (unsigned long long)s->blocks, b, (unsigned long long)s->unreachable_blocks,
                  (unsigned long long)s->indirect_blocks, c);
        if (s->interior_blocks) sb_printf(sb, " (%llu reached only by interior pointers)", (unsigned long long)s->interior_blocks);
        sb_printf(sb, "\n    verdict: ");
        verdict_into(sb, r, s);
        sb_printf(sb, "\n");
        for (size_t k = 0; k < s->nowners && k < 5; k++) {
            format_size(a, sizeof a, (double)s->owners[k].bytes, 0);
            sb_printf(sb, "    held by %s: %s in %llu blocks\n", s->owners[k].owner, a,
                      (unsigned long long)s->owners[k].blocks);
        }
    }
}

static void json_report(strbuf *sb, const tracker_retention *r, int top)
{
    sb_printf(sb, ",\"unreachable_bytes\":%llu,\"unreachable_blocks\":%llu,\"reachable_bytes\":%llu,"
                  "\"reachable_blocks\":%llu,\"sites\":[",
              (unsigned long long)r->unreachable_bytes, (unsigned long long)r->unreachable_blocks,
              (unsigned long long)r->reachable_bytes, (unsigned long long)r->reachable_blocks);
    for (size_t i = 0; i < r->nsites && i < (size_t)top; i++) {
        const tracker_retention_site *s = &r->sites[i];
        sb_printf(sb, "%s{\"site\":", i ? "," : "");
        sb_json_string(sb, s->site);
        sb_printf(sb, ",\"bytes\":%llu,\"blocks\":%llu,\"unreachable_bytes\":%llu,\"unreachable_blocks\":%llu,"
                      "\"indirect_bytes\":%llu,\"indirect_blocks\":%llu,\"reachable_bytes\":%llu,"
                      "\"reachable_blocks\":%llu,\"interior_blocks\":%llu,\"verdict\":",
                  (unsigned long long)s->bytes, (unsigned long long)s->blocks,
                  (unsigned long long)s->unreachable_bytes, (unsigned long long)s->unreachable_blocks,
                  (unsigned long long)s->indirect_bytes, (unsigned long long)s->indirect_blocks,
                  (unsigned long long)s->reachable_bytes, (unsigned long long)s->reachable_blocks,
                  (unsigned long long)s->interior_blocks);
        strbuf v = { 0 };
        verdict_into(&v, r, s);
        sb_json_string(sb, v.oom ? "?" : v.buf);
        free(v.buf);
        sb_printf(sb, ",\"owners\":[");
        for (size_t k = 0; k < s->nowners && k < 5; k++) {
            sb_printf(sb, "%s{\"owner\":", k ? "," : "");
            sb_json_string(sb, s->owners[k].owner);
            static const char *kinds[] = { "?", "site", "global", "stack", "tls", "several" };
            sb_printf(sb, ",\"kind\":\"%s\",\"bytes\":%llu,\"blocks\":%llu}",
                      kinds[s->owners[k].kind >= 1 && s->owners[k].kind <= 5 ? s->owners[k].kind : 0],
                      (unsigned long long)s->owners[k].bytes, (unsigned long long)s->owners[k].blocks);
        }
        const char *chain[CHAIN_MAX];
        int n = chain_of(r, s, chain);
        sb_printf(sb, "],\"chain\":[");
        for (int k = 0; k < n; k++) {
            if (k) sb_append(sb, ",", 1);
            sb_json_string(sb, chain[k]);
        }
        sb_printf(sb, "]}");
    }
    sb_printf(sb, "]");
}

char *tracker_retention_format(const tracker_retention *r, int top, int json, size_t *len)
{
    int g = tracker_internal_enter();
    strbuf sb = { 0 };
    char a[32], b[32], c[32];
    if (json) {
        sb_printf(&sb, "{\"available\":%s", r->available ? "true" : "false");
        if (!r->available) {
            sb_printf(&sb, ",\"reason\":");
            sb_json_string(&sb, r->reason);
        } else {
            sb_printf(&sb, ",\"pause_ms\":%.3f,\"scan_ms\":%.3f,\"enum_ms\":%.3f,\"mark_ms\":%.3f,\"dom_ms\":%.3f",
                      r->pause_ms, r->scan_ms, r->enum_ms, r->mark_ms, r->dom_ms);
            sb_printf(&sb, ",\"child_private_kb\":%llu", (unsigned long long)r->child_private_kb);
            sb_printf(&sb, ",\"total_ms\":%.3f,\"blocks_scanned\":%llu,"
                           "\"bytes_scanned\":%llu,\"table_blocks\":%llu,\"heap_bytes_read\":%llu,\"edges\":%llu,"
                           "\"interior_blocks\":%llu,\"roots\":{\"data_ranges\":%u,\"data_bytes\":%llu,"
                           "\"stacks\":%u,\"stacks_exact\":%u,\"stacks_whole\":%u,\"stack_bytes\":%llu,"
                           "\"tls_bytes\":%llu}",
                      r->total_ms, (unsigned long long)r->blocks_scanned,
                      (unsigned long long)r->bytes_scanned, (unsigned long long)r->table_blocks,
                      (unsigned long long)r->heap_bytes_read, (unsigned long long)r->edges,
                      (unsigned long long)r->interior_blocks, r->data_ranges,
                      (unsigned long long)r->root_data_bytes, r->threads, r->stacks_exact, r->stacks_whole,
                      (unsigned long long)r->root_stack_bytes, (unsigned long long)r->root_tls_bytes);
            json_report(&sb, r, top);
        }
        sb_printf(&sb, "}\n");
    } else if (!r->available) {
        sb_printf(&sb, "# retention: unavailable: %s\n", r->reason);
    } else {
        text_report(&sb, r, top);
        format_size(a, sizeof a, (double)r->unreachable_bytes, 0);
        format_size(b, sizeof b, (double)r->reachable_bytes, 0);
        sb_printf(&sb, "# retention: unreachable %s in %llu blocks, reachable %s in %llu blocks; top %d of %zu sites\n",
                  a, (unsigned long long)r->unreachable_blocks, b, (unsigned long long)r->reachable_blocks,
                  top < (int)r->nsites ? top : (int)r->nsites, r->nsites);
        format_size(a, sizeof a, (double)r->bytes_scanned, 0);
        format_size(b, sizeof b, (double)r->root_data_bytes, 0);
        format_size(c, sizeof c, (double)r->root_stack_bytes, 0);
        sb_printf(&sb, "# scan: pause %.3f ms (the clone), scan %.1f ms, total %.1f ms; %llu blocks (%s) scanned; "
                       "roots: %u data ranges (%s), %u stacks (%s; %u from their stack pointer, %u whole)\n",
                  r->pause_ms, r->scan_ms, r->total_ms, (unsigned long long)r->blocks_scanned, a, r->data_ranges, b,
                  r->threads, c, r->stacks_exact, r->stacks_whole);
        format_size(a, sizeof a, (double)r->child_private_kb * 1024, 0);
        sb_printf(&sb, "# memory: %s of the child's own (its arrays, and pages the program wrote during the scan)\n", a);
    }
    char *out = NULL;
    if (sb.oom) free(sb.buf);
    else { out = sb.buf ? sb.buf : strdup(""); if (len) *len = out ? strlen(out) : 0; }
    tracker_internal_leave(g);
    return out;
}
