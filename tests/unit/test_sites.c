/* test_sites.c - unit tests of the site rule's pure parts: what counts as system code, and the short names of "(via ...)". */

#include "report_internal.h"
#include "symtab.h"

#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The rule on whole stacks is tested end to end by tests/test_stacks.sh
 * (the battery under the preload and valgrind); here, the parts that take
 * no stack: TRACKER_SYSTEM's parser, the frame classifier, short names. */

static int passed, failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) { passed++; printf("ok %d - ", passed + failed); }       \
        else { failed++; printf("not ok %d - %s:%d: ", passed + failed, __FILE__, __LINE__); } \
        printf(__VA_ARGS__);                                               \
        printf("\n");                                                      \
    } while (0)

static int is_system(const char *spec, const char *module_path, const char *file, const char *fn)
{
    report_system sys;
    const char *slash = module_path ? strrchr(module_path, '/') : NULL;
    tracker_frame_info f = { .file = file, .line = file ? 1 : 0, .function = fn,
                             .module = slash ? slash + 1 : "?", .module_path = module_path };
    if (report_system_parse(spec, &sys) != 0) return -1;
    return report_frame_is_system(&f, &sys);
}

static void test_system(void)
{
    const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    const char *mhd = "/lib/x86_64-linux-gnu/libmicrohttpd.so.12";
    const char *prog = "/home/me/app/bin/server";
    const char *mylib = "/home/me/app/lib/libfoo.so.1";

    CHECK(is_system(NULL, libc, NULL, "strdup") == 1, "default: libc is system");
    CHECK(is_system(NULL, mhd, NULL, "MHD_start_daemon") == 1, "default: libmicrohttpd (/lib/) is system");
    CHECK(is_system(NULL, prog, "server/main.c", "main") == 0, "default: the program's own frame is not");
    CHECK(is_system(NULL, prog, "/usr/include/c++/12/bits/stl_vector.h", "std::vector<int>::push_back(int const&)") == 1,
          "default: a frame inlined from /usr/include/c++ into the program is system");
    CHECK(is_system(NULL, prog, "tracker/record/hooks.c", "reallocarray") == 1,
          "an allocator entry point (the hooks' reallocarray) is skipped even in the program");
    CHECK(is_system(NULL, prog, "server/x.c", "operator new[](unsigned long)") == 1, "operator new[] is skipped too");
    CHECK(is_system(NULL, prog, "server/x.c", "malloc_wrapper") == 0, "a program's own malloc_wrapper is its own code");
    CHECK(is_system("default", libc, NULL, "strdup") == 1, "\"default\" is the default");
    CHECK(is_system("none", libc, NULL, "strdup") == 0, "none: libc is not skipped");
    CHECK(is_system("none", prog, "tracker/record/hooks.c", "realloc") == 0, "none: not even the allocator");
    CHECK(is_system("+libfoo", mylib, "foo.c", "foo_new") == 1, "+libfoo: a module name prefix adds a library");
    CHECK(is_system("+libfoo", libc, NULL, "strdup") == 1, "+libfoo keeps the default prefixes");
    CHECK(is_system("libfoo", libc, NULL, "strdup") == 0, "libfoo alone replaces the default: libc is own code");
    CHECK(is_system("/home/me/app/lib/", mylib, "foo.c", "f") == 1, "a path prefix matches the module's path");
    CHECK(is_system("::/usr/lib/::", libc, NULL, "strdup") == 1, "empty entries are ignored");

    {
        report_system sys;
        tracker_frame_info f = { .file = "src/zmalloc.c", .line = 1, .function = "zmalloc", .module = "redis-server",
                                 .module_path = "/build/redis/src/redis-server", .path = "/src/redis/src/zmalloc.c" };
        report_system_parse("+/src/redis/src/", &sys);
        CHECK(report_frame_is_system(&f, &sys) == 1, "a path prefix matches the file made absolute (f->path)");
        report_system_parse("+/elsewhere/", &sys);
        CHECK(report_frame_is_system(&f, &sys) == 0, "... and only a prefix of it");
    }

    char many[33 * 3 + 1] = "";
    for (int i = 0; i < 33; i++) strcat(many, "/x:");
    CHECK(tracker_system_check(many) == -1, "33 entries are refused");
    CHECK(tracker_system_check(many + 3) == 0, "32 entries are fine");
    char longer[1200];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CHECK(tracker_system_check(longer) == -1, "an entry of 1199 bytes is refused");
}

