/* symbolize.c - return address -> its source frames (function, file:line; inlined calls expanded, C++ demangled) with elfutils' libdw, cached. */
/* Nearly 800 lines: the libdw session, its cache (with the peeks at an
 * address's module before it is symbolized) and the separate-debug-file
 * search depend on each other's invariants (a session replaced, not
 * re-reported into); split, they would share private state. */

#include "tracker.h"
#include "symbolize.h"
#include "tracker_internal.h"
#include "lockorder.h"
#include "symtab.h"
#include "cuindex.h"
#include "cfi.h"
#include "index.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Symbolizing happens at report time only, never in a hook. Everything
 * here runs under the tracker's recursion guard, so libdw's own
 * allocations are not recorded. Results are cached by address for the
 * life of the process: the first lookup of a module loads its DWARF, the
 * later ones are a table probe (docs/perf.md).
 *
 * One return address can stand for several frames: where the compiler
 * inlined calls, the line table gives the innermost one's file:line, and
 * each DW_TAG_inlined_subroutine around the address says where it was
 * called from (DW_AT_call_file, DW_AT_call_line), up to the real function.
 * Those frames are what lets a report skip /usr/include/c++/... and name
 * the program's own line (report_site.c). The DIEs around an address are
 * found through an index of its unit's functions (cuindex.c), not by
 * walking the whole unit as dwarf_getscopes does.
 */

/* A module as tracker_symbolize_peek tells of it, kept for the life of the
 * process (the path is the one its frames carry). */
typedef struct module_note {
    char *path;
    int dwarf; /* 1: the module has DWARF */
} module_note;

typedef struct sym_entry {
    uintptr_t pc;
    int nframes;                       /* entries in frames, >= 1; 0: only peeked (note) */
    const tracker_frame_info *frames;  /* inlined calls expanded, innermost first */
    const module_note *note;           /* when nframes is 0: its module, NULL when none */
} sym_entry;

static struct {
    pthread_mutex_t lock;       /* guards everything below */
    Dwfl *dwfl;                 /* NULL until first use */
    int dwfl_failed;            /* libdw could not be set up: names stay "?" */
    sym_entry *cache;           /* every address asked about, in the order asked */
    size_t count, cap;
    tracker_index index;        /* an address -> its entry in cache */
    unsigned long long loader[2]; /* tracker_loader_counts when the modules were last reported */
    char cwd[4096];             /* prefix stripped from absolute paths */
    size_t cwd_len;             /* 0 when unknown */
} symbols = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* DWARF inside the module itself only, by default: a libc6-dbg or other
 * separate debug file on the machine would cost tens of MB of RSS and a
 * slow first capture (docs/perf.md), and make reports differ between machines. Frames
 * in system libraries then read "[libc.so.6] strdup", as heaptrack shows
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

/* One loaded object, at the load bias the loader gives (dlpi_addr). */
static int report_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    Dwfl *dwfl = arg;
    const char *name = info->dlpi_name;
    char exe[PATH_MAX];
    if (!name || !*name) { /* the main program */
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return 0;
        exe[n] = '\0';
        name = exe;
    }
    if (access(name, R_OK) != 0) return 0; /* the vDSO, or a file gone since: no names from it */
    dwfl_report_elf(dwfl, name, name, -1, info->dlpi_addr, true); /* NULL: this object stays unnamed */
    return 0;
}

/* The modules come from the loader's own list, not from /proc/self/maps
 * (dwfl_linux_proc_report): that one takes the lowest mapping of a file as
 * its start, and any other mapping of the same file -- the unwinder's libdw
 * maps each module's ELF to read its CFI, a program may map a library to
 * read it -- then shifts the module's base, so every name in a library
 * dlopen'ed after such a mapping came out wrong. */
static int report_modules_unlocked(void)
{
    tracker_loader_counts(symbols.loader);
    dwfl_report_begin_add(symbols.dwfl);
    dl_iterate_phdr(report_object, symbols.dwfl);
    return dwfl_report_end(symbols.dwfl, NULL, NULL);
}

