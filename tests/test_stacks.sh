#!/usr/bin/env bash
# test_stacks.sh - the leak battery: every shape named at its marked line by the preload's default report, and at the same line as valgrind's first non-library frame.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT"

# tests/battery/leaks_c.c and leaks_cxx.cc hold one leak per function
# leak_SHAPE, its call on the line marked "LEAK: SHAPE" (found here by the
# marker, never by number). Each program is built with frame pointers (fp)
# and as Debian builds, plain -O2 -g (plain), run once under bin/libtracker.so
# (its exit report, default options: key=lineno) and once under valgrind
# memcheck. For each shape and build:
#   ours     the sites of the report's groups whose stack runs through leak_SHAPE;
#   valgrind the first frame in a source file of this tree (not /usr/...,
#            not libc's own sources when libc6-dbg is installed, not
#            valgrind's malloc) of each loss record through leak_SHAPE;
# both must be exactly the marked line.

# The reports' settings are this test's own, whatever the caller's environment says.
unset TRACKER_SYSTEM TRACKER_DEBUGINFO TRACKER_KEY TRACKER_FORMAT TRACKER_TOP TRACKER_FRAMES TRACKER_OUT

SHAPES_c="strdup strndup asprintf getline regcomp fopen open_memstream scandir realpath"
SHAPES_cxx="new vector string map make_shared"

if ! make -s battery bin/libtracker.so >"$TEST_TMP/make.log" 2>&1; then
    fail "the battery builds (make battery)" "exit 0" "$(tail -n 3 "$TEST_TMP/make.log" | tr '\n' ' ')"
    done_testing
fi
command -v valgrind >/dev/null 2>&1 || { fail "valgrind is installed (scripts/deps.sh test)" "valgrind" "none"; done_testing; }

# our_sites REPORT SHAPE: sites of the groups whose frames include leak_SHAPE.
our_sites() {
    awk -v fn="leak_$2" '
        /^[^ #=]/ { site = $0; sub(/ \(via .*|: size=.*/, "", site); next }
        /^    #[0-9]+ / {
            f = $0; sub(/ \(inlined\)$/, "", f); sub(/.* in /, "", f)
            if (f == fn || f == "battery::" fn "()") print site
        }' "$1" | sort -u | paste -sd, -
}

