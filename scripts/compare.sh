#!/usr/bin/env bash
# compare.sh - the same leaky load under the lab's tracker, heaptrack, valgrind and the sanitizers; writes results/compare.md.
set -eu

usage() {
    cat >&2 <<'EOF'
usage: scripts/compare.sh            (run by `make compare`, after the build)
For each leak kind (drop, cache), loads the leaky server with `ab -n REQUESTS
-c CONCURRENCY` under each tool a C engineer would reach for, and asks each
tool where the leak is:
  plain        bin/server-plain, no tool: the req/s baseline of this run
  tracker      bin/server, GET /capture before and after the load
  heaptrack    heaptrack bin/server-plain, heaptrack_print --print-leaks
  LSan         bin/server-lsan (-fsanitize=leak), its report at exit
  ASan         bin/server-asan (-fsanitize=address,undefined), its report at exit
  valgrind     valgrind --leak-check=full --show-leak-kinds=all bin/server-plain,
               asked live through vgdb (leak_check) and again at exit
               (VALGRIND_REQUESTS requests: it is slow)
Writes results/compare.md (one table) and the tools' raw output in
results/compare/. Environment: REQUESTS (5000), VALGRIND_REQUESTS (500),
CONCURRENCY (8), KINDS ("drop cache"), RESULTS (results).
EOF
    exit 2
}

case "${1:-}" in -h|--help) usage ;; esac
[ $# -eq 0 ] || usage

cd "$(dirname "$0")/.."   # repository root: the tools print paths relative to it

REQUESTS=${REQUESTS:-5000}
VALGRIND_REQUESTS=${VALGRIND_REQUESTS:-500}
CONCURRENCY=${CONCURRENCY:-8}
KINDS=${KINDS:-drop cache}
RESULTS=${RESULTS:-results}
for v in REQUESTS VALGRIND_REQUESTS CONCURRENCY; do
    case "${!v}" in
        ''|*[!0-9]*|0*) echo "compare: $v must be a positive integer, got '${!v}'" >&2; exit 2 ;;
    esac
done
for k in $KINDS; do
    case "$k" in drop|cache) ;; *) echo "compare: KINDS may hold drop and cache, got '$k'" >&2; exit 2 ;; esac
done

say() { echo "== $*"; }
die() { echo "compare: $*" >&2; exit 1; }

for b in bin/server bin/server-plain bin/server-lsan bin/server-asan; do
    [ -x "$b" ] || die "$b not found: run 'make compare' (it builds it)"
done
for tool in ab curl heaptrack heaptrack_print valgrind vgdb; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run 'bash scripts/deps.sh compare'"
done

# The line every tool should name (LEAK_LINE, SITE: found in the source by lib.sh).
. scripts/lib.sh
[ -n "$LEAK_LINE" ] || die "no LEAK-SITE marker in server/fetch_user_data.c"
STOP_SECONDS=120   # at exit, valgrind's leak check takes a while

RAW="$RESULTS/compare"
mkdir -p "$RAW"
rm -f "$RAW"/*.txt "$RAW"/*.log
WORK=$LAB_TMP

# ---- helpers (start/stop, ports, ab fields: scripts/lib.sh) --------------------

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# launch NAME CMD...: CMD (a server command, maybe behind a tool) --port P on a
# free port, ready within 60 s, or stop the comparison. Sets WRAP (the PID we
# started), SPID (the server's PID, from the ready line), PORT, OUT, ERR.
launch() {
    local name=$1; shift
    pick_port || die "no free port"
    PORT=$PICKED OUT="$RAW/$name.out.txt" ERR="$RAW/$name.err.txt"
    launch_server 60 "$OUT" "$ERR" "$@" --port "$PORT" || die "$name: '$*' $LAUNCH_ERROR"
    WRAP=$LAUNCH_PID SPID=$SERVER_PID
}

# server_cpu: CPU ticks used so far by the server and, when it runs behind a
# wrapper (heaptrack), by all the wrapper's children: the tool's helper
# processes cost CPU too.
server_cpu() {
    # shellcheck disable=SC2046 # one argument per child PID
    if [ "$SPID" = "$WRAP" ]; then cpu_ticks "$SPID"
    else cpu_ticks $(ps -o pid= --ppid "$WRAP" || true); fi
}
CLK_TCK=$(getconf CLK_TCK)

# load NAME N: N x GET / with ab; sets RPS (requests per second as ab reports it)
# and CPU_US (CPU microseconds per request of the server and its tool, see server_cpu).
load() {
    local name=$1 n=$2 ab_out="$RAW/$1.ab.txt" t0
    t0=$(server_cpu)
    ab -q -n "$n" -c "$CONCURRENCY" "$(url /)" >"$ab_out" 2>&1 || die "$name: ab failed, see $ab_out"
    ab_ok "$ab_out" "$n" || die "$name: ab completed $(ab_field "$ab_out" 'Complete requests') of $n requests," \
        "$(ab_field "$ab_out" 'Failed requests') failed, $(ab_field "$ab_out" 'Non-2xx responses') non-2xx (see $ab_out)"
    RPS=$(printf '%.0f' "$(ab_field "$ab_out" 'Requests per second')")
    CPU_US=$(awk -v a="$t0" -v b="$(server_cpu)" -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1e6 / hz / n }')
}

# finish: SIGTERM the server only (the tools write their reports as it leaves
# through exit()), then wait up to 120 s for it and for the PID we started:
# heaptrack's wrapper also waits for its writer to finish the data file.
# Whatever is still there after that is stopped.
finish() {
    kill -TERM "$SPID" 2>/dev/null || true
    wait_gone "$SPID" 120 && wait_gone "$WRAP" 120 || true
    stop_pid "$WRAP" 120
    stop_pid "$SPID" 120
}

# valgrind_kind FILE: how memcheck classed the loss record whose stack names
# SITE ("definitely lost", "still reachable", ...), with its size; "" if none.
valgrind_kind() {
    awk -v site="$SITE" '
        / in loss record / { hdr = $0; sub(/^==[0-9]+== /, "", hdr); sub(/ in loss record.*/, "", hdr) }
        index($0, "(" site ")") && hdr != "" { print hdr; exit }' "$1"
}

