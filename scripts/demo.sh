#!/usr/bin/env bash
# demo.sh - the workshop demo: load the leaky then the fixed server with ab, chart RSS per request, show where the leak is.
set -eu

usage() {
    cat >&2 <<'EOF'
usage: scripts/demo.sh            (run by `make demo`, after the build)
For mode in leaky, fixed: starts bin/server, records its idle RSS, sends
REQUESTS x GET / with `ab -c CONCURRENCY` while sampling its RSS, records the
final RSS, stops it. In leaky mode it also takes GET /capture before and after
the load. Writes results/: rss.csv rss.png ab-leaky.txt ab-fixed.txt
capture-before.txt capture-after.txt server-leaky.log server-fixed.log
summary.md, and prints the summary.
Environment: PORT (5000), REQUESTS (10000), CONCURRENCY (1),
             SERVER (bin/server), READY_SECONDS (10), RESULTS (results).
EOF
    exit 2
}

[ $# -eq 0 ] || usage

cd "$(dirname "$0")/.."   # repository root: the paths in /capture are relative to it

PORT=${PORT:-5000}
REQUESTS=${REQUESTS:-10000}
CONCURRENCY=${CONCURRENCY:-1}
SERVER=${SERVER:-bin/server}
READY_SECONDS=${READY_SECONDS:-10}
RESULTS=${RESULTS:-results}
for v in PORT REQUESTS CONCURRENCY READY_SECONDS; do
    case "${!v}" in
        ''|*[!0-9]*|0*) echo "demo: $v must be a positive integer, got '${!v}'" >&2; exit 2 ;;
    esac
done

