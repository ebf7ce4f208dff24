#!/usr/bin/env bash
# test_retention.sh - GET /retention on the lab server: --leak=drop's records are lost, --leak=cache's are held by the cache's array, itself held by the global; the server keeps serving through a scan.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

# SITE (fetch_user_data.c:N, from the LEAK-SITE marker): scripts/lib.sh.
REQUESTS=${RETENTION_REQUESTS:-2000}

# ret_json PY: run the Python expression PY on the JSON of /retention?format=json&top=50
# (as r; s is the LEAK-SITE's entry, or {}), print its value.
ret_py() {
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
s = next((x for x in r.get("sites", []) if x["site"] == sys.argv[2]), {})
print(eval(sys.argv[3]))' "$TEST_TMP/ret.json" "server/$SITE" "$1" 2>&1
}

# The line of a "file:line" site in the repository's source.
source_line() { local f=${1%%:*} l=${1#*:}; l=${l%% *}; sed -n "${l}p" "$f" 2>/dev/null; }

# fds of the server that are pipes (a scan must leave none behind).
pipes() { fds_to "$SERVER_PID" 'pipe:*'; }
# its children (a scan's child must be gone once it has answered).
children() { procs_with 2 "$SERVER_PID" | wc -l; }

for kind in drop cache; do
    start_server --leak="$kind" || continue
    ab -q -n "$REQUESTS" -c 4 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
    check "--leak=$kind: ab -n $REQUESTS: all 2xx" ab_ok "$TEST_TMP/ab.txt" "$REQUESTS"
    pipes0=$(pipes)
    curl -s --max-time 60 "$(url '/retention?format=json&top=50')" >"$TEST_TMP/ret.json"
    cp "$TEST_TMP/ret.json" "$TEST_TMP/ret-$kind.json"
    check_eq "--leak=$kind: the scan ran" True "$(ret_py 'r["available"]')"
    check_eq "--leak=$kind: the LEAK-SITE has one block per request" "$REQUESTS" "$(ret_py 's.get("blocks")')"
    if [ "$kind" = drop ]; then
        # a conservative scan may keep one or two records alive by a stale word (docs/retention.md)
        check_range "--leak=drop: unreachable blocks of the LEAK-SITE (>= 99% of $REQUESTS)" \
            $((REQUESTS * 99 / 100)) "$REQUESTS" "$(ret_py 's.get("unreachable_blocks")')"
        check_eq "--leak=drop: its verdict" lost "$(ret_py 's.get("verdict")')"
        check_eq "--leak=drop: lost directly (nothing lost points at a record)" 0 "$(ret_py 's.get("indirect_blocks")')"
    else
        check_eq "--leak=cache: no block of the LEAK-SITE is lost" 0 "$(ret_py 's.get("unreachable_blocks")')"
        check_eq "--leak=cache: every one is reachable" "$REQUESTS" "$(ret_py 's.get("reachable_blocks")')"
        owner=$(ret_py 's["owners"][0]["owner"]')
        check_eq "--leak=cache: the top owner is a site of server/profile_cache.c" server/profile_cache.c "${owner%%:*}"
        line=$(source_line "$owner")
        case "$line" in
            *realloc*) pass "--leak=cache: the owner's line is the cache's realloc: $line" ;;
            *) fail "--leak=cache: the owner's line is the cache's realloc" "a line with realloc" "'$line' ($owner)" ;;
        esac
        check_range "--leak=cache: the owner holds >= 99% of the records" $((REQUESTS * 99 / 100)) "$REQUESTS" \
            "$(ret_py 's["owners"][0]["blocks"]')"
        check_eq "--leak=cache: the chain ends at the global profile_cache" "global profile_cache" \
            "$(ret_py '" ".join(s["chain"][-1].split()[:2])')"
        verdict=$(ret_py 's.get("verdict")')
        case "$verdict" in
            "held by $owner <- global profile_cache"*) pass "--leak=cache: verdict: $verdict" ;;
            *) fail "--leak=cache: verdict" "held by $owner <- global profile_cache ..." "$verdict" ;;
        esac
    fi
    check_range "--leak=$kind: blocks_scanned >= requests" "$REQUESTS" 99999999 "$(ret_py 'r["blocks_scanned"]')"
    check_range "--leak=$kind: pause_ms under 200 ms" 0 200 "$(ret_py 'int(r["pause_ms"])')"
    check_range "--leak=$kind: stacks scanned (the server's threads)" 2 999 "$(ret_py 'r["roots"]["stacks"]')"
    check_eq "--leak=$kind: no pipe left open by the scan" "$pipes0" "$(pipes)"
    check_eq "--leak=$kind: no child left" 0 "$(children)"
    stop_server
done

