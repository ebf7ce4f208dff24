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
done_testing
