#!/usr/bin/env bash
# bench_retention.sh - what a /retention scan costs: the pause the server's threads see (the clone) and the scan time, at 10k/100k/1M live blocks, at 400 MB of records and at the lab's leak cap; requests/s while scans run.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TEST_ROOT" || exit 1

# Nothing is asserted: figures are printed (and written to results/bench-retention.md).
SCANS=${RETENTION_SCANS:-3}
OUT=$TEST_ROOT/results/bench-retention.md
mkdir -p "$TEST_ROOT/results"

# scans: SCANS scans of the current server; prints "pause_ms scan_ms total_ms blocks" medians.
scans() {
    local _
    for _ in $(seq "$SCANS"); do
        curl -s --max-time 120 "$(url '/retention?format=json&top=1')" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r.get("pause_ms", -1), r.get("scan_ms", -1), r.get("total_ms", -1), r.get("blocks_scanned", -1), r.get("bytes_scanned", -1),
      "%.1f/%.1f/%.1f" % (r.get("enum_ms", -1), r.get("mark_ms", -1), r.get("dom_ms", -1)))'
    done | sort -n -k2 | awk -v n="$SCANS" 'NR == int((n + 1) / 2) { printf "%.2f %.1f %.1f %d %.0f %s\n", $1, $2, $3, $4, $5 / 1e6, $6 }'
}

{
    echo "| heap | live blocks | heap MB | pause_ms (clone) | scan_ms | of it: find/mark/dominators ms | total_ms |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
} >"$OUT"

row() { # row LABEL: one table row from scans
    local f
    f=$(scans)
    read -r pause scan total blocks mb parts <<<"$f"
    echo "| $1 | $blocks | $mb | $pause | $scan | $parts | $total |" | tee -a "$OUT"
}

for n in 10000 100000 1000000; do
    start_server --fixed --ballast-blocks "$n" || continue
    row "--ballast-blocks $n (32-byte blocks)"
    stop_server
done

for req in 10000 cap; do
    start_server --leak=cache || continue
    if [ "$req" = cap ]; then
        # the default cap, 1024 MiB: 26711 records of 40200 B, then 503s
        ab -q -n 27000 -c 8 "$(url /)" >/dev/null 2>&1
        label="--leak=cache at the leak cap ($(stats_field leaked_blocks) records)"
    else
        ab -q -n "$req" -c 8 "$(url /)" >/dev/null 2>&1
        label="--leak=cache, $req requests"
    fi
    row "$label"
    if [ "$req" = 10000 ]; then
        # requests/s of GET / (the fixed path would not grow the heap: --leak=cache keeps growing it
        # by 40 KB a request either way) with and without scans running back to back
        ab -q -n 4000 -c 4 "$(url /)" >"$TEST_TMP/ab0.txt" 2>&1
        ab -q -n 4000 -c 4 "$(url /)" >"$TEST_TMP/ab1.txt" 2>&1 &
        abp=$!
        k=0
        while kill -0 "$abp" 2>/dev/null && [ "$k" -lt 100 ]; do
            curl -s --max-time 120 "$(url '/retention?top=1')" >/dev/null
            k=$((k + 1))
        done
        wait "$abp"
        echo "requests/s at 10000-14000 records: $(ab_field "$TEST_TMP/ab0.txt" 'Requests per second') without scans," \
             "$(ab_field "$TEST_TMP/ab1.txt" 'Requests per second') with $k scans back to back" | tee -a "$OUT"
    fi
    stop_server
done
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; median of $SCANS scans each" | tee -a "$OUT"
echo "written: $OUT"
