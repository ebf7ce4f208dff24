#!/usr/bin/env bash
# test_pprof.sh - GET /debug/pprof/heap read by Go's own pprof (top, diff_base, traces, ?seconds=, -http flame graph, bad queries), folded stacks by flamegraph.pl, and the preload's TRACKER_FORMAT=pprof.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

# Go's pprof, offline and in temporary folders only (no network, nothing in $HOME).
export HOME="$TEST_TMP/home" GOCACHE="$TEST_TMP/gocache" GOPATH="$TEST_TMP/gopath" GOFLAGS=-mod=mod \
       GOPROXY=off GOTOOLCHAIN=local PPROF_TMPDIR="$TEST_TMP/pprof"
mkdir -p "$HOME" "$PPROF_TMPDIR"
if ! PPROF=$(go tool -n pprof 2>/dev/null) || [ ! -x "$PPROF" ]; then
    fail "go tool pprof is installed (golang-go: scripts/deps.sh test)" "a pprof binary" "none"
    done_testing
fi
PPROF_PID=""
stop_pprof() { [ -z "$PPROF_PID" ] || { kill "$PPROF_PID" 2>/dev/null; wait "$PPROF_PID" 2>/dev/null; PPROF_PID=""; }; }
CLEANUP_HOOK=stop_pprof

# heap FILE [QUERY]: GET /debug/pprof/heap[?QUERY] into FILE; prints the status.
heap() { curl -s -o "$1" -w '%{http_code}' --max-time 70 "$(url "/debug/pprof/heap${2:+?$2}")"; }
# first_row ARGS...: the first data row of `pprof -top -lines ARGS` (after the "flat flat%" header).
first_row() { "$PPROF" -top -lines "$@" 2>/dev/null | awk 'seen { print; exit } /flat%/ { seen = 1 }'; }
WANT="fetch_user_data server/fetch_user_data.c:$LEAK_LINE"

start_server || done_testing

# ---- a profile before and after the seed's 10000 requests
check_eq "GET /debug/pprof/heap answers 200" 200 "$(heap "$TEST_TMP/before.pb.gz")"
check "the body is gzip (as Go serves it)" sh -c "gzip -t '$TEST_TMP/before.pb.gz'"
ab -q -n 10000 -c 8 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
heap "$TEST_TMP/after.pb.gz" >/dev/null

types=$("$PPROF" -raw "$TEST_TMP/after.pb.gz" 2>/dev/null | sed -n 's/^ *\(alloc_objects\/count.*\)$/\1/p' | tr -s ' ')
check_eq "sample types in Go's order" "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes" "$types"
check "period 1 (exact counts)" grep -q '^Period: 1$' <("$PPROF" -raw "$TEST_TMP/after.pb.gz" 2>/dev/null)
# Mappings: the program's file and the build ID of its NT_GNU_BUILD_ID note (readelf's), named functions.
bid=$(readelf -n bin/server 2>/dev/null | awk '/Build ID:/ { print $3; exit }')
check "the first mapping is bin/server with its build ID ($bid) and functions" \
    grep -q "^1: 0x[0-9a-f]*/0x[0-9a-f]*/0x[0-9a-f]* $TEST_ROOT/bin/server ${bid:-none} \[FN\]\[FL\]\[LN\]\[IN\]$" \
    <("$PPROF" -raw "$TEST_TMP/after.pb.gz" 2>/dev/null | sed -n '/^Mappings/,$p')
check "libc's mapping has its build ID too" \
    grep -q "/libc.so.6 $(readelf -n /lib/x86_64-linux-gnu/libc.so.6 2>/dev/null | awk '/Build ID:/ { print $3; exit }') " \
    <("$PPROF" -raw "$TEST_TMP/after.pb.gz" 2>/dev/null | sed -n '/^Mappings/,$p')

row=$(first_row -sample_index=inuse_space "$TEST_TMP/after.pb.gz")
echo "# pprof -top -lines -sample_index=inuse_space: $row"
check_eq "-top -sample_index=inuse_space: the LEAK-SITE line comes first" "$WANT" "$(echo "$row" | awk '{ print $6, $7 }')"
row=$(first_row -sample_index=inuse_objects "$TEST_TMP/after.pb.gz")
check_eq "... with exactly 10000 live objects" 10000 "$(echo "$row" | awk '{ print $1 }')"

