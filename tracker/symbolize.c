/* symbolize.c - return address -> file:line (function) with elfutils' libdw, looked up lazily and cached. */

#include "tracker.h"
#include "tracker_internal.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Symbolizing happens at report time only, never in a hook. Everything
 * here runs under the tracker's recursion guard, so libdw's own
 * allocations are not recorded. Results are cached by address for the
 * life of the process (the cache is what makes a capture cost ~25 ns a
 * frame after the first one: the first lookup loads the DWARF, ~0.7 ms).
 */

typedef struct sym_entry {
    uintptr_t pc;               /* 0 = empty slot */
    tracker_frame_info info;
} sym_entry;

static struct {
    pthread_mutex_t lock;       /* guards everything below */
    Dwfl *dwfl;                 /* NULL until first use */
    int dwfl_failed;            /* libdw could not be set up: names stay "?" */
    sym_entry *cache;           /* open addressing, load <= 1/2 */
    size_t mask;                /* slots - 1 */
    size_t count;               /* used slots */
    char cwd[4096];             /* prefix stripped from absolute paths */
    size_t cwd_len;             /* 0 when unknown */
} symbols = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* DWARF inside the module itself only, by default: a libc6-dbg or other
 * separate debug file on the machine would cost ~25 MB of RSS and ~80 ms
 * at the first capture, and make reports differ between machines. Frames
 * in system libraries then read "[libc.so.6] __strdup", as heaptrack shows
 * them without debug packages. TRACKER_DEBUGINFO=system opts in. */
static int find_no_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                             const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                             char **debuginfo_file_name)
{
    (void)mod; (void)userdata; (void)modname; (void)base; (void)file_name;
    (void)debuglink_file; (void)debuglink_crc; (void)debuginfo_file_name;
    return -1;
}

static char *debuginfo_path;
static Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = find_no_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* ---- libdw session ---- */

static int report_modules_unlocked(void)
{
    dwfl_report_begin_add(symbols.dwfl);
    int rc = dwfl_linux_proc_report(symbols.dwfl, getpid());
    dwfl_report_end(symbols.dwfl, NULL, NULL);
    return rc;
}

static int open_dwfl_unlocked(void)
{
    if (symbols.dwfl) return 0;
    if (symbols.dwfl_failed) return -1;
    if (getcwd(symbols.cwd, sizeof symbols.cwd)) symbols.cwd_len = strlen(symbols.cwd);
    const char *dbg = getenv("TRACKER_DEBUGINFO");
    if (dbg && strcmp(dbg, "system") == 0) callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
    symbols.dwfl = dwfl_begin(&callbacks);
    if (!symbols.dwfl || report_modules_unlocked() != 0) {
        if (symbols.dwfl) dwfl_end(symbols.dwfl);
        symbols.dwfl = NULL;
        symbols.dwfl_failed = 1;
        return -1;
    }
    return 0;
}

/* ---- naming ---- */

static const char *keep(const char *s)
{
    return s ? strdup(s) : NULL; /* NULL on OOM is a valid "unknown" */
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

/* Show paths relative to the project (built with -ffile-prefix-map=DIR=.)
 * or to the working directory; leave other absolute paths alone. */
static const char *relative_path(const char *file)
{
    while (file[0] == '.' && file[1] == '/') file += 2;
    if (symbols.cwd_len && strncmp(file, symbols.cwd, symbols.cwd_len) == 0 && file[symbols.cwd_len] == '/')
        file += symbols.cwd_len + 1;
    return file;
}

/* The compile unit holding pc. dwfl_module_addrdie needs .debug_aranges,
 * which clang does not emit by default: then walk the units and ask each
 * whether it covers pc (only on a cache miss, and only for modules that
 * have DWARF at all). */
static Dwarf_Die *cu_at(Dwfl_Module *mod, Dwarf_Addr pc, Dwarf_Addr *bias)
{
    Dwarf_Die *cu = dwfl_module_addrdie(mod, pc, bias);
    if (cu) return cu;
    while ((cu = dwfl_module_nextcu(mod, cu, bias)) != NULL)
        if (dwarf_haspc(cu, pc - *bias) > 0) return cu;
    return NULL;
}

/* Innermost function at pc, inlined ones included (a malloc inlined from
 * fetch_user_data into its caller still says fetch_user_data). */
static const char *function_at(Dwfl_Module *mod, Dwarf_Die *cu, Dwarf_Addr bias, Dwarf_Addr pc)
{
    const char *name = NULL;
    if (cu) {
        Dwarf_Die *scopes = NULL;
        int n = dwarf_getscopes(cu, pc - bias, &scopes);
        for (int i = 0; i < n && !name; i++) {
            int tag = dwarf_tag(&scopes[i]);
            if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine) continue;
            Dwarf_Attribute attr;
            if (dwarf_attr_integrate(&scopes[i], DW_AT_name, &attr))
                name = dwarf_formstring(&attr);
        }
        free(scopes);
    }
    return name ? name : dwfl_module_addrname(mod, pc);
}

