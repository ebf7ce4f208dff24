#!/usr/bin/env bash
# run_load.sh - drives `ab` against the lab server while bin/rss_sampler records its RSS per request into a CSV.
set -eu

usage() {
    cat >&2 <<'EOF'
usage: run_load.sh --port P --pid SERVER_PID --requests N --concurrency C
                   --label LABEL --csv FILE --ab-out FILE [--keepalive]
Runs `ab -n N -c C [-k] http://127.0.0.1:P/` (its report goes to the --ab-out
FILE) while bin/rss_sampler appends run,elapsed_s,requests,rss_kb rows for
SERVER_PID to the --csv FILE (header written if the FILE is new or empty).
Exits non-zero with a one-line reason if ab fails or the server dies.
Environment: LOAD_MAX_SECONDS (default 600) bounds the whole load.
EOF
    exit 2
}

die() {
    echo "run_load: $*" >&2
    exit 1
}

# ---- arguments ---------------------------------------------------------------

port="" server_pid="" requests="" concurrency="" label="" csv="" ab_out="" keepalive=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port|--pid|--requests|--concurrency|--label|--csv|--ab-out)
            [ $# -ge 2 ] || { echo "run_load: $1 needs a value" >&2; usage; }
            case "$1" in
                --port) port=$2 ;;
                --pid) server_pid=$2 ;;
                --requests) requests=$2 ;;
                --concurrency) concurrency=$2 ;;
                --label) label=$2 ;;
                --csv) csv=$2 ;;
                --ab-out) ab_out=$2 ;;
            esac
            shift 2 ;;
        --keepalive) keepalive="-k"; shift ;;
        -h|--help) usage ;;
        *) echo "run_load: unknown argument '$1'" >&2; usage ;;
    esac
done
# Each check: variable, then the option that sets it.
for pair in port:--port server_pid:--pid requests:--requests concurrency:--concurrency \
            label:--label csv:--csv ab_out:--ab-out; do
    v=${pair%%:*} opt=${pair#*:}
    [ -n "${!v}" ] || { echo "run_load: $opt is required" >&2; usage; }
    case "$v" in label|csv|ab_out) continue ;; esac
    case "${!v}" in
        *[!0-9]*|0*) echo "run_load: $opt must be a positive integer, got '${!v}'" >&2; usage ;;
    esac
done
[ "$concurrency" -le "$requests" ] || { echo "run_load: --concurrency ($concurrency) exceeds --requests ($requests)" >&2; usage; }
max_seconds=${LOAD_MAX_SECONDS:-600}

here=$(cd "$(dirname "$0")" && pwd)
sampler="$here/../bin/rss_sampler"
[ -x "$sampler" ] || die "$sampler not found: run 'make bin/rss_sampler' first"
command -v ab >/dev/null 2>&1 || die "ab not found: run 'bash scripts/deps.sh demo' (package apache2-utils)"
kill -0 "$server_pid" 2>/dev/null || die "server pid $server_pid is not running"

# ---- cleanup: only the two processes started here ----------------------------

ab_pid="" sampler_pid=""
cleanup() {
    for p in $ab_pid $sampler_pid; do
        kill "$p" 2>/dev/null || true
    done
    for p in $ab_pid $sampler_pid; do
        wait "$p" 2>/dev/null || true
    done
}
# `exit` in the INT/TERM traps runs the EXIT trap, so cleanup runs once, with a meaningful
# status; a second signal during the cleanup is ignored so that it cannot be cut short.
trap cleanup EXIT
trap 'trap "" INT TERM; exit 130' INT
trap 'trap "" INT TERM; exit 143' TERM

# ---- the load ----------------------------------------------------------------

# No -l: every "hello user<ID>" body has the same length (server/routes.c
# walks ids of one digit count), so a length change is a real failure.
ab $keepalive -n "$requests" -c "$concurrency" "http://127.0.0.1:$port/" >"$ab_out" 2>&1 &
ab_pid=$!

"$sampler" --pid "$server_pid" --port "$port" --out "$csv" --append --run "$label" \
    --until-pid "$ab_pid" --expect "$requests" --max-seconds "$max_seconds" &
sampler_pid=$!

sampler_rc=0
wait "$sampler_pid" || sampler_rc=$?
sampler_pid=""

case "$sampler_rc" in
    0) ;;
    3) die "server pid $server_pid died during the load (ab report so far: $ab_out)" ;;
    4) die "ab did not finish within $max_seconds s (LOAD_MAX_SECONDS); stopped it" ;;
    *) die "rss_sampler failed (exit $sampler_rc); see the message above" ;;
esac

# The sampler only returns 0 once ab has exited, so this wait is immediate.
ab_rc=0
wait "$ab_pid" || ab_rc=$?
ab_pid=""
if [ "$ab_rc" -ne 0 ]; then
    die "ab failed (exit $ab_rc): $(grep -v '^Completed\|^Finished' "$ab_out" | tail -n 1)"
fi
if ! grep -q '^Complete requests:' "$ab_out"; then
    die "ab wrote no report to $ab_out"
fi