row=$(first_row -sample_index=inuse_space -diff_base "$TEST_TMP/before.pb.gz" "$TEST_TMP/after.pb.gz")
echo "# pprof -top -lines -diff_base before after: $row"
check_eq "-diff_base: the LEAK-SITE line grew most" "$WANT" "$(echo "$row" | awk '{ print $6, $7 }')"
check_eq "-diff_base: by 10000 x 40200 B = 383.38 MiB" "383.38MB" "$(echo "$row" | awk '{ print $1 }')"

# alloc_objects counts freed blocks too: the leak's 10000, and libmicrohttpd's
# per-request strdup's that were all freed again (none live).
"$PPROF" -top -lines -sample_index=alloc_objects -diff_base "$TEST_TMP/before.pb.gz" "$TEST_TMP/after.pb.gz" \
    >"$TEST_TMP/alloc.txt" 2>/dev/null
check_eq "-diff_base alloc_objects: 10000 allocations at the LEAK-SITE line" 10000 \
    "$(awk -v w="$WANT" '$6 " " $7 == w { print $1 }' "$TEST_TMP/alloc.txt")"
freed=$(awk '/flat%/ { seen = 1; next } seen && $6 ~ /^(__)?strdup$/ { print $1; exit }' "$TEST_TMP/alloc.txt")
check_range "-diff_base alloc_objects: libmicrohttpd's freed strdup's are counted (>= 1 a request)" 10000 1000000 "${freed:-0}"

