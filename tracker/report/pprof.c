/* pprof.c - encodes tracker snapshots as gzipped pprof profiles: protobuf-c (Google's profile.proto) and zlib. */

#include "pprof.h"
#include "index.h"
#include "tracker_internal.h"

#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "profile.pb-c.h" /* generated at build time by protoc-c from vendor/pprof/profile.proto */

/*
 * The profile is built in three tables that pprof's format asks for, each
 * deduplicated with a hash index (index.h): strings (string_table, index 0 is
 * ""), functions (name + file), locations (one per return address, with
 * its lines). Samples point at locations, locations at functions and at
 * the mapping of the module they fall in. Everything the messages point
 * to lives in one arena, freed in one go after packing.
 */

typedef Perftools__Profiles__Profile pb_profile;
typedef Perftools__Profiles__ValueType pb_value_type;
typedef Perftools__Profiles__Sample pb_sample;
typedef Perftools__Profiles__Mapping pb_mapping;
typedef Perftools__Profiles__Location pb_location;
typedef Perftools__Profiles__Line pb_line;
typedef Perftools__Profiles__Function pb_function;

#define NVALUES 4          /* alloc_objects, alloc_space, inuse_objects, inuse_space */
#define MAX_MODULES 512    /* executable segments of loaded modules kept */
#define BUILD_ID_MAX 64    /* bytes of a build ID note we show (GNU's are 20) */

/* ------------------------------------------------------------------ */
/* Arena                                                                */
/* ------------------------------------------------------------------ */

typedef struct chunk {
    struct chunk *next; /* older chunk */
    size_t used, size;  /* bytes of data[] handed out / available */
    _Alignas(16) unsigned char data[];
} chunk;

/* Zeroed memory that lives until arena_free; NULL when out of memory. */
static void *arena_alloc(chunk **arena, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    chunk *c = *arena;
    if (!c || c->size - c->used < bytes) {
        size_t size = bytes > 60000 ? bytes : 60000;
        c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->next = *arena;
        c->used = 0;
        c->size = size;
        *arena = c;
    }
    void *p = c->data + c->used;
    c->used += bytes;
    return memset(p, 0, bytes);
}

static void arena_free(chunk *c)
{
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* ------------------------------------------------------------------ */
/* Loaded modules: executable segments, file names, build IDs           */
/* ------------------------------------------------------------------ */

typedef struct module {
    uint64_t start, limit, offset; /* page-aligned executable segment, its file offset */
    const char *file;              /* path (arena), "[vdso]" for the vDSO */
    const char *build_id;          /* hex (arena), "" when the module has none */
    int has_functions;             /* some location in it was named */
} module;

typedef struct module_walk {
    module *mods;
    size_t n;
    chunk **arena;
    int failed; /* out of memory */
} module_walk;

/* Hex of the NT_GNU_BUILD_ID note among the notes of [p, end), or "". */
static const char *build_id_of(chunk **arena, const unsigned char *p, const unsigned char *end, size_t align)
{
    while (p + sizeof(ElfW(Nhdr)) <= end) {
        const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
        size_t name = (nh->n_namesz + align - 1) & ~(align - 1);
        size_t desc = (nh->n_descsz + align - 1) & ~(align - 1);
        const unsigned char *d = p + sizeof *nh + name;
        if (d + desc > end) break;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(p + sizeof *nh, "GNU", 4) == 0) {
            size_t n = nh->n_descsz < BUILD_ID_MAX ? nh->n_descsz : BUILD_ID_MAX;
            char *hex = arena_alloc(arena, 2 * n + 1);
            if (!hex) return NULL;
            for (size_t i = 0; i < n; i++) {
                hex[2 * i] = "0123456789abcdef"[d[i] >> 4];
                hex[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
            }
            return hex;
        }
        p = d + desc;
    }
    return "";
}

static char *arena_strdup(chunk **arena, const char *s)
{
    size_t n = strlen(s);
    char *d = arena_alloc(arena, n + 1);
    return d ? memcpy(d, s, n + 1) : NULL;
}

static int module_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    module_walk *w = arg;
    (void)size;
    const char *build_id = "";
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        build_id = build_id_of(w->arena, p, p + ph->p_memsz, ph->p_align == 8 ? 8 : 4);
        if (!build_id) { w->failed = 1; return 1; }
        if (*build_id) break;
    }
    const char *file;
    char exe[4096];
    if (w->n == 0 && info->dlpi_name[0] == '\0') { /* the program itself comes first */
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        file = exe;
    } else if (strncmp(info->dlpi_name, "linux-vdso", 10) == 0 || info->dlpi_name[0] == '\0') {
        file = "[vdso]"; /* pprof knows not to look for it on disk */
    } else {
        file = info->dlpi_name;
    }
    for (int i = 0; i < info->dlpi_phnum && w->n < MAX_MODULES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        module *m = &w->mods[w->n];
        m->start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        m->limit = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        m->offset = ph->p_offset & ~(page - 1);
        m->file = arena_strdup(w->arena, file);
        m->build_id = build_id;
        m->has_functions = 0;
        if (!m->file) { w->failed = 1; return 1; }
        w->n++;
    }
    return 0;
}