static int open_dwfl_unlocked(void)
{
    if (symbols.dwfl) return 0;
    if (symbols.dwfl_failed) return -1;
    /* Once: a session reopened after tracker_symbolize_release keeps the
     * paths of the first one, whatever the program's chdir since. */
    if (!symbols.cwd_len && getcwd(symbols.cwd, sizeof symbols.cwd)) symbols.cwd_len = strlen(symbols.cwd);
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

/* End the libdw session, and with it what holds DIEs and names inside
 * its data of each module: the units' indexes (cuindex.c) and the symbol
 * tables (symtab.c), rebuilt on demand. Our cache of frames holds copies
 * and stays. */
static void end_session_unlocked(void)
{
    if (symbols.dwfl) dwfl_end(symbols.dwfl);
    symbols.dwfl = NULL;
    tracker_symtab_reset();
    tracker_cu_reset();
}

/* An address in none of the modules: a new session if the loader's list
 * changed since this one read it (a dlopen, a dlclose), else -1 (the
 * address is in no module: a JIT page, the vDSO). A new session, not the
 * new modules reported into this one: libdwfl may drop, at
 * dwfl_report_end, a module it had (one whose new report does not match
 * the old), and the indexes above kept DIEs inside it: libdw crashed in
 * the next lookup of an address of the program (tests/unit/test_unwind.c's
 * dlopen case). */
static int restart_session_unlocked(void)
{
    unsigned long long c[2];
    tracker_loader_counts(c);
    if (c[0] == symbols.loader[0] && c[1] == symbols.loader[1]) return -1;
    end_session_unlocked();
    return open_dwfl_unlocked();
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

/* ---- paths as the developer knows them ----
 *
 * A line table names a file as the compiler was given it: relative to the
 * compile directory ("../lib/memory_mosq.c" from an out-of-tree cmake
 * build), or absolute. Each name is made absolute against its unit's
 * DW_AT_comp_dir (f->path: what TRACKER_SYSTEM's path prefixes match), and
 * printed relative to the module's source root, the deepest directory
 * holding every compile directory and every unit's main source file of the
 * module; else relative to the working directory; else absolute. A unit
 * built with a relative compile dir (-ffile-prefix-map=DIR=., as the lab
 * is built) keeps its relative names. */

/* Collapse "//", "/./" and "dir/../" of an absolute path, in place. */
static void normalize_path(char *p)
{
    char *out = p, *in = p;
    while (*in) {
        if (in[0] == '/' && (in[1] == '/' || in[1] == '\0') && out != p) { in++; continue; }
        if (in[0] == '/' && in[1] == '.' && (in[2] == '/' || in[2] == '\0')) { in += 2; continue; }
        if (in[0] == '/' && in[1] == '.' && in[2] == '.' && (in[3] == '/' || in[3] == '\0')) {
            while (out > p && *--out != '/') {}
            in += 3;
            continue;
        }
        *out++ = *in++;
    }
    if (out == p) *out++ = '/';
    *out = '\0';
}

/* file made absolute against dir (malloc'ed, normalized), or NULL when
 * neither is absolute. */
static char *absolute_path(const char *dir, const char *file)
{
    char *abs = NULL;
    if (file[0] == '/') abs = strdup(file);
    else if (dir && dir[0] == '/' && (abs = malloc(strlen(dir) + strlen(file) + 2)))
        sprintf(abs, "%s/%s", dir, file);
    if (abs) normalize_path(abs);
    return abs;
}

static const char *comp_dir(Dwarf_Die *cu)
{
    Dwarf_Attribute attr;
    return cu ? dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr)) : NULL;
}

/* Length of the longest common prefix of a[0..alen) and b that ends at a
 * directory boundary of both. */
static size_t common_dir(const char *a, size_t alen, const char *b)
{
    size_t i = 0, last = 0;
    while (i < alen && a[i] && a[i] == b[i]) i++;
    if (i == alen && (b[i] == '/' || b[i] == '\0')) return alen;
    for (size_t k = 0; k < i; k++) if (a[k] == '/') last = k;
    return last;
}

typedef struct source_root {
    char *module; /* the module's path */
    char *root;   /* its source root, NULL when none (not absolute, or only "/") */
} source_root;

static source_root *roots;
static size_t nroots, caproots;