say() { echo "== $*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ -x "$SERVER" ] || die "$SERVER not found: run 'make' first"
for tool in ab curl gnuplot; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run 'bash scripts/deps.sh demo'"
done

# ---- helpers (the server's start/stop, /stats, ab: scripts/lib.sh) ----------

. scripts/lib.sh
# lib.sh stops what this script started at exit; Ctrl-C says so first.
trap 'trap "" INT TERM; echo; echo "demo: interrupted; stopping what it started" >&2; exit 130' INT

# GET /capture into file $1; fails with the server's one-line reason.
capture_to() {
    local code
    code=$(curl -s --max-time 30 -o "$1" -w '%{http_code}' "$(url /capture)") || code=000
    [ "$code" = 200 ] || die "GET /capture answered HTTP $code: $(head -n 1 "$1" 2>/dev/null)"
}

# start_mode MODE: the server in MODE (leaky, fixed) on PORT, its output in
# RESULTS/server-MODE.log; sets SERVER_PID.
start_mode() {
    local log="$RESULTS/server-$1.log" flag=""
    if [ "$1" = fixed ]; then flag="--fixed"; fi
    port_free "$PORT" || die "port $PORT is busy (another server running?): stop it or run PORT=$((PORT % 65535 + 1)) make demo"
    say "$1 server: starting $SERVER --port $PORT${flag:+ $flag}"
    launch_server "$READY_SECONDS" "$log" "$log" "$SERVER" --port "$PORT" $flag ||
        die "$SERVER --port $PORT${flag:+ $flag} $LAUNCH_ERROR (see $log)"
}

# ---- one run per mode --------------------------------------------------------

declare -A idle_kb start_kb final_kb start_req final_req
mkdir -p "$RESULTS"
rm -f "$RESULTS"/rss.csv "$RESULTS"/rss.png "$RESULTS"/summary.md "$RESULTS"/ab-*.txt \
      "$RESULTS"/capture-*.txt "$RESULTS"/server-*.log

for mode in leaky fixed; do
    start_mode "$mode"
    idle_kb[$mode]=$(stats_field rss_kb) || die "GET /stats on port $PORT gave no rss_kb"
    say "$mode server: ready (pid $SERVER_PID), idle RSS $(mib "${idle_kb[$mode]}")"

    if [ "$mode" = leaky ]; then
        capture_to "$RESULTS/capture-before.txt"
        say "$mode server: GET /capture before the load -> $RESULTS/capture-before.txt (baseline)"
    fi

    # Growth is measured from here: the first /capture (leaky) grows RSS by itself.
    start_kb[$mode]=$(stats_field rss_kb) || die "GET /stats on port $PORT gave no rss_kb"
    start_req[$mode]=$(stats_field requests) || die "GET /stats on port $PORT gave no requests count"
    say "$mode server: ab -n $REQUESTS -c $CONCURRENCY, RSS $(mib "${start_kb[$mode]}") at the start, sampled every 100 ms"
    load_rc=0
    bash loadgen/run_load.sh --port "$PORT" --pid "$SERVER_PID" --requests "$REQUESTS" \
        --concurrency "$CONCURRENCY" --label "$mode" --csv "$RESULTS/rss.csv" \
        --ab-out "$RESULTS/ab-$mode.txt" &
    load_pid=$!
    started "$load_pid"   # run_load.sh stops its ab and sampler
    wait "$load_pid" || load_rc=$?
    forget_pid "$load_pid"
    [ "$load_rc" -eq 0 ] || die "the load on the $mode server failed (see above, $RESULTS/ab-$mode.txt, $RESULTS/server-$mode.log)"

    final_kb[$mode]=$(stats_field rss_kb) || die "GET /stats on port $PORT gave no rss_kb after the load"
    final_req[$mode]=$(stats_field requests) || die "GET /stats gave no requests count after the load"
    say "$mode server: final RSS $(mib "${final_kb[$mode]}") after $((final_req[$mode] - start_req[$mode])) requests" \
        "(+$(mib $((final_kb[$mode] - start_kb[$mode]))))"

    if [ "$mode" = leaky ]; then
        capture_to "$RESULTS/capture-after.txt"
        say "$mode server: GET /capture after the load -> $RESULTS/capture-after.txt"
        say "  top sites, biggest growth first:"
        head -n 3 "$RESULTS/capture-after.txt" | sed 's/^/==     /'
    fi

    stop_pid "$SERVER_PID"
    say "$mode server: stopped (pid $SERVER_PID, SIGTERM)"
done

# ---- chart -------------------------------------------------------------------

if gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo; then term=pngcairo; else term=png; fi
gnuplot -e "csv='$RESULTS/rss.csv'; out='$RESULTS/rss.png'; term='$term'; plot_title='Server RSS during $REQUESTS requests (ab -c $CONCURRENCY)'" \
    scripts/plot.gp || die "gnuplot failed to draw $RESULTS/rss.png"
say "chart: $RESULTS/rss.png ($term)"

# ---- summary -----------------------------------------------------------------

top=$(head -n 1 "$RESULTS/capture-after.txt")
loc=$(printf '%s\n' "$top" | sed -n 's/^\([^: ]*\):\([0-9][0-9]*\):.*/\1:\2/p')
src_file=${loc%:*} src_line=${loc##*:}
src_file=${src_file#./}
if [ -n "$loc" ] && [ -r "$src_file" ]; then
    source_text="$src_file:$src_line: $(sed -n "${src_line}p" "$src_file" | sed 's/^[[:space:]]*//')"
elif [ -n "$loc" ]; then
    source_text="($src_file is not readable from $(pwd))"
else
    source_text="(the top line names no FILE:LINE:)"
fi

{
    echo "# Leak lab demo"
    echo
    echo "$REQUESTS requests per server with \`ab -n $REQUESTS -c $CONCURRENCY\`, port $PORT, $(date '+%Y-%m-%d %H:%M')."
    echo
    echo "| mode | idle RSS | RSS at load start | final RSS | growth per request | requests/s | failed requests | non-2xx |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for mode in leaky fixed; do
        served=$((final_req[$mode] - start_req[$mode]))
        growth=$(awk -v d=$((final_kb[$mode] - start_kb[$mode])) -v n="$served" \
            'BEGIN { if (n > 0) printf "%.0f B", d * 1024 / n; else print "-" }')
        echo "| $mode | $(mib "${idle_kb[$mode]}") | $(mib "${start_kb[$mode]}") | $(mib "${final_kb[$mode]}") | $growth" \
             "| $(ab_field "$RESULTS/ab-$mode.txt" 'Requests per second:')" \
             "| $(ab_field "$RESULTS/ab-$mode.txt" 'Failed requests:')" \
             "| $(ab_field "$RESULTS/ab-$mode.txt" 'Non-2xx responses:') |"
    done
    echo
    echo "RSS from GET /stats (VmRSS); MiB = kB/1024, as /capture and the dashboard print it. Growth per request = (final RSS - RSS at load start) in kB"
    echo "x 1024 / requests served. In leaky mode the load starts after the first GET /capture, which itself"
    echo "grows RSS (idle -> load start)."
    echo
    echo "## Where the leak is"
    echo
    echo "Top lines of \`$RESULTS/capture-after.txt\` (GET /capture after the leaky run: growth since the capture before it):"
    echo
    head -n 3 "$RESULTS/capture-after.txt" | sed 's/^/    /'
    echo
    echo "The source line it points at:"
    echo
    echo "    $source_text"
    echo
    echo "Files: $RESULTS/rss.csv, $RESULTS/rss.png, $RESULTS/ab-leaky.txt, $RESULTS/ab-fixed.txt," \
         "$RESULTS/capture-before.txt, $RESULTS/capture-after.txt"
} >"$RESULTS/summary.md"
say "summary: $RESULTS/summary.md"
echo
cat "$RESULTS/summary.md"
echo
say "demo done in $SECONDS s"
