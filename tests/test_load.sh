#!/usr/bin/env bash
# test_load.sh - heavy load on the leaky server (ab -c 64 and keep-alive wrk): no failed request, exact counts at the leak site, and the leak cap holds.
#
# Figures printed in the ok lines: requests, failures, RSS peaks (MB = kB/1000).
# Memory bound: the largest server here leaks at most ~1.2 GB (wrk is stopped
# after WRK_MAX responses), one server at a time.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

AB_N=${LOAD_AB_REQUESTS:-20000}    # ab -n
AB_C=64                            # ab -c, wrk -c
WRK_SECONDS=${LOAD_WRK_SECONDS:-10}
WRK_MAX=${LOAD_WRK_MAX:-30000}     # wrk responses at most (2 threads x WRK_MAX/2): <= ~1.2 GB leaked
CAP_MB=200                         # the small cap of the leak-cap part
RSS_MARGIN_KB=120000               # MHD buffers, thread stacks, tracker tables, /capture's DWARF

for tool in ab wrk curl; do
    command -v "$tool" >/dev/null 2>&1 || { fail "$tool is installed" "$tool (bash scripts/deps.sh test)" "none"; done_testing; }
done
[ -n "$LEAK_LINE" ] || { fail "server/fetch_user_data.c has a LEAK-SITE line" "a line" "none"; done_testing; }

# ---------------------------------------------------------------- helpers
# capture_site_count FILE: the +N of count= on the LEAK-SITE line of a /capture diff.
capture_site_count() {
    sed -n "s|^server/fetch_user_data.c:$LEAK_LINE: .*count=[0-9]* (+\([0-9]*\)).*|\1|p" "$1" | head -n 1
}
# watch_rss PID FILE: in the background, write the peak VmRSS (kB) of PID to FILE
# every 50 ms until PID exits or FILE.stop appears (at most 10 min). Sets WATCH_PID.
# Each new peak goes to FILE.new, then is renamed over FILE: a reader never
# sees FILE truncated and half written.
watch_rss() {
    ( peak=0; rm -f "$2" "$2.stop"
      for _ in $(seq 1 12000); do
          [ -e "$2.stop" ] && break
          kb=$(rss_kb "$1") || break; [ -n "$kb" ] || break
          [ "$kb" -gt "$peak" ] && { peak=$kb; echo "$peak" >"$2.new"; mv -f "$2.new" "$2"; }
          sleep 0.05
      done ) &
    WATCH_PID=$!
}
# watch_stop FILE: stop the watcher and wait for it, then set PEAK to the peak
# (empty when it read none: the checks then fail). Not in $(...): a subshell
# cannot wait for this shell's child, and read FILE while the watcher could still
# be writing it (once, in a CI dry run: an empty peak, "0.0 MB").
watch_stop() { touch "$1.stop"; wait "$WATCH_PID" 2>/dev/null; PEAK=$(cat "$1" 2>/dev/null); }

# ================================================================ ab -c 64 -n 20000
if start_server --leak-cap-mb 1024; then
    base_kb=$(rss_kb "$SERVER_PID")
    curl -s --max-time 30 "$(url /capture)" >"$TEST_TMP/cap0.txt"   # baseline for the diff
    watch_rss "$SERVER_PID" "$TEST_TMP/peak-ab"
    ab -q -n "$AB_N" -c "$AB_C" "$(url /)" >"$TEST_TMP/ab.txt" 2>&1
    watch_stop "$TEST_TMP/peak-ab"; peak=$PEAK
    check_eq "ab -c $AB_C -n $AB_N: complete requests" "$AB_N" "$(ab_field "$TEST_TMP/ab.txt" 'Complete requests')"
    check_eq "ab -c $AB_C -n $AB_N: failed requests" 0 "$(ab_field "$TEST_TMP/ab.txt" 'Failed requests')"
    check_eq "ab -c $AB_C -n $AB_N: non-2xx responses" 0 "$(ab_field "$TEST_TMP/ab.txt" 'Non-2xx responses')"
    echo "# ab -c $AB_C -n $AB_N: $(ab_field "$TEST_TMP/ab.txt" 'Requests per second') req/s, peak RSS $(mb "$peak") from $(mb "$base_kb") idle"
    check_eq "/stats requests = $AB_N" "$AB_N" "$(stats_field requests)"
    check_eq "/stats leaked_blocks = $AB_N" "$AB_N" "$(stats_field leaked_blocks)"
    curl -s --max-time 30 "$(url /capture)" >"$TEST_TMP/cap1.txt"
    check_eq "/capture diff: first line is the LEAK-SITE line (server/fetch_user_data.c:$LEAK_LINE)" \
        "server/fetch_user_data.c:$LEAK_LINE" "$(head -n 1 "$TEST_TMP/cap1.txt" | sed 's/: size=.*//')"
    check_eq "/capture diff: count at the LEAK-SITE = $AB_N requests" "$AB_N" "$(capture_site_count "$TEST_TMP/cap1.txt")"
    check_range "peak RSS under ab $(mb "$peak") <= idle + 1024 MiB cap + margin (kB)" 0 \
        $((base_kb + 1024 * 1024 * 1024 / 1000 + RSS_MARGIN_KB)) "$peak"
    stop_server
fi