static void root_add(char **root, size_t *len, const char *dir, size_t dlen)
{
    if (!*root) { *root = strndup(dir, dlen); *len = *root ? dlen : 0; return; }
    *len = common_dir(*root, *len, dir);
    (void)dlen;
}

/* The source root of module mod (named mname), computed once per module
 * from its units' compile dirs and main file names. */
static const char *root_of(Dwfl_Module *mod, const char *mname)
{
    if (!mname) return NULL;
    for (size_t i = 0; i < nroots; i++)
        if (strcmp(roots[i].module, mname) == 0) return roots[i].root;
    char *root = NULL;
    size_t len = 0;
    Dwarf_Addr bias;
    for (Dwarf_Die *cu = NULL; (cu = dwfl_module_nextcu(mod, cu, &bias)) != NULL;) {
        const char *dir = comp_dir(cu);
        Dwarf_Attribute attr;
        const char *name = dwarf_formstring(dwarf_attr(cu, DW_AT_name, &attr));
        if (!dir || dir[0] != '/') continue; /* prefix-mapped: names stay relative */
        root_add(&root, &len, dir, strlen(dir));
        char *abs = name && name[0] != '<' ? absolute_path(dir, name) : NULL; /* "<artificial>": LTO */
        if (abs) {
            char *slash = strrchr(abs, '/');
            root_add(&root, &len, abs, slash ? (size_t)(slash - abs) : strlen(abs));
            free(abs);
        }
        if (!root) break;
    }
    if (root) root[len] = '\0';
    /* Only "/" or one directory in common ("/tmp", "/home": a library built
     * from a file outside the project's tree) is no source root. */
    if (root && (len == 0 || !strchr(root + 1, '/'))) { free(root); root = NULL; }
    source_root *grown = tracker_grow(roots, nroots, &caproots, sizeof *grown, 8);
    char *kept = strdup(mname);
    if (!grown || !kept) { free(root); free(kept); return NULL; } /* asked again next time */
    roots = grown;
    roots[nroots++] = (source_root){ kept, root };
    return root;
}

/* file (as the line table names it, in unit cu of module mod) as printed;
 * *abs receives its absolute path (kept) or NULL. */
static const char *shown_path(Dwfl_Module *mod, const char *mname, Dwarf_Die *cu, const char *file,
                              const char **abs_out)
{
    *abs_out = NULL;
    char *abs = absolute_path(comp_dir(cu), file);
    if (!abs) { /* relative to a relative compile dir: as given, without "./" */
        while (file[0] == '.' && file[1] == '/') file += 2;
        return keep(file);
    }
    *abs_out = abs; /* kept for good, like every string of a cached frame */
    const char *root = root_of(mod, mname);
    size_t rl = root ? strlen(root) : 0;
    if (root && strncmp(abs, root, rl) == 0 && abs[rl] == '/') return keep(abs + rl + 1);
    if (symbols.cwd_len && strncmp(abs, symbols.cwd, symbols.cwd_len) == 0 && abs[symbols.cwd_len] == '/')
        return keep(abs + symbols.cwd_len + 1);
    return abs;
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

/* C++ names are demangled with the C++ runtime's own __cxa_demangle, found
 * with dlsym(RTLD_DEFAULT) when a name needs it. It is there whenever C++
 * code is loaded, the only time a mangled name can show up, so the tracker
 * needs no C++ runtime of its own: linking libstdc++ would load it into
 * every C program it watches, and Debian's libiberty.a (PIC, so it could be
 * linked) would add a build dependency and ~60 KB to every binary for
 * names that only C++ programs have. The one miss: a C++ program linked
 * with -static-libstdc++ exports no __cxa_demangle, and its names stay
 * mangled. Runs at report time only; the result is cached with the frame. */
typedef char *(*demangle_fn)(const char *mangled, char *buf, size_t *len, int *status);

static const char *demangled(const char *name)
{
    if (!name || name[0] != '_' || name[1] != 'Z') return keep(name);
    demangle_fn cxa = (demangle_fn)dlsym(RTLD_DEFAULT, "__cxa_demangle");
    int status = -1;
    char *d = cxa ? cxa(name, NULL, NULL, &status) : NULL;
    if (d && status == 0) return d; /* malloc'ed by the runtime: kept for good */
    free(d);
    return keep(name);
}

/* Name of a subprogram or inlined-subroutine DIE: the demangled linkage
 * name (namespace, class and parameters) when it has one, else DW_AT_name;
 * both are found through DW_AT_abstract_origin / DW_AT_specification. */
static const char *die_function(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
        name = dwarf_formstring(&attr);
    if (!name && dwarf_attr_integrate(die, DW_AT_name, &attr)) name = dwarf_formstring(&attr);
    return name ? demangled(name) : NULL;
}

/* 1 when the function of a subprogram or inlined-subroutine DIE returns a
 * pointer (through typedefs and qualifiers): a hint that it hands a block
 * it allocated back to its caller (report_wrappers.c). */
static int die_returns_pointer(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    Dwarf_Die type;
    if (!dwarf_attr_integrate(die, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &type)) return 0;
    for (int depth = 0; depth < 8; depth++) {
        int tag = dwarf_tag(&type);
        if (tag == DW_TAG_pointer_type) return 1;
        if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type &&
            tag != DW_TAG_restrict_type)
            return 0;
        if (!dwarf_attr(&type, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &type)) return 0;
    }
    return 0;
}

