#!/usr/bin/env bash
# test_lab.sh - end to end: bin/server under real ab (RSS figures, counters, error paths, signals), loadgen and demo artefacts.
#
# Not `set -e`: every step below is an assertion that must be counted, and a
# failing one must not hide the ones after it.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

SEED_IDLE_KB=26576    # the seed's idle RSS, "~26 MB"
SEED_LOADED_KB=419316 # the seed's RSS after 10000 requests, "~419 MB"

# http, lines, ab_ok: scripts/lib.sh.
# one_line_body: 0 when the last body is exactly one non-empty line.
one_line_body() { [ "$(lines "$TEST_TMP/body")" -eq 1 ] && [ -n "$(tr -d '[:space:]' <"$TEST_TMP/body")" ]; }
# no_200_after_503: the status codes in $codes never go back from 503 to 200.
no_200_after_503() { ! echo "$codes" | grep -q '503.*200'; }
# csv_stats FILE: "rows first_requests last_requests first_rss_kb last_rss_kb monotone(1|0)" of a CSV
# whose header is run,elapsed_s,requests,rss_kb.
csv_stats() {
    awk -F, 'NR == 1 { next }
             { n++; if (n == 1) { fr = $3; frss = $4 } else if ($3 + 0 < lr + 0) mono = 0
               lr = $3; lrss = $4 }
             BEGIN { mono = 1 }
             END { print n + 0, fr + 0, lr + 0, frss + 0, lrss + 0, mono }' "$1"
}

if [ ! -x bin/server ]; then
    fail "bin/server is built" "an executable bin/server (run make)" "none"
    done_testing
fi

# ================================================================ leaky server: idle and loaded RSS
start_server || done_testing
check_eq "ready line names URL, pid, mode and tracker" \
    "ready: http://127.0.0.1:$PORT/ pid=$SERVER_PID mode=leaky tracker=on" "$(head -n 1 "$SERVER_OUT")"
check_eq "ready line is the only stdout line" 1 "$(lines "$SERVER_OUT")"
sleep 0.5
check_kb_pct "idle RSS of the leaky server is 26 MB +-15%" $SEED_IDLE_KB 15 "$(rss_kb "$SERVER_PID")"
check_eq "/stats before any request: requests" 0 "$(stats_field requests)"
check_eq "/stats before any request: leaked_blocks" 0 "$(stats_field leaked_blocks)"
check_eq "/stats mode" leaky "$(stats_field mode)"
check_eq "/stats tracker" true "$(stats_field tracker)"

own=0   # GET / and HEAD / sent by this test itself, on top of ab's
check_eq "GET /?user=1 answers 200" 200 "$(http GET '/?user=1')"; own=$((own + 1))
check_eq "GET /?user=1 body" "hello user1" "$(cat "$TEST_TMP/body")"
check_eq "HEAD / answers 200" 200 "$(http HEAD /)"; own=$((own + 1))

ab -q -n 10000 -c 8 "$(url /)" >"$TEST_TMP/ab-leaky.txt" 2>&1
check "ab -n 10000 -c 8 on the leaky server: 10000 complete, 0 failed, all 2xx" ab_ok "$TEST_TMP/ab-leaky.txt" 10000
loaded=$(rss_kb "$SERVER_PID")
check_kb_pct "RSS after 10000 requests is 419 MB +-10%" $SEED_LOADED_KB 10 "$loaded"
req=$(stats_field requests)
check_eq "/stats requests = ab's 10000 + the test's own $own" $((10000 + own)) "$req"
check_eq "/stats leaked_blocks = requests" "$req" "$(stats_field leaked_blocks)"
check_eq "/stats leaked_bytes = leaked_blocks x $LEAK_RECORD" $(((10000 + own) * LEAK_RECORD)) "$(stats_field leaked_bytes)"
check_kb_pct "/stats rss_kb agrees with /proc VmRSS (+-5%)" "$(rss_kb "$SERVER_PID")" 5 "$(stats_field rss_kb)"
term_status "$SERVER_PID" 5
check_eq "SIGTERM stops the loaded leaky server with status 0 within 5 s" 0 "$TERM_RC"

# ================================================================ fixed server: flat RSS
if start_server --fixed; then
    check_eq "--fixed ready line says mode=fixed" \
        "ready: http://127.0.0.1:$PORT/ pid=$SERVER_PID mode=fixed tracker=on" "$(head -n 1 "$SERVER_OUT")"
    sleep 0.5
    before=$(rss_kb "$SERVER_PID")
    ab -q -n 10000 -c 8 "$(url /)" >"$TEST_TMP/ab-fixed.txt" 2>&1
    check "ab -n 10000 -c 8 on the fixed server: 10000 complete, 0 failed, all 2xx" ab_ok "$TEST_TMP/ab-fixed.txt" 10000
    after=$(rss_kb "$SERVER_PID")
    check_growth "--fixed RSS grows less than 5 MB over 10000 requests, shrinks at most 1 MB (kB)" -1000 4999 "$before" "$after"
    check_eq "--fixed /stats requests" 10000 "$(stats_field requests)"
    check_eq "--fixed /stats leaked_blocks" 0 "$(stats_field leaked_blocks)"
    check_eq "--fixed /stats mode" fixed "$(stats_field mode)"
    stop_server