/* Index of the module holding pc, or -1. */
static int module_of(const module_walk *w, uintptr_t pc)
{
    for (size_t i = 0; i < w->n; i++)
        if (pc >= w->mods[i].start && pc < w->mods[i].limit) return (int)i;
    return -1;
}

/* ------------------------------------------------------------------ */
/* The profile being built                                              */
/* ------------------------------------------------------------------ */

typedef struct builder {
    chunk *arena;                 /* every message and string the profile points to */
    module_walk mods;             /* loaded modules = mappings (ids = index + 1) */

    char **strs;                  /* string_table; strs[0] = "" */
    size_t nstrs, capstrs;
    tracker_index str_index;      /* the string -> its index */

    pb_function **fns;            /* functions, id = index + 1 */
    size_t nfns, capfns;
    tracker_index fn_index;       /* (name, file) -> index */

    pb_location **locs;           /* locations, id = index + 1 */
    size_t nlocs, caplocs;
    tracker_index loc_index;      /* pc -> index */

    pb_sample **samples;
    size_t nsamples, capsamples;
} builder;

/* Index of s in the string table, added (copied) when new; -1 when out of memory. */
static int64_t str_id(builder *b, const char *s)
{
    if (!s) s = "";
    uint64_t h = tracker_hash_str(s);
    uint32_t i;
    for (size_t pos = h; tracker_index_next(&b->str_index, h, &pos, &i);)
        if (strcmp(b->strs[i], s) == 0) return i;
    char *copy = arena_strdup(&b->arena, s);
    char **strs;
    if (!copy || !(strs = tracker_grow(b->strs, b->nstrs, &b->capstrs, sizeof *strs, 64))) return -1;
    b->strs = strs;
    if (tracker_index_add(&b->str_index, h, (uint32_t)b->nstrs) != 0) return -1;
    b->strs[b->nstrs] = copy;
    return (int64_t)b->nstrs++;
}

/* Id of the function name in file, added when new; 0 when out of memory. */
static uint64_t function_id(builder *b, const char *name, const char *file)
{
    int64_t n = str_id(b, name), f = str_id(b, file);
    if (n < 0 || f < 0) return 0;
    uint64_t h = tracker_hash_u64((uint64_t)n << 32 | (uint64_t)f);
    uint32_t i;
    for (size_t pos = h; tracker_index_next(&b->fn_index, h, &pos, &i);)
        if (b->fns[i]->name == n && b->fns[i]->filename == f) return b->fns[i]->id;
    pb_function *fn = arena_alloc(&b->arena, sizeof *fn);
    pb_function **fns;
    if (!fn || !(fns = tracker_grow(b->fns, b->nfns, &b->capfns, sizeof *fns, 64))) return 0;
    b->fns = fns;
    perftools__profiles__function__init(fn);
    fn->id = b->nfns + 1;
    fn->name = n;
    fn->system_name = n;
    fn->filename = f;
    if (tracker_index_add(&b->fn_index, h, (uint32_t)b->nfns) != 0) return 0;
    b->fns[b->nfns++] = fn;
    return fn->id;
}

/* Id of the location of return address pc, added (symbolized) when new; 0
 * when out of memory. Its address is pc - 1, inside the call instruction,
 * where the tracker's symbolizer also looks. */