/* Where the inlined subroutine die was called from: DW_AT_call_file (an
 * index into cu's file table) and DW_AT_call_line. */
static void call_site(Dwarf_Die *cu, Dwarf_Die *die, const char **file, int *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word idx = 0, ln = 0;
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    *file = NULL;
    *line = 0;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &ln) == 0) *line = (int)ln;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &idx) == 0 &&
        dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && idx < nfiles)
        *file = dwarf_filesrc(files, idx, NULL, NULL);
    if (!*file) *line = 0;
}

/* Fill out[0..] with the frames of addr, innermost first; returns how many
 * (>= 1). frame0 holds the module and the line table's file:line. */
#define MAX_INLINE 64 /* scopes read around one address */
static int expand_inline(Dwfl_Module *mod, Dwarf_Die *cu, Dwarf_Addr bias, Dwarf_Addr addr,
                         const tracker_frame_info *frame0, tracker_frame_info *out, int max)
{
    /* The unit's function index first (cuindex.c: no walk of the whole
     * unit), libdw's own search where it has no answer. */
    Dwarf_Die near[MAX_INLINE], *scopes = NULL;
    int nscopes = cu ? tracker_cu_scopes(cu, addr - bias, near, MAX_INLINE) : 0;
    Dwarf_Die *chain = near;
    if (cu && nscopes == 0) nscopes = dwarf_getscopes(cu, addr - bias, &scopes);
    if (nscopes > 0 && scopes) {
        /* Past an inlined instance, dwarf_getscopes goes on with the scopes
         * of its abstract definition; the concrete chain (the functions it
         * was inlined into) is the innermost DIE's own parents. */
        Dwarf_Die inner = scopes[0];
        free(scopes);
        scopes = NULL;
        nscopes = dwarf_getscopes_die(&inner, &scopes);
        chain = scopes;
    }
    int n = 0;
    const char *file = frame0->file, *path = frame0->path;
    int line = frame0->line;
    for (int i = 0; i < nscopes; i++) {
        int tag = dwarf_tag(&chain[i]);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine) continue;
        if (n == max) { /* too deep: drop the innermost, keep the outer ones (the program's own) */
            memmove(out, out + 1, (size_t)(max - 1) * sizeof *out);
            n--;
        }
        tracker_frame_info *f = &out[n++];
        *f = *frame0;
        f->file = file;
        f->path = file ? path : NULL;
        f->line = file ? line : 0;
        f->function = die_function(&chain[i]);
        f->returns_pointer = die_returns_pointer(&chain[i]);
        f->inlined = tag == DW_TAG_inlined_subroutine;
        if (!f->inlined) break;
        const char *cfile;
        call_site(cu, &chain[i], &cfile, &line);
        file = cfile ? shown_path(mod, frame0->module_path, cu, cfile, &path) : NULL;
    }
    free(scopes);
    if (n == 0) out[n++] = *frame0;
    return n;
}

