#!/usr/bin/env bash
# test_capture.sh - end to end: /capture names the leaking line (at -O0 and -O2), rejects bad queries, and the preloaded tracker names a program's leaks.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT"

# The leaking line is found in the source, never written here as a number.
REQUESTS=${CAPTURE_REQUESTS:-10000}

# near NAME WANT GOT_TEXT: GOT_TEXT ("383 MiB", as the report prints it) is WANT bytes +-1%
# (the report rounds to three significant digits).
near() {
    local got
    got=$(bytes_of "$3")
    check_range "$1 ($3, $2 B expected)" $(($2 * 99 / 100)) $(($2 * 101 / 100)) "$got"
}

# ---- the seed's sequence: capture, N x GET /, capture -- at -O2 and -O0
for bin in server server-O0; do
    TEST_SERVER_BIN="bin/$bin" start_server || continue
    cap "" >"$TEST_TMP/before.txt"
    ab -q -n "$REQUESTS" -c 8 "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
    cap "" >"$TEST_TMP/after.txt"
    first=$(head -1 "$TEST_TMP/after.txt")
    check_eq "bin/$bin: first line of the diff names the LEAK-SITE line" \
        "server/fetch_user_data.c:$LEAK_LINE" "${first%%: size=*}"
    check_eq "bin/$bin: its count equals the requests sent, all new" \
        "count=$REQUESTS (+$REQUESTS)" "$(echo "$first" | grep -o 'count=[0-9]* ([+-][0-9]*)')"
    near "bin/$bin: its size is one record per request" $((REQUESTS * LEAK_RECORD)) \
        "$(echo "$first" | sed -n 's/.*: size=\([^(]*\) (.*/\1/p')"
    near "bin/$bin: ... all of it new" $((REQUESTS * LEAK_RECORD)) \
        "$(echo "$first" | sed -n 's/.*: size=[^(]* (+\([^)]*\)).*/\1/p')"

    # key=traceback shows the stack: fetch_user_data called from the / handler.
    tb=$(cap "?key=traceback&frames=4&top=1")
    check "bin/$bin: key=traceback shows fetch_user_data's frame" grep -q "#0 server/fetch_user_data.c:$LEAK_LINE in fetch_user_data" <(echo "$tb")
    check "bin/$bin: ... and its caller in server/routes.c" grep -q '#1 server/routes.c:[0-9]* in ' <(echo "$tb")

    # JSON of the same, and no growth since the last capture.
    js=$(cap "?format=json&top=3")
    check "bin/$bin: format=json is one object with stats" grep -q '^{"capture":[0-9]*,"mode":"diff".*"stats":\[' <(echo "$js")
    check "bin/$bin: json names the file and line" grep -q "\"file\":\"server/fetch_user_data.c\",\"line\":$LEAK_LINE" <(echo "$js")
    check "bin/$bin: json carries the source text of the line" grep -q '"source":"[^"]*malloc(USER_RECORD_BYTES)' <(echo "$js")
    stop_server
done

# ---- a re-grouped capture is compared to what the last plain one was: the
# growth stays, so a leak smaller than the 14 MiB start-up block (300 records,
# 11.5 MiB) is still the top stack, and the next plain capture diffs from the
# last plain one. ?since=N picks any of the last 8 captures.
if start_server; then
    capno_since() { sed -n 's/^# capture \([0-9]*\): differences since capture \([0-9]*\) .*/\1 \2/p'; }
    cap "" >/dev/null
    ab -q -n 300 -c 2 "$(url /)" >/dev/null 2>&1
    check_eq "small leak: capture 2 since 1" "2 1" "$(cap '?top=1' | capno_since)"
    tb=$(cap "?key=traceback&frames=6&top=1")
    check_eq "key=traceback after it: capture 3, compared to capture 1 as capture 2 was" "3 1" "$(capno_since <<<"$tb")"
    check "... its top stack is the leak, with its growth (count=300 (+300))" \
        grep -q "^server/fetch_user_data.c:$LEAK_LINE: .*count=300 (+300)" <<<"$tb"
    check "... frame #0 the LEAK-SITE line" grep -q "#0 server/fetch_user_data.c:$LEAK_LINE in fetch_user_data" <<<"$tb"
    check_eq "frames=3: still capture 1's baseline" "4 1" "$(cap '?key=traceback&frames=3&top=1' | capno_since)"
    ab -q -n 100 -c 2 "$(url /)" >/dev/null 2>&1
    c5=$(cap "?top=1")
    check_eq "the next plain capture diffs from the last plain one (2)" "5 2" "$(capno_since <<<"$c5")"
    check "... +100 at the leak" grep -q "^server/fetch_user_data.c:$LEAK_LINE: .*count=400 (+100)" <<<"$c5"
    c6=$(cap "?top=1&since=1")
    check_eq "?since=1: capture 6 since 1" "6 1" "$(capno_since <<<"$c6")"
    check "... +400 at the leak" grep -q "^server/fetch_user_data.c:$LEAK_LINE: .*count=400 (+400)" <<<"$c6"
    check "?since=2&format=json says so" grep -q '^{"capture":7,"mode":"diff","since":2,' <(cap "?since=2&format=json&top=1")
    check "?since=0: absolute" grep -q '^# capture 8: live memory by lineno' <(cap "?since=0&top=1")
    cap "" >/dev/null # capture 9 takes capture 1's place among the 8 kept
    for q in "since=99" "since=-1" "since=x" "since=1"; do
        code=$(http GET "/capture?$q&top=1")
        check_eq "/capture?$q -> 400 ($(head -c 90 "$TEST_TMP/body"))" "400 1" \
            "$code $(grep -c '^bad /capture query: since' "$TEST_TMP/body")"
    done
    check "... since=1: no longer kept" grep -q 'no longer kept (the last 8 are: 2..9)' "$TEST_TMP/body"
    stop_server