fi

# ================================================================ leak cap, error paths, port in use, SIGTERM
if start_server --leak-cap-mb 2; then
    codes=""
    for _ in $(seq 1 60); do codes="$codes $(http GET /)"; done
    n200=$(echo "$codes" | tr ' ' '\n' | grep -c '^200$')
    n503=$(echo "$codes" | tr ' ' '\n' | grep -c '^503$')
    # 2 MB of 40200-byte records: 49 (2e6 B) to 52 (2 MiB) fit.
    check_range "--leak-cap-mb 2: about 52 requests answered 200" 48 53 "$n200"
    check_eq "--leak-cap-mb 2: every later request answered 503" $((60 - n200)) "$n503"
    check "--leak-cap-mb 2: no 200 after the first 503" no_200_after_503
    check_eq "503 past the cap has a one-line body" "503 1" "$(http GET /) $(lines "$TEST_TMP/body")"
    check_eq "/stats still answers past the cap" 200 "$(http GET /stats)"
    check_eq "/stats requests counts 200s and 503s" 61 "$(stats_field requests)"
    check_eq "/stats leaked_blocks = number of 200s" "$n200" "$(stats_field leaked_blocks)"
    check_eq "/stats capped = number of 503s" $((61 - n200)) "$(stats_field capped)"
    cap=$(stats_field leak_cap_bytes)
    check "/stats leak_cap_bytes is 2 MB or 2 MiB (got $cap)" [ "$cap" = 2000000 -o "$cap" = 2097152 ]
    check "/stats leaked_bytes stays within leak_cap_bytes" [ "$(stats_field leaked_bytes)" -le "${cap:-0}" ]

    check_eq "unknown path answers 404" 404 "$(http GET /no/such/page)"
    check "404 body is one line" one_line_body
    for m in POST PUT DELETE; do
        check_eq "$m / answers 405" 405 "$(http "$m" /)"
        check "$m / 405 carries an Allow header naming GET" grep -Eiq '^Allow:.*GET' "$TEST_TMP/headers"
        check "$m / 405 body is one line" one_line_body
    done
    for u in abc 7x; do
        check_eq "GET /?user=$u answers 400" 400 "$(http GET "/?user=$u")"
        check "GET /?user=$u 400 body is one line" one_line_body
    done

    # A second server on a port in use: one-line error on stderr, exit 1, no ready line.
    rc=0
    timeout 10 bin/server --port "$PORT" >"$TEST_TMP/second.out" 2>"$TEST_TMP/second.err" </dev/null || rc=$?
    check_eq "second server on a port in use exits with status 1" 1 "$rc"
    check_eq "second server on a port in use prints one stderr line" 1 "$(lines "$TEST_TMP/second.err")"
    check_eq "second server on a port in use prints no ready line" 0 "$(lines "$TEST_TMP/second.out")"
    check "first server still up and answering" kill -0 "$SERVER_PID"
    check_eq "first server /stats still 200" 200 "$(http GET /stats)"

    term_status "$SERVER_PID" 5
    check_eq "SIGTERM stops the server with status 0 within 5 s" 0 "$TERM_RC"
    check "after SIGTERM the port is free" port_free "$PORT"
fi