# vg_sites LOG SHAPE: first non-library frame (file:line) of each loss record through leak_SHAPE.
vg_sites() {
    awk -v fn="leak_$2" '
        function flush() { if (hit && first != "") print first; hit = 0; first = ""; inrec = 0 }
        / in loss record [0-9]+ of [0-9]+$/ { flush(); inrec = 1; next }
        inrec && /^==[0-9]+== +(at|by) 0x/ {
            line = $0
            sub(/^==[0-9]+== +(at|by) 0x[0-9A-Fa-f]+: /, "", line)
            loc = line; sub(/.* \(/, "", loc); sub(/\)$/, "", loc)
            func_ = line; sub(/ \([^(]*\)$/, "", func_)
            if (func_ == fn || func_ == "battery::" fn "()") hit = 1
            if (first == "" && loc !~ /^in / && loc !~ /^\/usr\//) {
                sub(/^\.\//, "", loc); file = loc; sub(/:[0-9]+$/, "", file)
                if ((getline tmp < file) >= 0) { close(file); first = loc } # a file of this tree
            }
            next
        }
        inrec && /^==[0-9]+== *$/ { flush() }
        END { flush() }' "$1" | sort -u | paste -sd, -
}

table="$TEST_TMP/battery.md"
printf '| shape | build | marked line | ours | valgrind |\n|---|---|---|---|---|\n' >"$table"
for lang in c cxx; do
    src=tests/battery/leaks_c.c
    [ "$lang" = cxx ] && src=tests/battery/leaks_cxx.cc
    shapes_var=SHAPES_$lang
    for build in fp plain; do
        prog=build/battery/leaks_${lang}_$build
        ours="$TEST_TMP/ours-$lang-$build.txt"
        vg="$TEST_TMP/vg-$lang-$build.txt"
        TRACKER_OUT="$ours" TRACKER_TOP=1000 LD_PRELOAD="$TEST_ROOT/bin/libtracker.so" \
            timeout 60 "$prog" >/dev/null 2>"$TEST_TMP/stderr.txt"
        check_eq "$prog under the preload exits 0 and writes its report" "0 yes" \
            "$? $([ -s "$ours" ] && echo yes || echo no)"
        timeout 300 valgrind --leak-check=full --show-leak-kinds=all --fullpath-after= --num-callers=40 \
            --log-file="$vg" "$prog" >/dev/null 2>&1
        check_eq "$prog under valgrind exits 0" 0 $?
        for shape in ${!shapes_var}; do
            line=$(grep -nE "LEAK: $shape( |\$)" "$src" | head -n 1 | cut -d: -f1)
            want="$src:$line"
            got=$(our_sites "$ours" "$shape")
            vgot=$(vg_sites "$vg" "$shape")
            check_eq "$shape ($build): the default report names the marked line" "$want" "$got"
            check_eq "$shape ($build): valgrind's first non-library frame is the same line" "${got:-<none>}" "${vgot:-<none>}"
            printf '| %s | %s | %s | %s | %s |\n' "$shape" "$build" "$line" \
                "$([ "$got" = "$want" ] && echo "right" || echo "${got:-none}")" \
                "$([ "$vgot" = "$want" ] && echo "right" || echo "${vgot:-none}")" >>"$table"
        done
    done
done
sed 's/^/# /' "$table"

# ---- the rule's edges, on the plain builds' reports
c_src=tests/battery/leaks_c.c
cxx_src=tests/battery/leaks_cxx.cc
strdup_line=$(grep -nE "LEAK: strdup( |\$)" "$c_src" | cut -d: -f1)
vector_line=$(grep -nE "LEAK: vector( |\$)" "$cxx_src" | cut -d: -f1)
preload() { TRACKER_TOP=1000 LD_PRELOAD="$TEST_ROOT/bin/libtracker.so" timeout 60 "$@" 2>&1 >/dev/null; }

out=$(preload build/battery/leaks_c_plain)
check_eq "the site says what it came through: strdup" "$c_src:$strdup_line (via strdup)" \
    "$(echo "$out" | grep "^$c_src:$strdup_line " | sed 's/: size=.*//')"

# group_of REPORT HEAD: the lines of the group whose first line starts with HEAD.
group_of() { echo "$1" | awk -v h="$2" 'index($0, h) == 1 { on = 1; print; next } on && /^    #/ { print; next } { on = 0 }'; }

out=$(TRACKER_SYSTEM=none preload build/battery/leaks_c_plain)
check "TRACKER_SYSTEM=none: no frame skipped, the strdup leak is named inside libc, its caller below" \
    grep -q "^    #1 $c_src:$strdup_line in leak_strdup\$" <(group_of "$out" "[libc.so.6] strdup: ")
out=$(TRACKER_SYSTEM=+leaks_c preload build/battery/leaks_c_plain)
check_eq "TRACKER_SYSTEM=+leaks_c: the program counts as system too, no group is named at its lines" \
    0 "$(echo "$out" | grep -c "^$c_src:")"

# Built without -g, the program's frames name no line: the site is the first
# frame of the program's own code, by function and offset (docs/sites.md), never
# the innermost library frame when a frame of the program is on the stack.
if cc -O2 -o "$TEST_TMP/leaks_c_nodebug" "$c_src" 2>"$TEST_TMP/cc.txt"; then
    out=$(preload "$TEST_TMP/leaks_c_nodebug")
    check "without -g: the strdup leak is named by the program's function and offset, via strdup" \
        grep -Eq '^\[leaks_c_nodebug\] leak_strdup\+0x[0-9a-f]+ \(via strdup\): ' <(echo "$out")
    check_eq "without -g: no group is headed by libc's strdup (a frame of the program is on its stack)" \
        0 "$(echo "$out" | grep -c '^\[libc.so.6\] strdup')"
else
    fail "leaks_c.c builds without -g" "exit 0" "$(head -n 1 "$TEST_TMP/cc.txt")"
fi

out=$(TRACKER_FORMAT=json preload build/battery/leaks_c_plain)
check "json: the site, what it came through and the innermost frame of the strdup leak" \
    grep -q "\"site\":\"$c_src:$strdup_line\",\"file\":\"$c_src\",\"line\":$strdup_line,\"function\":\"leak_strdup\",[^{]*\"via\":\"strdup\",\"own_code\":true,[^{]*\"innermost\":{\"site\":\"\[libc.so.6\] strdup\"" <(echo "$out")

out=$(TRACKER_KEY=traceback preload build/battery/leaks_cxx_plain)
group=$(group_of "$out" "$cxx_src:$vector_line (via std::vector::push_back): ")
check "key=traceback: the vector leak's inlined STL frames are shown, demangled, as function and file:line" \
    grep -q "^    #[0-9]* /usr/include/c++/[0-9]*/bits/stl_vector.h:[0-9]* in std::vector<int, std::allocator<int> >::push_back(int const&) (inlined)\$" <(echo "$group")
check "key=traceback: ... then the program's own frame, its namespace included" \
    grep -q "^    #[0-9]* $cxx_src:$vector_line in battery::leak_vector()\$" <(echo "$group")
# A group none of whose frames is in this tree (libstdc++'s emergency pool,
# allocated before main) keeps its innermost frame as the site.
bad=$(echo "$out" | awk '
    function flush() { if (head != "" && !own) { n++; if (head != first) bad++ } head = ""; own = 0; first = "" }
    /^[^ #=]/ { flush(); head = $0; sub(/: size=.*/, "", head); next }
    /^    #/ { f = $0; sub(/^    #[0-9]+ /, "", f); sub(/ in .*/, "", f); if (first == "") first = f; if (f ~ /^tests\//) own = 1 }
    END { flush(); print n + 0, bad + 0 }')
check_eq "a stack entirely inside libraries is named by its innermost frame (groups without own frames, misnamed)" \
    "yes 0" "$([ "${bad% *}" -ge 1 ] && echo yes || echo no) ${bad#* }"

# ---- a leak in a library dlopen'ed after start-up, named at its own line
# (the unwinder maps each module's file to read its CFI; the names must not
# take that mapping for the library's first segment).
cat >"$TEST_TMP/dl_leak.c" <<'C'
#include <stdlib.h>
void *dl_kept[40];
__attribute__((noinline)) void dl_leak(int i) { dl_kept[i] = malloc(900 + (size_t)i); /* LEAK: dlopen */ }
C
cat >"$TEST_TMP/dl_main.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    (void)argc;
    void *h = dlopen(argv[1], RTLD_NOW);
    void (*leak)(int) = h ? (void (*)(int))dlsym(h, "dl_leak") : NULL;
    if (!leak) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    for (int i = 0; i < 40; i++) leak(i);
    return 0;
}
C
if cc -O2 -g -shared -fPIC -o "$TEST_TMP/libdl_leak.so" "$TEST_TMP/dl_leak.c" &&
   cc -O2 -g -o "$TEST_TMP/dl_main" "$TEST_TMP/dl_main.c"; then
    dl_line=$(grep -n 'LEAK: dlopen' "$TEST_TMP/dl_leak.c" | cut -d: -f1)
    dl_first=$(cd "$TEST_TMP" && preload ./dl_main "$TEST_TMP/libdl_leak.so" | grep -m 1 -v '^==')
    check_eq "a library dlopen'ed at run time: its leak is the report's first site, at its marked line" \
        "dl_leak.c:$dl_line: size=" "$(echo "$dl_first" | sed 's/\(size=\).*/\1/')"
else
    fail "the dlopen program builds (cc)" "exit 0" "a build error"
fi

# ---- paths: an out-of-tree build names its files relative to the compile dir
# ("../src/main.c"); reports print them against DW_AT_comp_dir, relative to the
# program's source root (the deepest directory of its compile dirs and sources),
# whatever the working directory; TRACKER_SYSTEM's path prefixes match them made
# absolute. And an allocation wrapper of two callers (xalloc) names each caller.
P=$TEST_TMP/paths
mkdir -p "$P/src" "$P/lib" "$P/build"
printf '#include <stdlib.h>\nvoid *xalloc(size_t n) { void *p = malloc(n); if (!p) abort(); return p; }\n' > "$P/lib/mem.c"
printf '%s\n' '#include <stddef.h>' 'void *xalloc(size_t n);' 'void *keep[2];' 'int main(void) {' \
    '    keep[0] = xalloc(10); /* PATH-A */' '    keep[1] = xalloc(20); /* PATH-B */' '    return 0;' '}' > "$P/src/main.c"
if (cd "$P/build" && cc -O2 -g -c ../src/main.c ../lib/mem.c && cc -o prog main.o mem.o) 2>"$TEST_TMP/cc.txt"; then
    a=$(grep -n PATH-A "$P/src/main.c" | cut -d: -f1)
    b=$(grep -n PATH-B "$P/src/main.c" | cut -d: -f1)
    out=$(cd / && preload "$P/build/prog")
    check_eq "paths: ../src/main.c of a build in build/ is src/main.c, each caller of the wrapper its own site" \
        "src/main.c:$a (via xalloc)|src/main.c:$b (via xalloc)" \
        "$(echo "$out" | grep '^src/main.c:' | sed 's/: size=.*//' | sort | paste -sd'|')"
    check "paths: the report says it took xalloc for a wrapper" grep -q "^# wrappers .* xalloc (2 call sites)" <(echo "$out")
    out=$(cd / && TRACKER_SYSTEM="+$P/src/" preload "$P/build/prog")
    check_eq "paths: TRACKER_SYSTEM=+ABSOLUTE/src/ matches the file made absolute: no group at src/main.c" \
        0 "$(echo "$out" | grep -c '^src/main.c:')"
    out=$(cd / && TRACKER_WRAPPERS=-xalloc preload "$P/build/prog")
    check_eq "TRACKER_WRAPPERS=-xalloc: the wrapper's own line is the site again, both callers in it" \
        "lib/mem.c:2: count=2" "$(echo "$out" | grep '^lib/mem.c:' | sed 's/: size=[^,]*, \(count=[0-9]*\).*/: \1/')"
else
    fail "the out-of-tree program builds (cc)" "exit 0" "$(head -n 1 "$TEST_TMP/cc.txt")"
fi

# ---- --leak=response: a leak made inside libmicrohttpd, named at the handler's line
resp_line=$(grep -n 'LEAK-RESPONSE' server/routes.c | head -n 1 | cut -d: -f1)
REQUESTS=${STACKS_REQUESTS:-1000}
if start_server --leak=response; then
    check_eq "--leak=response: ready line adds leak=response" \
        "ready: http://127.0.0.1:$PORT/ pid=$SERVER_PID mode=leaky tracker=on leak=response" "$(head -n 1 "$SERVER_OUT")"
    check_eq "--leak=response: GET / still answers hello" "hello user" "$(curl -s --max-time 5 "$(url /)" | cut -c1-10)"
    cap "" >/dev/null
    ab -q -n "$REQUESTS" -c 4 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
    check "--leak=response: ab -n $REQUESTS: all complete, all 2xx" ab_ok "$TEST_TMP/ab.txt" "$REQUESTS"
    first=$(cap "" | head -n 1)
    check_eq "--leak=response: first line of the /capture diff is the handler's LEAK-RESPONSE line, via libmicrohttpd" \
        "server/routes.c:$resp_line (via MHD_create_response_from" "$(echo "$first" | sed 's/: size=.*//; s/\(from\).*/\1/')"
    new=$(echo "$first" | sed -n 's/.*count=[0-9]* (+\([0-9]*\)).*/\1/p')
    check_range "--leak=response: at least one new block per request there" "$REQUESTS" $((REQUESTS * 8)) "${new:-x}"
    ab -q -n 200 -c 4 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
    none=$(cap "?system=none" | head -n 1)
    check "--leak=response: /capture?system=none names the innermost frame instead, inside libmicrohttpd" \
        grep -q '^\[libmicrohttpd[^]]*\] ' <(echo "$none")
    check_eq "--leak=response: /stats counts no record as leaked (the record is freed)" 0 "$(stats_field leaked_blocks)"
    long=$(printf '/x%.0s:' $(seq 1 40))
    check_eq "/capture?system= with 40 entries: 400" 400 \
        "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$(url "/capture?system=$long")")"
    stop_server
fi
done_testing