# -traces: the leak's whole stack, innermost first: fetch_user_data, then its caller handle_hello.
"$PPROF" -traces -sample_index=inuse_space "$TEST_TMP/after.pb.gz" >"$TEST_TMP/traces.txt" 2>/dev/null
# frame_after A: the frame -traces prints right after a frame named A (in any stack).
# (-traces prints "%10s   frame": a value column of 10, 3 spaces, the frame.)
frame_after() { awk -v a="$1" '/^-+\+/ { prev = ""; next } { f = substr($0, 14) }
                                prev == a { print f; exit } { prev = f }' "$TEST_TMP/traces.txt"; }
check_eq "-traces: fetch_user_data's stack goes on to its caller" "handle_hello" "$(frame_after fetch_user_data | cut -d' ' -f1)"
after=$(frame_after "$(frame_after fetch_user_data)")
echo "# -traces: fetch_user_data <- $(frame_after fetch_user_data) <- $after"
check "-traces: ... then the frames beyond it (handle_hello's caller)" test -n "$after"
frames=$(awk '/^-+\+/ { if (n) print n; n = 0; inleak = 0; next } /fetch_user_data/ { inleak = 1 } inleak { n++ }' \
    "$TEST_TMP/traces.txt" | sort -n | tail -1)
echo "# -traces: deepest stack through fetch_user_data has ${frames:-0} frames"
check_range "-traces: that stack has more than the two lab frames" 3 16 "${frames:-0}"

# Inlined calls are lines of their own in a location (gcc -O2 inlines static
# functions called once, e.g. handle_hello into routes_handle).
inl=$("$PPROF" -raw "$TEST_TMP/after.pb.gz" 2>/dev/null | awk '/^Locations/ { on = 1; next } /^Mappings/ { on = 0 }
    on && /^ +[0-9]+: / { prev = $0; next } on && prev ~ /server\// && $0 ~ /server\// { print prev " <- " $1; exit }')
echo "# an inlined location: $(echo "$inl" | tr -s ' ')"
check "-raw: a location in the server has an inlined call as its own line" test -n "$inl"

# The real client over HTTP, as a user types it.
"$PPROF" -top -lines "$(url /debug/pprof/heap)" >"$TEST_TMP/remote.txt" 2>&1
check "go tool pprof URL fetches and reads the live profile" grep -q "$WANT" "$TEST_TMP/remote.txt"

# /debug/pprof/allocs: the same profile, alloc_space shown first (as Go serves it).
"$PPROF" -top -lines "$(url /debug/pprof/allocs)" >"$TEST_TMP/allocs.txt" 2>&1
check_eq "/debug/pprof/allocs: pprof shows alloc_space first, the LEAK-SITE line on top" "alloc_space $WANT" \
    "$(sed -n 's/^Type: //p' "$TEST_TMP/allocs.txt") $(awk 'seen { print $6, $7; exit } /flat%/ { seen = 1 }' "$TEST_TMP/allocs.txt")"
code=$(curl -s -o "$TEST_TMP/bad.txt" -w '%{http_code}' "$(url '/debug/pprof/allocs?seconds=x')")
check_eq "/debug/pprof/allocs?seconds=x: 400 naming the path" "400 1" "$code $(grep -c '^bad /debug/pprof/allocs query: seconds' "$TEST_TMP/bad.txt")"

# ---- ?seconds=N: the server diffs two snapshots N s apart
heap "$TEST_TMP/delta.pb.gz" seconds=3 >"$TEST_TMP/delta.code" &
DELTA_PID=$!
sleep 0.5
t0=$(date +%s%N)
ab -q -n 500 -c 4 "$(url /)" >/dev/null 2>&1
t1=$(date +%s%N)
wait "$DELTA_PID"
check_eq "?seconds=3 answers 200" 200 "$(cat "$TEST_TMP/delta.code")"
if [ $(((t1 - t0) / 1000000)) -lt 2400 ]; then # all 500 requests fell inside the window
    row=$(first_row -sample_index=inuse_objects "$TEST_TMP/delta.pb.gz")
    check_eq "?seconds=3: the delta holds the 500 requests made meanwhile, at the LEAK-SITE line" \
        "500 $WANT" "$(echo "$row" | awk '{ print $1, $6, $7 }')"
else
    pass "?seconds=3: skipped the count (ab took $(((t1 - t0) / 1000000)) ms on a busy machine)"
fi
check "?seconds=3: its duration is 3 s" grep -q '^Duration: 3\.0' <("$PPROF" -raw "$TEST_TMP/delta.pb.gz" 2>/dev/null)

# ---- bad queries: 400 and a one-line reason each
for q in seconds=0 seconds=-1 seconds=abc seconds=61 seconds=99999999999999999999 seconds= seconds \
         "seconds=1&seconds=2" debug=1; do
    code=$(heap "$TEST_TMP/bad.txt" "$q")
    check_eq "?$q: 400 with a reason ($(head -c 80 "$TEST_TMP/bad.txt"))" "400 1" "$code $(wc -l <"$TEST_TMP/bad.txt")"
done

# ---- the flame graph: pprof -http serves it, we fetch it and take its picture
pick_port || { fail "a port for pprof -http" "a free port" "none"; done_testing; }
"$PPROF" -http="127.0.0.1:$PICKED" -no_browser -sample_index=inuse_space "$TEST_TMP/after.pb.gz" \
    >"$TEST_TMP/http.log" 2>&1 &
PPROF_PID=$!
FLAME="http://127.0.0.1:$PICKED/ui/flamegraph?si=inuse_space"
for _ in $(seq 1 100); do curl -s -o /dev/null --max-time 2 "$FLAME" && break; sleep 0.1; done
curl -s --max-time 10 "$FLAME" >"$TEST_TMP/flame.html"
check "pprof -http serves a flame graph with fetch_user_data in it" grep -q fetch_user_data "$TEST_TMP/flame.html"
if [ -x /usr/bin/chromium ]; then # the screenshot is for the docs (docs/img/pprof-flamegraph.png, `make docs-assets`), not asserted beyond existing
    mkdir -p results
    timeout 60 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
        --user-data-dir="$TEST_TMP/chromium" --window-size=1280,360 --virtual-time-budget=5000 \
        --screenshot="$TEST_ROOT/results/pprof-flamegraph.png" "$FLAME" >/dev/null 2>&1
    check "headless chromium took the flame graph's picture (results/pprof-flamegraph.png)" test -s results/pprof-flamegraph.png
fi
stop_pprof

# ---- folded stacks (/capture?format=folded) and the real flamegraph.pl (vendor/flamegraph/)
cap "?format=folded" >"$TEST_TMP/folded1.txt"
check "format=folded: every line is 'frame;frame;... bytes'" \
    awk 'NF < 2 || $NF !~ /^[0-9]+$/ { bad = 1 } END { exit bad || NR == 0 }' "$TEST_TMP/folded1.txt"
ab -q -n 2000 -c 4 "$(url /)" >/dev/null 2>&1
cap "?format=folded" >"$TEST_TMP/folded2.txt"
top=$(sort -t' ' -k2 -n -r <(awk '{ print $NF, $0 }' "$TEST_TMP/folded2.txt") | head -1 | cut -d' ' -f2-)
leaf=$(echo "$top" | awk '{ sub(/ [0-9]+$/, ""); n = split($0, f, ";"); print f[n] }')
check_eq "format=folded, second capture: the biggest growth ends at the LEAK-SITE line" \
    "fetch_user_data (server/fetch_user_data.c:$LEAK_LINE)" "$leaf"
check_eq "... by 2000 x 40200 B" $((2000 * LEAK_RECORD)) "${top##* }"
check "... outermost frame first, handle_hello just above the leaf" \
    sh -c "echo '$top' | grep -q ';handle_hello (server/routes.c:[0-9]*);fetch_user_data (server/fetch_user_data.c:$LEAK_LINE) [0-9]*\$'"
code=$(curl -s -o "$TEST_TMP/folded3.txt" -w '%{http_code}' --max-time 10 "$(url '/capture?format=folded')")
check_eq "format=folded right after: 200 (empty when nothing grew, $(wc -l <"$TEST_TMP/folded3.txt") lines)" 200 "$code"
if perl vendor/flamegraph/flamegraph.pl --countname=bytes --title="leak growth" "$TEST_TMP/folded2.txt" \
        >"$TEST_TMP/flame.svg" 2>"$TEST_TMP/flame.err"; then
    check "flamegraph.pl draws it: an SVG with fetch_user_data's frame" \
        grep -q "<title>fetch_user_data (server/fetch_user_data.c:$LEAK_LINE) ([0-9,]* bytes, 100" "$TEST_TMP/flame.svg"
else
    fail "flamegraph.pl reads format=folded" "exit 0" "$(head -c 200 "$TEST_TMP/flame.err")"
fi

# ---- the preload: TRACKER_FORMAT=pprof writes the same profile for any program
prog="$TEST_TMP/leaky_prog"
if cc -std=c11 -D_GNU_SOURCE -g -O2 -o "$prog" tests/preload/leaky_prog.c; then
    rec_line=$(grep -n 'LEAK-RECORD' tests/preload/leaky_prog.c | head -1 | cut -d: -f1)
    LD_PRELOAD="$TEST_ROOT/bin/libtracker.so" TRACKER_FORMAT=pprof TRACKER_OUT="$TEST_TMP/prog.%p.pb.gz" \
        "$prog" 300 >/dev/null 2>"$TEST_TMP/prog.err"
    check_eq "preload: the program's exit status is untouched" 0 $?
    pb=$(ls "$TEST_TMP"/prog.*.pb.gz 2>/dev/null | head -1)
    "$PPROF" -top -lines -sample_index=inuse_objects "${pb:-/nonexistent}" >"$TEST_TMP/prog.top" 2>&1
    check_eq "preload: pprof reads TRACKER_OUT=prog.%p.pb.gz: 300 live objects at the LEAK-RECORD line" \
        "300 make_record tests/preload/leaky_prog.c:$rec_line" \
        "$(awk '$7 ~ /leaky_prog.c:/ && $6 == "make_record" { print $1, $6, $7 }' "$TEST_TMP/prog.top")"
    LD_PRELOAD="$TEST_ROOT/bin/libtracker.so" TRACKER_FORMAT=pprof TRACKER_OUT="$TEST_TMP/sort.pb.gz" \
        sort /etc/passwd >/dev/null
    check "preload: a system program (sort) gets a profile pprof reads" \
        sh -c "'$PPROF' -top '$TEST_TMP/sort.pb.gz' 2>/dev/null | grep -q '^File: sort'"
    LD_PRELOAD="$TEST_ROOT/bin/libtracker.so" TRACKER_FORMAT=pprof /bin/true 2>"$TEST_TMP/true.err"
    check_eq "preload: without TRACKER_OUT, one line says no profile was written, exit 0" "0 1" "$? $(grep -c 'no pprof profile' "$TEST_TMP/true.err")"
else
    fail "tests/preload/leaky_prog.c compiles" "exit 0" "a compile error"
fi

# ---- the tracker off: 503 and a reason
stop_server
if start_server --no-tracker; then
    check_eq "--no-tracker: 503" 503 "$(heap "$TEST_TMP/off.txt")"
    stop_server
fi
done_testing