static void lookup_unlocked(uintptr_t pc, tracker_frame_info *out)
{
    out->file = NULL;
    out->line = 0;
    out->function = NULL;
    out->module = "?";
    if (open_dwfl_unlocked() != 0) return;
    Dwarf_Addr addr = pc - 1; /* inside the call instruction, not after it */
    Dwfl_Module *mod = dwfl_addrmodule(symbols.dwfl, addr);
    if (!mod && report_modules_unlocked() == 0) mod = dwfl_addrmodule(symbols.dwfl, addr); /* dlopen'ed since */
    if (!mod) return;
    Dwarf_Addr start = 0;
    const char *mname = dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
    out->module = keep(base_name(mname && *mname ? mname : "?"));
    if (!out->module) out->module = "?";
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = cu_at(mod, addr, &bias);
    Dwarf_Line *line = cu ? dwarf_getsrc_die(cu, addr - bias) : NULL;
    int lineno = 0;
    const char *file = line ? dwarf_linesrc(line, NULL, NULL) : NULL;
    if (file && dwarf_lineno(line, &lineno) == 0 && lineno > 0) {
        out->file = keep(relative_path(file));
        out->line = lineno;
    }
    const char *fn = function_at(mod, cu, bias, addr);
    char offset[32];
    if (!fn) { /* a stripped static function: say where, as "+0x1a2b" in the module */
        snprintf(offset, sizeof offset, "+0x%llx", (unsigned long long)(addr - start));
        fn = offset;
    }
    out->function = keep(fn);
}

/* ---- cache ---- */

static size_t pc_slot(uintptr_t pc, size_t mask)
{
    return (size_t)((pc * 0x9e3779b97f4a7c15ULL) >> 20) & mask;
}

static int cache_grow_unlocked(void)
{
    size_t nslots = symbols.cache ? (symbols.mask + 1) * 2 : 1024;
    sym_entry *nc = calloc(nslots, sizeof *nc);
    if (!nc) return -1;
    for (size_t i = 0; symbols.cache && i <= symbols.mask; i++) {
        if (!symbols.cache[i].pc) continue;
        size_t j = pc_slot(symbols.cache[i].pc, nslots - 1);
        while (nc[j].pc) j = (j + 1) & (nslots - 1);
        nc[j] = symbols.cache[i];
    }
    free(symbols.cache);
    symbols.cache = nc;
    symbols.mask = nslots - 1;
    return 0;
}

void tracker_symbolize(uintptr_t pc, tracker_frame_info *out)
{
    if (pc == 0) { /* 0 marks an empty cache slot: never a return address */
        *out = (tracker_frame_info){ .module = "?" };
        return;
    }
    int g = tracker_guard_enter();
    pthread_mutex_lock(&symbols.lock);
    if (symbols.cache) {
        for (size_t i = pc_slot(pc, symbols.mask); symbols.cache[i].pc; i = (i + 1) & symbols.mask)
            if (symbols.cache[i].pc == pc) { *out = symbols.cache[i].info; goto done; }
    }
    lookup_unlocked(pc, out);
    if ((symbols.count + 1) * 2 > (symbols.cache ? symbols.mask + 1 : 0) && cache_grow_unlocked() != 0) goto done;
    size_t i = pc_slot(pc, symbols.mask);
    while (symbols.cache[i].pc) i = (i + 1) & symbols.mask;
    symbols.cache[i].pc = pc;
    symbols.cache[i].info = *out;
    symbols.count++;
done:
    pthread_mutex_unlock(&symbols.lock);
    if (g) tracker_guard_leave();
}

void tracker_symbolize_fork_lock(void) { pthread_mutex_lock(&symbols.lock); }
void tracker_symbolize_fork_unlock(void) { pthread_mutex_unlock(&symbols.lock); }

void tracker_format_site(const tracker_frame_info *info, char *buf, size_t len)
{
    if (info->file)
        snprintf(buf, len, "%s:%d", info->file, info->line);
    else
        snprintf(buf, len, "[%s] %s", info->module, info->function ? info->function : "??");
}