# ---- text, bad queries, and the server serving during scans
if start_server --leak=cache; then
    ab -q -n 500 -c 4 "$(url /)" >/dev/null 2>&1
    curl -s --max-time 60 "$(url '/retention?top=3')" >"$TEST_TMP/ret.txt"
    check_eq "text: the first line is the LEAK-SITE's" "server/$SITE" "$(head -n 1 "$TEST_TMP/ret.txt" | sed 's/: size=.*//')"
    check "text: a verdict line" grep -q '^    verdict: held by server/profile_cache.c:' "$TEST_TMP/ret.txt"
    check "text: the scan line with pause and scan times" grep -Eq '^# scan: pause [0-9.]+ ms \(the clone\), scan [0-9.]+ ms' "$TEST_TMP/ret.txt"
    for q in top=0 top=1001 top=x format=xml bogus=1 "top=1&top=2"; do
        code=$(curl -s -o "$TEST_TMP/bad.txt" -w '%{http_code}' --max-time 10 "$(url "/retention?$q")")
        check_eq "/retention?$q: 400 ($(head -c 80 "$TEST_TMP/bad.txt"))" 400 "$code"
    done
    # ab runs while five scans are taken: no request fails
    ab -q -n 3000 -c 4 "$(url /)" >"$TEST_TMP/ab-during.txt" 2>&1 &
    ab_pid=$!
    for _ in 1 2 3 4 5; do curl -s --max-time 60 "$(url '/retention?top=1')" >/dev/null; done
    wait "$ab_pid"
    check "five scans during ab -n 3000: all 2xx, none failed" ab_ok "$TEST_TMP/ab-during.txt" 3000
    check "the server still answers /stats after the scans" stats_field requests
    stop_server
fi

# ---- no tracker: 503 with a reason
if start_server --no-tracker; then
    check_eq "--no-tracker: /retention 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$(url /retention)")"
    stop_server
fi