fi

# ---- --fixed: the same load leaves no growing site. The second capture must
# be a real diff (200, its header, its total line): "no growing line" in an
# error page or an empty answer would prove nothing.
if start_server --fixed; then
    check_eq "--fixed: the first /capture answers 200" 200 "$(http GET /capture)"
    ab -q -n 2000 -c 4 "$(url /)" >"$TEST_TMP/ab-fixed.txt" 2>&1
    check "--fixed: ab -n 2000: 2000 complete, 0 failed, all 2xx" ab_ok "$TEST_TMP/ab-fixed.txt" 2000
    check_eq "--fixed: the second /capture answers 200" 200 "$(http GET '/capture?top=50')"
    cp "$TEST_TMP/body" "$TEST_TMP/fixed.txt"
    check "--fixed: ... and is a diff against the first" grep -q '^# capture 2: differences since capture 1 ' "$TEST_TMP/fixed.txt"
    grow=$(grep -c "^server/fetch_user_data.c:[0-9]*: .*count=[0-9]* (+[1-9]" "$TEST_TMP/fixed.txt")
    check_eq "--fixed: fetch_user_data.c has no growing site" 0 "$grow"
    check_range "--fixed: total growth under 1 MiB (bytes, from its # total line)" -1048575 1048575 \
        "$(total_growth "$TEST_TMP/fixed.txt")"
    stop_server
fi

# ---- bad query values: 400 with a one-line reason, server still up
if start_server; then
    for q in "top=0" "top=-1" "top=abc" "top=" "top=99999999999999999999" "top=1001" "key=foo" "key=" \
             "frames=0" "frames=99" "frames=x" "format=xml" "format=" "top=1&top=2" "nosuch=1"; do
        code=$(http GET "/capture?$q")
        lines=$(wc -l <"$TEST_TMP/body")
        if [ "$code" = 400 ] && [ "$lines" -le 1 ] && [ -s "$TEST_TMP/body" ]; then
            pass "/capture?$q -> 400: $(head -c 80 "$TEST_TMP/body")"
        else
            fail "/capture?$q" "400 and a one-line reason" "$code, $lines lines"
        fi
    done
    check_eq "the server still answers after bad queries" 200 "$(http GET '/capture?top=1')"
    stop_server
fi

# ---- the tracker off: 503 with a reason
if start_server --no-tracker; then
    check_eq "--no-tracker: /capture answers 503" 503 "$(http GET /capture)"
    check "--no-tracker: ... with a reason" grep -q 'tracker' "$TEST_TMP/body"
    stop_server
fi

# ---- the preloaded library on a program of our own
prog="$TEST_TMP/leaky_prog"
if cc -std=c11 -D_GNU_SOURCE -g -O2 -o "$prog" tests/preload/leaky_prog.c; then
    rec_line=$(grep -n 'LEAK-RECORD' tests/preload/leaky_prog.c | head -1 | cut -d: -f1)
    name_line=$(grep -n 'LEAK-NAME' tests/preload/leaky_prog.c | head -1 | cut -d: -f1)
    out="$TEST_TMP/report.txt"
    LD_PRELOAD="$TEST_ROOT/bin/libtracker.so" TRACKER_SIGNAL=USR2 TRACKER_OUT="$out" "$prog" 300 "$out" >/dev/null 2>&1
    check_eq "preload: program runs unchanged (exit 0)" 0 "$?"
    check "preload: an on-demand report (TRACKER_SIGNAL=USR2) was written" grep -q 'tracker report 1 (pid [0-9]*, on demand)' "$out"
    check "preload: a report at exit was written" grep -q 'tracker report 2 (pid [0-9]*, at exit' "$out"
    check "preload: the report names the leaking line with its count" \
        grep -q "^tests/preload/leaky_prog.c:$rec_line: size=.*, count=300," "$out"
    check "preload: the block freed at once does not appear" bash -c "! grep -q 'count=[0-9]*.*average=64 B' '$out'"
    # The default unwinding (CFI) goes through libc: the strdup leak is traced back to its caller.
    out2="$TEST_TMP/report2.txt"
    LD_PRELOAD="$TEST_ROOT/bin/libtracker.so" TRACKER_KEY=traceback TRACKER_FRAMES=4 \
        TRACKER_OUT="$out2" "$prog" 200 >/dev/null 2>&1
    check "preload: the strdup leak is traced through libc to its caller's line" \
        grep -q "#1 tests/preload/leaky_prog.c:$name_line in make_name" "$out2"
else
    fail "the test program compiles" "cc exit 0" "an error"
fi

done_testing
