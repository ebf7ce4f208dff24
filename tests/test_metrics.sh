#!/usr/bin/env bash
# test_metrics.sh - GET /metrics: Prometheus text that promtool accepts, with values that agree with /proc, /stats and the load sent.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

command -v promtool >/dev/null 2>&1 || { fail "promtool is installed (prometheus: scripts/deps.sh test)" "promtool" "none"; done_testing; }
metrics() { curl -s --max-time 10 "$(url /metrics)"; }
# value NAME[{labels}]: the sample of that metric in $TEST_TMP/m.txt.
value() { awk -v n="$1" '$1 == n { print $2; exit }' "$TEST_TMP/m.txt"; }
int() { awk -v v="$1" 'BEGIN { printf "%.0f\n", v }'; }

start_server || done_testing
ab -q -n 500 -c 4 "$(url /)" >/dev/null 2>&1
curl -s -D "$TEST_TMP/h.txt" -o "$TEST_TMP/m.txt" --max-time 10 "$(url /metrics)"
check "Content-Type is the text exposition 0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4' "$TEST_TMP/h.txt"
promtool check metrics <"$TEST_TMP/m.txt" >"$TEST_TMP/lint.txt" 2>&1
check_eq "promtool check metrics passes, no lint remark" "0 0" "$? $(wc -l <"$TEST_TMP/lint.txt")"
for m in process_resident_memory_bytes process_virtual_memory_bytes process_cpu_seconds_total \
         process_start_time_seconds process_open_fds process_max_fds leaklab_requests_total \
         leaklab_leaked_bytes leaklab_capped_requests_total leaklab_tracker_live_bytes \
         leaklab_tracker_live_blocks leaklab_tracker_stacks leaklab_tracker_lost_records_total \
         leaklab_tracker_bookkeeping_bytes; do
    check "$m: HELP, TYPE and a sample" sh -c "grep -q '^# HELP $m ' '$TEST_TMP/m.txt' && grep -q '^# TYPE $m ' '$TEST_TMP/m.txt' && grep -q '^$m [0-9]' '$TEST_TMP/m.txt'"
done

check_eq "leaklab_requests_total = the 500 requests sent" 500 "$(int "$(value leaklab_requests_total)")"
check_eq "leaklab_leaked_bytes = 500 x 40200" $((500 * LEAK_RECORD)) "$(int "$(value leaklab_leaked_bytes)")"
check_eq "leaklab_info says leaky, drop" 1 "$(value 'leaklab_info{mode="leaky",leak="drop"}')"
rss=$(rss_kb "$SERVER_PID")
check_kb_pct "process_resident_memory_bytes agrees with VmRSS (+-5%)" "$rss" 5 $(($(int "$(value process_resident_memory_bytes)") / 1024))
start=$(awk -v b="$(awk '/^btime/ { print $2 }' /proc/stat)" -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.0f\n", b + f[20] / hz }' "/proc/$SERVER_PID/stat")
check_eq "process_start_time_seconds is the server's start ($start)" "$start" "$(int "$(value process_start_time_seconds)")"
fds=$(ls "/proc/$SERVER_PID/fd" | wc -l)
check_range "process_open_fds is the server's fd count ($fds)" $((fds - 2)) $((fds + 2)) "$(value process_open_fds)"
check_eq "process_max_fds is its soft RLIMIT_NOFILE" "$(awk '/^Max open files/ { print $4 }' "/proc/$SERVER_PID/limits")" "$(value process_max_fds)"
live=$(cap "?top=1" | sed -n 's/^# total: size=.*count=\([0-9]*\) .*/\1/p')
check_range "leaklab_tracker_live_blocks is near /capture's total count ($live)" $((live - 50)) $((live + 50)) "$(int "$(value leaklab_tracker_live_blocks)")"
c0=$(value process_cpu_seconds_total)
ab -q -n 2000 -c 4 "$(url /)" >/dev/null 2>&1
metrics >"$TEST_TMP/m.txt"
check "process_cpu_seconds_total grew with 2000 more requests ($c0 -> $(value process_cpu_seconds_total))" \
    awk -v a="$c0" -v b="$(value process_cpu_seconds_total)" 'BEGIN { exit !(b > a) }'
check "leaklab_tracker_live_bytes grew by at least 2000 x 40200" \
    awk -v b="$(value leaklab_tracker_live_bytes)" -v n=$((2500 * LEAK_RECORD)) 'BEGIN { exit !(b >= n) }'

check_eq "?x=1: 400 with a reason" "400" "$(curl -s -o "$TEST_TMP/bad.txt" -w '%{http_code}' "$(url '/metrics?x=1')")"
check_eq "HEAD /metrics: 200" 200 "$(curl -s -I -o /dev/null -w '%{http_code}' "$(url /metrics)")"
stop_server

# The leak suspects of GET /leaks, as a bounded gauge family: found from the
# per-site history while requests come in rounds (leaky), absent for --fixed.
for mode in leaky fixed; do
    args=""; [ "$mode" = fixed ] && args=--fixed
    # shellcheck disable=SC2086
    start_server $args --test-hooks || continue
    # eight rounds, a history sample after each (taken at once, not waited for)
    for _ in 1 2 3 4 5 6 7 8; do ab -q -n 300 -c 2 "$(url /)" >/dev/null 2>&1; sample_now; done
    want="leaklab_leak_suspect_bytes_per_request{site=\"server/fetch_user_data.c:$LEAK_LINE\",kind=\"leak\"}"
    for _ in $(seq 1 20); do # the history decides within a few samples
        metrics >"$TEST_TMP/m.txt"
        [ "$mode" = fixed ] || [ -z "$(value "$want")" ] || break
        sample_now
    done
    if [ "$mode" = leaky ]; then
        # a least-squares slope: a sample can fall between a request's count and its leak (+-1%)
        check_range "leaky: the first suspect is the LEAK-SITE line at 40200 B/request (+-1%)" 39800 40600 "$(int "$(value "$want")")"
        check_range "leaky: at most 5 series per suspect family" 1 5 "$(grep -c '^leaklab_leak_suspect_live_bytes{' "$TEST_TMP/m.txt")"
    else
        check_eq "--fixed: leaklab_leak_suspects 0, no suspect series" "0 0" \
            "$(value leaklab_leak_suspects) $(grep -c '^leaklab_leak_suspect_' "$TEST_TMP/m.txt")"
    fi
    promtool check metrics <"$TEST_TMP/m.txt" >/dev/null 2>&1
    check_eq "$mode: promtool passes with the suspect family" 0 $?
    stop_server
done

# The 503s: a 1 MiB cap holds 26 records of 40200 B; the other 14 of 40 requests are capped.
if start_server --leak-cap-mb 1; then
    ab -q -n 40 -c 1 "$(url /)" >/dev/null 2>&1
    metrics >"$TEST_TMP/m.txt"
    check_eq "--leak-cap-mb 1: leaklab_capped_requests_total = 40 - 26" 14 "$(value leaklab_capped_requests_total)"
    stop_server
fi
if start_server --fixed --no-tracker; then
    metrics >"$TEST_TMP/m.txt"
    check_eq "--fixed --no-tracker: leaklab_tracker_active 0, leaklab_info fixed" "0 1" \
        "$(value leaklab_tracker_active) $(value 'leaklab_info{mode="fixed",leak="none"}')"
    promtool check metrics <"$TEST_TMP/m.txt" >/dev/null 2>&1
    check_eq "... and promtool still passes" 0 $?
    stop_server
fi
done_testing