# ---- the preload's on-demand report: its retention section scans the program's stack
# (the report itself runs on a stack of its own): a block held only by main's local is
# held by a thread stack, the block main dropped is lost
src=tests/retention/held_by_stack.c
if cc -O2 -g -fno-omit-frame-pointer -ffile-prefix-map="$TEST_ROOT"=. -o "$TEST_TMP/held_by_stack" "$src" \
    2>"$TEST_TMP/cc.txt"; then
    bin/leak-report -s USR2 -r --json -o "$TEST_TMP/lr-hbs" "$TEST_TMP/held_by_stack" >/dev/null 2>&1
    held=$(grep -n 'HELD-BY-STACK' "$src" | cut -d: -f1)
    lost=$(grep -n 'LOST-HERE' "$src" | cut -d: -f1)
    first=$(grep -h '^{"retention"' "$TEST_TMP"/lr-hbs/*.txt | head -n 1)
    site_py() {
        echo "$first" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())["retention"]
s = next((x for x in r["sites"] if x["site"] == sys.argv[1]), {})
print(eval(sys.argv[2]))' "$src:$1" "$2" 2>&1
    }
    check_eq "on demand: the block held by main's local is reachable" 1 "$(site_py "$held" 's.get("reachable_blocks")')"
    check_eq "... held by a thread stack" stack "$(site_py "$held" 's["owners"][0]["kind"]')"
    check_eq "on demand: the block main dropped is lost" 1 "$(site_py "$lost" 's.get("unreachable_blocks")')"
else
    fail "$src builds" "exit 0" "$(head -n 1 "$TEST_TMP/cc.txt")"
fi

# ---- programs nobody here wrote, under the preload (bin/leak-report -r) and valgrind:
# our unreachable blocks, direct and indirect, against memcheck's "definitely" and
# "indirectly lost" at exit (perl skips its frees at exit: 30 + 15 blocks with
# Debian 12's perl; git frees everything it loses)
# sum_lost FILE: "DIRECT_BLOCKS DIRECT_BYTES INDIRECT_BLOCKS INDIRECT_BYTES" of the last retention JSON in FILE.
sum_lost() {
    grep -h '^{"retention"' "$1" | tail -n 1 | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())["retention"]
S = r["sites"]
print(sum(s["unreachable_blocks"] - s["indirect_blocks"] for s in S), sum(s["unreachable_bytes"] - s["indirect_bytes"] for s in S),
      sum(s["indirect_blocks"] for s in S), sum(s["indirect_bytes"] for s in S))' 2>&1
}
# vg_lost PROG...: the same four numbers from valgrind's LEAK SUMMARY (0 when it has none).
vg_lost() {
    timeout 300 valgrind --leak-check=full "$@" 2>&1 >/dev/null | awk '
        /definitely lost:/ { gsub(",", ""); db = $4; d = $7 }
        /indirectly lost:/ { gsub(",", ""); ib = $4; i = $7 }
        END { print d + 0, db + 0, i + 0, ib + 0 }'
}
if command -v valgrind >/dev/null && command -v perl >/dev/null && command -v git >/dev/null &&
    make -s battery >"$TEST_TMP/battery.txt" 2>&1; then
    # NAME|SLACK|PRELOAD|COMMAND: SLACK lost blocks we may keep alive by a word that
    # only looks like a pointer (a stale one: the battery's scandir, one 24-byte entry
    # under glibc's exit frames; a number that happens to fall in the heap: perl, one
    # 8-byte block in ~1 run of 6, its address changing with ASLR); never more than
    # valgrind; PRELOAD: an allocator preloaded after the tracker (its "foreign"
    # mode: every block in the address table), valgrind runs the program without it
    jemalloc=$(ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 2>/dev/null || echo missing-libjemalloc2)
    while IFS='|' read -r name slack preload cmd; do
        # shellcheck disable=SC2086
        LD_PRELOAD=${preload/jemalloc/$jemalloc} TRACKER_TOP=1000 bin/leak-report --json -r -o "$TEST_TMP/lr-${name// /_}" $cmd \
            >/dev/null 2>"$TEST_TMP/lr.err"
        read -r d db i _ <<<"$(sum_lost "$(ls "$TEST_TMP/lr-${name// /_}"/*.txt | head -n 1)")"
        # shellcheck disable=SC2086
        read -r vd vdb vi _ <<<"$(vg_lost $cmd)"
        check_range "$name: directly lost blocks ($d, $db B) = valgrind's definitely lost ($vd, $vdb B), less at most $slack" \
            "$((vd - slack))" "$vd" "$d"
        check_range "$name: indirectly lost blocks ($i) = valgrind's indirectly lost ($vi), less at most $slack" \
            "$((vi - slack))" "$vi" "$i"
    done <<'EOF2'
perl -e|2||perl -e my%h;$h{$_}=[$_,"x"x$_]for(1..3000);print(scalar(keys(%h)))
git --version|0||git --version
battery C (libc shapes)|2||./build/battery/leaks_c_plain
battery C++ (libstdc++ shapes)|0||./build/battery/leaks_cxx_plain
battery C under jemalloc (foreign mode)|2|jemalloc|./build/battery/leaks_c_plain
EOF2

    # LeakSanitizer on the C battery: per marked line ("LEAK: name"), it names the
    # line in a leak report exactly when our exit report calls the site lost (a
    # FILE kept on glibc's list of open streams is neither: fopen's line)
    if clang -O1 -g -fno-omit-frame-pointer -fsanitize=leak -o "$TEST_TMP/leaks_c_lsan" tests/battery/leaks_c.c \
        2>"$TEST_TMP/lsan-cc.txt"; then
        # LSan's scan is conservative too: a stale word can keep a lost block alive in
        # one run (seen once in CI on scandir's list); three runs, a line leaks if any
        # run says so, and where LSan still differs from us, valgrind's "definitely
        # lost" records on the same binary decide
        : >"$TEST_TMP/lsan.txt"
        for _ in 1 2 3; do
            LSAN_OPTIONS=fast_unwind_on_malloc=0 "$TEST_TMP/leaks_c_lsan" >/dev/null 2>>"$TEST_TMP/lsan.txt"
        done
        ours_json=$(ls "$TEST_TMP"/lr-battery_C_\(libc_shapes\)/*.txt | head -n 1)
        agree=0 total=0 differ="" vg_done=""
        for line in $(grep -n '/\* LEAK: ' tests/battery/leaks_c.c | cut -d: -f1); do
            total=$((total + 1))
            lsan=no; grep -q "leaks_c.c:$line\b" "$TEST_TMP/lsan.txt" && lsan=yes
            ours=$(grep -h '^{"retention"' "$ours_json" | tail -n 1 | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())["retention"]
s = next((x for x in r["sites"] if x["site"] == "tests/battery/leaks_c.c:" + sys.argv[1]), {})
print("yes" if s.get("unreachable_blocks", 0) > 0 else "no")' "$line")
            if [ "$lsan" != "$ours" ]; then
                if [ -z "$vg_done" ]; then
                    vg_done=1
                    # the source lines named in valgrind's "definitely lost" records
                    timeout 300 valgrind --leak-check=full ./build/battery/leaks_c_plain 2>&1 >/dev/null | awk '
                        /are definitely lost in loss record/ { inrec = 1; next }
                        /^==[0-9]+== *$/ { inrec = 0 }
                        inrec && match($0, /leaks_c\.c:[0-9]+/) { print substr($0, RSTART + 10, RLENGTH - 10) }' \
                        | sort -u >"$TEST_TMP/vg-lines.txt"
                fi
                vg=no; grep -qx "$line" "$TEST_TMP/vg-lines.txt" && vg=yes
                if [ "$vg" = "$ours" ]; then
                    agree=$((agree + 1))
                    echo "# line $line: LeakSanitizer says $lsan, valgrind and our scan say $ours"
                    continue
                fi
            fi
            if [ "$lsan" = "$ours" ]; then agree=$((agree + 1)); else differ="$differ $line(lsan $lsan, valgrind $vg, ours $ours)"; fi
        done
        check_eq "battery C: LeakSanitizer and our scan agree on which marked lines leak ($agree of $total)" \
            "$total" "$agree${differ:+:$differ}"
    else
        fail "LeakSanitizer build of the C battery" "clang -fsanitize=leak" "$(head -c 200 "$TEST_TMP/lsan-cc.txt")"
    fi
else
    fail "real programs against valgrind" "valgrind, perl, git and make battery (scripts/deps.sh test)" "missing"
fi

done_testing
