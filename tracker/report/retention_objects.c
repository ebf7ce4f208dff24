/* retention_objects.c - the extents of the modules' global variables (ELF symbol tables), so that the retention scan counts a global as one root however many of its words point into the heap. */

#include "retention.h"
#include "tracker_internal.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A global struct whose two fields point at one block (a base pointer and
 * a cursor, an array and its index) holds it from two root words; seen as
 * two roots, neither would dominate the block ("several roots"). With the
 * object's extent from the symbol table (.symtab when the module has one,
 * else .dynsym), every word of one object is one root node, named after
 * the object. Read at each scan in the parent, before the clone (libelf
 * allocates); a module without symbols gives no extents, and its words
 * stay one root each.
 */

typedef struct objs {
    ret_object *v;
    size_t n, cap;
} objs;

static void add(objs *o, uintptr_t lo, uintptr_t hi)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        ret_object *nv = realloc(o->v, cap * sizeof *nv);
        if (!nv) return;
        o->v = nv;
        o->cap = cap;
    }
    o->v[o->n++] = (ret_object){ lo, hi };
}

/* The sized data objects of one module that lie in its writable segments. */
static void module_objects(struct dl_phdr_info *info, objs *o)
{
    const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : "/proc/self/exe";
    if (strncmp(path, "linux-vdso", 10) == 0) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    Elf_Scn *scn = NULL, *sym = NULL;
    GElf_Shdr sh, symsh;
    while (e && (scn = elf_nextscn(e, scn)) != NULL) {
        if (!gelf_getshdr(scn, &sh)) continue;
        if (sh.sh_type == SHT_SYMTAB || (sh.sh_type == SHT_DYNSYM && !sym)) { sym = scn; symsh = sh; }
    }
    Elf_Data *d = sym ? elf_getdata(sym, NULL) : NULL;
    size_t count = d && symsh.sh_entsize ? symsh.sh_size / symsh.sh_entsize : 0;
    for (size_t i = 0; i < count; i++) {
        GElf_Sym s;
        if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_OBJECT || s.st_size < 16 ||
            s.st_shndx == SHN_UNDEF)
            continue;
        uintptr_t lo = info->dlpi_addr + s.st_value, hi = lo + s.st_size;
        for (int k = 0; k < info->dlpi_phnum; k++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[k];
            uintptr_t seg = info->dlpi_addr + ph->p_vaddr;
            if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && lo >= seg && hi <= seg + ph->p_memsz) {
                add(o, lo, hi);
                break;
            }
        }
    }
    if (e) elf_end(e);
    close(fd);
}

static int each_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    module_objects(info, arg);
    return 0;
}

static int by_lo(const void *a, const void *b)
{
    const ret_object *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

ret_object *tracker_retention_objects(size_t *n)
{
    objs o = { 0 };
    if (elf_version(EV_CURRENT) == EV_NONE) { *n = 0; return NULL; }
    dl_iterate_phdr(each_module, &o);
    qsort(o.v, o.n, sizeof *o.v, by_lo);
    /* aliases (the same object under two names) and overlaps: keep the first */
    size_t m = 0;
    for (size_t i = 0; i < o.n; i++)
        if (m == 0 || o.v[i].lo >= o.v[m - 1].hi) o.v[m++] = o.v[i];
    *n = m;
    return o.v;
}