/* The symbol-table name of the function holding addr, for modules without
 * DWARF (symtab.c: of glibc's __strdup, __GI___strdup and strdup, the one a
 * program calls). Looked up once per address (cached). */
static const char *symtab_function(Dwfl_Module *mod, Dwarf_Addr addr, GElf_Addr *start)
{
    const char *best = tracker_symtab_name(mod, addr, start);
    if (!best) return NULL;
    const char *at = strchr(best, '@'); /* a versioned name from a debug file: realpath@@GLIBC_2.3 */
    if (at && (size_t)(at - best) < 256) {
        char plain[256];
        memcpy(plain, best, (size_t)(at - best));
        plain[at - best] = '\0';
        return demangled(plain);
    }
    return demangled(best);
}

static int lookup_unlocked(uintptr_t pc, tracker_frame_info *out, int max)
{
    tracker_frame_info f0 = { .module = "?" };
    out[0] = f0;
    if (open_dwfl_unlocked() != 0) return 1;
    Dwarf_Addr addr = pc - 1; /* inside the call instruction, not after it */
    Dwfl_Module *mod = dwfl_addrmodule(symbols.dwfl, addr);
    if (!mod && restart_session_unlocked() == 0) mod = dwfl_addrmodule(symbols.dwfl, addr); /* dlopen'ed since */
    if (!mod) return 1;
    Dwarf_Addr start = 0;
    const char *mname = dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
    f0.module_path = mname && *mname ? keep(mname) : NULL;
    f0.module = keep(base_name(mname && *mname ? mname : "?"));
    if (!f0.module) f0.module = "?";
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = cu_at(mod, addr, &bias);
    Dwarf_Line *line = cu ? dwarf_getsrc_die(cu, addr - bias) : NULL;
    int lineno = 0;
    const char *file = line ? dwarf_linesrc(line, NULL, NULL) : NULL;
    if (file && dwarf_lineno(line, &lineno) == 0 && lineno > 0) {
        f0.file = shown_path(mod, f0.module_path, cu, file, &f0.path);
        f0.line = lineno;
    }
    int n = expand_inline(mod, cu, bias, addr, &f0, out, max);
    tracker_frame_info *outer = &out[n - 1];
    GElf_Addr symstart = 0;
    if (!outer->function || outer->function[0] == '_' || !f0.file) {
        /* No DWARF name, or an internal one (glibc's debug info says
         * __GI___strdup): the symbol table's public alias reads better.
         * Without a line, its start gives the frame's "+0x1c". */
        const char *pub = symtab_function(mod, addr, &symstart);
        if (pub && (!outer->function || (pub[0] != '_' && outer->function[1] != 'Z')))
            outer->function = pub;
        if (pub && !f0.file && symstart && symstart <= addr) outer->offset = (unsigned long)(pc - symstart);
    }
    if (!outer->function) { /* a stripped static function: say where, as "+0x1a2b" in the module */
        char offset[32];
        snprintf(offset, sizeof offset, "+0x%llx", (unsigned long long)(addr - start));
        outer->function = keep(offset);
    }
    return n;
}

/* ---- cache ---- */

static const tracker_frame_info unknown_frame = { .module = "?" };

/* pc's entry in the cache, or NULL. */
static sym_entry *cache_find_unlocked(uintptr_t pc)
{
    uint64_t h = tracker_hash_u64(pc);
    uint32_t i;
    for (size_t pos = h; tracker_index_next(&symbols.index, h, &pos, &i);)
        if (symbols.cache[i].pc == pc) return &symbols.cache[i];
    return NULL;
}

/* A new entry for pc (its pc set, the rest empty), or NULL without memory.
 * It moves the entries: none found before may be used after. */
static sym_entry *cache_add_unlocked(uintptr_t pc)
{
    sym_entry *grown = tracker_grow(symbols.cache, symbols.count, &symbols.cap, sizeof *grown, 512);
    if (!grown) return NULL;
    symbols.cache = grown;
    if (tracker_index_add(&symbols.index, tracker_hash_u64(pc), (uint32_t)symbols.count) != 0) return NULL;
    symbols.cache[symbols.count] = (sym_entry){ .pc = pc };
    return &symbols.cache[symbols.count++];
}