static uint64_t location_id(builder *b, uintptr_t pc)
{
    uint64_t address = pc ? pc - 1 : 0;
    uint64_t h = tracker_hash_u64(pc);
    uint32_t i;
    for (size_t pos = h; tracker_index_next(&b->loc_index, h, &pos, &i);)
        if (b->locs[i]->address == address) return b->locs[i]->id;
    pb_location *loc = arena_alloc(&b->arena, sizeof *loc);
    pb_location **locs;
    if (!loc || !(locs = tracker_grow(b->locs, b->nlocs, &b->caplocs, sizeof *locs, 64))) return 0;
    b->locs = locs;
    perftools__profiles__location__init(loc);
    loc->id = b->nlocs + 1;
    loc->address = address;
    int m = module_of(&b->mods, pc - 1);
    loc->mapping_id = m >= 0 ? (uint64_t)m + 1 : 0;

    /* One line per source frame, inlined calls first and the function they
     * were inlined into last (pprof's order, and tracker_symbolize_all's).
     * Unknown frames have no line: pprof shows their address. */
    const tracker_frame_info *fr;
    int k = tracker_symbolize_all(pc, &fr);
    pb_line *lines = arena_alloc(&b->arena, (size_t)k * sizeof *lines);
    pb_line **linep = arena_alloc(&b->arena, (size_t)k * sizeof *linep);
    if (!lines || !linep) return 0;
    for (int i = 0; i < k; i++) {
        char named[256];
        const char *fn = fr[i].function;
        if (!fn) continue;
        /* A function without a symbol is "+0x1a2b" (its offset in the
         * module): say which module, as /capture does: "[libc.so.6] +0x1a2b". */
        if (fn[0] == '+') {
            snprintf(named, sizeof named, "[%s] %s", fr[i].module, fn);
            fn = named;
        }
        pb_line *line = &lines[loc->n_line];
        perftools__profiles__line__init(line);
        if (!(line->function_id = function_id(b, fn, fr[i].file))) return 0;
        line->line = fr[i].line;
        linep[loc->n_line++] = line;
        if (m >= 0) b->mods.mods[m].has_functions = 1;
    }
    loc->line = linep;
    if (tracker_index_add(&b->loc_index, h, (uint32_t)b->nlocs) != 0) return 0;
    b->locs[b->nlocs++] = loc;
    return loc->id;
}

/* Add the sample of stack id with values v. Returns 0, -1 when out of memory. */
static int add_sample(builder *b, uint32_t stack_id, const int64_t v[NVALUES])
{
    int n;
    const uintptr_t *frames = tracker_stack_frames(stack_id, &n);
    pb_sample *s = arena_alloc(&b->arena, sizeof *s);
    uint64_t *ids = arena_alloc(&b->arena, (size_t)(n ? n : 1) * sizeof *ids);
    int64_t *vals = arena_alloc(&b->arena, NVALUES * sizeof *vals);
    pb_sample **samples;
    if (!s || !ids || !vals || !(samples = tracker_grow(b->samples, b->nsamples, &b->capsamples, sizeof *samples, 64)))
        return -1;
    b->samples = samples;
    perftools__profiles__sample__init(s);
    for (int i = 0; i < n; i++) /* innermost first, as pprof wants: location_id[0] is the leaf */
        if (!(ids[i] = location_id(b, frames[i]))) return -1;
    memcpy(vals, v, NVALUES * sizeof *vals);
    s->n_location_id = (size_t)n;
    s->location_id = ids;
    s->n_value = NVALUES;
    s->value = vals;
    b->samples[b->nsamples++] = s;
    return 0;
}

/* The samples: now's rows, minus base's rows of the same stack when base is
 * given (both are in ascending stack id order). Returns 0, -1 when out of memory. */
static int add_samples(builder *b, const tracker_snapshot *now, const tracker_snapshot *base)
{
    static const tracker_stack_stat none;
    size_t i = 0, j = 0, nb = base ? base->nstats : 0;
    while (i < now->nstats || j < nb) {
        const tracker_stack_stat *a = &none, *z = &none;
        uint32_t id;
        if (j >= nb || (i < now->nstats && now->stats[i].stack_id < base->stats[j].stack_id)) {
            a = &now->stats[i++];
            id = a->stack_id;
        } else if (i >= now->nstats || base->stats[j].stack_id < now->stats[i].stack_id) {
            z = &base->stats[j++];
            id = z->stack_id;
        } else {
            a = &now->stats[i++];
            z = &base->stats[j++];
            id = a->stack_id;
        }
        /* unsigned differences read as signed: a delta may be negative (freed since base) */
        int64_t v[NVALUES] = {
            (int64_t)(a->alloc_count - z->alloc_count), (int64_t)(a->alloc_bytes - z->alloc_bytes),
            (int64_t)(a->count - z->count), (int64_t)(a->size - z->size),
        };
        if (!v[0] && !v[1] && !v[2] && !v[3]) continue;
        if (add_sample(b, id, v) != 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Packing and gzip                                                     */
/* ------------------------------------------------------------------ */

/* gzip (RFC 1952) of in[0..n) into a malloc'ed *out. Returns 0, -1 on failure. */
static int gzip(const unsigned char *in, size_t n, unsigned char **out, size_t *len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&zs, (uLong)n);
    unsigned char *buf = malloc(cap);
    int rc = -1;
    if (buf) {
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)n;
        zs.next_out = buf;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_FINISH) == Z_STREAM_END) {
            *out = buf;
            *len = zs.total_out;
            rc = 0;
        } else {
            free(buf);
        }
    }
    deflateEnd(&zs);
    return rc;
}