static void test_short_names(void)
{
    static const char *const cases[][2] = {
        { "strdup", "strdup" },
        { "std::vector<int, std::allocator<int> >::push_back(int const&)", "std::vector::push_back" },
        { "void std::vector<int, std::allocator<int> >::_M_realloc_insert<int const&>(__gnu_cxx::__normal_iterator<int*, "
          "std::vector<int, std::allocator<int> > >, int const&)", "std::vector::_M_realloc_insert" },
        { "operator new(unsigned long)", "operator new" },
        { "operator new[](unsigned long)", "operator new[]" },
        { "operator delete(void*)", "operator delete" },
        { "bool std::operator< <char>(std::string const&, std::string const&)", "std::operator<" },
        { "operator<<(std::ostream&, int)", "operator<<" },
        { "Foo::operator()(int)", "Foo::operator()" },
        { "Foo::operator bool() const", "Foo::operator bool" },
        { "(anonymous namespace)::Foo::bar(int)", "(anonymous namespace)::Foo::bar" },
        { "main::{lambda(int)#1}::operator()(int) const", "main::{lambda(int)#1}::operator()" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[128];
        report_short_name(cases[i][0], buf, sizeof buf);
        CHECK(strcmp(buf, cases[i][1]) == 0, "short name of \"%.50s\": \"%s\" (want \"%s\")", cases[i][0], buf,
              cases[i][1]);
    }
    char tiny[8];
    report_short_name("std::vector<int>::push_back(int const&)", tiny, sizeof tiny);
    CHECK(strlen(tiny) == 7, "a short buffer is filled and terminated (\"%s\")", tiny);
}

/* The wrapper rule on one function's evidence (report_wrappers.c), and
 * TRACKER_WRAPPERS' parser. Whole stacks: tests/test_realcode.sh and
 * tests/test_stacks.sh. */
static void test_wrappers(void)
{
    CHECK(report_wrapper_rule("zmalloc", 0, 2, 1) == 'n', "zmalloc, 2 callers, 1 point: a wrapper by its name");
    CHECK(report_wrapper_rule("zmalloc", 0, 1, 1) == 0, "one caller only: not a wrapper (nothing to split)");
    CHECK(report_wrapper_rule("mosquitto__strdup", 0, 3, 1) == 'n', "dup in the name");
    CHECK(report_wrapper_rule("sdsnewlen", 1, 2, 2) == 'n', "new in the name");
    CHECK(report_wrapper_rule("Pool::Alloc", 1, 2, 1) == 'n', "a C++ member: its name, not its class, any case");
    CHECK(report_wrapper_rule("Allocator::get", 1, 3, 1) == 0, "alloc in the class only: by the name, no");
    CHECK(report_wrapper_rule("ck_malloc", 0, 40, 4) == 0, "4 allocation points: too big for a wrapper");
    CHECK(report_wrapper_rule("createObject", 1, 4, 1) == 'p', "returns a pointer, 4 callers: taken");
    CHECK(report_wrapper_rule("createObject", 1, 3, 1) == 0, "returns a pointer, 3 callers: not enough");
    CHECK(report_wrapper_rule("cache_put", 0, 50, 1) == 0, "returns no pointer, no name hint: never on the count alone");
    CHECK(report_wrapper_rule("main", 1, 9, 1) == 0, "main is never a wrapper");

    report_wrappers wr;
    CHECK(report_wrappers_parse(NULL, &wr) == 0 && wr.on && wr.nforce == 0 && wr.nnever == 0, "unset: on, nothing named");
    CHECK(report_wrappers_parse("+my_alloc,-zstrdup, xmalloc", &wr) == 0 && wr.on && wr.nforce == 2 &&
              wr.nnever == 1 && strcmp(wr.force[0], "my_alloc") == 0 && strcmp(wr.force[1], "xmalloc") == 0 &&
              strcmp(wr.never[0], "zstrdup") == 0,
          "+name, -name and a bare name (forced)");
    CHECK(report_wrappers_parse("none", &wr) == 0 && !wr.on, "none: detection off");
    CHECK(report_wrappers_parse("none,+g_malloc", &wr) == 0 && !wr.on && wr.nforce == 1, "none with a forced name");
    char many[20 * 4 + 1] = "";
    for (int i = 0; i < 17; i++) strcat(many, "+ab,");
    CHECK(report_wrappers_parse(many, &wr) == -1, "17 forced names are refused");

    /* A frame is a wrapper by its short name, whatever its parameters. */
    report_wrappers_parse(NULL, &wr);
    wr.n = 1;
    snprintf(wr.w[0].name, sizeof wr.w[0].name, "Pool::alloc");
    tracker_frame_info f = { .file = "pool.cc", .line = 3, .function = "Pool::alloc(unsigned long)", .module = "srv" };
    CHECK(report_wrapper_of(&wr, &f) == &wr.w[0], "Pool::alloc(unsigned long) is the wrapper Pool::alloc");
    f.function = "Pool::free(void*)";
    CHECK(report_wrapper_of(&wr, &f) == NULL, "Pool::free is not");
}

/* symtab.c answers "no symbol" without libdw's scan of the whole table
 * where it is sure libdw finds none: every answer must agree with libdw's
 * (a name or none) at addresses all over real modules: stripped programs
 * full of static functions nobody here wrote (bash, gcc's cc1), libc, and
 * this test. Addresses: naddr over each module, and around the starts and
 * ends of nsym of its symbols (where the rule's edges are). */
static void symtab_agrees(const char *path, size_t naddr, int nsym)
{
    static const Dwfl_Callbacks cb = { .find_elf = dwfl_build_id_find_elf,
                                       .find_debuginfo = dwfl_standard_find_debuginfo };
    if (access(path, R_OK) != 0) {
        printf("ok %d - # SKIP %s is not on this machine\n", ++passed + failed, path);
        return;
    }
    Dwfl *dwfl = dwfl_begin(&cb);
    Dwfl_Module *mod = dwfl ? dwfl_report_elf(dwfl, path, path, -1, 0, false) : NULL;
    if (dwfl) dwfl_report_end(dwfl, NULL, NULL);
    Dwarf_Addr lo = 0, hi = 0;
    if (mod) dwfl_module_info(mod, NULL, &lo, &hi, NULL, NULL, NULL, NULL);
    int nsyms = mod ? dwfl_module_getsymtab(mod) : -1;
    Dwarf_Addr stride = (hi - lo) / naddr + 1;
    int step = nsyms / nsym + 1;
    size_t cap = naddr + 4 * (size_t)nsym + 8, n = 0;
    Dwarf_Addr *at = malloc(cap * sizeof *at);
    for (Dwarf_Addr a = lo; at && a < hi && n < cap; a += stride) at[n++] = a;
    for (int i = 1; at && i < nsyms && n + 4 <= cap; i += step) {
        GElf_Sym s;
        GElf_Addr v;
        if (!dwfl_module_getsym_info(mod, i, &s, &v, NULL, NULL, NULL)) continue;
        at[n++] = v;
        at[n++] = v - 1;
        at[n++] = v + s.st_size;
        at[n++] = v + s.st_size - 1;
    }
    size_t none = 0, differ = 0;
    Dwarf_Addr bad = 0;
    for (size_t i = 0; i < n; i++) {
        GElf_Off off;
        GElf_Sym sym;
        int ours = tracker_symtab_name(mod, at[i], NULL) != NULL;
        int libdw = dwfl_module_addrinfo(mod, at[i], &off, &sym, NULL, NULL, NULL) != NULL;
        none += !ours;
        if (ours != libdw && !differ++) bad = at[i];
    }
    char first[64] = "";
    if (differ) snprintf(first, sizeof first, ", the first at +0x%llx", (unsigned long long)(bad - lo));
    CHECK(mod && n > 0 && differ == 0, "%s: a name where libdw has one, none where it has none, at %zu addresses "
          "(%zu without a name; %zu differ%s)", path, n, none, differ, first);
    tracker_symtab_reset();
    free(at);
    if (dwfl) dwfl_end(dwfl);
}

static void test_symtab(void)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = '\0';
    symtab_agrees(self, 2000, 1000);
    symtab_agrees("/usr/bin/bash", 1000, 500);
    symtab_agrees("/lib/x86_64-linux-gnu/libc.so.6", 1000, 500);
    symtab_agrees("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 500, 250); /* libdw's scan of its 28,900 symbols is slow */
}

int main(void)
{
    test_system();
    test_short_names();
    test_wrappers();
    int g = tracker_guard_enter(); /* libdw's allocations are not the test's */
    test_symtab();
    if (g) tracker_guard_leave();
    printf("1..%d\n%d passed, %d failed\n", passed + failed, passed, failed);
    return failed != 0;
}