int tracker_symbolize_all(uintptr_t pc, const tracker_frame_info **frames)
{
    if (pc == 0) { /* never a return address: not looked up, not cached */
        *frames = &unknown_frame;
        return 1;
    }
    int g = tracker_internal_enter();
    int n = 1;
    *frames = &unknown_frame;
    tracker_lock(&symbols.lock, LOCK_SYMBOLS);
    sym_entry *e = cache_find_unlocked(pc);
    if (e && e->nframes) {
        *frames = e->frames;
        n = e->nframes;
        goto done;
    }
    tracker_frame_info tmp[TRACKER_MAX_INLINE];
    n = lookup_unlocked(pc, tmp, TRACKER_MAX_INLINE);
    tracker_frame_info *kept = malloc((size_t)n * sizeof *kept);
    if (kept && !e) e = cache_add_unlocked(pc);
    if (!kept || !e) {
        free(kept); /* out of memory: "unknown" now, looked up again next time */
        n = 1;
        goto done;
    }
    memcpy(kept, tmp, (size_t)n * sizeof *kept);
    e->nframes = n;
    e->frames = kept;
    *frames = kept;
done:
    tracker_unlock(&symbols.lock, LOCK_SYMBOLS);
    tracker_internal_leave(g);
    return n;
}

/* ---- peeking: the module of an address, before symbolizing it ---- */

static module_note **notes;
static size_t nnotes, capnotes;

/* The note of mod (named mname), found by its path once per session (then
 * kept as the module's userdata); NULL when unnamed or out of memory. */
static const module_note *note_of_unlocked(Dwfl_Module *mod)
{
    void **userdata = NULL;
    const char *mname = dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
    if (userdata && *userdata) return *userdata;
    if (!mname || !*mname) return NULL;
    module_note *note = NULL;
    for (size_t i = 0; i < nnotes && !note; i++)
        if (strcmp(notes[i]->path, mname) == 0) note = notes[i];
    if (!note) {
        module_note **grown = tracker_grow(notes, nnotes, &capnotes, sizeof *grown, 16);
        if (!grown) return NULL;
        notes = grown;
        if (!(note = malloc(sizeof *note)) || !(note->path = strdup(mname))) {
            free(note);
            return NULL;
        }
        Dwarf_Addr bias;
        note->dwarf = dwfl_module_getdwarf(mod, &bias) != NULL;
        notes[nnotes++] = note;
    }
    if (userdata) *userdata = note;
    return note;
}

static void peek_unlocked(uintptr_t pc, tracker_peek *out)
{
    *out = (tracker_peek){ .dwarf = 1 };
    if (pc == 0) { /* never a return address: not looked up, not cached */
        out->frames = &unknown_frame;
        out->n = 1;
        return;
    }
    sym_entry *e = cache_find_unlocked(pc);
    const module_note *note = NULL;
    if (e && e->nframes) {
        out->frames = e->frames;
        out->n = e->nframes;
        return;
    }
    if (e) {
        note = e->note; /* peeked before */
    } else if (open_dwfl_unlocked() == 0) {
        /* The module as lookup_unlocked finds it (a new session when the
         * loader's list changed since). */
        Dwfl_Module *mod = dwfl_addrmodule(symbols.dwfl, pc - 1);
        if (!mod && restart_session_unlocked() == 0) mod = dwfl_addrmodule(symbols.dwfl, pc - 1);
        note = mod ? note_of_unlocked(mod) : NULL;
        if ((e = cache_add_unlocked(pc)) != NULL) e->note = note; /* kept, "in no module" too */
    }
    if (note) {
        out->module = note->path;
        out->dwarf = note->dwarf;
    }
}

void tracker_symbolize_peek(const uintptr_t *pcs, int n, tracker_peek *out)
{
    int g = tracker_internal_enter();
    tracker_lock(&symbols.lock, LOCK_SYMBOLS);
    for (int i = 0; i < n; i++) peek_unlocked(pcs[i], &out[i]);
    tracker_unlock(&symbols.lock, LOCK_SYMBOLS);
    tracker_internal_leave(g);
}