/* Fill p from b (sample types, mappings, tables); default_type: the name of
 * the sample type viewers show first, or NULL for pprof's default (the last,
 * inuse_space). Returns 0, -1 when out of memory. */
static int finish_profile(builder *b, pb_profile *p, const tracker_snapshot *now, const tracker_snapshot *base,
                          const char *default_type)
{
    static const char *const types[NVALUES][2] = {
        { "alloc_objects", "count" }, { "alloc_space", "bytes" },
        { "inuse_objects", "count" }, { "inuse_space", "bytes" },
    };
    pb_value_type *vt = arena_alloc(&b->arena, (NVALUES + 1) * sizeof *vt);
    pb_value_type **vtp = arena_alloc(&b->arena, NVALUES * sizeof *vtp);
    pb_mapping *maps = arena_alloc(&b->arena, (b->mods.n + 1) * sizeof *maps);
    pb_mapping **mapp = arena_alloc(&b->arena, (b->mods.n + 1) * sizeof *mapp);
    if (!vt || !vtp || !maps || !mapp) return -1;
    for (int i = 0; i <= NVALUES; i++) {
        perftools__profiles__value_type__init(&vt[i]);
        vt[i].type = str_id(b, i < NVALUES ? types[i][0] : "space");
        vt[i].unit = str_id(b, i < NVALUES ? types[i][1] : "bytes");
        if (vt[i].type < 0 || vt[i].unit < 0) return -1;
        if (i < NVALUES) vtp[i] = &vt[i];
    }
    for (size_t i = 0; i < b->mods.n; i++) {
        const module *m = &b->mods.mods[i];
        perftools__profiles__mapping__init(&maps[i]);
        maps[i].id = i + 1;
        maps[i].memory_start = m->start;
        maps[i].memory_limit = m->limit;
        maps[i].file_offset = m->offset;
        maps[i].filename = str_id(b, m->file);
        maps[i].build_id = str_id(b, m->build_id);
        if (maps[i].filename < 0 || maps[i].build_id < 0) return -1;
        /* named by us: pprof must not re-symbolize it (and replace our lines) */
        maps[i].has_functions = maps[i].has_filenames = maps[i].has_line_numbers = m->has_functions;
        maps[i].has_inline_frames = m->has_functions; /* tracker_symbolize_all expands them */
        mapp[i] = &maps[i];
    }
    p->n_sample_type = NVALUES;
    p->sample_type = vtp;
    p->period_type = &vt[NVALUES];
    p->period = 1;
    p->n_sample = b->nsamples;
    p->sample = b->samples;
    p->n_mapping = b->mods.n;
    p->mapping = mapp;
    p->n_location = b->nlocs;
    p->location = b->locs;
    p->n_function = b->nfns;
    p->function = b->fns;
    p->n_string_table = b->nstrs;
    p->string_table = b->strs;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->time_nanos = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (base) p->duration_nanos = (int64_t)((now->taken_at - base->taken_at) * 1e9);
    if (default_type && (p->default_sample_type = str_id(b, default_type)) < 0) return -1;
    return 0;
}

static int encode(const tracker_snapshot *now, const tracker_snapshot *base, const char *default_type,
                  unsigned char **out, size_t *len)
{
    int g = tracker_internal_enter(); /* the encoder's own memory is not tracked */
    int rc = -1;
    builder b;
    memset(&b, 0, sizeof b);
    unsigned char *packed = NULL;
    module mods[MAX_MODULES];
    b.mods.mods = mods;
    b.mods.arena = &b.arena;
    dl_iterate_phdr(module_cb, &b.mods);
    if (b.mods.failed || str_id(&b, "") != 0 || add_samples(&b, now, base) != 0) goto done;

    pb_profile p;
    perftools__profiles__profile__init(&p);
    if (finish_profile(&b, &p, now, base, default_type) != 0) goto done;
    size_t n = perftools__profiles__profile__get_packed_size(&p);
    packed = malloc(n ? n : 1);
    if (!packed) goto done;
    perftools__profiles__profile__pack(&p, packed);
    rc = gzip(packed, n, out, len);
done:
    free(packed);
    free(b.strs);
    free(b.fns);
    free(b.locs);
    free(b.samples);
    tracker_index_free(&b.str_index);
    tracker_index_free(&b.fn_index);
    tracker_index_free(&b.loc_index);
    arena_free(b.arena);
    tracker_internal_leave(g);
    return rc;
}

int tracker_pprof_heap(const tracker_snapshot *now, const tracker_snapshot *base,
                       unsigned char **out, size_t *len)
{
    return encode(now, base, NULL, out, len);
}

int tracker_pprof_allocs(const tracker_snapshot *now, const tracker_snapshot *base,
                         unsigned char **out, size_t *len)
{
    return encode(now, base, "alloc_space", out, len);
}
