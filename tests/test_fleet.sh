#!/usr/bin/env bash
# test_fleet.sh - `make fleet` for real: Prometheus scrapes three servers, the shipped alert fires for the leaky one only, pprof names its line, and an interrupt leaves nothing running.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

for tool in prometheus promtool go; do
    command -v "$tool" >/dev/null 2>&1 || { fail "$tool is installed (scripts/deps.sh test)" "$tool" "none"; done_testing; }
done
# alive PIDS_FILE: the PIDs listed in PIDS_FILE ("PID NAME" lines) still running.
alive() { local p n; while read -r p n; do proc_gone "$p" || echo "$p($n)"; done <"$1"; }

check "promtool check rules monitoring/alerts.yml" promtool check rules monitoring/alerts.yml

# ---- the whole run
OUT="$TEST_TMP/fleet"
t0=$(date +%s)
FLEET_OUT="$OUT" timeout 170 bash scripts/fleet.sh >"$TEST_TMP/fleet.out" 2>"$TEST_TMP/fleet.err"
rc=$?
sed 's/^/# /' "$TEST_TMP/fleet.out"
check_eq "scripts/fleet.sh exits 0 ($(($(date +%s) - t0)) s; stderr: $(head -c 200 "$TEST_TMP/fleet.err"))" 0 "$rc"
check "the generated config passes promtool check config" promtool check config "$OUT/prometheus.yml"
leaky=$(sed -n 's/^rss: leaky \([0-9.:]*\) .*/\1/p' "$OUT/summary.txt")
check "the alert fired for the leaky instance ($leaky)" grep -q "^firing: LeakLabRSSGrowing for leaky $leaky, [0-9.]* s after the load started" "$OUT/summary.txt"
check "... and never went pending or firing for the fixed ones" grep -q '^fixed: LeakLabRSSGrowing never pending or firing' "$OUT/summary.txt"
fired=$(sed -n 's/^firing: .*, \([0-9.]*\) s after.*/\1/p' "$OUT/summary.txt")
echo "# the alert fired ${fired:-?} s after the load started"
mb() { sed -n "s/^rss: $1 [0-9.:]* [0-9.]* MB at the load start, \([0-9.]*\) MB at its end.*/\1/p" "$OUT/summary.txt" | cut -d. -f1; }
check "Prometheus saw the leaky RSS pass the fixed ones by > 100 MB ($(mb leaky) vs $(mb fixed-a), $(mb fixed-b) MB)" \
    test "${leaky_mb:=$(mb leaky)}" -gt $(($(mb fixed-a) + 100))
check "the leaky instance's pprof profile names the LEAK-SITE line first" \
    grep -q "^pprof: .* fetch_user_data server/fetch_user_data.c:$LEAK_LINE\$" "$OUT/summary.txt"
if [ -s "$OUT/prometheus-rss.png" ]; then
    mkdir -p results && cp "$OUT/prometheus-rss.png" results/prometheus-rss.png
    pass "headless chromium took Prometheus' graph (results/prometheus-rss.png)"
fi
check_eq "nothing it started is left running" "" "$(alive "$OUT/pids" | tr '\n' ' ')"

# ---- interrupted once everything runs: SIGINT to the script alone; it stops the rest.
# (A non-interactive bash starts background jobs with SIGINT ignored: env restores it.)
OUT2="$TEST_TMP/fleet-int"
FLEET_OUT="$OUT2" SCREENSHOT=0 setsid env --default-signal=INT bash scripts/fleet.sh >"$TEST_TMP/int.out" 2>"$TEST_TMP/int.err" </dev/null &
sid=$!
started "$sid"
for _ in $(seq 1 300); do grep -q ' load$' "$OUT2/pids" 2>/dev/null && break; sleep 0.1; done
sleep 2
check "the interrupted run had started servers, Prometheus and the load" \
    test "$(alive "$OUT2/pids" | wc -l)" -eq 5
kill -INT "$sid"
for _ in $(seq 1 300); do proc_gone "$sid" && break; sleep 0.1; done
rc=0
wait "$sid" || rc=$?
forget_pid "$sid"
check_eq "SIGINT: the script exits 130 and says so" "130 1" "$rc $(grep -c 'interrupted; stopping what it started' "$TEST_TMP/int.err")"
# When it does not (bash 5.2 once failed to parse the INT trap after a SIGINT inside $(...):
# exit 2, see scripts/fleet.sh's poll), show what the run said.
[ "$rc" = 130 ] || { tail -n 5 "$TEST_TMP/int.out"; tail -n 5 "$TEST_TMP/int.err"; } | sed 's/^/# interrupted run: /'
check_eq "... every process it started is gone" "" "$(alive "$OUT2/pids" | tr '\n' ' ')"
check_eq "... nothing is left in its session (ab included)" "" "$(session_pids "$sid" | tr '\n' ' ')"
done_testing
