#!/usr/bin/env bash
# bench.sh - `make bench`: tracker on/off throughput, /capture latency and bookkeeping, measured side by side in one run.
set -eu

usage() {
    echo "usage: $0" >&2
    echo "Prints: req/s and server CPU per request with the tracker on and off (ab -c 1 and" >&2
    echo "ab -c 8 -k, interleaved rounds, medians), /capture latency with 10k and 1M live" >&2
    echo "blocks, and tracker bookkeeping bytes per live block. Env: ROUNDS (3), N (10000)." >&2
    exit 2
}
[ $# -eq 0 ] || usage

cd "$(dirname "$0")/.."
. scripts/lib.sh
ROUNDS=${ROUNDS:-3}
N=${N:-10000}
OUT=results/bench.md
mkdir -p results

# one_run MODE ABARGS: ab_cost of a fresh server (MODE on|off): "req/s us_cpu_per_request".
# keep-alive requests are ~5x cheaper: more of them, so CPU ticks (1/100 s) resolve the difference;
# --fixed: the tracker's cost is what is measured, not the kernel faulting in 40 KB a request.
one_run() {
    local extra="" n=$N
    case "$2" in *-k*) n=$((N * 5)) ;; esac
    [ "$1" = off ] && extra=--no-tracker
    ab_cost "$n" "$2" bin/server --fixed --threads 8 $extra
}

echo "# tracker benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, N=$N, $ROUNDS rounds, medians)" | tee "$OUT"
echo | tee -a "$OUT"
echo "| load | req/s off | req/s on | on/off | CPU us/req off | CPU us/req on | CPU on/off |" | tee -a "$OUT"
echo "|---|---|---|---|---|---|---|" | tee -a "$OUT"
onoff_rows one_run | tee -a "$OUT"

# Instructions per request under callgrind: deterministic, whatever else the
# machine is doing (req/s on 2 shared cores drift +-30% between runs).
# Per request = (I(3N) - I(N)) / 2N, so start-up and shutdown cancel out.
cg_instr() { # MODE REQUESTS -> total instructions of one server run
    local mode=$1 n=$2 extra="" out
    [ "$mode" = off ] && extra=--no-tracker
    out="$LAB_TMP/cg.$mode.$n"
    start_or_exit valgrind --tool=callgrind --callgrind-out-file="$out.cg" bin/server --fixed --threads 2 $extra
    ab -q -n "$n" -c 1 -k "$(url /)" >/dev/null 2>&1
    # Under valgrind a SIGTERM is sometimes left pending: ask again, once a
    # second, for up to 60 s (SIGKILL would lose callgrind's output).
    for _ in $(seq 1 60); do proc_gone "$SERVER_PID" && break; kill -TERM "$SERVER_PID" 2>/dev/null; sleep 1; done
    stop_pid "$SERVER_PID"
    callgrind_annotate "$out.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
    CGN=${CGN:-2000}
    on1=$(cg_instr on "$CGN"); on3=$(cg_instr on $((3 * CGN)))
    off1=$(cg_instr off "$CGN"); off3=$(cg_instr off $((3 * CGN)))
    echo | tee -a "$OUT"
    echo "| callgrind, ab -c 1 -k, --fixed | instructions/request off | on | on/off |" | tee -a "$OUT"
    echo "|---|---|---|---|" | tee -a "$OUT"
    awk -v a1="$off1" -v a3="$off3" -v b1="$on1" -v b3="$on3" -v n="$CGN" 'BEGIN {
        off = (a3 - a1) / (2 * n); on = (b3 - b1) / (2 * n)
        printf "| server CPU work | %.0f | %.0f | %.3f |\n", off, on, on / off }' | tee -a "$OUT"
fi

echo | tee -a "$OUT"
echo "| live blocks | /capture latency (curl, median of 5 warm) | snapshot ms | report ms | bookkeeping B/block |" | tee -a "$OUT"
echo "|---|---|---|---|---|" | tee -a "$OUT"
for blocks in 10000 1000000; do
    start_or_exit bin/server --ballast-blocks "$blocks"
    curl -s "$(url /capture)" >/dev/null # first capture: loads DWARF, becomes the baseline
    : >"$LAB_TMP/lat"
    for _ in 1 2 3 4 5; do
        curl -s -o "$LAB_TMP/cap.json" -w '%{time_total}\n' "$(url '/capture?format=json')" >>"$LAB_TMP/lat"
    done
    lat=$(median <"$LAB_TMP/lat")
    snap=$(sed -n 's/.*"snapshot_ms":\([0-9.]*\).*/\1/p' "$LAB_TMP/cap.json")
    rep=$(sed -n 's/.*"report_ms":\([0-9.]*\).*/\1/p' "$LAB_TMP/cap.json")
    per=$(sed -n 's/.*"bookkeeping_per_block":\([0-9.]*\).*/\1/p' "$LAB_TMP/cap.json")
    live=$(sed -n 's/.*"total":{"size":[0-9]*,"count":\([0-9]*\).*/\1/p' "$LAB_TMP/cap.json")
    stop_pid "$SERVER_PID"
    awk -v b="$blocks" -v l="$lat" -v s="$snap" -v r="$rep" -v p="$per" -v live="$live" 'BEGIN {
        printf "| %d (%d tracked) | %.2f ms | %s | %s | %s |\n", b, live, l * 1000, s, r, p }' | tee -a "$OUT"
done
echo | tee -a "$OUT"
echo "Goals: on/off >= 0.95; /capture <= 5 ms at 10k and <= 10 ms at 1M blocks; <= 32 B per live block." | tee -a "$OUT"
# The per-site history behind /leaks (issue 13): its own script, appending to the same file.
bash tests/bench_leaks.sh "$OUT"
echo "bench: written to $OUT"