# One row of the table per tool and kind, keyed "kind/tool": req/s, CPU us per
# request (from the last load), what it names, whether live, seconds to the line.
declare -A R_rps R_cpu R_names R_live R_secs
record() { R_rps[$1]=$2; R_cpu[$1]=$CPU_US; R_names[$1]=$3; R_live[$1]=$4; R_secs[$1]=$5; }

T_START=$(now)
say "leaking line to find: server/$SITE ($REQUESTS requests per tool, valgrind $VALGRIND_REQUESTS, ab -c $CONCURRENCY)"

for kind in $KINDS; do
    # ---- plain: the baseline, no tool at all
    launch "$kind-plain" bin/server-plain --leak="$kind"
    load "$kind-plain" "$REQUESTS"
    finish
    record "$kind/plain" "$RPS" "-" "-" "-"
    say "$kind: plain server $RPS req/s, $CPU_US us CPU per request"

    # ---- the lab's tracker: two captures while it runs
    launch "$kind-tracker" bin/server --leak="$kind"
    curl -s --max-time 30 "http://127.0.0.1:$PORT/capture" >"$RAW/$kind-tracker.capture-before.txt"
    load "$kind-tracker" "$REQUESTS"
    t0=$(now)
    curl -s --max-time 30 "http://127.0.0.1:$PORT/capture" >"$RAW/$kind-tracker.capture-after.txt"
    secs=$(since "$t0")
    first=$(head -1 "$RAW/$kind-tracker.capture-after.txt")
    finish
    case "$first" in
        "server/$SITE: "*) names="yes: first line, $(echo "$first" | grep -o 'count=[0-9]* (+[0-9]*)' || true)" ;;
        *) names="no (first line: ${first:0:60})" ;;
    esac
    record "$kind/tracker" "$RPS" "$names" "yes, GET /capture" "$secs"
    say "$kind: tracker $RPS req/s; /capture: $first"

    # ---- heaptrack: preloaded into the plain server; its data is read after the stop
    rm -f "$WORK"/heaptrack.*
    launch "$kind-heaptrack" heaptrack -o "$WORK/heaptrack.$kind" bin/server-plain --leak="$kind"
    load "$kind-heaptrack" "$REQUESTS"
    data=$(ls "$WORK"/heaptrack."$kind"* 2>/dev/null | head -1)
    live_bytes=$(stat -c %s "$data" 2>/dev/null || echo 0)
    live_hit=no
    if [ -n "$data" ] && timeout 60 heaptrack_print -p 0 -a 0 -T 0 -l 1 -f "$data" \
            >"$RAW/$kind-heaptrack.live.txt" 2>&1 && grep -q "$SITE" "$RAW/$kind-heaptrack.live.txt"; then
        live_hit=yes
    fi
    t0=$(now)
    finish
    data=$(ls "$WORK"/heaptrack."$kind"* 2>/dev/null | head -1)
    [ -n "$data" ] || die "$kind: heaptrack wrote no data file (see $RAW/$kind-heaptrack.err.txt)"
    timeout 120 heaptrack_print -p 0 -a 0 -T 0 -l 1 -f "$data" >"$RAW/$kind-heaptrack.print.txt" 2>&1 || true
    secs=$(since "$t0")
    leak1=$(sed -n '/^MEMORY LEAKS/,$p' "$RAW/$kind-heaptrack.print.txt" | sed -n 2,4p)
    if echo "$leak1" | grep -q "$SITE"; then
        names="yes: top leak, $(echo "$leak1" | head -1 | sed 's/ from$//')"
    else
        names="no (top leak: $(echo "$leak1" | head -1))"
    fi
    if [ "$live_hit" = yes ]; then live="yes, heaptrack_print on the running file"
    else live="no: data file $live_bytes bytes while running, heaptrack_print found no line"; fi
    record "$kind/heaptrack" "$RPS" "$names" "$live" "$secs"
    say "$kind: heaptrack $RPS req/s; $names"

    # ---- the sanitizers: their leak report is written by exit()
    for san in lsan asan; do
        launch "$kind-$san" "bin/server-$san" --leak="$kind"
        load "$kind-$san" "$REQUESTS"
        t0=$(now)
        finish
        secs=$(since "$t0")
        summary=$(grep -m1 '^SUMMARY: ' "$ERR" | sed 's/^SUMMARY: //' || true)
        if grep -q "$SITE" "$ERR"; then
            names="yes: $(grep -m1 -B3 "$SITE" "$ERR" | grep -m1 -o '^[A-Z][a-z]* leak of [0-9]* byte(s) in [0-9]* object(s)' || true)"
        else
            names="no: ${summary:-no report at all}"
        fi
        case "$san" in lsan) label=LSan ;; *) label=ASan ;; esac
        record "$kind/$san" "$RPS" "$names" "no, at exit only" "$secs"
        say "$kind: $label $RPS req/s; $names"
    done

    # ---- valgrind memcheck: asked while running (vgdb), then at exit
    launch "$kind-valgrind" valgrind --leak-check=full --show-leak-kinds=all \
        --log-file="$RAW/$kind-valgrind.log" bin/server-plain --leak="$kind"
    load "$kind-valgrind" "$VALGRIND_REQUESTS"
    t0=$(now)
    timeout 120 vgdb --pid="$SPID" leak_check full reachable any >"$RAW/$kind-valgrind.vgdb.txt" 2>&1 || true
    secs_live=$(since "$t0")
    cls_live=$(valgrind_kind "$RAW/$kind-valgrind.vgdb.txt")
    t0=$(now)
    finish
    secs_exit=$(since "$t0")
    cls_exit=$(valgrind_kind "$RAW/$kind-valgrind.log")
    for when in live exit; do
        if [ "$when" = live ]; then cls=$cls_live; s=$secs_live; l="yes, vgdb leak_check"
        else cls=$cls_exit; s=$secs_exit; l="no, at exit"; fi
        case "$cls" in
            *"definitely lost"*) names="yes: $cls" ;;
            *"still reachable"*) names="only with --show-leak-kinds=all: $cls" ;;
            "") names="no" ;;
            *) names="yes: $cls" ;;
        esac
        record "$kind/valgrind-$when" "$RPS" "$names" "$l" "$s"
    done
    say "$kind: valgrind $RPS req/s; live: ${cls_live:-nothing}; exit: ${cls_exit:-nothing}"