# ================================================================ wrk, keep-alive
if start_server --leak-cap-mb 2048; then
    base_kb=$(rss_kb "$SERVER_PID")
    curl -s --max-time 30 "$(url /capture)" >"$TEST_TMP/cap0.txt"
    watch_rss "$SERVER_PID" "$TEST_TMP/peak-wrk"
    WRK_MAX_PER_THREAD=$((WRK_MAX / 2)) timeout $((WRK_SECONDS + 30)) \
        wrk -t2 -c"$AB_C" -d"${WRK_SECONDS}s" -s tests/tools/wrk_stop_after.lua "$(url /)" >"$TEST_TMP/wrk.txt" 2>&1
    wrk_rc=$?
    watch_stop "$TEST_TMP/peak-wrk"; peak=$PEAK
    wrk_n=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$TEST_TMP/wrk.txt")
    non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$TEST_TMP/wrk.txt")
    sockerr=$(sed -n 's/^ *Socket errors: *//p' "$TEST_TMP/wrk.txt")
    check_eq "wrk -t2 -c$AB_C -d${WRK_SECONDS}s exits 0" 0 "$wrk_rc"
    check_range "wrk completed requests (keep-alive, stopped after $WRK_MAX)" 1000 $((WRK_MAX + AB_C)) "${wrk_n:-x}"
    check_eq "wrk: non-2xx responses" 0 "${non2xx:-0}"
    check_eq "wrk: no socket errors line" "" "$sockerr"
    echo "# wrk: ${wrk_n:-?} requests, $(sed -n 's/^Requests\/sec: *//p' "$TEST_TMP/wrk.txt") req/s over the whole duration, peak RSS $(mb "$peak")"
    req=$(stats_field requests)
    curl -s --max-time 30 "$(url /capture)" >"$TEST_TMP/cap1.txt"
    check_eq "wrk: /capture diff count at the LEAK-SITE = /stats requests ($req)" "$req" "$(capture_site_count "$TEST_TMP/cap1.txt")"
    # wrk counts the responses it read; requests still in flight when a thread
    # stops (at most one per connection) were answered by the server but not counted.
    check_range "wrk: /stats requests = wrk's count + at most $AB_C in flight (wrk ${wrk_n:-?})" \
        "${wrk_n:-0}" $((${wrk_n:-0} + AB_C)) "$req"
    check_range "peak RSS under wrk $(mb "$peak") <= idle + leaked + margin (kB)" 0 \
        $((base_kb + req * LEAK_RECORD / 1000 + RSS_MARGIN_KB)) "$peak"
    stop_server
fi

# ================================================================ the leak cap under the same ab load
if start_server --leak-cap-mb "$CAP_MB"; then
    cap_bytes=$((CAP_MB * 1024 * 1024))
    fit=$((cap_bytes / LEAK_RECORD))
    base_kb=$(rss_kb "$SERVER_PID")
    curl -s --max-time 30 "$(url /capture)" >"$TEST_TMP/cap0.txt"
    watch_rss "$SERVER_PID" "$TEST_TMP/peak-cap"
    # -l: 200 and 503 bodies differ in length; they are not "failures" here.
    ab -q -l -n "$AB_N" -c "$AB_C" "$(url /)" >"$TEST_TMP/ab-cap.txt" 2>&1
    watch_stop "$TEST_TMP/peak-cap"; peak=$PEAK
    check_eq "cap $CAP_MB MiB: ab complete requests" "$AB_N" "$(ab_field "$TEST_TMP/ab-cap.txt" 'Complete requests')"
    check_eq "cap $CAP_MB MiB: ab failed requests (connection errors)" 0 "$(ab_field "$TEST_TMP/ab-cap.txt" 'Failed requests')"
    check_eq "cap $CAP_MB MiB: non-2xx (503) = requests past the cap" $((AB_N - fit)) "$(ab_field "$TEST_TMP/ab-cap.txt" 'Non-2xx responses')"
    check_eq "cap $CAP_MB MiB: /stats leaked_blocks = $fit records fit the cap" "$fit" "$(stats_field leaked_blocks)"
    check_eq "cap $CAP_MB MiB: /stats capped" $((AB_N - fit)) "$(stats_field capped)"
    check "cap $CAP_MB MiB: /stats leaked_bytes <= cap" [ "$(stats_field leaked_bytes)" -le "$cap_bytes" ]
    limit=$((base_kb + cap_bytes / 1000 + RSS_MARGIN_KB))
    check_range "cap $CAP_MB MiB: peak RSS $(mb "$peak") <= idle $(mb "$base_kb") + cap + margin $(mb $RSS_MARGIN_KB) (kB)" 0 "$limit" "$peak"
    check_eq "cap $CAP_MB MiB: GET / past the cap answers 503" 503 "$(http GET /)"
    check_eq "cap $CAP_MB MiB: ... with a one-line reason" 1 "$(lines "$TEST_TMP/body")"
    echo "#   503 body: $(cat "$TEST_TMP/body")"
    check_eq "cap $CAP_MB MiB: /stats still answers 200" 200 "$(http GET /stats)"
    code=$(curl -s -o "$TEST_TMP/cap1.txt" -w '%{http_code}' --max-time 30 "$(url /capture)")
    check_eq "cap $CAP_MB MiB: /capture still answers 200" 200 "$code"
    check_eq "cap $CAP_MB MiB: /capture count at the LEAK-SITE = $fit" "$fit" "$(capture_site_count "$TEST_TMP/cap1.txt")"
    check "cap $CAP_MB MiB: server still running" kill -0 "$SERVER_PID"
    stop_server
fi
done_testing