void tracker_symbolize(uintptr_t pc, tracker_frame_info *out)
{
    const tracker_frame_info *frames;
    tracker_symbolize_all(pc, &frames);
    *out = frames[0];
}

/* End the libdw session: it keeps an fd open per module it has read,
 * which a preloaded tracker must not leave in its host between reports.
 * The cache (its strings are our own copies) stays; the next miss opens a
 * new session. */
void tracker_symbolize_release(void)
{
    int g = tracker_internal_enter();
    tracker_lock(&symbols.lock, LOCK_SYMBOLS);
    end_session_unlocked();
    tracker_unlock(&symbols.lock, LOCK_SYMBOLS);
    tracker_internal_leave(g);
}

/* Registered at load, before any report can hold the lock. */
__attribute__((constructor)) static void symbolize_fork_register(void)
{
    tracker_fork_register_mutex(LOCK_SYMBOLS, &symbols.lock);
}

void tracker_format_site(const tracker_frame_info *info, char *buf, size_t len)
{
    if (info->file)
        snprintf(buf, len, "%s:%d", info->file, info->line);
    else
        snprintf(buf, len, "[%s] %s", info->module, info->function ? info->function : "??");
}

/* ---- an allocator the preload cannot see ---- */

typedef struct allocator_scan {
    const char *kind, *symbol, *module;
} allocator_scan;

/* A malloc linked into the program (redis' bundled jemalloc, a static
 * libjemalloc.a or libtcmalloc) takes the program's allocations before
 * the preload's malloc is ever asked: only its own symbols tell it is
 * there. Modules under the system prefixes are passed over: a shared
 * libjemalloc.so comes after the preload and its malloc is seen. */
/* 1 (and found filled) when function symbol sym of module name marks an allocator. */
static int marks_allocator(const char *sym, const char *name, allocator_scan *found)
{
    static const struct { const char *symbol, *kind; } marks[] = {
        { "je_malloc", "jemalloc" }, { "je_mallctl", "jemalloc" }, { "mallctl", "jemalloc" },
        { "tc_malloc", "tcmalloc" }, { "mi_malloc", "mimalloc" },
    };
    for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++)
        if (strcmp(sym, marks[k].symbol) == 0) {
            found->kind = marks[k].kind;
            found->symbol = marks[k].symbol;
            found->module = keep(base_name(name));
            return 1;
        }
    return 0;
}

static int scan_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start, void *arg)
{
    (void)userdata; (void)start;
    allocator_scan *found = arg;
    if (!name || strncmp(name, "/lib", 4) == 0 || strncmp(name, "/usr/lib", 8) == 0 || strstr(name, "libtracker"))
        return DWARF_CB_OK;
    /* The function names the symbol index keeps (it serves the module's
     * frames too), else the table itself. */
    size_t nfn = 0;
    const char *const *fn = tracker_symtab_functions(mod, &nfn);
    for (size_t i = 0; fn && i < nfn; i++)
        if (marks_allocator(fn[i], name, found)) return DWARF_CB_ABORT;
    int n = fn ? 0 : dwfl_module_getsymtab(mod);
    for (int i = 1; i < n; i++) {
        GElf_Sym s;
        GElf_Addr a;
        const char *sym = dwfl_module_getsym_info(mod, i, &s, &a, NULL, NULL, NULL);
        if (!sym || s.st_shndx == SHN_UNDEF || GELF_ST_TYPE(s.st_info) != STT_FUNC) continue;
        if (marks_allocator(sym, name, found)) return DWARF_CB_ABORT;
    }
    return DWARF_CB_OK;
}

const char *tracker_static_allocator(const char **symbol, const char **module)
{
    static allocator_scan found;
    static int scanned;
    int g = tracker_internal_enter();
    tracker_lock(&symbols.lock, LOCK_SYMBOLS);
    if (!scanned && open_dwfl_unlocked() == 0) {
        dwfl_getmodules(symbols.dwfl, scan_module, &found, 0);
        scanned = 1;
    }
    tracker_unlock(&symbols.lock, LOCK_SYMBOLS);
    tracker_internal_leave(g);
    if (symbol) *symbol = found.symbol;
    if (module) *module = found.module;
    return found.kind;
}