done

WALL=$(since "$T_START")

# ---- the table --------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
{
    echo "# The leak under each tool (make compare)"
    echo
    echo "Written by \`scripts/compare.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"\
         "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))."
    echo "Load: \`ab -n $REQUESTS -c $CONCURRENCY\` (valgrind: \`-n $VALGRIND_REQUESTS\`), ab and the server sharing the cores."
    echo "The line to find: \`server/$SITE\` (the \`LEAK-SITE\` line). \"vs plain\" = req/s"\
         "divided by the plain server's req/s of the same kind in this run (single runs: +-30% noise)."
    echo "\"seconds\" = from the end of the load to having the line: the report request, or stopping"\
         "the server (SIGTERM, exit() writes the report) plus reading the report."
    echo
    echo "\"CPU/req\" = CPU time of the server (and of the tool's helper processes: heaptrack's"\
         "interpreter and compressor) during the load, per request; it is steadier than req/s."
    echo
    echo "| leak kind | tool | req/s | vs plain | CPU/req | vs plain | names the leaking line? | while the server runs? | seconds |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for kind in $KINDS; do
        base=${R_rps[$kind/plain]}
        cbase=${R_cpu[$kind/plain]}
        for t in plain tracker heaptrack lsan asan valgrind-live valgrind-exit; do
            case "$t" in
                plain) label="plain server (bin/server-plain)" ;;
                tracker) label="lab tracker (bin/server, /capture)" ;;
                heaptrack) label="heaptrack + heaptrack_print" ;;
                lsan) label="LeakSanitizer build" ;;
                asan) label="ASan+UBSan build" ;;
                valgrind-live) label="valgrind memcheck, vgdb while running" ;;
                valgrind-exit) label="valgrind memcheck, at exit" ;;
            esac
            echo "| $kind | $label | ${R_rps[$kind/$t]} | $(ratio "${R_rps[$kind/$t]}" "$base") |" \
                 "${R_cpu[$kind/$t]} us | $(ratio "${R_cpu[$kind/$t]}" "$cbase") |" \
                 "${R_names[$kind/$t]} | ${R_live[$kind/$t]} | ${R_secs[$kind/$t]} |"
        done
    done
    echo
    echo "drop: the record's pointer is dropped (unreachable). cache: every record is kept in a"
    echo "global cache that never evicts (reachable): RSS grows the same, but exit-time leak"
    echo "checkers only report unreachable blocks."
    echo
    echo "Raw output of every tool: \`$RAW/\`. Measured in $WALL s (builds and installs not included)."
} >"$RESULTS/compare.md"

cat "$RESULTS/compare.md"
say "wrote $RESULTS/compare.md in $WALL s"