# Bad options: exit 2 with one stderr line that names the culprit and points to
# the usage (the interface: one-line error); --help prints the usage itself.
for bad in "--bogus:bogus" "--port notaport:notaport" "--leak-cap-mb -1:-1" "--threads:--threads"; do
    culprit=${bad#*:} bad=${bad%:*}
    rc=0
    # shellcheck disable=SC2086 # word splitting of $bad is the point
    timeout 10 bin/server $bad >"$TEST_TMP/bad.out" 2>"$TEST_TMP/bad.err" </dev/null || rc=$?
    check_eq "bin/server $bad exits with status 2" 2 "$rc"
    check_eq "bin/server $bad prints one stderr line" 1 "$(lines "$TEST_TMP/bad.err")"
    check "bin/server $bad: stderr names '$culprit' and points to the usage" \
        grep -Ei -e "usage.*$culprit|$culprit.*(usage|--help)" "$TEST_TMP/bad.err"
done
rc=0
timeout 10 bin/server --help >"$TEST_TMP/help.out" 2>&1 </dev/null || rc=$?
check_eq "bin/server --help exits 0" 0 "$rc"
check "bin/server --help prints the usage with every option" \
    grep -q -e '^usage:.*--port.*--bind.*--fixed.*--leak-cap-mb' <(tr -s ' \n' ' ' <"$TEST_TMP/help.out")

# ================================================================ loadgen/run_load.sh
if start_server; then
    rc=0
    timeout 120 bash loadgen/run_load.sh --port "$PORT" --pid "$SERVER_PID" --requests 3000 \
        --concurrency 8 --label leaky --csv "$TEST_TMP/load.csv" --ab-out "$TEST_TMP/load-ab.txt" \
        >"$TEST_TMP/load.out" 2>&1 || rc=$?
    check_eq "loadgen/run_load.sh exits 0" 0 "$rc"
    [ "$rc" -eq 0 ] || sed 's/^/#   /' "$TEST_TMP/load.out" | tail -n 5
    check_eq "loadgen CSV header" "run,elapsed_s,requests,rss_kb" "$(head -n 1 "$TEST_TMP/load.csv" 2>/dev/null)"
    touch "$TEST_TMP/load.csv"
    read -r rows fr lr frss lrss mono <<<"$(csv_stats "$TEST_TMP/load.csv")"
    # a sample every 100 ms while ab runs, and one after: at least half of what
    # ab's own time allows, and never fewer than 2 (3000 requests take 0.3-0.8 s
    # here, so a fixed floor of 5 failed on a fast run: 4 samples)
    ab_ms=$(awk -v s="$(ab_field "$TEST_TMP/load-ab.txt" 'Time taken for tests')" 'BEGIN { printf "%d", s * 1000 }')
    want=$((${ab_ms:-0} / 200)); [ "$want" -ge 2 ] || want=2
    check_range "loadgen CSV has a sample every 100 ms of ab's ${ab_ms:-?} ms, at least half of them" "$want" 1000000 "$rows"
    check_eq "loadgen CSV requests column never decreases" 1 "$mono"
    check_eq "loadgen CSV requests column ends at 3000" 3000 "$lr"
    check_eq "loadgen CSV run column is the label" leaky "$(awk -F, 'NR > 1 { print $1 }' "$TEST_TMP/load.csv" | sort -u)"
    # The leak is 40200 B per request: RSS must grow by at least 80% of it between first and last sample.
    check_range "loadgen CSV rss_kb grows with the leak (kB, first $frss -> last $lrss)" \
        $(((lr - fr) * LEAK_RECORD * 8 / 10 / 1024)) 99999999 $((lrss - frss))
    check "loadgen --ab-out holds ab's report of 3000 requests" ab_ok "$TEST_TMP/load-ab.txt" 3000
    check_eq "server /stats requests after loadgen" 3000 "$(stats_field requests)"
    stop_server
fi

# ================================================================ scripts/demo.sh artefacts
{
    # The demo writes into RESULTS: a folder of this test's own, so the
    # project's results/ (and a `make demo` running beside the tests) is untouched.
    R="$TEST_TMP/results"
    pick_port; dport=$PICKED
    rc=0
    RESULTS=$R REQUESTS=2000 PORT=$dport timeout 300 bash scripts/demo.sh >"$TEST_TMP/demo.out" 2>&1 </dev/null || rc=$?
    check_eq "REQUESTS=2000 scripts/demo.sh exits 0" 0 "$rc"
    [ "$rc" -eq 0 ] || sed 's/^/#   /' "$TEST_TMP/demo.out" | tail -n 10
    check_eq "results/rss.csv header" "run,elapsed_s,requests,rss_kb" "$(head -n 1 "$R/rss.csv" 2>/dev/null)"
    check_range "results/rss.csv has samples" 5 1000000 "$(($(lines "$R/rss.csv" 2>/dev/null || echo 1) - 1))"
    check_eq "results/rss.png is a PNG" 89504e470d0a1a0a \
        "$(head -c 8 "$R/rss.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')"
    check "results/summary.md names the leak site server/fetch_user_data.c:${LEAK_LINE:-?}" \
        grep -Eq "server/fetch_user_data\.c:${LEAK_LINE:-NONE}([^0-9]|\$)" "$R/summary.md"
    check "no server left listening on the demo's port $dport" port_free "$dport"
    # The pids the demo printed ("pid=N" or "(pid N"): none may still be a server.
    pids=$(grep -oE 'pid[= ][0-9]+' "$TEST_TMP/demo.out" | tr -dc '0-9\n' | sort -u | tr '\n' ' ')
    left=""
    for pid in $pids; do
        [ -e "/proc/$pid" ] && grep -q 'server' "/proc/$pid/cmdline" 2>/dev/null && left="$left $pid"
    done
    [ -z "$pids" ] || check_eq "no server the demo printed (pids $pids) is still running" "" "$left"
}

done_testing
